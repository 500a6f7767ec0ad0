"""How many BLAS threads a block of matrix products should use.

OpenBLAS splits every matrix product among its threads (one per core by
default) and then keeps them spinning for a while, waiting for the next one.
That pays for a large product. For the tiny CLIP's products, a few million
multiply-adds each, the split costs more than it saves, and the spinning
threads take the cores that the elementwise work between products needs: on
a 2-core machine the default ``numclip train`` ran 2.4x slower with two BLAS
threads than with one, and 8-11x slower when another program was busy
(``benchmarks/blas_threads.py`` measures it).

:func:`blas_threads_for` limits the threads for one block of code and puts
them back afterwards, with threadpoolctl (what scikit-learn uses for this),
so a user's own large products keep every thread.
"""

from __future__ import annotations

import contextlib
import numbers

__all__ = ["SMALL_PRODUCT", "blas_threads_for"]

# Multiply-adds in a product below which one BLAS thread is faster than several: an
# (m, k) @ (k, n) product has m*k*n of them. The tiny CLIP's largest training product,
# (768, 256) @ (256, 64), has 12.6 million; a dense 8192-pair loss at d = 512 has 34
# billion. benchmarks/blas_threads.py prints where two threads start to win on a machine.
SMALL_PRODUCT = 2**26  # ~67 million


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
