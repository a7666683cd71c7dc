"""Result parsing and seam stitching on geometry cut the way tiling cuts it."""

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, box
from support.cutting import cut, truth_frame
from support.sample import failed_tiles_run

from mapflow_geo.results import read_geojson, stitch


def _tiles():
    return gpd.GeoDataFrame(
        {"row": [0, 0, 1], "tile_id": ["a", "b", "c"]},
        geometry=[box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01), box(1, 1, 1.01, 1.01)],
        crs="EPSG:4326",
    )


def test_read_geojson_vectorised_and_empty():
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": 1, "class_id": "101", "area": 50},
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
            },
            {
                "type": "Feature",
                "properties": {"id": 2, "object_type": "roads"},
                "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
            },
        ],
    }
    gdf = read_geojson(json.dumps(fc).encode())
    assert len(gdf) == 2
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf.geometry.geom_type) == ["Polygon", "LineString"]
    assert read_geojson({"type": "FeatureCollection", "features": []}).empty


def test_building_across_seam_becomes_one():
    tiles = _tiles()
    building = box(0.009, 0.004, 0.0115, 0.006)
    inside = box(0.002, 0.002, 0.003, 0.003)
    pieces = cut(truth_frame([building, inside], "buildings"), tiles)
    assert len(pieces) == 3
    out = stitch(pieces, tiles)
    assert len(out) == 2
    merged = out[out["tile_id"] == "a+b"].geometry.iloc[0]
    assert merged.geom_type == "Polygon"
    assert abs(merged.area - building.area) < 1e-15
    assert abs(out["area"].sum() - (building.area + inside.area)) < 1e-15


def test_different_rows_or_types_are_not_joined():
    tiles = _tiles()
    building = box(0.009, 0.004, 0.0115, 0.006)
    a = cut(truth_frame([building], "buildings"), tiles.iloc[:1])
    b = cut(truth_frame([building], "forest"), tiles.iloc[1:2])
    out = stitch(gpd.GeoDataFrame(gpd.pd.concat([a, b], ignore_index=True), crs="EPSG:4326"), tiles)
    assert len(out) == 2


def test_road_across_seam_is_line_merged():
    tiles = _tiles()
    road = LineString([(0.005, 0.005), (0.015, 0.006)])
    pieces = cut(truth_frame([road], "roads"), tiles)
    assert len(pieces) == 2
    out = stitch(pieces, tiles)
    assert len(out) == 1
    assert out.geometry.iloc[0].geom_type == "LineString"
    assert abs(out.geometry.iloc[0].length - road.length) < 1e-12


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 0.018),
            st.floats(0.0, 0.008),
            st.floats(1e-5, 2e-3),
            st.floats(1e-5, 2e-3),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_stitch_recovers_every_object(rects):
    """Non-touching rectangles cut by a seam come back one each, with their own area."""
    tiles = _tiles()
    boxes = [box(x, y, min(x + w, 0.02), min(y + h, 0.01)) for x, y, w, h in rects]
    # keep a set of pairwise separated boxes (distinct objects never touch in the world)
    chosen = []
    for b in boxes:
        if b.area > 0 and all(b.distance(c) > 1e-6 for c in chosen):
            chosen.append(b)
    pieces = cut(truth_frame(chosen, "buildings"), tiles)
    out = stitch(pieces, tiles)
    assert len(out) == len(chosen)
    got = np.sort(shapely.area(out.geometry.values))
    want = np.sort([b.area for b in chosen])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-18)


@pytest.mark.parametrize(
    "model, blocks",
    [
        ("buildings", [{"name": "Classification", "enabled": True}]),
        ("forest with heights", None),
        ("roads", None),
        ("fields", None),
    ],
)
def test_fast_parse_path_equals_gdal_path(model, blocks, monkeypatch):
    """The Arrow-JSON fast path reads a uniform result exactly as GDAL does."""
    import mapflow_geo.results.io as results
    from mapflow_geo import sim

    with sim.serve(processing_seconds=0, aoi_area_limit_km2=100) as server:
        client = server.client()
        body = {
            "wdName": client.account.find_model(model).name,
            "geometry": shapely.geometry.mapping(box(30, 50, 30.02, 50.015)),
        }
        if blocks:
            body["blocks"] = blocks
        data = client.processings.result_bytes(client.processings.create(**body).id)
    assert results._uniform_parts(data) is not None, "a uniform result takes the fast path"
    fast = results.read_geojson(data)
    # the frame built straight from the fast path is the one its Arrow table gives
    via_table = results.table_to_geodataframe(results.read_geojson_table(data))
    assert_geodataframe_equal(fast, via_table, check_less_precise=False)
    monkeypatch.setattr(results, "_uniform_parts", lambda d: None)
    slow = results.read_geojson(data)
    assert len(fast) > 0
    assert list(fast.columns) == list(slow.columns)
    assert shapely.equals_exact(fast.geometry.values, slow.geometry.values, 0).all()
    for col in fast.columns.drop("geometry"):
        assert fast[col].tolist() == slow[col].tolist(), col


def test_mixed_or_nested_results_fall_back_to_gdal():
    import mapflow_geo.results.io as results

    poly = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    line = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    mixed = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"a": 1}, "geometry": poly},
            {"type": "Feature", "properties": {"a": 2}, "geometry": line},
        ],
    }
    nested = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"a": {"b": 1}}, "geometry": poly},
        ],
    }
    for fc in (mixed, nested):
        data = json.dumps(fc).encode()
        assert results._uniform_parts(data) is None
        assert len(read_geojson(data)) == len(fc["features"])


# ------------------------------------------------------- the result's tables and types
@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    """A run with failed tiles over three input rows, with the simulator's own record
    of what it charged and of each processing's imagery date (read while it runs)."""
    with failed_tiles_run(tmp_path_factory.mktemp("run")) as (gdf, res, s):
        charged = sum(c["cost"] for c in s.charges)
        dates = {p: s.imagery_date(p) for p in res.processing_ids()}
    return gdf, res, charged, dates


def test_costs_are_tidy_and_sum_to_the_charge(sim_run):
    gdf, res, charged, _ = sim_run
    assert charged > 0
    costs = res.costs
    assert list(costs.index) == list(gdf.index) and costs.index.name == "row"
    assert costs["charged_credits"].sum() == pytest.approx(charged)
    assert res.totals["charged_credits"] == charged
    assert res.totals["rows"] == len(gdf)
    assert res.totals["tiles_failed"] == int((res.tiles["status"] != "OK").sum()) > 0
    assert res.totals["objects"] == len(res.features)
    credit_columns = [c for c in costs.columns if "credit" in c]
    assert credit_columns == ["estimated_credits", "charged_credits", "charged_earlier_credits"]
    assert costs["charged_earlier_credits"].sum() == res.totals["charged_earlier_credits"] == 0


def test_summary_has_row_once(sim_run):
    gdf, res, _, _ = sim_run
    summary = res.summary()
    assert summary.index.name == "row" and "row" not in summary.columns
    assert len(summary) == len(gdf)
    by_row = summary.groupby("row")["charged_credits"].sum()  # works: row is the index only
    assert by_row.sum() == pytest.approx(res.totals["charged_credits"])


def test_feature_columns_say_units_and_types(sim_run, tmp_path):
    import pandas as pd

    from mapflow_geo.results import read_dataset

    _, res, _, dates = sim_run
    f = res.features
    assert "area" not in f.columns and f["area_m2"].dtype == "float64"
    assert f["area_m2"].sum() > 0 and (f["area_m2"].dropna() >= 0).all()
    utc = pd.DatetimeTZDtype("ns", "UTC")
    assert f["imagery_date"].dtype == utc and f["processing_date"].dtype == utc
    assert isinstance(f["class_id"].dtype, pd.CategoricalDtype)
    # the dates are the simulator's, per processing
    for pids, when in zip(f["processing_id"], f["imagery_date"], strict=True):
        # (an object stitched across processings names them all, joined by "+")
        assert when in {pd.Timestamp(dates[p], tz="UTC") for p in pids.split("+")}
    # the stitched dataset has the same date type, in the file and through read_dataset
    info = res.to_parquet(tmp_path / "ds")
    back = read_dataset(info.path)
    assert back["imagery_date"].dtype == utc and back["area_m2"].dtype == "float64"
    assert isinstance(back["class_id"].dtype, pd.CategoricalDtype)
    assert gpd.read_parquet(info.path)["imagery_date"].dtype == utc


def test_repr_html_and_repr(sim_run):
    _, res, charged, _ = sim_run
    n_failed = int((res.tiles["status"] != "OK").sum())
    n = len(res.features)  # loaded (the shared run may not be yet): the repr counts objects
    text = repr(res)
    assert f"{n:,} objects" in text
    assert f"{charged:,} credits charged" in text and f"{n_failed} failed" in text
    html = res._repr_html_()
    assert f"{charged:,} charged" in html
    assert f"{len(res.features):,} objects" in html
    assert f"{n_failed} failed" in html and "Failed tiles" in html
    failed = res.tiles[res.tiles["status"] != "OK"]
    assert failed["tile_id"].iloc[0] in html
    assert "coverage" in html and "%" in html
