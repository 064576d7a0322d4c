"""What a run cost: GPU job time × instance price, Lambda GB-seconds, Step Functions transitions.

One function, :func:`run_cost`, computes the figure; ``summary.json`` (written by materialize) and
``wildlife report`` both call it on the same inputs, which the summary keeps under ``cost.inputs``:
every committed job (stage, shard, instance type, purchase option, seconds), every Lambda
invocation (memory, seconds) and the number of state transitions. ``report`` can recompute the
figure with another price table; with the same table it prints the summary's number.

What is counted, and what is not (README, Costs):

- GPU: each committed shard job's own run time (``seconds`` in its ``.done.json``: from the job
  opening its shard to the commit, so model load is in, the container pull before it is not),
  priced per second at the instance type it ran on. Attempts that did not commit (a Spot
  interruption, a failed shard) are not in the figure, nor is the time an instance idles before
  Batch scales it in; both make the real EC2 bill somewhat higher.
- Prices: on-demand Linux, us-east-1, late 2026. A job on Spot is priced at the table's ``spot``
  price when it has one, else at on-demand, which is then an upper bound (Spot usually costs
  60-70 % less).
- Lambda: arm64 GB-seconds plus requests. Materialize measures its own duration; the two
  planners are modelled (see :func:`planner_usage`). Lambda is well under 1 % of a run's cost.
- Step Functions: $0.025 per 1,000 state transitions, counted from the states a run passes
  (:func:`state_transitions`).
- Not counted: S3 requests and storage, CloudWatch Logs, data transfer (none within a region).

Users override prices with a JSON file (``wildlife report --prices FILE``) or the
``WILDLIFE_PRICES`` environment variable (JSON text or the path of a JSON file), either a flat
``{"instance type": usd_per_hour}`` or ``{"on_demand": {...}, "spot": {...},
"lambda_usd_per_gb_second": x, "state_transition_usd": y}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wildlife_common.errors import ConfigError

ON_DEMAND_USD_PER_HOUR = {
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "g6.xlarge": 0.805,
    "g6.2xlarge": 0.978,
}
"""On-demand Linux prices in us-east-1, USD per hour (late 2026): the template's InstanceTypes and their 2xlarge."""

DEFAULT_INSTANCE = "g4dn.xlarge"
"""Assumed when a job did not record its instance type (a local run priced as if in AWS)."""

LAMBDA_USD_PER_GB_SECOND = 0.0000133334
"""Lambda on arm64 (the template's Architectures), us-east-1, first pricing tier."""

LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
"""Lambda requests: $0.20 per million."""

STATE_TRANSITION_USD = 0.025 / 1000
"""Step Functions standard workflows: $0.025 per 1,000 state transitions."""

TARGET_USD_PER_IMAGE = 0.01
"""The old scripts' planning figure: one cent per image, i.e. $10 per 1,000 images."""

TARGET_GPU_MINUTES_PER_1000_IMAGES = 30.0
"""The old scripts' planning figure: 30 minutes on a g4dn.xlarge per 1,000 images."""

# The template's MemorySize of each function (MB); a local run is priced as if it ran in AWS.
PLAN_DETECTION_MEMORY_MB = 1769
PLAN_CLASSIFICATION_MEMORY_MB = 1769
MATERIALIZE_MEMORY_MB = 3008

# The planners' model. PlanDetection lists the input with ListObjectsV2 (1,000 keys a page); the
# template sizes it at about 2 min per 1,000 pages, i.e. 0.12 s per 1,000 images. Writing one
# small shard manifest to S3 takes about 50 ms. One second of start-up and run.json I/O each.
_PLAN_FIXED_S = 1.0
_LIST_S_PER_IMAGE = 0.12 / 1000
_WRITE_S_PER_SHARD = 0.05

# States a successful run passes through in the parent execution (statemachine/pipeline.asl.json):
# PlanDetection, AnotherScheduledRunRunning, InputToList, AnyShardsToDetect, DetectShards,
# DetectionOnly, ChooseMaterializer, Materialize, Done = 9. A classifier adds PlanClassification and
# AnyCropsToClassify, and ClassifyShards when there are crops; materializing on Batch passes
# MaterializeOnBatch and BatchMaterialized (one more). An input listed in parallel ranges adds
# ListInput, AssemblePlan and InputToList again per listing round, and one child per lister.
PARENT_TRANSITIONS_DETECTION_ONLY = 9
TRANSITIONS_PER_LISTING_ROUND = 3
TRANSITIONS_PER_SHARD = 1
"""A shard's child execution runs one Task state (DetectShard / ClassifyShard); retries add more."""


@dataclass(frozen=True)
class PriceTable:
    """What things cost, USD."""

    on_demand: dict[str, float] = field(default_factory=lambda: dict(ON_DEMAND_USD_PER_HOUR))
    spot: dict[str, float] = field(default_factory=dict)
    lambda_usd_per_gb_second: float = LAMBDA_USD_PER_GB_SECOND
    lambda_usd_per_request: float = LAMBDA_USD_PER_REQUEST
    state_transition_usd: float = STATE_TRANSITION_USD
    source: str = "built-in (on-demand, us-east-1, late 2026)"

    def hourly(self, instance_type: str, lifecycle: str | None) -> tuple[float, str]:
        """The hourly price of an instance and how it was chosen (a note when it was assumed)."""
        if lifecycle == "spot" and instance_type in self.spot:
            return self.spot[instance_type], "spot"
        if instance_type in self.on_demand:
            return self.on_demand[instance_type], "on-demand"
        return self.on_demand[DEFAULT_INSTANCE], f"unknown type, priced as {DEFAULT_INSTANCE}"


def _prices(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must map instance types to USD per hour, got {value!r}")
    out = {}
    for name, price in value.items():
        if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
            raise ConfigError(f"{where}[{name!r}] must be a price in USD per hour, got {price!r}")
        out[str(name)] = float(price)
    return out


def parse_price_table(document: Any, source: str, base: PriceTable | None = None) -> PriceTable:
    """A price table from decoded JSON, applied over ``base`` (the built-in table by default).

    Raises:
        ConfigError: an unknown key or a price that is not a non-negative number.
    """
    base = base or PriceTable()
    if not isinstance(document, Mapping):
        raise ConfigError(f"price table {source}: expected a JSON object, got {type(document).__name__}")
    sections = {"on_demand", "spot", "lambda_usd_per_gb_second", "lambda_usd_per_request", "state_transition_usd"}
    if not set(document) & sections:
        # The flat form: {"g4dn.xlarge": 0.526, ...} are on-demand prices.
        document = {"on_demand": document}
    unknown = set(document) - sections
    if unknown:
        raise ConfigError(f"price table {source}: unknown key(s) {', '.join(sorted(unknown))}")
    scalars = {}
    for key in ("lambda_usd_per_gb_second", "lambda_usd_per_request", "state_transition_usd"):
        if key in document:
            scalars[key] = _prices({key: document[key]}, f"price table {source}")[key]
    return PriceTable(
        on_demand={**base.on_demand, **_prices(document.get("on_demand", {}), f"{source} on_demand")},
        spot={**base.spot, **_prices(document.get("spot", {}), f"{source} spot")},
        lambda_usd_per_gb_second=scalars.get("lambda_usd_per_gb_second", base.lambda_usd_per_gb_second),
        lambda_usd_per_request=scalars.get("lambda_usd_per_request", base.lambda_usd_per_request),
        state_transition_usd=scalars.get("state_transition_usd", base.state_transition_usd),
        source=source,
    )


def _read_json(text_or_path: str, source: str) -> Any:
    try:
        if text_or_path.lstrip().startswith("{"):
            return json.loads(text_or_path)
        return json.loads(Path(text_or_path).read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"price table {source}: no such file {text_or_path}") from error
    except ValueError as error:
        raise ConfigError(f"price table {source}: not valid JSON ({error})") from error


def price_table(path: str | os.PathLike[str] | None = None) -> PriceTable:
    """The built-in prices, then ``WILDLIFE_PRICES`` (JSON text or a file), then the file ``path``."""
    table = PriceTable()
    override = os.environ.get("WILDLIFE_PRICES")
    if override:
        table = parse_price_table(_read_json(override, "WILDLIFE_PRICES"), "WILDLIFE_PRICES", table)
    if path is not None:
        table = parse_price_table(_read_json(str(path), str(path)), str(path), table)
    return table


def job_usage(markers: Iterable[Mapping[str, Any]], stage: str) -> list[dict[str, Any]]:
    """The cost inputs of a stage's committed shard jobs, from their ``.done.json`` markers."""
    return [
        {
            "stage": marker.get("stage") or stage,
            "shard": marker.get("shard"),
            "instance_type": marker.get("instance_type"),
            "lifecycle": marker.get("lifecycle"),
            "seconds": round(float(marker.get("seconds") or 0.0), 3),
        }
        for marker in markers
    ]


def planner_usage(
    images: int, stage1_shards: int, stage2_planned: bool, *, listing_rounds: int = 0, listers: int = 0
) -> list[dict[str, Any]]:
    """Modelled Lambda usage of PlanDetection and PlanClassification (they do not measure themselves).

    An input listed in parallel ranges costs the same listing, spread over its listers, plus each
    lister's and each AssemblePlan's start-up (the PlanDetection function runs all three steps).
    """
    invocations = 1 + listers + listing_rounds
    usage = [
        {
            "function": "PlanDetection",
            "memory_mb": PLAN_DETECTION_MEMORY_MB,
            "seconds": round(
                invocations * _PLAN_FIXED_S + images * _LIST_S_PER_IMAGE + stage1_shards * _WRITE_S_PER_SHARD, 3
            ),
            "measured": False,
        }
    ]
    if stage2_planned:
        usage.append(
            {
                "function": "PlanClassification",
                "memory_mb": PLAN_CLASSIFICATION_MEMORY_MB,
                "seconds": round(_PLAN_FIXED_S + stage1_shards * _WRITE_S_PER_SHARD, 3),
                "measured": False,
            }
        )
    return usage


def state_transitions(
    stage1_shards: int,
    stage2_shards: int,
    *,
    classify: bool,
    materialize_on_batch: bool,
    listing_rounds: int = 0,
    listers: int = 0,
) -> int:
    """Transitions of a run: the parent's states on its path plus one per child execution (shard or lister)."""
    parent = PARENT_TRANSITIONS_DETECTION_ONLY + TRANSITIONS_PER_LISTING_ROUND * listing_rounds + listers
    if classify:
        parent += 2 + (1 if stage2_shards else 0)
    if materialize_on_batch:
        parent += 1
    return parent + TRANSITIONS_PER_SHARD * (stage1_shards + stage2_shards)


def run_cost(
    jobs: Iterable[Mapping[str, Any]],
    images: int,
    *,
    lambdas: Iterable[Mapping[str, Any]] = (),
    transitions: int = 0,
    prices: PriceTable | None = None,
) -> dict[str, Any]:
    """The cost of a run from its jobs, Lambda invocations and state transitions.

    Args:
        jobs: ``{"stage", "shard", "instance_type", "lifecycle", "seconds"}`` per committed job.
        images: the run's images (for the cost per 1,000 images).
        lambdas: ``{"function", "memory_mb", "seconds", "measured"}`` per invocation.
        transitions: Step Functions state transitions.
        prices: the price table; the built-in one (with ``WILDLIFE_PRICES``) when None.

    Returns:
        ``usd`` in total and per 1,000 images, its three parts, GPU hours, GPU minutes per 1,000
        images, the comparison with the old target, the price of every job, the assumptions made and
        ``inputs`` (everything needed to compute the figure again).
    """
    prices = prices or price_table()
    jobs = [dict(job) for job in jobs]
    lambdas = [dict(invocation) for invocation in lambdas]
    priced = []
    notes = set()
    gpu_usd = 0.0
    gpu_seconds = 0.0
    for job in jobs:
        instance = job.get("instance_type") or DEFAULT_INSTANCE
        if not job.get("instance_type"):
            notes.add(f"jobs without a recorded instance type priced as {DEFAULT_INSTANCE}")
        hourly, basis = prices.hourly(instance, job.get("lifecycle"))
        if basis.startswith("unknown"):
            notes.add(f"{instance}: not in the price table, priced as {DEFAULT_INSTANCE}")
        elif job.get("lifecycle") == "spot" and basis == "on-demand":
            notes.add(f"Spot jobs on {instance} priced at on-demand (no spot price in the table): an upper bound")
        seconds = float(job.get("seconds") or 0.0)
        usd = seconds / 3600 * hourly
        gpu_usd += usd
        gpu_seconds += seconds
        priced.append({**job, "usd_per_hour": hourly, "usd": round(usd, 6)})
    gb_seconds = sum(float(i["memory_mb"]) / 1024 * float(i["seconds"]) for i in lambdas)
    lambda_usd = gb_seconds * prices.lambda_usd_per_gb_second + len(lambdas) * prices.lambda_usd_per_request
    if any(not i.get("measured", True) for i in lambdas):
        notes.add("planner Lambda durations are modelled, not measured")
    transitions_usd = transitions * prices.state_transition_usd
    total = gpu_usd + lambda_usd + transitions_usd
    per_1000 = total / images * 1000 if images else None
    gpu_minutes_per_1000 = gpu_seconds / 60 / images * 1000 if images else None
    return {
        "usd": round(total, 4),
        "usd_per_1000_images": round(per_1000, 4) if per_1000 is not None else None,
        "gpu_usd": round(gpu_usd, 4),
        "lambda_usd": round(lambda_usd, 6),
        "transitions_usd": round(transitions_usd, 6),
        # Kept for readers of older summaries: Lambda and Step Functions together.
        "orchestration_usd": round(lambda_usd + transitions_usd, 6),
        "gpu_hours": round(gpu_seconds / 3600, 4),
        "gpu_minutes_per_1000_images": round(gpu_minutes_per_1000, 2) if gpu_minutes_per_1000 is not None else None,
        "lambda_gb_seconds": round(gb_seconds, 3),
        "state_transitions": transitions,
        "target": {
            "usd_per_1000_images": TARGET_USD_PER_IMAGE * 1000,
            "gpu_minutes_per_1000_images": TARGET_GPU_MINUTES_PER_1000_IMAGES,
        },
        "jobs": priced,
        "pricing": prices.source,
        "assumptions": sorted(notes),
        "inputs": {"images": images, "jobs": jobs, "lambdas": lambdas, "transitions": transitions},
    }


def recompute(cost: Mapping[str, Any], prices: PriceTable | None = None) -> dict[str, Any]:
    """The figure of a summary's ``cost`` again, from its ``inputs``, with ``prices`` (e.g. the user's).

    Raises:
        KeyError: the summary was written before costs kept their inputs.
    """
    inputs = cost["inputs"]
    return run_cost(
        inputs["jobs"],
        int(inputs["images"]),
        lambdas=inputs.get("lambdas", []),
        transitions=int(inputs.get("transitions", 0)),
        prices=prices,
    )
