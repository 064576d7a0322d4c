"""The GPU task's entrypoint: ``detect``, ``classify`` or ``materialize`` one part of a run.

AWS Batch runs it with the command of the job definition, e.g.
``detect --run s3://bucket/runs/<run_id>/ --shard 00042``. Exit status 0 means the shard is
committed (per-image failures included); 1 means it cannot be done, with a one-line reason as the
last line on stderr; 2 means the command line is wrong; EXIT_TEMPFAIL (75) means S3 did not serve a
read or write even after retries, which says nothing about the run: the job definitions'
RetryStrategy runs the job again on it (template.yaml), and a shard resumes from its flushed parts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from wildlife_common.errors import PipelineError, StorageUnavailable
from wildlife_common.records import Stage

from wildlife_gpu.models import ModelError
from wildlife_gpu.shards import ShardError

log = logging.getLogger("wildlife_gpu")

# sysexits.h's EX_TEMPFAIL, "temporary failure, try again later": the one exit status that the job
# definitions' RetryStrategy retries (OnExitCode "75" in template.yaml).
EXIT_TEMPFAIL = 75


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    cli = OneLineParser(prog="wildlife-gpu", description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = cli.add_subparsers(dest="command", required=True)
    for stage in Stage:
        sub = commands.add_parser(stage.command, help=f"{stage.command} one {stage.label} shard")
        sub.add_argument("--run", required=True, help="the run folder: s3://bucket/runs/<run_id>/ or a path")
        sub.add_argument("--shard", required=True, help="the shard id, e.g. 00042 or c00003")
    sub = commands.add_parser("materialize", help="merge a run's shards into its final outputs")
    sub.add_argument("--run", required=True, help="the run folder: s3://bucket/runs/<run_id>/ or a path")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == Stage.DETECTION.command:
            from wildlife_gpu.detect import run_detect

            run_detect(args.run, args.shard)
        elif args.command == Stage.CLASSIFICATION.command:
            from wildlife_gpu.classify import run_classify

            run_classify(args.run, args.shard)
        else:
            from wildlife_common import storage
            from wildlife_common.materialize import materialize

            from wildlife_gpu.metrics import put_run_metrics

            result = materialize(args.run)
            if storage.is_s3(args.run):  # a run in AWS; a local run has no CloudWatch to feed
                put_run_metrics(result)
    except StorageUnavailable as error:  # S3's trouble, not the run's: no row was recorded for it
        print(f"error: {error}", file=sys.stderr)
        return EXIT_TEMPFAIL
    except (ShardError, ModelError, PipelineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug: keep the traceback in the log, and still end on one line
        log.exception("unexpected failure")
        print(f"error: unexpected {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0
