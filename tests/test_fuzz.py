"""Fuzzing the readers with mutated valid input (fixed seeds).

Data rows: every mutated row is either read exactly as written (it is still valid: compared with
an independent reading through ``json.loads``) or refused as a bad row naming the file and line;
nothing else ever comes out. Predictions files and configs: either read, or refused with the
reader's own error naming the file.
"""

from __future__ import annotations

import json
import math
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swipe.config import ConfigError
from swipe.formats import HWS_HEADER, BadRowError, ReadStats, read_curves
from swipe.keyboard import Layout, LayoutError, bundled_layout, normalize_label
from swipe.predictions import Predictions, PredictionsError, read_predictions, write_predictions
from swipe.training.config import load_train_config

TINY = Layout.from_rows("tiny", "abc,def", 300, 200)
ODD = [b"\xff", b"\x00", b"{", b"]", b"[", b'"', b",", b"\\", b"\xe2\x80\xa8", b" ", b"x", b"-", b".", b"e",
       b"\xc3"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


# ---- Yandex-style jsonl ------------------------------------------------------------------------


def valid_row(rng: random.Random) -> dict:
    n = rng.randint(1, 6)
    t = sorted(rng.choice([rng.randint(0, 900), round(rng.uniform(0, 900), 2)]) for _ in range(n))
    curve: dict[str, Any] = {
        "x": [rng.choice([rng.randint(-5, 300), round(rng.uniform(0, 300), 3)]) for _ in range(n)],
        "y": [rng.choice([rng.randint(0, 200), round(rng.uniform(0, 200), 1)]) for _ in range(n)],
        "t": t,
    }
    if rng.random() < 0.7:
        curve["grid"] = TINY.to_grid()
    else:
        curve["grid_name"] = "hws_fitted"
    row: dict[str, Any] = {"curve": curve}
    if rng.random() < 0.9:
        row["word"] = "".join(rng.choice("abcdef") for _ in range(rng.randint(1, 5)))
    return row


def _value_span(text: str, key: str, rng: random.Random) -> tuple[int, int] | None:
    """Where the value of a ``"key":`` in ``text`` starts and ends (one occurrence at random)."""
    marker = f'"{key}":'
    starts = [i for i in range(len(text)) if text.startswith(marker, i)]
    if not starts:
        return None
    start = rng.choice(starts) + len(marker)
    while text[start] == " ":
        start += 1
    _, end = json.JSONDecoder().raw_decode(text, start)
    return start, end


def mutate_row(row: dict, rng: random.Random) -> bytes:
    text = json.dumps(row, ensure_ascii=False, separators=rng.choice([(",", ":"), (", ", ": ")]))
    keys = ["word", "curve", "x", "y", "t", "grid", "grid_name", "grid_name"]
    kind = rng.choice(["delete", "duplicate", "retype", "retype-item", "garble", "cut", "byte"])
    if kind in ("delete", "duplicate", "retype"):
        key = rng.choice(keys)
        span = _value_span(text, key, rng)
        if span is not None:
            start, end = span
            value = text[start:end]
            if kind == "delete":
                key_start = text.rfind(f'"{key}"', 0, start)
                text = text[:key_start] + text[end:]  # leaves a stray comma or none: broken or not
            elif kind == "duplicate":
                other = rng.choice([value, "[1, 2]", '"abc"', "[]"])
                text = text[:end] + f', "{key}": {other}' + text[end:]
            else:
                other = rng.choice(['"12"', "true", "null", "12", "[]", "{}", '"x"', "[[1]]", "-0", "1e999"])
                text = text[:start] + other + text[end:]
    elif kind == "retype-item":
        key = rng.choice(["x", "y", "t"])
        values = row["curve"][key]
        i = rng.randrange(len(values))
        values[i] = rng.choice(["12", True, False, None, [1], {"a": 1}, float("nan"), 10**400, "1e3"])
        text = json.dumps(row, ensure_ascii=False)
    data = text.encode("utf-8")
    if kind == "garble":
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data) + 1)
            data = data[:i] + rng.choice(ODD) + data[i:]
    elif kind == "cut":
        data = data[: rng.randrange(len(data))]
    elif kind == "byte":
        i = rng.randrange(len(data))
        data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    return data.replace(b"\n", b" ").replace(b"\r", b" ")


def reference(line: bytes, grids: dict[str, Layout]) -> tuple | None:
    """The row as ``json.loads`` reads it, checked by the documented rules; ``None`` if bad.
    ``grids`` holds the inline grids registered so far (the first grid of a name wins)."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("curve"), dict):
        return None
    curve = obj["curve"]
    lists = [curve.get(k) for k in "xyt"]
    if not all(isinstance(v, list) for v in lists):
        return None
    if "grid" in curve:
        grid = curve["grid"]
        try:
            layout = Layout.from_grid(grid) if isinstance(grid, dict) else None
        except (LayoutError, TypeError, ValueError):
            layout = None
        if layout is None:
            return None
        if grids.setdefault(layout.name, layout) != layout:
            return None
        name = layout.name
    elif isinstance(curve.get("grid_name"), str):
        name = curve["grid_name"]
        if name not in grids:
            try:
                grids[name] = bundled_layout(name)
            except LayoutError:
                return None
    else:
        return None
    word = obj.get("word")
    if word is not None:
        if not isinstance(word, str) or not normalize_label(word):
            return None
        word = normalize_label(word)
    x, y, t = lists
    if not (len(x) == len(y) == len(t) > 0):
        return None
    for v in x + y + t:
        if type(v) not in (int, float):
            return None
        try:
            if not math.isfinite(float(v)):
                return None
        except OverflowError:
            return None
    if any(b < a for a, b in zip(t, t[1:], strict=False)):
        return None
    return np.float32(x), np.float32(y), np.float64(t), word, name


def test_fuzz_jsonl_rows(tmp_path):
    rng = random.Random(1234)
    lines = []
    for _ in range(2500):
        row = valid_row(rng)
        lines.append(mutate_row(row, rng) if rng.random() < 0.85 else json.dumps(row).encode())
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    grids: dict[str, Layout] = {}
    expected = {i: reference(line, grids) for i, line in enumerate(lines, 1) if line.strip()}
    stats = ReadStats()
    got = {c.line: c for c in read_curves(path, skip_bad_rows=True, stats=stats)}
    good = {i for i, e in expected.items() if e is not None}
    assert set(got) == good, sorted(set(got) ^ good)[:10]
    assert stats.num_skipped == len(expected) - len(good)
    assert 300 < len(good) < 2200  # both outcomes are well exercised
    for i in good:
        x, y, t, word, name = expected[i]
        c = got[i]
        assert (c.word, c.grid_name) == (word, name), i
        np.testing.assert_array_equal(c.x, x)
        np.testing.assert_array_equal(c.y, y)
        np.testing.assert_array_equal(c.t, t)

    # Strictly, each bad row alone is refused naming its file and line, nothing else (rows bad
    # only for a grid that conflicts with an earlier one are good alone).
    bad = [i for i, e in expected.items() if e is None and reference(lines[i - 1], {}) is None]
    single = tmp_path / "one.jsonl"
    for i in rng.sample(bad, 300):
        single.write_bytes(b"\n\n" + lines[i - 1] + b"\n")
        with pytest.raises(BadRowError, match=r"one\.jsonl:3: "):
            list(read_curves(single))


# ---- How-We-Swipe logs -------------------------------------------------------------------------


def gesture_lines(rng: random.Random, word: str) -> list[list[str]]:
    n = rng.randint(2, 6)
    ts = sorted(rng.randint(1_000_000, 1_000_900) for _ in range(n))
    events = ["touchstart"] + ["touchmove"] * (n - 2) + ["touchend"]
    return [
        ["hello", str(ts[k]), "360", "210", events[k], f"{rng.uniform(0, 360):.2f}",
         f"{rng.uniform(0, 210):.1f}", "1", "1", "0", word, "0"]
        for k in range(n)
    ]


def mutate_log_line(cols: list[str], rng: random.Random) -> str:
    kind = rng.choice(["delete", "duplicate", "retype", "garble", "cut", "byte"])
    numeric = rng.choice([1, 2, 3, 5, 6, 4])
    if kind == "delete":
        del cols[rng.randrange(len(cols))]
    elif kind == "duplicate":
        cols.append(cols[rng.randrange(len(cols))])  # an extra column at the end is ignored
    elif kind == "retype":
        cols[numeric] = rng.choice(["abc", "nan", "inf", "true", "1_0", "0x10", "--1", "", "1,5"])
    elif kind == "garble":
        i = rng.randrange(len(cols[numeric]) + 1)
        odd = rng.choice(["#", "_", "x", "\udcff", "'", "\x00"])
        cols[numeric] = cols[numeric][:i] + odd + cols[numeric][i:]
    line = " ".join(cols)
    if kind == "cut":  # to nothing would be a deleted line: a shorter gesture, still valid
        line = line[: rng.randrange(1, len(line))]
    elif kind == "byte":
        i = rng.randrange(len(line))
        line = line[:i] + rng.choice(["\udcfe", "#", "\x00", "z"]) + line[i + 1 :]
    return line


def test_fuzz_hws_logs(tmp_path):
    rng = random.Random(99)
    words = set()
    while len(words) < 500:
        words.add("".join(rng.choice(LETTERS) for _ in range(7)))
    out, originals, written, mutated = [" ".join(HWS_HEADER)], {}, {}, set()
    for word in sorted(words):
        gesture = gesture_lines(rng, word)
        originals[word] = [list(cols) for cols in gesture]
        lines = [" ".join(cols) for cols in gesture]
        if rng.random() < 0.7:
            k = rng.randrange(len(gesture))
            lines[k] = mutate_log_line(gesture[k], rng)
            mutated.add(word)
        written[word] = lines
        out += lines
    path = tmp_path / "fuzz.log"
    path.write_bytes("\n".join(out).encode("utf-8", "surrogateescape") + b"\n")

    stats = ReadStats()
    curves = {c.word: c for c in read_curves(path, skip_bad_rows=True, stats=stats)}
    assert set(words) - mutated <= set(curves)  # every untouched gesture is read
    assert len(curves) < len(words) - 100 and stats.num_skipped > 100
    layout = bundled_layout("hws_fitted")
    for word, c in curves.items():
        cols = originals[word]
        sx, sy = layout.width / 360, layout.height / 210
        np.testing.assert_allclose(c.x, [float(r[5]) * sx for r in cols], rtol=1e-6)
        np.testing.assert_allclose(c.y, [float(r[6]) * sy for r in cols], rtol=1e-6)
        np.testing.assert_array_equal(c.t, [float(r[1]) - float(cols[0][1]) for r in cols])

    # Strictly, each refused gesture alone is a bad row naming the file and a line.
    single = tmp_path / "one.log"
    refused = sorted(mutated - set(curves))
    for word in rng.sample(refused, 100):
        single.write_bytes("\n".join(written[word]).encode("utf-8", "surrogateescape") + b"\n")
        with pytest.raises(BadRowError, match=r"one\.log:\d+: "):
            list(read_curves(single))


# ---- predictions files and configs -------------------------------------------------------------


METADATA = {
    "model": {"name": "m", "layers": [1, 2]}, "weights": "w.pt", "weights_sha256": "0" * 64,
    "generator": "beam", "generator_options": {"beam_size": 4}, "layout_names": ["qwerty_en"],
    "data_file": "d.jsonl", "split": "val",
}


def test_fuzz_predictions_files(tmp_path):
    rng = random.Random(7)
    valid = Predictions(
        candidates=[[(-rng.random(), rng.choice(["cat", "car"])) for _ in range(3)] for _ in range(20)],
        targets=[rng.choice(["cat", None]) for _ in range(20)],
        layouts=["qwerty_en"] * 20,
        metadata=METADATA,
    )
    path = tmp_path / "p.pkl"
    write_predictions(path, valid)
    payload = path.read_bytes()
    outcomes = {"read": 0, "refused": 0}
    for _ in range(400):
        kind = rng.choice(["flip", "insert", "delete", "cut", "structure"])
        data = bytearray(payload)
        if kind == "flip":
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == "insert":
            i = rng.randrange(len(data))
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == "delete":
            i = rng.randrange(len(data))
            del data[i : i + rng.randint(1, 8)]
        elif kind == "cut":
            del data[rng.randrange(len(data)) :]
        else:
            obj = valid.to_dict()
            field = rng.choice(sorted(obj))
            obj[field] = rng.choice([None, 1, "x", b"\0" * rng.randrange(9), [[[]]], {"a": 1}, [(1, 2)],
                                     [None] * 20, {1, 2}, obj[field][: rng.randrange(len(obj[field]) + 1)]
                                     if isinstance(obj[field], (str, bytes, list)) else -1])
            data = bytearray(pickle.dumps(obj, protocol=rng.choice([2, 4, 5])))
        path.write_bytes(bytes(data))
        try:
            assert isinstance(read_predictions(path), Predictions)
            outcomes["read"] += 1
        except PredictionsError as err:
            assert str(err).startswith(f"{path}: "), err
            outcomes["refused"] += 1
    assert outcomes["refused"] > 200


def test_fuzz_configs(tmp_path):
    rng = random.Random(11)
    base = json.loads((Path(__file__).resolve().parents[1] / "configs" / "quickstart_en.json").read_text())
    path = tmp_path / "cfg.json"
    refused = 0

    def sections(obj: dict, prefix: tuple = ()) -> list[tuple]:
        out = []
        for key, value in obj.items():
            out.append((*prefix, key))
            if isinstance(value, dict):
                out += sections(value, (*prefix, key))
        return out

    for _ in range(300):
        cfg = json.loads(json.dumps(base))
        keys = sections(cfg)
        *parents, key = rng.choice(keys)
        target = cfg
        for p in parents:
            target = target[p]
        kind = rng.choice(["delete", "retype", "unknown", "text"])
        if kind == "delete":
            del target[key]
        elif kind == "retype":
            target[key] = rng.choice([None, True, -1, 0, 1e999, float("nan"), "x", [], {}, [1, "a"], 10**30])
        elif kind == "unknown":
            target[key + "_"] = 1
        text = json.dumps(cfg)
        if kind == "text":
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice(["", "NaN", "}", '"', "-Infinity", "\x00"]) + text[i + 1 :]
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            load_train_config(path)
        except ConfigError as err:
            assert str(err).startswith(f"{path}:"), err
            refused += 1
    assert refused > 150
