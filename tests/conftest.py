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


# Bad (image_embeds, text_embeds) pairs every loss must refuse, naming the argument.
BAD_EMBEDDING_PAIRS = [
    (dict(img=np.ones((3, 2)), txt=np.ones((4, 2))), ValueError, "same number of pairs N"),
    (dict(img=np.ones((3, 2)), txt=np.ones((3, 5))), ValueError, "same width D"),
    (dict(img=np.ones((0, 2)), txt=np.ones((0, 2))), ValueError, "image_embeds must be non-empty"),
    (dict(img=np.ones((2, 2, 2)), txt=np.ones((2, 2))), ValueError, "image_embeds must be 2-D"),
    (dict(img=np.ones((2, 2)), txt=np.full((2, 2), np.nan)), ValueError, "text_embeds contains"),
    (dict(img=np.ones((2, 2)), txt=np.ones((2, 2), dtype=np.float32)), TypeError, "share a dtype"),
    (dict(img="images", txt=np.ones((2, 2))), TypeError, "image_embeds must be an array"),
    (dict(img=np.ones((2, 2), dtype=int), txt=np.ones((2, 2))), TypeError, "floating dtype"),
]

# float32 keeps about 7 digits; results are compared to a float64 reference.
RTOL = {"float32": 2e-5, "float64": 1e-12}
