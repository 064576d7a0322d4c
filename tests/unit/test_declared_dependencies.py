"""Each deployment unit declares every third-party package its code imports.

An import that only works because some other package happens to pull its distribution in breaks
the day that package drops it, and never shows in the place that installs the unit.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN = {"wildlife", "wildlife_common", "wildlife_gpu", "functions", "tests", "bench", "demo", "conftest"}

# Import name → the distribution that provides it, where they differ.
DISTRIBUTIONS = {
    "PIL": "pillow",
    "cv2": "opencv-python",
    "yaml": "pyyaml",
    "pynvml": "nvidia-ml-py",
    "samtranslator": "aws-sam-translator",
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    return normalize(re.split(r"[<>=!~\[ ;]", line.strip())[0])


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= requirement_names((path.parent / line[3:]).resolve())
        elif line and not line.startswith("-"):
            names.add(requirement_name(line))
    return names


def imported_distributions(*folders: str) -> dict[str, str]:
    """Distribution name → one file that imports it, for the third-party imports under ``folders``."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in OWN and top not in sys.stdlib_module_names:
                        found.setdefault(normalize(DISTRIBUTIONS.get(top, top)), str(path.relative_to(ROOT)))
    return found


def undeclared(imported: dict[str, str], declared: set[str]) -> dict[str, str]:
    return {name: where for name, where in imported.items() if name not in declared}


def test_the_layer_declares_what_the_lambdas_import() -> None:
    # The Lambda runtime ships boto3 and botocore; the layer leaves them out to stay under the size limit.
    declared = requirement_names(ROOT / "layers" / "common" / "requirements.in") | {"boto3", "botocore"}
    assert not undeclared(imported_distributions("layers/common/wildlife_common", "functions"), declared)


def test_pyproject_declares_what_the_wildlife_command_imports() -> None:
    """`pip install .` outside a checkout: the CLI, and the Lambda code and GPU task `wildlife run` runs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {requirement_name(r) for r in project["dependencies"]}
    imported = imported_distributions("wildlife", "layers/common/wildlife_common", "functions", "gpu_task/wildlife_gpu")
    # yolov5 cannot be a dependency: it has to be installed with --no-deps (the yolov5 extra says how).
    assert set(undeclared(imported, declared)) <= {"yolov5"}
    extras = {requirement_name(r) for r in project["optional-dependencies"]["yolov5"]}
    yolov5_imports = requirement_names(ROOT / "gpu_task" / "requirements.txt") - requirement_names(
        ROOT / "layers" / "common" / "requirements.in"
    )
    assert {"pandas", "seaborn", "ipython", "scipy", "setuptools"} <= extras <= yolov5_imports


def test_the_development_environment_declares_what_tests_bench_and_demo_import() -> None:
    declared = requirement_names(ROOT / "requirements" / "all.txt")
    declared |= requirement_names(ROOT / "requirements" / "dev-nodeps.txt")
    imported = imported_distributions("tests", "bench", "demo", "wildlife", "gpu_task/wildlife_gpu")
    assert not undeclared(imported, declared)
