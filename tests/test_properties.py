"""Properties that must hold for every input, checked with hypothesis."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from numclip import clip_loss, l2_normalize, log_softmax, logsumexp, softmax

settings.register_profile("numclip", max_examples=60, deadline=None)
settings.load_profile("numclip")

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def matrices(min_rows=1, max_rows=6, min_cols=1, max_cols=6, elements=finite):
    shape = st.tuples(st.integers(min_rows, max_rows), st.integers(min_cols, max_cols))
    return shape.flatmap(lambda s: arrays(np.float64, s, elements=elements))


def pairs(max_n=6, max_d=5):
    """Image and text embeddings of a shared shape, rows not too close to zero."""
    element = st.floats(-10, 10, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
    shape = st.tuples(st.integers(1, max_n), st.integers(1, max_d))
    return shape.flatmap(lambda s: st.tuples(arrays(np.float64, s, elements=element),
                                             arrays(np.float64, s, elements=element)))


@given(matrices())
def test_softmax_rows_sum_to_one(z):
    p = softmax(z)
    assert np.all(p >= 0) and np.all(p <= 1)
    # each p_j = e_j / S with S = fl(sum e) off by n u relatively; the check's own sum
    # of n terms adds n u: |sum p - 1| <= (2 n + 1) u, n <= 6 columns
    np.testing.assert_allclose(np.sum(p, axis=1), 1.0, rtol=(2 * z.shape[1] + 1) * 2.0**-53)


@given(matrices(), st.floats(-1e4, 1e4))
def test_softmax_is_shift_invariant(z, c):
    # z + c rounds each entry by u (|z| + |c|) <= 1.1e4 u = 1.2e-12: every shifted logit
    # moves by that, p relatively by twice that (p <= 1), lse by that plus its own
    # (4 |z| + n + 2 FN) u budget (test_softmax.py) on |z| up to 1.1e4: 5e-12 all told,
    # so 1e-9 leaves 200x for z's bound of 1e3
    np.testing.assert_allclose(softmax(z + c), softmax(z), atol=1e-9)
    np.testing.assert_allclose(logsumexp(z + c), logsumexp(z) + c, rtol=1e-9, atol=1e-9)


@given(matrices(elements=st.floats(-5e3, 5e3)))
def test_no_overflow_for_logits_in_the_thousands(z):
    assert np.all(np.isfinite(logsumexp(z)))
    assert np.all(np.isfinite(log_softmax(z)))
    assert np.all(np.isfinite(softmax(z)))


@given(matrices(elements=st.floats(-100, 100).filter(lambda v: abs(v) > 1e-6)))
def test_normalized_rows_have_unit_norm(x):
    y, _ = l2_normalize(x)
    # y_k is off by (D/2 + 3) u relatively (test_normalize.py), |y| by that plus the
    # check's own norm (D/2 + 1) u: (D + 4) u, D <= 6 columns
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=(x.shape[1] + 4) * 2.0**-53)


@given(pairs(), st.floats(0.0, math.log(100.0)), st.booleans())
def test_loss_is_non_negative_and_symmetric_in_images_and_texts(embeds, s, normalize):
    img, txt = embeds
    loss, grads = clip_loss(img, txt, s, normalize=normalize)
    swapped, swapped_grads = clip_loss(txt, img, s, normalize=normalize)
    assert loss >= 0
    # Swapping turns row sums into column sums: the same numbers, added in another order.
    # 1e-12 is 9000 u for a loss of at most 2 N = 12 pair terms; the gradients' 1e-9 is
    # 9e6 u, room for the softmax's amplification of a logit error by up to scale |x|^2
    # <= 100 * 10^2 * 5 (normalize=False) times the (N + D) u of the sums and products.
    assert float(swapped) == float(loss) or math.isclose(swapped, loss, rel_tol=1e-12)
    np.testing.assert_allclose(swapped_grads["image_embeds"], grads["text_embeds"],
                               rtol=1e-9, atol=1e-12)


@given(st.integers(1, 8), st.integers(8, 16))
def test_aligned_batch_with_large_scale_has_loss_near_zero(n, d):
    emb = np.eye(n, d)  # n orthonormal rows; each image equals its caption
    loss, _ = clip_loss(emb, emb, math.log(100.0))
    # exactly: log(1 + (n - 1) e^-100) ~ n e^-100; 1e-15 is the rounding of a sum near 0
    # taken through log1p (a few u times the terms, themselves below 1e-40) with room
    assert 0 <= loss < n * math.exp(-100.0) + 1e-15


@given(arrays(np.float64, st.tuples(st.just(1), st.integers(1, 5)), elements=finite),
       arrays(np.float64, st.tuples(st.just(1), st.integers(1, 5)), elements=finite))
def test_one_pair_has_loss_zero(img, txt):
    if img.shape != txt.shape:
        txt = np.resize(txt, img.shape)
    loss, _ = clip_loss(img, txt, 2.0, normalize=False)
    assert float(loss) == 0.0
