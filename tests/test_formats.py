import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

from swipe import formats
from swipe.formats import (
    BadRowError,
    Curve,
    LayoutRegistry,
    ReadStats,
    iter_curve_chunks,
    main,
    read_curves,
    write_curves,
)
from swipe.formats import _parse_decimal_lists as parse_decimal_lists
from swipe.keyboard import Layout, LayoutError, bundled_layout

TINY = Layout.from_rows("tiny", "abc,def", 300, 200)


def row(word="abc", x=(10, 20, 30), y=(5, 6, 7), t=(0, 10, 20), grid=None, grid_name=None, **extra):
    curve = {"x": list(x), "y": list(y), "t": list(t)}
    if grid_name is not None:
        curve["grid_name"] = grid_name
    else:
        curve["grid"] = grid if grid is not None else TINY.to_grid()
    obj = {"curve": curve} if word is None else {"word": word, "curve": curve}
    obj.update(extra)
    return json.dumps(obj, ensure_ascii=False)


def write(path: Path, lines) -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape"))
    return path


def test_inline_grid_rows(tmp_path):
    path = write(tmp_path / "a.jsonl", [row("ABC"), "", row("fed", x=(1.5, 2), y=(3, 4), t=(0, 0))])
    curves = list(read_curves(path))
    assert [c.line for c in curves] == [1, 3]
    first, second = curves
    assert first.word == "abc" and first.grid_name == "tiny"
    assert first.x.dtype == np.float32 and first.t.dtype == np.float64
    np.testing.assert_array_equal(first.x, [10, 20, 30])
    np.testing.assert_array_equal(first.t, [0, 10, 20])
    np.testing.assert_array_equal(second.x, [1.5, 2])
    np.testing.assert_array_equal(second.t, [0, 0])  # duplicate timestamps are legal


def test_gzipped_files_are_read(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(row("abc") + "\n" + row("fed") + "\n")
    assert [c.word for c in read_curves(path)] == ["abc", "fed"]


def test_inline_grid_is_parsed_once_per_distinct_text(tmp_path):
    path = write(tmp_path / "a.jsonl", [row(x=(i, i + 1), y=(1, 2), t=(0, 5)) for i in range(50)])
    registry = LayoutRegistry()
    chunks = list(iter_curve_chunks(path, registry, chunk_size=16))
    assert [len(c) for c in chunks] == [16, 16, 16, 2]
    layouts = {id(layout) for c in chunks for layout in c.layouts}
    assert len(layouts) == 1  # one Layout object: later rows reuse the parsed grid
    xs = np.concatenate([c.x for c in chunks])
    np.testing.assert_array_equal(xs[::2], np.arange(50))


def test_same_grid_written_differently_is_accepted_and_a_different_grid_is_not(tmp_path):
    grid = TINY.to_grid()
    reordered = {"keys": grid["keys"], "height": grid["height"], "width": grid["width"], "grid_name": "tiny"}
    path = write(tmp_path / "a.jsonl", [row(), row(grid=reordered)])
    assert len(list(read_curves(path))) == 2
    other = Layout.from_rows("tiny", "abc,def", 600, 200).to_grid()
    path = write(tmp_path / "b.jsonl", [row(), row(grid=other)])
    with pytest.raises(BadRowError, match=r"b\.jsonl:2: grid 'tiny' differs"):
        list(read_curves(path))


def test_grid_name_rows_with_grids_file_bundled_layout_and_no_word(tmp_path):
    grids = tmp_path / "grids.json"
    grids.write_text(json.dumps({"tiny": TINY.to_grid()}), encoding="utf-8")
    path = write(tmp_path / "test.jsonl", [row(None, grid_name="tiny"), row(None, grid_name="qwerty_en")])
    curves = list(read_curves(path, grids_file=grids))
    assert [(c.word, c.grid_name) for c in curves] == [(None, "tiny"), (None, "qwerty_en")]
    assert [c.grid_name for c in read_curves(path, layouts={"tiny": TINY})] == ["tiny", "qwerty_en"]
    with pytest.raises(BadRowError, match=r"test\.jsonl:1: unknown layout 'tiny'"):
        list(read_curves(path))


def test_conflicting_explicit_layout_and_inline_grid(tmp_path):
    path = write(tmp_path / "a.jsonl", [row()])
    wide = Layout.from_rows("tiny", "abc,def", 900, 200)
    with pytest.raises(BadRowError, match="differs from the grid of that name in the layouts given"):
        list(read_curves(path, layouts={"tiny": wide}))


def test_words_are_normalised(tmp_path):
    extra = bundled_layout("extra").to_grid()
    path = write(
        tmp_path / "a.jsonl",
        [row("ЁЛКА", grid=extra), row("е\u0308ж", grid=extra), row("\u00ebж", grid=extra)],
    )
    assert [c.word for c in read_curves(path)] == ["ёлка", "ёж", "ёж"]


BAD_ROWS = [
    ('{"word": "abc", "curve": ', "broken JSON"),
    (row() + " trailing", "broken JSON"),
    (row("abc").replace("abc", "\udcff", 1), "broken JSON"),
    ("[1, 2]", "broken JSON"),
    ('{"word": "abc"}', "missing field"),
    (row().replace('"x"', '"xx"'), "missing field"),
    (json.dumps({"word": "a", "curve": {"x": [1], "y": [1], "t": [0]}}), "missing field"),
    (row(x=(1, 2), y=(1, 2, 3), t=(0, 1, 2)), "length mismatch"),
    (row(x=(), y=(), t=()), "empty curve"),
    (row(x=(1, float("nan")), y=(1, 2), t=(0, 1)), "NaN or infinite value"),
    (row(x=(1, 2), y=(1, float("inf")), t=(0, 1)), "NaN or infinite value"),
    (row(grid_name="nowhere"), "unknown layout"),
    (row(t=(0, 20, 10)), "time decreases"),
    (row(x=(1, "a", 3)), "non-numeric value"),
    (row(x=(1, None, 3)), "non-numeric value"),
    (row(word=7), "bad word"),
    (row(word=""), "bad word"),
    (row(grid={"grid_name": "broken", "width": 10}), "bad grid"),
]


@pytest.mark.parametrize("bad, reason", BAD_ROWS)
def test_bad_rows_name_file_and_line_or_are_skipped_and_counted(tmp_path, bad, reason):
    path = write(tmp_path / "data.jsonl", [row("abc"), row("fed"), bad, row("bad")])
    with pytest.raises(BadRowError, match=r"data\.jsonl:3: "):
        list(read_curves(path))
    # Strict mode still delivers the curves before the bad row.
    good = []
    with pytest.raises(BadRowError):
        for curve in read_curves(path):
            good.append(curve.word)
    assert good == ["abc", "fed"]
    stats = ReadStats()
    curves = list(read_curves(path, skip_bad_rows=True, stats=stats))
    assert [c.word for c in curves] == ["abc", "fed", "bad"]
    assert stats.skipped == {reason: 1} and stats.curves == 3
    assert reason in stats.summary()


def test_skip_counts_across_chunk_boundaries(tmp_path):
    lines = []
    for i in range(40):
        lines.append(row(t=(0, 5, 1)) if i % 7 == 3 else row(x=(i, i), y=(0, 0), t=(0, 0)))
    path = write(tmp_path / "a.jsonl", lines)
    stats = ReadStats()
    chunks = list(iter_curve_chunks(path, LayoutRegistry(), skip_bad_rows=True, stats=stats, chunk_size=5))
    lines_read = [line for c in chunks for line in c.lines]
    assert lines_read == [i + 1 for i in range(40) if i % 7 != 3]
    np.testing.assert_array_equal(
        np.concatenate([c.x for c in chunks])[::2], [i for i in range(40) if i % 7 != 3]
    )
    assert stats.skipped == {"time decreases": 6}
    with pytest.raises(BadRowError, match=r"a\.jsonl:4: time decreases"):
        list(iter_curve_chunks(path, LayoutRegistry(), chunk_size=5))


def test_first_bad_row_is_reported_even_when_a_later_row_fails_to_parse(tmp_path):
    path = write(tmp_path / "a.jsonl", [row(), row(t=(0, 5, 1)), "{broken"])
    with pytest.raises(BadRowError, match=r"a\.jsonl:2: time decreases"):
        list(read_curves(path))


# ---- curve numbers parsed as text, a chunk at once ------------------------------------------


def read_everything(path, skip_bad_rows, chunk_size):
    """All that a read gives: the chunks (points bit for bit), then the error and the stats."""
    stats = ReadStats()
    out = []
    try:
        for c in iter_curve_chunks(path, LayoutRegistry(), skip_bad_rows, stats, chunk_size):
            points = (c.x.tobytes(), c.y.tobytes(), c.t.tobytes(), c.offsets.tolist())
            out.append((points, c.words, [layout.name for layout in c.layouts], c.lines))
    except BadRowError as err:
        out.append(str(err))
    return out, stats.curves, dict(stats.skipped)


def assert_reads_as_json_alone(path, monkeypatch, chunk_sizes=(1, 3, 4096)):
    """Reading ``path`` gives what it gives when json parses every row."""
    for skip_bad_rows in (False, True):
        for chunk_size in chunk_sizes:
            got = read_everything(path, skip_bad_rows, chunk_size)
            with monkeypatch.context() as m:
                m.setattr(formats, "_text_row", lambda *args: None)
                assert got == read_everything(path, skip_bad_rows, chunk_size)


def json_values(lists):
    return np.fromiter((v for text in lists for v in json.loads(f"[{text}]")), np.float64)


def test_decimal_lists_are_parsed_bit_for_bit_as_json_parses_them():
    rng = np.random.default_rng(0)
    numbers = [str(v) for v in rng.integers(-(10**6), 10**6, 300)]
    for digits in range(1, 7):
        numbers += [f"{v:.{digits}f}" for v in rng.uniform(-5000, 5000, 100)]
    numbers += ["0", "-0", "0.0", "-0.0", "0.5", "-0.000001", "0.00000000000001", "123456789.123456"]
    numbers += ["999999999999999", "-999999999999999", "900719925474.993", "1" * 15]
    lists = [",".join(numbers[i : i + 2]) for i in range(0, len(numbers), 2)]  # more than one pass
    lists[1] = " " + lists[1].replace(",", " ,\t ") + " "
    values, counts = parse_decimal_lists([text.encode() for text in lists])
    assert values.tobytes() == json_values(lists).tobytes()  # -0.0 and 0.0 told apart
    assert counts.tolist() == [len(json.loads(f"[{text}]")) for text in lists]


ODD_NUMBERS = ["1e5", "1E-3", "-2.5e+2", "01", "-01", "00", "1 2", "1,,2", "-", "1.", ".5", "- 1", "+1"]
ODD_NUMBERS += ["--1", "1.2.3", "true", "null", "NaN", "-Infinity", '"1"', "1234567890123456", "1" + "0" * 20]


@pytest.mark.parametrize("odd", ODD_NUMBERS)
def test_numbers_other_than_plain_decimals_are_left_to_json(tmp_path, monkeypatch, odd):
    assert parse_decimal_lists([b"1,2", odd.encode()]) is None
    odd_row = row("odd", x=(1, 2, 3)).replace('"x": [1, 2, 3]', f'"x": [1, {odd}, 3]')
    path = write(tmp_path / "data.jsonl", [row("abc"), row("fed"), odd_row, row("ghi")])
    assert_reads_as_json_alone(path, monkeypatch)


TINY_GRID = json.dumps(TINY.to_grid())
LOOKALIKES = [
    '{"m": {"x": [1], "y": [2], "t": [3]}, "curve": {"x": 1, "y": 2, "t": 3, "grid_name": "qwerty_en"}}',
    '{"curve": {"\\u0078": [1], "y": [2], "t": [3], "grid_name": "qwerty_en"}}',
    '{"curve": {"x": [1], "x": [5, 6], "y": [2], "t": [3], "grid_name": "qwerty_en"}}',
    '{"curve": {"x": [1], "y": [2], "t": [3], "grid_name": "qwerty_en"}, "m": [4]}',
    '{"word": "\\"x\\": [1]", "curve": {"y": [2], "t": [3], "grid_name": "qwerty_en"}}',
    '{"curve": {"x": [1], "y": [2], "t": [3], "grid_name": "qwerty_en", "grid": 0}}',
    '{"curve": {"x" : [1], "y":[2], "t":\t[3], "grid_name": "qwerty_en"}}',
    '{"curve": {"x": [[1]], "y": [2], "t": [3], "grid_name": "qwerty_en"}}',
    '{"curve": {"x": [1], "y": [2], "t": [3], "grid_name": "nowhere"}}',
    '{"curve": {"x": [1], "y": [2], "t": [3], "grid_name": 5}}',
    '{"curve": {"x": [1], "y": [2], "t": [3], "grid_name": "qwerty_en", "gr\\u0069d": ' + TINY_GRID + "}}",
]


@pytest.mark.parametrize("lookalike", LOOKALIKES)
def test_rows_that_only_look_plain_are_left_to_json(tmp_path, monkeypatch, lookalike):
    good = row(None, x=(1,), y=(2,), t=(3,), grid_name="qwerty_en")
    path = write(tmp_path / "data.jsonl", [good, good, lookalike, good])
    assert_reads_as_json_alone(path, monkeypatch)


def test_layouts_are_registered_as_when_json_reads_every_row(tmp_path, monkeypatch):
    # Only a row that is read whole registers the bundled layout it names.
    broken = row(None, grid_name="qwerty_en").replace("[10, 20, 30]", "[10,, 30]")
    own = Layout.from_rows("qwerty_en", "abc,def", 300, 200).to_grid()
    path = write(tmp_path / "data.jsonl", [broken, row(grid=own)])
    assert_reads_as_json_alone(path, monkeypatch)
    assert len(list(read_curves(path, skip_bad_rows=True))) == 1


def test_lists_with_spaces_give_the_curves_compact_lists_give(tmp_path):
    curves = [dict(word="abc", x=(1.5, -2, 30), y=(0, 0.25, 7), t=(0, 10, 20)), dict(x=[1], y=[2], t=[3])]
    compact = [row(**c).replace(", ", ",").replace(": ", ":") for c in curves]
    spaced = [row(**c).replace("[", "[ ").replace(", ", " ,\t") for c in curves]
    files = [write(tmp_path / "compact.jsonl", compact), write(tmp_path / "spaced.jsonl", spaced)]
    got = [list(read_curves(path)) for path in files]
    for a, b in zip(*got, strict=True):
        assert [v.tobytes() for v in a[:3]] == [v.tobytes() for v in b[:3]]
        assert a[3:] == b[3:]
    np.testing.assert_array_equal(got[1][0].x, [1.5, -2, 30])


OTHER = Layout.from_rows("other", "ab,cd", 300, 200)
GRIDS = [f'"grid": {json.dumps(layout.to_grid())}' for layout in (TINY, OTHER)] + ['"grid_name": "tiny"']


def random_row(rng: random.Random) -> str:
    """A row, mostly good, with the odd number, field order, grid form or flaw."""
    n = rng.choice([1, 2, 5])
    values = [[str(rng.randint(-99, 999)) for _ in range(n)] for _ in "xy"]
    values.append([str(v) for v in sorted(rng.randint(0, 500) for _ in range(n))])
    values[0][0] = rng.choice([values[0][0], f"{rng.uniform(-50, 500):.2f}", rng.choice(ODD_NUMBERS)])
    if rng.random() < 0.05:
        values[2].reverse()
    if rng.random() < 0.05:
        values[1] = values[1][:-1]
    sep = rng.choice([",", ", "])
    fields = [f'"{key}": [{sep.join(v)}]' for key, v in zip("xyt", values, strict=True)]
    fields.append(rng.choice(GRIDS + ['"grid_name": "qwerty_en"']))
    if rng.random() < 0.2:
        rng.shuffle(fields)
    if rng.random() < 0.03:
        fields.append('"x": []')
    word = rng.choice(['"abc"', '"abc"', '"\\u0451\u0436"', '"x[y]"', '""', "7"])
    text = f'{{"word": {word}, "curve": {{{", ".join(fields)}}}}}'
    return text[: rng.randrange(len(text))] if rng.random() < 0.03 else text


def test_rows_read_as_json_alone_reads_them(tmp_path, monkeypatch):
    rng = random.Random(0)
    path = write(tmp_path / "mixed.jsonl", [random_row(rng) for _ in range(60)])
    assert_reads_as_json_alone(path, monkeypatch, chunk_sizes=(1, 4, 16, 4096))


HWS_HEADER = "sentence timestamp keyb_width keyb_height event x_pos y_pos x_radius y_radius angle word is_err"


def hws_line(event, t, x, y, word="hi", is_err=0, size=(360, 205)):
    return f"hi_there {t} {size[0]} {size[1]} {event} {x} {y} 1.2 1.2 0 {word} {is_err}"


def test_hws_log_gestures_are_scaled_onto_the_layout(tmp_path):
    lines = [
        HWS_HEADER,
        hws_line("touchstart", 1000, 36, 20.5),
        hws_line("touchmove", 1016, 72, 41),
        hws_line("touchmove", 1016, 72, 41),
        hws_line("touchend", 1030, 108, 41),
        hws_line("touchstart", 2000, 10, 10, word="There", size=(720, 410)),
        hws_line("touchend", 2010, 20, 20, word="There", size=(720, 410)),
        hws_line("touchstart", 3000, 10, 10, word="oops", is_err=1),
        hws_line("touchend", 3010, 20, 20, word="oops", is_err=1),
    ]
    path = write(tmp_path / "user.log", lines)
    layout = bundled_layout("hws_fitted")
    stats = ReadStats()
    curves = list(read_curves(path, stats=stats))
    assert [(c.word, c.line, c.grid_name) for c in curves] == [
        ("hi", 1, "hws_fitted"),
        ("there", 2, "hws_fitted"),
    ]
    sx, sy = layout.width / 360, layout.height / 205
    np.testing.assert_allclose(curves[0].x, np.array([36, 72, 72, 108]) * sx, rtol=1e-6)
    np.testing.assert_allclose(curves[0].y, np.array([20.5, 41, 41, 41]) * sy, rtol=1e-6)
    np.testing.assert_array_equal(curves[0].t, [0, 16, 16, 30])
    np.testing.assert_allclose(curves[1].x, np.array([10, 20]) * layout.width / 720, rtol=1e-6)
    assert stats.excluded == {"marked as error (is_err=1)": 1}
    with_errors = list(read_curves(path, hws_include_errors=True))
    assert [c.word for c in with_errors] == ["hi", "there", "oops"]
    tiny = list(read_curves(path, layouts={"tiny": TINY}, hws_layout="tiny"))
    np.testing.assert_allclose(tiny[0].x[0], 36 * 300 / 360, rtol=1e-6)


@pytest.mark.parametrize(
    "events, line, message, reason",
    [
        ([hws_line("touchmove", 1, 1, 1)], 2, "touchmove without touchstart", "incomplete gesture"),
        ([hws_line("touchstart", 1, 1, 1), hws_line("touchmove", 2, 1, 1)], 4, "touchstart before touchend",
         "incomplete gesture"),
        ([hws_line("touchstart", 1, 1, 1), hws_line("touchstart", 2, 1, 1), hws_line("touchend", 3, 1, 1)],
         3, "touchstart before touchend", "incomplete gesture"),
        ([hws_line("touchstart", 1, 1, 1), hws_line("touchmove", 2, "x", 1), hws_line("touchend", 3, 1, 1)],
         3, "non-numeric value", "non-numeric value"),
        ([hws_line("touchstart", 1, 1, 1), "hi 2 360 205 touchmove 1", hws_line("touchend", 3, 1, 1)], 3,
         "6 columns", "bad log line"),
        ([hws_line("touchstart", 1, 1, 1), hws_line("touchend", 3, 1, 1, size=(0, 205))], 3, "keyboard size",
         "bad log line"),
        ([hws_line("touchstart", 5, 1, 1), hws_line("touchend", 3, 1, 1)], 2, "time decreases",
         "time decreases"),
        ([hws_line("touchstart", 1, 1, 1), hws_line("touchcancel", 3, 1, 1)], 3, "unknown event",
         "bad log line"),
    ],
)  # fmt: skip
def test_bad_hws_gestures(tmp_path, events, line, message, reason):
    good = [hws_line("touchstart", 0, 1, 1, word="ok"), hws_line("touchend", 1, 1, 1, word="ok")]
    path = write(tmp_path / "user.log", [HWS_HEADER, *events, *good])
    with pytest.raises(BadRowError, match=rf"user\.log:{line}: .*{message}"):
        list(read_curves(path))
    stats = ReadStats()
    curves = list(read_curves(path, skip_bad_rows=True, stats=stats))
    assert [c.word for c in curves][-1] == "ok"
    assert stats.skipped[reason] >= 1


def test_hws_log_ending_inside_a_gesture(tmp_path):
    path = write(
        tmp_path / "user.log", [HWS_HEADER, hws_line("touchstart", 1, 1, 1), hws_line("touchmove", 2, 1, 1)]
    )
    with pytest.raises(BadRowError, match=r"user\.log:3: gesture 1: file ends before touchend"):
        list(read_curves(path))


def test_convert_hws_cli_round_trip_and_refuses_to_overwrite(tmp_path, capsys):
    log = write(
        tmp_path / "user.log",
        [HWS_HEADER, hws_line("touchstart", 100, 36, 20), hws_line("touchend", 150, 72.25, 41)],
    )
    out = tmp_path / "hws.jsonl"
    assert main(["convert-hws", str(log), "--out", str(out)]) == 0
    assert "wrote 1 curves" in capsys.readouterr().out
    (curve,) = read_curves(out)
    (direct,) = read_curves(log)
    assert curve.word == "hi" and curve.grid_name == "hws_fitted"
    np.testing.assert_allclose(curve.x, direct.x, atol=0.006)
    np.testing.assert_array_equal(curve.t, [0, 50])
    assert main(["convert-hws", str(log), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["convert-hws", str(log), "--out", str(out), "--overwrite"]) == 0


def test_write_curves_round_trip(tmp_path):
    curves = [
        Curve(
            np.array([1.25, 2.5], np.float32),
            np.array([3, 4], np.float32),
            np.array([0.0, 8.5]),
            "ab",
            "tiny",
            1,
        ),
        Curve(np.array([7], np.float32), np.array([8], np.float32), np.array([0.0]), None, "tiny", 2),
    ]
    out = tmp_path / "out.jsonl"
    assert write_curves(curves, out) == 2
    back = list(read_curves(out, layouts={"tiny": TINY}))
    for a, b in zip(curves, back, strict=True):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.t, b.t)
        assert (a.word, a.grid_name, a.line) == (b.word, b.grid_name, b.line)
    with pytest.raises(FileExistsError):
        write_curves(curves, out)
    assert list(tmp_path.iterdir()) == [out]  # no temporary files left behind


def test_unknown_hws_layout_is_an_error(tmp_path):
    path = write(tmp_path / "user.log", [HWS_HEADER])
    with pytest.raises(LayoutError, match="unknown layout 'nope'"):
        list(read_curves(path, hws_layout="nope"))


def test_check_cli(tmp_path, capsys):
    path = write(tmp_path / "a.jsonl", [row(), row(t=(0, 5, 1))])
    assert main(["check", str(path)]) == 1  # bad rows: the check fails
    out = capsys.readouterr().out
    assert "1 curves; skipped 1 (time decreases: 1)" in out and "'tiny': 1" in out
    assert "a.jsonl:2: time decreases" in out
