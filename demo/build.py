"""Build the demo model pack: ``python -m demo.build`` (what ``make demo-models`` runs).

On the CPU, in about a quarter of an hour, with nothing downloaded:

1. writes the bundled sample images, ``demo/samples/*.jpg`` with ``ground_truth.json``;
2. generates a YOLO dataset of synthetic scenes in a temporary folder and trains a small YOLOv8
   detector on it with ultralytics (classes in MegaDetector's order: animal, person, vehicle),
   saved as ``demo/models/detector.pt``;
3. cuts animal crops from more synthetic scenes and trains a small timm species classifier on
   them, saved as ``demo/models/classifier.pth`` (a plain state dict) with ``classifier.json``
   (architecture and input settings) and ``labels.txt``;
4. measures both models on held-out scenes (``demo.evaluate``) and writes ``demo/models/README.md``
   with the command, seeds, timings and metrics.

Everything is seeded; scenes for training, samples and evaluation come from disjoint seed blocks
(see ``demo.scenes``). ``--quick`` runs a tiny version of every step into a temporary folder, as a
smoke test of the script itself.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

import demo  # noqa: F401  (sets YOLO_OFFLINE before ultralytics is imported)
from demo import evaluate
from demo.offline import offline
from demo.scenes import (
    CATEGORIES,
    CLASSIFIER_TRAIN_SEEDS,
    CROP_MARGIN,
    DENSE_COUNT_WEIGHTS,
    DETECTOR_TRAIN_SEEDS,
    SAMPLE_SEEDS,
    SPECIES,
    animal_scene,
    crop_box,
    make_scene,
)

if TYPE_CHECKING:
    import torch

DEMO = Path(__file__).resolve().parent
MODELS = DEMO / "models"
SAMPLES = DEMO / "samples"


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides what the build produces. The defaults are what the committed pack used."""

    seed: int = 0
    """Seed for weight initialisation, shuffling and augmentation (the scenes have their own seeds)."""
    threads: int = 2
    """torch CPU threads; the build machine has 2 cores and shares them with other work."""
    processes: int = 2
    """Processes that draw scenes in parallel (one per core)."""

    detector_scenes: int = 600
    """Training scenes for the detector: ~1,500 objects (700 took longer and gained nothing measurable)."""
    detector_val_scenes: int = 80
    """Scenes for ultralytics' own validation after the last epoch (mAP in the README)."""
    detector_epochs: int = 30
    """Passes over the training scenes: ~16 s each here; recall on held-out scenes passes 0.95 at about 30."""
    detector_imgsz: int = 320
    """Detector input size: a 1024-px scene's smallest objects (~40 px) become ~13 px, still seen at stride 8."""
    detector_batch: int = 8
    """Images per optimizer step, without ultralytics' accumulation to 64 (nbs), which would leave only ~10
    optimizer steps per epoch here; 8 gave higher held-out recall than 16 in the same time (0.956 vs 0.93)."""
    detector_width: float = 0.125
    """Channel multiplier of the YOLOv8 layout: half of YOLOv8n's 0.25, ~0.9 M parameters, ~2 MB in fp16."""
    detector_depth: float = 0.33
    """Block-repeat multiplier, as YOLOv8n."""
    detector_lr: float = 0.0015
    """AdamW learning rate (ultralytics would pick 0.0014 for a short run); tried 0.0015-0.003, 0.0015 was best."""
    detector_mosaic: float = 0.0
    """Share of mosaic images: off, the scenes are varied enough and mosaics halve the objects' scale."""
    detector_warmup_epochs: float = 1.0
    """Epochs of learning-rate warm-up (ultralytics' default is 3, long for a 30-epoch run)."""

    classifier_arch: str = "mobilenetv3_small_050"
    """timm architecture: 0.6 M parameters, ~9 ms per 224-px crop per training step on one CPU core."""
    classifier_crops: int = 2400
    """Training crops, ~400 per species."""
    classifier_epochs: int = 6
    """Passes over the crops, with fresh augmentation each time: ~27 s each; 3,000 crops x 8 epochs gave 0.998."""
    classifier_batch: int = 64
    """Crops per training step."""
    classifier_lr: float = 2e-3
    """Peak AdamW learning rate, reached after one epoch of warm-up and then decayed to zero (cosine)."""

    eval_scenes: int = 200
    """Held-out scenes for the detector's recall (~350 objects)."""
    eval_crops: int = 600
    """Held-out animal crops for the classifier's top-1 accuracy (~100 per species)."""

    sample_size: tuple[int, int] = (1440, 1080)
    """Sample images are larger than training scenes so they look like camera-trap photos (4:3); at 1600x1200
    the 21 samples would take 3.6 MB, at this size ~2.9 MB."""
    sample_quality: int = 85
    """JPEG quality of the samples: a camera's typical setting."""


QUICK = BuildConfig(
    detector_scenes=24,
    detector_val_scenes=8,
    detector_epochs=1,
    detector_imgsz=160,
    classifier_crops=64,
    classifier_epochs=1,
    eval_scenes=4,
    eval_crops=16,
    sample_size=(400, 300),
)
"""A tiny build that runs every step in about a minute; its models are useless."""


# The bundled samples: what each shows. None = drawn from the seed. Objects that find no room in
# the frame are left out; the ground truth says what is really there.
SAMPLE_PLAN: tuple[tuple[bool | None, tuple[str, ...] | None], ...] = (
    (False, ("deer", "deer", "deer")),
    (True, ("deer",)),
    (False, ("zebra", "zebra")),
    (True, ("wild_boar", "wild_boar")),
    (False, ("fox",)),
    (True, ("fox",)),
    (False, ("hare",)),
    (True, ("hare", "fox")),
    (False, ("spotted_cat",)),
    (True, ("spotted_cat",)),
    (False, ("wild_boar",)),
    (False, ("person",)),
    (True, ("person",)),
    (False, ("vehicle",)),
    (False, ("person", "vehicle")),
    (False, ()),
    (True, ()),
    (False, ("deer", "wild_boar", "hare")),
    (False, ("zebra", "person")),
    (None, None),
    (False, ("deer", "fox")),  # written with EXIF orientation 6 (see write_samples)
)
EXIF_ROTATED_SAMPLE = len(SAMPLE_PLAN) - 1
"""Index of the sample stored rotated, with an EXIF orientation tag that turns it upright."""


def log(message: str) -> None:
    """Print a progress line, flushed at once (the build runs for minutes)."""
    print(f"[demo.build {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parallel_map(function: Callable, items: Iterable, processes: int) -> Iterator:
    """``map`` over a pool of fresh processes, results in order.

    Processes are started with ``spawn``: forking after torch has started its threads can hang.
    """
    if processes <= 1:
        yield from map(function, items)
        return
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        yield from pool.imap(function, items, chunksize=8)  # 8 scenes per task: little overhead, even load


# --------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------


def _sample_name(index: int, scene_night: bool, kinds: Sequence[str]) -> str:
    """A file name saying what a sample shows, e.g. ``07_day_hare.jpg`` or ``16_night_empty.jpg``."""
    seen: list[str] = []
    for kind in kinds:
        if kind not in seen:
            seen.append(kind)
    what = "-".join(seen) if seen else "empty"
    return f"{index + 1:02d}_{'night' if scene_night else 'day'}_{what}.jpg"


def write_samples(out: Path, config: BuildConfig) -> dict:
    """Write the sample images and their ground truth.

    One sample is stored rotated a quarter turn with EXIF orientation 6 ("rotate 90° clockwise to
    view"): readers that apply EXIF orientation see it upright, and its ground truth (width, height,
    boxes) describes the upright picture, as every other sample's does.

    Args:
        out: the samples folder; earlier ``*.jpg`` files in it are removed first.
        config: sizes, quality.

    Returns:
        The ground truth written to ``ground_truth.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jpg"):
        old.unlink()
    truth = {}
    for index, (night, kinds) in enumerate(SAMPLE_PLAN):
        scene = make_scene(SAMPLE_SEEDS + index, *config.sample_size, night=night, kinds=kinds)
        name = _sample_name(index, scene.night, [o.kind for o in scene.objects])
        exif = Image.Exif()
        exif[0x010F] = "DEMO"  # Make
        exif[0x0110] = "Synthetic trail camera"  # Model
        exif[0x0132] = f"{scene.timestamp:%Y:%m:%d %H:%M:%S}"  # DateTime
        exif.get_ifd(0x8769)[0x9003] = f"{scene.timestamp:%Y:%m:%d %H:%M:%S}"  # Exif IFD: DateTimeOriginal
        image = scene.image
        if index == EXIF_ROTATED_SAMPLE:
            exif[0x0112] = 6  # Orientation: the stored pixels must be turned 90° clockwise to view
            image = image.transpose(Image.Transpose.ROTATE_90)  # stored a quarter turn anticlockwise
        image.save(out / name, "JPEG", quality=config.sample_quality, exif=exif, optimize=True)
        truth[name] = scene.ground_truth()
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


# --------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------


def _write_detection_example(job: tuple[int, str, str]) -> int:
    """Draw one scene and write it as a YOLO example: a JPEG and a label file. Returns its object count."""
    seed, images, labels = job
    scene = make_scene(seed, count_weights=DENSE_COUNT_WEIGHTS)
    width, height = scene.size
    scene.image.save(Path(images) / f"{seed}.jpg", "JPEG", quality=90)  # near-lossless, as a camera's best
    lines = []
    for o in scene.objects:
        x, y, w, h = o.bbox
        cls = CATEGORIES.index(o.category)
        lines.append(f"{cls} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}")
    (Path(labels) / f"{seed}.txt").write_text("".join(line + "\n" for line in lines))
    return len(lines)


def write_detection_dataset(root: Path, config: BuildConfig) -> tuple[Path, dict]:
    """Write the detector's training and validation scenes as an ultralytics YOLO dataset.

    Args:
        root: an empty folder.
        config: scene counts, processes.

    Returns:
        The dataset's YAML file and counts of scenes and objects per split.
    """
    splits = {
        "train": range(DETECTOR_TRAIN_SEEDS, DETECTOR_TRAIN_SEEDS + config.detector_scenes),
        # Validation seeds: the upper half of the detector's block, never used for training.
        "val": range(DETECTOR_TRAIN_SEEDS + 500_000, DETECTOR_TRAIN_SEEDS + 500_000 + config.detector_val_scenes),
    }
    counts = {}
    for split, seeds in splits.items():
        images, labels = root / "images" / split, root / "labels" / split
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        jobs = [(seed, str(images), str(labels)) for seed in seeds]
        objects = sum(parallel_map(_write_detection_example, jobs, config.processes))
        counts[split] = {"scenes": len(jobs), "objects": objects}
    data_yaml = root / "data.yaml"
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CATEGORIES))
    data_yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data_yaml, counts


def detector_architecture(config: BuildConfig, workdir: Path) -> Path:
    """Write the detector's model YAML: ultralytics' YOLOv8 layout at the configured width and depth.

    Returns:
        The YAML file (named so that ultralytics does not mistake it for a standard n/s/m/l/x scale).
    """
    import yaml
    from ultralytics.cfg import ROOT

    layout = yaml.safe_load((ROOT / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    layout.pop("scales")
    layout.update(
        nc=len(CATEGORIES),
        depth_multiple=config.detector_depth,
        width_multiple=config.detector_width,
        max_channels=1024,  # YOLOv8's channel cap; never reached at this width
    )
    path = workdir / "demo-detector.yaml"
    path.write_text(yaml.safe_dump(layout, sort_keys=False))
    return path


def train_detector(data_yaml: Path, workdir: Path, config: BuildConfig) -> Path:
    """Train the detector from scratch with ultralytics on the CPU.

    Args:
        data_yaml: the dataset (``write_detection_dataset``).
        workdir: where ultralytics writes its run.
        config: epochs, image size, batch, architecture, seed, threads.

    Returns:
        The trained weights (ultralytics' ``best.pt``: fp16, optimizer stripped).
    """
    import torch
    from ultralytics import YOLO

    model = YOLO(str(detector_architecture(config, workdir)), task="detect")
    # ultralytics sets torch to (cores - 1) threads on the CPU, i.e. 1 here; put the configured number back.
    model.add_callback("on_pretrain_routine_end", lambda trainer: torch.set_num_threads(config.threads))
    model.train(
        data=str(data_yaml),
        epochs=config.detector_epochs,
        imgsz=config.detector_imgsz,
        batch=config.detector_batch,
        nbs=config.detector_batch,  # nominal batch = batch: one optimizer step per batch, no accumulation
        device="cpu",
        workers=0,  # ultralytics uses no loader workers on the CPU anyway
        amp=False,  # mixed precision is for GPUs; its check would download yolo26n.pt
        plots=False,  # plots need the Arial font, which ultralytics would download
        val=False,  # validate once, after the last epoch: saves ~10 % of the time
        optimizer="AdamW",
        lr0=config.detector_lr,
        warmup_epochs=config.detector_warmup_epochs,
        mosaic=config.detector_mosaic,
        cache="disk",  # decode each scene once, keep it resized as .npy (ultralytics: "ram" is not deterministic)
        close_mosaic=5,  # last 5 epochs without mosaic: whole scenes, as at inference
        seed=config.seed,
        deterministic=True,
        project=str(workdir),
        name="detector",
        exist_ok=True,
        verbose=False,
    )
    return workdir / "detector" / "weights" / "best.pt"


# --------------------------------------------------------------------------------------------
# Classifier
# --------------------------------------------------------------------------------------------

CONTEXT_MARGIN = 0.3
"""Training crops keep this much context around the box (per side) so that augmentation can shift the box."""


def _crops_for_seed(seed: int) -> list[tuple[np.ndarray, tuple[float, float, float, float], int]]:
    """Draw one animal scene; return each animal's crop with context, its box inside the crop, its class index."""
    scene = animal_scene(seed)
    width, height = scene.size
    out = []
    for o in scene.objects:
        left, top, right, bottom = crop_box(o.bbox, width, height, CONTEXT_MARGIN)
        x, y, w, h = o.bbox
        crop = np.asarray(scene.image.crop((left, top, right, bottom)))
        out.append((crop, (x - left, y - top, w, h), SPECIES.index(o.species)))
    return out


def collect_training_crops(config: BuildConfig) -> list[tuple[Image.Image, tuple[float, float, float, float], int]]:
    """Animal crops for the classifier from animal scenes of the classifier's seed block, in seed order."""
    crops: list = []
    first = CLASSIFIER_TRAIN_SEEDS
    while len(crops) < config.classifier_crops:
        # Animal scenes hold two animals on average: draw about enough for the rest, then top up.
        n = math.ceil((config.classifier_crops - len(crops)) / 2)
        for items in parallel_map(_crops_for_seed, range(first, first + n), config.processes):
            crops.extend((Image.fromarray(crop), box, label) for crop, box, label in items)
        first += n
    return crops[: config.classifier_crops]


class CropDataset:
    """Training crops with augmentation that imitates the pipeline's crops and preprocessing.

    Each item's box is jittered (as a detector's box would be off by a few percent), grown by the
    pipeline's 10 % margin and cut from the context crop; then it is brought to the model's input
    size either as timm's eval transform does (shorter side to size / crop_pct, centre crop) or by
    squashing to a square, so that either way of resizing the pipeline may use works.
    """

    def __init__(self, items: Sequence, data_config: dict) -> None:
        """Set up the augmentation.

        Args:
            items: ``(context crop, box in it as (x, y, w, h), class index)``.
            data_config: timm's ``resolve_data_config`` for the model.
        """
        from torchvision import transforms as T

        self.items = items
        size = data_config["input_size"][-1]
        bicubic = T.InterpolationMode.BICUBIC
        timm_eval = T.Compose([T.Resize(math.floor(size / data_config["crop_pct"]), bicubic), T.CenterCrop(size)])
        squash = T.Resize((size, size), bicubic)
        self.transform = T.Compose(
            [
                T.RandomChoice([timm_eval, squash]),
                T.RandomHorizontalFlip(),
                T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.02),  # day-to-day exposure
                T.RandomGrayscale(0.1),  # some day crops in grey, so grey alone does not mean "night"
                T.ToTensor(),
                T.Normalize(data_config["mean"], data_config["std"]),
            ]
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, (x, y, w, h), label = self.items[index]
        # Box jitter: centre moved by up to 6 % and size scaled by 0.9-1.1 (a detector's typical error).
        jx, jy = random.uniform(-0.06, 0.06), random.uniform(-0.06, 0.06)
        sw, sh = random.uniform(0.9, 1.1), random.uniform(0.9, 1.1)
        cx, cy = x + w / 2 + jx * w, y + h / 2 + jy * h
        box = (cx - w * sw / 2, cy - h * sh / 2, w * sw, h * sh)
        crop = image.crop(crop_box(box, image.width, image.height, CROP_MARGIN))
        return self.transform(crop), label


def train_classifier(crops: Sequence, config: BuildConfig) -> tuple[object, dict, list[dict]]:
    """Train the species classifier from scratch on the CPU.

    Args:
        crops: training crops (``collect_training_crops``).
        config: architecture, epochs, batch, learning rate, seed.

    Returns:
        The trained model (eval mode), timm's data config for it, and per-epoch loss and accuracy.
    """
    import timm
    import torch

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = timm.create_model(config.classifier_arch, pretrained=False, num_classes=len(SPECIES))
    data_config = timm.data.resolve_data_config({}, model=model)
    loader = torch.utils.data.DataLoader(
        CropDataset(crops, data_config),
        batch_size=config.classifier_batch,
        shuffle=True,
        drop_last=True,
        num_workers=0,  # augmentation in the training process: deterministic, and the cores are busy anyway
        generator=torch.Generator().manual_seed(config.seed),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.classifier_lr, weight_decay=0.05)
    steps = config.classifier_epochs * len(loader)
    warmup = len(loader)  # one epoch of linear warm-up, then cosine decay to zero

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)  # soft targets: steadier training from scratch
    history = []
    for epoch in range(config.classifier_epochs):
        model.train()
        start, total_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        for images, labels in loader:
            logits = model(images)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(labels)
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += len(labels)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": total_loss / max(1, seen),
                "train_top1": correct / max(1, seen),
                "seconds": time.perf_counter() - start,
            }
        )
        log(f"classifier epoch {epoch + 1}/{config.classifier_epochs}: {history[-1]}")
    return model.eval(), data_config, history


# --------------------------------------------------------------------------------------------
# The whole build
# --------------------------------------------------------------------------------------------


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


def write_readme(models: Path, config: BuildConfig, report: dict) -> None:
    """Write ``models/README.md``: what the models are, how they were made, how well they do."""
    det, cls = report["evaluation"]["detector"], report["evaluation"]["classifier"]
    det640 = report["evaluation"].get("detector_640")
    t = {k: round(v) for k, v in report["timings_s"].items()}
    dd, cc = report["detector"], report["classifier"]
    train = dd["data"]["train"]
    arch = config.classifier_arch
    per_species = ", ".join(f"{k} {v:.3f}" for k, v in cls["per_species"].items())
    per_category = ", ".join(
        f"{k} {v['recall']:.3f} ({v['found']}/{v['objects']})" for k, v in det["per_category"].items()
    )
    lines = [
        "# Demo models",
        "",
        "Two small models trained by `python -m demo.build` (`make demo-models`) on **synthetic** camera-trap",
        "scenes drawn by `demo/scenes.py`. They exist so that the pipeline runs offline out of the box and the",
        "tests can check real accuracy. **They only know these synthetic scenes** (drawn animals, people and",
        "vehicles on generated backgrounds) and are of no use on real camera-trap photos: use MegaDetector and a",
        "real species classifier for those.",
        "",
        "## Files",
        "",
        "| file | what |",
        "| --- | --- |",
        f"| `detector.pt` ({dd['size']}) | ultralytics YOLOv8 detector, {dd['parameters'] / 1e6:.2f} M parameters "
        f"(YOLOv8 layout at width ×{config.detector_width}, depth ×{config.detector_depth}), fp16, trained at "
        f"{config.detector_imgsz} px. Classes in MegaDetector's order: 0 animal, 1 person, 2 vehicle. |",
        f"| `classifier.pth` ({cc['size']}) | timm `{arch}` species classifier as a plain `state_dict`: "
        f'`timm.create_model("{arch}", pretrained=False, num_classes={len(SPECIES)})`, '
        f"{cc['parameters'] / 1e6:.2f} M parameters, input {cls['input_size'][1]}×{cls['input_size'][2]} "
        "with the model's own preprocessing (`timm.data.resolve_data_config` + `create_transform`). |",
        "| `detector-yolov5.pt`, `.json` | the demo detector's twin in MegaDetector v5's file format (a "
        "YOLOv5-repository `models.yolo.Model`, `yolov5n6.yaml` layout, fp16), trained on the same scenes by "
        "`python -m demo.yolov5_detector`; the `.json` holds its training settings and losses. It runs and tests "
        "the pipeline's YOLOv5 path. |",
        "| `classifier.json` | the classifier's architecture, class count and input settings |",
        f"| `labels.txt` | the {len(SPECIES)} species, one per line, in class-index order: {', '.join(SPECIES)} |",
        "",
        "## How they were trained",
        "",
        f"Command: `python -m demo.build` (seed {config.seed}, {config.threads} torch threads, CPU only, nothing",
        f"downloaded). It took {t['total'] / 60:.1f} min on a 2-core machine: detector scenes {t['detector_data']} s,",
        f"detector training {t['detector_train']} s, classifier crops {t['classifier_data']} s, classifier training",
        f"{t['classifier_train']} s, samples {t['samples']} s, evaluation {t['evaluation']} s.",
        "",
        f"- Detector: {train['scenes']} scenes of 1024×768 with {train['objects']} objects (scene seeds "
        f"{DETECTOR_TRAIN_SEEDS}-{DETECTOR_TRAIN_SEEDS + config.detector_scenes - 1},",
        f"  busier than the default mix), from scratch: {config.detector_epochs} epochs at {config.detector_imgsz} px, "
        f"batch {config.detector_batch} without accumulation,",
        f"  AdamW lr {config.detector_lr}, no mosaic, otherwise ultralytics' default augmentation. ultralytics' own "
        f"validation on {config.detector_val_scenes}",
        f"  further scenes: mAP50 {dd['val']['mAP50']:.3f}, mAP50-95 {dd['val']['mAP50-95']:.3f}.",
        f"- Classifier: {config.classifier_crops} animal crops from scenes of 1-3 animals (seeds from "
        f"{CLASSIFIER_TRAIN_SEEDS}), each the ground-truth box",
        f"  jittered by a few percent and grown by {CROP_MARGIN:.0%} per side as the pipeline crops, then resized "
        "either as timm's eval transform",
        "  does or squashed to a square, flipped and colour-jittered. From scratch: "
        f"{config.classifier_epochs} epochs, batch {config.classifier_batch}, AdamW",
        f"  lr {config.classifier_lr} with cosine decay, label smoothing 0.1. Training top-1 in the last epoch: "
        f"{cc['history'][-1]['train_top1']:.3f}.",
        "",
        "## How well they do on held-out scenes",
        "",
        f"Measured at the end of the build, as `python -m demo.evaluate --scenes {config.eval_scenes} "
        f"--crops {config.eval_crops}` does, on scenes whose",
        f"seeds training and samples never use (from {evaluate.EVAL_SEEDS}):",
        "",
        f"- Detector recall at IoU {evaluate.MATCH_IOU} (an object counts as found when a detection of its category "
        f"with confidence ≥ {evaluate.DETECTION_CONF}",
        f"  overlaps it with IoU ≥ {evaluate.MATCH_IOU}): **{det['recall']:.3f}** ({det['found']}/{det['objects']} "
        f"objects in {det['scenes']} scenes at {det['imgsz']} px);",
        f"  per category: {per_category}. Precision at that confidence: {det['precision']:.3f}; "
        f"{det['ms_per_image']:.0f} ms per image on the CPU.",
    ]
    if det640:
        lines += [
            f"- The same detector at 640 px (the pipeline's default `image_size`): recall {det640['recall']:.3f} "
            f"({det640['found']}/{det640['objects']}), precision {det640['precision']:.3f}.",
            f"  Run it at `image_size: {config.detector_imgsz}`, the size it was trained at.",
        ]
    lines += [
        f"- Classifier top-1 on ground-truth animal crops: **{cls['top1']:.3f}** ({cls['correct']}/{cls['crops']}); "
        "per species:",
        f"  {per_species}.",
        "",
        "`tests/unit/test_demo_models.py` checks recall ≥ 0.9 and top-1 ≥ 0.9 on other held-out scenes.",
        "",
        "## Samples",
        "",
        f"`demo/samples/` holds {report['samples']['files']} JPEGs ({config.sample_size[0]}×{config.sample_size[1]}, "
        f"quality {config.sample_quality}, scene seeds from {SAMPLE_SEEDS})",
        "and `ground_truth.json`: per file `width`, `height` and `objects`, each with `category`, `species` (null for",
        "people and vehicles) and `bbox` `[x, y, width, height]` normalized to 0..1 from the top left.",
        f"`{report['samples']['exif_rotated']}` is stored rotated with EXIF orientation 6; its ground truth describes",
        "the upright picture that EXIF-aware readers show.",
    ]
    (models / "README.md").write_text("\n".join(lines) + "\n")


def build(config: BuildConfig, models: Path, samples: Path, keep_workdir: bool = False) -> dict:
    """Run every step of the build and return its report (also written to ``models/README.md``)."""
    import timm
    import torch

    torch.set_num_threads(config.threads)
    models.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="demo-build-"))
    report: dict = {"config": asdict(config), "timings_s": {}}
    timings = report["timings_s"]
    begin = time.perf_counter()
    log(f"working in {workdir}")
    try:
        with offline() as attempts:
            start = time.perf_counter()
            truth = write_samples(samples, config)
            timings["samples"] = time.perf_counter() - start
            rotated = [name for name in truth if name.startswith(f"{EXIF_ROTATED_SAMPLE + 1:02d}_")]
            report["samples"] = {"files": len(truth), "exif_rotated": rotated[0]}
            log(f"wrote {len(truth)} samples in {timings['samples']:.0f} s")

            start = time.perf_counter()
            data_yaml, counts = write_detection_dataset(workdir / "dataset", config)
            timings["detector_data"] = time.perf_counter() - start
            log(f"wrote the detection dataset {counts} in {timings['detector_data']:.0f} s")
            start = time.perf_counter()
            best = train_detector(data_yaml, workdir, config)
            timings["detector_train"] = time.perf_counter() - start
            shutil.copyfile(best, models / "detector.pt")
            checkpoint = torch.load(best, map_location="cpu", weights_only=False)
            metrics = checkpoint.get("train_metrics") or {}
            report["detector"] = {
                "data": counts,
                "size": _size(models / "detector.pt"),
                "parameters": sum(p.numel() for p in checkpoint["model"].parameters()),
                "val": {
                    "mAP50": float(metrics.get("metrics/mAP50(B)", float("nan"))),
                    "mAP50-95": float(metrics.get("metrics/mAP50-95(B)", float("nan"))),
                },
            }
            log(f"trained the detector in {timings['detector_train']:.0f} s: {report['detector']}")

            start = time.perf_counter()
            crops = collect_training_crops(config)
            timings["classifier_data"] = time.perf_counter() - start
            log(f"cut {len(crops)} training crops in {timings['classifier_data']:.0f} s")
            start = time.perf_counter()
            model, data_config, history = train_classifier(crops, config)
            timings["classifier_train"] = time.perf_counter() - start
            torch.save(model.state_dict(), models / "classifier.pth")
            (models / "labels.txt").write_text("".join(f"{s}\n" for s in SPECIES))
            sidecar = {
                "arch": config.classifier_arch,
                "num_classes": len(SPECIES),
                "labels": "labels.txt",
                "input_size": list(data_config["input_size"]),
                "crop_pct": data_config["crop_pct"],
                "interpolation": data_config["interpolation"],
                "mean": list(data_config["mean"]),
                "std": list(data_config["std"]),
                "crop_margin": CROP_MARGIN,
                "timm_version": timm.__version__,
            }
            (models / "classifier.json").write_text(json.dumps(sidecar, indent=2) + "\n")
            report["classifier"] = {
                "size": _size(models / "classifier.pth"),
                "parameters": sum(p.numel() for p in model.parameters()),
                "history": history,
            }
            log(f"trained the classifier in {timings['classifier_train']:.0f} s")

            start = time.perf_counter()
            report["evaluation"] = {
                "detector": evaluate.evaluate_detector(models / "detector.pt", config.eval_scenes),
                "detector_640": evaluate.evaluate_detector(models / "detector.pt", config.eval_scenes, imgsz=640),
                "classifier": evaluate.evaluate_classifier(
                    models / "classifier.pth", models / "labels.txt", config.eval_crops
                ),
            }
            torch.set_num_threads(config.threads)  # ultralytics' predict lowers it again
            timings["evaluation"] = time.perf_counter() - start
            timings["total"] = time.perf_counter() - begin
            report["network_attempts"] = list(attempts)
        write_readme(models, config, report)
        (workdir / "report.json").write_text(json.dumps(report, indent=2, default=str))
        log(f"evaluation: {json.dumps(report['evaluation'], indent=1)}")
        log(f"done in {timings['total'] / 60:.1f} min; network attempts: {report['network_attempts'] or 'none'}")
    finally:
        if keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: build the demo pack into demo/models and demo/samples (or elsewhere)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test build into a temporary folder")
    parser.add_argument("--models", type=Path, default=None, help="output folder for the models (default demo/models)")
    parser.add_argument(
        "--samples", type=Path, default=None, help="output folder for the samples (default demo/samples)"
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the generated dataset and ultralytics run")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else BuildConfig()
    if args.threads:
        config = replace(config, threads=args.threads)
    models, samples = args.models, args.samples
    if args.quick and (models is None or samples is None):
        out = Path(tempfile.mkdtemp(prefix="demo-quick-"))
        models, samples = models or out / "models", samples or out / "samples"
    build(config, models or MODELS, samples or SAMPLES, keep_workdir=args.keep_workdir)


if __name__ == "__main__":
    main()
