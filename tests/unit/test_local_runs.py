"""How a local run ended, read from its folder's files when no execution is left to ask.

The e2e tests (tests/e2e/test_cli.py) read a real run's folder; these write the few files that
decide the status by hand, to cover the orders of events a real run reaches only by luck or by
hours: a resume after the end, a failure after the summary, a run stopped before its record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wildlife_common import storage
from wildlife_common.layout import RunLayout

from wildlife.ops.local_runs import FAILED, INCOMPLETE, SUCCEEDED, list_local_runs, read_local_run


def write_run(
    out: Path,
    run_id: str,
    *,
    created: str | None = "2026-11-29T03:00:00+00:00",
    resumed: list[str] | None = None,
    finished: str | None = None,
    failed: str | None = None,
) -> RunLayout:
    """A run folder with run.json (unless ``created`` is None), and a summary or failure written at those times."""
    layout = RunLayout.for_run(str(out), run_id)
    Path(layout.run_uri).mkdir(parents=True)
    if created is not None:
        record: dict[str, Any] = {"run_id": run_id, "created": created, "planned": True, "counts": {"images": 40}}
        storage.write_json(layout.run_json, {**record, "resumed": resumed} if resumed else record)
    if finished is not None:
        storage.write_json(
            layout.summary_json, {"run_id": run_id, "images": 40, "failed_images": 2, "finished": finished}
        )
    if failed is not None:
        failure = {"error": "ShardsFailed", "cause": "stage1/00001:\n  exit code 1", "failed": failed}
        storage.write_json(layout.failure_json, failure)
    return layout


def test_a_finished_run_succeeded_and_took_from_its_start_to_its_summary(tmp_path: Path) -> None:
    write_run(tmp_path, "r1", finished="2026-11-29T03:10:30+00:00")

    run = read_local_run(str(tmp_path), "r1")

    assert (run.status, run.images, run.failed_images, run.seconds) == (SUCCEEDED, 40, 2, 630.0)
    assert run.error is None


def test_a_run_resumed_after_its_summary_and_stopped_again_is_incomplete(tmp_path: Path) -> None:
    """Its summary is an earlier attempt's: the latest one did not end."""
    write_run(tmp_path, "r1", finished="2026-11-29T03:10:00+00:00", resumed=["2026-11-30T08:00:00+00:00"])

    run = read_local_run(str(tmp_path), "r1")

    assert (run.status, run.images, run.failed_images, run.seconds) == (INCOMPLETE, 40, None, None)
    assert run.summary is not None  # report still shows what that attempt wrote
    assert run.resume_command == f"wildlife run --resume r1 --out {tmp_path}"


def test_a_failure_recorded_after_the_summary_is_how_the_run_ended(tmp_path: Path) -> None:
    """Materialize writes the summary, then fails the run when its counts do not add up."""
    write_run(tmp_path, "r1", finished="2026-11-29T03:10:00+00:00", failed="2026-11-29T03:10:01+00:00")

    run = read_local_run(str(tmp_path), "r1")

    assert (run.status, run.seconds) == (FAILED, 601.0)
    assert run.error == "ShardsFailed: stage1/00001: exit code 1"  # one line


def test_an_earlier_attempts_failure_does_not_hide_a_resume_that_succeeded(tmp_path: Path) -> None:
    write_run(
        tmp_path,
        "r1",
        failed="2026-11-29T03:05:00+00:00",
        resumed=["2026-11-29T04:00:00+00:00"],
        finished="2026-11-29T04:02:00+00:00",
    )

    run = read_local_run(str(tmp_path), "r1")

    assert (run.status, run.seconds, run.failure) == (SUCCEEDED, 120.0, None)


def test_a_run_stopped_before_its_record_is_started_again_not_resumed(tmp_path: Path) -> None:
    """``wildlife run --resume`` reads run.json, which such a run never wrote."""
    write_run(tmp_path, "r1", created=None)

    run = read_local_run(str(tmp_path), "r1")

    assert (run.status, run.started, run.images) == (INCOMPLETE, None, None)
    assert run.resume_command == f"wildlife run FOLDER --out {tmp_path} --run-id r1"


def test_the_list_is_newest_first_and_filters_by_status(tmp_path: Path) -> None:
    write_run(tmp_path, "old", created="2026-11-01T00:00:00+00:00", finished="2026-11-01T01:00:00+00:00")
    write_run(tmp_path, "new", created="2026-11-03T00:00:00+00:00")
    write_run(tmp_path, "mid", created="2026-11-02T00:00:00+00:00", failed="2026-11-02T00:30:00+00:00")
    write_run(tmp_path, "bare", created=None)  # no start time: last

    assert [run.run_id for run in list_local_runs(str(tmp_path), limit=20)] == ["new", "mid", "old", "bare"]
    assert [run.run_id for run in list_local_runs(str(tmp_path), limit=2)] == ["new", "mid"]
    assert [run.run_id for run in list_local_runs(str(tmp_path), limit=20, status=INCOMPLETE)] == ["new", "bare"]
    assert list_local_runs(str(tmp_path / "nothing here"), limit=20) == []


def test_a_short_list_reads_the_summaries_of_its_runs_only(tmp_path: Path, monkeypatch) -> None:
    # An --out folder of a year of nightly runs: the newest two are found by their run.json alone.
    for day in range(1, 29):
        write_run(
            tmp_path,
            f"night-{day:02d}",
            created=f"2026-11-{day:02d}T03:00:00+00:00",
            finished="2026-11-30T00:00:00+00:00",
        )
    read: list[str] = []
    original = storage.read_json
    monkeypatch.setattr(storage, "read_json", lambda uri: read.append(uri) or original(uri))

    runs = list_local_runs(str(tmp_path), limit=2)

    assert [run.run_id for run in runs] == ["night-28", "night-27"]
    assert sum(uri.endswith("summary.json") for uri in read) == 2
    assert sum(uri.endswith("run.json") for uri in read) == 28  # each once, ordering and reading alike
    assert list_local_runs(str(tmp_path), limit=0) == []
