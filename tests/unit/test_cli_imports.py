"""The commands that talk to a deployed stack, or read a local run's folder, start without the local
engine's weight.

moto, the SAM translator and torch take seconds to import and are needed by ``wildlife run`` only.
Checked in a fresh interpreter: this test process has imported them already.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wildlife_common import storage
from wildlife_common.layout import RunLayout

HEAVY = ("moto", "samtranslator", "torch")

CHILD = f"""
import contextlib, io, sys
from wildlife import cli

for argv in (
    ["--help"], ["status", "--help"], ["watch", "--help"], ["start", "--help"], ["report", "--help"],
    # Past parsing into each command, up to its first AWS call (no stack named: a usage error).
    ["status"], ["watch", "r1"], ["start", "s3://traps/2026/"], ["report", "r1"],
    # A local run folder, read to the end.
    ["status", "--out", "local"], ["status", "r1", "--out", "local"], ["report", "r1", "--out", "local"],
):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            status = cli.main(argv)
        except SystemExit as exit_:
            status = exit_.code
    assert status in (0, 2), (argv, status, err.getvalue())
    assert status == 0 or "which stack?" in err.getvalue(), (argv, err.getvalue())
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
assert not loaded and "wildlife.engine.local" not in sys.modules, loaded
print("light")
"""


def test_status_watch_start_report_and_help_import_neither_moto_nor_the_sam_translator_nor_torch(
    tmp_path: Path,
) -> None:
    # A finished local run, as far as status and report read it: its record and its summary.
    layout = RunLayout.for_run(str(tmp_path / "local"), "r1")
    storage.write_json(layout.run_json, {"run_id": "r1", "created": "2026-11-29T03:02:30+00:00", "planned": True})
    storage.write_json(
        layout.summary_json, {"run_id": "r1", "status": "succeeded", "finished": "2026-11-29T03:12:30+00:00"}
    )
    env = {key: value for key, value in os.environ.items() if key != "WILDLIFE_STACK"}
    # The child imports the code this process imports (this checkout's layers and GPU task).
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(path) for path in sys.path if path)
    # Run where there is no results/ folder, which status and report would read with no stack named.
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0 and child.stdout.strip() == "light", child.stderr
