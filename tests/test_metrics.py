import pytest

from swipe.metrics import (
    Miss,
    Scores,
    find_misses,
    format_misses,
    format_report,
    score_predictions,
    swipe_mrr_score,
    target_rank,
    unique_words,
)
from swipe.predictions import Predictions

METADATA = {
    "model": {},
    "weights": "model.pt",
    "weights_sha256": "00",
    "generator": "beam",
    "generator_options": {},
    "layout_names": ["qwerty_en"],
    "data_file": "val.jsonl",
    "split": "val",
}


def predictions(rows: list[tuple[list[str], str | None, str]]) -> Predictions:
    """Rows of (candidate words best first, target, layout)."""
    return Predictions(
        candidates=[[(-float(i), w) for i, w in enumerate(words)] for words, _, _ in rows],
        targets=[t for _, t, _ in rows],
        layouts=[layout for _, _, layout in rows],
        metadata=METADATA,
    )


@pytest.mark.parametrize(
    "words, expected",
    [
        (["cat", "car", "cab", "can"], 1.0),
        (["car", "cat", "cab", "can"], 0.1),
        (["car", "cab", "cat", "can"], 0.09),
        (["car", "cab", "can", "cat"], 0.08),
        (["car", "cab", "can", "cap", "cat"], 0.0),  # fifth: out of the scored four
    ],
)
def test_swipe_mrr_weights_by_rank(words, expected):
    assert swipe_mrr_score(words, "cat") == pytest.approx(expected)


@pytest.mark.parametrize(
    "words, expected",
    [
        # duplicates are removed before ranking, the first occurrence kept
        (["car", "car", "cat"], 0.1),
        (["car", "car", "car", "cab", "cat"], 0.09),
        (["cat", "cat", "car"], 1.0),
        (["car", "cat", "car", "cat"], 0.1),
        # four distinct words before the target: not scored even though it is the 6th entry
        (["a", "b", "a", "c", "d", "cat"], 0.0),
        # the target's duplicate does not move it up or down
        (["a", "b", "c", "b", "cat"], 0.08),
    ],
)
def test_swipe_mrr_duplicates_removed_first(words, expected):
    assert swipe_mrr_score(words, "cat") == pytest.approx(expected)


@pytest.mark.parametrize(
    "words, expected",
    [([], 0.0), (["car"], 0.0), (["cat"], 1.0), (["car", "cat"], 0.1), (["car", "cab", "cat"], 0.09)],
)
def test_swipe_mrr_fewer_than_four_candidates(words, expected):
    assert swipe_mrr_score(words, "cat") == pytest.approx(expected)


def test_target_rank_and_unique_words():
    assert unique_words(["a", "b", "a", "c"]) == ["a", "b", "c"]
    assert unique_words(["a", "a", "b", "c"], limit=2) == ["a", "b"]
    assert target_rank(["a", "a", "b"], "b") == 2
    assert target_rank(["a", "b"], "z") is None
    assert target_rank(["a", "b", "c"], "c", k=2) is None


def test_words_compared_exactly():
    assert swipe_mrr_score(["Cat"], "cat") == 0.0


def test_report_hand_worked():
    preds = predictions(
        [
            (["cat", "car"], "cat", "qwerty_en"),  # rank 1 -> 1.0
            (["car", "car", "cat"], "cat", "qwerty_en"),  # rank 2 after de-duplication -> 0.1
            (["hello", "help", "hell", "helm", "hello!"], "hello!", "default"),  # rank 5 -> 0
            (["dog"], None, "default"),  # no target: counted, not scored
        ]
    )
    report = score_predictions(preds)
    o = report.overall
    assert (o.num_curves, o.num_scored, o.num_without_targets) == (4, 3, 1)
    assert o.swipe_mrr == pytest.approx((1.0 + 0.1 + 0.0) / 3)
    assert o.accuracy == pytest.approx(1 / 3)
    assert o.recall_at_4 == pytest.approx(2 / 3)

    assert list(report.by_word_length) == [3, 6]
    assert report.by_word_length[3] == Scores(2, 2, pytest.approx(0.55), 0.5, 1.0)
    assert report.by_word_length[6].swipe_mrr == 0.0

    assert list(report.by_layout) == ["default", "qwerty_en"]
    assert report.by_layout["default"] == Scores(2, 1, 0.0, 0.0, 0.0)
    assert report.by_layout["qwerty_en"].swipe_mrr == pytest.approx(0.55)


def test_candidate_order_not_scores_decides_rank():
    # the list is best first by contract; the scores are not re-sorted
    preds = Predictions([[(-5.0, "cat"), (0.0, "car")]], ["cat"], ["l"], METADATA)
    assert score_predictions(preds).overall.swipe_mrr == 1.0


def test_no_targets_not_scored_as_zero():
    preds = predictions([(["cat"], None, "l"), (["dog"], None, "l")])
    report = score_predictions(preds)
    assert report.overall == Scores(2, 0, None, None, None)
    assert report.by_word_length == {}
    assert format_report(report) == "no targets: 2 curves, not scored"


def test_format_report_mentions_everything():
    preds = predictions([(["cat"], "cat", "qwerty_en"), (["dog"], None, "default")])
    text = format_report(score_predictions(preds))
    assert "swipe_mrr    1.0000" in text
    assert "accuracy@1   1.0000" in text
    assert "recall@4     1.0000" in text
    assert "curves       2" in text
    assert "no targets: 1 of 2 curves, not scored" in text
    assert "word length" in text and "layout" in text
    default_line = next(line for line in text.splitlines() if line.startswith("default"))
    assert "no targets, not scored" in default_line


def test_misses_count_ranks_over_whole_lists_and_list_the_misses_in_row_order():
    preds = predictions([
        (["cat", "car"], "cat", "l"),                       # rank 1
        (["car", "car", "cat"], "cat", "l"),                # rank 2 once the repeat is dropped
        (["a", "b", "c", "d", "e", "cat"], "cat", "l"),     # rank 6: counted, though Swipe MRR stops at 4
        (["car", "cab"], "cat", "l"),                       # absent
        (["dog"], None, "l"),                               # no target: neither counted nor listed
        ([], "cat", "l"),                                   # no candidates: absent
    ])
    report = find_misses(preds, num_candidates=2)
    assert report.rank_counts == {"1": 1, "2": 1, "3-4": 0, "5+": 1, "absent": 2}
    assert report.misses == [
        Miss(1, "cat", 2, ("car", "cat")),
        Miss(2, "cat", 6, ("a", "b")),
        Miss(3, "cat", None, ("car", "cab")),
        Miss(5, "cat", None, ()),
    ]
    text = format_misses(report, limit=2)
    assert "  1            1   20.0%" in text and "  absent       2   40.0%" in text
    assert "misses (2 of 4; row is 1-based, as in the data file):" in text
    assert text.splitlines()[-1] == "  row 3: 'cat' rank 6; top: a, b"
    unlabelled = find_misses(predictions([(["dog"], None, "l")]))
    assert format_misses(unlabelled, 5) == "no targets: no misses to show"
