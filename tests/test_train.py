import dataclasses
import errno
import json
import os
import re
import stat
import warnings
import zipfile
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import unwritable_folder

from numclip import train as tr
from numclip.data import make_dataset
from numclip.model import TinyCLIP
from numclip.optim import AdamW
from numclip.text import Vocabulary
from numclip.train import CheckpointError, TrainConfig, TrainingDiverged

SMALL = TrainConfig(epochs=2, batch_size=64, embed_dim=8, train_size=384, eval_size=80)


@pytest.fixture(scope="module")
def splits():
    return tr.make_splits(SMALL)


def run(splits, **kwargs):
    config = dataclasses.replace(SMALL, **{k: v for k, v in kwargs.items()
                                           if k in {f.name for f in dataclasses.fields(SMALL)}})
    rest = {k: v for k, v in kwargs.items() if k not in {f.name for f in
                                                          dataclasses.fields(SMALL)}}
    return tr.train(config, quiet=True, splits=splits, **rest)


def assert_same_params(a, b):
    assert a.model.params.keys() == b.model.params.keys()
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k], err_msg=k)


def test_training_lowers_the_loss_and_records_history(splits):
    state = run(splits, epochs=3)
    h = state.history
    assert h["epoch"] == [1, 2, 3]
    assert h["loss"][-1] < h["loss"][0]
    assert set(h) == set(tr.HISTORY_KEYS) and all(len(v) == 3 for v in h.values())
    assert all(0 <= a <= 1 for a in h["accuracy"] + h["zero_shot_seen"])
    assert all(s <= 100.0 + 1e-9 for s in h["scale"])


def test_same_seed_gives_bit_identical_parameters(splits):
    assert_same_params(run(splits), run(splits))


def test_another_seed_gives_other_parameters():
    config = dataclasses.replace(SMALL, seed=1, epochs=1)
    a, b = tr.train(config, quiet=True), tr.train(dataclasses.replace(config, seed=2), quiet=True)
    assert not np.array_equal(a.model.params["image_proj"], b.model.params["image_proj"])


def test_resuming_gives_exactly_the_uninterrupted_run(splits, tmp_path):
    ckpt = tmp_path / "run.npz"
    run(splits, epochs=2, out=ckpt)
    resumed = run(splits, epochs=4, resume=ckpt)
    straight = run(splits, epochs=4)
    assert resumed.epoch == straight.epoch == 4
    assert_same_params(resumed, straight)
    assert resumed.optimizer.state["step"] == straight.optimizer.state["step"]
    assert resumed.history == straight.history


def test_siglip_trains_checkpoints_and_resumes_exactly(splits, tmp_path):
    ckpt = tmp_path / "siglip.npz"
    first = run(splits, epochs=1, loss="siglip", out=ckpt)
    assert "logit_bias" in first.model.params and first.history["loss"][0] > 0
    loaded = tr.load_checkpoint(ckpt)
    assert loaded.model.loss == "siglip"
    assert_same_params(run(splits, epochs=2, loss="siglip", resume=ckpt),
                       run(splits, epochs=2, loss="siglip"))
    with pytest.raises(CheckpointError, match="loss: checkpoint 'siglip', asked 'clip'"):
        run(splits, epochs=2, resume=ckpt)


def test_checkpoint_round_trip(splits, tmp_path):
    state = run(splits, epochs=1)
    tr.save_checkpoint(tmp_path / "a.npz", state)
    loaded = tr.load_checkpoint(tmp_path / "a.npz")
    assert_same_params(loaded, state)
    assert loaded.config == state.config and loaded.vocab == state.vocab
    assert loaded.history == state.history and loaded.epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary file left


def test_an_interrupted_save_leaves_the_old_checkpoint_intact(splits, tmp_path, monkeypatch):
    state = run(splits, epochs=1)
    path = tmp_path / "run.npz"
    tr.save_checkpoint(path, state)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        tr.save_checkpoint(path, state)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


@pytest.mark.parametrize("damage, match", [
    (lambda b: b[: len(b) // 2], "truncated or corrupt"),
    (lambda b: b[:200] + bytes(50) + b[250:], "truncated or corrupt"),
    (lambda b: b"not a zip file at all", "not a numclip checkpoint"),
])
def test_a_damaged_checkpoint_is_refused_and_left_untouched(splits, tmp_path, damage, match):
    path = tmp_path / "run.npz"
    tr.save_checkpoint(path, run(splits, epochs=1))
    path.write_bytes(damage(path.read_bytes()))
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=match):
        tr.load_checkpoint(path)
    with pytest.raises(CheckpointError):
        run(splits, epochs=2, resume=path, out=path)
    assert path.read_bytes() == before


def test_foreign_and_incomplete_files_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(CheckpointError, match="not a numclip checkpoint"):
        tr.load_checkpoint(tmp_path / "other.npz")
    np.savez(tmp_path / "partial.npz", format=np.asarray(tr.CHECKPOINT_FORMAT),
             config=np.asarray(json.dumps(dataclasses.asdict(SMALL))))
    with pytest.raises(CheckpointError,
                       match=re.escape("is incomplete: missing epoch, opt.step, vocab")):
        tr.load_checkpoint(tmp_path / "partial.npz")
    with pytest.raises(CheckpointError, match="does not exist"):
        tr.load_checkpoint(tmp_path / "missing.npz")


def test_pickled_objects_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, format=np.asarray(tr.CHECKPOINT_FORMAT), config=np.array([{"a": 1}],
                                                                           dtype=object))
    with pytest.raises(CheckpointError):
        tr.load_checkpoint(path)


def test_a_checkpoint_from_another_run_is_refused(splits, tmp_path):
    path = tmp_path / "run.npz"
    run(splits, epochs=1, out=path)
    other = dataclasses.replace(SMALL, embed_dim=16, epochs=3)
    with pytest.raises(CheckpointError, match="embed_dim: checkpoint 8, asked 16"):
        tr.train(other, resume=path, quiet=True, splits=splits)


def test_saving_into_a_missing_folder_is_a_clear_error(splits, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tr.save_checkpoint(tmp_path / "no" / "such" / "dir.npz", run(splits, epochs=1))


class PathLike:
    """A path type of one's own: what os.fspath accepts (it may answer in bytes)."""

    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return self.path if isinstance(self.path, bytes) else str(self.path)


@pytest.fixture
def places(tmp_path):
    """A folder, a plain file in it, a text file that is no checkpoint, the parts of a
    fresh TrainState of SMALL (a vocabulary of 5 words), and splits of 8 images."""
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "README.md").write_text("# numclip\n")
    vocab = Vocabulary.build(["a red circle", "blue"])
    parts = (SMALL, TinyCLIP.create(768, len(vocab), 8), AdamW(), vocab)
    eight = make_dataset(8, seed=0)  # numclip.data's, not the one the table test stubs
    return SimpleNamespace(dir=tmp_path, file=tmp_path / "afile", text=tmp_path / "README.md",
                           parts=parts, splits={"train": eight, "seen": eight, "heldout": eight},
                           big=make_dataset(8, seed=0, image_size=20))


def config(**kwargs):
    return lambda p: TrainConfig(**kwargs)


# The module's bad-input table: (public name, call given `places`, error type, words the
# message must contain).
BAD_INPUT = [
    ("TrainConfig", config(epochs=0), ValueError, ["epochs must be at least 1", "got 0"]),
    ("TrainConfig", config(epochs="3"), TypeError, ["epochs", "got str '3'"]),
    ("TrainConfig", config(epochs=True), TypeError, ["epochs", "bool"]),
    ("TrainConfig", config(epochs=10**7), ValueError, ["epochs must be at most 1,000,000"]),
    ("TrainConfig", config(epochs=np.True_), TypeError, ["epochs must be an int", "bool"]),
    # a number too long for a message is counted, not printed (str() refuses 4301 digits)
    ("TrainConfig", config(epochs=10**400), ValueError,
     ["epochs must be at most 1,000,000", "got a 401-digit number"]),
    ("TrainConfig", config(epochs=10**5000), ValueError, ["got a 5001-digit number"]),
    ("TrainConfig", config(batch_size=1), ValueError, ["batch_size must be at least 2"]),
    ("TrainConfig", config(batch_size=1000, train_size=500), ValueError,
     ["must not exceed train_size"]),
    ("TrainConfig", config(batch_size=16384, train_size=20000), ValueError,
     ["batch_size must be at most 8,192", "(B, B)"]),
    ("TrainConfig", config(batch_size=None), TypeError, ["batch_size", "NoneType"]),
    ("TrainConfig", config(embed_dim=2.5), TypeError, ["embed_dim must be an int", "float 2.5"]),
    ("TrainConfig", config(embed_dim=10**9), ValueError,
     ["embed_dim must be at most 1,024", "got 1,000,000,000"]),
    ("TrainConfig", config(train_size=10**7), ValueError, ["train_size must be at most 100,000"]),
    ("TrainConfig", config(eval_size=10**6), ValueError, ["eval_size must be at most 10,000"]),
    ("TrainConfig", config(eval_size=[5]), TypeError, ["eval_size", "list"]),
    ("TrainConfig", config(lr="a"), TypeError, ["lr must be a real number", "str 'a'"]),
    ("TrainConfig", config(lr=1j), TypeError, ["lr must be a real number", "complex"]),
    ("TrainConfig", config(lr=np.array([1e-3])), TypeError, ["lr must be a real number",
                                                            "ndarray"]),
    # ints beyond a float's range: OverflowError from float()
    ("TrainConfig", config(lr=10**400), ValueError, ["lr must be positive and finite", "inf"]),
    ("TrainConfig", config(weight_decay=10**400), ValueError,
     ["weight_decay must be non-negative and finite", "inf"]),
    ("TrainConfig", config(weight_decay=-10**400), ValueError,
     ["weight_decay must be non-negative and finite", "-inf"]),
    ("TrainConfig", config(lr=True), TypeError, ["lr", "bool"]),
    ("TrainConfig", config(lr=-1.0), ValueError, ["lr must be positive"]),
    ("TrainConfig", config(lr=float("inf")), ValueError, ["lr must be positive and finite"]),
    ("TrainConfig", config(lr=1e30), ValueError, ["lr * weight_decay must be below 1",
                                                  "smaller lr"]),
    ("TrainConfig", config(weight_decay="x"), TypeError, ["weight_decay", "str"]),
    ("TrainConfig", config(weight_decay=float("nan")), ValueError,
     ["weight_decay must be non-negative"]),
    ("TrainConfig", config(seed=-1), ValueError, ["seed must be at least 0", "-1"]),
    ("TrainConfig", config(seed=1.5), TypeError, ["seed must be an int", "1.5"]),
    # a seed of 5,000 digits trained, then failed to be saved as the config's JSON
    ("TrainConfig", config(seed=2**128), ValueError, ["seed must be at most", "128 bits"]),
    ("TrainConfig", config(seed="0"), TypeError, ["seed", "str"]),
    ("TrainConfig", config(loss="hinge"), ValueError, ["loss must be one of", "'hinge'"]),
    ("TrainConfig", config(loss=3), TypeError, ["loss must be a str", "int 3"]),
    ("TrainConfig", config(encoder="cnn"), ValueError, ["encoder must be one of", "'cnn'"]),
    ("TrainConfig", config(encoder=None), TypeError, ["encoder must be a str", "NoneType"]),
    ("TrainConfig", config(temperature=0.0), ValueError, ["temperature must be positive"]),
    ("TrainConfig", config(temperature=-1), ValueError, ["temperature must be positive"]),
    ("TrainConfig", config(temperature=float("nan")), ValueError, ["temperature"]),
    ("TrainConfig", config(temperature=0.005), ValueError,
     ["temperature must be at least 0.01", "0.005"]),
    ("TrainConfig", config(temperature="0.07"), TypeError, ["temperature must be a real"]),
    ("TrainConfig", config(data="coco"), ValueError, ["data must be one of", "'coco'"]),
    ("TrainConfig", config(data=1), TypeError, ["data must be a str", "int"]),
    ("TrainConfig", config(hard_negatives="yes"), TypeError,
     ["hard_negatives must be True or False"]),
    ("TrainConfig", config(hard_negatives=True), ValueError,
     ["hard_negatives needs data='scenes'", "data='shapes'"]),
    ("TrainConfig", config(hard_negatives=True, data="scenes", loss="siglip"), ValueError,
     ["hard_negatives needs", "loss='siglip'"]),
    ("TrainState", lambda p: tr.TrainState(None, *p.parts[1:]), TypeError,
     ["config must be a numclip.train.TrainConfig", "NoneType"]),
    ("TrainState", lambda p: tr.TrainState(SMALL, "model", *p.parts[2:]), TypeError,
     ["model must be a numclip.model.TinyCLIP", "str"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts[:2], {}, p.parts[3]), TypeError,
     ["optimizer must be a numclip.optim.AdamW", "dict"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts[:3], ["red", "circle"]), TypeError,
     ["vocab must be a numclip.text.Vocabulary", "list"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, epoch=-1), ValueError,
     ["epoch must be at least 0", "-1"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, epoch=1.0), TypeError,
     ["epoch must be an int", "float"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, epoch=1), ValueError,
     ["history['epoch'] must hold one value per epoch (1), got 0"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, history=None), TypeError,
     ["history must be a dict of lists", "NoneType"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, history={"loss": []}), ValueError,
     ["history must hold exactly epoch, loss, scale", "got 'loss'"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, history={k: () for k in tr.HISTORY_KEYS}),
     TypeError, ["history['epoch'] must be a list", "tuple"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, epoch=1, history={
        **{k: [1.0] for k in tr.HISTORY_KEYS}, "loss": ["x"]}), TypeError,
     ["history['loss'][0] must be a number, got str 'x'"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, epoch=1, history={
        **{k: [1.0] for k in tr.HISTORY_KEYS}, "scale": [float("nan")]}), ValueError,
     ["history['scale'][0] must be finite, got nan"]),
    ("TrainState", lambda p: tr.TrainState(*p.parts, epoch=1, history={
        **{k: [1.0] for k in tr.HISTORY_KEYS}, "accuracy": [True]}), TypeError,
     ["history['accuracy'][0] must be a number, got bool"]),
    ("TrainState", lambda p: tr.TrainState(SMALL, TinyCLIP.create(768, len(p.parts[3]), 16),
                                           *p.parts[2:]), ValueError,
     ["model does not fit config", "image_proj has shape (768, 16)", "expected (768, 8)"]),
    ("TrainState", lambda p: tr.TrainState(SMALL, TinyCLIP.create(768, 3, 8), *p.parts[2:]),
     ValueError, ["model does not fit vocab", "text_proj has 3 rows", "vocab has 5 words"]),
    ("TrainState", lambda p: tr.TrainState(SMALL, TinyCLIP.create(768, 5, 8, loss="siglip"),
                                           *p.parts[2:]), ValueError,
     ["model computes the 'siglip' loss, but config.loss is 'clip'"]),
    ("make_splits", lambda p: tr.make_splits({"train_size": 10}), TypeError,
     ["config must be a TrainConfig", "dict"]),
    ("train", lambda p: tr.train("fast"), TypeError, ["config must be a TrainConfig", "str"]),
    ("train", lambda p: tr.train(SMALL, quiet="no"), TypeError,
     ["quiet must be True or False", "str"]),
    ("train", lambda p: tr.train(SMALL, splits={}), ValueError,
     ["splits must hold the datasets 'train', 'seen', 'heldout'", "make_splits"]),
    ("train", lambda p: tr.train(SMALL, splits=3), TypeError, ["splits must be a dict", "int"]),
    # another config's data: the checkpoint would count other steps than train_size gives
    ("train", lambda p: tr.train(SMALL, splits=p.splits), ValueError,
     ["splits['train'] holds 8 images but config.train_size is 384", "make_splits(config)"]),
    ("train", lambda p: tr.train(SMALL, comm=3), TypeError,
     ["comm must be an MPI communicator", "int"]),
    ("train", lambda p: tr.train(SMALL, out="run\0.npz"), ValueError,
     ["contains a NUL character"]),
    ("train", lambda p: tr.train(SMALL, out=""), ValueError, ["checkpoint path is empty"]),
    ("train", lambda p: tr.train(SMALL, out=p.dir), IsADirectoryError, ["is a directory"]),
    ("train", lambda p: tr.train(SMALL, out=p.file / "x.npz"), NotADirectoryError,
     ["afile is a file, not a folder"]),
    ("train", lambda p: tr.train(SMALL, resume=p.dir / "none.npz"), CheckpointError,
     ["none.npz does not exist"]),
    ("check_splits", lambda p: tr.check_splits(None), TypeError,
     ["splits must be a dict of Datasets under train, seen, heldout", "NoneType"]),
    ("check_splits", lambda p: tr.check_splits({"train": p.splits["train"]}), ValueError,
     ["splits must hold", "missing 'seen', 'heldout'"]),
    ("check_splits", lambda p: tr.check_splits(dict(p.splits, seen=p.splits["seen"].images)),
     TypeError, ["splits['seen'] must be a numclip.data.Dataset", "ndarray"]),
    ("check_splits", lambda p: tr.check_splits(dict(p.splits, heldout=p.big)), ValueError,
     ["splits['heldout'] must hold 16x16 images", "got 20x20"]),
    ("check_splits", lambda p: tr.check_splits(p.splits, {"train_size": 8}), TypeError,
     ["config must be a TrainConfig or None", "dict"]),
    ("check_splits", lambda p: tr.check_splits(p.splits, SMALL), ValueError,
     ["splits['train'] holds 8 images but config.train_size is 384"]),
    ("blas_threads", lambda p: tr.blas_threads({"batch_size": 256}), TypeError,
     ["config must be a TrainConfig", "dict"]),
    ("check_output_path", lambda p: tr.check_output_path(3), TypeError, ["str or a path", "int"]),
    ("check_output_path", lambda p: tr.check_output_path(p.file / "sub" / "x.npz"),
     NotADirectoryError, ["afile is a file, not a folder"]),
    ("check_output_path", lambda p: tr.check_output_path(p.dir / "no" / "x.npz"),
     FileNotFoundError, ["folder", "does not exist"]),
    ("check_output_path", lambda p: tr.check_output_path("/dev/null"), ValueError,
     ["not a regular file"]),
    ("check_output_path", lambda p: tr.check_output_path(b"run.npz"), TypeError,
     ["checkpoint path must be a str or a path", "bytes"]),
    ("check_output_path", lambda p: tr.check_output_path(PathLike(b"run.npz")), TypeError,
     ["checkpoint path must be a str or a path", "names a file in bytes"]),
    # the folder "a" of "a\0b" does not exist either, but that is not what is wrong
    ("check_output_path", lambda p: tr.check_output_path(p.dir / "a\0b.npz"), ValueError,
     ["checkpoint path", "contains a NUL character"]),
    ("save_checkpoint", lambda p: tr.save_checkpoint(p.dir / "x.npz", "state"), TypeError,
     ["state must be a TrainState", "str"]),
    ("save_checkpoint", lambda p: tr.save_checkpoint(p.dir, "state"), IsADirectoryError,
     ["is a directory"]),
    ("save_checkpoint", lambda p: tr.save_checkpoint("x\0.npz", "state"), ValueError,
     ["contains a NUL character"]),
    ("load_checkpoint", lambda p: tr.load_checkpoint(None), TypeError, ["str or a path"]),
    ("load_checkpoint", lambda p: tr.load_checkpoint(""), CheckpointError, ["path is empty"]),
    ("load_checkpoint", lambda p: tr.load_checkpoint(p.dir), CheckpointError,
     ["is a directory, not a file"]),
    ("load_checkpoint", lambda p: tr.load_checkpoint(p.text), CheckpointError,
     ["README.md is not a numclip checkpoint", "not an .npz file"]),
    ("load_checkpoint", lambda p: tr.load_checkpoint(p.dir / "gone.npz"), CheckpointError,
     ["gone.npz does not exist"]),
    ("load_checkpoint", lambda p: tr.load_checkpoint("a\0b"), CheckpointError,
     ["checkpoint path 'a\\x00b' contains a NUL character"]),
    ("load_checkpoint", lambda p: tr.load_checkpoint(b"run.npz"), TypeError,
     ["checkpoint path must be a str or a path", "bytes"]),
    ("load_checkpoint", lambda p: tr.load_checkpoint(p.text, expect=3), TypeError,
     ["expect must be a TrainConfig or None", "int"]),
]
NO_BAD_INPUT = {  # public names that take no input to check
    "SPLITS": "the names of the splits (a tuple)",
    "CheckpointError": "an exception", "TrainingDiverged": "an exception",
    "CHECKPOINT_SCHEMA": "a table (tests/test_checkpoint.py checks files against it)",
    "DEFAULT_LR": "a table of step sizes",
}


def test_the_step_size_defaults_to_the_encoders_own():
    assert TrainConfig().lr == 3e-3 and TrainConfig(encoder="transformer").lr == 1e-3
    assert TrainConfig(encoder="transformer", lr=2e-3).lr == 2e-3


@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words, places,
                                                           monkeypatch):
    monkeypatch.setattr(tr, "make_dataset", lambda *a, **k: pytest.fail("worked before checking"))
    with pytest.raises(error) as info:
        call(places)
    message = str(info.value)
    assert type(info.value) is error or error is CheckpointError
    assert all(w in message for w in words), message
    assert "allow_pickle" not in message and "\n" not in message


def test_every_public_name_has_bad_input_rows():
    covered = {row[0] for row in BAD_INPUT} | set(NO_BAD_INPUT)
    assert set(tr.__all__) <= covered, sorted(set(tr.__all__) - covered)


def test_unusual_but_valid_config_values_are_accepted_as_python_numbers(tmp_path):
    config = TrainConfig(epochs=np.int64(2), batch_size=np.int32(64), embed_dim=8,
                         lr=np.float32(0.5), weight_decay=0, train_size=384, eval_size=80,
                         seed=np.uint8(3), loss=np.str_("siglip"))
    assert type(config.epochs) is int and type(config.seed) is int
    assert type(config.lr) is float and type(config.weight_decay) is float
    assert type(config.loss) is str and config.loss == "siglip"
    assert json.loads(json.dumps(dataclasses.asdict(config)))["seed"] == 3
    assert TrainConfig(lr=Fraction(1, 1000)).lr == 0.001
    assert TrainConfig(seed=2**128 - 1).seed == 2**128 - 1  # the largest seed still counts


def test_checkpoint_is_a_plain_npz(splits, tmp_path):
    path = tmp_path / "run.npz"
    run(splits, epochs=1, out=path)
    with zipfile.ZipFile(path) as z:
        assert "param.image_proj.npy" in z.namelist()
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(str(npz["config"]))["embed_dim"] == 8


def test_a_missing_output_folder_fails_before_training(splits, tmp_path, monkeypatch):
    monkeypatch.setattr(tr, "make_splits", lambda config: pytest.fail("trained anyway"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tr.train(SMALL, out=tmp_path / "nowhere" / "run.npz", quiet=True)


# ----------------------------------------------------------------------------- saving

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_checkpoint_gets_the_permissions_the_umask_gives(splits, tmp_path, umask):
    state = run(splits, epochs=1)
    old = os.umask(umask)
    try:
        tr.save_checkpoint(tmp_path / "run.npz", state)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run.npz").stat().st_mode) == 0o666 & ~umask


def test_a_replaced_checkpoint_keeps_its_permissions(splits, tmp_path):
    state, path = run(splits, epochs=1), tmp_path / "run.npz"
    tr.save_checkpoint(path, state)
    path.chmod(0o640)
    tr.save_checkpoint(path, state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_killed_save_leaves_a_temporary_file_the_next_save_removes(splits, tmp_path):
    state, path = run(splits, epochs=1), tmp_path / "run.npz"
    (tmp_path / ".run.npz.tmp").write_bytes(b"half a checkpoint: the save was killed")
    (tmp_path / ".run.npz.a1b2c3_d.tmp").write_bytes(b"left by an older numclip (mkstemp)")
    (tmp_path / ".run.npz.mine.tmp.keep").write_bytes(b"not numclip's")
    tr.save_checkpoint(path, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.npz.mine.tmp.keep", "run.npz"]
    assert_same_params(tr.load_checkpoint(path), state)


def test_a_state_that_breaks_the_schema_is_not_written(splits, tmp_path):
    state, path = run(splits, epochs=1), tmp_path / "run.npz"
    state.model.params["text_proj"] = state.model.params["text_proj"].copy()
    state.model.params["text_proj"][3, 1] = np.nan
    with pytest.raises(CheckpointError, match=r"param\.text_proj must hold finite numbers"):
        tr.save_checkpoint(path, state)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_refuses_files_fails_before_training(tmp_path, monkeypatch):
    """os.access says yes to root everywhere, /proc included: only creating a file tells."""
    path = unwritable_folder(tmp_path) / "run.npz"
    with pytest.raises(OSError) as info:
        tr.check_output_path(path)
    message = str(info.value)
    assert message.startswith(f"cannot write checkpoint {path}: no file can be created in "
                              f"folder {path.parent} ("), message
    assert ".run.npz.tmp" not in message and "\n" not in message
    monkeypatch.setattr(tr, "make_splits", lambda config: pytest.fail("trained anyway"))
    with pytest.raises(OSError, match="no file can be created"):
        tr.train(SMALL, out=path, quiet=True)


def test_saving_into_a_folder_that_refuses_files_names_the_checkpoint(splits, tmp_path):
    state = run(splits, epochs=1)
    path = unwritable_folder(tmp_path) / "run.npz"
    with pytest.raises(OSError) as info:
        tr.save_checkpoint(path, state)
    assert str(info.value).startswith(f"cannot write checkpoint {path} ("), info.value


def test_a_failed_write_names_the_checkpoint_and_keeps_the_old_one(splits, tmp_path,
                                                                   monkeypatch):
    state, path = run(splits, epochs=1), tmp_path / "run.npz"
    tr.save_checkpoint(path, state)
    before = path.read_bytes()

    def disk_full(file, **arrays):
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError) as info:
        tr.save_checkpoint(path, state)
    assert str(info.value) == (f"cannot write checkpoint {path} (No space left on device); "
                               "the file there, if any, is unchanged")
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_checking_an_output_path_leaves_nothing_behind(tmp_path):
    (tmp_path / ".run.npz.tmp").write_bytes(b"half a checkpoint: the save was killed")
    assert tr.check_output_path(str(tmp_path / "run.npz")) == tmp_path / "run.npz"
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_path_may_be_any_path_like(splits, tmp_path):
    state = run(splits, epochs=1)
    tr.save_checkpoint(PathLike(tmp_path / "run.npz"), state)
    assert_same_params(tr.load_checkpoint(PathLike(tmp_path / "run.npz")), state)
    assert tr.check_output_path(PathLike(tmp_path / "run.npz")) == tmp_path / "run.npz"


def test_splits_of_the_config_are_accepted_and_returned(splits):
    assert tr.check_splits(splits, SMALL) is splits
    assert tr.check_splits(dict(splits, extra="ignored")) is not None
    assert tr.check_splits(splits, dataclasses.replace(SMALL, epochs=9, lr=0.1)) is splits


def test_a_state_is_checked_whenever_it_is_built(splits):
    state = run(splits, epochs=1)
    assert dataclasses.replace(state).epoch == 1  # a trained state passes its own checks
    wrong = re.escape("history['epoch'] must hold one value per epoch (2), got 1")
    with pytest.raises(ValueError, match=wrong):
        dataclasses.replace(state, epoch=2)


# ----------------------------------------------------------------------------- resuming

def test_resuming_a_run_that_has_more_epochs_than_asked_is_an_error(splits, tmp_path):
    path = tmp_path / "run.npz"
    run(splits, epochs=2, out=path)
    with pytest.raises(ValueError, match=r"already trained 2 epochs, more than config\.epochs"):
        run(splits, epochs=1, resume=path)


def test_resuming_a_finished_run_writes_it_to_a_new_out_once(splits, tmp_path):
    first, again = tmp_path / "run.npz", tmp_path / "copy.npz"
    run(splits, epochs=2, out=first)
    before = first.read_bytes()
    state = run(splits, epochs=2, resume=first, out=first)
    assert state.epoch == 2 and first.read_bytes() == before  # nothing trained, nothing written
    run(splits, epochs=2, resume=first, out=again)
    assert_same_params(tr.load_checkpoint(again), state)


def test_the_checkpoint_is_read_before_the_data_is_made(tmp_path, monkeypatch):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 and then nothing")
    monkeypatch.setattr(tr, "make_splits", lambda config: pytest.fail("made the data first"))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        tr.train(SMALL, resume=tmp_path / "bad.npz", quiet=True)


# ----------------------------------------------------------------------------- diverging

def test_a_diverging_run_stops_with_where_and_what_to_change(splits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no RuntimeWarning on the way
        with pytest.raises(TrainingDiverged, match=r"diverged at epoch 1, step 1 of 6: .*"
                                                   r"image_proj.*smaller lr"):
            run(splits, epochs=1, lr=1e38, weight_decay=0.0)


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(splits, tmp_path,
                                                                       monkeypatch):
    real, calls, path = tr.TinyCLIP.loss_and_grads, [], tmp_path / "run.npz"

    def nan_at_step_8(self, pixels, tokens):  # epoch 2, step 2 (6 steps an epoch)
        calls.append(1)
        loss, grads = real(self, pixels, tokens)
        return (np.float32(np.nan) if len(calls) == 8 else loss), grads

    monkeypatch.setattr(tr.TinyCLIP, "loss_and_grads", nan_at_step_8)
    with pytest.raises(TrainingDiverged, match=re.escape(
            "epoch 2, step 2 of 6: the loss is not finite; try a smaller lr than 0.003")):
        run(splits, epochs=3, out=path)
    assert tr.load_checkpoint(path).epoch == 1


def test_the_history_figure_of_a_run_names_its_batch_and_class_counts(splits, tmp_path,
                                                                     monkeypatch):
    from numclip import plot
    from numclip.plot import write_plots

    state = run(splits, epochs=1)
    seen = {}
    real = plot.plot_history
    monkeypatch.setattr(plot, "plot_history",
                        lambda *args, **kwargs: seen.update(kwargs) or real(*args, **kwargs))
    write_plots(state, splits, tmp_path, tr.new_state(SMALL, splits["train"]).model)
    assert seen == {"batch_size": SMALL.batch_size, "num_classes": 40}


def test_a_run_of_the_tiny_model_uses_one_blas_thread_and_a_wide_one_keeps_them():
    from threadpoolctl import threadpool_info

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas()
    with tr.blas_threads(TrainConfig()):
        assert blas() == [1] * len(before)
    with tr.blas_threads(TrainConfig(batch_size=8192, embed_dim=1024, train_size=8192)):
        assert blas() == before
    assert blas() == before


def test_a_fixed_temperature_holds_for_the_whole_run():
    """temperature=tau starts the scale at 1/tau and no step moves it (the gradient of
    logit_scale is zeroed, so AdamW's moments for it stay 0), while everything else trains."""
    config = TrainConfig(epochs=2, train_size=512, batch_size=128, eval_size=64,
                         temperature=0.5)
    state = tr.train(config, quiet=True)
    # the scale is exp of a float32 log(2): within 2 float32 ulps (1.2e-7 each) of 2
    assert state.history["scale"] == pytest.approx([2.0, 2.0], rel=1e-6)
    assert float(state.optimizer.state["m.logit_scale"]) == 0.0
    learned = tr.train(dataclasses.replace(config, temperature=None), quiet=True)
    assert learned.history["scale"][-1] != pytest.approx(1 / 0.07, rel=1e-6)
    assert state.history["loss"] != learned.history["loss"]
