"""How a patch replaces one moto attribute and puts it back, and how each patch checks moto first.

Every patch module of this package has ``patches(...) -> list[Patch]`` (what ``LocalAws`` applies on
entry and undoes on exit) and ``check() -> list[str]`` (what it needs from moto that an upgrade may
have moved; ``guard.check_moto_internals`` runs them all). The helpers below keep those checks short.
"""

from __future__ import annotations

import inspect
import re
from typing import Any


class MotoInternalsChanged(RuntimeError):
    """The installed moto no longer has an attribute, or a signature, that a patch replaces or uses."""


class Patch:
    """One class attribute replaced, and put back exactly as it was (inherited or own)."""

    def __init__(self, owner: type, name: str, replacement: Any) -> None:
        self.owner, self.name, self.replacement = owner, name, replacement
        self.had_own = name in owner.__dict__
        self.original = owner.__dict__.get(name)

    def apply(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def undo(self) -> None:
        """Put the original back, unless something else replaced our replacement meanwhile."""
        if getattr(self.owner, self.name, None) is not self.replacement:
            return
        if self.had_own:
            setattr(self.owner, self.name, self.original)
        else:
            delattr(self.owner, self.name)


def where(owner: type, name: str = "") -> str:
    """``module.Class`` or ``module.Class.name``, for a problem's message."""
    return f"{owner.__module__}.{owner.__name__}" + (f".{name}" if name else "")


def signature_problems(owner: type, name: str, expected: list[str]) -> list[str]:
    """A problem when ``owner.name`` is missing or its parameters are no longer ``expected``."""
    function = owner.__dict__.get(name) or getattr(owner, name, None)
    if function is None:
        return [f"{where(owner, name)} is missing"]
    found = list(inspect.signature(function).parameters)
    if found != expected:
        return [f"{where(owner, name)}{tuple(found)} was {tuple(expected)}"]
    return []


def attribute_problems(owner: type, attributes: list[str]) -> list[str]:
    """A problem for each instance attribute that ``owner``'s source no longer assigns."""
    source = inspect.getsource(owner)
    return [
        f"{where(owner)} no longer sets self.{attribute}"
        for attribute in attributes
        if not re.search(rf"self\.{re.escape(attribute)}\b\s*(:[^=\n]+)?=", source)
    ]
