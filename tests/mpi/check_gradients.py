"""Distributed gradients equal single-process gradients on the same global batch.

Run under MPI (``-m mpi4py`` turns an exception on one rank into an abort of all):

    mpiexec -n 2 python -m mpi4py tests/mpi/check_gradients.py

Every rank draws the same global batch from one seed, keeps its shard
(:func:`numclip.distributed.shard_rows`) and compares what the distributed code
returns with the single-process result on the whole batch.  ``check`` takes any
communicator, so ``tests/test_distributed.py`` also runs it on threads.
"""

import numpy as np

import numclip
from numclip import distributed as dist
from numclip.model import TinyCLIP

# Relative to the largest entry of each result. Every value here comes through at most
# four rounded stages (normalize, the logit products, exp and the row/column sums, the
# gradient products), each a sum of n <= 12 terms whose error is at most n * u of the sum
# of the terms' magnitudes (Higham, Accuracy and Stability, section 3.1): u = 2^-53 or
# 2^-24. With unit-scale random data those sums are within a few times the largest entry,
# so 4 * 12 * u * (a factor 8 for that) gives 2e-14 (float64) and 1.1e-5 (float32);
# the tolerances round up, and hold whatever order a CPU's BLAS kernel sums in.
RTOL = {"float64": 1e-12, "float32": 2e-5}


def assert_close(actual, expected, dtype, what):
    """Equal up to ``RTOL[dtype]`` of the largest entry of ``expected``."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, np.float64)
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               err_msg=f"{what} ({dtype}) differs from the single-process value")


def assert_same_on_every_rank(value, comm, what):
    """Bit for bit the same array on every rank (so the optimizer steps cannot drift)."""
    row = np.reshape(np.asarray(value, dtype=np.float64), (1, -1))
    every = dist.gather_rows(row, comm)  # (R, k)
    assert np.array_equal(every, np.broadcast_to(every[:1], every.shape)), \
        f"{what} differs between ranks"


def check_clip_loss(comm, dtype, *, normalize=True, n_local=3, width=5):
    size = comm.Get_size()
    rng = np.random.default_rng(0)
    image = rng.standard_normal((size * n_local, width)).astype(dtype)  # (N, D) global batch
    text = rng.standard_normal((size * n_local, width)).astype(dtype)  # (N, D)
    scale = np.asarray(2.3, dtype=dtype)
    want_loss, want = numclip.clip_loss(image, text, scale, normalize=normalize)
    loss, got = dist.local_clip_loss(dist.shard_rows(image, comm), dist.shard_rows(text, comm),
                                     scale, comm, normalize=normalize)
    assert_close(loss, want_loss, dtype, "loss")
    for key in ("image_embeds", "text_embeds"):
        assert_close(got[key], dist.shard_rows(want[key], comm), dtype, f"d{key}")
    assert_close(got["logit_scale"], want["logit_scale"], dtype, "dlogit_scale")
    assert got["image_embeds"].dtype == image.dtype and got["logit_scale"].dtype == scale.dtype
    assert_same_on_every_rank(loss, comm, "loss")
    assert_same_on_every_rank(got["logit_scale"], comm, "dlogit_scale")


def check_tiny_clip(comm, dtype, *, n_local=4):
    size = comm.Get_size()
    rng = np.random.default_rng(1)
    model = TinyCLIP.create(7, 4, 5, seed=0, dtype=np.dtype(dtype))
    pixels = rng.standard_normal((size * n_local, 7)).astype(dtype)  # (B, P)
    tokens = rng.random((size * n_local, 4)).astype(dtype)  # (B, V)
    want_loss, want = model.loss_and_grads(pixels, tokens)
    loss, got = dist.distributed_loss_and_grads(model, dist.shard_rows(pixels, comm),
                                                dist.shard_rows(tokens, comm), comm)
    assert list(got) == list(want)
    assert_close(loss, want_loss, dtype, "TinyCLIP loss")
    for key in want:
        assert_close(got[key], want[key], dtype, f"TinyCLIP d{key}")
        assert_same_on_every_rank(got[key], comm, f"TinyCLIP d{key}")


def check(comm):
    for dtype in ("float64", "float32"):
        check_clip_loss(comm, dtype)
        check_clip_loss(comm, dtype, normalize=False)
        check_tiny_clip(comm, dtype)


if __name__ == "__main__":
    world = dist.world()
    check(world)
    print(f"rank {world.Get_rank()} of {world.Get_size()}: gradients OK", flush=True)
