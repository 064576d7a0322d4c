"""Per-job log files: output of code run in this process goes to its job's log, not the terminal."""

from __future__ import annotations

import io
import logging
import sys
import threading
from pathlib import Path

import pytest

from wildlife.engine.capture import log_to, routed_output


def test_a_library_logger_with_its_own_terminal_handler_writes_to_the_logs_while_output_is_routed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a library that, like ultralytics, logged to a handler of its own holding the stdout it saw
    # at import, not propagating to the root logger
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stdout", terminal)
    library = logging.getLogger("test_capture.library")
    handler = logging.StreamHandler(sys.stdout)
    library.addHandler(handler)
    library.propagate = False
    library.setLevel(logging.INFO)
    try:
        # WHEN a job's thread and one of its helper threads (no log of its own) log through it
        with routed_output(tmp_path / "engine.log"):

            def job() -> None:
                with log_to(tmp_path / "job.log"):
                    library.warning("from the job")

            for target in (job, lambda: library.warning("from a reader thread")):
                thread = threading.Thread(target=target)
                thread.start()
                thread.join()
        library.warning("after the run")
    finally:
        library.removeHandler(handler)

    # THEN each line is in its log, and the handler writes to the terminal again only afterwards
    assert (tmp_path / "job.log").read_text() == "from the job\n"
    assert (tmp_path / "engine.log").read_text() == "from a reader thread\n"
    assert terminal.getvalue() == "after the run\n"
    assert handler.stream is terminal


def test_a_handler_stream_replaced_while_output_is_routed_is_left_as_it_was_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    library = logging.getLogger("test_capture.replaced")
    handler = logging.StreamHandler(sys.stdout)
    library.addHandler(handler)
    elsewhere = io.StringIO()
    try:
        with routed_output(tmp_path / "engine.log"):
            handler.setStream(elsewhere)  # the library (or the user's code) points it somewhere of its own
    finally:
        library.removeHandler(handler)

    assert handler.stream is elsewhere
