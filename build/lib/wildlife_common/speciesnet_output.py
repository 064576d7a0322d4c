"""SpeciesNet's predictions file (``final/speciesnet.json``), for Wildlife Insights and SpeciesNet's tools.

The format is SpeciesNet 5's (``info.format_version`` 20261015): one entry per image, in run order,
with ``filepath``, ``failures`` when the image could not be read, the ``country``/``admin1_region``
the ensemble used, ``detections`` and ``model_version``. Each detection has ``category`` ("1"-"3"),
``label`` (animal, human, vehicle), ``conf`` and ``bbox`` (the box megadetector.json writes, the one
the crop was cut at); a classified one (confidence >= 0.1) also ``raw_classifications`` (the
classifier's top 2 labels and scores) and ``processed_classification`` (the ensemble's ``class``,
``score`` and ``source``). Floats are rounded to 4 decimals, as SpeciesNet writes them. MegaDetector's
``speciesnet_to_md`` converter reads it; SpeciesNet itself can take it up as a past run.

Written as a stream, one image at a time, like the MegaDetector file.
"""

from __future__ import annotations

import json
from typing import IO, Any

from wildlife_common.megadetector import CATEGORY_IDS, written_bbox
from wildlife_common.speciesnet import DETECTION_LABELS

FORMAT_VERSION = "20261015"
"""SpeciesNet 5.0's predictions format (its constants.FORMAT_VERSION)."""
RAW_CLASSES = 2
"""Classes of the classifier's own answer kept per detection: SpeciesNet's default (its ensemble used 5)."""
DECIMALS = 4
"""SpeciesNet rounds every float it writes to 4 decimals."""


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


class SpeciesNetWriter:
    """Writes a SpeciesNet predictions file to an open text stream; a context manager, like MegaDetectorWriter."""

    def __init__(
        self,
        stream: IO[str],
        *,
        model_version: str,
        country: str | None,
        admin1_region: str | None,
        whole_images: bool = False,
    ) -> None:
        self._stream = stream
        self._whole_images = whole_images
        self._first = True
        self._model_version = model_version
        self._place = {key: value for key, value in (("country", country), ("admin1_region", admin1_region)) if value}
        stream.write(json.dumps({"info": {"format_version": FORMAT_VERSION}})[:-1] + ', "predictions": [')

    def add_image(self, filepath: str, rows: list[dict[str, Any]], failed: bool) -> None:
        """One image: its table rows (detections, or one empty row), or ``failed`` when it could not be read."""
        entry: dict[str, Any] = {"filepath": filepath}
        if failed:
            entry["failures"] = ["CLASSIFIER", "DETECTOR"]
        entry.update(self._place)
        if not failed:
            detections = [row for row in rows if row["detection"] is not None]
            if self._whole_images:
                # SpeciesNet's whole-image pseudo-detection carries the photo's classification, first;
                # the detector's detections follow, unclassified.
                entry["detections"] = [_whole_image(rows[0])] if rows[0].get("species_label") else []
                entry["detections"] += [_detection(row, classified=False) for row in detections]
            else:
                entry["detections"] = [_detection(row) for row in detections]
        entry["model_version"] = self._model_version
        self._stream.write(("\n" if self._first else ",\n") + json.dumps(entry, ensure_ascii=False))
        self._first = False

    def close(self) -> None:
        self._stream.write("\n]}\n")

    def __enter__(self) -> SpeciesNetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _whole_image(row: dict[str, Any]) -> dict[str, Any]:
    """SpeciesNet's pseudo-detection for a whole-image classification (category "0")."""
    pseudo: dict[str, Any] = {"category": "0", "label": "whole_image_classification", "conf": 1.0}
    pseudo["bbox"] = [0.0, 0.0, 1.0, 1.0]
    return {**pseudo, **_classifications(row)}


def _detection(row: dict[str, Any], classified: bool = True) -> dict[str, Any]:
    detection: dict[str, Any] = {
        "category": CATEGORY_IDS[row["category"]],
        "label": DETECTION_LABELS[row["category"]],
        "conf": _round(row["conf"]),
        "bbox": written_bbox([row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]]),
    }
    return {**detection, **_classifications(row)} if classified else detection


def _classifications(row: dict[str, Any]) -> dict[str, Any]:
    """``raw_classifications`` and ``processed_classification`` of a classified row, else nothing."""
    detection: dict[str, Any] = {}
    if row.get("top5_labels") and row.get("species_label"):
        detection["raw_classifications"] = {
            "classes": list(row["top5_labels"][:RAW_CLASSES]),
            "scores": [_round(s) for s in row["top5_conf"][:RAW_CLASSES]],
        }
        detection["processed_classification"] = {
            "class": row["species_label"],
            "score": _round(row["species_conf"]),
            "source": row["prediction_source"],
        }
    return detection
