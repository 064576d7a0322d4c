"""The run configuration: defaults, and one-line errors that name the key."""

from pathlib import Path

import pytest
from wildlife_common.config import RESULT_SETTINGS, SETTINGS, parse_config
from wildlife_common.errors import ConfigError

MINIMAL = {"input": "s3://traps/2026/", "detector": "s3://models/md_v1000.pt"}


def test_minimal_config_gets_documented_defaults() -> None:
    config = parse_config(MINIMAL, default_run_id="exec-1", default_output="s3://pipeline/")
    assert config.run_id == "exec-1"
    assert config.output == "s3://pipeline/"
    assert config.shard_size == 2000
    assert config.batch_size == 16
    assert config.image_size == 640
    assert config.detection_threshold == 0.005
    assert config.tolerated_failure_percentage == 5.0
    assert isinstance(config.tolerated_failure_percentage, float)
    # No classifier given: the run is detection only.
    assert config.detection_only and not config.classify


def test_config_round_trips_through_its_json_form() -> None:
    config = parse_config(
        {**MINIMAL, "classifier": "c.pth", "classifier_arch": "resnet18", "classifier_labels": "l.txt"}
    )
    assert parse_config(config.to_dict()) == config
    assert config.classify


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**MINIMAL, "batchsize": 8}, "unknown setting 'batchsize'"),
        ({"detector": "d.pt"}, "missing required setting 'input'"),
        ({**MINIMAL, "image_size": 650}, "image_size must be a multiple of 32"),
        ({**MINIMAL, "image_size": "640"}, "image_size must be a whole number"),
        ({**MINIMAL, "batch_size": True}, "batch_size must be a whole number"),
        ({**MINIMAL, "shard_size": 0}, "shard_size must be a whole number from 1"),
        ({**MINIMAL, "detection_threshold": 1.5}, "detection_threshold must be a number"),
        (
            {**MINIMAL, "tolerated_failure_percentage": 100},
            "tolerated_failure_percentage must be a number from 0.0 and below 100",
        ),
        ({**MINIMAL, "incremental": "yes"}, "incremental must be true or false"),
        ({**MINIMAL, "run_id": "my run!"}, "run_id must be 1 to 80 letters"),
        ({**MINIMAL, "input": "https://example.org/x"}, "input must be an s3:// URI or a local path"),
        ({**MINIMAL, "input": "s3://"}, "input names no bucket"),
        ({**MINIMAL, "detector_classes": "yolo"}, "detector_classes must be one of megadetector, coco"),
        ({**MINIMAL, "detector_classes": {"0": "bird"}}, "detector_classes['0'] must be animal, person, vehicle"),
        ({**MINIMAL, "classifier": "c.pth", "classifier_labels": "l.txt"}, "a timm classifier needs classifier_arch"),
        ({**MINIMAL, "country": "US"}, "country must be an ISO 3166-1 alpha-3 code"),
        ({**MINIMAL, "country": "USA", "admin1_region": "New York"}, "admin1_region must be a 2-character"),
        ({**MINIMAL, "admin1_region": "NY"}, "admin1_region needs country as well"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_config_is_a_one_line_error_naming_the_key(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_classifier_without_arch_and_labels_is_taken_for_a_speciesnet_folder() -> None:
    """SpeciesNet folders name their own labels; whether the folder holds info.json is checked on loading."""
    config = parse_config({**MINIMAL, "classifier": "s3://models/speciesnet-4.0.1a/"})
    assert config.classify and config.classifier_arch is None and config.classifier_labels is None


def test_custom_class_map_is_accepted() -> None:
    config = parse_config({**MINIMAL, "detector_classes": {"0": "animal", "1": "person", "7": "ignore"}})
    assert config.detector_classes == {"0": "animal", "1": "person", "7": "ignore"}


def test_every_bundled_profile_is_a_valid_run_config() -> None:
    """The profiles the README points users to parse, with the detector settings MegaDetector publishes."""
    from pathlib import Path

    from wildlife.profiles import load_profile

    profiles = sorted((Path(__file__).resolve().parents[2] / "profiles").glob("*.yaml"))
    assert {p.stem for p in profiles} >= {"local", "cloud", "megadetector-v5", "megadetector-v1000", "speciesnet"}
    for path in profiles:
        config = parse_config({"input": "s3://my-traps/2026/", **load_profile(path)})
        if path.stem == "speciesnet":  # a folder: no architecture, no labels file
            assert config.classify and config.classifier_arch is None and config.image_size == 1280
        if path.stem.startswith("megadetector"):
            assert config.image_size == 1280 and config.detection_threshold == 0.005 and config.exact_decode
            assert config.typical_detection_threshold == (0.2 if path.stem.endswith("v5") else 0.3)


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in SETTINGS if f"`{name}`" not in table]
    assert missing == []


def test_profiles_and_resume_checks_come_from_the_settings_list() -> None:
    from wildlife import profiles

    in_profiles = {name for keys in profiles.SECTIONS.values() for name in keys.values()} | set(profiles.TOP_LEVEL)
    assert in_profiles == {name for name, known in SETTINGS.items() if known.profile}
    assert profiles.SECTIONS["detection"]["threshold"] == "detection_threshold"
    assert "shard_size" in RESULT_SETTINGS and "batch_size" not in RESULT_SETTINGS


def test_the_run_and_start_options_are_the_settings_marked_for_them() -> None:
    import argparse

    from wildlife.options import add_setting_options, setting_values

    for command in ("run", "start"):
        parser = argparse.ArgumentParser()
        add_setting_options(parser, command)
        marked = {name for name, known in SETTINGS.items() if command in known.options}
        assert {action.dest for action in parser._actions} - {"help"} == marked
        assert setting_values(parser.parse_args([]), command) == {}
    parser = argparse.ArgumentParser()
    add_setting_options(parser, "run")
    given = parser.parse_args(["--image-size", "1280", "--fast-decode", "--detector-classes", '{"0": "animal"}'])
    assert setting_values(given, "run") == {
        "image_size": 1280,
        "exact_decode": False,
        "detector_classes": {"0": "animal"},
    }
