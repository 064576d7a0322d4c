"""Storage behaves the same for S3 and local folders: listing, reading, writing, errors."""

import datetime
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from wildlife_common import storage
from wildlife_common.errors import AccessDenied, InputNotFound
from wildlife_common.images import is_image


@pytest.mark.slow
def test_s3_listing_pages_past_1000_keys_in_lexicographic_order(s3) -> None:
    keys = [f"cam{c}/day{d:02d}/IMG_{i:04d}.JPG" for c in range(3) for d in range(3) for i in range(130)]
    for key in keys:
        s3.put_object(Bucket="traps", Key=key, Body=b"x")
    listed = list(storage.list_files("s3://traps/"))
    assert len(listed) == len(keys) == 1170
    assert [f.uri for f in listed] == [f"s3://traps/{k}" for k in sorted(keys)]
    assert all(f.size == 1 and f.etag for f in listed)


def test_a_prefix_is_a_folder_not_a_string_prefix(s3) -> None:
    s3.put_object(Bucket="traps", Key="2026/a.jpg", Body=b"x")
    s3.put_object(Bucket="traps", Key="2026-old/b.jpg", Body=b"x")
    s3.put_object(Bucket="traps", Key="2026/", Body=b"")  # console "folder" marker
    assert [f.uri for f in storage.list_files("s3://traps/2026")] == ["s3://traps/2026/a.jpg"]


def test_missing_bucket_is_input_not_found(s3) -> None:
    with pytest.raises(InputNotFound, match="bucket 'nope' does not exist"):
        list(storage.list_files("s3://nope/photos/"))


def test_access_denied_names_the_bucket_and_the_fix() -> None:
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2")
    translated = storage.translate(error, "listing", "s3://private/photos/")
    assert isinstance(translated, AccessDenied)
    assert "bucket 'private'" in str(translated) and "InputBucketName" in str(translated)


def test_local_listing_matches_s3_order_and_skips_nothing(tmp_path: Path) -> None:
    for rel in ["b/2.jpg", "a/z.JPG", "a/b/c.png", "top.jpeg", "notes.txt"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"data")
    listed = [storage.relative(f.uri, str(tmp_path)) for f in storage.list_files(str(tmp_path))]
    assert listed == ["a/b/c.png", "a/z.JPG", "b/2.jpg", "notes.txt", "top.jpeg"]


def test_missing_local_folder_is_input_not_found(tmp_path: Path) -> None:
    with pytest.raises(InputNotFound, match="no such folder"):
        list(storage.list_files(str(tmp_path / "missing")))


@pytest.mark.parametrize("root_kind", ["s3", "local"])
def test_write_read_exists_round_trip(root_kind: str, s3, tmp_path: Path) -> None:
    root = "s3://pipeline/" if root_kind == "s3" else str(tmp_path) + "/"
    uri = storage.join(root, "runs", "r1", "run.json")
    assert not storage.exists(uri)
    storage.write_json(uri, {"a": 1}, intermediate=True)
    assert storage.exists(uri)
    assert storage.read_json(uri) == {"a": 1}
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(root, "runs", "missing.json"))


@pytest.mark.slow
def test_intermediate_objects_carry_the_lifecycle_tag(s3) -> None:
    storage.write_json("s3://pipeline/runs/r/stage1/shards.json", [], intermediate=True)
    tags = s3.get_object_tagging(Bucket="pipeline", Key="runs/r/stage1/shards.json")["TagSet"]
    assert {"Key": "lifecycle", "Value": "intermediate"} in tags


def test_intermediate_json_is_compact_and_files_people_read_stay_indented(tmp_path: Path) -> None:
    """Manifests are the planner's bulk (one entry an image): compact. Indented ones, as earlier
    versions wrote them, are still read: a resumed run may hold both."""
    manifest = {"shard": "00000", "images": [{"uri": "s3://traps/a.jpg", "image": "a.jpg", "size": 1, "etag": "e"}]}
    storage.write_json(str(tmp_path / "manifest.json"), manifest, intermediate=True)
    storage.write_json(str(tmp_path / "summary.json"), manifest)
    assert (tmp_path / "manifest.json").read_bytes() == json.dumps(manifest, separators=(",", ":")).encode()
    assert "\n" in (tmp_path / "summary.json").read_text()
    (tmp_path / "old.json").write_text(json.dumps(manifest, indent=1))
    assert (
        storage.read_json(str(tmp_path / "manifest.json")) == storage.read_json(str(tmp_path / "old.json")) == manifest
    )


def test_the_shared_client_leaves_timestamps_as_text_and_other_clients_alone(s3) -> None:
    """Parsing LastModified with dateutil was half of the planner's CPU per listed key."""
    s3.put_object(Bucket="traps", Key="a.jpg", Body=b"x")
    ours = storage.s3_client().list_objects_v2(Bucket="traps")["Contents"][0]["LastModified"]
    assert isinstance(ours, str) and ours.endswith("Z")
    theirs = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="traps")["Contents"][0]
    assert isinstance(theirs["LastModified"], datetime.datetime)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("cam1/IMG_0001.JPG", True),
        ("cam1/img.jpeg", True),
        ("x/y.Png", True),
        ("scan.TIFF", True),
        ("a.webp", True),
        ("cam1/._IMG_0001.JPG", False),  # macOS AppleDouble metadata, not an image
        ("video.MP4", False),
        ("notes.txt", False),
        ("noext", False),
        ("raw.CR2", False),
    ],
)
def test_image_files_are_recognized_by_extension_case_insensitively(path: str, expected: bool) -> None:
    assert is_image(path) is expected


# A child process writes with each function that writes local files, under the umask it is given:
# the umask is process-wide, so setting it in this process would change the modes of every file
# other tests (and pytest) create meanwhile.
WRITER = """
import sys
import subprocess
import sys
from pathlib import Path
from wildlife_common import storage

folder = Path(sys.argv[1])
storage.write_bytes(str(folder / "bytes.bin"), b"x")
storage.write_json(str(folder / "sub" / "value.json"), {"a": 1})
(folder / "source.parquet").write_bytes(b"PAR1")
storage.upload_file(folder / "source.parquet", str(folder / "final" / "detections.parquet"))
"""


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_local_writes_give_files_the_mode_the_umask_gives_a_plain_open(umask: int, mode: int, tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", WRITER, str(tmp_path)], umask=umask, capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in tmp_path.rglob("*") if p.is_file()}
    # source.parquet is written with a plain open(): the mode every other file must match.
    assert modes == dict.fromkeys(["source.parquet", "bytes.bin", "sub/value.json", "final/detections.parquet"], mode)


def test_read_json_if_exists_is_one_request_and_none_for_no_file(s3, tmp_path: Path) -> None:
    s3.put_object(Bucket="traps", Key="run.json", Body=b'{"run_id": "r"}')
    calls: list[str] = []
    storage.s3_client().meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))

    assert storage.read_json_if_exists("s3://traps/run.json") == {"run_id": "r"}
    assert storage.read_json_if_exists("s3://traps/nothing.json") is None
    assert calls == ["GetObject", "GetObject"]  # no HeadObject before each
    assert storage.read_json_if_exists(str(tmp_path / "nothing.json")) is None
