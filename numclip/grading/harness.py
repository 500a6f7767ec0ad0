"""The checkers' harness: run a student's function on named cases and print one verdict.

:mod:`numclip.checks` builds the cases (inputs and float64 expected outputs) and
calls :func:`run`; what :func:`run` checks, in order: the function does not crash
(a ``NotImplementedError`` is "not implemented yet", not a crash), does not modify
its inputs in place (it is called on copies, compared afterwards), returns the
expected shape and dtype (float32 in, float32 out), only finite values, and values
within :data:`TOL` of the expected ones.  A wrong value is passed to the checker's
hint (:mod:`numclip.grading.hints`), which may recognise the mistake.

Nothing here raises because of the student's code: every problem becomes a line
of the verdict and a ``False``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Tolerances relative to the largest expected magnitude. float32 keeps about 7
# digits, and a few roundings pile up; every typical mistake is off by far more.
TOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 2e-4}


@dataclass
class Case:
    """One named input to a student's function and the outputs expected from it."""

    name: str
    args: tuple  # arguments in the student's order: arrays and Python floats
    expected: tuple  # float64 reference outputs, one per output
    dtype: np.dtype  # the dtype every output must have (that of the input arrays)


def run(check_name: str, student_fn, cases: list[Case], *, labels: tuple[str, ...],
        scalar: bool = False, hint: Callable | None = None, nonfinite_hint: Callable | None = None,
        verbose: bool = False, quiet: bool = False) -> bool:
    """Run ``student_fn`` on every case, print one verdict, return whether all passed.

    ``labels`` names the outputs (one label: a single array, or the first element of a
    ``(y, cache)`` tuple); ``scalar`` asks for one number; ``hint(case, got)`` and
    ``nonfinite_hint(case, got)`` may explain wrong values (finite, or not), given the
    outputs as float64 arrays.
    """
    check_flags(check_name, verbose=verbose, quiet=quiet)
    show = (lambda text: None) if quiet else say
    fn_name = getattr(student_fn, "__name__", "your function")
    if not callable(student_fn):
        show(f"✗ {check_name}: expected a function, got {type(student_fn).__name__}")
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
            show(f"✗ {check_name}: not implemented yet ({fn_name} raised "
                 f"NotImplementedError{detail})")
            return False
        except Exception as err:
            show(f"✗ {check_name}: failed on '{case.name}': {fn_name} raised "
                 f"{type(err).__name__}: {_short(str(err))}" + _hint_line(_crash_hint(err)))
            return False
        for a, c in zip(case.args, copies, strict=True):
            if isinstance(a, np.ndarray) and not np.array_equal(a, c, equal_nan=True):
                show(f"✗ {check_name}: failed on '{case.name}': {fn_name} changed its input "
                     "in place" + _hint_line("work on new arrays (y = x / n), not in place "
                                             "(x /= n or x -= ...): the caller still needs x"))
                return False
        message, got = _check_outputs(out, case, labels, scalar)
        if message is None:
            if verbose:
                show(f"  ✓ {case.name}")
            continue
        extra = None
        if got is not None:  # right shapes: a recognisable mistake may explain the values
            finite = all(np.all(np.isfinite(g)) for g in got)
            extra = (nonfinite_hint(case, got) if not finite and nonfinite_hint
                     else hint(case, got) if hint else None)
        show(f"✗ {check_name}: failed on '{case.name}': {message}" + _hint_line(extra))
        return False
    show(f"✓ {check_name}: all {len(cases)} cases passed")
    return True


def check_flags(check_name: str, **flags) -> None:
    """Refuse a ``verbose=``/``quiet=`` that is not a bool, naming the checker."""
    for flag, value in flags.items():  # NumPy's bools count, as everywhere in numclip
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{check_name}: {flag} must be True or False, got {value!r}")


def _check_outputs(out, case: Case, labels, scalar):
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


def like(got, candidate, case, factor: float = 10.0) -> bool:
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


def say(text: str) -> None:
    """Print, falling back to ASCII where the console cannot show ✓, ✗, τ (old Windows)."""
    try:
        print(text)
    except UnicodeEncodeError:
        for old, new in (("✓", "PASS"), ("✗", "FAIL"), ("τ", "tau"), ("…", "..."),
                         ("±", "+-"), ("≤", "<="), ("→", "->"), ("‖", "|")):
            text = text.replace(old, new)
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        print(text.encode(encoding, "replace").decode(encoding))


def args(*arrays, dtype=np.float64):
    """Copies of ``arrays`` in ``dtype``, as a case's arguments."""
    # copies: a case never shares memory with worked_example's module-level arrays
    return tuple(np.array(a, dtype=dtype) for a in arrays)


def f64(*arrays):
    """``arrays`` as float64 NumPy arrays, for references and hints."""
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def rng(seed):
    """The generator of one case: a fixed seed, so the verdicts never change between runs."""
    return np.random.default_rng(seed)
