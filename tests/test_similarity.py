import math
from decimal import Decimal
from fractions import Fraction

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

from numclip import (
    l2_normalize,
    logit_matrix,
    logit_matrix_backward,
    logit_scale_to_temperature,
    similarity,
    temperature_to_logit_scale,
)
from numclip.gradcheck import check_gradients

rng = np.random.default_rng(1)


def test_logits_are_scaled_dot_products(xp, dtype_name):
    img, txt = rng.standard_normal((4, 6)), rng.standard_normal((5, 6))  # N != M != D
    logits, _ = logit_matrix(put(xp, img, dtype_name), put(xp, txt, dtype_name), math.log(20.0))
    assert_on_backend(logits, put(xp, img, dtype_name))
    # Rounding I and T to the dtype moves each product term by 2 u, the dot product of
    # length D adds D u (Higham 3.1), the scale exp(log 20) and its product 3 u: at most
    # (D + 5) u times 20 sum_k |I_k T_k|.
    d = img.shape[1]
    bound = (d + 5) * U[dtype_name] * 20.0 * (np.abs(img) @ np.abs(txt).T)
    assert_within(logits, 20.0 * img @ txt.T, bound)


@pytest.mark.parametrize("tau", [0.07, np.float32(0.07), np.array(0.07), 1])
def test_temperature_and_logit_scale_are_inverse(tau):
    s = temperature_to_logit_scale(tau)
    assert type(s) is float
    assert s == pytest.approx(math.log(1 / float(tau)), rel=1e-15)
    assert logit_scale_to_temperature(s) == pytest.approx(float(tau), rel=1e-15)
    assert temperature_to_logit_scale(0.07) == pytest.approx(2.659260036932778, rel=1e-15)


def test_a_huge_temperature_is_a_value_error_where_a_float_cannot_hold_it():
    assert logit_scale_to_temperature(-700.0) == pytest.approx(math.exp(700.0), rel=1e-15)
    with pytest.raises(ValueError, match=r"logit_scale = -1000\.0 gives tau"):
        logit_scale_to_temperature(-1000.0)


def test_backward_matches_finite_differences_float64():
    img, txt = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    s = np.array(1.3)  # a 0-d array, perturbed in place by the checker
    w = rng.standard_normal((3, 4))

    def loss():
        return np.sum(w * logit_matrix(img, txt, s)[0])

    _, cache = logit_matrix(img, txt, s)
    dimg, dtxt, ds = logit_matrix_backward(w, cache)
    errors = check_gradients(loss, {"img": img, "txt": txt, "s": s},
                             {"img": dimg, "txt": dtxt, "s": ds})
    assert max(errors.values()) < 1e-7, errors


def test_logit_scale_gradient_keeps_the_form_it_came_in(xp, dtype_name):
    img = put(xp, rng.standard_normal((2, 3)), dtype_name)
    _, cache = logit_matrix(img, img, 0.5)
    *_, ds = logit_matrix_backward(put(xp, np.ones((2, 2)), dtype_name), cache)
    assert isinstance(ds, float)
    s = put(xp, 0.5, "float64")  # float64 scale, embeddings maybe float32
    logits, cache = logit_matrix(img, img, s)
    assert logits.dtype == img.dtype  # the scale does not promote float32 to float64
    dimg, _, ds = logit_matrix_backward(put(xp, np.ones((2, 2)), dtype_name), cache)
    assert_on_backend(ds, s)
    assert_on_backend(dimg, img)
    assert ds.shape == ()


def test_lists_fortran_order_strided_views_and_numpy_scalars_work():
    img, txt = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    want, _ = logit_matrix(img, txt, 1.0)
    for i, t, s in [(img.tolist(), txt.tolist(), 1), (np.asfortranarray(img), txt, np.float64(1)),
                    (np.repeat(img, 2, axis=0)[::2], txt[:, :], np.array(1.0))]:
        got, _ = logit_matrix(i, t, s)
        # the same dot products in another summation order: (D + 2) u sum |I_k T_k|
        assert_within(got, want, 6 * U["float64"] * math.e * (np.abs(img) @ np.abs(txt).T))


def test_float16_is_refused_with_the_way_out():
    with pytest.raises(TypeError, match="use float32"):
        logit_matrix(np.ones((2, 2), np.float16), np.ones((2, 2), np.float16), 0.0)


ONES = np.ones((2, 3))
LOGITS, CACHE = logit_matrix(ONES, ONES, 0.0)
_, CACHE32 = logit_matrix(ONES.astype(np.float32), ONES.astype(np.float32), 0.0)
_, NORM_CACHE = l2_normalize(ONES)

BAD = [
    bad(logit_matrix, ONES, ONES, array_api_strict.asarray(0.0), error=TypeError,
        words="image_embeds (numpy) and logit_scale (array_api_strict) cannot be mixed"),
    bad(logit_matrix_backward, array_api_strict.asarray(LOGITS), CACHE, error=TypeError,
        words="dlogits_per_image (array_api_strict) and the logits (numpy) cannot be mixed"),
    bad(logit_matrix, ONES, np.ones((2, 4)), 0.0, error=ValueError, words="same width D"),
    bad(logit_matrix, np.ones(3), ONES, 0.0, error=ValueError, words="image_embeds must be 2-D"),
    bad(logit_matrix, ONES, np.ones((0, 3)), 0.0, error=ValueError,
        words="text_embeds must be non-empty"),
    bad(logit_matrix, ONES, ONES.astype(np.float32), 0.0, error=TypeError, words="share a dtype"),
    bad(logit_matrix, ONES, np.full((2, 3), np.nan), 0.0, error=ValueError,
        words="text_embeds contains NaN"),
    bad(logit_matrix, ONES.astype(complex), ONES, 0.0, error=TypeError,
        words="image_embeds must have a real floating dtype"),
    bad(logit_matrix, ONES.astype(bool), ONES, 0.0, error=TypeError,
        words="image_embeds must have a real floating dtype"),
    bad(logit_matrix, None, ONES, 0.0, error=TypeError, words="image_embeds must be an array"),
    bad(logit_matrix, ONES, ONES, math.nan, error=ValueError, words="logit_scale must be finite"),
    bad(logit_matrix, ONES, ONES, np.array(np.inf), error=ValueError,
        words="logit_scale contains"),
    bad(logit_matrix, ONES, ONES, 1000.0, error=ValueError, words=("logit_scale", "overflow")),
    bad(logit_matrix, ONES, ONES, np.ones(2), error=ValueError,
        words="logit_scale must be a scalar"),
    bad(logit_matrix, ONES, ONES, "0.07", error=TypeError, words="logit_scale must be a real"),
    bad(logit_matrix, ONES, ONES, None, error=TypeError, words="logit_scale must be a real"),
    bad(logit_matrix, ONES, ONES, True, error=TypeError, words="logit_scale must be a real"),
    bad(logit_matrix, ONES, ONES, Fraction(3, 2), error=TypeError,
        words=("logit_scale must be a real", "Fraction", "float()")),
    bad(logit_matrix, ONES, ONES, Decimal("1.5"), error=TypeError,
        words=("logit_scale must be a real", "float()")),
    bad(logit_matrix, ONES, ONES, np.array(1), error=TypeError,
        words="logit_scale must have a real floating dtype"),
    bad(logit_matrix, ONES, ONES, 1 + 0j, error=TypeError, words="logit_scale must be a real"),
    bad(logit_matrix, 1e200 * ONES, 1e200 * ONES, 0.0, error=ValueError,
        words="the logits overflow float64"),
    bad(logit_matrix_backward, np.ones((3, 2)), CACHE, error=ValueError,
        words="dlogits_per_image must have the shape of the logits"),
    bad(logit_matrix_backward, np.ones(2), CACHE, error=ValueError,
        words="dlogits_per_image must be 2-D"),
    bad(logit_matrix_backward, np.full((2, 2), np.nan), CACHE, error=ValueError,
        words="dlogits_per_image contains NaN"),
    bad(logit_matrix_backward, np.full((2, 2), -np.inf), CACHE, error=ValueError,
        words="dlogits_per_image contains NaN or infinite"),
    bad(logit_matrix_backward, np.ones((2, 2), complex), CACHE, error=TypeError,
        words="dlogits_per_image must have a real floating dtype"),
    bad(logit_matrix_backward, np.ones((2, 2), bool), CACHE, error=TypeError,
        words="dlogits_per_image must have a real floating dtype"),
    bad(logit_matrix_backward, np.ones((2, 2), object), CACHE, error=TypeError,
        words="dlogits_per_image must have a real floating dtype"),
    bad(logit_matrix_backward, None, CACHE, error=TypeError,
        words="dlogits_per_image must be an array"),
    bad(logit_matrix_backward, np.ones((2, 2), np.float32), CACHE, error=TypeError,
        words=("dlogits_per_image must have the dtype of the logits", "float64", "float32")),
    bad(logit_matrix_backward, np.ones((2, 2)), CACHE32, error=TypeError,
        words=("dlogits_per_image must have the dtype of the logits", "float32", "float64")),
    bad(logit_matrix_backward, np.ones((2, 2)), None, error=TypeError,
        words="cache must be the second output of logit_matrix"),
    bad(logit_matrix_backward, np.ones((2, 2)), NORM_CACHE, error=TypeError,
        words="cache must be the second output of logit_matrix"),
    bad(logit_matrix_backward, np.ones((2, 2)), CACHE[:4] + (None,) * 2, error=TypeError,
        words="cache must be the second output of logit_matrix"),
    bad(logit_matrix_backward, np.ones((2, 2)), (ONES, ONES, 1.0, ONES, 0.0), error=TypeError,
        words="cache must be the second output of logit_matrix"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(similarity, BAD)
