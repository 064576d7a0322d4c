"""Turn a Step Functions error into a cause a person understands, and record it in the run folder.

Causes arrive in three shapes: a Lambda error (JSON with ``errorType`` and ``errorMessage``), a
failed Batch job (the job description as JSON: ``StatusReason``, ``Attempts[].Container``), and
the Map's own errors (``States.ExceedToleratedFailureThreshold``). The console shows the cause
we return, so it names the shard, the reason and where the logs are.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from wildlife_common import storage
from wildlife_common.errors import PipelineError
from wildlife_common.layout import RunLayout
from wildlife_common.planning import resolve_run
from wildlife_common.records import ExecutionStatusChange, Failure, Stage
from wildlife_common.run_folder import committed_shards, now

log = logging.getLogger(__name__)

# Step Functions caps a Fail state's cause at 32,768 characters; keep well inside it.
MAX_CAUSE = 8000

# The States Language reserves the "States." prefix for errors Step Functions raises itself: a Fail
# state may not use it (moto enforces this as the spec says). The run's failure keeps the original
# name in failure.json and ends with one of these, named for what the user sees.
RUN_ERROR_NAMES = {"States.ExceedToleratedFailureThreshold": "ShardsFailed"}


def run_error_name(error: str) -> str:
    """The Fail state's error for a caught Step Functions error: ShardsFailed, TaskFailed, Timeout, …"""
    return RUN_ERROR_NAMES.get(error, error.removeprefix("States."))


def _batch_cause(job: dict[str, Any]) -> str:
    name = job.get("JobName", "a Batch job")
    parts = [f"{name} failed: {job.get('StatusReason') or 'no reason given'}"]
    attempts = job.get("Attempts") or []
    if attempts:
        last = attempts[-1].get("Container", {})
        if last.get("ExitCode") is not None:
            parts.append(f"exit code {last['ExitCode']}")
        if last.get("Reason"):
            parts.append(f"container: {last['Reason']}")
        if last.get("LogStreamName"):
            parts.append(f"log stream {last['LogStreamName']}")
        parts.append(f"after {len(attempts)} attempt(s)")
    return "; ".join(parts)


def readable_cause(error: str, cause: str | None) -> str:
    """One paragraph from a raw Step Functions cause (JSON or text)."""
    if not cause:
        return error
    try:
        data = json.loads(cause)
    except (TypeError, ValueError):
        return cause[:MAX_CAUSE]
    if isinstance(data, dict):
        if "errorMessage" in data:
            return f"{data.get('errorType', error)}: {data['errorMessage']}"[:MAX_CAUSE]
        if "JobName" in data or "StatusReason" in data:
            return _batch_cause(data)[:MAX_CAUSE]
    return cause[:MAX_CAUSE]


def _missing_shards(layout: RunLayout, stage: Stage) -> list[str]:
    """Shards this execution was to process that did not commit."""
    listed = storage.read_json(layout.shards_json(stage))
    done = committed_shards(layout, stage)
    return [ref["shard"] for ref in listed if ref["shard"] not in done]


# What a run that ended without a Step Functions error is reported as (the event then has none).
_STATUS_ERRORS = {
    "TIMED_OUT": ("States.Timeout", "the run passed the state machine's TimeoutSeconds (7 days) and was ended"),
    "ABORTED": ("Aborted", "the run was stopped (by hand, by the API or by a deployment) before it ended"),
}


def record_ended_run(event: ExecutionStatusChange, default_output: str | None) -> dict[str, str] | None:
    """Write ``final/failure.json`` for a run that ended FAILED, TIMED_OUT or ABORTED without one.

    The safety net behind the state machine's Catch: the Catch path records a failure first, so an
    existing failure.json is kept. Returns the Fail-state-like ``{"Error", "Cause"}`` recorded, or
    None when there was nothing to record (already recorded, or no run folder to write to).
    """
    detail = event["detail"]
    try:
        raw_input = json.loads(detail.get("input") or "{}")
    except ValueError:
        raw_input = None
    try:
        _, layout = resolve_run(raw_input, detail["name"], default_output)
    except PipelineError as problem:
        log.info("no run folder to record %s in: %s", detail["executionArn"], problem)
        return None
    if _recorded_since(layout.failure_json, detail.get("startDate")):
        return None
    error, cause = _STATUS_ERRORS.get(detail["status"], ("States.Runtime", None))
    error = detail.get("error") or error
    raw_cause = detail.get("cause")
    return record_failure(raw_input, detail["name"], {"Error": error, "Cause": raw_cause or cause}, default_output)


def _recorded_since(failure_json: str, started_ms: int | None) -> bool:
    """Whether this execution recorded its failure: failure.json exists and is not from an earlier
    execution of the same run (a resumed run keeps its folder, and with it an old failure.json)."""
    if not storage.exists(failure_json):
        return False
    if started_ms is None:
        return True
    try:
        failed = dt.datetime.fromisoformat(storage.read_json(failure_json)["failed"])
    except (KeyError, TypeError, ValueError):
        return False
    return failed.timestamp() * 1000 >= started_ms


def record_failure(
    raw_input: Any, execution_name: str | None, error: dict[str, Any], default_output: str | None
) -> dict[str, str]:
    """Explain why a run failed and write ``final/failure.json`` when the run folder is known.

    Returns:
        ``{"Error": ..., "Cause": ...}`` for the Fail state.
    """
    name = str(error.get("Error") or "States.Runtime")
    cause = readable_cause(name, error.get("Cause"))
    layout = None
    try:
        config, layout = resolve_run(raw_input, execution_name, default_output)
    except PipelineError as problem:  # the config itself was the problem; nothing to write to
        log.info("no run folder to record the failure in: %s", problem)
    if layout and name == "States.ExceedToleratedFailureThreshold":
        for stage in (Stage.CLASSIFICATION, Stage.DETECTION):
            try:
                missing = _missing_shards(layout, stage)
            except (FileNotFoundError, storage.InputNotFound):
                continue
            if missing:
                tolerated = config.tolerated_failure_percentage
                cause = (
                    f"{len(missing)} {stage.label} shard(s) failed, more than the tolerated {tolerated}%: "
                    f"{', '.join(missing[:50])}{' …' if len(missing) > 50 else ''}. Their Batch job logs say why; "
                    f"start the run again with the same run_id to retry only these shards."
                )
                break
    if layout:
        failure: Failure = {
            "error": run_error_name(name),
            "step_functions_error": name,
            "cause": cause,
            "raw_cause": error.get("Cause"),
            "failed": now(),
        }
        try:
            storage.write_json(layout.failure_json, failure)
        except Exception as problem:  # recording is best effort: never hide the original cause
            log.warning("could not write failure.json: %s", problem)
    return {"Error": run_error_name(name), "Cause": cause}
