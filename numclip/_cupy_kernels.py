"""CuPy kernels for :mod:`numclip.fused`: each pass over the logits is one GPU kernel.

A straightforward CuPy port launches a kernel per operation and allocates a
temporary per result (``panel - m``, ``exp(...)``, ...), so the N x N logits
cross the memory bus many times.  These kernels fuse each step: ``exp`` and
the sum in one reduction, the whole gradient in one elementwise kernel that
overwrites the logits.
"""

from __future__ import annotations

from functools import cache

import cupy as cp

# sum_j exp(s_ij - m): broadcasting m along rows or columns picks the direction
_expsum = cp.ReductionKernel(
    "T s, T m", "T out", "exp(s - m)", "a + b", "out = a", "0", "numclip_expsum")

# G = (exp(S - lse_row) + exp(S - lse_col)) * inv_n / 2, written over S
_grad = cp.ElementwiseKernel(
    "T s, T row_lse, T col_lse, T half_inv_n", "T g",
    "g = (exp(s - row_lse) + exp(s - col_lse)) * half_inv_n", "numclip_clip_grad")


class _CuPyKernels:
    def stats(self, panel):
        m = cp.max(panel, axis=1)  # (B,)
        row_lse = m + cp.log(_expsum(panel, m[:, None], axis=1))
        col_max = cp.max(panel, axis=0)  # (N,)
        col_sum = _expsum(panel, col_max[None, :], axis=0)
        return row_lse, col_max, col_sum

    def grad(self, panel, row_lse, col_lse, first_row, inv_n):
        half = panel.dtype.type(inv_n / 2)
        _grad(panel, row_lse[:, None], col_lse[None, :], half, panel)  # in place
        i = cp.arange(panel.shape[0])
        panel[i, first_row + i] -= panel.dtype.type(inv_n)  # the targets of both directions


@cache
def kernels():
    return _CuPyKernels()
