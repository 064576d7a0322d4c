"""No image lost to a transient error: S3 throttling, 500s and broken connections never make failure rows.

S3 errors are injected into moto through botocore's own send path (``tests.s3_faults``), so its
standard retries run as deployed (their waits set to 0 s by ``fast_retries``). A read S3 does not
serve even after storage's own tries raises StorageUnavailable; the GPU task then exits 75, which
the job definitions retry, and nothing is committed. Only a file's own content or absence is a
failure row (test_detect and test_classify keep those green).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from wildlife_common import storage
from wildlife_common.errors import AccessDenied, StorageUnavailable
from wildlife_common.layout import RunLayout
from wildlife_common.planning import plan_classification, plan_detection
from wildlife_common.records import DetectionPlan
from wildlife_gpu import classify_speciesnet, cli
from wildlife_gpu.classify_speciesnet import Photo

from tests.helpers import commit_detection_shard, put_images
from tests.s3_faults import CONNECTION_RESET, EVERY_TIME, S3Faults

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "demo" / "models"
SAMPLES = ROOT / "demo" / "samples"
PHOTOS = ["01_day_deer.jpg", "05_day_fox.jpg", "07_day_hare.jpg"]
"""Three sample photos, each with a confident animal, so detection cuts crops of them."""

pytestmark = pytest.mark.usefixtures("two_torch_threads", "fast_retries")


def test_a_read_that_fails_past_botocores_attempts_succeeds_on_storages_own_retry(s3) -> None:
    s3.put_object(Bucket="traps", Key="cam/a.jpg", Body=b"photo")
    faults = S3Faults()
    faults.fail("cam/a.jpg", times=storage.S3_ATTEMPTS + 2)

    assert storage.read_bytes("s3://traps/cam/a.jpg") == b"photo"
    # botocore's S3_ATTEMPTS, then 3 more on storage's second try.
    assert faults.calls["cam/a.jpg"] == storage.S3_ATTEMPTS + 3


@pytest.mark.parametrize("error", ["SlowDown", "InternalError", CONNECTION_RESET])
def test_a_read_s3_never_serves_is_storage_unavailable_after_every_retry(s3, error: str) -> None:
    s3.put_object(Bucket="traps", Key="cam/a.jpg", Body=b"photo")
    faults = S3Faults()
    faults.fail("cam/a.jpg", error=error)

    with pytest.raises(StorageUnavailable, match=re.escape("s3://traps/cam/a.jpg")):
        storage.read_bytes("s3://traps/cam/a.jpg")
    tries = len(storage.READ_RETRY_WAITS_S) + 1
    assert faults.calls["cam/a.jpg"] == tries * storage.S3_ATTEMPTS


def test_a_kms_key_the_role_may_not_use_is_access_denied_and_not_retried(s3) -> None:
    s3.put_object(Bucket="traps", Key="cam/a.jpg", Body=b"photo")
    faults = S3Faults()
    faults.fail("cam/a.jpg", error="KMS.DisabledException")

    with pytest.raises(AccessDenied, match="KMS"):
        storage.read_bytes("s3://traps/cam/a.jpg")
    assert faults.calls["cam/a.jpg"] == 1


def _plan_photos(s3, pipeline: str, **config) -> DetectionPlan:
    for name in PHOTOS:
        s3.put_object(Bucket="traps", Key=f"cam/{name}", Body=(SAMPLES / name).read_bytes())
    return plan_detection(
        {
            "input": "s3://traps/cam/",
            "detector": str(MODELS / "detector.pt"),
            "image_size": 320,  # the demo detector's training size
            **config,
        },
        "transient",
        pipeline,
    )


def _detection_rows(layout: RunLayout) -> list[dict]:
    return pq.read_table(io.BytesIO(storage.read_bytes(layout.results("stage1", "00000")))).to_pylist()


def test_a_throttled_image_that_clears_within_the_retries_is_detected_with_no_failure_row(s3, tmp_path) -> None:
    run_uri = _plan_photos(s3, str(tmp_path / "pipeline"), detection_only=True)["run_uri"]
    layout = RunLayout(run_uri)
    faults = S3Faults()
    faults.fail(f"cam/{PHOTOS[1]}", times=storage.S3_ATTEMPTS + 2)
    faults.fail(f"cam/{PHOTOS[2]}", times=3, error="InternalError")

    assert cli.main(["detect", "--run", run_uri, "--shard", "00000"]) == 0

    rows = _detection_rows(layout)
    assert {r["image"] for r in rows} == set(PHOTOS)
    assert [r for r in rows if r["failure"]] == []
    assert storage.read_json(layout.done("stage1", "00000"))["failed_images"] == 0


def test_an_image_s3_never_serves_fails_the_shard_with_75_and_commits_nothing_then_the_retry_reads_it(
    s3, tmp_path, capsys
) -> None:
    run_uri = _plan_photos(s3, str(tmp_path / "pipeline"), detection_only=True)["run_uri"]
    layout = RunLayout(run_uri)
    faults = S3Faults()
    faults.fail(f"cam/{PHOTOS[1]}", times=EVERY_TIME)

    assert cli.main(["detect", "--run", run_uri, "--shard", "00000"]) == cli.EXIT_TEMPFAIL
    assert "S3 did not answer" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not storage.exists(layout.done("stage1", "00000"))
    assert not storage.exists(layout.results("stage1", "00000"))
    assert not storage.exists(layout.partial("stage1", "00000", 0))

    faults.clear()  # S3 serves it again: what Batch's retry of the job finds
    assert cli.main(["detect", "--run", run_uri, "--shard", "00000"]) == 0
    rows = _detection_rows(layout)
    assert {r["image"] for r in rows} == set(PHOTOS)
    assert [r for r in rows if r["failure"]] == []


def test_a_crop_s3_never_serves_fails_the_classify_shard_with_75_and_commits_nothing(s3, tmp_path) -> None:
    run = _plan_photos(
        s3,
        "s3://pipeline/",  # the crops in S3 too, where the faults are
        classifier=str(MODELS / "classifier.pth"),
        classifier_arch=json.loads((MODELS / "classifier.json").read_text())["arch"],
        classifier_labels=str(MODELS / "labels.txt"),
    )
    run_uri, layout = run["run_uri"], RunLayout(run["run_uri"])
    assert cli.main(["detect", "--run", run_uri, "--shard", "00000"]) == 0
    assert plan_classification(run)["shard_count"] == 1
    crop = next(r["crop_uri"] for r in _detection_rows(layout) if r["crop_uri"])
    faults = S3Faults()
    faults.fail(storage.split_s3(crop)[1], error="InternalError")

    assert cli.main(["classify", "--run", run_uri, "--shard", "c00000"]) == cli.EXIT_TEMPFAIL
    assert not storage.exists(layout.done("stage2", "c00000"))

    faults.clear()
    assert cli.main(["classify", "--run", run_uri, "--shard", "c00000"]) == 0
    assert storage.read_json(layout.done("stage2", "c00000"))["failed_crops"] == 0


def test_a_speciesnet_photo_s3_never_serves_raises_instead_of_making_a_failure_row(s3) -> None:
    s3.put_object(Bucket="traps", Key="cam/a.jpg", Body=(SAMPLES / PHOTOS[0]).read_bytes())
    S3Faults().fail("cam/a.jpg", error="SlowDown")
    photo = Photo("00000", "a.jpg", "s3://traps/cam/a.jpg", [(0, "animal", 0.9, (0.1, 0.1, 0.5, 0.5))])

    with pytest.raises(StorageUnavailable):
        classify_speciesnet._read(photo)
    assert photo.failure is None


def test_materialize_on_batch_exits_75_when_s3_does_not_serve_a_shards_results(s3) -> None:
    put_images(s3, "traps", ["cam/a.jpg", "cam/b.jpg"])
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"x")
    config = {"input": "s3://traps/", "shard_size": 1, "detector": "s3://pipeline/models/detector.pt"}
    run = plan_detection(config, "m", "s3://pipeline/")
    layout = RunLayout(run["run_uri"])
    commit_detection_shard(layout, "00000", {})
    commit_detection_shard(layout, "00001", {})
    S3Faults().fail(storage.split_s3(layout.results("stage1", "00001"))[1], error="InternalError")

    assert cli.main(["materialize", "--run", run["run_uri"]]) == cli.EXIT_TEMPFAIL
    assert not storage.exists(layout.detections_parquet)
