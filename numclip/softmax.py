"""Stable log-sum-exp, softmax and log-softmax along an axis, with backward passes.

``exp(1000)`` overflows even float64, yet softmax only depends on differences
of logits.  Subtracting the maximum first (as ``scipy.special.logsumexp``
does) keeps every exponent <= 0, so nothing overflows; log-softmax is then
``z - logsumexp(z)``, never ``log(softmax(z))``, which would turn a tiny
probability into ``log(0) = -inf``.
Derivations: ``docs/derivations.md#softmax-and-log-softmax``.
"""

from numclip.backend import array_namespace, as_float_array

__all__ = ["logsumexp", "softmax", "log_softmax", "softmax_backward", "log_softmax_backward"]


def _checked(z, axis):
    """Validate ``z`` and ``axis`` once for every function in this module."""
    z = as_float_array(z, "z")
    if z.ndim == 0:
        raise ValueError("z must have at least one axis, got a 0-d array")
    if not isinstance(axis, int) or not -z.ndim <= axis < z.ndim:
        raise ValueError(f"axis must be an int in [-{z.ndim}, {z.ndim}), got {axis!r}")
    return z, array_namespace(z)


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
    z, xp = _checked(z, axis)
    out = _logsumexp(z, axis, xp)
    return out if keepdims else xp.squeeze(out, axis=axis)


def _logsumexp(z, axis, xp):
    """The computation behind :func:`logsumexp`, keepdims=True, on validated input."""
    m = xp.max(z, axis=axis, keepdims=True)  # the shift that keeps exp() <= 1
    return m + xp.log(xp.sum(xp.exp(z - m), axis=axis, keepdims=True))


def log_softmax(z, axis: int = -1):
    r"""Log-probabilities :math:`\log p_j = z_j - \operatorname{lse}(z)` along ``axis``.

    Args:
        z: float array of logits, any shape.
        axis: the axis that sums to one after ``exp``.

    Returns:
        array of ``z``'s shape and dtype, every entry <= 0.
    """
    z, xp = _checked(z, axis)
    return z - _logsumexp(z, axis, xp)


def softmax(z, axis: int = -1):
    r"""Probabilities :math:`p_j = e^{z_j - m} / \sum_k e^{z_k - m}` along ``axis``.

    Args:
        z: float array of logits, any shape.
        axis: the axis that sums to one.

    Returns:
        array of ``z``'s shape and dtype, entries in [0, 1].
    """
    z, xp = _checked(z, axis)
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))  # every exponent <= 0
    return e / xp.sum(e, axis=axis, keepdims=True)


def softmax_backward(dp, p, axis: int = -1):
    r"""Gradient through :func:`softmax`, given its output ``p``.

    .. math:: \frac{\partial L}{\partial z} = p \odot \left(g - \sum_k g_k p_k\right),
              \qquad g = \frac{\partial L}{\partial p}

    Args:
        dp: upstream gradient, shape of ``p``.
        p: the output of :func:`softmax` along the same ``axis``.

    Returns:
        dz: shape and dtype of ``p``.
    """
    xp = array_namespace(dp, p)
    _check_same_shape(dp, p, "dp", "p")
    return p * (dp - xp.sum(dp * p, axis=axis, keepdims=True))


def log_softmax_backward(dlogp, logp, axis: int = -1):
    r"""Gradient through :func:`log_softmax`, given its output ``logp``.

    .. math:: \frac{\partial L}{\partial z} = g - p \sum_k g_k,
              \qquad g = \frac{\partial L}{\partial \log p}, \; p = e^{\log p}

    Args:
        dlogp: upstream gradient, shape of ``logp``.
        logp: the output of :func:`log_softmax` along the same ``axis``.

    Returns:
        dz: shape and dtype of ``logp``.
    """
    xp = array_namespace(dlogp, logp)
    _check_same_shape(dlogp, logp, "dlogp", "logp")
    return dlogp - xp.exp(logp) * xp.sum(dlogp, axis=axis, keepdims=True)


def _check_same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(f"{name_a} must have the shape of {name_b}, "
                         f"{tuple(b.shape)}, got {tuple(a.shape)}")
