"""``speciesnet_speedup``: a SpeciesNet classify shard through our pipeline vs the package's own loop, same crops.

- The model: SpeciesNet-shaped, a whole pickled module taking NHWC float32 480 x 480 (a timm
  ``efficientnet_b0`` behind a permute, untrained: speed depends on layers, not weights; SpeciesNet's
  own is an EfficientNetV2-M, several times heavier, which only makes the model's share larger), in
  a folder of the release's formats (``demo/speciesnet_folder.py``).
- The crops: the demo detector's detections >= 0.1 on the 12 MP bench photos (stage 1 runs first,
  untimed), the boxes as megadetector.json writes them.
- ours: ``run_classify`` on the stage-2 shard (threads read and decode each photo once at full size,
  cut every crop, batches across photos), timed from the call to the commit marker.
- SpeciesNet: ``bench/speciesnet_loop.py`` in a process of its own (importing speciesnet changes a
  Pillow setting process-wide): per photo Pillow load, ``preprocess``, ``batch_predict``; it times its
  own loop after loading the model.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import timing
from bench.shard_speedup import MODELS

LOOP = Path(__file__).resolve().parent / "speciesnet_loop.py"
ROUNDS = 3
PHOTOS = 16
"""Photos per round: with 1-3 animals each, ~30 crops, ~10 s a side on the 2-core dev machine."""
BATCH = 8
"""Crops per model call on both sides: SpeciesNet's own chunk. On a CPU larger batches of 480 x 480
crops are slower per crop (measured here: a batch of 27 took 9.4 s, chunks of 8 of the same crops
about 7 s), so the CPU figure uses SpeciesNet's size; a GPU run uses the run's classify_batch_size."""


def speciesnet_shaped_folder(folder: Path) -> Path:
    """The bench's SpeciesNet folder (built once): the demo labels with an efficientnet_b0 behind a permute."""
    if (folder / "info.json").exists():
        return folder
    import timm
    import torch
    from torchvision.ops import Permute

    from demo.speciesnet_folder import LABELS, build_folder

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        Permute([0, 3, 1, 2]), timm.create_model("efficientnet_b0", pretrained=False, num_classes=len(LABELS))
    ).eval()
    return build_folder(folder, classifier=model)


def _plan(photos: Path, folder: Path, work: Path, run_id: str, batch: int) -> tuple[str, list[dict]]:
    """A run over the photos with stage 1 done (untimed) and stage 2 planned: its URI and the photos' boxes."""
    import pyarrow.parquet as pq
    from wildlife_common.megadetector import written_bbox
    from wildlife_common.planning import plan_classification, plan_detection
    from wildlife_common.speciesnet import CLASSIFY_FROM
    from wildlife_gpu.detect import run_detect

    shutil.rmtree(work / "runs" / run_id, ignore_errors=True)
    settings = {
        "input": str(photos),
        "detector": str(MODELS / "detector.pt"),
        "image_size": 320,  # the demo detector's size
        "classifier": str(folder),
        "classify_batch_size": batch,
        "run_id": run_id,
        "shard_size": 100_000,
    }
    run = plan_detection(settings, run_id, str(work))
    run_detect(run["run_uri"], "00000")
    plan_classification({"run_uri": run["run_uri"]})
    rows = pq.read_table(Path(run["run_uri"]) / "stage1" / "results" / "00000.parquet").to_pylist()
    boxes: dict[str, list[list[float]]] = {}
    for row in rows:
        if row["conf"] is not None and row["conf"] >= CLASSIFY_FROM:
            boxes.setdefault(row["image_uri"], []).append(written_bbox([row[f"bbox_{k}"] for k in "xywh"]))
    return run["run_uri"], [{"file": uri, "boxes": b} for uri, b in boxes.items()]


def measure(photos: Path, work: Path, *, rounds: int = ROUNDS, batch: int = BATCH) -> dict[str, Any]:
    """``speciesnet_speedup`` and both sides' crops per second."""
    # Looked up, not imported: importing speciesnet turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole
    # process, which our decoder (and the tests that run make bench in-process) must never run under.
    if importlib.util.find_spec("speciesnet") is None:  # the reference is a dev requirement
        print("speciesnet_speedup skipped: the speciesnet package is not installed", flush=True)
        return {}
    from wildlife_gpu.classify import run_classify

    folder = speciesnet_shaped_folder(work / "speciesnet-shaped")
    runs = [_plan(photos, folder, work, f"sn-ours-{i}", batch) for i in range(rounds + 1)]
    images = runs[0][1]
    crops = sum(len(p["boxes"]) for p in images)
    request = work / "speciesnet-loop.json"
    request.write_text(json.dumps({"images": images}))
    run_classify(runs[0][0], "c00000")  # warm-up: loads our classifier into this process
    ours, theirs = timing.against_a_process(
        lambda index: run_classify(runs[index + 1][0], "c00000"),
        lambda index: _their_loop(folder, request, work / f"sn-loop-{index}.json"),
        rounds,
    )
    ratio = timing.median(theirs) / timing.median(ours)
    print(
        f"speciesnet {len(images)} photos, {crops} crops: ours {timing.spread(ours)}, "
        f"SpeciesNet's loop {timing.spread(theirs)}: x{ratio:.2f}",
        flush=True,
    )
    return {
        "speciesnet_speedup": round(ratio, 3),
        "speciesnet_speedup_crops": crops,
        "speciesnet_ours_crops_per_second": round(crops / timing.median(ours), 3),
        "speciesnet_loop_crops_per_second": round(crops / timing.median(theirs), 3),
    }


def _their_loop(folder: Path, request: Path, out: Path) -> float:
    done = subprocess.run(
        [sys.executable, str(LOOP), str(folder), str(request), str(out)], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"SpeciesNet's loop failed: {done.stderr[-2000:]}")
    return float(json.loads(out.read_text())["seconds"])
