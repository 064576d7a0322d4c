"""A run's progress, read from its execution: what ``wildlife watch`` and ``wildlife run`` show.

Both views read what the Step Functions API answers, in AWS and in the local engine's moto alike:
the execution history (GetExecutionHistory's events) and the item counts of its Map Runs
(DescribeMapRun). :func:`read_progress` turns them into one :class:`Progress`; the views only
choose how to print it, so the same run shows the same facts in both.

A Map's shard total is the plan's (PlanDetection's or PlanClassification's ``shard_count``), never
DescribeMapRun's ``total``: while a Map's ItemReader is still reading the shard list, that counts
only the items read so far, and a busy machine showed ``0/2`` before ``0/3`` for a 3-shard run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from wildlife_common.records import MaterializeResult

RUNNING = "RUNNING"

# How an execution ended, by the history event that says so.
_ENDINGS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}


@dataclass(frozen=True)
class StageStates:
    """The states of one stage (``records.Stage``) in the state machine: its planning state and the
    Distributed Map that runs the shards it plans."""

    plan_states: tuple[str, ...]
    """The states whose output holds the plan (detection: PlanDetection for a resumed run, else AssemblePlan)."""
    map_state: str
    key: str
    """Where the plan's output keeps its counts (``run`` for detection, ``classification``)."""
    items_key: str
    unit: str
    parts: str = "shards"
    """What the Map's items are called on screen."""


DETECTION = StageStates(("PlanDetection", "AssemblePlan"), "DetectShards", "run", "pending_images", "images")
CLASSIFICATION = StageStates(("PlanClassification",), "ClassifyShards", "classification", "crops", "crops")
LISTING = StageStates(DETECTION.plan_states, "ListInput", "run", "", "images", parts="parts")
"""A new run's input listed in parallel: the plan names its parts (``listing``: key ranges, or the data
files of an S3 Inventory report), not yet the shards."""
STAGES = (DETECTION, CLASSIFICATION)


@dataclass(frozen=True)
class Plan:
    """What a planning state decided: the shards its Map runs, of how many images or crops."""

    stage: StageStates
    shards: int
    items: int | None

    def __str__(self) -> str:
        if self.stage is LISTING:
            return f"listing the input in {self.shards:,} part{'' if self.shards == 1 else 's'}"
        items = "?" if self.items is None else f"{self.items:,}"
        return f"{items} {self.stage.unit} in {self.shards:,} shard{'' if self.shards == 1 else 's'}"


@dataclass(frozen=True)
class Step:
    """A state entered, left or failed, or a Map Run ended, in history order.

    ``kind`` is ``entered``, ``exited``, ``failed`` or ``map ended``. A state that failed is not
    also shown as left: with a Catch, the history still has its exit, but the state did not succeed.
    """

    kind: str
    state: str
    at: datetime
    seconds: float | None = None
    """``exited``: how long the state took."""
    plan: Plan | None = None
    """``exited`` of a planning state: what it planned."""
    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class MapStage:
    """One Distributed Map's shards: the plan's total, and the Map Run's counts so far."""

    state: str
    map_run_arn: str
    total: int | None
    """Shards the plan made; None when no plan before the Map says (never the Map Run's count)."""
    succeeded: int = 0
    failed: int = 0
    """Failed, timed out or aborted."""
    running: int = 0
    ended: bool = False
    parts: str = "shards"
    """What its items are called on screen (the plan's ``StageStates.parts``)."""

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class Progress:
    """One reading of an execution."""

    status: str
    """RUNNING until the history has the execution's end, then SUCCEEDED, FAILED, TIMED_OUT or ABORTED."""
    started: datetime | None
    ended: datetime | None
    steps: tuple[Step, ...]
    plans: Mapping[str, Plan]
    """Map state name → the plan of its shards."""
    maps: Mapping[str, MapStage]
    """Map state name → its shards, once its Map Run has started."""
    error: str | None = None
    cause: str | None = None
    output: MaterializeResult | None = None
    """The execution's output, once it succeeded."""
    run_uri: str | None = None
    """The run folder, once PlanDetection has said it."""

    @property
    def seconds(self) -> float | None:
        """How long the execution ran, once it ended."""
        if self.started is None or self.ended is None:
            return None
        return max(0.0, (self.ended - self.started).total_seconds())

    @property
    def images_planned(self) -> int | None:
        plan = self.plans.get(DETECTION.map_state)
        return None if plan is None else plan.items

    def seconds_in(self, state: str, now: datetime | None = None) -> float | None:
        """Time spent in ``state`` (its last entry): to its exit or failure, or to ``now`` while in it."""
        entered = left = None
        for step in self.steps:
            if step.state != state:
                continue
            if step.kind == "entered":
                entered, left = step.at, None
            elif step.kind in ("exited", "failed") and left is None:
                left = step.at
        if entered is None:
            return None
        end = left or self.ended or now or datetime.now(entered.tzinfo)
        return max(0.0, (end - entered).total_seconds())


def read_progress(
    events: Iterable[dict[str, Any]], describe_map_run: Callable[[str], dict[str, Any]] | None = None
) -> Progress:
    """An execution's progress from its history events and, when given, its Map Runs' counts.

    Args:
        events: GetExecutionHistory's events, oldest first (every page).
        describe_map_run: DescribeMapRun for a Map Run ARN; called once for each Map Run in the
            history. Without it, Maps have their totals but no counts.
    """
    steps: list[Step] = []
    plans: dict[str, Plan] = {}
    map_runs: dict[str, tuple[str, bool]] = {}  # Map Run ARN → (Map state, ended)
    entered: dict[str, datetime] = {}
    failed: set[str] = set()
    current: str | None = None
    map_run: str | None = None
    status, started, ended = RUNNING, None, None
    error = cause = run_uri = None
    output = None
    for event in events:
        kind: str = event["type"]
        at: datetime = event["timestamp"]
        details = event.get(kind[:1].lower() + kind[1:] + "EventDetails") or {}
        if kind == "ExecutionStarted":
            started = at
        elif kind.endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
            entered[current] = at
            failed.discard(current)
            steps.append(Step("entered", current, at))
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in failed:
                continue
            plan = _plan(name, event["stateExitedEventDetails"].get("output"))
            if plan is not None:
                plans[plan.stage.map_state] = plan
            if name in DETECTION.plan_states:
                run_uri = _run_uri(event["stateExitedEventDetails"].get("output")) or run_uri
            took = (at - entered[name]).total_seconds() if name in entered else None
            steps.append(Step("exited", name, at, seconds=took, plan=plan))
        elif kind == "MapRunStarted":
            map_run = details["mapRunArn"]
            map_runs[map_run] = (current or "Map", False)
        elif kind.startswith("MapRun") and map_run is not None:
            # The Map Run ended (succeeded, failed or aborted): its final counts come before its state's exit.
            state = map_runs[map_run][0]
            map_runs[map_run] = (state, True)
            steps.append(Step("map ended", state, at))
            if kind == "MapRunFailed":
                failed.add(state)
                steps.append(Step("failed", state, at, error=details.get("error"), cause=details.get("cause")))
        elif kind in _ENDINGS:
            status, ended = _ENDINGS[kind], at
            error, cause = details.get("error"), details.get("cause")
            if kind == "ExecutionSucceeded":
                output = _json_object(details.get("output"))
        elif (kind.endswith("Failed") and not kind.endswith("StateFailed")) or kind.endswith("TimedOut"):
            # TaskFailed, LambdaFunctionFailed, TaskTimedOut, ...: the state being run failed.
            state = current or "run"
            failed.add(state)
            default = "States.Timeout" if kind.endswith("TimedOut") else None
            steps.append(Step("failed", state, at, error=details.get("error", default), cause=details.get("cause")))
    maps = {}
    for arn, (state, map_ended) in map_runs.items():
        plan = plans.get(state)
        counts = (describe_map_run(arn).get("itemCounts") or {}) if describe_map_run else {}
        maps[state] = MapStage(
            state,
            arn,
            total=None if plan is None else plan.shards,
            succeeded=counts.get("succeeded", 0),
            failed=counts.get("failed", 0) + counts.get("timedOut", 0) + counts.get("aborted", 0),
            running=counts.get("running", 0),
            ended=map_ended,
            parts="shards" if plan is None else plan.stage.parts,
        )
    return Progress(
        status=status,
        started=started,
        ended=ended,
        steps=tuple(steps),
        plans=plans,
        maps=maps,
        error=error,
        cause=cause,
        output=cast(MaterializeResult | None, output),  # the state machine ends with Materialize's result
        run_uri=run_uri,
    )


def _json_object(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text or "")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _plan(state: str, output: str | None) -> Plan | None:
    """The plan a planning state's output holds (its shard count, and its images or crops)."""
    stage = next((stage for stage in STAGES if state in stage.plan_states), None)
    counts = (_json_object(output) or {}).get(stage.key) if stage else None
    if stage is None or not isinstance(counts, dict) or not isinstance(counts.get("shard_count"), int):
        return None
    listing = counts.get("listing")
    if isinstance(listing, dict) and isinstance(listing.get("part_count"), int):
        return Plan(LISTING, listing["part_count"], None)  # a new run's input is being listed: no shards yet
    items = counts.get(stage.items_key)
    return Plan(stage, counts["shard_count"], items if isinstance(items, int) else None)


def _run_uri(output: str | None) -> str | None:
    run = (_json_object(output) or {}).get(DETECTION.key)
    uri = run.get("run_uri") if isinstance(run, dict) else None
    return uri if isinstance(uri, str) else None
