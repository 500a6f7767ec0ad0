"""numclip.report on bad input (one table) and on valid but unusual input.

Every public function of the report checks what it is given (a TrainState, the
splits make_splits returns, ks, templates, a folder, the model before training)
before it computes anything, and says in one line which argument is wrong and
what was expected.
"""

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import public_callables, unwritable_folder

from numclip import report
from numclip import train as tr
from numclip.data import make_dataset
from numclip.model import TinyCLIP
from numclip.train import TrainConfig

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
    """The run, plus a folder, a plain file in it, and a few doctored arguments."""
    (tmp_path / "afile").write_text("not a folder")
    big = make_dataset(8, seed=0, image_size=20)  # 20 x 20 images: not make_splits'
    wide = TinyCLIP.create(768, len(run.state.vocab), 16)  # embed_dim 16, not 8
    return SimpleNamespace(**vars(run), dir=tmp_path, file=tmp_path / "afile", big=big,
                           wide=wide)


def without(splits, key):
    return {k: v for k, v in splits.items() if k != key}


ev, zs, cm, fm, wp = (report.evaluate, report.zero_shot_metrics, report.checkpoint_metrics,
                      report.final_metrics, report.write_plots)

# The module's bad-input table: (public name, call given `ctx`, error type, words the
# message must contain).
BAD_INPUT = [
    # state: a TrainState, nothing else
    ("evaluate", lambda c: ev(None, c.splits), TypeError,
     ["state must be a numclip.train.TrainState", "NoneType"]),
    ("zero_shot_metrics", lambda c: zs(c.state.model, c.splits), TypeError,
     ["state must be a numclip.train.TrainState", "TinyCLIP"]),
    ("checkpoint_metrics", lambda c: cm(3), TypeError,
     ["state must be a numclip.train.TrainState", "int"]),
    ("final_metrics", lambda c: fm({"model": c.state.model}, c.splits), TypeError,
     ["state must be a numclip.train.TrainState", "dict"]),
    ("write_plots", lambda c: wp(None, c.splits, c.dir, c.initial), TypeError,
     ["state must be a numclip.train.TrainState", "NoneType"]),
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
    ("write_plots", lambda c: wp(c.state, {"seen": c.splits["seen"]}, c.dir, c.initial),
     ValueError, ["splits must hold", "missing 'train', 'heldout'"]),
    # top_k: ints from 1 to the number of classes
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=5), TypeError,
     ["top_k must be a sequence of ints", "int 5", "wrap it: (5,)"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=None), TypeError,
     ["top_k must be a sequence of ints", "NoneType"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k="15"), TypeError,
     ["top_k must be a sequence of ints", "str"]),
    ("evaluate", lambda c: ev(c.state, c.splits, top_k=()), ValueError,
     ["top_k must hold at least one k"]),
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
    # folder: a str or path naming a folder that can be created and written
    ("write_plots", lambda c: wp(c.state, c.splits, None, c.initial), TypeError,
     ["folder must be a str or a path", "NoneType"]),
    ("write_plots", lambda c: wp(c.state, c.splits, b"plots", c.initial), TypeError,
     ["folder must be a str or a path", "bytes"]),
    ("write_plots", lambda c: wp(c.state, c.splits, "", c.initial), ValueError,
     ["folder is empty"]),
    ("write_plots", lambda c: wp(c.state, c.splits, "plots\0x", c.initial), ValueError,
     ["folder", "contains a NUL character"]),
    ("write_plots", lambda c: wp(c.state, c.splits, c.file, c.initial), NotADirectoryError,
     ["afile is a file, not a folder"]),
    ("write_plots", lambda c: wp(c.state, c.splits, c.file / "sub", c.initial),
     NotADirectoryError, ["cannot create the folder", "afile is a file, not a folder"]),
    # initial_model: the model before training, of the trained model's shapes
    ("write_plots", lambda c: wp(c.state, c.splits, c.dir, None), TypeError,
     ["initial_model must be a TinyCLIP", "NoneType"]),
    ("write_plots", lambda c: wp(c.state, c.splits, c.dir, c.state), TypeError,
     ["initial_model must be a TinyCLIP", "TrainState"]),
    ("write_plots", lambda c: wp(c.state, c.splits, c.dir, c.wide), ValueError,
     ["initial_model must have the trained model's shapes", "image_proj (768, 8)",
      "image_proj (768, 16)"]),
]


@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words, ctx,
                                                           monkeypatch):
    from numclip import plot

    for figure in ("plot_history", "plot_similarity", "plot_embeddings", "plot_confusion"):
        monkeypatch.setattr(plot, figure, lambda *a, **k: pytest.fail("drew before checking"))
    before = sorted(p.name for p in ctx.dir.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning or UserWarning on the way
        with pytest.raises(error) as info:
            call(ctx)
    message = str(info.value)
    assert all(w in message for w in words), message
    assert "\n" not in message, message
    assert sorted(p.name for p in ctx.dir.iterdir()) == before  # nothing was written


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


class PathLike:
    """A path type of one's own: what os.fspath accepts."""

    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return str(self.path)


@pytest.mark.parametrize("as_folder", [str, Path, PathLike])
def test_the_figures_go_into_a_folder_given_as_str_or_path_created_if_missing(run, tmp_path,
                                                                              as_folder):
    folder = tmp_path / "new" / "plots"
    paths = report.write_plots(run.state, run.splits, as_folder(folder), run.initial)
    assert [p.parent for p in paths] == [folder] * 4
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_an_unwritable_plots_folder_fails_before_any_figure_is_drawn(run, tmp_path,
                                                                      monkeypatch):
    from numclip import plot

    folder = unwritable_folder(tmp_path)
    monkeypatch.setattr(plot, "plot_history", lambda *a, **k: pytest.fail("drew anyway"))
    with pytest.raises(OSError) as info:
        report.write_plots(run.state, run.splits, folder, run.initial)
    assert f"cannot write the figures into folder {folder}" in str(info.value)

