"""Patch 3: Batch jobs run by a local runner, with the job definition's RetryStrategy.

What moto does: with ``"batch": {"use_docker": False}``, ``BatchSimpleBackend._mark_job_as_finished``
marks every job SUCCEEDED at once, and nothing fills the command's ``Ref::name`` placeholders.

What we do: replace it so that a runner (a Python callable) does the work on a worker thread: it gets
the job with its command's placeholders filled in, and the job definition's RetryStrategy
(attempts, evaluateOnExit) is honoured, with every attempt recorded as Batch records it. A failed
job reaches the state machine as ``States.TaskFailed`` with the job description as the Cause, as in AWS.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.batch.exceptions import ClientException
from moto.batch.models import BatchBackend, Job, JobDefinition, JobQueue
from moto.batch_simple.models import BatchSimpleBackend
from moto.moto_api._internal.managed_state_model import ManagedState

from wildlife.engine.moto.patching import Patch, attribute_problems, signature_problems

LOG = logging.getLogger(__name__)

# AWS's statusReason for a container that ran and stopped, whatever its exit code.
_CONTAINER_EXITED = "Essential container in task exited"
# What a job queue's JobStateTimeLimitActions says when it cancels a job that waited too long for
# capacity; locally, capacity is a free slot (LocalBatch.concurrency).
CAPACITY_REASON = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
CANCELED_FOR_CAPACITY = f"Canceled by JobStateTimeLimit action due to reason: {CAPACITY_REASON}"


@dataclass(frozen=True)
class BatchJob:
    """One attempt of a Batch job, as the local runner receives it.

    Attributes:
        job_id: the Batch job id (also in ``environment["AWS_BATCH_JOB_ID"]``).
        job_name: the name given to SubmitJob.
        job_queue: the job queue's name.
        job_definition: the job definition's name.
        job_definition_arn: the job definition's ARN, with its revision.
        image: the container image of the job definition (or of the overrides).
        command: the container command with every ``Ref::name`` filled in from ``parameters``.
        environment: the job definition's environment, then the SubmitJob overrides, then the
            variables Batch sets (``AWS_BATCH_JOB_ID``, ``AWS_BATCH_JOB_ATTEMPT``, ``AWS_BATCH_JQ_NAME``).
        parameters: the SubmitJob ``Parameters`` merged over the job definition's defaults.
        attempt: this attempt's number, from 1.
        max_attempts: ``RetryStrategy.attempts`` of the job definition (1 when it has none).
        timeout_s: ``attemptDurationSeconds`` of the job or its definition. Enforcing it is the
            runner's job: the hook cannot stop a Python callable.
    """

    job_id: str
    job_name: str
    job_queue: str
    job_definition: str
    job_definition_arn: str
    image: str | None
    command: list[str]
    environment: dict[str, str]
    parameters: dict[str, str]
    attempt: int
    max_attempts: int
    timeout_s: int | None


@dataclass(frozen=True)
class BatchResult:
    """How one attempt ended: what Batch would record for it and match evaluateOnExit rules against.

    Attributes:
        exit_code: the container's exit code; 0 is success. None when the container never ran to
            an exit (the host was lost, the image could not be pulled).
        status_reason: the attempt's statusReason, e.g. ``"Host EC2 (instance i-0abc) terminated."``.
            When None and the container exited, Batch's ``"Essential container in task exited"``.
        reason: the container's reason, e.g. ``"CannotPullContainerError: ..."``, or ``"OutOfMemoryError..."``.
    """

    exit_code: int | None = 0
    status_reason: str | None = None
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        """Batch counts an attempt as succeeded when its container exited with 0."""
        return self.exit_code == 0

    @classmethod
    def host_lost(cls, instance_id: str = "i-0local") -> BatchResult:
        """An attempt lost with its host, as a Spot interruption ends one in AWS."""
        return cls(exit_code=None, status_reason=f"Host EC2 (instance {instance_id}) terminated.")


BatchRunner = Callable[[BatchJob], "BatchResult | int"]
"""``runner(job) -> BatchResult`` (a bare int is taken as the exit code)."""


_REF = re.compile(r"Ref::([A-Za-z0-9_\-]+)")


def fill_parameters(command: Iterable[str], parameters: Mapping[str, str]) -> list[str]:
    """Replace every ``Ref::name`` in a container command by ``parameters[name]``, as Batch does.

    A placeholder whose name has no parameter is left as it is, as Batch leaves it.
    """
    return [_REF.sub(lambda m: str(parameters.get(m.group(1), m.group(0))), part) for part in command]


def _pattern_matches(pattern: str, value: str | None) -> bool:
    """Batch's evaluateOnExit glob: exact, or a prefix when the pattern ends with ``*``.

    An absent value matches as the empty string, so ``"*"`` matches anything (AWS's examples end
    with ``{"onReason": "*", "action": "EXIT"}`` to stop every other failure from retrying).
    """
    text = value or ""
    return text.startswith(pattern[:-1]) if pattern.endswith("*") else text == pattern


def retry_action(rules: Iterable[Mapping[str, str]], result: BatchResult) -> str:
    """``"RETRY"`` or ``"EXIT"`` for a failed attempt, by a RetryStrategy's evaluateOnExit rules.

    The first rule whose every given condition (onStatusReason, onReason, onExitCode) matches
    decides; when none matches, Batch retries.
    """
    exit_code = None if result.exit_code is None else str(result.exit_code)
    for rule in rules:
        conditions = (
            (rule.get("onStatusReason"), result.status_reason),
            (rule.get("onReason"), result.reason),
            (rule.get("onExitCode"), exit_code),
        )
        if all(pattern is None or _pattern_matches(pattern, value) for pattern, value in conditions):
            return rule["action"].upper()
    return "RETRY"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class LocalBatch:
    """The runner, the concurrency limit and the worker threads of one LocalAws."""

    concurrency: int
    runner: BatchRunner | None = None
    slots: threading.BoundedSemaphore = field(init=False)
    threads: list[threading.Thread] = field(default_factory=list)
    capacity_waits: dict[str, float] = field(default_factory=dict)
    """Queue name -> how long a job may wait RUNNABLE for a slot before the queue cancels it, as a
    JobStateTimeLimitAction for CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY does; no entry: for ever."""

    def __post_init__(self) -> None:
        self.set_concurrency(self.concurrency)

    def set_concurrency(self, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"Batch concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.slots = threading.BoundedSemaphore(concurrency)

    def start(self, job: Job) -> None:
        """Run a submitted job on a worker thread."""
        # Read the environment now, during SubmitJob: moto's DescribeJobs appends to the
        # overrides' environment list each time it describes the job.
        properties = job.job_definition.container_properties or {}
        environment = {e["name"]: e["value"] for e in properties.get("environment", [])}
        environment.update({e["name"]: e["value"] for e in job.container_overrides.get("environment", [])})
        thread = threading.Thread(
            target=self._run_job, args=(job, environment), name=f"local-batch-{job.job_id}", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def _run_job(self, job: Job, environment: dict[str, str]) -> None:
        definition: JobDefinition = job.job_definition
        properties = definition.container_properties or {}
        strategy: dict[str, Any] = dict(definition.retry_strategy or {})
        max_attempts = int(strategy.get("attempts", 1))
        rules: list[dict[str, str]] = strategy.get("evaluateOnExit", [])
        parameters = {**definition.parameters, **job.parameters}
        command = job.container_overrides.get("command") or properties.get("command", [])
        timeout = job.timeout or definition.timeout or {}
        result = BatchResult(exit_code=None, status_reason=job.job_stopped_reason)
        for attempt in range(1, max_attempts + 1):
            if not self.slots.acquire(timeout=self.capacity_waits.get(job.job_queue.name)):
                LOG.info("local Batch job %s: no slot within the queue's time limit, cancelled", job.job_id)
                job.exit_code = None
                job.job_stopped_reason = CANCELED_FOR_CAPACITY
                job._mark_stopped(success=False)
                return
            try:
                if job.stop:  # TerminateJob or CancelJob; job_stopped_reason holds their reason
                    break
                job.status = "RUNNING"
                started_at = _now_ms()
                spec = BatchJob(
                    job_id=job.job_id,
                    job_name=job.job_name,
                    job_queue=job.job_queue.name,
                    job_definition=definition.name,
                    job_definition_arn=definition.arn,
                    image=job.container_overrides.get("image") or properties.get("image"),
                    command=fill_parameters(command, parameters),
                    environment={
                        **environment,
                        "AWS_BATCH_JOB_ID": job.job_id,
                        "AWS_BATCH_JOB_ATTEMPT": str(attempt),
                        "AWS_BATCH_JQ_NAME": job.job_queue.name,
                    },
                    parameters=parameters,
                    attempt=attempt,
                    max_attempts=max_attempts,
                    timeout_s=timeout.get("attemptDurationSeconds"),
                )
                result = self._call_runner(spec)
            finally:
                self.slots.release()
            if result.exit_code is not None and result.status_reason is None:
                result = BatchResult(result.exit_code, _CONTAINER_EXITED, result.reason)
            container: dict[str, Any] = {"logStreamName": job.log_stream_name, "networkInterfaces": []}
            if result.exit_code is not None:
                container["exitCode"] = result.exit_code
            if result.reason is not None:
                container["reason"] = result.reason
            record = {"container": container, "startedAt": started_at, "stoppedAt": _now_ms()}
            if result.status_reason is not None:
                record["statusReason"] = result.status_reason
            job.attempts.append(record)
            job.latest_attempt = record
            if result.succeeded or job.stop or attempt == max_attempts or retry_action(rules, result) == "EXIT":
                break
            LOG.info("local Batch job %s: attempt %d failed (%s), retrying", job.job_id, attempt, result.status_reason)
        if job.stop:
            result = BatchResult(exit_code=None, status_reason=job.job_stopped_reason)
        job.exit_code = result.exit_code
        job.job_stopped_reason = result.status_reason
        job._mark_stopped(success=result.succeeded)

    def _call_runner(self, spec: BatchJob) -> BatchResult:
        if self.runner is None:
            return BatchResult(exit_code=None, status_reason="No local Batch runner is set (LocalAws.set_batch_runner)")
        try:
            result = self.runner(spec)
        except Exception as error:
            LOG.exception("local Batch runner raised on job %s attempt %d", spec.job_id, spec.attempt)
            return BatchResult(exit_code=None, status_reason=f"Local runner raised {type(error).__name__}: {error}")
        if isinstance(result, int) and not isinstance(result, bool):
            return BatchResult(exit_code=result)
        if not isinstance(result, BatchResult):
            return BatchResult(exit_code=None, status_reason=f"Local runner returned {result!r}, not a BatchResult")
        return result


def patches(batch: LocalBatch) -> list[Patch]:
    """Replace ``BatchSimpleBackend._mark_job_as_finished`` by handing each job to ``batch``."""

    def mark_job_as_finished(self: BatchSimpleBackend, include_start_attempt: bool, job: Job) -> None:
        # Called by moto's submit_job once the job exists; registers the job as moto's version
        # does and returns at once, as SubmitJob does: the job runs on a worker thread while the
        # state machine's .sync poller calls DescribeJobs.
        if "size" in job.array_properties or "index" in job.array_properties:
            # Not used by the pipeline; refusing is better than moto's parent-succeeds-at-once.
            raise ClientException("array jobs are not supported by the local Batch runner")
        self.backend._jobs[job.job_id] = job
        job.job_started_at = datetime.now()
        job.log_stream_name = job._stream_name
        batch.start(job)

    return [Patch(BatchSimpleBackend, "_mark_job_as_finished", mark_job_as_finished)]


def check() -> list[str]:
    problems = [
        *signature_problems(BatchSimpleBackend, "_mark_job_as_finished", ["self", "include_start_attempt", "job"]),
        *signature_problems(Job, "_mark_stopped", ["self", "success"]),
        *attribute_problems(
            Job,
            [
                "job_id",
                "job_name",
                "job_definition",
                "job_queue",
                "container_overrides",
                "parameters",
                "timeout",
                "array_properties",
                "attempts",
                "latest_attempt",
                "exit_code",
                "job_stopped_reason",
                "job_started_at",
                "log_stream_name",
                "_stream_name",
                "stop",
            ],
        ),
        *attribute_problems(
            JobDefinition, ["name", "arn", "parameters", "container_properties", "retry_strategy", "timeout"]
        ),
        *attribute_problems(JobQueue, ["name"]),
        *attribute_problems(BatchBackend, ["_jobs"]),
    ]
    if not isinstance(BatchSimpleBackend.__dict__.get("backend"), property):
        problems.append("moto.batch_simple.models.BatchSimpleBackend.backend is no longer a property")
    if '"_mark_job_as_finished"' not in inspect.getsource(BatchSimpleBackend.__getattribute__):
        problems.append(
            "moto.batch_simple.models.BatchSimpleBackend.__getattribute__ no longer routes _mark_job_as_finished"
        )
    status = getattr(ManagedState, "status", None)
    if not isinstance(status, property) or status.fset is None:
        problems.append("moto's ManagedState.status is no longer a settable property (Job.status)")
    return problems
