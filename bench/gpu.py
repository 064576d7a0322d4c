"""GPU figures (``make bench-gpu``): FP16 images/s at 640 and 1280, model-only and end to end.

- model-only: ``Detector.detect`` (the pipeline's own per-batch work: host-to-GPU copy, FP16,
  forward pass, NMS, boxes back to the host) on ready letterboxed batches of 16 held in memory,
  made from the benchmark photos so NMS sees real content. It is the most the shard could do if
  the input path cost nothing.
- end to end: ``run_detect`` on a shard of 12 MP JPEGs, timed from the call to the commit marker.
- ``gpu_end_to_end_share_<size>`` = end to end / model-only: target at least 0.9 (the GPU barely
  waits); ``gpu_wait_fraction_gpu_<size>`` is run_detect's own measure of the same thing, target
  at most 0.1.

Two detectors: the MegaDetector-sized one is the figure that matters, the demo one is shown beside.

- ``md``: ultralytics' YOLOv5x P6 layout (155 M parameters; MegaDetector v5 is YOLOv5x6, 140 M,
  run at 1280), built from ultralytics' own YAML with untrained weights, since no MegaDetector
  file can be fetched here. Speed depends on the layers, not on the weight values; untrained
  class scores start near 1e-5 (ultralytics' bias init), so NMS has fewer boxes to sort than a
  trained model at the 0.005 threshold, which costs microseconds per image on a GPU.
- ``demo``: the bundled demo detector (0.9 M parameters): so small that any GPU outruns the
  CPU decode of 12 MP photos, so its share says how fast the input path is, not the GPU.

Sized to finish in about 2 minutes on an H200 with 16 cores, loading included: 32 distinct photos
made in parallel (~5 s), hard-linked into a 1,024-image shard (what a decode costs does not depend
on whether the file was seen before), 2 rounds of each side per model and size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import photos, timing
from bench.shard_speedup import MODELS, OurShards, plan_run

SIZES = (640, 1280)
BATCH = 16  # the run's default batch_size
DISTINCT = 32
IMAGES = 1024
ROUNDS = 2
# ultralytics' YAML for the YOLOv5x P6 layout ("x" scale, 4 output strides up to 64).
MD_LAYOUT = "yolov5x-p6.yaml"


def md_sized_weights(out: Path) -> Path:
    """The MegaDetector-sized stand-in as a weights file that ``run_detect`` loads like any other."""
    path = out / "md-sized-yolov5x6u-untrained.pt"
    if not path.exists():
        from ultralytics import YOLO

        # 80 classes numbered "0".."79"; the megadetector class map takes 0-2 and ignores the rest.
        model = YOLO(MD_LAYOUT)
        out.mkdir(parents=True, exist_ok=True)
        model.save(str(path))
    return path


def model_only(weights: Path, batches: Sequence[np.ndarray], places: list, size: int):
    """A callable that runs ``Detector.detect`` on every batch once; the detector, warmed up."""
    from wildlife_gpu.detector import Detector

    detector = Detector(str(weights), image_size=size, conf=0.005, class_map="megadetector")
    for batch in batches[:3]:  # cuDNN picks its kernels on the first batches of a shape
        detector.detect(batch, places)

    def run() -> None:
        for batch in batches:
            detector.detect(batch, places)  # returns host lists: the GPU work is finished

    return run


def measure(
    work: Path, *, cache: Path | None = None, sizes: Sequence[int] = SIZES, images: int = IMAGES, rounds: int = ROUNDS
) -> dict[str, Any]:
    """The GPU figures; an empty result, with a message, where there is no CUDA device."""
    import torch

    if not torch.cuda.is_available():
        print("bench --gpu: skipped, no CUDA device here (torch.cuda.is_available() is False)", flush=True)
        return {}
    sources = photos.photos(DISTINCT, cache=cache)  # first: forks workers before any model is built
    models = {"md": md_sized_weights(work / "models"), "demo": MODELS / "detector.pt"}
    return run(work, models, sources=sources, sizes=sizes, images=images, rounds=rounds)


def run(
    work: Path,
    models: dict[str, Path],
    *,
    sources: Sequence[Path],
    sizes: Sequence[int],
    images: int,
    rounds: int,
) -> dict[str, Any]:
    """Model-only vs end to end for each model and size, on whatever device the pipeline picks.

    Separate from :func:`measure` so that the unit test runs this code on the CPU, tiny.
    """
    from wildlife_common import storage
    from wildlife_gpu.images import decode
    from wildlife_gpu.letterbox import Letterbox, letterbox_stride

    from bench.gpu_wait_fraction import from_markers

    folder = photos.shard_folder(sources, images, work / f"gpu-shard-{len(sources)}x{images}")
    warm = photos.shard_folder(sources[:2], 2, work / "gpu-warmup")
    results: dict[str, Any] = {"gpu_images": images, "gpu_batch": BATCH}
    for label, weights in models.items():
        if not weights.exists():
            print(f"bench --gpu: {label} detector {weights} missing, skipped", flush=True)
            continue
        for size in sizes:
            boxed, places = [], []
            for index in range(BATCH):  # the bench photos share one size, so one canvas
                decoded = decode(storage.read_bytes(str(sources[index % len(sources)])), min_side=size)
                places.append(Letterbox.of(decoded.height, decoded.width, size, letterbox_stride(size, 32)))
                boxed.append(places[-1].apply(decoded.pixels))
            batch = np.stack(boxed)
            # As many images as the shard has, so both sides process the same count.
            alone = model_only(weights, [batch] * max(1, images // BATCH), places, size)
            OurShards([plan_run(warm, weights, work, "gpu-warmup", image_size=size)])()  # loads run_detect's model
            ours = OurShards(
                [plan_run(folder, weights, work, f"gpu-{label}-{size}-{i}", image_size=size) for i in range(rounds)]
            )
            seconds = timing.alternate({"model-only": alone, "end-to-end": ours}, rounds)
            rate = {
                "model-only": max(1, images // BATCH) * BATCH / timing.median(seconds["model-only"]),
                "end-to-end": images / timing.median(seconds["end-to-end"]),
            }
            share = rate["end-to-end"] / rate["model-only"]
            print(
                f"gpu {label} {size}px, img/s: model-only {rate['model-only']:.0f} "
                f"({timing.spread(seconds['model-only'])}), end to end {rate['end-to-end']:.0f} "
                f"({timing.spread(seconds['end-to-end'])}): share {share:.2f}",
                flush=True,
            )
            prefix = "gpu" if label == "md" else f"gpu_{label}"
            results[f"{prefix}_images_per_second_{size}_fp16_model_only"] = round(rate["model-only"], 1)
            results[f"{prefix}_images_per_second_{size}_fp16_end_to_end"] = round(rate["end-to-end"], 1)
            results[f"{prefix}_end_to_end_share_{size}"] = round(share, 3)
            waits = from_markers(ours.markers, name=f"{prefix}_wait_fraction_gpu_{size}")
            results.update({k: v for k, v in waits.items() if not k.endswith("_device")})
            utilization = [m["gpu_utilization"] for m in ours.markers if m.get("gpu_utilization") is not None]
            if utilization:
                results[f"{prefix}_utilization_percent_{size}"] = round(float(np.median(utilization)), 1)
    return results
