"""``wildlife watch RUN --stack NAME``: follow a run until it ends.

Prints states as they are entered and left, shards done out of total for each Map, failed states
with their cause, and every Batch job of the run that failed, with its CloudWatch Logs stream and
last log lines. Exits 0 when the run succeeded, 1 when it failed, timed out or was stopped.
"""

from __future__ import annotations

import argparse
from typing import Any

from wildlife.commands._stack import add_stack_options, open_stack
from wildlife.ops import console
from wildlife.ops.follow import DEFAULT_LOG_LINES, Follower, follow
from wildlife.ops.runs import find_run
from wildlife.text import help_text


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("watch", help="follow a run on a deployed stack", description=help_text(__doc__))
    parser.add_argument("run", help="run id, execution name or execution ARN")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default 10)")
    parser.add_argument("--timeout", type=float, help="stop watching after this many seconds (the run goes on)")
    parser.add_argument(
        "--log-lines", type=int, default=DEFAULT_LOG_LINES, help="last log lines shown under a failed job"
    )
    add_stack_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    aws, stack = open_stack(args)
    execution = find_run(aws, stack, args.run)
    print(f"run {execution.run_id} (execution {execution.name}): {console.execution_url(stack.region, execution.arn)}")
    follower = Follower(aws, stack, execution.arn, log_lines=args.log_lines)
    ended = follow(follower, lambda line: print(line, flush=True), poll_s=args.interval, timeout_s=args.timeout)
    if ended.status == "RUNNING":
        print(f"still RUNNING after {args.timeout:g} s; wildlife watch {execution.name} --stack {stack.name} goes on")
        return 0
    if ended.status == "SUCCEEDED":
        print(f"report: wildlife report {execution.name} --stack {stack.name}")
        return 0
    return 1
