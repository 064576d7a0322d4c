"""wildlife watch on the real state machine: executions of pipeline.asl.json in the local engine.

The operator's commands read a stack's Outputs; here the stack (moto CloudFormation) points at
the local engine's state machine and queue, so ``watch`` reads the very history a deployed run
writes: the real state names, both Distributed Maps and the real failure path.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import SAMPLES, demo_config
from tests.ops_support import STACK, create_stack
from wildlife.cli import main
from wildlife.engine.local import LocalEngine
from wildlife.ops import stack as outputs

# The whole pipeline in the local engine: the longest such test took 57 s on 2 shared cores
# (test_resume.py); 600 s leaves room for a slower machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def deployed(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> LocalEngine:
    queue = engine.aws.client("batch").describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    create_stack(
        {
            outputs.STATE_MACHINE: engine.state_machine_arn,
            outputs.BUCKET: "wildlife-local-runs",
            outputs.JOB_QUEUE: queue,
            outputs.BATCH_LOG_GROUP: f"/aws/batch/{STACK}",
        }
    )
    monkeypatch.setenv("WILDLIFE_STACK", STACK)
    return engine


def watched(run_id: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    status = main(["watch", run_id, "--interval", "0.05", "--timeout", "60"])
    lines = [re.sub(r"^\d\d:\d\d:\d\d", "hh:mm:ss", line) for line in capsys.readouterr().out.splitlines()]
    print("\n".join(lines))  # the transcript, as a user sees it (pytest -s)
    return [str(status), *lines]


def test_watch_shows_every_state_and_both_maps_of_a_real_run(deployed, tmp_path: Path, capsys) -> None:
    result = deployed.run(demo_config(SAMPLES, tmp_path / "out", run_id="watched"))
    assert result.succeeded

    status, *lines = watched("watched", capsys)
    assert status == "0"
    entered = [line.split()[2] for line in lines if re.match(r"hh:mm:ss  ▶ ", line)]
    assert entered == [
        "PlanDetection",
        "AnotherScheduledRunRunning",
        "InputToList",
        "AnyShardsToDetect",
        "DetectShards",
        "DetectionOnly",
        "PlanClassification",
        "AnyCropsToClassify",
        "ClassifyShards",
        "ChooseMaterializer",
        "Materialize",
        "Done",
    ]
    assert any(line.endswith("DetectShards: 3/3 shards done (3 succeeded, 0 failed, 0 running)") for line in lines)
    assert any(line.endswith("ClassifyShards: 1/1 shards done (1 succeeded, 0 failed, 0 running)") for line in lines)
    assert "✓ run SUCCEEDED" in lines[-2] and lines[-1].startswith("report: wildlife report watched")


def test_watch_shows_the_cause_of_a_run_that_failed_in_a_lambda(deployed, tmp_path: Path, capsys) -> None:
    config = demo_config(SAMPLES, tmp_path / "out", run_id="no-detector", detector=str(tmp_path / "gone.pt"))
    assert not deployed.run(config).succeeded

    status, *lines = watched("no-detector", capsys)
    assert status == "1"
    failed = next(line for line in lines if "✗ PlanDetection failed" in line)
    assert re.search(r"✗ PlanDetection failed: ConfigError: detector not found: .*gone\.pt$", failed), failed
    assert [line.split()[2] for line in lines if re.match(r"hh:mm:ss  ▶ ", line)] == [
        "PlanDetection",
        "RecordFailure",
        "RunFailed",
    ]
    assert re.search(r"✗ run FAILED after [\d.]+ s: ConfigError: detector not found: .*gone\.pt$", lines[-1])
