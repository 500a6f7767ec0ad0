"""The fused dense loss and the blockwise loss against the step-by-step reference."""

import math

import numpy as np
import pytest
from conftest import assert_on_backend, put

from numclip import clip_loss, to_numpy
from numclip.gradcheck import check_gradients
from numclip.losses import clip_loss_reference

rng = np.random.default_rng(11)
TOL = {"float64": 1e-12, "float32": 1e-5}


def assert_same(result, reference, rtol, atol_scale=1.0):
    loss, grads = result
    ref_loss, ref_grads = reference
    assert float(loss) == pytest.approx(float(ref_loss), rel=rtol, abs=rtol * atol_scale)
    for key in ("image_embeds", "text_embeds"):
        got, want = to_numpy(grads[key]), to_numpy(ref_grads[key])
        scale = np.max(np.abs(want))  # gradients are compared relative to their size
        np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale, err_msg=key)
    assert float(grads["logit_scale"]) == pytest.approx(float(ref_grads["logit_scale"]),
                                                        rel=rtol, abs=rtol)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("block_size", [None, 1, 3, 7, 40, 1000])
def test_fused_and_blockwise_equal_the_reference(xp, dtype_name, normalize, block_size):
    n, d = 40, 6
    img, txt = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    s = math.log(1 / 0.07)
    got = clip_loss(put(xp, img, dtype_name), put(xp, txt, dtype_name), s,
                    normalize=normalize, block_size=block_size)
    assert_on_backend(got[0], put(xp, img, dtype_name))
    assert_on_backend(got[1]["image_embeds"], put(xp, img, dtype_name))
    assert_same(got, clip_loss_reference(img, txt, s, normalize=normalize), TOL[dtype_name])


def test_blockwise_equals_dense_to_1e_12_in_float64():
    img, txt = rng.standard_normal((300, 16)), rng.standard_normal((300, 16))
    dense = clip_loss(img, txt, 3.0)
    for block_size in (1, 64, 299):
        assert_same(clip_loss(img, txt, 3.0, block_size=block_size), dense, 1e-12)


@pytest.mark.parametrize("block_size", [None, 2, 5])
def test_blockwise_gradients_match_finite_differences(block_size):
    img, txt = rng.standard_normal((7, 4)), rng.standard_normal((7, 4))
    s = np.array(math.log(1 / 0.07))

    def loss():
        return clip_loss(img, txt, s, block_size=block_size)[0]

    grads = clip_loss(img, txt, s, block_size=block_size)[1]
    errors = check_gradients(loss, {"image_embeds": img, "text_embeds": txt, "logit_scale": s},
                             grads)
    assert max(errors.values()) < 1e-7, errors


def test_panels_with_wildly_different_scales_merge_exactly():
    """Column statistics merged across panels must not overflow or lose the largest term."""
    img = rng.standard_normal((12, 3))
    img[:4] *= 300.0  # logits in the thousands in the first panel, order 1 in the others
    txt = rng.standard_normal((12, 3))
    reference = clip_loss_reference(img, txt, 1.0, normalize=False)
    for block_size in (None, 4, 5):
        got = clip_loss(img, txt, 1.0, normalize=False, block_size=block_size)
        assert np.isfinite(float(got[0]))
        assert_same(got, reference, 1e-12)


def test_float32_stays_float32_and_one_pair_is_exactly_zero():
    img = rng.standard_normal((1, 5)).astype(np.float32)
    for block_size in (None, 1):
        loss, grads = clip_loss(img, img * 2, 2.0, block_size=block_size)
        assert loss.dtype == np.float32 and grads["text_embeds"].dtype == np.float32
        assert float(loss) == 0.0 and not np.any(grads["image_embeds"])


@pytest.mark.parametrize("block_size", [0, -3, 2.5, True, "8"])
def test_bad_block_size_is_named(block_size):
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        clip_loss(np.ones((2, 2)), np.ones((2, 2)), 1.0, block_size=block_size)
