"""The GPU container: its entrypoint exists and it installs what the code imports."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "gpu_task" / "Dockerfile").read_text()

# Import name → the distribution that provides it, where they differ.
DISTRIBUTIONS = {
    "PIL": "pillow",
    "cv2": "opencv-python",
    "pynvml": "nvidia-ml-py",
    "botocore": "boto3",
}


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= requirement_names((path.parent / line[3:]).resolve())
        elif line:
            names.add(re.split(r"[<>=\[ ;]", line)[0].lower())
    return names


def third_party_imports(folder: Path) -> set[str]:
    local = {"wildlife_common", "wildlife_gpu"}
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {name for name in found - local if name not in sys.stdlib_module_names}


def test_the_image_installs_every_package_the_code_imports() -> None:
    installed = requirement_names(ROOT / "gpu_task" / "requirements.txt")
    installed |= requirement_names(ROOT / "gpu_task" / "requirements-nodeps.txt")
    imported = third_party_imports(ROOT / "gpu_task" / "wildlife_gpu") | third_party_imports(
        ROOT / "layers" / "common" / "wildlife_common"
    )
    missing = {name for name in imported if DISTRIBUTIONS.get(name, name).lower().replace("_", "-") not in installed}
    assert not missing, f"imported but not in gpu_task/requirements.txt: {sorted(missing)}"


def test_the_image_installs_the_yolov5_code_base_without_its_declared_dependencies() -> None:
    """yolov5 declares training loggers and model-hub clients; the image installs it --no-deps, pinned."""
    assert "pip install --require-hashes --no-deps -r /build/gpu-nodeps.txt" in DOCKERFILE
    assert (
        "COPY requirements/lock/pip.txt requirements/lock/gpu.txt requirements/lock/gpu-nodeps.txt /build/"
        in DOCKERFILE
    )
    pins = (ROOT / "gpu_task" / "requirements-nodeps.txt").read_text()
    assert re.search(r"^yolov5==7\.0\.(8|9|10|11)$", pins, re.MULTILINE)  # SpeciesNet's range


def test_the_dockerfile_copies_both_packages_and_runs_the_entrypoint_module_as_non_root() -> None:
    assert "COPY layers/common/wildlife_common /app/wildlife_common" in DOCKERFILE
    assert "COPY gpu_task/wildlife_gpu /app/wildlife_gpu" in DOCKERFILE
    assert 'ENTRYPOINT ["python", "-m", "wildlife_gpu"]' in DOCKERFILE
    assert (ROOT / "gpu_task" / "wildlife_gpu" / "__main__.py").exists()
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^FROM nvidia/cuda:[\d.]+-\S*runtime", DOCKERFILE, re.MULTILINE)


def test_the_entrypoint_answers_help_and_rejects_bad_arguments_in_one_line() -> None:
    env = {"PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT / 'gpu_task'}", "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "wildlife_gpu", "--help"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "detect" in ok.stdout and "materialize" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "wildlife_gpu", "detect", "--run", "x"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: the following arguments are required: --shard (see --help)"]


@pytest.mark.slow
def test_a_shard_that_cannot_be_done_exits_1_with_one_line(tmp_path: Path) -> None:
    env = {"PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT / 'gpu_task'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "wildlife_gpu", "detect", "--run", str(tmp_path / "runs" / "r1"), "--shard", "00000"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: no run at {tmp_path / 'runs' / 'r1'} (run.json missing)"


@pytest.mark.slow
def test_the_entrypoint_detects_a_shard_with_a_megadetector_v5_format_checkpoint(tmp_path: Path) -> None:
    """What a Batch job runs (``python -m wildlife_gpu detect``), in a fresh process, on MDv5's file format."""
    from wildlife_common.planning import plan_detection

    samples = ROOT / "demo" / "samples"
    config = {
        "input": str(samples),
        "detector": str(ROOT / "demo" / "models" / "detector-yolov5.pt"),
        "image_size": 320,
    }
    run = plan_detection(config, "entrypoint", str(tmp_path))
    env = {
        "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT / 'gpu_task'}",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "wildlife_gpu", "detect", "--run", run["run_uri"], "--shard", "00000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    marker = json.loads((Path(run["run_uri"]) / "stage1" / "results" / "00000.done.json").read_text())
    assert marker["images"] == 21 and marker["failed_images"] == 0 and marker["detections"] > 21
    assert marker["detector_format"] == "yolov5"


@pytest.mark.slow
def test_the_entrypoint_classifies_a_shard_with_a_speciesnet_folder(tmp_path: Path) -> None:
    """What a Batch classify job runs, in a fresh process, for a run whose classifier is a SpeciesNet folder."""
    from wildlife_common.planning import plan_classification, plan_detection
    from wildlife_gpu.detect import run_detect

    from demo.speciesnet_folder import build_folder

    folder = build_folder(tmp_path / "speciesnet")
    config = {
        "input": str(ROOT / "demo" / "samples"),
        "detector": str(ROOT / "demo" / "models" / "detector.pt"),
        "image_size": 320,
        "classifier": str(folder),
        "country": "KEN",
    }
    run = plan_detection(config, "entrypoint-sn", str(tmp_path))
    run_detect(run["run_uri"], "00000")
    assert plan_classification({"run_uri": run["run_uri"]})["shard_count"] == 1
    env = {
        "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT / 'gpu_task'}",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "wildlife_gpu", "classify", "--run", run["run_uri"], "--shard", "c00000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    marker = json.loads((Path(run["run_uri"]) / "stage2" / "results" / "c00000.done.json").read_text())
    assert marker["crops"] > 21 and marker["failed_crops"] == 0 and marker["speciesnet_version"] == "standin-5.0"


def test_a_job_learns_its_host_from_the_file_the_instance_wrote(tmp_path, monkeypatch) -> None:
    from wildlife_gpu import shards

    monkeypatch.delenv("WILDLIFE_INSTANCE_TYPE", raising=False)
    monkeypatch.setattr(shards, "HOST_INFO", tmp_path / "host.json")
    assert shards.host() == (None, None)  # a local run: nothing known
    (tmp_path / "host.json").write_text('{"instance_type": "g5.xlarge", "lifecycle": "spot"}\n')
    assert shards.host() == ("g5.xlarge", "spot")
    monkeypatch.setenv("WILDLIFE_INSTANCE_TYPE", "g6.xlarge")
    assert shards.host() == ("g6.xlarge", "spot")


@pytest.mark.slow
def test_a_wheel_carries_what_wildlife_run_needs_outside_a_checkout(tmp_path) -> None:
    """pip install . gives a working `wildlife run`: the stack, the handlers and the demo pack are package data."""
    import zipfile

    from wildlife.paths import stack_root

    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    stack = "wildlife/stack/"
    for path in ("template.yaml", "statemachine/pipeline.asl.json", "demo/models/detector.pt", "profiles/local.yaml"):
        assert stack + path in names, path
    assert {f"{stack}functions/{f}/app.py" for f in ("plan_detection", "plan_classification", "materialize")} <= names

    # Installed, the package finds its copy; in a checkout, the repository's own files.
    installed = tmp_path / "site" / "wildlife"
    (installed / "stack").mkdir(parents=True)
    (installed / "stack" / "template.yaml").write_text("{}")
    assert stack_root(installed) == installed / "stack"
    assert stack_root() == ROOT


def dockerfile_environment() -> dict[str, str]:
    """The variables the image's ENV instructions set (``ENV A=1 \\`` continuation lines included)."""
    joined = DOCKERFILE.replace("\\\n", " ")
    return {
        name: value.strip('"')
        for line in joined.splitlines()
        if line.startswith("ENV ")
        for name, value in re.findall(r"(\w+)=(\S*)", line[4:])
    }


def test_the_image_sets_ultralytics_offline_and_never_installing_before_it_is_imported() -> None:
    from wildlife_gpu import ULTRALYTICS_ENVIRONMENT

    environment = dockerfile_environment()
    assert {name: environment.get(name) for name in ULTRALYTICS_ENVIRONMENT} == ULTRALYTICS_ENVIRONMENT
    assert ULTRALYTICS_ENVIRONMENT == {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False"}
    assert environment["YOLO_CONFIG_DIR"].startswith("/tmp/")  # its settings file, written at import


# A process that imports ultralytics the way the task does, with none of the variables set and no
# settings file yet (a fresh HOME): what ultralytics decided at import, and nothing else on stdout.
ULTRALYTICS_CHILD = """
from wildlife_gpu.detector import import_ultralytics
import_ultralytics()
from ultralytics.utils import AUTOINSTALL, ONLINE
print(ONLINE, AUTOINSTALL)
"""


@pytest.mark.slow
def test_ultralytics_is_offline_and_never_installs_wherever_the_task_runs(tmp_path: Path) -> None:
    """The CLI's model check and the local engine import it outside the image, with no ENV lines.

    On a machine where ultralytics never ran, it writes its settings file and says so on stdout:
    on the screen of a newcomer's first ``wildlife run``, unless the import holds that back.
    """
    env = {
        "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT / 'gpu_task'}",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),  # ultralytics writes its settings file below it
    }
    child = subprocess.run(
        [sys.executable, "-c", ULTRALYTICS_CHILD], capture_output=True, text=True, env=env, timeout=120
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["False", "False"]
