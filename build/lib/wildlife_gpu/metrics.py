"""Per-shard metrics as CloudWatch embedded metric format (EMF) lines, plus GPU utilization.

One JSON line per shard on stdout. Lambda extracts EMF by itself; for Batch the line is in the
job's log stream, where ``wildlife report`` and Logs Insights read it. CloudWatch does not extract
EMF from Batch logs, so a run merged by the Batch materialize job puts its run metrics (what the
image-failure-rate alarm watches) with PutMetricData instead (``put_run_metrics``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

from wildlife_common.records import MaterializeResult

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "WildlifePipeline")

UNITS = {
    "Images": "Count",
    "FailedImages": "Count",
    "Crops": "Count",
    "ImagesPerSecond": "Count/Second",
    "CropsPerSecond": "Count/Second",
    "InputWaitFraction": "None",
    "GpuUtilization": "Percent",
    "ShardSeconds": "Seconds",
}


def emit(stage: str, shard: str, values: dict[str, float], *, stream: Any = None) -> dict[str, Any]:
    """Print one EMF line with ``values`` (names from UNITS) and return the document."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "wildlife-pipeline")
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["service", "stage"]],
                    "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
                }
            ],
        },
        "service": service,
        "stage": stage,
        "shard": shard,
        **{name: float(value) for name, value in values.items()},
    }
    print(json.dumps(doc), file=stream or sys.stdout, flush=True)
    return doc


class GpuSampler:
    """Samples GPU utilization with NVML once a second in the background (no-op without a GPU)."""

    # One sample a second: NVML's utilization counter is itself averaged over about a second.
    INTERVAL = 1.0

    def __init__(self, device_index: int = 0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self._nvml = pynvml
        except Exception:  # no driver, no GPU, or no pynvml: utilization is simply not reported
            self._handle = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="gpu-sampler")

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self.samples.append(float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))

    def __enter__(self) -> GpuSampler:
        if self._handle is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


log = logging.getLogger(__name__)


def run_metrics(result: MaterializeResult) -> list[dict[str, Any]]:
    """The metrics the Materialize Lambda emits for a run, as PutMetricData items (same names, units)."""
    images = int(result["images"])
    values: list[tuple[str, float, str]] = [
        ("Images", images, "Count"),
        ("FailedImages", int(result["failed_images"]), "Count"),
        ("FailedShards", result["failed_shard_count"], "Count"),
    ]
    if images:
        values.append(("ImageFailureRate", 100.0 * int(result["failed_images"]) / images, "Percent"))
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "wildlife-pipeline")
    # The Lambda's metrics carry Powertools' service dimension; the alarm matches on it.
    dimensions = [{"Name": "service", "Value": service}]
    return [
        {"MetricName": name, "Value": float(value), "Unit": unit, "Dimensions": dimensions}
        for name, value, unit in values
    ]


def put_run_metrics(result: MaterializeResult) -> bool:
    """Put a materialized run's metrics into CloudWatch; returns False (and logs why) when it could not.

    The run's outputs are already written: a metrics outage must not fail the job, only be said.
    """
    import boto3

    try:
        boto3.client("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=run_metrics(result))
    except Exception as error:
        log.warning("could not put the run's metrics into CloudWatch: %s", error)
        return False
    return True
