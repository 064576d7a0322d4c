"""What a run cost, estimated from the time its GPU jobs ran.

Prices are on-demand Linux prices in us-east-1 (USD per hour, late 2026). Spot usually costs
60-70 % less, so for a Spot run this is an upper bound. Users override the table with the
``WILDLIFE_PRICES`` environment variable (JSON ``{"instance type": usd_per_hour}``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

ON_DEMAND_USD_PER_HOUR = {
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "g6.xlarge": 0.805,
    "g6.2xlarge": 0.978,
}
DEFAULT_INSTANCE = "g4dn.xlarge"
"""Assumed when a job did not record its instance type (a local run priced as if in AWS)."""

STATE_TRANSITION_USD = 0.025 / 1000
"""Step Functions standard workflows: $0.025 per 1,000 state transitions."""

TRANSITIONS_PER_SHARD = 5
"""A Map child execution: start, the Batch task (entered, scheduled, succeeded), end."""


def price_table() -> dict[str, float]:
    """The built-in prices with the user's overrides applied."""
    table = dict(ON_DEMAND_USD_PER_HOUR)
    override = os.environ.get("WILDLIFE_PRICES")
    if override:
        table.update({str(k): float(v) for k, v in json.loads(override).items()})
    return table


def estimate(markers: Iterable[dict[str, Any]], images: int) -> dict[str, Any]:
    """Cost of the GPU jobs behind ``markers`` (done.json contents) and the orchestration.

    Returns:
        ``usd`` in total, ``usd_per_1000_images``, ``gpu_hours`` and the assumptions made.
    """
    prices = price_table()
    gpu_usd = 0.0
    seconds = 0.0
    shards = 0
    assumed = set()
    for marker in markers:
        shards += 1
        instance = marker.get("instance_type") or DEFAULT_INSTANCE
        if instance not in prices:
            assumed.add(instance)
            instance = DEFAULT_INSTANCE
        job_seconds = float(marker.get("seconds") or 0.0)
        seconds += job_seconds
        gpu_usd += job_seconds / 3600 * prices[instance]
    orchestration = shards * TRANSITIONS_PER_SHARD * STATE_TRANSITION_USD
    total = gpu_usd + orchestration
    return {
        "usd": round(total, 4),
        "usd_per_1000_images": round(total / images * 1000, 4) if images else None,
        "gpu_hours": round(seconds / 3600, 4),
        "gpu_usd": round(gpu_usd, 4),
        "orchestration_usd": round(orchestration, 6),
        "pricing": "on-demand us-east-1 (Spot is cheaper); unknown instance types priced as "
        + DEFAULT_INSTANCE
        + (f": {', '.join(sorted(assumed))}" if assumed else ""),
    }
