"""Stage 2 for one shard: name the species of every animal crop with a timm classifier.

Reads ``stage2/shards/<shard>.json`` (which detection shards it covers), takes their crops from
the committed stage-1 results, and writes ``stage2/results/<shard>.parquet`` with the top-5
species per crop, then the ``.done.json`` marker. A crop that is gone or cannot be decoded is a
failure row; a crop S3 does not serve, even after retries, fails the shard, to be retried.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from wildlife_common import speciesnet, storage
from wildlife_common.config import RunConfig
from wildlife_common.records import ClassificationManifest, ClassificationStats, ShardDone, Stage
from wildlife_common.schema import CLASSIFICATION_SCHEMA

from wildlife_gpu import metrics
from wildlife_gpu.detector import device_name
from wildlife_gpu.loader import WaitClock, batched, default_workers, prefetch
from wildlife_gpu.models import ModelError, ModelFile, fetch
from wildlife_gpu.shards import ShardError, ShardJob, log_line
from wildlife_gpu.speciesnet_folder import SpeciesNetClassifier

log = logging.getLogger(__name__)

TOP_K = 5
# Batches of crops prepared ahead of the model (crops are small: ~50 KB JPEGs).
BATCHES_AHEAD = 4


class Classifier:
    """A timm model with its own evaluation preprocessing and a label per class."""

    def __init__(self, arch: str, checkpoint: str, labels: list[str], image_size: int | None = None) -> None:
        import timm
        from timm.data import create_transform, resolve_data_config

        self.device = device_name()
        self.half = self.device.startswith("cuda")
        self.labels = labels
        try:
            model = timm.create_model(arch, pretrained=False, num_classes=len(labels))
        except RuntimeError as error:  # timm raises RuntimeError for an unknown architecture
            raise ModelError(f"classifier_arch {arch!r} is not a timm architecture: {error}") from error
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for a truncated or foreign file
            raise ModelError(f"classifier checkpoint {checkpoint} is unreadable: {type(error).__name__}") from error
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise ModelError(f"classifier checkpoint does not fit {arch} with {len(labels)} labels: {error}") from error
        self.model = model.eval().to(self.device)
        if self.half:
            self.model = self.model.half()
        overrides = {"input_size": (3, image_size, image_size)} if image_size else {}
        self.data_config = resolve_data_config(overrides, model=model)
        self.transform = create_transform(**self.data_config, is_training=False)

    def preprocess(self, data: bytes) -> torch.Tensor:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return self.transform(image.convert("RGB"))

    def classify(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Top-k class indices and probabilities for a batch of preprocessed crops."""
        with torch.inference_mode():
            tensor = batch.to(self.device, non_blocking=True)
            logits = self.model(tensor.half() if self.half else tensor)
            probs = logits.float().softmax(dim=1)
            top = probs.topk(min(TOP_K, probs.shape[1]), dim=1)
        return top.indices.cpu().numpy(), top.values.cpu().numpy()


@cache
def _classifier(arch: str, checkpoint: str, labels: tuple[str, ...], image_size: int | None) -> Classifier:
    return Classifier(arch, checkpoint, list(labels), image_size)


@dataclass
class CropItem:
    shard: str
    image: str
    detection: int
    crop_uri: str
    tensor: torch.Tensor | None = None
    failure: str | None = None


def _crops(job: ShardJob[ClassificationManifest]) -> list[CropItem]:
    items = []
    for shard in job.manifest["stage1_shards"]:
        try:
            table = pq.read_table(
                io.BytesIO(storage.read_bytes(job.layout.results(Stage.DETECTION, shard))),
                columns=["image", "detection", "crop_uri"],
            )
        except FileNotFoundError as error:
            raise ShardError(f"detection shard {shard} has no committed results") from error
        for row in table.to_pylist():
            if row["crop_uri"]:
                items.append(CropItem(shard, row["image"], row["detection"], row["crop_uri"]))
    return items


def load_labels(uri: str) -> list[str]:
    """One label per line, in class-index order; blank lines are ignored."""
    try:
        text = storage.read_bytes(uri).decode("utf-8")
    except FileNotFoundError as error:
        raise ModelError(f"classifier labels not found: {uri}") from error
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"classifier labels file is empty: {uri}")
    return labels


def load_classifier(config: RunConfig) -> tuple[list[str], ModelFile, Classifier | SpeciesNetClassifier]:
    """The run's labels, checkpoint and loaded classifier; loaded once per process (see load_detector).

    A SpeciesNet folder (``info.json``) is loaded as one; anything else as a timm checkpoint.

    Raises:
        ModelError: labels or checkpoint missing or unreadable, or not the named architecture.
    """
    if config.classifier and speciesnet.is_speciesnet_folder(config.classifier):
        from wildlife_gpu.classify_speciesnet import load_speciesnet

        loaded = load_speciesnet(config.classifier)
        return list(loaded.folder.label_list), loaded.folder.classifier, loaded
    if not (config.classifier and config.classifier_arch and config.classifier_labels):
        raise ModelError(
            f"classifier {config.classifier} is no SpeciesNet folder (no info.json there), and a timm checkpoint "
            "needs classifier_arch and classifier_labels"
        )
    labels = load_labels(config.classifier_labels)
    weights = fetch(config.classifier, "classifier checkpoint")
    classifier = _classifier(config.classifier_arch, str(weights.path), tuple(labels), config.classify_image_size)
    return labels, weights, classifier


def run_classify(run_uri: str, shard: str) -> ShardDone:
    """Classify one stage-2 shard and commit it; returns the commit marker (``records.ClassificationDone``)."""
    job: ShardJob[ClassificationManifest] = ShardJob.open(run_uri, Stage.CLASSIFICATION, shard)
    if (marker := job.committed()) is not None:
        log_line("already committed", shard=shard)
        return marker
    config = job.config
    if not config.classifier:
        raise ShardError("this run has no classifier configured")
    if speciesnet.is_speciesnet_folder(config.classifier):
        from wildlife_gpu.classify_speciesnet import run_speciesnet_shard

        return run_speciesnet_shard(job)
    labels, weights, classifier = load_classifier(config)
    assert isinstance(classifier, Classifier)
    storage.write_json(job.layout.labels_json, labels)
    items = _crops(job)
    log_line("classify shard", shard=shard, crops=len(items), device=classifier.device)

    def prepare(item: CropItem) -> CropItem:
        # A read that S3 does not serve (StorageUnavailable, AccessDenied) raises: the shard fails
        # uncommitted and its retry reads the crop again. Only the crop itself makes a failure row.
        try:
            data = storage.read_bytes(item.crop_uri)
        except FileNotFoundError:
            item.failure = f"missing crop: {item.crop_uri} was deleted after detection cut it"
            return item
        try:
            item.tensor = classifier.preprocess(data)
        except Exception as error:  # Pillow raises many types for damaged bytes: a failure row
            item.failure = f"unreadable crop: {type(error).__name__}: {error}"
        return item

    rows = []
    clock = WaitClock()
    stream = prefetch(items, prepare, workers=default_workers(), ahead=BATCHES_AHEAD * config.classify_batch_size)
    for batch in batched(clock.wait_for(stream), config.classify_batch_size):
        ok = [item for item in batch if item.tensor is not None]
        tensors = [item.tensor for item in ok if item.tensor is not None]
        top_idx, top_conf = classifier.classify(torch.stack(tensors)) if ok else (None, None)
        results = {id(item): k for k, item in enumerate(ok)}
        for item in batch:
            row: dict[str, Any] = {
                "shard": item.shard,
                "image": item.image,
                "detection": item.detection,
                "crop_uri": item.crop_uri,
                "classifier": weights.id,
                "failure": item.failure,
            }
            if id(item) in results and top_idx is not None and top_conf is not None:
                k = results[id(item)]
                names = [labels[i] for i in top_idx[k]]
                confs = [float(c) for c in top_conf[k]]
                row.update(species=names[0], species_conf=confs[0], top5_species=names, top5_conf=confs)
            rows.append(row)
            item.tensor = None
    return commit_shard(job, rows, len(items), clock, classifier.device, weights.id)


def commit_shard(
    job: ShardJob[ClassificationManifest],
    rows: list[dict[str, Any]],
    crops: int,
    clock: WaitClock,
    device: str,
    classifier_id: str,
    speciesnet_folder: tuple[str, str] | None = None,
) -> ShardDone:
    """Emit the shard's metrics and commit its rows; returns the commit marker (both classifier kinds).

    ``speciesnet_folder``: the version and type of a SpeciesNet folder, for speciesnet.json.
    """
    table = pa.Table.from_pylist(rows, schema=CLASSIFICATION_SCHEMA)
    rate = crops / clock.elapsed if clock.elapsed else 0.0
    metrics.emit(
        Stage.CLASSIFICATION.command,
        job.shard,
        {
            "Crops": crops,
            "CropsPerSecond": rate,
            "InputWaitFraction": clock.wait_fraction,
            "ShardSeconds": clock.elapsed,
        },
    )
    stats: ClassificationStats = {
        "stage1_shards": job.manifest["stage1_shards"],
        "crops": crops,
        "failed_crops": sum(1 for r in rows if r.get("failure")),
        "crops_per_second": round(rate, 3),
        "input_wait_fraction": round(clock.wait_fraction, 4),
        "device": device,
        "classifier": classifier_id,
    }
    if speciesnet_folder is not None:
        stats["speciesnet_version"], stats["speciesnet_type"] = speciesnet_folder
    return job.commit(table, stats)
