"""numclip.pretrained.load_open_clip against open_clip 3.3.0: the same features and logits.

(a) Always, without torch: the committed fixture tests/data/open_clip/ (written once by
    tests/make_open_clip_fixture.py, which records the versions) holds tiny open_clip models
    with random weights, their inputs and open_clip's outputs in float64 and float32.
(b) Live where open_clip and torch import: fresh tiny models (both GELUs) and ViT-B-32's
    full architecture with random weights, built, saved and compared on the spot.
(c) The configs shipped by name, checked against open_clip's own JSON files.
(d) One table of bad input for the module's public functions and the model's methods.
"""

import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import U, assert_table_covers, bad, check_bad_row, public_callables

from numclip.nn import VisionTransformer
from numclip.pretrained import checkpoint, classify, load_open_clip, model_config
from numclip.pretrained.checkpoint import OpenCLIP, encoders_from_config

DATA = Path(__file__).parent / "data" / "open_clip"
TINY_MODELS = ("tiny_quickgelu", "tiny_gelu")
OUTPUTS = ("image_features", "text_features", "logits_per_image")

# ------------------------------------------------------------------------------ the bounds
# Relative error = max |got - want| / max |want| over the whole output.  For the logits the
# denominator is exp(logit_scale), the largest a logit can be (|cosine| <= 1): a logit's
# rounding error is exp(logit_scale) times its cosine's, and random weights give nearly
# orthogonal 512-d features whose small cosines would make max |want| measure the weights.
TOL = {
    # float32, u = 6e-8.  The worst-case bound of a sum of n terms, n u sum|terms| (Higham,
    # "Accuracy and Stability of Numerical Algorithms", 3.1), compounded over ViT-B-32's 74
    # products of up to 3,072 terms, is far above 1 and bounds nothing useful.  Model each
    # rounding instead as independent and mean-zero (Higham & Mary, "A new approach to
    # probabilistic rounding error analysis", SIAM J. Sci. Comput. 41, 2019): at most u
    # relatively, so of standard deviation at most u / sqrt(3), and N of them along an
    # output's path add up to sigma = u sqrt(N / 3).  rounding_count() counts N as if every
    # sum were added term by term (the worst of the usual orders: BLAS's blocked sums,
    # pairwise sums and FMA round less), so sigma holds whatever the CPU, BLAS or SIMD
    # width.  For ViT-B-32, N = 183,529 for the logits: 6 sigma = 8.9e-5 <= 1e-4, and one
    # output of ~1,000 exceeds 6 sigma with probability ~2e-6.  (The tiny models: 5.5e-6.)
    # test_the_bounds_cover_six_sigma_of_the_rounding_model checks this for every config
    # used here; ViT-L-14 (N = 398,517, 6 sigma = 1.3e-4) would need a looser float32 bound.
    "float32": 1e-4,
    # float64, u = 1.1e-16: the same model gives 6 sigma = 1.7e-13 for ViT-B-32; 1e-10 leaves
    # a factor 600 for what the model leaves out (a layer norm of a nearly constant row, a
    # sharp softmax amplify relative errors), and still fails any wrong formula, key or
    # GELU, which are off by 1e-3 or more.
    "float64": 1e-10,
}
SIGMAS = 6


def rounding_count(config):
    """N per output of ``config`` (an open_clip model config): the roundings along the longest
    path, counting a sum of n terms as n roundings and a layer norm as 2 sums of its width."""
    def block(width, head_width, tokens, mlp):  # ln_1, qkv, scores, softmax + attn @ v,
        return 2 * 2 * width + width + head_width + 2 * tokens + width + 2 * width + mlp
    v, t = config["vision_cfg"], config["text_cfg"]
    width, patch = v["width"], v["patch_size"]
    tokens = (v["image_size"] // patch) ** 2 + 1
    vision = (3 * patch**2 + 2 * width  # conv1, ln_pre
              + v["layers"] * block(width, v.get("head_width", 64), tokens,
                                    int(v.get("mlp_ratio", 4) * width))
              + 2 * width + width)  # ln_post, proj
    width = t["width"]
    text = (1 + t["layers"] * block(width, width // t["heads"], t["context_length"],
                                    int(t.get("mlp_ratio", 4) * width))
            + 2 * width + width)  # ln_final, text_projection
    return {"image_features": vision, "text_features": text,
            "logits_per_image": vision + text + 3 * config["embed_dim"]}  # 2 norms, 1 dot


def relative_error(got, want, output, logit_scale):
    want = np.asarray(want, np.float64)
    scale = math.exp(logit_scale) if output == "logits_per_image" else np.max(np.abs(want))
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / scale)


def numclip_outputs(model, images, tokens):
    return {"image_features": model.encode_image(images),
            "text_features": model.encode_text(tokens),
            "logits_per_image": model.logits(images, tokens)}


def assert_outputs_match(got, want, dtype_name, logit_scale, bound, what):
    """Each output has ``want``'s shape, dtype ``dtype_name`` and is within ``bound``."""
    for key in OUTPUTS:
        assert got[key].shape == want[key].shape, f"{what}: {key} has shape {got[key].shape}"
        assert got[key].dtype == np.dtype(dtype_name), f"{what}: {key} is {got[key].dtype}"
        error = relative_error(got[key], want[key], key, logit_scale)
        assert error <= bound, f"{what}: {key} off by {error:.3g} (relative) > {bound:g}"


# --------------------------------------------------------------------- the committed fixture

def fixture_config(name):
    return json.loads((DATA / f"{name}.json").read_text())


@cache
def _fixture_arrays(file):
    with np.load(DATA / file) as arrays:
        return {k: arrays[k] for k in arrays.files}


def fixture_io(name):
    """Inputs and open_clip's outputs; want[dtype_name] is a dict over OUTPUTS."""
    arrays = _fixture_arrays(f"{name}.io.npz")
    want = {d: {k: arrays[f"{k}_{d}"] for k in OUTPUTS} for d in ("float32", "float64")}
    return arrays["images"], arrays["tokens"], want


def fixture_weights(name):
    """The float64 state dict (a fresh dict: callers may change it)."""
    return dict(_fixture_arrays(f"{name}.npz"))


def test_fixture_records_the_versions_that_wrote_it():
    manifest = json.loads((DATA / "manifest.json").read_text())
    assert manifest["written_by"] == "tests/make_open_clip_fixture.py"
    assert manifest["versions"]["open_clip"] == "3.3.0"
    assert {"torch", "numpy", "safetensors"} <= set(manifest["versions"])
    assert set(manifest["models"]) == set(TINY_MODELS)
    assert [fixture_config(n)["quick_gelu"] for n in TINY_MODELS] == [True, False]


@pytest.mark.parametrize("config_file", ["tiny_gelu.json", "model_configs/ViT-B-32.json"])
def test_the_bounds_cover_six_sigma_of_the_rounding_model(config_file):
    config = json.loads((DATA / config_file).read_text())
    for dtype_name, tol in TOL.items():
        for output, n in rounding_count(config).items():
            sigma = U[dtype_name] * math.sqrt(n / 3)
            assert SIGMAS * sigma <= tol, (config_file, dtype_name, output, SIGMAS * sigma)


@pytest.mark.parametrize("name", TINY_MODELS)
def test_open_clips_own_float32_is_within_the_float32_bound(name):
    """The bound is not fitted to numclip: open_clip's float32 meets it too."""
    _, _, want = fixture_io(name)
    logit_scale = float(fixture_weights(name)["logit_scale"])
    for key in OUTPUTS:
        error = relative_error(want["float32"][key], want["float64"][key], key, logit_scale)
        assert error <= TOL["float32"], (key, error)


@pytest.mark.parametrize("name", TINY_MODELS)
def test_npz_checkpoint_gives_open_clips_outputs_in_float64(name):
    weights = fixture_weights(name)
    model = load_open_clip(DATA / f"{name}.npz", fixture_config(name))
    assert set(model.params) == set(weights)
    for key, value in weights.items():
        assert model.params[key].dtype == np.float64, key
        np.testing.assert_array_equal(model.params[key], value, err_msg=key)
    assert isinstance(model.logit_scale, float)
    assert model.logit_scale == float(weights["logit_scale"])
    images, tokens, want = fixture_io(name)
    got = numclip_outputs(model, images.astype(np.float64), tokens)
    assert_outputs_match(got, want["float64"], "float64", model.logit_scale, TOL["float64"],
                         f"{name}.npz")


@pytest.mark.parametrize("name", TINY_MODELS)
def test_safetensors_checkpoint_gives_open_clips_outputs_in_float32(name):
    pytest.importorskip("safetensors", reason="the [pretrained] extra is not installed")
    weights = fixture_weights(name)
    model = load_open_clip(str(DATA / f"{name}.safetensors"), fixture_config(name))
    assert set(model.params) == set(weights)
    for key, value in weights.items():  # the npz holds exactly these float32 values
        assert model.params[key].dtype == np.float32, key
        np.testing.assert_array_equal(model.params[key], value.astype(np.float32), err_msg=key)
    assert model.logit_scale == float(weights["logit_scale"])
    images, tokens, want = fixture_io(name)
    got = numclip_outputs(model, images, tokens)
    # against the exact (float64) result: TOL; against open_clip's float32, which is within
    # TOL of the exact result too: 2 TOL.
    assert_outputs_match(got, want["float64"], "float32", model.logit_scale, TOL["float32"],
                         f"{name}.safetensors vs open_clip float64")
    assert_outputs_match(got, want["float32"], "float32", model.logit_scale,
                         2 * TOL["float32"], f"{name}.safetensors vs open_clip float32")


def test_a_dtype_asked_for_is_the_dtype_computed_in():
    """float32 weights computed in float64 give open_clip's float64 outputs of those very
    weights (the npz holds the same values); float64 weights asked for float32 give float32."""
    pytest.importorskip("safetensors", reason="the [pretrained] extra is not installed")
    images, tokens, want = fixture_io("tiny_gelu")
    for file, dtype_name in (("tiny_gelu.safetensors", "float64"), ("tiny_gelu.npz", "float32")):
        model = load_open_clip(DATA / file, fixture_config("tiny_gelu"), dtype=dtype_name)
        assert {v.dtype for v in model.params.values()} == {np.dtype(dtype_name)}, file
        got = numclip_outputs(model, images.astype(dtype_name), tokens)
        assert_outputs_match(got, want["float64"], dtype_name, model.logit_scale,
                             TOL[dtype_name], f"{file} as {dtype_name}")


def test_the_configs_gelu_decides_the_outputs():
    """Each tiny model run with the other GELU is off by far more than the bounds, so the
    equality tests above fail where quick_gelu is ignored; a config without quick_gelu means
    the exact GELU, as in open_clip."""
    for name, other in zip(TINY_MODELS, TINY_MODELS[::-1], strict=True):
        config = {**fixture_config(name), "quick_gelu": fixture_config(other)["quick_gelu"]}
        model = load_open_clip(DATA / f"{name}.npz", config)
        images, tokens, want = fixture_io(name)
        got = numclip_outputs(model, images.astype(np.float64), tokens)
        for key in OUTPUTS:
            error = relative_error(got[key], want["float64"][key], key, model.logit_scale)
            assert error > 10 * TOL["float32"], (name, key, error)  # measured: 1.7e-3 up
    config = fixture_config("tiny_gelu")
    del config["quick_gelu"]
    model = load_open_clip(DATA / "tiny_gelu.npz", config)
    images, tokens, want = fixture_io("tiny_gelu")
    assert_outputs_match(numclip_outputs(model, images.astype(np.float64), tokens),
                         want["float64"], "float64", model.logit_scale, TOL["float64"],
                         "tiny_gelu without quick_gelu")


def test_each_token_row_pools_where_open_clip_does():
    """Row by row (end token mid-row, last, right after the start, followed by nonzero ids,
    twice): a wrong pooling rule moves one row only, which a batch-wide max could hide."""
    model = load_open_clip(DATA / "tiny_gelu.npz", fixture_config("tiny_gelu"))
    _, tokens, want = fixture_io("tiny_gelu")
    for i, row in enumerate(tokens):
        got = model.encode_text(row[None, :])
        error = relative_error(got, want["float64"]["text_features"][i:i + 1],
                               "text_features", model.logit_scale)
        assert error <= TOL["float64"], (i, row.tolist(), error)


def test_unusual_valid_inputs_give_the_same_outputs():
    model = load_open_clip(DATA / "tiny_quickgelu.npz", fixture_config("tiny_quickgelu"))
    images, tokens, want = fixture_io("tiny_quickgelu")
    images = images.astype(np.float64)
    strided = np.zeros((3, 3, 24, 24))
    strided[:, :, ::2, ::2] = images
    features = want["float64"]["image_features"]
    for i, (variant, expected) in enumerate([
            (images.tolist(), features), (np.asfortranarray(images), features),
            (strided[:, :, ::2, ::2], features), (images[::-1], features[::-1])]):
        error = relative_error(model.encode_image(variant), expected, "image_features", 0.0)
        assert error <= TOL["float64"], (i, error)
    features = want["float64"]["text_features"]
    for i, (variant, expected) in enumerate([
            (tokens.tolist(), features), (tokens.astype(np.int32), features),
            (tokens.astype(np.uint16), features), (np.asfortranarray(tokens), features),
            (tokens[::-1], features[::-1])]):
        error = relative_error(model.encode_text(variant), expected, "text_features", 0.0)
        assert error <= TOL["float64"], (i, error)
    # rows 0, 2 and 4 end by position 2 or 3: cut to 5 ids they keep their features (causal
    # attention: an id never sees the ids after it), as the docstring promises
    got = model.encode_text(tokens[[0, 2, 4], :5])
    error = relative_error(got, features[[0, 2, 4]], "text_features", 0.0)
    assert error <= TOL["float64"], error
    one = model.encode_image(images[1:2])  # a batch of one
    assert one.shape == (1, 5)
    assert relative_error(one, want["float64"]["image_features"][1:2], "image_features",
                          0.0) <= TOL["float64"]


def test_loading_and_running_need_no_torch(tmp_path):
    """The checkpoints load and run with torch and open_clip made unimportable."""
    code = f"""
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
sys.modules["open_clip"] = None
import json
import numpy as np
from numclip.pretrained import load_open_clip
data = {str(DATA)!r}
out = {{}}
for name in {list(TINY_MODELS)!r}:
    config = json.load(open(f"{{data}}/{{name}}.json"))
    io = np.load(f"{{data}}/{{name}}.io.npz")
    for ext in ("npz", "safetensors"):
        model = load_open_clip(f"{{data}}/{{name}}.{{ext}}", config)
        images = io["images"].astype(np.float64 if ext == "npz" else np.float32)
        out[f"{{name}}.{{ext}}"] = model.encode_image(images)
        out[f"{{name}}.{{ext}}.text"] = model.encode_text(io["tokens"])
np.savez({str(tmp_path / "out.npz")!r}, **out)
"""
    pytest.importorskip("safetensors", reason="the [pretrained] extra is not installed")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1], timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as out:
        for name in TINY_MODELS:
            _, _, want = fixture_io(name)
            for ext, dtype_name in (("npz", "float64"), ("safetensors", "float32")):
                for key, got in (("image_features", out[f"{name}.{ext}"]),
                                 ("text_features", out[f"{name}.{ext}.text"])):
                    error = relative_error(got, want["float64"][key], key, 0.0)
                    assert error <= TOL[dtype_name], (name, ext, key, error)


# ------------------------------------------------------------------- configs shipped by name

def test_the_issues_three_configs_are_shipped_and_each_has_a_committed_copy():
    assert {"ViT-B-32", "ViT-B-16", "ViT-L-14"} <= set(checkpoint.CONFIG_NAMES)
    copies = {p.stem for p in (DATA / "model_configs").glob("*.json")}
    assert set(checkpoint.CONFIG_NAMES) <= copies, "rerun tests/make_open_clip_fixture.py"


@pytest.mark.parametrize("name", checkpoint.CONFIG_NAMES)
def test_shipped_configs_hold_open_clips_values(name):
    """Every value open_clip's JSON sets (committed copy in tests/data) is in numclip's."""
    path = DATA / "model_configs" / f"{name}.json"
    if not path.exists():
        pytest.fail(f"no copy of open_clip's {name}.json: rerun tests/make_open_clip_fixture.py")
    want = json.loads(path.read_text())
    got = model_config(name)
    for key, value in want.items():
        if isinstance(value, dict):
            for k, v in value.items():
                assert got[key][k] == v, (name, key, k, got[key].get(k), v)
        else:
            assert got[key] == value, (name, key, got[key], value)
    assert got["quick_gelu"] is want.get("quick_gelu", False), name  # open_clip's default


def test_vit_b_32_by_name_reads_a_vit_b_32_state_dict(tmp_path):
    """A checkpoint with ViT-B-32's keys and shapes (open_clip's, committed in tests/data)
    loads by name, and ViT-B-16's name refuses it, naming a key that differs."""
    shapes = json.loads((DATA / "ViT-B-32.shapes.json").read_text())
    path = tmp_path / "vit_b_32_zeros.npz"
    np.savez(path, **{k: np.zeros(s, np.float32) for k, s in shapes.items()})
    model = load_open_clip(path, "ViT-B-32")
    assert {k: list(v.shape) for k, v in model.params.items()} == shapes
    assert model.encode_text(np.zeros((1, 77), np.int64)).shape == (1, 512)
    with pytest.raises(ValueError) as info:
        load_open_clip(path, "ViT-B-16")
    assert "visual." in str(info.value), info.value  # conv1 or positional embedding


# ---------------------------------------------------------- live: fresh models from open_clip

def live():
    """tests/make_open_clip_fixture.py, where open_clip and torch import; skip elsewhere."""
    try:
        importlib.import_module("torch")
        importlib.import_module("open_clip")
        importlib.import_module("safetensors.torch")
    except Exception as err:  # ImportError, or a torchvision that does not fit torch
        pytest.skip(f"open_clip, torch and safetensors do not import ({type(err).__name__})")
    return importlib.import_module("make_open_clip_fixture")


def save_and_compare(maker, model, config, images, tokens, folder, what):
    """Save ``model`` (float32) as safetensors and as float64 npz, load both with numclip
    and compare with open_clip in float32 and float64."""
    import safetensors.torch

    safetensors.torch.save_file(model.state_dict(), str(folder / "model.safetensors"))
    logit_scale = float(model.logit_scale.detach())
    want32 = maker.reference_outputs(model, images, tokens)
    model.double()  # in place: the float32 copy goes
    want64 = maker.reference_outputs(model, images.astype(np.float64), tokens)
    np.savez(folder / "model.npz", **maker.state_dict_arrays(model, np.float64))
    del model
    ours = load_open_clip(folder / "model.safetensors", config)
    got = numclip_outputs(ours, images, tokens)
    assert_outputs_match(got, want64, "float32", logit_scale, TOL["float32"],
                         f"{what} float32 vs open_clip float64")
    assert_outputs_match(got, want32, "float32", logit_scale, 2 * TOL["float32"],
                         f"{what} float32 vs open_clip float32")
    del ours, got
    ours = load_open_clip(folder / "model.npz", config)
    got = numclip_outputs(ours, images.astype(np.float64), tokens)
    assert_outputs_match(got, want64, "float64", logit_scale, TOL["float64"],
                         f"{what} float64")
    return want64, logit_scale


@pytest.mark.parametrize("quick_gelu", [True, False], ids=["quickgelu", "gelu"])
@pytest.mark.parametrize("seed", [101, 202])
def test_live_tiny_models_equal_open_clip(quick_gelu, seed, tmp_path):
    maker = live()
    config = {**maker.TINY, "quick_gelu": quick_gelu}
    images, tokens = maker.make_inputs(config, 4, 5, seed + 1)
    save_and_compare(maker, maker.build_model(config, seed), config, images, tokens, tmp_path,
                     f"tiny quick_gelu={quick_gelu} seed={seed}")


def test_live_vit_b_32_equals_open_clip_and_loads_by_name(tmp_path):
    """ViT-B-32's full architecture with random weights: 2 images of 224 px, 2 texts of 77
    tokens (end token mid-row and last).  About 1.8 GB of files in tmp_path and 4 GB of
    memory at the peak (the float64 copies)."""
    maker = live()
    config = maker.open_clip_config("ViT-B-32")
    images, tokens = maker.make_inputs(config, 2, 2, seed=33)
    want64, logit_scale = save_and_compare(maker, maker.build_model(config, 32), config,
                                           images, tokens, tmp_path, "ViT-B-32")
    (tmp_path / "model.npz").unlink()  # 1.2 GB
    model = load_open_clip(tmp_path / "model.safetensors", "ViT-B-32")
    assert_outputs_match(numclip_outputs(model, images, tokens), want64, "float32",
                         logit_scale, TOL["float32"], "ViT-B-32 by name")


@pytest.mark.parametrize("name", checkpoint.CONFIG_NAMES)
def test_live_shipped_configs_equal_open_clips_files(name):
    maker = live()
    assert json.loads((DATA / "model_configs" / f"{name}.json").read_text()) == \
        maker.open_clip_config(name), "the committed copy is stale: rerun the fixture script"


# -------------------------------------------------------------------- bad input, one table
# Files for the rows, written by the bad_files fixture into BAD (a per-process temp folder).
BAD = Path(tempfile.gettempdir()) / f"numclip-test-pretrained-{os.getpid()}"
GOOD = DATA / "tiny_gelu.npz"


@pytest.fixture(scope="module")
def bad_files():
    BAD.mkdir(exist_ok=True)
    weights = fixture_weights("tiny_gelu")

    def npz(name, **changes):
        arrays = {**weights, **changes}
        np.savez(BAD / name, **{k: v for k, v in arrays.items() if v is not None})

    npz("missing_key.npz", **{"visual.ln_post.bias": None})
    npz("extra_key.npz", **{"visual.ln_post.extra": np.ones(12)})
    npz("wrong_shape.npz", **{"transformer.resblocks.1.attn.in_proj_weight": np.ones((27, 8))})
    npz("int_weight.npz", text_projection=np.ones((9, 5), np.int64))
    nan = weights["visual.proj"].copy()
    nan[2, 3] = np.nan
    npz("nan_weight.npz", **{"visual.proj": nan})
    objects = np.empty(2, dtype=object)
    objects[:] = [np.ones(3), "pickled"]
    npz("object_array.npz", **{"token_embedding.weight": objects})
    raw = {"npz": GOOD.read_bytes(), "safetensors": (DATA / "tiny_gelu.safetensors").read_bytes()}
    for ext, data in raw.items():
        (BAD / f"truncated.{ext}").write_bytes(data[: len(data) // 2])
        (BAD / f"random.{ext}").write_bytes(np.random.default_rng(0).bytes(1000))
        (BAD / f"empty.{ext}").write_bytes(b"")
    shutil.copy(GOOD, BAD / "checkpoint.pt")
    yield BAD
    shutil.rmtree(BAD, ignore_errors=True)


def config_with(vision=None, text=None, **top):
    config = fixture_config("tiny_gelu")
    config["vision_cfg"].update(vision or {})
    config["text_cfg"].update(text or {})
    config.update(top)
    return config


def config_without(key):
    config = fixture_config("tiny_gelu")
    del config[key]
    return config


@cache
def tiny_model():
    return load_open_clip(GOOD, fixture_config("tiny_gelu"))


# The model's methods, called on the tiny float64 model, under their own names (the rows'
# ids and the coverage test below read __name__).
def encode_image(*args, **kwargs):
    return tiny_model().encode_image(*args, **kwargs)


def encode_text(*args, **kwargs):
    return tiny_model().encode_text(*args, **kwargs)


def logits(*args, **kwargs):
    return tiny_model().logits(*args, **kwargs)


def zero_shot_classify(*args, **kwargs):
    return classify.zero_shot_classify(tiny_model(), *args, **kwargs)


MERGES = Path(__file__).parent / "data" / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz"
IMAGES = np.zeros((2, 3, 12, 12))
TOKENS = np.array([[48, 5, 49, 0, 0, 0, 0], [48, 7, 8, 49, 0, 0, 0]])
NAN_IMAGES = IMAGES.copy()
NAN_IMAGES[1, 2, 3, 4] = np.nan
CONFIG = fixture_config("tiny_gelu")
KEY_OR_VALUE = (TypeError, ValueError)  # either is a clear refusal of a non-float weight

def build(vision=None, text=None, params=None, drop=None):
    """OpenCLIP(...) from the tiny model's parts, one of them replaced (or a key dropped)."""
    m = tiny_model()
    params = dict(m.params) if params is None else params
    if drop is not None:
        params.pop(drop)
    return OpenCLIP(m.vision if vision is None else vision, m.text if text is None else text,
                    params)


BAD_ROWS = [
    bad(build, "x", error=TypeError, words="vision must be a numclip.nn.VisionTransformer"),
    bad(build, None, VisionTransformer(), error=TypeError,
        words="text must be a numclip.nn.TextTransformer, got VisionTransformer"),
    bad(build, params=[], error=TypeError, words="params must be a dict of arrays"),
    bad(build, params={}, error=ValueError, words="params must hold 'logit_scale'"),
    bad(build, drop="visual.proj", error=ValueError,
        words="params has no 'visual.proj', which the vision encoder needs"),
    bad(load_open_clip, "", CONFIG, error=ValueError,
        words="path is empty; name a .safetensors or .npz checkpoint"),
    # checkpoints that do not match the config: the error names the first key that differs
    bad(load_open_clip, BAD / "missing_key.npz", CONFIG, error=ValueError,
        words="visual.ln_post.bias"),
    bad(load_open_clip, BAD / "extra_key.npz", CONFIG, error=ValueError,
        words="visual.ln_post.extra"),
    bad(load_open_clip, BAD / "wrong_shape.npz", CONFIG, error=ValueError,
        words=("transformer.resblocks.1.attn.in_proj_weight", "(27, 9)", "(27, 8)")),
    bad(load_open_clip, BAD / "int_weight.npz", CONFIG, error=KEY_OR_VALUE,
        words="text_projection"),
    bad(load_open_clip, BAD / "nan_weight.npz", CONFIG, error=ValueError, words="visual.proj"),
    bad(load_open_clip, BAD / "object_array.npz", CONFIG, error=ValueError,
        words="token_embedding.weight"),
    bad(load_open_clip, GOOD, config_with(text={"layers": 3}), error=ValueError,
        words="transformer.resblocks.2."),
    bad(load_open_clip, GOOD, config_with(vision={"layers": 1}), error=ValueError,
        words="visual.transformer.resblocks.1."),
    bad(load_open_clip, GOOD, config_with(vision={"width": 18}), error=ValueError,
        words="visual."),
    bad(load_open_clip, GOOD, config_without("vision_cfg"), error=ValueError,
        words="visual."),  # open_clip's default ViT-B/16 tower: a mismatch, named
    bad(load_open_clip, GOOD, config_with(embed_dim=6), error=ValueError, words="proj"),
    bad(load_open_clip, GOOD, config_with(text={"context_length": 8}), error=ValueError,
        words="positional_embedding"),
    bad(load_open_clip, GOOD, config_with(text={"vocab_size": 51}), error=ValueError,
        words="token_embedding.weight"),
    # files that are not checkpoints
    bad(load_open_clip, BAD / "nowhere.npz", CONFIG, error=FileNotFoundError,
        words="nowhere.npz"),
    bad(load_open_clip, BAD / "truncated.npz", CONFIG, error=ValueError, words="truncated.npz"),
    bad(load_open_clip, BAD / "random.npz", CONFIG, error=ValueError, words="random.npz"),
    bad(load_open_clip, BAD / "empty.npz", CONFIG, error=ValueError, words="empty.npz"),
    bad(load_open_clip, BAD / "truncated.safetensors", CONFIG, error=ValueError,
        words="truncated.safetensors"),
    bad(load_open_clip, BAD / "random.safetensors", CONFIG, error=ValueError,
        words="random.safetensors"),
    bad(load_open_clip, BAD / "empty.safetensors", CONFIG, error=ValueError,
        words="empty.safetensors"),
    bad(load_open_clip, BAD / "checkpoint.pt", CONFIG, error=ValueError,
        words=("checkpoint.pt", ".safetensors", ".npz")),  # a pickle: never unpickled
    bad(load_open_clip, 3, CONFIG, error=TypeError, words="path"),
    bad(load_open_clip, None, CONFIG, error=TypeError, words="path"),
    # configs that are not configs
    bad(load_open_clip, GOOD, "ViT-X-99", error=ValueError, words=("ViT-X-99", "ViT-B-32")),
    bad(load_open_clip, GOOD, config_without("embed_dim"), error=ValueError,
        words="embed_dim"),
    bad(load_open_clip, GOOD, config_with(vision={"pool_type": "avg"}), error=ValueError,
        words="pool_type"),  # an option numclip does not run must not be ignored
    bad(load_open_clip, GOOD, config_with(quick_gelu="yes"), error=TypeError,
        words="quick_gelu"),
    bad(load_open_clip, GOOD, 3, error=TypeError, words="config"),
    bad(load_open_clip, GOOD, None, error=TypeError, words="config"),
    bad(model_config, "ViT-X-99", error=ValueError, words=("ViT-X-99", "ViT-B-32")),
    bad(model_config, 32, error=TypeError, words=("config", "int")),
    bad(load_open_clip, GOOD, CONFIG, dtype="float16", error=ValueError, words="dtype"),
    bad(encoders_from_config, config_with(vision={"mlp_ratio": 2.5}), error=ValueError,
        words="mlp_ratio"),
    bad(encoders_from_config, config_with(vision={"head_width": 5}), error=ValueError,
        words="head_width"),
    bad(encoders_from_config, config_with(text={"heads": 2}), error=ValueError,
        words="heads"),  # 2 does not divide the text width 9
    bad(encoders_from_config, [CONFIG], error=TypeError, words="config"),
    # the message names the config's key, not the encoder's parameter it becomes
    bad(encoders_from_config, config_with(embed_dim="5"), error=TypeError,
        words="embed_dim"),
    bad(encoders_from_config, config_with(vision={"layers": 0}), error=ValueError,
        words=("vision_cfg", "layers")),
    bad(encoders_from_config, config_with(text={"vocab_size": 0}), error=ValueError,
        words=("text_cfg", "vocab_size")),
    bad(load_open_clip, GOOD, CONFIG, xp=3, error=TypeError, words="xp"),
    # images: (B, 3, 12, 12) floats
    bad(encode_image, np.zeros((2, 3, 16, 16)), error=ValueError, words=("images", "12")),
    bad(encode_image, np.zeros((2, 1, 12, 12)), error=ValueError, words="images"),
    bad(encode_image, np.zeros((3, 12, 12)), error=ValueError, words="images"),
    bad(encode_image, np.zeros((0, 3, 12, 12)), error=ValueError, words="images"),
    bad(encode_image, NAN_IMAGES, error=ValueError, words=("images", "NaN")),
    bad(encode_image, IMAGES.astype(np.int64), error=TypeError, words="images"),
    bad(encode_image, "cat.png", error=TypeError, words="images"),
    # tokens: (B, 7) integer ids below the vocabulary size 50
    bad(encode_text, TOKENS.astype(np.float64), error=TypeError, words="tokens"),
    bad(encode_text, TOKENS.astype(bool), error=TypeError, words="tokens"),
    bad(encode_text, np.where(TOKENS == 49, 50, TOKENS), error=ValueError,
        words=("tokens", "50")),
    bad(encode_text, np.where(TOKENS == 5, -1, TOKENS), error=ValueError, words="tokens"),
    bad(encode_text, np.zeros((2, 8), np.int64), error=ValueError, words=("tokens", "7")),
    bad(encode_text, TOKENS[0], error=ValueError, words="tokens"),
    bad(encode_text, np.zeros((0, 7), np.int64), error=ValueError, words="tokens"),
    bad(logits, np.zeros((2, 3, 16, 16)), TOKENS, error=ValueError, words="images"),
    bad(logits, IMAGES, np.zeros((2, 8), np.int64), error=ValueError, words="tokens"),
    # zero-shot classification: labels, template, and a model that reads CLIP's token ids
    bad(classify.zero_shot_classify, "model.npz", IMAGES, ["cat"], error=TypeError,
        words="model must be an OpenCLIP"),
    bad(zero_shot_classify, IMAGES, "cat", error=TypeError, words="labels"),
    bad(zero_shot_classify, IMAGES, ["cat", "cat"], error=ValueError,
        words="labels must be different"),
    bad(zero_shot_classify, IMAGES, ["cat"], template="a {} {}", error=ValueError,
        words="template 'a {} {}'"),
    bad(zero_shot_classify, IMAGES, ["cat"], merges=MERGES, error=ValueError,
        words=("model's text encoder has 50 token ids", "49408")),  # not 'tokens', not passed
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", BAD_ROWS)
def test_bad_input_is_named(bad_files, fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_and_method_has_bad_input_rows():
    assert_table_covers(checkpoint, BAD_ROWS)
    assert_table_covers(classify, BAD_ROWS)
    methods = {n for n in public_callables(checkpoint) if "." in n}
    covered = {f"OpenCLIP.{row.values[0].__name__}" for row in BAD_ROWS}
    assert methods - covered == set(), "OpenCLIP methods without bad-input rows"
