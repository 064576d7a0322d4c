"""Ctrl-C on ``wildlife run``: one line, exit 130 at once, and ``--resume`` ends with the same table.

A real ``wildlife run`` process gets SIGINT (what Ctrl-C sends) at several moments: while the models
load, while detection shards run, and while classification shards run.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import SAMPLES
from tests.e2e.test_resume import table
from wildlife.cli import main

# The whole pipeline in the local engine, several times: 600 s as for the other e2e tests.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# 3 images per shard: the 21 samples make 7 detection shards, so there is a middle to interrupt.
SHARD_SIZE = "3"
# What the issue asks of an interrupt: the process is gone within 2 s of the signal.
EXIT_WITHIN_S = 2.0
# Long enough for torch, ultralytics and the models to load on a slow, shared machine.
START_UP_S = 240


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    assert main(["run", str(SAMPLES), "--out", str(out), "--run-id", "reference", "--shard-size", SHARD_SIZE]) == 0
    return out / "runs" / "reference"


def interrupt_when(out: Path, run_id: str, ready: Callable[[Path, str], bool]) -> tuple[int, str, float]:
    """Start ``wildlife run``, send SIGINT once ``ready(run_folder, stderr so far)``.

    Returns the exit code, stderr and the seconds from the signal to the exit."""
    command = ["run", str(SAMPLES), "--out", str(out), "--run-id", run_id, "--shard-size", SHARD_SIZE]
    process = subprocess.Popen(
        [sys.executable, "-m", "wildlife", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert process.stderr is not None
    err = ""
    deadline = time.monotonic() + START_UP_S
    while not ready(out / "runs" / run_id, err):
        assert process.poll() is None, f"ended before the interrupt:\n{err}{process.stderr.read()}"
        assert time.monotonic() < deadline, err
        err += process.stderr.readline()
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    code = process.wait(timeout=30)
    seconds = time.monotonic() - sent
    return code, err + process.stderr.read(), seconds


def detection_shards(run_folder: Path) -> list[Path]:
    return sorted((run_folder / "stage1" / "results").glob("*.done.json"))


def assert_one_line_and_gone_at_once(code: int, err: str, seconds: float, last_line: str) -> None:
    assert code == 130, err
    assert seconds < EXIT_WITHIN_S, f"took {seconds:.1f} s to exit"
    assert err.splitlines()[-1] == last_line, err
    for noise in ("Traceback", "terminate called", "Exception"):
        assert noise not in err, err


def resume_gives_the_same_table(out: Path, run_id: str, reference: Path) -> None:
    resumed = subprocess.run(
        [sys.executable, "-m", "wildlife", "run", "--resume", run_id, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert table(out / "runs" / run_id) == table(reference)


def test_ctrl_c_while_the_models_load_ends_at_once_with_nothing_to_resume(tmp_path: Path) -> None:
    code, err, seconds = interrupt_when(tmp_path, "early", lambda _, err: "loading the models" in err)

    assert_one_line_and_gone_at_once(
        code, err, seconds, "interrupted before run early was planned: nothing to resume, start it again"
    )
    assert not (tmp_path / "runs" / "early" / "run.json").exists()


def test_ctrl_c_during_detection_keeps_the_committed_shards_and_resume_finishes_the_same_table(
    tmp_path: Path, uninterrupted: Path
) -> None:
    code, err, seconds = interrupt_when(tmp_path, "det", lambda folder, _: bool(detection_shards(folder)))
    committed = {path.name: path.read_text() for path in detection_shards(tmp_path / "runs" / "det")}

    done = len(committed)
    assert_one_line_and_gone_at_once(
        code,
        err,
        seconds,
        f"interrupted: {done} of 7 detection shards are committed and kept. "
        f"Resume with: wildlife run --resume det --out {tmp_path}",
    )
    assert 1 <= done < 7, "the interrupt must leave the run half done"
    # The jobs stopped with the process: nothing is committed after the exit.
    time.sleep(1)
    assert len(detection_shards(tmp_path / "runs" / "det")) == done
    resume_gives_the_same_table(tmp_path, "det", uninterrupted)
    for name, marker in committed.items():
        assert (tmp_path / "runs" / "det" / "stage1" / "results" / name).read_text() == marker, f"{name} done again"


def test_ctrl_c_during_classification_and_resume_finishes_the_same_table(tmp_path: Path, uninterrupted: Path) -> None:
    code, err, seconds = interrupt_when(tmp_path, "cls", lambda _, err: "ClassifyShards: 0/" in err)

    assert_one_line_and_gone_at_once(
        code,
        err,
        seconds,
        f"interrupted: 7 of 7 detection shards are committed and kept. "
        f"Resume with: wildlife run --resume cls --out {tmp_path}",
    )
    assert not (tmp_path / "runs" / "cls" / "final" / "summary.json").exists()
    resume_gives_the_same_table(tmp_path, "cls", uninterrupted)
