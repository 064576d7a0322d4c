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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from wildlife_common.errors import ConfigError

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
"""Run ids become S3 key parts, execution names and Batch job names: letters, digits, - and _, at most
80 characters, so that ``<run id>-<stage>-<shard>`` stays inside a Batch job name's 128."""

CATEGORIES = ("animal", "person", "vehicle")
BUILTIN_CLASS_MAPS = ("megadetector", "coco")
DETECTOR_FORMATS = ("auto", "ultralytics", "yolov5")

T = TypeVar("T")


@dataclass(frozen=True)
class Setting:
    """What is known about one run setting besides its type and default: the one list that the run
    config's checks, profiles, ``wildlife run`` and ``wildlife start`` options are derived from."""

    help: str
    """What it means, in one or two sentences (``--help``, README's Configuration)."""
    profile: str | None = None
    """Where a profile holds it: ``section.key`` or a top-level key; None when profiles do not set it."""
    options: tuple[str, ...] = ()
    """The CLI commands that take it as an option (``run``, ``start``); any setting goes through ``--set``."""
    changes_results: bool = False
    """A resumed run must keep it, or its table would mix two models or two sets of images."""
    bounds: tuple[float, float] | None = None
    """Lowest and highest value of a number."""
    below_high: bool = False
    """The highest bound is excluded."""
    flag: str | None = None
    """The option's flag when it is not ``--<name>`` (a true-by-default switch is turned off by its flag)."""
    choices: tuple[str, ...] | None = None


def setting(default: T, help: str, **known: Any) -> T:
    """A RunConfig field with its ``Setting`` (the field's ``metadata["setting"]``)."""
    return cast(T, field(default=default, metadata={"setting": Setting(help, **known)}))


_RUN, _START, _BOTH = ("run",), ("start",), ("run", "start")


@dataclass(frozen=True)
class RunConfig:
    """One run's settings (README, Configuration). Each field's ``Setting`` says what it means."""

    input: str = setting(
        "",
        "Where the images are: s3://bucket/prefix/, a local folder, or an S3 Inventory report's manifest.json "
        "(s3://.../YYYY-MM-DDTHH-MMZ/manifest.json: its bucket's photos, read from the report, not listed; "
        "s3://.../*/manifest.json: the newest report).",
        changes_results=True,
    )
    detector: str = setting(
        "",
        "Detector weights (.pt): an ultralytics checkpoint (MegaDetector v1000 larch/sorrel, YOLOv8-11) or a YOLOv5 "
        "repository checkpoint (MegaDetector v5a/v5b, v1000 redwood/spruce); a local path or an s3:// URI.",
        profile="models.detector",
        options=_BOTH,
        changes_results=True,
    )
    run_id: str | None = setting(None, "Name of the run; defaults to the execution name. Same id = resume.")
    output: str | None = setting(
        None, "Where run folders go (s3:// root); defaults to the pipeline bucket.", options=_START
    )
    detector_classes: str | dict[str, str] = setting(
        "megadetector",
        "Map from detector classes to animal/person/vehicle: megadetector, coco, or a JSON object {class: category}.",
        profile="models.detector_classes",
        options=_RUN,
        changes_results=True,
    )
    detector_format: str = setting(
        "auto",
        "How to load the detector: auto (from what the file is), ultralytics, or yolov5 (YOLOv5 repository).",
        profile="models.detector_format",
        options=_RUN,
        changes_results=True,
        choices=DETECTOR_FORMATS,
    )
    image_size: int = setting(
        640,
        "Detector input size in pixels, a multiple of 32 (1280 for MegaDetector v5a/v1000 at full resolution).",
        profile="detection.image_size",
        options=_BOTH,
        changes_results=True,
        bounds=(32, 4096),
    )
    batch_size: int = setting(
        16,
        "Images per detector batch; halved automatically on CUDA out-of-memory.",
        profile="detection.batch_size",
        options=_RUN,
        bounds=(1, 1024),
    )
    detection_threshold: float = setting(
        0.005,
        "Detections below this confidence are not written (MegaDetector's convention).",
        profile="detection.threshold",
        changes_results=True,
        bounds=(0.0, 1.0),
    )
    exact_decode: bool = setting(
        True,
        "Decode every JPEG at full size as MegaDetector does, for its boxes exactly (the default), or at the "
        "reduced size the model needs (false, --fast-decode): less CPU, boxes that differ from MegaDetector's.",
        profile="detection.exact_decode",
        options=_RUN,
        changes_results=True,
        flag="--fast-decode",
    )
    typical_detection_threshold: float = setting(
        0.2,
        "Display threshold written for Timelapse and used in the summary's counts.",
        profile="detection.typical_threshold",
        bounds=(0.0, 1.0),
    )
    classifier: str | None = setting(
        None,
        "Classifier: a SpeciesNet model folder (with its info.json) or a timm checkpoint (with classifier_arch and "
        "classifier_labels); a local path or an s3:// URI. None = detection only.",
        profile="models.classifier",
        options=_BOTH,
        changes_results=True,
    )
    classifier_arch: str | None = setting(
        None,
        "timm architecture of the classifier, e.g. efficientnet_b0.",
        profile="models.classifier_arch",
        options=_BOTH,
        changes_results=True,
    )
    classifier_labels: str | None = setting(
        None,
        "Labels file of a timm classifier: one species name per line, in class-index order.",
        profile="models.classifier_labels",
        options=_BOTH,
        changes_results=True,
    )
    classification_threshold: float = setting(
        0.2,
        "Animal detections at or above this confidence are cropped and classified (a SpeciesNet folder classifies "
        "every detection at or above its own 0.1, as SpeciesNet does).",
        profile="classification.threshold",
        changes_results=True,
        bounds=(0.0, 1.0),
    )
    classify_batch_size: int = setting(
        32,
        "Crops per classifier batch.",
        profile="classification.batch_size",
        options=_RUN,
        bounds=(1, 4096),
    )
    country: str | None = setting(
        None,
        "SpeciesNet: where the photos were taken, ISO 3166-1 alpha-3 (KEN, USA); its geofence then rolls up "
        "species not found there. None = no geofence.",
        profile="classification.country",
        options=_RUN,
        changes_results=True,
    )
    admin1_region: str | None = setting(
        None,
        "SpeciesNet: the first-level region within country (a US state code such as CA).",
        profile="classification.admin1_region",
        options=_RUN,
        changes_results=True,
    )
    classify_image_size: int | None = setting(
        None,
        "Classifier input size; none = the model's own pretrained configuration (224 for most).",
        profile="classification.image_size",
        changes_results=True,
        bounds=(16, 1024),
    )
    shard_size: int = setting(
        2000,
        "Images per detection shard, i.e. per GPU job: about 2,000 amortizes model load and container start. "
        "wildlife run takes 200: a shard is the progress an interrupt keeps, and its models stay loaded.",
        profile="shard_size",
        options=_BOTH,
        changes_results=True,
        bounds=(1, 100_000),
    )
    classify_shard_crops: int = setting(
        20000,
        "Crops per classification shard (whole detection shards are never split).",
        profile="classification.shard_crops",
        bounds=(1, 1_000_000),
    )
    detection_only: bool = setting(
        False,
        "Skip species classification (also implied when no classifier is given).",
        profile="detection_only",
        options=_BOTH,
    )
    include_hidden: bool = setting(
        False,
        "Also read hidden and system folders of the input (.thumbnails, .Trash-1000, @eaDir, $RECYCLE.BIN, ...), "
        "which are skipped by default: they hold thumbnails and deleted files, not new photos.",
        options=_RUN,
        changes_results=True,
    )
    skip_if_running: bool = setting(
        False,
        "Do nothing when another run started with skip_if_running is still running (for schedules: a slow "
        "night's run is not joined by the next one over the same photos).",
        options=_START,
    )
    incremental: bool = setting(
        False,
        "Skip images that an earlier run on the same input already processed (same URI and ETag).",
        profile="incremental",
        options=_START,
    )
    max_concurrency: int | None = setting(
        None,
        "Shards processed at once (Distributed Map child executions, i.e. GPU jobs in flight); none = as many "
        "as the Spot compute environment runs (MaxvCpus / 4), so that a run does not spill onto on-demand GPUs.",
        profile="max_concurrency",
        options=_START,
        # A Distributed Map runs at most 10,000 child executions at once.
        bounds=(1, 10_000),
    )
    tolerated_failure_percentage: float = setting(
        5.0,
        "Failed shards (in percent) a stage tolerates before the run fails; the rest are listed.",
        profile="tolerated_failure_percentage",
        # 100 would accept a run in which every shard failed; anything below it must be said on purpose.
        bounds=(0.0, 100.0),
        below_high=True,
    )
    list_in_parallel_above: int = setting(
        200_000,
        "Inputs of more files than this are listed in parallel key ranges (the ListInput Map) instead of by "
        "PlanDetection alone, which lists about 200,000 keys in under a minute and 3-5 million in its 15.",
        profile="list_in_parallel_above",
        bounds=(1, 10**10),
    )
    materialize_batch_threshold: int = setting(
        1_000_000,
        "Runs with more images than this are merged by a Batch job instead of a Lambda (15-minute cap).",
        profile="materialize_batch_threshold",
        bounds=(0, 10**10),
    )

    @property
    def classify(self) -> bool:
        """Whether this run has a stage 2."""
        return not self.detection_only and self.classifier is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``run.json``; :func:`parse_config` reads it back."""
        return dataclasses.asdict(self)


SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in dataclasses.fields(RunConfig)}
"""Every run setting by name, in the order RunConfig declares them."""

RESULT_SETTINGS = tuple(name for name, known in SETTINGS.items() if known.changes_results)
"""Settings that change results: a resumed run must keep them."""


def changed_results(stored: Mapping[str, Any], config: RunConfig) -> list[str]:
    """The settings that change results on which ``config`` differs from a run's stored config
    (``run.json``'s, ``RunConfig.to_dict()``): a run id that exists must be resumed as it was."""
    return [key for key in RESULT_SETTINGS if key in stored and stored[key] != getattr(config, key)]


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
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
    for key, known in SETTINGS.items():
        value = values.get(key)
        if value is None:
            continue
        kind = _FIELDS[key].type.split(" | ")[0]  # "int", "float", "bool", "str" (annotations are text here)
        if known.choices and value not in known.choices:
            raise ConfigError(f"{key} must be one of {', '.join(known.choices)}, got {value!r}")
        if kind == "bool":
            values[key] = _bool(key, value)
        elif known.bounds is not None and kind == "int":
            values[key] = _int(key, value, int(known.bounds[0]), int(known.bounds[1]))
        elif known.bounds is not None:
            values[key] = _float(key, value, *known.bounds, high_open=known.below_high)
    if values.get("image_size", 640) % 32:
        raise ConfigError(f"image_size must be a multiple of 32 (the detector's stride), got {values['image_size']}")
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


# Without a stack to ask (a local run), shards in flight are bounded by the local engine's --jobs instead.
UNBOUNDED_CONCURRENCY = 100


def default_max_concurrency() -> int:
    """Shards in flight when a run does not say: the jobs the Spot compute environment runs at once.

    The template sets SPOT_MAX_VCPUS (its MaxvCpus) and JOB_VCPUS (what one job asks for); more shards
    in flight than that would queue for, or spill onto, on-demand GPUs at about three times the price.
    """
    import os

    try:
        return max(1, int(os.environ["SPOT_MAX_VCPUS"]) // int(os.environ["JOB_VCPUS"]))
    except (KeyError, ValueError, ZeroDivisionError):
        return UNBOUNDED_CONCURRENCY


def pipeline_root_from_env() -> str | None:
    """The deployed pipeline bucket as an output root (``PIPELINE_BUCKET``, set by the template)."""
    import os

    bucket = os.environ.get("PIPELINE_BUCKET", "").strip()
    return f"s3://{bucket}/" if bucket else None
