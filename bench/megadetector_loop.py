"""MegaDetector's own detection loop over a folder, timed: the other side of ``megadetector_speedup``.

Usage: ``python bench/megadetector_loop.py WEIGHTS FOLDER IMAGE_SIZE RESULT.json``. What
``run_detector_batch`` does per image in one process (no image queue): ``load_image`` (Pillow,
EXIF orientation applied) and ``PTDetector.generate_detections_one_image`` at threshold 0.005,
MegaDetector's output threshold. The model is loaded, and the first photo run once, before the clock
starts. Writes ``{"seconds": ..., "images": ..., "detections": ...}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(weights: str, folder: str, image_size: str, out: str) -> None:
    from megadetector.detection.pytorch_detector import PTDetector
    from megadetector.visualization import visualization_utils

    paths = sorted(Path(folder).glob("*.jpg"))
    detector = PTDetector(weights, detector_options={"force_cpu": False})
    size = int(image_size)
    detector.generate_detections_one_image(visualization_utils.load_image(str(paths[0])), "warm-up", 0.005, size)
    start = time.perf_counter()
    detections = 0
    for path in paths:
        image = visualization_utils.load_image(str(path))
        result = detector.generate_detections_one_image(image, path.name, detection_threshold=0.005, image_size=size)
        detections += len(result["detections"] or [])
    seconds = time.perf_counter() - start
    Path(out).write_text(json.dumps({"seconds": seconds, "images": len(paths), "detections": detections}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
