"""What a local execution is doing now: its progress, plus images done, images per second and time left.

The execution's progress is read as ``wildlife watch`` reads a deployed one (``wildlife.progress``,
from the history and the Map Runs); what only the local engine knows is added here: the images of
the detection shards its jobs committed, and the jobs that failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wildlife.progress import DETECTION, Progress, read_progress

if TYPE_CHECKING:
    from wildlife.engine.local import JobRecord, LocalEngine


@dataclass(frozen=True)
class Snapshot:
    """One poll of a running execution."""

    status: str
    """DescribeExecution's status, read before the history: once it is not RUNNING, the history
    read after it is complete, and the engine's RunResult (described again) says the same."""
    progress: Progress
    images_done: int
    """Images of detection shards committed by this execution."""
    at: datetime
    failed_jobs: list[JobRecord] = field(default_factory=list)

    @property
    def images_total(self) -> int | None:
        """Images this execution processes (PlanDetection's pending images), once planned."""
        return self.progress.images_planned

    @property
    def detect_s(self) -> float | None:
        """Seconds in the detection Map so far: the rate is detection's, not the whole run's."""
        return self.progress.seconds_in(DETECTION.map_state, self.at)

    @property
    def images_per_second(self) -> float | None:
        seconds = self.detect_s
        if not seconds or not self.images_done:
            return None
        return self.images_done / seconds

    @property
    def eta_s(self) -> float | None:
        """Seconds left for detection at the rate so far (None until there is a rate)."""
        rate = self.images_per_second
        if rate is None or self.images_total is None:
            return None
        return max(0.0, (self.images_total - self.images_done) / rate)


class Watcher:
    """Polls one execution of a LocalEngine."""

    def __init__(self, engine: LocalEngine, execution_arn: str, jobs_before: int) -> None:
        self.engine = engine
        self.execution_arn = execution_arn
        self.jobs_before = jobs_before
        self.sfn = engine.aws.client("stepfunctions")
        self.history: list[dict[str, Any]] = []

    def poll(self) -> Snapshot:
        status = self.sfn.describe_execution(executionArn=self.execution_arn)["status"]
        self.history = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=self.execution_arn):
            self.history += page["events"]
        progress = read_progress(self.history, lambda arn: self.sfn.describe_map_run(mapRunArn=arn))
        jobs = self.engine.jobs(self.jobs_before)
        return Snapshot(
            status=status,
            progress=progress,
            images_done=sum(job.images for job in jobs),
            at=datetime.now(UTC),
            failed_jobs=[job for job in jobs if job.exit_code != 0],
        )
