"""SIGKILL a run at random moments, resume with the same run_dir: nothing created twice,
nothing lost (issue: crash-safe runs)."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import box

import mapflow_geo  # noqa: F401
from mapflow_geo import sim

# The 20-kill campaign with transient faults is tests/reliability/test_soak.py
# (MAPFLOW_FULL=1); this is the runs issue's acceptance scenario, 100 processings.
KILLS = 4

CHILD = textwrap.dedent(
    """
    import sys, geopandas as gpd, mapflow_geo
    gdf = gpd.read_file(sys.argv[1])
    gdf.mapflow.process("buildings", run_dir=sys.argv[2], progress=False,
                        poll_interval=0.3, min_poll_interval=0.05, max_workers=4)
    print("DONE", flush=True)
    """
)


def _aoi(path):
    # ~22 x 22 km at a 5 km² limit: about 100 processings
    lat, lon = 40.0, 10.0
    dlat, dlon = 22 / 111.2, 22 / (111.32 * np.cos(np.radians(lat)))
    gdf = gpd.GeoDataFrame(
        {"name": ["big"]}, geometry=[box(lon, lat, lon + dlon, lat + dlat)], crs="EPSG:4326"
    )
    gdf.to_file(path, driver="GeoJSON")
    return gdf


@pytest.mark.reliability
def test_random_sigkills_resume_without_duplicates(tmp_path):
    gdf = _aoi(tmp_path / "aoi.geojson")
    run_dir = tmp_path / "run"
    rng = random.Random(int(os.environ.get("MAPFLOW_KILL_SEED", "1234")))
    options = dict(aoi_area_limit_km2=5, processing_seconds=1.0, seed=21, credits=10**7)
    with sim.serve(**options) as server:
        env = dict(os.environ, MAPFLOW_API_URL=server.url, MAPFLOW_TOKEN=server.token)
        cmd = [sys.executable, "-c", CHILD, str(tmp_path / "aoi.geojson"), str(run_dir)]
        kills = 0
        for _attempt in range(KILLS + 3):
            child = subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            if kills < KILLS:
                time.sleep(rng.uniform(0.3, 2.5))
                if child.poll() is None:
                    os.kill(child.pid, signal.SIGKILL)
                    child.wait()
                    kills += 1
                    continue
            out, err = child.communicate(timeout=600)
            if child.returncode == 0:
                assert "DONE" in out
                break
            raise AssertionError(f"run failed: {err[-2000:]}")
        else:
            raise AssertionError("run never finished")
        listed = server.client().list_processings()
        creates = [
            r for r in server.requests if r.method == "POST" and r.path.endswith("/processings/v2")
        ]
    result = mapflow_geo.open_run(run_dir)
    n_procs = result.tiles["processing_key"].nunique()
    assert n_procs >= 90
    keys = [p.meta.get("mapflow_geo_key") for p in listed]
    assert len(keys) == len(set(keys)) == n_procs, "a processing was created twice"
    assert sum(r.status < 300 for r in creates) == n_procs
    assert result.complete
    assert not list(run_dir.rglob(".*.tmp"))
    # same objects as an uninterrupted run of the same world
    with sim.serve(**options) as server:
        ref = gdf.mapflow.process(
            "buildings",
            client=server.client(),
            run_dir=tmp_path / "ref",
            progress=False,
            poll_interval=0.3,
            min_poll_interval=0.05,
        )
    assert len(result.features) == len(ref.features)
    np.testing.assert_allclose(
        shapely.area(result.features.geometry.values).sum(),
        shapely.area(ref.features.geometry.values).sum(),
        rtol=1e-9,
    )
    assert kills >= max(1, KILLS // 2), f"only {kills} kills landed"
