"""Data-parallel CLIP over MPI: every rank holds an equal share of each global batch.

Rank ``r`` of ``R`` holds rows ``[r n, (r+1) n)`` of a global batch of ``N = R n``
pairs.  It all-gathers the (normalized) embeddings of every rank, computes only
its own ``n`` rows of the logits against all ``N`` columns (open_clip's
``ClipLoss(local_loss=True, gather_with_grad=True)``), and hands the gradients
of the gathered rows back to their owners with a reduce-scatter, the backward
of the all-gather.  Parameter gradients are then summed over ranks, so every
rank holds the gradient of the global batch and takes the same optimizer step.
Why this costs ``O(N d)`` traffic and ``O(N^2 / R)`` memory per rank:
``docs/distributed.md``.

The communicator is anything with mpi4py's buffer interface: ``Get_rank()``,
``Get_size()``, ``Allgather(send, recv)``, ``Allreduce(send, recv)`` and
``Reduce_scatter_block(send, recv)`` (the last two summing, mpi4py's default
``op``), e.g. :func:`world` or :class:`SingleProcessComm`.  Messages travel as
host NumPy arrays; results come back in the library of the input (CuPy included).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Mapping

import numpy as np

from numclip.backend import (
    array_namespace,
    as_bool,
    as_embedding_pair,
    as_float_array,
    as_matrix,
    as_number,
    to_numpy,
)
from numclip.losses import cross_entropy
from numclip.normalize import l2_normalize, l2_normalize_backward
from numclip.similarity import logit_matrix, logit_matrix_backward

__all__ = [
    "world", "SingleProcessComm", "abort_on_error", "shard_rows",
    "gather_rows", "gather_rows_backward", "allreduce_sum", "allreduce_mean",
    "local_clip_loss", "distributed_loss_and_grads", "check_comm",
]

INSTALL_HINT = "pip install 'numclip[mpi]' (mpi4py and the mpich MPI library)"


def world():
    """MPI's ``COMM_WORLD``: every process that ``mpiexec`` started.

    mpi4py is imported here, not at the top, so that numclip never needs it
    unless a run is distributed.
    """
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as err:  # RuntimeError: mpi4py found no libmpi
        raise ImportError(f"distributed training needs mpi4py and an MPI library; "
                          f"{INSTALL_HINT} ({err})") from None
    return MPI.COMM_WORLD


class SingleProcessComm:
    """A communicator of one rank, for running (and stepping through) the code without MPI.

    Every collective of one rank copies its input: the gather of one shard is
    that shard, the sum over one rank is the value itself.
    """

    def Get_rank(self) -> int:
        return 0

    def Get_size(self) -> int:
        return 1

    def Allgather(self, sendbuf, recvbuf) -> None:
        recvbuf[...] = sendbuf

    def Allreduce(self, sendbuf, recvbuf) -> None:
        recvbuf[...] = sendbuf

    def Reduce_scatter_block(self, sendbuf, recvbuf) -> None:
        recvbuf[...] = sendbuf


@contextlib.contextmanager
def abort_on_error(comm):
    """Turn an exception on one rank into the end of every rank (``MPI_Abort``).

    Without it, a rank that fails (bad input, a full disk) exits while the
    others wait forever in their next collective.  With one rank, the
    exception propagates unchanged.
    """
    check_comm(comm)
    try:
        yield
    except Exception as err:
        if comm.Get_size() == 1:
            raise
        print(f"numclip: error on rank {comm.Get_rank()}: {type(err).__name__}: {err}",
              file=sys.stderr, flush=True)
        comm.Abort(1)


def shard_rows(batch, comm):
    """This rank's equal share of a global batch: rows ``[r B/R, (r+1) B/R)``.

    Args:
        batch: anything sliceable along its first axis with ``B`` rows (an index
            array, ``(B, P)`` pixels, ...); ``B`` must be a multiple of the number of ranks.

    Returns:
        the ``B / R`` rows of rank ``r``.
    """
    rank, size = check_comm(comm)
    if isinstance(batch, list | tuple):
        b = len(batch)
    elif len(getattr(batch, "shape", ())) >= 1:
        b = batch.shape[0]
    else:
        raise TypeError("batch must be a list, a tuple or an array with at least one axis, "
                        f"got {type(batch).__name__}")
    if b % size:
        raise ValueError(f"a global batch of {b} pairs does not split evenly over {size} "
                         f"ranks; choose a batch size that is a multiple of {size}")
    n = b // size
    if isinstance(batch, list | tuple):
        return batch[rank * n:(rank + 1) * n]
    return batch[rank * n:(rank + 1) * n, ...]  # the array API indexes every axis or says ...


def gather_rows(x, comm):
    r"""All-gather: the ``(n, D)`` rows of every rank, stacked in rank order.

    .. math:: X = \begin{bmatrix} X_0 \\ X_1 \\ \vdots \\ X_{R-1} \end{bmatrix}
              \in \mathbb{R}^{Rn \times D}

    Args:
        x: ``(n, D)`` this rank's rows ``X_r``; every rank must pass the same
            shape and dtype (checked on every rank, so all of them raise together).
        comm: the communicator.

    Returns:
        ``(R n, D)`` array in ``x``'s library and dtype; rows ``[r n, (r+1) n)`` are rank r's.
    """
    x = as_matrix(x, "x")
    check_comm(comm)
    xp = array_namespace(x)
    host = to_numpy(x)  # (n, D) contiguous NumPy
    _check_same_shape_everywhere(host, comm)
    gathered = np.empty((comm.Get_size() * host.shape[0], host.shape[1]), dtype=host.dtype)
    comm.Allgather(host, gathered)  # (R n, D)
    return xp.asarray(gathered)


def gather_rows_backward(dgathered, comm):
    r"""Backward of :func:`gather_rows`: each rank's block of the gradient, summed over ranks.

    Every rank ``s`` used its own copy of ``X`` in its own loss ``L_s``, so
    rows ``[r n, (r+1) n)`` of every rank's ``dX`` belong to rank ``r``'s input:

    .. math:: dX_r = \sum_{s=0}^{R-1} dX^{(s)}_{[r n, (r+1) n)}

    which is one reduce-scatter (sum, then rank ``r`` keeps block ``r``).

    Args:
        dgathered: ``(R n, D)`` this rank's gradient with respect to the gathered array.
        comm: the communicator.

    Returns:
        ``(n, D)`` gradient with respect to this rank's ``x``, in ``dgathered``'s library.
    """
    dgathered = as_matrix(dgathered, "dgathered")
    xp = array_namespace(dgathered)
    _, size = check_comm(comm)
    if dgathered.shape[0] % size:
        raise ValueError(f"dgathered must have a multiple of {size} rows (one block per "
                         f"rank), got shape {tuple(dgathered.shape)}")
    host = to_numpy(dgathered)  # (R n, D) contiguous NumPy
    dx = np.empty((host.shape[0] // size, host.shape[1]), dtype=host.dtype)
    comm.Reduce_scatter_block(host, dx)  # (n, D): sum over ranks of block r
    return xp.asarray(dx)


def allreduce_sum(arrays: dict, comm) -> dict:
    """Sum each value over all ranks; every rank gets the same sums.

    Args:
        arrays: name -> array (any shape, 0-d included) or Python float; every
            rank must pass the same names with the same shapes.

    Returns:
        a dict with the same keys, each value of the type, shape and dtype given.
    """
    check_comm(comm)
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a dict of name -> array, got {type(arrays).__name__}")
    for key, value in arrays.items():
        _check_summable(value, f"arrays[{key!r}]")
    summed = {k: _allreduce(arrays[k], comm) for k in sorted(arrays)}  # same order everywhere
    return {k: summed[k] for k in arrays}


def allreduce_mean(arrays: dict, comm) -> dict:
    """Average each value over all ranks: :func:`allreduce_sum` divided by the rank count."""
    summed = allreduce_sum(arrays, comm)
    _, size = check_comm(comm)
    return {k: v / size for k, v in summed.items()}


def local_clip_loss(image_embeds, text_embeds, logit_scale, comm, *, normalize: bool = True):
    r"""CLIP's loss on a batch split over ranks, computed open_clip's ``local_loss`` way.

    Rank ``r`` holds ``n`` pairs, rows ``[r n, (r+1) n)`` of a global batch of
    ``N = R n``.  It gathers all ``N`` embeddings of each modality and scores
    only its own rows against them:

    .. math:: S^{I}_r = e^{s}\,\hat I_r \hat T^\top, \quad
              S^{T}_r = e^{s}\,\hat T_r \hat I^\top \quad (n \times N), \qquad
              L_r = \tfrac12\left(\operatorname{CE}(S^{I}_r, y_r) +
                                  \operatorname{CE}(S^{T}_r, y_r)\right)

    with targets ``y_r = r n + [0..n)`` (the diagonal of the global matrix).
    With equal shards, ``L = (1/R) sum_r L_r`` is exactly :func:`numclip.clip_loss`
    on the global batch; that ``L`` and its gradients are what this returns.
    (open_clip returns ``L_r`` and gradients ``R`` times larger; DDP's mean
    over ranks then divides by ``R``.  The parameter gradients are the same.)

    Args:
        image_embeds: ``(n, D)`` this rank's image embeddings.
        text_embeds: ``(n, D)`` this rank's text embeddings, row ``i`` the caption of image ``i``.
        logit_scale: ``s = log(1/tau)``, a Python float or 0-d array, the same on every rank.
        comm: the communicator (:func:`world`, :class:`SingleProcessComm`, ...).
        normalize: L2-normalize the rows first and back-propagate through it.

    Returns:
        loss: 0-d array, the global loss ``L`` (mean over both directions and all
            ``N`` pairs); the same on every rank.
        grads: dict with ``"image_embeds"``, ``"text_embeds"`` (``(n, D)``, the rows
            of the global gradient that this rank holds) and ``"logit_scale"``
            (``dL/ds``, the same on every rank).
    """
    image_embeds, text_embeds = as_embedding_pair(image_embeds, text_embeds, paired=True)
    normalize = as_bool(normalize, "normalize")  # NumPy's bools count, as in clip_loss
    xp = array_namespace(image_embeds, text_embeds)
    rank, size = check_comm(comm)
    n = image_embeds.shape[0]
    if normalize:
        image_embeds, image_cache = l2_normalize(image_embeds)
        text_embeds, text_cache = l2_normalize(text_embeds)
    all_image = gather_rows(image_embeds, comm)  # (N, D), N = R n, rank order
    all_text = gather_rows(text_embeds, comm)  # (N, D)
    logits_per_image, image_rows = logit_matrix(image_embeds, all_text, logit_scale)  # (n, N)
    logits_per_text, text_rows = logit_matrix(text_embeds, all_image, logit_scale)  # (n, N)
    labels = xp.arange(n) + rank * n  # local pair i is global column r n + i
    loss_image, dlogits_per_image = cross_entropy(logits_per_image, labels)
    loss_text, dlogits_per_text = cross_entropy(logits_per_text, labels)
    local_loss = (loss_image + loss_text) / 2  # L_r, open_clip's per-rank loss
    dimage, dall_text, dscale_image = logit_matrix_backward(dlogits_per_image / 2, image_rows)
    dtext, dall_image, dscale_text = logit_matrix_backward(dlogits_per_text / 2, text_rows)
    # every L_s also saw our rows through its gathered copy; L = mean of the L_s
    dimage = (dimage + gather_rows_backward(dall_image, comm)) / size  # (n, D)
    dtext = (dtext + gather_rows_backward(dall_text, comm)) / size  # (n, D)
    if normalize:
        dimage = l2_normalize_backward(dimage, image_cache)
        dtext = l2_normalize_backward(dtext, text_cache)
    mean = allreduce_mean({"loss": local_loss, "logit_scale": dscale_image + dscale_text}, comm)
    return mean["loss"], {"image_embeds": dimage, "text_embeds": dtext,
                          "logit_scale": mean["logit_scale"]}


def distributed_loss_and_grads(model, pixels, token_features, comm):
    """``model.loss_and_grads`` of a global batch, from this rank's share of it.

    The model's encoders run on this rank's rows only (``model.embed``); the loss is
    :func:`local_clip_loss` over every rank's embeddings; ``model.embed_backward``
    turns this rank's rows of the embedding gradients into its share of the
    parameter gradients.  Every parameter gradient is a sum over the batch's rows,
    so an all-reduce of the shares is the gradient of the global batch: the same
    for the linear and the transformer encoders, which this function does not know.

    Args:
        model: a model with ``params``, ``embed`` and ``embed_backward`` (a
            :class:`numclip.model.TinyCLIP` with the CLIP loss), the same on every rank.
        pixels: ``(n, P)`` this rank's images (:func:`shard_rows` of the global batch).
        token_features: this rank's captions (``model.text_inputs``), paired row by
            row with ``pixels``.
        comm: the communicator.

    Returns:
        loss (0-d) and grads (the keys and shapes of ``model.params``) of the
            global batch, the same on every rank.
    """
    if not all(callable(getattr(model, m, None)) for m in ("embed", "embed_backward")) or (
            not isinstance(getattr(model, "params", None), Mapping)):
        raise TypeError("model must be a TinyCLIP (params, embed and embed_backward), got "
                        f"{type(model).__name__}")
    if getattr(model, "loss", "clip") != "clip":
        raise ValueError(f"distributed training implements the CLIP loss only; the model "
                         f"computes {model.loss!r}")
    image_embeds, text_embeds, cache = model.embed(pixels, token_features)  # (n, D) each
    loss, g = local_clip_loss(image_embeds, text_embeds, model.params["logit_scale"], comm)
    grads = allreduce_sum(model.embed_backward(g["image_embeds"], g["text_embeds"], cache),
                          comm)  # this rank's terms X_r^T G_r, summed over ranks
    grads["logit_scale"] = g["logit_scale"]  # () already summed over ranks
    return loss, {k: grads[k] for k in model.params}


# ----------------------------------------------------------------------------- helpers

def check_comm(comm) -> tuple[int, int]:
    """``(rank, size)`` of ``comm``, or a TypeError saying what a communicator is.

    Anything with mpi4py's ``Get_rank``, ``Get_size`` and buffer collectives counts
    (:func:`world`, :class:`SingleProcessComm`, a test's own).
    """
    if not all(callable(getattr(comm, m, None)) for m in ("Get_rank", "Get_size", "Allreduce")):
        raise TypeError("comm must be an MPI communicator (numclip.distributed.world() or "
                        f"SingleProcessComm()), got {type(comm).__name__}")
    return comm.Get_rank(), comm.Get_size()


def _check_summable(value, name: str) -> None:
    """A Python real number or a float array of finite values: what a gradient can be."""
    if type(value) in (int, float):
        if not math.isfinite(as_number(value, name)):  # 10**400 too: an OverflowError before
            raise ValueError(f"{name} must be finite, got {as_number(value, name)}")
        return
    if isinstance(value, list | tuple):  # the sum comes back in the form it came in
        raise TypeError(f"{name} must be an array or a Python float, got {type(value).__name__};"
                        " convert it with xp.asarray")
    as_float_array(value, name)


def _allreduce(value, comm):
    """Sum one array or Python float over ranks, returned in the form it came in."""
    if type(value) in (int, float):
        send = np.asarray([value], dtype=np.float64)
        recv = np.empty_like(send)
        comm.Allreduce(send, recv)
        return float(recv[0])
    xp = array_namespace(value)
    send = to_numpy(value)  # contiguous NumPy
    recv = np.empty_like(send)
    comm.Allreduce(send, recv)
    return xp.asarray(np.reshape(recv, tuple(value.shape)))


def _check_same_shape_everywhere(host: np.ndarray, comm) -> None:
    """Raise the same ValueError on every rank unless all shards have one shape and dtype."""
    mine = np.asarray([*host.shape, host.dtype.itemsize], dtype=np.int64)
    every = np.empty((comm.Get_size(), mine.shape[0]), dtype=np.int64)
    comm.Allgather(mine, every)
    if np.any(every != every[0]):
        shards = ", ".join(f"rank {r}: ({a}, {b}) of {c}-byte floats"
                           for r, (a, b, c) in enumerate(every.tolist()))
        raise ValueError(f"every rank must hold a shard of the same shape and dtype; {shards}")
