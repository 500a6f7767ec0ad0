"""Figures for the notebooks and docs: training curves, similarity heatmaps, embeddings, confusion.

Every ``plot_*`` function returns the :class:`matplotlib.figure.Figure` and, given
``path``, also saves it there (PNG at 120 dpi; parent folders are created);
:func:`write_plots` saves all four for a trained run (``numclip train --plots``).
Nothing here calls ``plt.show()`` or ``matplotlib.use()``, and only ``write_plots``
closes the figures it made.

Why pyplot (``plt.subplots``) and not a bare ``Figure()``: in Jupyter only a figure
made through pyplot reaches the inline backend, which is what draws it under the
cell (a bare ``Figure`` shows up as ``<Figure size ...>`` text).  In a headless
script pyplot falls back to the Agg backend by itself when no display is
available, so nothing has to be forced at import time.  One Jupyter wrinkle: a
cell whose *last expression* is the returned figure shows it twice (once as the
cell's value, once as an open pyplot figure); write ``fig = plot_history(h)`` or
end the line with ``;``.  A script that draws many figures can ``plt.close(fig)``
each one after saving.

Inputs may be NumPy arrays, lists, or arrays of another backend (CuPy, ...):
they are copied to the host with :func:`numclip.backend.as_numpy` first.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import LogLocator, MaxNLocator

from numclip.backend import as_numpy
from numclip.data import CLASSES, COLORS, HELDOUT
from numclip.model import INIT_LOGIT_SCALE, TinyCLIP
from numclip.optim import MAX_LOGIT_SCALE
from numclip.report import SCENE_CLASSES, check_state, class_names
from numclip.text import as_texts
from numclip.train import check_splits
from numclip.zeroshot import class_embeddings, zero_shot_scores

__all__ = ["plot_history", "plot_similarity", "plot_embeddings", "plot_confusion",
           "confusion_matrix", "write_plots"]

DPI = 120
SCALE_CLAMP = math.exp(MAX_LOGIT_SCALE)  # the clamp of exp(logit_scale) after each step: 100
SCALE_INIT = math.exp(INIT_LOGIT_SCALE)  # where TinyCLIP starts: 1/0.07 ≈ 14.29
ANNOTATE_UP_TO = 12  # name classes on the plot itself only while the labels cannot crowd
CAPTION_TICKS_UP_TO = 16  # caption tick labels only while they still fit next to the cells
CAPTION_CHARS = 44  # numclip's longest caption: longer ones keep their first words
OUTLINE_DIAGONAL_UP_TO = 32  # beyond this the cells are too small to draw a box around

# Accuracy series a history may carry besides the in-batch accuracy, with their legend text.
ACCURACY_SERIES = {
    "accuracy": "in-batch top-1 (last batch)",
    "zero_shot_seen": "zero-shot top-1, seen compositions",
    "zero_shot_heldout": "zero-shot top-1, held-out compositions",
}
# Why in-batch top-1 sits far below zero-shot (about 0.35 and 0.98 for numclip train): an
# image cannot tell its own caption from another of the same colours, shapes and count.
ACCURACY_NOTE = "in-batch < zero-shot: a batch often holds other captions that fit the image"


def plot_history(history: dict, path=None, *, batch_size: int | None = None,
                 num_classes: int | None = None) -> Figure:
    """Training curves: the loss, the learned scale ``exp(logit_scale)`` and accuracies per epoch.

    Args:
        history: a dict of equal-length sequences, one entry per epoch (length E):
            ``"epoch"`` ``(E,)`` epoch numbers; ``"loss"`` ``(E,)`` mean training loss;
            ``"scale"`` ``(E,)`` ``exp(logit_scale)`` at the end of the epoch;
            ``"accuracy"`` ``(E,)`` in-batch image→text top-1 accuracy in ``[0, 1]`` (of each
            epoch's last batch).
            Optional ``"zero_shot_seen"`` and ``"zero_shot_heldout"`` ``(E,)`` (and any
            other ``"zero_shot_*"`` key) are drawn on the accuracy panel too; ``None`` or
            NaN marks an epoch where that series was not measured.
        path: where to save the figure (PNG), or ``None``.
        batch_size: the training batch size ``B``, an int >= 2: the in-batch legend then
            says how many captions each image was told apart from (``B - 1`` negatives).
        num_classes: the number of classes ``C`` of the zero-shot series, an int >= 2,
            named in their legend.  In-batch and zero-shot top-1 are different tasks (the
            image's own caption among the batch's, its class among ``C`` prompts); the
            legend's title says why the two sit far apart.

    Returns:
        The figure, with three axes: loss (on a log axis, said in its label, when every
            loss is positive), scale, accuracy.
    """
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict, got {type(history).__name__}")
    missing = [key for key in ("epoch", "loss", "scale", "accuracy") if key not in history]
    if missing:
        raise ValueError(f"history lacks the key(s) {missing}; it needs epoch, loss, scale "
                         "and accuracy")
    _count_or_none(batch_size, "batch_size")
    _count_or_none(num_classes, "num_classes")
    epoch = _vector(history["epoch"], "history['epoch']")
    accuracy_keys = [key for key in history
                     if key in ACCURACY_SERIES or key.startswith("zero_shot_")]
    series = {key: _vector(history[key], f"history[{key!r}]", len(epoch), allow_nan=True)
              for key in ["loss", "scale", *accuracy_keys]}

    # loss and scale side by side, accuracy under them at full width: the figure fits a page
    # column (about 9 in) without shrinking its words
    fig, axd = plt.subplot_mosaic([["loss", "scale"], ["acc", "acc"]], figsize=(8.8, 7.6),
                                  layout="constrained")
    ax_loss, ax_scale, ax_acc = axd["loss"], axd["scale"], axd["acc"]
    ax_loss.plot(epoch, series["loss"], marker="o", markersize=3)
    log = bool(np.nanmin(series["loss"]) > 0)  # a log axis shows the late, slow decrease too
    if log:
        ax_loss.set_yscale("log")
        _plain_log_ticks(ax_loss)
    ax_loss.set(title="Training loss", xlabel="epoch",
                ylabel="mean symmetric CLIP loss" + (" (log scale)" if log else ""))

    ax_scale.plot(epoch, series["scale"], marker="o", markersize=3)
    # the reference lines are named where they are drawn: a legend box would cover the curve
    initial = f"initial 1/{1 / SCALE_INIT:.2g} ≈ {SCALE_INIT:.2f}"  # 1/τ
    for value, style, text, x, ha in ((SCALE_CLAMP, "--", f"clamp at {SCALE_CLAMP:.0f}", 0.02,
                                       "left"), (SCALE_INIT, ":", initial, 0.98, "right")):
        ax_scale.axhline(value, color="0.4", linestyle=style, linewidth=1.2)
        ax_scale.text(x, value, text, transform=ax_scale.get_yaxis_transform(), ha=ha,
                      va="bottom", fontsize=9, color="0.3")
    ax_scale.set_ylim(0, 1.12 * max(SCALE_CLAMP, np.nanmax(series["scale"])))
    ax_scale.set(title="Learned scale = 1/temperature", xlabel="epoch",
                 ylabel="exp(logit_scale)")

    for key in accuracy_keys:
        label = _accuracy_label(key, batch_size, num_classes)
        measured = np.isfinite(series[key])  # join the epochs where it was measured
        ax_acc.plot(epoch[measured], series[key][measured], marker="o", markersize=3,
                    label=label)
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="top-1 accuracy")
    # below the panel: inside, the legend would cover a curve at one height or another
    legend = ax_acc.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8,
                           title=ACCURACY_NOTE, title_fontsize=8, frameon=False)
    legend.get_title().set_fontstyle("italic")
    for ax in (ax_loss, ax_scale, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_similarity(before, after, captions=None, path=None, *,
                    value_label="similarity") -> Figure:
    """Two heatmaps of one batch's image×text similarities, before and after training.

    Row ``i`` is image ``i``, column ``j`` is text ``j``; the diagonal holds the
    matching pairs (outlined in red for small batches), so training should make it
    stand out.  Each panel has its own colour bar, because the scale grows in training.

    Args:
        before: ``(N, N)`` logits or cosine similarities of the batch before training.
        after: ``(N, N)`` the same batch after training.
        captions: optional ``N`` strings, caption ``i`` belonging to image ``i``.  When
            ``N <= 16`` they label the rows of the first panel, each followed by its
            number, which labels the columns (and the second panel's rows).  Words that
            all captions start or end with ("a photo of a", "on a black background") are
            dropped and named in the title; a label longer than 44 characters keeps its
            first words.
        path: where to save the figure (PNG), or ``None``.
        value_label: colour-bar label, e.g. ``"logit"`` or ``"cosine similarity"``.

    Returns:
        The figure, with two heatmap axes and their two colour-bar axes.
    """
    before = _float_array(before, "before", ndim=2)
    after = _float_array(after, "after", ndim=2)
    _check_str(value_label, "value_label")
    if before.shape[0] != before.shape[1]:
        raise ValueError(f"before must be square (N, N), images × their texts, "
                         f"got shape {before.shape}")
    if after.shape != before.shape:
        raise ValueError(f"after must have the shape of before, {before.shape}, "
                         f"got {after.shape}")
    n = before.shape[0]
    labels, dropped = _short_captions(captions, n)

    # with captions, the two heatmaps are stacked so each keeps the column's width (about 9 in)
    rows, cols, figsize = (2, 1, (7.6, 10.4)) if labels is not None else (1, 2, (8.8, 4.2))
    fig, axes = plt.subplots(rows, cols, figsize=figsize, layout="constrained")
    for ax, matrix, when in zip(axes, (before, after), ("before", "after"), strict=True):
        image = ax.imshow(matrix, cmap="viridis")
        fig.colorbar(image, ax=ax, label=value_label, shrink=0.9)
        on_diag = np.diag(matrix).mean()
        off_diag = (matrix.sum() - np.trace(matrix)) / max(n * n - n, 1)
        digits = 2 if np.abs(matrix).max() >= 1 else 3  # logits vs cosines, short either way
        ax.set_title(f"{when.capitalize()} training\n"
                     f"mean: diagonal {on_diag:.{digits}f}, off-diagonal {off_diag:.{digits}f}",
                     fontsize=11)
        ax.set(xlabel="text j", ylabel="image i")
        if n <= OUTLINE_DIAGONAL_UP_TO:
            for i in range(n):
                ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False,
                                       edgecolor="red", linewidth=1.2))
        if labels is not None:  # whole captions once, numbers elsewhere: all stay readable
            numbers = [str(i + 1) for i in range(n)]
            ax.set_xticks(range(n), labels=numbers, fontsize=8)
            ax.set_yticks(range(n), labels=numbers, fontsize=8)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if labels is not None:
        axes[0].set_yticks(range(n), labels=[f"{label}  {i + 1}" for i, label in
                                             enumerate(labels)], fontsize=8)
        axes[0].set(xlabel="text j (caption j belongs to image j)",
                    ylabel="image i and its caption")
        axes[1].set(xlabel="text j (caption j belongs to image j)")
    title = ("Image × text similarities of one batch (red boxes: matching pairs)"
             if n <= OUTLINE_DIAGONAL_UP_TO else
             "Image × text similarities of one batch (diagonal: matching pairs)")
    fig.suptitle(f"{title}\n({dropped}, left out of the labels)" if dropped else title)
    return _save(fig, path)


def plot_embeddings(image_embeds, text_embeds, image_labels, text_labels, class_names,
                    path=None, color_of=None) -> Figure:
    """Image and text embeddings projected onto their first two principal components.

    Both sets share one projection: PCA through ``numpy.linalg.svd`` of the stacked,
    centred embeddings.  Images are small dots, texts large black-edged stars, both in
    the colour of their class.  With up to 12 classes each star is labelled with its
    class name.  With many classes (40 colour–shape compositions, say) 40 colours
    cannot be told apart: pass ``color_of`` to colour by one attribute instead, e.g.
    ``color_of=lambda c: class_names[c].split()[0]`` to paint "red circle" red.  The
    legend then names each colour by the words its class names share.

    Args:
        image_embeds: ``(N, D)`` L2-normalised image embeddings.
        text_embeds: ``(M, D)`` L2-normalised text embeddings (e.g. one prompt per class).
        image_labels: ``(N,)`` integer class ids in ``[0, C)``.
        text_labels: ``(M,)`` integer class ids in ``[0, C)``.
        class_names: ``C`` strings.
        path: where to save the figure (PNG), or ``None``.
        color_of: ``None`` (one colour per class), a callable ``class id -> colour``, or a
            sequence of ``C`` matplotlib colours (names, hex strings, RGB(A) tuples).

    Returns:
        The figure, with one axes.
    """
    image_embeds = _float_array(image_embeds, "image_embeds", ndim=2)
    text_embeds = _float_array(text_embeds, "text_embeds", ndim=2)
    if text_embeds.shape[1] != image_embeds.shape[1]:
        raise ValueError("image_embeds and text_embeds must have the same width D, got "
                         f"{image_embeds.shape[1]} and {text_embeds.shape[1]}")
    if image_embeds.shape[1] < 2:
        raise ValueError(f"the embeddings need a width D >= 2 to project onto a plane, "
                         f"got D = {image_embeds.shape[1]}")
    class_names = _names(class_names)
    c = len(class_names)
    why = f" (class_names has {c} names)"
    image_labels = _labels(image_labels, "image_labels", len(image_embeds), c, why,
                           " (one per row of image_embeds)")
    text_labels = _labels(text_labels, "text_labels", len(text_embeds), c, why,
                          " (one per row of text_embeds)")
    colours = _class_colours(color_of, c)  # (C, 4) RGBA

    stacked = np.concatenate([image_embeds, text_embeds])  # (N + M, D)
    centred = stacked - stacked.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)  # rows of vt: principal axes
    xy = centred @ vt[:2].T  # (N + M, 2) the same projection for images and texts
    explained = s[:2] ** 2 / max(np.sum(s**2), np.finfo(float).tiny)
    image_xy, text_xy = xy[: len(image_embeds)], xy[len(image_embeds):]

    fig, ax = plt.subplots(figsize=(9, 7), layout="constrained")
    # a thin grey edge keeps pale colours (white, yellow) visible on the white background
    ax.scatter(image_xy[:, 0], image_xy[:, 1], s=14, c=colours[image_labels], alpha=0.7,
               edgecolors="0.35", linewidths=0.3)
    ax.scatter(text_xy[:, 0], text_xy[:, 1], s=260, marker="*", c=colours[text_labels],
               edgecolors="black", linewidths=0.9, zorder=3)
    shown = np.unique(text_labels)
    if len(np.unique(np.concatenate([image_labels, text_labels]))) <= ANNOTATE_UP_TO:
        for k in shown:  # one name per class, at the mean of its text points
            x, y = text_xy[text_labels == k].mean(axis=0)
            # a pale box lifts the name off the dots; stars (zorder 3) stay on top of it
            ax.annotate(class_names[k], (x, y), xytext=(8, 6), textcoords="offset points",
                        fontsize=9, zorder=2.5,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                              "alpha": 0.75, "edgecolor": "none"})
    kinds = [Line2D([], [], linestyle="", marker="o", markersize=5, color="0.5",
                    label="image embedding"),
             Line2D([], [], linestyle="", marker="*", markersize=14, color="0.5",
                    markeredgecolor="black", label="text embedding (class prompt)")]
    ax.legend(handles=kinds, loc="best", fontsize=9)
    if color_of is not None:
        groups = _colour_groups(colours, class_names)
        if groups:
            fig.legend(handles=groups, loc="outside right upper", fontsize=9,
                       title="colour")
    ax.set(title=f"Image and text embeddings, projected by PCA "
                 f"({len(image_embeds)} images, {len(text_embeds)} texts)",
           xlabel=f"PC 1 ({explained[0]:.0%} of variance)",
           ylabel=f"PC 2 ({explained[1]:.0%} of variance)" if len(explained) > 1
           else "PC 2")
    ax.set_aspect("equal", adjustable="datalim")  # distances on screen match PCA distances
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion(confusion, class_names, path=None, title="Zero-shot confusion matrix",
                   *, highlight=None, highlight_label="held out") -> Figure:
    """Heatmap of a confusion matrix as rates: each row divided by its number of examples.

    Cell ``(t, p)`` is the fraction of class ``t``'s examples predicted as ``p``, so a
    perfect classifier is a dark diagonal.  Rows without examples are grey.  Thin lines
    separate runs of class names that share their first word (e.g. all "red ..." classes).

    Args:
        confusion: ``(C, C)`` non-negative counts, rows = true class, columns = predicted
            (see :func:`confusion_matrix`).
        class_names: ``C`` strings, the tick labels.
        path: where to save the figure (PNG), or ``None``.
        title: first line of the title; the second line gives the accuracy.
        highlight: optional class ids (e.g. the held-out compositions) whose tick labels
            get a ``*`` and bold type, with their own accuracy in the title.  (Not a
            colour: class names such as "red ring" already speak of colours.)
        highlight_label: what the highlighted classes are called in the title.

    Returns:
        The figure, with the heatmap axes and its colour-bar axes.
    """
    confusion = _float_array(confusion, "confusion", ndim=2)
    _check_str(title, "title")
    _check_str(highlight_label, "highlight_label")
    if confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be square (C, C), got shape {confusion.shape}")
    if np.any(confusion < 0):
        raise ValueError("confusion must hold non-negative counts")
    class_names = _names(class_names)
    c = len(class_names)
    if c != confusion.shape[0]:
        raise ValueError(f"class_names must have one name per row of confusion, "
                         f"{confusion.shape[0]}, got {c}")
    marked = np.zeros(c, dtype=bool)
    if highlight is not None:
        marked[_labels(highlight, "highlight", None, c)] = True

    row_sums = confusion.sum(axis=1, keepdims=True)  # (C, 1) examples per true class
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(row_sums > 0, confusion / row_sums, np.nan)  # (C, C)

    # Sized for a page's column, about 7 inches: there a figure is shown at its own size, so
    # its type is read at the size it is set in.  40 classes: 0.11 inch a cell, room for
    # the 7-point tick labels; a few classes: room for the rates printed in the cells.
    side = max(5.0, 0.11 * c + 1.3)
    fig, ax = plt.subplots(figsize=(side + 0.9, side + 0.4), layout="constrained")
    cmap = plt.get_cmap("Blues").with_extremes(bad="0.85")  # grey: a class with no examples
    image = ax.imshow(rates, cmap=cmap, vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of the true class", shrink=0.8, fraction=0.04)
    fontsize = 9 if c <= ANNOTATE_UP_TO else (8 if c <= 24 else 7)
    names = [f"{name}*" if is_marked else name for name, is_marked in zip(class_names, marked,
                                                                           strict=True)]
    # upright labels where they fit side by side (a character is about 0.6 em wide)
    fits = c * (max(map(len, names)) + 2) * 0.6 * fontsize / 72 <= side
    ax.set_xticks(range(c), labels=names, rotation=0 if fits else 90, fontsize=fontsize)
    ax.set_yticks(range(c), labels=names, fontsize=fontsize)
    for tick_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for label, is_marked in zip(tick_labels, marked, strict=True):
            if is_marked:
                label.set_fontweight("bold")
    if c <= ANNOTATE_UP_TO:  # few classes: print the rates in the cells too
        for (t, p), rate in np.ndenumerate(rates):
            if rate > 0:  # blank zeros keep the eye on the mistakes that happen
                ax.text(p, t, f"{rate:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if rate > 0.5 else "black")
    for edge in _group_edges(class_names):
        ax.axhline(edge, color="0.5", linewidth=0.5)
        ax.axvline(edge, color="0.5", linewidth=0.5)
    empty = not np.all(row_sums > 0)
    ax.set(xlabel="predicted class",
           ylabel="true class (grey rows: no examples)" if empty else "true class")
    ax.set_title(f"{title}\n{_accuracy_text(confusion, marked, highlight_label)}")
    return _save(fig, path)


def confusion_matrix(true, pred, num_classes: int) -> np.ndarray:
    """Count how often each true class was predicted as each class.

    Args:
        true: ``(N,)`` integer true class ids in ``[0, C)``.
        pred: ``(N,)`` integer predicted class ids in ``[0, C)``.
        num_classes: ``C``, a positive int.

    Returns:
        ``(C, C)`` int64 counts; entry ``[t, p]`` counts examples of class ``t`` predicted
            as ``p``, so the trace is the number of correct predictions.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    num_classes = int(num_classes)
    too_many = ValueError(f"num_classes = {num_classes} needs a {num_classes} x {num_classes} "
                          "matrix of counts, more than this machine could allocate")
    if num_classes**2 * 8 > sys.maxsize:  # NumPy would say "Python int too large for C long"
        raise too_many
    true = _labels(true, "true", None, num_classes)
    pred = _labels(pred, "pred", len(true), num_classes, length_of=" (one per entry of true)")
    # one bin per (true, predicted) pair, read row by row: index t * C + p
    try:
        counts = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    except MemoryError:
        raise too_many from None
    return counts.reshape(num_classes, num_classes).astype(np.int64)


# ---------------------------------------------------------------------------- helpers


def write_plots(state, splits: dict, folder, initial_model) -> list[Path]:
    """Save the four figures of a run into ``folder`` and return their paths (the first
    two for a run on scenes, whose images have no one class to colour or confuse).

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
    check_state(state)
    check_splits(splits)
    _check_initial_model(initial_model, state.model)
    folder = _plots_folder(folder)

    seen, heldout, vocab = splits["seen"], splits["heldout"], state.vocab
    names = class_names()
    paths = [folder / name for name in ("history.png", "similarity.png", "embeddings.png",
                                         "confusion.png")]
    classes = len(SCENE_CLASSES) if state.config.data == "scenes" else len(names)
    figures = [plot_history(state.history, paths[0], batch_size=state.config.batch_size,
                            num_classes=classes)]

    batch = slice(0, 12)  # one small batch of test pairs, as a heatmap can show it
    pixels, texts = seen.pixels()[batch], state.model.text_inputs(vocab, seen.captions[batch])
    before, after = (m.encode_images(pixels) @ m.encode_texts(texts).T
                     for m in (initial_model, state.model))
    figures.append(plot_similarity(before, after, seen.captions[batch], paths[1],
                                   value_label="cosine similarity"))
    if state.config.data == "scenes":  # no one class per image to colour by or confuse
        for fig in figures:
            plt.close(fig)
        return paths[:2]

    class_embeds = class_embeddings(state.model, vocab, names)
    images = np.concatenate([seen.pixels()[:400], heldout.pixels()[:200]])
    labels = np.concatenate([seen.labels[:400], heldout.labels[:200]])
    colour = [COLORS[color] for color, _ in CLASSES]
    figures.append(plot_embeddings(state.model.encode_images(images), class_embeds, labels,
                                   np.arange(len(names)), names, paths[2], color_of=colour))

    true = np.concatenate([seen.labels, heldout.labels])
    scores = np.concatenate([zero_shot_scores(state.model, seen.pixels(), class_embeds),
                             zero_shot_scores(state.model, heldout.pixels(), class_embeds)])
    confusion = confusion_matrix(true, np.argmax(scores, axis=1), len(names))
    held = [CLASSES.index(c) for c in HELDOUT]
    figures.append(plot_confusion(confusion, names, paths[3], highlight=held))
    for fig in figures:
        plt.close(fig)  # a CLI run must not pile up open figures
    return paths


def _save(fig, path):
    """Save ``fig`` to ``path`` (PNG, 120 dpi) when a path is given; return ``fig``.

    Raises:
        TypeError: path not None, a str or a PathLike.
        ValueError: an empty path, a folder, or a name that does not end in ``.png`` (a
            figure written over ``notes.txt`` would lose the notes).
    """
    if path is not None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError("path must be None, a str or a pathlib.Path, "
                            f"got {type(path).__name__}")
        if not str(path):
            raise ValueError("path is empty; name a .png file, such as 'history.png'")
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"path {str(path)!r} is a folder; name a .png file in it")
        if path.suffix.lower() != ".png":
            raise ValueError(f"path must name a .png file (the figure is saved as PNG), "
                             f"got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, format="png")
    return fig


def _real_values(x, name, allow_none=False):
    """``x`` (an array of any library, a list, a number) as a float64 NumPy array.

    Only real numbers are values: bools, strings and complex numbers (whose imaginary
    part would be dropped with a ComplexWarning) are refused, and so is ``None``
    unless ``allow_none`` (it then becomes NaN, an epoch where nothing was measured).
    An int too large for a float becomes inf, for the caller's finiteness check.
    """
    x = as_numpy(x, name)
    if x.dtype.kind == "O":  # None, ints beyond int64, or mixed objects: look at each
        def value(v):
            if v is None and allow_none:
                return math.nan
            if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must hold real numbers"
                                f"{' or None' if allow_none else ''}, got {type(v).__name__}")
            try:
                return float(v)
            except OverflowError:
                return math.inf
        return np.array([value(v) for v in x.ravel()], dtype=np.float64).reshape(x.shape)
    if x.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    return x.astype(np.float64)


def _float_array(x, name, ndim):
    """``x`` as a non-empty float64 NumPy array of ``ndim`` dimensions and finite values."""
    x = _real_values(x, name)
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} must be non-empty, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _vector(x, name, length=None, allow_nan=False):
    """A history entry as a 1-D float array of ``length``; ``None`` becomes NaN if allowed.

    NaN marks an epoch that was not measured; inf is never a measurement.
    """
    x = _real_values(x, name, allow_none=allow_nan)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {x.shape}")
    if length is not None and len(x) != length:
        raise ValueError(f"{name} must have one value per epoch, {length}, got {len(x)}")
    if np.any(np.isinf(x)):
        raise ValueError(f"{name} contains NaN or infinite values: inf at epoch index "
                         f"{int(np.flatnonzero(np.isinf(x))[0])}")
    if not (np.any(~np.isnan(x)) if allow_nan else not np.any(np.isnan(x))):
        raise ValueError(f"{name} contains NaN or infinite values"
                         f"{' only: no epoch was measured' if allow_nan else ''}")
    return x


def _labels(x, name, length, num_classes, why="", length_of=""):
    """``x`` as a 1-D int64 array of class ids in ``[0, num_classes)``, of ``length`` if given.

    ``why`` says where the number of classes comes from, ``length_of`` where the length
    does, for the error messages.
    """
    x = as_numpy(x, name)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of class ids, "
                         f"got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):  # a bool mask would be read as ids 0 and 1
        raise TypeError(f"{name} must hold integer class ids, got dtype {x.dtype}")
    if length is not None and len(x) != length:
        raise ValueError(f"{name} must have length {length}{length_of}, got {len(x)}")
    if np.any(x < 0) or np.any(x >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}){why}, got values from "
                         f"{x.min()} to {x.max()}")
    return x.astype(np.int64)


def _check_str(value, name):
    """A label drawn on the figure: a str (``None`` would be drawn as the word "None")."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")


def _names(class_names):
    """``class_names`` as a non-empty list of str."""
    return as_texts(class_names, "class_names")


def _count_or_none(value, name):
    """Raise unless ``value`` is ``None`` or an int >= 2 (a count to choose among)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= 2 or None, got {value!r}")
    if value < 2:
        raise ValueError(f"{name} must be an int >= 2 or None, got {value}")


def _accuracy_label(key, batch_size, num_classes):
    """Legend text of one accuracy series: which task, and among how many it chooses."""
    label = ACCURACY_SERIES.get(key, key.replace("_", " "))
    if key == "accuracy":
        among = (f"{batch_size - 1} negatives" if batch_size is not None
                 else "own caption among the batch's captions")
    else:
        among = (f"{num_classes} classes" if num_classes is not None
                 else "class among the class prompts")
    return f"{label} ({among})"


def _short_captions(captions, n):
    """Tick labels from ``captions`` and a note on what was dropped from all of them.

    Words that every caption starts with ("a photo of a") or ends with ("on a black
    background") are dropped and named in the note, so the labels show what tells the
    captions apart; a label still longer than ``CAPTION_CHARS`` keeps its first words.
    Returns ``(None, "")`` without captions or for batches too big to label.
    """
    if captions is None:
        return None, ""
    captions = as_texts(captions, "captions")  # a lone str, None entries, ... refused
    if len(captions) != n:
        raise ValueError(f"captions must be a sequence of {n} strings, one per image, got "
                         f"{len(captions)}")
    if n > CAPTION_TICKS_UP_TO:
        return None, ""
    words = [str(c).split() for c in captions]
    front = _shared_words(words)
    back = _shared_words([w[front:][::-1] for w in words])
    prefix = " ".join(words[0][:front])
    suffix = " ".join(words[0][len(words[0]) - back:]) if back else ""
    if len(prefix) < 4:  # dropping a lone "a" saves nothing and reads oddly
        front, prefix = 0, ""
    if len(suffix) < 4:
        back, suffix = 0, ""
    labels = [_head(" ".join(w[front:len(w) - back]), CAPTION_CHARS) for w in words]
    dropped = [f'start "{prefix} …"'] if prefix else []
    dropped += [f'end "… {suffix}"'] if suffix else []
    return labels, f"all captions {' and '.join(dropped)}" if dropped else ""


def _shared_words(words):
    """How many leading words all the word lists share, leaving each at least one."""
    common = 0
    while all(len(w) > common + 1 and w[common] == words[0][common] for w in words):
        common += 1
    return common


def _head(text, limit):
    """``text`` cut to its first whole words within ``limit`` characters, then an ellipsis."""
    if len(text) <= limit:
        return text
    words, kept = text.split(), []
    while words and len(" ".join([*kept, words[0]])) <= limit - 1:
        kept.append(words.pop(0))
    return (" ".join(kept) if kept else text[:limit - 1]) + "…"  # one huge word: cut it


def _class_colours(color_of, c):
    """``(C, 4)`` RGBA colours, one per class, from ``color_of`` or a default palette."""
    if color_of is None:
        if c <= 10:
            return plt.get_cmap("tab10")(np.arange(c))
        if c <= 20:
            return plt.get_cmap("tab20")(np.arange(c))
        return plt.get_cmap("turbo")(np.linspace(0.05, 0.95, c))
    if callable(color_of):
        colours = [color_of(k) for k in range(c)]
    else:
        if isinstance(color_of, str):  # "red" would be read as five colours
            raise TypeError(f"color_of must be None, a function or a sequence of {c} colours, "
                            f"got the str {color_of!r}; for one colour: [{color_of!r}] * {c}")
        try:
            colours = list(color_of)
        except TypeError:
            raise TypeError(f"color_of must be None, a function or a sequence of {c} colours, "
                            f"got {type(color_of).__name__}") from None
        if len(colours) != c:
            raise ValueError(f"color_of must give one colour per class, {c}, "
                             f"got {len(colours)}")
    try:
        return np.array([to_rgba(colour) for colour in colours])
    except ValueError as err:
        raise ValueError(f"color_of gave something that is not a colour: {err}") from None


def _colour_groups(colours, class_names):
    """Legend entries, one per distinct colour, named by the words its classes share."""
    handles = []
    distinct = []  # in order of first appearance, so the legend follows the class order
    for rgba in colours:
        if not any(np.array_equal(rgba, seen) for seen in distinct):
            distinct.append(rgba)
    for colour in distinct:
        members = [name for name, rgba in zip(class_names, colours, strict=True)
                   if np.array_equal(rgba, colour)]
        shared = [w for w in members[0].split() if all(w in m.split() for m in members)]
        label = " ".join(shared) if shared else f"{len(members)} classes"
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=8,
                              color=colour, markeredgecolor="0.35", label=label))
    return handles


def _group_edges(class_names):
    """Positions between runs of class names that share their first word (group borders)."""
    first = [name.split()[0] if name.split() else "" for name in class_names]
    edges = [k - 0.5 for k in range(1, len(first)) if first[k] != first[k - 1]]
    runs = len(edges) + 1
    # only draw them when the names really come in runs, not when every name differs
    return edges if 1 < runs < len(first) else []


def _accuracy_text(confusion, marked, marked_label):
    """``"accuracy 81.2% (650/800)"``, plus the accuracy on the marked classes if any."""
    def accuracy(rows):
        total = confusion[rows].sum()
        correct = confusion[rows, rows].sum()  # the diagonal entries of those rows
        return correct, total

    everything = np.arange(len(confusion))
    correct, total = accuracy(everything)
    text = f"accuracy {correct / total:.1%}" if total else "accuracy n/a (no examples)"
    if total and np.allclose(confusion, np.round(confusion)):
        text += f" ({correct:.0f}/{total:.0f})"
    if marked.any() and not marked.all():
        correct, total = accuracy(np.flatnonzero(marked))
        if total:
            text += f"; {marked_label} (*): {correct / total:.1%}"
    return text


def _plain_log_ticks(ax):
    """Label a log y axis with plain numbers at 1, 2, 3, 4, 5 times powers of ten."""
    formatter = plt.FormatStrFormatter("%g")
    ax.yaxis.set_major_formatter(formatter)
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2, 3, 4, 5)))
    ax.yaxis.set_minor_formatter(formatter)


# ----------------------------------------------------------------------------- write_plots

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
