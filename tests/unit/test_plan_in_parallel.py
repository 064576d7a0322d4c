"""A large input is listed in parallel key ranges (ListInput), through the real handler's three steps.

``list_in_parallel_above`` is set low so that a few hundred keys take the path ten million take.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from wildlife_common import storage
from wildlife_common.layout import RunLayout

from tests.conftest import FakeLambdaContext, load_handler
from tests.helpers import plan_through_handler, put_images

handler = load_handler("plan_detection").lambda_handler

# 12 camera folders of 25, 30, ... photos, photos at the top and between the folders, and files that
# are not photos: ranges end with partly filled shards, and some ranges hold nothing but a folder.
KEYS = [f"cam{c:02d}/IMG_{i:04d}.JPG" for c in range(12) for i in range(25 + 5 * c)]
OTHERS = ["a_top.jpg", "cam05.jpg", "notes.txt", "cam03/thumbs.db", ".hidden/x.jpg", "zz/last.jpeg"]


@pytest.fixture
def traps(s3) -> list[str]:
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"weights")
    put_images(s3, "traps", [f"in/{k}" for k in KEYS + OTHERS])
    return sorted([*KEYS, "a_top.jpg", "cam05.jpg", "zz/last.jpeg"])


def event(**config: Any) -> dict[str, Any]:
    settings = {"input": "s3://traps/in/", "detector": "s3://pipeline/models/detector.pt", "shard_size": 40}
    return {"config": {**settings, **config}, "execution_name": "big"}


def planned_images(plan: dict[str, Any]) -> list[str]:
    layout = RunLayout(plan["run_uri"])
    shards = storage.read_json(layout.shards_json("stage1"))
    assert shards == storage.read_json(layout.plan_json)
    return [
        image["image"]
        for ref in shards
        for image in storage.read_json(layout.shard_manifest("stage1", ref["shard"]))["images"]
    ]


def test_a_small_input_is_listed_by_plan_detection_alone(traps, lambda_context) -> None:
    plan = handler(event(), lambda_context)

    assert "listing" not in plan and plan["images"] == len(traps)
    assert sorted(planned_images(plan)) == traps
    assert plan["shards"]["key"].endswith("stage1/shards.json")


def test_above_the_limit_ranges_are_listed_apart_and_every_image_is_in_one_full_shard(traps, lambda_context) -> None:
    first = handler(event(list_in_parallel_above=100), lambda_context)
    # The first step only splits: no shards yet, the ranges for the ListInput Map to list.
    assert first["shard_count"] == 0 and first["listing"]["round"] == 1
    ranges = storage.read_json(RunLayout(first["run_uri"]).listing_json(1))
    # Before the first of 14 folders (12 cameras, .hidden, zz), and one range from each folder on.
    assert len(ranges) == first["listing"]["part_count"] == 15

    plan = plan_through_handler(handler, event(list_in_parallel_above=100), lambda_context)

    images = planned_images(plan)
    assert sorted(images) == traps and len(images) == len(set(images)) == plan["images"]
    shards = storage.read_json(RunLayout(plan["run_uri"]).plan_json)
    # Each range's last shard was partly filled; joined, all shards are full but the very last.
    assert all(ref["images"] == 40 for ref in shards[:-1]) and 0 < shards[-1]["images"] <= 40
    assert len(shards) == -(-len(traps) // 40)
    record = storage.read_json(RunLayout(plan["run_uri"]).run_json)
    assert record["listing"] == {"parts": 15, "rounds": 1, "listers": 15}
    assert record["counts"]["images"] == len(traps)
    assert record["counts"]["not_images"] == 2 and record["counts"]["hidden"] == 1


@dataclasses.dataclass
class ShortLivedContext(FakeLambdaContext):
    """A lister whose function has little time left after a few shards: it must stop and go on later."""

    calls: int = 0

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        self.calls += 1
        return 900_000 if self.calls % 3 else 30_000  # every third check: less than a minute left


def test_a_range_that_outlasts_its_lister_is_listed_on_in_the_next_round(traps) -> None:
    # One camera folder with no folders below it: one range, 5 shards of 5, and a lister that has
    # less than a minute left at its third check, so it stops after three shards.
    context = ShortLivedContext()
    plan = plan_through_handler(
        handler, event(input="s3://traps/in/cam00/", list_in_parallel_above=10, shard_size=5), context
    )

    assert sorted(planned_images(plan)) == sorted(k.removeprefix("cam00/") for k in KEYS if k.startswith("cam00/"))
    record = storage.read_json(RunLayout(plan["run_uri"]).run_json)
    assert record["listing"] == {"parts": 1, "rounds": 2, "listers": 2}
    assert [ref["shard"] for ref in storage.read_json(RunLayout(plan["run_uri"]).plan_json)] == [
        f"0000-{i:05d}" for i in range(5)
    ]


def test_an_incremental_run_listed_in_ranges_skips_what_earlier_runs_did_in_every_range(
    traps, s3, lambda_context, tmp_path
) -> None:
    from wildlife_common.incremental import IndexWriter
    from wildlife_common.provenance import input_id

    # Last night's run did every other photo of every camera folder.
    done = {f.uri: f.etag for f in storage.list_files("s3://traps/in/") if f.uri.endswith("0.JPG")}
    index = IndexWriter("s3://pipeline/", input_id("s3://traps/in/"), "last-night", str(tmp_path))
    index.add(list(done), list(done.values()))
    index.close()

    plan = plan_through_handler(handler, event(list_in_parallel_above=100, incremental=True), lambda_context)

    assert plan["skipped"] == len(done) > 12
    assert sorted(planned_images(plan)) == [k for k in traps if f"s3://traps/in/{k}" not in done]
