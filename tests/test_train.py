import dataclasses
import json
import zipfile

import numpy as np
import pytest

from numclip import train as tr
from numclip.train import CheckpointError, TrainConfig

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
    (lambda b: b"not a zip file at all", "truncated or corrupt"),
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
    with pytest.raises(CheckpointError, match="incomplete or inconsistent"):
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


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(batch_size=1), "batch_size must be at least 2"),
    (dict(batch_size=1000, train_size=500), "must not exceed train_size"),
    (dict(lr=-1.0), "lr must be positive"),
    (dict(weight_decay=float("nan")), "weight_decay must be non-negative"),
    (dict(embed_dim=2.5), "embed_dim must be a positive integer"),
    (dict(loss="hinge"), "loss must be one of"),
])
def test_bad_config_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


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
