"""PlanClassification: whole detection shards grouped into classification shards by crop count."""

from __future__ import annotations

from wildlife_common import storage
from wildlife_common.layout import RunLayout

from tests.conftest import load_handler
from tests.helpers import commit_detection_shard, put_images

plan = load_handler("plan_detection").lambda_handler
plan_classification = load_handler("plan_classification").lambda_handler

CONFIG = {
    "input": "s3://traps/",
    "detector": "s3://pipeline/models/d.pt",
    "classifier": "s3://pipeline/models/c.pth",
    "classifier_arch": "resnet18",
    "classifier_labels": "s3://pipeline/models/labels.txt",
    "shard_size": 1,
    "classify_shard_crops": 3,
}


def animals(n: int) -> list:
    return [("animal", 0.9, (0.1, 0.1, 0.1, 0.1), f"crop-{i}") for i in range(n)]


def test_crops_are_grouped_by_whole_detection_shards_and_committed_groups_are_kept(s3, lambda_context) -> None:
    for key in ("d.pt", "c.pth", "labels.txt"):
        s3.put_object(Bucket="pipeline", Key=f"models/{key}", Body=b"x")
    put_images(s3, "traps", [f"{i}.jpg" for i in range(6)])
    run = plan({"config": CONFIG, "execution_name": "r"}, lambda_context)
    layout = RunLayout(run["run_uri"])
    crops = {"00000": 2, "00001": 0, "00002": 1, "00003": 2, "00004": 4}  # 00005 failed: not committed
    for shard, n in crops.items():
        image = storage.read_json(layout.shard_manifest("stage1", shard))["images"][0]["image"]
        commit_detection_shard(layout, shard, {image: animals(n)})

    result = plan_classification({"run": run}, lambda_context)
    assert result["shard_count"] == 3 and result["crops"] == 9
    groups = [storage.read_json(layout.shard_manifest("stage2", f"c{i:05d}"))["stage1_shards"] for i in range(3)]
    # No crops in 00001: left out. A shard with more crops than the target is a group of its own.
    assert groups == [["00000", "00002"], ["00003"], ["00004"]]
    assert storage.read_json(layout.shards_json("stage2")) == [
        {"shard": "c00000", "crops": 3},
        {"shard": "c00001", "crops": 2},
        {"shard": "c00002", "crops": 4},
    ]

    # c00001 commits; a retried plan leaves it alone and renumbers the rest after it.
    storage.write_json(layout.done("stage2", "c00001"), {"shard": "c00001", "stage1_shards": ["00003"]})
    again = plan_classification({"run": run}, lambda_context)
    assert storage.read_json(layout.shards_json("stage2")) == [
        {"shard": "c00002", "crops": 3},
        {"shard": "c00003", "crops": 4},
    ]
    assert again["crops"] == 7


def test_a_detection_only_run_plans_no_classification(s3, lambda_context) -> None:
    s3.put_object(Bucket="pipeline", Key="models/d.pt", Body=b"x")
    put_images(s3, "traps", ["a.jpg"])
    run = plan(
        {"config": {"input": "s3://traps/", "detector": "s3://pipeline/models/d.pt"}, "execution_name": "r"},
        lambda_context,
    )
    commit_detection_shard(RunLayout(run["run_uri"]), "00000", {"a.jpg": animals(2)})
    assert plan_classification({"run": run}, lambda_context)["shard_count"] == 0
