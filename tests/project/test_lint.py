"""The code base stays ruff-clean (the `make lint` check, run by the suite)."""

import shutil
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is in the dev extra"
    proc = subprocess.run(
        [ruff, "check", "mapflow_geo", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
