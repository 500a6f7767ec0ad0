"""Finite-difference gradient checks, for tests and for students' notebooks.

A hand-derived backward pass is only trusted once it agrees with the
centred difference ``(f(x + h) - f(x - h)) / 2h``, whose error is O(h^2)
(CS231n's ``gradient_check.py``).  Run checks in float64: in float32 the
rounding error of ``f`` divided by ``2h`` swamps the comparison.

Every function here refuses what would make its verdict meaningless (a step
``h`` of 0, NaN or inf; a non-scalar or complex ``f()``; arrays of different
shapes; ``None``) with a ``TypeError`` or ``ValueError`` that names the argument.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping

import array_api_compat
import numpy as np

from numclip.backend import as_number, to_numpy

__all__ = ["numerical_gradient", "rel_error", "directional_check", "check_gradients"]


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    r"""Centred-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    .. math:: \frac{\partial f}{\partial x_k} \approx \frac{f(x + h e_k) - f(x - h e_k)}{2h}

    ``f`` takes no arguments and reads ``x``, which is perturbed *in place*
    one entry at a time and restored afterwards (so ``f`` can close over
    several arrays and you check them one by one).

    Args:
        f: function returning a finite real number computed from ``x``.
        x: writeable NumPy float64 array of any shape, finite (float32 gives
            meaningless results).
        h: step size, a positive finite number.

    Returns:
        array of ``x``'s shape and dtype.
    """
    _check_f(f)
    _check_x(x)
    h = _as_step(h)
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        saved = x[k]
        if saved + h == saved or saved - h == saved:
            raise ValueError(f"h = {h} is lost to rounding next to x[{k}] = {saved}; "
                             "use a larger h")
        try:
            x[k] = saved + h
            f_plus = _call(f)
            x[k] = saved - h
            f_minus = _call(f)
        finally:
            x[k] = saved  # restore before anything else reads x, even after an error
        grad[k] = (f_plus - f_minus) / (2 * h)
    return grad


def rel_error(a, b) -> float:
    r"""Relative error :math:`\lVert a-b\rVert / \max(\lVert a\rVert + \lVert b\rVert, 10^{-300})`.

    Norms, not element by element: an entry that is zero up to rounding
    would otherwise dominate the verdict.  Below ``1e-7`` in float64 means
    the two gradients agree; around ``1e-2`` or more, one of them is wrong.
    Scalars, lists and 0-d arrays work too, from any array library; both must
    be real, finite and of one shape.
    """
    a, b = _as_real(a, "a"), _as_real(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    with np.errstate(over="ignore"):  # norms beyond 1e308 are caught just below
        scale = float(np.linalg.norm(a) + np.linalg.norm(b))
        diff = float(np.linalg.norm(a - b))
    if not (math.isfinite(scale) and math.isfinite(diff)):
        raise ValueError("a and b are too large to compare: their norms overflow float64")
    return diff / max(scale, 1e-300)


def directional_check(f: Callable[[], float], x: np.ndarray, grad, h: float = 1e-5,
                      seed: int = 20_211) -> float:
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

    Args:
        f, x, h: as for :func:`numerical_gradient`; ``x`` non-empty.
        grad: the analytic gradient claimed for ``x``, of ``x``'s shape.
        seed: a non-negative int for the direction.

    Returns:
        the relative error between the two slopes.
    """
    _check_f(f)
    _check_x(x)
    if x.size == 0:
        raise ValueError("x must be non-empty: an empty array has no direction to check")
    grad = _as_real(grad, "grad")
    if grad.shape != x.shape:
        raise ValueError(f"grad must have the shape of x, {x.shape}, got {grad.shape}")
    h = _as_step(h)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    v = np.random.default_rng(int(seed)).standard_normal(x.shape)
    v /= np.linalg.norm(v)
    if np.array_equal(x + h * v, x) or np.array_equal(x - h * v, x):
        raise ValueError(f"h = {h} is lost to rounding next to x (largest |x| = "
                         f"{np.max(np.abs(x)):.3g}): x + h v == x; use a larger h")
    saved = x.copy()
    try:
        x[...] = saved + h * v
        f_plus = _call(f)
        x[...] = saved - h * v
        f_minus = _call(f)
    finally:
        x[...] = saved
    return rel_error((f_plus - f_minus) / (2 * h), np.sum(grad * v))


def check_gradients(f: Callable[[], float], arrays: Mapping, grads: Mapping,
                    h: float = 1e-6) -> dict:
    """Relative error of each analytic gradient in ``grads`` against finite differences.

    Args:
        f: function of no arguments returning the scalar whose gradients are checked.
        arrays: name -> float64 array that ``f`` reads (perturbed in place); at least one.
        grads: name -> the analytic gradient claimed for that array; a key for
            every name in ``arrays`` (more keys are fine: they are not checked).
        h: step size, as for :func:`numerical_gradient`.

    Returns:
        name -> relative error (see :func:`rel_error`).
    """
    _check_f(f)
    for name, value in (("arrays", arrays), ("grads", grads)):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a dict of name -> array, got {type(value).__name__}")
    if not arrays:
        raise ValueError("arrays must name at least one array: an empty check cannot fail")
    missing = [name for name in arrays if name not in grads]
    if missing:
        raise ValueError(f"grads has no gradient for {missing}; it has {sorted(map(str, grads))}")
    for name, x in arrays.items():
        _check_x(x, f"arrays[{name!r}]")
        if x.size == 0:
            raise ValueError(f"arrays[{name!r}] must be non-empty: an empty check cannot fail")
        grad = _as_real(grads[name], f"grads[{name!r}]")
        if grad.shape != x.shape:
            raise ValueError(f"grads[{name!r}] must have the shape of arrays[{name!r}], "
                             f"{x.shape}, got {grad.shape}")
    h = _as_step(h)
    return {name: rel_error(grads[name], numerical_gradient(f, x, h)) for name, x in arrays.items()}


def _check_f(f):
    if not callable(f):
        raise TypeError(f"f must be a function of no arguments, got {type(f).__name__}")
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):  # some builtins have none: calling f will tell
        return
    try:
        signature.bind()
    except TypeError:
        raise TypeError(f"f must be a function of no arguments (it reads x itself), got "
                        f"{getattr(f, '__name__', type(f).__name__)}{signature}; wrap it: "
                        "lambda: f(x)") from None


def _check_x(x, name="x"):
    """``x`` is perturbed in place: a writeable, finite float64 NumPy array."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(f"{name} must be a float64 NumPy array, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if not x.flags.writeable:
        raise ValueError(f"{name} must be writeable: it is perturbed in place")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")


def _as_step(h) -> float:
    """A step size: a positive finite real number (not a bool, not an array)."""
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or isinstance(h, np.ndarray):
        raise TypeError(f"h must be a positive real number, got {type(h).__name__}")
    h = as_number(h, "h")  # 10**400 becomes inf, refused below
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"h must be a positive finite number, got {h}")
    return h


def _as_real(a, name):
    """``a`` (a number, list or array of any library) as a finite float64 NumPy array."""
    if a is None or isinstance(a, str | bytes):
        raise TypeError(f"{name} must be a real number or array, got {type(a).__name__}")
    if array_api_compat.is_array_api_obj(a):
        a = to_numpy(a)
    try:
        a = np.asarray(a)
    except ValueError:
        raise ValueError(f"{name} must be a rectangular array of numbers") from None
    if a.dtype.kind not in "iuf":  # bool, complex (its imaginary part would be lost), object
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype == np.float16:  # numclip's one float16 policy (backend.as_float_array)
        raise TypeError(f"{name} has dtype float16, which numclip does not compute in; "
                        "use float32 or float64")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _call(f) -> float:
    """``f()`` as a float: one real number, finite (a NaN would pass every comparison as False)."""
    value = f()
    if array_api_compat.is_array_api_obj(value):
        value = to_numpy(value)
    if isinstance(value, bool | np.bool_):
        raise TypeError("f must return a real number, got a bool")
    try:
        out = np.asarray(value)
    except (TypeError, ValueError):
        out = None
    if out is None or out.size != 1 or out.dtype.kind not in "iuf":
        what = type(value).__name__ if out is None else f"{out.dtype} of shape {out.shape}"
        raise TypeError(f"f must return a single real number, got {what}")
    out = float(out.reshape(()))
    if not math.isfinite(out):
        raise ValueError(f"f returned {out}: the function is not finite at the perturbed x")
    return out
