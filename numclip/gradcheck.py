"""Finite-difference gradient checks, for tests and for students' notebooks.

A hand-derived backward pass is only trusted once it agrees with the
centred difference ``(f(x + h) - f(x - h)) / 2h``, whose error is O(h^2)
(CS231n's ``gradient_check.py``).  Run checks in float64: in float32 the
rounding error of ``f`` divided by ``2h`` swamps the comparison.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_gradient", "rel_error", "directional_check", "check_gradients"]


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    r"""Centred-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    .. math:: \frac{\partial f}{\partial x_k} \approx \frac{f(x + h e_k) - f(x - h e_k)}{2h}

    ``f`` takes no arguments and reads ``x``, which is perturbed *in place*
    one entry at a time and restored afterwards (so ``f`` can close over
    several arrays and you check them one by one).

    Args:
        f: function returning a real number computed from ``x``.
        x: NumPy float64 array of any shape (float32 gives meaningless results).
        h: step size.

    Returns:
        array of ``x``'s shape and dtype.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError("x must be a float64 NumPy array, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        saved = x[k]
        x[k] = saved + h
        f_plus = float(f())
        x[k] = saved - h
        f_minus = float(f())
        x[k] = saved  # restore before anything else reads x
        grad[k] = (f_plus - f_minus) / (2 * h)
    return grad


def rel_error(a, b) -> float:
    r"""Relative error :math:`\lVert a-b\rVert / \max(\lVert a\rVert + \lVert b\rVert, 10^{-300})`.

    Norms, not element by element: an entry that is zero up to rounding
    would otherwise dominate the verdict.  Below ``1e-7`` in float64 means
    the two gradients agree; around ``1e-2`` or more, one of them is wrong.
    Scalars and 0-d arrays work too.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / max(scale, 1e-300))


def directional_check(f: Callable[[], float], x: np.ndarray, grad: np.ndarray,
                      h: float = 1e-5, seed: int = 20_211) -> float:
    r"""Compare ``grad`` with ``f``'s slope along one random unit direction ``v``.

    .. math:: \frac{f(x + h v) - f(x - h v)}{2h} \approx \langle \nabla f, v\rangle

    Two evaluations of ``f`` instead of two per entry, so it scales to big
    arrays; a wrong gradient passes only if its error happens to be
    orthogonal to ``v``, which a random ``v`` makes unlikely.  The seed is
    deliberately not 0: drawn from ``default_rng(0)``, ``v`` would point
    along an ``x`` made the same way, and for a loss of normalized rows that
    direction changes nothing.  ``h`` is larger than for
    :func:`numerical_gradient` because one slope along a unit direction is
    small next to the rounding of a loss summed over many entries.

    Returns:
        the relative error between the two slopes.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError("x must be a float64 NumPy array")
    v = np.random.default_rng(seed).standard_normal(x.shape)
    v /= np.linalg.norm(v)
    saved = x.copy()
    x[...] = saved + h * v
    f_plus = float(f())
    x[...] = saved - h * v
    f_minus = float(f())
    x[...] = saved
    return rel_error((f_plus - f_minus) / (2 * h), np.sum(np.asarray(grad) * v))


def check_gradients(f: Callable[[], float], arrays: dict, grads: dict,
                    h: float = 1e-6) -> dict:
    """Relative error of each analytic gradient in ``grads`` against finite differences.

    Args:
        f: function of no arguments returning the scalar whose gradients are checked.
        arrays: name -> float64 array that ``f`` reads (perturbed in place).
        grads: name -> the analytic gradient claimed for that array.

    Returns:
        name -> relative error (see :func:`rel_error`).
    """
    return {name: rel_error(grads[name], numerical_gradient(f, x, h)) for name, x in arrays.items()}
