"""A SpeciesNet model folder is recognised by its info.json, and what is wrong with one is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from wildlife_gpu.models import ModelError
from wildlife_gpu.speciesnet_folder import IMAGE_SIZE, SpeciesNetFolder, common_name, crop_input, is_speciesnet_folder

from demo.speciesnet_folder import LABELS, build_folder


def test_a_folder_with_info_json_is_read_with_its_parts(tmp_path: Path) -> None:
    folder = build_folder(tmp_path / "sn")
    assert is_speciesnet_folder(str(folder)) and not is_speciesnet_folder(str(tmp_path))
    opened = SpeciesNetFolder.open(str(folder))
    assert opened.version == "standin-5.0" and opened.type == "always_crop"
    assert opened.label_list == LABELS and common_name(opened.label_list[0]) == "european roe deer"
    assert opened.detector_uri == str(folder / "md_v5a.0.0.pt")  # the folder's own detector, by default
    assert opened.classifier.path == folder / "classifier.pt" and len(opened.classifier.sha256) == 64


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda info, folder: info.pop("geofence"), "info.json has no 'geofence'"),
        (lambda info, folder: info.update(type="crop_sometimes"), "type must be always_crop or full_image"),
        (lambda info, folder: (folder / "taxonomy.txt").unlink(), "SpeciesNet taxonomy not found"),
        (
            lambda info, folder: (folder / "labels.txt").write_text("lion\n"),
            "label 1 is not uuid;class;order;family;genus;species;common name",
        ),
    ],
)
def test_what_is_wrong_with_a_folder_is_one_line(tmp_path: Path, change, says: str) -> None:
    folder = build_folder(tmp_path / "sn")
    info = json.loads((folder / "info.json").read_text())
    change(info, folder)
    (folder / "info.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match=says.replace("(", r"\(")) as error:
        SpeciesNetFolder.open(str(folder))
    assert "\n" not in str(error.value)


def test_a_crop_input_is_480_square_uint8_and_a_full_image_drops_the_top_and_bottom_strips() -> None:
    pixels = np.zeros((1000, 800, 3), np.uint8)
    pixels[:150] = 255  # a camera's information bar: the full-image crop cuts 150 px at the top and bottom
    pixels[-150:] = 255
    whole = crop_input(pixels, None)
    assert whole.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and whole.dtype == np.uint8 and whole.max() == 0
    crop = crop_input(pixels, (0.0, 0.0, 1.0, 0.1))  # the top bar only
    assert crop.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and crop.min() == 255


def test_a_run_that_names_only_the_folder_gets_the_folders_detector(tmp_path: Path) -> None:
    from wildlife_common.errors import ConfigError
    from wildlife_common.speciesnet import with_folder_detector

    folder = build_folder(tmp_path / "sn")
    raw = {"input": "s3://traps/", "classifier": str(folder)}
    assert with_folder_detector(raw)["detector"] == str(folder / "md_v5a.0.0.pt")
    named = {**raw, "detector": "s3://models/md_v1000.0.0-redwood.pt"}
    assert with_folder_detector(named) == named  # the run's own detector wins
    timm = {"input": "s3://traps/", "classifier": str(tmp_path / "classifier.pth")}
    assert with_folder_detector(timm) == timm  # not a folder: nothing to take
    info = json.loads((folder / "info.json").read_text())
    (folder / "info.json").write_text(json.dumps({**info, "detector": "https://example.org/md_v5a.0.0.pt"}))
    with pytest.raises(ConfigError, match="names its detector by URL"):
        with_folder_detector(raw)
