"""The run configuration: every setting a run takes, with its default and its check.

A run is started with a small JSON document (the Step Functions execution input, a schedule's
input, or the CLI's options), for example::

    {"input": "s3://my-traps/2026/", "detector": "s3://my-models/md_v1000.pt"}

:func:`parse_config` fills in defaults and rejects unknown keys and bad values with one line that
names the key, so a typo fails the run in its first second instead of after an hour of GPU time.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from wildlife_common.errors import ConfigError

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
"""Run ids become S3 key parts and Batch job names (letters, digits, - and _; at most 128 chars)."""

CATEGORIES = ("animal", "person", "vehicle")
BUILTIN_CLASS_MAPS = ("megadetector", "coco")
DETECTOR_FORMATS = ("auto", "ultralytics", "yolov5")


@dataclass(frozen=True)
class RunConfig:
    """One run's settings. Field docs are the user-facing reference (README, Configuration)."""

    input: str
    """Where the images are: ``s3://bucket/prefix/`` or a local folder."""
    detector: str
    """Detector weights (``.pt``): an ultralytics checkpoint (MegaDetector v1000 larch/sorrel, YOLOv8-11) or a
    YOLOv5 repository checkpoint (MegaDetector v5a/v5b, v1000 redwood/spruce); a local path or an ``s3://`` URI."""
    run_id: str | None = None
    """Name of the run; defaults to the Step Functions execution name. Same id = resume."""
    output: str | None = None
    """Where run folders go; defaults to the pipeline bucket (``s3://<bucket>/``)."""
    detector_classes: str | dict[str, str] = "megadetector"
    """Map from detector classes to animal/person/vehicle: megadetector, coco, or {class: category}."""
    detector_format: str = "auto"
    """How to load the detector: auto (from what the file is), ultralytics, or yolov5 (YOLOv5 repository)."""
    image_size: int = 640
    """Detector input size in pixels (1280 for MegaDetector v5a/v1000 at full resolution)."""
    batch_size: int = 16
    """Images per detector batch; halved automatically on CUDA out-of-memory."""
    detection_threshold: float = 0.005
    """Detections below this confidence are not written (MegaDetector's convention)."""
    exact_decode: bool = True
    """Decode every JPEG at full size as MegaDetector does (identical boxes); false decodes at the reduced
    size the model needs (DCT scaling: less CPU per image, boxes that differ from MegaDetector's)."""
    typical_detection_threshold: float = 0.2
    """Recommended display threshold written for Timelapse."""
    classifier: str | None = None
    """Classifier: a timm checkpoint (with classifier_arch and classifier_labels) or a SpeciesNet model
    folder (with its info.json); local path or ``s3://`` URI. None = detection only."""
    classifier_arch: str | None = None
    """timm architecture name of the classifier, e.g. ``efficientnet_b0``."""
    classifier_labels: str | None = None
    """Labels file: one species name per line, in class-index order."""
    classification_threshold: float = 0.2
    """Animal detections at or above this confidence are cropped and classified (a SpeciesNet folder
    classifies every detection at or above its own 0.1, as SpeciesNet does)."""
    classify_batch_size: int = 32
    """Crops per classifier batch."""
    country: str | None = None
    """SpeciesNet: where the photos were taken, ISO 3166-1 alpha-3 (``KEN``, ``USA``): its geofence then
    rolls up species not found there. None = no geofence."""
    admin1_region: str | None = None
    """SpeciesNet: the first-level region within ``country`` (a US state code such as ``CA``)."""
    classify_image_size: int | None = None
    """Classifier input size; None = the model's own pretrained configuration (224 for most)."""
    shard_size: int = 2000
    """Images per detection shard: one Batch job. ~2,000 amortizes model load and container pull."""
    classify_shard_crops: int = 20000
    """Crops per classification shard (whole detection shards are never split)."""
    detection_only: bool = False
    """Skip stage 2 (also implied when no classifier is given)."""
    incremental: bool = False
    """Skip images that an earlier run on the same input already processed (same URI and ETag)."""
    max_concurrency: int = 100
    """Shards processed at once (Distributed Map child executions, i.e. GPU jobs in flight)."""
    tolerated_failure_percentage: float = 5.0
    """Failed shards (in percent) a stage tolerates before the run fails; the rest are listed."""
    materialize_batch_threshold: int = 1_000_000
    """Runs with more images than this are merged by a Batch job instead of a Lambda (15 min cap)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Not settable: reserved for future keys read from older run.json files."""

    @property
    def classify(self) -> bool:
        """Whether this run has a stage 2."""
        return not self.detection_only and self.classifier is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``run.json``; :func:`parse_config` reads it back."""
        data = dataclasses.asdict(self)
        data.pop("extra")
        return data


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig) if f.name != "extra"}
_REQUIRED = ("input", "detector")


def _int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _float(key: str, value: Any, low: float, high: float, *, high_open: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bound = f"below {high}" if high_open else f"at most {high}"
        raise ConfigError(f"{key} must be a number from {low} and {bound}, got {value!r}")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _uri(key: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be an s3:// URI or a path, got {value!r}")
    if value.startswith("s3://") and len(value) <= len("s3://"):
        raise ConfigError(f"{key} names no bucket: {value!r}")
    if "://" in value and not value.startswith("s3://"):
        raise ConfigError(f"{key} must be an s3:// URI or a local path, got {value!r}")
    return value.strip()


def _class_map(value: Any) -> str | dict[str, str]:
    if isinstance(value, str):
        if value not in BUILTIN_CLASS_MAPS:
            raise ConfigError(
                f"detector_classes must be one of {', '.join(BUILTIN_CLASS_MAPS)} or a mapping, got {value!r}"
            )
        return value
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            f"detector_classes must be one of {', '.join(BUILTIN_CLASS_MAPS)} or a mapping, got {value!r}"
        )
    for name, category in value.items():
        if category not in (*CATEGORIES, "ignore"):
            raise ConfigError(f"detector_classes[{name!r}] must be animal, person, vehicle or ignore, got {category!r}")
    return {str(k): v for k, v in value.items()}


def parse_config(raw: Any, *, default_run_id: str | None = None, default_output: str | None = None) -> RunConfig:
    """Validate a run configuration and fill in its defaults.

    Args:
        raw: the configuration as decoded JSON (a dict).
        default_run_id: used when the config names no ``run_id`` (the execution name).
        default_output: used when the config names no ``output`` (the pipeline bucket).

    Returns:
        The checked configuration.

    Raises:
        ConfigError: one line naming the offending key.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"the run configuration must be a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    missing = [k for k in _REQUIRED if raw.get(k) in (None, "")]
    if missing:
        raise ConfigError(f"missing required setting {missing[0]!r}")

    values: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
    values["input"] = _uri("input", raw["input"])
    values["detector"] = _uri("detector", raw["detector"])
    for key in ("output", "classifier", "classifier_labels"):
        values[key] = _uri(key, raw.get(key), optional=True)
    if values.get("output") is None:
        values["output"] = default_output

    run_id = raw.get("run_id") or default_run_id
    if run_id is not None and (not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id)):
        raise ConfigError(f"run_id must be 1 to 80 letters, digits, '-' or '_', got {run_id!r}")
    values["run_id"] = run_id

    if "detector_classes" in values:
        values["detector_classes"] = _class_map(values["detector_classes"])
    if values.get("detector_format", "auto") not in DETECTOR_FORMATS:
        raise ConfigError(
            f"detector_format must be one of {', '.join(DETECTOR_FORMATS)}, got {values['detector_format']!r}"
        )
    ints = {
        "image_size": (32, 4096),
        "batch_size": (1, 1024),
        "classify_batch_size": (1, 4096),
        "shard_size": (1, 100_000),
        "classify_shard_crops": (1, 1_000_000),
        # A Distributed Map runs at most 10,000 child executions at once.
        "max_concurrency": (1, 10_000),
        "materialize_batch_threshold": (0, 10**10),
    }
    for key, (low, high) in ints.items():
        if key in values:
            values[key] = _int(key, values[key], low, high)
    if values.get("image_size", 640) % 32:
        raise ConfigError(f"image_size must be a multiple of 32 (the detector's stride), got {values['image_size']}")
    if values.get("classify_image_size") is not None:
        values["classify_image_size"] = _int("classify_image_size", values["classify_image_size"], 16, 1024)
    for key in ("detection_threshold", "typical_detection_threshold", "classification_threshold"):
        if key in values:
            values[key] = _float(key, values[key], 0.0, 1.0)
    if "tolerated_failure_percentage" in values:
        # 100 would accept a run in which every shard failed; anything below it must be said on purpose.
        values["tolerated_failure_percentage"] = _float(
            "tolerated_failure_percentage", values["tolerated_failure_percentage"], 0.0, 100.0, high_open=True
        )
    for key in ("detection_only", "incremental", "exact_decode"):
        if key in values:
            values[key] = _bool(key, values[key])
    if values.get("country") is not None and not re.fullmatch(r"[A-Z]{3}", str(values["country"])):
        raise ConfigError(f"country must be an ISO 3166-1 alpha-3 code such as KEN or USA, got {values['country']!r}")
    if values.get("admin1_region") is not None:
        if not re.fullmatch(r"[A-Z0-9]{2}", str(values["admin1_region"])):
            raise ConfigError(
                f"admin1_region must be a 2-character region code such as CA, got {values['admin1_region']!r}"
            )
        if values.get("country") is None:
            raise ConfigError("admin1_region needs country as well (SpeciesNet ignores a region without its country)")
    for key in ("run_id", "classifier_arch"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise ConfigError(f"{key} must be a string, got {values[key]!r}")

    if values.get("classifier") and not values.get("detection_only"):
        # Both or neither: a timm checkpoint needs both; a SpeciesNet folder neither (its info.json names
        # its labels), which the GPU task checks when it loads it.
        given = [key for key in ("classifier_arch", "classifier_labels") if values.get(key)]
        if len(given) == 1:
            other = "classifier_labels" if given[0] == "classifier_arch" else "classifier_arch"
            raise ConfigError(f"a timm classifier needs {other} as well (a SpeciesNet folder needs neither)")
    if not values.get("classifier"):
        values["detection_only"] = True
    return RunConfig(**values)


def pipeline_root_from_env() -> str | None:
    """The deployed pipeline bucket as an output root (``PIPELINE_BUCKET``, set by the template)."""
    import os

    bucket = os.environ.get("PIPELINE_BUCKET", "").strip()
    return f"s3://{bucket}/" if bucket else None
