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
from numclip.nn.validate import as_activation, as_cache

__all__ = ["gelu", "gelu_backward", "quick_gelu", "quick_gelu_backward", "ACTIVATIONS"]

QUICK_GELU_SLOPE = 1.702  # OpenAI's constant: sigmoid(1.702 x) is within 0.02 of Phi(x)


def gelu(x):
    r"""The Gaussian error linear unit, exactly: :math:`x\,\Phi(x) = \tfrac{x}{2}
    \left(1 + \operatorname{erf}(x/\sqrt 2)\right)`.

    Args:
        x: float array of any shape.

    Returns:
        y of ``x``'s shape and dtype, and the cache ``(x, Phi)``.
    """
    x = as_activation(x, "x")
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))  # Phi(x), the standard normal CDF
    return x * cdf, (x, cdf)


def gelu_backward(dy, cache):
    r"""Gradient of :func:`gelu`: :math:`g \left(\Phi(x) + x\,\varphi(x)\right)`,
    with :math:`\varphi(x) = e^{-x^2/2} / \sqrt{2\pi}` the normal density.
    """
    x, cdf = as_cache(cache, "cache", 2, "gelu")
    dy = _as_upstream(dy, x)
    xp = array_namespace(x)
    pdf = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # (same shape as x)
    return dy * (cdf + x * pdf)


def quick_gelu(x):
    r"""QuickGELU: :math:`x\,\sigma(1.702\,x)`.

    The sigmoid is computed as :math:`\tfrac12(1 + \tanh(z/2))`, which equals
    :math:`1/(1+e^{-z})` and cannot overflow for large negative ``z``.

    Returns:
        y of ``x``'s shape and dtype, and the cache ``(x, sigmoid)``.
    """
    x = as_activation(x, "x")
    xp = array_namespace(x)
    s = 0.5 * (1.0 + xp.tanh(0.5 * QUICK_GELU_SLOPE * x))  # sigmoid(1.702 x)
    return x * s, (x, s)


def quick_gelu_backward(dy, cache):
    r"""Gradient of :func:`quick_gelu`:
    :math:`g \left(\sigma + 1.702\, x\, \sigma (1 - \sigma)\right)`."""
    x, s = as_cache(cache, "cache", 2, "quick_gelu")
    dy = _as_upstream(dy, x)
    return dy * (s + QUICK_GELU_SLOPE * x * s * (1.0 - s))


# name -> (forward, backward): open_clip's quick_gelu=True picks "quick_gelu"
ACTIVATIONS = {"gelu": (gelu, gelu_backward), "quick_gelu": (quick_gelu, quick_gelu_backward)}


def _as_upstream(dy, x):
    dy = as_activation(dy, "dy", x.ndim)
    if tuple(dy.shape) != tuple(x.shape) or dy.dtype != x.dtype:
        raise ValueError(f"dy must have the shape and dtype of x, {tuple(x.shape)} {x.dtype}, "
                         f"got {tuple(dy.shape)} {dy.dtype}")
    return dy


def _erf(x):
    """erf elementwise, in ``x``'s library: the array API has no erf, so SciPy's (CuPy's
    cupyx.scipy on a GPU), which are accurate to a few ulp in float32 and float64."""
    if array_api_compat.is_cupy_array(x):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    import scipy.special  # here: import numclip must not pay for SciPy

    if isinstance(x, np.ndarray):
        return scipy.special.erf(x)
    xp = array_namespace(x)  # array-api-strict and other libraries: through the host
    return xp.asarray(scipy.special.erf(np.from_dlpack(x)), dtype=x.dtype)
