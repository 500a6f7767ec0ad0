"""Argument checks shared by the encoder layers.

Every layer in :mod:`numclip.nn` validates what it is given the same way: an
activation is a finite float32/float64 array of a known rank and width; a weight
has exactly the shape the layer needs, and the activation's array library and
dtype (float32 in, float32 out: a float64 weight would silently promote). Errors
are ``TypeError`` for the wrong kind of thing and ``ValueError`` for a wrong value,
and they name the argument.
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from numclip.backend import array_namespace, array_namespace_of, as_float_array, as_int

__all__ = ["as_activation", "as_weight", "as_upstream", "as_token_ids", "as_rows", "as_cache",
           "as_heads", "as_prefix"]


def as_activation(x, name: str, ndim: int | None = None, width: int | None = None):
    """``x`` as a finite float array with ``ndim`` axes (None: at least one) and ``width``
    entries on the last axis (None: any).

    Raises:
        TypeError: not a float32/float64 array.
        ValueError: empty, non-finite, another rank or width.
    """
    x = as_float_array(x, name)
    if (x.ndim != ndim) if ndim is not None else x.ndim < 1:
        expected = f"{ndim} axes" if ndim is not None else "at least one axis"
        raise ValueError(f"{name} must have {expected}, got shape {tuple(x.shape)}")
    if width is not None and x.shape[-1] != width:
        raise ValueError(f"{name} must have width {width} on its last axis (the layer's "
                         f"weights), got shape {tuple(x.shape)}")
    return x


def as_weight(w, name: str, shape: tuple, like, like_name: str = "x", *, finite: bool = True):
    """``w`` as a finite array of ``shape`` (a None entry: any length), in ``like``'s
    library and dtype.  ``finite=False`` skips only the scan for NaN and inf (a caller that
    checked the values when it loaded them): kind, shape, library and dtype are cheap, and
    a float64 or integer weight would silently promote a float32 forward pass."""
    if not array_api_compat.is_array_api_obj(w):
        raise TypeError(f"{name} must be an array, got {type(w).__name__}")
    if finite:
        w = as_float_array(w, name)
    elif not array_namespace(w).isdtype(w.dtype, "real floating"):
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {w.dtype}")
    if len(w.shape) != len(shape) or any(n is not None and n != m
                                         for n, m in zip(shape, w.shape, strict=True)):
        wanted = ", ".join("any" if n is None else str(n) for n in shape)
        raise ValueError(f"{name} must have shape ({wanted}{',' * (len(shape) == 1)}), "
                         f"got {tuple(w.shape)}")
    array_namespace_of({name: w, like_name: like})
    if w.dtype != like.dtype:
        raise TypeError(f"{name} has dtype {w.dtype} but {like_name} is {like.dtype}; "
                        "both must be float32 or both float64")
    return w


def as_upstream(dy, shape: tuple, like, name: str = "dy"):
    """An upstream gradient: a finite float array of ``shape``, ``like``'s library and dtype
    (``like`` is an array the forward pass kept in its cache)."""
    dy = as_float_array(dy, name)
    if tuple(dy.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (the forward's output), "
                         f"got {tuple(dy.shape)}")
    array_namespace_of({name: dy, "the forward's input": like})
    if dy.dtype != like.dtype:
        raise TypeError(f"{name} has dtype {dy.dtype} but the forward pass ran in {like.dtype}")
    return dy


def as_token_ids(ids, name: str, vocab_size: int, context_length: int | None = None,
                 like=None):
    """``ids`` as a ``(B, L)`` integer array with every id in ``[0, vocab_size)``.

    A (nested) list of ints is typed in, not computed: it becomes an int64 array in the
    library of ``like`` (NumPy without it).
    """
    if isinstance(ids, list | tuple):
        listed = np.asarray(ids)
        if listed.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer token ids, got a list that converts "
                            f"to {listed.dtype}")
        ids = np.asarray(listed, dtype=np.int64) if like is None else array_namespace(
            like).asarray(listed, dtype=array_namespace(like).int64)
    if not array_api_compat.is_array_api_obj(ids):
        raise TypeError(f"{name} must be an integer array (B, L), got {type(ids).__name__}")
    xp = array_namespace(ids)
    if not xp.isdtype(ids.dtype, "integral"):
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, L) with B, L >= 1, got {tuple(ids.shape)}")
    if context_length is not None and ids.shape[1] > context_length:
        raise ValueError(f"{name} has {ids.shape[1]} tokens per text, more than the "
                         f"model's context_length {context_length}")
    if bool(xp.any(ids < 0)) or bool(xp.any(ids >= vocab_size)):
        raise ValueError(f"{name} must hold ids in [0, {vocab_size}) (the vocabulary), got "
                         f"values from {int(xp.min(ids))} to {int(xp.max(ids))}")
    return ids


def as_rows(rows, x, name: str = "rows"):
    """``rows`` as a ``(B,)`` integer array of positions in ``[0, L)`` for ``(B, L, D)``
    tokens ``x``, in x's library: the one token of each sequence that an encoder pools."""
    if not array_api_compat.is_array_api_obj(rows):
        raise TypeError(f"{name} must be None or a (B,) integer array of positions, "
                        f"got {type(rows).__name__}")
    xp = array_namespace_of({name: rows, "x": x})
    if not xp.isdtype(rows.dtype, "integral"):
        raise TypeError(f"{name} must hold integer positions, got dtype {rows.dtype}")
    if tuple(rows.shape) != (x.shape[0],):
        raise ValueError(f"{name} must have shape (B,) = ({x.shape[0]},), one position per "
                         f"sequence, got {tuple(rows.shape)}")
    if bool(xp.any(rows < 0)) or bool(xp.any(rows >= x.shape[1])):
        raise ValueError(f"{name} must hold positions in [0, {x.shape[1]}) (the tokens), got "
                         f"values from {int(xp.min(rows))} to {int(xp.max(rows))}")
    return rows


def as_cache(cache, name: str, length: int, layer: str) -> tuple:
    """A layer's cache: the tuple its forward returned, tagged with the layer's name (so
    that the cache of another layer is refused here, not by a broadcasting error later)."""
    if not (isinstance(cache, tuple) and len(cache) == length + 1 and cache[-1] == layer):
        got = (f"the cache of {cache[-1]}" if isinstance(cache, tuple) and cache
               and isinstance(cache[-1], str) else type(cache).__name__)
        raise TypeError(f"{name} must be the cache that {layer} returned, got {got}")
    return cache[:-1]


def as_heads(num_heads, width: int) -> int:
    """The number of attention heads: a positive int that divides ``width``."""
    num_heads = as_int(num_heads, "num_heads", 1)
    if width % num_heads:
        raise ValueError(f"num_heads ({num_heads}) must divide the width ({width})")
    return num_heads


def as_prefix(prefix, example: str = "transformer.") -> str:
    """A parameter-key prefix (open_clip's, such as ``"visual."``): a str, which may be empty."""
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str (open_clip's key prefix, such as {example!r}), "
                        f"got {type(prefix).__name__}")
    return prefix
