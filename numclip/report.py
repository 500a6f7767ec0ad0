"""What a trained tiny CLIP can do: zero-shot accuracy, retrieval, a linear probe, figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numclip.data import CLASSES, COLORS, HELDOUT, class_name
from numclip.zeroshot import (
    PROMPT_TEMPLATES,
    chance,
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
    """Zero-shot top-k accuracy among all classes, per test split: ``{split: {k: acc}}``."""
    kwargs = {} if templates is None else {"templates": tuple(templates)}
    class_embeds = class_embeddings(state.model, state.vocab, class_names(), **kwargs)
    result = {}
    for split in ("seen", "heldout"):
        scores = zero_shot_scores(state.model, splits[split].pixels(), class_embeds)
        result[split] = {k: top_k_accuracy(scores, splits[split].labels, k) for k in top_k}
    return result


def zero_shot_metrics(state, splits: dict, templates=None) -> dict:
    """What the prompt templates decide: zero-shot top-1 and top-5 accuracy on both splits.

    Args:
        templates: prompt templates with one ``{}``; None means
            :data:`numclip.zeroshot.PROMPT_TEMPLATES`.
    """
    zs = evaluate(state, splits, templates)
    return {
        "templates": list(PROMPT_TEMPLATES if templates is None else templates),
        "classes": len(CLASSES),
        "chance": chance(len(CLASSES)),
        "zero_shot_seen": zs["seen"][1],
        "zero_shot_seen_top5": zs["seen"][5],
        "zero_shot_heldout": zs["heldout"][1],
        "zero_shot_heldout_top5": zs["heldout"][5],
    }


def checkpoint_metrics(state) -> dict:
    """What the trained state holds and no prompt changes: epochs, final loss, scale (and bias)."""
    params = state.model.params
    return {
        "epochs": state.epoch,
        "final_loss": state.history["loss"][-1] if state.history["loss"] else None,
        "scale": float(np.exp(float(params["logit_scale"]))),
    } | ({"bias": float(params["logit_bias"])} if "logit_bias" in params else {})


def final_metrics(state, splits: dict, templates=None) -> dict:
    """The numbers ``numclip train`` ends with: zero-shot, a linear probe, retrieval, the scale."""
    zs = zero_shot_metrics(state, splits, templates)
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
        folder: where the PNGs go (created if missing).
        initial_model: the model before training, for the "before" heatmap.
    """
    import matplotlib.pyplot as plt  # here, so that metrics never need matplotlib

    from numclip import plot

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
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
