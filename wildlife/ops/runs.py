"""Runs on a deployed stack: start one, find one, list the recent ones, read its run folder.

A run is a Step Functions execution of the stack's state machine. Its name is the run id unless
the run config names another ``run_id`` (a resumed run: the execution name must be new, the run
id stays). Its folder is ``<output>/runs/<run_id>/`` (wildlife_common.layout), ``output``
being the pipeline bucket unless the config says otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import botocore.exceptions
from wildlife_common import speciesnet, storage
from wildlife_common.config import parse_config
from wildlife_common.errors import ConfigError
from wildlife_common.layout import RunLayout
from wildlife_common.records import MaterializeResult
from wildlife_common.run_folder import planned_images

from wildlife.ops.aws import Aws, AwsError, RunNotFound, aws_errors, error_code
from wildlife.ops.stack import Stack

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")

# Settings that name files the GPU jobs and Lambdas read: in AWS they must be in S3.
_S3_ONLY = ("input", "detector", "classifier", "classifier_labels", "output")


@dataclass(frozen=True)
class Execution:
    """One execution, as DescribeExecution tells it."""

    arn: str
    name: str
    status: str
    started: datetime
    stopped: datetime | None
    input: dict[str, Any]
    output: MaterializeResult | None
    """Materialize's result, once the run succeeded."""
    error: str | None = None
    cause: str | None = None

    @classmethod
    def from_api(cls, described: dict[str, Any]) -> Execution:
        return cls(
            arn=described["executionArn"],
            name=described["name"],
            status=described["status"],
            started=described["startDate"],
            stopped=described.get("stopDate"),
            input=_json_object(described.get("input")) or {},
            output=cast(MaterializeResult | None, _json_object(described.get("output"))),
            error=described.get("error"),
            cause=described.get("cause"),
        )

    @property
    def run_id(self) -> str:
        """The run id: the config's ``run_id``, else the execution name (as PlanDetection decides)."""
        return str(self.input.get("run_id") or self.name)

    def run_uri(self, stack: Stack) -> str:
        """The run folder: from the result when there is one, else from the config and the stack."""
        if self.output and isinstance(self.output.get("run_uri"), str):
            return str(self.output["run_uri"])
        return RunLayout.for_run(str(self.input.get("output") or stack.output_root), self.run_id).run_uri

    @property
    def seconds(self) -> float:
        """How long it ran (so far, while it runs)."""
        end = self.stopped or datetime.now(self.started.tzinfo or UTC)
        return max(0.0, (end - self.started).total_seconds())


def _json_object(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:…:stateMachine:<machine>`` and a name → ``arn:…:execution:<machine>:<name>``."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def describe(aws: Aws, arn: str) -> Execution:
    with aws_errors(f"reading execution {arn}"):
        return Execution.from_api(aws.client("stepfunctions").describe_execution(executionArn=arn))


def find_run(aws: Aws, stack: Stack, run: str) -> Execution:
    """The execution of ``run``: an execution ARN, an execution name, or a run id.

    A run id that is not an execution name (a resumed run's later executions) matches the most
    recent execution whose config names it.

    Raises:
        RunNotFound: none of these.
    """
    sfn = aws.client("stepfunctions")
    arn = run if run.startswith("arn:") else execution_arn(stack.state_machine_arn, run)
    with aws_errors(f"reading run {run}"):
        try:
            return Execution.from_api(sfn.describe_execution(executionArn=arn))
        except botocore.exceptions.ClientError as error:
            if error_code(error) not in ("ExecutionDoesNotExist", "InvalidArn"):
                raise
    if not run.startswith("arn:"):
        for recent in recent_executions(aws, stack, limit=100):
            execution = describe(aws, recent["executionArn"])
            if execution.run_id == run:
                return execution
    raise RunNotFound(f"no run {run} on stack {stack.name} (wildlife status --stack {stack.name} lists recent runs)")


def recent_executions(aws: Aws, stack: Stack, *, limit: int, status: str | None = None) -> list[dict[str, Any]]:
    """The most recent executions, newest first (ListExecutions' order)."""
    arguments: dict[str, Any] = {"stateMachineArn": stack.state_machine_arn, "maxResults": min(limit, 1000)}
    if status:
        arguments["statusFilter"] = status
    with aws_errors("listing runs"):
        executions = aws.client("stepfunctions").list_executions(**arguments)["executions"]
    return list(executions[:limit])


def read_json(aws: Aws, uri: str) -> Any | None:
    """A JSON file of a run folder in S3, or None when it does not exist (yet)."""
    if not storage.is_s3(uri):
        return storage.read_json_if_exists(uri)
    bucket, key = storage.split_s3(uri)
    with aws_errors(f"reading {uri}"):
        try:
            body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except botocore.exceptions.ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
    return json.loads(body)


def check_config(raw: Any, stack: Stack, *, run_id: str) -> dict[str, Any]:
    """Validate a run config for this stack before anything starts.

    Checks it as PlanDetection will (:func:`parse_config`), and that every file it names is in S3,
    since the GPU jobs and Lambdas cannot read this machine's folders.

    Returns:
        The config as it will be sent (what the user gave, plus ``run_id`` when resuming).

    Raises:
        ConfigError: one line naming the key.
    """
    raw = speciesnet.with_folder_detector(raw)  # a SpeciesNet folder alone brings its detector
    config = parse_config(raw, default_run_id=run_id, default_output=stack.output_root)
    for key in _S3_ONLY:
        value = getattr(config, key)
        if value is not None and not storage.is_s3(value):
            raise ConfigError(
                f"{key} must be an s3:// URI on a deployed stack (its jobs cannot read this machine), got {value!r}"
            )
    return dict(raw)


def new_run_id(now: datetime | None = None) -> str:
    """A run id from the time, e.g. ``run-20261129-031500`` (sorts by start time)."""
    return (now or datetime.now(UTC)).strftime("run-%Y%m%d-%H%M%S")


@dataclass(frozen=True)
class Started:
    """A run just started."""

    execution_arn: str
    execution_name: str
    run_id: str
    run_uri: str
    resumed: bool
    already_running: bool = False


def start_run(aws: Aws, stack: Stack, raw_config: dict[str, Any], *, run_id: str | None = None) -> Started:
    """Validate the config, then start an execution.

    The execution is named after the run id. When that run id ran before and ended (execution
    names stay taken for 90 days), the run is resumed: a new execution named ``<run_id>-<time>``
    with ``run_id`` in its config, so that it finds the same run folder and does only unfinished
    shards. When it is still running, nothing is started.

    Raises:
        ConfigError: the config is not valid for this stack.
        AwsError: StartExecution failed.
    """
    run_id = str(raw_config.get("run_id") or run_id or new_run_id())
    payload = check_config(raw_config, stack, run_id=run_id)
    output_root = str(payload.get("output") or stack.output_root)
    run_uri = RunLayout.for_run(output_root, run_id).run_uri
    sfn = aws.client("stepfunctions")
    name = run_id
    try:
        earlier = describe(aws, execution_arn(stack.state_machine_arn, run_id))
    except AwsError:
        earlier = None  # ExecutionDoesNotExist: a new run
    if earlier is not None and earlier.status == "RUNNING":
        return Started(earlier.arn, earlier.name, run_id, run_uri, resumed=False, already_running=True)
    if earlier is not None:
        name = _resume_name(run_id)
        payload = {**payload, "run_id": run_id}
    with aws_errors(f"starting run {run_id}"):
        try:
            started = sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=name, input=json.dumps(payload))
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "ExecutionAlreadyExists":
                raise
            # Started by someone else since we looked: resume under a fresh name.
            name = _resume_name(run_id)
            payload = {**payload, "run_id": run_id}
            started = sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=name, input=json.dumps(payload))
    return Started(started["executionArn"], name, run_id, run_uri, resumed=name != run_id)


def _resume_name(run_id: str) -> str:
    """A new execution name for a run id that ran before (80 characters at most, as names allow)."""
    return f"{run_id[:64]}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@dataclass(frozen=True)
class RunRow:
    """One line of ``wildlife status``."""

    execution: Execution
    images: int | None
    failed_images: int | None


def list_runs(aws: Aws, stack: Stack, *, limit: int = 20, status: str | None = None) -> list[RunRow]:
    """Recent runs with their image counts: from the result when done, else from ``run.json``."""
    return [
        run_row(aws, stack, describe(aws, item["executionArn"]))
        for item in recent_executions(aws, stack, limit=limit, status=status)
    ]


def run_row(aws: Aws, stack: Stack, execution: Execution) -> RunRow:
    """One run's line: images from its result when it has one, else from ``run.json`` once planned."""
    if execution.output and "images" in execution.output:
        return RunRow(execution, execution.output.get("images"), execution.output.get("failed_images"))
    record = read_json(aws, RunLayout(execution.run_uri(stack)).run_json)
    return RunRow(execution, planned_images(record), None)
