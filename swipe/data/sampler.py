"""Batches of curves of similar length, deterministic per epoch, sharded across DDP ranks."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Yields batches (lists of indices) of curves of similar length, to keep padding low.

    With ``shuffle``, each epoch permutes the curves, cuts the permutation into pools of
    ``pool_batches`` batches, sorts each pool by length, cuts it into batches and shuffles the
    order of all batches. Without it, batches are consecutive runs of the curves sorted by
    length. Either way the batches of an epoch are a pure function of ``(seed, epoch)``.

    Under DDP every rank computes the same batch list and takes every ``num_replicas``-th batch
    from ``rank`` on; the list is padded by repeating its first batches (or, with ``drop_last``,
    cut) so that every rank gets the same number of batches.

    Parameters
    ----------
    num_points : sequence of int
        Points per curve (``SwipeDataset.num_points``).
    batch_size : int
        Curves per batch.
    shuffle : bool
        Randomise batches per epoch (training); else fixed, sorted by length (evaluation).
    seed : int
        Seed of the per-epoch randomness.
    drop_last : bool
        Drop the one batch smaller than ``batch_size``.
    num_replicas, rank : int
        DDP world size and this process's rank.
    pool_batches : int
        Batches per sorting pool: larger pools pad less, smaller ones mix lengths more.
    """

    def __init__(
        self,
        num_points: Sequence[int] | np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
        pool_batches: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in 0..{num_replicas - 1}")
        if pool_batches < 1:
            raise ValueError(f"pool_batches must be positive, got {pool_batches}")
        self.num_points = np.asarray(num_points, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.pool_batches = pool_batches
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's batches; skip this rank's first ``start_batch`` (already consumed)."""
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"start_batch {start_batch} is not in 0..{len(self)}")
        self.epoch = epoch
        self.start_batch = start_batch

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """All batches of ``epoch`` across ranks, before sharding."""
        n, size = len(self.num_points), self.batch_size
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(n)
            pool = size * self.pool_batches
            batches = []
            for start in range(0, n, pool):
                part = order[start : start + pool]
                part = part[np.argsort(self.num_points[part], kind="stable")]
                batches.extend(part[i : i + size] for i in range(0, len(part), size))
            batches = [batches[i] for i in rng.permutation(len(batches))]
        else:
            order = np.argsort(self.num_points, kind="stable")
            batches = [order[i : i + size] for i in range(0, n, size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == size]
        return batches

    def _rank_batches(self) -> list[np.ndarray]:
        batches = self.epoch_batches(self.epoch)
        total = len(self) * self.num_replicas
        if total > len(batches):  # pad by wrapping around
            batches = [batches[i % len(batches)] for i in range(total)]
        return batches[self.rank : total : self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._rank_batches()[self.start_batch :]:
            yield batch.tolist()

    def __len__(self) -> int:
        """Batches per epoch on this rank (a resumed epoch yields ``len - start_batch`` of them)."""
        n, size = len(self.num_points), self.batch_size
        num_batches = n // size if self.drop_last else -(-n // size)
        if self.drop_last:
            return num_batches // self.num_replicas
        return -(-num_batches // self.num_replicas)
