"""``wildlife status [RUN]``: the recent runs (status, images, duration), or one run.

A deployed stack's runs (``--stack NAME``), or the runs ``wildlife run --out DIR`` made on this
machine (``--out DIR``, or RUN as a run folder's path).
"""

from __future__ import annotations

import argparse
import shlex
from datetime import UTC, datetime
from typing import Any, NamedTuple

from wildlife.commands._stack import LocalRuns, add_stack_options, local_runs, open_stack
from wildlife.errors import UsageError
from wildlife.ops import console
from wildlife.ops.local_runs import INCOMPLETE, STATUSES, SUCCEEDED, LocalRun, find_local_run, list_local_runs
from wildlife.ops.runs import TERMINAL, RunRow, find_run, list_runs, run_row
from wildlife.text import duration, help_text


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status", help="recent runs of a deployed stack or of a local --out folder", description=help_text(__doc__)
    )
    parser.add_argument(
        "run", nargs="?", help="one run in detail: run id, execution name or ARN, or a local run folder's path"
    )
    parser.add_argument("--limit", type=int, default=20, help="how many recent runs (default 20)")
    parser.add_argument(
        "--status",
        choices=sorted({"RUNNING", *TERMINAL, *STATUSES}),
        help="only runs with this status (INCOMPLETE: a local run that stopped, or still runs elsewhere)",
    )
    add_stack_options(parser, local_runs=True)
    parser.set_defaults(func=run)


class Row(NamedTuple):
    """One line of the table, whichever kind of run it is."""

    run: str
    status: str
    images: int | None
    failed_images: int | None
    started: datetime | None
    seconds: float | None


def _stack_row(row: RunRow) -> Row:
    ex = row.execution
    return Row(ex.name, ex.status, row.images, row.failed_images, ex.started, ex.seconds)


def _local_row(run: LocalRun) -> Row:
    return Row(run.run_id, run.status, run.images, run.failed_images, run.started, run.seconds)


def table(rows: list[Row]) -> list[str]:
    """The runs as an aligned text table."""
    header = ("RUN", "STATUS", "IMAGES", "FAILED", "STARTED (UTC)", "DURATION")
    cells = [
        (
            row.run,
            row.status,
            "-" if row.images is None else f"{row.images:,}",
            "-" if row.failed_images is None else f"{row.failed_images:,}",
            "-" if row.started is None else row.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            "-" if row.seconds is None else duration(row.seconds),
        )
        for row in rows
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
    right = {2, 3, 5}
    return [
        "  ".join(
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in [header, *cells]
    ]


def _local(args: argparse.Namespace, local: LocalRuns) -> int:
    if local.run:
        one = find_local_run(local.out, local.run)
        for line in table([_local_row(one)]):
            print(line)
        if one.error:
            print(f"error: {one.error}")
        print(f"run folder: {one.layout.run_uri}")
        if one.status == INCOMPLETE:
            print("no summary or failure since it last started: it stopped, or is still running elsewhere")
        if one.status != SUCCEEDED:
            print(f"resume: {one.resume_command}")
        return 0
    runs = list_local_runs(local.out, limit=args.limit, status=args.status)
    if not runs:
        out = shlex.quote(local.out)
        print(
            f"no {args.status} runs in {out}"
            if args.status
            else f"no runs in {out} yet (wildlife run FOLDER --out {out})"
        )
        return 0
    for line in table([_local_row(one) for one in runs]):
        print(line)
    return 0


def run(args: argparse.Namespace) -> int:
    local = local_runs(args)
    if local:
        return _local(args, local)
    if args.status == INCOMPLETE:
        raise UsageError("--status INCOMPLETE is for local runs (--out DIR): a stack's runs are RUNNING instead")
    aws, stack = open_stack(args)
    if args.run:
        execution = find_run(aws, stack, args.run)
        for line in table([_stack_row(run_row(aws, stack, execution))]):
            print(line)
        if execution.error:
            print(f"error: {execution.error}: {execution.cause or ''}".rstrip())
        print(f"run folder: {execution.run_uri(stack)}")
        print(f"graph: {console.execution_url(stack.region, execution.arn)}")
        return 0
    rows = list_runs(aws, stack, limit=args.limit, status=args.status)
    if not rows:
        print(f"no runs on stack {stack.name} yet (wildlife start --stack {stack.name} s3://bucket/prefix/ ...)")
        return 0
    for line in table([_stack_row(row) for row in rows]):
        print(line)
    return 0
