"""Campaign 9 — bad input: Hypothesis-generated frames and geometries (invalid, empty,
None, wrong types, NaN/inf, no CRS, projected CRS, antimeridian in −180..180 and 0..360,
polar, huge, duplicated, overlapping, duplicated labels) → a valid plan, or a
``MapflowError`` subclass naming the row; nothing is created for anything rejected.
~150 cases by default, ≥ 1,000 with ``MAPFLOW_FULL=1``."""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from _rel import FAST, FULL, creates
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mapflow_geo  # noqa: F401
from mapflow_geo import sim
from mapflow_geo._geodesy import bbox_area_km2, geodesic_area_km2
from mapflow_geo.exceptions import AOIError, MapflowError
from mapflow_geo.tiling import plan

LIMIT, MAX_AOIS = 25.0, 10
EXAMPLES = 1000 if FULL else 150
TRIED = {"n": 0, "planned": 0, "rejected": 0}

lon = st.floats(-179.5, 179.5)
lat = st.floats(-84.0, 84.0)
size = st.sampled_from([0.001, 0.01, 0.05, 0.2, 0.6])  # degrees; 0.6° ≈ 4,000 km²


@st.composite
def geometry(draw):
    kind = draw(
        st.sampled_from(
            [
                "box",
                "box",
                "bowtie",
                "empty",
                "none",
                "point",
                "line",
                "collection",
                "collection_nopoly",
                "nan",
                "inf",
                "am_0_360",
                "am_jump",
                "am_west",
                "polar",
                "beyond_polar",
                "huge",
                "sliver",
                "multi_overlap",
                "hole",
                "out_of_range",
                "3d",
            ]
        )
    )
    x, y, d = draw(lon), draw(lat), draw(size)
    if kind == "box":
        return shapely.box(x, y, x + d, y + d)
    if kind == "bowtie":
        return shapely.Polygon([(x, y), (x + d, y + d), (x + d, y), (x, y + d)])
    if kind == "empty":
        return shapely.Polygon()
    if kind == "none":
        return None
    if kind == "point":
        return shapely.Point(x, y)
    if kind == "line":
        return shapely.LineString([(x, y), (x + d, y + d)])
    if kind == "collection":
        return shapely.GeometryCollection([shapely.Point(x, y), shapely.box(x, y, x + d, y + d)])
    if kind == "collection_nopoly":
        return shapely.GeometryCollection([shapely.Point(x, y)])
    if kind == "nan":
        return shapely.Polygon([(x, y), (x + d, y), (math.nan, y + d)])
    if kind == "inf":
        return shapely.Polygon([(x, y), (math.inf, y), (x, y + d)])
    if kind == "am_0_360":
        return shapely.box(180 - d / 2, y, 180 + d / 2, y + d)
    if kind == "am_jump":  # ring jumps across ±180 in -180..180
        return shapely.Polygon([(180 - d, y), (-180 + d, y), (-180 + d, y + d), (180 - d, y + d)])
    if kind == "am_west":
        return shapely.box(-180 - d / 2, y, -180 + d / 2, y + d)
    if kind == "polar":
        return shapely.box(x, 84.999 - d / 10, x + d, 84.999)
    if kind == "beyond_polar":
        return shapely.box(x, 85.5, x + d, 89.9)
    if kind == "huge":
        return shapely.box(x, max(y - 0.5, -84), x + 1.0, min(y + 0.5, 84))
    if kind == "sliver":
        return shapely.Polygon([(x, y), (x + d, y + d), (x + d, y + d + 1e-7)])
    if kind == "multi_overlap":
        return shapely.MultiPolygon(
            [shapely.box(x, y, x + d, y + d), shapely.box(x + d / 2, y, x + 1.5 * d, y + d)]
        )
    if kind == "hole":
        return shapely.box(x, y, x + d, y + d).difference(
            shapely.box(x + d / 4, y + d / 4, x + d / 2, y + d / 2)
        )
    if kind == "out_of_range":
        return shapely.box(x * 1000, y * 1000, x * 1000 + 10, y * 1000 + 10)
    if kind == "3d":
        return shapely.Polygon([(x, y, 5), (x + d, y, 5), (x + d, y + d, 5), (x, y + d, 5)])
    raise AssertionError(kind)


@st.composite
def frame(draw):
    geoms = draw(st.lists(geometry(), min_size=1, max_size=5))
    if draw(st.booleans()) and geoms[0] is not None:  # duplicated / overlapping rows
        geoms.append(geoms[0])
    crs = draw(st.sampled_from(["EPSG:4326", "EPSG:4326", None, "EPSG:3857", "EPSG:32633"]))
    index = draw(st.sampled_from(["range", "labels", "dup"]))
    idx = {
        "range": list(range(len(geoms))),
        "labels": [f"row-{i}" for i in range(len(geoms))],
        "dup": [0] * len(geoms),
    }[index]
    if crs and crs != "EPSG:4326":  # same ground expressed in a projected CRS
        g4326 = gpd.GeoSeries(geoms, crs=4326)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            geoms = list(g4326.to_crs(crs).values)
    return gpd.GeoDataFrame({"v": range(len(geoms))}, geometry=geoms, crs=crs, index=idx)


def _check_plan(gdf: gpd.GeoDataFrame, out: gpd.GeoDataFrame) -> None:
    assert len(out) >= 1
    geoms = out.geometry.values
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_type_id(geoms) == 3).all()  # Polygon
    xy = shapely.get_coordinates(geoms)
    assert np.isfinite(xy).all() and (np.abs(xy[:, 0]) <= 180).all()
    assert (np.abs(xy[:, 1]) <= 85).all()
    assert set(out["row"]) <= set(gdf.index)
    assert (geodesic_area_km2(geoms) <= LIMIT * 1.0001).all()
    assert (bbox_area_km2(geoms) <= LIMIT * 1.0001).all()
    per = out.groupby("processing")
    assert (per["area_km2"].sum() <= LIMIT * 1.0001).all()
    assert (per.size() <= MAX_AOIS).all()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(frame())
def test_any_frame_gives_a_valid_plan_or_a_named_error(gdf):
    TRIED["n"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = plan(gdf, area_limit_km2=LIMIT, max_aois=MAX_AOIS)
    except AOIError as e:
        TRIED["rejected"] += 1
        if e.row is not None:
            assert e.row in gdf.index
            assert f"row {e.row!r}" in str(e)
        return
    except MapflowError:
        TRIED["rejected"] += 1
        return
    TRIED["planned"] += 1
    _check_plan(gdf, out)


@given(
    st.lists(
        st.one_of(st.integers(), st.text(max_size=3), st.none(), st.just(1.5)),
        min_size=1,
        max_size=4,
    )
)
@settings(max_examples=max(20, EXAMPLES // 10), deadline=None, database=None)
def test_wrong_types_are_mapflow_errors(items):
    """Wrong types (not geometries) raise a MapflowError that is also a TypeError."""
    if all(i is None for i in items):
        with pytest.raises(AOIError):
            plan(items, area_limit_km2=LIMIT, max_aois=MAX_AOIS)
        return
    with pytest.raises(MapflowError) as ei:
        plan(items, area_limit_km2=LIMIT, max_aois=MAX_AOIS)
    assert isinstance(ei.value, TypeError)
    assert ei.value.row == next(i for i, x in enumerate(items) if x is not None)


REJECTED = {
    "no_crs": gpd.GeoDataFrame(geometry=[shapely.box(10, 40, 10.01, 40.01)]),
    "none": gpd.GeoDataFrame(geometry=[shapely.box(10, 40, 10.01, 40.01), None], crs=4326),
    "nan": gpd.GeoDataFrame(
        geometry=[shapely.Polygon([(10, 40), (10.01, 40), (math.nan, 40.01)])], crs=4326
    ),
    "point": gpd.GeoDataFrame(geometry=[shapely.Point(10, 40)], crs=4326),
    "polar": gpd.GeoDataFrame(geometry=[shapely.box(10, 86, 10.01, 86.01)], crs=4326),
    "wrong_crs": gpd.GeoDataFrame(geometry=[shapely.box(500000, 4e6, 500100, 4.0001e6)], crs=4326),
    "dup_labels": gpd.GeoDataFrame(
        geometry=[shapely.box(10, 40, 10.01, 40.01)] * 2, index=[3, 3], crs=4326
    ),
    "types": pd.DataFrame({"geometry": [1, 2]}),
}


def test_rejected_inputs_create_nothing(tmp_path):
    with sim.serve(processing_seconds=0) as server:
        client = server.client()
        for name, gdf in REJECTED.items():
            with pytest.raises(MapflowError):
                gdf.mapflow.process(
                    "buildings", client=client, run_dir=tmp_path / name, **FAST
                ) if isinstance(gdf, gpd.GeoDataFrame) else mapflow_geo.run.process(
                    gdf, "buildings", client=client, run_dir=tmp_path / name, **FAST
                )
        assert creates(server) == []
        assert server.charges == []
        assert not [r for r in server.requests if r.method == "POST"]


def teardown_module(module):
    print(
        f"\nbad input: {TRIED['n']} frames tried, {TRIED['planned']} planned, "
        f"{TRIED['rejected']} rejected with a MapflowError"
    )
