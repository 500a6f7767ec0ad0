"""ARO-style probes: does a CLIP prefer the true caption over the same words in another order?

Each probe asks, image by image, whether the true caption scores *strictly* higher
(cosine similarity of the embeddings) than every perturbed caption, as the ARO
benchmark does (Yuksekgonul et al., ICLR 2023, "When and why vision-language models
behave like bags-of-words"); its accuracy is the fraction of images where it does.
A tie, the true caption scoring exactly as high as the best perturbation, is a
failure here, and is counted separately, because a tie says more than a wrong answer:
the model cannot see the difference at all.  ARO's code
(mertyg/vision-language-models-are-bows, ``dataset_zoo/aro_datasets.py``) takes the
first of equal scores: in VG-Relation and VG-Attribution the true caption comes last,
so a tie fails there too; in its COCO and Flickr order tasks the true caption comes
first, so a tie would pass.  A real CLIP never ties exactly, so only a model that truly
is a bag of words tells the two apart: here it scores 0 on order, by ARO's code 1.

The suites (:data:`PROBE_SUITES`), each with its chance accuracy (:data:`CHANCE`):

* **relation** (1/2): a scene's relation caption against its two objects swapped
  around the relation (:func:`numclip.scenes.swap_objects`);
* **attribution** (1/2): a binding caption against the colours swapped between the
  objects (:func:`numclip.scenes.swap_attributes`);
* **order** (1/5): a scene caption of either kind against ARO's four word-order shuffles
  (:data:`numclip.scenes.ORDER_SHUFFLES`);
* **counting** (1/3): an image of :mod:`numclip.data` (one to three copies of one
  object) and the prompt :func:`numclip.data.phrase` with its count, against the same
  prompt with the other two counts.

A bag-of-words text encoder gives every caption with the same words the same
embedding, so on relation, attribution and order it ties on every item and scores
0: it cannot even guess.

Words the model's vocabulary lacks map to ``<unk>`` without a warning: a model trained
on scenes has never seen "photo", "two" or "circles", so the counting prompts lose
those words (and tie where only the count differed); a model trained on
:mod:`numclip.data` lacks "left", "above", "and".  That is part of what a probe
measures, not an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from numclip.backend import array_namespace, as_int, as_matrix, as_number, to_numpy
from numclip.data import MAX_COUNT, make_dataset, phrase
from numclip.model import TinyCLIP
from numclip.scenes import make_scenes, order_shuffles
from numclip.text import Vocabulary, as_texts

__all__ = ["PROBE_SUITES", "CHANCE", "ProbeItems", "ProbeResult", "probe_items", "probe",
           "run_probes", "format_table", "to_json"]

PROBE_SUITES: tuple[str, ...] = ("relation", "attribution", "order", "counting")
CHANCE: dict[str, float] = {"relation": 1 / 2, "attribution": 1 / 2, "order": 1 / 5,
                            "counting": 1 / MAX_COUNT}
_CHUNK = 2048  # rows encoded at a time: memory stays flat for any n
_ORDER_STREAM = 1  # the order shuffles draw from their own stream of the seed


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, not a bool
class ProbeItems:
    """The images of one probe, each with its true caption and its perturbed ones."""

    suite: str  # one of PROBE_SUITES
    pixels: np.ndarray  # (n, P) float32 flattened images, as the image encoder takes them
    captions: tuple[str, ...]  # (n,) the true caption of each image
    perturbed: tuple[tuple[str, ...], ...]  # (n, k) its perturbed captions, k per suite

    def __post_init__(self):
        _check_suite(self.suite)
        if not isinstance(self.pixels, np.ndarray):
            raise TypeError(f"pixels must be a NumPy array, got {type(self.pixels).__name__}")
        pixels = as_matrix(self.pixels, "pixels")
        captions = tuple(as_texts(self.captions, "captions"))
        if len(captions) != len(pixels):
            raise ValueError(f"captions must have one entry per image ({len(pixels)}), "
                             f"got {len(captions)}")
        if isinstance(self.perturbed, str) or not isinstance(self.perturbed, Sequence):
            raise TypeError("perturbed must be a list of tuples of str, one per image, got "
                            f"{type(self.perturbed).__name__}")
        perturbed = tuple(tuple(as_texts(p, f"perturbed[{i}]"))
                          for i, p in enumerate(self.perturbed))
        if len(perturbed) != len(pixels) or len({len(p) for p in perturbed}) != 1:
            raise ValueError(f"perturbed must hold one tuple per image ({len(pixels)}), all of "
                             f"one length, got {len(perturbed)} of lengths "
                             f"{sorted({len(p) for p in perturbed})}")
        object.__setattr__(self, "captions", captions)
        object.__setattr__(self, "perturbed", perturbed)

    def __len__(self) -> int:
        return len(self.captions)


@dataclass(frozen=True)
class ProbeResult:
    """One probe's score: ``accuracy`` of ``items`` images, ``ties`` of which failed by a tie."""

    suite: str  # one of PROBE_SUITES
    accuracy: float  # fraction of images whose true caption beat every perturbed one
    chance: float  # the accuracy of guessing among the k + 1 captions
    items: int  # number of images
    ties: int  # images whose true caption scored exactly as high as the best perturbed one

    def __post_init__(self):
        _check_suite(self.suite)
        items = as_int(self.items, "items", 1)
        ties = as_int(self.ties, "ties", 0, items)
        accuracy = as_number(self.accuracy, "accuracy")
        chance = as_number(self.chance, "chance")
        if not 0 <= accuracy <= 1 or not 0 < chance < 1:
            raise ValueError(f"accuracy must be in [0, 1] and chance in (0, 1), got "
                             f"{accuracy} and {chance}")
        # 1e-6: far above a float32 chance's rounding (1/5 is off by 1.5e-8), far below
        # another suite's chance
        if not math.isclose(chance, CHANCE[self.suite], rel_tol=1e-6):
            raise ValueError(f"chance must be {self.suite}'s, {CHANCE[self.suite]:.4g} "
                             f"(CHANCE[{self.suite!r}]), got {chance}")
        # a mean of items 0s and 1s, rounded to float32 at worst (6e-8 of it): within
        # 1e-6 items of a whole number, where half an image is off by 0.5
        if abs(accuracy * items - round(accuracy * items)) > 1e-6 * items:
            raise ValueError(f"accuracy * items must be a whole number of images, got "
                             f"{accuracy} * {items} = {accuracy * items:.6g}")
        if ties > round((1 - accuracy) * items):
            raise ValueError(f"ties ({ties}) must be among the failures, at most "
                             f"(1 - accuracy) * items = {round((1 - accuracy) * items)}")
        for name, value in (("items", items), ("ties", ties), ("accuracy", accuracy),
                            ("chance", chance)):
            object.__setattr__(self, name, value)  # NumPy scalars become JSON-able numbers

    def to_dict(self) -> dict:
        """``{"accuracy", "chance", "items", "ties"}``, JSON-able."""
        return {"accuracy": self.accuracy, "chance": self.chance, "items": self.items,
                "ties": self.ties}


def _check_suite(suite, name: str = "suite") -> str:
    if not isinstance(suite, str) or suite not in PROBE_SUITES:
        raise ValueError(f"{name} must be one of {PROBE_SUITES}, got {suite!r}")
    return suite


def probe_items(suite: str, *, n: int = 1000, seed: int = 0, compositions: str = "all",
                image_size: int = 16) -> ProbeItems:
    """The images and captions a probe scores, deterministically from ``seed``.

    relation and attribution: :func:`numclip.scenes.make_scenes` with only relation or
    only binding captions, each against its hard negative.  order: scenes of both kinds,
    each caption against its four :func:`numclip.scenes.order_shuffles`.  counting:
    :func:`numclip.data.make_dataset` images (one to three copies of one object), the
    prompt ``phrase(colour, shape, count)`` against the same prompt with the other counts.

    Args:
        suite: one of :data:`PROBE_SUITES`.
        n: number of images, a positive int.
        seed: a non-negative int; the same seed gives the same items.
        compositions: ``"seen"``, ``"heldout"`` or ``"all"``, as for the datasets.
        image_size: side of the square images, as the datasets take it.
    """
    suite = _check_suite(suite)
    n, seed = as_int(n, "n", 1), as_int(seed, "seed", 0)
    if suite == "counting":
        data = make_dataset(n, seed=seed, compositions=compositions, image_size=image_size)
        rows = zip(data.colors.tolist(), data.shapes.tolist(), data.counts.tolist(), strict=True)
        captions, perturbed = [], []
        for color, shape, count in rows:
            captions.append(phrase(color, shape, count))
            perturbed.append(tuple(phrase(color, shape, k) for k in range(1, MAX_COUNT + 1)
                                   if k != count))
        return ProbeItems(suite, data.pixels(), tuple(captions), tuple(perturbed))
    kinds = {"relation": "relation", "attribution": "binding", "order": "both"}[suite]
    scenes = make_scenes(n, seed=seed, compositions=compositions, kinds=kinds,
                         image_size=image_size)
    if suite == "order":
        rng = np.random.default_rng([seed, _ORDER_STREAM])
        perturbed = tuple(order_shuffles(text, rng) for text in scenes.captions)
    else:
        perturbed = tuple((negative,) for negative in scenes.negatives)
    return ProbeItems(suite, scenes.pixels(), scenes.captions, perturbed)


def probe(model, vocab, suite: str, *, n: int = 1000, seed: int = 0,
          compositions: str = "all") -> ProbeResult:
    """Score ``model`` on one probe: how often the true caption beats every perturbed one.

    The score of a caption is the cosine similarity of its embedding with the image's
    (``model.encode_texts`` and ``model.encode_images``).  Each distinct text input is
    encoded once, so captions the text encoder cannot tell apart (the same words for a
    bag of words; the same ids after unknown words became ``<unk>``) score exactly the
    same and tie, whatever order a matrix product adds in.

    Args:
        model: a :class:`~numclip.model.TinyCLIP` (linear or transformer encoders, any
            array library); the images are drawn at its image size.
        vocab: the :class:`~numclip.text.Vocabulary` the model was trained with; words
            it lacks map to ``<unk>`` without a warning.
        suite, n, seed, compositions: as for :func:`probe_items`.

    Returns:
        A :class:`ProbeResult`.
    """
    if not isinstance(model, TinyCLIP):
        raise TypeError(f"model must be a numclip.model.TinyCLIP, got {type(model).__name__}")
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a numclip.text.Vocabulary, got {type(vocab).__name__}")
    suite = _check_suite(suite)
    side = math.isqrt(model.num_pixels // 3)
    if 3 * side * side != model.num_pixels:
        raise ValueError(f"model must take S x S RGB images (3 S^2 pixels), but it takes "
                         f"{model.num_pixels} pixels")
    items = probe_items(suite, n=n, seed=seed, compositions=compositions, image_size=side)
    correct, ties = _score(model, vocab, items)
    return ProbeResult(suite, float(np.mean(correct)), CHANCE[suite], len(items),
                       int(np.sum(ties)))


def _score(model, vocab, items: ProbeItems) -> tuple[np.ndarray, np.ndarray]:
    """``(n,)`` bools: whether each true caption wins, and whether it ties the best other."""
    n, k = len(items), len(items.perturbed[0])
    texts = [text for i in range(n) for text in (items.captions[i], *items.perturbed[i])]
    inputs = to_numpy(model.text_inputs(vocab, texts, warn=False))  # (n (k+1), V) or (., L)
    unique, inverse = np.unique(inputs, axis=0, return_inverse=True)  # (U, .), (n (k+1),)
    ids = inverse.reshape(n, k + 1)  # (n, k+1) row of `unique` each caption encodes as
    like = model.params["logit_scale"]
    xp = array_namespace(like)
    text_embeds = _encode(model.encode_texts, unique, xp, None)  # (U, D); ids stay int64
    image_embeds = _encode(model.encode_images, items.pixels, xp, like.dtype)  # (n, D)
    scores = np.sum(image_embeds[:, None, :] * text_embeds[ids], axis=-1)  # (n, k+1)
    # A pair of equal inputs gets the score of its first occurrence: one number, not two
    # products that a different summation order could round apart.
    first = np.argmax(ids[:, :, None] == ids[:, None, :], axis=2)  # (n, k+1)
    scores = np.take_along_axis(scores, first, axis=1)
    true, best = scores[:, 0], np.max(scores[:, 1:], axis=1)  # (n,), (n,)
    return true > best, true == best


def _encode(encode, rows: np.ndarray, xp, dtype) -> np.ndarray:
    """``encode`` of host ``rows`` in chunks, in the model's library; the result on the host."""
    parts = [to_numpy(encode(xp.asarray(rows[i:i + _CHUNK], dtype=dtype)))
             for i in range(0, len(rows), _CHUNK)]
    return np.concatenate(parts)


def run_probes(model, vocab, suites: Sequence[str] = PROBE_SUITES, **kwargs) -> dict:
    """Run several probes: ``{suite: ProbeResult}`` in the order of ``suites``.

    Args:
        model, vocab: as for :func:`probe`.
        suites: names from :data:`PROBE_SUITES`, each at most once.
        **kwargs: ``n``, ``seed``, ``compositions``, passed to :func:`probe`.
    """
    if isinstance(suites, str) or not isinstance(suites, Sequence):
        raise TypeError(f"suites must be a list of suite names from {PROBE_SUITES}, got "
                        f"{type(suites).__name__} {suites!r}")
    if not suites:
        raise ValueError(f"suites must name at least one of {PROBE_SUITES}")
    suites = [_check_suite(s, f"suites[{i}]") for i, s in enumerate(suites)]
    if len(set(suites)) != len(suites):
        raise ValueError(f"suites must not repeat, got {suites}")
    unknown = sorted(set(kwargs) - {"n", "seed", "compositions"})
    if unknown:
        raise TypeError(f"run_probes takes n, seed and compositions, got {unknown}")
    return {suite: probe(model, vocab, suite, **kwargs) for suite in suites}


def _check_results(results) -> dict:
    if not isinstance(results, Mapping) or not results:
        raise TypeError("results must be a non-empty dict {suite: ProbeResult} as run_probes "
                        f"returns, got {type(results).__name__}")
    for suite, result in results.items():
        if not isinstance(result, ProbeResult):
            raise TypeError(f"results[{suite!r}] must be a ProbeResult, got "
                            f"{type(result).__name__}")
        if suite != result.suite:  # the table and the JSON name a row by its key
            raise ValueError(f"results[{suite!r}] holds the {result.suite!r} probe; file each "
                             "result under its suite, as run_probes does")
    return dict(results)


def format_table(results: Mapping) -> str:
    """The results as a plain-text table, one row per suite (what ``numclip probe`` prints).

    Args:
        results: ``{suite: ProbeResult}``, as :func:`run_probes` returns.
    """
    results = _check_results(results)
    width = max(len("suite"), *(len(s) for s in results))
    lines = [f"{'suite':<{width}}  accuracy  chance  items   ties"]
    for suite, r in results.items():
        lines.append(f"{suite:<{width}}  {r.accuracy:8.3f}  {r.chance:6.3f}  {r.items:5d}  "
                     f"{r.ties:5d}")
    return "\n".join(lines)


def to_json(results: Mapping) -> dict:
    """The results as a JSON-able dict: ``{suite: {"accuracy", "chance", "items", "ties"}}``.

    Args:
        results: ``{suite: ProbeResult}``, as :func:`run_probes` returns.
    """
    return {suite: r.to_dict() for suite, r in _check_results(results).items()}
