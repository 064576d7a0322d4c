"""Which listed files are camera-trap images."""

from __future__ import annotations

import posixpath

# What camera traps and their download tools write. RAW formats are left out: ultralytics and
# Pillow cannot decode them, and traps that shoot RAW also write a JPEG.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})


def is_image(path: str) -> bool:
    """Whether a path names an image file, by extension, case-insensitively.

    Hidden files are skipped: macOS copies leave ``._IMG_0001.JPG`` AppleDouble files next to
    every photo, and they are metadata, not images.
    """
    name = posixpath.basename(path.replace("\\", "/"))
    if not name or name.startswith("."):
        return False
    return posixpath.splitext(name)[1].lower() in IMAGE_EXTENSIONS
