import math

import array_api_strict
import numpy as np
import pytest
import scipy.special
from conftest import (
    BAD_EMBEDDING_PAIRS,
    FN,
    U,
    assert_on_backend,
    assert_table_covers,
    assert_within,
    bad,
    check_bad_row,
    clip_error_bounds,
    put,
)

from numclip import clip_loss, clip_loss_reference, cross_entropy, losses, negclip_loss, to_numpy
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
    # -log p_it = lse_i - z_it is off by (7 M + 2 C + 2 FN + 2) u for logits of size M
    # and C classes (the log_softmax budget of test_softmax.py); the mean adds N u.
    # dz = (exp(log p) - y) / N: exp(log p) is off by that budget plus FN, relatively,
    # and the subtraction and division by 2 u.  Doubled for the float64 reference.
    u, m, (n, c) = U[dtype_name], np.max(np.abs(z)), z.shape
    log_p = (7 * m + 2 * c + 2 * FN + 2 + n) * u
    assert_within(loss, ref_loss, 2 * log_p, "loss")
    assert_within(dz, ref_dz, 2 * (((log_p + FN * u) * np.abs(ref_dz + np.eye(c)[t] / n))
                                   + 2 * u / n), "dlogits")


def test_cross_entropy_takes_targets_as_a_list_or_any_integer_array():
    z = rng.standard_normal((2, 3))
    want = cross_entropy(z, np.array([2, 0]))
    for t in ([2, 0], (2, 0), np.array([2, 0], np.uint8), np.array([2, 0], np.int32)):
        got = cross_entropy(z, t)
        assert float(got[0]) == float(want[0])
        np.testing.assert_array_equal(got[1], want[1])


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
    img64, txt64 = to_numpy(img).astype(np.float64), to_numpy(txt).astype(np.float64)
    expected = reference_clip_loss(img64, txt64, LOG_1_OVER_007)
    bound = clip_error_bounds(img64, txt64, LOG_1_OVER_007, dtype_name)["loss"]
    assert_within(loss, expected, bound, "loss, float logit_scale")
    # a 0-d logit_scale in the dtype is rounded once more: dL/ds = (sum G S) moves by u |ds|
    assert_within(loss0, expected, bound + U[dtype_name] * abs(grads["logit_scale"]), "loss")


def test_clip_loss_gradients_agree_across_backends(xp, dtype_name):
    img, txt = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))
    _, ref = clip_loss(img, txt, 2.0)
    _, grads = clip_loss(put(xp, img, dtype_name), put(xp, txt, dtype_name), 2.0)
    bounds = clip_error_bounds(img, txt, 2.0, dtype_name)  # derived in conftest.py
    for key in ("image_embeds", "text_embeds", "logit_scale"):
        assert_within(grads[key], ref[key], bounds[key], key)


def test_one_pair_has_zero_loss_and_zero_gradients():
    loss, grads = clip_loss(np.array([[0.3, -1.0]]), np.array([[2.0, 5.0]]), 1.0)
    assert float(loss) == 0.0
    assert not np.any(grads["image_embeds"]) and grads["logit_scale"] == 0.0


def test_float32_loss_does_not_overflow_at_the_maximum_scale():
    img = rng.standard_normal((64, 16)).astype(np.float32)
    loss, grads = clip_loss(img, img.copy(), math.log(100.0))
    assert np.isfinite(loss) and loss.dtype == np.float32
    assert all(np.all(np.isfinite(g)) for g in grads.values())


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


def test_fortran_order_and_strided_views_give_the_same_loss():
    img, txt = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    want = clip_loss(img, txt, 2.0)
    bounds = clip_error_bounds(img, txt, 2.0, "float64")  # another summation order at most
    wide = np.zeros((6, 8))
    wide[:, 1::2] = txt
    for i, t in [(np.asfortranarray(img), np.asfortranarray(txt)), (img, wide[:, 1::2]),
                 (img[::-1][::-1], txt.tolist())]:
        for fn in (clip_loss, clip_loss_reference):
            loss, grads = fn(i, t, 2.0)
            assert_within(loss, want[0], bounds["loss"], fn.__name__)
            for key in ("image_embeds", "text_embeds", "logit_scale"):
                assert_within(grads[key], want[1][key], bounds[key], key)


@pytest.mark.parametrize("big", [1e20, 1e30])
def test_huge_float32_embeddings_give_the_loss_of_the_rescaled_ones(big):
    """1e20- and 1e30-scaled float32 rows square to inf: before the norm was computed
    safely the loss came out as log N (every row normalized to zero) with zero gradients.
    (Tiny rows are test_normalize.py's: below clip_loss's eps = 1e-12 they are clamped.)"""
    img, txt = rng.standard_normal((8, 16)), rng.standard_normal((8, 16))
    img[0] *= 50  # one row far larger than the rest
    s = LOG_1_OVER_007
    img32, txt32 = (big * img).astype(np.float32), (big * txt).astype(np.float32)
    loss, grads = clip_loss(img32, txt32, s)
    # the float64 loss of the same float32 numbers, rescaled: what float32 must give back
    img64, txt64 = img32.astype(np.float64) / big, txt32.astype(np.float64) / big
    want, want_grads = clip_loss_reference(img64, txt64, s)
    bounds = clip_error_bounds(img64, txt64, s, "float32")
    assert float(want) > 1.0  # far from zero, far from log N = 2.08 with every row 0
    assert_within(loss, want, bounds["loss"], "loss")
    for key in ("image_embeds", "text_embeds"):  # d/dx of a function of x / |x|: scales 1/big
        assert_within(to_numpy(grads[key]).astype(np.float64) * big, want_grads[key],
                      bounds[key] + 2 * U["float32"] * np.abs(want_grads[key]), key)
    assert_within(grads["logit_scale"], want_grads["logit_scale"], bounds["logit_scale"])


ONES = np.ones((2, 2))
WRONG = np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)

BAD = [bad(fn, row["img"], row["txt"], 1.0, error=error, words=words)
       for fn in (clip_loss, clip_loss_reference) for row, error, words in BAD_EMBEDDING_PAIRS]
BAD += [
    bad(cross_entropy, np.zeros((2, 3)), np.array([0, 3]), error=ValueError,
        words="targets must lie in [0, 3)"),
    bad(cross_entropy, np.zeros((2, 3)), np.array([0, -1]), error=ValueError,
        words="targets must lie in"),
    bad(cross_entropy, np.zeros((2, 3)), np.array([0, 1, 2]), error=ValueError,
        words="targets must have shape (2,)"),
    bad(cross_entropy, np.zeros((2, 3)), np.array([[0], [1]]), error=ValueError,
        words="targets must have shape (2,)"),
    bad(cross_entropy, np.zeros((2, 3)), np.array([0.0, 1.0]), error=TypeError,
        words="targets must be an array of integers"),
    bad(cross_entropy, np.zeros((2, 3)), np.array([True, False]), error=TypeError,
        words="targets must be an array of integers"),
    bad(cross_entropy, np.zeros((2, 3)), np.array([0, 1], object), error=TypeError,
        words="targets must be an array of integers"),
    bad(cross_entropy, np.zeros((2, 3)), None, error=TypeError,
        words="targets must be an array of integers"),
    bad(cross_entropy, np.zeros((2, 3)), "01", error=TypeError,
        words="targets must be an array of integers"),
    bad(cross_entropy, np.zeros((2, 3)), [0, 1j], error=TypeError,
        words="targets must be an array of integers"),
    bad(cross_entropy, np.zeros(3), [0], error=ValueError, words="logits must be 2-D"),
    bad(cross_entropy, np.full((2, 3), np.nan), [0, 1], error=ValueError,
        words="logits contains NaN"),
    bad(cross_entropy, np.zeros((2, 3), complex), [0, 1], error=TypeError,
        words="logits must have a real floating dtype"),
    bad(cross_entropy, None, [0, 1], error=TypeError, words="logits must be an array"),
]
for fn in (clip_loss, clip_loss_reference):
    BAD += [
        bad(fn, ONES, ONES, np.nan, error=ValueError, words="logit_scale must be finite"),
        bad(fn, ONES, ONES, -np.inf, error=ValueError, words="logit_scale must be finite"),
        bad(fn, ONES, ONES, "hot", error=TypeError, words="logit_scale must be a real number"),
        bad(fn, ONES, ONES, None, error=TypeError, words="logit_scale must be a real number"),
        bad(fn, ONES, ONES, np.ones(2), error=ValueError, words="logit_scale must be a scalar"),
        bad(fn, ONES, ONES, 1000.0, error=ValueError, words=("logit_scale", "overflow")),
        bad(fn, ONES, ONES, 1.0, normalize="yes", error=TypeError,
            words="normalize must be True or False"),
        bad(fn, ONES, ONES, 1.0, normalize=None, error=TypeError,
            words="normalize must be True or False"),
        bad(fn, np.ones((2, 2), np.float16), ONES.astype(np.float16), 1.0, error=TypeError,
            words=("image_embeds", "float32")),
        bad(fn, ONES.astype(bool), ONES, 1.0, error=TypeError,
            words="image_embeds must have a real floating dtype"),
        bad(fn, ONES, ONES.astype(object), 1.0, error=TypeError,
            words="text_embeds must have a real floating dtype"),
    ]
BAD += [
    bad(clip_loss, ONES, ONES, 1.0, block_size=0, error=ValueError,
        words="block_size must be a positive int or None"),
    bad(clip_loss, ONES, ONES, 1.0, block_size=-1, error=ValueError,
        words="block_size must be a positive int or None"),
    bad(clip_loss, ONES, ONES, 1.0, block_size="8", error=TypeError,
        words="block_size must be a positive int or None"),
    bad(clip_loss, ONES, ONES, 1.0, block_size=2.0, error=TypeError,
        words="block_size must be a positive int or None"),
    bad(clip_loss, ONES, ONES, 1.0, block_size=True, error=TypeError,
        words="block_size must be a positive int or None"),
    # logits beyond float32 (|S| ~ 1e40): the fused passes and the reference both say so
    bad(clip_loss, np.full((2, 2), 1e20, np.float32), np.full((2, 2), 1e20, np.float32), 0.0,
        normalize=False, error=ValueError, words="the loss overflows float32"),
    bad(clip_loss_reference, np.full((2, 2), 1e20, np.float32),
        np.full((2, 2), 1e20, np.float32), 0.0, normalize=False, error=ValueError,
        words="the logits overflow float32"),
    # unit embeddings, every pair as wrong as can be: a mean loss of 2 e^88.5 > float32's max
    bad(clip_loss, WRONG, -WRONG, 88.5, error=ValueError, words="the loss overflows float32"),
    bad(clip_loss, WRONG, -WRONG, 88.5, block_size=1, error=ValueError,
        words="the loss overflows float32"),
    bad(clip_loss, ONES, ONES, array_api_strict.asarray(1.0), error=TypeError,
        words="image_embeds (numpy) and logit_scale (array_api_strict) cannot be mixed"),
    bad(clip_loss_reference, ONES, ONES, array_api_strict.asarray(1.0), error=TypeError,
        words="image_embeds (numpy) and logit_scale (array_api_strict) cannot be mixed"),
    # the target's log-probability below float64's range: inf was returned as the loss
    bad(cross_entropy, np.array([[1e308, -1e308]]), [1], error=ValueError,
        words="the loss overflows float64"),
    # each term fits float32, their sum does not
    bad(cross_entropy, np.array([[0.0, 3e38]] * 4, np.float32), [0, 0, 0, 0], error=ValueError,
        words="the loss overflows float32"),
]

# negclip_loss takes its images and texts as clip_loss does (the rows for its negatives,
# scale and normalize are tests/test_negclip.py's)
BAD += [bad(negclip_loss, row["img"], row["txt"], np.zeros((0, 2)), 1.0, error=error,
            words=words) for row, error, words in BAD_EMBEDDING_PAIRS]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(losses, BAD)
