"""CI replays property tests: ``.ci/run`` and ``make test`` select the derandomised
Hypothesis profile of ``tests/conftest.py``; ``make test-random`` is the opt-in run that
explores new examples."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT

CONFTEST = ROOT / "tests" / "conftest.py"

# the suite's own profiles, loaded as pytest loads them, then one property run
PROBE = """
import runpy, sys
runpy.run_path(sys.argv[1])
from hypothesis import given, strategies as st
seen = []
@given(st.floats(allow_nan=False), st.text())
def probe(x, s):
    seen.append((x, s))
probe()
print(repr(seen))
"""

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def _examples(profile: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"}
    env["HYPOTHESIS_PROFILE"] = profile
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(CONFTEST)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _pytest_line(target: str) -> str:
    """The pytest command ``make <target>`` runs (a dry run: nothing is executed)."""
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"}
    out = subprocess.run(
        ["make", "-n", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    ).stdout
    lines = [ln for ln in out.splitlines() if "pytest" in ln]
    assert len(lines) == 1, out
    return lines[0]


def _profile(line: str) -> str | None:
    m = re.search(r"\bHYPOTHESIS_PROFILE=(\w+)", line)
    return m.group(1) if m else None


@needs_make
def test_ci_run_selects_the_fixed_profile(tmp_path):
    fake = tmp_path / "bin" / "make"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "profile=${HYPOTHESIS_PROFILE:-unset} $*"\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"}
    env["PATH"] = f"{fake.parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "profile=ci test"


@needs_make
@pytest.mark.parametrize("target", ["test", "test-full"])
def test_make_test_replays_the_same_examples(tmp_path, target):
    profile = _profile(_pytest_line(target))
    assert profile is not None, f"make {target} selects no Hypothesis profile"
    first, second = _examples(profile, tmp_path), _examples(profile, tmp_path)
    assert first == second, f"profile {profile!r} draws new examples on each run"


@needs_make
def test_make_test_random_explores_the_property_tests(tmp_path):
    line = _pytest_line("test-random")
    profile = _profile(line)
    assert profile is not None and profile != _profile(_pytest_line("test"))
    assert _examples(profile, tmp_path) != _examples(profile, tmp_path)
    for name in ("tests/geometry/test_tiling_props.py", "tests/results/test_stitch_props.py"):
        assert name in line.split()
