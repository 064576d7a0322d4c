"""``wildlife run`` as a user runs it (README: ``make run``), and ``wildlife status`` and ``wildlife
report`` on the run folder it made (README: Reading the results), in this process."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from wildlife_common import costs
from wildlife_common.failures import record_failure

from tests.conftest import go_offline
from tests.e2e.conftest import MODELS, SAMPLES
from tests.megadetector_validator import assert_megadetector_accepts
from wildlife.cli import main
from wildlife.summary import summary_lines

# The whole pipeline in the local engine: the longest such test took 57 s on 2 shared cores
# (test_resume.py); 600 s leaves room for a slower machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@dataclass(frozen=True)
class DemoRun:
    """``wildlife run`` on the samples: its exit status, what it printed and its --out folder."""

    status: int
    out: str
    err: str
    folder: Path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One run of the pipeline for the tests that read what it made (which leave its folder as it is)."""
    folder = tmp_path_factory.mktemp("out")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch:
        go_offline(monkeypatch)  # this fixture starts before the tests' own offline_aws
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["run", str(SAMPLES), "--out", str(folder), "--run-id", "demo", "--shard-size", "7"])
    return DemoRun(status, out.getvalue(), err.getvalue(), folder)


def test_wildlife_run_on_the_samples_shows_progress_then_the_summary_and_the_three_outputs(demo_run: DemoRun) -> None:
    assert demo_run.status == 0, demo_run.err
    final = demo_run.folder / "runs" / "demo" / "final"
    # Start-up says what takes the time before the first state: the models, then the engine.
    err = demo_run.err
    assert err.index("loading the models (detector.pt, classifier.pth)") < err.index("starting the local engine")
    assert err.index("starting the local engine") < err.index("→ PlanDetection")
    # The live view (stderr is not a terminal here, so plain lines): states, then shard counts.
    for line in ("→ PlanDetection", "✓ DetectShards", "DetectShards: 3/3 shards, 21/21 images", "✓ Materialize"):
        assert line in demo_run.err, demo_run.err
    summary = json.loads((final / "summary.json").read_text())
    out = demo_run.out.splitlines()
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
    assert '"event": "detect shard"' not in demo_run.out + demo_run.err
    assert list((demo_run.folder / "runs" / "demo" / "logs" / "jobs").glob("detect-*.log"))


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
        # What it was doing (the run's first line, loading the models), then the error in one line.
        *doing, error = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(doing) == 2 and doing[1].startswith("loading the models"), doing
        assert error.startswith("wildlife run: error: ") and what in error, error
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


# ------------------------------------------------------------------------------------------------
# status and report on the run folder wildlife run made
# ------------------------------------------------------------------------------------------------


def _summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "runs" / "demo" / "final" / "summary.json").read_text())


def test_report_of_a_local_run_reads_its_folder(demo_run: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    run_folder = demo_run.folder / "runs" / "demo"
    summary = _summary(demo_run.folder)

    assert main(["report", "demo", "--out", str(demo_run.folder)]) == 0

    lines = capsys.readouterr().out.splitlines()
    # No execution to name: the run folder's own files say how it ended and how long it took.
    assert re.fullmatch(rf"run demo \(local run, SUCCEEDED, [\d.]+ s\)  {re.escape(str(run_folder))}/", lines[0])
    assert lines[1] == f"  status        succeeded: {summary['message']}"
    assert lines[2 : 2 + len(summary_lines(summary))] == summary_lines(summary)
    assert any(line.startswith("  detection     3 shards, ") for line in lines), lines
    cost = summary["cost"]
    assert any(
        line.startswith("  cost          $") and line.endswith(f"({cost['state_transitions']} transitions)")
        for line in lines
    )
    # Every job the cost came from, as the report of a deployed run lists them.
    jobs = [line.split() for line in lines if line.startswith("    stage1 ") or line.startswith("    stage2 ")]
    assert {job[1] for job in jobs if len(job) == 7} == {"00000", "00001", "00002", "c00000"}
    assert lines[-2:] == [
        f"  outputs       {run_folder / 'final' / 'detections.parquet'}",
        f"                {run_folder / 'final' / 'megadetector.json'}",
    ]

    # The run folder's path is enough (with the slash a shell's completion adds): the same report.
    assert main(["report", f"{run_folder}/"]) == 0
    assert capsys.readouterr().out.splitlines() == lines
    print("\n".join(lines))  # the report as a user sees it (pytest -s)


def test_report_json_of_a_local_run_with_the_users_prices(
    demo_run: DemoRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prices = tmp_path / "prices.json"
    # $3,600 an hour is $1 a GPU-second, so the GPU part is the jobs' seconds (the local jobs record
    # no instance type and are priced as a g4dn.xlarge); Lambda and Step Functions free.
    prices.write_text(
        json.dumps(
            {
                "on_demand": {"g4dn.xlarge": 3600.0},
                "lambda_usd_per_gb_second": 0,
                "lambda_usd_per_request": 0,
                "state_transition_usd": 0,
            }
        )
    )
    summary = _summary(demo_run.folder)

    assert main(["report", "demo", "--out", str(demo_run.folder), "--json", "--prices", str(prices)]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert {key: value for key, value in printed.items() if key != "cost"} == {
        key: value for key, value in summary.items() if key != "cost"
    }
    seconds = sum(job["seconds"] for job in summary["cost"]["inputs"]["jobs"])
    assert printed["cost"]["usd"] == pytest.approx(seconds, abs=1e-3)
    assert printed["cost"]["pricing"] == str(prices)
    assert printed["cost"] == costs.recompute(summary["cost"], costs.price_table(prices))


def test_status_lists_the_runs_of_an_out_folder_and_shows_one(
    demo_run: DemoRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # --out is named, so a stack in the environment is not asked (an option beats the environment).
    monkeypatch.setenv("WILDLIFE_STACK", "wildlife-pipeline")
    created = json.loads((demo_run.folder / "runs" / "demo" / "run.json").read_text())["created"]

    assert main(["status", "--out", str(demo_run.folder)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "STATUS", "IMAGES", "FAILED", "STARTED", "(UTC)", "DURATION"]
    assert len(lines) == 2
    row = lines[1].split()
    assert row[:4] == ["demo", "SUCCEEDED", "21", "0"]
    assert " ".join(row[4:6]) == created[:16].replace("T", " ")  # run.json's time is UTC already
    assert row[7] == "s" and float(row[6]) >= 0

    assert main(["status", "demo", "--out", str(demo_run.folder)]) == 0
    one = capsys.readouterr().out.splitlines()
    assert one[:2] == lines
    assert one[2:] == [f"run folder: {demo_run.folder / 'runs' / 'demo'}/"]


def test_without_options_status_and_report_read_the_results_folder_here(
    demo_run: DemoRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``make run`` writes results/; the commands README shows next then work as written."""
    monkeypatch.delenv("WILDLIFE_STACK", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").symlink_to(demo_run.folder)

    assert main(["status"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["demo", "SUCCEEDED"]
    assert main(["report", "demo"]) == 0
    assert capsys.readouterr().out.startswith("run demo (local run, SUCCEEDED, ")
    # A stack named as well is one line that says to pick one.
    assert main(["report", "demo", "--out", "results", "--stack", "wildlife-pipeline"]) == 2
    assert capsys.readouterr().err.startswith("wildlife report: error: pick one: --stack NAME reads")


def test_a_local_run_without_its_summary_says_how_to_resume_it_and_resuming_as_told_works(
    demo_run: DemoRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A run stopped before Materialize (Ctrl-C, a killed process) has committed shards and no summary."""
    out = tmp_path / "out"
    shutil.copytree(demo_run.folder / "runs" / "demo", out / "runs" / "demo")
    (out / "runs" / "demo" / "final" / "summary.json").unlink()
    resume = f"wildlife run --resume demo --out {out}"

    assert main(["report", "demo", "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        "wildlife report: error: run demo has no summary: it stopped before the end, or is still running "
        f"elsewhere (resume it: {resume})\n"
    )
    assert main(["status", "demo", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The planner's image count; no failure count and no duration, since the run did not end.
    assert lines[1].split()[:4] == ["demo", "INCOMPLETE", "21", "-"] and lines[1].endswith(" -")
    assert lines[-1] == f"resume: {resume}"

    assert main(resume.split()[1:]) == 0
    capsys.readouterr()
    assert main(["report", "demo", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("run demo (local run, SUCCEEDED, ")


def test_a_failed_local_run_shows_its_recorded_cause(
    demo_run: DemoRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_folder = out / "runs" / "demo"
    shutil.copytree(demo_run.folder / "runs" / "demo", run_folder)
    (run_folder / "final" / "summary.json").unlink()
    config = json.loads((run_folder / "run.json").read_text())["config"]
    # Recorded as the state machine's Catch records it, into this copy of the run.
    error = {"Error": "States.TaskFailed", "Cause": "detect-00001 failed:\nexit code 1"}
    record_failure({**config, "output": str(out)}, "demo", error, None)

    assert main(["report", "demo", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wildlife report: error: run demo failed before writing its summary: TaskFailed: ")
    assert err.endswith(f"(fix the cause, then resume it: wildlife run --resume demo --out {out})\n")
    assert err.count("\n") == 1

    assert main(["status", "demo", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["demo", "FAILED", "21", "-"]
    assert lines[2] == "error: TaskFailed: detect-00001 failed: exit code 1"


def test_a_run_that_is_not_there_is_one_line(demo_run: DemoRun, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["report", "nope"], ["status", "nope"]):
        assert main([*command, "--out", str(demo_run.folder)]) == 1
        assert capsys.readouterr().err == (
            f"wildlife {command[0]}: error: no run nope in {demo_run.folder}/runs/ "
            f"(wildlife status --out {demo_run.folder} lists its runs)\n"
        )
    assert main(["report", str(demo_run.folder / "runs")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
