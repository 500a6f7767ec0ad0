"""The logit matrix: scaled cosine similarities of every image with every text.

CLIP learns the temperature through ``logit_scale = log(1 / tau)`` (openai/CLIP),
so the scale ``exp(logit_scale)`` stays positive whatever the optimizer does.
Derivation of the backward pass: ``docs/derivations.md#the-logit-matrix``.
"""

import numpy as np

from numclip.backend import (
    array_namespace_of,
    as_embedding_pair,
    as_log_scale,
    as_matrix,
    exp_scale,
    scalar_like,
)

__all__ = ["logit_matrix", "logit_matrix_backward"]


def logit_matrix(image_embeds, text_embeds, logit_scale):
    r"""Similarity logits of every image against every text.

    .. math:: S = e^{s}\, I T^\top, \qquad s = \log(1/\tau)

    ``logits_per_text`` is simply ``logits_per_image.T``.

    Args:
        image_embeds: ``(N, D)`` image embeddings ``I`` (already normalized, if wanted).
        text_embeds: ``(M, D)`` text embeddings ``T``.
        logit_scale: ``s``, a Python float or 0-d array; ``tau = exp(-s)``.

    Returns:
        logits_per_image: ``(N, M)``, dtype of the embeddings.
        cache: what :func:`logit_matrix_backward` needs.

    Raises:
        TypeError, ValueError: as :func:`numclip.backend.as_embedding_pair` (with
            ``paired=False``) and :func:`numclip.backend.as_log_scale` do;
            ValueError also for logits beyond the dtype's range.
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds, paired=False)
    logit_scale = as_log_scale(logit_scale)
    xp = array_namespace_of({"image_embeds": image_embeds, "logit_scale": logit_scale})
    scale = exp_scale(logit_scale, image_embeds)  # a float, or a 0-d array of their dtype
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
        logits_per_image = scale * (image_embeds @ text_embeds.T)  # (N, M)
    if not bool(xp.all(xp.isfinite(logits_per_image))):
        raise ValueError(f"the logits overflow {image_embeds.dtype}: exp(logit_scale) * "
                         "image_embeds @ text_embeds.T leaves its range; normalize the "
                         "embeddings, lower logit_scale, or compute in float64")
    return logits_per_image, (image_embeds, text_embeds, scale, logits_per_image, logit_scale)


def logit_matrix_backward(dlogits_per_image, cache):
    r"""Gradients of :func:`logit_matrix` with respect to ``I``, ``T`` and ``s``.

    .. math:: \frac{\partial L}{\partial I} = e^{s}\, G\, T, \quad
              \frac{\partial L}{\partial T} = e^{s}\, G^\top I, \quad
              \frac{\partial L}{\partial s} = \sum_{ij} G_{ij} S_{ij},
              \qquad G = \frac{\partial L}{\partial S}

    The last one holds because ``dS/ds = S``: the scale is an exponential.
    A gradient arriving on ``logits_per_text`` is added as its transpose first.

    Args:
        dlogits_per_image: ``(N, M)`` upstream gradient ``G``, finite, in the
            logits' dtype.
        cache: the second output of :func:`logit_matrix`.

    Returns:
        dimage_embeds ``(N, D)``, dtext_embeds ``(M, D)`` (the embeddings' dtype),
            dlogit_scale (same type, dtype and shape as the ``logit_scale`` given to
            the forward pass).

    Raises:
        TypeError: ``cache`` is not what :func:`logit_matrix` returned; the
            gradient is not a float array, or its dtype or library differs from
            the logits'.
        ValueError: the gradient is not ``(N, M)``, or holds a NaN or inf.
    """
    image_embeds, text_embeds, scale, logits_per_image, logit_scale = _unpack_cache(cache)
    dlogits_per_image = as_matrix(dlogits_per_image, "dlogits_per_image")
    xp = array_namespace_of({"dlogits_per_image": dlogits_per_image, "the logits": image_embeds})
    if dlogits_per_image.shape != logits_per_image.shape:
        raise ValueError("dlogits_per_image must have the shape of the logits, "
                         f"{tuple(logits_per_image.shape)}, got {tuple(dlogits_per_image.shape)}")
    if dlogits_per_image.dtype != logits_per_image.dtype:
        raise TypeError("dlogits_per_image must have the dtype of the logits, "
                        f"{logits_per_image.dtype}, got {dlogits_per_image.dtype}")
    dimage_embeds = scale * (dlogits_per_image @ text_embeds)  # (N, D)
    dtext_embeds = scale * (dlogits_per_image.T @ image_embeds)  # (M, D)
    dlogit_scale = xp.sum(dlogits_per_image * logits_per_image)  # () dS/ds = S
    return dimage_embeds, dtext_embeds, scalar_like(dlogit_scale, logit_scale)


def _unpack_cache(cache):
    """The five entries of a cache made by :func:`logit_matrix`, or a clear TypeError."""
    what = ("cache must be the second output of logit_matrix(...), a tuple (image_embeds, "
            "text_embeds, scale, logits_per_image, logit_scale)")
    if not (isinstance(cache, tuple) and len(cache) == 5):
        raise TypeError(f"{what}; got {type(cache).__name__}")
    image_embeds, text_embeds, _, logits, _ = cache
    arrays = all(getattr(a, "ndim", None) == 2 for a in (image_embeds, text_embeds, logits))
    if not (arrays and tuple(logits.shape) == (image_embeds.shape[0], text_embeds.shape[0])):
        raise TypeError(f"{what}; got a tuple that logit_matrix did not make")
    return cache
