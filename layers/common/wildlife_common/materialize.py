"""Materialize: merge the committed shards of a run into the tables users read.

Writes ``final/detections.parquet`` (one row per detection, empty image or failed image),
``final/megadetector.json`` (format 1.6, for Timelapse) and ``final/summary.json`` (counts, failed
shards, timings, cost). Memory stays bounded: one detection shard and one classification shard
are in memory at a time, and both outputs are streamed to files before they are stored.

Every input image ends in the table exactly once. Images of a shard that never committed (its
job failed beyond its retries) get a failure row that names the shard, and the shard is listed in
the summary; re-running the run id processes it again.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wildlife_common import costs, inventory, speciesnet, storage
from wildlife_common.config import RunConfig
from wildlife_common.errors import RunIntegrityError
from wildlife_common.incremental import IndexWriter
from wildlife_common.layout import RunLayout
from wildlife_common.megadetector import MegaDetectorWriter, detection_entry
from wildlife_common.provenance import code_version, input_id
from wildlife_common.records import (
    ClassificationDone,
    DetectionDone,
    DetectionManifest,
    FailedShard,
    ListingRecord,
    MaterializeResult,
    PlanCounts,
    ShardDone,
    Stage,
    StageTiming,
    Summary,
)
from wildlife_common.run_folder import (
    committed_classifications,
    committed_detections,
    input_root,
    load_run,
    now,
    read_plan,
)
from wildlife_common.schema import DETECTION_SCHEMA, SPECIES_COLUMNS
from wildlife_common.speciesnet_output import SpeciesNetWriter

log = logging.getLogger(__name__)

# Failed shards named in Materialize's result (the execution's output, capped at 256 KiB by Step
# Functions): 50 names take about 1 KB, enough to act on at once; summary.json lists every one.
RESULT_SHARDS = 50


@dataclass
class Tally:
    """Counts gathered while the shards stream past."""

    images: int = 0
    with_detections: int = 0
    empty: int = 0
    failed: int = 0
    rows: int = 0
    detections: int = 0
    above_threshold: Counter[str] = field(default_factory=Counter)
    images_above_threshold: int = 0
    species: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


def _read_parquet(uri: str) -> pa.Table:
    return pq.read_table(io.BytesIO(storage.read_bytes(uri)))


def _failed_shard_rows(config: RunConfig, layout: RunLayout, shard: str, reason: str) -> pa.Table:
    """One failure row per image of a shard that never committed, so no image goes missing."""
    manifest: DetectionManifest = storage.read_json(layout.shard_manifest(Stage.DETECTION, shard))
    images = manifest["images"]
    n = len(images)
    return pa.table(
        {
            "image": [i["image"] for i in images],
            "image_uri": [i["uri"] for i in images],
            "image_etag": [i.get("etag") for i in images],
            "failure": [reason] * n,
            "run_id": [config.run_id] * n,
            "shard": [shard] * n,
        }
    )


def _conform(table: pa.Table) -> pa.Table:
    """Put a shard's table into the final schema: missing columns become nulls, order fixed."""
    columns = []
    for schema_field in DETECTION_SCHEMA:
        if schema_field.name in table.column_names:
            columns.append(table.column(schema_field.name).cast(schema_field.type))
        else:
            columns.append(pa.nulls(table.num_rows, schema_field.type))
    return pa.Table.from_arrays(columns, schema=DETECTION_SCHEMA)


class SpeciesSource:
    """Species of the crops of a detection shard, from the committed classification shard that covers it."""

    def __init__(self, layout: RunLayout, stage2: dict[str, ClassificationDone]) -> None:
        self._layout = layout
        self._owner = {s: cid for cid, marker in stage2.items() for s in marker.get("stage1_shards", [])}
        self._loaded: tuple[str, pa.Table] | None = None

    def covers(self, shard: str) -> bool:
        return shard in self._owner

    def for_shard(self, shard: str) -> dict[tuple[str, int], dict[str, Any]]:
        """(image, detection) → species columns, for one detection shard."""
        cid = self._owner[shard]
        if self._loaded is None or self._loaded[0] != cid:
            # One classification shard in memory at a time: it covers consecutive detection shards.
            self._loaded = (cid, _read_parquet(self._layout.results(Stage.CLASSIFICATION, cid)))
        table = self._loaded[1]
        mask = pc.equal(table.column("shard"), shard)
        rows = table.filter(mask).to_pylist()
        return {(r["image"], r["detection"]): r for r in rows}


def _with_species(table: pa.Table, species: dict[tuple[str, int], dict[str, Any]]) -> pa.Table:
    images = table.column("image").to_pylist()
    detections = table.column("detection").to_pylist()
    # A full_image SpeciesNet folder classifies the photo: its answer goes on every row of the photo.
    found = [
        (species.get((img, det)) if det is not None else None) or species.get((img, speciesnet.WHOLE_IMAGE))
        for img, det in zip(images, detections, strict=True)
    ]
    for name in SPECIES_COLUMNS:
        index = table.schema.get_field_index(name)
        values = pa.array([row.get(name) if row else None for row in found], type=DETECTION_SCHEMA.field(name).type)
        table = table.set_column(index, name, values)
    return table


def _image_groups(table: pa.Table) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by image, in first-appearance order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        groups.setdefault(row["image"], []).append(row)
    yield from groups.items()


def _md_detections(rows: list[dict[str, Any]], label_ids: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row["detection"] is None:
            continue
        classes = None
        if row.get("species_label") and row["species"] in label_ids:
            # SpeciesNet: the ensemble's answer, one class, as run_md_and_speciesnet writes it.
            classes = [(label_ids[row["species"]], row["species_conf"])]
        elif row["top5_species"]:
            classes = [
                (label_ids[name], conf)
                for name, conf in zip(row["top5_species"], row["top5_conf"], strict=True)
                if name in label_ids
            ]
        bbox = (row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"])
        out.append(detection_entry(row["category"], row["conf"], bbox, classes))
    return out


def _tally_image(tally: Tally, rows: list[dict[str, Any]], threshold: float) -> None:
    tally.images += 1
    first = rows[0]
    if first["failure"] is not None:
        tally.failed += 1
        tally.failures[first["failure"].split(":")[0]] += 1
        return
    found = [r for r in rows if r["detection"] is not None]
    if not found:
        tally.empty += 1
        return
    tally.with_detections += 1
    tally.detections += len(found)
    above = [r for r in found if r["conf"] >= threshold]
    if above:
        tally.images_above_threshold += 1
    for row in above:
        tally.above_threshold[row["category"]] += 1
        if row["species"]:
            tally.species[row["species"]] += 1


def _stage_timing(markers: Sequence[ShardDone], items: int) -> StageTiming:
    """Wall time from the first job's start to the last job's end, and job-seconds (what is paid)."""
    if not markers:
        return {"shards": 0, "job_seconds": 0.0, "wall_seconds": 0.0, "items_per_job_second": None}
    starts = [m["started"] for m in markers if m.get("started")]
    ends = [m["finished"] for m in markers if m.get("finished")]
    job_seconds = sum(float(m.get("seconds") or 0.0) for m in markers)
    wall = 0.0
    if starts and ends:
        from datetime import datetime

        wall = (datetime.fromisoformat(max(ends)) - datetime.fromisoformat(min(starts))).total_seconds()
    return {
        "shards": len(markers),
        "job_seconds": round(job_seconds, 3),
        "wall_seconds": round(wall, 3),
        "items_per_job_second": round(items / job_seconds, 2) if job_seconds else None,
    }


def materialize(run_uri: str) -> MaterializeResult:
    """Merge a run's committed shards into its final outputs.

    Returns:
        A small result for the state machine: run id, URIs, counts and failed shards.

    Raises:
        RunIntegrityError: the table does not account for every input image exactly once
            (the summary is written first, so the numbers can be inspected).
    """
    clock_start = time.perf_counter()
    config, layout, record = load_run(run_uri)
    plan = read_plan(layout)
    stage1 = committed_detections(layout)
    stage2 = committed_classifications(layout) if config.classify else {}
    species = SpeciesSource(layout, stage2)
    labels: list[str] = []
    if stage2:
        labels = storage.read_json(layout.labels_json)
    label_ids = {name: str(i) for i, name in enumerate(labels)}
    descriptions = None
    if labels and all(speciesnet.is_label(label) for label in labels):
        # SpeciesNet: categories by common name (what the table's species columns hold), each described
        # by its full label.
        names, descriptions, label_ids = speciesnet.classification_categories(labels)
        labels = [names[str(i)] for i in range(len(names))]
    speciesnet_version = next((m["speciesnet_version"] for m in stage2.values() if m.get("speciesnet_version")), None)
    whole_images = any(m.get("speciesnet_type") == "full_image" for m in stage2.values())
    detector: str = next((m["detector"] for m in stage1.values() if m.get("detector")), config.detector)
    classifier = next((m.get("classifier") for m in stage2.values() if m.get("classifier")), None)

    tally = Tally()
    failed_shards: list[FailedShard] = []
    unclassified: list[str] = []
    mismatched: list[str] = []
    planned_images = 0
    with tempfile.TemporaryDirectory(prefix="materialize-") as work:
        parquet_path = Path(work, "detections.parquet")
        md_path = Path(work, "megadetector.json")
        sn_path = Path(work, "speciesnet.json")
        index = IndexWriter(config.output or "", input_id(input_root(record, config)), config.run_id or "", work)
        writer = pq.ParquetWriter(parquet_path, DETECTION_SCHEMA, compression="zstd")
        with (
            md_path.open("w") as md_stream,
            sn_path.open("w", encoding="utf-8") as sn_stream,
            (
                SpeciesNetWriter(
                    sn_stream,
                    model_version=speciesnet_version,
                    country=config.country,
                    admin1_region=config.admin1_region,
                    whole_images=whole_images,
                )
                if speciesnet_version
                else contextlib.nullcontext()
            ) as sn,
            MegaDetectorWriter(
                md_stream,
                detector=detector,
                typical_detection_threshold=config.typical_detection_threshold,
                completion_time=now(),
                classifier=classifier,
                classification_categories=labels or None,
                classification_descriptions=descriptions,
                extra_info={"run_id": config.run_id, "pipeline_version": code_version()},
            ) as md,
        ):
            for ref in plan:
                shard = ref["shard"]
                planned_images += ref["images"]
                # Only a shard with nothing left to do goes into the index of processed images: one
                # that failed, or whose crops no classification shard covered, must be done again
                # by the next incremental run.
                finished = shard in stage1
                if finished:
                    table = _conform(_read_parquet(layout.results(Stage.DETECTION, shard)))
                    if species.covers(shard):
                        table = _with_species(table, species.for_shard(shard))
                    elif config.classify and int(stage1[shard].get("crops", 0)) > 0:
                        unclassified.append(shard)
                        finished = False
                else:
                    reason = (
                        f"shard failed: detection shard {shard} did not finish; run the same run_id again to retry it"
                    )
                    failed_shards.append({"stage": Stage.DETECTION, "shard": shard})
                    table = _conform(_failed_shard_rows(config, layout, shard, reason))
                writer.write_table(table)
                tally.rows += table.num_rows
                before = tally.images
                ok_uris, ok_etags = [], []
                for image, rows in _image_groups(table):
                    _tally_image(tally, rows, config.typical_detection_threshold)
                    first = rows[0]
                    if first["failure"] is not None:
                        md.add_image(image, None, first["failure"])
                    else:
                        md.add_image(image, _md_detections(rows, label_ids))
                        ok_uris.append(first["image_uri"])
                        ok_etags.append(first["image_etag"])
                    if sn is not None:
                        sn.add_image(first["image_uri"], rows, failed=first["failure"] is not None)
                if finished:
                    index.add(ok_uris, ok_etags)
                if tally.images - before != ref["images"]:
                    mismatched.append(shard)
        writer.close()
        storage.upload_file(parquet_path, layout.detections_parquet)
        storage.upload_file(md_path, layout.megadetector_json)
        if speciesnet_version:
            storage.upload_file(sn_path, layout.speciesnet_json)
        balanced = (
            not mismatched and tally.images == planned_images == tally.with_detections + tally.empty + tally.failed
        )
        if balanced and tally.images:
            # Also for a run that ended with tolerated failures: its successful shards are done, and
            # the next incremental run (a nightly schedule) must not redo them.
            index.close()

    failed_shards += [FailedShard(stage=Stage.CLASSIFICATION, shard=s) for s in unclassified]
    counts = record.get("counts") or PlanCounts(listed=0, not_images=0, skipped=0)
    summary: Summary = {
        "run_id": record["run_id"],
        "input": config.input,
        "status": "succeeded" if not failed_shards and balanced else ("inconsistent" if not balanced else "partial"),
        "message": _message(config, tally, failed_shards, counts),
        "images": tally.images,
        "images_with_detections": tally.with_detections,
        "images_above_threshold": tally.images_above_threshold,
        # Detections, all below the display threshold: with the three other buckets, every image once.
        "images_below_threshold": tally.with_detections - tally.images_above_threshold,
        "empty_images": tally.empty,
        "failed_images": tally.failed,
        "image_failure_rate": round(tally.failed / tally.images, 6) if tally.images else 0.0,
        "failure_reasons": dict(tally.failures.most_common()),
        "balanced": balanced,
        "planned_images": planned_images,
        "skipped_images": counts.get("skipped", 0),
        "not_image_files": counts.get("not_images", 0),
        "hidden_files": counts.get("hidden", 0),
        "rows": tally.rows,
        "detections": tally.detections,
        "typical_detection_threshold": config.typical_detection_threshold,
        "detections_above_threshold": dict(tally.above_threshold),
        "species": dict(tally.species.most_common()),
        "shards": {
            "stage1": {"planned": len(plan), "committed": len(stage1)},
            "stage2": {"committed": len(stage2)},
            "failed": failed_shards,
            "mismatched": mismatched,
        },
        "timings": {
            Stage.DETECTION: _stage_timing(list(stage1.values()), sum(m.get("images", 0) for m in stage1.values())),
            Stage.CLASSIFICATION: _stage_timing(list(stage2.values()), sum(m.get("crops", 0) for m in stage2.values())),
        },
        "cost": _cost(
            config, stage1, stage2, tally.images, len(plan), record.get("listing"), time.perf_counter() - clock_start
        ),
        "detector": detector,
        "classifier": classifier,
        "outputs": {
            "detections": layout.detections_parquet,
            "megadetector": layout.megadetector_json,
            **({"speciesnet": layout.speciesnet_json} if speciesnet_version else {}),
            "summary": layout.summary_json,
        },
        "finished": now(),
        "code_version": code_version(),
    }
    storage.write_json(layout.summary_json, summary)
    if not balanced:
        raise RunIntegrityError(
            f"run {config.run_id}: {tally.images} images in the table, {planned_images} planned"
            + (f"; shards whose image count differs from their plan: {', '.join(mismatched)}" if mismatched else "")
        )
    return {
        "run_id": record["run_id"],
        "run_uri": layout.run_uri,
        "summary": layout.summary_json,
        "status": summary["status"],
        "images": tally.images,
        "failed_images": tally.failed,
        "detections": tally.detections,
        "failed_shard_count": len(failed_shards),
        "failed_shards": [f"{f['stage']}/{f['shard']}" for f in failed_shards[:RESULT_SHARDS]],
    }


def _cost(
    config: RunConfig,
    stage1: dict[str, DetectionDone],
    stage2: dict[str, ClassificationDone],
    images: int,
    planned_shards: int,
    listed_by: ListingRecord | None,
    seconds: float,
) -> dict[str, Any]:
    """The run's cost (``wildlife report`` recomputes the same figure from ``cost.inputs``).

    This step's own time counts as a Batch job when it runs as one (large runs), else as a Lambda
    invocation of the memory Lambda gives it (the template's MemorySize when run locally). It is
    measured up to here, so the few writes that follow are not in it.
    """
    jobs = costs.job_usage(stage1.values(), Stage.DETECTION) + costs.job_usage(stage2.values(), Stage.CLASSIFICATION)
    rounds, listers = (listed_by["rounds"], listed_by["listers"]) if listed_by else (0, 0)
    lambdas = costs.planner_usage(images, planned_shards, config.classify, listing_rounds=rounds, listers=listers)
    on_batch = bool(os.environ.get("AWS_BATCH_JOB_ID"))
    if on_batch:
        jobs.append(
            {
                "stage": "materialize",
                "shard": None,
                "instance_type": None,
                "lifecycle": None,
                "seconds": round(seconds, 3),
            }
        )
    else:
        memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or costs.MATERIALIZE_MEMORY_MB)
        lambdas.append({"function": "Materialize", "memory_mb": memory, "seconds": round(seconds, 3), "measured": True})
    transitions = costs.state_transitions(
        len(stage1),
        len(stage2),
        classify=config.classify,
        materialize_on_batch=on_batch,
        listing_rounds=rounds,
        listers=listers,
    )
    return costs.run_cost(jobs, images, lambdas=lambdas, transitions=transitions)


def _message(config: RunConfig, tally: Tally, failed: list[FailedShard], counts: PlanCounts) -> str:
    """One sentence a person reads first in the summary."""
    if not tally.images:
        where = (
            f"in the S3 Inventory report {config.input}"
            if inventory.is_inventory(config.input)
            else (f"under {config.input}")
        )
        if counts.get("skipped"):
            return f"nothing new {where}: all {counts['skipped']} images were processed by earlier runs"
        return f"no images found {where}"
    below = tally.with_detections - tally.images_above_threshold
    text = (
        f"{tally.images} images: {tally.images_above_threshold} with detections at or above "
        f"{config.typical_detection_threshold}, {below} with detections below it only, {tally.empty} empty, "
        f"{tally.failed} failed"
    )
    if failed:
        text += f"; {len(failed)} shard(s) failed: " + ", ".join(f"{f['stage']}/{f['shard']}" for f in failed[:10])
    return text
