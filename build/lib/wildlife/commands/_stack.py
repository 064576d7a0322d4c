"""Options shared by the commands that talk to a deployed stack (start, status, watch, report, deploy-image)."""

from __future__ import annotations

import argparse
import os

from wildlife.errors import UsageError
from wildlife.ops.aws import Aws
from wildlife.ops.stack import Stack, load_stack

STACK_ENV = "WILDLIFE_STACK"


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    """``--stack`` (or WILDLIFE_STACK), ``--region`` and ``--aws-profile``."""
    group = parser.add_argument_group("AWS")
    group.add_argument(
        "--stack",
        default=os.environ.get(STACK_ENV),
        help=f"the deployed stack's name, as given to sam deploy (default: ${STACK_ENV})",
    )
    group.add_argument("--region", help="the stack's region (default: AWS_REGION or your AWS config)")
    group.add_argument("--aws-profile", help="a named profile from ~/.aws/config (default: AWS_PROFILE)")


def open_stack(args: argparse.Namespace) -> tuple[Aws, Stack]:
    """The clients and the stack the options name."""
    if not args.stack:
        raise UsageError(f"which stack? pass --stack NAME or set {STACK_ENV}")
    aws = Aws(region=args.region, profile=args.aws_profile)
    return aws, load_stack(aws, args.stack)
