"""Property tests: every guarantee of :func:`mapflow_geo.tiling.plan` on generated AOIs."""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from mapflow_geo.aoi import prepare_aois
from mapflow_geo.exceptions import AOIWarning
from mapflow_geo.tiling import plan

GEOD = Geod(ellps="WGS84")
KM_PER_DEG = 111.32


# ----------------------------------------------------------------------- checker
def _geod_area_km2(poly: shapely.Polygon) -> float:
    x, y = poly.exterior.coords.xy
    a = abs(GEOD.polygon_area_perimeter(x, y)[0])
    for r in poly.interiors:
        hx, hy = r.coords.xy
        a -= abs(GEOD.polygon_area_perimeter(hx, hy)[0])
    return a / 1e6


def _geod_bbox_km2(poly: shapely.Polygon) -> float:
    x0, y0, x1, y1 = poly.bounds
    return abs(GEOD.polygon_area_perimeter([x0, x1, x1, x0], [y0, y0, y1, y1])[0]) / 1e6


def _ceil_clear(x: float) -> int | None:
    """⌈x⌉, or None when ``x`` lies so close to an integer that float noise decides
    (areas summed in another order; the charge's own 10⁻⁹ relative allowance)."""
    return None if abs(x - round(x)) < max(1e-6, 1e-8 * abs(x)) else math.ceil(x)


def check_plan(tiles, prepared, limit, max_aois, margin=0.005, price=None, sliver=0.01):
    """Assert every documented guarantee of a plan against the prepared rows (and, with
    ``price``, its credits; with ``sliver``, that no small tile was left beside a tile of
    its row it could have joined)."""
    cap = limit * (1 - margin)
    check_sums(tiles, limit, max_aois, price)
    if sliver:
        check_slivers(tiles, cap * sliver, cap)
    assert tiles.crs is not None and tiles.crs.equals("EPSG:4326")
    for col in ("row", "tile_id", "processing", "area_km2", "bbox_area_km2", "geometry"):
        assert col in tiles.columns
    assert tiles["tile_id"].is_unique
    geoms = list(tiles.geometry.values)
    for g, a, b in zip(geoms, tiles["area_km2"], tiles["bbox_area_km2"], strict=True):
        assert g.geom_type == "Polygon" and g.is_valid and not g.is_empty
        ga, gb = _geod_area_km2(g), _geod_bbox_km2(g)
        assert math.isclose(ga, a, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(gb, b, rel_tol=1e-9, abs_tol=1e-12)
        assert ga <= cap * (1 + 1e-12) and gb <= cap * (1 + 1e-12), (ga, gb, cap)
        xs = shapely.get_coordinates(g)
        assert np.abs(xs[:, 0]).max() <= 180 and np.abs(xs[:, 1]).max() <= 85
    for _, grp in tiles.groupby("processing"):
        gs = list(grp.geometry.values)
        assert len(gs) <= max_aois
        assert sum(_geod_area_km2(g) for g in gs) <= cap * (1 + 1e-12)
        if len(gs) > 1:
            u = shapely.union_all(gs)
            assert u.geom_type == "MultiPolygon" and len(u.geoms) == len(gs)
            tree = shapely.STRtree(gs)
            left, right = tree.query(gs, predicate="dwithin", distance=1e-9)
            assert (left == right).all(), "two polygons of one processing touch"
    # each row: tiles disjoint, union equals the prepared row
    assert set(tiles["row"]) == set(prepared["row"])
    for label, geom in zip(prepared["row"], prepared.geometry.values, strict=True):
        gs = list(tiles.loc[tiles["row"] == label].geometry.values)
        u = shapely.union_all(gs)
        total = sum(g.area for g in gs)
        # float noise along the outline: coordinates near ±180 carry ~3e-14° of rounding;
        # it only matters for slivers thinner than ~1e-5° (≈ 1 m)
        noise = 1e-13 * geom.length
        assert abs(total - u.area) <= 1e-9 * u.area + noise, "tiles of a row overlap"
        assert abs(u.area - geom.area) <= 1e-9 * geom.area + noise, (u.area, geom.area)
        diff = shapely.symmetric_difference(u, geom).area
        assert diff <= 1e-9 * geom.area + noise, (diff, geom.area)


def check_sums(tiles, limit, max_aois, price):
    """The per-processing columns and the summary, recomputed from the tiles' geometry
    with pyproj: counts, areas, ⌈area ÷ limit⌉ bounds and ⌈max(area, 1) × price⌉."""
    areas = np.array([_geod_area_km2(g) for g in tiles.geometry.values], dtype=float)
    df = pd.DataFrame(
        {"row": tiles["row"].to_numpy(), "p": tiles["processing"].to_numpy(), "a": areas}
    )
    per_proc = df.groupby("p")["a"].sum()
    assert np.allclose(tiles["processing_area_km2"], df["p"].map(per_proc), rtol=1e-9, atol=0)
    assert (tiles["processing_aois"].to_numpy() == df["p"].map(df.groupby("p").size())).all()
    if len(tiles):
        assert sorted(set(df["p"])) == list(range(df["p"].max() + 1))
    s = tiles.attrs["summary"]
    assert s["processings"] == len(per_proc) and s["tiles"] == len(tiles)
    assert s["rows"] == df["row"].nunique()
    assert math.isclose(s["total_area_km2"], areas.sum(), rel_tol=1e-9, abs_tol=1e-12)
    assert s["area_limit_km2"] == limit and s["max_aois"] == max_aois
    bound = [_ceil_clear(a / limit) for a in df.groupby("row")["a"].sum()]
    if None not in bound:
        assert s["processings_bound"] == sum(bound)
    lower = _ceil_clear(areas.sum() / limit)
    if lower is not None:
        assert s["processings_lower_bound"] == lower
    if len(tiles):
        assert math.isclose(s["mean_fill"], areas.sum() / (len(per_proc) * limit), rel_tol=1e-9)
        if None not in bound:
            assert math.isclose(s["processings_ratio"], len(per_proc) / sum(bound))
    if price is None:
        assert tiles["planned_credits"].isna().all() and "planned_credits" not in s
        return
    assert s["price_per_km2"] == price
    want = {p: _ceil_clear(max(a, 1.0) * price) for p, a in per_proc.items()}
    got = tiles.groupby("processing")["planned_credits"].first()
    for p, w in want.items():
        if w is not None:
            assert got[p] == w, (p, got[p], w)
    if None not in want.values():
        assert s["planned_credits"] == sum(want.values())
    assert math.isclose(s["credits_bound"], areas.sum() * price, rel_tol=1e-9, abs_tol=1e-12)


def check_slivers(tiles, small, cap):
    """No tile under ``small`` km² shares a border with a tile of its row such that the
    two together are one polygon within the area and bbox limits (it would have been
    merged into it)."""
    geoms = tiles.geometry.values
    rows = tiles["row"].to_numpy()
    areas = np.array([_geod_area_km2(g) for g in geoms])
    tree = shapely.STRtree(geoms)
    for i in np.flatnonzero(areas < small):
        for j in tree.query(geoms[i], predicate="dwithin", distance=1e-9):
            if j == i or rows[j] != rows[i]:
                continue
            if shapely.intersection(geoms[i].boundary, geoms[j].boundary).length <= 1e-9:
                continue
            u = shapely.union_all([geoms[i], geoms[j]])
            fits = (
                u.geom_type == "Polygon"
                and _geod_area_km2(u) <= cap * (1 - 1e-9)
                and _geod_bbox_km2(u) <= cap * (1 - 1e-9)
            )
            assert not fits, f"a small tile ({areas[i]:.3g} km²) left beside one it fits with"


# ---------------------------------------------------------------------- strategies
def _wrap(x: np.ndarray, mode: str) -> np.ndarray:
    if mode == "pm180":
        return (x + 180.0) % 360.0 - 180.0
    if mode == "0360":
        return x % 360.0
    return x


@st.composite
def aoi_frames(draw, max_rows: int = 3):
    """Small frames of varied polygons: stars with holes, multiparts, bowties, slivers,
    near the poles, across the antimeridian, tiny to large, some in projected CRSs."""
    limit = draw(st.sampled_from([1.0, 5.0, 25.0, 50.0, 100.0]))
    max_aois = draw(st.sampled_from([1, 2, 3, 10]))
    side = math.sqrt(limit)
    region = draw(st.sampled_from(["mid", "pole", "south_pole", "antimeridian", "equator"]))
    lat0 = {
        "mid": draw(st.floats(-60, 60)),
        "pole": draw(st.floats(70, 84.5)),
        "south_pole": draw(st.floats(-84.5, -70)),
        "antimeridian": draw(st.floats(-70, 70)),
        "equator": draw(st.floats(-1, 1)),
    }[region]
    lon0 = draw(st.floats(179.5, 180.5)) if region == "antimeridian" else draw(st.floats(-179, 179))
    wrap = draw(st.sampled_from(["pm180", "0360"])) if region == "antimeridian" else "none"
    n_rows = draw(st.integers(1, max_rows))
    geoms = []
    for _ in range(n_rows):
        kind = draw(st.sampled_from(["star", "star_hole", "multi", "bowtie", "sliver", "rect"]))
        size_km = side * draw(st.sampled_from([0.01, 0.3, 0.8, 1.5, 3.0, 6.0]))
        dx_km, dy_km = draw(st.floats(-2, 2)) * side, draw(st.floats(-2, 2)) * side
        cy = lat0 + dy_km / KM_PER_DEG
        kx = 1.0 / (KM_PER_DEG * max(math.cos(math.radians(cy)), 0.05))
        ky = 1.0 / KM_PER_DEG
        cx = lon0 + dx_km * kx

        def star(cx, cy, r_km, n, hole=False, kx=kx, ky=ky):
            ang = np.sort(
                np.array(
                    draw(st.lists(st.floats(0, 2 * math.pi), min_size=n, max_size=n, unique=True))
                )
            )
            rad = np.array(draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n)))
            pts = np.c_[cx + r_km * kx * rad * np.cos(ang), cy + r_km * ky * rad * np.sin(ang)]
            holes = []
            if hole:
                holes = [
                    np.c_[cx + 0.2 * r_km * kx * np.cos(ang), cy + 0.2 * r_km * ky * np.sin(ang)]
                ]
            return pts, holes

        n = draw(st.integers(3, 9))
        if kind in ("star", "star_hole"):
            shell, holes = star(cx, cy, size_km, n, hole=(kind == "star_hole"))
            rings = [(shell, holes)]
        elif kind == "multi":
            rings = [
                star(cx + i * 1.2 * size_km * kx * draw(st.sampled_from([1, 2])), cy, size_km, n)
                for i in range(draw(st.integers(2, 3)))
            ]
        elif kind == "bowtie":
            w, h = size_km * kx, size_km * ky
            rings = [(np.array([[cx, cy], [cx + w, cy + h], [cx + w, cy], [cx, cy + h]]), [])]
        elif kind == "sliver":
            length = size_km * draw(st.sampled_from([2.0, 5.0]))
            width = draw(st.sampled_from([0.001, 0.01, 0.05])) * side
            sgn = draw(st.sampled_from([1, -1]))
            rings = [
                (
                    np.array(
                        [
                            [cx, cy],
                            [cx + length * kx, cy + sgn * length * ky],
                            [cx + length * kx + width * kx, cy + sgn * length * ky],
                            [cx + width * kx, cy],
                        ]
                    ),
                    [],
                )
            ]
        else:
            w, h = size_km * kx, size_km * ky * draw(st.sampled_from([0.2, 1.0, 3.0]))
            rings = [(np.array([[cx, cy], [cx + w, cy], [cx + w, cy + h], [cx, cy + h]]), [])]
        polys = []
        for shell, holes in rings:
            if np.abs(shell[:, 1]).max() > 84.99:
                continue
            shell = shell.copy()
            shell[:, 0] = _wrap(shell[:, 0], wrap)
            hs = []
            for h in holes:
                h = h.copy()
                h[:, 0] = _wrap(h[:, 0], wrap)
                hs.append(h)
            polys.append(shapely.Polygon(shell, hs))
        assume(polys)
        geoms.append(polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys))
    assume(all(np.abs(shapely.get_coordinates(g)[:, 0]).max() < 360 for g in geoms))
    if wrap == "none":
        geoms = [shapely.Polygon() if g is None else g for g in geoms]
        assume(all(np.abs(shapely.get_coordinates(g)[:, 0]).max() <= 180 for g in geoms))
    gdf = gpd.GeoDataFrame(
        {"name": [f"r{i}" for i in range(len(geoms))]},
        geometry=geoms,
        crs=4326,
        index=[f"r{i}" for i in range(len(geoms))],
    )
    crs = "EPSG:4326"
    if region in ("mid", "equator"):
        crs = draw(st.sampled_from(["EPSG:4326", "EPSG:3857", "utm", "ESRI:54009", "EPSG:4269"]))
        if crs == "utm":
            zone = int((lon0 + 180) // 6) % 60 + 1
            crs = f"EPSG:{32600 + zone if lat0 >= 0 else 32700 + zone}"
    elif region == "pole" and draw(st.booleans()):
        crs = "EPSG:3413"
    if crs != "EPSG:4326":
        gdf = gdf.to_crs(crs)
    return gdf, limit, max_aois


def _plan_and_check(gdf, limit, max_aois):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AOIWarning)
        prepared = prepare_aois(gdf, input_errors="skip")
        assume(len(prepared) > 0)
        tiles = plan(
            gdf, area_limit_km2=limit, max_aois=max_aois, price_per_km2=13, input_errors="skip"
        )
    check_plan(tiles, prepared, limit, max_aois, price=13)
    return tiles


@settings(
    max_examples=500, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(aoi_frames())
def test_plan_guarantees(case):
    gdf, limit, max_aois = case
    _plan_and_check(gdf, limit, max_aois)


@settings(
    max_examples=100, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(aoi_frames(max_rows=2))
def test_plan_deterministic(case):
    gdf, limit, max_aois = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AOIWarning)
        try:
            a = plan(gdf, area_limit_km2=limit, max_aois=max_aois, input_errors="skip")
        except Exception as exc:  # same input, same error
            with pytest.raises(type(exc)):
                plan(gdf.copy(), area_limit_km2=limit, max_aois=max_aois, input_errors="skip")
            return
        b = plan(gdf.copy(), area_limit_km2=limit, max_aois=max_aois, input_errors="skip")
    pd.testing.assert_frame_equal(a, b)


@st.composite
def field_sets(draw):
    """Many small rows on a jittered grid: separate, touching or overlapping."""
    n = draw(st.integers(2, 40))
    gap = draw(st.sampled_from([0.0, 0.001, 0.01]))  # 0 → neighbours touch
    size = draw(st.sampled_from([0.0005, 0.003, 0.01]))
    overlap = draw(st.booleans())
    lon0, lat0 = draw(st.floats(-170, 170)), draw(st.floats(-80, 80))
    cols = max(1, int(math.sqrt(n)))
    geoms = []
    for i in range(n):
        x = lon0 + (i % cols) * (size + gap)
        y = lat0 + (i // cols) * (size + gap)
        grow = size * 0.5 if overlap and i % 3 == 0 else 0.0
        geoms.append(shapely.box(x, y, x + size + grow, y + size + grow))
    limit = draw(st.sampled_from([1.0, 5.0, 25.0]))
    max_aois = draw(st.sampled_from([1, 3, 10]))
    gdf = gpd.GeoDataFrame(geometry=geoms, crs=4326, index=[f"f{i}" for i in range(n)])
    return gdf, limit, max_aois, gap > 0 and not overlap


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(field_sets())
def test_many_small_rows(case):
    gdf, limit, max_aois, separate = case
    tiles = _plan_and_check(gdf, limit, max_aois)
    s = tiles.attrs["summary"]
    assert s["processings"] >= s["processings_lower_bound"]
    cap = limit * 0.995
    if separate and (tiles["bbox_area_km2"] < cap).all() and tiles["row"].is_unique:
        # separate rows that each fit: only the area and the polygon count bind
        n = len(tiles)
        total = tiles["area_km2"].sum()
        if total <= cap / 2:
            assert s["processings"] == math.ceil(n / max_aois)


# ------------------------------------------------------------------ antimeridian
SIDES = ("across", "touch_west", "touch_east", "both_sides")


def _antimeridian_frame(side, notation, lat0, r_km, off, ang, rad, on_meridian):
    """One row on or across ±180: a star around longitude 180 (``off`` in radii), its
    vertices listed in ``on_meridian`` moved onto the meridian. ``touch_west`` keeps what
    lies west of 180 (it touches +180), ``touch_east`` what lies east (it touches −180),
    ``both_sides`` is both as two parts; written in ±180° (``pm180``) or 0–360°."""
    kx = 1.0 / (KM_PER_DEG * math.cos(math.radians(lat0)))
    ang, rad = np.sort(np.asarray(ang, dtype=float)), np.asarray(rad, dtype=float)
    x = 180.0 + off * r_km * kx + r_km * kx * rad * np.cos(ang)
    y = lat0 + r_km / KM_PER_DEG * rad * np.sin(ang)
    x[[i for i in on_meridian if i < len(x)]] = 180.0
    west, east = np.minimum(x, 180.0), np.maximum(x, 180.0)

    def write(xs):
        return np.where(xs >= 180.0, xs - 360.0, xs) if notation == "pm180" else xs

    rings = {
        "across": [x],
        "touch_west": [west],
        "touch_east": [east],
        "both_sides": [west, east],
    }[side]
    polys = [shapely.Polygon(np.c_[write(xs), y]) for xs in rings]
    geom = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    return gpd.GeoDataFrame({"name": ["r0"]}, geometry=[geom], crs=4326, index=["r0"])


@st.composite
def antimeridian_cases(draw):
    n = draw(st.integers(3, 9))
    return dict(
        side=draw(st.sampled_from(SIDES)),
        notation=draw(st.sampled_from(["pm180", "0360"])),
        lat0=draw(st.floats(-80, 80)),
        r_km=draw(st.sampled_from([0.3, 1.0, 3.0, 10.0])),
        off=draw(st.floats(-1, 1)),
        ang=draw(st.lists(st.floats(0, 2 * math.pi), min_size=n, max_size=n, unique=True)),
        rad=draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n)),
        on_meridian=draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True)),
        limits=draw(st.sampled_from([0.5, 1.1, 1.6, 2.5, 4.0, 8.0, 11.5])),
        max_aois=draw(st.sampled_from([1, 2, 3, 10])),
    )


@settings(max_examples=100, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=antimeridian_cases())
@example(
    case=dict(side="touch_east", notation="pm180", lat0=-16.8, r_km=3.0, off=0.0,
              ang=[0.3, 1.9, 3.4, 5.0], rad=[1.0, 0.6, 0.9, 0.7], on_meridian=[1, 2],
              limits=2.5, max_aois=10)
)  # fmt: skip
def test_plan_on_and_across_the_antimeridian(case):
    """Planned on each side of ±180, every guarantee kept, whatever the notation."""
    case = dict(case)
    limits, max_aois = case.pop("limits"), case.pop("max_aois")
    gdf = _antimeridian_frame(**case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AOIWarning)
        prepared = prepare_aois(gdf, input_errors="skip")
        assume(len(prepared) > 0)
        limit = float(prepared["area_km2"].sum()) / limits
        assume(limit > 0.01)
        tiles = plan(gdf, area_limit_km2=limit, max_aois=max_aois, price_per_km2=13)
    check_plan(tiles, prepared, limit, max_aois, price=13)
    b = tiles.bounds
    assert (b["minx"] >= -180.0).all() and (b["maxx"] <= 180.0).all()
    assert ((b["maxx"] - b["minx"]) < 180.0).all(), "a tile spans the antimeridian"
    if case["side"] in ("touch_west", "touch_east"):  # one side only: never wrapped over
        assert (b["minx"] > 0).all() if case["side"] == "touch_west" else (b["maxx"] < 0).all()


@st.composite
def holes_touching_the_outline(draw):
    """A triangle with a triangular hole touching one of its edges at a point (valid),
    its first corner on −180, on +180 or anywhere, from 0.05° to 20° across."""
    where = draw(st.sampled_from(["-180", "+180", "any"]))
    x0 = {"-180": -180.0, "+180": 180.0, "any": draw(st.floats(-150, 150))}[where]
    sign = -1.0 if where == "+180" else 1.0
    y0 = draw(st.floats(-80, 60))
    size = draw(st.sampled_from([0.05, 0.5, 5.0, 20.0]))
    b = (x0 + sign * size * draw(st.floats(0.1, 1)), y0 + size * draw(st.floats(0.1, 1)))
    c = (x0 + sign * size * draw(st.floats(0.1, 1)), y0 + size * draw(st.floats(-0.5, 0.05)))
    a = (x0, y0)
    t = draw(st.floats(0.1, 0.9))
    p = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
    m = ((a[0] + c[0]) / 2, (a[1] + c[1]) / 2)
    s1, s2 = draw(st.floats(0.1, 0.9)), draw(st.floats(0.1, 0.9))
    q = (p[0] + s1 * (c[0] - p[0]), p[1] + s1 * (c[1] - p[1]))
    r = (p[0] + s2 * (m[0] - p[0]), p[1] + s2 * (m[1] - p[1]))
    limits = draw(st.sampled_from([1.1, 2.5, 4.0, 8.0]))
    return [a, b, c], [p, q, r], limits, draw(st.sampled_from([1, 3, 10]))


@settings(max_examples=100, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=holes_touching_the_outline())
# a hole touching a slanted edge, the shell on −180: valid in degrees, not in the
# equal-area plane where strips are measured (the hole pokes through the bent edge)
@example(case=([(-180, 10), (-170, 60), (-160, 10)], [(-175, 35), (-172, 30), (-174, 28)], 2.5, 10))
@example(
    case=(
        [(-180, 0), (-175, 5), (-175, 0)],
        [(-177.5, 2.5), (-176.25, 1.25), (-177.5, 1.25)],
        1.1,
        1,
    )
)
def test_plan_holes_touching_the_outline(case):
    shell, hole, limits, max_aois = case
    poly = shapely.Polygon(shell, [hole])
    assume(poly.area > 0)
    gdf = gpd.GeoDataFrame({"name": ["r0"]}, geometry=[poly], crs=4326, index=["r0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AOIWarning)
        prepared = prepare_aois(gdf, input_errors="skip")
        assume(len(prepared) > 0)
        limit = float(prepared["area_km2"].sum()) / limits
        tiles = plan(gdf, area_limit_km2=limit, max_aois=max_aois, price_per_km2=13)
    check_plan(tiles, prepared, limit, max_aois, price=13)
