"""``wildlife run`` with a SpeciesNet model folder as the classifier: no flag, SpeciesNet's own scores in the table.

The folder is the stand-in of ``tests/speciesnet_standin.py`` (the release's formats). The run's
species columns are compared crop by crop with the ``speciesnet`` package classifying the same
photos at the same boxes (as megadetector.json gives them), in a process of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from wildlife_common.megadetector import written_bbox
from wildlife_common.speciesnet import CLASSIFY_FROM

from tests.e2e.conftest import ROOT, SAMPLES
from tests.megadetector_validator import assert_megadetector_accepts
from tests.speciesnet_standin import build_folder
from wildlife.cli import main

pytestmark = pytest.mark.slow
REFERENCE = ROOT / "tests" / "reference" / "speciesnet_run.py"


def test_a_speciesnet_folder_classifies_every_detection_from_01_as_speciesnet_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = build_folder(tmp_path / "speciesnet")
    status = main(["run", str(SAMPLES), "--out", str(tmp_path / "out"), "--run-id", "sn", "--classifier", str(folder)])
    assert status == 0, capsys.readouterr().err
    final = tmp_path / "out" / "runs" / "sn" / "final"
    rows = pq.read_table(final / "detections.parquet").to_pylist()
    classified = [r for r in rows if r["species"] is not None]
    # SpeciesNet classifies every detection at or above 0.1, people and vehicles too.
    assert len(classified) == sum(1 for r in rows if r["conf"] is not None and r["conf"] >= CLASSIFY_FROM)
    assert {r["category"] for r in classified} == {"animal", "person", "vehicle"}
    for row in classified:
        assert row["species_label"].count(";") == 6 and row["species_label"].endswith(";" + row["species"])
        assert row["prediction_source"] == "classifier" and row["crop_uri"] is None

    # The package's own classifier on the same photos and boxes: the same top 5, scores within 1e-4.
    by_image: dict[str, list[dict]] = {}
    for row in sorted(classified, key=lambda r: (r["image"], r["detection"])):
        by_image.setdefault(row["image"], []).append(row)
    request = {
        "folder": str(folder),
        "images": [
            {"file": str(SAMPLES / image), "boxes": [written_bbox([r[f"bbox_{k}"] for k in "xywh"]) for r in rs]}
            for image, rs in by_image.items()
        ],
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    done = subprocess.run(
        [sys.executable, str(REFERENCE), str(tmp_path / "request.json"), str(tmp_path / "result.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads((tmp_path / "result.json").read_text())["results"]
    worst = 0.0
    for (image, rs), result in zip(by_image.items(), theirs, strict=True):
        for row, crop in zip(rs, result["classifications_list"], strict=True):
            assert [c.rsplit(";", 1)[-1] for c in crop["classes"]] == row["top5_species"], image
            assert crop["classes"][0] == row["species_label"]
            worst = max(worst, *(abs(a - b) for a, b in zip(crop["scores"], row["top5_conf"], strict=True)))
    print(f"{len(classified)} detections classified as SpeciesNet does; worst score difference {worst:.1e}")
    assert worst <= 1e-4

    # megadetector.json: categories by common name, described by the full label (run_md_and_speciesnet's form).
    md = json.loads((final / "megadetector.json").read_text())
    descriptions = md["classification_category_descriptions"]
    assert set(descriptions) == set(md["classification_categories"])
    assert all(descriptions[i].endswith(";" + name) for i, name in md["classification_categories"].items())
    assert_megadetector_accepts(final / "megadetector.json")
