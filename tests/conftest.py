"""Shared fixtures: the array backends every core test runs on.

``xp`` is NumPy itself, array-api-strict (which rejects anything outside the
array API standard, so it proves the code is backend-clean), and CuPy when
CuPy and a GPU are present.
"""

import importlib
import inspect

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

# float32 keeps about 7 digits; results are compared to a float64 reference.  RTOL is
# 335 u in float32 and 9000 u in float64 (u below): a loose allowance for a few dozen
# roundings.  The core tests derive their own bounds from U instead; other tests use RTOL.
RTOL = {"float32": 2e-5, "float64": 1e-12}

# Unit roundoff u: one correctly rounded operation (+, *, /, sqrt) is off by at most u,
# relatively.  A dot product or a sum of n terms is off by at most about n u times the
# sum of the terms' sizes (Higham, "Accuracy and Stability of Numerical Algorithms",
# 3.1), whatever order BLAS or a SIMD loop adds them in: so bounds built from it hold
# on every CPU, unlike a tolerance measured once on one.
U = {"float32": 2.0**-24, "float64": 2.0**-53}
# exp, log and log1p are not correctly rounded: NumPy's SIMD loops, SciPy and CUDA keep
# them within 4 ulp, which is at most 8 u.
FN = 8


def assert_within(got, want, bound, what="result"):
    """``|got - want| <= bound`` everywhere (bound may be an array), saying by how much if not."""
    got, want = np.asarray(numclip.to_numpy(got), np.float64), np.asarray(want, np.float64)
    error = np.abs(got - want)
    ratio = float(np.max(error / np.broadcast_to(bound, error.shape)))
    assert ratio <= 1, f"{what}: off by up to {ratio:.3g} times the derived bound"


# ------------------------------------------------------------------- bad-input tables
# Each core module's tests hold one table of rows bad(fn, *args, error=..., words=...,
# **kwargs): calling fn(*args, **kwargs) must raise ``error`` (or a subclass) with a
# message that contains every one of ``words``.

def bad(fn, *args, error, words, **kwargs):
    words = (words,) if isinstance(words, str) else tuple(words)
    return pytest.param(fn, args, kwargs, error, words, id=f"{fn.__name__}: {words[0]}")


def check_bad_row(fn, args, kwargs, error, words):
    with pytest.raises(error) as info:
        fn(*args, **kwargs)
    missing = [w for w in words if w not in str(info.value)]
    assert not missing, f"{fn.__name__} raised {info.value!r}, which does not say {missing}"


def assert_table_covers(module, table):
    """Every function in ``module.__all__`` has at least one row in ``table``."""
    public = {name for name in module.__all__ if inspect.isfunction(getattr(module, name))}
    covered = {row.values[0].__name__ for row in table}
    assert public - covered == set(), f"{module.__name__} functions without bad-input rows"
