"""Our SpeciesNet classifier path against the ``speciesnet`` package's own ``SpeciesNetClassifier``.

Same model folder (a stand-in in the release's formats, ``demo/speciesnet_folder.py``), same
photos (the bundled samples and ultralytics' two real photos), same boxes (the demo detector's
detections at or above SpeciesNet's 0.1, as megadetector.json writes them). The reference reads the
files with SpeciesNet's own loader and classifies one image at a time in its process
(``tests/reference/speciesnet_run.py``); we decode with our input path and classify crops of many
photos in batches. Every crop's top-5 classes must be the same, every score within 1e-4 (the
stand-in is sensitive enough for that to mean something: a crop one pixel to the right moves the
top scores of the first sample's deer by 3.2e-4).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from wildlife_gpu.detector import Detector
from wildlife_gpu.images import decode
from wildlife_gpu.speciesnet_folder import SpeciesNetClassifier, SpeciesNetFolder, crop_input

from demo.speciesnet_folder import build_folder
from tests.speciesnet_reference import classify

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "demo" / "samples"
REFERENCE = ROOT / "tests" / "reference" / "speciesnet_run.py"
CLASSIFY_FROM = 0.1
"""SpeciesNet classifies every detection at or above this (its DEFAULT_DETECTION_THRESHOLD_FOR_CLASSIFICATION)."""
BATCH = 16

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("two_torch_threads")]


def _photos() -> list[Path]:
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    return [*sorted(SAMPLES.glob("*.jpg")), assets / "bus.jpg", assets / "zidane.jpg"]


def _cut(value: float, digits: int = 4) -> float:
    return math.floor(value * 10**digits) / 10**digits


@pytest.fixture(scope="module")
def boxes() -> dict[Path, list[list[float]]]:
    """The demo detector's boxes >= 0.1 per photo, as megadetector.json writes them (4 decimals)."""
    detector = Detector(
        str(ROOT / "demo" / "models" / "detector.pt"), image_size=320, conf=0.005, class_map="megadetector"
    )
    found = {}
    for path in _photos():
        decoded = decode(path.read_bytes())
        place = detector.letterbox(decoded.height, decoded.width)
        found[path] = [
            [_cut(v) for v in box.bbox(decoded.width, decoded.height)]
            for box in detector.detect(place.apply(decoded.pixels)[None], [place])[0]
            if box.conf >= CLASSIFY_FROM
        ]
    return found


def reference(folder: Path, images: dict[Path, list[list[float]]], tmp: Path) -> list[dict]:
    return classify(folder, [{"file": str(path), "boxes": boxes} for path, boxes in images.items()], tmp)


def ours(folder: Path, images: dict[Path, list[list[float] | None]]) -> list[list[tuple[list[str], list[float]]]]:
    """Top-5 per crop per photo, crops of all photos classified in batches of BATCH."""
    classifier = SpeciesNetClassifier(SpeciesNetFolder.open(str(folder)), device="cpu")
    crops, owners = [], []
    for index, (path, boxes) in enumerate(images.items()):
        pixels = decode(path.read_bytes()).pixels  # full size, EXIF orientation applied
        for box in boxes:
            crops.append(crop_input(pixels, None if box is None else tuple(box)))
            owners.append(index)
    results: list[list[tuple[list[str], list[float]]]] = [[] for _ in images]
    for start in range(0, len(crops), BATCH):
        labels, scores = classifier.classify(np.stack(crops[start : start + BATCH]))
        for owner, top, score in zip(owners[start : start + BATCH], labels, scores, strict=True):
            results[owner].append((top, score.tolist()))
    return results


def compare(theirs: list[dict], mine: list[list[tuple[list[str], list[float]]]]) -> tuple[int, float]:
    crops, worst = 0, 0.0
    for their_image, my_image in zip(theirs, mine, strict=True):
        assert len(their_image["classifications_list"]) == len(my_image), their_image["filepath"]
        for their_crop, (classes, scores) in zip(their_image["classifications_list"], my_image, strict=True):
            assert their_crop["classes"] == classes, their_image["filepath"]
            worst = max(worst, *(abs(a - b) for a, b in zip(their_crop["scores"], scores, strict=True)))
            crops += 1
    return crops, worst


def test_always_crop_top5_is_speciesnets_for_every_crop(boxes, tmp_path) -> None:
    folder = build_folder(tmp_path / "speciesnet")
    crops, worst = compare(reference(folder, boxes, tmp_path), ours(folder, boxes))
    print(f"always_crop: {crops} crops, worst score difference {worst:.2e}")
    assert crops >= 40  # the samples' ~29 objects and what the detector finds in the real photos
    assert worst <= 1e-4


def test_full_image_top5_is_speciesnets_for_every_photo(tmp_path) -> None:
    folder = build_folder(tmp_path / "speciesnet-full", kind="full_image")
    photos = {path: [] for path in _photos()}  # SpeciesNet ignores boxes for a full-image model
    theirs = reference(folder, photos, tmp_path)
    crops, worst = compare(theirs, ours(folder, {path: [None] for path in photos}))
    print(f"full_image: {crops} photos, worst score difference {worst:.2e}")
    assert crops == len(photos) and worst <= 1e-4
