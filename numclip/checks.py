"""Checkers that tell a student whether their own version of a core function is right.

Each ``check_<name>(student_fn)`` calls the student's function on a list of
named cases: the course page's worked example first (numbers from
:mod:`numclip.worked_example`), then generated ones (logits in the thousands,
an all-zero row, non-square shapes, float32 input, a batch of one).  It
compares every output with numclip's reference, computed in float64, and
prints one verdict::

    ✓ check_softmax: all 6 cases passed
    ✗ check_softmax: failed on 'large logits (±1000s)': expected [0.09, ...], got [nan, ...]
      hint: the output has NaN or inf: exp overflows for large logits. ...

It returns ``True`` when every case passes and ``False`` otherwise; it never
raises because of the student's code.  A function that is still a blank is
reported as "not implemented yet", so an assignment notebook with blanks runs top
to bottom: one that raises ``NotImplementedError`` (nbgrader's blank), or whose
body is Otter-Grader's placeholder ``...`` (or that returns or computes with
``...``).  A crash names the line of the student's code it came from.

What each case checks, in order: the function does not crash, does not modify
its inputs in place (it is called on copies, which are compared afterwards),
returns the expected shape and dtype (float32 in, float32 out), only finite
values, and values within a tolerance suited to the dtype.  ``rules=`` adds an
autograder's rules (:class:`numclip.grading.harness.Rules`: forbidden modules, the
other functions given, the worked example only); :mod:`numclip.grading.autograde`
builds them for the assignment's Otter-Grader version.  That harness, the
float64 references and the hint catalogues live in :mod:`numclip.grading`; this
module holds the checkers and their cases.

The student-facing signatures are the simple ones a student writes, NumPy only,
rows are examples and ``τ`` is the temperature (not numclip's ``logit_scale``):

- ``l2_normalize(x) -> y``: :func:`check_l2_normalize`
- ``l2_normalize_backward(dy, x) -> dx``: :func:`check_l2_normalize_backward`
- ``softmax(z) -> p``: :func:`check_softmax`
- ``log_softmax(z) -> logp``: :func:`check_log_softmax`
- ``logit_matrix(image_embeds, text_embeds, temperature) -> logits_per_image``:
  :func:`check_logit_matrix`
- ``clip_loss(image_embeds, text_embeds, temperature) -> loss``: :func:`check_clip_loss`
- ``clip_loss_grads(image_embeds, text_embeds, temperature) -> (dimage, dtext)``:
  :func:`check_clip_loss_grads`

Each checker's docstring gives the shapes and the formula;
``notebooks/exercises/clip_assignment.ipynb`` is the assignment built on them, and
``notebooks/exercises/otter/`` holds the same assignment as an Otter-Grader master
notebook, whose tests call them through
:func:`numclip.grading.autograde.grade`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from numclip import worked_example
from numclip.grading import hints, reference
from numclip.grading.harness import Case, Rules, args, check_flags, rng, run, say

__all__ = [
    "check_l2_normalize", "check_l2_normalize_backward", "check_softmax", "check_log_softmax",
    "check_logit_matrix", "check_clip_loss", "check_clip_loss_grads", "check_all", "CHECKERS",
]


# ---------------------------------------------------------------------------
# L2 normalization
# ---------------------------------------------------------------------------

def _l2_inputs():
    """Inputs shared by the forward and backward checks: (name, x)."""
    r = rng(1)
    return [
        ("worked example: the page's text embeddings T", worked_example.TEXT_EMBEDS),
        ("non-square (5 rows, 3 columns)", r.standard_normal((5, 3))),
        ("non-square (2 rows, 7 columns)", r.standard_normal((2, 7))),
        ("rows of very different lengths (0.5 to 3000)",
         r.standard_normal((4, 3)) * np.array([[0.5], [3000.0], [1.0], [40.0]])),
        ("float32 input", r.standard_normal((4, 6)).astype(np.float32)),
        ("batch of one", r.standard_normal((1, 4))),
    ]


def check_l2_normalize(student_fn, *, verbose: bool = False, quiet: bool = False,
                       rules: Rules | None = None) -> bool:
    r"""Check a student's ``l2_normalize(x) -> y`` against :func:`numclip.l2_normalize`.

    Student signature: ``x`` is ``(N, D)``; return ``y`` of shape ``(N, D)`` and the dtype
    of ``x``, each row divided by its Euclidean length,
    :math:`y_i = x_i / \max(\lVert x_i \rVert, \varepsilon)`.  An all-zero row has no
    direction and must come back as zeros, not NaN (divide by ``np.maximum(norm, 1e-12)``,
    as ``torch.nn.functional.normalize`` does).  Returning a tuple ``(y, cache)`` is
    fine: its first element is checked.

    Args:
        student_fn: the student's function.
        verbose: also print one line per passed case.
        quiet: print nothing, only return the verdict.

    Returns:
        True if every case passed, False otherwise (the printed verdict says why).
    """
    cases = [Case(name, args(x, dtype=x.dtype), (reference.l2_normalize(x),), np.dtype(x.dtype))
             for name, x in _l2_inputs()]
    x = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])
    cases.insert(1, Case("an all-zero row", (x,), (reference.l2_normalize(x),),
                         np.dtype(np.float64)))
    return run("check_l2_normalize", student_fn, cases, labels=("y",),
               hint=hints.hint_l2_normalize, nonfinite_hint=hints.nonfinite_l2_normalize,
               verbose=verbose, quiet=quiet, rules=rules)


def check_l2_normalize_backward(student_fn, *, verbose: bool = False,
                                quiet: bool = False, rules: Rules | None = None) -> bool:
    r"""Check a student's ``l2_normalize_backward(dy, x) -> dx``.

    Student signature: ``dy`` is the upstream gradient :math:`\partial L/\partial y`,
    ``(N, D)``; ``x`` is the *input* of the forward pass, ``(N, D)``; return ``dx`` of
    shape ``(N, D)`` and the dtype of ``dy``:

    .. math:: dx_i = \frac{dy_i - y_i\,(y_i^\top dy_i)}{\lVert x_i \rVert},
              \qquad y_i = x_i / \lVert x_i \rVert

    No all-zero rows are tested: there the gradient is ill-defined.
    Reference: :func:`numclip.l2_normalize_backward`.

    Returns:
        True if every case passed, False otherwise (the printed verdict says why).
    """
    cases = []
    for seed, (name, x) in enumerate(_l2_inputs()):
        dy = rng(100 + seed).standard_normal(x.shape).astype(x.dtype)
        cases.append(Case(name + ", random dy", args(dy, x, dtype=x.dtype),
                          (reference.l2_normalize_backward(dy, x),), np.dtype(x.dtype)))
    return run("check_l2_normalize_backward", student_fn, cases, labels=("dx",),
               hint=hints.hint_l2_normalize_backward, verbose=verbose, quiet=quiet, rules=rules)


# ---------------------------------------------------------------------------
# Softmax and log-softmax
# ---------------------------------------------------------------------------

def _softmax_inputs():
    """Logits for both softmax checks: (name, z)."""
    r = rng(2)
    return [
        ("worked example: the page's logits (τ = 0.07)",
         worked_example.compute()["logits_per_image"]),
        # rows far apart from each other: a single max over the whole matrix underflows;
        # a row spread over 1600: its smallest probability underflows to 0, log(0) = -inf
        ("large logits (±1000s)", np.array([[1000.0, 1001.0, 1002.0, 999.0],
                                            [-1000.0, -1002.0, -1001.0, -1003.0],
                                            [-800.0, 0.0, 800.0, 1.0]])),
        ("an all-zero row", np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])),
        ("non-square (5 rows, 3 columns)", r.standard_normal((5, 3)) * 3),
        ("float32 input", (r.standard_normal((4, 6)) * 3).astype(np.float32)),
        ("batch of one", r.standard_normal((1, 5)) * 3),
    ]


def check_softmax(student_fn, *, verbose: bool = False, quiet: bool = False,
                  rules: Rules | None = None) -> bool:
    r"""Check a student's ``softmax(z) -> p`` against :func:`numclip.softmax`.

    Student signature: ``z`` is ``(N, C)``, one row of logits per example; return ``p``
    of shape ``(N, C)`` and the dtype of ``z``, each row a probability distribution
    along the last axis:

    .. math:: p_{ij} = \frac{e^{z_{ij} - m_i}}{\sum_k e^{z_{ik} - m_i}},
              \qquad m_i = \max_k z_{ik}

    Subtracting each row's own max keeps logits in the thousands from overflowing.

    Returns:
        True if every case passed, False otherwise (the printed verdict says why).
    """
    cases = [Case(name, args(z, dtype=z.dtype), (reference.softmax(z),), np.dtype(z.dtype))
             for name, z in _softmax_inputs()]
    return run("check_softmax", student_fn, cases, labels=("p",), hint=hints.hint_softmax,
               nonfinite_hint=hints.nonfinite_softmax, verbose=verbose, quiet=quiet, rules=rules)


def check_log_softmax(student_fn, *, verbose: bool = False, quiet: bool = False,
                      rules: Rules | None = None) -> bool:
    r"""Check a student's ``log_softmax(z) -> logp`` against :func:`numclip.log_softmax`.

    Student signature: ``z`` is ``(N, C)``; return ``logp`` of shape ``(N, C)`` and the
    dtype of ``z``, the log of the softmax along the last axis, computed stably:

    .. math:: \log p_{ij} = z_{ij} - m_i - \log \sum_k e^{z_{ik} - m_i},
              \qquad m_i = \max_k z_{ik}

    ``np.log(softmax(z))`` is *not* enough: a probability that underflows to 0
    gives ``log(0) = -inf``.

    Returns:
        True if every case passed, False otherwise (the printed verdict says why).
    """
    cases = [Case(name, args(z, dtype=z.dtype), (reference.log_softmax(z),), np.dtype(z.dtype))
             for name, z in _softmax_inputs()]
    return run("check_log_softmax", student_fn, cases, labels=("logp",),
               hint=hints.hint_log_softmax, nonfinite_hint=hints.nonfinite_log_softmax,
               verbose=verbose, quiet=quiet, rules=rules)


# ---------------------------------------------------------------------------
# The logit matrix and the symmetric CLIP loss
# ---------------------------------------------------------------------------

def _embedding_inputs(paired: bool):
    """(name, image_embeds, text_embeds, τ) for the logit matrix and the loss checks."""
    r = rng(3)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    zero_row = unit(r.standard_normal((3, 4)))
    zero_row[1] = 0.0
    m = 5 if paired else 4
    return [
        ("worked example: the page's I and T, τ = 0.07",
         worked_example.IMAGE_EMBEDS, worked_example.TEXT_EMBEDS, worked_example.TAU),
        # unit rows: logits up to 1/τ, the realistic range
        (f"non-square (N = 5 images, {m} texts, D = 3)",
         unit(r.standard_normal((5, 3))), unit(r.standard_normal((m, 3))), 0.1),
        ("large logits (1000s)", r.standard_normal((4, 3)) * 6, r.standard_normal((4, 3)) * 6,
         0.02),
        ("an all-zero image embedding", zero_row, unit(r.standard_normal((3, 4))), 0.07),
        ("float32 input", unit(r.standard_normal((4, 8))).astype(np.float32),
         unit(r.standard_normal((4, 8))).astype(np.float32), 0.07),
        ("batch of one", unit(r.standard_normal((1, 6))), unit(r.standard_normal((1, 6))), 0.5),
    ]


def check_logit_matrix(student_fn, *, verbose: bool = False, quiet: bool = False,
                       rules: Rules | None = None) -> bool:
    r"""Check a student's ``logit_matrix(image_embeds, text_embeds, temperature) -> S``.

    Student signature: ``image_embeds`` ``I`` is ``(N, D)``, ``text_embeds`` ``T`` is
    ``(M, D)`` (``M`` may differ from ``N``), ``temperature`` ``τ`` is a positive Python
    float; return ``logits_per_image`` of shape ``(N, M)`` and the embeddings' dtype,
    the embeddings used as given (no normalization, like the course page):

    .. math:: S = \frac{I\,T^\top}{\tau}, \qquad S_{ij} = \frac{I_i \cdot T_j}{\tau}

    Row ``i`` scores image ``i`` against every text.  numclip's
    :func:`numclip.logit_matrix` computes the same with ``logit_scale = log(1/τ)``.

    Returns:
        True if every case passed, False otherwise (the printed verdict says why).
    """
    cases = [Case(name, (*args(i, t, dtype=i.dtype), tau), (reference.logit_matrix(i, t, tau),),
                  np.dtype(i.dtype))
             for name, i, t, tau in _embedding_inputs(paired=False)]
    return run("check_logit_matrix", student_fn, cases, labels=("logits_per_image",),
               hint=hints.hint_logit_matrix, verbose=verbose, quiet=quiet, rules=rules)


def check_clip_loss(student_fn, *, verbose: bool = False, quiet: bool = False,
                    rules: Rules | None = None) -> bool:
    r"""Check a student's ``clip_loss(image_embeds, text_embeds, temperature) -> loss``.

    Student signature: ``image_embeds`` and ``text_embeds`` are ``(N, D)``, row ``i`` of
    each one image-text pair; ``temperature`` ``τ`` is a positive Python float.  Return
    the loss as one number (a Python float, a NumPy scalar or a 0-d array; if a NumPy
    value, of the embeddings' dtype), the mean over the N pairs of both directions,
    with the embeddings used as given (no normalization, like the course page):

    .. math:: S = I\,T^\top / \tau, \qquad
              L = \frac{1}{2N}\sum_{i=1}^{N}
                  \Big[-\log \operatorname{softmax}(S_{i,:})_i
                       - \log \operatorname{softmax}(S_{:,i})_i\Big]

    The worked example's loss is 0.00075441.  Reference:
    :func:`numclip.clip_loss` with ``logit_scale = log(1/τ)`` and ``normalize=False``.

    Returns:
        True if every case passed, False otherwise (the printed verdict says why).
    """
    cases = [Case(name, (*args(i, t, dtype=i.dtype), tau),
                  (np.asarray(reference.clip_loss(i, t, tau)[0]),), np.dtype(i.dtype))
             for name, i, t, tau in _embedding_inputs(paired=True)]
    return run("check_clip_loss", student_fn, cases, labels=("loss",), scalar=True,
               hint=hints.hint_clip_loss, nonfinite_hint=hints.nonfinite_clip_loss,
               verbose=verbose, quiet=quiet, rules=rules)


def check_clip_loss_grads(student_fn, *, verbose: bool = False, quiet: bool = False,
                          rules: Rules | None = None) -> bool:
    r"""Check a student's ``clip_loss_grads(image_embeds, text_embeds, temperature)``.

    Student signature: arguments as for :func:`check_clip_loss`; return the tuple
    ``(dimage, dtext)`` of :math:`\partial L/\partial I` and :math:`\partial L/\partial T`,
    each ``(N, D)`` in the embeddings' dtype, for the loss ``L`` of :func:`check_clip_loss`
    (embeddings used as given):

    .. math:: G = \frac{1}{2}\Big[\frac{P_{\text{row}} - I_N}{N}
                  + \Big(\frac{P_{\text{col}} - I_N}{N}\Big)^{\!\top}\Big], \qquad
              dI = \frac{G\,T}{\tau}, \qquad dT = \frac{G^\top I}{\tau}

    with :math:`P_{\text{row}} = \operatorname{softmax}(S)` and
    :math:`P_{\text{col}} = \operatorname{softmax}(S^\top)`, both by rows.  Derivation:
    ``docs/derivations.md#the-symmetric-clip-loss``.

    Returns:
        True if every case passed, False otherwise (the printed verdict says why).
    """
    cases = [Case(name, (*args(i, t, dtype=i.dtype), tau), reference.clip_loss(i, t, tau)[1:],
                  np.dtype(i.dtype))
             for name, i, t, tau in _embedding_inputs(paired=True)]
    return run("check_clip_loss_grads", student_fn, cases, labels=("dimage", "dtext"),
               hint=hints.hint_clip_loss_grads, nonfinite_hint=hints.nonfinite_clip_loss,
               verbose=verbose, quiet=quiet, rules=rules)


# ---------------------------------------------------------------------------
# All at once
# ---------------------------------------------------------------------------

# The student's function name -> its checker, in the order of the assignment.
CHECKERS = {
    "l2_normalize": check_l2_normalize,
    "l2_normalize_backward": check_l2_normalize_backward,
    "softmax": check_softmax,
    "log_softmax": check_log_softmax,
    "logit_matrix": check_logit_matrix,
    "clip_loss": check_clip_loss,
    "clip_loss_grads": check_clip_loss_grads,
}


def check_all(functions: dict, *, verbose: bool = False, quiet: bool = False) -> bool:
    """Run every checker whose function is in ``functions`` (e.g. ``globals()``).

    Args:
        functions: name -> the student's function, under the names of :data:`CHECKERS`;
            a missing name is reported as not written yet.

    Returns:
        True if every checker passed, False otherwise.
    """
    if not isinstance(functions, Mapping):
        raise TypeError("functions must be a dict of name -> function, e.g. globals(); "
                        f"got {type(functions).__name__}")
    check_flags("check_all", verbose=verbose, quiet=quiet)
    passed = True
    for name, checker in CHECKERS.items():
        if name not in functions:
            if not quiet:
                say(f"✗ check_{name}: no function called {name} yet")
            passed = False
            continue
        passed = checker(functions[name], verbose=verbose, quiet=quiet) and passed
    return passed
