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


# ---- ONNX export folders (swipe.runtime) ---------------------------------------------------------


def tiny_graphs(folder: Path, alphabet: str) -> dict[str, Any]:
    """Two small hand-made graphs with the interface of an export (an RNN-style state of 3 values),
    and their ``model.json`` entry."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    v = len(alphabet) + 1
    weights = helper.make_tensor("w", TensorProto.FLOAT, [3, v], [0.01 * (i % 7) for i in range(3 * v)])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    encoder = helper.make_graph(
        [helper.make_node("ReduceMean", ["points", "axes"], ["memory"], keepdims=0),
         helper.make_node("Identity", ["memory"], ["hidden"])],
        "encoder",
        [helper.make_tensor_value_info("points", TensorProto.FLOAT, ["B", "T", 3]),
         helper.make_tensor_value_info("lengths", TensorProto.INT64, ["B"]),
         helper.make_tensor_value_info("layout_ids", TensorProto.INT64, ["B"])],
        [helper.make_tensor_value_info("memory", TensorProto.FLOAT, ["B", 3]),
         helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["B", 3])],
        [axes])
    step = helper.make_graph(
        [helper.make_node("Cast", ["tokens"], ["tokens_f"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["tokens_f", "minus_one"], ["tokens_3"]),
         helper.make_node("Unsqueeze", ["memory", "one"], ["memory_3"]),
         helper.make_node("Add", ["hidden", "tokens_3"], ["mixed"]),
         helper.make_node("Add", ["mixed", "memory_3"], ["new_hidden"]),
         helper.make_node("MatMul", ["new_hidden", "w"], ["logits"])],
        "decoder_step",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["C", "K"]),
         helper.make_tensor_value_info("memory", TensorProto.FLOAT, ["C", 3]),
         helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["C", "K", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["C", "K", v]),
         helper.make_tensor_value_info("new_hidden", TensorProto.FLOAT, ["C", "K", 3])],
        [weights, helper.make_tensor("minus_one", TensorProto.INT64, [1], [-1]),
         helper.make_tensor("one", TensorProto.INT64, [1], [1])])
    for name, graph in (("encoder", encoder), ("decoder_step", step)):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 9
        onnx.save(model, str(folder / f"{name}.onnx"))
    return {
        "encoder": {"file": "encoder.onnx", "inputs": ["points", "lengths", "layout_ids"],
                    "outputs": ["memory", "hidden"]},
        "decoder_step": {"file": "decoder_step.onnx", "inputs": ["tokens", "memory", "hidden"],
                         "outputs": ["logits", "new_hidden"], "per_curve_inputs": ["memory"],
                         "state": [{"input": "hidden", "output": "new_hidden", "shape": [3],
                                    "init": "encoder"}]},
    }


def tiny_trie(alphabet: str, words: list[str]) -> dict[str, np.ndarray]:
    """``lexicon.npz`` arrays of ``words`` (token 0 is ``<eos>``, token i the i-th letter)."""
    children = [[-1] * (len(alphabet) + 1)]
    ends: dict[int, int] = {}
    for w, word in enumerate(words):
        node = 0
        for char in word:
            token = alphabet.index(char) + 1
            if children[node][token] < 0:
                children[node][token] = len(children)
                children.append([-1] * (len(alphabet) + 1))
            node = children[node][token]
        children[node][0] = node
        ends[node] = w
    log_prob = np.log(np.full(len(words), 1.0 / len(words), np.float32))
    end = np.full(len(children), -np.inf, np.float32)
    word_ids = np.full(len(children), -1, np.int32)
    for node, w in ends.items():
        end[node], word_ids[node] = log_prob[w], w
    lookahead = np.full(len(children), log_prob[0], np.float32)
    return {"children": np.array(children, np.int32), "lookahead": lookahead, "end_log_prob": end,
            "word_ids": word_ids, "words": np.array(words)}


def make_export_folder(folder: Path) -> Path:
    """A small but complete export folder in ``folder``: hand-made graphs, a six-word lexicon, the
    TINY layout (the ``export_folder`` fixture of conftest.py)."""
    alphabet = "abcdef"
    graphs = tiny_graphs(folder, alphabet)
    words = ["abc", "bad", "fed", "cab", "dab", "face"]
    np.savez_compressed(folder / "lexicon.npz", **tiny_trie(alphabet, words))
    (folder / "layouts.json").write_text(json.dumps([TINY.to_grid()]), encoding="utf-8")
    decoding = {"beam_size": 4, "num_candidates": None, "prior_weight": 0.5, "length_penalty": 0.5,
                "max_length": None, "template_weight": 0.0, "template_prior_weight": 1.0, "not_applied": {}}
    (folder / "decoding.json").write_text(json.dumps(decoding), encoding="utf-8")
    manifest = {"format": "swipe-onnx", "version": 1, "opset": 18, "family": "rnn", "graphs": graphs,
                "tokenizer": {"alphabet": alphabet, "eos_id": 0, "sos_id": len(alphabet) + 1,
                              "num_output_tokens": len(alphabet) + 1},
                "layouts": ["tiny"], "lexicon": "tiny", "max_length": 6,
                "preprocessing": {"resample": {"mode": "path", "step": 0.25, "keep_time": False},
                                  "max_points": 64},
                "decoding": decoding}
    (folder / "model.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def tampered(folder: Path, tmp_path: Path, file: str, change: Any) -> Path:
    """A copy of ``folder`` with ``file`` changed: ``change`` edits its JSON in place (a function),
    replaces its bytes, or (None) removes it."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    path = copy / file
    if change is None:
        path.unlink()
    elif callable(change):
        if file.endswith(".npz"):
            with np.load(path) as arrays:
                values = {key: arrays[key] for key in arrays.files}
            change(values)
            np.savez(path, **values)
        else:
            values = json.loads(path.read_text(encoding="utf-8"))
            change(values)
            path.write_text(json.dumps(values), encoding="utf-8")
    else:
        path.write_bytes(change)
    return copy


def _set(path: str, value: Any) -> Any:
    """An edit that sets the field at the dotted ``path`` (``del`` for ``...``)."""
    def edit(values: Any) -> None:
        *parents, last = path.split(".")
        for key in parents:
            values = values[int(key)] if isinstance(values, list) else values[key]
        if value is ...:
            del values[last]
        elif isinstance(values, list):
            values[int(last)] = value
        else:
            values[last] = value
    return edit


FOLDER_CASES = [
    ("model.json", b"[1, 2]", "model.json: must be a JSON object"),
    ("model.json", b"{" * 5000, "model.json: not valid JSON"),
    ("model.json", b"\xff\xfe", "model.json: not valid JSON"),
    ("model.json", None, "model.json: cannot read"),
    ("model.json", _set("version", 2), "model.json: format"),
    ("model.json", _set("tokenizer", "abc"), "model.json: tokenizer: must be an object"),
    ("model.json", _set("tokenizer.alphabet", 5), "model.json: tokenizer.alphabet: must be text"),
    ("model.json", _set("tokenizer.alphabet", "aab"), "tokenizer.alphabet: must be distinct"),
    ("model.json", _set("tokenizer.eos_id", ...), "model.json: tokenizer.eos_id: missing"),
    ("model.json", _set("tokenizer.eos_id", True), "tokenizer.eos_id: must be a whole number"),
    ("model.json", _set("tokenizer.sos_id", 99), "tokenizer.sos_id: must be 0 to 8"),
    ("model.json", _set("max_length", 0), "model.json: max_length: must be 1 to"),
    ("model.json", _set("max_length", 10**9), "model.json: max_length: must be 1 to"),
    ("model.json", _set("layouts", []), "model.json: layouts: must name"),
    ("model.json", _set("layouts", ["tiny", "tiny"]), "model.json: layouts: must be a list of distinct"),
    ("model.json", _set("layouts", ["qwerty"]), "layouts.json: no layout 'qwerty'"),
    ("model.json", _set("preprocessing.resample.step", 0), "resample.step: must be a finite"),
    ("model.json", _set("preprocessing.resample.step", 1e-9), "resample.step: must be a finite"),
    ("model.json", _set("preprocessing.resample.step", "lots"), "resample.step: must be a num"),
    ("model.json", _set("preprocessing.resample.mode", "space"), "resample.mode: must be one of"),
    ("model.json", _set("preprocessing.max_points", 1), "preprocessing.max_points: must be 2 to"),
    ("model.json", _set("graphs.encoder.file", "../encoder.onnx"), "graphs.encoder.file: must be a .onnx"),
    ("model.json", _set("graphs.encoder.inputs", ["points"]), "graphs.encoder.inputs: must be"),
    ("model.json", _set("graphs.encoder.outputs", ["memory", "other"]), "graphs.decoder_step.state[0].init"),
    ("model.json", _set("graphs.decoder_step.inputs", ["tokens"]), "graphs.decoder_step.inputs: must be"),
    ("model.json", _set("graphs.decoder_step.outputs", ["logits"]), "graphs.decoder_step.outputs: must be"),
    ("model.json", _set("graphs.decoder_step.state.0.shape", [10**9]), "state[0].shape: must be sizes"),
    ("model.json", _set("graphs.decoder_step.state.0.shape", [4]), "state[0].shape: [4], but encoder.onnx"),
    ("model.json", lambda m: m["graphs"]["decoder_step"]["state"][0].update(init="zeros", shape=[4]),
     "decoder_step.onnx: does not run"),
    ("model.json", _set("graphs.decoder_step.state.0.init", "ones"), "state[0].init: must be"),
    ("model.json", _set("graphs.decoder_step.state", "x"), "graphs.decoder_step.state: must be a list"),
    ("model.json", _set("graphs.encoder.outputs", ["hidden", "memory"]), "encoder.onnx: inputs"),
    ("model.json", _set("graphs.decoder_score", {"file": "decoder_score.onnx", "inputs": ["tokens", "x"],
                                                 "outputs": ["logits"]}), "decoder_score.inputs: must be"),
    ("model.json", _set("graphs.decoder_score", {"file": "decoder_score.onnx", "inputs": ["tokens", "memory"],
                                                 "outputs": ["x"]}), "decoder_score.outputs: must be"),
    ("model.json", _set("graphs.decoder_score", {"file": "decoder_score.onnx", "inputs": ["tokens", "memory"],
                                                 "outputs": ["logits"]}), "decoder_score.onnx: missing"),
    ("decoding.json", None, "decoding.json: cannot read"),
    ("decoding.json", b"", "decoding.json: not valid JSON"),
    ("decoding.json", _set("beam_size", 0), "decoding.json: beam_size: must be 1 to"),
    ("decoding.json", _set("beam_size", "lots"), "decoding.json: beam_size: must be a whole number"),
    ("decoding.json", _set("beam_size", 2.5), "decoding.json: beam_size: must be a whole number"),
    ("decoding.json", _set("beam_size", 10**9), "decoding.json: beam_size: must be 1 to"),
    ("decoding.json", _set("max_length", 0), "decoding.json: max_length: must be 1 to"),
    ("decoding.json", _set("prior_weight", float("nan")), "decoding.json: prior_weight: must be a finite"),
    ("decoding.json", _set("length_penalty", "0.5"), "decoding.json: length_penalty: must be a number"),
    ("decoding.json", _set("num_candidates", -1), "decoding.json: num_candidates: must be 0 to"),
    ("decoding.json", _set("x_scales", [1, "wide"]), "decoding.json: x_scales: must be"),
    ("layouts.json", None, "layouts.json: missing"),
    ("layouts.json", b"{\"tiny\": 5}", "layouts.json: not a layouts file"),
    ("layouts.json", b"[" * 5000, "layouts.json: not a layouts file"),
    ("lexicon.npz", None, "lexicon.npz: missing"),
    ("lexicon.npz", b"PK\x03\x04" + b"\x00" * 50, "lexicon.npz: not a readable .npz"),
    ("lexicon.npz", b"garbage", "lexicon.npz: not a readable .npz"),
    ("lexicon.npz", _set("children", ...), "lexicon.npz: children: missing"),
    ("lexicon.npz", lambda a: a.update(children=a["children"] + 100), "children: node numbers must be"),
    ("lexicon.npz", lambda a: a.update(children=a["children"] - 5), "children: node numbers must be"),
    ("lexicon.npz", lambda a: a.update(children=a["children"][:, :3]), "children: must be integers of shape"),
    ("lexicon.npz", lambda a: a.update(children=a["children"].astype(float)), "children: must be integers"),
    ("lexicon.npz", lambda a: a.update(lookahead=a["lookahead"][:2]), "lookahead: must be floats of shape"),
    ("lexicon.npz", lambda a: a.update(end_log_prob=a["end_log_prob"] * np.nan), "end_log_prob: holds NaN"),
    ("lexicon.npz", lambda a: a.update(word_ids=a["word_ids"] + 50), "word_ids: must be -1 to"),
    ("encoder.onnx", b"garbage", "encoder.onnx: not a loadable ONNX graph"),
    ("encoder.onnx", None, "encoder.onnx: missing"),
    ("decoder_step.onnx", b"\x08\x07" * 100, "decoder_step.onnx: not a loadable ONNX graph"),
]


@pytest.mark.parametrize(("file", "change", "message"), FOLDER_CASES,
                         ids=[f"{file}-{message[-30:]}" for file, _, message in FOLDER_CASES])
def test_tampered_export_folders_are_refused_in_one_line_naming_file_and_field(
        export_folder, tmp_path, file, change, message):
    from swipe.runtime.folder import OnnxFolderError, read_export_folder

    folder = tampered(export_folder, tmp_path, file, change)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(OnnxFolderError) as caught:
        read_export_folder(folder)
    text = str(caught.value)
    assert message in text and "\n" not in text and text.startswith(str(folder)), text
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written


def with_nan_weights(graph: Path) -> bytes:
    """The bytes of ONNX graph ``graph`` with every float weight NaN (a damaged file that loads)."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(graph))
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype.kind == "f":
            init.CopyFrom(numpy_helper.from_array(np.full_like(values, np.nan), init.name))
    return model.SerializeToString()


def test_graphs_that_compute_nan_are_refused_in_one_line(export_folder, tmp_path):
    from swipe.runtime.folder import OnnxFolderError, read_export_folder

    step = "decoder_step.onnx"
    folder = tampered(export_folder, tmp_path, step, with_nan_weights(export_folder / step))
    with pytest.raises(OnnxFolderError) as caught:
        read_export_folder(folder)
    assert str(caught.value) == f"{folder}/{step}: computes NaN or infinite values (damaged weights?)"


def test_a_good_export_folder_reads_and_decodes(export_folder):
    from swipe.runtime.folder import read_export_folder

    export = read_export_folder(export_folder)
    assert export.alphabet == "abcdef" and [layout.name for layout in export.layouts] == ["tiny"]
    assert export.resample == {"mode": "path", "step": 0.25, "keep_time": False}


def test_fuzz_export_folder_files(export_folder, tmp_path):
    """Random byte edits of each file: the folder is read or refused with OnnxFolderError, nothing else."""
    from swipe.runtime.folder import OnnxFolderError, read_export_folder

    rng = random.Random(32)
    refused = 0
    for i in range(60):
        file = rng.choice(["model.json", "decoding.json", "layouts.json", "lexicon.npz", "encoder.onnx"])
        data = bytearray((export_folder / file).read_bytes())
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data)) if data else 0
            if rng.random() < 0.5:
                data[at:at + rng.randint(1, 3)] = rng.choice(ODD)
            else:
                del data[at:]
        folder = tampered(export_folder, tmp_path / str(i), file, bytes(data))
        try:
            read_export_folder(folder)
        except OnnxFolderError as err:
            assert "\n" not in str(err) and file.split(".")[0] in str(err), str(err)
            refused += 1
    assert refused > 30


@pytest.mark.parametrize(("curve", "message"), [
    ({"x": ["10", 20], "y": [5, 6], "t": [0, 10]}, "lists of numbers"),
    ({"x": [True, 20], "y": [5, 6], "t": [0, 10]}, "lists of numbers"),
    ({"x": [1e300, 20], "y": [5, 6], "t": [0, 10]}, "coordinate out of range"),
    ({"x": [1e12, 20], "y": [5, 6], "t": [0, 10]}, "coordinate out of range"),
    ({"x": [10, 20], "y": [5, 6], "t": [0, 1e300]}, "lasts over"),
    ({"x": [10] * 5001, "y": [5] * 5001, "t": list(range(5001))}, "at most 5000"),
    ({"x": [10, 20], "y": [5, 6], "t": [0, 10], "grid_name": 5}, "'grid_name' must be text"),
])
def test_the_runtime_checks_swipes_as_the_readers_do(export_folder, tmp_path, capsys, curve, message):
    from swipe.runtime.__main__ import main as runtime_main

    good = {"x": [10, 150, 250], "y": [40, 60, 150], "t": [0, 40, 90], "grid_name": "tiny"}
    path = tmp_path / "swipes.jsonl"
    path.write_text(json.dumps({"word": "abc", "curve": good}) + "\n" +
                    json.dumps({"curve": {"grid_name": "tiny", **curve}}) + "\n", encoding="utf-8")
    assert runtime_main([str(export_folder), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "swipes.jsonl:2: not a swipe row" in err and message in err and "\n" not in err
    path.write_text(json.dumps({"word": "abc", "curve": good}) + "\n", encoding="utf-8")
    assert runtime_main([str(export_folder), str(path)]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["candidates"] and all(math.isfinite(score) for score, _ in row["candidates"])


def test_the_runtime_reads_rows_with_an_inline_grid_as_the_readers_do(export_folder, tmp_path, capsys):
    from swipe.runtime.__main__ import main as runtime_main

    path = tmp_path / "inline.jsonl"
    curve = {"x": [10, 150, 250], "y": [40, 60, 150], "t": [0, 40, 90], "grid": TINY.to_grid()}
    path.write_text(json.dumps({"word": "abc", "curve": curve}) + "\n", encoding="utf-8")
    assert len(list(read_curves(path))) == 1
    assert runtime_main([str(export_folder), str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["candidates"]
