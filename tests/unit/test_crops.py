"""Crops cut the right pixels: the box plus its margin, from the full image when needed."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
from PIL import Image
from wildlife_common import storage
from wildlife_gpu.crops import CROP_MARGIN, Crop, crop_region, cut_crops
from wildlife_gpu.detector import Box
from wildlife_gpu.images import DecodedImage


def test_crop_region_adds_the_margin_and_clips_to_the_image() -> None:
    box = Box(100, 50, 200, 150, 0.9, "animal")
    assert crop_region(box, 1000, 1000) == (90, 40, 210, 160)
    edge = Box(0, 0, 50, 50, 0.9, "animal")
    assert crop_region(edge, 40, 1000) == (0, 0, 40, 55)


def test_a_crop_holds_the_boxed_pixels(tmp_path) -> None:
    pixels = np.zeros((600, 800, 3), np.uint8)
    pixels[200:300, 400:600] = (200, 30, 30)  # a red "animal" 200 x 100 px
    decoded = DecodedImage(pixels=pixels, width=800, height=600, datetime=datetime(2026, 1, 1))
    uri = str(tmp_path / "crop.jpg")
    cut_crops([Crop(uri, Box(400, 200, 600, 300, 0.9, "animal"), decoded, None)])
    crop = np.asarray(Image.open(io.BytesIO(storage.read_bytes(uri))).convert("RGB"))
    margin_x, margin_y = int(200 * CROP_MARGIN), int(100 * CROP_MARGIN)
    assert crop.shape[:2] == (100 + 2 * margin_y, 200 + 2 * margin_x)
    inner = crop[margin_y + 3 : -margin_y - 3, margin_x + 3 : -margin_x - 3].reshape(-1, 3).mean(axis=0)
    assert np.allclose(inner, (200, 30, 30), atol=8)  # JPEG keeps a flat colour within a few levels
    assert crop[: margin_y - 3].mean() < 10  # the margin is the black background


def test_boxes_in_full_resolution_pixels_are_cut_from_a_reduced_decode(tmp_path) -> None:
    """The input path may hold the photo at half size; boxes are in full-resolution pixels all the same."""
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[100:150, 200:300] = (200, 30, 30)  # the "animal" of the test above, at half size
    decoded = DecodedImage(pixels=pixels, width=800, height=600, datetime=None)
    uri = str(tmp_path / "crop.jpg")
    cut_crops([Crop(uri, Box(400, 200, 600, 300, 0.9, "animal"), decoded, None)])
    crop = np.asarray(Image.open(io.BytesIO(storage.read_bytes(uri))).convert("RGB"))
    assert crop.shape[:2] == (60, 120)  # (100 + 2 x 10 margin, 200 + 2 x 20) at half size
    assert np.allclose(crop[15:45, 20:100].reshape(-1, 3).mean(axis=0), (200, 30, 30), atol=8)
