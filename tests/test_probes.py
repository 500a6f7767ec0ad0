"""The ARO-style probes: a bag of words ties on every swap, a transformer does not, the
scores equal a slow loop's, and bad input is named."""

import json
import warnings

import numpy as np
import pytest
from conftest import assert_refused, public_callables

from numclip import probes
from numclip.data import COUNT_WORDS, make_dataset, phrase
from numclip.model import TinyCLIP
from numclip.optim import AdamW
from numclip.probes import (
    CHANCE,
    PROBE_SUITES,
    ProbeItems,
    ProbeResult,
    format_table,
    probe,
    probe_items,
    run_probes,
    to_json,
)
from numclip.scenes import make_scenes, swap_attributes, swap_objects
from numclip.text import Vocabulary, tokenize

SCENE_SUITES = ("relation", "attribution", "order")
SCENES = make_scenes(400, seed=100, compositions="all")
COUNTED = make_dataset(400, seed=100, compositions="all")
VOCAB = Vocabulary.build([*SCENES.captions, *COUNTED.captions])  # knows every probe's words
SCENE_VOCAB = Vocabulary.build(SCENES.captions)  # no counts, no "photo", no plurals


def linear(vocab=VOCAB, seed=0, dtype=np.float32):
    return TinyCLIP.create(768, len(vocab), 16, seed=seed, dtype=dtype)


def transformer(vocab=VOCAB, seed=0, dtype=np.float32):
    return TinyCLIP.create(768, len(vocab), 16, seed=seed, dtype=dtype, encoder="transformer")


def trained_linear():
    """A bag-of-words CLIP after 30 full-batch AdamW steps on 128 scenes: its in-batch
    accuracy rises from chance (1/128) to most pairs (0.77 measured), so it is a model that
    learned something, not a random one."""
    train = make_scenes(128, seed=101)
    model = linear()
    pixels, tokens = train.pixels(), model.text_inputs(VOCAB, train.captions)
    before = in_batch_accuracy(model, pixels, tokens)
    opt = AdamW(lr=1e-2)
    for _ in range(30):
        _, grads = model.loss_and_grads(pixels, tokens)
        opt.step(model.params, grads)
    after = in_batch_accuracy(model, pixels, tokens)
    assert after > max(0.5, 10 * before), (before, after)
    return model


def in_batch_accuracy(model, pixels, tokens):
    scores = model.encode_images(pixels) @ model.encode_texts(tokens).T
    return float(np.mean(np.argmax(scores, axis=1) == np.arange(len(pixels))))


# ------------------------------------------------------------ what a bag of words cannot see


@pytest.mark.parametrize("which", ["random", "trained"])
def test_a_bag_of_words_scores_zero_with_every_item_a_tie(which):
    model = linear() if which == "random" else trained_linear()
    for suite in SCENE_SUITES:
        result = probe(model, VOCAB, suite, n=150, seed=1)
        assert result == ProbeResult(suite, 0.0, CHANCE[suite], 150, 150), result


def test_a_transformer_text_encoder_sees_word_order_few_or_no_ties():
    model = transformer()
    for suite in SCENE_SUITES:
        result = probe(model, VOCAB, suite, n=150, seed=1)
        assert result.ties <= 1, result  # distinct ids give distinct embeddings
        assert 0 < result.accuracy < 1, result  # random weights: right some of the time


def test_the_bag_of_words_counts_where_the_words_differ():
    """Counting prompts differ in their words ("one"/"two"), so a bag of words does not tie."""
    result = probe(linear(), VOCAB, "counting", n=150, seed=1)
    assert result.ties == 0 and result.chance == pytest.approx(1 / 3)


def test_words_the_vocabulary_lacks_are_unknown_not_an_error():
    """A model trained on scenes has no count words: "two" and "three" (and the plurals)
    become <unk>, so the prompts for two and three objects read alike and tie."""
    model = linear(SCENE_VOCAB)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either: the probe expects unknown words
        result = probe(model, SCENE_VOCAB, "counting", n=200, seed=2)
    counts = make_dataset(200, seed=2, compositions="all").counts
    assert 0 < result.ties <= np.sum(counts > 1)
    assert result.ties + round(result.accuracy * 200) <= 200


class RoundsByPosition(TinyCLIP):
    """A TinyCLIP whose text embeddings come out perturbed by their row's position in the
    batch, as a matrix product tiled differently for different rows could round them."""

    def encode_texts(self, token_features):
        embeds = super().encode_texts(token_features)
        return embeds * (1 + 1e-6 * np.arange(len(embeds), dtype=embeds.dtype)[:, None])


def test_equal_inputs_tie_exactly_whatever_the_encoder_rounds():
    base = linear()
    model = RoundsByPosition(base.params, base.loss, base.encoder)
    assert probe(model, VOCAB, "relation", n=100).ties == 100


# ------------------------------------------------------------ against a slow loop


def slow_probe(model, vocab, items):
    """Accuracy and ties, one image and one caption at a time, in float64."""
    correct = ties = 0
    dtype = model.params["logit_scale"].dtype
    for i in range(len(items)):
        image = np.asarray(model.encode_images(items.pixels[i:i + 1].astype(dtype)), np.float64)
        scores = []
        for text in (items.captions[i], *items.perturbed[i]):
            embed = model.encode_texts(model.text_inputs(vocab, [text], warn=False))
            scores.append(float(np.dot(image[0], np.asarray(embed, np.float64)[0])))
        correct += scores[0] > max(scores[1:])
        ties += scores[0] == max(scores[1:])
    return correct / len(items), ties


@pytest.mark.parametrize("make", [linear, transformer], ids=["linear", "transformer"])
@pytest.mark.parametrize("suite", PROBE_SUITES)
def test_probe_equals_an_independent_slow_loop(make, suite):
    """float64 models: a near-tie of two different captions is then below 1e-12, far
    below any gap between their cosines that random weights produce."""
    vocab = SCENE_VOCAB if suite == "counting" else VOCAB  # unknown words: ties on the way
    model = make(vocab, seed=3, dtype=np.float64)
    items = probe_items(suite, n=20, seed=4)
    accuracy, ties = slow_probe(model, vocab, items)
    result = probe(model, vocab, suite, n=20, seed=4)
    assert (result.accuracy, result.ties, result.items) == (accuracy, ties, 20)


def test_probe_runs_on_array_api_strict_and_agrees_with_numpy():
    xp = pytest.importorskip("array_api_strict")
    model = linear(seed=5)
    strict = TinyCLIP({k: xp.asarray(v) for k, v in model.params.items()})
    for suite in PROBE_SUITES:
        assert probe(strict, VOCAB, suite, n=40) == probe(model, VOCAB, suite, n=40)


# ------------------------------------------------------------ the items


def test_items_of_each_suite():
    relation = probe_items("relation", n=60, seed=6, compositions="seen")
    scenes = make_scenes(60, seed=6, compositions="seen", kinds="relation")
    np.testing.assert_array_equal(relation.pixels, scenes.pixels())
    assert relation.perturbed == tuple((swap_objects(c),) for c in relation.captions)
    attribution = probe_items("attribution", n=60, seed=6)
    assert all(" and " in c for c in attribution.captions)
    assert attribution.perturbed == tuple((swap_attributes(c),) for c in attribution.captions)
    order = probe_items("order", n=60, seed=6)
    assert {" and " in c for c in order.captions} == {True, False}  # both kinds of caption
    for caption, shuffles in zip(order.captions, order.perturbed, strict=True):
        assert len(shuffles) == 4
        assert all(sorted(tokenize(s)) == sorted(tokenize(caption)) != tokenize(s)
                   for s in shuffles)
    counting = probe_items("counting", n=60, seed=6)
    data = make_dataset(60, seed=6, compositions="all")
    np.testing.assert_array_equal(counting.pixels, data.pixels())
    for i, (caption, others) in enumerate(zip(counting.captions, counting.perturbed,
                                              strict=True)):
        color, shape, count = int(data.colors[i]), int(data.shapes[i]), int(data.counts[i])
        assert caption == phrase(color, shape, count)
        assert sorted((caption, *others)) == sorted(phrase(color, shape, k) for k in (1, 2, 3))
        assert COUNT_WORDS[count - 1] in tokenize(caption)


def test_items_are_deterministic_from_the_seed():
    for suite in PROBE_SUITES:
        a, b, c = (probe_items(suite, n=30, seed=s) for s in (7, 7, 8))
        assert a.captions == b.captions and a.perturbed == b.perturbed
        np.testing.assert_array_equal(a.pixels, b.pixels)
        assert a.perturbed != c.perturbed


def test_probes_follow_the_models_image_size():
    items = probe_items("relation", n=5, image_size=12)
    assert items.pixels.shape == (5, 12 * 12 * 3)
    model = TinyCLIP.create(12 * 12 * 3, len(VOCAB), 8, seed=0)
    assert probe(model, VOCAB, "relation", n=5).items == 5


# ------------------------------------------------------------ reports


def test_run_probes_table_and_json():
    results = run_probes(linear(), VOCAB, n=50, seed=9)
    assert list(results) == list(PROBE_SUITES)
    assert results["order"] == probe(linear(), VOCAB, "order", n=50, seed=9)
    table = format_table(results)
    lines = table.splitlines()
    assert lines[0].split() == ["suite", "accuracy", "chance", "items", "ties"]
    assert lines[1].split() == ["relation", "0.000", "0.500", "50", "50"]
    assert [line.split()[0] for line in lines[1:]] == list(PROBE_SUITES)
    out = json.loads(json.dumps(to_json(results)))
    assert out["order"] == {"accuracy": 0.0, "chance": 0.2, "items": 50, "ties": 50}
    assert set(out) == set(PROBE_SUITES)
    assert type(out["counting"]["items"]) is int and type(out["counting"]["accuracy"]) is float
    some = run_probes(linear(), VOCAB, ["counting", "relation"], n=10)
    assert list(some) == ["counting", "relation"]


def test_results_hold_python_numbers():
    r = ProbeResult("relation", np.float64(0.25), np.float32(0.5), np.int64(4), np.int32(1))
    assert type(r.accuracy) is float and type(r.items) is int and type(r.ties) is int
    assert r.to_dict() == {"accuracy": 0.25, "chance": 0.5, "items": 4, "ties": 1}


# ------------------------------------------------------------ bad input, one table

MODEL = linear()
ITEMS = probe_items("relation", n=3)
# (public name, call, expected error, words the message must contain)
BAD_INPUT = [
    ("probe", lambda: probe("model.npz", VOCAB, "relation"), TypeError,
     ["model must be a numclip.model.TinyCLIP", "str"]),
    ("probe", lambda: probe(MODEL, VOCAB.words, "relation"), TypeError,
     ["vocab must be a numclip.text.Vocabulary", "tuple"]),
    ("probe", lambda: probe(MODEL, SCENE_VOCAB, "relation", n=5), ValueError,
     ["vocab has", "use the vocabulary"]),
    ("probe", lambda: probe(MODEL, VOCAB, "relations"), ValueError,
     ["suite must be one of", "'relations'"]),
    ("probe", lambda: probe(MODEL, VOCAB, None), ValueError, ["suite must be one of"]),
    ("probe", lambda: probe(MODEL, VOCAB, "order", n=0), ValueError, ["n must be at least 1"]),
    ("probe", lambda: probe(MODEL, VOCAB, "order", n=2.5), TypeError, ["n must be an int"]),
    ("probe", lambda: probe(MODEL, VOCAB, "order", seed=-1), ValueError,
     ["seed must be at least 0"]),
    ("probe", lambda: probe(MODEL, VOCAB, "counting", compositions="unseen"), ValueError,
     ["compositions must be one of", "'unseen'"]),
    ("probe", lambda: probe(MODEL, VOCAB, "relation", compositions=1), ValueError,
     ["compositions must be one of"]),
    ("probe", lambda: probe(TinyCLIP.create(10, len(VOCAB), 4), VOCAB, "relation"), ValueError,
     ["model must take S x S RGB images", "10 pixels"]),
    ("probe_items", lambda: probe_items("binding"), ValueError, ["suite must be one of"]),
    ("probe_items", lambda: probe_items("relation", n=-3), ValueError, ["n must be at least 1"]),
    ("probe_items", lambda: probe_items("counting", seed="0"), TypeError, ["seed must be an int"]),
    ("probe_items", lambda: probe_items("order", image_size=8), ValueError,
     ["image_size must be at least 12"]),
    ("probe_items", lambda: probe_items("counting", n=3, image_size=8), ValueError,
     ["image_size must be at least 12"]),
    ("run_probes", lambda: run_probes(MODEL, VOCAB, "relation"), TypeError,
     ["suites must be a list of suite names", "'relation'"]),
    ("run_probes", lambda: run_probes(MODEL, VOCAB, []), ValueError,
     ["suites must name at least one"]),
    ("run_probes", lambda: run_probes(MODEL, VOCAB, ["order", "order"]), ValueError,
     ["suites must not repeat"]),
    ("run_probes", lambda: run_probes(MODEL, VOCAB, ["relation", "orders"]), ValueError,
     ["suites[1] must be one of", "'orders'"]),
    ("run_probes", lambda: run_probes(MODEL, VOCAB, {"relation"}), TypeError,
     ["suites must be a list"]),
    ("run_probes", lambda: run_probes(MODEL, VOCAB, n_items=5), TypeError,
     ["run_probes takes n, seed and compositions", "n_items"]),
    ("run_probes", lambda: run_probes(None, VOCAB, ["relation"]), TypeError,
     ["model must be a numclip.model.TinyCLIP"]),
    ("format_table", lambda: format_table({}), TypeError, ["results must be a non-empty dict"]),
    ("format_table", lambda: format_table([ProbeResult("order", 0.0, 0.2, 1, 1)]), TypeError,
     ["results must be a non-empty dict", "list"]),
    ("format_table", lambda: format_table({"order": 0.5}), TypeError,
     ["results['order'] must be a ProbeResult, got float"]),
    ("to_json", lambda: to_json(None), TypeError, ["results must be a non-empty dict"]),
    ("to_json", lambda: to_json({"order": {"accuracy": 0.5}}), TypeError,
     ["results['order'] must be a ProbeResult, got dict"]),
    # a result filed under another suite's name would be printed beside that suite's chance
    ("format_table", lambda: format_table({3: ProbeResult("order", 0.0, 0.2, 1, 1)}), ValueError,
     ["results[3] holds the 'order' probe", "file each result under its suite"]),
    ("to_json", lambda: to_json({"relation": ProbeResult("order", 0.0, 0.2, 1, 1)}), ValueError,
     ["results['relation'] holds the 'order' probe"]),
    ("ProbeResult", lambda: ProbeResult("orders", 0.5, 0.2, 10, 0), ValueError,
     ["suite must be one of"]),
    ("ProbeResult", lambda: ProbeResult("order", 1.5, 0.2, 10, 0), ValueError,
     ["accuracy must be in [0, 1]", "1.5"]),
    ("ProbeResult", lambda: ProbeResult("order", float("nan"), 0.2, 10, 0), ValueError,
     ["accuracy must be in [0, 1]", "nan"]),
    ("ProbeResult", lambda: ProbeResult("order", 0.5, 0.0, 10, 0), ValueError,
     ["chance in (0, 1)"]),
    ("ProbeResult", lambda: ProbeResult("order", 0.5, 0.3, 10, 0), ValueError,
     ["chance must be order's, 0.2 (CHANCE['order']), got 0.3"]),
    ("ProbeResult", lambda: ProbeResult("order", 0.55, 0.2, 10, 0), ValueError,
     ["accuracy * items must be a whole number of images", "5.5"]),
    ("ProbeResult", lambda: ProbeResult("order", "0.5", 0.2, 10, 0), TypeError,
     ["accuracy must be a real number"]),
    ("ProbeResult", lambda: ProbeResult("order", 0.5, 0.2, 0, 0), ValueError,
     ["items must be at least 1"]),
    ("ProbeResult", lambda: ProbeResult("order", 0.5, 0.2, 10.0, 0), TypeError,
     ["items must be an int"]),
    ("ProbeResult", lambda: ProbeResult("order", 0.5, 0.2, 10, 11), ValueError,
     ["ties must be in [0, 10], got 11"]),
    ("ProbeResult", lambda: ProbeResult("order", 0.5, 0.2, 10, 6), ValueError,
     ["ties (6) must be among the failures, at most", "= 5"]),
    ("ProbeItems", lambda: ProbeItems("relation", ITEMS.pixels.tolist(), ITEMS.captions,
                                      ITEMS.perturbed), TypeError,
     ["pixels must be a NumPy array, got list"]),
    ("ProbeItems", lambda: ProbeItems("relation", ITEMS.pixels[0], ITEMS.captions,
                                      ITEMS.perturbed), ValueError, ["pixels must be 2-D"]),
    ("ProbeItems", lambda: ProbeItems("relation", ITEMS.pixels, ITEMS.captions[:2],
                                      ITEMS.perturbed), ValueError,
     ["captions must have one entry per image (3), got 2"]),
    ("ProbeItems", lambda: ProbeItems("relation", ITEMS.pixels, ITEMS.captions,
                                      ITEMS.perturbed[:2]), ValueError,
     ["perturbed must hold one tuple per image (3)", "got 2"]),
    ("ProbeItems", lambda: ProbeItems("relation", ITEMS.pixels, ITEMS.captions,
                                      (("a",), ("a", "b"), ("c",))), ValueError,
     ["all of one length", "[1, 2]"]),
    ("ProbeItems", lambda: ProbeItems("relation", ITEMS.pixels, ITEMS.captions, "abc"),
     TypeError, ["perturbed must be a list of tuples of str"]),
    ("ProbeItems", lambda: ProbeItems("relation", ITEMS.pixels, ITEMS.captions,
                                      (("a",), ("b",), "c")), TypeError,
     ["perturbed[2] must be a list of str"]),
    ("ProbeItems", lambda: ProbeItems("relation", ITEMS.pixels, ITEMS.captions,
                                      (("a",), (), ("c",))), ValueError,
     ["perturbed[1] must not be empty"]),
    ("ProbeItems", lambda: ProbeItems("counts", ITEMS.pixels, ITEMS.captions, ITEMS.perturbed),
     ValueError, ["suite must be one of"]),
]


@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words):
    assert_refused(call, error, words)


def test_every_public_function_has_bad_input_rows():
    assert public_callables(probes) - {row[0] for row in BAD_INPUT} == set()
