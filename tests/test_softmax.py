import numpy as np
import pytest
import scipy.special
from conftest import RTOL, assert_on_backend, put

from numclip import (
    log_softmax,
    log_softmax_backward,
    logsumexp,
    softmax,
    softmax_backward,
    to_numpy,
)
from numclip.gradcheck import check_gradients

rng = np.random.default_rng(2)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_matches_scipy(xp, dtype_name, axis):
    z = rng.standard_normal((4, 6)) * 5
    zx = put(xp, z, dtype_name)
    tol = dict(rtol=10 * RTOL[dtype_name], atol=10 * RTOL[dtype_name])
    for ours, theirs in [(logsumexp(zx, axis=axis), scipy.special.logsumexp(z, axis=axis)),
                         (softmax(zx, axis=axis), scipy.special.softmax(z, axis=axis)),
                         (log_softmax(zx, axis=axis), scipy.special.log_softmax(z, axis=axis))]:
        assert_on_backend(ours, zx)
        np.testing.assert_allclose(to_numpy(ours), theirs, **tol)


def test_keepdims():
    z = rng.standard_normal((3, 4))
    assert logsumexp(z, axis=1, keepdims=True).shape == (3, 1)
    assert logsumexp(z, axis=0).shape == (4,)


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
    tol = dict(rtol=10 * RTOL[dtype_name], atol=10 * RTOL[dtype_name])
    np.testing.assert_allclose(to_numpy(dz), softmax_backward(w, softmax(z)), **tol)
    np.testing.assert_allclose(to_numpy(dz_log), log_softmax_backward(w, log_softmax(z)), **tol)


@pytest.mark.parametrize("z, axis, error, match", [
    (np.array([[1.0, np.nan]]), -1, ValueError, "z contains NaN"),
    (np.array([[1.0, np.inf]]), -1, ValueError, "z contains NaN or infinite"),
    (np.zeros((2, 0)), -1, ValueError, r"z must be non-empty, got shape \(2, 0\)"),
    (np.zeros((0, 2)), -1, ValueError, "z must be non-empty"),
    (np.zeros((2, 3)), 2, ValueError, "axis must be an int"),
    (np.zeros((2, 3)), 1.0, ValueError, "axis must be an int"),
    (np.array(3.0), -1, ValueError, "z must have at least one axis"),
    (np.array([1, 2]), -1, TypeError, "z must have a real floating dtype"),
])
def test_bad_input_is_named(z, axis, error, match):
    for fn in (logsumexp, softmax, log_softmax):
        with pytest.raises(error, match=match):
            fn(z, axis=axis)


def test_backward_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match="dp must have the shape of p"):
        softmax_backward(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="dlogp must have the shape of logp"):
        log_softmax_backward(np.ones((2, 3)), np.ones((3, 2)))
