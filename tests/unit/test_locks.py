"""The lock files agree with the declarations they were made from (`make lock` after editing one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]

# Declarations → the lock `make lock` writes from them, and whether it was made with --no-deps.
LOCKS = [
    ("requirements/all.txt", "requirements/lock/dev.txt", False),
    ("requirements/dev-nodeps.txt", "requirements/lock/dev-nodeps.txt", True),
    ("gpu_task/requirements.txt", "requirements/lock/gpu.txt", False),
    ("gpu_task/requirements-nodeps.txt", "requirements/lock/gpu-nodeps.txt", True),
    ("layers/common/requirements.in", "layers/common/requirements.txt", False),
    ("requirements/tools.txt", "requirements/lock/tools.txt", True),
    ("requirements/pip.txt", "requirements/lock/pip.txt", True),
    ("requirements/checkov.txt", "requirements/lock/checkov.txt", False),
]


def declared(path: Path) -> list[Requirement]:
    requirements = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            requirements += declared((path.parent / line[3:]).resolve())
        elif line:
            requirements.append(Requirement(line))
    return requirements


def locked(path: Path) -> dict[str, list[tuple[Requirement, list[str]]]]:
    """Name → its pins (one per marker, in a universal lock), each with its hashes."""
    pins: dict[str, list[tuple[Requirement, list[str]]]] = {}
    hashes: list[str] = []
    for line in path.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            hashes = []
            requirement = Requirement(line.rstrip(" \\"))
            pins.setdefault(canonicalize_name(requirement.name), []).append((requirement, hashes))
        elif match := re.match(r"\s+--hash=(sha256:[0-9a-f]{64})", line):
            hashes.append(match.group(1))
    return pins


@pytest.mark.parametrize(("declarations", "lock", "no_deps"), LOCKS)
def test_every_declared_package_is_locked_at_an_allowed_version_with_hashes(
    declarations: str, lock: str, no_deps: bool
) -> None:
    pins = locked(ROOT / lock)
    wanted = declared(ROOT / declarations)
    for requirement in wanted:
        versions = [pin for pin, _ in pins.get(canonicalize_name(requirement.name), [])]
        assert versions, f"{requirement.name} is declared in {declarations} but not in {lock}: make lock"
        allowed = [pin for pin in versions if requirement.specifier.contains(next(iter(pin.specifier)).version)]
        assert allowed, f"{lock} has {versions}, outside {requirement} ({declarations}): make lock"
    for name, entries in pins.items():
        for pin, hashes in entries:
            assert len(pin.specifier) == 1 and next(iter(pin.specifier)).operator == "==", pin
            assert hashes, f"{name} in {lock} has no hash"
    if no_deps:
        assert set(pins) == {canonicalize_name(r.name) for r in wanted}, f"{lock} holds more than it declares"
