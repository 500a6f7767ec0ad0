"""What a trained tiny CLIP can do: zero-shot accuracy, retrieval, a linear probe, figures.

Every function checks its arguments before it computes anything (a
:class:`~numclip.train.TrainState`, the splits :func:`~numclip.train.make_splits`
returns, ks, prompt templates, a folder, a model) and raises a ``TypeError``
or ``ValueError`` (``OSError`` for a folder that cannot be written) that names
the argument and says what was expected.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from numclip.backend import as_int
from numclip.data import CLASSES, COLORS, HELDOUT, class_name
from numclip.model import TinyCLIP
from numclip.text import as_texts
from numclip.train import TrainState, check_splits
from numclip.zeroshot import (
    PROMPT_TEMPLATES,
    chance,
    check_template,
    class_embeddings,
    linear_probe,
    recall_at_k,
    top_k_accuracy,
    zero_shot_scores,
)

__all__ = ["evaluate", "zero_shot_metrics", "checkpoint_metrics", "final_metrics",
           "write_plots"]


def class_names() -> list[str]:
    return [class_name(c) for c in range(len(CLASSES))]


def evaluate(state, splits: dict, templates=None, top_k=(1, 5)) -> dict:
    """Zero-shot top-k accuracy among all classes, per test split: ``{split: {k: acc}}``.

    Args:
        state: a :class:`~numclip.train.TrainState`.
        splits: what :func:`~numclip.train.make_splits` returns.
        templates: a list of prompt templates, each with one ``{}`` (a lone str is
            refused, not split into letters); None means
            :data:`numclip.zeroshot.PROMPT_TEMPLATES`.
        top_k: the ks, ints from 1 to the number of classes (``(1, 5)``, a NumPy array);
            they come back as Python ints.
    """
    _check_state(state)
    check_splits(splits)
    templates, top_k = _as_templates(templates), _as_top_k(top_k)
    class_embeds = class_embeddings(state.model, state.vocab, class_names(), templates)
    result = {}
    for split in ("seen", "heldout"):
        scores = zero_shot_scores(state.model, splits[split].pixels(), class_embeds)
        result[split] = {k: top_k_accuracy(scores, splits[split].labels, k) for k in top_k}
    return result


def zero_shot_metrics(state, splits: dict, templates=None) -> dict:
    """What the prompt templates decide: zero-shot top-1 and top-5 accuracy on both splits.

    Args:
        state, splits, templates: as for :func:`evaluate`.
    """
    templates = _as_templates(templates)  # once: a generator cannot be read twice
    zs = evaluate(state, splits, templates)
    return {
        "templates": templates,
        "classes": len(CLASSES),
        "chance": chance(len(CLASSES)),
        "zero_shot_seen": zs["seen"][1],
        "zero_shot_seen_top5": zs["seen"][5],
        "zero_shot_heldout": zs["heldout"][1],
        "zero_shot_heldout_top5": zs["heldout"][5],
    }


def checkpoint_metrics(state) -> dict:
    """What the trained state holds and no prompt changes: epochs, final loss, scale (and bias).

    Args:
        state: a :class:`~numclip.train.TrainState`.
    """
    _check_state(state)
    params = state.model.params
    return {
        "epochs": state.epoch,
        "final_loss": state.history["loss"][-1] if state.history["loss"] else None,
        "scale": float(np.exp(float(params["logit_scale"]))),
    } | ({"bias": float(params["logit_bias"])} if "logit_bias" in params else {})


def final_metrics(state, splits: dict, templates=None) -> dict:
    """The numbers ``numclip train`` ends with: zero-shot, a linear probe, retrieval, the scale.

    Args:
        state, splits, templates: as for :func:`evaluate`.
    """
    zs = zero_shot_metrics(state, splits, templates)  # checks all three first
    seen, train_set = splits["seen"], splits["train"]
    model, vocab = state.model, state.vocab
    test_images = model.encode_images(seen.pixels())
    same_caption = seen.labels * 4 + seen.counts  # one id per (colour, shape, count)
    recall = recall_at_k(test_images, model.encode_texts(vocab.features(seen.captions)), k=1,
                         labels=same_caption)
    saved = checkpoint_metrics(state)
    return {
        "epochs": saved.pop("epochs"),
        **{k: zs[k] for k in ("classes", "zero_shot_seen", "zero_shot_seen_top5",
                              "zero_shot_heldout", "zero_shot_heldout_top5")},
        "linear_probe": linear_probe(model.encode_images(train_set.pixels()), train_set.labels,
                                     test_images, seen.labels, num_classes=len(CLASSES)),
        "chance": zs["chance"],
        "recall@1_image_to_text": recall["image_to_text"],  # a caption with its attributes
        "recall@1_text_to_image": recall["text_to_image"],
        **saved,
    }


def write_plots(state, splits: dict, folder, initial_model) -> list[Path]:
    """Save the four figures of a run into ``folder`` and return their paths.

    Args:
        state: the trained :class:`numclip.train.TrainState`.
        splits: the output of :func:`numclip.train.make_splits`.
        folder: a str or path: where the PNGs go (created if missing).
        initial_model: the model before training, for the "before" heatmap: a
            :class:`~numclip.model.TinyCLIP` of the trained model's shapes.

    Raises:
        TypeError, ValueError: a bad argument (the message names it).
        OSError: ``folder`` cannot be created or written; checked before any figure
            is drawn.
    """
    _check_state(state)
    check_splits(splits)
    _check_initial_model(initial_model, state.model)
    folder = _plots_folder(folder)

    import matplotlib.pyplot as plt  # here, so that metrics never need matplotlib

    from numclip import plot

    seen, heldout, vocab = splits["seen"], splits["heldout"], state.vocab
    names = class_names()
    paths = [folder / name for name in ("history.png", "similarity.png", "embeddings.png",
                                         "confusion.png")]
    figures = [plot.plot_history(state.history, paths[0], batch_size=state.config.batch_size,
                                 num_classes=len(names))]

    batch = slice(0, 12)  # one small batch of test pairs, as a heatmap can show it
    pixels, texts = seen.pixels()[batch], vocab.features(seen.captions[batch])
    before, after = (m.encode_images(pixels) @ m.encode_texts(texts).T
                     for m in (initial_model, state.model))
    figures.append(plot.plot_similarity(before, after, seen.captions[batch], paths[1],
                                        value_label="cosine similarity"))

    class_embeds = class_embeddings(state.model, vocab, names)
    images = np.concatenate([seen.pixels()[:400], heldout.pixels()[:200]])
    labels = np.concatenate([seen.labels[:400], heldout.labels[:200]])
    colour = [COLORS[color] for color, _ in CLASSES]
    figures.append(plot.plot_embeddings(state.model.encode_images(images), class_embeds,
                                        labels, np.arange(len(names)), names, paths[2],
                                        color_of=colour))

    true = np.concatenate([seen.labels, heldout.labels])
    scores = np.concatenate([zero_shot_scores(state.model, seen.pixels(), class_embeds),
                             zero_shot_scores(state.model, heldout.pixels(), class_embeds)])
    confusion = plot.confusion_matrix(true, np.argmax(scores, axis=1), len(names))
    held = [CLASSES.index(c) for c in HELDOUT]
    figures.append(plot.plot_confusion(confusion, names, paths[3], highlight=held))
    for fig in figures:
        plt.close(fig)  # a CLI run must not pile up open figures
    return paths


# ----------------------------------------------------------------------------- validators

def _check_state(state) -> None:
    if not isinstance(state, TrainState):
        raise TypeError("state must be a numclip.train.TrainState (what train() or "
                        f"load_checkpoint() returns), got {type(state).__name__}")


def _as_templates(templates) -> list[str]:
    """``templates`` as a list of checked templates; None: PROMPT_TEMPLATES."""
    if templates is None:
        return list(PROMPT_TEMPLATES)
    return [check_template(t) for t in as_texts(templates, "templates")]  # a lone str refused


def _as_top_k(top_k) -> tuple[int, ...]:
    """``top_k`` as a tuple of Python ints in ``[1, number of classes]``."""
    if isinstance(top_k, str | bytes) or not isinstance(top_k, Iterable):
        wrap = f"; wrap it: ({top_k},)" if isinstance(top_k, int | np.integer) else ""
        raise TypeError(f"top_k must be a sequence of ints such as (1, 5), got "
                        f"{type(top_k).__name__} {top_k!r}{wrap}")
    top_k = tuple(as_int(k, f"top_k[{i}]", 1, len(CLASSES)) for i, k in enumerate(top_k))
    if not top_k:
        raise ValueError("top_k must hold at least one k, such as (1, 5); got none")
    return top_k


def _check_initial_model(initial_model, model: TinyCLIP) -> None:
    if not isinstance(initial_model, TinyCLIP):
        raise TypeError("initial_model must be a TinyCLIP (the model before training, such as "
                        f"numclip.train.new_state(config, splits['train']).model), "
                        f"got {type(initial_model).__name__}")

    def shapes(m):
        return ", ".join(f"{k} {tuple(v.shape)}" for k, v in sorted(m.params.items()))

    if shapes(initial_model) != shapes(model):
        raise ValueError(f"initial_model must have the trained model's shapes ({shapes(model)}), "
                         f"got {shapes(initial_model)}")


def _plots_folder(folder) -> Path:
    """``folder`` as a Path to a folder that exists (created) and takes new files."""
    text = os.fspath(folder) if isinstance(folder, os.PathLike) else folder
    if not isinstance(text, str):
        raise TypeError(f"folder must be a str or a path, got {type(folder).__name__}")
    if text == "":  # Path("") is the current folder: four PNGs where nobody asked
        raise ValueError("folder is empty; name a folder for the figures, such as plots")
    if "\0" in text:
        raise ValueError(f"folder {text!r} contains a NUL character (\\0), which no folder "
                         "name can hold")
    folder = Path(text)
    above = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    if above == folder and not folder.is_dir():
        raise NotADirectoryError(f"folder {folder} is a file, not a folder for the figures")
    if not above.is_dir():
        raise NotADirectoryError(f"cannot create the folder {folder} for the figures: "
                                 f"{above} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()  # the one sure test that files can go in
    except OSError as err:
        raise type(err)(f"cannot write the figures into folder {folder} "
                        f"({err.strerror or err})") from None
    return folder
