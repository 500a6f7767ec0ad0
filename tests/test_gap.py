"""numclip.gap: the modality gap, the cones and the shifting experiment of Liang et al.

Every tolerance is a first-order worst-case rounding bound derived in the helpers below
(Higham's n u per sum of n terms, conftest.U), never a tolerance measured once.
"""

import array_api_strict
import numpy as np
import pytest
import scipy.special
from conftest import (
    BAD_EMBEDDING_PAIRS,
    U,
    assert_on_backend,
    assert_table_covers,
    assert_within,
    bad,
    check_bad_row,
    clip_error_bounds,
    put,
)

from numclip import clip_loss, gap, to_numpy
from numclip.gap import ModalityGap, gap_shift_losses, modality_gap, shift_embeddings

rng = np.random.default_rng(12)
LOG_1_OVER_007 = float(np.log(1 / 0.07))


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def cones_apart(n=9, m=7, d=5, spread=0.5, seed=0):
    """Images and texts in two narrow cones around two different directions (N != M != D)."""
    r = np.random.default_rng(seed)
    img = r.standard_normal((n, d)) * spread + np.eye(d)[0] * 2
    txt = r.standard_normal((m, d)) * spread + np.eye(d)[1] * 2
    return img, txt


def spread_out(n=9, m=7, d=5, seed=1):
    """Isotropic rows: cones near 0, a small gap."""
    r = np.random.default_rng(seed)
    return r.standard_normal((n, d)), r.standard_normal((m, d))


CASES = [cones_apart(), spread_out(), cones_apart(n=30, m=2, d=3, spread=2.0, seed=4)]


# ---------------------------------------------------------------- derived error bounds

def gap_bounds(img, txt, u):
    """Worst-case error of modality_gap computed with unit roundoff ``u`` from float64
    ``img`` (N, D) and ``txt`` (M, D), against the exact values, to first order.

    - A unit row is off by (D/2 + 4) u per entry, relatively: rounding the input (u) and
      the normalization ((D/2 + 3) u, test_normalize.py).
    - The mean m_k = sum_i x_ik / N: the rows' errors, (N - 1) u sum |x_ik| for the sum
      of N terms (Higham 3.1) and u for the division: e_k = (D/2 + 4 + N) u a_k with
      a_k = mean_i |x_ik| (|m_k| <= a_k).
    - q = m . m: 2 |m| . e + e . e from m, D u q for the dot product.
    - cone = (N q - 1) / (N - 1): N times q's error, u N q, u |N q - 1| and u |cone|.
    - Delta = m_img - m_txt: e_img + e_txt + u |Delta|; its norm moves by at most the
      norm of that error, plus (D/2 + 2) u ||Delta|| for the dot product and sqrt.
    """
    bounds, means = {}, {}
    for name, x in (("image_cone", img), ("text_cone", txt)):
        n, d = x.shape
        ux = unit(x)
        m, a = ux.mean(axis=0), np.abs(ux).mean(axis=0)  # (D,)
        e = (d / 2 + 4 + n) * u * a  # (D,)
        q = m @ m
        err_q = 2 * np.abs(m) @ e + e @ e + d * u * q
        cone = (n * q - 1) / (n - 1)
        bounds[name] = (n * err_q + u * n * q + u * abs(n * q - 1)) / (n - 1) + u * abs(cone)
        means[name] = m, e
    (m_img, e_img), (m_txt, e_txt) = means["image_cone"], means["text_cone"]
    delta = m_img - m_txt
    bounds["vector"] = e_img + e_txt + u * np.abs(delta)
    bounds["distance"] = (np.linalg.norm(bounds["vector"])
                          + (img.shape[1] / 2 + 2) * u * np.linalg.norm(delta))
    return bounds


def brute_force_cone(x):
    """The paper's measure, as its code computes it: the (N, N) cosines, off the diagonal."""
    ux = unit(x)
    cos = ux @ ux.T  # (N, N)
    return float(np.mean(cos[~np.eye(len(x), dtype=bool)]))


def brute_force_error(x, u):
    """Rounding of brute_force_cone: each unit row (D/2 + 3) u per entry, each cosine's
    dot product D u, the mean of N (N - 1) cosines of size <= 1 about N^2 u."""
    n, d = x.shape
    return (2 * d + 6 + n * n) * u


def shift_bounds(img, txt, lam, u):
    """Worst-case per-entry error of shift_embeddings(img, txt, lam) with unit roundoff
    ``u``, against the exact shifted unit rows, to first order.

    Before re-normalizing, row i is off by eps_i: its unit row's (D/2 + 4) u |x_ik|, the
    gap's error (gap_bounds) times |lam|/2, the product lam/2 Delta ((D/2 + 5) u of it:
    generous, so that the paper's route through the unit gap vector stays inside too)
    and the subtraction u |x'_ik|.  Normalizing a row r + eps turns it by at most
    2 ||eps|| / ||r||, and the normalization adds its own (D/2 + 4) u per entry.
    """
    d = img.shape[1]
    vector_error = gap_bounds(img, txt, u)["vector"]  # (D,)
    delta = unit(img).mean(axis=0) - unit(txt).mean(axis=0)  # (D,)
    out = []
    for x, sign in ((img, -1), (txt, 1)):
        ux = unit(x)
        step = lam / 2 * delta  # (D,)
        shifted = ux + sign * step  # (rows, D)
        eps = ((d / 2 + 4) * u * np.abs(ux) + abs(lam) / 2 * vector_error
               + (d / 2 + 5) * u * np.abs(step) + u * np.abs(shifted))  # (rows, D)
        r = np.linalg.norm(shifted, axis=1, keepdims=True)  # (rows, 1)
        out.append(2 * np.linalg.norm(eps, axis=1, keepdims=True) / r
                   + (d / 2 + 4) * u * np.abs(shifted / r))
    return out


def paper_shift(img, txt, lam):
    """Liang et al.'s code (Figure_3_Contrastive_Learning/plot_optimization_exp.ipynb),
    float64: a step of delta = lam ||Delta|| along the unit gap vector, half each way."""
    delta = unit(img).mean(axis=0) - unit(txt).mean(axis=0)
    gap_direction = delta / np.linalg.norm(delta)
    step = lam * np.linalg.norm(delta)  # the paper's delta
    return (unit(unit(img) - 0.5 * step * gap_direction),
            unit(unit(txt) + 0.5 * step * gap_direction))


def reference_loss(img, txt, logit_scale):
    """CLIP's Figure 3 on unit rows, independently with SciPy, float64."""
    logits = np.exp(logit_scale) * img @ txt.T
    loss_i = -np.mean(np.diag(scipy.special.log_softmax(logits, axis=1)))
    loss_t = -np.mean(np.diag(scipy.special.log_softmax(logits, axis=0)))
    return (loss_i + loss_t) / 2


# ------------------------------------------------------------------------ the measures

@pytest.mark.parametrize("img, txt", CASES)
def test_cones_equal_the_brute_force_n_by_n_mean(img, txt):
    g = modality_gap(img, txt)
    bounds = gap_bounds(img, txt, U["float64"])
    for name, x in (("image_cone", img), ("text_cone", txt)):
        bound = bounds[name] + brute_force_error(x, U["float64"])
        assert_within(getattr(g, name), brute_force_cone(x), bound, name)


@pytest.mark.parametrize("img, txt", CASES)
def test_gap_is_the_difference_of_the_mean_unit_rows(img, txt):
    g = modality_gap(img, txt)
    delta = unit(img).mean(axis=0) - unit(txt).mean(axis=0)
    bounds = gap_bounds(img, txt, U["float64"])  # twice: the reference rounds as much
    assert_within(g.vector, delta, 2 * bounds["vector"], "vector")
    assert_within(g.distance, np.linalg.norm(delta), 2 * bounds["distance"], "distance")


def test_the_cone_measure_spans_its_range():
    """All rows one direction: 1; two opposite rows: -1 = -1/(N-1); the lengths do not
    matter (rows are normalized first)."""
    u = U["float64"]
    same = np.outer([1.0, 2.0, 0.5, 7.0], [3.0, -1.0, 2.0])
    opposite = np.array([[1.0, 2.0, 3.0], [-2.0, -4.0, -6.0]])
    g = modality_gap(same, opposite)
    assert_within(g.image_cone, 1.0, gap_bounds(same, opposite, u)["image_cone"], "same")
    assert_within(g.text_cone, -1.0, gap_bounds(same, opposite, u)["text_cone"], "opposite")


def test_the_gap_of_identical_sets_is_zero(xp, dtype_name):
    img = put(xp, cones_apart()[0], dtype_name)
    g = modality_gap(img, img)
    assert float(g.distance) == 0 and not bool(xp.any(g.vector != 0))  # one computation twice
    assert float(g.image_cone) == float(g.text_cone)
    # the same rows in another order: only the mean's sum rounds differently
    x = cones_apart()[0]
    shuffled = put(xp, x[rng.permutation(len(x))], dtype_name)
    both = gap_bounds(x, x, U[dtype_name])
    assert_within(modality_gap(img, shuffled).distance, 0.0, both["distance"], "distance")


def test_a_rotation_of_both_modalities_changes_neither_gap_nor_cones():
    img, txt = cones_apart(n=11, m=6, d=4)
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))  # a random orthogonal matrix
    g, h = modality_gap(img, txt), modality_gap(img @ q, txt @ q)
    # each within its bound of the exact values, which are equal; computing x Q puts
    # D u ||x_i|| on each entry (Cauchy-Schwarz: Q's columns have unit norm), which turns
    # a row by at most 2 D^1.5 u and so a cosine, a mean row and the gap by 4 D^1.5 u
    u, d = U["float64"], img.shape[1]
    a, b = gap_bounds(img, txt, u), gap_bounds(img @ q, txt @ q, u)
    for name in ("distance", "image_cone", "text_cone"):
        assert_within(getattr(h, name), getattr(g, name), a[name] + b[name] + 4 * d**1.5 * u,
                      name)


def test_lengths_do_not_matter():
    img, txt = cones_apart()
    scales = rng.uniform(0.01, 100, (len(img), 1))
    g, h = modality_gap(img, txt), modality_gap(img * scales, txt)
    # x s rounds by u per entry, within the (D/2 + 4) u that gap_bounds gives each unit row
    a, b = gap_bounds(img, txt, U["float64"]), gap_bounds(img * scales, txt, U["float64"])
    for name in ("distance", "image_cone", "text_cone"):
        assert_within(getattr(h, name), getattr(g, name), a[name] + b[name], name)


def test_modality_gap_on_every_backend(xp, dtype_name):
    img, txt = cones_apart()
    g = modality_gap(put(xp, img, dtype_name), put(xp, txt, dtype_name))
    like = put(xp, img, dtype_name)
    for name in ("vector", "distance", "image_cone", "text_cone"):
        assert_on_backend(getattr(g, name), like)
    assert g.vector.shape == (img.shape[1],) and g.distance.shape == ()
    want = modality_gap(img, txt)  # float64: each result within its bound of the exact
    a, b = gap_bounds(img, txt, U[dtype_name]), gap_bounds(img, txt, U["float64"])
    for name in ("vector", "distance", "image_cone", "text_cone"):
        assert_within(getattr(g, name), getattr(want, name), a[name] + b[name], name)


def test_unusual_but_valid_inputs_give_the_same_gap():
    img, txt = cones_apart()
    want = modality_gap(img, txt)
    wide = np.zeros((len(txt), 2 * txt.shape[1]))
    wide[:, 1::2] = txt
    bounds = gap_bounds(img, txt, U["float64"])  # another memory order sums in another order
    for i, t in [(img.tolist(), txt.tolist()), (np.asfortranarray(img), txt),
                 (img, wide[:, 1::2]), (tuple(map(tuple, img)), txt)]:
        got = modality_gap(i, t)
        for name in ("vector", "distance", "image_cone", "text_cone"):
            assert_within(getattr(got, name), getattr(want, name), 2 * bounds[name], name)


# ------------------------------------------------------------------------- the shift

@pytest.mark.parametrize("lam", [-0.5, 0.3, 1.0, 2.0])
@pytest.mark.parametrize("img, txt", CASES[:2])
def test_shift_is_the_papers_shift_along_the_gap(img, txt, lam):
    got = shift_embeddings(img, txt, lam)
    want = paper_shift(img, txt, lam)
    for g, w, bound, name in zip(got, want, shift_bounds(img, txt, lam, U["float64"]),
                                 ("image", "text"), strict=True):
        assert_within(g, w, 2 * bound, name)  # twice: the paper's route rounds as much


def test_lam_zero_changes_nothing_but_the_lengths():
    img, txt = cones_apart()
    got = shift_embeddings(img, txt, 0)
    for g, x, bound in zip(got, (img, txt), shift_bounds(img, txt, 0.0, U["float64"]),
                           strict=True):
        assert_within(g, unit(x), bound + (x.shape[1] / 2 + 3) * U["float64"], "rows")


def test_lam_one_makes_the_means_equal_before_renormalisation(xp, dtype_name):
    img, txt = cones_apart(n=13, m=5)
    a, b = shift_embeddings(put(xp, img, dtype_name), put(xp, txt, dtype_name), 1.0,
                            renormalize=False)
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    # mean(x - Delta_c/2) - mean(y + Delta_c/2) = mean(x) - mean(y) - Delta_c exactly,
    # where Delta_c is the computed gap: it differs from that difference by the two means'
    # rounding (N u a_x + M u a_y) and its own u |Delta|; the shifted entries round by
    # u (|x| + |Delta|/2) each.  Twice that covers the float64 means taken here.
    n, m, u = len(img), len(txt), U[dtype_name]
    a_x, a_y = np.abs(unit(img)).mean(axis=0), np.abs(unit(txt)).mean(axis=0)
    delta = unit(img).mean(axis=0) - unit(txt).mean(axis=0)
    assert_within(a.mean(axis=0) - b.mean(axis=0), 0.0,
                  2 * (n + m + 2) * u * (a_x + a_y + np.abs(delta)), "means")


def test_renormalised_rows_have_unit_norm_and_the_gap_shrinks_towards_lam_one():
    img, txt = cones_apart()
    distances = [float(modality_gap(*shift_embeddings(img, txt, lam)).distance)
                 for lam in (-0.5, 0.0, 0.5, 1.0)]
    assert distances == sorted(distances, reverse=True), distances
    for rows in shift_embeddings(img, txt, 0.7):
        assert_within(np.linalg.norm(rows, axis=1), 1.0, (img.shape[1] + 6) * U["float64"])


def test_shift_on_every_backend(xp, dtype_name):
    img, txt = cones_apart()
    like = put(xp, img, dtype_name)
    for lam in (0.5, np.float64(0.5), xp.asarray(0.5, dtype=xp.float64)):  # no promotion
        got = shift_embeddings(like, put(xp, txt, dtype_name), lam)
        want = shift_embeddings(img, txt, 0.5)
        for g, w, b32, b64 in zip(got, want, shift_bounds(img, txt, 0.5, U[dtype_name]),
                                  shift_bounds(img, txt, 0.5, U["float64"]), strict=True):
            assert_on_backend(g, like)
            assert_within(g, w, b32 + b64)


# ------------------------------------------------------------------ the loss curve

def test_lam_zero_scores_the_pairs_as_clip_loss_does():
    img, txt = rng.standard_normal((8, 5)), rng.standard_normal((8, 5))
    got = gap_shift_losses(img, txt, LOG_1_OVER_007, [0.0])
    # each within clip_error_bounds of the exact loss (the extra normalization of unit
    # rows is inside the factor 2 that bound carries), so within twice it of each other
    bound = clip_error_bounds(img, txt, LOG_1_OVER_007, "float64")["loss"]
    assert_within(got[0], clip_loss(img, txt, LOG_1_OVER_007)[0], 2 * bound, "loss")


@pytest.mark.parametrize("batch_size", [None, 4, 6])
def test_losses_are_clip_loss_of_the_shifted_pairs_batch_by_batch(batch_size):
    """The paper's Figure 3: the gap is measured over all pairs, then the loss is the mean
    over consecutive batches (their 50 of 5,000 pairs)."""
    img, txt = cones_apart(n=12, m=12, d=6)
    lams = [-0.5, 0.0, 0.5, 1.0]
    got = gap_shift_losses(img, txt, LOG_1_OVER_007, lams, batch_size=batch_size)
    assert got.shape == (4,)
    b = batch_size or 12
    for k, lam in enumerate(lams):
        a, t = shift_embeddings(img, txt, lam)
        batches = [(a[i:i + b], t[i:i + b]) for i in range(0, 12, b)]
        want = np.mean([reference_loss(x, y, LOG_1_OVER_007) for x, y in batches])
        bound = np.mean([clip_error_bounds(x, y, LOG_1_OVER_007, "float64", normalize=False)
                         ["loss"] for x, y in batches])
        assert_within(got[k], want, bound, f"lam = {lam}")


def test_the_loss_moves_with_the_gap():
    """A control that the curve is not flat: with the pairs matched and both modalities in
    cones around different axes, the shift changes the loss, and at a large tau (a small
    scale) closing the gap lowers it, as the paper found."""
    img, txt = cones_apart(n=16, m=16, d=6, spread=0.3)
    txt = img + 0.1 * rng.standard_normal(img.shape) + np.eye(6)[1] * 3  # paired, shifted
    losses = to_numpy(gap_shift_losses(img, txt, 0.0, [0.0, 1.0]))  # tau = 1
    assert losses[1] < losses[0], losses


def test_losses_on_every_backend(xp, dtype_name):
    img, txt = cones_apart(n=8, m=8, d=5)
    like = put(xp, img, dtype_name)
    scale = xp.asarray(LOG_1_OVER_007, dtype=xp.float64)  # a float64 scale: no promotion
    got = gap_shift_losses(like, put(xp, txt, dtype_name), scale, (0, 0.5), batch_size=4)
    assert_on_backend(got, like)
    assert got.shape == (2,)
    want = gap_shift_losses(img, txt, LOG_1_OVER_007, [0, 0.5], batch_size=4)
    # the loss's own rounding (clip_error_bounds, which counts rounding its inputs too) plus,
    # to first order, sum |dL/dx| times the shifted rows' error beyond that (shift_bounds)
    for k, lam in enumerate((0.0, 0.5)):
        a, t = shift_embeddings(img, txt, lam)
        ea, et = shift_bounds(img, txt, lam, U[dtype_name])
        bound = 0.0
        for i in (0, 4):
            x, y = a[i:i + 4], t[i:i + 4]
            _, g = clip_loss(x, y, LOG_1_OVER_007, normalize=False)
            bound += (clip_error_bounds(x, y, LOG_1_OVER_007, dtype_name, normalize=False)["loss"]
                      + np.sum(np.abs(g["image_embeds"]) * ea[i:i + 4])
                      + np.sum(np.abs(g["text_embeds"]) * et[i:i + 4])) / 2
        assert_within(got[k], want[k], bound, f"lam = {lam}")


def test_lams_may_be_any_real_sequence():
    img, txt = cones_apart(n=6, m=6)
    want = to_numpy(gap_shift_losses(img, txt, 1.0, [0.0, 1.0]))
    for lams in ((0, 1), range(2), np.array([0, 1], np.int32), np.array([0.0, 1.0], np.float32),
                 array_api_strict.asarray([0.0, 1.0])):
        np.testing.assert_array_equal(to_numpy(gap_shift_losses(img, txt, 1.0, lams)), want)


# --------------------------------------------------------------------------- bad input

_IMG, _TXT = cones_apart(n=6, m=6, d=3)
_F32 = _IMG.astype(np.float32)
_ONE = np.ones((1, 3))
_ZERO_ROW = np.vstack([_IMG[:2], np.zeros((1, 3))])
_GOOD = dict(vector=np.zeros(3), distance=np.array(0.0), image_cone=np.array(1.0),
             text_cone=np.array(1.0))

BAD = [bad(fn, row["img"], row["txt"], *extra, error=error, words=words)
       for fn, extra in ((modality_gap, ()), (shift_embeddings, (0.5,)))
       for row, error, words in BAD_EMBEDDING_PAIRS if "pairs N" not in words]
BAD += [bad(gap_shift_losses, row["img"], row["txt"], 1.0, [0.0], error=error, words=words)
        for row, error, words in BAD_EMBEDDING_PAIRS]
BAD += [
    # a cone needs two rows; a row without a direction has no cosine
    bad(modality_gap, _ONE, _TXT, error=ValueError, words=["image_embeds", "at least 2 rows"]),
    bad(modality_gap, _IMG, _ONE, error=ValueError, words=["text_embeds", "at least 2 rows"]),
    bad(modality_gap, _ZERO_ROW, _TXT, error=ValueError,
        words=["image_embeds row 2", "no direction"]),
    bad(modality_gap, _IMG, _ZERO_ROW * 1e-20, error=ValueError,
        words=["text_embeds row 0", "no direction"]),
    bad(shift_embeddings, _ZERO_ROW, _TXT, 0.5, error=ValueError, words=["image_embeds row 2"]),
    # lam
    bad(shift_embeddings, _IMG, _TXT, "0.5", error=TypeError, words=["lam", "real number"]),
    bad(shift_embeddings, _IMG, _TXT, True, error=TypeError, words=["lam", "real number"]),
    bad(shift_embeddings, _IMG, _TXT, None, error=TypeError, words=["lam", "real number"]),
    bad(shift_embeddings, _IMG, _TXT, float("nan"), error=ValueError, words=["lam", "finite"]),
    bad(shift_embeddings, _IMG, _TXT, np.array([0.5, 1.0]), error=ValueError,
        words=["lam", "scalar"]),
    bad(shift_embeddings, _IMG, _TXT, np.array(1, dtype=np.int64), error=TypeError,
        words=["lam", "floating dtype"]),
    bad(shift_embeddings, _F32, _TXT.astype(np.float32), 1e39, error=ValueError,
        words=["lam = 1e+39", "beyond the range of float32"]),
    bad(shift_embeddings, np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]]), 1.0,
        error=ValueError, words=["lam = 1", "row 0 of image_embeds", "origin"]),
    bad(shift_embeddings, _IMG, _TXT, 0.5, renormalize="yes", error=TypeError,
        words=["renormalize must be True or False"]),
    # gap_shift_losses: pairs, the scale, the shifts, the batches
    bad(gap_shift_losses, _ONE, _ONE, 1.0, [0.0], error=ValueError, words=["at least 2 pairs"]),
    bad(gap_shift_losses, _IMG, _TXT, "1.0", [0.0], error=TypeError, words=["logit_scale"]),
    bad(gap_shift_losses, _IMG, _TXT, 1e4, [0.0], error=ValueError,
        words=["logit_scale", "overflow"]),
    bad(gap_shift_losses, _IMG, _TXT, np.ones(2), [0.0], error=ValueError,
        words=["logit_scale", "scalar"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [], error=ValueError, words=["lams", "non-empty"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, 0.5, error=TypeError, words=["lams", "1-D array"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, None, error=TypeError, words=["lams", "1-D array"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, np.array(0.5), error=ValueError,
        words=["lams must be 1-D"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [[0.0, 1.0]], error=ValueError,
        words=["lams must be 1-D"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, ["a"], error=TypeError, words=["lams", "real"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [True, False], error=TypeError,
        words=["lams", "real"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [0.0, None], error=TypeError,
        words=["lams", "real"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [0.0, 1j], error=TypeError, words=["lams", "real"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [[0.0], [1.0, 2.0]], error=ValueError,
        words=["lams", "rectangular"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [0.0, float("inf")], error=ValueError,
        words=["lams must be finite", "lams[1]"]),
    bad(gap_shift_losses, _F32, _TXT.astype(np.float32), 1.0, [0.0, 1e39], error=ValueError,
        words=["lams[1] = 1e+39", "float32"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [0.0], batch_size=0, error=ValueError,
        words=["batch_size", "positive"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [0.0], batch_size=1, error=ValueError,
        words=["batch_size must be at least 2"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [0.0], batch_size=2.0, error=TypeError,
        words=["batch_size", "int"]),
    bad(gap_shift_losses, _IMG, _TXT, 1.0, [0.0], batch_size=4, error=ValueError,
        words=["batch_size (4) must divide", "(6)"]),
    # the result record
    bad(ModalityGap, **{**_GOOD, "vector": np.zeros((2, 3))}, error=ValueError,
        words=["vector must be 1-D"]),
    bad(ModalityGap, **{**_GOOD, "vector": "x"}, error=TypeError, words=["vector"]),
    bad(ModalityGap, **{**_GOOD, "distance": 0.5}, error=TypeError,
        words=["distance must be a 0-d array"]),
    bad(ModalityGap, **{**_GOOD, "image_cone": np.ones(2)}, error=ValueError,
        words=["image_cone must be a 0-d array"]),
    bad(ModalityGap, **{**_GOOD, "text_cone": np.array(np.nan)}, error=ValueError,
        words=["text_cone contains NaN"]),
    bad(ModalityGap, **{**_GOOD, "text_cone": np.array(1.0, np.float32)}, error=TypeError,
        words=["text_cone must have vector's dtype"]),
    bad(ModalityGap, **{**_GOOD, "distance": array_api_strict.asarray(0.0)}, error=TypeError,
        words=["distance", "cannot be mixed"]),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(gap, BAD)
    assert "ModalityGap" in {row.values[0].__name__ for row in BAD}
