"""Getting the training and validation datasets a config names: generated, built or opened.

``data.train`` / ``data.val`` name built dataset directories or raw files (any format
:mod:`swipe.formats` reads); raw files are built once into ``data.cache_dir`` (default
``<run_dir>/data``) and reused. With a ``data.synthetic`` section the curves are generated with
:mod:`swipe.synth` and built into ``data.train`` / ``data.val`` (default ``<run_dir>/data/train``
and ``.../val``); a sidecar ``<dir>.synth.json`` records the settings, so an existing dataset is
reused only when it was generated with the same ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from swipe.atomic import atomic_output, temporary
from swipe.config import ConfigError, from_dict, to_dict
from swipe.keyboard import Layout, bundled_layout, load_layouts_file
from swipe.tokenizers import CharTokenizer
from swipe.training.config import DataConfig, SyntheticConfig, TrainConfig
from swipe.training.distributed import DistInfo


class DataError(RuntimeError):
    """A dataset cannot be prepared; the message names the path and what to do."""


class PreparedData(NamedTuple):
    """Everything the trainer reads data through.

    Attributes
    ----------
    config : DataConfig
        The data section with ``train`` / ``val`` resolved to dataset directories.
    train, val : SwipeDataset
        Memory-mapped datasets, remapped to the model's layouts and tokenizer.
    layouts : list of Layout
        The model's layouts, in layout-id order.
    tokenizer : CharTokenizer
    collator : SwipeCollator
    """

    config: DataConfig
    train: Any
    val: Any
    layouts: list[Layout]
    tokenizer: CharTokenizer
    collator: Any

    def make_sampler(self, batch_size: int, seed: int, dist: DistInfo) -> Any:
        """The training batch sampler: length-bucketed, shuffled per ``(seed, epoch)``, rank-aware."""
        from swipe.data import LengthBucketBatchSampler

        return LengthBucketBatchSampler(
            self.train.resampled_num_points(self.config.resample),
            batch_size,
            shuffle=True,
            seed=seed,
            drop_last=False,
            num_replicas=dist.world_size,
            rank=dist.rank,
            pool_batches=self.config.pool_batches,
        )

    def make_val_sampler(self, num_curves: int, batch_size: int) -> Any:
        """Validation batches over the first ``num_curves`` curves, in a fixed order."""
        from swipe.data import LengthBucketBatchSampler

        return LengthBucketBatchSampler(
            self.val.resampled_num_points(self.config.resample)[:num_curves],
            batch_size,
            shuffle=False,
            seed=0,
            drop_last=False,
            num_replicas=1,
            rank=0,
        )


# ---- resolving paths --------------------------------------------------------------------------


def resolve_data_config(config: TrainConfig, run_dir: Path) -> DataConfig:
    """The data section with the default synthetic dataset paths filled in (nothing is touched)."""
    data = config.data
    if data.synthetic is None:
        return data
    return dataclasses.replace(
        data,
        train=data.train if data.train is not None else str(run_dir / "data" / "train"),
        val=data.val if data.val is not None else str(run_dir / "data" / "val"),
    )


def _is_dataset(path: Path) -> bool:
    from swipe.data import DatasetError, read_manifest

    try:
        read_manifest(path)
    except DatasetError:
        return False
    return True


def _cache_path(raw: Path, cache_dir: Path) -> Path:
    stat = raw.stat()
    key = f"{raw.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return cache_dir / f"{raw.name.split('.')[0]}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _build(source: Path, out: Path, data: DataConfig, layouts: dict[str, Layout] | None) -> None:
    from swipe.data import build_dataset

    print(f"building dataset {out} from {source}", file=sys.stderr)
    manifest = build_dataset(
        [source],
        out,
        layouts=layouts if layouts is not None else data.layouts_file,
        alphabet=data.alphabet,
        skip_bad_rows=data.skip_bad_rows,
    )
    if manifest.skipped:
        counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(manifest.skipped.items()))
        print(f"{source}: skipped {sum(manifest.skipped.values())} bad rows ({counts})", file=sys.stderr)


def _synth_layouts(synthetic: SyntheticConfig, data: DataConfig) -> list[Layout]:
    extra = load_layouts_file(data.layouts_file) if data.layouts_file else {}
    return [extra[name] if name in extra else bundled_layout(name) for name in synthetic.layouts]


def _same_synthetic_settings(stored: Any, settings: dict[str, Any], synthetic: SyntheticConfig) -> bool:
    """Whether a dataset's recorded settings are ``settings`` (made from ``synthetic``). The
    recorded section is read back as a config, so that generator parameters added since (whose
    defaults generate as before) match."""
    if not isinstance(stored, dict) or set(stored) != set(settings):
        return False
    if any(stored[k] != settings[k] for k in settings if k != "synthetic"):
        return False
    try:
        return from_dict(SyntheticConfig, stored["synthetic"]) == synthetic
    except ConfigError:
        return False


def _generate(
    split: str, out: Path, count: int, seed: int, synthetic: SyntheticConfig, data: DataConfig
) -> None:
    from swipe.lexicon import load_lexicon
    from swipe.synth import write_synthetic_jsonl

    sidecar = out.with_name(out.name + ".synth.json")
    settings = {"split": split, "count": count, "seed": seed, "synthetic": to_dict(synthetic)}
    if out.exists():
        if not sidecar.is_file():
            raise DataError(
                f"{out} exists but was not generated from a 'synthetic' section; remove it or set "
                f"data.{split} to another directory"
            )
        if not _same_synthetic_settings(json.loads(sidecar.read_text("utf-8")), settings, synthetic):
            raise DataError(
                f"{out} was generated with other synthetic settings ({sidecar}); remove it or set "
                f"data.{split} to another directory"
            )
        if _is_dataset(out):
            return
        raise DataError(f"{out} is an incomplete dataset; remove it and start again")
    layouts = _synth_layouts(synthetic, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {count} synthetic {split} swipes into {out}", file=sys.stderr)
    with temporary(out.with_name(f"{out.name}.jsonl")) as jsonl:
        write_synthetic_jsonl(
            jsonl,
            layouts,
            load_lexicon(synthetic.lexicon),
            count,
            seed,
            by_frequency=synthetic.by_frequency,
            config=synthetic.generator,
            overwrite=True,
        )
        _build(jsonl, out, data, {layout.name: layout for layout in layouts})
    with atomic_output(sidecar) as tmp:
        tmp.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", "utf-8")


def prepare_data_files(config: TrainConfig, run_dir: Path) -> DataConfig:
    """Generate and build whatever the data section needs (run on one process only).

    Returns
    -------
    DataConfig
        The data section with ``train`` and ``val`` naming built dataset directories.
    """
    data = resolve_data_config(config, run_dir)
    paths = {"train": Path(data.train), "val": Path(data.val)}  # type: ignore[arg-type]
    if data.synthetic is not None:
        syn = data.synthetic
        _generate("train", paths["train"], syn.num_train, syn.seed, syn, data)
        _generate("val", paths["val"], syn.num_val, syn.seed + 1, syn, data)
        return data
    cache_dir = Path(data.cache_dir) if data.cache_dir is not None else run_dir / "data"
    resolved = {}
    for split, path in paths.items():
        if path.is_dir():
            if not _is_dataset(path):
                raise DataError(f"data.{split}: {path} is a directory but not a built dataset")
            resolved[split] = path
        elif path.is_file():
            out = _cache_path(path, cache_dir)
            if not _is_dataset(out):
                _build(path, out, data, None)
            resolved[split] = out
        else:
            raise DataError(f"data.{split}: {path} does not exist")
    return dataclasses.replace(data, train=str(resolved["train"]), val=str(resolved["val"]))


def _layout_by_name(name: str, dataset_layouts: Sequence[Layout], data: DataConfig) -> Layout:
    for layout in dataset_layouts:
        if layout.name == name:
            return layout
    if data.layouts_file:
        extra = load_layouts_file(data.layouts_file)
        if name in extra:
            return extra[name]
    return bundled_layout(name)


def _as_list(layouts: Any) -> list[Layout]:
    return list(layouts.values()) if isinstance(layouts, dict) else list(layouts)


def open_data(
    data: DataConfig,
    layouts: Sequence[Layout] | None = None,
    tokenizer: CharTokenizer | None = None,
) -> PreparedData:
    """Open the built datasets named by ``data`` (after :func:`prepare_data_files`).

    Parameters
    ----------
    data : DataConfig
        The data section with ``train`` / ``val`` naming built datasets.
    layouts, tokenizer : optional
        The model's layouts and tokenizer when they are given (a model fine-tuned from another);
        default: ``data.layouts`` / ``data.alphabet``, else the training dataset's.
    """
    from swipe.data import SwipeCollator, SwipeDataset

    assert data.train is not None and data.val is not None
    probe = SwipeDataset(data.train)
    if layouts is None:
        stored = _as_list(probe.layouts)
        names = data.layouts if data.layouts is not None else [layout.name for layout in stored]
        layouts = [_layout_by_name(name, stored, data) for name in names]
    else:
        layouts = list(layouts)
        names = [layout.name for layout in layouts]
    if tokenizer is None:
        tokenizer = CharTokenizer(data.alphabet) if data.alphabet is not None else probe.tokenizer
    train = SwipeDataset(data.train, layout_names=names, tokenizer=tokenizer)
    val = SwipeDataset(data.val, layout_names=names, tokenizer=tokenizer)
    if not val.has_targets:
        raise DataError(f"data.val: {data.val} has no target words; validation needs them")
    collator = SwipeCollator(layouts, tokenizer, data.max_points, data.resample)
    return PreparedData(data, train, val, layouts, tokenizer, collator)
