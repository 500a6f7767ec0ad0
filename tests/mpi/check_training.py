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

LR, EPOCHS, BATCH, TRAIN_SIZE = 3e-3, 2, 24, 96
STEPS = EPOCHS * (TRAIN_SIZE // BATCH)

# float64: the two runs differ only in how sums are split (X^T G over the whole batch, or
# over two halves and then all-reduced): a rounding of at most about BATCH * 2^-53 of the
# gradient's largest entry per step. Adam turns a gradient perturbation delta into a step
# change of at most LR * delta / (|g| + eps) (it divides by sqrt(v_hat) ~ |g|), so rounding
# shows most at the coordinate whose gradient is smallest but not exactly zero (an exactly
# zero one, a pixel that is always black, is zero in both runs). train_steps measures that
# smallest |g| relative to the largest of its parameter, and the tolerance follows from it,
# with a factor 10 for what the first-order estimate leaves out (perturbed parameters
# perturbing the next steps' gradients). Parameters are of order 0.1 to 3.
def float64_tolerance(smallest_relative_grad):
    return 10 * STEPS * LR * BATCH * 2.0**-53 / smallest_relative_grad


# float32: the same rounding is 2^29 times larger, so at a coordinate whose gradient is as
# small as its rounding, Adam's step can change sign. No rounding bound survives that; what
# does hold is Adam's own bound on a step, |m_hat / (sqrt(v_hat) + eps)| <= (1 - b1) /
# sqrt(1 - b2) = 3.17 when 1 - b1 > sqrt(1 - b2) (Kingma & Ba 2015, section 2.1), plus the
# decoupled weight decay LR * wd * |w|. Two float32 runs from the same start therefore end
# within 2 * STEPS * LR * 3.17 (+ decay) of each other in every coordinate, on any CPU. That
# bound is loose; the tight comparison of the arithmetic is the float64 one.
ADAM_STEP_BOUND = (1 - 0.9) / (1 - 0.999) ** 0.5
TOL32_ABS = 2 * STEPS * LR * (ADAM_STEP_BOUND + 1e-4 * 4.0)  # every |w| < 4 here


def train_steps(comm, dtype, *, epochs=EPOCHS, batch_size=BATCH, train_size=TRAIN_SIZE, seed=0):
    """The loop of ``numclip.train.train``, cut down; ``comm=None`` is one process.

    Returns the final parameters, the loss of every step, and the smallest non-zero |g|
    of any gradient entry relative to the largest |g| of its parameter in the same step.
    """
    data = make_dataset(train_size, seed=seed, compositions="seen")
    vocab = Vocabulary.build(data.captions)
    pixels = data.pixels().astype(dtype)  # (n, P)
    tokens = vocab.features(data.captions).astype(dtype)  # (n, V)
    model = TinyCLIP.create(pixels.shape[1], len(vocab), 8, seed=seed, dtype=np.dtype(dtype))
    optimizer = AdamW(lr=LR, weight_decay=1e-4)
    losses, smallest = [], 1.0
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
            for g in grads.values():
                g = np.abs(np.asarray(g, dtype=np.float64))
                if np.any(g > 0):
                    smallest = min(smallest, float(np.min(g[g > 0]) / np.max(g)))
    return model.params, losses, smallest


def check(comm):
    got, got_losses, _ = train_steps(comm, "float64")
    want, want_losses, smallest = train_steps(None, "float64")
    tol = float64_tolerance(smallest)  # about 2e-8 here; the runs agree to about 1e-11
    np.testing.assert_allclose(got_losses, want_losses, rtol=tol, err_msg="losses (float64)")
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=tol,
                                   err_msg=f"parameter {key} (float64) after training")
    assert_same_on_every_rank(got, comm, "float64")

    got, _, _ = train_steps(comm, "float32")
    want, _, _ = train_steps(None, "float32")
    for key in want:
        assert got[key].dtype == np.float32, f"parameter {key} left float32"
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=TOL32_ABS,
                                   err_msg=f"parameter {key} (float32) after training")
    assert_same_on_every_rank(got, comm, "float32")


def assert_same_on_every_rank(params, comm, dtype):
    for key, value in params.items():
        row = np.reshape(np.asarray(value, dtype=np.float64), (1, -1))
        every = dist.gather_rows(row, comm)  # (R, k)
        assert np.array_equal(every, np.broadcast_to(every[:1], every.shape)), \
            f"parameter {key} ({dtype}) differs between ranks"


if __name__ == "__main__":
    world = dist.world()
    check(world)
    print(f"rank {world.Get_rank()} of {world.Get_size()}: training OK", flush=True)
