"""What every shard job shares: loading the run, resume from partial results, the commit marker."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
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
        return storage.read_json(self.done_uri) if storage.exists(self.done_uri) else None

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


def host() -> tuple[str | None, str | None]:
    """Instance type and purchase option (``spot``, ``on-demand``) of the host, for the cost estimate
    (EC2 metadata, IMDSv2); None for what is not known."""
    info: dict[str, str | None] = {"instance_type": os.environ.get("WILDLIFE_INSTANCE_TYPE"), "lifecycle": None}
    if info["instance_type"] or not os.environ.get("AWS_BATCH_JOB_ID"):
        return info["instance_type"], info["lifecycle"]
    base = "http://169.254.169.254/latest"
    try:
        # Half a second each: metadata answers in milliseconds on EC2; anywhere else it never will.
        token_request = urllib.request.Request(
            f"{base}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        )
        token = urllib.request.urlopen(token_request, timeout=0.5).read().decode()
        for key, path in (("instance_type", "instance-type"), ("lifecycle", "instance-life-cycle")):
            request = urllib.request.Request(f"{base}/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token})
            info[key] = urllib.request.urlopen(request, timeout=0.5).read().decode()
    except OSError:
        pass
    return info["instance_type"], info["lifecycle"]


def log_line(event: str, **fields: Any) -> None:
    """One JSON log line (CloudWatch Logs Insights queries these by field)."""
    print(json.dumps({"event": event, **fields}, default=str), flush=True)
