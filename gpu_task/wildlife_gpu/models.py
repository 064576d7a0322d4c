"""Model weights: fetched once from a local path or S3, hashed for provenance, class maps resolved.

Nothing is ever fetched from a model hub: weights come from where the run configuration says.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from wildlife_common import storage
from wildlife_common.provenance import model_id

# COCO's classes that matter in camera-trap photos (YOLO's COCO-trained weights).
COCO_ANIMALS = frozenset({"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"})
COCO_VEHICLES = frozenset({"bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"})
MEGADETECTOR_BY_INDEX = {0: "animal", 1: "person", 2: "vehicle"}


class ModelError(Exception):
    """Weights or labels that cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class ModelFile:
    """A local copy of a model file and its provenance id."""

    uri: str
    path: Path
    sha256: str

    @property
    def id(self) -> str:
        return model_id(self.uri, self.sha256)


def cache_dir() -> Path:
    """Where downloaded weights are kept between shards (a Batch host runs several jobs)."""
    return Path(os.environ.get("WILDLIFE_MODEL_CACHE", Path.home() / ".cache" / "wildlife" / "models"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(uri: str, what: str) -> ModelFile:
    """A local path for ``uri`` (downloaded once into the cache when it is in S3), with its sha256.

    Raises:
        ModelError: the file does not exist or cannot be read.
    """
    if storage.is_s3(uri):
        key = hashlib.sha1(uri.encode()).hexdigest()[:16]
        path = cache_dir() / key / Path(storage.split_s3(uri)[1]).name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:  # whole or not at all, so two jobs fetching the same weights never share a part file
                storage.download_file(uri, path)
            except Exception as error:
                raise ModelError(f"{what} not readable: {uri} ({error})") from error
    else:
        path = Path(uri).expanduser()
        if not path.is_file():
            raise ModelError(f"{what} not found: {uri}")
    if path.is_relative_to(cache_dir()):
        # Downloaded weights: the hash is kept beside them, so a Batch host's next job skips hashing.
        sidecar = path.with_name(path.name + ".sha256")
        if sidecar.exists() and sidecar.stat().st_mtime >= path.stat().st_mtime:
            sha = sidecar.read_text().strip()
        else:
            sha = _sha256(path)
            with contextlib.suppress(OSError):
                sidecar.write_text(sha)
    else:
        # The user's own file: never write into their model folder; hash once per process and version.
        stat = path.stat()
        sha = _hash_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return ModelFile(uri, path, sha)


@functools.cache
def _hash_of(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a local file, remembered for as long as its size and modification time stay the same."""
    return _sha256(Path(path))


def class_categories(names: dict[int, str], class_map: str | dict[str, str]) -> dict[int, str]:
    """Map a detector's class indices to animal, person, vehicle or ignore.

    Args:
        names: the model's ``{index: class name}``.
        class_map: ``megadetector``, ``coco``, or a custom ``{index or name: category}``.
    """
    out = {}
    for index, name in names.items():
        if isinstance(class_map, dict):
            out[index] = class_map.get(str(index)) or class_map.get(name) or "ignore"
        elif class_map == "coco":
            if name == "person":
                out[index] = "person"
            elif name in COCO_ANIMALS:
                out[index] = "animal"
            elif name in COCO_VEHICLES:
                out[index] = "vehicle"
            else:
                out[index] = "ignore"
        else:  # MegaDetector: classes are named animal/person/vehicle, or only numbered 0-2
            out[index] = name if name in ("animal", "person", "vehicle") else MEGADETECTOR_BY_INDEX.get(index, "ignore")
    return out
