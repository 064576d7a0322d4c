"""The Lambda layer as `sam build` builds it: small enough, and still everything the Lambdas import.

`layers/common/Makefile` installs the lock's arm64 wheels and prunes what the Lambdas never load.
These tests build it (from PyPI, as sam build does), measure it, and import a twin pruned the same
way under Python 3.12, the Lambda runtime's version, on this machine's architecture.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "common"
# Lambda allows 262 MB unzipped for a function and all its layers; 200 MB leaves room for the
# functions' own code and one more dependency.
MAX_LAYER_BYTES = 200_000_000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def make(*arguments: str) -> None:
    python312 = find_python312()
    if python312 is None:
        pytest.skip("no Python 3.12 here (the Lambda runtime's version, which compiles the layer's bytecode)")
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(LAYER),
            *arguments,
            f"PYTHON={sys.executable}",
            f"PYTHON312={python312}",
        ],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_the_layer_sam_builds_stays_under_200_mb(tmp_path: Path) -> None:
    make("build-CommonLayer", f"ARTIFACTS_DIR={tmp_path}")
    built = tmp_path / "python"
    assert (built / "wildlife_common" / "planning.py").is_file()
    # Compiled for the runtime's Python: a cold start reads bytecode instead of compiling every module.
    assert (built / "wildlife_common" / "__pycache__" / "planning.cpython-312.pyc").is_file()
    assert (built / "pyarrow" / "__pycache__" / "__init__.cpython-312.pyc").is_file()
    assert not (built / "botocore").exists()  # the runtime's is used
    assert size(built) < MAX_LAYER_BYTES, f"{size(built) / 1e6:.0f} MB"


def find_python312() -> str | None:
    """A Python 3.12 that runs: on PATH, or pyenv's (its shim answers only when 3.12 is selected)."""
    candidates = [shutil.which("python3.12")]
    prefix = (
        subprocess.run(["pyenv", "prefix", "3.12"], capture_output=True, text=True) if shutil.which("pyenv") else None
    )
    if prefix is not None and prefix.returncode == 0:
        candidates.append(str(Path(prefix.stdout.strip()) / "bin" / "python3.12"))
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    return None


def test_a_layer_pruned_the_same_way_imports_and_writes_parquet_under_python_312(tmp_path: Path) -> None:
    python312 = find_python312()
    if python312 is None:
        pytest.skip("no Python 3.12 here (the Lambda runtime's version)")
    pins = [re.sub(r"\s*\\$", "", line) for line in (LAYER / "requirements.txt").read_text().splitlines()]
    pins = [line for line in pins if line and not line[0].isspace() and not line.startswith("#")]
    layer, runtime = tmp_path / "layer", tmp_path / "runtime"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    target = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    subprocess.run([*pip, *target, "--target", str(layer), *pins], check=True, timeout=540)
    shutil.copytree(LAYER / "wildlife_common", layer / "wildlife_common")
    make("prune", "bytecode", f"LAYER={layer}")
    # What the Lambda runtime brings: boto3 and botocore (and their small dependencies).
    runtime_pins = [p for p in pins if p.split("==")[0] in ("urllib3", "jmespath", "python-dateutil", "six")]
    subprocess.run(
        [*pip, *target, "--target", str(runtime), "boto3", "botocore", "s3transfer", *runtime_pins], check=True
    )
    smoke = (
        "import io, pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc, pyarrow.orc as orc\n"
        "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
        "from wildlife_common import materialize, planning, failures, storage, incremental, inventory\n"
        "table = pa.table({'x': [1, 2, 3]})\n"
        "sink = io.BytesIO(); pq.write_table(table, sink, compression='zstd')\n"
        "assert pq.read_table(io.BytesIO(sink.getvalue())).equals(table)\n"
        # S3 Inventory reports in ORC (zlib, as S3 writes them) are read by the planner.
        "sink = io.BytesIO(); orc.write_table(table, sink, compression='zlib')\n"
        "assert orc.ORCFile(pa.BufferReader(sink.getvalue())).read().equals(table)\n"
        "assert pc.sum(table['x']).as_py() == 6\n"
        # Ended without the interpreter's teardown: pyarrow's thread pools can abort it now and then
        # ("terminate called without an active exception", apache/arrow#34314; seen here once in ~100
        # runs on a loaded machine), which says nothing about the layer. Lambda never tears down
        # its interpreter between invocations either.
        "import os, sys; print('ok'); sys.stdout.flush(); os._exit(0)\n"
    )
    environment = {**os.environ, "PYTHONPATH": f"{layer}{os.pathsep}{runtime}", "POWERTOOLS_TRACE_DISABLED": "1"}
    done = subprocess.run([python312, "-c", smoke], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
