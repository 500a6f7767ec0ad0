"""What a trained tiny CLIP can do: zero-shot accuracy, retrieval, a linear probe.

Every function checks its arguments before it computes anything (a
:class:`~numclip.train.TrainState`, the splits :func:`~numclip.train.make_splits`
returns, ks, prompt templates) and raises a ``TypeError`` or ``ValueError`` that
names the argument and says what was expected.  The figures of a run are
:func:`numclip.plot.write_plots`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from numclip.backend import as_int
from numclip.data import CLASSES, MAX_COUNT, Dataset, class_name, phrase
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
           "counting_accuracy", "any_count_accuracy", "check_state"]


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
    check_state(state)
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


def counting_accuracy(state, dataset) -> float:
    """Zero-shot counting: how often "a photo of two red circles" (the image's own count)
    scores above the same prompt with the other counts. Chance is 1/3.

    The colour and shape come from the image's label, so only the count is asked;
    the images' captions said how many objects there were, so the words were trained.

    Args:
        state: a :class:`~numclip.train.TrainState`.
        dataset: a :class:`~numclip.data.Dataset` (e.g. ``splits["seen"]``).
    """
    texts, images = _count_prompts_and_images(state, dataset)  # (C, 3, D), (n, D)
    scores = np.einsum("nd,nkd->nk", images, texts[dataset.labels])  # (n, 3): its 3 prompts
    return float(np.mean(np.argmax(scores, axis=1) + 1 == dataset.counts))


def any_count_accuracy(state, dataset) -> float:
    """Zero-shot top-1 among all classes with prompts that name every count.

    Each class's embedding is the mean of "a photo of one red circle", "... two red
    circles" and "... three red circles", renormalised (a prompt ensemble, CLIP paper
    section 3.1.4). The default prompts ("a photo of a red circle.") name one object:
    a model that learned to count (the transformer does, 0.99 on
    :func:`counting_accuracy`) then rightly finds two circles unlike "a circle".

    Args:
        state: a :class:`~numclip.train.TrainState`.
        dataset: a :class:`~numclip.data.Dataset`.
    """
    texts, images = _count_prompts_and_images(state, dataset)  # (C, 3, D), (n, D)
    classes = np.mean(texts, axis=1)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)  # (C, D)
    return float(np.mean(np.argmax(images @ classes.T, axis=1) == dataset.labels))


def _count_prompts_and_images(state, dataset):
    """The embeddings of "a photo of one/two/three <class>" per class, ``(C, 3, D)``, and
    of the dataset's images, ``(n, D)``, as NumPy arrays (after checking both arguments)."""
    check_state(state)
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a numclip.data.Dataset, got {type(dataset).__name__}")
    model = state.model
    prompts = [phrase(color, shape, k) for color, shape in CLASSES
               for k in range(1, MAX_COUNT + 1)]
    texts = model.encode_texts(model.text_inputs(state.vocab, prompts, warn=False))
    texts = np.reshape(np.asarray(texts), (len(CLASSES), MAX_COUNT, -1))  # (C, 3, D)
    return texts, np.asarray(model.encode_images(dataset.pixels()))


def checkpoint_metrics(state) -> dict:
    """What the trained state holds and no prompt changes: epochs, final loss, scale (and bias).

    Args:
        state: a :class:`~numclip.train.TrainState`.
    """
    check_state(state)
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
    test_texts = model.encode_texts(model.text_inputs(vocab, seen.captions))
    recall = recall_at_k(test_images, test_texts, k=1, labels=same_caption)
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
        "zero_shot_counting": counting_accuracy(state, seen),  # chance 1/3
        "zero_shot_seen_any_count": any_count_accuracy(state, seen),
        "zero_shot_heldout_any_count": any_count_accuracy(state, splits["heldout"]),
        **saved,
    }


# ----------------------------------------------------------------------------- validators

def check_state(state) -> None:
    """Refuse anything but a :class:`~numclip.train.TrainState` with a TypeError that says so.

    Every function here (and :func:`numclip.plot.write_plots`) checks its state with it.
    """
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
