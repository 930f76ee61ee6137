import json

import numpy as np
import pytest

from swipe.keyboard import (
    BUNDLED_LAYOUT_NAMES,
    Layout,
    LayoutError,
    bundled_layout,
    load_layouts_file,
    normalize_label,
    resolve_layout,
)
from swipe.tokenizers import CharTokenizer


def _probe_points(layout: Layout, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random pixels plus every pixel on and next to each hitbox edge, where ties are decided."""
    ny, nx = layout.nearest_key_table.shape
    xs = [rng.integers(0, nx, 10_000)]
    ys = [rng.integers(0, ny, 10_000)]
    for key in layout.keys:
        for edge in (key.x, key.x + key.w):
            for col in (np.floor(edge), np.ceil(edge)):
                if 0 <= col < nx:
                    xs.append(np.full(ny, col, np.int64))
                    ys.append(np.arange(ny))
        for edge in (key.y, key.y + key.h):
            for row in (np.floor(edge), np.ceil(edge)):
                if 0 <= row < ny:
                    xs.append(np.arange(nx))
                    ys.append(np.full(nx, row, np.int64))
    flat = np.unique(np.concatenate(ys) * nx + np.concatenate(xs))
    return flat % nx, flat // nx


@pytest.mark.parametrize("name", BUNDLED_LAYOUT_NAMES)
def test_nearest_key_table_matches_brute_force(name):
    layout = bundled_layout(name)
    table = layout.nearest_key_table
    assert table.dtype == np.uint8
    assert table.shape == (int(np.ceil(layout.height)) + 1, int(np.ceil(layout.width)) + 1)
    x, y = _probe_points(layout, np.random.default_rng(0))
    np.testing.assert_array_equal(table[y, x], layout.nearest_keys_exact(x, y))


def test_nearest_key_table_matches_brute_force_everywhere_on_a_small_layout():
    layout = Layout.from_rows("small", "qwertyuiop,asdfghjkl,zxcvbnm", 123.4, 77.7)
    ny, nx = layout.nearest_key_table.shape
    gy, gx = np.mgrid[0:ny, 0:nx]
    np.testing.assert_array_equal(layout.nearest_key_table, layout.nearest_keys_exact(gx, gy))


def test_nearest_keys_outside_the_table_fall_back_to_exact():
    layout = bundled_layout("qwerty_en")
    x = np.array([-50.0, 2000.0, 10.0, 540.0])
    y = np.array([-10.0, 300.0, 900.0, -400.0])
    np.testing.assert_array_equal(
        layout.nearest_keys(x, y), layout.nearest_keys_exact(np.rint(x), np.rint(y))
    )


def test_key_centres_are_their_own_nearest_key():
    for name in BUNDLED_LAYOUT_NAMES:
        layout = bundled_layout(name)
        cx, cy = layout.centers[:, 0], layout.centers[:, 1]
        np.testing.assert_array_equal(layout.nearest_keys(cx, cy), np.arange(layout.num_keys))


def test_bundled_layouts_parse_and_round_trip():
    for name in BUNDLED_LAYOUT_NAMES:
        layout = bundled_layout(name)
        assert layout.name == name
        assert Layout.from_grid(layout.to_grid()) == layout
        assert resolve_layout(name) is layout
    default = bundled_layout("default")
    assert (default.width, default.height) == (1080, 667)
    assert set("йцукенгшщзхфывапролджэячсмитьбю") <= set(default.letters)
    assert any(k.is_action for k in default.keys)
    assert set("abcdefghijklmnopqrstuvwxyz") <= set(bundled_layout("qwerty_en").letters)
    with pytest.raises(LayoutError, match="no bundled layout"):
        bundled_layout("dvorak")


def test_yo_look_alikes_map_to_one_key_on_extra():
    extra = bundled_layout("extra")
    yo = extra.key_index("\u0451")
    for variant in ("\u0401", "\u00eb", "\u00cb", "\u0435\u0308", "e\u0308"):
        assert extra.key_index(variant) == yo, repr(variant)
        assert extra.key_index_for_char(variant) == yo
    assert extra.key_index("\u0435") != yo
    assert normalize_label("\u0401\u041b\u041a\u0410") == "\u0451\u043b\u043a\u0430"
    assert normalize_label("\u0435\u0308\u0436") == "\u0451\u0436"
    assert normalize_label("\u00ebж") == "\u0451ж"


def test_default_layout_types_yo_and_hard_sign_on_fallback_keys():
    default = bundled_layout("default")
    assert not default.has_key("ё")
    assert default.key_index_for_char("Ё") == default.key_index("е")
    assert default.key_index_for_char("ъ") == default.key_index("ь")
    with pytest.raises(LayoutError):
        default.key_index_for_char("q")


def test_from_rows_geometry():
    layout = Layout.from_rows("demo", "qwertyuiop,asdfghjkl,zxcvbnm", 1000, 300)
    assert layout.num_keys == 26 and layout.letters == "qwertyuiopasdfghjklzxcvbnm"
    assert layout.key_width == pytest.approx(100) and layout.key_height == pytest.approx(100)
    a = layout.keys[layout.key_index("a")]
    z = layout.keys[layout.key_index("z")]
    assert (a.x, a.y) == pytest.approx((50, 100))  # 9 keys centred in a 10-key row
    assert (z.x, z.y) == pytest.approx((150, 200))
    assert layout.half_diagonal == pytest.approx(0.5 * np.hypot(100, 100))
    assert Layout.from_rows("demo", ["ЙЦУ", "ФЫ"], 300, 200).letters == "йцуфы"
    assert CharTokenizer.from_layouts([layout]).alphabet == layout.letters
    with pytest.raises(LayoutError):
        Layout.from_rows("empty", "", 100, 100)


def test_key_distances_are_in_half_diagonals():
    layout = Layout.from_rows("demo", "ab", 200, 100)
    d = layout.key_distances(np.array([50.0]), np.array([50.0]))
    assert d.shape == (1, 2) and d.dtype == np.float32
    assert d[0, 0] == pytest.approx(0.0)
    assert d[0, 1] == pytest.approx(100 / layout.half_diagonal)


BOX = {"x": 0, "y": 0, "w": 1, "h": 1}


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"grid_name": "g", "height": 10, "keys": []}, "missing 'width'"),
        ({"grid_name": "g", "width": 10, "height": 10, "keys": [{"hitbox": BOX}]},
         "neither 'label' nor 'action'"),
        ({"grid_name": "g", "width": 10, "height": 10, "keys": [{"label": "a", "hitbox": {**BOX, "w": 0}}]},
         "empty hitbox"),
        ({"grid_name": "g", "width": 10, "height": 10, "keys": [{"label": "a"}]}, "no valid hitbox"),
        ({"width": 10, "height": 10, "keys": []}, "missing 'grid_name'"),
    ],
)  # fmt: skip
def test_malformed_grids_are_rejected(grid, message):
    with pytest.raises(LayoutError, match=message):
        Layout.from_grid(grid)


def test_load_layouts_file_accepts_mapping_and_list(tmp_path):
    grids = {name: bundled_layout(name).to_grid() for name in ("default", "hws_fitted")}
    as_dict = tmp_path / "grids.json"
    as_dict.write_text(json.dumps(grids, ensure_ascii=False), encoding="utf-8")
    as_list = tmp_path / "grids_list.json"
    as_list.write_text(json.dumps(list(grids.values()), ensure_ascii=False), encoding="utf-8")
    for path in (as_dict, as_list):
        layouts = load_layouts_file(path)
        assert layouts == {name: bundled_layout(name) for name in grids}
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(LayoutError, match="broken.json"):
        load_layouts_file(broken)


def test_can_type_follows_the_key_fallbacks() -> None:
    default, english = bundled_layout("default"), bundled_layout("hws_fitted")
    assert default.can_type("ё") and default.can_type("ъ") and default.can_type("Ж")
    assert not default.can_type("a") and not english.can_type("ï") and not english.can_type("")
    assert all(english.can_type(c) == english.has_key(c) for c in "abcxyz")
