"""Data-parallel training (numclip.distributed): the same gradients as one process.

Two ways to run the same checks (``tests/mpi/check_*.py``):

- under real MPI, ``mpiexec -n 2 python -m mpi4py tests/mpi/check_*.py``, when
  mpi4py and ``mpiexec`` are installed (``pip install ".[mpi]"``); skipped otherwise;
- in plain pytest, with ranks simulated by threads (:class:`ThreadComm`) or a
  single rank (:class:`numclip.distributed.SingleProcessComm`), so the logic
  is covered everywhere.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_on_backend, put

import numclip
from numclip import distributed as dist
from numclip import to_numpy
from numclip.model import TinyCLIP

ROOT = Path(__file__).resolve().parents[1]
MPI_SCRIPTS = ROOT / "tests" / "mpi"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, MPI_SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_gradients = load_script("check_gradients")
check_training = load_script("check_training")


# ----------------------------------------------------------------------------- ranks as threads

class ThreadComm:
    """Rank ``rank`` of ``size`` threads: mpi4py's buffer collectives, meeting at a barrier.

    Sums are taken in rank order, so every rank gets bit-identical results, as MPI gives.
    """

    def __init__(self, rank, size, shared):
        self.rank, self.size, self.shared = rank, size, shared

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def _exchange(self, sendbuf):
        slots, barrier = self.shared["slots"], self.shared["barrier"]
        slots[self.rank] = np.array(sendbuf, copy=True)
        barrier.wait()
        everyone = list(slots)
        barrier.wait()  # nobody overwrites a slot before all have read it
        return everyone

    def Allgather(self, sendbuf, recvbuf):
        recvbuf[...] = np.reshape(np.stack(self._exchange(sendbuf)), recvbuf.shape)

    def Allreduce(self, sendbuf, recvbuf):
        recvbuf[...] = sum(self._exchange(sendbuf))

    def Reduce_scatter_block(self, sendbuf, recvbuf):
        total = sum(self._exchange(sendbuf))
        recvbuf[...] = np.reshape(np.reshape(total, (self.size, -1))[self.rank], recvbuf.shape)

    def Abort(self, errorcode=1):
        raise RuntimeError(f"rank {self.rank} aborted with {errorcode}")


def run_ranks(size, fn):
    """``fn(comm)`` on ``size`` threads; returns the results in rank order, re-raises errors."""
    shared = {"slots": [None] * size, "barrier": threading.Barrier(size, timeout=30)}
    results, errors = [None] * size, [None] * size

    def body(rank):
        try:
            results[rank] = fn(ThreadComm(rank, size, shared))
        except BaseException as err:
            errors[rank] = err
            shared["barrier"].abort()  # the other ranks stop waiting for this one

    threads = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raised = [e for e in errors if e is not None]
    if raised:  # the rank that failed first, not the ones it left waiting at the barrier
        raise next((e for e in raised if not isinstance(e, threading.BrokenBarrierError)),
                   raised[0])
    return results


# ----------------------------------------------------------------------------- without MPI

@pytest.mark.parametrize("size", [1, 2, 3])
def test_gradients_equal_the_single_process_gradients(size):
    run_ranks(size, check_gradients.check)


@pytest.mark.parametrize("size", [2, 4])
def test_a_short_run_ends_with_the_single_process_parameters(size):
    run_ranks(size, check_training.check)


def test_one_rank_is_clip_loss_on_every_backend(xp, dtype_name):
    rng = np.random.default_rng(3)
    image, text = put(xp, rng.standard_normal((4, 6)), dtype_name), put(
        xp, rng.standard_normal((4, 6)), dtype_name)
    scale = put(xp, 2.0, dtype_name)
    want_loss, want = numclip.clip_loss(image, text, scale)
    loss, got = dist.local_clip_loss(image, text, scale, dist.SingleProcessComm())
    assert_on_backend(loss, image)
    for key, like in [("image_embeds", image), ("text_embeds", text), ("logit_scale", scale)]:
        assert_on_backend(got[key], like)
        check_gradients.assert_close(numclip.to_numpy(got[key]), numclip.to_numpy(want[key]),
                                     dtype_name, key)
    check_gradients.assert_close(numclip.to_numpy(loss), numclip.to_numpy(want_loss),
                                 dtype_name, "loss")


def test_a_python_float_logit_scale_comes_back_a_float():
    rng = np.random.default_rng(4)
    image, text = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    want_loss, want = numclip.clip_loss(image, text, 1.5)
    out = run_ranks(2, lambda c: dist.local_clip_loss(dist.shard_rows(image, c),
                                                      dist.shard_rows(text, c), 1.5, c))
    for loss, grads in out:
        assert type(grads["logit_scale"]) is float
        assert grads["logit_scale"] == pytest.approx(want["logit_scale"], rel=1e-12)
        assert float(loss) == pytest.approx(float(want_loss), rel=1e-12)


def test_each_rank_loss_is_open_clips_local_loss():
    """The mean over ranks of open_clip's per-rank loss L_r is the global loss."""
    rng = np.random.default_rng(5)
    image, text = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
    scale = 2.0
    want_loss, _ = numclip.clip_loss(image, text, scale)
    i_hat = numclip.l2_normalize(image)[0]
    t_hat = numclip.l2_normalize(text)[0]
    local = []
    for r in range(4):  # open_clip's formula, written out for rank r of 4
        rows, labels = slice(2 * r, 2 * r + 2), np.arange(2) + 2 * r
        per_image = np.exp(scale) * i_hat[rows] @ t_hat.T  # (n, N)
        per_text = np.exp(scale) * t_hat[rows] @ i_hat.T  # (n, N)
        local.append((numclip.cross_entropy(per_image, labels)[0]
                      + numclip.cross_entropy(per_text, labels)[0]) / 2)
    assert np.mean(local) == pytest.approx(float(want_loss), rel=1e-13)
    loss, _ = run_ranks(4, lambda c: dist.local_clip_loss(dist.shard_rows(image, c),
                                                          dist.shard_rows(text, c), scale, c))[0]
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-13)


def test_without_the_backward_of_the_gather_the_gradients_are_wrong(monkeypatch):
    """A check that cannot fail is a defect: gathering "without grad" must be caught.

    Dropping the reduce-scatter keeps only each rank's own rows' terms, which is
    what open_clip computes with ``local_loss=True, gather_with_grad=False``.
    """
    monkeypatch.setattr(dist, "gather_rows_backward", lambda dx, comm: 0 * dist.shard_rows(
        dx, comm))
    with pytest.raises(AssertionError, match="differs from the single-process"):
        run_ranks(2, lambda c: check_gradients.check_clip_loss(c, "float64"))


@pytest.mark.parametrize("broken", ["no_scale_average", "no_parameter_sum"])
def test_the_checks_catch_a_missing_all_reduce(monkeypatch, broken):
    if broken == "no_scale_average":  # each rank keeps its own L_r and dL_r/ds
        monkeypatch.setattr(dist, "allreduce_mean", lambda arrays, comm: arrays)
        check = check_gradients.check_clip_loss
    else:  # each rank keeps only its own term X_r^T G_r of the encoder gradients
        monkeypatch.setattr(dist, "allreduce_sum", lambda arrays, comm: arrays)
        check = check_gradients.check_tiny_clip
    with pytest.raises(AssertionError, match="differs"):
        run_ranks(2, lambda c: check(c, "float64"))


def test_gather_and_its_backward_are_adjoint():
    """sum_s <gather(x), y_s> == sum_r <x_r, gather_backward(y)_r>: what a backward means."""
    rng = np.random.default_rng(6)
    xs, ys = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 6, 4))

    def both(c):
        r = c.Get_rank()
        return (np.sum(dist.gather_rows(xs[r], c) * ys[r]),
                np.sum(xs[r] * dist.gather_rows_backward(ys[r], c)))

    out = run_ranks(3, both)
    assert sum(a for a, _ in out) == pytest.approx(sum(b for _, b in out), rel=1e-13)
    gathered = run_ranks(3, lambda c: dist.gather_rows(xs[c.Get_rank()], c))
    for g in gathered:
        np.testing.assert_array_equal(g, np.concatenate(xs))


def test_gather_rejects_unequal_shards_on_every_rank():
    def uneven(c):
        with pytest.raises(ValueError, match=r"same shape.*rank 0: \(2, 3\).*rank 1: \(3, 3\)"):
            dist.gather_rows(np.ones((2 + c.Get_rank(), 3)), c)
        return True

    assert run_ranks(2, uneven) == [True, True]


def test_shard_rows_splits_the_global_batch_in_rank_order():
    batch = np.arange(12)
    shards = run_ranks(3, lambda c: dist.shard_rows(batch, c))
    np.testing.assert_array_equal(np.concatenate(shards), batch)
    assert [len(s) for s in shards] == [4, 4, 4]
    with pytest.raises(ValueError, match="does not split evenly over 2 ranks"):
        run_ranks(2, lambda c: dist.shard_rows(np.arange(5), c))


_COMM = dist.SingleProcessComm()
_MODEL = TinyCLIP.create(5, 3, 4)
_F32 = np.ones((2, 3), np.float32)

# (function, args, kwargs, error, words the message must contain): every public function
# that takes arguments has rows; test_every_public_function_has_bad_input_rows checks that.
BAD_INPUT = [
    (dist.abort_on_error, (None,), {}, TypeError, "comm must be an MPI communicator"),
    (dist.check_comm, ("comm",), {}, TypeError, "comm must be an MPI communicator"),
    (dist.check_comm, (object(),), {}, TypeError, "got object"),
    (dist.shard_rows, (None, _COMM), {}, TypeError, "batch must be a list, a tuple or an array"),
    (dist.shard_rows, (np.ones((4, 2)), "comm"), {}, TypeError, "comm must be an MPI"),
    (dist.shard_rows, (np.ones(3), ThreadComm(0, 2, {})), {}, ValueError,
     "does not split evenly over 2 ranks"),
    (dist.gather_rows, (np.ones((4, 2)), None), {}, TypeError, "comm must be an MPI"),
    (dist.gather_rows, (np.full((2, 2), np.nan), _COMM), {}, ValueError, "x contains NaN"),
    (dist.gather_rows, (np.ones(3), _COMM), {}, ValueError, "x must be 2-D"),
    (dist.gather_rows_backward, (np.ones((3, 2)), ThreadComm(0, 2, {})), {}, ValueError,
     "dgathered must have a multiple of 2 rows"),
    (dist.gather_rows_backward, (np.ones((2, 2)), object()), {}, TypeError, "comm must be"),
    (dist.gather_rows_backward, ("rows", _COMM), {}, TypeError, "dgathered must be an array"),
    (dist.allreduce_sum, ([1.0, 2.0], _COMM), {}, TypeError, "arrays must be a dict"),
    (dist.allreduce_sum, ({"a": "x"}, _COMM), {}, TypeError, "arrays['a'] must be an array"),
    (dist.allreduce_sum, ({"a": float("nan")}, _COMM), {}, ValueError,
     "arrays['a'] must be finite"),
    (dist.allreduce_sum, ({"a": np.ones(2, int)}, _COMM), {}, TypeError, "floating dtype"),
    (dist.allreduce_sum, ({"a": True}, _COMM), {}, TypeError, "arrays['a'] must be an array"),
    (dist.allreduce_sum, ({"a": 1.0}, None), {}, TypeError, "comm must be"),
    (dist.allreduce_mean, (None, _COMM), {}, TypeError, "arrays must be a dict"),
    (dist.allreduce_mean, ({"g": np.full(2, np.inf)}, _COMM), {}, ValueError,
     "arrays['g'] contains NaN or infinite"),
    (dist.local_clip_loss, (np.ones((3, 2)), np.ones((2, 2)), 1.0, _COMM), {}, ValueError,
     "same number of pairs"),
    (dist.local_clip_loss, (np.ones((2, 3)), np.ones((2, 4)), 1.0, _COMM), {}, ValueError,
     "same width D"),
    (dist.local_clip_loss, (np.ones((2, 3)), _F32, 1.0, _COMM), {}, TypeError, "share a dtype"),
    (dist.local_clip_loss, (_F32, _F32, 1.0, _COMM), {"normalize": "yes"}, TypeError,
     "normalize must be True or False"),
    (dist.local_clip_loss, (_F32, _F32, float("nan"), _COMM), {}, ValueError,
     "logit_scale must be finite"),
    (dist.local_clip_loss, (_F32, _F32, 1.0, None), {}, TypeError, "comm must be"),
    (dist.distributed_loss_and_grads, (None, np.ones((2, 5)), np.ones((2, 3)), _COMM), {},
     TypeError, "model must be a TinyCLIP"),
    (dist.distributed_loss_and_grads, (_MODEL, np.ones((2, 4), np.float32), _F32, _COMM), {},
     ValueError, "pixels must have 5 columns"),
    # an array keeps its dtype (refused); a list of numbers is taken in the model's (below)
    (dist.distributed_loss_and_grads, (_MODEL, np.ones((2, 5), np.float32), np.ones((2, 3)),
                                       _COMM), {}, TypeError, "token_features has dtype float64"),
    (dist.distributed_loss_and_grads, (_MODEL, np.ones((2, 5), np.float32), _F32[:1], _COMM), {},
     ValueError, "pixels and token_features must hold the same number of pairs B"),
    # an int too large for a float: numpy's "ufunc 'isfinite' not supported" before
    (dist.allreduce_sum, ({"a": 10**400}, _COMM), {}, ValueError, "arrays['a'] must be finite"),
    # a list was checked as an array, then failed in array_namespace without its key
    (dist.allreduce_sum, ({"a": [1.0, 2.0]}, _COMM), {}, TypeError,
     "arrays['a'] must be an array or a Python float, got list"),
]


def test_lists_numpy_bools_and_other_libraries_are_taken_as_they_come():
    """Valid unusual input: a list of numbers is taken in the model's dtype, np.True_ is a
    bool, an array-api-strict batch is sharded (it raised IndexError: [a:b] on a 2-D
    array), a Python int sums."""
    pixels, tokens = np.ones((2, 5), np.float32), _F32
    want = dist.distributed_loss_and_grads(_MODEL, pixels, tokens, _COMM)
    got = dist.distributed_loss_and_grads(_MODEL, pixels.tolist(), tokens.tolist(), _COMM)
    assert got[0] == want[0] and all(np.array_equal(got[1][k], want[1][k]) for k in want[1])
    img = np.eye(2, 3)
    assert dist.local_clip_loss(img, img, 1.0, _COMM, normalize=np.True_)[0] == \
        dist.local_clip_loss(img, img, 1.0, _COMM)[0]
    xp = pytest.importorskip("array_api_strict")
    batch = xp.asarray(np.arange(12.0).reshape(4, 3))
    shards = run_ranks(2, lambda c: dist.shard_rows(batch, c))
    np.testing.assert_array_equal(np.concatenate([to_numpy(s) for s in shards]), to_numpy(batch))
    assert dist.allreduce_sum({"n": 10**30}, _COMM) == {"n": 1e30}


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD_INPUT,
                         ids=[f"{row[0].__name__}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_raises_clear_errors(fn, args, kwargs, error, words):
    with pytest.raises(error) as info:
        result = fn(*args, **kwargs)
        if hasattr(result, "__enter__"):  # a context manager checks when entered
            with result:
                pass
    assert words in str(info.value)


def test_every_public_function_has_bad_input_rows():
    import inspect

    covered = {row[0].__name__ for row in BAD_INPUT}
    takes_arguments = {name for name in dist.__all__
                       if inspect.isfunction(getattr(dist, name))
                       and inspect.signature(getattr(dist, name)).parameters}
    assert takes_arguments - covered == set()


def test_allreduce_keeps_types_and_keys():
    values = {"b": np.ones((2, 3), np.float32), "a": np.asarray(2.0), "c": 1.5}
    out = run_ranks(2, lambda c: (dist.allreduce_sum(values, c), dist.allreduce_mean(values, c)))
    for summed, mean in out:
        assert list(summed) == list(values) == list(mean)
        assert summed["b"].dtype == np.float32 and summed["b"].shape == (2, 3)
        assert summed["a"].shape == () and float(summed["a"]) == 4.0 and float(mean["a"]) == 2.0
        assert type(summed["c"]) is float and summed["c"] == 3.0 and mean["c"] == 1.5


def test_abort_on_error_ends_all_ranks_but_reraises_on_one(capsys):
    with pytest.raises(ValueError, match="boom"), dist.abort_on_error(dist.SingleProcessComm()):
        raise ValueError("boom")
    with pytest.raises(RuntimeError, match="rank 1 aborted with 1"), \
            dist.abort_on_error(ThreadComm(1, 2, {})):
        raise ValueError("boom")
    assert "numclip: error on rank 1: ValueError: boom" in capsys.readouterr().err


def test_world_without_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import now fails
    with pytest.raises(ImportError, match=re.escape("pip install 'numclip[mpi]'")):
        dist.world()


def test_every_line_quoted_in_the_docs_is_in_the_source():
    quoted = [ROOT / "numclip" / "distributed.py", MPI_SCRIPTS / "check_training.py"]
    source = {line.strip() for path in quoted
              for line in path.read_text(encoding="utf-8").splitlines()}
    text = (ROOT / "docs" / "distributed.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 5
    missing = [line for block in blocks for line in block.splitlines()
               if line.strip() and line.strip() not in source]
    assert not missing, f"docs/distributed.md quotes lines that are in neither {quoted}: {missing}"


# ----------------------------------------------------------------------------- under mpiexec

def _mpiexec():
    """mpiexec next to this Python (the mpich wheel puts it there), else on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


@pytest.fixture(scope="module")
def mpiexec():
    # CI sets NUMCLIP_REQUIRE_MPI=1: there, a missing MPI is a failure, not a skip
    missing = pytest.fail if os.environ.get("NUMCLIP_REQUIRE_MPI") == "1" else pytest.skip
    if importlib.util.find_spec("mpi4py") is None:
        missing("mpi4py is not installed: pip install '.[mpi]' to run the MPI tests")
    launcher = _mpiexec()
    if launcher is None:
        missing("no mpiexec found: pip install '.[mpi]' (the mpich wheel provides it)")
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        missing(f"mpi4py cannot load an MPI library: {probe.stderr.strip()[-300:]}")
    return launcher


@pytest.mark.parametrize("script, what", [("check_gradients", "gradients OK"),
                                          ("check_training", "training OK")])
def test_under_mpiexec_with_two_ranks(mpiexec, script, what):
    env = os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                        "MKL_NUM_THREADS": "1"}  # two ranks on two cores: no oversubscription
    try:
        done = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "mpi4py",
                               str(MPI_SCRIPTS / f"{script}.py")],
                              capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"mpiexec -n 2 {script}.py did not finish in 120 s (a rank waiting "
                    f"forever in a collective?)\n{err.stdout}\n{err.stderr}")
    report = f"exit status {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, report
    for rank in range(2):
        assert f"rank {rank} of 2: {what}" in done.stdout, report


# ----------------------------------------------------------------------------- the command

def _has_distributed_option():
    from numclip.cli import build_parser

    try:
        build_parser().parse_args(["train", "--distributed"])
    except SystemExit:
        return False
    return True


needs_cli_option = pytest.mark.skipif(not _has_distributed_option(),
                                      reason="numclip train has no --distributed option yet")


@needs_cli_option
def test_distributed_without_mpi4py_says_how_to_install(monkeypatch, capsys):
    from numclip.cli import main

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert main(["train", "--distributed", "--epochs", "1", "--quiet"]) == 1
    assert "pip install 'numclip[mpi]'" in capsys.readouterr().err


@needs_cli_option
def test_numclip_train_distributed_matches_one_process(mpiexec):
    env = os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                        "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "numclip", "train", "--epochs", "1", "--batch-size", "128",
               "--quiet", "--json"]
    single = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert single.returncode == 0, single.stderr
    split = subprocess.run([mpiexec, "-n", "2", *command, "--distributed"], capture_output=True,
                           text=True, timeout=120, env=env)
    assert split.returncode == 0, split.stderr
    lines = [line for line in split.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"only rank 0 reports, got:\n{split.stdout}"
    want, got = json.loads(single.stdout.splitlines()[-1]), json.loads(lines[0])
    # float32 parameters of the two runs can differ by up to Adam's step at a coordinate
    # whose gradient is as small as its rounding (tests/mpi/check_training.py), but such a
    # coordinate moves the loss only to second order: its gradient is ~0. The loss and the
    # scale therefore agree to float32 rounding of a mean of 39 steps' products, far under
    # 1e-4; accuracy counts an image whose top two scores are that close the other way.
    assert got["final_loss"] == pytest.approx(want["final_loss"], rel=1e-4)
    assert got["scale"] == pytest.approx(want["scale"], rel=1e-4)
    for key in ("zero_shot_seen", "zero_shot_heldout"):
        assert got[key] == pytest.approx(want[key], abs=0.01), key
