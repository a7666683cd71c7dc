"""The fast path of change detection (identical and near-identical outlines matched
without an overlay) agrees with the general path: property tests on random terraces and
free-standing buildings, each kept as it is, kept to within a fraction of a millimetre,
redrawn with ±0.3 m of vertex noise, pulled down, or built new.

The general path is reached without touching the package: the same outlines with each
ring starting at its next vertex are the same polygons, but no longer the same
coordinate sequences, so the fast path does not take them.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from mapflow_geo import changes

LON, LAT = 37.6, 55.7  # real magnitudes: the float noise of real coordinates
M_LAT = 111_320.0
M_LON = M_LAT * np.cos(np.radians(LAT))
CELL_M = 40.0
FATES = ("same", "near", "noisy", "removed", "new")


def _outline(cx, cy, w, h, angle, ell):
    """A rectangle (or an L: its north-east quarter cut away), metres → degrees."""
    if ell:
        x = np.array([-0.5, 0.5, 0.5, 0.0, 0.0, -0.5]) * w
        y = np.array([-0.5, -0.5, 0.0, 0.0, 0.5, 0.5]) * h
    else:
        x, y = np.array([-0.5, 0.5, 0.5, -0.5]) * w, np.array([-0.5, -0.5, 0.5, 0.5]) * h
    c, s = np.cos(angle), np.sin(angle)
    xs, ys = cx + x * c - y * s, cy + x * s + y * c
    return np.column_stack([LON + xs / M_LON, LAT + ys / M_LAT])


@st.composite
def worlds(draw):
    """(buildings as vertex arrays, their fates): free-standing ones and terraces of
    attached houses sharing their walls (the same coordinates on both sides)."""
    n = draw(st.integers(1, 16))
    rings, fates = [], []
    for k in range(n):
        cx, cy = (k % 4) * CELL_M, (k // 4) * CELL_M
        if draw(st.booleans()):  # a terrace of 2–4 houses
            depth = draw(st.floats(6, 12))
            walls = np.cumsum([0.0] + draw(st.lists(st.floats(4, 9), min_size=2, max_size=4)))
            walls -= walls[-1] / 2
            for x0, x1 in zip(walls[:-1], walls[1:], strict=True):
                xy = np.array(
                    [[x0, -depth / 2], [x1, -depth / 2], [x1, depth / 2], [x0, depth / 2]]
                )
                rings.append(
                    np.column_stack([LON + (cx + xy[:, 0]) / M_LON, LAT + (cy + xy[:, 1]) / M_LAT])
                )
                fates.append(draw(st.sampled_from(FATES)))
        else:
            w, h = draw(st.floats(4, 25)), draw(st.floats(4, 20))
            angle, ell = draw(st.floats(0, np.pi)), draw(st.booleans())
            rings.append(_outline(cx, cy, w, h, angle, ell))
            fates.append(draw(st.sampled_from(FATES)))
    return rings, fates, draw(st.integers(0, 2**31 - 1))


def _polygons(rings) -> list:
    return [shapely.Polygon(r) for r in rings]


def _two_dates(rings, fates, seed):
    rng = np.random.default_rng(seed)
    before, after, ids_b, ids_a = [], [], [], []
    for k, (ring, fate) in enumerate(zip(rings, fates, strict=True)):
        if fate != "new":
            before.append(ring)
            ids_b.append(f"b{k}")
        if fate in ("same", "near", "noisy"):
            if fate == "near":  # a tenth of a millimetre
                ring = ring + rng.uniform(-1e-9, 1e-9, ring.shape)
            elif fate == "noisy":
                ring = ring + rng.uniform(-0.3, 0.3, ring.shape) / [M_LON, M_LAT]
        if fate != "removed":
            after.append(ring)
            ids_a.append(f"a{k}")
    frame = lambda ids, rs: gpd.GeoDataFrame(  # noqa: E731
        {"id": ids, "object_type": "building"}, geometry=_polygons(rs), crs=4326
    )
    return frame(ids_b, before), frame(ids_a, after), after


def _rotated(rings) -> list:
    """The same polygons, each ring starting at its next vertex."""
    return [np.roll(r, -1, axis=0) for r in rings]


@settings(max_examples=40, deadline=None)
@given(worlds())
def test_identical_outlines_are_unchanged(world):
    """Both dates the same: every building unchanged, one to one, IoU 1 — and so for the
    same polygons given with other starting vertices (the general path)."""
    rings, _, _ = world
    before = gpd.GeoDataFrame({"id": range(len(rings))}, geometry=_polygons(rings), crs=4326)
    for after_rings in (rings, _rotated(rings)):
        after = before.set_geometry(_polygons(after_rings))
        ch = changes(before, after)
        assert len(ch) == len(rings)
        assert (ch["change"] == "unchanged").all(), ch[["before_id", "after_id", "change"]]
        assert (ch["before_id"] == ch["after_id"]).all() and (ch["match"] == "1:1").all()
        np.testing.assert_allclose(ch["iou"], 1.0, rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(worlds())
def test_fast_path_agrees_with_the_general_path(world):
    """Buildings kept exactly, kept to 0.1 mm, redrawn with ±0.3 m noise, pulled down,
    built new: the changes found are the same whether identical outlines take the fast
    path or (rotated rings) the overlay."""
    before, after, after_rings = _two_dates(*world)
    fast = changes(before, after)
    general = changes(before, after.set_geometry(_polygons(_rotated(after_rings))))
    cols = ["change", "before_id", "after_id", "match"]
    assert fast[cols].astype(str).equals(general[cols].astype(str)), (fast[cols], general[cols])
    for col in ("area_before_m2", "area_after_m2"):
        np.testing.assert_allclose(fast[col], general[col], rtol=1e-9, err_msg=col)
    # outlines the same on the ~1 cm grid overlap by the smaller one's area: the IoU of a
    # house redrawn 0.1 mm off is within perimeter × 0.1 mm / area of the overlay's
    np.testing.assert_allclose(fast["iou"], general["iou"], rtol=0, atol=1e-3)


# -- the grid of the fast path ----------------------------------------------------------
GRID = 1e-7  # degrees (~1 cm): DESIGN.md, Change detection, Speed


def _on_grid_ring(cx_m, cy_m, w_m, h_m):
    """A rectangle's vertices (metres about the world's corner; the ring left open) on
    grid points."""
    ring = _outline(cx_m, cy_m, w_m, h_m, 0.0, False)
    return np.rint(ring / GRID) * GRID


def _iou_of(before, after) -> np.ndarray:
    ch = changes(before, after)
    assert (ch["match"] == "1:1").all() and (ch["change"] == "unchanged").all(), ch
    assert ch["before_id"].tolist() == ch["after_id"].tolist()
    return ch["iou"].to_numpy()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.floats(6, 20), st.floats(6, 20)), min_size=1, max_size=6),
    st.integers(0, 2**31 - 1),
)
def test_outlines_the_same_on_the_grid_overlap_over_the_smaller_area(sizes, seed):
    """The fast path's rule: one-ring outlines whose vertices, in order, round to the same
    points of the 1e-7° grid, and whose areas agree within 1e-7° × (width + height) of
    the before outline, overlap over the smaller of their areas — not over their exact
    intersection, which is smaller by up to perimeter × 1 cm. Outlines three grid steps
    apart are measured exactly (the overlay's intersection)."""
    rng = np.random.default_rng(seed)
    rings = [_on_grid_ring(40.0 * k, 0.0, w, h) for k, (w, h) in enumerate(sizes)]
    # the same on the grid: moved by 0.3 of a step, every vertex ± 0.05 more
    shift = rng.choice([-0.3, 0.3], (len(rings), 1, 2))
    noise = [rng.uniform(-0.05, 0.05, r.shape) for r in rings]
    jittered = [r + (d + e) * GRID for r, d, e in zip(rings, shift, noise, strict=True)]
    before = gpd.GeoDataFrame({"id": range(len(rings))}, geometry=_polygons(rings), crs=4326)
    after = before.set_geometry(_polygons(jittered))
    b, a = before.geometry.values, after.geometry.values
    smaller = np.minimum(shapely.area(b), shapely.area(a)) / np.maximum(
        shapely.area(b), shapely.area(a)
    )
    inter = shapely.area(shapely.intersection(b, a))
    exact = inter / (shapely.area(b) + shapely.area(a) - inter)
    assert (smaller - exact > 1e-5).all()  # the cases tell the two rules apart
    np.testing.assert_allclose(_iou_of(before, after), smaller, rtol=0, atol=1e-9)
    # three grid steps apart (a translation: the same areas): the overlay's IoU
    shifted = after.set_geometry([shapely.affinity.translate(g, 3 * GRID, 3 * GRID) for g in b])
    s = shifted.geometry.values
    inter = shapely.area(shapely.intersection(b, s))
    want = inter / (shapely.area(b) + shapely.area(s) - inter)
    assert (want < 1 - 1e-5).all()
    np.testing.assert_allclose(_iou_of(before, shifted), want, rtol=0, atol=1e-7)


@pytest.mark.parametrize("case", ["areas apart", "one-part multipolygon"])
def test_outlines_the_fast_path_does_not_take_are_measured_exactly(case):
    """Outlines the same on the grid that the fast path leaves to the overlay: a tall
    house whose areas differ by more than 1e-7° × (width + height) (its walls moved by
    0.9 of a step each, up and outwards: still the same grid points), and an outline
    given as a one-part MultiPolygon. Their IoU is the exact one."""
    ring = _on_grid_ring(0.0, 0.0, 5.0, 30.0)
    x0, y0, x1, y1 = ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max()
    d = 0.45 * GRID
    if case == "areas apart":
        b = shapely.box(x0 + d, y0 - d, x1 - d, y1 - d)
        a = shapely.box(x0 - d, y0 + d, x1 + d, y1 + d)
        assert abs(b.area - a.area) > GRID * ((x1 - x0) + (y1 - y0))
    else:
        b = shapely.MultiPolygon([shapely.Polygon(ring)])
        a = shapely.Polygon(ring + [0.3 * GRID, -0.2 * GRID])  # the same grid points
    same_grid = np.rint(shapely.get_coordinates(b) / GRID)
    assert (same_grid == np.rint(shapely.get_coordinates(a) / GRID)).all()
    inter = shapely.intersection(b, a).area
    want = inter / (b.area + a.area - inter)
    assert min(b.area, a.area) / max(b.area, a.area) - want > 1e-5
    before = gpd.GeoDataFrame({"id": [0]}, geometry=[b], crs=4326)
    after = gpd.GeoDataFrame({"id": [0]}, geometry=[a], crs=4326)
    np.testing.assert_allclose(_iou_of(before, after), [want], rtol=0, atol=1e-7)


def test_the_fast_paths_masks_are_the_outlines_own_coordinates():
    """``same_outlines`` on four pairs of one outline: given twice (identical), moved by
    0.3 of a grid step (the same grid points), its ring started at its next vertex (the
    same polygon, other coordinates) and moved by three steps. Its two masks (boolean,
    one per pair) against the coordinates themselves: identical where they are equal,
    the same where they round to the same grid points in the same order."""
    from mapflow_geo.results.changes._identical import GRID_DEG, same_outlines
    from mapflow_geo.results.changes._objects import frame_objects

    ring = _on_grid_ring(0.0, 0.0, 10.0, 8.0)
    b = [ring, ring, ring, ring + 3 * GRID]
    a = [ring.copy(), ring + 0.3 * GRID, np.roll(ring, -1, axis=0), ring]
    frame = lambda rs: gpd.GeoDataFrame(  # noqa: E731
        {"id": range(len(rs)), "object_type": "building"}, geometry=_polygons(rs), crs=4326
    )
    ob, oa = frame_objects(frame(b)), frame_objects(frame(a))
    i = j = np.arange(len(b))
    same, exact = same_outlines(ob, oa, i, j)
    cb = [shapely.get_coordinates(g) for g in ob.geoms]
    ca = [shapely.get_coordinates(g) for g in oa.geoms]
    identical = [np.array_equal(x, y) for x, y in zip(cb, ca, strict=True)]
    grid = [
        x.shape == y.shape and np.array_equal(np.rint(x / GRID_DEG), np.rint(y / GRID_DEG))
        for x, y in zip(cb, ca, strict=True)
    ]
    assert identical == [True, False, False, False] and grid == [True, True, False, False]
    assert same.dtype == exact.dtype == bool
    assert exact.tolist() == identical and same.tolist() == grid
    assert i[exact].tolist() == [0] and j[same].tolist() == [0, 1]
