"""open_clip checkpoints run by numclip's own encoders: configs, loading, the model.

A checkpoint is open_clip's ``CLIP.state_dict()`` saved as ``.safetensors`` (what the
Hugging Face hub serves as ``open_clip_model.safetensors``) or as ``.npz`` with the
same keys.  Its architecture comes from open_clip's model-config dict (``embed_dim``,
``vision_cfg``, ``text_cfg``, ``quick_gelu``), passed as a dict or as the name of one
shipped in ``numclip/pretrained/configs/`` (copied from open_clip 3.3.0).  Every key
and shape is checked against the config before any weight is used; nothing is
unpickled and nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import array_api_compat
import numpy as np
from numpy.lib import format as npy_format

from numclip.backend import array_namespace, as_float_array, as_int
from numclip.nn.encoders import TextTransformer, VisionTransformer, check_params
from numclip.nn.validate import as_activation, as_token_ids
from numclip.normalize import l2_normalize

__all__ = ["load_open_clip", "OpenCLIP", "model_config", "encoders_from_config",
           "CONFIG_NAMES"]

CONFIG_NAMES = tuple(sorted(p.name[:-len(".json")] for p in
                            resources.files("numclip.pretrained").joinpath("configs").iterdir()
                            if p.name.endswith(".json")))

# What numclip implements of open_clip's CLIPVisionCfg / CLIPTextCfg, with open_clip's
# defaults; any other option must be absent or hold open_clip's default (it changes
# the architecture: layer scale, attentional pooling, an HF text tower, ...).
_VISION = {"image_size": 224, "layers": 12, "width": 768, "head_width": 64, "mlp_ratio": 4.0,
           "patch_size": 16}
_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12,
         "mlp_ratio": 4.0}
_DEFAULTS_OK = {"ls_init_value": None, "patch_dropout": 0.0, "attentional_pool": False,
                "no_ln_pre": False, "pos_embed_type": "learnable", "final_ln_after_pool": False,
                "pool_type": None, "output_tokens": False, "act_kwargs": None,
                "norm_kwargs": None, "block_type": None, "qk_norm": False,
                "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False,
                "scale_attn": False, "scale_fc": False, "timm_model_name": None,
                "hf_model_name": None, "hf_tokenizer_name": None, "tokenizer_mode": None,
                "tokenizer_kwargs": None, "embed_cls": False, "pad_id": 0,
                "no_causal_mask": False, "proj_bias": False, "proj_type": "linear"}
_POOL_TYPES = {"vision_cfg": "tok", "text_cfg": "argmax"}


def model_config(config) -> dict:
    """An open_clip model-config dict, checked: a shipped name (:data:`CONFIG_NAMES`) or a dict.

    Returns:
        a new dict with ``embed_dim``, ``quick_gelu`` and complete ``vision_cfg`` and
            ``text_cfg`` (open_clip's defaults filled in).

    Raises:
        ValueError: an unknown name, a missing ``embed_dim``, or an option numclip
            does not implement (naming it).
        TypeError: not a str or a dict.
    """
    if isinstance(config, str):
        if config not in CONFIG_NAMES:
            raise ValueError(f"config {config!r} is not one numclip ships; choose one of "
                             f"{list(CONFIG_NAMES)} or pass open_clip's config dict")
        path = resources.files("numclip.pretrained").joinpath("configs", f"{config}.json")
        config = json.loads(path.read_text())
    if not isinstance(config, dict):
        raise TypeError(f"config must be a config name or an open_clip config dict, got "
                        f"{type(config).__name__}")
    unknown = set(config) - {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg",
                             "custom_text", "init_logit_scale"}
    if unknown or config.get("custom_text", False):
        raise ValueError(f"config option {sorted(unknown or ['custom_text'])[0]!r} is not "
                         "implemented by numclip (only embed_dim, quick_gelu, vision_cfg, "
                         "text_cfg)")
    if "embed_dim" not in config:
        raise ValueError("config must have 'embed_dim', the width of the shared embedding")
    quick_gelu = config.get("quick_gelu", False)
    if not isinstance(quick_gelu, bool):
        raise TypeError(f"config['quick_gelu'] must be True or False, got {quick_gelu!r}")
    return {"embed_dim": config["embed_dim"], "quick_gelu": quick_gelu,
            "vision_cfg": _tower(config, "vision_cfg", _VISION),
            "text_cfg": _tower(config, "text_cfg", _TEXT)}


def _tower(config, key, supported):
    cfg = config.get(key, {})
    if not isinstance(cfg, dict):
        raise TypeError(f"config[{key!r}] must be a dict, got {type(cfg).__name__}")
    for option, value in cfg.items():
        if option in supported:
            continue
        default = _POOL_TYPES[key] if option == "pool_type" else _DEFAULTS_OK.get(option, ...)
        if value != default:
            raise ValueError(f"config[{key!r}][{option!r}] = {value!r} is not implemented by "
                             "numclip (its encoders are open_clip's default ViT and text "
                             "Transformer)")
    return {**supported, **{k: v for k, v in cfg.items() if k in supported}}


def encoders_from_config(config) -> tuple[VisionTransformer, TextTransformer]:
    """The two encoders a config describes (see :func:`model_config`)."""
    config = model_config(config)
    embed_dim = as_int(config["embed_dim"], "config['embed_dim']", 1)
    v, t = dict(config["vision_cfg"]), dict(config["text_cfg"])
    size = v["image_size"]
    if isinstance(size, list | tuple):  # open_clip takes (H, W); numclip's ViT is square
        if len(size) != 2 or size[0] != size[1]:
            raise ValueError(f"config['vision_cfg']['image_size'] must be one size or a "
                             f"square (S, S), got {size!r}")
        v["image_size"] = size[0]
    for tower, cfg in (("vision_cfg", v), ("text_cfg", t)):
        for key in ("image_size", "patch_size", "width", "head_width", "layers",
                    "context_length", "vocab_size", "heads"):
            if key in cfg:
                cfg[key] = as_int(cfg[key], f"config[{tower!r}][{key!r}]", 1)
    activation = "quick_gelu" if config["quick_gelu"] else "gelu"
    for name, cfg in (("vision_cfg", v), ("text_cfg", t)):
        ratio = cfg["mlp_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio != int(ratio):
            raise ValueError(f"config[{name!r}]['mlp_ratio'] must be a whole number, "
                             f"got {ratio!r}")
    if v["width"] % v["head_width"]:
        raise ValueError(f"config['vision_cfg']: head_width ({v['head_width']!r}) must divide "
                         f"width ({v['width']!r})")
    if t["width"] % t["heads"]:
        raise ValueError(f"config['text_cfg']: heads ({t['heads']}) must divide width "
                         f"({t['width']})")
    if v["image_size"] % v["patch_size"]:
        raise ValueError(f"config['vision_cfg']: image_size ({v['image_size']}) must be a "
                         f"multiple of patch_size ({v['patch_size']})")
    vision = VisionTransformer(v["image_size"], v["patch_size"], v["width"], v["layers"],
                               v["width"] // v["head_width"], embed_dim,
                               int(v["mlp_ratio"]), activation)
    text = TextTransformer(t["context_length"], t["vocab_size"], t["width"], t["layers"],
                           t["heads"], embed_dim, int(t["mlp_ratio"]), activation)
    return vision, text


@dataclass(frozen=True)
class OpenCLIP:
    """A CLIP model with open_clip's architecture and weights, run by numclip's encoders.

    ``params`` holds every tensor of the checkpoint under its ``state_dict()`` key,
    in one float dtype (float32 or float64) and one array library.
    """

    vision: VisionTransformer
    text: TextTransformer
    params: dict

    def __post_init__(self):
        """Both towers, and every weight they need under its key, in its shape and in
        ``logit_scale``'s library and dtype (the values were scanned when they were read:
        :func:`load_open_clip`; a model built by hand is not scanned)."""
        for name, kind in (("vision", VisionTransformer), ("text", TextTransformer)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a numclip.nn.{kind.__name__}, "
                                f"got {type(getattr(self, name)).__name__}")
        if not isinstance(self.params, Mapping):
            raise TypeError(f"params must be a dict of arrays under open_clip's keys, "
                            f"got {type(self.params).__name__}")
        scale = self.params.get("logit_scale")
        if not (array_api_compat.is_array_api_obj(scale) and scale.ndim == 0
                and array_namespace(scale).isdtype(scale.dtype, "real floating")):
            raise ValueError("params must hold 'logit_scale', a 0-d float array (the "
                             f"checkpoint's log inverse temperature), got {type(scale).__name__}")
        for tower, what in ((self.vision, "vision encoder"), (self.text, "text encoder")):
            check_params(self.params, tower.param_shapes(), what, scale,
                         "params['logit_scale']", finite=False)

    @property
    def logit_scale(self) -> float:
        """The checkpoint's learned log inverse temperature (about 4.6052 = log 100 for
        OpenAI's ViT-B/32, which trained into the clamp)."""
        return float(self.params["logit_scale"])

    @property
    def dtype(self):
        return self.params["logit_scale"].dtype

    def encode_image(self, images):
        """``(B, 3, H, W)`` preprocessed images -> ``(B, embed_dim)`` features, unnormalized
        (open_clip's ``encode_image(normalize=False)``).  Same array library and dtype
        as the model (:func:`~numclip.pretrained.preprocess` gives float32)."""
        images = self._as_input(images, "images")
        # the weights were checked when the file was read: only their keys and shapes now
        return self.vision.forward(self.params, images, check_weights=False,
                                   keep_cache=False)[0]

    def encode_text(self, tokens):
        """``(B, L)`` integer token ids (:func:`~numclip.pretrained.tokenize`, L at most the
        context length) -> ``(B, embed_dim)`` features, unnormalized."""
        # a list of ids (typed in, or tokenize(...).tolist()) becomes an array of the model's
        tokens = as_token_ids(tokens, "tokens", self.text.vocab_size, self.text.context_length,
                              like=self.params["logit_scale"])
        return self.text.forward(self.params, tokens, check_weights=False,
                                 keep_cache=False)[0]

    def logits(self, images, tokens):
        """``(B_images, B_texts)`` logits per image: ``exp(logit_scale)`` times the cosine
        similarities, open_clip's ``logits_per_image``."""
        img = l2_normalize(self.encode_image(images))[0]
        txt = l2_normalize(self.encode_text(tokens))[0]
        xp = array_namespace(img)
        return xp.exp(self.params["logit_scale"]) * (img @ txt.T)

    def _as_input(self, x, name):
        x = as_activation(x, name, 4)
        if x.dtype != self.dtype:
            raise TypeError(f"{name} has dtype {x.dtype} but the model is {self.dtype}; "
                            "convert with astype")
        return x


def load_open_clip(path, config, *, dtype=None, xp=np) -> OpenCLIP:
    """Read an open_clip checkpoint into an :class:`OpenCLIP`.

    Args:
        path: a ``.safetensors`` or ``.npz`` file of ``CLIP.state_dict()``.
        config: open_clip's model-config dict, or a shipped name such as ``"ViT-B-32"``.
        dtype: ``"float32"`` or ``"float64"`` to compute in; None keeps the checkpoint's
            (float16 weights become float32: numclip does not compute in float16).
        xp: the array library for the weights (``numpy``, ``cupy``, ...).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a readable checkpoint, or its keys or shapes do not match the
            config (naming the first mismatch).
        ImportError: a ``.safetensors`` file without the ``safetensors`` package.
    """
    vision, text = encoders_from_config(config)
    if not callable(getattr(xp, "asarray", None)):
        raise TypeError(f"xp must be an array library such as numpy or cupy, "
                        f"got {type(xp).__name__}")
    path = _checkpoint_path(path)
    expected = {**vision.param_shapes(), **text.param_shapes(), "logit_scale": ()}
    headers = _read_headers(path)  # key -> (shape, dtype), nothing loaded yet
    _check_against(headers, expected, path)
    dtype = _compute_dtype(dtype, {d for _, d in headers.values()})
    arrays = _read_arrays(path)
    params = {}
    for key in expected:
        value = np.asarray(arrays[key], dtype=dtype)
        as_float_array(value, f"{path.name}[{key!r}]")  # finite: a NaN weight is refused here
        params[key] = xp.asarray(value)
    return OpenCLIP(vision, text, params)


def _checkpoint_path(path) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    if not str(path):  # Path("") is ".", the current folder
        raise ValueError("path is empty; name a .safetensors or .npz checkpoint")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.suffix not in (".safetensors", ".npz"):
        raise ValueError(f"{path.name}: numclip reads .safetensors or .npz checkpoints; "
                         "a torch .pt/.bin file is a pickle, which numclip never loads "
                         "(save its state_dict with safetensors.torch.save_file instead)")
    return path


def _read_headers(path: Path) -> dict:
    try:
        if path.suffix == ".safetensors":
            safetensors = _safetensors()
            with safetensors.safe_open(str(path), framework="np") as f:
                return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype())
                        for k in f.keys()}
        with zipfile.ZipFile(path) as zf:
            return {name[:-len(".npy")]: _npy_header(zf, name) for name in zf.namelist()}
    except ImportError:
        raise
    except Exception as err:  # safetensors' own SafetensorError, BadZipFile, EOFError, ...
        raise ValueError(f"{path.name} is not a readable {path.suffix} checkpoint: "
                         f"{type(err).__name__}: {err}") from None


def _npy_header(zf: zipfile.ZipFile, name: str):
    if not name.endswith(".npy"):
        raise ValueError(f"entry {name!r} is not an array")
    with zf.open(name) as f:
        version = npy_format.read_magic(f)
        read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                       else npy_format.read_array_header_2_0)
        shape, _, dtype = read_header(f)  # no data read yet
    if dtype.hasobject:
        raise ValueError(f"entry {name!r} holds Python objects, which would need unpickling")
    return tuple(shape), dtype.name


def _check_against(headers: dict, expected: dict, path: Path) -> None:
    for key, shape in expected.items():
        if key not in headers:
            raise ValueError(f"{path.name} does not match the config: it has no {key!r} "
                             f"(expected shape {shape})")
        if headers[key][0] != tuple(shape):
            raise ValueError(f"{path.name} does not match the config: {key!r} has shape "
                             f"{headers[key][0]}, the config needs {tuple(shape)}")
        if headers[key][1] not in ("float16", "float32", "float64", "F16", "F32", "F64"):
            raise ValueError(f"{path.name}: {key!r} has dtype {headers[key][1]}; numclip reads "
                             "float16, float32 and float64 weights (convert bfloat16 first)")
    extra = [k for k in headers if k not in expected]
    if extra:
        raise ValueError(f"{path.name} does not match the config: unexpected key {extra[0]!r} "
                         f"({len(extra)} unexpected in all)")


def _compute_dtype(dtype, stored: set):
    if dtype is None:
        return np.float64 if stored <= {"float64", "F64"} else np.float32
    if dtype not in ("float32", "float64", np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32', 'float64' or None, got {dtype!r}")
    return np.dtype(dtype).type


def _read_arrays(path: Path):
    if path.suffix == ".safetensors":
        return _safetensors().numpy.load_file(str(path))
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _safetensors():
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError('reading .safetensors needs the safetensors package: '
                          'pip install "numclip[pretrained]"') from None
    return safetensors

