"""Following one execution as it runs: what ``wildlife watch`` prints.

Each poll reads what the Step Functions console shows (the execution history, the Map Runs'
item counts) and what it does not (the Batch jobs of this run that failed, with their log
streams and last log lines), and returns only what changed since the last poll:

- states entered and left, with how long each took;
- for each Distributed Map, shards done out of total whenever the counts change
  (``DescribeMapRun`` ``itemCounts``);
- failed states with their error and cause; a cause that is a Batch job (a ``.sync`` task's
  failure) is shown as the job: status reason, exit code, log stream;
- Batch jobs of this run that FAILED after their retries (``ListJobs`` on the stack's queue, kept
  to this run by the job's ``run_uri`` parameter): a failed shard inside a Map is a child
  execution's failure, which the parent's history does not show;
- how the execution ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.exceptions
from wildlife_common.failures import readable_cause

from wildlife.ops import console
from wildlife.ops.aws import Aws, aws_errors
from wildlife.ops.runs import TERMINAL, Execution, describe
from wildlife.ops.stack import Stack
from wildlife.text import duration

DEFAULT_LOG_LINES = 10
"""Last lines of a failed job's log shown under it: enough for a Python traceback's end."""

_DESCRIBE_JOBS_MAX = 100
"""DescribeJobs takes at most 100 job ids a call."""

_CAUSE_CHARS = 500
"""A cause longer than this is cut: a Batch job's JSON is kilobytes, and is shown as a job instead."""


def _camel(value: Any) -> Any:
    """Keys with a lower-case first letter, recursively: a ``.sync`` cause is DescribeJobs in PascalCase."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]) if isinstance(k, str) else k: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def batch_job_in(cause: str | None) -> dict[str, Any] | None:
    """The Batch job a failed ``submitJob.sync`` task's cause holds (as DescribeJobs' camelCase), if any."""
    try:
        value = json.loads(cause or "")
    except ValueError:
        return None
    if isinstance(value, dict) and ("JobId" in value or "jobId" in value):
        return _camel(value)
    return None


@dataclass(frozen=True)
class JobFailure:
    """Why one Batch job failed and where its log is."""

    job_id: str
    job_name: str
    status_reason: str | None
    reason: str | None
    exit_code: int | None
    attempts: int
    log_group: str | None
    log_stream: str | None

    @classmethod
    def from_job(cls, job: dict[str, Any], default_log_group: str | None) -> JobFailure:
        attempts = job.get("attempts") or []
        last = (attempts[-1].get("container") if attempts else None) or {}
        container = job.get("container") or {}
        options = (container.get("logConfiguration") or {}).get("options") or {}
        return cls(
            job_id=job.get("jobId", "?"),
            job_name=job.get("jobName", "?"),
            status_reason=job.get("statusReason") or (attempts[-1].get("statusReason") if attempts else None),
            reason=last.get("reason") or container.get("reason"),
            exit_code=last.get("exitCode", container.get("exitCode")),
            attempts=len(attempts),
            log_group=options.get("awslogs-group") or default_log_group,
            log_stream=last.get("logStreamName") or container.get("logStreamName"),
        )

    def headline(self) -> str:
        parts = [self.status_reason or "failed"]
        if self.exit_code is not None:
            parts.append(f"exit code {self.exit_code}")
        if self.reason:
            parts.append(self.reason)
        plural = "s" if self.attempts != 1 else ""
        return f"Batch job {self.job_name} ({self.job_id}) failed after {self.attempts} attempt{plural}: " + "; ".join(
            parts
        )


@dataclass
class Follower:
    """Polls one execution; :meth:`poll` returns the lines that are new since the last poll.

    Args:
        aws: clients.
        stack: the stack (job queue, log group, region for console links).
        execution_arn: the execution to follow.
        log_lines: last lines of a failed job's log to show (0: none).
    """

    aws: Aws
    stack: Stack
    execution_arn: str
    log_lines: int = DEFAULT_LOG_LINES
    execution: Execution | None = None
    run_uri: str | None = None
    _events_seen: int = 0
    _entered: dict[str, datetime] = field(default_factory=dict)
    _failed_states: set[str] = field(default_factory=set)
    _current: str | None = None
    _map_run: str | None = None
    _map_runs: dict[str, str] = field(default_factory=dict)
    _map_counts: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _jobs_reported: set[str] = field(default_factory=set)

    @property
    def sfn(self) -> Any:
        return self.aws.client("stepfunctions")

    def poll(self) -> list[str]:
        """Read the execution once; the lines that say what happened since the last poll."""
        self.execution = describe(self.aws, self.execution_arn)
        if self.run_uri is None:
            self.run_uri = self.execution.run_uri(self.stack)
        with aws_errors(f"reading the history of {self.execution.name}"):
            events = []
            for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=self.execution_arn):
                events += page["events"]
        lines: list[str] = []
        ending: list[str] = []
        for event in events[self._events_seen :]:
            # How the run ended comes last, after the shard counts and failed jobs of this poll.
            (ending if event["type"].startswith("Execution") else lines).extend(self._event(event))
        self._events_seen = len(events)
        lines += self._map_progress()
        lines += self._failed_jobs()
        return lines + ending

    @property
    def done(self) -> bool:
        return self.execution is not None and self.execution.status in TERMINAL

    # ---------------------------------------------------------------------------------------------

    def _event(self, event: dict[str, Any]) -> list[str]:
        kind: str = event["type"]
        at: datetime = event["timestamp"]
        stamp = f"{at:%H:%M:%S}"
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self._entered[name] = at
            self._current = name
            return [f"{stamp}  ▶ {name}"]
        if kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            name = details["name"]
            if name in self._failed_states:
                return []
            took = (at - self._entered[name]).total_seconds() if name in self._entered else 0.0
            return [f"{stamp}  ✓ {name} ({duration(took)}){self._exit_note(name, details.get('output'))}"]
        if kind == "MapRunStarted":
            self._map_run = event["mapRunStartedEventDetails"]["mapRunArn"]
            self._map_runs[self._map_run] = self._current or "Map"
            return []
        # A Map Run that ended: its final counts now, before the state's exit or failure.
        final_counts = self._map_line(self._map_run) if kind.startswith("MapRun") and self._map_run else []
        if kind == "MapRunFailed":
            details = event.get("mapRunFailedEventDetails", {})
            return final_counts + self._failure(stamp, self._current, details.get("error"), details.get("cause"))
        if kind.startswith("MapRun"):
            return final_counts
        if kind.endswith("Failed") and kind != "ExecutionFailed" and not kind.endswith("StateFailed"):
            # TaskFailed, LambdaFunctionFailed, ...: the details key is the event type's, camelCase.
            details = event.get(kind[0].lower() + kind[1:] + "EventDetails", {})
            return self._failure(stamp, self._current, details.get("error"), details.get("cause"))
        if kind.endswith("TimedOut") and kind != "ExecutionTimedOut":
            details = event.get(kind[0].lower() + kind[1:] + "EventDetails", {})
            return self._failure(stamp, self._current, details.get("error", "States.Timeout"), details.get("cause"))
        if kind == "ExecutionSucceeded":
            # The event carries the run's output; the execution described a moment earlier may still
            # have been running, without one (seen under load: the line then lacked its counts).
            details = event.get("executionSucceededEventDetails", {})
            note = self._result_note(details.get("output"))
            return [f"{stamp}  ✓ run SUCCEEDED in {duration(self._elapsed(at))}{note}"]
        if kind == "ExecutionFailed":
            details = event.get("executionFailedEventDetails", {})
            return [f"{stamp}  ✗ run FAILED after {duration(self._elapsed(at))}: {_error_line(details)}"]
        if kind == "ExecutionTimedOut":
            return [f"{stamp}  ✗ run TIMED OUT after {duration(self._elapsed(at))}"]
        if kind == "ExecutionAborted":
            return [f"{stamp}  ✗ run ABORTED after {duration(self._elapsed(at))} (stopped by hand or by API)"]
        return []

    def _elapsed(self, at: datetime) -> float:
        assert self.execution is not None
        return (at - self.execution.started).total_seconds()

    def _exit_note(self, name: str, output: str | None) -> str:
        """What a state's output says that an operator wants to see (the plan's size)."""
        try:
            value = json.loads(output or "{}")
        except ValueError:
            return ""
        run = value.get("run") if isinstance(value, dict) else None
        if name == "PlanDetection" and isinstance(run, dict) and "shard_count" in run:
            if isinstance(run.get("run_uri"), str):
                self.run_uri = run["run_uri"]
            return f": {run.get('pending_images', '?'):,} images in {run['shard_count']:,} shards"
        classification = value.get("classification") if isinstance(value, dict) else None
        if name == "PlanClassification" and isinstance(classification, dict):
            return f": {classification.get('crops', '?'):,} crops in {classification.get('shard_count', '?'):,} shards"
        return ""

    def _result_note(self, event_output: str | None = None) -> str:
        output = self.execution.output if self.execution else None
        if event_output:
            try:
                parsed = json.loads(event_output)
            except ValueError:
                parsed = None
            output = parsed if isinstance(parsed, dict) else output
        if not output or "images" not in output:
            return ""
        failed = output.get("failed_shards") or []
        note = f": {output['images']:,} images, {output.get('failed_images', 0):,} failed"
        if failed:
            note += f", {len(failed)} failed shard(s): {', '.join(failed[:10])}"
        return note

    def _failure(self, stamp: str, state: str | None, error: str | None, cause: str | None) -> list[str]:
        if state:
            self._failed_states.add(state)
        where = state or "run"
        job = batch_job_in(cause)
        if job is None:
            return [f"{stamp}  ✗ {where} failed: {_error_line({'error': error, 'cause': cause})}"]
        failure = JobFailure.from_job(job, self.stack.batch_log_group)
        first = f"{stamp}  ✗ {where} failed: {error or 'States.TaskFailed'}"
        if failure.job_id in self._jobs_reported:
            # Batch said FAILED (ListJobs) a poll before Step Functions recorded the task's failure.
            return [first, f"            {failure.headline()} (its log is shown above)"]
        self._jobs_reported.add(failure.job_id)
        return [first, *self._job_lines(failure)]

    def _map_progress(self) -> list[str]:
        return [line for arn in self._map_runs for line in self._map_line(arn)]

    def _map_line(self, arn: str) -> list[str]:
        """The Map Run's shards done out of total, when they changed since last shown."""
        state = self._map_runs[arn]
        with aws_errors(f"reading the Map Run of {state}"):
            counts = self.sfn.describe_map_run(mapRunArn=arn)["itemCounts"]
        failed = counts.get("failed", 0) + counts.get("timedOut", 0) + counts.get("aborted", 0)
        key = (counts.get("total", 0), counts.get("succeeded", 0), failed, counts.get("running", 0))
        if self._map_counts.get(arn) == key or key[0] == 0:
            return []  # unchanged, or the shard list is not read yet
        self._map_counts[arn] = key
        total, succeeded, failed, running = key
        return [
            f"{datetime.now():%H:%M:%S}    {state}: {succeeded + failed}/{total} shards done"
            f" ({succeeded} succeeded, {failed} failed, {running} running)"
        ]

    def _failed_jobs(self) -> list[str]:
        """Batch jobs of this run that failed for good and were not reported yet."""
        assert self.execution is not None
        batch = self.aws.client("batch")
        since_ms = int(self.execution.started.timestamp() * 1000)
        with aws_errors("listing failed Batch jobs"):
            ids = []
            for page in batch.get_paginator("list_jobs").paginate(
                jobQueue=self.stack.job_queue_arn, jobStatus="FAILED"
            ):
                ids += [
                    job["jobId"]
                    for job in page["jobSummaryList"]
                    if job["jobId"] not in self._jobs_reported and job.get("createdAt", 0) >= since_ms
                ]
            jobs = []
            for start in range(0, len(ids), _DESCRIBE_JOBS_MAX):
                jobs += batch.describe_jobs(jobs=ids[start : start + _DESCRIBE_JOBS_MAX])["jobs"]
        lines = []
        for job in sorted(jobs, key=lambda j: j.get("stoppedAt", 0)):
            if self.run_uri and (job.get("parameters") or {}).get("run_uri") != self.run_uri:
                continue  # another run's job on the same queue
            failure = JobFailure.from_job(job, self.stack.batch_log_group)
            self._jobs_reported.add(failure.job_id)
            stopped = job.get("stoppedAt")
            stamp = f"{datetime.fromtimestamp(stopped / 1000):%H:%M:%S}" if stopped else f"{datetime.now():%H:%M:%S}"
            lines += [f"{stamp}  ✗ {failure.headline()}", *self._job_lines(failure, headline=False)]
        return lines

    def _job_lines(self, failure: JobFailure, *, headline: bool = True) -> list[str]:
        region = self.stack.region
        lines = [f"            {failure.headline()}"] if headline else []
        if failure.log_stream and failure.log_group:
            lines.append(f"            log stream: {failure.log_group} {failure.log_stream}")
            lines.append(f"            {console.log_stream_url(region, failure.log_group, failure.log_stream)}")
            lines += [f"            | {line}" for line in self._log_tail(failure.log_group, failure.log_stream)]
        else:
            lines.append(f"            no log stream (the container never started): {failure.status_reason}")
        lines.append(f"            {console.batch_job_url(region, failure.job_id)}")
        return lines

    def _log_tail(self, group: str, stream: str) -> list[str]:
        if self.log_lines <= 0:
            return []
        try:
            events = self.aws.client("logs").get_log_events(
                logGroupName=group, logStreamName=stream, limit=self.log_lines, startFromHead=False
            )["events"]
        except botocore.exceptions.ClientError:
            # Logs expire (LogRetentionDays) or are not readable with these credentials: the link stays.
            return []
        return [event["message"].rstrip() for event in events]


def _error_line(details: dict[str, Any]) -> str:
    error = details.get("error") or "error"
    job = batch_job_in(details.get("cause"))
    if job is not None:
        return f"{error}: {JobFailure.from_job(job, None).headline()}"
    # A Lambda's cause is JSON with a stack trace: show its type and message, as RecordFailure does.
    cause = " ".join(readable_cause(error, details.get("cause")).split())
    if len(cause) > _CAUSE_CHARS:
        cause = cause[:_CAUSE_CHARS] + " …"
    if not cause or cause == error:
        return error
    return cause if cause.startswith(f"{error}:") else f"{error}: {cause}"


def follow(
    follower: Follower,
    emit: Callable[[str], None],
    *,
    poll_s: float = 10.0,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Execution:
    """Poll until the execution ends (or ``timeout_s`` passes), emitting each new line.

    ``poll_s``: 10 s by default, so that watching a long run costs a few thousand API calls a day
    and stays far below the Step Functions and Batch API rate limits.

    Returns:
        The execution as last described (its status says how it ended, or RUNNING on timeout).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        _emit_all(emit, follower.poll())
        if follower.done or (deadline is not None and time.monotonic() >= deadline):
            break
        sleep(poll_s)
    assert follower.execution is not None
    return follower.execution


def _emit_all(emit: Callable[[str], None], lines: Iterable[str]) -> None:
    for line in lines:
        emit(line)
