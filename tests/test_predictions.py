import os
import pickle
import pickletools

import numpy as np
import pytest

from swipe.predictions import Predictions, PredictionsError, read_predictions, write_predictions

METADATA = {
    "model": {"encoder": {"d_model": 8}},
    "weights": "runs/a/model.pt",
    "weights_sha256": "ab" * 32,
    "generator": "beam",
    "generator_options": {"beam_size": 4, "lexicon": "en"},
    "layout_names": ["qwerty_en"],
    "data_file": "val.jsonl",
    "split": "val",
}


def sample() -> Predictions:
    return Predictions(
        candidates=[[(-0.1, "cat"), (-2.5, "car")], []],
        targets=["cat", None],
        layouts=["qwerty_en", "qwerty_en"],
        metadata=METADATA,
    )


def test_round_trip(tmp_path):
    path = tmp_path / "preds.pkl"
    write_predictions(path, sample())
    back = read_predictions(path)
    assert back == sample()
    assert back.num_with_targets == 1
    assert back.candidates[0][0] == (-0.1, "cat")
    assert os.listdir(tmp_path) == ["preds.pkl"]  # no temporary file left behind


def test_file_is_the_documented_plain_dict(tmp_path):
    path = tmp_path / "preds.pkl"
    write_predictions(path, sample())
    with open(path, "rb") as f:
        data = pickle.load(f)
    assert data == {
        "format": "swipe-predictions",
        "version": 2,
        "num_curves": 2,
        "candidate_counts": np.array([2, 0], "<u4").tobytes(),
        "scores": np.array([-0.1, -2.5], "<f8").tobytes(),
        "words": "catcar",
        "word_ends": np.array([3, 6], "<i8").tobytes(),
        "has_target": bytes([1, 0]),
        "targets": "cat",
        "target_ends": np.array([3], "<i8").tobytes(),
        "layout_names": ["qwerty_en"],
        "layout_ids": np.array([0, 0], "<u4").tobytes(),
        "metadata": METADATA,
    }


def test_version_1_files_are_still_read(tmp_path):
    path = tmp_path / "old.pkl"
    old = {"format": "swipe-predictions", "version": 1, "candidates": [[(-0.1, "cat"), (-2.5, "car")], []],
           "targets": ["cat", None], "layouts": ["qwerty_en", "qwerty_en"], "metadata": METADATA}
    path.write_bytes(pickle.dumps(old))
    assert read_predictions(path) == sample()


@pytest.mark.parametrize(
    "candidates, message",
    [
        ([[("cat", -0.1)], []], r"candidates\[0\]\[0\]: score must be"),
        ([[(-0.1,)], []], r"candidates\[0\]\[0\]: expected a \(score"),
        ([[(float("nan"), "a")], []], "score is NaN"),
        ([[]], "one entry per curve"),
    ],
)
def test_malformed_version_1_contents_named(tmp_path, candidates, message):
    path = tmp_path / "bad.pkl"
    old = {"format": "swipe-predictions", "version": 1, "candidates": candidates, "targets": ["cat", None],
           "layouts": ["qwerty_en"] * 2, "metadata": METADATA}
    path.write_bytes(pickle.dumps(old))
    with pytest.raises(PredictionsError, match=f"bad\\.pkl: .*{message}"):
        read_predictions(path)


def test_a_large_split_stays_a_few_objects(tmp_path):
    # 20,000 curves of 16 candidates: over the object limit as lists, a few dozen objects as columns.
    n = 20_000
    preds = Predictions([[(-float(j), f"w{j}") for j in range(16)] for _ in range(n)], ["w0"] * n,
                        ["qwerty_en"] * n, METADATA)
    path = tmp_path / "big.pkl"
    write_predictions(path, preds)
    assert sum(1 for _ in pickletools.genops(path.read_bytes())) < 200
    assert read_predictions(path) == preds


def test_numpy_values_become_plain(tmp_path):
    md = dict(METADATA, generator_options={"beam_size": np.int64(4), "alpha": np.float32(0.5)})
    preds = Predictions([[(np.float32(-0.5), np.str_("cat"))]], ["cat"], ["qwerty_en"], md)
    path = tmp_path / "preds.pkl"
    write_predictions(path, preds)  # would fail on read if numpy types had been pickled
    back = read_predictions(path)
    assert type(back.candidates[0][0][0]) is float
    assert back.metadata["generator_options"] == {"beam_size": 4, "alpha": 0.5}


def test_no_overwrite_unless_asked(tmp_path):
    path = tmp_path / "preds.pkl"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="preds.pkl"):
        write_predictions(path, sample())
    assert path.read_bytes() == b"precious"
    write_predictions(path, sample(), overwrite=True)
    assert read_predictions(path) == sample()


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    payload = sample().to_dict()
    payload["metadata"] = dict(payload["metadata"], model=_Exploit(str(marker)))
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(PredictionsError, match=r"evil\.pkl: unsafe or corrupt.*refusing to load global"):
        read_predictions(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_any_global_refused(tmp_path, protocol):
    from collections import OrderedDict

    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(OrderedDict(a=1), protocol=protocol))
    with pytest.raises(PredictionsError, match="refusing to load global"):
        read_predictions(path)


def test_corrupt_or_missing_files_name_the_file(tmp_path):
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(sample().to_dict())[:-20])
    with pytest.raises(PredictionsError, match=r"p\.pkl: .*corrupt"):
        read_predictions(path)
    with pytest.raises(PredictionsError, match=r"missing\.pkl: cannot read"):
        read_predictions(tmp_path / "missing.pkl")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: [1, 2], "not a predictions file"),
        (lambda d: dict(d, format="other"), "not a predictions file"),
        (lambda d: dict(d, version=3), "unsupported predictions version 3"),
        (lambda d: dict(d, version=True), "unsupported predictions version True"),
        (lambda d: {k: v for k, v in d.items() if k != "layout_ids"}, "missing keys \\['layout_ids'\\]"),
        (lambda d: dict(d, extra=1), "unexpected keys \\['extra'\\]"),
        (lambda d: dict(d, num_curves=3), "candidate_counts: expected 3 values, got 2"),
        (lambda d: dict(d, num_curves="2"), "num_curves: expected a count"),
        (lambda d: dict(d, scores=b"\0" * 12), "scores: expected bytes of float64"),
        (lambda d: dict(d, scores=[-0.1, -2.5]), "scores: expected bytes of float64"),
        (lambda d: dict(d, scores=np.array([np.nan, 1.0]).tobytes()), "score is NaN"),
        (lambda d: dict(d, words=7), "words: expected a string"),
        (lambda d: dict(d, word_ends=np.array([3, 2], "<i8").tobytes()), "word_ends: offsets must rise"),
        (lambda d: dict(d, word_ends=np.array([3, 9], "<i8").tobytes()), "word_ends: offsets must rise"),
        (lambda d: dict(d, has_target=bytes([2, 0])), "has_target: expected 0 or 1"),
        (lambda d: dict(d, has_target=bytes([1, 1])), "target_ends: expected 2 values, got 1"),
        (lambda d: dict(d, layout_ids=np.array([0, 5], "<u4").tobytes()), "layout_ids: an id beyond"),
        (lambda d: dict(d, layout_names=[3]), "layout_names: expected a list"),
        (lambda d: dict(d, metadata={}), "metadata.model: missing required key"),
        (lambda d: dict(d, metadata=dict(METADATA, split=None)), "metadata.split"),
    ],
)
def test_malformed_contents_named(tmp_path, change, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(change(sample().to_dict())))
    with pytest.raises(PredictionsError, match=f"bad\\.pkl: .*{message}"):
        read_predictions(path)


def test_non_plain_metadata_refused_when_built():
    with pytest.raises(PredictionsError, match="metadata.generator_options.fn"):
        Predictions([], [], [], dict(METADATA, generator_options={"fn": print}))
