"""The checker itself must be able to fail: it is tested on deliberately wrong gradients."""

import numpy as np
import pytest

from numclip import l2_normalize, l2_normalize_backward, softmax, softmax_backward
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
    with pytest.raises(ValueError, match="same shape"):
        rel_error(np.ones(2), np.ones(3))


def test_float32_input_is_refused():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.ones(2, dtype=np.float32))
    with pytest.raises(TypeError, match="float64"):
        directional_check(lambda: 0.0, np.ones(2, dtype=np.float32), np.ones(2))


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
