"""Swipe datasets: columnar build, memory-mapped loading, collate and length-bucketed batching.

Build once, train many times::

    python -m swipe.data build train.jsonl --out data/train
    python -m swipe.data info data/train

or from Python::

    from swipe.data import LengthBucketBatchSampler, SwipeCollator, SwipeDataset, build_dataset

    build_dataset(["train.jsonl"], "data/train")
    ds = SwipeDataset("data/train")
    loader = DataLoader(ds, batch_sampler=LengthBucketBatchSampler(ds.num_points, 256),
                        collate_fn=SwipeCollator(ds.layouts, ds.tokenizer), num_workers=2)

Names are imported on first use, so ``swipe.data.resample`` (numpy only) imports without torch.
"""

from __future__ import annotations

from swipe.lazy import lazy_names

_WHERE = {
    "ArrayInfo": "build",
    "COORD_SCALE": "build",
    "DatasetError": "build",
    "FORMAT_VERSION": "build",
    "LengthBucketBatchSampler": "sampler",
    "MIN_DT": "collate",
    "Manifest": "build",
    "SourceFile": "build",
    "SwipeCollator": "collate",
    "SwipeDataset": "dataset",
    "SwipeItem": "dataset",
    "build_dataset": "build",
    "read_manifest": "build",
    "trajectory_features": "collate",
    "with_x_scaled": "dataset",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_names(__name__, _WHERE)
