"""report: a real summary (plan, committed shards with known durations, materialize) read back and priced."""

from __future__ import annotations

import json

import boto3
import pytest
from wildlife_common import storage
from wildlife_common.layout import RunLayout

from tests.conftest import load_handler
from tests.helpers import commit_detection_shard, put_images
from tests.ops_support import REGION, STACK, create_stack, create_state_machine
from wildlife.cli import main
from wildlife.ops import stack as outputs
from wildlife.summary import summary_lines

# Each test plans, commits and materializes a run in moto before reporting on it: seconds each.
pytestmark = pytest.mark.slow

plan = load_handler("plan_detection").lambda_handler
materialize = load_handler("materialize").lambda_handler

# Three shards of two images on a g4dn.xlarge ($0.526/h): 600 + 1200 + 1800 s = one hour of GPU.
DURATIONS = {"00000": 600.0, "00001": 1200.0, "00002": 1800.0}


@pytest.fixture
def finished(s3, lambda_context, monkeypatch):
    """Run r1 planned, its three shards committed (one image unreadable) and materialized, in moto."""
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"x")
    put_images(s3, "traps", [f"cam/{i}.jpg" for i in range(6)])
    config = {"input": "s3://traps/", "shard_size": 2, "detector": "s3://pipeline/models/detector.pt"}
    run = plan({"config": config, "execution_name": "r1"}, lambda_context)
    layout = RunLayout(run["run_uri"])
    outcomes = {
        "00000": {"cam/0.jpg": [("animal", 0.9, (0.1, 0.1, 0.2, 0.2), None)]},
        "00001": {"cam/2.jpg": "unreadable: truncated JPEG"},
        "00002": {"cam/4.jpg": [("vehicle", 0.6, (0.0, 0.0, 0.5, 0.5), None)]},
    }
    for shard, seconds in DURATIONS.items():
        commit_detection_shard(layout, shard, outcomes[shard], seconds=seconds)
    materialize({"run": run}, lambda_context)
    machine = create_state_machine({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    create_stack({outputs.STATE_MACHINE: machine, outputs.BUCKET: "pipeline"})
    monkeypatch.setenv("WILDLIFE_STACK", STACK)
    return layout


def test_report_shows_counts_failures_speed_and_the_cost_from_known_job_durations(finished, capsys) -> None:
    assert main(["report", "r1"]) == 0

    out = capsys.readouterr().out
    print(out)  # the report as a user sees it (pytest -s)
    summary = storage.read_json(finished.summary_json)
    cost = summary["cost"]
    lines = out.splitlines()
    assert lines[0] == "run r1 (execution no longer listed)  s3://pipeline/runs/r1/"
    # The four buckets add up to the total, as wildlife run shows them (one rendering of summary.json).
    images = "6: 2 with detections at or above 0.2, 0 with detections below it only, 3 empty, 1 failed (unreadable 1)"
    assert f"  images        {images}" in lines
    assert lines[2 : 2 + len(summary_lines(summary))] == summary_lines(summary)
    assert "  failed shards none" in lines
    # 6 images over 3,600 GPU-seconds.
    assert any(
        line.startswith("  detection     3 shards, 1 h 00 min of GPU jobs, 0.00167 images per GPU-second")
        for line in lines
    )
    # The same figure as summary.json, and its GPU part is one hour at $0.526.
    assert cost["gpu_usd"] == pytest.approx(0.526)
    assert f"  cost          ${cost['usd']:,.4f} = GPU $0.5260 + Lambda" in out
    per_1000 = cost["usd_per_1000_images"]
    assert f"${per_1000:,.2f} per 1,000 images (old target $10.00); 10000.0 GPU minutes per 1,000 images" in out
    # The job durations the cost came from, with their prices.
    group = "stage1 g4dn.xlarge - 3 jobs total 1 h 00 min min 600.0 s median 1200.0 s max 1800.0 s"
    assert group.split() in [line.split() for line in lines]
    for shard, seconds in DURATIONS.items():
        usd = seconds / 3600 * 0.526
        assert ["stage1", shard, "g4dn.xlarge", "-", f"{seconds:.1f}", "0.526", f"{usd:.4f}"] in [
            line.split() for line in lines
        ]
    assert any(line.startswith("    PlanDetection         1769 MB") and line.endswith("(modelled)") for line in lines)
    assert any(line.startswith("    Materialize           3008 MB") and line.endswith("(measured)") for line in lines)


def test_report_with_the_users_prices_recomputes_the_cost(finished, capsys, tmp_path) -> None:
    prices = tmp_path / "prices.json"
    # Half the on-demand price, and free Lambda and Step Functions: exactly $0.263.
    prices.write_text(
        json.dumps(
            {
                "on_demand": {"g4dn.xlarge": 0.263},
                "lambda_usd_per_gb_second": 0,
                "lambda_usd_per_request": 0,
                "state_transition_usd": 0,
            }
        )
    )

    assert main(["report", "r1", "--prices", str(prices), "--json"]) == 0

    cost = json.loads(capsys.readouterr().out)["cost"]
    assert cost["usd"] == 0.263
    assert cost["usd_per_1000_images"] == pytest.approx(0.263 / 6 * 1000, abs=1e-3)
    assert cost["pricing"] == str(prices)
    # summary.json keeps its own figure.
    assert storage.read_json(finished.summary_json)["cost"]["gpu_usd"] == pytest.approx(0.526)


def test_report_of_a_run_that_has_no_summary_yet_says_so_in_one_line(finished, capsys) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    sfn.start_execution(stateMachineArn=machine, name="r2", input=json.dumps({"input": "s3://traps/"}))

    assert main(["report", "r2"]) == 1

    assert capsys.readouterr().err == (
        f"wildlife report: error: run r2 is still RUNNING: no summary yet (wildlife watch r2 --stack {STACK})\n"
    )


def test_a_bad_price_file_is_one_line(finished, capsys, tmp_path) -> None:
    assert main(["report", "r1", "--prices", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
