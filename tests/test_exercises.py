"""The assignment notebook works as handed out, and with the blanks filled in.

``notebooks/exercises/clip_assignment.ipynb`` has one blank per function (a code
cell tagged ``exercise`` whose body raises ``NotImplementedError``), each
followed by a cell tagged ``check`` that calls a checker from
:mod:`numclip.checks` and ends with its True/False verdict.  Executed as
handed out, the notebook runs to the end and every check says "not implemented
yet"; with the reference solutions below in the blanks, every check passes.

The structural tests read the notebook as JSON and need nothing else; the two
executions need nbclient, nbformat and an installed ``python3`` Jupyter kernel
(ipykernel) and skip without them, unless ``NUMCLIP_REQUIRE_NOTEBOOKS=1`` asks
CI to fail instead.
"""

import ast
import importlib
import json
import os
import re
from pathlib import Path

import pytest

from numclip import checks

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "exercises" / "clip_assignment.ipynb"

# Reference solutions, the way a student would write them: NumPy only, one per blank.
SOLUTIONS = {
    "ex-l2-normalize": '''
def l2_normalize(x):
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))  # (N, 1)
    return x / np.maximum(norm, 1e-12)
''',
    "ex-l2-normalize-backward": '''
def l2_normalize_backward(dy, x):
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))  # (N, 1)
    y = x / norm
    return (dy - y * np.sum(y * dy, axis=-1, keepdims=True)) / norm
''',
    "ex-softmax": '''
def softmax(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))  # every exponent <= 0
    return e / np.sum(e, axis=-1, keepdims=True)
''',
    "ex-log-softmax": '''
def log_softmax(z):
    m = np.max(z, axis=-1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))
''',
    "ex-logit-matrix": '''
def logit_matrix(image_embeds, text_embeds, temperature):
    return image_embeds @ text_embeds.T / temperature  # (N, M)
''',
    "ex-clip-loss": '''
def clip_loss(image_embeds, text_embeds, temperature):
    s = logit_matrix(image_embeds, text_embeds, temperature)  # (N, N)
    loss_image = -np.mean(np.diagonal(log_softmax(s)))  # images -> texts
    loss_text = -np.mean(np.diagonal(log_softmax(s.T)))  # texts -> images
    return (loss_image + loss_text) / 2
''',
    "ex-clip-loss-grads": '''
def clip_loss_grads(image_embeds, text_embeds, temperature):
    s = logit_matrix(image_embeds, text_embeds, temperature)  # (N, N)
    n = s.shape[0]
    eye = np.eye(n, dtype=s.dtype)
    g = ((softmax(s) - eye) + (softmax(s.T) - eye).T) / (2 * n)  # dL/dS
    return g @ text_embeds / temperature, g.T @ image_embeds / temperature
''',
}


def _load():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def _source(cell):
    return "".join(cell["source"])


def _tagged(nb, tag):
    return [c for c in nb["cells"] if tag in c.get("metadata", {}).get("tags", [])]


# ---------------------------------------------------------------------------
# Structure: readable without Jupyter
# ---------------------------------------------------------------------------

def test_committed_without_outputs():
    nb = _load()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["id"]


def test_every_blank_raises_and_is_followed_by_its_checker():
    nb = _load()
    cells = nb["cells"]
    blanks = _tagged(nb, "exercise")
    assert [c["id"] for c in blanks] == list(SOLUTIONS)
    for blank in blanks:
        tree = ast.parse(_source(blank))
        (fn,) = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        assert isinstance(fn.body[-1], ast.Raise), blank["id"]
        assert "NotImplementedError" in ast.unparse(fn.body[-1]), blank["id"]
        following = cells[cells.index(blank) + 1]
        assert "check" in following["metadata"].get("tags", []), blank["id"]
        assert _source(following) == f"check_{fn.name}({fn.name})"
        assert fn.name in checks.CHECKERS
    assert {c["id"] for c in _tagged(nb, "check")} == (
        {"check-" + b["id"].removeprefix("ex-") for b in blanks} | {"check-all"})


def test_imports_only_numpy_and_the_checkers():
    nb = _load()
    imported = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse(_source(cell))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module)
    assert imported == {"numpy", "numclip.checks"}


def test_links_to_the_derivations_exist():
    nb = _load()
    text = "".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    links = re.findall(r"\]\((\.\./\.\./docs/[^)#]+)(?:#([^)]+))?\)", text)
    assert links, "the notebook should link to docs/derivations.md"
    for path, anchor in links:
        target = (NOTEBOOK.parent / path).resolve()
        assert target.is_file(), path
        if anchor:  # MkDocs' slug of a heading: lower case, spaces to hyphens
            slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                     for h in re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"),
                                         flags=re.MULTILINE)}
            assert anchor in slugs, f"{path}#{anchor}"


# ---------------------------------------------------------------------------
# Execution: as handed out, and with the solutions filled in
# ---------------------------------------------------------------------------

def _require(module):
    """Import ``module``, or skip; under NUMCLIP_REQUIRE_NOTEBOOKS=1 a missing one fails."""
    if os.environ.get("NUMCLIP_REQUIRE_NOTEBOOKS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{module} is not installed "
                               "(pip install '.[notebooks]' runs the assignment notebook)")


def _execute(nb_json):
    nbformat = _require("nbformat")
    nbclient = _require("nbclient")
    kernelspec = _require("jupyter_client.kernelspec")
    try:
        kernelspec.KernelSpecManager().get_kernel_spec("python3")
    except kernelspec.NoSuchKernel:
        if os.environ.get("NUMCLIP_REQUIRE_NOTEBOOKS") == "1":
            raise
        pytest.skip("no 'python3' Jupyter kernel installed (pip install ipykernel)")
    nb = nbformat.reads(json.dumps(nb_json), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    return nb


def _verdicts(nb):
    """check cell id -> (printed text, the cell's value as text)."""
    out = {}
    for cell in _tagged(nb, "check"):
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        values = [o.data["text/plain"] for o in cell.outputs if o.output_type == "execute_result"]
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, (cell.id, errors)
        out[cell.id] = (printed, values[0] if values else None)
    return out


def test_runs_as_handed_out_and_reports_not_implemented():
    verdicts = _verdicts(_execute(_load()))
    for cell_id, (printed, value) in verdicts.items():
        assert value == "False", (cell_id, printed)
        if cell_id != "check-all":
            assert printed.startswith("✗ check_") and "not implemented yet" in printed, printed
    assert verdicts["check-all"][0].count("not implemented yet") == len(checks.CHECKERS)


def test_passes_with_the_solutions_filled_in():
    nb = _load()
    for cell in _tagged(nb, "exercise"):
        cell["source"] = SOLUTIONS[cell["id"]].strip("\n")
    verdicts = _verdicts(_execute(nb))
    for cell_id, (printed, value) in verdicts.items():
        assert value == "True", (cell_id, printed)
        assert "✗" not in printed and printed.startswith("✓ check_"), (cell_id, printed)
    assert verdicts["check-all"][0].count("✓") == len(checks.CHECKERS)
