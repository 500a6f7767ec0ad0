import io
import warnings

import numpy as np
import pytest
from conftest import assert_refused, public_callables

from numclip import text
from numclip.data import CLASSES, COLORS, COUNT_WORDS, SHAPES, class_name, make_dataset
from numclip.text import UNK, Vocabulary, as_texts, tokenize

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
    # float32: each entry is one rounding of k / n, a row sums at most 6 of them: 6u = 3.6e-7
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
    # float32: one rounding each (u = 6e-8), and the row sums as above
    np.testing.assert_allclose(x[:, 0], [2 / 6, 1 / 3, 0.0], rtol=1e-6)  # not dropped
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=1e-6)


def test_features_warn_false_is_silent(vocab):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = vocab.features(["a hexagon"], warn=False)
    assert x[0, 0] == pytest.approx(0.5)


def test_word_ids_are_each_texts_encoding_checked_as_features_checks_them(vocab):
    """What a transformer's token ids are made of: encode() of each text, with the same
    warning for unknown words as features() gives."""
    texts = ["a red circle", "two hexagons"]
    with pytest.warns(UserWarning, match="hexagons"):
        ids = vocab.word_ids(texts)
    assert ids == [vocab.encode(t) for t in texts]


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


# ------------------------------------------------------------ bad input, one table

VOCAB = Vocabulary.build(CAPTIONS)
# (public name, call, expected error, words the message must contain)
BAD_INPUT = [
    ("tokenize", lambda: tokenize(["a", "b"]), TypeError, ["text must be a str, got list"]),
    ("tokenize", lambda: tokenize(None), TypeError, ["text must be a str, got NoneType"]),
    ("tokenize", lambda: tokenize(b"red"), TypeError, ["text must be a str, got bytes"]),
    ("as_texts", lambda: as_texts("a red circle", "captions"), TypeError,
     ["captions must be a list of str, got a single str"]),
    ("as_texts", lambda: as_texts(3, "texts"), TypeError, ["texts must be a list of str, got int"]),
    ("as_texts", lambda: as_texts([], "texts"), ValueError, ["texts must not be empty"]),
    ("as_texts", lambda: as_texts(["a"], None), TypeError, ["name", "must be a str"]),
    ("as_texts", lambda: as_texts(np.array([["a"], ["b"]]), "texts"), TypeError,
     ["texts[0] must be a str, got list"]),
    # bytes were iterated into ints; a set's order would decide which row is which
    ("as_texts", lambda: as_texts(b"red", "texts"), TypeError,
     ["texts must be a list of str, got a single bytes"]),
    ("as_texts", lambda: as_texts({"a", "b"}, "texts"), TypeError,
     ["texts must be an ordered sequence of str", "set"]),
    ("as_texts", lambda: as_texts({"a": 1}, "texts"), TypeError,
     ["texts must be an ordered sequence of str", "dict"]),
    # ordered="no" is truthy: it would have kept the order check on without a word
    ("as_texts", lambda: as_texts(["a"], "texts", ordered="no"), TypeError,
     ["ordered must be True or False", "str"]),
    ("as_texts", lambda: as_texts(["a"], "texts", ordered=None), TypeError,
     ["ordered must be True or False", "NoneType"]),
    ("Vocabulary.features", lambda: VOCAB.features({"red", "circle"}), TypeError,
     ["texts must be an ordered sequence of str", "set"]),
    ("Vocabulary", lambda: Vocabulary(("red", UNK)), ValueError, ["words[0] must be '<unk>'"]),
    ("Vocabulary", lambda: Vocabulary(()), ValueError, ["words[0] must be '<unk>'"]),
    ("Vocabulary", lambda: Vocabulary((UNK, "red", "red")), ValueError,
     ["words must not repeat", "['red']"]),
    ("Vocabulary", lambda: Vocabulary((UNK, 3)), TypeError, ["words[1] must be a str, got int"]),
    ("Vocabulary", lambda: Vocabulary("<unk> red"), TypeError,
     ["words must be a tuple of str, got str"]),
    ("Vocabulary", lambda: Vocabulary(None), TypeError, ["words must be a tuple of str"]),
    ("Vocabulary", lambda: Vocabulary(np.array([[UNK, "red"]])), TypeError,
     ["words must be a tuple of str, got ndarray"]),
    ("Vocabulary", lambda: Vocabulary((UNK, "Red")), ValueError,
     ["words[1] = 'Red' is not a token", "['red']"]),
    ("Vocabulary", lambda: Vocabulary((UNK, "two words")), ValueError,
     ["words[1] = 'two words' is not a token"]),
    ("Vocabulary", lambda: Vocabulary((UNK, "")), ValueError, ["words[1] = '' is not a token"]),
    ("Vocabulary", lambda: Vocabulary((UNK, "red", UNK)), ValueError, ["words must not repeat"]),
    ("Vocabulary", lambda: Vocabulary((UNK, "a", "<pad>")), ValueError,
     ["words[2] = '<pad>' is not a token"]),
    ("Vocabulary.build", lambda: Vocabulary.build([]), ValueError, ["captions must not be empty"]),
    ("Vocabulary.build", lambda: Vocabulary.build("a red circle"), TypeError,
     ["captions must be a list of str, got a single str"]),
    ("Vocabulary.build", lambda: Vocabulary.build(["a red circle", 3]), TypeError,
     ["captions[1] must be a str, got int"]),
    ("Vocabulary.build", lambda: Vocabulary.build(["...", "!"]), ValueError,
     ["captions must contain at least one word"]),
    ("Vocabulary.build", lambda: Vocabulary.build(None), TypeError,
     ["captions must be a list of str, got NoneType"]),
    ("Vocabulary.index", lambda: VOCAB.index(3), TypeError, ["word must be a str, got int"]),
    ("Vocabulary.index", lambda: VOCAB.index(None), TypeError, ["word must be a str"]),
    ("Vocabulary.encode", lambda: VOCAB.encode(None), TypeError, ["text must be a str"]),
    ("Vocabulary.encode", lambda: VOCAB.encode(["red"]), TypeError,
     ["text must be a str, got list"]),
    ("Vocabulary.features", lambda: VOCAB.features("red circle"), TypeError,
     ["texts must be a list of str, got a single str"]),
    ("Vocabulary.features", lambda: VOCAB.features([]), ValueError, ["texts must not be empty"]),
    ("Vocabulary.features", lambda: VOCAB.features(["red", b"circle"]), TypeError,
     ["texts[1] must be a str, got bytes"]),
    ("Vocabulary.features", lambda: VOCAB.features(["red", "?!"]), ValueError,
     ["texts[1] = '?!' has no words"]),
    ("Vocabulary.features", lambda: VOCAB.features(["red"], warn="no"), TypeError,
     ["warn must be True or False, got str"]),
    ("Vocabulary.features", lambda: VOCAB.features(None), TypeError, ["texts must be a list"]),
    ("Vocabulary.word_ids", lambda: VOCAB.word_ids("red circle"), TypeError,
     ["texts must be a list of str, got a single str"]),
    ("Vocabulary.word_ids", lambda: VOCAB.word_ids(["red", "..."]), ValueError,
     ["texts[1] = '...' has no words"]),
    ("Vocabulary.word_ids", lambda: VOCAB.word_ids(["red"], warn=1), TypeError,
     ["warn must be True or False, got int"]),
    ("Vocabulary.unknown_words", lambda: VOCAB.unknown_words("red"), TypeError,
     ["texts must be a list of str, got a single str"]),
    ("Vocabulary.unknown_words", lambda: VOCAB.unknown_words([None]), TypeError,
     ["texts[0] must be a str, got NoneType"]),
    ("Vocabulary.from_arrays", lambda: Vocabulary.from_arrays({"weights": np.ones(2)}),
     ValueError, ["arrays must hold 'vocab_words'", "['weights']"]),
    ("Vocabulary.from_arrays", lambda: Vocabulary.from_arrays({"vocab_words": np.array([0, 1])}),
     TypeError, ["'vocab_words'", "1-d unicode array", "int64"]),
    ("Vocabulary.from_arrays", lambda: Vocabulary.from_arrays(
        {"vocab_words": np.array([[UNK, "red"]])}), ValueError, ["1-d unicode array", "(1, 2)"]),
    ("Vocabulary.from_arrays", lambda: Vocabulary.from_arrays({"vocab_words": np.array(["red"])}),
     ValueError, ["words[0] must be '<unk>'"]),
    ("Vocabulary.from_arrays", lambda: Vocabulary.from_arrays(None), TypeError,
     ["arrays must be a mapping", "NoneType"]),
    ("Vocabulary.from_arrays", lambda: Vocabulary.from_arrays([("vocab_words", [UNK])]),
     TypeError, ["arrays must be a mapping", "list"]),
]


@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words):
    assert_refused(call, error, words)


def test_every_public_function_has_bad_input_rows():
    assert public_callables(text) - {row[0] for row in BAD_INPUT} == set()


# ------------------------------------------------------------ valid unusual input

def test_build_accepts_a_numpy_array_a_tuple_and_a_generator_of_strings(vocab):
    assert Vocabulary.build(np.array(CAPTIONS)) == vocab
    assert Vocabulary.build(tuple(CAPTIONS)) == vocab
    assert Vocabulary.build(c for c in CAPTIONS) == vocab


def test_vocabulary_accepts_a_list_or_unicode_array_of_its_words(vocab):
    assert Vocabulary(list(vocab.words)) == vocab
    from_array = Vocabulary(np.array(vocab.words))
    assert from_array == vocab and all(type(w) is str for w in from_array.words)
    np.testing.assert_array_equal(vocab.features(np.array(CAPTIONS), warn=np.False_),
                                  vocab.features(CAPTIONS))


def test_every_word_build_makes_is_a_token():
    """Vocabulary() refuses non-tokens, so build() must never make one, in any script."""
    captions = ["İstanbul ΟΔΟΣ straße Ǆemal ﬁne ½ ２つ", "Ⅻ ǅ ß ẞ ς Σ"]
    vocab = Vocabulary.build(captions)
    assert all(tokenize(w) == [w] for w in vocab.words[1:])


def test_a_set_of_captions_builds_the_same_vocabulary():
    """The vocabulary is sorted and unknown words are counted, so order does not matter
    there; a set is refused only where row i belongs to text i."""
    assert Vocabulary.build(set(CAPTIONS)) == Vocabulary.build(CAPTIONS)
    assert VOCAB.unknown_words({"a hexagon", "two hexagons"}) == VOCAB.unknown_words(
        ["two hexagons", "a hexagon"])
