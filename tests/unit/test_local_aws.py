"""The moto patches of the local engine: each ASL feature the pipeline relies on, in a tiny state machine.

Every test builds its own definition (never the pipeline's) and runs it in moto's interpreter
through ``LocalAws``. Executions run on a moto thread; ``LocalAws.wait_for_execution`` polls them.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.batch_simple.models import BatchSimpleBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
    StateTaskServiceBatch,
)

from wildlife.engine.moto import (
    BatchJob,
    BatchResult,
    LocalAws,
    MotoInternalsChanged,
    check_moto_internals,
    exceeds_tolerance,
    fill_parameters,
    retry_action,
    shorten_waits,
)
from wildlife.engine.template import TemplateError, job_definition_arguments

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SUBMIT_JOB_SYNC = "arn:aws:states:::batch:submitJob.sync"
COMMAND = ["detect", "--run", "Ref::run_uri", "--shard", "Ref::shard"]
# The retry rules of the template's job definitions: retry a lost host, never a failure of the job itself.
TEMPLATE_RULES = [{"OnStatusReason": "Host EC2*", "Action": "RETRY"}, {"OnReason": "*", "Action": "EXIT"}]


class ConfigError(Exception):
    """A handler's own error type, as the pipeline's Lambdas raise them."""


class TransientError(Exception):
    """An error the state machine retries."""


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with LocalAws() as local:
        yield local


def run(aws: LocalAws, definition: dict[str, Any], payload: Any = None) -> dict[str, Any]:
    """Create a state machine with short waits, run it to the end, return DescribeExecution."""
    machine = aws.create_state_machine(f"test-{uuid.uuid4().hex[:8]}", shorten_waits(definition))
    return aws.wait_for_execution(aws.start_execution(machine, payload), timeout_s=20)


def history(aws: LocalAws, execution: dict[str, Any]) -> list[dict[str, Any]]:
    return aws.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])["events"]


def lambda_state(function: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function, "Payload.$": "$"},
        "ResultSelector": {"result.$": "$.Payload"},
        **extra,
    }


def job_definition(attempts: int = 1, rules: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A job definition written as CloudFormation Properties, as template.yaml has them."""
    return job_definition_arguments("Detect", job_properties(attempts, rules))


def job_properties(attempts: int = 1, rules: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "Type": "container",
        "Parameters": {"run_uri": "", "shard": ""},
        "RetryStrategy": {"Attempts": attempts, "EvaluateOnExit": rules or []},
        "ContainerProperties": {
            "Image": "wildlife-gpu:local",
            "Command": COMMAND,
            # moto insists on vCPUs and memory; the values are never used locally.
            "ResourceRequirements": [{"Type": "VCPU", "Value": "1"}, {"Type": "MEMORY", "Value": "512"}],
            "Environment": [{"Name": "LOG_LEVEL", "Value": "INFO"}],
        },
    }


def register_detect(aws: LocalAws, attempts: int = 1, rules: list[dict[str, str]] | None = None) -> dict[str, str]:
    return aws.register_batch(job_queues=["Queue"], job_definitions={"Detect": job_definition(attempts, rules)})


def submit_job_state(arns: dict[str, str], shard: Any = "00001", **extra: Any) -> dict[str, Any]:
    shard_binding = {"shard.$": "$.shard"} if shard is None else {"shard": shard}
    return {
        "Type": "Task",
        "Resource": SUBMIT_JOB_SYNC,
        "Parameters": {
            "JobName": "detect",
            "JobQueue": arns["Queue"],
            "JobDefinition": arns["Detect"],
            "Parameters": {"run_uri": "s3://pipeline/runs/r1", **shard_binding},
        },
        **extra,
    }


class Runner:
    """A Batch runner that records each attempt and returns scripted results (the last one repeats)."""

    def __init__(self, *results: BatchResult | int) -> None:
        self.results = list(results) or [0]
        self.jobs: list[BatchJob] = []

    def __call__(self, job: BatchJob) -> BatchResult | int:
        self.jobs.append(job)
        return self.results[min(len(self.jobs), len(self.results)) - 1]


# ------------------------------------------------------------------------------------------------
# Lambda tasks
# ------------------------------------------------------------------------------------------------


def test_a_lambda_task_returns_what_the_python_handler_returns(aws: LocalAws) -> None:
    def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "seen": event,
            "function": context.function_name,
            "memory": context.memory_limit_in_mb,
            "time_left": context.get_remaining_time_in_millis() > 0,
        }

    aws.register_lambda("plan", plan, memory_mb=512)
    execution = run(
        aws, {"StartAt": "Plan", "States": {"Plan": lambda_state("plan", End=True)}}, {"input": "s3://traps/"}
    )

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {
        "result": {"seen": {"input": "s3://traps/"}, "function": "plan", "memory": 512, "time_left": True}
    }


def test_a_handler_error_is_caught_by_its_type_name_with_a_lambda_style_cause(aws: LocalAws) -> None:
    def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise ConfigError("unknown setting 'shards'")

    aws.register_lambda("plan", plan)
    definition = {
        "StartAt": "Plan",
        "States": {
            "Plan": lambda_state(
                "plan",
                Catch=[{"ErrorEquals": ["ConfigError"], "ResultPath": "$.error", "Next": "Caught"}],
                End=True,
            ),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    execution = run(aws, definition)

    assert execution["status"] == "SUCCEEDED"
    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "ConfigError"
    cause = json.loads(error["Cause"])
    assert cause["errorType"] == "ConfigError"
    assert cause["errorMessage"] == "unknown setting 'shards'"
    assert any("raise ConfigError" in line for line in cause["stackTrace"])
    failed = [e for e in history(aws, execution) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["ConfigError"]


@pytest.mark.slow
def test_a_lambda_retry_on_a_custom_error_retries_then_succeeds(aws: LocalAws) -> None:
    calls = []

    def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event)
        if len(calls) < 3:
            raise TransientError("try again")
        return {"ok": True}

    aws.register_lambda("flaky", flaky)
    # 30 s doubling would wait 30 + 60 s; shorten_waits (applied by run) caps each wait at 1 s.
    retry = [{"ErrorEquals": ["TransientError"], "IntervalSeconds": 30, "BackoffRate": 2.0, "MaxAttempts": 3}]
    started = time.monotonic()
    execution = run(aws, {"StartAt": "Flaky", "States": {"Flaky": lambda_state("flaky", Retry=retry, End=True)}})

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"result": {"ok": True}}
    assert len(calls) == 3
    assert time.monotonic() - started < 10  # two retries of at most 1 s each, plus moto's own time


# ------------------------------------------------------------------------------------------------
# Batch submitJob.sync tasks
# ------------------------------------------------------------------------------------------------


def test_submit_job_sync_runs_the_runner_with_the_command_filled_in(aws: LocalAws) -> None:
    arns = register_detect(aws)
    runner = Runner(0)
    aws.set_batch_runner(runner)
    execution = run(aws, {"StartAt": "Detect", "States": {"Detect": submit_job_state(arns, End=True)}})

    assert execution["status"] == "SUCCEEDED"
    (job,) = runner.jobs
    assert job.command == ["detect", "--run", "s3://pipeline/runs/r1", "--shard", "00001"]
    assert job.parameters == {"run_uri": "s3://pipeline/runs/r1", "shard": "00001"}
    assert job.job_definition == "Detect" and job.job_definition_arn == arns["Detect"]
    assert job.image == "wildlife-gpu:local"
    assert job.attempt == 1 and job.max_attempts == 1
    assert job.environment["LOG_LEVEL"] == "INFO"
    assert job.environment["MANAGED_BY_AWS"] == "STARTED_BY_STEP_FUNCTIONS"
    assert job.environment["AWS_BATCH_JOB_ID"] == job.job_id
    output = json.loads(execution["output"])
    assert output["JobId"] == job.job_id
    assert output["Status"] == "SUCCEEDED"
    assert output["Attempts"][0]["Container"]["ExitCode"] == 0


@pytest.mark.slow
def test_a_failed_job_is_states_task_failed_with_the_job_as_the_cause(aws: LocalAws) -> None:
    arns = register_detect(aws)
    aws.set_batch_runner(Runner(BatchResult(exit_code=2, reason="weights missing")))
    catch = [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}]
    definition = {
        "StartAt": "Detect",
        "States": {"Detect": submit_job_state(arns, Catch=catch, End=True), "Caught": {"Type": "Pass", "End": True}},
    }
    execution = run(aws, definition)

    assert execution["status"] == "SUCCEEDED"
    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "States.TaskFailed"
    job = json.loads(error["Cause"])
    assert job["Status"] == "FAILED"
    assert job["StatusReason"] == "Essential container in task exited"
    assert job["Attempts"][0]["Container"] == {
        "ExitCode": 2,
        "Reason": "weights missing",
        "LogStreamName": job["Attempts"][0]["Container"]["LogStreamName"],
        "NetworkInterfaces": [],
    }


@pytest.mark.parametrize(
    ("attempts", "rules", "results", "calls", "status"),
    [
        # A Spot-like loss of the host is retried by the RETRY rule and the second attempt succeeds.
        pytest.param(3, TEMPLATE_RULES, [BatchResult.host_lost("i-0abc"), 0], 2, "SUCCEEDED", id="host-lost-retried"),
        # The job's own failure (exit code 1) matches EXIT on "*": not retried although 3 attempts are allowed.
        pytest.param(3, TEMPLATE_RULES, [1], 1, "FAILED", id="exit-code-not-retried"),
        # No rule matches an exit code of 1, and Batch then retries while attempts remain.
        pytest.param(2, TEMPLATE_RULES[:1], [1], 2, "FAILED", id="no-rule-matches-retried"),
        pytest.param(3, [{"OnExitCode": "13*", "Action": "RETRY"}], [137, 0], 2, "SUCCEEDED", id="exit-code-glob"),
    ],
)
@pytest.mark.slow
def test_the_job_definitions_retry_strategy_decides_which_attempts_are_retried(
    aws: LocalAws, attempts: int, rules: list[dict[str, str]], results: list[BatchResult | int], calls: int, status: str
) -> None:
    arns = register_detect(aws, attempts, rules)
    runner = Runner(*results)
    aws.set_batch_runner(runner)
    execution = run(aws, {"StartAt": "Detect", "States": {"Detect": submit_job_state(arns, End=True)}})

    assert [job.attempt for job in runner.jobs] == list(range(1, calls + 1))
    assert [job.environment["AWS_BATCH_JOB_ATTEMPT"] for job in runner.jobs] == [str(n) for n in range(1, calls + 1)]
    assert execution["status"] == status
    job = json.loads(execution["output"]) if status == "SUCCEEDED" else json.loads(execution["cause"])
    assert len(job["Attempts"]) == calls
    if status == "FAILED":
        assert execution["error"] == "States.TaskFailed"
        assert job["Status"] == "FAILED"
    if results[0] == BatchResult.host_lost("i-0abc"):
        assert job["Attempts"][0]["StatusReason"] == "Host EC2 (instance i-0abc) terminated."
        assert "ExitCode" not in job["Attempts"][0]["Container"]


@pytest.mark.slow
def test_a_distributed_map_of_batch_jobs_tolerates_failures_up_to_its_percentage(aws: LocalAws) -> None:
    arns = register_detect(aws)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="pipeline")
    shards = [{"shard": f"{n:05d}"} for n in range(4)]
    s3.put_object(Bucket="pipeline", Key="runs/r1/stage1/shards.json", Body=json.dumps(shards))
    definition = {
        "StartAt": "DetectShards",
        "States": {
            "DetectShards": {
                "Type": "Map",
                "Label": "DetectShards",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": "pipeline", "Key": "runs/r1/stage1/shards.json"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Detect",
                    "States": {
                        "Detect": submit_job_state(arns, shard=None, ResultSelector={"s.$": "$.Status"}, End=True)
                    },
                },
                # A float: moto 5.2.5's grammar rejects an integer here.
                "ToleratedFailurePercentage": 50.0,
                "End": True,
            }
        },
    }
    sfn = aws.client("stepfunctions")
    for failing, status in ((1, "SUCCEEDED"), (3, "FAILED")):

        def fail_first(job: BatchJob, failing: int = failing) -> int:
            return 1 if int(job.parameters["shard"]) < failing else 0

        aws.set_batch_runner(fail_first)
        execution = run(aws, definition)

        assert execution["status"] == status, failing
        if status == "FAILED":
            assert execution["error"] == "States.ExceedToleratedFailureThreshold"
            assert "3 of 4 items failed" in execution["cause"]
        # What a CLI shows as "shards done out of total": the Map Run's item counts.
        (map_run,) = sfn.list_map_runs(executionArn=execution["executionArn"])["mapRuns"]
        described = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])
        assert described["status"] == status
        counts = {key: described["itemCounts"][key] for key in ("total", "succeeded", "failed", "running")}
        assert counts == {"total": 4, "succeeded": 4 - failing, "failed": failing, "running": 0}


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [1, 4])
def test_batch_jobs_run_one_at_a_time_unless_more_are_allowed(aws: LocalAws, concurrency: int) -> None:
    arns = register_detect(aws)
    in_flight, most = [0], [0]
    changed = threading.Condition()

    def slow(job: BatchJob) -> int:
        with changed:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            changed.notify_all()
            # Each job stays until two have run at once: soon where that is allowed (an inline Map
            # submits its four jobs together), however slow the machine. Where it is not, the wait
            # ends after 0.2 s, time enough for a wrongly started second job to show.
            changed.wait_for(lambda: most[0] > 1, timeout=0.2 if concurrency == 1 else 30)
            in_flight[0] -= 1
        return 0

    aws.set_batch_runner(slow, concurrency=concurrency)
    four = {
        "Type": "Map",
        "ItemsPath": "$.shards",
        "Iterator": {"StartAt": "Detect", "States": {"Detect": submit_job_state(arns, shard=None, End=True)}},
        "End": True,
    }
    execution = run(
        aws, {"StartAt": "Shards", "States": {"Shards": four}}, {"shards": [{"shard": f"{n:05d}"} for n in range(4)]}
    )

    assert execution["status"] == "SUCCEEDED"
    assert (most[0] == 1) if concurrency == 1 else (most[0] > 1)


@pytest.fixture
def tiny_thread_switches() -> Iterator[None]:
    """Switch threads every 10 µs instead of every 5 ms, so that a race shows up in a second, not by luck."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.slow
def test_batch_submits_and_reads_from_many_threads_never_see_the_job_dict_change(
    aws: LocalAws, tiny_thread_switches: None
) -> None:
    # What a Distributed Map of many small shards does: iterations submit jobs while their .sync
    # pollers describe them. Without the lock on BatchBackend's readers this raised "dictionary
    # changed size during iteration" in every run of 3 x 100 submits.
    arns = register_detect(aws)
    aws.set_batch_runner(lambda job: 0, concurrency=8)
    batch = aws.client("batch")
    errors: list[str] = []
    submitted: list[str] = []
    submitting = True

    def submit() -> None:
        for _ in range(25):
            try:
                job = batch.submit_job(jobName="detect", jobQueue=arns["Queue"], jobDefinition=arns["Detect"])
                submitted.append(job["jobId"])
            except Exception as error:
                errors.append(repr(error))

    def read() -> None:
        while submitting:
            try:
                batch.describe_jobs(jobs=["not-a-job"])
                batch.list_jobs(jobQueue=arns["Queue"])
            except Exception as error:
                errors.append(repr(error))

    readers = [threading.Thread(target=read) for _ in range(4)]
    submitters = [threading.Thread(target=submit) for _ in range(4)]
    for thread in readers + submitters:
        thread.start()
    for thread in submitters:
        thread.join()
    submitting = False
    for thread in readers:
        thread.join()

    assert errors == []
    assert len(batch.describe_jobs(jobs=submitted)["jobs"]) == len(submitted) == 100


@pytest.mark.slow
def test_a_map_of_many_small_batch_jobs_succeeds_every_time(aws: LocalAws) -> None:
    # The pipeline's shape at its most concurrent: 120 shards, 40 iterations at once, 8 jobs running.
    # Before the readers were locked, 1 run in 6 failed with States.Runtime.
    arns = register_detect(aws)
    aws.set_batch_runner(lambda job: 0, concurrency=8)
    many = {
        "Type": "Map",
        "ItemsPath": "$.shards",
        "MaxConcurrency": 40,
        "Iterator": {"StartAt": "Detect", "States": {"Detect": submit_job_state(arns, shard=None, End=True)}},
        "End": True,
    }
    for _ in range(3):
        shards = {"shards": [{"shard": f"{n:05d}"} for n in range(120)]}
        execution = run(aws, {"StartAt": "Shards", "States": {"Shards": many}}, shards)
        assert execution["status"] == "SUCCEEDED", execution.get("cause")


@pytest.mark.slow
def test_a_result_lambda_cannot_serialise_is_a_marshal_error(aws: LocalAws) -> None:
    aws.register_lambda("plan", lambda event, context: {"when": object()})
    execution = run(aws, {"StartAt": "Plan", "States": {"Plan": lambda_state("plan", End=True)}})

    assert execution["status"] == "FAILED"
    assert execution["error"] == "Runtime.MarshalError"


# ------------------------------------------------------------------------------------------------
# The pieces on their own, and the guard against a moto upgrade
# ------------------------------------------------------------------------------------------------


def test_fill_parameters_replaces_each_placeholder_and_leaves_unknown_ones() -> None:
    assert fill_parameters(["x", "Ref::a", "--k=Ref::ab", "Ref::zz"], {"a": "1", "ab": "2"}) == [
        "x",
        "1",
        "--k=2",
        "Ref::zz",
    ]


def test_retry_action_takes_the_first_matching_rule_and_retries_when_none_matches() -> None:
    lost = BatchResult.host_lost()
    rules = [{"onStatusReason": "Host EC2*", "action": "retry"}, {"onReason": "*", "action": "EXIT"}]
    assert retry_action(rules, lost) == "RETRY"
    assert retry_action(rules, BatchResult(exit_code=1, status_reason="Essential container in task exited")) == "EXIT"
    assert retry_action([{"onExitCode": "1", "action": "EXIT"}], BatchResult(exit_code=12)) == "RETRY"
    assert retry_action([], BatchResult(exit_code=1)) == "RETRY"


def test_exceeds_tolerance_applies_the_declared_thresholds() -> None:
    assert not exceeds_tolerance(0, 4, 0, 0.0)
    assert exceeds_tolerance(1, 4, 0, 0.0)  # nothing declared: no failure tolerated
    assert not exceeds_tolerance(2, 4, 0, 50.0)  # 50% is not more than 50%
    assert exceeds_tolerance(3, 4, 0, 50.0)
    assert not exceeds_tolerance(2, 4, 2, 0.0) and exceeds_tolerance(3, 4, 2, 0.0)


def test_shorten_waits_caps_retries_and_waits_in_nested_states_and_keeps_the_rest() -> None:
    retry = {"ErrorEquals": ["X"], "IntervalSeconds": 30, "BackoffRate": 2.0, "MaxAttempts": 8}
    definition: dict[str, Any] = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Map"},
            "Map": {"Type": "Map", "ItemProcessor": {"StartAt": "T", "States": {"T": {"Retry": [retry]}}}, "End": True},
        },
    }
    short = shorten_waits(definition)
    assert short["States"]["Wait"] == {"Type": "Wait", "Seconds": 0, "Next": "Map"}
    assert short["States"]["Map"]["ItemProcessor"]["States"]["T"]["Retry"] == [
        {**retry, "IntervalSeconds": 1, "MaxDelaySeconds": 1}
    ]
    assert definition["States"]["Wait"]["SecondsPath"] == "$.delay"  # the original is left alone
    assert json.loads(shorten_waits(json.dumps(definition))) == short


def test_job_definition_arguments_reject_what_aws_batch_rejects() -> None:
    with pytest.raises(TemplateError, match="Attempts must be 1 to 10"):
        job_definition(attempts=11)
    with pytest.raises(TemplateError, match="may only end with"):
        job_definition(rules=[{"OnReason": "*Spot*", "Action": "RETRY"}])
    unresolved = job_properties()
    unresolved["ContainerProperties"]["JobRoleArn"] = {"Fn::GetAtt": ["BatchJobRole", "Arn"]}
    with pytest.raises(TemplateError, match="unresolved CloudFormation intrinsic"):
        job_definition_arguments("Detect", unresolved)


def test_check_moto_internals_passes_on_the_pinned_moto() -> None:
    check_moto_internals()


@pytest.mark.slow
def test_check_moto_internals_names_a_hooked_method_whose_signature_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BatchSimpleBackend, "_mark_job_as_finished", lambda self, job: None)
    with pytest.raises(MotoInternalsChanged) as raised:
        check_moto_internals()
    assert "moto.batch_simple.models.BatchSimpleBackend._mark_job_as_finished" in str(raised.value)
    assert "written against moto 5.2.5" in str(raised.value)


def test_leaving_local_aws_undoes_every_patch() -> None:
    before = (
        LambdaSimpleBackend.__dict__["invoke"],
        BatchSimpleBackend.__dict__["_mark_job_as_finished"],
        DistributedIterationComponent.__dict__["_map_run"],
    )
    with LocalAws():
        assert "_normalise_parameters" in StateTaskServiceBatch.__dict__
    assert "_normalise_parameters" not in StateTaskServiceBatch.__dict__
    assert "_normalise_response" not in StateTaskServiceBatch.__dict__
    after = (
        LambdaSimpleBackend.__dict__["invoke"],
        BatchSimpleBackend.__dict__["_mark_job_as_finished"],
        DistributedIterationComponent.__dict__["_map_run"],
    )
    assert after == before
