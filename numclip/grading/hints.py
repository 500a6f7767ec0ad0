"""What a wrong output looks like when it comes from a mistake students make.

For each checker of :mod:`numclip.checks`, ``hint_<name>(case, got)`` compares the
student's outputs ``got`` (float64 arrays of the right shapes, values wrong) with
the outputs of typical mistakes (the wrong axis, a missing square root, one
direction of the loss only, the temperature multiplied instead of divided, ...)
and returns the advice for the first that matches, or ``None``;
``nonfinite_<name>(case, got)`` explains a NaN or inf.  A hint names the idea that
was missed (the axis, the shape, the missing factor), never the line that fixes it:
the student still writes that line.  The mistakes are built from the right answers
of :mod:`numclip.grading.reference` and, for the loss's gradient, from
:func:`numclip.grading.solutions.clip_logits_grad`.
"""

from __future__ import annotations

import math

import numpy as np

from numclip.grading import reference
from numclip.grading.harness import f64, like
from numclip.grading.solutions import clip_logits_grad
from numclip.softmax import log_softmax, softmax

# L2 normalization ---------------------------------------------------------------------

def nonfinite_l2_normalize(case, got):
    (x,) = f64(*case.args)
    if np.any(np.all(x == 0, axis=-1)):
        return ("an all-zero row has no direction, and 0/0 is NaN: put the floor ε = 1e-12 "
                "under the norm you divide by, max(‖x‖, ε), so that such a row stays zero")
    return "NaN or inf in the output: check the norm you divide by"


def hint_l2_normalize(case, got):
    (x,) = f64(*case.args)
    (y,) = got
    with np.errstate(all="ignore"):
        if like(y, x / np.linalg.norm(x, axis=0, keepdims=True), case):
            return "check the axis: each row should get length 1, not each column"
        if like(y, x / np.linalg.norm(x), case):
            return ("divide each row by its own norm (one number per row, shape (N, 1)), "
                    "not by the norm of the whole matrix")
        if like(y, x / np.sum(x * x, axis=-1, keepdims=True), case):
            return ("that divides by the squared length: the Euclidean norm is the square "
                    "root of the sum of squares")
        if like(y, x / np.sum(np.abs(x), axis=-1, keepdims=True), case):
            return "that is the L1 norm; CLIP uses the Euclidean (L2) norm"
    return "every row of the result should have length 1: print the norms of your rows"


def hint_l2_normalize_backward(case, got):
    dy, x = f64(*case.args)
    (dx,) = got
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    y = x / norm
    if like(dx, dy / norm, case):
        return ("the projection term is missing: the part of dy along y must be removed, "
                "because stretching x along y does not move y")
    if like(dx, dy - y * np.sum(y * dy, axis=-1, keepdims=True), case):
        return ("a factor 1/‖x‖ is missing: y = x / ‖x‖ scales every gradient that flows "
                "back through it by one over the row's norm")
    if like(dx, (dy - x * np.sum(x * dy, axis=-1, keepdims=True)) / norm, case):
        return "project onto the normalized y = x / ‖x‖, not onto x itself"
    if like(dx, (dy - y * np.sum(y * dy, axis=0, keepdims=True)) / norm, case):
        return ("the dot product y·dy is one number per row (shape (N, 1)), "
                "not one per column")
    if like(dx, -reference.l2_normalize_backward(dy, x), case):
        return "the sign is flipped"
    return None


# Softmax and log-softmax --------------------------------------------------------------

def nonfinite_softmax(case, got):
    return ("the output has NaN or inf: exp overflows for large logits. Softmax does not "
            "change when a row is shifted, so shift each row by its own maximum first (no "
            "exponent is then above 0); one max for the whole matrix lets rows far below it "
            "underflow to 0/0")


def hint_softmax(case, got):
    (z,) = f64(*case.args)
    (p,) = got
    if like(p, softmax(z, axis=0), case):
        return "check the axis: each row must sum to 1, not each column"
    if like(p, log_softmax(z, axis=-1), case):
        return "this is log-softmax; softmax returns the probabilities themselves"
    with np.errstate(all="ignore"):
        for e in (np.exp(z - np.max(z, axis=-1, keepdims=True)), np.exp(z - np.max(z))):
            if like(p, e / np.sum(e), case):
                return ("each row is divided by its own sum (one number per row, shape "
                        "(N, 1)), not the sum of everything")
    if not np.allclose(np.sum(p, axis=-1), 1.0, atol=1e-3):
        return "each row of p must sum to 1"
    return None


def nonfinite_log_softmax(case, got):
    (logp,) = got
    if not np.any(np.isnan(logp)) and not np.any(logp == np.inf):
        return ("the output has -inf: np.log(softmax(z)) takes log(0) when a probability "
                "underflows to 0; stay in the log domain, where log-softmax is the logits "
                "minus the row's log-sum-exp, and never take the log of a probability")
    return ("the output has NaN or inf: exp overflows for large logits; shift each row by "
            "its own maximum before exponentiating, and add the shift back outside the log")


def hint_log_softmax(case, got):
    (z,) = f64(*case.args)
    (logp,) = got
    expected = case.expected[0]
    if like(logp, log_softmax(z, axis=0), case):
        return "check the axis: normalize along each row, not each column"
    if like(logp, softmax(z, axis=-1), case):
        return "this is softmax; log_softmax returns log-probabilities (all ≤ 0)"
    if like(logp, expected / math.log(10), case):
        return "use the natural log, np.log, not np.log10"
    if like(logp, z - np.max(z, axis=-1, keepdims=True), case):
        return ("that subtracts only the row's maximum: log-softmax subtracts the whole "
                "log-sum-exp of the row, of which the maximum is only the shift")
    return None


# The logit matrix ---------------------------------------------------------------------

def hint_logit_matrix(case, got):
    image, text = f64(*case.args[:2])
    tau = case.args[2]
    (s,) = got
    expected = case.expected[0]
    if like(s, expected * tau, case):
        return "divide by the temperature τ: every logit is a similarity scaled by 1/τ"
    if like(s, expected * tau * tau, case):
        return "divide by τ, don't multiply: a small τ makes the logits large"
    if like(s, expected.T, case):
        return ("rows are images, columns are texts: your result is the transpose, "
                "logits_per_text (texts × images)")
    with np.errstate(all="ignore"):
        unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        if like(s, reference.logit_matrix(unit(image), unit(text), tau), case):
            return "use the embeddings as given: normalizing them is a separate step"
    return None


# The symmetric CLIP loss and its gradients -------------------------------------------

def loss_parts(image, text, tau):
    """Float64 pieces of the loss that mistakes are made of: each direction alone, and G."""
    image, text = f64(image, text)
    n = image.shape[0]
    s = image @ text.T / tau  # (N, N)
    eye = np.eye(n)
    loss_i2t = -float(np.mean(np.diagonal(log_softmax(s, axis=-1))))  # image -> text, rows
    loss_t2i = -float(np.mean(np.diagonal(log_softmax(s.T, axis=-1))))  # text -> image
    g_row = (softmax(s, axis=-1) - eye) / n  # dCE(S)/dS: one direction only
    g_col = (softmax(s.T, axis=-1) - eye) / n  # dCE(S^T)/dS^T, not yet transposed
    g = clip_logits_grad(softmax(s, axis=-1), softmax(s, axis=0))  # the right G = dL/dS
    return {"image": image, "text": text, "s": s, "loss_i2t": loss_i2t, "loss_t2i": loss_t2i,
            "g_row": g_row, "g_col": g_col, "g": g}


def nonfinite_clip_loss(case, got):
    return ("the loss is NaN or inf: the log-probabilities need a stable log-softmax "
            "(each row shifted by its maximum), not the log of a softmax or exp of raw logits")


def hint_clip_loss(case, got):
    image, text = f64(*case.args[:2])
    tau = case.args[2]
    (loss,) = got
    expected = case.expected[0]
    n = image.shape[0]
    parts = loss_parts(image, text, tau)
    if like(loss, parts["loss_i2t"], case) or like(loss, parts["loss_t2i"], case):
        return ("that is one direction only: average the image→text loss (rows of S) "
                "and the text→image loss (columns of S)")
    if like(loss, 2 * expected, case):
        return "average the two directions, don't add them: the loss has a factor 1/2"
    if n > 1 and like(loss, n * expected, case):
        return "take the mean over the N pairs, not the sum"
    if like(loss, expected / math.log(10), case):
        return "use the natural log, np.log, not np.log10"
    if any(like(loss, v / math.log(10), case) for v in (parts["loss_i2t"], parts["loss_t2i"])):
        return ("that is the course page's number, one direction in log10: use the "
                "natural log, np.log, and average both directions")
    if like(loss, -expected, case):
        return "the loss is -log p: mind the minus sign"
    if like(loss, reference.clip_loss(image, text, 1.0)[0], case):
        return "divide the logits by the temperature τ"
    if like(loss, reference.clip_loss(image, text, 1.0 / tau)[0], case):
        return "divide by τ, don't multiply"
    return None


def hint_clip_loss_grads(case, got):
    tau = case.args[2]
    p = loss_parts(*case.args[:2], tau)
    image, text, n = p["image"], p["text"], p["image"].shape[0]
    dimage, dtext = got
    expected_i, expected_t = case.expected

    def bothlike(di, dt):
        return like(dimage, di, case) and like(dtext, dt, case)

    if bothlike(expected_t, expected_i):
        return "you returned (dtext, dimage): return (dimage, dtext)"
    for g in (p["g_row"], p["g_col"].T):
        if bothlike(g @ text / tau, g.T @ image / tau):
            return ("that is one direction only: G averages the gradients of both "
                    "directions, images to texts and texts to images (the second transposed)")
    if bothlike(2 * expected_i, 2 * expected_t):
        return "average the two directions, don't add them: G has a factor 1/2"
    if n > 1 and bothlike(n * expected_i, n * expected_t):
        return "the loss is a mean over the N pairs, so G carries a factor 1/N"
    if bothlike(expected_i * tau, expected_t * tau):
        return ("the logits are divided by τ, so the chain rule brings a factor 1/τ into "
                "both gradients")
    if like(dimage, expected_i, case) and like(dtext, p["g"] @ image / tau, case):
        return ("dtext needs G transposed: text j meets the images through column j of S, "
                "not row j, so its gradient is laid out as G's transpose")
    if bothlike(-expected_i, -expected_t):
        return "the signs are flipped: these are gradients of the loss, not of -loss"
    return None
