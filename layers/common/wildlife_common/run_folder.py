"""Reading a run folder: its record, its settings and which shards are committed.

``layout`` says where each file is; this module reads them for every step that needs to know how far
a run got (the planners, materialize, RecordFailure, the GPU task).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import cast

from wildlife_common import inventory, storage
from wildlife_common.config import RunConfig, parse_config
from wildlife_common.layout import RunLayout
from wildlife_common.records import ClassificationDone, DetectionDone, DetectionShard, RunRecord, ShardDone, Stage


def now() -> str:
    """UTC time in ISO 8601, the form every record uses."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def load_run(run_uri: str) -> tuple[RunConfig, RunLayout, RunRecord]:
    """The configuration, layout and record of a planned run."""
    layout = RunLayout(storage.as_folder(run_uri))
    record = cast(RunRecord, storage.read_json(layout.run_json))
    config = parse_config(record["config"])
    # The config as given; what its input was found to be when the run was planned.
    return (replace(config, input=record["report"]) if "report" in record else config), layout, record


def input_root(record: RunRecord, config: RunConfig) -> str:
    """The folder a planned run's image paths are relative to (``RunRecord.input_root``), found
    again for a run planned before it was recorded."""
    return record.get("input_root") or inventory.input_root(config.input)


def planned_images(record: RunRecord | None) -> int | None:
    """The images a run planned, once its planning is done (``run.json``); None before."""
    return record.get("counts", {}).get("images") if record and record.get("planned") else None


def read_plan(layout: RunLayout) -> list[DetectionShard]:
    """Every detection shard of the run, in order."""
    return cast(list[DetectionShard], storage.read_json(layout.plan_json))


def _markers(layout: RunLayout, stage: Stage) -> dict[str, str]:
    """The URIs of one stage's commit markers, by shard id: listed, not read."""
    try:
        return {
            info.uri.rsplit("/", 1)[-1].removesuffix(".done.json"): info.uri
            for info in storage.list_files(layout.results_folder(stage))
            if info.uri.endswith(".done.json")
        }
    except storage.InputNotFound:  # a local run folder not created yet
        return {}


def committed_shards(layout: RunLayout, stage: Stage) -> set[str]:
    """The ids of one stage's committed shards. Only listed: what is done is known by a marker's
    name, and reading each one (5,000 for ten million images, one GET after the other) would take
    minutes in S3."""
    return set(_markers(layout, stage))


def committed(layout: RunLayout, stage: Stage) -> dict[str, ShardDone]:
    """The commit markers of one stage, by shard id (each is read: they are small)."""
    return {shard: storage.read_json(uri) for shard, uri in _markers(layout, stage).items()}


def committed_detections(layout: RunLayout) -> dict[str, DetectionDone]:
    """The commit markers of the run's detection shards, by shard id."""
    return cast(dict[str, DetectionDone], committed(layout, Stage.DETECTION))


def committed_classifications(layout: RunLayout) -> dict[str, ClassificationDone]:
    """The commit markers of the run's classification shards, by shard id."""
    return cast(dict[str, ClassificationDone], committed(layout, Stage.CLASSIFICATION))
