"""The demo detector in MegaDetector v5's file format: a YOLOv5-repo checkpoint trained on the demo scenes.

MegaDetector v5a/v5b are checkpoints of the original YOLOv5 code base: a pickle of
``{"model": models.yolo.Model (fp16), ...}`` whose classes live in the top-level ``models`` package
of that repository. This script writes a small model in exactly that format, trained on the same
synthetic scenes as the demo detector, so the pipeline's YOLOv5 path (loading, MegaDetector's
preprocessing and NMS) runs and is compared with MegaDetector's own ``PTDetector`` offline, with
boxes confident enough for the comparison to mean something. It knows only the synthetic scenes.

Run: ``python -m demo.yolov5_detector`` (part of ``make demo-models``; ~10 min on 2 cores).

The model is YOLOv5's hub layout ``yolov5n6.yaml`` (the P6 family of MDv5's YOLOv5x6, stride 64)
with 3 classes named animal, person, vehicle, trained from scratch with YOLOv5's own loss
(``yolov5.utils.loss.ComputeLoss``) in a short loop of our own: YOLOv5's ``train.py`` wants
datasets, plots and fonts from the network.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from demo.build import log, parallel_map
from demo.scenes import CATEGORIES, DENSE_COUNT_WEIGHTS, DETECTOR_TRAIN_SEEDS, make_scene

DEMO = Path(__file__).resolve().parent
OUTPUT = DEMO / "models" / "detector-yolov5.pt"
HUB_LAYOUT = "yolov5n6.yaml"
"""YOLOv5's smallest P6 layout: MDv5's YOLOv5x6 at width x0.25 and depth x0.33 (3.1 M parameters)."""


@dataclass(frozen=True)
class TrainConfig:
    """What decides the stand-in. The defaults are what the committed file used."""

    seed: int = 0
    threads: int = 2
    """torch CPU threads: the build machine has 2 cores."""
    scenes: int = 400
    """Training scenes (~1,000 objects), the demo detector's busier mix."""
    image_size: int = 320
    """Training input, square: the demo detector's size; objects of 40-400 px in a 1024-px scene
    become 12-125 px, which YOLOv5's P3 and P4 anchors (19-180 px) cover."""
    epochs: int = 30
    """Passes over the scenes; ~20 s each here."""
    batch: int = 16
    """Scenes per optimizer step."""
    lr: float = 0.002
    """AdamW peak learning rate (YOLOv5 suggests 1e-3 for Adam; a short run takes a little more)."""


QUICK = TrainConfig(scenes=16, epochs=1, batch=8)
"""A tiny build that runs every step in seconds; its model is useless."""


@contextlib.contextmanager
def yolov5_repo_modules() -> Iterator[object]:
    """Import YOLOv5's classes under the names the original repository pickles: ``models.yolo``, ``models.common``.

    The ``yolov5`` package holds the YOLOv5 repository's code as ``yolov5.models.*``. MegaDetector's
    checkpoints were written from a checkout, where the same classes were ``models.yolo.Model``,
    ``models.common.Conv`` and so on; pickle writes a class's ``__module__``, so for this process
    the classes are given their repository names (and registered under them) before saving.

    Yields:
        ``yolov5.models.yolo``.
    """
    import warnings

    path = list(sys.path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # yolov5 imports pkg_resources, deprecated by setuptools
        yolo = importlib.import_module("yolov5.models.yolo")
    sys.path[:] = path  # yolov5.models.yolo appends its folder to sys.path on import
    renamed = []
    for name in ("common", "experimental", "yolo"):
        module = importlib.import_module(f"yolov5.models.{name}")
        sys.modules[f"models.{name}"] = module
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                renamed.append((value, value.__module__))
                value.__module__ = f"models.{name}"
    sys.modules["models"] = importlib.import_module("yolov5.models")
    try:
        yield yolo
    finally:
        for cls, module_name in renamed:
            cls.__module__ = module_name
        for name in ("models", "models.common", "models.experimental", "models.yolo"):
            sys.modules.pop(name, None)


def _scene_example(job: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One training scene letterboxed to a square of ``size``, and its labels (class, x, y, w, h normalized)."""
    import cv2

    seed, size = job
    scene = make_scene(seed, count_weights=DENSE_COUNT_WEIGHTS)
    width, height = scene.size
    ratio = size / max(width, height)
    new_w, new_h = round(width * ratio), round(height * ratio)
    pixels = cv2.resize(np.asarray(scene.image), (new_w, new_h), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 114, np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = pixels
    labels = [
        [
            CATEGORIES.index(o.category),
            (left + (o.bbox[0] + o.bbox[2] / 2) * ratio) / size,
            (top + (o.bbox[1] + o.bbox[3] / 2) * ratio) / size,
            o.bbox[2] * ratio / size,
            o.bbox[3] * ratio / size,
        ]
        for o in scene.objects
    ]
    return canvas, np.array(labels, np.float32).reshape(-1, 5)


def train(config: TrainConfig, output: Path) -> dict:
    """Train the stand-in and write it as MegaDetector v5's checkpoints are written."""
    import torch
    import yaml

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    seeds = range(DETECTOR_TRAIN_SEEDS, DETECTOR_TRAIN_SEEDS + config.scenes)
    examples = list(parallel_map(_scene_example, [(s, config.image_size) for s in seeds], 2))
    log(f"{len(examples)} scenes, {sum(len(e[1]) for e in examples)} objects, {time.perf_counter() - started:.0f} s")

    with yolov5_repo_modules() as yolo:
        from yolov5.utils.loss import ComputeLoss

        root = Path(yolo.__file__).parent
        layout = yaml.safe_load((root / "hub" / HUB_LAYOUT).read_text())
        layout["nc"] = len(CATEGORIES)
        model = yolo.Model(layout, ch=3, nc=len(CATEGORIES))
        model.names = list(CATEGORIES)
        hyp = yaml.safe_load((root.parent / "data" / "hyps" / "hyp.scratch-low.yaml").read_text())
        layers = model.model[-1].nl
        # YOLOv5 train.py's scaling of the loss gains to the number of heads, classes and input size.
        hyp["box"] *= 3 / layers
        hyp["cls"] *= len(CATEGORIES) / 80 * 3 / layers
        hyp["obj"] *= (config.image_size / 640) ** 2 * 3 / layers
        model.hyp = hyp
        model.train()
        loss_fn = ComputeLoss(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=5e-4)
        steps = config.epochs * math.ceil(len(examples) / config.batch)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=steps, pct_start=0.1)
        losses = []
        for epoch in range(config.epochs):
            order = rng.permutation(len(examples))
            total = 0.0
            for first in range(0, len(order), config.batch):
                picked = order[first : first + config.batch]
                images, targets = [], []
                for slot, index in enumerate(picked):
                    pixels, labels = examples[index]
                    labels = labels.copy()
                    if rng.random() < 0.5:  # left-right flip, YOLOv5's fliplr 0.5
                        pixels = pixels[:, ::-1]
                        labels[:, 1] = 1 - labels[:, 1]
                    images.append(torch.from_numpy(np.ascontiguousarray(pixels)))
                    targets.append(torch.cat([torch.full((len(labels), 1), float(slot)), torch.from_numpy(labels)], 1))
                batch = torch.stack(images).permute(0, 3, 1, 2).float() / 255
                loss, _ = loss_fn(model(batch), torch.cat(targets))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach())
            losses.append(total / math.ceil(len(examples) / config.batch))
            log(f"epoch {epoch + 1}/{config.epochs}: loss {losses[-1]:.3f} ({time.perf_counter() - started:.0f} s)")

        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        # What YOLOv5's strip_optimizer leaves, the form MDv5a/b were published in.
        checkpoint = {
            "epoch": -1,
            "best_fitness": None,
            "model": model.half(),
            "ema": None,
            "updates": None,
            "optimizer": None,
            "wandb_id": None,
            "date": dt.datetime(2026, 12, 1).isoformat(),
        }
        output.parent.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, output)
    return {
        "config": asdict(config),
        "layout": HUB_LAYOUT,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_per_epoch": [round(x, 4) for x in losses],
        "seconds": round(time.perf_counter() - started),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tiny, useless model in seconds (checks the steps)")
    parser.add_argument("--out", type=Path, default=OUTPUT, help=f"where to write the checkpoint ({OUTPUT.name})")
    args = parser.parse_args(argv)
    report = train(QUICK if args.quick else TrainConfig(), args.out)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    log(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
