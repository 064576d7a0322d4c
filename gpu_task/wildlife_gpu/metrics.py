"""Per-shard metrics as CloudWatch embedded metric format (EMF) lines, plus GPU utilization.

One JSON line per shard on stdout. Lambda extracts EMF by itself; for Batch the line is in the
job's log stream, where ``wildlife report`` and Logs Insights read it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

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
