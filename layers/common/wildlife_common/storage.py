"""Storage for ``s3://`` URIs and local paths behind one small set of functions.

Every step reads and writes through here, so a run folder can live in S3 (deployed) or on disk
(local runs) and the code above does not care. S3 calls use a shared client with standard
retries; listing is paginated and lazy, so a prefix with millions of keys is never held in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from wildlife_common.errors import AccessDenied, InputNotFound

S3_SCHEME = "s3://"

# Tag that the bucket's lifecycle rule expires: shard lists, per-shard results, markers and crops
# are intermediate; the final/ folder and run.json are kept.
INTERMEDIATE_TAGGING = "lifecycle=intermediate"


@dataclass(frozen=True)
class FileInfo:
    """One listed file: its URI, size in bytes and ETag (S3) or size-and-mtime stamp (local)."""

    uri: str
    size: int
    etag: str


@cache
def s3_client() -> Any:
    """The S3 client shared by this process.

    Standard retry mode backs off on throttling (503 SlowDown) and transient errors; 10 attempts
    ride out a burst of 503s from a prefix that S3 is still partitioning. 64 pooled connections let
    the GPU task keep many image reads in flight.
    """
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        config=Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=64),
    )


def is_s3(uri: str) -> bool:
    """Whether ``uri`` names an S3 object or prefix."""
    return uri.startswith(S3_SCHEME)


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``."""
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    return bucket, key


def join(base: str, *parts: str) -> str:
    """Join URI or path parts with single slashes (S3 keys always use ``/``)."""
    out = base
    for part in parts:
        part = part.strip("/")
        if not part:
            continue
        out = out if out.endswith("/") else out + "/"
        out += part
    return out


def as_folder(uri: str) -> str:
    """The URI with a trailing slash, so that ``s3://b/2026`` never also lists ``s3://b/2026-old/``."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return f"{S3_SCHEME}{bucket}/{key.rstrip('/') + '/' if key.strip('/') else ''}"
    return str(Path(uri).expanduser().resolve()) + os.sep


def relative(uri: str, root: str) -> str:
    """The part of ``uri`` below the folder ``root``, always with ``/`` separators."""
    root = as_folder(root)
    if not uri.startswith(root):
        raise ValueError(f"{uri} is not under {root}")
    return uri[len(root) :].replace(os.sep, "/")


def _translate(error: Exception, action: str, uri: str) -> Exception:
    """Turn a botocore error into one the user can act on; others pass through unchanged."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
    bucket = split_s3(uri)[0]
    if code == "NoSuchBucket":
        return InputNotFound(f"bucket {bucket!r} does not exist ({action} {uri})")
    if code in ("AccessDenied", "AllAccessDisabled", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return AccessDenied(
            f"access denied {action} {uri}: the pipeline's role needs read access to bucket {bucket!r} "
            "(deployed: the stack's InputBucketName parameter)"
        )
    return error


def list_files(prefix: str) -> Iterator[FileInfo]:
    """Every file below a folder or S3 prefix, recursively, in lexicographic order of the path.

    Raises:
        InputNotFound: the bucket or folder does not exist.
        AccessDenied: the role or user may not list it.
    """
    if is_s3(prefix):
        yield from _list_s3(as_folder(prefix))
    else:
        yield from _list_local(Path(prefix).expanduser())


def _list_s3(prefix: str) -> Iterator[FileInfo]:
    from botocore.exceptions import ClientError

    bucket, key = split_s3(prefix)
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
    try:
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/"):  # "folder" placeholder objects made by the console
                    continue
                yield FileInfo(f"{S3_SCHEME}{bucket}/{obj['Key']}", obj["Size"], obj["ETag"].strip('"'))
    except ClientError as error:
        raise _translate(error, "listing", prefix) from error


def _list_local(root: Path) -> Iterator[FileInfo]:
    if not root.is_dir():
        raise InputNotFound(f"no such folder: {root}")
    yield from _walk(root.resolve())


def _walk(folder: Path) -> Iterator[FileInfo]:
    """Depth-first, with a folder sorted as ``name/``: the same order as S3's listing of the same tree."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # unreadable or removed while walking: nothing to list there
        return
    for entry in sorted(entries, key=lambda e: e.name + "/" if e.is_dir() else e.name):
        if entry.is_dir():
            yield from _walk(Path(entry.path))
            continue
        try:
            stat = entry.stat()
        except OSError:  # removed between the scan and the stat: it simply is not there
            continue
        yield FileInfo(entry.path, stat.st_size, f"{stat.st_size:x}-{stat.st_mtime_ns:x}")


def read_bytes(uri: str) -> bytes:
    """The whole content of a file or S3 object."""
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        try:
            return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(uri) from error
            raise _translate(error, "reading", uri) from error
    return Path(uri).read_bytes()


def write_bytes(uri: str, data: bytes, *, intermediate: bool = False, content_type: str | None = None) -> None:
    """Write a whole file; local writes are atomic (temp file, then rename)."""
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        extra: dict[str, Any] = {}
        if intermediate:
            extra["Tagging"] = INTERMEDIATE_TAGGING
        if content_type:
            extra["ContentType"] = content_type
        try:
            s3_client().put_object(Bucket=bucket, Key=key, Body=data, **extra)
        except ClientError as error:
            raise _translate(error, "writing", uri) from error
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def upload_file(local_path: str | Path, uri: str, *, intermediate: bool = False) -> None:
    """Copy a local file to ``uri`` (multipart for large files in S3)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        extra = {"Tagging": INTERMEDIATE_TAGGING} if intermediate else None
        s3_client().upload_file(str(local_path), bucket, key, ExtraArgs=extra)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    shutil.copyfile(local_path, tmp)
    os.replace(tmp, path)


def download_file(uri: str, local_path: str | Path) -> None:
    """Copy ``uri`` to a local file."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().download_file(bucket, key, str(local_path))
        return
    shutil.copyfile(uri, local_path)


def read_json(uri: str) -> Any:
    """Decode a JSON file."""
    return json.loads(read_bytes(uri))


def write_json(uri: str, value: Any, *, intermediate: bool = False) -> None:
    """Encode ``value`` as indented JSON (small manifests: readable beats compact)."""
    data = json.dumps(value, indent=1, sort_keys=False).encode()
    write_bytes(uri, data, intermediate=intermediate, content_type="application/json")


def exists(uri: str) -> bool:
    """Whether a file or S3 object exists."""
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise _translate(error, "checking", uri) from error
    return Path(uri).exists()
