"""NegCLIP's loss (numclip.losses.negclip_loss): gradients, oracles, identities, bad input.

Derivation: docs/derivations.md#negclip-hard-negatives.  Tolerances come from the
rounding bounds of ``negclip_error_bounds`` below (derived like conftest.clip_error_bounds)
or are the float64 finite-difference threshold of numclip.gradcheck.
"""

import math

import array_api_strict
import numpy as np
import pytest
import scipy.special
from conftest import (
    FN,
    U,
    assert_on_backend,
    assert_within,
    bad,
    check_bad_row,
    clip_error_bounds,
    put,
    through_norm_bound,
)

from numclip import clip_loss, clip_loss_reference, negclip_loss, to_numpy
from numclip.gradcheck import check_gradients, directional_check

rng = np.random.default_rng(12)
LOG_1_OVER_007 = math.log(1 / 0.07)
KEYS = ("image_embeds", "text_embeds", "negative_embeds", "logit_scale")


def batch(n, m, d, seed=0):
    """Random float64 images (N, D), captions (N, D) and negatives (M, D)."""
    r = np.random.default_rng(seed)
    return r.standard_normal((n, d)), r.standard_normal((n, d)), r.standard_normal((m, d))


def negclip_error_bounds(img, txt, neg, logit_scale, dtype_name, normalize=True):
    """Worst-case rounding error of negclip_loss in ``dtype_name`` against a float64
    reference computed from the same float64 inputs; first order in u.

    The steps of conftest.clip_error_bounds, for the (N, C = N + M) logits
    S = [A | B] and the path negclip_loss takes (log_softmax, not the fused passes):
    - unit rows off by ``unit = (D/2 + 4) u`` per entry; a logit by
      ``sigma_ij = scale sum_k |Î_ik X_jk| (2 unit + (D + 1) u)`` (X = [T̂; Ĥ]).
    - log p = z - lse(z) is off by twice the largest logit error plus log_softmax's own
      (7 max|z| + 2 C + 2 FN + 2) u (tests/test_softmax.py); p = exp(log p) adds FN u:
      ``rho`` relatively, for P and for Q alike (C >= N), plus 4 u for G's sums.
    - G = [(P_A + Q^T)/2N - I/N | P_B/2N]: |G| <= a = (P + [Q^T | 0])/2N + [I | 0]/N, and
      |ΔG| <= rho a (the diagonal's cancellation is absolute: rho (P_ii + Q_ii)/2N <= rho a).
    - L: sum |G| sigma from the logits, plus each cross_entropy's own budget (that of
      test_losses.py, (7 max|z| + 2 C + 2 FN + 2 + N) u, with C = N + M and C = N).
    - dÎ = scale G X and dX = scale G^T Î: scale (rho + unit + (C + 2) u) times a @ |X|
      (a.T @ |Î|); through the normalization as in clip_error_bounds.
    - ds = sum G * S: rho sum a |S| + sum a sigma + (N C + 1) u sum a |S|.
    Everything is doubled: in float64 the reference itself rounds as much as the result.

    Returns:
        dict under negclip_loss's keys ("loss" and the grads'), arrays for embeddings.
    """
    u = U[dtype_name]
    n, d = img.shape
    c = n + len(neg)
    scale = float(np.exp(float(logit_scale)))
    texts = np.concatenate([txt, neg])  # (C, D)

    def norms(x):
        return np.linalg.norm(x, axis=1, keepdims=True) if normalize else np.ones((len(x), 1))

    r_img, r_texts = norms(img), norms(texts)
    img, texts = img / r_img, texts / r_texts
    logits = scale * img @ texts.T  # (N, C)
    p = scipy.special.softmax(logits, axis=1)  # (N, C) image -> text over N + M texts
    q = np.zeros_like(p)
    q[:, :n] = scipy.special.softmax(logits[:, :n], axis=0)  # Q^T: text -> image over N images
    y = np.eye(n, c)  # [I | 0]
    a, g = (p + q) / (2 * n) + y / n, (p + q) / (2 * n) - y / n  # (N, C) |G| bound, G
    unit = ((d / 2 + 4) if normalize else 1) * u
    sigma = scale * (np.abs(img) @ np.abs(texts).T) * (2 * unit + (d + 1) * u)  # (N, C)
    zmax = float(np.max(np.abs(logits)))
    rho = 2 * np.max(sigma) + (7 * zmax + 2 * c + 3 * FN + 6) * u
    own = sum((7 * zmax + 2 * cols + 2 * FN + 2 + n) * u for cols in (c, n))
    loss = np.sum(a * sigma) + own
    per_row = scale * (rho + unit + (c + 2) * u)
    err_img, err_texts = per_row * (a @ np.abs(texts)), per_row * (a.T @ np.abs(img))
    dimg, dtexts = scale * g @ texts, scale * g.T @ img  # gradients of Î and X
    dscale = (rho + (n * c + 1) * u) * np.sum(a * np.abs(logits)) + np.sum(a * sigma)

    dtexts_bound = 2 * through_norm_bound(err_texts, dtexts, r_texts, u, normalize)
    return {"loss": 2 * loss,
            "image_embeds": 2 * through_norm_bound(err_img, dimg, r_img, u, normalize),
            "text_embeds": dtexts_bound[:n], "negative_embeds": dtexts_bound[n:],
            "logit_scale": 2 * dscale}


def reference_negclip_loss(img, txt, neg, logit_scale, normalize=True):
    """NegCLIP's loss written independently with SciPy, float64."""
    if normalize:
        img, txt, neg = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (img, txt, neg))
    scale, n = np.exp(logit_scale), len(img)
    per_image = scale * img @ np.concatenate([txt, neg]).T  # (N, N + M)
    per_text = scale * txt @ img.T  # (N, N) the captions ask; the negatives do not
    diag = np.arange(n)
    return -(np.mean(scipy.special.log_softmax(per_image, axis=1)[diag, diag])
             + np.mean(scipy.special.log_softmax(per_text, axis=1)[diag, diag])) / 2


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("n, m, d", [(4, 3, 5), (3, 6, 2), (5, 1, 3)])  # N, M, D all unequal
def test_gradients_match_finite_differences(normalize, n, m, d):
    img, txt, neg = batch(n, m, d, seed=n * m * d)
    if not normalize:  # raw dot products in a range where the softmaxes are not saturated
        img, txt, neg = img / 3, txt / 3, neg / 3
    s = np.array(LOG_1_OVER_007)

    def loss():
        return negclip_loss(img, txt, neg, s, normalize=normalize)[0]

    _, grads = negclip_loss(img, txt, neg, s, normalize=normalize)
    arrays = {"image_embeds": img, "text_embeds": txt, "negative_embeds": neg,
              "logit_scale": s}
    errors = check_gradients(loss, arrays, grads)
    # float64 centred differences with h = 1e-6: O(h^2) truncation and u/h rounding put
    # the relative error of a right gradient near 1e-10; a wrong one is off by O(1)
    assert max(errors.values()) < 1e-7, errors
    assert directional_check(loss, neg, grads["negative_embeds"]) < 1e-7


@pytest.mark.parametrize("n, m, d", [(4, 3, 5), (6, 12, 16)])
def test_loss_and_gradients_match_torch_autograd(n, m, d):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    img, txt, neg = batch(n, m, d, seed=7 + n)
    s = LOG_1_OVER_007
    timg, ttxt, tneg = (torch.tensor(x, requires_grad=True) for x in (img, txt, neg))
    ts = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    # open_clip's ClipLoss with the negatives appended to the texts of the image -> text
    # direction only, as NegCLIP trains
    i, t, h = (F.normalize(x, dim=-1) for x in (timg, ttxt, tneg))
    labels = torch.arange(n)
    logits_per_image = ts.exp() * i @ torch.cat([t, h]).T  # (N, N + M)
    logits_per_text = ts.exp() * t @ i.T  # (N, N)
    expected = (F.cross_entropy(logits_per_image, labels)
                + F.cross_entropy(logits_per_text, labels)) / 2
    expected.backward()
    loss, grads = negclip_loss(img, txt, neg, s)
    bounds = negclip_error_bounds(img, txt, neg, s, "float64")  # two float64 computations
    assert_within(loss, expected.item(), bounds["loss"], "loss")
    for key, tensor in zip(KEYS, (timg, ttxt, tneg, ts), strict=True):
        assert_within(grads[key], tensor.grad.numpy(), bounds[key], key)


# ----------------------------------------------------------------------------- identities

@pytest.mark.parametrize("normalize", [True, False])
def test_without_negatives_it_is_the_clip_loss(xp, dtype_name, normalize):
    """M = 0: clip_loss_reference operation for operation (bit for bit), and clip_loss
    (the fused passes) within the rounding bounds of both."""
    img, txt, _ = batch(5, 0, 3, seed=1)
    i, t = put(xp, img, dtype_name), put(xp, txt, dtype_name)
    none = xp.zeros((0, 3), dtype=i.dtype)
    loss, grads = negclip_loss(i, t, none, 2.0, normalize=normalize)
    want_loss, want = clip_loss_reference(i, t, 2.0, normalize=normalize)
    assert to_numpy(loss) == to_numpy(want_loss)
    for key in ("image_embeds", "text_embeds"):
        np.testing.assert_array_equal(to_numpy(grads[key]), to_numpy(want[key]), key)
    assert grads["logit_scale"] == want["logit_scale"]
    assert grads["negative_embeds"].shape == (0, 3)
    assert_on_backend(grads["negative_embeds"], none)
    fused_loss, fused = clip_loss(i, t, 2.0, normalize=normalize)
    ours = negclip_error_bounds(img, txt, img[:0], 2.0, dtype_name, normalize)
    theirs = clip_error_bounds(img, txt, 2.0, dtype_name, normalize)
    assert_within(loss, to_numpy(fused_loss), ours["loss"] + theirs["loss"], "loss")
    for key in ("image_embeds", "text_embeds", "logit_scale"):
        assert_within(grads[key], fused[key] if key == "logit_scale" else to_numpy(fused[key]),
                      ours[key] + theirs[key], key)


def test_matches_the_formula_written_with_scipy():
    for normalize in (True, False):
        img, txt, neg = batch(4, 3, 5, seed=2)
        loss, _ = negclip_loss(img, txt, neg, LOG_1_OVER_007, normalize=normalize)
        bound = negclip_error_bounds(img, txt, neg, LOG_1_OVER_007, "float64", normalize)
        assert_within(loss, reference_negclip_loss(img, txt, neg, LOG_1_OVER_007, normalize),
                      bound["loss"], "loss")


def test_permuting_the_negatives_permutes_their_gradients_and_nothing_else():
    """The negatives are a set: no column of B belongs to any image in particular."""
    img, txt, neg = batch(4, 5, 3, seed=3)
    perm = np.array([3, 0, 4, 2, 1])
    loss, grads = negclip_loss(img, txt, neg, 2.0)
    loss_p, grads_p = negclip_loss(img, txt, neg[perm], 2.0)
    bounds = negclip_error_bounds(img, txt, neg, 2.0, "float64")  # another summation order
    assert_within(loss_p, loss, bounds["loss"], "loss")
    for key in ("image_embeds", "text_embeds", "logit_scale"):
        assert_within(grads_p[key], grads[key], bounds[key], key)
    assert_within(grads_p["negative_embeds"], grads["negative_embeds"][perm],
                  bounds["negative_embeds"][perm], "negative_embeds")


@pytest.mark.parametrize("normalize", [True, False])
def test_a_bag_of_words_tie_on_every_caption_adds_half_log_2_and_changes_no_gradient(
        normalize):
    """negative k embeds exactly as caption k (an order-blind encoder on a word-order
    perturbation): every image's softmax counts its caption twice, so (derivations.md)
    L = L_CLIP + log(2) / 2, and dI, ds and the gradient reaching the shared text vector,
    dT + dH, are CLIP's."""
    img, txt, _ = batch(6, 0, 4, seed=4)
    if not normalize:
        img, txt = img / 3, txt / 3
    loss, grads = negclip_loss(img, txt, txt.copy(), 2.0, normalize=normalize)
    want_loss, want = clip_loss(img, txt, 2.0, normalize=normalize)
    ours = negclip_error_bounds(img, txt, txt, 2.0, "float64", normalize)
    theirs = clip_error_bounds(img, txt, 2.0, "float64", normalize)
    assert_within(loss, float(want_loss) + math.log(2) / 2,
                  ours["loss"] + theirs["loss"] + U["float64"] * float(loss), "loss")
    assert_within(grads["image_embeds"], want["image_embeds"],
                  ours["image_embeds"] + theirs["image_embeds"], "image_embeds")
    assert_within(grads["logit_scale"], want["logit_scale"],
                  ours["logit_scale"] + theirs["logit_scale"], "logit_scale")
    assert_within(grads["text_embeds"] + grads["negative_embeds"], want["text_embeds"],
                  ours["text_embeds"] + ours["negative_embeds"] + theirs["text_embeds"],
                  "text_embeds + negative_embeds")
    if not normalize:  # the negatives' half alone: dH = e^s P_B^T I / 2N with P_B = P_CLIP / 2
        p_clip = scipy.special.softmax(np.exp(2.0) * img @ txt.T, axis=1)
        assert_within(grads["negative_embeds"], np.exp(2.0) * p_clip.T @ img / (4 * len(img)),
                      ours["negative_embeds"], "negative_embeds")


def test_one_tied_negative_is_a_log_2_bias_on_its_captions_column():
    """The closed form of derivations.md for one tie (t_1 = 1, every other t_j = 0):
    L = L_CLIP(A + log(1 + t) on the columns) + sum_i log(1 + t_i) / 2N."""
    img, txt, _ = batch(5, 0, 3, seed=5)
    s = LOG_1_OVER_007
    loss, _ = negclip_loss(img, txt, txt[1:2].copy(), s)
    i, t = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (img, txt))
    a = np.exp(s) * i @ t.T  # (N, N)
    t_j = np.array([0, 1, 0, 0, 0])  # how many negatives tie with caption j
    biased = a + np.log1p(t_j)  # column j + log(1 + t_j)
    diag = np.arange(5)
    image_term = -np.mean(scipy.special.log_softmax(biased, axis=1)[diag, diag])
    text_term = -np.mean(scipy.special.log_softmax(a, axis=0)[diag, diag])  # unbiased: Q
    closed = (image_term + text_term) / 2 + np.sum(np.log1p(t_j)) / (2 * 5)
    bound = negclip_error_bounds(img, txt, txt[1:2], s, "float64")["loss"]
    assert_within(loss, closed, bound, "loss")


def test_a_far_negative_changes_nothing_a_close_one_is_pushed_away():
    """G_B = P_B / 2N >= 0: a negative the model already rejects gets no gradient, one it
    confuses with a caption is pushed away from that caption's image (normalize=False,
    so dH_k = e^s / 2N sum_i P_i,N+k I_i exactly, without the projection)."""
    img = np.eye(3)
    txt = np.eye(3) + 0.1
    neg = np.stack([-np.ones(3), txt[0] + [0.0, 0.05, 0.0]])  # far; next to caption 0
    _, grads = negclip_loss(img, txt, neg, math.log(20.0), normalize=False)
    far, close = grads["negative_embeds"]
    assert np.max(np.abs(far)) < 1e-10 * np.max(np.abs(close))
    assert close[0] > 0 and close[0] == np.max(close)  # a step -dH moves it off image 0


# ------------------------------------------------------------------- backends and forms

def test_contract_types_shapes_and_backends(xp, dtype_name):
    img, txt, neg = batch(4, 3, 5, seed=6)
    i, t, h = (put(xp, x, dtype_name) for x in (img, txt, neg))
    loss, grads = negclip_loss(i, t, h, LOG_1_OVER_007)
    assert set(grads) == set(KEYS)
    assert_on_backend(loss, i)  # float32 in, float32 out
    assert loss.shape == ()
    for key, like in zip(KEYS[:3], (i, t, h), strict=True):
        assert_on_backend(grads[key], like)
        assert grads[key].shape == like.shape
    assert isinstance(grads["logit_scale"], float)  # a float in, a float out
    bounds = negclip_error_bounds(img, txt, neg, LOG_1_OVER_007, dtype_name)
    _, want = negclip_loss(img, txt, neg, LOG_1_OVER_007)
    assert_within(loss, reference_negclip_loss(img, txt, neg, LOG_1_OVER_007),
                  bounds["loss"], "loss")
    for key in KEYS:
        assert_within(grads[key], want[key], bounds[key], key)
    s = put(xp, LOG_1_OVER_007, dtype_name)
    loss0, grads0 = negclip_loss(i, t, h, s)
    assert_on_backend(grads0["logit_scale"], s)  # a 0-d array in, a 0-d array out
    assert grads0["logit_scale"].shape == ()
    # s rounded to the dtype moves the loss by at most u |s| |dL/ds|
    assert_within(loss0, float(loss), bounds["loss"] + U[dtype_name] * abs(
        LOG_1_OVER_007 * want["logit_scale"]), "loss, 0-d logit_scale")


def test_lists_fortran_order_and_strided_views_give_the_same_result():
    img, txt, neg = batch(4, 3, 5, seed=8)
    want_loss, want = negclip_loss(img, txt, neg, 2.0)
    bounds = negclip_error_bounds(img, txt, neg, 2.0, "float64")  # another summation order
    wide = np.zeros((3, 10))
    wide[:, ::2] = neg
    for args in [(img.tolist(), txt.tolist(), neg.tolist()),
                 (np.asfortranarray(img), txt, np.asfortranarray(neg)),
                 (img, txt[::-1][::-1], wide[:, ::2]),
                 (img, txt, tuple(map(tuple, neg)))]:
        loss, grads = negclip_loss(*args, 2.0)
        assert_within(loss, want_loss, bounds["loss"], "loss")
        for key in KEYS:
            assert_within(grads[key], want[key], bounds[key], key)


def test_float32_does_not_overflow_at_the_maximum_scale():
    img, _, neg = (x.astype(np.float32) for x in batch(32, 16, 8, seed=9))
    loss, grads = negclip_loss(img, img.copy(), neg, math.log(100.0))
    assert loss.dtype == np.float32 and np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in grads.values())


# ----------------------------------------------------------------------------- bad input
# The rows negclip_loss shares with clip_loss (images and texts as a pair) are in
# test_losses.py; these are its own: the negatives, the scale, normalize, overflow.

ONES = np.ones((2, 2))
NONE = np.zeros((0, 2))
WRONG = np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)

BAD = [
    bad(negclip_loss, ONES, ONES, np.ones(2), 1.0, error=ValueError,
        words=("negative_embeds must be 2-D", "(M, 2)")),
    bad(negclip_loss, ONES, ONES, np.zeros(0), 1.0, error=ValueError,
        words="negative_embeds must be 2-D"),
    bad(negclip_loss, ONES, ONES, np.ones((1, 2, 2)), 1.0, error=ValueError,
        words="negative_embeds must be 2-D"),
    bad(negclip_loss, ONES, ONES, np.ones((3, 5)), 1.0, error=ValueError,
        words="negative_embeds must have the width D of text_embeds, 2, got 5"),
    bad(negclip_loss, ONES, ONES, np.zeros((0, 5)), 1.0, error=ValueError,
        words="negative_embeds must have the width D of text_embeds, 2, got 5"),
    bad(negclip_loss, ONES, ONES, np.zeros((3, 0)), 1.0, error=ValueError,
        words="negative_embeds must be non-empty"),
    bad(negclip_loss, ONES, ONES, [], 1.0, error=ValueError,
        words=("negative_embeds must be 2-D", "shape (0, 2)")),
    bad(negclip_loss, ONES, ONES, [[1.0, 2.0], [3.0]], 1.0, error=ValueError,
        words="negative_embeds must be a rectangular list"),
    bad(negclip_loss, ONES, ONES, np.array([[1.0, np.nan]]), 1.0, error=ValueError,
        words="negative_embeds contains NaN"),
    bad(negclip_loss, ONES, ONES, np.array([[1.0, -np.inf]]), 1.0, error=ValueError,
        words="negative_embeds contains NaN or infinite"),
    bad(negclip_loss, ONES, ONES, np.ones((1, 2), np.float32), 1.0, error=TypeError,
        words="negative_embeds must have the dtype of text_embeds, float64, got float32"),
    bad(negclip_loss, ONES, ONES, np.zeros((0, 2), np.float32), 1.0, error=TypeError,
        words="negative_embeds must have the dtype of text_embeds"),
    bad(negclip_loss, ONES, ONES, np.zeros((0, 2), int), 1.0, error=TypeError,
        words="negative_embeds must have the dtype of text_embeds, float64, got int64"),
    bad(negclip_loss, ONES, ONES, np.ones((1, 2), int), 1.0, error=TypeError,
        words="negative_embeds must have a real floating dtype"),
    bad(negclip_loss, ONES, ONES, np.ones((1, 2), bool), 1.0, error=TypeError,
        words="negative_embeds must have a real floating dtype"),
    bad(negclip_loss, ONES, ONES, np.ones((1, 2), np.float16), 1.0, error=TypeError,
        words=("negative_embeds", "float16", "use float32")),
    bad(negclip_loss, ONES, ONES, [["a", "b"]], 1.0, error=TypeError,
        words="negative_embeds must be numeric"),
    bad(negclip_loss, ONES, ONES, None, 1.0, error=TypeError,
        words="negative_embeds must be an array"),
    bad(negclip_loss, ONES, ONES, "negatives", 1.0, error=TypeError,
        words="negative_embeds must be an array"),
    bad(negclip_loss, ONES, ONES, array_api_strict.ones((1, 2), dtype=array_api_strict.float64),
        1.0, error=TypeError,
        words="text_embeds (numpy) and negative_embeds (array_api_strict) cannot be mixed"),
    bad(negclip_loss, ONES, ONES, array_api_strict.zeros((0, 2), dtype=array_api_strict.float64),
        1.0, error=TypeError,
        words="text_embeds (numpy) and negative_embeds (array_api_strict) cannot be mixed"),
    bad(negclip_loss, ONES, ONES, NONE, np.nan, error=ValueError,
        words="logit_scale must be finite"),
    bad(negclip_loss, ONES, ONES, NONE, math.inf, error=ValueError,
        words="logit_scale must be finite"),
    bad(negclip_loss, ONES, ONES, NONE, np.array(-np.inf), error=ValueError,
        words="logit_scale contains NaN or infinite"),
    bad(negclip_loss, ONES, ONES, NONE, 1000.0, error=ValueError,
        words=("logit_scale", "overflow")),
    bad(negclip_loss, ONES, ONES, NONE, "hot", error=TypeError,
        words="logit_scale must be a real number"),
    bad(negclip_loss, ONES, ONES, NONE, None, error=TypeError,
        words="logit_scale must be a real number"),
    bad(negclip_loss, ONES, ONES, NONE, np.ones(2), error=ValueError,
        words="logit_scale must be a scalar"),
    bad(negclip_loss, ONES, ONES, NONE, array_api_strict.asarray(1.0), error=TypeError,
        words="image_embeds (numpy) and logit_scale (array_api_strict) cannot be mixed"),
    bad(negclip_loss, ONES, ONES, NONE, 1.0, normalize="yes", error=TypeError,
        words="normalize must be True or False"),
    bad(negclip_loss, ONES, ONES, NONE, 1.0, normalize=1, error=TypeError,
        words="normalize must be True or False"),
    bad(negclip_loss, ONES, ONES, NONE, 1.0, normalize=None, error=TypeError,
        words="normalize must be True or False"),
    # logits beyond float32 (|S| = 6e38, from a negative alone)
    bad(negclip_loss, np.ones((2, 2), np.float32), np.ones((2, 2), np.float32),
        np.full((1, 2), 3e38, np.float32), 0.0, normalize=False, error=ValueError,
        words="the logits overflow float32"),
    # unit embeddings as wrong as can be: each -log p is about 2 e^88.5 > float32's max
    bad(negclip_loss, WRONG, -WRONG, -WRONG, 88.5, error=ValueError,
        words="the loss overflows float32"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_the_table_covers_the_negatives_the_scale_and_normalize():
    """Rows for each argument negclip_loss adds or checks itself (the image-text pair's
    rows are test_losses.py's, shared with clip_loss)."""
    words = " ".join(" ".join(row.values[4]) for row in BAD)
    for name in ("negative_embeds", "logit_scale", "normalize"):
        assert name in words, f"no bad-input row for {name}"
