"""The demo model pack: synthetic scenes, the committed demo models and the committed sample images.

The accuracy tests run the committed weights on held-out synthetic scenes (seeds that neither
training, the samples nor the build's own evaluation used) and check the targets the pack promises:
detector recall at IoU 0.5 >= 0.9 and classifier top-1 >= 0.9.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from demo import scenes
from demo.scenes import CATEGORIES, EVAL_SEEDS, SPECIES

DEMO = Path(scenes.__file__).resolve().parent
MODELS = DEMO / "models"
SAMPLES = DEMO / "samples"

TEST_SEEDS = EVAL_SEEDS + 200_000
"""Scenes for these tests: held out from training and samples, and apart from the build's evaluation."""


@pytest.fixture(scope="module", autouse=True)
def two_threads() -> None:
    """Keep torch to two CPU threads: the tests share the machine."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)


def test_scene_is_deterministic_per_seed() -> None:
    a = scenes.make_scene(123, 320, 240)
    b = scenes.make_scene(123, 320, 240)
    c = scenes.make_scene(124, 320, 240)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.objects == b.objects
    assert (a.night, a.timestamp) == (b.night, b.timestamp)
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))


@pytest.mark.slow
def test_ground_truth_boxes_lie_inside_the_image() -> None:
    seen: set[str] = set()
    for seed in range(40):  # 40 scenes: ~70 objects of every kind, day and night
        scene = scenes.make_scene(seed)
        width, height = scene.size
        assert (width, height) == scenes.TRAIN_SIZE
        assert scene.image.mode == "RGB"
        for o in scene.objects:
            x, y, w, h = o.bbox
            assert w > 0 and h > 0
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
            assert o.category in CATEGORIES
            assert (o.species in SPECIES) if o.category == "animal" else (o.species is None)
            seen.add(o.kind)
        for item in scene.ground_truth()["objects"]:
            x, y, w, h = item["bbox"]
            assert 0 <= x <= 1 and 0 <= y <= 1 and x + w <= 1.0001 and y + h <= 1.0001
    assert seen >= {"person", "vehicle"} and len(seen & set(SPECIES)) >= 4


def test_forced_contents_and_crops() -> None:
    scene = scenes.make_scene(7, night=True, kinds=["zebra", "person"])
    assert scene.night
    assert sorted(o.kind for o in scene.objects) == ["person", "zebra"]
    crops = scenes.animal_crops(scene)
    assert [species for _, species in crops] == ["zebra"]
    (zebra,) = [o for o in scene.objects if o.species == "zebra"]
    assert crops[0][0].width >= zebra.bbox[2] and crops[0][0].height >= zebra.bbox[3]
    assert scenes.make_scene(8, kinds=[]).objects == []
    with pytest.raises(ValueError, match="unknown kinds"):
        scenes.make_scene(1, kinds=["unicorn"])


def test_crop_box_grows_by_the_margin_and_clips() -> None:
    assert scenes.crop_box((100, 100, 50, 20), 1000, 1000) == (95, 98, 155, 122)
    assert scenes.crop_box((0, 0, 50, 20), 60, 21) == (0, 0, 55, 21)


def test_committed_models_load() -> None:
    pytest.importorskip("ultralytics")
    pytest.importorskip("timm")
    from ultralytics import YOLO

    from demo.evaluate import load_classifier

    detector = YOLO(str(MODELS / "detector.pt"), task="detect")
    assert detector.names == dict(enumerate(CATEGORIES))
    model, labels = load_classifier(MODELS / "classifier.pth", MODELS / "labels.txt")
    assert labels == list(SPECIES)
    assert model.num_classes == len(SPECIES)
    sidecar = json.loads((MODELS / "classifier.json").read_text())
    assert sidecar["arch"] == model.default_cfg["architecture"]
    sizes = {p.name: p.stat().st_size for p in MODELS.iterdir()}
    # Three small models (the YOLOv5-format twin, yolov5n6 in fp16, is the largest at 6.4 MB): the
    # repository stays quick to clone.
    assert sum(sizes.values()) < 12e6, sizes
    assert (MODELS / "README.md").exists()


@pytest.mark.slow
def test_detector_recall_on_held_out_scenes() -> None:
    pytest.importorskip("ultralytics")
    from demo.evaluate import evaluate_detector

    result = evaluate_detector(MODELS / "detector.pt", n_scenes=40, seed=TEST_SEEDS)
    assert result["objects"] >= 50  # 40 scenes hold ~70 objects
    assert result["recall"] >= 0.9, result


@pytest.mark.slow
def test_classifier_top1_on_held_out_crops() -> None:
    pytest.importorskip("timm")
    from demo.evaluate import evaluate_classifier

    result = evaluate_classifier(
        MODELS / "classifier.pth", MODELS / "labels.txt", n_crops=200, seed=TEST_SEEDS + 500_000
    )
    assert result["crops"] == 200
    assert result["top1"] >= 0.9, result


def _ground_truth() -> dict:
    return json.loads((SAMPLES / "ground_truth.json").read_text())


def test_samples_match_ground_truth() -> None:
    truth = _ground_truth()
    files = {p.name for p in SAMPLES.glob("*.jpg")}
    assert files == set(truth)
    assert 15 <= len(files) <= 30
    assert sum((SAMPLES / name).stat().st_size for name in files) < 3.2e6  # about 3 MB
    categories = {o["category"] for entry in truth.values() for o in entry["objects"]}
    assert categories == set(CATEGORIES)
    assert any(not entry["objects"] for entry in truth.values())  # some empty frames
    rotated = 0
    for name, entry in truth.items():
        with Image.open(SAMPLES / name) as image:
            rotated += image.getexif().get(0x0112, 1) != 1
            upright = ImageOps.exif_transpose(image)
            assert upright.size == (entry["width"], entry["height"]), name
        for o in entry["objects"]:
            assert o["category"] in CATEGORIES
            assert (o["species"] in SPECIES) if o["category"] == "animal" else (o["species"] is None)
            x, y, w, h = o["bbox"]
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 1.0001 and y + h <= 1.0001
    assert rotated == 1


def test_samples_are_what_the_scene_generator_draws() -> None:
    """The committed samples are up to date with demo/scenes.py (else: rerun ``make demo-models``)."""
    from demo.build import SAMPLE_PLAN, BuildConfig, _sample_name

    truth = _ground_truth()
    size = BuildConfig().sample_size
    for index in (0, 3, len(SAMPLE_PLAN) - 1):  # a day, a night and the EXIF-rotated sample
        night, kinds = SAMPLE_PLAN[index]
        scene = scenes.make_scene(scenes.SAMPLE_SEEDS + index, *size, night=night, kinds=kinds)
        name = _sample_name(index, scene.night, [o.kind for o in scene.objects])
        assert truth[name] == scene.ground_truth()
