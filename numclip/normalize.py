"""L2 normalization along the last axis, forward and backward.

CLIP compares directions, not lengths: both encoders' outputs are divided by
their Euclidean norm so that a dot product is a cosine similarity.
Derivation of the backward pass: ``docs/derivations.md#l2-normalization``.
"""

import math

import numpy as np

from numclip.backend import array_namespace, array_namespace_of, as_float_array, as_real_scalar

__all__ = ["l2_normalize", "l2_normalize_backward"]

EPS = 1e-12  # the floor torch.nn.functional.normalize uses; a Python float keeps float32 float32


def l2_normalize(x, eps: float = EPS):
    r"""Scale each row of ``x`` to unit Euclidean length.

    .. math:: y_i = \frac{x_i}{\max(\lVert x_i \rVert_2, \varepsilon)}

    An all-zero row has no direction; it maps to the zero row (not NaN),
    exactly as ``torch.nn.functional.normalize`` does.  Rows of any finite
    size work: where the squares of a row overflow (``|x| ~ 1e19`` in float32)
    or underflow, the row is divided by its largest entry before squaring, as
    ``numpy.linalg.norm`` and ``hypot`` do.

    Args:
        x: array of shape ``(..., D)``, usually ``(N, D)``; float32 or float64.
        eps: lower bound on the norm, so a zero row is divided by ``eps``; a
            positive number within the normal range of ``x``'s dtype.

    Returns:
        y: array of shape ``(..., D)``, same dtype, rows of norm 1 (or 0).
        cache: ``(y, norm, eps)`` for :func:`l2_normalize_backward`; ``norm`` has
            shape ``(..., 1)`` (``inf`` for a row whose norm exceeds the dtype's range).

    Raises:
        TypeError, ValueError: as :func:`numclip.backend.as_float_array` for ``x``;
            a 0-d ``x``; an ``eps`` that is not a positive finite real number.
    """
    x = as_float_array(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a 0-d array")
    xp = array_namespace(x)
    eps = _as_eps(eps, x.dtype, xp)
    with np.errstate(over="ignore", under="ignore"):  # detected below (NumPy would warn)
        squares = xp.vecdot(x, x)  # (...,) vecdot makes no (..., D) temporary
    if _squares_lost_range(xp, squares, eps):
        return _l2_normalize_rescaled(x, eps, xp)
    norm = xp.sqrt(squares)[..., None]  # (..., 1)
    y = x / xp.maximum(norm, xp.asarray(eps, dtype=x.dtype))  # (..., D)
    return y, (y, norm, eps)


def _as_eps(eps, dtype, xp) -> float:
    """``eps`` as a float: positive, and a normal number of ``dtype`` (not rounded to 0 or inf)."""
    eps = float(as_real_scalar(eps, "eps"))
    finfo = xp.finfo(dtype)
    if not float(finfo.smallest_normal) <= eps <= float(finfo.max):
        raise ValueError(f"eps must be a positive number in the normal range of {dtype}, "
                         f"[{float(finfo.smallest_normal):.3g}, {float(finfo.max):.3g}], "
                         f"got {eps}")
    return eps


def _squares_lost_range(xp, squares, eps):
    """Whether some row's sum of squares overflowed, or underflowed where it matters.

    A sum of squares at or above ``smallest_normal`` is accurate to a few
    roundings: each square that fell into the subnormals is off by at most half
    a subnormal step, ``smallest_normal * eps_mach / 2``.  Below it the norm
    can be anything under ``sqrt(2 smallest_normal)`` (1.5e-19 in float32),
    which only matters if ``eps`` is smaller still; otherwise the row is
    clamped to ``x / eps`` either way.
    """
    finfo = xp.finfo(squares.dtype)
    if bool(xp.any(xp.isinf(squares))):
        return True
    tiny = float(finfo.smallest_normal)
    return eps < math.sqrt(2 * tiny) and bool(xp.any(squares < tiny))


def _l2_normalize_rescaled(x, eps, xp):
    """:func:`l2_normalize` that divides each row by its largest ``|x_k|`` before squaring.

    ``u = x / m`` has largest entry 1, so ``u . u`` lies in ``[1, D]``: no
    overflow, no underflow that matters.  ``y = u / |u|`` never forms ``|x|``,
    which may itself exceed the dtype (``norm`` is then ``inf``).  About four
    times the work of the plain path, so it runs only when that path failed.
    """
    m = xp.max(xp.abs(x), axis=-1, keepdims=True)  # (..., 1) largest |x_k| of each row
    zero = m == 0
    m = xp.where(zero, xp.ones_like(m), m)  # a zero row stays zero whatever divides it
    u = x / m  # (..., D) largest entry +-1
    s = xp.sqrt(xp.vecdot(u, u))[..., None]  # (..., 1) |u| in [1, sqrt(D)], or 0
    eps_ = xp.asarray(eps, dtype=x.dtype)
    with np.errstate(over="ignore"):  # |x| beyond the dtype's range is inf, on purpose
        norm = m * s  # (..., 1)
        small = x / eps_  # (..., D) used only where norm < eps; inf elsewhere is harmless
    y = xp.where(norm < eps_, small, u / xp.where(zero, xp.ones_like(s), s))  # (..., D)
    return y, (y, norm, eps)


def l2_normalize_backward(dy, cache):
    r"""Gradient of :func:`l2_normalize` with respect to its input.

    .. math:: \frac{\partial L}{\partial x_i} =
              \frac{1}{\lVert x_i \rVert}\left(g_i - y_i\,(y_i^\top g_i)\right),
              \qquad g_i = \frac{\partial L}{\partial y_i}

    The bracket removes the part of the upstream gradient along ``y_i``:
    stretching ``x_i`` does not change ``y_i``.  For a row whose norm is below
    ``eps`` the forward pass is the linear map ``x / eps``, so its gradient is
    ``dy / eps``: huge, because a direction near the origin is ill-defined.

    Args:
        dy: upstream gradient, shape ``(..., D)`` and dtype of ``y``; finite.
        cache: the second output of :func:`l2_normalize`.

    Returns:
        dx: shape ``(..., D)``, the dtype of ``dy`` (which is ``y``'s).

    Raises:
        TypeError: ``cache`` is not what :func:`l2_normalize` returned; ``dy`` is
            not a float array, or its dtype or library differs from ``y``'s.
        ValueError: ``dy`` has another shape than ``y``, or a NaN or inf.
    """
    y, norm, eps = _unpack_cache(cache)
    dy = as_float_array(dy, "dy")
    if dy.shape != y.shape:
        raise ValueError(f"dy must have the shape of y, {tuple(y.shape)}, got {tuple(dy.shape)}")
    xp = array_namespace_of({"dy": dy, "y": y})  # before comparing dtypes of two libraries
    if dy.dtype != y.dtype:
        raise TypeError(f"dy must have the dtype of y, {y.dtype}, got {dy.dtype}: "
                        "convert one of them, e.g. dy.astype(y.dtype)")
    radial = xp.vecdot(dy, y)[..., None]  # (..., 1) component of dy along y
    clamped = norm < eps  # (..., 1) rows whose forward pass was x / eps: nothing to remove
    radial = xp.where(clamped, xp.zeros_like(radial), radial)
    dx = dy - y * radial  # (..., D)
    return dx / xp.maximum(norm, xp.asarray(eps, dtype=norm.dtype))


def _unpack_cache(cache):
    """``(y, norm, eps)`` from a cache made by :func:`l2_normalize`, or a clear TypeError."""
    what = "cache must be the second output of l2_normalize(...), a tuple (y, norm, eps)"
    if not (isinstance(cache, tuple) and len(cache) == 3):
        raise TypeError(f"{what}; got {type(cache).__name__}")
    y, norm, eps = cache
    arrays = all(hasattr(a, "shape") and hasattr(a, "dtype") for a in (y, norm))
    if not (arrays and type(eps) is float and len(y.shape) >= 1
            and tuple(norm.shape) == (*y.shape[:-1], 1)):
        raise TypeError(f"{what}; got a tuple that l2_normalize did not make")
    return y, norm, eps
