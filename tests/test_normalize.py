import numpy as np
import pytest
from conftest import RTOL, assert_on_backend, put

from numclip import l2_normalize, l2_normalize_backward, to_numpy
from numclip.gradcheck import check_gradients

rng = np.random.default_rng(0)


def test_rows_have_unit_norm_and_keep_direction(xp, dtype_name):
    x = rng.standard_normal((5, 3)) * 10
    y, _ = l2_normalize(put(xp, x, dtype_name))
    assert_on_backend(y, put(xp, x, dtype_name))
    y = to_numpy(y)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=RTOL[dtype_name])
    np.testing.assert_allclose(y, x / np.linalg.norm(x, axis=1, keepdims=True),
                               rtol=RTOL[dtype_name], atol=RTOL[dtype_name])


def test_backward_matches_finite_differences_float64():
    x = rng.standard_normal((4, 7))  # N != D
    w = rng.standard_normal((4, 7))  # a random upstream gradient: L = sum(w * y)

    def loss():
        return np.sum(w * l2_normalize(x)[0])

    _, cache = l2_normalize(x)
    errors = check_gradients(loss, {"x": x}, {"x": l2_normalize_backward(w, cache)})
    assert errors["x"] < 1e-7, errors


def test_backward_on_every_backend(xp, dtype_name):
    x, w = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    y, cache = l2_normalize(put(xp, x, dtype_name))
    dx = l2_normalize_backward(put(xp, w, dtype_name), cache)
    assert_on_backend(dx, y)
    reference = l2_normalize_backward(w, l2_normalize(x)[1])
    np.testing.assert_allclose(to_numpy(dx), reference, rtol=10 * RTOL[dtype_name],
                               atol=10 * RTOL[dtype_name])


def test_gradient_is_orthogonal_to_the_output():
    """Stretching x does not move y, so dx has no component along x."""
    x, w = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    _, cache = l2_normalize(x)
    dx = l2_normalize_backward(w, cache)
    np.testing.assert_allclose(np.sum(dx * x, axis=1), 0.0, atol=1e-12)


def test_zero_row_maps_to_zero_and_its_gradient_is_dy_over_eps():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    y, cache = l2_normalize(x)
    np.testing.assert_array_equal(y[1], [0.0, 0.0])  # no NaN from 0 / 0
    np.testing.assert_allclose(y[0], [0.6, 0.8])
    dx = l2_normalize_backward(np.array([[1.0, 0.0], [1.0, 2.0]]), cache)
    assert np.all(np.isfinite(dx))
    np.testing.assert_allclose(dx[1], np.array([1.0, 2.0]) / 1e-12)


def test_works_on_any_leading_shape():
    x = rng.standard_normal((2, 3, 4))
    y, _ = l2_normalize(x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), 1.0)


@pytest.mark.parametrize("bad, error, match", [
    (np.array([[1.0, np.nan]]), ValueError, "x contains NaN"),
    (np.array([[1.0, np.inf]]), ValueError, "x contains NaN or infinite"),
    (np.array([[1, 2]]), TypeError, "x must have a real floating dtype"),
    (np.array(1.0), ValueError, "x must have at least one axis"),
    ("abc", TypeError, "x must be an array"),
    (np.zeros((0, 3)), ValueError, "x must be non-empty"),
    ([["a", "b"]], TypeError, "x must be numeric"),
])
def test_bad_input_is_named(bad, error, match):
    with pytest.raises(error, match=match):
        l2_normalize(bad)


def test_backward_rejects_a_wrong_shape():
    _, cache = l2_normalize(np.ones((2, 3)))
    with pytest.raises(ValueError, match="dy must have the shape of y"):
        l2_normalize_backward(np.ones((3, 2)), cache)
