"""SpeciesNet model folders as the species classifier: the folder, its labels, its classifier run as SpeciesNet runs it.

A SpeciesNet release (Google's camera-trap classifier, used by Wildlife Insights; ``speciesnet`` on
PyPI) is a folder whose ``info.json`` names its parts, paths relative to the folder::

    {"version": "4.0.1a", "type": "always_crop", "classifier": "always_crop_....pt",
     "classifier_labels": "always_crop_..._labels.txt", "detector": "md_v5a.0.0.pt",
     "taxonomy": "taxonomy_release.txt", "geofence": "geofence_release.json"}

- ``type``: ``always_crop`` classifies each detection's crop; ``full_image`` the whole photo, less
  its top and bottom strips (camera information bars).
- ``classifier``: a whole pickled PyTorch model taking NHWC float32 in [0, 1] at 480 x 480.
- ``classifier_labels``: one label a line, in logit order: ``uuid;class;order;family;genus;species;common name``.
- ``detector``: the detector SpeciesNet pairs it with (MegaDetector v5a).
- ``taxonomy`` and ``geofence``: for the ensemble (rollup to higher taxa, species allowed per country).

Preprocessing is ``SpeciesNetClassifier.preprocess``'s, with torchvision's own functions so that it
is the same arithmetic: the photo as float in [0, 1]; the crop at ``int(v * size)`` of each
normalized box value (top, left, height, width, each truncated on its own, zero-padded outside the
photo); a bilinear resize to 480 x 480 without antialiasing; back to uint8 (torchvision truncates);
then /255 into NHWC float32. The model runs in float32 everywhere, as SpeciesNet runs it, so the
scores are its scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from wildlife_common import speciesnet
from wildlife_common.errors import ConfigError
from wildlife_common.speciesnet import LABEL_PARTS, common_name, is_speciesnet_folder

from wildlife_gpu.models import ModelError, ModelFile, fetch

__all__ = ["SpeciesNetClassifier", "SpeciesNetFolder", "common_name", "crop_input", "is_speciesnet_folder"]

INFO_KEYS = ("version", "type", "classifier", "classifier_labels", "detector", "taxonomy", "geofence")
"""Every key of a SpeciesNet ``info.json``; SpeciesNet itself requires all of them."""
TYPES = ("always_crop", "full_image")
IMAGE_SIZE = 480
"""SpeciesNet's classifier input, square."""
MAX_CROP_RATIO = 0.3
MAX_CROP_SIZE = 400
"""``full_image``: the photo's height is cut to max(70 %, height - 400 px), centred (SpeciesNet's constants)."""
TOP_K = 5
"""Classes kept per crop: SpeciesNet's ensemble decides from the top 5."""


@dataclass(frozen=True)
class SpeciesNetFolder:
    """A SpeciesNet model folder's parts, fetched to local files.

    Attributes:
        uri: the folder as the run names it.
        version: the release, written as ``model_version`` in SpeciesNet's output.
        type: ``always_crop`` or ``full_image``.
        classifier, labels, taxonomy, geofence: local copies.
        label_list: the classifier's labels in logit order.
        detector_uri: where the detector the folder names is; None when it names it by a web URL
            (then the run must name its own).
    """

    uri: str
    version: str
    type: str
    classifier: ModelFile
    labels: ModelFile
    taxonomy: ModelFile
    geofence: ModelFile
    label_list: tuple[str, ...]
    detector_uri: str | None

    @classmethod
    def open(cls, uri: str) -> SpeciesNetFolder:
        """Read ``info.json`` and fetch the classifier, labels, taxonomy and geofence.

        Raises:
            ModelError: one line naming the folder and what is wrong (a missing key, an unknown type,
                a missing file, a label that is not seven ``;``-separated parts).
        """
        from wildlife_common import storage

        try:
            info = speciesnet.folder_info(uri)
        except ConfigError as error:
            raise ModelError(str(error)) from error
        missing = [key for key in INFO_KEYS if not isinstance(info.get(key), str) or not info[key]]
        if missing:
            raise ModelError(
                f"SpeciesNet folder {uri}: info.json has no {missing[0]!r} (it needs {', '.join(INFO_KEYS)})"
            )
        if info["type"] not in TYPES:
            raise ModelError(f"SpeciesNet folder {uri}: type must be {' or '.join(TYPES)}, got {info['type']!r}")

        def part(key: str) -> ModelFile:
            return fetch(storage.join(uri, info[key]), f"SpeciesNet {key}")

        labels = part("classifier_labels")
        label_list = tuple(
            line.strip() for line in labels.path.read_text(encoding="utf-8").splitlines() if line.strip()
        )
        for number, label in enumerate(label_list, 1):
            if len(label.split(";")) != LABEL_PARTS:
                raise ModelError(
                    f"SpeciesNet folder {uri}: label {number} is not "
                    f"uuid;class;order;family;genus;species;common name: {label[:80]!r}"
                )
        if not label_list:
            raise ModelError(f"SpeciesNet folder {uri}: {info['classifier_labels']} holds no labels")
        try:
            detector: str | None = speciesnet.folder_detector(uri, info)
        except ConfigError:
            detector = None  # named by URL: only a run that names its own detector can use this folder
        return cls(
            uri=uri,
            version=info["version"],
            type=info["type"],
            classifier=part("classifier"),
            labels=labels,
            taxonomy=part("taxonomy"),
            geofence=part("geofence"),
            label_list=label_list,
            detector_uri=detector,
        )


def crop_input(pixels: np.ndarray, bbox: tuple[float, float, float, float] | None) -> np.ndarray:
    """SpeciesNet's classifier input for one crop: ``480 x 480 x 3`` uint8, as its ``preprocess`` makes it.

    Args:
        pixels: the whole photo, ``H x W x 3`` uint8 RGB at full resolution, EXIF orientation applied.
        bbox: ``[x_min, y_min, width, height]`` normalized (MegaDetector's box) for ``always_crop``;
            None for ``full_image`` (the photo less its top and bottom strips).
    """
    import torchvision.transforms.functional as F

    height, width = pixels.shape[:2]
    image = torch.from_numpy(pixels).permute(2, 0, 1)  # a view: HWC uint8 → CHW
    # SpeciesNet converts the whole photo to float, then crops; cropping the uint8 first and converting
    # the crop gives the same numbers (x / 255 per pixel, zeros outside the photo) without a 144 MB
    # float copy of a 12 MP photo per crop.
    if bbox is None:
        target = max(int(height * (1.0 - MAX_CROP_RATIO)), height - MAX_CROP_SIZE)
        crop = F.center_crop(image, [target, width])
    else:
        x, y, w, h = bbox
        crop = F.crop(image, int(y * height), int(x * width), int(h * height), int(w * width))
    crop = F.convert_image_dtype(crop.contiguous(), torch.float32)
    crop = F.resize(crop, [IMAGE_SIZE, IMAGE_SIZE], antialias=False)
    return F.convert_image_dtype(crop, torch.uint8).permute(1, 2, 0).numpy()


class SpeciesNetClassifier:
    """A SpeciesNet classifier, loaded once, classifying batches of crop inputs."""

    def __init__(self, folder: SpeciesNetFolder, device: str | None = None) -> None:
        from wildlife_gpu.detector import device_name

        self.folder = folder
        self.device = device or device_name()
        try:
            model = torch.load(folder.classifier.path, map_location=self.device, weights_only=False)
        except Exception as error:  # torch and pickle raise many types for a damaged or foreign file
            raise ModelError(
                f"SpeciesNet classifier {folder.classifier.uri} cannot be loaded: {type(error).__name__}: {error}"
            ) from error
        if not isinstance(model, torch.nn.Module):
            raise ModelError(
                f"SpeciesNet classifier {folder.classifier.uri} is not a whole PyTorch model "
                f"(it holds a {type(model).__name__})"
            )
        self.model = model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    def classify(self, crops: np.ndarray) -> tuple[list[list[str]], np.ndarray]:
        """The top-5 labels and scores (softmax over every label) of each crop.

        Args:
            crops: ``N x 480 x 480 x 3`` uint8 (:func:`crop_input`).
        """
        # SpeciesNet divides in float64 and stacks as float32: the same steps give the same floats.
        batch = torch.from_numpy((crops / 255.0).astype(np.float32)).to(self.device)
        with torch.inference_mode():
            scores = torch.softmax(self.model(batch).float(), dim=-1)
            top = scores.topk(min(TOP_K, scores.shape[-1]), dim=-1)
        labels = self.folder.label_list
        indices = top.indices.cpu().numpy()
        return [[labels[i] for i in row] for row in indices], top.values.cpu().numpy()
