"""How the CLI writes for people: one format for durations (live view, watch, report) and help texts."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def help_text(doc: str | None) -> str | None:
    """A module docstring's first paragraph as a command's ``--help`` description: one line of plain
    text, without the reStructuredText markup (````code````) that reads well only in the source."""
    if not doc:
        return None
    return " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "")
