"""Where a result came from: code version and model ids, written into run.json and every row."""

from __future__ import annotations

import hashlib
import os
import posixpath

from wildlife_common import __version__


def code_version() -> str:
    """The package version, plus the commit it was built or run from when that was recorded
    (WILDLIFE_GIT_SHA: 12 hex digits, ``.dirty`` for uncommitted changes), e.g. ``0.1.0+3f2a9c1b0d4e``."""
    commit = os.environ.get("WILDLIFE_GIT_SHA", "").strip()
    return f"{__version__}+{commit[:18]}" if commit else __version__


def model_id(uri: str, sha256: str) -> str:
    """A model's id in result rows: its file name and the first 12 hex digits of its sha256."""
    return f"{posixpath.basename(uri.rstrip('/'))}@sha256:{sha256[:12]}"


def input_id(input_uri: str) -> str:
    """A stable id for an input folder, naming its incremental index (same folder = same id)."""
    return hashlib.sha256(input_uri.encode()).hexdigest()[:16]
