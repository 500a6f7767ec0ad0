"""The fused dense loss and the blockwise loss against the step-by-step reference."""

import math

import array_api_strict
import numpy as np
import pytest
from conftest import (
    BAD_EMBEDDING_PAIRS,
    assert_on_backend,
    assert_table_covers,
    bad,
    check_bad_row,
    put,
)

from numclip import clip_loss, fused, to_numpy
from numclip.fused import clip_loss_logits_grads
from numclip.gradcheck import check_gradients
from numclip.losses import clip_loss_reference

rng = np.random.default_rng(11)
# The fused passes against the step-by-step float64 reference, gradients relative to
# their largest entry.  The worst-case bound of conftest.clip_error_bounds (every rounding
# at full size and all aligned) holds the loss within these tolerances, but allows the
# gradients 1-1.5x (float64) and 20-480x (float32, scale 1 to 100) more, too loose to
# catch a bug.  So these are agreement checks sized by the statistical model of rounding,
# errors adding like a random walk (Higham, 2nd ed., section 2.8): a logit is off by
# about scale sqrt(D) u, which moves a gradient by about that relative to its largest
# entry: 3e-6 at scale 14 and 1.7e-5 at scale 100 in float32 (so 1e-5 is tight there and
# is kept, not loosened), 1e-15 to 5e-14 in float64 (1e-12 leaves 20x).  The algebra
# itself is held exactly by the finite-difference tests and the float64 dense == blockwise
# test below; test_losses.py holds clip_loss to the derived bounds.
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


@pytest.mark.parametrize("block_size, error", [(0, ValueError), (-3, ValueError),
                                               (2.5, TypeError), (True, TypeError),
                                               ("8", TypeError)])
def test_bad_block_size_is_named(block_size, error):
    """One validator for block_size and siglip's chunk_size: TypeError for what is not an
    int, ValueError for an int below 1 (the table in test_losses.py has the rest)."""
    with pytest.raises(error, match="block_size must be a positive int"):
        clip_loss(np.ones((2, 2)), np.ones((2, 2)), 1.0, block_size=block_size)


def _robust_path_calls(monkeypatch):
    """Count the calls of the robust (per-row, per-column shift) path."""
    from numclip import fused

    calls = []
    robust = fused._robust_loss_grads
    monkeypatch.setattr(fused, "_robust_loss_grads",
                        lambda *args: calls.append(args) or robust(*args))
    return calls


@pytest.mark.parametrize("block_size", [None, 16])
def test_ordinary_batches_take_the_one_shift_path(xp, dtype_name, block_size, monkeypatch):
    calls = _robust_path_calls(monkeypatch)
    img, txt = rng.standard_normal((64, 8)), rng.standard_normal((64, 8))
    for s in (0.0, math.log(1 / 0.07), math.log(100.0)):  # the whole range CLIP clamps to
        got = clip_loss(put(xp, img, dtype_name), put(xp, txt, dtype_name), s,
                        block_size=block_size)
        assert_same(got, clip_loss_reference(img, txt, s), TOL[dtype_name])
    assert not calls


@pytest.mark.parametrize("block_size", [None, 5])
def test_a_row_far_below_the_shift_takes_the_robust_path_and_agrees(block_size, monkeypatch):
    """Image 0 points away from every caption: at scale 100 its whole row of logits
    sits near -90, so its sum of exp(S - c) would lose digits in float32."""
    calls = _robust_path_calls(monkeypatch)
    v = np.ones(8) / math.sqrt(8)
    txt = v + 0.1 * rng.standard_normal((16, 8))
    img = rng.standard_normal((16, 8))
    img[0] = -v
    s = math.log(100.0)
    got = clip_loss(img.astype(np.float32), txt.astype(np.float32), s, block_size=block_size)
    assert len(calls) == 1
    assert_same(got, clip_loss_reference(img, txt, s), TOL["float32"])


@pytest.mark.parametrize("block_size", [None, 3])
def test_a_small_loss_keeps_its_digits_in_float32(block_size):
    """Orthogonal pairs at scale 12: the loss is about 7 e^-12 = 4e-5.  Taken as
    log(sum) of a float32 sum near 1 it would keep only about 3 digits."""
    img = np.eye(8) + 0.01 * rng.standard_normal((8, 8))
    txt = np.eye(8) + 0.01 * rng.standard_normal((8, 8))
    s = math.log(12.0)
    want = clip_loss_reference(img, txt, s)
    assert 1e-5 < float(want[0]) < 1e-4
    got = clip_loss(img.astype(np.float32), txt.astype(np.float32), s, block_size=block_size)
    assert_same(got, want, 1e-5, atol_scale=float(want[0]))


def test_blockwise_accepts_fortran_ordered_embeddings():
    img = np.asfortranarray(rng.standard_normal((30, 5)))
    txt = np.asfortranarray(rng.standard_normal((30, 5)))
    assert_same(clip_loss(img, txt, 2.0, block_size=7), clip_loss_reference(img, txt, 2.0), 1e-12)


@pytest.mark.parametrize("block_size", [None, 1])
@pytest.mark.parametrize("cosine", [-0.4, -0.43])
def test_a_huge_loss_stays_finite_and_exact_in_float64(block_size, cosine):
    """S_00 = -400 and S_01 = 990: with the shift c = 285 that the bound asks for,
    E_00 = e^-685 and E_01 = e^705, whose ratio overflows float64; the loss of
    pair 0 is about 1,390 and must come out as such, not as infinity.  At
    S_00 = -430, E_00 = e^-715 is below the normal range and the loss is taken
    from the logit itself."""
    m = math.sqrt(1000.0)
    img = m * np.array([[1.0, 0.0], [0.0, 1.0]])
    txt = m * np.array([[cosine, 0.0], [0.99, 0.0]])
    reference = clip_loss_reference(img, txt, 0.0, normalize=False)
    assert float(reference[0]) > 500
    got = clip_loss(img, txt, 0.0, normalize=False, block_size=block_size)
    assert_same(got, reference, 1e-12)


# ------------------------------------------------------------------------ bad input
# clip_loss_logits_grads is public (the docs point to it): called directly, it checks
# what clip_loss checks, with the scale as exp(logit_scale).
ONES = np.ones((2, 2))
BAD = [bad(clip_loss_logits_grads, row["img"], row["txt"], 1.0, error=error, words=words)
       for row, error, words in BAD_EMBEDDING_PAIRS]
BAD += [
    bad(clip_loss_logits_grads, True, ONES, 1.0, error=TypeError,
        words="image_embeds must be an array"),
    bad(clip_loss_logits_grads, np.ones(()), ONES, 1.0, error=ValueError,
        words="image_embeds must be 2-D"),
    bad(clip_loss_logits_grads, ONES, array_api_strict.asarray(ONES), 1.0, error=TypeError,
        words="image_embeds (numpy) and text_embeds (array_api_strict) cannot be mixed"),
    bad(clip_loss_logits_grads, ONES, ONES, -1e-300, error=ValueError,
        words="scale = exp(logit_scale) must be finite and >= 0, got -1e-300"),
    bad(clip_loss_logits_grads, ONES, ONES, -1.0, error=ValueError, words="scale"),
    bad(clip_loss_logits_grads, ONES, ONES, math.inf, error=ValueError, words="scale"),
    bad(clip_loss_logits_grads, ONES, ONES, math.nan, error=ValueError, words="scale"),
    bad(clip_loss_logits_grads, ONES, ONES, 10**400, error=ValueError, words="scale"),
    bad(clip_loss_logits_grads, ONES, ONES, "7", error=TypeError,
        words="scale must be a real number"),
    bad(clip_loss_logits_grads, ONES, ONES, np.ones(1), error=TypeError,
        words="scale must be a real number"),
    bad(clip_loss_logits_grads, ONES, ONES, 1.0, 0, error=ValueError,
        words="block_size must be a positive int"),
    bad(clip_loss_logits_grads, ONES, ONES, 1.0, 1.5, error=TypeError,
        words="block_size must be a positive int"),
    bad(clip_loss_logits_grads, np.full((2, 2), 1e20, np.float32),
        np.full((2, 2), 1e20, np.float32), 1.0, error=ValueError,
        words="the loss overflows float32"),
    bad(clip_loss_logits_grads, np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32),
        np.array([[-1.0, 0.0], [1.0, 0.0]], np.float32), math.exp(88.5), 1, error=ValueError,
        words="the loss overflows float32"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(fused, BAD)


def test_called_directly_it_gives_what_clip_loss_gives():
    img, txt = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    loss, grads = clip_loss(img, txt, 2.0, normalize=False, block_size=2)
    got = clip_loss_logits_grads(img.tolist(), txt, np.float64(math.exp(2.0)), block_size=2)
    assert got[0] == float(loss) and got[3] == grads["logit_scale"]
    np.testing.assert_array_equal(got[1], grads["image_embeds"])
    np.testing.assert_array_equal(got[2], grads["text_embeds"])


def test_a_scale_that_underflowed_to_zero_is_a_scale():
    """exp(logit_scale) is 0.0 below logit_scale -745: every logit is 0, each softmax
    uniform, the loss log N; clip_loss calls clip_loss_logits_grads with that 0.0."""
    img, txt = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss, dimage, dtext, dscale = clip_loss_logits_grads(img, txt, 0.0)
    assert loss == pytest.approx(math.log(4), rel=1e-15) and dscale == 0.0
    assert not np.any(dimage) and not np.any(dtext)
    got, want = clip_loss(img, txt, -800.0), clip_loss_reference(img, txt, -800.0)
    assert_same(got, want, 1e-15)


@pytest.mark.filterwarnings("error")
def test_the_robust_path_holds_a_mean_loss_near_float32s_top():
    """Every pair misjudged at scale e^88 (1.65e38): each per-pair term is 2 e^88, which
    fits float32, but row_lse - S_ii + col_lse - S_ii is 4 e^88, which does not; added in
    float64 (as the float64 twin does), the loss comes out finite and right."""
    rng32 = np.random.default_rng(0)
    img = rng32.standard_normal((4, 3)).astype(np.float32)
    txt = rng32.standard_normal((4, 3)).astype(np.float32)
    for block_size in (None, 1):
        got = clip_loss(img, txt, 88.0, block_size=block_size)
        want = clip_loss(img.astype(np.float64), txt.astype(np.float64), 88.0)
        # each float32 logit is off by a few u relative to e^88, so is the loss: 1e-5 is 80 u
        assert float(got[0]) == pytest.approx(float(want[0]), rel=1e-5)
