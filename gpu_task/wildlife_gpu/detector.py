"""The detector: any weights file ultralytics loads, fed by our own input path.

ultralytics' predictor is set up once (it knows how to post-process YOLOv5u/8/9/10/11 and RT-DETR
outputs), then we hand it ready batches: our loader has already decoded at reduced size and
letterboxed, so the model never waits on ultralytics' serial full-size decode. On CUDA the model
runs in FP16 and a batch that runs out of memory is split in half and retried, and the smaller
batch size is kept for the rest of the shard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from wildlife_gpu.models import ModelError, class_categories

log = logging.getLogger(__name__)

# ultralytics' letterbox grey: padding the model saw in training.
PAD_VALUE = 114
# At most this many boxes an image before NMS keeps the best: camera-trap images rarely hold
# more than a herd of a few dozen animals, and 300 is ultralytics' own default.
MAX_DETECTIONS = 300
# NMS IoU: ultralytics' default (0.7) keeps overlapping animals in a herd apart.
NMS_IOU = 0.7
# A model error's reason is cut here: enough for ultralytics' own diagnosis, short enough for a
# Batch StatusReason and one console line.
REASON_CHARS = 200
# The largest stride of YOLO models (P5 heads; P6 models such as MegaDetector v5 use 64 but accept
# multiples of 32 with a little padding): input sides are padded to multiples of it.
STRIDE = 32


@dataclass(frozen=True)
class Box:
    """One detection in the pixel coordinates of the image that was fed in."""

    x1: float
    y1: float
    x2: float
    y2: float
    conf: float
    category: str


def device_name() -> str:
    """The first CUDA GPU when there is one, else the CPU."""
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def fit(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize keeping the aspect ratio so the long side is ``size`` (ultralytics' LetterBox geometry)."""
    import cv2

    height, width = pixels.shape[:2]
    ratio = min(size / height, size / width)
    new_w, new_h = round(width * ratio), round(height * ratio)
    if (new_w, new_h) == (width, height):
        return pixels
    # INTER_AREA for shrinking (no aliasing on 4x reductions), INTER_LINEAR for the rare upscale.
    interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    return cv2.resize(pixels, (new_w, new_h), interpolation=interpolation)


def pad_batch(images: list[np.ndarray]) -> np.ndarray:
    """Centre fitted images on one ``B x H x W x 3`` canvas, H and W the smallest multiples of STRIDE that hold them.

    ultralytics pads a single image the same way (rectangular inference, ``LetterBox(auto=True)``):
    a 4:3 photo at 640 becomes 640 x 480, not 640 x 640, which saves a quarter of the model's work.
    Boxes map back with ultralytics' own ``scale_boxes``: on each image's long side the canvas equals
    the fitted size, so the gain it computes from the canvas is the resize ratio, and the padding is
    centred with the same rounding.
    """
    height = -(-max(image.shape[0] for image in images) // STRIDE) * STRIDE
    width = -(-max(image.shape[1] for image in images) // STRIDE) * STRIDE
    out = np.full((len(images), height, width, 3), PAD_VALUE, dtype=np.uint8)
    for index, image in enumerate(images):
        h, w = image.shape[:2]
        top = round((height - h) / 2 - 0.1)
        left = round((width - w) / 2 - 0.1)
        out[index, top : top + h, left : left + w] = image
    return out


def letterbox(pixels: np.ndarray, size: int) -> np.ndarray:
    """Fit and pad to a square ``size`` x ``size``, as ultralytics' LetterBox(auto=False, center=True)."""
    fitted = fit(pixels, size)
    out = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    h, w = fitted.shape[:2]
    top = round((size - h) / 2 - 0.1)
    left = round((size - w) / 2 - 0.1)
    out[top : top + h, left : left + w] = fitted
    return out


class Detector:
    """A loaded detector that turns letterboxed batches into boxes per image."""

    def __init__(
        self,
        weights: str,
        *,
        image_size: int,
        conf: float,
        class_map: str | dict[str, str],
        device: str | None = None,
    ) -> None:
        from ultralytics import YOLO
        from ultralytics.engine.predictor import BasePredictor

        self.device = device or device_name()
        self.half = self.device.startswith("cuda")
        self.image_size = image_size
        try:
            self.model = YOLO(weights)
            self.categories = class_categories(dict(self.model.names), class_map)
            # One predict call sets up ultralytics' predictor with our settings and warms the model up.
            self.model.predict(
                np.full((image_size, image_size, 3), PAD_VALUE, np.uint8),
                imgsz=image_size,
                conf=conf,
                iou=NMS_IOU,
                max_det=MAX_DETECTIONS,
                device=self.device,
                # ultralytics 8.4's precision setting (its `half` is deprecated): FP16 on CUDA, FP32 on the CPU.
                quantize="fp16" if self.half else None,
                verbose=False,
            )
        except ModelError:
            raise
        except Exception as error:  # ultralytics raises many types for a truncated or foreign file
            # ultralytics' messages run to several lines of advice: keep the first, without its emoji tag.
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reason = reason.removeprefix("ERROR").strip(" ❌\ufe0f")
            reason = reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS] + " …"
            raise ModelError(f"detector weights {weights} are not a model ultralytics can run: {reason}") from error
        predictor = self.model.predictor
        if predictor is None:
            raise ModelError(f"detector weights {weights} did not set up an ultralytics predictor")
        self.predictor: BasePredictor = predictor

    def _infer(self, batch: np.ndarray, shapes: list[tuple[int, int]]) -> list[list[Box]]:
        tensor = torch.from_numpy(batch).to(self.device, non_blocking=True)
        tensor = tensor.permute(0, 3, 1, 2)  # BHWC (what the loader builds) → BCHW
        tensor = (tensor.half() if self.half else tensor.float()).div_(255)
        with torch.inference_mode():
            preds = self.predictor.inference(tensor)
            # The predictor reads paths from its batch; ours are placeholders (we match by position
            # within our own batch, never skipping: failed images never reach the model).
            self.predictor.batch = ([f"image{i}" for i in range(len(shapes))], None, None)  # type: ignore[assignment]  # ultralytics declares it None until predict sets it
            stand_ins = [np.empty((h, w, 3), np.uint8) for h, w in shapes]
            results = self.predictor.postprocess(preds, tensor, stand_ins)
        out = []
        for result in results:
            boxes = []
            data = result.boxes.data.float().cpu().numpy() if result.boxes is not None else np.empty((0, 6))
            for x1, y1, x2, y2, conf, cls in data:
                category = self.categories.get(int(cls), "ignore")
                if category != "ignore":
                    boxes.append(Box(float(x1), float(y1), float(x2), float(y2), float(conf), category))
            out.append(sorted(boxes, key=lambda b: -b.conf))
        return out

    def detect(self, batch: np.ndarray, shapes: list[tuple[int, int]]) -> list[list[Box]]:
        """Boxes per image, in each image's own pixels.

        Args:
            batch: letterboxed images, ``B x H x W x 3`` uint8 RGB (``pad_batch``).
            shapes: each image's (height, width) before letterboxing.
        """
        if self.oom_batch and len(shapes) > self.oom_batch:
            # An earlier batch ran out of memory: go straight to the size that fitted.
            step = self.oom_batch
            return [
                boxes
                for i in range(0, len(shapes), step)
                for boxes in self.detect(batch[i : i + step], shapes[i : i + step])
            ]
        try:
            return self._infer(batch, shapes)
        except torch.cuda.OutOfMemoryError:
            if len(shapes) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(shapes) // 2
            log.warning("CUDA out of memory at batch %d: halving to %d and going on", len(shapes), half)
            self.oom_batch = half
            return self.detect(batch[:half], shapes[:half]) + self.detect(batch[half:], shapes[half:])

    oom_batch: int | None = None
    """Set when out-of-memory forced a smaller batch; the shard keeps using it."""
