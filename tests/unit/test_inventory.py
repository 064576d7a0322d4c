"""An S3 Inventory report as a run's input, through the real PlanDetection handler and moto S3.

The reports are written here in S3's own formats from the bucket's real version listing: gzipped
CSV without a header and with URL-encoded keys, Parquet and ORC with S3's snake_case columns, and
the manifest.json that names them. The bucket is versioned, so the reports also hold older versions
and delete markers, as a report of all versions does.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from typing import Any
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from wildlife_common import inventory, storage
from wildlife_common.errors import AccessDenied, ConfigError, InputNotFound
from wildlife_common.layout import RunLayout

from tests.conftest import load_handler
from tests.helpers import plan_through_handler, put_images
from tests.unit.test_plan_in_parallel import ShortLivedContext, planned_images

handler = load_handler("plan_detection").lambda_handler

# Keys that CSV's URL encoding must give back exactly: a space, a plus, a percent sign, a comma,
# a quote and letters outside ASCII.
ODD = ["cam 1/IMG 0001.JPG", "cam+2/a+b.jpg", "cam3/100% done.jpg", "cam3/x,y.jpg", 'cam3/"q".jpg', "Über/Wölfin.jpg"]
PHOTOS = [f"cam{c}/IMG_{i:04d}.JPG" for c in range(4) for i in range(12)] + ODD
OTHERS = ["notes.txt", ".thumbnails/t.jpg"]
FOLDER = "cam9/"  # the console's "Create folder": an empty object the report lists, a listing skips
REWRITTEN = "cam0/IMG_0003.JPG"  # written twice: the report lists both versions
DELETED = "cam1/IMG_0000.JPG"  # deleted: the report lists its version and a delete marker
MANIFEST = "s3://reports/inventory/traps/daily/2026-12-01T01-00Z/manifest.json"
SCHEMAS = {
    "CSV": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
    "Parquet": (
        "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary "
        "version_id (UTF8); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; "
        "optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8);}"
    ),
    "ORC": (
        "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:boolean,"
        "size:bigint,last_modified_date:timestamp,e_tag:string>"
    ),
}


@pytest.fixture
def traps(s3) -> list[str]:
    """A versioned bucket of photos, and the images a run over it must plan (current versions)."""
    s3.put_object(Bucket="pipeline", Key="models/detector.pt", Body=b"weights")
    s3.create_bucket(Bucket="reports")
    s3.put_bucket_versioning(Bucket="traps", VersioningConfiguration={"Status": "Enabled"})
    put_images(s3, "traps", PHOTOS + OTHERS)
    s3.put_object(Bucket="traps", Key=FOLDER, Body=b"")
    s3.put_object(Bucket="traps", Key=REWRITTEN, Body=b"a second version")
    s3.delete_object(Bucket="traps", Key=DELETED)
    return sorted(k for k in PHOTOS if k != DELETED)


def version_rows(s3: Any) -> list[dict[str, Any]]:
    """Every version and delete marker of the bucket, as a report of all versions lists them."""
    rows = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket="traps"):
        for version in page.get("Versions", []):
            rows.append(
                {
                    "bucket": "traps",
                    "key": version["Key"],
                    "version_id": version["VersionId"],
                    "is_latest": version["IsLatest"],
                    "is_delete_marker": False,
                    "size": version["Size"],
                    "last_modified_date": version["LastModified"],
                    "e_tag": version["ETag"].strip('"'),
                }
            )
        for marker in page.get("DeleteMarkers", []):
            rows.append(
                {
                    "bucket": "traps",
                    "key": marker["Key"],
                    "version_id": marker["VersionId"],
                    "is_latest": marker["IsLatest"],
                    "is_delete_marker": True,
                    "size": None,
                    "last_modified_date": marker["LastModified"],
                    "e_tag": None,
                }
            )
    return rows


def csv_file(rows: list[dict[str, Any]]) -> bytes:
    """Gzipped CSV as S3 writes it: every field quoted, no header, the key URL-encoded (space as +)."""
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for row in rows:
        writer.writerow(
            [
                row["bucket"],
                quote_plus(row["key"], safe=""),
                row["version_id"],
                str(row["is_latest"]).lower(),
                str(row["is_delete_marker"]).lower(),
                "" if row["size"] is None else row["size"],
                row["last_modified_date"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                row["e_tag"] or "",
            ]
        )
    return gzip.compress(text.getvalue().encode())


def columnar_file(rows: list[dict[str, Any]], file_format: str) -> bytes:
    schema = pa.schema(
        [
            ("bucket", pa.string()),
            ("key", pa.string()),
            ("version_id", pa.string()),
            ("is_latest", pa.bool_()),
            ("is_delete_marker", pa.bool_()),
            ("size", pa.int64()),
            ("last_modified_date", pa.timestamp("ms")),
            ("e_tag", pa.string()),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = io.BytesIO()
    if file_format == "Parquet":
        pq.write_table(table, sink, row_group_size=7, compression="snappy")  # as S3 does; several row groups
    else:
        orc.write_table(table, sink, stripe_size=1024, compression="zlib")  # as S3 writes ORC
    return sink.getvalue()


def write_report(s3: Any, file_format: str, *, files: int = 3, schema: str | None = None) -> str:
    """The bucket's inventory in ``files`` data files (rows in no particular order) and its manifest."""
    rows = version_rows(s3)
    random.Random(7).shuffle(rows)
    entries = []
    for number in range(files):
        part = rows[number::files]
        data = csv_file(part) if file_format == "CSV" else columnar_file(part, file_format)
        key = f"inventory/traps/daily/data/{number:02d}.{'csv.gz' if file_format == 'CSV' else file_format.lower()}"
        s3.put_object(Bucket="reports", Key=key, Body=data)
        entries.append({"key": key, "size": len(data), "MD5checksum": "0" * 32})
    manifest = {
        "sourceBucket": "traps",
        "destinationBucket": "arn:aws:s3:::reports",
        "version": "2016-11-30",
        "creationTimestamp": "1764550800000",
        "fileFormat": file_format,
        "fileSchema": schema or SCHEMAS[file_format],
        "files": entries,
    }
    storage.write_json(MANIFEST, manifest)
    return MANIFEST


def event(**config: Any) -> dict[str, Any]:
    settings = {"input": MANIFEST, "detector": "s3://pipeline/models/detector.pt", "shard_size": 8}
    return {"config": {**settings, **config}, "execution_name": "from-report"}


def current_etags(s3: Any) -> dict[str, str]:
    return {obj["Key"]: obj["ETag"].strip('"') for obj in s3.list_objects_v2(Bucket="traps")["Contents"]}


@pytest.mark.parametrize("file_format", ["CSV", "Parquet", "ORC"])
@pytest.mark.parametrize("in_parallel", [False, True], ids=["listed-whole", "one-part-a-file"])
def test_a_report_plans_the_current_version_of_every_photo_once(
    traps, s3, lambda_context, file_format, in_parallel
) -> None:
    write_report(s3, file_format)

    plan = plan_through_handler(handler, event(list_in_parallel_above=5 if in_parallel else 200_000), lambda_context)

    layout = RunLayout(plan["run_uri"])
    entries = [
        image
        for ref in storage.read_json(layout.plan_json)
        for image in storage.read_json(layout.shard_manifest("stage1", ref["shard"]))["images"]
    ]
    # Named relative to the bucket, as a run over s3://traps/ names them; the URI reads the object.
    assert sorted(e["image"] for e in entries) == traps and plan["images"] == len(traps)
    etags = current_etags(s3)
    assert all(e["uri"] == f"s3://traps/{e['image']}" and e["etag"] == etags[e["image"]] for e in entries)
    rewritten = next(e for e in entries if e["image"] == REWRITTEN)
    assert rewritten["size"] == len(b"a second version")
    record = storage.read_json(layout.run_json)
    # Older versions: REWRITTEN's first, DELETED's only one, and DELETED's delete marker; the folder.
    assert record["counts"]["not_files"] == 4
    assert record["counts"]["not_images"] == 1 and record["counts"]["hidden"] == 1
    assert record["counts"]["listed"] == len(PHOTOS) - 1 + len(OTHERS)
    if in_parallel:
        assert record["listing"] == {"parts": 3, "rounds": 1, "listers": 3}
    else:
        assert "listing" not in record


def test_a_report_larger_than_planning_lists_is_split_without_reading_its_data_files(
    traps, s3, lambda_context, monkeypatch
) -> None:
    write_report(s3, "CSV")
    read: list[str] = []
    original = storage.read_bytes
    monkeypatch.setattr(storage, "read_bytes", lambda uri: read.append(uri) or original(uri))

    # 5 rows at most listed here, and the data files hold far more than 5 x 20 bytes.
    first = handler(event(list_in_parallel_above=5), lambda_context)

    assert first["listing"]["part_count"] == 3
    assert [uri for uri in read if "/data/" in uri] == []  # each lister reads its own file, once
    assert sum(uri == MANIFEST for uri in read) == 1  # and PlanDetection the manifest, once


def test_the_newest_report_is_looked_for_in_report_folders_only(traps, s3) -> None:
    write_report(s3, "CSV")
    s3.put_object(Bucket="reports", Key="inventory/traps/daily/hive/dt=2026-12-01-01-00/symlink.txt", Body=b"")
    looked: list[str] = []
    original = storage.exists
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "exists", lambda uri: looked.append(uri) or original(uri))
        assert inventory.resolve("s3://reports/inventory/traps/daily/*/manifest.json") == MANIFEST
    assert looked == [MANIFEST]  # not data/ or hive/, which sort after the dates


@pytest.mark.parametrize("file_format", ["CSV", "Parquet", "ORC"])
def test_a_data_file_that_outlasts_its_lister_goes_on_at_the_row_where_it_stopped(
    traps, s3, monkeypatch, file_format
) -> None:
    write_report(s3, file_format, files=1)
    # Parquet and ORC are read in batches: 5 rows each here, so lister rounds stop inside batches.
    monkeypatch.setattr(inventory, "COLUMNAR_BATCH_ROWS", 5)
    context = ShortLivedContext()  # less than a minute left at every third check

    plan = plan_through_handler(handler, event(list_in_parallel_above=5, shard_size=4), context)

    images = planned_images(plan)
    assert sorted(images) == traps and len(images) == len(set(images))
    record = storage.read_json(RunLayout(plan["run_uri"]).run_json)
    assert record["listing"]["parts"] == 1 and record["listing"]["rounds"] > 2
    assert record["counts"]["not_files"] == 4


def test_a_report_is_the_same_input_as_its_bucket_for_incremental_runs(traps, s3, lambda_context, tmp_path) -> None:
    from wildlife_common.incremental import IndexWriter
    from wildlife_common.provenance import input_id

    # An earlier run over s3://traps/ (listed, not from a report) did the first camera.
    done = {f.uri: f.etag for f in storage.list_files("s3://traps/") if f.uri.startswith("s3://traps/cam0/")}
    index = IndexWriter("s3://pipeline/", input_id("s3://traps/"), "last-night", str(tmp_path))
    index.add(list(done), list(done.values()))
    index.close()
    write_report(s3, "Parquet")
    assert inventory.input_root(MANIFEST) == "s3://traps/"

    for above in (200_000, 5):
        plan = plan_through_handler(
            handler,
            {**event(incremental=True, list_in_parallel_above=above), "execution_name": f"nightly-{above}"},
            lambda_context,
        )
        assert plan["skipped"] == len(done) == 12
        assert sorted(planned_images(plan)) == [k for k in traps if not k.startswith("cam0/")]


def test_a_manifest_json_file_is_a_report_and_a_folder_of_that_name_is_not() -> None:
    assert inventory.is_inventory(MANIFEST) and inventory.is_inventory("/home/me/reports/manifest.json")
    assert not inventory.is_inventory("s3://traps/manifest.json/") and not inventory.is_inventory("s3://traps/")


def test_keys_are_decoded_as_s3_encodes_them() -> None:
    # Form encoding: a space is "+", a plus "%2B"; slashes may come encoded or not.
    data = gzip.compress(b'"traps","a+b%2Bc%2Fd/%C3%BC%25.jpg","7","abc"\n')
    rows = list(inventory._csv_rows(data, ("Bucket", "Key", "Size", "ETag"), 0))
    assert rows == [("a b+c/d/ü%.jpg", 7, "abc", True)]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, "no such S3 Inventory manifest"),
        (b"not json", "is not an S3 Inventory manifest: it is not JSON"),
        ({"sourceBucket": "traps"}, "it has no destinationBucket, fileFormat, fileSchema, files"),
        ({"fileFormat": "XML"}, "unknown inventory fileFormat 'XML'"),
        ({"fileSchema": "Bucket, Key, Size"}, "has no ETag field"),
        ({"fileFormat": "ORC", "fileSchema": "struct<bucket:string,key:string>"}, "has no size, e_tag field"),
    ],
)
def test_a_manifest_that_cannot_be_read_is_one_line_that_says_why(s3, manifest, message) -> None:
    s3.create_bucket(Bucket="reports")
    good = {
        "sourceBucket": "traps",
        "destinationBucket": "arn:aws:s3:::reports",
        "fileFormat": "CSV",
        "fileSchema": SCHEMAS["CSV"],
        "files": [],
    }
    if isinstance(manifest, bytes):
        storage.write_bytes(MANIFEST, manifest)
    elif isinstance(manifest, dict):
        whole = {**good, **manifest} if "sourceBucket" not in manifest else manifest
        storage.write_bytes(MANIFEST, json.dumps(whole).encode())

    with pytest.raises((ConfigError, InputNotFound)) as error:
        inventory.read(MANIFEST)

    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_report_of_a_bucket_the_pipeline_cannot_read_fails_in_planning(traps, s3, lambda_context) -> None:
    write_report(s3, "CSV")
    manifest = storage.read_json(MANIFEST)
    storage.write_json(MANIFEST, {**manifest, "sourceBucket": "elsewhere"})

    with pytest.raises(InputNotFound, match="bucket 'elsewhere' does not exist"):
        handler(event(), lambda_context)


def test_a_run_on_a_report_without_etags_fails_in_planning_with_the_fix(traps, s3, lambda_context) -> None:
    write_report(s3, "CSV", schema="Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate")

    with pytest.raises(ConfigError, match="Add them to the inventory configuration's additional fields"):
        handler(event(), lambda_context)


def test_materialize_never_reads_the_report(traps, s3, lambda_context) -> None:
    """Deployed, Materialize may not read the report's bucket, and a lifecycle rule may have deleted
    the report by then: the run's index of processed images is keyed on the bucket all the same."""
    from wildlife_common.layout import index_folder
    from wildlife_common.materialize import materialize
    from wildlife_common.provenance import input_id

    from tests.helpers import commit_detection_shard

    write_report(s3, "CSV")
    plan = plan_through_handler(handler, event(list_in_parallel_above=5), lambda_context)
    layout = RunLayout(plan["run_uri"])
    for ref in storage.read_json(layout.plan_json):
        commit_detection_shard(layout, ref["shard"], {})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="reports"):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket="reports", Key=obj["Key"])

    result = materialize(plan["run_uri"])

    assert result["images"] == len(traps)
    index = index_folder("s3://pipeline/", input_id("s3://traps/"))
    assert [f.uri.rsplit("/", 1)[1] for f in storage.list_files(index)] == ["from-report.parquet"]


def test_a_report_the_pipeline_may_not_read_names_the_setting_to_fix(s3, monkeypatch) -> None:
    def denied(uri: str) -> bytes:
        raise AccessDenied(f"access denied reading {uri} (AccessDenied)")

    monkeypatch.setattr(storage, "read_bytes", denied)

    with pytest.raises(AccessDenied) as error:
        inventory.read(MANIFEST)

    assert "bucket 'reports' (deployed: the stack's InventoryBucketName parameter" in str(error.value)


def test_a_star_for_the_reports_folder_reads_the_newest_report_found_when_the_run_is_planned(
    traps, s3, lambda_context
) -> None:
    """A schedule's input cannot name tonight's folder: ``.../daily/*/manifest.json`` does."""
    from tests.unit.test_plan_in_parallel import planned_images

    older = "s3://reports/inventory/traps/daily/2026-11-30T01-00Z/manifest.json"
    write_report(s3, "CSV")  # 2026-12-01T01-00Z: the newest complete report
    storage.write_json(older, {**storage.read_json(MANIFEST), "files": []})  # an older one, listing nothing
    s3.put_object(Bucket="reports", Key="inventory/traps/daily/hive/dt=2026-12-01-01-00/symlink.txt", Body=b"")
    newest = "s3://reports/inventory/traps/daily/*/manifest.json"
    assert inventory.resolve(newest) == MANIFEST and inventory.resolve(MANIFEST) == MANIFEST

    first = handler(event(input=newest, list_in_parallel_above=5), lambda_context)
    # A report that arrives while the run is listed is not this run's: its listers, and PlanDetection
    # run again (a retry), read the one found first. The later one names another bucket.
    later = "s3://reports/inventory/traps/daily/2026-12-02T01-00Z/manifest.json"
    storage.write_json(later, {**storage.read_json(MANIFEST), "sourceBucket": "pipeline"})
    assert inventory.resolve(newest) == later
    first = handler(event(input=newest, list_in_parallel_above=5), lambda_context)
    layout = RunLayout(first["run_uri"])
    for part in storage.read_json(layout.listing_json(1)):
        handler({"step": "list_part", "run_uri": first["run_uri"], "part": part}, lambda_context)
    plan = handler({"step": "assemble", "run": first}, lambda_context)

    assert sorted(planned_images(plan)) == traps
    record = storage.read_json(layout.run_json)
    assert record["report"] == MANIFEST and record["config"]["input"] == newest
    first_shard = storage.read_json(layout.shard_manifest("stage1", storage.read_json(layout.plan_json)[0]["shard"]))
    assert first_shard["input"] == MANIFEST and first_shard["images"][0]["uri"].startswith("s3://traps/")
    assert record["input_root"] == "s3://traps/"


def test_a_star_for_a_bucket_is_refused() -> None:
    with pytest.raises(ConfigError, match="stands for a report's folder, not for a bucket"):
        inventory.resolve("s3://*/manifest.json")


def test_a_star_where_no_report_is_yet_is_one_line(s3) -> None:
    s3.create_bucket(Bucket="reports")
    s3.put_object(Bucket="reports", Key="inventory/traps/daily/data/0.csv.gz", Body=b"")

    with pytest.raises(
        InputNotFound,
        match=r"no S3 Inventory report \(a folder with manifest.json\) in s3://reports/inventory/traps/daily/$",
    ):
        inventory.resolve("s3://reports/inventory/traps/daily/*/manifest.json")
