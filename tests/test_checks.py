"""The checkers for students' code: they accept right answers and reject typical mistakes.

A check that cannot fail is a defect, so every checker meets a plain NumPy
solution written the way a student would (it must pass), numclip's own
functions wrapped to the student signatures (they must pass too), and at
least three deliberately broken implementations of mistakes students make
(each must be rejected, and the verdict must name the case that caught it).
"""

import math
import re

import numpy as np
import pytest

import numclip
from numclip import checks
from numclip.grading import solutions
from numclip.grading.solutions import (
    clip_loss,
    clip_loss_grads,
    l2_normalize,
    log_softmax,
    logit_matrix,
    softmax,
)

# ---------------------------------------------------------------------------
# Right answers, the way a student writes them: the assignment's solutions, the one
# source the exercises test and notebook 05 share (numclip.grading.solutions)
# ---------------------------------------------------------------------------

STUDENT = {name: getattr(solutions, name) for name in checks.CHECKERS}


def _g(image_embeds, text_embeds, temperature):
    """The right G = dL/dS, as the solutions compute it, for the mistakes built on it."""
    s = logit_matrix(image_embeds, text_embeds, temperature)
    return solutions.clip_logits_grad(softmax(s), softmax(s.T).T)


# numclip itself, adapted to the student signatures (tuples with caches are allowed)
NUMCLIP = {
    "l2_normalize": numclip.l2_normalize,
    "l2_normalize_backward": lambda dy, x: numclip.l2_normalize_backward(
        dy, numclip.l2_normalize(x)[1]),
    "softmax": numclip.softmax,
    "log_softmax": numclip.log_softmax,
    "logit_matrix": lambda i, t, tau: numclip.logit_matrix(i, t, -math.log(tau)),
    "clip_loss": lambda i, t, tau: numclip.clip_loss(i, t, -math.log(tau), normalize=False),
    "clip_loss_grads": lambda i, t, tau: tuple(
        numclip.clip_loss(i, t, -math.log(tau), normalize=False)[1][k]
        for k in ("image_embeds", "text_embeds")),
}


@pytest.mark.parametrize("name", list(checks.CHECKERS))
@pytest.mark.parametrize("solutions", [STUDENT, NUMCLIP], ids=["student", "numclip"])
def test_reference_passes(name, solutions, capsys):
    assert checks.CHECKERS[name](solutions[name]) is True
    out = capsys.readouterr().out
    assert out.startswith(f"✓ check_{name}: all ") and out.rstrip().endswith("cases passed")
    assert out.count("\n") == 1  # one verdict line, nothing else


def test_verbose_lists_every_case_and_quiet_prints_nothing(capsys):
    assert checks.check_softmax(softmax, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "  ✓ worked example: the page's logits (τ = 0.07)"
    assert lines[-1] == f"✓ check_softmax: all {len(lines) - 1} cases passed"
    assert checks.check_softmax(lambda z: z, quiet=True) is False
    assert checks.check_softmax(softmax, quiet=True) is True
    assert capsys.readouterr().out == ""


def test_check_all(capsys):
    assert checks.check_all(STUDENT) is True
    assert capsys.readouterr().out.count("✓") == len(checks.CHECKERS)
    assert checks.check_all({"softmax": softmax}) is False
    out = capsys.readouterr().out
    assert "✓ check_softmax" in out and "✗ check_clip_loss: no function called clip_loss" in out


# ---------------------------------------------------------------------------
# Broken implementations: (checker, student fn, the case that must catch it, hint text)
# ---------------------------------------------------------------------------

WORKED = "worked example"
WRONG = []  # filled below, one block per checker


def _wrong(name, case, hint=None):
    def register(fn):
        WRONG.append(pytest.param(name, fn, case, hint, id=f"{name}-{fn.__name__}"))
        return fn
    return register


# l2_normalize --------------------------------------------------------------
@_wrong("l2_normalize", "an all-zero row", "the floor ε = 1e-12 under the norm")
def no_eps(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@_wrong("l2_normalize", WORKED, "check the axis")
def column_norms(x):
    return x / np.linalg.norm(x, axis=0, keepdims=True)


@_wrong("l2_normalize", WORKED, "not by the norm of the whole matrix")
def one_norm_for_all(x):
    return x / np.linalg.norm(x)


@_wrong("l2_normalize", WORKED, "square root")
def no_sqrt(x):
    return x / np.maximum(np.sum(x * x, axis=-1, keepdims=True), 1e-12)


@_wrong("l2_normalize", WORKED, "not in place")
def normalizes_in_place(x):
    x /= np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return x


@_wrong("l2_normalize", "float32 input", "expected dtype float32")
def always_float64(x):
    return l2_normalize(np.asarray(x, dtype=np.float64))


# l2_normalize_backward -----------------------------------------------------
@_wrong("l2_normalize_backward", WORKED, "projection term is missing")
def no_projection(dy, x):
    return dy / np.linalg.norm(x, axis=-1, keepdims=True)


@_wrong("l2_normalize_backward", WORKED, "a factor 1/‖x‖ is missing")
def no_division(dy, x):
    y = l2_normalize(x)
    return dy - y * np.sum(y * dy, axis=-1, keepdims=True)


@_wrong("l2_normalize_backward", WORKED, "not onto x itself")
def projects_onto_x(dy, x):
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (dy - x * np.sum(x * dy, axis=-1, keepdims=True)) / norm


@_wrong("l2_normalize_backward", WORKED, "one number per row")
def dot_over_columns(dy, x):
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    y = x / norm
    return (dy - y * np.sum(y * dy, axis=0, keepdims=True)) / norm


@_wrong("l2_normalize_backward", WORKED, "not in place")
def backward_in_place(dy, x):
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    y = x / norm
    dy -= y * np.sum(y * dy, axis=-1, keepdims=True)
    return dy / norm


# softmax --------------------------------------------------------------------
@_wrong("softmax", "large logits (±1000s)", "shift each row by its own maximum")
def no_max_shift(z):
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


@_wrong("softmax", "large logits (±1000s)", "one max for the whole matrix")
def one_max_for_all(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=-1, keepdims=True)


@_wrong("softmax", WORKED, "check the axis")
def softmax_over_columns(z):
    e = np.exp(z - np.max(z, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


@_wrong("softmax", WORKED)  # square: broadcasts along the wrong axis instead of crashing
def no_keepdims(z):
    e = np.exp(z - np.max(z, axis=-1))
    return e / np.sum(e, axis=-1)


@_wrong("softmax", WORKED, "not the sum of everything")
def divides_by_total(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e)


@_wrong("softmax", WORKED, "not in place")
def shifts_in_place(z):
    z -= np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


@_wrong("softmax", "float32 input", "expected dtype float32")
def softmax_float64(z):
    return softmax(z.astype(np.float64))


# log_softmax ----------------------------------------------------------------
@_wrong("log_softmax", "large logits (±1000s)", "np.log(softmax(z))")
def log_of_softmax(z):
    return np.log(softmax(z))


@_wrong("log_softmax", "large logits (±1000s)", "shift each row by its own maximum")
def log_sum_exp_unshifted(z):
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


@_wrong("log_softmax", WORKED, "check the axis")
def log_softmax_over_columns(z):
    m = np.max(z, axis=0, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=0, keepdims=True))


@_wrong("log_softmax", WORKED, "np.log10")
def log10_softmax(z):
    return np.log10(softmax(z))


@_wrong("log_softmax", WORKED, "subtracts only the row's maximum")
def only_the_max(z):
    return z - np.max(z, axis=-1, keepdims=True)


# logit_matrix ---------------------------------------------------------------
@_wrong("logit_matrix", WORKED, "divide by the temperature")
def temperature_forgotten(image_embeds, text_embeds, temperature):
    return image_embeds @ text_embeds.T


@_wrong("logit_matrix", WORKED, "don't multiply")
def multiplies_by_temperature(image_embeds, text_embeds, temperature):
    return image_embeds @ text_embeds.T * temperature


@_wrong("logit_matrix", WORKED, "logits_per_text")
def texts_by_images(image_embeds, text_embeds, temperature):
    return text_embeds @ image_embeds.T / temperature


@_wrong("logit_matrix", WORKED)  # 3×3: runs, but multiplies the wrong entries
def missing_transpose(image_embeds, text_embeds, temperature):
    return image_embeds @ text_embeds / temperature


@_wrong("logit_matrix", WORKED, "as given")
def normalizes_first(image_embeds, text_embeds, temperature):
    return l2_normalize(image_embeds) @ l2_normalize(text_embeds).T / temperature


@_wrong("logit_matrix", "float32 input", "expected dtype float32")
def logits_float64(image_embeds, text_embeds, temperature):
    return np.asarray(image_embeds @ text_embeds.T, dtype=np.float64) / temperature


# clip_loss ------------------------------------------------------------------
@_wrong("clip_loss", WORKED, "one direction only")
def image_to_text_only(image_embeds, text_embeds, temperature):
    s = logit_matrix(image_embeds, text_embeds, temperature)
    return -np.mean(np.diagonal(log_softmax(s)))


@_wrong("clip_loss", WORKED, "divide the logits by the temperature")
def loss_without_temperature(image_embeds, text_embeds, temperature):
    return clip_loss(image_embeds, text_embeds, 1.0)


@_wrong("clip_loss", "large logits (1000s)", "NaN or inf")
def loss_of_unstable_softmax(image_embeds, text_embeds, temperature):
    e = np.exp(logit_matrix(image_embeds, text_embeds, temperature))
    p_row = e / np.sum(e, axis=1, keepdims=True)
    p_col = e / np.sum(e, axis=0, keepdims=True)
    return -(np.mean(np.log(np.diagonal(p_row))) + np.mean(np.log(np.diagonal(p_col)))) / 2


@_wrong("clip_loss", WORKED, "not the sum")
def sums_over_pairs(image_embeds, text_embeds, temperature):
    return clip_loss(image_embeds, text_embeds, temperature) * len(image_embeds)


@_wrong("clip_loss", WORKED, "the course page's number")
def the_page_loss(image_embeds, text_embeds, temperature):
    # the page: log10, one direction, and (after its sign slip) reported as positive
    s = logit_matrix(image_embeds, text_embeds, temperature)
    return -np.mean(np.log10(np.diagonal(softmax(s))))


@_wrong("clip_loss", WORKED, "expected a single number")
def per_pair_losses(image_embeds, text_embeds, temperature):
    s = logit_matrix(image_embeds, text_embeds, temperature)
    return -(np.diagonal(log_softmax(s)) + np.diagonal(log_softmax(s.T))) / 2


@_wrong("clip_loss", "float32 input", "expected dtype float32")
def loss_float64(image_embeds, text_embeds, temperature):
    return np.float64(clip_loss(image_embeds, text_embeds, temperature))


# clip_loss_grads ------------------------------------------------------------
@_wrong("clip_loss_grads", WORKED, "one direction only")
def grads_one_direction(image_embeds, text_embeds, temperature):
    s = logit_matrix(image_embeds, text_embeds, temperature)
    g = (softmax(s) - np.eye(len(s))) / len(s)  # image -> text only: (P_row - I) / N
    return g @ text_embeds / temperature, g.T @ image_embeds / temperature


@_wrong("clip_loss_grads", WORKED, "needs G transposed")
def dtext_missing_transpose(image_embeds, text_embeds, temperature):
    g = _g(image_embeds, text_embeds, temperature)
    return g @ text_embeds / temperature, g @ image_embeds / temperature


@_wrong("clip_loss_grads", WORKED, "factor 1/τ")
def grads_without_temperature(image_embeds, text_embeds, temperature):
    g = _g(image_embeds, text_embeds, temperature)
    return g @ text_embeds, g.T @ image_embeds


@_wrong("clip_loss_grads", WORKED, "return (dimage, dtext)")
def swapped(image_embeds, text_embeds, temperature):
    return clip_loss_grads(image_embeds, text_embeds, temperature)[::-1]


@_wrong("clip_loss_grads", WORKED, "average the two directions")
def directions_summed(image_embeds, text_embeds, temperature):
    dimage, dtext = clip_loss_grads(image_embeds, text_embeds, temperature)
    return 2 * dimage, 2 * dtext


@_wrong("clip_loss_grads", WORKED, "G carries a factor 1/N")
def no_mean(image_embeds, text_embeds, temperature):
    dimage, dtext = clip_loss_grads(image_embeds, text_embeds, temperature)
    return len(image_embeds) * dimage, len(image_embeds) * dtext


@_wrong("clip_loss_grads", WORKED, "expected a tuple (dimage, dtext)")
def only_dimage(image_embeds, text_embeds, temperature):
    return clip_loss_grads(image_embeds, text_embeds, temperature)[0]


@pytest.mark.parametrize("name, fn, case, hint", WRONG)
def test_mistake_is_rejected(name, fn, case, hint, capsys):
    assert checks.CHECKERS[name](fn) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ check_{name}: failed on '{case}"), out
    if hint is not None:
        assert hint in out, out


def test_at_least_three_mistakes_per_checker():
    per_checker = {name: 0 for name in checks.CHECKERS}
    for param in WRONG:
        per_checker[param.values[0]] += 1
    assert min(per_checker.values()) >= 3, per_checker


# ---------------------------------------------------------------------------
# What every checker does with code that is not a function of the right kind
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(checks.CHECKERS))
def test_not_implemented_yet(name, capsys):
    def blank(*args):
        raise NotImplementedError(f"write {name}")

    assert checks.CHECKERS[name](blank) is False
    assert capsys.readouterr().out == (f"✗ check_{name}: not implemented yet "
                                       f"(blank raised NotImplementedError: write {name})\n")


@pytest.mark.parametrize("name", list(checks.CHECKERS))
def test_crash_names_the_case_and_the_exception(name, capsys):
    def crashes(*args):
        return {}["oops"]

    assert checks.CHECKERS[name](crashes) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ check_{name}: failed on '{WORKED}")
    assert "crashes raised KeyError: 'oops'" in out


@pytest.mark.parametrize("name", list(checks.CHECKERS))
def test_forgotten_return_and_wrong_types(name, capsys):
    assert checks.CHECKERS[name](lambda *args: None) is False
    assert "got None (a missing `return`?)" in capsys.readouterr().out
    assert checks.CHECKERS[name](42) is False
    assert capsys.readouterr().out == f"✗ check_{name}: expected a function, got int\n"


def test_crash_hints(capsys):
    # right on the square worked example, so that the non-square case is the one that crashes
    def square_only_softmax(z):
        return softmax(z) if z.shape[0] == z.shape[1] else z - np.max(z, axis=-1)

    def square_only_logits(image_embeds, text_embeds, temperature):
        if image_embeds.shape == text_embeds.shape:
            return logit_matrix(image_embeds, text_embeds, temperature)
        return image_embeds @ text_embeds / temperature

    assert checks.check_softmax(square_only_softmax) is False
    out = capsys.readouterr().out
    assert "failed on 'large logits (±1000s)'" in out  # (3, 4) - (3,) does not broadcast
    assert "raised ValueError" in out and "keepdims=True" in out
    assert checks.check_logit_matrix(square_only_logits) is False
    out = capsys.readouterr().out
    assert "failed on 'non-square (N = 5 images, 4 texts, D = 3)'" in out
    assert "raised ValueError" in out and "is a .T missing or extra?" in out


def test_list_output_is_rejected_with_advice(capsys):
    assert checks.check_softmax(lambda z: softmax(z).tolist()) is False
    out = capsys.readouterr().out
    assert "expected a NumPy array, got a list of length 3 (convert with np.array)" in out


def test_python_float_loss_is_accepted(capsys):
    assert checks.check_clip_loss(lambda i, t, tau: float(clip_loss(i, t, tau))) is True


def test_worked_example_arrays_are_never_modified():
    from numclip import worked_example

    before = worked_example.TEXT_EMBEDS.copy()

    def vandal(x):
        x[...] = 0.0
        return x

    assert checks.check_l2_normalize(vandal, quiet=True) is False
    np.testing.assert_array_equal(worked_example.TEXT_EMBEDS, before)


def test_ascii_console_fallback(capsys, monkeypatch):
    printed = []

    def strict_print(text):
        text.encode("ascii")  # raises UnicodeEncodeError on ✓
        printed.append(text)

    monkeypatch.setattr("builtins.print", strict_print)
    assert checks.check_softmax(softmax) is True
    assert printed == ["PASS check_softmax: all 6 cases passed"]


# (function, args, kwargs, error, words): bad arguments to the checkers themselves. A
# student's *function* that is wrong is a verdict (False), never an exception; a wrong
# call of a checker is an error that names the argument.
BAD_INPUT = [
    *[(getattr(checks, name), (lambda *a: None,), {"verbose": "yes"}, TypeError,
       "verbose must be True or False") for name in checks.__all__
      if name.startswith("check_") and name != "check_all"],
    (checks.check_softmax, (lambda z: z,), {"quiet": 1}, TypeError, "quiet must be True or False"),
    *[(getattr(checks, name), (lambda *a: None,), {"rules": {"forbid": ("numclip",)}}, TypeError,
       f"{name}: rules must be a numclip.grading.harness.Rules or None") for name in checks.__all__
      if name.startswith("check_") and name != "check_all"],
    (checks.check_all, (None,), {}, TypeError, "functions must be a dict of name -> function"),
    (checks.check_all, ([checks.check_softmax],), {}, TypeError, "functions must be a dict"),
    (checks.check_all, ({},), {"quiet": "no"}, TypeError, "quiet must be True or False"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD_INPUT,
                         ids=[f"{row[0].__name__}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_arguments_to_a_checker_raise_clear_errors(fn, args, kwargs, error, words):
    with pytest.raises(error, match=words):
        fn(*args, **kwargs)


def test_numpy_bools_are_flags_too():
    """np.True_ (from a comparison, say) was refused as 'must be True or False'."""
    assert checks.check_softmax(numclip.softmax, quiet=np.True_, verbose=np.False_) is True
    assert checks.check_all({}, quiet=np.True_) is False


def test_every_public_checker_has_bad_input_rows():
    covered = {row[0].__name__ for row in BAD_INPUT}
    assert {name for name in checks.__all__ if callable(getattr(checks, name))} - covered == set()


# ---------------------------------------------------------------------------
# Blanks: nbgrader's `raise NotImplementedError()` and Otter-Grader's `...`
# ---------------------------------------------------------------------------

def otter_blank(*args):
    """What `otter assign` leaves of a solution: the docstring, then its placeholder."""
    ...


def pass_blank(*args):
    pass


def returns_placeholder(*args):
    return ...  # a `return x  # SOLUTION` line after otter assign


def computes_with_placeholder(*args):
    norm = ...  # a `norm = ...  # SOLUTION` line after otter assign
    return args[0] / norm


def nbgrader_blank(*args):
    # YOUR CODE HERE
    raise NotImplementedError()


@pytest.mark.parametrize("name", list(checks.CHECKERS))
@pytest.mark.parametrize("blank, detail", [
    (otter_blank, "otter_blank's body is still a placeholder (`...` or `pass`)"),
    (pass_blank, "pass_blank's body is still a placeholder (`...` or `pass`)"),
    (returns_placeholder, "returns_placeholder returned Otter's placeholder `...`"),
    (computes_with_placeholder, "computes_with_placeholder still computes with Otter's "
                                "placeholder `...` at "),
    (nbgrader_blank, "nbgrader_blank raised NotImplementedError)"),
], ids=["otter", "pass", "return-ellipsis", "computes-with-ellipsis", "nbgrader"])
def test_blanks_are_not_implemented_yet(name, blank, detail, capsys):
    assert checks.CHECKERS[name](blank) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ check_{name}: not implemented yet ("), out
    assert detail in out, out
    assert out.count("\n") == 1 and "Traceback" not in out, out  # one line, no traceback


def test_the_placeholder_line_is_shown(capsys):
    assert checks.check_softmax(computes_with_placeholder) is False
    out = capsys.readouterr().out
    line = computes_with_placeholder.__code__.co_firstlineno + 2
    assert f"{__file__}, line {line}, in computes_with_placeholder: return args[0] / norm" in out


def test_a_missing_return_is_not_a_blank(capsys):
    def forgets_return(z):
        e = np.exp(z - np.max(z, axis=-1, keepdims=True))
        e / np.sum(e, axis=-1, keepdims=True)

    assert checks.check_softmax(forgets_return) is False
    assert "got None (a missing `return`?)" in capsys.readouterr().out
    assert checks.check_softmax(lambda z: None) is False  # a lambda has no body to leave blank
    assert "got None (a missing `return`?)" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# A crash shows the student's line: the cell (or file), the line number and its text
# ---------------------------------------------------------------------------

def _from_cell(source, cell="<cell In[7]>"):
    """Define the functions of ``source`` as a notebook cell does: compiled under a name
    of its own, its lines in linecache (IPython does the same)."""
    import linecache

    linecache.cache[cell] = (len(source), None, source.splitlines(keepends=True), cell)
    scope = {"np": np}
    exec(compile(source, cell, "exec"), scope)
    return scope


def test_a_crash_shows_the_cell_line_it_came_from(capsys):
    cell = _from_cell("def softmax(z):\n"
                      "    m = np.max(z, axis=-1, keepdims=True)\n"
                      "    e = np.exp(z - mx)\n"
                      "    return e / np.sum(e, axis=-1, keepdims=True)\n")
    assert checks.check_softmax(cell["softmax"]) is False
    out = capsys.readouterr().out.splitlines()
    assert out == ["✗ check_softmax: failed on 'worked example: the page's logits (τ = 0.07)': "
                   "softmax raised NameError: name 'mx' is not defined",
                   "  at <cell In[7]>, line 3, in softmax: e = np.exp(z - mx)"]


def test_a_crash_inside_numpy_is_shown_at_the_students_line(capsys):
    cell = _from_cell("def helper(x):\n"
                      "    return np.linalg.norm(x, axis=2)\n"
                      "\n"
                      "def l2_normalize(x):\n"
                      "    return x / helper(x)\n", cell="<cell In[3]>")
    assert checks.check_l2_normalize(cell["l2_normalize"]) is False
    out = capsys.readouterr().out.splitlines()
    assert "raised AxisError" in out[0]
    # the deepest frame of the student's own code, not NumPy's
    assert out[1] == "  at <cell In[3]>, line 2, in helper: return np.linalg.norm(x, axis=2)"


# ---------------------------------------------------------------------------
# Hints point at the mistake without handing over the line that fixes it
# ---------------------------------------------------------------------------

# What a line of the fix looks like: a NumPy call, a matrix product, a transpose, an axis.
# Naming the student's own mistaken expression, np.log(softmax(z)), is allowed.
FIX_LINE = re.compile(r"np\.(?!log\(softmax\(z\)\))\w+\(|@|\.T\b|axis=|\w+\s*=\s*\w+\s*[@/*]\s*\w")


@pytest.mark.parametrize("name, fn, case, hint", WRONG)
def test_no_hint_hands_over_the_fix(name, fn, case, hint, capsys):
    checks.CHECKERS[name](fn)
    hints = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  hint:")]
    for line in hints:
        found = FIX_LINE.search(line.replace("y = x / ‖x‖", ""))  # the forward formula, quoted
        assert found is None, f"the hint hands over code ({found.group(0)!r}): {line}"
