"""``gpu_wait_fraction``: the share of a shard's time inference waited for input.

``run_detect`` measures it itself (``loader.WaitClock``: the time the model's loop blocked on
the next decoded image, over the shard's time from the first read to the last batch) and writes it
as ``input_wait_fraction`` in the commit marker and ``InputWaitFraction`` in the EMF metrics line.
This figure is the median over the benchmark's detection-only shards (:mod:`bench.shard_speedup`).

On a CPU the "GPU" is the same cores that decode, so the figure says how well the input path
keeps up while sharing the cores with inference, not how a GPU would be fed; ``make bench-gpu``
measures it on a GPU (``gpu_wait_fraction_gpu``), where the target of at most 0.1 applies.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def from_markers(markers: Sequence[dict[str, Any]], *, name: str = "gpu_wait_fraction") -> dict[str, Any]:
    """The median ``input_wait_fraction`` of the markers, and the device they ran on."""
    fractions = [float(m["input_wait_fraction"]) for m in markers]
    devices = sorted({str(m.get("device")) for m in markers})
    value = round(statistics.median(fractions), 4)
    print(f"{name}: {value} (median of {len(fractions)} shards on {', '.join(devices)}: {fractions})", flush=True)
    return {name: value, f"{name}_device": ", ".join(devices)}
