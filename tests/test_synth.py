import json

import numpy as np
import pytest

from swipe.config import ConfigError, from_dict
from swipe.keyboard import Layout, LayoutError, bundled_layout
from swipe.lexicon import Lexicon
from swipe.synth import SynthConfig, main, synthesize_curve, typeable_words, word_keys, write_synthetic_jsonl


@pytest.fixture(scope="module")
def hws() -> Layout:
    return bundled_layout("hws_fitted")


def small_lexicon() -> Lexicon:
    words = ["hello", "world", "swipe", "keyboard", "a", "see"]
    return Lexicon(words, [50.0, 20.0, 10.0, 5.0, 3.0, 1.0], "small")


def curves_equal(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def test_same_seed_same_curve_other_seed_differs(hws) -> None:
    a = synthesize_curve("keyboard", hws, np.random.default_rng(7))
    b = synthesize_curve("keyboard", hws, np.random.default_rng(7))
    c = synthesize_curve("keyboard", hws, np.random.default_rng(8))
    assert curves_equal(a, b)
    assert not curves_equal(a, c)
    assert a.x.dtype == np.float32 and a.y.dtype == np.float32 and a.t.dtype == np.float64


def test_device_scale_narrows_the_keyboard_about_its_left_edge(hws) -> None:
    def mean_x(config: SynthConfig) -> float:
        rng = np.random.default_rng(0)
        return float(np.mean([synthesize_curve("pool", hws, rng, config).x.mean() for _ in range(40)]))

    plain = mean_x(SynthConfig())
    assert mean_x(SynthConfig(device_scale_x=0.8)) == pytest.approx(0.8 * plain, rel=0.03)
    # A log-normal spread about the median scale.
    assert mean_x(SynthConfig(device_scale_x=0.8, device_scale_x_std=0.1)) < 0.85 * plain
    with pytest.raises(ValueError, match="device_scale_x"):
        SynthConfig(device_scale_x=0.0)


def test_points_stay_near_the_keyboard(hws) -> None:
    rng = np.random.default_rng(0)
    margin_x, margin_y = 0.5 * hws.key_width + 0.5, 0.5 * hws.key_height + 0.5  # + rounding to pixels
    for _ in range(50):
        c = synthesize_curve("qazwsxplmokn", hws, rng)
        assert np.all(np.isfinite(c.x)) and np.all(np.isfinite(c.y))
        assert c.x.min() >= -margin_x and c.x.max() <= hws.width + margin_x
        assert c.y.min() >= -margin_y and c.y.max() <= hws.height + margin_y


@pytest.mark.parametrize("layout_name", ["hws_fitted", "default"])
def test_curve_passes_near_its_keys(layout_name: str) -> None:
    layout = bundled_layout(layout_name)
    word = "participate" if layout_name == "hws_fitted" else "клавиатура"
    rng = np.random.default_rng(1)
    unit = layout.key_width
    start_d, end_d, near = [], [], []
    for _ in range(40):
        c = synthesize_curve(word, layout, rng)
        centres = layout.centers[word_keys(word, layout)].astype(np.float64)
        start_d.append(np.hypot(c.x[0] - centres[0, 0], c.y[0] - centres[0, 1]) / unit)
        end_d.append(np.hypot(c.x[-1] - centres[-1, 0], c.y[-1] - centres[-1, 1]) / unit)
        closest = np.hypot(c.x[:, None] - centres[:, 0], c.y[:, None] - centres[:, 1]).min(axis=0) / unit
        near.append(np.mean(closest < 1.0))
    assert np.median(start_d) < 0.7 and np.median(end_d) < 0.8
    assert np.mean(near) > 0.85, "the curve passes within a key width of most of its letters' keys"


def test_timing_is_monotone_and_sampling_rate_in_range(hws) -> None:
    config = SynthConfig(rate_hz_min=60.0, rate_hz_max=120.0, sensor_pitch=0.0)
    rng = np.random.default_rng(2)
    for word in ["hello", "keyboard", "a", "mississippi"]:
        for _ in range(10):
            c = synthesize_curve(word, hws, rng, config)
            assert c.t[0] == 0.0 and len(c.t) == len(c.x) == len(c.y)
            assert np.all(np.diff(c.t) >= 0)
            dt = np.diff(c.t)[:-1]  # the last step is the lift-off event
            if len(dt) >= 5:
                period = np.median(dt)
                assert 1000 / 120 - 1.5 <= period <= 1000 / 60 + 1.5


def test_repeated_letters_dwell_on_one_key(hws) -> None:
    exact = SynthConfig(
        target_std_x=0.0, target_std_y=0.0, shift_std_x=0.0, shift_std_y=0.0, scale_std=0.0,
        corner_overshoot=0.0, pause_prob=0.0, sensor_pitch=0.0,
    )
    l_key = hws.centers[hws.key_index("l")]

    def time_on_l(word: str, rng: np.random.Generator) -> float:
        c = synthesize_curve(word, hws, rng, exact)
        on_l = np.hypot(c.x - l_key[0], c.y - l_key[1]) < 0.3 * hws.key_width
        return float(np.ptp(c.t[on_l])) if on_l.any() else 0.0

    rng = np.random.default_rng(3)
    doubled = [time_on_l("hello", rng) for _ in range(20)]
    single = [time_on_l("helo", rng) for _ in range(20)]
    assert min(doubled) > 0, "a doubled letter's key is reached exactly (no corner is cut there)"
    assert np.mean(doubled) > np.mean(single) + 40, "the finger dwells on a doubled letter"
    tap = synthesize_curve("aa", hws, rng, exact)
    a_key = hws.centers[hws.key_index("a")]
    assert np.all(np.hypot(tap.x - a_key[0], tap.y - a_key[1]) < hws.key_width), "one key: a tap"


def test_unknown_character_is_an_error(hws) -> None:
    with pytest.raises(LayoutError, match="no key for 'ж'"):
        synthesize_curve("жук", hws, np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty"):
        synthesize_curve("", hws, np.random.default_rng(0))


def test_russian_letters_without_keys_map_to_their_fallback() -> None:
    default = bundled_layout("default")
    assert list(word_keys("ёъ", default)) == [default.key_index("е"), default.key_index("ь")]
    synthesize_curve("подъём", default, np.random.default_rng(0))


def test_config_is_strict() -> None:
    assert from_dict(SynthConfig, {"overlap": 0.2}).overlap == 0.2
    with pytest.raises(ConfigError, match="overlapp"):
        from_dict(SynthConfig, {"overlapp": 0.2})
    with pytest.raises(ConfigError, match="rate_hz_min"):
        from_dict(SynthConfig, {"rate_hz_min": 130.0})
    with pytest.raises(ValueError, match="jitter_ms"):
        SynthConfig(jitter_ms=-1.0)


def test_typeable_words_counts_skipped(hws) -> None:
    lex = Lexicon(["cat", "жук", "dog"], [1.0, 1.0, 1.0])
    result = typeable_words(lex, hws)
    assert result.lexicon.words == ["cat", "dog"] and result.skipped == 1


def test_write_jsonl_is_deterministic_and_valid(tmp_path, hws) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert write_synthetic_jsonl(a, hws, small_lexicon(), 200, seed=5) == 200
    write_synthetic_jsonl(b, hws, small_lexicon(), 200, seed=5)
    write_synthetic_jsonl(c, hws, small_lexicon(), 200, seed=6)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    rows = [json.loads(line) for line in a.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 200
    for row in rows:
        curve = row["curve"]
        assert set(curve) == {"x", "y", "t", "grid"}
        assert Layout.from_grid(curve["grid"]) == hws
        assert len(curve["x"]) == len(curve["y"]) == len(curve["t"]) >= 2
    counts = {w: sum(r["word"] == w for r in rows) for w in small_lexicon().words}
    assert counts["hello"] > counts["keyboard"] > counts["see"], "drawn by frequency"
    with pytest.raises(FileExistsError):
        write_synthetic_jsonl(a, hws, small_lexicon(), 10, seed=1)


def test_write_uniform_by_name_and_several_layouts(tmp_path) -> None:
    layouts = [bundled_layout("default"), bundled_layout("extra")]
    lex = Lexicon(["ёж", "съел", "мир", "да"], [1000.0, 1.0, 1.0, 1.0])
    out = tmp_path / "ru.jsonl"
    write_synthetic_jsonl(out, layouts, lex, 400, seed=0, by_frequency=False, inline_grid=False)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert {r["curve"]["grid_name"] for r in rows} == {"default", "extra"}
    assert all("grid" not in r["curve"] for r in rows)
    share = sum(r["word"] == "ёж" for r in rows) / len(rows)
    assert 0.15 < share < 0.35, "uniform, not by frequency"


def test_cli_writes_valid_jsonl_and_refuses_to_overwrite(tmp_path, capsys) -> None:
    out = tmp_path / "synth.jsonl"
    args = ["--layout", "qwerty_en", "--lexicon", "en", "--count", "50", "--seed", "3", "--out", str(out)]
    assert main(args) == 0
    first = out.read_bytes()
    rows = [json.loads(line) for line in first.decode("utf-8").splitlines()]
    assert len(rows) == 50 and all(r["curve"]["grid"]["grid_name"] == "qwerty_en" for r in rows)
    assert main(args) == 1
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == first
    assert main([*args, "--overwrite", "--grid-by-name", "--uniform"]) == 0
    assert all(json.loads(line)["curve"]["grid_name"] == "qwerty_en" for line in out.read_text().splitlines())


def test_cli_config_file_and_grids_file(tmp_path, capsys) -> None:
    grids = tmp_path / "grids.json"
    grids.write_text(json.dumps({"mine": Layout.from_rows("mine", "abc,def", 300, 200).to_grid()}))
    lexicon = tmp_path / "lex.tsv"
    lexicon.write_text("bad\t3\nfed\t2\nxyz\t1\n", encoding="utf-8")
    config = tmp_path / "synth.json"
    config.write_text(json.dumps({"rate_hz_min": 100, "rate_hz_max": 100}))
    out = tmp_path / "out.jsonl"
    args = ["--layout", str(grids), "--lexicon", str(lexicon), "--count", "20", "--out", str(out)]
    assert main([*args, "--config", str(config)]) == 0
    assert "skipping 1 of 3 words" in capsys.readouterr().err
    words = {json.loads(line)["word"] for line in out.read_text().splitlines()}
    assert words <= {"bad", "fed"}
    config.write_text(json.dumps({"rate_hz": 100}))
    assert main([*args, "--overwrite", "--config", str(config)]) == 1
    assert "rate_hz: unknown key" in capsys.readouterr().err


def test_frequency_power_flattens_the_word_distribution(tmp_path, hws) -> None:
    lex = Lexicon(["the", "cat"], [99.0, 1.0])

    def share_of_cat(power: float) -> float:
        out = tmp_path / f"p{power}.jsonl"
        write_synthetic_jsonl(out, hws, lex, 400, seed=0, frequency_power=power)
        return sum(json.loads(line)["word"] == "cat" for line in out.read_text().splitlines()) / 400

    assert share_of_cat(1.0) < 0.05 < share_of_cat(0.5) < 0.3 < share_of_cat(0.0)
    with pytest.raises(ValueError, match="frequency_power"):
        write_synthetic_jsonl(tmp_path / "x.jsonl", hws, lex, 1, seed=0, frequency_power=-1.0)
