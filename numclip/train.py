"""Training the tiny CLIP: config, minibatch loop, history and checkpoints.

Read ``train`` top to bottom: make the data, build (or resume) the model and
optimizer, then for each epoch shuffle, step through minibatches, record the
history and save a checkpoint.  Every epoch's shuffle comes from its own
seed ``(seed, epoch)``, so a run resumed from a checkpoint takes exactly the
steps an uninterrupted run takes.

A checkpoint is checked entry by entry against :data:`CHECKPOINT_SCHEMA`
(keys, shapes, dtypes, values) when it is written and before anything uses
it when it is read: a file that does not hold exactly one valid run is
refused with a :class:`CheckpointError`, never half-loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import numbers
import os
import re
import stat
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format
from tqdm.auto import tqdm

from numclip import distributed as dist
from numclip.backend import array_namespace, as_bool, as_int, as_number, to_numpy
from numclip.data import Dataset, make_dataset
from numclip.model import ENCODERS, LOSSES, TRANSFORMER, TinyCLIP
from numclip.optim import MAX_LOGIT_SCALE, AdamW
from numclip.text import Vocabulary
from numclip.threads import blas_threads_for

__all__ = ["TrainConfig", "TrainState", "train", "make_splits", "check_splits", "SPLITS",
           "check_output_path", "save_checkpoint", "load_checkpoint", "CheckpointError",
           "TrainingDiverged", "CHECKPOINT_SCHEMA", "blas_threads", "DEFAULT_LR"]

CHECKPOINT_FORMAT = "numclip-tiny-clip-v1"
IMAGE_SIZE = 16  # make_splits draws 16 x 16 RGB images
DATASETS = ("shapes", "scenes")  # numclip.data's one kind of object, numclip.scenes' two
# AdamW's step size per encoder: the transformer trains slower at 3e-3 (zero-shot 0.29
# after 4 epochs, against 0.60 at 1e-3) and diverges at 1e-2 (benchmarks/README.md)
DEFAULT_LR = {"linear": 3e-3, "transformer": 1e-3}
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3  # P, the image encoder's input width

# Upper bounds on the sizes, so that a typo such as embed_dim=1000000000 is a clear error
# now instead of a 5.6 TiB allocation later; with every size at its bound a run still fits
# in a few GiB.  name: (bound, what grows with it)
MAX_SIZES = {
    "epochs": (1_000_000, "a bound against typos"),
    "batch_size": (8192, "the loss holds (B, B) float32 matrices, 256 MiB each at 8192"),
    "embed_dim": (1024, "the images span only 768 dimensions; a wider embedding adds memory, "
                        "not capacity"),
    "train_size": (100_000, "293 MiB of pixels, and the linear probe's (n, D) features"),
    "eval_size": (10_000, "recall@1 sorts an (n, n) similarity matrix, 0.8 GiB at 10,000"),
    # not a size, but bounded too: a seed of 5,000 digits would train, then fail to be saved
    "seed": (2**128 - 1, "NumPy's SeedSequence pools 128 bits: a larger seed adds no new run"),
}


def _integer(name: str, value, least: int) -> int:
    """``value`` as an int (:func:`~numclip.backend.as_int`) in ``[least, MAX_SIZES[name]]``."""
    value = as_int(value, name, least)
    most, why = MAX_SIZES.get(name, (None, ""))
    if most is not None and value > most:
        raise ValueError(f"{name} must be at most {most:,} ({why}), got {_shown(value)}")
    return value  # a NumPy integer is now an int: the config must go into JSON


def _shown(number: int) -> str:
    """An int for a message: in full, or its number of digits where it would fill the line."""
    if number < 10**30:
        return f"{number:,}"
    return f"a {math.floor(math.log10(number)) + 1}-digit number"  # str() refuses 4301 digits


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    """``value`` as a plain str among ``choices`` (np.str_("clip") is a str, but not one
    JSON needs)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}, got "
                        f"{type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return str(value)


def _real(name: str, value, *, positive: bool) -> float:
    """``value`` as a finite float (:func:`~numclip.backend.as_number`), > 0 or >= 0."""
    kind = "positive" if positive else "non-negative"
    value = as_number(value, name)  # an int beyond a float's range is inf: refused here
    if not (math.isfinite(value) and (value > 0 or (not positive and value == 0))):
        raise ValueError(f"{name} must be {kind} and finite, got {value}")
    return value


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run computes; stored in every checkpoint.

    Raises:
        TypeError: a field of the wrong type (``lr="a"``), naming the field.
        ValueError: a value out of range (sizes are bounded by :data:`MAX_SIZES`),
            naming the field and what was expected.
    """

    epochs: int = 10  # passes over the training set; longer fits seen compositions harder
    #                   and generalises worse to held-out ones (benchmarks/README.md)
    batch_size: int = 256  # pairs per step; each pair's negatives are the other B - 1
    embed_dim: int = 64  # width D of the shared embedding space
    lr: float | None = None  # AdamW step size; None: DEFAULT_LR of the encoder
    weight_decay: float = 1e-4  # AdamW decoupled decay (not applied to logit_scale)
    train_size: int = 10_000  # training pairs, drawn from the seen compositions
    eval_size: int = 2_000  # test images per split (seen and held-out compositions)
    seed: int = 0  # seeds the data, the initial weights and every epoch's shuffle
    loss: str = "clip"  # "clip" (softmax over the batch) or "siglip" (sigmoid per pair)
    encoder: str = "linear"  # "linear" maps, or "transformer": a small ViT and text
    #                          Transformer (numclip.model.TRANSFORMER), as CLIP's own
    temperature: float | None = None  # None: learned, as CLIP; a number: tau, held fixed
    data: str = "shapes"  # "shapes" (numclip.data) or "scenes" (numclip.scenes: two objects)
    hard_negatives: bool = False  # NegCLIP: each caption's perturbation as an extra negative
    #                               text (scenes only, CLIP loss only)

    def __post_init__(self):
        fix = {name: _integer(name, getattr(self, name), 1)
               for name in ("epochs", "batch_size", "embed_dim", "train_size", "eval_size")}
        fix["seed"] = _integer("seed", self.seed, 0)
        fix["lr"] = None if self.lr is None else _real("lr", self.lr, positive=True)
        fix["weight_decay"] = _real("weight_decay", self.weight_decay, positive=False)
        for name, choices in (("loss", LOSSES), ("encoder", ENCODERS), ("data", DATASETS)):
            fix[name] = _choice(name, getattr(self, name), choices)
        if fix["lr"] is None:
            fix["lr"] = DEFAULT_LR[fix["encoder"]]
        if self.temperature is not None:
            fix["temperature"] = _real("temperature", self.temperature, positive=True)
            if math.log(1 / fix["temperature"]) > MAX_LOGIT_SCALE * (1 + 1e-12):
                raise ValueError(f"temperature must be at least 0.01: training clamps the "
                                 f"scale 1/tau at 100, as CLIP does; got {fix['temperature']:g}")
        fix["hard_negatives"] = as_bool(self.hard_negatives, "hard_negatives")
        if fix["hard_negatives"] and (fix["data"] != "scenes" or fix["loss"] != "clip"):
            raise ValueError("hard_negatives needs data='scenes' (whose captions have "
                             "perturbations to push away) and loss='clip' (NegCLIP's loss), "
                             f"got data={fix['data']!r} and loss={fix['loss']!r}")
        for name, value in fix.items():
            object.__setattr__(self, name, value)  # frozen; the checked, converted values
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2: a contrastive batch needs negatives")
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed "
                             f"train_size ({self.train_size})")
        if self.lr * self.weight_decay >= 1:
            raise ValueError(f"lr * weight_decay must be below 1, got lr={self.lr:g} and "
                             f"weight_decay={self.weight_decay:g}: AdamW multiplies the weights "
                             "by 1 - lr * weight_decay every step; use a smaller lr")


@dataclass
class TrainState:
    """A run in progress: what a checkpoint holds.

    Raises:
        TypeError: a field of the wrong type, naming the field.
        ValueError: parts that do not belong together (a vocabulary of another size than
            the model's ``text_proj``, a history without one entry per epoch, ...).
    """

    config: TrainConfig
    model: TinyCLIP  # image_proj (P, D) with P = NUM_PIXELS and D = config.embed_dim
    optimizer: AdamW
    vocab: Vocabulary  # one row of the model's text_proj per word
    epoch: int = 0  # epochs completed
    history: dict = dataclasses.field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})

    def __post_init__(self):
        for name, kind in (("config", TrainConfig), ("model", TinyCLIP), ("optimizer", AdamW),
                           ("vocab", Vocabulary)):
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise TypeError(f"{name} must be a {kind.__module__}.{kind.__name__}, "
                                f"got {type(value).__name__}")
        self.epoch = as_int(self.epoch, "epoch", 0)
        _check_history(self.history, self.epoch)
        _check_model_fits(self.model, self.config, self.vocab)


def _check_history(history, epoch: int) -> None:
    """One list per name in HISTORY_KEYS, each with one entry per completed epoch."""
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict of lists under {', '.join(HISTORY_KEYS)}, "
                        f"got {type(history).__name__}")
    if set(history) != set(HISTORY_KEYS):
        raise ValueError(f"history must hold exactly {', '.join(HISTORY_KEYS)}, got "
                         f"{', '.join(map(repr, history)) or 'none'}")
    for key in HISTORY_KEYS:
        if not isinstance(history[key], list):
            raise TypeError(f"history[{key!r}] must be a list, got {type(history[key]).__name__}")
        if len(history[key]) != epoch:
            raise ValueError(f"history[{key!r}] must hold one value per epoch ({epoch}), got "
                             f"{len(history[key])}")
        for i, value in enumerate(history[key]):  # what a run measured: finite numbers
            if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
                raise TypeError(f"history[{key!r}][{i}] must be a number, got "
                                f"{type(value).__name__} {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"history[{key!r}][{i}] must be finite, got {value}")


def _check_model_fits(model: TinyCLIP, config: TrainConfig, vocab: Vocabulary) -> None:
    if model.encoder != config.encoder:
        raise ValueError(f"model has {model.encoder!r} encoders, but config.encoder is "
                         f"{config.encoder!r}")
    if model.loss != config.loss:
        raise ValueError(f"model computes the {model.loss!r} loss, but config.loss is "
                         f"{config.loss!r}")
    if model.vocab_size != len(vocab):
        table, rows = (("text_proj", model.vocab_size) if model.encoder == "linear" else
                       ("token_embedding.weight", f"{model.vocab_size} + 2"))
        raise ValueError(f"model does not fit vocab: its {table} has {rows} rows, one per word"
                         f"{'' if model.encoder == 'linear' else ' (and <start>, <end>)'}, "
                         f"but vocab has {len(vocab)} words")
    expected = TinyCLIP.param_shapes(NUM_PIXELS, len(vocab), config.embed_dim, config.loss,
                                     config.encoder)
    for key, shape in expected.items():
        got = tuple(model.params[key].shape)
        if got != tuple(shape):
            raise ValueError(f"model does not fit config: its {key} has shape {got}, "
                             f"expected {tuple(shape)} (pixels {NUM_PIXELS}, embed_dim "
                             f"{config.embed_dim})")


HISTORY_KEYS = ("epoch", "loss", "scale", "accuracy", "zero_shot_seen", "zero_shot_heldout")


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, corrupt, invalid or from another run."""


class TrainingDiverged(ValueError):
    """The loss, a gradient or a parameter became NaN or infinite: the step size is too large."""


def blas_threads(config: TrainConfig):
    """A ``with`` block with the BLAS threads right for a run of ``config`` (numclip.threads).

    The linear model's largest product is a batch of images times the image projection,
    ``(B, P) @ (P, D)`` (the vocabulary, about 30 words, is far narrower than the
    P = 768 pixels): for the defaults 12.6 million multiply-adds, a loop of which runs
    faster on one thread. The transformer's is its MLP over every image token.
    ``train`` uses it; so does the ``numclip`` command around
    the data, the evaluation and the figures.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if config.encoder == "transformer":  # the image MLP's (B tokens, D) @ (D, r D) or the
        tokens = (IMAGE_SIZE // TRANSFORMER["patch_size"]) ** 2 + 1  # qkv's (D, 3D)
        widest = max(3, TRANSFORMER["mlp_ratio"]) * TRANSFORMER["width"] ** 2
        return blas_threads_for(config.batch_size * tokens * widest)
    return blas_threads_for(config.batch_size * NUM_PIXELS * config.embed_dim)


SPLITS = ("train", "seen", "heldout")  # the keys of what make_splits returns


def make_splits(config: TrainConfig) -> dict:
    """The training set and the two test sets (seen and held-out compositions).

    Returns:
        ``{"train": Dataset, "seen": Dataset, "heldout": Dataset}`` of
            ``config.train_size``, ``config.eval_size`` and ``config.eval_size``
            16 x 16 images (:class:`~numclip.scenes.Scenes` for ``config.data="scenes"``).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    make = _dataset_kind(config.data)[1]
    return {
        "train": make(config.train_size, seed=config.seed, compositions="seen",
                      image_size=IMAGE_SIZE),
        "seen": make(config.eval_size, seed=config.seed + 1, compositions="seen",
                     image_size=IMAGE_SIZE),
        "heldout": make(config.eval_size, seed=config.seed + 2, compositions="heldout",
                        image_size=IMAGE_SIZE),
    }


def _dataset_kind(data: str):
    """``(dataset class, maker)`` of ``TrainConfig.data``: numclip.data's or numclip.scenes'."""
    if data == "scenes":
        from numclip.scenes import Scenes, make_scenes  # here: most runs never need it

        return Scenes, make_scenes
    return Dataset, make_dataset


def check_splits(splits, config: TrainConfig | None = None) -> dict:
    """Check that ``splits`` is what :func:`make_splits` returns, and return it.

    ``splits`` must be a dict holding a :class:`~numclip.data.Dataset` (or, for
    ``data="scenes"``, a :class:`~numclip.scenes.Scenes`) of 16 x 16
    images under each of :data:`SPLITS` (other keys are ignored); given ``config``,
    the datasets must also have its sizes (``train_size``, ``eval_size``): the
    checkpoint counts an epoch's steps from ``train_size``.

    Raises:
        TypeError: not a dict, or a split that is not a Dataset.
        ValueError: a split missing, of other images, or of another size than ``config``'s.
    """
    if not isinstance(splits, dict):
        raise TypeError(f"splits must be a dict of Datasets under {', '.join(SPLITS)} (what "
                        f"make_splits returns), got {type(splits).__name__}")
    missing = [key for key in SPLITS if key not in splits]
    if missing:
        raise ValueError(f"splits must hold the datasets {', '.join(map(repr, SPLITS))} (what "
                         f"make_splits returns), missing {', '.join(map(repr, missing))}")
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
    if config is not None:
        data = config.data
    else:  # the kind the training split holds; the test splits must hold the same
        data = "scenes" if isinstance(splits["train"], _dataset_kind("scenes")[0]) else "shapes"
    kind = _dataset_kind(data)[0]
    for key in SPLITS:
        split = splits[key]
        if not isinstance(split, kind):
            raise TypeError(f"splits[{key!r}] must be a {kind.__module__}.{kind.__name__}"
                            f"{' (config.data is ' + repr(config.data) + ')' if config else ''}, "
                            f"got {type(split).__name__}")
        side = split.images.shape[1:3]
        if side != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"splits[{key!r}] must hold {IMAGE_SIZE}x{IMAGE_SIZE} images (as "
                             f"make_splits draws them), got {side[0]}x{side[1]}")
    if config is not None:
        for key, field in (("train", "train_size"), ("seen", "eval_size"),
                           ("heldout", "eval_size")):
            if len(splits[key]) != getattr(config, field):
                raise ValueError(f"splits[{key!r}] holds {len(splits[key])} images but "
                                 f"config.{field} is {getattr(config, field)}; pass "
                                 "make_splits(config)")
    return splits


def new_state(config: TrainConfig, train_set) -> TrainState:
    vocab = Vocabulary.build(train_set.captions)
    model = TinyCLIP.create(train_set.pixels().shape[1], len(vocab), config.embed_dim,
                            seed=config.seed, loss=config.loss, encoder=config.encoder)
    # row 0 is <unk>, which training captions never use: starting it at zero makes an
    # unknown word in a prompt contribute nothing, instead of a random direction
    unknown_row = "text_proj" if config.encoder == "linear" else "token_embedding.weight"
    model.params[unknown_row][0] = 0.0
    if config.temperature is not None:  # held there: _train_epoch never moves it
        model.params["logit_scale"][...] = math.log(1 / config.temperature)
    optimizer = AdamW(lr=config.lr, weight_decay=config.weight_decay)
    return TrainState(config, model, optimizer, vocab)


def train(config: TrainConfig, *, resume: str | Path | None = None,
          out: str | Path | None = None, quiet: bool = False, splits: dict | None = None,
          comm=None):
    """Train (or continue training) the tiny CLIP up to ``config.epochs`` epochs.

    Args:
        config: the run's settings; when resuming, every field but ``epochs``
            must equal the checkpoint's.
        resume: a checkpoint to continue from; it is only read (pass the same
            path as ``out`` to keep saving into it).
        out: where to save a checkpoint after every epoch (atomically); checked
            before any work. When there is no epoch left to train, the resumed
            state is written there once, so that ``out`` always ends up holding the run.
        quiet: no progress bar (it is also off when stderr is not a terminal).
        splits: the output of :func:`make_splits` for ``config``, to avoid regenerating
            it (checked with :func:`check_splits`).
        comm: an MPI communicator (:func:`numclip.distributed.world`) whose ranks
            share every batch (``docs/distributed.md``); None trains in one process.
            Every rank must call ``train`` with the same arguments; only rank 0
            shows a progress bar and writes the checkpoint.

    Returns:
        the final :class:`TrainState`.

    Raises:
        TypeError: ``config``, ``quiet``, ``splits`` or ``comm`` of the wrong type.
        CheckpointError: ``resume`` is not a valid checkpoint of this run.
        ValueError: the checkpoint has trained more than ``config.epochs`` epochs, or
            ``splits`` is not :func:`make_splits`'s for ``config``.
        TrainingDiverged: the loss, a gradient or a parameter became NaN or
            infinite (the last checkpoint written is the last good epoch).
        OSError, ValueError: ``out`` cannot be written (see :func:`check_output_path`).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    quiet = as_bool(quiet, "quiet")
    if splits is not None:
        check_splits(splits, config)
    if comm is not None:
        dist.check_comm(comm)
    out = None if out is None else check_output_path(out)  # fail now, not after an epoch
    rank = 0 if comm is None else comm.Get_rank()
    if comm is not None and (config.loss != "clip" or config.hard_negatives):
        raise ValueError("distributed training implements the CLIP loss only, without hard "
                         f"negatives; got loss={config.loss!r}, "
                         f"hard_negatives={config.hard_negatives}")
    if comm is not None and config.batch_size % comm.Get_size():
        raise ValueError(f"batch_size ({config.batch_size}) must be a multiple of the "
                         f"{comm.Get_size()} ranks that share each batch")
    state = None if resume is None else load_checkpoint(resume, expect=config)
    if state is not None and state.epoch > config.epochs:
        raise ValueError(f"checkpoint {resume} has already trained {state.epoch} epochs, more "
                         f"than config.epochs ({config.epochs}); ask for more epochs")
    splits = make_splits(config) if splits is None else splits
    train_set = splits["train"]
    state = new_state(config, train_set) if state is None else state
    trained_before = state.epoch
    pixels = train_set.pixels()  # (n, P)
    tokens = state.model.text_inputs(state.vocab, train_set.captions)  # (n, V) or (n, L) ids
    negatives = (state.model.text_inputs(state.vocab, train_set.negatives)  # row i: caption i's
                 if config.hard_negatives else None)
    bar = tqdm(range(state.epoch, config.epochs), desc="training", unit="epoch",
               disable=quiet or rank != 0 or not sys.stderr.isatty(), initial=state.epoch,
               total=config.epochs)
    with blas_threads(config):
        for epoch in bar:
            loss, accuracy = _train_epoch(state, epoch, pixels, tokens, comm, negatives)
            record(state, loss=loss, accuracy=accuracy, splits=splits)  # state.epoch + 1
            bar.set_postfix(loss=f"{loss:.3f}", scale=f"{state.history['scale'][-1]:.1f}")
            if out is not None and rank == 0:
                save_checkpoint(out, state)
    if out is not None and rank == 0 and state.epoch == trained_before:  # a finished run
        if not (out.exists() and os.path.samefile(out, resume)):
            save_checkpoint(out, state)  # nothing was left to train; out still gets the run
    return state


def _train_epoch(state: TrainState, epoch: int, pixels, tokens, comm,
                 negatives=None) -> tuple[float, float]:
    """One pass over the training set in the epoch's own shuffle: (mean loss, in-batch top-1).

    ``negatives``: None, or row ``i`` a hard negative of caption ``i`` (NegCLIP): each
    batch's images are also contrasted with its captions' negatives.

    The in-batch top-1 is measured once, on the epoch's last batch after its step: one
    more forward pass per epoch, where one per step cost the transformer CLIP a quarter
    of its training time.
    """
    n, b = len(pixels), state.config.batch_size
    order = np.random.default_rng([state.config.seed, epoch]).permutation(n)
    losses = []
    for start in range(0, n - b + 1, b):  # full batches only: every step sees B - 1 negatives
        idx = order[start:start + b]
        # NumPy's overflow warnings would bury the one message that matters: every step is
        # checked for NaN and inf below, and stops with the epoch, the step and a remedy
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if comm is None:
                hard = () if negatives is None else (negatives[idx],)  # NegCLIP only
                loss, grads = state.model.loss_and_grads(pixels[idx], tokens[idx], *hard)
            else:  # every rank cut the same idx; each computes with its B / R pairs
                mine = dist.shard_rows(idx, comm)
                loss, grads = dist.distributed_loss_and_grads(state.model, pixels[mine],
                                                              tokens[mine], comm)
            if state.config.temperature is not None:  # a fixed tau: no step for the scale
                grads["logit_scale"] = grads["logit_scale"] * 0
            where = f"epoch {epoch + 1}, step {len(losses) + 1} of {n // b}"
            bad = [] if math.isfinite(float(loss)) else ["the loss"]
            bad += [f"the gradient of {k}" for k, g in grads.items() if not _finite(g)]
            if bad:
                raise TrainingDiverged(f"training diverged at {where}: {bad[0]} is not finite; "
                                       f"try a smaller lr than {state.config.lr:g}")
            try:
                state.optimizer.step(state.model.params, grads)
            except ValueError as err:  # AdamW refuses an update that overflows, changing nothing
                if "NaN or infinite" not in str(err):
                    raise
                raise TrainingDiverged(f"training diverged at {where}: {err}") from None
        losses.append(float(loss))
    return float(np.mean(losses)), _in_batch_correct(state.model, pixels[idx], tokens[idx]) / b


def _finite(x) -> bool:
    xp = array_namespace(x)
    return bool(xp.all(xp.isfinite(x)))


def _in_batch_correct(model, pixels, tokens) -> int:
    """How many images in the batch pick their own caption among the batch's captions."""
    sim = model.encode_images(pixels) @ model.encode_texts(tokens).T  # (B, B)
    return int(np.sum(np.argmax(sim, axis=1) == np.arange(sim.shape[0])))


def record(state: TrainState, *, loss: float, accuracy: float, splits: dict) -> None:
    """Count the epoch just trained and append it to the history, including zero-shot
    accuracy on both test splits."""
    from numclip.report import evaluate  # here: the report builds on training, not under it

    zs = evaluate(state, splits, top_k=(1,))  # before the count: a state of whole epochs
    state.epoch += 1
    h = state.history
    h["epoch"].append(state.epoch)
    h["loss"].append(loss)
    h["scale"].append(math.exp(float(state.model.params["logit_scale"])))
    h["accuracy"].append(accuracy)
    h["zero_shot_seen"].append(zs["seen"][1])
    h["zero_shot_heldout"].append(zs["heldout"][1])


# ----------------------------------------------------------------------------- checkpoints

# What a checkpoint holds, entry by entry (each an .npy file in the .npz): its shape in
# named dimensions (pixels: NUM_PIXELS; words: the length of vocab.vocab_words; embed_dim:
# the config's; epochs: the epoch entry), its dtype, the values it may hold, and when it is
# there ("trained": once the optimizer has taken a step).  The rows with <key> stand for
# one entry per model parameter: TinyCLIP.param_shapes for the run's encoder and loss,
# e.g. image_proj (pixels, embed_dim), text_proj (words, embed_dim), logit_scale () and,
# for SigLIP, logit_bias () for the linear encoders.
CHECKPOINT_SCHEMA = (
    # key                          shape                     dtype      values    present
    ("format",                     (),                       "str",     "any",    ""),
    ("config",                     (),                       "str",     "any",    ""),
    ("epoch",                      (),                       "int",     "count",  ""),
    ("opt.step",                   (),                       "int",     "count",  ""),
    ("vocab.vocab_words",          ("words",),               "str",     "any",    ""),
    ("param.<key>",                "the parameter's",        "float32", "finite", ""),
    ("opt.m.<key>",                "the parameter's",        "float32", "finite", "trained"),
    ("opt.v.<key>",                "the parameter's",        "float32", ">= 0",   "trained"),
    ("history.epoch",              ("epochs",),              "float64", "1..E",   ""),
    ("history.loss",               ("epochs",),              "float64", "finite", ""),
    ("history.scale",              ("epochs",),              "float64", "> 0",    ""),
    ("history.accuracy",           ("epochs",),              "float64", "[0, 1]", ""),
    ("history.zero_shot_seen",     ("epochs",),              "float64", "[0, 1]", ""),
    ("history.zero_shot_heldout",  ("epochs",),              "float64", "[0, 1]", ""),
)
MAX_WORDS = 50_000  # bound on the vocabulary read from a file (CLIP's BPE has 49,408 tokens)
MAX_TEXT = 4096  # characters in one stored string (the config's JSON, one word)
_SCHEMA_ROWS = {row[0]: row for row in CHECKPOINT_SCHEMA}
_REQUIRED = [key for key, *_, when in CHECKPOINT_SCHEMA  # in every checkpoint
             if not when and "<key>" not in key]

_DTYPES = {  # dtype name in the schema: (test, what the message says was expected)
    "float32": (lambda d: d.kind == "f" and d.itemsize == 4, "float32"),
    "float64": (lambda d: d.kind == "f" and d.itemsize == 8, "float64"),
    "int": (lambda d: d.kind in "iu" and d.itemsize <= 8, "an integer dtype"),
    "str": (lambda d: d.kind == "U" and d.itemsize <= 4 * MAX_TEXT,
            f"a unicode string of at most {MAX_TEXT} characters"),
}
_VALUES = {  # values rule in the schema: (test, what the message says was expected)
    "any": (lambda a: True, ""),
    "count": (lambda a: np.all(a >= 0), "a count, >= 0"),
    "finite": (lambda a: np.all(np.isfinite(a)), "finite numbers"),
    ">= 0": (lambda a: np.all(np.isfinite(a) & (a >= 0)), "finite numbers >= 0"),
    "> 0": (lambda a: np.all(np.isfinite(a) & (a > 0)), "finite numbers > 0"),
    "[0, 1]": (lambda a: np.all((a >= 0) & (a <= 1)), "fractions in [0, 1]"),
    "1..E": (lambda a: np.array_equal(a, np.arange(1, len(a) + 1)), "1, 2, ..., epochs"),
}


class _SchemaError(ValueError):
    """An entry, or the set of entries, that does not fit CHECKPOINT_SCHEMA."""


class _Corrupt(Exception):
    """Damage found while reading an entry (the message says where)."""


class _Invalid(Exception):
    """A schema violation found while reading: "is incomplete: ..." or "is invalid: ..."."""


def _invalid(err: Exception) -> _Invalid:
    message = _one_line(err)
    return _Invalid(message if message.startswith("is incomplete") else f"is invalid: {message}")


def _expected_keys(config: TrainConfig, step: int) -> list[str]:
    present = {"trained"} if step > 0 else set()
    keys = _param_dims(config)
    return [key.replace("<key>", k) for key, *_, when in CHECKPOINT_SCHEMA
            if set(when.split()) <= present for k in (keys if "<key>" in key else [""])]


def _param_dims(config: TrainConfig) -> dict:
    """Each model parameter's shape, in named dimensions where it depends on the data."""
    if config.encoder == "linear":
        shapes = {"image_proj": ("pixels", "embed_dim"), "text_proj": ("words", "embed_dim"),
                  "logit_scale": ()}
        return shapes | ({"logit_bias": ()} if config.loss == "siglip" else {})
    shapes = TinyCLIP.param_shapes(NUM_PIXELS, 1, config.embed_dim, config.loss,
                                   config.encoder)
    return shapes | {"token_embedding.weight": ("words + 2", TRANSFORMER["width"])}


def _row(key: str, dims: dict | None = None) -> tuple:
    """The schema row of an entry, a parameter's shape filled in from ``dims`` (if given)."""
    if key in _SCHEMA_ROWS:
        return _SCHEMA_ROWS[key]
    prefix = next(p for p in ("param.", "opt.m.", "opt.v.") if key.startswith(p))
    _, _, dtype, values, when = _SCHEMA_ROWS[prefix + "<key>"]
    shape = None if dims is None else dims["params"][key[len(prefix):]]
    return key, shape, dtype, values, when


def _checked_entry(key: str, shape: tuple, dtype: np.dtype, dims: dict) -> tuple:
    """Check an entry's shape and dtype against the schema (before its data is read).

    Binds a dimension the first time it is seen (the vocabulary fixes ``words``) and
    returns the expected shape; a _SchemaError says what is wrong (not naming the file).
    """
    _, want_shape, want_dtype, _, _ = _row(key, dims)
    test, expected = _DTYPES[want_dtype]
    if dtype.hasobject or not test(dtype):  # object arrays are refused before any unpickling
        raise _SchemaError(f"{key} has dtype {dtype}, expected {expected}")
    shape = tuple(shape)
    if len(shape) == len(want_shape) and "words" in want_shape and "words" not in dims:
        n = shape[want_shape.index("words")]
        if not 1 <= n <= MAX_WORDS:
            raise _SchemaError(f"{key} holds {n} words, expected 1 to {MAX_WORDS:,}")
        dims["words"], dims["words + 2"] = n, n + 2
    want = tuple(dims.get(dim, -1) if isinstance(dim, str) else dim for dim in want_shape)
    if shape != want:
        text = ", ".join(str(dims.get(dim, dim)) for dim in want_shape)
        text = f"({text},)" if len(want_shape) == 1 else f"({text})"
        names = [dim for dim in want_shape if isinstance(dim, str)]
        named = f" ({', '.join(map(str, want_shape))})" if names else ""
        raise _SchemaError(f"{key} has shape {shape}, expected {text}{named}")
    return want


def _checked_values(key: str, array: np.ndarray) -> np.ndarray:
    test, expected = _VALUES[_row(key)[3]]
    if not test(array):
        raise _SchemaError(f"{key} must hold {expected}")
    return array


def check_output_path(path: str | os.PathLike) -> Path:
    """Check that a checkpoint can be written to ``path`` before any work is done.

    The check is the real thing: it creates and removes the temporary file
    ``.<name>.tmp`` that :func:`save_checkpoint` writes first, so a folder that
    refuses files (read-only, ``/proc``, a full disk's quota) fails now, not after
    an epoch of training.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``path`` is not a str or path.
        ValueError: ``path`` is the empty string, holds a NUL character, or exists
            and is not a regular file.
        IsADirectoryError: ``path`` is a directory.
        FileNotFoundError: its folder does not exist.
        NotADirectoryError: what should be its folder is a file.
        OSError: no file can be created in its folder (PermissionError where it
            is not writable); the message names ``path`` and the folder.
    """
    path = _output_path(path)
    tmp = _temp_file(path)
    try:
        tmp.unlink(missing_ok=True)  # left by a killed save; save_checkpoint removes it too
        tmp.open("xb").close()
        tmp.unlink()
    except OSError as err:
        raise _os_error(err, f"cannot write checkpoint {path}: no file can be created in "
                             f"folder {path.parent} ({_reason(err)})") from None
    return path


def _output_path(path) -> Path:
    """``path`` as a Path, after the checks that need no file to be created."""
    text = _path_text(path, "checkpoint path", ValueError)
    if text == "":
        raise ValueError("checkpoint path is empty; name a file such as run.npz")
    path = Path(text)
    try:
        if path.is_dir():
            raise IsADirectoryError(f"cannot write checkpoint {path}: it is a directory; name "
                                    f"a file in it, such as {path / 'run.npz'}")
        if path.exists() and not path.is_file():
            raise ValueError(f"cannot write checkpoint {path}: it exists and is not a regular "
                             "file")
        folder = next(p for p in (path.parent, *path.parent.parents)
                      if p.exists() or p == p.parent)
        if not folder.is_dir():
            raise NotADirectoryError(f"cannot write checkpoint {path}: {folder} is a file, "
                                     "not a folder")
    except OSError as err:
        if err.errno is None:  # one of the errors just above, already worded
            raise
        raise _os_error(err, f"cannot write checkpoint {path} ({_reason(err)})") from None
    if folder != path.parent:
        raise FileNotFoundError(f"cannot write checkpoint {path}: folder {path.parent} "
                                "does not exist")
    return path


def _path_text(path, what: str, error: type[ValueError]) -> str:
    """``path`` (a str or an os.PathLike) as a str that a file name can be."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{what} must be a str or a path, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str or a path, got a {type(path).__name__} that "
                        f"names a file in {type(text).__name__}")
    if "\0" in text:
        raise error(f"{what} {text!r} contains a NUL character (\\0), which no file name "
                    "can hold")
    return text


def _temp_file(path: Path) -> Path:
    """Where :func:`save_checkpoint` writes before the rename: ``.<name>.tmp`` beside it."""
    return path.with_name(f".{path.name}.tmp")


def _reason(err: OSError) -> str:
    return err.strerror or _one_line(err)


def _os_error(err: OSError, message: str) -> OSError:
    """An error of ``err``'s kind (PermissionError, ...) and errno, with ``message``."""
    kind = type(err) if type(err).__module__ == "builtins" else OSError
    new = kind(message)
    new.errno = err.errno  # without strerror, str(new) stays the message
    return new


def save_checkpoint(path: str | os.PathLike, state: TrainState) -> None:
    """Write ``state`` to ``path`` (.npz) atomically: a temporary file, then a rename.

    An interrupted save leaves the previous checkpoint intact, never half a file.
    The temporary file is ``.<name>.tmp`` beside ``path``: a save that is killed
    before the rename leaves it there, and the next save replaces it. A new
    checkpoint gets the permissions the umask gives; one that is replaced keeps its own.

    Raises:
        CheckpointError: ``state`` does not fit :data:`CHECKPOINT_SCHEMA` (for example
            NaN parameters); nothing is written.
        OSError, ValueError: ``path`` cannot be written (see :func:`check_output_path`);
            the message names ``path``, and the file there, if any, is unchanged.
    """
    path = _output_path(path)
    arrays = _to_arrays(state)
    try:
        _check_arrays(arrays)
    except ValueError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err}") from None
    tmp = _temp_file(path)
    try:
        _remove_stale_temp_files(path)
        tmp.unlink(missing_ok=True)  # left by a save that was killed; "xb" never follows it
        with open(tmp, "xb") as f:  # open(), not mkstemp: the mode the umask gives, not 0600
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        if path.is_file():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):  # its own message names only the temporary file
            raise _os_error(err, f"cannot write checkpoint {path} ({_reason(err)}); the file "
                                 "there, if any, is unchanged") from None
        raise


def _remove_stale_temp_files(path: Path) -> None:
    """Remove what older numclips' killed saves left: ``.<name>.<8 random chars>.tmp``."""
    stale = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    for p in path.parent.glob(f".{path.name}.*.tmp"):
        if stale.fullmatch(p.name) and p.is_file():
            p.unlink(missing_ok=True)


def _to_arrays(state: TrainState) -> dict:
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState, got {type(state).__name__}")
    opt = dict(state.optimizer.state)
    arrays = {"format": np.asarray(CHECKPOINT_FORMAT),
              "config": np.asarray(json.dumps(dataclasses.asdict(state.config))),
              "epoch": np.asarray(state.epoch, dtype=np.int64),
              "opt.step": np.asarray(opt.pop("step", 0), dtype=np.int64)}
    arrays |= {f"param.{k}": to_numpy(v) for k, v in state.model.params.items()}
    arrays |= {f"opt.{k}": to_numpy(v) for k, v in opt.items()}
    arrays |= {f"vocab.{k}": v for k, v in state.vocab.to_arrays().items()}
    arrays |= {f"history.{k}": np.asarray(v, dtype=np.float64) for k, v in state.history.items()}
    return arrays


def _check_arrays(arrays: dict) -> None:
    """Check a whole checkpoint's arrays against the schema; ValueError with the problem."""
    config = _config_from(arrays["config"])
    expected = _expected_keys(config, int(arrays["opt.step"]))
    _check_keys(set(arrays), expected)
    dims = _dims(config, int(arrays["epoch"]))
    for key in expected:
        _checked_entry(key, arrays[key].shape, arrays[key].dtype, dims)
        _checked_values(key, arrays[key])
    _check_counts(config, int(arrays["epoch"]), int(arrays["opt.step"]))


def _config_from(array: np.ndarray) -> TrainConfig:
    try:
        fields = json.loads(str(array))
        if not isinstance(fields, dict):
            raise TypeError(f"a JSON object of TrainConfig fields, got {type(fields).__name__}")
        return TrainConfig(**fields)
    except (ValueError, TypeError, RecursionError) as err:
        raise _SchemaError(f"its config is not a valid TrainConfig ({_one_line(err)})") from None


def _dims(config: TrainConfig, epoch: int) -> dict:
    return {"pixels": NUM_PIXELS, "embed_dim": config.embed_dim, "epochs": epoch,
            "params": _param_dims(config)}


def _check_keys(present: set, expected: list, extra_ok: bool = False) -> None:
    missing = [k for k in expected if k not in present]
    if missing:
        raise _SchemaError(f"is incomplete: missing {', '.join(missing)}")
    if extra_ok:
        return
    unexpected = sorted(present - set(expected))
    if unexpected:
        raise _SchemaError(f"it holds entries no checkpoint has: {', '.join(unexpected)}")


def _check_counts(config: TrainConfig, epoch: int, step: int) -> None:
    """The epoch and step counters agree with each other and with the config."""
    if epoch > config.epochs:
        raise _SchemaError(f"epoch is {epoch}, more than the config's epochs ({config.epochs})")
    per_epoch = config.train_size // config.batch_size
    if step != epoch * per_epoch:
        raise _SchemaError(f"opt.step is {step}, but {epoch} epochs of {per_epoch} steps take "
                         f"{epoch * per_epoch}")


def load_checkpoint(path: str | os.PathLike, expect: TrainConfig | None = None) -> TrainState:
    """Read a checkpoint written by :func:`save_checkpoint`; never writes anything.

    Every entry is checked against :data:`CHECKPOINT_SCHEMA` (its presence, its
    shape and dtype from the ``.npy`` header before its data is read, then its
    values) and the zip's CRC-32 of every entry is verified.

    Args:
        path: the ``.npz`` file.
        expect: if given, the checkpoint's config must match it in every field
            but ``epochs`` (the number of epochs to train up to).

    Raises:
        TypeError: ``path`` is not a str or path, or ``expect`` not a TrainConfig.
        CheckpointError: a missing, unreadable, truncated, corrupt, invalid or
            mismatched file (or a path no file can have: empty, or with a NUL
            character), in one line that names the file and the problem.
    """
    if expect is not None and not isinstance(expect, TrainConfig):
        raise TypeError(f"expect must be a TrainConfig or None, got {type(expect).__name__}")
    text = _path_text(path, "checkpoint path", CheckpointError)
    if text == "":
        raise CheckpointError("checkpoint path is empty; name a .npz file")
    path = Path(text)
    try:
        if path.is_dir():
            raise CheckpointError(f"checkpoint {path} is a directory, not a file")
        if not path.exists():
            raise CheckpointError(f"checkpoint {path} does not exist")
    except OSError as err:  # a folder on the way that cannot be searched
        raise CheckpointError(f"checkpoint {path} cannot be read ({_reason(err)})") from None
    try:
        config, arrays = _read_checkpoint(path)
        state = _state_from_arrays(config, arrays)
    except CheckpointError:
        raise
    except MemoryError:
        raise  # the machine's, not the file's: every size was checked before it was read
    except _Invalid as err:
        raise CheckpointError(f"checkpoint {path} {_one_line(err)}") from None
    except _Corrupt as err:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({err})") from None
    except OSError as err:
        if err.errno is None:  # zipfile reports some damage as a bare OSError
            raise CheckpointError(f"checkpoint {path} is truncated or corrupt "
                                  f"({_one_line(err)})") from None
        raise CheckpointError(f"checkpoint {path} cannot be read ({err.strerror})") from None
    except Exception as err:  # any failure of the zip or .npy layer: a damaged file
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt "
                              f"({type(err).__name__}: {_one_line(err)})") from None
    if expect is not None:
        _check_same_run(path, config, expect)
        state.config = expect
    return state


def _read_checkpoint(path: Path) -> tuple[TrainConfig, dict]:
    """Every entry of the checkpoint at ``path``, checked against the schema."""
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(f"{path} is not a numclip checkpoint (not an .npz file: it "
                                  "does not begin like a zip archive)")
    size = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        members = zf.namelist()
        if "format.npy" not in members:
            raise CheckpointError(f"{path} is not a numclip checkpoint (it has no format entry)")
        if len(set(members)) != len(members):
            raise _Invalid("is invalid: it holds the same entry twice")
        if any(not m.endswith(".npy") for m in members):
            raise _Invalid(f"is invalid: it holds files that are not .npy arrays: "
                           f"{', '.join(m for m in members if not m.endswith('.npy'))}")
        present = {m.removesuffix(".npy") for m in members}
        dims = {}

        def read(key):
            try:
                return _checked_values(key, _read_entry(zf, key, dims, size))
            except _SchemaError as err:
                raise _invalid(err) from None

        try:
            fmt = _read_entry(zf, "format", dims, size)
        except _SchemaError:
            fmt = None
        if fmt is None or str(fmt) != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a numclip checkpoint (format "
                                  f"{'unreadable' if fmt is None else repr(str(fmt))}, "
                                  f"expected {CHECKPOINT_FORMAT!r})")
        try:  # the entries every checkpoint has first, then those its config asks for
            _check_keys(present, _REQUIRED, extra_ok=True)
            arrays = {"format": fmt, "config": read("config")}
            config = _config_from(arrays["config"])
            arrays |= {key: read(key) for key in ("epoch", "opt.step")}
            epoch, step = int(arrays["epoch"]), int(arrays["opt.step"])
            expected = _expected_keys(config, step)
            _check_keys(present, expected)
            _check_counts(config, epoch, step)
        except _SchemaError as err:
            raise _invalid(err) from None
        dims |= _dims(config, epoch)
        arrays |= {key: read(key) for key in expected if key not in arrays}
    return config, arrays


def _read_entry(zf: zipfile.ZipFile, key: str, dims: dict, archive_size: int) -> np.ndarray:
    """Read one ``.npy`` entry, checking its header against the schema before its data.

    A header that claims a huge shape is refused before anything is allocated, and
    every byte of the entry is read, so that the zip's CRC-32 is always checked.
    """
    info = zf.getinfo(f"{key}.npy")
    if info.header_offset + info.compress_size > archive_size:
        raise _Corrupt(f"{key} claims {info.compress_size} bytes, more than the file holds")
    with zf.open(info) as f:
        version = npy_format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise _Corrupt(f"{key} is in .npy format version {version}, expected 1.0 or 2.0")
        read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                       else npy_format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(f)
        shape = _checked_entry(key, shape, dtype, dims)
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != f.tell() + nbytes:
            raise _Corrupt(f"{key} holds {info.file_size - f.tell()} bytes of data, its "
                             f"header promises {nbytes}")
        data = f.read(nbytes)  # reading the last byte checks the CRC-32
        if len(data) != nbytes or f.read(1):
            raise _Corrupt(f"{key} is truncated")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return array.astype(dtype.newbyteorder("="))  # a native-order, writable copy


def _state_from_arrays(config: TrainConfig, arrays: dict) -> TrainState:
    def group(prefix):
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    try:
        vocab = Vocabulary.from_arrays(group("vocab."))
    except (KeyError, TypeError, ValueError) as err:
        raise _Invalid(f"is invalid: vocab.vocab_words is not a valid vocabulary "
                       f"({_one_line(err)})") from None
    opt_state = group("opt.") | {"step": int(arrays["opt.step"])}
    optimizer = AdamW(lr=config.lr, weight_decay=config.weight_decay, state=opt_state)
    history = {k: v.tolist() for k, v in group("history.").items()}
    history["epoch"] = [int(e) for e in history["epoch"]]
    return TrainState(config, TinyCLIP(group("param."), config.loss, config.encoder), optimizer,
                      vocab, int(arrays["epoch"]), history)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _check_same_run(path, saved: TrainConfig, expect: TrainConfig) -> None:
    diff = [f"{f.name}: checkpoint {getattr(saved, f.name)!r}, asked {getattr(expect, f.name)!r}"
            for f in dataclasses.fields(TrainConfig)
            if f.name != "epochs" and getattr(saved, f.name) != getattr(expect, f.name)]
    if diff:
        raise CheckpointError(f"checkpoint {path} is from a different run: " + "; ".join(diff))
