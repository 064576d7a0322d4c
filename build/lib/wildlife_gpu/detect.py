"""Stage 1 for one shard: detect animals, people and vehicles in every image, cut animal crops.

Reads ``stage1/shards/<shard>.json``, writes ``stage1/results/<shard>.parquet`` and, last, its
``.done.json`` marker. Every image gets rows: its detections, one empty row, or one failure row.
Partial results are flushed every FLUSH_EVERY images; a retried attempt (Spot interruption, or S3
not serving an image even after retries: the job exits 75 and Batch runs it again) starts after the
last flushed part instead of at the first image.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from wildlife_common import speciesnet, storage
from wildlife_common.config import RunConfig
from wildlife_common.records import DetectionManifest, DetectionStats, ImageEntry, ShardDone, Stage
from wildlife_common.schema import DETECTION_SCHEMA

from wildlife_gpu import metrics
from wildlife_gpu.crops import Crop, cut_crops
from wildlife_gpu.detector import Box, Detector
from wildlife_gpu.images import DecodedImage, ImageFailure, decode
from wildlife_gpu.letterbox import Letterbox
from wildlife_gpu.loader import WaitClock, batched, default_workers, prefetch
from wildlife_gpu.models import ModelFile, fetch
from wildlife_gpu.shards import ShardJob, log_line

log = logging.getLogger(__name__)

# Images per flushed part: a lost Spot instance costs at most this much work (~30 s on a T4 at
# MegaDetector's 1280 px), while a 2,000-image shard writes only 4 parts.
FLUSH_EVERY = 500
# Batches decoded ahead of the model: enough to hide an S3 latency spike, small enough for RAM
# (4 x 16 images x ~36 MB full-size pixels in the worst case).
BATCHES_AHEAD = 4


@dataclass
class Prepared:
    """One image after the input path: decoded and on its canvas, or failed."""

    index: int
    entry: ImageEntry
    decoded: DecodedImage | None = None
    place: Letterbox | None = None
    canvas: np.ndarray | None = None  # the model's input for this image alone
    data: bytes | None = None  # kept only when crops may be needed, to cut them at full resolution
    failure: str | None = None


@cache
def _detector(weights: str, image_size: int, conf: float, class_map: str, detector_format: str) -> Detector:
    """Models stay loaded between shards of one process (the local engine runs many)."""
    mapping = json.loads(class_map) if class_map.startswith("{") else class_map
    return Detector(weights, image_size=image_size, conf=conf, class_map=mapping, detector_format=detector_format)


def _prepare(index: int, entry: ImageEntry, detector: Detector, exact: bool, keep_bytes: bool) -> Prepared:
    """Read, decode and letterbox one image. ``exact``: decode at full size, as MegaDetector does.

    Only what the file itself is makes a failure row: its content (ImageFailure) or its absence.
    Anything else (S3 throttling or outage beyond storage's retries, access denied, a bug) raises,
    ends the shard before it commits, and its retry reads the image again.
    """
    try:
        data = storage.read_bytes(entry["uri"])
        decoded = decode(data, min_side=None if exact else detector.image_size)
        place = detector.letterbox(decoded.height, decoded.width)
        canvas = place.apply(decoded.pixels)
        if exact and place.resized[1] < decoded.pixels.shape[1]:
            # Keep the photo at the model's size, not 36 MB of full-size pixels per 12 MP image while it
            # waits for its batch: crops re-decode at the size they need (crops.cut_crops).
            (height, width), top, left = place.resized, place.top, place.left
            decoded.pixels = canvas[top : top + height, left : left + width]
        return Prepared(index, entry, decoded, place, canvas, data if keep_bytes else None)
    except ImageFailure as failure:
        return Prepared(index, entry, failure=str(failure))
    except FileNotFoundError:
        return Prepared(index, entry, failure="missing: the file was deleted or moved after the run was planned")


def _rows(job: ShardJob, item: Prepared, boxes: list[Box], detector_id: str, crop_uris: dict[int, str]) -> list[dict]:
    base: dict[str, Any] = {  # a table row: pyarrow checks it against DETECTION_SCHEMA
        "image": item.entry["image"],
        "image_uri": item.entry["uri"],
        "image_etag": item.entry.get("etag"),
        "run_id": job.config.run_id,
        "shard": job.shard,
        "detector": detector_id,
    }
    if item.failure is not None or item.decoded is None:
        return [{**base, "failure": item.failure}]
    decoded = item.decoded
    base.update(width=decoded.width, height=decoded.height, datetime=decoded.datetime)
    if not boxes:
        return [base]
    rows = []
    for index, box in enumerate(boxes):
        x, y, w, h = box.bbox(decoded.width, decoded.height)
        rows.append(
            {
                **base,
                "detection": index,
                "category": box.category,
                "conf": box.conf,
                "bbox_x": x,
                "bbox_y": y,
                "bbox_w": w,
                "bbox_h": h,
                "crop_uri": crop_uris.get(index),
            }
        )
    return rows


def load_detector(config: RunConfig) -> tuple[ModelFile, Detector]:
    """The run's weights and loaded detector; loaded once per process, so a caller that checks the
    weights first (``wildlife run``) leaves the model warm for the shards.

    Raises:
        ModelError: the weights are missing, unreadable or not a model ultralytics can run.
    """
    weights = fetch(config.detector, "detector weights")
    class_map = config.detector_classes
    detector = _detector(
        str(weights.path),
        config.image_size,
        config.detection_threshold,
        class_map if isinstance(class_map, str) else json.dumps(class_map, sort_keys=True),
        config.detector_format,
    )
    return weights, detector


def _to_classify(table: pa.Table, speciesnet_run: bool, whole_images: bool) -> int:
    """What stage 2 will classify in this shard (planning sizes its shards by it): the crops cut; for
    SpeciesNet every detection at or above its threshold, or every photo read for a full_image folder."""
    if whole_images:
        read = table.filter(pc.is_null(table.column("failure")))
        return int(pc.count_distinct(read.column("image")).as_py() or 0)
    if speciesnet_run:
        return int(pc.sum(pc.greater_equal(table.column("conf"), speciesnet.CLASSIFY_FROM)).as_py() or 0)
    return int(pc.sum(pc.is_valid(table.column("crop_uri"))).as_py() or 0)


def detect_batch(detector: Detector, batch: list[Prepared]) -> dict[int, list[Box]]:
    """Boxes for every decoded image of a batch, by image index.

    Images go to the model with the images of the same canvas only: an image's detections never
    depend on its neighbours (``letterbox``). A shard of one camera has one canvas, so batches stay full.
    """
    groups: dict[tuple[int, int], list[Prepared]] = {}
    for item in batch:
        if item.canvas is not None and item.place is not None:
            groups.setdefault(item.place.canvas, []).append(item)
    found: dict[int, list[Box]] = {}
    for items in groups.values():
        canvases = np.stack([item.canvas for item in items if item.canvas is not None])
        places = [item.place for item in items if item.place is not None]
        for item, boxes in zip(items, detector.detect(canvases, places), strict=True):
            found[item.index] = boxes
    return found


def run_detect(run_uri: str, shard: str) -> ShardDone:
    """Detect one shard and commit it; returns the commit marker (``records.DetectionDone``)."""
    job: ShardJob[DetectionManifest] = ShardJob.open(run_uri, Stage.DETECTION, shard)
    if (marker := job.committed()) is not None:
        log_line("already committed", shard=shard)
        return marker
    config = job.config
    weights, detector = load_detector(config)
    images = job.manifest["images"]
    parts = job.read_partials(DETECTION_SCHEMA)
    # Parts hold whole images in manifest order, so the images they cover are the first ones.
    start = sum(len(set(part.column("image").to_pylist())) for part in parts)
    log_line("detect shard", shard=shard, images=len(images), resume_from=start, device=detector.device)

    # A SpeciesNet classifier crops from the photo itself in stage 2, as SpeciesNet does: no crop files.
    speciesnet_run = bool(config.classify and config.classifier and speciesnet.is_speciesnet_folder(config.classifier))
    whole_images = speciesnet_run and speciesnet.is_whole_image_folder(str(config.classifier))
    crop_threshold = config.classification_threshold if config.classify and not speciesnet_run else None
    clock = WaitClock()
    pending_rows: list[dict] = []
    crop_jobs: list[Future[None]] = []
    counts = {"failed": 0, "detections": 0, "crops": 0}
    batch_size = config.batch_size
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="crops") as crop_pool, metrics.GpuSampler() as gpu:
        stream = prefetch(
            range(start, len(images)),
            lambda i: _prepare(i, images[i], detector, config.exact_decode, crop_threshold is not None),
            workers=default_workers(),
            ahead=BATCHES_AHEAD * batch_size,
        )
        done_images = flushed = start
        for batch in batched(clock.wait_for(stream), batch_size):
            boxes_by_index = detect_batch(detector, batch)
            for item in batch:
                boxes = boxes_by_index.get(item.index, [])
                crop_uris: dict[int, str] = {}
                if crop_threshold is not None and item.decoded is not None:
                    crops = []
                    for det, box in enumerate(boxes):
                        if box.category == "animal" and box.conf >= crop_threshold:
                            uri = storage.join(job.layout.crops_folder(shard), f"{item.index:05d}_{det:03d}.jpg")
                            crop_uris[det] = uri
                            crops.append(Crop(uri, box, item.decoded, item.data))
                    if crops:
                        crop_jobs.append(crop_pool.submit(cut_crops, crops))
                counts["failed"] += item.failure is not None
                counts["detections"] += len(boxes)
                counts["crops"] += len(crop_uris)
                pending_rows += _rows(job, item, boxes, weights.id, crop_uris)
                item.canvas = item.data = None  # release pixels early
            done_images += len(batch)
            batch_size = min(batch_size, detector.oom_batch or batch_size)  # reported in the marker
            if done_images - flushed >= FLUSH_EVERY and done_images < len(images):
                # Crops of these rows must exist before the rows are flushed as resumable.
                for future in crop_jobs:
                    future.result()
                crop_jobs.clear()
                table = pa.Table.from_pylist(pending_rows, schema=DETECTION_SCHEMA)
                job.write_partial(len(parts), table)
                parts.append(table)
                pending_rows = []
                flushed = done_images
        for future in crop_jobs:
            future.result()
    tables = [*parts, pa.Table.from_pylist(pending_rows, schema=DETECTION_SCHEMA)]
    table = pa.concat_tables(tables)
    processed = len(images) - start
    rate = processed / clock.elapsed if clock.elapsed else 0.0
    values = {
        "Images": len(images),
        "FailedImages": counts["failed"],
        "Crops": counts["crops"],
        "ImagesPerSecond": rate,
        "InputWaitFraction": clock.wait_fraction,
        "ShardSeconds": clock.elapsed,
    }
    if gpu.mean is not None:
        values["GpuUtilization"] = gpu.mean
    metrics.emit(Stage.DETECTION.command, shard, values)
    stats: DetectionStats = {
        "images": len(images),
        "failed_images": int(pc.sum(pc.is_valid(table.column("failure"))).as_py() or 0),
        "detections": int(pc.sum(pc.is_valid(table.column("detection"))).as_py() or 0),
        # What stage 2 will classify (planning sizes its shards by it): the crops cut, or for
        # SpeciesNet every detection at or above its threshold.
        "crops": _to_classify(table, speciesnet_run, whole_images),
        "images_per_second": round(rate, 3),
        "input_wait_fraction": round(clock.wait_fraction, 4),
        "gpu_utilization": gpu.mean,
        "device": detector.device,
        "batch_size": batch_size,
        "image_size": config.image_size,
        "detector_format": detector.format,
        "letterbox_stride": detector.stride,
        "exact_decode": config.exact_decode,
        "resumed_from": start,
        "detector": weights.id,
    }
    return job.commit(table, stats)
