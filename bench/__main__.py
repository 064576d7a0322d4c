"""``python -m bench`` (``make bench``): the CPU figures; ``--gpu`` (``make bench-gpu``): the GPU ones.

Each run merges its figures into ``bench/results.json`` (name → value), so a CPU run here and a GPU
run elsewhere fill one file; ``machine`` / ``machine_gpu`` say where each set was measured.
``--gpu`` runs only the GPU figures: it has to fit a few minutes on a lent GPU machine, and the
CPU figures are the dev machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# ultralytics reads this when first imported: never probe the network (the machines are offline).
os.environ.setdefault("YOLO_OFFLINE", "1")

from bench import (
    decode_speedup,
    gpu_wait_fraction,
    megadetector_speedup,
    photos,
    shard_speedup,
    speciesnet_speedup,
    timing,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
# How many photos the decode figure cycles through: 8 distinct scenes (day and night, 1-3
# animals) averages out content, and a round of 8 is short enough for many rounds.
DECODE_PHOTOS = 8


def write(results: dict, out: Path) -> None:
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(results)
    out.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(results)} figures to {out}", flush=True)


def cpu(args: argparse.Namespace, work: Path) -> dict:
    results: dict = {"machine": {**timing.machine(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    sources = photos.photos(max(DECODE_PHOTOS, args.images), size=args.photo_size, cache=args.cache)
    sizes = args.image_sizes or decode_speedup.SIZES
    results.update(decode_speedup.measure(sources[:DECODE_PHOTOS], sizes=sizes, rounds=args.rounds * 3))
    weights = shard_speedup.MODELS / "detector.pt"
    if not weights.exists():
        print(f"shard figures skipped: {weights} missing (make demo-models)", flush=True)
        return results
    folder = photos.shard_folder(sources, args.images, work / f"shard-{args.images}")
    figures, markers = shard_speedup.measure(
        folder,
        weights,
        work,
        image_size=args.image_sizes[-1] if args.image_sizes else shard_speedup.IMAGE_SIZE,
        rounds=args.rounds,
        crops=not args.no_crops,
    )
    results.update(figures)
    results.update(gpu_wait_fraction.from_markers(markers))
    if megadetector_speedup.WEIGHTS.exists():
        count = min(args.images, megadetector_speedup.IMAGES)
        md_folder = photos.shard_folder(sources, count, work / f"megadetector-{count}")
        md_size = args.image_sizes[-1] if args.image_sizes else megadetector_speedup.IMAGE_SIZE
        results.update(
            megadetector_speedup.measure(
                md_folder, work, image_size=md_size, rounds=min(args.rounds, megadetector_speedup.ROUNDS)
            )
        )
    count = min(args.images, speciesnet_speedup.PHOTOS)
    sn_folder = photos.shard_folder(sources, count, work / f"speciesnet-{count}")
    results.update(speciesnet_speedup.measure(sn_folder, work, rounds=min(args.rounds, speciesnet_speedup.ROUNDS)))
    return results


def _size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--gpu", action="store_true", help="the GPU figures only (needs CUDA; skips cleanly without)")
    parser.add_argument("--images", type=int, default=None, help="images in the benchmark shard")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds of each side (decode runs 3x this)")
    parser.add_argument("--no-crops", action="store_true", help="skip shard_speedup_with_crops")
    # For smoke runs (tests/unit/test_bench.py): small photos and sizes, to check the code, not speed.
    parser.add_argument("--photo-size", type=_size, default=photos.SIZE, help=argparse.SUPPRESS)
    parser.add_argument("--image-sizes", type=int, nargs="+", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (merged into)")
    parser.add_argument("--cache", type=Path, default=photos.CACHE, help="photos, run folders and models")
    args = parser.parse_args(argv)
    # Run folders of each photo size apart, so a smoke run never plans over the 12 MP images.
    args.work = args.cache / f"work-{args.photo_size[0]}x{args.photo_size[1]}"
    args.work.mkdir(parents=True, exist_ok=True)
    if args.gpu:
        from bench import gpu

        figures = gpu.measure(
            args.work, cache=args.cache, images=args.images or gpu.IMAGES, rounds=args.rounds or gpu.ROUNDS
        )
        if figures:
            write({"machine_gpu": timing.machine(), **figures}, args.out)
        return 0
    args.images = args.images or shard_speedup.IMAGES
    args.rounds = args.rounds or shard_speedup.ROUNDS
    write(cpu(args, args.work), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
