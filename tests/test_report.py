"""numclip.report on bad input (one table) and on valid but unusual input.

Every public function of the report checks what it is given (a TrainState, the
splits make_splits returns, ks, templates) before it computes anything, and says
in one line which argument is wrong and what was expected.  The figures of a run,
write_plots, moved to numclip.plot and are tested in test_plot.py.
"""

import copy
import dataclasses
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import public_callables

from numclip import report
from numclip import train as tr
from numclip.data import make_dataset
from numclip.scenes import make_scenes
from numclip.train import TrainConfig

SMALL = TrainConfig(epochs=1, batch_size=32, embed_dim=8, train_size=64, eval_size=40)


@pytest.fixture(scope="module")
def run():
    """A one-epoch run of SMALL: its state and splits."""
    splits = tr.make_splits(SMALL)
    return SimpleNamespace(state=tr.train(SMALL, quiet=True, splits=splits), splits=splits)


@pytest.fixture(scope="module")
def scenes_run():
    """A one-epoch run of SMALL on scenes: its state and splits."""
    config = dataclasses.replace(SMALL, data="scenes")
    splits = tr.make_splits(config)
    return SimpleNamespace(state=tr.train(config, quiet=True, splits=splits), splits=splits)


@pytest.fixture
def ctx(run, scenes_run):
    """The run, plus a doctored split, plus a run on scenes."""
    big = make_dataset(8, seed=0, image_size=20)  # 20 x 20 images: not make_splits'
    small_scenes = make_scenes(8, seed=0, image_size=12)
    return SimpleNamespace(**vars(run), big=big, scenes=scenes_run, small_scenes=small_scenes)


def changed(state, **fields):
    """A copy of ``state`` with ``fields`` set afterwards, as a user may (a TrainState is
    mutable), past the checks its construction made; ``params`` updates the model's."""
    state = copy.copy(state)
    params = fields.pop("params", None)
    if params is not None:
        state.model = copy.copy(state.model)
        state.model.params = {k: v for k, v in {**state.model.params, **params}.items()
                              if v is not None}  # None drops the key
    for name, value in fields.items():
        setattr(state, name, value)
    return state


def without(splits, key):
    return {k: v for k, v in splits.items() if k != key}


ev, zs, cm, fm = (report.evaluate, report.zero_shot_metrics, report.checkpoint_metrics,
                  report.final_metrics)

# The module's bad-input table: (public name, call given `ctx`, error type, words the
# message must contain).
BAD_INPUT = [
    ("default_prompts", lambda c: report.default_prompts(40), ValueError, ["c", "39"]),
    ("default_prompts", lambda c: report.default_prompts("0"), TypeError, ["c", "str"]),
    ("counting_accuracy", lambda c: report.counting_accuracy(None, c.splits["seen"]), TypeError,
     ["state must be a numclip.train.TrainState"]),
    ("counting_accuracy", lambda c: report.counting_accuracy(c.state, c.splits), TypeError,
     ["dataset must be a numclip.data.Dataset", "dict"]),
    ("counting_accuracy", lambda c: report.counting_accuracy(c.state, c.big), ValueError,
     ["dataset must hold 16x16 images, as the model takes them", "20x20"]),
    # state: a TrainState, nothing else
    ("evaluate", lambda c: ev(None, c.splits), TypeError,
     ["state must be a numclip.train.TrainState", "NoneType"]),
    ("zero_shot_metrics", lambda c: zs(c.state.model, c.splits), TypeError,
     ["state must be a numclip.train.TrainState", "TinyCLIP"]),
    ("checkpoint_metrics", lambda c: cm(3), TypeError,
     ["state must be a numclip.train.TrainState", "int"]),
    ("final_metrics", lambda c: fm({"model": c.state.model}, c.splits), TypeError,
     ["state must be a numclip.train.TrainState", "dict"]),
    ("check_state", lambda c: report.check_state(c.state.model), TypeError,
     ["state must be a numclip.train.TrainState", "what train() or load_checkpoint() returns",
      "TinyCLIP"]),
    # a state changed after it was made: checked again, as its construction checks it
    ("check_state", lambda c: report.check_state(changed(
        c.state, params={"logit_scale": np.array(np.nan, np.float32)})), ValueError,
     ["state no longer holds a valid run", "params['logit_scale']"]),
    ("checkpoint_metrics", lambda c: cm(changed(c.state, epoch=-1)), ValueError,
     ["state no longer holds a valid run", "epoch must be at least 0"]),
    ("checkpoint_metrics", lambda c: cm(changed(c.state, history=None)), TypeError,
     ["state no longer holds a valid run", "history must be a dict"]),
    ("evaluate", lambda c: ev(changed(c.state, model=None), c.splits), TypeError,
     ["state no longer holds a valid run", "model must be a numclip.model.TinyCLIP"]),
    ("counting_accuracy", lambda c: report.counting_accuracy(
        changed(c.state, params={"logit_scale": None}), c.splits["seen"]), ValueError,
     ["state no longer holds a valid run", "missing ['logit_scale']"]),
    ("final_metrics", lambda c: fm(changed(c.state, params={
        "image_proj": c.state.model.params["image_proj"][:, :4]}), c.splits), ValueError,
     ["state no longer holds a valid run", "image_proj"]),
    # splits: a dict holding the three Datasets make_splits returns
    ("evaluate", lambda c: ev(c.state, {}), ValueError,
     ["splits must hold", "'seen'", "make_splits"]),
    ("evaluate", lambda c: ev(c.state, None), TypeError, ["splits must be a dict", "NoneType"]),
    ("evaluate", lambda c: ev(c.state, dict(c.splits, seen=3)), TypeError,
     ["splits['seen'] must be a numclip.data.Dataset", "int"]),
    ("evaluate", lambda c: ev(c.state, dict(c.splits, heldout=c.big)), ValueError,
     ["splits['heldout'] must hold 16x16 images", "20x20"]),
    ("evaluate", lambda c: ev(c.state, list(c.splits.values())), TypeError,
     ["splits must be a dict", "list"]),
    ("zero_shot_metrics", lambda c: zs(c.state, without(c.splits, "heldout")), ValueError,
     ["splits must hold", "missing 'heldout'"]),
    ("final_metrics", lambda c: fm(c.state, None), TypeError,
     ["splits must be a dict", "NoneType"]),
    ("final_metrics", lambda c: fm(c.state, without(c.splits, "train")), ValueError,
     ["splits must hold", "missing 'train'"]),
    # top_k: ints from 1 to the number of classes
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=5), TypeError,
     ["top_k must be a sequence of ints", "int 5", "wrap it: (5,)"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=None), TypeError,
     ["top_k must be a sequence of ints", "NoneType"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k="15"), TypeError,
     ["top_k must be a sequence of ints", "str"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=()), ValueError,
     ["top_k must hold at least one k"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=(1, 5, 1)), ValueError,
     ["top_k must not repeat a k, got (1, 5, 1) (1 twice)"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=(0,)), ValueError,
     ["top_k[0] must be in [1, 40]", "got 0"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=(1, 41)), ValueError,
     ["top_k[1] must be in [1, 40]", "got 41"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=(1.5,)), TypeError,
     ["top_k[0] must be an int", "1.5"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=(True,)), TypeError,
     ["top_k[0] must be an int", "bool"]),
    # templates: a list of str, each with one bare {}; a lone str is not split into letters
    ("evaluate", lambda c: ev(c.state, c.splits, "a {}"), TypeError,
     ["templates must be a list of str", "a single str", "wrap it"]),
    ("zero_shot_metrics", lambda c: zs(c.state, c.splits, "a photo of a {}."), TypeError,
     ["templates must be a list of str", "a single str", "wrap it"]),
    ("final_metrics", lambda c: fm(c.state, c.splits, b"a {}"), TypeError,
     ["templates must be a list of str", "bytes"]),
    ("zero_shot_metrics", lambda c: zs(c.state, c.splits, []), ValueError,
     ["templates must not be empty"]),
    ("zero_shot_metrics", lambda c: zs(c.state, c.splits, {"a {}", "the {}"}), TypeError,
     ["templates must be an ordered sequence of str", "set"]),
    ("zero_shot_metrics", lambda c: zs(c.state, c.splits, ["a {}", 3]), TypeError,
     ["templates[1] must be a str", "int"]),
    ("zero_shot_metrics", lambda c: zs(c.state, c.splits, ["a {} {}"]), ValueError,
     ["template 'a {} {}'", "2 replacement fields"]),
    ("final_metrics", lambda c: fm(c.state, c.splits, ["a {x}"]), ValueError,
     ["template 'a {x}'", "'{x}'"]),
    ("evaluate", lambda c: ev(c.state, c.splits, 7), TypeError,
     ["templates must be a list of str", "int"]),
    # scenes: their own zero-shot, no templates
    ("scene_zero_shot", lambda c: report.scene_zero_shot(c.state, c.splits["seen"]), TypeError,
     ["scenes must be a numclip.scenes.Scenes", "Dataset"]),
    ("scene_zero_shot", lambda c: report.scene_zero_shot(None, c.scenes.splits["seen"]),
     TypeError, ["state must be a numclip.train.TrainState"]),
    ("scene_zero_shot", lambda c: report.scene_zero_shot(c.scenes.state, c.small_scenes),
     ValueError, ["scenes must hold 16x16 images, as the model takes them", "12x12"]),
    ("scene_zero_shot", lambda c: report.scene_zero_shot(c.scenes.state, c.scenes.splits["seen"],
                                                         top_k=5), TypeError,
     ["top_k must be a sequence of ints"]),
    ("evaluate", lambda c: ev(c.scenes.state, c.scenes.splits, ["a {}"]), ValueError,
     ["templates apply to the shapes data", "scene_zero_shot"]),
    ("final_metrics", lambda c: fm(c.scenes.state, c.scenes.splits, ["a {}"]), ValueError,
     ["templates apply to the shapes data"]),
    ("evaluate", lambda c: ev(c.scenes.state, c.splits), TypeError,
     ["splits hold Dataset objects but the state was trained with data='scenes'"]),
    ("evaluate", lambda c: ev(c.state, c.scenes.splits), TypeError,
     ["splits hold Scenes objects but the state was trained with data='shapes'"]),
]


@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words, ctx):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning or UserWarning on the way
        with pytest.raises(error) as info:
            call(ctx)
    message = str(info.value)
    assert all(w in message for w in words), message
    assert "\n" not in message, message


def test_every_public_function_has_bad_input_rows():
    assert public_callables(report) - {row[0] for row in BAD_INPUT} == set()


# ------------------------------------------------------------ valid unusual input

def test_top_k_may_be_numpy_integers_and_the_keys_are_python_ints(run):
    want = report.evaluate(run.state, run.splits, top_k=(1, 5))
    for top_k in (np.array([1, 5]), [np.int64(1), np.uint8(5)], range(1, 6, 4)):
        got = report.evaluate(run.state, run.splits, top_k=top_k)
        assert got == want
        assert all(type(k) is int for split in got.values() for k in split)


def test_templates_may_be_any_ordered_sequence_of_str_even_a_generator(run):
    templates = ["a photo of a {}.", "a {} on a black background."]
    want = report.zero_shot_metrics(run.state, run.splits, templates)
    assert want["templates"] == templates
    for given in (tuple(templates), np.array(templates), (t for t in templates)):
        assert report.zero_shot_metrics(run.state, run.splits, given) == want
    one = report.zero_shot_metrics(run.state, run.splits, ["a photo of a {}."])
    assert one["templates"] == ["a photo of a {}."]


def test_final_metrics_use_the_templates_they_are_given(run):
    templates = ["a {}"]
    final = report.final_metrics(run.state, run.splits, templates)
    zero_shot = report.zero_shot_metrics(run.state, run.splits, templates)
    assert final["zero_shot_seen"] == zero_shot["zero_shot_seen"]
    assert final["zero_shot_heldout_top5"] == zero_shot["zero_shot_heldout_top5"]



def test_counting_accuracy_is_perfect_for_a_model_that_counts(run, monkeypatch):
    """A model whose prompt embedding is its count word's one-hot, and whose image
    embedding is the image's own count's one-hot, counts every image right; one that
    sees the count off by one counts none right. The real run lies in [0, 1]."""
    seen = run.splits["seen"]
    assert 0 <= report.counting_accuracy(run.state, seen) <= 1
    words = {"one": 0, "two": 1, "three": 2}
    model = run.state.model
    monkeypatch.setattr(model, "text_inputs", lambda vocab, texts, warn=True: texts,
                        raising=False)
    monkeypatch.setattr(model, "encode_texts", lambda texts: np.eye(3)[
        [next(words[w] for w in t.split() if w in words) for t in texts]], raising=False)
    monkeypatch.setattr(model, "encode_images", lambda pixels: np.eye(3)[seen.counts - 1],
                        raising=False)
    assert report.counting_accuracy(run.state, seen) == 1.0
    monkeypatch.setattr(model, "encode_images", lambda pixels: np.eye(3)[seen.counts % 3],
                        raising=False)
    assert report.counting_accuracy(run.state, seen) == 0.0


def test_the_default_prompts_are_prompt_templates_phrasings_at_every_count():
    from numclip.zeroshot import PROMPT_TEMPLATES

    red_circle = report.default_prompts(0)
    assert len(red_circle) == len(report.DEFAULT_PHRASINGS) * 3
    for count, one, many in ((1, "one red circle", "circle"), (2, "two red circles", "circles"),
                             (3, "three red circles", "circles")):
        prompts = red_circle[(count - 1) * 4:count * 4]
        assert all(one in p and many in p for p in prompts), prompts
    # the singular ones say what PROMPT_TEMPLATES say, with "one" for "a" and no full stop
    singular = [t.format("red circle").replace("a red", "one red").rstrip(".")
                for t in PROMPT_TEMPLATES]
    assert red_circle[:4] == singular
    assert report.default_prompts(np.int64(39))[-1] == "there are three white bars"


def test_the_default_classifier_ensembles_every_count(run, monkeypatch):
    """A model that embeds a prompt by its colour and shape only, and each image by its
    class, scores 1 with the default prompts; one that embeds each prompt by its count
    word only (every class alike) cannot tell the classes apart; the real run lies in [0, 1].
    The metrics name the default prompts."""
    from numclip.data import COLORS, SHAPES

    metrics = report.zero_shot_metrics(run.state, run.splits)
    assert 0 <= metrics["zero_shot_seen"] <= 1
    assert metrics["counts"] == [1, 2, 3]
    assert metrics["templates"][0] == "a photo of {objects}"
    model = run.state.model

    def class_of(text):
        words = text.split()
        color = next(i for i, c in enumerate(COLORS) if c in words)
        shape = next(i for i, s in enumerate(SHAPES) if s in text)
        return color * len(SHAPES) + shape

    seen = run.splits["seen"]
    texts_seen = []
    monkeypatch.setattr(model, "text_inputs", lambda vocab, texts, warn=True: texts,
                        raising=False)
    monkeypatch.setattr(model, "encode_texts", lambda texts: texts_seen.extend(texts) or np.eye(
        40)[[class_of(t) for t in texts]], raising=False)
    monkeypatch.setattr(model, "encode_images", lambda pixels: np.eye(40)[seen.labels],
                        raising=False)
    assert report.evaluate(run.state, {**run.splits, "heldout": seen})["seen"][1] == 1.0
    assert set(texts_seen) == {p for c in range(40) for p in report.default_prompts(c)}


def test_final_metrics_report_the_singular_prompt_templates_beside_the_default(run):
    from numclip.zeroshot import PROMPT_TEMPLATES

    final = report.final_metrics(run.state, run.splits)
    singular = report.evaluate(run.state, run.splits, PROMPT_TEMPLATES, top_k=(1,))
    assert final["zero_shot_seen_singular"] == singular["seen"][1]
    assert final["zero_shot_heldout_singular"] == singular["heldout"][1]
    assert final["zero_shot_seen"] == report.zero_shot_metrics(run.state, run.splits)[
        "zero_shot_seen"]


def test_final_metrics_encode_each_split_once_and_agree_with_the_public_functions(run,
                                                                                 monkeypatch):
    """The seen images serve four numbers (two classifiers, retrieval, counting) and the
    held-out ones two: each split is encoded once, and each number is what its own public
    function gives."""
    want = {"counting": report.counting_accuracy(run.state, run.splits["seen"]),
            **report.zero_shot_metrics(run.state, run.splits)}
    model, encoded = run.state.model, []
    encode = model.encode_images
    monkeypatch.setattr(model, "encode_images", lambda pixels: encoded.append(len(pixels))
                        or encode(pixels), raising=False)
    final = report.final_metrics(run.state, run.splits)
    assert sorted(encoded) == sorted(len(run.splits[s].labels)
                                     for s in ("train", "seen", "heldout"))
    assert final["zero_shot_counting"] == want["counting"]
    for key in ("zero_shot_seen", "zero_shot_seen_top5", "zero_shot_heldout",
                "zero_shot_heldout_top5"):
        assert final[key] == want[key]


def test_scene_zero_shot_equals_a_slow_loop_over_the_classes(scenes_run):
    """Every image against the 280 classes one by one, each class the renormalised mean of
    its four binding prompts; a tie counts against the truth, as top_k_accuracy's does."""
    from numclip.scenes import binding_caption

    state, scenes = scenes_run.state, scenes_run.splits["heldout"]
    model = state.model
    images = np.asarray(model.encode_images(scenes.pixels()))
    classes = []
    for (c0, c1), (s0, s1) in report.SCENE_CLASSES:
        prompts = [binding_caption((c0, s0), (c1, s1)), binding_caption((c1, s1), (c0, s0)),
                   binding_caption((c0, s1), (c1, s0)), binding_caption((c1, s0), (c0, s1))]
        mean = np.mean(np.asarray(model.encode_texts(model.text_inputs(state.vocab, prompts))),
                       axis=0)
        classes.append(mean / np.linalg.norm(mean))
    # float32 dot products of unit vectors here and in the matrix product there differ by
    # at most D u = 64 * 6e-8 in each score: an item whose margin is within twice that can
    # go either way, and only such items may differ
    near = 2 * images.shape[1] * np.finfo(np.float32).eps
    correct = uncertain = 0
    for image, colors, shapes in zip(images, scenes.colors, scenes.shapes, strict=True):
        truth = report.SCENE_CLASSES.index((tuple(sorted(colors)), tuple(sorted(shapes))))
        scores = [float(image @ c) for c in classes]
        margin = scores[truth] - max(s for i, s in enumerate(scores) if i != truth)
        correct += margin > 0
        uncertain += abs(margin) <= near
    got = report.scene_zero_shot(state, scenes)[1]
    assert abs(got * len(scenes) - correct) <= uncertain
    assert len(report.SCENE_CLASSES) == 280


def test_final_metrics_of_a_scenes_run(scenes_run):
    """Ordinary zero-shot and the three word-order probes; a bag of words ties on every
    probe item (its captions and their perturbations hold the same words)."""
    m = report.final_metrics(scenes_run.state, scenes_run.splits)
    assert m["classes"] == 280 and m["chance"] == pytest.approx(1 / 280)
    for suite in ("relation", "attribution", "order"):
        assert m[f"probe_{suite}"] == 0.0 and m[f"probe_{suite}_ties"] == report.PROBE_ITEMS
    assert 0 <= m["zero_shot_seen"] <= m["zero_shot_seen_top5"] <= 1
