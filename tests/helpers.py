"""Test data: shard results written exactly as the GPU task writes them (the contract in layout.py).

These build the inputs of materialize and plan_classification for unit tests; the GPU task's own
tests check that it writes the same shapes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from wildlife_common import storage
from wildlife_common.layout import RunLayout
from wildlife_common.schema import CLASSIFICATION_SCHEMA, DETECTION_SCHEMA


def put_images(s3: Any, bucket: str, keys: list[str]) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"jpeg bytes " + key.encode())


def detection_rows(run_id: str, shard: str, manifest: dict[str, Any], outcomes: dict[str, Any]) -> list[dict]:
    """Rows for every image of a shard manifest.

    ``outcomes`` maps an image's relative path to a failure string or a list of detections
    ``(category, conf, bbox, crop)``; images not named have no detection.
    """
    rows = []
    for image in manifest["images"]:
        base = {
            "image": image["image"],
            "image_uri": image["uri"],
            "image_etag": image["etag"],
            "run_id": run_id,
            "shard": shard,
            "detector": "detector.pt@sha256:0123456789ab",
        }
        outcome = outcomes.get(image["image"], [])
        if isinstance(outcome, str):
            rows.append({**base, "failure": outcome})
            continue
        base.update(width=1600, height=1200)
        if not outcome:
            rows.append(base)
        for index, (category, conf, bbox, crop) in enumerate(outcome):
            rows.append(
                {
                    **base,
                    "detection": index,
                    "category": category,
                    "conf": conf,
                    "bbox_x": bbox[0],
                    "bbox_y": bbox[1],
                    "bbox_w": bbox[2],
                    "bbox_h": bbox[3],
                    "crop_uri": crop,
                }
            )
    return rows


def commit_detection_shard(layout: RunLayout, shard: str, outcomes: dict[str, Any], *, seconds: float = 60.0) -> None:
    """Write a stage-1 shard's results and, last, its commit marker."""
    manifest = storage.read_json(layout.shard_manifest("stage1", shard))
    rows = detection_rows(manifest["run_id"], shard, manifest, outcomes)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=DETECTION_SCHEMA), sink)
    storage.write_bytes(layout.results("stage1", shard), sink.getvalue())
    crops = sum(1 for r in rows if r.get("crop_uri"))
    storage.write_json(
        layout.done("stage1", shard),
        {
            "shard": shard,
            "images": len(manifest["images"]),
            "rows": len(rows),
            "failed_images": sum(1 for r in rows if r.get("failure")),
            "crops": crops,
            "attempt": 1,
            "started": "2026-11-28T10:00:00+00:00",
            "finished": "2026-11-28T10:01:00+00:00",
            "seconds": seconds,
            "instance_type": "g4dn.xlarge",
            "detector": "detector.pt@sha256:0123456789ab",
        },
    )


def commit_classification_shard(
    layout: RunLayout,
    cshard: str,
    stage1_shards: list[str],
    species: dict[tuple[str, str, int], list[tuple[str, float]]],
) -> None:
    """Write a stage-2 shard: ``species`` maps (stage-1 shard, image, detection) to its top-5."""
    rows = []
    for (shard, image, detection), top in species.items():
        rows.append(
            {
                "shard": shard,
                "image": image,
                "detection": detection,
                "crop_uri": f"crop-{image}-{detection}.jpg",
                "species": top[0][0],
                "species_conf": top[0][1],
                "top5_species": [name for name, _ in top],
                "top5_conf": [conf for _, conf in top],
                "classifier": "classifier.pth@sha256:abcdef012345",
            }
        )
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=CLASSIFICATION_SCHEMA), sink)
    storage.write_bytes(layout.results("stage2", cshard), sink.getvalue())
    storage.write_json(
        layout.done("stage2", cshard),
        {
            "shard": cshard,
            "stage1_shards": stage1_shards,
            "crops": len(rows),
            "seconds": 10.0,
            "started": "2026-11-28T10:02:00+00:00",
            "finished": "2026-11-28T10:02:10+00:00",
            "classifier": "classifier.pth@sha256:abcdef012345",
        },
    )


def plan_through_handler(handler: Callable[[Any, Any], Any], event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Call the PlanDetection Lambda for a run's three planning steps, as the state machine does:
    the plan, ListPart for every key range of each listing round, then AssemblePlan."""
    plan = handler(event, context)
    while "listing" in plan:
        layout = RunLayout(plan["run_uri"])
        for part in storage.read_json(layout.listing_json(plan["listing"]["round"])):
            handler({"step": "list_part", "run_uri": plan["run_uri"], "part": part}, context)
        plan = handler({"step": "assemble", "run": plan}, context)
    return plan
