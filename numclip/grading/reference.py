"""The right answers the checkers compare with: numclip's own functions, in float64.

Each function takes the student's signature (rows are examples, ``tau`` the
temperature) and returns float64 NumPy arrays; :mod:`numclip.checks` turns them into
the expected outputs of its cases, and :mod:`numclip.grading.hints` compares wrong
outputs with variations of them.
"""

from __future__ import annotations

import math

from numclip.grading.harness import f64
from numclip.losses import clip_loss as _numclip_clip_loss
from numclip.normalize import l2_normalize as _numclip_l2_normalize
from numclip.normalize import l2_normalize_backward as _numclip_l2_normalize_backward
from numclip.softmax import log_softmax as _numclip_log_softmax
from numclip.softmax import softmax as _numclip_softmax


def l2_normalize(x):
    """``x / max(|x|, 1e-12)`` row by row: :func:`numclip.l2_normalize`."""
    return _numclip_l2_normalize(*f64(x))[0]


def l2_normalize_backward(dy, x):
    """The backward of :func:`l2_normalize` at ``x`` for the upstream gradient ``dy``."""
    dy, x = f64(dy, x)
    return _numclip_l2_normalize_backward(dy, _numclip_l2_normalize(x)[1])


def softmax(z):
    """Softmax along the last axis: :func:`numclip.softmax`."""
    return _numclip_softmax(*f64(z), axis=-1)


def log_softmax(z):
    """Log-softmax along the last axis: :func:`numclip.log_softmax`."""
    return _numclip_log_softmax(*f64(z), axis=-1)


def logit_matrix(image, text, tau):
    """``S = I T^T / τ``, the page's logits, ``(N, M)``."""
    image, text = f64(image, text)
    return image @ text.T / tau  # (N, M)


def clip_loss(image, text, tau):
    """``(loss, dimage, dtext)`` of :func:`numclip.clip_loss` on the embeddings as given."""
    image, text = f64(image, text)
    loss, grads = _numclip_clip_loss(image, text, -math.log(tau), normalize=False)
    return float(loss), grads["image_embeds"], grads["text_embeds"]
