"""The run's progress bar on stderr: on by default, through its phases, with counts and
credits; nothing at all with ``progress=False``. Against the simulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import geopandas as gpd
import numpy as np
from shapely.geometry import box
from support.paths import ROOT

import mapflow_geo  # noqa: F401  (registers gdf.mapflow)
from mapflow_geo import sim

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05}


def _gdf():
    lat = 55.7
    dlon = 3.0 / (111.32 * np.cos(np.radians(lat)))
    return gpd.GeoDataFrame(geometry=[box(37.5, lat, 37.5 + dlon, lat + 3 / 111.2)], crs=4326)


def _frames(err: str) -> list[str]:
    """The bar's successive states (tqdm redraws with carriage returns)."""
    return [f.strip() for f in re.split(r"[\r\n]+", err) if f.strip()]


def test_a_run_shows_one_bar_through_its_phases_on_stderr(tmp_path, capfd):
    gdf = _gdf()
    with sim.serve(aoi_area_limit_km2=2, processing_seconds=0.5, seed=2) as server:
        # every answer a little late: downloads are seen in flight
        server.set_faults(latency_s=0.15)
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        charged = sum(c["cost"] for c in server.charges)
        out, err = capfd.readouterr()
        objects = len(res.features)
        stitch_out, stitch_err = capfd.readouterr()
    assert out == "" and stitch_out == ""
    frames = _frames(err)
    phases = [m.group(1) for f in frames if (m := re.match(r"mapflow (\w+)", f))]
    assert phases[0] == "create" and phases[-1] == "done"
    assert {"process", "download"} <= set(phases)
    n = len(res.processings)
    last = frames[-1]
    assert last.startswith("mapflow done") and f"{n}/{n}" in last
    assert f"created {n}/{n}" in last and "failed 0" in last
    assert f"objects {res.n_pieces:,}" in last
    assert f"credits {charged:,}" in last and charged > 0
    # the stitch phase comes when the objects are first loaded
    stitched = _frames(stitch_err)
    assert stitched[-1].startswith("mapflow stitch") and f"objects {objects:,}" in stitched[-1]


def test_progress_false_writes_nothing(tmp_path, capfd):
    gdf = _gdf()
    with sim.serve(aoi_area_limit_km2=2, processing_seconds=0, seed=2) as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, progress=False, **FAST
        )
        assert len(res.features) > 0
        again = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, progress=False, **FAST
        )
        assert len(again.features) == len(res.features)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_the_demo_shows_progress_and_says_what_it_wrote(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "mapflow_geo.demo", "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mapflow done" in proc.stderr and "mapflow stitch" in proc.stderr
    gpkg = tmp_path / "out" / "features.gpkg"
    n = len(gpd.read_file(gpkg))
    lines = proc.stdout.strip().splitlines()
    assert f"wrote {n:,} objects to {gpkg}" in proc.stdout
    assert lines[-1].startswith("wrote ") and (tmp_path / "out" / "result.html").exists()
