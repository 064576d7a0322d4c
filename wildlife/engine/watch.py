"""What an execution is doing now: states entered and left, shards done, images per second, time left.

Read from what the Step Functions API answers (execution history, Map Runs), as a console or
``wildlife watch`` would, plus the image counts of finished shards that the local runner records.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wildlife.engine.local import LocalEngine

# History event types that say a state was entered or left, whatever the state's type.
_ENTERED = "StateEntered"
_EXITED = "StateExited"


@dataclass(frozen=True)
class StateEvent:
    """A state entered or left (``kind`` is ``entered`` or ``exited``) at a time."""

    kind: str
    name: str
    at: datetime


@dataclass(frozen=True)
class MapProgress:
    """The item counts of one Map Run: shards done out of total."""

    state: str
    total: int
    succeeded: int
    failed: int
    running: int

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


@dataclass
class Snapshot:
    """One poll of a running execution."""

    status: str
    events: list[StateEvent]
    """Every state entered or left so far, in order (the renderer remembers how many it showed)."""
    maps: dict[str, MapProgress]
    """Map state name → its Map Run's counts, once the Map Run exists."""
    images_total: int | None
    """Images this execution processes (PlanDetection's pending images), once planned."""
    images_done: int
    """Images of detection shards committed by this execution."""
    elapsed_s: float
    detect_s: float | None = None
    """Seconds since the detection Map was entered, for images per second."""
    failed_jobs: list[Any] = field(default_factory=list)

    @property
    def images_per_second(self) -> float | None:
        if not self.detect_s or not self.images_done:
            return None
        return self.images_done / self.detect_s

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
        self.started = time.monotonic()
        self.history: list[dict[str, Any]] = []
        self._map_of_run: dict[str, str] = {}
        self._images_total: int | None = None
        self._detect_started: float | None = None
        self._detect_ended: float | None = None

    def poll(self) -> Snapshot:
        status = self.sfn.describe_execution(executionArn=self.execution_arn)["status"]
        self.history = self._history()
        events: list[StateEvent] = []
        entered_map = None
        for event in self.history:
            kind = event["type"]
            if kind.endswith(_ENTERED):
                name = event["stateEnteredEventDetails"]["name"]
                events.append(StateEvent("entered", name, event["timestamp"]))
                if kind == "MapStateEntered":
                    entered_map = name
                    if name == "DetectShards" and self._detect_started is None:
                        self._detect_started = time.monotonic()
            elif kind.endswith(_EXITED):
                details = event["stateExitedEventDetails"]
                events.append(StateEvent("exited", details["name"], event["timestamp"]))
                if details["name"] == "PlanDetection" and self._images_total is None:
                    self._images_total = _planned_images(details.get("output"))
                if details["name"] == "DetectShards" and self._detect_ended is None:
                    self._detect_ended = time.monotonic()  # the rate is detection's, not the whole run's
            elif kind == "MapRunStarted" and entered_map is not None:
                self._map_of_run[event["mapRunStartedEventDetails"]["mapRunArn"]] = entered_map
        maps = {}
        for arn, state in self._map_of_run.items():
            counts = self.sfn.describe_map_run(mapRunArn=arn)["itemCounts"]
            maps[state] = MapProgress(
                state, counts["total"], counts["succeeded"], counts["failed"] + counts["timedOut"], counts["running"]
            )
        jobs = self.engine.jobs(self.jobs_before)
        now = time.monotonic()
        return Snapshot(
            status=status,
            events=events,
            maps=maps,
            images_total=self._images_total,
            images_done=sum(job.images for job in jobs),
            elapsed_s=now - self.started,
            detect_s=None if self._detect_started is None else (self._detect_ended or now) - self._detect_started,
            failed_jobs=[job for job in jobs if job.exit_code != 0],
        )

    def _history(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=self.execution_arn):
            events += page["events"]
        return events


def _planned_images(output: str | None) -> int | None:
    try:
        return int(json.loads(output or "{}")["run"]["pending_images"])
    except (ValueError, KeyError, TypeError):
        return None
