"""An input listed in ranges: the ranges of a split, listed one by one, are the whole listing, once.

Checked on the same trees in a local folder and in (moto) S3, since the planners list both.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from wildlife_common import listing, storage

# Camera folders with date folders, files directly in the input and between the folders, names that
# sort around folder boundaries ("cam1-old/" < "cam1/" < "cam10/": "-" < "/" < "0"), a non-ASCII name.
KEYS = [
    "README.txt",
    "a.jpg",
    "cam1-old/x.jpg",
    "cam1/2026-05/IMG_0001.JPG",
    "cam1/2026-05/IMG_0002.JPG",
    "cam1/2026-06/IMG_0001.JPG",
    "cam1/loose.jpg",
    "cam10/2026-05/IMG_0001.JPG",
    "cam2/2026-05/deep/er/IMG_0001.JPG",
    "cam2/ü.jpg",
    "z.jpg",
]


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        for key in KEYS:
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(b"x")
        return str(tmp_path)
    s3 = request.getfixturevalue("s3")
    for key in KEYS:
        s3.put_object(Bucket="traps", Key=f"in/{key}", Body=b"x")
    s3.put_object(Bucket="traps", Key="in/cam1/", Body=b"")  # a console folder placeholder
    s3.put_object(Bucket="traps", Key="input-neighbour.jpg", Body=b"x")  # beside the prefix, not in it
    return "s3://traps/in"


def relative_keys(root: str, **limits: str | None) -> list[str]:
    return [storage.relative(info.uri, root) for info in storage.list_files(root, **limits)]


def test_the_ranges_of_a_split_list_every_key_once_in_order(root: str) -> None:
    parts = listing.split(root, target=4)

    assert len(parts) > 1
    listed = [key for part in parts for key in relative_keys(root, after=part.after, upto=part.upto)]
    assert listed == sorted(KEYS) == relative_keys(root)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_deeper_split_finds_more_boundaries_and_still_covers_everything(root: str, depth: int) -> None:
    parts = listing.split(root, target=1000, max_depth=depth)

    assert [p.upto for p in parts[:-1]] == sorted(p.upto for p in parts[:-1] if p.upto)
    # 4 camera folders, then their 4 date folders, then one folder below a date: 4, 8, 9 boundaries.
    assert len(parts) == {1: 5, 2: 9, 3: 10}[depth]
    assert [key for part in parts for key in relative_keys(root, after=part.after, upto=part.upto)] == sorted(KEYS)


def test_any_range_lists_exactly_its_keys(root: str) -> None:
    # Limits anywhere, not only at folder boundaries: inside folder names, before and after everything.
    edges = ["", "a", "a.jpg", "cam1", "cam1/", "cam1/2026-05/IMG_0001.JPG", "cam1/2", "cam10/", "cam2/ü", "zz"]
    for after in edges:
        for upto in [*edges, None]:
            expected = [k for k in sorted(KEYS) if k > after and (upto is None or k <= upto)]
            assert relative_keys(root, after=after, upto=upto) == expected, (after, upto)


def test_a_flat_input_is_one_range(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"IMG_{i}.JPG").write_bytes(b"x")
    assert listing.split(str(tmp_path)) == [listing.KeyRange()]


def test_more_folders_than_the_part_limit_are_merged_into_even_ranges(tmp_path: Path) -> None:
    random.seed(7)
    names = sorted({f"cam{random.randrange(10**6):06d}" for _ in range(1500)})
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.jpg").write_bytes(b"x")

    parts = listing.split(str(tmp_path))

    assert len(parts) == listing.MAX_PARTS
    assert [k for p in parts for k in relative_keys(str(tmp_path), after=p.after, upto=p.upto)] == [
        f"{n}/a.jpg" for n in names
    ]


def test_the_split_reads_a_few_pages_of_a_large_folder_and_its_ranges_still_cover_everything(
    s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A camera folder whose photos fill a page before its subfolder "zz/" comes (S3 lists them merged).
    monkeypatch.setattr(listing, "SPLIT_PAGES_PER_FOLDER", 1)
    keys = [f"cam/IMG_{i:04d}.JPG" for i in range(1000)] + ["cam/zz/late.jpg", "other/a.jpg"]
    for key in keys:
        s3.put_object(Bucket="traps", Key=f"big/{key}", Body=b"x")

    parts = listing.split("s3://traps/big/", target=100)

    assert [p.upto for p in parts] == ["cam/", "other/", None]  # cam/zz/ lies past the page read
    root = "s3://traps/big"
    assert [k for p in parts for k in relative_keys(root, after=p.after, upto=p.upto)] == sorted(keys)
