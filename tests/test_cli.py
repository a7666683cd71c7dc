"""The command line, run as users run it: a subprocess with the env pointing at the sim."""

import os
import subprocess
import sys

import geopandas as gpd
import pytest

from mapflow_geo import sim
from mapflow_geo.demo import SAMPLE


def _cli(*args, env=None, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "mapflow_geo.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def test_plan_offline(tmp_path):
    out = tmp_path / "plan.gpkg"
    proc = _cli("plan", str(SAMPLE), "--area-limit-km2", "25", "--max-aois", "10", "-o", str(out))
    plan = gpd.read_file(out)
    assert f"{len(plan)} tiles" in proc.stdout
    assert plan["area_km2"].max() <= 25


def test_estimate_and_process_against_sim(tmp_path):
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0) as server:
        env = dict(os.environ, MAPFLOW_API_URL=server.url, MAPFLOW_TOKEN=server.token)
        est = _cli("estimate", str(SAMPLE), "--model", "buildings", env=env)
        assert "total:" in est.stdout
        assert not [
            r for r in server.requests if r.path.endswith("/processings/v2") and r.method == "POST"
        ]
        out = tmp_path / "out.gpkg"
        proc = _cli(
            "process",
            str(SAMPLE),
            "--model",
            "buildings",
            "-o",
            str(out),
            "--run-dir",
            str(tmp_path / "run"),
            env=env,
        )
        assert "MapflowResult" in proc.stdout
        assert len(gpd.read_file(out)) > 0
        assert server.token not in proc.stdout + proc.stderr


def test_budget_error_is_a_clean_message(tmp_path):
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0) as server:
        env = dict(os.environ, MAPFLOW_API_URL=server.url, MAPFLOW_TOKEN=server.token)
        proc = _cli(
            "process",
            str(SAMPLE),
            "--model",
            "buildings",
            "-o",
            str(tmp_path / "o.gpkg"),
            "--max-credits",
            "1",
            env=env,
            check=False,
        )
    assert proc.returncode == 2
    assert "max_credits=1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_token_is_a_clean_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MAPFLOW_TOKEN"}
    proc = _cli("estimate", str(SAMPLE), "--model", "buildings", env=env, check=False)
    assert proc.returncode == 2
    assert "MAPFLOW_TOKEN" in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["sim", "--help"]])
def test_help(args):
    assert "usage" in _cli(*args).stdout.lower()


def test_review_a_run(tmp_path):
    run_dir = tmp_path / "run"
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0) as server:
        env = dict(os.environ, MAPFLOW_API_URL=server.url, MAPFLOW_TOKEN=server.token)
        _cli("process", str(SAMPLE), "--model", "buildings", "-o", str(tmp_path / "o.gpkg"),
             "--run-dir", str(run_dir), env=env)  # fmt: skip
        rated = _cli("review", str(run_dir), "--rate", "5", "--feedback", "fine", env=env)
        assert "rated" in rated.stdout and "5" in rated.stdout
        bad = _cli("review", str(run_dir), "--rate", "7", env=env, check=False)
        assert bad.returncode != 0
        rejected = _cli("review", str(run_dir), "--reject", "missing sheds", env=env)
        assert "rejected" in rejected.stdout


def test_monitor_from_the_command_line(tmp_path):
    """``mapflow-geo monitor DIR --aoi FILE`` creates the template; after new imagery,
    ``mapflow-geo monitor DIR`` fetches the new date; the simulator holds one template."""
    run_dir = tmp_path / "watch"
    with sim.serve(processing_seconds=0) as server:
        env = dict(os.environ, MAPFLOW_API_URL=server.url, MAPFLOW_TOKEN=server.token)
        first = _cli("monitor", str(run_dir), "--aoi", str(SAMPLE), env=env)
        assert "0 imagery date(s)" in first.stdout
        server.advance(31 * 86400)
        assert server.run_templates()
        second = _cli("monitor", str(run_dir), env=env)
        assert "new: 20" in second.stdout and "objects as of" in second.stdout
        assert len(server.client().list_templates()) == 1
