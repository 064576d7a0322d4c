"""Incremental runs: which images earlier runs on the same input already processed.

After a successful run, materialize writes ``index/<input_id>/<run_id>.parquet`` with the URI and
ETag of every image it processed without failure. An incremental run loads those files as one
sorted array of 64-bit keys (8 bytes an image: 10 million images take 80 MB) and skips any
listed image whose key is in it, so a nightly schedule only processes what is new or changed.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wildlife_common import storage
from wildlife_common.layout import index_folder
from wildlife_common.schema import INDEX_SCHEMA


def image_key(uri: str, etag: str) -> int:
    """A 64-bit key for one version of one image (a changed file gets a new ETag, so a new key)."""
    digest = hashlib.blake2b(f"{uri}\n{etag}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=False)


class ProcessedImages:
    """Membership test against the images of earlier runs."""

    def __init__(self, keys: np.ndarray) -> None:
        self._keys = np.unique(keys.astype(np.uint64))

    def __len__(self) -> int:
        return int(self._keys.size)

    def contains(self, uri: str, etag: str) -> bool:
        """Whether this URI with this ETag was processed before."""
        if not self._keys.size:
            return False
        key = np.uint64(image_key(uri, etag))
        pos = int(np.searchsorted(self._keys, key))
        return pos < self._keys.size and self._keys[pos] == key

    @classmethod
    def load(cls, output_root: str, input_id: str) -> ProcessedImages:
        """Read every index file written for this input (none yet: an empty set)."""
        parts = []
        try:
            files = [f for f in storage.list_files(index_folder(output_root, input_id)) if f.uri.endswith(".parquet")]
        except storage.InputNotFound:  # no index folder yet: the first run on this input
            files = []
        for info in files:
            table = pq.read_table(io.BytesIO(storage.read_bytes(info.uri)), schema=INDEX_SCHEMA)
            uris = table.column("image_uri").to_pylist()
            etags = table.column("image_etag").to_pylist()
            parts.append(np.fromiter((image_key(u, e) for u, e in zip(uris, etags, strict=True)), np.uint64, len(uris)))
        return cls(np.concatenate(parts) if parts else np.empty(0, np.uint64))


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
