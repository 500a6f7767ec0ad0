"""How many BLAS threads a block of matrix products should use.

OpenBLAS splits every matrix product among its threads (one per core by
default), and after each product keeps them spinning for a while, waiting
for the next one. One product of the tiny CLIP's size, 12.6 million
multiply-adds, still runs faster on two threads than on one. A training
loop of them does not: between products come the elementwise passes
(normalisation, softmax, the optimizer), Python, and the threads' hand-offs,
and the spinning thread holds the core those need. On a 2-core machine the
default ``numclip train`` took 2x the wall time and 3.7x the CPU time with
two BLAS threads than with one, and 4.8x the wall time beside another busy
program (``benchmarks/blas_threads.py`` measures both, and where one
product alone turns over).

:func:`blas_threads_for` limits the threads for one block of code and puts
them back afterwards, with threadpoolctl (what scikit-learn uses for this),
so a user's own large products keep every thread.
"""

from __future__ import annotations

import contextlib
import numbers

__all__ = ["SMALL_PRODUCT", "blas_threads_for"]

# Multiply-adds in a block's largest product below which the block runs on one BLAS
# thread: an (m, k) @ (k, n) product has m*k*n of them. The tiny CLIP's largest training
# product, (256, 768) @ (768, 64), has 12.6 million, and a loop of them is twice as fast
# on one thread; so is the transformer CLIP's step, whose largest product, its MLP over
# 256 x 17 image tokens, has 71 million (0.3 s a step on one thread, 0.65 s on two,
# benchmarks/encoders.py). A dense 8192-pair loss at d = 512 has 34 billion per product
# and wants every thread. The threshold sits between, with room for the CLI's largest
# settings (--batch-size 8192 --embed-dim 1024: 6.4 billion) to keep their threads.
SMALL_PRODUCT = 2**28  # ~268 million


@contextlib.contextmanager
def blas_threads_for(multiply_adds: int):
    """Run the ``with`` block on one BLAS thread if its products are small.

    Args:
        multiply_adds: the size ``m * k * n`` of the largest matrix product the
            block computes. Below :data:`SMALL_PRODUCT`, BLAS is limited to one
            thread inside the block; otherwise nothing changes.

    Example::

        with blas_threads_for(batch_size * num_pixels * embed_dim):
            for batch in batches:
                ...
    """
    if isinstance(multiply_adds, bool) or not isinstance(multiply_adds, numbers.Integral):
        raise TypeError("multiply_adds must be an integer (m * k * n of the largest product), "
                        f"got {type(multiply_adds).__name__}")
    if multiply_adds < 0:
        raise ValueError(f"multiply_adds must be non-negative, got {multiply_adds}")
    if multiply_adds >= SMALL_PRODUCT:
        yield
        return
    from threadpoolctl import threadpool_limits  # imported here: `import numclip` stays fast

    with threadpool_limits(limits=1, user_api="blas"):
        yield
