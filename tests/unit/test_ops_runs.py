"""start, status and the stack's Outputs against moto: runs started and listed, one-line errors for bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

from tests.ops_support import REGION, STACK, create_stack, create_state_machine
from wildlife.cli import main
from wildlife.ops import console, stack
from wildlife.ops.aws import Aws
from wildlife.ops.stack import StackIncomplete, load_stack

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {"input": "s3://traps/2026/", "detector": "s3://pipeline/models/md_v1000.pt"}
PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


def test_every_output_the_cli_reads_is_an_output_of_template_yaml() -> None:
    outputs = yaml_parse((ROOT / "template.yaml").read_text())["Outputs"]
    assert set(stack.OUTPUTS) <= set(outputs)


@pytest.fixture
def deployed(monkeypatch):
    """A moto account with the stack's Outputs, a state machine (executions recorded, not run) and a bucket."""
    with mock_aws():
        machine = create_state_machine(PASS_MACHINE)
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="pipeline")
        create_stack(
            {
                stack.STATE_MACHINE: machine,
                stack.BUCKET: "pipeline",
                stack.JOB_QUEUE: f"arn:aws:batch:{REGION}:123456789012:job-queue/q",
                stack.ECR_REPOSITORY: f"123456789012.dkr.ecr.{REGION}.amazonaws.com/wildlife",
                stack.BATCH_LOG_GROUP: f"/aws/batch/{STACK}",
            }
        )
        monkeypatch.setenv("WILDLIFE_STACK", STACK)
        yield machine


def executions(machine: str) -> list[dict]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    listed = sfn.list_executions(stateMachineArn=machine)["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_the_stack_outputs_are_read_from_cloudformation(deployed) -> None:
    found = load_stack(Aws(region=REGION), STACK)
    assert found.state_machine_arn == deployed
    assert found.output_root == "s3://pipeline/"
    assert found.batch_log_group == f"/aws/batch/{STACK}"
    with pytest.raises(StackIncomplete, match="no Output AlertsTopicArn"):
        found.output(stack.ALERTS_TOPIC)


@pytest.mark.slow
def test_start_validates_starts_and_prints_the_execution_and_its_graph(deployed, capsys) -> None:
    assert main(["start", "s3://traps/2026/", "--detector", CONFIG["detector"], "--run-id", "r1"]) == 0

    out = capsys.readouterr().out
    [execution] = executions(deployed)
    assert execution["name"] == "r1"
    assert json.loads(execution["input"]) == {**CONFIG, "run_id": "r1"}
    assert f"execution  {execution['executionArn']}" in out
    assert console.execution_url(REGION, execution["executionArn"]) in out
    assert (
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn:aws:states:"
        in out
    )
    assert "results    s3://pipeline/runs/r1/final/" in out


def test_start_with_a_config_file_and_set_options(deployed, tmp_path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**CONFIG, "shard_size": 500}))
    assert main(["start", "--config", str(path), "--set", "max_concurrency=8", "--set", "incremental=true"]) == 0
    [execution] = executions(deployed)
    assert json.loads(execution["input"]) == {**CONFIG, "shard_size": 500, "max_concurrency": 8, "incremental": True}
    assert execution["name"].startswith("run-")  # no run id given: one from the time


@pytest.mark.slow
def test_starting_a_run_id_again_resumes_it_in_a_new_execution(deployed, capsys) -> None:
    start = ["start", CONFIG["input"], "--detector", CONFIG["detector"], "--run-id", "r1"]
    assert main(start) == 0
    assert main(start) == 0  # still running: nothing new
    assert "run r1 is already running; nothing started" in capsys.readouterr().out
    assert len(executions(deployed)) == 1
    [first] = executions(deployed)
    boto3.client("stepfunctions", region_name=REGION).stop_execution(executionArn=first["executionArn"])

    assert main(start) == 0

    out = capsys.readouterr().out
    runs = executions(deployed)
    assert len(runs) == 2
    resumed = next(e for e in runs if e["name"] != "r1")
    assert resumed["name"].startswith("r1-")
    assert json.loads(resumed["input"])["run_id"] == "r1"  # same run folder, only unfinished shards
    assert "resumed run r1" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "shard_sise=10"], "unknown setting 'shard_sise'"),
        (["--image-size", "650"], "image_size must be a multiple of 32"),
        (["--set", "tolerated_failure_percentage=100"], "tolerated_failure_percentage must be a number"),
    ],
)
@pytest.mark.slow
def test_a_bad_config_is_one_line_and_starts_nothing(deployed, capsys, arguments, message) -> None:
    assert main(["start", CONFIG["input"], "--detector", CONFIG["detector"], *arguments]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("wildlife start: error: ")
    assert executions(deployed) == []


def test_a_local_folder_cannot_be_the_input_of_a_deployed_run(deployed, capsys, tmp_path) -> None:
    assert main(["start", str(tmp_path), "--detector", CONFIG["detector"]]) == 1
    err = capsys.readouterr().err
    assert "input must be an s3:// URI on a deployed stack" in err and err.count("\n") == 1
    assert executions(deployed) == []


def test_bad_command_lines_exit_2_with_one_line(deployed, capsys, monkeypatch, tmp_path) -> None:
    assert main(["start", "--detector", CONFIG["detector"]]) == 2
    assert (
        capsys.readouterr().err == "wildlife start: error: no input: give s3://bucket/prefix/ or 'input' in --config\n"
    )
    assert main(["start", CONFIG["input"], "--set", "novalue"]) == 2
    assert "--set takes KEY=VALUE" in capsys.readouterr().err
    monkeypatch.delenv("WILDLIFE_STACK")
    monkeypatch.chdir(tmp_path)  # no results/ here: status would read it (wildlife run's default --out)
    assert main(["status"]) == 2
    assert capsys.readouterr().err == (
        "wildlife status: error: which stack? pass --stack NAME or set WILDLIFE_STACK"
        " (for runs made by wildlife run: --out DIR)\n"
    )
    assert main(["start", CONFIG["input"], "--detector", CONFIG["detector"]]) == 2
    assert capsys.readouterr().err == "wildlife start: error: which stack? pass --stack NAME or set WILDLIFE_STACK\n"


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["watch", "r1"],
        ["report", "r1"],
        ["start", "s3://t/", "--detector", "s3://t/d.pt"],
        ["deploy-image", "--dry-run"],
    ],
)
@pytest.mark.slow
def test_no_such_stack_is_one_line_for_every_command(deployed, capsys, command) -> None:
    assert main([*command, "--stack", "nope"]) == 1
    err = capsys.readouterr().err
    hint = "(deploy it with sam deploy, or pass --region)"
    assert err == f"wildlife {command[0]}: error: no stack named nope in us-east-1 {hint}\n"


@pytest.mark.slow
@pytest.mark.parametrize("command", [["status", "r9"], ["watch", "r9"], ["report", "r9"]])
def test_no_such_run_is_one_line(deployed, capsys, command) -> None:
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"no run r9 on stack {STACK}" in err


@pytest.mark.slow
def test_status_lists_recent_runs_with_status_images_and_duration(deployed, capsys) -> None:
    for run_id in ("r1", "r2"):
        main(["start", CONFIG["input"], "--detector", CONFIG["detector"], "--run-id", run_id])
    # r2 was planned: PlanDetection's run.json holds its image count.
    boto3.client("s3", region_name=REGION).put_object(
        Bucket="pipeline", Key="runs/r2/run.json", Body=json.dumps({"planned": True, "counts": {"images": 4200}})
    )
    capsys.readouterr()

    assert main(["status"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "STATUS", "IMAGES", "FAILED", "STARTED", "(UTC)", "DURATION"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"r1", "r2"}
    assert rows["r2"][1:4] == ["RUNNING", "4,200", "-"]
    assert rows["r1"][1:4] == ["RUNNING", "-", "-"]


@pytest.mark.slow
def test_status_of_one_run_shows_its_folder_and_graph(deployed, capsys) -> None:
    main(["start", CONFIG["input"], "--detector", CONFIG["detector"], "--run-id", "r1"])
    capsys.readouterr()
    assert main(["status", "r1"]) == 0
    out = capsys.readouterr().out
    assert "run folder: s3://pipeline/runs/r1/" in out
    assert "graph: https://us-east-1.console.aws.amazon.com/states/home" in out


def test_console_links_encode_log_group_and_stream_as_the_console_does() -> None:
    url = console.log_stream_url("eu-west-1", "/aws/batch/wildlife", "detect/default/abc")
    assert url == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/"
        "$252Faws$252Fbatch$252Fwildlife/log-events/detect$252Fdefault$252Fabc"
    )
    assert console.execution_url("cn-north-1", "arn:x").startswith("https://console.amazonaws.cn/states/")
