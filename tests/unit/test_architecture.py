"""The import direction between the deployment units: functions -> layer <- GPU task <- CLI.

The layer (``wildlife_common``) is installed in Lambda, in the GPU image and with the CLI, so it may
import only what all three have: never torch or the model libraries (the Lambda layer would not fit
its 250 MB), never the GPU task or the CLI. The Lambdas import the layer and Powertools only; the GPU
task never imports the CLI or the local engine's moto. Checked on the source (every import, also
inside functions), so a lazy import that would fail in Lambda is caught here, not in a deployment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# numpy is not among them: pyarrow needs it, and the layer declares it.
MODEL_LIBRARIES = {"torch", "torchvision", "ultralytics", "timm", "cv2", "yolov5", "PIL"}
LOCAL_ENGINE = {"moto", "samtranslator"}

# unit -> (its source folder, top-level packages it must not import)
RULES = {
    "layer": (
        "layers/common/wildlife_common",
        {"wildlife", "wildlife_gpu", "aws_lambda_powertools", *MODEL_LIBRARIES, *LOCAL_ENGINE},
    ),
    "functions": ("functions", {"wildlife", "wildlife_gpu", *MODEL_LIBRARIES, *LOCAL_ENGINE}),
    "gpu_task": ("gpu_task/wildlife_gpu", {"wildlife", "aws_lambda_powertools", *LOCAL_ENGINE}),
}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every absolute import in a file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("unit", sorted(RULES))
def test_a_unit_imports_only_in_the_allowed_direction(unit: str) -> None:
    folder, forbidden = RULES[unit]
    found = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in imported_packages(path) & forbidden
    }
    assert sorted(found) == []


def test_the_layer_requirements_hold_no_model_library() -> None:
    declared = (ROOT / "layers/common/requirements.txt").read_text().lower()
    assert not [name for name in ("torch", "ultralytics", "timm", "opencv") if name in declared]
