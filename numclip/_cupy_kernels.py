"""CuPy kernels for :mod:`numclip.fused`: each pass over the logits is one GPU kernel.

A straightforward CuPy port launches a kernel per operation and allocates a
temporary per result (``panel - c``, ``exp(...)``, ``where(...)``, ...), so the
N x N logits cross the memory bus many times.  Here ``exp`` and the masking of
the diagonal are one elementwise kernel that overwrites the logits, the two
sums are plain reductions, and the whole gradient is one more elementwise kernel.
"""

from __future__ import annotations

from functools import cache

import cupy as cp

# E = exp(S - c) over the logits, with the diagonal (column == first + row) set to 0
# for the sums; i (reserved by CuPy) is the flat position in the (B, width) panel
_exp_off_diagonal = cp.ElementwiseKernel(
    "T s, T shift, int64 first, int64 width", "T e",
    "e = (i % width == first + i / width) ? (T)0 : exp(s - shift)", "numclip_exp_off_diagonal")

# G_ij = E_ij (a_i + b_j), E read as is or computed from the logits
_grad = cp.ElementwiseKernel(
    "T v, T shift, bool from_logits, T row_scale, T col_scale", "T g",
    "g = (from_logits ? exp(v - shift) : v) * (row_scale + col_scale)", "numclip_clip_grad")


class _CuPyKernels:
    def exp_sums(self, panel, shift, first_row, keep):  # leaves E in the panel either way
        b, n = panel.shape
        i = cp.arange(b)
        diag = cp.exp(panel[i, first_row + i] - panel.dtype.type(shift))  # (B,) same exp as below
        _exp_off_diagonal(panel, panel.dtype.type(shift), first_row, n, panel)  # in place
        row_off, col_off = cp.sum(panel, axis=1), cp.sum(panel, axis=0)
        panel[i, first_row + i] = diag
        return row_off, col_off, diag

    def grad(self, panel, row_scale, col_scale, diag_grad, first_row, shift=None):
        _grad(panel, panel.dtype.type(shift or 0.0), shift is not None,
              row_scale[:, None], col_scale[None, :], panel)  # in place
        i = cp.arange(panel.shape[0])
        panel[i, first_row + i] = diag_grad

    def matmul(self, x, y, out):
        return cp.matmul(x, y, out=out[:x.shape[0]])

    def add_product(self, out, panel, rows):
        out += panel.T @ rows


@cache
def kernels():
    return _CuPyKernels()
