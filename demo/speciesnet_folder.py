"""A stand-in SpeciesNet model folder in the release's exact formats, for tests and benchmarks (nothing is downloaded).

- ``info.json`` with SpeciesNet's seven keys;
- ``classifier.pt``: a whole pickled PyTorch model with SpeciesNet's input contract (NHWC float32 in
  [0, 1], 480 x 480) built from standard torch and torchvision layers, so any process with torch
  unpickles it, as SpeciesNet's own ``torch.load`` does. Its weights are seeded random, with the
  last layer scaled so the softmax is peaked: what the tests check is that crops and scores are
  computed exactly as SpeciesNet computes them, which a random convolution over the pixels is as
  sensitive to as a trained one (a crop one pixel off moves its scores).
- ``labels.txt`` and ``taxonomy.txt``: ``uuid;class;order;family;genus;species;common name`` with real
  taxa for the demo scenes' species, SpeciesNet's special labels (blank, human, vehicle, animal) and
  the ancestors the rollup needs;
- ``geofence.json``: allow and block rules by ISO 3166-1 alpha-3 country and admin1 region.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# The demo species (demo/scenes.py) with real taxa, and SpeciesNet's special labels.
LABELS = (
    "5c7ce479-8a45-40b3-ae21-7c97dfae22f5;mammalia;cetartiodactyla;cervidae;capreolus;capreolus;european roe deer",
    "dd5c5cf7-5c5a-4a80-bf0f-dba5c9e0bd4b;mammalia;carnivora;canidae;vulpes;vulpes;red fox",
    "b8d4c0a4-0f3c-4b1f-8f1f-6a4c8a3c3e40;mammalia;lagomorpha;leporidae;lepus;europaeus;european hare",
    "22976d14-d424-4f18-a67a-d8e1689cefcc;mammalia;carnivora;felidae;panthera;pardus;leopard",
    "6c09fa63-2acc-4915-a60b-bd8cee40aedb;mammalia;cetartiodactyla;suidae;sus;scrofa;wild boar",
    "74e2c5d6-1a6f-4d5e-9d3e-0f1b0c7c1a2e;mammalia;perissodactyla;equidae;equus;quagga;plains zebra",
    "f1856211-cfb7-4a5b-9158-c0f72fd09ee6;;;;;;blank",
    "990ae9dd-7a59-4344-afcb-1b7b21368000;mammalia;primates;hominidae;homo;sapiens;human",
    "e2895ed5-780b-48f6-8a11-9e27cb594511;;;;;;vehicle",
    "1f689929-883d-4dae-958c-3d57ab5b6c16;;;;;;animal",
)
ANCESTORS = (
    "3f2c1a8e-5b7d-4c9e-8f0a-1b2c3d4e5f60;mammalia;cetartiodactyla;cervidae;capreolus;;capreolus species",
    "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d;mammalia;cetartiodactyla;cervidae;;;deer family",
    "1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e;mammalia;cetartiodactyla;;;;even-toed ungulate",
    "2c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e6f;mammalia;carnivora;canidae;;;dog family",
    "3d4e5f6a-7b8c-4d9e-9f0a-2b3c4d5e6f7a;mammalia;carnivora;felidae;panthera;;panthera species",
    "4e5f6a7b-8c9d-4e0f-8a1b-3c4d5e6f7a8b;mammalia;carnivora;felidae;;;cat family",
    "5f6a7b8c-9d0e-4f1a-9b2c-4d5e6f7a8b9c;mammalia;carnivora;;;;carnivorous mammal",
    "6a7b8c9d-0e1f-4a2b-8c3d-5e6f7a8b9c0d;mammalia;lagomorpha;leporidae;;;hare and rabbit family",
    "7b8c9d0e-1f2a-4b3c-9d4e-6f7a8b9c0d1e;mammalia;perissodactyla;equidae;;;horse family",
    "8c9d0e1f-2a3b-4c4d-8e5f-7a8b9c0d1e2f;mammalia;;;;;mammal",
)
GEOFENCE = {
    # Leopards only in Kenya and Tanzania; panthera in Kenya and two US states.
    "mammalia;carnivora;felidae;panthera;pardus": {"allow": {"KEN": [], "TZA": []}},
    "mammalia;carnivora;felidae;panthera;": {"allow": {"KEN": [], "USA": ["AK", "CA"]}},
    # Plains zebras never in the USA; roe deer not in New York.
    "mammalia;perissodactyla;equidae;equus;quagga": {"block": {"USA": []}},
    "mammalia;cetartiodactyla;cervidae;capreolus;capreolus": {"block": {"USA": ["NY"]}},
}


def standin_classifier(classes: int, seed: int = 0) -> torch.nn.Module:
    """NHWC float32 480 x 480 in, one logit per label out; standard layers only."""
    from torchvision.ops import Permute

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        Permute([0, 3, 1, 2]),  # NHWC, SpeciesNet's input, to the NCHW convolutions want
        torch.nn.Conv2d(3, 8, kernel_size=8, stride=8),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, kernel_size=3, stride=2),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, classes),
    )
    with torch.no_grad():
        model[-1].weight.mul_(40.0)  # peaked softmax: top scores from ~0.3 to ~0.99 on the samples
    return model.eval()


def build_folder(
    folder: Path,
    *,
    kind: str = "always_crop",
    detector: str = "md_v5a.0.0.pt",
    classifier: torch.nn.Module | None = None,
) -> Path:
    """Write a SpeciesNet model folder of ``kind`` (always_crop or full_image) into ``folder``.

    ``classifier``: the model to pickle (NHWC float32 480 x 480 in, one logit per label out); the small
    random stand-in by default.
    """
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(classifier if classifier is not None else standin_classifier(len(LABELS)), folder / "classifier.pt")
    (folder / "labels.txt").write_text("".join(label + "\n" for label in LABELS), encoding="utf-8")
    (folder / "taxonomy.txt").write_text("".join(label + "\n" for label in (*LABELS, *ANCESTORS)), encoding="utf-8")
    (folder / "geofence.json").write_text(json.dumps(GEOFENCE, indent=1), encoding="utf-8")
    info = {
        "version": "standin-5.0",
        "type": kind,
        "classifier": "classifier.pt",
        "classifier_labels": "labels.txt",
        "detector": detector,
        "taxonomy": "taxonomy.txt",
        "geofence": "geofence.json",
    }
    (folder / "info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return folder
