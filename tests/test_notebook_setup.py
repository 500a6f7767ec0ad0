"""The first code cell of every notebook: it installs numclip where a kernel lacks it.

In the course's venv numclip is installed and the cell does nothing; in a fresh Colab or
Binder kernel it installs numclip (no extras: those kernels have Jupyter) from the checkout it finds
around it, or from ``NUMCLIP_GIT``, and otherwise stops with a message that says what to
do.  The cell is the same in every notebook (the assignment's is the reference).
"""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [*sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")),
             ROOT / "notebooks" / "exercises" / "clip_assignment.ipynb"]


def first_code_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


SETUP = first_code_cell(NOTEBOOKS[-1])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_starts_with_the_same_setup_cell(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    setup = next(c for c in cells if c["cell_type"] == "code")
    assert setup["metadata"].get("tags") == ["setup"]  # test_exercises lets it import os
    assert first_code_cell(path) == SETUP
    assert SETUP.startswith("# Colab or Binder: install numclip")


def run_setup(monkeypatch, cwd: Path, installed: bool):
    """Run the cell in ``cwd`` as if numclip were (not) importable; return pip's arguments."""
    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        real_find_spec(name, *a) if installed or name != "numclip" else None))
    monkeypatch.setattr(subprocess, "run", lambda args, check: calls.append(args))
    monkeypatch.chdir(cwd)
    exec(compile(SETUP, "setup cell", "exec"), {})
    return calls


def checkout(folder: Path, name: str = "numclip") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    return folder


def test_with_numclip_installed_the_cell_does_nothing(monkeypatch, tmp_path):
    checkout(tmp_path)
    assert run_setup(monkeypatch, tmp_path, installed=True) == []


@pytest.mark.parametrize("where", ["binder", "colab"])
def test_it_installs_the_checkout_around_it(monkeypatch, tmp_path, where):
    """Binder starts the kernel in the repository's notebooks/ folder; in Colab a clone
    lands in /content/numclip beside the kernel's folder."""
    if where == "binder":
        repo, cwd = checkout(tmp_path / "repo"), tmp_path / "repo" / "notebooks"
        cwd.mkdir()
    else:
        repo, cwd = checkout(tmp_path / "numclip"), tmp_path
    (calls,) = run_setup(monkeypatch, cwd, installed=False)
    assert calls[1:] == ["-m", "pip", "install", "--quiet", str(repo)]


def test_another_projects_pyproject_is_not_taken_for_numclip(monkeypatch, tmp_path):
    checkout(tmp_path, name="someone-else")
    monkeypatch.delenv("NUMCLIP_GIT", raising=False)
    with pytest.raises(ImportError, match=r"numclip is not installed .* !git clone"):
        run_setup(monkeypatch, tmp_path, installed=False)


def test_without_a_checkout_it_installs_from_numclip_git_or_says_what_to_do(monkeypatch,
                                                                             tmp_path):
    monkeypatch.delenv("NUMCLIP_GIT", raising=False)
    with pytest.raises(ImportError, match="NUMCLIP_GIT"):
        run_setup(monkeypatch, tmp_path, installed=False)
    monkeypatch.setenv("NUMCLIP_GIT", "git+https://example.org/numclip")
    (calls,) = run_setup(monkeypatch, tmp_path, installed=False)
    assert calls[-1] == "git+https://example.org/numclip"
