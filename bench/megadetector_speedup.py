"""``megadetector_speedup``: a detect shard through our pipeline vs MegaDetector's own loop, same YOLOv5 weights.

- ours: ``wildlife_gpu.detect.run_detect`` on a planned shard (as :mod:`bench.shard_speedup`), with
  ``demo/models/detector-yolov5.pt`` (MegaDetector v5's file format: a YOLOv5-repository
  checkpoint, a P6 model padded to multiples of 64) at 1280 px, MegaDetector's size, with the
  default ``exact_decode`` (so the boxes are MegaDetector's).
- MegaDetector: what ``run_detector_batch`` does in one process without its image queue, run by
  ``bench/megadetector_loop.py`` in a process of its own (PTDetector manages imports process-wide):
  for each file, ``visualization_utils.load_image`` (Pillow, EXIF orientation) then
  ``PTDetector.generate_detections_one_image`` at threshold 0.005. It times its own loop, after
  loading the model and a first image; the shard side is timed warm too.

The photos are the 12 MP synthetic camera-trap JPEGs of :mod:`bench.photos`. The rounds alternate,
and the figure is the ratio of the medians: MegaDetector's seconds over ours.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import timing
from bench.shard_speedup import MODELS, OurShards, plan_run

WEIGHTS = MODELS / "detector-yolov5.pt"
IMAGE_SIZE = 1280
"""MegaDetector v5's size, where its P6 models pad to multiples of 64."""
IMAGES = 24
"""Photos per round: ~10 s a side on the 2-core dev machine with the small stand-in model at 1280."""
ROUNDS = 3
LOOP = Path(__file__).resolve().parent / "megadetector_loop.py"


def megadetector_loop(weights: Path, folder: Path, image_size: int, out: Path) -> float:
    """Seconds MegaDetector's loop took over the folder's photos (its own timing, model load excluded)."""
    done = subprocess.run(
        [sys.executable, str(LOOP), str(weights), str(folder), str(image_size), str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"MegaDetector's loop failed: {done.stderr[-2000:]}")
    return float(json.loads(out.read_text())["seconds"])


def measure(
    folder: Path, work: Path, *, image_size: int = IMAGE_SIZE, rounds: int = ROUNDS, weights: Path = WEIGHTS
) -> dict[str, Any]:
    """``megadetector_speedup`` and both sides' images per second."""
    # Looked up, not imported (the reference runs in its own process; parts of megadetector change
    # Pillow settings process-wide when imported).
    if importlib.util.find_spec("megadetector") is None:  # the reference is a dev requirement
        print("megadetector_speedup skipped: the megadetector package is not installed", flush=True)
        return {}
    images = len(list(folder.glob("*.jpg")))
    warm = plan_run(folder, weights, work, "md-warmup", image_size=image_size)
    OurShards([warm])()  # loads the model into this process, as the local engine keeps it
    runs = [plan_run(folder, weights, work, f"md-ours-{i}", image_size=image_size) for i in range(rounds)]
    ours = OurShards(runs)
    ours_seconds, theirs_seconds = timing.against_a_process(
        lambda index: ours(),
        lambda index: megadetector_loop(weights, folder, image_size, work / f"md-loop-{index}.json"),
        rounds,
    )
    ratio = timing.median(theirs_seconds) / timing.median(ours_seconds)
    print(
        f"megadetector {image_size}px, {images} photos: ours {timing.spread(ours_seconds)}, "
        f"MegaDetector's loop {timing.spread(theirs_seconds)}: x{ratio:.2f}",
        flush=True,
    )
    return {
        "megadetector_speedup": round(ratio, 3),
        "megadetector_speedup_images": images,
        "megadetector_speedup_image_size": image_size,
        "megadetector_ours_images_per_second": round(images / timing.median(ours_seconds), 3),
        "megadetector_loop_images_per_second": round(images / timing.median(theirs_seconds), 3),
    }
