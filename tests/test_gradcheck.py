"""The checker itself must be able to fail: it is tested on deliberately wrong gradients."""

import array_api_strict
import numpy as np
import pytest
from conftest import assert_table_covers, bad, check_bad_row

from numclip import gradcheck, l2_normalize, l2_normalize_backward, softmax, softmax_backward
from numclip.gradcheck import check_gradients, directional_check, numerical_gradient, rel_error

rng = np.random.default_rng(4)


def test_numerical_gradient_of_a_known_function_and_restores_x():
    x = rng.standard_normal((3, 2))
    before = x.copy()
    grad = numerical_gradient(lambda: np.sum(x**3), x)
    # centred differences err by h^2 f'''(x)/6 = 1e-12, plus rounding of f (~1e-16 |f| / h)
    np.testing.assert_allclose(grad, 3 * before**2, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(x, before)


def test_rel_error():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error(0.0, 0.0) == 0.0
    assert rel_error(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(np.sqrt(2) / 2)
    # lists, ints, 0-d arrays, float32 and other libraries' arrays all work
    assert rel_error([1, 2], np.array([1.0, 2.0], np.float32)) == 0.0
    assert rel_error(np.array(3.0), 3) == 0.0
    assert rel_error(array_api_strict.asarray([1.0, 0.0]), [0.0, 1.0]) == pytest.approx(
        np.sqrt(2) / 2)


def test_x_is_restored_even_when_f_fails():
    x = np.arange(3.0)
    calls = []

    def f():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return float(np.sum(x))

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, np.arange(3.0))


def test_views_and_numpy_scalar_steps_work():
    x = np.zeros((3, 4))
    view = x[:, ::2]  # a strided view: the perturbation reaches x itself
    grad = numerical_gradient(lambda: float(np.sum(x**2 + x)), view, h=np.float64(1e-6))
    np.testing.assert_allclose(grad, 1.0, rtol=1e-9)
    assert check_gradients(lambda: np.sum(view), {"v": view}, {"v": np.ones((3, 2)),
                                                                 "unused": None})["v"] < 1e-9


def _broken_normalize_backward(dy, cache):
    """A typical student mistake: forgetting the projection term."""
    _, norm, _ = cache
    return dy / norm


def _broken_softmax_backward(dp, p):
    """Another one: the diagonal of the Jacobian only."""
    return p * (1 - p) * dp


@pytest.mark.parametrize("backward, expect_ok", [
    (l2_normalize_backward, True), (_broken_normalize_backward, False)])
def test_catches_a_wrong_normalize_backward(backward, expect_ok):
    x, w = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    dx = backward(w, l2_normalize(x)[1])
    f = lambda: np.sum(w * l2_normalize(x)[0])  # noqa: E731
    assert (check_gradients(f, {"x": x}, {"x": dx})["x"] < 1e-7) is expect_ok
    assert (directional_check(f, x, dx) < 1e-7) is expect_ok


@pytest.mark.parametrize("backward, expect_ok", [
    (softmax_backward, True), (_broken_softmax_backward, False)])
def test_catches_a_wrong_softmax_backward(backward, expect_ok):
    z, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    dz = backward(w, softmax(z))
    errors = check_gradients(lambda: np.sum(w * softmax(z)), {"z": z}, {"z": dz})
    assert (errors["z"] < 1e-7) is expect_ok


X = np.ones(3)


def _ok():
    return float(np.sum(X))


BAD = [
    bad(numerical_gradient, _ok, np.ones(2, np.float32), error=TypeError,
        words=("x must be a float64", "float32")),
    bad(numerical_gradient, _ok, [1.0, 2.0], error=TypeError, words="x must be a float64 NumPy"),
    bad(numerical_gradient, _ok, None, error=TypeError, words="x must be a float64 NumPy"),
    bad(numerical_gradient, "f", X, error=TypeError, words="f must be a function"),
    bad(numerical_gradient, None, X, error=TypeError, words="f must be a function"),
    bad(numerical_gradient, _ok, X, h=0.0, error=ValueError, words="h must be a positive finite"),
    bad(numerical_gradient, _ok, X, h=-1e-6, error=ValueError, words="h must be a positive"),
    bad(numerical_gradient, _ok, X, h=np.nan, error=ValueError, words="h must be a positive"),
    bad(numerical_gradient, _ok, X, h=np.inf, error=ValueError, words="h must be a positive"),
    bad(numerical_gradient, _ok, X, h="1e-6", error=TypeError, words="h must be a positive real"),
    bad(numerical_gradient, _ok, X, h=None, error=TypeError, words="h must be a positive real"),
    bad(numerical_gradient, _ok, X, h=True, error=TypeError, words="h must be a positive real"),
    bad(numerical_gradient, _ok, X, h=np.ones(2), error=TypeError, words="h must be a positive"),
    bad(numerical_gradient, _ok, X, h=1j, error=TypeError, words="h must be a positive real"),
    bad(numerical_gradient, _ok, np.full(2, 1e20), h=1e-6, error=ValueError,
        words=("h = 1e-06 is lost to rounding", "x[(0,)]")),
    bad(numerical_gradient, _ok, np.array([np.nan]), error=ValueError, words="x contains NaN"),
    bad(numerical_gradient, _ok, np.broadcast_to(np.ones(1), (3,)), error=ValueError,
        words="x must be writeable"),
    bad(numerical_gradient, lambda: None, X, error=TypeError, words="f must return a single real"),
    bad(numerical_gradient, lambda: "1", X, error=TypeError, words="f must return a single real"),
    bad(numerical_gradient, lambda: np.ones(2), X, error=TypeError,
        words=("f must return a single real number", "shape (2,)")),
    bad(numerical_gradient, lambda: 1 + 1j, X, error=TypeError, words="f must return a single"),
    bad(numerical_gradient, lambda: np.complex128(1), X, error=TypeError, words="f must return"),
    bad(numerical_gradient, lambda: True, X, error=TypeError, words="f must return a real"),
    bad(numerical_gradient, lambda: np.nan, X, error=ValueError, words="f returned nan"),
    bad(numerical_gradient, lambda: np.inf, X, error=ValueError, words="f returned inf"),
    bad(rel_error, None, 1.0, error=TypeError, words="a must be a real number or array"),
    bad(rel_error, 1.0, None, error=TypeError, words="b must be a real number or array"),
    bad(rel_error, "1", 1.0, error=TypeError, words="a must be a real number or array"),
    bad(rel_error, 1j, 1.0, error=TypeError, words=("a must hold real numbers", "complex")),
    bad(rel_error, np.ones(2), np.array([1, 1j]), error=TypeError, words="b must hold real"),
    bad(rel_error, np.ones(2, bool), np.ones(2), error=TypeError, words="a must hold real"),
    bad(rel_error, np.array([object()]), np.ones(1), error=TypeError, words="a must hold real"),
    bad(rel_error, [[1.0], [1.0, 2.0]], 1.0, error=ValueError, words="a must be a rectangular"),
    bad(rel_error, np.ones(2, np.float16), np.ones(2), error=TypeError,
        words=("a has dtype float16", "use float32")),
    bad(rel_error, np.nan, 1.0, error=ValueError, words="a contains NaN"),
    bad(rel_error, 1.0, np.inf, error=ValueError, words="b contains NaN or infinite"),
    bad(rel_error, np.ones(2), np.ones(3), error=ValueError, words="same shape"),
    bad(rel_error, np.ones((2, 1)), np.ones(2), error=ValueError, words="same shape"),
    bad(rel_error, np.full(2, 1e308), np.full(2, -1e308), error=ValueError, words="overflow"),
    bad(directional_check, _ok, X, np.ones(2), error=ValueError,
        words="grad must have the shape of x, (3,), got (2,)"),
    bad(directional_check, _ok, X, None, error=TypeError, words="grad must be a real number"),
    bad(directional_check, _ok, X, np.ones(3, complex), error=TypeError, words="grad must hold"),
    bad(directional_check, _ok, X, np.full(3, np.nan), error=ValueError, words="grad contains"),
    bad(directional_check, _ok, np.ones(2, np.float32), np.ones(2), error=TypeError,
        words="x must be a float64"),
    bad(directional_check, _ok, np.ones(0), np.ones(0), error=ValueError,
        words="x must be non-empty"),
    bad(directional_check, _ok, X, X, h=0, error=ValueError, words="h must be a positive"),
    bad(directional_check, _ok, X, X, h=np.inf, error=ValueError, words="h must be a positive"),
    bad(directional_check, _ok, X, X, seed=-1, error=ValueError,
        words="seed must be a non-negative int"),
    bad(directional_check, _ok, X, X, seed=1.5, error=TypeError,
        words="seed must be a non-negative int"),
    bad(directional_check, _ok, X, X, seed="s", error=TypeError,
        words="seed must be a non-negative int"),
    bad(directional_check, 3, X, X, error=TypeError, words="f must be a function"),
    bad(directional_check, lambda: [1, 2], X, X, error=TypeError, words="f must return"),
    bad(check_gradients, _ok, {}, {}, error=ValueError, words="arrays must name at least one"),
    bad(check_gradients, _ok, [X], {}, error=TypeError, words="arrays must be a dict"),
    bad(check_gradients, _ok, {"x": X}, None, error=TypeError, words="grads must be a dict"),
    bad(check_gradients, _ok, {"x": X}, {"y": X}, error=ValueError,
        words=("grads has no gradient for ['x']", "['y']")),
    bad(check_gradients, _ok, {"x": X}, {"x": np.ones(2)}, error=ValueError,
        words="grads['x'] must have the shape of arrays['x'], (3,), got (2,)"),
    bad(check_gradients, _ok, {"x": X}, {"x": None}, error=TypeError,
        words="grads['x'] must be a real number"),
    bad(check_gradients, _ok, {"x": X}, {"x": np.ones(3, complex)}, error=TypeError,
        words="grads['x'] must hold real numbers"),
    bad(check_gradients, _ok, {"x": np.ones(3, np.float32)}, {"x": X}, error=TypeError,
        words="arrays['x'] must be a float64 NumPy array"),
    bad(check_gradients, _ok, {"x": X}, {"x": X}, h=0.0, error=ValueError,
        words="h must be a positive"),
    bad(check_gradients, None, {"x": X}, {"x": X}, error=TypeError, words="f must be a function"),
    # an int too large for a float: OverflowError before
    bad(numerical_gradient, _ok, X, h=10**400, error=ValueError, words="h must be a positive"),
    bad(directional_check, _ok, X, X, h=10**400, error=ValueError, words="h must be a positive"),
    bad(check_gradients, _ok, {"x": X}, {"x": X}, h=10**400, error=ValueError,
        words="h must be a positive"),
    # a function that needs an argument failed inside, with Python's message about a lambda
    bad(numerical_gradient, lambda x: 1.0, X, error=TypeError,
        words=("f must be a function of no arguments", "(x)", "lambda: f(x)")),
    bad(directional_check, lambda x, y: 1.0, X, X, error=TypeError,
        words="f must be a function of no arguments"),
    bad(check_gradients, lambda *, k: 1.0, {"x": X}, {"x": X}, error=TypeError,
        words="f must be a function of no arguments"),
    # a step lost to rounding gave a relative error of 1 instead of saying so
    bad(directional_check, _ok, np.full(3, 1e20), np.ones(3), error=ValueError,
        words=("h = 1e-05 is lost to rounding", "larger h")),
    # an empty array gave a relative error of 0: a check that could not fail
    bad(check_gradients, _ok, {"x": np.ones((0, 3))}, {"x": np.ones((0, 3))}, error=ValueError,
        words="arrays['x'] must be non-empty: an empty check cannot fail"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(gradcheck, BAD)
