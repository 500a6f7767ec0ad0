"""Optimizers written out by hand: SGD with momentum and AdamW.

Both update a dict of parameters from a dict of gradients under the same
keys, keep their state in a flat dict of arrays (so a checkpoint can store
it), and clamp ``logit_scale`` after every step so that
``exp(logit_scale) <= 100``, as the CLIP paper does to keep training stable.
``logit_scale`` gets no weight decay: shrinking it would only raise the
temperature, which is not what regularisation is for; neither does SigLIP's
``logit_bias`` (open_clip decays no parameter with fewer than 2 dimensions).

A step checks its gradients before it changes anything, and refuses, with a
``TypeError`` or ``ValueError`` naming the key, gradients whose keys, shapes,
dtypes or array library differ from the parameters' (a float64 gradient would
quietly turn float32 parameters float64).  A non-finite gradient, the sign of
a diverged run, raises ``ValueError("gradient for '<key>' contains NaN or
infinite values")``, and nothing is written: the training loop can report the
step where it happened.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import array_api_compat
import numpy as np

from numclip.backend import array_namespace, array_namespace_of, as_float_array, as_number

__all__ = ["SGD", "AdamW", "clamp_logit_scale", "MAX_LOGIT_SCALE"]

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clips the learned scale at 100


def clamp_logit_scale(params: dict, max_logit_scale: float = MAX_LOGIT_SCALE) -> None:
    """Clip ``params["logit_scale"]`` at ``max_logit_scale`` (in place in the dict).

    Args:
        params: dict of arrays; without a ``"logit_scale"`` key nothing happens.
            ``params["logit_scale"]`` is a 0-d float32 or float64 array, finite.
        max_logit_scale: a real number, or ``inf`` for no clamp (NaN and -inf are refused).

    Raises:
        TypeError, ValueError: ``params`` not a dict, a ``logit_scale`` that is not a
            finite 0-d float array (a NaN one would stay NaN), a bad ``max_logit_scale``.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    max_logit_scale = _clamp_value(max_logit_scale)
    if "logit_scale" in params:
        s = _float_array(params["logit_scale"], "params['logit_scale']")
        s = as_float_array(s, "params['logit_scale']")  # finite, float32 or float64
        if s.ndim != 0:
            raise ValueError("params['logit_scale'] must be a 0-d array (a scalar), got shape "
                             f"{tuple(s.shape)}")
        xp = array_namespace(s)
        params["logit_scale"] = xp.minimum(s, xp.asarray(max_logit_scale, dtype=s.dtype))


# ----------------------------------------------------------------------------- validators
# Hyperparameters become Python floats: a NumPy scalar such as np.float64(1e-3) would
# otherwise promote float32 parameters to float64 at the first step.

def _real(name: str, value) -> float:
    return as_number(value, name)  # 10**400 becomes inf, for the range checks below


def _positive(name: str, value, allow_zero: bool = False) -> float:
    value = _real(name, value)
    if not (value > 0 or (allow_zero and value == 0)) or not math.isfinite(value):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'} "
                         f"and finite, got {value}")
    return value


def _fraction(name: str, value) -> float:
    """A decay rate: a real number in [0, 1)."""
    value = _real(name, value)
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def _betas(betas) -> tuple[float, float]:
    expected = "betas must be a pair (beta1, beta2) of numbers in [0, 1)"
    if not isinstance(betas, tuple | list):
        raise TypeError(f"{expected}, got {type(betas).__name__} {betas!r}")
    if len(betas) != 2:
        raise ValueError(f"{expected}, got {len(betas)} numbers")
    pair = tuple(_real(f"betas[{i}]", b) for i, b in enumerate(betas))
    if not all(0 <= b < 1 for b in pair):
        raise ValueError(f"{expected}, got {pair}")
    return pair


def _clamp_value(value) -> float:
    value = _real("max_logit_scale", value)
    if math.isnan(value) or value == -math.inf:  # +inf is allowed: it switches the clamp off
        raise ValueError(f"max_logit_scale must be a number or inf (no clamp), got {value}")
    return value


def _names(value) -> tuple[str, ...]:
    """``no_decay``: parameter names, a tuple of str (a lone str would match substrings)."""
    if isinstance(value, str) or not isinstance(value, tuple | list | set | frozenset):
        raise TypeError(f"no_decay must be a tuple of parameter names, got "
                        f"{type(value).__name__} {value!r}")
    if not all(isinstance(name, str) for name in value):
        raise TypeError(f"no_decay must hold parameter names (str), got {value!r}")
    return tuple(value)


def _state(state: dict, prefixes: tuple[str, ...]) -> dict:
    """Check an optimizer's state dict: only "step" and "<prefix>.<param name>" keys."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    allowed = " or ".join(f"'{p}.<name>'" for p in prefixes)
    bad = [k for k in state if k != "step" and not (
        isinstance(k, str) and "." in k and k.split(".", 1)[0] in prefixes)]
    if bad:
        raise ValueError(f"state keys must be 'step' or {allowed}, got {bad}")
    step = state.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"state['step'] must be a non-negative int, got {type(step).__name__}")
    if step < 0:
        raise ValueError(f"state['step'] must be a non-negative int, got {step}")
    return state


def _float_array(x, name: str):
    if not array_api_compat.is_array_api_obj(x):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    if not array_namespace(x).isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")
    return x


def _check(params: dict, grads: dict, state: dict, prefixes: tuple[str, ...]) -> None:
    """Check a step's arguments before anything is changed; every error names the key."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of arrays, got {type(grads).__name__}")
    if set(params) != set(grads):
        raise ValueError(f"grads must have the keys of params {sorted(params, key=str)}, "
                         f"got {sorted(grads, key=str)}")
    for k, p in params.items():
        p = _float_array(p, f"params[{k!r}]")
        g = grads[k]
        if not array_api_compat.is_array_api_obj(g):
            raise TypeError(f"grads[{k!r}] must be an array, got {type(g).__name__}")
        array_namespace_of({f"grads[{k!r}]": g, f"params[{k!r}]": p})
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(f"grads[{k!r}] has shape {tuple(g.shape)}, "
                             f"params[{k!r}] has {tuple(p.shape)}")
        if g.dtype != p.dtype:  # refused, not cast: a float64 grad would turn p float64
            raise TypeError(f"grads[{k!r}] has dtype {g.dtype} but params[{k!r}] is {p.dtype}; "
                            "compute the gradient in the parameter's dtype")
        for prefix in prefixes:
            s = state.get(f"{prefix}.{k}")
            if s is not None and (not array_api_compat.is_array_api_obj(s)
                                  or tuple(s.shape) != tuple(p.shape) or s.dtype != p.dtype):
                raise ValueError(f"optimizer state {prefix}.{k} does not match params[{k!r}] "
                                 f"(shape {tuple(p.shape)}, {p.dtype}); got "
                                 f"{getattr(s, 'shape', type(s).__name__)} "
                                 f"{getattr(s, 'dtype', '')}")
    orphans = sorted(k for k in state if k != "step" and k.split(".", 1)[1] not in params)
    if orphans:
        raise ValueError(f"optimizer state {orphans} belongs to parameters not in params "
                         f"{sorted(params, key=str)}")


def _check_finite(new_params: dict, new_state: dict, params: dict, grads: dict, state: dict,
                  lr: float) -> None:
    """Refuse a step that would write NaN or inf: one isfinite reduction per array written.

    A non-finite gradient (or parameter, or optimizer state) always makes what
    the step writes non-finite, so checking that catches it; the inputs are
    looked at only on the way to an error, to say which one it was.
    """
    for name, value in (new_params | new_state).items():
        xp = array_namespace(value)
        if bool(xp.all(xp.isfinite(value))):
            continue
        k = name if name in new_params else name.split(".", 1)[1]
        if not bool(xp.all(xp.isfinite(grads[k]))):
            raise ValueError(f"gradient for {k!r} contains NaN or infinite values")
        if not bool(xp.all(xp.isfinite(params[k]))):
            raise ValueError(f"params[{k!r}] contains NaN or infinite values before the step")
        bad = [s for s in new_state if s.endswith(f".{k}") and s in state
               and not bool(xp.all(xp.isfinite(state[s])))]
        if bad:
            raise ValueError(f"optimizer state {bad[0]} contains NaN or infinite values")
        if name in new_state:  # e.g. v = g * g beyond the dtype's range
            raise ValueError(f"optimizer state {name} overflows: the gradient for {k!r} is too "
                             "large for its dtype")
        raise ValueError(f"update of {k!r} overflows to NaN or infinite values with lr = {lr}; "
                         "the step was not taken: try a smaller lr")


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
        self.lr = _positive("lr", self.lr)
        self.momentum = _fraction("momentum", self.momentum)
        self.weight_decay = _positive("weight_decay", self.weight_decay, allow_zero=True)
        self.no_decay = _names(self.no_decay)
        self.max_logit_scale = _clamp_value(self.max_logit_scale)
        _state(self.state, ("b",))

    def step(self, params: dict, grads: dict) -> None:
        """Update ``params`` (the dict's values are replaced) from ``grads``.

        Args:
            params: dict of float arrays.
            grads: dict with the same keys, each array of its parameter's shape,
                dtype and array library (a float64 gradient is refused, not cast).

        Raises:
            TypeError: ``params`` or ``grads`` is not a dict of arrays, or a
                gradient's dtype or array library differs from its parameter's.
            ValueError: the keys or a shape differ, or the state does not match
                ``params``; ``"gradient for '<key>' contains NaN or infinite
                values"`` when a gradient is not finite (training diverged),
                ``"update of '<key>' overflows ..."`` when a finite gradient
                still gives a non-finite parameter (``lr`` too large), and a
                message naming the entry when the parameter or the optimizer
                state is, or would become, non-finite.  On any error nothing is
                changed: neither ``params`` nor the state.
        """
        _state(self.state, ("b",))
        _check(params, grads, self.state, ("b",))
        new_params, new_state = {}, {}
        with np.errstate(over="ignore", invalid="ignore"):  # NaN and inf are refused below
            for k, p in params.items():
                g = grads[k]
                if self.weight_decay and k not in self.no_decay:
                    g = g + self.weight_decay * p
                b = self.state.get(f"b.{k}")
                b = g if b is None else self.momentum * b + g  # first step: the gradient itself
                new_state[f"b.{k}"] = b
                new_params[k] = p - self.lr * b
        _check_finite(new_params, new_state, params, grads, self.state, self.lr)
        params.update(new_params)
        self.state.update(new_state)
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
        self.lr = _positive("lr", self.lr)
        self.betas = _betas(self.betas)
        self.eps = _positive("eps", self.eps)
        self.weight_decay = _positive("weight_decay", self.weight_decay, allow_zero=True)
        self.no_decay = _names(self.no_decay)
        self.max_logit_scale = _clamp_value(self.max_logit_scale)
        _state(self.state, ("m", "v"))

    def step(self, params: dict, grads: dict) -> None:
        """Update ``params`` from ``grads``; arguments and errors as :meth:`SGD.step`."""
        _state(self.state, ("m", "v"))
        _check(params, grads, self.state, ("m", "v"))
        b1, b2 = self.betas
        t = self.state.get("step", 0) + 1
        new_params, new_state = {}, {}
        with np.errstate(over="ignore", invalid="ignore"):  # NaN and inf are refused below
            for k, p in params.items():
                g = grads[k]
                m = b1 * self.state.get(f"m.{k}", 0 * g) + (1 - b1) * g
                v = b2 * self.state.get(f"v.{k}", 0 * g) + (1 - b2) * g * g
                new_state[f"m.{k}"], new_state[f"v.{k}"] = m, v
                xp = array_namespace(p)
                if self.weight_decay and k not in self.no_decay:
                    p = p * (1 - self.lr * self.weight_decay)
                denom = xp.sqrt(v) / math.sqrt(1 - b2**t) + self.eps
                new_params[k] = p - (self.lr / (1 - b1**t)) * m / denom
        _check_finite(new_params, new_state, params, grads, self.state, self.lr)
        params.update(new_params)
        self.state.update(new_state)
        self.state["step"] = t
        clamp_logit_scale(params, self.max_logit_scale)
