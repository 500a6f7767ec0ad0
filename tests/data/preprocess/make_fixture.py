"""Write the preprocess fixture: small images and open_clip's eval transform of each.

    python tests/data/preprocess/make_fixture.py     # needs open_clip_torch, torchvision

draws a few small images from a seeded generator, saves them as PNG in this folder
(PNG keeps their mode and every pixel, so the inputs are fixed bytes, not a recipe
Pillow might redraw differently), and writes ``expected.npz`` (float32 arrays, no
pickles) with ``open_clip.image_transform(image_size, is_train=False)`` of each, and
``manifest.json`` naming the image, its size, and the versions of open_clip, torch,
torchvision and Pillow that made them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).parent
SIZE = 24  # small, so the expected outputs stay a few kB each; the test also runs 224 live

# name: (mode, width, height, image_size).  The shapes make each rule show: landscape and
# portrait, a long side that does not scale to an integer (39 * 24 / 20 = 46.8 -> 46), crop
# margins of 3 and 5 (offsets round(1.5) = 2 and round(2.5) = 2), an image already the
# output size (no resize), upscaling tiny images, and modes Pillow resizes its own way.
IMAGES = {
    "landscape_rgb": ("RGB", 45, 30, SIZE),
    "portrait_rgb": ("RGB", 29, 61, SIZE),
    "long_side_rounds_down": ("RGB", 20, 39, SIZE),
    "margin_3": ("RGB", 24, 27, SIZE),
    "margin_5": ("RGB", 29, 24, SIZE),
    "exact_size": ("RGB", SIZE, SIZE, SIZE),
    "tiny_1x1": ("RGB", 1, 1, SIZE),
    "tiny_2x3": ("RGB", 2, 3, 32),
    "rgba_alpha": ("RGBA", 33, 34, SIZE),  # resized with premultiplied alpha, then dropped
    "grey_l": ("L", 40, 17, SIZE),
    "grey_alpha_la": ("LA", 19, 26, SIZE),
    "palette_p": ("P", 38, 26, SIZE),  # Pillow resizes palette images by nearest neighbour
    "bilevel_1": ("1", 27, 31, SIZE),
}


def draw(mode: str, width: int, height: int, rng: np.random.Generator):
    """Noise over a smooth gradient (so resampling has edges and slopes to work on)."""
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    smooth = 255 * (x / max(width - 1, 1) + y / max(height - 1, 1)) / 2  # (H, W)
    noise = rng.integers(-60, 61, size=(height, width, 4))
    pixels = np.clip(smooth[..., None] + noise, 0, 255).astype(np.uint8)  # (H, W, 4)
    rgba = Image.fromarray(pixels)  # (H, W, 4) uint8 is RGBA
    if mode == "P":
        return rgba.convert("RGB").quantize(colors=16)
    return rgba.convert(mode)


def main() -> None:
    import open_clip
    import PIL
    import torch
    import torchvision
    from PIL import Image

    rng = np.random.default_rng(20240611)
    expected, manifest = {}, {}
    for name, (mode, width, height, size) in IMAGES.items():
        path = FOLDER / f"{name}.png"
        draw(mode, width, height, rng).save(path)
        with Image.open(path) as image:  # what the test will read, not what was drawn
            assert image.mode == mode, (name, image.mode)
            transform = open_clip.image_transform(size, is_train=False)
            expected[name] = transform(image).numpy().astype(np.float32)
        manifest[name] = {"file": path.name, "mode": mode, "image_size": size}
    np.savez_compressed(FOLDER / "expected.npz", **expected)
    versions = {"open_clip": open_clip.__version__, "torch": torch.__version__,
                "torchvision": torchvision.__version__, "Pillow": PIL.__version__}
    (FOLDER / "manifest.json").write_text(json.dumps(
        {"made_by": "tests/data/preprocess/make_fixture.py: "
                    "open_clip.image_transform(image_size, is_train=False)(image)",
         "versions": versions, "images": manifest}, indent=1) + "\n")
    print(f"wrote {len(expected)} images and their transforms to {FOLDER}")


if __name__ == "__main__":
    main()
