"""Where the files `wildlife run` needs besides Python code live: the stack (template.yaml, the state
machine, the Lambda handlers), the demo pack and the profiles.

In a checkout they are read where they are, at the repository's root. A wheel (`pip install .`)
carries copies under ``wildlife/stack/`` (pyproject.toml's package data), so the command works
outside a checkout too.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def stack_root(package: Path = PACKAGE) -> Path:
    """The folder holding template.yaml: the checkout's root, else the installed copy."""
    for candidate in (package.parent, package / "stack"):
        if (candidate / "template.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"template.yaml is neither in a checkout above {package} nor installed in {package / 'stack'}: "
        "reinstall the wildlife-pipeline package"
    )


def checkout_root(package: Path = PACKAGE) -> Path | None:
    """The repository root when running from a checkout (it has gpu_task/Dockerfile), else None."""
    root = package.parent
    return root if (root / "gpu_task" / "Dockerfile").is_file() else None
