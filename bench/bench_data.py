"""Dataset build and loading: throughput, size on disk and DataLoader worker memory. One table.

    nice -n 10 python bench/bench_data.py                       # 200,000 synthetic curves
    nice -n 10 python bench/bench_data.py --curves 20000        # a quick look

Steps, on ``--curves`` synthetic curves from :mod:`swipe.synth` (Yandex-format jsonl with the
grid inline, layouts ``default`` and ``extra``, the bundled ``ru`` lexicon; cached in ``--work``):

- build: ``build_dataset`` in a child process, timed (wall and CPU seconds of that one process)
  with its peak resident memory; the same for a tenth of the curves, to show the peak does not
  grow with the input;
- size: bytes on disk per point and per curve;
- iterate: one epoch through a ``DataLoader`` with 2 workers, ``LengthBucketBatchSampler``
  (``--batch-size``) and ``SwipeCollator``, sampling the workers' memory (RSS, and PSS / USS from
  ``/proc/<pid>/smaps_rollup``) every ``--sample-every`` batches; side by side with a naive
  dataset that keeps a Python list of per-curve tensors, whose pages the workers copy as they
  touch the objects' reference counts (copy-on-read).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swipe.data import LengthBucketBatchSampler, SwipeCollator, SwipeDataset, SwipeItem  # noqa: E402

BUILD_CHILD = """
import json, sys, time, resource
from swipe.data import build_dataset
src, out = sys.argv[1], sys.argv[2]
wall, cpu = time.perf_counter(), time.process_time()
m = build_dataset([src], out, overwrite=True)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"curves": m.num_curves, "points": m.num_points, "bytes": m.num_bytes,
                  "wall": wall, "cpu": cpu, "peak_rss_kb": hwm}))
"""


class Memory(NamedTuple):
    rss: int  # bytes
    pss: int
    uss: int  # private pages: file pages only this process maps, and its own anonymous pages
    dirty: int  # private dirty pages: what the process wrote or copied (copy-on-write)


def memory_of(pid: int) -> Memory:
    """Resident, proportional and unique set size of a process, from smaps_rollup."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) * 1024
    dirty = fields.get("Private_Dirty", 0)
    return Memory(fields["Rss"], fields["Pss"], fields.get("Private_Clean", 0) + dirty, dirty)


def children_of(pid: int) -> list[int]:
    pids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            pids.extend(int(p) for p in f.read().split())
    return pids


class NaiveDataset(Dataset):
    """The usual first attempt: a Python list of per-curve tensors (and words)."""

    def __init__(self, ds: SwipeDataset) -> None:
        self.curves = []
        for i in range(len(ds)):
            item = ds[i]
            self.curves.append(
                (
                    torch.from_numpy(item.x.astype(np.int16)),
                    torch.from_numpy(item.y.astype(np.int16)),
                    torch.from_numpy(item.t.astype(np.float32)),
                    torch.from_numpy(item.nearest_keys.astype(np.uint8)),
                    torch.from_numpy(item.chars.astype(np.uint8)),
                    item.layout_id,
                    ds.word(i),
                )
            )
        self.names = [layout.name for layout in ds.layouts]
        self.alphabet = ds.tokenizer.alphabet

    def __len__(self) -> int:
        return len(self.curves)

    def __getitem__(self, i: int) -> SwipeItem:
        x, y, t, keys, chars, layout_id, _word = self.curves[i]
        return SwipeItem(
            i, x.numpy(), y.numpy(), t.numpy(), keys.numpy(), chars.numpy(), layout_id, self.names[layout_id],
            4.0, self.alphabet,
        )  # fmt: skip


class EpochResult(NamedTuple):
    batches: int
    seconds: float
    samples: list[tuple[int, Memory]]  # (batch, summed memory of the workers)


def run_epoch(dataset: Dataset, ds: SwipeDataset, batch_size: int, sample_every: int) -> EpochResult:
    sampler = LengthBucketBatchSampler(ds.num_points, batch_size, seed=0)
    collate = SwipeCollator([layout for layout in ds.layouts if layout is not None], ds.tokenizer)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=2, prefetch_factor=2)
    samples = []
    start = time.perf_counter()
    count = 0
    workers: list[int] = []
    for count, _batch in enumerate(loader, 1):
        if count == 1:
            workers = children_of(os.getpid())
        if count == 1 or count % sample_every == 0 or count == len(sampler):
            mems = [memory_of(pid) for pid in workers]
            samples.append((count, Memory(*(sum(m[k] for m in mems) for k in range(4)))))
    seconds = time.perf_counter() - start
    del loader
    gc.collect()
    return EpochResult(count, seconds, samples)


def build_in_child(src: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-c", BUILD_CHILD, str(src), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def synthetic_source(work: Path, curves: int, seed: int) -> Path:
    from swipe.keyboard import bundled_layout
    from swipe.lexicon import load_lexicon
    from swipe.synth import write_synthetic_jsonl

    path = work / f"synth_{curves}_{seed}.jsonl"
    if not path.exists():
        start = time.perf_counter()
        layouts = [bundled_layout("default"), bundled_layout("extra")]
        write_synthetic_jsonl(path, layouts, load_lexicon("ru"), curves, seed)
        print(f"generated {curves} synthetic curves in {time.perf_counter() - start:.0f} s: {path}")
    return path


def head_lines(src: Path, dst: Path, count: int) -> Path:
    if not dst.exists():
        with open(src, "rb") as f, open(dst, "wb") as out:
            for i, line in enumerate(f):
                if i == count:
                    break
                out.write(line)
    return dst


def mb(value: float) -> str:
    return f"{value / 2**20:,.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--curves", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--sample-every", type=int, default=50, help="batches between memory samples")
    parser.add_argument("--work", type=Path, default=Path("/tmp/swipe_bench_data"), help="scratch directory")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    src = synthetic_source(args.work, args.curves, args.seed)
    tenth = args.curves // 10
    small_src = head_lines(src, args.work / f"synth_{tenth}_{args.seed}_head.jsonl", tenth)

    small = build_in_child(small_src, args.work / "ds_small")
    full = build_in_child(src, args.work / "ds")
    ds = SwipeDataset(args.work / "ds")
    per_point = 9.0
    per_curve = (full["bytes"] - per_point * full["points"]) / full["curves"]

    mapped = run_epoch(ds, ds, args.batch_size, args.sample_every)
    naive_ds = NaiveDataset(ds)
    naive = run_epoch(naive_ds, ds, args.batch_size, args.sample_every)

    load = os.getloadavg()
    points = f"{full['points']:,} points ({full['points'] / full['curves']:.1f} a curve)"
    print(f"\n{full['curves']:,} curves, {points}, source {mb(src.stat().st_size)}; "
          f"load average {load[0]:.1f} on {os.cpu_count()} cores\n")  # fmt: skip
    rows = [
        ("throughput, curves/s, CPU time / wall time",
         f"{full['curves'] / full['cpu']:,.0f} / {full['curves'] / full['wall']:,.0f}"),
        (f"peak RSS, {small['curves']:,} / {full['curves']:,} curves",
         f"{mb(small['peak_rss_kb'] * 1024)} / {mb(full['peak_rss_kb'] * 1024)}"),
        ("bytes on disk per point / per curve", f"{per_point:.1f} / {per_curve:.1f}"),
    ]  # fmt: skip
    print(f"| {'build (one process)':<50} | {'':>26} |")
    print(f"| {'-' * 50} | {'-' * 26}:|")
    for label, value in rows:
        print(f"| {label:<50} | {value:>26} |")
    print()
    title = f"one epoch, 2 workers, batch {args.batch_size}"
    print(f"| {title:<50} | {'memory-mapped':>26} | {'naive list':>26} |")
    print(f"| {'-' * 50} | {'-' * 26}:| {'-' * 26}:|")
    rate = [r.batches / r.seconds for r in (mapped, naive)]
    print(f"| {'batches/s':<50} | {rate[0]:>26.1f} | {rate[1]:>26.1f} |")
    names = ("RSS", "PSS", "USS", "private dirty")
    for k, name in enumerate(names):
        cells = []
        for r in (mapped, naive):
            first, last = r.samples[0][1][k], r.samples[-1][1][k]
            peak = max(s[1][k] for s in r.samples)
            cells.append(f"{mb(first)} -> {mb(last)} (max {mb(peak)})".replace(" MB", ""))
        label = f"workers' {name}, MB: 1st batch -> end (max)"
        print(f"| {label:<50} | {cells[0]:>26} | {cells[1]:>26} |")
    print()
    for title, r in (("memory-mapped", mapped), ("naive list", naive)):
        trace = ", ".join(f"{b}: {m.dirty / 2**20:.0f}" for b, m in r.samples)
        print(f"{title} workers' private dirty MB by batch: {trace}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
