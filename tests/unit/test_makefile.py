"""The Makefile finds a Python it can build .venv with, or says in one line what it found instead."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MAKE = shutil.which("make") or "make"
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def interpreter(folder: Path, name: str, version: tuple[int, int]) -> None:
    """A command ``name`` on PATH that runs ``-c CODE`` with this Python, telling CODE it is ``version``."""
    script = folder / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.version_info = {(*version, 0, 'final', 0)!r}\n"
        "exec(sys.argv[2]) if sys.argv[1:2] == ['-c'] else sys.exit(2)\n"
    )
    script.chmod(0o755)


def make(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """make with the repository's Makefile in an empty folder, with only the fake interpreters on PATH."""
    work = tmp_path / "work"
    (work / "requirements" / "lock").mkdir(parents=True)
    for name in ("pip.txt", "dev.txt", "dev-nodeps.txt"):
        (work / "requirements" / "lock" / name).touch()
    # Only the fakes on PATH (this machine's own pythons must not count); make runs recipes with
    # /bin/sh, and the lines that run before the interpreter is chosen use only its builtins.
    env = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [MAKE, "--no-print-directory", "-f", str(ROOT / "Makefile"), *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def bin_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


def test_the_first_python_of_3_11_or_newer_builds_the_venv(tmp_path: Path, bin_folder: Path) -> None:
    # GIVEN no python3.11, an old python3.12 (a stand-in for a stale link) and python3.13
    interpreter(bin_folder, "python3.12", (3, 10))
    interpreter(bin_folder, "python3.13", (3, 13))
    interpreter(bin_folder, "python3", (3, 13))

    plan = make(tmp_path, "-n", "venv")

    assert plan.returncode == 0, plan.stderr
    assert "python3.13 -m venv .venv" in plan.stdout


def test_no_python_new_enough_is_one_line_naming_what_was_found(tmp_path: Path, bin_folder: Path) -> None:
    interpreter(bin_folder, "python3", (3, 10))

    result = make(tmp_path, "venv")

    assert result.returncode != 0
    assert result.stdout.strip() == "needs Python 3.11 or newer; found: python3=3.10"
    assert not (tmp_path / "work" / ".venv").exists()
