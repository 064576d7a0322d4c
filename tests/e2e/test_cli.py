"""``wildlife run`` as a user runs it (README: ``make run``), in this process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import MODELS, SAMPLES
from tests.megadetector_validator import assert_megadetector_accepts
from wildlife.cli import main

# The whole pipeline in the local engine: the longest such test took 57 s on 2 shared cores
# (test_resume.py); 600 s leaves room for a slower machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


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
    # Every image in one bucket: the screen's four counts are summary.json's, and they add up to the total.
    buckets = ("images_above_threshold", "images_below_threshold", "empty_images", "failed_images")
    assert sum(summary[key] for key in buckets) == summary["images"] == 21
    shown = [int(n) for n in re.findall(r"(\d+) (?:with|empty|failed)", out[1])]
    assert shown == [summary[key] for key in buckets], out[1]
    assert "animal" in out[2] and out[3].startswith("  top species ")
    # What was not read, and why: the samples' ground_truth.json is not an image.
    assert "  not read      1 not images" in out, out
    assert out[-3:] == [f"  {final / name}" for name in ("detections.parquet", "megadetector.json", "summary.json")]
    assert all((final / name).is_file() for name in ("detections.parquet", "megadetector.json", "summary.json"))
    # Job and function output went to the run's log files, not to the terminal.
    assert '"event": "detect shard"' not in captured.out + captured.err
    assert list((tmp_path / "runs" / "demo" / "logs" / "jobs").glob("detect-*.log"))


def test_a_run_in_its_own_process_keeps_library_chatter_off_the_screen_and_gives_files_the_umasks_mode(
    tmp_path: Path,
) -> None:
    """The real command, as `make run` starts it: a process of its own, its umask, its terminal streams.

    A file Pillow cannot identify is among the photos: ultralytics patches ``PIL.Image.open`` and
    logs a colour-coded "requirements: ... AutoUpdate" warning when it meets one, through a handler
    holding the stdout of the moment it was imported (before the run, when the models are checked).
    In this process, not pytest's, that is the real stdout, which an in-process test cannot see.
    """
    photos = tmp_path / "photos"
    shutil.copytree(SAMPLES, photos)
    (photos / "notes.jpg").write_text("not a photo, a text file with the wrong extension\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "wildlife", "run", str(photos), "--out", str(out), "--run-id", "own"]
    # umask 027, not the usual 022: files made 0600 (tempfile.mkstemp) or 0644 (a plain open() under
    # a umask of 022 elsewhere) both differ from the 0640 it gives.
    child = subprocess.run([*command, "--shard-size", "7"], umask=0o027, capture_output=True, text=True, timeout=300)

    assert child.returncode == 0, child.stderr
    run_folder = out / "runs" / "own"
    screen = child.stdout + child.stderr
    assert "\x1b[" not in screen, screen  # no ANSI colour codes
    for word in ("ultralytics", "autoupdate", "requirements:"):
        assert word not in screen.lower(), screen
    logs = "".join(path.read_text(errors="replace") for path in (run_folder / "logs").rglob("*.log"))
    # The premise: ultralytics logged about the file, to the run's logs (else this test no longer covers its chatter).
    assert "requirements:" in logs, "ultralytics logged nothing about notes.jpg; find another trigger"
    files = [path for path in run_folder.rglob("*") if path.is_file()]
    for name in ("final/summary.json", "final/detections.parquet", "final/megadetector.json"):
        assert run_folder / name in files
    assert any(path.parent.parent.name == "crops" for path in files)
    modes = {path.relative_to(run_folder).as_posix(): oct(path.stat().st_mode & 0o777) for path in files}
    assert set(modes.values()) == {"0o640"}, modes


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
        (["--detector", str(weights)], f"detector weights {weights} are not a detector: a damaged zip archive"),
        (classifier, f"classifier checkpoint {checkpoint} is unreadable"),
    ):
        status = main(["run", str(SAMPLES), "--out", str(tmp_path / "out"), *options])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1, err
        assert err[0].startswith("wildlife run: error: ") and what in err[0], err[0]
    assert not (tmp_path / "out" / "runs").exists()  # nothing was started


def test_a_checkpoint_in_megadetector_v5s_format_runs_through_wildlife_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A YOLOv5-repository checkpoint (MDv5's format) needs no flag: the file says what it is."""
    weights = MODELS / "detector-yolov5.pt"
    argv = ["run", str(SAMPLES), "--out", str(tmp_path), "--run-id", "mdv5", "--detector", str(weights)]
    status = main([*argv, "--image-size", "320", "--detection-only"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    final = tmp_path / "runs" / "mdv5" / "final"
    results = json.loads((final / "megadetector.json").read_text())
    assert len(results["images"]) == 21
    confident = [d for image in results["images"] for d in image["detections"] if d["conf"] >= 0.5]
    assert len(confident) >= 20  # the stand-in finds the samples' ~29 objects
    marker = json.loads((tmp_path / "runs" / "mdv5" / "stage1" / "results" / "00000.done.json").read_text())
    assert marker["detector_format"] == "yolov5" and marker["letterbox_stride"] == 64
    assert_megadetector_accepts(final / "megadetector.json")
