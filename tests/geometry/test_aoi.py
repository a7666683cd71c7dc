"""Tests for :mod:`mapflow_geo.aoi`: input errors name the row; repairs keep area;
antimeridian splitting; overlap trimming (first row wins); odd inputs."""

from __future__ import annotations

import functools
import json
import math
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from mapflow_geo.aoi import prepare_aois
from mapflow_geo.exceptions import AOIError, AOIWarning, MapflowError

GEOD = Geod(ellps="WGS84")
BOWTIE = shapely.Polygon([(10, 10), (10.1, 10.1), (10.1, 10), (10, 10.1)])


def _frame(geoms, index=None, crs=4326):
    return gpd.GeoDataFrame({"v": range(len(geoms))}, geometry=list(geoms), crs=crs, index=index)


def _geod_km2(g):
    return abs(GEOD.geometry_area_perimeter(shapely.orient_polygons(g))[0]) / 1e6


# ------------------------------------------------------------------ input errors
def _quiet(fn, *args):
    with np.errstate(invalid="ignore"):
        return fn(*args)


BAD = {
    "none": (None, "no geometry"),
    "empty": (shapely.Polygon(), "empty"),
    "point": (shapely.Point(1, 1), "Point"),
    "line": (shapely.LineString([(0, 0), (1, 1)]), "LineString"),
    "nan": (_quiet(shapely.Polygon, [(0, 0), (1, np.nan), (1, 1)]), "NaN"),
    "inf": (shapely.Polygon([(0, 0), (np.inf, 0), (1, 1)]), "infinite"),
    "north": (shapely.box(0, 84, 1, 85.5), "85"),
    "south": (shapely.box(0, -89, 1, -84), "85"),
    "projected_numbers": (shapely.box(500000, 4000000, 501000, 4001000), "range"),
    "degenerate": (shapely.Polygon([(0, 0), (1, 1), (2, 2)]), "no area"),
    "lines_only_gc": (shapely.GeometryCollection([shapely.Point(0, 0)]), "without polygons"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_row_raises_naming_row(case):
    geom, words = BAD[case]
    gdf = _frame([shapely.box(0, 0, 0.01, 0.01), geom], index=["good", f"bad-{case}"])
    with pytest.raises(AOIError) as info:
        prepare_aois(gdf)
    assert info.value.row == f"bad-{case}"
    assert f"bad-{case}" in str(info.value)
    assert words.lower() in info.value.problem.lower()
    assert isinstance(info.value, MapflowError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_row_skipped_with_warning(case):
    geom, _ = BAD[case]
    gdf = _frame([shapely.box(0, 0, 0.01, 0.01), geom], index=[7, 8])
    with pytest.warns(AOIWarning, match=r"row 8"):
        out = prepare_aois(gdf, input_errors="skip")
    assert out.index.tolist() == [7] and out["row"].tolist() == [7]


def test_missing_crs_is_frame_level_error():
    gdf = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)])
    with pytest.raises(AOIError) as info:
        prepare_aois(gdf)
    assert info.value.row is None and "CRS" in str(info.value)


def test_duplicate_labels_refused():
    with pytest.raises(AOIError, match="unique"):
        prepare_aois(_frame([shapely.box(0, 0, 1, 1)] * 2, index=["a", "a"]))


def test_bad_errors_argument():
    with pytest.raises(ValueError):
        prepare_aois(_frame([shapely.box(0, 0, 1, 1)]), input_errors="ignore")


def test_raise_mode_reports_first_bad_row_and_count():
    gdf = _frame([None, shapely.Point(0, 0), shapely.box(0, 0, 1, 1)], index=["x", "y", "z"])
    with pytest.raises(AOIError) as info:
        prepare_aois(gdf)
    assert info.value.row == "x" and "1 more" in str(info.value)


# ------------------------------------------------------------------ output shape
def test_output_frame_shape_and_columns():
    gdf = _frame([shapely.box(0, 0, 0.1, 0.1), shapely.box(1, 1, 1.1, 1.1)], index=["a", "b"])
    out = prepare_aois(gdf)
    assert out.crs.equals("EPSG:4326")
    assert out.index.tolist() == ["a", "b"] and out["row"].tolist() == ["a", "b"]
    assert out["v"].tolist() == [0, 1]
    assert out.geometry.name == "geometry"
    assert np.allclose(out["area_km2"], [_geod_km2(g) for g in gdf.geometry])


def test_reprojects_any_crs():
    gdf = _frame([shapely.box(30, 50, 30.2, 50.1)])
    for crs in ("EPSG:3857", "EPSG:32636", "ESRI:54009", "EPSG:3035"):
        out = prepare_aois(gdf.to_crs(crs))
        assert out.crs.equals("EPSG:4326")
        assert out.geometry.iloc[0].equals_exact(gdf.geometry.iloc[0], tolerance=1e-7)


# ------------------------------------------------------------------ repairs
def test_bowtie_keeps_both_lobes():
    out = prepare_aois(_frame([BOWTIE]))
    g = out.geometry.iloc[0]
    assert g.is_valid and g.geom_type == "MultiPolygon" and len(g.geoms) == 2
    assert math.isclose(g.area, 0.1 * 0.1 / 2, rel_tol=1e-9)


def test_overlapping_multipolygon_parts_are_unioned():
    mp = shapely.MultiPolygon([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)])
    assert not mp.is_valid
    g = prepare_aois(_frame([mp])).geometry.iloc[0]
    assert g.is_valid and math.isclose(g.area, 7.0)


def test_ring_covering_area_twice_loses_nothing():
    r = shapely.Polygon(
        [(0, 0), (4, 0), (4, 4), (0, 4), (0, 1), (3, 1), (3, 3), (1, 3), (1, 0.5), (0, 0.5)]
    )
    g = prepare_aois(_frame([r])).geometry.iloc[0]
    assert g.is_valid and g.area >= shapely.make_valid(r).area
    assert shapely.covers(g, shapely.make_valid(r))


def test_collection_keeps_polygonal_parts():
    gc = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.LineString([(2, 2), (3, 3)])])
    g = prepare_aois(_frame([gc])).geometry.iloc[0]
    assert g.equals(shapely.box(0, 0, 1, 1))


def test_spike_is_dropped_but_area_kept():
    s = shapely.Polygon([(0, 0), (2, 0), (2, 2), (1, 2), (1, 3), (1, 2), (0, 2)])
    g = prepare_aois(_frame([s])).geometry.iloc[0]
    assert g.is_valid and math.isclose(g.area, 4.0)


def test_z_coordinates_dropped():
    g = shapely.Polygon([(0, 0, 5), (1, 0, 5), (1, 1, 5)])
    out = prepare_aois(_frame([g])).geometry.iloc[0]
    assert not out.has_z


# ------------------------------------------------------------------ antimeridian
def _expected_band_area(lon_span, lat0, lat1):
    # the split inserts vertices at ±180: measure two halves (geodesic edges change)
    half = lon_span / 2
    return 2 * _geod_km2(shapely.box(0, lat0, half, lat1))


@pytest.mark.parametrize(
    "geom",
    [
        shapely.Polygon([(179, -10), (-179, -10), (-179, -9), (179, -9)]),  # -180..180, wraps
        shapely.box(179, -10, 181, -9),  # 0..360
        shapely.Polygon([(-181, -10), (-179, -10), (-179, -9), (-181, -9)]),  # beyond -180
    ],
)
def test_antimeridian_split_both_sides(geom):
    g = prepare_aois(_frame([geom])).geometry.iloc[0]
    assert g.geom_type == "MultiPolygon" and len(g.geoms) == 2
    xs = shapely.get_coordinates(g)[:, 0]
    assert xs.min() == -180 and xs.max() == 180
    assert {round(p.bounds[0]) for p in g.geoms} == {179, -180}
    assert math.isclose(_geod_km2(g), _expected_band_area(2, -10, -9), rel_tol=1e-9)


def test_0_360_longitudes_shifted():
    g = prepare_aois(_frame([shapely.box(200, 5, 201, 6)])).geometry.iloc[0]
    assert g.equals(shapely.box(-160, 5, -159, 6))


def test_antimeridian_with_hole():
    shell = [(178, 0), (-178, 0), (-178, 4), (178, 4)]
    hole = [(179.5, 1), (-179.5, 1), (-179.5, 3), (179.5, 3)]
    g = prepare_aois(_frame([shapely.Polygon(shell, [hole])])).geometry.iloc[0]
    assert g.is_valid
    want = _expected_band_area(4, 0, 4) - _expected_band_area(1, 1, 3)
    assert math.isclose(_geod_km2(g), want, rel_tol=1e-9)


def test_large_polygon_not_mistaken_for_crossing():
    # spans 200° of longitude but no edge jumps more than 180°: not a crossing
    g0 = shapely.Polygon([(-100, 0), (0, 1), (100, 0), (100, 2), (0, 2), (-100, 2)])
    g = prepare_aois(_frame([g0])).geometry.iloc[0]
    assert g.equals(g0)


def test_ring_around_pole_refused():
    # edges 0→120→-120→0 of longitude: each under 180°, so the ring winds around the pole
    with pytest.raises(AOIError, match="pole"):
        prepare_aois(_frame([shapely.Polygon([(0, 70), (120, 71), (-120, 72)])]))


# ------------------------------------------------------------------ overlaps
def test_first_row_wins_and_covered_row_dropped():
    gdf = _frame(
        [
            shapely.box(0, 0, 0.2, 0.2),
            shapely.box(0.1, 0, 0.3, 0.2),
            shapely.box(0.05, 0.05, 0.1, 0.1),
        ],
        index=["a", "b", "c"],
    )
    with pytest.warns(AOIWarning, match="'c'"):
        out = prepare_aois(gdf)
    assert out.index.tolist() == ["a", "b"]
    a, b = out.geometry.values
    assert a.equals(shapely.box(0, 0, 0.2, 0.2))
    assert b.equals(shapely.box(0.2, 0, 0.3, 0.2))
    assert shapely.intersection(a, b).area == 0


def test_touching_rows_untouched():
    gdf = _frame([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    out = prepare_aois(gdf)
    assert out.geometry.iloc[1].equals(shapely.box(1, 0, 2, 1))


# ------------------------------------------------------------------ other inputs
def test_other_input_types(tmp_path):
    box = shapely.box(0, 0, 0.1, 0.1)
    assert len(prepare_aois(box)) == 1
    assert prepare_aois([box, shapely.box(1, 1, 1.1, 1.1)])["row"].tolist() == [0, 1]
    gs = gpd.GeoSeries([box], crs=3857)
    assert prepare_aois(gs).crs.equals("EPSG:4326")
    gj = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"n": 1}, "geometry": shapely.geometry.mapping(box)}
        ],
    }
    assert prepare_aois(gj)["n"].tolist() == [1]
    assert len(prepare_aois(gj["features"][0])) == 1
    assert len(prepare_aois(shapely.geometry.mapping(box))) == 1
    p = tmp_path / "a.geojson"
    p.write_text(json.dumps(gj))
    assert len(prepare_aois(str(p))) == 1
    with pytest.raises(TypeError):
        prepare_aois(42)
    with pytest.raises(AOIError):  # GeoSeries without CRS
        prepare_aois(gpd.GeoSeries([box]))


# ------------------------------------------------------------------ properties
@st.composite
def messy_polygons(draw):
    n = draw(st.integers(3, 10))
    cx, cy = draw(st.floats(-170, 170)), draw(st.floats(-80, 80))
    pts = draw(st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1)), min_size=n, max_size=n))
    scale = draw(st.sampled_from([0.001, 0.05, 1.0]))
    return shapely.Polygon([(cx + scale * x, cy + scale * y) for x, y in pts])


@settings(max_examples=150)
@given(st.lists(messy_polygons(), min_size=1, max_size=4))
@example(
    [
        shapely.Polygon([(64, -1), (65, -0.5), (64, 0), (64.5, 0)]),
        shapely.Polygon([(64, -1), (65, -0.5), (64, 0), (64.5, 1)]),
    ]
)
@example(
    [
        shapely.Polygon(
            [
                (0, 0),
                (-3.8743729655694075e-232, 0),
                (0.001, 0.001),
                (0, 0.001),
                (0.001, 0),
                (0.001, 0.001),
            ]
        )
    ]
)
def test_prepare_properties(geoms):
    """Random (often self-intersecting) rings: output valid, in range, rows disjoint,
    and no area that any ring encloses (even-odd or nonzero) is lost."""
    gdf = _frame(geoms, index=[f"g{i}" for i in range(len(geoms))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AOIWarning)
        out = prepare_aois(gdf, input_errors="skip")
    # binary unions, not union_all: GEOS's unary union can drop area on near-degenerate
    # disjoint pieces (e.g. the @example above: 0.475 instead of 0.564)
    got = functools.reduce(shapely.union, out.geometry.values, shapely.Polygon())
    # the oracle sees the coordinates prepare_aois works on (snapped to 1e-12°): GEOS's
    # make_valid on a subnormal coordinate (e.g. -3.9e-232) returns an invalid polygon of
    # negative area, which no output could match
    snapped = [shapely.transform(g, lambda c: np.round(c, 12)) for g in geoms]
    want = shapely.union_all([shapely.make_valid(g, method="linework") for g in snapped])
    want = shapely.union_all([p for p in shapely.get_parts(want) if p.geom_type == "Polygon"])
    if want.is_empty:
        return
    x0, y0, x1, y1 = want.bounds
    # float noise on near-degenerate rings, and the 1e-12° snapping of prepare_aois
    noise = 1e-12 * max(x1 - x0, y1 - y0) ** 2 + 1e-12 * want.length
    assert got.area >= want.area * (1 - 1e-9) - noise
    tol = 1e-6 * math.sqrt(want.area) if want.area > 0 else 1e-12
    assert shapely.difference(want, got.buffer(tol)).area <= 1e-6 * want.area + noise
    for g in out.geometry.values:
        assert g.is_valid and g.geom_type in ("Polygon", "MultiPolygon") and g.area > 0
        xy = shapely.get_coordinates(g)
        assert np.abs(xy[:, 0]).max() <= 180 and np.abs(xy[:, 1]).max() <= 85
    total = sum(g.area for g in out.geometry.values)
    assert math.isclose(total, got.area, rel_tol=1e-9, abs_tol=1e-15)
