"""The Python steps of ``bench/gpu_run.sh``: size the synthetic data, write the training config,
write the summary.

    python bench/gpu_run.py synth-plan --recipe swipe/resources/models/en_hws/config.json \\
        --seconds 60 --jobs 15 --generator-out gen.json --plan plan.json
    python bench/gpu_run.py config swipe/resources/models/en_hws/config.json run.json \\
        --set data.batch_size=512 --set device=cuda
    python bench/gpu_run.py summary WORK OUT

``synth-plan`` writes the recipe's generator settings, times the generator on one core and prints
how many shards of how many curves ``--jobs`` processes can write in ``--seconds``, and the seed of
the recipe's validation split. ``config`` copies a training config with some keys set (each value JSON, else a
string) and reads the result back strictly, so that a mistyped key stops the run before it starts.
``summary`` writes ``OUT/summary.md`` from what the run left in ``WORK``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from swipe.synth import SynthConfig


# ---- synth-plan --------------------------------------------------------------------------------


class SynthPlan(NamedTuple):
    """``shards`` files of ``per_shard`` curves, written by ``jobs`` processes in about ``seconds``."""

    curves_per_s_per_core: float
    jobs: int
    seconds: float
    shards: int
    per_shard: int

    @property
    def total(self) -> int:
        return self.shards * self.per_shard


def plan_synthesis(
    seconds: float, jobs: int, shards_per_job: int, generator: SynthConfig, probe: int, max_total: int | None
) -> SynthPlan:
    """Time ``write_synthetic_jsonl`` on ``probe`` curves on one core and size equal shards, a few per
    process (a shard cut off by a time limit then loses only its own curves), to ``seconds``."""
    from swipe.keyboard import bundled_layout
    from swipe.lexicon import load_lexicon
    from swipe.synth import write_synthetic_jsonl

    layout, lexicon = bundled_layout("hws_fitted"), load_lexicon("en")
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_jsonl(Path(tmp) / "warm.jsonl", layout, lexicon, 50, seed=0, config=generator)
        start = time.perf_counter()
        write_synthetic_jsonl(Path(tmp) / "probe.jsonl", layout, lexicon, probe, seed=1, config=generator,
                              inline_grid=False)
        rate = probe / (time.perf_counter() - start)
    shards = jobs * shards_per_job
    per_shard = max(1, int(rate * seconds / shards_per_job))
    if max_total is not None:
        per_shard = max(1, min(per_shard, max_total // shards))
    return SynthPlan(rate, jobs, seconds, shards, per_shard)


def _synth_plan(args: argparse.Namespace) -> int:
    from swipe.config import to_dict
    from swipe.training import load_train_config

    synthetic = load_train_config(args.recipe).data.synthetic
    if synthetic is None or synthetic.layouts != ["hws_fitted"] or synthetic.lexicon != "en":
        raise SystemExit(f"error: {args.recipe}: expected synthetic English swipes on hws_fitted")
    args.generator_out.write_text(json.dumps(to_dict(synthetic.generator), indent=1) + "\n")
    plan = plan_synthesis(args.seconds, args.jobs, args.shards_per_job, synthetic.generator, args.probe,
                          args.max_total)
    args.plan.write_text(json.dumps(plan._asdict() | {"total": plan.total}, indent=1) + "\n")
    print(f"{plan.curves_per_s_per_core:,.0f} curves/s on one core: {plan.shards} x {plan.per_shard:,} = "
          f"{plan.total:,} curves by {plan.jobs} processes in about {plan.seconds:.0f} s", file=sys.stderr)
    print(plan.shards, plan.per_shard, synthetic.seed + 1)  # the recipe's validation split has its seed + 1
    return 0


# ---- config ------------------------------------------------------------------------------------


def set_key(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``config[a][b][c] = value`` for ``dotted`` ``a.b.c`` (missing sections are created)."""
    *path, last = dotted.split(".")
    for key in path:
        section = config.get(key)
        if not isinstance(section, dict):
            section = config[key] = {}
        config = section
    config[last] = value


def _config(args: argparse.Namespace) -> int:
    from swipe.config import ConfigError
    from swipe.training import load_train_config

    config = json.loads(args.recipe.read_text(encoding="utf-8"))
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --set {item!r}: write KEY=VALUE, e.g. data.batch_size=512")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        set_key(config, key, value)
    args.out.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    try:
        load_train_config(args.out)
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


# ---- summary -----------------------------------------------------------------------------------


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def _num_curves(dataset: Path) -> int | None:
    try:
        return int(json.loads(_read(dataset / "manifest.json"))["num_curves"])
    except (ValueError, KeyError):
        return None


def junit_rows(junit: Path) -> list[tuple[str, ...]]:
    """One row per test case of a pytest ``--junitxml`` file."""
    try:
        cases = list(ET.parse(junit).getroot().iter("testcase"))
    except (OSError, ET.ParseError):
        return [("(the tests did not finish)", "see logs/tests.log", "")]
    rows = []
    for case in cases:
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = tag + (f": {found.get('message', '')[:80]}" if tag == "skipped" else "")
        rows.append((case.get("name", "?"), outcome, f"{float(case.get('time', 0)):.1f}"))
    return rows


def training_lines(log: str) -> list[str]:
    """The validation and stop lines of a training log."""
    keep = ("step ", "gpu_", "note:", "error:")
    return [line for line in log.splitlines() if line.startswith(keep) or ": stopped (" in line]


def end_to_end_rate(log: str, batch_size: int, seconds: float) -> str:
    """Curves per second of the whole training phase (start-up and validation included)."""
    for line in reversed(log.splitlines()):
        if ": stopped (" in line and " at step " in line:
            step = int(line.split(" at step ")[1].split(",")[0])
            rate = step * batch_size / seconds
            return f"{step:,} steps of {batch_size} curves in {seconds:.0f} s: {rate:,.0f} curves/s"
    return "no step count in the log"


# Greedy word accuracy of the shipped en_hws on its recipe's validation split (bench/RESULTS.md).
SHIPPED_VAL = "en_hws (step 5,586) on the recipe's 2,000 validation curves: greedy word accuracy 0.7625"


def write_summary(work: Path, out: Path) -> str:
    """Write ``out/summary.md`` from the run's records in ``work``; returns its text."""
    settings = json.loads(_read(work / "settings.json") or "{}")
    lines = [f"# GPU run ({settings.get('scale', '?')} scale)", "", _read(work / "env.txt").strip(), ""]
    phases = [tuple(line.split("\t")) for line in _read(work / "phases.tsv").splitlines()]
    phases = [p for p in phases if len(p) == 3]
    lines += _table(("phase", "result", "seconds"), phases)
    lines += ["", "## CUDA tests", ""]
    lines += _table(("test", "result", "seconds"), junit_rows(work / "logs" / "tests.xml"))

    lines += ["", "## Data", ""]
    plan = json.loads(_read(work / "synth_plan.json") or "{}")
    if plan:
        lines.append(f"- generator: {plan['curves_per_s_per_core']:,.0f} curves/s on one core; planned "
                     f"{plan['shards']} shards x {plan['per_shard']:,} = {plan['total']:,} curves by "
                     f"{plan['jobs']} processes in about {plan['seconds']:.0f} s")
    for split in ("train", "val"):
        count = _num_curves(work / "data" / split)
        lines.append(f"- built {split}: {count:,} curves" if count is not None else f"- built {split}: none")

    log = _read(out / "train.log")
    lines += ["", "## Training", "", f"- settings: {json.dumps(settings)}"]
    train_seconds = [float(p[2]) for p in phases if p[0] in ("train", "train_fp32")]
    if train_seconds and train_seconds[-1] > 0:
        rate = end_to_end_rate(log, settings.get("batch_size", 0), train_seconds[-1])
        lines.append(f"- end to end: {rate}")
    lines += [f"- {SHIPPED_VAL}", "", "```", *training_lines(log)[-40:], "```", ""]
    real = [line for line in _read(work / "logs" / "real.log").splitlines() if line.startswith("|")]
    lines += ["## Real swipes: a first look (beam 8, prior 0.3; en_hws beside the new model)", "",
              *(real or ["(not decoded)"]), ""]
    lines += ["## Training throughput (optimizer step on pre-collated batches)", "",
              _read(out / "throughput.md").strip() or "(none)", ""]
    model = out / "model" / "model.pt"
    lines.append(f"Exported model: model/model.pt ({model.stat().st_size:,} bytes)" if model.is_file()
                 else "No exported model.")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text, encoding="utf-8")
    return text


def _summary(args: argparse.Namespace) -> int:
    text = write_summary(args.work, args.out)
    if args.print:
        print(text)
    return 0


# ---- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth-plan", help="curves per process for a time budget (printed)")
    p.add_argument("--seconds", type=float, required=True, help="time budget of the synthesis")
    p.add_argument("--jobs", type=int, required=True, help="processes writing at once")
    p.add_argument("--shards-per-job", type=int, default=4, help="files each process writes in turn")
    p.add_argument("--recipe", type=Path, required=True, help="training config with a data.synthetic section")
    p.add_argument("--generator-out", type=Path, required=True,
                   help="JSON file to write the recipe's generator settings to (for python -m swipe.synth)")
    p.add_argument("--probe", type=int, default=2000, help="curves timed")
    p.add_argument("--max-total", type=int, help="at most this many curves in all")
    p.add_argument("--plan", type=Path, required=True, help="JSON file to write the plan to")
    p.set_defaults(func=_synth_plan)
    p = sub.add_parser("config", help="a training config with keys set, checked strictly")
    p.add_argument("recipe", type=Path, help="training config to start from")
    p.add_argument("out", type=Path, help="config file to write")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="e.g. data.batch_size=512, init_from=swipe/resources/models/en_hws (repeatable)")
    p.set_defaults(func=_config)
    p = sub.add_parser("summary", help="write OUT/summary.md")
    p.add_argument("work", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--print", action="store_true", help="also print it")
    p.set_defaults(func=_summary)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
