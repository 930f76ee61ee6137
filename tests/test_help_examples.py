"""Every example in every command's --help runs as written: its command, options and files exist."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]

# How examples name each command, and where its main() lives.
COMMANDS = {
    "train.py": "train",
    "predict.py": "predict",
    "evaluate.py": "evaluate",
    "-m swipe.data": "swipe.data.__main__",
    "-m swipe.formats": "swipe.formats",
    "-m swipe.export": "swipe.export",
    "-m swipe.aggregate": "swipe.aggregate",
    "-m swipe.synth": "swipe.synth",
    "-m swipe.make_lexicon": "swipe.make_lexicon",
    "-m swipe.demo": "swipe.demo.__main__",
    "-m swipe.runtime": "swipe.runtime.__main__",
}
# Commands whose --help must not wait for PyTorch (or need onnxruntime) to load.
LIGHT_HELPS = ("swipe.runtime", "swipe.demo", "swipe.export")
# Runs that train.py's examples make, which other examples read.
RUNS = {"runs/quickstart_en"}
# Options whose value is a file the command writes (it need not exist).
OUTPUTS = {"--out", "--csv", "--results", "--out-dir", "--runs-dir"}


def help_text(main: Callable[[list[str]], int], argv: list[str]) -> str:
    """What ``main([*argv, "--help"])`` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return out.getvalue()


def subcommands(text: str) -> list[str]:
    """The subcommands a --help lists in its usage line (``{build,info}``)."""
    match = re.search(r"usage: .*?\{([\w,-]+)\} \.\.\.", text, re.S)
    return match.group(1).split(",") if match else []


def defined_options(text: str) -> set[str]:
    """The options a --help defines (its option lines, not its prose)."""
    return set(re.findall(r"^\s+(?:-\w[ ,][^\n]*?)?(--[\w-]+)", text, re.M))


def examples(text: str) -> list[list[str]]:
    """The example command lines of a --help: lines that start with ``python``."""
    lines = [line.strip() for line in text.splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith("python ")]


def outputs(example: list[str]) -> set[str]:
    """The files ``example`` writes (the values of its output options)."""
    return {arg for option, arg in zip(example, example[1:], strict=False) if option in OUTPUTS}


def problems(example: list[str], helps: dict[tuple[str, ...], str], made: frozenset[str] = frozenset()
             ) -> list[str]:
    """What in ``example`` does not exist: its command, a subcommand's or option's name, a file
    (other than one in ``made``, which other examples write)."""
    args = example[1:]
    command = " ".join(args[:2]) if args[0] == "-m" else args[0]
    args = args[2:] if args[0] == "-m" else args[1:]
    if command not in COMMANDS:
        return [f"unknown command {command!r}"]
    key: tuple[str, ...] = (command,)
    if args and (command, args[0]) in helps:
        key, args = (command, args[0]), args[1:]
    found = []
    options = defined_options(helps[key])
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            if arg.split("=")[0] not in options:
                found.append(f"option {arg} is not one of {' '.join(key)}'s")
        elif "/" in arg and not (i and args[i - 1] in OUTPUTS) and not (arg in made or (ROOT / arg).exists()):
            found.append(f"file {arg} does not exist")
    return found


def all_helps() -> dict[tuple[str, ...], str]:
    helps = {}
    for command, module in COMMANDS.items():
        main = importlib.import_module(module).main
        text = helps[(command,)] = help_text(main, [])
        for sub in subcommands(text):
            helps[(command, sub)] = help_text(main, [sub])
    return helps


def test_every_example_in_every_help_names_what_exists():
    helps = all_helps()
    assert len(examples(helps[("predict.py",)])) >= 3
    every = [example for text in helps.values() for example in examples(text)]
    made = frozenset().union(*map(outputs, every), RUNS)
    found = {" ".join(example): problems(example, helps, made) for example in every}
    assert found and {line: p for line, p in found.items() if p} == {}


def test_every_help_has_examples_and_reads_as_plain_text():
    helps = all_helps()
    for key, text in helps.items():
        subs = [sub for sub in helps if len(sub) == 2 and sub[0] == key[0]]
        if len(key) == 2 or not subs:  # a command's examples may be in each of its subcommands' helps
            assert examples(text), f"{' '.join(key)} --help has no example"
        markup = re.findall(r"``|:(?:mod|func|class|meth):`", text)
        assert not markup, f"{' '.join(key)} --help shows reStructuredText markup: {markup}"


@pytest.mark.parametrize("module", LIGHT_HELPS)
def test_help_loads_no_torch(module):
    code = ("import runpy, sys\n"
            f"sys.argv = [{module!r}, '--help']\n"
            "try:\n"
            f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
            "except SystemExit as stop:\n"
            "    assert stop.code == 0, stop.code\n"
            "print(sorted({'torch', 'onnxruntime'} & set(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = done.stdout.splitlines()[-1]
    assert loaded == "[]", f"python -m {module} --help loads {loaded}"


def test_the_check_finds_a_missing_config_and_an_unknown_option():
    helps = {("train.py",): "usage: train.py [-h] [--config CONFIG]\n\noptions:\n  --config CONFIG  a file\n"}
    text = "examples:\n  python train.py --config configs/base_en.json --fast   # old\n"
    (example,) = examples(text)
    assert problems(example, helps) == ["file configs/base_en.json does not exist",
                                        "option --fast is not one of train.py's"]
