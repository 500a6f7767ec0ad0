"""The validators every core function shares, and the float16 policy across the core."""

import importlib
import math
from decimal import Decimal
from fractions import Fraction

import array_api_strict
import numpy as np
import pytest
from conftest import assert_table_covers, bad, check_bad_row

import numclip
from numclip import backend
from numclip.backend import (
    array_namespace,
    array_namespace_of,
    as_bool,
    as_embedding_pair,
    as_float_array,
    as_int,
    as_log_scale,
    as_matrix,
    as_number,
    as_numpy,
    as_real_scalar,
    as_tile_size,
    as_writable,
    exp_scale,
    logit_scale_to_temperature,
    scalar_like,
    temperature_to_logit_scale,
    to_numpy,
)

ONES = np.ones((2, 3))
READ_ONLY = np.ones(3)
READ_ONLY.flags.writeable = False
STRICT = array_api_strict.asarray([[1.0, 2.0]])

BAD = [
    bad(array_namespace, error=TypeError, words="at least one array"),
    bad(array_namespace, 1.0, True, error=TypeError, words="at least one array"),
    bad(array_namespace, None, error=TypeError, words=("expects arrays", "NoneType")),
    bad(array_namespace, [1.0, 2.0], error=TypeError, words=("expects arrays", "list")),
    bad(array_namespace, ONES, "x", error=TypeError, words=("expects arrays", "str")),
    bad(array_namespace, ONES, STRICT, error=TypeError,
        words=("cannot be mixed (array_api_strict, numpy)", "asarray")),
    bad(to_numpy, None, error=TypeError, words="x must be an array"),
    bad(to_numpy, [1.0], error=TypeError, words="x must be an array"),
    bad(to_numpy, "abc", error=TypeError, words="x must be an array"),
    bad(as_numpy, None, "history", error=TypeError,
        words=("history must be an array (NumPy, CuPy, ...), a list of numbers or a number",
               "NoneType")),
    bad(as_numpy, "abc", "h", error=TypeError, words=("h must be an array", "str")),
    bad(as_numpy, {"a": 1}, "h", error=TypeError, words=("h must be an array", "dict")),
    bad(as_numpy, {1.0, 2.0}, "h", error=TypeError, words=("h must be an array", "set")),
    bad(as_numpy, b"12", "h", error=TypeError, words=("h must be an array", "bytes")),
    bad(as_numpy, [[1.0, 2.0], [3.0]], "h", error=ValueError,
        words="h must be a rectangular list of numbers"),
    bad(as_numpy, [1.0], 3, error=TypeError, words="name must be a str"),
    bad(as_float_array, None, "x", error=TypeError, words="x must be an array"),
    bad(as_float_array, "abc", "x", error=TypeError, words="x must be an array"),
    bad(as_float_array, 3.0, "x", error=TypeError, words="x must be an array"),
    bad(as_float_array, ONES, 3, error=TypeError, words="name must be a str"),
    bad(as_float_array, [["a"]], "x", error=TypeError, words=("x must be numeric", "<U1")),
    bad(as_float_array, [True, False], "x", error=TypeError, words=("x must be numeric", "bool")),
    bad(as_float_array, [1 + 2j], "x", error=TypeError, words=("x must be numeric", "complex")),
    bad(as_float_array, [None, 1.0], "x", error=TypeError, words="x must be numeric"),
    bad(as_float_array, [[1.0, 2.0], [3.0]], "x", error=ValueError,
        words="x must be a rectangular list"),
    bad(as_float_array, np.ones(2, bool), "x", error=TypeError, words="real floating dtype"),
    bad(as_float_array, np.ones(2, complex), "x", error=TypeError, words="real floating dtype"),
    bad(as_float_array, np.ones(2, object), "x", error=TypeError, words="real floating dtype"),
    bad(as_float_array, np.ones(2, int), "x", error=TypeError, words="real floating dtype"),
    bad(as_float_array, np.ones(2, np.float16), "x", error=TypeError,
        words=("x has dtype float16", "use float32")),
    bad(as_float_array, np.zeros(0), "x", error=ValueError, words="x must be non-empty"),
    bad(as_float_array, np.array([np.nan]), "x", error=ValueError, words="x contains NaN"),
    bad(as_float_array, [math.inf], "x", error=ValueError, words="x contains NaN or infinite"),
    bad(as_matrix, np.ones(3), "m", error=ValueError, words="m must be 2-D with shape (N, D)"),
    bad(as_matrix, np.ones((1, 2, 3)), "m", error=ValueError, words="m must be 2-D"),
    bad(as_matrix, np.ones(()), "m", error=ValueError, words="m must be 2-D"),
    bad(as_embedding_pair, ONES, ONES, paired="yes", error=TypeError,
        words="paired must be True or False"),
    bad(as_embedding_pair, ONES, ONES, paired=None, error=TypeError,
        words="paired must be True or False"),
    bad(as_embedding_pair, ONES, np.ones((3, 3)), error=ValueError, words="same number of pairs"),
    bad(as_embedding_pair, ONES, np.ones((2, 4)), paired=False, error=ValueError,
        words="same width D"),
    bad(as_embedding_pair, ONES, ONES.astype(np.float32), error=TypeError, words="share a dtype"),
    bad(as_embedding_pair, array_api_strict.asarray(ONES), ONES, error=TypeError,
        words=("image_embeds (array_api_strict) and text_embeds (numpy)", "cannot be mixed")),
    bad(array_namespace_of, {"dy": ONES, "y": STRICT}, error=TypeError,
        words=("dy (numpy) and y (array_api_strict) cannot be mixed", "asarray")),
    bad(array_namespace_of, {"a": ONES, "b": ONES, "c": STRICT}, error=TypeError,
        words="a (numpy), b (numpy) and c (array_api_strict) cannot be mixed"),
    bad(array_namespace_of, {"pixels": [[1.0]]}, error=TypeError,
        words="pixels must be an array (NumPy, CuPy, ...), got list"),
    bad(array_namespace_of, {"s": 1.0}, error=TypeError, words="at least one array"),
    bad(array_namespace_of, None, error=TypeError,
        words=("named must be a dict", "NoneType")),
    bad(array_namespace_of, [ONES], error=TypeError, words=("named must be a dict", "list")),
    bad(as_number, True, "lr", error=TypeError, words="lr must be a real number, got bool"),
    bad(as_number, np.True_, "lr", error=TypeError, words="lr must be a real number"),
    bad(as_number, "1e-3", "lr", error=TypeError, words="lr must be a real number, got str"),
    bad(as_number, None, "lr", error=TypeError, words="lr must be a real number"),
    bad(as_number, np.ones(1), "lr", error=TypeError, words="lr must be a real number"),
    bad(as_number, 1 + 0j, "lr", error=TypeError, words="lr must be a real number"),
    bad(as_number, 1.0, None, error=TypeError, words="name must be a str"),
    bad(as_real_scalar, 1.0, None, error=TypeError, words="name must be a str"),
    bad(as_log_scale, 1.0, 3, error=TypeError, words="name must be a str"),
    bad(as_int, 3, ("k",), error=TypeError, words="name must be a str"),
    bad(as_int, 3, "k", "1", error=TypeError, words="low (a bound for k) must be an int"),
    bad(as_int, 3, "k", 0, 2.5, error=TypeError, words="high (a bound for k) must be an int"),
    bad(as_int, 3, "k", 5, 1, error=ValueError, words="the bounds for k are empty: low = 5"),
    bad(as_int, 3, "k", np.int64(4), error=ValueError, words="k must be at least 4, got 3"),
    bad(as_int, 3, "k", 0, np.int32(2), error=ValueError, words="k must be in [0, 2], got 3"),
    bad(as_int, 3, "k", np.True_, error=TypeError, words="low (a bound for k) must be an int"),
    bad(as_tile_size, 3, None, error=TypeError, words="name must be a str"),
    bad(as_bool, True, 0, error=TypeError, words="name must be a str"),
    bad(as_real_scalar, Fraction(1, 2), "s", error=TypeError,
        words=("s must be a real number", "Fraction", "float()")),
    bad(as_real_scalar, Decimal("0.5"), "s", error=TypeError, words=("Decimal", "float()")),
    bad(as_real_scalar, True, "s", error=TypeError, words="s must be a real number"),
    bad(as_real_scalar, np.True_, "s", error=TypeError, words="s must have a real floating"),
    bad(as_real_scalar, "1", "s", error=TypeError, words="s must be a real number"),
    bad(as_real_scalar, None, "s", error=TypeError, words="s must be a real number"),
    bad(as_real_scalar, [1.0], "s", error=TypeError, words="s must be a real number"),
    bad(as_real_scalar, 1 + 0j, "s", error=TypeError, words="s must be a real number"),
    bad(as_real_scalar, np.complex128(1), "s", error=TypeError, words="s must have a real float"),
    bad(as_real_scalar, np.ones(2), "s", error=ValueError, words="s must be a scalar (0-d array)"),
    bad(as_real_scalar, np.array(1), "s", error=TypeError, words="s must have a real floating"),
    bad(as_real_scalar, np.int64(1), "s", error=TypeError, words="s must have a real floating"),
    bad(as_real_scalar, np.float16(1), "s", error=TypeError, words=("float16", "float32")),
    bad(as_real_scalar, math.nan, "s", error=ValueError, words="s must be finite"),
    bad(as_real_scalar, -math.inf, "s", error=ValueError, words="s must be finite"),
    bad(as_real_scalar, 10**400, "s", error=ValueError, words="s must be finite"),
    bad(as_real_scalar, np.float64(np.nan), "s", error=ValueError, words="s contains NaN"),
    bad(as_log_scale, 1000.0, error=ValueError, words=("logit_scale = 1000.0", "overflow")),
    bad(as_log_scale, Fraction(3, 2), error=TypeError, words=("logit_scale", "float()")),
    bad(as_log_scale, "2.0", error=TypeError, words="logit_scale must be a real number"),
    bad(as_int, True, "k", error=TypeError, words="k must be an int, got bool"),
    bad(as_int, 2.0, "k", error=TypeError, words="k must be an int, got float"),
    bad(as_int, "3", "k", error=TypeError, words="k must be an int, got str"),
    bad(as_int, None, "k", error=TypeError, words="k must be an int, got NoneType"),
    bad(as_int, 0, "k", 1, error=ValueError, words="k must be at least 1, got 0"),
    bad(as_int, 5, "k", 1, 4, error=ValueError, words="k must be in [1, 4], got 5"),
    bad(as_int, 5, "k", None, 4, error=ValueError, words="k must be at most 4, got 5"),
    bad(as_tile_size, 2.5, "block_size", error=TypeError,
        words=("block_size must be a positive int or None", "float")),
    bad(as_tile_size, "8", "block_size", error=TypeError, words="block_size must be a positive"),
    bad(as_tile_size, True, "block_size", error=TypeError, words="block_size must be a positive"),
    bad(as_tile_size, np.float64(4), "chunk_size", error=TypeError,
        words="chunk_size must be a positive int"),
    bad(as_tile_size, 0, "block_size", error=ValueError, words="block_size must be a positive"),
    bad(as_tile_size, -3, "block_size", error=ValueError, words="block_size must be a positive"),
    bad(as_bool, "yes", "normalize", error=TypeError, words="normalize must be True or False"),
    bad(as_bool, 1, "normalize", error=TypeError, words="normalize must be True or False"),
    bad(as_bool, None, "normalize", error=TypeError, words="normalize must be True or False"),
    bad(as_writable, READ_ONLY, "x", error=ValueError,
        words=("x is read-only", "inplace=True needs a writable array")),
    bad(as_writable, np.ones(2), 7, error=TypeError, words="name must be a str"),
    bad(exp_scale, "2.0", ONES, error=TypeError, words="logit_scale must be a real number"),
    bad(exp_scale, 1000.0, ONES, error=ValueError, words=("logit_scale = 1000.0", "overflow")),
    bad(exp_scale, 2.0, [1.0], error=TypeError, words="like must be an array"),
    bad(exp_scale, 2.0, np.ones(2, int), error=TypeError,
        words="like must have a real floating dtype"),
    bad(exp_scale, np.float64(2.0), STRICT, error=TypeError,
        words="logit_scale (numpy) and like (array_api_strict) cannot be mixed"),
    bad(scalar_like, "1", 1.0, error=TypeError, words=("value must be a real number", "str")),
    bad(scalar_like, True, 1.0, error=TypeError, words=("value must be a real number", "bool")),
    bad(scalar_like, None, np.float32(1.0), error=TypeError, words="value must be a real number"),
    bad(scalar_like, np.ones(3), 1.0, error=ValueError,
        words="value must be one number, got an array of shape (3,)"),
    bad(scalar_like, np.array(True), 1.0, error=TypeError,
        words="value must be a real number, got dtype bool"),
    bad(scalar_like, 1.0, np.ones(2), error=ValueError,
        words="like must be a Python float or a 0-d array, got shape (2,)"),
    bad(scalar_like, 1.0, "s", error=TypeError, words="like must be an array"),
    bad(scalar_like, 1.0, np.array(1), error=TypeError, words="like must have a real floating"),
    bad(scalar_like, np.float64(1.0), array_api_strict.asarray(1.0), error=TypeError,
        words="value (numpy) and like (array_api_strict) cannot be mixed"),
    bad(temperature_to_logit_scale, 0.0, error=ValueError, words="tau (the temperature) must be"),
    bad(temperature_to_logit_scale, -0.07, error=ValueError, words="tau (the temperature) must"),
    bad(temperature_to_logit_scale, math.inf, error=ValueError, words="tau must be finite"),
    bad(temperature_to_logit_scale, math.nan, error=ValueError, words="tau must be finite"),
    bad(temperature_to_logit_scale, "0.07", error=TypeError, words="tau must be a real number"),
    bad(temperature_to_logit_scale, None, error=TypeError, words="tau must be a real number"),
    bad(temperature_to_logit_scale, Fraction(7, 100), error=TypeError,
        words=("tau must be a real number", "float()")),
    bad(temperature_to_logit_scale, np.ones(2), error=ValueError, words="tau must be a scalar"),
    bad(logit_scale_to_temperature, -1000.0, error=ValueError,
        words=("logit_scale = -1000.0", "overflows", "at least -709.78")),
    bad(logit_scale_to_temperature, 1000.0, error=ValueError, words=("logit_scale", "overflow")),
    bad(logit_scale_to_temperature, math.nan, error=ValueError, words="logit_scale must be"),
    bad(logit_scale_to_temperature, "hot", error=TypeError, words="logit_scale must be a real"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(backend, BAD)


def test_valid_unusual_input_passes_through():
    x = np.arange(12.0).reshape(3, 4)
    for view in (np.asfortranarray(x), x[:, ::2], x[::-1], x.T):
        assert as_float_array(view, "x") is view  # no copy, no surprise
    np.testing.assert_array_equal(as_matrix([[1, 2], [3, 4]], "m"), [[1.0, 2.0], [3.0, 4.0]])
    assert as_float_array(((1, 2),), "x").dtype == np.float64
    assert array_namespace(x, 1.0, 2) is array_namespace(x)  # Python scalars do not count
    np.testing.assert_array_equal(to_numpy(array_api_strict.asarray(x)), x)
    assert to_numpy(np.float32(2.0)).dtype == np.float32


def test_to_numpy_is_c_contiguous_as_mpi_buffers_need():
    """distributed.py hands to_numpy's result to MPI: a Fortran-order or strided array
    must come back C-contiguous (a copy), a C-contiguous one as itself, 0-d as 0-d."""
    x = np.arange(12.0).reshape(3, 4)
    views = [np.asfortranarray(x), x[:, ::2], x[::-1], x.T]
    pairs = [(v, v) for v in views] + [(array_api_strict.asarray(x)[:, ::2], x[:, ::2])]
    for view, same in pairs:
        host = to_numpy(view)
        assert host.flags.c_contiguous
        np.testing.assert_array_equal(host, same)
    assert to_numpy(x) is x
    assert to_numpy(np.float32(2.0)).shape == () and to_numpy(np.array(2.0)).shape == ()


def test_as_numpy_takes_arrays_lists_and_numbers_and_leaves_the_values_to_the_caller():
    x = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    for given in (x, x.tolist(), tuple(map(tuple, x.tolist())), array_api_strict.asarray(x),
                  [range(3), range(3, 6)]):
        got = as_numpy(given, "x")
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, x)
    assert as_numpy(2.5, "x").shape == () and as_numpy(np.float32(2.5), "x").dtype == np.float32
    assert as_numpy([None, 0.5], "x").dtype == object  # a figure reads None as "not measured"
    assert as_numpy(["a"], "x").dtype.kind == "U"


def test_scalars_keep_the_form_they_came_in():
    assert as_real_scalar(2, "s") == 2.0 and type(as_real_scalar(2, "s")) is float
    for value in (np.float32(2.0), np.array(2.0), array_api_strict.asarray(2.0)):
        assert as_real_scalar(value, "s") is value
    assert as_tile_size(np.int64(3), "b") == 3 and type(as_tile_size(np.int64(3), "b")) is int
    assert as_tile_size(None, "b") is None
    assert as_int(np.uint8(4), "k", 1, 4) == 4 and type(as_int(np.uint8(4), "k")) is int
    assert as_bool(np.True_, "flag") is True and as_bool(False, "flag") is False
    assert as_int(3, "k", np.int64(0), np.uint8(5)) == 3  # NumPy ints as bounds, too


def test_the_learned_scale_and_its_gradient_keep_the_form_they_came_in():
    """exp_scale and scalar_like are how the losses keep float32 float32 and hand a
    gradient back in the form its parameter was given."""
    f32 = np.ones((2, 3), np.float32)
    assert exp_scale(2, f32) == math.exp(2.0) and type(exp_scale(2, f32)) is float
    for logit_scale in (np.float64(2.0), np.array(2.0), np.float32(2.0)):
        scale = exp_scale(logit_scale, f32)
        assert scale.shape == () and scale.dtype == np.float32  # not promoted to float64
    strict = array_api_strict.asarray(f32)
    scale = exp_scale(array_api_strict.asarray(2.0), strict)
    assert array_namespace(scale) is array_namespace(strict) and scale.dtype == strict.dtype
    assert scalar_like(np.float32(3.0), 1.0) == 3.0 and type(scalar_like(np.float32(3), 1)) is float
    for like in (np.float32(1.0), np.array(1.0), array_api_strict.asarray(1.0)):
        value = array_namespace(like).asarray([3.0])  # one element, any shape
        got = scalar_like(value, like)
        assert got.shape == () and got.dtype == like.dtype and float(got) == 3.0
        assert array_namespace(got) is array_namespace(like)
    assert math.isnan(scalar_like(math.nan, 1.0))  # converted, not judged


def test_hyperparameters_become_python_floats():
    for value in (np.float32(1e-3), np.float64(1e-3), np.int64(2), 2, Fraction(1, 4)):
        assert type(as_number(value, "lr")) is float
    assert as_number(np.float32(0.5), "lr") == 0.5
    assert as_number(10**400, "lr") == math.inf and as_number(-(10**400), "lr") == -math.inf
    assert array_namespace_of({"x": ONES, "s": 2.0}) is array_namespace(ONES)


def test_temperature_conversions_accept_the_same_scalars():
    for tau in (0.07, np.float32(0.07), np.array(0.07), array_api_strict.asarray(0.07)):
        assert temperature_to_logit_scale(tau) == pytest.approx(math.log(1 / 0.07), rel=1e-7)
    assert temperature_to_logit_scale(1) == 0.0
    # the smallest logit_scale whose temperature a float still holds
    assert math.isfinite(logit_scale_to_temperature(-709.0))


# --------------------------------------------------------------------- the float16 policy
# float16 cannot hold the 1e-12 norm floor (it rounds to 0, so a zero row became NaN and
# clip_loss returned NaN) and keeps 3 digits in a sum: every core function refuses it with
# a TypeError that says to use float32, through the one validator they share.

H = np.zeros((2, 3), np.float16)
P16 = np.full((2, 3), 1 / 3, np.float16)


def _calls_with_float16():
    _, cache = numclip.l2_normalize(np.ones((2, 3)))
    _, lcache = numclip.logit_matrix(np.ones((2, 3)), np.ones((2, 3)), 0.0)
    return {
        "l2_normalize": lambda: numclip.l2_normalize(H),
        "l2_normalize_backward": lambda: numclip.l2_normalize_backward(H, cache),
        "logit_matrix": lambda: numclip.logit_matrix(H, H, 0.0),
        "logit_matrix_backward": lambda: numclip.logit_matrix_backward(
            np.zeros((2, 2), np.float16), lcache),
        "logsumexp": lambda: numclip.logsumexp(H),
        "softmax": lambda: numclip.softmax(H),
        "log_softmax": lambda: numclip.log_softmax(H),
        "softmax_backward": lambda: numclip.softmax_backward(P16, P16),
        "log_softmax_backward": lambda: numclip.log_softmax_backward(H, H),
        "cross_entropy": lambda: numclip.cross_entropy(H, [0, 1]),
        "clip_loss": lambda: numclip.clip_loss(H, H, 2.0),
        "clip_loss_reference": lambda: numclip.clip_loss_reference(H, H, 2.0),
        "negclip_loss": lambda: numclip.negclip_loss(H, H, H[:0], 2.0),
        "siglip_loss": lambda: numclip.siglip_loss(H, H, 2.0, -10.0),
        "siglip_loss bias": lambda: numclip.siglip_loss(np.ones((2, 3)), np.ones((2, 3)), 2.0,
                                                        np.float16(-10.0)),
        "logit_scale": lambda: numclip.clip_loss(np.ones((2, 3)), np.ones((2, 3)),
                                                 np.float16(2.0)),
    }


@pytest.mark.parametrize("name", sorted(_calls_with_float16()))
def test_float16_is_refused_everywhere_with_the_way_out(name):
    with pytest.raises(TypeError, match=r"float16.*use float32"):
        _calls_with_float16()[name]()


def test_the_float16_policy_covers_every_core_array_function():
    from numclip import losses, normalize, siglip, similarity

    softmax = importlib.import_module("numclip.softmax")  # numclip.softmax is the function
    core = {name for m in (normalize, similarity, softmax, losses, siglip) for name in m.__all__
            if callable(getattr(m, name))}
    assert core <= set(_calls_with_float16())


# --------------------------------------------------------------------- import numclip

def test_import_numclip_loads_no_heavy_or_optional_package():
    """`import numclip` stays fast and works without the optional packages: SciPy's linalg
    (two thirds of the import time, until fused loaded it lazily), matplotlib, tqdm,
    threadpoolctl, CuPy, mpi4py and the test-only array-api-strict load on first use."""
    import subprocess
    import sys

    heavy = ("scipy", "matplotlib", "tqdm", "threadpoolctl", "cupy", "mpi4py",
             "array_api_strict")
    code = ("import sys, numclip; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert out == "", f"import numclip loaded {out}"
