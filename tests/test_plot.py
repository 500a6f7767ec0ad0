"""The figures: right number of axes, titles and labels set, PNGs saved, bad input named."""

import matplotlib

matplotlib.use("Agg")  # tests draw off-screen; the module itself never picks a backend

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import public_callables, unwritable_folder
from matplotlib.figure import Figure

from numclip import plot as plot_module
from numclip import train as tr
from numclip.model import INIT_LOGIT_SCALE, TinyCLIP
from numclip.optim import MAX_LOGIT_SCALE
from numclip.plot import (
    confusion_matrix,
    plot_confusion,
    plot_embeddings,
    plot_history,
    plot_similarity,
    write_plots,
)
from numclip.train import TrainConfig

rng = np.random.default_rng(0)
COLOURS = ["red", "green", "blue", "yellow", "magenta", "cyan", "orange", "white"]
SHAPES = ["circle", "square", "triangle", "cross", "ring"]
NAMES = [f"{c} {s}" for c in COLOURS for s in SHAPES]  # 40 classes
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")  # pyplot keeps every figure open; free them between tests


def history(epochs=5, **extra):
    epoch = list(range(1, epochs + 1))
    return {"epoch": epoch, "loss": [4.0 / e for e in epoch],
            "scale": [14.29 + 5 * e for e in epoch], "accuracy": [e / epochs for e in epoch],
            **extra}


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def assert_png(path, fig):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    height, width = plt.imread(path).shape[:2]
    expected = np.round(fig.get_size_inches()[::-1] * 120)  # saved at 120 dpi
    np.testing.assert_allclose((height, width), expected, atol=1)


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


# ----------------------------------------------------------------------------- history


def test_history_has_three_labelled_panels_and_saves_a_png(tmp_path):
    path = tmp_path / "sub" / "history.png"  # missing folders are created
    fig = plot_history(history(), path)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    loss, scale, _ = fig.axes
    assert all(titles(fig)) and all(ax.get_xlabel() == "epoch" for ax in fig.axes)
    assert loss.get_yscale() == "log" and "loss" in loss.get_ylabel()
    assert "exp(logit_scale)" in scale.get_ylabel()
    assert_png(path, fig)


def test_history_scale_panel_marks_the_clamp_and_the_initial_scale():
    """The lines sit where training puts the scale: optim's clamp, the model's start."""
    scale = plot_history(history()).axes[1]
    flat = [line.get_ydata()[0] for line in scale.get_lines() if len(set(line.get_ydata())) == 1]
    assert math.exp(MAX_LOGIT_SCALE) in flat and math.exp(INIT_LOGIT_SCALE) in flat
    assert pytest.approx(100) in flat and pytest.approx(1 / 0.07) in flat
    texts = " ".join(t.get_text() for t in scale.texts)
    assert "100" in texts and "14.29" in texts


def test_history_zero_shot_series_join_the_accuracy_panel_and_skip_missing_epochs():
    fig = plot_history(history(4, zero_shot_seen=[None, 0.5, None, 0.8],
                               zero_shot_heldout=[np.nan, 0.2, np.nan, 0.4]))
    acc = fig.axes[2]
    labels = [t.get_text() for t in acc.get_legend().get_texts()]
    assert len(labels) == 3 and any("held-out" in label for label in labels)
    heldout = acc.get_lines()[2]
    np.testing.assert_array_equal(heldout.get_xdata(), [2, 4])  # only the measured epochs
    np.testing.assert_allclose(heldout.get_ydata(), [0.2, 0.4])


def test_history_with_a_zero_loss_keeps_a_linear_axis():
    h = history()
    h["loss"][-1] = 0.0
    loss = plot_history(h).axes[0]
    assert loss.get_yscale() == "linear" and "log" not in loss.get_ylabel()


def test_history_says_the_loss_axis_is_logarithmic():
    loss = plot_history(history()).axes[0]
    assert loss.get_yscale() == "log" and loss.get_ylabel().endswith("(log scale)")


def accuracy_legend(fig):
    legend = fig.axes[2].get_legend()
    return [t.get_text() for t in legend.get_texts()], legend.get_title().get_text()


def test_history_accuracy_legend_names_each_task_and_its_size():
    fig = plot_history(history(zero_shot_seen=[0.9] * 5, zero_shot_heldout=[0.8] * 5),
                       batch_size=256, num_classes=40)
    labels, note = accuracy_legend(fig)
    assert labels[0].startswith("in-batch top-1") and "(255 negatives)" in labels[0]
    assert labels[1].startswith("zero-shot top-1") and "seen" in labels[1]
    assert labels[2].startswith("zero-shot top-1") and "held-out" in labels[2]
    assert all("(40 classes)" in label for label in labels[1:])
    # one line says why the two kinds of accuracy sit so far apart
    assert "in-batch" in note and "zero-shot" in note and "\n" not in note


def test_history_accuracy_legend_explains_itself_without_the_sizes_too():
    labels, note = accuracy_legend(plot_history(history(zero_shot_seen=[0.9] * 5)))
    assert "among the batch's captions" in labels[0]
    assert "among the class prompts" in labels[1]
    assert "in-batch" in note and "zero-shot" in note


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"batch_size": 1}, ValueError, r"batch_size must be an int >= 2"),
    ({"batch_size": 2.5}, TypeError, r"batch_size must be an int >= 2 or None, got 2.5"),
    ({"batch_size": True}, TypeError, r"batch_size must be an int >= 2"),
    ({"num_classes": 0}, ValueError, r"num_classes must be an int >= 2"),
    ({"num_classes": "40"}, TypeError, r"num_classes must be an int >= 2 or None, got '40'"),
])
def test_history_sizes_must_be_counts(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_history(history(), **kwargs)


@pytest.mark.parametrize(("change", "match"), [
    (lambda h: h.pop("scale"), r"lacks .*scale"),
    (lambda h: h.update(loss=[1.0, 2.0]), r"history\['loss'\] must have one value per epoch"),
    (lambda h: h.update(zero_shot_seen=[0.1]), r"history\['zero_shot_seen'\]"),
    (lambda h: h.update(accuracy=[np.nan] * 5), r"history\['accuracy'\] contains NaN"),
    (lambda h: h.update(epoch=[]), r"history\['epoch'\] must be a non-empty"),
])
def test_history_bad_input_is_named(change, match):
    h = history()
    change(h)
    with pytest.raises(ValueError, match=match):
        plot_history(h)


def test_history_must_be_a_dict():
    with pytest.raises(TypeError, match="history must be a dict"):
        plot_history([1, 2, 3])


# -------------------------------------------------------------------------- similarity


def test_similarity_has_two_heatmaps_with_a_colour_bar_each(tmp_path):
    n = 6
    before, after = rng.normal(size=(n, n)), 10 * np.eye(n) + rng.normal(size=(n, n))
    captions = [f"a photo of a {name}" for name in NAMES[:n]]
    fig = plot_similarity(before, after, captions, tmp_path / "sim.png", value_label="logit")
    assert len(fig.axes) == 4  # two heatmaps, two colour bars
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert len(heatmaps) == 2
    assert heatmaps[0].get_title().startswith("Before") and heatmaps[1].get_title().startswith(
        "After")
    assert [ax.get_ylabel() for ax in fig.axes if not ax.images] == ["logit", "logit"]
    assert all("text j" in ax.get_xlabel() and "image i" in ax.get_ylabel() for ax in heatmaps)
    np.testing.assert_allclose(heatmaps[1].images[0].get_array(), after)
    assert_png(tmp_path / "sim.png", fig)


def caption_ticks(fig):
    """The caption tick labels of the first heatmap, without their trailing numbers."""
    return [t.get_text().rsplit("  ", 1)[0] for t in fig.axes[0].get_yticklabels()]


def test_similarity_tick_labels_keep_the_words_that_tell_captions_apart():
    # what numclip train draws: templates put the class words first, last or in the middle
    captions = ["two blue triangles on a black background", "a small image showing a cyan circle",
                "a drawing of three purple triangles", "one yellow bar"]
    fig = plot_similarity(np.eye(4), np.eye(4), captions)
    assert caption_ticks(fig) == captions  # whole: 44 characters fit
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows[0] == "two blue triangles on a black background  1"  # the number of its column
    after = [ax for ax in fig.axes if ax.images][1]
    assert [t.get_text() for t in after.get_yticklabels()] == ["1", "2", "3", "4"]
    assert all([t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"]
               for ax in fig.axes if ax.images)


def test_similarity_tick_labels_drop_the_words_all_captions_share_and_say_so():
    captions = ["a photo of a red circle on a black background",
                "a photo of a green square on a black background"]
    fig = plot_similarity(np.eye(2), np.eye(2), captions)
    assert caption_ticks(fig) == ["red circle", "green square"]
    said = fig.get_suptitle()
    assert '"a photo of a …"' in said and '"… on a black background"' in said


def test_similarity_cuts_a_too_long_caption_at_its_end_on_a_word_boundary():
    captions = ["red circle", "green square, which this caption describes at a length "
                              "no tick label can hold"]
    labels = caption_ticks(plot_similarity(np.eye(2), np.eye(2), captions))
    assert labels[0] == "red circle"
    assert labels[1].startswith("green square, which") and labels[1].endswith("…")
    assert len(labels[1]) <= 44 and captions[1].startswith(labels[1][:-1])
    assert labels[1][-2] != " " and captions[1][len(labels[1]) - 1] == " "  # whole words


def test_similarity_keeps_a_one_letter_shared_prefix():
    captions = ["a drawing of a red circle", "a photo of a green square"]
    fig = plot_similarity(np.eye(2), np.eye(2), captions)
    assert caption_ticks(fig) == captions
    assert "captions" not in fig.get_suptitle()


def test_similarity_accepts_arrays_of_other_backends():
    xp = pytest.importorskip("array_api_strict")
    fig = plot_similarity(xp.eye(3), 2 * xp.eye(3))
    after = [ax for ax in fig.axes if ax.images][1]
    np.testing.assert_allclose(after.images[0].get_array(), 2 * np.eye(3))


def test_similarity_of_a_big_batch_has_no_caption_ticks():
    n = 20
    fig = plot_similarity(np.eye(n), np.eye(n), [f"caption {i}" for i in range(n)])
    assert not any("caption" in t.get_text() for t in fig.axes[0].get_xticklabels())


def test_similarity_accepts_lists():
    assert len(plot_similarity([[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 2.0]]).axes) == 4


@pytest.mark.parametrize(("before", "after", "captions", "match"), [
    (np.zeros((3, 4)), np.zeros((3, 4)), None, r"before must be square"),
    (np.zeros((3, 3)), np.zeros((4, 4)), None, r"after must have the shape of before"),
    (np.zeros(3), np.zeros(3), None, r"before must be 2-D"),
    (np.full((2, 2), np.nan), np.zeros((2, 2)), None, r"before contains NaN"),
    (np.zeros((3, 3)), np.zeros((3, 3)), ["a", "b"], r"captions must be a sequence of 3"),
])
def test_similarity_bad_input_is_named(before, after, captions, match):
    with pytest.raises(ValueError, match=match):
        plot_similarity(before, after, captions)


# -------------------------------------------------------------------------- embeddings


def embeddings(num_classes, per_class=5, d=8):
    centres = rng.normal(size=(num_classes, d))
    image_labels = np.repeat(np.arange(num_classes), per_class)
    images = unit_rows(centres[image_labels] + 0.1 * rng.normal(size=(len(image_labels), d)))
    texts = unit_rows(centres)
    return images, texts, image_labels, np.arange(num_classes)


def test_embeddings_few_classes_are_named_on_the_plot(tmp_path):
    images, texts, image_labels, text_labels = embeddings(4)
    names = ["red circle", "red square", "blue circle", "blue square"]
    fig = plot_embeddings(images, texts, image_labels, text_labels, names, tmp_path / "e.png")
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_title() and "PC 1" in ax.get_xlabel() and "PC 2" in ax.get_ylabel()
    assert sorted(t.get_text() for t in ax.texts) == sorted(names)
    assert len(ax.collections) == 2  # image dots, text stars
    assert_png(tmp_path / "e.png", fig)


def test_embeddings_use_one_pca_projection_for_images_and_texts():
    # the same vectors as images and as texts must land on the same points
    x = unit_rows(rng.normal(size=(6, 5)))
    dots, stars = plot_embeddings(x, x, np.arange(6), np.arange(6), list("abcdef")).axes[
        0].collections
    np.testing.assert_allclose(dots.get_offsets(), stars.get_offsets())
    centred = np.concatenate([x, x]) - np.concatenate([x, x]).mean(axis=0)
    _, _, vt = np.linalg.svd(centred)
    np.testing.assert_allclose(np.abs(stars.get_offsets()), np.abs(centred[6:] @ vt[:2].T),
                               atol=1e-12)  # PCA axes are defined up to their sign


def test_embeddings_of_40_classes_coloured_by_an_attribute():
    images, texts, image_labels, text_labels = embeddings(40, per_class=3)
    fig = plot_embeddings(images, texts, image_labels, text_labels, NAMES,
                          color_of=lambda k: NAMES[k].split()[0])
    ax = fig.axes[0]
    assert not ax.texts  # 40 names would bury the points
    legend_names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_names == COLOURS  # each colour named by the words its classes share
    assert ax.collections[1].get_facecolors()[0] == pytest.approx(
        matplotlib.colors.to_rgba("red"))


def test_embeddings_color_of_may_be_a_list():
    images, texts, image_labels, text_labels = embeddings(3)
    fig = plot_embeddings(images, texts, image_labels, text_labels, ["a", "b", "c"],
                          color_of=["red", "#00ff00", (0, 0, 1)])
    np.testing.assert_allclose(fig.axes[0].collections[1].get_facecolors()[:, :3], np.eye(3))


@pytest.mark.parametrize(("change", "match"), [
    (lambda a: a.update(texts=a["texts"][:, :4]), r"image_embeds and text_embeds must have the"),
    (lambda a: a.update(image_labels=a["image_labels"][:-1]), r"image_labels must have length"),
    (lambda a: a.update(text_labels=np.array([0, 1, 9])), r"text_labels must lie in \[0, 3\)"),
    (lambda a: a.update(names=["a", "b"]), r"lie in \[0, 2\) \(class_names has 2 names\)"),
    (lambda a: a.update(color_of=["red"]), r"color_of must give one colour per class, 3"),
    (lambda a: a.update(color_of=["red", "blue", "no-such-colour"]), r"color_of gave"),
    (lambda a: a.update(images=a["images"][:, :1], texts=a["texts"][:, :1]), r"D >= 2"),
])
def test_embeddings_bad_input_is_named(change, match):
    images, texts, image_labels, text_labels = embeddings(3)
    args = {"images": images, "texts": texts, "image_labels": image_labels,
            "text_labels": text_labels, "names": ["a", "b", "c"], "color_of": None}
    change(args)
    with pytest.raises(ValueError, match=match):
        plot_embeddings(args["images"], args["texts"], args["image_labels"],
                        args["text_labels"], args["names"], color_of=args["color_of"])


def test_embeddings_labels_must_be_integers():
    images, texts, image_labels, text_labels = embeddings(3)
    with pytest.raises(TypeError, match="image_labels must hold integer class ids"):
        plot_embeddings(images, texts, image_labels.astype(float), text_labels, list("abc"))


# --------------------------------------------------------------------------- confusion


def test_confusion_matrix_counts_a_hand_example():
    true = [0, 0, 1, 2, 2, 2]
    pred = [0, 1, 1, 2, 0, 2]
    counts = confusion_matrix(true, pred, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0],
                                           [0, 1, 0],
                                           [1, 0, 2]])
    assert counts.dtype == np.int64
    assert confusion_matrix(np.array([1]), np.array([1]), 4).shape == (4, 4)


@pytest.mark.parametrize(("true", "pred", "c", "error", "match"), [
    ([0, 1], [0], 2, ValueError, r"pred must have length 2"),
    ([0, 3], [0, 1], 3, ValueError, r"true must lie in \[0, 3\)"),
    ([0, 1], [0, -1], 3, ValueError, r"pred must lie in \[0, 3\)"),
    ([0.0, 1.0], [0, 1], 2, TypeError, r"true must hold integer class ids"),
    ([], [], 2, ValueError, r"true must be a non-empty"),
    ([0], [0], 0, ValueError, r"num_classes must be positive"),
    ([0], [0], 2.0, TypeError, r"num_classes must be an int"),
])
def test_confusion_matrix_bad_input_is_named(true, pred, c, error, match):
    with pytest.raises(error, match=match):
        confusion_matrix(true, pred, c)


def test_plot_confusion_shows_row_rates_with_a_colour_bar_and_the_accuracy(tmp_path):
    counts = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
    fig = plot_confusion(counts, ["red circle", "red ring", "blue ring"], tmp_path / "c.png")
    assert len(fig.axes) == 2  # heatmap and colour bar
    ax, bar = fig.axes
    assert "accuracy 62.5% (5/8)" in ax.get_title()
    assert ax.get_title().startswith("Zero-shot confusion matrix")
    assert ax.get_xlabel() == "predicted class" and "true class" in ax.get_ylabel()
    assert bar.get_ylabel()
    rates = ax.images[0].get_array()
    np.testing.assert_allclose(rates[:2], [[0.75, 0.25, 0], [0, 0.5, 0.5]])
    assert np.ma.getmaskarray(rates)[2].all() or np.isnan(rates[2]).all()  # no examples
    assert "grey" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["red circle", "red ring",
                                                             "blue ring"]
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())  # three fit upright
    assert_png(tmp_path / "c.png", fig)


def test_plot_confusion_of_40_classes_labels_every_class_and_marks_held_out_ones():
    true = np.repeat(np.arange(40), 5)
    pred = np.where(rng.random(200) < 0.8, true, rng.integers(0, 40, 200))
    pred[true == 4] = 0  # "red ring", held out, always taken for "red circle"
    fig = plot_confusion(confusion_matrix(true, pred, 40), NAMES, title="Held-out test",
                         highlight=[4, 9])
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ticks) == 40 and ticks[4] == "red ring*" and ticks[0] == "red circle"
    assert ax.get_yticklabels()[4].get_fontweight() == "bold"
    assert "held out (*): " in ax.get_title() and ax.get_title().startswith("Held-out test")
    assert len(ax.lines) == 2 * 7  # a line between each run of one colour, both ways
    assert not ax.texts  # no numbers in 1600 cells
    assert all(t.get_rotation() == 90 for t in ax.get_xticklabels())  # forty do not


@pytest.mark.parametrize(("confusion", "names", "match"), [
    (np.zeros((2, 3)), ["a", "b"], r"confusion must be square"),
    (np.eye(3), ["a", "b"], r"class_names must have one name per row of confusion, 3, got 2"),
    (-np.eye(2), ["a", "b"], r"confusion must hold non-negative counts"),
])
def test_plot_confusion_bad_input_is_named(confusion, names, match):
    with pytest.raises(ValueError, match=match):
        plot_confusion(confusion, names)


def test_plot_confusion_highlight_must_be_class_ids():
    with pytest.raises(ValueError, match=r"highlight must lie in \[0, 2\)"):
        plot_confusion(np.eye(2), ["a", "b"], highlight=[5])


# ------------------------------------------------------------------------------ backend


def test_importing_the_module_leaves_the_backend_alone():
    # notebooks rely on the inline backend: importing numclip.plot must not choose one
    code = ("import matplotlib; before = matplotlib.rcParams._get_backend_or_none(); "
            "import numclip.plot; after = matplotlib.rcParams._get_backend_or_none(); "
            "assert before == after, (before, after)")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # else "before" is set
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ------------------------------------------------------------ bad input, one table
# Found by a sweep of every public function: each row raised another exception, took
# nonsense (complex values lost their imaginary part with a ComplexWarning, a bool mask
# was read as class ids 0 and 1, an inf scale reached matplotlib) or named nothing.

SMALL = TrainConfig(epochs=1, batch_size=32, embed_dim=8, train_size=64, eval_size=40)


@pytest.fixture(scope="module")
def run():
    """A one-epoch run of SMALL: its state, splits and the model before training."""
    splits = tr.make_splits(SMALL)
    state = tr.train(SMALL, quiet=True, splits=splits)
    return SimpleNamespace(state=state, splits=splits,
                           initial=tr.new_state(SMALL, splits["train"]).model)


@pytest.fixture
def ctx(run, tmp_path):
    """The run, plus a folder, a plain file in it, and a model of other shapes."""
    (tmp_path / "afile").write_text("not a folder")
    wide = TinyCLIP.create(768, len(run.state.vocab), 16)  # embed_dim 16, not 8
    return SimpleNamespace(**vars(run), dir=tmp_path, file=tmp_path / "afile", wide=wide)


def _plot_history_with(**changes):
    return lambda c: plot_history(history(epochs=3, **changes))


EYE = np.eye(3)
LABELS3 = np.array([0, 1, 2])
# (public name, call, expected error, words the message must contain)
BAD_INPUT = [
    ("plot_history", _plot_history_with(loss=[1.0, 2.0 + 1j, 3.0]), TypeError,
     ["history['loss'] must hold real numbers", "complex"]),
    ("plot_history", _plot_history_with(scale=[14.0, np.inf, 20.0]), ValueError,
     ["history['scale'] contains NaN or infinite values: inf at epoch index 1"]),
    ("plot_history", _plot_history_with(loss=[1.0, 10**400, 3.0]), ValueError,
     ["history['loss'] contains NaN or infinite values"]),
    ("plot_history", _plot_history_with(accuracy=["0.1", "0.2", "0.3"]), TypeError,
     ["history['accuracy'] must hold real numbers", "<U3"]),
    ("plot_history", _plot_history_with(accuracy=[True, False, True]), TypeError,
     ["history['accuracy'] must hold real numbers", "bool"]),
    ("plot_history", _plot_history_with(zero_shot_seen=[None, "x", 0.5]), TypeError,
     ["history['zero_shot_seen'] must hold real numbers or None", "str"]),
    ("plot_history", _plot_history_with(zero_shot_seen=[None, None, None]), ValueError,
     ["history['zero_shot_seen'] contains NaN or infinite values only"]),
    ("plot_similarity", lambda c: plot_similarity(EYE * 1j, EYE), TypeError,
     ["before must hold real numbers", "complex"]),
    ("plot_similarity", lambda c: plot_similarity(EYE, EYE.astype(bool)), TypeError,
     ["after must hold real numbers", "bool"]),
    ("plot_similarity", lambda c: plot_similarity(EYE, EYE, 3), TypeError,
     ["captions must be a list of str", "int"]),
    ("plot_similarity", lambda c: plot_similarity(EYE, EYE, ["a", None, "c"]), TypeError,
     ["captions[1] must be a str"]),
    ("plot_similarity", lambda c: plot_similarity(EYE, EYE, value_label=None), TypeError,
     ["value_label must be a str"]),
    ("plot_similarity", lambda c: plot_similarity(EYE, EYE, path=3), TypeError,
     ["path must be None, a str or a pathlib.Path", "int"]),
    ("plot_similarity", lambda c: plot_similarity(EYE, EYE, path=""), ValueError,
     ["path is empty; name a .png file"]),
    ("plot_similarity", lambda c: plot_similarity(EYE, EYE, path=c.dir), ValueError,
     ["is a folder; name a .png file in it"]),
    ("plot_similarity", lambda c: plot_similarity(EYE, EYE, path=c.dir / "notes.txt"),
     ValueError, ["path must name a .png file", "notes.txt"]),
    ("plot_embeddings", lambda c: plot_embeddings(EYE, EYE, LABELS3, LABELS3, None), TypeError,
     ["class_names must be a list of str", "NoneType"]),
    ("plot_embeddings", lambda c: plot_embeddings(EYE, EYE, LABELS3, LABELS3, "abc"), TypeError,
     ["class_names must be a list of str, got a single str"]),
    ("plot_embeddings", lambda c: plot_embeddings(EYE, EYE, LABELS3 > 0, LABELS3, list("abc")),
     TypeError, ["image_labels must hold integer class ids", "bool"]),
    ("plot_embeddings", lambda c: plot_embeddings(EYE, EYE, LABELS3, LABELS3, list("abc"),
                                                color_of=3), TypeError,
     ["color_of must be None, a function or a sequence of 3 colours", "int"]),
    ("plot_embeddings", lambda c: plot_embeddings(EYE, EYE, LABELS3, LABELS3, list("abc"),
                                                color_of="red"), TypeError,
     ["color_of must be None, a function or a sequence of 3 colours", "the str 'red'"]),
    ("plot_confusion", lambda c: plot_confusion(EYE, 7), TypeError,
     ["class_names must be a list of str", "int"]),
    ("plot_confusion", lambda c: plot_confusion(EYE, list("abc"), highlight=[True, False, True]),
     TypeError, ["highlight must hold integer class ids", "bool"]),
    ("plot_confusion", lambda c: plot_confusion(EYE, list("abc"), title=None), TypeError,
     ["title must be a str"]),
    ("plot_confusion", lambda c: plot_confusion(EYE + 0j, list("abc")), TypeError,
     ["confusion must hold real numbers", "complex"]),
    ("confusion_matrix", lambda c: confusion_matrix([0], [0], 10**30), ValueError,
     ["num_classes = 1000000000000000000000000000000 needs a", "more than this machine"]),
    ("confusion_matrix", lambda c: confusion_matrix([True], [0], 2), TypeError,
     ["true must hold integer class ids", "bool"]),
    ("confusion_matrix", lambda c: confusion_matrix([0, 1], [0], 2), ValueError,
     ["pred must have length 2 (one per entry of true), got 1"]),
    ("plot_embeddings", lambda c: plot_embeddings(EYE, EYE, LABELS3[:2], LABELS3, list("abc")),
     ValueError, ["image_labels must have length 3 (one per row of image_embeds), got 2"]),
    # write_plots: a run, its splits, a folder that takes files, the model before training
    ("write_plots", lambda c: write_plots(None, c.splits, c.dir, c.initial), TypeError,
     ["state must be a numclip.train.TrainState", "NoneType"]),
    ("write_plots", lambda c: write_plots(c.state, {"seen": c.splits["seen"]}, c.dir,
                                          c.initial),
     ValueError, ["splits must hold", "missing 'train', 'heldout'"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, None, c.initial), TypeError,
     ["folder must be a str or a path", "NoneType"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, b"plots", c.initial), TypeError,
     ["folder must be a str or a path", "bytes"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, "", c.initial), ValueError,
     ["folder is empty"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, "plots\0x", c.initial), ValueError,
     ["folder", "contains a NUL character"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, c.file, c.initial),
     NotADirectoryError, ["afile is a file, not a folder"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, c.file / "sub", c.initial),
     NotADirectoryError, ["cannot create the folder", "afile is a file, not a folder"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, c.dir, None), TypeError,
     ["initial_model must be a TinyCLIP", "NoneType"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, c.dir, c.state), TypeError,
     ["initial_model must be a TinyCLIP", "TrainState"]),
    ("write_plots", lambda c: write_plots(c.state, c.splits, c.dir, c.wide), ValueError,
     ["initial_model must have the trained model's shapes", "image_proj (768, 8)",
      "image_proj (768, 16)"]),
]


@pytest.mark.filterwarnings("error")  # no ComplexWarning or RuntimeWarning on the way
@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words, ctx,
                                                           monkeypatch):
    if name == "write_plots":  # it checks everything before it draws or writes anything
        for figure in ("plot_history", "plot_similarity", "plot_embeddings", "plot_confusion"):
            monkeypatch.setattr(plot_module, figure,
                                lambda *a, **k: pytest.fail("drew before checking"))
    before = sorted(p.name for p in ctx.dir.iterdir())
    with pytest.raises(error) as info:
        call(ctx)
    message = str(info.value)
    assert all(word in message for word in words), message
    assert "\n" not in message, message  # one line, as the CLI prints it
    assert sorted(p.name for p in ctx.dir.iterdir()) == before  # nothing was written


def test_every_public_function_has_bad_input_rows():
    assert public_callables(plot_module) - {row[0] for row in BAD_INPUT} == set()


def test_unmeasured_epochs_and_big_ints_are_values():
    """None and NaN mark epochs without a measurement; a count of 10**20 is a number."""
    fig = plot_history(history(epochs=3, zero_shot_seen=[None, 0.5, np.nan]),
                       batch_size=10**20)
    assert len(fig.axes) == 3
    assert confusion_matrix(np.array([1], np.uint8), [1], np.int64(2)).tolist() == [[0, 0],
                                                                                   [0, 1]]


class PathLike:
    """A path type of one's own: what os.fspath accepts."""

    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return str(self.path)


@pytest.mark.parametrize("as_folder", [str, Path, PathLike])
def test_write_plots_puts_the_figures_into_a_folder_given_as_str_or_path_created_if_missing(
        run, tmp_path, as_folder):
    folder = tmp_path / "new" / "plots"
    paths = write_plots(run.state, run.splits, as_folder(folder), run.initial)
    assert [p.parent for p in paths] == [folder] * 4
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert plt.get_fignums() == []  # a CLI run must not pile up open figures


def test_an_unwritable_plots_folder_fails_before_any_figure_is_drawn(run, tmp_path,
                                                                      monkeypatch):
    folder = unwritable_folder(tmp_path)
    monkeypatch.setattr(plot_module, "plot_history", lambda *a, **k: pytest.fail("drew anyway"))
    with pytest.raises(OSError) as info:
        write_plots(run.state, run.splits, folder, run.initial)
    assert f"cannot write the figures into folder {folder}" in str(info.value)
