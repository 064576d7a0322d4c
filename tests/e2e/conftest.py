"""End-to-end tests: the real state machine, handlers, GPU task and demo models, through the local engine.

Each test runs whole executions of ``statemachine/pipeline.asl.json`` in moto's interpreter
(``wildlife.engine.local.LocalEngine``) on the bundled sample scenes, whose ground truth is known,
and asserts on what a user gets: the Parquet table, the MegaDetector JSON, the summary and the
execution's history. Retry waits are capped at 1 s (``short_waits``); everything else is as deployed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from wildlife_common import storage

from demo.evaluate import iou
from wildlife.engine.local import LocalEngine

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "demo" / "samples"
MODELS = ROOT / "demo" / "models"
GROUND_TRUTH: dict[str, Any] = json.loads((SAMPLES / "ground_truth.json").read_text())

SHOW_THRESHOLD = 0.2
"""Detections from this confidence count as found (the pipeline's typical display threshold)."""
MATCH_IOU = 0.5
"""A detection must overlap its ground-truth box this much to find it (the usual IoU 0.5 criterion)."""
SHARD_SIZE = 7
"""7 images per shard: the 21 samples make three shards, so every Map runs several items."""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[LocalEngine]:
    with LocalEngine(short_waits=True, log_dir=tmp_path / "logs") as local:
        yield local


def demo_config(input_uri: str | Path, output: Path, run_id: str = "e2e", **overrides: Any) -> dict[str, Any]:
    """A run config for the demo models, as ``wildlife run`` builds it with no model options."""
    sidecar = json.loads((MODELS / "classifier.json").read_text())
    return {
        "input": str(input_uri),
        "output": str(output),
        "run_id": run_id,
        "detector": str(MODELS / "detector.pt"),
        # The demo detector was trained at 320 px.
        "image_size": 320,
        "classifier": str(MODELS / "classifier.pth"),
        "classifier_arch": sidecar["arch"],
        "classifier_labels": str(MODELS / sidecar["labels"]),
        "shard_size": SHARD_SIZE,
        **overrides,
    }


def final(run_uri: str) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The rows of detections.parquet, megadetector.json and summary.json of a run."""
    table = pq.read_table(io.BytesIO(storage.read_bytes(storage.join(run_uri, "final", "detections.parquet"))))
    megadetector = storage.read_json(storage.join(run_uri, "final", "megadetector.json"))
    summary = storage.read_json(storage.join(run_uri, "final", "summary.json"))
    return table.to_pylist(), megadetector, summary


def agreement(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Recall, precision and species accuracy of a run's table against the sample scenes' ground truth.

    A ground-truth object is found by the best-overlapping detection of its category with conf >=
    SHOW_THRESHOLD and IoU >= MATCH_IOU; species accuracy is over found animals.
    """
    objects = found = animals = right_species = detections = matched = 0
    for image, truth in GROUND_TRUTH.items():
        shown = [r for r in rows if r["image"] == image and r["conf"] is not None and r["conf"] >= SHOW_THRESHOLD]
        detections += len(shown)
        used: set[int] = set()
        for obj in truth["objects"]:
            objects += 1
            overlaps = [
                (iou(obj["bbox"], (r["bbox_x"], r["bbox_y"], r["bbox_w"], r["bbox_h"])), i)
                for i, r in enumerate(shown)
                if r["category"] == obj["category"] and i not in used
            ]
            best, index = max(overlaps, default=(0.0, -1))
            if best < MATCH_IOU:
                continue
            found += 1
            used.add(index)
            if obj["category"] == "animal":
                animals += 1
                right_species += shown[index]["species"] == obj["species"]
        matched += len(used)
    return {
        "recall": found / objects,
        "precision": matched / detections if detections else 0.0,
        "species_accuracy": right_species / animals if animals else 0.0,
    }
