"""The ``speciesnet`` package's own classifier and ensemble rules, each run in a process of its own (for the tests).

Importing speciesnet turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole process, which our
decoder must never run under; so the package runs in scripts under ``tests/reference/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "reference"


def _run(script: str, request: dict, tmp: Path) -> dict:
    (tmp / "request.json").write_text(json.dumps(request))
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script), str(tmp / "request.json"), str(tmp / "result.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp / "result.json").read_text())


def classify(folder: Path, images: list[dict], tmp: Path) -> list[dict]:
    """SpeciesNetClassifier's results for images ({"file", "boxes"}): per image its ``classifications_list``."""
    return _run("speciesnet_run.py", {"folder": str(folder), "images": images}, tmp)["results"]


def decide(folder: Path, groups: list[dict], tmp: Path) -> list[list[dict]]:
    """The package's answers for groups of cases ({"country", "admin1_region", "cases"}), in its own process."""
    request = {"taxonomy": str(folder / "taxonomy.txt"), "geofence": str(folder / "geofence.json"), "groups": groups}
    return _run("speciesnet_ensemble.py", request, tmp)["results"]
