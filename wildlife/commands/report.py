"""``wildlife report RUN``: what a run found, what failed, how fast, and what it cost.

A deployed stack's run (``--stack NAME``) or one made on this machine (``--out DIR``, or RUN as a
run folder's path). Counts, failed shards and images per second come from the run's ``final/summary.json``; the cost
is computed from the GPU job durations and instance types, Lambda time and state transitions the
summary lists, priced with the built-in table or ``--prices FILE`` (README, Costs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wildlife_common import costs

from wildlife.commands._stack import add_stack_options, local_runs, open_stack
from wildlife.ops.report import format_report, load_local_report, load_report
from wildlife.text import help_text


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="counts, failures, speed and cost of a run",
        description=help_text(__doc__),
    )
    parser.add_argument(
        "run", help="run id, execution name or execution ARN; or a local run folder, e.g. results/runs/<run_id>"
    )
    parser.add_argument(
        "--prices", type=Path, help='price table JSON, e.g. {"spot": {"g4dn.xlarge": 0.21}} (README, Costs)'
    )
    parser.add_argument("--all-jobs", action="store_true", help="list every GPU job, however many")
    parser.add_argument("--json", action="store_true", help="print the summary with the recomputed cost as JSON")
    add_stack_options(parser, local_runs=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    prices = costs.price_table(args.prices)
    local = local_runs(args)
    if local and local.run:
        report = load_local_report(local.out, local.run, prices=prices)
    else:
        aws, stack = open_stack(args)
        report = load_report(aws, stack, args.run, prices=prices)
    if args.json:
        print(json.dumps({**report.summary, "cost": report.cost}, indent=2, default=str))
        return 0
    for line in format_report(report, all_jobs=args.all_jobs):
        print(line)
    return 0
