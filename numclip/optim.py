"""Optimizers written out by hand: SGD with momentum and AdamW.

Both update a dict of parameters from a dict of gradients under the same
keys, keep their state in a flat dict of arrays (so a checkpoint can store
it), and clamp ``logit_scale`` after every step so that
``exp(logit_scale) <= 100``, as the CLIP paper does to keep training stable.
``logit_scale`` gets no weight decay: shrinking it would only raise the
temperature, which is not what regularisation is for; neither does SigLIP's
``logit_bias`` (open_clip decays no parameter with fewer than 2 dimensions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from numclip.backend import array_namespace

__all__ = ["SGD", "AdamW", "clamp_logit_scale", "MAX_LOGIT_SCALE"]

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clips the learned scale at 100


def clamp_logit_scale(params: dict, max_logit_scale: float = MAX_LOGIT_SCALE) -> None:
    """Clip ``params["logit_scale"]`` at ``max_logit_scale`` (in place in the dict)."""
    if "logit_scale" in params:
        s = params["logit_scale"]
        xp = array_namespace(s)
        params["logit_scale"] = xp.minimum(s, xp.asarray(max_logit_scale, dtype=s.dtype))


def _check(params: dict, grads: dict) -> None:
    if set(params) != set(grads):
        raise ValueError(f"grads must have the keys of params {sorted(params)}, "
                         f"got {sorted(grads)}")
    for k in params:
        if tuple(grads[k].shape) != tuple(params[k].shape):
            raise ValueError(f"grads[{k!r}] has shape {tuple(grads[k].shape)}, "
                             f"params[{k!r}] has {tuple(params[k].shape)}")


def _clamp_ok(value: float) -> None:
    if math.isnan(value):  # inf is allowed: it switches the clamp off
        raise ValueError(f"max_logit_scale must be a number or inf, got {value}")


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    if not (value > 0 or (allow_zero and value == 0)) or not math.isfinite(value):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'} "
                         f"and finite, got {value}")


@dataclass
class SGD:
    r"""Stochastic gradient descent with momentum (PyTorch's convention).

    .. math:: g_t = \nabla_\theta L + \lambda\,\theta_{t-1} \quad (\lambda = 0 \text{ for
              ``no_decay``}), \qquad b_t = \mu\, b_{t-1} + g_t \;(b_1 = g_1),
              \qquad \theta_t = \theta_{t-1} - \eta\, b_t
    """

    lr: float = 0.1  # step size eta
    momentum: float = 0.9  # mu: how much of the previous step carries over
    weight_decay: float = 0.0  # lambda: L2 penalty added to the gradient
    no_decay: tuple[str, ...] = ("logit_scale", "logit_bias")  # exempt from weight decay
    max_logit_scale: float = MAX_LOGIT_SCALE  # clamp applied after every step
    state: dict = field(default_factory=dict)  # "b.<name>": momentum buffers, "step": count

    def __post_init__(self):
        _positive("lr", self.lr)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        _clamp_ok(self.max_logit_scale)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")

    def step(self, params: dict, grads: dict) -> None:
        """Update ``params`` (the dict's values are replaced) from ``grads``."""
        _check(params, grads)
        for k, p in params.items():
            g = grads[k]
            if self.weight_decay and k not in self.no_decay:
                g = g + self.weight_decay * p
            b = self.state.get(f"b.{k}")
            b = g if b is None else self.momentum * b + g  # first step: the gradient itself
            self.state[f"b.{k}"] = b
            params[k] = p - self.lr * b
        self.state["step"] = self.state.get("step", 0) + 1
        clamp_logit_scale(params, self.max_logit_scale)


@dataclass
class AdamW:
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    .. math:: \theta \leftarrow \theta (1 - \eta\lambda), \quad
              m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
              v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

    .. math:: \theta_t = \theta - \eta\,\frac{m_t / (1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)}
              + \epsilon}

    The decay multiplies the weights directly instead of entering the
    gradient, so Adam's per-coordinate scaling does not weaken it.
    """

    lr: float = 1e-3  # step size eta
    betas: tuple[float, float] = (0.9, 0.999)  # decay rates of the two moment estimates
    eps: float = 1e-8  # keeps the denominator away from 0
    weight_decay: float = 0.01  # lambda, decoupled
    no_decay: tuple[str, ...] = ("logit_scale", "logit_bias")  # exempt from weight decay
    max_logit_scale: float = MAX_LOGIT_SCALE  # clamp applied after every step
    state: dict = field(default_factory=dict)  # "m.<name>", "v.<name>" moments, "step"

    def __post_init__(self):
        _positive("lr", self.lr)
        _positive("eps", self.eps)
        _positive("weight_decay", self.weight_decay, allow_zero=True)
        _clamp_ok(self.max_logit_scale)
        if not all(0 <= b < 1 for b in self.betas) or len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")

    def step(self, params: dict, grads: dict) -> None:
        """Update ``params`` (the dict's values are replaced) from ``grads``."""
        _check(params, grads)
        b1, b2 = self.betas
        t = self.state.get("step", 0) + 1
        for k, p in params.items():
            g = grads[k]
            m = b1 * self.state.get(f"m.{k}", 0 * g) + (1 - b1) * g
            v = b2 * self.state.get(f"v.{k}", 0 * g) + (1 - b2) * g * g
            self.state[f"m.{k}"], self.state[f"v.{k}"] = m, v
            xp = array_namespace(p)
            if self.weight_decay and k not in self.no_decay:
                p = p * (1 - self.lr * self.weight_decay)
            denom = xp.sqrt(v) / math.sqrt(1 - b2**t) + self.eps
            params[k] = p - (self.lr / (1 - b1**t)) * m / denom
        self.state["step"] = t
        clamp_logit_scale(params, self.max_logit_scale)
