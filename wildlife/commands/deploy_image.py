"""``wildlife deploy-image --stack NAME``: build the gpu_task image and push it to the stack's ECR repository.

Needs Docker. Runs ``docker build`` (linux/amd64, from the repository root), ``docker login`` to
ECR and ``docker push``, then sets the stack's GpuImageTag to the new tag; ``--dry-run`` prints the
commands without running them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wildlife.commands._stack import add_stack_options, open_stack
from wildlife.ops.image import SOURCE_ROOT, deploy_image
from wildlife.text import help_text


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deploy-image",
        help="build and push the GPU image to the stack's ECR repository (needs Docker)",
        description=help_text(__doc__),
    )
    parser.add_argument(
        "--tag", help="image tag (default build-<commit>); tags are immutable, and the stack is moved to it"
    )
    parser.add_argument("--source", type=Path, default=SOURCE_ROOT, help="root of this repository (the build context)")
    parser.add_argument("--dry-run", action="store_true", help="print the docker commands, run nothing")
    add_stack_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    aws, stack = open_stack(args)
    commands = deploy_image(aws, stack, tag=args.tag, source=args.source, dry_run=args.dry_run)
    if not args.dry_run:
        print(f"pushed {commands.image}; the stack runs it: Batch jobs started from now on use it")
    return 0
