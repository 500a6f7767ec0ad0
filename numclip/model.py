"""A tiny CLIP: a shared embedding space learned with linear or transformer encoders.

``encoder="linear"`` keeps the encoders as simple as they can be, so that
everything interesting is the contrastive objective: ``image_embeds = pixels @
W_img`` and ``text_embeds = bag_of_words @ W_txt``.  ``encoder="transformer"`` uses
CLIP's real architecture, small: a Vision Transformer over 4 x 4 patches and a causal
text Transformer over the caption's word ids (:mod:`numclip.nn`).  Either way the
embeddings are L2-normalized inside the loss, with the learnable ``logit_scale =
log(1/tau)`` initialised at tau = 0.07 (CLIP paper, section 2.5).

Every model speaks one interface, which training, checkpoints, the distributed
path and zero-shot use and nothing else: ``params`` (a dict of arrays),
``embed``/``embed_backward`` (the encoders' forward and backward),
``loss_and_grads``, ``encode_images``/``encode_texts`` and ``text_inputs``.
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
    as_bool,
    as_float_array,
    as_int,
    as_log_scale,
    as_matrix,
    to_numpy,
)
from numclip.losses import clip_loss, negclip_loss
from numclip.nn.encoders import TextTransformer, VisionTransformer
from numclip.normalize import l2_normalize
from numclip.siglip import SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE, siglip_loss

__all__ = ["TinyCLIP", "as_batch", "INIT_LOGIT_SCALE", "LOSSES", "ENCODERS", "TRANSFORMER"]

INIT_LOGIT_SCALE = math.log(1 / 0.07)
LOSSES = ("clip", "siglip")  # CLIP's softmax loss, or SigLIP's sigmoid loss with a bias
ENCODERS = ("linear", "transformer")

# The transformer encoders' size: small enough to train in a minute or two on two cores,
# large enough to tell shapes apart across patches (at width 32 the image tower learned
# colour, 0.99 by a linear probe of its embeddings, but shape only 0.44 of the time).
TRANSFORMER = {
    "patch_size": 4,  # 16 x 16 images -> 16 patches + the class token
    "width": 64,  # D of both towers' tokens
    "layers": 2,  # residual blocks of the image tower
    "text_layers": 1,  # the captions' words need gathering at <end>, not much more
    "heads": 4,  # head width 16
    "mlp_ratio": 2,  # open_clip's is 4; 2 keeps a third of the step's products out
    "context_length": 12,  # <start> + up to 10 words + <end>; captions have at most 7
    "activation": "quick_gelu",  # OpenAI CLIP's, and a third of exact GELU's cost in NumPy
}


@dataclass
class TinyCLIP:
    """A tiny CLIP whose parameters live in a dict, gradients under the same keys.

    ``encoder="linear"``: ``image_proj`` (P, D), ``text_proj`` (V, D).
    ``encoder="transformer"``: open_clip's keys (``visual.conv1.weight``, ...,
    ``token_embedding.weight`` (V + 2, D_t), ``text_projection``), the token table
    holding the V words, then ``<start>`` (id V) and ``<end>`` (id V + 1, the largest,
    where the text encoder pools as CLIP's does).  Both: ``logit_scale`` () and, for
    ``loss="siglip"``, ``logit_bias`` ().

    Construction checks the parameters (exactly these keys, these shapes, one
    float32 or float64 dtype and one array library, finite values), ``loss`` and
    ``encoder``, raising a ``TypeError`` or ``ValueError`` that names the offending one.
    """

    params: dict
    loss: str = "clip"  # which of LOSSES loss_and_grads computes
    encoder: str = "linear"  # which of ENCODERS turns pixels and captions into embeddings

    def __post_init__(self):
        _check_choices(self.loss, self.encoder)
        _check_params(self.params, self.loss, self.encoder)

    @classmethod
    def create(cls, num_pixels: int, vocab_size: int, embed_dim: int = 64, *, seed: int = 0,
               dtype=np.float32, xp=np, loss: str = "clip", encoder: str = "linear") -> TinyCLIP:
        """Random initial weights; ``xp`` picks the array library.

        The linear encoders start with unit-variance outputs; the transformers as
        open_clip initialises them.  ``logit_scale`` starts where each loss's
        reference starts it: log(1/0.07) for CLIP, log 10 with a bias of -10 for
        SigLIP (open_clip).

        Args:
            num_pixels, vocab_size, embed_dim: P (``3 S^2`` for S x S RGB images), V and D,
                positive ints (NumPy ints too).
            seed: a non-negative int; the weights are drawn with NumPy on the host from it,
                so every array library gets the same numbers.
            dtype: float32 or float64 (NumPy's, a name such as ``"float32"``, or ``xp``'s).
            xp: the array library (``numpy``, ``cupy``, ``array_api_strict``, ...).
            loss: one of :data:`LOSSES`; encoder: one of :data:`ENCODERS`.
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
        _check_choices(loss, encoder)
        if encoder == "transformer":
            params = _initial_transformer_params(*sizes, int(seed), loss, dtype)
        else:
            params = _initial_params(*sizes, int(seed), loss, dtype)
        return cls({k: xp.asarray(v) for k, v in params.items()}, loss, encoder)

    @staticmethod
    def param_shapes(num_pixels: int, vocab_size: int, embed_dim: int, loss: str = "clip",
                     encoder: str = "linear") -> dict:
        """Every parameter's key and shape for these sizes (what a checkpoint must hold)."""
        num_pixels, vocab_size, embed_dim = (as_int(num_pixels, "num_pixels", 1),
                                             as_int(vocab_size, "vocab_size", 1),
                                             as_int(embed_dim, "embed_dim", 1))
        _check_choices(loss, encoder)
        if encoder == "transformer":
            vision, text = _towers(num_pixels, vocab_size, embed_dim)
            shapes = {**vision.param_shapes(), **text.param_shapes()}
        else:
            shapes = {"image_proj": (num_pixels, embed_dim), "text_proj": (vocab_size, embed_dim)}
        shapes["logit_scale"] = ()
        if loss == "siglip":
            shapes["logit_bias"] = ()
        return shapes

    @property
    def embed_dim(self) -> int:
        return self.params[_IMAGE_OUT[self.encoder]].shape[1]

    @property
    def num_pixels(self) -> int:
        """P, the width of the flattened images the model takes."""
        if self.encoder == "linear":
            return self.params["image_proj"].shape[0]
        return 3 * _image_side(self.params) ** 2

    @property
    def vocab_size(self) -> int:
        """V, the words the model knows (the rows of its vocabulary)."""
        if self.encoder == "linear":
            return self.params["text_proj"].shape[0]
        return self.params["token_embedding.weight"].shape[0] - 2  # less <start>, <end>

    def text_inputs(self, vocab, texts, *, warn: bool = True):
        """What the text encoder reads for ``texts``, in the model's library and dtype.

        Linear: ``(n, V)`` bag-of-words features (:meth:`Vocabulary.features`).
        Transformer: ``(n, context_length)`` int64 ids ``[<start>, words..., <end>, 0...]``,
        truncated (keeping ``<end>``) past ``context_length - 2`` words.
        """
        from numclip.text import Vocabulary  # here: text builds on nothing of the model's

        if not isinstance(vocab, Vocabulary):
            raise TypeError(f"vocab must be a numclip.text.Vocabulary, got {type(vocab).__name__}")
        if len(vocab) != self.vocab_size:
            raise ValueError(f"vocab has {len(vocab)} words but the model knows "
                             f"{self.vocab_size}; use the vocabulary it was trained with")
        xp = array_namespace(self.params["logit_scale"])
        if self.encoder == "linear":
            features = vocab.features(texts, warn=warn)  # (n, V)
            return xp.asarray(features, dtype=self.params["text_proj"].dtype)
        # the same checks and warnings as the linear one's
        return xp.asarray(_token_ids(vocab.word_ids(texts, warn=warn), self.vocab_size))

    def embed(self, pixels, token_features, *, paired: bool = True):
        """The encoders' forward pass: unnormalized ``(B, D)`` image and text embeddings.

        Args:
            pixels: ``(B, P)`` flattened images, in the model's library and dtype (lists
                of numbers are taken in its dtype).
            token_features: ``(B, V)`` features or ``(B, L)`` ids, as :meth:`text_inputs`
                makes them (the name :meth:`encode_texts` and :func:`as_batch` use).
            paired: False lets ``token_features`` have another number of rows than
                ``pixels`` (NegCLIP's captions followed by their hard negatives).

        Returns:
            image_embeds, text_embeds, and the cache for :meth:`embed_backward`.
        """
        paired = as_bool(paired, "paired")
        if self.encoder == "linear":
            pixels, texts = as_batch(self.params, pixels, token_features, paired=paired)
            image_embeds = pixels @ self.params["image_proj"]  # (B, D)
            text_embeds = texts @ self.params["text_proj"]  # (B, D)
            return image_embeds, text_embeds, (pixels, texts)
        images, ids = _as_transformer_batch(self.params, pixels, token_features, paired)
        vision, text = _towers_of(self.params)
        image_embeds, vision_cache = vision.forward(self.params, images)  # (B, D)
        text_embeds, text_cache = text.forward(self.params, ids)  # (B, D)
        return image_embeds, text_embeds, (vision_cache, text_cache)

    def embed_backward(self, dimage_embeds, dtext_embeds, cache) -> dict:
        """Gradients of :meth:`embed` for every encoder parameter (all but the scale and
        bias), from the gradients of its two outputs.  A sum over the batch's rows, so
        the sum over data-parallel shards is the gradient of the whole batch."""
        if not isinstance(cache, tuple) or len(cache) != 2:
            raise TypeError("cache must be the cache that embed returned, got "
                            f"{type(cache).__name__}")
        if self.encoder == "linear":
            pixels, texts = cache
            dimage_embeds = _as_input(dimage_embeds, "dimage_embeds", self.embed_dim, pixels)
            dtext_embeds = _as_input(dtext_embeds, "dtext_embeds", self.embed_dim, pixels)
            for name, d, x, what in (("dimage_embeds", dimage_embeds, pixels, "image"),
                                     ("dtext_embeds", dtext_embeds, texts, "text")):
                if d.shape[0] != x.shape[0]:
                    raise ValueError(f"{name} must have {x.shape[0]} rows, one per {what} of "
                                     f"the batch embed saw, got {d.shape[0]}")
            return {"image_proj": pixels.T @ dimage_embeds,  # (P, D) = (P, B) @ (B, D)
                    "text_proj": texts.T @ dtext_embeds}  # (V, D)
        vision, text = _towers_of(self.params)
        vision_cache, text_cache = cache
        return vision.backward(dimage_embeds, vision_cache) | text.backward(dtext_embeds,
                                                                            text_cache)

    def encode_images(self, pixels):
        """``(n, P)`` flattened pixels -> ``(n, D)`` unit-length image embeddings.

        ``pixels`` must have the model's P columns, array library and dtype (float32
        in, float32 out); a list of numbers is taken in the model's dtype.
        """
        if self.encoder == "linear":
            pixels = _as_input(pixels, "pixels", self.num_pixels, self.params["image_proj"])
            return l2_normalize(pixels @ self.params["image_proj"])[0]
        images = _as_images(self.params, pixels)
        vision = _towers_of(self.params)[0]
        return l2_normalize(vision.forward(self.params, images, keep_cache=False)[0])[0]

    def encode_texts(self, token_features):
        """Text inputs (:meth:`text_inputs`) -> ``(n, D)`` unit-length text embeddings.

        Linear: ``(n, V)`` bag-of-words features in the model's library and dtype (a
        list of numbers is taken in the model's dtype); transformer: ``(n, L)`` ids.
        """
        if self.encoder == "linear":
            token_features = _as_input(token_features, "token_features", self.vocab_size,
                                       self.params["text_proj"])
            return l2_normalize(token_features @ self.params["text_proj"])[0]
        ids = _as_ids(self.params, token_features)
        text = _towers_of(self.params)[1]
        return l2_normalize(text.forward(self.params, ids, keep_cache=False)[0])[0]

    def loss_and_grads(self, pixels, token_features, negatives=None):
        """Symmetric CLIP loss (or SigLIP's, or NegCLIP's) of a batch of pairs and its
        gradients for every parameter.

        Args:
            pixels: ``(B, P)`` images, row ``i`` paired with ``token_features[i]``, in
                the model's array library and dtype (as for :meth:`encode_images`).
            token_features: ``(B, V)`` bag-of-words features or ``(B, L)`` ids
                (:meth:`text_inputs`).
            negatives: None, or ``(M, V)`` features / ``(M, L)`` ids of hard-negative
                texts (NegCLIP, :func:`numclip.losses.negclip_loss`): every image's softmax
                also runs over them.  CLIP loss only.

        Returns:
            loss (0-d), grads: dict with the keys and shapes of ``params``.
        """
        if negatives is not None:
            return self._negclip_loss_and_grads(pixels, token_features, negatives)
        image_embeds, text_embeds, cache = self.embed(pixels, token_features)
        if self.loss == "siglip":
            loss, g = siglip_loss(image_embeds, text_embeds, self.params["logit_scale"],
                                  self.params["logit_bias"])
        else:
            loss, g = clip_loss(image_embeds, text_embeds, self.params["logit_scale"])
        grads = self.embed_backward(g["image_embeds"], g["text_embeds"], cache)
        grads["logit_scale"] = g["logit_scale"]  # ()
        if "logit_bias" in g:
            grads["logit_bias"] = g["logit_bias"]  # ()
        return loss, {k: grads[k] for k in self.params}

    def _negclip_loss_and_grads(self, pixels, token_features, negatives):
        """:meth:`loss_and_grads` with hard negatives: the captions and the negatives go
        through the text tower as one batch of B + M texts."""
        if self.loss != "clip":
            raise ValueError(f"negatives need loss='clip' (NegCLIP's loss), got {self.loss!r}")
        if self.encoder == "linear":
            proj = self.params["text_proj"]
            token_features = _as_input(token_features, "token_features", self.vocab_size, proj)
            negatives = _as_input(negatives, "negatives", self.vocab_size, proj)
        else:
            token_features = _as_ids(self.params, token_features)
            negatives = _as_ids(self.params, negatives, "negatives")
        xp = array_namespace(self.params["logit_scale"])
        b = token_features.shape[0]
        image_embeds, texts, cache = self.embed(
            pixels, xp.concat([token_features, negatives], axis=0), paired=False)
        if image_embeds.shape[0] != b:
            raise ValueError("pixels and token_features must hold the same number of pairs B "
                             f"(row i of each is one image and its caption), got "
                             f"{image_embeds.shape[0]} and {b}")
        loss, g = negclip_loss(image_embeds, texts[:b], texts[b:], self.params["logit_scale"])
        dtexts = xp.concat([g["text_embeds"], g["negative_embeds"]], axis=0)
        grads = self.embed_backward(g["image_embeds"], dtexts, cache)
        grads["logit_scale"] = g["logit_scale"]  # ()
        return loss, {k: grads[k] for k in self.params}

    def to(self, xp) -> TinyCLIP:
        """The same model with its parameters in array library ``xp`` (e.g. ``cupy``)."""
        xp = _array_library(xp)
        return TinyCLIP({k: xp.asarray(to_numpy(v)) for k, v in self.params.items()}, self.loss,
                        self.encoder)


def _check_choices(loss, encoder) -> None:
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not isinstance(encoder, str) or encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")


_IMAGE_OUT = {"linear": "image_proj", "transformer": "visual.proj"}  # (., D) of each encoder


def _image_side(params) -> int:
    """S of the S x S images a transformer model takes: its patch grid times the patch."""
    grid = math.isqrt(params["visual.positional_embedding"].shape[0] - 1)
    return grid * params["visual.conv1.weight"].shape[-1]


def _towers(num_pixels: int, vocab_size: int, embed_dim: int):
    """The transformer model's two encoders for these sizes."""
    side = math.isqrt(num_pixels // 3)
    if 3 * side * side != num_pixels or side % TRANSFORMER["patch_size"]:
        raise ValueError(f"num_pixels must be 3 S^2 for S x S RGB images with S a multiple of "
                         f"the patch size {TRANSFORMER['patch_size']}, got {num_pixels}")
    t = TRANSFORMER
    vision = VisionTransformer(side, t["patch_size"], t["width"], t["layers"], t["heads"],
                               embed_dim, t["mlp_ratio"], t["activation"])
    text = TextTransformer(t["context_length"], vocab_size + 2, t["width"], t["text_layers"],
                           t["heads"], embed_dim, t["mlp_ratio"], t["activation"])
    return vision, text


def _towers_of(params):
    return _towers(3 * _image_side(params) ** 2, params["token_embedding.weight"].shape[0] - 2,
                   params["visual.proj"].shape[1])


def _initial_transformer_params(num_pixels, vocab_size, embed_dim, seed, loss, dtype) -> dict:
    rng = np.random.default_rng(seed)  # drawn on the host: every backend sees the same
    vision, text = _towers(num_pixels, vocab_size, embed_dim)
    params = vision.init_params(rng) | text.init_params(rng)
    params |= {"logit_scale": INIT_LOGIT_SCALE} if loss == "clip" else {
        "logit_scale": SIGLIP_INIT_LOGIT_SCALE, "logit_bias": SIGLIP_INIT_LOGIT_BIAS}
    return {k: np.asarray(v, dtype=dtype) for k, v in params.items()}


def _token_ids(word_ids: list, vocab_size: int) -> np.ndarray:
    """``(n, context_length)`` ids of each text's words (:meth:`Vocabulary.word_ids`):
    ``<start>`` = V, the words, ``<end>`` = V + 1, zeros."""
    length = TRANSFORMER["context_length"]
    ids = np.zeros((len(word_ids), length), dtype=np.int64)
    for i, words in enumerate(word_ids):
        words = words[:length - 2]  # truncated, keeping room for <end>
        ids[i, :len(words) + 2] = [vocab_size, *words, vocab_size + 1]
    return ids


def _as_images(params, pixels):
    """``(B, P)`` flattened ``(S, S, 3)`` images as the ViT's ``(B, 3, S, S)``."""
    side = _image_side(params)
    pixels = _as_input(pixels, "pixels", 3 * side * side, params["visual.proj"])
    xp = array_namespace(pixels)
    return xp.permute_dims(xp.reshape(pixels, (pixels.shape[0], side, side, 3)), (0, 3, 1, 2))


def _as_ids(params, ids, name="token_features"):
    """``(B, L)`` token ids for the text tower, each ending in ``<end>`` (the largest)."""
    from numclip.nn.validate import as_token_ids

    ids = as_token_ids(ids, name, params["token_embedding.weight"].shape[0],
                       TRANSFORMER["context_length"])
    xp = array_namespace(ids)
    if not bool(xp.all(xp.max(ids, axis=1) == params["token_embedding.weight"].shape[0] - 1)):
        raise ValueError(f"{name} must be token ids with an <end> token (the largest "
                         "id) in every row; make them with model.text_inputs(vocab, texts)")
    return ids


def _as_transformer_batch(params, pixels, texts, paired=True):
    images, ids = _as_images(params, pixels), _as_ids(params, texts)
    if paired and images.shape[0] != ids.shape[0]:
        raise ValueError("pixels and token_features must hold the same number of pairs B "
                         "(row i of each is one image and its caption), got "
                         f"{images.shape[0]} and {ids.shape[0]}")
    return images, ids


def _as_input(x, name, width, like):
    """``x`` as an encoder's ``(n, width)`` input, in the library and dtype of ``like``
    (one of the model's parameters).

    A list or tuple of numbers is typed in, not computed: it becomes an array of the
    model's library and dtype.  An array must already be one (a float64 array for a
    float32 model is refused, not cast: its dtype was somebody's choice).
    """
    if isinstance(x, list | tuple):
        x = as_matrix(x, name)  # float64, finite
        xp = array_namespace(like)
        with np.errstate(over="ignore"):  # beyond the model's dtype: refused just below
            x = xp.asarray(x, dtype=like.dtype)
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError(f"{name} holds numbers beyond the range of the model's dtype "
                             f"{like.dtype}")
    x = as_matrix(x, name)
    _check_width(name, x, width, like)
    return x


def as_batch(params: dict, pixels, token_features, *, paired: bool = True):
    """Validate a batch of pairs for a TinyCLIP's ``params``; return it as arrays.

    Args:
        params: the model's parameters (``image_proj`` (P, D), ``text_proj`` (V, D)).
        pixels: ``(B, P)`` images; token_features: ``(B, V)`` captions, row ``i`` of
            each one pair.  Arrays in the model's library and dtype, or lists of
            numbers (taken in the model's dtype).
        paired: False allows another number of captions than images.

    Raises:
        TypeError, ValueError: naming ``pixels`` or ``token_features``: not a finite
            float matrix, another width, library or dtype than the model's, or a
            different number of rows.
    """
    if not (isinstance(params, Mapping) and {"image_proj", "text_proj"} <= set(params)):
        raise TypeError("params must be a TinyCLIP's parameters (image_proj, text_proj), got "
                        f"{type(params).__name__}")
    image_proj, text_proj = params["image_proj"], params["text_proj"]
    pixels = _as_input(pixels, "pixels", image_proj.shape[0], image_proj)
    token_features = _as_input(token_features, "token_features", text_proj.shape[0], text_proj)
    if as_bool(paired, "paired") and pixels.shape[0] != token_features.shape[0]:
        raise ValueError("pixels and token_features must hold the same number of pairs B "
                         "(row i of each is one image and its caption), got "
                         f"{pixels.shape[0]} and {token_features.shape[0]}")
    return pixels, token_features


def _check_width(name, x, width, like) -> None:
    """Raise unless the ``(n, P)`` input ``x`` has ``width`` columns and the array library
    and dtype of ``like``, one of the model's parameters."""
    if x.shape[1] != width:
        raise ValueError(f"{name} must have {width} columns to match the model, "
                         f"got {x.shape[1]}")
    try:
        xp = array_namespace_of({name: x, "the model": like})
    except TypeError as err:
        raise TypeError(f"{name} must be in the model's array library: {err}") from None
    if x.dtype != like.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the model is {like.dtype}; "
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


def _check_params(params, loss: str, encoder: str = "linear") -> None:
    """Check a TinyCLIP's parameter dict; every error names the parameter."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    if encoder == "transformer":
        _check_transformer_shapes(params, loss)
        expected = set(params)
    else:
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
        if encoder == "linear" and value.ndim != (2 if k.endswith("_proj") else 0):
            raise ValueError(f"{name} must have shape {_SHAPES[k]}, got {tuple(value.shape)}")
    as_log_scale(params["logit_scale"], "params['logit_scale']")  # exp() must not overflow
    image_proj = params[_IMAGE_OUT[encoder]]
    text_proj = params["text_proj" if encoder == "linear" else "text_projection"]
    if encoder == "linear" and image_proj.shape[1] != text_proj.shape[1]:
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


def _check_transformer_shapes(params, loss: str) -> None:
    """The keys and shapes a transformer TinyCLIP's params must have, given the sizes its
    tables imply (image side, vocabulary, embed_dim)."""
    for key, ndim in (("visual.positional_embedding", 2), ("visual.conv1.weight", 4),
                      ("visual.proj", 2), ("token_embedding.weight", 2)):
        if key not in params:
            raise ValueError(f"params for encoder='transformer' must have {key!r}; missing")
        if getattr(params[key], "ndim", None) != ndim:
            raise ValueError(f"params[{key!r}] must have {ndim} axes, got shape "
                             f"{tuple(getattr(params[key], 'shape', ()))}")
    if params["token_embedding.weight"].shape[0] < 3:
        raise ValueError("params['token_embedding.weight'] must have V + 2 >= 3 rows "
                         "(the words, <start> and <end>)")
    expected = TinyCLIP.param_shapes(3 * _image_side(params) ** 2,
                                     params["token_embedding.weight"].shape[0] - 2,
                                     params["visual.proj"].shape[1], loss, "transformer")
    if set(params) != set(expected):
        missing = sorted(set(expected) - set(params))
        extra = sorted(set(params) - set(expected), key=str)
        raise ValueError(f"params for encoder='transformer', loss={loss!r} must have "
                         f"{len(expected)} keys; missing {missing[:3]}, unexpected {extra[:3]}")
    for key, shape in expected.items():
        got = tuple(getattr(params[key], "shape", ()))
        if got != tuple(shape):
            raise ValueError(f"params[{key!r}] must have shape {tuple(shape)}, got {got}")
