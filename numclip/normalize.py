"""L2 normalization along the last axis, forward and backward.

CLIP compares directions, not lengths: both encoders' outputs are divided by
their Euclidean norm so that a dot product is a cosine similarity.
Derivation of the backward pass: ``docs/derivations.md#l2-normalization``.
"""

from numclip.backend import array_namespace, as_float_array

__all__ = ["l2_normalize", "l2_normalize_backward"]

EPS = 1e-12  # the floor torch.nn.functional.normalize uses; a Python float keeps float32 float32


def l2_normalize(x, eps: float = EPS):
    r"""Scale each row of ``x`` to unit Euclidean length.

    .. math:: y_i = \frac{x_i}{\max(\lVert x_i \rVert_2, \varepsilon)}

    An all-zero row has no direction; it maps to the zero row (not NaN),
    exactly as ``torch.nn.functional.normalize`` does.

    Args:
        x: array of shape ``(..., D)``, usually ``(N, D)``; float32 or float64.
        eps: lower bound on the norm, so a zero row is divided by ``eps``.

    Returns:
        y: array of shape ``(..., D)``, same dtype, rows of norm 1 (or 0).
        cache: ``(y, norm)`` for :func:`l2_normalize_backward`; ``norm`` has shape ``(..., 1)``.
    """
    x = as_float_array(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a 0-d array")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    return _l2_normalize(x, eps)


def _l2_normalize(x, eps: float = EPS):
    """:func:`l2_normalize` of an ``x`` already validated, e.g. by ``as_embedding_pair``.

    The losses call it to skip a second pass checking every entry for NaN.
    """
    xp = array_namespace(x)
    norm = xp.sqrt(xp.vecdot(x, x))[..., None]  # (..., 1); vecdot makes no (..., D) temporary
    y = x / xp.maximum(norm, xp.asarray(eps, dtype=x.dtype))  # (..., D)
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
        dy: upstream gradient, shape ``(..., D)``, like ``y``.
        cache: the second output of :func:`l2_normalize`.

    Returns:
        dx: shape ``(..., D)``, same dtype as ``dy``.
    """
    y, norm, eps = cache
    xp = array_namespace(dy, y)
    if dy.shape != y.shape:
        raise ValueError(f"dy must have the shape of y, {tuple(y.shape)}, got {tuple(dy.shape)}")
    radial = xp.vecdot(dy, y)[..., None]  # (..., 1) component of dy along y
    clamped = norm < eps  # (..., 1) rows whose forward pass was x / eps: nothing to remove
    radial = xp.where(clamped, xp.zeros_like(radial), radial)
    dx = dy - y * radial  # (..., D)
    return dx / xp.maximum(norm, xp.asarray(eps, dtype=norm.dtype))
