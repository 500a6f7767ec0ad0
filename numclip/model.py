"""A tiny CLIP: one linear map per modality into a shared embedding space.

The encoders are as simple as they can be, so that everything interesting is
the contrastive objective: ``image_embeds = pixels @ W_img`` and
``text_embeds = bag_of_words @ W_txt``, both L2-normalized inside the loss,
plus the learnable ``logit_scale = log(1/tau)`` initialised at tau = 0.07
(CLIP paper, section 2.5).  Gradients are the core's backward passes followed
by one matrix product per encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from numclip.backend import array_namespace, as_matrix, to_numpy
from numclip.losses import clip_loss
from numclip.normalize import l2_normalize
from numclip.siglip import SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE, siglip_loss

__all__ = ["TinyCLIP", "INIT_LOGIT_SCALE", "LOSSES"]

INIT_LOGIT_SCALE = math.log(1 / 0.07)
LOSSES = ("clip", "siglip")  # CLIP's softmax loss, or SigLIP's sigmoid loss with a bias


@dataclass
class TinyCLIP:
    """Parameters in a dict: ``image_proj`` (P, D), ``text_proj`` (V, D), ``logit_scale`` ()
    and, for ``loss="siglip"``, ``logit_bias`` ()."""

    params: dict
    loss: str = "clip"  # which of LOSSES loss_and_grads computes

    @classmethod
    def create(cls, num_pixels: int, vocab_size: int, embed_dim: int = 64, *, seed: int = 0,
               dtype=np.float32, xp=np, loss: str = "clip") -> TinyCLIP:
        """Random projections with unit-variance outputs; ``xp`` picks the array library.

        ``logit_scale`` starts where each loss's reference starts it: log(1/0.07)
        for CLIP, log 10 with a bias of -10 for SigLIP (open_clip).
        """
        for name, value in [("num_pixels", num_pixels), ("vocab_size", vocab_size),
                            ("embed_dim", embed_dim)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        rng = np.random.default_rng(seed)  # drawn on the host: every backend sees the same
        params = {
            "image_proj": rng.standard_normal((num_pixels, embed_dim)) / math.sqrt(num_pixels),
            "text_proj": rng.standard_normal((vocab_size, embed_dim)),
            "logit_scale": np.asarray(INIT_LOGIT_SCALE),
        }
        if loss == "siglip":
            params["logit_scale"] = np.asarray(SIGLIP_INIT_LOGIT_SCALE)
            params["logit_bias"] = np.asarray(SIGLIP_INIT_LOGIT_BIAS)
        return cls({k: xp.asarray(np.asarray(v, dtype=dtype)) for k, v in params.items()}, loss)

    @property
    def embed_dim(self) -> int:
        return self.params["image_proj"].shape[1]

    def encode_images(self, pixels):
        """``(n, P)`` flattened pixels -> ``(n, D)`` unit-length image embeddings."""
        pixels = as_matrix(pixels, "pixels")
        return l2_normalize(pixels @ self.params["image_proj"])[0]

    def encode_texts(self, token_features):
        """``(n, V)`` bag-of-words features -> ``(n, D)`` unit-length text embeddings."""
        token_features = as_matrix(token_features, "token_features")
        return l2_normalize(token_features @ self.params["text_proj"])[0]

    def loss_and_grads(self, pixels, token_features):
        """Symmetric CLIP loss of a batch of pairs and its gradients for every parameter.

        Args:
            pixels: ``(B, P)`` images, row ``i`` paired with ``token_features[i]``.
            token_features: ``(B, V)`` captions as bag-of-words features.

        Returns:
            loss (0-d), grads: dict with the keys and shapes of ``params``.
        """
        pixels = as_matrix(pixels, "pixels")
        token_features = as_matrix(token_features, "token_features")
        _check_width("pixels", pixels, self.params["image_proj"])
        _check_width("token_features", token_features, self.params["text_proj"])
        image_embeds = pixels @ self.params["image_proj"]  # (B, D), normalized in the loss
        text_embeds = token_features @ self.params["text_proj"]  # (B, D)
        if self.loss == "siglip":
            loss, g = siglip_loss(image_embeds, text_embeds, self.params["logit_scale"],
                                  self.params["logit_bias"])
        else:
            loss, g = clip_loss(image_embeds, text_embeds, self.params["logit_scale"])
        grads = {
            "image_proj": pixels.T @ g["image_embeds"],  # (P, D) = (P, B) @ (B, D)
            "text_proj": token_features.T @ g["text_embeds"],  # (V, D)
            "logit_scale": g["logit_scale"],  # ()
        }
        if "logit_bias" in g:
            grads["logit_bias"] = g["logit_bias"]  # ()
        return loss, grads

    def to(self, xp) -> TinyCLIP:
        """The same model with its parameters in array library ``xp`` (e.g. ``cupy``)."""
        return TinyCLIP({k: xp.asarray(to_numpy(v)) for k, v in self.params.items()}, self.loss)


def _check_width(name, x, proj):
    if x.shape[1] != proj.shape[0]:
        raise ValueError(f"{name} must have {proj.shape[0]} columns to match the model, "
                         f"got {x.shape[1]}")
    xp = array_namespace(x, proj)
    if x.dtype != proj.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the model is {proj.dtype}; "
                        f"convert with {xp.__name__.split('.')[-1]}.astype")
