"""Following one execution as it runs: what ``wildlife watch`` prints.

Each poll reads what the Step Functions console shows (the execution history, the Map Runs'
item counts, read into a ``wildlife.progress.Progress`` as ``wildlife run``'s live view reads
them) and what it does not (the Batch jobs of this run that failed, with their log streams and
last log lines), and returns only what changed since the last poll:

- states entered and left, with how long each took, and what the planning states planned;
- for each Distributed Map, shards done out of the plan's total whenever the counts change;
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
from wildlife_common.records import MaterializeResult

from wildlife.ops import console
from wildlife.ops.aws import Aws, aws_errors
from wildlife.ops.runs import TERMINAL, Execution, describe
from wildlife.ops.stack import Stack
from wildlife.progress import MapStage, Progress, Step, read_progress
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
    _steps_shown: int = 0
    _end_shown: bool = False
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
        progress = read_progress(events, self._describe_map_run)
        self.run_uri = progress.run_uri or self.run_uri
        lines = [line for step in progress.steps[self._steps_shown :] for line in self._step(step, progress)]
        self._steps_shown = len(progress.steps)
        lines += [line for stage in progress.maps.values() for line in self._map_line(stage)]
        lines += self._failed_jobs()
        # How the run ended comes last, after the shard counts and failed jobs of this poll.
        if progress.ended is not None and not self._end_shown:
            self._end_shown = True
            lines += self._ending(progress)
        return lines

    @property
    def done(self) -> bool:
        return self.execution is not None and self.execution.status in TERMINAL

    # ---------------------------------------------------------------------------------------------

    def _describe_map_run(self, arn: str) -> dict[str, Any]:
        with aws_errors(f"reading the Map Run {arn}"):
            return dict(self.sfn.describe_map_run(mapRunArn=arn))

    def _step(self, step: Step, progress: Progress) -> list[str]:
        stamp = f"{step.at:%H:%M:%S}"
        if step.kind == "entered":
            return [f"{stamp}  ▶ {step.state}"]
        if step.kind == "exited":
            note = "" if step.plan is None else f": {step.plan}"
            return [f"{stamp}  ✓ {step.state} ({duration(step.seconds or 0.0)}){note}"]
        if step.kind == "map ended":
            # The Map Run's final counts, before the state's exit or failure.
            return self._map_line(progress.maps[step.state])
        if step.kind == "failed":
            return self._failure(stamp, step.state, step.error, step.cause)
        return []

    def _ending(self, progress: Progress) -> list[str]:
        assert progress.ended is not None
        stamp = f"{progress.ended:%H:%M:%S}"
        took = duration(progress.seconds or 0.0)
        if progress.status == "SUCCEEDED":
            # The event carries the run's output; the execution described a moment earlier may still
            # have been running, without one (seen under load: the line then lacked its counts).
            return [f"{stamp}  ✓ run SUCCEEDED in {took}{self._result_note(progress.output)}"]
        if progress.status == "FAILED":
            details = {"error": progress.error, "cause": progress.cause}
            return [f"{stamp}  ✗ run FAILED after {took}: {_error_line(details)}"]
        if progress.status == "TIMED_OUT":
            return [f"{stamp}  ✗ run TIMED OUT after {took}"]
        return [f"{stamp}  ✗ run ABORTED after {took} (stopped by hand or by API)"]

    def _result_note(self, output: MaterializeResult | None) -> str:
        output = output or (self.execution.output if self.execution else None)
        if not output or "images" not in output:
            return ""
        failed = output.get("failed_shards") or []
        count = output.get("failed_shard_count", len(failed))  # results before the count named them all
        note = f": {output['images']:,} images, {output.get('failed_images', 0):,} failed"
        if failed:
            note += f", {count} failed shard(s): {', '.join(failed[:10])}" + (" …" if count > 10 else "")
        return note

    def _failure(self, stamp: str, where: str, error: str | None, cause: str | None) -> list[str]:
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

    def _map_line(self, stage: MapStage) -> list[str]:
        """The Map's shards done out of the plan's total, when they changed since last shown."""
        key = (stage.succeeded, stage.failed, stage.running)
        if self._map_counts.get(stage.state) == key:
            return []
        self._map_counts[stage.state] = key
        total = "?" if stage.total is None else stage.total
        return [
            f"{datetime.now():%H:%M:%S}    {stage.state}: {stage.done}/{total} {stage.parts} done"
            f" ({stage.succeeded} succeeded, {stage.failed} failed, {stage.running} running)"
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
