import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from swipe.batch import FEATURE_NAMES
from swipe.data import (
    MIN_DT,
    DatasetError,
    LengthBucketBatchSampler,
    SwipeCollator,
    SwipeDataset,
    build_dataset,
    read_manifest,
)
from swipe.data.__main__ import main
from swipe.formats import BadRowError, read_curves
from swipe.keyboard import Layout, bundled_layout
from swipe.tokenizers import CharTokenizer

TINY = Layout.from_rows("tiny", "abc,def", 300, 200)  # keys 100 x 100 px
WIDE = Layout.from_rows("wide", "abcd,ef", 400, 100)  # keys 100 x 50 px


def jsonl_row(word, x, y, t, layout=TINY, inline=True):
    curve = {"x": list(x), "y": list(y), "t": list(t)}
    if inline:
        curve["grid"] = layout.to_grid()
    else:
        curve["grid_name"] = layout.name
    row = {"curve": curve} if word is None else {"word": word, "curve": curve}
    return json.dumps(row, ensure_ascii=False)


def write(path: Path, lines) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def random_rows(n, seed=0, layouts=(TINY, WIDE), words=("abc", "fed", "bad", "face", "a")):
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        layout = layouts[i % len(layouts)]
        k = int(rng.integers(1, 30))
        x = np.round(rng.uniform(-20, layout.width + 20, k), 2)
        y = np.round(rng.uniform(-20, layout.height + 20, k), 2)
        t = np.cumsum(rng.integers(0, 20, k)) + 1000.5
        lines.append(jsonl_row(words[i % len(words)], x.tolist(), y.tolist(), t.tolist(), layout))
    return lines


@pytest.fixture
def source(tmp_path):
    return write(tmp_path / "train.jsonl", random_rows(300))


def test_round_trip(tmp_path, source):
    manifest = build_dataset([source], tmp_path / "ds", chunk_size=64)
    ds = SwipeDataset(tmp_path / "ds")
    curves = list(read_curves(source))
    assert len(ds) == len(curves) == manifest.num_curves == 300
    assert ds.has_targets and manifest.num_targets == 300
    assert [layout.name for layout in ds.layouts] == ["tiny", "wide"]
    assert ds.layouts == [TINY, WIDE]
    assert ds.tokenizer == CharTokenizer.from_layouts([TINY, WIDE])
    for i, curve in enumerate(curves):
        item = ds[i]
        assert item.index == i and item.x.dtype == np.int16 and item.chars.dtype == np.uint8
        x, y = ds.coords(i)
        np.testing.assert_allclose(x, curve.x, atol=0.125 + 1e-4)
        np.testing.assert_allclose(y, curve.y, atol=0.125 + 1e-4)
        np.testing.assert_allclose(item.t, curve.t - curve.t[0], rtol=1e-6)
        layout = ds.layouts[item.layout_id]
        assert layout.name == curve.grid_name
        np.testing.assert_array_equal(item.nearest_keys, layout.nearest_keys(x, y))
        assert ds.word(i) == curve.word
        assert ds.tokenizer.decode(item.chars.tolist()) == curve.word
    np.testing.assert_array_equal(ds.num_points, [len(c.x) for c in curves])


def test_size_on_disk(tmp_path, source):
    manifest = build_dataset([source], tmp_path / "ds")
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "ds").iterdir()}
    arrays = sum(size for name, size in sizes.items() if name.endswith(".bin"))
    assert arrays == manifest.num_bytes
    per_curve = (arrays - 9 * manifest.num_points) / manifest.num_curves
    assert per_curve <= 32
    # 9 bytes a point; two int64 offsets (n + 1 each), a layout byte and the word's bytes a curve.
    assert arrays - (17 * manifest.num_curves + 16) - manifest.num_chars == 9 * manifest.num_points


def test_test_rows_without_words(tmp_path):
    src = write(
        tmp_path / "test.jsonl", [jsonl_row(None, [1, 2], [3, 4], [0, 5]), jsonl_row("ab", [5], [5], [0])]
    )
    build_dataset([src], tmp_path / "ds")
    ds = SwipeDataset(tmp_path / "ds")
    assert not ds.has_targets
    assert ds.word(0) is None and ds.word(1) == "ab"
    batch = SwipeCollator(ds.layouts, ds.tokenizer)([ds[0], ds[1]])
    tok = ds.tokenizer
    assert batch.decoder_input.tolist() == [[tok.sos_id, tok.pad_id, tok.pad_id], [tok.sos_id, 1, 2]]
    assert batch.target.tolist() == [[tok.eos_id, tok.pad_id, tok.pad_id], [1, 2, tok.eos_id]]
    assert batch.tokens_pad_mask.tolist() == [[False, True, True], [False, False, False]]


def test_default_alphabet_adds_characters_typed_on_another_key(tmp_path):
    default = bundled_layout("default")
    src = write(
        tmp_path / "ru.jsonl",
        [
            jsonl_row("ёж", [100, 200], [100, 200], [0, 9], default),
            jsonl_row("съел", [1, 2], [1, 2], [0, 1], default),
        ],
    )
    manifest = build_dataset([src], tmp_path / "ds")
    base = CharTokenizer.from_layouts([default]).alphabet
    assert "ё" not in base and "ъ" not in base
    assert manifest.alphabet == base + "ъё"  # appended in Unicode order
    ds = SwipeDataset(tmp_path / "ds")
    assert [ds.word(0), ds.word(1)] == ["ёж", "съел"]
    assert manifest.char_counts[manifest.alphabet.index("ё")] == 1


def test_characters_that_cannot_be_typed_are_bad_rows(tmp_path):
    src = write(tmp_path / "a.jsonl", [jsonl_row("abc", [1], [1], [0]), jsonl_row("ab1", [1], [1], [0])])
    with pytest.raises(
        BadRowError, match=r"a\.jsonl:2: word 'ab1': character '1' cannot be typed on layout 'tiny'"
    ):
        build_dataset([src], tmp_path / "ds")
    manifest = build_dataset([src], tmp_path / "ds", skip_bad_rows=True)
    assert manifest.num_curves == 1 and manifest.skipped == {"bad character": 1}
    assert manifest.alphabet == "abcdef"  # a skipped row's characters do not enter the alphabet
    with pytest.raises(BadRowError, match=r"a\.jsonl:1: word 'abc': character 'c' is not in the alphabet"):
        build_dataset([src], tmp_path / "ds2", alphabet="ab1")
    manifest = build_dataset([src], tmp_path / "ds3", alphabet="cba1")
    assert manifest.alphabet == "cba1"
    assert SwipeDataset(tmp_path / "ds3")[0].chars.tolist() == [3, 2, 1]


def test_coordinates_out_of_int16_range_are_bad_rows(tmp_path):
    src = write(tmp_path / "a.jsonl", [jsonl_row("ab", [1], [1], [0]), jsonl_row("ab", [9000], [1], [0])])
    with pytest.raises(BadRowError, match=r"a\.jsonl:2: coordinate out of range"):
        build_dataset([src], tmp_path / "ds")
    assert build_dataset([src], tmp_path / "ds", skip_bad_rows=True).skipped == {"coordinate out of range": 1}


def test_reader_bad_rows_are_skipped_and_recorded(tmp_path):
    lines = random_rows(20)
    lines[5] = "{broken"
    lines[12] = jsonl_row("ab", [1, 2], [1, 2], [5, 1])
    src = write(tmp_path / "a.jsonl", lines)
    with pytest.raises(BadRowError, match=r"a\.jsonl:6: broken JSON"):
        build_dataset([src], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    manifest = build_dataset([src], tmp_path / "ds", skip_bad_rows=True, chunk_size=4)
    assert manifest.num_curves == 18
    assert manifest.skipped == {"broken JSON": 1, "time decreases": 1}


def test_multiple_sources_and_grid_names(tmp_path):
    grids = tmp_path / "grids.json"
    grids.write_text(json.dumps({"wide": WIDE.to_grid()}), encoding="utf-8")
    a = write(tmp_path / "a.jsonl", [jsonl_row("ab", [1], [1], [0], TINY)])
    b = write(tmp_path / "b.jsonl", [jsonl_row("fe", [1], [1], [0], WIDE, inline=False)])
    manifest = build_dataset([a, b], tmp_path / "ds", layouts=grids)
    assert [g["grid_name"] for g in manifest.layouts] == ["tiny", "wide"]
    assert [Path(s.path).name for s in manifest.sources] == ["a.jsonl", "b.jsonl"]
    ds = SwipeDataset(tmp_path / "ds")
    assert [ds[0].layout_id, ds[1].layout_id] == [0, 1]
    manifest = build_dataset([a, b], tmp_path / "ds2", layouts={"wide": WIDE})
    assert manifest.num_curves == 2


def test_existing_output_is_refused_unless_overwrite(tmp_path, source):
    out = tmp_path / "ds"
    build_dataset([source], out)
    with pytest.raises(FileExistsError, match="overwrite"):
        build_dataset([source], out)
    small = write(tmp_path / "small.jsonl", random_rows(7))
    assert build_dataset([small], out, overwrite=True).num_curves == 7
    assert len(SwipeDataset(out)) == 7
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not part of a swipe dataset"):
        build_dataset([source], foreign, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "mine", "small.jsonl", "train.jsonl"]


def test_failed_build_leaves_nothing_behind(tmp_path, source):
    out = tmp_path / "ds"
    build_dataset([source], out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    bad = write(tmp_path / "bad.jsonl", random_rows(50) + ["{broken"])
    with pytest.raises(BadRowError):
        build_dataset([bad], out, overwrite=True)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # old dataset intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "ds", "train.jsonl"]
    with pytest.raises(DatasetError, match="no curves"):
        build_dataset([write(tmp_path / "empty.jsonl", [])], tmp_path / "ds_empty")
    assert not (tmp_path / "ds_empty").exists()


def test_stale_and_partial_datasets_are_refused(tmp_path, source):
    out = tmp_path / "ds"
    build_dataset([source], out)
    SwipeDataset(out)
    # A source that changed since the build.
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    with pytest.raises(DatasetError, match="changed since the dataset was built.*--overwrite"):
        SwipeDataset(out)
    assert len(SwipeDataset(out, check_sources=False)) == 300
    build_dataset([source], out, overwrite=True)
    # A source that is gone does not make the dataset unusable.
    moved = source.rename(tmp_path / "moved.jsonl")
    assert len(SwipeDataset(out)) == 300
    moved.rename(source)
    # A damaged array (same size, other bytes) fails the checksum.
    data = bytearray((out / "x.bin").read_bytes())
    data[0] ^= 0xFF
    (out / "x.bin").write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"x\.bin: checksum mismatch"):
        SwipeDataset(out)
    SwipeDataset(out, verify=False)
    # A truncated array.
    (out / "t.bin").write_bytes((out / "t.bin").read_bytes()[:-4])
    with pytest.raises(DatasetError, match=r"t\.bin: .* bytes, expected .*partial"):
        SwipeDataset(out, verify=False)
    # Another format version.
    build_dataset([source], out, overwrite=True)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="format version 99.*rebuild"):
        SwipeDataset(out)
    # No manifest at all.
    (out / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="no manifest.json.*partial"):
        SwipeDataset(out)
    with pytest.raises(DatasetError, match="no such dataset"):
        read_manifest(tmp_path / "nowhere")


def test_layout_names_and_tokenizer_remapping(tmp_path, source):
    out = tmp_path / "ds"
    build_dataset([source], out)
    plain = SwipeDataset(out)
    ds = SwipeDataset(out, layout_names=["qwerty_en", "wide", "tiny"])
    assert ds.layouts[0] is None and ds.layouts[1] == WIDE and ds.layouts[2] == TINY
    for i in range(10):
        assert ds[i].layout_name == plain[i].layout_name
        assert ds.layouts[ds[i].layout_id].name == plain.layouts[plain[i].layout_id].name
    with pytest.raises(DatasetError, match="layout 'wide' of the dataset is not among"):
        SwipeDataset(out, layout_names=["tiny"])
    other = CharTokenizer("fedcbaxyz")
    ds = SwipeDataset(out, tokenizer=other)
    assert ds.tokenizer is other
    for i in range(10):
        assert other.decode(ds[i].chars.tolist()) == plain.word(i)
        assert ds[i].chars.dtype == np.uint8
    with pytest.raises(DatasetError, match="character 'e' .* not in the tokenizer"):
        SwipeDataset(out, tokenizer=CharTokenizer("abcdf"))


def test_pickling_sends_the_path_not_the_arrays(tmp_path, source):
    out = tmp_path / "ds"
    build_dataset([source], out)
    ds = SwipeDataset(out, layout_names=["wide", "tiny"])
    data = pickle.dumps(ds)
    assert len(data) < 20_000
    copy = pickle.loads(data)
    assert copy[5].layout_id == ds[5].layout_id
    np.testing.assert_array_equal(copy[5].x, ds[5].x)


def items_for(curves, layouts, tokenizer, scale=4.0):
    """Dataset items built by hand: curves as (word, x, y, t, layout_id)."""
    from swipe.data import SwipeItem

    items = []
    for i, (word, x, y, t, layout_id) in enumerate(curves):
        items.append(
            SwipeItem(
                i,
                np.rint(np.asarray(x) * scale).astype(np.int16),
                np.rint(np.asarray(y) * scale).astype(np.int16),
                np.asarray(t, np.float32),
                layouts[layout_id].nearest_keys(np.asarray(x, float), np.asarray(y, float)),
                np.asarray(tokenizer.encode(word), np.uint8),
                layout_id,
                layouts[layout_id].name,
                scale,
                tokenizer.alphabet,
            )
        )
    return items


def test_collate_features_by_hand():
    layouts = [TINY, WIDE]
    tok = CharTokenizer.from_layouts(layouts)
    items = items_for(
        [
            (
                "ab",
                [0, 110, 110, 300],
                [0, 0, 60, 60],
                [1000, 1010, 1010, 1030],
                1,
            ),  # dt = 0 at the 3rd point
            ("f", [150], [150], [0], 0),
        ],
        layouts,
        tok,
    )
    batch = SwipeCollator(layouts, tok)(items)
    swipe = batch.swipe
    assert swipe.coords.shape == (2, 4, 2) and swipe.features.shape == (2, 4, len(FEATURE_NAMES))
    assert batch.swipe_pad_mask.tolist() == [[False] * 4, [False, True, True, True]]
    assert swipe.lengths.tolist() == [4, 1] and swipe.layout_ids.tolist() == [1, 0]
    assert swipe.layout_ids.dtype == torch.int64 and swipe.nearest_keys.dtype == torch.int64
    assert swipe.nearest_keys.tolist() == [[0, 1, 4, 5], [4, 0, 0, 0]]
    f = swipe.features[0]

    def close(actual, expected):
        torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float32), rtol=1e-5, atol=1e-5)

    # WIDE keys are 100 x 50 px; times 0, 10, 10, 30 ms; the zero step counts as MIN_DT.
    close(f[:, 0], [0.0, 1.1, 1.1, 3.0])
    close(f[:, 1], [0.0, 0.0, 1.2, 1.2])
    close(f[:, 2], [0.0, 0.01, 0.01, 0.03])
    close(f[:, 3], [110.0, 110.0, 0.0, 1.9 / 0.02])  # the first point copies the second
    close(f[:, 4], [0.0, 0.0, 1.2 / MIN_DT, 0.0])
    close(f[:, 5], [0.0, 0.0, -110.0 / MIN_DT, 95.0 / 0.02])
    close(f[:, 6], [0.0, 0.0, 1200.0 / MIN_DT, -1200.0 / 0.02])
    assert torch.isfinite(swipe.features).all()
    # The one-point curve: position only, zero elsewhere and at padding.
    torch.testing.assert_close(swipe.features[1, 0], torch.tensor([1.5, 1.5, 0, 0, 0, 0, 0]))
    assert (swipe.features[1, 1:] == 0).all() and (swipe.coords[1, 1:] == 0).all()
    torch.testing.assert_close(swipe.coords[0, :, 0], torch.tensor([0.0, 110, 110, 300]))
    a, b, f_ = tok.encode("abf")
    assert batch.decoder_input.tolist() == [[tok.sos_id, a, b], [tok.sos_id, f_, tok.pad_id]]
    assert batch.target.tolist() == [[a, b, tok.eos_id], [f_, tok.eos_id, tok.pad_id]]
    assert batch.tokens_pad_mask.tolist() == [[False, False, False], [False, False, True]]
    assert batch.index.tolist() == [0, 1]


def test_collate_thins_long_curves_to_max_points():
    layouts = [TINY, WIDE]
    tok = CharTokenizer.from_layouts(layouts)
    xs = list(range(0, 300, 30))  # 10 points, 10 ms apart
    rows = [("ab", xs, [0] * 10, list(range(0, 100, 10)), 1), ("f", [150], [150], [0], 0)]
    items = items_for(rows, layouts, tok)
    full = SwipeCollator(layouts, tok)(items)
    thin = SwipeCollator(layouts, tok, max_points=4)(items)
    assert thin.swipe.lengths.tolist() == [4, 1]
    # Evenly spaced by index, first and last kept: points 0, 3, 6, 9.
    torch.testing.assert_close(thin.swipe.coords[0, :, 0], torch.tensor([0.0, 90, 180, 270]))
    torch.testing.assert_close(thin.swipe.features[0, :, 2], torch.tensor([0.0, 0.03, 0.06, 0.09]))
    assert thin.swipe.nearest_keys[0].tolist() == full.swipe.nearest_keys[0, [0, 3, 6, 9]].tolist()
    assert torch.equal(thin.target, full.target)
    assert torch.equal(thin.swipe.features[1], full.swipe.features[1, :4])
    with pytest.raises(ValueError, match="max_points"):
        SwipeCollator(layouts, tok, max_points=1)


def test_collate_refuses_items_of_another_alphabet_or_layout_order():
    layouts = [TINY, WIDE]
    tok = CharTokenizer.from_layouts(layouts)
    items = items_for([("ab", [1], [1], [0], 1)], layouts, tok)
    with pytest.raises(ValueError, match="tokenizer=..."):
        SwipeCollator(layouts, CharTokenizer("ba"))(items)
    with pytest.raises(ValueError, match="layout_names=..."):
        SwipeCollator([WIDE, TINY], tok)(items)


def test_dataloader_with_sampler_and_workers(tmp_path, source):
    build_dataset([source], tmp_path / "ds")
    ds = SwipeDataset(tmp_path / "ds")
    sampler = LengthBucketBatchSampler(ds.num_points, batch_size=32, seed=3)
    loader = DataLoader(
        ds, batch_sampler=sampler, collate_fn=SwipeCollator(ds.layouts, ds.tokenizer), num_workers=1
    )
    seen = []
    for batch in loader:
        assert batch.swipe.features.dtype == torch.float32
        assert torch.isfinite(batch.swipe.features).all()
        assert int(batch.swipe.lengths.max()) == batch.swipe.coords.shape[1]
        seen.extend(batch.index.tolist())
    assert sorted(seen) == list(range(len(ds)))


def test_sampler_is_deterministic_per_epoch_and_covers_every_curve():
    lengths = np.random.default_rng(0).integers(1, 200, 1000)
    sampler = LengthBucketBatchSampler(lengths, batch_size=30, seed=7, pool_batches=8)
    sampler.set_epoch(2)
    first = list(sampler)
    again = LengthBucketBatchSampler(lengths, batch_size=30, seed=7, pool_batches=8)
    again.set_epoch(2)
    assert list(again) == first
    sampler.set_epoch(3)
    assert list(sampler) != first
    assert len(first) == len(sampler) == 34
    assert sorted(i for batch in first for i in batch) == list(range(1000))
    assert sum(len(b) != 30 for b in first) == 1
    # Length bucketing pads much less than random batches.
    padded = sum(len(b) * lengths[b].max() for b in first)
    rng = np.random.default_rng(1)
    perm = rng.permutation(1000)
    random_padded = sum(30 * lengths[perm[i : i + 30]].max() for i in range(0, 1000, 30))
    assert padded < 0.75 * random_padded
    fixed = LengthBucketBatchSampler(lengths, batch_size=30, shuffle=False)
    order = [i for b in fixed for i in b]
    assert list(lengths[order]) == sorted(lengths)


def test_sampler_sharding_and_drop_last():
    lengths = np.arange(103)  # 10 full batches of 10 and one of 3

    def shards(drop_last):
        out = []
        for rank in range(4):
            s = LengthBucketBatchSampler(lengths, 10, seed=1, drop_last=drop_last, num_replicas=4, rank=rank)
            s.set_epoch(5)
            assert len(s) == (2 if drop_last else 3)
            out.append(list(s))
        return out

    kept = shards(drop_last=False)
    assert [len(shard) for shard in kept] == [3, 3, 3, 3]  # 11 batches padded to 12
    assert set(i for shard in kept for b in shard for i in b) == set(range(103))
    dropped = shards(drop_last=True)
    assert [len(shard) for shard in dropped] == [2, 2, 2, 2]  # 10 full batches cut to 8
    flat = [i for shard in dropped for b in shard for i in b]
    assert len(flat) == len(set(flat)) == 80
    assert all(len(b) == 10 for shard in dropped for b in shard)


def test_sampler_resume_skips_consumed_batches():
    lengths = np.random.default_rng(0).integers(1, 100, 500)
    sampler = LengthBucketBatchSampler(lengths, 16, seed=4, num_replicas=2, rank=1)
    sampler.set_epoch(1)
    full = list(sampler)
    sampler.set_epoch(1, start_batch=5)
    assert list(sampler) == full[5:]
    assert len(sampler) == len(full)
    sampler.set_epoch(2)
    assert len(list(sampler)) == len(full)
    with pytest.raises(ValueError):
        sampler.set_epoch(1, start_batch=len(full) + 1)


def test_cli_build_and_info(tmp_path, source, capsys):
    out = tmp_path / "ds"
    assert main(["build", str(source), "--out", str(out), "--quiet"]) == 0
    assert "built" in capsys.readouterr().out
    assert main(["build", str(source), "--out", str(out), "--quiet"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["info", str(out)]) == 0
    assert "300 curves" in capsys.readouterr().out
    hws = tmp_path / "user.log"
    hws.write_text(
        "sentence timestamp keyb_width keyb_height event x_pos y_pos x_radius y_radius angle word is_err\n"
        "hi 10 360 205 touchstart 10 10 1 1 0 hi 0\nhi 20 360 205 touchend 30 10 1 1 0 hi 0\n"
    )
    assert main(["build", str(hws), "--out", str(tmp_path / "hws"), "--quiet"]) == 0
    assert SwipeDataset(tmp_path / "hws").word(0) == "hi"
