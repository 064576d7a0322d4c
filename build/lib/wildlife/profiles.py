"""Profiles: a run's settings in a YAML file, grouped by stage (``profiles/local.yaml``, ``profiles/cloud.yaml``).

A profile is read into run config keys. Where each setting sits in a profile (a section ``models``,
``detection`` or ``classification``, or the top level) is the setting's ``profile`` in
``wildlife_common.config.RunConfig``; e.g. ``detection: {threshold: 0.1}`` is ``detection_threshold``.

Relative model paths are relative to the profile file, so a profile works from any folder. An
unknown section or key is an error that names it: a typo must not silently fall back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from wildlife_common import storage
from wildlife_common.config import SETTINGS
from wildlife_common.errors import ConfigError

# Profile key -> run config key, from each setting's ``profile`` (``section.key`` or a top-level key).
SECTIONS: dict[str, dict[str, str]] = {}
TOP_LEVEL: list[str] = []
for _name, _setting in SETTINGS.items():
    if _setting.profile and "." in _setting.profile:
        _section, _key = _setting.profile.split(".")
        SECTIONS.setdefault(_section, {})[_key] = _name
    elif _setting.profile:
        TOP_LEVEL.append(_name)
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
