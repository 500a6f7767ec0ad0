"""Layer normalization over the last axis, as ``torch.nn.LayerNorm`` (eps 1e-5).

Each token is centred and scaled to unit variance (the *biased* variance, as
torch), then given a learned scale and shift.  Derivation:
``docs/derivations.md#layer-norm``.
"""

from __future__ import annotations

from numclip.backend import array_namespace, as_number
from numclip.nn.validate import as_activation, as_cache, as_upstream, as_weight

__all__ = ["layer_norm", "layer_norm_backward", "LAYER_NORM_EPS"]

LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, which open_clip keeps


def layer_norm(x, weight, bias, eps: float = LAYER_NORM_EPS, *, validate: bool = True):
    r"""Normalize each row of the last axis, then scale and shift it.

    .. math:: \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \hat x \odot w + b

    with :math:`\mu, \sigma^2` the mean and biased variance of the last axis.

    Args:
        x: ``(..., D)`` float array; weight, bias: ``(D,)``.
        eps: a positive float added to the variance.
        validate: check the arguments (the default). The encoders check every
            parameter once per call and pass False, so that 88 million weights are not
            scanned for NaN again by every layer.

    Returns:
        y ``(..., D)``, and the cache ``(xhat, rstd, weight)`` for the backward.
    """
    if validate:
        x = as_activation(x, "x")
        d = x.shape[-1]
        weight, bias = as_weight(weight, "weight", (d,), x), as_weight(bias, "bias", (d,), x)
        eps = as_number(eps, "eps")
        if not eps > 0 or eps == float("inf"):
            raise ValueError(f"eps must be positive and finite, got {eps}")
    xp = array_namespace(x)
    mu = xp.mean(x, axis=-1, keepdims=True)  # (..., 1)
    xhat = x - mu  # (..., D), centred; scaled in place below
    var = xp.vecdot(xhat, xhat)[..., None] / x.shape[-1]  # (..., 1), biased as torch's
    rstd = 1.0 / xp.sqrt(var + eps)  # (..., 1)
    xhat *= rstd
    y = xhat * weight
    y += bias  # in place: y is a new array
    return y, (xhat, rstd, weight, "layer_norm")


def layer_norm_backward(dy, cache):
    r"""Gradients of :func:`layer_norm`.

    .. math:: \frac{\partial L}{\partial x} = r \left(g - \overline{g}
              - \hat x\, \overline{g \odot \hat x}\right),
              \qquad g = \frac{\partial L}{\partial y} \odot w

    where :math:`\overline{\cdot}` is the mean over the last axis and :math:`r` the
    inverse standard deviation.

    Returns:
        dx ``(..., D)``, dweight ``(D,)``, dbias ``(D,)``.
    """
    xhat, rstd, weight = as_cache(cache, "cache", 3, "layer_norm")
    dy = as_upstream(dy, xhat.shape, xhat)
    xp = array_namespace(xhat)
    lead = tuple(range(xhat.ndim - 1))
    dweight = xp.sum(dy * xhat, axis=lead)  # (D,)
    dbias = xp.sum(dy, axis=lead)  # (D,)
    g = dy * weight  # (..., D): the gradient with respect to xhat
    dx = g - xp.mean(g, axis=-1, keepdims=True)
    dx -= xhat * xp.mean(g * xhat, axis=-1, keepdims=True)
    dx *= rstd
    return dx, dweight, dbias
