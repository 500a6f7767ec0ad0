"""The encoders (numclip.nn.encoders): VisionTransformer and TextTransformer against open_clip
(forward and torch autograd, every parameter, both activations) where it is installed,
against finite differences everywhere, on every backend, and on bad input.

Two configurations: open_clip's tiny CLIP of the issue (12 px images, patches of 4, widths
16 and 12) for the comparisons, and a smaller one (8 px, width 6, 3 heads of 2) for finite
differences, whose forward passes are cheap enough to repeat per parameter.
"""

import numpy as np
import pytest
from conftest import U, assert_on_backend, assert_refused, assert_within, public_callables, put

from numclip import to_numpy
from numclip.nn import TextTransformer, VisionTransformer
from numclip.nn import encoders as encoders_module
from numclip.nn.encoders import check_params

ACTIVATIONS = ["gelu", "quick_gelu"]
U64 = U["float64"]

# open_clip.CLIP(EMBED_DIM, vision_cfg=VISION_CFG, text_cfg=TEXT_CFG), and numclip's twins
EMBED_DIM = 8
VISION_CFG = dict(image_size=12, patch_size=4, width=16, layers=2, head_width=8)
TEXT_CFG = dict(context_length=9, vocab_size=64, width=12, heads=3, layers=2)


def numclip_vit(activation):
    return VisionTransformer(12, 4, 16, 2, 16 // 8, EMBED_DIM, activation=activation)


def numclip_text(activation):
    return TextTransformer(9, 64, 12, 2, 3, EMBED_DIM, activation=activation)


IMAGES = np.random.default_rng(1).standard_normal((3, 3, 12, 12))
# the end-of-text token is the largest id: at position 3, at the last position 8, and a row
# whose largest id comes twice (positions 1 and 2: argmax reads the first)
TOKENS = np.array([[62, 5, 17, 63, 0, 0, 0, 0, 0],
                   [62, 9, 9, 30, 12, 8, 44, 2, 63],
                   [1, 40, 40, 7, 0, 0, 0, 0, 0]])
DFEATURES = np.random.default_rng(2).standard_normal((3, EMBED_DIM))

# ------------------------------------------------------------------ open_clip
# Both sides compute the same formulas in float64, summing in other orders: each entry is
# off by at most about (n + c) u of the size of its terms (sums of n <= 64 terms, c a few
# hundred roundings through two blocks: ~1e-13), amplified by the network's conditioning
# (its layer norms' 1/std, the softmaxes), below 1e2 for these random weights of order 1.
# 1e-10 of the largest entry leaves 10x more; a real mistake (a wrong key, the other GELU,
# a missing eps) moves entries by 1e-4 of their size or far more.
OPEN_CLIP_RTOL = 1e-10


@pytest.fixture(scope="module", params=ACTIVATIONS)
def reference(request):
    """open_clip's tiny CLIP in float64 with every state_dict entry perturbed by seeded
    noise, its features of IMAGES and TOKENS, and torch autograd's gradients of
    sum(features * DFEATURES) for every parameter."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    model = open_clip.CLIP(EMBED_DIM, vision_cfg=VISION_CFG, text_cfg=TEXT_CFG,
                           quick_gelu=request.param == "quick_gelu").double()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # layer norms start at 1 and 0, biases at 0: none may stay there
        for value in model.state_dict().values():
            value.add_(0.1 * torch.randn(value.shape, generator=generator, dtype=value.dtype))
    out = {"activation": request.param, "keys": list(model.state_dict()),
           "params": {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}}
    for name, encode, x in (("image", model.encode_image, torch.tensor(IMAGES)),
                            ("text", model.encode_text, torch.tensor(TOKENS))):
        model.zero_grad()
        features = encode(x)
        (features * torch.tensor(DFEATURES)).sum().backward()
        out[name] = features.detach().numpy()
        out[f"{name} grads"] = {k: p.grad.numpy().copy() for k, p in model.named_parameters()
                                if p.grad is not None}
    return out


def assert_close(ours, theirs, what, rtol=OPEN_CLIP_RTOL):
    ours, theirs = np.asarray(to_numpy(ours)), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, want {theirs.shape}"
    error, size = float(np.max(np.abs(ours - theirs))), float(np.max(np.abs(theirs)))
    assert size > 0 and error <= rtol * size, f"{what}: off by {error / size:.3g} relative"


def test_the_keys_and_shapes_are_open_clips_state_dict(reference):
    vit, text = numclip_vit("gelu"), numclip_text("gelu")
    shapes = {k: v.shape for k, v in reference["params"].items()}
    vision_keys = [k for k in reference["keys"] if k.startswith("visual.")]
    # in open_clip's order; logit_scale belongs to neither encoder
    assert list(vit.param_shapes()) == vision_keys
    assert list(text.param_shapes()) == [k for k in reference["keys"]
                                         if k not in vision_keys and k != "logit_scale"]
    for encoder in (vit, text):
        assert {k: tuple(s) for k, s in encoder.param_shapes().items()} == {
            k: tuple(shapes[k]) for k in encoder.param_shapes()}


def test_features_equal_open_clips(reference):
    activation, params = reference["activation"], reference["params"]
    image_features, _ = numclip_vit(activation).forward(params, IMAGES)
    assert_close(image_features, reference["image"], f"{activation} image features")
    text_features, _ = numclip_text(activation).forward(params, TOKENS)
    assert_close(text_features, reference["text"], f"{activation} text features")


def test_the_other_activation_is_told_apart(reference):
    """The comparison can fail: GELU and QuickGELU differ by up to 0.02 per entry."""
    other = "gelu" if reference["activation"] == "quick_gelu" else "quick_gelu"
    features, _ = numclip_vit(other).forward(reference["params"], IMAGES)
    with pytest.raises(AssertionError, match="off by"):
        assert_close(features, reference["image"], "image features")


@pytest.mark.parametrize("side", ["image", "text"])
def test_gradients_equal_torch_autograd_for_every_parameter(reference, side):
    activation, params = reference["activation"], reference["params"]
    encoder, x = ((numclip_vit(activation), IMAGES) if side == "image"
                  else (numclip_text(activation), TOKENS))
    _, cache = encoder.forward(params, x)
    grads = encoder.backward(DFEATURES, cache)
    torch_grads = reference[f"{side} grads"]
    assert list(grads) == list(encoder.param_shapes())
    assert set(torch_grads) == set(grads)  # the encoder's parameters, every one of them
    for key, grad in grads.items():
        assert_close(grad, torch_grads[key], f"{activation} d{key}")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_short_texts_equal_texts_zero_padded_to_the_context(activation):
    """numclip also takes L < context_length ids (open_clip wants the whole context); with
    the causal mask, the tokens after the end-of-text one change nothing, so padding with
    zeros gives the same features and gradients."""
    text, rng = numclip_text(activation), np.random.default_rng(11)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in text.init_params(rng).items()}
    short = TOKENS[:, :4].copy()
    short[1, 3] = 63  # every end-of-text token within the first 4 positions
    padded = np.concatenate([short, np.zeros((3, 5), short.dtype)], axis=1)
    features, cache = text.forward(params, short)
    want, want_cache = text.forward(params, padded)
    # the same products over 4 tokens or 9, summed in the same order or nearly: a few
    # dozen u of the largest entry at most, 1e-12 with room
    assert_close(features, want, "features", rtol=1e-12)
    grads, want_grads = text.backward(DFEATURES, cache), text.backward(DFEATURES, want_cache)
    np.testing.assert_array_equal(grads["positional_embedding"][4:], 0.0)
    for key in grads:
        assert_close(grads[key], want_grads[key], f"d{key}", rtol=1e-12)


# ------------------------------------------------------------------ finite differences
# Each parameter is checked along one random unit direction v: the centred difference of
# f = <dfeatures, features> with h = 1e-6 against <grad, v>.  (Entry by entry would cost
# two forward passes per entry, 1400 here; the layers' own tests do that, so these check
# that the encoder wires every key to the right place.  A wrong gradient passes only if
# its error is orthogonal to v.)  The error of the difference, as in tests/test_nn.py:
# truncation h^2 S and rounding ROUNDINGS u S / h, S = sum|dfeatures| max|features|, with
# ROUNDINGS = 256 for two blocks and the layers around them; measured: below 2 u S / h.
H = 1e-6
ROUNDINGS = 256


def small_encoders(activation):
    """Tiny configs: B 2, 4 patches + class token, width 6, 3 heads of 2, MLP 24, output 5;
    texts of 5 tokens in a context of 7, vocabulary 11."""
    rng = np.random.default_rng(4)
    vit = VisionTransformer(8, 4, 6, 2, 3, 5, activation=activation)
    text = TextTransformer(7, 11, 6, 2, 3, 5, activation=activation)
    out = []
    for encoder, x in ((vit, rng.standard_normal((2, 3, 8, 8))),
                       (text, np.array([[10, 4, 9, 0, 0], [3, 3, 2, 9, 9]]))):
        params = {k: v + 0.3 * rng.standard_normal(v.shape)  # off the initial 1s and 0s
                  for k, v in encoder.init_params(rng).items()}
        out.append((encoder, params, x))
    return out


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("which", [0, 1], ids=["vision", "text"])
def test_backward_matches_finite_differences_for_every_parameter(activation, which):
    encoder, params, x = small_encoders(activation)[which]
    dfeatures = np.random.default_rng(5).standard_normal((2, 5))
    features, cache = encoder.forward(params, x)
    grads = encoder.backward(dfeatures, cache)
    assert list(grads) == list(encoder.param_shapes())
    size = float(np.sum(np.abs(dfeatures))) * max(1.0, float(np.max(np.abs(features))))
    bound = size * (ROUNDINGS * U64 / H + H**2)

    def f():
        return float(np.sum(dfeatures * encoder.forward(params, x)[0]))

    directions = np.random.default_rng(6)
    for key, p in params.items():
        v = directions.standard_normal(p.shape)
        v /= np.linalg.norm(v)
        saved = p.copy()
        try:
            p[...] = saved + H * v
            f_plus = f()
            p[...] = saved - H * v
            f_minus = f()
        finally:
            p[...] = saved
        error = abs((f_plus - f_minus) / (2 * H) - float(np.sum(grads[key] * v)))
        assert error <= bound, f"d{key}: off by {error:.3g}, more than the bound {bound:.3g}"
        # a check that cannot fail: the gradient stands far above the bound
        assert float(np.linalg.norm(grads[key])) > 1e3 * bound, f"d{key} is too small"
    if which == 1:  # positions 5 and 6 of the context hold no token: no gradient
        np.testing.assert_array_equal(grads["positional_embedding"][5:], 0.0)
        np.testing.assert_array_equal(grads["token_embedding.weight"][[1, 5, 6, 7, 8]], 0.0)


# ------------------------------------------------------------------ backends
# float32 and float64 against a float64 NumPy reference from the same (rounded) inputs:
# at most 256 roundings along the longest chain, amplified by a conditioning of at most 4
# for these inputs of order 1: 1024 u of the largest entry (6e-5 in float32, the issue's
# 1e-4 with room; 1e-13 in float64).  Measured in float32: below 25 u.
BACKEND_ULPS = 1024


@pytest.mark.parametrize("which", [0, 1], ids=["vision", "text"])
def test_encoders_keep_backend_and_dtype(xp, dtype_name, which):
    encoder, params, x = small_encoders("gelu")[which]
    params = {k: v.astype(dtype_name).astype(np.float64) for k, v in params.items()}
    if x.dtype.kind == "f":
        x = x.astype(dtype_name).astype(np.float64)
    dfeatures = np.random.default_rng(7).standard_normal((2, 5)).astype(dtype_name)
    want, cache = encoder.forward(params, x)
    want_grads = encoder.backward(dfeatures.astype(np.float64), cache)
    on = {k: put(xp, v, dtype_name) for k, v in params.items()}
    dfx = put(xp, dfeatures, dtype_name)
    features, cache = encoder.forward(on, xp.asarray(x) if x.dtype.kind == "i"
                                      else put(xp, x, dtype_name))
    grads = encoder.backward(dfx, cache)
    bound = BACKEND_ULPS * U[dtype_name]
    assert_on_backend(features, dfx)
    assert_close(features, want, "features", rtol=bound)
    assert list(grads) == list(want_grads)
    for key, grad in grads.items():
        assert_on_backend(grad, dfx)
        assert_close(grad, want_grads[key], f"d{key}", rtol=bound)


def test_init_params_are_open_clips_shapes_in_float64_and_seeded():
    for encoder in (VisionTransformer(8, 4, 6, 2, 3, 5), TextTransformer(7, 11, 6, 2, 3, 5)):
        params = encoder.init_params(np.random.default_rng(0))
        again = encoder.init_params(np.random.default_rng(0))
        assert list(params) == list(encoder.param_shapes())
        for key, value in params.items():
            assert value.shape == tuple(encoder.param_shapes()[key]) and value.dtype == np.float64
            np.testing.assert_array_equal(value, again[key])
            if key.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight",
                             "ln_final.weight")):
                np.testing.assert_array_equal(value, 1.0)
        encoder.forward(params, np.zeros((1, 3, 8, 8)) if isinstance(encoder, VisionTransformer)
                        else np.array([[1, 10]]))  # and they run


def test_unusual_but_valid_inputs_give_the_same_answer():
    """Lists, Fortran order, NumPy integers in the config (house rule)."""
    (vit, params, images), (text, tparams, ids) = small_encoders("gelu")
    want, _ = vit.forward(params, images)
    np.testing.assert_array_equal(vit.forward(params, images.tolist())[0], want)
    np.testing.assert_array_equal(vit.forward(params, np.asfortranarray(images))[0], want)
    same = VisionTransformer(np.int64(8), np.int64(4), np.int64(6), 2, np.int32(3), 5)
    np.testing.assert_array_equal(same.forward(params, images)[0], want)
    assert isinstance(same.width, int)
    # token ids typed as lists, as a tokenizer may hand them over
    np.testing.assert_array_equal(text.forward(tparams, ids.tolist())[0],
                                  text.forward(tparams, ids)[0])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_inference_without_caches_gives_the_same_features(activation):
    """keep_cache=False (what OpenCLIP and TinyCLIP's encode_* use) drops each block's
    intermediates as it goes, and its last block computes only the pooled token (the class
    token; the end-of-text token, which is not the last one in the first text here). The
    features are the same function: the last block's products have B rows instead of B L,
    which BLAS may sum in another order, so they agree to float64 rounding (1e-12 of their
    size: a thousand times that rounding, a trillionth of what a wrong row would give)."""
    (vit, params, images), (text, tparams, ids) = small_encoders(activation)
    for encoder, p, x in ((vit, params, images), (text, tparams, ids)):
        want, cache = encoder.forward(p, x)
        got, none = encoder.forward(p, x, keep_cache=False)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert_within(got, want, 1e-12 * np.max(np.abs(want)))
        assert cache is not None and none is None


# ------------------------------------------------------------------ bad input

VIT = VisionTransformer(8, 4, 6, 2, 3, 5)
TEXT = TextTransformer(7, 11, 6, 2, 3, 5)
PV = VIT.init_params(np.random.default_rng(8))
PT = TEXT.init_params(np.random.default_rng(9))
IMG = np.random.default_rng(10).standard_normal((2, 3, 8, 8))
IDS = np.array([[10, 4, 9, 0, 0], [3, 3, 2, 9, 9]])
_, CV = VIT.forward(PV, IMG)
_, CT = TEXT.forward(PT, IDS)
F32 = np.float32
BLOCK_BIAS = "transformer.resblocks.1.mlp.c_fc.bias"


def edit(params, changes):
    """A copy of params with ``changes`` made (a value of None removes its key)."""
    out = {**params, **changes}
    return {k: v for k, v in out.items() if v is not None}


def as32(params, *keep):
    """params in float32, but the keys in ``keep`` left in float64."""
    return {k: v if k in keep else v.astype(F32) for k, v in params.items()}


def strict(a):
    return pytest.importorskip("array_api_strict").asarray(a)


BAD_INPUT = [
    # the architectures
    ("VisionTransformer", lambda: VisionTransformer(13, 4, 6, 2, 3, 5), ValueError,
     ["image_size (13) must be a multiple of patch_size (4)"]),
    ("VisionTransformer", lambda: VisionTransformer(8, 4, 6, 2, 4, 5), ValueError,
     ["heads (4) must divide the width (6)"]),
    ("VisionTransformer", lambda: VisionTransformer(8, 4, 6, 2, 3.0, 5), TypeError,
     ["heads must be an int"]),
    ("VisionTransformer", lambda: VisionTransformer(8, 4, "6", 2, 3, 5), TypeError,
     ["width must be an int"]),
    ("VisionTransformer", lambda: VisionTransformer(True, 4, 6, 2, 3, 5), TypeError,
     ["image_size must be an int"]),
    ("VisionTransformer", lambda: VisionTransformer(8, 4, 6, 0, 3, 5), ValueError,
     ["layers must be at least 1"]),
    ("VisionTransformer", lambda: VisionTransformer(8, 4, 6, 2, 3, 5, mlp_ratio=0), ValueError,
     ["mlp_ratio must be at least 1"]),
    ("VisionTransformer", lambda: VisionTransformer(8, 4, 6, 2, 3, 5, activation="relu"),
     ValueError, ["activation must be one of ['gelu', 'quick_gelu']", "'relu'"]),
    ("VisionTransformer", lambda: VisionTransformer(8, 4, 6, 2, 3, 5, activation=None),
     ValueError, ["activation must be one of"]),
    # a prefix that is not a str made keys like "3class_embedding"
    ("VisionTransformer", lambda: VisionTransformer(8, 4, 6, 2, 3, 5, prefix=3), TypeError,
     ["prefix must be a str"]),
    ("TextTransformer", lambda: TextTransformer(0, 11, 6, 2, 3, 5), ValueError,
     ["context_length must be at least 1"]),
    ("TextTransformer", lambda: TextTransformer(7, 1.5, 6, 2, 3, 5), TypeError,
     ["vocab_size must be an int"]),
    ("TextTransformer", lambda: TextTransformer(7, 11, 6, 2, 4, 5), ValueError,
     ["heads (4) must divide the width (6)"]),
    ("TextTransformer", lambda: TextTransformer(7, 11, 6, 2, 3, -5), ValueError,
     ["output_dim must be at least 1"]),
    ("TextTransformer", lambda: TextTransformer(7, 11, 6, 2, 3, 5, activation="gelu_new"),
     ValueError, ["activation must be one of", "'gelu_new'"]),
    ("TextTransformer", lambda: TextTransformer(7, 11, 6, 2, 3, 5, prefix=None), TypeError,
     ["prefix must be a str"]),
    # forward: the params
    ("VisionTransformer.forward", lambda: VIT.forward(edit(PV, {"visual.ln_post.bias": None}), IMG),
     ValueError, ["params has no 'visual.ln_post.bias'", "vision encoder"]),
    ("VisionTransformer.forward",
     lambda: VIT.forward(edit(PV, {"visual.conv1.weight": np.ones((6, 3, 2, 2))}), IMG), ValueError,
     ["params['visual.conv1.weight'] must have shape (6, 3, 4, 4)", "(6, 3, 2, 2)"]),
    ("VisionTransformer.forward", lambda: VIT.forward(list(PV.values()), IMG), TypeError,
     ["params must be a dict of arrays", "list"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PT, IMG), ValueError,
     ["params has no 'visual.class_embedding'"]),
    # the values inside layers were refused under the layer's names ("bias contains NaN")
    ("VisionTransformer.forward",
     lambda: VIT.forward(edit(PV, {"visual." + BLOCK_BIAS: np.full(24, np.nan)}), IMG),
     ValueError, ["visual." + BLOCK_BIAS, "NaN"]),
    ("VisionTransformer.forward",
     lambda: VIT.forward(edit(PV, {"visual.proj": np.full((6, 5), np.nan)}), IMG), ValueError,
     ["visual.proj", "NaN"]),
    # proj was multiplied unchecked: float64 features from float32 images and weights
    ("VisionTransformer.forward",
     lambda: VIT.forward(as32(PV, "visual.proj"), IMG.astype(F32)), TypeError,
     ["visual.proj", "float64"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, IMG, keep_cache=0), TypeError,
     ["keep_cache must be True or False, got int"]),
    ("TextTransformer.forward", lambda: TEXT.forward(PT, IDS, keep_cache="no"), TypeError,
     ["keep_cache must be True or False, got str"]),
    # what forward(keep_cache=False) returns is no cache: backward says so
    ("VisionTransformer.backward", lambda: VIT.backward(np.ones((2, 5)), None), TypeError,
     ["cache must be the cache that VisionTransformer.forward returned, got NoneType"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, IMG.astype(F32)), TypeError,
     ["params['visual.class_embedding'] has dtype float64", "images is float32"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, strict(IMG)), TypeError,
     ["params['visual.class_embedding'] (numpy)", "images (array_api_strict)"]),
    # forward: the images
    ("VisionTransformer.forward", lambda: VIT.forward(PV, np.ones((2, 3, 12, 12))), ValueError,
     ["images must have shape (B, 3, 8, 8)", "(2, 3, 12, 12)"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, np.ones((2, 1, 8, 8))), ValueError,
     ["images must have shape (B, 3, 8, 8)"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, np.ones((3, 8, 8))), ValueError,
     ["images must have 4 axes"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, np.ones((2, 3, 8, 8), int)),
     TypeError, ["images must have a real floating dtype"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, np.ones((2, 3, 8, 8), np.float16)),
     TypeError, ["images", "float16"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, IMG * np.nan), ValueError,
     ["images contains NaN"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, None), TypeError,
     ["images must be an array"]),
    # backward
    ("VisionTransformer.backward", lambda: VIT.backward(np.ones((2, 4)), CV), ValueError,
     ["dfeatures must have shape (2, 5) (the forward's output)"]),
    ("VisionTransformer.backward", lambda: VIT.backward(np.ones(5), CV), ValueError,
     ["dfeatures must have shape (2, 5) (the forward's output), got (5,)"]),
    ("VisionTransformer.backward", lambda: VIT.backward(np.ones((3, 5)), CV), ValueError,
     ["dfeatures must have shape", "(2, 5)"]),
    ("VisionTransformer.backward", lambda: VIT.backward(np.ones((2, 5), F32), CV), TypeError,
     ["dfeatures", "float32", "float64"]),
    ("VisionTransformer.backward", lambda: VIT.backward(np.full((2, 5), np.inf), CV),
     ValueError, ["dfeatures contains NaN or infinite"]),
    ("VisionTransformer.backward", lambda: VIT.backward(np.ones((2, 5)), CT), TypeError,
     ["cache must be the cache that VisionTransformer.forward returned"]),
    ("VisionTransformer.backward", lambda: VIT.backward(np.ones((2, 5)), None), TypeError,
     ["cache must be the cache that VisionTransformer.forward returned"]),
    ("VisionTransformer.init_params", lambda: VIT.init_params("seed"), TypeError,
     ["rng", "Generator"]),
    # the text encoder
    ("TextTransformer.forward", lambda: TEXT.forward(PT, IDS.astype(float)), TypeError,
     ["ids must hold integer token ids"]),
    ("TextTransformer.forward", lambda: TEXT.forward(PT, IDS + 2), ValueError,
     ["ids must hold ids in [0, 11)", "from 2 to 12"]),
    ("TextTransformer.forward", lambda: TEXT.forward(PT, np.ones((2, 8), int)), ValueError,
     ["ids has 8 tokens per text", "context_length 7"]),
    ("TextTransformer.forward", lambda: TEXT.forward(PT, IDS[0]), ValueError,
     ["ids must have shape (B, L)"]),
    ("TextTransformer.forward", lambda: TEXT.forward(PT, "a photo of a cat"), TypeError,
     ["ids must be"]),
    ("TextTransformer.forward",
     lambda: TEXT.forward(edit(PT, {"token_embedding.weight": None}), IDS), ValueError,
     ["params has no 'token_embedding.weight'", "text encoder"]),
    ("TextTransformer.forward", lambda: TEXT.forward(edit(PT, {"ln_final.bias": np.ones(3)}), IDS),
     ValueError, ["params['ln_final.bias'] must have shape (6,)", "(3,)"]),
    ("TextTransformer.forward", lambda: TEXT.forward(PV, IDS), ValueError,
     ["params has no 'positional_embedding'"]),
    ("TextTransformer.forward",
     lambda: TEXT.forward(edit(PT, {"text_projection": np.full((6, 5), np.nan)}), IDS), ValueError,
     ["text_projection", "NaN"]),
    ("TextTransformer.forward",
     lambda: TEXT.forward(as32(PT, "text_projection"), IDS), TypeError,
     ["text_projection", "float64"]),
    # the table sets the dtype; the message blamed positional_embedding, which was float32
    ("TextTransformer.forward",
     lambda: TEXT.forward(as32(PT, "token_embedding.weight"), IDS), TypeError,
     ["token_embedding.weight", "float64"]),
    ("TextTransformer.forward",
     lambda: TEXT.forward(edit(PT, {BLOCK_BIAS: np.full(24, np.inf)}), IDS),
     ValueError, [BLOCK_BIAS, "infinite"]),
    ("TextTransformer.forward", lambda: TEXT.forward(PT, strict(IDS)), TypeError,
     ["token_embedding.weight", "numpy", "array_api_strict"]),
    ("TextTransformer.backward", lambda: TEXT.backward(np.ones((2, 6)), CT), ValueError,
     ["dfeatures must have shape (2, 5) (the forward's output)"]),
    ("TextTransformer.backward", lambda: TEXT.backward(np.ones((1, 5)), CT), ValueError,
     ["dfeatures must have shape", "(2, 5)"]),
    ("TextTransformer.backward", lambda: TEXT.backward(np.ones((2, 5), F32), CT), TypeError,
     ["dfeatures", "float32", "float64"]),
    ("TextTransformer.backward", lambda: TEXT.backward(np.full((2, 5), np.nan), CT), ValueError,
     ["dfeatures contains NaN"]),
    ("TextTransformer.backward", lambda: TEXT.backward(np.ones((2, 5)), CV), TypeError,
     ["cache must be the cache that TextTransformer.forward returned"]),
    ("TextTransformer.init_params", lambda: TEXT.init_params(1.5), TypeError,
     ["rng", "Generator"]),
    # check_weights=False skips only the NaN scan: a float32 forward is not promoted by a
    # float64 or integer weight (it came out float64), and the flag is a bool
    ("VisionTransformer.forward",
     lambda: VIT.forward(as32(PV, "visual.proj"), IMG.astype(F32), check_weights=False),
     TypeError, ["params['visual.proj'] has dtype float64", "images is float32"]),
    ("TextTransformer.forward",
     lambda: TEXT.forward(edit(PT, {"text_projection": np.ones((6, 5), int)}), IDS,
                          check_weights=False), TypeError,
     ["params['text_projection'] must be a float32 or float64 array", "int64"]),
    ("VisionTransformer.forward", lambda: VIT.forward(PV, IMG, check_weights="no"), TypeError,
     ["check_weights must be True or False"]),
    ("TextTransformer.forward", lambda: TEXT.forward(PT, IDS, check_weights=None), TypeError,
     ["check_weights must be True or False"]),
    # finite weights so large that the scores overflow: said as such, not as softmax's
    # 'z contains NaN' with NumPy's RuntimeWarning (the table turns warnings into errors)
    ("VisionTransformer.forward", lambda: VIT.forward(
        edit(PV, {"visual.transformer.resblocks.0.attn.in_proj_weight":
                  1e200 * PV["visual.transformer.resblocks.0.attn.in_proj_weight"]}), IMG),
     ValueError, ["the image features overflowed to inf or NaN", "too large"]),
    ("TextTransformer.forward", lambda: TEXT.forward(
        edit(PT, {"transformer.resblocks.0.attn.in_proj_weight":
                  1e200 * PT["transformer.resblocks.0.attn.in_proj_weight"]}), IDS,
        keep_cache=False), ValueError, ["the text features overflowed to inf or NaN"]),
    ("VisionTransformer.forward", lambda: VIT.forward(
        edit(PV, {"visual.conv1.weight": np.full((6, 3, 4, 4), np.nan)}), IMG,
        check_weights=False), ValueError, ["the image features overflowed", "check_weights"]),
    # the shared check
    ("check_params", lambda: check_params(None, VIT.param_shapes(), "vision encoder"),
     TypeError, ["params must be a dict of arrays", "NoneType"]),
    ("check_params", lambda: check_params({}, {"a.b": (2,)}, "head"), ValueError,
     ["params has no 'a.b', which the head needs (shape (2,))"]),
    ("check_params", lambda: check_params({"a.b": [1.0, 2.0]}, {"a.b": (2,)}, "head"),
     TypeError, ["params['a.b'] must be an array", "list"]),
    ("check_params", lambda: check_params({"a.b": np.ones(3)}, {"a.b": (2,)}, "head"),
     ValueError, ["params['a.b'] must have shape (2,) for the head, got (3,)"]),
    ("check_params", lambda: check_params({}, [("a.b", (2,))], "head"), TypeError,
     ["shapes must be a dict"]),
]


@pytest.mark.filterwarnings("error")  # no RuntimeWarning from NaN arithmetic on the way
@pytest.mark.parametrize("name, call, error, words", BAD_INPUT,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_with_a_message_that_names_it(name, call, error, words):
    assert_refused(call, error, words)


def test_every_public_function_and_method_has_bad_input_rows():
    assert public_callables(encoders_module) - {row[0] for row in BAD_INPUT} == set()
