"""open_clip's evaluation transform for one image, without torch or torchvision.

``open_clip.image_transform(image_size, is_train=False)`` with its defaults
(``resize_mode="shortest"``, bicubic, OpenAI's mean and std) is, in order:

1. ``Resize(image_size, BICUBIC)``: the short side becomes ``image_size`` and the long
   side ``int(image_size * long / short)`` (rounded down), by PIL's ``Image.resize`` in
   the image's own mode (an RGBA image is resized with its alpha, a palette image by
   nearest neighbour: Pillow's rules);
2. ``CenterCrop(image_size)``: the crop starts ``round((long - image_size) / 2)`` pixels
   in, with Python's ``round`` (halves go to the even side);
3. ``convert("RGB")``, then ``ToTensor`` (``uint8 / 255`` in float32) and
   ``Normalize`` (``(x - mean) / std`` per channel, in float32).

numclip does the same PIL calls and the same float32 operations in the same order,
each correctly rounded (IEEE 754), so the result equals open_clip's bit for bit.
"""

from __future__ import annotations

import numpy as np

from numclip.backend import as_int

__all__ = ["preprocess", "OPENAI_MEAN", "OPENAI_STD", "MAX_IMAGE_SIZE"]

# open_clip.constants.OPENAI_DATASET_MEAN / _STD: the statistics of CLIP's training images
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# The largest image_size preprocess makes: far above any CLIP's (336 for ViT-L/14-336),
# and 3 x 16384^2 float32 is 3 GiB; beyond it PIL fails with an OverflowError naming nothing
MAX_IMAGE_SIZE = 16384


def preprocess(image, image_size: int = 224) -> np.ndarray:
    """One image as CLIP's image encoder takes it: open_clip's eval transform.

    Args:
        image: a PIL image of any mode Pillow can convert to RGB (RGB, RGBA, L, P, ...),
            or a uint8 NumPy array (H, W, 3) of RGB or (H, W) of grey levels (taken as
            ``PIL.Image.fromarray`` would).
        image_size: side of the square output, an int >= 1 (224 for ViT-B-32).

    Returns:
        float32 array (3, image_size, image_size): channels R, G, B, each
            ``(pixel / 255 - mean) / std`` with OpenAI's mean and std.  Stack the results
            of several images with ``np.stack`` for a batch (B, 3, image_size, image_size).
            A photo's EXIF orientation is not applied, as in open_clip: use
            ``PIL.ImageOps.exif_transpose`` first where it matters.

    Raises:
        TypeError: image not a PIL image or a uint8 array; image_size not an int.
        ValueError: an array of another shape; an image with no pixels; image_size < 1
            or above :data:`MAX_IMAGE_SIZE`.
    """
    size = as_int(image_size, "image_size", low=1, high=MAX_IMAGE_SIZE)
    image = _as_pil_image(image)
    image = _center_crop(_resize_short_side(image, size), size)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)  # (S, S, 3)
    x = np.transpose(rgb, (2, 0, 1)).astype(np.float32) / np.float32(255)  # (3, S, S)
    mean = np.asarray(OPENAI_MEAN, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(OPENAI_STD, dtype=np.float32).reshape(3, 1, 1)
    return (x - mean) / std  # (3, S, S), subtract then divide, as torchvision's Normalize


def _resize_short_side(image, size: int):
    """torchvision's ``Resize(size)`` on a PIL image: short side to ``size``, the long
    side scaled and rounded down, by PIL bicubic; an image already that size is kept."""
    from PIL import Image

    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)  # float division, then down: torchvision's rule
    new_size = (size, new_long) if width <= height else (new_long, size)  # (width, height)
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.BICUBIC)


def _center_crop(image, size: int):
    """torchvision's ``CenterCrop(size)`` after a short-side resize: both sides are at
    least ``size``, so no padding; the offsets use Python's round (half to even)."""
    width, height = image.size
    top = round((height - size) / 2)  # Python round: 1.5 -> 2, 2.5 -> 2
    left = round((width - size) / 2)
    return image.crop((left, top, left + size, top + size))


def _as_pil_image(image):
    """``image`` as a PIL image with at least one pixel, or a clear error."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    elif not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL image or a uint8 NumPy array (H, W, 3), "
                        f"got {type(image).__name__} (open a file with PIL.Image.open(path))")
    if image.width < 1 or image.height < 1:
        raise ValueError(f"image must have at least one pixel, got size {image.size} "
                         f"(width, height)")
    return image


def _array_to_pil(array: np.ndarray):
    from PIL import Image

    if array.dtype != np.uint8:
        raise TypeError(f"image as an array must have dtype uint8 (values 0..255), got "
                        f"{array.dtype}; for floats in [0, 1] pass (255 * x).round()"
                        f".astype(np.uint8)")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"image as an array must be (H, W, 3) RGB or (H, W) grey, got "
                         f"shape {array.shape}")
    # fromarray needs C order; a strided view or a Fortran array is copied, not refused
    return Image.fromarray(np.ascontiguousarray(array))  # (H, W, 3): RGB, (H, W): L
