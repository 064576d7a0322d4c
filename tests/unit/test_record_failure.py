"""RecordFailure: the console shows a cause a person understands, and the run folder keeps it."""

from __future__ import annotations

import datetime as dt
import json

from wildlife_common import storage
from wildlife_common.layout import RunLayout

from tests.conftest import load_handler
from tests.helpers import commit_detection_shard, put_images

record = load_handler("record_failure").lambda_handler
plan = load_handler("plan_detection").lambda_handler

CONFIG = {"input": "s3://traps/", "detector": "s3://pipeline/models/detector.pt", "shard_size": 1}


def test_a_failed_batch_job_is_explained_with_its_reason_exit_code_and_log_stream(s3, lambda_context) -> None:
    job = {
        "JobName": "detect-00003",
        "Status": "FAILED",
        "StatusReason": "Essential container in task exited",
        "Attempts": [
            {"Container": {"ExitCode": 2, "Reason": "weights missing", "LogStreamName": "detect/default/abc"}}
        ],
    }
    result = record(
        {"input": CONFIG, "execution_name": "r1", "error": {"Error": "States.TaskFailed", "Cause": json.dumps(job)}},
        lambda_context,
    )
    assert result["Error"] == "TaskFailed"  # a Fail state may not raise a "States." name
    assert result["Cause"] == (
        "detect-00003 failed: Essential container in task exited; exit code 2; container: weights missing; "
        "log stream detect/default/abc; after 1 attempt(s)"
    )
    saved = storage.read_json("s3://pipeline/runs/r1/final/failure.json")
    assert saved["cause"] == result["Cause"] and saved["error"] == "TaskFailed"
    assert saved["step_functions_error"] == "States.TaskFailed"


def test_a_lambda_error_becomes_type_and_message(s3, lambda_context) -> None:
    cause = json.dumps({"errorType": "InputNotFound", "errorMessage": "bucket 'x' does not exist", "stackTrace": []})
    result = record(
        {"input": CONFIG, "execution_name": "r1", "error": {"Error": "InputNotFound", "Cause": cause}}, lambda_context
    )
    assert result == {"Error": "InputNotFound", "Cause": "InputNotFound: bucket 'x' does not exist"}


def test_too_many_failed_shards_are_named(s3, lambda_context) -> None:
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"w")
    put_images(s3, "traps", ["a.jpg", "b.jpg", "c.jpg"])
    run = plan({"config": CONFIG, "execution_name": "r1"}, lambda_context)
    commit_detection_shard(RunLayout(run["run_uri"]), "00001", {})
    error = {
        "Error": "States.ExceedToleratedFailureThreshold",
        "Cause": "The specified tolerated failure threshold was exceeded",
    }
    result = record({"input": CONFIG, "execution_name": "r1", "error": error}, lambda_context)
    assert result["Cause"].startswith("2 detection shard(s) failed, more than the tolerated 5.0%: 00000, 00002.")


def test_a_bad_config_is_reported_even_though_there_is_no_run_folder(s3, lambda_context) -> None:
    cause = json.dumps({"errorType": "ConfigError", "errorMessage": "unknown setting 'shards'"})
    result = record(
        {"input": {"shards": 1}, "execution_name": "r1", "error": {"Error": "ConfigError", "Cause": cause}},
        lambda_context,
    )
    assert result["Cause"] == "ConfigError: unknown setting 'shards'"
    assert not storage.exists("s3://pipeline/runs/r1/final/failure.json")


def status_change(status: str, *, started_ms: int, error: str | None = None, cause: str | None = None) -> dict:
    """Step Functions' "Execution Status Change" event, as EventBridge delivers it (AWS's documented shape)."""
    return {
        "version": "0",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:wildlife-pipeline:r1",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:wildlife-pipeline",
            "name": "r1",
            "status": status,
            "startDate": started_ms,
            "stopDate": started_ms + 1000,
            "input": json.dumps(CONFIG),
            "output": None,
            "error": error,
            "cause": cause,
        },
    }


def test_a_run_that_timed_out_without_a_catch_gets_its_failure_json(s3, lambda_context) -> None:
    # TimeoutSeconds of the whole execution cannot be caught: the state machine never reaches RecordFailure.
    result = record(status_change("TIMED_OUT", started_ms=0), lambda_context)

    saved = storage.read_json("s3://pipeline/runs/r1/final/failure.json")
    assert result == {"Error": "Timeout", "Cause": saved["cause"]}
    assert saved["step_functions_error"] == "States.Timeout" and "TimeoutSeconds" in saved["cause"]


def test_a_stopped_run_and_a_runtime_error_are_recorded_with_what_the_event_says(s3, lambda_context) -> None:
    record(status_change("ABORTED", started_ms=0), lambda_context)
    assert storage.read_json("s3://pipeline/runs/r1/final/failure.json")["error"] == "Aborted"

    s3.delete_object(Bucket="pipeline", Key="runs/r1/final/failure.json")
    event = status_change("FAILED", started_ms=0, error="States.Runtime", cause="dictionary changed size")
    assert record(event, lambda_context) == {"Error": "Runtime", "Cause": "dictionary changed size"}


def test_the_catch_paths_own_record_is_kept_but_an_earlier_executions_is_not(s3, lambda_context) -> None:
    cause = json.dumps({"errorType": "InputNotFound", "errorMessage": "no bucket", "stackTrace": []})
    record(
        {"input": CONFIG, "execution_name": "r1", "error": {"Error": "InputNotFound", "Cause": cause}}, lambda_context
    )
    written = storage.read_json("s3://pipeline/runs/r1/final/failure.json")
    started_before = int(dt.datetime.fromisoformat(written["failed"]).timestamp() * 1000) - 60_000

    # The same execution ends FAILED after its Catch recorded why: nothing to add.
    assert record(status_change("FAILED", started_ms=started_before, error="InputNotFound"), lambda_context) == {}
    assert storage.read_json("s3://pipeline/runs/r1/final/failure.json") == written

    # A later execution of the same run (a resume) times out: the old record is not its record.
    started_after = started_before + 3_600_000
    record(status_change("TIMED_OUT", started_ms=started_after), lambda_context)
    assert storage.read_json("s3://pipeline/runs/r1/final/failure.json")["error"] == "Timeout"
