"""The detector: MegaDetector's inference, batched, fed by our own input path.

Both families of detector files load by what the file is (``detector_files``): ultralytics
checkpoints with ultralytics, YOLOv5-repository checkpoints (MDv5a/b) with the ``yolov5`` package.
From the canvas on (``letterbox``), every step is the one MegaDetector's ``PTDetector`` takes in its
default mode, so a user switching from ``run_detector_batch`` gets the same boxes:

- the model loaded as MegaDetector loads it (float32, conv and batch-norm fused, eval mode);
- non-maximum suppression at IoU 0.45 keeping at most 300 boxes: for YOLOv5 files MegaDetector's
  own (objectness and class confidence above the threshold, per-class NMS), for ultralytics files
  ultralytics' ``non_max_suppression`` as MegaDetector calls it;
- boxes scaled back to the full-resolution photo by the family's own ``scale_boxes`` and rounded to
  whole pixels, then normalized in float32 as MegaDetector does (:meth:`Box.bbox`).

On CUDA the model runs in FP16 (MegaDetector runs FP32; confidences then differ in the third
decimal), and a batch that runs out of memory is split in half and retried, the smaller batch size
kept for the rest of the shard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wildlife_gpu import detector_files
from wildlife_gpu.letterbox import Letterbox, letterbox_stride
from wildlife_gpu.models import ModelError, class_categories

log = logging.getLogger(__name__)

NMS_IOU = 0.45
"""MegaDetector's NMS IoU in its default ("classic") mode, for both families."""
MAX_DETECTIONS = 300
"""Boxes kept per image after NMS, MegaDetector's and ultralytics' default; a herd is a few dozen."""
YOLOV5_IMAGE_SIZE = 1280
"""The size MegaDetector assumes for a YOLOv5 checkpoint without metadata: MDv5a/b's training size."""
REASON_CHARS = 200
"""A model error's reason is cut here: enough for the library's own diagnosis, short enough for a
Batch StatusReason and one console line."""


def import_ultralytics() -> None:
    """Import ultralytics without the banner it logs the first time it writes its settings file.

    At its first import on a machine it says at INFO, through a handler of its own on the stdout of
    that moment, that it created ``settings.json`` and how to change it: on the screen of a user's
    first ``wildlife run``, which loads the models before the run starts. A filter on its logger
    holds back INFO records for the import only (its logger keeps filters it finds; warnings pass).
    The import lock makes this once per process; later calls only find it imported.
    """
    logger = logging.getLogger("ultralytics")

    def above_info(record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO

    logger.addFilter(above_info)
    try:
        import ultralytics  # noqa: F401
    finally:
        logger.removeFilter(above_info)


@dataclass(frozen=True)
class Box:
    """One detection in the full-resolution photo's pixels, rounded to whole pixels as MegaDetector rounds."""

    x1: float
    y1: float
    x2: float
    y2: float
    conf: float
    category: str

    def bbox(self, width: int, height: int) -> tuple[float, float, float, float]:
        """``[x_min, y_min, width, height]`` normalized to 0..1, computed as MegaDetector computes it.

        MegaDetector converts the rounded corners to centre and size in float32 (YOLOv5's
        ``xyxy2xywh`` on a float32 tensor, divided by the image size), then back to the top-left
        corner in float64: the same steps give the same floats, so its 4-decimal truncation agrees.
        """
        f = np.float32
        x_centre = (f(self.x1) + f(self.x2)) / f(2) / f(width)
        y_centre = (f(self.y1) + f(self.y2)) / f(2) / f(height)
        box_w = (f(self.x2) - f(self.x1)) / f(width)
        box_h = (f(self.y2) - f(self.y1)) / f(height)
        return (
            float(x_centre) - float(box_w) / 2.0,
            float(y_centre) - float(box_h) / 2.0,
            float(box_w),
            float(box_h),
        )


def device_name() -> str:
    """The first CUDA GPU when there is one, else the CPU."""
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def megadetector_nms(prediction: torch.Tensor, conf: float, iou: float = NMS_IOU) -> list[torch.Tensor]:
    """MegaDetector's NMS for YOLOv5 outputs (``pytorch_detector.nms``): ``[x1, y1, x2, y2, conf, class]`` per image.

    Args:
        prediction: ``B x anchors x (5 + classes)``: centre x, centre y, width, height, objectness, class scores.
        conf: objectness and class confidence (objectness x class score) must both exceed it.
        iou: boxes of one class overlapping a better one by more than this are dropped.
    """
    import torchvision

    out = []
    for x in prediction:
        x = x[x[:, 4] > conf]
        centre, size = x[:, :2], x[:, 2:4]
        boxes = torch.cat([centre - size / 2, centre + size / 2], 1)
        best, classes = (x[:, 5:] * x[:, 4:5]).max(1)
        keep = best > conf
        boxes, best, classes = boxes[keep], best[keep], classes[keep]
        found = []
        for cls in classes.unique():
            mine = classes == cls
            kept = torchvision.ops.nms(boxes[mine], best[mine], iou)
            found.append(
                torch.cat([boxes[mine][kept], best[mine][kept, None], torch.full_like(best[mine][kept, None], cls)], 1)
            )
        detections = torch.cat(found) if found else x.new_zeros((0, 6))
        out.append(detections[detections[:, 4].argsort(descending=True)][:MAX_DETECTIONS])
    return out


class Detector:
    """A loaded detector that turns batches of same-shape canvases into boxes per photo."""

    def __init__(
        self,
        weights: str,
        *,
        image_size: int,
        conf: float,
        class_map: str | dict[str, str],
        device: str | None = None,
        detector_format: str = "auto",
    ) -> None:
        """Load ``weights``.

        Args:
            weights: a local weights file.
            image_size: the long side photos are scaled to.
            conf: detections at or below this confidence are dropped.
            class_map: ``megadetector``, ``coco`` or ``{index or name: category}``.
            device: ``cuda:0``, ``cpu``; the first GPU when there is one by default.
            detector_format: ``auto`` (what the file is), ``ultralytics`` or ``yolov5``.

        Raises:
            ModelError: the file is not a detector, or its library cannot run it; one line naming the file.
        """
        self.device = device or device_name()
        self.half = self.device.startswith("cuda")
        self.image_size = image_size
        self.conf = conf
        try:
            found = detector_files.inspect(weights)
        except detector_files.NotADetector as error:
            raise ModelError(f"detector weights {weights} are not a detector: {error}") from error
        except OSError as error:
            raise ModelError(f"detector weights {weights} cannot be read: {error}") from error
        self.format = found.format if detector_format == "auto" else detector_format
        library = "the yolov5 package" if self.format == "yolov5" else "ultralytics"
        try:
            model, names, self._postprocess = (
                self._load_yolov5 if self.format == "yolov5" else self._load_ultralytics
            )(weights)
            self.categories = class_categories(names, class_map)
            model_image_size = found.metadata.get("image_size") or (
                YOLOV5_IMAGE_SIZE if self.format == "yolov5" else image_size
            )
            model_stride = int(torch.as_tensor(model.stride).max())  # 32, or 64 for P6 models (MDv5)
            self.stride = letterbox_stride(int(model_image_size), model_stride)
            if image_size % model_stride:
                # A square photo is not padded (nothing to pad to), and the model's last stage needs whole cells.
                raise ModelError(
                    f"image_size {image_size} does not suit detector {weights}: its stride is {model_stride} "
                    f"(a P6 model, such as MegaDetector v5), so use a multiple of {model_stride}, e.g. 1280"
                )
            self.model = model.to(self.device)
            if self.half:
                self.model = self.model.half()
            self._infer([self.letterbox(image_size, image_size)], np.zeros((1, image_size, image_size, 3), np.uint8))
        except ModelError:
            raise
        except Exception as error:  # the libraries raise many types for a truncated or foreign file
            raise ModelError(
                f"detector weights {weights} are not a {self.format} model {library} can run: {_reason(error)}"
            ) from error

    @staticmethod
    def _load_yolov5(weights: str) -> tuple[torch.nn.Module, dict[int, str], Callable]:
        from wildlife_gpu import yolov5_checkpoint

        model = yolov5_checkpoint.load(weights)
        from yolov5.utils.general import scale_boxes

        def postprocess(output: Any, conf: float) -> list[torch.Tensor]:
            return megadetector_nms(output[0].float(), conf)

        raw: Any = getattr(model, "names", [])
        names = dict(enumerate(raw)) if isinstance(raw, list | tuple) else {int(k): str(v) for k, v in raw.items()}
        return model, names, _scaled(postprocess, scale_boxes)

    @staticmethod
    def _load_ultralytics(weights: str) -> tuple[torch.nn.Module, dict[int, str], Callable]:
        import_ultralytics()
        from ultralytics import YOLO
        from ultralytics.utils.nms import non_max_suppression
        from ultralytics.utils.ops import scale_boxes

        loaded = YOLO(weights).model
        if not isinstance(loaded, torch.nn.Module):
            raise ModelError(f"detector weights {weights} hold no ultralytics model")
        model: Any = loaded  # ultralytics' DetectionModel: fuse(), names, stride
        model = model.float().fuse(verbose=False).eval()
        end2end = bool(getattr(model, "end2end", False))  # YOLOv10, YOLO26: boxes come out already selected

        def postprocess(output: Any, conf: float) -> list[torch.Tensor]:
            prediction = output[0] if isinstance(output, list | tuple) else output
            return non_max_suppression(
                prediction.float(), conf, NMS_IOU, agnostic=False, multi_label=False, end2end=end2end
            )

        return model, {int(k): str(v) for k, v in model.names.items()}, _scaled(postprocess, scale_boxes)

    def letterbox(self, height: int, width: int) -> Letterbox:
        """Where a photo of this full-resolution size goes on the model input."""
        return Letterbox.of(height, width, self.image_size, self.stride)

    def _infer(self, places: list[Letterbox], batch: np.ndarray) -> list[list[Box]]:
        tensor = torch.from_numpy(batch).to(self.device, non_blocking=True).permute(0, 3, 1, 2)  # BHWC → BCHW
        tensor = (tensor.half() if self.half else tensor.float()) / 255
        with torch.inference_mode():
            per_image = self._postprocess(self.model(tensor), self.conf, tuple(tensor.shape[2:]), places)
        out = []
        for rows in per_image:
            boxes = []
            for x1, y1, x2, y2, conf, cls in rows.tolist():
                category = self.categories.get(int(cls), "ignore")
                if category != "ignore" and conf >= self.conf:
                    boxes.append(Box(x1, y1, x2, y2, conf, category))
            out.append(sorted(boxes, key=lambda b: -b.conf))
        return out

    def detect(self, batch: np.ndarray, places: list[Letterbox]) -> list[list[Box]]:
        """Boxes per photo, in each photo's full-resolution pixels, most confident first.

        Args:
            batch: canvases of one shape, ``B x H x W x 3`` uint8 RGB (``Letterbox.apply``).
            places: each photo's letterbox, in batch order.
        """
        if self.oom_batch and len(places) > self.oom_batch:
            # An earlier batch ran out of memory: go straight to the size that fitted.
            step = self.oom_batch
            return [
                boxes
                for i in range(0, len(places), step)
                for boxes in self.detect(batch[i : i + step], places[i : i + step])
            ]
        try:
            return self._infer(places, batch)
        except torch.cuda.OutOfMemoryError:
            if len(places) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(places) // 2
            log.warning("CUDA out of memory at batch %d: halving to %d and going on", len(places), half)
            self.oom_batch = half
            return self.detect(batch[:half], places[:half]) + self.detect(batch[half:], places[half:])

    oom_batch: int | None = None
    """Set when out-of-memory forced a smaller batch; the shard keeps using it."""


def _scaled(nms: Callable[[Any, float], list[torch.Tensor]], scale_boxes: Callable) -> Callable:
    """NMS, then the family's ``scale_boxes`` from the canvas to each full-resolution photo, rounded."""

    def postprocess(output: Any, conf: float, canvas: tuple[int, int], places: list[Letterbox]) -> list[torch.Tensor]:
        found = nms(output, conf)
        for detections, place in zip(found, places, strict=True):
            if len(detections):
                detections[:, :4] = scale_boxes(canvas, detections[:, :4], (place.height, place.width)).round()
        return [d.float().cpu() for d in found]

    return postprocess


def _reason(error: Exception) -> str:
    """The first line of a library's message, without its emoji tag, cut to REASON_CHARS."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    reason = reason.removeprefix("ERROR").strip(" ❌\ufe0f") or type(error).__name__
    return reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS] + " …"
