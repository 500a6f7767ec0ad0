import importlib

import array_api_strict
import numpy as np
import pytest
import scipy.special
from conftest import (
    FN,
    U,
    assert_on_backend,
    assert_table_covers,
    assert_within,
    bad,
    check_bad_row,
    put,
)

from numclip import (
    log_softmax,
    log_softmax_backward,
    logsumexp,
    softmax,
    softmax_backward,
    to_numpy,
)
from numclip.gradcheck import check_gradients

softmax_module = importlib.import_module("numclip.softmax")  # numclip.softmax is the function
rng = np.random.default_rng(2)

# Error budgets, in units of u, for logits z of largest size M, n entries along the axis,
# counting both rounding z to the dtype (u M) and the computation; each is derived once
# here and used below.
#   lse = m + log(sum exp(z - m)):  rounding z moves lse by u M (lse is 1-Lipschitz);
#     z - m costs u |z - m| <= 2 u M, exp FN u, the sum of n terms >= 1 n u, the log FN u
#     more, m + (...) u |lse| <= u (M + log n):  4 M + n + 2 FN + 2 (absolute).
#   softmax p = e / sum(e): log p moves by 2 u M from the rounded z, and 2 u M + FN u + n u
#     + u from the computation:  4 M + n + FN + 1 (relative).
#   log_softmax = z - lse: u M + the lse budget + u |log p| <= u (2 M + log n):
#     7 M + 2 n + 2 FN + 2 (absolute).


def lse_bound(m, n):
    return 4 * m + n + 2 * FN + 2


def softmax_bound(m, n):
    return 4 * m + n + FN + 1


def log_softmax_bound(m, n):
    return 7 * m + 2 * n + 2 * FN + 2


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_matches_scipy(xp, dtype_name, axis):
    z = rng.standard_normal((4, 6)) * 5
    zx = put(xp, z, dtype_name)
    u, m, n = U[dtype_name], np.max(np.abs(z)), z.shape[axis]
    # twice each budget: SciPy's float64 reference rounds as much as ours in float64
    checks = [(logsumexp(zx, axis=axis), scipy.special.logsumexp(z, axis=axis),
               2 * lse_bound(m, n) * u),
              (softmax(zx, axis=axis), p := scipy.special.softmax(z, axis=axis),
               2 * softmax_bound(m, n) * u * p),
              (log_softmax(zx, axis=axis), scipy.special.log_softmax(z, axis=axis),
               2 * log_softmax_bound(m, n) * u)]
    for ours, theirs, bound in checks:
        assert_on_backend(ours, zx)
        assert_within(ours, theirs, bound)


def test_keepdims():
    z = rng.standard_normal((3, 4))
    assert logsumexp(z, axis=1, keepdims=True).shape == (3, 1)
    assert logsumexp(z, axis=0).shape == (4,)
    assert logsumexp(z, axis=np.int64(0), keepdims=np.True_).shape == (1, 4)


def test_no_overflow_for_logits_in_the_thousands(xp, dtype_name):
    z = np.array([[1000.0, 999.0, -1000.0], [-5000.0, 3000.0, 2999.0]])
    p = to_numpy(softmax(put(xp, z, dtype_name)))
    logp = to_numpy(log_softmax(put(xp, z, dtype_name)))
    lse = to_numpy(logsumexp(put(xp, z, dtype_name)))
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(logp)) and np.all(np.isfinite(lse))
    np.testing.assert_allclose(p, scipy.special.softmax(z, axis=1), rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(lse, scipy.special.logsumexp(z, axis=1), rtol=1e-6)
    # log_softmax keeps the tiny probability that softmax rounds to 0
    assert logp[0, 2] == pytest.approx(-2000.0 - np.log1p(np.exp(-1.0)), rel=1e-6)


@pytest.mark.parametrize("axis", [0, 1])
def test_backward_matches_finite_differences_float64(axis):
    z = rng.standard_normal((3, 5))
    w = rng.standard_normal((3, 5))
    errors = check_gradients(lambda: np.sum(w * softmax(z, axis=axis)), {"z": z},
                             {"z": softmax_backward(w, softmax(z, axis=axis), axis=axis)})
    errors |= {"log": check_gradients(
        lambda: np.sum(w * log_softmax(z, axis=axis)), {"z": z},
        {"z": log_softmax_backward(w, log_softmax(z, axis=axis), axis=axis)})["z"]}
    assert max(errors.values()) < 1e-7, errors


def test_backward_on_every_backend(xp, dtype_name):
    z, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    zx, wx = put(xp, z, dtype_name), put(xp, w, dtype_name)
    dz = softmax_backward(wx, softmax(zx))
    dz_log = log_softmax_backward(wx, log_softmax(zx))
    assert_on_backend(dz, zx)
    assert_on_backend(dz_log, zx)
    u, m, n, g = U[dtype_name], np.max(np.abs(z)), z.shape[1], np.max(np.abs(w))
    # softmax: dz = p (w - s), s = sum_k w_k p_k.  With p off by a relative budget e_p,
    # s is off by g (e_p + n u) and w - s by (u + e_p) 2 g: |d dz| <= 4 g (e_p + (n + 2) u).
    # log_softmax: dz = w - p sum_k w_k; p = exp(logp) is off by e = (logp budget + FN) u,
    # sum_k w_k by n u n g: |d dz| <= u g + n g (e + n u).  Twice each: SciPy-free, but the
    # float64 reference rounds as much as ours in float64.
    e_p = softmax_bound(m, n) * u
    e_log = (log_softmax_bound(m, n) + FN) * u
    assert_within(dz, softmax_backward(w, softmax(z)), 2 * 4 * g * (e_p + (n + 2) * u))
    assert_within(dz_log, log_softmax_backward(w, log_softmax(z)),
                  2 * (u * g + n * g * (e_log + n * u)))


@pytest.mark.parametrize("axis", [0, -1])
def test_inplace_writes_the_very_same_numbers_into_z(xp, dtype_name, axis):
    """inplace=True (attention's scores) returns z itself, holding softmax(z)'s numbers bit
    for bit, on every backend and on views that are not contiguous, masked logits too."""
    z = rng.standard_normal((4, 6)) * 5
    for zx in (put(xp, z, dtype_name), put(xp, np.repeat(z, 2, axis=1), dtype_name)[:, ::2]):
        zx[1, 2] = float(np.finfo(dtype_name).min) / 4  # as attention's mask: a weight of exactly 0
        want = to_numpy(softmax(zx, axis=axis))
        got = softmax(zx, axis=axis, inplace=True)
        assert got is zx
        np.testing.assert_array_equal(to_numpy(zx), want)


def test_lists_fortran_order_and_strided_views_work():
    z = rng.standard_normal((4, 6))
    want = softmax(z, axis=0)
    for view in (z.tolist(), np.asfortranarray(z), np.repeat(z, 2, axis=1)[:, ::2]):
        assert_within(softmax(view, axis=0), want, 2 * softmax_bound(3.0, 4) * U["float64"] * want)
    p = softmax(z)
    dz = softmax_backward(np.asfortranarray(np.ones_like(z)), np.asfortranarray(p))
    assert_within(dz, 0.0, 8 * 6 * U["float64"])  # a constant upstream gradient moves nothing


Z = np.zeros((2, 3))
P = softmax(Z)
LOGP = log_softmax(Z)
READ_ONLY = np.zeros((2, 3))
READ_ONLY.flags.writeable = False

# the forward functions share one validator, so each row is repeated for all three
_FORWARD_ROWS = [
    (dict(z=np.array([[1.0, np.nan]])), ValueError, "z contains NaN"),
    (dict(z=np.array([[1.0, np.inf]])), ValueError, "z contains NaN or infinite"),
    (dict(z=np.zeros((2, 0))), ValueError, "z must be non-empty, got shape (2, 0)"),
    (dict(z=np.zeros((0, 2))), ValueError, "z must be non-empty"),
    (dict(z=Z, axis=2), ValueError, "axis must be an int in [-2, 2)"),
    (dict(z=Z, axis=-3), ValueError, "axis must be an int in [-2, 2)"),
    (dict(z=Z, axis=1.0), TypeError, "axis must be an int"),
    (dict(z=Z, axis=1.5), TypeError, "axis must be an int"),
    (dict(z=Z, axis=True), TypeError, "axis must be an int"),
    (dict(z=Z, axis=None), TypeError, "axis must be an int"),
    (dict(z=Z, axis="1"), TypeError, "axis must be an int"),
    (dict(z=np.array(3.0)), ValueError, "z must have at least one axis"),
    (dict(z=np.array([1, 2])), TypeError, "z must have a real floating dtype"),
    (dict(z=np.array([1 + 1j])), TypeError, "z must have a real floating dtype"),
    (dict(z=np.array([True])), TypeError, "z must have a real floating dtype"),
    (dict(z=np.array([None])), TypeError, "z must have a real floating dtype"),
    (dict(z=np.zeros(2, np.float16)), TypeError, "float32"),
    (dict(z=None), TypeError, "z must be an array"),
    (dict(z="logits"), TypeError, "z must be an array"),
]
BAD = [bad(fn, row["z"], *([row["axis"]] if "axis" in row else []), error=error, words=words)
       for fn in (logsumexp, softmax, log_softmax) for row, error, words in _FORWARD_ROWS]
BAD += [
    bad(softmax, Z, inplace="yes", error=TypeError, words="inplace must be True or False"),
    bad(softmax, Z, inplace=1, error=TypeError, words="inplace must be True or False"),
    bad(softmax, READ_ONLY, inplace=True, error=ValueError,
        words=("z is read-only", "inplace=True needs a writable array")),
    bad(logsumexp, Z, keepdims="yes", error=TypeError, words="keepdims must be True or False"),
    bad(logsumexp, Z, keepdims=1, error=TypeError, words="keepdims must be True or False"),
    bad(logsumexp, Z, keepdims=None, error=TypeError, words="keepdims must be True or False"),
    bad(softmax_backward, np.ones((2, 3)), np.ones((3, 2)) / 2, error=ValueError,
        words="dp must have the shape of p"),
    bad(softmax_backward, np.full((2, 3), np.nan), P, error=ValueError, words="dp contains NaN"),
    bad(softmax_backward, np.full((2, 3), np.inf), P, error=ValueError, words="dp contains NaN"),
    bad(softmax_backward, np.ones((2, 3), complex), P, error=TypeError,
        words="dp must have a real floating dtype"),
    bad(softmax_backward, np.ones((2, 3), bool), P, error=TypeError,
        words="dp must have a real floating dtype"),
    bad(softmax_backward, np.ones((2, 3), object), P, error=TypeError,
        words="dp must have a real floating dtype"),
    bad(softmax_backward, None, P, error=TypeError, words="dp must be an array"),
    bad(softmax_backward, np.ones((2, 3), np.float32), P, error=TypeError,
        words=("dp must have the dtype of p", "float64", "float32")),
    bad(softmax_backward, np.ones((2, 3)), None, error=TypeError, words="p must be an array"),
    bad(softmax_backward, np.ones((2, 3)), np.full((2, 3), np.nan), error=ValueError,
        words="p contains NaN"),
    bad(softmax_backward, np.ones((2, 3)), 4 * P, error=ValueError,
        words="p must be the output of softmax"),
    bad(softmax_backward, np.ones((2, 3)), -P, error=ValueError,
        words="p must be the output of softmax"),
    bad(softmax_backward, np.ones(()), np.ones(()), error=ValueError,
        words="p must have at least one axis"),
    bad(softmax_backward, np.ones((2, 3)), P, 2, error=ValueError, words="axis must be an int"),
    bad(softmax_backward, np.ones((2, 3)), P, 1.5, error=TypeError, words="axis must be an int"),
    bad(softmax_backward, np.ones((2, 3)), P, True, error=TypeError, words="axis must be an int"),
    bad(log_softmax_backward, np.ones((2, 3)), np.ones((3, 2)) - 2, error=ValueError,
        words="dlogp must have the shape of logp"),
    bad(log_softmax_backward, np.full((2, 3), np.nan), LOGP, error=ValueError,
        words="dlogp contains NaN"),
    bad(log_softmax_backward, np.full((2, 3), -np.inf), LOGP, error=ValueError,
        words="dlogp contains NaN"),
    bad(log_softmax_backward, np.ones((2, 3), complex), LOGP, error=TypeError,
        words="dlogp must have a real floating dtype"),
    bad(log_softmax_backward, np.ones((2, 3), bool), LOGP, error=TypeError,
        words="dlogp must have a real floating dtype"),
    bad(log_softmax_backward, np.ones((2, 3), object), LOGP, error=TypeError,
        words="dlogp must have a real floating dtype"),
    bad(log_softmax_backward, None, LOGP, error=TypeError, words="dlogp must be an array"),
    bad(log_softmax_backward, np.ones((2, 3), np.float32), LOGP, error=TypeError,
        words=("dlogp must have the dtype of logp", "float64", "float32")),
    bad(log_softmax_backward, np.ones((2, 3)), "logp", error=TypeError,
        words="logp must be an array"),
    bad(log_softmax_backward, np.ones((2, 3)), -LOGP, error=ValueError,
        words="logp must be the output of log_softmax"),
    bad(log_softmax_backward, np.ones((2, 3)), LOGP, -3, error=ValueError,
        words="axis must be an int"),
    bad(log_softmax_backward, np.ones((2, 3)), LOGP, 0.0, error=TypeError,
        words="axis must be an int"),
    # the library is checked before the dtype (comparing dtypes across libraries warns)
    bad(softmax_backward, array_api_strict.asarray(np.ones((2, 3))), P, error=TypeError,
        words="dp (array_api_strict) and p (numpy) cannot be mixed"),
    bad(log_softmax_backward, np.ones((2, 3)), array_api_strict.asarray(LOGP), error=TypeError,
        words="dlogp (numpy) and logp (array_api_strict) cannot be mixed"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(softmax_module, BAD)
