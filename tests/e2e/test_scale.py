"""Fifty thousand photos through the real state machine: planned by parallel listers (ListInput), run
in many shards, every image in the table once.

Tiny images (32 x 32 px) and the demo detector at 32 px keep it to a few minutes on a CPU; what is
tested is the pipeline's bookkeeping at size (listing ranges, joined shards, 50 Map items,
materialize), which is the same for a photo of any size.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.e2e.conftest import demo_config
from wildlife.engine.local import LocalEngine

# 12,000 images took 28 s here with the full test suite running beside it: 50,000 take about two
# minutes; 900 s leaves room for a slower machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PHOTOS = 50_000
# Camera folders of uneven sizes (700 to 1,300 photos), so ranges end with partly filled shards.
CAMERAS = 50
SHARD_SIZE = 1_000


def test_fifty_thousand_photos_listed_in_parallel_are_each_in_the_table_once(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 120, 80)).save(buffer, "JPEG", quality=50)
    jpeg = buffer.getvalue()
    random.seed(50)
    sizes = [random.randint(700, 1_300) for _ in range(CAMERAS - 1)]
    sizes.append(PHOTOS - sum(sizes))
    photos = tmp_path / "photos"
    expected = []
    for camera, count in enumerate(sizes):
        folder = photos / f"cam{camera:02d}"
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"IMG_{i:05d}.JPG").write_bytes(jpeg)
            expected.append(f"cam{camera:02d}/IMG_{i:05d}.JPG")
        (folder / "Thumbs.db").write_bytes(b"not a photo")
    (photos / ".thumbnails").mkdir()
    (photos / ".thumbnails" / "x.jpg").write_bytes(jpeg)
    out = tmp_path / "out"
    config = demo_config(photos, out, run_id="big", detection_only=True, image_size=32, shard_size=SHARD_SIZE)
    for key in ("classifier", "classifier_arch", "classifier_labels"):
        config.pop(key)
    # Past 10,000 files the input is listed in parallel ranges, as ten million would be past 200,000.
    config.update(list_in_parallel_above=10_000, batch_size=64)

    with LocalEngine(short_waits=True, log_dir=tmp_path / "logs") as engine:
        result = engine.run(config, timeout_s=800)

    assert result.succeeded, result.cause
    run = out / "runs" / "big"
    record = json.loads((run / "run.json").read_text())
    # A range before the first folder, one from each of the 50 cameras and one from .thumbnails on.
    assert record["listing"] == {"parts": 52, "rounds": 1, "listers": 52}
    assert record["counts"] == {
        "listed": PHOTOS + CAMERAS + 1,
        "not_images": CAMERAS,
        "skipped": 0,
        "hidden": 1,
        "images": PHOTOS,
    }
    plan = json.loads((run / "stage1" / "plan.json").read_text())
    assert len(plan) == PHOTOS // SHARD_SIZE and all(ref["images"] == SHARD_SIZE for ref in plan)
    images = pq.read_table(io.BytesIO((run / "final" / "detections.parquet").read_bytes()), columns=["image"])
    listed = images.column("image").to_pylist()
    assert len(set(listed)) == PHOTOS and sorted(set(listed)) == sorted(expected)
    summary = json.loads((run / "final" / "summary.json").read_text())
    assert summary["images"] == PHOTOS and summary["balanced"] is True and summary["failed_images"] == 0
    assert summary["shards"]["stage1"] == {"planned": PHOTOS // SHARD_SIZE, "committed": PHOTOS // SHARD_SIZE}
