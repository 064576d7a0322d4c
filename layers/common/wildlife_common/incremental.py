"""Incremental runs: which images earlier runs on the same input already processed.

After a successful run, materialize writes ``index/<input_id>/<run_id>.parquet`` with the URI and
ETag of every image it processed without failure, in listing order. An incremental run reads
those files in batches into one sorted array of fixed-size digests (16 bytes an image: 5 million
images take 80 MB; never one Python object per image) and skips any listed image whose digest is in
it, so a nightly schedule only processes what is new or changed.

The index files' format is the one every earlier version wrote and read (URI and ETag columns);
digests are computed when the files are read, so no file needs migrating. A planner that lists only
part of the input (a range of URIs: one camera folder) reads only that part: rows outside the range
are dropped as they are read, and row groups whose URI statistics lie outside it are not read.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wildlife_common import storage
from wildlife_common.layout import index_folder
from wildlife_common.schema import INDEX_SCHEMA

# 128-bit digests. A collision would skip one new image as if it were done. With 16 bytes the chance
# that any image of a 10-million-image listing matches another image's digest among 10 million done
# is about 1e7 x 1e7 / 2^128 = 3e-25 a run; with 8 bytes it would be 5e-6 a run, 1 in 500 over
# a decade of nightly runs: small, but 16 bytes cost only 40 MB more at 5 million images.
DIGEST_BYTES = 16
DIGEST = np.dtype(f"S{DIGEST_BYTES}")


def digest(uri: str, etag: str | None) -> bytes:
    """The digest of one version of one image (a changed file gets a new ETag, so a new digest)."""
    return hashlib.blake2b(f"{uri}\n{etag}".encode(), digest_size=DIGEST_BYTES).digest()


def uri_range(prefix: str) -> tuple[str, str]:
    """The URIs ``[start, stop)`` that start with ``prefix``, for :meth:`ProcessedImages.load`."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


class ProcessedImages:
    """Membership test against the images of earlier runs: a sorted array of digests."""

    def __init__(self, digests: np.ndarray) -> None:
        digests.sort()  # in place: no second copy of the array
        self._digests = digests
        # Two runs may have indexed the same image; duplicates change no answer, only the count.
        self._count = 1 + int(np.count_nonzero(digests[1:] != digests[:-1])) if digests.size else 0

    def __len__(self) -> int:
        """Distinct images."""
        return self._count

    def contains(self, uri: str, etag: str | None) -> bool:
        """Whether this URI with this ETag was processed before."""
        key = digest(uri, etag)
        pos = int(np.searchsorted(self._digests, key))
        # Compared as raw bytes: an element read out of an "S" array loses its trailing zero bytes.
        return self._digests[pos : pos + 1].tobytes() == key

    @classmethod
    def load(cls, output_root: str, input_id: str, *, start: str = "", stop: str | None = None) -> ProcessedImages:
        """Read the index files written for this input (none yet: an empty set).

        Only images with ``start <= uri < stop`` are kept (all by default), so a planner that lists
        one part of the input holds only that part's digests.
        """
        try:
            files = [f for f in storage.list_files(index_folder(output_root, input_id)) if f.uri.endswith(".parquet")]
        except storage.InputNotFound:  # no index folder yet: the first run on this input
            files = []
        digests = np.empty(0, DIGEST)
        used = 0
        for info in files:
            with tempfile.TemporaryDirectory(prefix="index-") as work:
                # From a local file, not memory: Parquet takes ~19 bytes an image (93 MB at 5 million,
                # bench/RESULTS.md), so Lambda's default 512 MB of /tmp holds one run of 25 million.
                path = info.uri if not storage.is_s3(info.uri) else str(Path(work, "index.parquet"))
                if path != info.uri:
                    storage.download_file(info.uri, path)
                parquet = pq.ParquetFile(path)
                groups = _row_groups(parquet, start, stop)
                # One reallocation a file, to at most its row count (realloc extends large arrays in
                # place: no second copy of what is already read).
                digests.resize(used + sum(parquet.metadata.row_group(g).num_rows for g in groups), refcheck=False)
                for group in groups:
                    # A row group at a time, one thread: materialize writes one a shard (2,000 rows by
                    # default, 100,000 at most), so a few MB are decoded at once. iter_batches would
                    # hold 30 MB more in pyarrow's pool for the same rows (measured at 1M rows).
                    table = parquet.read_row_group(group, columns=INDEX_SCHEMA.names, use_threads=False)
                    part = _digests(table, start, stop)
                    digests[used : used + part.size] = part
                    used += part.size
        digests.resize(used, refcheck=False)
        return cls(digests)


def _row_groups(parquet: pq.ParquetFile, start: str, stop: str | None) -> list[int]:
    """The row groups that may hold URIs in ``[start, stop)``, by their statistics (kept when absent)."""
    column = parquet.schema_arrow.get_field_index("image_uri")
    groups = []
    for group in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(group).column(column).statistics
        if stats is not None and stats.has_min_max and (stats.max < start or (stop is not None and stats.min >= stop)):
            continue
        groups.append(group)
    return groups


def _digests(table: pa.Table, start: str, stop: str | None) -> np.ndarray:
    uris, etags = table.column("image_uri").to_pylist(), table.column("image_etag").to_pylist()
    joined = b"".join(
        digest(uri, etag)
        for uri, etag in zip(uris, etags, strict=True)
        if start <= uri and (stop is None or uri < stop)
    )
    return np.frombuffer(joined, DIGEST)


class IndexWriter:
    """Streams one run's processed images into its index file (bounded memory for any run size)."""

    def __init__(self, output_root: str, input_id: str, run_id: str, workdir: str) -> None:
        self.uri = storage.join(index_folder(output_root, input_id), f"{run_id}.parquet")
        self._path = f"{workdir}/index.parquet"
        self._writer = pq.ParquetWriter(self._path, INDEX_SCHEMA, compression="zstd")

    def add(self, uris: list[str], etags: list[str | None]) -> None:
        """Add images (URI, ETag) that were processed without failure."""
        if uris:
            self._writer.write_table(pa.table({"image_uri": uris, "image_etag": etags}, schema=INDEX_SCHEMA))

    def close(self) -> str:
        """Finish the file and store it; returns its URI."""
        self._writer.close()
        storage.upload_file(self._path, self.uri)
        return self.uri
