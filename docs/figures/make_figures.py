"""Draw the site's diagrams (our own drawings, not the papers' figures).

    python docs/figures/make_figures.py      # writes docs/figures/*.svg

* ``clip-training.svg``: a batch of image-caption pairs, the two encoders, the
  shared embedding space, and the N x N similarity matrix whose diagonal the
  contrastive loss pulls up, along rows and along columns; ``clip-training-narrow.svg``
  tells it top to bottom for a phone (docs/index.md picks it with ``<picture>``).
* ``clip-zero-shot.svg``: class names written into a prompt, encoded once, and an
  image classified by its most similar prompt.
* ``scenes-samples.svg``: twelve scenes of ``numclip.scenes``, each with its caption
  and its hard negative (the same words, another meaning).
* ``bag-of-words.svg``: a relation caption and its hard negative, word by word, and the
  one bag of words they share: why a sum of word vectors cannot see order.
* ``modality-gap.svg``: a sketch of the modality gap on the unit circle (two cones, their
  means, the gap vector) and of Liang et al.'s experiment that shifts both along it.

The pictures and captions are real samples of ``numclip.data`` and ``numclip.scenes``; the output is
deterministic (no dates, fixed SVG ids), so re-running it changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon

from numclip.data import class_name, make_dataset
from numclip.scenes import KINDS, make_scenes, swap_objects
from numclip.text import tokenize

HERE = Path(__file__).resolve().parent
IMAGE = "#3f51b5"  # image side (indigo, the site's primary colour)
TEXT = "#e65100"  # text side (deep orange, the accent)
INK = "#263238"
PAIR_COLOURS = ["#1e88e5", "#43a047", "#8e24aa", "#f4511e"]
FONT = 1.3  # the figures are shown about 700 px wide: larger type than matplotlib's default

plt.rcParams.update({"svg.hashsalt": "numclip", "svg.fonttype": "none",
                     "font.family": "DejaVu Sans", "font.size": 10})


def samples(n=4, seed=3):
    """``n`` pairs with different colours, so the picture shows different things."""
    data = make_dataset(64, seed=seed, compositions="seen")
    chosen, colours = [], set()
    for i in range(len(data)):
        if data.colors[i] not in colours and data.counts[i] <= 2:
            chosen.append(i)
            colours.add(data.colors[i])
        if len(chosen) == n:
            break
    return [data.images[i] for i in chosen], [data.captions[i] for i in chosen]


def box(ax, xy, w, h, text, colour, fontsize=10, style="round,pad=0.02,rounding_size=0.08"):
    ax.add_patch(FancyBboxPatch(xy, w, h, boxstyle=style, fc="white", ec=colour, lw=1.6))
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", color=INK,
            fontsize=fontsize * FONT)


def encoder(ax, x, y, w, h, label, colour):
    """A trapezoid narrowing to the right: many numbers in, D numbers out."""
    ax.add_patch(Polygon([(x, y), (x + w, y + 0.2 * h), (x + w, y + 0.8 * h), (x, y + h)],
                         closed=True, fc=colour, ec=colour, alpha=0.15, lw=1.5))
    ax.add_patch(Polygon([(x, y), (x + w, y + 0.2 * h), (x + w, y + 0.8 * h), (x, y + h)],
                         closed=True, fc="none", ec=colour, lw=1.5))
    ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", color=INK, fontsize=10 * FONT)


def arrow(ax, start, end, colour=INK, style="-|>", lw=1.2, rad=0.0):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=colour,
                                 lw=lw, connectionstyle=f"arc3,rad={rad}"))


def training_figure(path):
    images, captions = samples()
    n = len(images)
    fig = plt.figure(figsize=(13.3, 4.6))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 13.3)
    ax.set_ylim(0, 4.6)
    ax.axis("off")

    # the pairs: N images in a row, their N captions below
    ax.text(0.15, 4.3, "N image-caption pairs", fontsize=11 * FONT, color=INK, weight="bold")
    for i, img in enumerate(images):
        x = 0.25 + 0.75 * i
        ax.imshow(img, extent=(x, x + 0.6, 3.2, 3.8), interpolation="nearest", zorder=2)
        ax.add_patch(FancyBboxPatch((x, 3.2), 0.6, 0.6, boxstyle="square,pad=0",
                                    fc="none", ec=PAIR_COLOURS[i], lw=2.2, zorder=3))
    for i, cap in enumerate(captions):
        y = 2.3 - 0.42 * i
        ax.text(0.25, y, f"\u201c{cap}\u201d", va="center", fontsize=9 * FONT,
                color=PAIR_COLOURS[i])
    ax.text(0.25, 0.45, "image i and caption i belong together;\n"
            "every other caption is a negative for image i", fontsize=8 * FONT, color=INK,
            va="center")

    # the encoders
    encoder(ax, 3.75, 2.85, 1.3, 1.3, "image\nencoder", IMAGE)
    encoder(ax, 3.75, 0.75, 1.3, 1.3, "text\nencoder", TEXT)
    arrow(ax, (3.3, 3.5), (3.7, 3.5), IMAGE)
    arrow(ax, (3.3, 1.4), (3.7, 1.4), TEXT)
    ax.text(4.4, 2.62, "pixels \u2192 D numbers", ha="center", fontsize=8 * FONT, color=IMAGE)
    ax.text(4.4, 0.52, "words \u2192 D numbers", ha="center", fontsize=8 * FONT, color=TEXT)

    # the shared space: unit circle, matching pairs close together
    cx, cy, r = 6.9, 2.2, 1.35
    ax.add_patch(Circle((cx, cy), r, fc="#eceff1", ec="#90a4ae", lw=1))
    ax.text(cx, cy + r + 0.5, "shared space, L2-normalized", ha="center", fontsize=10 * FONT,
            color=INK, weight="bold")
    ax.text(cx, cy + r + 0.24, "(each embedding a point on the unit sphere)", ha="center",
            fontsize=8 * FONT, color=INK)
    arrow(ax, (5.1, 3.5), (cx - 0.95, cy + 0.95), IMAGE)
    arrow(ax, (5.1, 1.4), (cx - 1.05, cy - 0.85), TEXT)
    angles = np.deg2rad([130, 35, -55, -150])
    for i, a in enumerate(angles):
        for offset, marker, colour in ((-0.12, "s", IMAGE), (0.12, "o", TEXT)):
            px, py = cx + r * np.cos(a + offset), cy + r * np.sin(a + offset)
            ax.plot([cx, px], [cy, py], color=PAIR_COLOURS[i], lw=1, alpha=0.6)
            ax.plot(px, py, marker=marker, ms=8, mfc=PAIR_COLOURS[i], mec=colour, mew=1.8)
    ax.plot([6.45], [0.4], marker="s", ms=7, mfc="white", mec=IMAGE, mew=1.8)
    ax.text(6.57, 0.4, "image", va="center", fontsize=8 * FONT)
    ax.plot([7.35], [0.4], marker="o", ms=7, mfc="white", mec=TEXT, mew=1.8)
    ax.text(7.47, 0.4, "text", va="center", fontsize=8 * FONT)

    # the similarity matrix
    x0, y0, size = 9.05, 0.95, 2.4
    cell = size / n
    arrow(ax, (cx + r + 0.05, cy), (x0 - 0.3, cy), INK)
    ax.text(x0 + size / 2, y0 + size + 0.65, "logits  S = e\u02e2 I T\u1d40   (N \u00d7 N)",
            ha="center", fontsize=10 * FONT, color=INK, weight="bold")
    for i in range(n):
        for j in range(n):
            diag = i == j
            ax.add_patch(FancyBboxPatch((x0 + j * cell, y0 + size - (i + 1) * cell), cell, cell,
                                        boxstyle="square,pad=0", lw=1, ec="white",
                                        fc=PAIR_COLOURS[i] if diag else "#cfd8dc",
                                        alpha=0.9 if diag else 0.6))
        ax.plot([x0 - 0.15], [y0 + size - (i + 0.5) * cell], marker="s", ms=8,
                mfc=PAIR_COLOURS[i], mec=IMAGE, mew=1.8)
        ax.plot([x0 + (i + 0.5) * cell], [y0 + size + 0.17], marker="o", ms=8,
                mfc=PAIR_COLOURS[i], mec=TEXT, mew=1.8)
    ax.text(x0 + size + 0.15, y0 + size - 0.5 * cell, "softmax along\neach row:\nimage \u2192 text",
            fontsize=8 * FONT, va="center", color=IMAGE)
    ax.text(x0 + size + 0.15, y0 + 0.5 * cell, "and down\neach column:\ntext \u2192 image",
            fontsize=8 * FONT, va="center", color=TEXT)
    ax.text(x0 + size / 2, y0 - 0.18, "the loss pulls the diagonal (the true pairs) up\n"
            "and every other entry down", ha="center", va="top", fontsize=8.5 * FONT, color=INK)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def training_figure_narrow(path):
    """The same story as :func:`training_figure`, top to bottom, for a phone's column (about
    350 px): 5 in wide, so its smallest text (9.5 pt) is shown at 9 px or more."""
    images, captions = samples()
    n = len(images)
    width, height = 5.0, 10.2
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    small, normal, title = 9.5, 11, 12.5  # points; 1 pt of the drawing ~ 0.95 px on a phone

    # the pairs: N images in a row, their N captions under them
    ax.text(0.15, 9.9, "N image-caption pairs", fontsize=title, color=INK, weight="bold",
            va="center")
    for i, img in enumerate(images):
        x = 0.3 + 1.2 * i
        ax.imshow(img, extent=(x, x + 0.75, 8.75, 9.5), interpolation="nearest", zorder=2)
        ax.add_patch(FancyBboxPatch((x, 8.75), 0.75, 0.75, boxstyle="square,pad=0",
                                    fc="none", ec=PAIR_COLOURS[i], lw=2.2, zorder=3))
    for i, cap in enumerate(captions):
        ax.text(0.3, 8.45 - 0.28 * i, f"{i + 1}. \u201c{cap}\u201d", va="center",
                fontsize=normal, color=PAIR_COLOURS[i])
    ax.text(0.3, 7.2, "image i and caption i belong together;\n"
            "every other caption is a negative for image i", fontsize=small, color=INK,
            va="center")

    # the encoders, side by side
    for x, label, note, colour in ((0.35, "image\nencoder", "pixels \u2192 D numbers", IMAGE),
                                   (2.75, "text\nencoder", "words \u2192 D numbers", TEXT)):
        arrow(ax, (x + 0.95, 6.8), (x + 0.95, 6.55), colour)
        ax.add_patch(Polygon([(x, 6.5), (x + 1.9, 6.5), (x + 1.5, 5.6), (x + 0.4, 5.6)],
                             closed=True, fc=colour, ec=colour, alpha=0.15, lw=1.5))
        ax.add_patch(Polygon([(x, 6.5), (x + 1.9, 6.5), (x + 1.5, 5.6), (x + 0.4, 5.6)],
                             closed=True, fc="none", ec=colour, lw=1.5))
        ax.text(x + 0.95, 6.05, label, ha="center", va="center", color=INK, fontsize=normal)
        ax.text(x + 0.95, 5.42, note, ha="center", va="center", fontsize=small, color=colour)

    # the shared space: unit circle, matching pairs close together
    cx, cy, r = 1.55, 3.75, 0.95
    ax.text(2.75, 4.6, "shared space,\nL2-normalized", fontsize=title, color=INK,
            weight="bold", va="center")
    ax.add_patch(Circle((cx, cy), r, fc="#eceff1", ec="#90a4ae", lw=1))
    arrow(ax, (1.3, 5.25), (cx - 0.2, cy + r + 0.05), IMAGE)
    arrow(ax, (3.7, 5.25), (cx + 0.45, cy + r - 0.05), TEXT, rad=-0.1)
    for i, a in enumerate(np.deg2rad([130, 35, -55, -150])):
        for offset, marker, colour in ((-0.14, "s", IMAGE), (0.14, "o", TEXT)):
            px, py = cx + r * np.cos(a + offset), cy + r * np.sin(a + offset)
            ax.plot([cx, px], [cy, py], color=PAIR_COLOURS[i], lw=1, alpha=0.6)
            ax.plot(px, py, marker=marker, ms=8, mfc=PAIR_COLOURS[i], mec=colour, mew=1.8)
    ax.text(2.75, 4.0, "each embedding a point\non the unit sphere", fontsize=small,
            color=INK, va="center")
    ax.plot([2.85], [3.6], marker="s", ms=7, mfc="white", mec=IMAGE, mew=1.8)
    ax.text(3.0, 3.6, "image", va="center", fontsize=small)
    ax.plot([3.85], [3.6], marker="o", ms=7, mfc="white", mec=TEXT, mew=1.8)
    ax.text(4.0, 3.6, "text", va="center", fontsize=small)

    # the similarity matrix
    x0, y0, size = 0.55, 0.55, 1.45
    cell = size / n
    ax.text(0.15, y0 + size + 0.42, "logits  S = e\u02e2 I T\u1d40  (N \u00d7 N)",
            fontsize=title, color=INK, weight="bold", va="center")
    for i in range(n):
        for j in range(n):
            diag = i == j
            ax.add_patch(FancyBboxPatch((x0 + j * cell, y0 + size - (i + 1) * cell), cell, cell,
                                        boxstyle="square,pad=0", lw=1, ec="white",
                                        fc=PAIR_COLOURS[i] if diag else "#cfd8dc",
                                        alpha=0.9 if diag else 0.6))
        ax.plot([x0 - 0.14], [y0 + size - (i + 0.5) * cell], marker="s", ms=7,
                mfc=PAIR_COLOURS[i], mec=IMAGE, mew=1.6)
        ax.plot([x0 + (i + 0.5) * cell], [y0 + size + 0.13], marker="o", ms=7,
                mfc=PAIR_COLOURS[i], mec=TEXT, mew=1.6)
    ax.text(x0 + size + 0.25, y0 + size - 0.35, "softmax along each row:\nimage \u2192 text",
            fontsize=small, va="center", color=IMAGE)
    ax.text(x0 + size + 0.25, y0 + 0.35, "and down each column:\ntext \u2192 image",
            fontsize=small, va="center", color=TEXT)
    ax.text(0.15, 0.2, "the loss pulls the diagonal (the true pairs) up\n"
            "and every other entry down", va="center", fontsize=small, color=INK)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def zero_shot_figure(path):
    data = make_dataset(40, seed=5, compositions="all")
    img = data.images[0]
    classes = [class_name(int(data.labels[0]))] + [
        class_name(int(c)) for c in sorted(set(data.labels.tolist()) - {int(data.labels[0])})[:3]]
    fig = plt.figure(figsize=(12, 3.6))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 3.6)
    ax.axis("off")

    # class names -> prompts -> text encoder -> one embedding per class
    ax.text(0.15, 3.3, "1. write every class name into a prompt", fontsize=10 * FONT, weight="bold",
            color=INK)
    ys = np.linspace(2.75, 1.55, len(classes))
    for c, y in zip(classes, ys, strict=True):
        box(ax, (0.2, y - 0.17), 2.7, 0.34, f"a photo of a {c}.", TEXT, fontsize=7.5)
    encoder(ax, 3.3, 1.4, 1.1, 1.5, "text\nencoder", TEXT)
    for y in ys:
        arrow(ax, (2.95, y), (3.28, y), TEXT, lw=0.9)
    ax.text(5.45, 3.3, "class embeddings", fontsize=9 * FONT, ha="center", color=TEXT)
    for y in ys:
        ax.plot([5.45], [y], marker="o", ms=9, mfc="white", mec=TEXT, mew=2)
        arrow(ax, (4.45, y), (5.3, y), TEXT, lw=0.9)

    # the image
    ax.text(0.15, 0.95, "2. encode the image", fontsize=10 * FONT, weight="bold", color=INK)
    ax.imshow(img, extent=(0.3, 0.8, 0.1, 0.6), interpolation="nearest")
    encoder(ax, 3.3, 0.05, 1.1, 0.6, "image enc.", IMAGE)
    arrow(ax, (0.85, 0.35), (3.28, 0.35), IMAGE)
    ax.plot([5.45], [0.35], marker="s", ms=9, mfc="white", mec=IMAGE, mew=2)
    arrow(ax, (4.45, 0.35), (5.3, 0.35), IMAGE)

    # cosine similarities and argmax
    ax.text(9.3, 3.3, "3. the most similar prompt is the prediction", fontsize=10 * FONT,
            weight="bold", color=INK, ha="center")
    lengths = [0.75, 0.2, 0.12, 0.04]  # a sketch, not a measurement
    for i, (c, y, s) in enumerate(zip(classes, ys, lengths, strict=True)):
        ax.add_patch(FancyBboxPatch((8.0, y - 0.13), 2.6 * s, 0.26, boxstyle="square,pad=0",
                                    fc=TEXT, alpha=1 if i == 0 else 0.3, ec="none"))
        ax.text(7.9, y, c, ha="right", va="center", fontsize=8.5 * FONT, color=INK,
                weight="bold" if i == 0 else "normal")
        if i == 0:
            ax.text(8.05 + 2.6 * s, y, "\u2190 prediction", va="center", fontsize=8 * FONT,
                    color=INK)
        arrow(ax, (5.6, y), (6.3, y), "#b0bec5", style="-", lw=0.8)
    ax.text(6.6, 0.85, "score of each class = cosine of its embedding with the image's;\n"
            "no classifier was trained on these labels", fontsize=8 * FONT, color=INK, va="center")
    arrow(ax, (5.6, 0.4), (6.1, 1.4), IMAGE, rad=0.25)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def scenes_figure(path):
    """Twelve scenes of seen compositions (as training sees them), six with relation
    captions and six with binding captions, each with its caption and hard negative."""
    import textwrap

    rows = [make_scenes(6, seed=4 + k, kinds=kind) for k, kind in enumerate(KINDS)]
    cols, w, h = 6, 2.2, 3.45
    height = len(rows) * h
    fig = plt.figure(figsize=(cols * w, height))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, cols * w)
    ax.set_ylim(0, height)
    ax.axis("off")
    for r, (kind, scenes) in enumerate(zip(KINDS, rows, strict=True)):
        top = height - r * h - 0.55  # top edge of this row's images
        ax.text(0.12, top + 0.3, f"{kind} captions, each with its hard negative (\u2717)",
                fontsize=10 * FONT, color=INK, weight="bold", va="center")
        for c in range(cols):
            x = c * w + 0.3
            ax.imshow(scenes.images[c], extent=(x, x + 1.6, top - 1.6, top),
                      interpolation="nearest", zorder=2)
            ax.add_patch(FancyBboxPatch((x, top - 1.6), 1.6, 1.6, boxstyle="square,pad=0",
                                        fc="none", ec="#90a4ae", lw=1, zorder=3))
            caption = textwrap.fill(scenes.captions[c], 22)
            ax.text(x + 0.8, top - 1.72, caption, ha="center", va="top", fontsize=7.2 * FONT,
                    color=TEXT, linespacing=1.1)
            below = top - 1.72 - 0.2 * (caption.count("\n") + 1) - 0.12  # under the caption
            ax.text(x + 0.8, below, "\u2717 " + textwrap.fill(scenes.negatives[c], 24),
                    ha="center", va="top", fontsize=6.2 * FONT, color="#78909c",
                    linespacing=1.1)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def bag_of_words_figure(path):
    """A caption and its hard negative as word tiles (one colour per word), and the bag of
    words both reduce to: equal counts, so equal sums of word vectors."""
    caption = "a red circle to the left of a blue square"
    rows = [("caption", caption), ("hard negative", swap_objects(caption))]
    words = tokenize(caption)
    vocab = list(dict.fromkeys(words))  # in order of first use
    palette = plt.get_cmap("tab10")
    colour = {w: palette(i % 10) for i, w in enumerate(vocab)}
    fig = plt.figure(figsize=(13.3, 4.4))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 13.3)
    ax.set_ylim(0, 4.4)
    ax.axis("off")
    tile_w, gap = 0.66, 0.06
    for r, (label, text) in enumerate(rows):
        y = 3.55 - 1.15 * r
        ax.text(0.15, y + 0.52, label, fontsize=10 * FONT, color=INK, weight="bold")
        for k, word in enumerate(tokenize(text)):
            x = 0.15 + k * (tile_w + gap)
            ax.add_patch(FancyBboxPatch((x, y - 0.2), tile_w, 0.42,
                                        boxstyle="round,pad=0.01,rounding_size=0.05",
                                        fc=colour[word], ec="none", alpha=0.25))
            ax.text(x + tile_w / 2, y + 0.01, word, ha="center", va="center",
                    fontsize=7.5 * FONT, color=INK)
            ax.text(x + tile_w / 2, y - 0.34, f"{k + 1}", ha="center", va="center",
                    fontsize=6 * FONT, color="#90a4ae")
    ax.text(0.15, 1.5, "the same words in another order: position k holds another word,\n"
            "but every word occurs as often as before", fontsize=8.5 * FONT, color=INK,
            va="center")
    for y in (3.55, 2.4):  # both rows fall into the one bag
        arrow(ax, (7.55, y), (8.3, 2.2), INK, rad=-0.1 if y > 3 else 0.1)

    # the bag: each word's count, the same for both rows
    x0, y0, bar_w, unit = 8.45, 1.05, 0.48, 0.72
    counts = {w: words.count(w) for w in vocab}
    ax.text(x0, 3.45, "the bag of words, x(c): counts / L", fontsize=10 * FONT, color=INK,
            weight="bold")
    for i, w in enumerate(vocab):
        x = x0 + i * (bar_w + 0.05)
        ax.add_patch(FancyBboxPatch((x, y0), bar_w, unit * counts[w], boxstyle="square,pad=0",
                                    fc=colour[w], ec="none", alpha=0.6))
        ax.text(x + bar_w / 2, y0 - 0.08, w, ha="right", va="top", rotation=50,
                fontsize=7 * FONT, color=INK, rotation_mode="anchor")
        ax.text(x + bar_w / 2, y0 + unit * counts[w] + 0.05, str(counts[w]), ha="center",
                va="bottom", fontsize=7 * FONT, color=INK)
    ax.text(x0, 3.0, "caption and hard negative: identical", fontsize=8.5 * FONT, color=TEXT)
    ax.text(0.15, 0.45, "W\u1d40x(c) = (1/L) \u03a3\u2096 w(c\u2096): a sum, which no "
            "reordering changes,\nso both get one embedding, and one score with every image",
            fontsize=8 * FONT, color=INK, va="center")
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def modality_gap_figure(path):
    """A sketch (not a measurement): two cones of unit embeddings on a circle, their means
    and the gap vector; then both modalities shifted by half of lam * gap towards each
    other and projected back onto the circle, as Liang et al. do."""
    rng = np.random.default_rng(0)  # the points of the sketch, the same on every run
    images = np.deg2rad(45 + 14 * rng.standard_normal(16))
    texts = np.deg2rad(135 + 14 * rng.standard_normal(16))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.9))
    panels = ((axes[0], 0.0, "as trained: two cones, a gap \u0394 between their means"),
              (axes[1], 0.7, "both shifted by lam = 0.7 along \u0394, then renormalized"))
    for ax, lam, title in panels:
        x = np.stack([np.cos(images), np.sin(images)], axis=1)  # (16, 2) unit image rows
        y = np.stack([np.cos(texts), np.sin(texts)], axis=1)  # (16, 2) unit text rows
        delta = x.mean(axis=0) - y.mean(axis=0)  # the gap vector
        xs, ys = x - lam / 2 * delta, y + lam / 2 * delta
        xs /= np.linalg.norm(xs, axis=1, keepdims=True)
        ys /= np.linalg.norm(ys, axis=1, keepdims=True)
        t = np.deg2rad(np.linspace(-8, 188, 197))
        ax.plot(np.cos(t), np.sin(t), color="#b0bec5", lw=1)
        ax.plot([0], [0], marker="+", ms=8, color="#90a4ae")
        if lam:  # where the points were
            ax.scatter(*x.T, marker="s", s=26, fc="none", ec=IMAGE, alpha=0.35, lw=1)
            ax.scatter(*y.T, marker="o", s=26, fc="none", ec=TEXT, alpha=0.35, lw=1)
        ax.scatter(*xs.T, marker="s", s=32, color=IMAGE, label="image embeddings", zorder=3)
        ax.scatter(*ys.T, marker="o", s=32, color=TEXT, label="text embeddings", zorder=3)
        mx, my = xs.mean(axis=0), ys.mean(axis=0)
        for m, colour in ((mx, IMAGE), (my, TEXT)):
            ax.plot([0, m[0]], [0, m[1]], color=colour, lw=0.8, ls=":")
        ax.plot(*mx, marker="s", ms=9, mfc="white", mec=IMAGE, mew=2, zorder=4)
        ax.plot(*my, marker="o", ms=9, mfc="white", mec=TEXT, mew=2, zorder=4)
        ax.add_patch(FancyArrowPatch(tuple(my), tuple(mx), arrowstyle="-|>", mutation_scale=14,
                                     color=INK, lw=1.6, zorder=5, shrinkA=6, shrinkB=6))
        if lam:  # below the arrow: the points crowd the arc above it
            ax.text(0.5 * (mx[0] + my[0]), min(mx[1], my[1]) - 0.1, "a smaller gap",
                    ha="center", va="top", fontsize=9 * FONT, color=INK)
        else:
            ax.text(0.5 * (mx[0] + my[0]), max(mx[1], my[1]) + 0.05, "\u0394", ha="center",
                    va="bottom", fontsize=10 * FONT, color=INK)
        ax.text(mx[0] + 0.03, mx[1] - 0.07, "mean image", fontsize=8 * FONT, color=IMAGE,
                va="top")
        ax.text(my[0] - 0.03, my[1] - 0.07, "mean text", fontsize=8 * FONT, color=TEXT,
                ha="right", va="top")
        ax.set_title(title, fontsize=9 * FONT, color=INK)
        ax.set(xlim=(-1.2, 1.2), ylim=(-0.42, 1.12), aspect="equal", xticks=[], yticks=[])
        for side in ax.spines.values():
            side.set_visible(False)
    axes[0].legend(loc="lower center", fontsize=8 * FONT, frameon=False, ncols=2)
    axes[1].text(0, -0.3, "image x \u2192 x \u2212 (lam/2) \u0394, text y \u2192 y + (lam/2) "
                 "\u0394, each back onto the sphere;\nlam = 1 makes the means meet (before "
                 "renormalizing). A sketch, not a measurement.",
                 ha="center", va="center", fontsize=7 * FONT, color=INK)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.02, wspace=0.04)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)

if __name__ == "__main__":
    import sys

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE  # another folder, to preview
    suffix = ".png" if "--png" in sys.argv else ".svg"
    training_figure(out / f"clip-training{suffix}")
    training_figure_narrow(out / f"clip-training-narrow{suffix}")
    zero_shot_figure(out / f"clip-zero-shot{suffix}")
    scenes_figure(out / f"scenes-samples{suffix}")
    bag_of_words_figure(out / f"bag-of-words{suffix}")
    modality_gap_figure(out / f"modality-gap{suffix}")
    print("wrote", out / f"clip-training{suffix}", out / f"clip-zero-shot{suffix}",
          out / f"scenes-samples{suffix}", out / f"bag-of-words{suffix}", "and",
          out / f"modality-gap{suffix}")
