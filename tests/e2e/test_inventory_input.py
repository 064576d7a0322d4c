"""Nightly runs on S3 Inventory reports through the real state machine, in the local engine.

A bucket listed by one run, then a report of it with new photos: the report's run reads only the
new ones (the report and the bucket are one input for incremental runs), its data files listed by
ListInput's listers, and a third run on the same report finds nothing new, because the second
run's Materialize indexed what it did under the bucket too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import SAMPLES, demo_config, final
from tests.unit.test_inventory import MANIFEST, write_report
from wildlife.engine.local import LocalEngine

# The whole pipeline in the local engine: 600 s as for the other e2e tests.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_nightly_run_on_a_report_does_only_what_runs_on_the_bucket_did_not(
    engine: LocalEngine, tmp_path: Path
) -> None:
    s3 = engine.aws.client("s3")
    s3.create_bucket(Bucket="traps")
    s3.create_bucket(Bucket="reports")
    photos = sorted(SAMPLES.glob("*.jpg"))
    for i, photo in enumerate(photos[:14]):
        s3.put_object(Bucket="traps", Key=f"cam{i % 3}/{photo.name}", Body=photo.read_bytes())
    out = tmp_path / "out"

    listed = engine.run(demo_config("s3://traps/", out, run_id="listed", incremental=True))
    assert listed.succeeded, listed.cause

    # New photos come in; tonight's report (Parquet, three data files) lists all of them.
    new = [f"cam3/{photo.name}" for photo in photos[14:]]
    for key, photo in zip(new, photos[14:], strict=True):
        s3.put_object(Bucket="traps", Key=key, Body=photo.read_bytes())
    write_report(s3, "Parquet", files=3)
    nightly = engine.run(
        demo_config(MANIFEST, out, run_id="nightly", incremental=True, list_in_parallel_above=5, shard_size=3)
    )

    assert nightly.succeeded, nightly.cause
    entered = [e["stateEnteredEventDetails"]["name"] for e in nightly.history if e["type"] == "MapStateEntered"]
    assert entered[:1] == ["ListInput"]
    record = json.loads((out / "runs" / "nightly" / "run.json").read_text())
    assert record["listing"] == {"parts": 3, "rounds": 1, "listers": 3}
    rows, megadetector, summary = final(nightly.output["run_uri"])
    assert sorted({row["image"] for row in rows}) == sorted(new)
    assert all(row["image_uri"] == f"s3://traps/{row['image']}" and not row["failure"] for row in rows)
    assert summary["images"] == len(new) and summary["skipped_images"] == 14 and summary["balanced"] is True
    assert sorted(image["file"] for image in megadetector["images"]) == sorted(new)

    # As a schedule names it: the newest report of the inventory configuration, here the same one.
    newest = MANIFEST.replace("2026-12-01T01-00Z", "*")
    again = engine.run(demo_config(newest, out, run_id="again", incremental=True, list_in_parallel_above=5))

    assert again.succeeded, again.cause
    summary = final(again.output["run_uri"])[2]
    assert summary["images"] == 0 and summary["skipped_images"] == len(photos)
    assert json.loads((out / "runs" / "again" / "run.json").read_text())["report"] == MANIFEST
