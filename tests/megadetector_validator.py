"""MegaDetector's own tools on our outputs, for the end-to-end tests: its validator and its SpeciesNet converter."""

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


_CONVERT = (
    "import sys; from megadetector.utils.wi_taxonomy_utils import generate_md_results_from_predictions_json as g; "
    "g(sys.argv[1], sys.argv[2], base_folder=sys.argv[3])"
)


def converted_from_speciesnet(predictions: Path, base_folder: Path, out: Path) -> Path:
    """MegaDetector's speciesnet_to_md conversion of a speciesnet.json (in its own process), validated."""
    done = subprocess.run(
        [sys.executable, "-c", _CONVERT, str(predictions), str(out), f"{base_folder}/"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert_megadetector_accepts(out)
    return out
