"""The command line, run as users run it: a subprocess with the env pointing at the sim."""

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pyogrio
import pyproj
import pytest
import shapely
from support import record

import mapflow_geo
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
        assert "credits charged" in proc.stdout
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
    assert "max_credits=1" in _error_line(proc)


def test_missing_token_is_a_clean_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MAPFLOW_TOKEN"}
    proc = _cli("estimate", str(SAMPLE), "--model", "buildings", env=env, check=False)
    assert "MAPFLOW_TOKEN" in _one_error_line(proc)


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
        assert len(server.client().templates.list()) == 1


# ------------------------------------- formats, streams, errors and exit codes
AREA = shapely.box(37.60, 55.75, 37.62, 55.76)  # ≈ 1.4 km² of a city district (seed 11)
LIMIT = ("--area-limit-km2", "0.5")
FAST = (*LIMIT, "--poll-interval", "0.2")
AREA_KM2 = abs(pyproj.Geod(ellps="WGS84").geometry_area_perimeter(AREA)[0]) / 1e6


@pytest.fixture
def area_file(tmp_path):
    path = tmp_path / "area.gpkg"
    gpd.GeoDataFrame({"name": ["district"]}, geometry=[AREA], crs=4326).to_file(path)
    return path


def _env(server, **extra):
    return dict(os.environ, MAPFLOW_API_URL=server.url, MAPFLOW_TOKEN=server.token, **extra)


def _one_error_line(proc) -> str:
    """The stderr of a refused command: exactly one line, ``mapflow-geo…: error: …``."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and ": error: " in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def _error_line(proc) -> str:
    """The error of a command that failed after logging: the last line of stderr, the
    only one saying ``error:``, no traceback, exit code 2."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert [ln for ln in lines if ": error: " in ln] == lines[-1:], proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[-1]


def test_version():
    proc = _cli("--version")
    assert proc.stdout.strip() == f"mapflow-geo {mapflow_geo.__version__}"


def test_help_names_units_defaults_and_environment():
    top = _cli("--help").stdout
    assert "``" not in top and ":class:" not in top
    for word in ("MAPFLOW_TOKEN", "MAPFLOW_API_URL", "exit codes", "130"):
        assert word in top
    text = " ".join(_cli("process", "--help").stdout.split())
    for word in ("km²", "seconds", "credits", "default", ".gpkg", ".fgb", ".parquet", ".geojson"):
        assert word in text, word
    assert "MAPFLOW_API_URL" in text and "MAPFLOW_TOKEN" in text
    for opt in ("--max-credits", "--run-dir", "--progress", "--json", "--quiet", "--debug"):
        assert opt in text
    for cmd in ("plan", "estimate", "review", "monitor"):
        sub = _cli(cmd, "--help").stdout
        assert "``" not in sub and "MAPFLOW_TOKEN" in sub and "exit codes" in sub, cmd
    simulator = " ".join(_cli("sim", "--help").stdout.split())
    assert "km²" in simulator and "(default: 25.0)" in simulator and "0–1" in simulator


def test_every_format_written_and_read_back_with_the_true_count(tmp_path, area_file):
    """One run written to every format: each file holds every true building of the area
    (the simulator's world on the imagery's date) once; the JSON summary says so; a
    closing line per output on stderr; stdout holds the JSON document only."""
    outs = ["o.gpkg", "o.geojson", "o.json", "o.fgb", "o.parquet", "objects/"]
    with sim.serve(seed=11, processing_seconds=0, credits=10_000) as server:
        est = json.loads(
            _cli(
                "estimate", str(area_file), "-m", "buildings", *LIMIT, "--json", env=_env(server)
            ).stdout  # fmt: skip
        )
        assert record.creates(server) == []
        args = [a for o in outs for a in ("-o", f"{tmp_path}/{o}")]
        proc = _cli("process", str(area_file), "-m", "buildings", *FAST, "--json",
                    "--run-dir", str(tmp_path / "run"), *args, env=_env(server))  # fmt: skip
        charged = 10_000 - server.client().account.status().remaining_credits
        first = gpd.read_file(tmp_path / "o.gpkg")
        date = server.imagery_date(str(first["processing_id"].iloc[0]))
        geoms, _ = server.truth(AREA.bounds, "buildings", date=date)
    clipped = shapely.intersection(np.asarray(geoms, dtype=object), AREA)
    n_true = int((shapely.area(clipped) > 0).sum())
    assert n_true > 100
    doc = json.loads(proc.stdout)
    assert doc["complete"] and doc["exit_code"] == 0
    assert doc["credits"]["charged"] == charged == est["total_credits"] > 0
    assert len(est["rows"]) == 1 and est["rows"][0]["row"] == 0
    assert est["rows"][0]["credits"] == pytest.approx(charged)
    assert doc["tiles"]["ok"] == doc["tiles"]["total"] > 1
    assert [o["format"] for o in doc["outputs"]] == [
        "gpkg", "geojson", "geojson", "fgb", "parquet", "dataset"
    ]  # fmt: skip
    drivers = {"gpkg": "GPKG", "geojson": "GeoJSON", "fgb": "FlatGeobuf"}
    for out in doc["outputs"]:
        path = out["path"]
        if out["format"] in drivers:
            assert pyogrio.read_info(path)["driver"] == drivers[out["format"]], path
            read = gpd.read_file
        else:
            assert Path(path).is_dir() == (out["format"] == "dataset"), path
            files = sorted(Path(path).glob("*.parquet")) if Path(path).is_dir() else [path]
            assert all(b"geo" in pq.read_schema(f).metadata for f in files), path
            read = gpd.read_parquet
        assert len(read(path)) == out["objects"] == n_true, path
        assert f"wrote {n_true:,} objects to {path}" in proc.stderr
    assert server.token not in proc.stdout + proc.stderr


def test_rerun_is_quiet_with_q_and_speaks_by_default(tmp_path, area_file):
    """The same command again reuses the run (no new create); ``-q`` prints nothing on
    stderr, the default prints the engine's INFO lines and what was written."""
    with sim.serve(seed=11, processing_seconds=0) as server:
        env = _env(server)
        base = ("process", str(area_file), "-m", "buildings", *FAST, "--run-dir",
                str(tmp_path / "run"), "-o", str(tmp_path / "o.gpkg"))  # fmt: skip
        _cli(*base, "-q", env=env)
        n = len(record.creates(server))
        quiet = _cli(*base, "-q", env=env)
        loud = _cli(*base, env=env)
        assert len(record.creates(server)) == n
    assert quiet.stderr == ""
    assert "mapflow-geo: " in loud.stderr and "wrote " in loud.stderr


def test_rerun_says_it_reuses_and_fresh_starts_anew(tmp_path, area_file):
    """In the default cache folder a second call reuses the stored run and says where;
    ``--fresh`` creates (and pays for) new processings and keeps the old run."""
    with sim.serve(seed=11, processing_seconds=0) as server:
        env = _env(server, XDG_CACHE_HOME=str(tmp_path / "cache"))
        base = ("process", str(area_file), "-m", "buildings", *FAST, "-o")
        _cli(*base, str(tmp_path / "a.gpkg"), "-q", env=env)
        n = len(record.creates(server))
        again = _cli(*base, str(tmp_path / "b.gpkg"), env=env)
        assert len(record.creates(server)) == n
        fresh = _cli(*base, str(tmp_path / "c.gpkg"), "--fresh", "-q", env=env)
        assert len(record.creates(server)) == 2 * n
    runs = sorted(p.name for p in (tmp_path / "cache" / "mapflow-geo" / "runs").iterdir())
    assert len(runs) == 2
    assert "reusing" in again.stderr and runs[0] in again.stderr
    assert fresh.returncode == 0


def test_progress_goes_to_stderr(tmp_path, area_file):
    with sim.serve(seed=11, processing_seconds=0) as server:
        base = ("process", str(area_file), "-m", "buildings", *FAST, "--json", "-o")
        bar = _cli(*base, str(tmp_path / "a.gpkg"), "--run-dir", str(tmp_path / "a"),
                   "--progress", env=_env(server))  # fmt: skip
        none = _cli(*base, str(tmp_path / "b.gpkg"), "--run-dir", str(tmp_path / "b"),
                    env=_env(server))  # fmt: skip
    assert json.loads(bar.stdout)["complete"]
    assert "100%" in bar.stderr and "100%" not in none.stderr


def test_failed_tiles_exit_3_with_the_partial_result_written(tmp_path, area_file):
    with sim.serve(seed=11, processing_seconds=0, fail_fraction=0.5) as server:
        proc = _cli("process", str(area_file), "-m", "buildings", *FAST, "--json",
                    "--run-dir", str(tmp_path / "run"), "-o", str(tmp_path / "o.gpkg"),
                    env=_env(server), check=False)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 3 and doc["tiles"]["failed"] > 0 and not doc["complete"]
    assert len(gpd.read_file(tmp_path / "o.gpkg")) == doc["objects"] > 0
    assert "warning: " in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "output, extra, why",
    [
        ("out.xyz", (), "(extension '.xyz')"),
        ("out", (), "(no extension)"),
        ("no-such-folder/out.gpkg", (), "no-such-folder) does not exist"),
        ("out.gpkg", ("--format", "shp"), "--format: invalid choice: 'shp'"),
    ],
    ids=["unknown-extension", "no-extension", "no-folder", "unknown-format"],
)
def test_bad_output_refused_before_any_request(tmp_path, area_file, output, extra, why):
    with sim.serve(seed=11, processing_seconds=0) as server:
        proc = _cli("process", str(area_file), "-m", "buildings", "-o", str(tmp_path / output),
                    *extra, env=_env(server), check=False)  # fmt: skip
        assert server.requests == [] and record.creates(server) == []
    line = _one_error_line(proc)
    assert why in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["area.gpkg"]


def test_unknown_extension_names_the_formats(tmp_path, area_file):
    proc = _cli("plan", str(area_file), "--area-limit-km2", "1", "--max-aois", "10",
                "-o", str(tmp_path / "plan.shp"), check=False)  # fmt: skip
    line = _one_error_line(proc)
    assert "'.shp'" in line and ".gpkg" in line and ".fgb" in line and "--format" in line


@pytest.mark.parametrize("kind", ["missing", "unreadable", "empty"])
def test_bad_aoi_file_is_one_line(tmp_path, kind):
    path = tmp_path / "areas.gpkg"
    if kind == "unreadable":
        path.write_text("not a geopackage")
    elif kind == "empty":
        gpd.GeoDataFrame(geometry=[], crs=4326).to_file(path)
    proc = _cli("plan", str(path), "--area-limit-km2", "1", "--max-aois", "10", check=False)
    line = _one_error_line(proc)
    assert str(path) in line


def test_debug_shows_the_traceback(tmp_path):
    proc = _cli("plan", str(tmp_path / "none.gpkg"), "--area-limit-km2", "1", "--max-aois",
                "10", "--debug", check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("mapflow-geo: error: ")


@pytest.mark.parametrize(
    "bad", [("--max-credits", "-1"), ("--area-limit-km2", "abc"), ("--poll-interval", "0")]
)
def test_bad_option_values_exit_2(tmp_path, area_file, bad):
    proc = _cli("process", str(area_file), "-m", "buildings", "-o", str(tmp_path / "o.gpkg"),
                *bad, check=False)  # fmt: skip
    assert proc.returncode == 2 and bad[0] in proc.stderr and "Traceback" not in proc.stderr


def test_refused_token_is_one_line_naming_the_variable(tmp_path, area_file):
    key = "s3cr3t-api-key-0123456789"
    token = base64.b64encode(f"someone@example.com:{key}".encode()).decode()
    with sim.serve(seed=11, processing_seconds=0) as server:
        proc = _cli("process", str(area_file), "-m", "buildings", "-o", str(tmp_path / "o.gpkg"),
                    env=_env(server) | {"MAPFLOW_TOKEN": token}, check=False)  # fmt: skip
        assert record.creates(server) == []
    line = _error_line(proc)
    assert "MAPFLOW_TOKEN" in line and "401" in line
    for secret in (token, key, f"someone@example.com:{key}"):
        assert secret not in proc.stdout + proc.stderr


def test_json_plan(tmp_path, area_file):
    plan_file = tmp_path / "plan.fgb"
    plan = json.loads(
        _cli(
            "plan",
            str(area_file),
            "--area-limit-km2",
            "0.5",
            "--max-aois",
            "2",
            "--json",
            "-o",
            str(plan_file),
        ).stdout  # fmt: skip
    )
    tiles = gpd.read_file(plan_file)
    assert plan["tiles"] == len(tiles) == plan["outputs"][0]["objects"] > 1
    assert plan["processings"] == tiles["processing"].nunique()
    assert plan["area_km2"] == pytest.approx(AREA_KM2, rel=1e-2)
    assert (tiles["area_km2"] <= 0.5 + 1e-9).all()


def _as_in_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: SIGINT handled by default and not blocked (a
    test worker may have inherited it ignored or masked from the libraries it ran)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupt_exits_130_and_the_same_command_resumes(tmp_path, area_file):
    """Ctrl-C while the processings run: exit 130 and one line; the same command again
    finishes the run without creating anything new."""
    args = [sys.executable, "-m", "mapflow_geo.cli", "process", str(area_file), "-m",
            "buildings", *FAST, "--run-dir", str(tmp_path / "run"), "-o",
            str(tmp_path / "o.gpkg")]  # fmt: skip
    with sim.serve(seed=11, processing_seconds=600) as server:
        env = _env(server, PYTHONFAULTHANDLER="1")  # SIGABRT: every thread's stack
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=_as_in_a_terminal)  # fmt: skip
        deadline = time.monotonic() + 120
        while len(record.creates(server)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # stuck: show where, with what it was sent
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"no exit after SIGINT; creates {len(record.creates(server))}:\n{err}")
        created = len(record.creates(server))
        server.advance(1200)
        again = _cli(*args[3:], "--json", env=env)
        assert len(record.creates(server)) == created == 3
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        "mapflow-geo: interrupted; run the same command again to resume"
    )
    assert "Traceback" not in err
    assert json.loads(again.stdout)["complete"]
