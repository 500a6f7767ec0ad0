"""numclip.pretrained.preprocess against open_clip's eval transform.

Always against the committed fixture (tests/data/preprocess/: PNG inputs and open_clip
3.3.0's outputs, written by its make_fixture.py); live against open_clip where it
imports.  Both comparisons are exact (difference 0): numclip makes the same Pillow calls
and the same float32 operations (/255, - mean, / std) in the same order, each correctly
rounded.  Pillow does the resampling on both sides, so a fixture mismatch under another
Pillow than the manifest's would mean Pillow changed its bicubic filter.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_table_covers, bad, check_bad_row, open_clip_or_skip
from PIL import Image

from numclip.pretrained import image as image_module
from numclip.pretrained.image import OPENAI_MEAN, OPENAI_STD, preprocess

FOLDER = Path(__file__).parent / "data" / "preprocess"
MANIFEST = json.loads((FOLDER / "manifest.json").read_text())


def open_png(name):
    with Image.open(FOLDER / MANIFEST["images"][name]["file"]) as png:
        png.load()
        return png


def rows_numbered(height, width):
    """A grey (H, W) array whose row r has value r: which rows survive shows the crop."""
    return np.repeat(np.arange(height, dtype=np.uint8)[:, None], width, axis=1)


def expected_grey(values):
    """``(v / 255 - mean) / std`` per channel in float32, as ToTensor and Normalize."""
    v = np.asarray(values, dtype=np.float32) / np.float32(255)
    mean, std = (np.asarray(c, dtype=np.float32).reshape(3, 1, 1) for c in (OPENAI_MEAN,
                                                                              OPENAI_STD))
    return (v - mean) / std


# ------------------------------------------------------------ the committed fixture


@pytest.mark.parametrize("name", sorted(MANIFEST["images"]))
def test_preprocess_equals_open_clip_on_the_fixture_images(name):
    entry = MANIFEST["images"][name]
    image = open_png(name)
    assert image.mode == entry["mode"]
    with np.load(FOLDER / "expected.npz", allow_pickle=False) as expected:
        want = expected[name]
    got = preprocess(image, entry["image_size"])
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # exact: same operations, same order


def test_fixture_names_its_versions_and_stays_small():
    assert MANIFEST["versions"]["open_clip"] == "3.3.0"
    assert {"torch", "torchvision", "Pillow"} <= set(MANIFEST["versions"])
    assert sum(p.stat().st_size for p in FOLDER.iterdir()) < 200_000


# ------------------------------------------------------------ rules, by example


@pytest.mark.parametrize("margin, first_row", [(1, 0), (2, 1), (3, 2), (5, 2)])
def test_centre_crop_offsets_round_half_to_even(margin, first_row):
    # The short side is already 8, so no resize: the crop keeps rows first_row.. of 8 +
    # margin, offsets round(0.5) = 0, 1, round(1.5) = 2, round(2.5) = 2 (not floor, not up).
    got = preprocess(rows_numbered(8 + margin, 8), 8)
    want = expected_grey(np.arange(first_row, first_row + 8)[:, None] * np.ones((1, 8)))
    np.testing.assert_array_equal(got, want)


def test_the_long_side_is_scaled_then_rounded_down():
    resized = image_module._resize_short_side(Image.new("RGB", (20, 39)), 24)
    assert resized.size == (24, 46)  # 39 * 24 / 20 = 46.8
    resized = image_module._resize_short_side(Image.new("RGB", (45, 26)), 24)
    assert resized.size == (41, 24)  # 45 * 24 / 26 = 41.54...


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (12, 200, 99)])
def test_a_flat_image_gives_its_normalized_colour_everywhere(colour):
    got = preprocess(Image.new("RGB", (31, 17), colour), 16)
    assert got.shape == (3, 16, 16) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.broadcast_to(expected_grey(
        np.asarray(colour).reshape(3, 1, 1)), (3, 16, 16)))


def test_arrays_are_taken_as_pil_fromarray_takes_them():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(30, 41, 3), dtype=np.uint8)
    want = preprocess(Image.fromarray(rgb), 24)
    np.testing.assert_array_equal(preprocess(rgb, 24), want)
    np.testing.assert_array_equal(preprocess(np.asfortranarray(rgb), 24), want)
    strided = np.repeat(rgb, 2, axis=1)[:, ::2]  # a view with a step: same pixels
    np.testing.assert_array_equal(preprocess(strided, 24), want)
    grey = rgb[..., 0]
    np.testing.assert_array_equal(preprocess(grey, np.int64(24)),
                                  preprocess(Image.fromarray(grey).convert("RGB"), 24))


def test_the_input_image_is_left_as_it_was():
    image = open_png("landscape_rgb")
    before = np.asarray(image).copy()
    preprocess(image, 24)
    assert image.size == (45, 30) and np.array_equal(np.asarray(image), before)


# ------------------------------------------------------------ live against open_clip


def live_images():
    rng = np.random.default_rng(1)
    for mode, width, height in [("RGB", 640, 480), ("RGB", 333, 500), ("RGB", 3, 2),
                                ("RGBA", 300, 301), ("L", 227, 224), ("P", 224, 229),
                                ("RGB", 224, 224)]:
        pixels = rng.integers(0, 256, size=(height, width, 4), dtype=np.uint8)
        image = Image.fromarray(pixels).convert("RGB" if mode == "P" else mode)
        yield f"{mode} {width}x{height}", image.quantize(32) if mode == "P" else image
    for name in MANIFEST["images"]:
        yield name, open_png(name)


@pytest.mark.parametrize("size", [224, 24, 7])
def test_preprocess_equals_open_clip_live(size):
    open_clip = open_clip_or_skip()
    transform = open_clip.image_transform(size, is_train=False)
    for name, image in live_images():
        want = transform(image).numpy()
        got = preprocess(image, size)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.max(np.abs(got - want)) == 0, f"{name} at {size}"


# ------------------------------------------------------------ bad input

RGB = Image.new("RGB", (5, 4))
TABLE = [
    bad(preprocess, "cat.jpg", error=TypeError, words=["image must be a PIL image", "str"]),
    bad(preprocess, None, error=TypeError, words="image must be a PIL image"),
    bad(preprocess, [[0, 0, 0]], error=TypeError, words="image must be a PIL image"),
    bad(preprocess, np.zeros((4, 4, 3), np.float32), error=TypeError,
        words=["image as an array must have dtype uint8", "float32"]),
    bad(preprocess, np.zeros((4, 4, 4), np.uint8), error=ValueError,
        words=["image as an array must be (H, W, 3)", "(4, 4, 4)"]),
    bad(preprocess, np.zeros(4, np.uint8), error=ValueError, words="image as an array"),
    bad(preprocess, np.zeros((0, 5, 3), np.uint8), error=ValueError,
        words="image must have at least one pixel"),
    bad(preprocess, Image.new("RGB", (0, 5)), error=ValueError,
        words="image must have at least one pixel"),
    bad(preprocess, RGB, 0, error=ValueError, words="image_size must be in [1, 16384], got 0"),
    bad(preprocess, RGB, 224.0, error=TypeError, words="image_size must be an int"),
    bad(preprocess, RGB, True, error=TypeError, words="image_size must be an int"),
    bad(preprocess, RGB, "224", error=TypeError, words="image_size must be an int"),
    bad(preprocess, RGB, 10**30, error=ValueError, words="image_size must be in [1, 16384]"),
]


@pytest.mark.parametrize("fn, args, kwargs, error, words", TABLE)
def test_bad_input_is_refused_naming_the_argument(fn, args, kwargs, error, words):
    check_bad_row(fn, args, kwargs, error, words)


def test_every_public_function_has_bad_input_rows():
    assert_table_covers(image_module, TABLE)
