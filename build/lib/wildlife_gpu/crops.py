"""Animal crops for stage 2, cut with a margin and written as JPEG.

A crop is cut from the reduced-size decode when that still has enough pixels for the classifier;
a small animal in a 12 MP photo decoded at 1/4 would be a blur, so then the image is decoded again
at full resolution (only for those images: most crops are large enough).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from wildlife_common import storage

from wildlife_gpu.detector import Box
from wildlife_gpu.images import DecodedImage, decode

# Context around the box: classifiers trained on MegaDetector crops expect a little background,
# and a tight box cuts off tails and ears. 10 % of the box size on each side.
CROP_MARGIN = 0.1
# Below this many pixels on its long side in the reduced decode, a crop is cut from the full
# image instead: about the input size of common classifiers (224) with a little headroom.
MIN_CROP_SIDE = 256
# JPEG quality of crops: 90 keeps fur texture; crops are a few tens of KB.
CROP_QUALITY = 90


@dataclass
class Crop:
    """A crop to cut: where it goes, the box (in the full-resolution photo's pixels) and the image."""

    uri: str
    box: Box
    decoded: DecodedImage
    data: bytes | None


def crop_region(box: Box, width: int, height: int, scale: float = 1.0) -> tuple[int, int, int, int]:
    """The pixel rectangle (x1, y1, x2, y2) of a box plus margin, scaled and clipped to the image."""
    margin_x = (box.x2 - box.x1) * CROP_MARGIN
    margin_y = (box.y2 - box.y1) * CROP_MARGIN
    x1 = int(max(0, np.floor((box.x1 - margin_x) * scale)))
    y1 = int(max(0, np.floor((box.y1 - margin_y) * scale)))
    x2 = int(min(width, np.ceil((box.x2 + margin_x) * scale)))
    y2 = int(min(height, np.ceil((box.y2 + margin_y) * scale)))
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


def cut_crops(crops: list[Crop]) -> None:
    """Cut and store the crops of one image, decoding it again at most once.

    When a crop would be too small in the reduced decode, the image is decoded once more at the
    largest reduction that still gives its smallest crop MIN_CROP_SIDE pixels (often 1/2, not full
    size), and every crop of the image is cut from that.
    """
    decoded, data = crops[0].decoded, crops[0].data
    pixels = decoded.pixels
    # The smallest crop's long side in the pixels decoded so far.
    smallest = min(max(c.box.x2 - c.box.x1, c.box.y2 - c.box.y1) for c in crops) * decoded.scale
    if decoded.scale < 1.0 and smallest < MIN_CROP_SIDE and data is not None:
        # The crop's share of the image is the same at any scale: the image's long side must be
        # MIN_CROP_SIDE / share for the crop to reach MIN_CROP_SIDE.
        long_side = max(pixels.shape[:2])
        pixels = decode(data, min_side=math.ceil(MIN_CROP_SIDE * long_side / max(smallest, 1.0))).pixels
    scale = pixels.shape[1] / decoded.width  # boxes are in full-resolution pixels
    height, width = pixels.shape[:2]
    for crop in crops:
        x1, y1, x2, y2 = crop_region(crop.box, width, height, scale)
        region = np.ascontiguousarray(pixels[y1:y2, x1:x2, ::-1])  # RGB → BGR for OpenCV
        ok, encoded = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, CROP_QUALITY])
        if not ok:
            raise RuntimeError(f"could not encode crop {crop.uri}")
        storage.write_bytes(crop.uri, encoded.tobytes(), intermediate=True, content_type="image/jpeg")
