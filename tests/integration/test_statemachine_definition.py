"""The state machine definition (statemachine/pipeline.asl.json).

Three kinds of checks, all offline:

* validators: statelint and cfn-lint's Step Functions schema accept the definition;
* structure: the reliability rules of the architecture hold (retriers, catches, tolerated failure,
  small payloads) and every retrier's comment states the arithmetic its numbers give;
* moto: moto's Step Functions interpreter (which the local engine runs) accepts the definition and
  walks the paths that need no Batch job, with canned Lambda results.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "pipeline.asl.json"
BIN = Path(sys.executable).parent

ACCOUNT = "123456789012"  # moto's default account; dummy ARNs in tests only
REGION = "us-east-1"

# Dummy values in the right shapes for every substitution the template provides.
DUMMY_SUBSTITUTIONS = {
    "PlanDetectionFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:plan-detection",
    "PlanClassificationFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:plan-classification",
    "MaterializeFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:materialize",
    "RecordFailureFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:record-failure",
    "JobQueueArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/wildlife",
    "DetectJobDefinitionArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/wildlife-detect:1",
    "ClassifyJobDefinitionArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/wildlife-classify:1",
    "MaterializeJobDefinitionArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/wildlife-materialize:1",
    "LambdaInvoke": "arn:aws:states:::lambda:invoke",
    "BatchSubmitJobSync": "arn:aws:states:::batch:submitJob.sync",
    "S3GetObject": "arn:aws:states:::s3:getObject",
    "S3PutObject": "arn:aws:states:::s3:putObject",
    "PipelineBucketName": "pipeline",
}

STATE_TYPES = {
    "PlanDetection": "Task",
    "AnotherScheduledRunRunning": "Choice",
    "InputToList": "Choice",
    "ListInput": "Map",
    "AssemblePlan": "Task",
    "SkippedOverlappingRun": "Succeed",
    "AnyShardsToDetect": "Choice",
    "DetectShards": "Map",
    "DetectionOnly": "Choice",
    "PlanClassification": "Task",
    "AnyCropsToClassify": "Choice",
    "ClassifyShards": "Map",
    "ChooseMaterializer": "Choice",
    "Materialize": "Task",
    "MaterializeOnBatch": "Task",
    "BatchMaterialized": "Pass",
    "Done": "Succeed",
    "RecordFailure": "Task",
    "RunFailed": "Fail",
    "RunFailedUnrecorded": "Fail",
}
LAMBDA_TASKS = {"PlanDetection", "ListPart", "AssemblePlan", "PlanClassification", "Materialize", "RecordFailure"}
BATCH_TASKS = {"DetectShard", "ClassifyShard", "MaterializeOnBatch"}
# Lambda tasks that read or write the run folder: StorageUnavailable means S3 outlasted their retries.
STORAGE_TASKS = {"PlanDetection", "ListPart", "AssemblePlan", "PlanClassification", "Materialize"}
LAMBDA_TRANSIENT_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
}
BATCH_TRANSIENT_ERRORS = {"Batch.ServerException", "Batch.AWSBatchException", "Batch.TooManyRequestsException"}

# statelint 3.1 predates parts of the Distributed Map; these messages are wrong, per AWS's docs:
STATELINT_FALSE_POSITIVES = [
    # ItemReader.ReaderConfig.InputType (CSV, JSON, JSONL, MANIFEST) is how an S3 ItemReader names its
    # file format: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
    re.compile(r'^Field "InputType" not allowed in State Machine\.States\.\w+\.ItemReader\.ReaderConfig$'),
    # ResultWriter.WriterConfig (OutputType, Transformation): input-output-resultwriter.html. Not used
    # here (moto 5.2.5 rejects it), listed because statelint rejects it too.
    re.compile(r'^Field "WriterConfig" not allowed in State Machine\.States\.\w+\.ResultWriter$'),
    # Label names a Distributed Map's Map Runs and child executions:
    # https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html (Distributed Map
    # state fields). Only accepted on Map states, see _is_known_false_positive.
    re.compile(r'^Field "Label" not allowed in State Machine\.States\.(?P<state>\w+)$'),
]


def substituted_definition_text(substitutions: dict[str, str] | None = None) -> str:
    """The definition with every ``${Name}`` replaced, as Step Functions does at deploy time."""
    values = substitutions or DUMMY_SUBSTITUTIONS
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], ASL_PATH.read_text())


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def all_states(states: dict[str, Any], inside_map: bool = False) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Yield (name, state, inside_map) for every state, including those in Map item processors."""
    for name, state in states.items():
        yield name, state, inside_map
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from all_states(processor["States"], inside_map=True)


def all_keys_and_strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from all_keys_and_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_keys_and_strings(item)
    elif isinstance(node, str):
        yield node


def longest_total_wait(retrier: dict[str, Any]) -> float:
    """Seconds of waiting a retrier can add at most: each wait doubles (BackoffRate) up to MaxDelaySeconds.

    Full jitter draws each wait from 0 to this bound, so the bound is also the worst case.
    """
    interval = retrier.get("IntervalSeconds", 1)
    rate = retrier.get("BackoffRate", 2.0)
    cap = retrier.get("MaxDelaySeconds", float("inf"))
    return sum(min(interval * rate**attempt, cap) for attempt in range(retrier.get("MaxAttempts", 3)))


# --- validators -------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable} (make venv installs it)")
    return str(path)


def _is_known_false_positive(message: str, definition: dict[str, Any]) -> bool:
    for pattern in STATELINT_FALSE_POSITIVES:
        match = pattern.match(message)
        if match:
            state = match.groupdict().get("state")
            return state is None or definition["States"][state]["Type"] == "Map"
    return False


def test_statelint_finds_nothing_but_its_known_false_positives(tmp_path, definition):
    path = tmp_path / "pipeline.json"
    path.write_text(substituted_definition_text())
    result = subprocess.run([_tool("statelint"), str(path)], capture_output=True, text=True, timeout=60)
    messages = [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]
    if result.returncode == 0:
        return
    real = [m for m in messages if not _is_known_false_positive(m, definition)]
    assert not real, "statelint:\n" + result.stdout + result.stderr


def test_statelint_still_catches_a_dangling_next(tmp_path, definition):
    # Guards the filter above: a real error must still come through.
    broken = json.loads(substituted_definition_text())
    broken["States"]["DetectionOnly"]["Default"] = "NoSuchState"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run([_tool("statelint"), str(path)], capture_output=True, text=True, timeout=60)
    messages = [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]
    assert [m for m in messages if not _is_known_false_positive(m, definition)]


@pytest.mark.slow
def test_cfn_lint_step_functions_schema_accepts_the_definition(tmp_path):
    # cfn-lint validates the ASL only when it is embedded in an AWS::StepFunctions::StateMachine; its
    # schema knows the Distributed Map fields statelint rejects.
    names = sorted(set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text())))
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Pipeline": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/pipeline",
                    "Definition": json.loads(ASL_PATH.read_text()),
                    "DefinitionSubstitutions": {n: DUMMY_SUBSTITUTIONS[n] for n in names},
                },
            }
        },
    }
    path = tmp_path / "embedded.json"
    path.write_text(json.dumps(template))
    result = subprocess.run([_tool("cfn-lint"), str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- structure --------------------------------------------------------------------------------


def test_all_named_states_exist_with_their_types(definition):
    states = definition["States"]
    assert definition["StartAt"] == "PlanDetection"
    assert {name: states[name]["Type"] for name in STATE_TYPES if name in states} == STATE_TYPES
    assert set(states) == set(STATE_TYPES)
    inner = {name for name, _, inside in all_states(states) if inside}
    assert inner == {"ListPart", "DetectShard", "ClassifyShard"}


def test_the_run_has_a_timeout_and_a_comment(definition):
    assert definition["TimeoutSeconds"] == 7 * 24 * 3600
    assert "7 days" in definition["Comment"]


def test_arns_come_only_from_substitutions():
    text = ASL_PATH.read_text()
    assert "arn:" not in text
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(DUMMY_SUBSTITUTIONS)


def test_no_construct_moto_or_the_local_engine_cannot_run(definition):
    tokens = set(all_keys_and_strings(definition))
    # JSONata, variables, batching, JSONL/MANIFEST readers and WriterConfig fail in moto 5.2.5.
    for forbidden in ("QueryLanguage", "Assign", "Arguments", "Output", "ItemBatcher", "WriterConfig", "EXPRESS"):
        assert forbidden not in tokens, forbidden
    assert not [s for s in tokens if "&&" in s or "||" in s], "JSONPath filters with && or || do not parse in moto"
    for _, state, _ in all_states(definition["States"]):
        reader = state.get("ItemReader")
        if reader:
            assert reader["ReaderConfig"]["InputType"] == "JSON"


def test_choices_route_as_designed(definition):
    states = definition["States"]

    def routes(name):
        state = states[name]
        return [
            (c["Variable"], c.get("NumericGreaterThan", c.get("BooleanEquals", c.get("IsPresent"))), c["Next"])
            for c in state["Choices"]
        ], state["Default"]

    assert routes("AnotherScheduledRunRunning") == (
        [("$.run.overlapping_run", True, "SkippedOverlappingRun")],
        "InputToList",
    )
    # A new large input is listed in rounds of parallel ranges until AssemblePlan returns the whole plan.
    assert routes("InputToList") == ([("$.run.listing", True, "ListInput")], "AnyShardsToDetect")
    assert states["ListInput"]["Next"] == "AssemblePlan"
    assert states["AssemblePlan"]["Next"] == "InputToList"
    assert routes("AnyShardsToDetect") == ([("$.run.shard_count", 0, "DetectShards")], "DetectionOnly")
    assert routes("DetectionOnly") == ([("$.run.detection_only", True, "ChooseMaterializer")], "PlanClassification")
    assert routes("AnyCropsToClassify") == (
        [("$.classification.shard_count", 0, "ClassifyShards")],
        "ChooseMaterializer",
    )
    assert routes("ChooseMaterializer") == ([("$.run.materialize_on_batch", True, "MaterializeOnBatch")], "Materialize")
    assert states["PlanDetection"]["Next"] == "AnotherScheduledRunRunning"
    assert states["DetectShards"]["Next"] == "DetectionOnly"
    assert states["PlanClassification"]["Next"] == "AnyCropsToClassify"
    assert states["ClassifyShards"]["Next"] == "ChooseMaterializer"
    assert states["Materialize"]["Next"] == "Done"
    assert states["MaterializeOnBatch"]["Next"] == "BatchMaterialized"
    assert states["BatchMaterialized"]["Next"] == "Done"


def test_every_map_is_distributed_with_a_float_failure_tolerance_and_a_catch(definition):
    maps = [(n, s) for n, s, _ in all_states(definition["States"]) if s["Type"] == "Map"]
    assert {n for n, _ in maps} == {"ListInput", "DetectShards", "ClassifyShards"}
    for name, state in maps:
        assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
        if name == "ListInput":
            # Every range must be listed (no failure tolerated: the default), by Lambdas, not GPU jobs.
            assert "ToleratedFailurePercentage" not in state and "ToleratedFailurePercentagePath" not in state
            assert state["MaxConcurrency"] == 40
        else:
            # The share of shards that may fail comes from the run (PlanDetection returns a float).
            assert state["ToleratedFailurePercentagePath"] == "$.run.tolerated_failure_percentage", name
            assert state["MaxConcurrencyPath"] == "$.run.max_concurrency"
        assert state["Catch"] == [
            {
                "Comment": state["Catch"][0]["Comment"],
                "ErrorEquals": ["States.ALL"],
                "ResultPath": "$.error",
                "Next": "RecordFailure",
            }
        ]
        assert state["ItemReader"]["Resource"] == "${S3GetObject}"
        # Children's results go to S3, never into the state (256 KiB), under the expiring map-results/.
        assert state["ResultWriter"]["Resource"] == "${S3PutObject}"
        assert state["ResultWriter"]["Parameters"]["Bucket"] == "${PipelineBucketName}"
        assert state["ResultWriter"]["Parameters"]["Prefix"].startswith("map-results/")
        assert "WriterConfig" not in state["ResultWriter"]  # moto 5.2.5's grammar rejects it
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", state["Label"])


def test_payloads_stay_small(definition):
    states = definition["States"]
    # The Map results (one per shard) are dropped; the children keep only the job id and status.
    for name in ("DetectShards", "ClassifyShards"):
        assert states[name]["ResultPath"] is None
        assert states[name]["ItemSelector"] == {"shard.$": "$$.Map.Item.Value.shard", "run_uri.$": "$.run.run_uri"}
    # A range's lister keeps counts, never its shard list (thousands of shards would pass 256 KiB).
    assert states["ListInput"]["ResultPath"] is None
    assert states["ListInput"]["ItemSelector"] == {"part.$": "$$.Map.Item.Value", "run_uri.$": "$.run.run_uri"}
    list_part = states["ListInput"]["ItemProcessor"]["States"]["ListPart"]
    assert list_part["ResultSelector"] == {"part.$": "$.Payload.part", "shards.$": "$.Payload.shards"}
    assert states["AssemblePlan"]["ResultSelector"] == {"run.$": "$.Payload"}
    for name, state, _ in all_states(states):
        if name in BATCH_TASKS:
            assert state["ResultSelector"] == {"job_id.$": "$.JobId", "status.$": "$.Status"}, name
    assert states["PlanDetection"]["ResultSelector"] == {"run.$": "$.Payload"}
    assert states["PlanClassification"]["ResultPath"] == "$.classification"
    assert set(states["PlanClassification"]["ResultSelector"]) == {"shards.$", "shard_count.$", "crops.$"}
    assert states["Materialize"]["OutputPath"] == "$.Payload"


def test_batch_tasks_pass_string_parameters_and_valid_job_names(definition):
    tasks = {n: s for n, s, _ in all_states(definition["States"]) if n in BATCH_TASKS}
    assert set(tasks) == BATCH_TASKS
    expected = {
        "DetectShard": ("${DetectJobDefinitionArn}", "States.Format('detect-{}', $.shard)", {"run_uri.$", "shard.$"}),
        "ClassifyShard": (
            "${ClassifyJobDefinitionArn}",
            "States.Format('classify-{}', $.shard)",
            {"run_uri.$", "shard.$"},
        ),
        "MaterializeOnBatch": (
            "${MaterializeJobDefinitionArn}",
            "States.Format('materialize-{}', $.run.run_id)",
            {"run_uri.$"},
        ),
    }
    for name, (job_definition, job_name, parameters) in expected.items():
        state = tasks[name]
        assert state["Resource"] == "${BatchSubmitJobSync}"
        assert state["Parameters"]["JobQueue"] == "${JobQueueArn}"
        assert state["Parameters"]["JobDefinition"] == job_definition
        assert state["Parameters"]["JobName.$"] == job_name
        # Every Batch parameter is a path to a string (run_uri, shard ids like "00003").
        assert set(state["Parameters"]["Parameters"]) == parameters


def test_no_retrier_ever_retries_a_failed_job_or_everything(definition):
    for name, state, _ in all_states(definition["States"]):
        for retrier in state.get("Retry", []):
            assert not {"States.ALL", "States.TaskFailed"} & set(retrier["ErrorEquals"]), name


def test_every_retrier_has_full_jitter_a_cap_and_a_comment_with_its_arithmetic(definition):
    retriers = [(n, r) for n, s, _ in all_states(definition["States"]) for r in s.get("Retry", [])]
    assert len(retriers) == len(LAMBDA_TASKS) + len(STORAGE_TASKS) + len(BATCH_TASKS)
    for name, retrier in retriers:
        assert retrier["JitterStrategy"] == "FULL", name
        for field in ("IntervalSeconds", "BackoffRate", "MaxAttempts", "MaxDelaySeconds"):
            assert field in retrier, (name, field)
        assert isinstance(retrier["BackoffRate"], float)
        comment = retrier["Comment"]
        total = longest_total_wait(retrier)
        assert f"= {total:g} s" in comment, f"{name}: the comment should state the {total:g} s worst case"
        assert f"{retrier['MaxAttempts']} retries" in comment, name
        assert f"capped at {retrier['MaxDelaySeconds']} s" in comment, name


def test_lambda_tasks_retry_transient_lambda_errors_and_batch_tasks_transient_batch_errors(definition):
    for name, state, _ in all_states(definition["States"]):
        if name in LAMBDA_TASKS:
            assert state["Resource"] == "${LambdaInvoke}"
            assert re.fullmatch(r"\$\{\w+FunctionArn\}", state["Parameters"]["FunctionName"])
            # The functions that read the run folder also retry S3 trouble their own retries outlasted.
            storage = [{"StorageUnavailable"}] if name in STORAGE_TASKS else []
            assert [set(r["ErrorEquals"]) for r in state["Retry"]] == [LAMBDA_TRANSIENT_ERRORS, *storage], name
        elif name in BATCH_TASKS:
            assert [set(r["ErrorEquals"]) for r in state["Retry"]] == [BATCH_TRANSIENT_ERRORS], name
        else:
            assert state["Type"] != "Task", f"{name} is a Task of an unknown kind"


def test_top_level_tasks_catch_everything_and_shard_tasks_fail_their_child(definition):
    for name, state, inside_map in all_states(definition["States"]):
        if state["Type"] != "Task":
            continue
        if inside_map:
            # A failed shard must fail its child execution so the Map counts it against the tolerance.
            assert "Catch" not in state, name
        elif name == "RecordFailure":
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"]
            assert state["Catch"][0]["ResultPath"] == "$.record_error"
            assert state["Catch"][0]["Next"] == "RunFailedUnrecorded"
        else:
            assert [(c["ErrorEquals"], c["ResultPath"], c["Next"]) for c in state["Catch"]] == [
                (["States.ALL"], "$.error", "RecordFailure")
            ], name


def test_failures_end_with_a_readable_cause_and_keep_the_original_when_recording_fails(definition):
    states = definition["States"]
    record = states["RecordFailure"]
    assert record["Parameters"]["Payload"] == {
        "input.$": "$$.Execution.Input",
        "execution_name.$": "$$.Execution.Name",
        "error.$": "$.error",
    }
    assert record["Next"] == "RunFailed"
    assert (states["RunFailed"]["ErrorPath"], states["RunFailed"]["CausePath"]) == ("$.Error", "$.Cause")
    unrecorded = states["RunFailedUnrecorded"]
    # A Fail state may not raise a reserved "States." name, which the caught error may carry.
    assert (unrecorded["Error"], unrecorded["CausePath"]) == ("RunFailed", "$.error.Cause")


def test_every_state_says_why_in_a_comment(definition):
    for name, state, _ in all_states(definition["States"]):
        assert state.get("Comment"), name


# --- moto -------------------------------------------------------------------------------------


@pytest.fixture
def sfn(monkeypatch):
    """A moto account that executes state machines, with Docker-free Lambda and Batch."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    config = {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": False},
        "batch": {"use_docker": False},
    }
    with moto.mock_aws(config=config):
        yield boto3.client("stepfunctions", region_name=REGION)


def create_pipeline(sfn) -> str:
    return sfn.create_state_machine(
        name="wildlife-pipeline",
        definition=substituted_definition_text(),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/wildlife-pipeline",
        type="STANDARD",
    )["stateMachineArn"]


def queue_lambda_results(*results: dict[str, Any]) -> None:
    """Make moto's Docker-free Lambda return these payloads, one per invocation, in order.

    Uses moto's documented API for its simple Lambda backend (any function, first come first served).
    """
    import requests

    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/lambda-simple/response",
        json={"results": [json.dumps(r) for r in results], "account_id": ACCOUNT, "region": REGION},
        timeout=10,
    )
    assert response.status_code == 201


def wait_for(sfn, execution_arn: str, seconds: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.02)


def entered_states(sfn, execution_arn: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def task_parameters(sfn, execution_arn: str) -> list[dict[str, Any]]:
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    return [
        json.loads(e["taskScheduledEventDetails"]["parameters"]) for e in events if "taskScheduledEventDetails" in e
    ]


CONFIG = {"input": "s3://my-traps/2026/", "detector": "s3://my-models/md_v1000.pt"}


def planned_run(**overrides: Any) -> dict[str, Any]:
    """What PlanDetection returns (records.DetectionPlan)."""
    run = {
        "run_id": "r1",
        "run_uri": "s3://wildlife-pipeline-bucket/runs/r1/",
        "shards": {"bucket": "wildlife-pipeline-bucket", "key": "runs/r1/stage1/shards.json"},
        "shard_count": 0,
        "images": 0,
        "skipped": 12,
        "detection_only": True,
        "max_concurrency": 10,
        "tolerated_failure_percentage": 5.0,
        "materialize_on_batch": False,
    }
    run.update(overrides)
    return run


def test_moto_accepts_the_definition_and_starts_an_execution(sfn):
    # create_state_machine runs moto's ASL parser and static analyser: a construct it cannot run fails here.
    arn = create_pipeline(sfn)
    started = sfn.start_execution(stateMachineArn=arn, name="accepted", input=json.dumps(CONFIG))
    assert started["executionArn"]
    described = wait_for(sfn, started["executionArn"])
    assert entered_states(sfn, started["executionArn"])[0] == "PlanDetection"
    assert described["status"] != "RUNNING"


@pytest.mark.slow
def test_a_run_with_nothing_to_detect_materializes_and_returns_the_summary(sfn):
    summary = {
        "run_id": "r1",
        "run_uri": "s3://wildlife-pipeline-bucket/runs/r1/",
        "summary": "s3://wildlife-pipeline-bucket/runs/r1/final/summary.json",
        "images": 12,
        "failed_images": 0,
        "detections": 3,
        "failed_shards": [],
    }
    queue_lambda_results(planned_run(), summary)
    arn = create_pipeline(sfn)
    execution = sfn.start_execution(stateMachineArn=arn, name="r1", input=json.dumps(CONFIG))["executionArn"]

    described = wait_for(sfn, execution)

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == summary
    assert entered_states(sfn, execution) == [
        "PlanDetection",
        "AnotherScheduledRunRunning",
        "InputToList",
        "AnyShardsToDetect",
        "DetectionOnly",
        "ChooseMaterializer",
        "Materialize",
        "Done",
    ]
    plan, materialize = task_parameters(sfn, execution)
    assert plan["FunctionName"] == DUMMY_SUBSTITUTIONS["PlanDetectionFunctionArn"]
    assert plan["Payload"] == {"config": CONFIG, "execution_name": "r1"}
    assert materialize["FunctionName"] == DUMMY_SUBSTITUTIONS["MaterializeFunctionArn"]
    assert materialize["Payload"] == {"run": planned_run()}


def test_a_run_skipped_for_an_overlapping_one_ends_after_planning(sfn):
    queue_lambda_results({**planned_run(shard_count=0, images=0, skipped=0), "overlapping_run": "last-night"})
    arn = create_pipeline(sfn)
    execution = sfn.start_execution(stateMachineArn=arn, name="tonight", input=json.dumps(CONFIG))["executionArn"]

    described = wait_for(sfn, execution)

    assert described["status"] == "SUCCEEDED", described
    assert entered_states(sfn, execution) == ["PlanDetection", "AnotherScheduledRunRunning", "SkippedOverlappingRun"]
    assert json.loads(described["output"])["run"]["overlapping_run"] == "last-night"


def test_an_unreadable_shard_list_fails_the_run_with_the_recorded_cause(sfn):
    import boto3

    # The shard list PlanDetection names does not exist: the Map's ItemReader fails, the Catch hands
    # the error to RecordFailure, and the run fails with RecordFailure's readable cause.
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="wildlife-pipeline-bucket")
    recorded = {"Error": "ShardListMissing", "Cause": "Run r1: the stage 1 shard list is missing; re-run to re-plan."}
    queue_lambda_results(planned_run(shard_count=2, images=4000, skipped=0), recorded)
    arn = create_pipeline(sfn)
    execution = sfn.start_execution(stateMachineArn=arn, name="r1", input=json.dumps(CONFIG))["executionArn"]

    described = wait_for(sfn, execution)

    assert described["status"] == "FAILED", described
    assert (described["error"], described["cause"]) == (recorded["Error"], recorded["Cause"])
    assert entered_states(sfn, execution)[-3:] == ["DetectShards", "RecordFailure", "RunFailed"]
    record = task_parameters(sfn, execution)[-1]
    assert record["FunctionName"] == DUMMY_SUBSTITUTIONS["RecordFailureFunctionArn"]
    assert record["Payload"]["input"] == CONFIG
    assert record["Payload"]["execution_name"] == "r1"
    assert "Error" in record["Payload"]["error"]
