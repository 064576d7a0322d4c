"""``wildlife status --stack NAME [RUN]``: the recent runs (status, images, duration), or one run."""

from __future__ import annotations

import argparse
from datetime import UTC
from typing import Any

from wildlife.commands._stack import add_stack_options, open_stack
from wildlife.ops import console
from wildlife.ops.runs import TERMINAL, RunRow, find_run, list_runs, run_row
from wildlife.text import duration, help_text


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="recent runs of a deployed stack", description=help_text(__doc__))
    parser.add_argument("run", nargs="?", help="one run (run id, execution name or ARN) in detail")
    parser.add_argument("--limit", type=int, default=20, help="how many recent runs (default 20)")
    parser.add_argument("--status", choices=("RUNNING", *TERMINAL), help="only runs with this status")
    add_stack_options(parser)
    parser.set_defaults(func=run)


def table(rows: list[RunRow]) -> list[str]:
    """The runs as an aligned text table."""
    header = ("RUN", "STATUS", "IMAGES", "FAILED", "STARTED (UTC)", "DURATION")
    cells = [
        (
            row.execution.name,
            row.execution.status,
            "-" if row.images is None else f"{row.images:,}",
            "-" if row.failed_images is None else f"{row.failed_images:,}",
            row.execution.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            duration(row.execution.seconds),
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


def run(args: argparse.Namespace) -> int:
    aws, stack = open_stack(args)
    if args.run:
        execution = find_run(aws, stack, args.run)
        for line in table([run_row(aws, stack, execution)]):
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
    for line in table(rows):
        print(line)
    return 0
