"""``python -m bench.scale`` (``make bench-scale``): planning and materialize at 100k to 10M images.

PlanDetection runs as in Lambda, against a real boto3 client whose HTTP requests are answered in
this process (``before-send``: botocore builds, signs and parses every request and response, so
only network time is missing): ListObjectsV2 pages of a synthetic camera-trap listing, PUTs of the
manifests, HEAD/GET of run.json, the model and the index of processed images. The 10M size, and
any size with ``--client stub``, lists through a stub that hands out pages already parsed, which
leaves botocore's XML parsing out (its share per key is measured at the real sizes). Each case runs
in a subprocess of its own, so its peak RSS (``ru_maxrss``) is its own; the time spent answering
requests is measured and subtracted, so per-key figures are the planner's alone.

Materialize merges synthetic committed detection shards (1M and 3M images) from a local run folder.

Figures are absolute seconds on a shared 2-core machine: read them as orders of magnitude and per
key costs, never as exact times (bench/RESULTS.md says when and how they were measured).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

# Requests are signed as for real (botocore needs credentials and a region), never sent.
for _name, _value in (
    ("AWS_ACCESS_KEY_ID", "bench"),
    ("AWS_SECRET_ACCESS_KEY", "bench"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ.setdefault(_name, _value)

BUCKET = "traps"
PIPELINE = "pipeline"
DETECTOR_KEY = "models/detector.pt"
# S3's page size for ListObjectsV2 (MaxKeys' default and maximum).
PAGE = 1000
# Planning sizes (keys listed) of `make bench-scale`: 100k and 1M through the real client, 10M through the stub.
PLAN_SIZES = (100_000, 1_000_000, 10_000_000)
# Above this, listing goes through the stub client: 10M keys through botocore's parser take about
# half an hour of this machine's CPU, and its per-key cost is already known from the 1M case.
STUB_ABOVE = 1_000_000
MATERIALIZE_SIZES = (1_000_000, 3_000_000)
# Processed images in the index-loading case: the nightly run after a first run of 5 million.
INDEX_SIZE = 5_000_000
# Rows per row group of the synthetic index: materialize writes one per shard (shard_size's default).
INDEX_GROUP = 2_000
# For the extrapolation to a deployed planner, which adds network time to the CPU measured here
# (requests are sequential: the paginator asks for a page when the last one is used up):
LAMBDA_LIMIT_S = 900
# A ListObjectsV2 page of 1,000 keys: ~120 ms (the template's own figure: 1,000 pages in ~2 min).
LIST_PAGE_S = 0.12
# A PUT of a ~300 KB manifest from Lambda to S3 in the same region: ~50 ms.
PUT_S = 0.05
# A fanned-out planner: each Map child lists one part of about this many keys (20 camera folders of
# 5,000, one site here) ...
PART_KEYS = 100_000
# ... with this many children at once: 100 listers ask S3 for ~830 pages a second, well under its
# 5,500 LIST/GET a second per prefix, and take 100 of an account's default 1,000 Lambda executions.
MAP_CONCURRENCY = 100


def key(i: int) -> str:
    """The i-th key of the synthetic input, in S3's (lexicographic) order: 5,000 photos a camera
    folder, 20 cameras a site, like a trail-camera card dump per camera."""
    return f"site{i // 100_000:03d}/cam{i // 5_000 % 20:02d}/RCNX{i % 5_000:04d}.JPG"


def etag(i: int) -> str:
    """An MD5-like ETag (32 hex digits that look random), cheap to make."""
    return f"{(i * 0x9E3779B97F4A7C15F39CC0605CEDC835) & ((1 << 128) - 1):032x}"


def size(i: int) -> int:
    return 1_500_000 + i * 7919 % 700_000  # 1.5-2.2 MB, like 5 MP trail-camera JPEGs


class _Raw(io.BytesIO):
    """A response body botocore can read both ways: whole (``stream``) and streamed (``read``)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


class FakeS3:
    """Answers the S3 requests of one botocore client in this process.

    Objects the planner writes are counted; the bodies of shard manifests are not kept (10M keys
    make 5,000 of about 0.3 MB each, which would be this process's memory, not the planner's).
    Larger objects to serve (the index of processed images) are local files.
    """

    def __init__(self, keys: int) -> None:
        self.keys = keys
        self.objects: dict[tuple[str, str], bytes | Path] = {(PIPELINE, DETECTOR_KEY): b"weights"}
        self.requests: Counter[str] = Counter()
        self.put_bytes = 0
        self.seconds = 0.0  # spent here answering, subtracted from the planner's time
        self._lock = threading.Lock()

    def install(self, client: Any) -> None:
        client.meta.events.register("before-send.s3", self.answer)

    def page(self, prefix: str, start: int) -> tuple[list[int], int | None]:
        """Indexes of the keys on the page that starts at key ``start``, and the next start."""
        assert prefix == "", f"the synthetic input is listed from its root, not {prefix!r}"
        stop = min(start + PAGE, self.keys)
        return list(range(start, stop)), stop if stop < self.keys else None

    def answer(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        began = time.perf_counter()
        url = urlsplit(request.url)
        path = unquote(url.path).lstrip("/")
        host = url.hostname or ""
        # Virtual-hosted style (bucket.s3.amazonaws.com/key), boto3's default, or path style.
        bucket, obj = (host.partition(".s3")[0], path) if ".s3" in host else path.split("/", 1)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        status, headers, body = 200, dict[str, str](), b""
        if request.method == "GET" and "list-type" in query:
            self._count("ListObjectsV2")
            body = self._list_xml(query) if bucket == BUCKET else self._list_stored(bucket, query.get("prefix", ""))
        elif request.method == "PUT":
            self._count("PutObject")
            data = request.body if isinstance(request.body, bytes) else request.body.read()
            with self._lock:
                self.put_bytes += len(data)
                self.objects[(bucket, obj)] = b"" if "/shards/" in obj else data
            headers = {"ETag": '"0"'}
        elif (bucket, obj) in self.objects:
            length = self._size(bucket, obj)
            if request.method == "HEAD":
                self._count("HeadObject")
                headers = {"Content-Length": str(length), "ETag": '"0"'}
            else:
                self._count("GetObject")
                first, last = 0, length - 1
                if rng := request.headers.get("Range"):
                    text = rng.decode() if isinstance(rng, bytes) else rng
                    begin, end = text.removeprefix("bytes=").split("-")
                    first, last = int(begin), min(int(end or last), last)
                    status = 206
                body = self._read(bucket, obj, first, last + 1 - first)
                headers = {"Content-Length": str(len(body)), "ETag": '"0"'}
        else:
            self._count(f"{request.method} (missing)")
            status = 404
            body = b"<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>"
        response = AWSResponse(request.url, status, headers, _Raw(body))  # type: ignore[arg-type]  # a dict serves
        with self._lock:
            self.seconds += time.perf_counter() - began
        return response

    def _count(self, name: str) -> None:
        with self._lock:
            self.requests[name] += 1

    def _list_stored(self, bucket: str, prefix: str) -> bytes:
        """One page of the objects stored here (the pipeline bucket: the index files, a few)."""
        found = sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))
        contents = "".join(
            f"<Contents><Key>{k}</Key><ETag>&quot;0&quot;</ETag><Size>{self._size(bucket, k)}</Size></Contents>"
            for k in found
        )
        return (
            f'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{bucket}</Name>'
            f"<KeyCount>{len(found)}</KeyCount><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
        ).encode()

    def _size(self, bucket: str, obj: str) -> int:
        stored = self.objects[(bucket, obj)]
        return stored.stat().st_size if isinstance(stored, Path) else len(stored)

    def _read(self, bucket: str, obj: str, offset: int, length: int) -> bytes:
        """Only the range asked for: s3transfer fetches a large file in parallel ranges, and reading
        the whole file for each would be this process's memory, not the planner's."""
        stored = self.objects[(bucket, obj)]
        if not isinstance(stored, Path):
            return stored[offset : offset + length]
        with stored.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def _list_xml(self, query: dict[str, str]) -> bytes:
        indexes, following = self.page(query.get("prefix", ""), int(query.get("continuation-token") or 0))
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{BUCKET}</Name><Prefix></Prefix><KeyCount>{len(indexes)}</KeyCount><MaxKeys>{PAGE}</MaxKeys>"
            f"<IsTruncated>{'true' if following is not None else 'false'}</IsTruncated>"
        ]
        if following is not None:
            parts.append(f"<NextContinuationToken>{following}</NextContinuationToken>")
        parts += [
            f"<Contents><Key>{key(i)}</Key><LastModified>2026-05-01T03:02:01.000Z</LastModified>"
            f"<ETag>&quot;{etag(i)}&quot;</ETag><Size>{size(i)}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            for i in indexes
        ]
        parts.append("</ListBucketResult>")
        return "".join(parts).encode()


class StubListing:
    """S3 client for sizes past STUB_ABOVE: pages come already parsed (botocore's parsing left out);
    every other call goes to the real client, answered by FakeS3 as before."""

    def __init__(self, client: Any, fake: FakeS3) -> None:
        self._client, self._fake = client, fake

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> Iterator[dict[str, Any]]:
        if Bucket != BUCKET:  # the pipeline's own bucket (the index of processed images): as before
            yield from self._client.get_paginator("list_objects_v2").paginate(Bucket=Bucket, Prefix=Prefix)
            return
        start: int | None = 0
        while start is not None:
            began = time.perf_counter()
            self._fake._count("ListObjectsV2")
            indexes, start = self._fake.page(Prefix, start)
            page = {"Contents": [{"Key": key(i), "Size": size(i), "ETag": f'"{etag(i)}"'} for i in indexes]}
            self._fake.seconds += time.perf_counter() - began
            yield page


def write_index(path: Path, keys: int) -> int:
    """An index of processed images (as materialize writes it) holding every other key: half done."""
    from wildlife_common.schema import INDEX_SCHEMA

    # One row group per shard of the earlier run, as materialize writes it (its default: 2,000 images).
    with pq.ParquetWriter(path, INDEX_SCHEMA, compression="zstd") as writer:
        for start in range(0, keys, 2 * INDEX_GROUP):
            done = range(start, min(start + 2 * INDEX_GROUP, keys), 2)
            uris = [f"s3://{BUCKET}/{key(i)}" for i in done]
            writer.write_table(pa.table({"image_uri": uris, "image_etag": [etag(i) for i in done]}, INDEX_SCHEMA))
    return (keys + 1) // 2


def plan_case(keys: int, *, index: Path | None, stub: bool, profile: Path | None = None) -> dict[str, Any]:
    """One planning case in this process (``--case``): the figures of one PlanDetection call.

    ``index``: an index file of the keys' earlier run (half of them), served as the pipeline's.
    """
    from wildlife_common import planning, storage
    from wildlife_common.layout import index_folder
    from wildlife_common.provenance import input_id

    client = storage.s3_client()
    fake = FakeS3(keys)
    fake.install(client)
    if stub:
        storage.s3_client = lambda: StubListing(client, fake)  # type: ignore[assignment]
    root = f"s3://{BUCKET}/"
    skipped = 0
    if index:
        skipped = (keys + 1) // 2
        folder = index_folder(f"s3://{PIPELINE}/", input_id(storage.as_folder(root)))
        fake.objects[storage.split_s3(storage.join(folder, "earlier-run.parquet"))] = index
    config = {"input": root, "detector": f"s3://{PIPELINE}/{DETECTOR_KEY}", "incremental": bool(index)}
    profiler = cProfile.Profile() if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    result = planning.plan_detection(config, "bench", f"s3://{PIPELINE}/")
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result["images"] == keys - skipped and result["skipped"] == skipped, result
    return {
        "keys": keys,
        "processed": skipped,
        "client": "stub" if stub else "botocore",
        "cpu_s": round(cpu - fake.seconds, 2),
        "us_per_key": round((cpu - fake.seconds) / keys * 1e6, 1),
        "wall_s": round(wall - fake.seconds, 2),
        "answering_s": round(fake.seconds, 2),
        "peak_rss_mb": _peak_rss_mb(),
        "shards": result["shard_count"],
        "requests": dict(fake.requests),
        "put_mb": round(fake.put_bytes / 1e6, 1),
    }


def _peak_rss_mb() -> int:
    """This process's peak RSS in MiB. On Linux from VmHWM: ``ru_maxrss`` also counts the parent's
    RSS at the fork, which Linux carries across exec, so a child of a parent that has just built a
    large index would report the parent's size."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)  # kB
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB; macOS: bytes


def index_case(folder: Path) -> dict[str, Any]:
    """Load the index files of ``folder``/index/input (``--index-case``): peak memory by tracemalloc
    (Python objects and numpy arrays) and RSS (everything, pyarrow's buffers included)."""
    from wildlife_common.incremental import ProcessedImages

    before = _peak_rss_mb()
    tracemalloc.start()
    began = time.perf_counter()
    processed = ProcessedImages.load(str(folder), "input")
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert processed.contains(f"s3://{BUCKET}/{key(0)}", etag(0))
    return {
        "processed": len(processed),
        "load_s": round(seconds, 2),
        "tracemalloc_peak_mb": round(peak / 2**20),
        "rss_before_mb": before,
        "peak_rss_mb": _peak_rss_mb(),
    }


def build_run(folder: Path, images: int) -> str:
    """A run folder as the GPU jobs leave it: every detection shard committed, detection only.

    Two images in three have a detection (one in seven of those two), the rest are empty, like a
    camera-trap season with a third of false triggers.
    """
    from wildlife_common import storage
    from wildlife_common.config import parse_config
    from wildlife_common.layout import RunLayout, shard_id
    from wildlife_common.records import Stage
    from wildlife_common.schema import DETECTION_SCHEMA

    config = parse_config(
        {"input": f"s3://{BUCKET}/", "detector": "s3://pipeline/models/detector.pt"},
        default_run_id="bench",
        default_output=str(folder),
    )
    layout = RunLayout.for_run(str(folder), "bench")
    shard_size = config.shard_size
    plan = []
    for number, first in enumerate(range(0, images, shard_size)):
        sid = shard_id(number)
        rows: dict[str, list[Any]] = {
            name: [] for name in ("image", "image_uri", "image_etag", "detection", "category", "conf")
        }
        for i in range(first, min(first + shard_size, images)):
            for detection in range(0 if i % 3 == 0 else 2 if i % 7 == 0 else 1) or [None]:
                rows["image"].append(key(i))
                rows["image_uri"].append(f"s3://{BUCKET}/{key(i)}")
                rows["image_etag"].append(etag(i))
                rows["detection"].append(detection)
                rows["category"].append(None if detection is None else "animal")
                rows["conf"].append(None if detection is None else 0.9 - 0.1 * detection)
        count = len(rows["image"])
        table = pa.table(
            {
                **rows,
                "width": [1920] * count,
                "height": [1080] * count,
                "bbox_x": [None if d is None else 0.25 for d in rows["detection"]],
                "bbox_y": [None if d is None else 0.5 for d in rows["detection"]],
                "bbox_w": [None if d is None else 0.125 for d in rows["detection"]],
                "bbox_h": [None if d is None else 0.25 for d in rows["detection"]],
                "detector": ["detector.pt@sha256:0123456789ab"] * count,
                "run_id": ["bench"] * count,
                "shard": [sid] * count,
            }
        )
        table = table.select([n for n in DETECTION_SCHEMA.names if n in table.column_names])
        full = pa.table(
            {
                f.name: table[f.name] if f.name in table.column_names else pa.nulls(count, f.type)
                for f in DETECTION_SCHEMA
            },
            DETECTION_SCHEMA,
        )
        path = Path(layout.results(Stage.DETECTION, sid))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(full, path, compression="zstd")
        in_shard = min(first + shard_size, images) - first
        storage.write_json(
            layout.done(Stage.DETECTION, sid),
            {
                "shard": sid,
                "images": in_shard,
                "rows": count,
                "failed_images": 0,
                "crops": 0,
                "attempt": 1,
                "started": "2026-11-28T10:00:00+00:00",
                "finished": "2026-11-28T10:10:00+00:00",
                "seconds": 600.0,
                "instance_type": "g4dn.xlarge",
                "detector": "detector.pt@sha256:0123456789ab",
            },
            intermediate=True,
        )
        plan.append({"shard": sid, "images": in_shard})
    storage.write_json(layout.plan_json, plan)
    counts = {"listed": images, "not_images": 0, "skipped": 0, "images": images}
    record = {
        "run_id": "bench",
        "config": config.to_dict(),
        "created": "2026-11-28T09:00:00+00:00",
        "planned": True,
        "counts": counts,
        "shards": len(plan),
    }
    storage.write_json(layout.run_json, record)
    return layout.run_uri


def materialize_case(run_uri: str) -> dict[str, Any]:
    """Materialize a run built by build_run (``--materialize-case``)."""
    from wildlife_common.materialize import materialize

    cpu, wall = time.process_time(), time.perf_counter()
    result = materialize(run_uri)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    images = result["images"]
    return {
        "images": images,
        "cpu_s": round(cpu, 1),
        "us_per_image": round(cpu / images * 1e6, 1),
        "wall_s": round(wall, 1),
        "peak_rss_mb": _peak_rss_mb(),
        "status": result["status"],
    }


def _subprocess(args: list[str]) -> dict[str, Any]:
    """Run one case in a fresh interpreter, so its peak RSS is its own; its figures come back as JSON."""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", *args], check=True, capture_output=True, text=True, cwd=root
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def top_entries(profile: Path, count: int) -> str:
    """The profile's top entries by own time, as text."""
    text = io.StringIO()
    pstats.Stats(str(profile), stream=text).sort_stats("tottime").print_stats(count)
    return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(PLAN_SIZES), help="keys to plan")
    parser.add_argument("--materialize", type=int, nargs="*", default=list(MATERIALIZE_SIZES), help="images")
    parser.add_argument("--index", type=int, nargs="*", default=[INDEX_SIZE], help="processed images to load")
    parser.add_argument("--client", choices=("auto", "botocore", "stub"), default="auto")
    parser.add_argument("--profile", type=Path, help="profile planning the first size (cProfile) into this file")
    parser.add_argument("--out", type=Path, help="write every case's figures here (JSON)")
    # One case in this process (what the parent runs in a subprocess).
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stub", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index-case", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--materialize-case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(plan_case(args.case, index=args.index_file, stub=args.stub, profile=args.profile)))
        return 0
    if args.index_case:
        print(json.dumps(index_case(args.index_case)))
        return 0
    if args.materialize_case:
        print(json.dumps(materialize_case(args.materialize_case)))
        return 0

    figures: list[dict[str, Any]] = []

    def run(kind: str, case_args: list[str], show: Callable[[dict[str, Any]], str]) -> None:
        result = {"kind": kind, **_subprocess(case_args)}
        figures.append(result)
        print(f"{kind:12} {show(result)}", flush=True)

    if args.profile and args.sizes:  # a run of its own: the profiler slows what it measures ~3x
        _subprocess(["--case", str(args.sizes[0]), "--profile", str(args.profile)])
    # Inputs are built here, outside the measured subprocesses, in temporary files deleted at the end.
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as work:
        for keys in args.sizes:
            stub = args.client == "stub" or (args.client == "auto" and keys > STUB_ABOVE)
            index = Path(work, f"index-{keys}.parquet")
            write_index(index, keys)
            for processed in (False, True):
                case = ["--case", str(keys), *(["--index-file", str(index)] if processed else [])]
                case += ["--stub"] if stub else []
                run("plan", case, _plan_line)
            index.unlink()
        for processed in args.index:
            folder = Path(work, "index-root")
            (folder / "index" / "input").mkdir(parents=True)
            write_index(folder / "index" / "input" / "earlier-run.parquet", processed * 2)
            run("index", ["--index-case", str(folder)], lambda r: json.dumps(r))
            shutil.rmtree(folder)
        for images in args.materialize:
            folder = Path(work, "materialize")
            run_uri = build_run(folder, images)
            run("materialize", ["--materialize-case", run_uri], lambda r: json.dumps(r))
            shutil.rmtree(folder)
    print(extrapolate(figures))
    if args.profile:
        print(top_entries(args.profile, 25))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def extrapolate(figures: list[dict[str, Any]], keys: int = 10_000_000) -> str:
    """Wall time of planning ``keys`` in Lambda: one planner, and a Map of listers of PART_KEYS each.

    CPU per key from the largest botocore case (the stub leaves XML parsing out); Lambda at 1,769 MB
    has one vCPU, taken as fast as one core here. Pages and PUTs come from the measured requests.
    """
    real = [f for f in figures if f["kind"] == "plan" and f["client"] == "botocore"]
    if not real:
        return "extrapolation: needs a planning case through botocore"
    lines = []
    for incremental in (False, True):
        cases = [f for f in real if bool(f["processed"]) == incremental] or real
        case = max(cases, key=lambda f: f["keys"])
        per_key = case["us_per_key"] / 1e6
        pages_per_key = case["requests"]["ListObjectsV2"] / case["keys"]
        puts_per_key = case["requests"]["PutObject"] / case["keys"]

        def seconds(n: int) -> float:
            return n * (per_key + pages_per_key * LIST_PAGE_S + puts_per_key * PUT_S)  # noqa: B023 (used at once)

        parts = -(-keys // PART_KEYS)
        waves = -(-parts // MAP_CONCURRENCY)
        lines.append(
            f"{keys:,} keys{' (half processed)' if incremental else ''}, from {case['keys']:,} at "
            f"{case['us_per_key']} µs/key: one planner {seconds(keys):,.0f} s (Lambda's limit {LAMBDA_LIMIT_S} s); "
            f"{parts} listers of {PART_KEYS:,} keys, {MAP_CONCURRENCY} at once: {seconds(PART_KEYS):.0f} s each, "
            f"{waves * seconds(PART_KEYS):.0f} s in all"
        )
    return "\n".join(lines)


def _plan_line(r: dict[str, Any]) -> str:
    return (
        f"{r['keys']:>10,} keys ({r['client']:8}, {r['processed']:>9,} processed): {r['us_per_key']:6.1f} µs/key CPU, "
        f"{r['cpu_s']:7.1f} s CPU, {r['wall_s']:7.1f} s wall, peak RSS {r['peak_rss_mb']} MB, "
        f"{r['shards']} shards, requests {r['requests']}, {r['put_mb']} MB put"
    )


if __name__ == "__main__":
    sys.exit(main())
