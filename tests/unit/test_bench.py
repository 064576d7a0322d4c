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
    """Planning through botocore and through the stub, with and without an index, loading the index
    and materialize: each case in its own process, as `make bench-scale` runs them at full size."""
    out = tmp_path / "figures.json"
    argv = ["--sizes", "1500", "2500", "--index", "1000", "--materialize", "2500", "--out", str(out)]
    assert scale.main([*argv, "--client", "auto"]) == 0
    plans = [f for f in json.loads(out.read_text()) if f["kind"] == "plan"]
    assert [(f["keys"], f["processed"]) for f in plans] == [(1500, 0), (1500, 750), (2500, 0), (2500, 1250)]
    assert all(f["client"] == "botocore" and f["us_per_key"] > 0 and f["peak_rss_mb"] > 0 for f in plans)
    assert plans[0]["requests"]["ListObjectsV2"] == 2 and plans[2]["shards"] == 2
    figures = {f["kind"]: f for f in json.loads(out.read_text())}
    assert figures["index"]["processed"] == 1000 and figures["materialize"]["status"] == "succeeded"
    assert "one planner" in capsys.readouterr().out
    assert scale.main(["--sizes", "1500", "--index", "--materialize", "--client", "stub", "--out", str(out)]) == 0
    assert [f["client"] for f in json.loads(out.read_text())] == ["stub", "stub"]
