"""numclip: CLIP's contrastive loss built from scratch in NumPy, for learning how it works.

The core functions come in forward/backward pairs (``y, cache = f(x)`` and
``dx = f_backward(dy, cache)``); the losses return their value and gradients
together::

    import numpy as np, numclip
    loss, grads = numclip.clip_loss(image_embeds, text_embeds, np.log(1 / 0.07))
"""

import importlib as _importlib

# Light submodules students reach for as numclip.<name> (data, train and plot, which
# pull in more, are imported explicitly; checks is imported on first use, below).
from numclip import gradcheck, optim, worked_example
from numclip.backend import (
    array_namespace,
    logit_scale_to_temperature,
    temperature_to_logit_scale,
    to_numpy,
)
from numclip.losses import clip_loss, clip_loss_reference, cross_entropy, negclip_loss
from numclip.normalize import l2_normalize, l2_normalize_backward
from numclip.siglip import siglip_loss
from numclip.similarity import logit_matrix, logit_matrix_backward
from numclip.softmax import (
    log_softmax,
    log_softmax_backward,
    logsumexp,
    softmax,
    softmax_backward,
)

__version__ = "0.1.0"

__all__ = [
    "array_namespace", "to_numpy", "temperature_to_logit_scale", "logit_scale_to_temperature",
    "l2_normalize", "l2_normalize_backward", "logit_matrix", "logit_matrix_backward",
    "logsumexp", "softmax", "log_softmax", "softmax_backward", "log_softmax_backward",
    "cross_entropy", "clip_loss", "clip_loss_reference", "negclip_loss", "siglip_loss",
    "checks", "gradcheck", "optim", "worked_example",
]

# Imported when first used, so that `import numclip` stays fast: numclip.checks
# (and the grading package behind it) is only for students checking their own code.
_LAZY = ("checks",)


def __getattr__(name):
    if name in _LAZY:
        return _importlib.import_module(f"numclip.{name}")  # binds numclip.checks too
    raise AttributeError(f"module 'numclip' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
