"""Shared fixtures: the array backends every core test runs on.

``xp`` is NumPy itself, array-api-strict (which rejects anything outside the
array API standard, so it proves the code is backend-clean), and CuPy when
CuPy and a GPU are present.
"""

import importlib

import numpy as np
import pytest

import numclip


def _cupy_or_skip():
    try:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no GPU")
    except Exception as err:  # ImportError, CUDA driver errors, ...
        pytest.skip(f"CuPy with a GPU is not available ({type(err).__name__})")
    return cupy


@pytest.fixture(params=["numpy", "array_api_strict", "cupy"])
def xp(request):
    if request.param == "cupy":
        return _cupy_or_skip()
    if request.param == "array_api_strict":
        return pytest.importorskip("array_api_strict")
    return np


@pytest.fixture(params=["float32", "float64"])
def dtype_name(request):
    return request.param


def put(xp, a, dtype_name="float64"):
    """Move host NumPy data ``a`` onto backend ``xp`` with the named dtype."""
    return xp.asarray(np.asarray(a, dtype=dtype_name), dtype=getattr(xp, dtype_name))


def assert_on_backend(out, like):
    """``out`` lives in ``like``'s namespace and has its dtype (float32 in, float32 out)."""
    assert numclip.array_namespace(out) is numclip.array_namespace(like)
    assert out.dtype == like.dtype, f"dtype changed: {like.dtype} in, {out.dtype} out"


# float32 keeps about 7 digits; results are compared to a float64 reference.
RTOL = {"float32": 2e-5, "float64": 1e-12}
