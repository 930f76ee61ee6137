import re

import numpy as np
import pytest

from swipe.keyboard import bundled_layout, normalize_label
from swipe.lexicon import Lexicon, LexiconError, load_lexicon
from swipe.make_lexicon import LANGUAGES, alphabet, clean_words, language_spec, main


def test_bundled_english_lexicon() -> None:
    lex = load_lexicon("en")
    assert 45_000 <= len(lex) <= 50_000
    assert lex.words[:3] == ["the", "to", "and"]
    assert lex.frequencies.dtype == np.float64 and len(lex.frequencies) == len(lex)
    assert np.all(np.diff(lex.frequencies) <= 0), "sorted by frequency, most frequent first"
    assert all(re.fullmatch("[a-z]+", w) for w in lex.words)
    assert "dont" in lex and "don't" not in lex
    layout = bundled_layout("hws_fitted")
    assert all(layout.has_key(ch) for ch in set("".join(lex.words)))


def test_bundled_russian_lexicon_has_yo_and_hard_sign() -> None:
    lex = load_lexicon("ru")
    assert 45_000 <= len(lex) <= 50_000
    assert lex.words[0] == "в"
    assert all(re.fullmatch("[а-яё]+", w) for w in lex.words)
    assert any("ё" in w for w in lex.words) and any("ъ" in w for w in lex.words)
    assert all(w == normalize_label(w) for w in lex.words[:1000])
    default = bundled_layout("default")
    for ch in set("".join(lex.words)):
        default.key_index_for_char(ch)  # every letter is typeable (ъ on ь, ё on е)


def test_lexicon_is_read_only_and_indexed() -> None:
    lex = Lexicon(["b", "a"], [2.0, 1.0], "t")
    assert lex.index("a") == 1 and "b" in lex and "c" not in lex
    assert np.allclose(lex.probabilities, [2 / 3, 1 / 3])
    with pytest.raises(ValueError):
        lex.frequencies[0] = 5.0
    assert len(lex.filter([False, True])) == 1
    with pytest.raises(LexiconError, match="duplicate"):
        Lexicon(["a", "a"], [1.0, 1.0])
    with pytest.raises(LexiconError, match="2 words but 1"):
        Lexicon(["a", "b"], [1.0])
    with pytest.raises(LexiconError, match="non-negative"):
        Lexicon(["a"], [-1.0])


def test_load_lexicon_file(tmp_path) -> None:
    path = tmp_path / "lex.tsv"
    path.write_text("# comment\n\nHello\t10\nWörld\t2.5\n", encoding="utf-8")
    lex = load_lexicon(path)
    assert lex.words == ["hello", "wörld"]
    assert list(lex.frequencies) == [10.0, 2.5]
    assert load_lexicon(str(path)).words == lex.words


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a\t1\nb 2\n", r"lex.tsv:2: expected 'word<TAB>frequency'"),
        ("a\t1\nb\tmany\n", r"lex.tsv:2: frequency 'many' is not a number"),
        ("a\t1\nb\t-3\n", r"lex.tsv:2: frequency '-3' must be finite"),
        ("a\t1\nb\tnan\n", r"lex.tsv:2: frequency 'nan' must be finite"),
        ("a\t1\n\nA\t3\n", r"lex.tsv:3: word 'a' repeats line 1"),
        ("\t1\n", r"lex.tsv:1: invalid word"),
        ("# only a comment\n", r"lex.tsv: no words"),
    ],
)
def test_malformed_lexicon_names_file_and_line(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "lex.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError, match=message):
        load_lexicon(path)


def test_missing_lexicon() -> None:
    with pytest.raises(LexiconError, match="not a file and not a bundled name"):
        load_lexicon("no_such_lexicon.tsv")


def test_clean_words_normalises_filters_and_merges() -> None:
    letters = alphabet(LANGUAGES["en"])
    assert letters == set("abcdefghijklmnopqrstuvwxyz")
    ranked = [("The", 5.0), ("don't", 3.0), ("dont", 1.0), ("u.s", 2.0), ("42", 2.0), ("café", 1.0)]
    ranked.append(("a", 4.0))
    assert clean_words(ranked, letters, "'", 10) == [("the", 5.0), ("a", 4.0), ("dont", 4.0)]
    assert clean_words(ranked, letters, "'", 1) == [("the", 5.0)]
    assert {"ё", "ъ", "й"} <= alphabet(LANGUAGES["ru"])


def test_make_lexicon_refuses_to_overwrite(tmp_path, capsys) -> None:
    out = tmp_path / "en.tsv"
    out.write_text("keep\t1\n", encoding="utf-8")
    assert main(["--language", "en", "--size", "10", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "keep\t1\n"


def test_a_new_language_takes_its_alphabet_from_a_layouts_file(tmp_path, capsys) -> None:
    import json

    from swipe.keyboard import Layout

    de = Layout.from_rows("de_test", ["qwertzuiopü", "asdfghjklöä", "yxcvbnmß"], 400.0, 240.0)
    grids = tmp_path / "de_grids.json"
    grids.write_text(json.dumps({de.name: de.to_grid()}), encoding="utf-8")
    spec = language_spec("de", grids)
    assert spec.wordfreq_code == "de" and set("üöäß") <= alphabet(spec) and "'" in spec.drop_chars
    # Without the layouts a new language is refused, naming the flag; nothing is written.
    out = tmp_path / "de.tsv"
    assert main(["--language", "de", "--size", "10", "--out", str(out)]) == 1
    assert "language 'de' has no bundled layouts" in capsys.readouterr().err
    assert not out.exists()
    # The file applies to one language at a time; a bundled one keeps its own letter rules.
    with pytest.raises(SystemExit):
        main(["--layouts-file", str(grids), "--overwrite"])
    assert "--layouts-file needs exactly one --language" in capsys.readouterr().err
    assert language_spec("ru", grids).extra_letters == LANGUAGES["ru"].extra_letters
