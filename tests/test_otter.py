"""The assignment in Otter-Grader's format, and the autograder rules behind its tests.

``notebooks/exercises/otter/clip_assignment.ipynb`` is an Otter-Grader master
notebook (format v1: raw ``# BEGIN QUESTION`` / ``# BEGIN SOLUTION`` /
``# BEGIN TESTS`` cells).  Each question has a public test (the worked example) and
a hidden one (every case of the checker), both a call of
:func:`numclip.grading.autograde.grade`.

Three groups of tests:

- the master notebook read as JSON: its questions, points and tests, and solutions
  that are those of :mod:`numclip.grading.solutions` (one source);
- :mod:`numclip.grading.autograde` on its own: solutions pass, forbidden modules are
  caught however they are reached, each question is graded on its own, bad input;
- ``otter assign`` and Otter's grading of the notebooks it makes: the solution scores
  full marks, the student version zero, and typical wrong answers lose exactly the
  points of their question.  These need otter-grader and a Jupyter kernel; they skip
  without them, unless ``NUMCLIP_REQUIRE_OTTER=1`` asks CI to fail instead.  CI runs
  ``otter assign`` itself and passes its output folder in ``NUMCLIP_OTTER_DIST``.
"""

import ast
import functools
import importlib
import importlib.util
import inspect
import json
import math
import os
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from numclip import checks
from numclip.grading import autograde, solutions
from numclip.grading.harness import Rules

# otter 7.0.0's own: DataFrame.drop(inplace=True), which pandas 3.1 deprecates, and trait
# types passed where traitlets wants instances
pytestmark = [pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.drop"),
              pytest.mark.filterwarnings("ignore:Traits should be given as instances")]

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks" / "exercises" / "otter"
MASTER = FOLDER / "clip_assignment.ipynb"

# question -> (the function it asks for, points of its public and hidden test)
QUESTIONS = {
    "q1": ("l2_normalize", [1, 1]),
    "q2": ("l2_normalize_backward", [1, 2]),
    "q3": ("softmax", [1, 1]),
    "q4": ("log_softmax", [1, 1]),
    "q5": ("logit_matrix", [1, 1]),
    "q6": ("clip_loss", [1, 2]),
    "q7": ("clip_loss_grads", [2, 2]),
}
TOTAL = sum(sum(points) for _, points in QUESTIONS.values())


def _load():
    return json.loads(MASTER.read_text(encoding="utf-8"))


def _source(cell):
    return "".join(cell["source"])


def _student(*functions, extra=""):
    """Functions as a student's notebook defines them: their source, run outside numclip
    (the solutions, imported from numclip, would count as calling numclip)."""
    source = "\n\n".join(textwrap.dedent(inspect.getsource(f)) for f in functions) + extra
    scope = {"np": np}
    exec(compile(source, "<student cell>", "exec"), scope)
    return scope


SOLVED = _student(*(getattr(solutions, name) for name in checks.CHECKERS),
                  solutions.clip_logits_grad)


# ---------------------------------------------------------------------------
# The master notebook, read as JSON
# ---------------------------------------------------------------------------

def _config(text):
    """A question's config: YAML ``key: value`` lines, the values JSON (``[1, 2]``) or words."""
    config = {}
    for line in text.splitlines()[1:]:
        key, _, value = line.partition(":")
        try:
            config[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            config[key.strip()] = value.strip()
    return config


def _questions(nb):
    """question name -> {config, solution cell, test cells}, from the raw boundary cells."""
    found, current, block = {}, None, None
    for cell in nb["cells"]:
        text = _source(cell)
        if cell["cell_type"] == "raw":
            first = text.splitlines()[0].strip()
            if first == "# BEGIN QUESTION":
                config = _config(text)
                current = found.setdefault(config["name"], {"config": config, "solution": [],
                                                             "tests": []})
            elif first in ("# BEGIN SOLUTION", "# BEGIN TESTS"):
                block = first.split()[-1].lower()
            elif first in ("# END SOLUTION", "# END TESTS"):
                block = None
            elif first == "# END QUESTION":
                current = None
        elif cell["cell_type"] == "code" and current is not None and block:
            current["solution" if block == "solution" else "tests"].append(text)
    return found


def test_master_is_committed_without_outputs():
    for cell in _load()["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["id"]


def test_master_asks_for_the_checkers_functions_with_points_public_and_hidden_tests():
    nb = _load()
    assert _source(nb["cells"][0]).startswith("# ASSIGNMENT CONFIG")
    questions = _questions(nb)
    assert list(questions) == list(QUESTIONS)
    assert [name for name, _ in QUESTIONS.values()] == list(checks.CHECKERS)
    for q, (name, points) in QUESTIONS.items():
        question = questions[q]
        assert question["config"] == {"name": q, "points": points}
        (solution,) = question["solution"]
        defined = [n.name for n in ast.parse(solution).body if isinstance(n, ast.FunctionDef)]
        assert defined[-1] == name, (q, defined)
        public, hidden = question["tests"]
        assert not public.startswith("#") and hidden.startswith("# HIDDEN\n"), q
        assert f'grade("{name}", {name}, public=True)' in public, q
        assert f'grade("{name}", {name})' in hidden, q
        for test in (public, hidden):  # otter's exception-based format: a def and its call
            tree = ast.parse(test)
            assert [type(n) for n in tree.body] == [ast.FunctionDef, ast.Expr], q
            assert [a.arg for a in tree.body[0].args.args] == [name], q


def _body(source: str, name: str) -> str:
    """The statements of function ``name`` after its docstring, as an AST dump."""
    (fn,) = [n for n in ast.parse(textwrap.dedent(source)).body
             if isinstance(n, ast.FunctionDef) and n.name == name]
    body = fn.body[1:] if isinstance(fn.body[0], ast.Expr) and isinstance(
        fn.body[0].value, ast.Constant) else fn.body
    return "\n".join(ast.dump(stmt) for stmt in body)


def test_master_solutions_are_numclip_grading_solutions():
    """One source for the answers: the master's solution cells say what
    numclip.grading.solutions says (the tests, notebook 05 and the hints use those)."""
    questions = _questions(_load())
    for q in QUESTIONS:
        (cell,) = questions[q]["solution"]
        defined = [n.name for n in ast.parse(cell).body if isinstance(n, ast.FunctionDef)]
        for fn in defined:
            assert _body(cell, fn) == _body(inspect.getsource(getattr(solutions, fn)), fn), (q, fn)


def test_master_solution_cells_leave_only_the_blank_to_students():
    """What otter assign keeps of a solution cell: the def line and the docstring (a
    helper of the solution, clip_logits_grad, goes entirely: its block has NO PROMPT)."""
    for q, question in _questions(_load()).items():
        (cell,) = question["solution"]
        assert cell.count("    # BEGIN SOLUTION\n") == 1 and cell.count("    # END SOLUTION") == 1
        kept = re.sub(r"# BEGIN SOLUTION NO PROMPT\n.*?# END SOLUTION\n", "", cell, flags=re.S)
        kept = re.sub(r"    # BEGIN SOLUTION\n.*?    # END SOLUTION", "    ...", kept, flags=re.S)
        tree = ast.parse(kept)
        (fn,) = tree.body
        assert fn.name == QUESTIONS[q][0] and len(fn.body) == 2, q  # docstring and `...`


def test_master_says_what_it_forbids_and_what_each_question_is_worth():
    intro = _source(_load()["cells"][1])
    for module in autograde.FORBIDDEN:
        assert f"`{module}" in intro, module
    assert f"**Points.** {TOTAL} in all" in intro
    worth = re.findall(r"(\d)\s[\w\s]+?\s\((\d)\)", intro.split("**Points.**")[1])
    assert [(int(i), int(p)) for i, p in worth] == [
        (i + 1, sum(points)) for i, (_, points) in enumerate(QUESTIONS.values())]


def test_master_links_to_the_derivations():
    text = "".join(_source(c) for c in _load()["cells"] if c["cell_type"] == "markdown")
    links = re.findall(r"\]\((\.\./[^)#]+)(?:#[^)]+)?\)", text)
    assert links
    for path in links:
        assert (MASTER.parent / path).resolve().is_file(), path


def test_requirements_are_numclips_dependencies():
    """The grading image installs requirements.txt: it must hold what numclip needs."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11's tomllib reads pyproject.toml")
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    deps = [d.split("#")[0].strip() for d in wanted["project"]["dependencies"]]
    lines = [line.strip() for line in (FOLDER / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == deps


# ---------------------------------------------------------------------------
# numclip.grading.autograde on its own
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(checks.CHECKERS))
def test_solutions_pass_public_and_hidden(name):
    autograde.grade(name, SOLVED[name], public=True)
    autograde.grade(name, SOLVED[name])


def _fails(name, fn, *words, public=False):
    with pytest.raises(AssertionError) as caught:
        autograde.grade(name, fn, public=public)
    message = str(caught.value)
    assert message.startswith(f"✗ check_{name}: "), message
    for word in words:
        assert word in message, message
    return message


# (question, student source defining it, what the verdict must name): the library's
# answer reached every way a student might
FORBIDDEN_CALLS = [
    ("clip_loss", "import numclip\n"
                  "def clip_loss(image_embeds, text_embeds, temperature):\n"
                  "    return numclip.clip_loss(image_embeds, text_embeds, -np.log(temperature),\n"
                  "                             normalize=False)[0]\n",
     "calls numclip.losses.clip_loss"),
    ("clip_loss", "from numclip.losses import clip_loss as the_answer\n"
                  "def clip_loss(image_embeds, text_embeds, temperature):\n"
                  "    return the_answer(image_embeds, text_embeds, -np.log(temperature),\n"
                  "                      normalize=False)[0]\n",
     "calls numclip.losses.clip_loss"),
    ("clip_loss_grads", "from numclip.grading.solutions import clip_loss_grads\n",
     "calls numclip.grading.solutions.clip_loss_grads"),
    ("softmax", "def softmax(z):\n"
                "    import importlib\n"
                "    return importlib.import_module('numclip.softmax').softmax(z)\n",
     "calls numclip.softmax.softmax"),
    ("softmax", "import numclip\n"
                "def helper(z):\n"
                "    return numclip.softmax(z)\n"
                "def softmax(z):\n"
                "    return helper(z)\n",
     "calls numclip.softmax.softmax"),
    ("log_softmax", "import scipy.special\n"
                    "def log_softmax(z):\n"
                    "    return scipy.special.log_softmax(z, axis=-1)\n",
     "calls scipy.special.log_softmax"),
    ("l2_normalize", "from numclip import checks\n"
                     "def l2_normalize(x):\n"
                     "    return checks.reference.l2_normalize(x).astype(x.dtype)\n",
     "calls numclip."),
]


@pytest.mark.parametrize("name, source, words", FORBIDDEN_CALLS,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(FORBIDDEN_CALLS)])
def test_forbidden_modules_are_caught_however_they_are_reached(name, source, words):
    scope = {"np": np}
    exec(compile(source, "<student cell>", "exec"), scope)
    fn = scope[name]
    message = _fails(name, fn, words, "which this assignment forbids", public=True)
    assert message.count("\n") == 0, message  # one line: no traceback
    assert checks.CHECKERS[name](fn, quiet=True) is True  # right: only the rules fail it
    assert sys.getprofile() is None  # the watch is gone afterwards


def test_torch_is_forbidden():
    pytest.importorskip("torch", reason="torch is an optional oracle")
    scope = _student(extra="\nimport torch\n"
                           "def softmax(z):\n"
                           "    return torch.softmax(torch.from_numpy(z), -1).numpy()\n")
    _fails("softmax", scope["softmax"], "calls torch.", public=True)


def test_given_functions_may_call_numclip():
    """The right answers the rules give are numclip's own: calls inside them are fine."""
    scope = _student(solutions.clip_loss)  # calls logit_matrix and log_softmax, not defined
    autograde.grade("clip_loss", scope["clip_loss"])


def test_each_question_is_graded_on_its_own():
    """clip_loss built on a logit_matrix that forgets τ: wrong as a whole, but the
    clip_loss question sees the right logit_matrix, and the student's stays theirs."""
    scope = _student(solutions.clip_loss, solutions.log_softmax, extra="\n"
                     "def logit_matrix(image_embeds, text_embeds, temperature):\n"
                     "    return image_embeds @ text_embeds.T\n")
    assert checks.check_clip_loss(scope["clip_loss"], quiet=True) is False
    autograde.grade("clip_loss", scope["clip_loss"])
    _fails("logit_matrix", scope["logit_matrix"], "divide by the temperature τ")
    assert scope["logit_matrix"].__code__.co_filename == "<student cell>"


def test_public_runs_the_worked_example_only():
    scope = _student(extra="def softmax(z):\n"
                           "    e = np.exp(z)\n"
                           "    return e / np.sum(e, axis=-1, keepdims=True)\n")
    autograde.grade("softmax", scope["softmax"], public=True)
    _fails("softmax", scope["softmax"], "failed on 'large logits (±1000s)'", "hint:")


def test_students_prints_are_left_out_of_the_verdict():
    scope = _student(extra="def softmax(z):\n"
                           "    print('debugging', z.shape)\n"
                           "    return z\n")
    message = _fails("softmax", scope["softmax"], "failed on 'worked example")
    assert "debugging" not in message


def test_blanks_and_missing_functions():
    scope = _student(extra="def softmax(z):\n    ...\n"
                           "def log_softmax(z):\n    raise NotImplementedError()\n")
    _fails("softmax", scope["softmax"], "not implemented yet")
    _fails("log_softmax", scope["log_softmax"], "not implemented yet")
    _fails("clip_loss", None, "no function called clip_loss yet")


def test_a_crash_keeps_the_profile_hook_of_the_caller():
    def hook(frame, event, arg):
        return None

    scope = _student(extra="def softmax(z):\n    return z / undefined_name\n")
    sys.setprofile(hook)
    try:
        with pytest.raises(AssertionError, match="NameError"):
            autograde.grade("softmax", scope["softmax"])
        assert sys.getprofile() is hook
    finally:
        sys.setprofile(None)


# (function, args, kwargs, error, words): bad calls of the autograder's API, and of the
# Rules it builds
BAD_INPUT = [
    (autograde.grade, ("softmx", SOLVED["softmax"]), {}, ValueError,
     "name must be one of the assignment's functions"),
    (autograde.grade, (3, SOLVED["softmax"]), {}, ValueError, "name must be one of"),
    (autograde.grade, ("softmax", SOLVED["softmax"]), {"public": "yes"}, TypeError,
     "public must be True or False"),
    (autograde.rules, ("clip",), {}, ValueError, "name must be one of"),
    (autograde.rules, ("clip_loss",), {"public": 1}, TypeError, "public must be True or False"),
    (Rules, (), {"forbid": "numclip"}, TypeError, "forbid must be a tuple of module names"),
    (Rules, (), {"forbid": (np,)}, TypeError, "forbid must be a tuple of module names"),
    (Rules, (), {"given": {"softmax": 3}}, TypeError, "given must be a dict of name -> function"),
    (Rules, (), {"public": None}, TypeError, "public must be True or False"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD_INPUT,
                         ids=[f"{row[0].__name__}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_raises_clear_errors(fn, args, kwargs, error, words):
    with pytest.raises(error, match=words):
        fn(*args, **kwargs)


def test_every_public_function_has_bad_input_rows():
    covered = {row[0].__name__ for row in BAD_INPUT}
    public = {name for name in autograde.__all__ if callable(getattr(autograde, name))}
    assert public - covered == set()


def test_rules_forbid_and_give_the_other_functions():
    rules = autograde.rules("clip_loss", public=np.True_)
    assert rules.forbid == autograde.FORBIDDEN and rules.public is True
    assert set(rules.given) == set(checks.CHECKERS) - {"clip_loss"}
    assert rules.given["logit_matrix"] is solutions.logit_matrix


# ---------------------------------------------------------------------------
# otter assign, and Otter's grading of what it makes
# ---------------------------------------------------------------------------

def _require(module):
    if os.environ.get("NUMCLIP_REQUIRE_OTTER") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{module} is not installed "
                               "(pip install '.[otter]' grades the Otter assignment)")


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """``otter assign``'s output: CI's (NUMCLIP_OTTER_DIST), or made here."""
    _require("otter")
    _require("ipykernel")
    if os.environ.get("NUMCLIP_OTTER_DIST"):
        return Path(os.environ["NUMCLIP_OTTER_DIST"])
    from otter.assign import main as assign

    out = tmp_path_factory.mktemp("otter") / "dist"
    cwd = os.getcwd()
    try:
        assign(str(MASTER), str(out), no_pdfs=True)
    finally:
        os.chdir(cwd)
    return out


def _notebook(dist, version):
    return json.loads((dist / version / "clip_assignment.ipynb").read_text(encoding="utf-8"))


@functools.cache
def _graded(dist, name, notebook_json):
    """Otter's grading of one notebook with the autograder zip, as otter run does it."""
    from otter.api import grade_submission

    (zip_path,) = sorted((dist / "autograder").glob("*.zip"))
    folder = dist.parent / f"graded-{name}"
    folder.mkdir(exist_ok=True)
    path = folder / "clip_assignment.ipynb"
    path.write_text(notebook_json, encoding="utf-8")
    cwd = os.getcwd()
    try:
        return grade_submission(str(path), str(zip_path), quiet=True)
    finally:
        os.chdir(cwd)


def _scores(results):
    return {q: results.results[q].score for q in QUESTIONS}


def _messages(results, q):
    return "\n".join(t.message for t in results.results[q].test_case_results)


def _answered(dist, answers):
    """The student version with each answer cell filled: ``answers[function]`` where given,
    the solution elsewhere, as a student who got the rest right would."""
    nb = _notebook(dist, "student")
    for cell in nb["cells"]:
        if "otter_answer_cell" not in cell["metadata"].get("tags", []):
            continue
        (name,) = [n.name for n in ast.parse(_source(cell)).body if isinstance(n, ast.FunctionDef)]
        if name in answers:
            cell["source"] = textwrap.dedent(answers[name])
        else:
            helpers = [solutions.clip_logits_grad] if name == "clip_loss_grads" else []
            cell["source"] = "\n\n".join(inspect.getsource(f) for f in
                                         [*helpers, getattr(solutions, name)])
    return json.dumps(nb)


def test_otter_assign_makes_a_student_version_without_solutions(dist):
    student = _notebook(dist, "student")
    text = json.dumps(student)
    for solved in ("np.maximum(norm, 1e-12)", "clip_logits_grad", "BEGIN SOLUTION",
                   "every_case"):  # no solution line, no hidden test
        assert solved not in text, solved
    blanks = [c for c in student["cells"] if "otter_answer_cell" in c["metadata"].get("tags", [])]
    assert len(blanks) == len(QUESTIONS)
    for cell in blanks:
        assert _source(cell).rstrip().endswith('"""\n    ...'), _source(cell)
    (zip_path,) = (dist / "autograder").glob("*.zip")
    import zipfile

    names = zipfile.ZipFile(zip_path).namelist()
    assert {f"tests/{q}.py" for q in QUESTIONS} <= set(names)


def test_the_solution_scores_full_marks(dist):
    notebook = json.dumps(_notebook(dist, "autograder"))
    results = _graded(dist, "solution", notebook)
    assert _scores(results) == {q: sum(p) for q, (_, p) in QUESTIONS.items()}
    assert results.total == results.possible == TOTAL


def test_the_student_version_scores_zero(dist):
    results = _graded(dist, "student", json.dumps(_notebook(dist, "student")))
    assert results.total == 0 and results.possible == TOTAL
    for q, (name, _) in QUESTIONS.items():
        messages = _messages(results, q)
        assert messages.count(f"✗ check_{name}: not implemented yet") == 2, messages
        assert "Traceback" not in messages


# Typical wrong answers, one per question, in one notebook: each must cost exactly its
# question's points.  clip_loss (right) calls the logit_matrix that forgets τ, and
# l2_normalize_backward (right) calls the l2_normalize of columns: both keep full marks.
MISTAKES = {
    "l2_normalize": """
        def l2_normalize(x):
            return x / np.maximum(np.linalg.norm(x, axis=0, keepdims=True), 1e-12)
        """,
    "l2_normalize_backward": """
        def l2_normalize_backward(dy, x):
            y = l2_normalize(x)
            norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
            return (dy - y * np.sum(y * dy, axis=-1, keepdims=True)) / norm
        """,
    "logit_matrix": """
        def logit_matrix(image_embeds, text_embeds, temperature):
            return image_embeds @ text_embeds.T
        """,
    "clip_loss_grads": """
        def clip_loss_grads(image_embeds, text_embeds, temperature):
            s = logit_matrix(image_embeds, text_embeds, temperature)
            p_row, p_col = softmax(s), softmax(s.T).T
            g = (p_row + p_col - 2 * np.eye(len(s))) / (2 * len(s))
            return g @ text_embeds / temperature, g @ image_embeds / temperature
        """,
}


def test_typical_mistakes_lose_exactly_the_points_of_their_question(dist):
    results = _graded(dist, "mistakes", _answered(dist, MISTAKES))
    full = {q: sum(p) for q, (_, p) in QUESTIONS.items()}
    assert _scores(results) == full | {"q1": 0, "q5": 0, "q7": 0}
    assert "check the axis: each row should get length 1" in _messages(results, "q1")
    assert "divide by the temperature τ" in _messages(results, "q5")
    assert "dtext needs G transposed" in _messages(results, "q7")


# The rules in Otter's kernel: the library's answer, SciPy's, nbgrader's blank and a crash
RULE_BREAKERS = {
    "l2_normalize_backward": """
        def l2_normalize_backward(dy, x):
            norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
            y = x / norm
            return (dy - y * np.sum(y * dy, axis=-1, keepdim=True)) / norm
        """,
    "softmax": """
        def softmax(z):
            # YOUR CODE HERE
            raise NotImplementedError()
        """,
    "log_softmax": """
        from scipy.special import log_softmax as scipy_log_softmax

        def log_softmax(z):
            return scipy_log_softmax(z, axis=-1)
        """,
    "clip_loss": """
        import numclip

        def clip_loss(image_embeds, text_embeds, temperature):
            logit_scale = -np.log(temperature)
            return numclip.clip_loss(image_embeds, text_embeds, logit_scale, normalize=False)[0]
        """,
}


def test_forbidden_calls_blanks_and_crashes_in_the_graded_notebook(dist):
    results = _graded(dist, "rules", _answered(dist, RULE_BREAKERS))
    full = {q: sum(p) for q, (_, p) in QUESTIONS.items()}
    assert _scores(results) == full | {"q2": 0, "q3": 0, "q4": 0, "q6": 0}
    crash = _messages(results, "q2")
    assert "raised TypeError" in crash and "keepdim" in crash
    # the student's cell as IPython names it, the line number in the cell, and its text
    assert re.search(r"at Cell In\[\d+\], line 4, in l2_normalize_backward: "
                     r"return \(dy - y \* np\.sum\(y \* dy, axis=-1, keepdim=True\)\) / norm",
                     crash), crash
    assert "not implemented yet (softmax raised NotImplementedError)" in _messages(results, "q3")
    assert "calls scipy.special.log_softmax, which" in _messages(results, "q4")
    assert "calls numclip.losses.clip_loss, which this assignment forbids" in _messages(
        results, "q6")
    assert math.isclose(results.total, TOTAL - 3 - 2 - 2 - 3)

