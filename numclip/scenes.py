"""Synthetic scenes of two objects, with captions whose meaning needs their word order.

Every image shows two objects, each a (colour, shape) from :data:`numclip.data.COLORS`
and :data:`numclip.data.SHAPES`, side by side or one above the other, on a black
background.  Each image has one caption, of one of two kinds:

* a **relation**: ``"a red circle to the left of a blue square"``, any of the
  :data:`RELATIONS` that holds (a left/right pair reads "A to the left of B" or,
  just as true, "B to the right of A");
* a **binding** of attributes to objects: ``"a red circle and a blue square"``, the two
  objects in random order.

and one hard negative caption, as NegCLIP makes them (Yuksekgonul et al., ICLR 2023,
"When and why vision-language models behave like bags-of-words", section 5): the
relation caption with its two objects swapped around the relation (:func:`swap_objects`),
the binding caption with the colours swapped between the objects
(:func:`swap_attributes`).  A negative holds exactly the words of its caption, so a
bag-of-words text encoder gives both the same embedding and cannot tell them apart;
only word order can.

The two objects of a scene differ in colour *and* in shape.  With one colour the
attribute swap would give back the caption itself; with one shape ("a red circle and a
blue circle") it would only reorder a pair, keeping its meaning.

Held-out compositions follow :mod:`numclip.data`: a scene is ``"seen"`` when neither of
its objects is a composition in :data:`numclip.data.HELDOUT`, ``"heldout"`` when at least
one is.  A binding negative swaps colours, so the negative of a seen scene can name a
held-out composition ("a red square and a blue circle" -> "a blue square and a red
circle"): such a text is a true negative of its image (no red circle is in it), and no
image of a held-out composition is ever drawn for the seen split.

How the pictures are made (like :mod:`numclip.data`'s, 16 x 16 px by default):

* each object is a 6-px shape in its own half of the image (left and right halves
  when side by side, top and bottom when stacked), so the two never touch and the
  relation is never ambiguous: along the relation the objects' centres are half the
  image apart (8 px at 16 px), across it they are aligned;
* the pair moves together, by up to one pixel along each axis (jitter) and by up to
  one more across the relation, so a relation is a matter of where the objects are
  *relative to each other*, not of fixed pixels;
* brightness, tint and pixel noise as in :mod:`numclip.data`; generation is vectorised
  (10,000 images in about 0.2 s).
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass

import numpy as np

from numclip.backend import as_int
from numclip.data import (
    BRIGHTNESS,
    CLASSES,
    COLORS,
    HELDOUT,
    JITTER,
    NOISE,
    PALETTE,
    SHAPES,
    TINT,
    as_images,
    shape_stencils,
)
from numclip.text import as_texts, tokenize

__all__ = [
    "RELATIONS", "KINDS", "LAYOUTS", "ORDER_SHUFFLES", "MAX_WORDS",
    "relation_caption", "binding_caption", "swap_objects", "swap_attributes", "hard_negative",
    "shuffle_nouns_and_adjectives", "shuffle_all_but_nouns_and_adjectives",
    "shuffle_trigrams", "shuffle_within_trigrams", "order_shuffles",
    "Scenes", "make_scenes",
]

RELATIONS: tuple[str, ...] = ("to the left of", "to the right of", "above", "below")
KINDS: tuple[str, ...] = ("relation", "binding")  # Scenes.kinds: 0 relation, 1 binding
# Scenes.layout: 0 side by side with object 0 on the left, 1 stacked with object 0 on top.
LAYOUTS: tuple[str, ...] = ("side by side", "stacked")
MAX_WORDS = 10  # the transformer's context: <start> + 10 words + <end>
ORDER_SHUFFLES: tuple[str, ...] = (  # ARO's four word-order perturbations, in its order
    "shuffle_nouns_and_adjectives", "shuffle_all_but_nouns_and_adjectives",
    "shuffle_within_trigrams", "shuffle_trigrams")

MIN_IMAGE_SIZE = 12  # halves of 6 px: a 4-px shape with a pixel of jitter on each side
_SHIFT = 1  # the pair's extra shift across the relation, in pixels
_SUBSETS = ("seen", "heldout", "all")
_KIND_CHOICES = ("both", *KINDS)

# The words the order shuffles treat as nouns and adjectives.  A tagger would also call
# "left" and "right" nouns ("to the left of"); here they belong to the relation phrase,
# so that shuffling nouns moves the objects' shapes, as it moves ARO's objects.
_NOUNS = frozenset(SHAPES) | {s + ("es" if s.endswith("s") else "s") for s in SHAPES}
_ADJECTIVES = frozenset(COLORS)


# ---------------------------------------------------------------- captions


def _article(color: int) -> str:
    return "an" if COLORS[color][0] in "aeiou" else "a"


def _object(color: int, shape: int) -> str:
    """``"a red circle"``, ``"an orange square"``."""
    return f"{_article(color)} {COLORS[color]} {SHAPES[shape]}"


def _as_object(value, name: str) -> tuple[int, int]:
    """``value`` as a (colour index, shape index) pair, or an error naming ``name``."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name} must be a (colour, shape) pair of ints, got "
                        f"{type(value).__name__} {value!r}")
    return (as_int(value[0], f"{name}[0] (the colour)", 0, len(COLORS) - 1),
            as_int(value[1], f"{name}[1] (the shape)", 0, len(SHAPES) - 1))


def _as_relation(relation) -> int:
    """An index into RELATIONS, from the index or the phrase itself."""
    if isinstance(relation, str):
        if relation not in RELATIONS:
            raise ValueError(f"relation must be one of {RELATIONS} or its index, "
                             f"got {relation!r}")
        return RELATIONS.index(relation)
    return as_int(relation, "relation", 0, len(RELATIONS) - 1)


def relation_caption(subject, relation, reference) -> str:
    """A relation caption, ``relation_caption((0, 0), "to the left of", (5, 1))`` ==
    ``"a red circle to the left of a blue square"``.

    Args:
        subject, reference: ``(colour, shape)`` pairs of indices into
            :data:`~numclip.data.COLORS` and :data:`~numclip.data.SHAPES`; two
            different objects (the same one twice would say nothing).
        relation: one of :data:`RELATIONS`, or its index.

    Raises:
        TypeError, ValueError: naming the argument.
    """
    subject, reference = _as_object(subject, "subject"), _as_object(reference, "reference")
    relation = _as_relation(relation)
    if subject == reference:
        raise ValueError(f"subject and reference must be different objects, got {subject} "
                         "for both")
    return f"{_object(*subject)} {RELATIONS[relation]} {_object(*reference)}"


def binding_caption(first, second) -> str:
    """An attribute-binding caption, ``binding_caption((0, 0), (5, 1))`` ==
    ``"a red circle and a blue square"``.

    Args:
        first, second: ``(colour, shape)`` pairs, as for :func:`relation_caption`; two
            different objects.
    """
    first, second = _as_object(first, "first"), _as_object(second, "second")
    if first == second:
        raise ValueError(f"first and second must be different objects, got {first} for both")
    return f"{_object(*first)} and {_object(*second)}"


def _words_of(caption, name: str = "caption") -> list[str]:
    if not isinstance(caption, str):
        raise TypeError(f"{name} must be a str, got {type(caption).__name__}")
    words = tokenize(caption)
    if not words:
        raise ValueError(f"{name} must hold at least one word, got {caption!r}")
    return words


_OBJECT_WORDS = r"(a|an) ({}) ({})".format("|".join(COLORS), "|".join(SHAPES))
_CAPTION = re.compile(r"{0} ({1}|and) {0}".format(
    _OBJECT_WORDS, "|".join(re.escape(r) for r in RELATIONS)))


def _parse(caption) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """Read a scene caption back: (relation phrase or "and", first object, second object).

    The articles must agree with the colours: a caption with "a orange" is not one
    this module writes, and swapping its objects would change its words.
    """
    words = _words_of(caption)
    match = _CAPTION.fullmatch(" ".join(words))
    if match is None:
        raise ValueError(f"caption must read '<object> <relation> <object>' or '<object> and "
                         f"<object>' with an object like 'a red circle' and a relation "
                         f"among {RELATIONS}, got {caption!r}")
    article1, color1, shape1, link, article2, color2, shape2 = match.groups()
    objects = []
    for article, color, shape in ((article1, color1, shape1), (article2, color2, shape2)):
        color_index = COLORS.index(color)
        if article != _article(color_index):
            raise ValueError(f"caption must write {_article(color_index)!r} before {color!r}, "
                             f"got {article!r} in {caption!r}")
        objects.append((color_index, SHAPES.index(shape)))
    return link, objects[0], objects[1]


def swap_objects(caption: str) -> str:
    """The relation caption with its two objects swapped around the relation.

    ``swap_objects("a red circle to the left of a blue square")`` ==
    ``"a blue square to the left of a red circle"``: the same words, the opposite
    meaning.  ARO's VG-Relation perturbation, and NegCLIP's hard negative for it.

    Args:
        caption: a relation caption as :func:`relation_caption` writes it (case and
            punctuation aside: the result is lower-case words joined by single spaces).

    Raises:
        ValueError: not a relation caption (a binding caption's objects can be swapped
            without changing its meaning), or one whose two objects are the same.
    """
    link, first, second = _parse(caption)
    if link == "and":
        raise ValueError(f"caption must be a relation caption: swapping the objects of "
                         f"{caption!r} keeps its meaning; use swap_attributes")
    return relation_caption(second, link, first)


def swap_attributes(caption: str) -> str:
    """The caption with the colours swapped between its two objects.

    ``swap_attributes("a red circle and a blue square")`` ==
    ``"a blue circle and a red square"`` (ARO's VG-Attribution perturbation); the
    articles follow their colours, so the words stay the same.  Relation captions are
    taken too (``"a blue circle to the left of a red square"``).

    Args:
        caption: a caption as :func:`relation_caption` or :func:`binding_caption` writes it.

    Raises:
        ValueError: not such a caption; its objects share a colour (nothing would
            change) or, in a binding caption, a shape (the swap would only reorder the
            pair, keeping its meaning).
    """
    link, (color1, shape1), (color2, shape2) = _parse(caption)
    if color1 == color2:
        raise ValueError(f"caption's objects must differ in colour to swap their colours, "
                         f"got {caption!r}")
    if link == "and" and shape1 == shape2:
        raise ValueError(f"caption's objects must differ in shape: swapping the colours of "
                         f"{caption!r} only reorders the pair")
    swapped = (color2, shape1), (color1, shape2)
    return binding_caption(*swapped) if link == "and" else relation_caption(
        swapped[0], link, swapped[1])


def hard_negative(caption: str) -> str:
    """NegCLIP's hard negative of a scene caption: :func:`swap_objects` for a relation
    caption, :func:`swap_attributes` for a binding caption (what :attr:`Scenes.negatives`
    holds)."""
    link = _parse(caption)[0]
    return swap_attributes(caption) if link == "and" else swap_objects(caption)


# ---------------------------------------------------------------- order shuffles
# ARO's order perturbations (mertyg/vision-language-models-are-bows,
# dataset_zoo/perturbations.py; its COCO and Flickr order tasks use the four in the order
# of ORDER_SHUFFLES), with a generator for the randomness and a redraw whenever a shuffle
# gives the caption's own words back.


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _shuffle_groups(words: list[str], groups: list[list[int]], rng, caption, what) -> str:
    """Permute the words at each group of positions among themselves, redrawing until the
    words differ from the caption's (a random permutation is the identity with
    probability at most 1/2 once two words of a group differ, so about two draws)."""
    if not any(len({words[i] for i in group}) > 1 for group in groups):
        raise ValueError(f"caption must have two different {what} to shuffle, got {caption!r}")
    while True:
        out = list(words)
        for group in groups:
            for i, j in zip(group, rng.permutation(group).tolist(), strict=True):
                out[i] = words[j]
        if out != words:
            return " ".join(out)


def shuffle_nouns_and_adjectives(caption: str, rng: np.random.Generator) -> str:
    """Shuffle the nouns among the nouns' places and the adjectives among the adjectives'.

    ``"a red circle to the left of a blue square"`` may become ``"a blue circle to the
    left of a red square"``.  Nouns are the shape words (singular and plural), adjectives
    the colours; the result is never the caption's own word sequence.

    Args:
        caption: a str (lower-case words joined by spaces come out).
        rng: the ``numpy.random.Generator`` that draws the shuffle.

    Raises:
        ValueError: the caption has no two different nouns or two different adjectives.
    """
    words = _words_of(caption)
    _check_rng(rng)
    nouns = [i for i, w in enumerate(words) if w in _NOUNS]
    adjectives = [i for i, w in enumerate(words) if w in _ADJECTIVES]
    return _shuffle_groups(words, [nouns, adjectives], rng, caption, "nouns or adjectives")


def shuffle_all_but_nouns_and_adjectives(caption: str, rng: np.random.Generator) -> str:
    """Shuffle every word that is neither a noun nor an adjective, among their places.

    ``"a red circle to the left of a blue square"`` may become ``"of red circle left the
    a to a blue square"``.  Arguments and errors as for
    :func:`shuffle_nouns_and_adjectives`.
    """
    words = _words_of(caption)
    _check_rng(rng)
    rest = [i for i, w in enumerate(words) if w not in _NOUNS | _ADJECTIVES]
    return _shuffle_groups(words, [rest], rng, caption, "words besides nouns and adjectives")


def _trigrams(words: list[str]) -> list[list[str]]:
    """``words`` cut into runs of three from the start; the last run may be shorter."""
    return [words[i:i + 3] for i in range(0, len(words), 3)]


def shuffle_trigrams(caption: str, rng: np.random.Generator) -> str:
    """Cut the caption into trigrams (the last may be shorter) and shuffle their order.

    ``"a red circle | to the left | of a blue | square"`` may become ``"of a blue square
    a red circle to the left"``.  Arguments as for :func:`shuffle_nouns_and_adjectives`.

    Raises:
        ValueError: fewer than two different trigrams (a caption of three words or less).
    """
    words = _words_of(caption)
    _check_rng(rng)
    grams = [" ".join(g) for g in _trigrams(words)]
    if len(set(grams)) < 2:
        raise ValueError(f"caption must have two different trigrams to shuffle (4 or more "
                         f"words), got {caption!r}")
    while True:
        out = [grams[j] for j in rng.permutation(len(grams)).tolist()]
        if out != grams:
            return " ".join(out)


def shuffle_within_trigrams(caption: str, rng: np.random.Generator) -> str:
    """Cut the caption into trigrams and shuffle the words inside each one.

    ``"a red circle | to the left | of a blue | square"`` may become ``"circle a red left
    to the a of blue square"``.  Arguments as for :func:`shuffle_nouns_and_adjectives`.

    Raises:
        ValueError: no trigram holds two different words.
    """
    words = _words_of(caption)
    _check_rng(rng)
    groups = [list(range(i, min(i + 3, len(words)))) for i in range(0, len(words), 3)]
    return _shuffle_groups(words, groups, rng, caption, "words in a trigram")


def order_shuffles(caption: str, rng: np.random.Generator) -> tuple[str, str, str, str]:
    """The four :data:`ORDER_SHUFFLES` of ``caption``, in that order, drawn from ``rng``.

    Each differs from the caption's words (two of them may coincide with each other).
    Arguments and errors as for the four functions.
    """
    _words_of(caption)
    _check_rng(rng)
    return (shuffle_nouns_and_adjectives(caption, rng),
            shuffle_all_but_nouns_and_adjectives(caption, rng),
            shuffle_within_trigrams(caption, rng), shuffle_trigrams(caption, rng))


# ---------------------------------------------------------------- the dataset


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, not a bool
class Scenes:
    """``n`` two-object scenes, their captions and hard negatives; row ``i`` is scene ``i``.

    Object ``o`` of scene ``i`` is ``(colors[i, o], shapes[i, o])``.  Where it is:
    ``layout[i] == 0``, side by side, object 0 on the left; ``layout[i] == 1``, stacked,
    object 0 on top.  The caption names object ``first[i]`` first: for a relation
    caption (``kinds[i] == 0``) it is the subject, and the relation is
    ``RELATIONS[2 * layout[i] + first[i]]``; for a binding caption (``kinds[i] == 1``)
    it is the object written before "and".

    Construction checks every field (shape, dtype, range; two objects differing in
    colour and in shape; each caption and negative the one the other fields describe)
    and raises a ``TypeError`` or ``ValueError`` naming the field; integer fields given
    as lists become int64 arrays.
    """

    images: np.ndarray  # (n, H, W, 3) float32 in [0, 1], channels last
    colors: np.ndarray  # (n, 2) int64 index into COLORS of object 0 and object 1
    shapes: np.ndarray  # (n, 2) int64 index into SHAPES of object 0 and object 1
    layout: np.ndarray  # (n,) int64 index into LAYOUTS: 0 object 0 left, 1 object 0 above
    kinds: np.ndarray  # (n,) int64 index into KINDS: 0 relation, 1 binding caption
    first: np.ndarray  # (n,) int64 the object (0 or 1) the caption names first
    captions: tuple[str, ...]  # (n,) one caption per image
    negatives: tuple[str, ...]  # (n,) its hard negative: the same words, another meaning

    def __post_init__(self):
        n = len(as_images(self.images))
        fields = {"colors": ((n, 2), len(COLORS) - 1), "shapes": ((n, 2), len(SHAPES) - 1),
                  "layout": ((n,), 1), "kinds": ((n,), 1), "first": ((n,), 1)}
        for name, (shape, high) in fields.items():
            object.__setattr__(self, name, _index_array(getattr(self, name), name, shape, high))
        same = (self.colors[:, 0] == self.colors[:, 1]) | (self.shapes[:, 0] == self.shapes[:, 1])
        if np.any(same):
            i = int(np.argmax(same))
            raise ValueError(f"the two objects of scene {i} must differ in colour and in shape, "
                             f"got colors[{i}] = {self.colors[i].tolist()} and shapes[{i}] = "
                             f"{self.shapes[i].tolist()}")
        expected = _describe(self.colors, self.shapes, self.layout, self.kinds, self.first)
        for name, want in zip(("captions", "negatives"), expected, strict=True):
            texts = tuple(as_texts(getattr(self, name), name))
            if len(texts) != n:
                raise ValueError(f"{name} must have one entry per image ({n}), got {len(texts)}")
            wrong = next((i for i in range(n) if texts[i] != want[i]), None)
            if wrong is not None:
                raise ValueError(f"{name}[{wrong}] = {texts[wrong]!r} does not describe scene "
                                 f"{wrong} (its colors, shapes, layout, kinds and first say "
                                 f"{want[wrong]!r})")
            object.__setattr__(self, name, texts)

    def __len__(self) -> int:
        return len(self.images)

    def pixels(self) -> np.ndarray:
        """Return the images flattened to ``(n, H*W*3)`` float32, the image encoder's input."""
        return self.images.reshape(len(self.images), -1)


def make_scenes(n: int, *, seed: int, compositions: str = "seen", kinds: str = "both",
                image_size: int = 16) -> Scenes:
    """Generate ``n`` two-object scenes with captions and hard negatives, from ``seed``.

    Balanced: each allowed ordered pair of compositions appears ``n // k`` or
    ``n // k + 1`` times for ``k`` pairs, and so does each combination of caption kind,
    layout and the object named first (so each relation is as frequent as the others).

    Args:
        n: number of scenes, a positive int.
        seed: seed of the NumPy random generator; equal seeds give equal scenes.
        compositions: ``"seen"`` (no object is a composition in
            :data:`~numclip.data.HELDOUT`; for training), ``"heldout"`` (at least one
            is) or ``"all"``.
        kinds: ``"both"`` (a random half of each kind), ``"relation"`` or ``"binding"``.
        image_size: side ``S`` of the square images, at least 12.

    Returns:
        A :class:`Scenes` with images of shape ``(n, S, S, 3)``.
    """
    n = as_int(n, "n", 1)
    seed = as_int(seed, "seed", 0)
    if not isinstance(compositions, str) or compositions not in _SUBSETS:
        raise ValueError(f"compositions must be one of {sorted(_SUBSETS)}, got {compositions!r}")
    if not isinstance(kinds, str) or kinds not in _KIND_CHOICES:
        raise ValueError(f"kinds must be one of {list(_KIND_CHOICES)}, got {kinds!r}")
    image_size = as_int(image_size, "image_size", MIN_IMAGE_SIZE)
    side = _shown(image_size)
    too_big = ValueError(f"n = {_shown(n)} scenes of {side}x{side} pixels need more memory "
                         "than this machine could allocate; ask for fewer or smaller images")
    if n * image_size**2 * 3 * 4 * 2 > sys.maxsize:  # float32 images and masks; NumPy's
        raise too_big  # own error would name nothing
    try:
        return _generate(n, seed, compositions, kinds, image_size)
    except MemoryError:
        raise too_big from None


def _shown(number: int) -> str:
    """An int for a message: in full, or as a power of ten beyond 30 digits."""
    return str(number) if number < 10**30 else f"~1e{len(str(number)) - 1}"


@functools.lru_cache(maxsize=3)
def _pairs(compositions: str) -> np.ndarray:
    """``(k, 2)`` int64: the allowed ordered pairs of class ids (into CLASSES), objects
    differing in colour and in shape."""
    heldout = {CLASSES.index(pair) for pair in HELDOUT}
    pairs = [(a, b) for a, (ca, sa) in enumerate(CLASSES) for b, (cb, sb) in enumerate(CLASSES)
             if ca != cb and sa != sb]
    if compositions == "seen":
        pairs = [p for p in pairs if not set(p) & heldout]
    elif compositions == "heldout":
        pairs = [p for p in pairs if set(p) & heldout]
    table = np.array(pairs, dtype=np.int64)
    table.flags.writeable = False
    return table


def _generate(n: int, seed: int, compositions: str, kinds: str, image_size: int) -> Scenes:
    """:func:`make_scenes` once its arguments are checked."""
    rng = np.random.default_rng(seed)
    pairs = _pairs(compositions)
    chosen = pairs[_balanced(n, len(pairs), rng)]  # (n, 2) class ids of object 0 and 1
    colors, shapes = np.moveaxis(np.array(CLASSES, dtype=np.int64)[chosen], -1, 0)  # (n, 2) x2
    # kind, layout and first as the bits of one balanced draw: every combination as often
    combo = _balanced(n, 8 if kinds == "both" else 4, rng)  # (n,)
    kind = combo // 4 if kinds == "both" else np.full(n, KINDS.index(kinds), dtype=np.int64)
    layout, first = (combo // 2) % 2, combo % 2  # (n,), (n,)
    masks = _draw_masks(shapes, layout, image_size, rng)  # (n, 2, S, S)
    images = _paint(masks, colors, rng)  # (n, S, S, 3)
    captions, negatives = _describe(colors, shapes, layout, kind, first)
    return Scenes(images, colors, shapes, layout, kind, first, captions, negatives)


def _balanced(n: int, k: int, rng) -> np.ndarray:
    """``(n,)`` int64 draws from ``range(k)``, each ``n // k`` or ``n // k + 1`` times, in
    random order.  Which values get the extra draw is random too: with ``n < k`` the
    draws are a random sample, not the first ``n`` values (the first pairs all hold one
    object, a red circle)."""
    return rng.permutation(k)[rng.permutation(np.arange(n) % k)]


def _describe(colors, shapes, layout, kinds, first) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every scene's caption and hard negative, from its fields (already checked)."""
    captions, negatives = [], []
    rows = zip(colors.tolist(), shapes.tolist(), layout.tolist(), kinds.tolist(),
               first.tolist(), strict=True)
    for (c0, c1), (s0, s1), lay, kind, fst in rows:
        a, b = ((c0, s0), (c1, s1)) if fst == 0 else ((c1, s1), (c0, s0))  # a is named first
        if kind == 0:  # relation: a's place relative to b; the negative swaps them
            relation = RELATIONS[2 * lay + fst]
            captions.append(f"{_object(*a)} {relation} {_object(*b)}")
            negatives.append(f"{_object(*b)} {relation} {_object(*a)}")
        else:  # binding: the negative swaps the colours between the objects
            captions.append(f"{_object(*a)} and {_object(*b)}")
            negatives.append(f"{_object(b[0], a[1])} and {_object(a[0], b[1])}")
    return tuple(captions), tuple(negatives)


# ---------------------------------------------------------------- pictures


def _draw_masks(shapes, layout, image_size: int, rng) -> np.ndarray:
    """Each scene's two objects, each in its own half of the image.

    Args:
        shapes: ``(n, 2)`` int; layout: ``(n,)`` int, 0 side by side, 1 stacked.

    Returns:
        ``(n, 2, S, S)`` float32 coverage in [0, 1] of object 0 and object 1.
    """
    n, cell = len(shapes), image_size // 2
    # One jitter for the pair (as numclip.data shifts a whole picture): the objects then
    # keep a 2*JITTER px gap along the relation and stay aligned across it.
    jitter = rng.integers(2 * JITTER + 1, size=(n, 1, 2))  # (n, 1, 2) offset indices
    pasted = shape_stencils(cell)[shapes, jitter[..., 0], jitter[..., 1]]  # (n, 2, cell, cell)
    across = (image_size - cell) // 2 + rng.integers(-_SHIFT, _SHIFT + 1, size=n)  # (n,)
    along = np.array([0, cell])  # (2,) object 0 in the first half, object 1 in the second
    stacked = layout[:, None] == 1  # (n, 1)
    top = np.where(stacked, along, across[:, None])  # (n, 2) top row of each object's cell
    left = np.where(stacked, across[:, None], along)  # (n, 2)
    rows = top[:, :, None, None] + np.arange(cell)[:, None]  # (n, 2, cell, 1)
    cols = left[:, :, None, None] + np.arange(cell)  # (n, 2, 1, cell)
    masks = np.zeros((n, 2, image_size, image_size), dtype=np.float32)
    masks[np.arange(n)[:, None, None, None], np.arange(2)[:, None, None], rows, cols] = pasted
    return masks


def _paint(masks, colors, rng) -> np.ndarray:
    """Colour each object with its colour, jittered per image as :mod:`numclip.data` does,
    and add pixel noise.

    Args:
        masks: ``(n, 2, S, S)`` float32 coverage; colors: ``(n, 2)`` int.

    Returns:
        ``(n, S, S, 3)`` float32 images in [0, 1].
    """
    n = len(masks)
    rgb = PALETTE[colors]  # (n, 2, 3)
    brightness = rng.uniform(*BRIGHTNESS, size=(n, 1, 1)).astype(np.float32)  # (n, 1, 1)
    tint = rng.uniform(-TINT, TINT, size=(n, 1, 3)).astype(np.float32)  # (n, 1, 3)
    rgb = np.clip(rgb * brightness + tint, 0.0, 1.0)  # (n, 2, 3)
    images = rng.random((n, *masks.shape[2:], 3), dtype=np.float32)  # (n, S, S, 3) in [0, 1)
    images -= 0.5
    images *= 2 * NOISE  # in place, now uniform in [-NOISE, NOISE)
    # the ink: per pixel, coverage of each object times its colour, summed over the two
    # (they never overlap); one batched product, ten times faster than broadcasting
    ink = np.matmul(masks.reshape(n, 2, -1).transpose(0, 2, 1), rgb)  # (n, S*S, 3)
    images += ink.reshape(images.shape)  # (n, S, S, 3)
    return np.clip(images, 0.0, 1.0, out=images)


def _index_array(values, name: str, shape: tuple[int, ...], high: int) -> np.ndarray:
    """``values`` as an int64 array of ``shape`` with every entry in ``[0, high]``."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an array of integers, got dtype {values.dtype}")
    if values.shape != shape:
        what = "one entry per image" if len(shape) == 1 else "one row of 2 per image"
        raise ValueError(f"{name} must have {what}, shape {shape}, got shape {values.shape}")
    bad = np.argwhere((values < 0) | (values > high))
    if bad.size:
        where = tuple(bad[0].tolist())
        raise ValueError(f"{name} must be in [0, {high}], got {values[where]} at "
                         f"position {where if len(where) > 1 else where[0]}")
    return values.astype(np.int64, copy=False)
