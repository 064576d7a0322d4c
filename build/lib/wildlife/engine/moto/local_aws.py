"""``LocalAws``: moto with the Step Functions interpreter on and the five patches applied.

One LocalAws can be active at a time: moto's mock and the patches are process-wide.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

import boto3
from moto import mock_aws

from wildlife.engine.moto import batch_lock, batch_parameters, batch_runner, lambda_invoke, map_tolerance
from wildlife.engine.moto.batch_runner import BatchRunner, LocalBatch
from wildlife.engine.moto.guard import check_moto_internals
from wildlife.engine.moto.lambda_invoke import LambdaHandler
from wildlife.engine.moto.patching import Patch

LOG = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"

_active: LocalAws | None = None
_active_lock = threading.Lock()


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


class LocalAws:
    """moto with the Step Functions interpreter on, Lambdas calling Python handlers, Batch jobs run locally.

    A context manager: entering checks moto's internals, starts ``mock_aws`` and applies the five
    patches (the package docstring lists them); leaving stops running executions, waits briefly for
    Batch worker threads, undoes the patches and stops the mock. One LocalAws can be active at a time.

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
        self._batch = LocalBatch(concurrency=batch_concurrency)
        self._patches: list[Patch] = []
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
            self._patches = [
                *batch_parameters.patches(),
                *lambda_invoke.patches(self._lambda_handlers),
                *batch_runner.patches(self._batch),
                *map_tolerance.patches(),
                *batch_lock.patches(),
            ]
            for patch in self._patches:
                patch.apply()
            map_tolerance.PARSER_LOG.addFilter(map_tolerance.drop_tolerance_warning)
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
            map_tolerance.PARSER_LOG.removeFilter(map_tolerance.drop_tolerance_warning)
            for patch in reversed(self._patches):
                patch.undo()
            self._patches = []
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

    def role_arn(self) -> str:
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
            Role=self.role_arn(),
            Handler="app.lambda_handler",
            Code={"ZipFile": archive.getvalue()},
            MemorySize=memory_mb,
            Timeout=timeout_s,
        )
        return created["FunctionArn"]

    def _compute_environment(self) -> str:
        if self._compute_environment_arn is None:
            created = self.client("batch").create_compute_environment(
                computeEnvironmentName="wildlife-local", type="UNMANAGED", state="ENABLED", serviceRole=self.role_arn()
            )
            self._compute_environment_arn = created["computeEnvironmentArn"]
        return self._compute_environment_arn

    def register_job_queue(self, name: str, *, capacity_wait_s: float | None = None) -> str:
        """Create a job queue (and, once, the compute environment behind every queue); return its ARN.

        Args:
            capacity_wait_s: cancel a job that waits longer than this for a free slot, with the reason
                AWS Batch gives when a queue's JobStateTimeLimitAction for CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY
                cancels it (moto keeps no time limits). None: jobs wait for ever.
        """
        if capacity_wait_s is not None:
            self._batch.capacity_waits[name] = capacity_wait_s
        created = self.client("batch").create_job_queue(
            jobQueueName=name,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": self._compute_environment()}],
        )
        return created["jobQueueArn"]

    def register_job_definition(self, arguments: Mapping[str, Any]) -> str:
        """Register a job definition from RegisterJobDefinition's arguments; return its ARN (with its revision).

        ``wildlife.engine.template.job_definition_arguments`` makes them from a template's resource.
        """
        return self.client("batch").register_job_definition(**arguments)["jobDefinitionArn"]

    def register_batch(
        self,
        *,
        job_queues: Iterable[str] = (),
        job_definitions: Mapping[str, Mapping[str, Any]] | None = None,
        capacity_waits: Mapping[str, float] | None = None,
    ) -> dict[str, str]:
        """Create job queues and job definitions at once.

        Args:
            job_queues: queue names (e.g. the template's logical ids).
            job_definitions: name (e.g. logical id) -> RegisterJobDefinition's arguments.
            capacity_waits: queue name -> its ``capacity_wait_s`` (see ``register_job_queue``).

        Returns:
            Each given name -> the ARN of what was created for it, ready for ``DefinitionSubstitutions``.
        """
        waits = capacity_waits or {}
        arns = {name: self.register_job_queue(name, capacity_wait_s=waits.get(name)) for name in job_queues}
        for name, properties in (job_definitions or {}).items():
            arns[name] = self.register_job_definition(properties)
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
        created = self.client("stepfunctions").create_state_machine(name=name, definition=text, roleArn=self.role_arn())
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
