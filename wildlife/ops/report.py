"""A run's report: its summary (counts, failures, speed) and its cost, with the jobs it came from.

The numbers come from the run's ``final/summary.json``, written by Materialize. The cost is
computed again from the inputs the summary keeps (``cost.inputs``: every job's duration and
instance type, the Lambda invocations, the state transitions) with the price table in force here,
so with the same prices it is the summary's figure, and with the user's (``--prices``) it is
theirs. A deployed run's folder is found from its execution; when the execution has gone (Step
Functions keeps them 90 days), from the stack's bucket. A local run's is in the ``--out`` folder of
the ``wildlife run`` that made it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wildlife_common import costs
from wildlife_common.errors import PipelineError
from wildlife_common.layout import RunLayout
from wildlife_common.records import Stage, Summary

from wildlife.ops.aws import Aws, RunNotFound
from wildlife.ops.local_runs import FAILED, find_local_run
from wildlife.ops.runs import Execution, find_run, read_json
from wildlife.ops.stack import Stack
from wildlife.summary import line, summary_lines
from wildlife.text import duration

JOBS_LISTED = 20
"""Runs with up to this many jobs list every job; larger ones list them with --all-jobs."""


class NoSummary(PipelineError):
    """The run exists but has no summary (still running, stopped, or failed before Materialize)."""


@dataclass(frozen=True)
class Report:
    """Everything ``wildlife report`` prints."""

    run_id: str
    run_uri: str
    state: str
    """How the run stands, for the first line: its execution's status and time, or a local run's."""
    summary: Summary
    cost: dict[str, Any]
    prices_source: str


def priced_report(
    summary: Summary, *, run: str, run_uri: str, state: str, prices: costs.PriceTable | None = None
) -> Report:
    """A run's summary with its cost computed again with ``prices`` (a stack's run and a local one alike)."""
    prices = prices or costs.price_table()
    cost = summary.get("cost") or {}
    if "inputs" in cost:
        cost = costs.recompute(cost, prices)
    return Report(
        run_id=str(summary.get("run_id") or run),
        run_uri=run_uri,
        state=state,
        summary=summary,
        cost=cost,
        prices_source=cost.get("pricing", "as recorded in the summary"),
    )


def load_report(aws: Aws, stack: Stack, run: str, *, prices: costs.PriceTable | None = None) -> Report:
    """Find the run's summary on the stack and price it.

    Raises:
        RunNotFound: no execution and no run folder of that name.
        NoSummary: the run has not written its summary (running, or failed early).
    """
    execution: Execution | None
    try:
        execution = find_run(aws, stack, run)
    except RunNotFound:
        execution = None
    run_uri = execution.run_uri(stack) if execution else RunLayout.for_run(stack.output_root, run).run_uri
    layout = RunLayout(run_uri)
    summary = read_json(aws, layout.summary_json)
    if summary is None:
        if execution is None:
            raise RunNotFound(
                f"no run {run} on stack {stack.name}: no execution of that name and no {layout.summary_json}"
            )
        if execution.status == "RUNNING":
            raise NoSummary(f"run {run} is still RUNNING: no summary yet (wildlife watch {run} --stack {stack.name})")
        cause = f": {execution.error}: {execution.cause}" if execution.error else ""
        raise NoSummary(f"run {run} ended {execution.status} before writing its summary{cause}")
    state = f"{execution.status}, {duration(execution.seconds)}" if execution else "execution no longer listed"
    return priced_report(summary, run=run, run_uri=run_uri, state=state, prices=prices)


def load_local_report(out: str, run: str, *, prices: costs.PriceTable | None = None) -> Report:
    """Find the summary of a run made by ``wildlife run --out OUT`` and price it.

    Raises:
        RunNotFound: no run folder of that name in ``out``.
        NoSummary: the run stopped or failed before Materialize wrote its summary.
    """
    local = find_local_run(out, run)
    if local.summary is None:
        if local.status == FAILED:
            raise NoSummary(
                f"run {run} failed before writing its summary: {local.error} "
                f"(fix the cause, then resume it: {local.resume_command})"
            )
        raise NoSummary(
            f"run {run} has no summary: it stopped before the end, or is still running elsewhere "
            f"(resume it: {local.resume_command})"
        )
    took = f", {duration(local.seconds)}" if local.seconds is not None else ""
    return priced_report(
        local.summary, run=run, run_uri=local.layout.run_uri, state=f"local run, {local.status}{took}", prices=prices
    )


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 0.01:
        return f"${value:.6f}"  # Lambda and Step Functions parts are fractions of a cent
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def format_report(report: Report, *, all_jobs: bool = False) -> list[str]:
    """The report as lines of text."""
    s = report.summary
    cost = report.cost
    lines = [
        f"run {report.run_id} ({report.state})  {report.run_uri}",
        line("status", f"{s.get('status')}: {s.get('message', '')}"),
        *summary_lines(s),
    ]
    for stage in Stage:
        timing: Mapping[str, Any] = s.get("timings", {}).get(stage) or {}
        if not timing.get("shards"):
            continue
        detection = stage is Stage.DETECTION
        items = "images" if detection else "crops"
        wall = timing.get("wall_seconds") or 0.0
        # The wall-clock rate is the whole fleet's: the images of the run over detection's first start to last end.
        total = s.get("images", 0) if detection else 0
        rate = f", {total / wall:,.1f} {items}/s over {duration(wall)} wall clock" if wall and total else ""
        job_seconds = float(timing.get("job_seconds") or 0.0)
        per_job_s = timing.get("items_per_job_second")
        if detection and job_seconds:
            per_job_s = s.get("images", 0) / job_seconds  # unrounded: small test runs are far below 0.01
        lines.append(
            f"  {stage.label:<13} {timing['shards']:,} shard{'' if timing['shards'] == 1 else 's'}, "
            f"{duration(job_seconds)} of GPU jobs, "
            f"{'-' if per_job_s is None else f'{per_job_s:.3g}'} {items} per GPU-second{rate}"
        )
    lines += _cost_lines(cost, all_jobs=all_jobs)
    outputs = s.get("outputs", {})
    if outputs:
        lines.append(f"  outputs       {outputs.get('detections')}")
        lines.append(f"                {outputs.get('megadetector')}")
    return lines


def _cost_lines(cost: dict[str, Any], *, all_jobs: bool) -> list[str]:
    if not cost:
        return ["  cost          not recorded"]
    target = cost.get("target") or {}
    lines = [
        f"  cost          {_usd(cost.get('usd'))} = GPU {_usd(cost.get('gpu_usd'))} + Lambda "
        f"{_usd(cost.get('lambda_usd'))} + Step Functions {_usd(cost.get('transitions_usd'))} "
        f"({cost.get('state_transitions', '?')} transitions)",
        f"                {_usd(cost.get('usd_per_1000_images'))} per 1,000 images (old target "
        f"{_usd(target.get('usd_per_1000_images'))}); "
        f"{cost.get('gpu_minutes_per_1000_images', '-')} GPU minutes per 1,000 images (old target "
        f"{target.get('gpu_minutes_per_1000_images', '-')} on a g4dn.xlarge)",
        f"  prices        {cost.get('pricing')}",
    ]
    for note in cost.get("assumptions", []):
        lines.append(f"  assumption    {note}")
    jobs = cost.get("jobs", [])
    if not jobs:
        return lines
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for job in jobs:
        key = (str(job.get("stage")), str(job.get("instance_type") or "unrecorded"), str(job.get("lifecycle") or "-"))
        groups[key].append(float(job.get("seconds") or 0.0))
    lines.append("  GPU jobs the cost came from (duration each job recorded in its .done.json):")
    for (stage, instance, lifecycle), seconds in sorted(groups.items()):
        lines.append(
            f"    {stage:<12} {instance:<14} {lifecycle:<10} {len(seconds):>5,} jobs  total {duration(sum(seconds))}"
            f"  min {min(seconds):.1f} s  median {statistics.median(seconds):.1f} s  max {max(seconds):.1f} s"
        )
    if all_jobs or len(jobs) <= JOBS_LISTED:
        lines.append(
            f"    {'stage':<12} {'shard':<8} {'instance':<14} {'purchase':<10} {'seconds':>9} {'$/h':>7} {'USD':>9}"
        )
        for job in jobs:
            lines.append(
                f"    {job.get('stage')!s:<12} {job.get('shard') or '-'!s:<8} {job.get('instance_type') or '-'!s:<14} "
                f"{job.get('lifecycle') or '-'!s:<10} {float(job.get('seconds') or 0):>9.1f} "
                f"{float(job.get('usd_per_hour', 0)):>7.3f} {float(job.get('usd', 0)):>9.4f}"
            )
    else:
        lines.append(f"    ({len(jobs):,} jobs; --all-jobs lists each)")
    lambdas = (cost.get("inputs") or {}).get("lambdas", [])
    if lambdas:
        lines.append("  Lambda invocations:")
        for invocation in lambdas:
            how = "measured" if invocation.get("measured") else "modelled"
            lines.append(
                f"    {invocation['function']:<20} {invocation['memory_mb']:>5} MB"
                f" {float(invocation['seconds']):>8.1f} s  ({how})"
            )
    return lines
