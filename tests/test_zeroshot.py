import warnings

import numpy as np
import pytest

from numclip.data import COLORS, class_name
from numclip.model import TinyCLIP
from numclip.text import Vocabulary
from numclip.zeroshot import (
    chance,
    class_embeddings,
    linear_probe,
    prompts,
    recall_at_k,
    top_k_accuracy,
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
    each = model.encode_texts(vocab.features(prompts(names, templates))).reshape(2, 2, 5)
    mean = each.mean(axis=1)
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
