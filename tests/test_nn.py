"""The encoder layers (numclip.nn): every backward pass against centred finite differences in
float64, forward and backward against torch autograd where torch is installed, every
backend with float32 in -> float32 out, properties with hypothesis, and bad input.

Shapes are small and unequal on purpose (batch 2, tokens 5, width 12, heads 3 of width 4,
and so on), so a transposed or mixed-up axis cannot pass by coincidence.
"""

import importlib
import math
import pkgutil
import warnings

import numpy as np
import pytest
from conftest import (
    U,
    assert_on_backend,
    assert_table_covers,
    assert_within,
    bad,
    check_bad_row,
    put,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import numclip.nn
from numclip import to_numpy
from numclip.gradcheck import numerical_gradient
from numclip.nn import (
    add_positions,
    add_positions_backward,
    causal_mask,
    class_token_pool,
    class_token_pool_backward,
    eot_pool,
    eot_pool_backward,
    gelu,
    gelu_backward,
    layer_norm,
    layer_norm_backward,
    linear,
    linear_backward,
    multi_head_attention,
    multi_head_attention_backward,
    patch_embed,
    patch_embed_backward,
    prepend_class_token,
    prepend_class_token_backward,
    quick_gelu,
    quick_gelu_backward,
    residual_block,
    residual_block_backward,
    take_rows,
    token_embed,
    token_embed_backward,
    transformer,
    transformer_backward,
)
from numclip.nn.activations import activation
from numclip.nn.block import BLOCK_KEYS, block_shapes
from numclip.nn.validate import (
    as_activation,
    as_cache,
    as_heads,
    as_prefix,
    as_rows,
    as_token_ids,
    as_upstream,
    as_weight,
)

# every module of numclip.nn but the encoders (tests/test_encoders.py): found, not listed, so
# that a new module cannot join without bad-input rows
NN_MODULES = [importlib.import_module(f"numclip.nn.{info.name}")
              for info in pkgutil.iter_modules(numclip.nn.__path__) if info.name != "encoders"]
ACTIVATIONS = {"gelu": (gelu, gelu_backward), "quick_gelu": (quick_gelu, quick_gelu_backward)}
U64 = U["float64"]


def rng_for(seed):
    return np.random.default_rng(seed)


def weights(rng, *shape):
    """A weight matrix scaled 1/sqrt(fan_in), as initialisations do: activations stay of order 1."""
    return rng.standard_normal(shape) / math.sqrt(shape[-1])


def block_params(rng, prefix, d):
    """Random parameters of one residual block of width d, none of them 0 or 1."""
    shapes = {"ln_1.weight": (d,), "ln_1.bias": (d,), "attn.in_proj_weight": (3 * d, d),
              "attn.in_proj_bias": (3 * d,), "attn.out_proj.weight": (d, d),
              "attn.out_proj.bias": (d,), "ln_2.weight": (d,), "ln_2.bias": (d,),
              "mlp.c_fc.weight": (4 * d, d), "mlp.c_fc.bias": (4 * d,),
              "mlp.c_proj.weight": (d, 4 * d), "mlp.c_proj.bias": (d,)}
    params = {}
    for key in BLOCK_KEYS:
        shape = shapes[key]
        if key.startswith("ln") and key.endswith("weight"):
            params[prefix + key] = 1 + 0.3 * rng.standard_normal(shape)
        elif len(shape) == 1:
            params[prefix + key] = 0.3 * rng.standard_normal(shape)
        else:
            params[prefix + key] = weights(rng, *shape)
    return params


# ------------------------------------------------------------------ finite differences
# Centred differences in float64 with h = 1e-6.  The upstream gradient dy is random, and
# f = <dy, y> is differentiated with respect to one entry at a time.
#   truncation: h^2 f'''/6 per entry; for these smooth layers with inputs and weights of
#     order 1, |f'''| is at most a few times S = sum|dy| max|y|, the size of f's terms:
#     allowed h^2 S.
#   rounding: each f() is a chain of at most ROUNDINGS roundings per term, so it is off by
#     at most ROUNDINGS u S; the difference of two such values divided by 2h is off by
#     ROUNDINGS u S / h ~ 7e-9 S (u = 1.1e-16): O(u/h) for values of order 1.
# Measured errors are ~0.5 u S / h, so the bound is not tight, but a real mistake (a term
# missing, an axis swapped, eps in the wrong place) is off by 1e-5 S or far more.
H = 1e-6
ROUNDINGS = 64


def fd_bound(dy, y):
    size = float(np.sum(np.abs(dy))) * max(1.0, float(np.max(np.abs(y))))
    return size * (ROUNDINGS * U64 / H + H**2)


def assert_matches_fd(forward, dy, inputs, grads):
    """Every entry of ``grads[name]`` equals the centred difference of ``<dy, forward()>``
    with respect to the same entry of ``inputs[name]`` (perturbed in place)."""
    assert set(grads) == set(inputs), "one analytic gradient per input"
    bound = fd_bound(dy, forward())

    def f():
        return float(np.sum(dy * forward()))

    for name, x in inputs.items():
        assert grads[name].shape == x.shape, name
        fd = numerical_gradient(f, x, H)
        error = float(np.max(np.abs(np.asarray(grads[name]) - fd)))
        assert error <= bound, f"d{name}: off by {error:.3g}, more than the bound {bound:.3g}"
        # a check that cannot fail: the gradient must stand far above the bound
        assert float(np.max(np.abs(fd))) > 1e3 * bound, f"d{name} is too small to check"


def test_the_fd_check_catches_a_gradient_wrong_in_one_entry():
    rng = rng_for(0)
    x, w, dy = rng.standard_normal((5, 6)), weights(rng, 4, 6), rng.standard_normal((5, 4))
    dx, dw, _ = linear_backward(dy, linear(x, w)[1])
    assert_matches_fd(lambda: linear(x, w)[0], dy, {"x": x, "weight": w}, {"x": dx, "weight": dw})
    dw[2, 3] += 1e-5 * np.max(np.abs(dw))  # a mistake of 1e-5 of the gradient's size
    with pytest.raises(AssertionError, match="dweight: off by"):
        assert_matches_fd(lambda: linear(x, w)[0], dy, {"x": x, "weight": w},
                          {"x": dx, "weight": dw})


@pytest.mark.parametrize("x_shape", [(5, 6), (2, 5, 6), (6,)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_backward_matches_finite_differences(x_shape, with_bias):
    rng = rng_for(1)
    x, w = rng.standard_normal(x_shape), weights(rng, 4, 6)  # in 6, out 4
    b = rng.standard_normal(4) if with_bias else None
    dy = rng.standard_normal((*x_shape[:-1], 4))
    dx, dw, db = linear_backward(dy, linear(x, w, b)[1])
    inputs, grads = {"x": x, "weight": w}, {"x": dx, "weight": dw}
    if with_bias:
        inputs["bias"], grads["bias"] = b, db
    else:
        assert db is None
    assert_matches_fd(lambda: linear(x, w, b)[0], dy, inputs, grads)


@pytest.mark.parametrize("x_shape", [(5, 6), (2, 5, 6)])
def test_layer_norm_backward_matches_finite_differences(x_shape):
    rng = rng_for(2)
    x = 3 * rng.standard_normal(x_shape) + 1
    w, b = 1 + 0.5 * rng.standard_normal(6), rng.standard_normal(6)
    dy = rng.standard_normal(x_shape)
    dx, dw, db = layer_norm_backward(dy, layer_norm(x, w, b)[1])
    assert_matches_fd(lambda: layer_norm(x, w, b)[0], dy, {"x": x, "weight": w, "bias": b},
                      {"x": dx, "weight": dw, "bias": db})


@pytest.mark.parametrize("name", ["gelu", "quick_gelu"])
def test_activation_backward_matches_finite_differences(name):
    forward, backward = ACTIVATIONS[name]
    rng = rng_for(3)
    x = 2.5 * rng.standard_normal((2, 5, 6))  # the tails and the bend around 0
    dy = rng.standard_normal(x.shape)
    assert_matches_fd(lambda: forward(x)[0], dy, {"x": x}, {"x": backward(dy, forward(x)[1])})


def attention_inputs(rng, b=2, length=5, d=12):
    return {"x": rng.standard_normal((b, length, d)),
            "in_proj_weight": weights(rng, 3 * d, d), "in_proj_bias": rng.standard_normal(3 * d),
            "out_proj_weight": weights(rng, d, d), "out_proj_bias": rng.standard_normal(d)}


ATTENTION_ARGS = ("x", "in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")


@pytest.mark.parametrize("causal", [False, True])
def test_attention_backward_matches_finite_differences(causal):
    rng = rng_for(4)
    a = attention_inputs(rng)  # B 2, L 5, D 12, H 3, hd 4
    mask = causal_mask(5, a["x"]) if causal else None

    def forward():
        return multi_head_attention(*(a[k] for k in ATTENTION_ARGS), 3, mask)[0]

    dy = rng.standard_normal((2, 5, 12))
    grads = multi_head_attention_backward(
        dy, multi_head_attention(*(a[k] for k in ATTENTION_ARGS), 3, mask)[1])
    assert_matches_fd(forward, dy, a, dict(zip(ATTENTION_ARGS, grads, strict=True)))


@pytest.mark.parametrize("activation, causal", [("gelu", True), ("quick_gelu", False)])
def test_residual_block_backward_matches_finite_differences(activation, causal):
    rng = rng_for(5)
    prefix = "visual.transformer.resblocks.0."
    params = block_params(rng, prefix, 6)  # B 2, L 5, D 6, H 3, hd 2, MLP 24
    x = rng.standard_normal((2, 5, 6))
    mask = causal_mask(5, x) if causal else None

    def forward():
        return residual_block(x, params, prefix, 3, activation, mask)[0]

    dy = rng.standard_normal(x.shape)
    dx, grads = residual_block_backward(dy, residual_block(x, params, prefix, 3, activation,
                                                           mask)[1])
    assert list(grads) == [prefix + k for k in BLOCK_KEYS]  # every key, and no other
    assert_matches_fd(forward, dy, {"x": x, **params}, {"x": dx, **grads})


def test_transformer_of_two_blocks_backward_matches_finite_differences():
    rng = rng_for(6)
    params = block_params(rng, "transformer.resblocks.0.", 4)  # B 2, L 3, D 4, H 2
    params |= block_params(rng, "transformer.resblocks.1.", 4)
    params["unused.weight"] = np.ones(3)  # keys of other layers are none of its business
    x = rng.standard_normal((2, 3, 4))
    mask = causal_mask(3, x)

    def forward():
        return transformer(x, params, "transformer.", 2, 2, "quick_gelu", mask)[0]

    dy = rng.standard_normal(x.shape)
    dx, grads = transformer_backward(dy, transformer(x, params, "transformer.", 2, 2,
                                                     "quick_gelu", mask)[1])
    inputs = {k: v for k, v in params.items() if k != "unused.weight"}
    assert set(grads) == set(inputs)
    assert_matches_fd(forward, dy, {"x": x, **inputs}, {"x": dx, **grads})


def test_patch_embed_backward_matches_finite_differences():
    rng = rng_for(7)
    images = rng.standard_normal((2, 3, 8, 12))  # a 2 x 3 grid of 4 x 4 patches
    w = weights(rng, 5, 3, 4, 4)
    dy = rng.standard_normal((2, 6, 5))
    dimages, dw = patch_embed_backward(dy, patch_embed(images, w)[1])
    assert_matches_fd(lambda: patch_embed(images, w)[0], dy, {"images": images, "weight": w},
                      {"images": dimages, "weight": dw})


def test_patches_are_the_image_cut_in_row_major_order():
    images = np.arange(2 * 3 * 8 * 12, dtype=np.float64).reshape(2, 3, 8, 12)
    w = np.zeros((3 * 16, 3, 4, 4))
    w.reshape(48, 48)[...] = np.eye(48)  # output d = pixel d of the patch, (c, row, col)
    y, _ = patch_embed(images, w)
    for n, (gy, gx) in enumerate((gy, gx) for gy in range(2) for gx in range(3)):
        patch = images[:, :, 4 * gy:4 * gy + 4, 4 * gx:4 * gx + 4].reshape(2, 48)
        np.testing.assert_array_equal(y[:, n], patch)


def test_class_token_and_positions_backward_match_finite_differences():
    rng = rng_for(8)
    x, cls = rng.standard_normal((2, 4, 6)), rng.standard_normal(6)
    dy = rng.standard_normal((2, 5, 6))
    dx, dcls = prepend_class_token_backward(dy, prepend_class_token(x, cls)[1])
    assert_matches_fd(lambda: prepend_class_token(x, cls)[0], dy,
                      {"x": x, "class_embedding": cls}, {"x": dx, "class_embedding": dcls})
    y, _ = prepend_class_token(x, cls)
    np.testing.assert_array_equal(y[:, 0], np.broadcast_to(cls, (2, 6)))
    np.testing.assert_array_equal(y[:, 1:], x)


def test_positions_past_the_sequence_get_exactly_zero_gradient():
    rng = rng_for(9)
    x, pos = rng.standard_normal((2, 4, 6)), rng.standard_normal((7, 6))  # L 4 < context 7
    dy = rng.standard_normal(x.shape)
    dx, dpos = add_positions_backward(dy, add_positions(x, pos)[1])
    assert dpos.shape == (7, 6)
    np.testing.assert_array_equal(dpos[4:], 0.0)
    assert_matches_fd(lambda: add_positions(x, pos)[0], dy,
                      {"x": x, "positional_embedding": pos},
                      {"x": dx, "positional_embedding": dpos})


def test_token_embed_backward_sums_repeated_ids():
    rng = rng_for(10)
    ids = np.array([[1, 4, 4, 0], [4, 2, 6, 1]])  # 4 three times, 1 twice, 3 5 7 8 never
    table = rng.standard_normal((9, 6))
    dy = rng.standard_normal((2, 4, 6))
    dtable = token_embed_backward(dy, token_embed(ids, table)[1])
    np.testing.assert_array_equal(dtable[[3, 5, 7, 8]], 0.0)
    np.testing.assert_allclose(dtable[4], dy[0, 1] + dy[0, 2] + dy[1, 0], rtol=4 * U64)
    assert_matches_fd(lambda: token_embed(ids, table)[0], dy, {"weight": table},
                      {"weight": dtable})


def test_class_token_pool_backward_matches_finite_differences():
    rng = rng_for(11)
    x, dy = rng.standard_normal((2, 5, 6)), rng.standard_normal((2, 6))
    dx = class_token_pool_backward(dy, class_token_pool(x)[1])
    np.testing.assert_array_equal(class_token_pool(x)[0], x[:, 0])
    assert_matches_fd(lambda: class_token_pool(x)[0], dy, {"x": x}, {"x": dx})


def test_eot_pool_reads_the_first_largest_id_and_its_backward_matches_fd():
    rng = rng_for(12)
    # EOT (the largest id) at positions 1, 4 and 2; row 0 ties at 1 and 2: argmax takes 1
    ids = np.array([[3, 9, 9, 1, 0], [1, 2, 3, 4, 8], [5, 5, 7, 0, 0]])
    x, dy = rng.standard_normal((3, 5, 6)), rng.standard_normal((3, 6))
    pooled, cache = eot_pool(x, ids)
    np.testing.assert_array_equal(pooled, x[[0, 1, 2], [1, 4, 2]])
    dx = eot_pool_backward(dy, cache)
    assert_matches_fd(lambda: eot_pool(x, ids)[0], dy, {"x": x}, {"x": dx})


# ------------------------------------------------------------------ torch autograd
# Both sides compute the same formulas in float64, summing in other orders: each entry is
# off by at most about (n + c) u of the size of its terms, with n <= 48 terms per sum and
# c a few dozen roundings along the chain (~1e-14), amplified by the layer's conditioning
# (layer norm's 1/std, softmax's weights), which is below 1e2 for these inputs of order 1:
# 1e-12 at worst.  TORCH_RTOL = 1e-10 of the largest entry leaves 100x, and is still eight
# orders below a real mistake (a wrong term moves entries by 1e-2 of their size or more).
TORCH_RTOL = 1e-10


@pytest.fixture
def torch():
    # per test, not at module level: without torch only these tests skip
    return pytest.importorskip("torch")


def assert_close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = np.asarray(to_numpy(ours))
    assert ours.shape == theirs.shape, what
    error, size = float(np.max(np.abs(ours - theirs))), float(np.max(np.abs(theirs)))
    assert size > 0 and error <= TORCH_RTOL * size, f"{what}: off by {error / size:.3g} relative"


def torch_grads(torch, y, dy, tensors):
    """Gradients of sum(y * dy) with respect to each tensor, by torch autograd."""
    return torch.autograd.grad((y * torch.as_tensor(dy)).sum(), tensors)


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_torch(torch, with_bias):
    rng = rng_for(20)
    x, dy = rng.standard_normal((2, 5, 6)), rng.standard_normal((2, 5, 4))
    layer = torch.nn.Linear(6, 4, bias=with_bias, dtype=torch.float64)
    w = layer.weight.detach().numpy()
    b = layer.bias.detach().numpy() if with_bias else None
    xt = torch.tensor(x, requires_grad=True)
    yt = layer(xt)
    y, cache = linear(x, w, b)
    assert_close(y, yt, "y")
    params = [xt, layer.weight] + ([layer.bias] if with_bias else [])
    n = len(params)  # linear_backward's dbias is None without a bias
    for name, ours, theirs in zip(("dx", "dweight", "dbias")[:n], linear_backward(dy, cache)[:n],
                                  torch_grads(torch, yt, dy, params), strict=True):
        assert_close(ours, theirs, name)


def test_layer_norm_matches_torch(torch):
    rng = rng_for(21)
    x, dy = 2 * rng.standard_normal((2, 5, 6)) + 1, rng.standard_normal((2, 5, 6))
    layer = torch.nn.LayerNorm(6, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(1 + 0.5 * rng.standard_normal(6)))
        layer.bias.copy_(torch.tensor(rng.standard_normal(6)))
    xt = torch.tensor(x, requires_grad=True)
    yt = layer(xt)
    y, cache = layer_norm(x, layer.weight.detach().numpy(), layer.bias.detach().numpy())
    assert_close(y, yt, "y")
    theirs_all = torch_grads(torch, yt, dy, [xt, layer.weight, layer.bias])
    for name, ours, theirs in zip(("dx", "dweight", "dbias"), layer_norm_backward(dy, cache),
                                  theirs_all, strict=True):
        assert_close(ours, theirs, name)


@pytest.mark.parametrize("name", ["gelu", "quick_gelu"])
def test_activations_match_torch(torch, name):
    forward, backward = ACTIVATIONS[name]
    rng = rng_for(22)
    x, dy = 3 * rng.standard_normal((2, 5, 6)), rng.standard_normal((2, 5, 6))
    xt = torch.tensor(x, requires_grad=True)
    # open_clip's activations: nn.GELU() (exact erf) and QuickGELU's x * sigmoid(1.702 x)
    yt = torch.nn.GELU()(xt) if name == "gelu" else xt * torch.sigmoid(1.702 * xt)
    y, cache = forward(x)
    assert_close(y, yt, "y")
    assert_close(backward(dy, cache), torch_grads(torch, yt, dy, [xt])[0], "dx")


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_torch_multihead_attention(torch, causal):
    rng = rng_for(23)
    a = attention_inputs(rng)  # B 2, L 5, D 12, H 3
    mha = torch.nn.MultiheadAttention(12, 3, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(a["in_proj_weight"]))
        mha.in_proj_bias.copy_(torch.tensor(a["in_proj_bias"]))
        mha.out_proj.weight.copy_(torch.tensor(a["out_proj_weight"]))
        mha.out_proj.bias.copy_(torch.tensor(a["out_proj_bias"]))
    mask = causal_mask(5, a["x"]) if causal else None
    xt = torch.tensor(a["x"], requires_grad=True)
    yt, pt = mha(xt, xt, xt, attn_mask=None if mask is None else torch.tensor(mask),
                 need_weights=True, average_attn_weights=False)
    y, cache = multi_head_attention(*(a[k] for k in ATTENTION_ARGS), 3, mask)
    assert_close(y, yt, "y")
    assert_close(cache[3], pt, "attention weights (B, H, L, L)")
    dy = rng.standard_normal(y.shape)
    params = [xt, mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight, mha.out_proj.bias]
    for name, ours, theirs in zip(ATTENTION_ARGS, multi_head_attention_backward(dy, cache),
                                  torch_grads(torch, yt, dy, params), strict=True):
        assert_close(ours, theirs, f"d{name}")


def test_patch_embed_matches_torch_conv2d(torch):
    rng = rng_for(24)
    images, w = rng.standard_normal((2, 3, 8, 12)), weights(rng, 5, 3, 4, 4)
    it, wt = torch.tensor(images, requires_grad=True), torch.tensor(w, requires_grad=True)
    # open_clip's conv1, then its reshape to (B, grid^2, width)
    yt = torch.nn.functional.conv2d(it, wt, stride=4).flatten(2).transpose(1, 2)
    y, cache = patch_embed(images, w)
    assert_close(y, yt, "y")
    dy = rng.standard_normal(y.shape)
    for name, ours, theirs in zip(("dimages", "dweight"), patch_embed_backward(dy, cache),
                                  torch_grads(torch, yt, dy, [it, wt]), strict=True):
        assert_close(ours, theirs, name)


# ------------------------------------------------------------------ backends
# Each layer's forward and backward in one function: inputs in, [y, *grads] out.

def _run_linear(a):
    y, cache = linear(a["x"], a["weight"], a["bias"])
    return [y, *linear_backward(a["dy"], cache)]


def _run_layer_norm(a):
    y, cache = layer_norm(a["x"], a["weight"], a["bias"])
    return [y, *layer_norm_backward(a["dy"], cache)]


def _run_activation(name):
    forward, backward = ACTIVATIONS[name]

    def run(a):
        y, cache = forward(a["x"])
        return [y, backward(a["dy"], cache)]
    return run


def _run_attention(a):
    y, cache = multi_head_attention(*(a[k] for k in ATTENTION_ARGS), 3,
                                    causal_mask(5, a["x"]))
    return [y, *multi_head_attention_backward(a["dy"], cache)]


def _run_block(a):
    params = {k: v for k, v in a.items() if k.startswith("b.")}
    y, cache = transformer(a["x"], params, "b.", 1, 3, "gelu", causal_mask(5, a["x"]))
    dx, grads = transformer_backward(a["dy"], cache)
    return [y, dx, *grads.values()]


def _run_embeddings(a):
    patches, patch = patch_embed(a["images"], a["conv"])  # (2, 6, 5)
    x, cls = prepend_class_token(patches, a["cls"])  # (2, 7, 5)
    x, pos = add_positions(x, a["pos"])  # (2, 7, 5)
    pooled, pool = class_token_pool(x)  # (2, 5)
    dx = class_token_pool_backward(a["dy"], pool)
    dx, dpos = add_positions_backward(dx, pos)
    dx, dcls = prepend_class_token_backward(dx, cls)
    return [pooled, dpos, dcls, *patch_embed_backward(dx, patch)]


def _run_text_embeddings(a):
    x, tok = token_embed(a["ids"], a["table"])  # (2, 4, 6)
    pooled, pool = eot_pool(x, a["ids"])  # (2, 6)
    return [pooled, token_embed_backward(eot_pool_backward(a["dy"], pool), tok)]


def _host_inputs(rng):
    """name -> (runner, host float64 inputs); the ids stay integers."""
    attention = attention_inputs(rng)
    return {
        "linear": (_run_linear, {"x": rng.standard_normal((2, 5, 6)), "weight": weights(rng, 4, 6),
                                 "bias": rng.standard_normal(4),
                                 "dy": rng.standard_normal((2, 5, 4))}),
        "layer_norm": (_run_layer_norm, {"x": rng.standard_normal((5, 6)),
                                         "weight": 1 + rng.standard_normal(6),
                                         "bias": rng.standard_normal(6),
                                         "dy": rng.standard_normal((5, 6))}),
        "gelu": (_run_activation("gelu"), {"x": 2 * rng.standard_normal((2, 7)),
                                           "dy": rng.standard_normal((2, 7))}),
        "quick_gelu": (_run_activation("quick_gelu"), {"x": 2 * rng.standard_normal((2, 7)),
                                                       "dy": rng.standard_normal((2, 7))}),
        "attention": (_run_attention, {**attention, "dy": rng.standard_normal((2, 5, 12))}),
        "block": (_run_block, {"x": rng.standard_normal((2, 5, 6)),
                               **block_params(rng, "b.resblocks.0.", 6),
                               "dy": rng.standard_normal((2, 5, 6))}),
        "embeddings": (_run_embeddings, {"images": rng.standard_normal((2, 3, 8, 12)),
                                         "conv": weights(rng, 5, 3, 4, 4),
                                         "cls": rng.standard_normal(5),
                                         "pos": rng.standard_normal((9, 5)),
                                         "dy": rng.standard_normal((2, 5))}),
        "text_embeddings": (_run_text_embeddings, {"ids": np.array([[1, 8, 2, 0], [3, 3, 5, 7]]),
                                                   "table": rng.standard_normal((9, 6)),
                                                   "dy": rng.standard_normal((2, 6))}),
    }


LAYERS = list(_host_inputs(rng_for(0)))
# The float32 and float64 results against a float64 NumPy reference from the same (rounded)
# inputs: each layer is a chain of at most ROUNDINGS roundings per entry (sums of <= 48
# terms included), amplified by its conditioning, at most COND = 16 for these inputs of
# order 1 (layer norm's 1/std, softmax's weights, GELU's slope <= 1.13): the error is at
# most ROUNDINGS COND u of the largest entry, 6e-5 in float32 and 1e-13 in float64.
COND = 16


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_keep_backend_and_dtype(xp, dtype_name, layer):
    run, host = _host_inputs(rng_for(30))[layer]
    # round first, so that the float64 reference sees exactly the inputs the dtype holds
    host = {k: v if v.dtype.kind == "i" else v.astype(dtype_name).astype(np.float64)
            for k, v in host.items()}
    want = run(host)
    inputs = {k: xp.asarray(v) if v.dtype.kind == "i" else put(xp, v, dtype_name)
              for k, v in host.items()}
    got = run(inputs)
    like = inputs["dy"]
    assert len(got) == len(want)
    for i, (ours, ref) in enumerate(zip(got, want, strict=True)):
        assert_on_backend(ours, like)
        error = float(np.max(np.abs(to_numpy(ours) - ref)))
        size = float(np.max(np.abs(ref)))
        assert error <= ROUNDINGS * COND * U[dtype_name] * size, (
            f"{layer} output {i}: off by {error / size:.3g} relative")


def test_unusual_but_valid_inputs_give_the_same_answer():
    """Lists, Fortran order, strided views and NumPy integers are accepted (house rule)."""
    rng = rng_for(31)
    a = attention_inputs(rng)
    args = [a[k] for k in ATTENTION_ARGS]
    want, _ = multi_head_attention(*args, 3)
    strided = np.repeat(a["x"], 2, axis=2)[:, :, ::2]
    for x in (a["x"].tolist(), np.asfortranarray(a["x"]), strided):
        np.testing.assert_array_equal(multi_head_attention(x, *args[1:], np.int64(3))[0], want)
    w = np.asfortranarray(a["in_proj_weight"])
    np.testing.assert_allclose(multi_head_attention(a["x"], w, *args[2:], 3)[0], want,
                               rtol=0, atol=ROUNDINGS * U64 * np.max(np.abs(want)))
    x = rng.standard_normal((4, 6))
    np.testing.assert_array_equal(layer_norm(x.tolist(), np.ones(6), np.zeros(6))[0],
                                  layer_norm(x, np.ones(6), np.zeros(6))[0])
    np.testing.assert_array_equal(gelu(x[:, ::2])[0], gelu(np.ascontiguousarray(x[:, ::2]))[0])
    # token ids typed as lists: what a tokenizer returns, and nobody's dtype choice
    ids, table = [[1, 2, 2], [0, 4, 3]], rng.standard_normal((5, 6))
    np.testing.assert_array_equal(token_embed(ids, table)[0], token_embed(np.array(ids), table)[0])
    x3 = rng.standard_normal((2, 3, 6))
    np.testing.assert_array_equal(eot_pool(x3, ids)[0], eot_pool(x3, np.array(ids))[0])


# ------------------------------------------------------------------ properties

settings.register_profile("numclip-nn", max_examples=40, deadline=None)
rows = st.tuples(st.integers(1, 4), st.integers(2, 8)).flatmap(
    lambda s: arrays(np.float64, s, elements=st.floats(-1e3, 1e3)))


@settings(settings.get_profile("numclip-nn"))
@given(rows)
def test_layer_norm_rows_have_zero_mean_and_the_variance_eps_allows(x):
    y, _ = layer_norm(x, np.ones(x.shape[1]), np.zeros(x.shape[1]))
    d, m = x.shape[1], np.max(np.abs(x), axis=1, keepdims=True)
    var = np.var(x, axis=1, keepdims=True)
    rstd = 1 / np.sqrt(var + 1e-5)
    # each xhat entry inherits the rounding of x - mean (d u M for the mean of d entries of
    # size <= M, u M for the subtraction), times 1/std, and a few u of its own size
    # (<= sqrt(d)); the mean and variance of d such entries add d u of their size
    err = (d + 2) * U64 * m * rstd + 4 * U64 * math.sqrt(d)
    assert np.all(np.abs(np.mean(y, axis=1, keepdims=True)) <= err + d * U64 * math.sqrt(d))
    # unit variance, exactly as eps allows: var(y) = var / (var + eps); the variance of
    # entries off by err moves by 2 sqrt(d) err, and both variances here, computed in
    # float64 over d entries, by about d u of d (the mean square of unit entries <= d)
    assert np.all(np.abs(np.var(y, axis=1, keepdims=True) - var * rstd**2)
                  <= 4 * math.sqrt(d) * err + 4 * d * U64 * d)


shapes = st.sampled_from([(1, 4, 2), (3, 6, 3), (2, 12, 4), (2, 6, 1)])  # (B, D, H)


@settings(settings.get_profile("numclip-nn"))
@given(shapes, st.integers(0, 2**32 - 1))
def test_attention_over_one_token_is_the_output_projection_of_its_value(shape, seed):
    b, d, h = shape
    rng = rng_for(seed)
    a = attention_inputs(rng, b, 1, d)
    y, _ = multi_head_attention(*(a[k] for k in ATTENTION_ARGS), h)
    # one key: its softmax weight is exactly 1, so every head returns its value row
    w_v, b_v = a["in_proj_weight"][2 * d:], a["in_proj_bias"][2 * d:]
    v = a["x"] @ w_v.T + b_v
    want = v @ a["out_proj_weight"].T + a["out_proj_bias"]
    # two products of length d in float64 (here and there): (d + 1) u of the terms, twice
    terms = ((np.abs(a["x"]) @ np.abs(w_v).T + np.abs(b_v)) @ np.abs(a["out_proj_weight"]).T
             + np.abs(a["out_proj_bias"]))
    assert np.all(np.abs(y - want) <= 4 * (2 * d + 2) * U64 * terms)


@settings(settings.get_profile("numclip-nn"))
@given(st.integers(0, 4), st.integers(0, 2**32 - 1))
def test_causal_attention_at_position_i_does_not_see_later_tokens(i, seed):
    rng = rng_for(seed)
    a = attention_inputs(rng, 2, 5, 6)
    mask = causal_mask(5, a["x"])
    y, _ = multi_head_attention(*(a[k] for k in ATTENTION_ARGS), 3, mask)
    later = a["x"].copy()
    later[:, i + 1:] = 10 * rng.standard_normal(later[:, i + 1:].shape)
    y_later, _ = multi_head_attention(later, *(a[k] for k in ATTENTION_ARGS[1:]), 3, mask)
    # exactly: masked keys get weight exp(-huge) = 0, and 0 * v adds nothing to any sum
    np.testing.assert_array_equal(y_later[:, :i + 1], y[:, :i + 1])
    if i < 4:
        assert not np.array_equal(y_later[:, i + 1:], y[:, i + 1:])


# ------------------------------------------------------------------ bad input

X = rng_for(40).standard_normal((2, 5, 6))
X32 = X.astype(np.float32)
W = weights(rng_for(41), 4, 6)
ONES6, ZEROS6 = np.ones(6), np.zeros(6)
LIN_CACHE = linear(X, W, np.zeros(4))[1]
LN_CACHE = layer_norm(X, ONES6, ZEROS6)[1]
GELU_CACHE, QGELU_CACHE = gelu(X)[1], quick_gelu(X)[1]
A = attention_inputs(rng_for(42), 2, 5, 12)
A_ARGS = [A[k] for k in ATTENTION_ARGS]
A_Y, A_CACHE = multi_head_attention(*A_ARGS, 3)
MASK = causal_mask(5, A["x"])
BLOCK = block_params(rng_for(43), "b.", 6)
B_Y, B_CACHE = residual_block(X, BLOCK, "b.", 3)
T_Y, T_CACHE = transformer(X, {k.replace("b.", "t.resblocks.0."): v for k, v in BLOCK.items()},
                           "t.", 1, 3)
IMAGES, CONV = rng_for(44).standard_normal((2, 3, 8, 12)), weights(rng_for(45), 5, 3, 4, 4)
P_Y, P_CACHE = patch_embed(IMAGES, CONV)  # (2, 6, 5)
C_Y, C_CACHE = prepend_class_token(P_Y, np.ones(5))  # (2, 7, 5)
POS = np.ones((9, 5))
Q_Y, Q_CACHE = add_positions(C_Y, POS)
IDS, TABLE = np.array([[1, 8, 2, 0], [3, 3, 5, 7]]), np.ones((9, 6))
E_Y, E_CACHE = token_embed(IDS, TABLE)  # (2, 4, 6)
K_Y, K_CACHE = class_token_pool(Q_Y)  # (2, 5)
O_Y, O_CACHE = eot_pool(E_Y, IDS)  # (2, 6)


def with_key(key, value):
    return {**BLOCK, key: value}


def without_key(key):
    return {k: v for k, v in BLOCK.items() if k != key}


def full_row_masked():
    mask = np.zeros((5, 5))
    mask[2] = -np.inf  # query 2 may attend to nothing: its weights would be 0/0
    return mask


BAD = [
    # linear
    bad(linear, np.ones((2, 5)), W, error=ValueError,
        words=("weight must have shape (any, 5)", "(4, 6)")),
    bad(linear, np.array(1.0), W, error=ValueError, words="x must have at least one axis"),
    bad(linear, np.full((2, 6), np.nan), W, error=ValueError, words="x contains NaN"),
    bad(linear, np.ones((2, 6), int), W, error=TypeError, words="x must have a real floating"),
    bad(linear, np.ones((2, 6), np.float16), W, error=TypeError, words=("x", "float16")),
    bad(linear, X32, W, error=TypeError, words=("weight has dtype float64", "x is float32")),
    bad(linear, X, W, np.zeros(4, np.float32), error=TypeError, words="bias has dtype float32"),
    bad(linear, X, np.ones(6), error=ValueError, words="weight must have shape (any, 6)"),
    bad(linear, X, W, np.zeros(5), error=ValueError, words="bias must have shape (4,)"),
    bad(linear, X, W.tolist(), error=TypeError, words="weight must be an array"),
    bad(linear, X, W, np.full(4, np.inf), error=ValueError, words="bias contains NaN or inf"),
    bad(linear_backward, np.ones((2, 5, 5)), LIN_CACHE, error=ValueError,
        words="dy must have shape (2, 5, 4) (the forward's output), got (2, 5, 5)"),
    bad(linear_backward, np.ones((3, 5, 4)), LIN_CACHE, error=ValueError,
        words="dy must have shape (2, 5, 4)"),
    bad(linear_backward, np.full((2, 5, 4), np.nan), LIN_CACHE, error=ValueError,
        words="dy contains NaN"),
    bad(linear_backward, np.ones((2, 5, 4)), (X, W), error=TypeError,
        words="cache must be the cache that linear returned"),
    bad(linear_backward, np.ones((2, 5, 4)), list(LIN_CACHE), error=TypeError,
        words="cache must be the cache that linear returned"),
    # float64 dy into a float64 layer's cache and float32 dy: the gradients' dtypes would mix
    bad(linear_backward, np.ones((2, 5, 4), np.float32), LIN_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    # layer_norm
    bad(layer_norm, X, np.ones(5), ZEROS6, error=ValueError, words="weight must have shape (6,)"),
    bad(layer_norm, X, ONES6, np.zeros((1, 6)), error=ValueError, words="bias must have shape"),
    bad(layer_norm, X, ONES6, None, error=TypeError, words="bias must be an array"),
    bad(layer_norm, X32, ONES6.astype(np.float32), ZEROS6, error=TypeError,
        words=("bias has dtype float64", "x is float32")),
    bad(layer_norm, np.ones((2, 6), np.float16), ONES6, ZEROS6, error=TypeError,
        words=("x", "float16")),
    bad(layer_norm, np.ones((2, 6), int), ONES6, ZEROS6, error=TypeError,
        words="x must have a real floating"),
    bad(layer_norm, np.full((2, 6), np.inf), ONES6, ZEROS6, error=ValueError,
        words="x contains NaN or infinite"),
    bad(layer_norm, X, np.full(6, np.nan), ZEROS6, error=ValueError, words="weight contains NaN"),
    bad(layer_norm, X, ONES6, ZEROS6, 0.0, error=ValueError, words="eps must be positive"),
    bad(layer_norm, X, ONES6, ZEROS6, math.inf, error=ValueError, words="eps must be positive"),
    bad(layer_norm, X, ONES6, ZEROS6, "1e-5", error=TypeError, words="eps must be a real number"),
    bad(layer_norm_backward, np.ones((2, 5, 5)), LN_CACHE, error=ValueError,
        words="dy must have shape (2, 5, 6) (the forward's output), got (2, 5, 5)"),
    bad(layer_norm_backward, np.ones((5, 6)), LN_CACHE, error=ValueError,
        words="dy must have shape (2, 5, 6) (the forward's output), got (5, 6)"),
    bad(layer_norm_backward, np.ones((2, 5, 6)), GELU_CACHE, error=TypeError,
        words="cache must be the cache that layer_norm returned"),
    # another layer's cache of the same length: as_cache checks the length only, and NumPy
    # then said "operands could not be broadcast together with shapes (4,6) (2,5,6)"
    bad(layer_norm_backward, np.ones((2, 5, 6)), LIN_CACHE, error=TypeError,
        words="cache must be the cache that layer_norm returned"),
    bad(layer_norm_backward, np.ones((2, 5, 6), np.float32), LN_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    # activations
    *[row for fn, backward, cache in ((gelu, gelu_backward, GELU_CACHE),
                                      (quick_gelu, quick_gelu_backward, QGELU_CACHE)) for row in (
        bad(fn, np.array(2.0), error=ValueError, words="x must have at least one axis"),
        bad(fn, np.ones(3, int), error=TypeError, words="x must have a real floating dtype"),
        bad(fn, np.ones(3, np.float16), error=TypeError, words=("x", "float16")),
        bad(fn, np.array([1.0, np.nan]), error=ValueError, words="x contains NaN"),
        bad(fn, 2.0, error=TypeError, words="x must be an array"),
        bad(fn, X, inplace=1, error=TypeError, words="inplace must be True or False, got int"),
        bad(fn, np.broadcast_to(X32, (3, 2, 5, 6)), inplace=True, error=ValueError,
            words="x is read-only; inplace=True needs a writable array"),
        bad(backward, np.ones((2, 5, 5)), cache, error=ValueError,
            words="dy must have shape (2, 5, 6)"),
        bad(backward, np.full((2, 5, 6), np.nan), cache, error=ValueError,
            words="dy contains NaN"),
        bad(backward, np.ones((2, 5, 6)), LN_CACHE, error=TypeError,
            words=f"cache must be the cache that {fn.__name__} returned"),
        # a wrong dtype is the wrong kind of thing: TypeError, as every other layer says it
        bad(backward, X32, cache, error=TypeError, words=("dy", "float32", "float64")),
    )],
    # multi-head attention
    bad(multi_head_attention, A["x"][0], *A_ARGS[1:], 3, error=ValueError,
        words="x must have 3 axes"),
    bad(multi_head_attention, A["x"], *A_ARGS[1:], 5, error=ValueError,
        words=("num_heads (5) must divide the width (12)",)),
    bad(multi_head_attention, A["x"], *A_ARGS[1:], 3.0, error=TypeError,
        words="num_heads must be an int"),
    bad(multi_head_attention, A["x"], *A_ARGS[1:], True, error=TypeError,
        words="num_heads must be an int"),
    bad(multi_head_attention, A["x"], *A_ARGS[1:], 0, error=ValueError,
        words="num_heads must be at least 1"),
    bad(multi_head_attention, A["x"], A["in_proj_weight"][:24], *A_ARGS[2:], 3, error=ValueError,
        words="in_proj_weight must have shape (36, 12)"),
    bad(multi_head_attention, A["x"], *A_ARGS[1:3], A["out_proj_weight"].T[:6], A_ARGS[4], 3,
        error=ValueError, words="out_proj_weight must have shape (12, 12)"),
    # the biases are checked inside linear(), whose messages say "bias", not which one
    bad(multi_head_attention, A["x"], A_ARGS[1], np.zeros(12), *A_ARGS[3:], 3, error=ValueError,
        words=("in_proj_bias", "(36,)")),
    bad(multi_head_attention, A["x"], *A_ARGS[1:4], np.zeros(12, np.float32), 3,
        error=TypeError, words=("out_proj_bias", "float32")),
    bad(multi_head_attention, A["x"].astype(np.float32), *A_ARGS[1:], 3, error=TypeError,
        words=("in_proj_weight has dtype float64", "x is float32")),
    bad(multi_head_attention, np.full((2, 5, 12), np.nan), *A_ARGS[1:], 3, error=ValueError,
        words="x contains NaN"),
    bad(multi_head_attention, np.ones((2, 5, 12), int), *A_ARGS[1:], 3, error=TypeError,
        words="x must have a real floating"),
    bad(multi_head_attention, *A_ARGS, 3, np.zeros((4, 4)), error=ValueError,
        words="mask must have shape (L, L) = (5, 5)"),
    bad(multi_head_attention, *A_ARGS, 3, np.full((5, 5), np.nan), error=ValueError,
        words=("mask", "NaN")),
    bad(multi_head_attention, *A_ARGS, 3, np.full((5, 5), np.inf), error=ValueError,
        words=("mask", "+inf")),
    bad(multi_head_attention, *A_ARGS, 3, MASK.astype(np.float32), error=TypeError,
        words=("mask has dtype float32", "x is float64")),
    bad(multi_head_attention, *A_ARGS, 3, np.zeros((5, 5), bool), error=TypeError,
        words="mask has dtype bool"),
    bad(multi_head_attention, *A_ARGS, 3, MASK.tolist(), error=TypeError,
        words="mask must be None or an (L, L) float array"),
    # a query that may attend to nothing has no softmax (torch returns NaN there)
    bad(multi_head_attention, *A_ARGS, 3, full_row_masked(), error=ValueError,
        words=("mask", "row")),
    bad(multi_head_attention_backward, np.ones((2, 4, 12)), A_CACHE, error=ValueError,
        words="dy must have shape (2, 5, 12)"),
    bad(multi_head_attention_backward, np.ones((2, 5, 12)), LIN_CACHE, error=TypeError,
        words="cache must be the cache that multi_head_attention returned"),
    bad(multi_head_attention_backward, np.ones((2, 5, 12), np.float32), A_CACHE,
        error=TypeError, words=("dy", "float32", "float64")),
    bad(causal_mask, 0, X, error=ValueError, words="length must be at least 1"),
    bad(causal_mask, 10**30, X, error=ValueError,
        words=(f"length = {10**30} asks for a", "more than this machine")),
    bad(causal_mask, 2.0, X, error=TypeError, words="length must be an int"),
    bad(causal_mask, 3, [1.0], error=TypeError, words=("like", "list")),
    # -inf has no integer form: OverflowError before
    bad(causal_mask, 3, np.zeros(2, int), error=TypeError, words=("like", "float")),
    bad(activation, "relu", error=ValueError,
        words="activation must be one of ['gelu', 'quick_gelu'], got 'relu'"),
    bad(activation, None, error=ValueError, words="activation must be one of"),
    # residual blocks
    bad(block_shapes, 0, 4, error=ValueError, words="d must be at least 1"),
    bad(block_shapes, 6, 2.5, error=TypeError, words="hidden must be an int"),
    bad(residual_block, X, without_key("b.mlp.c_fc.bias"), "b.", 3, error=ValueError,
        words="params has no 'b.mlp.c_fc.bias'"),
    bad(residual_block, X, BLOCK, "b.", 3, "relu", error=ValueError,
        words="activation must be one of ['gelu', 'quick_gelu'], got 'relu'"),
    bad(residual_block, X, BLOCK, "b.", 3, None, error=ValueError, words="activation must be"),
    bad(residual_block, X, BLOCK, "b.", 4, error=ValueError, words="num_heads (4) must divide"),
    bad(residual_block, X, BLOCK, "b.", "3", error=TypeError, words="num_heads must be an int"),
    bad(residual_block, X, list(BLOCK.values()), "b.", 3, error=TypeError,
        words="params must be a dict of arrays"),
    bad(residual_block, X, BLOCK, 0, 3, error=TypeError, words="prefix must be a str"),
    bad(residual_block, X[0], BLOCK, "b.", 3, error=ValueError, words="x must have 3 axes"),
    bad(residual_block, X[:, :, :4], BLOCK, "b.", 3, error=ValueError,
        words=("b.ln_1.weight", "(4,)")),
    bad(residual_block, X, BLOCK, "b.", 3, mask=np.zeros((4, 4)), error=ValueError,
        words="mask must have shape"),
    # a parameter of the wrong shape, dtype or value: the message names its key
    bad(residual_block, X, with_key("b.mlp.c_fc.bias", np.zeros(5)), "b.", 3, error=ValueError,
        words=("b.mlp.c_fc.bias", "(24,)")),
    bad(residual_block, X, with_key("b.ln_2.weight", np.full(6, np.nan)), "b.", 3,
        error=ValueError, words=("b.ln_2.weight", "NaN")),
    bad(residual_block, X32, {k: v.astype(np.float32) for k, v in BLOCK.items()}
        | {"b.attn.out_proj.bias": np.zeros(6)}, "b.", 3, error=TypeError,
        words=("b.attn.out_proj.bias", "float64")),
    bad(residual_block_backward, np.ones((2, 4, 6)), B_CACHE, error=ValueError,
        words="dy must have shape (2, 5, 6)"),
    bad(residual_block_backward, np.ones((2, 5, 6)), LN_CACHE, error=TypeError,
        words="cache must be the cache that residual_block returned"),
    bad(residual_block_backward, np.ones((2, 5, 6), np.float32), B_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    bad(transformer, X, BLOCK, "b.", 1, 3, error=ValueError,
        words="params has no 'b.resblocks.0.ln_1.weight'"),
    bad(transformer, X, BLOCK, "", 0, 3, error=ValueError, words="layers must be at least 1"),
    # the prefix is joined into every block's keys: a None made 'Noneresblocks.0.ln_1.weight'
    bad(transformer, X, BLOCK, None, 1, 3, error=TypeError,
        words=("prefix must be a str", "NoneType")),
    bad(transformer, X, BLOCK, 7, 1, 3, keep_cache=False, error=TypeError,
        words=("prefix must be a str", "int")),
    bad(transformer, X, BLOCK, "", 2.0, 3, error=TypeError, words="layers must be an int"),
    bad(residual_block, X, BLOCK, "b.", 3, keep_cache="no", error=TypeError,
        words="keep_cache must be True or False, got str"),
    bad(transformer, X, BLOCK, "", 1, 3, keep_cache=None, error=TypeError,
        words="keep_cache must be True or False, got NoneType"),
    bad(residual_block, X, BLOCK, "b.", 3, rows=np.array([0, 1]), error=ValueError,
        words=("rows is for inference", "keep_cache=False")),
    bad(residual_block, X, BLOCK, "b.", 3, keep_cache=False, rows=np.array([0, 5]),
        error=ValueError, words="rows must hold positions in [0, 5) (the tokens)"),
    bad(transformer, X, BLOCK, "", 1, 3, rows=np.array([0, 1]), error=ValueError,
        words="rows is for inference"),
    bad(multi_head_attention, *A_ARGS, 3, rows=np.array([[0, 1]]), error=ValueError,
        words="rows must have shape (B,) = (2,)"),
    bad(take_rows, X, np.array([0.0, 1.0]), error=TypeError,
        words="rows must hold integer positions, got dtype float64"),
    bad(take_rows, X, [0, 1], error=TypeError, words="rows must be None or a (B,) integer"),
    bad(take_rows, X[0], np.array([0, 1]), error=ValueError, words="x must have 3 axes"),
    bad(take_rows, X, np.array([-1, 0]), error=ValueError,
        words=("rows must hold positions in [0, 5)", "from -1 to 0")),
    bad(as_rows, np.array([0, 1, 2]), X, error=ValueError,
        words="rows must have shape (B,) = (2,), one position per sequence, got (3,)"),
    bad(as_rows, np.array([True, False]), X, error=TypeError,
        words="rows must hold integer positions"),
    bad(transformer_backward, np.ones((2, 5, 6)), (), error=TypeError,
        words="cache must be the tuple of block caches"),
    bad(transformer_backward, np.ones((2, 5, 6)), [B_CACHE], error=TypeError,
        words="cache must be the tuple of block caches"),
    bad(transformer_backward, np.ones((2, 5, 6)), (LN_CACHE,), error=TypeError,
        words="cache must be the cache that residual_block returned"),
    bad(transformer_backward, np.ones((2, 3, 6)), T_CACHE, error=ValueError,
        words="dy must have shape (2, 5, 6)"),
    # patches
    bad(patch_embed, IMAGES[:, :, :7], CONV, error=ValueError,
        words=("divisible by the patch size 4", "7 x 12")),
    bad(patch_embed, IMAGES[0], CONV, error=ValueError, words="images must have 4 axes"),
    bad(patch_embed, IMAGES, CONV[:, :2], error=ValueError, words="weight must have shape"),
    bad(patch_embed, IMAGES, CONV[..., :2], error=ValueError, words="weight must have shape"),
    bad(patch_embed, IMAGES, CONV[0], error=ValueError,
        words="weight must have shape (D, C, p, p)"),
    bad(patch_embed, IMAGES, CONV.tolist(), error=TypeError, words="weight must be an array"),
    bad(patch_embed, IMAGES, CONV.astype(np.float32), error=TypeError,
        words=("weight has dtype float32", "images is float64")),
    bad(patch_embed, IMAGES.astype(int), CONV, error=TypeError,
        words="images must have a real floating"),
    bad(patch_embed, IMAGES.astype(np.float16), CONV, error=TypeError, words=("images", "float16")),
    bad(patch_embed, IMAGES * np.nan, CONV, error=ValueError, words="images contains NaN"),
    bad(patch_embed_backward, np.ones((2, 6, 4)), P_CACHE, error=ValueError,
        words="dy must have shape"),
    bad(patch_embed_backward, np.ones((2, 5, 5)), P_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 6, 5)")),
    bad(patch_embed_backward, np.ones((3, 6, 5)), P_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 6, 5)")),
    bad(patch_embed_backward, np.ones((2, 6, 5), np.float32), P_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    bad(patch_embed_backward, np.ones((2, 6, 5)), LIN_CACHE, error=TypeError,
        words="cache must be the cache that patch_embed returned"),
    # class token and positions
    bad(prepend_class_token, P_Y, np.ones(4), error=ValueError,
        words="class_embedding must have shape (5,)"),
    bad(prepend_class_token, P_Y, np.ones((1, 5)), error=ValueError,
        words="class_embedding must have shape (5,)"),
    bad(prepend_class_token, P_Y.astype(np.float32), np.ones(5), error=TypeError,
        words=("class_embedding has dtype float64", "x is float32")),
    bad(prepend_class_token, P_Y[0], np.ones(5), error=ValueError, words="x must have 3 axes"),
    bad(prepend_class_token, P_Y, [1.0] * 5, error=TypeError, words="class_embedding must be an"),
    bad(prepend_class_token_backward, np.ones((2, 6, 5)), C_CACHE, error=ValueError,
        words="dy must have shape (2, 7, 5)"),
    bad(prepend_class_token_backward, np.ones((2, 7, 5)), LIN_CACHE, error=TypeError,
        words="cache must be the cache that prepend_class_token returned"),
    bad(prepend_class_token_backward, np.ones((2, 7, 5), np.float32), C_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    bad(add_positions, C_Y, POS[:6], error=ValueError,
        words="x has 7 positions but positional_embedding only 6"),
    bad(add_positions, C_Y, np.ones((9, 4)), error=ValueError,
        words="positional_embedding must have shape (any, 5)"),
    bad(add_positions, C_Y, np.ones(5), error=ValueError,
        words="positional_embedding must have shape (context, D)"),
    bad(add_positions, C_Y, POS.astype(np.float32), error=TypeError,
        words=("positional_embedding has dtype float32", "x is float64")),
    bad(add_positions, C_Y, POS * np.nan, error=ValueError,
        words="positional_embedding contains NaN"),
    bad(add_positions, C_Y, POS.tolist(), error=TypeError,
        words="positional_embedding must be an array"),
    bad(add_positions_backward, np.ones((2, 10, 5)), Q_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 7, 5)")),
    bad(add_positions_backward, np.ones((2, 7, 4)), Q_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 7, 5)")),
    bad(add_positions_backward, np.ones((2, 7, 5)), LIN_CACHE, error=TypeError,
        words="cache must be the cache that add_positions returned"),
    bad(add_positions_backward, np.ones((2, 7, 5), np.float32), Q_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    # tokens
    bad(token_embed, IDS + 1, TABLE, error=ValueError,
        words=("ids must hold ids in [0, 9)", "from 1 to 9")),
    bad(token_embed, IDS - 2, TABLE, error=ValueError, words="ids must hold ids in [0, 9)"),
    bad(token_embed, IDS.astype(float), TABLE, error=TypeError,
        words="ids must hold integer token ids"),
    bad(token_embed, IDS > 2, TABLE, error=TypeError, words="ids must hold integer token ids"),
    bad(token_embed, IDS[0], TABLE, error=ValueError, words="ids must have shape (B, L)"),
    bad(token_embed, IDS[:, :0], TABLE, error=ValueError, words="ids must have shape (B, L)"),
    bad(token_embed, "a cat", TABLE, error=TypeError, words="ids must be"),
    bad(token_embed, IDS, TABLE.astype(int), error=TypeError,
        words="weight must have a real floating"),
    bad(token_embed, IDS, TABLE[0], error=ValueError, words="weight must have 2 axes"),
    bad(token_embed, IDS, TABLE * np.nan, error=ValueError, words="weight contains NaN"),
    bad(token_embed_backward, np.ones((2, 4, 5)), E_CACHE, error=ValueError,
        words="dy must have shape (2, 4, 6)"),
    bad(token_embed_backward, np.ones((3, 4, 6)), E_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 4, 6)")),
    bad(token_embed_backward, np.ones((2, 5, 6)), E_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 4, 6)")),
    bad(token_embed_backward, np.ones((2, 4, 6)), LIN_CACHE, error=TypeError,
        words="cache must be the cache that token_embed returned"),
    bad(token_embed_backward, np.ones((2, 4, 6), np.float32), E_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    # pooling
    bad(class_token_pool, K_Y, error=ValueError, words="x must have 3 axes"),
    bad(class_token_pool, Q_Y * np.nan, error=ValueError, words="x contains NaN"),
    bad(class_token_pool_backward, np.ones((2, 4)), K_CACHE, error=ValueError,
        words="dy must have shape"),
    bad(class_token_pool_backward, np.ones((3, 5)), K_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 5)")),
    bad(class_token_pool_backward, np.ones((2, 5)), LIN_CACHE, error=TypeError,
        words="cache must be the cache that class_token_pool returned"),
    bad(class_token_pool_backward, np.ones((2, 5), np.float32), K_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    bad(eot_pool, E_Y, IDS[:, :3], error=ValueError, words="ids must have shape (B, L) = (2, 4)"),
    bad(eot_pool, E_Y, IDS.astype(float), error=TypeError, words="ids must hold integer"),
    bad(eot_pool, E_Y[0], IDS, error=ValueError, words="x must have 3 axes"),
    bad(eot_pool, E_Y, IDS - 2, error=ValueError, words="ids"),
    # silently broadcast before: a (1, D) or (B, 1) dy made a (B, L, D) gradient
    bad(eot_pool_backward, np.ones((1, 6)), O_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 6)")),
    bad(eot_pool_backward, np.ones((2, 1)), O_CACHE, error=ValueError,
        words=("dy must have shape", "(2, 6)")),
    bad(eot_pool_backward, np.ones((2, 6)), LIN_CACHE, error=TypeError,
        words="cache must be the cache that eot_pool returned"),
    bad(eot_pool_backward, np.ones((2, 6), np.float32), O_CACHE, error=TypeError,
        words=("dy", "float32", "float64")),
    # the shared validators
    bad(as_activation, np.ones((2, 3)), "h", 3, error=ValueError, words="h must have 3 axes"),
    bad(as_activation, np.ones((2, 3)), "h", 2, 4, error=ValueError, words="h must have width 4"),
    bad(as_activation, np.ones(()), "h", error=ValueError, words="h must have at least one axis"),
    bad(as_activation, "h", "h", error=TypeError, words="h must be an array"),
    bad(as_weight, [1.0], "w", (1,), X, error=TypeError, words="w must be an array"),
    bad(as_weight, np.ones(3), "w", (4,), X, error=ValueError, words="w must have shape (4,)"),
    bad(as_weight, np.ones((3, 2)), "w", (None, 3), X, error=ValueError,
        words="w must have shape (any, 3)"),
    bad(as_weight, np.ones(3, np.float32), "w", (3,), X, "h", error=TypeError,
        words=("w has dtype float32", "h is float64")),
    bad(as_token_ids, np.ones((2, 3)), "ids", 5, error=TypeError, words="ids must hold integer"),
    bad(as_token_ids, np.full((2, 3), 5), "ids", 5, error=ValueError, words="[0, 5)"),
    bad(as_token_ids, np.ones((2, 4), int), "ids", 5, 3, error=ValueError,
        words=("4 tokens per text", "context_length 3")),
    bad(as_cache, [1, 2], "cache", 2, "linear", error=TypeError,
        words="cache must be the cache that linear returned, got list"),
    bad(as_cache, (1, "layer_norm"), "cache", 1, "linear", error=TypeError,
        words="cache must be the cache that linear returned, got the cache of layer_norm"),
    bad(as_upstream, np.ones((2, 4)), (2, 5), X, error=ValueError,
        words="dy must have shape (2, 5) (the forward's output), got (2, 4)"),
    bad(as_upstream, np.ones((2, 5), np.float32), (2, 5), X, error=TypeError,
        words="dy has dtype float32 but the forward pass ran in float64"),
    bad(as_upstream, [[1.0]], (1, 1), X.astype(np.float32), error=TypeError,
        words="dy has dtype float64 but the forward pass ran in float32"),
    bad(as_heads, 5, 12, error=ValueError, words="num_heads (5) must divide the width (12)"),
    bad(as_heads, 2.5, 12, error=TypeError, words="num_heads must be an int"),
    bad(as_heads, -1, 12, error=ValueError, words="num_heads must be at least 1"),
    bad(as_prefix, b"visual.", error=TypeError, words=("prefix must be a str", "bytes")),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD)
def test_bad_input_is_named(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


@pytest.mark.parametrize("module", NN_MODULES, ids=lambda m: m.__name__)
def test_every_public_function_has_bad_input_rows(module):
    assert_table_covers(module, BAD)


@pytest.mark.parametrize("name", ["gelu", "quick_gelu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "strided"])
def test_inplace_activation_overwrites_x_with_exactly_the_forward(name, dtype, layout):
    """inplace=True (inference) writes the very numbers the forward returns into x, on
    every path: the float32 chunk loop (more than one chunk, and a ragged last one), the
    generic one, and arrays the chunk loop cannot write through (Fortran order, strided)."""
    from numclip.nn.activations import _CHUNK

    forward = ACTIVATIONS[name][0]
    x = (8 * np.random.default_rng(7).standard_normal((3, _CHUNK // 4 + 5))).astype(dtype)
    x = {"contiguous": x, "fortran": np.asfortranarray(x), "strided": x[:, ::2]}[layout]
    want = forward(x)[0]
    y, cache = forward(x, inplace=True)
    assert y is x and cache is None
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize("activation", ["gelu", "quick_gelu"])
def test_a_block_without_its_cache_gives_the_same_numbers_and_leaves_x_alone(activation):
    for x, params in ((X, BLOCK), (X32, {k: v.astype(np.float32) for k, v in BLOCK.items()})):
        before = x.copy()
        want = residual_block(x, params, "b.", 3, activation)[0]
        got, cache = residual_block(x, params, "b.", 3, activation, keep_cache=False)
        assert cache is None and got.dtype == x.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("activation", ["gelu", "quick_gelu"])
@pytest.mark.parametrize("causal", [False, True])
def test_a_block_read_at_one_token_per_sequence_gives_that_tokens_output(activation, causal):
    """rows (inference at an encoder's last block): each sequence's one token queries every
    token's keys and values, and its output is the full block's at that token. Only the
    products' row counts differ (B rows where the full block has B L), which BLAS may sum in
    another order. Reordering a sum of K terms moves it by at most 2 K u of the terms'
    magnitude, and the block chains sums of 6, 2, 5, 6, 6 and 24 terms (D, head width, L,
    D, D, 4 D): about 100 u in all, under the 1e-5 (170 u) allowed in float32 and far under
    the 1e-12 (4500 u) in float64; a wrong row, head or mask row is off by O(1)."""
    rows = np.array([4, 1])
    for x, params, bound in ((X, BLOCK, 1e-12),
                             (X32, {k: v.astype(np.float32) for k, v in BLOCK.items()}, 1e-5)):
        mask = causal_mask(5, x) if causal else None
        full = residual_block(x, params, "b.", 3, activation, mask, keep_cache=False)[0]
        got, cache = residual_block(x, params, "b.", 3, activation, mask, keep_cache=False,
                                    rows=rows)
        want = full[np.arange(2), rows][:, None, :]  # (B, 1, D)
        assert cache is None and got.shape == (2, 1, 6) and got.dtype == x.dtype
        assert_within(got, want, bound * np.max(np.abs(want)))
        np.testing.assert_array_equal(take_rows(x, rows), x[np.arange(2), rows][:, None, :])
        # in a stack, rows reach the last block only: the first gives it every token
        two = {f"t.resblocks.{i}.{k[2:]}": v for i in (0, 1) for k, v in params.items()}
        stack = transformer(x, two, "t.", 2, 3, activation, mask, keep_cache=False, rows=rows)
        whole = transformer(x, two, "t.", 2, 3, activation, mask, keep_cache=False)[0]
        assert stack[1] is None and stack[0].shape == (2, 1, 6)
        assert_within(stack[0], whole[np.arange(2), rows][:, None, :],
                      bound * np.max(np.abs(whole)))


def test_the_float32_gelu_of_huge_inputs_is_x_or_zero_without_a_warning():
    """Beyond the fit's range, where nothing clips the input (and from |x| > 1.8e19, whose
    square is inf in float32), GELU is x itself or -0, Phi exactly 1 or 0, and no
    overflow warning escapes: on every float32 from 6 to the largest, both signs."""
    big = np.geomspace(6, np.finfo(np.float32).max, 200_001, dtype=np.float32)
    x = np.concatenate([[6.0001, -6.0001, 1e19, -1e19, 3e38, -3e38], big, -big]).astype(
        np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, (_, cdf, _) = gelu(x)
    np.testing.assert_array_equal(cdf, x > 0)
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0))


def test_the_float32_gelu_fit_needs_no_clipping():
    """Why nothing clips x: at |x| = 6, x R(x^2) is past 10, where float32 tanh is 1, and
    R increases on [0, inf) (no root of R' there, R(0) > 0), so for |x| > 6 the argument
    of tanh only grows and Phi stays exactly 1 or 0."""
    from numclip.nn.activations import _TANH_R

    r = np.polynomial.Polynomial(_TANH_R.astype(np.float64))
    assert 6 * r(36.0) > 10 and r(0.0) > 0
    roots = r.deriv().roots()
    assert not np.any((np.abs(roots.imag) < 1e-9) & (roots.real >= 0)), roots


def test_the_float32_gelu_is_within_a_few_ulps_of_the_exact_one():
    """numclip's float32 GELU computes Phi as (1 + tanh(x R(x^2))) / 2 with R fitted by
    tests/fit_gelu.py.  The fit itself, evaluated in float64 (where rounding is ~1e-16,
    the same on any CPU), is within 2.9e-8 of Phi and increasing; float32 adds the
    rounding of about ten operations, a few 6e-8 units, and tanh's own ulp, which differs
    between CPUs' SIMD kernels: the 2.5e-7 bound on the float32 result leaves that room
    (on this machine it measured 9.7e-8).  Exact 0 and 1 far out."""
    import scipy.special

    from numclip.nn.activations import gelu

    x = np.linspace(-8, 8, 2_000_001, dtype=np.float32)
    exact = x.astype(np.float64) * scipy.special.ndtr(x.astype(np.float64))
    got, (_, cdf, _) = gelu(x)
    assert got.dtype == np.float32
    assert np.max(np.abs(cdf - scipy.special.ndtr(x.astype(np.float64)))) < 2.5e-7
    assert np.max(np.abs(got - exact) / np.maximum(np.abs(x), 1)) < 2.5e-7 + 2**-23
    assert cdf[0] == 0 and cdf[-1] == 1
    from numclip.nn.activations import _TANH_R

    x64 = x.astype(np.float64)
    fit = 0.5 * (1 + np.tanh(x64 * np.polyval(_TANH_R[::-1].astype(np.float64), x64 * x64)))
    assert np.max(np.abs(fit - scipy.special.ndtr(x.astype(np.float64)))) < 3e-8
    assert np.all(np.diff(fit) >= 0)  # the fitted distribution function never decreases
