"""SIGKILL a run at random moments, resume with the same run_dir: nothing created twice,
nothing lost."""

import os
import random

import geopandas as gpd
import numpy as np
import pytest
import shapely
from support import record
from support.areas import rect_km
from support.campaign import child_run, kill_each, kill_thresholds, start_child

import mapflow_geo  # noqa: F401
from mapflow_geo import sim
from mapflow_geo.tiling import plan

# The 20-kill campaign with transient faults is tests/reliability/test_soak.py
# (MAPFLOW_FULL=1); this is the same without faults, 100 processings.
KILLS = 4
# A kill between a create's intent and its request leaves a create to re-send after
# ``adopt_grace_s`` of absence from complete listings. This simulator's listings do not
# lag (a committed create is listed at once), so 2 s is safe here; the default 600 s is
# for the real service (tests/reliability/test_lagged_listings.py covers lag).

# options of the child runs
OPTS = dict(poll_interval=0.3, min_poll_interval=0.05, max_workers=4, adopt_grace_s=2.0)
# ~22 x 22 km at a 5 km² limit: about 100 processings
AOI = gpd.GeoDataFrame({"name": ["big"]}, geometry=[rect_km(10.0, 40.0, 22, 22)], crs=4326)


@pytest.mark.reliability
def test_random_sigkills_resume_without_duplicates(tmp_path):
    gdf = AOI
    cmd, run_dir = child_run(tmp_path, gdf, **OPTS)
    rng = random.Random(int(os.environ.get("MAPFLOW_KILL_SEED", "1234")))
    n_planned = plan(gdf, area_limit_km2=5, max_aois=10)["processing"].nunique()
    # kill points spread over creates and downloads, each >= 10 requests before the end
    points = kill_thresholds(rng, n_planned, KILLS)
    options = dict(aoi_area_limit_km2=5, processing_seconds=1.0, seed=21, credits=10**7)
    with sim.serve(**options) as server:
        kills = kill_each(cmd, server, points)
        child = start_child(cmd, server)
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, f"run failed: {err[-2000:]}"
        assert "DONE" in out
        committed = server.processings  # the simulator's own record of what it charged
        charges = server.charges
        creates = record.creates(server)
    result = mapflow_geo.open_run(run_dir)
    n_procs = result.tiles["processing_key"].nunique()
    assert n_procs == n_planned >= 90
    keys = [(p.get("meta") or {}).get("mapflow_geo_key") for p in committed]
    assert None not in keys
    assert len(keys) == len(set(keys)) == n_procs, "a processing was created twice"
    assert len(charges) == n_procs
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
    assert kills == KILLS, f"only {kills} of {KILLS} kills landed"
