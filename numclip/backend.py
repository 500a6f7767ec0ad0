"""Array-backend dispatch and input validation.

Every array function in numclip is written once against the Python array API
standard: it asks ``xp = array_namespace(x)`` for the module that owns ``x``
(NumPy, CuPy, array-api-strict, ...) and calls ``xp.exp``, ``xp.sum``, ...
from it.  Only functions that also exist in plain NumPy 2 are used, so a
student can replace ``xp`` with ``np`` and the code still runs.

The validators below turn bad input into a ``TypeError`` (the wrong kind of
thing) or a ``ValueError`` (the right kind, a wrong value) that names the
argument, instead of a NaN or a broadcasting surprise three functions later.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import array_api_compat
import numpy as np

__all__ = [
    "array_namespace",
    "array_namespace_of",
    "to_numpy",
    "as_numpy",
    "as_float_array",
    "NonFiniteError",
    "as_matrix",
    "as_embedding_pair",
    "as_real_scalar",
    "as_number",
    "as_log_scale",
    "as_int",
    "as_tile_size",
    "as_bool",
    "as_writable",
    "exp_scale",
    "scalar_like",
    "temperature_to_logit_scale",
    "logit_scale_to_temperature",
]


def array_namespace(*arrays):
    """Return the array-API namespace shared by ``arrays`` (Python scalars are ignored).

    NumPy arrays map to ``array_api_compat.numpy``, which behaves like NumPy 2
    itself; CuPy arrays to ``array_api_compat.cupy``.

    Raises:
        TypeError: no array among ``arrays``, something that is not an array
            (a list, None, a string), or arrays of different libraries.
    """
    arrays = [a for a in arrays if type(a) not in (bool, int, float)]  # np.float64 counts
    if not arrays:
        raise TypeError("array_namespace needs at least one array, got none "
                        "(Python scalars do not count)")
    for a in arrays:
        if not array_api_compat.is_array_api_obj(a):
            raise TypeError(f"array_namespace expects arrays (NumPy, CuPy, ...), "
                            f"got {type(a).__name__}")
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError:
        libraries = ", ".join(sorted({_library(a) for a in arrays}))
        raise TypeError(f"arrays from different libraries cannot be mixed ({libraries}); "
                        "move them into one library with its asarray()") from None


def array_namespace_of(named: dict):
    """:func:`array_namespace` of ``{name: array}``, with errors that name the arguments.

    ``array_namespace_of({"dy": dy, "y": y})`` says ``dy (numpy) and y
    (array_api_strict) cannot be mixed`` where :func:`array_namespace` could only say
    that some arrays were.  Python scalars (``int``, ``float``) are ignored.

    Raises:
        TypeError: ``named`` not a dict, a value that is not an array, or arrays of
            different libraries.
    """
    if not isinstance(named, Mapping):  # a list of arrays has no names to put in messages
        raise TypeError(f"named must be a dict {{name: array}}, got {type(named).__name__}")
    arrays = {k: a for k, a in named.items() if type(a) not in (bool, int, float)}
    for name, a in arrays.items():
        if not array_api_compat.is_array_api_obj(a):
            raise TypeError(f"{name} must be an array (NumPy, CuPy, ...), "
                            f"got {type(a).__name__}")
    if len({_library(a) for a in arrays.values()}) < 2:  # none at all is array_namespace's error
        return array_namespace(*arrays.values())
    parts = [f"{name} ({_library(a)})" for name, a in arrays.items()]
    raise TypeError(f"{', '.join(parts[:-1])} and {parts[-1]} cannot be mixed: they must come "
                    "from one array library; move one over with the other's asarray()")


def _library(a) -> str:
    """The top-level module of an array's type: ``numpy``, ``cupy``, ``array_api_strict``."""
    return type(a).__module__.split(".")[0]


def _check_name(name) -> str:
    """Every validator names its argument in its messages: ``name`` must be a str."""
    if not isinstance(name, str):
        raise TypeError("name must be a str (the argument's name, for messages), "
                        f"got {type(name).__name__}")
    return name


def to_numpy(x) -> np.ndarray:
    """Copy an array from any backend (CuPy on a GPU included) into a NumPy array.

    The result is C-contiguous, the form MPI buffers take (a NumPy array that already
    is comes back as itself, a strided view as a copy); a 0-d array stays 0-d.

    Raises:
        TypeError: ``x`` is not an array, or its library cannot hand it to NumPy.
    """
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x, order="C")
    if array_api_compat.is_cupy_array(x):
        return np.asarray(x.get(), order="C")
    if not array_api_compat.is_array_api_obj(x):
        raise TypeError(f"x must be an array, got {type(x).__name__}")
    try:
        host = np.from_dlpack(x)  # array-api-strict and other DLPack producers
    except (BufferError, RuntimeError, TypeError, ValueError) as err:  # e.g. a GPU tensor
        raise TypeError(f"x ({type(x).__name__}) cannot be copied to NumPy: {err}") from None
    return np.asarray(host, order="C")


def as_numpy(x, name: str) -> np.ndarray:
    """``x`` as a C-contiguous NumPy array: an array of any library goes through
    :func:`to_numpy`, a number or a (nested) sequence (list, tuple, range) through
    ``np.asarray``.

    For code that leaves the array API (figures, MPI buffers).  Only the container
    is checked here, not the values: a list holding ``None`` or strings gives an
    object or string array, for the caller to refuse or read (a figure reads
    ``None`` as an epoch without a measurement) by its dtype.

    Raises:
        TypeError: ``x`` is neither an array, nor a sequence, nor a number
            (``None``, a str, a dict, a set, a generator, ...).
        ValueError: a ragged list (rows of different lengths).
    """
    _check_name(name)
    if array_api_compat.is_array_api_obj(x):
        return to_numpy(x)
    if isinstance(x, str | bytes | bytearray) or not isinstance(x, Sequence | numbers.Number):
        raise TypeError(f"{name} must be an array (NumPy, CuPy, ...), a list of numbers or a "
                        f"number, got {type(x).__name__}")
    try:
        return np.asarray(x, order="C")
    except ValueError:  # rows of different lengths
        raise ValueError(f"{name} must be a rectangular list of numbers (every row of one "
                         "length)") from None


class NonFiniteError(ValueError):
    """A NaN or an infinity where finite numbers are needed (:func:`as_float_array`).

    A ValueError like any other refusal; its own class lets a caller that checked its
    inputs tell an overflow in its own arithmetic from a bad argument, without reading
    the message (:mod:`numclip.nn.encoders` does).
    """


def as_float_array(x, name: str):
    """Return ``x`` as a non-empty float32 or float64 array with only finite values.

    Lists and tuples of numbers become float64 NumPy arrays (so the course
    page's ``[[1, 0, 0], ...]`` works as typed).  Arrays keep their library and
    dtype: an integer or bool *array* is rejected rather than silently cast,
    because its dtype was somebody's choice.

    float16 is refused as well: its smallest normal number is 6e-5, so the
    1e-12 floor of a norm rounds to 0 (a zero row turns into NaN), and the
    sums of a loss lose most of their digits.  Convert to float32.

    Raises:
        TypeError: not an array or a list of real numbers; a dtype other than
            float32 or float64 (integer, bool, complex, object, float16, ...).
        ValueError: empty, a ragged list, or a NaN or infinite entry (that one a
            :class:`NonFiniteError`).
    """
    _check_name(name)
    if isinstance(x, list | tuple):
        x = _list_as_float64(x, name)
    if not array_api_compat.is_array_api_obj(x):
        raise TypeError(f"{name} must be an array (NumPy, CuPy, ...), "
                        f"got {type(x).__name__}")
    xp = array_namespace(x)
    if math.prod(x.shape) == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), "
                        f"got {x.dtype}; convert it first, e.g. x.astype(np.float32)")
    if xp.finfo(x.dtype).bits < 32:
        raise TypeError(f"{name} has dtype {x.dtype}, which numclip does not compute in "
                        "(a norm floor of 1e-12 rounds to 0 in it); use float32: "
                        "x.astype(np.float32)")
    if not bool(xp.all(xp.isfinite(x))):
        raise NonFiniteError(f"{name} contains NaN or infinite values")
    return x


def _list_as_float64(x, name):
    """A (nested) list of real numbers as a float64 array; bools, strings, None refused."""
    try:
        a = np.asarray(x)
    except ValueError:  # rows of different lengths
        raise ValueError(f"{name} must be a rectangular list of numbers (every row of one "
                         "length)") from None
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric: a list of real numbers, got a "
                        f"{type(x).__name__} that converts to dtype {a.dtype}")
    return np.asarray(a, dtype=np.float64)


def as_matrix(x, name: str):
    """Validate ``x`` as a non-empty 2-D float array of finite values, shape ``(N, D)``."""
    x = as_float_array(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, D), got shape {tuple(x.shape)}")
    return x


def as_embedding_pair(image_embeds, text_embeds, *, paired: bool = True):
    """Validate image and text embeddings: ``(N, D)`` and ``(M, D)``, one dtype.

    ``paired=True`` also asks ``M == N``: row ``i`` of each is one image-text pair.
    """
    paired = as_bool(paired, "paired")
    image_embeds = as_matrix(image_embeds, "image_embeds")
    text_embeds = as_matrix(text_embeds, "text_embeds")
    array_namespace_of({"image_embeds": image_embeds, "text_embeds": text_embeds})
    if paired and image_embeds.shape[0] != text_embeds.shape[0]:
        raise ValueError("image_embeds and text_embeds must hold the same number of pairs N, "
                         f"got {image_embeds.shape[0]} and {text_embeds.shape[0]}")
    if image_embeds.shape[1] != text_embeds.shape[1]:
        raise ValueError("image_embeds and text_embeds must have the same width D, got "
                         f"{image_embeds.shape[1]} and {text_embeds.shape[1]}")
    if image_embeds.dtype != text_embeds.dtype:
        raise TypeError("image_embeds and text_embeds must share a dtype, got "
                        f"{image_embeds.dtype} and {text_embeds.dtype}")
    return image_embeds, text_embeds


def as_real_scalar(value, name: str):
    """Validate a finite real scalar: a Python int or float, or a 0-d float array.

    A Python number comes back as a ``float``; an array (NumPy scalars such as
    ``np.float32(2.0)`` count as 0-d arrays) comes back as itself, so that a
    gradient can be returned in the form its parameter came in.  Other numbers
    (``Fraction``, ``Decimal``) are refused rather than half-supported: pass
    ``float(value)``.

    Raises:
        TypeError: a bool, str, None, list, Fraction, ..., or an array whose
            dtype is not float32/float64.
        ValueError: an array that is not 0-d, or a value that is not finite.
    """
    _check_name(name)
    if array_api_compat.is_array_api_obj(value):
        if value.ndim != 0:
            raise ValueError(f"{name} must be a scalar (0-d array), got shape "
                             f"{tuple(value.shape)}")
        return as_float_array(value, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = "; convert it with float()" if isinstance(value, numbers.Number) else ""
        raise TypeError(f"{name} must be a real number (int or float) or a 0-d float array, "
                        f"got {type(value).__name__}{hint}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float's range
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def as_number(value, name: str) -> float:
    """Validate a hyperparameter: a real number, returned as a Python ``float``.

    Python and NumPy ints and floats count (``np.float32(1e-3)`` too: the
    result is a Python float, so it cannot promote float32 arrays to float64),
    and so do other real numbers such as ``Fraction``; bools, strings, arrays
    and complex numbers do not.  An int too large for a float becomes ``inf``,
    for the caller's range check to refuse or accept.

    Raises:
        TypeError: not a real number.
    """
    _check_name(name)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range
        return math.inf if value > 0 else -math.inf


def as_log_scale(logit_scale, name: str = "logit_scale"):
    """Validate a log inverse temperature, as :func:`as_real_scalar` does.

    ``exp(logit_scale)`` must also be finite in float32, or every logit would be inf.
    """
    logit_scale = as_real_scalar(logit_scale, name)
    value = float(logit_scale)
    if value > math.log(np.finfo(np.float32).max):
        raise ValueError(f"{name} = {value} makes exp({name}) overflow float32; "
                         "CLIP clamps it at log(100) ≈ 4.605")
    return logit_scale


def as_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """Validate a count or an index: an int in ``[low, high]`` (either end may be open).

    NumPy integers count as ints and come back as Python ints (they go into JSON
    configs); bools and floats do not, even ``8.0``. The bounds may be NumPy ints too
    (a bound read from an array, ``a.max()``, often is one).

    Raises:
        TypeError: not an int (``2.5``, ``"8"``, ``True``).
        ValueError: an int outside ``[low, high]``.
    """
    _check_name(name)
    for bound, what in ((low, "low"), (high, "high")):
        if bound is not None and (isinstance(bound, bool | np.bool_)
                                  or not isinstance(bound, numbers.Integral)):
            raise TypeError(f"{what} (a bound for {name}) must be an int or None, "
                            f"got {type(bound).__name__}")
    low, high = (None if b is None else int(b) for b in (low, high))  # NumPy ints too
    if low is not None and high is not None and low > high:
        raise ValueError(f"the bounds for {name} are empty: low = {low} > high = {high}")
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        expected = (f"in [{low}, {high}]" if low is not None and high is not None
                    else f"at least {low}" if low is not None else f"at most {high}")
        raise ValueError(f"{name} must be {expected}, got {value}")
    return value


def as_tile_size(value, name: str):
    """Validate a tile height (rows per block or chunk): ``None`` or a positive int.

    NumPy integers count as ints; bools and floats do not, even ``8.0``.

    Raises:
        TypeError: not an int (``2.5``, ``"8"``, ``True``).
        ValueError: an int below 1.
    """
    _check_name(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value}")
    return int(value)


def as_bool(value, name: str) -> bool:
    """Validate an on/off option: ``True`` or ``False`` (NumPy's bools count).

    ``normalize="no"`` is truthy in Python; refusing it beats doing the opposite.
    """
    _check_name(name)
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def as_writable(x, name: str):
    """``x`` itself, for a function asked to write its result into it (``inplace=True``).

    Raises:
        ValueError: ``x`` is a read-only NumPy array (writing into a copy instead would
            quietly break the promise that the result is ``x``).
    """
    _check_name(name)
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        raise ValueError(f"{name} is read-only; inplace=True needs a writable array")
    return x


def exp_scale(logit_scale, like):
    """``exp(logit_scale)``, the scale of the logits, in a form that keeps ``like``'s dtype.

    A Python number gives a Python float (``math.exp``: float64 digits, and a Python
    float cannot promote a float32 array); a 0-d array gives a 0-d array of ``like``'s
    dtype, so that a float64 ``logit_scale`` does not turn float32 embeddings into
    float64 logits.

    Args:
        logit_scale: ``s = log(1/tau)``, as :func:`as_log_scale` takes it.
        like: the array the scale multiplies (the embeddings), float32 or float64.

    Raises:
        TypeError, ValueError: as :func:`as_log_scale` for ``logit_scale``; ``like``
            not a float array; the two from different array libraries.
    """
    logit_scale = as_log_scale(logit_scale)
    dtype = _float_dtype(like, "like")
    if type(logit_scale) is float:
        return math.exp(logit_scale)
    xp = array_namespace_of({"logit_scale": logit_scale, "like": like})
    return xp.exp(xp.astype(logit_scale, dtype))


def scalar_like(value, like):
    """``value`` in the form ``like`` came in: how a gradient matches its parameter.

    A Python int or float ``like`` gives a Python float; a 0-d array ``like`` (a NumPy
    scalar counts) gives a 0-d array of its library and dtype.  So ``dlogit_scale``
    comes back the way the caller passed ``logit_scale``.  ``value`` is converted,
    not judged: a NaN stays a NaN.

    Args:
        value: a real number, or a one-element array of ``like``'s library (``xp.sum(...)``).
        like: a Python int or float, or a 0-d float array.

    Raises:
        TypeError: ``like`` or ``value`` of another kind, or of different libraries.
        ValueError: ``like`` not 0-d, or ``value`` with more than one element.
    """
    if type(like) in (int, float):
        return float(_one_number(value))
    dtype = _float_dtype(like, "like")
    if like.ndim != 0:
        raise ValueError(f"like must be a Python float or a 0-d array, got shape "
                         f"{tuple(like.shape)}")
    value = _one_number(value)
    xp = array_namespace_of({"value": value, "like": like})
    return xp.astype(xp.reshape(xp.asarray(value), ()), dtype)


def _float_dtype(x, name):
    """The dtype of ``x``, which must be an array of float32 or float64."""
    if not array_api_compat.is_array_api_obj(x):
        raise TypeError(f"{name} must be an array (NumPy, CuPy, ...), got {type(x).__name__}")
    if not array_namespace(x).isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), "
                        f"got {x.dtype}")
    return x.dtype


def _one_number(value):
    """``value`` if it is a real number or a one-element real array, else a clear error."""
    if array_api_compat.is_array_api_obj(value):
        if math.prod(value.shape) != 1:
            raise ValueError(f"value must be one number, got an array of shape "
                             f"{tuple(value.shape)}")
        if not array_namespace(value).isdtype(value.dtype, ("real floating", "integral")):
            raise TypeError(f"value must be a real number, got dtype {value.dtype}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"value must be a real number or a one-element array, "
                        f"got {type(value).__name__}")
    return value


def temperature_to_logit_scale(tau) -> float:
    """Return ``log(1 / tau)``, the parametrisation CLIP learns (openai/CLIP).

    The course page's ``tau = 0.07`` gives ``logit_scale ≈ 2.6593``.  ``tau`` is a
    real number as :func:`as_real_scalar` takes it, positive and finite.
    """
    tau = float(as_real_scalar(tau, "tau"))
    if not tau > 0:
        raise ValueError(f"tau (the temperature) must be positive, got {tau}")
    return -math.log(tau)


def logit_scale_to_temperature(logit_scale) -> float:
    """Return ``tau = exp(-logit_scale)``, the inverse of :func:`temperature_to_logit_scale`.

    Raises ``ValueError`` where ``tau`` would not fit in a float (``logit_scale`` below
    about -709.78), as well as for what :func:`as_log_scale` refuses.
    """
    value = float(as_log_scale(logit_scale))
    try:
        return math.exp(-value)
    except OverflowError:
        raise ValueError(f"logit_scale = {value} gives tau = exp({-value}), which overflows a "
                         f"float; logit_scale must be at least {-math.log(np.finfo(float).max)}"
                         ) from None
