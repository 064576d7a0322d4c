"""SpeciesNet's own classifier, run in a process of its own: the reference our stage 2 is compared with.

Usage: ``python tests/reference/speciesnet_run.py REQUEST.json RESULT.json``. The request names the
model folder and the images, each a file with its boxes (``[x_min, y_min, width, height]``
normalized). Each image is read by SpeciesNet's own loader (``utils.load_rgb_image``: Pillow, RGB,
EXIF orientation) and classified by ``SpeciesNetClassifier.preprocess`` and ``batch_predict`` on
the CPU. The result holds each image's ``classifications_list`` (top-5 classes and scores per box).

A process of its own because importing speciesnet turns on Pillow's ``LOAD_TRUNCATED_IMAGES`` for
the whole process.
"""

from __future__ import annotations

import json
import sys


def main(request_path: str, result_path: str) -> None:
    with open(request_path) as handle:
        request = json.load(handle)
    from speciesnet.classifier import SpeciesNetClassifier
    from speciesnet.utils import BBox, load_rgb_image

    classifier = SpeciesNetClassifier(request["folder"], device="cpu")
    paths, inputs = [], []
    for item in request["images"]:
        image = load_rgb_image(item["file"])
        paths.append(item["file"])
        inputs.append(classifier.preprocess(image, bboxes=[BBox(*box) for box in item["boxes"]]))
    results = classifier.batch_predict(paths, inputs, num_classes=5)
    with open(result_path, "w") as handle:
        json.dump({"results": results}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:3])
