"""Cross-entropy and CLIP's symmetric contrastive (InfoNCE) loss.

Each loss returns its value and its gradients together, so a training step
is ``loss, grads = clip_loss(...)`` followed by an optimizer update.
Derivations: ``docs/derivations.md#cross-entropy`` and
``docs/derivations.md#the-symmetric-clip-loss``.
"""

import math

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

__all__ = ["cross_entropy", "clip_loss", "clip_loss_reference"]


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
        normalize: L2-normalize the rows first (``\hat I``, ``\hat T``) and
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
