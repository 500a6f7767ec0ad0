import math

import numpy as np
import pytest
from conftest import RTOL, assert_on_backend, put

from numclip import (
    logit_matrix,
    logit_matrix_backward,
    logit_scale_to_temperature,
    temperature_to_logit_scale,
    to_numpy,
)
from numclip.gradcheck import check_gradients

rng = np.random.default_rng(1)


def test_logits_are_scaled_dot_products(xp, dtype_name):
    img, txt = rng.standard_normal((4, 6)), rng.standard_normal((5, 6))  # N != M != D
    logits, _ = logit_matrix(put(xp, img, dtype_name), put(xp, txt, dtype_name), math.log(20.0))
    assert_on_backend(logits, put(xp, img, dtype_name))
    np.testing.assert_allclose(to_numpy(logits), 20.0 * img @ txt.T,
                               rtol=RTOL[dtype_name], atol=10 * RTOL[dtype_name])


def test_temperature_and_logit_scale_are_inverse():
    assert temperature_to_logit_scale(0.07) == pytest.approx(math.log(1 / 0.07))
    assert temperature_to_logit_scale(0.07) == pytest.approx(2.659260036932778)
    assert logit_scale_to_temperature(temperature_to_logit_scale(0.07)) == pytest.approx(0.07)


@pytest.mark.parametrize("tau", [0.0, -0.07, math.inf, math.nan])
def test_non_positive_temperature_is_rejected(tau):
    with pytest.raises(ValueError, match=r"tau .* must be positive"):
        temperature_to_logit_scale(tau)


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


@pytest.mark.parametrize("img, txt, s, error, match", [
    (np.ones((2, 3)), np.ones((2, 4)), 0.0, ValueError, "same width D"),
    (np.ones(3), np.ones((2, 3)), 0.0, ValueError, "image_embeds must be 2-D"),
    (np.ones((2, 3)), np.ones((0, 3)), 0.0, ValueError, "text_embeds must be non-empty"),
    (np.ones((2, 3)), np.ones((2, 3), dtype=np.float32), 0.0, TypeError, "share a dtype"),
    (np.ones((2, 3)), np.ones((2, 3)), math.nan, ValueError, "logit_scale must be finite"),
    (np.ones((2, 3)), np.ones((2, 3)), np.array(np.inf), ValueError, "logit_scale contains"),
    (np.ones((2, 3)), np.ones((2, 3)), 1000.0, ValueError, "overflow"),
    (np.ones((2, 3)), np.ones((2, 3)), np.ones(2), ValueError, "logit_scale must be a scalar"),
    (np.ones((2, 3)), np.ones((2, 3)), "0.07", TypeError, "logit_scale must be a real number"),
    (np.ones((2, 3)), np.ones((2, 3)), None, TypeError, "logit_scale must be a real number"),
])
def test_bad_input_is_named(img, txt, s, error, match):
    with pytest.raises(error, match=match):
        logit_matrix(img, txt, s)


def test_to_numpy_names_a_non_array():
    with pytest.raises(TypeError, match="x must be an array"):
        to_numpy("not an array")
