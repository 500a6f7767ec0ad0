"""numclip.pretrained.tokenize against open_clip's tokenizer.

Always against the committed fixture (tests/data/tokenizer/, written by
make_tokenizer_fixture.py with open_clip 3.3.0), with the committed copy of CLIP's
merges; live against open_clip where it imports.  Encoding needs regex and ftfy (the
[pretrained] extra): those tests skip without them; the refusals do not need them.
"""

import gzip
import hashlib
import importlib.util
import json
import random
import subprocess
import sys

import make_tokenizer_fixture
import numpy as np
import pytest
from conftest import assert_table_covers, bad, check_bad_row, open_clip_or_skip
from make_tokenizer_fixture import CONTEXT_LENGTH, FIXTURE, FOLDER, MERGES, corpus

from numclip.pretrained import tokenizer
from numclip.pretrained.tokenizer import MergesNotFoundError, tokenize

SOT, EOT = 49406, 49407
BROKEN = FOLDER / "broken"
MERGES_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"  # README.md


def needs_extra():
    pytest.importorskip("regex")
    pytest.importorskip("ftfy")


@pytest.fixture(scope="module")
def fixture():
    return json.loads(FIXTURE.read_text())


def padded(rows, length):
    out = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


# ------------------------------------------------------------ the committed fixture


def test_fixture_holds_the_generated_corpus_and_names_its_versions(fixture):
    assert fixture["texts"] == corpus()  # the script and the file have not drifted apart
    assert len(fixture["texts"]) >= 2000
    assert fixture["versions"]["open_clip"] == "3.3.0" and "torch" in fixture["versions"]
    lengths = [len(row) for row in fixture["tokens"]]
    assert lengths.count(2) >= 5  # empty and blank texts: start and end only
    assert lengths.count(CONTEXT_LENGTH) >= 50  # truncated texts
    assert all(row[0] == SOT and row[-1] == EOT for row in fixture["tokens"])


def test_committed_merges_are_clips():
    assert hashlib.sha256(MERGES.read_bytes()).hexdigest() == MERGES_SHA256


def test_tokenize_equals_open_clip_on_the_fixture_corpus(fixture):
    needs_extra()
    got = tokenize(fixture["texts"], fixture["context_length"], merges=MERGES)
    want = padded(fixture["tokens"], fixture["context_length"])
    assert got.dtype == np.int64 and got.shape == want.shape
    wrong = np.flatnonzero(np.any(got != want, axis=1))
    assert wrong.size == 0, (f"{wrong.size} rows differ, first {fixture['texts'][wrong[0]]!r}: "
                             f"{got[wrong[0]].tolist()} != {want[wrong[0]].tolist()}")


@pytest.mark.parametrize("length", [2, 3, 16])
def test_shorter_contexts_truncate_the_fixture_rows_keeping_the_end_token(fixture, length):
    # The rule, stated independently of open_clip: the first length - 1 tokens, then EOT.
    needs_extra()
    want = padded([[*row[:length - 1], EOT] if len(row) > length else row
                   for row in fixture["tokens"]], length)
    np.testing.assert_array_equal(tokenize(fixture["texts"], length, merges=MERGES), want)


# ------------------------------------------------------------ rules, by example


@pytest.mark.parametrize("text, words", [
    ("", []),
    ("a photo of a cat.", ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>", ".</w>"]),
    ("A  PHOTO\n\tOf", ["a</w>", "photo</w>", "of</w>"]),  # lower case, one space
    ("it's", ["it</w>", "'s</w>"]),  # a contraction is a word of its own
    ("42", ["4</w>", "2</w>"]),  # one digit per word
    ("fish &amp;amp; chips", ["fish</w>", "&</w>", "chips</w>"]),  # unescaped twice
    ("caf\u00c3\u00a9", ["café</w>"]),  # mojibake repaired by ftfy
])
def test_texts_become_the_vocabulary_ids_of_their_bpe_words(text, words):
    needs_extra()
    encoder = tokenizer._load_encoder(str(MERGES.resolve()))
    byte_words = ["".join(tokenizer._BYTE_SYMBOLS[b] for b in w.encode()) for w in words]
    ids = [encoder.ids[w] for w in byte_words]
    row = tokenize(text, merges=MERGES)[0]
    assert row[:len(ids) + 2].tolist() == [SOT, *ids, EOT] and not row[len(ids) + 2:].any()


def test_special_tokens_spelled_out_are_one_token():
    needs_extra()
    row = tokenize("a <end_of_text> &lt;start_of_text&gt;", merges=MERGES)[0]
    assert row[2:5].tolist() == [EOT, SOT, EOT]


def test_unusual_but_valid_arguments_give_the_same_rows():
    needs_extra()
    texts = ["a red circle", "two blue squares"]
    want = tokenize(texts, merges=MERGES)
    for same in (tuple(texts), np.array(texts), iter(texts)):
        np.testing.assert_array_equal(tokenize(same, merges=str(MERGES)), want)
    np.testing.assert_array_equal(tokenize(texts, np.int64(77), merges=MERGES), want)
    np.testing.assert_array_equal(tokenize(texts[0], merges=MERGES), want[:1])  # one str


def test_the_vocabulary_has_clips_49408_ids():
    needs_extra()
    ids = tokenizer._load_encoder(str(MERGES.resolve())).ids
    assert len(ids) == 49408 and ids["<start_of_text>"] == SOT and ids["<end_of_text>"] == EOT
    assert sorted(ids.values()) == list(range(49408))  # no merge repeats a symbol


def test_the_encoder_is_loaded_once_per_merges_file():
    needs_extra()
    tokenize("a", merges=MERGES)
    before = tokenizer._load_encoder.cache_info()
    tokenize("a", merges=str(MERGES.parent / ".." / "tokenizer" / MERGES.name))  # same file
    after = tokenizer._load_encoder.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)


def test_bpe_merges_the_first_pair_of_a_run_first():
    ranks = {("a", "a"): 0, ("a", "a</w>"): 1}
    assert tokenizer._merge_word(ranks, "aaa") == ("aa", "a</w>")
    assert tokenizer._merge_word(ranks, "a") == ("a</w>",)
    assert tokenizer._merge_word({}, "ab") == ("a", "b</w>")


def test_byte_symbols_are_a_printable_one_to_one_map():
    symbols = tokenizer._BYTE_SYMBOLS
    assert sorted(symbols) == list(range(256)) and len(set(symbols.values())) == 256
    assert not any(s.isspace() for s in symbols.values())
    assert symbols[ord("a")] == "a" and symbols[ord(" ")] == "\u0120"  # GPT-2's "Ġ"


# ------------------------------------------------------------ finding the merges


def test_without_a_merges_file_the_error_says_where_to_get_one(monkeypatch):
    monkeypatch.setattr(tokenizer, "_installed_merges", lambda: None)
    with pytest.raises(MergesNotFoundError) as info:
        tokenize("a")
    for words in ("merges=None", "pip download --no-deps open_clip_torch",
                  "open_clip/bpe_simple_vocab_16e6.txt.gz", "openai/CLIP",
                  "clip/bpe_simple_vocab_16e6.txt.gz", "never downloads"):
        assert words in str(info.value)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def _fake_open_clip(tmp_path, monkeypatch, *, with_merges, package=True):
    """An importable ``open_clip`` in tmp_path that would fail loudly if imported."""
    monkeypatch.delitem(sys.modules, "open_clip", raising=False)
    if package:
        (tmp_path / "open_clip").mkdir()
        (tmp_path / "open_clip" / "__init__.py").write_text("raise RuntimeError('imported')\n")
        if with_merges:
            (tmp_path / "open_clip" / MERGES.name).write_bytes(b"")
    else:
        (tmp_path / "open_clip.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


def test_an_installed_open_clip_is_found_without_importing_it(tmp_path, monkeypatch):
    _fake_open_clip(tmp_path, monkeypatch, with_merges=True)
    assert tokenizer._installed_merges() == str((tmp_path / "open_clip" / MERGES.name).resolve())
    assert "open_clip" not in sys.modules


@pytest.mark.parametrize("with_merges, package", [(False, True), (True, False)])
def test_an_open_clip_without_the_file_is_no_source(tmp_path, monkeypatch, with_merges,
                                                    package):
    _fake_open_clip(tmp_path, monkeypatch, with_merges=with_merges, package=package)
    assert tokenizer._installed_merges() is None


def test_merges_none_uses_installed_open_clip_without_importing_torch():
    if tokenizer._installed_merges() is None:
        pytest.skip("no installed open_clip package holds the merges")
    needs_extra()
    code = ("import sys; from numclip.pretrained import tokenize; r = tokenize('a cat'); "
            "assert r[0, :4].tolist() == [49406, 320, 2368, 49407], r[0, :4]; "
            "assert not {'torch', 'open_clip'} & set(sys.modules), 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_numclip_pretrained_does_not_import_regex_or_ftfy():
    code = ("import sys, numclip.pretrained; "
            "assert not {'regex', 'ftfy', 'torch', 'PIL'} & set(sys.modules), "
            "{'regex', 'ftfy', 'torch', 'PIL'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("missing", ["regex", "ftfy"])
def test_a_missing_extra_says_how_to_install_it(monkeypatch, missing):
    needs_extra()  # the other one must be there: regex is asked for first
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` fail
    tokenizer._load_encoder.cache_clear()  # the cached encoder already holds its imports
    try:
        with pytest.raises(ImportError, match=rf"'{missing}'.*pip install \"numclip\[pretrained"):
            tokenize("a", merges=MERGES)
    finally:
        tokenizer._load_encoder.cache_clear()


# ------------------------------------------------------------ live against open_clip


def test_tokenize_equals_open_clip_live(fixture):
    # The committed corpus, and 500 more texts drawn afresh: a seed the fixture never saw.
    needs_extra()
    open_clip = open_clip_or_skip()
    texts = fixture["texts"] + make_tokenizer_fixture._random_texts(random.Random(7), 500)
    for length in (5, 77):
        want = open_clip.tokenize(texts, context_length=length).numpy()
        np.testing.assert_array_equal(tokenize(texts, length), want, err_msg=f"length {length}")


# ------------------------------------------------------------ bad input

TABLE = [
    bad(tokenize, 3, error=TypeError, words="texts must be a list of str, got int"),
    bad(tokenize, b"a cat", error=TypeError, words=["texts", "bytes"]),
    bad(tokenize, ["a", 3], error=TypeError, words="texts[1] must be a str, got int"),
    bad(tokenize, {"a", "b"}, error=TypeError, words=["texts", "ordered"]),
    bad(tokenize, np.array([["a"], ["b"]]), error=TypeError, words="texts[0] must be a str"),
    bad(tokenize, [], error=ValueError, words="texts must not be empty"),
    bad(tokenize, ["a"], 1, error=ValueError, words="context_length must be at least 2, got 1"),
    bad(tokenize, ["a"], 0, error=ValueError, words="context_length must be at least 2"),
    bad(tokenize, ["a"], 77.0, error=TypeError, words="context_length must be an int"),
    bad(tokenize, ["a"], 10**30, error=ValueError,
        words=("context_length = 10000000000000000000000000000", "more than this machine")),
    bad(tokenize, ["a"] * 2, 2**62, error=ValueError, words="2 rows of 4611686018427387904"),
    bad(tokenize, ["a"], True, error=TypeError, words="context_length must be an int"),
    bad(tokenize, ["a"], "77", error=TypeError, words="context_length must be an int"),
    bad(tokenize, ["a"], merges=3, error=TypeError, words=["merges must be None or a path",
                                                           "got int"]),
    bad(tokenize, ["a"], merges=b"bpe.txt.gz", error=TypeError, words="merges must be"),
    bad(tokenize, ["a"], merges="/no/such/bpe.txt.gz", error=MergesNotFoundError,
        words=["merges file '/no/such/bpe.txt.gz' does not exist", "pip download"]),
    bad(tokenize, ["a"], merges=FOLDER, error=ValueError, words=["is not a file"]),
    bad(tokenize, ["a"], merges=BROKEN / "not_gzip.txt.gz", error=ValueError,
        words=["not_gzip.txt.gz cannot be read as gzip-compressed UTF-8", "BadGzipFile"]),
    bad(tokenize, ["a"], merges=BROKEN / "truncated.txt.gz", error=ValueError,
        words=["truncated.txt.gz cannot be read", "EOFError"]),
    bad(tokenize, ["a"], merges=BROKEN / "latin1.txt.gz", error=ValueError,
        words=["latin1.txt.gz cannot be read", "UnicodeDecodeError"]),
    bad(tokenize, ["a"], merges=BROKEN / "short.txt.gz", error=ValueError,
        words=["short.txt.gz is not CLIP's", "only 3 lines", "48894 merges"]),
    bad(tokenize, ["a"], merges=BROKEN / "bad_line.txt.gz", error=ValueError,
        words=["bad_line.txt.gz is not CLIP's", "line 5 is 'a b c', not a pair"]),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", TABLE)
def test_bad_input_is_refused_naming_the_argument(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(tokenizer, TABLE)


def test_broken_fixture_files_are_what_the_script_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(make_tokenizer_fixture, "FOLDER", tmp_path)
    make_tokenizer_fixture.write_broken_merges()
    for path in BROKEN.iterdir():
        assert (tmp_path / "broken" / path.name).read_bytes() == path.read_bytes(), path.name
    assert gzip.decompress((BROKEN / "short.txt.gz").read_bytes()).count(b"\n") == 3
