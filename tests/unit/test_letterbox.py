"""Our letterbox is MegaDetector's: the canvas of YOLOv5's ``letterbox`` and ultralytics' ``LetterBox``, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from wildlife_gpu.letterbox import PAD_VALUE, Letterbox, letterbox_stride
from wildlife_gpu.yolov5_checkpoint import import_yolov5

# Camera-trap frames (4:3, 16:9, 3:2, portrait), odd sizes whose padding splits unevenly, tiny and
# thin images, and photos smaller than the model input (scaled up, as MegaDetector does).
SHAPES = [(3000, 4000), (1080, 1920), (2000, 3000), (4000, 3000), (1081, 1441), (333, 1001), (7, 900), (240, 320)]
SIZES_AND_STRIDES = [(1280, 64), (640, 32), (320, 32), (1280, 32), (640, 64)]


def _photo(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(height * 7919 + width).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(("size", "stride"), SIZES_AND_STRIDES)
def test_the_canvas_is_yolov5s_letterbox_to_the_pixel(size: int, stride: int) -> None:
    import_yolov5()
    from yolov5.utils.augmentations import letterbox

    for height, width in SHAPES:
        photo = _photo(height, width)
        theirs, _, _ = letterbox(photo, new_shape=size, stride=stride, auto=True, scaleFill=False, scaleup=True)
        ours = Letterbox.of(height, width, size, stride).apply(photo)
        assert ours.shape == theirs.shape and (ours == theirs).all(), (height, width, size, stride)


@pytest.mark.parametrize(("size", "stride"), SIZES_AND_STRIDES)
def test_the_canvas_is_ultralytics_letterbox_to_the_pixel(size: int, stride: int) -> None:
    from ultralytics.data.augment import LetterBox

    for height, width in SHAPES:
        photo = _photo(height, width)
        theirs = LetterBox((size, size), auto=True, scale_fill=False, scaleup=True, center=True, stride=stride)(
            image=photo
        )
        ours = Letterbox.of(height, width, size, stride).apply(photo)
        assert ours.shape == theirs.shape and (ours == theirs).all(), (height, width, size, stride)


def test_a_reduced_decode_lands_in_the_same_place_on_the_same_canvas() -> None:
    """Geometry comes from the full-resolution size, whatever size the pixels were decoded at."""
    place = Letterbox.of(3000, 4000, 1280, 64)
    half = place.apply(np.full((1500, 2000, 3), 200, np.uint8))
    assert half.shape == (960, 1280, 3) and (half == 200).all()
    wide = Letterbox.of(1080, 1920, 1280, 64)  # 1280 x 720, padded to 768: 24 rows above and below
    canvas = wide.apply(np.full((540, 960, 3), 200, np.uint8))
    assert canvas.shape == (768, 1280, 3) and wide.top == 24
    assert (canvas[:24] == PAD_VALUE).all() and (canvas[24:744] == 200).all() and (canvas[744:] == PAD_VALUE).all()


def test_the_stride_follows_megadetectors_rule() -> None:
    assert letterbox_stride(1280, 32) == 64  # a model made for 1280 px (MDv1000 redwood) pads to 64
    assert letterbox_stride(640, 32) == 32
    assert letterbox_stride(640, 64) == 64  # a P6 model at another size still needs its own stride
