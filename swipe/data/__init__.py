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
"""

from swipe.data.build import (
    COORD_SCALE,
    FORMAT_VERSION,
    ArrayInfo,
    DatasetError,
    Manifest,
    SourceFile,
    build_dataset,
    read_manifest,
)
from swipe.data.collate import MIN_DT, SwipeCollator, trajectory_features
from swipe.data.dataset import SwipeDataset, SwipeItem, with_x_scaled
from swipe.data.sampler import LengthBucketBatchSampler

__all__ = [
    "COORD_SCALE",
    "FORMAT_VERSION",
    "MIN_DT",
    "ArrayInfo",
    "DatasetError",
    "LengthBucketBatchSampler",
    "Manifest",
    "SourceFile",
    "SwipeCollator",
    "SwipeDataset",
    "SwipeItem",
    "build_dataset",
    "read_manifest",
    "trajectory_features",
    "with_x_scaled",
]
