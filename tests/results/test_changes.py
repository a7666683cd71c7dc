"""Object-level change against generated truth: two dates of one world, jittered and cut by
different tile grids, stitched as a run stitches them.

The world is a grid of plots holding terraces (rows of attached houses sharing walls),
free-standing buildings and a few large industrial ones. The second date adds buildings
(free-standing, and at the ends of terraces, attached), removes some, extends some and
leaves the rest alone. Each date's outlines get their own vertex noise (±0.3 m), each
date is cut by its own tile grid (the same two input rows) and stitched with
:func:`mapflow_geo.results.stitch`. :func:`mapflow_geo.changes` must find the new and the
removed buildings, report no change for the others, and the extensions' area change.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

import mapflow_geo
from mapflow_geo._geodesy import metres_per_degree
from mapflow_geo.aoi import polygonal
from mapflow_geo.results import stitch
from mapflow_geo.results.changes import (
    CHANGE_COLUMNS,
    CHANGES,
    change_table,
    changes,
    changes_to_parquet,
)
from mapflow_geo.results.changes._objects import Objects
from mapflow_geo.results.changes._overlay import Edges, _kernel, intersection_areas

X0, Y0 = 37.6, 55.7  # real magnitudes: the float noise of real coordinates
KX, KY = (float(k[0]) for k in metres_per_degree(np.array([Y0])))
PLOT_X, PLOT_Y = 72.0, 44.0  # metres


def _deg(x_m, y_m):
    return X0 + np.asarray(x_m) / KX, Y0 + np.asarray(y_m) / KY


def _rect(cx, cy, w, h, angle):
    """Rectangles (metres: centre, size, angle in radians) → corner arrays (n, 4, 2)."""
    c, s = np.cos(angle), np.sin(angle)
    dx = np.array([-0.5, 0.5, 0.5, -0.5])
    dy = np.array([-0.5, -0.5, 0.5, 0.5])
    x = cx[:, None] + (dx * w[:, None]) * c[:, None] - (dy * h[:, None]) * s[:, None]
    y = cy[:, None] + (dx * w[:, None]) * s[:, None] + (dy * h[:, None]) * c[:, None]
    return np.stack([x, y], axis=-1)


@dataclasses.dataclass
class World:
    """Truth: corner arrays (metres) of every building at each date, by truth id, and the
    change each one went through."""

    ids: np.ndarray
    before: dict  # id -> (4, 2) corners in metres, or None
    after: dict
    kind: dict  # id -> "new" | "removed" | "extended" | "unchanged"
    extent: tuple[float, float]  # metres
    walls: np.ndarray  # x of the terraces' shared walls (metres)


def make_world(seed: int, nx: int = 14, ny: int = 14) -> World:
    rng = np.random.default_rng(seed)
    before: dict = {}
    after: dict = {}
    kind: dict = {}
    walls: list = []
    for px in range(nx):
        for py in range(ny):
            ox, oy = px * PLOT_X, py * PLOT_Y
            r = rng.random()
            if r < 0.35:
                walls += _terrace(rng, f"t{px}_{py}", ox, oy, before, after, kind)
            elif r < 0.9:
                _free(rng, f"f{px}_{py}", ox, oy, before, after, kind)
            elif r < 0.95:
                _industrial(rng, f"i{px}_{py}", ox, oy, before, after, kind)
            # else: an empty plot
    ids = np.array(sorted(kind))
    return World(ids, before, after, kind, (nx * PLOT_X, ny * PLOT_Y), np.array(walls))


def _terrace(rng, name, ox, oy, before, after, kind):
    n = int(rng.integers(3, 7))
    widths = rng.uniform(6.0, 9.0, n + 1)
    depth = rng.uniform(8.0, 11.0)
    x = ox + 4.0 + np.r_[0.0, np.cumsum(widths)]
    y0 = oy + rng.uniform(4.0, PLOT_Y - depth - 4.0)
    fate = rng.random()
    for k in range(n + 1):  # house n exists only when it is added at the end
        hid = f"{name}h{k}"
        corners = np.array([[x[k], y0], [x[k + 1], y0], [x[k + 1], y0 + depth], [x[k], y0 + depth]])
        if k == n:
            if fate < 0.3:  # a new house, sharing its wall with the last one
                after[hid], kind[hid] = corners, "new"
            continue
        if k == 0 and fate > 0.8:  # the first house pulled down
            before[hid], kind[hid] = corners, "removed"
            continue
        before[hid] = after[hid] = corners
        kind[hid] = "unchanged"
    return list(x)


def _free(rng, name, ox, oy, before, after, kind):
    w, h = rng.uniform(5.0, 18.0), rng.uniform(5.0, 12.0)
    angle = rng.uniform(0, np.pi)
    cx, cy = ox + PLOT_X / 2, oy + PLOT_Y / 2
    one = _rect(np.array([cx]), np.array([cy]), np.array([w]), np.array([h]), np.array([angle]))
    r = rng.random()
    if r < 0.1:
        after[name], kind[name] = one[0], "new"
    elif r < 0.2:
        before[name], kind[name] = one[0], "removed"
    elif r < 0.32:  # extended along its long side, away from its centre
        grow = max(3.0, rng.uniform(0.3, 0.7) * w)  # deeper than the tolerance
        c, s = np.cos(angle), np.sin(angle)
        ext = _rect(
            np.array([cx + grow / 2 * c]),
            np.array([cy + grow / 2 * s]),
            np.array([w + grow]),
            np.array([h]),
            np.array([angle]),
        )
        before[name], after[name], kind[name] = one[0], ext[0], "extended"
    else:
        before[name] = after[name] = one[0]
        kind[name] = "unchanged"


def _industrial(rng, name, ox, oy, before, after, kind):
    # spans several plots' width: overlaps nothing (plots to its right are its own)
    w, h = rng.uniform(40.0, 60.0), rng.uniform(20.0, 30.0)
    one = _rect(
        np.array([ox + PLOT_X / 2]),
        np.array([oy + PLOT_Y / 2]),
        np.array([w]),
        np.array([h]),
        np.array([rng.uniform(0, 0.2)]),
    )
    before[name] = after[name] = one[0]
    kind[name] = "unchanged"


def date_objects(world: World, which: str, seed: int, jitter_m: float = 0.3):
    """One date's buildings as a GeoDataFrame (degrees), every vertex moved by up to
    ``jitter_m`` in x and y."""
    shapes = world.before if which == "before" else world.after
    ids = sorted(shapes)
    rng = np.random.default_rng(seed)
    corners = np.stack([shapes[i] for i in ids])
    corners = corners + rng.uniform(-jitter_m, jitter_m, corners.shape)
    x, y = _deg(corners[..., 0], corners[..., 1])
    rings = np.stack([x, y], axis=-1)
    rings = np.concatenate([rings, rings[:, :1]], axis=1)
    geoms = shapely.polygons(rings)
    return gpd.GeoDataFrame(
        {
            "id": ids,
            "object_type": "buildings",
            "processing_date": f"{2020 + (which == 'after') * 3}-06-01",
        },
        geometry=geoms,
        crs=4326,
    )


def make_tiles(world: World, nx: int, ny: int, rng, row_split: float = 0.5) -> gpd.GeoDataFrame:
    """A tile grid over the world with random seams; two input rows split at the same
    latitude whatever the grid (the input areas are the same at both dates).

    No seam runs within 1.5 m of a terrace's shared wall: with ±0.3 m noise the wall
    would lie along the seam, which stitching cannot tell from a cut (the ambiguity
    :mod:`mapflow_geo.results.stitch` documents) and joins the two houses."""
    w, h = world.extent
    split = h * row_split
    cuts = rng.uniform(0.05, 0.95, nx - 1) * w
    for k in range(len(cuts)):
        while len(world.walls) and np.abs(world.walls - cuts[k]).min() < 1.5:
            cuts[k] = rng.uniform(0.05, 0.95) * w
    xs = np.sort(np.r_[0.0, cuts, w + 1.0])
    ys_lo = np.sort(np.r_[-1.0, rng.uniform(0.05, 0.95, ny - 1) * split, split])
    ys_hi = np.sort(np.r_[split, split + rng.uniform(0.05, 0.95, ny - 1) * (h - split), h + 1.0])
    rows = []
    for row, ys in ((0, ys_lo), (1, ys_hi)):
        for i in range(len(xs) - 1):
            for j in range(len(ys) - 1):
                (x0, x1), (y0, y1) = _deg(xs[i : i + 2], ys[j : j + 2])
                rows.append(
                    {"tile_id": f"r{row}-{i}-{j}", "row": row, "geometry": box(x0, y0, x1, y1)}
                )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def cut_and_stitch(objects: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """What a run returns: every tile's objects clipped to it, then stitched."""
    t, o = shapely.STRtree(objects.geometry.values).query(tiles.geometry.values)
    pieces = shapely.intersection(objects.geometry.values[o], tiles.geometry.values[t])
    pieces = np.array([_polygonal(p) for p in pieces], dtype=object)
    keep = ~shapely.is_empty(pieces) & (shapely.area(pieces) > 0)
    t, o, pieces = t[keep], o[keep], pieces[keep]
    frame = objects.iloc[o].drop(columns="geometry").reset_index(drop=True)
    frame["row"] = tiles["row"].to_numpy()[t]
    frame["tile_id"] = tiles["tile_id"].to_numpy()[t]
    frame["processing_id"] = "p-" + frame["tile_id"]
    frame["area"] = shapely.area(pieces)
    cut = gpd.GeoDataFrame(frame, geometry=pieces, crs=4326)
    return stitch(cut, tiles)


def _polygonal(g):
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def two_dates(seed: int, world: World | None = None, jitter_m: float = 0.3):
    world = world or make_world(seed)
    rng = np.random.default_rng(seed + 1)
    before = cut_and_stitch(
        date_objects(world, "before", seed + 2, jitter_m),
        make_tiles(world, int(rng.integers(2, 6)), int(rng.integers(2, 5)), rng),
    )
    after = cut_and_stitch(
        date_objects(world, "after", seed + 3, jitter_m),
        make_tiles(world, int(rng.integers(2, 6)), int(rng.integers(2, 5)), rng),
    )
    return world, before, after


def _ids(v) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def score(world: World, ch: pd.DataFrame) -> dict:
    """Precision and recall of new and removed; modified reports for truth that did not
    change; extensions found and their area error."""
    out = {}
    for cls, side in (("new", "after_id"), ("removed", "before_id")):
        truth = {i for i, k in world.kind.items() if k == cls}
        got = ch.loc[ch["change"] == cls, side].map(_ids).explode().dropna()
        got_set = set(got)
        out[f"{cls}_precision"] = len(got_set & truth) / max(len(got_set), 1)
        out[f"{cls}_recall"] = len(got_set & truth) / max(len(truth), 1)
    mod = ch[ch["change"] == "modified"]
    ids = [
        set(_ids(b)) | set(_ids(a)) for b, a in zip(mod["before_id"], mod["after_id"], strict=True)
    ]
    out["false_modified"] = sum(all(world.kind[i] == "unchanged" for i in s) for s in ids)
    ext = {i for i, k in world.kind.items() if k == "extended"}
    found = {next(iter(s)) for s in ids if len(s) == 1 and next(iter(s)) in ext}
    out["extended_recall"] = len(found) / max(len(ext), 1)
    return out


def _truth_area_m2(corners) -> float:
    x, y = corners[:, 0], corners[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _canon(frame: pd.DataFrame) -> pd.DataFrame:
    """A change frame with lists and nulls as text, rows in a fixed order."""

    def norm(v):
        if isinstance(v, list):
            return "|".join(map(str, v))
        return "-" if v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v)) else str(v)

    out = frame.drop(columns="geometry").copy()
    for col in ("change", "before_id", "after_id", "match", "object_type", "row"):
        out[col] = [norm(v) for v in out[col]]
    for col in ("before_date", "after_date"):
        out[col] = out[col].astype(str)
    keys = ["change", "before_id", "after_id", "row", "before_date", "after_date"]
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def _assert_same(x: pd.DataFrame, y: pd.DataFrame) -> None:
    a, b = _canon(x), _canon(y)
    assert len(a) == len(b)
    for col in a.columns:
        if a[col].dtype.kind == "f":
            np.testing.assert_allclose(a[col], b[col], rtol=1e-9, atol=1e-9, err_msg=col)
        else:
            assert a[col].tolist() == b[col].tolist(), col


# -- the intersection kernel ------------------------------------------------------------
def _shape(draw, cx, cy):
    """A building-like polygon at real magnitudes: rectangle, L-shape, with a courtyard,
    or two parts; metres → degrees about (cx, cy)."""
    kind = draw(st.sampled_from(["rect", "L", "hole", "multi", "star"]))
    w, h = draw(st.floats(3, 40)), draw(st.floats(3, 40))
    angle = draw(st.floats(0, np.pi))
    if kind == "rect":
        g = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
    elif kind == "L":
        g = shapely.box(-w / 2, -h / 2, w / 2, h / 2).difference(shapely.box(0, 0, w, h))
    elif kind == "hole":
        g = shapely.box(-w / 2, -h / 2, w / 2, h / 2).difference(
            shapely.box(-w / 5, -h / 5, w / 5, h / 5)
        )
    elif kind == "multi":
        g = shapely.MultiPolygon(
            [shapely.box(-w / 2, -h / 2, -w / 8, h / 2), shapely.box(w / 8, -h / 2, w / 2, h / 2)]
        )
    else:
        k = draw(st.integers(5, 12))
        ang = np.sort(draw(st.lists(st.floats(0, 2 * np.pi), min_size=k, max_size=k, unique=True)))
        r = np.array(draw(st.lists(st.floats(0.3, 1.0), min_size=k, max_size=k)))
        g = shapely.Polygon(np.c_[w / 2 * r * np.cos(ang), h / 2 * r * np.sin(ang)])
        if not g.is_valid or g.area < 1:
            g = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
    if draw(st.booleans()):
        g = shapely.reverse(g)  # either orientation
    g = shapely.affinity.rotate(g, angle, origin=(0, 0), use_radians=True)
    return shapely.affinity.affine_transform(g, [1 / KX, 0, 0, 1 / KY, cx, cy])


@st.composite
def polygon_pairs(draw):
    out_b, out_a = [], []
    for _ in range(draw(st.integers(1, 12))):
        cx = X0 + draw(st.floats(0, 0.01))
        cy = Y0 + draw(st.floats(0, 0.01))
        b = _shape(draw, cx, cy)
        how = draw(st.sampled_from(["shifted", "other", "same", "clipped"]))
        if how == "same":  # identical outlines: every edge shared
            a = b
        elif how == "clipped":  # both cut by one line: a shared, collinear edge
            cut = shapely.box(cx - 1, cy - 1, cx + draw(st.floats(-5, 5)) / KX, cy + 1)
            try:
                b, a = b.intersection(cut), shapely.affinity.translate(b, 1e-6, 0).intersection(cut)
            except shapely.errors.GEOSException:  # GEOS's own overlay gives up: no oracle
                continue
            # as _normalise hands them to the kernel: a collection's polygonal part
            b, a = polygonal(b), polygonal(a)
        elif how == "shifted":
            dx, dy = draw(st.floats(-8, 8)), draw(st.floats(-8, 8))
            a = shapely.affinity.translate(b, dx / KX, dy / KY)
        else:
            a = _shape(draw, cx + draw(st.floats(-10, 10)) / KX, cy + draw(st.floats(-10, 10)) / KY)
        if b.is_empty or a.is_empty or b.area == 0 or a.area == 0:
            continue
        if not (b.is_valid and a.is_valid):  # _normalise repairs these before the kernel
            continue
        out_b.append(b)
        out_a.append(a)
    return out_b, out_a


def _objects(geoms) -> Objects:
    n = len(geoms)
    props = pd.DataFrame({"id": range(n), "row": 0, "object_type": "b", "date": pd.NaT})
    return Objects(np.arange(n), np.array(geoms, dtype=object), props)


@settings(max_examples=150)
@given(polygon_pairs())
def test_intersection_areas_equal_geos(pairs):
    """The vectorised kernel (GEOS where it declines) gives GEOS's intersection areas:
    rectangles, L-shapes, courtyards, multi-part outlines, star-shaped polygons, either
    orientation, identical outlines and shared collinear edges."""
    before, after = pairs
    if not before:
        return
    b, a = _objects(before), _objects(after)
    i = j = np.arange(len(before))
    got = intersection_areas(b, a, i, j)
    try:
        want = shapely.area(shapely.intersection(b.geoms, a.geoms))
    except shapely.errors.GEOSException:  # GEOS's overlay gives up: no oracle here
        assume(False)
    scale = np.minimum(b.area_deg, a.area_deg)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale.max())


def test_intersection_areas_of_more_pairs_than_one_batch_equal_geos():
    """More objects than one batch of edges (65,536) and more edge pairs than one step of
    the kernel (131,072), and pairs of outlines so detailed that every one goes to GEOS:
    every area is GEOS's."""
    rng = np.random.default_rng(7)
    n = 66_000
    cx, cy = X0 + rng.uniform(0, 0.05, n), Y0 + rng.uniform(0, 0.05, n)
    w, h = rng.uniform(5, 20, (2, n)) / KX
    dx, dy = rng.uniform(-8, 8, (2, n)) / KX
    b = _objects(shapely.box(cx, cy, cx + w, cy + h))
    a = _objects(shapely.box(cx + dx, cy + dy, cx + dx + w, cy + dy + h))
    i = j = rng.permutation(n)
    got = intersection_areas(b, a, i, j)
    want = shapely.area(shapely.intersection(b.geoms[i], a.geoms[j]))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * b.area_deg.max())
    assert (want > 0).sum() > n // 4  # most pairs overlap
    # 40-gons: 1,600 edge pairs a pair, more than the kernel takes
    disc = [shapely.Point(X0 + k * 1e-3, Y0).buffer(1e-4, quad_segs=10) for k in range(3)]
    moved = [shapely.affinity.translate(g, 5e-5, 0) for g in disc]
    got = intersection_areas(_objects(disc), _objects(moved), np.arange(3), np.arange(3))
    want = shapely.area(shapely.intersection(disc, moved))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _ring_edges_of(g) -> list:
    """The edges of ``g``'s rings, interior on the left (``shapely.orient_polygons``:
    exteriors counter-clockwise, holes clockwise), zero-length ones left out."""
    rings = shapely.get_rings(shapely.get_parts(shapely.orient_polygons(g)))
    out = []
    for ring in rings:
        xy = shapely.get_coordinates(ring)
        out += [(*p, *q) for p, q in zip(xy[:-1], xy[1:], strict=True) if tuple(p) != tuple(q)]
    return sorted(out)


def test_the_kernels_edges_are_each_polygons_rings_interior_on_the_left():
    """``Edges.of``: each selected polygon owns the edges of its rings oriented with its
    interior on the left, zero-length edges dropped; polygons not selected own none.
    Exterior and holes given in either orientation, several parts, a repeated vertex."""
    d = 1.0 / KX
    square = shapely.box(X0, Y0, X0 + 10 * d, Y0 + 10 * d)
    yard = square.difference(shapely.box(X0 + 3 * d, Y0 + 3 * d, X0 + 6 * d, Y0 + 6 * d))
    geoms = [
        shapely.reverse(square),  # clockwise
        shapely.Polygon([(X0, Y0), (X0 + 5 * d, Y0), (X0 + 5 * d, Y0), (X0, Y0 + 4 * d)]),
        shapely.reverse(yard),  # a clockwise exterior, a counter-clockwise hole
        yard,
        shapely.MultiPolygon([square, shapely.affinity.translate(square, 20 * d, 0)]),
        shapely.reverse(shapely.MultiPolygon([yard, shapely.affinity.translate(yard, 0, 20 * d)])),
    ]
    objs = _objects(geoms)
    sel = np.array([0, 1, 2, 4, 5])
    e = Edges.of(objs.geoms, sel, objs.simple)
    for g, geom in enumerate(geoms):
        s, n = int(e.start[g]), int(e.count[g])
        cols = (col[s : s + n].tolist() for col in (e.x0, e.y0, e.x1, e.y1))
        got = sorted(zip(*cols, strict=True))
        want = _ring_edges_of(geom) if g in sel else []
        assert got == [tuple(w) for w in want], g
    assert len(e.x0) == int(e.count.sum())


def test_the_kernel_answers_pairs_in_general_position_itself():
    """Pairs in general position (no shared or collinear edges, no vertex on the other's
    edge) are measured by the kernel itself, not left to GEOS (DESIGN.md, *Change
    detection*, Speed): a finite area each, GEOS's."""
    rng = np.random.default_rng(3)
    n = 200
    cx, cy = X0 + rng.uniform(0, 0.01, n), Y0 + rng.uniform(0, 0.01, n)
    w, h = rng.uniform(5, 20, (2, n))
    before = [
        shapely.affinity.affine_transform(
            shapely.affinity.rotate(shapely.box(-w[k] / 2, -h[k] / 2, w[k] / 2, h[k] / 2), 17),
            [1 / KX, 0, 0, 1 / KY, cx[k], cy[k]],
        )
        for k in range(n)
    ]
    shift = rng.uniform(-6, 6, (n, 2)) / [KX, KY] + 1e-9
    after = [shapely.affinity.translate(g, *t) for g, t in zip(before, shift, strict=True)]
    b, a = _objects(before), _objects(after)
    i = j = np.arange(n)
    eb, ea = Edges.of(b.geoms, i, b.simple), Edges.of(a.geoms, j, a.simple)
    got = _kernel(eb, ea, i, j, b.bounds[i, 0], b.bounds[i, 1])
    want = shapely.area(shapely.intersection(b.geoms, a.geoms))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * b.area_deg.max())
    assert (want > 0).sum() > n // 2 and (want == 0).any()  # overlapping and apart


def test_an_outline_with_an_empty_part_is_measured_by_its_other_parts():
    """A multi-part outline may carry an empty part (WKT and WKB allow one, and shapely
    keeps it): its intersection areas are those of its other parts, GEOS's, whether the
    empty part comes first, between or last (of the last outline too)."""
    d = 1.0 / KX
    square = shapely.box(X0, Y0, X0 + 9 * d, Y0 + 7 * d)
    sq = shapely.to_wkt(square, rounding_precision=-1).removeprefix("POLYGON ")
    far = shapely.affinity.translate(square, 30 * d, 0)
    far = shapely.to_wkt(far, rounding_precision=-1).removeprefix("POLYGON ")
    before = [
        shapely.from_wkt(f"MULTIPOLYGON (EMPTY, {sq})"),
        shapely.from_wkt(f"MULTIPOLYGON ({sq}, EMPTY, {far})"),
        shapely.from_wkt(f"MULTIPOLYGON ({sq}, EMPTY)"),
    ]
    assert all(shapely.get_num_geometries(g) >= 2 for g in before)
    moved = shapely.affinity.translate(square, 3 * d, 2 * d)
    after = [moved] * len(before)
    i = j = np.arange(len(before))
    got = intersection_areas(_objects(before), _objects(after), i, j)
    want = shapely.area(shapely.intersection(before, after))
    assert (want > 0).all()
    np.testing.assert_allclose(got, want, rtol=1e-9)


def _kernel_of(before, after):
    b, a = _objects(before), _objects(after)
    i = j = np.arange(len(before))
    eb, ea = Edges.of(b.geoms, i, b.simple), Edges.of(a.geoms, j, a.simple)
    got = _kernel(eb, ea, i, j, b.bounds[i, 0], b.bounds[i, 1])
    return got, intersection_areas(b, a, i, j), shapely.area(shapely.intersection(before, after))


def test_the_kernel_declines_pairs_with_nearly_collinear_edges():
    """Outlines turned by 1e-9 rad against each other: every edge lies along its
    counterpart, horizontal and vertical ones alike (degenerate position, DESIGN.md,
    *Change detection*, Speed). The kernel declines each pair (NaN) and GEOS measures
    it."""
    d = 1.0 / KX
    before = [shapely.box(X0, Y0, X0 + w * d, Y0 + h * d) for w, h in ((10, 8), (6, 30), (25, 4))]
    after = [shapely.affinity.rotate(g, 1e-9, use_radians=True) for g in before]
    kernel, got, want = _kernel_of(before, after)
    assert np.isnan(kernel).all()
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_the_kernel_answers_parallel_edges_a_hundredth_of_a_millimetre_apart():
    """Parallel edges 1e-10° apart (about 0.01 mm) are not collinear: the kernel measures
    the pair itself, GEOS's area, without a floating-point warning."""
    import warnings

    d = 1.0 / KX
    before = [shapely.box(X0, Y0, X0 + w * d, Y0 + h * d) for w, h in ((10, 8), (6, 30), (25, 4))]
    after = [shapely.affinity.translate(g, 1e-10, -1e-10) for g in before]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel, got, want = _kernel_of(before, after)
    assert np.isfinite(kernel).all()
    np.testing.assert_allclose(kernel, want, rtol=1e-9)
    np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("angle", [20.0, 30.0, 65.0])
def test_the_kernel_answers_a_turned_outline_and_its_copy_moved_obliquely(angle):
    """An outline turned by ``angle`` and its copy moved 3 m in the direction mirrored
    to its edges' (cos, −sin): each edge and its copy are parallel but apart, not
    collinear, so the kernel measures the pair itself, GEOS's area."""
    a = np.radians(angle)
    g = shapely.affinity.rotate(shapely.box(-6, -4, 6, 4), angle, origin=(0, 0))
    g = shapely.affinity.affine_transform(g, [1 / KX, 0, 0, 1 / KX, X0, Y0])
    moved = shapely.affinity.translate(g, 3 * np.cos(a) / KX, -3 * np.sin(a) / KX)
    kernel, got, want = _kernel_of([g], [moved])
    assert np.isfinite(kernel).all() and want[0] > 0
    np.testing.assert_allclose(kernel, want, rtol=1e-9)


def test_the_kernel_declines_pairs_with_a_vertex_on_the_others_edge():
    """A vertex exactly on the other outline's edge, or on its vertex (degenerate
    position): the kernel declines the pair (NaN) and GEOS measures it."""
    d = 1.0 / KX
    x1, y1 = X0 + 10 * d, Y0 + 8 * d
    xm = X0 + 5 * d
    box = shapely.box(X0, Y0, x1, y1)
    diamond = shapely.Polygon([(xm, Y0), (X0 + 12 * d, Y0 + 4 * d), (xm, Y0 + 12 * d),
                               (X0 - 2 * d, Y0 + 4 * d)])  # fmt: skip
    corner = shapely.Polygon([(x1, y1), (x1 + 6 * d, y1 + 1 * d), (x1 - 3 * d, y1 - 5 * d)])
    before, after = [box, box, diamond], [diamond, corner, box]
    assert shapely.intersects(shapely.Point(xm, Y0), box.exterior)
    kernel, got, want = _kernel_of([*before], [*after])
    assert np.isnan(kernel).all()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert (want > 0).all()


# -- the world --------------------------------------------------------------------------
@settings(max_examples=12)
@given(st.integers(0, 2**31 - 1))
def test_two_dates_jittered_and_tiled_differently(seed):
    """±0.3 m vertex noise, different tile grids stitched: every new and removed building
    found and nothing else (precision and recall ≥ 0.99; 1.0 on every seed tried), no
    building that did not change reported modified, every extension modified with its
    area change."""
    world, before, after = two_dates(seed)
    ch = changes(before, after)
    s = score(world, ch)
    for key in ("new_precision", "new_recall", "removed_precision", "removed_recall"):
        assert s[key] >= 0.99, (key, s)
    assert s["false_modified"] == 0, s
    assert s["extended_recall"] >= 0.99, s
    assert set(ch["change"].astype(str)) <= set(CHANGES)
    _check_extensions(world, before, after, ch)


def _check_extensions(world: World, before, after, ch) -> None:
    """Each extension's area change is the difference of the two outlines' areas (to
    float noise, whatever the seams), and the truth's within what the noise can move."""
    area_b = before.groupby("id")["geometry"].agg(lambda g: _geodesic_m2(shapely.union_all(g)))
    area_a = after.groupby("id")["geometry"].agg(lambda g: _geodesic_m2(shapely.union_all(g)))
    mod = ch[(ch["change"] == "modified") & (ch["match"] == "1:1")]
    checked = 0
    for bid, delta in zip(mod["before_id"], mod["area_change_m2"], strict=True):
        if world.kind.get(bid) != "extended":
            continue
        assert delta == pytest.approx(area_a[bid] - area_b[bid], rel=1e-4, abs=1e-3)
        truth = _truth_area_m2(world.after[bid]) - _truth_area_m2(world.before[bid])
        perimeter = _truth_perimeter(world.before[bid]) + _truth_perimeter(world.after[bid])
        assert abs(delta - truth) <= 0.3 * np.sqrt(2) * perimeter + 1.0
        checked += 1
    assert checked == sum(k == "extended" for k in world.kind.values())


def _geodesic_m2(geom) -> float:
    return float(mapflow_geo._geodesy.geodesic_area_km2([geom])[0] * 1e6)


def _truth_perimeter(corners) -> float:
    return float(np.hypot(*np.diff(np.r_[corners, corners[:1]], axis=0).T).sum())


def test_identical_results_are_unchanged():
    world, before, _ = two_dates(5)
    ch = changes(before, before)
    assert (ch["change"] == "unchanged").all()
    assert np.allclose(ch["iou"], 1.0) and np.allclose(ch["area_change_m2"], 0.0)
    assert (ch["match"] == "1:1").all()
    assert ch["before_id"].tolist() == ch["after_id"].tolist()


def test_without_jitter_or_with_it_the_same_changes():
    world = make_world(21)
    exact = score(world, changes(*two_dates(21, world, jitter_m=0.0)[1:]))
    noisy = score(world, changes(*two_dates(21, world, jitter_m=0.45)[1:]))
    assert exact == noisy
    assert exact["false_modified"] == 0 and exact["new_recall"] == 1.0


# -- splits, merges, fragments ----------------------------------------------------------
def _m(x0, y0, x1, y1):
    """A box given in metres from the world origin."""
    (a, c), (b, d) = _deg([x0, x1], [y0, y1])
    return shapely.box(a, b, c, d)


def _frame(ids, geoms, date=None):
    data = {"id": ids, "object_type": "buildings", "row": 0}
    if date is not None:
        data["processing_date"] = date
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=4326)


def test_split_and_merge_are_groups():
    before = _frame(
        ["whole", "left", "right", "big"],
        [_m(0, 0, 20, 10), _m(40, 0, 48, 10), _m(48, 0, 56, 10), _m(80, 0, 120, 30)],
    )
    after = _frame(
        ["w1", "w2", "lr", "b1", "b2"],
        [
            _m(0, 0, 10.2, 10),  # the same building drawn as two
            _m(10.2, 0, 20.1, 10),
            _m(40.1, 0, 56, 10.1),  # two attached houses drawn as one
            _m(80, 0, 95, 30),  # the middle pulled down: two buildings left
            _m(105, 0, 120, 30),
        ],
    )
    ch = changes(before, after).set_index("match")
    split = ch.loc["1:n"]
    assert split.loc[split["before_id"] == "whole", "after_id"].item() == ["w1", "w2"]
    assert split.loc[split["before_id"] == "whole", "change"].item() == "unchanged"
    merge = ch.loc["n:1"]
    assert merge["before_id"] == ["left", "right"] and merge["after_id"] == "lr"
    assert merge["change"] == "unchanged"
    cut = split[split["before_id"] == "big"].iloc[0]
    assert cut["change"] == "modified" and cut["after_id"] == ["b1", "b2"]
    assert cut["area_change_m2"] == pytest.approx(-300, rel=0.01)
    assert cut["area_change_pct"] == pytest.approx(-25, rel=0.01)


def test_seam_pieces_and_slivers_are_not_changes():
    """A building left in pieces at a seam in one run, and a sliver a seam shaved off,
    are the building, not new objects; so is a sliver of an extension, far from
    anything of the other date."""
    before = _frame(["house", "shop"], [_m(0, 0, 12, 10), _m(40, 0, 50, 10)])
    after = _frame(
        ["piece-a", "piece-b", "sliver", "shop", "shop-end"],
        [
            _m(0, 0, 7, 10.1),
            _m(7, 0, 11.98, 10.1),
            _m(11.98, 0, 12.25, 10.1),
            _m(40, 0, 59.99, 10),  # extended by 10 m …
            _m(59.99, 0, 60.0, 10),  # … and cut at a seam 1 cm from its end
        ],
    )
    ch = changes(before, after).set_index(changes(before, after)["before_id"])
    assert len(ch) == 2
    house = ch.loc["house"]
    assert house["change"] == "unchanged" and house["match"] == "1:n"
    assert house["after_id"] == ["piece-a", "piece-b", "sliver"]
    shop = ch.loc["shop"]
    assert shop["change"] == "modified" and shop["after_id"] == ["shop", "shop-end"]
    assert shop["area_change_m2"] == pytest.approx(100, rel=1e-3)


def test_new_attached_house_and_moved_building():
    before = _frame(["h1", "h2", "shed"], [_m(0, 0, 8, 10), _m(8, 0, 16, 10), _m(40, 0, 50, 8)])
    after = _frame(
        ["H1", "H2", "H3", "SHED"],
        [_m(0, 0, 8, 10), _m(8.2, 0, 16, 10), _m(16.2, 0, 24, 10), _m(43, 0, 53, 8)],
    )
    ch = changes(before, after)
    by_after = ch.set_index(ch["after_id"].astype(str))
    assert by_after.loc["H3", "change"] == "new"  # shares its wall with H2
    assert by_after.loc["H2", "change"] == "unchanged"
    moved = by_after.loc["SHED"]  # rebuilt 3 m east: same area, another place
    assert moved["change"] == "modified"
    assert abs(moved["area_change_m2"]) < 1e-6
    assert (
        changes(before, after, tolerance_m=3.5).set_index("before_id").loc["shed", "change"]
        == "unchanged"
    )


def test_thresholds():
    before = _frame(["a"], [_m(0, 0, 10, 10)])
    after = _frame(["a"], [_m(0, 0, 10, 12.5)])  # +25 m², 25 %, 2.5 m deep
    assert changes(before, after)["change"].item() == "modified"
    assert changes(before, after, area_change=0.3)["change"].item() == "unchanged"
    assert changes(before, after, area_change_m2=30, min_iou=0.5)["change"].item() == "unchanged"
    assert changes(before, after, tolerance_m=3)["change"].item() == "unchanged"
    with pytest.raises(ValueError, match="min_overlap"):
        changes(before, after, min_overlap=0)
    with pytest.raises(ValueError, match="tolerance_m"):
        changes(before, after, tolerance_m=-1)


def test_ids_dates_rows_and_other_types():
    before = _frame(["a", "b"], [_m(0, 0, 10, 10), _m(30, 0, 40, 10)], date="2019-07-01")
    before["row"] = ["x", "y"]
    after = gpd.GeoDataFrame(
        {
            "date": pd.to_datetime(["2024-07-01", "2024-07-01", "2024-07-02"]),
            "object_type": ["buildings", "buildings", "roads"],
            "row": ["x", "z", "x"],
        },
        geometry=[_m(0, 0, 10, 10), _m(60, 0, 70, 10), shapely.LineString([(0, 0), (1, 1)])],
        index=[10, 11, 12],
        crs=4326,
    )
    ch = changes(before, after.to_crs(3857))  # any CRS
    assert ch.crs.to_epsg() == 4326
    assert list(ch.columns) == [*CHANGE_COLUMNS, "geometry"]
    assert ch["change"].astype(str).tolist() == ["unchanged", "removed", "new"]
    assert ch["after_id"].tolist() == [10, None, 11]  # the index without an id column
    assert ch["row"].tolist() == ["x", "y", "z"]  # after's row, before's for removed
    assert ch["before_date"].iloc[0] == pd.Timestamp("2019-07-01")
    assert ch["after_date"].iloc[0] == pd.Timestamp("2024-07-01")
    assert pd.isna(ch["after_date"].iloc[1]) and pd.isna(ch["before_date"].iloc[2])
    assert ch["area_change_m2"].iloc[1] == pytest.approx(-100, rel=1e-3)
    assert ch["area_change_m2"].iloc[2] == pytest.approx(100, rel=1e-3)
    assert ch.geometry.iloc[1].equals(before.geometry.iloc[1])  # removed: before's outline
    # forest of one run and buildings of the other never match
    forest = before.assign(object_type="forest")
    assert set(changes(forest, before)["change"].astype(str)) == {"new", "removed"}
    assert changes(before.iloc[:0], after).shape[0] == 2
    assert len(changes(before.iloc[:0], after.iloc[:0])) == 0
    # no change gives the frame a comparison gives: the same columns and dtypes (the row
    # labels' type too, while there are labels to take it from)
    same = changes(after, after, unchanged=False)
    assert same.empty and same.crs.to_epsg() == 4326
    assert same.dtypes.to_dict() == ch.dtypes.to_dict()
    nothing = changes(before.iloc[:0], after.iloc[:0])
    assert nothing.drop(columns="row").dtypes.to_dict() == ch.drop(columns="row").dtypes.to_dict()
    assert "unchanged" not in set(changes(before, after, unchanged=False)["change"])


def test_result_method_and_package_export():
    from mapflow_geo import MapflowResult

    world, before, after = two_dates(8)

    def result(features):
        aoi = box(*features.total_bounds)
        return MapflowResult(
            features=features,
            tiles=gpd.GeoDataFrame(
                {"tile_id": ["t"], "row": [0], "status": ["OK"]}, geometry=[aoi], crs=4326
            ),
            aois=gpd.GeoDataFrame(geometry=[aoi], crs=4326),
            processings=pd.DataFrame({"key": ["k"], "estimate": [1], "cost": [1]}),
        )

    got = result(after).changes(result(before), unchanged=False)
    want = mapflow_geo.changes(before, after, unchanged=False)
    _assert_same(got, want)


# -- tables -----------------------------------------------------------------------------
def test_change_table():
    world, before, after = two_dates(13)
    ch = changes(before, after)
    rows = before.dissolve("row").envelope.to_frame("geometry").set_geometry("geometry")
    rows.loc["empty"] = box(0, 0, 0.001, 0.001)
    table = change_table(ch, aois=rows)
    assert list(table.index) == [0, 1, "empty"]
    for cls in CHANGES:
        assert table[f"count:{cls}"].sum() == (ch["change"] == cls).sum()
    assert table.loc["empty", "count:new"] == 0
    new = ch["change"] == "new"
    assert table["area_m2:new"].sum() == pytest.approx(ch.loc[new, "area_after_m2"].sum())
    assert table["area_change_m2"].sum() == pytest.approx(ch["area_change_m2"].sum())
    assert table["years"].iloc[0] == pytest.approx(3.0, abs=0.01)  # 2020-06-01 → 2023-06-01
    rate = table.loc[0, "count:new"] / table.loc[0, "area_km2"] / table.loc[0, "years"]
    assert table.loc[0, "new_per_km2_year"] == pytest.approx(rate)
    given = change_table(ch, years={0: 2.0, 1: 4.0})
    assert given["years"].tolist() == [2.0, 4.0] and given["new_per_km2_year"].isna().all()
    assert change_table(ch, years=1.5)["years"].eq(1.5).all()


# -- the dataset path -------------------------------------------------------------------
def _with_forest(before, after):
    """One polygon a few hundred metres across at both dates (split in two in the
    after run): a group larger than any small margin."""
    big = shapely.Point(X0 + 0.004, Y0 + 0.002).buffer(0.003)
    west, east = shapely.box(0, 0, X0 + 0.004, 90), shapely.box(X0 + 0.004, 0, 90, 90)
    extra_b = _frame(["forest"], [big]).assign(object_type="forest")
    extra_a = _frame(["fw", "fe"], [big.intersection(west), big.intersection(east)])
    extra_a["object_type"] = "forest"
    return (
        pd.concat([before, extra_b], ignore_index=True),
        pd.concat([after, extra_a], ignore_index=True),
    )


@pytest.mark.parametrize(("partition_features", "margin_m"), [(10**6, 250.0), (150, 8.0)])
def test_dataset_path_equals_memory(tmp_path, partition_features, margin_m):
    world = make_world(17, nx=16, ny=12)
    _, before, after = two_dates(17, world)
    before, after = _with_forest(before, after)
    before.to_parquet(tmp_path / "before.parquet")
    (tmp_path / "after").mkdir()
    half = len(after) // 2
    after.iloc[:half].to_parquet(tmp_path / "after" / "part-0.parquet")
    after.iloc[half:].to_parquet(tmp_path / "after" / "part-1.parquet")
    mem = changes(before, after)
    ds = changes(
        tmp_path / "before.parquet",
        str(tmp_path / "after"),
        partition_features=partition_features,
        margin_m=margin_m,
        workdir=tmp_path,
    )
    _assert_same(mem, ds)
    assert mem["change"].tolist() == ds["change"].tolist()  # the same order, too
    assert shapely.equals_exact(mem.geometry.values, ds.geometry.values, 1e-12).all()
    mixed = changes(tmp_path / "before.parquet", after, partition_features=partition_features)
    _assert_same(mem, mixed)
    big = changes(before, after, partition_features=len(before) // 8, margin_m=margin_m)
    _assert_same(mem, big)  # frames too big for one go take the dataset path
    out = changes_to_parquet(
        tmp_path / "before.parquet",
        tmp_path / "after",
        tmp_path / "changes",
        partition_features=partition_features,
        margin_m=margin_m,
        unchanged=False,
    )
    written = gpd.read_parquet(out)
    assert len(written) == (mem["change"] != "unchanged").sum()
    assert all(isinstance(v, np.ndarray | list) for v in written["after_id"])
    assert sorted(map(str, written["change"])) == sorted(
        map(str, mem.loc[mem["change"] != "unchanged", "change"])
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mapflow-changes-")] == []


# -- maps -------------------------------------------------------------------------------
def test_changes_map_and_plot(tmp_path):
    from mapflow_geo.viz.changes import CHANGE_COLORS, changes_map, plot_changes

    world, before, after = two_dates(4)
    ch = changes(before, after)
    html = changes_map(ch, aois=before.dissolve("row").envelope.to_frame("geometry"))
    text = html.get_root().render()
    for name, color in CHANGE_COLORS.items():
        assert f"{name} (" in text and color in text
    assert "counted on a" not in text
    big = changes_map(ch, large=100, max_features=10)  # as a ≥ 100k-change map would be
    text = big.get_root().render()
    assert "unchanged objects counted on a 64" in text
    assert "simplified at" in text  # more than max_features of a class
    ax = plot_changes(ch)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lab.startswith("new (") for lab in labels)
    assert ax.get_title().startswith("Changes: ")
    ax.figure.savefig(tmp_path / "changes.png")
    ax = plot_changes(ch, unchanged=False)
    assert not any(t.get_text().startswith("unchanged") for t in ax.get_legend().get_texts())
