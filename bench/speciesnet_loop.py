"""SpeciesNet's own classification loop over photos and their boxes, timed: the other side of ``speciesnet_speedup``.

Usage: ``python bench/speciesnet_loop.py FOLDER REQUEST.json RESULT.json``. The request lists photos
with their boxes (``[x_min, y_min, width, height]``, as megadetector.json writes them). For each
photo, what a script around the package does: ``utils.load_rgb_image`` (Pillow, RGB, EXIF),
``SpeciesNetClassifier.preprocess`` (one crop per box) and ``batch_predict`` on that photo's crops.
The model is loaded, and the first photo classified once, before the clock starts. Writes
``{"seconds": ..., "photos": ..., "crops": ...}``.
"""

from __future__ import annotations

import json
import sys
import time


def main(folder: str, request_path: str, out: str) -> None:
    from speciesnet.classifier import SpeciesNetClassifier
    from speciesnet.utils import BBox, load_rgb_image

    with open(request_path) as handle:
        photos = json.load(handle)["images"]
    classifier = SpeciesNetClassifier(folder)

    def classify(photo: dict) -> int:
        crops = classifier.preprocess(load_rgb_image(photo["file"]), bboxes=[BBox(*b) for b in photo["boxes"]])
        classifier.batch_predict([photo["file"]], [crops])
        return len(photo["boxes"])

    classify(photos[0])
    start = time.perf_counter()
    crops = sum(classify(photo) for photo in photos)
    with open(out, "w") as handle:
        json.dump({"seconds": time.perf_counter() - start, "photos": len(photos), "crops": crops}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:4])
