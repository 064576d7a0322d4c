"""``python -m bench.inventory`` (also run by ``make bench-scale``): a lister reading an S3 Inventory data file.

A run whose input is an S3 Inventory report lists nothing: each ListInput lister GETs one data file
of the report and reads its rows (``inventory``, ``listing.list_part``). This measures one such
lister on a report of synthetic keys (``bench.scale.key``: camera folders of 5,000 photos) with
S3's columns, in gzipped CSV (URL-encoded keys) and in Parquet (Snappy), through a real boto3 client
answered in this process (``bench.scale.FakeS3``): the GET of the file, and the PUTs of the shard
manifests, are built, signed and parsed as in Lambda; only network time is missing, and the time
spent answering is subtracted. Each case runs in a subprocess of its own, for its own peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.parquet as pq

from bench.scale import (
    BUCKET,
    DETECTOR_KEY,
    LAMBDA_LIMIT_S,
    PIPELINE,
    RUN_ID,
    FakeS3,
    _network_s,
    _peak_rss_mb,
    _subprocess,
    answered,
    etag,
    key,
    measured,
    size,
)

REPORTS = "reports"
MANIFEST_KEY = "inventory/traps/daily/2026-12-01T01-00Z/manifest.json"
# Rows of the data file read by one lister: S3 cuts a report of millions of objects into files of
# this order (the file count is S3's choice; each file is one part, whatever its size).
ROWS = 1_000_000
FORMATS = ("CSV", "Parquet")
# S3's single-stream GET throughput from a Lambda function, for the network time of the data file
# (on top of bench.scale's per-request times, which cover the PUTs of the shard manifests): about
# 90 MB/s is commonly measured; it only adds a second or so per file.
GET_MB_S = 90


def data_file(rows: int, file_format: str) -> bytes:
    """A report's data file of ``rows`` current objects, as S3 writes it (columns of a report with
    Size, LastModifiedDate and ETag)."""
    keys = [key(i) for i in range(rows)]
    sizes = [size(i) for i in range(rows)]
    etags = [etag(i) for i in range(rows)]
    if file_format == "CSV":
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for name, length, tag in zip(keys, sizes, etags, strict=True):
            writer.writerow([BUCKET, quote_plus(name, safe=""), length, "2026-11-30T22:14:03.000Z", tag])
        return gzip.compress(text.getvalue().encode(), compresslevel=6)
    table = pa.table(
        {
            "bucket": pa.array([BUCKET] * rows, pa.string()),
            "key": pa.array(keys, pa.string()),
            "size": pa.array(sizes, pa.int64()),
            "last_modified_date": pa.array([1_764_540_843_000] * rows, pa.timestamp("ms")),
            "e_tag": pa.array(etags, pa.string()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def manifest(file_format: str) -> dict[str, Any]:
    schema = (
        "Bucket, Key, Size, LastModifiedDate, ETag"
        if file_format == "CSV"
        else "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional int64 "
        "size; optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8);}"
    )
    suffix = "csv.gz" if file_format == "CSV" else "parquet"
    return {
        "sourceBucket": BUCKET,
        "destinationBucket": f"arn:aws:s3:::{REPORTS}",
        "version": "2016-11-30",
        "fileFormat": file_format,
        "fileSchema": schema,
        "files": [{"key": f"inventory/traps/daily/data/0.{suffix}", "size": 0, "MD5checksum": "0" * 32}],
    }


def lister_case(rows: int, file_format: str, data: Path) -> dict[str, Any]:
    """One ListPart over the report's one data file (``--case``), measured as bench.scale measures listers."""
    from wildlife_common import listing, planning, storage

    fake = answered(rows, stub=False, fake=FakeS3(0))
    report = manifest(file_format)
    fake.objects[(REPORTS, MANIFEST_KEY)] = json.dumps(report).encode()
    fake.objects[(REPORTS, report["files"][0]["key"])] = data
    raw = {"input": f"s3://{REPORTS}/{MANIFEST_KEY}", "detector": f"s3://{PIPELINE}/{DETECTOR_KEY}"}
    config, layout = planning.resolve_run(raw, RUN_ID, f"s3://{PIPELINE}/")
    # As PlanDetection records a new run, the bucket the report lists included (listers read it there).
    record = {"run_id": RUN_ID, "config": config.to_dict(), "planned": False, "input_root": f"s3://{BUCKET}/"}
    storage.write_json(layout.run_json, record)
    part: Any = {
        "part": 0,
        "round": 1,
        "after": "",
        "upto": None,
        "first_shard": 0,
        "shard_prefix": "0000-",
        "file": f"s3://{REPORTS}/{report['files'][0]['key']}",
        "after_row": 0,
    }
    with measured(fake) as figures:
        found = listing.list_part(layout.run_uri, part, lambda: math.inf)
    assert sum(ref["images"] for ref in found["shards"]) == rows == found["counts"]["listed"], found["counts"]
    return {
        "format": file_format,
        "rows": rows,
        "file_mb": round(data.stat().st_size / 1e6, 1),
        "us_per_row": round(figures["cpu_s"] / rows * 1e6, 1),
        "cpu_s": round(figures["cpu_s"], 2),
        "peak_rss_mb": _peak_rss_mb(),
        "shards": len(found["shards"]),
        "requests": figures["requests"],
    }


def line(r: dict[str, Any]) -> str:
    """A case's figures, and what they mean deployed: the lister's time with the network's, and the
    rows one lister reads in a round (its 15 minutes less listing.STOP_BEFORE_TIMEOUT_S)."""
    from wildlife_common.listing import STOP_BEFORE_TIMEOUT_S

    network = r["file_mb"] / GET_MB_S + _network_s(r["requests"])
    seconds = r["cpu_s"] + network
    per_round = (LAMBDA_LIMIT_S - STOP_BEFORE_TIMEOUT_S) / (seconds / r["rows"])
    return (
        f"{r['format']:8} {r['rows']:,} rows ({r['file_mb']} MB): {r['us_per_row']} µs/row CPU, {r['cpu_s']} s CPU "
        f"+ ~{network:.0f} s network ({GET_MB_S} MB/s GET, requests {r['requests']}) = {seconds:.0f} s, "
        f"peak RSS {r['peak_rss_mb']} MB, {r['shards']} shards; one lister reads ~{per_round / 1e6:.0f}M rows a round"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inventory", description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the data file one lister reads")
    parser.add_argument("--formats", nargs="*", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--out", type=Path, help="write every case's figures here (JSON)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(lister_case(args.rows, args.case, args.data)))
        return 0
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as work:
        for file_format in args.formats:
            data = Path(work, f"data.{file_format.lower()}")
            data.write_bytes(data_file(args.rows, file_format))  # built here, outside the measured process
            case = ["--case", file_format, "--rows", str(args.rows), "--data", str(data)]
            figures.append(_subprocess(case, "bench.inventory"))
            print(f"inventory {line(figures[-1])}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
