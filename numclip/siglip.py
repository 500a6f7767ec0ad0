"""SigLIP's pairwise sigmoid loss (Zhai et al., 2023), dense or in tiles of texts.

CLIP's softmax asks, for each image, "which of these N texts is mine?"; the
sigmoid loss asks, for each of the N*N image-text pairs on its own, "is this
a match?".  With no normalization across a row, the loss is a plain sum over
pairs, so it can be computed a few columns at a time and added up: the
chunked path never holds the N x N logit matrix.  The scale and bias are
learned and start where open_clip starts them (scale 10, bias -10).
Derivation: ``docs/siglip.md``.
"""

import math

import numpy as np

from numclip.backend import (
    array_namespace_of,
    as_bool,
    as_embedding_pair,
    as_log_scale,
    as_real_scalar,
    as_tile_size,
    exp_scale,
    scalar_like,
)
from numclip.normalize import l2_normalize, l2_normalize_backward

__all__ = ["siglip_loss", "SIGLIP_INIT_LOGIT_SCALE", "SIGLIP_INIT_LOGIT_BIAS"]

SIGLIP_INIT_LOGIT_SCALE = math.log(10.0)  # open_clip's init_logit_scale for SigLIP: scale 10
SIGLIP_INIT_LOGIT_BIAS = -10.0  # open_clip's init_logit_bias: every pair starts as "no match"


def siglip_loss(image_embeds, text_embeds, logit_scale, logit_bias, *,
                normalize: bool = True, chunk_size=None):
    r"""SigLIP's sigmoid loss over all image-text pairs, and its gradients.

    .. math:: z_{ij} = e^{s}\,\hat I_i^\top \hat T_j + b, \qquad
              y_{ij} = 2\delta_{ij} - 1, \qquad
              L = -\frac{1}{N}\sum_{i=1}^{N}\sum_{j=1}^{N} \log\sigma(y_{ij} z_{ij})

    A **sum over all N*N pairs divided by N** (open_clip's ``SigLipLoss``),
    not a mean over pairs: each image contributes one positive and N-1
    negatives.  ``log σ(x)`` is computed as ``-softplus(-x)``, which does not
    overflow for logits in the thousands.  Unlike open_clip, ``logit_scale``
    is passed as the *log* of the scale ``e^s``, as in :func:`clip_loss`.

    Args:
        image_embeds: ``(N, D)`` image embeddings ``I``.
        text_embeds: ``(N, D)`` text embeddings ``T``; row ``i`` is the caption of image ``i``.
        logit_scale: ``s``, a Python float or 0-d array (open_clip starts at ``log 10``).
        logit_bias: ``b``, a Python float or 0-d array (open_clip starts at ``-10``).
        normalize: L2-normalize the rows first (:math:`\hat I`, :math:`\hat T`) and
            back-propagate through it; ``False`` uses the embeddings as given.
        chunk_size: ``None`` builds the ``(N, N)`` logits at once; an int ``B``
            goes through the texts ``B`` at a time, holding ``(N, B)`` tiles
            only.  Both give the same loss and gradients, up to rounding.

    Returns:
        loss: 0-d array, dtype of the embeddings; the sum over pairs divided by N.
        grads: dict with ``"image_embeds"``, ``"text_embeds"``, ``"logit_scale"``,
            ``"logit_bias"``, each with the shape, dtype and type of its input.

    Raises:
        TypeError: embeddings, ``logit_scale`` or ``logit_bias`` of the wrong kind
            (see :mod:`numclip.backend`); ``normalize`` not a bool; ``chunk_size``
            not an int.
        ValueError: shapes that do not pair, NaN or inf, ``chunk_size < 1``, or a
            loss beyond the dtype's range (only possible with ``normalize=False``
            or an enormous ``logit_scale`` or ``logit_bias``).
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds)
    logit_scale = as_log_scale(logit_scale)
    logit_bias = as_real_scalar(logit_bias, "logit_bias")
    normalize = as_bool(normalize, "normalize")
    n = image_embeds.shape[0]
    chunk_size = as_tile_size(chunk_size, "chunk_size") or n  # None: one tile, dense
    xp = array_namespace_of({"image_embeds": image_embeds, "logit_scale": logit_scale,
                             "logit_bias": logit_bias})
    if normalize:
        image_embeds, image_cache = l2_normalize(image_embeds)
        text_embeds, text_cache = l2_normalize(text_embeds)
    scale = exp_scale(logit_scale, image_embeds)  # e^s: a float, or a 0-d array
    bias = _as_dtype(logit_bias, image_embeds.dtype, xp)  # b, in the embeddings' dtype
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
        loss, dimage, dtext, dscale, dbias = _sum_over_tiles(
            image_embeds, text_embeds, scale, bias, chunk_size, xp)
    if not all(math.isfinite(float(v)) for v in (loss, dscale)):  # dscale sums every dL/dz z
        raise ValueError(f"the loss overflows {image_embeds.dtype}: the logits "
                         "exp(logit_scale) * image_embeds @ text_embeds.T + logit_bias leave "
                         "its range; normalize the embeddings (normalize=True), lower "
                         "logit_scale or logit_bias, or compute in float64")
    if normalize:
        dimage = l2_normalize_backward(dimage, image_cache)
        dtext = l2_normalize_backward(dtext, text_cache)
    return loss, {"image_embeds": dimage, "text_embeds": dtext,
                  "logit_scale": scalar_like(dscale, logit_scale),
                  "logit_bias": scalar_like(dbias, logit_bias)}


def _sum_over_tiles(image_embeds, text_embeds, scale, bias, chunk_size, xp):
    """Loss and gradients, added up over tiles of ``chunk_size`` texts (one tile if dense).

    Every pair's term is independent of the others, so a tile's loss and its
    gradients are final the moment the tile is done: no running log-sum-exp.
    """
    n = image_embeds.shape[0]
    loss = xp.zeros((), dtype=image_embeds.dtype)
    dimage_embeds = xp.zeros_like(image_embeds)  # (N, D) every tile reaches every image
    dtext_tiles = []  # tile [start, stop) reaches text rows [start, stop) only
    dlogit_scale = xp.zeros((), dtype=image_embeds.dtype)
    dlogit_bias = xp.zeros((), dtype=image_embeds.dtype)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)  # the standard leaves slices past the end undefined
        text_tile = text_embeds[start:stop, :]  # (B, D)
        tile_loss, dlogits, scaled = _pair_terms(image_embeds, text_tile, scale, bias, start, xp)
        loss = loss + tile_loss
        dimage_embeds = dimage_embeds + scale * (dlogits @ text_tile)  # (N, D)
        dtext_tiles.append(scale * (dlogits.T @ image_embeds))  # (B, D)
        dlogit_scale = dlogit_scale + xp.sum(dlogits * scaled)  # () dz/ds = z - b
        dlogit_bias = dlogit_bias + xp.sum(dlogits)  # () dz/db = 1
    dtext_embeds = xp.concat(dtext_tiles, axis=0)  # (N, D)
    return loss, dimage_embeds, dtext_embeds, dlogit_scale, dlogit_bias


def _pair_terms(image_embeds, text_tile, scale, bias, start, xp):
    """One ``(N, B)`` tile: its share of the loss, ``dL/dz`` and the unbiased logits.

    ``text_tile`` holds texts ``start, ..., start + B - 1``; text ``j`` matches image ``j``.
    """
    n, width = image_embeds.shape[0], text_tile.shape[0]
    scaled = scale * (image_embeds @ text_tile.T)  # (N, B) e^s I T^T, the part s moves
    logits = scaled + bias  # (N, B) z
    is_match = xp.reshape(xp.arange(n), (n, 1)) == xp.arange(start, start + width)  # (N, B) y = +1
    margin = xp.where(is_match, -logits, logits)  # (N, B) u = -y z, > 0 when the pair is misjudged
    e = xp.exp(-xp.abs(margin))  # (N, B) in (0, 1], so exp never overflows
    softplus = xp.maximum(margin, xp.zeros_like(margin)) + xp.log1p(e)  # (N, B) = -log σ(y z)
    loss = xp.sum(softplus) / n  # () a sum over pairs divided by N
    p_wrong = xp.where(margin >= 0, xp.ones_like(e), e) / (1 + e)  # (N, B) σ(u), stable
    dlogits = xp.where(is_match, -p_wrong, p_wrong) / n  # (N, B) dL/dz = -y σ(-y z) / N
    return loss, dlogits, scaled


def _as_dtype(logit_bias, dtype, xp):
    """``b`` as a float, or as a 0-d array of the embeddings' dtype (float32 stays float32)."""
    if type(logit_bias) is float:
        return logit_bias
    return xp.astype(logit_bias, dtype)
