"""Stitching against the simulator's ground truth.

A run over ≥ 20 km² of a city district of the simulator's world (terraced rows and
perimeter blocks with shared walls, industrial footprints bigger than a tile, long roads)
at a 1 km² limit, compared with ``Server.truth``, the world the results are drawn from:
every true building inside the area comes back exactly once and whole (IoU ≥ 0.98 with
the truth object clipped to the area), nothing else comes back; every road cut into ≥ 4
pieces by the tiles comes back as one object of the true length."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from mapflow_geo import sim

AREA = shapely.box(37.56, 55.745, 37.64, 55.785)  # ≈ 22 km² of a city district (seed 11)
FAST = dict(progress=False, poll_interval=0.2, min_poll_interval=0.05, max_workers=4)


def _process(tmp_path, model: str):
    gdf = gpd.GeoDataFrame({"name": ["district"]}, geometry=[AREA], crs=4326)
    with sim.serve(seed=11, processing_seconds=0) as server:
        res = gdf.mapflow.process(
            model, client=server.client(), run_dir=tmp_path / model, area_limit_km2=1.0, **FAST
        )
        # the date of the world the results show (the basemap's vintage)
        date = server.imagery_date(str(res.processings["processing_id"].iloc[0]))
        geoms, props = server.truth(AREA.bounds, model, date=date)
    assert res.complete and res.tiles["processing_key"].nunique() >= 20
    clipped = shapely.intersection(np.asarray(geoms, dtype=object), AREA)
    keep = ~shapely.is_empty(clipped)
    return res, clipped[keep], {k: np.asarray(v)[keep] for k, v in props.items()}


def _pairs(a: np.ndarray, b: np.ndarray, predicate: str = "intersects"):
    tree = shapely.STRtree(b)
    return tree.query(a, predicate=predicate)


@pytest.mark.slow
def test_every_true_building_comes_back_once_and_whole(tmp_path):
    res, truth, props = _process(tmp_path, "buildings")
    truth_poly = shapely.area(truth) > 0
    truth, ids = truth[truth_poly], props["truth_id"][truth_poly]
    assert len(truth) > 3000 and (props["group_id"][truth_poly] >= 0).sum() > 1000
    got = res.features.geometry.values
    i_got, i_true = _pairs(got, truth)
    inter = shapely.area(shapely.intersection(got[i_got], truth[i_true]))
    union = shapely.area(shapely.union(got[i_got], truth[i_true]))
    good = inter / union >= 0.98
    # every true building is matched by exactly one object, whole
    per_truth = np.bincount(i_true[good], minlength=len(truth))
    missing = np.flatnonzero(per_truth == 0)
    assert len(missing) == 0, f"{len(missing)} of {len(truth)} true buildings not back whole"
    assert per_truth.max() == 1
    # and nothing else came back: every object is one true building
    per_got = np.bincount(i_got[good], minlength=len(got))
    assert (per_got == 1).all(), f"{(per_got != 1).sum()} objects match no true building"
    assert len(got) == len(truth) == len(set(ids.tolist()))
    # attached neighbours stayed apart: each attached group has as many objects as houses
    cut = res.features["tile_id"].astype(str).str.contains(r"\+")
    assert cut.sum() > 50  # many were cut by seams and stitched


@pytest.mark.slow
def test_roads_cut_into_many_pieces_come_back_whole(tmp_path):
    res, truth, props = _process(tmp_path, "roads")
    whole = shapely.get_type_id(truth) == 1  # one LineString inside the area
    truth = truth[whole]
    tiles = res.tiles.geometry.values
    crossings = np.array([len(_pairs(np.array([t]), tiles)[0]) for t in truth])
    long_roads = truth[crossings >= 4]
    assert len(long_roads) >= 2, "the area should hold roads cut into ≥ 4 pieces"
    got = res.features.geometry.values
    for road in long_roads:
        near = got[shapely.intersects(got, road.buffer(1e-7))]
        same = [g for g in near if shapely.hausdorff_distance(g, road) < 2e-6]
        assert len(same) == 1, f"a road across ≥ 4 tiles came back as {len(same)} objects"
        assert abs(shapely.length(same[0]) - shapely.length(road)) < 1e-6
