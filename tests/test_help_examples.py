"""Every example in every command's --help runs as written: its command, options and files exist."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
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
}
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


def problems(example: list[str], helps: dict[tuple[str, ...], str]) -> list[str]:
    """What in ``example`` does not exist: its command, a subcommand's or option's name, a file."""
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
        elif "/" in arg and not (i and args[i - 1] in OUTPUTS) and not (ROOT / arg).exists():
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
    found = {" ".join(example): problems(example, helps)
             for text in helps.values() for example in examples(text)}
    assert found and {line: p for line, p in found.items() if p} == {}


def test_the_check_finds_a_missing_config_and_an_unknown_option():
    helps = {("train.py",): "usage: train.py [-h] [--config CONFIG]\n\noptions:\n  --config CONFIG  a file\n"}
    text = "examples:\n  python train.py --config configs/base_en.json --fast   # old\n"
    (example,) = examples(text)
    assert problems(example, helps) == ["file configs/base_en.json does not exist",
                                        "option --fast is not one of train.py's"]
