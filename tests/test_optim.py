import math

import numpy as np
import pytest

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
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)
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
    assert float(params["logit_scale"]) == pytest.approx(math.log(100), rel=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: SGD(lr=0.0), "lr must be positive"),
    (lambda: SGD(lr=-1.0), "lr must be positive"),
    (lambda: SGD(momentum=1.0), "momentum must be in"),
    (lambda: AdamW(betas=(0.9, 1.0)), "betas must be"),
    (lambda: AdamW(weight_decay=-0.1), "weight_decay must be non-negative"),
    (lambda: AdamW(lr=math.nan), "lr must be positive"),
    (lambda: SGD(max_logit_scale=math.nan), "max_logit_scale must be"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_mismatched_grads_are_named():
    params, grads = params_and_grads()
    with pytest.raises(ValueError, match="grads must have the keys"):
        AdamW().step(params, {"w": grads["w"]})
    grads["w"] = np.ones(3)
    with pytest.raises(ValueError, match=r"grads\['w'\] has shape"):
        SGD().step(params, grads)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_trajectories_match_torch_optim(name):
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
    np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert float(params["logit_scale"]) == pytest.approx(ts.item(), rel=1e-12)
