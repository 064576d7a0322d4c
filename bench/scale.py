"""``python -m bench.scale`` (``make bench-scale``): planning and materialize at 100k to 10M images.

Planning runs as in Lambda, against a real boto3 client whose HTTP requests are answered in this
process (``before-send``: botocore builds, signs and parses every request and response, so only
network time is missing): ListObjectsV2 pages of a synthetic camera-trap listing (with Prefix,
Delimiter and StartAfter as S3 answers them), PUTs of the manifests, HEAD/GET of run.json, the
model and the index of processed images. The 10M size, and any size with ``--client stub``, lists
through a stub that hands out pages already parsed, which leaves botocore's XML parsing out (its
share per key is measured at the real sizes). Each case runs in a subprocess of its own, so its peak
RSS is its own; the time spent answering requests is measured and subtracted, so per-key figures
are the planner's alone.

Two kinds of planning case:

- one lister (``--sizes``): ``listing.list_part`` over the whole input as one range, what one
  ListPart (or a PlanDetection below ``list_in_parallel_above``) costs per key;
- fan-out (``--fanout``): the three steps of the state machine, each measured on its own:
  PlanDetection (``planning.plan_detection``: lists up to ``list_in_parallel_above`` keys, then
  splits), one ``listing.list_part`` per key range (the ListInput Map's children), and
  ``planning.assemble_plan``; the largest range is listed again and the plan assembled in processes
  of their own, for their peak RSS.

Materialize merges synthetic committed detection shards (1M and 3M images) from a local run folder.

Figures are absolute seconds on a shared 2-core machine: read them as orders of magnitude and per
key costs, never as exact times (bench/RESULTS.md says when and how they were measured).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
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
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "traps"
PIPELINE = "pipeline"
DETECTOR_KEY = "models/detector.pt"
RUN_ID = "bench"
# S3's page size for ListObjectsV2 (MaxKeys' default and maximum).
PAGE = 1000
# One-lister sizes (keys listed) of `make bench-scale`: 100k and 1M through the real client, 10M through the stub.
PLAN_SIZES = (100_000, 1_000_000, 10_000_000)
# Fan-out sizes: 1M through botocore (every request parsed as in Lambda), 10M, the target, through the stub.
FANOUT_SIZES = (1_000_000, 10_000_000)
# Above this, listing goes through the stub client: 10M keys through botocore's parser take about
# half an hour of this machine's CPU, and its per-key cost is already known from the 1M case.
STUB_ABOVE = 1_000_000
MATERIALIZE_SIZES = (1_000_000, 3_000_000)
# Processed images in the index-loading case: the nightly run after a first run of 5 million.
INDEX_SIZE = 5_000_000
# Rows per row group of the synthetic index: materialize writes one per shard (shard_size's default).
INDEX_GROUP = 2_000
# For the extrapolation to a deployed planner, which adds network time to the CPU measured here
# (a lister's requests are sequential: the paginator asks for a page when the last one is used up,
# and a manifest is PUT when its shard fills):
LAMBDA_LIMIT_S = 900
# A ListObjectsV2 page of 1,000 keys: ~120 ms (the template's own figure: 1,000 pages in ~2 min).
# Taken for the split's Delimiter pages too, which are smaller: an upper bound there.
LIST_PAGE_S = 0.12
# A PUT of a ~300 KB manifest from Lambda to S3 in the same region: ~50 ms.
PUT_S = 0.05
# A GET (or HEAD) of a small file or a ~300 KB manifest: taken as a PUT's ~50 ms. AssemblePlan reads
# what the listers wrote 32 at a time (planning._READ_THREADS, listing._READ_AHEAD).
GET_S = 0.05
READ_THREADS = 32
# One camera folder this large is one range however the input splits: listed in rounds.
ONE_FOLDER_KEYS = 5_000_000


def map_concurrency() -> int:
    """The ListInput Map's MaxConcurrency, read from the state machine so the figures follow it."""
    definition = json.loads((ROOT / "statemachine" / "pipeline.asl.json").read_text())

    def find(states: dict[str, Any]) -> int | None:
        for name, state in states.items():
            if name == "ListInput":
                return int(state["MaxConcurrency"])
            for inner in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
                if inner and (found := find(inner["States"])) is not None:
                    return found
        return None

    concurrency = find(definition["States"])
    assert concurrency, "no ListInput Map with a MaxConcurrency in statemachine/pipeline.asl.json"
    return concurrency


def key(i: int) -> str:
    """The i-th key of the synthetic input, in S3's (lexicographic) order: 5,000 photos a camera
    folder, 20 cameras a site, like a trail-camera card dump per camera. Every field has a fixed
    width, so the order of the keys is the order of i (up to 100M keys: three digits of sites)."""
    return f"site{i // 100_000:03d}/cam{i // 5_000 % 20:02d}/RCNX{i % 5_000:04d}.JPG"


# Largest input key() keeps in order.
MAX_KEYS = 100_000_000


def etag(i: int) -> str:
    """An MD5-like ETag (32 hex digits that look random), cheap to make."""
    return f"{(i * 0x9E3779B97F4A7C15F39CC0605CEDC835) & ((1 << 128) - 1):032x}"


def size(i: int) -> int:
    return 1_500_000 + i * 7919 % 700_000  # 1.5-2.2 MB, like 5 MP trail-camera JPEGs


def _starting_with(keys: int, prefix: str, lo: int = 0) -> tuple[int, int]:
    """The indexes [first, stop) of the keys that start with ``prefix`` (keys are sorted, so they
    are one run; a key's first len(prefix) characters sort as the keys do)."""
    if not prefix:
        return lo, keys
    width = len(prefix)
    return (
        bisect_left(range(keys), prefix, lo=lo, key=lambda i: key(i)[:width]),
        bisect_right(range(keys), prefix, lo=lo, key=lambda i: key(i)[:width]),
    )


def list_page(
    keys: int, prefix: str = "", delimiter: str = "", start_after: str = "", token: str | None = None
) -> tuple[list[int], list[str], str | None]:
    """One ListObjectsV2 page of the synthetic input of ``keys`` keys, as S3 makes it.

    Keys that start with ``prefix`` and sort after ``start_after``, or from ``token`` (a page's
    NextContinuationToken, here the index of the next key; S3 ignores StartAfter when one is given).
    With a ``delimiter``, every key holding it after the prefix is rolled up into the CommonPrefix
    that ends there, which takes one of the page's 1,000 places, and the page goes on after every
    key below it. Returns the keys' indexes, the common prefixes and the next token (None: the end).
    """
    first, stop = _starting_with(keys, prefix)
    if token is not None:
        at = int(token)
    elif start_after:
        at = max(first, bisect_right(range(keys), start_after, key=key))
    else:
        at = first
    contents: list[int] = []
    prefixes: list[str] = []
    while at < stop and len(contents) + len(prefixes) < PAGE:
        name = key(at)
        cut = name.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            contents.append(at)
            at += 1
            continue
        common = name[: cut + len(delimiter)]
        prefixes.append(common)
        at = _starting_with(keys, common, at)[1]
    return contents, prefixes, str(at) if at < stop else None


class _Raw(io.BytesIO):
    """A response body botocore can read both ways: whole (``stream``) and streamed (``read``)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


class FakeS3:
    """Answers the S3 requests of one botocore client in this process.

    Objects the planner writes are counted; of the shard manifests only the last one of each range
    is kept (the range's partly filled shard, which AssemblePlan reads back to join): 10M keys make
    5,000 manifests of about 0.3 MB, which would be this process's memory, not the planner's.
    Larger objects to serve (the index of processed images, a case's saved state) are local files.
    """

    def __init__(self, keys: int) -> None:
        assert keys <= MAX_KEYS, f"key() keeps {MAX_KEYS:,} keys in order, not {keys:,}"
        self.keys = keys
        self.objects: dict[tuple[str, str], bytes | Path] = {(PIPELINE, DETECTOR_KEY): b"weights"}
        self.requests: Counter[str] = Counter()
        self.put_bytes = 0
        # CPU seconds spent here answering, subtracted from the planner's: each answering thread's own
        # (thread_time), since AssemblePlan reads 32 files at once and their wall times overlap.
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._last_shard: dict[tuple[str, str, str], tuple[str, str]] = {}

    def install(self, client: Any) -> None:
        client.meta.events.register("before-send.s3", self.answer)

    def save(self, folder: Path) -> None:
        """Every object kept here as a file ``folder``/bucket/key, for a step run in another process."""
        for (bucket, obj), stored in self.objects.items():
            if stored == b"":  # a full shard's manifest, not kept
                continue
            path = folder / bucket / obj
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(stored, Path):
                path.symlink_to(stored.resolve())
            else:
                path.write_bytes(stored)

    @classmethod
    def saved(cls, keys: int, folder: Path) -> FakeS3:
        """A FakeS3 serving what ``save`` wrote (from the files: they are not this process's memory)."""
        fake = cls(keys)
        for path in folder.rglob("*"):
            if path.is_file():
                bucket, _, obj = path.relative_to(folder).as_posix().partition("/")
                fake.objects[(bucket, obj)] = path
        return fake

    def answer(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        began = time.thread_time()
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
            if "aws-chunked" in str(request.headers.get("Content-Encoding", b"")):
                data = _unchunked(data)
            with self._lock:
                self.put_bytes += len(data)
                self._store(bucket, obj, data)
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
            self.seconds += time.thread_time() - began
        return response

    def _store(self, bucket: str, obj: str, data: bytes) -> None:
        """Keep what was PUT; of a range's shard manifests ("0003-00041") only the latest, which is
        the range's partly filled last shard once the range is listed (the one AssemblePlan reads)."""
        folder, _, name = obj.rpartition("/")
        if not folder.endswith("/shards"):
            self.objects[(bucket, obj)] = data
            return
        series = (bucket, folder, name.rpartition("-")[0])
        if (before := self._last_shard.get(series)) is not None and before != (bucket, obj):
            self.objects[before] = b""
        self._last_shard[series] = (bucket, obj)
        self.objects[(bucket, obj)] = data

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
        """A ListObjectsV2 response of the synthetic input, element for element as S3 writes it.

        botocore asks for ``encoding-type=url`` and decodes keys and prefixes when the response says
        so; the synthetic names hold only letters, digits, "/", "." and "_", which URL encoding and
        XML leave as they are, so they are written as they are.
        """
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        start_after, token = query.get("start-after", ""), query.get("continuation-token")
        indexes, prefixes, following = list_page(self.keys, prefix, delimiter, start_after, token)
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{BUCKET}</Name><Prefix>{prefix}</Prefix>"
        ]
        if token is not None:
            parts.append(f"<ContinuationToken>{token}</ContinuationToken>")
        if start_after:
            parts.append(f"<StartAfter>{start_after}</StartAfter>")
        parts.append(f"<KeyCount>{len(indexes) + len(prefixes)}</KeyCount><MaxKeys>{PAGE}</MaxKeys>")
        if delimiter:
            parts.append(f"<Delimiter>{delimiter}</Delimiter>")
        if "encoding-type" in query:
            parts.append(f"<EncodingType>{query['encoding-type']}</EncodingType>")
        parts.append(f"<IsTruncated>{'true' if following is not None else 'false'}</IsTruncated>")
        if following is not None:
            parts.append(f"<NextContinuationToken>{following}</NextContinuationToken>")
        parts += [
            f"<Contents><Key>{key(i)}</Key><LastModified>2026-05-01T03:02:01.000Z</LastModified>"
            f"<ETag>&quot;{etag(i)}&quot;</ETag><Size>{size(i)}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            for i in indexes
        ]
        parts += [f"<CommonPrefixes><Prefix>{common}</Prefix></CommonPrefixes>" for common in prefixes]
        parts.append("</ListBucketResult>")
        return "".join(parts).encode()


def _unchunked(body: bytes) -> bytes:
    """The object in an aws-chunked body, as S3 stores it: botocore sends PUTs that way when it adds
    a trailing checksum (chunks of "<hex size>\\r\\n<data>\\r\\n", a zero-size one, the trailer)."""
    data: list[bytes] = []
    at = 0
    while True:
        end = body.index(b"\r\n", at)
        length = int(body[at:end].split(b";")[0], 16)
        if not length:
            return b"".join(data)
        data.append(body[end + 2 : end + 2 + length])
        at = end + 2 + length + 2


class StubListing:
    """S3 client for sizes past STUB_ABOVE: pages come already parsed (botocore's parsing left out),
    the same pages FakeS3 writes as XML; every other call goes to the real client, answered by
    FakeS3 as before."""

    def __init__(self, client: Any, fake: FakeS3) -> None:
        self._client, self._fake = client, fake

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_objects_v2"
        return self

    def paginate(
        self, Bucket: str, Prefix: str = "", Delimiter: str = "", StartAfter: str = ""
    ) -> Iterator[dict[str, Any]]:
        if Bucket != BUCKET:  # the pipeline's own bucket (the index of processed images): as before
            arguments = {"Bucket": Bucket, "Prefix": Prefix, "Delimiter": Delimiter, "StartAfter": StartAfter}
            given = {name: value for name, value in arguments.items() if value}
            yield from self._client.get_paginator("list_objects_v2").paginate(**given)
            return
        token: str | None = None
        while True:
            began = time.thread_time()
            self._fake._count("ListObjectsV2")
            indexes, prefixes, token = list_page(self._fake.keys, Prefix, Delimiter, StartAfter, token)
            # As botocore parses S3's answer: no Contents or CommonPrefixes when there are none.
            page: dict[str, Any] = {"KeyCount": len(indexes) + len(prefixes), "IsTruncated": token is not None}
            if indexes:
                page["Contents"] = [{"Key": key(i), "Size": size(i), "ETag": f'"{etag(i)}"'} for i in indexes]
            if prefixes:
                page["CommonPrefixes"] = [{"Prefix": common} for common in prefixes]
            with self._fake._lock:
                self._fake.seconds += time.thread_time() - began
            yield page
            if token is None:
                return


def answered(keys: int, *, stub: bool, fake: FakeS3 | None = None) -> FakeS3:
    """Answer this process's shared S3 client with ``fake`` (a new one by default); with ``stub``,
    its listings of the input come from StubListing."""
    from wildlife_common import storage

    client = storage.s3_client()
    fake = fake or FakeS3(keys)
    fake.install(client)
    if stub:
        storage.s3_client = lambda: StubListing(client, fake)  # type: ignore[assignment]
    return fake


@contextmanager
def measured(fake: FakeS3) -> Iterator[dict[str, Any]]:
    """The CPU and wall seconds of the block, less the time spent answering its requests, and the
    requests it made (a dict filled when the block ends)."""
    figures: dict[str, Any] = {}
    requests, answering, put = Counter(fake.requests), fake.seconds, fake.put_bytes
    cpu, wall = time.process_time(), time.perf_counter()
    yield figures
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    answering = fake.seconds - answering
    figures["cpu_s"] = cpu - answering
    figures["wall_s"] = wall - answering
    figures["answering_s"] = answering
    figures["requests"] = dict(fake.requests - requests)
    figures["put_mb"] = round((fake.put_bytes - put) / 1e6, 2)


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


def _config(*, incremental: bool = False, split_above: int | None = None) -> dict[str, Any]:
    """The run's configuration: the synthetic input, the pipeline's detector; the run settings' defaults."""
    config: dict[str, Any] = {"input": f"s3://{BUCKET}/", "detector": f"s3://{PIPELINE}/{DETECTOR_KEY}"}
    if incremental:
        config["incremental"] = True
    if split_above is not None:
        config["list_in_parallel_above"] = split_above
    return config


def plan_case(keys: int, *, index: Path | None, stub: bool, profile: Path | None = None) -> dict[str, Any]:
    """One lister over the whole input (``--case``): ``listing.list_part`` with the range of every key,
    what one ListPart costs per key (and a PlanDetection under ``list_in_parallel_above``, which
    lists the same way but holds its entries until it knows the input is small).

    Not ``plan_detection`` with a large ``list_in_parallel_above``: that holds every entry in memory
    before it writes a shard (~6 GB at 10M), which no step does deployed. The run is recorded as
    PlanDetection records it (``resolve_run``, run.json), unmeasured.

    ``index``: an index file of the keys' earlier run (half of them), served as the pipeline's.
    """
    from wildlife_common import listing, planning, storage
    from wildlife_common.layout import index_folder
    from wildlife_common.provenance import input_id

    fake = answered(keys, stub=stub)
    skipped = 0
    if index:
        skipped = (keys + 1) // 2
        folder = index_folder(f"s3://{PIPELINE}/", input_id(storage.as_folder(f"s3://{BUCKET}/")))
        fake.objects[storage.split_s3(storage.join(folder, "earlier-run.parquet"))] = index
    config, layout = planning.resolve_run(_config(incremental=bool(index)), RUN_ID, f"s3://{PIPELINE}/")
    record = {"run_id": RUN_ID, "config": config.to_dict(), "planned": False, "input_root": f"s3://{BUCKET}/"}
    storage.write_json(layout.run_json, record)
    whole: Any = {"part": 0, "round": 1, "after": "", "upto": None, "first_shard": 0, "shard_prefix": ""}
    profiler = cProfile.Profile() if profile else None
    with measured(fake) as figures:
        if profiler:
            profiler.enable()
        found = listing.list_part(layout.run_uri, whole, lambda: math.inf)
        if profiler:
            profiler.disable()
    if profiler and profile:
        profiler.dump_stats(str(profile))
    images = sum(ref["images"] for ref in found["shards"])
    assert images == keys - skipped and found["counts"]["skipped"] == skipped, found["counts"]
    return {
        **_listed(found, figures, stub=stub),
        "processed": skipped,
        "us_per_key": round(figures["cpu_s"] / keys * 1e6, 1),
        "answering_s": round(figures["answering_s"], 2),
    }


def _listed(found: Any, figures: dict[str, Any], *, stub: bool) -> dict[str, Any]:
    """A lister's figures: what it listed, its CPU and wall time, peak RSS and requests."""
    return {
        "keys": found["counts"]["listed"],
        "client": "stub" if stub else "botocore",
        "cpu_s": round(figures["cpu_s"], 3),
        "wall_s": round(figures["wall_s"], 3),
        "peak_rss_mb": _peak_rss_mb(),
        "shards": len(found["shards"]),
        "requests": figures["requests"],
        "put_mb": figures["put_mb"],
    }


def fanout_case(keys: int, *, stub: bool, state: Path, split_above: int | None) -> dict[str, Any]:
    """A new run's planning as the state machine runs it (``--fanout-case``), each step measured:
    PlanDetection (lists up to ``list_in_parallel_above`` keys, then splits the input into ranges),
    then every range's ListPart, one after the other in this process (a warm Lambda's view: CPU and
    requests per lister). What they wrote is saved to ``state`` for the steps run in processes of
    their own (``lister_case``, ``assemble_case``).
    """
    from wildlife_common import listing, planning, storage
    from wildlife_common.layout import RunLayout
    from wildlife_common.run_folder import load_run

    fake = answered(keys, stub=stub)
    with measured(fake) as split:
        plan = planning.plan_detection(_config(split_above=split_above), RUN_ID, f"s3://{PIPELINE}/")
    split["peak_rss_mb"] = _peak_rss_mb()  # the split holds up to list_in_parallel_above entries
    assert "listing" in plan, "the input was planned without a split: raise the keys or lower --split-above"
    run_uri = plan["run_uri"]
    parts: list[Any] = storage.read_json(RunLayout(run_uri).listing_json(plan["listing"]["round"]))
    shard_size = load_run(run_uri)[0].shard_size
    listers = []
    for part in parts:
        with measured(fake) as lister:
            found = listing.list_part(run_uri, part, lambda: math.inf)
        assert found["next_after"] is None  # no deadline here: every range in one round
        last = found["shards"][-1]["images"] if found["shards"] else shard_size
        lister.update(part=part["part"], keys=found["counts"]["listed"], shards=len(found["shards"]))
        lister["partial"] = last if last < shard_size else 0
        listers.append(lister)
    assert sum(f["keys"] for f in listers) == keys
    # A folder of photos and no subfolders, split: its Delimiter listing pages through every photo to
    # find that no folder follows them (a flat input, or camera folders when the split goes that deep).
    # Every camera folder of the first site, up to 100,000 keys: enough pages for a steady figure.
    cameras = sorted({key(i).rpartition("/")[0] for i in range(0, min(keys, 100_000), 5_000)})
    with measured(fake) as flat:
        for camera in cameras:
            assert len(listing.split(f"s3://{BUCKET}/{camera}/")) == 1
    flat_keys = min(keys, 5_000 * len(cameras))
    fake.save(state / "s3")
    (state / "plan.json").write_text(json.dumps(plan))
    # The longest lister: most keys, then most pages (a range that is not the last reads one page past its end).
    largest = max(listers, key=lambda f: (f["keys"], f["requests"].get("ListObjectsV2", 0), f["cpu_s"]))
    every: Counter[str] = Counter()
    for lister in listers:
        every.update(lister["requests"])
    cpu = sum(f["cpu_s"] for f in listers)
    return {
        "keys": keys,
        "client": "stub" if stub else "botocore",
        "run_uri": run_uri,
        "split": {
            "cpu_s": round(split["cpu_s"], 2),
            "wall_s": round(split["wall_s"], 2),
            "requests": split["requests"],
            "peak_rss_mb": split["peak_rss_mb"],
        },
        "flat_split": {
            "keys": flat_keys,
            "folders": len(cameras),
            "cpu_s": round(flat["cpu_s"], 3),
            "us_per_key": round(flat["cpu_s"] / flat_keys * 1e6, 1),
            "requests": flat["requests"],
        },
        "ranges": len(parts),
        "empty_ranges": sum(1 for f in listers if not f["keys"]),
        "partial_shards": sum(1 for f in listers if f["partial"]),
        "partial_images": sum(f["partial"] for f in listers),
        "listers": {
            "cpu_s": round(cpu, 2),
            "us_per_key": round(cpu / keys * 1e6, 1),
            "requests": dict(every),
            "keys_min": min(f["keys"] for f in listers),
            "keys_max": largest["keys"],
        },
        "largest": {
            "part": largest["part"],
            "keys": largest["keys"],
            "shards": largest["shards"],
            "cpu_s": round(largest["cpu_s"], 3),
            "us_per_key": round(largest["cpu_s"] / max(largest["keys"], 1) * 1e6, 1),
            "requests": largest["requests"],
        },
    }


def lister_case(keys: int, *, stub: bool, state: Path, part: int) -> dict[str, Any]:
    """One range's ListPart alone in this process (``--lister-case``), for its peak RSS: a cold
    Lambda listing it. The run folder is the one ``fanout_case`` saved."""
    from wildlife_common import listing, storage
    from wildlife_common.layout import RunLayout

    fake = answered(keys, stub=stub, fake=FakeS3.saved(keys, state / "s3"))
    plan = json.loads((state / "plan.json").read_text())
    parts: list[Any] = storage.read_json(RunLayout(plan["run_uri"]).listing_json(plan["listing"]["round"]))
    with measured(fake) as figures:
        found = listing.list_part(plan["run_uri"], parts[part], lambda: math.inf)
    return {**_listed(found, figures, stub=stub), "part": part}


def assemble_case(keys: int, *, state: Path) -> dict[str, Any]:
    """AssemblePlan alone in this process (``--assemble-case``): reads what every lister wrote and
    the ranges' partly filled manifests, joins those, writes the plan. The run folder is the one
    ``fanout_case`` saved, served from files (S3's objects are not the step's memory)."""
    from wildlife_common import planning

    fake = answered(keys, stub=False, fake=FakeS3.saved(keys, state / "s3"))
    plan = json.loads((state / "plan.json").read_text())
    with measured(fake) as figures:
        result = planning.assemble_plan(plan)
    assert "listing" not in result and result["images"] == keys, result
    return {
        "keys": keys,
        "ranges": plan["listing"]["part_count"],
        "cpu_s": round(figures["cpu_s"], 3),
        "wall_s": round(figures["wall_s"], 3),
        "peak_rss_mb": _peak_rss_mb(),
        "shards": result["shard_count"],
        "requests": figures["requests"],
        "put_mb": figures["put_mb"],
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


def _subprocess(args: list[str], module: str = "bench.scale") -> dict[str, Any]:
    """Run one case in a fresh interpreter, so its peak RSS is its own; its figures come back as JSON."""
    out = subprocess.run([sys.executable, "-m", module, *args], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def top_entries(profile: Path, count: int) -> str:
    """The profile's top entries by own time, as text."""
    text = io.StringIO()
    pstats.Stats(str(profile), stream=text).sort_stats("tottime").print_stats(count)
    return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(PLAN_SIZES), help="keys for one lister")
    parser.add_argument("--fanout", type=int, nargs="*", default=list(FANOUT_SIZES), help="keys to plan in ranges")
    parser.add_argument(
        "--split-above", type=int, help="list_in_parallel_above for the fan-out (default: the run setting's)"
    )
    parser.add_argument("--materialize", type=int, nargs="*", default=list(MATERIALIZE_SIZES), help="images")
    parser.add_argument("--index", type=int, nargs="*", default=[INDEX_SIZE], help="processed images to load")
    parser.add_argument("--client", choices=("auto", "botocore", "stub"), default="auto")
    parser.add_argument("--profile", type=Path, help="profile one lister over the first size (cProfile) into this file")
    parser.add_argument("--out", type=Path, help="write every case's figures here (JSON)")
    # One case in this process (what the parent runs in a subprocess).
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stub", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fanout-case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lister-case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--assemble-case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--part", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index-case", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--materialize-case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    case: dict[str, Any] | None = None
    if args.case:
        case = plan_case(args.case, index=args.index_file, stub=args.stub, profile=args.profile)
    elif args.fanout_case:
        case = fanout_case(args.fanout_case, stub=args.stub, state=args.state, split_above=args.split_above)
    elif args.lister_case:
        case = lister_case(args.lister_case, stub=args.stub, state=args.state, part=args.part)
    elif args.assemble_case:
        case = assemble_case(args.assemble_case, state=args.state)
    elif args.index_case:
        case = index_case(args.index_case)
    elif args.materialize_case:
        case = materialize_case(args.materialize_case)
    if case is not None:
        print(json.dumps(case))
        return 0

    figures: list[dict[str, Any]] = []

    def run(kind: str, case_args: list[str], show: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
        result = {"kind": kind, **_subprocess(case_args)}
        figures.append(result)
        print(f"{kind:12} {show(result)}", flush=True)
        return result

    def stubbed(keys: int) -> list[str]:
        return ["--stub"] if args.client == "stub" or (args.client == "auto" and keys > STUB_ABOVE) else []

    if args.profile and args.sizes:  # a run of its own: the profiler slows what it measures ~3x
        _subprocess(["--case", str(args.sizes[0]), "--profile", str(args.profile), *stubbed(args.sizes[0])])
    # Inputs are built here, outside the measured subprocesses, in temporary files deleted at the end.
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as work:
        for keys in args.sizes:
            index = Path(work, f"index-{keys}.parquet")
            write_index(index, keys)
            for processed in (False, True):
                case_args = ["--case", str(keys), *(["--index-file", str(index)] if processed else [])]
                run("lister", [*case_args, *stubbed(keys)], _lister_line)
            index.unlink()
        for keys in args.fanout:
            state = Path(work, f"fanout-{keys}")
            split = ["--split-above", str(args.split_above)] if args.split_above else []
            fan = run(
                "fan-out", ["--fanout-case", str(keys), "--state", str(state), *split, *stubbed(keys)], _fanout_line
            )
            largest = ["--part", str(fan["largest"]["part"])]
            run("  lister", ["--lister-case", str(keys), "--state", str(state), *largest, *stubbed(keys)], _alone_line)
            run("  assemble", ["--assemble-case", str(keys), "--state", str(state)], _alone_line)
            shutil.rmtree(state)
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


def _network_s(requests: dict[str, int], *, parallel_gets: bool = False) -> float:
    """The network time of a step's requests, one after the other (AssemblePlan's reads 32 at a time)."""
    gets = requests.get("GetObject", 0) + requests.get("HeadObject", 0) + requests.get("HEAD (missing)", 0)
    return (
        requests.get("ListObjectsV2", 0) * LIST_PAGE_S
        + requests.get("PutObject", 0) * PUT_S
        + (math.ceil(gets / READ_THREADS) if parallel_gets else gets) * GET_S
    )


def extrapolate(figures: list[dict[str, Any]], keys: int = 10_000_000) -> str:
    """Wall time of planning ``keys`` deployed: one lister alone, and the fan-out measured here.

    CPU per key from the largest one-lister case through botocore (the stub leaves XML parsing
    out); Lambda at 1,769 MB has one vCPU, taken as fast as one core here. Network time from the
    measured requests (``_network_s``). The fan-out: PlanDetection's split, then the ranges in waves
    of the ListInput Map's MaxConcurrency, each wave as long as the largest lister, then AssemblePlan.
    """
    from wildlife_common.config import parse_config
    from wildlife_common.listing import STOP_BEFORE_TIMEOUT_S

    real = [f for f in figures if f["kind"] == "lister" and f["client"] == "botocore"]
    if not real:
        return "extrapolation: needs a one-lister case through botocore"
    shard_size = parse_config(_config(), default_run_id=RUN_ID, default_output=f"s3://{PIPELINE}/").shard_size
    lines = []
    per_key = 0.0
    for incremental in (False, True):
        cases = [f for f in real if bool(f["processed"]) == incremental] or real
        case = max(cases, key=lambda f: f["keys"])
        seconds = case["us_per_key"] / 1e6 + _network_s(case["requests"]) / case["keys"]
        per_key = per_key or seconds
        per_round = (LAMBDA_LIMIT_S - STOP_BEFORE_TIMEOUT_S) / seconds
        lines.append(
            f"{keys:,} keys{' (half processed)' if incremental else ''}, from {case['keys']:,} at "
            f"{case['us_per_key']} µs/key CPU, {seconds * 1e6:.0f} µs/key with the network: one lister "
            f"{keys * seconds:,.0f} s (Lambda's limit {LAMBDA_LIMIT_S} s), ~{per_round / 1e6:.1f}M keys a round"
        )
    cpu_per_key = (
        max((f for f in real if not f["processed"]), key=lambda f: f["keys"], default=real[0])["us_per_key"] / 1e6
    )
    concurrency = map_concurrency()
    for fan in (f for f in figures if f["kind"] == "fan-out"):
        at = figures.index(fan)
        assemble = next(f for f in figures[at:] if f["kind"] == "  assemble")

        # Through the stub, botocore's parsing of every key of every page is missing: a step's CPU is
        # taken as the one lister's per key, for every key its pages hold (an upper bound).
        def cpu_of(step: dict[str, Any], botocore: bool = fan["client"] == "botocore") -> float:
            if botocore:
                return float(step["cpu_s"])
            return max(step["cpu_s"], step["requests"].get("ListObjectsV2", 0) * PAGE * cpu_per_key)

        split = cpu_of(fan["split"]) + _network_s(fan["split"]["requests"])
        largest = fan["largest"]
        pages = largest["requests"].get("ListObjectsV2", 0)
        cpu = cpu_of(largest)
        lister = cpu + _network_s(largest["requests"])
        waves = math.ceil(fan["ranges"] / concurrency)
        assembled = assemble["cpu_s"] + _network_s(assemble["requests"], parallel_gets=True)
        total = split + waves * lister + assembled
        lines.append(
            f"{fan['keys']:,} keys fanned out ({fan['client']}): split {split:.0f} s + {waves} waves of "
            f"{fan['ranges']} ranges at {concurrency} × largest lister {lister:.1f} s ({largest['keys']:,} keys: "
            f"{cpu:.1f} s CPU, {pages} pages, {largest['requests'].get('PutObject', 0)} PUTs) + assemble "
            f"{assembled:.1f} s = {total:.0f} s; the longest Lambda {max(split, lister, assembled):.0f} s of "
            f"{LAMBDA_LIMIT_S} ({LAMBDA_LIMIT_S / max(split, lister, assembled):.0f}x margin)"
        )
    fans = [f for f in figures if f["kind"] == "fan-out" and f["client"] == "botocore"]
    if fans:
        fan = max(fans, key=lambda f: f["keys"])
        flat = fan["flat_split"]
        # PlanDetection on one folder of photos: lists list_in_parallel_above keys, then splits, which
        # pages through every photo of the folder with its Delimiter listing.
        before = fan["split"]["cpu_s"] + _network_s(fan["split"]["requests"])
        splitting = ONE_FOLDER_KEYS * (flat["us_per_key"] / 1e6 + LIST_PAGE_S / PAGE)
        seconds = cpu_per_key + LIST_PAGE_S / PAGE + PUT_S / shard_size
        per_round = (LAMBDA_LIMIT_S - STOP_BEFORE_TIMEOUT_S) / seconds
        rounds = math.ceil(ONE_FOLDER_KEYS / per_round)
        lines.append(
            f"{ONE_FOLDER_KEYS:,} photos in one folder: PlanDetection {before:.0f} s + its split's Delimiter listing "
            f"{splitting:.0f} s ({flat['us_per_key']} µs/key CPU + {LIST_PAGE_S * 1e6 / PAGE:.0f} µs/key of pages) = "
            f"{before + splitting:.0f} s of {LAMBDA_LIMIT_S}; then one range at {seconds * 1e6:.0f} µs a key, "
            f"~{per_round / 1e6:.1f}M keys a round: {rounds} rounds, {ONE_FOLDER_KEYS * seconds:.0f} s; "
            f"≈ {(before + splitting + ONE_FOLDER_KEYS * seconds) / 60:.0f} min in all"
        )
    return "\n".join(lines)


def _lister_line(r: dict[str, Any]) -> str:
    return (
        f"{r['keys']:>10,} keys ({r['client']:8}, {r['processed']:>9,} processed): {r['us_per_key']:6.1f} µs/key CPU, "
        f"{r['cpu_s']:7.1f} s CPU, {r['wall_s']:7.1f} s wall, peak RSS {r['peak_rss_mb']} MB, "
        f"{r['shards']} shards, requests {r['requests']}, {r['put_mb']} MB put"
    )


def _fanout_line(r: dict[str, Any]) -> str:
    split, every, largest = r["split"], r["listers"], r["largest"]
    return (
        f"{r['keys']:>10,} keys ({r['client']:8}): split {split['cpu_s']} s CPU, peak RSS {split['peak_rss_mb']} MB, "
        f"requests {split['requests']} -> {r['ranges']} ranges ({r['empty_ranges']} empty, {r['partial_shards']} "
        f"partly filled last shards, {r['partial_images']:,} images); listers {every['cpu_s']} s CPU in all "
        f"({every['us_per_key']} µs/key), {every['keys_min']:,}-{every['keys_max']:,} keys, "
        f"requests {every['requests']}; largest #{largest['part']}: {largest['keys']:,} keys, "
        f"{largest['cpu_s']} s CPU, requests {largest['requests']}"
    )


def _alone_line(r: dict[str, Any]) -> str:
    return (
        f"{r['keys']:>10,} keys: {r['cpu_s']} s CPU, {r['wall_s']} s wall, peak RSS {r['peak_rss_mb']} MB, "
        f"{r['shards']} shards, requests {r['requests']}, {r['put_mb']} MB put"
    )


if __name__ == "__main__":
    sys.exit(main())
