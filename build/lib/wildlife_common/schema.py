"""The result tables: one schema for stage-1 shards and the final table, one for stage 2.

``detections.parquet`` has one row per detection; an image with no detection has one row whose
detection fields are null; a failed image has one row with ``failure`` set. So every input image
appears at least once, and ``COUNT(DISTINCT image)`` is the number of inputs.
"""

from __future__ import annotations

import pyarrow as pa

# Lists name their items "element" and times are milliseconds, as Parquet stores them, so a table
# read back from a file has exactly this schema.

DETECTION_SCHEMA = pa.schema(
    [
        pa.field("image", pa.string(), nullable=False),  # relative to the input root = MegaDetector "file"
        pa.field("image_uri", pa.string(), nullable=False),
        pa.field("image_etag", pa.string()),  # with image_uri, what incremental runs skip on
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("datetime", pa.timestamp("ms")),  # EXIF capture time, camera's local clock (no zone)
        pa.field("failure", pa.string()),
        pa.field("detection", pa.int32()),  # index within the image, by descending confidence
        pa.field("category", pa.string()),  # animal, person, vehicle
        pa.field("conf", pa.float32()),
        # Normalized 0..1, top-left origin, the doubles MegaDetector computes (float32 would move some
        # values across a 4th-decimal boundary, and megadetector.json would then differ from its own).
        pa.field("bbox_x", pa.float64()),
        pa.field("bbox_y", pa.float64()),
        pa.field("bbox_w", pa.float64()),
        pa.field("bbox_h", pa.float64()),
        pa.field("crop_uri", pa.string()),
        pa.field("species", pa.string()),
        pa.field("species_conf", pa.float32()),
        pa.field("top5_species", pa.list_(pa.field("element", pa.string()))),
        pa.field("top5_conf", pa.list_(pa.field("element", pa.float32()))),
        pa.field("top5_labels", pa.list_(pa.field("element", pa.string()))),  # SpeciesNet: full labels of the top 5
        pa.field("species_label", pa.string()),  # SpeciesNet: the full taxonomy label of `species`
        pa.field("prediction_source", pa.string()),  # SpeciesNet: what decided `species` (classifier, ...)
        pa.field("detector", pa.string()),  # model id: file name and sha256 prefix
        pa.field("classifier", pa.string()),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
    ]
)

CLASSIFICATION_SCHEMA = pa.schema(
    [
        pa.field("shard", pa.string(), nullable=False),  # the stage-1 shard of the detection
        pa.field("image", pa.string(), nullable=False),
        pa.field("detection", pa.int32(), nullable=False),
        pa.field("crop_uri", pa.string()),  # none for SpeciesNet, which crops from the photo itself
        pa.field("species", pa.string()),
        pa.field("species_conf", pa.float32()),
        pa.field("top5_species", pa.list_(pa.field("element", pa.string()))),
        pa.field("top5_conf", pa.list_(pa.field("element", pa.float32()))),
        pa.field("top5_labels", pa.list_(pa.field("element", pa.string()))),
        pa.field("species_label", pa.string()),
        pa.field("prediction_source", pa.string()),
        pa.field("classifier", pa.string()),
        pa.field("failure", pa.string()),  # a crop that could not be read or classified
    ]
)

SPECIES_COLUMNS = (
    "species",
    "species_conf",
    "top5_species",
    "top5_conf",
    "top5_labels",
    "species_label",
    "prediction_source",
    "classifier",
)

# The columns of the incremental index: one row per image that a run processed without failure.
INDEX_SCHEMA = pa.schema([pa.field("image_uri", pa.string()), pa.field("image_etag", pa.string())])
