"""Checkers that tell a student whether their own version of a core function is right.

Each ``check_<name>(student_fn)`` calls the student's function on a list of
named cases: the course page's worked example first (numbers from
:mod:`numclip.worked_example`), then generated ones (logits in the thousands,
an all-zero row, non-square shapes, float32 input, a batch of one).  It
compares every output with numclip's reference, computed in float64, and
prints one verdict::

    ✓ check_softmax: all 6 cases passed
    ✗ check_softmax: failed on 'large logits (±1000s)': expected [0.09, ...], got [nan, ...]
      hint: the output has NaN or inf: subtract each row's max before np.exp ...

It returns ``True`` when every case passes and ``False`` otherwise; it never
raises because of the student's code.  A function that still raises
``NotImplementedError`` is reported as "not implemented yet", so an assignment
notebook with blanks runs top to bottom.

What each case checks, in order: the function does not crash, does not modify
its inputs in place (it is called on copies, which are compared afterwards),
returns the expected shape and dtype (float32 in, float32 out), only finite
values, and values within a tolerance suited to the dtype.

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
``notebooks/exercises/clip_assignment.ipynb`` is the assignment built on them.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from numclip import worked_example
from numclip.losses import clip_loss as _clip_loss
from numclip.normalize import l2_normalize as _l2_normalize
from numclip.normalize import l2_normalize_backward as _l2_normalize_backward
from numclip.softmax import log_softmax as _log_softmax
from numclip.softmax import softmax as _softmax

__all__ = [
    "check_l2_normalize", "check_l2_normalize_backward", "check_softmax", "check_log_softmax",
    "check_logit_matrix", "check_clip_loss", "check_clip_loss_grads", "check_all", "CHECKERS",
]

# Tolerances relative to the largest expected magnitude. float32 keeps about 7
# digits, and a few roundings pile up; every typical mistake is off by far more.
TOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 2e-4}


@dataclass
class _Case:
    """One named input to a student's function and the outputs expected from it."""

    name: str
    args: tuple  # arguments in the student's order: arrays and Python floats
    expected: tuple  # float64 reference outputs, one per output
    dtype: np.dtype  # the dtype every output must have (that of the input arrays)


# ---------------------------------------------------------------------------
# The machinery shared by every checker
# ---------------------------------------------------------------------------

def _run(check_name: str, student_fn, cases: list[_Case], *, labels: tuple[str, ...],
         scalar: bool = False, hint: Callable | None = None, nonfinite_hint: Callable | None = None,
         verbose: bool = False, quiet: bool = False) -> bool:
    """Run ``student_fn`` on every case, print one verdict, return whether all passed."""
    _check_flags(check_name, verbose=verbose, quiet=quiet)
    say = (lambda text: None) if quiet else _say
    fn_name = getattr(student_fn, "__name__", "your function")
    if not callable(student_fn):
        say(f"✗ {check_name}: expected a function, got {type(student_fn).__name__}")
        return False
    for case in cases:
        copies = tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a
                       for a in case.args)
        try:
            # Overflow and 0/0 are reported in the verdict; NumPy's warnings would only clutter.
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                out = student_fn(*copies)
        except NotImplementedError as err:
            detail = f": {err}" if str(err) else ""
            say(f"✗ {check_name}: not implemented yet ({fn_name} raised "
                f"NotImplementedError{detail})")
            return False
        except Exception as err:
            say(f"✗ {check_name}: failed on '{case.name}': {fn_name} raised "
                f"{type(err).__name__}: {_short(str(err))}" + _hint_line(_crash_hint(err)))
            return False
        for a, c in zip(case.args, copies, strict=True):
            if isinstance(a, np.ndarray) and not np.array_equal(a, c, equal_nan=True):
                say(f"✗ {check_name}: failed on '{case.name}': {fn_name} changed its input "
                    "in place" + _hint_line("work on new arrays (y = x / n), not in place "
                                            "(x /= n or x -= ...): the caller still needs x"))
                return False
        message, got = _check_outputs(out, case, labels, scalar)
        if message is None:
            if verbose:
                say(f"  ✓ {case.name}")
            continue
        extra = None
        if got is not None:  # right shapes: a recognisable mistake may explain the values
            finite = all(np.all(np.isfinite(g)) for g in got)
            extra = (nonfinite_hint(case, got) if not finite and nonfinite_hint
                     else hint(case, got) if hint else None)
        say(f"✗ {check_name}: failed on '{case.name}': {message}" + _hint_line(extra))
        return False
    say(f"✓ {check_name}: all {len(cases)} cases passed")
    return True


def _check_flags(check_name: str, **flags) -> None:
    for flag, value in flags.items():  # NumPy's bools count, as everywhere in numclip
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{check_name}: {flag} must be True or False, got {value!r}")


def _check_outputs(out, case: _Case, labels, scalar):
    """Return ``(message, got)``: why ``out`` is wrong (None if right), and its outputs as
    float64 arrays when their types and shapes are right (for the hints), else None."""
    if out is None:
        return "got None (a missing `return`?)", None
    if len(labels) == 1:
        # (y, cache) in numclip's style is fine: the first element is the output
        outs = (out[0] if isinstance(out, tuple) and len(out) > 0 else out,)
    elif not isinstance(out, tuple | list) or len(out) != len(labels):
        return (f"expected a tuple ({', '.join(labels)}), got "
                f"{_describe(out)}"), None
    else:
        outs = tuple(out)
    prefix = (lambda label: "") if len(labels) == 1 else (lambda label: f"{label}: ")
    got = []
    for label, o, expected in zip(labels, outs, case.expected, strict=True):
        if o is None:
            return f"{prefix(label)}got None (a missing `return`?)", None
        if scalar:
            if isinstance(o, bool) or not isinstance(o, float | int | np.generic | np.ndarray):
                return f"expected a single number, got {_describe(o)}", None
            if np.ndim(o) != 0:
                return (f"expected a single number (the mean loss), got an array of shape "
                        f"{np.shape(o)}"), None
        elif not isinstance(o, np.ndarray):
            return (f"{prefix(label)}expected a NumPy array, got {_describe(o)}"
                    + (" (convert with np.array)" if isinstance(o, list) else "")), None
        if np.shape(o) != expected.shape:
            transposed = expected.ndim == 2 and np.shape(o) == expected.shape[::-1]
            return (f"{prefix(label)}expected shape {expected.shape}, got {np.shape(o)}"
                    + (" (the transpose?)" if transposed else "")), None
        dtype = getattr(o, "dtype", None)  # a Python float carries none, and is fine
        if dtype is not None and not np.issubdtype(dtype, np.floating):
            return f"{prefix(label)}expected {case.dtype} values, got dtype {dtype}", None
        if dtype is not None and dtype != case.dtype:
            return (f"{prefix(label)}expected dtype {case.dtype} for {case.dtype} input, "
                    f"got {dtype} (float32 in, float32 out: a np.float64 constant or "
                    "an array made without dtype= promotes it)"), None
        got.append(np.asarray(o, dtype=np.float64))
    for label, g, expected in zip(labels, got, case.expected, strict=True):
        if not np.all(np.isfinite(g)):
            return (f"{prefix(label)}expected {_preview(expected)}, got {_preview(g)}"
                    + _first_nonfinite(g, expected)), got
        if not _close(g, expected, TOL[case.dtype]):
            return (f"{prefix(label)}expected {_preview(expected)}, got {_preview(g)}"
                    + _where(g, expected, TOL[case.dtype])), got
    return None, got


def _close(got, expected, tol) -> bool:
    """Equal up to ``tol`` relative to each entry and to the largest expected magnitude."""
    scale = float(np.max(np.abs(expected))) if np.size(expected) else 0.0
    return bool(np.allclose(got, expected, rtol=tol, atol=tol * (scale if scale > 0 else 1.0)))


def _like(got, candidate, case, factor: float = 10.0) -> bool:
    """Whether ``got`` matches a mistaken ``candidate`` (hints only; a looser tolerance)."""
    candidate = np.asarray(candidate, dtype=np.float64)
    return (candidate.shape == got.shape and bool(np.all(np.isfinite(candidate)))
            and _close(got, candidate, factor * TOL[case.dtype]))


def _where(got, expected, tol) -> str:
    """The first wrong entry, when the previews do not already show it."""
    if got.ndim == 0:
        return ""
    scale = float(np.max(np.abs(expected))) or 1.0
    wrong = ~np.isclose(got, expected, rtol=tol, atol=tol * scale)
    index = np.unravel_index(int(np.argmax(wrong)), got.shape)
    if np.ravel_multi_index(index, got.shape) < 4:
        return ""  # already visible in the previews
    at = ", ".join(str(int(i)) for i in index)
    return f"; first wrong entry [{at}]: expected {expected[index]:.6g}, got {got[index]:.6g}"


def _first_nonfinite(got, expected) -> str:
    """Where the first NaN or inf is, when the previews do not already show it."""
    if got.ndim == 0:
        return ""
    index = np.unravel_index(int(np.argmax(~np.isfinite(got))), got.shape)
    if np.ravel_multi_index(index, got.shape) < 4:
        return " (NaN or inf)"
    at = ", ".join(str(int(i)) for i in index)
    return f"; first NaN or inf at [{at}]: expected {expected[index]:.6g}, got {got[index]}"


def _preview(a, k: int = 4) -> str:
    """The first ``k`` numbers of ``a``, short enough for one line."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    flat = a.ravel()
    items = ", ".join(f"{v:.5g}" for v in flat[:k])
    return f"[{items}{', …' if flat.size > k else ''}]"


def _describe(o) -> str:
    if isinstance(o, np.ndarray):
        return f"an array of shape {o.shape}"
    if isinstance(o, tuple | list):
        return f"a {type(o).__name__} of length {len(o)}"
    return f"a {type(o).__name__}"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _hint_line(hint: str | None) -> str:
    return f"\n  hint: {hint}" if hint else ""


def _crash_hint(err: Exception) -> str | None:
    text = str(err)
    if "broadcast" in text:
        return ("shapes did not broadcast: keep the reduced axis with keepdims=True, "
                "e.g. np.max(z, axis=-1, keepdims=True) has shape (N, 1)")
    if "matmul" in text or "aligned" in text:
        return "the inner sizes of a matrix product must agree: is a .T missing or extra?"
    return None


def _say(text: str) -> None:
    """Print, falling back to ASCII where the console cannot show ✓, ✗, τ (old Windows)."""
    try:
        print(text)
    except UnicodeEncodeError:
        for old, new in (("✓", "PASS"), ("✗", "FAIL"), ("τ", "tau"), ("…", "..."),
                         ("±", "+-"), ("≤", "<="), ("→", "->"), ("‖", "|")):
            text = text.replace(old, new)
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        print(text.encode(encoding, "replace").decode(encoding))


def _args(*arrays, dtype=np.float64):
    # copies: a case never shares memory with worked_example's module-level arrays
    return tuple(np.array(a, dtype=dtype) for a in arrays)


def _f64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def _rng(seed):
    # One fixed seed per case: the cases (and so the verdicts) never change between runs.
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------
# L2 normalization
# ---------------------------------------------------------------------------

def _ref_l2_normalize(x):
    return (_l2_normalize(np.asarray(x, dtype=np.float64))[0],)


def _l2_inputs():
    """Inputs shared by the forward and backward checks: (name, x)."""
    r = _rng(1)
    return [
        ("worked example: the page's text embeddings T", worked_example.TEXT_EMBEDS),
        ("non-square (5 rows, 3 columns)", r.standard_normal((5, 3))),
        ("non-square (2 rows, 7 columns)", r.standard_normal((2, 7))),
        ("rows of very different lengths (0.5 to 3000)",
         r.standard_normal((4, 3)) * np.array([[0.5], [3000.0], [1.0], [40.0]])),
        ("float32 input", r.standard_normal((4, 6)).astype(np.float32)),
        ("batch of one", r.standard_normal((1, 4))),
    ]


def check_l2_normalize(student_fn, *, verbose: bool = False, quiet: bool = False) -> bool:
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
    cases = [_Case(name, _args(x, dtype=x.dtype), _ref_l2_normalize(x), np.dtype(x.dtype))
             for name, x in _l2_inputs()]
    x = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])
    cases.insert(1, _Case("an all-zero row", (x,), _ref_l2_normalize(x), np.dtype(np.float64)))
    return _run("check_l2_normalize", student_fn, cases, labels=("y",),
                hint=_hint_l2_normalize, nonfinite_hint=_nonfinite_l2_normalize,
                verbose=verbose, quiet=quiet)


def _nonfinite_l2_normalize(case, got):
    (x,) = _f64(*case.args)
    if np.any(np.all(x == 0, axis=-1)):
        return ("an all-zero row has no direction: divide by np.maximum(norm, 1e-12) "
                "so it stays zero instead of 0/0 = NaN")
    return "NaN or inf in the output: check the norm you divide by"


def _hint_l2_normalize(case, got):
    (x,) = _f64(*case.args)
    (y,) = got
    with np.errstate(all="ignore"):
        if _like(y, x / np.linalg.norm(x, axis=0, keepdims=True), case):
            return "check the axis: each row (axis=-1) should get length 1, not each column"
        if _like(y, x / np.linalg.norm(x), case):
            return ("divide each row by its own norm, np.linalg.norm(x, axis=-1, keepdims=True), "
                    "not by the norm of the whole matrix")
        if _like(y, x / np.sum(x * x, axis=-1, keepdims=True), case):
            return "take the square root: the norm is np.sqrt(np.sum(x**2, axis=-1))"
        if _like(y, x / np.sum(np.abs(x), axis=-1, keepdims=True), case):
            return "that is the L1 norm; CLIP uses the Euclidean (L2) norm"
    return "every row of the result should have length 1 (check np.linalg.norm(y, axis=-1))"


def _ref_l2_normalize_backward(dy, x):
    dy, x = _f64(dy, x)
    _, cache = _l2_normalize(x)
    return (_l2_normalize_backward(dy, cache),)


def check_l2_normalize_backward(student_fn, *, verbose: bool = False,
                                quiet: bool = False) -> bool:
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
        dy = _rng(100 + seed).standard_normal(x.shape).astype(x.dtype)
        cases.append(_Case(name + ", random dy", _args(dy, x, dtype=x.dtype),
                           _ref_l2_normalize_backward(dy, x), np.dtype(x.dtype)))
    return _run("check_l2_normalize_backward", student_fn, cases, labels=("dx",),
                hint=_hint_l2_normalize_backward, verbose=verbose, quiet=quiet)


def _hint_l2_normalize_backward(case, got):
    dy, x = _f64(*case.args)
    (dx,) = got
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    y = x / norm
    if _like(dx, dy / norm, case):
        return ("the projection term is missing: subtract y * (y·dy) (row by row) before "
                "dividing by the norm; stretching x along y does not move y")
    if _like(dx, dy - y * np.sum(y * dy, axis=-1, keepdims=True), case):
        return "divide by the norm ‖x‖ at the end: y = x / ‖x‖ scales gradients by 1/‖x‖"
    if _like(dx, (dy - x * np.sum(x * dy, axis=-1, keepdims=True)) / norm, case):
        return "project onto the normalized y = x / ‖x‖, not onto x itself"
    if _like(dx, (dy - y * np.sum(y * dy, axis=0, keepdims=True)) / norm, case):
        return "the dot product y·dy is one number per row: np.sum(y * dy, axis=-1, keepdims=True)"
    if _like(dx, -_ref_l2_normalize_backward(dy, x)[0], case):
        return "the sign is flipped"
    return None


# ---------------------------------------------------------------------------
# Softmax and log-softmax
# ---------------------------------------------------------------------------

def _softmax_inputs():
    """Logits for both softmax checks: (name, z)."""
    r = _rng(2)
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


def check_softmax(student_fn, *, verbose: bool = False, quiet: bool = False) -> bool:
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
    cases = [_Case(name, _args(z, dtype=z.dtype),
                   (_softmax(np.asarray(z, dtype=np.float64), axis=-1),), np.dtype(z.dtype))
             for name, z in _softmax_inputs()]
    return _run("check_softmax", student_fn, cases, labels=("p",), hint=_hint_softmax,
                nonfinite_hint=_nonfinite_softmax, verbose=verbose, quiet=quiet)


def _nonfinite_softmax(case, got):
    return ("the output has NaN or inf: subtract each row's own max before np.exp, "
            "np.max(z, axis=-1, keepdims=True), so that no exponent is above 0 "
            "(one max for the whole matrix lets rows far below it underflow to 0/0)")


def _hint_softmax(case, got):
    (z,) = _f64(*case.args)
    (p,) = got
    if _like(p, _softmax(z, axis=0), case):
        return "check the axis: each row (axis=-1) must sum to 1, not each column"
    if _like(p, _log_softmax(z, axis=-1), case):
        return "this is log-softmax; softmax returns the probabilities themselves"
    with np.errstate(all="ignore"):
        for e in (np.exp(z - np.max(z, axis=-1, keepdims=True)), np.exp(z - np.max(z))):
            if _like(p, e / np.sum(e), case):
                return ("divide by each row's sum (axis=-1, keepdims=True), "
                        "not the sum of everything")
    if not np.allclose(np.sum(p, axis=-1), 1.0, atol=1e-3):
        return "each row of p must sum to 1"
    return None


def check_log_softmax(student_fn, *, verbose: bool = False, quiet: bool = False) -> bool:
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
    cases = [_Case(name, _args(z, dtype=z.dtype),
                   (_log_softmax(np.asarray(z, dtype=np.float64), axis=-1),), np.dtype(z.dtype))
             for name, z in _softmax_inputs()]
    return _run("check_log_softmax", student_fn, cases, labels=("logp",),
                hint=_hint_log_softmax, nonfinite_hint=_nonfinite_log_softmax,
                verbose=verbose, quiet=quiet)


def _nonfinite_log_softmax(case, got):
    (logp,) = got
    if not np.any(np.isnan(logp)) and not np.any(logp == np.inf):
        return ("the output has -inf: np.log(softmax(z)) takes log(0) when a probability "
                "underflows; compute z - m - np.log(np.sum(np.exp(z - m), ...)) instead")
    return ("the output has NaN or inf: subtract each row's own max m before np.exp and "
            "add it back outside the log: log-sum-exp = m + log(sum(exp(z - m)))")


def _hint_log_softmax(case, got):
    (z,) = _f64(*case.args)
    (logp,) = got
    expected = case.expected[0]
    if _like(logp, _log_softmax(z, axis=0), case):
        return "check the axis: normalize along each row (axis=-1), not each column"
    if _like(logp, _softmax(z, axis=-1), case):
        return "this is softmax; log_softmax returns log-probabilities (all ≤ 0)"
    if _like(logp, expected / math.log(10), case):
        return "use the natural log, np.log, not np.log10"
    if _like(logp, z - np.max(z, axis=-1, keepdims=True), case):
        return "subtract the whole log-sum-exp, m + log(sum(exp(z - m))), not only the max m"
    return None


# ---------------------------------------------------------------------------
# The logit matrix
# ---------------------------------------------------------------------------

def _ref_logits(image, text, tau):
    image, text = _f64(image, text)
    return image @ text.T / tau  # (N, M), the page's S = I T^T / τ


def _embedding_inputs(paired: bool):
    """(name, image_embeds, text_embeds, τ) for the logit matrix and the loss checks."""
    r = _rng(3)
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


def check_logit_matrix(student_fn, *, verbose: bool = False, quiet: bool = False) -> bool:
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
    cases = [_Case(name, (*_args(i, t, dtype=i.dtype), tau), (_ref_logits(i, t, tau),),
                   np.dtype(i.dtype))
             for name, i, t, tau in _embedding_inputs(paired=False)]
    return _run("check_logit_matrix", student_fn, cases, labels=("logits_per_image",),
                hint=_hint_logit_matrix, verbose=verbose, quiet=quiet)


def _hint_logit_matrix(case, got):
    image, text = _f64(*case.args[:2])
    tau = case.args[2]
    (s,) = got
    expected = case.expected[0]
    if _like(s, expected * tau, case):
        return "divide by the temperature τ: S = I @ T.T / τ"
    if _like(s, expected * tau * tau, case):
        return "divide by τ, don't multiply: a small τ makes the logits large"
    if _like(s, expected.T, case):
        return ("rows are images, columns are texts: image_embeds @ text_embeds.T "
                "(your result is its transpose, logits_per_text)")
    with np.errstate(all="ignore"):
        unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        if _like(s, _ref_logits(unit(image), unit(text), tau), case):
            return "use the embeddings as given: normalizing them is a separate step"
    return None


# ---------------------------------------------------------------------------
# The symmetric CLIP loss and its gradients
# ---------------------------------------------------------------------------

def _loss_parts(image, text, tau):
    """Float64 pieces of the loss, for the references and the hints."""
    image, text = _f64(image, text)
    n = image.shape[0]
    s = image @ text.T / tau  # (N, N)
    eye = np.eye(n)
    loss_i2t = -float(np.mean(np.diagonal(_log_softmax(s, axis=-1))))  # image -> text, rows
    loss_t2i = -float(np.mean(np.diagonal(_log_softmax(s.T, axis=-1))))  # text -> image
    g_row = (_softmax(s, axis=-1) - eye) / n  # dCE(S)/dS
    g_col = (_softmax(s.T, axis=-1) - eye) / n  # dCE(S^T)/dS^T, not yet transposed
    return {"image": image, "text": text, "s": s, "loss_i2t": loss_i2t, "loss_t2i": loss_t2i,
            "g_row": g_row, "g_col": g_col, "g": (g_row + g_col.T) / 2}


def _ref_clip_loss(image, text, tau):
    """numclip's clip_loss on the embeddings as given, in float64: (loss, dimage, dtext)."""
    image, text = _f64(image, text)
    loss, grads = _clip_loss(image, text, -math.log(tau), normalize=False)
    return float(loss), grads["image_embeds"], grads["text_embeds"]


def check_clip_loss(student_fn, *, verbose: bool = False, quiet: bool = False) -> bool:
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
    cases = [_Case(name, (*_args(i, t, dtype=i.dtype), tau),
                   (np.asarray(_ref_clip_loss(i, t, tau)[0]),), np.dtype(i.dtype))
             for name, i, t, tau in _embedding_inputs(paired=True)]
    return _run("check_clip_loss", student_fn, cases, labels=("loss",), scalar=True,
                hint=_hint_clip_loss, nonfinite_hint=_nonfinite_clip_loss,
                verbose=verbose, quiet=quiet)


def _nonfinite_clip_loss(case, got):
    return ("the loss is NaN or inf: compute -log softmax as a stable log-softmax "
            "(subtract each row's max), not np.log(softmax(...)) or np.exp of raw logits")


def _hint_clip_loss(case, got):
    image, text = _f64(*case.args[:2])
    tau = case.args[2]
    (loss,) = got
    expected = case.expected[0]
    n = image.shape[0]
    parts = _loss_parts(image, text, tau)
    if _like(loss, parts["loss_i2t"], case) or _like(loss, parts["loss_t2i"], case):
        return ("that is one direction only: average the image→text loss (rows of S) "
                "and the text→image loss (columns of S)")
    if _like(loss, 2 * expected, case):
        return "average the two directions: (loss_i2t + loss_t2i) / 2"
    if n > 1 and _like(loss, n * expected, case):
        return "take the mean over the N pairs, not the sum"
    if _like(loss, expected / math.log(10), case):
        return "use the natural log, np.log, not np.log10"
    if any(_like(loss, v / math.log(10), case) for v in (parts["loss_i2t"], parts["loss_t2i"])):
        return ("that is the course page's number, one direction in log10: use the "
                "natural log, np.log, and average both directions")
    if _like(loss, -expected, case):
        return "the loss is -log p: mind the minus sign"
    if _like(loss, _ref_clip_loss(image, text, 1.0)[0], case):
        return "divide the logits by the temperature τ"
    if _like(loss, _ref_clip_loss(image, text, 1.0 / tau)[0], case):
        return "divide by τ, don't multiply"
    return None


def check_clip_loss_grads(student_fn, *, verbose: bool = False, quiet: bool = False) -> bool:
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
    cases = [_Case(name, (*_args(i, t, dtype=i.dtype), tau), _ref_clip_loss(i, t, tau)[1:],
                   np.dtype(i.dtype))
             for name, i, t, tau in _embedding_inputs(paired=True)]
    return _run("check_clip_loss_grads", student_fn, cases, labels=("dimage", "dtext"),
                hint=_hint_clip_loss_grads, nonfinite_hint=_nonfinite_clip_loss,
                verbose=verbose, quiet=quiet)


def _hint_clip_loss_grads(case, got):
    tau = case.args[2]
    p = _loss_parts(*case.args[:2], tau)
    image, text, n = p["image"], p["text"], p["image"].shape[0]
    dimage, dtext = got
    expected_i, expected_t = case.expected

    def both_like(di, dt):
        return _like(dimage, di, case) and _like(dtext, dt, case)

    if both_like(expected_t, expected_i):
        return "you returned (dtext, dimage): return (dimage, dtext)"
    for g in (p["g_row"], p["g_col"].T):
        if both_like(g @ text / tau, g.T @ image / tau):
            return ("that is one direction only: G averages (P_row - I)/N and the transpose "
                    "of (P_col - I)/N")
    if both_like(2 * expected_i, 2 * expected_t):
        return "average the two directions: G = (G_row + G_col.T) / 2"
    if n > 1 and both_like(n * expected_i, n * expected_t):
        return "the loss is a mean over N pairs: divide G by N"
    if both_like(expected_i * tau, expected_t * tau):
        return "S = I @ T.T / τ, so the chain rule brings a factor 1/τ into both gradients"
    if _like(dimage, expected_i, case) and _like(dtext, p["g"] @ image / tau, case):
        return "dtext needs G transposed: dtext = G.T @ image_embeds / τ"
    if both_like(-expected_i, -expected_t):
        return "the signs are flipped: these are gradients of the loss, not of -loss"
    return None


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
    _check_flags("check_all", verbose=verbose, quiet=quiet)
    passed = True
    for name, checker in CHECKERS.items():
        if name not in functions:
            if not quiet:
                _say(f"✗ check_{name}: no function called {name} yet")
            passed = False
            continue
        passed = checker(functions[name], verbose=verbose, quiet=quiet) and passed
    return passed
