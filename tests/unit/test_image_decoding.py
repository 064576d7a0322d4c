"""Image decoding: every input is decoded right (colour, orientation, size, capture time) or fails with a reason.

Every bad input is built here, in the test, from a good image: no committed fixtures.
"""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps
from PIL.ExifTags import IFD, Base
from wildlife_common import storage
from wildlife_gpu import images
from wildlife_gpu.images import KINDS, MAX_PIXELS, DecodedImage, ImageFailure, decode, load

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def marked(width: int, height: int) -> Image.Image:
    """A grey image with a red top-left quarter and a blue bottom-right one: every orientation differs."""
    pixels = np.full((height, width, 3), 128, np.uint8)
    pixels[: height // 2, : width // 2] = RED
    pixels[height // 2 :, width // 2 :] = BLUE
    return Image.fromarray(pixels)


def noisy_jpeg(width: int = 640, height: int = 480) -> bytes:
    """Texture all over, so that the scan data is long and a cut lands in its middle."""
    rng = np.random.default_rng(7)
    return encode(Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)), quality=90)


def with_exif(orientation: int | None = None, **stamps: str) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[Base.Orientation] = orientation
    for name, value in stamps.items():
        tag = Base[name]
        if tag == Base.DateTime:
            exif[tag] = value
        else:
            exif.get_ifd(IFD.Exif)[tag] = value
    return exif


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but which holds no pixel data at all."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def color_at(decoded: DecodedImage, fy: float, fx: float) -> np.ndarray:
    """The pixel at a fraction of the height and width."""
    height, width = decoded.pixels.shape[:2]
    return decoded.pixels[int(fy * height), int(fx * width)].astype(int)


def near(actual: np.ndarray, expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return bool(np.all(np.abs(actual - np.array(expected)) <= tolerance))


def failure(data: bytes, **options) -> ImageFailure:
    with pytest.raises(ImageFailure) as caught:
        decode(data, **options)
    assert caught.value.kind in KINDS
    assert str(caught.value).startswith(f"{caught.value.kind}: ")
    return caught.value


def assert_rgb(decoded: DecodedImage) -> None:
    pixels = decoded.pixels
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.flags.c_contiguous


@pytest.fixture(scope="module")
def camera_jpeg() -> bytes:
    """A 12 MP (4000 x 3000) JPEG, as camera traps write them."""
    return encode(marked(4000, 3000), quality=90)


@pytest.fixture(scope="module")
def camera_jpeg_turned() -> bytes:
    """The same, stored sideways with EXIF orientation 6 (the camera was turned right)."""
    return encode(marked(4000, 3000), quality=90, exif=with_exif(6))


# Bad input: each fails with its kind and a reason a person understands.


def test_a_zero_byte_file_is_empty() -> None:
    assert str(failure(b"")) == "empty: the file has 0 bytes"


def test_a_file_of_zeros_from_an_interrupted_write_is_empty() -> None:
    assert failure(bytes(4096)).kind == "empty"


def test_a_jpeg_cut_in_the_middle_of_its_scan_data_is_truncated_not_half_grey() -> None:
    data = noisy_jpeg()
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # set explicitly on import
    problem = failure(data[: len(data) // 2])
    assert problem.kind == "unreadable"
    assert str(problem).startswith("unreadable: truncated JPEG")


def test_a_jpeg_cut_even_by_a_few_bytes_is_truncated() -> None:
    data = noisy_jpeg()
    assert str(failure(data[:-200])).startswith("unreadable: truncated JPEG")


def test_a_jpeg_whose_tail_an_interrupted_write_left_as_zeros_is_truncated() -> None:
    # Pillow alone decodes this without complaint, into garbage.
    data = noisy_jpeg()
    half = len(data) // 2
    assert str(failure(data[:half] + bytes(len(data) - half))).startswith("unreadable: truncated JPEG")


def test_a_jpeg_cut_inside_its_header_is_unreadable() -> None:
    problem = failure(noisy_jpeg()[:100])
    assert problem.kind == "unreadable"
    assert "JPEG" in str(problem)


def test_a_truncated_png_is_unreadable() -> None:
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)), "PNG")
    problem = failure(data[: len(data) // 2])
    assert problem.kind == "unreadable"
    assert "PNG" in str(problem)


def test_random_bytes_are_not_an_image() -> None:
    problem = failure(np.random.default_rng(3).bytes(5000))
    assert problem.kind == "not an image"
    assert "not a known image format" in str(problem)


def test_a_text_file_named_jpg_is_not_an_image_and_says_what_it_holds(tmp_path) -> None:
    path = tmp_path / "IMG_0001.JPG"
    path.write_text("<Error><Code>AccessDenied</Code></Error>\n")
    with pytest.raises(ImageFailure) as caught:
        load(str(path))
    assert caught.value.kind == "not an image"
    assert "text" in str(caught.value) and "AccessDenied" in str(caught.value)


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"\x00\x00\x00\x18ftypheic", "HEIC"),
        (b"\x00\x00\x00\x18ftypisom", "video"),
        (b"RIFF\x00\x10\x00\x00AVI LIST", "video"),
    ],
)
def test_videos_and_heic_photos_are_unsupported(head: bytes, named: str) -> None:
    problem = failure(head + bytes(200))
    assert problem.kind == "unsupported"
    assert named in str(problem)


def test_a_failure_kind_outside_the_contract_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        ImageFailure("broken", "no such kind")


# Colour modes: all come out as 8-bit, 3-channel RGB.


def test_a_cmyk_jpeg_decodes_to_the_right_rgb() -> None:
    # (0, 255, 255, 0) is red ink-free of cyan: pure red; Pillow writes Adobe (inverted) CMYK.
    data = encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), quality=95)
    decoded = decode(data)
    assert_rgb(decoded)
    assert near(color_at(decoded, 0.5, 0.5), (255, 0, 0))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_grayscale_image_decodes_to_three_equal_channels(fmt: str) -> None:
    decoded = decode(encode(Image.new("L", (64, 48), 77), fmt))
    assert_rgb(decoded)
    assert near(color_at(decoded, 0.5, 0.5), (77, 77, 77), tolerance=1)


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white() -> None:
    values = np.array([[0, 1000, 32768, 65535]], np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    decoded = decode(data)
    assert_rgb(decoded)
    assert decoded.pixels[0, :, 0].tolist() == [0, 4, 128, 255]  # round(v / 257)
    assert (decoded.pixels[..., 0] == decoded.pixels[..., 2]).all()


def test_png_alpha_is_composited_onto_the_letterbox_grey() -> None:
    pixels = np.zeros((10, 30, 4), np.uint8)
    pixels[:, :10] = (*RED, 255)  # opaque
    pixels[:, 10:20] = (*RED, 0)  # transparent: the colour underneath must not show
    pixels[:, 20:] = (200, 200, 200, 128)  # half transparent
    decoded = decode(encode(Image.fromarray(pixels, "RGBA"), "PNG"))
    assert_rgb(decoded)
    assert decoded.pixels[5, 5].tolist() == list(RED)
    assert decoded.pixels[5, 15].tolist() == [114, 114, 114]
    assert near(decoded.pixels[5, 25].astype(int), (157, 157, 157), tolerance=2)  # halfway 114 → 200


def test_a_palette_png_decodes_to_its_colours() -> None:
    image = Image.new("P", (20, 10))
    image.putpalette([*RED, *GREEN, *BLUE] + [0] * (256 * 3 - 9))
    image.paste(1, (10, 0, 20, 10))
    decoded = decode(encode(image, "PNG"))
    assert_rgb(decoded)
    assert decoded.pixels[5, 5].tolist() == list(RED)
    assert decoded.pixels[5, 15].tolist() == list(GREEN)


# Size limits: refused from the header, before any pixel is decoded.


def test_a_decompression_bomb_fails_fast_from_its_header() -> None:
    # 900 MP claimed; the file holds no pixel data, so decoding would fail as truncated instead.
    start = time.perf_counter()
    problem = failure(png_header_only(30_000, 30_000))
    assert str(problem) == "too large: 900.0 megapixels, limit 100 megapixels"
    assert time.perf_counter() - start < 0.5


def test_an_image_above_the_limit_but_below_pillows_refusal_is_refused_by_our_check() -> None:
    with warnings.catch_warnings():  # Pillow warns above its limit; our check is what refuses
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        problem = failure(png_header_only(12_000, 10_000))
    assert str(problem) == "too large: 120.0 megapixels (12000x10000), limit 100 megapixels"


def test_pillows_bomb_warning_raised_as_an_error_is_a_too_large_failure() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        problem = failure(png_header_only(12_000, 10_000), max_pixels=150_000_000)
    assert problem.kind == "too large"
    assert "120.0 megapixels" in str(problem)


def test_the_pixel_limit_is_per_call_and_leaves_pillows_global_alone() -> None:
    problem = failure(noisy_jpeg(), max_pixels=100_000)
    assert str(problem) == "too large: 0.3 megapixels (640x480), limit 0.1 megapixels"
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS
    assert decode(noisy_jpeg()).width == 640


# Orientation: pixels turned upright, width and height those of the upright image.


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_exif_transpose(orientation: int) -> None:
    data = encode(marked(40, 20), "PNG", exif=with_exif(orientation))  # lossless: exact comparison
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    decoded = decode(data)
    assert_rgb(decoded)
    assert np.array_equal(decoded.pixels, expected)
    assert (decoded.height, decoded.width) == expected.shape[:2]


@pytest.mark.parametrize(
    # Where the stored image's red top-left and blue bottom-right corners end up.
    ("orientation", "shape", "red_at", "blue_at"),
    [
        (3, (300, 400), (0.75, 0.75), (0.25, 0.25)),  # upside down
        (6, (400, 300), (0.25, 0.75), (0.75, 0.25)),  # turned right: red goes top-right
        (8, (400, 300), (0.75, 0.25), (0.25, 0.75)),  # turned left: red goes bottom-left
    ],
)
def test_an_exif_rotated_jpeg_is_turned_upright(orientation, shape, red_at, blue_at) -> None:
    decoded = decode(encode(marked(400, 300), quality=95, exif=with_exif(orientation)))
    assert_rgb(decoded)
    assert decoded.pixels.shape[:2] == shape
    assert (decoded.height, decoded.width) == shape
    assert near(color_at(decoded, *red_at), RED)
    assert near(color_at(decoded, *blue_at), BLUE)


def test_a_reduced_decode_keeps_the_orientation(camera_jpeg_turned: bytes) -> None:
    decoded = decode(camera_jpeg_turned, min_side=640)
    assert decoded.pixels.shape == (1000, 750, 3)  # 1/4 of the upright 3000 x 4000
    assert (decoded.width, decoded.height) == (3000, 4000)
    assert decoded.scale == 0.25
    assert near(color_at(decoded, 0.25, 0.75), RED)
    assert near(color_at(decoded, 0.75, 0.25), BLUE)


def test_garbled_exif_orientation_is_ignored() -> None:
    decoded = decode(encode(marked(40, 20), quality=95, exif=with_exif(orientation=9)))
    assert decoded.pixels.shape[:2] == (20, 40)


# Reduced-size decode (DCT scaling).


@pytest.mark.parametrize(("min_side", "shape"), [(640, (750, 1000)), (1280, (1500, 2000)), (None, (3000, 4000))])
def test_a_12_mp_jpeg_is_decoded_at_the_smallest_size_that_keeps_min_side(camera_jpeg, min_side, shape) -> None:
    decoded = decode(camera_jpeg, min_side=min_side)
    assert_rgb(decoded)
    assert decoded.pixels.shape[:2] == shape
    assert (decoded.width, decoded.height) == (4000, 3000)  # boxes normalize by the full size
    assert decoded.scale == shape[1] / 4000
    assert near(color_at(decoded, 0.25, 0.25), RED)
    assert near(color_at(decoded, 0.75, 0.75), BLUE)


@pytest.mark.parametrize("min_side", [640, 1280])
def test_a_640x480_image_is_never_reduced_or_upscaled(min_side: int) -> None:
    decoded = decode(noisy_jpeg(640, 480), min_side=min_side)
    assert decoded.pixels.shape == (480, 640, 3)
    assert decoded.scale == 1.0


def test_odd_sizes_are_rounded_up_like_libjpeg() -> None:
    decoded = decode(noisy_jpeg(1283, 963), min_side=640)
    assert decoded.pixels.shape[:2] == (482, 642)  # 1/2, rounded up; 1/4 would be 321 < 640
    assert (decoded.width, decoded.height) == (1283, 963)


def test_other_formats_are_decoded_at_full_size() -> None:
    decoded = decode(encode(marked(1400, 1000), "PNG"), min_side=640)
    assert decoded.pixels.shape[:2] == (1000, 1400)
    assert decoded.scale == 1.0


def test_a_jpeg_that_libjpeg_warns_about_is_still_decoded() -> None:
    # Some camera firmware leaves stray bytes between segments; libjpeg warns, the image is fine.
    data = encode(marked(64, 48), quality=95)
    scan = data.index(b"\xff\xda")
    decoded = decode(data[:scan] + b"\x00\x00" + data[scan:], min_side=32)
    assert decoded.pixels.shape[:2] == (24, 32)
    assert near(color_at(decoded, 0.25, 0.25), RED)


# Capture time.


def test_the_exif_capture_time_is_parsed() -> None:
    data = encode(marked(64, 48), exif=with_exif(DateTimeOriginal="2024:05:01 06:30:00"))
    assert decode(data).datetime == datetime(2024, 5, 1, 6, 30)


def test_the_capture_time_falls_back_to_digitized_then_to_datetime() -> None:
    digitized = with_exif(DateTimeDigitized="2024:05:02 07:00:00", DateTime="2024:06:01 00:00:00")
    assert decode(encode(marked(64, 48), exif=digitized)).datetime == datetime(2024, 5, 2, 7)
    assert decode(encode(marked(64, 48), exif=with_exif(DateTime="2024:06:01 12:00:01"))).datetime == datetime(
        2024, 6, 1, 12, 0, 1
    )


@pytest.mark.parametrize("garbled", ["    :  :     :  :  ", "0000:00:00 00:00:00", "2024:13:45 99:00:00", "yesterday"])
def test_a_garbled_exif_date_is_none_not_a_failure(garbled: str) -> None:
    decoded = decode(encode(marked(64, 48), exif=with_exif(DateTimeOriginal=garbled)))
    assert decoded.datetime is None
    assert decoded.pixels.shape[:2] == (48, 64)


def test_an_image_without_exif_has_no_capture_time() -> None:
    assert decode(encode(marked(64, 48))).datetime is None


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's own note; the pixels are what matter
def test_a_damaged_exif_block_keeps_the_pixels() -> None:
    data = encode(marked(64, 48), quality=95)
    payload = b"Exif\x00\x00" + b"MM\x00*\xff\xff\xff\xf0garbage"
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    decoded = decode(data[:2] + app1 + data[2:])
    assert decoded.datetime is None
    assert decoded.pixels.shape[:2] == (48, 64)


# load(): storage plus decode.


def test_load_reads_a_local_file(tmp_path) -> None:
    path = tmp_path / "IMG_0002.JPG"
    path.write_bytes(encode(marked(64, 48), exif=with_exif(DateTimeOriginal="2024:05:01 06:30:00")))
    decoded = load(str(path), min_side=32)
    assert decoded.pixels.shape[:2] == (24, 32)
    assert decoded.datetime == datetime(2024, 5, 1, 6, 30)


def test_a_file_deleted_after_listing_is_missing(tmp_path) -> None:
    with pytest.raises(ImageFailure) as caught:
        load(str(tmp_path / "gone.jpg"))
    problem = caught.value
    assert problem.kind == "missing"
    assert str(problem).startswith("missing: ") and "gone.jpg" in str(problem)


def test_an_s3_object_deleted_after_listing_is_missing(monkeypatch) -> None:
    def deleted(uri: str) -> bytes:
        raise FileNotFoundError(uri)  # what storage.read_bytes raises for NoSuchKey

    monkeypatch.setattr(storage, "read_bytes", deleted)
    with pytest.raises(ImageFailure) as caught:
        load("s3://traps/site-a/IMG_0003.JPG")
    problem = caught.value
    assert problem.kind == "missing"
    assert "s3://traps/site-a/IMG_0003.JPG" in str(problem)


def test_load_lets_errors_that_are_not_the_images_fault_through(monkeypatch) -> None:
    def denied(uri: str) -> bytes:
        raise PermissionError(uri)

    monkeypatch.setattr(storage, "read_bytes", denied)
    with pytest.raises(PermissionError):
        load("s3://traps/site-a/IMG_0004.JPG")


# Concurrency.


def test_decoding_from_several_threads_gives_the_same_results(camera_jpeg, camera_jpeg_turned) -> None:
    inputs = [(camera_jpeg, 640), (camera_jpeg_turned, 640), (noisy_jpeg(), 640), (camera_jpeg, 1280)] * 3
    inputs += [(png_header_only(30_000, 30_000), 640), (noisy_jpeg()[:9000], 640)]

    def run(item: tuple[bytes, int]) -> tuple:
        try:
            decoded = decode(item[0], min_side=item[1])
        except ImageFailure as problem:
            return (str(problem),)
        return decoded.pixels.shape, decoded.width, decoded.height, int(decoded.pixels.sum())

    serial = [run(item) for item in inputs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(run, inputs)) == serial


def test_min_side_must_be_positive() -> None:
    with pytest.raises(ValueError):
        decode(noisy_jpeg(), min_side=0)


def test_the_module_keeps_the_default_limit_near_camera_sensors() -> None:
    assert 40_000_000 < images.MAX_PIXELS <= 200_000_000
