"""Camera-trap image bytes → RGB pixels, full-resolution size and capture time, or a clear failure.

This is the hot path of detection: every image of a shard passes through :func:`decode`, called
from several threads at once (a thread pool overlaps reading and decoding with inference).

- JPEG, nearly every camera-trap photo, is decoded by simplejpeg (libjpeg-turbo) with DCT scaling:
  when the detector needs a long side of ``min_side`` pixels, a 12 MP photo is decoded straight to
  1/2, 1/4 or 1/8 of its size, never upscaled. Pillow parses only the header (format, size, EXIF).
- PNG, TIFF, BMP, GIF and WebP are decoded by Pillow at full size.
- EXIF orientation is applied to the pixels, so boxes are in the frame people see;
  ``width``/``height`` are that frame's full-resolution size, for normalizing boxes.
- Every bad input raises :class:`ImageFailure`, whose text becomes the image's ``failure`` in the
  results table: ``"unreadable: truncated JPEG: …"``. Nothing is ever silently half-decoded.
- The pixel limit is checked from the header, before any pixel is decoded.

Measured on the 2-core dev machine (one core free), 4000x3000 JPEG at quality 90 with texture and
sensor noise (2.3 MB), both paths interleaved, median of 30 decodes to a writable RGB array:

=====  ==========================  =======================================
scale  Pillow ``draft`` + ``load``  Pillow header/EXIF parse + simplejpeg
=====  ==========================  =======================================
1/4    26.2 ms                     24.0 ms
1/2    39.0 ms                     28.2 ms
1/1    116 ms                      37.2 ms (crops re-decode at full size)
=====  ==========================  =======================================

Both release the GIL, so decoding threads run in parallel. Turning a 1000x750 decode upright
(EXIF orientation 6): numpy ``rot90`` + copy 4.0 ms, ``cv2.rotate`` 0.3 ms, so OpenCV (already in
the image via ultralytics) applies the orientation.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import simplejpeg
from PIL import (  # noqa: F401  (the plugin imports register the formats we open, see FORMATS)
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    MpoImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)
from PIL.ExifTags import IFD, Base
from wildlife_common import storage

# Camera traps write 3 to ~40 MP (the largest sensors, and "interpolated" 40-48 MP modes, are
# still below 50 MP); 100 MP leaves 2x headroom for stitched panoramas while refusing headers
# that claim gigapixels. A 100 MP RGB decode holds 300 MB, so a few threads decoding at once stay
# within the GPU task's memory.
MAX_PIXELS = 100_000_000

# Pillow's own decompression-bomb check reads the process-wide Image.MAX_IMAGE_PIXELS. Changing a
# global per call would race between decoding threads, so it is set once, here, to our default:
# Pillow then warns above it and refuses above twice it, for any code in this process. decode()
# does its own check per call against its ``max_pixels`` from the header, before decoding, and
# maps Pillow's DecompressionBombError (and the warning, where warnings are errors) to "too large".
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Also process-wide: a truncated file must raise, never decode with its missing part grey. False is
# Pillow's default; it is set on purpose so the rule is visible. JPEG truncation is also caught
# independently of this flag, by simplejpeg's strict mode.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# The formats we open: what camera traps and their download tools write (see
# wildlife_common.images.IMAGE_EXTENSIONS) plus GIF. Naming them keeps Pillow's long tail of
# plugins (EPS runs Ghostscript, and weak-signature formats like TGA can claim random bytes)
# away from untrusted input; the plugins are imported above so Image.open never lazily imports
# the rest, from several threads at once. The JPEG opener also opens MPO, the multi-picture JPEG
# some cameras write (it has no opener of its own).
FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "GIF", "WEBP")
JPEG_FORMATS = frozenset({"JPEG", "MPO"})

# DCT scaling factors that keep the whole image, largest first. libjpeg-turbo also scales by n/8,
# but powers of two keep the pixel grid aligned with the full-resolution one.
REDUCTIONS = (8, 4, 2)

# Where a PNG, GIF or WebP is transparent it is composited onto this flat grey rather than
# dropping alpha (whatever colour hides under transparent pixels is arbitrary, often black
# or leftovers). 114 is the grey the detector's letterbox pads with, so transparent areas
# look like padding, which the model has learned to ignore.
ALPHA_BACKGROUND = (114, 114, 114, 255)

# Bytes of the content quoted in a "not an image" failure, enough to recognise an HTML error
# page or a CSV without flooding the results table.
QUOTE_BYTES = 40

KINDS = frozenset({"missing", "empty", "unreadable", "not an image", "too large", "unsupported"})

# EXIF orientation (1-8) → the OpenCV operations that turn the stored pixels into the view people
# see; the same mapping as Pillow's ImageOps.exif_transpose. 5-8 swap width and height.
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: cv2.flip(a, 1),  # mirrored left-right
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),  # mirrored top-bottom
    5: cv2.transpose,  # mirrored along the main diagonal
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),  # camera held turned right
    7: lambda a: cv2.flip(cv2.transpose(a), -1),  # mirrored along the other diagonal
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),  # camera held turned left
}

# Recognisable files, by their first bytes: (offset, magic, what it is, why it is not processed).
# An empty reason: a format we read, so Pillow failing on it means the file is damaged.
_CONVERT = "convert it to JPEG"
_VIDEO = "only still images are processed (extract frames from the video to analyse it)"
_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\xff\xd8\xff", "JPEG", ""),
    (0, b"\x89PNG\r\n\x1a\n", "PNG", ""),
    (0, b"II*\x00", "TIFF", ""),
    (0, b"MM\x00*", "TIFF", ""),
    (0, b"GIF8", "GIF", ""),
    (0, b"BM", "BMP", ""),
    (8, b"WEBP", "WebP", ""),
    (8, b"AVI ", "AVI video", _VIDEO),
    (4, b"ftypheic", "HEIC image", _CONVERT),
    (4, b"ftypheix", "HEIC image", _CONVERT),
    (4, b"ftypmif1", "HEIF image", _CONVERT),
    (4, b"ftypavif", "AVIF image", _CONVERT),
    (4, b"ftypcrx ", "Canon CR3 raw photo", "use the JPEG the camera wrote beside it, or convert it"),
    (4, b"ftyp", "MP4/MOV video", _VIDEO),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000 image", _CONVERT),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL image", _CONVERT),
    (0, b"\xff\x0a", "JPEG XL image", _CONVERT),
    (0, b"8BPS", "Photoshop document", _CONVERT),
    (0, b"%PDF", "PDF document", "only images are processed"),
)

_EXIF_DATE = re.compile(r"(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_PILLOW_BOMB = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+) pixels")


class ImageFailure(Exception):
    """An image that cannot be processed. ``str(e)`` is the row's ``failure``: ``'<kind>: <detail>'``.

    Attributes:
        kind: one of ``KINDS``: "missing", "empty", "unreadable", "not an image", "too large",
            "unsupported".
        detail: what a person needs to know to understand or fix it.
    """

    def __init__(self, kind: str, detail: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown image failure kind {kind!r}")
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class DecodedImage:
    """One decoded image.

    Attributes:
        pixels: ``H x W x 3`` uint8 RGB, C-contiguous, EXIF orientation applied; possibly reduced
            by DCT scaling (see ``scale``).
        width: full-resolution width after orientation (what users see), to normalize boxes.
        height: full-resolution height after orientation.
        datetime: EXIF capture time (DateTimeOriginal, else DateTimeDigitized, else DateTime),
            naive as cameras write it; None when absent or garbled.
    """

    pixels: np.ndarray
    width: int
    height: int
    datetime: dt.datetime | None

    @property
    def scale(self) -> float:
        """Decoded width over full-resolution width: 1.0 at full size, 0.25 for a 1/4 decode."""
        return self.pixels.shape[1] / self.width


def load(uri: str, *, min_side: int | None = None, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Read an image from S3 or a local path and decode it (see :func:`decode`).

    Raises:
        ImageFailure: kind "missing" when the file or object is gone (deleted or moved between
            listing and reading), or any failure of :func:`decode`.
        Exception: errors that are not the image's fault (access denied, S3 throttling beyond
            retries) pass through, so the shard fails and is retried instead of recording them.
    """
    try:
        data = storage.read_bytes(uri)
    except FileNotFoundError as error:
        raise ImageFailure("missing", f"{uri} no longer exists (deleted or moved after the run listed it)") from error
    return decode(data, min_side=min_side, max_pixels=max_pixels)


def decode(data: bytes, *, min_side: int | None = None, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Decode image bytes to RGB pixels with EXIF orientation applied.

    Safe to call from several threads at once: it keeps no state between calls.

    Args:
        data: the whole file.
        min_side: when set, a JPEG may be decoded at 1/2, 1/4 or 1/8 of its size (the largest
            reduction whose longer side is still >= ``min_side``, e.g. the detector's 640 or
            1280); never upscaled. Other formats are decoded at full size.
        max_pixels: refuse images with more pixels than this, judged from the header.

    Returns:
        The pixels, the full-resolution size after orientation and the EXIF capture time.

    Raises:
        ImageFailure: for every bad input: empty, not an image, unsupported format, damaged or
            truncated, or above ``max_pixels``.
    """
    if min_side is not None and min_side < 1:
        raise ValueError(f"min_side must be a positive number of pixels, not {min_side}")
    if not data:
        raise ImageFailure("empty", "the file has 0 bytes")
    with _open(data, max_pixels) as image:
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageFailure("unreadable", f"the {image.format} header says the image is {width}x{height} pixels")
        if width * height > max_pixels:
            raise ImageFailure(
                "too large",
                f"{width * height / 1e6:.1f} megapixels ({width}x{height}), limit {max_pixels / 1e6:g} megapixels",
            )
        if image.format in JPEG_FORMATS:
            # The header is already parsed, so reading EXIF costs microseconds and no decode.
            orientation, taken = _exif(image)
            pixels = _decode_jpeg(data, image, _reduction(width, height, min_side), max_pixels)
        else:
            pixels = _to_rgb(_load(image, max_pixels, len(data)))
            orientation, taken = _exif(image)  # after load: a PNG may keep its eXIf chunk after the pixels
    if orientation in _ORIENT:
        pixels = _ORIENT[orientation](pixels)
        if orientation >= 5:
            width, height = height, width
    return DecodedImage(pixels=np.ascontiguousarray(pixels), width=width, height=height, datetime=taken)


def _open(data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Parse the header (format, size, metadata) without decoding pixels."""
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _pillow_bomb(error, max_pixels) from error
    except UnidentifiedImageError as error:
        raise _unidentified(data) from error
    except MemoryError:
        raise
    except Exception as error:  # plugins raise OSError, SyntaxError, struct.error ... on a bad header
        raise _unidentified(data, error) from error


def _reduction(width: int, height: int, min_side: int | None) -> int:
    """The largest DCT reduction (8, 4, 2, else 1) that keeps the longer side >= ``min_side``."""
    if min_side is None:
        return 1
    long_side = max(width, height)
    for factor in REDUCTIONS:
        if -(-long_side // factor) >= min_side:  # libjpeg rounds scaled sizes up
            return factor
    return 1


def _decode_jpeg(data: bytes, image: ImageFile.ImageFile, factor: int, max_pixels: int) -> np.ndarray:
    """simplejpeg's DCT-scaled decode; Pillow's verdict on files libjpeg warns about."""
    width, height = image.size
    try:
        # strict: libjpeg's warnings raise, so data that ends early never comes back grey.
        # The minimum size selects exactly 1/factor: libjpeg's scaled size is ceil(size / factor).
        return simplejpeg.decode_jpeg(
            data, colorspace="RGB", min_width=-(-width // factor), min_height=-(-height // factor), strict=True
        )
    except ValueError as error:
        if "Premature end" in str(error):
            # Cut short, or a tail of zeros from an interrupted write (Pillow decodes the latter
            # without complaint, grey and garbled).
            raise _truncated("JPEG", len(data)) from error
        # Other warnings ("extraneous bytes before marker", written by some camera firmware) are
        # usually harmless, and Pillow ignores them: let it decide and decode.
    if factor > 1:
        image.draft("RGB", (width // factor, height // factor))
    return _to_rgb(_load(image, max_pixels, len(data)))


def _load(image: ImageFile.ImageFile, max_pixels: int, size: int) -> Image.Image:
    """Decode the pixels with Pillow, inside the try, so that damage surfaces as a failure."""
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _pillow_bomb(error, max_pixels) from error
    except MemoryError:
        raise
    except Exception as error:  # OSError, ValueError, SyntaxError, zlib.error, EOFError ... from a plugin
        if "truncated" in str(error):
            raise _truncated(image.format or "image", size) from error
        raise ImageFailure("unreadable", f"damaged {image.format} data ({type(error).__name__}: {error})") from error
    return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode → ``H x W x 3`` uint8 RGB."""
    mode = image.mode
    if mode == "RGB":
        return np.array(image)  # a writable copy; np.asarray would be read-only
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        # 16-bit grey (PNG, TIFF; older Pillow reads it as 32-bit "I"). Scale 0..65535 to 0..255
        # with rounding (65535 / 255 = 257); converting to "L" would clip everything above 255 to white.
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        grey = ((values + 128) // 257).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    if mode == "F":
        raise ImageFailure("unsupported", "32-bit floating-point pixels (scientific data, not a photo)")
    if image.has_transparency_data:
        background = Image.new("RGBA", image.size, ALPHA_BACKGROUND)
        return np.array(Image.alpha_composite(background, image.convert("RGBA")).convert("RGB"))
    try:
        return np.array(image.convert("RGB"))  # L, 1, P, CMYK, YCbCr ...
    except ValueError as error:
        raise ImageFailure("unsupported", f"{image.format} pixels in mode {mode} cannot be shown as RGB") from error


def _exif(image: Image.Image) -> tuple[int, dt.datetime | None]:
    """EXIF orientation (1 when absent or invalid) and capture time; garbled EXIF is no EXIF."""
    try:
        exif = image.getexif()
        orientation = exif.get(Base.Orientation, 1)
        sub = exif.get_ifd(IFD.Exif)
        stamps = [
            sub.get(Base.DateTimeOriginal) or exif.get(Base.DateTimeOriginal),
            sub.get(Base.DateTimeDigitized) or exif.get(Base.DateTimeDigitized),
            exif.get(Base.DateTime),
        ]
    except MemoryError:
        raise
    except Exception:  # a damaged EXIF block must not cost the image: keep the pixels, drop the metadata
        return 1, None
    if not isinstance(orientation, int) or orientation not in range(1, 9):
        orientation = 1
    return orientation, next((t for t in map(_exif_datetime, stamps) if t is not None), None)


def _exif_datetime(value: Any) -> dt.datetime | None:
    """``"2024:05:01 06:30:00"`` → ``datetime(2024, 5, 1, 6, 30)``; None when absent or garbled."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    match = _EXIF_DATE.match(value.strip("\x00 \t\r\n"))
    if not match:
        return None  # "    :  :     :  :  ", an unset clock, or free text
    try:
        year, month, day, hour, minute, second = map(int, match.groups())
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00", month 13 ...
        return None


def _truncated(kind: str, size: int) -> ImageFailure:
    return ImageFailure(
        "unreadable",
        f"truncated {kind}: the image data stops early, at {size} bytes (the file was cut short while "
        "being written or copied)",
    )


def _pillow_bomb(error: Exception, max_pixels: int) -> ImageFailure:
    """Pillow's decompression-bomb refusal, in our words."""
    match = _PILLOW_BOMB.search(str(error))
    if not match:
        return ImageFailure("too large", f"{error}")
    pixels, limit = int(match[1]), min(int(match[2]), max_pixels)
    return ImageFailure("too large", f"{pixels / 1e6:.1f} megapixels, limit {limit / 1e6:g} megapixels")


def _unidentified(data: bytes, error: Exception | None = None) -> ImageFailure:
    """Why Pillow could not open the file, from what its first bytes look like."""
    for offset, magic, name, why_not in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if why_not:
                return ImageFailure("unsupported", f"a {name}: {why_not}")
            if error is not None and "truncated" in str(error).lower():
                return ImageFailure(
                    "unreadable", f"truncated {name}: the file ends inside the header, at {len(data)} bytes"
                )
            reason = f" ({type(error).__name__}: {error})" if error is not None else ""
            return ImageFailure("unreadable", f"the {name} header is damaged{reason}")
    if not data.strip(b"\x00"):
        return ImageFailure(
            "empty", f"all {len(data)} bytes are zero (the camera or a copy stopped before writing the image)"
        )
    text = _text_start(data)
    if text is not None:
        return ImageFailure("not an image", f"the file holds text, not image data (it starts {text!r})")
    return ImageFailure("not an image", f"not a known image format (it starts with bytes {data[:8].hex(' ')})")


def _text_start(data: bytes) -> str | None:
    """The first QUOTE_BYTES of the file when they read as text (HTML error page, CSV, notes), else None."""
    head = data[:QUOTE_BYTES]
    for cut in range(4):  # a UTF-8 character is at most 4 bytes: drop one split at the end
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return text.strip() if all(c.isprintable() or c in "\t\r\n" for c in text) else None
    return None
