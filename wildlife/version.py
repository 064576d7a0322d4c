"""Which code a result came from: the commit of the checkout the CLI runs from, or builds an image from.

``WILDLIFE_GIT_SHA`` carries it to where results are written: ``wildlife deploy-image`` passes it to
the image build (``gpu_task/Dockerfile``), ``wildlife run`` sets it for the local engine, and the
layer's ``provenance.code_version`` writes it into run.json, summary.json and MegaDetector's JSON.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ENV = "WILDLIFE_GIT_SHA"


def checkout_commit(root: Path) -> str | None:
    """``<first 12 hex digits of HEAD>``, with ``.dirty`` when tracked files have changes; None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head[:12] + (".dirty" if changes else "") if head else None


def describe() -> str:
    """What ``wildlife --version`` prints: the package version and, in a checkout, its commit."""
    from wildlife_common import __version__

    from wildlife.paths import checkout_root

    root = checkout_root()
    commit = checkout_commit(root) if root is not None else None
    return f"wildlife {__version__}" + (f"+{commit}" if commit else "")
