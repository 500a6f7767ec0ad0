"""SigLIP's sigmoid loss: finite differences, chunked == dense, PyTorch on open_clip's formula,
backends, properties and bad input."""

import math
import tracemalloc
from fractions import Fraction

import array_api_strict
import numpy as np
import pytest
from conftest import (
    BAD_EMBEDDING_PAIRS,
    FN,
    U,
    assert_on_backend,
    assert_table_covers,
    assert_within,
    bad,
    check_bad_row,
    put,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from numclip import siglip, to_numpy
from numclip.gradcheck import check_gradients, directional_check
from numclip.siglip import SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE, siglip_loss

rng = np.random.default_rng(11)
KEYS = {"image_embeds", "text_embeds", "logit_scale", "logit_bias"}


def reference_siglip_loss(img, txt, logit_scale, logit_bias, normalize=True):
    """The paper's Algorithm 1 written independently in float64: softplus as logaddexp."""
    if normalize:
        img = img / np.linalg.norm(img, axis=1, keepdims=True)
        txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    logits = np.exp(logit_scale) * img @ txt.T + logit_bias
    labels = 2 * np.eye(len(img)) - 1
    return np.sum(np.logaddexp(0.0, -labels * logits)) / len(img)  # -log σ(x) = log(1 + e^-x)


def siglip_error_bounds(img, txt, logit_scale, logit_bias, dtype_name):
    """Worst-case rounding error of siglip_loss (normalize=True) in ``dtype_name`` against a
    float64 reference on the same float64 ``img``, ``txt``; first order in u, like
    conftest.clip_error_bounds, whose first two steps it shares.

    - A unit row is off by ``unit = (D/2 + 4) u`` per entry; the scale e^s by (|s| + FN + 1) u
      (s itself rounded, exp, the cast); z_ij = scale Î_i . T̂_j + b by
      ``sigma_ij = scale sum_k |Î_ik T̂_jk| (2 unit + (D + 1) u + (|s| + FN + 1) u)
      + u |b| + u |z_ij|``.
    - softplus(m) = max(m, 0) + log1p(exp(-|m|)) moves by σ(m) sigma (its slope is σ <= 1)
      and rounds by (2 FN + 2) u log1p(exp(-|m|)) + u softplus(m); the loss sums N^2 of them
      (N^2 u L) and divides by N.
    - dL/dz = ±σ(m)/N is off by |dL/dz| (sigma + (FN + 3) u), relatively; through
      dÎ = scale (dL/dz) T̂ and the normalization as in clip_error_bounds; ds = sum dL/dz
      (z - b) and db = sum dL/dz add N^2 u times the sum of their terms' sizes.
    Doubled: in float64 the reference rounds as much as the result.
    """
    import scipy.special

    u = U[dtype_name]
    n, d = img.shape
    s, b = float(logit_scale), float(logit_bias)
    scale = math.exp(s)
    r_img = np.linalg.norm(img, axis=1, keepdims=True)
    r_txt = np.linalg.norm(txt, axis=1, keepdims=True)
    img, txt = img / r_img, txt / r_txt
    scaled = scale * img @ txt.T  # (N, N)
    z = scaled + b
    margin = np.where(np.eye(n, dtype=bool), -z, z)  # m = -y z
    unit = (d / 2 + 4) * u
    sigma = (scale * (np.abs(img) @ np.abs(txt).T) * (2 * unit + (d + 1 + abs(s) + FN + 1) * u)
             + u * abs(b) + u * np.abs(z))
    slope = scipy.special.expit(margin)  # σ(m) = |dL/dz| N
    softplus = np.logaddexp(0.0, margin)
    loss_sum = np.sum(softplus) / n
    loss = (np.sum(slope * sigma + (2 * FN + 2) * u * np.log1p(np.exp(-np.abs(margin)))
                   + u * softplus) / n + n * n * u * loss_sum)
    dz = np.where(np.eye(n, dtype=bool), -slope, slope) / n  # (N, N) dL/dz
    ddz = np.abs(dz) * (sigma + (FN + 3) * u)  # (N, N) its error
    per = unit + (n + 2) * u
    err_img = scale * (ddz @ np.abs(txt) + per * (np.abs(dz) @ np.abs(txt)))  # (N, D)
    err_txt = scale * (ddz.T @ np.abs(img) + per * (np.abs(dz).T @ np.abs(img)))
    dimg, dtxt = scale * dz @ txt, scale * dz.T @ img

    def through_norm(err, dy, r):
        own = (2 * d + 12) * u * np.linalg.norm(dy, axis=1, keepdims=True)
        return (np.max(err, axis=1, keepdims=True) + np.sum(err, axis=1, keepdims=True)
                + own) / r

    dscale = np.sum(ddz * np.abs(scaled) + np.abs(dz) * sigma) + n * n * u * np.sum(
        np.abs(dz * scaled))
    dbias = np.sum(ddz) + n * n * u * np.sum(np.abs(dz))
    return {"loss": 2 * loss, "image_embeds": 2 * through_norm(err_img, dimg, r_img),
            "text_embeds": 2 * through_norm(err_txt, dtxt, r_txt),
            "logit_scale": 2 * dscale, "logit_bias": 2 * dbias}


def test_the_initial_values_are_open_clips():
    assert math.exp(SIGLIP_INIT_LOGIT_SCALE) == pytest.approx(10.0, rel=1e-15)
    assert SIGLIP_INIT_LOGIT_BIAS == -10.0


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("chunk_size", [None, 1, 2, 3, 100])  # 2 and 3 do not divide N = 5 or 7
def test_loss_matches_the_reference(normalize, chunk_size):
    img, txt = rng.standard_normal((7, 4)), rng.standard_normal((7, 4))
    loss, _ = siglip_loss(img, txt, 1.3, -2.5, normalize=normalize, chunk_size=chunk_size)
    expected = reference_siglip_loss(img, txt, 1.3, -2.5, normalize)
    assert float(loss) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("chunk_size", [None, 2])
@pytest.mark.parametrize("n, d", [(5, 3), (3, 7)])  # N != D both ways
@pytest.mark.parametrize("s, b", [(SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS), (1.3, -2.5)])
def test_gradients_match_finite_differences(normalize, chunk_size, n, d, s, b):
    img, txt = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    if not normalize:  # keep raw dot products where the sigmoids are not saturated
        img, txt = img / 2, txt / 2
    s, b = np.array(s), np.array(b)  # 0-d arrays, so the checker can perturb them in place

    def loss():
        return siglip_loss(img, txt, s, b, normalize=normalize, chunk_size=chunk_size)[0]

    _, grads = siglip_loss(img, txt, s, b, normalize=normalize, chunk_size=chunk_size)
    assert set(grads) == KEYS
    errors = check_gradients(loss, {"image_embeds": img, "text_embeds": txt, "logit_scale": s,
                                    "logit_bias": b}, grads)
    assert max(errors.values()) < 1e-7, errors
    assert directional_check(loss, txt, grads["text_embeds"]) < 1e-7


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("n, chunk_size", [(9, 1), (9, 2), (9, 4), (9, 8), (9, 9), (9, 50),
                                           (1, 1), (2, 3)])
def test_chunked_equals_dense(normalize, n, chunk_size):
    img, txt = rng.standard_normal((n, 6)), rng.standard_normal((n, 6))
    dense_loss, dense = siglip_loss(img, txt, 2.0, -3.0, normalize=normalize)
    loss, grads = siglip_loss(img, txt, 2.0, -3.0, normalize=normalize, chunk_size=chunk_size)
    assert float(loss) == pytest.approx(float(dense_loss), rel=1e-12)
    for key in KEYS:
        np.testing.assert_allclose(grads[key], dense[key], rtol=1e-12, atol=1e-15)


def test_chunked_equals_dense_in_float32():
    img = rng.standard_normal((33, 8)).astype(np.float32)
    txt = rng.standard_normal((33, 8)).astype(np.float32)
    dense_loss, dense = siglip_loss(img, txt, SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS)
    loss, grads = siglip_loss(img, txt, SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS,
                              chunk_size=5)
    assert loss.dtype == np.float32 and grads["image_embeds"].dtype == np.float32
    # The float64 twin above (test_chunked_equals_dense) holds the tiling to 1e-12.  Here
    # both paths round the same float32 numbers, only the tile products and the sums in
    # another order; the worst case (N^2 u per sum of N^2 = 1089 terms, 6e-5) is looser
    # than these 1e-5 (170 u), which rest on rounding errors adding like a random walk,
    # sqrt(N^2) u = 33 u (Higham, 2nd ed., section 2.8): a 5x margin, not a bound.
    assert float(loss) == pytest.approx(float(dense_loss), rel=1e-5)
    for key in ("image_embeds", "text_embeds"):
        np.testing.assert_allclose(grads[key], dense[key], rtol=1e-5, atol=1e-6)
    for key in ("logit_scale", "logit_bias"):
        assert grads[key] == pytest.approx(dense[key], rel=1e-5)


def test_chunked_path_never_holds_the_n_by_n_logits():
    n, chunk_size = 2000, 20
    img, txt = rng.standard_normal((n, 8)), rng.standard_normal((n, 8))
    one_matrix = n * n * img.itemsize  # 32 MB of float64

    def peak_bytes(**kwargs):
        tracemalloc.start()  # NumPy reports its buffers to tracemalloc
        try:
            siglip_loss(img, txt, SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS, **kwargs)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak_bytes() >= one_matrix  # the dense path does build it: the probe can see it
    assert peak_bytes(chunk_size=chunk_size) < one_matrix / 4


def test_initialisation_predicts_no_match():
    """Orthonormal pairs at scale 10, bias -10: z = 0 on the diagonal, -10 elsewhere."""
    n = 4
    img = np.eye(n, 6)
    loss, grads = siglip_loss(img, img.copy(), SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS)
    # each image: one positive at σ(0) = 1/2, and N-1 negatives already at σ(-10) ≈ 4.5e-5
    expected = math.log(2) + (n - 1) * math.log1p(math.exp(-10))
    assert float(loss) == pytest.approx(expected, rel=1e-14)
    # dL/db = Σ_ij dL/dz_ij = (N (-1/2) + N(N-1) σ(-10)) / N: the positives pull b up
    assert grads["logit_bias"] == pytest.approx(-0.5 + (n - 1) / (1 + math.exp(10)), rel=1e-12)


def test_one_pair_works():
    loss, grads = siglip_loss(np.array([[0.3, -1.0]]), np.array([[2.0, 5.0]]), 1.0, 0.5)
    z = math.e * (0.3 * 2 - 5) / (math.hypot(0.3, 1) * math.hypot(2, 5)) + 0.5
    assert float(loss) == pytest.approx(math.log1p(math.exp(-z)), rel=1e-14)
    assert grads["logit_bias"] == pytest.approx(-1 / (1 + math.exp(z)), rel=1e-14)
    assert grads["image_embeds"].shape == (1, 2)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_loss_and_gradients_match_torch_autograd_on_open_clip(normalize, chunk_size):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    def open_clip_siglip(image_features, text_features, log_scale, logit_bias):
        """open_clip's SigLipLoss._loss (single device), after the model's normalize and exp."""
        if normalize:
            image_features = F.normalize(image_features, dim=-1)
            text_features = F.normalize(text_features, dim=-1)
        logits = log_scale.exp() * image_features @ text_features.T + logit_bias
        n = image_features.shape[0]
        labels = 2 * torch.eye(n, dtype=logits.dtype) - torch.ones(n, n, dtype=logits.dtype)
        return -F.logsigmoid(labels * logits).sum() / n

    img, txt = rng.standard_normal((8, 5)), rng.standard_normal((8, 5))
    s, b = SIGLIP_INIT_LOGIT_SCALE + 0.2, SIGLIP_INIT_LOGIT_BIAS + 3.0
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
               for k, v in [("image_embeds", img), ("text_embeds", txt), ("logit_scale", s),
                            ("logit_bias", b)]}
    expected = open_clip_siglip(*tensors.values())
    expected.backward()
    loss, grads = siglip_loss(img, txt, s, b, normalize=normalize, chunk_size=chunk_size)
    assert float(loss) == pytest.approx(expected.item(), rel=1e-12)
    for key in ("image_embeds", "text_embeds"):
        np.testing.assert_allclose(grads[key], tensors[key].grad.numpy(), rtol=1e-10,
                                   atol=1e-14)
    for key in ("logit_scale", "logit_bias"):
        assert grads[key] == pytest.approx(tensors[key].grad.item(), rel=1e-10)


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_contract_types_and_shapes_on_every_backend(xp, dtype_name, chunk_size):
    img_host, txt_host = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    img, txt = put(xp, img_host, dtype_name), put(xp, txt_host, dtype_name)
    loss, grads = siglip_loss(img, txt, SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS,
                              chunk_size=chunk_size)
    assert set(grads) == KEYS
    assert_on_backend(loss, img)
    assert loss.shape == ()
    for key, like in [("image_embeds", img), ("text_embeds", txt)]:
        assert_on_backend(grads[key], like)
        assert grads[key].shape == (5, 3)
    # a float in, a float out
    assert type(grads["logit_scale"]) is float and type(grads["logit_bias"]) is float
    s = put(xp, SIGLIP_INIT_LOGIT_SCALE, dtype_name)
    b = put(xp, SIGLIP_INIT_LOGIT_BIAS, dtype_name)
    loss0, grads0 = siglip_loss(img, txt, s, b, chunk_size=chunk_size)
    for key, like in [("logit_scale", s), ("logit_bias", b)]:  # a 0-d array in, one out
        assert_on_backend(grads0[key], like)
        assert grads0[key].shape == ()
    img64, txt64 = to_numpy(img).astype(np.float64), to_numpy(txt).astype(np.float64)
    expected = reference_siglip_loss(img64, txt64, SIGLIP_INIT_LOGIT_SCALE,
                                     SIGLIP_INIT_LOGIT_BIAS)
    bound = siglip_error_bounds(img64, txt64, SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS,
                                dtype_name)["loss"]
    assert_within(loss, expected, bound, "loss, float scale and bias")
    assert_within(loss0, expected, bound, "loss, 0-d scale and bias")


def test_gradients_agree_across_backends(xp, dtype_name):
    img, txt = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    _, ref = siglip_loss(img, txt, 1.5, -4.0)
    _, grads = siglip_loss(put(xp, img, dtype_name), put(xp, txt, dtype_name), 1.5, -4.0,
                           chunk_size=4)
    bounds = siglip_error_bounds(img, txt, 1.5, -4.0, dtype_name)
    for key in KEYS:
        assert_within(grads[key], ref[key], bounds[key], key)


def test_a_float64_scale_and_bias_keep_float32_embeddings_float32():
    img = rng.standard_normal((4, 3)).astype(np.float32)
    loss, grads = siglip_loss(img, img.copy(), np.float64(2.0), np.asarray(-1.0))
    assert loss.dtype == np.float32 and grads["image_embeds"].dtype == np.float32
    assert grads["logit_scale"].dtype == np.float64  # each gradient takes its input's dtype
    assert grads["logit_bias"].dtype == np.float64


def test_float32_does_not_overflow_with_huge_logits():
    img = rng.standard_normal((64, 16)).astype(np.float32) * 30
    loss, grads = siglip_loss(img, -img, math.log(100.0), 50.0, normalize=False)  # |z| ~ 1e5
    assert np.isfinite(loss) and loss.dtype == np.float32
    assert all(np.all(np.isfinite(g)) for g in grads.values())


element = st.floats(-30, 30, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
pair_shapes = st.tuples(st.integers(1, 6), st.integers(1, 5))
pairs = pair_shapes.flatmap(lambda s: st.tuples(arrays(np.float64, s, elements=element),
                                                arrays(np.float64, s, elements=element)))


@settings(max_examples=60, deadline=None)
@given(pairs, st.floats(-2.0, math.log(100.0)), st.floats(-1e3, 1e3), st.booleans(),
       st.integers(1, 7))
def test_loss_is_finite_non_negative_for_logits_in_the_thousands(embeds, s, b, normalize,
                                                                 chunk_size):
    img, txt = embeds  # unnormalized rows of norm up to ~70: |z| up to ~5e5
    loss, grads = siglip_loss(img, txt, s, b, normalize=normalize, chunk_size=chunk_size)
    assert float(loss) >= 0 and np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    expected = reference_siglip_loss(img, txt, s, b, normalize)
    assert float(loss) == pytest.approx(expected, rel=1e-9, abs=1e-300)
    # every pair's dL/dz lies in [-1/N, 1/N], so |dL/db| <= N
    assert abs(grads["logit_bias"]) <= len(img) * (1 + 1e-12)


@settings(max_examples=30, deadline=None)
@given(pairs, st.floats(-2.0, math.log(100.0)), st.floats(-50, 50))
def test_loss_is_symmetric_in_images_and_texts(embeds, s, b):
    img, txt = embeds  # swapping transposes z, and the labels 2I - 1 are symmetric
    loss, grads = siglip_loss(img, txt, s, b)
    loss_t, grads_t = siglip_loss(txt, img, s, b)
    assert float(loss_t) == pytest.approx(float(loss), rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(grads_t["image_embeds"], grads["text_embeds"], rtol=1e-9,
                               atol=1e-12)


def test_integer_bias_and_numpy_integer_chunk_size_are_accepted():
    img = rng.standard_normal((3, 2))
    loss, grads = siglip_loss(img, img.copy(), 1.0, -10, chunk_size=np.int64(2))
    assert type(grads["logit_bias"]) is float
    assert float(loss) == pytest.approx(reference_siglip_loss(img, img, 1.0, -10.0), rel=1e-12)


def test_finite_differences_catch_a_wrong_gradient():
    """The checks above can fail: a sum over pairs divided by N*N is caught."""
    img, txt = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    b = np.array(-2.0)
    _, grads = siglip_loss(img, txt, 1.0, b)
    wrong = {"logit_bias": grads["logit_bias"] / 4}  # as if the loss were a mean over pairs
    errors = check_gradients(lambda: siglip_loss(img, txt, 1.0, b)[0], {"logit_bias": b}, wrong)
    assert errors["logit_bias"] > 1e-2


@pytest.mark.parametrize("n", [2, 5, 64])
def test_the_bias_that_balances_the_prior_is_minus_log_n_minus_1(n):
    """With every cosine 0, dL/db = -σ(-b) + (N-1) σ(b) vanishes at b = -log(N-1)."""
    eye = np.eye(2 * n)
    img, txt = eye[:n], eye[n:]  # every image orthogonal to every text: z = b everywhere
    b_star = -math.log(n - 1)
    _, grads = siglip_loss(img, txt, SIGLIP_INIT_LOGIT_SCALE, b_star)
    assert abs(grads["logit_bias"]) < 1e-14
    _, grads = siglip_loss(img, txt, SIGLIP_INIT_LOGIT_SCALE, SIGLIP_INIT_LOGIT_BIAS)
    assert grads["logit_bias"] < 0  # for N << 22000, -10 is too pessimistic: b goes up


def test_fortran_order_strided_views_and_numpy_scalars_work():
    img, txt = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    want = siglip_loss(img, txt, 1.0, -2.0)
    bounds = siglip_error_bounds(img, txt, 1.0, -2.0, "float64")  # another summation order
    for i, t, s, b in [(np.asfortranarray(img), txt, np.float64(1.0), np.array(-2.0)),
                       (np.repeat(img, 2, axis=1)[:, ::2], txt.tolist(), 1, -2)]:
        loss, grads = siglip_loss(i, t, s, b, chunk_size=np.int32(4))
        assert_within(loss, want[0], bounds["loss"], "loss")
        for key in KEYS:
            assert_within(grads[key], want[1][key], bounds[key], key)


def test_huge_float32_embeddings_give_the_loss_of_the_rescaled_ones():
    img, txt = rng.standard_normal((6, 8)), rng.standard_normal((6, 8))
    img32, txt32 = (1e30 * img).astype(np.float32), (1e30 * txt).astype(np.float32)
    loss, grads = siglip_loss(img32, txt32, 2.0, -3.0)
    img64, txt64 = img32.astype(np.float64) / 1e30, txt32.astype(np.float64) / 1e30
    want, want_grads = siglip_loss(img64, txt64, 2.0, -3.0)
    bounds = siglip_error_bounds(img64, txt64, 2.0, -3.0, "float32")
    assert_within(loss, want, bounds["loss"], "loss")
    for key in ("image_embeds", "text_embeds"):  # the gradient of a function of x/|x|: 1/1e30
        assert_within(to_numpy(grads[key]).astype(np.float64) * 1e30, want_grads[key],
                      bounds[key] + 2 * U["float32"] * np.abs(want_grads[key]), key)


ONES = np.ones((2, 2))
EYE = np.eye(2)
WRONG = np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)  # with -WRONG every pair misjudged

BAD = [bad(siglip_loss, row["img"], row["txt"], 1.0, -1.0, error=error, words=words)
       for row, error, words in BAD_EMBEDDING_PAIRS]
BAD += [bad(siglip_loss, ONES, EYE, s, -1.0, error=error, words=words) for s, error, words in [
    (np.nan, ValueError, "logit_scale must be finite"),
    (-np.inf, ValueError, "logit_scale must be finite"),
    ("hot", TypeError, "logit_scale must be a real number"),
    (np.ones(2), ValueError, "logit_scale must be a scalar"),
    (1000.0, ValueError, "overflow"),
    (Fraction(1, 2), TypeError, ("logit_scale", "float()")),
    (np.float16(1.0), TypeError, ("logit_scale", "float32")),
]]
BAD += [bad(siglip_loss, ONES, EYE, 1.0, b, error=error, words=words) for b, error, words in [
    (np.nan, ValueError, "logit_bias must be finite"),
    (math.inf, ValueError, "logit_bias must be finite"),
    (np.asarray(np.inf), ValueError, "logit_bias contains NaN"),
    ("low", TypeError, "logit_bias must be a real number"),
    (None, TypeError, "logit_bias must be a real number"),
    (True, TypeError, "logit_bias must be a real number"),
    ([-10.0], TypeError, "logit_bias must be a real number"),
    (Fraction(-10), TypeError, ("logit_bias must be a real number", "float()")),
    (1j, TypeError, "logit_bias must be a real number"),
    (np.full((1,), -10.0), ValueError, "logit_bias must be a scalar"),
    (np.asarray(-10), TypeError, "logit_bias must have a real floating dtype"),
    (np.float16(-10), TypeError, ("logit_bias", "float32")),
]]
BAD += [bad(siglip_loss, ONES, EYE, 1.0, -1.0, chunk_size=c, error=error,
            words="chunk_size must be a positive int or None") for c, error in [
    (0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError), ("4", TypeError),
    ("8", TypeError)]]  # the error clip_loss(block_size="8") raises: one validator, as_tile_size
BAD += [
    bad(siglip_loss, ONES, EYE, 1.0, -1.0, normalize="yes", error=TypeError,
        words="normalize must be True or False"),
    bad(siglip_loss, ONES, EYE, 1.0, -1.0, normalize=1, error=TypeError,
        words="normalize must be True or False"),
    bad(siglip_loss, ONES.astype(bool), EYE, 1.0, -1.0, error=TypeError,
        words="image_embeds must have a real floating dtype"),
    bad(siglip_loss, ONES, EYE.astype(complex), 1.0, -1.0, error=TypeError,
        words="text_embeds must have a real floating dtype"),
    bad(siglip_loss, None, EYE, 1.0, -1.0, error=TypeError, words="image_embeds must be an array"),
    # logits beyond float32 (|z| ~ 1e40) with normalize=False: say so, not inf
    bad(siglip_loss, np.full((2, 2), 1e20, np.float32), np.full((2, 2), 1e20, np.float32), 0.0,
        0.0, normalize=False, error=ValueError, words="the loss overflows float32"),
    bad(siglip_loss, np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), 0.0, 3e38,
        normalize=False, error=ValueError, words="the loss overflows float32"),
    # a finite Python bias that float32 cannot hold, and a scale whose logits overflow it
    bad(siglip_loss, np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32), 0.0, 1e39,
        error=ValueError, words="the loss overflows float32"),
    bad(siglip_loss, WRONG, -WRONG, 88.5, 0.0, chunk_size=1, error=ValueError,
        words="the loss overflows float32"),
    bad(siglip_loss, ONES, EYE, 1.0, array_api_strict.asarray(-1.0), error=TypeError,
        words="image_embeds (numpy) and logit_bias (array_api_strict) cannot be mixed"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(siglip, BAD)
