import math

import numpy as np
import pytest
import scipy.special
from conftest import BAD_EMBEDDING_PAIRS, RTOL, assert_on_backend, put

from numclip import clip_loss, clip_loss_reference, cross_entropy, to_numpy
from numclip.gradcheck import check_gradients, directional_check

rng = np.random.default_rng(3)
LOG_1_OVER_007 = math.log(1 / 0.07)


def reference_clip_loss(img, txt, logit_scale, normalize=True):
    """The CLIP paper's Figure 3, written independently with SciPy, float64."""
    if normalize:
        img = img / np.linalg.norm(img, axis=1, keepdims=True)
        txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    logits = np.exp(logit_scale) * img @ txt.T
    n = len(img)
    loss_i = -np.mean(scipy.special.log_softmax(logits, axis=1)[np.arange(n), np.arange(n)])
    loss_t = -np.mean(scipy.special.log_softmax(logits, axis=0)[np.arange(n), np.arange(n)])
    return (loss_i + loss_t) / 2


def test_cross_entropy_matches_scipy_and_finite_differences():
    z = rng.standard_normal((5, 3)) * 3
    t = np.array([0, 2, 1, 1, 0])
    loss, dz = cross_entropy(z, t)
    expected = -np.mean(scipy.special.log_softmax(z, axis=1)[np.arange(5), t])
    assert float(loss) == pytest.approx(expected, rel=1e-13)
    errors = check_gradients(lambda: cross_entropy(z, t)[0], {"z": z}, {"z": dz})
    assert errors["z"] < 1e-7, errors


def test_cross_entropy_on_every_backend(xp, dtype_name):
    z = rng.standard_normal((4, 6))
    t = np.array([5, 0, 3, 3])
    loss, dz = cross_entropy(put(xp, z, dtype_name), xp.asarray(t))
    assert_on_backend(loss, put(xp, z, dtype_name))
    assert_on_backend(dz, put(xp, z, dtype_name))
    ref_loss, ref_dz = cross_entropy(z, t)
    assert float(loss) == pytest.approx(float(ref_loss), rel=10 * RTOL[dtype_name])
    np.testing.assert_allclose(to_numpy(dz), ref_dz, rtol=10 * RTOL[dtype_name],
                               atol=RTOL[dtype_name])


@pytest.mark.parametrize("t, error, match", [
    (np.array([0, 3]), ValueError, r"targets must lie in \[0, 3\)"),
    (np.array([0, -1]), ValueError, "targets must lie in"),
    (np.array([0, 1, 2]), ValueError, r"targets must have shape \(2,\)"),
    (np.array([0.0, 1.0]), TypeError, "targets must be an array of integers"),
    ([0, 1], None, None),
])
def test_cross_entropy_targets_are_checked(t, error, match):
    z = np.zeros((2, 3))
    if error is None:
        cross_entropy(z, t)  # a plain list of ints is fine
    else:
        with pytest.raises(error, match=match):
            cross_entropy(z, t)


@pytest.mark.parametrize("normalize", [True, False])
def test_clip_loss_matches_the_paper_formula(normalize):
    img, txt = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    loss, _ = clip_loss(img, txt, LOG_1_OVER_007, normalize=normalize)
    assert float(loss) == pytest.approx(reference_clip_loss(img, txt, LOG_1_OVER_007, normalize),
                                        rel=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("n, d", [(5, 3), (3, 7)])  # N != D both ways
def test_clip_loss_gradients_match_finite_differences(normalize, n, d):
    img, txt = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    if not normalize:  # keep raw dot products in a range where the softmax is not saturated
        img, txt = img / 3, txt / 3
    s = np.array(LOG_1_OVER_007)

    def loss():
        return clip_loss(img, txt, s, normalize=normalize)[0]

    _, grads = clip_loss(img, txt, s, normalize=normalize)
    errors = check_gradients(loss, {"image_embeds": img, "text_embeds": txt, "logit_scale": s},
                             grads)
    assert max(errors.values()) < 1e-7, errors
    assert directional_check(loss, img, grads["image_embeds"]) < 1e-7


def test_clip_loss_contract_types_and_shapes(xp, dtype_name):
    img = put(xp, rng.standard_normal((4, 3)), dtype_name)
    txt = put(xp, rng.standard_normal((4, 3)), dtype_name)
    loss, grads = clip_loss(img, txt, LOG_1_OVER_007)
    assert set(grads) == {"image_embeds", "text_embeds", "logit_scale"}
    assert_on_backend(loss, img)
    assert_on_backend(grads["image_embeds"], img)
    assert_on_backend(grads["text_embeds"], txt)
    assert grads["image_embeds"].shape == (4, 3) and grads["text_embeds"].shape == (4, 3)
    assert isinstance(grads["logit_scale"], float)  # a float in, a float out
    s = put(xp, LOG_1_OVER_007, dtype_name)
    loss0, grads0 = clip_loss(img, txt, s)
    assert_on_backend(grads0["logit_scale"], s)  # a 0-d array in, a 0-d array out
    assert grads0["logit_scale"].shape == ()
    expected = reference_clip_loss(to_numpy(img).astype(np.float64),
                                   to_numpy(txt).astype(np.float64), LOG_1_OVER_007)
    assert float(loss) == pytest.approx(expected, rel=10 * RTOL[dtype_name])
    assert float(loss0) == pytest.approx(expected, rel=10 * RTOL[dtype_name])


def test_clip_loss_gradients_agree_across_backends(xp, dtype_name):
    img, txt = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))
    _, ref = clip_loss(img, txt, 2.0)
    _, grads = clip_loss(put(xp, img, dtype_name), put(xp, txt, dtype_name), 2.0)
    for key in ("image_embeds", "text_embeds"):
        np.testing.assert_allclose(to_numpy(grads[key]), ref[key], rtol=50 * RTOL[dtype_name],
                                   atol=50 * RTOL[dtype_name])
    assert grads["logit_scale"] == pytest.approx(ref["logit_scale"], rel=50 * RTOL[dtype_name])


def test_one_pair_has_zero_loss_and_zero_gradients():
    loss, grads = clip_loss(np.array([[0.3, -1.0]]), np.array([[2.0, 5.0]]), 1.0)
    assert float(loss) == 0.0
    assert not np.any(grads["image_embeds"]) and grads["logit_scale"] == 0.0


def test_float32_loss_does_not_overflow_at_the_maximum_scale():
    img = rng.standard_normal((64, 16)).astype(np.float32)
    loss, grads = clip_loss(img, img.copy(), math.log(100.0))
    assert np.isfinite(loss) and loss.dtype == np.float32
    assert all(np.all(np.isfinite(g)) for g in grads.values())


@pytest.mark.parametrize("kwargs, error, match", [*BAD_EMBEDDING_PAIRS,
    (dict(img=np.ones((2, 2)), txt=np.ones((2, 2)), s=np.nan), ValueError, "logit_scale must be"),
    (dict(img=np.ones((2, 2)), txt=np.ones((2, 2)), s=-np.inf), ValueError, "logit_scale must be"),
    (dict(img=np.ones((2, 2)), txt=np.ones((2, 2)), s="hot"), TypeError, "logit_scale must be"),
])
@pytest.mark.parametrize("loss", [clip_loss, clip_loss_reference])
def test_clip_loss_bad_input_is_named(kwargs, error, match, loss):
    with pytest.raises(error, match=match):
        loss(kwargs["img"], kwargs["txt"], kwargs.get("s", 1.0))


def test_lists_are_accepted_as_typed_on_the_course_page():
    loss, grads = clip_loss([[1, 0, 0], [0, 1, 0]], [[0.9, 0.1, 0], [0.1, 0.8, 0.1]], 2.0)
    assert grads["image_embeds"].dtype == np.float64 and np.isfinite(loss)


def test_perfect_fit_prints_as_zero_not_minus_zero():
    loss, _ = clip_loss(np.array([[0.3, -1.0]]), np.array([[2.0, 5.0]]), 1.0)
    assert math.copysign(1.0, float(loss)) == 1.0


def test_cross_entropy_with_astronomical_logits_is_not_nan():
    with np.errstate(over="ignore"):  # z - max(z) overflows to -inf, which is fine here
        loss, dz = cross_entropy(np.array([[1e308, -1e308]]), [0])
    assert float(loss) == 0.0 and not np.any(dz)
