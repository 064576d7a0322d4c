"""A large input's listing through the real state machine: ListInput's Map of listers, AssemblePlan,
then the run as usual, with the same results as an input planned by PlanDetection alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import SAMPLES, demo_config
from tests.e2e.test_resume import table
from wildlife.engine.local import LocalEngine

# The whole pipeline in the local engine: 600 s as for the other e2e tests.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_an_input_listed_in_parallel_ranges_gives_the_table_of_one_listed_whole(
    engine: LocalEngine, tmp_path: Path
) -> None:
    # The 21 samples in three camera folders of 7, listed in parallel once a run has more than 5 files.
    photos = tmp_path / "photos"
    for i, sample in enumerate(sorted(SAMPLES.glob("*.jpg"))):
        (photos / f"cam{i % 3}").mkdir(parents=True, exist_ok=True)
        shutil.copy(sample, photos / f"cam{i % 3}" / sample.name)
    out = tmp_path / "out"

    parallel = engine.run(demo_config(photos, out, run_id="parallel", list_in_parallel_above=5, shard_size=5))
    whole = engine.run(demo_config(photos, out, run_id="whole", shard_size=5))

    assert parallel.succeeded and whole.succeeded, (parallel.cause, whole.cause)
    entered = [e["stateEnteredEventDetails"]["name"] for e in parallel.history if e["type"] == "MapStateEntered"]
    assert entered[:1] == ["ListInput"]
    record = json.loads((out / "runs" / "parallel" / "run.json").read_text())
    assert record["listing"] == {"parts": 4, "rounds": 1, "listers": 4}  # before cam0, then one per camera
    assert "listing" not in json.loads((out / "runs" / "whole" / "run.json").read_text())
    # Shards differ (per range, partial ones joined), results do not.
    rows = table(out / "runs" / "parallel")
    assert [{k: v for k, v in r.items() if k != "shard"} for r in rows] == [
        {k: v for k, v in r.items() if k != "shard"} for r in table(out / "runs" / "whole")
    ]
    assert len({row["image"] for row in rows}) == 21
    summary = json.loads((out / "runs" / "parallel" / "final" / "summary.json").read_text())
    assert summary["images"] == 21 and summary["balanced"] is True
    # The listers' child executions and the extra states are in the cost: 3 more parent states, 4 children.
    whole_summary = json.loads((out / "runs" / "whole" / "final" / "summary.json").read_text())
    assert summary["cost"]["state_transitions"] - whole_summary["cost"]["state_transitions"] == 3 + 4 + (
        summary["shards"]["stage1"]["planned"] - whole_summary["shards"]["stage1"]["planned"]
    )
