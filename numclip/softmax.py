"""Stable log-sum-exp, softmax and log-softmax along an axis, with backward passes.

``exp(1000)`` overflows even float64, yet softmax only depends on differences
of logits.  Subtracting the maximum first (as ``scipy.special.logsumexp``
does) keeps every exponent <= 0, so nothing overflows; log-softmax is then
``z - logsumexp(z)``, never ``log(softmax(z))``, which would turn a tiny
probability into ``log(0) = -inf``.
Derivations: ``docs/derivations.md#softmax-and-log-softmax``.

Every function here raises ``TypeError`` for the wrong kind of argument (an
integer or float16 array, ``axis=1.5``, ``keepdims="yes"``) and ``ValueError``
for a wrong value (NaN, an empty or 0-d array, an axis out of range, a
gradient of another shape), naming the argument.
"""

import numbers

import numpy as np

from numclip.backend import (
    array_namespace,
    array_namespace_of,
    as_bool,
    as_float_array,
    as_writable,
)

__all__ = ["logsumexp", "softmax", "log_softmax", "softmax_backward", "log_softmax_backward"]


def _checked(z, axis, name="z"):
    """Validate ``z`` and ``axis`` once for every function in this module."""
    z = as_float_array(z, name)
    if z.ndim == 0:
        raise ValueError(f"{name} must have at least one axis, got a 0-d array")
    return z, _as_axis(axis, z.ndim), array_namespace(z)


def _as_axis(axis, ndim):
    """An int axis in ``[-ndim, ndim)``; NumPy integers count, bools do not."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int in [-{ndim}, {ndim}), got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be an int in [-{ndim}, {ndim}), got {axis!r}")
    return int(axis)


def logsumexp(z, axis: int = -1, keepdims: bool = False):
    r"""Numerically stable :math:`\log \sum_j e^{z_j}` along ``axis``.

    .. math:: \operatorname{lse}(z) = m + \log \sum_j e^{z_j - m}, \qquad m = \max_j z_j

    Args:
        z: float array of any shape, finite.
        axis: the axis reduced over.
        keepdims: keep ``axis`` with length 1 (handy for broadcasting back).

    Returns:
        array of ``z``'s shape without ``axis`` (or with length 1), same dtype.
    """
    z, axis, xp = _checked(z, axis)
    keepdims = as_bool(keepdims, "keepdims")
    out = _logsumexp(z, axis, xp)
    return out if keepdims else xp.squeeze(out, axis=axis)


def _logsumexp(z, axis, xp):
    """The computation behind :func:`logsumexp`, keepdims=True, on validated input."""
    m = xp.max(z, axis=axis, keepdims=True)  # the shift that keeps exp() <= 1
    with np.errstate(over="ignore"):  # z - m below -max is -inf, and exp(-inf) = 0 is right
        return m + xp.log(xp.sum(xp.exp(z - m), axis=axis, keepdims=True))


def log_softmax(z, axis: int = -1):
    r"""Log-probabilities :math:`\log p_j = z_j - \operatorname{lse}(z)` along ``axis``.

    Args:
        z: float array of logits, any shape.
        axis: the axis that sums to one after ``exp``.

    Returns:
        array of ``z``'s shape and dtype, every entry <= 0: ``-inf`` where a
            log-probability lies below the dtype's range (``z = [1e308, -1e308]`` in
            float64), which is that number correctly rounded.
    """
    z, axis, xp = _checked(z, axis)
    with np.errstate(over="ignore"):  # -inf is the correctly rounded log-probability there
        return z - _logsumexp(z, axis, xp)


def softmax(z, axis: int = -1, *, inplace: bool = False):
    r"""Probabilities :math:`p_j = e^{z_j - m} / \sum_k e^{z_k - m}` along ``axis``.

    Args:
        z: float array of logits, any shape.
        axis: the axis that sums to one.
        inplace: write p into ``z`` (a writable array) instead of a new one: for a caller
            that made ``z`` itself and has no further use for it (attention's scores).
            The numbers are the same either way.

    Returns:
        array of ``z``'s shape and dtype, entries in [0, 1] (``z`` itself with ``inplace``).
    """
    z, axis, xp = _checked(z, axis)
    top = xp.max(z, axis=axis, keepdims=True)
    with np.errstate(over="ignore"):  # z - max below -max is -inf, and exp(-inf) = 0 is right
        if as_bool(inplace, "inplace"):
            e = as_writable(z, "z")
            e -= top
        else:
            e = z - top  # every exponent <= 0; a new array, exponentiated in place below
    if isinstance(e, np.ndarray):
        np.exp(e, out=e)  # in place: the array stays in cache, where a new one would not be
    else:
        e[...] = xp.exp(e)  # the array API has no out=
    e /= xp.sum(e, axis=axis, keepdims=True)
    return e


def softmax_backward(dp, p, axis: int = -1):
    r"""Gradient through :func:`softmax`, given its output ``p``.

    .. math:: \frac{\partial L}{\partial z} = p \odot \left(g - \sum_k g_k p_k\right),
              \qquad g = \frac{\partial L}{\partial p}

    Args:
        dp: upstream gradient, finite, with the shape and dtype of ``p``.
        p: the output of :func:`softmax` along the same ``axis``: entries in [0, 1].
        axis: the axis :func:`softmax` normalized.

    Returns:
        dz: shape and dtype of ``p``.
    """
    p, axis, xp = _checked(p, axis, "p")
    dp = _as_gradient(dp, p, "dp", "p")
    if not bool(xp.all((p >= 0) & (p <= 1))):  # softmax rounds into [0, 1], never out
        raise ValueError("p must be the output of softmax, with entries in [0, 1]")
    return p * (dp - xp.sum(dp * p, axis=axis, keepdims=True))


def log_softmax_backward(dlogp, logp, axis: int = -1):
    r"""Gradient through :func:`log_softmax`, given its output ``logp``.

    .. math:: \frac{\partial L}{\partial z} = g - p \sum_k g_k,
              \qquad g = \frac{\partial L}{\partial \log p}, \; p = e^{\log p}

    Args:
        dlogp: upstream gradient, finite, with the shape and dtype of ``logp``.
        logp: the output of :func:`log_softmax` along the same ``axis``: entries <= 0.
        axis: the axis :func:`log_softmax` normalized.

    Returns:
        dz: shape and dtype of ``logp``.
    """
    logp, axis, xp = _checked(logp, axis, "logp")
    dlogp = _as_gradient(dlogp, logp, "dlogp", "logp")
    if not bool(xp.all(logp <= 0)):  # z - lse(z) <= 0 holds exactly: lse(z) >= max(z)
        raise ValueError("logp must be the output of log_softmax, with entries <= 0")
    return dlogp - xp.exp(logp) * xp.sum(dlogp, axis=axis, keepdims=True)


def _as_gradient(g, like, name, like_name):
    """Validate an upstream gradient: a finite float array of ``like``'s shape, dtype, library."""
    g = as_float_array(g, name)
    if g.shape != like.shape:
        raise ValueError(f"{name} must have the shape of {like_name}, "
                         f"{tuple(like.shape)}, got {tuple(g.shape)}")
    array_namespace_of({name: g, like_name: like})  # before comparing dtypes of two libraries
    if g.dtype != like.dtype:
        raise TypeError(f"{name} must have the dtype of {like_name}, {like.dtype}, "
                        f"got {g.dtype}")
    return g
