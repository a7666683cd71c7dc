"""The parts of seam stitching, each against a truth computed without it: the seam rule
(``seam_mask``, ``TilePlan``) against shapely's distance from a piece to its own tile's
boundary, whatever the tile's shape; the group union against ``shapely.union_all``; and
what a joined object keeps (its largest piece's properties, summed areas, provenance)
against the pieces themselves.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from mapflow_geo.results import SEAM_EPS_DEG, seam_mask, stitch
from mapflow_geo.results.stitch import (
    _COVERAGE_MAX_PIECES,
    MIN_OVERLAP_DEG,
    TilePlan,
    _coverage_union,
    components,
    cut_pairs,
    merge_groups,
    union_by_group,
)

X0, Y0 = 37.6, 55.7  # real magnitudes: the float noise of real coordinates
EPS = SEAM_EPS_DEG
NOTCH = 5e-6  # a corner cut this deep leaves a tile within 1e-5 (relative) of its box
TILE_KINDS = ("rect", "notched", "pinhole", "triangle", "rotated", "two-part")


def _tile(kind: str, x0: float, y0: float, w: float, h: float, corner: int):
    cell = box(x0, y0, x0 + w, y0 + h)
    cx, cy = (x0, x0 + w)[corner % 2], (y0, y0 + h)[corner // 2]
    if kind == "notched":  # a rectangle but for a corner ~50 cm deep
        return cell.difference(box(cx - NOTCH, cy - NOTCH, cx + NOTCH, cy + NOTCH))
    if kind == "pinhole":  # a hole of 0.1 mm: its area is under 1e-12 of the tile's
        px, py = x0 + w / 3, y0 + h / 3
        return Polygon(cell.exterior.coords, [box(px, py, px + 1e-9, py + 1e-9).exterior.coords])
    if kind == "triangle":
        return Polygon([(x0, y0), (x0 + w, y0), (x0, y0 + h)])
    if kind == "rotated":
        return shapely.affinity.rotate(cell, 10 + 70 * corner / 3)
    if kind == "two-part":
        return MultiPolygon([box(x0, y0, x0 + w / 3, y0 + h), box(x0 + w / 2, y0, x0 + w, y0 + h)])
    return cell


@st.composite
def plans_and_pieces(draw):
    """Tiles of every shape a plan can hold (rectangles, clipped ones, with a hole, of two
    parts), input rows of one or several tiles; pieces (boxes, some as small as a point)
    placed within ±12 ε of a vertex or of any point of their tile's boundary, inside,
    across or outside it, and pieces of a tile the plan does not hold or of none."""
    nx, ny = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    tiles = []
    for k in range(nx * ny):
        x0, y0 = X0 + 0.01 * (k % nx), Y0 + 0.01 * (k // nx)
        w, h = draw(st.floats(0.002, 0.01)), draw(st.floats(0.002, 0.01))
        kind = draw(st.sampled_from(TILE_KINDS))
        geom = _tile(kind, x0, y0, w, h, draw(st.integers(0, 3)))
        tiles.append({"tile_id": f"t{k}", "row": draw(st.integers(0, 2)), "geometry": geom})
    tiles = gpd.GeoDataFrame(tiles, geometry="geometry", crs=4326)
    pieces = []
    for _ in range(draw(st.integers(1, 25))):
        k = draw(st.integers(0, len(tiles) - 1))
        geom = tiles.geometry.iloc[k]
        if draw(st.booleans()):
            xy = shapely.get_coordinates(geom)
            ax, ay = xy[draw(st.integers(0, len(xy) - 1))]
        else:
            at = draw(st.floats(0, 1))
            p = shapely.line_interpolate_point(geom.boundary, at, normalized=True)
            ax, ay = p.x, p.y
        ax += draw(st.floats(-12, 12)) * EPS
        ay += draw(st.floats(-12, 12)) * EPS
        w, h = (draw(st.sampled_from([1e-10, 3e-8, 2e-6, 3e-5])) for _ in range(2))
        fx, fy = draw(st.floats(0, 1)), draw(st.floats(0, 1))
        piece = box(ax - fx * w, ay - fy * h, ax + (1 - fx) * w, ay + (1 - fy) * h)
        pieces.append({"tile_id": f"t{k}", "row": tiles["row"].iloc[k], "geometry": piece})
    # a piece of a tile the plan does not hold, or of no tile, on the boundary of each
    # tile: never near
    for k, geom in enumerate(tiles.geometry):
        x, y = shapely.get_coordinates(geom)[0]
        for tile_id in ("elsewhere", None):
            pieces.append({"tile_id": tile_id, "row": tiles["row"].iloc[k],
                           "geometry": box(x, y, x + 1e-6, y + 1e-6)})  # fmt: skip
    return tiles, gpd.GeoDataFrame(pieces, geometry="geometry", crs=4326)


def _truth(tiles: gpd.GeoDataFrame, pieces: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(near, clear): within ε of the own tile's boundary, in a row of several tiles; and
    whether the piece's distance is clear of ε (float noise aside: not within ±20 %)."""
    by_id = dict(zip(tiles["tile_id"], tiles.geometry, strict=True))
    sizes = tiles.groupby("row")["tile_id"].size()
    near, clear = [], []
    for tile_id, row, piece in zip(pieces["tile_id"], pieces["row"], pieces.geometry, strict=True):
        tile = by_id.get(tile_id)
        if tile is None:
            near.append(False)
            clear.append(True)
            continue
        d = shapely.distance(tile.boundary, piece)
        near.append(d <= EPS and sizes[row] > 1)
        clear.append(not 0.8 * EPS < d < 1.25 * EPS)
    return np.array(near), np.array(clear)


@settings(max_examples=150, deadline=None)
@given(plans_and_pieces())
def test_seam_mask_is_the_distance_to_the_own_tiles_boundary(world):
    """A piece may have been cut when it comes within ε of its own tile's boundary (a
    clipped tile's too, a hole's, each part's) and its row has several tiles; a piece of
    a tile the plan does not hold, or of none, never. The same for points
    (``TilePlan.near_points``), and with the plan given or built."""
    tiles, pieces = world
    near, clear = _truth(tiles, pieces)
    plan = TilePlan(tiles)
    got = seam_mask(pieces, tiles)
    assert got.dtype == bool and len(got) == len(pieces)
    np.testing.assert_array_equal(got[clear], near[clear])
    np.testing.assert_array_equal(seam_mask(pieces, tiles, plan=plan)[clear], near[clear])
    # the pieces' corners as points, in multi-tile rows: near their tile's boundary
    xy = shapely.get_coordinates(pieces.geometry.values[::5])
    pos = np.repeat(plan.lookup(pieces["tile_id"].to_numpy()[::5]), 5)
    tile_boundary = np.append(tiles.boundary.values, None)
    d = shapely.distance(tile_boundary[pos], shapely.points(xy))
    ok = ~(np.abs(d / EPS - 1) < 0.25)
    want = np.where(pos >= 0, d <= EPS, False)
    np.testing.assert_array_equal(plan.near_points(xy, pos)[ok], want[ok])


@pytest.mark.parametrize("where", ["inside", "outside"])
@pytest.mark.parametrize("side", ["west", "south", "east", "north"])
def test_a_piece_exactly_eps_from_its_tiles_side_is_near(side, where):
    """Within ε is inclusive: a piece exactly ε (a float, exactly: tiles with a side on
    the axes) from its tile's side, inside or outside, may have been cut; one 2 ε off
    may not."""
    tiles = gpd.GeoDataFrame(
        {"tile_id": ["sw", "ne"], "row": [0, 0]},
        geometry=[box(0.0, 0.0, 1.0, 1.0), box(-1.0, -1.0, 0.0, 0.0)],
        crs=4326,
    )  # the west and south sides of "sw" and the east and north ones of "ne" lie on 0
    tile = "sw" if side in ("west", "south") else "ne"
    inward = 1.0 if side in ("west", "south") else -1.0
    sign = inward if where == "inside" else -inward
    pieces = []
    for k in (1, 2):
        off, mid = sign * k * EPS, 0.5 if tile == "sw" else -0.5
        a, b = sorted([off, off + sign * 0.1])
        geom = box(a, mid - 0.1, b, mid + 0.1)
        if side in ("south", "north"):
            geom = shapely.affinity.affine_transform(geom, [0, 1, 1, 0, 0, 0])  # x ↔ y
        pieces.append({"tile_id": tile, "row": 0, "geometry": geom})
    pieces = gpd.GeoDataFrame(pieces, geometry="geometry", crs=4326)
    boundary = tiles.set_index("tile_id").boundary[tile]
    assert list(shapely.distance(boundary, pieces.geometry.values)) == [EPS, 2 * EPS]
    assert list(seam_mask(pieces, tiles)) == [True, False]


def test_seam_mask_of_no_pieces_is_empty():
    tiles = gpd.GeoDataFrame({"tile_id": ["a", "b"], "row": [0, 0]},
                             geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)  # fmt: skip
    got = seam_mask(tiles.iloc[:0], tiles)
    assert got.dtype == bool and got.shape == (0,)


@st.composite
def groups_of_shapes(draw):
    n = draw(st.integers(0, 30))
    gid = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.intp)
    # labels 0..g-1, every group non-empty
    gid = pd.factorize(gid)[0] if n else gid
    geoms = []
    for _ in range(n):
        x, y = draw(st.floats(0, 10)), draw(st.floats(0, 10))
        if draw(st.booleans()):
            geoms.append(box(x, y, x + draw(st.floats(0.5, 4)), y + draw(st.floats(0.5, 4))))
        else:
            geoms.append(shapely.LineString([(x, y), (x + draw(st.floats(0.5, 4)), y + 1)]))
    return np.array(geoms, dtype=object), gid


@settings(max_examples=100, deadline=None)
@given(groups_of_shapes())
def test_union_by_group_is_each_groups_union(data):
    """One geometry per group, in group order: the union of its members (groups of one
    to thirty, in any order; none at all)."""
    geoms, gid = data
    got = union_by_group(geoms, gid)
    n = int(gid.max()) + 1 if len(gid) else 0
    assert len(got) == n
    for g in range(n):
        want = shapely.union_all(geoms[gid == g])
        assert got[g].symmetric_difference(want).area < 1e-9, g
        assert abs(got[g].length - want.length) < 1e-9, g


def _pieces_of_one_cut(tiles):
    """Three objects: one cut by the seam x = 1 (70 % west, 30 % east), one inside the
    west tile, one inside the east tile; each piece with its own properties."""
    return gpd.GeoDataFrame(
        {
            "tile_id": ["w", "w", "e", "e"],
            "row": [0, 0, 0, 0],
            "processing_id": ["p-w", "p-w", "p-e", "p-e"],
            "score": [0.1, 0.9, 0.5, 0.3],
            "area": [7.0, 1.0, 3.0, 2.0],
            "area_m2": [70.0, np.nan, 30.0, 20.0],
        },
        geometry=[
            box(0.3, 0.2, 1.0, 0.4),  # the cut object's larger piece
            box(0.1, 0.7, 0.2, 0.8),
            box(1.0, 0.2, 1.3, 0.4),  # its smaller piece
            box(1.5, 0.7, 1.6, 0.8),
        ],
        index=[10, 11, 12, 13],
        crs=4326,
    )


def _two_tiles():
    return gpd.GeoDataFrame({"tile_id": ["w", "e"], "row": [0, 0]},
                            geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)  # fmt: skip


def test_a_joined_object_keeps_its_largest_pieces_properties_and_sums_its_areas():
    """The pieces that were not joined come first, in their input order, unchanged; then
    the joined object: its largest piece's properties (``score``), ``area`` and
    ``area_m2`` summed over the pieces that have one, provenance joined with ``+``,
    a fresh index, the same columns and CRS."""
    tiles, pieces = _two_tiles(), _pieces_of_one_cut(_two_tiles())
    out = stitch(pieces, tiles)
    assert list(out.columns) == list(pieces.columns) and out.crs == pieces.crs
    assert list(out.index) == [0, 1, 2]
    alone = pieces.iloc[[1, 3]].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        pd.DataFrame(out.iloc[:2].drop(columns="geometry")),
        pd.DataFrame(alone.drop(columns="geometry")),
    )
    assert shapely.equals(out.geometry.values[:2], alone.geometry.values).all()
    joined = out.iloc[2]
    assert joined.geometry.equals(box(0.3, 0.2, 1.3, 0.4))
    assert joined["score"] == 0.1  # the larger piece's (area 0.14 against 0.06)
    assert joined["area"] == 10.0 and joined["area_m2"] == 100.0
    assert joined["tile_id"] == "e+w" and joined["processing_id"] == "p-e+p-w"
    # the same through merge_groups, with labels of any kind
    merged = merge_groups(pieces, np.array(["x", "y", "x", "z"]))
    assert list(merged.index) == [0, 1, 2] and merged.crs == pieces.crs
    assert list(merged.columns) == list(pieces.columns)  # the old index not kept as one
    assert merged.iloc[2]["score"] == 0.1 and merged.iloc[2]["tile_id"] == "e+w"
    # a sum over the pieces that have an area: the smaller piece's alone, or none
    one_known = pieces.assign(area_m2=[np.nan, np.nan, 30.0, 20.0])
    assert stitch(one_known, tiles).iloc[2]["area_m2"] == 30.0
    assert np.isnan(stitch(pieces.assign(area_m2=np.nan), tiles).iloc[2]["area_m2"])


@pytest.mark.parametrize(
    "case",
    [
        "no pieces",
        "one tile a row",
        "none at a seam",
        "at a seam, not cut",
        "points at a seam",
        "a point and a polygon at a seam",
        "no groups",
        "no pieces to merge",
    ],
)
def test_pieces_with_nothing_to_join_come_back_as_they_are(case):
    """Whatever shortcut finds nothing to join, the pieces come back unchanged, in their
    order, with a fresh index and no column added."""
    tiles, pieces = _two_tiles(), _pieces_of_one_cut(_two_tiles())
    if case == "no pieces":
        pieces = pieces.iloc[:0]
    elif case == "one tile a row":
        tiles = tiles.assign(row=[0, 1])
        pieces = pieces.assign(row=[0, 0, 1, 1])
    elif case == "none at a seam":
        pieces = pieces.iloc[[1, 3]]
    elif case == "at a seam, not cut":  # attached neighbours: their walls meet the seam
        walls = [box(0.3, 0.2, 1.0, 0.4), box(0.3, 0.4, 1.0, 0.6)]
        pieces = pieces.iloc[[0, 1]].assign(geometry=walls)
    elif case == "points at a seam":  # one on each side's boundary, at the same place
        pieces = pieces.iloc[[0, 2]].assign(geometry=[Point(1.0, 0.3), Point(1.0, 0.3)])
    elif case == "a point and a polygon at a seam":  # no two of a kind that can be cut
        pieces = pieces.iloc[[0, 2]].assign(geometry=[box(0.3, 0.2, 1.0, 0.4), Point(1.0, 0.3)])
    elif case == "no pieces to merge":
        pieces = pieces.iloc[:0]
    if case in ("no groups", "no pieces to merge"):
        out = merge_groups(pieces, np.arange(len(pieces)))
    else:
        out = stitch(pieces, tiles)
    assert list(out.columns) == list(pieces.columns)
    assert list(out.index) == list(range(len(pieces)))
    pd.testing.assert_frame_equal(
        pd.DataFrame(out.drop(columns="geometry")),
        pd.DataFrame(pieces.drop(columns="geometry")).reset_index(drop=True),
    )
    assert shapely.equals(out.geometry.values, pieces.geometry.values).all()


def test_components_of_a_chain_and_of_isolated_nodes():
    """Connected components of an undirected graph, its last nodes isolated: a chain
    given in any direction is one component."""
    labels = components(6, np.array([3, 1, 2]), np.array([2, 0, 1]))
    assert labels[0] == labels[1] == labels[2] == labels[3]
    assert len(set(labels.tolist())) == 3 and len(labels) == 6


def _seam_pair(west: tuple, east: tuple):
    """Two tiles meeting at x = 0 and one piece in each: a 0.1°-wide polygon whose cut
    edge is the vertical segment ``(x, y0, y1)`` given."""
    tiles = gpd.GeoDataFrame(
        {"tile_id": ["w", "e"], "row": [0, 0]},
        geometry=[box(-1.0, -1.0, 0.0, 1.0), box(0.0, -1.0, 1.0, 1.0)],
        crs=4326,
    )
    (xw, w0, w1), (xe, e0, e1) = west, east
    pieces = gpd.GeoDataFrame(
        {"tile_id": ["w", "e"], "row": [0, 0]},
        geometry=[box(xw - 0.1, w0, xw, w1), box(xe, e0, xe + 0.1, e1)],
        crs=4326,
    )
    return tiles, pieces


@pytest.mark.parametrize(
    ("west", "east", "joined"),
    [
        # overlapping by exactly half the shorter cut edge (2⁻²² of 2⁻²¹): at least half
        ((0.0, 0.0, 2.0**-21), (0.0, 2.0**-22, 2.0**-22 + 2.0**-21), True),
        # overlapping by exactly MIN_OVERLAP_DEG (2e-7 of 3e-7): not more than it
        ((0.0, 0.0, 3e-7), (0.0, -1e-7, 2e-7), False),
        # the same, shifted by 2⁻²³ (1.2e-7): more than it
        ((0.0, 0.0, 3e-7), (0.0, -1e-7 + 2.0**-23, 2e-7 + 2.0**-23), True),
    ],
    ids=["half-the-shorter", "min-overlap", "above-min-overlap"],
)
def test_the_cut_edge_rule_at_its_bounds(west, east, joined):
    """The cut-edge rule of DESIGN.md (*Seam stitching*) at its bounds, in floats that are
    exact at the origin: cut edges overlapping over *more than* ``MIN_OVERLAP_DEG`` and
    over *at least* half of the shorter one."""
    tiles, pieces = _seam_pair(west, east)
    assert seam_mask(pieces, tiles).all()
    (_, w0, w1), (_, e0, e1) = west, east
    overlap = min(w1, e1) - max(w0, e0)
    assert overlap in (2 * EPS, 0.5 * (w1 - w0)) or overlap > 2 * EPS
    assert len(stitch(pieces, tiles)) == (1 if joined else 2)


def test_pieces_of_other_types_stay_apart_whatever_their_missing_class():
    """The join key is the row, ``object_type`` and ``class_id``: pieces whose class is
    missing (NaN) are joined only with pieces of their own type."""
    tiles = _two_tiles()
    pieces = gpd.GeoDataFrame(
        {"tile_id": ["w", "e"], "row": [0, 0], "object_type": ["buildings", "forest"],
         "class_id": [np.nan, np.nan]},
        geometry=[box(0.3, 0.2, 1.0, 0.4), box(1.0, 0.2, 1.3, 0.4)],
        crs=4326,
    )  # fmt: skip
    assert len(stitch(pieces, tiles)) == 2
    assert len(stitch(pieces.assign(object_type="forest"), tiles)) == 1


def test_union_by_group_of_nothing_is_an_empty_geometry_array():
    """Geometries and labels given as plain lists: no group gives an empty array of
    geometries (an object array, as shapely's own functions give), and groups their
    unions."""
    empty = shapely.points(np.empty((0, 2)))  # shapely's own empty geometry array
    got = union_by_group([], [])
    assert got.shape == (0,) and got.dtype == empty.dtype == object
    parts = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(5, 5, 6, 6)]
    got = union_by_group(parts, [0, 0, 1])
    assert got.dtype == object and len(got) == 2
    assert got[0].equals(shapely.union_all(parts[:2])) and got[1].equals(parts[2])


def test_cut_pairs_of_exactly_two_pieces_is_their_pair():
    """Two pieces, one a tile, whose cut edges overlap over a length (measured here with
    shapely) are a pair; two that only touch at a corner are not."""
    tiles, pieces = _seam_pair((0.0, 0.0, 0.3), (0.0, 0.1, 0.4))
    shared = shapely.intersection(*pieces.boundary.values)
    assert shared.length > MIN_OVERLAP_DEG and shared.length >= 0.5 * 0.3
    left, right = cut_pairs(pieces, TilePlan(tiles))
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 1)]
    tiles, corner = _seam_pair((0.0, 0.0, 0.3), (0.0, 0.3, 0.6))
    assert shapely.intersection(*corner.boundary.values).length == 0
    assert len(cut_pairs(corner, TilePlan(tiles))[0]) == 0


@pytest.mark.parametrize("noise", [0.0, 0.4 * EPS, -0.9 * EPS])
def test_a_road_whose_ends_at_the_seam_differ_by_float_noise_is_one(noise):
    """Line pieces of two tiles whose ends on the seam lie within ``SEAM_EPS_DEG`` of each
    other (not at the very same float) are one road: DESIGN.md, *Seam stitching*."""
    x = X0 + 0.01
    tiles = gpd.GeoDataFrame(
        {"tile_id": ["w", "e"], "row": [0, 0]},
        geometry=[box(X0, Y0, x, Y0 + 0.01), box(x, Y0, X0 + 0.02, Y0 + 0.01)],
        crs=4326,
    )
    y = Y0 + 0.005
    west = shapely.LineString([(X0 + 0.002, y - 0.001), (x, y)])
    east = shapely.LineString([(x, y + noise), (X0 + 0.015, y + 0.002)])
    pieces = gpd.GeoDataFrame(
        {"tile_id": ["w", "e"], "row": [0, 0]}, geometry=[west, east], crs=4326
    )
    ends = shapely.distance(shapely.get_point(west, -1), shapely.get_point(east, 0))
    assert ends <= EPS and (ends > 0) == (noise != 0)
    out = stitch(pieces, tiles)
    assert len(out) == 1
    assert abs(out.geometry.values[0].length - (west.length + east.length)) < 2 * EPS


def _grid(draw, x0: float, nx: int, ny: int) -> list:
    """A rectangle at real coordinates cut into nx × ny boxes along shared grid lines (so
    neighbours share their edges' vertices exactly: a coverage), in any order."""
    xs = x0 + np.cumsum([0.0] + [draw(st.floats(1e-6, 1e-3)) for _ in range(nx)])
    ys = Y0 + np.cumsum([0.0] + [draw(st.floats(1e-6, 1e-3)) for _ in range(ny)])
    cells = [box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(nx) for j in range(ny)]
    return draw(st.permutations(cells))


@st.composite
def groups_for_the_coverage_union(draw):
    """Groups (labels sorted, as the caller gives them) of pieces of one kind each:
    ``cover`` a rectangle cut into up to ``_COVERAGE_MAX_PIECES`` boxes that share their
    edges; ``many`` one cut into more; ``apart`` boxes with a gap between them; ``line``
    lines; ``mixed`` a box and a line along its edge."""
    kinds = draw(st.lists(st.sampled_from(["cover", "many", "apart", "line", "mixed"]),
                          min_size=1, max_size=6))  # fmt: skip
    members, expected = [], []
    for g, kind in enumerate(kinds):
        x0 = X0 + 0.01 * g
        if kind == "cover":
            nx = draw(st.integers(1, _COVERAGE_MAX_PIECES))
            ny = draw(st.integers(1, _COVERAGE_MAX_PIECES // nx))
            members.append(_grid(draw, x0, nx, ny))
        elif kind == "many":
            nx = draw(st.integers(2, 4))
            ny = _COVERAGE_MAX_PIECES // nx + 1
            members.append(_grid(draw, x0, nx, ny))
        elif kind == "apart":
            n = draw(st.integers(2, 4))
            members.append([box(x0 + 2e-3 * k, Y0, x0 + 2e-3 * k + 1e-3, Y0 + 1e-3)
                            for k in range(n)])  # fmt: skip
        elif kind == "line":
            members.append([LineString([(x0, Y0), (x0 + 1e-3, Y0)]),
                            LineString([(x0 + 1e-3, Y0), (x0 + 2e-3, Y0 + 1e-3)])])  # fmt: skip
        else:
            members.append([box(x0, Y0, x0 + 1e-3, Y0 + 1e-3),
                            LineString([(x0 + 1e-3, Y0), (x0 + 1e-3, Y0 + 1e-3)])])  # fmt: skip
        expected.append(kind == "cover")
    gid = np.repeat(np.arange(len(kinds)), [len(m) for m in members])
    geoms = np.array([p for m in members for p in m], dtype=object)
    return geoms, gid, np.array(expected)


@settings(max_examples=150, deadline=None)
@given(groups_for_the_coverage_union())
@example(  # a coverage of exactly _COVERAGE_MAX_PIECES pieces
    (
        np.array(
            [
                box(X0 + k * 1e-4, Y0, X0 + (k + 1) * 1e-4, Y0 + 1e-4)
                for k in range(_COVERAGE_MAX_PIECES)
            ],
            dtype=object,
        ),
        np.zeros(_COVERAGE_MAX_PIECES, dtype=np.intp),
        np.array([True]),
    )
)
def test_the_coverage_union_is_each_exact_coverages_union_and_none_elsewhere(data):
    """Each group that forms an exact coverage of up to ``_COVERAGE_MAX_PIECES`` pieces
    comes back as the union of its pieces (against ``shapely.union_all``): one polygon of
    their total area; any other group (pieces apart, lines, more pieces) as None."""
    geoms, gid, expected = data
    got = _coverage_union(geoms, gid)
    assert got.dtype == object and len(got) == len(expected)
    for g, cover in enumerate(expected):
        if not cover:
            assert got[g] is None, g
            continue
        want = shapely.union_all(geoms[gid == g])
        assert want.geom_type == "Polygon"  # the truth: the pieces do form one polygon
        assert got[g].geom_type == "Polygon" and shapely.equals(got[g], want), g
        total = shapely.area(geoms[gid == g]).sum()
        assert abs(got[g].area - want.area) <= 1e-9 * total, g


@pytest.mark.parametrize("same", [False, True], ids=["overlapping", "identical"])
def test_the_coverage_union_of_overlapping_pieces_is_none(same):
    """Pieces that overlap (in part, or wholly) are no coverage: None for their group."""
    a = box(X0, Y0, X0 + 1e-3, Y0 + 1e-3)
    b = a if same else box(X0 + 5e-4, Y0, X0 + 1.5e-3, Y0 + 1e-3)
    assert shapely.intersection(a, b).area > 0  # the truth: they do overlap
    got = _coverage_union(np.array([a, b], dtype=object), np.array([0, 0]))
    assert got.shape == (1,) and got[0] is None
