"""Side-by-side timing on a shared machine, and a description of the machine.

The dev machine has 2 cores shared with other work (tests, model training), so an absolute time
measured now and another measured a minute later are not comparable. Each figure therefore runs
its two sides in alternation inside one process, round after round, reversing the order every
round (A B, B A, A B, ...) so that neither side always runs first, on a warmer cache or a quieter
machine, and compares the medians: a burst of other work slows one or two rounds of both sides,
and the median drops those rounds.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def alternate(sides: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each call of each side, ``rounds`` times, in alternating order."""
    names = list(sides)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            start = time.perf_counter()
            sides[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def against_a_process(
    ours: Callable[[int], Any], theirs: Callable[[int], float], rounds: int
) -> tuple[list[float], list[float]]:
    """Rounds of our side (timed here) and a reference that times itself in its own process.

    ``theirs(round)`` runs the reference and returns the seconds it measured (its model load left
    out); which side goes first alternates every round, as in :func:`alternate`.
    """
    ours_seconds: list[float] = []
    theirs_seconds: list[float] = []
    for index in range(rounds):
        if index % 2:
            theirs_seconds.append(theirs(index))
        start = time.perf_counter()
        ours(index)
        ours_seconds.append(time.perf_counter() - start)
        if not index % 2:
            theirs_seconds.append(theirs(index))
    return ours_seconds, theirs_seconds


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """``median [min-max]`` in seconds, for the log: a wide range says the machine was busy."""
    return f"{median(values):.3f} s [{min(values):.3f}-{max(values):.3f}]"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        with open("/proc/loadavg") as handle:
            # The 1-minute load when the run started: above nproc, other work was competing.
            info["loadavg_1m_at_start"] = float(handle.read().split()[0])
    except OSError:
        pass
    return info
