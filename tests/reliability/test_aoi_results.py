"""Results of a processing with several AOIs: fetched per AOI side by side, each true
object once; one AOI's failed download fetched again without the others; the whole
result split per tile when the service does not serve results per AOI."""

from __future__ import annotations

import threading
import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import mapping
from support.areas import grid_gdf
from support.campaign import FAST
from support.record import aoi_asked, max_overlap, result_downloads
from support.truth import check_against_truth, truth_in

import mapflow_geo
from mapflow_geo import RetryPolicy, sim
from mapflow_geo.client import MapflowClient
from mapflow_geo.models import Aoi
from mapflow_geo.run.fetch import tile_for, tiles_of

SIM = dict(aoi_area_limit_km2=25, processing_seconds=0, seed=23)
N_AOIS = 8


def _gdf():
    return grid_gdf(N_AOIS, km=0.8)  # small squares: one processing of 8 AOIs


def _check_truth(server, gdf, res) -> None:
    date = str(res.features["imagery_date"].iloc[0].date())
    truth, _, damage = truth_in(server, gdf.geometry, date)
    check_against_truth(np.asarray(res.features.geometry.values), truth, damage)


@pytest.mark.parametrize("workers", [3, 1])
def test_per_aoi_results_side_by_side_every_true_object_once(tmp_path, workers):
    gdf = _gdf()
    with sim.serve(**SIM, faults={"latency_s": 0.1}) as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_workers=workers, **FAST
        )
        assert res.tiles["processing_key"].nunique() == 1 and len(res.tiles) == N_AOIS
        results = result_downloads(server)
        _check_truth(server, gdf, res)
    assert res.complete
    aois = [aoi_asked(r) for r in results]
    assert None not in aois and len(aois) == len(set(aois)) == N_AOIS  # each AOI once
    assert all(r.status == 200 for r in results)
    assert min(2, workers) <= max_overlap(results) <= workers  # side by side, within bound
    assert set(res.features["tile_id"]) <= set(res.tiles["tile_id"])


def test_failed_aoi_download_fetched_again_without_the_others(tmp_path):
    """One AOI's result answers 503 (past the client's retries) for a while: the other
    AOIs are stored once each, and that one is fetched again until it lands."""
    gdf = _gdf()
    with sim.serve(**dict(SIM, processing_seconds=1.5)) as server:
        client = MapflowClient(
            sim.DEFAULT_TOKEN, base_url=server.url, retry=RetryPolicy(max_retries=0)
        )
        chosen: dict = {}

        def break_one_aoi() -> None:  # once the processing exists: fail one AOI's result
            while not server.processings:
                time.sleep(0.02)
            pid = server.processings[0]["id"]
            aoi = client.processings.aois(pid)[0].id
            chosen["aoi"] = aoi
            server.set_faults(
                {"status_503": 1.0, "paths": [f"/processings/{pid}/result?aoiId={aoi}"]}
            )
            while len([r for r in result_downloads(server) if r.status == 503]) < 2:
                time.sleep(0.02)
            server.clear_faults()

        breaker = threading.Thread(target=break_one_aoi, daemon=True)
        breaker.start()
        res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        breaker.join(5)
        results = result_downloads(server)
        _check_truth(server, gdf, res)
    assert res.complete
    failed = [r for r in results if r.status == 503]
    assert len(failed) >= 2 and {aoi_asked(r) for r in failed} == {chosen["aoi"]}
    ok = [aoi_asked(r) for r in results if r.status == 200]
    assert len(ok) == len(set(ok)) == N_AOIS  # every AOI stored once, none fetched twice


def test_whole_result_split_per_tile_when_per_aoi_is_refused(tmp_path):
    gdf = _gdf()
    with sim.serve(**SIM, result_per_aoi=False) as server:
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        results = result_downloads(server)
        _check_truth(server, gdf, res)
        # each tile's own file holds that tile's true objects, and only them
        date = str(res.features["imagery_date"].iloc[0].date())
        tiles = res.tiles.set_index("tile_id").geometry
        assert sorted(res.files["tile_id"]) == sorted(tiles.index)
        for path, tile_id in zip(res.files["path"], res.files["tile_id"], strict=True):
            stored = gpd.read_parquet(path)
            assert set(stored["tile_id"]) == {tile_id}
            truth, _, damage = truth_in(server, [tiles[tile_id]], date)
            got = np.asarray(stored.geometry.values)
            check_against_truth(got, truth, damage)
            assert len(got) == len(truth)
        _check_truth(server, gdf, mapflow_geo.open_run(tmp_path, progress=False))
    assert res.complete and (res.tiles["status"] == "OK").all()
    whole = [r for r in results if aoi_asked(r) is None]
    assert len(whole) == 1 and whole[0].status == 200  # one download of the whole result
    assert all(r.status == 400 for r in results if aoi_asked(r) is not None)
    # every object with the tile that holds it
    tiles = res.tiles.set_index("tile_id").geometry
    pts = res.features.geometry.representative_point()
    assert all(tiles[t].intersects(p) for t, p in zip(res.features["tile_id"], pts, strict=True))
    assert res.qa["objects"].sum() >= len(res.features) > 0


def _box(x: int, y: int, w: int, h: int):
    return shapely.box(x, y, x + w, y + h)


def _triangle(x: int, y: int, w: int, h: int):
    return shapely.Polygon([(x, y), (x + w, y), (x, y + h)])


_corner, _size = st.integers(-6, 6), st.integers(1, 4)
#: boxes and half boxes (whose bounding boxes hold points they do not)
_shapes = st.one_of(
    st.builds(_box, _corner, _corner, _size, _size),
    st.builds(_triangle, _corner, _corner, _size, _size),
)


def _plan_tiles(geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"tile_id": [f"t{i}" for i in range(len(geoms))], "row": range(len(geoms))},
        geometry=list(geoms),
    )


@settings(max_examples=200, deadline=None)
@example(tiles=[_box(0, 0, 1, 2), _box(0, 0, 1, 1)], objs=[_box(0, 0, 1, 1)])  # nested
@example(tiles=[_box(0, 0, 1, 1), _box(1, 0, 1, 1)], objs=[_box(0, 0, 2, 1)])  # on the edge
@example(tiles=[_box(0, 0, 1, 1), _box(4, 0, 1, 1)], objs=[_box(1, 2, 1, 1)])  # apart
@example(tiles=[_box(0, 0, 1, 1), _box(4, 0, 1, 1)], objs=[_box(2, 2, 1, 1)])  # halfway
@example(tiles=[_triangle(0, 0, 4, 4)], objs=[_box(2, 2, 1, 1)])  # in its bounding box
@example(tiles=[_box(0, 0, 1, 1)], objs=[])
@given(tiles=st.lists(_shapes, min_size=1, max_size=6), objs=st.lists(_shapes, max_size=12))
def test_each_object_goes_with_the_first_tile_holding_its_point_else_the_nearest(tiles, objs):
    """Tiles side by side, overlapping or apart, objects inside, across or outside
    them: each object goes with the first tile holding a point inside it, or with a
    nearest tile when none holds it; and an AOI of the same shape listed by the service
    goes with a tile chosen the same way."""
    frame = _plan_tiles(tiles)
    at = tiles_of(frame, np.asarray(objs, dtype=object))
    assert at.shape == (len(objs),) and np.issubdtype(at.dtype, np.integer)
    for obj, i in zip(objs, at, strict=True):
        aoi = Aoi.from_json({"id": "a1", "status": "OK", "geometry": mapping(obj)})
        listed = tile_for(frame, aoi)
        j = list(frame["tile_id"]).index(listed)
        pt = obj.representative_point()
        holding = [k for k, t in enumerate(tiles) if t.intersects(pt)]
        if holding:
            assert i == j == holding[0]
        else:
            nearest = min(t.distance(pt) for t in tiles)
            assert tiles[i].distance(pt) == tiles[j].distance(pt) == nearest


def test_an_aoi_listed_without_geometry_goes_with_the_only_tile():
    aoi = Aoi.from_json({"id": "a1", "status": "OK", "percentCompleted": 100})
    one = _plan_tiles([_box(0, 0, 1, 1)])
    assert tile_for(one, aoi) == "t0"
    assert tile_for(_plan_tiles([_box(0, 0, 1, 1), _box(1, 0, 1, 1)]), aoi) is None
