import io
import warnings

import numpy as np
import pytest

from numclip.data import CLASSES, COLORS, COUNT_WORDS, SHAPES, class_name, make_dataset
from numclip.text import UNK, Vocabulary, tokenize

CAPTIONS = ["a photo of two red circles", "there is one green triangle",
            "An image of a yellow cross.", "three blue squares on a black background"]


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.build(CAPTIONS)


# ------------------------------------------------------------ tokenizer


@pytest.mark.parametrize("text, words", [
    ("a photo of two red circles", ["a", "photo", "of", "two", "red", "circles"]),
    ("There are TWO  Red circles.", ["there", "are", "two", "red", "circles"]),
    ("red,green;blue!", ["red", "green", "blue"]),
    ("3 crosses\tand\n1 bar", ["3", "crosses", "and", "1", "bar"]),
    ("un café", ["un", "café"]),
    ("snake_case <unk>", ["snake", "case", "unk"]),
    ("", []),
    ("  ... ", []),
])
def test_tokenize_lowercases_and_splits_on_non_letters(text, words):
    assert tokenize(text) == words


def test_tokenize_rejects_non_strings():
    with pytest.raises(TypeError, match="text must be a str, got list"):
        tokenize(["a", "b"])


# ------------------------------------------------------------ vocabulary


def test_build_puts_unk_first_then_sorted_words(vocab):
    expected = sorted({w for text in CAPTIONS for w in tokenize(text)})
    assert vocab.words == (UNK, *expected)
    assert len(vocab) == 1 + len(expected)
    assert Vocabulary.build(CAPTIONS[::-1]) == vocab  # independent of caption order


def test_index_maps_known_words_to_their_column_and_unknown_to_zero(vocab):
    for i, word in enumerate(vocab.words):
        assert vocab.index(word) == i
    assert vocab.index("purple") == 0
    assert vocab.index("RED") == 0  # index() takes a token; tokenize() lower-cases
    assert vocab.encode("Two RED hexagons") == [vocab.index("two"), vocab.index("red"), 0]


def test_features_are_word_frequencies_per_caption(vocab):
    x = vocab.features(["red red circles", "a photo of two red circles"])
    assert x.shape == (2, len(vocab)) and x.dtype == np.float32
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=1e-6)
    assert x[0, vocab.index("red")] == pytest.approx(2 / 3)
    assert x[0, vocab.index("circles")] == pytest.approx(1 / 3)
    assert x[1, vocab.index("photo")] == pytest.approx(1 / 6)
    assert np.count_nonzero(x[0]) == 2 and np.count_nonzero(x[1]) == 6


def test_training_captions_have_no_unknown_words(vocab):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        x = vocab.features(CAPTIONS)
    assert np.all(x[:, 0] == 0)
    assert vocab.unknown_words(CAPTIONS) == {}


def test_unknown_words_land_in_unk_and_are_reported(vocab):
    texts = ["a photo of a purple hexagon", "two purple circles", "red circles"]
    assert vocab.unknown_words(texts) == {"purple": 2, "hexagon": 1}
    assert list(vocab.unknown_words(texts)) == ["purple", "hexagon"]  # most frequent first
    with pytest.warns(UserWarning, match=r"2 word\(s\) .*'purple' ×2, 'hexagon' ×1"):
        x = vocab.features(texts)
    np.testing.assert_allclose(x[:, 0], [2 / 6, 1 / 3, 0.0], rtol=1e-6)  # not dropped
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=1e-6)


def test_features_warn_false_is_silent(vocab):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = vocab.features(["a hexagon"], warn=False)
    assert x[0, 0] == pytest.approx(0.5)


def test_vocabulary_survives_an_npz_round_trip_without_pickle(vocab):
    arrays = vocab.to_arrays()
    assert arrays["vocab_words"].dtype.kind == "U"
    buffer = io.BytesIO()
    np.savez(buffer, weights=np.ones(3), **arrays)  # next to other checkpoint arrays
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        restored = Vocabulary.from_arrays(loaded)
    assert restored == vocab
    np.testing.assert_array_equal(restored.features(CAPTIONS), vocab.features(CAPTIONS))


def test_vocabulary_from_the_synthetic_captions_knows_every_prompt_word():
    """Training captions hold out compositions, never words, so prompts have no <unk>."""
    vocab = Vocabulary.build(make_dataset(500, seed=0, compositions="seen").captions)
    plurals = [w for text in make_dataset(200, seed=1).captions for w in tokenize(text)]
    for word in (*COLORS, *SHAPES, *COUNT_WORDS, *plurals):
        assert vocab.index(word) > 0, word
    prompts = [f"a photo of a {class_name(c)}" for c in range(len(CLASSES))]
    assert vocab.unknown_words(prompts) == {}


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize("captions, error, match", [
    ([], ValueError, "captions must not be empty"),
    ("a red circle", TypeError, "captions must be a list of str, got a single str"),
    (["a red circle", 3], TypeError, r"captions\[1\] must be a str, got int"),
    (["...", "!"], ValueError, "captions must contain at least one word"),
    (None, TypeError, "captions must be a list of str, got NoneType"),
])
def test_build_names_bad_captions(captions, error, match):
    with pytest.raises(error, match=match):
        Vocabulary.build(captions)


def test_build_accepts_a_numpy_array_of_strings(vocab):
    assert Vocabulary.build(np.array(CAPTIONS)) == vocab


@pytest.mark.parametrize("texts, error, match", [
    ("red circle", TypeError, "texts must be a list of str, got a single str"),
    ([], ValueError, "texts must not be empty"),
    (["red", b"circle"], TypeError, r"texts\[1\] must be a str, got bytes"),
    (["red", "?!"], ValueError, r"texts\[1\] = '\?!' has no words"),
])
def test_features_names_bad_texts(vocab, texts, error, match):
    with pytest.raises(error, match=match):
        vocab.features(texts)


@pytest.mark.parametrize("words, error, match", [
    (("red", UNK), ValueError, "words\\[0\\] must be '<unk>'"),
    ((), ValueError, "words\\[0\\] must be '<unk>'"),
    ((UNK, "red", "red"), ValueError, r"duplicates \['red'\]"),
    ((UNK, 3), TypeError, "words must be a tuple of str"),
    ("<unk> red", TypeError, "words must be a tuple of str, got str"),
])
def test_vocabulary_checks_its_words(words, error, match):
    with pytest.raises(error, match=match):
        Vocabulary(words)


def test_from_arrays_names_what_is_missing_or_wrong():
    with pytest.raises(KeyError, match="vocab_words"):
        Vocabulary.from_arrays({"weights": np.ones(2)})
    with pytest.raises(TypeError, match="1-d unicode array"):
        Vocabulary.from_arrays({"vocab_words": np.array([0, 1])})
    with pytest.raises(TypeError, match="word must be a str"):
        Vocabulary((UNK,)).index(3)
