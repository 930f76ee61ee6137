"""Reading an ONNX export folder, every file checked before anything is decoded.

:func:`read_export_folder` reads ``model.json``, ``decoding.json``, ``layouts.json``,
``lexicon.npz`` and the graphs of a folder written by ``python -m swipe.export CKPT --format
onnx --out DIR`` into an :class:`ExportFolder`. Each problem is an :class:`OnnxFolderError` whose
message is one line naming the file and the field (``model.json: tokenizer.eos_id: ...``):
wrong types, missing keys, names and shapes that do not match the graphs, values out of range,
trie nodes that point outside the trie, truncated or foreign files, graphs that do not load or
that compute NaN. Like the rest of :mod:`swipe.runtime` it needs numpy and onnxruntime, not torch.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from swipe.formats import loads_json
from swipe.keyboard import Layout, LayoutError, load_layouts_file

FORMAT, VERSION = "swipe-onnx", 1
# Bounds that keep the work of one swipe small; exports stay far inside them.
MAX_JSON_BYTES = 16 << 20  # model.json, decoding.json, layouts.json
MAX_LEXICON_BYTES = 1 << 30  # lexicon.npz arrays, uncompressed
MAX_LENGTH = 256  # tokens of a word, <eos> included
MAX_BEAM = 1024
MAX_STATE_VALUES = 1 << 20  # values of one hypothesis' decoder state
RESAMPLE_STEPS = {"time": (1.0, 1000.0), "path": (0.01, 10.0)}  # ms, key widths
MAX_POINTS = 4096  # preprocessing.max_points (swipe.data.resample.MAX_RESAMPLED_POINTS)
ENCODER_INPUTS = ("points", "lengths", "layout_ids")


class OnnxFolderError(ValueError):
    """The folder is not an ONNX export this decoder reads, or a swipe cannot be decoded."""


@dataclass(frozen=True)
class ExportFolder:
    """An ONNX export folder, read and checked.

    Attributes
    ----------
    path : Path
        The folder.
    manifest : dict
        ``model.json``, its fields checked.
    decoding : dict
        ``decoding.json`` with the overrides given, its values checked.
    alphabet : str
        Output characters; token ``i`` (1-based) is ``alphabet[i - 1]``.
    eos_id, sos_id : int
        End-of-word output token and start token.
    max_length : int
        Most output tokens of a word, ``<eos>`` included.
    layouts : list of Layout
        The model's layouts, in layout-id order.
    resample : dict or None
        ``{"mode", "step", "keep_time"}`` of ``preprocessing``, or None.
    max_points : int or None
        Points the encoder reads at most.
    lexicon : dict of str to numpy.ndarray
        ``lexicon.npz``: ``children``, ``lookahead``, ``end_log_prob`` and, where present,
        ``word_ids`` and ``words``.
    encoder, decoder_step : onnxruntime.InferenceSession
        The graphs, their input and output names checked against ``model.json``.
    decoder_score : onnxruntime.InferenceSession or None
        The graph scoring given words in one call, where ``model.json`` lists one.
    """

    path: Path
    manifest: dict[str, Any]
    decoding: dict[str, Any]
    alphabet: str
    eos_id: int
    sos_id: int
    max_length: int
    layouts: list[Layout]
    resample: dict[str, Any] | None
    max_points: int | None
    lexicon: dict[str, np.ndarray]
    encoder: Any
    decoder_step: Any
    decoder_score: Any = None


class _Fields:
    """Typed access to a JSON object's fields; a problem is one line naming the file and field."""

    def __init__(self, file: str, values: object, prefix: str = "") -> None:
        self.file, self.prefix = file, prefix
        if not isinstance(values, dict):
            raise self.error("", f"must be a JSON object, not {type(values).__name__}")
        self.values: dict[str, Any] = values

    def error(self, name: str, problem: str) -> OnnxFolderError:
        field = f"{self.prefix}{name}"
        return OnnxFolderError(f"{self.file}: {field + ': ' if field else ''}{problem}")

    def get(self, name: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
        if name not in self.values:
            if optional:
                return None
            raise self.error(name, "missing")
        value = self.values[name]
        if value is None and optional:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            expected = "a number" if float in kinds else _KIND_NAMES[kinds[0]]
            raise self.error(name, f"must be {'null or ' if optional else ''}{expected}, not {_show(value)}")
        return value

    def integer(self, name: str, low: int, high: int, optional: bool = False) -> int | None:
        value = self.get(name, int, optional)
        if value is not None and not low <= value <= high:
            raise self.error(name, f"must be {low} to {high}, not {value}")
        return value

    def number(self, name: str, low: float = -math.inf, high: float = math.inf,
               optional: bool = False) -> float | None:
        value = self.get(name, (int, float), optional)
        if value is None:
            return None
        number = float(value) if isinstance(value, float) or abs(value) < 2**1000 else math.inf
        if not (math.isfinite(number) and low <= number <= high):
            raise self.error(name, f"must be a finite number from {low} to {high}, not {_show(value)}")
        return number

    def names(self, name: str) -> list[str]:
        value = self.get(name, list)
        if not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value):
            raise self.error(name, "must be a list of distinct names")
        return value

    def child(self, name: str) -> _Fields:
        return _Fields(self.file, self.get(name, dict), f"{self.prefix}{name}.")


_KIND_NAMES = {int: "a whole number", str: "text", bool: "true or false", list: "a list", dict: "an object"}


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_line(err: Exception) -> str:
    """onnxruntime's message of ``err`` on one line, shortened."""
    text = " ".join(str(err).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _read_json(path: Path) -> object:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise OnnxFolderError(f"{path.name}: over {MAX_JSON_BYTES} bytes; not a file of an export")
        return loads_json(path.read_bytes())
    except OSError as err:
        raise OnnxFolderError(f"{path.name}: cannot read it ({err.strerror or err})") from None
    except ValueError as err:
        raise OnnxFolderError(f"{path.name}: not valid JSON ({err})") from None


def read_export_folder(folder: str | Path, int8: bool = False, threads: int = 1,
                       overrides: Mapping[str, Any] | None = None) -> ExportFolder:
    """Read and check every file of an ONNX export folder.

    Parameters
    ----------
    folder : path
        Written by ``python -m swipe.export CHECKPOINT --format onnx --out FOLDER``.
    int8 : bool
        Load the int8 graphs (``*.int8.onnx``).
    threads : int
        onnxruntime's threads per graph.
    overrides : mapping, optional
        ``decoding.json`` values to use instead of the folder's (None values are ignored); they
        are checked as the file's are.

    Raises
    ------
    OnnxFolderError
        The first problem found, one line naming the file and the field.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise OnnxFolderError(f"{folder}: no such folder (an ONNX export is a folder with model.json)")
    try:
        return _read(folder, int8, threads, overrides or {})
    except OnnxFolderError as err:
        raise OnnxFolderError(f"{folder}/{err}") from None


def _read(folder: Path, int8: bool, threads: int, overrides: Mapping[str, Any]) -> ExportFolder:
    manifest = _Fields("model.json", _read_json(folder / "model.json"))
    if manifest.values.get("format") != FORMAT or manifest.values.get("version") != VERSION:
        raise manifest.error("format", f"not a version {VERSION} {FORMAT} manifest")
    tokenizer = manifest.child("tokenizer")
    alphabet = tokenizer.get("alphabet", str)
    if not alphabet or len(set(alphabet)) != len(alphabet):
        raise tokenizer.error("alphabet", "must be distinct characters, at least one")
    num_tokens = len(alphabet) + 1  # the output tokens: <eos> and the characters
    eos_id = tokenizer.integer("eos_id", 0, num_tokens - 1)
    sos_id = tokenizer.integer("sos_id", 0, num_tokens + 1)
    assert eos_id is not None and sos_id is not None
    max_length = manifest.integer("max_length", 1, MAX_LENGTH)
    assert max_length is not None
    layout_names = manifest.names("layouts")
    if not layout_names:
        raise manifest.error("layouts", "must name at least one layout")
    prep = manifest.child("preprocessing")
    max_points = prep.integer("max_points", 2, MAX_POINTS, optional=True)
    resample = None
    if prep.get("resample", dict, optional=True) is not None:
        fields = prep.child("resample")
        mode = fields.get("mode", str)
        if mode not in RESAMPLE_STEPS:
            raise fields.error("mode", f"must be one of {', '.join(RESAMPLE_STEPS)}, not {_show(mode)}")
        low, high = RESAMPLE_STEPS[mode]
        resample = {"mode": mode, "step": fields.number("step", low, high),
                    "keep_time": fields.get("keep_time", bool)}
    decoding = _read_decoding(folder, overrides)
    layouts = _read_layouts(folder, layout_names)
    lexicon = _read_lexicon(folder / "lexicon.npz", num_tokens)
    encoder, decoder_step, decoder_score = _read_graphs(folder, manifest.child("graphs"), int8, threads)
    checked = ExportFolder(folder, manifest.values, decoding, alphabet, eos_id, sos_id, max_length, layouts,
                           resample, max_points, lexicon, encoder, decoder_step, decoder_score)
    _check_graphs_run(checked, num_tokens)
    return checked


def _read_decoding(folder: Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``decoding.json`` with the overrides, each value the pipeline reads checked."""
    values = _read_json(folder / "decoding.json")
    fields = _Fields("decoding.json", values)
    merged = {**fields.values, **{k: v for k, v in overrides.items() if v is not None}}
    fields = _Fields("decoding.json", merged)
    beam_size = fields.integer("beam_size", 1, MAX_BEAM)
    fields.integer("num_candidates", 0, MAX_BEAM, optional=True)
    fields.integer("max_length", 1, MAX_LENGTH, optional=True)
    fields.number("prior_weight", 0.0, 1e3)
    fields.number("length_penalty", -10.0, 10.0)
    fields.number("template_weight", 0.0, 1e3, optional=True)
    fields.number("template_prior_weight", -1e3, 1e3, optional=True)
    fields.number("views_below", optional=True)
    fields.number("views_margin", optional=True)
    fields.integer("views_beam_size", 1, MAX_BEAM, optional=True)
    fields.number("templates_below", optional=True)
    fields.integer("template_candidates", 0, 10_000, optional=True)
    not_applied = fields.get("not_applied", dict, optional=True) or {}
    for name in ("x_scales", "wide_x_scales"):
        scales = merged.get(name, not_applied.get(name))
        if scales is not None and not (isinstance(scales, list) and len(scales) <= 64 and all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and 0.1 <= s <= 10 for s in scales)):
            raise fields.error(name, f"must be at most 64 numbers from 0.1 to 10, not {_show(scales)}")
    assert beam_size is not None
    return merged


def _read_layouts(folder: Path, names: list[str]) -> list[Layout]:
    path = folder / "layouts.json"
    if not path.is_file():
        raise OnnxFolderError("layouts.json: missing")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise OnnxFolderError(f"layouts.json: over {MAX_JSON_BYTES} bytes")
    try:
        layouts = load_layouts_file(path)
    except (LayoutError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as err:
        reason = str(err).replace(str(path), "").lstrip(": ") or type(err).__name__
        raise OnnxFolderError(f"layouts.json: not a layouts file ({reason})") from None
    missing = [name for name in names if name not in layouts]
    if missing:
        raise OnnxFolderError(f"layouts.json: no layout {missing[0]!r} (model.json: layouts names it)")
    return [layouts[name] for name in names]


def _read_lexicon(path: Path, num_tokens: int) -> dict[str, np.ndarray]:
    """The trie arrays, their types, shapes and node ranges checked."""
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(info.file_size for info in archive.infolist())
        if size > MAX_LEXICON_BYTES:
            raise OnnxFolderError(f"{name}: {size} bytes uncompressed; at most {MAX_LEXICON_BYTES}")
        with np.load(path, allow_pickle=False) as arrays:
            lexicon = {key: arrays[key] for key in arrays.files}
    except FileNotFoundError:
        raise OnnxFolderError(f"{name}: missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zipfile.LargeZipFile) as err:
        raise OnnxFolderError(f"{name}: not a readable .npz file ({err})") from None
    for key in ("children", "lookahead", "end_log_prob"):
        if key not in lexicon:
            raise OnnxFolderError(f"{name}: {key}: missing")
    children = lexicon["children"]
    if children.dtype.kind not in "iu" or children.ndim != 2 or children.shape[1] != num_tokens \
            or not len(children):
        raise OnnxFolderError(f"{name}: children: must be integers of shape (nodes, {num_tokens}), not "
                              f"{children.dtype} {children.shape}")
    nodes = len(children)
    if children.min() < -1 or children.max() >= nodes:
        raise OnnxFolderError(f"{name}: children: node numbers must be -1 to {nodes - 1}")
    for key in ("lookahead", "end_log_prob"):
        values = lexicon[key]
        if values.dtype.kind != "f" or values.shape != (nodes,):
            raise OnnxFolderError(f"{name}: {key}: must be floats of shape ({nodes},), not {values.dtype} "
                                  f"{values.shape}")
        if np.isnan(values).any() or (values == np.inf).any():
            raise OnnxFolderError(f"{name}: {key}: holds NaN or +inf (log-probabilities are finite or -inf)")
    if "word_ids" in lexicon or "words" in lexicon:
        words, word_ids = lexicon.get("words"), lexicon.get("word_ids")
        if words is None or words.dtype.kind != "U" or words.ndim != 1:
            raise OnnxFolderError(f"{name}: words: must be a list of strings")
        if word_ids is None or word_ids.dtype.kind not in "iu" or word_ids.shape != (nodes,):
            raise OnnxFolderError(f"{name}: word_ids: must be integers of shape ({nodes},)")
        if len(word_ids) and (word_ids.min() < -1 or word_ids.max() >= len(words)):
            raise OnnxFolderError(f"{name}: word_ids: must be -1 to {len(words) - 1}")
    return lexicon


def _read_graphs(folder: Path, graphs: _Fields, int8: bool, threads: int) -> tuple[Any, Any, Any]:
    """The graphs loaded (``decoder_score`` None where not listed), their names and the state's
    shapes checked against ``model.json``."""
    import onnxruntime as ort

    encoder_spec, step_spec = graphs.child("encoder"), graphs.child("decoder_step")
    encoder_outputs = encoder_spec.names("outputs")
    if sorted(encoder_spec.names("inputs")) != sorted(ENCODER_INPUTS):
        raise encoder_spec.error("inputs", f"must be {', '.join(ENCODER_INPUTS)}")
    step_inputs, step_outputs = step_spec.names("inputs"), step_spec.names("outputs")
    per_curve = step_spec.names("per_curve_inputs")
    state = step_spec.get("state", list)
    state_inputs = []
    for i, entry in enumerate(state):
        fields = _Fields("model.json", entry, f"graphs.decoder_step.state[{i}].")
        fields.get("input", str), fields.get("output", str)
        init = fields.get("init", str)
        shape = fields.get("shape", list)
        if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape) \
                or math.prod(max(n, 1) for n in shape) > MAX_STATE_VALUES:
            raise fields.error("shape", f"must be sizes (0 for positions still to come), at most "
                               f"{MAX_STATE_VALUES} values in all")
        if init not in ("zeros", "encoder") or init == "encoder" and entry["input"] not in encoder_outputs:
            raise fields.error("init", "must be 'zeros' or 'encoder' (an encoder output of the input's name)")
        state_inputs.append(entry["input"])
    expected = {"tokens", *per_curve, *state_inputs}
    if set(step_inputs) != expected or not set(per_curve) <= set(encoder_outputs):
        raise step_spec.error("inputs", "must be tokens, the per-curve encoder outputs and the state inputs")
    if len(step_outputs) != 1 + len(state):
        raise step_spec.error("outputs", "must be the logits and one output per state entry")
    specs = [(encoder_spec, list(ENCODER_INPUTS), encoder_outputs), (step_spec, step_inputs, step_outputs)]
    if graphs.get("decoder_score", dict, optional=True) is not None:
        score_spec = graphs.child("decoder_score")
        score_inputs, score_outputs = score_spec.names("inputs"), score_spec.names("outputs")
        if "tokens" not in score_inputs or not set(score_inputs) - {"tokens"} <= set(encoder_outputs):
            raise score_spec.error("inputs", "must be tokens and encoder outputs")
        if score_outputs != ["logits"]:
            raise score_spec.error("outputs", "must be the logits")
        specs.append((score_spec, score_inputs, score_outputs))
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # a broken graph is reported here, in one line
    sessions = []
    for spec, inputs, outputs in specs:
        file = spec.get("file", str)
        if Path(file).name != file or not file.endswith(".onnx"):
            raise spec.error("file", f"must be a .onnx file of the folder, not {_show(file)}")
        if int8:
            file = file[: -len(".onnx")] + ".int8.onnx"
        if not (folder / file).is_file():
            raise OnnxFolderError(f"{file}: missing" + (" (exported without --int8?)" if int8 else ""))
        try:
            session = ort.InferenceSession(str(folder / file), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own error types: a file that is not a loadable graph
            raise OnnxFolderError(f"{file}: not a loadable ONNX graph ({_one_line(err)})") from None
        names_in = sorted(node.name for node in session.get_inputs())
        names_out = [node.name for node in session.get_outputs()]
        if names_in != sorted(inputs) or names_out != list(outputs):
            raise OnnxFolderError(f"{file}: inputs {names_in} and outputs {names_out} are not those "
                                  "model.json lists")
        sessions.append(session)
    return sessions[0], sessions[1], sessions[2] if len(sessions) > 2 else None


def _check_graphs_run(folder: ExportFolder, num_tokens: int) -> None:
    """Run the graphs once on a small swipe: they must give finite values of the expected shapes
    (broken or non-finite weights are found here, not as NaN scores later)."""
    graphs = folder.manifest["graphs"]
    encoder_file = graphs["encoder"]["file"]
    points = np.array([[[0.0, 0.0, 0.0], [10.0, 5.0, 20.0], [20.0, 10.0, 40.0]]], np.float32)
    try:
        outputs = folder.encoder.run(None, {"points": points, "lengths": np.array([3], np.int64),
                                            "layout_ids": np.array([0], np.int64)})
    except Exception as err:  # onnxruntime's own error types
        raise OnnxFolderError(f"{encoder_file}: does not run ({_one_line(err)})") from None
    memory = dict(zip(graphs["encoder"]["outputs"], outputs, strict=True))
    step = graphs["decoder_step"]
    feeds: dict[str, np.ndarray] = {"tokens": np.full((1, 1), folder.sos_id, np.int64)}
    feeds.update({name: memory[name] for name in step["per_curve_inputs"]})
    for i, entry in enumerate(step["state"]):
        if entry["init"] == "zeros":
            feeds[entry["input"]] = np.zeros((1, 1, *entry["shape"]), np.float32)
        elif memory[entry["input"]].shape[1:] != tuple(entry["shape"]):
            raise OnnxFolderError(f"model.json: graphs.decoder_step.state[{i}].shape: {entry['shape']}, but "
                                  f"{encoder_file} gives {list(memory[entry['input']].shape[1:])}")
        else:
            feeds[entry["input"]] = memory[entry["input"]][:, None]
    step_file = step["file"]
    try:
        logits, *_ = folder.decoder_step.run(None, {name: feeds[name] for name in step["inputs"]})
    except Exception as err:  # onnxruntime's own error types
        raise OnnxFolderError(f"{step_file}: does not run ({_one_line(err)})") from None
    checked = [(encoder_file, outputs), (step_file, [logits])]
    if folder.decoder_score is not None:
        score = graphs["decoder_score"]
        word = {**memory, "tokens": np.array([[[folder.sos_id, 1]]], np.int64)}  # one word of one token
        try:
            scored, = folder.decoder_score.run(None, {name: word[name] for name in score["inputs"]})
        except Exception as err:  # onnxruntime's own error types
            raise OnnxFolderError(f"{score['file']}: does not run ({_one_line(err)})") from None
        if scored.shape != (1, 1, 2, num_tokens):
            raise OnnxFolderError(f"{score['file']}: gives logits of shape {list(scored.shape)} for one word "
                                  f"of two tokens and {num_tokens} output tokens")
        checked.append((score["file"], [scored]))
    for file, values in checked:
        if not all(np.isfinite(v).all() for v in values if np.asarray(v).dtype.kind == "f"):
            raise OnnxFolderError(f"{file}: computes NaN or infinite values (damaged weights?)")
    if logits.size != num_tokens:
        raise OnnxFolderError(f"{step_file}: gives {logits.size} logits for {num_tokens} output tokens")
