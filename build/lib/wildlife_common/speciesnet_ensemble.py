"""SpeciesNet's ensemble: the final species of one classified detection, from its classifier top 5 and the detection.

The rules are SpeciesNet's (``speciesnet`` 5, ``ensemble_prediction_combiner`` and ``geofence_utils``),
written here so the pipeline does not depend on that package (its install pulls model-hub clients);
``tests/integration/test_speciesnet_ensemble.py`` holds this module to the package on the same inputs.
In order, the first rule that applies decides (comparisons are strict):

1. a person detection above 0.7 is human (source ``detector``); above 0.2 with human or vehicle the
   top class above 0.5, human (``classifier``);
2. a vehicle detection above 0.2 with human the top class above 0.5 is human; above 0.7 vehicle
   (``detector``); above 0.2 with vehicle the top class above 0.4, vehicle;
3. blank when the top class is blank above 0.5 and the detection is below 0.2, or blank above 0.99;
4. an animal top class above 0.8, or above 0.65 on an animal detection above 0.2, is kept unless the
   geofence excludes it where the photos were taken; then it is rolled up to the first family, order,
   class or kingdom that the geofence allows and that holds its score (``classifier+geofence+rollup_to_…``);
5. otherwise the top 5 are rolled up: the first genus, family, order, class or kingdom whose summed
   score passes 0.65 (``classifier+rollup_to_…``); else an animal detection above 0.5 is "animal"
   (``detector``); else "no cv result" with the top score.

Labels are ``uuid;class;order;family;genus;species;common name``; the taxonomy maps the five middle
parts of every taxon to its label; the geofence maps them to ``allow``/``block`` rules by ISO 3166-1
alpha-3 country, each with a list of admin1 regions (empty: the whole country).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wildlife_common.speciesnet import DETECTION_LABELS

BLANK = "f1856211-cfb7-4a5b-9158-c0f72fd09ee6;;;;;;blank"
ANIMAL = "1f689929-883d-4dae-958c-3d57ab5b6c16;;;;;;animal"
HUMAN = "990ae9dd-7a59-4344-afcb-1b7b21368000;mammalia;primates;hominidae;homo;sapiens;human"
VEHICLE = "e2895ed5-780b-48f6-8a11-9e27cb594511;;;;;;vehicle"
UNKNOWN = (
    "f2efdae9-efb8-48fb-8a91-eccf79ab4ffb;no cv result;no cv result;no cv result;no cv result;no cv result;no cv result"
)
"""SpeciesNet's special labels, with the meanings its rules give them."""

LEVELS = ("species", "genus", "family", "order", "class", "kingdom")
"""Taxonomy levels, finest first; a level keeps that many of the five taxon parts (kingdom: none)."""
_KEPT_PARTS = {"species": 5, "genus": 4, "family": 3, "order": 2, "class": 1, "kingdom": 0}
ROLLUP_LEVELS = ("genus", "family", "order", "class", "kingdom")
GEOFENCE_ROLLUP_LEVELS = ("family", "order", "class", "kingdom")
ROLLUP_THRESHOLD = 0.65


@dataclass(frozen=True)
class Prediction:
    """The ensemble's answer for one detection: a label, its score and what decided it."""

    label: str
    score: float
    source: str


def taxa(label: str) -> str:
    """The five middle parts of a label, ``class;order;family;genus;species``: taxonomy and geofence keys.

    Raises:
        ValueError: the label is not seven ``;``-separated parts.
    """
    parts = label.split(";")
    if len(parts) != 7:
        raise ValueError(f"a SpeciesNet label has 7 parts, this one {len(parts)}: {label}")
    return ";".join(parts[1:6])


def load_taxonomy(text: str) -> dict[str, str]:
    """The taxonomy file (one label a line) as {taxa: label}, with SpeciesNet's adjustments.

    Later lines win; blank, vehicle and "no cv result" are never roll-up targets; human and animal
    always map to SpeciesNet's own labels.
    """
    taxonomy = {taxa(line.strip()): line.strip() for line in text.splitlines() if line.strip()}
    for label in (BLANK, VEHICLE, UNKNOWN):
        taxonomy.pop(taxa(label), None)
    for label in (HUMAN, ANIMAL):
        taxonomy[taxa(label)] = label
    return taxonomy


def ancestor(label: str, level: str, taxonomy: dict[str, str]) -> str | None:
    """The taxonomy's label for ``label``'s ancestor at ``level``, or None (no such taxon, or not in the taxonomy)."""
    parts = taxa(label).split(";")
    kept = _KEPT_PARTS[level]
    if level == "kingdom":
        if not parts[0] and label != ANIMAL:
            return None  # blank, vehicle: no kingdom
    elif not parts[kept - 1]:
        return None  # the label is above that level
    return taxonomy.get(";".join(parts[:kept] + [""] * (5 - kept)))


class Ensemble:
    """SpeciesNet's ensemble for one model folder and one place (country, admin1 region)."""

    def __init__(
        self,
        taxonomy: dict[str, str],
        geofence: dict[str, Any],
        country: str | None = None,
        admin1_region: str | None = None,
    ) -> None:
        if country is not None and len(country) != 3:
            raise ValueError(f"country must be an ISO 3166-1 alpha-3 code, got {country!r}")
        if admin1_region is not None and len(admin1_region) != 2:
            raise ValueError(f"admin1_region must be a 2-letter code, got {admin1_region!r}")
        self.taxonomy = taxonomy
        self.geofence = geofence
        self.country = country
        self.admin1_region = admin1_region if country else None  # SpeciesNet ignores a region without a country

    @classmethod
    def from_files(cls, taxonomy_text: str, geofence_text: str, **place: str | None) -> Ensemble:
        return cls(load_taxonomy(taxonomy_text), json.loads(geofence_text), **place)

    def excluded(self, label: str) -> bool:
        """Whether the geofence rules out ``label`` where the photos were taken."""
        if not self.country:
            return False
        rules = self.geofence.get(taxa(label))
        if not rules:
            return False
        allowed = rules.get("allow")
        if allowed:
            if self.country not in allowed:
                return True
            regions = allowed[self.country]
            if self.admin1_region and regions and self.admin1_region not in regions:
                return True
        blocked = rules.get("block")
        if blocked and self.country in blocked:
            regions = blocked[self.country]
            if not regions or (self.admin1_region and self.admin1_region in regions):
                return True
        return False

    def roll_up(
        self, labels: list[str], scores: list[float], levels: tuple[str, ...], threshold: float
    ) -> Prediction | None:
        """The first level whose best allowed ancestor's summed score passes ``threshold``."""
        for level in levels:
            sums: dict[str, float] = {}
            for label, score in zip(labels, scores, strict=True):
                parent = ancestor(label, level, self.taxonomy)
                if parent:
                    sums[parent] = sums.get(parent, 0.0) + score
            best, best_score = None, 0.0
            for parent, total in sums.items():  # first seen wins a tie, as in SpeciesNet
                if total > best_score and not self.excluded(parent):
                    best, best_score = parent, total
            if best and best_score > threshold:
                return Prediction(best, best_score, f"classifier+rollup_to_{level}")
        return None

    def geofenced(self, labels: list[str], scores: list[float]) -> Prediction:
        """The top class, or when the geofence excludes it, its roll-up to an allowed taxon that keeps its score."""
        if not self.excluded(labels[0]):
            return Prediction(labels[0], scores[0], "classifier")
        rollup = self.roll_up(labels, scores, GEOFENCE_ROLLUP_LEVELS, scores[0] - 1e-10)
        if rollup is None:
            return Prediction(UNKNOWN, scores[0], "classifier+geofence+rollup_failed")
        return Prediction(
            rollup.label, rollup.score, "classifier+geofence+" + rollup.source.removeprefix("classifier+")
        )

    def predict(self, labels: list[str], scores: list[float], detection: str, conf: float) -> Prediction:
        """The final prediction for one detection.

        Args:
            labels, scores: the classifier's top 5 (best first).
            detection: the detection's category, ``animal``, ``person`` or ``vehicle`` (ours or SpeciesNet's words).
            conf: the detection's confidence.
        """
        detection = DETECTION_LABELS.get(detection, detection)
        top, top_score = labels[0], scores[0]
        if detection == "human":
            if conf > 0.7:
                return Prediction(HUMAN, conf, "detector")
            if conf > 0.2 and top in (HUMAN, VEHICLE) and top_score > 0.5:
                return Prediction(HUMAN, top_score, "classifier")
        if detection == "vehicle":
            if conf > 0.2 and top == HUMAN and top_score > 0.5:
                return Prediction(HUMAN, top_score, "classifier")
            if conf > 0.7:
                return Prediction(VEHICLE, conf, "detector")
            if conf > 0.2 and top == VEHICLE and top_score > 0.4:
                return Prediction(VEHICLE, top_score, "classifier")
        if top == BLANK and ((conf < 0.2 and top_score > 0.5) or top_score > 0.99):
            return Prediction(BLANK, top_score, "classifier")
        if top not in (BLANK, HUMAN, VEHICLE) and (
            top_score > 0.8 or (top_score > 0.65 and detection == "animal" and conf > 0.2)
        ):
            return self.geofenced(labels, scores)
        rollup = self.roll_up(labels, scores, ROLLUP_LEVELS, ROLLUP_THRESHOLD)
        if rollup is not None:
            return rollup
        if detection == "animal" and conf > 0.5:
            return Prediction(ANIMAL, conf, "detector")
        return Prediction(UNKNOWN, top_score, "classifier")
