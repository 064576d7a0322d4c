"""What the whole pipeline needs to know of SpeciesNet model folders (the GPU task loads and runs them).

A SpeciesNet release is a folder with an ``info.json`` (``gpu_task/wildlife_gpu/speciesnet_folder.py``
describes it). A run whose ``classifier`` is such a folder classifies every detection at or above
SpeciesNet's own threshold, whatever its category, from the full photo, as SpeciesNet does; its
labels are ``uuid;class;order;family;genus;species;common name`` strings, and tables and
MegaDetector files show the common name with the full label beside it.
"""

from __future__ import annotations

from typing import Any

from wildlife_common import storage
from wildlife_common.errors import ConfigError

CLASSIFY_FROM = 0.1
"""SpeciesNet classifies every detection at or above this (its DEFAULT_DETECTION_THRESHOLD_FOR_CLASSIFICATION)."""
LABEL_PARTS = 7
WHOLE_IMAGE = -1
"""The ``detection`` of a stage-2 row that classifies a whole photo (a ``full_image`` folder): its answer
belongs to every row of that photo."""


def is_speciesnet_folder(uri: str) -> bool:
    """Whether ``uri`` is a SpeciesNet model folder: it holds ``info.json`` (local or in S3).

    Asked anew each time (one HEAD request, once per shard job): a warm Lambda or a long local
    session must see a folder uploaded after an earlier answer.
    """
    return storage.exists(storage.join(uri, "info.json"))


DETECTION_LABELS = {"animal": "animal", "person": "human", "vehicle": "vehicle"}
"""Our detection categories in SpeciesNet's words (its rules and files say "human", never "person")."""


def folder_info(uri: str) -> dict[str, Any]:
    """The folder's ``info.json``, read once for every caller (the planner, the CLI, the GPU task).

    Raises:
        ConfigError: no info.json, or not a JSON object; one line naming the folder.
    """
    try:
        info = storage.read_json(storage.join(uri, "info.json"))
    except FileNotFoundError as error:
        raise ConfigError(f"SpeciesNet folder {uri} has no info.json") from error
    except (OSError, ValueError) as error:
        raise ConfigError(f"SpeciesNet folder {uri}: info.json cannot be read ({error})") from error
    if not isinstance(info, dict):
        raise ConfigError(f"SpeciesNet folder {uri}: info.json is not a JSON object")
    return info


def folder_detector(uri: str, info: dict[str, Any]) -> str:
    """Where the detector the folder names is: beside info.json, or its own ``s3://`` URI.

    Raises:
        ConfigError: none is named, or it is named by a web URL (nothing is downloaded here).
    """
    detector = info.get("detector")
    if not isinstance(detector, str) or not detector:
        raise ConfigError(f"SpeciesNet folder {uri}: info.json names no detector; give the run's detector")
    if "://" in detector and not detector.startswith("s3://"):
        raise ConfigError(
            f"SpeciesNet folder {uri} names its detector by URL ({detector}); nothing is downloaded here: "
            "put the file beside it or give the run's detector"
        )
    return detector if storage.is_s3(detector) else storage.join(uri, detector)


def is_whole_image_folder(uri: str) -> bool:
    """Whether the SpeciesNet folder at ``uri`` classifies whole photos (``type: full_image``), not detections."""
    try:
        return folder_info(uri).get("type") == "full_image"
    except ConfigError:
        return False  # not readable here: the GPU task says why when it loads the folder


def with_folder_detector(raw: Any) -> Any:
    """A run config whose detector, when it names none and its classifier is a SpeciesNet folder, is the folder's.

    SpeciesNet pairs each classifier with a detector (its info.json's ``detector``, MegaDetector v5a);
    a run that names only the folder runs that one, as SpeciesNet would.

    Raises:
        ConfigError: the folder names its detector by a URL (nothing is downloaded here), or info.json
            cannot be read.
    """
    if not isinstance(raw, dict) or raw.get("detector") or not isinstance(raw.get("classifier"), str):
        return raw
    folder = raw["classifier"]
    if not is_speciesnet_folder(folder):
        return raw
    return {**raw, "detector": folder_detector(folder, folder_info(folder))}


def is_label(label: str) -> bool:
    """Whether ``label`` is a SpeciesNet label (seven ``;``-separated parts)."""
    return label.count(";") == LABEL_PARTS - 1


def common_name(label: str) -> str:
    """The common name of a SpeciesNet label, e.g. ``lion``; a label of another kind is returned as is."""
    return label.rsplit(";", 1)[-1] if is_label(label) else label


def classification_categories(labels: list[str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """MegaDetector's ``classification_categories`` and ``classification_category_descriptions`` for labels.

    As MegaDetector's ``run_md_and_speciesnet`` writes them: ids ``"0"``, ``"1"``, … by common name (a
    common name two labels share gets one id), each described by its full label.

    Returns:
        ({id: common name}, {id: full label}, {common name: id}).
    """
    names: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    ids: dict[str, str] = {}
    for label in labels:
        name = common_name(label)
        if name not in ids:
            ids[name] = str(len(ids))
            names[ids[name]] = name
            descriptions[ids[name]] = label
    return names, descriptions, ids
