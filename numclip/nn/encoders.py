"""CLIP's two encoders, assembled from the layers as open_clip builds them.

- :class:`VisionTransformer`: ``conv1`` patches -> ``[class; patches] + positions`` ->
  ``ln_pre`` -> residual blocks -> ``ln_post`` -> token 0 -> ``@ proj``.
- :class:`TextTransformer`: token embedding + positions -> causal residual blocks ->
  ``ln_final`` -> the end-of-text token -> ``@ text_projection``.

An encoder object holds only its architecture; the weights live in a flat dict
whose keys are open_clip's ``CLIP.state_dict()`` keys (``visual.conv1.weight``,
``transformer.resblocks.0.attn.in_proj_weight``, ``text_projection``, ...), so a
checkpoint maps one to one and ``forward(params, x)`` / ``backward(dy, cache)``
read and write under those keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import array_api_compat
import numpy as np

from numclip.backend import (
    NonFiniteError,
    array_namespace,
    array_namespace_of,
    as_bool,
    as_int,
)
from numclip.nn.activations import activation as activation_pair
from numclip.nn.attention import causal_mask
from numclip.nn.block import block_shapes, transformer, transformer_backward
from numclip.nn.embeddings import (
    add_positions,
    add_positions_backward,
    class_token_pool,
    class_token_pool_backward,
    eot_pool,
    eot_pool_backward,
    patch_embed,
    patch_embed_backward,
    prepend_class_token,
    prepend_class_token_backward,
    token_embed,
    token_embed_backward,
)
from numclip.nn.normalization import layer_norm, layer_norm_backward
from numclip.nn.validate import (
    as_activation,
    as_cache,
    as_heads,
    as_prefix,
    as_token_ids,
    as_upstream,
    as_weight,
)

__all__ = ["VisionTransformer", "TextTransformer", "check_params"]


def _positive(obj, *names):
    for name in names:
        object.__setattr__(obj, name, as_int(getattr(obj, name), name, 1))


def _check_prefix(prefix):
    as_prefix(prefix, "visual.")


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def _stack_shapes(prefix: str, width: int, layers: int, mlp_width: int) -> dict:
    """Every block's parameter shapes in a stack of ``layers``, under their full keys."""
    per_key = block_shapes(width, mlp_width)
    return {f"{prefix}resblocks.{i}.{k}": shape for i in range(layers)
            for k, shape in per_key.items()}


def _init_blocks(shapes: dict, width: int, layers: int, rng) -> dict:
    """open_clip's initialisation of the residual blocks (``init_parameters``)."""
    attn_std, fc_std = width**-0.5, (2 * width) ** -0.5
    proj_std = width**-0.5 * (2 * layers) ** -0.5
    params = {}
    for key, shape in shapes.items():
        if key.endswith(("ln_1.weight", "ln_2.weight")):
            params[key] = np.ones(shape)
        elif key.endswith("bias"):
            params[key] = np.zeros(shape)
        else:
            std = (attn_std if key.endswith("in_proj_weight") else
                   fc_std if key.endswith("c_fc.weight") else proj_std)
            params[key] = std * rng.standard_normal(shape)
    return params


def check_params(params, shapes: Mapping, what: str, like=None, like_name: str = "the input",
                 *, finite: bool = True) -> None:
    """Raise naming the first key of ``shapes`` that ``params`` lacks or holds as anything
    but a finite array of that shape (extra keys belong to the other encoder and are
    ignored); given ``like`` (the encoder's input), also in its library and dtype.
    ``finite=False`` skips the scan for NaN and inf, and nothing else.

    Raises:
        TypeError: ``params`` not a dict, a value that is not a float array, or one of
            another library or dtype than ``like``.
        ValueError: a key missing, a wrong shape, a NaN or infinite entry.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    if not isinstance(shapes, Mapping):
        raise TypeError(f"shapes must be a dict of key -> shape, got {type(shapes).__name__}")
    for key, shape in shapes.items():
        if key not in params:
            raise ValueError(f"params has no {key!r}, which the {what} needs (shape {shape})")
        name = f"params[{key!r}]"
        if not array_api_compat.is_array_api_obj(params[key]):
            raise TypeError(f"{name} must be an array, got {type(params[key]).__name__}")
        if tuple(params[key].shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)} for the {what}, "
                             f"got {tuple(params[key].shape)}")
        if like is not None:
            as_weight(params[key], name, shape, like, like_name, finite=finite)


_OVERFLOW = ("features overflowed to inf or NaN: some weights or inputs are too large for "
             "the dtype (or, with check_weights=False, not finite)")


def _finite_output(features, what: str):
    """The layers ran unchecked: a weight so large that an activation overflowed shows here."""
    xp = array_namespace(features)
    if not bool(xp.all(xp.isfinite(features))):
        raise ValueError(f"the {what} {_OVERFLOW}")
    return features


@contextmanager
def _overflow_named(what: str):
    """Run the unchecked layers of a forward pass.  Their inputs were checked, so an inf or
    NaN inside comes from an overflow (or an unscanned weight): NumPy's RuntimeWarning is
    silenced, and softmax's or a pool's refusal of it (a NonFiniteError, 'z contains NaN
    ...', naming an argument of the caller's caller) is said as what happened."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            yield
    except NonFiniteError:
        raise ValueError(f"the {what} {_OVERFLOW}") from None


@dataclass(frozen=True)
class VisionTransformer:
    """The ViT image encoder's architecture (open_clip's ``vision_cfg``).

    ``heads = width // head_width`` in open_clip's configs (head_width 64 by default).
    """

    image_size: int = 224  # square inputs (B, 3, image_size, image_size)
    patch_size: int = 32  # conv1's kernel and stride
    width: int = 768  # D, every token's width
    layers: int = 12  # residual blocks
    heads: int = 12  # attention heads, dividing width
    output_dim: int = 512  # the shared embedding's width (CLIP's embed_dim)
    mlp_ratio: int = 4  # the MLP's hidden width over D
    activation: str = "gelu"  # "gelu", or "quick_gelu" for OpenAI's weights
    prefix: str = "visual."  # where open_clip's CLIP keeps the vision tower's keys

    def __post_init__(self):
        _positive(self, "image_size", "patch_size", "width", "layers", "heads", "output_dim",
                  "mlp_ratio")
        as_heads(self.heads, self.width)
        activation_pair(self.activation)  # an unknown name is refused here
        _check_prefix(self.prefix)
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of "
                             f"patch_size ({self.patch_size})")

    @property
    def num_tokens(self) -> int:
        """The class token and one token per patch."""
        return (self.image_size // self.patch_size) ** 2 + 1

    def param_shapes(self) -> dict:
        """Every parameter's key and shape, in open_clip's ``state_dict()`` order."""
        p, d = self.prefix, self.width
        return {f"{p}class_embedding": (d,), f"{p}positional_embedding": (self.num_tokens, d),
                f"{p}proj": (d, self.output_dim),
                f"{p}conv1.weight": (d, 3, self.patch_size, self.patch_size),
                f"{p}ln_pre.weight": (d,), f"{p}ln_pre.bias": (d,),
                **_stack_shapes(f"{p}transformer.", d, self.layers, self.mlp_ratio * d),
                f"{p}ln_post.weight": (d,), f"{p}ln_post.bias": (d,)}

    def init_params(self, rng) -> dict:
        """Random float64 NumPy weights, initialised as open_clip does."""
        rng = _check_rng(rng)
        p, scale = self.prefix, self.width**-0.5
        shapes = self.param_shapes()
        params = _init_blocks({k: s for k, s in shapes.items() if ".resblocks." in k},
                              self.width, self.layers, rng)
        for key in (f"{p}class_embedding", f"{p}positional_embedding", f"{p}proj"):
            params[key] = scale * rng.standard_normal(shapes[key])
        fan_in = 3 * self.patch_size**2  # conv1: torch's default, uniform(+-1/sqrt(fan_in))
        params[f"{p}conv1.weight"] = rng.uniform(-1, 1, shapes[f"{p}conv1.weight"]) / math.sqrt(
            fan_in)
        for ln in ("ln_pre", "ln_post"):
            params[f"{p}{ln}.weight"] = np.ones(self.width)
            params[f"{p}{ln}.bias"] = np.zeros(self.width)
        return {k: params[k] for k in shapes}

    def forward(self, params: Mapping, images, *, check_weights: bool = True,
                keep_cache: bool = True):
        """Image features ``(B, output_dim)``, unnormalized, from ``(B, 3, H, W)`` images.

        ``check_weights=False`` checks the parameters' keys and shapes but does not scan
        their values for NaN (88 million numbers in ViT-B/32: 5% of a batch of 8), for a
        caller that checked them when it loaded them (:class:`numclip.pretrained.OpenCLIP`);
        features that come out NaN or infinite are refused either way.
        ``keep_cache=False``, for inference, keeps no intermediates for a backward pass
        (at ViT-B/32's batch of 8, 300 MiB fewer) and returns None for the cache; its last
        block computes the class token's output alone, the only one read from it
        (:func:`~numclip.nn.block.residual_block`'s ``rows``), so the features equal the
        training forward's to rounding, not bit for bit.

        Returns:
            features, and the cache for :meth:`backward` (None without ``keep_cache``).
        """
        keep_cache = as_bool(keep_cache, "keep_cache")
        check_weights = as_bool(check_weights, "check_weights")
        images = as_activation(images, "images", 4)
        check_params(params, self.param_shapes(), "vision encoder", images, "images",
                     finite=check_weights)
        if tuple(images.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(f"images must have shape (B, 3, {self.image_size}, "
                             f"{self.image_size}), got {tuple(images.shape)}")
        p = self.prefix
        with _overflow_named("image"):
            # every parameter was checked once just above: the layers need not check again
            x, patch = patch_embed(images, params[f"{p}conv1.weight"], validate=False)  # (B, N, D)
            x, cls = prepend_class_token(x, params[f"{p}class_embedding"],
                                         validate=False)  # (B, N+1, D)
            x, pos = add_positions(x, params[f"{p}positional_embedding"],
                                   validate=False)  # (B, N+1, D)
            x, ln_pre = layer_norm(x, params[f"{p}ln_pre.weight"], params[f"{p}ln_pre.bias"],
                                   validate=False)
            # inference reads the last block at the class token only, and computes no more
            xp = array_namespace(x)
            rows = None if keep_cache else xp.zeros(x.shape[0], dtype=xp.int64)
            x, blocks = transformer(x, params, f"{p}transformer.", self.layers, self.heads,
                                    self.activation, validate=False, keep_cache=keep_cache,
                                    rows=rows)  # (B, N+1, D), or (B, 1, D) with rows
            x, ln_post = layer_norm(x, params[f"{p}ln_post.weight"], params[f"{p}ln_post.bias"],
                                    validate=False)
            pooled, pool = class_token_pool(x)  # (B, D): token 0, the class token either way
            features = _finite_output(pooled @ params[f"{p}proj"], "image")  # (B, output_dim)
        if not keep_cache:
            return features, None
        return features, (patch, cls, pos, ln_pre, blocks, ln_post, pool, pooled,
                          params[f"{p}proj"], "VisionTransformer.forward")

    def backward(self, dfeatures, cache) -> dict:
        """Gradients of :meth:`forward` for every parameter, under its key."""
        patch, cls, pos, ln_pre, blocks, ln_post, pool, pooled, proj = as_cache(
            cache, "cache", 9, "VisionTransformer.forward")
        dfeatures = as_upstream(dfeatures, (pooled.shape[0], self.output_dim), pooled,
                                "dfeatures")
        p, grads = self.prefix, {}
        grads[f"{p}proj"] = pooled.T @ dfeatures  # (D, output_dim)
        dx = class_token_pool_backward(dfeatures @ proj.T, pool)  # (B, N+1, D)
        dx, grads[f"{p}ln_post.weight"], grads[f"{p}ln_post.bias"] = layer_norm_backward(
            dx, ln_post)
        dx, block_grads = transformer_backward(dx, blocks)
        grads |= block_grads
        dx, grads[f"{p}ln_pre.weight"], grads[f"{p}ln_pre.bias"] = layer_norm_backward(
            dx, ln_pre)
        dx, grads[f"{p}positional_embedding"] = add_positions_backward(dx, pos)
        dx, grads[f"{p}class_embedding"] = prepend_class_token_backward(dx, cls)
        _, grads[f"{p}conv1.weight"] = patch_embed_backward(dx, patch)
        return {k: grads[k] for k in self.param_shapes()}


@dataclass(frozen=True)
class TextTransformer:
    """The causal text encoder's architecture (open_clip's ``text_cfg``)."""

    context_length: int = 77  # positions; inputs are (B, L) ids with L <= context_length
    vocab_size: int = 49408  # rows of the token embedding
    width: int = 512  # D
    layers: int = 12  # residual blocks
    heads: int = 8  # attention heads, dividing width
    output_dim: int = 512  # the shared embedding's width
    mlp_ratio: int = 4  # the MLP's hidden width over D
    activation: str = "gelu"  # "gelu", or "quick_gelu" for OpenAI's weights
    prefix: str = ""  # open_clip's CLIP keeps the text tower at the top level

    def __post_init__(self):
        _positive(self, "context_length", "vocab_size", "width", "layers", "heads",
                  "output_dim", "mlp_ratio")
        as_heads(self.heads, self.width)
        activation_pair(self.activation)  # an unknown name is refused here
        _check_prefix(self.prefix)

    def param_shapes(self) -> dict:
        """Every parameter's key and shape, in open_clip's ``state_dict()`` order."""
        p, d = self.prefix, self.width
        return {f"{p}positional_embedding": (self.context_length, d),
                f"{p}text_projection": (d, self.output_dim),
                **_stack_shapes(f"{p}transformer.", d, self.layers, self.mlp_ratio * d),
                f"{p}token_embedding.weight": (self.vocab_size, d),
                f"{p}ln_final.weight": (d,), f"{p}ln_final.bias": (d,)}

    def init_params(self, rng) -> dict:
        """Random float64 NumPy weights, initialised as open_clip does."""
        rng = _check_rng(rng)
        p = self.prefix
        shapes = self.param_shapes()
        params = _init_blocks({k: s for k, s in shapes.items() if ".resblocks." in k},
                              self.width, self.layers, rng)
        params[f"{p}token_embedding.weight"] = 0.02 * rng.standard_normal(
            shapes[f"{p}token_embedding.weight"])
        params[f"{p}positional_embedding"] = 0.01 * rng.standard_normal(
            shapes[f"{p}positional_embedding"])
        params[f"{p}text_projection"] = self.width**-0.5 * rng.standard_normal(
            shapes[f"{p}text_projection"])
        params[f"{p}ln_final.weight"] = np.ones(self.width)
        params[f"{p}ln_final.bias"] = np.zeros(self.width)
        return {k: params[k] for k in shapes}

    def forward(self, params: Mapping, ids, *, check_weights: bool = True,
                keep_cache: bool = True):
        """Text features ``(B, output_dim)``, unnormalized, from ``(B, L)`` token ids.

        ``check_weights``, ``keep_cache``: as for :meth:`VisionTransformer.forward`.

        Each text must end with its end-of-text token, the largest id in its row
        (CLIP's tokenizer puts 49407 there); the feature is read at that position.

        Returns:
            features, and the cache for :meth:`backward` (None without ``keep_cache``).
        """
        keep_cache = as_bool(keep_cache, "keep_cache")
        check_weights = as_bool(check_weights, "check_weights")
        check_params(params, self.param_shapes(), "text encoder")
        key = f"{self.prefix}token_embedding.weight"
        table = (as_activation(params[key], f"params[{key!r}]", 2) if check_weights
                 else params[key])
        ids = as_token_ids(ids, "ids", self.vocab_size, self.context_length, like=table)
        array_namespace_of({"ids": ids, f"params[{key!r}]": table})
        check_params(params, self.param_shapes(), "text encoder", table, f"params[{key!r}]",
                     finite=check_weights)
        p = self.prefix
        with _overflow_named("text"):
            # every parameter was checked once just above: the layers need not check again
            x, tok = token_embed(ids, table, validate=False)  # (B, L, D)
            x, pos = add_positions(x, params[f"{p}positional_embedding"], validate=False)
            mask = causal_mask(ids.shape[1], x)  # (L, L): token i sees tokens <= i
            # inference reads the last block at the end-of-text token only (eot_pool's argmax)
            rows = None if keep_cache else array_namespace(ids).argmax(ids, axis=-1)
            x, blocks = transformer(x, params, f"{p}transformer.", self.layers, self.heads,
                                    self.activation, mask, validate=False, keep_cache=keep_cache,
                                    rows=rows)  # (B, L, D), or (B, 1, D) with rows
            x, ln_final = layer_norm(x, params[f"{p}ln_final.weight"], params[f"{p}ln_final.bias"],
                                     validate=False)
            pooled, pool = eot_pool(x, ids) if keep_cache else (x[:, 0, :], None)  # (B, D)
            features = _finite_output(pooled @ params[f"{p}text_projection"], "text")
        if not keep_cache:
            return features, None
        return features, (tok, pos, blocks, ln_final, pool, pooled,
                          params[f"{p}text_projection"], "TextTransformer.forward")

    def backward(self, dfeatures, cache) -> dict:
        """Gradients of :meth:`forward` for every parameter, under its key."""
        tok, pos, blocks, ln_final, pool, pooled, proj = as_cache(
            cache, "cache", 7, "TextTransformer.forward")
        dfeatures = as_upstream(dfeatures, (pooled.shape[0], self.output_dim), pooled,
                                "dfeatures")
        p, grads = self.prefix, {}
        grads[f"{p}text_projection"] = pooled.T @ dfeatures  # (D, output_dim)
        dx = eot_pool_backward(dfeatures @ proj.T, pool)  # (B, L, D)
        dx, grads[f"{p}ln_final.weight"], grads[f"{p}ln_final.bias"] = layer_norm_backward(
            dx, ln_final)
        dx, block_grads = transformer_backward(dx, blocks)
        grads |= block_grads
        dx, grads[f"{p}positional_embedding"] = add_positions_backward(dx, pos)
        grads[f"{p}token_embedding.weight"] = token_embed_backward(dx, tok)
        return {k: grads[k] for k in self.param_shapes()}
