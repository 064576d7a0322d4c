"""Where a result came from: code version and model ids, written into run.json and every row."""

from __future__ import annotations

import hashlib
import os
import posixpath

from wildlife_common import __version__


def code_version() -> str:
    """The package version, plus the git commit when the build recorded one (WILDLIFE_GIT_SHA)."""
    sha = os.environ.get("WILDLIFE_GIT_SHA", "").strip()
    return f"{__version__}+{sha[:12]}" if sha else __version__


def model_id(uri: str, sha256: str) -> str:
    """A model's id in result rows: its file name and the first 12 hex digits of its sha256."""
    return f"{posixpath.basename(uri.rstrip('/'))}@sha256:{sha256[:12]}"


def input_id(input_uri: str) -> str:
    """A stable id for an input folder, naming its incremental index (same folder = same id)."""
    return hashlib.sha256(input_uri.encode()).hexdigest()[:16]
