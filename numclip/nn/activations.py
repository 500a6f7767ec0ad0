"""GELU (exact, with erf, as ``torch.nn.GELU``) and QuickGELU (OpenAI's CLIP weights).

OpenAI trained CLIP with QuickGELU, ``x * sigmoid(1.702 x)``, a cheap stand-in
for GELU; a checkpoint must run with the activation it was trained with, so
open_clip's configs say which (``quick_gelu``).  Derivations:
``docs/derivations.md#gelu-and-quickgelu``.
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from numclip.backend import array_namespace, as_bool, as_writable
from numclip.nn.validate import as_activation, as_cache, as_upstream

__all__ = ["gelu", "gelu_backward", "quick_gelu", "quick_gelu_backward", "ACTIVATIONS",
           "activation"]

QUICK_GELU_SLOPE = 1.702  # OpenAI's constant: sigmoid(1.702 x) is within 0.02 of Phi(x)


def gelu(x, *, validate: bool = True, inplace: bool = False):
    r"""The Gaussian error linear unit, exactly: :math:`x\,\Phi(x) = \tfrac{x}{2}
    \left(1 + \operatorname{erf}(x/\sqrt 2)\right)`.

    Args:
        x: float array of any shape.
        inplace: for inference: write y into ``x`` (a writable array) and keep no cache,
            which saves allocating (and, in a fresh page, faulting in) two arrays of x's size.

    Returns:
        y of ``x``'s shape and dtype, and the cache ``(x, Phi)`` (None with ``inplace``).
    """
    if validate:
        x = as_activation(x, "x")
    if as_bool(inplace, "inplace"):
        return _in_place(x, _times_normal_cdf), None
    y, cdf = _times_normal_cdf(x)  # x Phi(x), Phi(x)
    return y, (x, cdf, "gelu")


def gelu_backward(dy, cache):
    r"""Gradient of :func:`gelu`: :math:`g \left(\Phi(x) + x\,\varphi(x)\right)`,
    with :math:`\varphi(x) = e^{-x^2/2} / \sqrt{2\pi}` the normal density.
    """
    x, cdf = as_cache(cache, "cache", 2, "gelu")
    dy = as_upstream(dy, x.shape, x)
    xp = array_namespace(x)
    pdf = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # (same shape as x)
    return dy * (cdf + x * pdf)


def quick_gelu(x, *, validate: bool = True, inplace: bool = False):
    r"""QuickGELU: :math:`x\,\sigma(1.702\,x)`.

    The sigmoid is computed as :math:`\tfrac12(1 + \tanh(z/2))`, which equals
    :math:`1/(1+e^{-z})` and cannot overflow for large negative ``z``.

    Args:
        x, inplace: as for :func:`gelu`.

    Returns:
        y of ``x``'s shape and dtype, and the cache ``(x, sigmoid)`` (None with ``inplace``).
    """
    if validate:
        x = as_activation(x, "x")
    if as_bool(inplace, "inplace"):
        return _in_place(x, _times_sigmoid_of_slope), None
    y, s = _times_sigmoid_of_slope(x)  # x sigmoid(1.702 x), sigmoid(1.702 x)
    return y, (x, s, "quick_gelu")


def quick_gelu_backward(dy, cache):
    r"""Gradient of :func:`quick_gelu`:
    :math:`g \left(\sigma + 1.702\, x\, \sigma (1 - \sigma)\right)`."""
    x, s = as_cache(cache, "cache", 2, "quick_gelu")
    dy = as_upstream(dy, x.shape, x)
    dx = 1.0 - s  # in place from here: one temporary instead of five
    dx *= x
    dx *= QUICK_GELU_SLOPE
    dx += 1.0
    dx *= s  # s + 1.702 x s (1 - s)
    dx *= dy
    return dx


def _times_sigmoid_of_slope(x, out=None):
    """``(x s, s)`` with s = sigmoid(1.702 x) = (1 + tanh(0.851 x)) / 2; float32 NumPy arrays
    chunk by chunk, as :func:`_times_normal_cdf` and for the same reason (``out``: as there)."""
    if not _chunked(x, out):
        xp = array_namespace(x)
        s = xp.tanh((0.5 * QUICK_GELU_SLOPE) * x)  # in place below
        s += 1.0
        s *= 0.5
        return x * s, s
    flat = np.ascontiguousarray(x).reshape(-1)
    y, sig = _outputs(flat, out)
    for start in range(0, flat.size, _CHUNK):
        xc = flat[start:start + _CHUNK]
        s = sig[:xc.size] if out is not None else sig[start:start + _CHUNK]
        np.multiply(xc, np.float32(0.5 * QUICK_GELU_SLOPE), out=s)
        np.tanh(s, out=s)
        s += 1.0
        s *= 0.5
        np.multiply(xc, s, out=y[start:start + _CHUNK])  # while the chunk is in cache
    return y.reshape(x.shape), (None if out is not None else sig.reshape(x.shape))


def _in_place(x, times):
    """``x`` overwritten with ``times(x)[0]`` (x Phi(x) or x sigmoid(1.702 x)).

    Raises:
        ValueError: ``x`` is read-only (``inplace=True`` would have to copy it).
    """
    as_writable(x, "x")
    if _chunked(x, x):
        times(x, out=x)  # chunk by chunk: only a chunk-sized buffer for Phi
    else:
        x[...] = times(x)[0]
    return x


def _chunked(x, out) -> bool:
    """Whether the float32 chunk loop runs: a float32 NumPy array, C-contiguous if written
    into (``out``), as reshape(-1) must then be a view of it."""
    return (isinstance(x, np.ndarray) and x.dtype == np.float32
            and (out is None or x.flags.c_contiguous))


def _outputs(flat, out):
    """The chunk loop's ``(y, Phi)`` buffers: fresh arrays of ``flat``'s size, or with ``out``
    (``flat`` itself: y overwrites x) Phi as one chunk's scratch, as no cache is kept."""
    if out is None:
        return np.empty_like(flat), np.empty_like(flat)
    return flat, np.empty(min(_CHUNK, flat.size), dtype=np.float32)


# name -> (forward, backward): open_clip's quick_gelu=True picks "quick_gelu"
ACTIVATIONS = {"gelu": (gelu, gelu_backward), "quick_gelu": (quick_gelu, quick_gelu_backward)}


def activation(name: str):
    """The ``(forward, backward)`` pair of an activation named in :data:`ACTIVATIONS`.

    Raises:
        ValueError: any other name (or a name that is not a str).
    """
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def _times_normal_cdf(x, out=None):
    """``(x Phi(x), Phi(x))``, Phi(x) = (1 + erf(x / sqrt 2)) / 2 elementwise, as arrays of
    x's library.  ``out=x`` (float32 NumPy, C-contiguous): x Phi(x) overwrites x, and Phi,
    computed a chunk at a time, comes back as None."""
    if _chunked(x, out):
        return _times_normal_cdf_float32(x, out)
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    return x * cdf, cdf


def _erf(x):
    """erf elementwise, in ``x``'s library (the array API has none): SciPy's (CuPy's
    cupyx.scipy on a GPU), accurate to a few ulp in float64.  float32 NumPy arrays do
    not come here: :func:`_times_normal_cdf_float32` is 10x faster than SciPy's loop."""
    if array_api_compat.is_cupy_array(x):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    import scipy.special  # here: import numclip must not pay for SciPy

    if isinstance(x, np.ndarray):
        return scipy.special.erf(x)
    xp = array_namespace(x)  # array-api-strict and other libraries: through the host
    return xp.asarray(scipy.special.erf(np.from_dlpack(x)), dtype=x.dtype)


# Phi(x) ~ (1 + tanh(x R(x^2))) / 2 with R of degree 6, fitted on [-6, 6] by
# tests/fit_gelu.py (two terms of R give GELU's well-known tanh approximation).  At +-6
# x R(x^2) is +-11.8, where float32 tanh is +-1, and R increases on [0, inf) (R' has no
# root there), so beyond 6 it only grows: no input needs clipping.  On 2 million points of
# [-8, 8] the fit is within 2.9e-8 of Phi in float64; the float32 passes add their
# rounding (9.7e-8 in all on a Sapphire Rapids Xeon; tests/test_nn.py allows 2.5e-7).
_TANH_R = np.array([7.978849415086631e-01, 3.633308432611074e-02, -3.259466243861322e-05,
                    -5.530634216363263e-05, 3.964774740068568e-06, -1.322659996648289e-07,
                    1.756251644789655e-09], dtype=np.float32)

_CHUNK = 1 << 15  # elements per pass: 128 KiB of float32 stays in cache from pass to pass


def _times_normal_cdf_float32(x, out=None):
    """:func:`_times_normal_cdf` for float32 NumPy arrays, by the fit above: 18 passes,
    each a multiply, an add or NumPy's vectorised tanh, run on chunks that stay in cache
    (over a whole (B, L, 4D) array each pass would go to memory and back)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    y, cdf = _outputs(flat, out)
    x2 = np.empty(min(_CHUNK, flat.size), dtype=np.float32)
    # |x| > 1.8e19: x^2 is inf, and so is every Horner step (each adds a finite number to
    # inf, or multiplies inf by inf); x R is then +-inf and tanh +-1, as it is from |x| = 6
    with np.errstate(over="ignore"):
        for start in range(0, flat.size, _CHUNK):
            xc = flat[start:start + _CHUNK]
            x2c = x2[:xc.size]
            r = cdf[:xc.size] if out is not None else cdf[start:start + _CHUNK]
            np.multiply(xc, xc, out=x2c)
            np.multiply(x2c, _TANH_R[-1], out=r)
            for c in _TANH_R[-2:0:-1]:  # Horner, in place: each step is one pass
                r += c
                r *= x2c
            r += _TANH_R[0]
            r *= xc  # h(x) = atanh(erf(x / sqrt 2))
            np.tanh(r, out=r)
            r += 1.0
            r *= 0.5  # Phi(x)
            np.multiply(xc, r, out=y[start:start + _CHUNK])  # while in cache
    return y.reshape(x.shape), (None if out is not None else cdf.reshape(x.shape))
