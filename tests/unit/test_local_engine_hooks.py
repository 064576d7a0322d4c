"""What the local engine relies on: Fail states with legal error names, real-S3 passthrough for local runs."""

from __future__ import annotations

import json
import re

import pytest
from wildlife_common.failures import run_error_name

from wildlife.engine.moto import LocalAws, s3_passthrough_urls


def test_a_fail_state_passes_on_a_caught_error_under_its_run_error_name() -> None:
    """The spec reserves "States." for Step Functions' own errors; moto refuses them at a Fail state
    as AWS would, so the failure path renames them (what RecordFailure does) and keeps the cause."""
    caught = "States.ExceedToleratedFailureThreshold"
    definition = {
        "StartAt": "Caught",
        "States": {
            "Caught": {
                "Type": "Pass",
                "Result": {"Error": run_error_name(caught), "Cause": "3 of 3 shards failed"},
                "Next": "RunFailed",
            },
            "RunFailed": {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"},
        },
    }
    with LocalAws() as aws:
        machine = aws.create_state_machine("fail", json.dumps(definition))
        described = aws.wait_for_execution(aws.start_execution(machine, {}, name="e1"), timeout_s=20)

    assert described["status"] == "FAILED"
    assert (described["error"], described["cause"]) == ("ShardsFailed", "3 of 3 shards failed")
    assert run_error_name("States.TaskFailed") == "TaskFailed"


@pytest.mark.parametrize(
    ("url", "passes"),
    [
        ("https://my-traps.s3.amazonaws.com/2026/a.jpg", True),
        ("https://my-traps.s3.eu-west-1.amazonaws.com/2026/a.jpg", True),
        ("https://s3.amazonaws.com/my-traps/2026/a.jpg", True),
        ("https://s3.us-east-1.amazonaws.com/my-traps", True),
        # Another bucket whose name starts the same, and the engine's own bucket, stay in moto.
        ("https://my-traps-old.s3.amazonaws.com/a.jpg", False),
        ("https://s3.amazonaws.com/my-traps-old/a.jpg", False),
        ("https://wildlife-local-runs.s3.amazonaws.com/local/x", False),
    ],
)
def test_only_the_named_buckets_go_to_the_real_s3(url: str, passes: bool) -> None:
    assert any(re.match(pattern, url) for pattern in s3_passthrough_urls(["my-traps"])) is passes
