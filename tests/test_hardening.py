"""Bad input, hostile files and kills: each ends in a clear message, with nothing left behind.

The numbers in the test names are the cases of the hardening issue's table.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from swipe.config import ConfigError
from swipe.data.__main__ import main as data_main
from swipe.formats import BadRowError, ReadStats, read_curves
from swipe.formats import main as formats_main
from swipe.keyboard import Layout
from swipe.training.checkpoint import CheckpointError, RunDirLock
from swipe.training.config import load_train_config

ROOT = Path(__file__).resolve().parents[1]
TINY = Layout.from_rows("tiny", "abc,def", 300, 200)


def row(x=(10, 20, 30), y=(5, 6, 7), t=(0, 10, 20), word="abc") -> str:
    curve = {"x": list(x), "y": list(y), "t": list(t), "grid": TINY.to_grid()}
    return json.dumps({"word": word, "curve": curve})


def write_rows(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# ---- numbers must be JSON numbers (1, 2) -----------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"x": ["12", 20, 30]}, id="1-string"),
        pytest.param({"t": [0, True, 20]}, id="2-true"),
        pytest.param({"y": [5, False, 7]}, id="2-false"),
        pytest.param({"x": [10, 20, 1e400]}, id="infinite"),
        pytest.param({"x": [10, 20, 10**400]}, id="huge-int"),
    ],
)
def test_1_2_numbers_must_be_json_numbers(tmp_path, bad):
    values = {"x": [10, 20, 30], "y": [5, 6, 7], "t": [0, 10, 20], **bad}
    text = row(**values).replace("Infinity", "1e400")
    path = write_rows(tmp_path / "a.jsonl", [row(), text, row()])
    with pytest.raises(BadRowError, match=r"a\.jsonl:2: "):
        list(read_curves(path))
    stats = ReadStats()
    assert [c.line for c in read_curves(path, skip_bad_rows=True, stats=stats)] == [1, 3]
    assert stats.num_skipped == 1


def test_1_string_numbers_are_not_built(tmp_path, capsys):
    path = write_rows(tmp_path / "a.jsonl", [row(), row(x=["12", 20, 30])])
    assert data_main(["build", str(path), "--out", str(tmp_path / "ds"), "--quiet"]) == 1
    assert "a.jsonl:2: curve.x, curve.y and curve.t must hold JSON numbers" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists() and leftovers(tmp_path) == []


# ---- truncated .gz (3) and formats check's exit status (14) ----------------------------------------


def truncated_gz(tmp_path: Path) -> Path:
    path = tmp_path / "cut.jsonl.gz"
    data = gzip.compress(("\n".join(row() for _ in range(400)) + "\n").encode())
    path.write_bytes(data[: len(data) // 2])
    return path


def test_3_truncated_gz_is_a_bad_row_not_a_traceback(tmp_path, capsys):
    path = truncated_gz(tmp_path)
    with pytest.raises(BadRowError, match=r"cut\.jsonl\.gz:\d+: the file ends early or is corrupt"):
        list(read_curves(path))
    stats = ReadStats()
    curves = list(read_curves(path, skip_bad_rows=True, stats=stats))
    assert 0 < len(curves) < 400 and stats.skipped["unreadable file"] == 1

    assert data_main(["build", str(path), "--out", str(tmp_path / "strict"), "--quiet"]) == 1
    assert "cut.jsonl.gz:" in capsys.readouterr().err
    out = tmp_path / "skipping"
    assert data_main(["build", str(path), "--out", str(out), "--quiet", "--skip-bad-rows"]) == 0
    assert "unreadable file" in capsys.readouterr().out

    assert formats_main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert "first bad row: " in captured.out and "cut.jsonl.gz:" in captured.out
    assert "error: 1 bad rows" in captured.err


def test_3_corrupt_gz_and_bad_utf8_log(tmp_path):
    corrupt = tmp_path / "bad.jsonl.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
    with pytest.raises(BadRowError, match=r"bad\.jsonl\.gz:1: "):
        list(read_curves(corrupt))
    log = tmp_path / "a.log"
    log.write_bytes(b"hello 1 100 50 touchstart 1 2 1 1 0 ab\xff 0\n")
    with pytest.raises(BadRowError, match=r"a\.log:1: "):
        list(read_curves(log))


def test_14_check_exits_0_only_for_clean_files(tmp_path, capsys):
    good = write_rows(tmp_path / "good.jsonl", [row(), row()])
    bad = write_rows(tmp_path / "bad.jsonl", [row(), row(t=[0, True, 20])])
    assert formats_main(["check", str(good)]) == 0
    assert formats_main(["check", str(good), str(bad)]) == 1
    assert "bad.jsonl:2: " in capsys.readouterr().out


# ---- hostile predictions files (7, 8) --------------------------------------------------------------


MEASURE = """
import resource, sys, time
from swipe.predictions import PredictionsError, read_predictions
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    read_predictions(sys.argv[1])
except PredictionsError as err:
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(f"{seconds} {grown} {err}")
"""


def bounded(path: Path) -> str:
    """Read ``path`` in a fresh process: it must be refused in seconds (a fraction of one on an idle
    machine; 5 allowed on a busy shared one) with under 100 MB of extra memory (the growth of the
    peak resident size)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(path)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout, proc.stderr
    seconds, grown, message = proc.stdout.split(" ", 2)
    assert float(seconds) < 5.0 and int(grown) < 100e6, (seconds, grown)
    return message


def test_7_deeply_nested_predictions_are_refused(tmp_path):
    path = tmp_path / "deep.pkl"
    depth = 100_000
    path.write_bytes(b"\x80\x04" + b"]" * depth + b"a" * (depth - 1) + b".")  # [[[...]]] 200 KB
    message = bounded(path)
    assert "deep.pkl" in message and "nested deeper than" in message


def test_8_billion_laughs_predictions_are_refused(tmp_path):
    # list_i = [list_{i-1}, list_{i-1}], 100 times over: 2**100 objects for a walk, 4 KB on disk.
    payload = bytearray(b"\x80\x04]\x94")
    for i in range(1, 100):
        key = (i - 1).to_bytes(4, "little")
        payload += b"(j" + key + b"j" + key + b"l\x94"
    path = tmp_path / "laughs.pkl"
    path.write_bytes(bytes(payload) + b".")
    assert len(path.read_bytes()) < 5000
    message = bounded(path)
    assert "laughs.pkl" in message and "expand to more than" in message


def test_8_too_many_objects_and_huge_memo_keys_are_refused(tmp_path):
    many = tmp_path / "many.pkl"
    many.write_bytes(b"\x80\x04](" + b"N" * 1_100_000 + b"e.")  # a list of 1.1 million Nones
    assert "more than 1000000 objects" in bounded(many)
    lists = tmp_path / "lists.pkl"
    lists.write_bytes(b"\x80\x04" + b"]" * 300_000 + b".")  # 300,000 lists: memory, not objects
    assert "more than 250000 containers" in bounded(lists)
    memo = tmp_path / "memo.pkl"
    memo.write_bytes(b"\x80\x04]r\xff\xff\xff\x7f.")  # memo key 2**31: the C unpickler would allocate it
    assert "memo index" in bounded(memo)


def test_hostile_checkpoint_pickle_is_refused_before_torch_reads_it(tmp_path):
    import io
    import zipfile

    import torch

    buffer = io.BytesIO()
    torch.save({"format": "swipe-checkpoint"}, buffer)
    path = tmp_path / "last.pt"
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("data.pkl"):
                data = b"\x80\x02" + b"]" * 10_000 + b"a" * 9_999 + b"."
            out.writestr(info, data)
    from swipe.training.checkpoint import load_checkpoint

    with pytest.raises(CheckpointError, match=r"last\.pt: .*nested deeper than"):
        load_checkpoint(path)


# ---- configs (10, 11, 12) --------------------------------------------------------------------------


TRANSFORMER = {"d_model": 16, "encoder": "transformer", "num_encoder_layers": 1, "num_decoder_layers": 1,
               "num_heads": 2, "dim_feedforward": 32, "dropout": 0.0}
SYNTHETIC = {"layouts": ["hws_fitted"], "lexicon": "en", "num_train": 1, "num_val": 1}


def config_file(tmp_path: Path, **overrides) -> Path:
    cfg = {
        "name": "x",
        "model": {"embedder": {"name": "nearest"}, "transformer": TRANSFORMER},
        "data": {"train": "t", "val": "v"},
        "max_steps": 1,
    }
    for key, value in overrides.items():
        section, _, sub = key.partition("__")
        if sub:
            cfg.setdefault(section, {})[sub] = value
        else:
            cfg[key] = value
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(
    "overrides, message",
    [
        pytest.param({"keep_last_checkpoints": -1}, "cfg.json: keep_last_checkpoints: must be >= 0", id="10"),
        pytest.param({"lexicon": "missing.tsv"}, "cfg.json: lexicon: no lexicon file 'missing.tsv'", id="11"),
        pytest.param({"optim__lr": float("nan")}, "cfg.json: optim.lr: must be a finite number", id="12-nan"),
        pytest.param({"optim__lr": float("inf")}, "cfg.json: optim.lr: must be a finite number", id="12-inf"),
        pytest.param({"schedule__warmup_steps": -10}, "cfg.json: schedule.warmup_steps: must be >= 0",
                     id="12-warmup"),
        pytest.param(
            {"data": {"synthetic": {**SYNTHETIC, "layouts": ["qwerty_xx"]}}},
            "cfg.json: data.synthetic.layouts[0]: ",
            id="12-layout",
        ),
        pytest.param(
            {"data": {"synthetic": {**SYNTHETIC, "lexicon": "no.tsv"}}},
            "cfg.json: data.synthetic.lexicon: no lexicon file 'no.tsv'",
            id="11-synthetic",
        ),
    ],
)
def test_10_11_12_config_errors_name_file_and_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as info:
        load_train_config(config_file(tmp_path, **overrides))
    assert str(info.value).startswith(str(tmp_path / message)), str(info.value)


def test_11_train_py_stops_before_training_on_a_missing_lexicon(tmp_path):
    cfg = config_file(tmp_path, lexicon="missing.tsv")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--config", str(cfg)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "lexicon: no lexicon file 'missing.tsv'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


# ---- one writer per run directory (13) -------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from swipe.training.checkpoint import RunDirLock
RunDirLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_13_second_trainer_refused_and_dead_lock_does_not_block(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        held = f"in use by another training process \\(pid {holder.pid}\\)"
        with pytest.raises(CheckpointError, match=held):
            RunDirLock(run_dir).acquire()

        from swipe.config import from_dict
        from swipe.training import train
        from swipe.training.config import TrainConfig

        config = from_dict(TrainConfig, json.loads(config_file(tmp_path).read_text()))
        with pytest.raises(CheckpointError, match=f"pid {holder.pid}"):
            train(config, run_dir=run_dir, resume=True)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunDirLock(run_dir) as lock:  # the kernel released the dead holder's lock
        assert lock.path.read_text().strip() == str(os.getpid())


# ---- kills: nothing left behind (4, 5, 6) ----------------------------------------------------------

# Each child does the real work with one step slowed down: it says "ready" mid-write and waits.
CHILDREN = {
    "build": """
import sys, time, pathlib
import swipe.data.build as build
original = build._write_chunk
def slow(*args):
    original(*args)
    print("ready", flush=True)
    time.sleep(120)
build._write_chunk = slow
build.build_dataset([sys.argv[1]], pathlib.Path(sys.argv[2]) / "ds")
""",
    "synth": """
import sys, time, pathlib
import swipe.synth as synth
from swipe.keyboard import bundled_layout
from swipe.lexicon import load_lexicon
original = synth.synthesize_curve
def slow(*args):
    print("ready", flush=True)
    time.sleep(120)
synth.synthesize_curve = slow
synth.write_synthetic_jsonl(pathlib.Path(sys.argv[2]) / "train.jsonl", bundled_layout("hws_fitted"),
                            load_lexicon("en"), 10, 0)
""",
    "checkpoint": """
import sys, time, pathlib
import torch
from swipe.training import checkpoint
def slow(obj, f):
    f.write(b"partial")
    f.flush()
    print("ready", flush=True)
    time.sleep(120)
torch.save = slow
checkpoint.atomic_save({"step": 1}, pathlib.Path(sys.argv[2]) / "last.pt")
""",
}


def kill_mid_write(what: str, sig: int, source: Path, folder: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILDREN[what], str(source), str(folder)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    assert leftovers(folder), "the child should be writing a temporary file"
    child.send_signal(sig)
    child.wait(timeout=60)
    assert child.returncode == -sig
    return child


@pytest.mark.parametrize("what", ["build", "synth", "checkpoint"])
def test_4_5_6_sigterm_mid_write_leaves_nothing(tmp_path, what):
    source = write_rows(tmp_path / "a.jsonl", [row()] * 10)
    folder = tmp_path / "run" / "checkpoints"
    kill_mid_write(what, signal.SIGTERM, source, folder)
    assert leftovers(folder) == [] and list(folder.iterdir()) == []


@pytest.mark.parametrize("what", ["build", "synth", "checkpoint"])
def test_4_5_6_sigkill_leftovers_are_removed_by_the_next_run(tmp_path, what, capsys):
    source = write_rows(tmp_path / "a.jsonl", [row()] * 10)
    folder = tmp_path / "run" / "checkpoints"
    child = kill_mid_write(what, signal.SIGKILL, source, folder)
    (stale,) = leftovers(folder)
    assert f".tmp-{child.pid}-" in stale
    if what == "build":
        from swipe.data import build_dataset

        build_dataset([source], folder / "ds")
    elif what == "synth":
        from swipe.keyboard import bundled_layout
        from swipe.lexicon import load_lexicon
        from swipe.synth import write_synthetic_jsonl

        write_synthetic_jsonl(folder / "train.jsonl", bundled_layout("hws_fitted"), load_lexicon("en"), 3, 0)
    else:
        with RunDirLock(folder.parent):  # a trainer taking its run directory sweeps its checkpoints
            pass
    assert leftovers(folder) == []
    assert f"left by process {child.pid} which ended while writing it" in capsys.readouterr().err


def test_a_live_writers_temporary_file_is_not_swept(tmp_path):
    from swipe.atomic import sweep_stale, temp_path

    mine = temp_path(tmp_path / "x.pt")
    mine.write_text("")
    foreign = tmp_path / "notes.tmp-1-abcdefgh"  # not one of ours (no leading dot)
    foreign.write_text("")
    assert sweep_stale(tmp_path) == [] and mine.exists() and foreign.exists()


# ---- bounded cost: points, path length, line length, nesting ---------------------------------------


def test_resampling_to_max_points_equals_resampling_then_thinning():
    from swipe.data.resample import ResampleConfig, resample_curve

    rng = np.random.default_rng(0)
    configs = [ResampleConfig("time", 5.0), ResampleConfig("path", 0.1), ResampleConfig("path", 0.1, False)]
    for n in (2, 7, 60, 300):
        x, y = rng.uniform(0, 400, n), rng.uniform(0, 200, n)
        t = np.cumsum(rng.uniform(0, 20, n))
        for config in configs:
            full = resample_curve(x, y, t, 300.0, config)  # under MAX_RESAMPLED_POINTS
            for cap in (3, 16, 128):
                index = np.round(np.linspace(0, len(full[0]) - 1, cap)).astype(np.int64)
                expected = [a[index] for a in full] if len(full[0]) > cap else list(full)
                got = resample_curve(x, y, t, 300.0, config, max_points=cap)
                for a, b in zip(got, expected, strict=True):
                    np.testing.assert_array_equal(a, b)


def test_a_zigzag_across_the_whole_range_resamples_in_bounded_time():
    from swipe.data.resample import MAX_RESAMPLED_POINTS, ResampleConfig, resample_curve

    x = np.where(np.arange(5000) % 2 == 0, -8000.0, 8000.0)  # a path of 8e7 px
    start = time.perf_counter()
    for max_points in (128, None):
        got = resample_curve(x, x / 2, np.arange(5000.0), 20.0, ResampleConfig("path", 0.05), max_points)
        assert len(got[0]) == (max_points or MAX_RESAMPLED_POINTS)
    assert time.perf_counter() - start < 1.0


def test_lines_over_the_limit_are_bad_rows_read_no_further(tmp_path, monkeypatch):
    import swipe.formats as formats

    monkeypatch.setattr(formats, "MAX_LINE_BYTES", 10_000)
    path = tmp_path / "long.jsonl.gz"
    with gzip.open(path, "wb") as f:  # 1 MB in one line without a newline, then good rows
        f.write(row().encode() + b"\n" + b"[" + b"1," * 500_000 + b"\n" + row().encode() + b"\n")
    with pytest.raises(BadRowError, match=r"long\.jsonl\.gz:2: line longer than 10000 bytes"):
        list(read_curves(path))
    stats = ReadStats()
    assert [c.line for c in read_curves(path, skip_bad_rows=True, stats=stats)] == [1, 3]
    assert stats.skipped == {"line too long": 1}
    log = tmp_path / "long.log"
    log.write_bytes(b"x" * 20_000)
    with pytest.raises(BadRowError, match=r"long\.log:1: line longer than"):
        list(read_curves(log))


@pytest.mark.parametrize("nested", [b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000,
                                    b'{"word": "abc", "curve": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_deeply_nested_json_is_a_bad_row_not_a_recursion_error(tmp_path, capsys, nested):
    path = tmp_path / "deep.jsonl"
    path.write_bytes(row().encode() + b"\n" + nested + b"\n" + row().encode() + b"\n")
    with pytest.raises(BadRowError, match=r"deep\.jsonl:2: "):
        list(read_curves(path))
    stats = ReadStats()
    assert [c.line for c in read_curves(path, skip_bad_rows=True, stats=stats)] == [1, 3]
    assert formats_main(["check", str(path)]) == 1
    assert "deep.jsonl:2: " in capsys.readouterr().out
    out = tmp_path / "ds"
    assert data_main(["build", str(path), "--out", str(out), "--quiet", "--skip-bad-rows"]) == 0


@pytest.mark.parametrize(("values", "reason"), [
    ({"t": [0, 1e300, 1e300]}, "time out of range"),  # finite, but inf as float32 once stored
    ({"t": [1e300, 1e300, 1e300]}, None),  # an absolute clock: times are stored from the first
    ({"x": [10, 20, 9000]}, "coordinate out of range"),
    ({"x": [10] * 5001, "y": [1] * 5001, "t": list(range(5001))}, "too many points"),
])
def test_check_build_predict_and_make_curve_agree_on_a_swipe(tmp_path, capsys, values, reason):
    from swipe.decoder import DecodeError, make_curve

    path = write_rows(tmp_path / "a.jsonl", [row(), row(**{**{"x": (10, 20, 30)}, **values})])
    check = formats_main(["check", str(path)])
    build = data_main(["build", str(path), "--out", str(tmp_path / "ds"), "--quiet"])
    curve = {"x": [10, 20, 30], "y": [5, 6, 7], "t": [0, 10, 20], **values}
    if reason is None:
        assert check == 0 and build == 0
        make_curve(curve["x"], curve["y"], curve["t"], "tiny")
        return
    assert check == 1 and build == 1
    assert capsys.readouterr().err.count("a.jsonl:2: ") == 1
    with pytest.raises(DecodeError):
        make_curve(curve["x"], curve["y"], curve["t"], "tiny")
    stats = ReadStats()
    assert len(list(read_curves(path, skip_bad_rows=True, stats=stats))) == 1 and stats.skipped == {reason: 1}


def test_how_we_swipe_logs_with_a_bom_or_a_tiny_keyboard(tmp_path):
    header = " ".join(["sentence", "timestamp", "keyb_width", "keyb_height", "event", "x_pos", "y_pos",
                       "x_radius", "y_radius", "angle", "word", "is_err"])
    events = [f"hi {1000 + 10 * i} 1080 700 {event} {100 + 40 * i} 300 1 1 0 hi 0"
              for i, event in enumerate(["touchstart", "touchmove", "touchend"])]
    log = tmp_path / "bom.log"
    log.write_bytes(b"\xef\xbb\xbf" + "\n".join([header, *events]).encode() + b"\n")
    assert len(list(read_curves(log))) == 1
    tiny = tmp_path / "tiny.log"
    tiny.write_text("\n".join([header, *(e.replace("1080 700", "1e-300 700") for e in events)]) + "\n")
    with pytest.raises(BadRowError, match=r"tiny\.log:2: gesture 1: keyboard size"):
        list(read_curves(tiny))
    out = tmp_path / "out.jsonl"
    assert formats_main(["convert-hws", str(tiny), "--out", str(out), "--skip-bad-rows"]) == 0
    assert "Infinity" not in out.read_text()


# ---- one set of checks for a value: train configs and the time guard -------------------------------


def test_a_lexicon_path_that_is_not_a_lexicon_is_refused_before_training(tmp_path):
    not_lexicon = tmp_path / "swipes.jsonl"
    not_lexicon.write_text(row() + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cfg\.json: lexicon: .*swipes\.jsonl:1: expected 'word<TAB>"):
        load_train_config(config_file(tmp_path, lexicon=str(not_lexicon)))


@pytest.mark.parametrize("minutes", [float("nan"), float("inf"), 0, -5])
def test_max_minutes_must_be_a_positive_finite_number(tmp_path, minutes):
    from swipe.training import train

    with pytest.raises(ConfigError, match="max_minutes: must be a (finite|positive) number"):
        load_train_config(config_file(tmp_path, max_minutes=minutes))
    config = load_train_config(config_file(tmp_path))
    with pytest.raises(ValueError, match="--max-minutes: must be a positive number"):
        train(config, max_minutes=minutes, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---- command lines: Ctrl-C and closed pipes ----------------------------------------------------------


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    from swipe.cli import command_line

    @command_line("tool")
    def main(argv=None):
        raise KeyboardInterrupt

    assert main([]) == 130
    assert capsys.readouterr().err == "tool: interrupted\n"



def _default_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_while_a_script_loads_is_one_line_and_exit_130(tmp_path):
    script = "predict.py"  # train.py starts the same way (swipe.cli.run_command)
    # -X importtime reports each import as it ends: the interrupt lands while PyTorch loads. The
    # child gets Ctrl-C's default action back: a shell starts background jobs with SIGINT ignored.
    proc = subprocess.Popen([sys.executable, "-X", "importtime", str(ROOT / script), "--help"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=_default_ctrl_c)
    for line in proc.stderr:
        if line.split("|")[-1].strip().startswith("torch."):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    proc.stdout.close()
    proc.wait(timeout=120)
    inherited = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))
    assert proc.returncode == 130, f"SIGINT handler and blocked signals of the test process: {inherited}"
    assert "Traceback" not in rest
    assert rest.rstrip().splitlines()[-1] == f"{script}: interrupted"

def test_a_closed_pipe_ends_a_command_quietly(tmp_path):
    path = write_rows(tmp_path / "a.jsonl", [row()] * 3)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "swipe.formats", "check", *[str(path)] * 2000],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout.readline().startswith(str(path).encode())
    proc.stdout.close()  # as `| head -1` does
    assert proc.wait(timeout=120) == 141
    assert proc.stderr.read() == b""


@pytest.mark.parametrize(("key", "value"), [
    ("x_scales", 5), ("x_scales", [1, "a"]), ("wide_x_scales", "wide"), ("views_below", True),
    ("template_candidates", -1), ("template_rescoring", {"weight": "a"}), ("layout_names", [1])])
def test_odd_optional_metadata_in_a_predictions_file_is_refused_when_read(tmp_path, capsys, key, value):
    import pickle

    import evaluate
    from swipe.predictions import Predictions, read_predictions, write_predictions

    metadata = {"model": {}, "weights": "", "weights_sha256": "", "generator": "beam",
                "generator_options": {}, "layout_names": ["tiny"], "data_file": "a.jsonl", "split": "a",
                "x_scales": [1.0]}
    path = tmp_path / "preds.pkl"
    write_predictions(path, Predictions([[(-1.0, "abc")]], ["abc"], ["tiny"], metadata))
    assert evaluate.main([str(path), "--no-results"]) == 0
    data = pickle.loads(path.read_bytes())
    data["metadata"][key] = value
    path.write_bytes(pickle.dumps(data))
    assert evaluate.main([str(path), "--no-results"]) == 1
    assert f"preds.pkl: metadata.{key}: expected" in capsys.readouterr().err
    with pytest.raises(ValueError, match=f"metadata.{key}"):
        read_predictions(path)


def test_an_out_that_is_a_folder_is_one_line(tmp_path, capsys):
    from swipe.predict import main as predict_main

    folder = tmp_path / "out"
    folder.mkdir()
    data = write_rows(tmp_path / "a.jsonl", [row()])
    args = ["--checkpoint", "en_hws", "--data", str(data), "--out", str(folder), "--overwrite"]
    assert predict_main(args) == 2
    assert "out: is a folder; --out and --csv take a file name" in capsys.readouterr().err
    log = tmp_path / "a.log"
    log.write_text("")
    assert formats_main(["convert-hws", str(log), "--out", str(folder), "--overwrite"]) == 1
    assert "out: is a folder" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


@pytest.mark.slow  # loads and runs the shipped model
def test_predict_csv_keeps_a_row_for_a_line_too_long(tmp_path, monkeypatch):
    import swipe.formats as formats
    from swipe.predict import main as predict_main

    monkeypatch.setattr(formats, "MAX_LINE_BYTES", 10_000)
    curve = {"x": [40, 120, 300], "y": [600, 640, 610], "t": [0, 50, 100], "grid_name": "hws_fitted"}
    good = json.dumps({"word": "the", "curve": curve})
    data = write_rows(tmp_path / "a.jsonl", [good, "[" + "1," * 20_000, good])
    out, csv = tmp_path / "p.pkl", tmp_path / "p.csv"
    assert predict_main(["--checkpoint", "en_hws", "--data", str(data), "--out", str(out), "--csv", str(csv),
                         "--skip-bad-rows", "--beam-size", "2", "--x-scales", "1", "--wide-x-scales", "none",
                         "--template-candidates", "0", "--quiet"]) == 0
    rows = csv.read_text().splitlines()
    assert len(rows) == 3 and rows[1] == ",,," and rows[0] != ",,," and rows[2] != ",,,"
