import warnings

import numpy as np
import pytest
from conftest import assert_refused

from numclip import zeroshot
from numclip.data import COLORS, class_name
from numclip.model import TinyCLIP
from numclip.text import Vocabulary
from numclip.zeroshot import (
    PROMPT_TEMPLATES,
    chance,
    check_template,
    class_embeddings,
    linear_probe,
    prompts,
    recall_at_k,
    top_k_accuracy,
    zero_shot_scores,
)


def test_prompts_fill_every_template_class_major():
    assert prompts(["red circle", "blue bar"], ("a {}", "the {}.")) == [
        "a red circle", "the red circle.", "a blue bar", "the blue bar."]
    with pytest.raises(ValueError, match="exactly one"):
        prompts(["x"], ("no placeholder",))
    with pytest.raises(ValueError, match="at least one template"):
        prompts(["x"], ())


def test_ensemble_is_the_renormalised_mean_of_normalised_prompt_embeddings():
    names = [class_name(0), class_name(7)]
    templates = ("a photo of a {}.", "there is one {}.")
    vocab = Vocabulary.build(prompts(names, templates))
    model = TinyCLIP.create(12, len(vocab), 5, seed=0, dtype=np.float64)
    got = class_embeddings(model, vocab, names, templates)
    features = vocab.features(prompts(names, templates)).astype(np.float64)
    each = model.encode_texts(features).reshape(2, 2, 5)
    mean = each.mean(axis=1)
    # float64, the same steps as class_embeddings: a few roundings of unit-size values, 1e-12
    np.testing.assert_allclose(got, mean / np.linalg.norm(mean, axis=1, keepdims=True),
                               rtol=1e-12)


def test_top_k_accuracy_by_hand():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1]])
    labels = np.array([0, 0, 2])
    assert top_k_accuracy(scores, labels, 1) == pytest.approx(1 / 3)
    # row 2: label 0 is third; row 3: label 2 ties with class 0 for second, and a tie
    # counts against the truth
    assert top_k_accuracy(scores, labels, 2) == pytest.approx(1 / 3)
    assert top_k_accuracy(scores, labels, 3) == 1.0
    assert top_k_accuracy(np.zeros((4, 5)), np.zeros(4, int), 1) == 0.0  # ties are no credit
    with pytest.raises(ValueError, match="k must be in"):
        top_k_accuracy(scores, labels, 4)


def test_recall_at_k_by_hand_and_with_duplicate_captions():
    img = np.eye(3)
    txt = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # first two swapped
    assert recall_at_k(img, txt, 1) == {"image_to_text": pytest.approx(1 / 3),
                                        "text_to_image": pytest.approx(1 / 3)}
    assert recall_at_k(img, txt, 2)["image_to_text"] == 1.0
    same = recall_at_k(img, txt, 1, labels=np.array([5, 5, 6]))  # captions 1 and 2 say the same
    assert same == {"image_to_text": 1.0, "text_to_image": 1.0}


def test_linear_probe_separates_separable_data_and_chance():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 6)) * 5
    y = rng.integers(0, 4, 400)
    x = centres[y] + rng.standard_normal((400, 6))
    assert linear_probe(x[:300], y[:300], x[300:], y[300:], num_classes=4) > 0.95
    assert chance(len(COLORS)) == 1 / 8


def test_unknown_prompt_words_warn_unless_told_they_are_expected():
    names = [class_name(0)]
    vocab = Vocabulary.build(prompts(names, ("a photo of a {}.",)))
    model = TinyCLIP.create(12, len(vocab), 5, seed=0, dtype=np.float64)
    scrambled = ("a {} in a sketchbook.",)  # "in", "sketchbook" are unknown
    with pytest.warns(UserWarning, match="not in the vocabulary"):
        warned = class_embeddings(model, vocab, names, scrambled)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = class_embeddings(model, vocab, names, scrambled, warn=False)
    np.testing.assert_array_equal(warned, quiet)


# ------------------------------------------------------------ bad input, one table

def _model_and_vocab():
    names = [class_name(0), class_name(7)]
    vocab = Vocabulary.build(prompts(names, PROMPT_TEMPLATES))
    return TinyCLIP.create(6, len(vocab), 3, seed=0), vocab, names


MODEL, VOCAB, NAMES = _model_and_vocab()
PIXELS = np.ones((2, 6), np.float32)
CLASS_EMBEDS = np.eye(2, 3, dtype=np.float32)
SCORES = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
LABELS = np.array([0, 2])
EMB5 = np.eye(5, 4)
X, Y = np.random.default_rng(0).standard_normal((4, 3)), np.array([0, 1, 0, 1])

def on_strict(model, pixels):
    """The model and pixels on array-api-strict (the row is skipped where it is not installed)."""
    xp = pytest.importorskip("array_api_strict")
    return model.to(xp), xp.asarray(pixels)


# (public name, call, expected error, words the message must contain)
BAD_INPUT = [
    ("prompts", lambda: prompts("red circle", ["a {}"]), TypeError, ["class_names", "single str"]),
    ("prompts", lambda: prompts(None), TypeError, ["class_names", "NoneType"]),
    ("prompts", lambda: prompts([], ["a {}"]), ValueError, ["class_names must not be empty"]),
    ("prompts", lambda: prompts(["x", 3]), TypeError, ["class_names[1] must be a str"]),
    ("prompts", lambda: prompts(["x"], "a {}"), TypeError, ["templates", "single str"]),
    ("prompts", lambda: prompts(["x"], None), TypeError, ["templates", "NoneType"]),
    ("prompts", lambda: prompts(["x"], ()), ValueError, ["at least one template"]),
    ("prompts", lambda: prompts(["x"], ["a {}", 3]), TypeError, ["template", "int"]),
    ("prompts", lambda: prompts(["x"], ["no slot"]), ValueError, ["'no slot'", "exactly one '{}'"]),
    ("prompts", lambda: prompts(["x"], ["{} and {}"]), ValueError, ["'{} and {}'", "exactly one"]),
    ("prompts", lambda: prompts(["x"], ["{} {x}"]), ValueError, ["'{} {x}'", "exactly one '{}'"]),
    ("prompts", lambda: prompts(["x"], ["{}{!r}"]), ValueError, ["'{}{!r}'", "exactly one '{}'"]),
    ("prompts", lambda: prompts(["x"], ["{} {"]), ValueError, ["'{} {'", "exactly one '{}'"]),
    ("check_template", lambda: check_template("a {x}"), ValueError, ["'a {x}'", "'{x}'", "name"]),
    ("check_template", lambda: check_template("{0}"), ValueError, ["'{0}'", "exactly one '{}'"]),
    ("check_template", lambda: check_template("{!r}"), ValueError, ["'{!r}'", "conversion"]),
    ("check_template", lambda: check_template("a {:>8}"), ValueError, ["'a {:>8}'", "spec"]),
    ("check_template", lambda: check_template("a }"), ValueError, ["'a }'", "'}}'"]),
    ("check_template", lambda: check_template(b"a {}"), TypeError, ["template", "bytes"]),
    ("check_template", lambda: check_template(None), TypeError, ["template", "NoneType"]),
    ("class_embeddings", lambda: class_embeddings(None, VOCAB, NAMES), TypeError,
     ["model must be a TinyCLIP", "NoneType"]),
    ("class_embeddings", lambda: class_embeddings(MODEL, None, NAMES), TypeError,
     ["vocab must be a numclip.text.Vocabulary"]),
    ("class_embeddings", lambda: class_embeddings(MODEL, Vocabulary.build(["a b"]), NAMES),
     ValueError, ["vocab has 3 words", "the model knows"]),
    ("class_embeddings", lambda: class_embeddings(MODEL, VOCAB, "red circle"), TypeError,
     ["class_names", "single str"]),
    ("class_embeddings", lambda: class_embeddings(MODEL, VOCAB, NAMES, ("{x}",)), ValueError,
     ["'{x}'", "exactly one '{}'"]),
    ("class_embeddings", lambda: class_embeddings(MODEL, VOCAB, NAMES, warn="no"), TypeError,
     ["warn must be True or False"]),
    ("class_embeddings", lambda: class_embeddings(MODEL, VOCAB, ["?!"], ("{}",)), ValueError,
     ["'?!' has no words"]),
    ("zero_shot_scores", lambda: zero_shot_scores(None, PIXELS, CLASS_EMBEDS), TypeError,
     ["model must have encode_images"]),
    ("zero_shot_scores", lambda: zero_shot_scores(MODEL, np.ones((2, 5), np.float32),
                                                  CLASS_EMBEDS), ValueError,
     ["pixels must have 6 columns"]),
    ("zero_shot_scores", lambda: zero_shot_scores(MODEL, PIXELS, np.eye(2, 4, dtype=np.float32)),
     ValueError, ["class_embeds must have the model's width D = 3"]),
    ("zero_shot_scores", lambda: zero_shot_scores(MODEL, PIXELS, np.eye(2, 3)), TypeError,
     ["class_embeds has dtype float64", "float32"]),
    ("zero_shot_scores", lambda: zero_shot_scores(*on_strict(MODEL, PIXELS), CLASS_EMBEDS),
     TypeError, ["class_embeds must be in the model's array library"]),
    ("zero_shot_scores", lambda: zero_shot_scores(MODEL, PIXELS, "classes"), TypeError,
     ["class_embeds must be an array"]),
    ("zero_shot_scores", lambda: zero_shot_scores(MODEL, np.full((2, 6), np.nan, np.float32),
                                                  CLASS_EMBEDS), ValueError,
     ["pixels contains NaN"]),
    ("top_k_accuracy", lambda: top_k_accuracy(np.full((3, 4), np.nan), np.zeros(3, int)),
     ValueError, ["scores contains NaN"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, [0, -1]), ValueError,
     ["labels must be class indices in [0, 3)", "-1"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, [0, 3]), ValueError,
     ["labels must be class indices in [0, 3)"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, LABELS, 1.5), TypeError,
     ["k must be an int", "1.5"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, LABELS, True), TypeError,
     ["k must be an int", "bool"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, LABELS, 0), ValueError,
     ["k must be in [1, 3], got 0"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, LABELS, 4), ValueError,
     ["k must be in [1, 3], got 4"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, [0.0, 2.0]), TypeError,
     ["labels must be an array of integers", "float64"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, [True, False]), TypeError,
     ["labels must be an array of integers", "bool"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, ["a", "b"]), TypeError,
     ["labels must be an array of integers"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, None), TypeError,
     ["labels must be an array of integers", "NoneType"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, [0, 1, 2]), ValueError,
     ["labels must have shape (2,)"]),
    ("top_k_accuracy", lambda: top_k_accuracy(np.ones(3), [0]), ValueError, ["scores must be 2-D"]),
    ("top_k_accuracy", lambda: top_k_accuracy(np.ones((0, 3)), []), ValueError,
     ["scores must be non-empty"]),
    ("top_k_accuracy", lambda: top_k_accuracy(None, LABELS), TypeError, ["scores must be"]),
    ("top_k_accuracy", lambda: top_k_accuracy(np.ones((2, 3), int), LABELS), TypeError,
     ["scores must have a real floating dtype"]),
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES + 1j, LABELS), TypeError,
     ["scores must have a real floating dtype"]),
    ("recall_at_k", lambda: recall_at_k(np.eye(5, 3), np.eye(4, 3)), ValueError,
     ["same number of pairs N", "5 and 4"]),
    ("recall_at_k", lambda: recall_at_k(EMB5, np.eye(5, 3)), ValueError, ["same width D"]),
    ("recall_at_k", lambda: recall_at_k(EMB5, EMB5, 0), ValueError, ["k must be in [1, 5]"]),
    ("recall_at_k", lambda: recall_at_k(EMB5, EMB5, 6), ValueError, ["k must be in [1, 5]"]),
    ("recall_at_k", lambda: recall_at_k(EMB5, EMB5, 1.5), TypeError, ["k must be an int"]),
    ("recall_at_k", lambda: recall_at_k(EMB5, EMB5, labels=[0, 1]), ValueError,
     ["labels must have shape (5,)"]),
    ("recall_at_k", lambda: recall_at_k(EMB5, EMB5, labels=np.ones(5)), TypeError,
     ["labels must be an array of integers"]),
    ("recall_at_k", lambda: recall_at_k(np.full((5, 4), np.inf), EMB5), ValueError,
     ["image_embeds contains NaN or infinite"]),
    ("recall_at_k", lambda: recall_at_k(EMB5, None), TypeError, ["text_embeds must be an array"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=2, l2=-1), ValueError,
     ["l2 must be non-negative", "-1"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=2, l2=np.nan), ValueError,
     ["l2 must be non-negative and finite"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=2, l2="a"), TypeError,
     ["l2 must be a real number"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=2, max_iter=0), ValueError,
     ["max_iter must be at least 1, got 0"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=2, max_iter=1.5), TypeError,
     ["max_iter must be an int"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=0), ValueError,
     ["num_classes must be at least 1"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=2.0), TypeError,
     ["num_classes must be an int"]),
    ("linear_probe", lambda: linear_probe(X, Y + 1, X, Y, num_classes=2), ValueError,
     ["train_y must be class indices in [0, 2)", "2"]),
    ("linear_probe", lambda: linear_probe(X, Y, X[:, :2], Y, num_classes=2), ValueError,
     ["test_x must have the width of train_x (3)"]),
    ("linear_probe", lambda: linear_probe(X, Y[:3], X, Y, num_classes=2), ValueError,
     ["train_y must have shape (4,)"]),
    ("linear_probe", lambda: linear_probe(X * np.nan, Y, X, Y, num_classes=2), ValueError,
     ["train_x contains NaN"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y * 1.0, num_classes=2), TypeError,
     ["test_y must be an array of integers"]),
    ("chance", lambda: chance(0), ValueError, ["num_classes must be at least 1, got 0"]),
    ("chance", lambda: chance(-3), ValueError, ["num_classes must be at least 1"]),
    ("chance", lambda: chance(2.5), TypeError, ["num_classes must be an int", "float"]),
    ("chance", lambda: chance(True), TypeError, ["num_classes must be an int", "bool"]),
    ("chance", lambda: chance("8"), TypeError, ["num_classes must be an int", "str"]),
    # templates: the bad element is named; bytes are not iterated into ints
    ("prompts", lambda: prompts(["x"], ["a {}", 3]), TypeError, ["templates[1] must be a str"]),
    ("prompts", lambda: prompts(["x"], b"a {}"), TypeError, ["templates must be a list", "bytes"]),
    ("prompts", lambda: prompts({"red circle", "blue bar"}), TypeError,
     ["class_names must be an ordered sequence of str", "set"]),
    ("prompts", lambda: prompts(["x"], {"a {}", "the {}"}), TypeError,
     ["templates must be an ordered sequence of str", "set"]),
    ("class_embeddings", lambda: class_embeddings(MODEL, VOCAB, NAMES, np.array([1.0])),
     TypeError, ["templates[0] must be a str", "float64"]),
    # labels of another length name the array whose rows they label
    ("top_k_accuracy", lambda: top_k_accuracy(SCORES, [0, 1, 2]), ValueError,
     ["labels must have shape (2,), one per row of scores"]),
    ("linear_probe", lambda: linear_probe(X, Y, X[:3], Y, num_classes=2), ValueError,
     ["test_y must have shape (3,), one per row of test_x"]),
    # an int too large for a float, and more classes than memory: OverflowError and NumPy's
    # 'Maximum allowed dimension exceeded' before
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=2, l2=10**400), ValueError,
     ["l2 must be non-negative and finite"]),
    ("linear_probe", lambda: linear_probe(X, Y, X, Y, num_classes=10**30), ValueError,
     ["num_classes = 10", "more than this machine could allocate"]),
    ("zero_shot_scores", lambda: zero_shot_scores(MODEL, PIXELS, [[1e39, 0.0, 0.0]]),
     ValueError, ["class_embeds (in the model's float32) contains NaN or infinite"]),
]


@pytest.mark.filterwarnings("error")  # no RuntimeWarning from NaN arithmetic on the way
@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words):
    assert_refused(call, error, words)


def test_every_public_function_has_bad_input_rows():
    public = {name for name in zeroshot.__all__ if callable(getattr(zeroshot, name))}
    assert public - {row[0] for row in BAD_INPUT} == set()


# ------------------------------------------------------------ valid unusual input

def test_numpy_integers_lists_and_fortran_order_are_accepted():
    scores = np.asfortranarray(SCORES)
    assert top_k_accuracy(scores, [0, 2], np.int64(2)) == top_k_accuracy(SCORES, LABELS, 2)
    assert top_k_accuracy(SCORES.tolist(), LABELS.astype(np.uint8), np.int32(1)) == 1.0
    wide = np.concatenate([SCORES, np.zeros((2, 3))], axis=1)[:, ::2]  # a strided view
    assert top_k_accuracy(wide, [0, 1]) == top_k_accuracy(np.ascontiguousarray(wide), [0, 1])
    assert chance(np.int64(8)) == chance(8) == 1 / 8
    img = np.asfortranarray(np.eye(3))
    assert recall_at_k(img, np.eye(3).tolist(), np.int64(1), labels=[0, 1, 2]) == {
        "image_to_text": 1.0, "text_to_image": 1.0}
    acc = linear_probe(X.tolist(), Y.tolist(), np.asfortranarray(X), Y.astype(np.int32),
                       num_classes=np.int64(2), l2=np.float32(0.01), max_iter=np.int64(50))
    assert acc == linear_probe(X, Y, X, Y, num_classes=2, l2=0.01, max_iter=50)


def test_the_largest_class_count_has_a_chance_of_zero():
    assert chance(10**400) == 0.0  # 1 / 10**400 underflows; it raised OverflowError


def test_class_embeddings_typed_as_lists_take_the_models_dtype():
    got = zero_shot_scores(MODEL, PIXELS, CLASS_EMBEDS.tolist())
    np.testing.assert_array_equal(got, zero_shot_scores(MODEL, PIXELS, CLASS_EMBEDS))
    assert got.dtype == np.float32


def test_templates_may_hold_literal_braces_and_come_from_any_sequence():
    assert check_template("a {{sketch}} of a {}") == "a {{sketch}} of a {}"
    assert prompts(np.array(["red circle"]), ["a {{sketch}} of a {}"]) == [
        "a {sketch} of a red circle"]
    got = class_embeddings(MODEL, VOCAB, tuple(NAMES), (t for t in PROMPT_TEMPLATES))
    np.testing.assert_array_equal(got, class_embeddings(MODEL, VOCAB, NAMES))
    assert got.shape == (2, 3) and got.dtype == np.float32
