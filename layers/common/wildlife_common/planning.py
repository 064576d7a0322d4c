"""Planning: list the input, skip what is done, and cut the rest into shards.

``plan_detection`` is the first state of every run: it records a new run and splits its input
into key ranges, which the ListInput Map lists in parallel (``listing.list_part``), and
``assemble_plan`` joins what they found into the run's plan; a resumed run skips all that.
``plan_classification`` runs between the stages. All write small manifests to the run folder and
return references and counts only, so the Step Functions payload stays far below its 256 KB
limit whatever the size of the input.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, cast

from wildlife_common import inventory, listing, speciesnet, storage
from wildlife_common.config import RunConfig, changed_results, default_max_concurrency, parse_config
from wildlife_common.errors import ConfigError
from wildlife_common.layout import RunLayout, classify_shard_id
from wildlife_common.provenance import code_version
from wildlife_common.records import (
    ClassificationManifest,
    ClassificationPlan,
    ClassificationShard,
    DetectionPlan,
    DetectionShard,
    ImageEntry,
    ListingPart,
    ListingRecord,
    PartListed,
    PlanCounts,
    RunRecord,
    ShardList,
    Stage,
)
from wildlife_common.run_folder import (
    committed_classifications,
    committed_detections,
    committed_shards,
    load_run,
    now,
    read_plan,
)

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
    return _reference(layout.shards_json(stage))


def _reference(uri: str) -> ShardList:
    """A file as an ItemReader reads it: bucket and key, or "" and the path for a local run folder."""
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


def _check_report_bucket(report: inventory.Inventory) -> None:
    """An S3 Inventory report names the bucket its photos are in, and nothing lists that bucket: the
    GPU jobs would be the first to find that the pipeline may not read it, each failing its shard.
    One listing request says it here, in the first second (storage's AccessDenied names the fix)."""
    next(iter(storage.list_files(report.root)), None)


def _check_resume(stored: RunRecord, config: RunConfig) -> None:
    before = stored.get("config", {})
    for key in changed_results(before, config)[:1]:
        raise ConfigError(
            f"run {config.run_id} already exists with {key}={before[key]!r}; "
            f"resume it with the same setting or start a new run_id"
        )


# Fewer bytes than any report row measured takes (bench/RESULTS.md: 29.5 in gzipped CSV, 42.9 in Parquet,
# with Size, LastModifiedDate and ETag): a report whose data files hold more than list_in_parallel_above
# times this many bytes has more rows than PlanDetection lists, and is split without reading any.
REPORT_BYTES_PER_ROW = 20


def plan_detection(raw_config: Any, execution_name: str | None, default_output: str | None) -> DetectionPlan:
    """Plan stage 1 of a run, or resume one that was planned before.

    A new run lists the input (lazily, page by page), keeps image files, skips images processed by
    earlier runs when ``incremental`` is set, and writes one manifest per shard, ``plan.json`` (all
    shards) and ``shards.json`` (the shards this execution processes); past ``list_in_parallel_above``
    files it returns the input's key ranges instead (``listing``), and ``assemble_plan`` writes those
    files once ListInput has listed them. A run that exists already keeps its shards and queues only
    those without a commit marker.

    Returns:
        The references and counts the state machine routes on (see ``statemachine/``).
    """
    config, layout = resolve_run(raw_config, execution_name, default_output)
    if config.skip_if_running and (other := _overlapping_run(execution_name)) is not None:
        log.info("run %s skipped: run %s, also started with skip_if_running, is still running", config.run_id, other)
        return _nothing_planned(config, layout, other)
    _check_models(config)
    stored: RunRecord | None = storage.read_json_if_exists(layout.run_json)

    if stored and stored.get("planned"):
        _check_resume(stored, config)
        plan = read_plan(layout)
        done = committed_shards(layout, Stage.DETECTION)
        pending = [ref for ref in plan if ref["shard"] not in done]
        counts = stored.get("counts") or PlanCounts(listed=0, not_images=0, skipped=0)
        record: RunRecord = {**stored, "config": config.to_dict(), "resumed": [*stored.get("resumed", []), now()]}
        log.info("resuming run %s: %d of %d shards committed", config.run_id, len(done), len(plan))
    else:
        return _plan_new_run(config, layout, stored)

    storage.write_json(layout.shards_json(Stage.DETECTION), pending, intermediate=True)
    storage.write_json(layout.run_json, record)
    return _detection_plan(config, layout, pending, counts, _shard_reference(layout, Stage.DETECTION))


def _plan_new_run(config: RunConfig, layout: RunLayout, stored: RunRecord | None) -> DetectionPlan:
    """A new run: record it and list its input here, or, past ``list_in_parallel_above`` files,
    split it into key ranges for the ListInput Map to list in parallel."""
    record: RunRecord = {
        "run_id": config.run_id or "",
        "config": config.to_dict(),
        "created": now(),
        "code_version": code_version(),
        "planned": False,
    }
    report = None
    if inventory.is_inventory(config.input):  # found once: later steps read run.json's (load_run)
        # A run whose planning did not finish (a retried PlanDetection) keeps the report it found.
        earlier = stored.get("report") if stored and not changed_results(stored.get("config", {}), config) else None
        record["report"] = earlier or inventory.resolve(config.input)
        config = replace(config, input=record["report"])
        report = inventory.read(config.input)  # once: its root, its bucket checked, its listing
        _check_report_bucket(report)
    record["input_root"] = report.root if report else inventory.input_root(config.input)
    storage.write_json(layout.run_json, record)
    if report and report.size > config.list_in_parallel_above * REPORT_BYTES_PER_ROW:
        return _split_listing(config, layout, report)  # more rows than PlanDetection lists: not read here
    counts = PlanCounts(listed=0, not_images=0, skipped=0)
    entries: list[ImageEntry] = []
    # Held in memory until the listing is known to be small: at most list_in_parallel_above entries
    # (200,000 by default, about 150 MB), so a large input leaves no manifests behind to ignore.
    whole = listing.KeyRange()
    for entry in listing.images(config, whole, None, counts, report):
        entries.append(entry)
        if counts["listed"] > config.list_in_parallel_above:
            return _split_listing(config, layout, report)
    if counts["listed"] > config.list_in_parallel_above:  # the last files listed were no images
        return _split_listing(config, layout, report)
    # Only now the index of processed images, when the input is known to be listed here: a large
    # incremental input is split instead, and each lister reads its own part of the index.
    if (processed := listing.processed_images(config, whole, record["input_root"])) is not None:
        new = [entry for entry in entries if not processed.contains(entry["uri"], entry["etag"])]
        counts["skipped"] += len(entries) - len(new)
        entries = new
    plan, _ = listing.write_shards(
        config, layout, iter(entries), shard_prefix="", first_shard=0, out_of_time=lambda: False
    )
    return _planned(config, layout, record, plan, counts, None)


def _split_listing(config: RunConfig, layout: RunLayout, report: inventory.Inventory | None) -> DetectionPlan:
    """The first listing round of a large input: its key ranges (``listing.split``), or the data
    files of an S3 Inventory report, one part each."""
    # Each part numbers its own shards after its number ("0003-00000"), so no lister waits for another.
    if report is not None:
        files = report.files
        parts = [_first_round(i, "", None) for i in range(len(files))]
        for part, uri in zip(parts, files, strict=True):
            part["file"], part["after_row"] = uri, 0
    else:
        parts = [_first_round(i, r.after, r.upto) for i, r in enumerate(listing.split(config.input))]
    log.info("run %s: listing %s in %d parts", config.run_id, config.input, len(parts))
    return _listing_round(config, layout, parts, 1)


def _first_round(number: int, after: str, upto: str | None) -> ListingPart:
    return {
        "part": number,
        "round": 1,
        "after": after,
        "upto": upto,
        "first_shard": 0,
        "shard_prefix": f"{number:04d}-",
    }


def plan_run(raw_config: Any, execution_name: str | None, default_output: str | None) -> DetectionPlan:
    """A run's whole planning in this process, the three steps in the order the state machine runs them
    (PlanDetection, each range's ListPart, AssemblePlan): for tools that plan without the state machine,
    the benchmarks and the tests' fixtures. Listers here have no deadline."""
    plan = plan_detection(raw_config, execution_name, default_output)
    while "listing" in plan:
        parts = cast(
            list[ListingPart], storage.read_json(RunLayout(plan["run_uri"]).listing_json(plan["listing"]["round"]))
        )
        for part in parts:
            listing.list_part(plan["run_uri"], part, lambda: math.inf)
        plan = assemble_plan(plan)
    return plan


def _listing_round(config: RunConfig, layout: RunLayout, parts: list[ListingPart], round_: int) -> DetectionPlan:
    """The plan while its input is listed: no shards yet, and the ranges of this round."""
    storage.write_json(layout.listing_json(round_), parts, intermediate=True)
    empty = PlanCounts(listed=0, not_images=0, skipped=0)
    plan = _detection_plan(config, layout, [], empty, ShardList(bucket="", key=""))
    reference = _reference(layout.listing_json(round_))
    return {**plan, "listing": {"parts": reference, "part_count": len(parts), "round": round_}}


def assemble_plan(run: DetectionPlan) -> DetectionPlan:
    """After a listing round: the ranges that ran out of time as the next round, or the whole plan.

    The plan is every range's shards in id order (a range's own shards in listing order), the counts
    their sums; ``plan.json``, ``shards.json`` and ``run.json`` are written as for any planned run.
    """
    config, layout, record = load_run(run["run_uri"])
    round_ = run["listing"]["round"]
    parts = cast(list[ListingPart], storage.read_json(layout.listing_json(round_)))
    found = _read_all(layout.part_listed(part["part"], round_) for part in parts)
    going_on: list[ListingPart] = []
    for part, listed in zip(parts, found, strict=True):
        if listed["next_after"] is None:
            continue
        going_on.append(
            {**part, "round": round_ + 1, "after": listed["next_after"], "first_shard": listed["next_shard"]}
        )
        if "next_row" in listed:  # a data file of an inventory goes on at a row, not after a key
            going_on[-1]["after_row"] = listed["next_row"]
    if going_on:
        return _listing_round(config, layout, going_on, round_ + 1)

    # Exactly the files of this listing's rounds: a listing started over (a new run killed while
    # listing, run again) may have left others.
    every_round = found + _read_all(
        layout.part_listed(part["part"], earlier)
        for earlier in range(1, round_)
        for part in cast(list[ListingPart], storage.read_json(layout.listing_json(earlier)))
    )
    plan = sorted((shard for listed in every_round for shard in listed["shards"]), key=lambda ref: ref["shard"])
    ranges = len({listed["part"] for listed in every_round})
    # Each range's last shard is partly filled: joined into full ones, numbered as a range after the
    # last, so their ids sort after every range's own.
    partial = [ref for ref in plan if ref["images"] < config.shard_size]
    if len(partial) > 1:  # one is the run's last shard as it is: nothing to join it with
        joined = listing.join_partial_shards(config, layout, partial, f"{ranges:04d}-")
        plan = [ref for ref in plan if ref["images"] == config.shard_size] + joined
    sums: dict[str, int] = {}
    for listed in every_round:
        for key, value in listed["counts"].items():
            sums[key] = sums.get(key, 0) + int(cast(int, value))
    counts = cast(PlanCounts, {"listed": 0, "not_images": 0, "skipped": 0, **sums})
    listed_by: ListingRecord = {"parts": ranges, "rounds": round_, "listers": len(every_round)}
    return _planned(config, layout, record, plan, counts, listed_by)


def _planned(
    config: RunConfig,
    layout: RunLayout,
    record: RunRecord,
    plan: list[DetectionShard],
    counts: PlanCounts,
    listed_by: ListingRecord | None,
) -> DetectionPlan:
    """Write a new run's plan (plan.json, shards.json, run.json) and return it."""
    counts["images"] = sum(ref["images"] for ref in plan)
    storage.write_json(layout.plan_json, plan)
    storage.write_json(layout.shards_json(Stage.DETECTION), plan, intermediate=True)
    record = {**record, "planned": True, "counts": counts, "shards": len(plan)}
    if listed_by is not None:
        record["listing"] = listed_by
    storage.write_json(layout.run_json, record)
    log.info("run %s planned: %d images in %d shards", config.run_id, counts["images"], len(plan))
    return _detection_plan(config, layout, plan, counts, _shard_reference(layout, Stage.DETECTION))


def _read_all(uris: Iterable[str]) -> list[PartListed]:
    return [cast(PartListed, found) for found in storage.read_json_many(uris)]


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
