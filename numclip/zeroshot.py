"""Zero-shot classification, retrieval metrics and a linear-probe baseline.

Zero-shot: write each class name into prompt templates ("a photo of a red
circle"), encode the prompts, and classify an image by the class whose text
embedding is most similar to the image's.  Prompt ensembling averages the
normalised embeddings of several templates per class and renormalises
(CLIP paper, section 3.1.4).

Every function checks its arguments first and raises a ``TypeError`` or
``ValueError`` that names the argument and says what was expected.
"""

from __future__ import annotations

import math
import string
import sys

import numpy as np
from scipy.optimize import minimize

from numclip.backend import (
    array_namespace,
    array_namespace_of,
    as_embedding_pair,
    as_int,
    as_matrix,
    as_number,
    to_numpy,
)
from numclip.losses import cross_entropy
from numclip.normalize import l2_normalize
from numclip.text import Vocabulary, as_texts

__all__ = ["PROMPT_TEMPLATES", "prompts", "check_template", "class_embeddings",
           "zero_shot_scores", "top_k_accuracy", "recall_at_k", "linear_probe", "chance"]

PROMPT_TEMPLATES = (
    "a photo of a {}.",
    "an image of a {}.",
    "a {} on a black background.",
    "there is one {}.",
)

_SLOT = "exactly one '{}' where the class name goes"


def check_template(template) -> str:
    """Return ``template`` after checking it is a prompt template: a str with one bare ``{}``.

    The one replacement field must be exactly ``{}``: no name or index
    (``{x}``, ``{0}``), no conversion (``{!r}``) and no format spec (``{:>8}``),
    because the template is filled with ``template.format(class_name)`` and
    anything else would fail there or change the class name.  Literal braces
    are written doubled, as ``str.format`` reads them: ``"a {{sketch}} of a {}"``.

    Raises:
        TypeError: ``template`` is not a str.
        ValueError: the message quotes the template and says what is wrong.
    """
    if not isinstance(template, str):
        raise TypeError(f"a template must be a str with {_SLOT}, got {type(template).__name__}")
    try:
        fields = [f for _, *f in string.Formatter().parse(template) if f[0] is not None]
    except ValueError as err:  # an unmatched '{' or '}'
        raise ValueError(f"template {template!r} is not a valid format string ({err}); it needs "
                         f"{_SLOT}, and '{{{{' or '}}}}' for a literal brace") from None
    if len(fields) != 1:
        raise ValueError(f"template {template!r} has {len(fields)} replacement fields; "
                         f"each template needs {_SLOT}")
    name, spec, conversion = fields[0]
    if name or spec or conversion:
        raise ValueError(f"template {template!r} has the field "
                         f"{_field_text(name, spec, conversion)!r}; each template needs "
                         f"{_SLOT}, with no name, index, conversion or format spec")
    return template


def _field_text(name, spec, conversion) -> str:
    """The replacement field as written, e.g. ``{x!r:>8}``."""
    conversion = f"!{conversion}" if conversion else ""
    return "{" + name + conversion + (f":{spec}" if spec else "") + "}"


def prompts(class_names, templates=PROMPT_TEMPLATES) -> list[str]:
    """Every template filled with every class name, class-major: ``(C * K,)`` strings.

    Args:
        class_names: ``(C,)`` sequence of str (a single str is refused, not split into letters).
        templates: ``(K,)`` sequence of str, each passing :func:`check_template`.
    """
    class_names = as_texts(class_names, "class_names")
    templates = _as_templates(templates)
    return [t.format(name) for name in class_names for t in templates]


def _as_templates(templates) -> list[str]:
    if isinstance(templates, str | bytes):  # iterating either would give letters or ints
        raise TypeError(f"templates must be a list of str, got a single {type(templates).__name__}"
                        f" {templates!r}; wrap it: [template]")
    if isinstance(templates, set | frozenset | dict):  # the order of prompts() would be luck
        raise TypeError("templates must be an ordered sequence of str (a list, a tuple), got a "
                        f"{type(templates).__name__}")
    try:
        templates = list(templates)
    except TypeError:
        raise TypeError("templates must be a list of str, "
                        f"got {type(templates).__name__}") from None
    if not templates:
        raise ValueError("templates must hold at least one template")
    bad = next((i for i, t in enumerate(templates) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"templates[{bad}] must be a str with {_SLOT}, "
                        f"got {type(templates[bad]).__name__}")
    return [check_template(t) for t in templates]


def class_embeddings(model, vocab, class_names, templates=PROMPT_TEMPLATES, *,
                     warn: bool = True):
    """One unit-length text embedding per class, averaged over the templates.

    ``warn=False`` silences the warning about words the vocabulary lacks, for
    prompts written to contain them (they count as ``<unk>`` either way).

    Args:
        model: a model with ``text_inputs`` and ``encode_texts`` (a TinyCLIP, linear or
            transformer).
        vocab: the :class:`~numclip.text.Vocabulary` the model was trained with.
        class_names, templates: as for :func:`prompts`.

    Returns:
        ``(C, D)`` array in the model's array library and dtype.
    """
    if not all(callable(getattr(model, m, None)) for m in ("text_inputs", "encode_texts")):
        raise TypeError("model must be a TinyCLIP (text_inputs and encode_texts), "
                        f"got {type(model).__name__}")
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a numclip.text.Vocabulary, got {type(vocab).__name__}")
    if len(vocab) != model.vocab_size:
        raise ValueError(f"vocab has {len(vocab)} words but the model knows "
                         f"{model.vocab_size}; use the vocabulary the model was trained with")
    class_names, templates = as_texts(class_names, "class_names"), _as_templates(templates)
    texts = prompts(class_names, templates)  # (C * K,)
    inputs = model.text_inputs(vocab, texts, warn=warn)  # (C*K, V) features or (C*K, L) ids
    embeds = model.encode_texts(inputs)  # (C * K, D), each row unit length
    xp = array_namespace(embeds)
    embeds = xp.reshape(embeds, (len(class_names), len(templates), -1))  # (C, K, D)
    return l2_normalize(xp.mean(embeds, axis=1))[0]  # (C, D) the ensemble, renormalised


def zero_shot_scores(model, pixels, class_embeds):
    """Cosine similarity of every image with every class: ``(n, C)``.

    Args:
        model: a model with ``encode_images`` (a TinyCLIP).
        pixels: ``(n, P)`` images, as :meth:`TinyCLIP.encode_images` takes them.
        class_embeds: ``(C, D)`` from :func:`class_embeddings`, in the model's dtype.
    """
    if not hasattr(model, "encode_images"):
        raise TypeError(f"model must have encode_images (a TinyCLIP), got {type(model).__name__}")
    listed = isinstance(class_embeds, list | tuple)  # numbers typed in take the model's dtype
    class_embeds = as_matrix(class_embeds, "class_embeds")
    image_embeds = model.encode_images(pixels)  # (n, D)
    if listed:
        xp, dtype = array_namespace(image_embeds), image_embeds.dtype
        with np.errstate(over="ignore"):  # beyond the model's dtype: refused just below
            class_embeds = xp.asarray(class_embeds, dtype=dtype)
        class_embeds = as_matrix(class_embeds, f"class_embeds (in the model's {dtype})")
    if class_embeds.shape[1] != image_embeds.shape[1]:
        raise ValueError(f"class_embeds must have the model's width D = {image_embeds.shape[1]}, "
                         f"got shape {tuple(class_embeds.shape)}")
    try:
        array_namespace_of({"class_embeds": class_embeds, "the model": image_embeds})
    except TypeError as err:
        raise TypeError(f"class_embeds must be in the model's array library: {err}") from None
    if class_embeds.dtype != image_embeds.dtype:
        raise TypeError(f"class_embeds has dtype {class_embeds.dtype} but the model is "
                        f"{image_embeds.dtype}; make them with class_embeddings(model, ...)")
    return image_embeds @ class_embeds.T  # (n, C)


def top_k_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of rows whose true label is among the ``k`` highest scores.

    A tie counts against the truth, so a model that scores every class the
    same gets 0, not 100%.

    Args:
        scores: ``(n, C)`` finite floats, any backend.
        labels: ``(n,)`` integers in ``[0, C)``.
        k: an int in ``[1, C]``.
    """
    scores = to_numpy(as_matrix(scores, "scores"))
    n, c = scores.shape
    labels = _as_labels(labels, "labels", n, c, rows_of="scores")
    k = as_int(k, "k", 1, c)
    true_score = scores[np.arange(n), labels][:, None]  # (n, 1)
    rank = np.sum(scores >= true_score, axis=1) - 1  # how many other classes score as high
    return float(np.mean(rank < k))


def recall_at_k(image_embeds, text_embeds, k: int = 1, labels=None) -> dict:
    """Retrieval recall@k for aligned pairs (image ``i`` belongs with text ``i``).

    A query counts as found when one of its ``k`` nearest items is its partner,
    or, given ``labels`` ``(n,)``, any item with the partner's label: with many
    identical captions ("two red circles"), which of them comes first is luck.

    Args:
        image_embeds, text_embeds: ``(n, D)`` each, one dtype, row ``i`` a pair.
        k: an int in ``[1, n]``.
        labels: ``None`` or ``(n,)`` integers; equal labels count as the same item.

    Returns:
        ``{"image_to_text": r, "text_to_image": r}``, fractions in [0, 1].
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds)
    sim = to_numpy(image_embeds @ text_embeds.T)  # (n, n)
    n = sim.shape[0]
    if labels is None:
        labels = np.arange(n)  # every pair its own item
    labels = _as_labels(labels, "labels", n, rows_of="image_embeds")
    k = as_int(k, "k", 1, n)
    same = labels[:, None] == labels[None, :]  # (n, n) which items count as a hit
    return {"image_to_text": _hit_rate(sim, same, k), "text_to_image": _hit_rate(sim.T, same, k)}


def _hit_rate(sim, same, k) -> float:
    """Fraction of rows of ``sim`` whose ``k`` best columns include one where ``same`` holds."""
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # (n, k)
    return float(np.mean(np.any(np.take_along_axis(same, top, axis=1), axis=1)))


def linear_probe(train_x, train_y, test_x, test_y, *, num_classes: int,
                 l2: float = 1e-3, max_iter: int = 500) -> float:
    r"""Test accuracy of multinomial logistic regression on frozen features.

    Minimises :math:`\operatorname{CE}(XW + b, y) + \tfrac{\lambda}{2}\lVert W\rVert^2`
    with L-BFGS, using numclip's own cross-entropy gradient.  This is the
    baseline CLIP's zero-shot classifier is compared against: a classifier
    that *was* trained on labels.

    Args:
        train_x: ``(n, D)`` features; train_y: ``(n,)`` integers in ``[0, num_classes)``.
        test_x: ``(m, D)`` features; test_y: ``(m,)`` integers in ``[0, num_classes)``.
        num_classes: an int, at least 1.
        l2: :math:`\lambda \ge 0`, finite.
        max_iter: most L-BFGS iterations, an int, at least 1.
    """
    num_classes = as_int(num_classes, "num_classes", 1)
    l2 = as_number(l2, "l2")  # 10**400 becomes inf, refused below
    if not (math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be non-negative and finite, got {l2}")
    max_iter = as_int(max_iter, "max_iter", 1)
    x = np.asarray(to_numpy(as_matrix(train_x, "train_x")), np.float64)  # (n, D)
    xt = np.asarray(to_numpy(as_matrix(test_x, "test_x")), np.float64)  # (m, D)
    if xt.shape[1] != x.shape[1]:
        raise ValueError(f"test_x must have the width of train_x ({x.shape[1]}), "
                         f"got shape {xt.shape}")
    y = _as_labels(train_y, "train_y", x.shape[0], num_classes, rows_of="train_x")
    yt = _as_labels(test_y, "test_y", xt.shape[0], num_classes, rows_of="test_x")
    d = x.shape[1]
    too_many = ValueError(f"num_classes = {num_classes} needs {(d + 1) * num_classes} weights, "
                          "more than this machine could allocate")
    if (d + 1) * num_classes * 8 > sys.maxsize:  # NumPy would refuse with a message naming nothing
        raise too_many

    def objective(theta):
        w, b = theta[:d * num_classes].reshape(d, num_classes), theta[d * num_classes:]
        loss, dz = cross_entropy(x @ w + b, y)
        grad_w = x.T @ dz + l2 * w
        return float(loss) + 0.5 * l2 * np.sum(w * w), np.concatenate([grad_w.ravel(),
                                                                      dz.sum(axis=0)])

    try:
        theta0 = np.zeros(d * num_classes + num_classes)
        theta = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                         options={"maxiter": max_iter}).x
    except MemoryError:
        raise too_many from None
    w, b = theta[:d * num_classes].reshape(d, num_classes), theta[d * num_classes:]
    return top_k_accuracy(xt @ w + b, yt, 1)


def chance(num_classes: int) -> float:
    """Top-1 accuracy of guessing uniformly among ``num_classes`` classes (an int >= 1)."""
    return 1 / as_int(num_classes, "num_classes", 1)  # int / int: 1 / 10**400 is 0.0, no error


# ----------------------------------------------------------------------------- validators

def _as_labels(labels, name: str, n: int, num_classes: int | None = None, *,
               rows_of: str) -> np.ndarray:
    """``labels`` as a ``(n,)`` NumPy integer array, each in ``[0, num_classes)`` if given."""
    if isinstance(labels, list | tuple):
        labels = np.asarray(labels)
    try:
        labels = to_numpy(labels)
    except TypeError:
        raise TypeError(f"{name} must be an array of integers, "
                        f"got {type(labels).__name__}") from None
    if labels.dtype.kind not in "iu":  # bool, float, str and object labels are refused
        raise TypeError(f"{name} must be an array of integers, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one per row of {rows_of}, "
                         f"got {labels.shape}")
    if num_classes is not None:
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            raise ValueError(f"{name} must be class indices in [0, {num_classes}), got "
                             f"{labels[bad[0]]} at position {bad[0]}")
    return labels
