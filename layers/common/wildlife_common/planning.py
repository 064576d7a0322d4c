"""Planning: list the input, skip what is done, and cut the rest into shards.

``plan_detection`` is the first state of every run; ``plan_classification`` runs between the
stages. Both write small manifests to the run folder and return references and counts only, so
the Step Functions payload stays far below its 256 KB limit whatever the size of the input.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from wildlife_common import speciesnet, storage
from wildlife_common.config import RESULT_SETTINGS, RunConfig, default_max_concurrency, parse_config
from wildlife_common.errors import ConfigError
from wildlife_common.images import is_image
from wildlife_common.incremental import ProcessedImages
from wildlife_common.layout import RunLayout, classify_shard_id, shard_id
from wildlife_common.provenance import code_version, input_id
from wildlife_common.records import (
    ClassificationManifest,
    ClassificationPlan,
    ClassificationShard,
    DetectionManifest,
    DetectionPlan,
    DetectionShard,
    ImageEntry,
    PlanCounts,
    RunRecord,
    ShardList,
    Stage,
)
from wildlife_common.run_folder import committed_classifications, committed_detections, load_run, now, read_plan

log = logging.getLogger(__name__)


def resolve_run(raw_config: Any, execution_name: str | None, default_output: str | None) -> tuple[RunConfig, RunLayout]:
    """Check the configuration and find the run folder (the same answer every time for one run)."""
    raw_config = speciesnet.with_folder_detector(raw_config)  # a SpeciesNet folder alone brings its detector
    config = parse_config(raw_config, default_run_id=execution_name, default_output=default_output)
    if not config.output:
        raise ConfigError("no output given and the pipeline has no bucket configured (PIPELINE_BUCKET)")
    if not config.run_id:
        raise ConfigError("no run_id given and no execution name to use instead")
    return config, RunLayout.for_run(config.output, config.run_id)


def _shard_reference(layout: RunLayout, stage: Stage) -> ShardList:
    """Where the Map's ItemReader finds shards.json (bucket and key; a path for local runs)."""
    uri = layout.shards_json(stage)
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        return {"bucket": bucket, "key": key}
    return {"bucket": "", "key": uri}


def _check_models(config: RunConfig) -> None:
    """Fail in the first second, not after the first GPU job starts, when weights are missing."""
    for key in ("detector", "classifier", "classifier_labels"):
        uri = getattr(config, key)
        if uri is None or (key != "detector" and not config.classify):
            continue
        try:
            found = storage.exists(uri)
        except storage.AccessDenied:
            # The planner's role may not read the model bucket; the GPU job checks again and fails clearly.
            log.warning("cannot check %s %s from here (access denied); the GPU job will", key, uri)
            continue
        if not found:
            raise ConfigError(f"{key} not found: {uri}")


# Folders that hold no photos of the user's: thumbnails and indexes of file managers and NAS boxes
# (Synology's @eaDir, QNAP's @Recycle), trash folders, and macOS archive leftovers. Any folder whose
# name starts with "." is hidden too (.thumbnails, .Trash-1000). include_hidden reads them all.
SYSTEM_FOLDERS = frozenset({"$RECYCLE.BIN", "System Volume Information", "__MACOSX", "lost+found"})


def is_hidden(relative_path: str) -> bool:
    """Whether a path below the input lies in a hidden or system folder (or is a hidden file)."""
    return any(part.startswith((".", "@")) or part in SYSTEM_FOLDERS for part in relative_path.split("/"))


def _images(config: RunConfig, processed: ProcessedImages | None, counts: PlanCounts) -> Iterator[ImageEntry]:
    """The input's images as manifest entries, skipping files that are not images or were done before,
    hidden and system folders (unless include_hidden), and the run's own output folder when it lies
    inside the input (a local run's crops would otherwise come back as photos)."""
    root, files = storage.list_input(config.input)
    # One image given as the input is taken as given, hidden or not.
    skip_hidden = not config.include_hidden and root == storage.as_folder(config.input)
    own = storage.as_folder(config.output) if config.output else ""
    # What the pipeline itself writes, when that lies inside the input: the output folder, or its run
    # and index folders when the output is the input folder itself.
    ours = [own] if own != root and own.startswith(root) else [root + "runs/", root + "index/"] if own == root else []
    for info in files:
        counts["listed"] += 1
        relative = storage.relative(info.uri, root)
        if any(info.uri.startswith(prefix) for prefix in ours) or (skip_hidden and is_hidden(relative)):
            counts["hidden"] = counts.get("hidden", 0) + 1
            continue
        if not is_image(info.uri):
            counts["not_images"] += 1
            continue
        if processed is not None and processed.contains(info.uri, info.etag):
            counts["skipped"] += 1
            continue
        yield {"uri": info.uri, "image": relative, "size": info.size, "etag": info.etag}


def _write_shards(config: RunConfig, layout: RunLayout, images: Iterator[ImageEntry]) -> list[DetectionShard]:
    """Cut the image stream into shards of ``shard_size``, writing each manifest as it fills."""
    refs: list[DetectionShard] = []
    batch: list[ImageEntry] = []

    def flush() -> None:
        sid = shard_id(len(refs))
        manifest: DetectionManifest = {
            "run_id": config.run_id or "",
            "stage": Stage.DETECTION,
            "shard": sid,
            "input": config.input,
            "images": batch,
        }
        storage.write_json(layout.shard_manifest(Stage.DETECTION, sid), manifest, intermediate=True)
        refs.append({"shard": sid, "images": len(batch)})

    for image in images:
        batch.append(image)
        if len(batch) == config.shard_size:
            flush()
            batch = []
    if batch:
        flush()
    return refs


def _check_resume(stored: RunRecord, config: RunConfig) -> None:
    before = stored.get("config", {})
    for key in RESULT_SETTINGS:
        if key in before and before[key] != getattr(config, key):
            raise ConfigError(
                f"run {config.run_id} already exists with {key}={before[key]!r}; "
                f"resume it with the same setting or start a new run_id"
            )


def plan_detection(raw_config: Any, execution_name: str | None, default_output: str | None) -> DetectionPlan:
    """Plan stage 1 of a run, or resume one that was planned before.

    A new run lists the input (lazily, page by page), keeps image files, skips images processed by
    earlier runs when ``incremental`` is set, and writes one manifest per shard, ``plan.json`` (all
    shards) and ``shards.json`` (the shards this execution processes). A run that exists already
    keeps its shards and queues only those without a commit marker.

    Returns:
        The references and counts the state machine routes on (see ``statemachine/``).
    """
    config, layout = resolve_run(raw_config, execution_name, default_output)
    if config.skip_if_running and (other := _overlapping_run(execution_name)) is not None:
        log.info("run %s skipped: run %s, also started with skip_if_running, is still running", config.run_id, other)
        return _nothing_planned(config, layout, other)
    _check_models(config)
    stored: RunRecord | None = storage.read_json(layout.run_json) if storage.exists(layout.run_json) else None

    if stored and stored.get("planned"):
        _check_resume(stored, config)
        plan = read_plan(layout)
        done = committed_detections(layout)
        pending = [ref for ref in plan if ref["shard"] not in done]
        counts = stored.get("counts") or PlanCounts(listed=0, not_images=0, skipped=0)
        record: RunRecord = {**stored, "config": config.to_dict(), "resumed": [*stored.get("resumed", []), now()]}
        log.info("resuming run %s: %d of %d shards committed", config.run_id, len(done), len(plan))
    else:
        record = {
            "run_id": config.run_id or "",
            "config": config.to_dict(),
            "created": now(),
            "code_version": code_version(),
            "planned": False,
        }
        storage.write_json(layout.run_json, record)
        processed = None
        if config.incremental:
            processed = ProcessedImages.load(config.output or "", input_id(storage.as_folder(config.input)))
            log.info("incremental run: %d images processed by earlier runs", len(processed))
        counts = PlanCounts(listed=0, not_images=0, skipped=0)
        plan = _write_shards(config, layout, _images(config, processed, counts))
        counts["images"] = sum(ref["images"] for ref in plan)
        storage.write_json(layout.plan_json, plan)
        pending = plan
        record = {**record, "planned": True, "counts": counts, "shards": len(plan)}

    storage.write_json(layout.shards_json(Stage.DETECTION), pending, intermediate=True)
    storage.write_json(layout.run_json, record)
    return _detection_plan(config, layout, pending, counts, _shard_reference(layout, Stage.DETECTION))


def _detection_plan(
    config: RunConfig, layout: RunLayout, pending: list[DetectionShard], counts: PlanCounts, shards: ShardList
) -> DetectionPlan:
    """PlanDetection's result: the references and counts the state machine routes on."""
    return {
        "run_id": config.run_id or "",
        "run_uri": layout.run_uri,
        "shards": shards,
        "shard_count": len(pending),
        "images": counts.get("images", 0),
        "pending_images": sum(ref["images"] for ref in pending),
        "skipped": counts.get("skipped", 0),
        "detection_only": not config.classify,
        "max_concurrency": config.max_concurrency or default_max_concurrency(),
        "tolerated_failure_percentage": config.tolerated_failure_percentage,
        "materialize_on_batch": counts.get("images", 0) > config.materialize_batch_threshold,
    }


def _overlapping_run(execution_name: str | None) -> str | None:
    """The name of another RUNNING execution of this state machine started with skip_if_running.

    The state machine is named by STATE_MACHINE_ARN (set by the template); without it (a local run)
    there is nothing to ask and no run is skipped.
    """
    machine = os.environ.get("STATE_MACHINE_ARN")
    if not machine:
        return None
    import boto3  # here: only deployed runs with skip_if_running ask Step Functions

    sfn = boto3.client("stepfunctions")
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING"):
        for execution in page["executions"]:
            if execution["name"] == execution_name:
                continue
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            try:
                other = json.loads(described.get("input") or "{}")
            except ValueError:
                continue
            if isinstance(other, dict) and other.get("skip_if_running") is True:
                return str(execution["name"])
    return None


def _nothing_planned(config: RunConfig, layout: RunLayout, overlapping_run: str) -> DetectionPlan:
    """PlanDetection's result for a run that is skipped: no shards, nothing written."""
    nothing = _detection_plan(
        config, layout, [], PlanCounts(listed=0, not_images=0, skipped=0), ShardList(bucket="", key="")
    )
    return {**nothing, "overlapping_run": overlapping_run}


def plan_classification(run: DetectionPlan) -> ClassificationPlan:
    """Plan stage 2: group committed detection shards that have crops into classification shards.

    Whole detection shards are grouped in order until a group holds ``classify_shard_crops`` crops,
    so materialize can join species onto one detection shard at a time. Detection shards already
    covered by a committed classification shard are left out; the rest are numbered after the
    highest committed id, so a retried plan writes the same files.
    """
    config, layout, _ = load_run(run["run_uri"])
    stage1 = committed_detections(layout)
    stage2 = committed_classifications(layout) if config.classify else {}
    covered = {s for marker in stage2.values() for s in marker.get("stage1_shards", [])}
    next_index = 1 + max((int(sid.removeprefix("c")) for sid in stage2), default=-1)

    groups: list[tuple[list[str], int]] = []
    current: list[str] = []
    crops = 0
    for sid in sorted(stage1) if config.classify else []:
        shard_crops = int(stage1[sid].get("crops", 0))
        if sid in covered or shard_crops == 0:
            continue
        if current and crops + shard_crops > config.classify_shard_crops:
            groups.append((current, crops))
            current, crops = [], 0
        current.append(sid)
        crops += shard_crops
    if current:
        groups.append((current, crops))

    refs: list[ClassificationShard] = []
    for offset, (members, count) in enumerate(groups):
        cid = classify_shard_id(next_index + offset)
        manifest: ClassificationManifest = {
            "run_id": config.run_id or "",
            "stage": Stage.CLASSIFICATION,
            "shard": cid,
            "stage1_shards": members,
            "crops": count,
        }
        storage.write_json(layout.shard_manifest(Stage.CLASSIFICATION, cid), manifest, intermediate=True)
        refs.append({"shard": cid, "crops": count})
    storage.write_json(layout.shards_json(Stage.CLASSIFICATION), refs, intermediate=True)
    return {
        "shards": _shard_reference(layout, Stage.CLASSIFICATION),
        "shard_count": len(refs),
        "crops": sum(r["crops"] for r in refs),
    }
