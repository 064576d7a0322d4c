"""The ``wildlife`` command: one subcommand a module under ``wildlife/commands/``.

Each module there defines ``add_parser(subparsers)``, which adds its subparser and sets
``func`` to a function taking the parsed arguments and returning an exit status. Modules are
found by listing the package, so adding a command never means editing this file.

Errors users can cause (a missing folder, a bad option, an unknown stack) end as one line on
stderr and a non-zero exit status, never a traceback: 2 for a wrong command line, 1 for
everything else.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from wildlife_common.errors import PipelineError

from wildlife import commands, interrupt, version
from wildlife.errors import UsageError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line instead of the whole usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class VersionAction(argparse.Action):
    """``--version``: worked out only when asked (it runs git in a checkout)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version (and the commit in a checkout)")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(version.describe())
        parser.exit()


def parser() -> argparse.ArgumentParser:
    cli = OneLineParser(prog="wildlife", description="Camera-trap image analysis: run locally or on AWS.")
    cli.add_argument("--version", action=VersionAction)
    subparsers = cli.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module.name}").add_parser(subparsers)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one command; returns the exit status.

    Ctrl-C ends the process at once with one line, from the first moment (the command modules'
    imports take a while) to the last (``wildlife.interrupt`` says why at once).
    """
    with interrupt.exit_at_once():
        args = parser().parse_args(argv)
        interrupt.say(lambda: f"wildlife {args.command}: interrupted")
        try:
            return int(args.func(args) or 0)
        except UsageError as error:
            print(f"wildlife {args.command}: error: {error}", file=sys.stderr)
            return 2
        except PipelineError as error:
            print(f"wildlife {args.command}: error: {error}", file=sys.stderr)
            return 1
