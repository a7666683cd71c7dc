"""The import contract of DESIGN.md ("Layers, one way"), run by import-linter: each layer
imports only the layers below it, geometry and the API know nothing of each other, the
simulator imports nothing of the package, the API areas sit between their composing
client and the transport, and no cycles. The contracts live in
``pyproject.toml`` ([tool.importlinter]); these tests run them on the package as it is,
and on a copy with an upward import injected, which must fail."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT

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
        # the simulator's service reaching up to its route table (the dispatcher's place)
        ("sim/service.py", "def _f():\n    from . import routes\n", "simulator in order"),
        # one API area on another of its own layer
        ("sim/api_projects.py", "from . import api_templates as _up", "simulator in order"),
        # the state (the bottom) on an API area
        ("sim/state.py", "from .api_processings import processing_json", "simulator in order"),
        # an API area on the geometry layer, on results, on its composing client; the
        # simulator on an API area of the package
        ("api/projects.py", "from mapflow_geo import tiling as _up", "API layer knows no geometry"),
        ("api/catalog.py", "from mapflow_geo.results import stats as _up", "Layers one way"),
        ("api/templates.py", "def _f():\n    from mapflow_geo import client\n", "API by area"),
        ("sim/api_data.py", "from mapflow_geo.api import pricing", "simulator imports nothing"),
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


# ----------------------------------------------------------------------- simulator imports
#: what the simulator may import inside a function: heavy optional dependencies, the
#: documented convenience client, and the pytest plugin's lazy fixture (pytest loads the
#: plugin on every run; the simulator loads when the fixture is used)
OPTIONAL = ("PIL", "rasterio", "mapflow_geo.client")
LAZY = {("pytest_plugin.py", ".")}


def _function_level_imports(sim: Path) -> list[str]:
    found = []
    for path in sorted(sim.glob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom):
                    names = ["." * node.level + (node.module or "")]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] in OPTIONAL or name in OPTIONAL:
                        continue
                    if (path.name, name) not in LAZY:
                        found.append(f"{path.name}:{node.lineno} {name}")
    return found


def test_simulator_imports_at_the_top_of_the_file():
    assert _function_level_imports(ROOT / "mapflow_geo" / "sim") == []


def test_a_function_level_import_in_the_simulator_is_found(tmp_path):
    repo = _copy(tmp_path)
    path = repo / "mapflow_geo" / "sim" / "api_tiles.py"
    path.write_text(path.read_text() + "\n\ndef _f():\n    from .scenes import search_all\n")
    assert _function_level_imports(repo / "mapflow_geo" / "sim") == [
        "api_tiles.py:" + str(len(path.read_text().splitlines())) + " .scenes"
    ]
