"""Synthetic 12 MP camera-trap photos for the benchmarks, made once and cached.

Decode speed depends on what is in the file: a smooth upscaled scene compresses to a fraction of a
real photo and decodes faster. Real 12 MP trail-camera JPEGs are about 3-5 MB because of sensor
noise and fine texture (grass, leaves). So each photo is a bundled demo scene (demo/samples, with
its animals, so the detector finds real objects) upscaled to 4000x3000, plus luminance grain at two
scales and weaker colour noise, saved by Pillow at quality 92 with 4:2:0 chroma subsampling (what
trail cameras write), with an EXIF block (camera, capture time) as cameras write it. At GRAIN = 5
the files are ~3.8 MB, the middle of the real range (measured: grain 3 → 2.7 MB, 8 → 4.9 MB).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "demo" / "samples"
CACHE = Path(os.environ.get("WILDLIFE_BENCH_CACHE", ROOT / "bench" / ".cache"))

# Bump when the recipe changes, so a cache made by an older recipe is never reused.
RECIPE = 1
# Standard deviation, in 8-bit levels, of the grain: see the module docstring for the file sizes.
GRAIN = 5.0
# Pillow's JPEG quality: trail cameras write "fine" JPEGs around 90-95.
QUALITY = 92
# 4000x3000: a 12 MP 4:3 sensor, the most common trail-camera still size.
SIZE = (4000, 3000)


def make_photo(index: int, path: Path, size: tuple[int, int] = SIZE) -> Path:
    """Write synthetic photo ``index`` (deterministic: scene and noise follow from the index) to ``path``."""
    scenes = sorted(SAMPLES.glob("*.jpg"))
    if not scenes:
        raise FileNotFoundError(f"no demo scenes in {SAMPLES}: the photos are made from them")
    scene = cv2.imread(str(scenes[index % len(scenes)]), cv2.IMREAD_COLOR)
    width, height = size
    big = cv2.resize(scene, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    rng = np.random.default_rng(index)
    # Fine grain (per pixel) and coarse grain (2x2 blobs) in luminance, as sensors show it.
    fine = rng.standard_normal((height, width), dtype=np.float32)
    coarse = cv2.resize(
        rng.standard_normal((height // 2, width // 2), dtype=np.float32),
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    big += (GRAIN * (fine + coarse))[..., None]
    big += (GRAIN / 2) * rng.standard_normal((height, width, 3), dtype=np.float32)  # colour noise
    rgb = np.clip(big, 0, 255).astype(np.uint8)[..., ::-1]
    exif = Image.Exif()
    exif[0x010F] = "BENCH"  # Make
    exif[0x0110] = "Synthetic 12MP trail camera"  # Model
    exif[0x0132] = f"2025:06:{index % 28 + 1:02d} 06:{index % 60:02d}:00"  # DateTime
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, "JPEG", quality=QUALITY, subsampling="4:2:0", exif=exif)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)  # a run stopped halfway never leaves a half-written photo in the cache
    return path


def _make(job: tuple[int, str, tuple[int, int]]) -> str:
    index, path, size = job
    return str(make_photo(index, Path(path), size))


def photos(
    count: int, *, size: tuple[int, int] = SIZE, cache: Path | None = None, workers: int | None = None
) -> list[Path]:
    """``count`` distinct photos (made on first use, in parallel processes), sorted by name."""
    folder = (cache or CACHE) / f"photos-r{RECIPE}-{size[0]}x{size[1]}"
    paths = [folder / f"photo_{index:04d}.jpg" for index in range(count)]
    missing = [(i, str(p), size) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        print(f"making {len(missing)} synthetic {size[0]}x{size[1]} photos in {folder} (once; cached)", flush=True)
        processes = min(len(missing), workers or os.cpu_count() or 1)
        if processes > 1:
            # Forked workers, as PyTorch's DataLoader forks them after CUDA is up: they use no CUDA.
            with ProcessPoolExecutor(processes) as pool:
                list(pool.map(_make, missing))
        else:
            for job in missing:
                _make(job)
    return paths


def shard_folder(sources: Sequence[Path], count: int, folder: Path) -> Path:
    """A folder of ``count`` images, hard links cycling through ``sources``, to plan a shard from.

    Links cost no disk, and a decode costs the same whether or not the file was decoded before
    (nothing is cached between decodes; the bytes come from the page cache either way).
    """
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"image_{i:05d}.jpg": sources[i % len(sources)] for i in range(count)}
    for stale in folder.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for name, source in wanted.items():
        target = folder / name
        if not target.exists():
            try:
                os.link(source, target)
            except OSError:  # another filesystem: copy instead
                target.write_bytes(source.read_bytes())
    return folder
