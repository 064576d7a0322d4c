"""Runs made on this machine by ``wildlife run --out DIR``: find one, list them, say how each ended.

A local run has no execution to ask afterwards: the local engine's execution lives only as long as
the ``wildlife run`` that made it. What stays is the run folder (``DIR/runs/<run_id>/``, see
wildlife_common.layout), so a run's state is read from its files: ``run.json`` (when it was created
and each time it was resumed), ``final/summary.json`` (written by Materialize at the end) and
``final/failure.json`` (written by RecordFailure when it failed).
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from wildlife_common import storage
from wildlife_common.layout import RunLayout, runs_folder
from wildlife_common.records import Failure, RunRecord, Summary
from wildlife_common.run_folder import planned_images

from wildlife.errors import UsageError
from wildlife.ops.aws import RunNotFound

DEFAULT_OUT = "results"
"""``wildlife run``'s default ``--out``, which ``status`` and ``report`` read when no stack is named."""

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
INCOMPLETE = "INCOMPLETE"
"""Neither a summary nor a failure since the run last started: it was stopped (Ctrl-C, a killed
process, a machine that went down) or is still running in another terminal; the files cannot tell
which, so it is never called RUNNING."""
STATUSES = (SUCCEEDED, FAILED, INCOMPLETE)


@dataclass(frozen=True)
class LocalRun:
    """One run folder, and what its files say about how the run went."""

    out: str
    """The ``--out`` folder, as the user named it (for the commands we suggest)."""
    run_id: str
    layout: RunLayout
    resumable: bool
    """Whether it has its ``run.json``, where ``wildlife run --resume`` reads the run's settings."""
    status: str
    started: dt.datetime | None
    """When the run last started: created, or its latest resume (a resume is a new execution)."""
    ended: dt.datetime | None
    images: int | None
    failed_images: int | None
    summary: Summary | None
    """The summary, also one left by an earlier attempt of a run that was resumed since."""
    failure: Failure | None
    """The recorded failure, when the run's latest attempt failed."""

    @property
    def seconds(self) -> float | None:
        """How long the latest attempt ran; None when it did not end (or its times are unreadable)."""
        if self.started is None or self.ended is None:
            return None
        return max(0.0, (self.ended - self.started).total_seconds())

    @property
    def resume_command(self) -> str:
        """What finishes the run: resuming it, or starting it again when it stopped before writing run.json."""
        return resume_command(self.out, self.run_id, resumable=self.resumable)

    @property
    def error(self) -> str | None:
        """The failure as one line: its error name and cause (which may hold a job's multi-line log)."""
        if self.failure is None:
            return None
        return f"{self.failure.get('error')}: {' '.join(str(self.failure.get('cause') or '').split())}"


def resume_command(out: str, run_id: str, *, resumable: bool = True) -> str:
    """The command that finishes a local run: resuming it, or starting it again when it has no run.json."""
    out, run_id = shlex.quote(out), shlex.quote(run_id)
    if resumable:
        return f"wildlife run --resume {run_id} --out {out}"
    return f"wildlife run FOLDER --out {out} --run-id {run_id}"


def is_run_path(run: str) -> bool:
    """Whether RUN is a path rather than a name: run ids, execution names and ARNs never hold a ``/``."""
    return "/" in run or os.sep in run


def split_run_folder(path: str) -> tuple[str, str]:
    """The ``--out`` folder and run id of a run folder's path, e.g. ``results/runs/demo``.

    Raises:
        UsageError: the path is not a run folder (``DIR/runs/<run_id>/``).
    """
    folder = Path(path)  # a trailing slash, as a shell completes a folder, names the same folder
    out, run_id = str(folder.parent.parent), folder.name
    if RunLayout.for_run(out, run_id).run_uri != storage.as_folder(path) or not folder.is_dir():
        raise UsageError(f"{path} is not a run folder (DIR/runs/<run_id>/, as wildlife run --out DIR writes them)")
    return out, run_id


def _time(text: Any) -> dt.datetime | None:
    """A record's ISO 8601 time (``run_folder.now``), or None when it is missing or unreadable."""
    try:
        return dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def _since(when: dt.datetime | None, started: dt.datetime | None) -> bool:
    """Whether a file was written by the latest attempt; one whose time cannot be read counts as such."""
    return when is None or started is None or when >= started


def _started(record: RunRecord | dict[str, Any]) -> dt.datetime | None:
    """When the run's latest attempt started: its last resume, or its creation."""
    return _time((record.get("resumed") or [record.get("created")])[-1])


def _record(out: str, run_id: str) -> RunRecord:
    """The run's run.json; empty when it has none yet (stopped before planning began)."""
    return cast(RunRecord, storage.read_json_if_exists(RunLayout.for_run(out, run_id).run_json) or {})


def read_local_run(out: str, run_id: str, record: RunRecord | None = None) -> LocalRun:
    """What the run folder's files say: status, times and image counts (``record``: its run.json,
    when the caller has read it)."""
    layout = RunLayout.for_run(out, run_id)
    record = _record(out, run_id) if record is None else record
    summary = cast(Summary | None, storage.read_json_if_exists(layout.summary_json))
    failure = cast(Failure | None, storage.read_json_if_exists(layout.failure_json))
    started = _started(record)
    finished = _time(summary.get("finished")) if summary else None
    failed = _time(failure.get("failed")) if failure else None
    current_summary = summary is not None and _since(finished, started)
    current_failure = failure is not None and _since(failed, started)
    # Materialize writes the summary before it checks the counts, so a run whose counts do not add
    # up has both; the failure, written after, is then how the run ended.
    if current_failure and not (current_summary and finished and failed and finished > failed):
        status, ended = FAILED, failed
    elif current_summary:
        status, ended = SUCCEEDED, finished
    else:
        status, ended = INCOMPLETE, None
    images: int | None
    failed_images: int | None
    if current_summary and summary:
        images, failed_images = summary.get("images"), summary.get("failed_images")
    else:  # the planner's count, once it has listed the input; failures are known only at the end
        images = planned_images(record)
        failed_images = None
    return LocalRun(
        out=out,
        run_id=run_id,
        layout=layout,
        resumable=bool(record),
        status=status,
        started=started,
        ended=ended,
        images=images,
        failed_images=failed_images,
        summary=summary,
        failure=failure if status == FAILED else None,
    )


def find_local_run(out: str, run_id: str) -> LocalRun:
    """The run ``run_id`` in the ``--out`` folder ``out``.

    Raises:
        RunNotFound: it has no such run folder.
    """
    if not Path(RunLayout.for_run(out, run_id).run_uri).is_dir():
        raise RunNotFound(
            f"no run {run_id} in {runs_folder(out)} (wildlife status --out {shlex.quote(out)} lists its runs)"
        )
    return read_local_run(out, run_id)


def list_local_runs(out: str, *, limit: int, status: str | None = None) -> list[LocalRun]:
    """The runs in ``out``, the most recently started first (as ``wildlife status`` lists a stack's)."""
    folder = Path(runs_folder(out))
    if not folder.is_dir():
        return []
    if limit < 1:
        return []
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)  # a folder whose run.json is missing sorts last

    # Ordered by run.json alone (each read once); summaries and failures are read only for the runs listed.
    records = {child.name: _record(out, child.name) for child in folder.iterdir() if child.is_dir()}
    runs: list[LocalRun] = []
    for run_id in sorted(records, key=lambda run_id: (_started(records[run_id]) or oldest, run_id), reverse=True):
        run = read_local_run(out, run_id, records[run_id])
        if status is None or run.status == status:
            runs.append(run)
            if len(runs) == limit:
                break
    return runs
