"""The symmetric CLIP loss in a few fused passes: dense, or blockwise for huge batches.

``losses.clip_loss_reference`` composes the core functions one by one, which
reads like the derivation but walks over the N x N logit matrix some twenty
times.  Here the same loss and gradients take the three N x N x d matrix
products any exact method needs, plus two passes over the logits:

1. sums: ``E = exp(S - c)``, with one constant shift ``c`` fixed in advance
   from a bound on ``|S|``, and the off-diagonal sums of every row
   (image -> text) and every column (text -> image) of ``E``; the panel that
   pass 2 starts with keeps ``E`` in place of its logits;
2. gradient: ``e^s G_ij = E_ij (a_i + b_j)`` with ``a = e^s / (2N rowsum)``
   and ``b = e^s / (2N colsum)``, the diagonal from the off-diagonal mass,
   written over ``E`` in place; then ``dI = (e^s G) T`` and ``dT = (e^s G)^T I``.

One shift for the whole matrix means one ``exp`` per logit serves both
softmaxes, and no pass has to look for maxima.  Where the shift cannot be
trusted (a row or column whose every logit is far below the bound: its sum
would lose digits to underflow), the loss is computed again the robust way,
with per-row and per-column maxima merged as in online softmax.

``block_size=B`` never holds the N x N matrix: it computes the logits one
panel of B rows at a time, twice (once per pass, except the panel that stays
in memory between the passes), the approach of Inf-CL
("Breaking the Memory Barrier", Cheng et al., 2024).  Derivation:
``docs/derivations.md#the-blockwise-loss``.
"""

from __future__ import annotations

import math
import os
from functools import cache, wraps

import numpy as np

from numclip.backend import array_namespace, as_embedding_pair, as_number, as_tile_size

__all__ = ["clip_loss_logits_grads"]

ROWS_PER_TILE = 16  # a 16 x 8192 float32 tile is 512 KiB: with its scratch it fits a 1 MiB L2
ROBUST_PANEL_ROWS = 1024  # panel height of the robust path, which holds a few (B, N) temporaries


def clip_loss_logits_grads(image_embeds, text_embeds, scale, block_size=None):
    """Loss and gradients of the symmetric CLIP loss for embeddings used as given.

    :func:`numclip.clip_loss` calls this after normalizing; it checks its arguments
    the way ``clip_loss`` does, so it can be called directly too.

    Args:
        image_embeds, text_embeds: ``(N, D)`` embeddings (normalized by the caller,
            if wanted), float32 or float64, finite, one dtype and one array library.
        scale: ``exp(logit_scale)``, a finite real number ``>= 0`` (an int or NumPy
            scalar is taken as a Python float; 0 is what ``exp`` gives for a
            ``logit_scale`` below -745, and makes every logit 0).
        block_size: rows per panel, a positive int; ``None`` holds the whole
            ``(N, N)`` matrix.

    Returns:
        loss: the mean over both directions, a Python float.
        dimage: ``(N, D)`` gradient with respect to ``image_embeds``, in their dtype.
        dtext: ``(N, D)`` gradient with respect to ``text_embeds``, in their dtype.
        dlogit_scale: gradient with respect to ``logit_scale = log(scale)``, a Python float.

    Raises:
        TypeError, ValueError: as :func:`numclip.clip_loss` for the embeddings and
            ``block_size``; ``scale`` not a finite number ``>= 0``; a loss beyond
            the dtype's range.
    """
    image, text = as_embedding_pair(image_embeds, text_embeds)
    scale = as_number(scale, "scale")
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale = exp(logit_scale) must be finite and >= 0, got {scale}")
    block_size = as_tile_size(block_size, "block_size")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
        loss, dimage, dtext, dscale = _clip_loss_logits_grads(image, text, scale, block_size)
    top = float(array_namespace(image).finfo(image.dtype).max)  # loss is a float64 number
    if not (abs(loss) <= top and abs(dscale) <= top):  # NaN fails too; dscale sums I_i . dI_i
        raise ValueError(f"the loss overflows {image.dtype}: the logits scale * image_embeds "
                         "@ text_embeds.T (scale = exp(logit_scale)), or the loss they give, "
                         "leave its range; normalize the embeddings, lower the scale "
                         "(logit_scale), or compute in float64")
    return loss, dimage, dtext, dscale


def _clip_loss_logits_grads(image, text, scale, block_size):
    """The two passes of the module docstring, on arguments :func:`clip_loss_logits_grads`
    has checked."""
    xp = array_namespace(image, text)
    kernels = _kernels_for(xp)
    n, dtype = image.shape[0], image.dtype
    shift = _exp_shift(xp, image, text, scale)
    scaled = image * scale  # (N, D) folds the scale into one operand of every product
    rows = min(block_size or n, n)
    panels = _panels(n, rows)
    buffer = xp.empty((rows, n), dtype=dtype)  # (B, N) the one panel held; dense: all of S
    row_off = xp.zeros(n, dtype=dtype)  # (N,) sum_{j != i} E_ij
    col_off = xp.zeros(n, dtype=dtype)  # (N,) sum_{i != j} E_ij
    diag = xp.zeros(n, dtype=dtype)  # (N,) E_ii, the matching pairs
    for a, b in panels:  # pass 1: sums
        panel = kernels.matmul(scaled[a:b, ...], text.T, buffer)  # (B, N) logits
        # the last panel keeps E in the buffer, and pass 2 starts with it
        row_off[a:b], col_part, diag[a:b] = kernels.exp_sums(panel, shift, a, keep=b == n)
        col_off += col_part
    row_off, col_off, diag = (xp.astype(v, xp.float64) for v in (row_off, col_off, diag))
    row_sum, col_sum = row_off + diag, col_off + diag  # (N,) float64 from here on
    if not _sums_are_exact(xp, row_sum, col_sum, dtype):
        del buffer, panel  # the robust path needs the memory
        return _robust_loss_grads(xp, image, text, scaled, scale, block_size)
    loss = xp.sum(_pair_losses(xp, row_off, col_off, diag, dtype, scaled, text, shift))
    loss = loss / (2 * n)
    # G_ij = (E_ij / rowsum_i + E_ij / colsum_j) / 2N off the diagonal; on it the same
    # minus 1/N, which is -(the off-diagonal shares of both softmaxes) / 2N: no
    # cancellation.  Each carries the factor e^s of dS = e^s dI T^T, so the products
    # below need no scaling pass.
    row_scale = xp.astype(scale / (2 * n * row_sum), dtype)  # (N,)
    col_scale = xp.astype(scale / (2 * n * col_sum), dtype)  # (N,)
    diag_grad = xp.astype(-scale * (row_off / row_sum + col_off / col_sum) / (2 * n), dtype)
    dimage, dtext = xp.empty_like(image), xp.zeros_like(text)
    for a, b in reversed(panels):  # pass 2: gradients, from the panel still held
        if b == n:
            panel, logits_shift = buffer[:b - a, ...], None  # holds E
        else:
            panel, logits_shift = kernels.matmul(scaled[a:b, ...], text.T, buffer), shift
        kernels.grad(panel, row_scale[a:b], col_scale, diag_grad[a:b], a, shift=logits_shift)
        kernels.matmul(panel, text, dimage[a:b, ...])  # (B, D) = (B, N)(N, D)
        kernels.add_product(dtext, panel, image[a:b, ...])  # (N, D) += (N, B)(B, D)
    dlogit_scale = xp.sum(xp.vecdot(image, dimage))  # sum G * S = sum_i I_i . dI_i: no N x N pass
    return float(loss), dimage, dtext, float(dlogit_scale)


def _exp_shift(xp, image, text, scale):
    """The shift ``c`` of ``E = exp(S - c)``: as small as it can be without overflow.

    Every logit obeys ``|S_ij| <= bound = scale max_i |I_i| max_j |T_j|``.  With
    ``S - c <= headroom`` no row or column sum of ``E`` (at most ``N e^headroom``)
    overflows, and ``1 / (2N sum)`` stays a normal float.  The shift is 0 when the
    bound allows (unit embeddings: ``scale`` up to 67 in float32 at N = 8192), so
    ``exp`` sees the logits exactly as the product made them.
    """
    n, finfo = image.shape[0], xp.finfo(image.dtype)
    bound = scale * _max_norm(xp, image) * _max_norm(xp, text)
    headroom = -math.log(finfo.smallest_normal) - math.log(2.0 * n * n) - 1.0  # 1: rounding
    return max(0.0, bound - headroom)


def _max_norm(xp, x):
    """``max_i |x_i|`` as a Python float, also where ``x_i . x_i`` overflows the dtype.

    Only unnormalized embeddings of norm beyond ``sqrt(max)`` (1.8e19 in float32)
    take the second way: divide by the largest ``|x_ik|`` before squaring.
    """
    with np.errstate(over="ignore"):
        squares = float(xp.max(xp.vecdot(x, x)))
    if math.isfinite(squares):
        return math.sqrt(squares)
    m = float(xp.max(xp.abs(x)))  # > 0: the squares overflowed
    u = x / m  # largest entry +-1
    return m * math.sqrt(float(xp.max(xp.vecdot(u, u))))  # a float64 product: 1e308 is far


def _sums_are_exact(xp, row_sum, col_sum, dtype):
    """Whether underflow in ``E`` changed no probability by more than ``eps**2``.

    An entry of ``E`` that underflows loses less than ``smallest_normal``; a sum
    of at least ``smallest_normal / eps**2`` turns that into less than ``eps**2``
    of any probability.  A row whose every logit lies far below the shift fails
    this (at scale 100 in float32: every cosine of the row below -0.23).
    """
    finfo = xp.finfo(dtype)
    least = float(finfo.smallest_normal) / float(finfo.eps) ** 2
    return bool(xp.all(row_sum >= least)) and bool(xp.all(col_sum >= least))


def _pair_losses(xp, row_off, col_off, diag, dtype, scaled, text, shift):
    """``-log p_ii - log q_ii`` per pair, float64, from the off-diagonal sums.

    ``-log p_ii = log(1 + row_off_i / E_ii)``: taken from the off-diagonal mass
    with ``log1p``, a small loss keeps its digits however small it is (``log`` of
    a sum rounded near 1 would not), and is never negative.  A diagonal entry so
    small that it lost digits itself (a loss above about 30) is taken as
    ``log rowsum + c - S_ii``.
    """
    normal = diag >= float(xp.finfo(dtype).smallest_normal)
    e = xp.where(normal, diag, xp.ones_like(diag))  # (N,) E_ii where it is used

    def minus_log_share(off):  # -log(e / (e + off))
        small = off <= e  # a loss below log 2: log1p(off / e); above, a plain difference
        return xp.where(small, xp.log1p(off / xp.maximum(e, off)), xp.log(e + off) - xp.log(e))

    losses = minus_log_share(row_off) + minus_log_share(col_off)  # (N,)
    if bool(xp.all(normal)):
        return losses
    logit = xp.astype(xp.vecdot(scaled, text), xp.float64) - shift  # (N,) S_ii - c
    far = xp.log(row_off + diag) + xp.log(col_off + diag) - 2 * logit
    return xp.where(normal, losses, far)


def _panels(n, rows):
    """``(start, stop)`` of consecutive slices of ``rows`` rows covering ``range(n)``."""
    return [(a, min(a + rows, n)) for a in range(0, n, rows)]


def _diagonal(xp, panel, first_row):
    """Entries ``panel[i, first_row + i]``: the matching pairs among the panel's rows."""
    b, n = panel.shape
    flat = first_row + (n + 1) * xp.arange(b)  # row-major positions of those entries
    return xp.take(xp.reshape(panel, (b * n,)), flat)


def _on_diagonal(xp, shape, first_row):
    """``(B, N)`` booleans, True where column == first_row + row."""
    b, n = shape
    return xp.reshape(xp.arange(first_row, first_row + b), (b, 1)) == xp.arange(n)


# ----------------------------------------------------------------------------- robust path
# The loss with a shift per row and per column: every softmax shifted by its own
# maximum, column statistics merged across panels as online softmax merges them.
# Exact for any logits; the fixed shift above covers all but pathological batches.

def _robust_loss_grads(xp, image, text, scaled, scale, block_size):
    n = image.shape[0]
    panels = _panels(n, block_size or min(n, ROBUST_PANEL_ROWS))
    row_lse = xp.zeros(n, dtype=image.dtype)  # (N,)
    diagonal = xp.zeros(n, dtype=image.dtype)  # (N,) logits of the matching pairs
    col_max = col_sum = None  # (N,) running statistics of the columns
    for a, b in panels:  # pass 1: statistics
        panel = scaled[a:b, ...] @ text.T  # (B, N)
        m = xp.max(panel, axis=1, keepdims=True)  # (B, 1)
        row_lse[a:b] = m[:, 0] + xp.log(xp.sum(xp.exp(panel - m), axis=1))
        panel_max = xp.max(panel, axis=0)  # (N,)
        col_max, col_sum = _merge_columns(
            xp, col_max, col_sum, panel_max, xp.sum(xp.exp(panel - panel_max), axis=0))
        diagonal[a:b] = _diagonal(xp, panel, a)  # from the logits themselves: lse >= S_ii exactly
    col_lse = col_max + xp.log(col_sum)  # (N,)
    row64, col64, diag64 = (xp.astype(v, xp.float64) for v in (row_lse, col_lse, diagonal))
    per_pair = (row64 - diag64) + (col64 - diag64)  # float64: up to 4 e^s, beyond float32
    loss = xp.sum(per_pair) / (2 * n)
    dimage, dtext = xp.zeros_like(image), xp.zeros_like(text)
    for a, b in panels:  # pass 2: gradients
        panel = scaled[a:b, ...] @ text.T  # (B, N) recomputed
        g = (xp.exp(panel - row_lse[a:b, None]) + xp.exp(panel - col_lse)) * (1 / (2 * n))
        g = g - xp.astype(_on_diagonal(xp, g.shape, a), g.dtype) * (1 / n)  # (B, N)
        dimage[a:b, ...] = scale * (g @ text)  # (B, D)
        dtext += g.T @ scaled[a:b, ...]  # (N, D)
    return float(loss), dimage, dtext, float(xp.sum(xp.vecdot(image, dimage)))


def _merge_columns(xp, col_max, col_sum, m, s):
    """Online log-sum-exp: fold one panel's column max ``m`` and sum ``s`` into the totals."""
    if col_max is None:
        return m, s
    new_max = xp.maximum(col_max, m)
    return new_max, col_sum * xp.exp(col_max - new_max) + s * xp.exp(m - new_max)


# ----------------------------------------------------------------------------- kernels
# Each backend supplies two functions over a panel of B rows of the logits:
#   exp_sums(panel, shift, first_row, keep) -> (row_off (B,), col_off (N,), diag (B,)):
#       sums of E = exp(panel - shift) along rows and along columns, leaving out
#       the diagonal entries (column == first_row + row), which come back as diag.
#       keep=True leaves E in the panel; keep=False may leave anything there.
#   grad(panel, row_scale, col_scale, diag_grad, first_row, shift=None):
#       panel <- E_ij (row_scale_i + col_scale_j), with diag_grad on the
#       diagonal, in place.  The panel holds E, or the logits S when shift is given.
#   matmul(x, y, out) -> x @ y written into out's first rows, and returned:
#       no fresh memory per panel where the backend can write into existing arrays.
#   add_product(out, panel, rows): out += panel^T rows, (N, D) += (N, B)(B, D).


class _ArrayAPIKernels:
    """Plain array-API operations: any backend, a few temporaries per panel."""

    def __init__(self, xp):
        self.xp = xp

    def exp_sums(self, panel, shift, first_row, keep):
        xp = self.xp
        e = xp.exp(panel - shift)  # (B, N)
        if keep:
            panel[...] = e
        off = xp.where(_on_diagonal(xp, panel.shape, first_row), xp.zeros_like(e), e)
        return xp.sum(off, axis=1), xp.sum(off, axis=0), _diagonal(xp, e, first_row)

    def grad(self, panel, row_scale, col_scale, diag_grad, first_row, shift=None):
        xp = self.xp
        e = panel if shift is None else xp.exp(panel - shift)
        g = e * (row_scale[:, None] + col_scale)  # (B, N)
        panel[...] = xp.where(_on_diagonal(xp, panel.shape, first_row), diag_grad[:, None], g)

    def matmul(self, x, y, out):
        out = out[:x.shape[0], ...]
        out[...] = x @ y  # the array API has no out=: a temporary, then a copy
        return out

    def add_product(self, out, panel, rows):
        out += panel.T @ rows


class _NumPyKernels:
    """NumPy, in place and in cache-sized tiles spread over the CPU cores.

    NumPy's ufuncs release the GIL, so plain threads run tiles in parallel.
    Each tile is read from memory once per pass and worked on in cache.
    """

    def __init__(self):
        # scipy.linalg takes two thirds of `import numclip`, and the thread pool brings
        # logging: load them with the first loss
        from concurrent.futures import ThreadPoolExecutor

        from scipy.linalg.blas import get_blas_funcs

        self.get_blas_funcs = get_blas_funcs
        self.workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(max_workers=self.workers)

    def _split(self, rows):
        return _panels(rows, math.ceil(rows / self.workers))

    def exp_sums(self, panel, shift, first_row, keep):
        parts = list(self.pool.map(
            lambda r: _np_exp_sums(panel[r[0]:r[1]], shift, first_row + r[0], keep),
            self._split(len(panel))))
        return (np.concatenate([p[0] for p in parts]), sum(p[1] for p in parts),
                np.concatenate([p[2] for p in parts]))

    def grad(self, panel, row_scale, col_scale, diag_grad, first_row, shift=None):
        def work(r):
            _np_grad(panel[r[0]:r[1]], row_scale[r[0]:r[1]], col_scale, diag_grad[r[0]:r[1]],
                     first_row + r[0], shift)
        list(self.pool.map(work, self._split(len(panel))))

    def matmul(self, x, y, out):
        return np.matmul(x, y, out=out[:x.shape[0]])

    def add_product(self, out, panel, rows):
        # BLAS's gemm adds into ``out`` itself (beta = 1); ``out += panel.T @ rows``
        # would write an (N, D) temporary and read it back for every panel.
        # In BLAS's column-major terms out^T (D, N) += rows^T (D, B) @ panel (B, N).
        if not out.flags.c_contiguous:  # out.T would be copied, and the sum lost
            out += panel.T @ rows
            return
        gemm = self.get_blas_funcs("gemm", (out, panel, rows))
        gemm(1.0, rows.T, panel.T, beta=1.0, c=out.T, trans_b=1, overwrite_c=1)


# Worker threads do not inherit the caller's np.errstate, so each worker function sets
# its own: logits beyond the dtype's range make the loss non-finite, and the callers
# refuse that with a ValueError instead of printing NumPy's warnings first.
# (A fresh errstate per call: one shared instance is not thread-safe before NumPy 2.)
def _quiet(work):
    @wraps(work)
    def quiet_work(*args):
        with np.errstate(over="ignore", invalid="ignore"):
            return work(*args)
    return quiet_work


@_quiet
def _np_exp_sums(rows, shift, first_row, keep):
    """:meth:`_NumPyKernels.exp_sums` for one worker's rows, tile by tile."""
    b, n = rows.shape
    row_off, diag = np.empty(b, dtype=rows.dtype), np.empty(b, dtype=rows.dtype)
    col_off = np.zeros(n, dtype=rows.dtype)
    # without keep, E goes to a scratch tile that stays in cache: no write to memory
    scratch = None if keep else np.empty((min(ROWS_PER_TILE, b), n), dtype=rows.dtype)
    for a in range(0, b, ROWS_PER_TILE):
        tile = rows[a:a + ROWS_PER_TILE]
        k = len(tile)
        tile = _exp_shifted(tile, shift, out=tile if keep else scratch[:k])
        i = np.arange(k)
        on_diag = (i, first_row + a + i)
        diag[a:a + k] = tile[on_diag]
        tile[on_diag] = 0
        np.einsum("ij->i", tile, out=row_off[a:a + k])  # einsum: faster than np.sum by rows
        col_off += np.add.reduce(tile, axis=0)  # not BLAS: its threads would fight ours
        tile[on_diag] = diag[a:a + k]
    return row_off, col_off, diag


@_quiet
def _np_grad(rows, row_scale, col_scale, diag_grad, first_row, shift):
    """:meth:`_NumPyKernels.grad` for one worker's rows, tile by tile, in place."""
    tmp = np.empty((min(ROWS_PER_TILE, len(rows)), rows.shape[1]), dtype=rows.dtype)
    for a in range(0, len(rows), ROWS_PER_TILE):
        tile = rows[a:a + ROWS_PER_TILE]
        k = len(tile)
        if shift is not None:
            _exp_shifted(tile, shift, out=tile)
        tile *= np.add.outer(row_scale[a:a + k], col_scale, out=tmp[:k])
        i = np.arange(k)
        tile[i, first_row + a + i] = diag_grad[a:a + k]


def _exp_shifted(tile, shift, out):
    """``exp(tile - shift)`` written into ``out``; a shift of 0 costs no subtraction."""
    if shift:
        tile = np.subtract(tile, shift, out=out)
    return np.exp(tile, out=out)


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
