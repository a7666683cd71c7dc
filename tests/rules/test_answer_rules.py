"""The answer rules, each against its source of truth: the GeoParquet metadata against the
objects' own bounds, the change rule of DESIGN.md (*Change detection*) on outlines built
to sit on each side of its thresholds, and monitoring against the simulator's world as it
changes over time (``server.truth`` at each imagery date).

Each test names the wrong rule it must catch; each was seen failing on that rule.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from support.fsync import record_fsyncs

import mapflow_geo  # noqa: F401  (gdf.mapflow)
from mapflow_geo import changes, open_run, sim
from mapflow_geo._geodesy import metres_per_degree
from mapflow_geo.results.changes import ChangeRule

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}
LAT, LON = 50.0, 30.0
M_LAT = 111_320.0  # metres per degree of latitude, near enough for outlines of metres
M_LON = M_LAT * np.cos(np.radians(LAT))
DAY = 86400.0


# ------------------------------------------------------------------------ dataset
def _wkb_bounds(path: Path) -> np.ndarray:
    table = pq.read_table(path, columns=["geometry"])
    geoms = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False))
    b = shapely.bounds(geoms)
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])


def test_dataset_bbox_metadata_is_the_objects_bounds(tmp_path):
    """GeoParquet 1.1 ``bbox`` of each part and of the dataset (``_common_metadata``):
    the bounds of the objects stored, both corners, read back from the files' own
    geometries. Wrong rules caught: the upper corner taken with ``min`` (or as the
    running minimum), so a bbox shorter than its objects and ``bbox=`` reads that skip
    them."""
    area = gpd.GeoDataFrame(geometry=[shapely.box(37.60, 55.70, 37.64, 55.725)], crs=4326)
    with sim.serve(credits=10**9, seed=2) as server:
        area.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path / "run",
            area_limit_km2=1.0, max_aois=1, **FAST,
        )  # fmt: skip
    out = tmp_path / "out"
    res = open_run(tmp_path / "run")
    res.to_parquet(out, partition_features=max(5, len(res.features) // 3))
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) >= 2
    for path in [*parts, out / "_common_metadata"]:
        geo = json.loads(pq.read_schema(path).metadata[b"geo"])
        got = np.array(geo["columns"]["geometry"]["bbox"])
        want = _wkb_bounds(path) if path in parts else np.array(
            [*np.min([_wkb_bounds(p)[:2] for p in parts], axis=0),
             *np.max([_wkb_bounds(p)[2:] for p in parts], axis=0)]
        )  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=str(path))
        assert got[2] > got[0] and got[3] > got[1]


# ------------------------------------------------------------------------ changes
def _rect(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A rectangle given in metres east/north of (LON, LAT)."""
    return shapely.box(LON + x0 / M_LON, LAT + y0 / M_LAT, LON + x1 / M_LON, LAT + y1 / M_LAT)


def _frame(ids: list[str], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": ids, "object_type": "building"}, geometry=geoms, crs=4326)


def test_overlap_is_measured_over_the_smaller_object():
    """Rule step 1: two objects are linked when their intersection is at least
    ``min_overlap`` (0.5) of the *smaller* one. A 20 × 20 m house (400 m²) and, after, a
    10 × 10 m outline 60 % of which lies inside it (60 m²: 60 % of the smaller, 15 % of
    the larger; 30 m² of it more than 1 m outside, so no fragment rule can link it):
    they are one group, compared as a whole (a house rebuilt smaller). Wrong rule caught:
    the ratio over the larger object, which reports one house removed and one new."""
    before = _frame(["b"], [_rect(0, 0, 20, 20)])
    after = _frame(["a"], [_rect(14, 5, 24, 15)])
    inter = shapely.area(shapely.intersection(before.geometry[0], after.geometry[0]))
    small, large = after.geometry[0].area, before.geometry[0].area
    assert inter / small >= 0.5 > inter / large  # the case sits between the two rules
    ch = changes(before, after)
    assert len(ch) == 1, ch[["before_id", "after_id", "change"]]
    assert ch["before_id"].iloc[0] == "b" and ch["after_id"].iloc[0] == "a"
    assert ch["change"].iloc[0] == "modified"


def test_at_a_min_overlap_of_one_an_object_wholly_inside_the_other_is_linked():
    """Rule step 1 at its bound: "at least ``min_overlap`` of the smaller one" includes
    it, so with ``min_overlap=1`` an object lying wholly inside the other (its whole
    area shared) is linked to it: one group, not a removed and a new object. The
    corners are binary fractions of a degree, so that every area here is exact in
    floats. Wrong rule caught: "at least" read as "more than" (for the overlap, or for
    its bound from the envelopes)."""
    step = 2.0**-12  # degrees, about 27 m of latitude
    outer = shapely.box(LON, LAT, LON + 4 * step, LAT + 4 * step)
    inner = shapely.box(LON + step, LAT + step, LON + 3 * step, LAT + 3 * step)
    assert outer.intersection(inner).area == inner.area  # all of the smaller shared
    ch = changes(_frame(["b"], [outer]), _frame(["a"], [inner]), min_overlap=1.0)
    assert len(ch) == 1, ch[["before_id", "after_id", "change"]]
    assert ch["before_id"].iloc[0] == "b" and ch["after_id"].iloc[0] == "a"


@pytest.mark.parametrize(
    ("lon", "lat", "size"),
    [(-74.0, 40.7, 2e-4), (-58.4, -34.6, 2e-4), (20.0, 0.0, 4.0)],
    ids=["west", "south-west", "four-degrees"],
)
def test_objects_overlapping_over_half_the_smaller_are_linked_anywhere_at_any_size(lon, lat, size):
    """Rule step 1 wherever the objects lie and whatever their size: a before and an
    after object whose intersection is at least half the smaller one (measured here
    with pyproj on the ellipsoid) are linked, one group. West of Greenwich, south of the
    equator, and for a tract four degrees wide. Wrong rules caught: a bound of the
    overlap (from the envelopes) that fails for negative coordinates or for envelopes
    wider than a degree, and so drops the pair."""
    before_g = shapely.box(lon, lat, lon + size, lat + size)
    after_g = shapely.box(lon + 0.7 * size, lat + 0.25 * size, lon + 1.2 * size, lat + 0.75 * size)
    geod = pyproj.Geod(ellps="WGS84")
    area = [abs(geod.geometry_area_perimeter(g)[0]) for g in (before_g, after_g)]
    inter = abs(geod.geometry_area_perimeter(before_g.intersection(after_g))[0])
    assert inter / min(area) >= 0.55 and inter / max(area) < 0.5
    before, after = _frame(["b"], [before_g]), _frame(["a"], [after_g])
    ch = changes(before, after)
    assert len(ch) == 1, ch[["before_id", "after_id", "change"]]
    assert ch["before_id"].iloc[0] == "b" and ch["after_id"].iloc[0] == "a"


@pytest.mark.parametrize(
    "after_geoms",
    [
        # a 4 m² sliver 0.2 m outside the old outline, 1.7 m from the new one
        [_rect(0, 0, 10, 8.5), _rect(0, 10.2, 10, 10.6)],
        # the house extended 2 m north, and a 4 m² sliver 0.3 m off its new wall (2.3 m
        # from the old outline): a piece of its own side's house (step 2, second half)
        [_rect(0, 0, 10, 12), _rect(0, 12.3, 10, 12.7)],
        # small but not thin: a 2.2 × 2.2 m block 0.3 m off the old outline (3.3 m² of it
        # beyond 1 m), 1.8 m from the new one, which shrank
        [_rect(0, 0, 8.5, 10), _rect(10.3, 2, 12.5, 4.2)],
        # thin but not small: a 0.9 × 12 m strip (10.8 m², mean width 0.84 m) 0.1 m off
        # the old outline (about 1 m² of it beyond 1 m), 1.6 m from the new one
        [_rect(0, 0, 8.5, 10), _rect(10.1, 0, 11.0, 12)],
    ],
    ids=["near-the-other-side", "beside-its-own-side", "small-block", "thin-strip"],
)
def test_a_sliver_beside_an_object_is_a_fragment_not_a_new_object(after_geoms):
    """Rule step 2 (fragments): an object linked to nothing of which at most
    ``area_change_m2`` (5 m²) lies farther than ``tolerance_m`` (1 m) from the other
    side joins the group of the nearest object there; one still linked to nothing, of at
    most ``area_change_m2``, within ``tolerance_m`` of an object of its own side is a
    piece of it. A 4 m² sliver left beside a house by a seam is part of that house's
    group, never a new building; so are a small block and a thin strip beside it. Wrong
    rules caught: either half of the fragment rule switched off (the sliver reported
    ``new``); a fragment asked to be small *and* thin, or thin by a wrong measure."""
    before = _frame(["b"], [_rect(0, 0, 10, 10)])
    after = _frame(["a0", "a1"], after_geoms)
    assert not shapely.intersects(after.geometry[1], before.geometry[0])
    ch = changes(before, after)
    assert (ch["change"] == "new").sum() == 0, ch[["before_id", "after_id", "change"]]
    assert len(ch) == 1
    assert sorted(np.atleast_1d(ch["after_id"].iloc[0])) == ["a0", "a1"]


@pytest.mark.parametrize(
    ("after_m", "change"),
    [
        # the house shrank by 1 m on its east side; a 2 m² sliver sits on the old east
        # wall, 1 m from the new outline: a fragment of the old house (IoU 90 / 102,
        # -8 %: unchanged)
        ([(0, 0, 9, 10), (10, 0, 10.2, 10)], "unchanged"),
        # the house extended 2 m north; a 4 m² sliver sits on its new north wall, 2 m
        # from the old outline: a piece of the new house (+24 %, all of it beyond the
        # old outline: modified)
        ([(0, 0, 10, 12), (0, 12, 10, 12.4)], "modified"),
    ],
    ids=["fragment", "piece"],
)
def test_within_the_tolerance_includes_it_a_sliver_touching_at_a_tolerance_of_zero(after_m, change):
    """Rule step 2 at its bound: "within ``tolerance_m``" includes the tolerance itself,
    so with ``tolerance_m=0`` a sliver (at most ``area_change_m2``) that touches an
    outline (distance exactly 0) is a fragment of the other side's object, or a piece of
    its own side's, and joins its group. Wrong rule caught: "within" read as strictly
    closer (the sliver reported ``new``)."""
    old = _rect(0, 0, 10, 10)
    house, sliver = (_rect(*r) for r in after_m)
    geod = pyproj.Geod(ellps="WGS84")
    sliver_m2 = abs(geod.geometry_area_perimeter(sliver)[0])
    assert 1.0 < sliver_m2 <= 5.0 < abs(geod.geometry_area_perimeter(house)[0])
    assert not shapely.intersects(sliver, house.union(old).buffer(-1e-9))  # no overlap
    assert min(shapely.distance(sliver, old), shapely.distance(sliver, house)) == 0.0
    before, after = _frame(["b"], [old]), _frame(["a0", "a1"], [house, sliver])
    ch = changes(before, after, tolerance_m=0.0)
    assert len(ch) == 1, ch[["before_id", "after_id", "change"]]
    assert sorted(np.atleast_1d(ch["after_id"].iloc[0])) == ["a0", "a1"]
    assert ch["change"].iloc[0] == change


def test_at_most_area_change_m2_beyond_includes_it_a_strip_within_the_tolerance_at_zero():
    """Rule step 2 at its bound: a thin object of which *at most* ``area_change_m2`` lies
    farther than the tolerance is a fragment, so with ``area_change_m2=0`` a thin strip
    lying wholly within 1 m of an unchanged house (0 m² beyond) still joins its group
    (IoU 100 / 104.5 ≥ 0.8: unchanged). Wrong rule caught: "at most" read as "less than"
    (the strip reported ``new``)."""
    old, strip = shapely.box(0, 0, 10, 10), shapely.box(10.2, 0.5, 10.7, 9.5)
    assert 2 * strip.area / strip.length <= 1.0  # thin
    assert strip.difference(old.buffer(1.0, quad_segs=1)).area == 0.0  # none of it beyond
    assert old.area / (old.area + strip.area) >= 0.8
    before = _frame(["b"], [_rect(*old.bounds)])
    after = _frame(["a0", "a1"], [_rect(*old.bounds), _rect(*strip.bounds)])
    ch = changes(before, after, area_change_m2=0.0)
    assert len(ch) == 1, ch[["before_id", "after_id", "change"]]
    assert sorted(np.atleast_1d(ch["after_id"].iloc[0])) == ["a0", "a1"]
    assert ch["change"].iloc[0] == "unchanged"


def test_a_corner_moved_within_the_tolerance_adds_nothing_beyond_it():
    """Rule step 4, "farther than the tolerance" taken exactly: a house whose corner was
    drawn 0.995 m off (every point of the new outline within 0.995 m of the old) has
    nothing beyond the 1 m tolerance, so even with ``area_change_m2=0`` and
    ``min_iou=1`` (any change beyond the tolerance is a modification) it is unchanged.
    The distance measured here with a fine buffer (256 segments a quarter circle). Wrong
    rule caught: the parts beyond the tolerance measured with a coarse buffer whose
    chords cut inside the 1 m circle (a sliver of 1e-4 m² found beyond)."""
    old = shapely.box(0, 0, 10, 10)
    angle = np.radians(11.25)  # half-way along a chord of a 4-segment quarter circle
    tip = (10 + 0.995 * np.cos(angle), 10 + 0.995 * np.sin(angle))
    new = shapely.Polygon([(0, 0), (10, 0), tip, (0, 10)])
    assert shapely.hausdorff_distance(new, old) <= 0.996
    for a, b in ((new, old), (old, new)):  # nothing of either farther than 1 m out
        assert a.difference(b.buffer(1.0, quad_segs=256)).area == 0.0
    assert new.area - old.area > 5.0  # a change, all of it within the tolerance
    before = _frame(["b"], [_in_degrees(old, LAT)])
    after = _frame(["a"], [_in_degrees(new, LAT)])
    ch = changes(before, after, area_change_m2=0.0, min_iou=1.0)
    assert len(ch) == 1 and ch["change"].iloc[0] == "unchanged", ch


@pytest.mark.parametrize(("gap", "moved"), [(0.5, 0.0), (0.5, 0.2), (0.0, 0.0)])
def test_a_kept_shed_beside_a_kept_house_is_no_piece_of_it(gap, moved):
    """Rule step 2 applies to objects *linked to nothing*: a 4 m² shed 0.5 m from a house
    or against its wall (within the tolerance), both standing at both dates (as drawn
    before, or redrawn 0.2 m east), is linked to its own later outline (step 1), so it
    is its own unchanged object, never a fragment or a piece of the house. Wrong rules
    caught: the pieces or the fragments looked for among linked objects too (the shed
    joins the house's group)."""
    house, shed = shapely.box(0, 0, 10, 10), shapely.box(10 + gap, 0, 12 + gap, 2)
    assert shed.area <= 5.0 and shapely.distance(house, shed) <= 1.0
    before = _frame(["h", "s"], [_rect(*house.bounds), _rect(*shed.bounds)])
    after = _frame(
        ["h2", "s2"],
        [_rect(*shapely.affinity.translate(g, moved).bounds) for g in (house, shed)],
    )
    ch = changes(before, after)
    pairs = sorted(zip(ch["before_id"], ch["after_id"], ch["change"], strict=True))
    assert pairs == [("h", "h2", "unchanged"), ("s", "s2", "unchanged")], pairs


def test_a_new_shed_diagonally_off_a_house_beyond_the_tolerance_is_new():
    """Rule step 2, second half, needs the piece *within* ``tolerance_m`` of its own
    side's object: a new 4 m² shed off a house's corner, 1.13 m away diagonally (its
    envelope grown by the tolerance reaches the house's, the shed itself does not), is
    ``new``; the house is unchanged. Wrong rule caught: no piece left after the distance
    check mishandled (a crash)."""
    house, shed = shapely.box(0, 0, 10, 10), shapely.box(10.8, 10.8, 12.8, 12.8)
    assert 1.0 < shapely.distance(house, shed) < 2**0.5 and shed.area <= 5.0
    before = _frame(["h"], [_rect(*house.bounds)])
    after = _frame(["h2", "s"], [_rect(*house.bounds), _rect(*shed.bounds)])
    ch = changes(before, after)
    pairs = sorted(zip(ch["before_id"].fillna("-"), ch["after_id"], ch["change"], strict=True))
    assert pairs == [("-", "s", "new"), ("h", "h2", "unchanged")], pairs


def test_a_groups_iou_counts_every_overlap_inside_it():
    """Rule step 3: a group's IoU is the intersection over union of its two sides —
    every overlap between its before and after objects counts, also one too small to
    link them on its own. Two houses rebuilt as two of another split (``min_overlap``
    0.4): the old west house lies inside the new west one, a small old annex straddles
    both new ones (it links them into one group), and the old east house reaches 1 m
    into the new west one (7 m², far below 0.4 of either). The before side lies wholly
    inside the after side, so the IoU is their areas' ratio (shapely here). Wrong rule
    caught: the overlap of a pair found in one group only through others left
    unmeasured (IoU 0.80 for 0.86)."""
    after_m = [shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)]
    before_m = [shapely.box(0, 0, 9, 10), shapely.box(9, 3, 20, 10), shapely.box(9.2, 0, 11, 3)]
    b_all, a_all = shapely.union_all(before_m), shapely.union_all(after_m)
    assert shapely.union_all([b_all, a_all]).area == pytest.approx(a_all.area)  # inside
    assert before_m[1].intersection(after_m[0]).area < 0.4 * after_m[0].area
    want = b_all.area / a_all.area
    before = _frame(["w", "e", "annex"], [_rect(*g.bounds) for g in before_m])
    after = _frame(["w2", "e2"], [_rect(*g.bounds) for g in after_m])
    ch = changes(before, after, min_overlap=0.4)
    assert len(ch) == 1, ch[["before_id", "after_id", "change"]]
    assert sorted(ch["before_id"].iloc[0]) == ["annex", "e", "w"]
    assert ch["iou"].iloc[0] == pytest.approx(want, abs=2e-3)


def test_an_area_that_did_not_change_is_no_change_of_area_at_zero_thresholds():
    """Rule step 4, "changed by more than" ``area_change`` and ``area_change_m2``: an
    area that did not change at all did not change by more than 0. A house redrawn 2 m
    east (the same area to the last bit: its corners are binary fractions of a degree)
    with both thresholds 0 and ``min_iou=0`` (the IoU clause off) is unchanged, although
    a strip of it lies beyond the tolerance. Wrong rule caught: "more than" read as "at
    least" (reported modified)."""
    step = 2.0**-14  # degrees, about 7 m of latitude
    old = shapely.box(LON, LAT, LON + 2 * step, LAT + 2 * step)
    new = shapely.affinity.translate(old, step / 2)
    assert new.area == old.area and new.difference(old).area > 0
    rule = {"area_change": 0.0, "area_change_m2": 0.0, "min_iou": 0.0}
    ch = changes(_frame(["b"], [old]), _frame(["a"], [new]), **rule)
    assert len(ch) == 1 and ch["change"].iloc[0] == "unchanged", ch
    assert ch["area_change_m2"].iloc[0] == 0.0


def test_an_extension_within_the_tolerance_is_unseen_at_zero_thresholds():
    """Rule step 4: modified needs *more than* ``area_change_m2`` beyond the tolerance.
    A house extended 0.8 m along a side (all of it within the 1 m tolerance: 0 m² beyond,
    shapely) with ``area_change=0``, ``area_change_m2=0`` and ``min_iou=0`` is unchanged:
    the extension shallower than the tolerance is not seen. Wrong rule caught: "more
    than" read as "at least" (reported modified)."""
    old, new = shapely.box(0, 0, 10, 10), shapely.box(0, 0, 10, 10.8)
    assert new.difference(old.buffer(1.0, quad_segs=1)).area == 0.0
    rule = {"area_change": 0.0, "area_change_m2": 0.0, "min_iou": 0.0}
    ch = changes(_frame(["b"], [_rect(*old.bounds)]), _frame(["a"], [_rect(*new.bounds)]), **rule)
    assert len(ch) == 1 and ch["change"].iloc[0] == "unchanged", ch


def test_a_tiny_kept_object_reports_its_iou():
    """Rule step 3: every group with both sides has an IoU, however small: a 0.5 × 0.5 m
    object standing at both dates, redrawn 0.1 m east, reports the IoU of its two
    outlines (shapely). Wrong rule caught: the IoU left out (NaN) for a union under 1 m²."""
    old = shapely.box(0, 0, 0.5, 0.5)
    new = shapely.affinity.translate(old, 0.1)
    want = old.intersection(new).area / old.union(new).area
    ch = changes(_frame(["b"], [_rect(*old.bounds)]), _frame(["a"], [_rect(*new.bounds)]))
    assert len(ch) == 1 and ch["iou"].iloc[0] == pytest.approx(want, abs=2e-3), ch


def _groups_by_rule(houses: dict, slivers: dict, tol: float = 1.0) -> dict:
    """Each sliver (metres) joined to the nearest house within ``tol``: house → its
    slivers."""
    out = {name: [] for name in houses}
    for s, g in slivers.items():
        dist = {h: shapely.distance(g, hg) for h, hg in houses.items()}
        nearest = min(dist, key=dist.get)
        assert dist[nearest] <= tol
        out[nearest].append(s)
    return out


@pytest.mark.parametrize("side", ["after", "before", "before+far-new"])
def test_a_fragment_near_two_objects_joins_the_nearest_only(side):
    """Rule step 2: a fragment joins the group of the *nearest* object of the other side.
    Two unchanged 10 × 16 m houses 1.5 m apart; thin 6 m² slivers (0.4 × 15 m, wholly
    within the tolerance of the houses; too large to be pieces of their own side): one
    west of the first house, one in the gap (0.3 m from the first, 0.8 m from the
    second), one east of the second. Each house's group takes its own slivers and stays
    apart from the other's. The slivers drawn on the after side or on the before side
    (with or without a new house far off, which is linked to nothing). Wrong rules
    caught: a sliver in the gap joining both houses (their groups merged), a fragment
    lost when it is not the first lone object, the before side's fragments not looked for
    when the after side has no lone object or none near."""
    houses = {"x": shapely.box(0, 0, 10, 16), "y": shapely.box(11.5, 0, 21.5, 16)}
    slivers = {
        "t": shapely.box(-0.7, 0.5, -0.3, 15.5),
        "s": shapely.box(10.3, 0.5, 10.7, 15.5),
        "u": shapely.box(21.8, 0.5, 22.2, 15.5),
    }
    want = _groups_by_rule(houses, slivers)
    assert want == {"x": ["t", "s"], "y": ["u"]}  # the gap's sliver is nearer x
    cover = shapely.union_all(list(houses.values())).buffer(1.0)
    for g in slivers.values():  # thin, not small (so no piece of its own side), covered
        assert 2 * g.area / g.length <= 1.0 and g.area > 5.0 >= g.difference(cover).area
    plain = _frame(list(houses), [_rect(*g.bounds) for g in houses.values()])
    names = [*houses, *slivers]
    full = _frame(names, [_rect(*g.bounds) for g in [*houses.values(), *slivers.values()]])
    before, after = (plain, full) if side == "after" else (full, plain)
    if side == "before+far-new":
        after = pd.concat([after, _frame(["far"], [_rect(500, 500, 510, 510)])])
    ch = changes(before, after)
    own, other = ("before_id", "after_id") if side == "after" else ("after_id", "before_id")
    kept = ch[ch[own].isin(list(houses))]
    got = {
        row[own]: sorted(set(np.atleast_1d(row[other])) - {row[own]}) for _, row in kept.iterrows()
    }
    assert got == {h: sorted(s) for h, s in want.items()}, ch[["before_id", "after_id", "change"]]
    assert (kept["change"] == "unchanged").all()
    rest = ch.drop(index=kept.index)
    assert list(rest["after_id"]) == (["far"] if side == "before+far-new" else [])
    assert (rest["change"] == "new").all()


@pytest.mark.parametrize("side", ["after", "before"])
def test_a_piece_near_two_objects_of_its_side_joins_the_nearest_only(side):
    """Rule step 2, second half: a piece (at most ``area_change_m2``, linked to nothing,
    more than the tolerance from the other side) joins the group of the *nearest* object
    of its own side. Two houses extended towards each other and outwards, each with a
    4 m² sliver 0.3 m off its outer wall, and one in the gap between them (0.3 m from the
    first, 0.5 m from the second), all more than 1 m from the old outlines; the same
    read backwards (the slivers on the before side). Wrong rules caught: the sliver in
    the gap joining both houses (their groups merged); a piece lost when it is not the
    first; a before piece linked to itself."""
    old = {"x": shapely.box(0, 0, 10, 10), "y": shapely.box(14, 0, 24, 10)}
    new = {"x": shapely.box(-2, 0, 12, 10), "y": shapely.box(13.2, 0, 26, 10)}
    slivers = {
        "t": shapely.box(-2.7, 0, -2.3, 10),
        "s": shapely.box(12.3, 0, 12.7, 10),
        "u": shapely.box(26.3, 0, 26.7, 10),
    }
    assert all(shapely.distance(g, o) > 1.0 for g in slivers.values() for o in old.values())
    want = _groups_by_rule(new, slivers)
    assert want == {"x": ["t", "s"], "y": ["u"]}
    plain = _frame(list(old), [_rect(*g.bounds) for g in old.values()])
    full = _frame([*new, *slivers], [_rect(*g.bounds) for g in [*new.values(), *slivers.values()]])
    before, after = (plain, full) if side == "after" else (full, plain)
    own, other = ("before_id", "after_id") if side == "after" else ("after_id", "before_id")
    ch = changes(before, after)
    got = {
        row[own]: sorted(set(np.atleast_1d(row[other])) - {row[own]}) for _, row in ch.iterrows()
    }
    assert got == {h: sorted(s) for h, s in want.items()}, ch[["before_id", "after_id", "change"]]


@pytest.mark.parametrize("width", [2.5, 3.0])
@pytest.mark.parametrize("side", ["removed", "new"])
def test_a_small_building_between_two_kept_ones_is_a_change_not_a_fragment(side, width):
    """Rule step 2 takes slivers, not buildings: a fragment is small (at most
    ``area_change_m2``) or thin (2 · area / perimeter at most ``tolerance_m``). A 20–24 m²
    house 2.5–3 m wide between two kept houses of a terrace (its shared walls within the
    tolerance of both: only 4–8 m² of it lies farther than 1 m from them) that is pulled
    down is ``removed``; one built into such a gap is ``new``; the neighbours are
    unchanged. Wrong rule caught: fragments by the area beyond the tolerance alone (the
    small house joins a neighbour's group, which stays unchanged: never reported)."""
    left, right = _rect(0, 0, 6, 8), _rect(6 + width, 0, 12 + width, 8)
    small = _rect(6, 0, 6 + width, 8)
    full = _frame(["left", "small", "right"], [left, small, right])
    kept = _frame(["left", "right"], [left, right])
    before, after = (full, kept) if side == "removed" else (kept, full)
    ch = changes(before, after)
    col = "before_id" if side == "removed" else "after_id"
    got = ch.set_index(ch[col].astype(str))
    assert len(ch) == 3, ch[["before_id", "after_id", "change"]]
    assert got.loc["small", "change"] == side
    assert (got.drop(index="small")["change"] == "unchanged").all()


@pytest.mark.parametrize(
    "rule",
    [
        {"min_overlap": 1.0},
        {"min_overlap": 1e-9},
        {"min_iou": 0.0},
        {"min_iou": 1.0},
        {"tolerance_m": 0.0},
        {"area_change": 0.0},
        {"area_change_m2": 0.0},
    ],
)
def test_the_change_rules_thresholds_take_their_whole_range(rule):
    """``min_overlap`` in (0, 1], ``min_iou`` in [0, 1], the others ≥ 0: the ends of
    each range are thresholds a user may ask for."""
    house = _frame(["h"], [_rect(0, 0, 10, 10)])
    assert ChangeRule(**rule) == ChangeRule(**rule)
    assert len(changes(house, house, **rule)) == 1


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"min_overlap": 0.0}, r"min_overlap must be in \(0, 1\], not 0.0"),
        ({"min_overlap": 1.5}, r"min_overlap must be in \(0, 1\], not 1.5"),
        ({"min_iou": -0.1}, r"min_iou must be in \[0, 1\], not -0.1"),
        ({"min_iou": 1.01}, r"min_iou must be in \[0, 1\], not 1.01"),
        ({"tolerance_m": -1.0}, r"tolerance_m must be >= 0, not -1.0"),
        ({"area_change": -0.1}, r"area_change must be >= 0, not -0.1"),
        ({"area_change_m2": float("nan")}, r"area_change_m2 must be >= 0, not nan"),
    ],
)
def test_thresholds_out_of_range_are_refused_by_name(rule, message):
    with pytest.raises(ValueError, match=message):
        ChangeRule(**rule)


def _in_degrees(g: shapely.Geometry, lat: float) -> shapely.Geometry:
    """An outline drawn in metres east/north of (LON, ``lat``) → degrees."""
    kx, ky = (float(k[0]) for k in metres_per_degree(np.array([lat])))
    return shapely.affinity.affine_transform(g, [1 / kx, 0, 0, 1 / ky, LON, lat])


def _rule_of_design(b: shapely.Geometry, a: shapely.Geometry, margin: float = 0.02):
    """DESIGN.md's rule for one before and one after outline (metres, neither small nor
    thin: no fragments) computed with shapely: ``(changes, clear)``, ``clear`` False
    when a quantity lies within ``margin`` (relative) of its threshold."""
    tol, m2, share, min_iou = 1.0, 5.0, 0.10, 0.8
    inter = b.intersection(a).area
    small = min(b.area, a.area)
    near = [inter / small - 0.5]
    if inter < 0.5 * small:
        return ["removed", "new"], abs(near[0]) > margin
    union = b.area + a.area - inter
    delta = abs(a.area - b.area)
    added = a.difference(b.buffer(tol)).area
    lost = b.difference(a.buffer(tol)).area
    moved = added + lost
    grown = delta > max(m2, share * b.area)
    near += [delta / max(m2, share * b.area) - 1, max(added, lost) / m2 - 1]
    near += [moved / m2 - 1, (1 - moved / union) / min_iou - 1]
    real = grown and max(added, lost) > m2
    reshaped = moved > m2 and 1 - moved / union < min_iou
    clear = min(abs(v) for v in near) > margin
    return ["modified" if real or reshaped else "unchanged"], clear


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(4, 20),
            st.floats(4, 20),
            st.floats(0, np.pi),  # before: w, h, angle
            st.floats(0.5, 1.8),
            st.floats(0.5, 1.8),  # after: scaled
            st.floats(-8, 8),
            st.floats(-8, 8),
            st.floats(-0.3, 0.3),  # moved, turned
        ),
        min_size=1,
        max_size=8,
    )
)
def test_each_pair_gets_the_change_the_rule_gives(pairs):
    """Steps 1, 3 and 4 of the change rule against the rule computed on its own with
    shapely: a house and its later outline (grown, shrunk, moved, turned), 15° of latitude
    from the next pair — linked or not by their overlap over the smaller one, ``modified``
    or ``unchanged`` by the area change and the parts beyond the tolerance, in metres at
    its own latitude; the IoU and the area change reported are the outlines' own."""
    before, after, want = [], [], []
    for k, (w, h, angle, sx, sy, dx, dy, turn) in enumerate(pairs):
        b = shapely.affinity.rotate(shapely.box(-w / 2, -h / 2, w / 2, h / 2), angle, (0, 0), True)
        a = shapely.affinity.scale(b, sx, sy, origin=(0, 0))
        a = shapely.affinity.rotate(shapely.affinity.translate(a, dx, dy), turn, (0, 0), True)
        assume(min(a.area, b.area) > 12 and a.area / a.length > 0.75)  # neither small nor thin
        got, clear = _rule_of_design(b, a)
        assume(clear)
        inter = b.intersection(a).area
        before.append(_in_degrees(b, -60.0 + 15.0 * k))  # pairs from 60° S to 45° N
        after.append(_in_degrees(a, -60.0 + 15.0 * k))
        want.append((k, got, inter / (a.area + b.area - inter), a.area - b.area))
        event("+".join(got))
    ch = changes(_frame([f"b{k}" for k, *_ in want], before),
                 _frame([f"a{k}" for k, *_ in want], after))  # fmt: skip
    for k, kinds, iou, delta in want:
        mine = ch[(ch["before_id"] == f"b{k}") | (ch["after_id"] == f"a{k}")]
        assert sorted(mine["change"].astype(str)) == sorted(kinds), (k, mine)
        if len(kinds) == 1:
            row = mine.iloc[0]
            assert row["before_id"] == f"b{k}" and row["after_id"] == f"a{k}"
            assert row["iou"] == pytest.approx(iou, abs=2e-3)
            assert row["area_change_m2"] == pytest.approx(delta, rel=5e-3, abs=0.05)


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        ([], [_rect(0, 0, 2, 2)], "new"),  # a 4 m² shed alone
        ([_rect(0, 0, 2, 2)], [], "removed"),
        ([_rect(4, 4, 6, 6)], [_rect(0, 0, 10, 10)], "new"),  # a house over a shed
        ([_rect(0, 0, 10, 10)], [_rect(4, 4, 6, 6)], "removed"),  # a shed on the plot
    ],
    ids=["shed-new", "shed-removed", "house-over-shed", "shed-left"],
)
def test_a_side_of_at_most_area_change_m2_is_nothing(before, after, change):
    """Rule step 3: a side adding up to at most ``area_change_m2`` (5 m²) against a larger
    other side is nothing, and a group with nothing on one side is ``new`` or
    ``removed``: a 4 m² shed alone; a house built over a shed; a house pulled down with
    a shed left on its plot (linked: the shed lies wholly inside). Wrong rules caught:
    the clause's ``or`` read as ``and`` (a shed alone reported ``unchanged``), either
    side's test inverted."""
    ch = changes(_frame([f"b{k}" for k in range(len(before))], before),
                 _frame([f"a{k}" for k in range(len(after))], after))  # fmt: skip
    assert len(ch) == 1, ch[["before_id", "after_id", "change"]]
    assert ch["change"].iloc[0] == change
    assert ch["before_id"].iloc[0] == ("b0" if before else None)
    assert ch["after_id"].iloc[0] == ("a0" if after else None)


@pytest.mark.parametrize(("depth", "change"), [(1.8, "unchanged"), (2.4, "modified")])
def test_an_extension_counts_by_its_share_of_the_area_and_beyond_the_tolerance(depth, change):
    """Rule step 4: modified when the area changed by more than ``area_change`` (10 %)
    *and* ``area_change_m2``, and more than ``area_change_m2`` lies beyond the tolerance.
    A 20 × 20 m house extended along a side by 1.8 m (+36 m², 9 %: 16 m² beyond 1 m; its
    IoU 0.92) is unchanged; by 2.4 m (+48 m², 12 %) it is modified. Wrong rule caught:
    the share read as ``area_change / area`` (any change over 5 m² counts)."""
    before = _frame(["b"], [_rect(0, 0, 20, 20)])
    after = _frame(["a"], [_rect(0, 0, 20, 20 + depth)])
    ch = changes(before, after)
    assert len(ch) == 1 and ch["change"].iloc[0] == change
    assert ch["area_change_m2"].iloc[0] == pytest.approx(20 * depth, rel=5e-3)


@pytest.mark.parametrize("side", ["split", "merge"])
def test_a_house_split_by_a_passage_or_two_joined_over_one_is_modified(side):
    """Rule step 4 for a group of several objects: a 20 × 20 m house rebuilt as two
    wings with a 4 m passage between them (a 1:2 group), or two such wings joined over
    the passage (2:1). Every corner of either side lies on the other side's outline, yet
    the passage (80 m², 20 %) is 2 m beyond the tolerance of the other side along 20 m
    (40 m² > ``area_change_m2``): the group is ``modified``, measured with shapely in
    metres here. Wrong rule caught: a group of several objects taken as unchanged when
    its corners lie within the tolerance of the other side (the outline's vertices only
    compared)."""
    whole = shapely.box(0, 0, 20, 20)
    wings = [shapely.box(0, 0, 20, 8), shapely.box(0, 12, 20, 20)]
    one, two = whole, shapely.union_all(wings)
    assert shapely.hausdorff_distance(one, two) <= 1.0  # every vertex near the other side
    beyond = max(one.difference(two.buffer(1.0)).area, two.difference(one.buffer(1.0)).area)
    delta = abs(one.area - two.area)
    assert beyond > 5.0 and delta > max(5.0, 0.10 * max(one.area, two.area))
    ones, twos = [_rect(*one.bounds)], [_rect(*w.bounds) for w in wings]
    before, after = (ones, twos) if side == "split" else (twos, ones)
    ch = changes(_frame([f"b{k}" for k in range(len(before))], before),
                 _frame([f"a{k}" for k in range(len(after))], after))  # fmt: skip
    assert len(ch) == 1, ch[["before_id", "after_id", "change"]]
    assert ch["change"].iloc[0] == "modified"
    assert ch["area_change_m2"].iloc[0] == pytest.approx(
        two.area - one.area if side == "split" else one.area - two.area, rel=5e-3
    )


# ------------------------------------------------------------------------ monitoring
def _areas() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["district"]}, geometry=[shapely.box(37.60, 55.76, 37.625, 55.775)], crs=4326
    )


def test_monitor_reports_what_the_world_changed_between_two_looks(tmp_path, monkeypatch):
    """A monitor's changes compare the latest state with the state before the new dates.
    Over a developing district in 2026 (the simulator's world changes until its end, and
    fresh scenes are acquired every month from its start), months pass; whenever the
    simulator's ground truth differs between the last date seen before a check and the
    latest one (buildings built or demolished), the monitor must report new, removed or
    modified objects. Wrong rule caught: the latest state compared with itself (a
    monitor that never reports a change). Its stored results are durable: each result
    file is fsynced (observed as the ``os.fsync`` syscall on the written file's
    descriptor)."""
    gdf = _areas()
    bbox = tuple(gdf.total_bounds)
    world = {"hotspot_share": 1.0, "urban_share": 0.5, "suburban_share": 0.4}
    t0, started = datetime(2026, 1, 2, tzinfo=timezone.utc).timestamp(), time.time()
    with sim.serve(
        processing_seconds=0,
        seed=5,
        credits=10**7,
        world=world,
        clock=lambda: t0 + time.time() - started,
    ) as server:
        mon = gdf.mapflow.monitor(
            "buildings", client=server.client(), run_dir=tmp_path / "w", active_until="2026-06-30"
        )
        fsynced = record_fsyncs(monkeypatch)
        compared = 0
        for _ in range(4):
            server.advance(31 * DAY)
            server.run_templates()
            upd = mon.check()
            old = [d for d in upd.dates if d not in upd.new_dates]
            if not upd.new_dates or not old:
                continue
            ids_old = set(server.truth(bbox, "buildings", date=old[-1])[1]["truth_id"].tolist())
            ids_new = set(
                server.truth(bbox, "buildings", date=upd.dates[-1])[1]["truth_id"].tolist()
            )
            if ids_old & ids_new:  # buildings standing at both dates are not new ones
                assert (upd.changes["change"].astype(str) != "new").any(), (
                    f"{len(ids_old & ids_new)} buildings stood at {old[-1]} and {upd.dates[-1]}"
                )
            if ids_old == ids_new:
                continue
            compared += 1
            seen = (upd.changes["change"].astype(str) != "unchanged").sum()
            assert seen >= 1, (
                f"the world changed between {old[-1]} and {upd.dates[-1]}: {ids_old ^ ids_new}"
            )
        monkeypatch.undo()
    assert compared >= 1, "the world did not change between two looks: no case tested"
    names = [Path(p).name for p in fsynced]
    stored = sorted(p.name for p in (tmp_path / "w" / "results").glob("*.parquet"))
    assert stored
    assert all(any(n.startswith(f".{s}.") for n in names) for s in stored), (stored, names)
