"""MegaDetector batch output format 1.6, the file Timelapse and the MegaDetector tools read.

Facts of the format (as MegaDetector's own validate_batch_results checks them):
``detection_categories`` are ``{"1": "animal", "2": "person", "3": "vehicle"}``; every image has
``file`` (relative path) and ``detections`` (``[]`` when nothing was found, ``null`` with a
``failure`` string when the image failed); a detection has ``category`` (string id), ``conf`` and
``bbox`` ``[x_min, y_min, width, height]`` normalized from the top left, and optionally
``classifications`` ``[[class_id, conf], ...]`` sorted by confidence.

The writer streams: it writes the header, then one image at a time, so a run of millions of
images never holds the whole document in memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import IO, Any

FORMAT_VERSION = "1.6"
DETECTION_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
CATEGORY_IDS = {name: cid for cid, name in DETECTION_CATEGORIES.items()}

# MegaDetector's own precision: 3 decimals for confidences, 4 for box coordinates (a 4th decimal
# is 0.4 px on a 4,000 px image), cut off rather than rounded as its detector does by default
# (``truncate_float``), so the same detection is written as the same numbers.
CONF_DECIMALS = 3
BBOX_DECIMALS = 4


def detection_entry(
    category: str,
    conf: float,
    bbox: Sequence[float],
    classifications: Sequence[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """One detection in the format; ``classifications`` as (class id, conf), any order."""
    entry: dict[str, Any] = {
        "category": CATEGORY_IDS[category],
        "conf": truncate(conf, CONF_DECIMALS),
        "bbox": written_bbox(bbox),
    }
    if classifications:
        ranked = sorted(classifications, key=lambda pair: -pair[1])
        entry["classifications"] = [[cid, round(float(c), CONF_DECIMALS)] for cid, c in ranked]
    return entry


def truncate(value: float, decimals: int) -> float:
    """``value`` cut to ``decimals`` decimals, as MegaDetector's ``ct_utils.truncate_float``."""
    scale = 10**decimals
    return math.floor(float(value) * scale) / scale


def written_bbox(bbox: Sequence[float]) -> list[float]:
    """A box as megadetector.json holds it (4 decimals, cut): what MegaDetector's tools and SpeciesNet read."""
    return [truncate(v, BBOX_DECIMALS) for v in bbox]


class MegaDetectorWriter:
    """Writes a MegaDetector 1.6 file to an open text stream, one image at a time.

    Use as a context manager; call :meth:`add_image` for every input image exactly once.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        detector: str,
        typical_detection_threshold: float,
        completion_time: str,
        classifier: str | None = None,
        classification_categories: Sequence[str] | None = None,
        classification_descriptions: dict[str, str] | None = None,
        extra_info: dict[str, Any] | None = None,
    ) -> None:
        self._stream = stream
        self._first = True
        self.images = 0
        info: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "detector": detector,
            "detection_completion_time": completion_time,
            "detector_metadata": {
                "typical_detection_threshold": typical_detection_threshold,
                # MegaDetector's guidance: about half the typical threshold when missing an animal costs more.
                "conservative_detection_threshold": round(typical_detection_threshold / 2, 3),
            },
        }
        if classifier:
            info["classifier"] = classifier
            info["classification_completion_time"] = completion_time
        if extra_info:
            info.update(extra_info)
        header: dict[str, Any] = {"info": info, "detection_categories": DETECTION_CATEGORIES}
        if classification_categories:
            header["classification_categories"] = {str(i): name for i, name in enumerate(classification_categories)}
        if classification_descriptions:
            # SpeciesNet's full taxonomy label per category id, as MegaDetector's run_md_and_speciesnet writes it.
            header["classification_category_descriptions"] = classification_descriptions
        text = json.dumps(header, indent=1)
        # Open the document and the images array; the closing brackets come in close().
        stream.write(text[:-2] + ',\n "images": [')

    def add_image(self, file: str, detections: list[dict[str, Any]] | None, failure: str | None = None) -> None:
        """Add one image: its detections (``[]`` when empty), or ``None`` with a failure string."""
        if failure is not None:
            entry: dict[str, Any] = {"file": file, "failure": failure, "detections": None}
        else:
            ranked = sorted(detections or [], key=lambda d: -d["conf"])
            entry = {"file": file, "detections": ranked}
        self._stream.write(("\n  " if self._first else ",\n  ") + json.dumps(entry, separators=(",", ":")))
        self._first = False
        self.images += 1

    def close(self) -> None:
        """Close the images array and the document."""
        self._stream.write("\n ]\n}\n")

    def __enter__(self) -> MegaDetectorWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
