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
import numbers
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import array_api_compat
import numpy as np

from numclip.backend import (
    array_namespace,
    array_namespace_of,
    as_float_array,
    as_int,
    as_log_scale,
    as_matrix,
    to_numpy,
)
from numclip.losses import clip_loss
from numclip.normalize import l2_normalize
from numclip.siglip import SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE, siglip_loss

__all__ = ["TinyCLIP", "as_batch", "INIT_LOGIT_SCALE", "LOSSES"]

INIT_LOGIT_SCALE = math.log(1 / 0.07)
LOSSES = ("clip", "siglip")  # CLIP's softmax loss, or SigLIP's sigmoid loss with a bias


@dataclass
class TinyCLIP:
    """Parameters in a dict: ``image_proj`` (P, D), ``text_proj`` (V, D), ``logit_scale`` ()
    and, for ``loss="siglip"``, ``logit_bias`` ().

    Construction checks the parameters (exactly these keys, these shapes, one
    float32 or float64 dtype and one array library, finite values) and ``loss``,
    raising a ``TypeError`` or ``ValueError`` that names the offending one.
    """

    params: dict
    loss: str = "clip"  # which of LOSSES loss_and_grads computes

    def __post_init__(self):
        if not isinstance(self.loss, str) or self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        _check_params(self.params, self.loss)

    @classmethod
    def create(cls, num_pixels: int, vocab_size: int, embed_dim: int = 64, *, seed: int = 0,
               dtype=np.float32, xp=np, loss: str = "clip") -> TinyCLIP:
        """Random projections with unit-variance outputs; ``xp`` picks the array library.

        ``logit_scale`` starts where each loss's reference starts it: log(1/0.07)
        for CLIP, log 10 with a bias of -10 for SigLIP (open_clip).

        Args:
            num_pixels, vocab_size, embed_dim: P, V and D, positive ints (NumPy ints too).
            seed: a non-negative int; the weights are drawn with NumPy on the host from it,
                so every array library gets the same numbers.
            dtype: float32 or float64 (NumPy's, a name such as ``"float32"``, or ``xp``'s).
            xp: the array library (``numpy``, ``cupy``, ``array_api_strict``, ...).
            loss: one of :data:`LOSSES`.
        """
        named = {"num_pixels": num_pixels, "vocab_size": vocab_size, "embed_dim": embed_dim}
        sizes = [as_int(value, name, 1) for name, value in named.items()]
        for name, size in zip(named, sizes, strict=True):
            if size > sys.maxsize:  # no array axis is longer; 10**400 would overflow below
                raise ValueError(f"{name}, a {len(str(size))}-digit number, is more than any "
                                 f"array can hold (at most {sys.maxsize})")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be a non-negative int, got {type(seed).__name__}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        dtype = _float_dtype_name(dtype, _array_library(xp))
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        params = _initial_params(*sizes, int(seed), loss, dtype)
        return cls({k: xp.asarray(v) for k, v in params.items()}, loss)

    @property
    def embed_dim(self) -> int:
        return self.params["image_proj"].shape[1]

    def encode_images(self, pixels):
        """``(n, P)`` flattened pixels -> ``(n, D)`` unit-length image embeddings.

        ``pixels`` must have the model's P columns, array library and dtype (float32
        in, float32 out); a list of numbers is taken in the model's dtype.
        """
        pixels = _as_input(pixels, "pixels", self.params["image_proj"])
        return l2_normalize(pixels @ self.params["image_proj"])[0]

    def encode_texts(self, token_features):
        """``(n, V)`` bag-of-words features -> ``(n, D)`` unit-length text embeddings.

        ``token_features`` must have the model's V columns, array library and dtype;
        a list of numbers is taken in the model's dtype.
        """
        token_features = _as_input(token_features, "token_features", self.params["text_proj"])
        return l2_normalize(token_features @ self.params["text_proj"])[0]

    def loss_and_grads(self, pixels, token_features):
        """Symmetric CLIP loss of a batch of pairs and its gradients for every parameter.

        Args:
            pixels: ``(B, P)`` images, row ``i`` paired with ``token_features[i]``, in
                the model's array library and dtype (as for :meth:`encode_images`).
            token_features: ``(B, V)`` captions as bag-of-words features.

        Returns:
            loss (0-d), grads: dict with the keys and shapes of ``params``.
        """
        pixels, token_features = as_batch(self.params, pixels, token_features)
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
        xp = _array_library(xp)
        return TinyCLIP({k: xp.asarray(to_numpy(v)) for k, v in self.params.items()}, self.loss)


def _as_input(x, name, proj):
    """``x`` as an encoder's ``(n, P)`` input for the projection ``proj`` ``(P, D)``.

    A list or tuple of numbers is typed in, not computed: it becomes an array of the
    model's library and dtype.  An array must already be one (a float64 array for a
    float32 model is refused, not cast: its dtype was somebody's choice).
    """
    if isinstance(x, list | tuple):
        x = as_matrix(x, name)  # float64, finite
        xp = array_namespace(proj)
        with np.errstate(over="ignore"):  # beyond the model's dtype: refused just below
            x = xp.asarray(x, dtype=proj.dtype)
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError(f"{name} holds numbers beyond the range of the model's dtype "
                             f"{proj.dtype}")
    x = as_matrix(x, name)
    _check_width(name, x, proj)
    return x


def as_batch(params: dict, pixels, token_features):
    """Validate a batch of pairs for a TinyCLIP's ``params``; return it as arrays.

    Args:
        params: the model's parameters (``image_proj`` (P, D), ``text_proj`` (V, D)).
        pixels: ``(B, P)`` images; token_features: ``(B, V)`` captions, row ``i`` of
            each one pair.  Arrays in the model's library and dtype, or lists of
            numbers (taken in the model's dtype).

    Raises:
        TypeError, ValueError: naming ``pixels`` or ``token_features``: not a finite
            float matrix, another width, library or dtype than the model's, or a
            different number of rows.
    """
    if not (isinstance(params, Mapping) and {"image_proj", "text_proj"} <= set(params)):
        raise TypeError("params must be a TinyCLIP's parameters (image_proj, text_proj), got "
                        f"{type(params).__name__}")
    pixels = _as_input(pixels, "pixels", params["image_proj"])
    token_features = _as_input(token_features, "token_features", params["text_proj"])
    if pixels.shape[0] != token_features.shape[0]:
        raise ValueError("pixels and token_features must hold the same number of pairs B "
                         "(row i of each is one image and its caption), got "
                         f"{pixels.shape[0]} and {token_features.shape[0]}")
    return pixels, token_features


def _check_width(name, x, proj) -> None:
    """Raise unless the ``(n, P)`` input ``x`` fits the projection ``proj`` ``(P, D)``:
    P columns, the model's array library and dtype."""
    if x.shape[1] != proj.shape[0]:
        raise ValueError(f"{name} must have {proj.shape[0]} columns to match the model, "
                         f"got {x.shape[1]}")
    try:
        xp = array_namespace_of({name: x, "the model": proj})
    except TypeError as err:
        raise TypeError(f"{name} must be in the model's array library: {err}") from None
    if x.dtype != proj.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the model is {proj.dtype}; "
                        f"convert with {xp.__name__.split('.')[-1]}.astype")


def _initial_params(num_pixels, vocab_size, embed_dim, seed, loss, dtype) -> dict:
    """The starting weights as host NumPy arrays of ``dtype``, drawn from ``seed``."""
    count = (num_pixels + vocab_size) * embed_dim
    too_big = ValueError(f"(num_pixels + vocab_size) * embed_dim = {count} weights do not fit "
                         f"in memory ({count * 8 / 2**30:.3g} GiB to draw them); "
                         "choose a smaller embed_dim")
    if count * 8 > sys.maxsize:  # NumPy would refuse with a message that names nothing
        raise too_big
    rng = np.random.default_rng(seed)  # drawn on the host: every backend sees the same
    params = {"logit_scale": INIT_LOGIT_SCALE} if loss == "clip" else {
        "logit_scale": SIGLIP_INIT_LOGIT_SCALE, "logit_bias": SIGLIP_INIT_LOGIT_BIAS}
    try:
        params["image_proj"] = rng.standard_normal((num_pixels, embed_dim)) / math.sqrt(num_pixels)
        params["text_proj"] = rng.standard_normal((vocab_size, embed_dim))
        return {k: np.asarray(params[k], dtype=dtype) for k in _SHAPES if k in params}
    except MemoryError:
        raise too_big from None


def _array_library(xp):
    if not callable(getattr(xp, "asarray", None)):
        raise TypeError(f"xp must be an array library such as numpy or cupy, "
                        f"got {type(xp).__name__}")
    return xp


def _float_dtype_name(dtype, xp) -> str:
    """``"float32"`` or ``"float64"`` for any spelling of those dtypes; anything else is refused.

    Integer weights would all round to 0, and bool, complex or float16 weights
    are not what the loss math is written and tested for.
    """
    for name in _DTYPES:
        if dtype is getattr(xp, name, None):  # e.g. array_api_strict.float32
            return name
    if isinstance(dtype, np.generic | np.ndarray):  # np.dtype(np.float64(1.0)) is float64
        raise TypeError(f"dtype must be float32 or float64, got a value, {dtype!r}; pass the "
                        "dtype itself, e.g. np.float32")
    try:
        with warnings.catch_warnings():  # np.dtype("a") warns of a deprecated alias first
            warnings.simplefilter("ignore", DeprecationWarning)
            name = None if dtype is None else np.dtype(dtype).name  # np.dtype(None) is float64
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return name


_DTYPES = ("float32", "float64")
_SHAPES = {"image_proj": "(P, D)", "text_proj": "(V, D)", "logit_scale": "()",
           "logit_bias": "()"}


def _check_params(params, loss: str) -> None:
    """Check a TinyCLIP's parameter dict; every error names the parameter."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    expected = {"image_proj", "text_proj", "logit_scale"} | (
        {"logit_bias"} if loss == "siglip" else set())
    if set(params) != expected:
        missing, extra = sorted(expected - set(params)), sorted(set(params) - expected, key=str)
        raise ValueError(f"params for loss={loss!r} must have the keys {sorted(expected)}; "
                         f"missing {missing}, unexpected {extra}")
    for k in sorted(expected):
        name = f"params[{k!r}]"
        if not array_api_compat.is_array_api_obj(params[k]):  # a list would stay a list
            raise TypeError(f"{name} must be an array, got {type(params[k]).__name__}")
        value = as_float_array(params[k], name)  # real floating, non-empty, finite
        if value.ndim != (2 if k.endswith("_proj") else 0):
            raise ValueError(f"{name} must have shape {_SHAPES[k]}, got {tuple(value.shape)}")
    as_log_scale(params["logit_scale"], "params['logit_scale']")  # exp() must not overflow
    image_proj, text_proj = params["image_proj"], params["text_proj"]
    if image_proj.shape[1] != text_proj.shape[1]:
        raise ValueError("params['image_proj'] (P, D) and params['text_proj'] (V, D) must have "
                         f"the same D, got {tuple(image_proj.shape)} and {tuple(text_proj.shape)}")
    try:
        xp = array_namespace_of({f"params[{k!r}]": v for k, v in params.items()})
    except TypeError as err:
        raise TypeError(f"params must all live in one array library: {err}") from None
    dtypes = {k: v.dtype for k, v in params.items()}
    if any(d != image_proj.dtype for d in dtypes.values()) or not any(
            image_proj.dtype == getattr(xp, name) for name in _DTYPES):  # float16 is refused
        raise TypeError("params must all be float32 or all float64, got "
                        f"{ {k: str(d) for k, d in dtypes.items()} }")
