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


def _sizes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sizes", ROOT / "tools" / "sizes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sizes"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_sizes_count_code_lines_only():
    sizes = _sizes()
    source = "\n".join(
        [
            '"""Module docstring,',  # 1
            'two lines."""',  # 2
            "",
            "# a comment",  # 4
            "",
            "",
            "def f(x):",  # 7
            '    """Doc."""',  # 8
            "    y = x  # kept",  # 9
            '    s = """a',  # 10
            '    string"""',  # 11
            "    return y",  # 12
        ]
    )
    assert sorted(sizes.code_lines(source)) == [7, 9, 10, 11, 12]


def test_package_sizes_within_limits():
    """Outside the simulator: no class over 500 code lines, no module over 900, at most
    five functions over 60 (tools/sizes.py lists the largest)."""
    sizes = _sizes()
    units = sizes.package_units()
    assert {u.kind for u in units} == {"module", "class", "function"}
    assert not any(u.path.startswith("mapflow_geo/sim/") for u in units)
    assert sizes.violations(units) == []
