"""A run's ``final/summary.json`` (written by Materialize) as lines for the terminal.

One rendering for ``wildlife run`` (after a local run) and ``wildlife report`` (a deployed run), so
that a run's counts read the same wherever they are shown. Each command adds its own first line
(how the run ended, where it is) and what only it knows (the report's speed and cost).
"""

from __future__ import annotations

from collections.abc import Mapping

from wildlife_common.records import Summary

LABEL = 14
"""Width of the label column: ``failed shards``, the longest label, and a space."""

TOP_SPECIES = 10


def counts(mapping: Mapping[str, int]) -> str:
    """``animal 3, person 1``, or ``none``."""
    return ", ".join(f"{name} {count:,}" for name, count in mapping.items()) or "none"


def line(label: str, text: str) -> str:
    """A labelled line under a run's first line, aligned with the summary's."""
    return f"  {label:<{LABEL}}{text}"


def summary_lines(summary: Summary) -> list[str]:
    """Images in their four buckets, detections, top species and failed shards."""
    threshold = summary.get("typical_detection_threshold", 0.2)
    above = summary.get("images_above_threshold", 0)
    # Every image in exactly one bucket, so the four add up to the total (summary.json has each;
    # a summary written before images_below_threshold existed still adds up).
    below = summary.get("images_below_threshold", summary.get("images_with_detections", 0) - above)
    reasons = summary.get("failure_reasons") or {}
    lines = [
        line(
            "images",
            f"{summary.get('images', 0):,}: {above:,} with detections at or above {threshold}, "
            f"{below:,} with detections below it only, {summary.get('empty_images', 0):,} empty, "
            f"{summary.get('failed_images', 0):,} failed" + (f" ({counts(reasons)})" if reasons else ""),
        ),
        line(
            "detections",
            f"{summary.get('detections', 0):,} "
            f"({counts(summary.get('detections_above_threshold') or {})} at or above {threshold})",
        ),
    ]
    species = summary.get("species") or {}
    if species:
        top = sorted(species.items(), key=lambda item: (-item[1], item[0]))[:TOP_SPECIES]
        lines.append(line("top species", counts(dict(top))))
    not_read = {
        "not images": summary.get("not_image_files", 0),
        "in hidden or system folders": summary.get("hidden_files", 0),
        "processed by earlier runs": summary.get("skipped_images", 0),
    }
    if any(not_read.values()):
        lines.append(line("not read", ", ".join(f"{n:,} {what}" for what, n in not_read.items() if n)))
    failed = summary["shards"]["failed"] if "shards" in summary else []
    lines.append(line("failed shards", ", ".join(f"{f['stage']}/{f['shard']}" for f in failed) or "none"))
    return lines
