"""The linear layer ``y = x W^T + b`` with torch's weight layout ``(out, in)``.

Derivation: ``docs/derivations.md#linear-layer``.
"""

from __future__ import annotations

from numclip.backend import array_namespace
from numclip.nn.validate import as_activation, as_cache, as_upstream, as_weight

__all__ = ["linear", "linear_backward"]


def linear(x, weight, bias=None, *, validate: bool = True):
    r"""Affine map of the last axis, as ``torch.nn.Linear``.

    .. math:: y = x W^\top + b

    Args:
        x: ``(..., in)`` float array (any number of leading axes, none included).
        weight: ``(out, in)``; bias: ``(out,)`` or None.
        validate: check the arguments (the default). The encoders check every
            parameter once per call and pass False, so that 88 million weights are not
            scanned for NaN again by every layer.

    Returns:
        y ``(..., out)``, and the cache for :func:`linear_backward`.
    """
    if validate:
        x = as_activation(x, "x")
        weight = as_weight(weight, "weight", (None, x.shape[-1]), x)  # (out, in)
        if bias is not None:
            as_weight(bias, "bias", (weight.shape[0],), x)
    xp = array_namespace(x)
    # one 2-D product: NumPy runs a 3-D @ 2-D product as a loop of small ones, 3x slower
    y = xp.reshape(xp.reshape(x, (-1, x.shape[-1])) @ weight.T,
                   (*x.shape[:-1], weight.shape[0]))  # (..., out)
    if bias is not None:
        y += bias  # in place: y is a new array
    return y, (x, weight, bias is not None, "linear")


def linear_backward(dy, cache):
    r"""Gradients of :func:`linear`.

    .. math:: \frac{\partial L}{\partial x} = g W, \quad
              \frac{\partial L}{\partial W} = \sum g^\top x, \quad
              \frac{\partial L}{\partial b} = \sum g

    (sums over every leading axis), with ``g = dL/dy``.

    Returns:
        dx ``(..., in)``, dweight ``(out, in)``, dbias ``(out,)`` (None without a bias).
    """
    x, weight, has_bias = as_cache(cache, "cache", 3, "linear")
    dy = as_upstream(dy, (*x.shape[:-1], weight.shape[0]), x)
    xp = array_namespace(x)
    g = xp.reshape(dy, (-1, dy.shape[-1]))  # (n, out), every leading axis flattened
    dx = xp.reshape(g @ weight, tuple(x.shape))  # (..., in)
    dweight = g.T @ xp.reshape(x, (-1, x.shape[-1]))  # (out, in)
    dbias = xp.sum(g, axis=0) if has_bias else None  # (out,)
    return dx, dweight, dbias
