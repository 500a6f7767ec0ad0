import math

import array_api_strict
import numpy as np
import pytest
from conftest import assert_refused, public_callables

from numclip import optim
from numclip.optim import MAX_LOGIT_SCALE, SGD, AdamW, clamp_logit_scale


def params_and_grads():
    params = {"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "logit_scale": np.asarray(2.0),
              "logit_bias": np.asarray(-10.0)}
    grads = {"w": np.array([[0.1, -0.2], [0.3, 0.0]]), "logit_scale": np.asarray(-0.5),
             "logit_bias": np.asarray(0.0)}
    return params, grads


@pytest.mark.parametrize("opt", [SGD(lr=0.1, weight_decay=0.5), AdamW(lr=0.1, weight_decay=0.5)])
def test_scale_and_bias_are_not_decayed(opt):
    params, grads = params_and_grads()
    opt.step(params, grads)
    assert float(params["logit_bias"]) == -10.0  # zero gradient and no decay: unchanged


def test_sgd_steps_by_hand():
    params, grads = params_and_grads()
    opt = SGD(lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step(params, grads)
    g = grads["w"] + 0.01 * np.array([[1.0, -2.0], [0.5, 3.0]])  # coupled L2 decay
    w1 = np.array([[1.0, -2.0], [0.5, 3.0]]) - 0.1 * g  # first step: buffer = gradient
    # float64, the operations of optim.SGD in its order: equal up to a fused multiply-add
    # (two roundings of values near |w|, 1e-15 = 4.5u)
    np.testing.assert_allclose(params["w"], w1, rtol=1e-15)
    assert float(params["logit_scale"]) == pytest.approx(2.0 + 0.05)  # no decay
    opt.step(params, grads)
    g2 = grads["w"] + 0.01 * w1
    np.testing.assert_allclose(params["w"], w1 - 0.1 * (0.9 * g + g2), rtol=1e-15)


def test_adamw_steps_by_hand():
    params, grads = params_and_grads()
    w0 = params["w"].copy()
    opt = AdamW(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    opt.step(params, grads)
    # step 1: m_hat = g and v_hat = g^2, so the update is lr * g / (|g| + eps) after the decay
    g = grads["w"]
    expected = w0 * (1 - 0.01 * 0.1) - 0.01 * g / (np.abs(g) + 1e-8)
    # float64: the same formula in another order, a dozen roundings of values no larger than
    # |w| (the step is lr |w|-relative): 1e-12 = 4500u
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)
    # eps shortens the scale's step by lr * eps / |g| = 2e-10, 1e-10 of 2.01
    assert float(params["logit_scale"]) == pytest.approx(2.0 + 0.01, rel=1e-9)  # no decay
    opt.step(params, grads)
    m = 0.9 * 0.1 * g + 0.1 * g
    v = 0.99 * 0.01 * g**2 + 0.01 * g**2
    expected2 = expected * (1 - 0.001) - 0.01 * (m / (1 - 0.81)) / (
        np.sqrt(v / (1 - 0.99**2)) + 1e-8)
    np.testing.assert_allclose(params["w"], expected2, rtol=1e-12)
    assert opt.state["step"] == 2


@pytest.mark.parametrize("opt", [SGD(lr=10.0), AdamW(lr=10.0)])
def test_logit_scale_is_clamped_at_log_100_after_every_step(opt):
    params, grads = params_and_grads()
    grads["logit_scale"] = np.asarray(-1.0)  # pushes the scale up
    for _ in range(3):
        opt.step(params, grads)
        assert float(params["logit_scale"]) <= MAX_LOGIT_SCALE
    assert math.exp(float(params["logit_scale"])) == pytest.approx(100.0)


def test_clamp_keeps_dtype():
    params = {"logit_scale": np.asarray(7.0, dtype=np.float32)}
    clamp_logit_scale(params)
    assert params["logit_scale"].dtype == np.float32
    assert float(params["logit_scale"]) == pytest.approx(math.log(100), rel=1e-6)  # float32: u


# ------------------------------------------------------------ bad input, one table

def f32_params_and_grads():
    params = {"w": np.array([[1.0, -2.0], [0.5, 3.0]], np.float32),
              "logit_scale": np.asarray(2.0, np.float32)}
    grads = {"w": np.array([[0.1, -0.2], [0.3, 0.0]], np.float32),
             "logit_scale": np.asarray(-0.5, np.float32)}
    return params, grads


def step_with(opt, **changes):
    """One step of ``opt`` with some gradients replaced (None removes the key)."""
    params, grads = f32_params_and_grads()
    grads = {k: v for k, v in (grads | changes).items() if v is not None}
    return lambda: opt().step(params, grads)


def step_on(opt, params):
    return lambda: opt().step(params, {k: np.zeros_like(v) for k, v in params.items()})


NAN, INF = np.float32(np.nan), np.float32(np.inf)
W = np.ones((2, 2), np.float32)
# (public name, call, expected error, words the message must contain)
BAD_INPUT = [
    ("SGD", lambda: SGD(lr=0.0), ValueError, ["lr must be positive"]),
    ("SGD", lambda: SGD(lr=-1.0), ValueError, ["lr must be positive"]),
    ("SGD", lambda: SGD(lr=math.inf), ValueError, ["lr must be positive and finite"]),
    ("SGD", lambda: SGD(lr="a"), TypeError, ["lr must be a real number", "str"]),
    ("SGD", lambda: SGD(lr=None), TypeError, ["lr must be a real number"]),
    ("SGD", lambda: SGD(lr=True), TypeError, ["lr must be a real number", "bool"]),
    ("SGD", lambda: SGD(lr=np.ones(1)), TypeError, ["lr must be a real number", "ndarray"]),
    ("SGD", lambda: SGD(momentum=1.0), ValueError, ["momentum must be in [0, 1)"]),
    ("SGD", lambda: SGD(momentum=-0.1), ValueError, ["momentum must be in [0, 1)"]),
    ("SGD", lambda: SGD(momentum="0.9"), TypeError, ["momentum must be a real number"]),
    ("SGD", lambda: SGD(weight_decay=-1.0), ValueError, ["weight_decay must be non-negative"]),
    ("SGD", lambda: SGD(weight_decay=math.nan), ValueError, ["weight_decay"]),
    ("SGD", lambda: SGD(no_decay="logit_scale"), TypeError,
     ["no_decay must be a tuple of parameter names", "str"]),
    ("SGD", lambda: SGD(no_decay=(1,)), TypeError, ["no_decay must hold parameter names"]),
    ("SGD", lambda: SGD(max_logit_scale=math.nan), ValueError, ["max_logit_scale must be"]),
    ("SGD", lambda: SGD(max_logit_scale=-math.inf), ValueError, ["max_logit_scale", "-inf"]),
    ("SGD", lambda: SGD(max_logit_scale="big"), TypeError, ["max_logit_scale", "str"]),
    ("SGD", lambda: SGD(state=None), TypeError, ["state must be a dict", "NoneType"]),
    ("SGD", lambda: SGD(state={"m.w": W}), ValueError, ["state keys must be", "'b.<name>'"]),
    ("SGD", lambda: SGD(state={"step": -1}), ValueError, ["state['step']", "-1"]),
    ("SGD", lambda: SGD(state={"step": 1.5}), TypeError, ["state['step']", "int"]),
    ("AdamW", lambda: AdamW(lr="a"), TypeError, ["lr must be a real number", "str"]),
    ("AdamW", lambda: AdamW(lr=math.nan), ValueError, ["lr must be positive"]),
    ("AdamW", lambda: AdamW(betas=0.9), TypeError, ["betas must be a pair", "float"]),
    ("AdamW", lambda: AdamW(betas="ab"), TypeError, ["betas must be a pair", "str"]),
    ("AdamW", lambda: AdamW(betas=(0.9,)), ValueError, ["betas must be a pair", "got 1 numbers"]),
    ("AdamW", lambda: AdamW(betas=(0.9, 1.0)), ValueError, ["betas must be a pair", "1.0"]),
    ("AdamW", lambda: AdamW(betas=(-0.1, 0.9)), ValueError, ["betas must be a pair"]),
    ("AdamW", lambda: AdamW(betas=("a", 0.9)), TypeError, ["betas[0] must be a real number"]),
    ("AdamW", lambda: AdamW(betas=(0.9, math.nan)), ValueError, ["betas must be a pair"]),
    ("AdamW", lambda: AdamW(eps=0.0), ValueError, ["eps must be positive"]),
    ("AdamW", lambda: AdamW(eps="a"), TypeError, ["eps must be a real number"]),
    ("AdamW", lambda: AdamW(weight_decay=-0.1), ValueError, ["weight_decay must be non-negative"]),
    ("AdamW", lambda: AdamW(no_decay=None), TypeError, ["no_decay must be a tuple"]),
    ("AdamW", lambda: AdamW(max_logit_scale=math.nan), ValueError, ["max_logit_scale"]),
    ("AdamW", lambda: AdamW(state={"b.w": W}), ValueError, ["state keys must be", "'m.<name>'"]),
    ("AdamW", lambda: AdamW(state=[]), TypeError, ["state must be a dict", "list"]),
    *[row for opt in (SGD, AdamW) for row in [
        (f"{opt.__name__}.step", lambda opt=opt: opt().step(None, {}), TypeError,
         ["params must be a dict", "NoneType"]),
        (f"{opt.__name__}.step", lambda opt=opt: opt().step({"w": W}, [W]), TypeError,
         ["grads must be a dict", "list"]),
        (f"{opt.__name__}.step", step_with(opt, logit_scale=None), ValueError,
         ["grads must have the keys of params", "logit_scale"]),
        (f"{opt.__name__}.step", step_with(opt, b=W), ValueError, ["grads must have the keys"]),
        (f"{opt.__name__}.step", step_with(opt, w=np.ones(3, np.float32)), ValueError,
         ["grads['w'] has shape (3,)", "params['w'] has (2, 2)"]),
        (f"{opt.__name__}.step", step_with(opt, w=np.ones((2, 2))), TypeError,
         ["grads['w'] has dtype float64 but params['w'] is float32"]),
        (f"{opt.__name__}.step", step_with(opt, logit_scale=np.asarray(0.5)), TypeError,
         ["grads['logit_scale'] has dtype float64"]),
        (f"{opt.__name__}.step", step_with(opt, w=[[0.0, 0.0], [0.0, 0.0]]), TypeError,
         ["grads['w'] must be an array", "list"]),
        (f"{opt.__name__}.step", step_with(opt, logit_scale=0.5), TypeError,
         ["grads['logit_scale'] must be an array", "float"]),
        (f"{opt.__name__}.step", step_with(opt, w=np.array([[0, NAN], [0, 0]], np.float32)),
         ValueError, ["gradient for 'w' contains NaN or infinite values"]),
        (f"{opt.__name__}.step", step_with(opt, w=np.full((2, 2), -INF)), ValueError,
         ["gradient for 'w' contains NaN or infinite values"]),
        (f"{opt.__name__}.step", step_with(opt, logit_scale=-INF), ValueError,
         ["gradient for 'logit_scale' contains NaN or infinite values"]),
        (f"{opt.__name__}.step", step_on(opt, {"w": np.ones((2, 2), np.int64)}), TypeError,
         ["params['w'] must have a real floating dtype", "int64"]),
        (f"{opt.__name__}.step", step_on(opt, {"w": [1.0, 2.0]}), TypeError,
         ["params['w'] must be an array", "list"]),
    ]],
    ("SGD.step", lambda: SGD(lr=1e30, weight_decay=1e10).step(*f32_params_and_grads()),
     ValueError, ["update of 'w' overflows to NaN or infinite values", "smaller lr"]),
    ("AdamW.step", lambda: AdamW(lr=1e30, weight_decay=1e10).step(*f32_params_and_grads()),
     ValueError, ["update of 'w' overflows", "lr = 1e+30"]),
    ("AdamW.step", lambda: AdamW(state={"m.w": np.zeros(3, np.float32)}).step(
        *f32_params_and_grads()), ValueError, ["optimizer state m.w does not match params['w']"]),
    ("AdamW.step", lambda: AdamW(state={"v.w": np.zeros((2, 2))}).step(*f32_params_and_grads()),
     ValueError, ["optimizer state v.w does not match", "float32"]),
    ("AdamW.step", lambda: AdamW(state={"m.bias": W}).step(*f32_params_and_grads()), ValueError,
     ["optimizer state ['m.bias'] belongs to parameters not in params"]),
    ("SGD.step", lambda: SGD(state={"b.w": 0.0}).step(*f32_params_and_grads()), ValueError,
     ["optimizer state b.w does not match"]),
    ("SGD.step", lambda: SGD(state={"b.w": W * np.nan}).step(*f32_params_and_grads()),
     ValueError, ["optimizer state b.w contains NaN or infinite values"]),
    ("AdamW.step", lambda: AdamW(state={"v.w": W * np.inf}).step(*f32_params_and_grads()),
     ValueError,
     ["optimizer state v.w contains NaN or infinite values"]),
    ("AdamW.step", lambda: AdamW().step({"w": W * np.inf}, {"w": W}), ValueError,
     ["params['w'] contains NaN or infinite values before the step"]),
    ("AdamW.step", lambda: AdamW().step({"w": W}, {"w": W * 1e21}), ValueError,
     ["optimizer state v.w overflows", "gradient for 'w' is too large"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale(f32_params_and_grads()[0], math.nan),
     ValueError, ["max_logit_scale must be a number or inf", "nan"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale(f32_params_and_grads()[0], -math.inf),
     ValueError, ["max_logit_scale"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale(f32_params_and_grads()[0], "4.6"),
     TypeError, ["max_logit_scale must be a real number", "str"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale(None), TypeError, ["params must be a dict"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale({"logit_scale": 7.0}), TypeError,
     ["params['logit_scale'] must be an array", "float"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale({"logit_scale": np.asarray(7)}), TypeError,
     ["params['logit_scale'] must have a real floating dtype"]),
    # a NaN or inf scale stayed NaN or inf, a (1,) one was clamped as if it were a scalar
    ("clamp_logit_scale", lambda: clamp_logit_scale({"logit_scale": np.asarray(np.nan)}),
     ValueError, ["params['logit_scale'] contains NaN or infinite values"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale({"logit_scale": np.asarray(np.inf)}),
     ValueError, ["params['logit_scale'] contains NaN or infinite values"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale({"logit_scale": np.ones(1)}), ValueError,
     ["params['logit_scale'] must be a 0-d array", "(1,)"]),
    ("clamp_logit_scale", lambda: clamp_logit_scale({"logit_scale": np.float16(5)}), TypeError,
     ["params['logit_scale'] has dtype float16"]),
    # an int too large for a float: OverflowError before
    *[(name, call, ValueError, [words]) for name, call, words in [
        ("SGD", lambda: SGD(lr=10**400), "lr must be positive and finite, got inf"),
        ("SGD", lambda: SGD(momentum=10**400), "momentum must be in [0, 1), got inf"),
        ("AdamW", lambda: AdamW(eps=10**400), "eps must be positive and finite"),
        ("AdamW", lambda: AdamW(weight_decay=10**400), "weight_decay must be non-negative"),
        ("AdamW", lambda: AdamW(betas=(10**400, 0.9)), "betas must be a pair"),
        ("AdamW", lambda: AdamW(max_logit_scale=-(10**400)), "max_logit_scale"),
        ("clamp_logit_scale",
         lambda: clamp_logit_scale(f32_params_and_grads()[0], -(10**400)), "max_logit_scale"),
    ]],
    *[(f"{opt.__name__}.step", step_with(opt, w=array_api_strict.asarray(W)), TypeError,
       ["grads['w'] (array_api_strict) and params['w'] (numpy) cannot be mixed"])
      for opt in (SGD, AdamW)],
]


@pytest.mark.filterwarnings("error")  # no RuntimeWarning from NaN arithmetic on the way
@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words):
    assert_refused(call, error, words)


def test_every_public_function_has_bad_input_rows():
    assert public_callables(optim) - {row[0] for row in BAD_INPUT} == set()


@pytest.mark.parametrize("opt", [SGD, AdamW])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_refused_step_changes_nothing(opt, bad):
    optimizer = opt(lr=0.1)
    params, grads = f32_params_and_grads()
    optimizer.step(params, grads)  # a first step fills the state
    before = {k: v.copy() for k, v in params.items()}
    state = {k: np.copy(v) for k, v in optimizer.state.items()}
    grads["w"] = grads["w"].copy()
    grads["w"][1, 0] = bad
    with pytest.raises(ValueError, match="gradient for 'w' contains NaN or infinite values"):
        optimizer.step(params, grads)
    for k in before:
        np.testing.assert_array_equal(params[k], before[k])
    assert optimizer.state.keys() == state.keys()
    for k in state:
        np.testing.assert_array_equal(optimizer.state[k], state[k])


# ------------------------------------------------------------ valid unusual input

@pytest.mark.parametrize("opt", [
    SGD(lr=np.float64(0.1), momentum=np.float64(0.9), weight_decay=np.float64(0.01)),
    AdamW(lr=np.float64(0.01), betas=[np.float64(0.9), 0.99], eps=np.float64(1e-8),
          weight_decay=np.float64(0.1), no_decay=["logit_scale"]),
])
def test_numpy_scalar_hyperparameters_keep_float32_params_float32(opt):
    params, grads = f32_params_and_grads()
    for _ in range(2):
        opt.step(params, grads)
        assert all(p.dtype == np.float32 for p in params.values()), params
    assert all(type(v) is float for v in (opt.lr, opt.weight_decay))


@pytest.mark.parametrize("opt", [SGD, AdamW])
def test_fortran_order_grads_and_numpy_scalar_grads_step_like_any_other(opt):
    params, grads = f32_params_and_grads()
    ref_params = {k: v.copy() for k, v in params.items()}
    opt().step(ref_params, grads)
    odd = {"w": np.asfortranarray(grads["w"]), "logit_scale": np.float32(grads["logit_scale"])}
    opt().step(params, odd)
    for k in params:
        np.testing.assert_array_equal(params[k], ref_params[k])


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_trajectories_match_torch_optim(name):
    # skipped here, not at the top: a module-level importorskip would skip every test above
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    target = rng.standard_normal((3, 4))
    params = {"w": rng.standard_normal((3, 4)), "logit_scale": np.asarray(1.0)}
    tw = torch.tensor(params["w"], requires_grad=True)
    ts = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    if name == "sgd":
        ours = SGD(lr=0.05, momentum=0.9, weight_decay=0.01)
        theirs = torch.optim.SGD([{"params": [tw], "weight_decay": 0.01},
                                  {"params": [ts], "weight_decay": 0.0}], lr=0.05, momentum=0.9)
    else:
        ours = AdamW(lr=0.05, betas=(0.8, 0.95), eps=1e-8, weight_decay=0.1)
        theirs = torch.optim.AdamW([{"params": [tw], "weight_decay": 0.1},
                                    {"params": [ts], "weight_decay": 0.0}], lr=0.05,
                                   betas=(0.8, 0.95), eps=1e-8)
    for _ in range(25):
        # a quadratic bowl for w and a linear pull on the scale
        grads = {"w": 2 * (params["w"] - target), "logit_scale": np.asarray(-0.3)}
        ours.step(params, grads)
        theirs.zero_grad()
        (((tw - torch.tensor(target)) ** 2).sum() - 0.3 * ts).backward()
        theirs.step()
        with torch.no_grad():
            ts.clamp_(max=math.log(100))
    # float64 on both sides, the same formulas in another order: ~10u a step, and the bowl
    # contracts what earlier steps left, so 25 steps stay far inside 1e-12 = 4500u
    np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert float(params["logit_scale"]) == pytest.approx(ts.item(), rel=1e-12)
