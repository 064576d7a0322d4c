"""The index of processed images: digests in a sorted array, read a part at a time, bounded memory."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from wildlife_common.incremental import DIGEST, IndexWriter, ProcessedImages, _row_groups, digest, uri_range
from wildlife_common.layout import index_folder


def write_run(root: Path, run_id: str, shards: list[list[tuple[str, str]]]) -> str:
    """An index file as materialize writes it: one ``add`` (one row group) per shard."""
    work = root / f"work-{run_id}"
    work.mkdir()
    writer = IndexWriter(str(root), "input", run_id, str(work))
    for shard in shards:
        writer.add([uri for uri, _ in shard], [etag for _, etag in shard])
    return writer.close()


def test_a_part_of_the_input_reads_only_its_part_of_the_index(tmp_path: Path) -> None:
    """A planner that lists one camera folder holds that folder's digests and skips the row groups
    of the others by their statistics."""
    cam1 = [(f"s3://traps/cam1/{i}.jpg", f"e{i}") for i in range(3)]
    cam2 = [(f"s3://traps/cam2/{i}.jpg", f"e{i}") for i in range(3)]
    cam10 = [("s3://traps/cam10/0.jpg", "e0")]  # shares "cam1" but not "cam1/"
    uri = write_run(tmp_path, "r1", [cam1, cam10, cam2])

    start, stop = uri_range("s3://traps/cam1/")
    part = ProcessedImages.load(str(tmp_path), "input", start=start, stop=stop)
    assert len(part) == 3 and all(part.contains(u, e) for u, e in cam1)
    assert not part.contains(*cam10[0]) and not part.contains(*cam2[0])
    assert _row_groups(pq.ParquetFile(uri), start, stop) == [0]  # cam10's and cam2's groups are not read
    everything = ProcessedImages.load(str(tmp_path), "input")
    assert len(everything) == 7 and all(everything.contains(u, e) for u, e in cam1 + cam2 + cam10)


def test_an_image_indexed_by_two_runs_counts_once_and_a_new_etag_is_new(tmp_path: Path) -> None:
    write_run(tmp_path, "r1", [[("s3://traps/a.jpg", "1"), ("s3://traps/b.jpg", "1")]])
    write_run(tmp_path, "r2", [[("s3://traps/b.jpg", "1")]])
    processed = ProcessedImages.load(str(tmp_path), "input")
    assert len(processed) == 2
    assert processed.contains("s3://traps/b.jpg", "1") and not processed.contains("s3://traps/b.jpg", "2")
    assert len(ProcessedImages.load(str(tmp_path), "another-input")) == 0  # no index folder yet


def test_digests_are_128_bits_and_one_ending_in_zero_bytes_is_found() -> None:
    """numpy drops trailing zero bytes of an "S" element it hands out; the lookup compares raw bytes."""
    uri = next(u for i in itertools.count() if digest(u := f"s3://traps/{i}.jpg", "e").endswith(b"\0"))
    assert len(digest(uri, "e")) == 16
    others = [digest(f"s3://traps/other-{i}.jpg", "e") for i in range(100)]
    processed = ProcessedImages(np.frombuffer(b"".join([*others, digest(uri, "e")]), DIGEST).copy())
    assert processed.contains(uri, "e") and not processed.contains(uri, "f")


def test_loading_holds_digests_not_one_python_object_per_image(tmp_path: Path) -> None:
    """300,000 processed images: 4.8 MB of digests; their URIs and ETags as Python strings would
    take 50 MB (5 million: 1.9 GB, which ran the planner Lambda out of memory)."""
    images = 300_000
    rows = [
        (f"s3://traps/site{i // 100_000}/cam{i // 5_000 % 20:02d}/RCNX{i % 5_000:04d}.JPG", f"{i:032x}")
        for i in range(images)
    ]
    write_run(tmp_path, "r1", [rows[i : i + 2_000] for i in range(0, images, 2_000)])
    del rows
    tracemalloc.start()
    processed = ProcessedImages.load(str(tmp_path), "input")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(processed) == images and processed.contains("s3://traps/site1/cam00/RCNX0000.JPG", f"{100_000:032x}")
    assert peak < 12 * 2**20, f"{peak / 2**20:.0f} MiB"
    assert Path(index_folder(str(tmp_path), "input"), "r1.parquet").exists()
