import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data import WIDE, random_rows, write

from swipe.config import ConfigError
from swipe.data import SwipeCollator, SwipeDataset, SwipeItem, build_dataset
from swipe.data.resample import UNTIMED_STEP_MS, ResampleConfig, resample_curve
from swipe.keyboard import Layout
from swipe.tokenizers import CharTokenizer
from swipe.training.config import load_train_config

ROOT = Path(__file__).resolve().parents[1]
TINY = Layout.from_rows("tiny", "abc,def", 300, 200)  # keys 100 x 100 px


def test_time_grid_keeps_the_ends_and_interpolates_positions():
    # 0 -> 100 px in 50 ms, then a gap of 100 ms while the finger rests at 100.
    x, y, t = resample_curve([0, 100, 100], [0, 0, 40], [1000, 1050, 1150], 100.0,
                             ResampleConfig("time", 20.0))
    np.testing.assert_allclose(t, [1000, 1020, 1040, 1060, 1080, 1100, 1120, 1140, 1150])
    np.testing.assert_allclose(x, [0, 40, 80, 100, 100, 100, 100, 100, 100])
    np.testing.assert_allclose(y, [0, 0, 0, 4, 12, 20, 28, 36, 40])


def test_time_grid_with_repeated_timestamps_switches_at_them():
    x, _, t = resample_curve([0, 30, 60, 90], [0, 0, 0, 0], [0, 10, 10, 20], 100.0,
                             ResampleConfig("time", 5.0))
    np.testing.assert_allclose(t, [0, 5, 10, 15, 20])
    np.testing.assert_allclose(x, [0, 15, 60, 75, 90])


def test_path_grid_spaces_points_evenly_along_the_path():
    # An L: 100 px right, then 50 px down; steps of a quarter key (25 px).
    x, y, t = resample_curve([0, 100, 100, 100], [0, 0, 0, 50], [0, 10, 90, 100], 100.0,
                             ResampleConfig("path", 0.25))
    np.testing.assert_allclose(x, [0, 25, 50, 75, 100, 100, 100])
    np.testing.assert_allclose(y, [0, 0, 0, 0, 0, 25, 50])
    steps = np.hypot(np.diff(x), np.diff(y))
    np.testing.assert_allclose(steps, 25.0)
    # Times follow the path: the rest at the corner (10 -> 90 ms) is skipped over.
    np.testing.assert_allclose(t, [0, 2.5, 5, 7.5, 90, 95, 100])


def test_untimed_path_uses_a_uniform_clock():
    config = ResampleConfig("path", 0.5, keep_time=False)
    x, _, t = resample_curve([0, 60, 120], [0, 0, 0], [0, 500, 505], 100.0, config)
    np.testing.assert_allclose(x, [0, 50, 100, 120])
    np.testing.assert_allclose(t, np.arange(4) * UNTIMED_STEP_MS)


def test_curves_that_do_not_move_or_take_no_time_are_kept():
    tap = ([5, 5, 5], [7, 7, 7], [0, 30, 60])
    for config in (ResampleConfig("path", 0.25), ResampleConfig("path", 0.25, keep_time=False)):
        x, y, t = resample_curve(*tap, 100.0, config)
        np.testing.assert_allclose(x, tap[0])
        assert len(t) == 3
    x, y, t = resample_curve([1], [2], [3], 100.0, ResampleConfig("time", 10.0))
    assert x.tolist() == [1] and y.tolist() == [2] and t.tolist() == [3]
    x, _, t = resample_curve([0, 50], [0, 0], [10, 10], 100.0, ResampleConfig("time", 10.0))
    assert x.tolist() == [0, 50] and t.tolist() == [10, 10]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"mode": "space"}, "mode"),
        ({"step": 0.0}, "step"),
        ({"mode": "time", "keep_time": False}, "keep_time"),
    ],
)
def test_bad_settings_are_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        ResampleConfig(**fields)


def test_collator_resamples_and_recomputes_nearest_keys():
    tok = CharTokenizer.from_layouts([TINY])
    scale = 4.0
    # From the centre of 'a' to the centre of 'c' in two events.
    x, y, t = np.array([50.0, 250.0]), np.array([50.0, 50.0]), np.array([0.0, 40.0], np.float32)
    item = SwipeItem(0, np.rint(x * scale).astype(np.int16), np.rint(y * scale).astype(np.int16), t,
                     TINY.nearest_keys(x, y), np.asarray(tok.encode("abc"), np.uint8), 0, "tiny",
                     scale, tok.alphabet)
    plain = SwipeCollator([TINY], tok)([item])
    batch = SwipeCollator([TINY], tok, resample=ResampleConfig("path", 1.0))([item])
    assert plain.swipe.lengths.tolist() == [2]
    assert batch.swipe.lengths.tolist() == [3]
    torch.testing.assert_close(batch.swipe.coords[0, :, 0], torch.tensor([50.0, 150.0, 250.0]))
    torch.testing.assert_close(batch.swipe.features[0, :, 2], torch.tensor([0.0, 0.02, 0.04]))
    assert batch.swipe.nearest_keys[0].tolist() == [TINY.key_index(k) for k in "abc"]
    assert torch.equal(batch.target, plain.target)
    # Thinning applies after resampling.
    thin = SwipeCollator([TINY], tok, max_points=2, resample=ResampleConfig("path", 1.0))([item])
    assert thin.swipe.lengths.tolist() == [2]


def test_training_config_reads_resample_strictly(tmp_path):
    config = json.loads((ROOT / "configs/ablations/transformer_weighted_path_untimed_en.json").read_text())
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config))
    assert load_train_config(path).data.resample == ResampleConfig("path", 0.25, keep_time=False)
    config["data"]["resample"]["stride"] = 2
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="stride"):
        load_train_config(path)


@pytest.mark.parametrize(
    "config",
    [None, ResampleConfig("time", 7.0), ResampleConfig("path", 0.25),
     ResampleConfig("path", 0.5, keep_time=False)],
)
def test_dataset_predicts_the_collators_resampled_lengths(tmp_path, config):
    rows = random_rows(60, seed=3)
    rows.append(json.dumps({"word": "a", "curve": {"x": [5, 5, 5], "y": [7, 7, 7], "t": [0, 30, 60],
                                                   "grid": TINY.to_grid()}}))  # a tap that does not move
    rows.append(json.dumps({"word": "a", "curve": {"x": [5], "y": [7], "t": [0], "grid": TINY.to_grid()}}))
    build_dataset([write(tmp_path / "a.jsonl", rows)], tmp_path / "ds")
    dataset = SwipeDataset(tmp_path / "ds", layout_names=["wide", "tiny"])
    collator = SwipeCollator([WIDE, TINY], dataset.tokenizer, resample=config)
    lengths = [int(collator.swipes([dataset[i]])[0].lengths[0]) for i in range(len(dataset))]
    assert dataset.resampled_num_points(config).tolist() == lengths
    # Chunked over a few points at a time (a curve longer than a chunk is a chunk of its own), on a
    # dataset opened anew: each dataset counts once per config.
    fresh = SwipeDataset(tmp_path / "ds", layout_names=["wide", "tiny"])
    assert fresh.resampled_num_points(config, chunk_points=5).tolist() == lengths
