"""watch follows a real execution (moto's Step Functions interpreter, Batch jobs run locally) to its end.

The state machine here has the deployed one's shape and state names: a plan, a Distributed Map
reading its shard list from S3 with one Batch ``submitJob.sync`` job per shard, a Catch to a
failure state, and a materialize step. The Batch runner writes each job's log lines to CloudWatch
Logs (moto), as the awslogs driver does, so a failed job's log is there to show.
"""

from __future__ import annotations

import json
import re
import threading
import time

import boto3
import pytest

from tests.ops_support import REGION, STACK, create_stack
from wildlife.cli import main
from wildlife.engine.moto import BatchJob, BatchResult, LocalAws
from wildlife.engine.template import job_definition_arguments
from wildlife.ops import stack as outputs
from wildlife.ops.aws import Aws
from wildlife.ops.follow import Follower, batch_job_in, follow
from wildlife.ops.stack import load_stack

# Each test runs the state machine with Batch jobs in moto and follows it: seconds, not milliseconds.
pytestmark = pytest.mark.slow

LOG_GROUP = f"/aws/batch/{STACK}"
RUN_URI = "s3://pipeline/runs/r1/"
SHARDS = ["00000", "00001", "00002"]
DETECT = {
    "Type": "container",
    "Parameters": {"run_uri": "", "shard": ""},
    "ContainerProperties": {
        "Image": "wildlife-gpu",
        "Command": ["detect", "--run", "Ref::run_uri", "--shard", "Ref::shard"],
        "Vcpus": 1,
        "Memory": 512,
        "LogConfiguration": {"LogDriver": "awslogs", "Options": {"awslogs-group": LOG_GROUP}},
    },
}


def definition(queue: str, job_definition: str, *, parent_batch_task: bool = False) -> dict:
    """The pipeline's shape. With ``parent_batch_task``, materialize is a Batch job (MaterializeOnBatch)."""
    batch_params = {"JobQueue": queue, "JobDefinition": job_definition}
    materialize: dict = {
        "Type": "Pass",
        "Parameters": {"run_id": "r1", "run_uri": RUN_URI, "images": 6000, "failed_images": 3, "failed_shards": []},
        "Next": "Done",
    }
    if parent_batch_task:
        materialize = {
            "Type": "Task",
            "Resource": "arn:aws:states:::batch:submitJob.sync",
            "Parameters": {
                "JobName": "materialize-r1",
                **batch_params,
                "Parameters": {"run_uri": RUN_URI, "shard": "materialize"},
            },
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
            "Next": "Done",
        }
    return {
        "StartAt": "PlanDetection",
        "States": {
            "PlanDetection": {
                "Type": "Pass",
                "Parameters": {
                    "run": {
                        "run_id": "r1",
                        "run_uri": RUN_URI,
                        "shard_count": len(SHARDS),
                        "pending_images": 6000,
                        "shards": {"bucket": "pipeline", "key": "runs/r1/stage1/shards.json"},
                    }
                },
                "Next": "DetectShards",
            },
            "DetectShards": {
                "Type": "Map",
                "Label": "DetectShards",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.run.shards.bucket", "Key.$": "$.run.shards.key"},
                },
                "ItemSelector": {"shard.$": "$$.Map.Item.Value.shard", "run_uri.$": "$.run.run_uri"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "DetectShard",
                    "States": {
                        "DetectShard": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::batch:submitJob.sync",
                            "Parameters": {
                                "JobName.$": "States.Format('detect-{}', $.shard)",
                                **batch_params,
                                "Parameters": {"run_uri.$": "$.run_uri", "shard.$": "$.shard"},
                            },
                            "ResultSelector": {"job_id.$": "$.JobId"},
                            "End": True,
                        }
                    },
                },
                # No failure tolerated, so that one failed shard fails the run (as a low tolerance does).
                "ToleratedFailurePercentage": 0.0,
                "ResultPath": None,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
                "Next": "Materialize",
            },
            "Materialize": materialize,
            "Done": {"Type": "Succeed"},
            "RecordFailure": {"Type": "Pass", "Next": "RunFailed"},
            "RunFailed": {"Type": "Fail", "Error": "ShardsFailed", "CausePath": "$.error.Cause"},
        },
    }


class Runner:
    """Runs a Batch job attempt: writes log lines as the job would, fails the shards in ``failing``."""

    def __init__(self, failing: set[str], seconds: float = 0.2, hold: threading.Event | None = None) -> None:
        self.failing = failing
        self.seconds = seconds
        # With ``hold``, every attempt waits for it instead of sleeping, and ``started`` says one is running.
        self.hold = hold
        self.started = threading.Event()

    def __call__(self, job: BatchJob) -> BatchResult:
        stream = boto3.client("batch", region_name=REGION).describe_jobs(jobs=[job.job_id])["jobs"][0]["container"][
            "logStreamName"
        ]
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        shard = job.parameters["shard"]
        lines = [f'{{"event": "shard_started", "shard": "{shard}"}}']
        self.started.set()
        if self.hold is None:
            time.sleep(self.seconds)
        else:
            self.hold.wait(timeout=60)
        if shard in self.failing:
            lines += ["Traceback (most recent call last):", "torch.OutOfMemoryError: CUDA out of memory."]
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
        )
        if shard in self.failing:
            return BatchResult(exit_code=1, reason="OutOfMemoryError: Container killed due to memory usage")
        return BatchResult(exit_code=0)


@pytest.fixture
def local(monkeypatch):
    """LocalAws with the stack's Outputs, a pipeline bucket holding the shard list, and the log group."""
    with LocalAws() as aws:
        arns = aws.register_batch(
            job_queues=["JobQueue"],
            job_definitions={f"{STACK}-detect": job_definition_arguments(f"{STACK}-detect", DETECT)},
        )
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="pipeline")
        s3.put_object(
            Bucket="pipeline", Key="runs/r1/stage1/shards.json", Body=json.dumps([{"shard": s} for s in SHARDS])
        )
        aws.client("logs").create_log_group(logGroupName=LOG_GROUP)
        monkeypatch.setenv("WILDLIFE_STACK", STACK)
        yield aws, arns


def deploy(aws: LocalAws, arns: dict, **kwargs) -> str:
    machine = aws.create_state_machine(
        f"{STACK}-pipeline", definition(arns["JobQueue"], arns[f"{STACK}-detect"], **kwargs)
    )
    create_stack(
        {
            outputs.STATE_MACHINE: machine,
            outputs.BUCKET: "pipeline",
            outputs.JOB_QUEUE: arns["JobQueue"],
            outputs.BATCH_LOG_GROUP: LOG_GROUP,
        }
    )
    return machine


START = ["start", "s3://traps/2026/", "--detector", "s3://pipeline/models/md.pt", "--run-id", "r1"]


def without_times(lines: list[str]) -> list[str]:
    return [re.sub(r"^\d\d:\d\d:\d\d", "hh:mm:ss", line) for line in lines]


def test_watch_follows_a_run_to_its_end_with_shards_done_out_of_total(local, capsys) -> None:
    aws, arns = local
    deploy(aws, arns)
    aws.set_batch_runner(Runner(failing=set()))

    assert main([*START, "--watch", "--interval", "0.05"]) == 0

    lines = without_times(capsys.readouterr().out.splitlines())
    print("\n".join(lines))  # the transcript, as a user sees it (pytest -s)
    states = [line.split()[1:3] for line in lines if re.match("hh:mm:ss  [▶✓]", line)]
    assert states[:6] == [
        ["▶", "PlanDetection"],
        ["✓", "PlanDetection"],
        ["▶", "DetectShards"],
        ["✓", "DetectShards"],
        ["▶", "Materialize"],
        ["✓", "Materialize"],
    ]
    assert any(line.endswith("✓ PlanDetection (0.0 s): 6,000 images in 3 shards") for line in lines)
    progress = [line for line in lines if "shards done" in line]
    assert progress[-1].endswith("DetectShards: 3/3 shards done (3 succeeded, 0 failed, 0 running)")
    # The final count comes before the Map's exit, not after the run's end.
    assert lines.index(progress[-1]) < next(i for i, line in enumerate(lines) if "✓ DetectShards" in line)
    done = [int(re.search(r"(\d)/3 shards", line).group(1)) for line in progress]
    assert done == sorted(done)  # counts only grow
    assert re.search(r"✓ run SUCCEEDED in [\d.]+ s: 6,000 images, 3 failed$", lines[-1])
    assert not any("✗" in line for line in lines)


def test_a_failed_shard_is_shown_with_its_cause_log_stream_and_last_log_lines(local, capsys) -> None:
    aws, arns = local
    deploy(aws, arns)
    aws.set_batch_runner(Runner(failing={"00001"}))
    assert main(START) == 0
    capsys.readouterr()

    assert main(["watch", "r1", "--interval", "0.05"]) == 1

    out = capsys.readouterr().out
    print(out)
    lines = without_times(out.splitlines())
    job_id = boto3.client("batch", region_name=REGION).list_jobs(jobQueue=arns["JobQueue"], jobStatus="FAILED")[
        "jobSummaryList"
    ][0]["jobId"]
    failed = next(i for i, line in enumerate(lines) if "✗ Batch job detect-00001" in line)
    assert lines[failed] == (
        f"hh:mm:ss  ✗ Batch job detect-00001 ({job_id}) failed after 1 attempt: Essential container in task exited;"
        " exit code 1; OutOfMemoryError: Container killed due to memory usage"
    )
    stream = f"{STACK}-detect/default/{job_id}"
    assert lines[failed + 1].strip() == f"log stream: {LOG_GROUP} {stream}"
    assert (
        lines[failed + 2]
        .strip()
        .startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1")
    )
    assert [line.strip() for line in lines[failed + 3 : failed + 6]] == [
        '| {"event": "shard_started", "shard": "00001"}',
        "| Traceback (most recent call last):",
        "| torch.OutOfMemoryError: CUDA out of memory.",
    ]
    assert any(
        "✗ DetectShards failed: States.ExceedToleratedFailureThreshold: The specified tolerated failure threshold"
        " was exceeded: 1 of 3 items failed" in line
        for line in lines
    )
    assert "✗ run FAILED after" in lines[-1] and "ShardsFailed: The specified tolerated failure threshold" in lines[-1]
    assert sum("✗ Batch job" in line for line in lines) == 1  # only the failed one, once


def test_a_failed_batch_task_of_the_run_itself_shows_the_job_from_its_cause(local, capsys) -> None:
    aws, arns = local
    deploy(aws, arns, parent_batch_task=True)
    aws.set_batch_runner(Runner(failing={"materialize"}))
    assert main(START) == 0

    assert main(["watch", "r1", "--interval", "0.05", "--log-lines", "1"]) == 1

    lines = without_times(capsys.readouterr().out.splitlines())
    assert any("✗ Materialize failed: States.TaskFailed" in line for line in lines)
    # Shown once, from the task's cause or from ListJobs, whichever saw the failure first.
    [stream] = [i for i, line in enumerate(lines) if "log stream:" in line]
    assert "Batch job materialize-r1" in lines[stream - 1] and "exit code 1" in lines[stream - 1]
    assert lines[stream].strip().startswith(f"log stream: {LOG_GROUP} {STACK}-detect/default/")
    assert lines[stream + 2].strip() == "| torch.OutOfMemoryError: CUDA out of memory."  # --log-lines 1
    assert "✗ run FAILED after" in lines[-1] and "ShardsFailed: Batch job materialize-r1" in lines[-1]


def test_follow_stops_at_its_timeout_while_the_run_goes_on(local) -> None:
    aws, arns = local
    deploy(aws, arns)
    # The shards' jobs run until the test lets them go, so the run is still going whatever the machine's
    # speed; follow starts once a job runs, so PlanDetection is in the history by then.
    release = threading.Event()
    runner = Runner(failing=set(), hold=release)
    aws.set_batch_runner(runner)
    main(START)
    assert runner.started.wait(timeout=60)
    stack = load_stack(Aws(region=REGION), STACK)
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":r1"
    seen: list[str] = []

    try:
        execution = follow(Follower(Aws(region=REGION), stack, arn), seen.append, poll_s=0.05, timeout_s=0.3)
    finally:
        release.set()

    assert execution.status == "RUNNING"
    assert any("▶ PlanDetection" in line for line in seen)


def test_the_shards_total_is_the_plans_even_while_the_map_run_has_read_only_part_of_its_list(
    local, monkeypatch
) -> None:
    aws, arns = local
    deploy(aws, arns)
    aws.set_batch_runner(Runner(failing=set()))
    main(START)
    stack = load_stack(Aws(region=REGION), STACK)
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":r1"
    follower = Follower(Aws(region=REGION), stack, arn)
    real = follower.sfn.describe_map_run

    def reading(**kwargs):
        # As on a busy machine: the ItemReader has read 2 of the plan's 3 shards so far.
        described = real(**kwargs)
        return {**described, "itemCounts": {**described["itemCounts"], "total": 2}}

    monkeypatch.setattr(follower.sfn, "describe_map_run", reading)
    seen: list[str] = []

    follow(follower, seen.append, poll_s=0.05, timeout_s=60)

    progress = [line for line in seen if "shards done" in line]
    assert progress and all("/3 shards done" in line for line in progress), progress


def test_a_sync_cause_is_read_as_the_batch_job_it_describes() -> None:
    cause = json.dumps(
        {
            "JobId": "abc",
            "JobName": "detect-00001",
            "StatusReason": "Essential container in task exited",
            "Attempts": [{"Container": {"ExitCode": 137, "LogStreamName": "detect/default/xyz", "Reason": "OOM"}}],
        }
    )
    job = batch_job_in(cause)
    assert job is not None and job["attempts"][0]["container"]["logStreamName"] == "detect/default/xyz"
    assert batch_job_in("ConfigError: unknown setting 'x'") is None
