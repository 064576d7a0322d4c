"""``wildlife run`` with a SpeciesNet model folder as the classifier: no flag, SpeciesNet's own answers in the table.

The folder is the stand-in of ``demo/speciesnet_folder.py`` (the release's formats), the place the
USA in New York, where its geofence rules out roe deer, zebras and leopards. The run's columns are
compared crop by crop with the ``speciesnet`` package, in processes of its own: its classifier on
the same photos at the same boxes (as megadetector.json gives them) for the top 5, and its ensemble
rules on those top 5 and the same detections for the final species.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from wildlife_common.megadetector import written_bbox
from wildlife_common.speciesnet import CLASSIFY_FROM

from demo.speciesnet_folder import build_folder
from tests.e2e.conftest import ROOT, SAMPLES
from tests.megadetector_validator import assert_megadetector_accepts, converted_from_speciesnet
from tests.speciesnet_reference import classify, decide
from wildlife.cli import main

# The whole pipeline in the local engine: the longest such test took 57 s on 2 shared cores
# (test_resume.py); 600 s leaves room for a slower machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
DEMO_DETECTOR = ["--detector", str(ROOT / "demo" / "models" / "detector.pt"), "--image-size", "320"]
"""The run's own detector (the stand-in folder's info.json names an md_v5a.0.0.pt it does not hold)."""
REFERENCE = ROOT / "tests" / "reference" / "speciesnet_run.py"


def test_a_speciesnet_folder_classifies_every_detection_from_01_as_speciesnet_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = build_folder(tmp_path / "speciesnet")
    argv = ["run", str(SAMPLES), "--out", str(tmp_path / "out"), "--run-id", "sn", "--classifier", str(folder)]
    status = main([*argv, *DEMO_DETECTOR, "--country", "USA", "--admin1-region", "NY"])
    assert status == 0, capsys.readouterr().err
    final = tmp_path / "out" / "runs" / "sn" / "final"
    rows = pq.read_table(final / "detections.parquet").to_pylist()
    classified = [r for r in rows if r["species"] is not None]
    # SpeciesNet classifies every detection at or above 0.1, people and vehicles too.
    assert len(classified) == sum(1 for r in rows if r["conf"] is not None and r["conf"] >= CLASSIFY_FROM)
    assert {r["category"] for r in classified} == {"animal", "person", "vehicle"}
    for row in classified:
        assert row["species_label"].count(";") == 6 and row["species_label"].endswith(";" + row["species"])
        assert row["prediction_source"] and row["crop_uri"] is None

    # The package's own classifier on the same photos and boxes: the same top 5, scores within 1e-4.
    by_image: dict[str, list[dict]] = {}
    for row in sorted(classified, key=lambda r: (r["image"], r["detection"])):
        by_image.setdefault(row["image"], []).append(row)
    images = [
        {"file": str(SAMPLES / image), "boxes": [written_bbox([r[f"bbox_{k}"] for k in "xywh"]) for r in rs]}
        for image, rs in by_image.items()
    ]
    theirs = classify(folder, images, tmp_path)
    worst = 0.0
    for (image, rs), result in zip(by_image.items(), theirs, strict=True):
        for row, crop in zip(rs, result["classifications_list"], strict=True):
            assert crop["classes"] == row["top5_labels"], image
            assert [c.rsplit(";", 1)[-1] for c in crop["classes"]] == row["top5_species"], image
            worst = max(worst, *(abs(a - b) for a, b in zip(crop["scores"], row["top5_conf"], strict=True)))
    print(f"{len(classified)} detections classified as SpeciesNet does; worst score difference {worst:.1e}")
    assert worst <= 1e-4

    # The package's ensemble on our top 5 and the same detections: the same final species, score and source.
    labels = {"animal": "animal", "person": "human", "vehicle": "vehicle"}
    cases = [
        {"classes": r["top5_labels"], "scores": r["top5_conf"], "label": labels[r["category"]], "conf": r["conf"]}
        for rs in by_image.values()
        for r in rs
    ]
    groups = [{"country": "USA", "admin1_region": "NY", "cases": cases}]
    (answers,) = decide(folder, groups, tmp_path)
    disagreements = [
        (r["image"], r["detection"])
        for r, their in zip((r for rs in by_image.values() for r in rs), answers, strict=True)
        if (r["species_label"], r["prediction_source"]) != (their["class"], their["source"])
        or abs(r["species_conf"] - their["score"]) > 1e-6  # the table stores scores as float32
    ]
    assert not disagreements, disagreements
    assert len({r["prediction_source"] for r in classified}) >= 2  # not one rule for everything

    # megadetector.json: categories by common name, described by the full label (run_md_and_speciesnet's form).
    md = json.loads((final / "megadetector.json").read_text())
    descriptions = md["classification_category_descriptions"]
    assert set(descriptions) == set(md["classification_categories"])
    assert all(descriptions[i].endswith(";" + name) for i, name in md["classification_categories"].items())
    assert_megadetector_accepts(final / "megadetector.json")

    # speciesnet.json: SpeciesNet 5's format, one entry per photo, read by MegaDetector's converter.
    predictions = json.loads((final / "speciesnet.json").read_text())
    assert predictions["info"]["format_version"] == "20261015" and len(predictions["predictions"]) == 21
    entry = next(p for p in predictions["predictions"] if p["filepath"].endswith("01_day_deer.jpg"))
    assert entry["country"] == "USA" and entry["admin1_region"] == "NY" and entry["model_version"] == "standin-5.0"
    written = [d for p in predictions["predictions"] for d in p["detections"] if "processed_classification" in d]
    assert len(written) == len(classified)
    assert {d["processed_classification"]["source"] for d in written} == {r["prediction_source"] for r in classified}
    converted = converted_from_speciesnet(final / "speciesnet.json", SAMPLES, tmp_path / "from_speciesnet.json")
    assert len(json.loads(converted.read_text())["images"]) == 21


def test_a_run_that_names_only_the_folder_runs_its_own_detector(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The folder's info.json names MegaDetector v5a; here a file in that format (the YOLOv5 demo twin)."""
    folder = build_folder(tmp_path / "speciesnet", detector="md_v5a.0.0.pt")
    (folder / "md_v5a.0.0.pt").write_bytes((ROOT / "demo" / "models" / "detector-yolov5.pt").read_bytes())
    argv = ["run", str(SAMPLES), "--out", str(tmp_path / "out"), "--run-id", "only", "--classifier", str(folder)]
    assert main([*argv, "--image-size", "320"]) == 0, capsys.readouterr().err
    marker = json.loads((tmp_path / "out" / "runs" / "only" / "stage1" / "results" / "00000.done.json").read_text())
    assert marker["detector_format"] == "yolov5" and marker["detector"].startswith("md_v5a.0.0.pt")
    assert (tmp_path / "out" / "runs" / "only" / "final" / "speciesnet.json").is_file()


def test_a_full_image_folder_classifies_each_photo_once_as_speciesnet_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A full_image model: one classification per photo (less its top and bottom strips), ensembled with the
    photo's most confident detection, on every row of the photo; speciesnet.json's pseudo-detection first."""
    folder = build_folder(tmp_path / "speciesnet-full", kind="full_image")
    argv = ["run", str(SAMPLES), "--out", str(tmp_path / "out"), "--run-id", "full", "--classifier", str(folder)]
    assert main([*argv, *DEMO_DETECTOR, "--country", "KEN"]) == 0, capsys.readouterr().err
    final = tmp_path / "out" / "runs" / "full" / "final"
    rows = pq.read_table(final / "detections.parquet").to_pylist()
    by_image: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["image"], r["detection"] if r["detection"] is not None else -1)):
        by_image.setdefault(row["image"], []).append(row)
    assert len(by_image) == 21 and all(rs[0]["species_label"] for rs in by_image.values())
    for rs in by_image.values():  # one answer per photo, on all its rows
        assert len({(r["species_label"], r["species_conf"], r["prediction_source"]) for r in rs}) == 1

    theirs = classify(folder, [{"file": str(SAMPLES / image), "boxes": []} for image in by_image], tmp_path)
    cases = []
    for (image, rs), result in zip(by_image.items(), theirs, strict=True):
        (crop,) = result["classifications_list"]
        assert crop["classes"] == rs[0]["top5_labels"], image
        assert max(abs(a - b) for a, b in zip(crop["scores"], rs[0]["top5_conf"], strict=True)) <= 1e-4
        top = rs[0] if rs[0]["detection"] is not None else None
        label = {"animal": "animal", "person": "human", "vehicle": "vehicle"}[top["category"]] if top else "animal"
        cases.append(
            {"classes": crop["classes"], "scores": crop["scores"], "label": label, "conf": top["conf"] if top else 0.0}
        )
    (answers,) = decide(folder, [{"country": "KEN", "admin1_region": None, "cases": cases}], tmp_path)
    for (image, rs), their in zip(by_image.items(), answers, strict=True):
        assert (rs[0]["species_label"], rs[0]["prediction_source"]) == (their["class"], their["source"]), image

    predictions = json.loads((final / "speciesnet.json").read_text())["predictions"]
    for entry in predictions:
        first = entry["detections"][0]
        assert first["category"] == "0" and first["label"] == "whole_image_classification"
        assert all("processed_classification" not in d for d in entry["detections"][1:])
    converted = converted_from_speciesnet(final / "speciesnet.json", SAMPLES, tmp_path / "from_speciesnet.json")
    assert len(json.loads(converted.read_text())["images"]) == 21
    assert_megadetector_accepts(final / "megadetector.json")
