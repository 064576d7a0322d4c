"""``wildlife run`` as a user runs it (README: ``make run``), in this process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import MODELS, SAMPLES
from wildlife.cli import main

pytestmark = pytest.mark.slow


def test_wildlife_run_on_the_samples_shows_progress_then_the_summary_and_the_three_outputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(["run", str(SAMPLES), "--out", str(tmp_path), "--run-id", "demo", "--shard-size", "7"])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    final = tmp_path / "runs" / "demo" / "final"
    # The live view (stderr is not a terminal here, so plain lines): states, then shard counts.
    for line in ("→ PlanDetection", "✓ DetectShards", "DetectShards: 3/3 shards, 21/21 images", "✓ Materialize"):
        assert line in captured.err, captured.err
    summary = json.loads((final / "summary.json").read_text())
    out = captured.out.splitlines()
    assert out[0].startswith("run demo: succeeded in ")
    assert f"21: {summary['images_above_threshold']} with detections at or above 0.2" in out[1]
    assert "animal" in out[2] and out[3].startswith("  top species ")
    assert out[-3:] == [f"  {final / name}" for name in ("detections.parquet", "megadetector.json", "summary.json")]
    assert all((final / name).is_file() for name in ("detections.parquet", "megadetector.json", "summary.json"))
    # Job and function output went to the run's log files, not to the terminal.
    assert '"event": "detect shard"' not in captured.out + captured.err
    assert list((tmp_path / "runs" / "demo" / "logs" / "jobs").glob("detect-*.log"))


def test_weights_that_cannot_run_are_one_line_before_the_run_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    weights = tmp_path / "detector.pt"
    weights.write_bytes(b"PK\x03\x04 not really a checkpoint")
    checkpoint = tmp_path / "classifier.pth"
    checkpoint.write_bytes(b"not a state dict either")
    classifier = ["--classifier", str(checkpoint), "--classifier-arch", "mobilenetv3_small_050"]
    classifier += ["--classifier-labels", str(MODELS / "labels.txt")]

    for options, what in (
        (["--detector", str(weights)], f"detector weights {weights} are not a model ultralytics can run"),
        (classifier, f"classifier checkpoint {checkpoint} is unreadable"),
    ):
        status = main(["run", str(SAMPLES), "--out", str(tmp_path / "out"), *options])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1, err
        assert err[0].startswith("wildlife run: error: ") and what in err[0], err[0]
    assert not (tmp_path / "out" / "runs").exists()  # nothing was started
