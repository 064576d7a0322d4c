"""Where the commands find runs: a deployed stack (start, status, watch, report, deploy-image), or for
status and report also a local ``wildlife run --out`` folder.

The rule, for status and report: ``--out DIR`` or RUN given as a run folder's path reads that
folder, even with WILDLIFE_STACK set (an option beats the environment); ``--stack`` reads the stack
and ``--stack`` with ``--out`` is an error. Naming neither reads WILDLIFE_STACK's stack, else
``./results`` when it holds runs (``wildlife run``'s default ``--out``, so that a first local run
can be read with no option at all).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import NamedTuple

from wildlife_common.layout import runs_folder

from wildlife.errors import UsageError
from wildlife.ops.aws import Aws
from wildlife.ops.local_runs import DEFAULT_OUT, is_run_path, split_run_folder
from wildlife.ops.stack import Stack, load_stack

STACK_ENV = "WILDLIFE_STACK"


def add_stack_options(parser: argparse.ArgumentParser, *, local_runs: bool = False) -> None:
    """``--stack`` (or WILDLIFE_STACK), ``--region`` and ``--aws-profile``; with ``local_runs`` also ``--out``."""
    group = parser.add_argument_group("AWS")
    group.add_argument("--stack", help=f"the deployed stack's name, as given to sam deploy (default: ${STACK_ENV})")
    group.add_argument("--region", help="the stack's region (default: AWS_REGION or your AWS config)")
    group.add_argument("--aws-profile", help="a named profile from ~/.aws/config (default: AWS_PROFILE)")
    if local_runs:
        local = parser.add_argument_group("runs made on this machine")
        local.add_argument(
            "--out",
            metavar="DIR",
            help=f"read the runs that wildlife run --out DIR made, not a stack's (default: ./{DEFAULT_OUT} "
            f"when it holds runs and neither --stack nor ${STACK_ENV} is set)",
        )


class LocalRuns(NamedTuple):
    """A local ``--out`` folder to read, and the run id asked for (None: all of them)."""

    out: str
    run: str | None


def local_runs(args: argparse.Namespace) -> LocalRuns | None:
    """The local folder the options name, or None when they name a stack or nothing (``open_stack`` says so).

    Raises:
        UsageError: both a stack and a local folder; a run folder's path and --out; a path that is
            not a run folder.
    """
    run: str | None = getattr(args, "run", None)
    path = run is not None and is_run_path(run)
    if args.stack and (args.out or path):
        raise UsageError(
            "pick one: --stack NAME reads a deployed stack's runs; --out DIR, or RUN as a run folder's path, "
            "the runs of wildlife run"
        )
    if path and args.out:
        raise UsageError(
            f"give RUN as a run id with --out DIR, or as a run folder's path without --out, not {run} with --out"
        )
    if run is not None and path:
        out, run_id = split_run_folder(run)
        return LocalRuns(out, run_id)
    if args.out:
        return LocalRuns(args.out, run)
    if not args.stack and not os.environ.get(STACK_ENV) and Path(runs_folder(DEFAULT_OUT)).is_dir():
        return LocalRuns(DEFAULT_OUT, run)
    return None


def open_stack(args: argparse.Namespace) -> tuple[Aws, Stack]:
    """The clients and the stack the options name."""
    name = args.stack or os.environ.get(STACK_ENV)
    if not name:
        local = " (for runs made by wildlife run: --out DIR)" if hasattr(args, "out") else ""
        raise UsageError(f"which stack? pass --stack NAME or set {STACK_ENV}{local}")
    aws = Aws(region=args.region, profile=args.aws_profile)
    return aws, load_stack(aws, name)
