"""Resume: a run killed in the middle and run again ends with the same table as an uninterrupted run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.conftest import SAMPLES, demo_config
from wildlife.engine.local import LocalEngine

# The whole pipeline in the local engine: the longest such test took 57 s on 2 shared cores
# (test_resume.py); 600 s leaves room for a slower machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# 3 images per shard: the 21 samples make 7 shards, so a kill after the first commit leaves most to do.
SHARD_SIZE = 3
# Columns that name the run itself (its id, and crops stored under its folder) differ between two runs.
RUN_SPECIFIC = {"run_id", "crop_uri"}


def wildlife(*args: str) -> list[str]:
    return [sys.executable, "-m", "wildlife", "run", *args]


def rounded(value: object) -> object:
    """Floats to 5 decimals: the same model on the same batch gives the same numbers, up to float noise."""
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def table(run_folder: Path) -> list[dict]:
    """The final table's rows without the run-specific columns, in a stable order."""
    rows = pq.read_table(io.BytesIO((run_folder / "final" / "detections.parquet").read_bytes())).to_pylist()
    cleaned = [{k: rounded(v) for k, v in row.items() if k not in RUN_SPECIFIC} for row in rows]
    return sorted(cleaned, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def test_a_run_killed_in_the_middle_and_resumed_gives_the_same_table_as_an_uninterrupted_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    killed = out / "runs" / "killed"
    results = killed / "stage1" / "results"
    # GIVEN a real `wildlife run` process, killed (SIGKILL: no cleanup at all) once a shard is committed
    process = subprocess.Popen(
        wildlife(str(SAMPLES), "--out", str(out), "--run-id", "killed", "--shard-size", str(SHARD_SIZE)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240  # the first shard waits for torch, ultralytics and the model to load
    while not list(results.glob("*.done.json")):
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "no shard committed in time"
        time.sleep(0.02)
    process.kill()
    process.wait()
    committed = {p.name: p.read_text() for p in results.glob("*.done.json")}
    assert 1 <= len(committed) < 7, "the kill must leave the run half done"
    assert not (killed / "final").exists()

    # WHEN it is run again by its id
    resumed = subprocess.run(
        wildlife("--resume", "killed", "--out", str(out)), capture_output=True, text=True, timeout=300
    )

    # THEN it finishes, skipping what was committed, with the same table as a run never interrupted
    assert resumed.returncode == 0, resumed.stderr
    assert str(killed / "final" / "detections.parquet") in resumed.stdout
    for name, marker in committed.items():
        assert (results / name).read_text() == marker, f"{name} was done again"
    assert len(json.loads((killed / "run.json").read_text())["resumed"]) == 1
    summary = json.loads((killed / "final" / "summary.json").read_text())
    assert summary["images"] == 21 and summary["balanced"] is True and summary["shards"]["failed"] == []

    with LocalEngine(short_waits=True, log_dir=tmp_path / "logs") as engine:
        reference = engine.run(demo_config(SAMPLES, out, run_id="reference", shard_size=SHARD_SIZE), timeout_s=300)
    assert reference.succeeded, reference.cause
    resumed_rows = table(killed)
    assert resumed_rows == table(out / "runs" / "reference")
    assert len({row["image"] for row in resumed_rows}) == 21
    keys = [(row["image"], row["detection"]) for row in resumed_rows]
    assert len(keys) == len(set(keys)), "duplicate rows"
