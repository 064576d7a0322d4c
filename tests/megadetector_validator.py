"""MegaDetector's own validator on a megadetector.json, for the end-to-end tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_VALIDATE = (
    "import sys; from megadetector.postprocessing.validate_batch_results import validate_batch_results as v; "
    "r = v(sys.argv[1])['validation_results']; print(r['errors'], r['warnings']); sys.exit(bool(r['errors']))"
)


def assert_megadetector_accepts(path: Path) -> None:
    """``validate_batch_results`` finds no error and no warning; run in a process of its own, because
    importing megadetector turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole process."""
    done = subprocess.run([sys.executable, "-c", _VALIDATE, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "[] []", done.stdout + done.stderr[-2000:]
