"""Change detection against the simulator's ground truth.

One world (same seed), seen by two simulators whose basemaps have different vintages
(2024-06-01 and 2026-06-01), processed at different area limits so the two runs have
different tiles and seams, over ≥ 20 km² (22 km²) of a city district with attached buildings.
``mapflow_geo.changes`` between the two results is compared with the simulator's own
record of what changed (``Server.truth`` at both dates, by stable ``truth_id``): precision
and recall of ``new`` and ``removed`` ≥ 0.99; no ``modified`` for an object that did not
change."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

import mapflow_geo
from mapflow_geo import sim

D1, D2 = "2024-06-01", "2026-06-01"
# about 22 km² of a developing city district (the simulator's world, seed 11)
AREA = shapely.box(37.56, 55.745, 37.64, 55.785)
FAST = dict(progress=False, poll_interval=0.2, min_poll_interval=0.05, max_workers=4)


def _run(tmp_path, vintage: str, limit_km2: float) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame({"name": ["district"]}, geometry=[AREA], crs=4326)
    with sim.serve(seed=11, basemap_vintage=vintage, processing_seconds=0) as server:
        res = gdf.mapflow.process(
            "buildings",
            client=server.client(),
            run_dir=tmp_path / f"run-{vintage}",
            area_limit_km2=limit_km2,
            **FAST,
        )
        truth = server.truth(AREA.bounds, "buildings", date=vintage)
    assert res.complete
    return res, truth


def _truth_frame(truth) -> gpd.GeoDataFrame:
    geoms, props = truth
    frame = gpd.GeoDataFrame(
        {k: v for k, v in props.items() if np.ndim(v) == 1}, geometry=list(geoms), crs=4326
    )
    inside = shapely.intersection(frame.geometry.values, AREA)
    frame = frame.assign(geometry=inside)
    return frame[~frame.geometry.is_empty & (shapely.area(frame.geometry.values) > 0)]


def _overlapping(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> set:
    """truth ids of ``a`` covering more than half their area with objects of ``b``."""
    if a.empty or b.empty:
        return set()
    tree = shapely.STRtree(b.geometry.values)
    ia, ib = tree.query(a.geometry.values, predicate="intersects")
    share = shapely.area(
        shapely.intersection(a.geometry.values[ia], b.geometry.values[ib])
    ) / shapely.area(a.geometry.values[ia])
    return set(a["truth_id"].to_numpy()[ia[share > 0.5]].tolist())


def _matched(detected: gpd.GeoDataFrame, truth: gpd.GeoDataFrame) -> tuple[set, set]:
    """Pairs (detected index, truth_id) whose overlap is most of both."""
    if detected.empty or truth.empty:
        return set(), set()
    tree = shapely.STRtree(truth.geometry.values)
    d_idx, t_idx = tree.query(detected.geometry.values, predicate="intersects")
    inter = shapely.area(
        shapely.intersection(detected.geometry.values[d_idx], truth.geometry.values[t_idx])
    )
    union = shapely.area(
        shapely.union(detected.geometry.values[d_idx], truth.geometry.values[t_idx])
    )
    ok = inter / union >= 0.9
    ids = truth["truth_id"].to_numpy()
    return set(detected.index[d_idx[ok]]), set(ids[t_idx[ok]].tolist())


@pytest.mark.slow
def test_changes_between_two_dates_match_the_truth(tmp_path):
    before, truth1 = _run(tmp_path, D1, 1.0)
    after, truth2 = _run(tmp_path, D2, 2.0)
    assert set(before.tiles["tile_id"]) != set(after.tiles["tile_id"])  # different seams
    t1, t2 = _truth_frame(truth1), _truth_frame(truth2)
    assert len(t2) > 2000 and (t2["group_id"] >= 0).sum() > 500  # attached buildings
    ids1, ids2 = set(t1["truth_id"].tolist()), set(t2["truth_id"].tolist())
    born = t2[t2["truth_id"].isin(ids2 - ids1)]
    gone = t1[t1["truth_id"].isin(ids1 - ids2)]
    # a building demolished and rebuilt on the same footprint between the dates has a new
    # id but no new ground: no footprint comparison can see it; it is "replaced"
    replaced_new = _overlapping(born, gone)
    replaced_old = _overlapping(gone, born)
    true_new = born[~born["truth_id"].isin(replaced_new)]
    true_removed = gone[~gone["truth_id"].isin(replaced_old)]
    assert len(true_new) >= 20 and len(true_removed) >= 5, (len(true_new), len(true_removed))

    ch = mapflow_geo.changes(before, after)
    new = ch[ch["change"] == "new"]
    removed = ch[ch["change"] == "removed"]
    for detected, truth in ((new, true_new), (removed, true_removed)):
        hit_detected, hit_truth = _matched(detected, truth)
        precision = len(hit_detected) / max(1, len(detected))
        recall = len(hit_truth) / max(1, len(truth))
        assert precision >= 0.99 and recall >= 0.99, (precision, recall, len(detected), len(truth))
        print(f"precision {precision:.4f} recall {recall:.4f} ({len(detected)} vs {len(truth)})")

    # no "modified" for an object that did not change: every modified one overlaps a
    # truth object whose version changed between the dates
    kept = t2[t2["truth_id"].isin(ids1 & ids2) | t2["truth_id"].isin(replaced_new)]
    v1 = dict(zip(t1["truth_id"], t1["version"], strict=True))
    changed_ids = {
        i for i, v in zip(kept["truth_id"], kept["version"], strict=True) if v1.get(i) != v
    }
    modified = ch[ch["change"] == "modified"]
    tree = shapely.STRtree(kept.geometry.values)
    for g in modified.geometry.values:
        near = kept["truth_id"].to_numpy()[tree.query(g, predicate="intersects")]
        assert set(near.tolist()) & changed_ids, "modified reported for an unchanged object"
