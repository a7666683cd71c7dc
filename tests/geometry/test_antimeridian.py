"""Areas across the antimeridian, planned, estimated and run against the simulator.

An area of Fiji's Taveuni written across ±180 (longitudes 179.975 to 180.025, as a GIS
in 0–360° writes it, and the same area as two parts in ±180°) is split at the
antimeridian into pieces the service takes (every coordinate within ±180), estimated at
what the service then charges, and run: the objects that come back are the simulator's
true buildings on both sides, each once and whole."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from mapflow_geo import sim
from mapflow_geo.run.prepare import estimate

WEST = shapely.box(179.975, -16.80, 180.0, -16.77)
EAST = shapely.box(-180.0, -16.80, -179.975, -16.77)
ACROSS = shapely.box(179.975, -16.80, 180.025, -16.77)  # ≈ 17 km², 0–360° notation
SIM = dict(aoi_area_limit_km2=5, processing_seconds=0, seed=23)
FAST = dict(progress=False, poll_interval=0.2, min_poll_interval=0.05, max_workers=4)


def _frame(*geoms):
    return gpd.GeoDataFrame({"name": ["taveuni"]}, geometry=list(geoms), crs=4326)


@pytest.mark.parametrize(
    "area",
    [ACROSS, shapely.MultiPolygon([WEST, EAST])],
    ids=["0-360", "two-parts"],
)
def test_run_across_the_antimeridian_matches_the_world(tmp_path, area):
    gdf = _frame(area)
    with sim.serve(**SIM) as server:
        client = server.client()
        est = estimate(gdf, "buildings", client=client)
        res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path / "run", **FAST)
        charged = sum(c["cost"] for c in server.charges)
        pid = str(res.processings["processing_id"].iloc[0])
        date = server.imagery_date(pid)
        truth = [
            shapely.intersection(np.asarray(server.truth(half.bounds, date=date)[0]), half)
            for half in (WEST, EAST)
        ]
    assert res.complete
    # split as the service needs: every tile on one side, both sides planned
    xs = shapely.get_coordinates(res.tiles.geometry.values)[:, 0]
    assert np.abs(xs).max() <= 180.0
    assert xs.min() < -179.97 and xs.max() > 179.97
    bounds = res.tiles.bounds
    assert ((bounds["maxx"] - bounds["minx"]) < 1.0).all(), "a tile spans the antimeridian"
    # estimated at what the service charged
    assert est.attrs["total_credits"] == charged > 0
    assert est.attrs["processings"] == len(server.processings)
    # every true building on both sides comes back once and whole
    truth = np.concatenate(truth)
    truth = truth[(~shapely.is_empty(truth)) & (shapely.area(truth) > 0)]
    got = res.features.geometry.values
    assert len(truth) > 500
    assert len(got) == len(truth)
    i_got, i_true = shapely.STRtree(truth).query(got, predicate="intersects")
    inter = shapely.area(shapely.intersection(got[i_got], truth[i_true]))
    union = shapely.area(shapely.union(got[i_got], truth[i_true]))
    good = inter / union >= 0.98
    assert np.bincount(i_true[good], minlength=len(truth)).tolist() == [1] * len(truth)
    assert np.bincount(i_got[good], minlength=len(got)).tolist() == [1] * len(got)
