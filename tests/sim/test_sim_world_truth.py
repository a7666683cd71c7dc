"""The realistic world and its ground-truth oracle (``world.truth`` / ``world.pieces``).

Attached buildings share walls exactly, big objects span tiles, every object has a stable
``truth_id``, and results are exactly the truth clipped to the AOI.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape
from support.objects import iou
from support.sim_http import box

from mapflow_geo.sim import world
from mapflow_geo.sim import world_urban as urban
from mapflow_geo.sim.geo import meters_per_degree
from mapflow_geo.sim.world_core import WorldOptions, decode_truth_ids


# ----------------------------------------------------------------------------- helpers
def urban_district(x: float, y: float, seed: int = 0, kind: int = urban.URBAN):
    """Bounds of the district of ``kind`` nearest to (x, y)."""
    d = urban.districts((x - 0.1, y - 0.1, x + 0.1, y + 0.1), seed, WorldOptions())
    sel = np.nonzero(d["kind"] == kind)[0]
    assert len(sel), "no district of that kind nearby"
    cx = d["lon0"][sel] + d["dlon"][sel] / 2
    cy = d["latc"][sel]
    n = sel[np.argmin((cx - x) ** 2 + (cy - y) ** 2)]
    lon0, lat0, dlon = d["lon0"][n], d["lat0"][n], d["dlon"][n]
    return (float(lon0), float(lat0), float(lon0 + dlon), float(lat0 + urban.DISTRICT_DEG))


def km_tiles(bounds, size_km: float = 1.0, offset=(0.0, 0.0)):
    """A grid of ≈ size_km tiles over ``bounds`` (shared edges are identical floats)."""
    x0, y0, x1, y1 = bounds
    my, mx = meters_per_degree((y0 + y1) / 2)
    dx, dy = size_km * 1000 / float(mx), size_km * 1000 / float(my)
    xs = x0 + offset[0] * dx + dx * np.arange(-1, int(np.ceil((x1 - x0) / dx)) + 2)
    ys = y0 + offset[1] * dy + dy * np.arange(-1, int(np.ceil((y1 - y0) / dy)) + 2)
    tiles = [
        shapely.box(xs[a], ys[b], xs[a + 1], ys[b + 1])
        for a in range(len(xs) - 1)
        for b in range(len(ys) - 1)
    ]
    region = shapely.box(*bounds)
    return [t for t in tiles if t.intersects(region) and t.intersection(region).area > 0]


def stitched_by_id(tiles, model, **kw):
    """Clip the world to each tile and union the pieces by truth id."""
    groups = defaultdict(list)
    for t in tiles:
        g, p = world.pieces(t, model, **kw)
        for geom, tid in zip(g, p["truth_id"].tolist(), strict=True):
            groups[tid].append(geom)
    return {tid: shapely.union_all(gs) for tid, gs in groups.items()}


@pytest.fixture(scope="module")
def city():
    """An urban district near the tests' usual place (37.6 E, 55.75 N)."""
    return urban_district(37.6, 55.75)


# ----------------------------------------------------------------------------- basics
def test_truth_is_deterministic_and_ids_unique():
    b = (37.55, 55.70, 37.62, 55.75)
    for model in ("buildings", "forest", "roads", "construction", "fields"):
        g1, p1 = world.truth(b, model, seed=3)
        g2, p2 = world.truth(b, model, seed=3)
        assert len(g1) == len(g2) > 0, model
        assert shapely.equals_exact(g1, g2, tolerance=0).all()
        for k in p1:
            assert np.array_equal(p1[k], p2[k]), (model, k)
        ids = p1["truth_id"]
        assert ids.dtype == np.int64 and len(np.unique(ids)) == len(ids), model
        assert shapely.is_valid(g1).all(), model
    g3, p3 = world.truth(b, "buildings", seed=4)
    g4, p4 = world.truth(b, "buildings", seed=3)
    assert not np.array_equal(np.sort(p3["truth_id"]), np.sort(p4["truth_id"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    x=st.floats(-170, 170),
    y=st.floats(-60, 60),
    w=st.floats(0.002, 0.03),
    h=st.floats(0.002, 0.02),
    fx=st.floats(0.1, 0.9),
    fy=st.floats(0.1, 0.9),
    model=st.sampled_from(["buildings", "forest", "roads", "fields"]),
)
def test_ids_stable_across_overlapping_bboxes(x, y, w, h, fx, fy, model):
    a = (x, y, x + w, y + h)
    b = (x + fx * w, y + fy * h, x + fx * w + w, y + fy * h + h)
    ga, pa = world.truth(a, model, seed=5)
    gb, pb = world.truth(b, model, seed=5)
    ia = dict(zip(pa["truth_id"].tolist(), range(len(ga)), strict=True))
    ib = dict(zip(pb["truth_id"].tolist(), range(len(gb)), strict=True))
    for tid in ia.keys() & ib.keys():
        assert shapely.equals_exact(ga[ia[tid]], gb[ib[tid]], tolerance=0)
        for k in pa:
            assert pa[k][ia[tid]] == pb[k][ib[tid]], k
    # an object of a that meets the overlap (with area / length) is in b too, and vice versa
    ov = shapely.box(*a).intersection(shapely.box(*b))
    for g, p, other in ((ga, pa, ib), (gb, pb, ia)):
        inter = shapely.intersection(g, ov)
        meets = (
            np.where(
                np.isin(shapely.get_type_id(g), (3, 6)), shapely.area(inter), shapely.length(inter)
            )
            > 0
        )
        assert all(t in other for t in p["truth_id"][meets].tolist())


def test_model_names_and_geojson(city):
    assert world.model_kind("🏠 Buildings") == "buildings"
    assert world.model_kind("🌲↕️ Forest with heights") == "forest_heights"
    assert world.model_kind("🚗 Roads") == "roads"
    with pytest.raises(ValueError):
        world.model_kind("lakes")
    fc = world.truth_geojson(",".join(map(str, city)), "🏠 Buildings", seed=0)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) > 500
    f = fc["features"][0]
    assert f["id"] == f["properties"]["truth_id"]
    assert {"truth_id", "area", "object_type", "class_id", "building_type", "group_id"} <= set(
        f["properties"]
    )
    with pytest.raises(TypeError):
        world.truth(city, "buildings", no_such_option=1)
    with pytest.raises(ValueError):
        world.truth(city, "roads", road_geometry="tubes")


# ----------------------------------------------------------------------------- buildings
def test_urban_district_has_attached_rows_sharing_walls_exactly(city):
    g, p = world.truth(city, "buildings", seed=0)
    my, mx = meters_per_degree((city[1] + city[3]) / 2)
    area_km2 = (city[2] - city[0]) * mx * (city[3] - city[1]) * my / 1e6
    assert 1000 < len(g) / area_km2 < 4000  # ≈ urban_density (2000 / km²)
    types = set(p["building_type"].tolist())
    assert {"perimeter", "terraced"} & types
    attached = p["group_id"] >= 0
    assert attached.mean() > 0.3
    # interiors never overlap anywhere
    tree = shapely.STRtree(g)
    left, right = tree.query(g, predicate="intersects")
    pair = left < right
    left, right = left[pair], right[pair]
    inter = shapely.intersection(g[left], g[right])
    assert (shapely.area(inter) == 0).all()
    assert shapely.relate_pattern(g[left], g[right], "F********").all()  # interiors disjoint
    # attached neighbours share a wall: a line of positive length, with identical vertices
    lines = np.isin(shapely.get_type_id(inter), (1, 5))
    assert lines.sum() > 0.5 * attached.sum()
    walls = shapely.length(inter[lines]) * float(my)  # ≈ metres (walls are 5–20 m)
    assert (walls > 3).mean() > 0.9
    for a, b in list(zip(left[lines], right[lines], strict=True))[:500]:
        ca = {tuple(c) for c in shapely.get_coordinates(g[a]).tolist()}
        cb = {tuple(c) for c in shapely.get_coordinates(g[b]).tolist()}
        assert len(ca & cb) >= 2, "a shared wall's end points are the same floats"
    # every attached group is one connected building block without overlaps
    for gid in np.unique(p["group_id"][attached])[:200]:
        members = g[p["group_id"] == gid]
        if len(members) < 2:
            continue
        u = shapely.union_all(members)
        assert u.geom_type == "Polygon", "attached buildings are connected through walls"
        assert abs(u.area - shapely.area(members).sum()) <= 1e-9 * u.area


def test_rows_cut_by_a_tile_seam_come_back_by_id(city):
    """Tiles through a city: pieces unioned by truth id are the whole buildings."""
    x0, y0, x1, y1 = city
    tiles = km_tiles(city, 0.35, offset=(0.37, 0.21))
    got = stitched_by_id(tiles, "buildings", seed=0)
    g, p = world.truth(city, "buildings", seed=0)
    region = shapely.box(*city)
    inside = shapely.within(g, region)
    assert inside.sum() > 1000
    cut = 0
    for geom, tid in zip(g[inside], p["truth_id"][inside].tolist(), strict=True):
        assert iou(got[tid], geom) >= 0.98
        assert abs(got[tid].area - geom.area) <= 1e-9 * geom.area
    for t in tiles:
        cut += int((shapely.intersects(g, t.boundary) & inside).sum())
    assert cut > 50  # the tiles really cut many (attached) buildings


def test_small_buildings_rule_on_whole_buildings(city):
    w = world.world_buildings(city, seed=0)
    tiny = w["area"] < world.MIN_BUILDING_AREA_M2
    assert tiny.any(), "the world holds some tiny buildings (sheds)"
    g, p = world.truth(city, "buildings", seed=0)
    assert (p["area"] >= 20).all()
    assert not set(w["truth_id"][tiny].tolist()) & set(p["truth_id"].tolist())
    # clipped pieces may be smaller than 20 m²; they are kept
    x0, y0, x1, y1 = city
    my, mx = meters_per_degree(y0)
    cut = shapely.bounds(g[len(g) // 2])[0] + 0.5 / float(mx)  # 0.5 m into a building
    seam = shapely.box(x0, y0, cut, y1)
    pg, pp = world.pieces(seam, "buildings", seed=0)
    assert (pp["piece_area"] < 20).any()
    assert (pp["area"] >= 20).all()  # ...whose whole building is not


def test_large_industrial_footprints_span_tiles():
    d = urban.districts((30.0, 50.0, 31.0, 50.5), 0, WorldOptions())
    n, h = np.nonzero(d["ind_has"] & (d["ind_hb"] >= 8))
    assert len(n), "some industrial districts hold a footprint 8 blocks long"
    n, h = n[0], h[0]
    bounds = (d["lon0"][n], d["lat0"][n], d["lon0"][n] + d["dlon"][n], d["lat0"][n] + 0.01)
    g, p = world.truth(bounds, "buildings", seed=0)
    ind = p["building_type"] == "industrial"
    my, mx = meters_per_degree(d["latc"][n])
    b = shapely.bounds(g[ind])
    extent = np.maximum((b[:, 2] - b[:, 0]) * mx, (b[:, 3] - b[:, 1]) * my)
    assert extent.max() > 1000  # longer than a 1 km tile
    assert p["area"][ind].max() > 100_000
    # it spans several tiles of a 1 km grid, and blocks under it hold nothing else
    big = g[ind][np.argmax(extent)]
    tiles = np.array(km_tiles(bounds, 1.0, offset=(0.5, 0.5)))
    assert shapely.intersects(tiles, big).sum() >= 2
    others = g[~ind]
    assert not shapely.intersects(others, big).any()


# ----------------------------------------------------------------------------- big objects
def test_forest_has_holes_and_patches_bigger_than_a_tile():
    b = (37.4, 55.6, 37.8, 55.8)
    g, p = world.truth(b, "forest", seed=0)
    assert shapely.is_valid(g).all()
    holes = shapely.get_num_interior_rings(g)
    assert (holes > 0).sum() >= 3
    assert np.array_equal(holes, p["holes"])
    assert (p["area"] > 1_000_000).any()  # larger than a 1 km² tile
    # holes lie inside their shell, and forest patches never touch each other
    tree = shapely.STRtree(g)
    left, right = tree.query(g, predicate="intersects")
    assert (left == right).all()
    # area excludes the clearings
    one = g[np.argmax(holes)]
    assert one.area < shapely.Polygon(one.exterior).area


def test_roads_are_long_and_cross_many_tiles():
    b = (37.5, 55.6, 37.7, 55.75)
    g, p = world.truth(b, "roads", seed=0)
    major = np.isin(p["road_type"], ("primary", "trunk"))
    assert major.sum() >= 8 and (p["length"][major] > 3000).all()
    tiles = np.array(km_tiles(tuple(shapely.total_bounds(g[major])), 1.0))
    inter = shapely.STRtree(tiles)
    for line in g[major]:
        hit = inter.query(line, predicate="intersects")
        crossed = shapely.length(shapely.intersection(tiles[hit], line)) > 0
        assert crossed.sum() >= 4
    # a long road is found from a tiny bbox anywhere along it, far from its own cell
    line = g[major][0]
    for f in (0.01, 0.5, 0.99):
        pt = line.interpolate(f, normalized=True)
        tiny = (pt.x - 1e-5, pt.y - 1e-5, pt.x + 1e-5, pt.y + 1e-5)
        assert p["truth_id"][major][0] in world.truth(tiny, "roads", seed=0)[1]["truth_id"]


@pytest.mark.parametrize("mode", ["polygons", "mixed"])
def test_road_corridors(mode):
    b = (37.5, 55.6, 37.7, 55.75)
    g, p = world.truth(b, "roads", seed=0, road_geometry=mode)
    poly = np.isin(shapely.get_type_id(g), (3, 6))
    assert poly.any() and shapely.is_valid(g).all()
    if mode == "polygons":
        assert poly.all()
    else:
        assert (~poly).any()
    corr = g[poly]
    # corridors never overlap; chunks of one road meet edge to edge
    tree = shapely.STRtree(corr)
    left, right = tree.query(corr, predicate="intersects")
    pair = left < right
    inter = shapely.intersection(corr[left[pair]], corr[right[pair]])
    assert (shapely.area(inter) < 1e-12).all()
    assert (np.isin(shapely.get_type_id(inter), (1, 5)) & (shapely.length(inter) > 0)).any()
    # corridors cross several 1 km tiles too
    tiles = np.array(km_tiles(tuple(shapely.total_bounds(corr)), 1.0))
    assert max(int(shapely.intersects(tiles, c).sum()) for c in corr) >= 4


def test_big_objects_found_from_any_tiny_bbox_inside():
    rng = np.random.default_rng(0)
    b = (37.4, 55.6, 37.8, 55.8)
    for model in ("forest", "buildings"):
        g, p = world.truth(b, model, seed=0)
        big = np.argsort(p["area"])[-5:]
        for n in big:
            pts = shapely.points(
                rng.uniform(*shapely.bounds(g[n])[[0, 2]], 200),
                rng.uniform(*shapely.bounds(g[n])[[1, 3]], 200),
            )
            pts = pts[shapely.contains(g[n], pts)][:5]
            for pt in pts:
                tiny = (pt.x - 1e-6, pt.y - 1e-6, pt.x + 1e-6, pt.y + 1e-6)
                tp = world.truth(tiny, model, seed=0)[1]
                assert p["truth_id"][n] in tp["truth_id"]


# ----------------------------------------------------------------------------- tiling
@pytest.mark.parametrize("model", ["buildings", "forest", "fields"])
def test_tiles_unioned_by_truth_id_give_back_the_truth(model, city):
    """Clip to 1 km tiles, union pieces by truth id: every object comes back once, whole."""
    x0, y0, x1, y1 = city
    region = (x0 - 0.01, y0 - 0.01, x1 + 0.02, y1 + 0.01)
    tiles = km_tiles(region, 1.0, offset=(0.5, 0.5))
    cover = shapely.union_all(tiles)
    got = stitched_by_id(tiles, model, seed=0)
    g, p = world.truth(cover.bounds, model, seed=0)
    inside = shapely.within(g, cover)
    assert inside.sum() > 0
    for geom, tid in zip(g[inside], p["truth_id"][inside].tolist(), strict=True):
        assert iou(got[tid], geom) >= 0.98
    # and nothing else comes back
    assert set(got) <= set(p["truth_id"].tolist())


def test_road_lines_cut_by_tiles_keep_their_length():
    b = (37.5, 55.6, 37.56, 55.64)
    tiles = km_tiles(b, 1.0, offset=(0.3, 0.6))
    cover = shapely.union_all(tiles)
    got = stitched_by_id(tiles, "roads", seed=0)
    g, p = world.truth(cover.bounds, "roads", seed=0)
    inside = shapely.within(g, cover)
    assert inside.sum() > 0
    for geom, tid in zip(g[inside], p["truth_id"][inside].tolist(), strict=True):
        assert abs(got[tid].length - geom.length) <= 1e-9 * geom.length
        assert shapely.hausdorff_distance(got[tid], geom) < 1e-9


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    x=st.floats(-120, 120),
    y=st.floats(-55, 60),
    nx=st.integers(1, 3),
    ny=st.integers(1, 3),
    ox=st.floats(0, 1),
    oy=st.floats(0, 1),
    model=st.sampled_from(["buildings", "forest", "roads"]),
)
def test_any_tiling_reassembles_the_truth(x, y, nx, ny, ox, oy, model):
    # GEOS mis-clips against subnormal coordinates (the world flushes them: `pieces`),
    # so the expected pieces below are computed without them
    x, y = (0.0 if abs(v) < 1e-100 else v for v in (x, y))
    my, mx = meters_per_degree(y)
    dx, dy = 700 / float(mx), 700 / float(my)
    xs = x + dx * (np.arange(nx + 1) + ox)
    ys = y + dy * (np.arange(ny + 1) + oy)
    tiles = [shapely.box(xs[a], ys[b], xs[a + 1], ys[b + 1]) for a in range(nx) for b in range(ny)]
    cover = shapely.box(xs[0], ys[0], xs[-1], ys[-1])
    got = stitched_by_id(tiles, model, seed=1)
    g, p = world.truth(cover.bounds, model, seed=1)
    assert set(got) == set(p["truth_id"].tolist())
    for geom, tid in zip(g, p["truth_id"].tolist(), strict=True):
        want = shapely.intersection(geom, cover)
        if model == "roads":
            assert abs(got[tid].length - want.length) <= 1e-9 * max(want.length, 1e-12)
        else:
            assert iou(got[tid], want) >= 0.98


# ----------------------------------------------------------------------------- results
def test_results_are_the_truth_clipped_to_the_aoi(api, city):
    x0, y0, x1, y1 = city
    aoi = box(x0 + 0.002, y0 + 0.001, x0 + 0.009, y0 + 0.006)
    p = api.create(aoi)
    fc = api.get(f"/processings/{p['id']}/result").json()
    served = np.array([shape(f["geometry"]) for f in fc["features"]], dtype=object)
    # the default source is the basemap: the world of its vintage
    day = fc["features"][0]["properties"]["imagery_date"]
    assert day == "2024-06-01" == api.sim.imagery_date(p["id"])
    pieces, pp = world.pieces(shape(aoi), "buildings", seed=0, date=day)
    assert len(served) == len(pieces) > 100
    assert shapely.equals_exact(served, pieces, tolerance=1e-12).all()
    # no block enabled (the create's answer says so): the base properties, on every object
    assert not any(b["enabled"] for b in p["blocks"])
    base = {"id", "area", "object_type", "processing_date", "imagery_date"}
    assert {frozenset(f["properties"]) for f in fc["features"]} == {frozenset(base)}
    props = fc["features"][0]["properties"]
    assert "truth_id" not in props
    assert [f["properties"]["area"] for f in fc["features"]] == pp["piece_area"].tolist()
    # whole buildings inside the AOI come back with the truth's area
    g, tp = world.truth(shape(aoi).bounds, "buildings", seed=0, date=day)
    whole = shapely.within(g, shape(aoi))
    assert set(tp["truth_id"][whole].tolist()) <= set(pp["truth_id"].tolist())


def test_generate_keeps_the_result_schema(city):
    aoi = shapely.box(*city)
    g, props = world.generate("buildings", aoi, 0, blocks={"Classification": False})
    assert set(props[0]) == {"area", "object_type", "shape_type", "simplification_confidence_score"}
    g, props = world.generate("forest_heights", aoi, 0)
    assert set(props[0]) == {"area", "object_type", "class"}
    g, props = world.generate("roads", aoi, 0)
    assert set(props[0]) == {"object_type", "road_type", "length"}
    g, props = world.generate("roads", aoi, 0, options={"road_geometry": "polygons"})
    assert all(set(p) == {"object_type", "road_type", "area"} for p in props)
    for kind in ("construction", "fields"):
        g, props = world.generate(kind, shapely.box(37.5, 55.6, 37.6, 55.7), 0)
        assert len(props) and set(props[0]) == {"area", "object_type"}


def test_options_change_the_mix(city):
    b = city
    n_default = len(world.truth(b, seed=0)[0])
    n_dense = len(world.truth(b, seed=0, urban_density=3000)[0])
    assert n_dense > 1.2 * n_default
    g, p = world.truth(b, seed=0, attached_share=0.0)
    assert not set(p["building_type"].tolist()) & {"perimeter", "terraced"}
    g, p = world.truth(b, seed=0, attached_share=1.0, perimeter_share=1.0)
    assert (p["building_type"] == "perimeter").mean() > 0.9
    # density scales everything
    big = (37.5, 55.6, 37.6, 55.7)
    assert len(world.truth(big, density=0.3)[0]) < 0.5 * len(world.truth(big)[0])
    # shares: all rural
    g, p = world.truth(big, urban_share=0, suburban_share=0, industrial_share=0)
    assert set(p["building_type"].tolist()) <= {"farm", "house", "shed"}


def test_truth_ids_decode_to_their_generating_cell(city):
    g, p = world.truth(city, seed=0)
    d = decode_truth_ids(p["truth_id"])
    # 1, 2: blocks' and districts' buildings; 9, 10: buildings rebuilt on their footprints
    assert set(np.unique(d["layer"]).tolist()) <= {1, 2, 9, 10}
    blk = np.isin(d["layer"], (1, 9))
    # a building lies in the block that generated it
    cy = shapely.get_y(shapely.centroid(g[blk]))
    assert np.array_equal(np.floor(cy / urban.BLOCK_DEG).astype(np.int64), d["j"][blk])


def test_generation_speed():
    b = (37.5, 55.6, 37.6, 55.7)  # ≈ 70 km² of city
    city = {"urban_share": 1.0, "suburban_share": 0.0, "industrial_share": 0.0}
    world.truth(b, "buildings", seed=0, **city)
    t = time.perf_counter()
    g, _ = world.truth(b, "buildings", seed=0, **city)
    dt = time.perf_counter() - t
    assert len(g) > 100_000
    assert len(g) / dt > 10_000, f"{len(g) / dt:.0f} buildings/s"  # ≈ 170 000/s unloaded
