"""Seam stitching: objects that tiling cut at tile borders, joined back into one each.

:func:`seam_mask` (the one "may have been cut"), :func:`cut_pairs`, :func:`merge_groups`
and :func:`stitch`; the rule (cut edges, attached buildings) is in DESIGN.md, *Seam
stitching*.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

#: Distance (degrees, ~1 cm) under which a point lies on a tile boundary or on another
#: piece's cut edge.
SEAM_EPS_DEG = 1e-7
#: Two cut edges must overlap over more than this length (degrees, ~2 cm): neighbours
#: whose shared wall crosses the seam touch it at a point, never over a length.
MIN_OVERLAP_DEG = 2 * SEAM_EPS_DEG
#: … and over at least this share of the shorter of the two cut edges.
MIN_OVERLAP_SHARE = 0.5
#: Cut edges this much farther from their counterpart than the nearest are not it.
_GAP_TIE_DEG = 1e-3 * SEAM_EPS_DEG

_KEY_COLUMNS = ("row", "object_type", "class_id", "class")
_POLYGONAL = (3, 6)  # shapely type ids: Polygon, MultiPolygon
_LINEAR = (1, 5)  # LineString, MultiLineString


def stitch(features: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Join objects that tiling cut at seams back into one object each.

    Two pieces are parts of one object when they come from different tiles of the same
    input ``row``, have the same ``object_type`` (and ``class_id`` / ``class`` where
    present), and were cut along the same stretch of the seam between their tiles: for
    polygons their cut edges (boundary lying on the tile's boundary) overlap over a
    length, for lines an end of each lies at the same point of the seam (see the module
    docstring for the exact rule and tolerances). Attached buildings that touch at a
    seam stay apart. Each connected group is unioned once (polygons) or line-merged
    (lines); the merged object keeps the properties of its largest piece, ``area``
    becomes the sum, and ``tile_id`` / ``processing_id`` list the pieces' values joined
    with ``+``.

    Parameters
    ----------
    features : GeoDataFrame
        Pieces with at least ``row``, ``tile_id`` and ``geometry`` (EPSG:4326).
    tiles : GeoDataFrame
        The plan (``tile_id``, ``row``, ``geometry``).

    Returns
    -------
    GeoDataFrame
        Objects without duplicates, in a deterministic order: the pieces that were not
        joined in their input order, then the joined objects.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> tiles = gpd.GeoDataFrame({"tile_id": ["a", "b"], "row": [0, 0]},
    ...                          geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)])
    >>> pieces = gpd.GeoDataFrame({"tile_id": ["a", "b"], "row": [0, 0], "area": [1, 2]},
    ...                           geometry=[box(0.5, 0, 1, 0.5), box(1, 0, 1.5, 0.5)])
    >>> out = stitch(pieces, tiles)
    >>> print(len(out), out["tile_id"][0], out["area"][0], out.geometry[0].area)
    1 a+b 3 0.5
    """
    if features.empty or tiles["row"].value_counts().max() < 2:
        return features.reset_index(drop=True)
    feats = features.reset_index(drop=True)
    plan = TilePlan(tiles)
    pos = plan.lookup(feats["tile_id"])
    cand = np.flatnonzero(_seam_mask(feats, tiles, plan, pos))
    if len(cand) < 2:
        return feats
    left, right = _cut_pairs(feats.iloc[cand], plan, pos[cand])
    if len(left) == 0:
        return feats
    labels = components(len(feats), cand[left], cand[right])
    return _merge_groups(feats, labels)


def seam_mask(
    features: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame, *, plan: TilePlan | None = None
) -> np.ndarray:
    """The seam rule: a piece "may have been cut" when its input row has several tiles
    and it reaches (comes within :data:`SEAM_EPS_DEG` of) its tile's boundary. Only such
    pieces are ever joined. ``plan`` (``TilePlan(tiles)``) saves rebuilding the tile
    arrays when the rule is applied file by file."""
    if features.empty:
        return np.zeros(0, dtype=bool)
    plan = plan if plan is not None else TilePlan(tiles)
    return _seam_mask(features, tiles, plan, plan.lookup(features["tile_id"]))


def cut_pairs(pieces: gpd.GeoDataFrame, plan: TilePlan) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (positions in ``pieces``) of pieces that are two parts of one cut object,
    by the rule of :func:`stitch`; ``pieces`` are pieces :func:`seam_mask` flags.

    A pair's verdict depends only on the pieces of its two tiles, so pieces may be
    given a neighbourhood of whole tiles at a time (:mod:`mapflow_geo.results.dataset`).
    """
    if len(pieces) < 2:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    return _cut_pairs(pieces, plan, plan.lookup(pieces["tile_id"]))


def merge_groups(features: gpd.GeoDataFrame, group: np.ndarray) -> gpd.GeoDataFrame:
    """One object per group label (``group``, one per row of ``features``): pieces alone
    in their group pass through in their order, then the joined objects as
    :func:`stitch` makes them (union, largest piece's properties, ``area`` summed,
    provenance joined with ``+``)."""
    labels = pd.factorize(np.asarray(group))[0]
    if len(features) == 0 or np.bincount(labels).max() < 2:
        return features.reset_index(drop=True)
    return _merge_groups(features.reset_index(drop=True), labels)


def _seam_mask(features, tiles, plan: TilePlan, pos: np.ndarray) -> np.ndarray:
    return plan.seam(features["row"], np.asarray(features.geometry.values), pos)


class TilePlan:
    """The tiles as arrays: boundaries, bounds, and which are axis-aligned rectangles
    (plain arithmetic on bounds decides "near the boundary" for those); the input rows
    planned into several tiles (only their pieces can be cut). Position -1 (a tile not
    in the plan) is never near anything."""

    def __init__(self, tiles: gpd.GeoDataFrame):
        geoms = np.asarray(tiles.geometry.values)
        self.ids = pd.Index(tiles["tile_id"].astype(str))
        multi = tiles.groupby("row")["tile_id"].transform("size") > 1
        self.multi_rows = set(tiles.loc[multi, "row"])
        self.boundary = np.append(shapely.boundary(geoms), None)
        bounds = shapely.bounds(geoms)
        box_area = (bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1])
        rect = (
            (shapely.get_type_id(geoms) == 3)
            & (shapely.get_num_interior_rings(geoms) == 0)
            & np.isclose(shapely.area(geoms), box_area, rtol=1e-12, atol=0)
        )
        self.bounds = np.vstack([bounds, np.full((1, 4), np.nan)])
        self.rect = np.append(rect, False)

    def seam(self, row: pd.Series | np.ndarray, geoms: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """The seam rule (:func:`seam_mask`) on arrays: each piece's input ``row``,
        geometry and tile position (:meth:`lookup`)."""
        in_row = np.asarray(pd.Series(row).isin(self.multi_rows))
        if in_row.all():
            return self.near(geoms, pos)
        out = np.zeros(len(geoms), dtype=bool)
        idx = np.flatnonzero(in_row)
        out[idx] = self.near(geoms[idx], pos[idx])
        return out

    def lookup(self, tile_id: pd.Series | np.ndarray) -> np.ndarray:
        """Each piece's tile position (-1: not in the plan)."""
        codes, uniques = pd.factorize(tile_id)
        found = self.ids.get_indexer(pd.Index(uniques).astype(str))
        return np.take(np.append(found, -1), codes)

    def near(self, geoms: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Whether each geometry lies within :data:`SEAM_EPS_DEG` of its tile's boundary."""
        return self._near(geoms, pos, shapely.bounds, lambda g: g)

    def near_points(self, xy: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """:meth:`near` for points given as an (n, 2) array."""
        return self._near(xy, pos, lambda p: np.hstack([p, p]), shapely.points)

    def _near(self, items, pos, bounds_of, geoms_of) -> np.ndarray:
        rect = np.take(self.rect, pos)
        if rect.all():  # (np.take: a gather of rows several times faster than indexing)
            return _near_box(bounds_of(items), np.take(self.bounds, pos, axis=0))
        out = np.zeros(len(pos), dtype=bool)
        r, other = np.flatnonzero(rect), np.flatnonzero(~rect & (pos >= 0))
        out[r] = _near_box(bounds_of(items[r]), self.bounds[pos[r]])
        if len(other):
            out[other] = shapely.dwithin(
                self.boundary[pos[other]], geoms_of(items[other]), SEAM_EPS_DEG
            )
        return out


def _near_box(b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Whether a geometry with bounds ``b`` inside (or near) a rectangle with bounds ``t``
    comes within :data:`SEAM_EPS_DEG` of the rectangle's boundary: its distance to the
    nearest side from inside, to the rectangle from outside."""
    eps = SEAM_EPS_DEG
    near = ~(
        (b[:, 0] - t[:, 0] > eps)
        & (b[:, 1] - t[:, 1] > eps)
        & (t[:, 2] - b[:, 2] > eps)
        & (t[:, 3] - b[:, 3] > eps)
    )
    k = np.flatnonzero(near)  # not well inside: near unless wholly outside, farther off
    b, t = b[k], t[k]
    dx = np.maximum(np.maximum(t[:, 0] - b[:, 2], b[:, 0] - t[:, 2]), 0)
    dy = np.maximum(np.maximum(t[:, 1] - b[:, 3], b[:, 1] - t[:, 3]), 0)
    near[k] = np.hypot(dx, dy) <= eps
    return near


def _cut_pairs(
    cand: gpd.GeoDataFrame, plan: TilePlan, pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (positions in ``cand``) of pieces that are two parts of one cut object."""
    geoms = np.asarray(cand.geometry.values)
    cols = [c for c in _KEY_COLUMNS if c in cand]
    key = cand.groupby(cols, dropna=False, sort=False).ngroup().to_numpy()
    kind = shapely.get_type_id(geoms)
    pairs = []
    # a line on the segment rule too: a road along a seam, or the sliver a polygon leaves
    # when its edge lies on the seam
    for types, finder in ((_POLYGONAL + _LINEAR, _edge_pairs), (_LINEAR, _line_pairs)):
        sel = np.flatnonzero(np.isin(kind, types))
        if len(sel) > 1:
            a, b = finder(geoms[sel], plan, pos[sel], key[sel])
            pairs.append((sel[a], sel[b]))
    if not pairs:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def _cut_segments(geoms: np.ndarray, plan: TilePlan, pos: np.ndarray):
    """Edges (polygon rings, line parts) that lie on their piece's tile boundary:
    (start xy, end xy, owner position)."""
    kind = shapely.get_type_id(geoms)
    single = np.flatnonzero(np.isin(kind, (1, 3)))
    multi = np.flatnonzero(~np.isin(kind, (1, 3)))
    parts, owner = shapely.get_parts(geoms[multi], return_index=True)
    parts, owner = np.r_[geoms[single], parts], np.r_[single, multi[owner]]
    rings, ring_owner = shapely.get_rings(parts, return_index=True)
    lines = np.flatnonzero(shapely.get_type_id(parts) == 1)
    rings = np.concatenate([rings, parts[lines]])
    owner = owner[np.concatenate([ring_owner, lines])]
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    vertex_owner = owner[ring]
    on = plan.near_points(xy, pos[vertex_owner])
    s = np.flatnonzero((ring[:-1] == ring[1:]) & on[:-1] & on[1:])
    s = s[plan.near_points((xy[s] + xy[s + 1]) / 2, pos[vertex_owner[s]])]
    return xy[s], xy[s + 1], vertex_owner[s]


def _edge_pairs(
    geoms: np.ndarray, plan: TilePlan, pos: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces whose cut edges overlap over a length (DESIGN.md, *Seam stitching*)."""
    p0, p1, owner = _cut_segments(geoms, plan, pos)
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])
    long = length > MIN_OVERLAP_DEG
    p0, p1, owner, d, length = p0[long], p1[long], owner[long], d[long], length[long]
    lo, hi = np.minimum(p0, p1), np.maximum(p0, p1)
    boxes = shapely.box(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1])
    near = shapely.box(*(lo - SEAM_EPS_DEG).T, *(hi + SEAM_EPS_DEG).T)
    i, j = shapely.STRtree(boxes).query(near)  # envelopes; the tests below are exact
    i, j = j, i
    a, b = owner[i], owner[j]
    keep = (a < b) & (pos[a] != pos[b]) & (key[a] == key[b])
    i, j = i[keep], j[keep]
    u = d[i] / length[i, None]
    b0, b1 = p0[j] - p0[i], p1[j] - p0[i]
    gap = np.maximum(
        np.abs(u[:, 0] * b0[:, 1] - u[:, 1] * b0[:, 0]),
        np.abs(u[:, 0] * b1[:, 1] - u[:, 1] * b1[:, 0]),
    )
    t0, t1 = np.einsum("ij,ij->i", b0, u), np.einsum("ij,ij->i", b1, u)
    overlap = np.minimum(length[i], np.maximum(t0, t1)) - np.maximum(0.0, np.minimum(t0, t1))
    ok = (
        (gap <= 2 * SEAM_EPS_DEG)
        & (overlap > MIN_OVERLAP_DEG)
        & (overlap >= MIN_OVERLAP_SHARE * np.minimum(length[i], length[j]))
    )
    i, j, gap = i[ok], j[ok], gap[ok]
    ok = _nearest_across(i, j, gap, pos[owner])
    return owner[i[ok]], owner[j[ok]]


def _nearest_across(i: np.ndarray, j: np.ndarray, gap: np.ndarray, tile: np.ndarray) -> np.ndarray:
    """Keep a pair of overlapping cut edges only if, for both, the other is (one of) the
    nearest among the overlapping cut edges of its tile.

    A stretch of seam is cut from one piece on each side. A wall closer to a seam than
    :data:`SEAM_EPS_DEG` (the house beside it was cut into a sliver) also passes for a
    cut edge; the sliver's real cut edge lies nearer.
    """
    if len(i) == 0:
        return np.zeros(0, dtype=bool)
    m = len(i)
    seg, other = np.r_[i, j], np.r_[tile[j], tile[i]]
    group = pd.factorize(seg.astype(np.int64) * (int(tile.max()) + 2) + other)[0]
    best = np.full(group.max() + 1, np.inf)
    np.minimum.at(best, group, np.r_[gap, gap])
    near = np.r_[gap, gap] <= best[group] + _GAP_TIE_DEG
    return near[:m] & near[m:]


def _line_pairs(
    geoms: np.ndarray, plan: TilePlan, pos: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Line pieces with an end each at the same point of the seam."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    ends = np.concatenate([shapely.get_point(parts, 0), shapely.get_point(parts, -1)])
    owner = np.concatenate([owner, owner])
    cut = plan.near(ends, pos[owner])
    ends, owner = ends[cut], owner[cut]
    i, j = shapely.STRtree(ends).query(ends, predicate="dwithin", distance=SEAM_EPS_DEG)
    a, b = owner[i], owner[j]
    keep = (a < b) & (pos[a] != pos[b]) & (key[a] == key[b])
    return a[keep], b[keep]


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of the graph with edges (left, right): a label per node."""
    # scipy (19 MB, ~80 ms) loads only when something is to be joined, not on import
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _merge_groups(feats: gpd.GeoDataFrame, group: np.ndarray) -> gpd.GeoDataFrame:
    """One object per group of pieces: union, largest piece's properties, ``area``
    summed, provenance joined."""
    sizes = np.bincount(group)
    in_group = sizes[group] > 1
    idx = np.flatnonzero(in_group)
    geoms = np.asarray(feats.geometry.values)
    measure = shapely.area(geoms[idx]) + shapely.length(geoms[idx])
    # groups ordered by their first piece, pieces within a group largest first
    first_of = np.full(len(sizes), len(feats))
    np.minimum.at(first_of, group[idx], idx)
    order = np.lexsort((-measure, first_of[group[idx]]))
    idx = idx[order]
    gid = pd.factorize(group[idx])[0]
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    out = feats.iloc[idx[starts]].copy()
    out["geometry"] = _union_groups(geoms[idx], gid)
    members = feats.iloc[idx]
    for col in ("area", "area_m2"):  # Mapflow's name in stored pieces, ours in features
        if col in feats:
            out[col] = members[col].groupby(gid).sum(min_count=1).to_numpy()
    for col in ("tile_id", "processing_id"):
        if col in feats:
            out[col] = _join_values(members[col], gid)
    merged = pd.concat([feats[~in_group], out], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=feats.crs)


def _join_values(values: pd.Series, gid: np.ndarray) -> np.ndarray:
    """Per group (``gid`` 0..n-1), the distinct values as strings, sorted and joined
    with ``+``."""
    df = pd.DataFrame({"g": gid, "v": values.astype(str).to_numpy()})
    df = df.drop_duplicates().sort_values(["g", "v"], kind="stable")
    g = df["g"].to_numpy()
    offsets = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1, len(g)].astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(df["v"].to_numpy(), pa.string()))
    return pc.binary_join(lists, "+").to_numpy(zero_copy_only=False)


def union_by_group(geoms: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """The union of each group of geometries (``gid`` in 0..n-1, every group
    non-empty, in any order), pairwise in rounds so that every round is one vectorised
    call: one geometry per group, in group order."""
    order = np.argsort(gid, kind="stable")
    geoms, gid = np.asarray(geoms, dtype=object)[order], np.asarray(gid)[order]
    while len(gid) and len(gid) > gid[-1] + 1:
        start = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
        rank = np.arange(len(gid)) - np.repeat(start, np.diff(np.r_[start, len(gid)]))
        even = rank % 2 == 0
        has_next = np.r_[gid[1:] == gid[:-1], False] & even
        a = np.flatnonzero(has_next)
        geoms[a] = shapely.union(geoms[a], geoms[a + 1])
        geoms, gid = geoms[even], gid[even]
    return geoms


def _union_groups(geoms: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """The union of each group of pieces (``gid`` 0..n-1, sorted), then the seam's own
    clean-up: lines merged, pieces split by floating-point noise along the seam closed.

    Pieces cut from one polygon along a seam whose two sides kept the same vertices form
    a coverage, and GEOS' coverage union joins them faster than an overlay: groups of
    polygons take it where its answer is a valid single polygon of the pieces' total
    area; anything else (a seam noded differently on its two sides, pieces that overlap
    or leave a gap, lines) takes :func:`union_by_group`.
    """
    out = _coverage_union(geoms, gid)
    left = shapely.is_missing(out)
    if left.any():
        sel = left[gid]
        out[left] = union_by_group(geoms[sel], np.searchsorted(np.flatnonzero(left), gid[sel]))
    types = shapely.get_type_id(out)
    lines = types == 5
    if lines.any():
        out[lines] = shapely.line_merge(out[lines])
    gaps = types == 6  # pieces split by floating-point noise along the seam: close the gap
    if gaps.any():
        wide = shapely.buffer(out[gaps], SEAM_EPS_DEG, join_style="mitre")
        out[gaps] = shapely.buffer(wide, -SEAM_EPS_DEG, join_style="mitre")
    return out


#: Groups of more pieces than this are left to the overlay (the coverage union takes a
#: table of groups × pieces).
_COVERAGE_MAX_PIECES = 8


def _coverage_union(geoms: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Each group's coverage union where it is exact (see :func:`_union_groups`), None
    elsewhere; ``gid`` sorted."""
    n = int(gid[-1]) + 1 if len(gid) else 0
    out = np.full(n, None, dtype=object)
    sizes = np.bincount(gid, minlength=n)
    polygonal = np.isin(shapely.get_type_id(geoms), _POLYGONAL)
    fit = (np.bincount(gid, ~polygonal, minlength=n) == 0) & (sizes <= _COVERAGE_MAX_PIECES)
    groups = np.flatnonzero(fit)
    if len(groups) == 0:
        return out
    sel = fit[gid]
    g, row = geoms[sel], np.searchsorted(groups, gid[sel])
    start = np.searchsorted(row, np.arange(len(groups)))
    table = np.full((len(groups), int(sizes[groups].max())), None, dtype=object)
    table[row, np.arange(len(row)) - start[row]] = g
    try:
        union = shapely.coverage_union_all(table, axis=1)
    except shapely.errors.GEOSException:
        # pieces that coincide exactly: GEOS refuses the whole batch, so every group goes
        # to the overlay (partly overlapping pieces give a MultiPolygon, refused below)
        return out
    area = np.bincount(row, shapely.area(g), minlength=len(groups))
    ok = (
        (shapely.get_type_id(union) == 3)
        & shapely.is_valid(union)
        & np.isclose(shapely.area(union), area, rtol=1e-9, atol=0)
    )
    out[groups[ok]] = union[ok]
    return out
