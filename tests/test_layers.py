"""The import contract of DESIGN.md ("Layers, one way"), run by import-linter: each layer
imports only the layers below it, geometry and the API know nothing of each other, the
simulator imports nothing of the package, and no cycles. The contracts live in
``pyproject.toml`` ([tool.importlinter]); these tests run them on the package as it is,
and on a copy with an upward import injected, which must fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter (dev extra) missing")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run(
        [str(LINT), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "repo"
    shutil.copytree(
        ROOT / "mapflow_geo", dst / "mapflow_geo", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_contracts_kept():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # results importing the run layer (an upward import)
        ("results/stats.py", "from mapflow_geo.run import store as _up", "Layers one way"),
        # the geometry layer making HTTP requests
        ("tiling.py", "from mapflow_geo import client as _up", "Geometry makes no HTTP"),
        # the simulator importing the package
        ("sim/world.py", "from mapflow_geo import tiling as _up", "simulator imports nothing"),
        # a hidden, function-level upward import is an import too
        ("aoi.py", "def _f():\n    from mapflow_geo.results import stitch\n", "Layers one way"),
    ],
)
def test_injected_upward_import_breaks_the_contract(tmp_path, module, line, contract):
    repo = _copy(tmp_path)
    path = repo / "mapflow_geo" / module
    path.write_text(path.read_text() + "\n" + line + "\n")
    proc = _lint(repo)
    assert proc.returncode != 0, proc.stdout
    text = " ".join(proc.stdout.split())  # the report wraps long contract names
    verdict = re.search(re.escape(contract) + r".{0,200}?\b(BROKEN|KEPT)\b", text)
    assert verdict is not None and verdict.group(1) == "BROKEN", proc.stdout
