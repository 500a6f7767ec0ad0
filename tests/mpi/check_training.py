"""A short distributed run ends with the parameters of the single-process run.

Run under MPI (``-m mpi4py`` turns an exception on one rank into an abort of all):

    mpiexec -n 2 python -m mpi4py tests/mpi/check_training.py

Every rank makes the same data and the same shuffles, takes its shard of each
global batch, and steps AdamW with the all-reduced gradients; the result is
compared with the same loop run on whole batches in one process.  ``check``
takes any communicator, so ``tests/test_distributed.py`` also runs it on threads.
"""

import numpy as np

from numclip import distributed as dist
from numclip.data import make_dataset
from numclip.model import TinyCLIP
from numclip.optim import AdamW
from numclip.text import Vocabulary

# Tolerance relative to the largest parameter.  Summing X^T G in two halves rounds
# differently from one sum; Adam divides each step by sqrt(v), so a coordinate whose
# gradient is almost zero turns that rounding into a visible change of its step.
# Measured under mpiexec -n 2: 1.2e-12 (float64) and 8.5e-5 (float32), both at one
# such coordinate of image_proj; every other coordinate agrees 100 times more closely.
TOL = {"float64": 1e-10, "float32": 1e-3}


def train_steps(comm, dtype, *, epochs=2, batch_size=24, train_size=96, seed=0):
    """The loop of ``numclip.train.train``, cut down; ``comm=None`` is one process."""
    data = make_dataset(train_size, seed=seed, compositions="seen")
    vocab = Vocabulary.build(data.captions)
    pixels = data.pixels().astype(dtype)  # (n, P)
    tokens = vocab.features(data.captions).astype(dtype)  # (n, V)
    model = TinyCLIP.create(pixels.shape[1], len(vocab), 8, seed=seed, dtype=np.dtype(dtype))
    optimizer = AdamW(lr=3e-3, weight_decay=1e-4)
    losses = []
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(train_size)
        for start in range(0, train_size - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]  # the global batch, the same on every rank
            if comm is None:
                loss, grads = model.loss_and_grads(pixels[idx], tokens[idx])
            else:
                mine = dist.shard_rows(idx, comm)  # this rank's B / R pairs
                loss, grads = dist.distributed_loss_and_grads(model, pixels[mine], tokens[mine],
                                                              comm)
            optimizer.step(model.params, grads)
            losses.append(float(loss))
    return model.params, losses


def check(comm):
    for dtype in ("float64", "float32"):
        got, got_losses = train_steps(comm, dtype)
        want, want_losses = train_steps(None, dtype)
        np.testing.assert_allclose(got_losses, want_losses, rtol=TOL[dtype],
                                   err_msg=f"losses ({dtype})")
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=0,
                                       atol=TOL[dtype] * float(np.max(np.abs(want[key]))),
                                       err_msg=f"parameter {key} ({dtype}) after training")
            row = np.reshape(np.asarray(got[key], dtype=np.float64), (1, -1))
            every = dist.gather_rows(row, comm)  # (R, k)
            assert np.array_equal(every, np.broadcast_to(every[:1], every.shape)), \
                f"parameter {key} ({dtype}) differs between ranks"


if __name__ == "__main__":
    world = dist.world()
    check(world)
    print(f"rank {world.Get_rank()} of {world.Get_size()}: training OK", flush=True)
