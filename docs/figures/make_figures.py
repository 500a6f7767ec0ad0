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

Each has a ``-narrow`` twin for a phone, 5 in wide with no word under 9.5 pt (9 px or more in
a 350-px column), which the pages pick below 700 px with ``<picture>``. The wide drawings are
9.6-11 in wide with no word under 10-11 pt, so that they too reach 9 px in a laptop's 648-px
column (tests/test_site.py measures both).

The pictures and captions are real samples of ``numclip.data`` and ``numclip.scenes``; the output is
deterministic (no dates, fixed SVG ids), so re-running it changes nothing.
"""

from __future__ import annotations

import textwrap
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


def canvas(width, height):
    """A figure of ``width`` x ``height`` inches whose one axes, without frame or ticks,
    fills it and counts in inches, so a drawing's coordinates are its sizes."""
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


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


def similarity_grid(ax, x0, y0, size, n, gap, ms, mew):
    """The N x N logit matrix at (x0, y0): true pairs coloured on the diagonal, each row
    marked by its image (a square, ``gap[0]`` to the left) and each column by its text
    (a circle, ``gap[1]`` above)."""
    cell = size / n
    for i in range(n):
        for j in range(n):
            diag = i == j
            ax.add_patch(FancyBboxPatch((x0 + j * cell, y0 + size - (i + 1) * cell), cell, cell,
                                        boxstyle="square,pad=0", lw=1, ec="white",
                                        fc=PAIR_COLOURS[i] if diag else "#cfd8dc",
                                        alpha=0.9 if diag else 0.6))
        ax.plot([x0 - gap[0]], [y0 + size - (i + 0.5) * cell], marker="s", ms=ms,
                mfc=PAIR_COLOURS[i], mec=IMAGE, mew=mew)
        ax.plot([x0 + (i + 0.5) * cell], [y0 + size + gap[1]], marker="o", ms=ms,
                mfc=PAIR_COLOURS[i], mec=TEXT, mew=mew)


def training_figure(path):
    """The pairs, the two encoders, the shared space and the N x N logits the loss scores.
    11 in wide, no word under 11 pt: 9 px or more in a laptop's 648-px column."""
    images, captions = samples()
    n = len(images)
    width, height = 11, 4.6
    small = 11  # points: the smallest words
    fig, ax = canvas(width, height)

    # the pairs: N images in a row, their N captions below
    ax.text(0.15, 4.3, "N image-caption pairs", fontsize=11 * FONT, color=INK, weight="bold")
    for i, img in enumerate(images):
        x = 0.2 + 0.68 * i
        ax.imshow(img, extent=(x, x + 0.55, 3.2, 3.75), interpolation="nearest", zorder=2)
        ax.add_patch(FancyBboxPatch((x, 3.2), 0.55, 0.55, boxstyle="square,pad=0",
                                    fc="none", ec=PAIR_COLOURS[i], lw=2.2, zorder=3))
    for i, cap in enumerate(captions):
        y = 2.3 - 0.42 * i
        ax.text(0.2, y, f"\u201c{cap}\u201d", va="center", fontsize=9 * FONT,
                color=PAIR_COLOURS[i])
    ax.text(0.2, 0.42, "image i and caption i belong\ntogether; every other caption\n"
            "is a negative for image i", fontsize=small, color=INK, va="center")

    # the encoders
    encoder(ax, 3.25, 2.85, 1.2, 1.3, "image\nencoder", IMAGE)
    encoder(ax, 3.25, 0.75, 1.2, 1.3, "text\nencoder", TEXT)
    arrow(ax, (2.85, 3.5), (3.22, 3.5), IMAGE)
    arrow(ax, (2.95, 1.4), (3.22, 1.4), TEXT)
    ax.text(3.85, 2.62, "pixels \u2192 D numbers", ha="center", fontsize=small, color=IMAGE)
    ax.text(3.85, 0.52, "words \u2192 D numbers", ha="center", fontsize=small, color=TEXT)

    # the shared space: unit circle, matching pairs close together
    cx, cy, r = 6.15, 2.1, 1.2
    ax.add_patch(Circle((cx, cy), r, fc="#eceff1", ec="#90a4ae", lw=1))
    ax.text(cx, cy + r + 0.75, "shared space, L2-normalized", ha="center", fontsize=10 * FONT,
            color=INK, weight="bold")
    ax.text(cx, cy + r + 0.08, "(each embedding a point\non the unit sphere)", ha="center",
            va="bottom", fontsize=small, color=INK)
    arrow(ax, (4.5, 3.5), (cx - 0.85, cy + 0.85), IMAGE)
    arrow(ax, (4.5, 1.4), (cx - 0.95, cy - 0.75), TEXT)
    angles = np.deg2rad([130, 35, -55, -150])
    for i, a in enumerate(angles):
        for offset, marker, colour in ((-0.12, "s", IMAGE), (0.12, "o", TEXT)):
            px, py = cx + r * np.cos(a + offset), cy + r * np.sin(a + offset)
            ax.plot([cx, px], [cy, py], color=PAIR_COLOURS[i], lw=1, alpha=0.6)
            ax.plot(px, py, marker=marker, ms=8, mfc=PAIR_COLOURS[i], mec=colour, mew=1.8)
    ax.plot([cx - 0.8], [0.4], marker="s", ms=7, mfc="white", mec=IMAGE, mew=1.8)
    ax.text(cx - 0.68, 0.4, "image", va="center", fontsize=small)
    ax.plot([cx + 0.2], [0.4], marker="o", ms=7, mfc="white", mec=TEXT, mew=1.8)
    ax.text(cx + 0.32, 0.4, "text", va="center", fontsize=small)

    # the similarity matrix
    x0, y0, size = 7.8, 1.05, 1.8
    cell = size / n
    arrow(ax, (cx + r + 0.05, cy), (x0 - 0.3, cy), INK)
    ax.text(width - 0.1, y0 + size + 0.95, "logits  S = e\u02e2 I T\u1d40   (N \u00d7 N)",
            ha="right", fontsize=10 * FONT, color=INK, weight="bold")
    similarity_grid(ax, x0, y0, size, n, gap=(0.15, 0.17), ms=8, mew=1.8)
    ax.text(x0 + size + 0.12, y0 + size - 0.5 * cell, "softmax along\neach row:\nimage \u2192 text",
            fontsize=small, va="center", color=IMAGE)
    ax.text(x0 + size + 0.12, y0 + 0.5 * cell, "and down\neach column:\ntext \u2192 image",
            fontsize=small, va="center", color=TEXT)
    ax.text(x0 + size / 2, y0 - 0.15, "the loss pulls the diagonal\n(the true pairs) up and "
            "every\nother entry down", ha="center", va="top", fontsize=small, color=INK)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def training_figure_narrow(path):
    """The same story as :func:`training_figure`, top to bottom, for a phone's column (about
    350 px): 5 in wide, so its smallest text (9.5 pt) is shown at 9 px or more."""
    images, captions = samples()
    n = len(images)
    width, height = 5.0, 10.2
    fig, ax = canvas(width, height)
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
    ax.text(0.15, y0 + size + 0.42, "logits  S = e\u02e2 I T\u1d40  (N \u00d7 N)",
            fontsize=title, color=INK, weight="bold", va="center")
    similarity_grid(ax, x0, y0, size, n, gap=(0.14, 0.13), ms=7, mew=1.6)
    ax.text(x0 + size + 0.25, y0 + size - 0.35, "softmax along each row:\nimage \u2192 text",
            fontsize=small, va="center", color=IMAGE)
    ax.text(x0 + size + 0.25, y0 + 0.35, "and down each column:\ntext \u2192 image",
            fontsize=small, va="center", color=TEXT)
    ax.text(0.15, 0.2, "the loss pulls the diagonal (the true pairs) up\n"
            "and every other entry down", va="center", fontsize=small, color=INK)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def zero_shot_figure(path):
    """Prompts -> text encoder -> class embeddings, the image -> image encoder, and the
    scores.  10 in wide, no word under 10.4 pt: 9 px or more in a laptop's column (648 px)."""
    data = make_dataset(40, seed=5, compositions="all")
    img = data.images[0]
    classes = [class_name(int(data.labels[0]))] + [
        class_name(int(c)) for c in sorted(set(data.labels.tolist()) - {int(data.labels[0])})[:3]]
    width, height = 10, 3.6
    fig, ax = canvas(width, height)

    # class names -> prompts -> text encoder -> one embedding per class
    ax.text(0.15, 3.3, "1. write every class name into a prompt", fontsize=10 * FONT, weight="bold",
            color=INK)
    ys = np.linspace(2.65, 1.55, len(classes))
    for c, y in zip(classes, ys, strict=True):
        box(ax, (0.2, y - 0.17), 2.65, 0.34, f"a photo of a {c}.", TEXT, fontsize=8)
    encoder(ax, 3.15, 1.4, 1.15, 1.4, "text\nencoder", TEXT)
    for y in ys:
        arrow(ax, (2.9, y), (3.13, y), TEXT, lw=0.9)
    ax.text(5.0, 2.95, "class embeddings", fontsize=9 * FONT, ha="center", color=TEXT)
    for y in ys:
        ax.plot([5.0], [y], marker="o", ms=9, mfc="white", mec=TEXT, mew=2)
        arrow(ax, (4.35, y), (4.85, y), TEXT, lw=0.9)

    # the image
    ax.text(0.15, 0.95, "2. encode the image", fontsize=10 * FONT, weight="bold", color=INK)
    ax.imshow(img, extent=(0.3, 0.8, 0.1, 0.6), interpolation="nearest")
    encoder(ax, 3.15, 0.05, 1.15, 0.6, "image enc.", IMAGE)
    arrow(ax, (0.85, 0.35), (3.13, 0.35), IMAGE)
    ax.plot([5.0], [0.35], marker="s", ms=9, mfc="white", mec=IMAGE, mew=2)
    arrow(ax, (4.35, 0.35), (4.85, 0.35), IMAGE)

    # cosine similarities and argmax
    ax.text(6.0, 3.45, "3. the most similar prompt\n    is the prediction", fontsize=10 * FONT,
            weight="bold", color=INK, va="top")
    lengths = [0.75, 0.2, 0.12, 0.04]  # a sketch, not a measurement
    for i, (c, y, s) in enumerate(zip(classes, ys, lengths, strict=True)):
        ax.add_patch(FancyBboxPatch((7.45, y - 0.13), 1.8 * s, 0.26, boxstyle="square,pad=0",
                                    fc=TEXT, alpha=1 if i == 0 else 0.3, ec="none"))
        ax.text(7.35, y, c, ha="right", va="center", fontsize=8.5 * FONT, color=INK,
                weight="bold" if i == 0 else "normal")
        if i == 0:
            ax.text(7.5 + 1.8 * s, y, "\u2190 prediction", va="center", fontsize=8 * FONT,
                    color=INK)
        arrow(ax, (5.15, y), (5.7, y), "#b0bec5", style="-", lw=0.8)
    ax.text(6.0, 0.75, "score of each class = cosine of its\nembedding with the image's; no "
            "classifier\nwas trained on these labels", fontsize=8 * FONT, color=INK,
            va="center")
    arrow(ax, (5.15, 0.45), (5.75, 1.4), IMAGE, rad=0.25)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def scenes_figure(path, narrow=False):
    """Twelve scenes of seen compositions (as training sees them), six with relation
    captions and six with binding captions, each with its caption and hard negative; 9.6 in
    wide, no word under 10 pt (9 px in a laptop's 648-px column).  ``narrow``: three of each
    in three columns, 5 in wide, no word under 9.5 pt (a phone's drawing)."""
    per_kind, width, font = (3, NARROW_W, SMALL) if narrow else (6, 9.6, 10)
    rows = [make_scenes(6, seed=4 + k, kinds=kind) for k, kind in enumerate(KINDS)]
    w = width / per_kind
    side = w - 0.3  # the image's side; the rest of the column is a margin
    wrap = 18 if narrow else 19  # characters per line: what fits under the image
    h = side + 1.95  # a row: its heading, the images, three lines of caption and of negative
    height = len(rows) * h
    fig, ax = canvas(width, height)
    heading = "{} captions and hard negatives (\u2717)" if narrow else \
        "{} captions, each with its hard negative (\u2717)"
    for r, (kind, scenes) in enumerate(zip(KINDS, rows, strict=True)):
        top = height - r * h - 0.5  # top edge of this row's images
        ax.text(0.08, top + 0.27, heading.format(kind), fontsize=NORMAL, color=INK,
                weight="bold", va="center")
        for c in range(per_kind):
            x = c * w + 0.15
            ax.imshow(scenes.images[c], extent=(x, x + side, top - side, top),
                      interpolation="nearest", zorder=2)
            ax.add_patch(FancyBboxPatch((x, top - side), side, side, boxstyle="square,pad=0",
                                        fc="none", ec="#90a4ae", lw=1, zorder=3))
            caption = textwrap.fill(scenes.captions[c], wrap)
            ax.text(x + side / 2, top - side - 0.1, caption, ha="center", va="top",
                    fontsize=font, color=TEXT, linespacing=1.1)
            below = top - side - 0.1 - 0.165 * (caption.count("\n") + 1) - 0.1  # under it
            ax.text(x + side / 2, below, "\u2717 " + textwrap.fill(scenes.negatives[c], wrap),
                    ha="center", va="top", fontsize=font, color="#78909c", linespacing=1.1)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def bag_of_words_figure(path):
    """A caption and its hard negative as word tiles (one colour per word), and the bag of
    words both reduce to: equal counts, so equal sums of word vectors.  9.6 in wide, no
    word under 10 pt (9 px in a laptop's 648-px column)."""
    caption = "a red circle to the left of a blue square"
    rows = [("caption", caption), ("hard negative", swap_objects(caption))]
    words = tokenize(caption)
    vocab = list(dict.fromkeys(words))  # in order of first use
    palette = plt.get_cmap("tab10")
    colour = {w: palette(i % 10) for i, w in enumerate(vocab)}
    width, height = 9.6, 6.3
    fig, ax = canvas(width, height)
    tile_w, gap = 0.86, 0.06
    for r, (label, text) in enumerate(rows):
        y = 5.55 - 1.2 * r
        ax.text(0.1, y + 0.42, label, fontsize=NORMAL, color=INK, weight="bold")
        for k, word in enumerate(tokenize(text)):
            x = 0.1 + k * (tile_w + gap)
            ax.add_patch(FancyBboxPatch((x, y - 0.2), tile_w, 0.4,
                                        boxstyle="round,pad=0.01,rounding_size=0.05",
                                        fc=colour[word], ec="none", alpha=0.25))
            ax.text(x + tile_w / 2, y, word, ha="center", va="center", fontsize=NORMAL,
                    color=INK)
            ax.text(x + tile_w / 2, y - 0.33, f"{k + 1}", ha="center", va="center",
                    fontsize=10, color="#90a4ae")
    ax.text(0.1, 3.35, "the same words in another order: position k holds another word,\n"
            "but every word occurs as often as before", fontsize=10, color=INK, va="center")

    # the bag: each word's count, the same for both rows
    x0, y0, bar_w, unit = 0.35, 0.75, 0.44, 0.55
    counts = {w: words.count(w) for w in vocab}
    ax.text(0.1, 2.55, "the bag of words, x(c): counts / L", fontsize=NORMAL, color=INK,
            weight="bold")
    for i, w in enumerate(vocab):
        x = x0 + i * (bar_w + 0.06)
        ax.add_patch(FancyBboxPatch((x, y0), bar_w, unit * counts[w], boxstyle="square,pad=0",
                                    fc=colour[w], ec="none", alpha=0.6))
        ax.text(x + bar_w / 2, y0 - 0.08, w, ha="right", va="top", rotation=50,
                fontsize=10, color=INK, rotation_mode="anchor")
        ax.text(x + bar_w / 2, y0 + unit * counts[w] + 0.05, str(counts[w]), ha="center",
                va="bottom", fontsize=10, color=INK)
    ax.text(5.4, 2.0, "caption and hard negative: identical", fontsize=10, color=TEXT,
            va="center")
    ax.text(5.4, 1.2, "W\u1d40x(c) = (1/L) \u03a3\u2096 w(c\u2096): a sum, which no\n"
            "reordering changes, so both get one\nembedding, and one score with every image",
            fontsize=10, color=INK, va="center")
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def modality_gap_figure(path, narrow=False):
    """A sketch (not a measurement): two cones of unit embeddings on a circle, their means
    and the gap vector; then both modalities shifted by half of lam * gap towards each
    other and projected back onto the circle, as Liang et al. do.  ``narrow``: the two
    panels one above the other, 5 in wide, no word under 9.5 pt (a phone's drawing)."""
    def fs(pt):  # a font size of the wide drawing, in points, as this drawing uses it
        return max(SMALL, 1.15 * pt) if narrow else pt * FONT

    rng = np.random.default_rng(0)  # the points of the sketch, the same on every run
    images = np.deg2rad(45 + 14 * rng.standard_normal(16))
    texts = np.deg2rad(135 + 14 * rng.standard_normal(16))
    fig, axes = plt.subplots(*((2, 1) if narrow else (1, 2)),
                             figsize=(NARROW_W, 7.3) if narrow else (9.6, 4.2))
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
                    ha="center", va="top", fontsize=fs(9), color=INK)
        else:
            ax.text(0.5 * (mx[0] + my[0]), max(mx[1], my[1]) + 0.05, "\u0394", ha="center",
                    va="bottom", fontsize=fs(10), color=INK)
        ax.text(mx[0] + 0.03, mx[1] - 0.07, "mean image", fontsize=fs(8), color=IMAGE,
                va="top")
        ax.text(my[0] - 0.03, my[1] - 0.07, "mean text", fontsize=fs(8), color=TEXT,
                ha="right", va="top")
        ax.set_title(title, fontsize=fs(9), color=INK)
        ax.set(xlim=(-1.2, 1.2), ylim=(-0.5 if narrow else -0.52, 1.12), aspect="equal",
               xticks=[], yticks=[])
        for side in ax.spines.values():
            side.set_visible(False)
    axes[0].legend(loc="lower center", fontsize=fs(8), frameon=False, ncols=2)
    note = ("image x \u2192 x \u2212 (lam/2) \u0394, text y \u2192 y + (lam/2) \u0394, each back "
            "onto the sphere; lam = 1 makes the means meet (before renormalizing). A sketch, "
            "not a measurement.")
    if narrow:  # under both panels, where the four lines have the figure's width
        fig.text(0.5, 0.01, textwrap.fill(note, 54), ha="center", va="bottom", fontsize=fs(7),
                 color=INK)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.96, bottom=0.1, hspace=0.1)
    else:
        axes[1].text(0, -0.32, textwrap.fill(note, 58), ha="center", va="center",
                     fontsize=fs(8), color=INK)
        fig.subplots_adjust(left=0.01, right=0.99, top=0.92, bottom=0.02, wspace=0.04)
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


# The phone's drawings: 5 in wide, as training_figure_narrow, so that 9.5-pt words are shown at
# 9 px or more in a phone's column (about 350 px); the pages pick them with <picture>.
NARROW_W = 5.0
SMALL, NORMAL, HEAD = 9.5, 11, 12  # points


def zero_shot_figure_narrow(path):
    """:func:`zero_shot_figure` told top to bottom: prompts, then the image, then the scores."""
    data = make_dataset(40, seed=5, compositions="all")
    img = data.images[0]
    classes = [class_name(int(data.labels[0]))] + [
        class_name(int(c)) for c in sorted(set(data.labels.tolist()) - {int(data.labels[0])})[:3]]
    height = 7.6
    fig, ax = canvas(NARROW_W, height)

    ax.text(0.1, 7.35, "1. write every class name\n    into a prompt", fontsize=HEAD,
            weight="bold", color=INK, va="top")
    ys = np.linspace(6.2, 4.85, len(classes))
    for c, y in zip(classes, ys, strict=True):
        box(ax, (0.1, y - 0.17), 2.6, 0.34, f"a photo of a {c}.", TEXT, fontsize=SMALL / FONT)
    encoder(ax, 2.95, 4.7, 0.95, 1.65, "text\nenc.", TEXT)
    ax.text(4.9, 6.55, "class\nembeddings", fontsize=SMALL, ha="right", va="bottom", color=TEXT)
    for y in ys:
        arrow(ax, (2.75, y), (2.93, y), TEXT, lw=0.9)
        ax.plot([4.55], [y], marker="o", ms=9, mfc="white", mec=TEXT, mew=2)
        arrow(ax, (3.92, y), (4.42, y), TEXT, lw=0.9)

    ax.text(0.1, 4.3, "2. encode the image", fontsize=HEAD, weight="bold", color=INK, va="top")
    ax.imshow(img, extent=(0.3, 1.0, 3.0, 3.7), interpolation="nearest")
    encoder(ax, 2.95, 3.05, 0.95, 0.6, "image\nenc.", IMAGE)
    arrow(ax, (1.05, 3.35), (2.93, 3.35), IMAGE)
    ax.plot([4.55], [3.35], marker="s", ms=9, mfc="white", mec=IMAGE, mew=2)
    arrow(ax, (3.92, 3.35), (4.42, 3.35), IMAGE)

    ax.text(0.1, 2.6, "3. the most similar prompt\n    is the prediction", fontsize=HEAD,
            weight="bold", color=INK, va="top")
    lengths = [0.75, 0.2, 0.12, 0.04]  # a sketch, not a measurement
    for i, (c, y, s) in enumerate(zip(classes, np.linspace(1.55, 0.95, 4), lengths,
                                      strict=True)):
        ax.add_patch(FancyBboxPatch((2.0, y - 0.1), 1.9 * s, 0.2, boxstyle="square,pad=0",
                                    fc=TEXT, alpha=1 if i == 0 else 0.3, ec="none"))
        ax.text(1.9, y, c, ha="right", va="center", fontsize=SMALL, color=INK,
                weight="bold" if i == 0 else "normal")
        if i == 0:
            ax.text(2.05 + 1.9 * s, y, "\u2190 prediction", va="center", fontsize=SMALL,
                    color=INK)
    ax.text(0.1, 0.4, "score = cosine of the class embedding with the\nimage's; no classifier "
            "was trained on these labels", fontsize=SMALL, color=INK, va="center")
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def bag_of_words_figure_narrow(path):
    """:func:`bag_of_words_figure` top to bottom: each row's tiles in two lines of five,
    then the one bag of words both reduce to."""
    caption = "a red circle to the left of a blue square"
    rows = [("caption", caption), ("hard negative", swap_objects(caption))]
    words = tokenize(caption)
    vocab = list(dict.fromkeys(words))
    palette = plt.get_cmap("tab10")
    colour = {w: palette(i % 10) for i, w in enumerate(vocab)}
    height = 9.0
    fig, ax = canvas(NARROW_W, height)
    per_line, tile_w, gap = 5, 0.88, 0.08
    for r, (label, text) in enumerate(rows):
        y_top = 8.75 - 1.85 * r
        ax.text(0.1, y_top, label, fontsize=NORMAL, color=INK, weight="bold", va="top")
        for k, word in enumerate(tokenize(text)):
            line, pos = divmod(k, per_line)
            x, y = 0.1 + pos * (tile_w + gap), y_top - 0.55 - 0.72 * line
            ax.add_patch(FancyBboxPatch((x, y - 0.2), tile_w, 0.4,
                                        boxstyle="round,pad=0.01,rounding_size=0.05",
                                        fc=colour[word], ec="none", alpha=0.25))
            ax.text(x + tile_w / 2, y, word, ha="center", va="center", fontsize=NORMAL,
                    color=INK)
            ax.text(x + tile_w / 2, y - 0.32, f"{k + 1}", ha="center", va="center",
                    fontsize=SMALL, color="#90a4ae")
    ax.text(0.1, 4.85, "the same words in another order: position k\nholds another word, but "
            "every word occurs\nas often as before", fontsize=SMALL, color=INK, va="center")

    x0, y0, bar_w, unit = 0.35, 1.75, 0.44, 0.55
    counts = {w: words.count(w) for w in vocab}
    ax.text(0.1, 4.05, "the bag of words, x(c): counts / L", fontsize=NORMAL, color=INK,
            weight="bold")
    ax.text(0.1, 3.7, "caption and hard negative: identical", fontsize=SMALL, color=TEXT)
    for i, w in enumerate(vocab):
        x = x0 + i * (bar_w + 0.06)
        ax.add_patch(FancyBboxPatch((x, y0), bar_w, unit * counts[w], boxstyle="square,pad=0",
                                    fc=colour[w], ec="none", alpha=0.6))
        ax.text(x + bar_w / 2, y0 - 0.08, w, ha="right", va="top", rotation=50,
                fontsize=SMALL, color=INK, rotation_mode="anchor")
        ax.text(x + bar_w / 2, y0 + unit * counts[w] + 0.05, str(counts[w]), ha="center",
                va="bottom", fontsize=SMALL, color=INK)
    ax.text(0.1, 0.45, "W\u1d40x(c) = (1/L) \u03a3\u2096 w(c\u2096): a sum, which no "
            "reordering\nchanges, so both get one embedding, and one\nscore with every image",
            fontsize=SMALL, color=INK, va="center")
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
    zero_shot_figure_narrow(out / f"clip-zero-shot-narrow{suffix}")
    scenes_figure(out / f"scenes-samples-narrow{suffix}", narrow=True)
    bag_of_words_figure_narrow(out / f"bag-of-words-narrow{suffix}")
    modality_gap_figure(out / f"modality-gap-narrow{suffix}", narrow=True)
    print("wrote the diagrams and their -narrow twins to", out)
