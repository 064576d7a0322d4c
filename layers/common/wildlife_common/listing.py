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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wildlife_common import storage

# Ranges a split aims for: enough for the Map to list in parallel at its concurrency, few enough
# that each lister's start (about a second) and the part list stay small. The split stops going
# deeper once it has this many boundaries.
TARGET_PARTS = 64
# Folder levels the split looks into (cameras, then dates or deployments under them): each level
# costs a listing request per folder, so deeper levels are read only while too few parts are found.
MAX_DEPTH = 3
# At most this many ranges, however many folders: the part list is read by a Map's ItemReader and
# each range costs a Lambda invocation; adjacent folders are merged into one range beyond it.
MAX_PARTS = 1000


@dataclass(frozen=True)
class KeyRange:
    """Keys greater than ``after`` and not greater than ``upto`` (None: no end), relative to the input."""

    after: str = ""
    upto: str | None = None

    def holds(self, key: str) -> bool:
        return key > self.after and (self.upto is None or key <= self.upto)


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
    if storage.is_s3(root):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = storage.split_s3(root + folder)
        pages = storage.s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key, Delimiter="/")
        try:
            return [
                storage.relative(f"{storage.S3_SCHEME}{bucket}/{entry['Prefix']}", root)
                for page in pages
                for entry in page.get("CommonPrefixes", [])
            ]
        except (ClientError, BotoCoreError) as error:
            raise storage.translate(error, "listing", root + folder) from error
    try:
        entries = list(os.scandir(Path(root) / folder))
    except OSError:
        return []
    return sorted(f"{folder}{entry.name}/" for entry in entries if entry.is_dir())
