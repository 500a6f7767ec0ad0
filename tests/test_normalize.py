import array_api_strict
import numpy as np
import pytest
from conftest import (
    U,
    assert_on_backend,
    assert_table_covers,
    assert_within,
    bad,
    check_bad_row,
    put,
)

from numclip import l2_normalize, l2_normalize_backward, logit_matrix, normalize, to_numpy
from numclip.gradcheck import check_gradients

rng = np.random.default_rng(0)


def test_rows_have_unit_norm_and_keep_direction(xp, dtype_name):
    x = rng.standard_normal((5, 3)) * 10
    y, _ = l2_normalize(put(xp, x, dtype_name))
    assert_on_backend(y, put(xp, x, dtype_name))
    y = to_numpy(y)
    # Rounding x to the dtype moves y by at most u (J = (I - y y^T)/r has norm 1/r, and
    # |dx| <= u r); the norm's dot product costs D u, its sqrt and the division 2 u, so
    # each y_k is off by at most (D/2 + 3) u (D/2: the square root halves the error).
    d = x.shape[1]
    assert_within(y, x / np.linalg.norm(x, axis=1, keepdims=True), (d / 2 + 3) * U[dtype_name])
    assert_within(np.linalg.norm(y, axis=1), 1.0, (d + 6) * U[dtype_name], "norms")


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
    # dx_i = (w_i - y_i (y_i . w_i)) / r_i.  Rounding x and w to the dtype moves it by at
    # most 4 u |w_i| / r_i (u from w, 2 u from the projection, u from r); computing it
    # costs (D/2 + 3) u in y, D u in the dot product, (D/2 + 2) u in r and 3 u in the
    # rest, (2 D + 8) u |w_i| / r_i in all.  Twice that covers the reference's own rounding.
    d = x.shape[1]
    scale = np.linalg.norm(w, axis=1, keepdims=True) / np.linalg.norm(x, axis=1, keepdims=True)
    assert_within(dx, reference, 2 * (2 * d + 12) * U[dtype_name] * scale)


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


def test_lists_fortran_order_and_strided_views_give_the_same_rows():
    x = rng.standard_normal((6, 4))
    want = l2_normalize(x)[0]
    np.testing.assert_array_equal(l2_normalize(x.tolist())[0], want)
    np.testing.assert_allclose(l2_normalize(np.asfortranarray(x))[0], want, rtol=0,
                               atol=8 * U["float64"])  # a different summation order at most
    wide = np.zeros((6, 8))
    wide[:, ::2] = x  # a strided view: every other column
    np.testing.assert_allclose(l2_normalize(wide[:, ::2])[0], want, rtol=0, atol=8 * U["float64"])
    np.testing.assert_allclose(l2_normalize(x[::-2])[0], want[::-2], rtol=0, atol=8 * U["float64"])


@pytest.mark.parametrize("dtype_name, big", [("float32", 1e20), ("float32", 3e38),
                                             ("float64", 1e160), ("float64", 1e308)])
def test_huge_rows_normalize_correctly(dtype_name, big):
    """The squares overflow (|x| = 1e20 squares to 1e40 > 3.4e38 in float32), the row is
    divided by its largest entry first; past 1e308 even the norm overflows, yet y is right."""
    x = rng.standard_normal((4, 5))
    x[1] = 0.0  # a zero row stays zero on this path too
    huge = (big / np.max(np.abs(x))) * x
    y, cache = l2_normalize(huge.astype(dtype_name))
    assert y.dtype == dtype_name
    # u = x / m costs u, |u| costs (D/2 + 1) u, u / |u| one more: (D/2 + 3) u from y's
    # rows computed in float64 from the same (rounded) input
    want = l2_normalize(huge.astype(dtype_name).astype(np.float64) / big)[0]
    assert_within(y, want, (5 / 2 + 3) * U[dtype_name])
    dx = l2_normalize_backward(np.ones_like(y), cache)
    assert np.all(np.isfinite(dx))


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_tiny_rows_normalize_correctly_when_eps_allows(dtype_name):
    """1e-30 squares to 1e-60, below float32's smallest normal 1.2e-38: the plain sum of
    squares is 0.  With eps below the norm the row must still come out unit length."""
    tiny_value = {"float32": 1e-30, "float64": 1e-170}[dtype_name]
    x = (rng.standard_normal((3, 4)) * tiny_value).astype(dtype_name)
    eps = {"float32": 1e-37, "float64": 1e-300}[dtype_name]
    y, cache = l2_normalize(x, eps=eps)
    want = l2_normalize(x.astype(np.float64) / tiny_value)[0]
    assert_within(y, want, (4 / 2 + 3) * U[dtype_name])
    w = rng.standard_normal((3, 4))
    dx = l2_normalize_backward(w.astype(dtype_name), cache)  # dx of x is 1/tiny times larger
    want_dx = l2_normalize_backward(w, l2_normalize(x.astype(np.float64) / tiny_value)[1])
    scale = np.linalg.norm(w, axis=1, keepdims=True) / np.linalg.norm(x / tiny_value, axis=1,
                                                                     keepdims=True)
    assert_within(to_numpy(dx) * tiny_value, want_dx, 2 * (2 * 4 + 12) * U[dtype_name] * scale)
    # with the default eps = 1e-12 the same rows are below the floor: y = x / eps
    y, _ = l2_normalize(x)
    np.testing.assert_allclose(y, x.astype(np.float64) / 1e-12, rtol=2 * U[dtype_name])


def test_eps_may_be_any_real_scalar():
    x = np.array([[0.0, 1e-8]])
    for eps in (1e-6, np.float32(1e-6), np.array(1e-6), 1):
        y, _ = l2_normalize(x, eps=eps)
        np.testing.assert_allclose(y, x / float(eps))


_, CACHE = l2_normalize(np.ones((2, 3)))
_, CACHE32 = l2_normalize(np.ones((2, 3), dtype=np.float32))
_, LOGIT_CACHE = logit_matrix(np.ones((2, 3)), np.ones((2, 3)), 0.0)

BAD = [
    bad(l2_normalize, np.array([[1.0, np.nan]]), error=ValueError, words="x contains NaN"),
    bad(l2_normalize, np.array([[1.0, np.inf]]), error=ValueError, words="x contains NaN or inf"),
    bad(l2_normalize, np.array([[1, 2]]), error=TypeError, words="x must have a real floating"),
    bad(l2_normalize, np.array([[1 + 2j]]), error=TypeError, words="x must have a real floating"),
    bad(l2_normalize, np.array([[True]]), error=TypeError, words="x must have a real floating"),
    bad(l2_normalize, np.array([[object()]]), error=TypeError, words="x must have a real float"),
    bad(l2_normalize, np.zeros((1, 3), np.float16), error=TypeError, words=("x", "float32")),
    bad(l2_normalize, np.array(1.0), error=ValueError, words="x must have at least one axis"),
    bad(l2_normalize, "abc", error=TypeError, words="x must be an array"),
    bad(l2_normalize, None, error=TypeError, words="x must be an array"),
    bad(l2_normalize, np.zeros((0, 3)), error=ValueError, words="x must be non-empty"),
    bad(l2_normalize, [["a", "b"]], error=TypeError, words="x must be numeric"),
    bad(l2_normalize, [[1.0, 2.0], [3.0]], error=ValueError, words="x must be a rectangular"),
    bad(l2_normalize, np.ones((1, 2)), eps=0.0, error=ValueError, words="eps must be a positive"),
    bad(l2_normalize, np.ones((1, 2)), eps=-1e-12, error=ValueError, words="eps must be a pos"),
    bad(l2_normalize, np.ones((1, 2)), eps=np.inf, error=ValueError, words="eps must be finite"),
    bad(l2_normalize, np.ones((1, 2)), eps=np.nan, error=ValueError, words="eps must be finite"),
    bad(l2_normalize, np.ones((1, 2), np.float32), eps=1e-40, error=ValueError,
        words=("eps", "normal range of float32")),
    bad(l2_normalize, np.ones((1, 2)), eps="1e-12", error=TypeError, words="eps must be a real"),
    bad(l2_normalize, np.ones((1, 2)), eps=None, error=TypeError, words="eps must be a real"),
    bad(l2_normalize, np.ones((1, 2)), eps=True, error=TypeError, words="eps must be a real"),
    bad(l2_normalize, np.ones((1, 2)), eps=np.ones(2), error=ValueError,
        words="eps must be a scalar"),
    bad(l2_normalize_backward, np.ones((3, 2)), CACHE, error=ValueError,
        words="dy must have the shape of y"),
    bad(l2_normalize_backward, np.ones((2, 3)), None, error=TypeError,
        words="cache must be the second output of l2_normalize"),
    bad(l2_normalize_backward, np.ones((2, 3)), CACHE[:2], error=TypeError,
        words="cache must be the second output of l2_normalize"),
    bad(l2_normalize_backward, np.ones((2, 3)), list(CACHE), error=TypeError,
        words="cache must be the second output of l2_normalize"),
    bad(l2_normalize_backward, np.ones((2, 3)), LOGIT_CACHE, error=TypeError,
        words="cache must be the second output of l2_normalize"),
    bad(l2_normalize_backward, np.ones((2, 3)), (1, 2, 3), error=TypeError,
        words="cache must be the second output of l2_normalize"),
    bad(l2_normalize_backward, np.full((2, 3), np.nan), CACHE, error=ValueError,
        words="dy contains NaN"),
    bad(l2_normalize_backward, np.full((2, 3), np.inf), CACHE, error=ValueError,
        words="dy contains NaN or infinite"),
    bad(l2_normalize_backward, np.ones((2, 3), complex), CACHE, error=TypeError,
        words="dy must have a real floating dtype"),
    bad(l2_normalize_backward, np.ones((2, 3), bool), CACHE, error=TypeError,
        words="dy must have a real floating dtype"),
    bad(l2_normalize_backward, np.ones((2, 3), object), CACHE, error=TypeError,
        words="dy must have a real floating dtype"),
    bad(l2_normalize_backward, None, CACHE, error=TypeError, words="dy must be an array"),
    bad(l2_normalize_backward, np.ones((2, 3), np.float32), CACHE, error=TypeError,
        words=("dy must have the dtype of y", "float64", "float32")),
    bad(l2_normalize_backward, np.ones((2, 3)), CACHE32, error=TypeError,
        words=("dy must have the dtype of y", "float64", "float32")),
    # the library is checked before the dtype (comparing dtypes across libraries warns)
    bad(l2_normalize_backward, array_api_strict.ones((2, 3), dtype=array_api_strict.float64),
        CACHE, error=TypeError, words="dy (array_api_strict) and y (numpy) cannot be mixed"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(normalize, BAD)
