"""Detector weights load by what the file is: each family found in its exact file format, anything else named."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from wildlife_gpu.detector import Detector
from wildlife_gpu.detector_files import NotADetector, inspect
from wildlife_gpu.models import ModelError

# The module builds a checkpoint of each detector family in a fresh process (about 25 s).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "demo" / "models"


@pytest.fixture(scope="module")
def fresh_yolov5(tmp_path_factory) -> Path:
    """A YOLOv5-repository checkpoint built here, as MDv5 was saved (``{"model": Model.half()}``, ``models.yolo``)."""
    out = tmp_path_factory.mktemp("yolov5") / "md_v5-format.pt"
    done = subprocess.run(
        [sys.executable, "-m", "demo.yolov5_detector", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_each_family_is_recognised_by_the_classes_its_pickle_names(fresh_yolov5) -> None:
    ultralytics = inspect(MODELS / "detector.pt")
    assert ultralytics.format == "ultralytics" and "ultralytics.nn.tasks" in ultralytics.modules
    for path in (fresh_yolov5, MODELS / "detector-yolov5.pt"):
        found = inspect(path)
        assert found.format == "yolov5" and {"models.yolo", "models.common"} <= found.modules, path
        assert not any(m.startswith("yolov5") for m in found.modules)  # MDv5's names, not the package's


def test_megadetector_metadata_in_the_file_is_read(tmp_path) -> None:
    tagged = tmp_path / "md_v1000-style.pt"
    tagged.write_bytes((MODELS / "detector.pt").read_bytes())
    with zipfile.ZipFile(tagged, "a") as archive:
        folder = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{folder}/megadetector_info.json", '{"model_type": "ultralytics", "image_size": 960}')
    assert inspect(tagged).metadata == {"model_type": "ultralytics", "image_size": 960}
    cedar = tmp_path / "md_v1000.0.0-cedar.pt"
    cedar.write_bytes((MODELS / "detector.pt").read_bytes())
    with zipfile.ZipFile(cedar, "a") as archive:
        archive.writestr(f"{folder}/megadetector_info.json", '{"model_type": "yolov9", "image_size": 640}')
    with pytest.raises(NotADetector, match="YOLOv9 repository"):
        inspect(cedar)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "an empty file"),
        (b"PK\x03\x04 cut short", "a damaged zip archive"),
        (b"<html>503 Service Unavailable</html>", "a text file"),
        (b"\x89HDF\r\n\x1a\n" + bytes(40), "Keras/HDF5"),
        (b"\x80\x02\x8a\x0alegacy", "legacy (pre-1.6) format"),
        (bytes(range(200, 256)), "it starts with bytes c8 c9"),
    ],
)
def test_a_file_that_is_no_checkpoint_says_what_it_is(tmp_path, content: bytes, says: str) -> None:
    path = tmp_path / "detector.pt"
    path.write_bytes(content)
    with pytest.raises(NotADetector, match=says.replace("(", r"\(").replace(")", r"\)")):
        inspect(path)


def test_a_checkpoint_of_something_else_says_what_it_holds(tmp_path) -> None:
    with pytest.raises(NotADetector, match="state dict"):
        inspect(MODELS / "classifier.pth")  # the demo classifier: a timm state dict
    scripted = tmp_path / "scripted.pt"
    with pytest.warns(FutureWarning):  # TorchScript is deprecated, and still what some exports are
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    with pytest.raises(NotADetector, match="TorchScript"):
        inspect(scripted)
    module = tmp_path / "module.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, module)
    with pytest.raises(NotADetector, match=r"torch\.nn\.modules\.linear"):
        inspect(module)


def test_the_detector_error_is_one_line_naming_the_file(tmp_path) -> None:
    path = tmp_path / "md_v5a.0.0.pt"
    path.write_bytes(b"Access Denied")
    with pytest.raises(ModelError) as error:
        Detector(str(path), image_size=320, conf=0.005, class_map="megadetector", device="cpu")
    what = "a text file, not a PyTorch checkpoint (it starts 'Access Denied')"
    assert str(error.value) == f"detector weights {path} are not a detector: {what}"


def test_loading_a_yolov5_checkpoint_leaves_other_models_and_utils_packages_importable(tmp_path) -> None:
    """The pickle's ``models``/``utils`` names resolve inside yolov5; a project's own ``utils`` still imports."""
    (tmp_path / "utils.py").write_text("OWNER = 'the user'\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("OWNER = 'the user'\n")
    script = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from wildlife_gpu.detector import Detector
before = list(sys.path)
weights = {str(MODELS / "detector-yolov5.pt")!r}
detector = Detector(weights, image_size=320, conf=0.005, class_map="megadetector", device="cpu")
assert detector.format == "yolov5" and detector.stride == 64, (detector.format, detector.stride)
assert sys.path == before, set(sys.path) ^ set(before)
assert "models" not in sys.modules and "utils" not in sys.modules, "a top-level name was taken"
import models, utils
assert models.OWNER == utils.OWNER == "the user"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_an_image_size_a_p6_model_cannot_take_is_a_one_line_error() -> None:
    """MDv5's P6 layout needs multiples of 64: 352 (a multiple of 32) is refused with the reason."""
    with pytest.raises(ModelError, match=r"image_size 352 does not suit .* its stride is 64 .* multiple of 64"):
        Detector(str(MODELS / "detector-yolov5.pt"), image_size=352, conf=0.005, class_map="megadetector", device="cpu")
