"""Profiles: a run's settings in a YAML file, grouped by stage (``profiles/local.yaml``, ``profiles/cloud.yaml``).

A profile is read into run config keys (``wildlife_common.config.RunConfig``)::

    models:          detector, detector_classes, detector_format, classifier, classifier_arch,
                     classifier_labels
    detection:       image_size, batch_size, threshold, typical_threshold, exact_decode
    classification:  image_size, batch_size, threshold, shard_crops, country, admin1_region
    (top level)      shard_size, max_concurrency, tolerated_failure_percentage, detection_only,
                     incremental, materialize_batch_threshold

Relative model paths are relative to the profile file, so a profile works from any folder. An
unknown section or key is an error that names it: a typo must not silently fall back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from wildlife_common import storage
from wildlife_common.errors import ConfigError

SECTIONS: dict[str, dict[str, str]] = {
    "models": {
        "detector": "detector",
        "detector_classes": "detector_classes",
        "detector_format": "detector_format",
        "classifier": "classifier",
        "classifier_arch": "classifier_arch",
        "classifier_labels": "classifier_labels",
    },
    "detection": {
        "image_size": "image_size",
        "batch_size": "batch_size",
        "threshold": "detection_threshold",
        "typical_threshold": "typical_detection_threshold",
        "exact_decode": "exact_decode",
    },
    "classification": {
        "image_size": "classify_image_size",
        "batch_size": "classify_batch_size",
        "threshold": "classification_threshold",
        "shard_crops": "classify_shard_crops",
        "country": "country",
        "admin1_region": "admin1_region",
    },
}
TOP_LEVEL = (
    "shard_size",
    "max_concurrency",
    "tolerated_failure_percentage",
    "detection_only",
    "incremental",
    "materialize_batch_threshold",
)
_MODEL_PATHS = ("detector", "classifier", "classifier_labels")


def _known() -> list[str]:
    return sorted([*TOP_LEVEL, *(f"{section}.{key}" for section, keys in SECTIONS.items() for key in keys)])


def load_profile(path: Path) -> dict[str, Any]:
    """Read a profile into run config keys.

    Raises:
        ConfigError: the file is missing or not YAML, or has a key that is not a setting (named).
    """
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"profile {path}: cannot read it ({error.strerror or error})") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"profile {path}: not valid YAML ({str(error).splitlines()[0]})") from error
    if not isinstance(document, dict):
        raise ConfigError(f"profile {path}: must be a mapping of settings, got {type(document).__name__}")
    config: dict[str, Any] = {}
    for key, value in document.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"profile {path}: {key} must be a mapping of settings")
            for inner, item in value.items():
                if inner not in SECTIONS[key]:
                    raise ConfigError(f"profile {path}: unknown key '{key}.{inner}' (known: {', '.join(_known())})")
                config[SECTIONS[key][inner]] = item
        elif key in TOP_LEVEL:
            config[key] = value
        else:
            raise ConfigError(f"profile {path}: unknown key '{key}' (known: {', '.join(_known())})")
    for key in _MODEL_PATHS:
        value = config.get(key)
        if isinstance(value, str) and not storage.is_s3(value) and not Path(value).expanduser().is_absolute():
            config[key] = str((path.parent / value).resolve())
    return config
