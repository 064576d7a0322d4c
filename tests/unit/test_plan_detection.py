"""PlanDetection: lists the input, shards it, resumes and skips, through the real handler."""

from __future__ import annotations

import pytest
from wildlife_common import storage
from wildlife_common.errors import ConfigError, InputNotFound
from wildlife_common.layout import RunLayout

from tests.conftest import load_handler
from tests.helpers import commit_detection_shard, put_images

handler = load_handler("plan_detection").lambda_handler


def event(**config) -> dict:
    return {"config": {"detector": "s3://pipeline/models/detector.pt", **config}, "execution_name": "run-1"}


@pytest.fixture
def detector(s3) -> None:
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"weights")


@pytest.fixture
def big_input(s3, detector) -> list[str]:
    """2,510 images in nested folders with mixed-case extensions, plus files that are not images."""
    keys = [
        f"site{s}/cam{c}/IMG_{i:04d}.{'JPG' if i % 2 else 'jpeg'}"
        for s in range(2)
        for c in range(5)
        for i in range(251)
    ]
    put_images(s3, "traps", keys)
    put_images(s3, "traps", ["site0/readme.txt", "site0/cam0/._IMG_0001.JPG", "site1/clip.MP4"])
    put_images(s3, "traps", ["elsewhere/IMG_9999.JPG"])
    return keys


@pytest.mark.slow
def test_a_large_input_is_listed_page_by_page_and_cut_into_shards(s3, big_input, lambda_context) -> None:
    result = handler(event(input="s3://traps/", shard_size=1000), lambda_context)
    assert result["run_id"] == "run-1"
    assert result["run_uri"] == "s3://pipeline/runs/run-1/"
    assert result["images"] == 2511  # 2,510 + the one under elsewhere/
    assert result["shard_count"] == 3
    assert result["shards"] == {"bucket": "pipeline", "key": "runs/run-1/stage1/shards.json"}
    assert result["detection_only"] is True
    assert result["tolerated_failure_percentage"] == 5.0

    layout = RunLayout(result["run_uri"])
    shards = storage.read_json(layout.shards_json("stage1"))
    assert shards == [
        {"shard": "00000", "images": 1000},
        {"shard": "00001", "images": 1000},
        {"shard": "00002", "images": 511},
    ]
    listed = []
    for ref in shards:
        manifest = storage.read_json(layout.shard_manifest("stage1", ref["shard"]))
        listed += [image["image"] for image in manifest["images"]]
        assert all(set(image) == {"uri", "image", "size", "etag"} for image in manifest["images"])
    assert sorted(listed) == sorted([*big_input, "elsewhere/IMG_9999.JPG"])
    record = storage.read_json(layout.run_json)
    # readme.txt and clip.MP4; ._IMG_0001.JPG (macOS metadata) is a hidden file.
    assert record["counts"]["not_images"] == 2 and record["counts"]["hidden"] == 1
    assert record["config"]["input"] == "s3://traps/"


def test_a_sub_prefix_keeps_paths_relative_to_it(s3, detector, lambda_context) -> None:
    put_images(s3, "traps", ["2026/cam1/a.JPG", "2026-old/b.jpg"])
    result = handler(event(input="s3://traps/2026"), lambda_context)
    manifest = storage.read_json(RunLayout(result["run_uri"]).shard_manifest("stage1", "00000"))
    assert [i["image"] for i in manifest["images"]] == ["cam1/a.JPG"]
    assert manifest["images"][0]["uri"] == "s3://traps/2026/cam1/a.JPG"


def test_an_empty_input_plans_no_shards(s3, detector, lambda_context) -> None:
    put_images(s3, "traps", ["empty/notes.txt"])
    result = handler(event(input="s3://traps/empty/"), lambda_context)
    assert result["shard_count"] == 0 and result["images"] == 0
    assert storage.read_json(RunLayout(result["run_uri"]).shards_json("stage1")) == []


def test_a_missing_bucket_fails_with_a_cause_a_person_understands(s3, detector, lambda_context) -> None:
    with pytest.raises(InputNotFound, match="bucket 'no-such-bucket' does not exist"):
        handler(event(input="s3://no-such-bucket/photos/"), lambda_context)


def test_missing_detector_weights_fail_before_any_gpu_job(s3, lambda_context) -> None:
    put_images(s3, "traps", ["a.jpg"])
    with pytest.raises(ConfigError, match=r"detector not found: s3://pipeline/models/detector\.pt"):
        handler(event(input="s3://traps/"), lambda_context)


def test_a_bad_setting_fails_with_its_name(s3, detector, lambda_context) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'shards'"):
        handler(event(input="s3://traps/", shards=4), lambda_context)


@pytest.mark.slow
def test_resuming_a_run_queues_only_uncommitted_shards(s3, big_input, lambda_context) -> None:
    first = handler(event(input="s3://traps/", shard_size=1000), lambda_context)
    layout = RunLayout(first["run_uri"])
    commit_detection_shard(layout, "00001", {})
    # New photos arriving later do not change a planned run: it finishes what it planned.
    put_images(s3, "traps", ["site9/late.jpg"])

    again = handler(event(input="s3://traps/", shard_size=1000), lambda_context)
    assert again["shard_count"] == 2
    assert again["images"] == 2511
    assert again["pending_images"] == 1511
    assert storage.read_json(layout.shards_json("stage1")) == [
        {"shard": "00000", "images": 1000},
        {"shard": "00002", "images": 511},
    ]
    assert len(storage.read_json(layout.run_json)["resumed"]) == 1


@pytest.mark.slow
def test_resuming_with_another_detector_is_refused(s3, big_input, lambda_context) -> None:
    handler(event(input="s3://traps/"), lambda_context)
    s3.put_object(Bucket="pipeline", Key="models/other.pt", Body=b"w")
    with pytest.raises(ConfigError, match="run run-1 already exists with detector="):
        handler(
            {
                **event(input="s3://traps/"),
                "config": {"input": "s3://traps/", "detector": "s3://pipeline/models/other.pt"},
            },
            lambda_context,
        )


@pytest.mark.slow
def test_an_incremental_run_skips_images_processed_before_unless_they_changed(s3, detector, lambda_context) -> None:
    from wildlife_common.incremental import IndexWriter
    from wildlife_common.provenance import input_id

    put_images(s3, "traps", ["cam/a.jpg", "cam/b.jpg", "cam/c.jpg"])
    old = {f.uri: f.etag for f in storage.list_files("s3://traps/")}
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        index = IndexWriter("s3://pipeline/", input_id("s3://traps/"), "last-night", work)
        index.add(list(old), list(old.values()))
        index.close()
    s3.put_object(Bucket="traps", Key="cam/b.jpg", Body=b"re-uploaded, new content")  # new ETag
    put_images(s3, "traps", ["cam/d.jpg"])

    result = handler(
        {
            "config": {"input": "s3://traps/", "detector": "s3://pipeline/models/detector.pt", "incremental": True},
            "execution_name": "tonight",
        },
        lambda_context,
    )
    assert result["images"] == 2 and result["skipped"] == 2
    manifest = storage.read_json(RunLayout(result["run_uri"]).shard_manifest("stage1", "00000"))
    assert [i["image"] for i in manifest["images"]] == ["cam/b.jpg", "cam/d.jpg"]


def test_a_local_folder_is_planned_the_same_way(tmp_path, lambda_context) -> None:
    photos = tmp_path / "photos"
    for rel in ["cam1/IMG_1.JPG", "cam1/IMG_2.jpg", "cam2/x.png", "cam2/notes.txt"]:
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        (photos / rel).write_bytes(b"img")
    weights = tmp_path / "detector.pt"
    weights.write_bytes(b"w")
    result = handler(
        {
            "config": {
                "input": str(photos),
                "detector": str(weights),
                "output": str(tmp_path / "out"),
                "shard_size": 2,
            },
            "execution_name": "local-1",
        },
        lambda_context,
    )
    assert result["images"] == 3 and result["shard_count"] == 2
    assert result["run_uri"] == str((tmp_path / "out" / "runs" / "local-1").resolve()) + "/"
    manifest = storage.read_json(RunLayout(result["run_uri"]).shard_manifest("stage1", "00000"))
    assert [i["image"] for i in manifest["images"]] == ["cam1/IMG_1.JPG", "cam1/IMG_2.jpg"]


def test_max_concurrency_defaults_to_the_spot_jobs_the_stack_runs(s3, lambda_context, monkeypatch) -> None:
    from wildlife_common.planning import plan_detection

    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"w")
    put_images(s3, "traps", ["a.jpg"])
    config = {"input": "s3://traps/", "detector": "s3://pipeline/models/detector.pt", "output": "s3://pipeline/"}
    monkeypatch.setenv("SPOT_MAX_VCPUS", "64")
    monkeypatch.setenv("JOB_VCPUS", "4")
    assert plan_detection({**config, "run_id": "r1"}, None, None)["max_concurrency"] == 16
    assert plan_detection({**config, "run_id": "r2", "max_concurrency": 40}, None, None)["max_concurrency"] == 40
    monkeypatch.delenv("SPOT_MAX_VCPUS")  # a local run: the engine's --jobs bounds it instead
    assert plan_detection({**config, "run_id": "r3"}, None, None)["max_concurrency"] == 100


def test_a_scheduled_run_does_nothing_while_the_previous_one_still_runs(s3, lambda_context, monkeypatch) -> None:
    """skip_if_running (the schedule's input sets it): no shards, no run folder, the other run named."""
    import json

    import boto3
    from wildlife_common.planning import plan_detection

    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = sfn.create_state_machine(
        name="pipeline", roleArn=role, definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Succeed"}}})
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", machine)
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"w")
    put_images(s3, "traps", ["a.jpg"])
    config = {"input": "s3://traps/", "detector": "s3://pipeline/models/detector.pt", "output": "s3://pipeline/"}
    scheduled = {**config, "incremental": True, "skip_if_running": True}
    sfn.start_execution(stateMachineArn=machine, name="by-hand", input=json.dumps(config))
    sfn.start_execution(stateMachineArn=machine, name="tonight", input=json.dumps(scheduled))

    # A run started by hand is not a reason to skip; the same execution (itself) is not either.
    assert "overlapping_run" not in plan_detection(scheduled, "tonight", None)
    sfn.start_execution(stateMachineArn=machine, name="tomorrow", input=json.dumps(scheduled))
    skipped = plan_detection(scheduled, "tomorrow", None)
    assert skipped["overlapping_run"] == "tonight" and skipped["shard_count"] == 0
    assert not storage.exists("s3://pipeline/runs/tomorrow/run.json")
    # Without the setting, runs overlap as before.
    assert "overlapping_run" not in plan_detection({**config, "run_id": "manual"}, "manual", None)


def test_hidden_and_system_folders_and_our_own_output_are_not_photos(tmp_path, lambda_context) -> None:
    from wildlife_common.planning import plan_detection

    photos = tmp_path / "photos"
    for relative in (
        "cam1/a.jpg",
        "cam1/.thumbnails/a.jpg",
        ".Trash-1000/files/old.jpg",
        "cam2/@eaDir/a.jpg/SYNOPHOTO_THUMB_M.jpg",
        "$RECYCLE.BIN/x.jpg",
        "results/runs/old/crops/00000/c.jpg",  # an earlier run's crops, with --out inside the input
    ):
        (photos / relative).parent.mkdir(parents=True, exist_ok=True)
        (photos / relative).write_bytes(b"jpeg")
    (tmp_path / "d.pt").write_bytes(b"w")
    config = {"input": str(photos), "detector": str(tmp_path / "d.pt"), "output": str(photos / "results")}

    plan = plan_detection({**config, "run_id": "r1"}, None, None)
    assert plan["images"] == 1
    record = storage.read_json(str(photos / "results" / "runs" / "r1" / "run.json"))
    assert record["counts"]["hidden"] == 6  # the five above, and this run's own run.json
    assert plan_detection({**config, "run_id": "r2", "include_hidden": True}, None, None)["images"] == 5
    manifest = storage.read_json(str(photos / "results" / "runs" / "r2" / "stage1" / "shards" / "00000.json"))
    assert sorted(i["image"] for i in manifest["images"]) == [
        "$RECYCLE.BIN/x.jpg",
        ".Trash-1000/files/old.jpg",
        "cam1/.thumbnails/a.jpg",
        "cam1/a.jpg",
        "cam2/@eaDir/a.jpg/SYNOPHOTO_THUMB_M.jpg",
    ]  # the output folder stays out even then


def test_one_s3_object_given_as_the_input_is_a_run_of_that_photo(s3, detector, lambda_context) -> None:
    put_images(s3, "traps", ["cam1/IMG_1.JPG", "cam1/IMG_2.JPG", "cam1/IMG_2.JPG.bak/x.jpg"])

    plan = handler(event(input="s3://traps/cam1/IMG_2.JPG"), lambda_context)

    assert plan["images"] == 1
    layout = RunLayout(plan["run_uri"])
    [image] = storage.read_json(layout.shard_manifest("stage1", "00000"))["images"]
    head = s3.head_object(Bucket="traps", Key="cam1/IMG_2.JPG")
    assert image == {
        "uri": "s3://traps/cam1/IMG_2.JPG",
        "image": "IMG_2.JPG",
        "size": head["ContentLength"],
        "etag": head["ETag"].strip('"'),
    }
    # The same input as its folder for incremental runs: a run on cam1/ skips the photo once it is done.
    assert storage.read_json(layout.run_json)["input_root"] == "s3://traps/cam1/"


def test_a_bucket_named_like_a_photo_is_a_bucket(s3, detector, lambda_context) -> None:
    s3.create_bucket(Bucket="traps.jpg")
    put_images(s3, "traps.jpg", ["cam1/IMG_1.JPG"])

    plan = handler(event(input="s3://traps.jpg"), lambda_context)

    assert plan["images"] == 1


def test_an_s3_photo_that_is_not_there_is_taken_as_a_folder_and_has_no_images(s3, detector, lambda_context) -> None:
    put_images(s3, "traps", ["cam1/IMG_1.JPG"])

    plan = handler(event(input="s3://traps/cam1/IMG_9.JPG"), lambda_context)

    assert plan["images"] == 0 and plan["shard_count"] == 0


def test_one_image_given_as_the_input_is_a_run_of_that_photo(tmp_path, lambda_context) -> None:
    from wildlife_common.planning import plan_detection

    photos = tmp_path / "cam1"
    photos.mkdir()
    for name in ("IMG_1.JPG", "IMG_2.JPG"):
        (photos / name).write_bytes(b"jpeg")
    (tmp_path / "d.pt").write_bytes(b"w")
    config = {"input": str(photos / "IMG_2.JPG"), "detector": str(tmp_path / "d.pt"), "output": str(photos)}

    plan = plan_detection({**config, "run_id": "one"}, None, None)

    assert plan["images"] == 1 and plan["shard_count"] == 1
    manifest = storage.read_json(str(photos / "runs" / "one" / "stage1" / "shards" / "00000.json"))
    # Named by its file name, as in a run over its folder; its neighbour is not part of the run.
    assert [(i["image"], i["uri"]) for i in manifest["images"]] == [("IMG_2.JPG", str(photos / "IMG_2.JPG"))]
