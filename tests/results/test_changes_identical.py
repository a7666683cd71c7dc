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
