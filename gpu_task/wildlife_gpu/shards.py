"""What every shard job shares: loading the run, resume from partial results, the commit marker."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import pyarrow as pa
import pyarrow.parquet as pq
from wildlife_common import storage
from wildlife_common.config import RunConfig
from wildlife_common.layout import RunLayout
from wildlife_common.records import ShardDone, Stage
from wildlife_common.run_folder import load_run, now

Manifest = TypeVar("Manifest", bound=Mapping[str, Any])


class ShardError(Exception):
    """The shard cannot be done (manifest missing, bad configuration); the job exits non-zero."""


@dataclass
class ShardJob(Generic[Manifest]):
    """One shard of one stage of one run, as the job sees it (``ShardJob[DetectionManifest]`` for stage 1)."""

    config: RunConfig
    layout: RunLayout
    stage: Stage
    shard: str
    manifest: Manifest
    started: str = field(default_factory=now)
    clock_start: float = field(default_factory=time.perf_counter)

    @classmethod
    def open(cls, run_uri: str, stage: Stage, shard: str) -> ShardJob[Any]:
        try:
            config, layout, _ = load_run(run_uri)
        except FileNotFoundError as error:
            raise ShardError(f"no run at {run_uri} (run.json missing)") from error
        try:
            manifest = storage.read_json(layout.shard_manifest(stage, shard))
        except FileNotFoundError as error:
            raise ShardError(f"shard manifest missing: {layout.shard_manifest(stage, shard)}") from error
        return cls(config, layout, stage, shard, manifest)

    @property
    def done_uri(self) -> str:
        return self.layout.done(self.stage, self.shard)

    def committed(self) -> ShardDone | None:
        """The commit marker when this shard is already done (a re-sent job has nothing to do)."""
        return storage.read_json_if_exists(self.done_uri)

    def read_partials(self, schema: pa.Schema) -> list[pa.Table]:
        """Partial results of earlier attempts, parts 0, 1, 2, … up to the first gap."""
        tables: list[pa.Table] = []
        while True:
            uri = self.layout.partial(self.stage, self.shard, len(tables))
            if not storage.exists(uri):
                return tables
            tables.append(pq.read_table(io.BytesIO(storage.read_bytes(uri)), schema=schema))

    def write_partial(self, index: int, table: pa.Table) -> None:
        storage.write_bytes(
            self.layout.partial(self.stage, self.shard, index), _parquet_bytes(table), intermediate=True
        )

    def commit(self, table: pa.Table, stats: Mapping[str, Any]) -> ShardDone:
        """Write the shard's results, then the marker: only a complete shard is ever committed.

        ``stats`` is the stage's part of the marker (``records.DetectionStats``, ``ClassificationStats``).
        """
        storage.write_bytes(self.layout.results(self.stage, self.shard), _parquet_bytes(table), intermediate=True)
        seconds = time.perf_counter() - self.clock_start
        instance_type, lifecycle = host()
        done: ShardDone = {
            "shard": self.shard,
            "stage": self.stage,
            "rows": table.num_rows,
            "attempt": attempt(),
            "started": self.started,
            "finished": now(),
            "seconds": round(seconds, 3),
            "instance_type": instance_type,
            "lifecycle": lifecycle,
        }
        marker = cast(ShardDone, {**stats, **done})
        storage.write_json(self.done_uri, marker, intermediate=True)
        return marker


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def attempt() -> int:
    """Which Batch attempt this is: AWS Batch numbers them from 1 (AWS_BATCH_JOB_ATTEMPT); 1 outside Batch."""
    return int(os.environ.get("AWS_BATCH_JOB_ATTEMPT") or 1)


HOST_INFO = Path("/etc/wildlife/host.json")
"""Instance type and lifecycle of a Batch host, written at boot by the launch template's user data: a
job may not ask the metadata service itself (template.yaml, BatchLaunchTemplate)."""


def host() -> tuple[str | None, str | None]:
    """Instance type and purchase option (``spot``, ``on-demand``) of the host, for the cost estimate;
    None for what is not known (a local run, or an older host without the file)."""
    instance_type = os.environ.get("WILDLIFE_INSTANCE_TYPE") or None
    try:
        info = json.loads(HOST_INFO.read_text())
    except (OSError, ValueError):
        return instance_type, None
    return instance_type or info.get("instance_type") or None, info.get("lifecycle") or None


def log_line(event: str, **fields: Any) -> None:
    """One JSON log line (CloudWatch Logs Insights queries these by field)."""
    print(json.dumps({"event": event, **fields}, default=str), flush=True)
