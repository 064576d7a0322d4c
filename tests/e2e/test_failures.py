"""Failure paths through the real ASL: Spot loss, S3 outages, a job failing on its own, tolerance, a Lambda that raises.

A host loss is injected the way AWS reports one (``BatchResult.host_lost``: the attempt ends with
"Host EC2 (instance ...) terminated." and no exit code) after the real GPU task has run; S3
throttling and 500s are S3's own error responses under botocore's retries (``tests.s3_faults``); a
job failure is real: the GPU task exits 1 on a shard manifest it cannot read.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from wildlife_common import storage
from wildlife_common.layout import RunLayout

from tests.e2e.conftest import GROUND_TRUTH, SAMPLES, demo_config, final
from tests.s3_faults import EVERY_TIME, S3Faults
from wildlife.engine.local import LocalEngine
from wildlife.engine.moto import BatchJob, BatchResult

# The whole pipeline in the local engine: the longest such test took 57 s on 2 shared cores
# (test_resume.py); 600 s leaves room for a slower machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LOST_SHARD = "00001"


def layout_of(job: BatchJob) -> RunLayout:
    return RunLayout(storage.as_folder(job.parameters["run_uri"]))


def batch_attempts(engine: LocalEngine, job_name: str) -> list[dict]:
    """The attempts Batch recorded for the job of that name (DescribeJobs, as the console shows them)."""
    batch = engine.aws.client("batch")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueName"]
    summaries = [
        job
        for status in ("SUCCEEDED", "FAILED")
        for job in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
        if job["jobName"] == job_name
    ]
    assert len(summaries) == 1, summaries
    return batch.describe_jobs(jobs=[summaries[0]["jobId"]])["jobs"][0]["attempts"]


def test_a_detect_job_lost_with_its_host_is_retried_by_the_job_definition_and_its_rows_appear_once(
    engine: LocalEngine, tmp_path: Path
) -> None:
    def lose_host_once(job: BatchJob) -> BatchResult:
        result = engine.run_job(job)
        if job.job_name == f"detect-{LOST_SHARD}" and job.attempt == 1:
            # The instance went away after the shard's results were written but before its commit
            # marker: the retried attempt must overwrite the same keys, never add rows.
            Path(layout_of(job).done("stage1", LOST_SHARD)).unlink()
            return BatchResult.host_lost("i-0spot")
        return result

    engine.aws.set_batch_runner(lose_host_once)
    result = engine.run(demo_config(SAMPLES, tmp_path / "out", detection_only=True), timeout_s=300)

    assert result.succeeded, result.cause
    # The template's RetryStrategy: "Host EC2*" → RETRY, so attempt 2 ran and succeeded.
    attempts = batch_attempts(engine, f"detect-{LOST_SHARD}")
    assert [a.get("statusReason") for a in attempts] == [
        "Host EC2 (instance i-0spot) terminated.",
        "Essential container in task exited",
    ]
    assert [a["container"].get("exitCode") for a in attempts] == [None, 0]
    rows, _, summary = final(result.output["run_uri"])
    lost = [r for r in rows if r["shard"] == LOST_SHARD]
    assert len({r["image"] for r in lost}) == 7
    assert not [key for key, n in Counter((r["image"], r["detection"]) for r in rows).items() if n > 1]
    assert summary["images"] == 21 and summary["balanced"] is True and summary["shards"]["failed"] == []


@pytest.mark.usefixtures("fast_retries")
def test_s3_throttling_and_500s_lose_no_image_and_a_shard_s3_fails_is_retried_by_the_job_definition(
    engine: LocalEngine, tmp_path: Path
) -> None:
    s3 = engine.aws.client("s3")
    s3.create_bucket(Bucket="traps")
    names = sorted(GROUND_TRUTH)  # 7 a shard: shard 00000 holds names[0:7], 00001 names[7:14]
    for name in names:
        s3.put_object(Bucket="traps", Key=f"cam/{name}", Body=(SAMPLES / name).read_bytes())
    faults = S3Faults()
    # Cleared by botocore's own retries, and by storage's second try after botocore gave up.
    faults.fail(f"cam/{names[2]}", times=4, error="InternalError")
    faults.fail(f"cam/{names[3]}", times=storage.S3_ATTEMPTS + 2, error="SlowDown")
    stuck = f"cam/{names[9]}"

    def s3_down_during_first_attempt(job: BatchJob) -> BatchResult:
        if job.job_name != f"detect-{LOST_SHARD}" or job.attempt != 1:
            return engine.run_job(job)
        faults.fail(stuck, times=EVERY_TIME)
        try:
            return engine.run_job(job)
        finally:
            faults.fail(stuck, times=0)

    engine.aws.set_batch_runner(s3_down_during_first_attempt)
    result = engine.run(demo_config("s3://traps/cam/", tmp_path / "out", detection_only=True), timeout_s=300)

    assert result.succeeded, result.cause
    # The template's RetryStrategy: OnExitCode "75" → RETRY, so attempt 2 ran and read the image.
    attempts = batch_attempts(engine, f"detect-{LOST_SHARD}")
    assert [a["container"].get("exitCode") for a in attempts] == [75, 0]
    assert faults.calls[stuck] > 3 * storage.S3_ATTEMPTS  # every try of attempt 1 failed; attempt 2 read it
    assert faults.calls[f"cam/{names[3]}"] == storage.S3_ATTEMPTS + 3
    rows, megadetector, summary = final(result.output["run_uri"])
    assert sorted({r["image"] for r in rows}) == names
    assert [r for r in rows if r["failure"]] == []
    assert not [key for key, n in Counter((r["image"], r["detection"]) for r in rows).items() if n > 1]
    assert summary["images"] == 21 and summary["failed_images"] == 0 and summary["balanced"] is True
    assert summary["shards"]["failed"] == [] and not any(i.get("failure") for i in megadetector["images"])


def break_shard(engine: LocalEngine, shard: str) -> Callable[[BatchJob], BatchResult]:
    """A runner under which the GPU task fails on its own on one shard: its manifest is unreadable."""

    def runner(job: BatchJob) -> BatchResult:
        if job.job_name != f"detect-{shard}":
            return engine.run_job(job)
        manifest = Path(layout_of(job).shard_manifest("stage1", shard))
        original = manifest.read_bytes()
        manifest.write_bytes(b"{ not json")
        try:
            return engine.run_job(job)
        finally:
            # Back as planned, so that materialize can list the shard's images as failed.
            manifest.write_bytes(original)

    return runner


def test_failed_shards_within_the_tolerance_leave_the_run_successful_with_the_shards_listed(
    engine: LocalEngine, tmp_path: Path
) -> None:
    engine.aws.set_batch_runner(break_shard(engine, LOST_SHARD))
    # 1 of 3 shards is 33 %, within 50 %.
    config = demo_config(SAMPLES, tmp_path / "out", detection_only=True, tolerated_failure_percentage=50.0)
    result = engine.run(config, timeout_s=300)

    assert result.succeeded, result.cause
    # A job that failed on its own is not retried: the rule EXIT on "*" ends it after one attempt.
    attempts = batch_attempts(engine, f"detect-{LOST_SHARD}")
    assert len(attempts) == 1 and attempts[0]["container"]["exitCode"] == 1
    assert [j.job_name for j in result.jobs].count(f"detect-{LOST_SHARD}") == 1
    rows, megadetector, summary = final(result.output["run_uri"])
    assert summary["status"] == "partial"
    assert summary["shards"]["failed"] == [{"stage": "stage1", "shard": LOST_SHARD}]
    assert result.output["failed_shards"] == [f"stage1/{LOST_SHARD}"]
    # Its images are in the table, each once, as failures naming the shard; the others are processed.
    failed = [r for r in rows if r["failure"]]
    assert len(failed) == 7 and all(r["shard"] == LOST_SHARD and LOST_SHARD in r["failure"] for r in failed)
    assert summary["images"] == 21 and summary["failed_images"] == 7 and summary["balanced"] is True
    assert sum(1 for i in megadetector["images"] if i.get("failure")) == 7


def test_failed_shards_beyond_the_tolerance_fail_the_execution_with_a_cause_that_names_them(
    engine: LocalEngine, tmp_path: Path
) -> None:
    engine.aws.set_batch_runner(break_shard(engine, LOST_SHARD))
    # 1 of 3 shards is 33 %, beyond the default 5 %.
    result = engine.run(demo_config(SAMPLES, tmp_path / "out", detection_only=True), timeout_s=300)

    assert result.status == "FAILED"
    assert result.error == "ShardsFailed"
    assert f"1 detection shard(s) failed, more than the tolerated 5.0%: {LOST_SHARD}" in (result.cause or "")
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.history if e["type"].endswith("StateEntered")]
    assert entered[-2:] == ["RecordFailure", "RunFailed"]
    assert "Materialize" not in entered
    failure = json.loads((tmp_path / "out" / "runs" / "e2e" / "final" / "failure.json").read_text())
    assert failure["error"] == "ShardsFailed" and LOST_SHARD in failure["cause"]


def test_a_lambda_that_raises_leads_through_catch_to_a_failed_execution_whose_history_has_the_cause(
    engine: LocalEngine, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-detector.pt"
    result = engine.run(demo_config(SAMPLES, tmp_path / "out", detector=str(missing)), timeout_s=120)

    assert result.status == "FAILED"
    assert result.error == "ConfigError"
    assert result.cause == f"ConfigError: detector not found: {missing}"
    failed = [e for e in result.history if e["type"] == "TaskFailed"]
    assert failed and failed[0]["taskFailedEventDetails"]["error"] == "ConfigError"
    cause = json.loads(failed[0]["taskFailedEventDetails"]["cause"])
    assert cause["errorType"] == "ConfigError" and str(missing) in cause["errorMessage"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.history if e["type"].endswith("StateEntered")]
    assert entered == ["PlanDetection", "RecordFailure", "RunFailed"]
    assert result.jobs == []


def test_jobs_that_never_get_capacity_are_cancelled_by_the_queue_and_the_run_ends_through_record_failure(
    tmp_path: Path,
) -> None:
    # One slot (one local GPU) held for 3 s by the first shard's job; the queue lets the others wait
    # 1 s, as the template's queue lets a job wait 4 hours for GPU capacity in AWS, then cancels them.
    with LocalEngine(short_waits=True, log_dir=tmp_path / "logs", batch_concurrency=1, capacity_wait_s=1) as engine:

        def hold_the_slot(job: BatchJob) -> BatchResult:
            time.sleep(3)
            return engine.run_job(job)

        engine.aws.set_batch_runner(hold_the_slot)
        result = engine.run(demo_config(SAMPLES, tmp_path / "out", detection_only=True), timeout_s=300)
        batch = engine.aws.client("batch")
        queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueName"]
        failed = batch.list_jobs(jobQueue=queue, jobStatus="FAILED")["jobSummaryList"]
        cancelled = batch.describe_jobs(jobs=[job["jobId"] for job in failed])["jobs"]

    assert result.status == "FAILED" and result.error == "ShardsFailed"
    assert "2 detection shard(s) failed" in (result.cause or "")
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.history if e["type"].endswith("StateEntered")]
    assert entered[-2:] == ["RecordFailure", "RunFailed"]
    assert len(result.jobs) == 1  # the cancelled jobs never ran
    reason = "Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
    assert [(job["statusReason"], job["attempts"]) for job in cancelled] == [(reason, [])] * 2
