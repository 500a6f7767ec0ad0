"""Shared fixtures: the array backends every core test runs on.

``xp`` is NumPy itself, array-api-strict (which rejects anything outside the
array API standard, so it proves the code is backend-clean), and CuPy when
CuPy and a GPU are present.
"""

import importlib
import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest

import numclip


def open_clip_or_skip():
    """open_clip, or a skip: it may be missing, or installed beside a torchvision that
    does not load with this torch (a RuntimeError, not an ImportError)."""
    try:
        return importlib.import_module("open_clip")
    except Exception as err:
        pytest.skip(f"open_clip does not import here ({type(err).__name__}: {err})")


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
    if not isinstance(got, int | float):  # a gradient of a Python-float scale is a float
        got = numclip.to_numpy(got)
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
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
    """The error, and no warning on the way to it: NumPy's RuntimeWarnings before a clear
    message are noise the user has to read past (they turn into errors here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(error) as info:
            fn(*args, **kwargs)
    missing = [w for w in words if w not in str(info.value)]
    assert not missing, f"{fn.__name__} raised {info.value!r}, which does not say {missing}"


def assert_refused(call, error, words):
    """``call()`` raises ``error`` with each of ``words`` in its message: one row of a
    bad-input table whose rows are (public name, call, error, words)."""
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def assert_table_covers(module, table):
    """Every function in ``module.__all__`` has at least one row in ``table``."""
    public = {name for name in module.__all__ if inspect.isfunction(getattr(module, name))}
    covered = {row.values[0].__name__ for row in table}
    assert public - covered == set(), f"{module.__name__} functions without bad-input rows"


def public_callables(module):
    """Every function and class in ``module.__all__``, and every method of those classes
    that takes an argument (``Class.method``)."""
    names = set()
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            names |= {f"{name}.{m}" for m, f in vars(obj).items() if not m.startswith("_")
                      and callable(getattr(obj, m)) and len(inspect.signature(
                          getattr(obj, m)).parameters) > (0 if isinstance(f, classmethod) else 1)}
        if callable(obj):
            names.add(name)
    return names


def unwritable_folder(tmp_path) -> Path:
    """A folder in which no file can be created: a read-only one, or /proc for root (whom
    chmod does not stop); skip where neither can be set up."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/proc")):
        try:
            (candidate / ".probe").open("xb").close()
        except OSError:
            return candidate
        (candidate / ".probe").unlink()
    pytest.skip("no folder here refuses new files (root without /proc)")


# ------------------------------------------------------------- derived bounds of clip_loss

def clip_error_bounds(img, txt, logit_scale, dtype_name, normalize=True):
    """Worst-case rounding error of clip_loss in ``dtype_name`` against a float64 reference.

    Both are computed from the same float64 ``img`` and ``txt`` (N, D); the bounds count
    rounding them to the dtype, so they also hold for inputs that are already rounded.
    First order in u (second-order terms are below u^2 N^2 scale^2, negligible here).

    - A unit row Î is off by ``unit = (D/2 + 4) u`` per entry, relative: (D/2 + 3) u from
      its norm and division (test_normalize.py), u from rounding the input.
    - A logit S_ij = scale Î_i . T̂_j is off by ``sigma_ij = scale sum_k |Î_ik T̂_jk| (2 unit
      + (D + 1) u)``: both rows, the dot product of length D (Higham 3.1), the scale.
    - Each probability of either softmax is off by ``rho`` relatively: log p moves by at
      most twice the largest logit error (p depends on S_ij - lse), plus exp (FN u), the
      sum of N terms (N u) and a few roundings.
    - G = (P + Q)/2N - I/N: |G| <= A = (P + Q)/2N + I/N entrywise and |ΔG| <= rho A (the
      diagonal comes from the off-diagonal mass, so it has the same relative error).
    - L: sum_ij |G_ij| sigma_ij from the logits, plus the loss's own exp, sums, divisions
      and log1p per pair (2 FN + 2 N + 4) u.
    - dÎ = scale G T̂: scale (rho + unit + (N + 2) u) (A |T̂|); through the normalization
      dx_i = (dÎ_i - Î_i (Î_i . dÎ_i)) / r_i the error grows to at most (max + sum of it
      over the row) / r_i, plus the backward's own (2 D + 12) u |dÎ_i| / r_i.
    - ds = sum_i Î_i . dÎ_i (as the fused loss computes it): sum |Î| ε(dÎ) plus
      (N D + D/2 + 4) u sum |Î dÎ|.
    Everything is doubled: in float64 the reference itself rounds as much as the result.

    Returns:
        dict of bounds under the keys of clip_loss's result ("loss" and the grads' keys),
        arrays for the embeddings, floats otherwise.
    """
    import scipy.special

    u = U[dtype_name]
    n, d = img.shape
    scale = float(np.exp(float(logit_scale)))
    r_img = np.linalg.norm(img, axis=1, keepdims=True) if normalize else np.ones((n, 1))
    r_txt = np.linalg.norm(txt, axis=1, keepdims=True) if normalize else np.ones((n, 1))
    img, txt = img / r_img, txt / r_txt
    logits = scale * img @ txt.T  # (N, N)
    p, q = scipy.special.softmax(logits, axis=1), scipy.special.softmax(logits, axis=0)
    a = (p + q) / (2 * n) + np.eye(n) / n  # (N, N) bound on |G|
    g = (p + q) / (2 * n) - np.eye(n) / n  # (N, N) G itself
    unit = ((d / 2 + 4) if normalize else 1) * u
    sigma = scale * (np.abs(img) @ np.abs(txt).T) * (2 * unit + (d + 1) * u)  # (N, N)
    rho = 2 * np.max(sigma) + (FN + n + 4) * u
    loss = np.sum(a * sigma) + (2 * FN + 2 * n + 4) * u
    per_row = scale * (rho + unit + (n + 2) * u)
    err_img, err_txt = per_row * (a @ np.abs(txt)), per_row * (a.T @ np.abs(img))  # (N, D)
    dimg, dtxt = scale * g @ txt, scale * g.T @ img  # (N, D) gradients of Î and T̂
    dscale = (np.sum(np.abs(img) * err_img)
              + (n * d + d / 2 + 4) * u * np.sum(np.abs(img * dimg)))

    return {"loss": 2 * loss,
            "image_embeds": 2 * through_norm_bound(err_img, dimg, r_img, u, normalize),
            "text_embeds": 2 * through_norm_bound(err_txt, dtxt, r_txt, u, normalize),
            "logit_scale": 2 * dscale}


def through_norm_bound(err, dy, r, u, normalize):
    """The error bound of an embedding's gradient after l2_normalize_backward, from the
    bound ``err`` (N, D) on the gradient of the unit rows ``dy`` (N, D) of norm ``r``
    (N, 1): (max over the row + sum over the row) / r, plus the backward's own
    (2 D + 12) u |dy| / r; ``err`` itself when the loss did not normalize."""
    if not normalize:
        return err
    own = (2 * dy.shape[1] + 12) * u * np.linalg.norm(dy, axis=1, keepdims=True)
    return (np.max(err, axis=1, keepdims=True) + np.sum(err, axis=1, keepdims=True)
            + own) / r
