"""The numclip command as a user meets it: metrics, checkpoints, figures and one-line errors."""

import json
import subprocess
import sys

import pytest

from numclip.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    ckpt = folder / "run.npz"
    code = main(["train", "--epochs", "2", "--embed-dim", "16", "--quiet", "--json",
                 "--out", str(ckpt), "--plots", str(folder / "plots")])
    return code, ckpt, folder


def test_train_reports_metrics_as_json_on_the_last_line(trained, capsys):
    code, ckpt, folder = trained
    assert code == 0 and ckpt.is_file()
    for name in ("history", "similarity", "embeddings", "confusion"):
        assert (folder / "plots" / f"{name}.png").stat().st_size > 10_000


def test_resume_and_zeroshot(trained, capsys):
    _, ckpt, _ = trained
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--epochs", "3", "--quiet", "--json",
                 "--out", str(ckpt)]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["epochs"] == 3
    for key in ("zero_shot_seen", "zero_shot_heldout", "linear_probe", "chance", "seconds"):
        assert isinstance(metrics[key], float)
    assert metrics["chance"] == 1 / 40
    assert main(["zeroshot", str(ckpt), "--template", "a photo of a {}.",
                 "--template", "there is one {}.", "--json"]) == 0
    zs = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert zs["epochs"] == 3 and 0 <= zs["zero_shot_heldout"] <= 1


def test_unknown_words_in_a_template_are_reported(trained, capsys):
    _, ckpt, _ = trained
    capsys.readouterr()
    with pytest.warns(UserWarning, match="zebra"):
        assert main(["zeroshot", str(ckpt), "--template", "a zebra {}"]) == 0


def cli(*args):
    return subprocess.run([sys.executable, "-m", "numclip", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, code, message", [
    (["train", "--epochs", "0"], 2, "expected a positive integer"),
    (["train", "--lr", "-1"], 2, "expected a positive number"),
    (["train", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["train", "--loss", "hinge"], 2, "invalid choice: 'hinge'"),
    (["zeroshot", "missing.npz"], 1, "checkpoint missing.npz does not exist"),
    (["train", "--resume", "missing.npz"], 1, "checkpoint missing.npz does not exist"),
    (["train", "--epochs", "1", "--batch-size", "20000", "--quiet"], 1, "must not exceed"),
    (["zeroshot", "x.npz", "--template", "no slot"], 1, "does not exist"),
])
def test_errors_are_one_line_without_traceback(args, code, message):
    result = cli(*args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_template_is_one_line(trained):
    _, ckpt, _ = trained
    result = cli("zeroshot", str(ckpt), "--template", "no slot")
    assert result.returncode == 1 and "exactly one '{}'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
