"""Multi-head self-attention exactly as ``torch.nn.MultiheadAttention`` computes it.

One fused input projection ``in_proj_weight`` ``(3D, D)`` makes queries, keys and
values; each of the ``H`` heads attends with its own ``hd = D / H`` columns; an
output projection mixes the heads again.  The attention weights are numclip's
:func:`~numclip.softmax.softmax` over the keys, and their gradient its
:func:`~numclip.softmax.softmax_backward`.  Derivation:
``docs/derivations.md#multi-head-attention``.
"""

from __future__ import annotations

import math

import array_api_compat

from numclip.backend import array_namespace, array_namespace_of, as_int
from numclip.nn.affine import linear, linear_backward
from numclip.nn.embeddings import take_rows
from numclip.nn.validate import as_activation, as_cache, as_heads, as_rows, as_weight
from numclip.softmax import softmax, softmax_backward

__all__ = ["multi_head_attention", "multi_head_attention_backward", "causal_mask"]


def causal_mask(length: int, like):
    """The additive causal mask open_clip's text encoder uses: ``(L, L)``, 0 on and
    below the diagonal, ``-inf`` above it, so token ``i`` attends to tokens ``<= i``.

    Args:
        length: L, a positive int.
        like: an array whose library and dtype the mask takes.
    """
    length = as_int(length, "length", 1)
    if not array_api_compat.is_array_api_obj(like):
        raise TypeError(f"like must be an array whose library and dtype the mask takes, "
                        f"got {type(like).__name__}")
    xp = array_namespace(like)
    if not xp.isdtype(like.dtype, "real floating"):
        raise TypeError(f"like must be a float array (the mask holds -inf), got {like.dtype}")
    try:
        i = xp.arange(length)
        future = i[None, :] > i[:, None]  # (L, L): key j comes after query i
        return xp.where(future, xp.asarray(-math.inf, dtype=like.dtype),
                        xp.asarray(0.0, dtype=like.dtype))
    except (ValueError, MemoryError):  # NumPy's "maximum allowed size exceeded"
        raise ValueError(f"length = {length} asks for a {length} x {length} mask, more than "
                         "this machine can allocate") from None


def multi_head_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                         num_heads: int, mask=None, *, validate: bool = True, rows=None):
    r"""Self-attention of every token to every (unmasked) token, ``H`` heads at once.

    .. math:: [Q\,K\,V] = x W_{in}^\top + b_{in}, \qquad
              A_h = \operatorname{softmax}\!\left(\frac{Q_h K_h^\top}{\sqrt{hd}} + M\right),
              \qquad y = [A_1 V_1 \dots A_H V_H]\, W_{out}^\top + b_{out}

    Args:
        x: ``(B, L, D)`` tokens (batch first, as open_clip).
        in_proj_weight: ``(3D, D)``, rows for queries, then keys, then values;
            in_proj_bias: ``(3D,)``.
        out_proj_weight: ``(D, D)``; out_proj_bias: ``(D,)``.
        num_heads: H, which must divide D.
        mask: None, or an additive ``(L, L)`` float mask (0 or ``-inf``, such as
            :func:`causal_mask`) added to every head's scores.
        validate: check the arguments (see :func:`~numclip.nn.affine.linear`).
        rows: None, or for inference ``(B,)`` integer positions: only token ``rows[b]`` of
            each sequence queries (its keys and values still come from every token), and y
            is ``(B, 1, D)``, that token's output (an encoder's last block, read only at
            the token it pools: :func:`~numclip.nn.embeddings.take_rows`).

    Returns:
        y ``(B, L, D)``, and the cache for :func:`multi_head_attention_backward`
            (its ``[3]`` are the attention weights ``(B, H, L, L)``, for pictures; None
            with ``rows``, which has no backward).
    """
    if validate:
        x = as_activation(x, "x", 3)
        as_heads(num_heads, x.shape[-1])
        d = x.shape[-1]
        as_weight(in_proj_weight, "in_proj_weight", (3 * d, d), x)
        as_weight(in_proj_bias, "in_proj_bias", (3 * d,), x)
        as_weight(out_proj_weight, "out_proj_weight", (d, d), x)
        as_weight(out_proj_bias, "out_proj_bias", (d,), x)
    _, length, d = x.shape
    h = int(num_heads)
    xp = array_namespace(x)
    if rows is not None:
        return _attention_of_rows(x, in_proj_weight, in_proj_bias, out_proj_weight,
                                  out_proj_bias, h, mask, validate, rows)
    qkv, in_cache = linear(x, in_proj_weight, in_proj_bias, validate=False)  # (B, L, 3D)
    q, k, v = (_split_heads(qkv[..., i * d:(i + 1) * d], h) for i in range(3))  # (B, H, L, hd)
    scores = q @ xp.permute_dims(k, (0, 1, 3, 2))  # (B, H, L, L); scaled in place
    scores /= math.sqrt(d // h)
    if mask is not None:
        scores += _finite_mask(mask, length, x, validate)
    p = softmax(scores, axis=-1, inplace=True)  # (B, H, L, L): weights over the keys
    heads = _merge_heads(p @ v)  # (B, L, D)
    y, out_cache = linear(heads, out_proj_weight, out_proj_bias, validate=False)  # (B, L, D)
    return y, (in_cache, out_cache, (q, k, v), p, h, "multi_head_attention")


def _attention_of_rows(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, h,
                       mask, validate, rows):
    """:func:`multi_head_attention` with only token ``rows[b]`` of each sequence querying:
    keys and values for every token, queries and outputs for one (a (B, 1, D) y)."""
    if validate:
        rows = as_rows(rows, x)
    _, length, d = x.shape
    xp = array_namespace(x)
    kv, _ = linear(x, in_proj_weight[d:], in_proj_bias[d:], validate=False)  # (B, L, 2D)
    q, _ = linear(take_rows(x, rows, validate=False), in_proj_weight[:d], in_proj_bias[:d],
                  validate=False)  # (B, 1, D)
    q, k, v = _split_heads(q, h), _split_heads(kv[..., :d], h), _split_heads(kv[..., d:], h)
    scores = q @ xp.permute_dims(k, (0, 1, 3, 2))  # (B, H, 1, L)
    scores /= math.sqrt(d // h)
    if mask is not None:  # each query's own row of the mask
        scores += xp.take(_finite_mask(mask, length, x, validate), rows, axis=0)[:, None, None, :]
    p = softmax(scores, axis=-1, inplace=True)  # (B, H, 1, L)
    y, _ = linear(_merge_heads(p @ v), out_proj_weight, out_proj_bias, validate=False)
    return y, None  # (B, 1, D)


def multi_head_attention_backward(dy, cache):
    r"""Gradients of :func:`multi_head_attention`.

    Per head, with :math:`O = A V` and :math:`S` the scaled scores:
    :math:`dV = A^\top dO`, :math:`dA = dO\, V^\top`, :math:`dS` from softmax's backward,
    :math:`dQ = dS\,K/\sqrt{hd}`, :math:`dK = dS^\top Q/\sqrt{hd}`; the mask is a constant.

    Returns:
        dx ``(B, L, D)``, din_proj_weight ``(3D, D)``, din_proj_bias ``(3D,)``,
            dout_proj_weight ``(D, D)``, dout_proj_bias ``(D,)``.
    """
    in_cache, out_cache, (q, k, v), p, h = as_cache(cache, "cache", 5, "multi_head_attention")
    xp = array_namespace(q)
    dheads, dout_proj_weight, dout_proj_bias = linear_backward(dy, out_cache)  # (B, L, D)
    do = _split_heads(dheads, h)  # (B, H, L, hd)
    dv = xp.permute_dims(p, (0, 1, 3, 2)) @ do  # (B, H, L, hd)
    dp = do @ xp.permute_dims(v, (0, 1, 3, 2))  # (B, H, L, L)
    dscores = softmax_backward(dp, p, axis=-1) / math.sqrt(q.shape[-1])  # (B, H, L, L)
    dq = dscores @ k  # (B, H, L, hd)
    dk = xp.permute_dims(dscores, (0, 1, 3, 2)) @ q  # (B, H, L, hd)
    dqkv = xp.concat([_merge_heads(dq), _merge_heads(dk), _merge_heads(dv)], axis=-1)
    dx, din_proj_weight, din_proj_bias = linear_backward(dqkv, in_cache)  # (B, L, D)
    return dx, din_proj_weight, din_proj_bias, dout_proj_weight, dout_proj_bias


def _split_heads(t, h):
    """``(B, L, D)`` -> ``(B, H, L, D/H)``: head ``i`` owns columns ``i*hd:(i+1)*hd``."""
    xp = array_namespace(t)
    b, length, d = t.shape
    return xp.permute_dims(xp.reshape(t, (b, length, h, d // h)), (0, 2, 1, 3))


def _merge_heads(t):
    """``(B, H, L, hd)`` -> ``(B, L, H*hd)``, the inverse of :func:`_split_heads`."""
    xp = array_namespace(t)
    b, h, length, hd = t.shape
    return xp.reshape(xp.permute_dims(t, (0, 2, 1, 3)), (b, length, h * hd))


def _finite_mask(mask, length, x, validate=True):
    """The mask with ``-inf`` replaced by a finite number so large that exp() of it is 0
    all the same: softmax refuses infinite input, and the weights come out identical."""
    if validate:
        _check_mask(mask, length, x)
    xp = array_namespace(x)
    return xp.where(xp.isinf(mask), xp.asarray(xp.finfo(x.dtype).min / 4, dtype=x.dtype), mask)


def _check_mask(mask, length, x):
    if not array_api_compat.is_array_api_obj(mask):
        raise TypeError(f"mask must be None or an (L, L) float array, got {type(mask).__name__}")
    xp = array_namespace_of({"mask": mask, "x": x})
    if tuple(mask.shape) != (length, length):
        raise ValueError(f"mask must have shape (L, L) = ({length}, {length}), "
                         f"got {tuple(mask.shape)}")
    if mask.dtype != x.dtype:
        raise TypeError(f"mask has dtype {mask.dtype} but x is {x.dtype}")
    if bool(xp.any(xp.isnan(mask) | (xp.isinf(mask) & (mask > 0)))):
        raise ValueError("mask may hold finite numbers and -inf, not NaN or +inf")
    if bool(xp.any(xp.all(xp.isinf(mask), axis=-1))):  # torch gives NaN for such a row
        raise ValueError("mask has a row of only -inf: that query may attend to no key, and "
                         "its softmax is undefined")
