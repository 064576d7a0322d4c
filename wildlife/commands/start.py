"""``wildlife start --stack NAME INPUT``: start a run on the deployed stack.

Builds the run config from a JSON file (``--config``) and the options, checks it as the state
machine's first step will (and that every file it names is in S3), starts an execution named after
the run id, and prints the execution's ARN and its graph in the Step Functions console. Starting a
run id that ran before resumes it: only its unfinished shards are done again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wildlife.commands._stack import add_stack_options, open_stack
from wildlife.errors import UsageError
from wildlife.ops import console
from wildlife.ops.follow import Follower, follow
from wildlife.ops.runs import start_run
from wildlife.options import add_setting_options, setting_values
from wildlife.text import help_text


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("start", help="start a run on a deployed stack", description=help_text(__doc__))
    parser.add_argument(
        "input",
        nargs="?",
        help="s3://bucket/prefix/ of the images, or an S3 Inventory report's manifest.json (or 'input' in --config)",
    )
    parser.add_argument("--config", type=Path, help="a run config as JSON (README, Configuration)")
    parser.add_argument("--run-id", help="the run's name (default: run-<UTC time>); an existing one is resumed")
    add_setting_options(parser, "start")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting; VALUE is JSON or text"
    )
    parser.add_argument("--watch", action="store_true", help="follow the run until it ends (as wildlife watch)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls with --watch")
    add_stack_options(parser)
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run config: --config, then the options, then --set."""
    config: dict[str, Any] = {}
    if args.config:
        try:
            config = json.loads(args.config.read_text())
        except FileNotFoundError as error:
            raise UsageError(f"no config file {args.config}") from error
        except ValueError as error:
            raise UsageError(f"{args.config} is not valid JSON: {error}") from error
        if not isinstance(config, dict):
            raise UsageError(f"{args.config} must hold a JSON object")
    if args.input:
        config["input"] = args.input
    config.update(setting_values(args, "start"))
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            config[key] = json.loads(text)
        except ValueError:
            config[key] = text
    if args.run_id:
        config["run_id"] = args.run_id
    if not config.get("input"):
        raise UsageError("no input: give s3://bucket/prefix/ or 'input' in --config")
    return config


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    aws, stack = open_stack(args)
    started = start_run(aws, stack, config)
    if started.already_running:
        print(f"run {started.run_id} is already running; nothing started")
    else:
        verb = "resumed" if started.resumed else "started"
        print(f"{verb} run {started.run_id} (execution {started.execution_name})")
    print(f"  execution  {started.execution_arn}")
    print(f"  graph      {console.execution_url(stack.region, started.execution_arn)}")
    print(f"  results    {started.run_uri}final/")
    print(f"  follow     wildlife watch {started.execution_name} --stack {stack.name}")
    if not args.watch:
        return 0
    execution = follow(Follower(aws, stack, started.execution_arn), print, poll_s=args.interval)
    return 0 if execution.status == "SUCCEEDED" else 1
