"""``wildlife run``'s command line: settings from demo defaults, profile and options; one-line errors.

These stop before the engine starts (checks run first, in a second); the runs themselves are in
tests/e2e/test_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wildlife.cli import main, parser
from wildlife.commands.run import DEMO_MODELS, LOCAL_SHARD_SIZE, build_config

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "demo" / "samples"


def config_for(*argv: str) -> dict:
    return build_config(parser().parse_args(["run", *argv]))


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(["run", *argv])
    err = capsys.readouterr().err
    return status, err


def test_with_no_model_options_the_demo_models_run_at_their_training_size(tmp_path: Path) -> None:
    config = config_for(str(SAMPLES), "--out", str(tmp_path))

    assert config["detector"] == str(DEMO_MODELS / "detector.pt")
    assert config["image_size"] == 320
    assert config["classifier"] == str(DEMO_MODELS / "classifier.pth")
    # Architecture and labels come from classifier.json beside the checkpoint.
    assert config["classifier_arch"] == json.loads((DEMO_MODELS / "classifier.json").read_text())["arch"]
    assert config["classifier_labels"] == str(DEMO_MODELS / "labels.txt")
    assert config["input"] == str(SAMPLES)
    assert config["output"] == str(tmp_path)
    # Not the cloud's 2,000: a shard is the progress a Ctrl-C keeps, and a local run keeps it often.
    assert config["shard_size"] == LOCAL_SHARD_SIZE == 200


def test_one_image_file_is_an_input(tmp_path: Path) -> None:
    photo = next(SAMPLES.glob("*.jpg"))
    assert config_for(str(photo), "--out", str(tmp_path))["input"] == str(photo)


def downloaded_manifest(folder: Path) -> Path:
    """An S3 Inventory report's manifest.json, downloaded: its data files and photos stay in S3."""
    manifest = folder / "manifest.json"
    report = {
        "sourceBucket": "traps",
        "destinationBucket": "arn:aws:s3:::reports",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, ETag",
        "files": [{"key": "inventory/traps/daily/data/0.csv.gz", "size": 1, "MD5checksum": "0"}],
    }
    manifest.write_text(json.dumps(report))
    return manifest


def test_an_s3_inventory_manifest_is_an_input(tmp_path: Path) -> None:
    # A report's manifest.json, downloaded or in S3: its data files and photos stay in S3.
    manifest = downloaded_manifest(tmp_path)
    assert config_for(str(manifest), "--out", str(tmp_path))["input"] == str(manifest)


def test_a_profile_sets_the_run_and_command_line_options_override_it(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    profile = tmp_path / "profiles" / "p.yaml"
    profile.write_text(
        "models:\n  detector: ../models/detector.pt\n"
        "detection:\n  image_size: 640\n  batch_size: 4\n  threshold: 0.01\n"
        "classification:\n  threshold: 0.5\nshard_size: 100\n"
    )
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "detector.pt").write_bytes(b"weights: only checked to exist before the run")

    config = config_for(str(SAMPLES), "--out", str(tmp_path), "--profile", str(profile), "--image-size", "320")

    assert config["image_size"] == 320  # the option wins
    assert config["batch_size"] == 4 and config["detection_threshold"] == 0.01 and config["shard_size"] == 100
    assert config["classification_threshold"] == 0.5
    # Relative model paths are relative to the profile file.
    assert config["detector"] == str((tmp_path / "models" / "detector.pt").resolve())
    assert "classifier" not in config  # the profile names a detector and no classifier: detection only


def test_the_bundled_local_profile_is_valid(tmp_path: Path) -> None:
    config = config_for(str(SAMPLES), "--out", str(tmp_path), "--profile", str(ROOT / "profiles" / "local.yaml"))
    assert config["detector"] == str(DEMO_MODELS / "detector.pt") and config["image_size"] == 320


def test_an_unknown_profile_key_is_one_line_that_names_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("detection:\n  treshold: 0.1\n")

    status, err = error_of(capsys, str(SAMPLES), "--out", str(tmp_path), "--profile", str(profile))

    assert status == 2
    assert err.count("\n") == 1 and "unknown key 'detection.treshold'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{tmp}/nowhere"], "no such folder or image: {tmp}/nowhere"),
        (["{tmp}/empty/notes.txt"], "{tmp}/empty/notes.txt is a file, not an image or a folder of images"),
        (["{tmp}/empty"], "no images in {tmp}/empty"),
        ([str(SAMPLES), "--detector", "{tmp}/missing.pt"], "detector weights not found: {tmp}/missing.pt"),
        ([str(SAMPLES), "--image-size", "100"], "image_size must be a multiple of 32"),
        ([str(SAMPLES), "--shard-size", "0"], "shard_size must be a whole number from 1"),
        ([str(SAMPLES), "--classifier", "{tmp}/c.pth"], "--classifier needs --classifier-arch"),
        (["--resume", "no-such-run"], "no run 'no-such-run'"),
        ([], "give INPUT"),
        (["{tmp}/empty/manifest.json"], "{tmp}/empty/manifest.json is not an S3 Inventory manifest: it is not JSON"),
        (["{tmp}/nowhere/manifest.json"], "no such S3 Inventory manifest: {tmp}/nowhere/manifest.json"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    (tmp_path / "empty" / "manifest.json").write_text("not an inventory")
    (tmp_path / "c.pth").write_bytes(b"weights")

    status, err = error_of(capsys, *[a.format(tmp=tmp_path) for a in argv], "--out", str(tmp_path / "out"))

    assert status == 2
    assert err.startswith("wildlife run: error: ") and err.count("\n") == 1, err
    assert message.format(tmp=tmp_path) in err
    assert not (tmp_path / "out" / "runs").exists()  # nothing started


def test_a_resumed_run_keeps_its_settings_and_refuses_a_different_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stored = config_for(str(SAMPLES), "--out", str(tmp_path), "--run-id", "r1", "--shard-size", "5")
    run_json = tmp_path / "runs" / "r1" / "run.json"
    run_json.parent.mkdir(parents=True)
    run_json.write_text(json.dumps({"run_id": "r1", "config": stored, "planned": True}))

    resumed = config_for("--resume", "r1", "--out", str(tmp_path))
    assert resumed["run_id"] == "r1" and resumed["shard_size"] == 5 and resumed["input"] == str(SAMPLES)

    status, err = error_of(capsys, "--resume", "r1", "--out", str(tmp_path), "--image-size", "640")
    assert status == 2 and "r1 was made with image_size=320" in err


@pytest.mark.parametrize("kind", ["a file", "under /proc"])
def test_an_out_that_cannot_be_written_is_one_line_before_anything_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "taken"
    if kind == "a file":
        out.write_text("a file, not a folder")
        expected = f"--out {out} is a file, not a folder"
    else:
        out = Path("/proc/wildlife-out")  # no one may create folders there, root included
        expected = f"cannot write to --out {out}: "
    status, err = error_of(capsys, str(SAMPLES), "--out", str(out))
    assert status == 2 and err.count("\n") == 1 and expected in err, err


def test_reusing_a_run_id_for_another_input_is_refused_and_leaves_the_old_run_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stored = config_for(str(SAMPLES), "--out", str(tmp_path), "--run-id", "r1")
    run_json = tmp_path / "runs" / "r1" / "run.json"
    run_json.parent.mkdir(parents=True)
    run_json.write_text(json.dumps({"run_id": "r1", "config": stored, "planned": True}))
    before = sorted(p.name for p in run_json.parent.rglob("*"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.jpg").write_bytes((SAMPLES / "01_day_deer.jpg").read_bytes())

    status, err = error_of(capsys, str(other), "--out", str(tmp_path), "--run-id", "r1")

    assert status == 2 and f"run r1 exists already, for input {SAMPLES}; give another --run-id" in err, err
    assert sorted(p.name for p in run_json.parent.rglob("*")) == before
    # The same input and settings under the same id is that run again, as --resume is.
    assert config_for(str(SAMPLES), "--out", str(tmp_path), "--run-id", "r1")["run_id"] == "r1"


def test_wildlife_version_names_the_package_and_the_checkouts_commit(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    # A checkout adds its commit (12 hex digits, .dirty with uncommitted changes); a wheel prints the version.
    assert re.fullmatch(r"wildlife \d+\.\d+\.\d+(\+[0-9a-f]{12}(\.dirty)?)?\n", capsys.readouterr().out)


@pytest.mark.parametrize("command", ["run", "start", "status", "watch", "report", "deploy-image"])
def test_help_texts_are_plain_text_without_source_markup(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = capsys.readouterr().out
    assert "``" not in shown and f"wildlife {command}" in shown


def test_with_s3_models_ultralytics_is_imported_before_the_engine_routes_library_output(monkeypatch) -> None:
    """Its logger's handler must exist when the engine starts, which points such handlers at the run's
    logs (tests/unit/test_capture.py); local models are loaded then anyway."""
    import io

    import wildlife_gpu.detector

    from wildlife.commands import run

    calls: list[str] = []
    monkeypatch.setattr(wildlife_gpu.detector, "import_ultralytics", lambda: calls.append("import ultralytics"))
    monkeypatch.setattr(run, "_load_models", lambda config: calls.append(f"load {config['detector']}"))
    screen = io.StringIO()

    run._prepare_models({"detector": "s3://models/md_v1000.pt"}, screen)
    run._prepare_models({"detector": "/models/detector.pt"}, screen)

    assert calls == ["import ultralytics", "load /models/detector.pt"]
    assert screen.getvalue().splitlines() == [
        "loading torch and ultralytics...",
        "loading the models (detector.pt) with torch...",
    ]


def test_a_report_is_found_and_read_once_for_the_input_check_and_the_buckets(tmp_path: Path, monkeypatch) -> None:
    from wildlife_common import inventory

    from wildlife.commands import run

    manifest = downloaded_manifest(tmp_path)
    reads: list[str] = []
    read = inventory.read
    monkeypatch.setattr(inventory, "read", lambda uri: reads.append(uri) or read(uri))

    run._check_input(str(manifest))
    buckets = run._s3_buckets({"input": str(manifest), "detector": "/m/detector.pt"})

    assert buckets == {"traps", "reports"} and reads == [str(manifest)]
