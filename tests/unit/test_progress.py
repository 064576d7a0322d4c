"""The one reader of an execution's progress, fed history events in GetExecutionHistory's shape.

The events are those the pipeline's state machine writes (names, details and order as recorded
from a local run); both ``wildlife watch`` and ``wildlife run``'s live view print what it reads.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from wildlife.engine.watch import Snapshot
from wildlife.live import LiveView
from wildlife.progress import read_progress

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
DETECT_RUN = "arn:aws:states:us-east-1:123456789012:mapRun:pipeline/DetectShards:1"
CLASSIFY_RUN = "arn:aws:states:us-east-1:123456789012:mapRun:pipeline/ClassifyShards:2"
PLAN = {"run": {"run_uri": "s3://pipeline/runs/r1/", "shard_count": 3, "pending_images": 6000}}


class History:
    """Events with increasing ids, each ``seconds`` after the execution started."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, seconds: float, **details: Any) -> History:
        key = "stateEnteredEventDetails" if kind.endswith("StateEntered") else None
        key = "stateExitedEventDetails" if kind.endswith("StateExited") else key
        event: dict[str, Any] = {"timestamp": T0 + timedelta(seconds=seconds), "type": kind, "id": len(self.events)}
        event[key or kind[:1].lower() + kind[1:] + "EventDetails"] = details
        self.events.append(event)
        return self

    def state(self, kind: str, name: str, entered: float, exited: float, output: Any = None) -> History:
        self.add(f"{kind}StateEntered", entered, name=name, input="{}")
        return self.add(f"{kind}StateExited", exited, name=name, output=json.dumps(output or {}))


def planned_and_detecting() -> History:
    """A run planned (3 shards of 6,000 images) whose detection Map Run has started."""
    history = History().add("ExecutionStarted", 0, input="{}")
    history.state("Task", "PlanDetection", 0, 2, PLAN)
    history.add("MapStateEntered", 2, name="DetectShards", input="{}")
    return history.add("MapRunStarted", 2, mapRunArn=DETECT_RUN)


def map_run(total: int, succeeded: int = 0, failed: int = 0, running: int = 0) -> dict[str, Any]:
    counts = {"pending": 0, "timedOut": 0, "aborted": 0, "resultsWritten": succeeded}
    return {"itemCounts": {**counts, "total": total, "succeeded": succeeded, "failed": failed, "running": running}}


def test_a_whole_run_reads_as_its_states_plans_shards_and_result() -> None:
    history = planned_and_detecting().add("MapRunSucceeded", 60)
    history.add("MapStateExited", 60, name="DetectShards", output="{}")
    classification = {**PLAN, "classification": {"shard_count": 1, "crops": 12}}
    history.state("Task", "PlanClassification", 60, 61, classification)
    history.add("MapStateEntered", 61, name="ClassifyShards", input="{}").add(
        "MapRunStarted", 61, mapRunArn=CLASSIFY_RUN
    )
    history.add("MapRunSucceeded", 70).add("MapStateExited", 70, name="ClassifyShards", output="{}")
    history.add("ExecutionSucceeded", 75, output=json.dumps({"images": 6000, "failed_images": 3}))
    counts = {DETECT_RUN: map_run(3, succeeded=3), CLASSIFY_RUN: map_run(1, succeeded=1)}

    progress = read_progress(history.events, lambda arn: counts[arn])

    assert progress.status == "SUCCEEDED" and progress.seconds == 75.0
    assert progress.output == {"images": 6000, "failed_images": 3}
    assert progress.run_uri == "s3://pipeline/runs/r1/" and progress.images_planned == 6000
    assert [(s.kind, s.state) for s in progress.steps] == [
        ("entered", "PlanDetection"),
        ("exited", "PlanDetection"),
        ("entered", "DetectShards"),
        ("map ended", "DetectShards"),
        ("exited", "DetectShards"),
        ("entered", "PlanClassification"),
        ("exited", "PlanClassification"),
        ("entered", "ClassifyShards"),
        ("map ended", "ClassifyShards"),
        ("exited", "ClassifyShards"),
    ]
    assert [str(s.plan) for s in progress.steps if s.plan] == ["6,000 images in 3 shards", "12 crops in 1 shard"]
    assert [s.seconds for s in progress.steps if s.kind == "exited"] == [2.0, 58.0, 1.0, 9.0]
    detect, classify = progress.maps["DetectShards"], progress.maps["ClassifyShards"]
    assert (detect.total, detect.done, detect.succeeded, detect.ended) == (3, 3, 3, True)
    assert (classify.total, classify.done) == (1, 1)
    assert progress.seconds_in("DetectShards") == 58.0


def test_the_shard_total_is_the_plans_while_the_map_run_is_still_reading_its_items() -> None:
    # DescribeMapRun's total counts the items its ItemReader has read so far: 2 of the plan's 3.
    progress = read_progress(planned_and_detecting().events, lambda arn: map_run(2, running=2))

    detect = progress.maps["DetectShards"]
    assert (detect.total, detect.done, detect.running) == (3, 0, 2)
    assert progress.status == "RUNNING" and progress.ended is None and progress.seconds is None

    # wildlife run's live view prints the plan's total too.
    stream = io.StringIO()
    LiveView(stream).update(Snapshot("RUNNING", progress, images_done=0, at=T0 + timedelta(seconds=5)))
    assert "  DetectShards: 0/3 shards, 0/6000 images" in stream.getvalue().splitlines()
    assert "/2" not in stream.getvalue()


def test_a_new_run_listed_in_parts_shows_the_parts_then_the_plan_assembled_from_them() -> None:
    list_run = "arn:aws:states:us-east-1:123456789012:mapRun:pipeline/ListInput:1"
    listing = {"run": {"run_uri": "s3://pipeline/runs/r1/", "shard_count": 0, "listing": {"part_count": 3, "round": 1}}}
    history = History().add("ExecutionStarted", 0, input="{}")
    history.state("Task", "PlanDetection", 0, 2, listing)
    history.add("MapStateEntered", 2, name="ListInput", input="{}").add("MapRunStarted", 2, mapRunArn=list_run)

    progress = read_progress(history.events, lambda arn: map_run(3, succeeded=1, running=2))

    # Key ranges of a folder, or the data files of an S3 Inventory report: parts, either way.
    assert [str(s.plan) for s in progress.steps if s.plan] == ["listing the input in 3 parts"]
    stream = io.StringIO()
    LiveView(stream).update(Snapshot("RUNNING", progress, images_done=0, at=T0 + timedelta(seconds=5)))
    assert "  ListInput: 1/3 parts" in stream.getvalue().splitlines()

    history.add("MapRunSucceeded", 9).add("MapStateExited", 9, name="ListInput", output="{}")
    history.state("Task", "AssemblePlan", 9, 10, PLAN)
    progress = read_progress(history.events, lambda arn: map_run(3, succeeded=3))
    assert [str(s.plan) for s in progress.steps if s.plan][-1] == "6,000 images in 3 shards"


def test_a_map_before_its_plan_is_read_has_no_total_rather_than_a_partial_one() -> None:
    history = History().add("ExecutionStarted", 0).add("MapStateEntered", 1, name="DetectShards", input="{}")
    history.add("MapRunStarted", 1, mapRunArn=DETECT_RUN)

    progress = read_progress(history.events, lambda arn: map_run(2, running=2))

    assert progress.maps["DetectShards"].total is None


def test_a_failed_lambda_is_a_failed_state_not_a_left_one_and_the_run_keeps_its_cause() -> None:
    cause = json.dumps({"errorMessage": "detector not found: gone.pt", "errorType": "ConfigError"})
    history = History().add("ExecutionStarted", 0).add("TaskStateEntered", 0, name="PlanDetection", input="{}")
    history.add("TaskFailed", 1, error="ConfigError", cause=cause)
    # With a Catch, the failed state is left too.
    history.add("TaskStateExited", 1, name="PlanDetection", output="{}")
    history.state("Pass", "RecordFailure", 1, 1)
    history.add("FailStateEntered", 1, name="RunFailed", input="{}")
    history.add("ExecutionFailed", 2, error="ConfigError", cause=cause)

    progress = read_progress(history.events)

    assert [(s.kind, s.state) for s in progress.steps] == [
        ("entered", "PlanDetection"),
        ("failed", "PlanDetection"),
        ("entered", "RecordFailure"),
        ("exited", "RecordFailure"),
        ("entered", "RunFailed"),
    ]
    failed = progress.steps[1]
    assert (failed.error, failed.cause) == ("ConfigError", cause)
    assert (progress.status, progress.error, progress.cause, progress.seconds) == ("FAILED", "ConfigError", cause, 2.0)
    assert progress.seconds_in("PlanDetection") == 1.0


def test_a_map_that_failed_shows_its_final_counts_then_its_failure() -> None:
    history = planned_and_detecting()
    history.add("MapRunFailed", 30, error="States.ExceedToleratedFailureThreshold", cause="1 of 3 items failed")
    history.add("MapStateFailed", 30).add("MapStateExited", 30, name="DetectShards", output="{}")

    progress = read_progress(history.events, lambda arn: map_run(3, succeeded=2, failed=1))

    assert [(s.kind, s.state, s.error) for s in progress.steps[-2:]] == [
        ("map ended", "DetectShards", None),
        ("failed", "DetectShards", "States.ExceedToleratedFailureThreshold"),
    ]
    assert (progress.maps["DetectShards"].done, progress.maps["DetectShards"].failed) == (3, 1)
    assert progress.status == "RUNNING"


def test_a_timed_out_task_is_a_failure_with_the_timeout_error() -> None:
    history = History().add("ExecutionStarted", 0).add("TaskStateEntered", 0, name="Materialize", input="{}")
    history.add("TaskTimedOut", 900, cause="no heartbeat").add("ExecutionTimedOut", 901)

    progress = read_progress(history.events)

    assert (progress.steps[-1].kind, progress.steps[-1].error) == ("failed", "States.Timeout")
    assert progress.status == "TIMED_OUT"
