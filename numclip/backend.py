"""Array-backend dispatch and input validation.

Every array function in numclip is written once against the Python array API
standard: it asks ``xp = array_namespace(x)`` for the module that owns ``x``
(NumPy, CuPy, array-api-strict, ...) and calls ``xp.exp``, ``xp.sum``, ...
from it.  Only functions that also exist in plain NumPy 2 are used, so a
student can replace ``xp`` with ``np`` and the code still runs.

The validators below turn bad input into a ``TypeError`` or ``ValueError``
that names the argument, instead of a NaN or a broadcasting surprise three
functions later.
"""

from __future__ import annotations

import math
import numbers

import array_api_compat
import numpy as np

__all__ = [
    "array_namespace",
    "to_numpy",
    "as_float_array",
    "as_matrix",
    "as_embedding_pair",
    "as_log_scale",
    "temperature_to_logit_scale",
    "logit_scale_to_temperature",
]


def array_namespace(*arrays):
    """Return the array-API namespace shared by ``arrays`` (Python scalars are ignored).

    NumPy arrays map to ``array_api_compat.numpy``, which behaves like NumPy 2
    itself; CuPy arrays to ``array_api_compat.cupy``.
    """
    arrays = [a for a in arrays if type(a) not in (bool, int, float)]  # np.float64 counts
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError as err:
        raise TypeError(f"arrays from different libraries cannot be mixed: {err}") from None


def to_numpy(x) -> np.ndarray:
    """Copy an array from any backend (CuPy on a GPU included) into a NumPy array."""
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if not array_api_compat.is_array_api_obj(x):
        raise TypeError(f"x must be an array, got {type(x).__name__}")
    return np.from_dlpack(x)  # array-api-strict and other DLPack producers


def as_float_array(x, name: str):
    """Return ``x`` as a non-empty floating-point array with only finite values.

    Lists and tuples become float64 NumPy arrays (so the course page's
    ``[[1, 0, 0], ...]`` works as typed).  Arrays keep their library and dtype:
    an integer *array* is rejected rather than silently cast, because its
    dtype was somebody's choice.
    """
    if isinstance(x, list | tuple):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric, got a {type(x).__name__} "
                            "that does not convert to a float array") from None
    if not array_api_compat.is_array_api_obj(x):
        raise TypeError(f"{name} must be an array (NumPy, CuPy, ...), "
                        f"got {type(x).__name__}")
    xp = array_namespace(x)
    if math.prod(x.shape) == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), "
                        f"got {x.dtype}; convert it first, e.g. x.astype(np.float32)")
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def as_matrix(x, name: str):
    """Validate ``x`` as a non-empty 2-D float array of finite values, shape ``(N, D)``."""
    x = as_float_array(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, D), got shape {tuple(x.shape)}")
    return x


def as_embedding_pair(image_embeds, text_embeds, *, paired: bool = True):
    """Validate image and text embeddings: ``(N, D)`` and ``(M, D)``, one dtype.

    ``paired=True`` also asks ``M == N``: row ``i`` of each is one image-text pair.
    """
    image_embeds = as_matrix(image_embeds, "image_embeds")
    text_embeds = as_matrix(text_embeds, "text_embeds")
    if paired and image_embeds.shape[0] != text_embeds.shape[0]:
        raise ValueError("image_embeds and text_embeds must hold the same number of pairs N, "
                         f"got {image_embeds.shape[0]} and {text_embeds.shape[0]}")
    if image_embeds.shape[1] != text_embeds.shape[1]:
        raise ValueError("image_embeds and text_embeds must have the same width D, got "
                         f"{image_embeds.shape[1]} and {text_embeds.shape[1]}")
    if image_embeds.dtype != text_embeds.dtype:
        raise TypeError("image_embeds and text_embeds must share a dtype, got "
                        f"{image_embeds.dtype} and {text_embeds.dtype}")
    return image_embeds, text_embeds


def as_log_scale(logit_scale, name: str = "logit_scale"):
    """Validate a log inverse temperature: a finite real Python number or 0-d float array.

    ``exp(logit_scale)`` must also be finite, or every logit would be inf.
    """
    if isinstance(logit_scale, bool) or not (
        isinstance(logit_scale, numbers.Real) or array_api_compat.is_array_api_obj(logit_scale)
    ):
        raise TypeError(f"{name} must be a real number or a 0-d array, "
                        f"got {type(logit_scale).__name__}")
    if isinstance(logit_scale, numbers.Real) and not array_api_compat.is_array_api_obj(logit_scale):
        value = float(logit_scale)
    else:
        if logit_scale.ndim != 0:
            raise ValueError(f"{name} must be a scalar (0-d array), got shape "
                             f"{tuple(logit_scale.shape)}")
        logit_scale = as_float_array(logit_scale, name)
        value = float(logit_scale)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value > math.log(np.finfo(np.float32).max):
        raise ValueError(f"{name} = {value} makes exp({name}) overflow float32; "
                         "CLIP clamps it at log(100) ≈ 4.605")
    return logit_scale


def temperature_to_logit_scale(tau: float) -> float:
    """Return ``log(1 / tau)``, the parametrisation CLIP learns (openai/CLIP).

    The course page's ``tau = 0.07`` gives ``logit_scale ≈ 2.6593``.
    """
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"tau must be a real number, got {type(tau).__name__}")
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau (the temperature) must be positive and finite, got {tau}")
    return -math.log(tau)


def logit_scale_to_temperature(logit_scale) -> float:
    """Return ``tau = exp(-logit_scale)``, the inverse of :func:`temperature_to_logit_scale`."""
    return math.exp(-float(as_log_scale(logit_scale)))
