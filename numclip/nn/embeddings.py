"""Turning images and token ids into sequences of vectors, and pooling one vector back out.

- :func:`patch_embed`: open_clip's ``conv1`` (kernel = stride = patch size, no bias) is a
  matrix product over non-overlapping patches, so it is written as a reshape and one.
- :func:`prepend_class_token` and :func:`add_positions`: the learned class token in
  front, then a learned vector per position.
- :func:`token_embed`: a row of the embedding table per token id.
- :func:`class_token_pool` and :func:`eot_pool`: the vision encoder keeps token 0, the
  text encoder the end-of-text token, found as ``argmax`` of the ids (49407, the
  end-of-text id, is the largest in CLIP's vocabulary); :func:`take_rows` picks the same
  tokens for inference, where no gradient flows back.

Derivations: ``docs/derivations.md#embeddings-and-pooling``.
"""

from __future__ import annotations

import numpy as np

from numclip.backend import array_namespace, array_namespace_of
from numclip.nn.validate import (
    as_activation,
    as_cache,
    as_rows,
    as_token_ids,
    as_upstream,
    as_weight,
)

__all__ = ["patch_embed", "patch_embed_backward", "prepend_class_token",
           "prepend_class_token_backward", "add_positions", "add_positions_backward",
           "token_embed", "token_embed_backward", "class_token_pool", "class_token_pool_backward",
           "eot_pool", "eot_pool_backward", "take_rows"]


def patch_embed(images, weight, *, validate: bool = True):
    r"""Cut ``(B, C, H, W)`` images into ``p x p`` patches and project each to ``D`` numbers.

    The same as a convolution with kernel = stride = p and no bias:
    ``y[b, n] = W_flat @ patch_n``, patches in row-major order (as conv1's output is
    flattened in open_clip).

    Args:
        images: ``(B, C, H, W)`` float array, H and W multiples of p.
        weight: ``(D, C, p, p)``, conv1's weight.
        validate: check the arguments (see :func:`~numclip.nn.affine.linear`).

    Returns:
        patches ``(B, (H/p)(W/p), D)``, and the cache for :func:`patch_embed_backward`.
    """
    if validate:
        _check_patch_embed(images, weight)
    b, c, height, width = images.shape
    p = weight.shape[-1]
    xp = array_namespace(images)
    gh, gw = height // p, width // p
    grid = xp.reshape(images, (b, c, gh, p, gw, p))
    patches = xp.reshape(xp.permute_dims(grid, (0, 2, 4, 1, 3, 5)),
                         (b, gh * gw, c * p * p))  # (B, N, C p p)
    w = xp.reshape(weight, (weight.shape[0], c * p * p))  # (D, C p p)
    # one 2-D product: NumPy runs a 3-D @ 2-D product as a loop of small ones
    y = xp.reshape(xp.reshape(patches, (-1, c * p * p)) @ w.T, (b, gh * gw, w.shape[0]))
    return y, (patches, w, tuple(images.shape), tuple(weight.shape), "patch_embed")


def _check_patch_embed(images, weight):
    images = as_activation(images, "images", 4)
    _, c, height, width = images.shape
    as_weight(weight, "weight", (None,) * getattr(weight, "ndim", 4), images, "images")
    if weight.ndim != 4:
        raise ValueError(f"weight must have shape (D, C, p, p), got {tuple(weight.shape)}")
    p = weight.shape[-1]
    as_weight(weight, "weight", (None, c, p, p), images, "images")
    if height % p or width % p:
        raise ValueError(f"images must have a height and width divisible by the patch size "
                         f"{p}, got {height} x {width}")


def patch_embed_backward(dy, cache):
    """Gradients of :func:`patch_embed`.

    Returns:
        dimages ``(B, C, H, W)``, dweight ``(D, C, p, p)``.
    """
    patches, w, image_shape, weight_shape = as_cache(cache, "cache", 4, "patch_embed")
    b, c, height, width = image_shape
    p = weight_shape[-1]
    dy = as_upstream(dy, (b, (height // p) * (width // p), w.shape[0]), patches)
    xp = array_namespace(patches)
    dw = xp.reshape(dy, (-1, dy.shape[-1])).T @ xp.reshape(patches, (-1, patches.shape[-1]))
    dpatches = xp.reshape(dy @ w, (b, height // p, width // p, c, p, p))
    dimages = xp.reshape(xp.permute_dims(dpatches, (0, 3, 1, 4, 2, 5)), image_shape)
    return dimages, xp.reshape(dw, weight_shape)


def prepend_class_token(x, class_embedding, *, validate: bool = True):
    """Put the learned class token in front of every sequence: ``(B, N, D) -> (B, N+1, D)``.

    ``validate=False`` skips the checks (see :func:`~numclip.nn.affine.linear`)."""
    if validate:
        x = as_activation(x, "x", 3)
        as_weight(class_embedding, "class_embedding", (x.shape[-1],), x)
    xp = array_namespace(x)
    cls = xp.broadcast_to(class_embedding, (x.shape[0], 1, x.shape[-1]))  # (B, 1, D)
    return xp.concat([cls, x], axis=1), (x, "prepend_class_token")


def prepend_class_token_backward(dy, cache):
    """Gradients of :func:`prepend_class_token`: ``dx = dy[:, 1:]``, and the class token,
    shared by every sequence, gets the sum of their gradients at position 0."""
    (x,) = as_cache(cache, "cache", 1, "prepend_class_token")
    dy = as_upstream(dy, (x.shape[0], x.shape[1] + 1, x.shape[2]), x)
    xp = array_namespace(dy)
    return dy[:, 1:, :], xp.sum(dy[:, 0, :], axis=0)


def add_positions(x, positional_embedding, *, validate: bool = True):
    """Add a learned vector per position: ``x + P[:L]`` for ``(B, L, D)`` tokens and a
    ``(context, D)`` table (``L <= context``; the text encoder's inputs are padded to it).

    ``validate=False`` skips the checks (see :func:`~numclip.nn.affine.linear`)."""
    if validate:
        x = as_activation(x, "x", 3)
        as_weight(positional_embedding, "positional_embedding",
                  (None,) * getattr(positional_embedding, "ndim", 2), x)
        if positional_embedding.ndim != 2:
            raise ValueError("positional_embedding must have shape (context, D), got "
                             f"{tuple(positional_embedding.shape)}")
        as_weight(positional_embedding, "positional_embedding", (None, x.shape[-1]), x)
        if positional_embedding.shape[0] < x.shape[1]:
            raise ValueError(f"x has {x.shape[1]} positions but positional_embedding only "
                             f"{positional_embedding.shape[0]}")
    return x + positional_embedding[:x.shape[1], :], (x, positional_embedding.shape[0],
                                                      "add_positions")


def add_positions_backward(dy, cache):
    """Gradients of :func:`add_positions`: ``dx = dy``; each position's vector gets the
    sum over the batch, and rows past ``L`` get zero."""
    x, context = as_cache(cache, "cache", 2, "add_positions")
    dy = as_upstream(dy, x.shape, x)
    xp = array_namespace(dy)
    dpos = xp.sum(dy, axis=0)  # (L, D)
    rest = xp.zeros((context - dy.shape[1], dy.shape[2]), dtype=dy.dtype)
    return dy, xp.concat([dpos, rest], axis=0)


def token_embed(ids, weight, *, validate: bool = True):
    """Look up a row of the ``(V, D)`` embedding table per token id: ``(B, L) -> (B, L, D)``.

    ``validate=False`` skips the checks (see :func:`~numclip.nn.affine.linear`)."""
    if validate:
        weight = as_activation(weight, "weight", 2)  # (V, D)
        ids = as_token_ids(ids, "ids", weight.shape[0], like=weight)
        array_namespace_of({"ids": ids, "weight": weight})
    xp = array_namespace(weight)
    b, length = ids.shape
    rows = xp.take(weight, xp.reshape(ids, (-1,)), axis=0)  # (B L, D)
    return xp.reshape(rows, (b, length, weight.shape[1])), (ids, weight, "token_embed")


def token_embed_backward(dy, cache):
    """Gradient of :func:`token_embed` for the table: each row gets the sum of the
    gradients of every position that holds its id (rows never used get zero).

    Returns:
        dweight ``(V, D)`` (no gradient flows to integer ids).
    """
    ids, weight = as_cache(cache, "cache", 2, "token_embed")
    v, d = weight.shape
    dy = as_upstream(dy, (*ids.shape, d), weight)
    xp = array_namespace(dy)
    flat_ids, flat_dy = xp.reshape(ids, (-1,)), xp.reshape(dy, (-1, d))
    if isinstance(dy, np.ndarray):  # NumPy can scatter-add without a (B L, V) one-hot
        dweight = np.zeros((v, d), dtype=dy.dtype)
        np.add.at(dweight, flat_ids, flat_dy)
        return dweight
    one_hot = xp.astype(flat_ids[:, None] == xp.arange(v)[None, :], dy.dtype)  # (B L, V)
    return one_hot.T @ flat_dy


def class_token_pool(x):
    """The vision encoder's pooled feature: token 0 of each ``(B, L, D)`` sequence."""
    x = as_activation(x, "x", 3)
    return x[:, 0, :], (x, "class_token_pool")


def class_token_pool_backward(dy, cache):
    """Gradient of :func:`class_token_pool`: ``dy`` at token 0, zero elsewhere."""
    (x,) = as_cache(cache, "cache", 1, "class_token_pool")
    shape = x.shape
    dy = as_upstream(dy, (shape[0], shape[2]), x)
    xp = array_namespace(dy)
    rest = xp.zeros((shape[0], shape[1] - 1, shape[2]), dtype=dy.dtype)
    return xp.concat([dy[:, None, :], rest], axis=1)


def eot_pool(x, ids):
    """The text encoder's pooled feature: the token at ``argmax(ids)`` of each sequence.

    Args:
        x: ``(B, L, D)`` tokens; ids: ``(B, L)`` the token ids they came from.

    Returns:
        ``(B, D)``, and the cache (a ``(B, L)`` one-hot of the pooled positions).
    """
    x = as_activation(x, "x", 3)
    ids = as_token_ids(ids, "ids", np.iinfo(np.int64).max)
    if tuple(ids.shape) != tuple(x.shape[:2]):
        raise ValueError(f"ids must have shape (B, L) = {tuple(x.shape[:2])}, "
                         f"got {tuple(ids.shape)}")
    xp = array_namespace_of({"ids": ids, "x": x})
    where = xp.argmax(ids, axis=-1)  # (B,), the first position of the largest id
    one_hot = xp.astype(xp.arange(x.shape[1])[None, :] == where[:, None], x.dtype)  # (B, L)
    return xp.sum(x * one_hot[:, :, None], axis=1), (x, one_hot, "eot_pool")


def take_rows(x, rows, *, validate: bool = True):
    """``(B, 1, D)``: token ``rows[b]`` of each sequence ``b`` of ``x``, for inference.

    What an encoder's last block computes when only the pooled token is read from it
    (:func:`~numclip.nn.block.residual_block`'s ``rows``): the class token, ``rows = 0``,
    or the end-of-text token, ``argmax(ids)``. Training pools with :func:`class_token_pool`
    and :func:`eot_pool`, whose caches carry the gradient back.

    Args:
        x: ``(B, L, D)`` tokens; rows: ``(B,)`` integer positions in ``[0, L)``.
        validate: check the arguments (see :func:`~numclip.nn.affine.linear`).
    """
    if validate:
        x = as_activation(x, "x", 3)
        rows = as_rows(rows, x)
    xp = array_namespace(x)
    b, length, d = x.shape
    flat = xp.reshape(x, (b * length, d))  # one take along axis 0: the array API's only one
    where = rows + length * xp.arange(b, dtype=rows.dtype)
    return xp.reshape(xp.take(flat, where, axis=0), (b, 1, d))


def eot_pool_backward(dy, cache):
    """Gradient of :func:`eot_pool`: ``dy`` at each sequence's pooled position, zero elsewhere."""
    x, one_hot = as_cache(cache, "cache", 2, "eot_pool")
    dy = as_upstream(dy, (x.shape[0], x.shape[2]), x)
    return dy[:, None, :] * one_hot[:, :, None]

