"""The assignment's solutions, written the way a student writes them: NumPy only.

One source for every place that needs a right answer in the student's own terms,
the way d2l's ``#@save`` keeps the book and its library in step:

- ``tests/test_exercises.py`` fills the blanks of
  ``notebooks/exercises/clip_assignment.ipynb`` with these functions' source and
  requires every check to pass;
- ``tests/test_checks.py`` holds every checker to them (each must pass) and builds
  its broken implementations from them;
- ``notebooks/05_deriving_the_gradients.ipynb`` and the checkers' hints
  (:mod:`numclip.grading.hints`) take the symmetric loss's gradient ``G`` from
  :func:`clip_logits_grad`, the one place it is written for students
  (``numclip.fused`` computes it for the library).

The signatures are the assignment's: rows are examples, softmax runs along the last
axis, ``temperature`` is a positive Python float, float32 in gives float32 out.
There are no input checks (the checkers do the checking), and a later function
calls an earlier one by its name, as the notebook's cells do.
"""

import numpy as np


def l2_normalize(x):
    """Each row of ``x`` ``(N, D)`` scaled to unit length; an all-zero row stays zero."""
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))  # (N, 1)
    return x / np.maximum(norm, 1e-12)


def l2_normalize_backward(dy, x):
    """``dx = (dy - y (y . dy)) / |x|`` row by row, for ``y = x / |x|`` (no zero rows)."""
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))  # (N, 1)
    y = x / norm
    return (dy - y * np.sum(y * dy, axis=-1, keepdims=True)) / norm


def softmax(z):
    """Row-wise softmax of logits ``z`` ``(N, C)``, shifted by each row's max."""
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))  # every exponent <= 0
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(z):
    """Row-wise log-softmax, ``z - m - log(sum(exp(z - m)))``: never ``log(0)``."""
    m = np.max(z, axis=-1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def logit_matrix(image_embeds, text_embeds, temperature):
    """``S = I T^T / τ``: every image ``(N, D)`` against every text ``(M, D)``."""
    return image_embeds @ text_embeds.T / temperature  # (N, M)


def clip_loss(image_embeds, text_embeds, temperature):
    """The symmetric CLIP loss: the mean over N pairs of both cross-entropies."""
    s = logit_matrix(image_embeds, text_embeds, temperature)  # (N, N)
    loss_image = -np.mean(np.diagonal(log_softmax(s)))  # images -> texts
    loss_text = -np.mean(np.diagonal(log_softmax(s.T)))  # texts -> images
    return (loss_image + loss_text) / 2


def clip_logits_grad(p_row, p_col):
    """``G = dL/dS = (P_row + P_col - 2 I) / 2N``, the symmetric loss's gradient.

    ``p_row`` is the softmax along each row of the ``(N, N)`` logits ``S`` (image to
    texts), ``p_col`` the softmax down each column (text to images), both laid out
    like ``S``: ``p_col = softmax(S.T).T``.  Each direction contributes
    ``(P - I) / N`` and the loss is their mean.
    """
    n = p_row.shape[0]
    return (p_row + p_col - 2 * np.eye(n, dtype=p_row.dtype)) / (2 * n)  # (N, N)


def clip_loss_grads(image_embeds, text_embeds, temperature):
    """``(dimage, dtext)`` of :func:`clip_loss`: ``G T / τ`` and ``G^T I / τ``."""
    s = logit_matrix(image_embeds, text_embeds, temperature)  # (N, N)
    g = clip_logits_grad(softmax(s), softmax(s.T).T)  # (N, N) dL/dS
    return g @ text_embeds / temperature, g.T @ image_embeds / temperature
