"""Training the tiny CLIP: config, minibatch loop, history and checkpoints.

Read ``train`` top to bottom: make the data, build (or resume) the model and
optimizer, then for each epoch shuffle, step through minibatches, record the
history and save a checkpoint.  Every epoch's shuffle comes from its own
seed ``(seed, epoch)``, so a run resumed from a checkpoint takes exactly the
steps an uninterrupted run takes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from numclip import distributed as dist
from numclip.data import make_dataset
from numclip.model import LOSSES, TinyCLIP
from numclip.optim import AdamW
from numclip.report import evaluate
from numclip.text import Vocabulary
from numclip.threads import blas_threads_for

__all__ = ["TrainConfig", "TrainState", "train", "make_splits",
           "save_checkpoint", "load_checkpoint", "CheckpointError"]

CHECKPOINT_FORMAT = "numclip-tiny-clip-v1"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run computes; stored in every checkpoint."""

    epochs: int = 10  # passes over the training set; longer fits seen compositions harder
    #                   and generalises worse to held-out ones (benchmarks/README.md)
    batch_size: int = 256  # pairs per step; each pair's negatives are the other B - 1
    embed_dim: int = 64  # width D of the shared embedding space
    lr: float = 3e-3  # AdamW step size
    weight_decay: float = 1e-4  # AdamW decoupled decay (not applied to logit_scale)
    train_size: int = 10_000  # training pairs, drawn from the seen compositions
    eval_size: int = 2_000  # test images per split (seen and held-out compositions)
    seed: int = 0  # seeds the data, the initial weights and every epoch's shuffle
    loss: str = "clip"  # "clip" (softmax over the batch) or "siglip" (sigmoid per pair)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "embed_dim", "train_size", "eval_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2: a contrastive batch needs negatives")
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed "
                             f"train_size ({self.train_size})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")


@dataclass
class TrainState:
    """A run in progress: what a checkpoint holds."""

    config: TrainConfig
    model: TinyCLIP
    optimizer: AdamW
    vocab: Vocabulary
    epoch: int = 0  # epochs completed
    history: dict = dataclasses.field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})


HISTORY_KEYS = ("epoch", "loss", "scale", "accuracy", "zero_shot_seen", "zero_shot_heldout")


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, corrupt or from another run."""


def make_splits(config: TrainConfig) -> dict:
    """The training set and the two test sets (seen and held-out compositions)."""
    return {
        "train": make_dataset(config.train_size, seed=config.seed, compositions="seen"),
        "seen": make_dataset(config.eval_size, seed=config.seed + 1, compositions="seen"),
        "heldout": make_dataset(config.eval_size, seed=config.seed + 2, compositions="heldout"),
    }


def new_state(config: TrainConfig, train_set) -> TrainState:
    vocab = Vocabulary.build(train_set.captions)
    model = TinyCLIP.create(train_set.pixels().shape[1], len(vocab), config.embed_dim,
                            seed=config.seed, loss=config.loss)
    # row 0 is <unk>, which training captions never use: starting it at zero makes an
    # unknown word in a prompt contribute nothing, instead of a random direction
    model.params["text_proj"][0] = 0.0
    optimizer = AdamW(lr=config.lr, weight_decay=config.weight_decay)
    return TrainState(config, model, optimizer, vocab)


def train(config: TrainConfig, *, resume: str | Path | None = None,
          out: str | Path | None = None, quiet: bool = False, splits: dict | None = None,
          comm=None):
    """Train (or continue training) the tiny CLIP up to ``config.epochs`` epochs.

    Args:
        config: the run's settings; when resuming, every field but ``epochs``
            must equal the checkpoint's.
        resume: a checkpoint to continue from.
        out: where to save a checkpoint after every epoch (atomically).
        quiet: no progress bar (it is also off when stderr is not a terminal).
        splits: the output of :func:`make_splits`, to avoid regenerating it.
        comm: an MPI communicator (:func:`numclip.distributed.world`) whose ranks
            share every batch (``docs/distributed.md``); None trains in one process.
            Every rank must call ``train`` with the same arguments; only rank 0
            shows a progress bar and writes the checkpoint.

    Returns:
        the final :class:`TrainState`.
    """
    if out is not None and not Path(out).parent.is_dir():  # fail now, not after an epoch
        raise FileNotFoundError(f"cannot write checkpoint {out}: folder {Path(out).parent} "
                                "does not exist")
    rank = 0 if comm is None else comm.Get_rank()
    if comm is not None and config.loss != "clip":
        raise ValueError("distributed training implements the CLIP loss only; "
                         f"got loss={config.loss!r}")
    if comm is not None and config.batch_size % comm.Get_size():
        raise ValueError(f"batch_size ({config.batch_size}) must be a multiple of the "
                         f"{comm.Get_size()} ranks that share each batch")
    splits = make_splits(config) if splits is None else splits
    train_set = splits["train"]
    state = load_checkpoint(resume, expect=config) if resume else new_state(config, train_set)
    pixels = train_set.pixels()  # (n, P)
    tokens = state.vocab.features(train_set.captions)  # (n, V)
    bar = tqdm(range(state.epoch, config.epochs), desc="training", unit="epoch",
               disable=quiet or rank != 0 or not sys.stderr.isatty(), initial=state.epoch,
               total=config.epochs)
    # the tiny model's products are far too small for several BLAS threads (numclip.threads)
    with blas_threads_for(config.batch_size * max(pixels.shape[1], tokens.shape[1])
                          * config.embed_dim):
        for epoch in bar:
            loss, accuracy = _train_epoch(state, epoch, pixels, tokens, comm)
            state.epoch = epoch + 1
            record(state, loss=loss, accuracy=accuracy, splits=splits)
            bar.set_postfix(loss=f"{loss:.3f}", scale=f"{state.history['scale'][-1]:.1f}")
            if out is not None and rank == 0:
                save_checkpoint(out, state)
    return state


def _train_epoch(state: TrainState, epoch: int, pixels, tokens, comm) -> tuple[float, float]:
    """One pass over the training set in the epoch's own shuffle; (mean loss, in-batch top-1)."""
    n, b = len(pixels), state.config.batch_size
    order = np.random.default_rng([state.config.seed, epoch]).permutation(n)
    losses, correct = [], 0
    for start in range(0, n - b + 1, b):  # full batches only: every step sees B - 1 negatives
        idx = order[start:start + b]
        if comm is None:
            loss, grads = state.model.loss_and_grads(pixels[idx], tokens[idx])
        else:  # every rank cut the same idx; each computes with its B / R pairs
            mine = dist.shard_rows(idx, comm)
            loss, grads = dist.distributed_loss_and_grads(state.model, pixels[mine],
                                                          tokens[mine], comm)
        state.optimizer.step(state.model.params, grads)
        losses.append(float(loss))
        correct += _in_batch_correct(state.model, pixels[idx], tokens[idx])
    return float(np.mean(losses)), correct / (len(losses) * b)


def _in_batch_correct(model, pixels, tokens) -> int:
    """How many images in the batch pick their own caption among the batch's captions."""
    sim = model.encode_images(pixels) @ model.encode_texts(tokens).T  # (B, B)
    return int(np.sum(np.argmax(sim, axis=1) == np.arange(sim.shape[0])))


def record(state: TrainState, *, loss: float, accuracy: float, splits: dict) -> None:
    """Append one epoch to the history, including zero-shot accuracy on both test splits."""
    zs = evaluate(state, splits, top_k=(1,))
    h = state.history
    h["epoch"].append(state.epoch)
    h["loss"].append(loss)
    h["scale"].append(math.exp(float(state.model.params["logit_scale"])))
    h["accuracy"].append(accuracy)
    h["zero_shot_seen"].append(zs["seen"][1])
    h["zero_shot_heldout"].append(zs["heldout"][1])


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | Path, state: TrainState) -> None:
    """Write ``state`` to ``path`` (.npz) atomically: a temporary file, then a rename.

    An interrupted save leaves the previous checkpoint intact, never half a file.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write checkpoint {path}: folder {path.parent} "
                                "does not exist")
    arrays = {"format": np.asarray(CHECKPOINT_FORMAT),
              "config": np.asarray(json.dumps(dataclasses.asdict(state.config))),
              "epoch": np.asarray(state.epoch)}
    arrays |= {f"param.{k}": np.asarray(v) for k, v in state.model.params.items()}
    arrays |= {f"opt.{k}": np.asarray(v) for k, v in state.optimizer.state.items()}
    arrays |= {f"vocab.{k}": v for k, v in state.vocab.to_arrays().items()}
    arrays |= {f"history.{k}": np.asarray(v, dtype=np.float64) for k, v in state.history.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, expect: TrainConfig | None = None) -> TrainState:
    """Read a checkpoint written by :func:`save_checkpoint`; never writes anything.

    Args:
        path: the ``.npz`` file.
        expect: if given, the checkpoint's config must match it in every field
            but ``epochs`` (the number of epochs to train up to).

    Raises:
        CheckpointError: missing, truncated, corrupt or mismatched file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}  # reads (and CRC-checks) every entry
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as err:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({err})") from None
    if str(arrays.get("format", "")) != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a numclip checkpoint "
                              f"(format {arrays.get('format', 'missing')!s})")
    try:
        config = TrainConfig(**json.loads(str(arrays["config"])))
        state = _state_from_arrays(config, arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} is incomplete or inconsistent ({err})") from None
    if expect is not None:
        _check_same_run(path, config, expect)
        state.config = expect
    return state


def _state_from_arrays(config: TrainConfig, arrays: dict) -> TrainState:
    def group(prefix):
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    params = group("param.")
    expected = {"image_proj", "text_proj", "logit_scale"} | (
        {"logit_bias"} if config.loss == "siglip" else set())
    if set(params) != expected:
        raise ValueError(f"parameters {sorted(params)} for loss {config.loss!r}")
    vocab = Vocabulary.from_arrays(group("vocab."))
    if params["text_proj"].shape != (len(vocab), config.embed_dim):
        raise ValueError(f"text_proj has shape {params['text_proj'].shape} for a vocabulary "
                         f"of {len(vocab)} words and embed_dim {config.embed_dim}")
    opt_state = group("opt.")
    if "step" in opt_state:
        opt_state["step"] = int(opt_state["step"])
    optimizer = AdamW(lr=config.lr, weight_decay=config.weight_decay, state=opt_state)
    history = {k: v.tolist() for k, v in group("history.").items()}
    history["epoch"] = [int(e) for e in history.get("epoch", [])]
    return TrainState(config, TinyCLIP(params, config.loss), optimizer, vocab,
                      int(arrays["epoch"]), history)


def _check_same_run(path, saved: TrainConfig, expect: TrainConfig) -> None:
    diff = [f"{f.name}: checkpoint {getattr(saved, f.name)!r}, asked {getattr(expect, f.name)!r}"
            for f in dataclasses.fields(TrainConfig)
            if f.name != "epochs" and getattr(saved, f.name) != getattr(expect, f.name)]
    if diff:
        raise CheckpointError(f"checkpoint {path} is from a different run: " + "; ".join(diff))
