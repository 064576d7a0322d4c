"""SpeciesNet's own ensemble rules, run in a process of its own: the reference for ``speciesnet_ensemble``.

Usage: ``python tests/reference/speciesnet_ensemble.py REQUEST.json RESULT.json``. The request names
the taxonomy and geofence files and groups of cases, each group a place (``country``,
``admin1_region``) and its cases: the classifier's top 5 (``classes``, ``scores``) and the detection
(``label`` in SpeciesNet's words, ``conf``). The result holds, per group, ``combine_predictions``'s
answer for each case (``class``, ``score``, ``source``), with the package's own taxonomy loader,
geofence and roll-up functions.
"""

from __future__ import annotations

import json
import sys


def main(request_path: str, result_path: str) -> None:
    with open(request_path) as handle:
        request = json.load(handle)
    from speciesnet.ensemble import _load_taxonomy_from_file
    from speciesnet.ensemble_prediction_combiner import combine_predictions
    from speciesnet.geofence_utils import geofence_animal_classification, roll_up_labels_to_first_matching_level

    with open(request["geofence"]) as handle:
        geofence = json.load(handle)
    taxonomy = _load_taxonomy_from_file(request["taxonomy"])
    results = [
        combine_predictions(
            classifications_list=[{"classes": c["classes"], "scores": c["scores"]} for c in group["cases"]],
            detections=[{"label": c["label"], "conf": c["conf"]} for c in group["cases"]],
            country=group.get("country"),
            admin1_region=group.get("admin1_region"),
            taxonomy_map=taxonomy,
            geofence_map=geofence,
            enable_geofence=True,
            geofence_fn=geofence_animal_classification,
            roll_up_fn=roll_up_labels_to_first_matching_level,
        )
        for group in request["groups"]
    ]
    with open(result_path, "w") as handle:
        json.dump({"results": results}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:3])
