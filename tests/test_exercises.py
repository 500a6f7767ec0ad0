"""The assignment notebook works as handed out, and with the blanks filled in.

``notebooks/exercises/clip_assignment.ipynb`` has one blank per function (a code
cell tagged ``exercise`` whose body raises ``NotImplementedError``), each
followed by a cell tagged ``check`` that calls a checker from
:mod:`numclip.checks` and ends with its True/False verdict.  Executed as
handed out, the notebook runs to the end and every check says "not implemented
yet"; with the solutions of :mod:`numclip.grading.solutions` in the blanks, every
check passes.

The structural tests read the notebook as JSON and need nothing else; the two
executions need nbclient, nbformat and an installed ``python3`` Jupyter kernel
(ipykernel) and skip without them, unless ``NUMCLIP_REQUIRE_NOTEBOOKS=1`` asks
CI to fail instead.
"""

import ast
import importlib
import inspect
import json
import os
import re
from pathlib import Path

import pytest

from numclip import checks
from numclip.grading import solutions

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "exercises" / "clip_assignment.ipynb"

# Each blank's solution: the functions of numclip.grading.solutions that fill it, the one
# source the checkers' tests and notebook 05 share (the last one is the blank's own).
SOLUTIONS = {
    "ex-l2-normalize": [solutions.l2_normalize],
    "ex-l2-normalize-backward": [solutions.l2_normalize_backward],
    "ex-softmax": [solutions.softmax],
    "ex-log-softmax": [solutions.log_softmax],
    "ex-logit-matrix": [solutions.logit_matrix],
    "ex-clip-loss": [solutions.clip_loss],
    "ex-clip-loss-grads": [solutions.clip_logits_grad, solutions.clip_loss_grads],
}


def solution_source(blank_id):
    """The code that fills a blank: its solution functions' source, as a student types it."""
    return "\n\n".join(inspect.getsource(fn) for fn in SOLUTIONS[blank_id])


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


def test_each_solution_defines_the_function_its_blank_asks_for():
    nb = _load()
    for blank in _tagged(nb, "exercise"):
        (asked,) = [n.name for n in ast.parse(_source(blank)).body
                    if isinstance(n, ast.FunctionDef)]
        defined = [n.name for n in ast.parse(solution_source(blank["id"])).body]
        assert defined[-1] == asked, (blank["id"], defined)


def test_notebook_05_takes_the_gradient_of_the_logits_from_the_solutions():
    """G = (P_row + P_col - 2I) / 2N is written once for students, in
    numclip.grading.solutions.clip_logits_grad; notebook 05 calls it (with its bugs
    injected into P_row and P_col) instead of writing G again."""
    nb = json.loads((NOTEBOOK.parents[1] / "05_deriving_the_gradients.ipynb").read_text(
        encoding="utf-8"))
    code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert "from numclip.grading.solutions import clip_logits_grad" in code
    assert code.count("clip_logits_grad(") >= 2  # the by-hand loss and the bug switch
    assert "np.eye" not in code, "notebook 05 writes G's identity term by hand again"


def test_imports_only_numpy_and_the_checkers():
    """Besides the setup cell every notebook starts with, which installs numclip where a
    kernel lacks it (tests/test_notebook_setup.py)."""
    nb = _load()
    imported = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "setup" in cell["metadata"].get("tags", []):
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
        cell["source"] = solution_source(cell["id"])
    verdicts = _verdicts(_execute(nb))
    for cell_id, (printed, value) in verdicts.items():
        assert value == "True", (cell_id, printed)
        assert "✗" not in printed and printed.startswith("✓ check_"), (cell_id, printed)
    assert verdicts["check-all"][0].count("✓") == len(checks.CHECKERS)
