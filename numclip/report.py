"""What a trained tiny CLIP can do: zero-shot accuracy, retrieval, a linear probe.

Every function checks its arguments before it computes anything (a
:class:`~numclip.train.TrainState`, the splits :func:`~numclip.train.make_splits`
returns, ks, prompt templates) and raises a ``TypeError`` or ``ValueError`` that
names the argument and says what was expected.  The figures of a run are
:func:`numclip.plot.write_plots`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np

from numclip.backend import as_int, to_numpy
from numclip.data import (
    CLASSES,
    COLORS,
    MAX_COUNT,
    SHAPES,
    TEMPLATES,
    Dataset,
    class_name,
    phrase,
)
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
)

__all__ = ["evaluate", "zero_shot_metrics", "checkpoint_metrics", "final_metrics",
           "counting_accuracy", "DEFAULT_PHRASINGS", "default_prompts", "check_state",
           "SCENE_CLASSES", "scene_zero_shot"]

# The default zero-shot classifier.  Every training caption says how many objects it shows
# ("a red circle", "three red circles"), so the default prompts do too: PROMPT_TEMPLATES'
# four phrasings (these indices into data.TEMPLATES) at each count, 12 prompts per class,
# averaged (prompt ensembling, the CLIP paper's section 3.1.4).  PROMPT_TEMPLATES alone
# ("a photo of a red circle.") describe one object, and a model that counts (the
# transformer does, 1.00) rightly finds three circles unlike "a red circle": 0.74 on seen
# compositions where these prompts give 0.99.  final_metrics reports both.
DEFAULT_PHRASINGS = (0, 1, 3, 4)


def class_names() -> list[str]:
    return [class_name(c) for c in range(len(CLASSES))]


def default_prompts(c: int) -> list[str]:
    """The default zero-shot prompts of class ``c``, count-major:
    ``default_prompts(0)[:2] == ["a photo of one red circle", "an image of one red circle"]``.

    Args:
        c: an index into :data:`numclip.data.CLASSES`.
    """
    color, shape = CLASSES[as_int(c, "c", 0, len(CLASSES) - 1)]
    return [phrase(color, shape, k, t) for k in range(1, MAX_COUNT + 1)
            for t in DEFAULT_PHRASINGS]


def _default_class_embeddings(model, vocab) -> np.ndarray:
    """``(C, D)``: each class's :func:`default_prompts`, embedded, averaged, renormalised."""
    embeds = np.mean(_prompt_embeddings(model, vocab, map(default_prompts, range(len(CLASSES)))),
                     axis=1)
    return embeds / np.linalg.norm(embeds, axis=1, keepdims=True)


def _prompt_embeddings(model, vocab, prompts_per_class) -> np.ndarray:
    """``(C, K, D)`` NumPy: the embeddings of each class's K prompts, encoded in one batch."""
    prompts_per_class = list(prompts_per_class)
    texts = [t for prompts in prompts_per_class for t in prompts]
    embeds = to_numpy(model.encode_texts(model.text_inputs(vocab, texts, warn=False)))
    return np.reshape(embeds, (len(prompts_per_class), -1, embeds.shape[-1]))


def evaluate(state, splits: dict, templates=None, top_k=(1, 5)) -> dict:
    """Zero-shot top-k accuracy among all classes, per test split: ``{split: {k: acc}}``.

    For a run on scenes (``state.config.data == "scenes"``) the classes are the colours
    and shapes a scene can hold (:func:`scene_zero_shot`), and ``templates`` must be None.

    Args:
        state: a :class:`~numclip.train.TrainState`.
        splits: what :func:`~numclip.train.make_splits` returns.
        templates: a list of prompt templates, each with one ``{}`` for the class name
            (a lone str is refused, not split into letters); None means every class's
            :func:`default_prompts`, which name each count.
        top_k: the ks, ints from 1 to the number of classes (``(1, 5)``, a NumPy array);
            they come back as Python ints.
    """
    _check_state_and_splits(state, splits)
    if state.config.data == "scenes":
        if templates is not None:
            raise ValueError("templates apply to the shapes data's class names; a scenes run "
                             "is classified by its colours and shapes (scene_zero_shot)")
        top_k = _as_top_k(top_k)
        return {split: scene_zero_shot(state, splits[split], top_k)
                for split in ("seen", "heldout")}
    top_k = _as_top_k(top_k)
    class_embeds = _class_embeds(state, templates)
    return _accuracies(_test_images(state.model, splits), splits, class_embeds, top_k)


def _check_state_and_splits(state, splits) -> None:
    """The state, the splits, and that they are of one kind of data (shapes or scenes)."""
    check_state(state)
    check_splits(splits)
    from numclip.scenes import Scenes  # a small module; most runs never need it

    if (state.config.data == "scenes") != isinstance(splits["train"], Scenes):
        kind = type(splits["train"]).__name__
        raise TypeError(f"splits hold {kind} objects but the state was trained with "
                        f"data={state.config.data!r}; pass make_splits(state.config)")


def _class_embeds(state, templates) -> np.ndarray:
    """``(C, D)`` NumPy: every class's :func:`default_prompts` (``templates`` None) or its
    name in each template, embedded and averaged."""
    if templates is None:
        return _default_class_embeddings(state.model, state.vocab)
    return to_numpy(class_embeddings(state.model, state.vocab, class_names(),
                                     _as_templates(templates)))


def _test_images(model, splits) -> dict:
    """``{split: (n, D) NumPy}``: each test split's images, encoded once for every
    classifier that scores them."""
    return {split: to_numpy(model.encode_images(splits[split].pixels()))
            for split in ("seen", "heldout")}


def _accuracies(images: dict, splits: dict, class_embeds, top_k) -> dict:
    """``{split: {k: accuracy}}`` of the classifier ``class_embeds`` on encoded ``images``."""
    return {split: {k: top_k_accuracy(embeds @ class_embeds.T, splits[split].labels, k)
                    for k in top_k} for split, embeds in images.items()}


# The classes of scene zero-shot: ((colour, colour), (shape, shape)), each pair increasing,
# for the two colours and two shapes a scene holds (numclip.scenes: they differ in both).
SCENE_CLASSES: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = tuple(
    ((c0, c1), (s0, s1)) for c0 in range(len(COLORS)) for c1 in range(c0 + 1, len(COLORS))
    for s0 in range(len(SHAPES)) for s1 in range(s0 + 1, len(SHAPES)))  # 28 x 10 = 280


def scene_zero_shot(state, scenes, top_k=(1,)) -> dict:
    """Ordinary zero-shot classification of scenes: which two colours and which two shapes
    does the image hold?

    A class's prompt embedding is the mean of the four binding captions of its colours
    and shapes (``"a red circle and a blue square"``, the objects either way round and the
    colours either way over the shapes), renormalised: a prompt ensemble over what this
    question does not ask, word order and binding. Each class is a different multiset of
    words, so a bag-of-words encoder can answer it as well as any: the "ordinary"
    accuracy to read beside the probes (:mod:`numclip.probes`), which ask the rest.

    Args:
        state: a :class:`~numclip.train.TrainState`.
        scenes: a :class:`numclip.scenes.Scenes`.
        top_k: the ks, as for :func:`evaluate`.

    Returns:
        ``{k: accuracy}``; chance is ``k / 280``.
    """
    from numclip.scenes import Scenes, binding_caption

    check_state(state)
    if not isinstance(scenes, Scenes):
        raise TypeError(f"scenes must be a numclip.scenes.Scenes, got {type(scenes).__name__}")
    _check_image_size(state, scenes, "scenes")
    top_k = _as_top_k(top_k)
    classes = SCENE_CLASSES
    prompts = [binding_caption(x, y) for (c0, c1), (s0, s1) in classes
               for x, y in (((c0, s0), (c1, s1)), ((c1, s1), (c0, s0)),
                            ((c0, s1), (c1, s0)), ((c1, s0), (c0, s1)))]
    model = state.model
    texts = np.asarray(model.encode_texts(model.text_inputs(state.vocab, prompts, warn=False)))
    embeds = np.mean(np.reshape(texts, (len(classes), 4, -1)), axis=1)
    embeds /= np.linalg.norm(embeds, axis=1, keepdims=True)  # (280, D)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[(tuple(sorted(c)), tuple(sorted(s)))]
                       for c, s in zip(scenes.colors.tolist(), scenes.shapes.tolist(),
                                       strict=True)])
    scores = np.asarray(model.encode_images(scenes.pixels())) @ embeds.T  # (n, 280)
    return {k: top_k_accuracy(scores, labels, k) for k in top_k}


def zero_shot_metrics(state, splits: dict, templates=None) -> dict:
    """What the prompt templates decide: zero-shot top-1 and top-5 accuracy on both splits.

    Args:
        state, splits, templates: as for :func:`evaluate`.
    """
    check_state(state)
    if templates is not None:
        templates = _as_templates(templates)  # once: a generator cannot be read twice
    return _zero_shot_summary(state, evaluate(state, splits, templates), templates)


def _zero_shot_summary(state, zs: dict, templates) -> dict:
    """:func:`zero_shot_metrics` from the accuracies ``zs`` that :func:`evaluate` gives."""
    scenes = state.config.data == "scenes"  # classified by colours and shapes, no templates
    if templates is not None:
        prompts = {"templates": templates}
    else:  # the default prompts, in data.TEMPLATES' notation
        prompts = {"templates": [TEMPLATES[t] for t in DEFAULT_PHRASINGS],
                   "counts": list(range(1, MAX_COUNT + 1))}
    classes = len(SCENE_CLASSES) if scenes else len(CLASSES)
    return {
        **({} if scenes else prompts),
        "classes": classes,
        "chance": chance(classes),
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
    check_state(state)
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a numclip.data.Dataset, got {type(dataset).__name__}")
    _check_image_size(state, dataset, "dataset")
    return _counting_accuracy(state, dataset, to_numpy(state.model.encode_images(
        dataset.pixels())))


def _counting_accuracy(state, dataset, images) -> float:
    """:func:`counting_accuracy` of the dataset's encoded ``images``, ``(n, D)`` NumPy."""
    texts = _prompt_embeddings(state.model, state.vocab, (  # (C, 3, D): one, two, three
        [phrase(color, shape, k) for k in range(1, MAX_COUNT + 1)] for color, shape in CLASSES))
    scores = np.einsum("nd,nkd->nk", images, texts[dataset.labels])  # (n, 3): its 3 prompts
    return float(np.mean(np.argmax(scores, axis=1) + 1 == dataset.counts))


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
    check_state(state)
    if state.config.data == "scenes":
        return _scene_metrics(state, splits, templates)
    if templates is not None:
        templates = _as_templates(templates)  # once: a generator cannot be read twice
    _check_state_and_splits(state, splits)
    model, vocab = state.model, state.vocab
    images = _test_images(model, splits)  # each split encoded once, for every number below
    zs = _zero_shot_summary(state, _accuracies(images, splits, _class_embeds(state, templates),
                                               (1, 5)), templates)
    singular = _accuracies(images, splits, _class_embeds(state, PROMPT_TEMPLATES), (1,))
    seen, train_set = splits["seen"], splits["train"]
    test_images = images["seen"]
    same_caption = seen.labels * 4 + seen.counts  # one id per (colour, shape, count)
    test_texts = to_numpy(model.encode_texts(model.text_inputs(vocab, seen.captions)))
    recall = recall_at_k(test_images, test_texts, k=1, labels=same_caption)
    saved = checkpoint_metrics(state)
    return {
        "epochs": saved.pop("epochs"),
        **{k: zs[k] for k in ("classes", "zero_shot_seen", "zero_shot_seen_top5",
                              "zero_shot_heldout", "zero_shot_heldout_top5")},
        "linear_probe": linear_probe(to_numpy(model.encode_images(train_set.pixels())),
                                     train_set.labels, test_images, seen.labels,
                                     num_classes=len(CLASSES)),
        "chance": zs["chance"],
        "recall@1_image_to_text": recall["image_to_text"],  # a caption with its attributes
        "recall@1_text_to_image": recall["text_to_image"],
        "zero_shot_counting": _counting_accuracy(state, seen, test_images),  # chance 1/3
        # PROMPT_TEMPLATES alone, in the singular: what a model that counts is not asked
        **{f"zero_shot_{split}_singular": acc[1] for split, acc in singular.items()},
        **saved,
    }


PROBE_ITEMS = 1000  # images per probe suite in final_metrics


def _scene_metrics(state, splits: dict, templates) -> dict:
    """:func:`final_metrics` of a run on scenes: ordinary zero-shot (which colours and
    shapes), then the probes that ask for word order (numclip.probes), on held-out seeds."""
    from numclip.probes import run_probes

    zs = evaluate(state, splits, templates, top_k=(1, 5))  # checks the splits, refuses templates
    probes = run_probes(state.model, state.vocab, ("relation", "attribution", "order"),
                        n=PROBE_ITEMS, seed=state.config.seed + 3)
    saved = checkpoint_metrics(state)
    return {
        "epochs": saved.pop("epochs"),
        "classes": len(SCENE_CLASSES),
        "zero_shot_seen": zs["seen"][1], "zero_shot_seen_top5": zs["seen"][5],
        "zero_shot_heldout": zs["heldout"][1], "zero_shot_heldout_top5": zs["heldout"][5],
        "chance": chance(len(SCENE_CLASSES)),
        **{f"probe_{suite}": r.accuracy for suite, r in probes.items()},  # ties count as wrong
        **{f"probe_{suite}_ties": r.ties for suite, r in probes.items()},
        **saved,
    }


# ----------------------------------------------------------------------------- validators

def check_state(state) -> None:
    """Refuse anything but a valid :class:`~numclip.train.TrainState`, naming what is wrong.

    Every function here (and :func:`numclip.plot.write_plots`) checks its state with it.
    A TrainState and its model are mutable, so a field or a parameter set after they were
    made (``state.epoch = -1``, a NaN ``logit_scale``, a dropped key) is checked here again,
    as their construction checks it.

    Raises:
        TypeError: not a TrainState, or a field of the wrong type.
        ValueError: a field or parameter that construction would refuse.
    """
    if not isinstance(state, TrainState):
        raise TypeError("state must be a numclip.train.TrainState (what train() or "
                        f"load_checkpoint() returns), got {type(state).__name__}")
    try:  # building the model, then the state, again runs every check they make
        if isinstance(state.model, TinyCLIP):  # else the state's own check names it
            dataclasses.replace(state.model)
        dataclasses.replace(state)
    except (TypeError, ValueError) as err:
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(f"state no longer holds a valid run (was it changed after it was "
                   f"made?): {err}") from None


def _check_image_size(state, data, name: str) -> None:
    """``data`` (a Dataset or Scenes) holds images of the size ``state``'s model takes."""
    side = math.isqrt(state.model.num_pixels // 3)
    height, width = data.images.shape[1:3]
    if data.images[0].size != state.model.num_pixels:  # else the model's error names pixels
        raise ValueError(f"{name} must hold {side}x{side} images, as the model takes them, "
                         f"got {height}x{width}")


def _as_templates(templates) -> list[str]:
    """``templates`` as a list of checked templates."""
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
    repeated = sorted({k for k in top_k if top_k.count(k) > 1})
    if repeated:  # the result has one entry per k: a repeat would vanish without a word
        raise ValueError(f"top_k must not repeat a k, got {top_k} ({repeated[0]} twice)")
    return top_k
