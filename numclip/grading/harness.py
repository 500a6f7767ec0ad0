"""The checkers' harness: run a student's function on named cases and print one verdict.

:mod:`numclip.checks` builds the cases (inputs and float64 expected outputs) and
calls :func:`run`; what :func:`run` checks, in order: the function is written (a
``NotImplementedError``, nbgrader's blank, and Otter-Grader's placeholder ``...``
are "not implemented yet", not a crash), does not crash (a crash names the line of
the student's code it came from), does not modify its inputs in place (it is called
on copies, compared afterwards), returns the expected shape and dtype (float32 in,
float32 out), only finite values, and values within :data:`TOL` of the expected
ones.  A wrong value is passed to the checker's hint (:mod:`numclip.grading.hints`),
which may recognise the mistake.

An autograder adds :class:`Rules` (:mod:`numclip.grading.autograde` builds them):
modules the function must not call into, the assignment's other functions given as
right answers (one question graded at a time), or the worked example only (a public
test).

Nothing here raises because of the student's code: every problem becomes a line
of the verdict and a ``False``.
"""

from __future__ import annotations

import contextlib
import dis
import importlib.util
import io
import os
import sys
import sysconfig
import traceback
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

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


# Every checker's first case is the course page's worked example: Otter's public test.
PUBLIC_CASE = "worked example"


@dataclass(frozen=True)
class Rules:
    """What an autograder adds to a check; the checkers' default is none of it.

    ``forbid``: modules (with their submodules) the student's function must not call
    into, directly or through anything it calls, e.g. ``("numclip", "torch")``: any
    call that runs their code fails the check, naming the function called.
    ``given``: names the student's function sees replaced while it is checked, e.g.
    ``{"softmax": right_softmax}``, so that a wrong earlier answer costs only its own
    question; calls made inside these functions are never forbidden.
    ``public``: check the worked example only (an autograder's public test).
    While rules apply, what the student's function prints is dropped, so that the
    verdict is the only output.
    """

    forbid: tuple[str, ...] = ()
    given: Mapping[str, Callable] = field(default_factory=dict)
    public: bool = False

    def __post_init__(self):
        if isinstance(self.forbid, str) or not all(isinstance(m, str) for m in self.forbid):
            raise TypeError(f"Rules: forbid must be a tuple of module names, got {self.forbid!r}")
        if not isinstance(self.given, Mapping) or not all(
                isinstance(k, str) and callable(v) for k, v in self.given.items()):
            raise TypeError("Rules: given must be a dict of name -> function, got "
                            f"{type(self.given).__name__}")
        if not isinstance(self.public, bool | np.bool_):
            raise TypeError(f"Rules: public must be True or False, got {self.public!r}")


def run(check_name: str, student_fn, cases: list[Case], *, labels: tuple[str, ...],
        scalar: bool = False, hint: Callable | None = None, nonfinite_hint: Callable | None = None,
        verbose: bool = False, quiet: bool = False, rules: Rules | None = None) -> bool:
    """Run ``student_fn`` on every case, print one verdict, return whether all passed.

    ``labels`` names the outputs (one label: a single array, or the first element of a
    ``(y, cache)`` tuple); ``scalar`` asks for one number; ``hint(case, got)`` and
    ``nonfinite_hint(case, got)`` may explain wrong values (finite, or not), given the
    outputs as float64 arrays; ``rules`` (:class:`Rules`) are an autograder's.
    """
    check_flags(check_name, verbose=verbose, quiet=quiet)
    if rules is not None and not isinstance(rules, Rules):
        raise TypeError(f"{check_name}: rules must be a numclip.grading.harness.Rules or None, "
                        f"got {type(rules).__name__}")
    rules = rules or Rules()
    show = (lambda text: None) if quiet else say
    fn_name = getattr(student_fn, "__name__", "your function")
    if not callable(student_fn):
        show(f"✗ {check_name}: expected a function, got {type(student_fn).__name__}")
        return False
    if _is_placeholder(student_fn):
        show(f"✗ {check_name}: not implemented yet ({fn_name}'s body is still a placeholder "
             "(`...` or `pass`): replace it with your code)")
        return False
    if rules.public:
        cases = [c for c in cases if c.name.startswith(PUBLIC_CASE)]
    call = _with_given(student_fn, rules.given)
    for case in cases:
        copies = tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a
                       for a in case.args)
        out, err, forbidden = _call(call, copies, rules)
        if forbidden is not None:
            show(f"✗ {check_name}: {fn_name} {forbidden}, which this assignment "
                 f"forbids ({', '.join(rules.forbid)}): write it with NumPy yourself")
            return False
        if err is not None:
            show(_raised(check_name, case, fn_name, err))
            return False
        if _holds_ellipsis(out):
            show(f"✗ {check_name}: not implemented yet ({fn_name} returned Otter's placeholder "
                 "`...`: replace it with your code)")
            return False
        for a, c in zip(case.args, copies, strict=True):
            if isinstance(a, np.ndarray) and not np.array_equal(a, c, equal_nan=True):
                show(f"✗ {check_name}: failed on '{case.name}': {fn_name} changed its input "
                     "in place" + _hint_line("work on new arrays, not in place (an augmented "
                                             "assignment such as /= or -= overwrites the "
                                             "caller's array, and the caller still needs it)"))
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


def _call(fn, args: tuple, rules: Rules):
    """Call the student's function under ``rules``: ``(output, exception, forbidden call)``,
    the last two None when there was none."""
    watch = _Watch(rules.forbid, rules.given)
    out = err = None
    try:
        # Overflow and 0/0 are reported in the verdict; NumPy's warnings would only clutter.
        with warnings.catch_warnings(), np.errstate(all="ignore"), _muted(rules):
            warnings.simplefilter("ignore")
            with watch:
                out = fn(*args)
    except Exception as caught:  # the student's code: every exception becomes a verdict
        err = caught
    return out, err, watch.found


def _raised(check_name: str, case: Case, fn_name: str, err: Exception) -> str:
    """The verdict on a call that raised: a blank that is not implemented yet
    (nbgrader's NotImplementedError, Otter's ``...`` computed with), or a crash shown
    at the student's line."""
    if isinstance(err, NotImplementedError):
        detail = f": {err}" if str(err) else ""
        return f"✗ {check_name}: not implemented yet ({fn_name} raised NotImplementedError{detail})"
    line = _student_line(err)
    if _is_ellipsis_error(err):
        return (f"✗ {check_name}: not implemented yet ({fn_name} still computes with Otter's "
                "placeholder `...`" + (f" {line}" if line else "") + ")")
    return (f"✗ {check_name}: failed on '{case.name}': {fn_name} raised "
            f"{type(err).__name__}: {_short(str(err))}" + (f"\n  {line}" if line else "")
            + _hint_line(_crash_hint(err)))


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
        return ("shapes did not broadcast: a reduction over each row must keep its axis "
                "(keepdims=True), so that one value per row has shape (N, 1), not (N,)")
    if "matmul" in text or "aligned" in text:
        return "the inner sizes of a matrix product must agree: is a .T missing or extra?"
    return None


# ---------------------------------------------------------------------------------------
# Placeholders, the student's line of a crash, forbidden calls, given functions
# ---------------------------------------------------------------------------------------

# Opcodes that do no work: a function made only of these and `return None` is a blank.
_NO_WORK = frozenset({"RESUME", "NOP", "CACHE", "EXTENDED_ARG", "NOT_TAKEN",
                      "COPY_FREE_VARS", "MAKE_CELL"})


def _is_placeholder(fn) -> bool:
    """Whether ``fn``'s body is only a docstring, ``...`` or ``pass`` (Otter's blank).

    Read from the bytecode, so it needs no source: such a body compiles to a bare
    ``return None``.  A lambda has no body to leave blank: ``lambda x: None`` is an
    answer (a wrong one), not a placeholder.
    """
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType) or code.co_name == "<lambda>":
        return False
    ops = [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in _NO_WORK]
    return ops in ([("LOAD_CONST", None), ("RETURN_VALUE", None)], [("RETURN_CONST", None)])


def _holds_ellipsis(out) -> bool:
    """Whether an output is, or holds, Otter's placeholder ``...`` (``return ...``)."""
    if out is Ellipsis:
        return True
    if isinstance(out, tuple | list):
        return any(_holds_ellipsis(o) for o in out)
    return isinstance(out, np.ndarray) and out.dtype == object and any(
        o is Ellipsis for o in out.ravel())


def _is_ellipsis_error(err: Exception) -> bool:
    """A TypeError from computing with ``...`` (``y = ...`` left in, then ``x / y``)."""
    return isinstance(err, TypeError) and "ellipsis" in str(err)


@lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    """Folders whose code is not the student's: Python's, installed packages', numclip's."""
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # numclip/
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs)


def _is_library(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return True
    return os.path.realpath(filename).startswith(_library_dirs())


def _student_line(err: BaseException) -> str | None:
    """Where in the student's own code ``err`` came from: ``at <place>, line N, in f: <line>``.

    The place is the notebook cell as IPython names it in tracebacks (``Cell In[7]``)
    or the file; the frame is the last one outside Python, installed packages and
    numclip (a crash deep inside NumPy is shown at the student's line that called it).
    None when no frame of the traceback is the student's.
    """
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not _is_library(f.filename)]
    if not frames:
        return None
    frame = frames[-1]
    text = (frame.line or "").strip()
    return (f"at {_place(frame.filename)}, line {frame.lineno}, in {frame.name}"
            + (f": {text}" if text else ""))


def _place(filename: str) -> str:
    """A cell's name as IPython shows it (``Cell In[7]``), else the file's name."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    try:
        named = shell.compile.format_code_name(filename) if shell else None
    except Exception:  # an IPython without that method: the file name is as good
        named = None
    return " ".join(named) if named else filename


@lru_cache(maxsize=16)
def _module_places(names: tuple[str, ...]) -> tuple[str, ...]:
    """Files and folders that hold the modules ``names``, found without importing them."""
    places = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a parent that cannot be imported: nothing to call
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            places += [os.path.join(os.path.realpath(d), "")
                       for d in spec.submodule_search_locations]
        elif spec.origin and os.path.isfile(spec.origin):
            places.append(os.path.realpath(spec.origin))
    return tuple(places)


class _Watch:
    """Notes the first call into a forbidden module made while the student's function runs.

    A profile hook (``sys.setprofile``) sees every Python call, however the function
    was reached (an alias, ``importlib``, a helper of the student's), and every call
    of a built-in such as ``torch.softmax``.  Calls made inside the functions of
    ``given`` are allowed: they are the assignment's own right answers.
    """

    def __init__(self, forbid: tuple[str, ...], given: Mapping[str, Callable]):
        self.names = tuple(forbid)
        self.places = _module_places(self.names) if forbid else ()
        self.allowed = {fn.__code__ for fn in given.values() if hasattr(fn, "__code__")}
        self.found: str | None = None
        self._seen: dict[str, bool] = {}

    def __enter__(self):
        if self.names:
            self._root = sys._getframe(1)
            self._previous = sys.getprofile()
            sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        if self.names:
            sys.setprofile(self._previous)
        return False

    def _forbidden_file(self, filename: str) -> bool:
        if filename not in self._seen:
            real = os.path.realpath(filename) if not filename.startswith("<") else filename
            self._seen[filename] = real.startswith(self.places)
        return self._seen[filename]

    def _forbidden_module(self, module) -> bool:
        return isinstance(module, str) and any(
            module == name or module.startswith(name + ".") for name in self.names)

    def _inside_given(self, frame) -> bool:
        while frame is not None and frame is not self._root:
            if frame.f_code in self.allowed:
                return True
            frame = frame.f_back
        return False

    def _profile(self, frame, event, arg):
        if self.found is not None:
            return
        if event == "call":
            code = frame.f_code
            if code is _Watch.__exit__.__code__ or not self._forbidden_file(code.co_filename):
                return
            if not self._inside_given(frame):
                module = frame.f_globals.get("__name__", "?")
                self.found = (f"imports {module}" if code.co_name == "<module>" else
                              f"calls {_public_name(module, code)}")
        elif event == "c_call":
            name = getattr(arg, "__name__", repr(arg))
            module, owner = getattr(arg, "__module__", None), getattr(arg, "__self__", None)
            if not self._forbidden_module(module):  # a method: its object's class tells
                module, name = type(owner).__module__, f"{type(owner).__name__}.{name}"
            if self._forbidden_module(module) and not self._inside_given(frame):
                self.found = f"calls {module}.{name}"


def _public_name(module: str, code: types.CodeType) -> str:
    """``scipy.special.log_softmax`` rather than ``scipy.special._logsumexp.log_softmax``:
    the nearest public module that exposes the function, else where it is defined."""
    name = getattr(code, "co_qualname", code.co_name)
    parts = module.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if parts[i].startswith("_") and not any(p.startswith("_") for p in parts[:i]):
            fn = getattr(sys.modules.get(parent), code.co_name, None)
            if getattr(fn, "__code__", None) is code:
                return f"{parent}.{name}"
    return f"{module}.{name}"


def _with_given(fn, given: Mapping[str, Callable]):
    """``fn`` seeing the functions of ``given`` in place of the globals of those names.

    A copy of the function with a copy of its globals: the student's namespace (a
    notebook's) is left as it was.  A callable that is not a plain function is used
    as it is.
    """
    if not given or not isinstance(fn, types.FunctionType):
        return fn
    scope = {**fn.__globals__, **given}
    copy = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__qualname__ = fn.__qualname__
    return copy


def _muted(rules: Rules):
    """While rules apply, the student's prints are dropped: the verdict is the output."""
    if rules == Rules():
        return contextlib.nullcontext()
    return contextlib.redirect_stdout(io.StringIO())


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
