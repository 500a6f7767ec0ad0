"""Cross-entropy, CLIP's symmetric contrastive (InfoNCE) loss, and NegCLIP's.

Each loss returns its value and its gradients together, so a training step
is ``loss, grads = clip_loss(...)`` followed by an optimizer update.
Derivations: ``docs/derivations.md#cross-entropy``,
``docs/derivations.md#the-symmetric-clip-loss`` and
``docs/derivations.md#negclip-hard-negatives``.
"""

import math

import array_api_compat
import numpy as np

from numclip.backend import (
    array_namespace,
    array_namespace_of,
    as_bool,
    as_embedding_pair,
    as_log_scale,
    as_matrix,
    as_tile_size,
    scalar_like,
)
from numclip.fused import clip_loss_logits_grads
from numclip.normalize import l2_normalize, l2_normalize_backward
from numclip.similarity import logit_matrix, logit_matrix_backward
from numclip.softmax import log_softmax

__all__ = ["cross_entropy", "clip_loss", "clip_loss_reference", "negclip_loss"]


def cross_entropy(logits, targets):
    r"""Mean cross-entropy of rows of logits against integer class targets.

    .. math:: L = -\frac{1}{N}\sum_{i=1}^{N} \log p_{i, t_i},
              \qquad p_i = \operatorname{softmax}(z_i),
              \qquad \frac{\partial L}{\partial z} = \frac{1}{N}\left(P - Y\right)

    where ``Y`` is the one-hot matrix of the targets.

    Args:
        logits: ``(N, C)`` float array ``z``, one row per example.
        targets: ``(N,)`` integers in ``[0, C)``.

    Returns:
        loss: 0-d array (a NumPy scalar under NumPy), dtype of ``logits``; a mean over N.
        dlogits: ``(N, C)`` gradient of ``loss`` with respect to ``logits``.

    Raises:
        TypeError: ``logits`` as :func:`numclip.backend.as_matrix` refuses it;
            ``targets`` not integers (floats, bools, strings, None).
        ValueError: ``targets`` of another shape than ``(N,)`` or outside ``[0, C)``;
            logits so far apart that a target's log-probability, or the loss, leaves the
            dtype's range.
    """
    logits = as_matrix(logits, "logits")
    xp = array_namespace(logits)
    n, c = logits.shape
    targets = _as_targets(targets, n, c, xp)
    logp = log_softmax(logits, axis=1)  # (N, C)
    is_target = xp.reshape(targets, (n, 1)) == xp.arange(c)  # (N, C) one-hot, boolean
    with np.errstate(over="ignore"):  # a sum beyond the dtype's range is refused below
        # where(), not onehot * logp: 0 * (-inf) would be NaN for astronomically bad logits
        loss = xp.sum(xp.where(is_target, -logp, xp.zeros_like(logp))) / n  # ()
    if not bool(xp.isfinite(loss)):
        raise ValueError(f"the loss overflows {logits.dtype}: the targets' log-probabilities "
                         "(or their sum) lie beyond its range; rescale logits or compute in "
                         "float64")
    dlogits = (xp.exp(logp) - xp.astype(is_target, logits.dtype)) / n  # (N, C)
    return loss, dlogits


def clip_loss(image_embeds, text_embeds, logit_scale, *, normalize: bool = True,
              block_size: int | None = None):
    r"""CLIP's symmetric contrastive loss and its gradients (CLIP paper, Figure 3).

    .. math:: S = e^{s}\,\hat I \hat T^\top, \qquad
              L = \tfrac12\left(\operatorname{CE}(S, [0..N)) +
                                \operatorname{CE}(S^\top, [0..N))\right)

    Row ``i`` of ``S`` asks "which text belongs to image i?", row ``j`` of
    ``S.T`` asks "which image belongs to text j?"; the right answer is the
    diagonal.  This is open_clip's ``ClipLoss`` except that ``logit_scale`` is
    passed as the *log* of the scale, ``s = log(1/tau)``, the parameter CLIP learns.

    Args:
        image_embeds: ``(N, D)`` image embeddings.
        text_embeds: ``(N, D)`` text embeddings; row ``i`` is the caption of image ``i``.
        logit_scale: ``s = log(1/tau)``, a Python float or 0-d array
            (``tau = 0.07`` gives ``s ≈ 2.659``).
        normalize: L2-normalize the rows first (:math:`\hat I`, :math:`\hat T`) and
            back-propagate through it; ``False`` uses the embeddings as given.
        block_size: ``None`` holds the ``(N, N)`` logits (fastest); an int B
            computes them B rows at a time, twice (all panels but the last),
            and never holds more than ``(B, N)``: the way to batches of 32k
            and beyond.

    Returns:
        loss: 0-d array, dtype of the embeddings; the mean over both directions.
        grads: dict with ``"image_embeds"``, ``"text_embeds"``, ``"logit_scale"``,
            each with the shape, dtype and type of the corresponding input.

    Raises:
        TypeError: embeddings or ``logit_scale`` of the wrong kind (see
            :mod:`numclip.backend`); ``normalize`` not a bool; ``block_size`` not an int.
        ValueError: shapes that do not pair, NaN or inf, ``block_size < 1``, or
            logits beyond the dtype's range (only possible with ``normalize=False``
            or an enormous ``logit_scale``).

    The work happens in :mod:`numclip.fused` in a few fused passes;
    :func:`clip_loss_reference` computes the same from the core functions,
    step by step as the derivation goes.
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds)
    normalize = as_bool(normalize, "normalize")
    block_size = as_tile_size(block_size, "block_size")
    logit_scale = as_log_scale(logit_scale)
    xp = array_namespace_of({"image_embeds": image_embeds, "logit_scale": logit_scale})
    if normalize:
        image_embeds, image_cache = l2_normalize(image_embeds)
        text_embeds, text_cache = l2_normalize(text_embeds)
    loss, dimage, dtext, dscale = clip_loss_logits_grads(
        image_embeds, text_embeds, math.exp(float(logit_scale)), block_size)
    if normalize:
        dimage = l2_normalize_backward(dimage, image_cache)
        dtext = l2_normalize_backward(dtext, text_cache)
    return xp.asarray(loss, dtype=image_embeds.dtype), {
        "image_embeds": dimage, "text_embeds": dtext,
        "logit_scale": scalar_like(dscale, logit_scale)}  # a float in, a float out


def clip_loss_reference(image_embeds, text_embeds, logit_scale, *, normalize: bool = True):
    """:func:`clip_loss` composed from the core functions, one derivation step per line.

    Slower (it walks the ``(N, N)`` logits some twenty times) but it reads
    like ``docs/derivations.md``; the tests hold :func:`clip_loss` to it.
    Same arguments and returns as :func:`clip_loss`, without ``block_size``.
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds)
    normalize = as_bool(normalize, "normalize")
    xp = array_namespace(image_embeds, text_embeds)
    n = image_embeds.shape[0]
    if normalize:
        image_embeds, image_cache = l2_normalize(image_embeds)
        text_embeds, text_cache = l2_normalize(text_embeds)
    logits_per_image, cache = logit_matrix(image_embeds, text_embeds, logit_scale)  # (N, N)
    labels = xp.arange(n)  # pair i is the right answer for row i
    loss_image, dlogits_per_image = cross_entropy(logits_per_image, labels)
    loss_text, dlogits_per_text = cross_entropy(logits_per_image.T, labels)
    loss = (loss_image + loss_text) / 2
    dlogits = (dlogits_per_image + dlogits_per_text.T) / 2  # (N, N) both directions meet
    dimage, dtext, dlogit_scale = logit_matrix_backward(dlogits, cache)
    if normalize:
        dimage = l2_normalize_backward(dimage, image_cache)
        dtext = l2_normalize_backward(dtext, text_cache)
    return loss, {"image_embeds": dimage, "text_embeds": dtext, "logit_scale": dlogit_scale}


def negclip_loss(image_embeds, text_embeds, negative_embeds, logit_scale, *,
                 normalize: bool = True):
    r"""NegCLIP's contrastive loss with hard-negative captions, and its gradients.

    .. math:: S = e^{s}\,\hat I\,[\hat T;\, \hat H]^\top = [A \mid B], \qquad
              L = \tfrac12\left(\operatorname{CE}(S, [0..N)) +
                                \operatorname{CE}(A^\top, [0..N))\right)

    Yuksekgonul et al., ICLR 2023 ("When and why vision-language models behave like
    bags-of-words, and what to do about it?"): perturbed copies of the captions (relations
    or attributes swapped, words shuffled) join the batch as ``M`` extra texts ``H``.
    Row ``i`` of ``S`` (``N + M`` columns) asks "which text belongs to image i?" with the
    negatives among the choices; row ``j`` of ``A.T`` (``A = S[:, :N]``) asks "which image
    belongs to caption j?" over the ``N`` images only: a negative describes no image, so
    it is no query (NegCLIP's choice).  Each cross-entropy is a mean over its ``N`` rows;
    with ``M = 0`` this is :func:`clip_loss_reference`, operation for operation.

    Args:
        image_embeds: ``(N, D)`` image embeddings ``I``.
        text_embeds: ``(N, D)`` text embeddings ``T``; row ``i`` is the caption of image ``i``.
        negative_embeds: ``(M, D)`` hard-negative text embeddings ``H``, ``M >= 0`` (no
            negatives: an empty ``(0, D)`` array); the library and dtype of ``text_embeds``.
            Every image is contrasted with every negative, whichever caption it perturbs.
        logit_scale: ``s = log(1/tau)``, a Python float or 0-d array, as in :func:`clip_loss`.
        normalize: L2-normalize the rows first (:math:`\hat I`, :math:`\hat T`, :math:`\hat H`) and
            back-propagate through it; ``False`` uses the embeddings as given.

    Returns:
        loss: 0-d array, dtype of the embeddings; the mean over both directions.
        grads: dict with ``"image_embeds"``, ``"text_embeds"``, ``"negative_embeds"``
            (``(M, D)``, empty for ``M = 0``), ``"logit_scale"``, each with the shape,
            dtype and type of the corresponding input.

    Raises:
        TypeError: embeddings or ``logit_scale`` of the wrong kind (see
            :mod:`numclip.backend`); ``negative_embeds`` of another library or dtype than
            ``text_embeds``; ``normalize`` not a bool.
        ValueError: shapes that do not pair (``negative_embeds`` not 2-D, or of another
            width ``D``), NaN or inf, or logits or a loss beyond the dtype's range.

    Dense: it holds the ``(N, N + M)`` logits.  Derivation:
    ``docs/derivations.md#negclip-hard-negatives``.
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds)
    negative_embeds = _as_negatives(negative_embeds, text_embeds)
    normalize = as_bool(normalize, "normalize")
    logit_scale = as_log_scale(logit_scale)
    xp = array_namespace_of({"image_embeds": image_embeds, "logit_scale": logit_scale})
    n = image_embeds.shape[0]
    texts = xp.concat([text_embeds, negative_embeds], axis=0)  # (N + M, D) captions first
    if normalize:
        image_embeds, image_cache = l2_normalize(image_embeds)
        texts, texts_cache = l2_normalize(texts)
    logits_per_image, cache = logit_matrix(image_embeds, texts, logit_scale)  # (N, N + M)
    labels = xp.arange(n)  # image i's caption is column i; the negatives are nobody's
    loss_image, dlogits_per_image = cross_entropy(logits_per_image, labels)  # over N + M texts
    loss_text, dlogits_per_text = cross_entropy(logits_per_image[:, :n].T, labels)  # N images
    loss = (loss_image + loss_text) / 2
    # G = [G_A | G_B]: both directions meet on the captions, image -> text alone on negatives
    dlogits = xp.concat([dlogits_per_image[:, :n] + dlogits_per_text.T,
                         dlogits_per_image[:, n:]], axis=1) / 2  # (N, N + M)
    dimage, dtexts, dlogit_scale = logit_matrix_backward(dlogits, cache)
    if normalize:
        dimage = l2_normalize_backward(dimage, image_cache)
        dtexts = l2_normalize_backward(dtexts, texts_cache)
    return loss, {"image_embeds": dimage, "text_embeds": dtexts[:n, :],
                  "negative_embeds": dtexts[n:, :], "logit_scale": dlogit_scale}


def _as_negatives(negative_embeds, text_embeds):
    """Validate hard negatives: ``(M, D)`` like ``text_embeds``, where ``M = 0`` is allowed.

    :func:`numclip.backend.as_matrix` refuses empty arrays (an empty batch is a mistake),
    but no negatives is a valid choice: a ``(0, D)`` array skips it and is checked here.
    """
    name, d = "negative_embeds", text_embeds.shape[1]
    if isinstance(negative_embeds, list | tuple) and len(negative_embeds) == 0:
        raise ValueError(f"{name} must be 2-D with shape (M, {d}); for no negatives pass an "
                         f"empty array of shape (0, {d}), not an empty "
                         f"{type(negative_embeds).__name__} (it has no width D)")
    is_array = array_api_compat.is_array_api_obj(negative_embeds)
    if is_array and negative_embeds.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (M, {d}) (M = 0 allowed), got shape "
                         f"{tuple(negative_embeds.shape)}")
    if not (is_array and negative_embeds.shape[0] == 0):
        negative_embeds = as_matrix(negative_embeds, name)
    array_namespace_of({"text_embeds": text_embeds, name: negative_embeds})
    if negative_embeds.shape[1] != d:
        raise ValueError(f"{name} must have the width D of text_embeds, {d}, got "
                         f"{negative_embeds.shape[1]}")
    if negative_embeds.dtype != text_embeds.dtype:
        raise TypeError(f"{name} must have the dtype of text_embeds, {text_embeds.dtype}, "
                        f"got {negative_embeds.dtype}")
    return negative_embeds


def _as_targets(targets, n, c, xp):
    """Validate integer class targets of shape ``(n,)`` with values in ``[0, c)``."""
    if targets is None or isinstance(targets, str | bytes | bool):
        raise TypeError(f"targets must be an array of integers, got {type(targets).__name__}")
    try:
        targets = xp.asarray(targets)
    except (TypeError, ValueError):
        raise TypeError("targets must be an array of integers, "
                        f"got {type(targets).__name__}") from None
    if not _is_integer_dtype(xp, targets.dtype):
        raise TypeError(f"targets must be an array of integers, got dtype {targets.dtype}")
    if tuple(targets.shape) != (n,):
        raise ValueError(f"targets must have shape ({n},), one per row of logits, "
                         f"got {tuple(targets.shape)}")
    if bool(xp.any(targets < 0)) or bool(xp.any(targets >= c)):
        raise ValueError(f"targets must lie in [0, {c}), the columns of logits")
    return targets


def _is_integer_dtype(xp, dtype):
    """``isdtype(dtype, "integral")``, False (not an error) for object or string dtypes."""
    try:
        return bool(xp.isdtype(dtype, "integral"))
    except (TypeError, ValueError):
        return False
