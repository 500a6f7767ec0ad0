"""The two-object scenes: pictures that match their captions, hard negatives with the same
words, ARO's order shuffles, and bad input named."""

import itertools
import re
from collections import Counter

import numpy as np
import pytest
from conftest import assert_refused, public_callables
from numpy.lib.stride_tricks import sliding_window_view

from numclip import data, scenes
from numclip.data import CLASSES, COLORS, HELDOUT, SHAPES
from numclip.scenes import (
    MAX_WORDS,
    ORDER_SHUFFLES,
    RELATIONS,
    Scenes,
    binding_caption,
    hard_negative,
    make_scenes,
    order_shuffles,
    relation_caption,
    shuffle_all_but_nouns_and_adjectives,
    shuffle_nouns_and_adjectives,
    shuffle_trigrams,
    shuffle_within_trigrams,
    swap_attributes,
    swap_objects,
)
from numclip.text import tokenize

FIELDS = ("images", "colors", "shapes", "layout", "kinds", "first")
# The palette and the shapes as numclip.data draws them (numclip.scenes paints with the
# same ones): the scenes must show the objects a model trained on numclip.data knows.
PALETTE = data.PALETTE  # (8, 3)
_OBJ = r"(a|an) ({}) ({})".format("|".join(COLORS), "|".join(SHAPES))
_CAPTION = re.compile(rf"{_OBJ} (to the left of|to the right of|above|below|and) {_OBJ}")


def parse(text):
    """(link, (colour, shape), (colour, shape)) read from a caption, independently of scenes."""
    m = _CAPTION.fullmatch(text)
    assert m, f"not a scene caption: {text!r}"
    a1, c1, s1, link, a2, c2, s2 = m.groups()
    for article, color in ((a1, c1), (a2, c2)):
        assert article == ("an" if color[0] in "aeiou" else "a"), text
    return link, (COLORS.index(c1), SHAPES.index(s1)), (COLORS.index(c2), SHAPES.index(s2))


def objects(ds, i):
    return [(int(ds.colors[i, o]), int(ds.shapes[i, o])) for o in range(2)]


# ------------------------------------------------------------ arrays, seeds, balance


@pytest.mark.parametrize("image_size", [12, 16, 17, 32])
def test_shapes_dtypes_and_ranges(image_size):
    n = 40
    ds = make_scenes(n, seed=3, compositions="all", image_size=image_size)
    assert len(ds) == n
    assert ds.images.shape == (n, image_size, image_size, 3) and ds.images.dtype == np.float32
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert ds.colors.shape == ds.shapes.shape == (n, 2)
    for name in ("colors", "shapes", "layout", "kinds", "first"):
        assert getattr(ds, name).dtype == np.int64, name
    for name in ("layout", "kinds", "first"):
        assert getattr(ds, name).shape == (n,) and set(getattr(ds, name).tolist()) <= {0, 1}
    assert isinstance(ds.captions, tuple) and isinstance(ds.negatives, tuple)
    x = ds.pixels()
    assert x.shape == (n, image_size**2 * 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[5], ds.images[5].ravel())


def test_same_seed_same_scenes_other_seed_other_scenes():
    a, b, c = (make_scenes(64, seed=s) for s in (7, 7, 8))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.captions == b.captions and a.negatives == b.negatives
    assert not np.array_equal(a.images, c.images) and a.captions != c.captions


def test_the_two_objects_always_differ_in_colour_and_in_shape():
    ds = make_scenes(2000, seed=1, compositions="all")
    assert np.all(ds.colors[:, 0] != ds.colors[:, 1])
    assert np.all(ds.shapes[:, 0] != ds.shapes[:, 1])


def allowed_pairs(compositions):
    """Ordered pairs of compositions, objects differing in colour and shape, by the rule."""
    pairs = {(a, b) for a in CLASSES for b in CLASSES if a[0] != b[0] and a[1] != b[1]}
    held = set(HELDOUT)
    return {"seen": {p for p in pairs if not set(p) & held},
            "heldout": {p for p in pairs if set(p) & held}, "all": pairs}[compositions]


@pytest.mark.parametrize("compositions", ["seen", "heldout", "all"])
def test_held_out_logic_and_balance_of_the_pairs(compositions):
    expected = allowed_pairs(compositions)
    n = 2 * len(expected) + 7  # every pair twice, seven three times
    ds = make_scenes(n, seed=2, compositions=compositions)
    counts = Counter(tuple(objects(ds, i)) for i in range(n))
    assert set(counts) == expected
    assert max(counts.values()) - min(counts.values()) <= 1
    in_heldout = [sum(o in HELDOUT for o in objects(ds, i)) for i in range(n)]
    if compositions == "seen":
        assert max(in_heldout) == 0
    if compositions == "heldout":
        assert min(in_heldout) >= 1


def test_a_few_scenes_are_a_sample_of_every_object_not_the_first_pairs():
    """Fewer scenes than pairs: balance cannot reach every pair, but the scenes must
    still be a random sample (the first 40 pairs all hold the red circle)."""
    ds = make_scenes(40, seed=3, compositions="all")
    assert len({tuple(objects(ds, i)) for i in range(40)}) == 40  # of 1,120 pairs
    assert len({objects(ds, i)[0] for i in range(40)}) >= 20  # of 40 compositions
    assert any(1 in make_scenes(3, seed=s).kinds for s in range(10))  # not always relations


def test_seen_and_heldout_make_up_all():
    assert allowed_pairs("seen") | allowed_pairs("heldout") == allowed_pairs("all")
    assert not allowed_pairs("seen") & allowed_pairs("heldout")


@pytest.mark.parametrize("kinds, expected", [("both", {0, 1}), ("relation", {0}),
                                             ("binding", {1})])
def test_kinds_layouts_and_relations_are_balanced(kinds, expected):
    n = 803
    ds = make_scenes(n, seed=4, kinds=kinds)
    combos = Counter(zip(ds.kinds.tolist(), ds.layout.tolist(), ds.first.tolist(), strict=True))
    assert set(k for k, _, _ in combos) == expected
    assert len(combos) == 4 * len(expected)  # every kind x layout x first
    assert max(combos.values()) - min(combos.values()) <= 1
    if kinds == "relation":
        used = Counter(parse(t)[0] for t in ds.captions)
        assert set(used) == set(RELATIONS) and max(used.values()) - min(used.values()) <= 1


# ------------------------------------------------------------ captions and negatives


def test_captions_name_the_objects_their_relation_and_fit_the_text_encoder():
    ds = make_scenes(1500, seed=5, compositions="all")
    for i, text in enumerate(ds.captions):
        assert len(tokenize(text)) <= MAX_WORDS, text
        link, a, b = parse(text)
        named = [ds.first[i], 1 - ds.first[i]]
        assert [a, b] == [objects(ds, i)[o] for o in named], (i, text)
        if ds.kinds[i] == 0:
            assert link == RELATIONS[2 * ds.layout[i] + ds.first[i]], (i, text)
        else:
            assert link == "and"


def test_no_caption_any_scene_can_have_exceeds_the_word_limit():
    longest = max((relation_caption(a, r, b) for a in CLASSES for b in CLASSES
                   if a[0] != b[0] and a[1] != b[1] for r in RELATIONS),
                  key=lambda t: len(tokenize(t)))
    assert len(tokenize(longest)) == MAX_WORDS  # "to the right of" between two objects


def test_negatives_differ_from_captions_but_hold_the_same_words():
    ds = make_scenes(1500, seed=6, compositions="all")
    for i, (text, negative) in enumerate(zip(ds.captions, ds.negatives, strict=True)):
        assert negative != text
        assert sorted(tokenize(negative)) == sorted(tokenize(text))
        link, a, b = parse(text)
        nlink, na, nb = parse(negative)
        assert nlink == link
        if ds.kinds[i] == 0:  # the objects swapped around the relation
            assert (na, nb) == (b, a)
        else:  # the colours swapped between the objects, each shape in its place
            assert (na, nb) == ((b[0], a[1]), (a[0], b[1]))


def test_negatives_are_the_public_swaps_of_the_captions():
    ds = make_scenes(300, seed=7, compositions="all")
    for i, (text, negative) in enumerate(zip(ds.captions, ds.negatives, strict=True)):
        swap = swap_objects if ds.kinds[i] == 0 else swap_attributes
        assert swap(text) == negative == hard_negative(text)
        assert swap(negative) == text  # each swap is its own inverse


def test_caption_helpers():
    assert relation_caption((0, 0), "to the left of", (5, 1)) == (
        "a red circle to the left of a blue square")
    assert relation_caption([1, 2], 3, np.array([7, 4])) == "an orange triangle below a white bar"
    assert binding_caption((0, 0), (5, 1)) == "a red circle and a blue square"
    assert binding_caption((np.int64(1), np.int8(3)), (2, 0)) == (
        "an orange cross and a yellow circle")
    assert swap_objects("A red circle above an orange square.") == (
        "an orange square above a red circle")
    assert swap_attributes("a red circle and an orange square") == (
        "an orange circle and a red square")
    assert swap_attributes("a red circle to the left of a blue square") == (
        "a blue circle to the left of a red square")
    # a relation between two objects of one shape still changes meaning when swapped
    assert swap_attributes("a red circle above a blue circle") == "a blue circle above a red circle"


# ------------------------------------------------------------ the pictures


def unmix(image, colors):
    """Per-pixel coverage of each of two colours, by least squares on the RGB values."""
    basis = PALETTE[list(colors)].T  # (3, 2)
    coverage = np.linalg.lstsq(basis, image.reshape(-1, 3).T, rcond=None)[0]  # (2, S*S)
    return coverage.T.reshape(*image.shape[:2], 2)


def centroid(weights):
    weights = np.where(weights > 0.3, weights, 0)  # ink, not noise (|noise| <= 0.08)
    rows, cols = np.indices(weights.shape)
    return np.array([np.sum(weights * rows), np.sum(weights * cols)]) / np.sum(weights)


def test_geometry_matches_the_relation_captions():
    """Each relation caption's subject (found by its colour, read from the caption) lies
    on the named side of the other object.  Along the relation the objects' boxes are
    half the image (8 px) apart and each centroid lies inside its 6-px box, so the
    centroids are more than 2 px apart; across it the boxes are aligned."""
    ds = make_scenes(1200, seed=8, compositions="all", kinds="relation")
    direction = {"to the left of": (1, -1), "to the right of": (1, 1), "above": (0, -1),
                 "below": (0, 1)}  # (axis: 0 rows, 1 columns; sign of subject - reference)
    for i, text in enumerate(ds.captions):
        link, subject, reference = parse(text)
        coverage = unmix(ds.images[i], [subject[0], reference[0]])
        delta = centroid(coverage[..., 0]) - centroid(coverage[..., 1])  # (row, col)
        axis, sign = direction[link]
        assert sign * delta[axis] > 2, (i, text, delta)
        assert abs(delta[1 - axis]) < 2, (i, text, delta)  # aligned across the relation


def best_match(coverage, stencils):
    """Normalised cross-correlation of a coverage map with each 6 x 6 shape, at its best
    placement: ``(len(stencils),)``."""
    windows = sliding_window_view(np.clip(coverage, 0, None), stencils.shape[1:])
    norms = np.linalg.norm(windows, axis=(-2, -1)) * np.linalg.norm(stencils, axis=(1, 2))[
        :, None, None]
    return np.max(np.einsum("ijhw,khw->kij", windows, stencils) / (norms + 1e-9), axis=(1, 2))


def test_binding_captions_bind_each_colour_to_its_shape():
    """The object of each colour a binding caption names has the shape it names, so the
    negative (colours swapped) is false.  The shapes are numclip.data's own stencils."""
    shapes = data.shape_stencils(8)[:, 1, 1, 1:7, 1:7]  # (5, 6, 6) each shape, centred
    ds = make_scenes(600, seed=9, compositions="all", kinds="binding")
    for i, text in enumerate(ds.captions):
        _, *named = parse(text)
        coverage = unmix(ds.images[i], [c for c, _ in named])
        for o, (_, shape) in enumerate(named):
            assert np.argmax(best_match(coverage[..., o], shapes)) == shape, (i, text, o)


def test_background_is_black_up_to_the_noise():
    ds = make_scenes(200, seed=10, compositions="all")
    ink = ds.images.max(axis=-1) > data.NOISE + 1e-6  # brighter than noise alone can be
    lit = ink.reshape(len(ds), -1).sum(axis=1)
    assert np.all(lit >= 2 * 6) and np.all(lit <= 2 * 36)  # two shapes of at most 6 x 6 px


# ------------------------------------------------------------ order shuffles

CAPTION = "a red circle to the left of a blue square"
SHUFFLES = [shuffle_nouns_and_adjectives, shuffle_all_but_nouns_and_adjectives,
            shuffle_within_trigrams, shuffle_trigrams]  # ARO's order (COCO_Order)
NOUNS_ADJ = set(SHAPES) | set(COLORS)


def trigrams(words):
    return [tuple(words[i:i + 3]) for i in range(0, len(words), 3)]


@pytest.mark.parametrize("shuffle", SHUFFLES, ids=lambda f: f.__name__)
def test_each_shuffle_keeps_the_words_changes_their_order_and_is_seeded(shuffle):
    texts = make_scenes(200, seed=11, compositions="all").captions
    rng = np.random.default_rng(0)
    for text in texts:
        words = tokenize(text)
        out = tokenize(shuffle(text, rng))
        assert out != words and sorted(out) == sorted(words), (text, out)
        kept = {shuffle_nouns_and_adjectives: lambda w: w not in NOUNS_ADJ,
                shuffle_all_but_nouns_and_adjectives: lambda w: w in NOUNS_ADJ}.get(shuffle)
        if kept is not None:  # the words it must not move stay in their places
            assert [w if kept(w) else None for w in out] == [
                w if kept(w) else None for w in words], (text, out)
        if shuffle is shuffle_trigrams:
            orders = {sum(p, ()) for p in itertools.permutations(trigrams(words))}
            assert tuple(out) in orders - {tuple(words)}, (text, out)
        if shuffle is shuffle_within_trigrams:
            assert [sorted(g) for g in trigrams(out)] == [sorted(g) for g in trigrams(words)]
    first = [shuffle(t, np.random.default_rng(3)) for t in texts[:20]]
    assert first == [shuffle(t, np.random.default_rng(3)) for t in texts[:20]]


def test_shuffles_can_reach_every_rearrangement_they_allow():
    rng = np.random.default_rng(1)
    seen = {shuffle_nouns_and_adjectives(CAPTION, rng) for _ in range(200)}
    assert seen == {"a blue circle to the left of a red square",
                    "a red square to the left of a blue circle",
                    "a blue square to the left of a red circle"}
    assert len({shuffle_trigrams(CAPTION, rng) for _ in range(500)}) == 23  # 4! - 1


def test_order_shuffles_are_the_four_in_order():
    a = order_shuffles(CAPTION, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    assert a == tuple(f(CAPTION, rng) for f in SHUFFLES)
    assert ORDER_SHUFFLES == tuple(f.__name__ for f in SHUFFLES)
    assert all(tokenize(s) != tokenize(CAPTION) for s in a)


def test_shuffles_take_captions_of_numclip_data_too():
    rng = np.random.default_rng(2)
    out = shuffle_nouns_and_adjectives("two red circles and three blue crosses", rng)
    assert out in {"two blue circles and three red crosses", "two red crosses and three blue "
                   "circles", "two blue crosses and three red circles"}


# ------------------------------------------------------------ bad input, one table

DS = make_scenes(4, seed=0, compositions="all")
VALID = {f: getattr(DS, f) for f in (*FIELDS, "captions", "negatives")}


def built(**changes):
    return lambda: Scenes(**(VALID | changes))


RNG = np.random.default_rng(0)
_SAME_COLOUR = DS.colors.copy()
_SAME_COLOUR[1, 1] = _SAME_COLOUR[1, 0]
# (public name, call, expected error, words the message must contain)
BAD_INPUT = [
    ("make_scenes", lambda: make_scenes(0, seed=0), ValueError, ["n must be at least 1, got 0"]),
    ("make_scenes", lambda: make_scenes(2.0, seed=0), TypeError, ["n must be an int"]),
    ("make_scenes", lambda: make_scenes(True, seed=0), TypeError, ["n must be an int"]),
    ("make_scenes", lambda: make_scenes(10, seed=-1), ValueError, ["seed must be at least 0"]),
    ("make_scenes", lambda: make_scenes(10, seed=None), TypeError, ["seed must be an int"]),
    ("make_scenes", lambda: make_scenes(10, seed=0, compositions="unseen"), ValueError,
     ["compositions must be one of", "'unseen'"]),
    ("make_scenes", lambda: make_scenes(10, seed=0, compositions=["seen"]), ValueError,
     ["compositions must be one of"]),
    ("make_scenes", lambda: make_scenes(10, seed=0, kinds="relations"), ValueError,
     ["kinds must be one of", "'relations'"]),
    ("make_scenes", lambda: make_scenes(10, seed=0, kinds=None), ValueError,
     ["kinds must be one of"]),
    ("make_scenes", lambda: make_scenes(10, seed=0, image_size=8), ValueError,
     ["image_size must be at least 12, got 8"]),
    ("make_scenes", lambda: make_scenes(10, seed=0, image_size=16.0), TypeError,
     ["image_size must be an int"]),
    ("make_scenes", lambda: make_scenes(10**17, seed=0), ValueError,
     ["n = 100000000000000000 scenes of 16x16", "fewer"]),
    ("make_scenes", lambda: make_scenes(10**400, seed=0), ValueError, ["n = ~1e400 scenes"]),
    ("make_scenes", lambda: make_scenes(4, seed=0, image_size=10**400), ValueError,
     ["~1e400x~1e400 pixels"]),
    ("relation_caption", lambda: relation_caption((0, 0), "left of", (1, 1)), ValueError,
     ["relation must be one of", "'left of'"]),
    ("relation_caption", lambda: relation_caption((0, 0), 4, (1, 1)), ValueError,
     ["relation must be in [0, 3], got 4"]),
    ("relation_caption", lambda: relation_caption((0, 0), 1.0, (1, 1)), TypeError,
     ["relation must be an int"]),
    ("relation_caption", lambda: relation_caption((8, 0), 0, (1, 1)), ValueError,
     ["subject[0] (the colour) must be in [0, 7], got 8"]),
    ("relation_caption", lambda: relation_caption((0, 0), 0, (1, 5)), ValueError,
     ["reference[1] (the shape) must be in [0, 4], got 5"]),
    ("relation_caption", lambda: relation_caption("red circle", 0, (1, 1)), TypeError,
     ["subject must be a (colour, shape) pair of ints", "str"]),
    ("relation_caption", lambda: relation_caption((0, 0, 0), 0, (1, 1)), TypeError,
     ["subject must be a (colour, shape) pair"]),
    ("relation_caption", lambda: relation_caption((0, 0.0), 0, (1, 1)), TypeError,
     ["subject[1] (the shape) must be an int"]),
    ("relation_caption", lambda: relation_caption((2, 3), 0, (2, 3)), ValueError,
     ["subject and reference must be different objects"]),
    ("binding_caption", lambda: binding_caption((0, 0), (0, 0)), ValueError,
     ["first and second must be different objects"]),
    ("binding_caption", lambda: binding_caption((0, 0), None), TypeError,
     ["second must be a (colour, shape) pair", "NoneType"]),
    ("binding_caption", lambda: binding_caption((0, -1), (1, 1)), ValueError,
     ["first[1] (the shape) must be in [0, 4], got -1"]),
    ("swap_objects", lambda: swap_objects("a red circle and a blue square"), ValueError,
     ["caption must be a relation caption", "keeps its meaning"]),
    ("swap_objects", lambda: swap_objects("a red circle near a blue square"), ValueError,
     ["caption must read '<object> <relation> <object>'", "near"]),
    ("swap_objects", lambda: swap_objects("a orange circle above a blue square"), ValueError,
     ["caption must write 'an' before 'orange'"]),
    ("swap_objects", lambda: swap_objects("a red circle above a red circle"), ValueError,
     ["subject and reference must be different objects"]),
    ("swap_objects", lambda: swap_objects(["a red circle above a blue square"]), TypeError,
     ["caption must be a str, got list"]),
    ("swap_objects", lambda: swap_objects("..."), ValueError, ["caption must hold at least one"]),
    ("swap_attributes", lambda: swap_attributes("a red circle and a red square"), ValueError,
     ["caption's objects must differ in colour"]),
    ("swap_attributes", lambda: swap_attributes("a red circle and a blue circle"), ValueError,
     ["caption's objects must differ in shape", "only reorders the pair"]),
    ("swap_attributes", lambda: swap_attributes("a photo of two red circles"), ValueError,
     ["caption must read"]),
    ("swap_attributes", lambda: swap_attributes(None), TypeError, ["caption must be a str"]),
    ("hard_negative", lambda: hard_negative("a red circle"), ValueError, ["caption must read"]),
    ("hard_negative", lambda: hard_negative(b"a red circle and a blue square"), TypeError,
     ["caption must be a str, got bytes"]),
    ("shuffle_nouns_and_adjectives", lambda: shuffle_nouns_and_adjectives("a red circle", RNG),
     ValueError, ["caption must have two different nouns or adjectives", "'a red circle'"]),
    ("shuffle_nouns_and_adjectives", lambda: shuffle_nouns_and_adjectives(CAPTION, 0),
     TypeError, ["rng must be a numpy.random.Generator, got int"]),
    ("shuffle_nouns_and_adjectives", lambda: shuffle_nouns_and_adjectives(3, RNG), TypeError,
     ["caption must be a str, got int"]),
    ("shuffle_all_but_nouns_and_adjectives",
     lambda: shuffle_all_but_nouns_and_adjectives("a a red circle", RNG), ValueError,
     ["caption must have two different words besides nouns and adjectives"]),
    ("shuffle_all_but_nouns_and_adjectives",
     lambda: shuffle_all_but_nouns_and_adjectives(CAPTION, np.random.RandomState(0)),
     TypeError, ["rng must be a numpy.random.Generator", "RandomState"]),
    ("shuffle_trigrams", lambda: shuffle_trigrams("a red circle", RNG), ValueError,
     ["caption must have two different trigrams"]),
    ("shuffle_trigrams", lambda: shuffle_trigrams("a a a a a a", RNG), ValueError,
     ["two different trigrams"]),
    ("shuffle_trigrams", lambda: shuffle_trigrams("", RNG), ValueError,
     ["caption must hold at least one word"]),
    ("shuffle_within_trigrams", lambda: shuffle_within_trigrams("a a a b", RNG), ValueError,
     ["caption must have two different words in a trigram"]),
    ("shuffle_within_trigrams", lambda: shuffle_within_trigrams(CAPTION, None), TypeError,
     ["rng must be a numpy.random.Generator, got NoneType"]),
    ("order_shuffles", lambda: order_shuffles("a red circle", RNG), ValueError,
     ["caption must have two different"]),
    ("order_shuffles", lambda: order_shuffles(CAPTION, 42), TypeError, ["rng must be a numpy"]),
    ("order_shuffles", lambda: order_shuffles([CAPTION], RNG), TypeError,
     ["caption must be a str"]),
    ("Scenes", built(images=None), TypeError, ["images must be a NumPy array", "NoneType"]),
    ("Scenes", built(images=DS.images[..., 0]), ValueError,
     ["images must have shape (n, H, W, 3)"]),
    ("Scenes", built(images=DS.images * np.nan), ValueError, ["images contains NaN"]),
    ("Scenes", built(images=DS.images + 1), ValueError, ["images must lie in [0, 1]"]),
    ("Scenes", built(images=DS.images.astype(np.float16)), TypeError, ["images has dtype"]),
    ("Scenes", built(colors=DS.colors * 1.0), TypeError,
     ["colors must be an array of integers", "float64"]),
    ("Scenes", built(colors=DS.colors[:, 0]), ValueError,
     ["colors must have one row of 2 per image, shape (4, 2), got shape (4,)"]),
    ("Scenes", built(shapes=DS.shapes + 5), ValueError, ["shapes must be in [0, 4]", "(0, 0)"]),
    ("Scenes", built(layout=np.full(4, 2)), ValueError, ["layout must be in [0, 1], got 2"]),
    ("Scenes", built(kinds=DS.kinds[:3]), ValueError,
     ["kinds must have one entry per image, shape (4,)"]),
    ("Scenes", built(first=None), TypeError, ["first must be an array of integers"]),
    ("Scenes", built(colors=_SAME_COLOUR), ValueError,
     ["the two objects of scene 1 must differ in colour and in shape"]),
    ("Scenes", built(captions=DS.captions[:3]), ValueError,
     ["captions must have one entry per image (4), got 3"]),
    ("Scenes", built(captions=DS.negatives), ValueError,
     ["captions[0] =", "does not describe scene 0"]),
    ("Scenes", built(negatives=DS.captions), ValueError,
     ["negatives[0] =", "does not describe scene 0"]),
    ("Scenes", built(first=1 - DS.first), ValueError, ["does not describe scene 0"]),
    ("Scenes", built(negatives="a red circle"), TypeError, ["negatives must be a list of str"]),
    ("Scenes", built(captions=(*DS.captions[:3], 3)), TypeError,
     ["captions[3] must be a str, got int"]),
]


@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words):
    assert_refused(call, error, words)


def test_every_public_function_has_bad_input_rows():
    assert public_callables(scenes) - {row[0] for row in BAD_INPUT} == set()


def test_make_scenes_seed_is_keyword_only():
    with pytest.raises(TypeError):
        make_scenes(10, 0)


# ------------------------------------------------------------ valid unusual input


def test_numpy_integer_arguments_give_the_same_scenes():
    a = make_scenes(np.int64(12), seed=np.uint8(3), image_size=np.int32(13), compositions="all")
    b = make_scenes(12, seed=3, image_size=13, compositions="all")
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.captions == b.captions


def test_scenes_take_lists_and_fortran_order_arrays():
    ds = Scenes(np.asfortranarray(DS.images), DS.colors.tolist(), DS.shapes.astype(np.int32),
                DS.layout.tolist(), DS.kinds.astype(np.uint8), list(DS.first),
                list(DS.captions), np.array(DS.negatives))
    assert ds.colors.dtype == np.int64 and ds.kinds.dtype == np.int64
    assert isinstance(ds.captions, tuple) and ds.negatives == DS.negatives
    np.testing.assert_array_equal(ds.pixels(), DS.pixels())
