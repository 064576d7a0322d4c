"""Our SpeciesNet ensemble (``wildlife_common.speciesnet_ensemble``) against the ``speciesnet`` package's own rules.

Thousands of cases drawn to reach every rule: top-5 lists of the stand-in folder's labels (species,
blank, human, vehicle, animal, and the taxa above them) with peaked and flat scores, detections of
each category at confidences on and around the rules' thresholds (0.2, 0.5, 0.7), and places with
and without geofence rules (no country, Kenya, the USA in a listed and an unlisted state, Britain).
The package decides each case in its own process (``tests/reference/speciesnet_ensemble.py``); every
answer must be the same label, score and source.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from wildlife_common.speciesnet_ensemble import Ensemble

from demo.speciesnet_folder import ANCESTORS, LABELS, build_folder
from tests.speciesnet_reference import decide

PLACES = [(None, None), ("KEN", None), ("USA", "CA"), ("USA", "NY"), ("USA", None), ("GBR", None), ("TZA", "XX")]
CASES_PER_PLACE = 600
CONFS = (0.05, 0.1, 0.19, 0.2, 0.21, 0.5, 0.51, 0.69, 0.7, 0.71, 0.95)
"""Detection confidences on and beside every threshold the rules compare with (strictly)."""

pytestmark = pytest.mark.slow


def _cases(rng: random.Random) -> list[dict]:
    pool = [*LABELS, *ANCESTORS]
    cases = []
    for _ in range(CASES_PER_PLACE):
        classes = rng.sample(pool, 5)
        shape = rng.choice([0.999, 0.95, 0.85, 0.7, 0.55, 0.4, 0.25])  # how peaked the top score is
        top = shape * rng.uniform(0.97, 1.0)
        rest = sorted((rng.uniform(0, 1 - top) for _ in range(4)), reverse=True)
        total = sum(rest)
        rest = [r * (1 - top) / total * rng.uniform(0.5, 1.0) for r in rest] if total else rest
        scores = sorted([top, *rest], reverse=True)
        cases.append(
            {
                "classes": classes,
                "scores": scores,
                "label": rng.choice(["animal", "human", "vehicle"]),
                "conf": rng.choice(CONFS) if rng.random() < 0.6 else rng.random(),
            }
        )
    return cases


def test_every_case_gets_speciesnets_own_answer(tmp_path: Path) -> None:
    folder = build_folder(tmp_path / "speciesnet")
    taxonomy, geofence = (folder / "taxonomy.txt").read_text(), (folder / "geofence.json").read_text()
    rng = random.Random(0)
    groups = [
        {"country": country, "admin1_region": region if country else None, "cases": _cases(rng)}
        for country, region in PLACES
    ]
    compared, sources = 0, set()
    for group, theirs in zip(groups, decide(folder, groups, tmp_path), strict=True):
        ensemble = Ensemble.from_files(
            taxonomy, geofence, country=group["country"], admin1_region=group["admin1_region"]
        )
        for case, their in zip(group["cases"], theirs, strict=True):
            ours = ensemble.predict(case["classes"], case["scores"], case["label"], case["conf"])
            assert (ours.label, ours.score, ours.source) == (their["class"], their["score"], their["source"]), case
            sources.add(ours.source.split("+rollup_to_")[0] + ("+rollup" if "rollup_to" in ours.source else ""))
            compared += 1
    print(f"{compared} cases, 0 disagreements; sources seen: {sorted(sources)}")
    # Every kind of answer was reached: detector overrides, the classifier's, geofence and plain roll-ups.
    assert {"detector", "classifier", "classifier+rollup", "classifier+geofence+rollup"} <= sources
