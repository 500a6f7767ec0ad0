"""Write tests/data/open_clip/: open_clip models with random weights, their inputs and outputs.

Run once by hand, where torch, open_clip_torch and safetensors are installed:

    .venv/bin/python tests/make_open_clip_fixture.py

tests/test_pretrained.py loads these checkpoints with numclip and compares its features and
logits with open_clip's, so the equality with open_clip is checked on every machine, torch or
not.  Where torch and open_clip import, the same test also builds fresh models with the
functions below (build_model, make_inputs, reference_outputs) and compares live.

Per model NAME (a tiny architecture, once with QuickGELU and once with the exact GELU):
- NAME.safetensors  open_clip's ``CLIP.state_dict()``, float32 (the HF hub's format)
- NAME.npz          the same weights as float64 (exactly the float32 values)
- NAME.json         the open_clip model config (embed_dim, vision_cfg, text_cfg, quick_gelu)
- NAME.io.npz       images (B, 3, H, W) float32, tokens (B, context_length) int64, and
                    open_clip's encode_image / encode_text (normalize=False) and
                    logits_per_image, computed in float64 (``model.double()``) and float32
Besides: ``model_configs/*.json``, open_clip's configs of the models numclip ships by name
(``numclip.pretrained.CONFIG_NAMES``);
``ViT-B-32.shapes.json``, the keys and shapes of ViT-B-32's state dict (so the test of the
config by name runs without torch); ``manifest.json``, the versions that wrote all this.
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "data" / "open_clip"

# Every size differs from every other (tokens 10 and 7, widths 12 and 9, heads 2 and 3,
# head widths 6 and 3, MLPs 48 and 36, embed_dim 5, vocabulary 50), so a transposed or
# misrouted weight cannot line up by accident.
TINY = {
    "embed_dim": 5,
    "vision_cfg": {"image_size": 12, "patch_size": 4, "width": 12, "head_width": 6,
                   "layers": 2},
    "text_cfg": {"context_length": 7, "vocab_size": 50, "width": 9, "heads": 3, "layers": 2},
}
MODELS = {  # name: (quick_gelu, seed)
    "tiny_quickgelu": (True, 11),
    "tiny_gelu": (False, 12),
}
N_IMAGES = 3  # != the 5 token rows: logits (3, 5) catch a transposed logit matrix


def open_clip_config(name):
    """open_clip's own model config ``name`` (model_configs/NAME.json in its package)."""
    import open_clip

    path = Path(open_clip.__file__).parent / "model_configs" / f"{name}.json"
    return json.loads(path.read_text())


def build_model(config, seed):
    """A seeded open_clip.CLIP of ``config`` in eval mode, float32, every parameter perturbed.

    open_clip initialises layer-norm weights to 1 and most biases to 0; a loader that
    swapped two of them, or dropped one, would then still give the right answer.  Adding
    seeded noise to every parameter (20 % of its spread, or 0.1 where it is a constant)
    makes each one matter.
    """
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.CLIP(config["embed_dim"], vision_cfg=dict(config["vision_cfg"]),
                           text_cfg=dict(config["text_cfg"]),
                           quick_gelu=bool(config.get("quick_gelu", False))).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            spread = float(p.std()) if p.numel() > 1 else 0.0
            size = 0.2 * spread if spread > 0 else 0.1
            p.add_(size * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


def token_rows(context_length, vocab_size, rng, n=5):
    """``n`` rows of token ids (n, context_length) int64, end-of-text id = vocab_size - 1.

    As open_clip's tokenizer writes them: start id (vocab_size - 2), text ids, the
    end-of-text id (the largest, where open_clip pools), zero padding.  The rows put the
    end token in the middle, at the last position, right after the start (an empty text);
    one row has nonzero ids after it (so pooling must be at argmax, not at the count of
    nonzero ids) and one has it twice (argmax takes the first, in torch and in NumPy).
    """
    eot, sot, n_ctx = vocab_size - 1, vocab_size - 2, context_length
    rows = np.zeros((5, n_ctx), dtype=np.int64)
    ends = [n_ctx // 2, n_ctx - 1, 1, n_ctx // 2, 2]
    for row, end in zip(rows, ends, strict=True):
        row[0] = sot
        row[1:end] = rng.integers(1, sot, size=end - 1)
        row[end] = eot
    rows[3, ends[3] + 1:] = rng.integers(1, sot, size=n_ctx - ends[3] - 1)  # not padding
    rows[4, n_ctx - 2] = eot  # a second end token after the first
    return rows[:n]


def make_inputs(config, n_images, n_texts, seed):
    """Images (n_images, 3, S, S) float32, standard normal as after CLIP's normalization,
    and token rows (n_texts, context_length) int64."""
    rng = np.random.default_rng(seed)
    size = config["vision_cfg"]["image_size"]
    images = rng.standard_normal((n_images, 3, size, size)).astype(np.float32)
    text = config["text_cfg"]
    return images, token_rows(text["context_length"], text["vocab_size"], rng, n_texts)


def reference_outputs(model, images, tokens):
    """open_clip's image features, text features and logits_per_image, in the dtype of
    ``model`` (images are cast to it); NumPy arrays."""
    import torch

    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        image = torch.from_numpy(np.asarray(images)).to(dtype)
        text = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
        logits_per_image, _ = model.get_logits(image, text)
        return {"image_features": model.encode_image(image, normalize=False).numpy(),
                "text_features": model.encode_text(text, normalize=False).numpy(),
                "logits_per_image": logits_per_image.numpy()}


def state_dict_arrays(model, dtype):
    """The state dict as NumPy arrays of ``dtype``, keys as open_clip names them."""
    return {k: v.detach().cpu().numpy().astype(dtype) for k, v in model.state_dict().items()}


def versions():
    import open_clip
    import safetensors
    import torch

    return {"open_clip": open_clip.__version__, "torch": torch.__version__,
            "numpy": np.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version()}


def write_model(name, quick_gelu, seed):
    import safetensors.torch

    config = {**TINY, "quick_gelu": quick_gelu}
    model = build_model(config, seed)
    images, tokens = make_inputs(config, N_IMAGES, 5, seed + 2)
    safetensors.torch.save_file(model.state_dict(), str(OUT / f"{name}.safetensors"),
                                metadata={"versions": json.dumps(versions())})  # 1 key:
    # safetensors writes several metadata keys in a random order, so reruns would differ
    np.savez(OUT / f"{name}.npz", **state_dict_arrays(model, np.float64))
    (OUT / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")
    out32 = reference_outputs(model, images, tokens)
    out64 = reference_outputs(model.double(), images.astype(np.float64), tokens)
    np.savez(OUT / f"{name}.io.npz", images=images, tokens=tokens,
             **{f"{k}_float32": v for k, v in out32.items()},
             **{f"{k}_float64": v for k, v in out64.items()})
    for key, want in out64.items():  # open_clip's own float32 error, for the record
        error = np.max(np.abs(out32[key] - want)) / np.max(np.abs(want))
        print(f"{name}: open_clip float32 {key} off its float64 by {error:.2e} (relative)")


def write_named_configs():
    import open_clip
    import torch

    from numclip.pretrained import CONFIG_NAMES

    folder = OUT / "model_configs"
    folder.mkdir(exist_ok=True)
    for name in CONFIG_NAMES:
        (folder / f"{name}.json").write_text(json.dumps(open_clip_config(name), indent=2) + "\n")
    config = open_clip_config("ViT-B-32")
    with torch.device("meta"):  # shapes only: no 600 MB of weights
        model = open_clip.CLIP(config["embed_dim"], vision_cfg=config["vision_cfg"],
                               text_cfg=config["text_cfg"])
    lines = [f"{json.dumps(k)}: {list(v.shape)}" for k, v in model.state_dict().items()]
    (OUT / "ViT-B-32.shapes.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (quick_gelu, seed) in MODELS.items():
        write_model(name, quick_gelu, seed)
    write_named_configs()
    manifest = {"written_by": "tests/make_open_clip_fixture.py", "versions": versions(),
                "models": {name: {"quick_gelu": q, "seed": s} for name, (q, s) in MODELS.items()},
                "command": " ".join([Path(sys.executable).name, *sys.argv])}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
