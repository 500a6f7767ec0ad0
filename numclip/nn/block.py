"""The pre-LN residual attention block of CLIP's encoders, and a stack of them.

.. math:: x \\leftarrow x + \\operatorname{attn}(\\operatorname{ln}_1(x)), \\qquad
          x \\leftarrow x + W_{proj}\\, \\operatorname{act}(W_{fc}\\, \\operatorname{ln}_2(x))

(open_clip's ``ResidualAttentionBlock``, MLP ratio 4).  Parameters are read from a
flat dict under open_clip's ``state_dict()`` keys, ``prefix + "ln_1.weight"`` and
so on, and gradients come back under the same keys.  Derivation:
``docs/derivations.md#the-residual-block``.
"""

from __future__ import annotations

from collections.abc import Mapping

from numclip.backend import as_bool, as_int
from numclip.nn.activations import activation as activation_pair
from numclip.nn.affine import linear, linear_backward
from numclip.nn.attention import multi_head_attention, multi_head_attention_backward
from numclip.nn.embeddings import take_rows
from numclip.nn.normalization import layer_norm, layer_norm_backward
from numclip.nn.validate import as_activation, as_cache, as_heads, as_prefix, as_rows, as_weight

__all__ = ["residual_block", "residual_block_backward", "transformer", "transformer_backward",
           "block_shapes", "BLOCK_KEYS"]

# a block's parameters, after its prefix (e.g. "visual.transformer.resblocks.0.")
BLOCK_KEYS = ("ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias",
              "attn.out_proj.weight", "attn.out_proj.bias", "ln_2.weight", "ln_2.bias",
              "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")


def residual_block(x, params: Mapping, prefix: str, num_heads: int, activation: str = "gelu",
                   mask=None, *, validate: bool = True, keep_cache: bool = True, rows=None):
    """One pre-LN block: attention, then the MLP, each added to its input.

    Args:
        x: ``(B, L, D)`` tokens.
        params: a dict holding ``prefix + key`` for every key of :data:`BLOCK_KEYS`.
        prefix: e.g. ``"transformer.resblocks.3."``.
        num_heads: H, dividing D.
        activation: ``"gelu"`` or ``"quick_gelu"`` (:data:`~numclip.nn.activations.ACTIVATIONS`).
        mask: None or an additive ``(L, L)`` mask (the text encoder's causal one).
        validate: check the arguments (see :func:`~numclip.nn.affine.linear`).
        keep_cache: False for inference: no cache, and the MLP's activation overwrites
            its input (which a training step's cache would hold).
        rows: None, or with ``keep_cache=False`` ``(B,)`` integer positions: y is then
            ``(B, 1, D)``, token ``rows[b]``'s output alone. An encoder reads its last
            block at one token per sequence (the class token, the end-of-text token), so
            that block needs every token's keys and values but only that token's query,
            residuals and MLP: a twelfth of ViT-B/32's inference.

    Returns:
        y ``(B, L, D)`` (``(B, 1, D)`` with ``rows``), and the cache for
            :func:`residual_block_backward` (None without ``keep_cache``).
    """
    keep_cache = as_bool(keep_cache, "keep_cache")
    if rows is not None and keep_cache:
        raise ValueError("rows is for inference, which has no backward: pass "
                         "keep_cache=False with it")
    if validate:
        x = as_activation(x, "x", 3)
        w = _block_params(params, prefix, x)
        as_heads(num_heads, x.shape[-1])
        if rows is not None:
            rows = as_rows(rows, x)
    else:
        w = {k: params[prefix + k] for k in BLOCK_KEYS}
    act, _ = activation_pair(activation)
    h1, ln1 = layer_norm(x, w["ln_1.weight"], w["ln_1.bias"], validate=False)  # (B, L, D)
    a, attn = multi_head_attention(h1, w["attn.in_proj_weight"], w["attn.in_proj_bias"],
                                   w["attn.out_proj.weight"], w["attn.out_proj.bias"],
                                   num_heads, mask, validate=validate, rows=rows)  # (B, L, D)
    if rows is not None:  # inference read at one token per sequence: only its residual
        x = take_rows(x, rows, validate=False)  # (B, 1, D)
    a += x  # (B, L, D), the first residual, written into the attention's own new array
    x = a
    h2, ln2 = layer_norm(x, w["ln_2.weight"], w["ln_2.bias"], validate=False)  # (B, L, D)
    f, fc = linear(h2, w["mlp.c_fc.weight"], w["mlp.c_fc.bias"], validate=False)  # (B, L, 4D)
    # f is the product's own new array: inference may overwrite it (a training step's
    # backward needs it, as the activation's cache holds it)
    g, act_cache = act(f, validate=False, inplace=not keep_cache)  # (B, L, 4D)
    m, proj = linear(g, w["mlp.c_proj.weight"], w["mlp.c_proj.bias"], validate=False)
    m += x  # the second residual, into the MLP's new output (no cache holds either)
    if not keep_cache:
        return m, None
    return m, (prefix, activation, ln1, attn, ln2, fc, act_cache, proj, "residual_block")


def residual_block_backward(dy, cache):
    """Gradients of :func:`residual_block`: each residual passes ``dy`` straight through
    and adds what flows back through its branch.

    Returns:
        dx ``(B, L, D)``, and a dict of gradients under the block's parameter keys.
    """
    prefix, activation, ln1, attn, ln2, fc, act_cache, proj = as_cache(
        cache, "cache", 8, "residual_block")
    _, act_backward = activation_pair(activation)
    dg, dc_proj_w, dc_proj_b = linear_backward(dy, proj)  # (B, L, 4D)
    df = act_backward(dg, act_cache)  # (B, L, 4D)
    dh2, dc_fc_w, dc_fc_b = linear_backward(df, fc)  # (B, L, D)
    dx_mid, dln2_w, dln2_b = layer_norm_backward(dh2, ln2)
    dx_mid = dy + dx_mid  # (B, L, D): the MLP's residual and its branch
    dh1, din_w, din_b, dout_w, dout_b = multi_head_attention_backward(dx_mid, attn)
    dx, dln1_w, dln1_b = layer_norm_backward(dh1, ln1)
    grads = (dln1_w, dln1_b, din_w, din_b, dout_w, dout_b, dln2_w, dln2_b,
             dc_fc_w, dc_fc_b, dc_proj_w, dc_proj_b)
    return dx_mid + dx, {prefix + k: g for k, g in zip(BLOCK_KEYS, grads, strict=True)}


def transformer(x, params: Mapping, prefix: str, layers: int, num_heads: int,
                activation: str = "gelu", mask=None, *, validate: bool = True,
                keep_cache: bool = True, rows=None):
    """``layers`` residual blocks in turn, under ``prefix + "resblocks.{i}."``.

    Args:
        prefix: e.g. ``"visual.transformer."`` or ``"transformer."`` (open_clip's keys).
        layers: the number of blocks, a positive int; the rest as :func:`residual_block`.
        keep_cache: False for inference: each block's cache is dropped as soon as the
            next block starts, so memory holds one block's intermediates, not all of them.
        rows: None, or with ``keep_cache=False`` the last block's ``rows``
            (:func:`residual_block`): the one token per sequence that is read from it.

    Returns:
        y ``(B, L, D)`` (``(B, 1, D)`` with ``rows``), and the caches of every block (for
            :func:`transformer_backward`), or None when ``keep_cache`` is False.
    """
    layers = as_int(layers, "layers", 1)
    keep_cache = as_bool(keep_cache, "keep_cache")
    prefix = as_prefix(prefix)  # before it is joined into the blocks' keys
    caches = []
    for i in range(layers):
        x, cache = residual_block(x, params, f"{prefix}resblocks.{i}.", num_heads,
                                  activation, mask, validate=validate, keep_cache=keep_cache,
                                  rows=rows if i == layers - 1 else None)
        if keep_cache:
            caches.append(cache)
    return x, tuple(caches) if keep_cache else None


def transformer_backward(dy, cache):
    """Gradients of :func:`transformer`, the blocks' backward passes in reverse order.

    Returns:
        dx ``(B, L, D)``, and one dict with the gradients of every block's parameters.
    """
    if not isinstance(cache, tuple) or not cache:
        raise TypeError("cache must be the tuple of block caches that transformer returned")
    grads = {}
    for block in reversed(cache):
        dy, block_grads = residual_block_backward(dy, block)
        grads.update(block_grads)
    return dy, grads


def _block_params(params, prefix, x):
    """The block's parameters, each checked under its own key against the tokens ``x``."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    as_prefix(prefix, "transformer.resblocks.0.")
    missing = [prefix + k for k in BLOCK_KEYS if prefix + k not in params]
    if missing:
        raise ValueError(f"params has no {missing[0]!r} (a residual block needs "
                         f"{len(BLOCK_KEYS)} parameters under {prefix!r})")
    d = x.shape[-1]
    fc = params[prefix + "mlp.c_fc.weight"]
    hidden = fc.shape[0] if getattr(fc, "ndim", None) == 2 else None  # the MLP's width
    shapes = block_shapes(d, hidden)
    return {k: as_weight(params[prefix + k], f"params[{prefix + k!r}]", shapes[k], x)
            for k in BLOCK_KEYS}


def block_shapes(d: int, hidden: int | None) -> dict:
    """Each block parameter's shape (under :data:`BLOCK_KEYS`, in that order) for tokens of
    width ``d`` and an MLP ``hidden`` wide (None: any width)."""
    d = as_int(d, "d", 1)
    hidden = None if hidden is None else as_int(hidden, "hidden", 1)
    return {"ln_1.weight": (d,), "ln_1.bias": (d,), "attn.in_proj_weight": (3 * d, d),
            "attn.in_proj_bias": (3 * d,), "attn.out_proj.weight": (d, d),
            "attn.out_proj.bias": (d,), "ln_2.weight": (d,), "ln_2.bias": (d,),
            "mlp.c_fc.weight": (hidden, d), "mlp.c_fc.bias": (hidden,),
            "mlp.c_proj.weight": (d, hidden), "mlp.c_proj.bias": (d,)}

