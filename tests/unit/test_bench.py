"""The benchmark scripts (``make bench``) run end to end on tiny inputs, so they cannot rot.

Nothing here is timed or compared: 320x240 photos, 64 px models and one round only check that
every code path of ``bench/`` still fits the pipeline's code (run_detect, the planner, the
detector) and ultralytics'. The figures themselves come from ``make bench`` (bench/RESULTS.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import __main__ as bench_main
from bench import decode_speedup, gpu, photos, scale, shard_speedup

WEIGHTS = shard_speedup.MODELS / "detector.pt"


@pytest.fixture(scope="module", autouse=True)
def two_threads() -> None:
    torch.set_num_threads(2)  # the tests share a 2-core machine


def test_photos_are_deterministic_jpegs_with_exif(tmp_path: Path) -> None:
    from PIL import Image

    first = photos.photos(2, size=(320, 240), cache=tmp_path / "a", workers=1)
    again = photos.photos(2, size=(320, 240), cache=tmp_path / "b", workers=1)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    with Image.open(first[0]) as image:
        assert image.format == "JPEG" and image.size == (320, 240)
        assert image.getexif()[0x0132].startswith("2025:06:")  # the capture time cameras write
    folder = photos.shard_folder(first, 5, tmp_path / "shard")
    assert sorted(p.name for p in folder.iterdir()) == [f"image_{i:05d}.jpg" for i in range(5)]
    assert (folder / "image_00002.jpg").read_bytes() == first[0].read_bytes()


def test_both_decode_paths_give_letterboxed_pixels(tmp_path: Path) -> None:
    paths = photos.photos(2, size=(320, 240), cache=tmp_path, workers=1)
    assert decode_speedup.ours(64)(paths[0]).shape == (64, 64, 3)  # square, as detect feeds the model
    assert decode_speedup.ultralytics_default(64)(paths[0]).shape == (64, 64, 3)  # 48 rounded up to stride 32
    assert decode_speedup.ultralytics_path_list(64)(paths[0]).shape == (64, 64, 3)
    figures = decode_speedup.measure(paths, sizes=(64, 96), rounds=1)
    assert figures["decode_speedup"] > 0 and figures["decode_speedup_96"] > 0
    assert figures["decode_speedup_vs_predict_list"] > 0


@pytest.mark.slow
@pytest.mark.timeout(300)  # every figure of `make bench`, tiny: 33 s measured on 2 shared cores
@pytest.mark.skipif(not WEIGHTS.exists(), reason="demo models not built")
def test_make_bench_runs_every_figure_and_merges_results(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"gpu_end_to_end_share_640": 0.95}))  # a GPU run's figures survive a CPU run
    argv = ["--images", "2", "--rounds", "1", "--photo-size", "320x240", "--image-sizes", "64"]
    assert bench_main.main([*argv, "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    results = json.loads(out.read_text())
    assert results["gpu_end_to_end_share_640"] == 0.95
    expected = ["decode_speedup", "shard_speedup", "shard_speedup_vs_predict_folder", "gpu_wait_fraction"]
    if (shard_speedup.MODELS / "classifier.pth").exists():
        expected.append("shard_speedup_with_crops")
    if (shard_speedup.MODELS / "detector-yolov5.pt").exists():
        expected.append("megadetector_speedup")  # our shard vs MegaDetector's own loop, same YOLOv5 weights
    expected.append("speciesnet_speedup")  # our classify shard vs SpeciesNet's own loop, same crops
    for name in expected:
        assert isinstance(results[name], float) and results[name] >= 0, name
    assert results["shard_images"] == 2 and results["gpu_wait_fraction_device"] == "cpu"
    assert results["machine"]["nproc"] >= 1 and results["machine"]["cpu"]
    # The references (speciesnet, megadetector) turn on LOAD_TRUNCATED_IMAGES when imported; the bench only
    # looks them up, so this process, and our decoder in it, still refuse half-decoded images.
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path; make bench-gpu measures a GPU")
def test_bench_gpu_skips_cleanly_without_cuda(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results.json"
    assert bench_main.main(["--gpu", "--out", str(out), "--cache", str(tmp_path)]) == 0
    assert "skipped, no CUDA device" in capsys.readouterr().out
    assert not out.exists()
    assert gpu.measure(tmp_path) == {}


@pytest.mark.skipif(not WEIGHTS.exists(), reason="demo models not built")
def test_bench_gpu_code_runs_on_the_cpu_tiny(tmp_path: Path) -> None:
    """The GPU figures' code (model-only vs end to end) on the CPU, so a GPU run finds no typo."""
    sources = photos.photos(2, size=(320, 240), cache=tmp_path, workers=1)
    results = gpu.run(tmp_path, {"demo": WEIGHTS}, sources=sources, sizes=(64,), images=2, rounds=1)
    for name in ("images_per_second_64_fp16_model_only", "images_per_second_64_fp16_end_to_end", "end_to_end_share_64"):
        assert results[f"gpu_demo_{name}"] > 0, name
    assert 0 <= results["gpu_demo_wait_fraction_gpu_64"] <= 1


def test_md_sized_stand_in_is_a_weights_file_ultralytics_loads(tmp_path: Path, monkeypatch) -> None:
    """Built from ultralytics' YAML, no download; a tiny layout here, YOLOv5x P6 on the GPU."""
    from ultralytics import YOLO

    monkeypatch.setattr(gpu, "MD_LAYOUT", "yolov8n.yaml")
    path = gpu.md_sized_weights(tmp_path)
    assert len(YOLO(str(path)).names) == 80


def test_make_bench_scale_runs_every_case_tiny(tmp_path: Path, capsys) -> None:
    """One lister through botocore and through the stub, with and without an index, the fan-out's
    three steps, loading the index and materialize: each case in its own process, as
    `make bench-scale` runs them at full size. 12,000 keys split above 3,000: one site of three
    camera folders (5,000, 5,000, 2,000), so five ranges, two of them empty (before "site000/" and
    between it and "site000/cam00/"), two partly filled last shards joined into one."""
    out = tmp_path / "figures.json"
    fanout = ["--fanout", "12000", "--split-above", "3000"]
    argv = ["--sizes", "1500", "2500", *fanout, "--index", "1000", "--materialize", "2500", "--out", str(out)]
    assert scale.main([*argv, "--client", "auto"]) == 0
    figures = json.loads(out.read_text())
    plans = [f for f in figures if f["kind"] == "lister"]
    assert [(f["keys"], f["processed"]) for f in plans] == [(1500, 0), (1500, 750), (2500, 0), (2500, 1250)]
    assert all(f["client"] == "botocore" and f["us_per_key"] > 0 and f["peak_rss_mb"] > 0 for f in plans)
    assert plans[0]["requests"]["ListObjectsV2"] == 2 and plans[2]["shards"] == 2
    fan = next(f for f in figures if f["kind"] == "fan-out")
    assert (fan["ranges"], fan["empty_ranges"], fan["partial_shards"], fan["partial_images"]) == (5, 2, 2, 2000)
    assert fan["largest"]["keys"] == 5000 and fan["flat_split"]["requests"] == {"ListObjectsV2": 12}
    alone = next(f for f in figures if f["kind"] == "  lister")
    assert alone["keys"] == 5000 and alone["shards"] == 3 and alone["peak_rss_mb"] > 0
    assembled = next(f for f in figures if f["kind"] == "  assemble")
    assert assembled["shards"] == 6 and assembled["requests"]["GetObject"] == 2 + 5 + 2  # run, ranges, partials
    by_kind = {f["kind"]: f for f in figures}
    assert by_kind["index"]["processed"] == 1000 and by_kind["materialize"]["status"] == "succeeded"
    printed = capsys.readouterr().out
    assert "one lister" in printed and "fanned out" in printed and "in one folder" in printed

    argv = ["--sizes", "1500", *fanout, "--index", "--materialize", "--client", "stub", "--out", str(out)]
    assert scale.main(argv) == 0
    stubbed = json.loads(out.read_text())
    assert [f["client"] for f in stubbed if "client" in f] == ["stub"] * 4
    # The stub answers every listing as the fake S3 does through botocore, request for request.
    again = next(f for f in stubbed if f["kind"] == "fan-out")
    for part in ("split", "listers", "largest", "flat_split"):
        assert again[part]["requests"] == fan[part]["requests"], part


def test_bench_inventory_reads_a_data_file_of_each_format_tiny(tmp_path: Path, capsys) -> None:
    """A lister over one data file of a report, CSV and Parquet, each in its own process, every row
    planned once (the case asserts it)."""
    from bench import inventory

    out = tmp_path / "figures.json"
    assert inventory.main(["--rows", "3000", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert [(f["format"], f["rows"], f["shards"]) for f in figures] == [("CSV", 3000, 2), ("Parquet", 3000, 2)]
    assert all(f["us_per_row"] > 0 and f["peak_rss_mb"] > 0 for f in figures)
    # run.json, the manifest and the data file; a PUT per shard manifest and one for what the part found.
    assert all(f["requests"] == {"GetObject": 3, "PutObject": 3} for f in figures)
    assert "rows a round" in capsys.readouterr().out


def _s3_order(keys: int, prefix: str, delimiter: str, start_after: str) -> list[str]:
    """What S3 lists, by brute force: keys under the prefix after start_after, each one holding the
    delimiter past the prefix rolled up into its common prefix, in order, once."""
    names: list[str] = []
    for name in map(scale.key, range(keys)):
        if not name.startswith(prefix) or name <= start_after:
            continue
        cut = name.find(delimiter, len(prefix)) if delimiter else -1
        entry = name[: cut + len(delimiter)] if cut >= 0 else name
        if not names or names[-1] != entry:
            names.append(entry)
    return names


CASES = [
    ("", "/", ""),  # the split's first level: the sites
    ("site001/", "/", ""),  # its second: a site's cameras
    ("site000/cam03/", "/", ""),  # its third: a camera folder, files only, five pages of them
    ("site001/cam0", "/", ""),  # a prefix that is no folder
    ("", "", ""),  # a whole listing
    ("", "", "site001/cam19/RCNX4990.JPG"),  # a lister's range: StartAfter a key
    ("", "", "site001/"),  # ... after a folder name, as ranges begin
    ("site002/", "", "site001/cam03/"),  # StartAfter before the prefix
    ("", "/", "site000/cam05/RCNX0001.JPG"),  # StartAfter inside a common prefix: it is listed again
    ("nothing/", "/", ""),  # nothing there
]


@pytest.mark.parametrize(("prefix", "delimiter", "start_after"), CASES)
def test_synthetic_listing_pages_as_s3_does(prefix: str, delimiter: str, start_after: str) -> None:
    keys = 250_000  # three sites, the last one half full
    expected = _s3_order(keys, prefix, delimiter, start_after)
    listed: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        contents, prefixes, token = scale.list_page(keys, prefix, delimiter, start_after, token)
        assert len(contents) + len(prefixes) <= scale.PAGE and (
            token is None or len(contents) + len(prefixes) == scale.PAGE
        )
        listed += sorted([*map(scale.key, contents), *prefixes])
        pages += 1
        if token is None:
            break
    assert listed == expected
    assert pages == max(1, -(-len(expected) // scale.PAGE))


@pytest.mark.parametrize(("prefix", "delimiter", "start_after"), CASES)
def test_fake_s3_through_botocore_and_the_stub_list_the_same(prefix: str, delimiter: str, start_after: str) -> None:
    """The XML the fake S3 writes, parsed by a real client's paginator, and the stub's parsed pages."""
    import boto3

    keys = 12_000
    fake = scale.FakeS3(keys)
    client = boto3.client("s3", region_name="us-east-1")  # its own: the shared client stays unanswered
    fake.install(client)
    arguments = {"Bucket": scale.BUCKET, "Prefix": prefix, "Delimiter": delimiter, "StartAfter": start_after}
    given = {name: value for name, value in arguments.items() if value}
    pages = list(client.get_paginator("list_objects_v2").paginate(**given))
    stubbed = list(scale.StubListing(client, fake).paginate(**given))

    def entries(listed: list[dict]) -> list[tuple]:
        return [
            *((o["Key"], o["Size"], o["ETag"]) for page in listed for o in page.get("Contents", [])),
            *((p["Prefix"],) for page in listed for p in page.get("CommonPrefixes", [])),
        ]

    assert entries(pages) == entries(stubbed)
    assert [page["KeyCount"] for page in pages] == [page["KeyCount"] for page in stubbed]
    assert sorted(e[0] for e in entries(pages)) == _s3_order(keys, prefix, delimiter, start_after)
    assert fake.requests["ListObjectsV2"] == 2 * len(pages)
