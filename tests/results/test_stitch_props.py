"""Seam stitching against generated ground truth: attached buildings, tile corners, roads.

The world is cut the way the service cuts it: every tile returns the objects clipped to
it (polygonal parts of buildings, linear parts of roads), tagged with the tile's input
``row`` and ``tile_id``. Stitching must give back every true object exactly once per
input row, whole, and never join two attached neighbours.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, box
from support.cutting import cut
from support.objects import iou

from mapflow_geo.results import SEAM_EPS_DEG, seam_mask, stitch
from mapflow_geo.results.stitch import TilePlan, components, cut_pairs, merge_groups

X0, Y0 = 37.6, 55.7  # real magnitudes: the float noise of real coordinates
SIZE = 0.03  # the world is SIZE × SIZE degrees
LANE = 0.003  # terraces each in a lane of this height (houses in a lane are attached)
FAR = 1e-6  # walls and road vertices are kept this far from seams (see the ambiguity)


def make_tiles(xs, ys, row_split=None) -> gpd.GeoDataFrame:
    """Grid tiles with seams at ``X0 + xs`` and ``Y0 + ys`` (each seam one float, shared
    by the tiles on both sides); tile rows below ``row_split`` are input row 0, the rest
    row 1 (one row when ``None``)."""
    gx = [X0] + [X0 + x for x in xs] + [X0 + SIZE]
    gy = [Y0] + [Y0 + y for y in ys] + [Y0 + SIZE]
    rows = []
    for j in range(len(gy) - 1):
        for i in range(len(gx) - 1):
            row = 0 if row_split is None or j < row_split else 1
            rows.append({"tile_id": f"t{i}_{j}", "row": row,
                         "geometry": box(gx[i], gy[j], gx[i + 1], gy[j + 1])})  # fmt: skip
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def expected_parts(
    truth: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame, pieces: gpd.GeoDataFrame
) -> dict:
    """{(truth id, row): [whole objects]}: each true object clipped to each input row's
    area — one object per row it reaches, or several where a road leaves the row and
    comes back, unless one tile's (multi-part) piece holds both parts."""
    out = {}
    for row, part in tiles.groupby("row"):
        area = box(*part.total_bounds)  # rows are bands of whole tile rows
        for obj in truth.itertuples():
            clip = obj.geometry.intersection(area)
            if obj.object_type == "roads":
                clip = shapely.line_merge(clip) if clip.geom_type == "MultiLineString" else clip
                parts = [p for p in shapely.get_parts(clip) if p.geom_type == "LineString"]
                parts = [p for p in parts if p.length > 0]
            else:
                parts = [p for p in shapely.get_parts(clip) if p.geom_type == "Polygon"]
                parts = [p for p in parts if p.area > 0]
            mine = pieces[(pieces["truth"] == obj.truth) & (pieces["row"] == row)].geometry
            if parts:
                out[(obj.truth, row)] = _glue(parts, list(mine))
    return out


def _glue(parts: list, pieces: list) -> list:
    """Parts that share a piece, unioned (a tiny union-find)."""
    label = list(range(len(parts)))
    for piece in pieces:
        near = piece.buffer(1e-9)  # parts and pieces come from different clips
        hit = [i for i, p in enumerate(parts) if p.intersection(near).length > 1e-8]
        for i in hit[1:]:
            old, new = label[i], label[hit[0]]
            label = [new if v == old else v for v in label]
    groups = {}
    for i, v in enumerate(label):
        groups.setdefault(v, []).append(parts[i])
    return [shapely.union_all(g) if len(g) > 1 else g[0] for g in groups.values()]


def assert_whole(out, truth, tiles, pieces) -> None:
    """Every true object back exactly once per row, whole: a one-to-one match of stitched
    objects to expected ones (IoU ≥ 0.98 for buildings, same line for roads)."""
    want = expected_parts(truth, tiles, pieces)
    got = {key: list(g.geometry) for key, g in out.groupby(["truth", "row"])}
    assert sum(map(len, got.values())) == len(out)
    assert set(got) == set(want), (set(want) - set(got), set(got) - set(want))
    for key, parts in want.items():
        objs = got[key]
        assert len(objs) == len(parts), (key, len(objs), len(parts))
        free = list(parts)
        for g in objs:
            if g.geom_type in ("LineString", "MultiLineString"):
                # one line where the truth is one line: pieces line-merged, not just unioned
                score = [g.geom_type == p.geom_type and g.hausdorff_distance(p) < 1e-9
                         and abs(g.length - p.length) < 1e-9 for p in free]  # fmt: skip
            else:
                score = [iou(g, p) >= 0.98 for p in free]
                assert g.geom_type == "Polygon", (key, g.geom_type)
            assert any(score), (key, g.wkt)
            free.pop(score.index(True))
    polys = out[out["object_type"] == "buildings"]
    np.testing.assert_allclose(polys["area"], shapely.area(polys.geometry.values), rtol=1e-9)


def _spread(values: list[float]) -> list[float]:
    """Sorted, at least 1e-3 apart (no sliver tiles)."""
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > 1e-3:
            out.append(v)
    return out


def seams(n_min: int, n_max: int):
    """Seam positions (offsets from the world's corner), anywhere in the world."""
    return st.lists(st.floats(0.002, SIZE - 0.002), min_size=n_min, max_size=n_max).map(_spread)


def _clear(values, seams_) -> bool:
    return all(abs(v - s) > FAR for v in values for s in seams_)


@st.composite
def terraces(draw, xs, ys):
    """Rows of attached houses, each in its own lane; some lanes filled to the top, so
    the terrace shares its long wall with the next lane's."""
    lanes = draw(st.lists(st.integers(0, int(SIZE / LANE) - 1), min_size=1, max_size=6,
                          unique=True))  # fmt: skip
    houses = []
    for lane in lanes:
        x0 = draw(st.floats(0.0, 0.02))
        widths = draw(st.lists(st.floats(2e-4, 1.5e-3), min_size=1, max_size=10))
        full = draw(st.booleans())
        depth = LANE if full else draw(st.floats(2e-4, LANE))
        walls = X0 + x0 + np.r_[0.0, np.cumsum(widths)]
        walls = walls[walls <= X0 + SIZE]
        y0 = Y0 + lane * LANE
        y1 = Y0 + (lane + 1) * LANE if full else y0 + depth
        if len(walls) < 2 or not _clear(walls - X0, xs) or not _clear([y0 - Y0, y1 - Y0], ys):
            continue
        houses += [box(a, y0, b, y1) for a, b in zip(walls[:-1], walls[1:], strict=True)]
    return houses


@st.composite
def worlds(draw):
    xs = draw(seams(1, 3))
    ys = draw(seams(0, 3))
    split = draw(st.one_of(st.none(), st.integers(1, len(ys)))) if ys else None
    tiles = make_tiles(xs, ys, split)
    houses = draw(terraces(xs, ys))
    # a box around a tile corner: cut into four
    for i, j, a, b, c, d in draw(
        st.lists(
            st.tuples(st.integers(0, 9), st.integers(0, 9), *[st.floats(1e-4, 4e-4)] * 4),
            max_size=3,
        )  # fmt: skip
    ):
        if not ys:
            break
        cx, cy = X0 + xs[i % len(xs)], Y0 + ys[j % len(ys)]
        corner = box(cx - a, cy - c, cx + b, cy + d)
        if all(corner.intersection(h).area == 0 for h in houses):
            houses.append(corner)
    # roads crossing the world left to right, each in its own band of the world
    roads = []
    for band in draw(st.lists(st.integers(0, 2), max_size=3, unique=True)):
        n = draw(st.integers(2, 8))
        x = np.linspace(0.0005, SIZE - 0.0005, n)
        y = band * 0.01 + np.array(draw(st.lists(st.floats(0.0005, 0.0095), min_size=n,
                                                 max_size=n)))  # fmt: skip
        if _clear(y, ys) and _clear(x, xs):
            roads.append(LineString(np.c_[X0 + x, Y0 + y]))
    truth = gpd.GeoDataFrame(
        {
            "truth": np.arange(len(houses) + len(roads)),
            "object_type": ["buildings"] * len(houses) + ["roads"] * len(roads),
        },
        geometry=houses + roads,
        crs="EPSG:4326",
    )
    return truth, tiles


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_stitch_gives_back_every_true_object_once(world):
    truth, tiles = world
    pieces = cut(truth, tiles)
    if pieces.empty:
        return
    _events(truth, pieces)
    out = stitch(pieces, tiles)
    assert_whole(out, truth, tiles, pieces)


def _events(truth: gpd.GeoDataFrame, pieces: gpd.GeoDataFrame) -> None:
    """What the example holds (``pytest --hypothesis-show-statistics``)."""
    n = pieces.groupby("truth")["tile_id"].nunique()
    houses = truth[truth["object_type"] == "buildings"]
    roads = truth.loc[truth["object_type"] == "roads", "truth"]
    cut_houses = houses[houses["truth"].isin(n[n > 1].index)]
    tree = shapely.STRtree(houses.geometry.values)
    a, b = tree.query(cut_houses.geometry.values, predicate="touches")
    event(f"attached neighbours, one cut by a seam: {len(a) > 0}")
    event(f"building cut in four: {bool((n[houses['truth']] >= 4).any())}")
    parts = shapely.get_num_geometries(pieces.geometry.values)
    per_road = pd.Series(parts).groupby(pieces["truth"].to_numpy()).sum()
    event(f"road in >= 4 parts: {bool((per_road.reindex(roads) >= 4).any())}")
    event(f"object in two rows: {bool((pieces.groupby('truth')['row'].nunique() > 1).any())}")


@settings(max_examples=40, deadline=None)
@given(worlds())
def test_stitch_ignores_piece_order(world):
    truth, tiles = world
    pieces = cut(truth, tiles)
    if pieces.empty:
        return
    shuffled = pieces.sample(frac=1.0, random_state=0)
    a = stitch(pieces, tiles).sort_values(["truth", "row", "tile_id"]).reset_index(drop=True)
    b = stitch(shuffled, tiles).sort_values(["truth", "row", "tile_id"]).reset_index(drop=True)
    assert len(a) == len(b)
    assert (a["tile_id"].to_numpy() == b["tile_id"].to_numpy()).all()
    assert shapely.equals(a.geometry.values, b.geometry.values).all()


def test_terrace_of_ten_cut_lengthwise_and_across_is_ten_houses():
    """A horizontal seam cuts every house; a vertical seam cuts one house. Neighbours'
    pieces touch along the seam at their walls — and stay apart."""
    tiles = make_tiles([0.0105], [0.0101])
    walls = X0 + 0.004 + np.r_[0.0, np.cumsum(np.linspace(0.0008, 0.0012, 10))]
    houses = [
        box(a, Y0 + 0.0095, b, Y0 + 0.0108) for a, b in zip(walls[:-1], walls[1:], strict=True)
    ]
    truth = gpd.GeoDataFrame(
        {"truth": range(10), "object_type": "buildings"}, geometry=houses, crs="EPSG:4326"
    )
    pieces = cut(truth, tiles)
    assert len(pieces) == 22
    out = stitch(pieces, tiles)
    assert len(out) == 10
    assert_whole(out, truth, tiles, pieces)
    # what joining by nearness would do: one building
    assert shapely.union_all(pieces.geometry.values).geom_type == "Polygon"


def test_building_cut_in_four_at_a_tile_corner_is_one():
    tiles = make_tiles([0.01], [0.01])
    truth = gpd.GeoDataFrame(
        {"truth": [0, 1], "object_type": "buildings"},
        geometry=[box(X0 + 0.0098, Y0 + 0.0097, X0 + 0.0103, Y0 + 0.0101),
                  box(X0 + 0.0103, Y0 + 0.0097, X0 + 0.0109, Y0 + 0.0101)],  # attached
        crs="EPSG:4326",
    )  # fmt: skip
    pieces = cut(truth, tiles)
    assert len(pieces) == 6
    out = stitch(pieces, tiles)
    assert len(out) == 2
    assert sorted(out["tile_id"]) == ["t0_0+t0_1+t1_0+t1_1", "t1_0+t1_1"]
    assert_whole(out, truth, tiles, pieces)


def test_line_around_a_tile_corner_in_four_pieces_is_one():
    """A chain of four pieces (each touching the next only) joins into one road: what a
    union-find that skips the final find per node would get wrong."""
    tiles = make_tiles([0.01], [0.01])
    road = LineString([(X0 + 0.008, Y0 + 0.008), (X0 + 0.012, Y0 + 0.0085),
                       (X0 + 0.0125, Y0 + 0.012), (X0 + 0.0085, Y0 + 0.0118)])  # fmt: skip
    truth = gpd.GeoDataFrame({"truth": [0], "object_type": "roads"}, geometry=[road], crs=4326)
    pieces = cut(truth, tiles)
    assert len(pieces) == 4
    # chain order: the last piece reaches the first only through the two others
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]):
        out = stitch(pieces.iloc[order], tiles)
        assert len(out) == 1
        assert out.geometry.iloc[0].geom_type == "LineString"
        assert abs(out.geometry.iloc[0].length - road.length) < 1e-12
        assert out["tile_id"].iloc[0] == "t0_0+t0_1+t1_0+t1_1"


def test_zigzag_road_across_seams_is_one():
    """Parts of one road in one tile come as one (multi-part) piece, as the service
    sends them."""
    tiles = make_tiles([0.01, 0.011], [])
    xs = [0.008, 0.012, 0.008, 0.012, 0.008, 0.012]
    road = LineString([(X0 + x, Y0 + 0.002 + 0.003 * k) for k, x in enumerate(xs)])
    truth = gpd.GeoDataFrame({"truth": [0], "object_type": "roads"}, geometry=[road], crs=4326)
    pieces = cut(truth, tiles)
    assert len(pieces) == 3
    assert shapely.get_num_geometries(pieces.geometry.values).sum() == 11
    out = stitch(pieces, tiles)
    assert len(out) == 1
    assert_whole(out, truth, tiles, pieces)


def test_rows_never_join():
    """Two input rows side by side: objects cut at the border between them stay one per
    row, and their touching pieces are not joined (a key without ``row`` would)."""
    tiles = make_tiles([0.01, 0.02], [0.015], row_split=1)
    truth = gpd.GeoDataFrame(
        {"truth": [0, 1], "object_type": "buildings"},
        geometry=[
            box(X0 + 0.004, Y0 + 0.0148, X0 + 0.005, Y0 + 0.0152),
            box(X0 + 0.0099, Y0 + 0.0148, X0 + 0.0102, Y0 + 0.0152),
        ],  # fmt: skip
        crs="EPSG:4326",
    )
    pieces = cut(truth, tiles)
    assert len(pieces) == 6
    out = stitch(pieces, tiles)
    assert sorted(zip(out["truth"], out["row"], strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert_whole(out, truth, tiles, pieces)


def test_object_types_and_classes_never_join():
    tiles = make_tiles([0.01], [])
    b = box(X0 + 0.009, Y0 + 0.004, X0 + 0.011, Y0 + 0.005)
    pieces = cut(gpd.GeoDataFrame({"truth": [0], "object_type": "buildings"}, geometry=[b],
                                  crs=4326), tiles)  # fmt: skip
    assert len(pieces) == 2
    assert len(stitch(pieces, tiles)) == 1
    for col, values in (("object_type", ["buildings", "forest"]), ("class_id", ["101", "102"])):
        assert len(stitch(pieces.assign(**{col: values}), tiles)) == 2


@pytest.mark.parametrize("offset", [0.3, 0.9])
def test_wall_closer_to_a_seam_than_eps_stays_apart(offset):
    """House A crosses the seam by less than SEAM_EPS_DEG (a sliver in the next tile)
    and its neighbour B's wall is that close to the seam: B's wall passes for a cut edge,
    but the sliver's cut edge lies nearer, so A joins its sliver and B stays apart."""
    s = 0.01
    tiles = make_tiles([s], [])
    wall = X0 + s + offset * SEAM_EPS_DEG
    houses = [box(X0 + s - 0.0008, Y0 + 0.004, wall, Y0 + 0.005),
              box(wall, Y0 + 0.004, X0 + s + 0.0009, Y0 + 0.005)]  # fmt: skip
    truth = gpd.GeoDataFrame(
        {"truth": [0, 1], "object_type": "buildings"}, geometry=houses, crs="EPSG:4326"
    )
    pieces = cut(truth, tiles)
    assert len(pieces) == 3
    out = stitch(pieces, tiles)
    assert len(out) == 2
    assert_whole(out, truth, tiles, pieces)


def test_overlapping_detections_of_neighbours_stay_apart():
    """Neighbours detected overlapping by a few centimetres: their cut edges overlap by
    far less than half of either, so the seam does not join them."""
    tiles = make_tiles([0.02], [0.005])
    walls = [X0 + 0.008, X0 + 0.009, X0 + 0.010, X0 + 0.011]
    houses = [box(walls[0], Y0 + 0.0045, walls[1] + 4e-7, Y0 + 0.0055),
              box(walls[1] - 4e-7, Y0 + 0.0045, walls[2], Y0 + 0.0055),
              box(walls[2], Y0 + 0.0045, walls[3], Y0 + 0.0055)]  # fmt: skip
    truth = gpd.GeoDataFrame({"truth": [0, 1, 2], "object_type": "buildings"}, geometry=houses,
                             crs="EPSG:4326")  # fmt: skip
    pieces = cut(truth, tiles)
    out = stitch(pieces, tiles)
    assert sorted(out["truth"]) == [0, 1, 2]
    counts = pd.Series(out["truth"]).value_counts()
    assert (counts == 1).all()


#: How the two sides of a seam may disagree: the same vertices (a coverage), an extra
#: vertex on one side's cut edge, one side's cut edge shorter at an end (the neighbour
#: tile drew the building a little lower), and float noise across the seam (the pieces
#: overlap or leave a gap far below ``SEAM_EPS_DEG``).
SIDES = ("same", "extra vertex", "shorter", "overlap", "gap")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(SIDES), st.floats(2e-4, 9e-4), st.floats(2e-4, 9e-4)),
        min_size=1,
        max_size=6,
    )
)
def test_seam_noded_differently_on_its_two_sides_is_one_polygon(buildings):
    """Buildings cut at one seam whose two sides do not share their vertices exactly,
    mixed in one call with buildings whose sides do: each comes back as one valid polygon
    equal to the building (the sides' own disagreement aside)."""
    s = X0 + 0.01
    tiles = make_tiles([0.01], [])
    rows, truth, own = [], [], []
    for k, (side, left, right) in enumerate(buildings):
        y0, y1 = Y0 + 0.002 * (k + 1), Y0 + 0.002 * (k + 1) + 0.001
        a = shapely.Polygon([(s - left, y0), (s, y0), (s, y1), (s - left, y1)])
        x = {"overlap": s - 1e-12, "gap": s + 1e-12}.get(side, s)
        lo = y0 + 2e-5 if side == "shorter" else y0
        ring = [(x, lo), (s + right, lo), (s + right, y1), (x, y1)]
        if side == "extra vertex":
            ring.append((x, (y0 + y1) / 2 + 1.234e-5))
        b = shapely.Polygon(ring)
        truth.append(shapely.union(a, b))
        # no coordinate invented where the sides touch (float noise across the seam is
        # closed by a buffer, which moves them by float noise only)
        own.append((side in ("overlap", "gap"), {*a.exterior.coords, *ring}))
        for geom, tile in ((a, "t0_0"), (b, "t1_0")):
            rows.append({"truth": k, "object_type": "buildings", "row": 0, "tile_id": tile,
                         "processing_id": f"p-{tile}", "area": geom.area,
                         "geometry": geom})  # fmt: skip
    pieces = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
    out = stitch(pieces, tiles)
    assert sorted(out["truth"]) == list(range(len(buildings)))
    geoms = out.sort_values("truth").geometry.values
    assert (shapely.get_type_id(geoms) == 3).all(), list(shapely.get_type_id(geoms))
    assert shapely.is_valid(geoms).all()
    for got, want, coords in zip(geoms, truth, own, strict=True):
        assert got.symmetric_difference(want).area < 1e-6 * want.area, (got.wkt, want.wkt)
        noise, coords = coords
        if noise:  # closed by a buffer out and back in: corners kept (mitred), none added
            mine = shapely.points(np.array(sorted(coords)))
            far = shapely.distance(shapely.points(got.exterior.coords), shapely.MultiPoint(mine))
            assert far.max() < 1e-10, got.wkt
        else:
            assert set(got.exterior.coords) <= coords, got.wkt
    assert (out["tile_id"] == "t0_0+t1_0").all()


def test_road_running_along_a_seam_is_one():
    """A road that comes up to a seam, runs along it and leaves on the other side: each
    tile holds the stretch along the seam, and no end of one piece meets an end of the
    other; the shared stretch joins them (the cut-edge rule for lines)."""
    s = X0 + 0.01
    tiles = make_tiles([0.01], [])
    road = LineString([(s + 0.002, Y0 + 0.002), (s, Y0 + 0.004), (s, Y0 + 0.008),
                       (s - 0.002, Y0 + 0.010)])  # fmt: skip
    truth = gpd.GeoDataFrame({"truth": [0], "object_type": "roads"}, geometry=[road], crs=4326)
    pieces = cut(truth, tiles)
    # each tile's piece drawn as one line (the stretch along the seam, then the turn)
    pieces["geometry"] = shapely.line_merge(pieces.geometry.values)
    assert len(pieces) == 2 and (pieces.geom_type == "LineString").all()
    ends = (
        shapely.get_point(pieces.geometry.values, 0),
        shapely.get_point(pieces.geometry.values, -1),
    )
    assert (
        shapely.distance(ends[1][0], ends[0][1]) > 1e-3
        and shapely.distance(ends[0][0], ends[1][1]) > 1e-3
    )
    out = stitch(pieces, tiles)
    assert len(out) == 1
    assert out.geometry.iloc[0].geom_type == "LineString"
    assert abs(out.geometry.iloc[0].length - road.length) < 1e-12
    assert out["tile_id"].iloc[0] == "t0_0+t1_0"


@settings(max_examples=40, deadline=None)
@given(worlds())
def test_the_public_parts_give_back_every_true_object_once(world):
    """``seam_mask``, ``cut_pairs``, ``components`` and ``merge_groups`` (the streamed
    dataset's route, a neighbourhood at a time) give back every true object once, whole."""
    truth, tiles = world
    pieces = cut(truth, tiles)
    if pieces.empty:
        return
    plan = TilePlan(tiles)
    cand = np.flatnonzero(seam_mask(pieces, tiles, plan=plan))
    left, right = cut_pairs(pieces.iloc[cand], plan)
    labels = components(len(pieces), cand[left], cand[right])
    out = merge_groups(pieces, labels)
    assert_whole(out, truth, tiles, pieces)
