"""The symmetric CLIP loss in a few fused passes: dense, or blockwise for huge batches.

``losses.clip_loss_reference`` composes the core functions one by one, which
reads like the derivation but walks over the N x N logit matrix some twenty
times.  Here the same loss and gradients take the three N x N x d matrix
products any exact method needs, plus two passes over the logits:

1. statistics: for every row its log-sum-exp (image -> text), and for every
   column a running max and sum of exponentials (text -> image), merged
   across row panels the way online softmax merges them;
2. gradient: ``G = (exp(S - lse_row) + exp(S - lse_col)) / 2N - Id / N`` written
   over the logits in place, then ``dI = e^s G T`` and ``dT = G^T (e^s I)``.

``block_size=B`` never holds the N x N matrix: it computes the logits one
panel of B rows at a time, twice (once per pass), the approach of Inf-CL
("Breaking the Memory Barrier", Cheng et al., 2024).  Derivation:
``docs/derivations.md#the-blockwise-loss``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np

from numclip.backend import array_namespace

__all__ = ["clip_loss_logits_grads"]

ROWS_PER_TILE = 32  # a 32 x 8192 float32 tile is 1 MiB: it stays in a core's L2 cache


def clip_loss_logits_grads(image, text, scale, block_size=None):
    """Loss and gradients of the symmetric CLIP loss for embeddings used as given.

    Args:
        image, text: ``(N, D)`` embeddings (normalized by the caller, if wanted).
        scale: ``exp(logit_scale)`` as a Python float.
        block_size: rows per panel; ``None`` holds the whole ``(N, N)`` matrix.

    Returns:
        loss (Python float), dimage ``(N, D)``, dtext ``(N, D)``, dlogit_scale (float).
    """
    xp = array_namespace(image, text)
    kernels = _kernels_for(xp)
    n = image.shape[0]
    scaled = image * scale  # (N, D) folds the scale into one operand of every product
    panels = [(a, min(a + (block_size or n), n)) for a in range(0, n, block_size or n)]
    logits = scaled @ text.T if block_size is None else None  # (N, N) dense only
    row_lse = xp.zeros(n, dtype=image.dtype)  # (N,)
    diagonal = xp.zeros(n, dtype=image.dtype)  # (N,) logits of the matching pairs
    col_max = col_sum = None  # (N,) running statistics of the columns
    for a, b in panels:  # pass 1: statistics
        panel = logits[a:b, ...] if logits is not None else scaled[a:b, ...] @ text.T  # (B, N)
        row_lse[a:b], m, s = kernels.stats(panel)
        diagonal[a:b] = _diagonal(xp, panel, a)  # from the logits themselves: lse >= S_ii exactly
        col_max, col_sum = _merge_columns(xp, col_max, col_sum, m, s)
    col_lse = col_max + xp.log(col_sum)  # (N,)
    # -log p_ii = lse_i - S_ii: subtract per pair before summing, so a small loss
    # keeps its digits, and sum in float64
    per_pair = xp.astype((row_lse - diagonal) + (col_lse - diagonal), xp.float64)
    loss = xp.sum(per_pair) / (2 * n)
    dtext = xp.zeros_like(text)
    dimage = xp.zeros_like(image) if logits is None else None
    for a, b in panels:  # pass 2: gradients
        panel = logits[a:b, ...] if logits is not None else scaled[a:b, ...] @ text.T  # recomputed
        kernels.grad(panel, row_lse[a:b], col_lse, a, 1.0 / n)  # G, in place
        if logits is None:
            dimage[a:b, ...] = scale * (panel @ text)  # (B, D)
            dtext += panel.T @ scaled[a:b, ...]  # (N, D)
    if logits is not None:  # two big products on the whole G
        dimage = scale * (logits @ text)  # (N, D)
        dtext = logits.T @ scaled  # (N, D)
    dlogit_scale = xp.sum(image * dimage)  # sum G * S = sum_i I_i . dI_i: no N x N pass
    return float(loss), dimage, dtext, float(dlogit_scale)


def _diagonal(xp, panel, first_row):
    """Entries ``panel[i, first_row + i]``: the matching pairs among the panel's rows."""
    b, n = panel.shape
    flat = first_row + (n + 1) * xp.arange(b)  # row-major positions of those entries
    return xp.take(xp.reshape(panel, (b * n,)), flat)


def _merge_columns(xp, col_max, col_sum, m, s):
    """Online log-sum-exp: fold one panel's column max ``m`` and sum ``s`` into the totals."""
    if col_max is None:
        return m, s
    new_max = xp.maximum(col_max, m)
    return new_max, col_sum * xp.exp(col_max - new_max) + s * xp.exp(m - new_max)


# ----------------------------------------------------------------------------- kernels
# Each backend supplies two functions over a panel of logits (B, N):
#   stats(panel) -> (row_lse (B,), col_max (N,), col_sum (N,) of exp(panel - col_max))
#   grad(panel, row_lse (B,), col_lse (N,), first_row, inv_n): panel <- G, in place, with
#       G = (exp(panel - row_lse) + exp(panel - col_lse)) * inv_n / 2, minus inv_n where
#       column == first_row + row (the targets).  Multiplying by inv_n / 2 last keeps
#       N = 1 exact: (1 + 1) / 2 - 1 = 0.


class _ArrayAPIKernels:
    """Plain array-API operations: any backend, a few temporaries per panel."""

    def __init__(self, xp):
        self.xp = xp

    def stats(self, panel):
        xp = self.xp
        m = xp.max(panel, axis=1, keepdims=True)  # (B, 1)
        row_lse = m[:, 0] + xp.log(xp.sum(xp.exp(panel - m), axis=1))
        col_max = xp.max(panel, axis=0)  # (N,)
        col_sum = xp.sum(xp.exp(panel - col_max), axis=0)  # (N,)
        return row_lse, col_max, col_sum

    def grad(self, panel, row_lse, col_lse, first_row, inv_n):
        xp = self.xp
        g = (xp.exp(panel - row_lse[:, None]) + xp.exp(panel - col_lse)) * (inv_n / 2)  # (B, N)
        b, n = panel.shape
        target = xp.reshape(xp.arange(first_row, first_row + b), (b, 1)) == xp.arange(n)  # (B, N)
        g = g - inv_n * xp.astype(target, g.dtype)
        panel[...] = g


class _NumPyKernels:
    """NumPy, in place and in cache-sized tiles spread over the CPU cores.

    NumPy's ufuncs release the GIL, so plain threads run tiles in parallel.
    Each tile is read from memory once per pass and worked on in cache.
    """

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
        self.workers = os.cpu_count() or 1

    def _split(self, rows):
        step = math.ceil(rows / self.workers)
        return [(a, min(a + step, rows)) for a in range(0, rows, step)]

    def stats(self, panel):
        parts = list(self.pool.map(lambda r: _np_stats(panel[r[0]:r[1]]), self._split(len(panel))))
        row_lse = np.concatenate([p[0] for p in parts])
        col_max, col_sum = parts[0][1], parts[0][2]
        for _, m, s in parts[1:]:
            col_max, col_sum = _merge_columns(np, col_max, col_sum, m, s)
        return row_lse, col_max, col_sum

    def grad(self, panel, row_lse, col_lse, first_row, inv_n):
        def work(r):
            _np_grad(panel[r[0]:r[1]], row_lse[r[0]:r[1]], col_lse, first_row + r[0], inv_n)
        list(self.pool.map(work, self._split(len(panel))))


# Two exponents whose difference is at most SHARED_EXP_SPREAD can share one exp():
# exp(x - c) = exp(x - c') * exp(c' - c), the second factor a normal float32.  What
# the shared exp() then flushes to zero is below e^-87 / e^-40 = e^-47 of the
# largest term it is added to: far under float32's resolution, so nothing changes.
# Tiles that do not qualify take two exp() calls; either way the result is exact.
SHARED_EXP_SPREAD = 40.0


def _np_stats(rows):
    """:meth:`_NumPyKernels.stats` for one worker's rows, tile by tile."""
    n = rows.shape[1]
    tmp = np.empty((min(ROWS_PER_TILE, len(rows)), n), dtype=rows.dtype)  # the one scratch tile
    row_lse = np.empty(len(rows), dtype=rows.dtype)
    col_max = col_sum = None
    for a in range(0, len(rows), ROWS_PER_TILE):
        tile = rows[a:a + ROWS_PER_TILE]
        t = tmp[:len(tile)]
        m = np.max(tile, axis=1, keepdims=True)  # (b, 1)
        np.exp(np.subtract(tile, m, out=t), out=t)  # exp(S_ij - m_i)
        row_lse[a:a + len(tile)] = m[:, 0] + np.log(np.sum(t, axis=1))
        cm = np.max(tile, axis=0)  # (N,)
        top = np.max(m)
        if top - np.min(cm) <= SHARED_EXP_SPREAD:  # exp(S_ij - top) = t_ij exp(m_i - top)
            cm = np.full(n, top, dtype=rows.dtype)
            s = np.exp(m[:, 0] - top) @ t  # (N,) all column sums in one product
        else:
            s = np.sum(np.exp(np.subtract(tile, cm, out=t), out=t), axis=0)
        col_max, col_sum = _merge_columns(np, col_max, col_sum, cm, s)
    return row_lse, col_max, col_sum


def _np_grad(rows, row_lse, col_lse, first_row, inv_n):
    """:meth:`_NumPyKernels.grad` for one worker's rows, tile by tile, in place."""
    tmp = np.empty((min(ROWS_PER_TILE, len(rows)), rows.shape[1]), dtype=rows.dtype)
    half = rows.dtype.type(inv_n / 2)
    for a in range(0, len(rows), ROWS_PER_TILE):
        tile = rows[a:a + ROWS_PER_TILE]
        t = tmp[:len(tile)]
        lr = row_lse[a:a + len(tile), None]  # (b, 1)
        if max(np.max(lr) - np.min(col_lse), np.max(col_lse) - np.min(lr)) <= SHARED_EXP_SPREAD:
            # exp(S - lc) = exp(S - lr) * exp(lr - lc), and exp(lr_i - lc_j) = u_i v_j
            top = np.max(lr)
            u, v = np.exp(lr[:, 0] - top), np.exp(top - col_lse)  # (b,), (N,)
            np.exp(np.subtract(tile, lr, out=tile), out=tile)  # softmax by rows
            np.multiply.outer(half * u, v, out=t)  # (b, N)
            t += half
            tile *= t  # (softmax by rows) * (1 + u v^T) / 2N
        else:
            np.exp(np.subtract(tile, lr, out=t), out=t)
            np.exp(np.subtract(tile, col_lse, out=tile), out=tile)
            tile += t  # (b, N) softmax by rows + softmax by columns
            tile *= half
        i = np.arange(len(tile))
        tile[i, first_row + a + i] -= inv_n  # the one-hot targets of both directions


@cache
def _numpy_kernels():
    return _NumPyKernels()


def _kernels_for(xp):
    if xp.__name__ in ("numpy", "array_api_compat.numpy"):
        return _numpy_kernels()
    if xp.__name__ in ("cupy", "array_api_compat.cupy"):
        from numclip import _cupy_kernels
        return _cupy_kernels.kernels()
    return _ArrayAPIKernels(xp)
