"""Synthetic camera-trap scenes, each drawn from a seed together with its ground truth.

A scene is a landscape photo as a trail camera takes it: textured ground with grass, bushes and a
tree line, day light or a grayscale infrared night shot with the flash's fall-off, an optional
black information strip along the bottom, and 0-4 objects: animals of six species, people and
vehicles, in side view, of varied size and position, sometimes partly hidden behind grass or a
bush in front of them. ``make_scene(seed)`` is deterministic: the same seed and size always give
the same pixels and the same ground truth (boxes in pixels, category, species for animals).

The drawing is deliberately simple (PIL shapes, numpy noise); the species differ in shape, size,
colour and coat pattern so that a small classifier can tell them apart, as it would real ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

CATEGORIES = ("animal", "person", "vehicle")
"""Detector classes in MegaDetector's order: the class index is the position (0 animal, 1 person, 2 vehicle)."""

SPECIES = ("deer", "fox", "hare", "spotted_cat", "wild_boar", "zebra")
"""Animal species, in the classifier's class-index order (alphabetical)."""

KINDS = (*SPECIES, "person", "vehicle")
"""Everything a scene can contain: the species (category animal), person and vehicle."""

# Seeds are handed out in blocks of a million, far more than any use needs, so that the scenes a
# model was trained on never reappear in the samples or the evaluation.
DETECTOR_TRAIN_SEEDS = 0
CLASSIFIER_TRAIN_SEEDS = 1_000_000
SAMPLE_SEEDS = 8_000_000
EVAL_SEEDS = 9_000_000

TRAIN_SIZE = (1024, 768)
"""Width and height of generated training and evaluation scenes: a 4:3 camera-trap frame."""

NIGHT_FRACTION = 0.35
"""Share of night (infrared) scenes: about a third of camera-trap triggers happen in the dark."""

CROP_MARGIN = 0.1
"""Crops for the classifier are the box grown by this fraction of its size on each side (as the pipeline crops)."""

OBJECT_COUNT_WEIGHTS = (0.12, 0.35, 0.25, 0.16, 0.12)
"""Probability of 0, 1, 2, 3 and 4 objects in a scene: some empty triggers, mostly one or two."""

DENSE_COUNT_WEIGHTS = (0.06, 0.2, 0.26, 0.26, 0.22)
"""Busier scenes (2.4 objects on average instead of 1.8) for training the detector: more examples per step."""

_SS = 2
"""Objects are drawn at twice their size and reduced, which gives them anti-aliased edges."""


@dataclass(frozen=True)
class SceneObject:
    """One object in a scene with its ground truth.

    Attributes:
        category: ``animal``, ``person`` or ``vehicle``.
        species: the species for an animal, else None.
        bbox: ``(x, y, width, height)`` in pixels, top-left origin, inside the image.
    """

    category: str
    species: str | None
    bbox: tuple[int, int, int, int]

    @property
    def kind(self) -> str:
        """The species of an animal, else the category."""
        return self.species or self.category


@dataclass
class Scene:
    """A generated image and what is in it.

    Attributes:
        image: the RGB picture.
        objects: the objects in it, far to near.
        seed: the seed it was drawn from.
        night: whether it is an infrared night shot.
        timestamp: when the camera fired (shown in the information strip, if the scene has one).
        camera: the camera's number.
    """

    image: Image.Image
    objects: list[SceneObject] = field(default_factory=list)
    seed: int = 0
    night: bool = False
    timestamp: datetime = datetime(2025, 1, 1)
    camera: int = 1

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels."""
        return self.image.size

    def ground_truth(self) -> dict:
        """The ground truth in the samples' JSON form.

        Returns:
            ``{"width", "height", "objects": [{"category", "species", "bbox"}]}`` with ``bbox`` as
            ``[x, y, width, height]`` normalized to 0..1 from the top left, rounded to 4 decimals.
        """
        width, height = self.size
        return {
            "width": width,
            "height": height,
            "objects": [
                {
                    "category": o.category,
                    "species": o.species,
                    "bbox": [
                        round(o.bbox[0] / width, 4),
                        round(o.bbox[1] / height, 4),
                        round(o.bbox[2] / width, 4),
                        round(o.bbox[3] / height, 4),
                    ],
                }
                for o in self.objects
            ],
        }


def crop_box(bbox: Sequence[float], width: int, height: int, margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """The classifier's crop of a box: grown by ``margin`` of its size on each side, clipped to the image.

    Args:
        bbox: ``(x, y, w, h)`` in pixels.
        width: image width in pixels.
        height: image height in pixels.
        margin: fraction of the box's width (height) added on the left and right (top and bottom).

    Returns:
        ``(left, top, right, bottom)`` in pixels, for ``PIL.Image.crop``.
    """
    x, y, w, h = bbox
    left = max(0, math.floor(x - margin * w))
    top = max(0, math.floor(y - margin * h))
    right = min(width, math.ceil(x + w + margin * w))
    bottom = min(height, math.ceil(y + h + margin * h))
    return left, top, right, bottom


def animal_crops(scene: Scene, margin: float = CROP_MARGIN) -> list[tuple[Image.Image, str]]:
    """Crops of the scene's animals as the pipeline cuts them, with their species.

    Args:
        scene: a generated scene.
        margin: see ``crop_box``.

    Returns:
        ``(crop, species)`` for every animal in the scene.
    """
    width, height = scene.size
    return [
        (scene.image.crop(crop_box(o.bbox, width, height, margin)), o.species)
        for o in scene.objects
        if o.species is not None
    ]


def animal_scene(seed: int, width: int = TRAIN_SIZE[0], height: int = TRAIN_SIZE[1]) -> Scene:
    """A scene with 1-3 animals of random species and nothing else: a source of classifier crops.

    Args:
        seed: the scene's seed (the species are drawn from it too).
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        The scene; every species is equally likely for every animal in it.
    """
    rng = np.random.default_rng([seed, 1])  # a stream of its own, apart from the one make_scene draws from
    count = int(rng.integers(1, 4))
    return make_scene(seed, width, height, kinds=[SPECIES[i] for i in rng.integers(len(SPECIES), size=count)])


# --------------------------------------------------------------------------------------------
# Small helpers: colours and noise
# --------------------------------------------------------------------------------------------

RGB = tuple[int, int, int]


def _jitter(rng: np.random.Generator, rgb: Sequence[float], amount: float) -> RGB:
    """A colour varied in brightness by up to ``amount`` and per channel by a third of that."""
    gain = 1 + rng.uniform(-amount, amount)
    return tuple(int(np.clip(c * gain * (1 + rng.uniform(-amount, amount) / 3), 0, 255)) for c in rgb)  # type: ignore[return-value]


def _scale(rgb: Sequence[float], factor: float) -> RGB:
    """A colour made darker (factor < 1) or lighter."""
    return tuple(max(0, min(255, int(c * factor))) for c in rgb)  # type: ignore[return-value]


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    """The colour ``t`` of the way from ``a`` to ``b``."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _noise(rng: np.random.Generator, height: int, width: int, cells: tuple[int, int]) -> np.ndarray:
    """Smooth value noise in about -1..1: a grid of ``cells`` (rows, columns) of random values, upsampled."""
    small = rng.uniform(-1, 1, cells).astype(np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((width, height), Image.Resampling.BICUBIC))


def _fractal(rng: np.random.Generator, height: int, width: int, octaves: Sequence[tuple[int, int]]) -> np.ndarray:
    """Sum of value noises at several scales, each octave at half the weight of the one before."""
    total = np.zeros((height, width), np.float32)
    weight = 1.0
    for cells in octaves:
        total += weight * _noise(rng, height, width, cells)
        weight *= 0.5
    return total


# --------------------------------------------------------------------------------------------
# Object sprites
# --------------------------------------------------------------------------------------------


class _Sprite:
    """A canvas on which one object is drawn in its own frame: x the way it faces, y up from the ground.

    Every shape is drawn twice, into the silhouette (``mask``) and in its colour (``paint``); a
    pattern (stripes, spots) is drawn into the paint only and is clipped by the silhouette.
    """

    def __init__(self, unit_px: float, extent: tuple[float, float, float, float]) -> None:
        """Make an empty canvas.

        Args:
            unit_px: pixels per unit of the drawing (the unit is the body length, a person's height, ...).
            extent: ``(x_min, x_max, y_min, y_max)`` in units: the drawing stays inside it.
        """
        self.k = unit_px * _SS
        self.x0, x1, y0, self.y1 = extent
        size = (int((x1 - self.x0) * self.k) + 2, int((self.y1 - y0) * self.k) + 2)
        self.mask = Image.new("L", size, 0)
        self.paint = Image.new("RGB", size, (0, 0, 0))
        self._draw_mask = ImageDraw.Draw(self.mask)
        self._draw_paint = ImageDraw.Draw(self.paint)

    def _xy(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) * self.k, (self.y1 - y) * self.k

    def oval(
        self, cx: float, cy: float, rx: float, ry: float, fill: RGB, angle: float = 0.0, paint_only: bool = False
    ) -> None:
        """An ellipse centred at (cx, cy) with radii rx, ry, turned by ``angle`` degrees (counter-clockwise)."""
        a = math.radians(angle)
        points = []
        for i in range(32):  # 32 vertices: smooth at any size drawn here
            t = 2 * math.pi * i / 32
            px, py = rx * math.cos(t), ry * math.sin(t)
            points.append(self._xy(cx + px * math.cos(a) - py * math.sin(a), cy + px * math.sin(a) + py * math.cos(a)))
        self._shape(points, fill, paint_only)

    def polygon(self, points: Sequence[tuple[float, float]], fill: RGB, paint_only: bool = False) -> None:
        """A filled polygon through ``points`` (in units)."""
        self._shape([self._xy(x, y) for x, y in points], fill, paint_only)

    def limb(self, points: Sequence[tuple[float, float]], width: float, fill: RGB, paint_only: bool = False) -> None:
        """A thick line through ``points`` with rounded joints and ends (legs, arms, tails)."""
        xy = [self._xy(x, y) for x, y in points]
        w = max(1, int(width * self.k))
        if not paint_only:
            self._draw_mask.line(xy, fill=255, width=w, joint="curve")
        self._draw_paint.line(xy, fill=fill, width=w, joint="curve")
        for x, y in (points[0], points[-1]):
            self.oval(x, y, width / 2, width / 2, fill, paint_only=paint_only)

    def _shape(self, xy: list[tuple[float, float]], fill: RGB, paint_only: bool) -> None:
        if not paint_only:
            self._draw_mask.polygon(xy, fill=255)
        self._draw_paint.polygon(xy, fill=fill)

    def render(self, rng: np.random.Generator, fur: float = 0.08, shade: float = 0.15) -> Image.Image:
        """The finished object as an RGBA image cropped to its silhouette.

        Args:
            rng: random source for the fur texture.
            fur: strength of the fine and coarse texture (relative brightness).
            shade: top-lit shading: the top is this much lighter and the bottom this much darker.

        Returns:
            The RGBA sprite at its final size (the supersampling undone).
        """
        left, top, right, bottom = self.mask.getbbox() or (0, 0, _SS, _SS)
        # Align the crop to the supersampling factor so that the reduction keeps the pixel grid.
        left, top = left - left % _SS, top - top % _SS
        right, bottom = right + (-right) % _SS, bottom + (-bottom) % _SS
        box = (left, top, right, bottom)
        mask = self.mask.crop(box).reduce(_SS)
        paint = np.asarray(self.paint.crop(box).reduce(_SS), np.float32)
        height, width = paint.shape[:2]
        texture = 1 + fur * (rng.normal(0, 0.6, (height, width)) + _noise(rng, height, width, (6, 8)))
        light = np.linspace(1 + shade, 1 - shade, height, dtype=np.float32)[:, None]
        paint = np.clip(paint * (texture * light)[..., None], 0, 255).astype(np.uint8)
        sprite = Image.fromarray(paint, "RGB").convert("RGBA")
        sprite.putalpha(mask)
        return sprite


def _eye(s: _Sprite, x: float, y: float, r: float, night: bool) -> None:
    """An eye: dark by day, a bright dot by night (the infrared flash reflects off the retina)."""
    if night:
        s.oval(x, y, r * 1.3, r * 1.3, (250, 250, 245))
    else:
        s.oval(x, y, r, r, (18, 14, 10))


def _legs(
    s: _Sprite,
    rng: np.random.Generator,
    hips: Sequence[float],
    hip_y: float,
    length: float,
    width: float,
    color: RGB,
    hoof: RGB | None = None,
    stride: float = 0.1,
) -> None:
    """A pair of legs (hind, front) from hip or shoulder height to the ground, in a walking pose.

    Args:
        s: the sprite.
        rng: random source for the pose.
        hips: x of the hind and front leg tops.
        hip_y: y where the legs join the body.
        length: leg length to the ground (the legs end at y = 0).
        width: leg thickness at the top; the lower leg is 60 % of it.
        color: leg colour.
        hoof: colour of the lowest fifth of the leg (hooves, dark socks), or None.
        stride: largest sideways swing of a foot, in units.
    """
    for i, x in enumerate(hips):
        swing = rng.uniform(-stride, stride)
        bend = -0.04 if i == 0 else 0.03  # hind legs bend backwards at the hock, front legs forwards
        knee = (x + swing * 0.4 + bend, length * 0.5)
        foot = (x + swing, 0.0)
        s.limb([(x, hip_y), knee], width, color)
        s.limb([knee, foot], width * 0.6, color)
        if hoof is not None:
            low = (knee[0] + (foot[0] - knee[0]) * 0.6, length * 0.2)
            s.limb([low, foot], width * 0.62, hoof)


def _deer(rng: np.random.Generator, unit: float, night: bool) -> Image.Image:
    """A deer: brown, long thin legs, white rump, upright neck, antlers on half of them."""
    s = _Sprite(unit, (-0.2, 1.5, -0.02, 2.05))
    coat = _jitter(rng, (140, 96, 58), 0.15)
    belly = _mix(coat, (230, 210, 175), 0.6)
    leg = rng.uniform(0.68, 0.8)  # leg length in body lengths
    cy = leg + 0.18  # torso centre height
    _legs(s, rng, (0.24, 0.84), cy, leg, 0.095, _scale(coat, 0.75), hoof=(40, 32, 26))
    s.oval(0.0, cy + 0.1, 0.07, 0.04, _scale(coat, 0.8), angle=35)
    s.oval(0.5, cy, 0.52, 0.21, coat)
    s.oval(0.5, cy - 0.11, 0.38, 0.08, belly, paint_only=True)
    s.oval(0.04, cy + 0.02, 0.06, 0.11, (235, 228, 215), paint_only=True)
    if rng.random() < 0.25:  # a quarter of them graze, head down
        hx, hy, head_angle = 1.14, 0.2, -65.0
        s.polygon([(0.74, cy + 0.16), (0.92, cy + 0.14), (1.2, 0.26), (1.08, 0.18), (0.86, cy - 0.12)], coat)
    else:
        hx, hy, head_angle = 1.14, cy + 0.66, -25.0
        s.polygon([(0.78, cy + 0.12), (0.9, cy + 0.2), (1.1, cy + 0.64), (1.18, cy + 0.56), (0.98, cy - 0.02)], coat)
    s.oval(hx, hy, 0.16, 0.075, coat, angle=head_angle)
    tip = math.radians(head_angle)
    s.oval(hx + 0.13 * math.cos(tip), hy + 0.13 * math.sin(tip), 0.045, 0.035, (45, 35, 30))
    for dx in (-0.07, -0.03):
        s.oval(hx + dx, hy + 0.1, 0.08, 0.03, _scale(coat, 0.9), angle=45)
    if rng.random() < 0.5:  # a stag
        antler = _mix(coat, (210, 195, 165), 0.5)
        for side in (0.0, 0.05):
            base = (hx - 0.02 + side, hy + 0.06)
            beam = [base, (base[0] - 0.12, base[1] + 0.25), (base[0] - 0.06, base[1] + 0.5)]
            s.limb(beam, 0.03, antler)
            for i, t in enumerate((beam[1], beam[2], beam[2])):
                s.limb([t, (t[0] + 0.1 - 0.12 * (i == 2), t[1] + 0.14)], 0.022, antler)
    _eye(s, hx + 0.02, hy + 0.02, 0.018, night)
    return s.render(rng)


def _zebra(rng: np.random.Generator, unit: float, night: bool) -> Image.Image:
    """A zebra: stocky horse shape, white with black stripes, black mane and muzzle."""
    s = _Sprite(unit, (-0.25, 1.55, -0.02, 1.75))
    white = _jitter(rng, (228, 224, 210), 0.06)
    black = _jitter(rng, (28, 26, 26), 0.2)
    leg = rng.uniform(0.58, 0.66)
    cy = leg + 0.22
    _legs(s, rng, (0.2, 0.82), cy, leg, 0.1, white, hoof=black, stride=0.08)
    s.limb([(0.0, cy + 0.15), (-0.08, cy - 0.15), (-0.1, cy - 0.35)], 0.04, white)
    s.oval(-0.1, cy - 0.38, 0.035, 0.08, black)
    s.oval(0.5, cy, 0.54, 0.26, white)
    grazing = rng.random() < 0.3
    if grazing:
        hx, hy, head_angle = 1.18, 0.22, -70.0
        s.polygon([(0.74, cy + 0.2), (0.95, cy + 0.18), (1.25, 0.3), (1.1, 0.2), (0.86, cy - 0.16)], white)
    else:
        hx, hy, head_angle = 1.2, cy + 0.5, -40.0
        s.polygon([(0.72, cy + 0.16), (0.86, cy + 0.26), (1.12, cy + 0.58), (1.22, cy + 0.44), (1.0, cy - 0.1)], white)
    s.oval(hx, hy, 0.22, 0.085, white, angle=head_angle)
    # Stripes: vertical wavy bands on body, neck and head; horizontal rings on the legs.
    period = rng.uniform(0.085, 0.11)
    x = -0.3 + rng.uniform(0, period)
    while x < 1.5:
        band = [(x + 0.015 * math.sin(7 * y), y) for y in np.linspace(leg - 0.05, 1.8, 12)]
        band += [(bx + period * 0.45, by) for bx, by in reversed(band)]
        s.polygon(band, black, paint_only=True)
        x += period
    y = 0.08
    while y < leg - 0.05:
        s.polygon([(-0.3, y), (1.4, y + 0.02), (1.4, y + 0.05), (-0.3, y + 0.03)], black, paint_only=True)
        y += 0.075
    a = math.radians(head_angle)
    s.oval(hx + 0.17 * math.cos(a), hy + 0.17 * math.sin(a), 0.07, 0.06, black, angle=head_angle)
    if not grazing:
        s.polygon([(0.8, cy + 0.27), (1.1, cy + 0.6), (1.13, cy + 0.55), (0.84, cy + 0.2)], black)
    for dx in (-0.08, -0.04):
        s.oval(hx + dx, hy + 0.1, 0.08, 0.03, white, angle=60)
    _eye(s, hx - 0.02, hy + 0.03, 0.02, night)
    return s.render(rng, fur=0.05)


def _wild_boar(rng: np.random.Generator, unit: float, night: bool) -> Image.Image:
    """A wild boar: dark, bulky and low, wedge-shaped head with a pale snout, bristly back."""
    s = _Sprite(unit, (-0.15, 1.45, -0.02, 1.0))
    coat = _jitter(rng, (66, 56, 48), 0.2)
    leg = rng.uniform(0.22, 0.28)
    _legs(s, rng, (0.22, 0.78), leg + 0.15, leg, 0.11, _scale(coat, 0.8), hoof=(25, 22, 20), stride=0.06)
    s.limb([(0.02, leg + 0.4), (-0.06, leg + 0.2)], 0.025, coat)
    s.oval(0.48, leg + 0.3, 0.5, 0.3, coat)
    s.oval(0.74, leg + 0.36, 0.3, 0.33, coat)
    snout_y = rng.uniform(0.12, 0.3)  # rooting with the snout low, or walking
    s.polygon(
        [(0.86, leg + 0.62), (1.02, leg + 0.56), (1.34, snout_y + 0.12), (1.32, snout_y), (1.0, leg + 0.05)], coat
    )
    s.oval(1.33, snout_y + 0.06, 0.03, 0.06, _mix(coat, (190, 160, 150), 0.6))
    for dx in (0.0, 0.06):
        s.polygon([(0.93 + dx, leg + 0.58), (0.96 + dx, leg + 0.74), (1.02 + dx, leg + 0.56)], _scale(coat, 0.7))
    # Bristles: short dark and light strokes, a ridge of them along the back.
    for _ in range(140):
        bx, by = rng.uniform(0.0, 1.1), rng.uniform(leg, leg + 0.7)
        s.limb([(bx, by), (bx + 0.03, by + 0.05)], 0.012, _scale(coat, rng.uniform(0.6, 1.4)), paint_only=True)
    for i in range(30):  # the mane of long dark bristles along the top of the back
        bx = 0.25 + 0.022 * i
        back = max(
            0.3 * math.sqrt(max(0.0, 1 - ((bx - 0.48) / 0.5) ** 2)),
            0.06 + 0.33 * math.sqrt(max(0.0, 1 - ((bx - 0.74) / 0.3) ** 2)),
        )
        top = leg + 0.3 + back
        s.limb([(bx, top - 0.04), (bx - 0.02, top + rng.uniform(0.02, 0.06))], 0.018, _scale(coat, 0.55))
    _eye(s, 1.06, leg + 0.45, 0.016, night)
    return s.render(rng, fur=0.12)


def _fox(rng: np.random.Generator, unit: float, night: bool) -> Image.Image:
    """A fox: orange and slim, black socks, big pointed ears, long bushy tail with a white tip."""
    s = _Sprite(unit, (-0.95, 1.45, -0.02, 1.1))
    coat = _jitter(rng, (205, 105, 42), 0.12)
    white = (236, 228, 214)
    leg = rng.uniform(0.38, 0.46)
    cy = leg + 0.13
    _legs(s, rng, (0.16, 0.86), cy, leg, 0.06, _scale(coat, 0.85), hoof=(30, 24, 22), stride=0.1)
    # The brush: ovals along a drooping curve, thickest in the middle, white at the tip.
    droop = rng.uniform(-0.05, 0.2)
    for i in range(9):
        t = i / 8
        s.oval(-0.05 - 0.75 * t, cy + 0.05 - (0.25 + droop) * t * t, 0.1 + 0.05 * math.sin(math.pi * t), 0.08, coat)
    s.oval(-0.85, cy - 0.2 - droop, 0.08, 0.07, white)
    s.oval(0.5, cy, 0.52, 0.15, coat)
    s.oval(0.55, cy - 0.08, 0.35, 0.06, white, paint_only=True)
    hx, hy = 1.1, cy + 0.26
    s.oval(0.92, cy + 0.1, 0.13, 0.13, coat)
    s.oval(hx, hy, 0.12, 0.09, coat)
    s.polygon([(hx + 0.05, hy + 0.06), (hx + 0.3, hy - 0.04), (hx + 0.05, hy - 0.08)], coat)
    s.oval(0.98, cy + 0.06, 0.1, 0.08, white, paint_only=True)
    s.oval(hx + 0.12, hy - 0.05, 0.12, 0.03, white, paint_only=True)
    s.oval(hx + 0.29, hy - 0.04, 0.02, 0.02, (20, 16, 14))
    for dx in (-0.06, 0.03):
        ear = [(hx + dx - 0.045, hy + 0.06), (hx + dx - 0.02, hy + 0.24), (hx + dx + 0.045, hy + 0.06)]
        s.polygon(ear, coat)
        s.polygon([(x, y) for x, y in ear[:2]] + [(hx + dx, hy + 0.13)], (35, 25, 22), paint_only=True)
    _eye(s, hx + 0.04, hy + 0.02, 0.015, night)
    return s.render(rng)


def _hare(rng: np.random.Generator, unit: float, night: bool) -> Image.Image:
    """A hare: small and hunched, speckled grey-brown, very long black-tipped ears, white scut."""
    s = _Sprite(unit, (-0.2, 1.35, -0.02, 1.5))
    coat = _jitter(rng, (150, 126, 98), 0.15)
    s.oval(0.35, 0.04, 0.3, 0.05, _scale(coat, 0.8))
    s.limb([(0.8, 0.25), (0.84, 0.02)], 0.05, _scale(coat, 0.9))
    s.oval(0.35, 0.3, 0.37, 0.28, coat, angle=10)
    s.oval(0.72, 0.34, 0.25, 0.21, coat)
    s.oval(0.5, 0.12, 0.25, 0.07, _mix(coat, (230, 220, 200), 0.5), paint_only=True)
    upright = rng.random() < 0.7  # ears up; otherwise laid back along the body
    hx, hy = 0.95, 0.56
    s.oval(hx, hy, 0.17, 0.13, coat, angle=-15)
    for dx, lean in ((-0.08, 18.0), (-0.02, 8.0)):
        angle = 90 + lean if upright else 165 - lean / 3
        a = math.radians(angle)
        cx, cy = hx + dx + 0.3 * math.cos(a), hy + 0.1 + 0.3 * math.sin(a)
        s.oval(cx, cy, 0.32, 0.06, coat, angle=angle)
        # The black tip, clipped to the ear's silhouette.
        s.oval(cx + 0.27 * math.cos(a), cy + 0.27 * math.sin(a), 0.08, 0.07, (25, 20, 18), angle=angle, paint_only=True)
    # Speckles in the fur.
    for _ in range(90):
        x, y = rng.uniform(0.0, 1.1), rng.uniform(0.1, 0.7)
        s.oval(x, y, 0.012, 0.012, _scale(coat, rng.uniform(0.55, 1.35)), paint_only=True)
    s.oval(0.0, 0.42, 0.07, 0.07, (240, 238, 230))
    s.oval(hx + 0.15, hy - 0.03, 0.02, 0.02, (60, 45, 40))
    _eye(s, hx + 0.04, hy + 0.03, 0.03, night)
    return s.render(rng)


def _spotted_cat(rng: np.random.Generator, unit: float, night: bool) -> Image.Image:
    """A spotted cat: tawny with dark spots and rosettes, round head, small ears, long ringed tail."""
    s = _Sprite(unit, (-0.7, 1.45, -0.02, 1.2))
    coat = _jitter(rng, (206, 164, 94), 0.12)
    dark = _jitter(rng, (52, 38, 26), 0.2)
    leg = rng.uniform(0.44, 0.52)
    cy = leg + 0.17
    _legs(s, rng, (0.2, 0.84), cy, leg, 0.085, coat, stride=0.12)
    curl = rng.uniform(-0.15, 0.15)
    tail = [(0.0, cy + 0.1), (-0.3, cy - 0.12), (-0.5, cy - 0.05 + curl), (-0.6, cy + 0.1 + curl)]
    s.limb(tail, 0.075, coat)
    s.oval(0.5, cy, 0.53, 0.19, coat)
    s.oval(0.5, cy - 0.1, 0.36, 0.07, _mix(coat, (235, 225, 205), 0.6), paint_only=True)
    hx, hy = 1.13, cy + 0.25
    s.oval(0.98, cy + 0.1, 0.14, 0.14, coat)
    s.oval(hx, hy, 0.14, 0.12, coat)
    s.oval(hx + 0.11, hy - 0.05, 0.07, 0.05, _mix(coat, (235, 225, 205), 0.5))
    for dx in (-0.07, 0.02):
        s.oval(hx + dx, hy + 0.12, 0.045, 0.05, coat)
    # Spots and rosettes all over, rings on the tail.
    draw = s._draw_paint
    for _ in range(170):
        x, y = rng.uniform(-0.1, 1.3), rng.uniform(0.05, cy + 0.45)
        r = rng.uniform(0.018, 0.035)
        if rng.random() < 0.4:
            (px, py), rr = s._xy(x, y), r * s.k
            draw.ellipse((px - rr, py - rr, px + rr, py + rr), outline=dark, width=max(1, int(0.01 * s.k)))
        else:
            s.oval(x, y, r, r * 0.8, dark, paint_only=True)
    for t in (0.35, 0.55, 0.75, 0.92):
        i = min(int(t * 3), 2)
        (ax, ay), (bx, by) = tail[i], tail[i + 1]
        f = t * 3 - i
        s.oval(ax + (bx - ax) * f, ay + (by - ay) * f, 0.03, 0.05, dark, paint_only=True)
    s.oval(hx + 0.17, hy - 0.03, 0.02, 0.016, (60, 40, 36))
    _eye(s, hx + 0.06, hy + 0.03, 0.02, night)
    return s.render(rng)


_SKIN = ((240, 200, 170), (200, 150, 110), (150, 100, 70), (95, 65, 45))
_CLOTHES = ((60, 80, 50), (90, 95, 70), (40, 50, 80), (150, 40, 35), (30, 30, 32), (200, 110, 30), (110, 100, 90))


def _person(rng: np.random.Generator, unit: float, night: bool) -> Image.Image:
    """A person walking, upright, in side view; the unit is the person's height."""
    s = _Sprite(unit, (-0.4, 0.4, -0.02, 1.05))
    skin = _SKIN[rng.integers(len(_SKIN))]
    jacket = _jitter(rng, _CLOTHES[rng.integers(len(_CLOTHES))], 0.15)
    trousers = _jitter(rng, _CLOTHES[rng.integers(len(_CLOTHES))], 0.15)
    stride = rng.uniform(0.02, 0.14)
    if rng.random() < 0.3:
        s.polygon([(-0.2, 0.56), (-0.09, 0.56), (-0.09, 0.8), (-0.18, 0.8)], _jitter(rng, (70, 70, 60), 0.2))
    for sign, tone in ((-1, 0.8), (1, 1.0)):
        s.limb([(0.0, 0.5), (sign * stride * 0.5, 0.26), (sign * stride, 0.03)], 0.075, _scale(trousers, tone))
        s.oval(sign * stride + 0.035, 0.02, 0.06, 0.025, (35, 30, 28))
    s.polygon([(-0.1, 0.48), (0.1, 0.48), (0.11, 0.8), (0.06, 0.84), (-0.06, 0.84), (-0.11, 0.8)], jacket)
    swing = rng.uniform(0.0, 0.15)
    for sign, tone in ((1, 0.85), (-1, 1.0)):
        hand = (sign * swing, 0.5)
        s.limb([(0.0, 0.8), (sign * swing * 0.5, 0.64), hand], 0.06, _scale(jacket, tone))
        s.oval(hand[0], hand[1] - 0.02, 0.025, 0.03, skin)
    s.limb([(0.0, 0.83), (0.0, 0.87)], 0.04, skin)
    s.oval(0.015, 0.925, 0.06, 0.072, skin)
    if rng.random() < 0.5:
        hat = _jitter(rng, _CLOTHES[rng.integers(len(_CLOTHES))], 0.2)
        s.oval(0.01, 0.97, 0.065, 0.04, hat)
        s.polygon([(0.0, 0.96), (0.12, 0.955), (0.12, 0.945), (0.0, 0.94)], hat)
    _eye(s, 0.05, 0.935, 0.008, night)
    return s.render(rng, fur=0.04, shade=0.1)


_PAINT = ((235, 235, 232), (30, 32, 35), (150, 30, 30), (40, 60, 120), (70, 85, 60), (160, 160, 158), (120, 90, 50))


def _vehicle(rng: np.random.Generator, unit: float, night: bool) -> Image.Image:
    """A car, pick-up or off-roader in side view: boxy body, glass, two wheels; the unit is its length."""
    s = _Sprite(unit, (-0.05, 1.05, -0.02, 0.55))
    body = _jitter(rng, _PAINT[rng.integers(len(_PAINT))], 0.1)
    glass = (55, 65, 75) if not night else (90, 90, 90)
    style = rng.integers(3)
    if style == 0:  # saloon
        s.polygon(
            [(0, 0.1), (0, 0.22), (0.25, 0.26), (0.35, 0.38), (0.7, 0.38), (0.82, 0.26), (1, 0.22), (1, 0.1)], body
        )
        s.polygon([(0.38, 0.275), (0.47, 0.36), (0.68, 0.36), (0.78, 0.275)], glass)
        pillars = (0.58,)
    elif style == 1:  # pick-up: cab at the front, open bed behind
        s.polygon([(0, 0.1), (0, 0.3), (0.52, 0.3), (0.56, 0.45), (0.78, 0.45), (0.86, 0.3), (1, 0.27), (1, 0.1)], body)
        s.polygon([(0.58, 0.31), (0.6, 0.43), (0.77, 0.43), (0.84, 0.31)], glass)
        s.polygon([(0.03, 0.28), (0.5, 0.28), (0.5, 0.3), (0.03, 0.3)], _scale(body, 0.6))
        pillars = ()
    else:  # off-roader: tall box
        s.polygon([(0, 0.1), (0, 0.44), (0.04, 0.48), (0.7, 0.48), (0.8, 0.32), (1, 0.28), (1, 0.1)], body)
        s.polygon([(0.05, 0.33), (0.05, 0.45), (0.69, 0.45), (0.77, 0.33)], glass)
        pillars = (0.3, 0.5)
    for x in pillars:
        s.polygon([(x, 0.27), (x + 0.02, 0.27), (x + 0.02, 0.48), (x, 0.48)], body, paint_only=True)
    s.polygon([(0.0, 0.1), (1.0, 0.1), (1.0, 0.13), (0.0, 0.13)], _scale(body, 0.5))
    s.oval(0.985, 0.2, 0.015, 0.02, (250, 245, 220) if night else (220, 215, 190))
    s.oval(0.01, 0.2, 0.012, 0.02, (170, 30, 30))
    for x in (0.2, 0.8):
        s.oval(x, 0.11, 0.11, 0.11, _scale(body, 0.35))
        s.oval(x, 0.085, 0.085, 0.085, (22, 22, 24))
        s.oval(x, 0.085, 0.045, 0.045, (150, 150, 152))
    return s.render(rng, fur=0.03, shade=0.2)


@dataclass(frozen=True)
class _KindSpec:
    """How to draw one kind of object and how large it appears.

    Attributes:
        draw: draws the sprite for a unit size in pixels.
        size: smallest and largest unit (body length, height, car length) as a fraction of the image width.
    """

    draw: Callable[[np.random.Generator, float, bool], Image.Image]
    size: tuple[float, float]


# The size ranges keep the smallest object at least ~40 px long in a 1024-px frame (~16 px at the
# detector's input size) and the largest under about half the frame, as on a camera trap.
_KIND_SPECS: dict[str, _KindSpec] = {
    "deer": _KindSpec(_deer, (0.06, 0.3)),
    "fox": _KindSpec(_fox, (0.05, 0.24)),
    "hare": _KindSpec(_hare, (0.04, 0.18)),
    "spotted_cat": _KindSpec(_spotted_cat, (0.055, 0.27)),
    "wild_boar": _KindSpec(_wild_boar, (0.06, 0.3)),
    "zebra": _KindSpec(_zebra, (0.065, 0.3)),
    "person": _KindSpec(_person, (0.12, 0.55)),
    "vehicle": _KindSpec(_vehicle, (0.22, 0.65)),
}


# --------------------------------------------------------------------------------------------
# Scenery
# --------------------------------------------------------------------------------------------

# Ground colour, bush and tree-foliage colour, and whether the horizon shows sky or a dense forest.
_HABITATS = (
    {"ground": (96, 122, 60), "leaf": (52, 88, 40), "forest": False},  # green meadow
    {"ground": (160, 145, 90), "leaf": (90, 100, 55), "forest": False},  # dry grassland, savanna
    {"ground": (105, 85, 60), "leaf": (45, 70, 35), "forest": True},  # forest floor, leaf litter
    {"ground": (120, 110, 80), "leaf": (70, 85, 50), "forest": True},  # mixed woodland
)


def _bush(draw: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, base: float, w: float, leaf: RGB) -> None:
    """A bush: a heap of leafy blobs ``w`` pixels wide standing on y = ``base``."""
    for _ in range(14):
        x = cx + rng.uniform(-0.4, 0.4) * w
        r = w * rng.uniform(0.12, 0.25)
        y = base - rng.uniform(0.2, 0.8) * w * 0.5
        draw.ellipse((x - r, y - r * 0.8, x + r, y + r * 0.8), fill=_jitter(rng, leaf, 0.25))


def _grass(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    count: int,
    box: tuple[float, float, float, float],
    length: tuple[float, float],
    color: RGB,
    width: int,
) -> None:
    """``count`` grass blades standing in ``box`` (left, top, right, bottom), of pixel ``length`` range."""
    x = rng.uniform(box[0], box[2], count)
    y = rng.uniform(box[1], box[3], count)
    lengths = rng.uniform(*length, count)
    lean = rng.normal(0, 0.35, count)
    shades = rng.uniform(0.6, 1.4, count)
    for i in range(count):
        draw.line(
            (x[i], y[i], x[i] + lean[i] * lengths[i], y[i] - lengths[i]), fill=_scale(color, shades[i]), width=width
        )


def _background(
    rng: np.random.Generator, width: int, height: int, horizon: int, habitat: dict
) -> tuple[Image.Image, np.ndarray]:
    """Sky or forest, textured ground, tree line, bushes and grass; also the per-pixel depth (0 near, 1 far)."""
    u = width / 1024  # all pixel sizes below are for a 1024-px-wide frame, scaled by u
    ground = np.array(_jitter(rng, habitat["ground"], 0.12), np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None]
    depth = np.clip(1 - (rows - horizon) / max(1, height - horizon), 0, 1) * np.ones((1, width), np.float32)
    # Ground texture: coarse patches to fine grain, stretched sideways as the ground recedes.
    texture = _fractal(rng, height, width, ((4, 3), (12, 8), (40, 20), (160, 60)))
    image = ground[None, None, :] * (1 + 0.18 * texture[..., None]) * (0.8 + 0.2 * (1 - depth[..., None]))
    color_noise = _noise(rng, height, width, (6, 8))
    image[..., 0] *= 1 + 0.06 * color_noise
    image[..., 2] *= 1 - 0.06 * color_noise
    sky_top = np.array(_jitter(rng, (150, 180, 215), 0.15), np.float32)
    sky_low = np.array(_jitter(rng, (215, 222, 228), 0.08), np.float32)
    t = np.linspace(0, 1, max(1, horizon), dtype=np.float32)[:, None, None]
    image[:horizon] = sky_top * (1 - t) + sky_low * t
    depth[:horizon] = 1.0
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    leaf = habitat["leaf"]
    if habitat["forest"]:
        # Dense woods behind: dark foliage down to the horizon, then many trunks.
        draw.rectangle((0, 0, width, horizon), fill=_scale(leaf, 0.55))
        for _ in range(int(rng.integers(60, 120))):
            r = rng.uniform(15, 60) * u
            x, y = rng.uniform(0, width), rng.uniform(-r, horizon)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(rng, leaf, 0.3))
        for _ in range(int(rng.integers(8, 20))):
            x, w = rng.uniform(0, width), rng.uniform(6, 30) * u
            foot = horizon + rng.uniform(0, 0.12) * (height - horizon)
            draw.rectangle((x, 0, x + w, foot), fill=_jitter(rng, (75, 60, 48), 0.25))
    else:
        # A tree line on the horizon and a few trees standing in front of it.
        for _ in range(int(90 * u)):
            r = rng.uniform(8, 30) * u
            x, y = rng.uniform(0, width), horizon - rng.uniform(0, 25) * u
            draw.ellipse((x - r, y - r, x + r, y + r * 0.5), fill=_jitter(rng, _scale(leaf, 0.8), 0.2))
        for _ in range(int(rng.integers(0, 4))):
            x, h = rng.uniform(0, width), rng.uniform(0.15, 0.4) * height
            foot = horizon + rng.uniform(0, 0.05) * (height - horizon)
            draw.rectangle((x - 4 * u, foot - h, x + 4 * u, foot), fill=(70, 55, 45))
            _bush(draw, rng, x, foot - h * 0.45, h * 0.8, leaf)
    for _ in range(int(rng.integers(1, 6))):  # bushes in the middle distance
        base = horizon + rng.uniform(0.02, 0.5) * (height - horizon)
        near = (base - horizon) / max(1, height - horizon)
        _bush(draw, rng, rng.uniform(0, width), base, (60 + 300 * near) * u, leaf)
    blade = _mix(habitat["ground"], leaf, 0.6)
    # Grass in three depth bands: short far away, longer nearer (about 1,200 blades per 1024 frame).
    for band in range(3):
        top = horizon + (height - horizon) * band / 3
        bottom = horizon + (height - horizon) * (band + 1) / 3
        length = ((3 + 6 * band) * u, (8 + 14 * band) * u)
        _grass(draw, rng, int(400 * u * u), (0, top, width, bottom), length, blade, max(1, int((1 + band) * u)))
    return picture, depth


def _place(
    rng: np.random.Generator, size: tuple[int, int], width: int, horizon: int, floor: int, placed: list
) -> tuple[int, int] | None:
    """Where an object of ``size`` stands: top-left corner, its feet on the ground at a depth fitting its size.

    Bigger objects stand nearer the camera (lower in the frame). At most a quarter of an object may
    leave the frame at the sides, and it may not cover much of an object already placed.

    Returns:
        The top-left corner in pixels, or None if no place was found in 30 tries.
    """
    w, h = size
    for _ in range(30):
        # Perspective: an object's apparent height grows with its distance below the horizon.
        reach = floor - horizon
        nearness = np.clip(h / (0.55 * reach + 1) + rng.uniform(-0.15, 0.15), 0.05, 1.0)
        feet = int(min(floor, horizon + nearness * reach + rng.uniform(0, 0.05) * reach))
        top = feet - h
        left = int(rng.uniform(-0.25 * w, width - 0.75 * w))
        box = (max(0, left), max(0, top), min(width, left + w), feet)
        if box[3] - box[1] < 0.6 * h:
            continue
        if all(_overlap(box, other) < 0.15 for other in placed):  # at most 15 % of the smaller box hidden
            return left, top
    return None


def _overlap(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over the smaller box's area, for boxes as (left, top, right, bottom)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(1, smaller)


def _occlude(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple[int, int, int, int], leaf: RGB, blade: RGB
) -> None:
    """Vegetation in front of an object: a grass tuft over its lower part or a bush over one end.

    Each hides at most about a third of the box, so the object stays recognisable.
    """
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    if rng.random() < 0.6:
        cover = rng.uniform(0.15, 0.35) * h
        count = int(np.clip(w * cover / 12, 10, 600))  # about one blade per 12 square pixels of cover
        _grass(
            draw,
            rng,
            count,
            (left, bottom - 0.3 * cover, right, bottom + 0.1 * cover),
            (0.6 * cover, cover),
            blade,
            max(1, w // 120),
        )
    else:
        bush_w = rng.uniform(0.2, 0.35) * w
        cx = left + bush_w * 0.4 if rng.random() < 0.5 else right - bush_w * 0.4
        _bush(draw, rng, cx, bottom + 0.05 * h, bush_w, leaf)


def _banner(picture: Image.Image, height_px: int, text: str) -> None:
    """The camera's black information strip along the bottom, with ``text`` in white."""
    width, height = picture.size
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0, height - height_px, width, height), fill=(8, 8, 8))
    font = ImageFont.load_default(size=max(8, int(height_px * 0.6)))
    draw.text((height_px * 0.4, height - height_px * 0.82), text, fill=(235, 235, 235), font=font)


def _timestamp(rng: np.random.Generator, night: bool) -> datetime:
    """When the camera fired: a day in 2025, between 20:00 and 04:59 at night, else between 07:00 and 18:59."""
    hour = int(rng.integers(20, 29)) % 24 if night else int(rng.integers(7, 19))
    minutes = int(rng.integers(60)) + 60 * hour
    return datetime(2025, 1, 1) + timedelta(days=int(rng.integers(365)), minutes=minutes, seconds=int(rng.integers(60)))


def _random_kinds(rng: np.random.Generator, count_weights: Sequence[float]) -> list[str]:
    """What a scene contains: 0-4 objects, 70 % animals (often a group of one species), people and vehicles."""
    count = int(rng.choice(len(count_weights), p=count_weights))
    herd = SPECIES[rng.integers(len(SPECIES))] if rng.random() < 0.6 else None  # groups are usually one species
    kinds = []
    for _ in range(count):
        r = rng.random()
        if r < 0.7:
            kinds.append(herd or SPECIES[rng.integers(len(SPECIES))])
        elif r < 0.85:
            kinds.append("person")
        else:
            kinds.append("vehicle")
    return kinds


def make_scene(
    seed: int,
    width: int = TRAIN_SIZE[0],
    height: int = TRAIN_SIZE[1],
    *,
    night: bool | None = None,
    kinds: Sequence[str] | None = None,
    count_weights: Sequence[float] = OBJECT_COUNT_WEIGHTS,
) -> Scene:
    """Draw one camera-trap scene from a seed.

    Args:
        seed: the scene's seed; the same seed and size always give the same scene.
        width: image width in pixels.
        height: image height in pixels (4:3 landscape frames look like a camera trap's).
        night: force a day (False) or an infrared night (True) scene; None draws it at random.
        kinds: force the objects, e.g. ``["deer", "deer", "person"]`` (names from ``KINDS``); None draws 0-4 at
            random. An object that finds no free place is left out.
        count_weights: probabilities of 0, 1, 2, ... random objects (when ``kinds`` is None).

    Returns:
        The scene, its objects ordered far to near.
    """
    rng = np.random.default_rng(seed)
    is_night = bool(rng.random() < NIGHT_FRACTION) if night is None else night
    drawn_kinds = _random_kinds(rng, count_weights)
    if kinds is not None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; choose from {KINDS}")
        drawn_kinds = list(kinds)
    u = width / 1024
    timestamp = _timestamp(rng, is_night)
    camera = int(rng.integers(1, 40))  # the camera's number in its survey grid
    habitat = _HABITATS[rng.integers(len(_HABITATS))]
    banner_px = int(0.045 * height) if rng.random() < 0.7 else 0  # most cameras stamp an info strip
    floor = height - banner_px - int(4 * u)
    horizon = int(height * rng.uniform(0.18, 0.42))
    picture, depth = _background(rng, width, height, horizon, habitat)
    leaf, blade = habitat["leaf"], _mix(habitat["ground"], habitat["leaf"], 0.6)

    # Draw every object first, then place them far to near (big ones stand nearer).
    sprites = []
    for kind in drawn_kinds:
        spec = _KIND_SPECS[kind]
        lo, hi = spec.size
        unit = width * math.exp(rng.uniform(math.log(lo), math.log(hi)))  # log-uniform: as many small as big
        sprite = spec.draw(rng, unit, is_night)
        if rng.random() < 0.5:
            sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        sprites.append((kind, sprite))
    placed: list[tuple[int, int, int, int]] = []
    layout = []
    for kind, sprite in sprites:
        corner = _place(rng, sprite.size, width, horizon, floor, placed)
        if corner is None:
            continue
        left, top = corner
        box = (max(0, left), max(0, top), min(width, left + sprite.width), min(floor, top + sprite.height))
        placed.append(box)
        layout.append((kind, sprite, corner, box))
    layout.sort(key=lambda item: item[3][3])  # far (feet higher in the frame) first

    draw = ImageDraw.Draw(picture, "RGBA")
    albedo = np.ones((height, width), np.float32)  # infrared reflectance relative to the scenery
    albedo[:horizon] = 0.2  # the flash does not reach the sky and the far tree line: black at night
    objects = []
    for kind, sprite, (left, top), box in layout:
        if not is_night:  # a soft shadow on the ground under it
            w = sprite.width
            feet = top + sprite.height
            draw.ellipse((left + 0.05 * w, feet - 0.04 * w, left + 0.95 * w, feet + 0.03 * w), fill=(0, 0, 0, 60))
        picture.paste(sprite, (left, top), sprite)
        alpha = np.asarray(sprite.getchannel("A"))
        region = depth[max(0, top) : top + sprite.height, max(0, left) : left + sprite.width]
        a = alpha[max(0, -top) : max(0, -top) + region.shape[0], max(0, -left) : max(0, -left) + region.shape[1]]
        region[a > 0] = np.clip(1 - (top + sprite.height - horizon) / max(1, height - horizon), 0, 1)
        # Fur, skin and paint reflect the infrared flash better than soil does: brighter at night.
        shine = albedo[max(0, top) : top + sprite.height, max(0, left) : left + sprite.width]
        shine[a > 0] = rng.uniform(1.3, 1.7)
        if rng.random() < 0.4:  # 40 % stand partly behind grass or a bush
            _occlude(draw, rng, box, leaf, blade)
        category = kind if kind in CATEGORIES else "animal"
        species = kind if category == "animal" else None
        objects.append(SceneObject(category, species, (box[0], box[1], box[2] - box[0], box[3] - box[1])))
    # Grass right in front of the lens along the bottom edge.
    _grass(draw, rng, int(120 * u), (0, floor - 20 * u, width, floor), (10 * u, 40 * u), blade, max(1, int(2 * u)))

    picture = _light(picture, depth, albedo, rng, is_night)
    if banner_px:
        text = f"TRAILCAM   {int(rng.integers(-5, 30))}C   {timestamp:%Y-%m-%d %H:%M:%S}   CAM{camera:02d}"
        _banner(picture, banner_px, text)
    return Scene(picture, objects, seed, is_night, timestamp, camera)


def _light(
    picture: Image.Image, depth: np.ndarray, albedo: np.ndarray, rng: np.random.Generator, night: bool
) -> Image.Image:
    """Daylight (dappled, varied exposure) or an infrared night shot (grey, flash fall-off, vignette, grain).

    Args:
        picture: the drawn scene.
        depth: per pixel, 0 at the camera to 1 at the horizon and beyond.
        albedo: per pixel, infrared reflectance relative to the scenery (objects > 1).
        rng: random source.
        night: infrared night shot instead of daylight.

    Returns:
        The lit picture.
    """
    width, height = picture.size
    image = np.asarray(picture, np.float32) / 255
    u = width / 1024
    if night:
        # Vegetation reflects infrared strongly, so green counts most; the flash lights near things
        # brightly, falls off with distance and towards the corners, and leaves the sky black.
        ir = image @ np.array([0.3, 0.5, 0.2], np.float32)
        # Fur and cloth reflect infrared whatever their visible colour: even a black boar shows mid-grey.
        ir = np.where(albedo > 1, 0.3 + 0.7 * ir, ir)
        cx, cy = rng.uniform(0.4, 0.6), rng.uniform(0.5, 0.7)
        xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
        ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
        r2 = (xs - cx) ** 2 + (ys - cy) ** 2
        flash = rng.uniform(1.1, 1.6) * (0.35 + 0.65 * np.exp(-r2 * rng.uniform(1.5, 3.0)))
        # Range: far things get about a third of the light of near ones: dim but still visible.
        reach = np.clip(1.2 - depth, 0.3, 1.0) ** rng.uniform(0.8, 1.3)
        lit = ir * albedo * flash * reach
        lit += rng.uniform(0.015, 0.035) * rng.standard_normal(lit.shape, dtype=np.float32)  # sensor grain
        tint = 1 + rng.uniform(-0.03, 0.03, 3).astype(np.float32)  # some cameras' grey is faintly coloured
        out = lit[..., None] * tint
        blur = 1.0 * u
    else:
        dapple = 1 + 0.18 * _noise(rng, height, width, (5, 7))  # sun and shade under the trees
        exposure = rng.uniform(0.8, 1.15)
        warmth = np.array([1 + rng.uniform(-0.05, 0.08), 1.0, 1 + rng.uniform(-0.08, 0.05)], np.float32)
        out = image * dapple[..., None] * exposure * warmth
        contrast = rng.uniform(0.85, 1.15)
        grain = 0.01 * rng.standard_normal((height, width, 1), dtype=np.float32)
        out = (out - 0.5) * contrast + 0.5 + grain
        blur = 0.6 * u
    pixels = (np.clip(out, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(cv2.GaussianBlur(pixels, (0, 0), blur), "RGB")  # OpenCV's blur is ~20x Pillow's speed
