"""Where an image goes on the detector's canvas: MegaDetector's letterbox geometry, from the full-size photo.

MegaDetector's ``PTDetector`` (its default, "classic" mode, what ``run_detector_batch`` uses) feeds
a photo to the model through YOLOv5's ``letterbox(image, image_size, stride, auto=True)``:

- scale so the long side is ``image_size`` (up or down), each side rounded to whole pixels;
- pad the short side with grey 114 to the next multiple of ``stride`` (64 for the 1280-px P6
  models, MDv5a/b; else 32), half above and half below, rounding as YOLOv5 does;
- resize with bilinear interpolation (``cv2.INTER_LINEAR``).

The geometry is computed from the photo's full-resolution size, whatever size our input path
decoded it at (a 12 MP JPEG is decoded straight to 1/2 or 1/4 by DCT scaling), so the canvas and
the place of the photo on it are MegaDetector's to the pixel; only the pixels' resampling path
differs, and ``exact_decode`` removes even that.

Each image has its own canvas, and images are batched only with images of the same canvas: padding
an image to a larger canvas because of its neighbours changes what the model sees, and so its
detections (a 16:9 frame and a 4:3 one in one batch gave 46 and 42 boxes for the same photo).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114
"""YOLO's letterbox grey: the padding the models saw in training."""


@dataclass(frozen=True)
class Letterbox:
    """One photo's place on the model input.

    Attributes:
        height, width: the photo's full-resolution size (EXIF orientation applied).
        resized: (height, width) the photo is resized to.
        canvas: (height, width) of the model input: ``resized`` plus padding to a multiple of the stride.
        top, left: where the resized photo starts on the canvas.
    """

    height: int
    width: int
    resized: tuple[int, int]
    canvas: tuple[int, int]
    top: int
    left: int

    @classmethod
    def of(cls, height: int, width: int, image_size: int, stride: int) -> Letterbox:
        """YOLOv5's ``letterbox(..., new_shape=image_size, stride=stride, auto=True, scaleup=True)`` geometry."""
        ratio = min(image_size / height, image_size / width)
        new_w, new_h = max(round(width * ratio), 1), max(round(height * ratio), 1)
        pad_w, pad_h = (image_size - new_w) % stride / 2, (image_size - new_h) % stride / 2
        # YOLOv5 splits odd padding with round(x - 0.1) before and round(x + 0.1) after.
        top, bottom = round(pad_h - 0.1), round(pad_h + 0.1)
        left, right = round(pad_w - 0.1), round(pad_w + 0.1)
        return cls(height, width, (new_h, new_w), (new_h + top + bottom, new_w + left + right), top, left)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """The canvas for ``pixels``: the photo at any decoded size, ``H x W x 3`` uint8, resized and padded."""
        new_h, new_w = self.resized
        if pixels.shape[:2] != (new_h, new_w):
            pixels = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((*self.canvas, 3), PAD_VALUE, np.uint8)
        canvas[self.top : self.top + new_h, self.left : self.left + new_w] = pixels
        return canvas


def letterbox_stride(model_image_size: int, model_stride: int) -> int:
    """The padding multiple, by MegaDetector's rule: 64 for a model made for 1280 px, else 32.

    MegaDetector decides from the size the model was made for (the ``image_size`` in the file's
    metadata; 1280 for YOLOv5 checkpoints, which carry none), not from the size a run asks for: MDv5a
    run at 640 still pads to 64. Never below the model's own largest stride (a P6 model needs 64).
    """
    return max(model_stride, 64 if model_image_size == 1280 else 32)
