"""An input listed in parts: key ranges that together cover it, each listed on its own.

One planner lists a few thousand keys a second, and a Lambda has 15 minutes: about three to five
million keys. A run over ten million photos is listed by many listers at once, each one range of
the input's keys, found before anything is listed in full (``split``).

A range is ``(after, upto]`` over keys relative to the input folder: keys greater than ``after``
("" for the first range) and not greater than ``upto`` (None for the last). S3 lists keys in UTF-8
byte order, which is the order of Python's ``str`` comparison, and its StartAfter is exclusive, so
``after`` is StartAfter as it is; a lister stops at the first key beyond ``upto``. The local walk
(``storage.list_files``) lists a folder in the same order, so a local input splits the same way.
``storage.list_files(root, after=..., upto=...)`` lists one range.

The boundaries are folder names ("cam07/", "cam07/2026-05/"): camera folders are the natural
split, and a folder name as ``upto`` ends a range after every key of the folders before it (a
key equal to a folder name is the console's folder placeholder, which listing skips anyway). A
flat input or one large folder yields few ranges: a lister that runs out of time stops after the
last key it wrote and returns where it stopped, and the rest is listed by the next round (see
``ListedPart``), so any input finishes.

An S3 Inventory report as the input (``inventory``) is split by its data files instead: each is one
part, its rows read in the file's order, and a lister out of time hands on the row where it stopped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wildlife_common import inventory, storage
from wildlife_common.config import RunConfig
from wildlife_common.images import is_image
from wildlife_common.incremental import ProcessedImages
from wildlife_common.inventory import DataFile
from wildlife_common.layout import RunLayout, shard_id
from wildlife_common.provenance import input_id
from wildlife_common.records import (
    DetectionManifest,
    DetectionShard,
    ImageEntry,
    ListingPart,
    PartListed,
    PlanCounts,
    Stage,
)
from wildlife_common.run_folder import input_root, load_run

log = logging.getLogger(__name__)

# Seconds a lister keeps for itself after its last shard: writing that manifest and what it found
# takes well under a second; 60 s leave room for S3 retries (storage.S3_ATTEMPTS) before the function's
# timeout would lose the round's work.
STOP_BEFORE_TIMEOUT_S = 60

# Ranges a split aims for: enough for the Map to list in parallel at its concurrency, few enough
# that each lister's start (about a second) and the part list stay small. The split stops going
# deeper once it has this many boundaries.
TARGET_PARTS = 64
# Folder levels the split looks into (cameras, then dates or deployments under them): each level
# costs a listing request per folder, so deeper levels are read only while too few parts are found.
MAX_DEPTH = 3
# Listing pages read per folder while splitting. S3 returns a folder's photos with its subfolders,
# 1,000 entries a page, so reading every page of a camera folder of a million photos would page
# through all of them (measured: 10M photos in 10 top-level folders took the split ~25 minutes,
# bench/RESULTS.md). Subfolders past the first 5,000 entries of a folder are not boundaries; the
# ranges still cover every key (boundaries only balance them), and a lister short of time hands
# the rest of a large range to the next round.
SPLIT_PAGES_PER_FOLDER = 5
# At most this many ranges, however many folders: the part list is read by a Map's ItemReader and
# each range costs a Lambda invocation; adjacent folders are merged into one range beyond it.
MAX_PARTS = 1000


@dataclass(frozen=True)
class KeyRange:
    """Keys greater than ``after`` and not greater than ``upto`` (None: no end), relative to the input."""

    after: str = ""
    upto: str | None = None


def ranges(boundaries: list[str]) -> list[KeyRange]:
    """The ranges between sorted boundaries: ("", b0], (b0, b1], ..., (bn, end)."""
    edges = ["", *boundaries]
    return [KeyRange(after, upto) for after, upto in zip(edges, [*boundaries, None], strict=True)]


def split(root: str, *, target: int = TARGET_PARTS, max_depth: int = MAX_DEPTH) -> list[KeyRange]:
    """Ranges that together hold every key below ``root``, one per folder found, breadth first.

    Folders of ``root`` are read level by level until ``target`` boundaries are found or
    ``max_depth`` levels were read; more than ``MAX_PARTS`` are thinned evenly.
    """
    root = storage.as_folder(root)
    boundaries: list[str] = []
    level = [""]
    for _ in range(max_depth):
        below = [sub for folder in level for sub in _subfolders(root, folder)]
        if not below:
            break
        boundaries.extend(below)
        if len(boundaries) >= target:
            break
        level = below
    boundaries.sort()
    if len(boundaries) >= MAX_PARTS:
        step = len(boundaries) / (MAX_PARTS - 1)
        boundaries = [boundaries[int(i * step)] for i in range(MAX_PARTS - 1)]
    return ranges(boundaries)


def _subfolders(root: str, folder: str) -> list[str]:
    """The folders directly inside ``root + folder``, relative to ``root``, with their trailing slash."""
    found = storage.list_folders(root + folder, max_pages=SPLIT_PAGES_PER_FOLDER)
    return [storage.relative(uri, root) for uri in found]


# Folders that hold no photos of the user's: thumbnails and indexes of file managers and NAS boxes
# (Synology's @eaDir, QNAP's @Recycle), trash folders, and macOS archive leftovers. Any folder whose
# name starts with "." is hidden too (.thumbnails, .Trash-1000). include_hidden reads them all.
SYSTEM_FOLDERS = frozenset({"$RECYCLE.BIN", "System Volume Information", "__MACOSX", "lost+found"})


def is_hidden(relative_path: str) -> bool:
    """Whether a path below the input lies in a hidden or system folder (or is a hidden file)."""
    return any(part.startswith((".", "@")) or part in SYSTEM_FOLDERS for part in relative_path.split("/"))


def images(
    config: RunConfig,
    part: KeyRange | DataFile,
    processed: ProcessedImages | None,
    counts: PlanCounts,
    report: inventory.Inventory | None = None,
) -> Iterator[ImageEntry]:
    """The images of one part of the input as manifest entries, skipping files that are not images
    or were done before, hidden and system folders (unless include_hidden), and the run's own output
    folder when it lies inside the input (a local run's crops would otherwise come back as photos).
    ``report``: the input's S3 Inventory report when the caller has read it already."""
    root, files, one_photo = _files(config, part, counts, report)
    # One image given as the input is taken as given, hidden or not.
    skip_hidden = not config.include_hidden and not one_photo
    own = storage.as_folder(config.output) if config.output else ""
    # What the pipeline itself writes, when that lies inside the input: the output folder, or its run
    # and index folders when the output is the input folder itself.
    ours = [own] if own != root and own.startswith(root) else [root + "runs/", root + "index/"] if own == root else []
    # Every file listed is below root, a folder ending in its separator: the path below it is a slice.
    # (storage.relative checks and resolves root again for each file: 15 µs a local file.)
    cut = len(root)
    for info in files:
        counts["listed"] += 1
        relative = info.uri[cut:] if os.sep == "/" else info.uri[cut:].replace(os.sep, "/")
        if any(info.uri.startswith(prefix) for prefix in ours) or (skip_hidden and is_hidden(relative)):
            counts["hidden"] = counts.get("hidden", 0) + 1
            continue
        if not is_image(info.uri):
            counts["not_images"] += 1
            continue
        if processed is not None and processed.contains(info.uri, info.etag):
            counts["skipped"] += 1
            continue
        yield {"uri": info.uri, "image": relative, "size": info.size, "etag": info.etag}


def _files(
    config: RunConfig, part: KeyRange | DataFile, counts: PlanCounts, report: inventory.Inventory | None
) -> tuple[str, Iterator[storage.FileInfo], bool]:
    """The folder image paths are relative to, the part's files, and whether the input is one photo."""
    if report is not None or inventory.is_inventory(config.input):
        report = report or inventory.read(config.input)
        return report.root, report.objects(part if isinstance(part, DataFile) else None, counts), False
    assert isinstance(part, KeyRange)
    root, files = storage.list_input(config.input, after=part.after, upto=part.upto)
    return root, files, root != storage.as_folder(config.input)


def write_shards(
    config: RunConfig,
    layout: RunLayout,
    entries: Iterator[ImageEntry],
    *,
    shard_prefix: str,
    first_shard: int,
    out_of_time: Callable[[], bool],
) -> tuple[list[DetectionShard], str | None]:
    """Cut an image stream into shards of ``shard_size``, writing each manifest as it fills.

    Shard ids are ``shard_prefix`` and a number from ``first_shard``. Returns the shards, and the
    last key listed when ``out_of_time()`` said stop after a full shard (the range goes on after
    it; None when the stream is done).
    """
    refs: list[DetectionShard] = []
    batch: list[ImageEntry] = []

    def flush() -> None:
        sid = shard_prefix + shard_id(first_shard + len(refs))
        manifest: DetectionManifest = {
            "run_id": config.run_id or "",
            "stage": Stage.DETECTION,
            "shard": sid,
            "input": config.input,
            "images": batch,
        }
        storage.write_json(layout.shard_manifest(Stage.DETECTION, sid), manifest, intermediate=True)
        refs.append({"shard": sid, "images": len(batch)})

    for image in entries:
        batch.append(image)
        if len(batch) == config.shard_size:
            flush()
            last = image["image"]
            batch = []
            if out_of_time():
                return refs, last
    if batch:
        flush()
    return refs, None


def processed_images(config: RunConfig, part: KeyRange | DataFile, root: str) -> ProcessedImages | None:
    """The images earlier runs on the same input processed, for an incremental run (else None):
    only those in the key range ``part``, so that a lister holds only its range's part of the index.
    A data file of an inventory may hold any key: its lister reads the whole index. ``root``: the
    run's ``input_root``, which names the index."""
    if not config.incremental:
        return None
    # The index holds URIs, [start, stop): after (exclusive, so a superset) up to upto itself
    # (upto + "\0" is the first string above it). The whole input (and a single photo's) reads it all.
    keys = part if isinstance(part, KeyRange) else KeyRange()
    start = root + keys.after if keys.after else ""
    stop = None if keys.upto is None else root + keys.upto + "\0"
    processed = ProcessedImages.load(config.output or "", input_id(root), start=start, stop=stop)
    log.info("incremental run: %d images of this range processed by earlier runs", len(processed))
    return processed


def list_part(run_uri: str, part: ListingPart, seconds_left: Callable[[], float]) -> PartListed:
    """List one range of a run's input (one ListInput child): write its shard manifests and what it found.

    Stops after a full shard when fewer than ``STOP_BEFORE_TIMEOUT_S`` seconds are left; AssemblePlan
    then lists the rest of the range in the next round. Writes the same files every time it runs.
    """
    config, layout, record = load_run(run_uri)
    rows = DataFile(part["file"], part.get("after_row", 0)) if "file" in part else None
    keys = rows or KeyRange(part["after"], part["upto"])
    processed = processed_images(config, keys, input_root(record, config))
    counts = PlanCounts(listed=0, not_images=0, skipped=0)
    shards, next_after = write_shards(
        config,
        layout,
        images(config, keys, processed, counts),
        shard_prefix=part["shard_prefix"],
        first_shard=part["first_shard"],
        out_of_time=lambda: seconds_left() < STOP_BEFORE_TIMEOUT_S,
    )
    found: PartListed = {
        "part": part["part"],
        "round": part["round"],
        "shards": shards,
        "counts": counts,
        "next_after": next_after,
        "next_shard": part["first_shard"] + len(shards),
    }
    if rows is not None:  # every row read was a file listed or a row of no file (inventory.objects)
        found["next_row"] = rows.after_row + counts["listed"] + counts.get("not_files", 0)
    storage.write_json(layout.part_listed(part["part"], part["round"]), found, intermediate=True)
    if next_after is not None:
        log.info("range %d: out of time after %s; the next round lists the rest", part["part"], next_after)
    return found


def join_partial_shards(
    config: RunConfig, layout: RunLayout, partial: list[DetectionShard], shard_prefix: str
) -> list[DetectionShard]:
    """The ranges' last, partly filled shards, joined in order into full ones (all but the last).

    A range ends with a shard of fewer than ``shard_size`` images; a hundred camera folders of 300
    photos would otherwise be a hundred GPU jobs of 300 instead of fifteen of 2,000, each paying the
    container start and model load. Reads those manifests (``READ_AHEAD`` at a time) and writes
    the joined ones under ``shard_prefix``.
    """

    manifests = storage.read_json_many(layout.shard_manifest(Stage.DETECTION, ref["shard"]) for ref in partial)
    entries = (image for manifest in manifests for image in manifest["images"])
    joined, _ = write_shards(
        config, layout, entries, shard_prefix=shard_prefix, first_shard=0, out_of_time=lambda: False
    )
    return joined
