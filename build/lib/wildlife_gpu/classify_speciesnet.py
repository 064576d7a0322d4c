"""Stage 2 with a SpeciesNet model folder: every detection at or above 0.1, cropped from the photo, as SpeciesNet does.

SpeciesNet classifies each detection of a photo at or above its threshold (0.1), whatever the
category, from a crop of the full photo at the box megadetector.json gives (4 decimals). So this
shard job does not read crop files: it takes the detections from the committed stage-1 results its
shard covers, reads and decodes each photo once at full size (threads, ahead of the model), makes
SpeciesNet's crop input for each of its detections (``speciesnet_folder.crop_input``) and classifies
them in batches of ``classify_batch_size`` crops, across photos.

Each crop's top 5 then go through SpeciesNet's ensemble with its detection (``speciesnet_ensemble``:
detector overrides for people, vehicles and blanks, the geofence of the run's ``country`` and
``admin1_region``, roll-up to higher taxa). Rows: ``species`` the common name of the ensemble's
label, ``species_label`` that label, ``species_conf`` its score, ``prediction_source`` what decided it;
``top5_species``/``top5_labels``/``top5_conf`` the classifier's own top 5. A photo that can no longer be
decoded makes a failure row for each of its detections.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from wildlife_common import speciesnet, storage
from wildlife_common.megadetector import written_bbox
from wildlife_common.records import ClassificationManifest, ShardDone, Stage
from wildlife_common.speciesnet import WHOLE_IMAGE
from wildlife_common.speciesnet_ensemble import UNKNOWN, Ensemble

from wildlife_gpu.classify import commit_shard
from wildlife_gpu.images import ImageFailure, decode
from wildlife_gpu.loader import WaitClock, default_workers, prefetch
from wildlife_gpu.shards import ShardError, ShardJob, log_line
from wildlife_gpu.speciesnet_folder import SpeciesNetClassifier, SpeciesNetFolder, common_name, crop_input

log = logging.getLogger(__name__)

PHOTOS_AHEAD = 16
"""Photos decoded ahead of the model: a 12 MP photo holds 36 MB while its crops are cut, so 16 is
~600 MB at most, and the crops of 16 photos fill a few batches."""


@dataclass
class Photo:
    """One photo's detections to classify, and after reading, their crop inputs or the failure."""

    shard: str
    image: str
    uri: str
    # index, category, conf, box; a full_image folder: one entry, WHOLE_IMAGE with the top detection and no box
    detections: list[tuple[int, str, float, tuple[float, float, float, float] | None]]
    crops: list[np.ndarray] = field(default_factory=list)
    failure: str | None = None


@functools.cache
def load_speciesnet(uri: str) -> SpeciesNetClassifier:
    """The folder's classifier, loaded once per process (the local engine runs many shards).

    Raises:
        ModelError: the folder or its classifier cannot be used; one line.
    """
    return SpeciesNetClassifier(SpeciesNetFolder.open(uri))


@functools.cache
def load_ensemble(uri: str, country: str | None, admin1_region: str | None) -> Ensemble:
    """The folder's ensemble for one place, built once per process (a release's geofence is megabytes of JSON)."""
    folder = load_speciesnet(uri).folder
    return Ensemble.from_files(
        folder.taxonomy.path.read_text(encoding="utf-8"),
        folder.geofence.path.read_text(encoding="utf-8"),
        country=country,
        admin1_region=admin1_region,
    )


def _photos(job: ShardJob[ClassificationManifest], whole_images: bool) -> list[Photo]:
    """What to classify in the covered detection shards, by photo: the detections at or above SpeciesNet's
    threshold, or for a full_image folder each photo read, paired with its most confident detection (or
    an animal at 0.0 when it has none), as SpeciesNet pairs them."""
    photos: dict[tuple[str, str], Photo] = {}
    columns = ["image", "image_uri", "failure", "detection", "category", "conf"] + [f"bbox_{k}" for k in "xywh"]
    for shard in job.manifest["stage1_shards"]:
        try:
            table = pq.read_table(
                io.BytesIO(storage.read_bytes(job.layout.results(Stage.DETECTION, shard))), columns=columns
            )
        except FileNotFoundError as error:
            raise ShardError(f"detection shard {shard} has no committed results") from error
        if whole_images:
            for row in table.filter(pc.is_null(table.column("failure"))).to_pylist():
                key = (shard, row["image"])
                if key not in photos:  # rows come most confident first; an empty photo has one null row
                    top = (row["category"], row["conf"]) if row["detection"] is not None else ("animal", 0.0)
                    photos[key] = Photo(shard, row["image"], row["image_uri"], [(WHOLE_IMAGE, *top, None)])
            continue
        table = table.filter(pc.greater_equal(table.column("conf"), speciesnet.CLASSIFY_FROM))
        for row in table.to_pylist():
            photo = photos.setdefault((shard, row["image"]), Photo(shard, row["image"], row["image_uri"], []))
            box = written_bbox([row["bbox_x"], row["bbox_y"], row["bbox_w"], row["bbox_h"]])
            photo.detections.append((row["detection"], row["category"], row["conf"], (box[0], box[1], box[2], box[3])))
    return list(photos.values())


def _read(photo: Photo) -> Photo:
    """Decode the photo at full size and cut each detection's crop input (in a reading thread)."""
    try:
        pixels = decode(storage.read_bytes(photo.uri)).pixels
    except FileNotFoundError:
        photo.failure = "missing: the photo was deleted or moved after detection"
        return photo
    except ImageFailure as failure:  # detected once, so rarely: a file replaced since
        photo.failure = str(failure)
        return photo
    photo.crops = [crop_input(pixels, box) for _, _, _, box in photo.detections]
    return photo


def run_speciesnet_shard(job: ShardJob[ClassificationManifest]) -> ShardDone:
    """Classify one stage-2 shard with the run's SpeciesNet folder and commit it; returns the commit marker."""
    config = job.config
    assert config.classifier is not None
    classifier = load_speciesnet(config.classifier)
    folder = classifier.folder
    ensemble = load_ensemble(config.classifier, config.country, config.admin1_region)
    # Every label the table can hold: the classifier's and the taxa the ensemble rolls up to.
    labels = list(dict.fromkeys([*folder.label_list, *ensemble.taxonomy.values(), UNKNOWN]))
    storage.write_json(job.layout.labels_json, labels)
    photos = _photos(job, folder.type == "full_image")
    crops = sum(len(p.detections) for p in photos)
    log_line("classify shard", shard=job.shard, crops=crops, photos=len(photos), device=classifier.device)
    model_id = classifier.folder.classifier.id

    rows: list[dict[str, Any]] = []
    pending: list[tuple[Photo, int, np.ndarray]] = []

    def classify_pending() -> None:
        top, scores = classifier.classify(np.stack([crop for _, _, crop in pending]))
        for (photo, index, _), names, confs in zip(pending, top, scores, strict=True):
            _, category, conf, _ = photo.detections[index]
            scores_list = [float(c) for c in confs]
            final = ensemble.predict(names, scores_list, category, conf)
            rows.append(
                {
                    **_base(photo, index, model_id),
                    "species": common_name(final.label),
                    "species_conf": final.score,
                    "top5_species": [common_name(n) for n in names],
                    "top5_conf": scores_list,
                    "top5_labels": names,
                    "species_label": final.label,
                    "prediction_source": final.source,
                }
            )
        pending.clear()

    clock = WaitClock()
    stream = prefetch(photos, _read, workers=default_workers(), ahead=PHOTOS_AHEAD)
    for photo in clock.wait_for(stream):
        if photo.failure is not None:
            rows += [
                {**_base(photo, index, model_id), "failure": photo.failure} for index in range(len(photo.detections))
            ]
            continue
        for index, crop in enumerate(photo.crops):
            pending.append((photo, index, crop))
            if len(pending) == config.classify_batch_size:
                classify_pending()
        photo.crops = []  # release the crop inputs once batched
    if pending:
        classify_pending()

    return commit_shard(
        job,
        rows,
        crops,
        clock,
        classifier.device,
        model_id,
        speciesnet_folder=(folder.version, folder.type),
    )


def _base(photo: Photo, index: int, model_id: str) -> dict[str, Any]:
    return {
        "shard": photo.shard,
        "image": photo.image,
        "detection": photo.detections[index][0],
        "crop_uri": None,
        "classifier": model_id,
        "failure": None,
    }
