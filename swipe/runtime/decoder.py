"""The reference decoder of an ONNX folder (``python -m swipe.export CKPT --format onnx --out DIR``).

Written to be ported line by line: it imports numpy, onnxruntime and two numpy-only modules of
this package (:mod:`swipe.keyboard` for the layouts, :mod:`swipe.templates` for template
rescoring), never torch. Per batch of swipes it

1. resamples and thins each swipe as the model was trained (``model.json`` ``preprocessing``),
2. runs ``encoder.onnx`` once on the padded points,
3. runs a trie-constrained beam search, one ``decoder_step.onnx`` call per output character, with
   the word-frequency prior spread over the steps and the length penalty at the end,
4. re-ranks each swipe's words by how well their key templates match its raw points.

It gives the candidates of ``predict.py`` with the beam generator, ``--prior-weight``,
``--length-penalty``, ``--template-weight`` and ``--template-prior-weight`` (see
``docs/onnx.md`` for the settings of ``predict.py`` it does not apply).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import onnxruntime as ort

from swipe.formats import SwipeError, check_swipe, loads_json, numbered_lines
from swipe.keyboard import Layout, load_layouts_file
from swipe.runtime.folder import OnnxFolderError, read_export_folder
from swipe.templates import TemplateRescorer

Candidate = tuple[float, str]

# Milliseconds per point of path resampling without time (swipe.data.resample.UNTIMED_STEP_MS).
UNTIMED_STEP_MS = 10.0


class Swipe(NamedTuple):
    """A swipe as a touch screen logs it: pixels of its layout, milliseconds, the layout's name."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    layout: str


# ---- preprocessing: the same points the model was trained on -----------------------------------


def _interpolate(at: np.ndarray, along: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` given at the non-decreasing ``along`` (where ``along``
    repeats, points before it move towards the first repeated point, points after from the last)."""
    left = np.clip(np.searchsorted(along, at, side="right") - 1, 0, len(along) - 2)
    span = along[left + 1] - along[left]
    weight = np.divide(at - along[left], span, out=np.ones_like(at), where=span > 0)
    return values[left] + np.clip(weight, 0.0, 1.0) * (values[left + 1] - values[left])


def resample(x: np.ndarray, y: np.ndarray, t: np.ndarray, key_width: float,
             config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One point every ``step`` ms (``time``) or ``step`` key widths along the path (``path``),
    first and last points kept: :func:`swipe.data.resample.resample_curve`."""
    x, y, t = (np.asarray(v, np.float64) for v in (x, y, t))
    if config["mode"] == "time":
        along, step = t - t[0], config["step"]
    else:
        along = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
        step = config["step"] * key_width
    untimed = config["mode"] == "path" and not config["keep_time"]
    if len(x) < 2 or along[-1] <= 0:
        return x, y, (np.arange(len(x)) * UNTIMED_STEP_MS if untimed else t)
    count = int(np.ceil(along[-1] / step - 1e-9))
    at = np.append(np.arange(count) * step, along[-1])
    new_x, new_y = _interpolate(at, along, x), _interpolate(at, along, y)
    if config["mode"] == "time":
        new_t = t[0] + at
    elif untimed:
        new_t = np.arange(len(at)) * UNTIMED_STEP_MS
    else:
        new_t = _interpolate(at, along, t)
    return new_x, new_y, new_t


def thin(points: np.ndarray, max_points: int | None) -> np.ndarray:
    """At most ``max_points`` of ``points`` ``(n, 3)``, evenly spaced by index, ends kept."""
    if max_points is None or len(points) <= max_points:
        return points
    return points[np.round(np.linspace(0, len(points) - 1, max_points)).astype(np.int64)]


# ---- the lexicon trie ------------------------------------------------------------------------


class Trie(NamedTuple):
    """``lexicon.npz``: ``children[node, token]`` (-1: none; ``<eos>`` at a word's end points back
    at the node), ``lookahead[node]`` the best word log-probability below a node and
    ``end_log_prob[node]`` that of the word ending there."""

    children: np.ndarray
    lookahead: np.ndarray
    end_log_prob: np.ndarray


def read_trie(path: Path) -> Trie:
    """The arrays of ``lexicon.npz`` the search reads."""
    with np.load(path) as arrays:
        return Trie(arrays["children"], arrays["lookahead"], arrays["end_log_prob"])


def prior_increments(trie: Trie, nodes: np.ndarray) -> np.ndarray:
    """``(N, V)`` float32: how much each next token changes the best word log-probability still
    reachable from each node. Summed along a word (``<eos>`` included) they add up to the word's
    log-probability, so the prior can be added step by step; a token leaving the trie gets -inf."""
    child = trie.children[nodes]
    # The root counts as 0 (not its lookahead), so the first token adds its word's whole look-ahead.
    here = np.where(nodes == 0, np.float32(0.0), trie.lookahead[nodes])
    target = trie.lookahead[np.maximum(child, 0)]
    target[:, 0] = trie.end_log_prob[nodes]
    target[child < 0] = -np.inf
    return target - here[:, None]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of ``(N, V)`` logits, row by row (stable: the row maximum is shifted out)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# ---- the decoder ------------------------------------------------------------------------------


class OnnxDecoder:
    """Decodes swipes with an ONNX folder.

    Parameters
    ----------
    folder : path
        Written by ``python -m swipe.export CHECKPOINT --format onnx --out FOLDER``.
    int8 : bool
        Run the int8 graphs (``*.int8.onnx``).
    threads : int
        onnxruntime's threads per graph (1: the single-swipe latency an app sees on one core).
    beam_size, prior_weight, length_penalty, template_weight : optional
        Override the folder's ``decoding.json``.
    """

    def __init__(self, folder: str | Path, int8: bool = False, threads: int = 1,
                 beam_size: int | None = None, prior_weight: float | None = None,
                 length_penalty: float | None = None, template_weight: float | None = None) -> None:
        folder = Path(folder)
        overrides = {"beam_size": beam_size, "prior_weight": prior_weight,
                     "length_penalty": length_penalty, "template_weight": template_weight}
        # Every file checked first: a bad one is an OnnxFolderError naming the file and field.
        self.export = read_export_folder(folder, int8, threads, overrides)
        manifest = self.manifest = self.export.manifest
        settings = self.export.decoding
        self.settings = settings
        self.beam_size = int(settings["beam_size"])
        self.num_candidates = int(settings["num_candidates"] or self.beam_size)
        self.prior_weight = np.float32(settings["prior_weight"])
        self.length_penalty = float(settings["length_penalty"])
        self.rescorer = (TemplateRescorer(settings["template_weight"], settings["template_prior_weight"])
                         if settings["template_weight"] else None)
        tokenizer = manifest["tokenizer"]
        self.alphabet, self.eos, self.sos = tokenizer["alphabet"], tokenizer["eos_id"], tokenizer["sos_id"]
        self.max_length = int(manifest["max_length"])
        self.resample = manifest["preprocessing"]["resample"]
        self.max_points = manifest["preprocessing"]["max_points"]
        layouts = load_layouts_file(folder / "layouts.json")
        self.layouts: list[Layout] = [layouts[name] for name in manifest["layouts"]]
        self.layout_ids = {name: i for i, name in enumerate(manifest["layouts"])}
        self.trie = read_trie(folder / "lexicon.npz")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        suffix = ".int8.onnx" if int8 else ".onnx"
        graphs = manifest["graphs"]
        self.encoder = ort.InferenceSession(
            str(folder / graphs["encoder"]["file"].replace(".onnx", suffix)), options,
            providers=["CPUExecutionProvider"])
        self.step = ort.InferenceSession(
            str(folder / graphs["decoder_step"]["file"].replace(".onnx", suffix)), options,
            providers=["CPUExecutionProvider"])
        self.encoder_outputs = graphs["encoder"]["outputs"]
        self.step_inputs = graphs["decoder_step"]["inputs"]
        self.per_curve = graphs["decoder_step"]["per_curve_inputs"]
        self.state = graphs["decoder_step"]["state"]

    # -- one batch -------------------------------------------------------------------------------

    def decode_one(self, x: Sequence[float], y: Sequence[float], t: Sequence[float],
                   layout: str) -> list[Candidate]:
        """The candidates of one swipe, best first."""
        return self.decode([Swipe(np.asarray(x), np.asarray(y), np.asarray(t), layout)])[0]

    def decode(self, swipes: Sequence[Swipe]) -> list[list[Candidate]]:
        """The candidates of each swipe, best first (``(score, word)``, higher is better)."""
        if not swipes:
            return []
        encoded = self.encode(swipes)
        rows = self.search(encoded, len(swipes))
        if self.rescorer is None:
            return [[(score, word) for score, word, _ in row] for row in rows]
        out = []
        for swipe, row in zip(swipes, rows, strict=True):
            layout = self.layouts[self.layout_ids[swipe.layout]]
            priors = np.array([self.trie.end_log_prob[node] for _, _, node in row], np.float64)
            candidates = [(score, word) for score, word, _ in row]
            out.append(self.rescorer.rescore(candidates, layout, swipe.x, swipe.y, priors))
        return out

    def points(self, swipe: Swipe) -> np.ndarray:
        """``(n, 3)`` float32 x, y, t of a swipe as the encoder reads them."""
        if swipe.layout not in self.layout_ids:
            known = list(self.layout_ids)
            raise OnnxFolderError(f"layout {swipe.layout!r} is not one of the model's {known}")
        try:
            check_swipe(swipe.x, swipe.y, swipe.t)
        except SwipeError as err:
            raise OnnxFolderError(str(err)) from None
        x, y, t = swipe.x, swipe.y, swipe.t
        if self.resample is not None:
            key_width = self.layouts[self.layout_ids[swipe.layout]].key_width
            x, y, t = resample(x, y, t, key_width, self.resample)
        return thin(np.stack([x, y, t], axis=1).astype(np.float32), self.max_points)

    def encode(self, swipes: Sequence[Swipe]) -> dict[str, np.ndarray]:
        """The encoder's outputs for a batch: per swipe its points, padded with zeros to the
        longest (at least two points: the graph computes derivatives)."""
        curves = [self.points(swipe) for swipe in swipes]
        lengths = np.array([len(c) for c in curves], np.int64)
        points = np.zeros((len(curves), max(2, int(lengths.max())), 3), np.float32)
        for i, c in enumerate(curves):
            points[i, : len(c)] = c
        layout_ids = np.array([self.layout_ids[s.layout] for s in swipes], np.int64)
        outputs = self.encoder.run(None, {"points": points, "lengths": lengths, "layout_ids": layout_ids})
        return dict(zip(self.encoder_outputs, outputs, strict=True))

    def initial_state(self, encoded: dict[str, np.ndarray], num_curves: int) -> dict[str, np.ndarray]:
        """The decoder state of one hypothesis per curve, ``(C, 1, ...)``: zeros (the transformer's
        cache, of no positions yet) or the encoder's output of that name (the RNN's)."""
        state = {}
        for entry in self.state:
            if entry["init"] == "zeros":
                state[entry["input"]] = np.zeros((num_curves, 1, *entry["shape"]), np.float32)
            else:
                state[entry["input"]] = encoded[entry["input"]][:, None]
        return state

    def search(self, encoded: dict[str, np.ndarray], num_curves: int) -> list[list[tuple[float, str, int]]]:
        """Beam search over all curves at once: per curve up to ``num_candidates`` words as
        ``(score, word, trie node)``, best first.

        The hypotheses of the curves still searched sit in a ``(curves, width)`` grid of slots:
        each curve's in rank order, then empty slots (score -inf) up to the most any curve has.
        A hypothesis' score is the sum of its tokens' log-probabilities and prior increments.
        Each step every curve keeps its ``budget`` best one-token extensions (``beam_size``
        minus the words it has finished); an extension by ``<eos>`` finishes a word, scored
        ``score / length ** length_penalty`` (the length counts ``<eos>``).
        """
        v, eos = len(self.alphabet) + 1, self.eos
        active = np.arange(num_curves)  # the curves still searched
        per_curve = {name: encoded[name] for name in self.per_curve}
        state = self.initial_state(encoded, num_curves)
        tokens = np.zeros((num_curves, 1, 0), np.int64)  # each slot's tokens so far
        scores = np.zeros((num_curves, 1))  # float64
        nodes = np.zeros((num_curves, 1), np.int64)  # trie nodes; the root for empty slots
        last = np.full((num_curves, 1), self.sos, np.int64)
        budget = [self.beam_size] * num_curves
        finished: list[list[tuple[float, int, str, int]]] = [[] for _ in range(num_curves)]
        order = 0  # between equal scores, the word finished first ranks first
        for position in range(self.max_length):
            feeds = {"tokens": last, **per_curve, **state}
            logits, *new_state = self.step.run(None, {name: feeds[name] for name in self.step_inputs})
            log_probs = log_softmax(logits.reshape(-1, v))
            # Only tokens that continue towards a lexicon word (<eos> where one ends).
            flat_nodes = nodes.ravel()
            log_probs = np.where(self.trie.children[flat_nodes] >= 0, log_probs, np.float32(-np.inf))
            if self.prior_weight:
                log_probs = log_probs + self.prior_weight * prior_increments(self.trie, flat_nodes)
            width = nodes.shape[1]
            # float64, as `scores`; a curve's choices are indexed slot * V + token.
            expanded = (scores.ravel()[:, None] + log_probs).reshape(len(active), width * v)
            num_tokens = position + 1
            live: list[list[tuple[int, int, float]]] = []  # per active curve: (slot, token, score)
            for a, c in enumerate(active.tolist()):
                row = []
                for index in np.argsort(-expanded[a], kind="stable")[: budget[c]].tolist():
                    score = float(expanded[a, index])
                    if not math.isfinite(score):
                        continue
                    slot, token = divmod(index, v)
                    if token == eos:
                        word = "".join(self.alphabet[i - 1] for i in tokens[a, slot])
                        normalised = score / num_tokens**self.length_penalty if self.length_penalty else score
                        finished[c].append((normalised, order, word, int(nodes[a, slot])))
                        order += 1
                        budget[c] -= 1
                    else:
                        row.append((slot, token, score))
                live.append(row)
            keep = [a for a, row in enumerate(live) if row]
            if not keep or num_tokens >= self.max_length:
                break
            # The next grid: each kept curve's live hypotheses, then empty slots.
            width = max(len(live[a]) for a in keep)
            parent = np.zeros((len(keep), width), np.int64)
            last = np.full((len(keep), width), eos, np.int64)
            scores = np.full((len(keep), width), -np.inf)
            for i, a in enumerate(keep):
                for j, (slot, token, score) in enumerate(live[a]):
                    parent[i, j], last[i, j], scores[i, j] = slot, token, score
            rows = np.array(keep)[:, None]
            tokens = np.concatenate([tokens[rows, parent], last[..., None]], axis=2)
            children = self.trie.children[nodes[rows, parent], last]
            nodes = np.where(np.isfinite(scores), children, 0).astype(np.int64)
            outputs = zip(self.state, new_state, strict=True)
            state = {entry["input"]: out[rows, parent] for entry, out in outputs}
            if len(keep) < len(active):
                per_curve = {name: values[keep] for name, values in per_curve.items()}
                active = active[keep]
        results = []
        for words in finished:
            words.sort(key=lambda item: (-item[0], item[1]))
            results.append([(score, word, node) for score, _, word, node in words[: self.num_candidates]])
        return results


def read_swipes(path: str | Path) -> list[tuple[Swipe, str | None]]:
    """Swipes of a Yandex-style jsonl file (``{"word": ..., "curve": {"x", "y", "t",
    "grid_name"}}`` per line) and their words, if given."""
    out = []
    with open(path, "rb") as f:
        for number, line in numbered_lines(f):  # lines over swipe.formats.MAX_LINE_BYTES are refused
            if not isinstance(line, bytes):
                raise OnnxFolderError(f"{path}:{number}: {line.detail}")
            if not line.strip():
                continue
            try:
                row = loads_json(line)
                curve = row["curve"]  # type: ignore[index]
                x, y, t = check_swipe(curve["x"], curve["y"], curve["t"])
                if not isinstance(curve["grid_name"], str):
                    raise TypeError("'grid_name' must be text")
            except (KeyError, TypeError, ValueError) as err:
                raise OnnxFolderError(f"{path}:{number}: not a swipe row ({err})") from None
            out.append((Swipe(x, y, t, curve["grid_name"]), row.get("word")))  # type: ignore[union-attr]
    return out
