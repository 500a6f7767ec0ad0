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

from numclip.backend import array_namespace
from numclip.nn.validate import as_activation, as_cache, as_upstream

__all__ = ["gelu", "gelu_backward", "quick_gelu", "quick_gelu_backward", "ACTIVATIONS",
           "activation"]

QUICK_GELU_SLOPE = 1.702  # OpenAI's constant: sigmoid(1.702 x) is within 0.02 of Phi(x)


def gelu(x, *, validate: bool = True):
    r"""The Gaussian error linear unit, exactly: :math:`x\,\Phi(x) = \tfrac{x}{2}
    \left(1 + \operatorname{erf}(x/\sqrt 2)\right)`.

    Args:
        x: float array of any shape.

    Returns:
        y of ``x``'s shape and dtype, and the cache ``(x, Phi)``.
    """
    if validate:
        x = as_activation(x, "x")
    cdf = _normal_cdf(x)  # Phi(x)
    return x * cdf, (x, cdf, "gelu")


def gelu_backward(dy, cache):
    r"""Gradient of :func:`gelu`: :math:`g \left(\Phi(x) + x\,\varphi(x)\right)`,
    with :math:`\varphi(x) = e^{-x^2/2} / \sqrt{2\pi}` the normal density.
    """
    x, cdf = as_cache(cache, "cache", 2, "gelu")
    dy = as_upstream(dy, x.shape, x)
    xp = array_namespace(x)
    pdf = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # (same shape as x)
    return dy * (cdf + x * pdf)


def quick_gelu(x, *, validate: bool = True):
    r"""QuickGELU: :math:`x\,\sigma(1.702\,x)`.

    The sigmoid is computed as :math:`\tfrac12(1 + \tanh(z/2))`, which equals
    :math:`1/(1+e^{-z})` and cannot overflow for large negative ``z``.

    Returns:
        y of ``x``'s shape and dtype, and the cache ``(x, sigmoid)``.
    """
    if validate:
        x = as_activation(x, "x")
    s = _sigmoid_of_slope(x)  # sigmoid(1.702 x)
    return x * s, (x, s, "quick_gelu")


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


def _sigmoid_of_slope(x):
    """sigmoid(1.702 x) = (1 + tanh(0.851 x)) / 2; float32 NumPy arrays chunk by chunk,
    as :func:`_normal_cdf_float32` and for the same reason."""
    if not (isinstance(x, np.ndarray) and x.dtype == np.float32):
        xp = array_namespace(x)
        s = xp.tanh((0.5 * QUICK_GELU_SLOPE) * x)  # in place below
        s += 1.0
        s *= 0.5
        return s
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _CHUNK):
        s = out[start:start + _CHUNK]
        np.multiply(flat[start:start + _CHUNK], np.float32(0.5 * QUICK_GELU_SLOPE), out=s)
        np.tanh(s, out=s)
        s += 1.0
        s *= 0.5
    return out.reshape(x.shape)


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


def _normal_cdf(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 elementwise, as an array of x's library."""
    if isinstance(x, np.ndarray) and x.dtype == np.float32:
        return _normal_cdf_float32(x)
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def _erf(x):
    """erf elementwise, in ``x``'s library (the array API has none).

    float32 NumPy arrays use the rational approximation below (11 multiply-adds and a
    division, 3x cheaper than SciPy's scalar loop); everything else uses SciPy's
    erf (CuPy's cupyx.scipy on a GPU), accurate to a few ulp in float64.
    """
    if array_api_compat.is_cupy_array(x):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    if isinstance(x, np.ndarray) and x.dtype == np.float32:
        return _erf_float32(x)
    import scipy.special  # here: import numclip must not pay for SciPy

    if isinstance(x, np.ndarray):
        return scipy.special.erf(x)
    xp = array_namespace(x)  # array-api-strict and other libraries: through the host
    return xp.asarray(scipy.special.erf(np.from_dlpack(x)), dtype=x.dtype)


# erf(x) ~ x P(x^2) / Q(x^2) on [-4, 4], beyond which erf rounds to +-1 in float32: the
# minimax fit Eigen and XLA use for float32 erf.  Measured against float64 erf on 2
# million points of [-6, 6] (tests/test_nn.py): within 4.5e-7, 7.5 float32 ulps of 1.
_ERF_P = np.array([-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                   -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                   -1.60960333262415e-02], dtype=np.float32)
_ERF_Q = np.array([-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                   -7.37332916720468e-03, -1.42647390514189e-02], dtype=np.float32)


_CHUNK = 1 << 15  # elements per pass: 128 KiB of float32 stays in cache from pass to pass


def _normal_cdf_float32(x):
    """:func:`_normal_cdf` for float32 NumPy arrays: :func:`_erf_float32`'s passes, run on
    chunks that stay in cache (over a whole (B, L, 4D) array each pass would go to memory
    and back, and the 25 passes cost 3x the arithmetic)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    z, z2, q = (np.empty(min(_CHUNK, flat.size), dtype=np.float32) for _ in range(3))
    for start in range(0, flat.size, _CHUNK):
        n = min(_CHUNK, flat.size - start)
        zc, z2c, qc, p = z[:n], z2[:n], q[:n], out[start:start + n]
        np.multiply(flat[start:start + n], np.float32(1 / math.sqrt(2.0)), out=zc)
        np.clip(zc, -4, 4, out=zc)
        np.multiply(zc, zc, out=z2c)
        np.multiply(z2c, _ERF_P[0], out=p)
        p += _ERF_P[1]
        for c in _ERF_P[2:]:
            p *= z2c
            p += c
        p *= zc
        np.multiply(z2c, _ERF_Q[0], out=qc)
        qc += _ERF_Q[1]
        for c in _ERF_Q[2:]:
            qc *= z2c
            qc += c
        p /= qc  # erf(x / sqrt 2)
        p += 1.0
        p *= 0.5
    return out.reshape(x.shape)


def _erf_float32(x):
    x = np.clip(x, -4, 4)
    x2 = x * x
    p = x2 * _ERF_P[0] + _ERF_P[1]
    for c in _ERF_P[2:]:  # Horner, in place: each step is one pass over the array
        p *= x2
        p += c
    p *= x
    q = x2 * _ERF_Q[0] + _ERF_Q[1]
    for c in _ERF_Q[2:]:
        q *= x2
        q += c
    p /= q
    return p
