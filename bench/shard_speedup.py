"""``shard_speedup``: a whole detect shard through our pipeline vs the plain ``predict`` loop.

- ours: ``wildlife_gpu.detect.run_detect(run_uri, shard)`` on a local run planned by the real
  planner (``plan_detection``), timed from the call to the commit marker: reading the manifest,
  the threaded input path overlapping inference, the parquet results and the marker. Planning is
  not timed (in a run it is a Lambda, once, before any GPU job starts).
- the plain loop that older scripts use: ``YOLO(weights).predict(paths, batch=16)`` over the same
  files, iterated with ``stream=True`` (as any script over thousands of photos must, or every 12 MP
  original stays in memory) and each result's boxes pulled to Python lists, the least a script
  does with them. Same weights, image size, confidence threshold (the run's 0.005), NMS IoU and
  device.

Both sides are warm: the model is loaded and ultralytics' predictor set up before the first timed
round (our ``Detector`` is cached per process, as when the local engine runs many shards; a Batch
job loads it once per ~2,000-image shard, ~1 s, so leaving load out flatters neither side).
Both use the whole machine: torch's threads for inference on both sides, plus our decode threads;
ultralytics decodes on its one loader thread (it uses ``min(8, cores - 1)`` threads, 1 here).

The headline runs detection only (``detection_only``): the same work as the plain loop, boxes
for every image. ``shard_speedup_with_crops`` runs the shard as a classify run does, also cutting
the animal crops stage 2 needs (a full-resolution re-decode for small animals): work the plain
loop does not do at all, so that figure is ours-with-more-work vs theirs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import timing

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "demo" / "models"
# The demo detector is trained at 320 px (demo/models/README.md); at 320 our decode takes a
# 4000x3000 photo straight to 1/8 (500x375).
IMAGE_SIZE = 320
# 64 photos (4 batches of 16): one round of all four sides takes ~30 s on the 2-core dev machine
# (predict(paths) ~15 s of it), so 5 rounds fit in under 3 minutes; the shard's fixed costs
# (manifest, parquet, marker) stay a few percent of it, as in a 2,000-image shard.
IMAGES = 64
ROUNDS = 5
BATCH = 16  # the plain loop's batch, and the run's default batch_size


def plan_run(
    images: Path,
    weights: Path,
    out: Path,
    run_id: str,
    *,
    image_size: int,
    classify: bool = False,
    batch_size: int = BATCH,
) -> tuple[str, str]:
    """Plan a local run of one shard over ``images``; returns (run URI, shard id)."""
    from wildlife_common import storage
    from wildlife_common.layout import RunLayout
    from wildlife_common.planning import plan_detection, resolve_run

    settings: dict[str, Any] = {
        "input": str(images),
        "detector": str(weights),
        "image_size": image_size,
        "batch_size": batch_size,
        "run_id": run_id,
        "shard_size": 100_000,  # everything in one shard: the unit that is benchmarked
    }
    if classify:
        settings.update(
            classifier=str(MODELS / "classifier.pth"),
            classifier_arch=json.loads((MODELS / "classifier.json").read_text())["arch"],
            classifier_labels=str(MODELS / "labels.txt"),
        )
    else:
        settings["detection_only"] = True
    # A run left by an earlier benchmark would be resumed, its committed shard returned at once.
    _, layout = resolve_run(settings, run_id, str(out))
    shutil.rmtree(layout.run_uri, ignore_errors=True)
    run = plan_detection(settings, run_id, str(out))
    shards = storage.read_json(RunLayout(run["run_uri"]).shards_json("stage1"))
    if len(shards) != 1:
        raise RuntimeError(f"expected one shard, the planner made {len(shards)}")
    return run["run_uri"], shards[0]["shard"]


class OurShards:
    """Runs pre-planned shards through ``run_detect`` one per call; keeps the commit markers."""

    def __init__(self, runs: Sequence[tuple[str, str]]) -> None:
        self.runs = list(runs)
        self.markers: list[dict[str, Any]] = []

    def __call__(self) -> None:
        from wildlife_gpu.detect import run_detect

        run_uri, shard = self.runs[len(self.markers)]
        self.markers.append(run_detect(run_uri, shard))


def plain_loop(
    weights: Path, source: Sequence[Path] | Path, *, image_size: int, conf: float, device: str
) -> Callable[[], Any]:
    """The older scripts' loop, warmed up; each call runs it over ``source`` once.

    ``source`` is a list of paths (``predict(paths)``: ultralytics 8.4 opens them all with Pillow
    first, see :mod:`bench.decode_speedup`) or a folder (its cv2 loader, one thread on 2 cores).
    """
    from ultralytics import YOLO
    from wildlife_gpu.detector import MAX_DETECTIONS, NMS_IOU

    model = YOLO(str(weights))
    settings = dict(
        batch=BATCH, imgsz=image_size, conf=conf, iou=NMS_IOU, max_det=MAX_DETECTIONS, device=device, verbose=False
    )
    first = source[0] if isinstance(source, Sequence) else next(iter(sorted(source.glob("*.jpg"))))
    model.predict(str(first), **settings)  # sets up the predictor and warms the model up

    def run() -> list[list[list[float]]]:
        what = [str(p) for p in source] if isinstance(source, Sequence) else str(source)
        return [result.boxes.data.tolist() for result in model.predict(what, stream=True, **settings)]

    return run


def measure(
    folder: Path,
    weights: Path,
    work: Path,
    *,
    image_size: int = IMAGE_SIZE,
    rounds: int = ROUNDS,
    crops: bool = True,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """``shard_speedup`` and the figures beside it; also our detection-only commit markers."""
    from wildlife_common.run_folder import load_run
    from wildlife_gpu.detector import device_name

    from bench.photos import shard_folder

    paths = sorted(folder.glob("*.jpg"))
    device = device_name()
    # A warm-up shard of 2 images loads our detector once for the process (it is cached, keyed
    # by weights and size, as when the local engine runs many shards).
    warm = shard_folder(paths[:2], 2, work / "warmup-images")
    warm_run = plan_run(warm, weights, work, "bench-warmup", image_size=image_size)
    OurShards([warm_run])()
    conf = load_run(warm_run[0])[0].detection_threshold  # the run's output threshold, for the plain loop too
    sides: dict[str, Callable[[], Any]] = {
        "ours": OurShards([plan_run(folder, weights, work, f"bench-{i}", image_size=image_size) for i in range(rounds)])
    }
    if crops and (MODELS / "classifier.pth").exists():
        sides["ours with crops"] = OurShards(
            [
                plan_run(folder, weights, work, f"bench-crops-{i}", image_size=image_size, classify=True)
                for i in range(rounds)
            ]
        )
    sides["predict(paths)"] = plain_loop(weights, paths, image_size=image_size, conf=conf, device=device)
    sides["predict(folder)"] = plain_loop(weights, folder, image_size=image_size, conf=conf, device=device)
    seconds = timing.alternate(sides, rounds)
    rate = {name: len(paths) / timing.median(values) for name, values in seconds.items()}
    print(
        f"shard of {len(paths)} images at {image_size}px on {device}, img/s (seconds per shard): "
        + ", ".join(f"{name} {rate[name]:.2f} ({timing.spread(seconds[name])})" for name in sides),
        flush=True,
    )
    results: dict[str, float] = {
        "shard_speedup": rate["ours"] / rate["predict(paths)"],
        "shard_speedup_vs_predict_folder": rate["ours"] / rate["predict(folder)"],
        "shard_ours_images_per_second": rate["ours"],
        "shard_predict_paths_images_per_second": rate["predict(paths)"],
        "shard_predict_folder_images_per_second": rate["predict(folder)"],
    }
    if "ours with crops" in rate:
        results["shard_speedup_with_crops"] = rate["ours with crops"] / rate["predict(paths)"]
        results["shard_ours_with_crops_images_per_second"] = rate["ours with crops"]
    results = {name: round(value, 3) for name, value in results.items()}
    results.update(shard_images=len(paths), shard_image_size=image_size, shard_rounds=rounds)
    ours = sides["ours"]
    assert isinstance(ours, OurShards)
    return results, ours.markers
