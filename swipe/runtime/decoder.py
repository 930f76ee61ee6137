"""The reference decoder of an ONNX folder (``python -m swipe.export CKPT --format onnx --out DIR``).

Written to be ported line by line: it imports numpy, onnxruntime and the numpy-only decoding
pipeline of this package (:mod:`swipe.decoding.pipeline`: preprocessing, beam search, views,
template candidates and rescoring), never torch. This module is the pipeline's ONNX backend: the
encoder graph runs once per batch of swipe views, the decoder-step graph once per output
character for all hypotheses, the decoder-score graph (where the folder has one) once per batch of
given words to score. With the folder's ``decoding.json`` (the model's own) it gives the
candidates of ``predict.py`` and :func:`swipe.load_decoder` with the same model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from swipe.decoding.pipeline import (
    Pipeline,
    Preprocessing,
    Resample,
    Settings,
    Swipe,
    Trie,
    Vocabulary,
    log_softmax,
)
from swipe.decoding.user_words import Candidate, UserWords, VerbatimSettings, offer_verbatim, verbatim
from swipe.formats import SwipeError, check_swipe, loads_json, numbered_lines
from swipe.keyboard import Layout
from swipe.runtime.folder import OnnxFolderError, read_export_folder

__all__ = ["OnnxBackend", "OnnxDecoder", "OnnxFolderError", "Swipe", "read_settings", "read_swipes"]


class OnnxBackend:
    """The pipeline's backend (:class:`swipe.decoding.pipeline.Backend`) on the folder's graphs.

    The memory is a dict of the encoder's outputs, one row per curve; the state a dict of the
    decoder step's state inputs, ``(C, K, ...)``. ``decoder_score``: the graph that scores given
    words in one call (None: :meth:`score` returns None and the pipeline steps).
    """

    def __init__(self, encoder: ort.InferenceSession, decoder_step: ort.InferenceSession,
                 graphs: dict[str, Any], decoder_score: ort.InferenceSession | None = None) -> None:
        self.encoder, self.decoder_step, self.decoder_score = encoder, decoder_step, decoder_score
        self.score_inputs = graphs["decoder_score"]["inputs"] if decoder_score is not None else []
        self.encoder_outputs = graphs["encoder"]["outputs"]
        self.step_inputs = graphs["decoder_step"]["inputs"]
        self.per_curve = graphs["decoder_step"]["per_curve_inputs"]
        self.state = graphs["decoder_step"]["state"]

    def encode(self, points: np.ndarray, lengths: np.ndarray,
               layout_ids: np.ndarray) -> dict[str, np.ndarray]:
        if points.shape[1] < 2:  # the graph computes derivatives: at least two (padded) points
            points = np.concatenate([points, np.zeros_like(points)], axis=1)
        outputs = self.encoder.run(None, {"points": points, "lengths": lengths, "layout_ids": layout_ids})
        return dict(zip(self.encoder_outputs, outputs, strict=True))

    def take(self, memory: dict[str, np.ndarray], curves: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[curves] for name, values in memory.items()}

    def step(self, tokens: np.ndarray, memory: dict[str, np.ndarray],
             state: dict[str, np.ndarray] | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if state is None:
            # One hypothesis per curve: zeros (the transformer's cache of no positions yet) or the
            # encoder's output of that name (the RNN's first state).
            state = {entry["input"]: np.zeros((len(tokens), 1, *entry["shape"]), np.float32)
                     if entry["init"] == "zeros" else memory[entry["input"]][:, None] for entry in self.state}
        feeds = {"tokens": tokens, **{name: memory[name] for name in self.per_curve}, **state}
        logits, *new_state = self.decoder_step.run(None, {name: feeds[name] for name in self.step_inputs})
        new = {entry["input"]: out for entry, out in zip(self.state, new_state, strict=True)}
        return log_softmax(logits), new

    def score(self, tokens: np.ndarray, memory: dict[str, np.ndarray]) -> np.ndarray | None:
        """Log-probabilities ``(C, W, L, V)`` of the token after each teacher-forced input
        ``tokens`` ``(C, W, L)``, the ``W`` words of curve ``c`` reading row ``c`` of the memory;
        None without a decoder-score graph."""
        if self.decoder_score is None:
            return None
        feeds = {"tokens": tokens, **memory}
        logits, = self.decoder_score.run(None, {name: feeds[name] for name in self.score_inputs})
        return log_softmax(logits)

    def reorder(self, state: dict[str, np.ndarray], curves: np.ndarray | None,
                parents: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.arange(len(parents)) if curves is None else curves
        slots = np.maximum(parents, 0)  # an empty slot copies any hypothesis: it is never read
        return {name: values[rows[:, None], slots] for name, values in state.items()}


def read_settings(values: dict[str, Any]) -> Settings:
    """The pipeline's settings from the values of a folder's ``decoding.json``."""
    values = dict(values)
    values.update(values.pop("not_applied", None) or {})  # folders exported before every stage ran here
    known = {field.name for field in dataclasses.fields(Settings)}
    chosen = {name: value for name, value in values.items() if name in known and value is not None}
    for name in ("x_scales", "wide_x_scales"):
        if name in chosen:
            chosen[name] = tuple(chosen[name])
    return Settings(**chosen)


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
    settings : Settings, optional
        Default: the folder's ``decoding.json``.
    beam_size, prior_weight, length_penalty, template_weight : optional
        Override those of the settings.
    user_data : path, optional
        The user's words, removed words and learned choices (:mod:`swipe.decoding.user_words`):
        read if the file exists, written again after each ``add_words``, ``remove_words``, ``learn``.
    verbatim : VerbatimSettings, optional
        Offer the verbatim candidate, as :func:`swipe.load_decoder` (None: never).
    """

    def __init__(self, folder: str | Path, int8: bool = False, threads: int = 1,
                 settings: Settings | None = None, beam_size: int | None = None,
                 prior_weight: float | None = None, length_penalty: float | None = None,
                 template_weight: float | None = None, user_data: str | Path | None = None,
                 verbatim: VerbatimSettings | None = None) -> None:
        folder = Path(folder)
        overrides = {"beam_size": beam_size, "prior_weight": prior_weight,
                     "length_penalty": length_penalty, "template_weight": template_weight}
        # Every file checked first: a bad one is an OnnxFolderError naming the file and field.
        export = self.export = read_export_folder(folder, int8, threads, overrides)
        self.manifest = export.manifest
        if settings is None:
            settings = read_settings(export.decoding)  # the overrides applied
        self.settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        vocabulary = Vocabulary(export.alphabet, export.eos_id, export.sos_id)
        self.layouts: list[Layout] = export.layouts
        resample = export.resample
        prep = Preprocessing(None if resample is None else Resample(**resample), export.max_points)
        lexicon = export.lexicon
        if "words" not in lexicon or "word_ids" not in lexicon:
            raise OnnxFolderError(f"{folder / 'lexicon.npz'}: no words: export the model again")
        trie = Trie(lexicon["children"], lexicon["lookahead"], lexicon["end_log_prob"], lexicon["word_ids"],
                    lexicon["words"].tolist())
        self.user_words = UserWords(trie, export.alphabet, self.layouts, path=user_data)
        self.backend = OnnxBackend(export.encoder, export.decoder_step, self.manifest["graphs"],
                                   export.decoder_score)
        self.pipeline = Pipeline(self.backend, vocabulary, self.layouts, prep, self.settings, trie)
        self.verbatim_settings = verbatim

    def decode_one(self, x: Sequence[float], y: Sequence[float], t: Sequence[float],
                   layout: str) -> list[Candidate]:
        """The candidates of one swipe, best first."""
        return self.decode([Swipe(np.asarray(x), np.asarray(y), np.asarray(t), layout)])[0]

    def decode(self, swipes: Sequence[Swipe]) -> list[list[Candidate]]:
        """The candidates of each swipe, best first: ``(score, word)`` :class:`Candidate`
        tuples, higher is better (the verbatim candidate, ``in_lexicon`` False, where
        ``verbatim`` settings offer it)."""
        for swipe in swipes:
            if swipe.layout not in self.pipeline.layout_ids:
                known = list(self.pipeline.layout_ids)
                raise OnnxFolderError(f"layout {swipe.layout!r} is not one of the model's {known}")
            try:
                check_swipe(swipe.x, swipe.y, swipe.t)
            except SwipeError as err:
                raise OnnxFolderError(str(err)) from None
        self.user_words.sync()
        return offer_verbatim(self.pipeline, swipes, self.pipeline.decode(swipes), self.verbatim_settings)

    def add_words(self, words: str | Sequence[str], frequency: float | None = None) -> None:
        """As :meth:`swipe.Decoder.add_words`: ``words`` can be output from the next decode on."""
        self.user_words.add(words, frequency)

    def remove_words(self, words: str | Sequence[str]) -> None:
        """As :meth:`swipe.Decoder.remove_words`."""
        self.user_words.remove(words)

    def learn(self, word: str) -> None:
        """As :meth:`swipe.Decoder.learn`: similar swipes rank ``word`` higher."""
        self.user_words.learn(word)

    def verbatim(self, swipes: Sequence[Swipe]) -> list[str]:
        """As :meth:`swipe.Decoder.verbatim`: each swipe's best string without the lexicon."""
        return verbatim(self.pipeline, swipes)


def read_swipes(path: str | Path) -> list[tuple[Swipe, str | None]]:
    """Swipes of a Yandex-style jsonl file (``{"word": ..., "curve": {"x", "y", "t",
    "grid_name"}}`` per line, or the layout inline as ``"grid"``, named by its ``grid_name``) and
    their words, if given."""
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
                name = curve["grid_name"] if "grid_name" in curve else curve["grid"]["grid_name"]
                if not isinstance(name, str):
                    raise TypeError("'grid_name' must be text")
            except (KeyError, TypeError, ValueError) as err:
                raise OnnxFolderError(f"{path}:{number}: not a swipe row ({err})") from None
            out.append((Swipe(x, y, t, name), row.get("word")))  # type: ignore[union-attr]
    return out
