"""An S3 Inventory report as a run's input: the bucket's own list of its objects, no listing needed.

S3 writes an inventory of a bucket daily or weekly when the bucket has an inventory configuration:
``manifest.json`` names the source bucket, the report's format and its data files in the destination
bucket (``destination-prefix/source-bucket/config-ID/YYYY-MM-DDTHH-MMZ/manifest.json``). A run whose
input is such a manifest reads the data files instead of listing the bucket: no List requests for
ten million keys, and each data file is one part of the listing (``listing``), read by its own lister.
Images are named relative to the source bucket, so the report of any day is the same input as
``s3://source-bucket/`` for incremental runs: a nightly run on the newest report skips what the
runs before it did, whichever report (or listing) they read.

What the format holds (Amazon S3 User Guide, "Amazon S3 Inventory"):
- CSV data files are gzipped, without a header; ``fileSchema`` names their columns ("Bucket, Key,
  VersionId, IsLatest, IsDeleteMarker, Size, ..."). Keys are URL-encoded as in a form, a space as
  "+" and a "+" as "%2B" (``unquote_plus``).
- Parquet and ORC files name their columns in snake case (bucket, key, size, e_tag, is_latest,
  is_delete_marker); keys are as they are. Both are read with pyarrow, which the layer carries.
- A report of all versions also lists older versions and delete markers, and any report lists the
  console's folder placeholders (keys ending in "/", which a listing skips): none is a photo to read
  (``not_files`` in the counts).
- Size and ETag are optional fields of a report; a run needs both (the ETag tells a changed photo
  from the one an earlier run read), so a report without them is refused with the fix.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from wildlife_common import storage
from wildlife_common.errors import AccessDenied, ConfigError, InputNotFound
from wildlife_common.records import PlanCounts

MANIFEST_NAME = "manifest.json"
# In place of a report's folder (``.../config-ID/*/manifest.json``): the newest report of that
# inventory configuration, so that a schedule's fixed input reads tonight's report.
NEWEST = "*"

# The columns a run reads, by their names in CSV's fileSchema and in Parquet and ORC files.
CSV_COLUMNS = {"key": "Key", "size": "Size", "etag": "ETag", "latest": "IsLatest", "marker": "IsDeleteMarker"}
COLUMNAR_COLUMNS = {"key": "key", "size": "size", "etag": "e_tag", "latest": "is_latest", "marker": "is_delete_marker"}
FORMATS = ("CSV", "Parquet", "ORC")

# Rows of a Parquet or ORC file turned into Python values at a time: a few MB, whatever the file.
COLUMNAR_BATCH_ROWS = 65_536


def is_inventory(uri: str) -> bool:
    """Whether a run's input names an S3 Inventory report (its ``manifest.json``), not a folder."""
    return uri.replace("\\", "/").rsplit("/", 1)[-1] == MANIFEST_NAME


def input_root(input_uri: str) -> str:
    """The folder a run's image paths are relative to, which also names its index of processed images
    (``provenance.input_id``): an inventory's source bucket, else the input folder (a photo's own
    folder when the input is one photo, so that runs on the folder skip it once it is done)."""
    return read(input_uri).root if is_inventory(input_uri) else storage.list_input(input_uri)[0]


def resolve(uri: str) -> str:
    """The manifest a report input names: itself, or for ``.../config-ID/*/manifest.json`` the newest.

    S3 names a report's folder by the time it began (``YYYY-MM-DDTHH-MMZ``), so the newest is the
    greatest such name of a folder that holds a manifest.json (a report still being delivered has none
    yet: S3 writes the manifest after the data files). ``data/`` and ``hive/``, beside them, are not
    reports: names that do not start with a year are not looked into.

    Raises:
        InputNotFound: no folder there holds a report.
    """
    parent, _, rest = uri.replace("\\", "/").rpartition(f"/{NEWEST}/")
    if rest != MANIFEST_NAME:
        return uri
    if storage.is_s3(uri) and storage.split_s3(uri)[0] in ("", NEWEST):
        raise ConfigError(f"{uri}: {NEWEST!r} stands for a report's folder, not for a bucket")
    folders = [f for f in storage.list_folders(parent + "/") if f.rstrip("/").rsplit("/", 1)[-1][:1].isdigit()]
    for folder in sorted(folders, reverse=True):
        if storage.exists(folder + MANIFEST_NAME):
            return folder + MANIFEST_NAME
    raise InputNotFound(f"no S3 Inventory report (a folder with {MANIFEST_NAME}) in {parent}/")


@dataclass(frozen=True)
class DataFile:
    """One part of an inventory input: the rows of one data file after the first ``after_row``."""

    uri: str
    after_row: int = 0


@dataclass(frozen=True)
class Inventory:
    """What a manifest.json says: whose objects, in which format, in which files."""

    manifest: str
    bucket: str
    """The source bucket: the objects listed are in it."""
    file_format: str
    csv_columns: tuple[str, ...]
    """CSV only: the columns of every row, in order (fileSchema)."""
    files: tuple[str, ...]
    """The data files' URIs, in the manifest's order."""
    size: int
    """The data files' bytes, all together, as the manifest gives them."""

    @property
    def root(self) -> str:
        """The folder image paths are relative to: the source bucket."""
        return f"{storage.S3_SCHEME}{self.bucket}/"

    def objects(self, part: DataFile | None, counts: PlanCounts) -> Iterator[storage.FileInfo]:
        """The current objects of one data file (after its first ``after_row`` rows), or of all.

        Older versions, delete markers and folder placeholders are counted as ``not_files``; every row
        read is either that or a file yielded, so ``after_row`` plus both counts is where a lister stopped.
        """
        parts = [part] if part is not None else [DataFile(uri) for uri in self.files]
        for each in parts:
            for key, size, etag, current in self._rows(each):
                if not current or key.endswith("/"):
                    counts["not_files"] = counts.get("not_files", 0) + 1
                    continue
                yield storage.FileInfo(f"{self.root}{key}", size, etag.strip('"'))

    def _rows(self, part: DataFile) -> Iterator[tuple[str, int, str, bool]]:
        """(key, size, ETag, whether it is the current version) of each row after ``part.after_row``."""
        data = _read_report_file(part.uri)
        if self.file_format == "CSV":
            return _csv_rows(data, self.csv_columns, part.after_row)
        return _columnar_rows(data, self.file_format, part.after_row, part.uri)


def read(uri: str) -> Inventory:
    """Read and check a manifest.json: one line says what is wrong with it, before anything is listed.

    Raises:
        InputNotFound: there is no such file.
        ConfigError: it is not an inventory manifest, or the report lacks a column a run needs.
    """
    try:
        manifest = json.loads(_read_report_file(uri))
    except FileNotFoundError as error:
        raise InputNotFound(f"no such S3 Inventory manifest: {uri}") from error
    except ValueError as error:
        raise ConfigError(f"{uri} is not an S3 Inventory manifest: it is not JSON ({error})") from error
    required = ("sourceBucket", "destinationBucket", "fileFormat", "fileSchema", "files")
    missing = [key for key in required if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise ConfigError(f"{uri} is not an S3 Inventory manifest: it has no {', '.join(missing)}")
    file_format = next((f for f in FORMATS if f.lower() == str(manifest["fileFormat"]).lower()), None)
    if file_format is None:
        raise ConfigError(
            f"{uri}: unknown inventory fileFormat {manifest['fileFormat']!r} (expected CSV, Parquet or ORC)"
        )
    schema = str(manifest["fileSchema"])
    columns = tuple(name.strip() for name in schema.split(",")) if file_format == "CSV" else ()
    names = set(columns) if file_format == "CSV" else _schema_names(schema)
    wanted = CSV_COLUMNS if file_format == "CSV" else COLUMNAR_COLUMNS
    lacking = [wanted[field] for field in ("key", "size", "etag") if wanted[field] not in names]
    if lacking:
        raise ConfigError(
            f"the S3 Inventory report {uri} has no {', '.join(lacking)} field: a run needs Size and ETag "
            "(the ETag tells a changed photo from one read before). Add them to the inventory "
            "configuration's additional fields; the next report has them"
        )
    # "arn:aws:s3:::bucket" (or another partition's ARN): the bucket is what follows the last colon.
    destination = str(manifest["destinationBucket"]).rsplit(":", 1)[-1]
    files = tuple(f"{storage.S3_SCHEME}{destination}/{entry['key']}" for entry in manifest["files"])
    size = sum(int(entry.get("size") or 0) for entry in manifest["files"])
    return Inventory(uri, str(manifest["sourceBucket"]), file_format, columns, files, size)


def _read_report_file(uri: str) -> bytes:
    """A file of the report (its manifest or a data file); access denied names the setting to fix."""
    try:
        return storage.read_bytes(uri)
    except AccessDenied as error:
        bucket = storage.split_s3(uri)[0]
        raise AccessDenied(
            f"access denied reading the S3 Inventory report's {uri}: the pipeline's role needs read access to "
            f"bucket {bucket!r} (deployed: the stack's InventoryBucketName parameter, or InputBucketName when "
            "the reports are in the input bucket), and, for a report encrypted with SSE-KMS, use of its key "
            "(InventoryKmsKeyArn)"
        ) from error


def _schema_names(schema: str) -> set[str]:
    """Column names in a Parquet ("message s3.inventory { required binary key (UTF8); ...}") or ORC
    ("struct<bucket:string,key:string,...>") fileSchema: the word before each type's end."""
    names: set[str] = set()
    if schema.lstrip().startswith("struct<"):
        for field in schema.strip()[len("struct<") : -1].split(","):
            names.add(field.split(":", 1)[0].strip())
        return names
    for field in schema.split("{", 1)[-1].split(";"):
        words = field.split("(", 1)[0].split()
        if len(words) >= 3:  # "optional int64 size"
            names.add(words[2])
    return names


def _csv_rows(data: bytes, columns: tuple[str, ...], after_row: int) -> Iterator[tuple[str, int, str, bool]]:
    at = {field: columns.index(name) for field, name in CSV_COLUMNS.items() if name in columns}
    latest, marker = at.get("latest"), at.get("marker")
    with gzip.open(io.BytesIO(data), "rt", encoding="utf-8", newline="") as text:
        for number, row in enumerate(csv.reader(text)):
            if number < after_row:
                continue
            current = (latest is None or row[latest].lower() != "false") and (
                marker is None or row[marker].lower() != "true"
            )
            size = row[at["size"]]
            yield unquote_plus(row[at["key"]]), int(size) if size else 0, row[at["etag"]], current


def _columnar_rows(data: bytes, file_format: str, after_row: int, uri: str) -> Iterator[tuple[str, int, str, bool]]:
    import pyarrow as pa

    batches = _batches(pa.BufferReader(data), file_format, uri)
    seen = 0
    for batch in batches:
        if seen + batch.num_rows <= after_row:  # a whole batch before where this part goes on
            seen += batch.num_rows
            continue
        start = max(0, after_row - seen)  # rows of this batch listed before
        seen += batch.num_rows
        batch = batch.slice(start)
        names = set(batch.schema.names)
        column = {
            field: batch.column(name).to_pylist() if name in names else None for field, name in COLUMNAR_COLUMNS.items()
        }
        latest = column["latest"] or [None] * batch.num_rows
        marker = column["marker"] or [None] * batch.num_rows
        for key, size, etag, is_latest, is_marker in zip(
            column["key"] or [], column["size"] or [], column["etag"] or [], latest, marker, strict=True
        ):
            yield key, size or 0, etag or "", is_latest is not False and is_marker is not True


def _batches(source: Any, file_format: str, uri: str) -> Iterable[Any]:
    """The record batches of a Parquet or ORC file, only the columns a run reads."""
    import pyarrow.lib

    wanted = set(COLUMNAR_COLUMNS.values())
    try:
        if file_format == "Parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(source)
            columns = [name for name in parquet.schema_arrow.names if name in wanted]
            return parquet.iter_batches(batch_size=COLUMNAR_BATCH_ROWS, columns=columns)
        import pyarrow as pa
        import pyarrow.orc as orc

        stripes = orc.ORCFile(source)
        columns = [name for name in stripes.schema.names if name in wanted]
        # A stripe is one batch (S3 writes them tens of MB large): cut into slices, without copying.
        return (
            batch
            for stripe in range(stripes.nstripes)
            for batch in pa.Table.from_batches([stripes.read_stripe(stripe, columns=columns)]).to_batches(
                COLUMNAR_BATCH_ROWS
            )
        )
    except pyarrow.lib.ArrowException as error:
        raise ConfigError(f"the inventory data file {uri} is not a readable {file_format} file: {error}") from error
