"""Command-line options for run settings, made from the one list of settings (``RunConfig``).

``wildlife run`` and ``wildlife start`` take some settings as options; which ones, their help and
their type come from each setting's ``Setting`` in ``wildlife_common.config``, so an option cannot
drift from the setting it sets. Options are grouped as profiles group the settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from wildlife_common.config import SETTINGS, RunConfig, Setting

from wildlife.errors import UsageError

_TYPES = {f.name: str(f.type).split(" | ")[0] for f in dataclasses.fields(RunConfig)}


def _flag(name: str, known: Setting) -> str:
    return known.flag or "--" + name.replace("_", "-")


def add_setting_options(parser: argparse.ArgumentParser, command: str, *, models_title: str = "models") -> None:
    """Add an option for every setting that ``command`` takes, in groups named as profile sections."""
    groups: dict[str, Any] = {}
    for name, known in SETTINGS.items():
        if command not in known.options:
            continue
        section = known.profile.split(".")[0] if known.profile and "." in known.profile else "settings"
        title = models_title if section == "models" else section
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        group = groups[title]
        kind = _TYPES[name]
        help_text = known.help.replace("%", "%%")
        if kind == "bool":
            default = getattr(RunConfig(), name)
            # A switch sets the opposite of the default; None (not given) leaves the profile's value.
            action = "store_false" if default else "store_true"
            group.add_argument(_flag(name, known), dest=name, action=action, default=None, help=help_text)
        else:
            group.add_argument(
                _flag(name, known),
                dest=name,
                type=int if kind == "int" else float if kind == "float" else str,
                choices=known.choices,
                default=None,
                help=help_text,
            )


def setting_values(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The run config keys the options of ``command`` set (those given on the command line)."""
    values: dict[str, Any] = {}
    for name, known in SETTINGS.items():
        if command not in known.options or getattr(args, name, None) is None:
            continue
        value = getattr(args, name)
        if name == "detector_classes" and isinstance(value, str) and value.startswith("{"):
            try:
                value = json.loads(value)
            except ValueError as error:
                raise UsageError(f"{_flag(name, known)} is not valid JSON: {error}") from error
        values[name] = value
    return values
