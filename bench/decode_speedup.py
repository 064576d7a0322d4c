"""``decode_speedup``: our input path vs ultralytics' default loading, images per second on one core.

Both sides take a JPEG file on disk to the letterboxed pixels the model is fed:

- ours: ``storage.read_bytes`` + ``images.decode`` (Pillow parses the header and EXIF, simplejpeg
  decodes) + ``Letterbox.apply`` (MegaDetector's geometry: INTER_LINEAR to ``size`` on the long
  side, padded to the stride). This is what ``detect._prepare`` runs per image, in its two modes:
  the default ``exact_decode`` (full-size decode, MegaDetector's pixels: ``decode_speedup``) and the
  reduced decode (1/2, 1/4 or 1/8 size by DCT scaling: ``decode_speedup_reduced``).
- ultralytics: what ``model.predict(paths)`` runs per image: ``ultralytics.utils.patches.imread``
  (``np.fromfile`` + ``cv2.imdecode`` at full size) + ``LetterBox(size, auto=True, stride=32)``
  (INTER_LINEAR, padded to the minimum stride rectangle; ``predict`` sets ``rect=True`` and a
  batch of same-shaped images gets ``auto=True``). This is how ultralytics loads a folder or a
  single path (``LoadImagesAndVideos``), its faster loader, so the headline figure is conservative.
- ultralytics, list of paths: ``model.predict([path, ...])`` in ultralytics 8.4 does not use that
  loader: ``check_source`` → ``autocast_list`` opens every path with Pillow and applies EXIF
  orientation (a full-size decode and a copy), then ``LoadPilAndNumpy._single_check`` converts to a
  numpy array and to BGR, then the same LetterBox. Reported as ``decode_speedup_vs_predict_list``.

"Per core": OpenCV is held to one thread for both (``cv2.setNumThreads(1)``), and simplejpeg and
Pillow decode on the calling thread, so each side runs on one core and the figure is independent
of how many cores the machine has. The files come from the page cache on both sides (the first
round reads them all once before timing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from bench import timing

# 640 is the pipeline's default image size (the headline figure); 1280 is MegaDetector's, where
# the DCT reduction is only 1/2; 320 is the demo detector's, where it is 1/8.
SIZES = (640, 1280, 320)
# Rounds of all images through each side: 15 rounds of 8 photos is ~1 min on the dev machine,
# and a median of 15 is robust to a few rounds slowed by other work.
ROUNDS = 15


def ours(size: int, *, exact: bool = True) -> Callable[[Path], np.ndarray]:
    from wildlife_common import storage
    from wildlife_gpu.images import decode
    from wildlife_gpu.letterbox import Letterbox, letterbox_stride

    def load(path: Path) -> np.ndarray:
        decoded = decode(storage.read_bytes(str(path)), min_side=None if exact else size)
        return Letterbox.of(decoded.height, decoded.width, size, letterbox_stride(size, 32)).apply(decoded.pixels)

    return load


def ultralytics_default(size: int) -> Callable[[Path], np.ndarray]:
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils.patches import imread

    # BasePredictor.pre_transform for a .pt model and a batch of same-shaped images.
    box = LetterBox((size, size), auto=True, stride=32)

    def load(path: Path) -> np.ndarray:
        image = imread(str(path), flags=cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"OpenCV could not read {path}")
        return box(image=image)

    return load


def ultralytics_path_list(size: int) -> Callable[[Path], np.ndarray]:
    from ultralytics.data.augment import LetterBox
    from ultralytics.data.loaders import LoadPilAndNumpy, autocast_list

    box = LetterBox((size, size), auto=True, stride=32)

    def load(path: Path) -> np.ndarray:
        return box(image=LoadPilAndNumpy._single_check(autocast_list([str(path)])[0]))

    return load


def measure(paths: Sequence[Path], sizes: Sequence[int] = SIZES, rounds: int = ROUNDS) -> dict[str, float]:
    """``decode_speedup`` (at ``sizes[0]``), ``decode_speedup_<size>`` and each side's images/s per core."""
    results: dict[str, float] = {}
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for size in sizes:
            sides = {
                "ours": ours(size),
                "ours reduced": ours(size, exact=False),
                "ultralytics": ultralytics_default(size),
                "ultralytics list": ultralytics_path_list(size),
            }
            for load in sides.values():  # warm-up: page cache, lazy imports, first-call allocations
                load(paths[0])
            seconds = timing.alternate(
                {name: (lambda load=load: [load(p) for p in paths]) for name, load in sides.items()}, rounds
            )
            rate = {name: len(paths) / timing.median(values) for name, values in seconds.items()}
            speedup = rate["ours"] / rate["ultralytics"]
            vs_list = rate["ours"] / rate["ultralytics list"]
            reduced = rate["ours reduced"] / rate["ultralytics"]
            print(
                f"decode {size}px, img/s/core (seconds per round of {len(paths)}): "
                + ", ".join(f"{name} {rate[name]:.1f} ({timing.spread(seconds[name])})" for name in sides)
                + f": x{speedup:.2f} (x{vs_list:.2f} vs the list path; reduced decode x{reduced:.2f})",
                flush=True,
            )
            suffix = "" if size == sizes[0] else f"_{size}"
            results[f"decode_speedup{suffix}"] = round(speedup, 3)
            results[f"decode_speedup_vs_predict_list{suffix}"] = round(vs_list, 3)
            results[f"decode_speedup_reduced{suffix}"] = round(reduced, 3)
            results[f"decode_ours_reduced_images_per_second_per_core_{size}"] = round(rate["ours reduced"], 2)
            results[f"decode_ours_images_per_second_per_core_{size}"] = round(rate["ours"], 2)
            results[f"decode_ultralytics_images_per_second_per_core_{size}"] = round(rate["ultralytics"], 2)
            results[f"decode_ultralytics_list_images_per_second_per_core_{size}"] = round(rate["ultralytics list"], 2)
    finally:
        cv2.setNumThreads(threads)
    return results
