"""The assignment graded by an autograder (Otter-Grader): one question at a time, NumPy only.

``notebooks/exercises/otter/`` holds the assignment's Otter-Grader master notebook;
each of its tests is one call::

    grade("softmax", softmax, public=True)   # the worked example: a public test
    grade("softmax", softmax)                # every case of check_softmax: hidden

:func:`grade` runs the checker of :mod:`numclip.checks` under :func:`rules`:

- **forbidden modules** (:data:`FORBIDDEN`): the student's function may not call into
  numclip (whose ``clip_loss`` and ``numclip.grading.solutions`` hold the answers),
  SciPy (``scipy.special.softmax``) or a deep-learning library; any call that runs
  their code, however it was reached, fails the question and names the function;
- **one question at a time**: while it is checked, the student's function sees the
  right versions of the assignment's other functions under their names
  (``logit_matrix`` inside ``clip_loss``), so a wrong earlier answer costs only its
  own question's points;
- **public** runs the worked example only; the hidden test runs every case.

A failure raises ``AssertionError`` carrying the checker's verdict and hint, which
Otter shows the student as the test's message.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from numclip import checks
from numclip.grading import solutions
from numclip.grading.harness import Rules

__all__ = ["FORBIDDEN", "rules", "grade"]

# Modules whose code a student's function may not run: the library's own answers
# (numclip.clip_loss, numclip.softmax, numclip.grading.solutions), SciPy's softmax and
# logsumexp, and the deep-learning libraries' losses and autograd.
FORBIDDEN = ("numclip", "scipy", "torch", "jax", "tensorflow")


def rules(name: str, *, public: bool = False) -> Rules:
    """The autograder's rules for the question that asks for the function ``name``.

    Args:
        name: a function of the assignment, a key of :data:`numclip.checks.CHECKERS`.
        public: check the worked example only (Otter's public test).

    Returns:
        :class:`numclip.grading.harness.Rules` forbidding :data:`FORBIDDEN` and giving
            the solutions of every other function of the assignment.

    Raises:
        ValueError: ``name`` is not a function of the assignment.
        TypeError: ``public`` is not a bool.
    """
    _check_name(name)
    if not isinstance(public, bool | np.bool_):
        raise TypeError(f"rules: public must be True or False, got {public!r}")
    given = {other: getattr(solutions, other) for other in checks.CHECKERS if other != name}
    return Rules(forbid=FORBIDDEN, given=given, public=bool(public))


def grade(name: str, student_fn, *, public: bool = False) -> None:
    """Pass silently if the student's ``name`` is right; else raise with the verdict.

    Args:
        name: the function of the assignment being graded, e.g. ``"clip_loss"``.
        student_fn: the student's function (``None`` when the notebook never defined
            it, as Otter passes a missing name).
        public: check the worked example only (Otter's public test).

    Raises:
        AssertionError: the function is missing, not implemented yet, calls a
            forbidden module, crashes or gives a wrong answer; the message is the
            checker's verdict (with its hint, and the student's line for a crash).
        ValueError: ``name`` is not a function of the assignment.
        TypeError: ``public`` is not a bool.
    """
    question = rules(name, public=public)
    if student_fn is None:
        raise AssertionError(f"✗ check_{name}: no function called {name} yet: define it "
                             "in the question's cell and run that cell")
    verdict = io.StringIO()
    with contextlib.redirect_stdout(verdict):
        passed = checks.CHECKERS[name](student_fn, rules=question)
    if not passed:
        raise AssertionError(verdict.getvalue().rstrip())


def _check_name(name) -> None:
    if not isinstance(name, str) or name not in checks.CHECKERS:
        raise ValueError(f"name must be one of the assignment's functions "
                         f"{', '.join(checks.CHECKERS)}; got {name!r}")
