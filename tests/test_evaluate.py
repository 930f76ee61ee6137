import csv
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import evaluate
from swipe.predictions import Predictions, write_predictions
from swipe.results import COLUMNS, ResultsError, predictor_key, read_results

ROOT = Path(__file__).resolve().parents[1]

METADATA = {
    "model": {"encoder": {"d_model": 8}},
    "weights": "runs/a/model.pt",
    "weights_sha256": "ab" * 32,
    "generator": "beam",
    "generator_options": {"beam_size": 4},
    "layout_names": ["qwerty_en"],
    "data_file": "val.jsonl",
    "split": "val",
}


def write(path: Path, targets=("cat", "dog"), **metadata) -> Path:
    preds = Predictions(
        candidates=[[(-0.1, "cat"), (-1.0, "car")], [(-0.2, "dot"), (-0.3, "dog")]][: len(targets)],
        targets=list(targets),
        layouts=["qwerty_en"] * len(targets),
        metadata=dict(METADATA, **metadata),
    )
    write_predictions(path, preds)
    return path


def run(argv, capsys):
    code = evaluate.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_metrics_and_breakdowns(tmp_path, capsys):
    preds = write(tmp_path / "preds.pkl")
    code, out, _ = run([preds, "--no-results"], capsys)
    assert code == 0
    assert "swipe_mrr    0.5500" in out  # (1 + 0.1) / 2
    assert "accuracy@1   0.5000" in out
    assert "recall@4     1.0000" in out
    assert "curves       2" in out
    assert "word length" in out and "layout" in out and "qwerty_en" in out
    assert "generator beam" in out
    assert not (tmp_path / "results.csv").exists()


def test_results_row_added_once_then_updated(tmp_path, capsys):
    preds, table = write(tmp_path / "preds.pkl"), tmp_path / "results.csv"
    code, out, _ = run([preds, "--results", table], capsys)
    assert code == 0 and "results: added row" in out
    rows = read_results(table)
    assert len(rows) == 1
    row = rows[0]
    assert row["key"] == predictor_key(METADATA)
    assert row["swipe_mrr"] == "0.550000" and row["num_scored"] == "2"
    assert row["generator_options"] == '{"beam_size":4}' and row["split"] == "val"

    # the same predictor again (its weights moved elsewhere): updated in place, no second row
    write(tmp_path / "again.pkl", weights="elsewhere/model.pt", targets=("cat",))
    code, out, _ = run([tmp_path / "again.pkl", "--results", table], capsys)
    assert "results: updated row" in out
    rows = read_results(table)
    assert len(rows) == 1 and rows[0]["swipe_mrr"] == "1.000000"


@pytest.mark.parametrize(
    "change",
    [
        {"generator_options": {"beam_size": 5}},
        {"generator_options": {"beam_size": 4, "max_length": 20}},
        {"generator": "greedy"},
        {"weights_sha256": "cd" * 32},
        {"model": {"encoder": {"d_model": 16}}},
        {"layout_names": ["default"]},
        {"split": "test"},
        {"data_file": "other.jsonl"},
        {"lexicon": "ru"},  # any extra metadata key is part of the identity too
    ],
)
def test_predictors_differing_in_anything_get_their_own_rows(tmp_path, capsys, change):
    table = tmp_path / "results.csv"
    run([write(tmp_path / "a.pkl"), "--results", table], capsys)
    run([write(tmp_path / "b.pkl", **change), "--results", table], capsys)
    rows = read_results(table)
    assert len(rows) == 2 and rows[0]["key"] != rows[1]["key"]
    if "lexicon" in change:
        assert rows[1]["other"] == '{"lexicon":"ru"}'


def test_several_files_in_one_call(tmp_path, capsys):
    table = tmp_path / "results.csv"
    a, b = write(tmp_path / "a.pkl"), write(tmp_path / "b.pkl", generator="greedy")
    code, out, _ = run([a, b, "--results", table], capsys)
    assert code == 0 and out.count("swipe_mrr    ") == 2 and f"== {a}" in out and f"== {b}" in out
    assert [r["generator"] for r in read_results(table)] == ["beam", "greedy"]


def test_without_targets_reported_not_scored(tmp_path, capsys):
    table = tmp_path / "results.csv"
    code, out, _ = run([write(tmp_path / "test.pkl", targets=(None, None)), "--results", table], capsys)
    assert code == 0
    assert "no targets: 2 curves, not scored" in out
    assert "swipe_mrr " not in out
    assert "not recorded" in out and not table.exists()


def test_mixed_targets_scores_only_rows_with_targets(tmp_path, capsys):
    table = tmp_path / "results.csv"
    code, out, _ = run([write(tmp_path / "mixed.pkl", targets=("cat", None)), "--results", table], capsys)
    assert "swipe_mrr    1.0000" in out
    assert "no targets: 1 of 2 curves, not scored" in out
    row = read_results(table)[0]
    assert (row["num_curves"], row["num_scored"]) == ("2", "1")


def test_malicious_file_refused_nothing_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"format": "swipe-predictions", "x": Exploit()}))
    good = write(tmp_path / "good.pkl")
    code, out, err = run([good, evil, "--results", tmp_path / "results.csv"], capsys)
    assert code == 1
    assert "evil.pkl" in err and "refusing to load global" in err
    assert not marker.exists()
    assert not (tmp_path / "results.csv").exists()  # all files are read before anything is recorded


def test_foreign_results_table_left_alone(tmp_path, capsys):
    table = tmp_path / "results.csv"
    table.write_text("name,score\nmine,1\n")
    code, _, err = run([write(tmp_path / "p.pkl"), "--results", table], capsys)
    assert code == 1 and "results.csv:1: the header" in err
    assert table.read_text() == "name,score\nmine,1\n"


def test_results_table_is_valid_csv_with_awkward_values(tmp_path, capsys):
    table = tmp_path / "results.csv"
    run([write(tmp_path / "p.pkl", data_file='we,ird "name".jsonl\nx'), "--results", table], capsys)
    with open(table, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS and rows[1][COLUMNS.index("data_file")] == 'we,ird "name".jsonl\nx'


def test_duplicate_keys_in_table_are_an_error(tmp_path, capsys):
    table = tmp_path / "results.csv"
    run([write(tmp_path / "p.pkl"), "--results", table], capsys)
    lines = table.read_text().splitlines()
    table.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(ResultsError, match="results.csv:3: key .* already on line 2"):
        read_results(table)


def test_command_line(tmp_path):
    preds = write(tmp_path / "preds.pkl")
    result = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), str(preds)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "swipe_mrr" in result.stdout
    assert (tmp_path / "results.csv").exists()  # the default table, in the working directory


def _record_many(table: str, worker: int) -> None:
    from swipe.metrics import Scores
    from swipe.results import record_result

    for i in range(5):
        md = dict(METADATA, generator_options={"worker": worker, "i": i})
        record_result(table, "p.pkl", md, Scores(1, 1, 1.0, 1.0, 1.0))


def test_concurrent_evaluations_lose_no_rows(tmp_path):
    import multiprocessing

    table = str(tmp_path / "results.csv")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_many, args=(table, w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    assert len(read_results(table)) == 20


def test_misses_option_prints_ranks_and_misses(tmp_path, capsys):
    preds = write(tmp_path / "preds.pkl")
    code, out, _ = run([preds, "--no-results", "--misses", "5"], capsys)
    assert code == 0
    assert "target rank among all candidates:" in out
    assert "  row 2: 'dog' rank 2; top: dot, dog" in out
    code, out, _ = run([preds, "--no-results"], capsys)
    assert "target rank" not in out
