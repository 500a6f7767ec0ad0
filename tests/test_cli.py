"""The numclip command as a user meets it: metrics, checkpoints, figures and one-line errors.

Most tests call ``main`` in this process with small default sizes (the command
has no flag for the data sizes), so that a run takes a fraction of a second;
a few run ``python -m numclip`` for real, to see what a terminal shows.
"""

import dataclasses
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from numclip import train as tr
from numclip.cli import main


@dataclasses.dataclass(frozen=True)
class SmallConfig(tr.TrainConfig):
    """TrainConfig with defaults small enough for a test: 6 steps an epoch."""

    batch_size: int = 64
    embed_dim: int = 8
    train_size: int = 384
    eval_size: int = 80


def use_small_defaults(monkeypatch):
    monkeypatch.setattr(tr, "TrainConfig", SmallConfig)


@pytest.fixture(autouse=True)
def small_defaults(monkeypatch):
    use_small_defaults(monkeypatch)


def run_cli(argv, capsys):
    """``numclip argv`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's errors exit with 2
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-epoch run saved by `numclip train --out`, with its figures."""
    folder = tmp_path_factory.mktemp("run")
    ckpt = folder / "run.npz"
    with pytest.MonkeyPatch.context() as mp:
        use_small_defaults(mp)
        code = main(["train", "--epochs", "2", "--quiet", "--json", "--out", str(ckpt),
                     "--plots", str(folder / "plots")])
    return code, ckpt, folder


@pytest.fixture
def copy_of_run(trained, tmp_path):
    """A private copy of the trained checkpoint, to resume and change."""
    path = tmp_path / "copy.npz"
    path.write_bytes(trained[1].read_bytes())
    return path


# ----------------------------------------------------------------------------- what works

def test_train_saves_a_checkpoint_and_the_figures(trained):
    code, ckpt, folder = trained
    assert code == 0 and tr.load_checkpoint(ckpt).epoch == 2
    for name in ("history", "similarity", "embeddings", "confusion"):
        assert (folder / "plots" / f"{name}.png").stat().st_size > 10_000


def test_resume_continues_the_run_and_saves_it_into_the_resumed_file(copy_of_run, capsys):
    code, out, err = run_cli(["train", "--resume", str(copy_of_run), "--epochs", "3",
                              "--quiet", "--json"], capsys)
    assert code == 0 and err == ""
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics["epochs"] == 3 and metrics["chance"] == 1 / 40
    for key in ("zero_shot_seen", "zero_shot_heldout", "linear_probe", "seconds"):
        assert isinstance(metrics[key], float)
    assert tr.load_checkpoint(copy_of_run).epoch == 3  # saved back, without --out
    assert [p.name for p in copy_of_run.parent.iterdir()] == ["copy.npz"]


def test_resume_with_out_leaves_the_resumed_file_alone(copy_of_run, tmp_path, capsys):
    before = copy_of_run.read_bytes()
    code, _, _ = run_cli(["train", "--resume", str(copy_of_run), "--epochs", "3", "--quiet",
                          "--out", str(tmp_path / "more.npz")], capsys)
    assert code == 0 and copy_of_run.read_bytes() == before
    assert tr.load_checkpoint(tmp_path / "more.npz").epoch == 3


@pytest.mark.parametrize("epochs", [[], ["--epochs", "2"]])
def test_resuming_a_finished_run_says_there_is_nothing_to_train(copy_of_run, capsys, epochs):
    before = copy_of_run.read_bytes()
    code, out, err = run_cli(["train", "--resume", str(copy_of_run), *epochs, "--quiet",
                              "--json"], capsys)
    assert code == 0 and copy_of_run.read_bytes() == before
    assert err.splitlines() == [f"numclip: note: {copy_of_run} has already trained 2 epochs: "
                                "nothing left to train; ask for more with --epochs N, N > 2"]
    assert json.loads(out.splitlines()[-1])["epochs"] == 2


def test_zeroshot_reports_what_the_templates_change_and_the_checkpoint_apart(trained, capsys):
    _, ckpt, _ = trained
    code, out, err = run_cli(["zeroshot", str(ckpt), "--template", "a photo of a {}.",
                              "--template", "there is one {}.", "--json"], capsys)
    assert code == 0 and err == ""
    assert len(out.strip().splitlines()) == 1
    zs = json.loads(out)
    assert zs["templates"] == ["a photo of a {}.", "there is one {}."]
    assert 0 <= zs["zero_shot_heldout"] <= 1 and zs["chance"] == 1 / 40
    assert "linear_probe" not in zs and "final_loss" not in zs  # no template changes them
    saved = tr.load_checkpoint(ckpt)
    assert zs["checkpoint"] == {"path": str(ckpt), "epochs": 2,
                                "final_loss": saved.history["loss"][-1],
                                "scale": pytest.approx(saved.history["scale"][-1])}
    code, out, _ = run_cli(["zeroshot", str(ckpt)], capsys)
    assert code == 0 and "{objects} on a black background" in out  # the default: every count
    assert "counts                       1, 2, 3" in out
    assert "checkpoint:\n  path" in out and "\n  final_loss" in out


def test_an_unknown_word_in_a_template_is_one_warning_line(trained, capsys):
    _, ckpt, _ = trained
    code, out, err = run_cli(["zeroshot", str(ckpt), "--template", "a zebra {}"], capsys)
    assert code == 0 and out
    assert err.splitlines() == ["numclip: warning: 1 word(s) not in the vocabulary map to "
                                "'<unk>': 'zebra' ×40"]


def test_probe_prints_a_table_and_json_and_a_bag_of_words_ties_everywhere(trained, capsys):
    """The shapes run's bag of words ties on every swap (same words), so it scores 0 with
    every item a tie; counting asks for counts, which its captions had."""
    code, out, err = run_cli(["probe", str(trained[1]), "--n", "50"], capsys)
    assert code == 0 and err == ""
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert list(rows) == ["relation", "attribution", "order", "counting"]
    for suite in ("relation", "attribution", "order"):
        assert rows[suite] == ["0.000", {"order": "0.200"}.get(suite, "0.500"), "50", "50"]
    code, out, _ = run_cli(["probe", str(trained[1]), "--n", "40", "--suite", "counting",
                            "order", "--seed", "3", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and list(result) == ["counting", "order"]
    assert result["order"] == {"accuracy": 0.0, "chance": 0.2, "items": 40, "ties": 40}
    assert result["counting"]["chance"] == pytest.approx(1 / 3)


def test_train_on_scenes_with_hard_negatives_and_a_fixed_temperature(tmp_path, capsys):
    ckpt = tmp_path / "scenes.npz"
    code, out, err = run_cli(["train", "--data", "scenes", "--hard-negatives", "--temperature",
                              "0.1", "--epochs", "1", "--quiet", "--json", "--out", str(ckpt),
                              "--plots", str(tmp_path / "plots")], capsys)
    assert code == 0, err
    metrics = json.loads(out.splitlines()[-1])
    # exp of a float32 log(10): within a few float32 ulps (1.2e-7 each) of 10
    assert metrics["classes"] == 280 and metrics["scale"] == pytest.approx(10, rel=1e-6)
    assert {"probe_relation", "probe_attribution", "probe_order"} <= set(metrics)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["history.png",
                                                                      "similarity.png"]
    saved = tr.load_checkpoint(ckpt).config
    assert (saved.data, saved.hard_negatives, saved.temperature) == ("scenes", True, 0.1)
    code, out, err = run_cli(["zeroshot", str(ckpt), "--json"], capsys)
    assert code == 0 and json.loads(out)["classes"] == 280


def test_overwrite_lets_out_replace_another_run(copy_of_run, capsys):
    before = copy_of_run.read_bytes()
    code, _, err = run_cli(["train", "--epochs", "1", "--quiet", "--out", str(copy_of_run),
                            "--overwrite"], capsys)
    assert code == 0, err
    assert tr.load_checkpoint(copy_of_run).epoch == 1 and copy_of_run.read_bytes() != before


def test_a_run_that_learned_nothing_says_so_in_one_warning_line(capsys):
    code, _, err = run_cli(["train", "--epochs", "1", "--quiet", "--lr", "1000"], capsys)
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("numclip: warning: the learned scale"), err
    assert "learned nothing" in lines[0] and "smaller --lr (it is 1000)" in lines[0]
    code, _, err = run_cli(["train", "--epochs", "1", "--quiet"], capsys)
    assert code == 0 and err == ""


def test_the_help_says_what_resume_does(capsys):
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert "keep saving it into CKPT (or --out)" in text
    assert "asking for fewer epochs than it has is an error" in text


# ----------------------------------------------------------------------------- every mistake

MERGES = Path(__file__).parent / "data" / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz"
# a real CLIP's architecture in miniature, but with CLIP's whole BPE vocabulary
TINY_OPEN_CLIP = {"embed_dim": 8,
                  "vision_cfg": {"image_size": 16, "patch_size": 8, "width": 16, "layers": 1,
                                 "head_width": 8},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8,
                               "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def open_clip_files(tmp_path_factory):
    """A random-weight open_clip checkpoint (.npz, made by numclip: no torch), its config
    as JSON, and two images."""
    from PIL import Image

    from numclip.pretrained import encoders_from_config

    folder = tmp_path_factory.mktemp("open_clip")
    vision, text = encoders_from_config(TINY_OPEN_CLIP)
    rng = np.random.default_rng(0)
    params = vision.init_params(rng) | text.init_params(rng) | {"logit_scale": np.log(100.0)}
    np.savez(folder / "tiny.npz", **{k: np.asarray(v, np.float32) for k, v in params.items()})
    (folder / "tiny.json").write_text(json.dumps(TINY_OPEN_CLIP))
    for name, size in (("wide.png", (40, 30)), ("tall.png", (20, 50))):
        pixels = (rng.random((*size, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / name)
    return {"clip": str(folder / "tiny.npz"), "clipcfg": str(folder / "tiny.json"),
            "img": str(folder / "wide.png"), "img2": str(folder / "tall.png"),
            "merges": str(MERGES)}


def test_classify_prints_each_images_probabilities(open_clip_files, capsys):
    f = open_clip_files
    code, out, err = run_cli(["classify", f["clip"], "--config", f["clipcfg"], f["img"],
                              f["img2"], f["img"], "--labels", "cat", "dog", "red bird",
                              "--merges", f["merges"], "--json"], capsys)
    assert code == 0, err
    result = json.loads(out.splitlines()[-1])
    assert [r["image"] for r in result] == [f["img"], f["img2"], f["img"]]  # repeats kept
    for row in result:
        assert list(row["probabilities"]) == ["cat", "dog", "red bird"]
        assert abs(sum(row["probabilities"].values()) - 1) < 1e-6  # float32 softmax of 3
    assert result[0] == result[2]
    code, out, _ = run_cli(["classify", f["clip"], "--config", f["clipcfg"], f["img"],
                            "--labels", "cat", "dog", "--merges", f["merges"]], capsys)
    assert code == 0 and out.splitlines()[0] == f["img"] and len(out.splitlines()) == 3


@pytest.fixture
def places(trained, tmp_path, open_clip_files):
    """Paths for the table's {placeholders}: files of every kind a user might pass."""
    (tmp_path / "afile").write_text("a file, not a folder")
    (tmp_path / "README.md").write_text("# numclip\n")
    data = trained[1].read_bytes()
    (tmp_path / "corrupt.npz").write_bytes(data[:len(data) // 2])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    for name, value in [("nan", np.nan), ("int", None)]:
        weights = np.lib.format.read_array(io.BytesIO(members["param.image_proj.npy"]))
        weights = weights.astype(np.int64) if value is None else np.full_like(weights, value)
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, weights)
        with zipfile.ZipFile(tmp_path / f"{name}.npz", "w") as z:
            for member, raw in (members | {"param.image_proj.npy": buffer.getvalue()}).items():
                z.writestr(member, raw)
    (tmp_path / "run.npz").write_bytes(data)
    return {"dir": str(tmp_path), "ckpt": str(tmp_path / "run.npz"),
            "file": str(tmp_path / "afile"), "readme": str(tmp_path / "README.md"),
            "corrupt": str(tmp_path / "corrupt.npz"), "nan": str(tmp_path / "nan.npz"),
            "int": str(tmp_path / "int.npz")} | open_clip_files


def no_mpi4py(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)


def nan_loss_at_step_3(monkeypatch):
    real, calls = tr.TinyCLIP.loss_and_grads, []

    def loss_and_grads(self, pixels, tokens):
        calls.append(1)
        loss, grads = real(self, pixels, tokens)
        return (np.float32(np.nan) if len(calls) == 3 else loss), grads

    monkeypatch.setattr(tr.TinyCLIP, "loss_and_grads", loss_and_grads)


def out_of_memory(monkeypatch):
    def make_splits(config):
        raise MemoryError("Unable to allocate 5.59 TiB for an array with shape (768, 10**9)")

    monkeypatch.setattr(tr, "make_splits", make_splits)


# (argv with {placeholders}, exit code, words the one stderr line must contain, setup)
MISTAKES = [
    ([], 2, ["a command is required"], None),
    (["bogus"], 2, ["invalid choice: 'bogus'"], None),
    (["--bogus"], 2, ["unrecognized arguments: --bogus"], None),
    (["example", "--bogus"], 2, ["unrecognized arguments: --bogus"], None),
    (["example", "extra"], 2, ["unrecognized arguments: extra"], None),
    (["example", "--json=yes"], 2, ["--json", "ignored explicit argument 'yes'"], None),
    # train: every flag with a bad value
    (["train", "--epochs"], 2, ["argument --epochs: expected one argument"], None),
    (["train", "--epochs", "0"], 2, ["argument --epochs: expected a positive integer"], None),
    (["train", "--epochs", "-1"], 2, ["argument --epochs: expected a positive integer"], None),
    (["train", "--epochs", "1.5"], 2, ["argument --epochs", "'1.5'"], None),
    (["train", "--epochs", "10000000"], 1, ["--epochs 10000000: epochs must be at most 1,000,000"],
     None),
    (["train", "--batch-size", "1"], 1, ["--batch-size 1: batch_size must be at least 2"], None),
    (["train", "--batch-size", "a"], 2, ["argument --batch-size", "'a'"], None),
    (["train", "--batch-size", "500"], 1, ["--batch-size 500: batch_size (500) must not exceed "
                                           "train_size"], None),
    (["train", "--batch-size", "20000"], 1, ["batch_size must be at most 8,192"], None),
    (["train", "--embed-dim", "0"], 2, ["argument --embed-dim: expected a positive integer"],
     None),
    (["train", "--embed-dim", "1000000000"], 1, ["embed_dim must be at most 1,024",
                                                 "got 1,000,000,000"], None),
    (["train", "--lr", "0"], 2, ["argument --lr: expected a positive number, got '0'"], None),
    (["train", "--lr", "-1"], 2, ["argument --lr: expected a positive number"], None),
    (["train", "--lr", "nan"], 2, ["argument --lr: expected a positive number"], None),
    (["train", "--lr", "inf"], 2, ["argument --lr: expected a positive number"], None),
    (["train", "--lr", "fast"], 2, ["argument --lr: expected a positive number"], None),
    (["train", "--lr", "1e30"], 1, ["--lr 1e+30: lr * weight_decay must be below 1",
                                    "smaller lr"], None),
    (["train", "--seed", "-1"], 2, ["argument --seed: expected a non-negative integer, "
                                    "got '-1'"], None),
    (["train", "--seed", "1e3"], 2, ["argument --seed: expected a non-negative integer"], None),
    (["train", "--seed", "a"], 2, ["argument --seed: expected a non-negative integer"], None),
    (["train", "--loss", "hinge"], 2, ["invalid choice: 'hinge'"], None),
    (["train", "--out", ""], 1, ["checkpoint path is empty"], None),
    (["train", "--out", "{dir}"], 1, ["is a directory"], None),
    (["train", "--out", "{file}/x.npz"], 1, ["afile is a file, not a folder"], None),
    (["train", "--out", "{dir}/no/such/x.npz"], 1, ["folder", "does not exist"], None),
    (["train", "--out", "{ckpt}"], 1, ["--out", "run.npz already exists", "--overwrite"], None),
    (["train", "--resume", "{ckpt}", "--epochs", "3", "--out", "{readme}"], 1,
     ["README.md already exists", "--overwrite"], None),
    (["train", "--plots", "{file}"], 1, ["--plots", "afile is a file, not a folder"], None),
    (["train", "--plots", ""], 1, ["--plots needs a folder name"], None),
    (["train", "--plots", "{file}/figures"], 1, ["cannot create the --plots folder",
                                                 "Not a directory"], None),
    (["train", "--resume", "{dir}/missing.npz"], 1, ["missing.npz does not exist"], None),
    (["train", "--resume", "{dir}"], 1, ["is a directory, not a file"], None),
    (["train", "--resume", ""], 1, ["checkpoint path is empty"], None),
    (["train", "--resume", "{corrupt}"], 1, ["corrupt.npz is truncated or corrupt"], None),
    (["train", "--resume", "{readme}"], 1, ["README.md is not a numclip checkpoint"], None),
    (["train", "--resume", "{nan}"], 1, ["param.image_proj must hold finite numbers"], None),
    (["train", "--resume", "{ckpt}", "--epochs", "1"], 1, [
        "run.npz has already trained 2 epochs; ask for more with --epochs N, N > 2"], None),
    (["train", "--resume", "{ckpt}", "--embed-dim", "16"], 1, [
        "continues a run with other settings than --embed-dim 16 (it has 8)"], None),
    (["train", "--resume", "{ckpt}", "--loss", "siglip", "--seed", "3"], 1, [
        "--loss siglip (it has clip)", "--seed 3 (it has 0)"], None),
    (["train", "--resume", "{ckpt}", "--epochs", "3", "--out", "{dir}"], 1,
     ["is a directory"], None),
    (["train", "--distributed", "--epochs", "1"], 1, ["needs mpi4py",
                                                      "pip install 'numclip[mpi]'"], no_mpi4py),
    (["train", "--epochs", "1", "--quiet"], 1, ["training diverged at epoch 1, step 3 of 6",
                                                "the loss is not finite", "smaller lr"],
     nan_loss_at_step_3),
    (["train", "--quiet"], 1, ["out of memory", "Unable to allocate 5.59 TiB"], out_of_memory),
    (["train", "--encoder", "cnn"], 2, ["argument --encoder: invalid choice: 'cnn'"], None),
    (["train", "--resume", "{ckpt}", "--encoder", "transformer"], 1, [
        "--encoder transformer (it has linear)"], None),
    (["train", "--data", "coco"], 2, ["argument --data: invalid choice: 'coco'"], None),
    (["train", "--hard-negatives"], 1, ["--hard-negatives: hard_negatives needs data='scenes'"],
     None),
    (["train", "--hard-negatives", "--data", "scenes", "--loss", "siglip"], 1,
     ["--loss siglip, --data scenes, --hard-negatives:", "hard_negatives needs",
      "loss='siglip'"], None),
    (["train", "--hard-negatives=1"], 2, ["--hard-negatives", "ignored explicit argument"],
     None),
    (["train", "--temperature", "0"], 2, ["argument --temperature: expected a positive number"],
     None),
    (["train", "--temperature", "cold"], 2, ["argument --temperature", "'cold'"], None),
    (["train", "--temperature", "0.001"], 1, ["temperature must be at least 0.01"], None),
    (["train", "--resume", "{ckpt}", "--data", "scenes"], 1, [
        "--data scenes (it has shapes)"], None),
    (["train", "--resume", "{ckpt}", "--temperature", "0.5"], 1, [
        "--temperature 0.5 (it has None)"], None),
    # probe: every argument and flag
    (["probe"], 2, ["the following arguments are required: CKPT"], None),
    (["probe", "{ckpt}", "--suite", "colour"], 2, ["argument --suite: invalid choice: 'colour'"],
     None),
    (["probe", "{ckpt}", "--suite"], 2, ["argument --suite: expected at least one argument"],
     None),
    (["probe", "{ckpt}", "--suite", "order", "order"], 1, ["--suite names a probe twice"], None),
    (["probe", "{ckpt}", "--n", "0"], 2, ["argument --n: expected a positive integer"], None),
    (["probe", "{ckpt}", "--seed", "-2"], 2, ["argument --seed: expected a non-negative"], None),
    (["probe", "{dir}/missing.npz"], 1, ["missing.npz does not exist"], None),
    (["probe", "{readme}"], 1, ["README.md is not a numclip checkpoint"], None),
    (["probe", "{corrupt}"], 1, ["truncated or corrupt"], None),
    (["probe", "{ckpt}", "--json=1"], 2, ["--json", "ignored explicit argument"], None),
    # classify: every argument and flag
    (["classify"], 2, ["the following arguments are required: CKPT, IMAGE, --config, "
                       "--labels"], None),
    (["classify", "{clip}", "{img}", "--labels", "cat"], 2, ["required: --config"], None),
    (["classify", "{clip}", "{img}", "--config", "{clipcfg}"], 2, ["required: --labels"], None),
    (["classify", "{clip}", "--config", "{clipcfg}", "--labels", "a"], 2,
     ["required: IMAGE"], None),
    (["classify", "{clip}", "{img}", "--config", "ViT-X", "--labels", "a"], 1,
     ["config 'ViT-X' is not one numclip ships", "ViT-B-32"], None),
    (["classify", "{clip}", "{img}", "--config", "ViT-B-32", "--labels", "a"], 1,
     ["tiny.npz does not match the config", "'visual.class_embedding' has shape (16,)"],
     None),
    (["classify", "{clip}", "{img}", "--config", "{dir}/none.json", "--labels", "a"], 1,
     ["--config", "none.json cannot be read"], None),
    (["classify", "{clip}", "{img}", "--config", "{readme}.json", "--labels", "a"], 1,
     ["--config", "cannot be read"], None),
    (["classify", "{readme}", "{img}", "--config", "{clipcfg}", "--labels", "a"], 1,
     ["README.md: numclip reads .safetensors or .npz checkpoints", "pickle"], None),
    (["classify", "{dir}/none.npz", "{img}", "--config", "{clipcfg}", "--labels", "a"], 1,
     ["no checkpoint at", "none.npz"], None),
    (["classify", "{corrupt}", "{img}", "--config", "{clipcfg}", "--labels", "a"], 1,
     ["corrupt.npz is not a readable .npz checkpoint"], None),
    (["classify", "{ckpt}", "{img}", "--config", "{clipcfg}", "--labels", "a"], 1,
     ["run.npz does not match the config: it has no 'visual.class_embedding'"], None),
    (["classify", "{clip}", "{dir}/none.png", "--config", "{clipcfg}", "--labels", "a"], 1,
     ["no image at", "none.png"], None),
    (["classify", "{clip}", "{readme}", "--config", "{clipcfg}", "--labels", "a"], 1,
     ["README.md is not an image Pillow can read"], None),
    (["classify", "{clip}", "{img}", "--config", "{clipcfg}", "--labels", "a", "a",
      "--merges", "{merges}"], 1, ["labels must be different from each other", "'a' repeats"],
     None),
    (["classify", "{clip}", "{img}", "--config", "{clipcfg}", "--labels", "a",
      "--template", "no slot"], 1, ["template 'no slot'"], None),
    (["classify", "{clip}", "{img}", "--config", "{clipcfg}", "--labels", "a",
      "--merges", "{readme}"], 1, ["README.md"], None),
    (["classify", "{clip}", "{img}", "--config", "{clipcfg}", "--labels", "a",
      "--merges", "{dir}/none.gz"], 1, ["none.gz"], None),
    (["classify", "{clip}", "{img}", "--config", "{clipcfg}", "--labels"], 2,
     ["argument --labels: expected at least one argument"], None),
    (["classify", "{clip}", "{img}", "--config", "{clipcfg}", "--labels", "a", "--json=1"], 2,
     ["--json", "ignored explicit argument"], None),
    # zeroshot
    (["zeroshot"], 2, ["the following arguments are required: CKPT"], None),
    (["zeroshot", "{ckpt}", "--bogus"], 2, ["unrecognized arguments: --bogus"], None),
    (["zeroshot", "{ckpt}", "--template"], 2, ["--template: expected one argument"], None),
    (["zeroshot", "{dir}/missing.npz"], 1, ["missing.npz does not exist"], None),
    (["zeroshot", "{dir}"], 1, ["is a directory, not a file"], None),
    (["zeroshot", "{readme}"], 1, ["README.md is not a numclip checkpoint"], None),
    (["zeroshot", "{corrupt}"], 1, ["truncated or corrupt"], None),
    (["zeroshot", "{nan}"], 1, ["param.image_proj must hold finite numbers"], None),
    (["zeroshot", "{int}"], 1, ["param.image_proj has dtype int64, expected float32"], None),
    (["zeroshot", "{ckpt}", "--template", "{} {x}"], 1, ["template '{} {x}'"], None),
    (["zeroshot", "{ckpt}", "--template", "{}{!r}"], 1, ["template '{}{!r}'"], None),
    (["zeroshot", "{ckpt}", "--template", "{} {"], 1, ["template '{} {'"], None),
    (["zeroshot", "{ckpt}", "--template", "no placeholder"], 1,
     ["template 'no placeholder'", "exactly one '{}'"], None),
    (["zeroshot", "{dir}/missing.npz", "--template", "no slot"], 1, ["template 'no slot'"],
     None),
    (["zeroshot", "{ckpt}", "--template", "a  {}", "--template", "   "], 1, ["template '   '"],
     None),
]


@pytest.mark.parametrize("argv, code, words, setup", MISTAKES,
                         ids=[" ".join(row[0]) or "(nothing)" for row in MISTAKES])
def test_every_mistake_is_one_error_line(argv, code, words, setup, places, capsys, monkeypatch):
    if setup is not None:
        setup(monkeypatch)
    argv = [a.format(**places) if any(f"{{{k}}}" in a for k in places) else a for a in argv]
    got, out, err = run_cli(argv, capsys)
    assert got == code, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("numclip: error: "), err
    assert all(w in lines[0] for w in words), lines[0]
    assert "Traceback" not in err and "allow_pickle" not in err and out == ""


def cli(*args):
    return subprocess.run([sys.executable, "-m", "numclip", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, code, message", [
    (["train", "--embed-dim", "1000000000"], 1, "embed_dim must be at most 1,024"),
    (["train", "--seed", "-1"], 2, "argument --seed: expected a non-negative integer"),
    (["zeroshot", "README.md"], 1, "README.md is not a numclip checkpoint"),
    (["zeroshot", "x.npz", "--template", "{} {x}"], 1, "template '{} {x}'"),
])
def test_a_real_terminal_sees_one_line_and_no_traceback(args, code, message):
    result = cli(*args)
    assert result.returncode == code
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("numclip: error: ") and message in result.stderr
