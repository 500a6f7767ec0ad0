"""Zero-shot classification, retrieval metrics and a linear-probe baseline.

Zero-shot: write each class name into prompt templates ("a photo of a red
circle"), encode the prompts, and classify an image by the class whose text
embedding is most similar to the image's.  Prompt ensembling averages the
normalised embeddings of several templates per class and renormalises
(CLIP paper, section 3.1.4).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from numclip.backend import array_namespace, to_numpy
from numclip.losses import cross_entropy
from numclip.normalize import l2_normalize

__all__ = ["PROMPT_TEMPLATES", "prompts", "class_embeddings", "zero_shot_scores",
           "top_k_accuracy", "recall_at_k", "linear_probe", "chance"]

PROMPT_TEMPLATES = (
    "a photo of a {}.",
    "an image of a {}.",
    "a {} on a black background.",
    "there is one {}.",
)


def prompts(class_names, templates=PROMPT_TEMPLATES) -> list[str]:
    """Every template filled with every class name, class-major: ``(C * K,)`` strings."""
    if not templates:
        raise ValueError("templates must hold at least one template")
    for t in templates:
        if t.count("{}") != 1:
            raise ValueError("each template needs exactly one '{}' for the class name, "
                             f"got {t!r}")
    return [t.format(name) for name in class_names for t in templates]


def class_embeddings(model, vocab, class_names, templates=PROMPT_TEMPLATES, *,
                     warn: bool = True):
    """One unit-length text embedding per class, averaged over the templates.

    ``warn=False`` silences the warning about words the vocabulary lacks, for
    prompts written to contain them (they count as ``<unk>`` either way).

    Returns:
        ``(C, D)`` array in the model's array library.
    """
    xp = array_namespace(model.params["text_proj"])
    features = xp.asarray(vocab.features(prompts(class_names, templates), warn=warn),
                          dtype=model.params["text_proj"].dtype)
    embeds = model.encode_texts(features)  # (C * K, D), each row unit length
    embeds = xp.reshape(embeds, (len(class_names), len(templates), -1))
    return l2_normalize(xp.mean(embeds, axis=1))[0]  # (C, D) the ensemble, renormalised


def zero_shot_scores(model, pixels, class_embeds):
    """Cosine similarity of every image with every class: ``(n, C)``."""
    return model.encode_images(pixels) @ class_embeds.T


def top_k_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of rows whose true label is among the ``k`` highest scores.

    Args:
        scores: ``(n, C)`` any backend; labels: ``(n,)`` ints in ``[0, C)``.
    """
    scores, labels = to_numpy(scores), np.asarray(to_numpy(labels))
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"scores must be (n, C) and labels (n,), got {scores.shape} "
                         f"and {labels.shape}")
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be in [1, {scores.shape[1]}], got {k}")
    # rank = how many other classes score at least as high: a tie counts against the truth,
    # so a model that scores every class the same gets 0, not 100%
    true_score = scores[np.arange(len(labels)), labels][:, None]
    rank = np.sum(scores >= true_score, axis=1) - 1
    return float(np.mean(rank < k))


def recall_at_k(image_embeds, text_embeds, k: int = 1, labels=None) -> dict:
    """Retrieval recall@k for aligned pairs (image ``i`` belongs with text ``i``).

    A query counts as found when one of its ``k`` nearest items is its partner,
    or, given ``labels`` ``(n,)``, any item with the partner's label: with many
    identical captions ("two red circles"), which of them comes first is luck.

    Returns:
        ``{"image_to_text": r, "text_to_image": r}``, fractions in [0, 1].
    """
    sim = to_numpy(image_embeds @ text_embeds.T)  # (n, n)
    n = sim.shape[0]
    labels = np.arange(n) if labels is None else np.asarray(to_numpy(labels))
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
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
    """
    x, xt = np.asarray(to_numpy(train_x), np.float64), np.asarray(to_numpy(test_x), np.float64)
    y, yt = np.asarray(to_numpy(train_y)), np.asarray(to_numpy(test_y))
    d = x.shape[1]

    def objective(theta):
        w, b = theta[:d * num_classes].reshape(d, num_classes), theta[d * num_classes:]
        loss, dz = cross_entropy(x @ w + b, y)
        grad_w = x.T @ dz + l2 * w
        return float(loss) + 0.5 * l2 * np.sum(w * w), np.concatenate([grad_w.ravel(),
                                                                      dz.sum(axis=0)])

    theta0 = np.zeros(d * num_classes + num_classes)
    theta = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                     options={"maxiter": max_iter}).x
    w, b = theta[:d * num_classes].reshape(d, num_classes), theta[d * num_classes:]
    return top_k_accuracy(xt @ w + b, yt, 1)


def chance(num_classes: int) -> float:
    """Top-1 accuracy of guessing uniformly among ``num_classes`` classes."""
    return 1.0 / num_classes
