"""Stage 1 end to end for one shard: the committed demo detector on the bundled sample images.

These run the real gpu_task code (our input path, ultralytics' predictor, crops, commit) on a
local run folder planned by the real planner, and check results against ultralytics' own
``predict`` and against the samples' ground truth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from wildlife_common import storage
from wildlife_common.layout import RunLayout
from wildlife_common.planning import plan_detection
from wildlife_gpu import cli, detect
from wildlife_gpu.crops import CROP_MARGIN, MIN_CROP_SIDE
from wildlife_gpu.detector import Detector

from demo.evaluate import iou

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "demo" / "models"
SAMPLES = ROOT / "demo" / "samples"
# The demo detector was trained at 320 px (demo/models/README.md).
IMAGE_SIZE = 320
# ultralytics' own default display threshold: boxes below it are too uncertain to compare one to one.
COMPARE_CONF = 0.25

pytestmark = pytest.mark.usefixtures("two_torch_threads")


def plan(tmp: Path, images: Path, **config) -> tuple[str, RunLayout]:
    settings = {
        "input": str(images),
        "detector": str(MODELS / "detector.pt"),
        "image_size": IMAGE_SIZE,
        "classifier": str(MODELS / "classifier.pth"),
        "classifier_arch": json.loads((MODELS / "classifier.json").read_text())["arch"],
        "classifier_labels": str(MODELS / "labels.txt"),
        **config,
    }
    run = plan_detection(settings, "test-run", str(tmp / "pipeline"))
    return run["run_uri"], RunLayout(run["run_uri"])


def rows_by_image(table) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in table.to_pylist():
        out.setdefault(row["image"], []).append(row)
    return out


@pytest.fixture(scope="module")
def samples_run(tmp_path_factory) -> tuple[str, RunLayout, dict]:
    """All bundled samples in one shard, detected once for the tests of this module."""
    tmp = tmp_path_factory.mktemp("samples")
    run_uri, layout = plan(tmp, SAMPLES)
    marker = detect.run_detect(run_uri, "00000")
    return run_uri, layout, marker


@pytest.mark.slow
def test_every_sample_image_gets_rows_and_the_shard_commits(samples_run) -> None:
    _, layout, marker = samples_run
    table = pq.read_table(layout.results("stage1", "00000"))
    by_image = rows_by_image(table)
    assert sorted(by_image) == sorted(p.name for p in SAMPLES.glob("*.jpg"))
    assert marker["images"] == len(by_image) and marker["failed_images"] == 0
    truth = json.loads((SAMPLES / "ground_truth.json").read_text())
    for name, rows in by_image.items():
        assert rows[0]["width"] == truth[name]["width"] and rows[0]["height"] == truth[name]["height"]
        assert rows[0]["datetime"] is not None  # the samples carry an EXIF capture time


def test_detections_agree_with_the_ground_truth(samples_run) -> None:
    _, layout, _ = samples_run
    by_image = rows_by_image(pq.read_table(layout.results("stage1", "00000")))
    truth = json.loads((SAMPLES / "ground_truth.json").read_text())
    found = total = 0
    for name, scene in truth.items():
        confident = [r for r in by_image[name] if r["conf"] is not None and r["conf"] >= 0.2]
        for obj in scene["objects"]:
            total += 1
            found += any(
                r["category"] == obj["category"]
                and iou([r["bbox_x"], r["bbox_y"], r["bbox_w"], r["bbox_h"]], obj["bbox"]) >= 0.5
                for r in confident
            )
    # The pack promises recall >= 0.9 on held-out scenes; the samples are such scenes.
    assert found / total >= 0.9, f"found {found} of {total} objects"
    empty = [name for name, scene in truth.items() if not scene["objects"]]
    for name in empty:
        assert all(r["conf"] is None or r["conf"] < 0.5 for r in by_image[name]), name


def _ultralytics_boxes(model, path: Path) -> tuple[list[list[float]], list[float], list[str]]:
    """ultralytics' predict on one file at MegaDetector's NMS IoU: [x, y, w, h] normalized, confidences, categories."""
    from wildlife_gpu.detector import NMS_IOU

    result = model.predict(str(path), imgsz=IMAGE_SIZE, conf=COMPARE_CONF, iou=NMS_IOU, device="cpu", verbose=False)[0]
    height, width = result.orig_shape
    boxes = [
        [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]
        for x1, y1, x2, y2 in result.boxes.xyxy.tolist()
    ]
    names = ["animal", "person", "vehicle"]
    return boxes, result.boxes.conf.tolist(), [names[int(c)] for c in result.boxes.cls.tolist()]


@pytest.mark.slow
def test_on_the_same_pixels_our_detector_gives_ultralytics_boxes() -> None:
    """Fed the pixels ultralytics' loader makes (OpenCV full decode), our Detector returns its boxes,
    rounded to whole pixels as MegaDetector rounds them (so within half a pixel)."""
    import cv2
    from ultralytics import YOLO

    model = YOLO(str(MODELS / "detector.pt"))
    ours = Detector(str(MODELS / "detector.pt"), image_size=IMAGE_SIZE, conf=COMPARE_CONF, class_map="megadetector")
    paths = sorted(SAMPLES.glob("*.jpg"))[:8]
    compared = 0
    for path in paths:
        pixels = cv2.imread(str(path))[:, :, ::-1]  # what ultralytics reads, EXIF orientation applied
        height, width = pixels.shape[:2]
        place = ours.letterbox(height, width)
        boxes = ours.detect(place.apply(pixels)[None], [place])[0]
        theirs, confs, categories = _ultralytics_boxes(model, path)
        assert len(boxes) == len(theirs), path.name
        for box, conf, category, b in zip(theirs, confs, categories, boxes, strict=True):
            assert b.category == category and abs(b.conf - conf) < 2e-3, path.name
            assert np.allclose(b.bbox(width, height), box, atol=1 / width), path.name
            compared += 1
    assert compared >= 8


def test_our_stage_one_finds_what_ultralytics_predict_finds(samples_run) -> None:
    """Same weights, same files, each with its own loader: the confident boxes agree.

    Both decode at full size (our default, ``exact_decode``) and resize with INTER_LINEAR; the JPEG
    decoders (simplejpeg here, OpenCV there) may differ in the last bit of a pixel, and our boxes are
    rounded to whole pixels: of the boxes either side finds at conf >= 0.5, all are found by the
    other at >= 0.25 with IoU >= 0.95.
    """
    from ultralytics import YOLO

    _, layout, _ = samples_run
    ours = rows_by_image(pq.read_table(layout.results("stage1", "00000")))
    model = YOLO(str(MODELS / "detector.pt"))
    agreed = total = 0
    for path in sorted(SAMPLES.glob("*.jpg")):
        theirs, confs, categories = _ultralytics_boxes(model, path)
        mine = [
            ([r["bbox_x"], r["bbox_y"], r["bbox_w"], r["bbox_h"]], r["conf"], r["category"])
            for r in ours[path.name]
            if r["conf"] is not None and r["conf"] >= COMPARE_CONF
        ]
        theirs_all = list(zip(theirs, confs, categories, strict=True))
        for one, other in ((theirs_all, mine), (mine, theirs_all)):
            for box, conf, category in one:
                if conf < 0.5:
                    continue
                total += 1
                agreed += any(c == category and iou(b, box) >= 0.95 for b, _, c in other)
    assert total >= 40  # ~29 objects, counted from both sides
    assert agreed == total, f"{agreed} of {total} confident boxes agree"


def test_crops_cut_the_boxes_of_confident_animals(samples_run) -> None:
    _, layout, marker = samples_run
    table = pq.read_table(layout.results("stage1", "00000"))
    rows = [r for r in table.to_pylist() if r["crop_uri"]]
    assert len(rows) == marker["crops"] > 0
    for row in rows:
        assert row["category"] == "animal" and row["conf"] >= 0.2  # the default classification threshold
        with Image.open(row["crop_uri"]) as crop:
            width, height = crop.size
        # The crop is the box plus CROP_MARGIN per side (clipped at the edges), cut from the reduced
        # decode when that leaves it MIN_CROP_SIDE pixels, else from a larger decode.
        x1 = max(0.0, row["bbox_x"] - CROP_MARGIN * row["bbox_w"])
        x2 = min(1.0, row["bbox_x"] + (1 + CROP_MARGIN) * row["bbox_w"])
        y1 = max(0.0, row["bbox_y"] - CROP_MARGIN * row["bbox_h"])
        y2 = min(1.0, row["bbox_y"] + (1 + CROP_MARGIN) * row["bbox_h"])
        region_w, region_h = (x2 - x1) * row["width"], (y2 - y1) * row["height"]
        assert abs(width / height - region_w / region_h) <= 0.05 * region_w / region_h
        assert max(width, height) >= min(MIN_CROP_SIDE, max(region_w, region_h)) - 2
        assert max(width, height) <= max(region_w, region_h) + 2


def test_a_committed_shard_is_not_run_again(samples_run) -> None:
    run_uri, _, marker = samples_run
    assert detect.run_detect(run_uri, "00000") == marker


POISON = {
    "empty.jpg": b"",
    "random.jpg": bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
    "text.jpg": b"this is not a picture\n",
}


def test_poison_pills_are_failure_rows_and_the_rest_is_processed(tmp_path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    good = sorted(SAMPLES.glob("*.jpg"))[:3]
    for path in good:
        shutil.copy(path, images / path.name)
    for name, data in POISON.items():
        (images / name).write_bytes(data)
    (images / "truncated.jpg").write_bytes(good[0].read_bytes()[:3000])
    run_uri, layout = plan(tmp_path, images, classifier=None, classifier_arch=None, classifier_labels=None)
    gone = images / good[1].name
    gone.unlink()  # deleted between listing and reading

    marker = detect.run_detect(run_uri, "00000")
    by_image = rows_by_image(pq.read_table(layout.results("stage1", "00000")))
    assert len(by_image) == 7 and all(len(rows) >= 1 for rows in by_image.values())
    failures = {name: rows[0]["failure"] for name, rows in by_image.items() if rows[0]["failure"]}
    assert set(failures) == {*POISON, "truncated.jpg", good[1].name}
    assert marker["failed_images"] == 5
    assert "empty" in failures["empty.jpg"]
    assert "missing" in failures[good[1].name]
    for name in (good[0].name, good[2].name):
        assert by_image[name][0]["failure"] is None and by_image[name][0]["width"] == 1440


def test_an_interrupted_shard_resumes_after_its_last_flushed_part(tmp_path, samples_run, monkeypatch) -> None:
    """A Spot interruption mid-shard: the retry starts after the flushed parts and ends with the same table."""
    run_uri, layout = plan(tmp_path, SAMPLES)
    monkeypatch.setattr(detect, "FLUSH_EVERY", 4)  # 21 images → parts after images 4, 8, 12, ...
    calls = {"n": 0}
    real = Detector.detect

    def lost_after_three_batches(self, batch, places):
        calls["n"] += 1
        if calls["n"] > 3:
            raise SystemExit("instance reclaimed")  # what a SIGTERM-ed process amounts to
        return real(self, batch, places)

    monkeypatch.setattr(detect.Detector, "detect", lost_after_three_batches)
    monkeypatch.setattr(detect.ShardJob, "open", _with_batch_size(detect.ShardJob.open, 4))
    with pytest.raises(SystemExit):
        detect.run_detect(run_uri, "00000")
    assert not storage.exists(layout.done("stage1", "00000"))
    monkeypatch.setattr(detect.Detector, "detect", real)

    marker = detect.run_detect(run_uri, "00000")
    assert marker["resumed_from"] == 12  # three batches of 4 were flushed before the loss
    resumed = pq.read_table(layout.results("stage1", "00000"))
    _, clean_layout, _ = samples_run
    clean = pq.read_table(clean_layout.results("stage1", "00000"))
    key = ["image", "detection"]
    columns = ["image", "detection", "category", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
    a = resumed.select(columns).sort_by([(k, "ascending") for k in key]).to_pylist()
    b = clean.select(columns).sort_by([(k, "ascending") for k in key]).to_pylist()
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x["image"] == y["image"] and x["detection"] == y["detection"] and x["category"] == y["category"]
        if x["bbox_x"] is not None:  # batch composition changes float rounding only
            assert np.allclose([x[c] for c in columns[3:]], [y[c] for c in columns[3:]], atol=1e-3)


def _with_batch_size(open_job, batch_size: int):
    """ShardJob.open with the run's batch size replaced, so the test controls flush boundaries."""
    from dataclasses import replace

    def opened(*args, **kwargs):
        job = open_job(*args, **kwargs)
        job.config = replace(job.config, batch_size=batch_size)
        return job

    return opened


def test_out_of_memory_halves_the_batch_and_the_shard_goes_on(tmp_path, samples_run, monkeypatch) -> None:
    """CUDA out-of-memory is simulated (no GPU here): batches above 4 images fail, as on a full GPU."""
    run_uri, _ = plan(tmp_path, SAMPLES)
    real = Detector._infer

    def small_gpu(self, places, batch):
        if len(places) > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, places, batch)

    monkeypatch.setattr(detect.Detector, "_infer", small_gpu)
    detect._detector.cache_clear()  # a fresh detector: OOM state is per loaded model
    try:
        marker = detect.run_detect(run_uri, "00000")
    finally:
        detect._detector.cache_clear()
    assert marker["batch_size"] == 4 and marker["failed_images"] == 0
    clean_marker = samples_run[2]
    assert marker["detections"] == clean_marker["detections"]


def test_cli_errors_are_one_line_and_exit_1(tmp_path, capsys) -> None:
    assert cli.main(["detect", "--run", str(tmp_path / "nowhere"), "--shard", "00000"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no run at" in err[0]

    run_uri, layout = plan(tmp_path, SAMPLES)
    record = storage.read_json(layout.run_json)
    record["config"]["detector"] = str(tmp_path / "gone.pt")
    storage.write_json(layout.run_json, record)
    assert cli.main(["detect", "--run", run_uri, "--shard", "00000"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "gone.pt" in err[-1]

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["detect", "--run", run_uri])
    assert exit_info.value.code == 2


def test_weights_ultralytics_cannot_run_are_a_one_line_error(tmp_path, capsys) -> None:
    run_uri, layout = plan(tmp_path, SAMPLES)
    for name, data in (("notes.txt", b"not weights"), ("broken.pt", (MODELS / "detector.pt").read_bytes()[:5000])):
        weights = tmp_path / name
        weights.write_bytes(data)
        record = storage.read_json(layout.run_json)
        record["config"]["detector"] = str(weights)
        storage.write_json(layout.run_json, record)
        assert cli.main(["detect", "--run", run_uri, "--shard", "00000"]) == 1
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith(f"error: detector weights {weights}") and "unexpected" not in last, last


def _table(run_uri: str, layout: RunLayout, shards: int) -> list[dict]:
    """Every committed detection row of a run, in (image, detection) order, without run-specific columns."""
    rows = []
    for index in range(shards):
        rows += pq.read_table(layout.results("stage1", f"{index:05d}")).to_pylist()
    keep = ("image", "detection", "category", "conf", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "failure")
    return sorted(({k: r[k] for k in keep} for r in rows), key=lambda r: (r["image"], r["detection"] or 0))


def _same_rows(a: list[dict], b: list[dict]) -> None:
    """Identical rows; confidences to 1e-5 (a batch of another size may change the last float bits)."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert {k: v for k, v in x.items() if k != "conf"} == {k: v for k, v in y.items() if k != "conf"}, x["image"]
        assert (x["conf"] is None) == (y["conf"] is None) and abs((x["conf"] or 0) - (y["conf"] or 0)) < 1e-5


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    """The samples (4:3), a byte-identical copy of one, a 16:9 frame and a portrait photo: three canvases."""
    import ultralytics

    folder = tmp_path_factory.mktemp("mixed")
    for path in SAMPLES.glob("*.jpg"):
        shutil.copy(path, folder / path.name)
    shutil.copy(SAMPLES / "01_day_deer.jpg", folder / "dup_one.jpg")
    with Image.open(SAMPLES / "03_day_zebra.jpg") as image:
        image.crop((0, 135, 1440, 945)).save(folder / "wide_zebra.jpg", quality=90)  # 1440 x 810, 16:9
    shutil.copy(Path(ultralytics.__file__).parent / "assets" / "bus.jpg", folder / "portrait_bus.jpg")
    return folder


def test_byte_identical_photos_get_identical_rows_whatever_shares_their_batch(tmp_path, mixed_folder) -> None:
    run_uri, layout = plan(tmp_path, mixed_folder, batch_size=16, detection_only=True, classifier=None)
    detect.run_detect(run_uri, "00000")
    rows = _table(run_uri, layout, 1)
    original = [{**r, "image": None} for r in rows if r["image"] == "01_day_deer.jpg"]
    copy = [{**r, "image": None} for r in rows if r["image"] == "dup_one.jpg"]
    assert len(original) > 3  # the deer sample has confident animals and low-confidence ones
    _same_rows(original, copy)


@pytest.mark.slow
def test_shard_size_does_not_change_the_table(tmp_path, mixed_folder) -> None:
    """1, 3 and 2,000 images per shard: every image meets other batch-mates, and gets the same rows."""
    tables = []
    for shard_size in (1, 3, 2000):
        work = tmp_path / str(shard_size)
        run_uri, layout = plan(work, mixed_folder, shard_size=shard_size, detection_only=True, classifier=None)
        shards = len(storage.read_json(layout.shards_json("stage1")))
        for index in range(shards):
            detect.run_detect(run_uri, f"{index:05d}")
        tables.append(_table(run_uri, layout, shards))
    assert len({len(t) for t in tables}) == 1 and len(tables[0]) > 50
    _same_rows(tables[0], tables[1])
    _same_rows(tables[0], tables[2])
