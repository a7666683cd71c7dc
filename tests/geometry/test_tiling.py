"""Unit tests for :mod:`mapflow_geo.tiling` and the ``gdf.mapflow.plan`` accessor, plus
real country shapes (Natural Earth low-res, shipped with pyogrio as a test fixture)."""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import shapely.affinity
from test_tiling_props import GEOD, check_plan

import mapflow_geo
from mapflow_geo.aoi import prepare_aois
from mapflow_geo.exceptions import AOIError, AOIWarning, ConfigError
from mapflow_geo.tiling import credits_for, plan, summarize

NE = os.path.join(
    os.path.dirname(pyogrio.__file__),
    "tests", "fixtures", "naturalearth_lowres", "naturalearth_lowres.shp",
)  # fmt: skip


def _gdf(*geoms, index=None):
    return gpd.GeoDataFrame(geometry=list(geoms), crs=4326, index=index)


@pytest.fixture(scope="module")
def world():
    return gpd.read_file(NE).set_index("name")


class FakeClient:
    def __init__(self, limit=25.0, max_aois=10, price=13.0):
        self.calls = []
        self._limits = SimpleNamespace(aoi_area_limit_km2=limit, max_aois_per_processing=max_aois)
        self._price = price
        self.account = SimpleNamespace(limits=self._account_limits, model_price=self._model_price)

    def _account_limits(self):
        self.calls.append("account.limits")
        return self._limits

    def _model_price(self, model):
        self.calls.append(("account.model_price", model))
        return self._price


# ---------------------------------------------------------------- configuration
def test_no_limits_no_client_is_config_error():
    with pytest.raises(ConfigError, match="area_limit_km2"):
        plan(_gdf(shapely.box(0, 0, 0.01, 0.01)))


@pytest.mark.parametrize(
    "kw",
    [
        {"area_limit_km2": 0},
        {"area_limit_km2": -5},
        {"area_limit_km2": float("nan")},
        {"area_limit_km2": 25, "max_aois": 0},
        {"area_limit_km2": 25, "safety_margin": 1.0},
        {"area_limit_km2": 25, "price_per_km2": -1},
    ],
)
def test_bad_limits(kw):
    with pytest.raises(ConfigError):
        plan(_gdf(shapely.box(0, 0, 0.01, 0.01)), **kw)


def test_limits_and_price_from_client():
    client = FakeClient(limit=50, max_aois=3, price=2)
    tiles = mapflow_geo.plan(
        _gdf(shapely.box(10, 10, 10.2, 10.2)), client=client, model="🏠 Buildings"
    )
    assert client.calls == ["account.limits", ("account.model_price", "🏠 Buildings")]
    s = tiles.attrs["summary"]
    assert s["area_limit_km2"] == 50 and s["max_aois"] == 3 and s["price_per_km2"] == 2
    assert tiles["planned_credits"].notna().all()
    check_plan(tiles, prepare_aois(_gdf(shapely.box(10, 10, 10.2, 10.2))), 50, 3, price=2)


def test_explicit_limits_win_over_client():
    client = FakeClient(limit=50, max_aois=3)
    tiles = mapflow_geo.plan(
        _gdf(shapely.box(10, 10, 10.1, 10.1)), client=client, area_limit_km2=25, max_aois=10
    )
    assert client.calls == []  # nothing asked: no model, limits given
    assert tiles.attrs["summary"]["area_limit_km2"] == 25


def test_default_max_aois_without_client():
    tiles = plan(_gdf(shapely.box(10, 10, 10.1, 10.1)), area_limit_km2=25)
    assert tiles.attrs["summary"]["max_aois"] == 10


# ---------------------------------------------------------------- accessor
def test_accessor_offline():
    gdf = _gdf(shapely.box(30, 50, 30.3, 50.2), shapely.box(31, 50, 31.01, 50.01))
    tiles = gdf.mapflow.plan(area_limit_km2=25, max_aois=10)
    check_plan(tiles, prepare_aois(gdf), 25, 10)
    assert set(tiles["row"]) == {0, 1}


def test_accessor_passes_options():
    gdf = _gdf(shapely.box(30, 50, 30.3, 50.2))
    tiles = gdf.mapflow.plan(area_limit_km2=25, max_aois=10, price_per_km2=1, safety_margin=0.02)
    assert (tiles["area_km2"] <= 25 * 0.98).all()
    assert tiles["planned_credits"].notna().all()


# ---------------------------------------------------------------- output
def test_columns_and_types():
    tiles = plan(_gdf(shapely.box(30, 50, 30.3, 50.2), index=["field"]), area_limit_km2=25)
    for col in (
        "row",
        "tile_id",
        "processing",
        "area_km2",
        "bbox_area_km2",
        "processing_area_km2",
        "processing_aois",
        "planned_credits",
        "geometry",
    ):
        assert col in tiles.columns
    assert tiles.crs.equals("EPSG:4326")
    assert (tiles["row"] == "field").all()
    assert tiles["processing"].dtype.kind == "i"
    assert tiles["planned_credits"].isna().all()  # no price known
    assert tiles["processing"].is_monotonic_increasing
    per = tiles.groupby("processing")
    assert np.allclose(per["area_km2"].sum(), per["processing_area_km2"].first())
    assert (per.size() == per["processing_aois"].first()).all()


def test_planned_credits_are_nullable_integers_with_or_without_a_price():
    """One column type for both cases: ``Int64``, <NA> without a price and, with one,
    each processing's ⌈max(area, 1) × price⌉ (areas from pyproj)."""
    gdf = _gdf(shapely.box(30, 50, 30.3, 50.2), shapely.box(31, 50, 31.01, 50.01))
    unpriced = plan(gdf, area_limit_km2=25)
    priced = plan(gdf, area_limit_km2=25, price_per_km2=13)
    for tiles in (unpriced, priced):
        assert tiles["planned_credits"].dtype == pd.Int64Dtype()
    assert unpriced["planned_credits"].isna().all()
    area = priced.geometry.map(_geod_area).groupby(priced["processing"]).transform("sum")
    want = [math.ceil(max(a, 1.0) * 13) for a in area]
    assert priced["planned_credits"].tolist() == want


def test_deterministic_and_stable_ids():
    gdf = _gdf(
        shapely.Polygon([(0, 0), (0.3, 0.05), (0.25, 0.3), (0.02, 0.2)]),
        shapely.box(0.4, 0, 0.45, 0.05),
        index=["a", "b"],
    )
    t1 = plan(gdf, area_limit_km2=10, max_aois=4)
    t2 = plan(gdf.copy(), area_limit_km2=10, max_aois=4)
    pd.testing.assert_frame_equal(t1, t2)
    t3 = plan(gdf, area_limit_km2=10, max_aois=4, price_per_km2=13)
    assert t1["tile_id"].tolist() == t3["tile_id"].tolist()
    t4 = plan(gdf, area_limit_km2=20, max_aois=4)
    assert set(t1["tile_id"]) != set(t4["tile_id"])


def test_empty_after_skip():
    with pytest.warns(AOIWarning):
        tiles = plan(_gdf(shapely.Point(0, 0)), area_limit_km2=25, input_errors="skip")
    assert len(tiles) == 0 and "processing" in tiles.columns
    assert tiles.attrs["summary"]["processings"] == 0


def test_bad_row_raises():
    with pytest.raises(AOIError) as info:
        plan(_gdf(shapely.box(0, 0, 1, 1), None, index=["ok", "broken"]), area_limit_km2=25)
    assert info.value.row == "broken"


# ---------------------------------------------------------------- packing behaviour
def test_full_cells_fill_processings():
    gdf = _gdf(shapely.box(20, 40, 21, 41))  # ~9,400 km²
    tiles = plan(gdf, area_limit_km2=100)
    s = tiles.attrs["summary"]
    assert s["processings"] <= math.ceil(s["processings_bound"] * 1.03)
    full = tiles["area_km2"] > 99
    assert full.mean() > 0.8


def test_small_rows_packed_together():
    boxes = [shapely.box(10 + 0.02 * i, 10, 10 + 0.02 * i + 0.002, 10.002) for i in range(30)]
    tiles = plan(_gdf(*boxes), area_limit_km2=25, max_aois=10, price_per_km2=13)
    assert tiles["processing"].nunique() == 3
    assert (tiles.groupby("processing").size() == 10).all()
    # three processings under 1 km² each: 3 × 13 credits
    assert tiles.attrs["summary"]["planned_credits"] == 39


def test_touching_rows_not_in_one_processing_as_separate_polygons():
    gdf = _gdf(shapely.box(0, 0, 0.01, 0.01), shapely.box(0.01, 0, 0.02, 0.01))
    tiles = plan(gdf, area_limit_km2=25, max_aois=10)
    check_plan(tiles, prepare_aois(gdf), 25, 10)
    assert tiles["processing"].nunique() == 2


def test_touching_pieces_of_one_row_merged_when_fit():
    # 0.1° × 0.03° (~37 km²) at a 25 km² limit is cut into 2 full-width cells and an end
    # piece; with one polygon per processing the end piece can only join a processing by
    # merging with the cell it touches (the merged bbox still fits)
    gdf = _gdf(shapely.box(0, 0, 0.1, 0.03))
    tiles = plan(gdf, area_limit_km2=25, max_aois=1)
    check_plan(tiles, prepare_aois(gdf), 25, 1)
    assert tiles["processing"].nunique() == 2 and len(tiles) == 2
    assert max(g.bounds[2] - g.bounds[0] for g in tiles.geometry) > 0.05


def test_connected_row_with_large_bbox_needs_two_processings():
    l_shape = shapely.Polygon(
        [(0, 0), (0.06, 0), (0.06, 0.01), (0.01, 0.01), (0.01, 0.06), (0, 0.06)]
    )  # ~13.6 km², bbox ~44 km²
    gdf = _gdf(l_shape)
    tiles = plan(gdf, area_limit_km2=25, max_aois=10)
    check_plan(tiles, prepare_aois(gdf), 25, 10)
    assert tiles["processing"].nunique() == 2


def test_thin_diagonal_sliver_meets_bbox_rule():
    sliver = shapely.Polygon([(0, 0), (1, 1), (1.0005, 1), (0.0005, 0)])
    gdf = _gdf(sliver)
    prepared = prepare_aois(gdf)
    assert prepared["area_km2"].iloc[0] < 10
    tiles = plan(gdf, area_limit_km2=10, max_aois=10)
    check_plan(tiles, prepared, 10, 10)
    assert (tiles["bbox_area_km2"] <= 10 * 0.995).all()


def test_max_aois_one():
    gdf = _gdf(*[shapely.box(i * 0.1, 0, i * 0.1 + 0.01, 0.01) for i in range(5)])
    tiles = plan(gdf, area_limit_km2=25, max_aois=1)
    assert tiles["processing"].nunique() == 5


def test_antimeridian_row_planned_on_both_sides():
    gdf = _gdf(shapely.box(179.8, -17, 180.2, -16.8))
    tiles = plan(gdf, area_limit_km2=50, max_aois=10)
    check_plan(tiles, prepare_aois(gdf), 50, 10)
    xs = shapely.get_coordinates(tiles.geometry.values)[:, 0]
    assert xs.min() < -179 and xs.max() > 179


def test_near_pole():
    gdf = _gdf(shapely.box(10, 84.5, 14, 85))
    tiles = plan(gdf, area_limit_km2=25, max_aois=10)
    check_plan(tiles, prepare_aois(gdf), 25, 10)


def test_credits_for():
    assert credits_for(0.2, 13) == 13
    assert credits_for(1.0, 13) == 13
    assert credits_for(24.875, 1) == 25
    assert credits_for(2.0, 0.5) == 1
    assert credits_for(3.0, 1 / 3) == 1  # no spurious round-up on float noise


def test_summarize_bounds():
    gdf = _gdf(shapely.box(20, 40, 20.5, 40.5), shapely.box(21, 40, 21.02, 40.02))
    tiles = plan(gdf, area_limit_km2=50, price_per_km2=13)
    s = summarize(tiles)
    areas = prepare_aois(gdf)["area_km2"]
    assert s["processings_bound"] == sum(math.ceil(a / 50) for a in areas)
    assert s["processings_lower_bound"] == math.ceil(areas.sum() / 50)
    # tiles split long geodesic edges, so their areas differ slightly from the row's
    assert math.isclose(s["credits_bound"], areas.sum() * 13, rel_tol=1e-4)
    assert s["planned_credits"] >= s["credits_bound"]
    assert summarize(tiles, price_per_km2=1)["planned_credits"] < s["planned_credits"]


# ---------------------------------------------------------------- real shapes
COUNTRY_CASES = [
    ("Luxembourg", 5.0, 10),
    ("Luxembourg", 100.0, 3),
    ("Cyprus", 25.0, 10),
    ("Jamaica", 50.0, 10),
    ("Fiji", 100.0, 10),  # crosses the antimeridian
    ("Vanuatu", 25.0, 2),
    ("Belgium", 100.0, 10),
    ("Israel", 50.0, 10),
]


@pytest.mark.parametrize("name,limit,max_aois", COUNTRY_CASES)
def test_country(world, name, limit, max_aois):
    gdf = world.loc[[name], ["geometry"]]
    tiles = plan(gdf, area_limit_km2=limit, max_aois=max_aois, price_per_km2=13)
    check_plan(tiles, prepare_aois(gdf), limit, max_aois, price=13)
    s = tiles.attrs["summary"]
    assert s["processings"] <= 1.10 * s["processings_bound"] + 1
    assert s["credits_ratio"] <= 1.01


def test_countries_together_in_other_crs(world):
    names = ["Luxembourg", "Slovenia", "Cyprus", "Lebanon"]
    gdf = world.loc[names, ["geometry"]].to_crs("EPSG:3035")
    tiles = plan(gdf, area_limit_km2=50, max_aois=10, price_per_km2=1)
    check_plan(tiles, prepare_aois(gdf), 50, 10, price=1)
    s = tiles.attrs["summary"]
    assert s["processings"] <= 1.03 * s["processings_bound"]
    assert s["credits_ratio"] <= 1.01


@pytest.mark.parametrize("area_limits", [1.2, 1.9, 2.6])
def test_rows_of_a_few_limits_use_minimal_processings(area_limits):
    # a square of 1.2–2.6 limits: equal-area strips reach ⌈area ÷ cap⌉ processings where
    # a grid would leave touching leftovers needing an extra processing
    side = math.sqrt(25 * area_limits) / 111.32
    gdf = _gdf(shapely.box(10, 0, 10 + side, side))
    tiles = plan(gdf, area_limit_km2=25, max_aois=10)
    check_plan(tiles, prepare_aois(gdf), 25, 10)
    s = tiles.attrs["summary"]
    assert s["processings"] == math.ceil(s["total_area_km2"] / (25 * 0.995))


def test_prepared_input_plans_the_same():
    """``prepared=True`` (what the runner passes after preparing the rows itself) plans
    exactly what planning the raw rows does."""
    import warnings

    gdf = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"]},
        geometry=[
            shapely.box(30.0, 50.0, 30.25, 50.12),
            shapely.box(30.2, 50.1, 30.3, 50.2),  # overlaps a: trimmed
            shapely.Polygon([(179.9, 10), (180.1, 10), (180.1, 10.1), (179.9, 10.1)]),
        ],
        crs=4326,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = plan(gdf, area_limit_km2=25, max_aois=10)
        pre = plan(prepare_aois(gdf), area_limit_km2=25, max_aois=10, prepared=True)
    assert raw.drop(columns="geometry").equals(pre.drop(columns="geometry"))
    assert raw.geometry.geom_equals_exact(pre.geometry, 0).all()


# ---------------------------------------------------------------- the grid
def _box_km2(x0, y0, x1, y1):
    """Geodesic area of the 4-corner lat/lon box, straight from pyproj."""
    return abs(GEOD.polygon_area_perimeter([x0, x1, x1, x0], [y0, y0, y1, y1])[0]) / 1e6


def _cell_width(y0, y1, cap):
    """Longitude width of the box between two parallels whose geodesic area is ``cap``
    (bisection on pyproj's area)."""
    lo, hi = 0.0, 1.0
    while _box_km2(0.0, y0, hi, y1) < cap:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _box_km2(0.0, y0, mid, y1) <= cap else (lo, mid)
    return lo


GRID_CASES = [
    ((20.0, 40.0, 21.0, 40.6), 100.0),
    ((10.0, 60.0, 10.2, 60.1), 0.5),  # a limit under 1 km²
    ((-70.0, -50.0, -69.5, -49.6), 25.0),
    ((30.0, 84.0, 31.5, 84.3), 25.0),  # near the imagery's latitude limit
    ((0.0, -0.2, 0.3, 0.2), 2.0),  # across the equator
]


@pytest.mark.parametrize("bounds,limit", GRID_CASES)
def test_a_large_rectangle_is_cut_on_a_grid_of_full_cells(bounds, limit):
    """The documented grid, computed here with pyproj alone: bands √cap km of meridian
    tall from the area's south edge, and in each band cells of exactly ``cap`` km² (the
    band's full height) from its west edge; every tile's edges lie on that grid, and a
    whole cell holds the allowed area to 10⁻⁶ (never more)."""
    minx, miny, maxx, maxy = bounds
    cap = limit * 0.995
    tiles = plan(_gdf(shapely.box(*bounds)), area_limit_km2=limit, sliver_fraction=0)
    check_plan(tiles, prepare_aois(_gdf(shapely.box(*bounds))), limit, 10, sliver=0)
    side_m = math.sqrt(cap) * 1e3
    lines = [miny]
    while lines[-1] < maxy:
        lines.append(GEOD.fwd(minx, miny, 0.0, side_m * len(lines))[1])
    assert len(lines) >= 3
    widths = [_cell_width(y0, y1, cap) for y0, y1 in zip(lines[:-1], lines[1:], strict=True)]
    ys = np.array(lines[:-1] + [maxy])
    full = 0
    for x0, y0, x1, y1 in tiles.bounds.to_numpy():
        for y in (y0, y1):
            assert np.abs(ys - y).min() < 1e-9, f"tile edge at latitude {y} off the bands"
        bands = [k for k in range(len(widths)) if y0 - 1e-9 < lines[k] < y1 - 1e-9]
        for x in (x0, x1):
            if x == maxx:
                continue
            off = [abs((x - minx) / widths[k] - round((x - minx) / widths[k])) for k in bands]
            assert min(off) < 1e-5, f"tile edge at longitude {x} off the cells"
        k = bands[0]
        if len(bands) == 1 and k < len(widths) - 1 and abs(x1 - x0 - widths[k]) < 1e-5 * widths[k]:
            full += 1
            area = _box_km2(x0, y0, x1, y1)
            assert cap * (1 - 1e-6) <= area <= cap, (area, cap)
    assert full >= 0.5 * len(tiles)


def test_a_sliver_joins_the_neighbour_it_shares_the_longest_border_with():
    """A rectangle 1.5 cells wide and 9 bands plus a sliver tall (too large for strips):
    the sliver's piece above the half-width column touches that column's top cell along
    half a cell and the other sliver piece along the sliver's height; it joins the
    former, and the other sliver piece (which fits nowhere: the full cell below it has no
    room) stays on its own."""
    cap = 25 * 0.995
    x0, lat0 = 10.0, 45.0
    lines = [GEOD.fwd(x0, lat0, 0.0, math.sqrt(cap) * 1e3 * k)[1] for k in range(10)]
    w = _cell_width(lines[8], lines[9], cap)
    eps = (lines[9] - lines[8]) * 0.004
    top = lines[9]
    aoi = shapely.box(x0, lat0, x0 + 1.5 * w, top + eps)
    tiles = plan(_gdf(aoi), area_limit_km2=25, max_aois=10)
    check_plan(tiles, prepare_aois(_gdf(aoi)), 25, 10)

    def tile_at(x, y):
        (hit,) = np.flatnonzero(tiles.geometry.contains(shapely.Point(x, y)))
        return hit

    over_half = tile_at(x0 + 1.25 * w, top + eps / 2)
    over_full = tile_at(x0 + 0.5 * w, top + eps / 2)
    assert over_half != over_full
    assert over_half == tile_at(x0 + 1.25 * w, top - 0.1 * (top - lines[8]))
    assert tiles["area_km2"].iloc[over_full] < 0.01 * cap


# ---------------------------------------------------------------- limits and summary
def test_no_limit_error_says_how_to_give_one():
    with pytest.raises(ConfigError) as info:
        plan(_gdf(shapely.box(0, 0, 0.01, 0.01)))
    text = str(info.value)
    for part in ("area_limit_km2=", "max_aois=", "mapflow_geo.plan", "gdf.mapflow.plan"):
        assert part in text
    assert "client= to read the account's limits" in text


@pytest.mark.parametrize("kw", [{"max_aois": "ten"}, {"area_limit_km2": "lots"}])
def test_unreadable_limits_are_config_errors(kw):
    with pytest.raises(ConfigError, match="bad limits"):
        plan(_gdf(shapely.box(0, 0, 0.01, 0.01)), **{"area_limit_km2": 25, **kw})


def test_edge_values_of_the_limits_are_accepted():
    """A limit under 1 km², one polygon per processing, no margin and a free model are
    all valid: each plans, and the plan meets the limits exactly as given."""
    gdf = _gdf(shapely.box(10, 10, 10.02, 10.01))
    tiles = plan(gdf, area_limit_km2=0.6, max_aois=1, safety_margin=0.0, price_per_km2=0)
    check_plan(tiles, prepare_aois(gdf), 0.6, 1, margin=0.0, price=0)
    assert (tiles["planned_credits"] == 0).all()
    assert tiles.attrs["summary"]["safety_margin"] == 0.0
    assert tiles["processing_area_km2"].max() > 0.6 * 0.995  # the margin really is 0


def _plan_frame(attrs=None):
    """A plan as :func:`plan` returns it, written by hand: rows a (30 + 20 km² in two
    processings), b (50 km²), c (0.25 km²)."""
    frame = gpd.GeoDataFrame(
        {
            "row": ["a", "a", "b", "c"],
            "processing": [0, 1, 2, 3],
            "area_km2": [30.0, 20.0, 50.0, 0.25],
        },
        geometry=[shapely.box(i, 0, i + 0.1, 0.1) for i in range(4)],
        crs=4326,
    )
    if attrs is not None:
        frame.attrs["summary"] = attrs
    return frame


def test_summarize_counts_bounds_and_credits_by_the_documented_rules():
    s = summarize(_plan_frame(), area_limit_km2=50, price_per_km2=2, max_aois=7)
    assert s["processings"] == 4 and s["tiles"] == 4 and s["rows"] == 3
    assert s["total_area_km2"] == 100.25
    assert s["area_limit_km2"] == 50 and s["max_aois"] == 7 and s["price_per_km2"] == 2
    # Σ over rows of ⌈row area ÷ limit⌉: a row of exactly one limit needs one processing
    assert s["processings_bound"] == 1 + 1 + 1
    assert s["processings_lower_bound"] == 3  # ⌈100.25 ÷ 50⌉
    assert s["processings_ratio"] == 4 / 3
    assert s["mean_fill"] == 100.25 / (4 * 50)
    # ⌈max(area, 1) × price⌉ per processing: 60 + 40 + 100 + 2
    assert s["planned_credits"] == 202
    assert s["credits_bound"] == 200.5
    assert s["credits_ratio"] == 202 / 200.5


def test_summarize_defaults_to_the_plans_own_figures():
    frame = _plan_frame({"area_limit_km2": 100, "price_per_km2": 1, "max_aois": 3})
    s = summarize(frame)
    assert (s["area_limit_km2"], s["price_per_km2"], s["max_aois"]) == (100, 1, 3)
    assert s["processings_bound"] == 1 + 1 + 1 and s["processings_lower_bound"] == 2
    assert s["planned_credits"] == 30 + 20 + 50 + 1
    s = summarize(frame, area_limit_km2=25, price_per_km2=0, max_aois=9)
    assert (s["area_limit_km2"], s["max_aois"]) == (25, 9)
    assert s["processings_bound"] == 2 + 2 + 1
    assert s["planned_credits"] == 0 and math.isnan(s["credits_ratio"])


def test_summarize_without_limit_or_price_has_only_counts():
    s = summarize(_plan_frame())
    assert s["processings"] == 4 and s["area_limit_km2"] is None
    for key in ("processings_bound", "mean_fill", "planned_credits", "credits_bound"):
        assert key not in s


@pytest.mark.parametrize("columns", [True, False], ids=["plan-columns", "no-columns"])
def test_summary_of_an_empty_plan(columns):
    """No tiles, whether the empty frame keeps the plan's columns or has none at all
    (a bare ``GeoDataFrame()``): zeros, and NaN for the ratios."""
    empty = _plan_frame().iloc[:0] if columns else gpd.GeoDataFrame()
    s = summarize(empty, area_limit_km2=25, price_per_km2=13)
    assert (s["processings"], s["tiles"], s["rows"]) == (0, 0, 0)
    assert s["total_area_km2"] == 0.0 and isinstance(s["total_area_km2"], float)
    assert s["processings_bound"] == 0 and s["processings_lower_bound"] == 0
    assert math.isnan(s["processings_ratio"]) and math.isnan(s["mean_fill"])
    assert s["planned_credits"] == 0 and s["credits_bound"] == 0.0
    assert math.isnan(s["credits_ratio"])


# ---------------------------------------------------------------- ids, order, log
def test_tile_ids_survive_float_noise_and_name_the_row():
    """Ids hash the row label and the tile's coordinates rounded to 1e-10°: the same
    field read back with 2e-11° of noise keeps its ids, another label gets others."""
    field = shapely.box(10.1, 10.2, 10.12, 10.21)  # fits whole: the tile is the field
    noisy = shapely.affinity.translate(field, 2e-11, -2e-11)
    a = plan(_gdf(field, index=["a"]), area_limit_km2=25)
    assert len(a) == 1 and a.geometry.iloc[0].equals(field)
    assert (
        plan(_gdf(noisy, index=["a"]), area_limit_km2=25)["tile_id"].tolist()
        == a["tile_id"].tolist()
    )
    other = plan(_gdf(field, index=["b"]), area_limit_km2=25)["tile_id"].iloc[0]
    assert other != a["tile_id"].iloc[0]
    for tid in (a["tile_id"].iloc[0], other):
        assert len(tid) == 16 and int(tid, 16) >= 0


def test_processings_are_numbered_in_the_rows_order():
    """Packing takes the largest pieces first, yet the processings are numbered in the
    order of the rows they hold (a processing's first tile comes from a row no later
    than the next processing's), and within a processing the tiles follow the rows."""
    gdf = _gdf(
        *[shapely.box(10 + 0.05 * i, 10, 10 + 0.05 * i + 0.002, 10.002) for i in range(6)],
        shapely.box(11, 10, 11.2, 10.1),  # the largest row last
        index=[f"r{i}" for i in range(7)],
    )
    tiles = plan(gdf, area_limit_km2=25, max_aois=3)
    pos = tiles["row"].map({f"r{i}": i for i in range(7)})
    first = pos.groupby(tiles["processing"]).first()
    assert first.is_monotonic_increasing and first.iloc[0] == 0
    for _, grp in pos.groupby(tiles["processing"]):
        assert grp.is_monotonic_increasing


def test_plan_logs_its_counts(caplog):
    gdf = _gdf(shapely.box(30, 50, 30.1, 50.1), shapely.box(31, 50, 31.01, 50.01))
    with caplog.at_level("INFO", logger="mapflow_geo.tiling"):
        tiles = plan(gdf, area_limit_km2=25)
    n, m = len(tiles), tiles["processing"].nunique()
    assert f"planned {n} tile(s) in {m} processing(s) for 2 row(s)" in caplog.messages


# ---------------------------------------------------------------- the safety net
def _piece(geom, key=(0, 0)):
    from mapflow_geo.tiling import _Piece

    a = _geod_area(geom)
    return _Piece(0, key, geom, a, geom.bounds)


def _geod_area(g):
    x, y = g.exterior.coords.xy
    a = abs(GEOD.polygon_area_perimeter(x, y)[0])
    for r in g.interiors:
        hx, hy = r.coords.xy
        a -= abs(GEOD.polygon_area_perimeter(hx, hy)[0])
    return a / 1e6


@pytest.mark.parametrize(
    "geom",
    [
        shapely.box(10, 40, 10.4, 40.1),  # wide
        shapely.box(10, 40, 10.1, 40.4),  # tall
        shapely.Polygon([(0, 0), (0.3, 0.05), (0.25, 0.3), (0.1, 0.12), (0.02, 0.2)]),
        shapely.Polygon([(0, 0), (1, 1), (1.002, 1), (0.002, 0)]),  # a diagonal sliver
    ],
)
def test_a_piece_over_the_limits_is_bisected_until_every_part_fits(geom):
    """The planner's last resort (no cut is known to need it): a piece over the area or
    bbox rule is halved across its longer side until every part meets both; the parts
    cover it exactly, each knowing its own geodesic area."""
    from mapflow_geo.tiling import _ensure_fit

    cap = 24.0
    big = _piece(geom)
    assert big.area > cap or _box_km2(*geom.bounds) > cap
    small = _piece(shapely.box(20, 20, 20.01, 20.01), key=(1, 0))
    out = _ensure_fit([big, small], cap)
    assert out[-1] is small  # a piece that fits is kept as it is, in its place
    parts = out[:-1]
    assert len({p.key for p in out}) == len(out)
    for p in parts:
        assert p.row == 0 and p.key[:2] == (0, 0)
        assert p.geom.geom_type == "Polygon"
        assert math.isclose(p.area, _geod_area(p.geom), rel_tol=1e-12)
        assert p.bounds == p.geom.bounds
        assert p.area <= cap and _box_km2(*p.bounds) <= cap
    union = shapely.union_all([p.geom for p in parts])
    assert shapely.symmetric_difference(union, geom).area <= 1e-12 * geom.area
    assert math.isclose(sum(p.geom.area for p in parts), geom.area, rel_tol=1e-12)


@pytest.mark.parametrize("bounds,n", [((10, 40, 10.4, 40.1), 4), ((10, 40, 10.1, 40.4), 4)])
def test_bisection_halves_the_longer_side(bounds, n):
    """A box four cells long in one direction and one cell in the other becomes four
    equal parts along its length (halving the short side would need more)."""
    from mapflow_geo.tiling import _ensure_fit

    box = shapely.box(*bounds)
    cap = _box_km2(*bounds) / n * 1.01
    parts = _ensure_fit([_piece(box)], cap)
    assert len(parts) == n
    x0, y0, x1, y1 = bounds
    wide = (x1 - x0) * math.cos(math.radians((y0 + y1) / 2)) > y1 - y0
    for k, p in enumerate(sorted(parts, key=lambda p: p.bounds)):
        if wide:
            want = (x0 + k * (x1 - x0) / n, y0, x0 + (k + 1) * (x1 - x0) / n, y1)
        else:
            want = (x0, y0 + k * (y1 - y0) / n, x1, y0 + (k + 1) * (y1 - y0) / n)
        assert np.allclose(p.bounds, want, rtol=0, atol=1e-12)


def test_a_tile_over_the_limits_never_leaves_the_planner():
    """The frame's last check: a tile over the limit (which no cut makes) is an internal
    error, not a processing Mapflow would refuse."""
    from mapflow_geo.exceptions import PlanError
    from mapflow_geo.tiling import _Bin, _tiles_frame

    for geom in (shapely.box(10, 40, 10.1, 40.1), shapely.Polygon([(0, 0), (1, 1), (1, 1.001)])):
        b = _Bin()
        b.tiles.append(_piece(geom))
        b.used = b.tiles[0].area
        bbox = _box_km2(*geom.bounds)
        cap = (b.used + bbox) / 2 if bbox > 2 * b.used else b.used * 0.999
        with pytest.raises(PlanError, match="internal error"):
            _tiles_frame([b], ["r"], cap, None)
        assert len(_tiles_frame([b], ["r"], bbox * (1 + 1e-13), None)) == 1


@pytest.mark.parametrize(
    "lat,w,h,k",
    [
        (0, 0.1, 0.03, 2),
        (0, 0.2, 0.05, 5),
        (0, 0.3, 0.08, 12),
        (45, 0.05, 0.2, 4),
        (45, 0.07, 0.07, 2),
    ],
)
def test_a_rectangle_of_a_few_limits_becomes_equal_area_strips(lat, w, h, k):
    """Where the grid would leave a leftover processing, the rectangle is cut across its
    width into ⌈area ÷ cap⌉ strips of one geodesic area each (pyproj), one per
    processing, each as tall as the rectangle."""
    box = shapely.box(10, lat, 10 + w, lat + h)
    tiles = plan(_gdf(box), area_limit_km2=25)
    check_plan(tiles, prepare_aois(_gdf(box)), 25, 10)
    areas = np.array([_geod_area(g) for g in tiles.geometry])
    assert math.ceil(_geod_area(box) / (25 * 0.995)) == k == len(tiles)
    assert tiles["processing"].nunique() == k
    assert areas.max() - areas.min() <= 1e-9 * areas.max()
    b = tiles.bounds
    assert np.allclose(b["miny"], lat, atol=1e-12) and np.allclose(b["maxy"], lat + h, atol=1e-12)


@pytest.mark.parametrize("lon", [-120.0, 0.0, 47.0, 100.0, 170.0])
def test_a_polygon_that_fits_whole_is_one_tile_as_drawn(lon):
    """A polygon whose area and bbox area are under the limit is not cut, wherever it
    lies: its one tile is the polygon vertex for vertex, though it is taller than a band
    of the grid and wider than a cell."""
    cap = 25 * 0.995
    ky = 1 / 111.0
    kx = ky / math.cos(math.radians(40))
    star = shapely.Polygon(
        [
            (lon, 40),
            (lon + 3 * kx, 40 + 1 * ky),
            (lon + 1.2 * kx, 40 + 6.5 * ky),
            (lon, 40 + 3 * ky),
        ]
    )
    assert _geod_area(star) < cap and _box_km2(*star.bounds) < cap
    tiles = plan(_gdf(star), area_limit_km2=25)
    assert len(tiles) == 1
    assert shapely.equals_exact(
        shapely.normalize(tiles.geometry.iloc[0]), shapely.normalize(star), tolerance=1e-12
    )


@pytest.mark.parametrize(
    "bounds",
    [
        (10.0, 40.0, 10.0625, 40.03125),
        (-60.0, -20.03125, -59.9375, -20.0),
        (100.0, 30.0, 100.03125, 30.0625),
    ],
)
def test_a_box_exactly_at_the_limit_is_one_tile_as_drawn(bounds):
    """The rules are ≤: a box whose geodesic area and bbox area (pyproj) both equal the
    limit, with no margin, is accepted whole, its four corners as drawn, in one
    processing. (Coordinates are binary fractions: preparing the row keeps them.)"""
    box = shapely.box(*bounds)
    limit = _geod_area(box)
    assert limit == _box_km2(*bounds)
    tiles = plan(_gdf(box), area_limit_km2=limit, safety_margin=0.0)
    assert len(tiles) == 1
    got = shapely.normalize(tiles.geometry.iloc[0])
    assert shapely.equals_exact(got, shapely.normalize(box), tolerance=0.0)


def test_a_processing_is_not_overfilled_by_a_hair():
    """Three fields, no two touching, a > c > b, under a limit 5·10⁻¹³ (relative) below
    a + b, no margin: b cannot join a, it joins c; every processing's geodesic area
    (pyproj) stays within the limit."""
    a = shapely.box(10.0, 40.0, 10.0625, 40.03125)
    c = shapely.box(10.25, 40.0, 10.296875, 40.03125)
    b = shapely.box(10.5, 40.0, 10.53125, 40.03125)
    area_a, area_b, area_c = (_geod_area(g) for g in (a, b, c))
    limit = (area_a + area_b) * (1 - 5e-13)
    assert area_a > area_c > area_b and area_a + area_b > limit >= area_c + area_b
    tiles = plan(_gdf(a, c, b, index=["a", "c", "b"]), area_limit_km2=limit, safety_margin=0.0)
    for _, grp in tiles.groupby("processing"):
        assert sum(_geod_area(g) for g in grp.geometry) <= limit
    rows = tiles.groupby("processing")["row"].apply(sorted).tolist()
    assert sorted(rows) == [["a"], ["b", "c"]]
