"""Run the pipeline's real state machine in moto, with Lambdas and Batch jobs run in-process.

moto's Step Functions interpreter (ported from LocalStack) executes an ASL definition when
``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` is active. Five gaps stand
between it and our state machine; this module closes them, and it is the only module of the
project that touches moto's internals. moto is pinned exactly (``PINNED_MOTO_VERSION``) and
``check_moto_internals()`` fails loudly, naming the attribute, when an upgrade moves any of them.

The five patches, all applied by ``LocalAws`` on entry and undone on exit:

1. ``batch:submitJob.sync`` parameter names (upstream moto issue 10076). moto left
   ``StateTaskService._normalise_parameters`` and ``_normalise_response`` as empty stubs, so the
   ASL's ``JobName`` reaches botocore unchanged and submitJob fails with ``States.Runtime
   'JobName'``; and the sync poller then cannot find ``JobId`` in the response. LocalStack, where
   the interpreter comes from, maps ASL names onto the botocore shape of the operation. We do the
   same, for the Batch service class only (``StateTaskServiceBatch``), with moto's own
   ``_to_boto_request`` / ``_from_boto_response`` and botocore's Batch service model.
2. Lambda in-process. moto's Lambda needs Docker; with ``"lambda": {"use_docker": False}`` it uses
   ``LambdaSimpleBackend``, whose ``invoke`` echoes the payload. We replace ``invoke`` so that the
   function of a name calls the Python handler registered for that name. An exception becomes a
   Lambda function error (the ``X-Amz-Function-Error: Unhandled`` header, a payload of
   ``errorMessage`` / ``errorType`` / ``stackTrace``), which the interpreter turns into a task
   failure whose error name is ``errorType``: Retry and Catch match it as in AWS.
3. Batch jobs run by a local runner. With ``"batch": {"use_docker": False}`` moto's
   ``BatchSimpleBackend._mark_job_as_finished`` marks every job SUCCEEDED at once. We replace it so
   that a registered runner does the work on a worker thread: it gets the job with its command's
   ``Ref::name`` placeholders filled in (moto does not fill them without Docker), and the job
   definition's RetryStrategy (attempts, evaluateOnExit) is honoured, with every attempt recorded
   as Batch records it. A failed job reaches the state machine as ``States.TaskFailed`` with the
   job description as the Cause, as in AWS.
4. Distributed Map failure tolerance. moto 5.2.5 parses ``ToleratedFailurePercentage`` and
   ``ToleratedFailureCount`` but ignores them ("currently have no effect", it logs): a failed item
   becomes a ``null`` result and the Map succeeds whatever fails. AWS fails the Map Run with
   ``States.ExceedToleratedFailureThreshold`` once failures exceed the tolerance (0 by default). We
   wrap ``DistributedIterationComponent._map_run`` to apply the tolerance, from moto's own item
   counters, when the items are done (AWS stops a Map Run as soon as it is exceeded; here the
   remaining items still run). A threshold of 0 next to a positive other one counts as not
   declared (moto does not tell the two apart); with both at 0, any failure fails the Map Run.

5. Batch bookkeeping across threads. moto's Batch backend keeps jobs in a plain dict that
   ``submit_job`` adds to and ``describe_jobs`` / ``list_jobs`` iterate; with several Map
   iterations submitting and polling at once (``batch_concurrency`` > 1) an iteration can fail with
   ``States.Runtime 'dictionary changed size during iteration'``, which AWS never raises. We
   serialize those three methods with one lock (each is quick: jobs run on the runner's threads).
   ``BatchSimpleBackend`` runs only ``submit_job`` itself and forwards every other call to the plain
   ``BatchBackend`` (its ``__getattribute__``), so the lock goes on ``BatchSimpleBackend.submit_job``
   and on ``BatchBackend.describe_jobs`` / ``list_jobs``.

A Fail state may not raise an error named ``States.*`` (the spec reserves the prefix; moto's
``CustomErrorName`` enforces it): RecordFailure renames such errors (``failures.run_error_name``).

Also known about moto 5.2.5 and not patched here: variables and JSONata fail (moto issue 10105);
JSONPath filters with ``&&`` / ``||`` do not parse (moto issue 10078).

Timing: moto really sleeps for Retry intervals and Wait states. ``shorten_waits`` rewrites a
definition so that each retry waits at most one second (the ASL minimum) and Wait states do not
wait; use it in tests, never on the deployed definition.

Example::

    with LocalAws() as aws:
        plan_arn = aws.register_lambda("plan", plan_handler)
        arns = aws.register_batch(job_queues=["JobQueue"], job_definitions={"Detect": detect_props})
        aws.set_batch_runner(run_gpu_task)
        machine = aws.create_state_machine("pipeline", definition)
        execution = aws.client("stepfunctions").start_execution(stateMachineArn=machine, input="{}")
        result = aws.wait_for_execution(execution["executionArn"])
"""

from __future__ import annotations

import copy
import functools
import inspect
import io
import json
import logging
import re
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast, overload

import boto3
import botocore.session
import moto
from botocore import xform_name
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from moto import mock_aws
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.batch.exceptions import ClientException
from moto.batch.models import BatchBackend, Job, JobDefinition, JobQueue
from moto.batch_simple.models import BatchSimpleBackend
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (
    MapRunRecord,
    ProgressCounter,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_batch,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

LOG = logging.getLogger(__name__)

PINNED_MOTO_VERSION = "5.2.5"
"""The moto release these hooks were written and tested against (pyproject pins it exactly)."""

DEFAULT_REGION = "us-east-1"

_StateTaskService = state_task_service.StateTaskService
_StateTaskServiceBatch = state_task_service_batch.StateTaskServiceBatch

# AWS's statusReason for a container that ran and stopped, whatever its exit code.
_CONTAINER_EXITED = "Essential container in task exited"
# AWS Batch limits: RetryStrategy.attempts is 1 to 10, with at most 5 evaluateOnExit rules.
_MAX_ATTEMPTS = 10
_MAX_EXIT_RULES = 5


# --------------------------------------------------------------------------------------------
# What handlers and the Batch runner see
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalLambdaContext:
    """The Lambda context object a handler receives, with the attributes Powertools reads."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline_monotonic: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout."""
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


LambdaHandler = Callable[[Any, LocalLambdaContext], Any]
"""``handler(event, context) -> result``; the result must be JSON-serialisable."""


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


class MotoInternalsChanged(RuntimeError):
    """The installed moto no longer has an attribute, or a signature, that these hooks replace or use."""


# --------------------------------------------------------------------------------------------
# Fast tests: cap Retry intervals and Wait states
# --------------------------------------------------------------------------------------------


@overload
def shorten_waits(definition: str, *, max_retry_delay_s: int = ..., max_wait_s: int = ...) -> str: ...
@overload
def shorten_waits(
    definition: Mapping[str, Any], *, max_retry_delay_s: int = ..., max_wait_s: int = ...
) -> dict[str, Any]: ...
def shorten_waits(
    definition: str | Mapping[str, Any], *, max_retry_delay_s: int = 1, max_wait_s: int = 0
) -> str | dict[str, Any]:
    """Return a copy of an ASL definition whose retries and Wait states are short, for tests.

    moto sleeps for real: a Retry with IntervalSeconds 5 and BackoffRate 2 waits 5, 10, 20 s. This
    caps every Retry rule's ``IntervalSeconds`` and ``MaxDelaySeconds`` (moto applies MaxDelaySeconds
    after the backoff, so each retry waits at most ``max_retry_delay_s``), and every Wait state at
    ``max_wait_s`` seconds (``SecondsPath``, ``Timestamp`` and ``TimestampPath`` become ``Seconds``).
    The number of attempts, the error names and everything else are unchanged. Nested states (Map
    ``ItemProcessor`` / ``Iterator``, Parallel ``Branches``) are rewritten too.

    Args:
        definition: the ASL, as a JSON string or a dict (not modified).
        max_retry_delay_s: the longest wait before a retry; at least 1, the smallest value the ASL allows.
        max_wait_s: the longest wait of a Wait state; 0 makes Wait states pass at once.

    Returns:
        The rewritten definition, of the type given (a JSON string or a dict).
    """
    if max_retry_delay_s < 1:
        raise ValueError("max_retry_delay_s must be at least 1: the ASL's IntervalSeconds and MaxDelaySeconds are >= 1")
    document = json.loads(definition) if isinstance(definition, str) else copy.deepcopy(dict(definition))
    _shorten_states(document.get("States", {}), max_retry_delay_s, max_wait_s)
    return json.dumps(document) if isinstance(definition, str) else document


def _shorten_states(states: dict[str, Any], max_retry_delay_s: int, max_wait_s: int) -> None:
    for state in states.values():
        for rule in state.get("Retry", []):
            rule["IntervalSeconds"] = min(rule.get("IntervalSeconds", 1), max_retry_delay_s)
            rule["MaxDelaySeconds"] = min(rule.get("MaxDelaySeconds", max_retry_delay_s), max_retry_delay_s)
        if state.get("Type") == "Wait":
            seconds = state.get("Seconds", max_wait_s)
            for key in ("SecondsPath", "Timestamp", "TimestampPath"):
                state.pop(key, None)
            state["Seconds"] = min(seconds, max_wait_s)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                _shorten_states(state[key].get("States", {}), max_retry_delay_s, max_wait_s)
        for branch in state.get("Branches", []):
            _shorten_states(branch.get("States", {}), max_retry_delay_s, max_wait_s)


# --------------------------------------------------------------------------------------------
# Patch 1: ASL parameter names <-> botocore shapes for the Batch service (moto issue 10076)
# --------------------------------------------------------------------------------------------


@functools.cache
def _operation_model(service: str, action: str) -> OperationModel:
    """botocore's model of one operation; ``action`` in snake case, e.g. ``submit_job``."""
    model = botocore.session.get_session().get_service_model(service)
    names = {xform_name(name): name for name in model.operation_names}
    if action not in names:
        raise RuntimeError(f"botocore's {service} model has no operation {action!r}")
    return model.operation_model(names[action])


def _batch_normalise_parameters(
    self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    """ASL names (``JobName``) to botocore's (``jobName``), in place, by the operation's input shape."""
    operation = _operation_model(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _batch_normalise_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    """botocore names (``jobId``) to the ASL's (``JobId``), in place, by the operation's output shape."""
    operation = _operation_model(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)


# --------------------------------------------------------------------------------------------
# Patch 2: Lambda invoke calls a registered Python handler
# --------------------------------------------------------------------------------------------


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _lambda_invoke(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes:
    """Replacement of ``LambdaSimpleBackend.invoke``: call the handler registered for the function."""
    function: LambdaFunction = self.get_function(function_name, qualifier)  # raises moto's 404 when missing
    if _header(headers, "X-Amz-Invocation-Type") == "DryRun":
        return b""
    local = _require_active()
    handler = local._lambda_handlers.get(function.function_name)
    request_id = str(uuid.uuid4())
    if handler is None:
        # The error Lambda itself reports for a function whose handler cannot be found.
        payload: Any = {
            "errorMessage": f"No local handler registered for function {function.function_name!r}",
            "errorType": "Runtime.HandlerNotFound",
            "requestId": request_id,
            "stackTrace": [],
        }
        response_headers["x-amz-function-error"] = "Unhandled"
    else:
        text = body.decode() if isinstance(body, bytes) else body
        event = json.loads(text) if text else {}
        context = LocalLambdaContext(
            function_name=function.function_name,
            invoked_function_arn=f"arn:aws:lambda:{self.region_name}:{self.account_id}:function:{function.function_name}",
            memory_limit_in_mb=int(function.memory_size),
            aws_request_id=request_id,
            deadline_monotonic=time.monotonic() + float(function.timeout),
            log_group_name=f"/aws/lambda/{function.function_name}",
        )
        try:
            payload = handler(event, context)
        except Exception as error:
            # The payload and header of an unhandled exception in Lambda's Python runtime.
            LOG.info("local Lambda %s raised %s: %s", function.function_name, type(error).__name__, error)
            payload = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": request_id,
                # Without this function's own frame: Lambda shows the handler's frames only.
                "stackTrace": traceback.format_list(traceback.extract_tb(error.__traceback__)[1:]),
            }
            response_headers["x-amz-function-error"] = "Unhandled"
    try:
        encoded = json.dumps(payload).encode()
    except (TypeError, ValueError) as error:
        # What Lambda's Python runtime reports for a result it cannot serialise.
        encoded = json.dumps(
            {"errorMessage": f"Unable to marshal response: {error}", "errorType": "Runtime.MarshalError"}
        ).encode()
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["Content-Length"] = str(len(encoded))
    return encoded


# --------------------------------------------------------------------------------------------
# Patch 3: Batch jobs run by a local runner, with the job definition's RetryStrategy
# --------------------------------------------------------------------------------------------


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


def _check_retry_strategy(strategy: Mapping[str, Any], where: str) -> None:
    """Reject what AWS Batch rejects, so a template mistake shows up locally."""
    attempts = strategy.get("attempts", 1)
    if not 1 <= attempts <= _MAX_ATTEMPTS:
        raise ValueError(f"{where}: RetryStrategy.Attempts must be 1 to {_MAX_ATTEMPTS}, got {attempts}")
    rules = strategy.get("evaluateOnExit", [])
    if len(rules) > _MAX_EXIT_RULES:
        raise ValueError(f"{where}: at most {_MAX_EXIT_RULES} EvaluateOnExit rules, got {len(rules)}")
    for rule in rules:
        if str(rule.get("action", "")).upper() not in ("RETRY", "EXIT"):
            raise ValueError(f"{where}: EvaluateOnExit Action must be RETRY or EXIT, got {rule.get('action')!r}")
        for key in ("onStatusReason", "onReason", "onExitCode"):
            if "*" in rule.get(key, "")[:-1]:
                raise ValueError(f"{where}: EvaluateOnExit {key} {rule[key]!r} may only end with '*'")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _LocalBatch:
    """The runner, the concurrency limit and the worker threads of one LocalAws."""

    concurrency: int
    runner: BatchRunner | None = None
    slots: threading.BoundedSemaphore = field(init=False)
    threads: list[threading.Thread] = field(default_factory=list)

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
            with self.slots:
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


def _mark_job_as_finished(self: BatchSimpleBackend, include_start_attempt: bool, job: Job) -> None:
    """Replacement of ``BatchSimpleBackend._mark_job_as_finished``: hand the job to the local runner.

    Called by moto's ``submit_job`` once the job exists; it registers the job as moto's version
    does, and returns at once, as SubmitJob does: the job runs on a worker thread while the state
    machine's ``.sync`` poller calls DescribeJobs.
    """
    if "size" in job.array_properties or "index" in job.array_properties:
        # Not used by the pipeline; refusing is better than moto's parent-succeeds-at-once.
        raise ClientException("array jobs are not supported by the local Batch runner (wildlife.engine.moto_hooks)")
    local = _require_active()
    self.backend._jobs[job.job_id] = job
    job.job_started_at = datetime.now()
    job.log_stream_name = job._stream_name
    local._batch.start(job)


# --------------------------------------------------------------------------------------------
# Patch 4: a Distributed Map Run fails when its failures exceed the tolerance
# --------------------------------------------------------------------------------------------

_ORIGINAL_MAP_RUN = DistributedIterationComponent.__dict__["_map_run"]

# --------------------------------------------------------------------------------------------
# Patch 5: Batch's job dict, used from several threads
# --------------------------------------------------------------------------------------------

_BATCH_JOBS_LOCK = threading.RLock()
# (class, method): submit_job is BatchSimpleBackend's own; the readers are forwarded to BatchBackend.
_BATCH_SERIALIZED: tuple[tuple[type, str], ...] = (
    (BatchSimpleBackend, "submit_job"),
    (BatchBackend, "describe_jobs"),
    (BatchBackend, "list_jobs"),
)


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` run under the Batch jobs lock (patch 5)."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _BATCH_JOBS_LOCK:
            return method(self, *args, **kwargs)

    return locked


def exceeds_tolerance(failed: int, total: int, tolerated_count: int, tolerated_percentage: float) -> bool:
    """Whether a Map Run with ``failed`` of ``total`` items failed exceeds its tolerated failures.

    A threshold of 0 beside a positive other threshold counts as not declared; both 0 (the default)
    tolerate no failure.
    """
    if failed == 0:
        return False
    if tolerated_count == 0 and tolerated_percentage == 0:
        return True
    over_count = tolerated_count > 0 and failed > tolerated_count
    over_percentage = tolerated_percentage > 0 and failed * 100 > tolerated_percentage * total
    return over_count or over_percentage


def _map_run_with_tolerance(self: DistributedIterationComponent, env: Any, eval_input: Any) -> None:
    """Replacement of ``DistributedIterationComponent._map_run``: moto's, then the tolerance check."""
    _ORIGINAL_MAP_RUN(self, env=env, eval_input=eval_input)
    record: MapRunRecord = eval_input.map_run_record
    failed = record.item_counter.failed.get() + record.item_counter.timed_out.get()
    total = record.item_counter.total.get()
    count, percentage = record.tolerated_failure_count, record.tolerated_failure_percentage
    if not exceeds_tolerance(failed, total, count, percentage):
        return
    env.stack.pop()  # the item results moto's _map_run pushed
    error = StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name()
    cause = (
        f"The specified tolerated failure threshold was exceeded: {failed} of {total} items failed "
        f"(ToleratedFailureCount {count}, ToleratedFailurePercentage {percentage})"
    )
    raise FailureEventException(
        FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
            event_type=HistoryEventType.MapRunFailed,
            # moto's EventDetails is a TypedDict of every kind of details; an event has one of them.
            event_details=cast(
                EventDetails, {"mapRunFailedEventDetails": MapRunFailedEventDetails(error=error, cause=cause)}
            ),
        )
    )


# --------------------------------------------------------------------------------------------
# CloudFormation-style properties to Batch API arguments
# --------------------------------------------------------------------------------------------


def _to_api(value: Any, shape: Shape, where: str) -> Any:
    """Map CloudFormation's PascalCase keys onto an API shape's member names, recursively.

    Maps (``Parameters``, ``Tags``, ``Options``) keep their keys; string numbers become numbers.
    """
    if (
        isinstance(value, dict)
        and len(value) == 1
        and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::"))
    ):
        raise ValueError(f"{where}: unresolved CloudFormation intrinsic {value!r}; resolve it before registering")
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        members = {name.lower(): name for name in shape.members}
        converted = {}
        for key, item in value.items():
            if key.lower() not in members:
                raise ValueError(f"{where}.{key}: not a field of Batch's {shape.name}")
            name = members[key.lower()]
            converted[name] = _to_api(item, shape.members[name], f"{where}.{key}")
        return converted
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_to_api(item, shape.member, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {key: _to_api(item, shape.value, f"{where}.{key}") for key, item in value.items()}
    if shape.type_name in ("integer", "long") and isinstance(value, str):
        return int(value)
    if shape.type_name == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value


# --------------------------------------------------------------------------------------------
# The guard against a moto upgrade
# --------------------------------------------------------------------------------------------

# (owner, attribute, parameter names) of every moto callable that is replaced or called.
_SIGNATURES: list[tuple[type, str, list[str]]] = [
    (_StateTaskService, "_normalise_parameters", ["self", "parameters", "boto_service_name", "service_action_name"]),
    (_StateTaskService, "_normalise_response", ["self", "response", "boto_service_name", "service_action_name"]),
    (_StateTaskService, "_to_boto_request", ["self", "parameters", "structure_shape"]),
    (_StateTaskService, "_from_boto_response", ["self", "response", "structure_shape"]),
    (_StateTaskService, "_get_boto_service_name", ["self", "boto_service_name"]),
    (_StateTaskService, "_get_boto_service_action", ["self", "service_action_name"]),
    (LambdaSimpleBackend, "invoke", ["self", "function_name", "qualifier", "body", "headers", "response_headers"]),
    (LambdaBackend, "get_function", ["self", "function_name_or_arn", "qualifier"]),
    (BatchSimpleBackend, "_mark_job_as_finished", ["self", "include_start_attempt", "job"]),
    (Job, "_mark_stopped", ["self", "success"]),
    (DistributedIterationComponent, "_map_run", ["self", "env", "eval_input"]),
]
# (class, instance attributes it must assign) that the hooks read or write.
_ATTRIBUTES: list[tuple[type, list[str]]] = [
    (
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
    (JobDefinition, ["name", "arn", "parameters", "container_properties", "retry_strategy", "timeout"]),
    (JobQueue, ["name"]),
    (BatchBackend, ["_jobs"]),
    (LambdaFunction, ["function_name", "memory_size", "timeout"]),
    (MapRunRecord, ["item_counter", "tolerated_failure_count", "tolerated_failure_percentage"]),
    (ProgressCounter, ["failed", "timed_out", "total"]),
]


def check_moto_internals() -> None:
    """Fail loudly when the installed moto differs from what these hooks were written against.

    Checks the version pin, the signature of every moto method replaced or called, the instance
    attributes read or written, and that moto still routes ``_mark_job_as_finished`` through
    ``BatchSimpleBackend`` and still leaves the Batch service's normalisation empty (issue 10076).

    Raises:
        MotoInternalsChanged: listing every difference found.
        RuntimeError: called while a LocalAws is active (it would see the patches, not moto).
    """
    if _active is not None:
        raise RuntimeError("call check_moto_internals() outside LocalAws: inside, the patches replace moto's methods")
    problems = []
    if moto.__version__ != PINNED_MOTO_VERSION:
        problems.append(f"moto is {moto.__version__}, the hooks are verified against {PINNED_MOTO_VERSION}")
    for owner, name, expected in _SIGNATURES:
        function = owner.__dict__.get(name) or getattr(owner, name, None)
        if function is None:
            problems.append(f"{owner.__module__}.{owner.__name__}.{name} is missing")
            continue
        found = list(inspect.signature(function).parameters)
        if found != expected:
            problems.append(f"{owner.__module__}.{owner.__name__}.{name}{tuple(found)} was {tuple(expected)}")
    for owner, attributes in _ATTRIBUTES:
        source = inspect.getsource(owner)
        for attribute in attributes:
            if not re.search(rf"self\.{re.escape(attribute)}\b\s*(:[^=\n]+)?=", source):
                problems.append(f"{owner.__module__}.{owner.__name__} no longer sets self.{attribute}")
    if not isinstance(BatchSimpleBackend.__dict__.get("backend"), property):
        problems.append("moto.batch_simple.models.BatchSimpleBackend.backend is no longer a property")
    if '"_mark_job_as_finished"' not in inspect.getsource(BatchSimpleBackend.__getattribute__):
        problems.append(
            "moto.batch_simple.models.BatchSimpleBackend.__getattribute__ no longer routes _mark_job_as_finished"
        )
    status = getattr(ManagedState, "status", None)
    if not isinstance(status, property) or status.fset is None:
        problems.append("moto's ManagedState.status is no longer a settable property (Job.status)")
    for name in ("_normalise_parameters", "_normalise_response"):
        if name in _StateTaskServiceBatch.__dict__:
            problems.append(
                f"StateTaskServiceBatch.{name} now exists: moto may have fixed issue 10076; re-check patch 1"
            )
    probe = {"JobName": "probe"}
    try:
        _StateTaskService._normalise_parameters(None, probe)  # type: ignore[arg-type]
        changed = probe != {"JobName": "probe"}
    except Exception:
        changed = True
    if changed:
        problems.append("StateTaskService._normalise_parameters is no longer empty: moto issue 10076 may be fixed")
    if "tolerated" in inspect.getsource(_ORIGINAL_MAP_RUN):
        problems.append("DistributedIterationComponent._map_run now reads the tolerance: re-check patch 4")
    if not hasattr(StatesErrorNameType, "StatesExceedToleratedFailureThreshold"):
        problems.append("StatesErrorNameType.StatesExceedToleratedFailureThreshold is missing")
    for owner, name in _BATCH_SERIALIZED:
        if name not in owner.__dict__:
            problems.append(f"{owner.__module__}.{owner.__name__}.{name} is missing: re-check patch 5")
    forwarded = inspect.getsource(BatchSimpleBackend.__getattribute__)
    if any(f'"{name}"' in forwarded for owner, name in _BATCH_SERIALIZED if owner is BatchBackend):
        problems.append("BatchSimpleBackend now runs describe_jobs or list_jobs itself: re-check where patch 5 locks")
    if "self._jobs.items()" not in inspect.getsource(BatchSimpleBackend.describe_jobs):
        problems.append("BatchBackend.describe_jobs no longer iterates self._jobs: re-check whether patch 5 is needed")
    if problems:
        raise MotoInternalsChanged(
            f"wildlife/engine/moto_hooks.py was written against moto {PINNED_MOTO_VERSION}; the installed moto "
            f"{moto.__version__} differs:\n  - " + "\n  - ".join(problems)
        )


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------

# moto's ASL parser logs this for every Map with a tolerance; patch 4 makes it untrue.
_PARSER_LOG = logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor")


def _drop_tolerance_warning(record: logging.LogRecord) -> bool:
    return "currently have no effect" not in record.getMessage()


def s3_passthrough_urls(buckets: Iterable[str]) -> list[str]:
    """Regular expressions for moto's passthrough that match every S3 request URL of these buckets.

    Virtual-hosted (``https://b.s3.us-east-1.amazonaws.com/key``) and path-style
    (``https://s3.amazonaws.com/b/key``) addresses, with or without a region in the host name.
    """
    urls = []
    for bucket in buckets:
        name = re.escape(bucket)
        urls.append(rf"https?://{name}\.s3[.-]([a-z0-9-]+\.)?amazonaws\.com(/|$)")
        urls.append(rf"https?://s3([.-][a-z0-9-]+)?\.amazonaws\.com/{name}(/|$)")
    return urls


_active: LocalAws | None = None
_active_lock = threading.Lock()


def _require_active() -> LocalAws:
    if _active is None:
        raise RuntimeError("a moto hook ran outside LocalAws")
    return _active


class _Patch:
    """One class attribute replaced, and put back exactly as it was (inherited or own)."""

    def __init__(self, owner: type, name: str, replacement: Any) -> None:
        self.owner, self.name, self.replacement = owner, name, replacement
        self.had_own = name in owner.__dict__
        self.original = owner.__dict__.get(name)

    def apply(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def undo(self) -> None:
        if self.had_own:
            setattr(self.owner, self.name, self.original)
        else:
            delattr(self.owner, self.name)


class LocalAws:
    """moto with the Step Functions interpreter on, Lambdas calling Python handlers, Batch jobs run locally.

    A context manager: entering checks moto's internals, starts ``mock_aws`` and applies the five
    patches (see the module docstring); leaving stops running executions, waits briefly for Batch
    worker threads, undoes the patches and stops the mock. One LocalAws can be active at a time.

    Args:
        region: the region of every client and resource.
        batch_concurrency: how many Batch job attempts run at once (1: one at a time, the default,
            since a local GPU runs one job well and two badly).
        real_s3_buckets: buckets whose requests go to the real S3 instead of moto (moto's passthrough):
            a local run's input or models in S3. Only clients with real credentials can use them;
            moto replaces the environment's credentials while it runs, so make such a client before
            entering (``wildlife.engine.local`` does, for the shared storage client).
    """

    _JOIN_TIMEOUT_S = 10.0  # how long leaving waits for a Batch runner still running

    def __init__(
        self, *, region: str = DEFAULT_REGION, batch_concurrency: int = 1, real_s3_buckets: Iterable[str] = ()
    ) -> None:
        self.region = region
        self.real_s3_buckets = sorted(set(real_s3_buckets))
        self._lambda_handlers: dict[str, LambdaHandler] = {}
        self._batch = _LocalBatch(concurrency=batch_concurrency)
        self._patches = [
            _Patch(_StateTaskServiceBatch, "_normalise_parameters", _batch_normalise_parameters),
            _Patch(_StateTaskServiceBatch, "_normalise_response", _batch_normalise_response),
            _Patch(LambdaSimpleBackend, "invoke", _lambda_invoke),
            _Patch(BatchSimpleBackend, "_mark_job_as_finished", _mark_job_as_finished),
            _Patch(DistributedIterationComponent, "_map_run", _map_run_with_tolerance),
            *(_Patch(owner, name, _serialized(owner.__dict__[name])) for owner, name in _BATCH_SERIALIZED),
        ]
        self._mock: Any = None
        self._role_arn: str | None = None
        self._compute_environment_arn: str | None = None

    def __enter__(self) -> LocalAws:
        global _active
        check_moto_internals()
        with _active_lock:
            if _active is not None:
                raise RuntimeError("another LocalAws is active; moto's mock is process-wide")
            _active = self
        try:
            self._mock = mock_aws(
                config={
                    "stepfunctions": {"execute_state_machine": True},
                    "lambda": {"use_docker": False},
                    "batch": {"use_docker": False},
                    # moto's defaults, plus the passthrough; "core" is replaced whole, not merged.
                    "core": {
                        "mock_credentials": True,
                        "passthrough": {"urls": s3_passthrough_urls(self.real_s3_buckets), "services": []},
                        "reset_boto3_session": True,
                        "service_whitelist": None,
                    },
                }
            )
            self._mock.start()
            for patch in self._patches:
                patch.apply()
            _PARSER_LOG.addFilter(_drop_tolerance_warning)
        except BaseException:
            self._leave()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._leave()

    def _leave(self) -> None:
        global _active
        try:
            if self._mock is not None:
                try:
                    self._stop_executions()
                except Exception:
                    LOG.warning("could not stop the running executions", exc_info=True)
                deadline = time.monotonic() + self._JOIN_TIMEOUT_S
                for thread in self._batch.threads:
                    thread.join(max(0.0, deadline - time.monotonic()))
                    if thread.is_alive():
                        LOG.warning("local Batch runner %s still running at exit", thread.name)
        finally:
            _PARSER_LOG.removeFilter(_drop_tolerance_warning)
            for patch in reversed(self._patches):
                if getattr(patch.owner, patch.name, None) is patch.replacement:
                    patch.undo()
            if self._mock is not None:
                self._mock.stop()
                self._mock = None
            with _active_lock:
                _active = None

    def _stop_executions(self) -> None:
        sfn = self.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
            for execution in running["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"], cause="LocalAws closed")

    def client(self, service: str) -> Any:
        """A boto3 client of the mocked account, in this LocalAws's region."""
        # boto3-stubs type only literal service names.
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]

    def _role(self) -> str:
        """One IAM role for the Lambdas, the state machine and Batch: moto checks that roles exist."""
        if self._role_arn is None:
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {
                            "Service": ["lambda.amazonaws.com", "states.amazonaws.com", "batch.amazonaws.com"]
                        },
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
            role = self.client("iam").create_role(RoleName="wildlife-local", AssumeRolePolicyDocument=json.dumps(trust))
            self._role_arn = role["Role"]["Arn"]
        return self._role_arn

    def register_lambda(self, name: str, handler: LambdaHandler, *, memory_mb: int = 1024, timeout_s: int = 900) -> str:
        """Create the Lambda function ``name`` whose invocations call ``handler(event, context)``.

        Registering a name again replaces its handler.

        Args:
            name: the function name (the ASL may use its name or ARN).
            handler: called with the decoded event and a ``LocalLambdaContext``; an exception it
                raises becomes a function error named by its class (``errorType``).
            memory_mb: the function's MemorySize, seen as ``context.memory_limit_in_mb``.
            timeout_s: the function's Timeout, seen through ``context.get_remaining_time_in_millis()``.
                It is not enforced.

        Returns:
            The function's ARN.
        """
        self._lambda_handlers[name] = handler
        client = self.client("lambda")
        try:
            return client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        except client.exceptions.ResourceNotFoundException:
            pass
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            # moto stores the code but never runs it: the handler above runs instead.
            zipped.writestr("app.py", "def lambda_handler(event, context):\n    raise NotImplementedError\n")
        created = client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=self._role(),
            Handler="app.lambda_handler",
            Code={"ZipFile": archive.getvalue()},
            MemorySize=memory_mb,
            Timeout=timeout_s,
        )
        return created["FunctionArn"]

    def _compute_environment(self) -> str:
        if self._compute_environment_arn is None:
            created = self.client("batch").create_compute_environment(
                computeEnvironmentName="wildlife-local", type="UNMANAGED", state="ENABLED", serviceRole=self._role()
            )
            self._compute_environment_arn = created["computeEnvironmentArn"]
        return self._compute_environment_arn

    def register_job_queue(self, name: str) -> str:
        """Create a job queue (and, once, the compute environment behind every queue); return its ARN."""
        created = self.client("batch").create_job_queue(
            jobQueueName=name,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": self._compute_environment()}],
        )
        return created["jobQueueArn"]

    def register_job_definition(self, name: str, properties: Mapping[str, Any]) -> str:
        """Register a job definition from the Properties of a CloudFormation ``AWS::Batch::JobDefinition``.

        Keys may be CloudFormation's (``ContainerProperties``, ``RetryStrategy: {Attempts, EvaluateOnExit}``,
        ``Parameters``, ``Timeout``) or the API's; intrinsic functions must already be resolved. The
        RetryStrategy is checked as AWS checks it (1-10 attempts, at most 5 rules, RETRY or EXIT,
        ``*`` only at the end of a pattern).

        Args:
            name: the job definition's name when ``properties`` has no ``JobDefinitionName``.
            properties: the resource's Properties.

        Returns:
            The job definition's ARN (with its revision), which is what ``Ref`` gives in CloudFormation.
        """
        shape = _operation_model("batch", "register_job_definition").input_shape
        assert shape is not None  # botocore's RegisterJobDefinition always has an input
        arguments = _to_api(dict(properties), shape, name)
        arguments.setdefault("jobDefinitionName", name)
        arguments.setdefault("type", "container")
        _check_retry_strategy(arguments.get("retryStrategy", {}), name)
        return self.client("batch").register_job_definition(**arguments)["jobDefinitionArn"]

    def register_batch(
        self, *, job_queues: Iterable[str] = (), job_definitions: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, str]:
        """Create job queues and job definitions at once.

        Args:
            job_queues: queue names (e.g. the template's logical ids).
            job_definitions: name (e.g. logical id) -> CloudFormation Properties; see ``register_job_definition``.

        Returns:
            Each given name -> the ARN of what was created for it, ready for ``DefinitionSubstitutions``.
        """
        arns = {name: self.register_job_queue(name) for name in job_queues}
        for name, properties in (job_definitions or {}).items():
            arns[name] = self.register_job_definition(name, properties)
        return arns

    def set_batch_runner(self, runner: BatchRunner | None, *, concurrency: int | None = None) -> None:
        """Set what runs each Batch job attempt, and optionally how many attempts run at once.

        Args:
            runner: ``runner(job: BatchJob) -> BatchResult``. None makes every job fail with a clear reason.
            concurrency: attempts run at once from now on (attempts already running keep their slot).
        """
        self._batch.runner = runner
        if concurrency is not None:
            self._batch.set_concurrency(concurrency)

    def create_state_machine(self, name: str, definition: str | Mapping[str, Any]) -> str:
        """Create a STANDARD state machine from an ASL string or dict; return its ARN."""
        text = definition if isinstance(definition, str) else json.dumps(definition)
        created = self.client("stepfunctions").create_state_machine(name=name, definition=text, roleArn=self._role())
        return created["stateMachineArn"]

    def start_execution(self, state_machine_arn: str, payload: Any = None, *, name: str | None = None) -> str:
        """Start an execution with a JSON-serialisable input; return its ARN.

        Always sends a name (a random one when none is given): moto 5.2.5 names an unnamed
        execution ``None``, so a second unnamed one fails with ExecutionAlreadyExists and
        ``$$.Execution.Name`` is null.
        """
        started = self.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn,
            name=name or str(uuid.uuid4()),
            input=json.dumps({} if payload is None else payload),
        )
        return started["executionArn"]

    def wait_for_execution(
        self, execution_arn: str, *, timeout_s: float = 60.0, poll_s: float = 0.05
    ) -> dict[str, Any]:
        """Poll DescribeExecution until the execution is no longer RUNNING (moto runs it on a thread).

        Returns:
            The last DescribeExecution response.

        Raises:
            TimeoutError: still RUNNING after ``timeout_s`` seconds.
        """
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout_s} s")
            time.sleep(poll_s)
