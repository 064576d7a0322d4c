"""The sample scenes through the whole pipeline: what users read agrees with the scenes' ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from wildlife_common import storage

from tests.e2e.conftest import GROUND_TRUTH, SAMPLES, SHOW_THRESHOLD, agreement, demo_config, final
from wildlife.engine.local import MIRROR_BUCKET, LocalEngine

# The whole pipeline in the local engine: the longest such test took 57 s on 2 shared cores
# (test_resume.py); 600 s leaves room for a slower machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SAMPLE_IMAGES = sorted(GROUND_TRUTH)
# The demo models on their own held-out scenes: detector recall ~0.95, classifier top-1 ~0.99
# (demo/models/README.md). On the 21 samples they find every object; these bounds leave room for
# one or two misses across platforms, and still fail when boxes, categories or species are wrong.
MIN_RECALL = 0.9
MIN_PRECISION = 0.75
MIN_SPECIES_ACCURACY = 0.9


def check_outputs(run_uri: str, input_root: str) -> None:
    """Parquet, MegaDetector JSON and summary agree with each other and with the ground truth."""
    rows, megadetector, summary = final(run_uri)

    # Every input image exactly once in the summary's balance, the table and the JSON.
    assert summary["status"] == "succeeded"
    assert summary["balanced"] is True
    assert summary["images"] == len(SAMPLE_IMAGES) == summary["planned_images"]
    assert summary["images_with_detections"] + summary["empty_images"] + summary["failed_images"] == len(SAMPLE_IMAGES)
    assert summary["failed_images"] == 0
    assert summary["not_image_files"] == 1  # ground_truth.json
    assert sorted({r["image"] for r in rows}) == SAMPLE_IMAGES
    assert all(r["image_uri"] == storage.join(input_root, r["image"]) for r in rows)
    keys = [(r["image"], r["detection"]) for r in rows]
    assert len(keys) == len(set(keys)), "a detection appears twice"

    assert megadetector["info"]["format_version"] == "1.6"
    assert megadetector["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert sorted(image["file"] for image in megadetector["images"]) == SAMPLE_IMAGES
    md_detections = sum(len(image["detections"]) for image in megadetector["images"])
    assert md_detections == sum(1 for r in rows if r["detection"] is not None) == summary["detections"]

    # The scenes' ground truth: objects found with the right category, box and species.
    scores = agreement(rows)
    assert scores["recall"] >= MIN_RECALL, scores
    assert scores["precision"] >= MIN_PRECISION, scores
    assert scores["species_accuracy"] >= MIN_SPECIES_ACCURACY, scores
    for image in ("16_day_empty.jpg", "17_night_empty.jpg"):
        assert not [r for r in rows if r["image"] == image and (r["conf"] or 0) >= SHOW_THRESHOLD]
    truth_species = {o["species"] for t in GROUND_TRUTH.values() for o in t["objects"] if o["category"] == "animal"}
    assert set(summary["species"]) == truth_species
    labels = megadetector["classification_categories"]
    classified = [d for image in megadetector["images"] for d in image["detections"] if d.get("classifications")]
    assert classified and all(labels[d["classifications"][0][0]] for d in classified)


def test_the_sample_folder_gives_parquet_megadetector_json_and_summary_that_match_the_scenes(
    engine: LocalEngine, tmp_path: Path
) -> None:
    result = engine.run(demo_config(SAMPLES, tmp_path / "out"), timeout_s=300)

    assert result.succeeded, result.cause
    assert result.output["status"] == "succeeded"
    check_outputs(result.output["run_uri"], storage.as_folder(str(SAMPLES)))
    # Three detection shards ran as three Batch jobs, one attempt each; classification as one.
    assert sorted(job.job_name for job in result.jobs) == [
        "classify-c00000",
        "detect-00000",
        "detect-00001",
        "detect-00002",
    ]
    # The Maps' children's results went to S3 (ResultWriter), not into the execution's state.
    written = engine.aws.client("s3").list_objects_v2(Bucket=MIRROR_BUCKET, Prefix="map-results/")
    keys = [item["Key"] for item in written.get("Contents", [])]
    for stage in ("detect", "classify"):
        assert any(key.startswith(f"map-results/{stage}/") and key.endswith("manifest.json") for key in keys), keys


def test_an_s3_input_is_read_in_place_with_the_same_results(engine: LocalEngine, tmp_path: Path) -> None:
    s3 = engine.aws.client("s3")
    s3.create_bucket(Bucket="traps")
    for path in sorted(SAMPLES.iterdir()):
        s3.put_object(Bucket="traps", Key=f"2026/cam-07/{path.name}", Body=path.read_bytes())

    result = engine.run(demo_config("s3://traps/2026/cam-07/", tmp_path / "out"), timeout_s=300)

    assert result.succeeded, result.cause
    check_outputs(result.output["run_uri"], "s3://traps/2026/cam-07/")


def test_an_empty_folder_ends_successfully_with_an_empty_result(engine: LocalEngine, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    result = engine.run(demo_config(empty, tmp_path / "out"), timeout_s=120)

    assert result.succeeded, result.cause
    rows, megadetector, summary = final(result.output["run_uri"])
    assert rows == []
    assert megadetector["images"] == []
    assert summary["images"] == 0
    assert summary["balanced"] is True
    assert result.jobs == []  # no shard, so no GPU job
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.history if e["type"].endswith("StateEntered")]
    assert "DetectShards" not in entered


def test_poison_pill_images_end_as_failure_rows_and_every_other_image_is_processed(
    engine: LocalEngine, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    good = SAMPLE_IMAGES[:5]
    for name in good:
        shutil.copy(SAMPLES / name, photos / name)
    jpeg = (SAMPLES / good[0]).read_bytes()
    poison = {
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "empty.jpg": b"",
        "not_a_photo.jpg": b"%PDF-1.7 this is a document with a photo's name",
    }
    for name, data in poison.items():
        (photos / name).write_bytes(data)

    result = engine.run(demo_config(photos, tmp_path / "out", detection_only=True, shard_size=4), timeout_s=300)

    assert result.succeeded, result.cause
    rows, megadetector, summary = final(result.output["run_uri"])
    by_image: dict[str, list[dict]] = {}
    for row in rows:
        by_image.setdefault(row["image"], []).append(row)
    assert sorted(by_image) == sorted([*good, *poison])
    for name in poison:
        assert len(by_image[name]) == 1 and by_image[name][0]["failure"], name
    for name in good:
        assert all(r["failure"] is None and r["width"] == 1440 for r in by_image[name]), name
    assert summary["failed_images"] == len(poison)
    assert summary["images"] == len(good) + len(poison)
    assert summary["balanced"] is True
    failed_md = {i["file"]: i for i in megadetector["images"] if i.get("failure")}
    assert sorted(failed_md) == sorted(poison)
    assert all(i["detections"] is None for i in failed_md.values())
