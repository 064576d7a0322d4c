"""Measure the demo detector and classifier on held-out synthetic scenes.

The detector runs through ultralytics' own ``predict``; a ground-truth object counts as found when
a detection of the same category with confidence >= 0.2 overlaps it with IoU >= 0.5 (recall at
IoU 0.5). The classifier runs through timm with the model's own preprocessing
(``resolve_data_config`` + ``create_transform``) on ground-truth animal crops cut as the pipeline
cuts them (the box grown by 10 % on each side, clipped to the image); the score is top-1 accuracy.
The scenes come from seeds that neither training nor the bundled samples use.

Run ``python -m demo.evaluate`` for a JSON report of both models.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import demo  # noqa: F401  (sets YOLO_OFFLINE before ultralytics is imported)
from demo.offline import offline
from demo.scenes import EVAL_SEEDS, SPECIES, TRAIN_SIZE, animal_crops, animal_scene, make_scene

if TYPE_CHECKING:
    import torch

MODELS = Path(__file__).resolve().parent / "models"

DETECTION_CONF = 0.2
"""Detections below this confidence do not count (the pipeline's typical display threshold)."""

MATCH_IOU = 0.5
"""A detection must overlap a ground-truth box at least this much (IoU) to find it."""

CLASSIFIER_EVAL_SEEDS = EVAL_SEEDS + 500_000
"""Classifier evaluation scenes start here: apart from the detector's evaluation scenes."""


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes given as ``(x, y, width, height)``."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def evaluate_detector(
    weights_path: str | Path = MODELS / "detector.pt",
    n_scenes: int = 40,
    seed: int = EVAL_SEEDS,
    *,
    imgsz: int | None = None,
    conf: float = DETECTION_CONF,
    size: tuple[int, int] = TRAIN_SIZE,
) -> dict:
    """Recall at IoU 0.5 of a detector on held-out scenes.

    Args:
        weights_path: an ultralytics weights file whose classes are animal, person, vehicle (in that order).
        n_scenes: how many scenes to generate (seeds ``seed`` .. ``seed + n_scenes - 1``).
        seed: the first scene's seed.
        imgsz: detector input size; None = the size the model was trained at.
        conf: lowest confidence that counts.
        size: width and height of the generated scenes.

    Returns:
        ``recall`` (found / objects), ``found``, ``objects``, ``per_category`` (the same per category),
        ``precision`` (share of detections >= ``conf`` that match an object of their category),
        ``detections``, ``scenes``, ``imgsz``, ``conf`` and ``ms_per_image`` (predict time).
    """
    from ultralytics import YOLO

    with offline():
        model = YOLO(str(weights_path), task="detect")
        imgsz = int(imgsz or model.overrides.get("imgsz") or 640)
        scenes = [make_scene(seed + i, *size) for i in range(n_scenes)]
        start = time.perf_counter()
        results = model.predict(
            [scene.image for scene in scenes], imgsz=imgsz, conf=conf, device="cpu", batch=8, verbose=False
        )
        elapsed = time.perf_counter() - start
    names = model.names
    per_category: dict[str, dict[str, int]] = {}
    found = objects = detections = matched = 0
    for scene, result in zip(scenes, results, strict=True):
        boxes = result.boxes
        dets = [
            (names[int(c)], (x0, y0, x1 - x0, y1 - y0))
            for c, (x0, y0, x1, y1) in zip(boxes.cls.tolist(), boxes.xyxy.tolist(), strict=True)
        ]
        detections += len(dets)
        matched += sum(
            any(cat == o.category and iou(box, o.bbox) >= MATCH_IOU for o in scene.objects) for cat, box in dets
        )
        for o in scene.objects:
            hit = any(cat == o.category and iou(box, o.bbox) >= MATCH_IOU for cat, box in dets)
            stats = per_category.setdefault(o.category, {"found": 0, "objects": 0})
            stats["found"] += hit
            stats["objects"] += 1
            found += hit
            objects += 1
    return {
        "recall": found / max(1, objects),
        "found": found,
        "objects": objects,
        "per_category": {
            cat: {**stats, "recall": stats["found"] / max(1, stats["objects"])}
            for cat, stats in sorted(per_category.items())
        },
        "precision": matched / max(1, detections),
        "detections": detections,
        "scenes": n_scenes,
        "imgsz": imgsz,
        "conf": conf,
        "ms_per_image": 1000 * elapsed / max(1, n_scenes),
    }


def load_classifier(
    ckpt_path: str | Path, labels_path: str | Path, arch: str | None = None
) -> tuple[torch.nn.Module, list[str]]:
    """Load a timm classifier from a state dict and a labels file.

    Args:
        ckpt_path: a plain ``state_dict`` (the arch then comes from ``arch`` or a ``.json`` file of the
            same name beside it, key ``arch``) or a dict ``{"arch", "num_classes", "state_dict"}``.
        labels_path: one label per line, in class-index order.
        arch: timm architecture name; overrides what the files say.

    Returns:
        ``(model, labels)`` with the model in eval mode on the CPU.
    """
    import timm
    import torch

    labels = [line.strip() for line in Path(labels_path).read_text().splitlines() if line.strip()]
    checkpoint = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
    state = checkpoint
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        arch = arch or checkpoint.get("arch")
        state = checkpoint["state_dict"]
    sidecar = Path(ckpt_path).with_suffix(".json")
    if arch is None and sidecar.exists():
        arch = json.loads(sidecar.read_text())["arch"]
    if arch is None:
        raise ValueError(f"no architecture for {ckpt_path}: pass arch or write it to {sidecar}")
    model = timm.create_model(arch, pretrained=False, num_classes=len(labels))
    model.load_state_dict(state)
    return model.eval(), labels


def collect_crops(n_crops: int, seed: int = CLASSIFIER_EVAL_SEEDS, size: tuple[int, int] = TRAIN_SIZE) -> list:
    """Ground-truth animal crops, as the pipeline cuts them, from animal scenes starting at ``seed``.

    Args:
        n_crops: how many crops to return.
        seed: the first scene's seed; scenes are taken in seed order until there are enough crops.
        size: width and height of the generated scenes.

    Returns:
        ``(crop, species)`` pairs.
    """
    crops: list = []
    index = 0
    while len(crops) < n_crops:
        crops.extend(animal_crops(animal_scene(seed + index, *size)))
        index += 1
    return crops[:n_crops]


def evaluate_classifier(
    ckpt_path: str | Path = MODELS / "classifier.pth",
    labels_path: str | Path = MODELS / "labels.txt",
    n_crops: int = 200,
    seed: int = CLASSIFIER_EVAL_SEEDS,
    *,
    arch: str | None = None,
    size: tuple[int, int] = TRAIN_SIZE,
) -> dict:
    """Top-1 accuracy of a species classifier on held-out ground-truth animal crops.

    Args:
        ckpt_path: the classifier checkpoint (see ``load_classifier``).
        labels_path: the labels file.
        n_crops: how many crops to classify.
        seed: the first scene's seed.
        arch: timm architecture name, if the checkpoint does not say.
        size: width and height of the generated scenes.

    Returns:
        ``top1``, ``correct``, ``crops``, ``per_species`` accuracy, ``confusion`` (``{true: {predicted: count}}``),
        ``input_size`` and ``ms_per_crop``.
    """
    import timm
    import torch

    model, labels = load_classifier(ckpt_path, labels_path, arch)
    data_config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**data_config)
    crops = collect_crops(n_crops, seed, size)
    predictions: list[str] = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(crops), 64):  # 64 crops per batch: small enough for any CPU
            batch = torch.stack([transform(crop.convert("RGB")) for crop, _ in crops[i : i + 64]])
            predictions.extend(labels[k] for k in model(batch).argmax(dim=1).tolist())
    elapsed = time.perf_counter() - start
    confusion: dict[str, dict[str, int]] = {}
    for (_, truth), predicted in zip(crops, predictions, strict=True):
        row = confusion.setdefault(truth, {})
        row[predicted] = row.get(predicted, 0) + 1
    correct = sum(truth == predicted for (_, truth), predicted in zip(crops, predictions, strict=True))
    return {
        "top1": correct / max(1, len(crops)),
        "correct": correct,
        "crops": len(crops),
        "per_species": {
            species: confusion.get(species, {}).get(species, 0) / max(1, sum(confusion.get(species, {}).values()))
            for species in SPECIES
            if species in confusion
        },
        "confusion": {k: dict(sorted(v.items())) for k, v in sorted(confusion.items())},
        "input_size": list(data_config["input_size"]),
        "ms_per_crop": 1000 * elapsed / max(1, len(crops)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Evaluate the committed demo models and print the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", type=Path, default=MODELS / "detector.pt")
    parser.add_argument("--classifier", type=Path, default=MODELS / "classifier.pth")
    parser.add_argument("--labels", type=Path, default=MODELS / "labels.txt")
    parser.add_argument("--scenes", type=int, default=200, help="held-out scenes for the detector")
    parser.add_argument("--crops", type=int, default=600, help="held-out animal crops for the classifier")
    parser.add_argument("--imgsz", type=int, default=None, help="detector input size (default: the training size)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    report = {
        "detector": evaluate_detector(args.detector, args.scenes, imgsz=args.imgsz),
        "classifier": evaluate_classifier(args.classifier, args.labels, args.crops),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
