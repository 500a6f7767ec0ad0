"""Synthetic captioned images: coloured shapes, counted, for training and testing a tiny CLIP.

Every image shows one to three copies of one shape in one colour on a black
background, and comes with a caption such as ``"a photo of two red circles"``.
The (colour, shape) pairs are the *compositions*; a fixed set of them,
:data:`HELDOUT`, never appears in training, so zero-shot accuracy on them
measures generalisation to pairs the model has never seen, not memory.

Why the pictures look the way they do:

* The image encoder is a single linear map of the pixels, so a shape must be
  recognisable by a linear function.  Objects therefore sit in the four cells
  of a 2×2 grid (one cell per object), and the whole picture is shifted by at
  most one pixel, instead of objects going anywhere.  A linear probe on raw
  pixels recovers colour and shape almost perfectly (``tests/test_data.py``
  checks it).
* Counting is left hard on purpose: the count is in the captions, but a
  linear probe on the pixels reads it right only about half the time (chance
  is a third), so a later notebook can show CLIP's counting limitation.
* Generation is vectorised: every shape is rasterised once per cell and
  jitter, and images are assembled with array indexing, so 10,000 images of
  16×16 take about 0.1 s.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

import numpy as np

from numclip.backend import as_float_array, as_int
from numclip.text import as_texts

__all__ = [
    "COLORS", "SHAPES", "COUNT_WORDS", "TEMPLATES", "CLASSES", "HELDOUT",
    "class_name", "caption", "phrase", "Dataset", "make_dataset", "PALETTE", "shape_stencils",
    "as_images",
]

# RGB in [0, 1].  No two colours point in the same RGB direction (no grey next
# to white), so a linear map can tell them apart at any brightness.
_RGB = {
    "red": (1.0, 0.0, 0.0),
    "orange": (1.0, 0.4, 0.0),
    "yellow": (1.0, 1.0, 0.0),
    "green": (0.0, 0.85, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "blue": (0.1, 0.2, 1.0),
    "purple": (0.6, 0.1, 0.9),
    "white": (1.0, 1.0, 1.0),
}
COLORS: tuple[str, ...] = tuple(_RGB)
PALETTE = np.array(list(_RGB.values()), dtype=np.float32)  # (len(COLORS), 3), COLORS' order
PALETTE.flags.writeable = False  # shared by every module that paints (numclip.scenes too)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "bar")
_PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles",
            "cross": "crosses", "bar": "bars"}
COUNT_WORDS: tuple[str, ...] = ("one", "two", "three")
MAX_COUNT = len(COUNT_WORDS)

# Caption phrasings.  ``{objects}`` becomes e.g. "two red circles" or "an orange
# square"; ``{be}`` agrees with the count ("there is one", "there are three").
TEMPLATES: tuple[str, ...] = (
    "a photo of {objects}",
    "an image of {objects}",
    "a picture of {objects}",
    "{objects} on a black background",
    "there {be} {objects}",
    "a drawing of {objects}",
    "a small image showing {objects}",
    "{objects}",
)

# Class id c is the position of (colour index, shape index) in CLASSES: c = 5 * colour + shape.
CLASSES: tuple[tuple[int, int], ...] = tuple(
    (color, shape) for color in range(len(COLORS)) for shape in range(len(SHAPES))
)
# Held out of training: one composition per colour, along the "diagonal" shape =
# colour mod 5 (red circle, orange square, yellow triangle, green cross, cyan
# bar, blue circle, purple square, white triangle).  Each colour keeps 4 of
# its 5 shapes in training and each shape at least 6 of its 8 colours.
HELDOUT: tuple[tuple[int, int], ...] = tuple(
    (color, color % len(SHAPES)) for color in range(len(COLORS))
)
_COMPOSITIONS = {
    "seen": tuple(c for c, pair in enumerate(CLASSES) if pair not in HELDOUT),
    "heldout": tuple(CLASSES.index(pair) for pair in HELDOUT),
    "all": tuple(range(len(CLASSES))),
}

MIN_IMAGE_SIZE = 12  # 2×2 cells of 6 px: a 4-px shape and one pixel of jitter on each side
JITTER = 1  # each picture shifts up to this many pixels from the centre of the cells
NOISE = 0.08  # per-pixel noise, uniform in [-NOISE, NOISE], so no two images are identical
BRIGHTNESS = (0.7, 1.0)  # per-image brightness factor range
TINT = 0.06  # per-image, per-channel colour shift, uniform in [-TINT, TINT]


def class_name(c: int) -> str:
    """Name composition ``c`` (an index into :data:`CLASSES`), e.g. ``"red circle"``."""
    c = as_int(c, "c", 0, len(CLASSES) - 1)
    color, shape = CLASSES[c]
    return f"{COLORS[color]} {SHAPES[shape]}"


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, not a bool
class Dataset:
    """``n`` captioned images and their attributes; row ``i`` of every field is image ``i``.

    Construction checks every field (shape, dtype, range, and that each label is
    the class of its colour and shape) and raises a ``TypeError`` or ``ValueError``
    naming the field; integer fields given as lists become int64 arrays.
    """

    images: np.ndarray  # (n, H, W, 3) float32 in [0, 1], channels last
    colors: np.ndarray  # (n,) int64 index into COLORS
    shapes: np.ndarray  # (n,) int64 index into SHAPES
    counts: np.ndarray  # (n,) int64 number of objects, 1..3
    labels: np.ndarray  # (n,) int64 class id into CLASSES (colour and shape together)
    captions: tuple[str, ...]  # (n,) one caption per image

    def __post_init__(self):
        n = len(as_images(self.images))
        fields = {"colors": (0, len(COLORS) - 1), "shapes": (0, len(SHAPES) - 1),
                  "counts": (1, MAX_COUNT), "labels": (0, len(CLASSES) - 1)}
        for name, (low, high) in fields.items():
            object.__setattr__(self, name, _index_array(getattr(self, name), name, n, low, high))
        if np.any(self.labels != self.colors * len(SHAPES) + self.shapes):
            i = int(np.argmax(self.labels != self.colors * len(SHAPES) + self.shapes))
            raise ValueError(f"labels[{i}] = {self.labels[i]} is not the class of colour "
                             f"{self.colors[i]} and shape {self.shapes[i]} "
                             f"({self.colors[i] * len(SHAPES) + self.shapes[i]})")
        captions = tuple(as_texts(self.captions, "captions"))
        if len(captions) != n:
            raise ValueError(f"captions must have one entry per image ({n}), got {len(captions)}")
        object.__setattr__(self, "captions", captions)

    def __len__(self) -> int:
        return len(self.images)

    def pixels(self) -> np.ndarray:
        """Return the images flattened to ``(n, H*W*3)`` float32, the image encoder's input."""
        return self.images.reshape(len(self.images), -1)


def as_images(images) -> np.ndarray:
    """Check a batch of pictures as the datasets hold them (this module's and
    :mod:`numclip.scenes`'): a non-empty NumPy ``(n, H, W, 3)`` float array, finite, in
    [0, 1], channels last; return it.

    Raises:
        TypeError: not a NumPy array, or not a real floating dtype.
        ValueError: another shape, NaN or inf, or a value outside [0, 1].
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a NumPy array, got {type(images).__name__}")
    images = as_float_array(images, "images")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (n, H, W, 3), got {images.shape}")
    if images.min() < 0 or images.max() > 1:
        raise ValueError(f"images must lie in [0, 1], got values in "
                         f"[{images.min()}, {images.max()}]")
    return images


def make_dataset(n: int, *, seed: int, compositions: str = "seen",
                 image_size: int = 16) -> Dataset:
    """Generate ``n`` captioned images, deterministically from ``seed``.

    The compositions are balanced: each allowed (colour, shape) pair appears
    ``n // k`` or ``n // k + 1`` times for ``k`` allowed pairs, in random order.

    Args:
        n: number of images, a positive int.
        seed: seed of the NumPy random generator; equal seeds give equal datasets.
        compositions: ``"seen"`` (every pair except :data:`HELDOUT`; for training),
            ``"heldout"`` (only the pairs in :data:`HELDOUT`) or ``"all"``.
        image_size: side ``S`` of the square images, at least 12.

    Returns:
        A :class:`Dataset` with images of shape ``(n, S, S, 3)``.
    """
    n = as_int(n, "n", 1)
    seed = as_int(seed, "seed", 0)
    if not isinstance(compositions, str) or compositions not in _COMPOSITIONS:
        raise ValueError(f"compositions must be one of {sorted(_COMPOSITIONS)}, "
                         f"got {compositions!r}")
    image_size = as_int(image_size, "image_size", MIN_IMAGE_SIZE)
    nbytes = n * image_size**2 * 3 * 4  # the float32 images alone
    side = _shown(image_size)
    too_big = ValueError(f"n = {_shown(n)} images of {side}x{side} pixels need at least "
                         f"{_shown(nbytes / 2**30 if nbytes < 2**1000 else nbytes >> 30)} GiB, "
                         "more than this machine could allocate; ask for fewer or smaller images")
    if nbytes > sys.maxsize:  # NumPy would refuse with a message that names nothing
        raise too_big
    try:
        return _generate(n, seed, compositions, image_size)
    except MemoryError:
        raise too_big from None


def _shown(number) -> str:
    """A size for a message: in full, or as a power of ten where it has more than 30 digits
    (10**400 pixels would fill the line, and ``f"{10**400:.3g}"`` raises OverflowError)."""
    if isinstance(number, float):
        return f"{number:.3g}"
    return str(number) if number < 10**30 else f"~1e{len(str(number)) - 1}"


def _generate(n: int, seed: int, compositions: str, image_size: int) -> Dataset:
    """:func:`make_dataset` once its arguments are checked."""
    rng = np.random.default_rng(seed)
    allowed = np.array(_COMPOSITIONS[compositions], dtype=np.int64)
    labels = allowed[rng.permutation(np.arange(n) % len(allowed))]  # (n,) balanced
    colors, shapes = np.array(CLASSES, dtype=np.int64)[labels].T  # (n,), (n,)
    counts = rng.integers(1, MAX_COUNT + 1, size=n)  # (n,) in 1..3
    masks = _draw_masks(shapes, counts, image_size, rng)  # (n, S, S)
    images = _paint(masks, colors, rng)  # (n, S, S, 3)
    captions = _draw_captions(colors, shapes, counts, rng)
    return Dataset(images, colors, shapes, counts, labels, captions)


def caption(color: int, shape: int, count: int, rng: np.random.Generator) -> str:
    """Describe one image in a random phrasing, e.g. ``"there are two red circles"``.

    Args:
        color: index into :data:`COLORS`.
        shape: index into :data:`SHAPES`.
        count: number of objects, 1 to 3.
        rng: a ``numpy.random.Generator`` that picks the phrasing.
    """
    color = as_int(color, "color", 0, len(COLORS) - 1)
    shape = as_int(shape, "shape", 0, len(SHAPES) - 1)
    count = as_int(count, "count", 1, MAX_COUNT)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    template = int(rng.integers(len(TEMPLATES)))
    return _phrase(color, shape, count, template, use_article=bool(rng.random() < 0.5))


def phrase(color: int, shape: int, count: int, template: int = 0) -> str:
    """One fixed phrasing, e.g. ``phrase(0, 0, 2) == "a photo of two red circles"``.

    Unlike :func:`caption` nothing is random (a single object is "one ..."), so prompts
    that differ only in their count can be compared, as the counting probe does.

    Args:
        color, shape, count: as for :func:`caption`.
        template: index into :data:`TEMPLATES`.
    """
    color = as_int(color, "color", 0, len(COLORS) - 1)
    shape = as_int(shape, "shape", 0, len(SHAPES) - 1)
    count = as_int(count, "count", 1, MAX_COUNT)
    template = as_int(template, "template", 0, len(TEMPLATES) - 1)
    return _phrase(color, shape, count, template, use_article=False)


# ---------------------------------------------------------------- captions


def _phrase(color: int, shape: int, count: int, template: int, use_article: bool) -> str:
    """Fill ``TEMPLATES[template]``; a single object reads "a"/"an" or "one" by ``use_article``."""
    if count == 1:
        article = "an" if COLORS[color][0] in "aeiou" else "a"
        number, noun, be = (article if use_article else "one"), SHAPES[shape], "is"
    else:
        number, noun, be = COUNT_WORDS[count - 1], _PLURALS[SHAPES[shape]], "are"
    return TEMPLATES[template].format(objects=f"{number} {COLORS[color]} {noun}", be=be)


def _draw_captions(colors, shapes, counts, rng) -> tuple[str, ...]:
    """One random caption per image; the random choices are drawn in two vectorised calls.

    Args:
        colors, shapes, counts: ``(n,)`` int arrays.
    """
    n = len(colors)
    templates = rng.integers(len(TEMPLATES), size=n)  # (n,)
    use_article = rng.random(n) < 0.5  # (n,) for single objects: "a red circle" vs "one ..."
    rows = zip(colors.tolist(), shapes.tolist(), counts.tolist(), templates.tolist(),
               use_article.tolist(), strict=True)
    return tuple(_phrase(*row) for row in rows)


# ---------------------------------------------------------------- pictures


def _shape_masks(size: int) -> np.ndarray:
    """Rasterise every shape into a ``(len(SHAPES), size, size)`` float32 coverage mask.

    Each pixel is sampled on a 4×4 sub-grid, so edges are anti-aliased
    (values between 0 and 1) and the shapes keep their look at any size.
    At 16 px a shape is only 6 px wide and moves by ±1 px, so the shapes are
    chosen to differ in *where* they have ink, not in fine detail: a filled
    disc, a filled square and a diamond, say, blur into one blob for a linear
    map, and a "+" into a triangle's top.
    """
    sub = 4
    t = (np.arange(size * sub) + 0.5) / (size * sub) * 2 - 1  # sample centres in [-1, 1]
    v, u = np.meshgrid(t, t, indexing="ij")  # v grows downwards, like image rows
    r2, au, av = u**2 + v**2, np.abs(u), np.abs(v)
    inside = np.stack([
        (r2 <= 1) & (r2 >= 0.3),  # circle: an outline (a ring), hollow in the middle
        np.maximum(au, av) <= 1,  # square: filled, the whole stencil
        (v <= 0.8) & (au <= (v + 1) * 0.5),  # triangle: filled, pointing up
        np.abs(au - av) <= 0.3,  # cross: the two diagonals, an "x"
        av <= 0.4,  # bar: a horizontal band
    ])  # (len(SHAPES), size*sub, size*sub) booleans
    coverage = inside.reshape(len(SHAPES), size, sub, size, sub).mean(axis=(2, 4))
    return coverage.astype(np.float32)


def shape_stencils(cell: int) -> np.ndarray:
    """Every shape at every jitter offset inside one ``cell`` x ``cell`` square, as this
    module (and :mod:`numclip.scenes`) draws them.

    Args:
        cell: the square's side in pixels, at least ``2 * JITTER + 1``.

    Returns:
        ``(len(SHAPES), J, J, cell, cell)`` float32 with ``J = 2 * JITTER + 1``:
            shape, vertical offset, horizontal offset (0 is ``-JITTER`` px from
            the centre), cell.  Read-only, because it is cached and shared.
    """
    return _stencils(as_int(cell, "cell", 2 * JITTER + 1))


@functools.lru_cache(maxsize=8)
def _stencils(cell: int) -> np.ndarray:
    size = cell - 2 * JITTER  # room for the jitter on each side
    jit = 2 * JITTER + 1
    table = np.zeros((len(SHAPES), jit, jit, cell, cell), dtype=np.float32)
    masks = _shape_masks(size)  # (len(SHAPES), size, size)
    for dy in range(jit):
        for dx in range(jit):
            table[:, dy, dx, dy:dy + size, dx:dx + size] = masks
    table.flags.writeable = False
    return table


def _draw_masks(shapes, counts, image_size: int, rng) -> np.ndarray:
    """Place ``counts[i]`` copies of shape ``shapes[i]`` in distinct cells of image ``i``.

    The image is a 2×2 grid of square cells (an odd pixel is left black);
    each cell holds at most one object, so copies never overlap or touch.

    Args:
        shapes, counts: ``(n,)`` int arrays.

    Returns:
        ``(n, S, S)`` float32 coverage in [0, 1].
    """
    n, cell = len(shapes), image_size // 2
    cell_rank = np.argsort(rng.random((n, 4)), axis=1)  # (n, 4) random order of the cells
    occupied = cell_rank < counts[:, None]  # (n, 4) exactly counts[i] cells are True
    # One shift for the whole image, not one per object: objects in neighbouring
    # cells then always keep a 2*JITTER px gap and never merge into one blob
    # (two squares side by side would otherwise read as one rectangle).
    jitter = rng.integers(2 * JITTER + 1, size=(n, 1, 2))  # (n, 1, 2) offset indices
    pasted = _stencils(cell)[shapes[:, None], jitter[..., 0], jitter[..., 1]]  # (n, 1, c, c)
    pasted = pasted * occupied[:, :, None, None]  # (n, 4, c, c) empty cells are zero
    grid = pasted.reshape(n, 2, 2, cell, cell).transpose(0, 1, 3, 2, 4)  # (n, row, y, col, x)
    masks = np.zeros((n, image_size, image_size), dtype=np.float32)
    masks[:, :2 * cell, :2 * cell] = grid.reshape(n, 2 * cell, 2 * cell)
    return masks


def _paint(masks, colors, rng) -> np.ndarray:
    """Colour the masks with a jittered colour per image and add pixel noise.

    Args:
        masks: ``(n, S, S)`` float32 coverage in [0, 1].
        colors: ``(n,)`` int indices into :data:`COLORS`.

    Returns:
        ``(n, S, S, 3)`` float32 images in [0, 1].
    """
    n = len(masks)
    rgb = PALETTE[colors]  # (n, 3)
    brightness = rng.uniform(*BRIGHTNESS, size=(n, 1)).astype(np.float32)  # (n, 1)
    tint = rng.uniform(-TINT, TINT, size=(n, 3)).astype(np.float32)  # (n, 3)
    rgb = np.clip(rgb * brightness + tint, 0.0, 1.0)  # (n, 3) still the same hue
    # Uniform noise: as good as Gaussian here and three times faster to draw.
    images = rng.random((*masks.shape, 3), dtype=np.float32)  # (n, S, S, 3) in [0, 1)
    images -= 0.5
    images *= 2 * NOISE  # in place, now uniform in [-NOISE, NOISE)
    images += masks[..., None] * rgb[:, None, None, :]  # (n, S, S, 3)
    return np.clip(images, 0.0, 1.0, out=images)


def _index_array(values, name: str, n: int, low: int, high: int) -> np.ndarray:
    """``values`` as an ``(n,)`` int64 array with every entry in ``[low, high]``."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an array of integers, got dtype {values.dtype}")
    if values.shape != (n,):
        raise ValueError(f"{name} must have one entry per image ({n}), got shape {values.shape}")
    bad = np.flatnonzero((values < low) | (values > high))
    if bad.size:
        raise ValueError(f"{name} must be in [{low}, {high}], got {values[bad[0]]} at "
                         f"position {bad[0]}")
    return values.astype(np.int64, copy=False)
