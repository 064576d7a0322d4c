"""MegaDetector's own inference, run in a process of its own: the reference our detector is compared with.

Usage: ``python tests/reference/megadetector_run.py REQUEST.json RESULT.json``. The request names
the weights, the image size, the threshold and the images, each either a file (read by
MegaDetector's own loader, ``visualization_utils.load_image``: Pillow, EXIF orientation applied) or
a ``.npy`` array of decoded RGB pixels (so both sides see exactly the same pixels). The result is
MegaDetector's per-image output (``detections`` with ``category``, ``conf``, ``bbox``).

A process of its own because ``PTDetector`` manages imports process-wide: it removes ultralytics
and yolov5 modules from ``sys.modules`` when it switches model types, and unpickles MDv5 files
through the ``yolov5`` folder that the package appends to ``sys.path``.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(request_path: str, result_path: str) -> None:
    with open(request_path) as handle:
        request = json.load(handle)
    from megadetector.detection.pytorch_detector import PTDetector
    from megadetector.visualization import visualization_utils

    detector = PTDetector(request["weights"], detector_options={"force_cpu": True})
    results = []
    for item in request["images"]:
        image = np.load(item["npy"]) if item.get("npy") else visualization_utils.load_image(item["file"])
        results.append(
            detector.generate_detections_one_image(
                image, item["id"], detection_threshold=request["threshold"], image_size=request.get("image_size")
            )
        )
    with open(result_path, "w") as handle:
        json.dump({"results": results, "stride": detector.letterbox_stride}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:3])
