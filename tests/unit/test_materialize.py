"""Materialize: the final table, MegaDetector JSON and summary, from committed shards."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from wildlife_common import storage
from wildlife_common.errors import RunIntegrityError
from wildlife_common.layout import RunLayout
from wildlife_common.schema import DETECTION_SCHEMA

from tests.conftest import load_handler
from tests.helpers import commit_classification_shard, commit_detection_shard, put_images

plan = load_handler("plan_detection").lambda_handler
plan_classification = load_handler("plan_classification").lambda_handler
materialize = load_handler("materialize").lambda_handler

CLASSIFIED = {
    "detector": "s3://pipeline/models/detector.pt",
    "classifier": "s3://pipeline/models/classifier.pth",
    "classifier_arch": "resnet18",
    "classifier_labels": "s3://pipeline/models/labels.txt",
}


@pytest.fixture
def run(s3, lambda_context) -> dict:
    """A planned run of 6 images in 3 shards of 2, with a classifier."""
    for key in ("detector.pt", "classifier.pth", "labels.txt"):
        s3.put_object(Bucket="pipeline", Key=f"models/{key}", Body=b"x")
    put_images(s3, "traps", [f"cam/{name}.jpg" for name in ("a", "b", "c", "d", "e", "f")])
    return plan(
        {"config": {"input": "s3://traps/", "shard_size": 2, **CLASSIFIED}, "execution_name": "r1"}, lambda_context
    )


def read_table(uri: str):
    return pq.read_table(io.BytesIO(storage.read_bytes(uri)))


def commit_typical_stage1(layout: RunLayout) -> None:
    commit_detection_shard(
        layout,
        "00000",
        {
            "cam/a.jpg": [
                ("animal", 0.91, (0.1, 0.2, 0.3, 0.4), "crop-a-0"),
                ("person", 0.05, (0.5, 0.5, 0.1, 0.2), None),
            ],
            "cam/b.jpg": [],
        },
    )
    commit_detection_shard(
        layout,
        "00001",
        {"cam/c.jpg": "unreadable: truncated JPEG", "cam/d.jpg": [("vehicle", 0.7, (0.0, 0.0, 0.5, 0.5), None)]},
    )


def test_committed_shards_merge_into_one_balanced_table(run, lambda_context) -> None:
    layout = RunLayout(run["run_uri"])
    commit_typical_stage1(layout)
    commit_detection_shard(layout, "00002", {"cam/e.jpg": [("animal", 0.4, (0.2, 0.2, 0.2, 0.2), "crop-e-0")]})
    planned = plan_classification({"run": run}, lambda_context)
    assert planned["shard_count"] == 1 and planned["crops"] == 2
    storage.write_json(storage.join(layout.run_uri, "stage2", "labels.json"), ["deer", "fox", "hare"])
    commit_classification_shard(
        layout,
        "c00000",
        ["00000", "00002"],
        {
            ("00000", "cam/a.jpg", 0): [("deer", 0.8), ("fox", 0.15), ("hare", 0.05)],
            ("00002", "cam/e.jpg", 0): [("fox", 0.6), ("deer", 0.4)],
        },
    )

    result = materialize({"run": run}, lambda_context)
    assert result == {
        "run_id": "r1",
        "run_uri": "s3://pipeline/runs/r1/",
        "summary": "s3://pipeline/runs/r1/final/summary.json",
        "status": "succeeded",
        "images": 6,
        "failed_images": 1,
        "detections": 4,
        "failed_shard_count": 0,
        "failed_shards": [],
    }
    table = read_table(layout.detections_parquet)
    assert table.schema.equals(DETECTION_SCHEMA, check_metadata=False)
    rows = table.to_pylist()
    assert len(rows) == 7  # a: 2 detections, b: empty, c: failed, d: 1, e: 1, f: empty
    by_image = {}
    for row in rows:
        by_image.setdefault(row["image"], []).append(row)
    assert sorted(by_image) == ["cam/a.jpg", "cam/b.jpg", "cam/c.jpg", "cam/d.jpg", "cam/e.jpg", "cam/f.jpg"]
    assert by_image["cam/a.jpg"][0]["species"] == "deer"
    assert by_image["cam/a.jpg"][0]["top5_species"] == ["deer", "fox", "hare"]
    assert by_image["cam/a.jpg"][1]["species"] is None  # the person was not classified
    assert by_image["cam/e.jpg"][0]["species"] == "fox"
    assert by_image["cam/c.jpg"][0]["failure"] == "unreadable: truncated JPEG"
    assert by_image["cam/b.jpg"][0]["detection"] is None and by_image["cam/b.jpg"][0]["failure"] is None

    summary = storage.read_json(layout.summary_json)
    assert summary["balanced"] is True
    assert (
        summary["images"],
        summary["images_with_detections"],
        summary["empty_images"],
        summary["failed_images"],
    ) == (6, 3, 2, 1)
    assert summary["images_with_detections"] + summary["empty_images"] + summary["failed_images"] == summary["images"]
    assert summary["detections_above_threshold"] == {"animal": 2, "vehicle": 1}
    assert summary["species"] == {"deer": 1, "fox": 1}
    assert summary["failure_reasons"] == {"unreadable": 1}
    assert summary["timings"]["stage1"]["shards"] == 3
    assert summary["cost"]["gpu_hours"] == pytest.approx((3 * 60 + 10) / 3600, abs=1e-4)
    assert summary["cost"]["usd_per_1000_images"] > 0


@pytest.mark.slow
def test_megadetector_json_follows_format_1_6_field_by_field(run, lambda_context) -> None:
    layout = RunLayout(run["run_uri"])
    commit_typical_stage1(layout)
    commit_detection_shard(layout, "00002", {})
    storage.write_json(storage.join(layout.run_uri, "stage2", "labels.json"), ["deer", "fox"])
    commit_classification_shard(layout, "c00000", ["00000"], {("00000", "cam/a.jpg", 0): [("fox", 0.3), ("deer", 0.7)]})
    materialize({"run": run}, lambda_context)

    doc = json.loads(storage.read_bytes(layout.megadetector_json))
    assert set(doc) == {"info", "detection_categories", "classification_categories", "images"}
    assert doc["info"]["format_version"] == "1.6"
    assert doc["info"]["detector"] == "detector.pt@sha256:0123456789ab"
    assert doc["info"]["detector_metadata"]["typical_detection_threshold"] == 0.2
    assert doc["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert doc["classification_categories"] == {"0": "deer", "1": "fox"}
    images = {entry["file"]: entry for entry in doc["images"]}
    assert len(images) == len(doc["images"]) == 6
    a = images["cam/a.jpg"]
    assert [d["category"] for d in a["detections"]] == ["1", "2"]  # sorted by confidence, string ids
    assert a["detections"][0]["conf"] == 0.91
    assert a["detections"][0]["bbox"] == [0.1, 0.2, 0.3, 0.4]
    # Classifications are sorted by confidence and use classification_categories ids.
    assert a["detections"][0]["classifications"] == [["0", 0.7], ["1", 0.3]]
    assert "classifications" not in a["detections"][1]
    assert images["cam/b.jpg"] == {"file": "cam/b.jpg", "detections": []}
    assert images["cam/c.jpg"] == {"file": "cam/c.jpg", "failure": "unreadable: truncated JPEG", "detections": None}
    for entry in doc["images"]:
        for detection in entry["detections"] or []:
            assert all(0.0 <= v <= 1.0 for v in detection["bbox"]) and len(detection["bbox"]) == 4


def test_a_failed_shard_is_listed_and_its_images_become_failure_rows(run, lambda_context) -> None:
    layout = RunLayout(run["run_uri"])
    commit_typical_stage1(layout)  # shard 00002 never committed: its job failed
    result = materialize({"run": run}, lambda_context)
    # Shard 00000 has a crop that no classification shard covered: stage 2 is incomplete for it.
    assert result["failed_shards"] == ["stage1/00002", "stage2/00000"]
    assert result["status"] == "partial"
    rows = read_table(layout.detections_parquet).to_pylist()
    lost = [r for r in rows if r["shard"] == "00002"]
    assert [r["image"] for r in lost] == ["cam/e.jpg", "cam/f.jpg"]
    assert all(r["failure"].startswith("shard failed: detection shard 00002") for r in lost)
    summary = storage.read_json(layout.summary_json)
    assert summary["failed_images"] == 3 and summary["balanced"] is True
    assert summary["shards"]["failed"] == [{"stage": "stage1", "shard": "00002"}, {"stage": "stage2", "shard": "00000"}]


# A materialize that refuses a run publishes no metrics; Powertools warns about that, as it should.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_a_shard_that_lost_an_image_fails_the_integrity_check(run, lambda_context) -> None:
    layout = RunLayout(run["run_uri"])
    commit_typical_stage1(layout)
    manifest = storage.read_json(layout.shard_manifest("stage1", "00002"))
    manifest["images"] = manifest["images"][:1]  # a buggy writer drops cam/f.jpg
    storage.write_json(layout.shard_manifest("stage1", "00002"), manifest)
    commit_detection_shard(layout, "00002", {})
    with pytest.raises(RunIntegrityError, match="5 images in the table, 6 planned; shards whose image count differs"):
        materialize({"run": run}, lambda_context)
    assert storage.read_json(layout.summary_json)["status"] == "inconsistent"


def test_an_empty_run_ends_with_an_empty_result_and_says_so(s3, lambda_context) -> None:
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"x")
    run = plan(
        {
            "config": {"input": "s3://traps/nothing/", "detector": "s3://pipeline/models/detector.pt"},
            "execution_name": "e",
        },
        lambda_context,
    )
    result = materialize({"run": run}, lambda_context)
    assert result["images"] == 0 and result["status"] == "succeeded"
    layout = RunLayout(run["run_uri"])
    assert read_table(layout.detections_parquet).num_rows == 0
    assert json.loads(storage.read_bytes(layout.megadetector_json))["images"] == []
    assert storage.read_json(layout.summary_json)["message"] == "no images found under s3://traps/nothing/"


def test_a_successful_run_feeds_the_incremental_index(run, s3, lambda_context) -> None:
    layout = RunLayout(run["run_uri"])
    commit_typical_stage1(layout)
    commit_detection_shard(layout, "00002", {})
    storage.write_json(storage.join(layout.run_uri, "stage2", "labels.json"), ["deer"])
    commit_classification_shard(layout, "c00000", ["00000", "00002"], {("00000", "cam/a.jpg", 0): [("deer", 0.9)]})
    materialize({"run": run}, lambda_context)
    again = plan(
        {"config": {"input": "s3://traps/", "incremental": True, "run_id": "r2", **CLASSIFIED}, "execution_name": "x"},
        lambda_context,
    )
    # Five images processed; the failed one (c) is tried again.
    assert again["skipped"] == 5 and again["images"] == 1


def test_a_run_with_tolerated_failures_indexes_only_its_finished_shards(run, s3, lambda_context) -> None:
    """A nightly incremental run after a partial one redoes only what did not finish."""
    layout = RunLayout(run["run_uri"])
    commit_typical_stage1(layout)  # 00002 never committed; 00000 has a crop no classification shard covered
    assert materialize({"run": run}, lambda_context)["status"] == "partial"
    again = plan(
        {"config": {"input": "s3://traps/", "incremental": True, "run_id": "r2", **CLASSIFIED}, "execution_name": "x"},
        lambda_context,
    )
    # Only d.jpg is done: c.jpg failed, a/b wait for species, e/f were in the failed shard.
    assert again["skipped"] == 1 and again["images"] == 5


@pytest.mark.slow
def test_the_batch_materialize_job_puts_the_run_metrics_the_alarm_watches(run, monkeypatch, capsys) -> None:
    """CloudWatch reads EMF only from Lambda logs: the Batch job puts the same metrics itself."""
    import boto3
    from wildlife_gpu import cli

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "wildlife-prod")
    layout = RunLayout(run["run_uri"])
    commit_typical_stage1(layout)  # 4 images, 1 of them failed; shard 00002 (2 images) never ran

    assert cli.main(["materialize", "--run", run["run_uri"]]) == 0

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    service = [{"Name": "service", "Value": "wildlife-prod"}]
    rate = cloudwatch.get_metric_statistics(
        Namespace="WildlifePipeline",
        MetricName="ImageFailureRate",
        Dimensions=service,
        StartTime="2020-01-01T00:00:00Z",
        EndTime="2100-01-01T00:00:00Z",
        Period=300,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [point["Maximum"] for point in rate] == [50.0]  # 3 of 6 images: 1 unreadable, 2 in the lost shard
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="WildlifePipeline")["Metrics"]}
    assert names == {"Images", "FailedImages", "FailedShards", "ImageFailureRate"}


@pytest.mark.slow
def test_the_result_stays_small_with_ten_thousand_failed_shards(tmp_path, lambda_context) -> None:
    """Materialize's result is the execution's output (256 KiB at most): it names the first failed
    shards and their count; summary.json names them all."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(10_000):
        (photos / f"{index:05d}.jpg").write_bytes(b"")  # never read: no shard ran
    (tmp_path / "detector.pt").write_bytes(b"x")
    config = {"input": str(photos), "output": str(tmp_path / "out"), "detector": str(tmp_path / "detector.pt")}
    run = plan({"config": {**config, "shard_size": 1}, "execution_name": "r1"}, lambda_context)

    result = materialize({"run": run}, lambda_context)

    assert len(json.dumps(result).encode()) < 4096
    assert result["failed_shard_count"] == 10_000
    assert result["failed_shards"][:2] == ["stage1/00000", "stage1/00001"] and len(result["failed_shards"]) == 50
    summary = storage.read_json(RunLayout(run["run_uri"]).summary_json)
    assert len(summary["shards"]["failed"]) == 10_000
