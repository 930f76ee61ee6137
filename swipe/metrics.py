"""Swipe MRR and friends: how well ranked candidate lists match the target words.

Swipe MRR (``swipe_mrr``, the Yandex Cup 2023 NeuroSwipe metric) scores each curve by where its
target appears among the first four *distinct* candidates (duplicates are dropped, the first
occurrence kept)::

    rank      1     2     3     4     absent
    score     1.0   0.1   0.09  0.08  0

and averages over curves. ``accuracy`` is the share of curves whose top candidate is the target,
``recall_at_4`` the share whose target is among the first four distinct candidates. Words are
compared exactly (targets and lexicon words are both normalised upstream). Curves without a target
(a test split) are counted but never scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

from swipe.predictions import Predictions

SWIPE_MRR_WEIGHTS = (1.0, 0.1, 0.09, 0.08)


def unique_words(words: Iterable[str], limit: int | None = None) -> list[str]:
    """``words`` without repeats (first occurrence kept), at most ``limit`` of them."""
    seen: dict[str, None] = {}
    for word in words:
        if limit is not None and len(seen) >= limit:
            break
        seen.setdefault(word, None)
    return list(seen)


def target_rank(words: Sequence[str], target: str, k: int | None = len(SWIPE_MRR_WEIGHTS)) -> int | None:
    """1-based rank of ``target`` among the first ``k`` distinct ``words`` (all of them where ``k``
    is None), ``None`` if absent."""
    top = unique_words(words, k)
    return top.index(target) + 1 if target in top else None


def swipe_mrr_score(words: Sequence[str], target: str) -> float:
    """Swipe MRR of one curve: the weight of the target's rank among the first four distinct words."""
    rank = target_rank(words, target)
    return 0.0 if rank is None else SWIPE_MRR_WEIGHTS[rank - 1]


@dataclass(frozen=True)
class Scores:
    """Metrics over a group of curves.

    Attributes
    ----------
    num_curves : int
        Curves in the group, with or without a target.
    num_scored : int
        Curves with a target; the metrics average over these.
    swipe_mrr, accuracy, recall_at_4 : float or None
        The metrics, ``None`` when no curve in the group has a target.
    """

    num_curves: int
    num_scored: int
    swipe_mrr: float | None
    accuracy: float | None
    recall_at_4: float | None

    @property
    def num_without_targets(self) -> int:
        return self.num_curves - self.num_scored


@dataclass(frozen=True)
class Report:
    """Metrics of a predictions set, overall and broken down.

    Attributes
    ----------
    overall : Scores
        All curves.
    by_word_length : dict[int, Scores]
        Curves with a target, grouped by the target's length in characters (sorted).
    by_layout : dict[str, Scores]
        All curves grouped by layout name (sorted).
    """

    overall: Scores
    by_word_length: dict[int, Scores]
    by_layout: dict[str, Scores]


class _Accumulator:
    def __init__(self) -> None:
        self.curves = self.scored = self.top1 = self.top4 = 0
        self.mrr = 0.0

    def add(self, rank: int | None, has_target: bool) -> None:
        self.curves += 1
        if not has_target:
            return
        self.scored += 1
        if rank is not None:
            self.mrr += SWIPE_MRR_WEIGHTS[rank - 1]
            self.top1 += rank == 1
            self.top4 += 1

    def scores(self) -> Scores:
        if not self.scored:
            return Scores(self.curves, 0, None, None, None)
        n = self.scored
        return Scores(self.curves, n, self.mrr / n, self.top1 / n, self.top4 / n)


def score_predictions(predictions: Predictions) -> Report:
    """Swipe MRR, accuracy and recall@4 of ``predictions``, overall, by word length and by layout."""
    overall = _Accumulator()
    by_length: dict[int, _Accumulator] = {}
    by_layout: dict[str, _Accumulator] = {}
    rows = zip(predictions.candidates, predictions.targets, predictions.layouts, strict=True)
    for candidates, target, layout in rows:
        has_target = target is not None
        rank = target_rank([word for _, word in candidates], target) if has_target else None
        overall.add(rank, has_target)
        by_layout.setdefault(layout, _Accumulator()).add(rank, has_target)
        if has_target:
            by_length.setdefault(len(target), _Accumulator()).add(rank, has_target)
    return Report(
        overall=overall.scores(),
        by_word_length={k: by_length[k].scores() for k in sorted(by_length)},
        by_layout={k: by_layout[k].scores() for k in sorted(by_layout)},
    )


def format_report(report: Report) -> str:
    """A human-readable table of ``report`` (what ``evaluate.py`` prints)."""
    o = report.overall
    if o.num_scored == 0:
        return f"no targets: {o.num_curves} curves, not scored"
    lines = [
        f"swipe_mrr    {o.swipe_mrr:.4f}",
        f"accuracy@1   {o.accuracy:.4f}",
        f"recall@4     {o.recall_at_4:.4f}",
        f"curves       {o.num_curves}",
    ]
    if o.num_without_targets:
        lines.append(f"no targets: {o.num_without_targets} of {o.num_curves} curves, not scored")
    for title, groups in (("word length", report.by_word_length), ("layout", report.by_layout)):
        lines.append("")
        lines.extend(_group_table(title, {str(k): v for k, v in groups.items()}))
    return "\n".join(lines)


def _group_table(title: str, groups: dict[str, Scores]) -> list[str]:
    width = max([len(title), *(len(k) for k in groups)])
    mixed = any(s.num_without_targets for s in groups.values())
    scored = f"  {'scored':>7}" if mixed else ""
    lines = [f"{title:<{width}}  {'curves':>7}{scored}  {'swipe_mrr':>9}  {'acc@1':>6}  {'recall@4':>8}"]
    for name, s in groups.items():
        scored = f"  {s.num_scored:>7}" if mixed else ""
        if s.num_scored == 0:
            lines.append(f"{name:<{width}}  {s.num_curves:>7}{scored}  no targets, not scored")
            continue
        lines.append(
            f"{name:<{width}}  {s.num_curves:>7}{scored}  {s.swipe_mrr:>9.4f}  {s.accuracy:>6.4f}"
            f"  {s.recall_at_4:>8.4f}"
        )
    return lines


# ---- misses -------------------------------------------------------------------------------------


class Miss(NamedTuple):
    """A curve whose top candidate is not its target.

    Attributes
    ----------
    row : int
        0-based position in the predictions file (the data file's row order).
    target : str
    rank : int or None
        1-based rank of the target among all the distinct candidates; ``None`` if absent.
    candidates : tuple of str
        The first distinct candidates.
    """

    row: int
    target: str
    rank: int | None
    candidates: tuple[str, ...]


class MissReport(NamedTuple):
    """Where the targets of the curves with one stand in their candidate lists.

    Attributes
    ----------
    rank_counts : dict[str, int]
        Curves per rank of the target among all the distinct candidates: ``"1"``, ``"2"``,
        ``"3-4"``, ``"5+"``, ``"absent"`` (in that order; the list was searched to its end).
    misses : list of Miss
        Every curve not at rank 1, in row order.
    """

    rank_counts: dict[str, int]
    misses: list[Miss]


RANK_GROUPS = ("1", "2", "3-4", "5+", "absent")


def _rank_group(rank: int | None) -> str:
    if rank is None:
        return "absent"
    if rank <= 2:
        return str(rank)
    return "3-4" if rank <= 4 else "5+"


def find_misses(predictions: Predictions, num_candidates: int = 3) -> MissReport:
    """Count the targets' ranks over whole candidate lists and list the curves missed at rank 1."""
    counts = dict.fromkeys(RANK_GROUPS, 0)
    misses = []
    for row, (candidates, target) in enumerate(zip(predictions.candidates, predictions.targets, strict=True)):
        if target is None:
            continue
        words = [word for _, word in candidates]
        rank = target_rank(words, target, k=None)
        counts[_rank_group(rank)] += 1
        if rank != 1:
            misses.append(Miss(row, target, rank, tuple(unique_words(words, num_candidates))))
    return MissReport(counts, misses)


def format_misses(report: MissReport, limit: int) -> str:
    """The rank counts and the first ``limit`` misses, one per line (``evaluate.py --misses``)."""
    total = sum(report.rank_counts.values())
    if total == 0:
        return "no targets: no misses to show"
    lines = ["target rank among all candidates:"]
    lines += [f"  {group:<7} {n:>6}  {n / total:6.1%}" for group, n in report.rank_counts.items()]
    shown = report.misses[:limit]
    lines.append(f"misses ({len(shown)} of {len(report.misses)}; row is 1-based, as in the data file):")
    for m in shown:
        rank = "absent" if m.rank is None else f"rank {m.rank}"
        lines.append(f"  row {m.row + 1}: {m.target!r} {rank}; top: {', '.join(m.candidates) or '-'}")
    return "\n".join(lines)
