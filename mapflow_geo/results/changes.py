"""Object-level change between two results: ``new``, ``removed``, ``modified``, ``unchanged``.

Two runs over the same place at two dates detect the same buildings with slightly
different outlines (vertices a few decimetres apart, simplified differently) and cut
them at different tile seams. :func:`changes` matches the objects of the two dates by
overlap and reports what changed, so that detection noise and tiling never show as
change.

The rule
--------
Objects are polygons (lines and points are left out) of the same ``object_type``.

1. **Link.** A before object and an after object are linked when they overlap over at
   least ``min_overlap`` (default 0.5) of the smaller of the two. Linked objects form
   groups (connected components): one before object covered by several after objects
   (a split, or an object left in pieces at a seam) is one group (``match="1:n"``), and
   so is the reverse (a merge, ``"n:1"``); most groups are ``"1:1"``.
2. **Fragments.** An object linked to nothing of which at most ``area_change_m2`` lies
   farther than ``tolerance_m`` from the other side's objects (a sliver a seam shaved
   off, an outline drawn in two parts) joins the group of the nearest of them; one
   still linked to nothing, of at most ``area_change_m2``, within ``tolerance_m`` of an
   object of its own side is a piece of that object (left at a seam) and joins its
   group. Anything else linked to nothing is ``new`` (after) or ``removed`` (before).
3. **Compare** each group as a whole: ``area_before_m2`` and ``area_after_m2`` are the
   sums of its objects' areas (geodesic, m²) per side, ``iou`` the intersection over
   union of the two sides. A side adding up to at most ``area_change_m2`` against a
   larger other side is nothing: the group is ``new`` / ``removed``.
4. **Modified** when the area changed by more than ``area_change`` (default 10 %) *and*
   ``area_change_m2`` (default 5 m²) and more than ``area_change_m2`` of one side lies
   farther than ``tolerance_m`` (default 1 m) outside the other; or when the parts lying
   farther than the tolerance outside the other side (both ways, ``outside``) exceed
   ``area_change_m2`` and ``1 - outside / union`` is below ``min_iou`` (default 0.8): a
   building rebuilt in another place. Otherwise ``unchanged``.

The "farther than the tolerance" clauses make outline noise harmless: ±0.3 m of vertex
noise moves a 60 m² house's area by more than 10 % now and then, but nothing of it lies
a metre outside the other outline. A building cut at a seam of one run and whole in the
other is a ``1:n`` group with equal areas; an extension 3 m deep that adds 10 % and 5 m²
is modified with its area change (one shallower than the tolerance is not seen).

Speed
-----
Candidate pairs come from an :class:`shapely.STRtree` over the after objects (envelopes),
kept only when their envelopes overlap enough to link them. Intersection areas of the
candidate pairs are computed exactly in numpy from the polygons' edges (Green's theorem
over edge crossings and vertex containment, vectorised over all pairs), with GEOS for
pairs in degenerate position (shared or collinear edges) and for very detailed
polygons. Areas are measured in degrees² and scaled by the WGS84 area element at the
object's latitude (``M·N·cos φ``), which equals the geodesic area to well under 0.01 %
for objects up to kilometres across; intersection over union needs no scaling (it is
unchanged by the local affine map from degrees to metres). Buffers in metres are made
only for the few groups whose shape has to be checked, in a local frame per group.

Country-sized pairs
-------------------
Given two GeoParquet files or directories (any GeoParquet that ``pyarrow.dataset``
reads: WKB geometry, EPSG:4326 or a CRS in its metadata), :func:`changes` streams them
into a quadtree of cells (1° roots, split until a cell holds at most
``partition_features`` objects), each cell's file holding every object whose envelope
reaches the cell or a margin (``margin_m``, 250 m) around it. Cells are matched one at a
time, in Z order, with memory bounded by a cell. A group is reported by the cell that
holds its *anchor* (its first before object, else its after object, by input order) when
everything it holds or looked at (the fragment rule's neighbours, both ways) lies, with
the tolerance around it, within that cell's margin; groups larger than that (a
district-sized forest polygon) are grown afterwards from the cells they reach. The
result is the same as in memory. Given a GeoDataFrame on one side and a path on the
other, the frame is streamed the same way.

>>> ch = mapflow_geo.changes(res_2022, res_2024)                     # doctest: +SKIP
>>> ch["change"].value_counts()                                      # doctest: +SKIP
>>> change_table(ch, aois=res_2024.aois)                             # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import shapely

from mapflow_geo._geodesy import GEOD, geodesic_area_km2
from mapflow_geo.aoi import polygonal
from mapflow_geo.results.stitch import _components

log = logging.getLogger(__name__)

#: The change classes, in the order tables and legends show them.
CHANGES = ("new", "removed", "modified", "unchanged")
#: Columns of a change frame (and ``geometry``).
CHANGE_COLUMNS = [
    "change",
    "before_id",
    "after_id",
    "before_date",
    "after_date",
    "area_before_m2",
    "area_after_m2",
    "area_change_m2",
    "area_change_pct",
    "iou",
    "match",
    "object_type",
    "row",
]

_NEW, _REMOVED, _MODIFIED, _UNCHANGED = range(4)
_PROPS = ("id", "row", "object_type", "date")
#: Pairs of polygons with more edge pairs than this go to GEOS for their intersection.
_MAX_EDGE_PAIRS = 1024
#: Edge pairs per vectorised step of the intersection kernel (keeps the arrays in cache).
_CHUNK = 131_072
#: Relative tolerance of the intersection kernel: crossings this close (in edge
#: parameter) to a vertex, or edges this close to parallel, count as degenerate.
_EPS = 1e-9


@dataclasses.dataclass(frozen=True)
class ChangeRule:
    """The thresholds of the change rule (see the module docstring).

    Attributes
    ----------
    min_overlap : float
        A before and an after object are linked when their intersection is at least
        this share of the smaller one.
    min_iou : float
        A group whose intersection over union, measured with ``tolerance_m``, is below
        this (and whose parts outside the other side exceed ``area_change_m2``) is
        modified.
    tolerance_m : float
        Outlines within this distance (m) of each other are the same outline; only
        change beyond it counts.
    area_change : float
        A group is modified when its area changed by more than this share …
    area_change_m2 : float
        … and by more than this many m² (and more than this lies beyond the tolerance);
        also the size of a fragment, and of a side that counts as nothing.
    """

    min_overlap: float = 0.5
    min_iou: float = 0.8
    tolerance_m: float = 1.0
    area_change: float = 0.10
    area_change_m2: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_overlap <= 1.0:
            raise ValueError(f"min_overlap must be in (0, 1], not {self.min_overlap!r}")
        if not 0.0 <= self.min_iou <= 1.0:
            raise ValueError(f"min_iou must be in [0, 1], not {self.min_iou!r}")
        for name in ("tolerance_m", "area_change", "area_change_m2"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)!r}")


# -- the ellipsoid ----------------------------------------------------------------------
def _metres_per_degree(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres per degree of longitude and of latitude at ``lat`` (WGS84)."""
    phi = np.radians(np.clip(lat, -89.999, 89.999))
    w = 1.0 - GEOD.es * np.sin(phi) ** 2
    n = GEOD.a / np.sqrt(w)  # prime vertical radius
    m = GEOD.a * (1.0 - GEOD.es) / w**1.5  # meridional radius
    return n * np.cos(phi) * (np.pi / 180.0), m * (np.pi / 180.0)


def _m2_per_deg2(lat: np.ndarray) -> np.ndarray:
    """The WGS84 area element (m² per degree²) at ``lat``."""
    kx, ky = _metres_per_degree(lat)
    return kx * ky


# -- objects ----------------------------------------------------------------------------
@dataclasses.dataclass
class _Objects:
    """One side's polygons, normalised: ``gid`` (input position, the identity), valid
    EPSG:4326 geometries, envelopes, and the properties a change reports."""

    gid: np.ndarray
    geoms: np.ndarray
    props: pd.DataFrame  # id, row, object_type, date; RangeIndex

    def __post_init__(self) -> None:
        self.bounds = shapely.bounds(self.geoms) if len(self.geoms) else np.zeros((0, 4))
        self.area_deg = shapely.area(self.geoms)
        self.lat = (self.bounds[:, 1] + self.bounds[:, 3]) / 2
        self.area_m2 = self.area_deg * _m2_per_deg2(self.lat)

    def __len__(self) -> int:
        return len(self.gid)

    @functools.cached_property
    def edges(self) -> _Edges:
        """The polygons' oriented edges (for the intersection kernel)."""
        return _Edges.of(self.geoms)

    def take(self, idx: np.ndarray) -> _Objects:
        return _Objects(self.gid[idx], self.geoms[idx], self.props.iloc[idx].reset_index(drop=True))

    @staticmethod
    def concat(parts: list[_Objects]) -> _Objects:
        parts = [p for p in parts if len(p)] or parts[:1]
        return _Objects(
            np.concatenate([p.gid for p in parts]),
            np.concatenate([p.geoms for p in parts]),
            pd.concat([p.props for p in parts], ignore_index=True),
        )


def _as_frame(obj: Any) -> gpd.GeoDataFrame:
    """A MapflowResult's ``features`` or a GeoDataFrame, in EPSG:4326."""
    feats = getattr(obj, "features", obj)
    if not isinstance(feats, gpd.GeoDataFrame):
        raise TypeError(
            "changes() compares MapflowResults, GeoDataFrames or GeoParquet paths, "
            f"not {type(obj).__name__}"
        )
    if feats.crs is not None and not feats.crs.equals("EPSG:4326"):
        feats = feats.to_crs(4326)
    return feats


def _normalise(frame: pd.DataFrame, geoms: np.ndarray, gid: np.ndarray) -> _Objects:
    """The polygonal objects of a frame (lines, points, empties dropped; invalid ones
    repaired) with their ``id`` (the frame's ``id``, else its index label), ``row``,
    ``object_type`` and ``date`` (``processing_date``, else ``date``)."""
    n = len(frame)
    props = pd.DataFrame(index=pd.RangeIndex(n))
    props["id"] = frame["id"].to_numpy() if "id" in frame else frame.index.to_numpy()
    for col in ("row", "object_type"):
        props[col] = frame[col].to_numpy() if col in frame else None
    date = next((frame[c] for c in ("processing_date", "date") if c in frame), None)
    props["date"] = _dates(date, n)
    geoms = np.asarray(geoms, dtype=object)
    kind = shapely.get_type_id(geoms)
    bad = np.flatnonzero((kind >= 0) & ~shapely.is_valid(geoms))
    if len(bad):
        geoms = geoms.copy()
        geoms[bad] = [polygonal(g) for g in shapely.make_valid(geoms[bad])]
    odd = np.flatnonzero(kind == 7)  # collections: their polygonal part
    if len(odd):
        geoms = geoms.copy()
        geoms[odd] = [polygonal(g) for g in geoms[odd]]
        kind = shapely.get_type_id(geoms)
    keep = np.isin(kind, (3, 6)) & ~shapely.is_empty(geoms)
    keep[keep] = shapely.area(geoms[keep]) > 0
    idx = np.flatnonzero(keep)
    return _Objects(
        np.asarray(gid, dtype=np.int64)[idx],
        geoms[idx],
        props.iloc[idx].reset_index(drop=True),
    )


def _dates(col: pd.Series | None, n: int) -> np.ndarray:
    """Dates as naive UTC datetime64 (NaT where missing or unreadable); parsed once per
    distinct value."""
    if col is None:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    codes, uniques = pd.factorize(col)
    values = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    parsed = pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None)
    table = np.r_[parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns")]
    return table[np.where(codes >= 0, codes, len(table) - 1)]


def _frame_objects(obj: Any) -> _Objects:
    feats = _as_frame(obj)
    return _normalise(feats, feats.geometry.values, np.arange(len(feats)))


# -- intersection areas -----------------------------------------------------------------
@dataclasses.dataclass
class _Edges:
    """The edges of polygonal geometries, every ring oriented with its interior on the
    left (exteriors counter-clockwise, holes clockwise); geometry ``g`` owns the edges
    ``start[g] : start[g] + count[g]``."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, geoms: np.ndarray) -> _Edges:
        n = len(geoms)
        is_simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
        simple, other = np.flatnonzero(is_simple), np.flatnonzero(~is_simple)
        pieces = []
        if len(simple):  # one ring each: the common case, without ragged arrays
            xy, owner = shapely.get_coordinates(geoms[simple], return_index=True)
            pieces.append(_ring_edges(xy, owner, np.ones(len(simple), bool), simple))
        if len(other):
            _, xy, offsets = shapely.to_ragged_array(geoms[other])
            ring_off = np.asarray(offsets[0], np.int64)
            if len(offsets) == 2:  # Polygons with holes
                poly_of_geom = np.arange(len(other) + 1)
                ring_off_poly = np.asarray(offsets[1], np.int64)
            else:
                ring_off_poly = np.asarray(offsets[1], np.int64)
                poly_of_geom = np.asarray(offsets[2], np.int64)
            n_rings = len(ring_off) - 1
            ring = np.repeat(np.arange(n_rings), np.diff(ring_off))
            exterior = np.zeros(n_rings, bool)
            exterior[ring_off_poly[:-1][np.diff(ring_off_poly) > 0]] = True
            poly = np.repeat(np.arange(len(ring_off_poly) - 1), np.diff(ring_off_poly))
            geom = np.repeat(np.arange(len(poly_of_geom) - 1), np.diff(poly_of_geom))
            pieces.append(_ring_edges(xy, ring, exterior, other[geom[poly]]))
        if not pieces:
            z = np.zeros(0)
            return cls(z, z, z, z, np.zeros(n, np.int64), np.zeros(n, np.int64))
        x0, y0, x1, y1, owner = (np.concatenate(c) for c in zip(*pieces, strict=True))
        order = np.argsort(owner, kind="stable")
        count = np.bincount(owner, minlength=n).astype(np.int64)
        start = np.cumsum(count) - count
        return cls(x0[order], y0[order], x1[order], y1[order], start, count)


def _ring_edges(xy: np.ndarray, ring: np.ndarray, exterior: np.ndarray, owner: np.ndarray):
    """Edges of closed rings given as vertices with their ring number; each ring
    oriented by ``exterior``; ``owner`` maps ring → geometry."""
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    k = np.flatnonzero(ring[:-1] == ring[1:])
    r = ring.take(k)
    first = np.r_[0, np.flatnonzero(ring[1:] != ring[:-1]) + 1]
    xa, ya, xb, yb = x.take(k), y.take(k), x.take(k + 1), y.take(k + 1)
    ox, oy = x.take(first).take(r), y.take(first).take(r)  # shifted: exact signs
    cross = (xa - ox) * (yb - oy) - (ya - oy) * (xb - ox)
    signed = np.bincount(r, weights=cross, minlength=len(exterior))
    f = ((signed > 0) != exterior[: len(signed)]).take(r)
    x0, x1 = np.where(f, xb, xa), np.where(f, xa, xb)
    y0, y1 = np.where(f, yb, ya), np.where(f, ya, yb)
    keep = (x0 != x1) | (y0 != y1)
    return x0[keep], y0[keep], x1[keep], y1[keep], owner.take(r[keep])


def _segments(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts ``n``: the owner of every element and its position in its owner."""
    owner = np.repeat(np.arange(len(n)), n)
    return owner, np.arange(len(owner)) - (np.cumsum(n) - n)[owner]


def _kernel(eb: _Edges, ea: _Edges, i: np.ndarray, j: np.ndarray, ox, oy) -> np.ndarray:
    """Intersection areas (degrees²) of polygons ``i`` (edges ``eb``) and ``j`` (edges
    ``ea``); NaN where the pair is in degenerate position.

    The boundary of P ∩ Q is the part of P's boundary inside Q and the part of Q's
    boundary inside P; the area is the shoelace sum over those parts. Along an edge the
    shoelace term is linear in the share of the edge that is inside, and that share is
    ``inside(end) + Σ t·sign`` over the edge's crossings with the other polygon (``t``
    the crossing's parameter, the sign telling entry from exit), so no crossing needs
    sorting. Coordinates are shifted to each pair's origin ``(ox, oy)``.
    """
    npairs = len(i)
    n, m = eb.count[i], ea.count[j]
    ep, el = _segments(n)
    fp, fl = _segments(m)
    eidx, fidx = eb.start[i][ep] + el, ea.start[j][fp] + fl
    ax0, ay0 = eb.x0.take(eidx) - ox[ep], eb.y0.take(eidx) - oy[ep]
    ax1, ay1 = eb.x1.take(eidx) - ox[ep], eb.y1.take(eidx) - oy[ep]
    bx0, by0 = ea.x0.take(fidx) - ox[fp], ea.y0.take(fidx) - oy[fp]
    bx1, by1 = ea.x1.take(fidx) - ox[fp], ea.y1.take(fidx) - oy[fp]
    rep = m[ep]  # every edge of P meets every edge of Q of its pair
    te, tl = _segments(rep)
    tf = (np.cumsum(m) - m)[ep[te]] + tl
    px, py, ex, ey = ax0[te], ay0[te], ax1[te], ay1[te]
    qx, qy, fx, fy = bx0[tf], by0[tf], bx1[tf], by1[tf]
    rx, ry, sx, sy = ex - px, ey - py, fx - qx, fy - qy
    wx, wy = qx - px, qy - py
    denom = rx * sy - ry * sx
    scale = np.abs(rx) + np.abs(ry) + np.abs(sx) + np.abs(sy)
    scale *= scale
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (wx * sy - wy * sx) / denom
        u = (wx * ry - wy * rx) / denom
        par = np.abs(denom) <= _EPS * scale
        on = ~par & (t > -_EPS) & (t < 1 + _EPS) & (u > -_EPS) & (u < 1 + _EPS)
        cross = on & (t > _EPS) & (t < 1 - _EPS) & (u > _EPS) & (u < 1 - _EPS)
        bad = (on & ~cross) | (par & (np.abs(wx * ry - wy * rx) <= _EPS * scale))
        sign = np.sign(denom)
        ce = np.where(cross, t * sign, 0.0)
        cf = np.where(cross, -u * sign, 0.0)
        # ray casting (+x) of each edge's end against the other polygon's edges
        hit_e = ((qy > ey) != (fy > ey)) & (ex < qx + (ey - qy) * sx / sy)
        hit_f = ((py > fy) != (ey > fy)) & (fx < px + (fy - py) * rx / ry)
    ne, nf = len(eidx), len(fidx)
    inside_e = np.bincount(te, weights=hit_e, minlength=ne) % 2
    inside_f = np.bincount(tf, weights=hit_f, minlength=nf) % 2
    me = np.clip(inside_e + np.bincount(te, weights=ce, minlength=ne), 0.0, 1.0)
    mf = np.clip(inside_f + np.bincount(tf, weights=cf, minlength=nf), 0.0, 1.0)
    area = np.bincount(ep, weights=(ax0 * ay1 - ay0 * ax1) * me, minlength=npairs)
    area += np.bincount(fp, weights=(bx0 * by1 - by0 * bx1) * mf, minlength=npairs)
    degenerate = np.bincount(ep[te], weights=bad, minlength=npairs) > 0
    return np.where(degenerate, np.nan, area / 2.0)


def _intersection_areas(b: _Objects, a: _Objects, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Exact intersection areas (degrees²) of pairs of before ``i`` and after ``j``
    objects: the vectorised kernel, GEOS where it declines."""
    out = np.full(len(i), np.nan)
    if not len(i):
        return out
    eb, ea = b.edges, a.edges
    work = eb.count[i] * ea.count[j]
    fast = np.flatnonzero(work <= _MAX_EDGE_PAIRS)
    ox, oy = b.bounds[:, 0], b.bounds[:, 1]
    cum = np.cumsum(work[fast])
    cuts = np.searchsorted(cum, np.arange(_CHUNK, cum[-1] + _CHUNK, _CHUNK)) if len(cum) else []
    lo = 0
    for hi in [*cuts, len(fast)]:
        hi = min(max(int(hi), lo + 1), len(fast))
        if hi <= lo:
            continue
        s = fast[lo:hi]
        out[s] = _kernel(eb, ea, i[s], j[s], ox[i[s]], oy[i[s]])
        lo = hi
    slow = np.flatnonzero(np.isnan(out))
    if len(slow):
        out[slow] = shapely.area(shapely.intersection(b.geoms[i[slow]], a.geoms[j[slow]]))
    return out


# -- matching ---------------------------------------------------------------------------
@dataclasses.dataclass
class _Groups:
    """The groups of one window: a label per before and after object and per-group sums."""

    label_b: np.ndarray
    label_a: np.ndarray
    n_before: np.ndarray
    n_after: np.ndarray
    area_before: np.ndarray
    area_after: np.ndarray
    inter: np.ndarray
    #: (group, object position) pairs: groups whose making looked at an object of the
    #: other side that is not theirs (a fragment's neighbours), per side
    deps_b: np.ndarray
    deps_a: np.ndarray

    def __len__(self) -> int:
        return len(self.n_before)


def _type_codes(b: _Objects, a: _Objects) -> tuple[np.ndarray, np.ndarray]:
    both = pd.concat([b.props["object_type"], a.props["object_type"]], ignore_index=True)
    codes = pd.factorize(both.astype(object).where(both.notna(), "\0none"))[0]
    return codes[: len(b)], codes[len(b) :]


def _match(b: _Objects, a: _Objects, rule: ChangeRule) -> _Groups:
    """Link the objects of the two sides (the rule's step 1) and sum each group."""
    nb, na = len(b), len(a)
    tree = shapely.STRtree(a.geoms) if nb and na else None
    tb, ta = _type_codes(b, a)
    if tree is not None:
        i, j = tree.query(b.geoms)
        same = tb[i] == ta[j]
        i, j = i[same], j[same]
    else:
        i = j = np.zeros(0, np.intp)
    small = np.minimum(b.area_deg[i], a.area_deg[j])
    bi, bj = b.bounds[i], a.bounds[j]
    wx = np.minimum(bi[:, 2], bj[:, 2]) - np.maximum(bi[:, 0], bj[:, 0])
    wy = np.minimum(bi[:, 3], bj[:, 3]) - np.maximum(bi[:, 1], bj[:, 1])
    maybe = np.clip(wx, 0, None) * np.clip(wy, 0, None) >= rule.min_overlap * small
    inter = np.zeros(len(i))
    inter[maybe] = _intersection_areas(b, a, i[maybe], j[maybe])
    link = maybe & (inter > 0) & (inter >= rule.min_overlap * small)
    fi, fj, (near_a, near_b) = _fragments(b, a, i[link], j[link], tree, (tb, ta), rule)
    li, lj = np.r_[i[link], fi], np.r_[j[link], fj]
    linked_b, linked_a = np.zeros(nb, bool), np.zeros(na, bool)
    linked_b[li], linked_a[lj] = True, True
    pb, qb = _pieces(b, ~linked_b, tb, rule)
    pa, qa = _pieces(a, ~linked_a, ta, rule)
    rows = np.r_[li, pb[0], nb + pa[0]]
    cols = np.r_[nb + lj, pb[1], nb + pa[1]]
    label = _components(nb + na, rows, cols)
    label_b, label_a = label[:nb], label[nb:]
    # envelope pairs the first test skipped whose objects ended up in one group anyway
    late = ~maybe & (label_b[i] == label_a[j])
    if late.any():
        inter[late] = _intersection_areas(b, a, i[late], j[late])
    inside = label_b[i] == label_a[j]
    g = int(label.max()) + 1 if len(label) else 0
    inter_m2 = inter[inside] * _m2_per_deg2(b.lat[i[inside]])
    return _Groups(
        label_b,
        label_a,
        np.bincount(label_b, minlength=g),
        np.bincount(label_a, minlength=g),
        np.bincount(label_b, weights=b.area_m2, minlength=g),
        np.bincount(label_a, weights=a.area_m2, minlength=g),
        np.bincount(label_b[i[inside]], weights=inter_m2, minlength=g),
        # a fragment's or a piece's group looked at its neighbours, and theirs at it
        np.r_[
            np.column_stack([label_a[near_a[0]], near_a[1]]),
            np.column_stack([label_a[near_b[1]], near_b[0]]),
            np.column_stack([label_b[qb[0]], qb[1]]),
            np.column_stack([label_b[qb[1]], qb[0]]),
        ],
        np.r_[
            np.column_stack([label_b[near_b[0]], near_b[1]]),
            np.column_stack([label_b[near_a[1]], near_a[0]]),
            np.column_stack([label_a[qa[0]], qa[1]]),
            np.column_stack([label_a[qa[1]], qa[0]]),
        ],
    )


def _pieces(objs: _Objects, lone: np.ndarray, types: np.ndarray, rule: ChangeRule):
    """Same-side links for pieces (the rule's step 2, second half): an object still
    linked to nothing, of at most ``area_change_m2``, within ``tolerance_m`` of another
    object of its own side is a piece of it (left at a seam): it is linked to the
    nearest. Returns the links and the near pairs looked at, both as (piece,
    neighbour) positions."""
    empty = (np.zeros(0, np.intp), np.zeros(0, np.intp))
    cand = np.flatnonzero(lone & (objs.area_m2 <= rule.area_change_m2))
    if not len(cand) or len(objs) < 2:
        return empty, empty
    env = _envelopes(objs.bounds[cand], rule.tolerance_m)
    o, q = shapely.STRtree(env).query(shapely.box(*objs.bounds.T))
    keep = (o != cand[q]) & (types[o] == types[cand[q]])
    q, o = q[keep], o[keep]
    if not len(q):
        return empty, empty
    lon0 = (objs.bounds[cand, 0] + objs.bounds[cand, 2]) / 2
    lat0 = objs.lat[cand]
    kx, ky = _metres_per_degree(lat0)
    mine = _to_local(objs.geoms[cand], lon0, lat0, kx, ky)
    theirs = _to_local(objs.geoms[o], lon0[q], lat0[q], kx[q], ky[q])
    dist = shapely.distance(mine[q], theirs)
    near = dist <= rule.tolerance_m
    q, o, dist = q[near], o[near], dist[near]
    order = np.lexsort((o, dist, q))  # per piece: the nearest, then input order
    first = np.r_[True, q[order][1:] != q[order][:-1]] if len(q) else np.zeros(0, bool)
    return (cand[q[order][first]], o[order][first]), (cand[q], o)


def _fragments(b, a, li, lj, tree, types, rule: ChangeRule):
    """Links for fragments (the rule's step 1b): an object linked to nothing of which at
    most ``area_change_m2`` lies farther than ``tolerance_m`` from the other side's
    objects is a piece of them (a sliver left at a seam, an outline drawn in two parts):
    it is linked to the nearest. Returns (before, after) positions of the links and the
    near pairs looked at, (lone after, before) and (lone before, after)."""
    links = {0: [np.zeros(0, np.intp)], 1: [np.zeros(0, np.intp)]}
    empty = np.zeros(0, np.intp)
    near_pairs = [(empty, empty), (empty, empty)]
    linked = [np.zeros(len(b), bool), np.zeros(len(a), bool)]
    linked[0][li] = True
    linked[1][lj] = True
    for k, (mine, other) in enumerate(((a, b), (b, a))):
        lone = np.flatnonzero(~linked[1 - k])
        if not len(lone) or not len(other):
            continue
        env = _envelopes(mine.bounds[lone], rule.tolerance_m)
        if k == 0:  # a small tree of the lone after objects, queried with the before ones
            o, q = shapely.STRtree(env).query(shapely.box(*other.bounds.T))
        else:
            q, o = tree.query(env)
        same = types[1 - k][lone[q]] == types[k][o]
        q, o = q[same], o[same]
        if not len(q):
            continue
        near, dist, beyond = _near_and_beyond(mine, other, lone, q, o, rule.tolerance_m)
        q, o, dist = q[near], o[near], dist[near]
        near_pairs[k] = (lone[q], o)
        frag = beyond[q] <= rule.area_change_m2
        q, o, dist = q[frag], o[frag], dist[frag]
        order = np.lexsort((o, dist, q))  # per lone object: the nearest, then input order
        first = np.r_[True, q[order][1:] != q[order][:-1]] if len(q) else np.zeros(0, bool)
        links[1 - k].append(lone[q[order][first]])
        links[k].append(o[order][first])
    before, after = np.concatenate(links[0]), np.concatenate(links[1])
    return before, after, near_pairs


def _envelopes(bounds: np.ndarray, metres: float) -> np.ndarray:
    """Envelopes grown by ``metres`` (degrees at their latitude), as boxes."""
    kx, ky = _metres_per_degree(np.maximum(np.abs(bounds[:, 1]), np.abs(bounds[:, 3])))
    mx, my = metres / kx, metres / ky
    return shapely.box(bounds[:, 0] - mx, bounds[:, 1] - my, bounds[:, 2] + mx, bounds[:, 3] + my)


def _near_and_beyond(lone_side, other, lone, q, o, tolerance_m):
    """For candidate pairs (lone object ``lone[q]``, other-side object ``o``): whether
    they lie within ``tolerance_m``, their distance (m), and per lone object the area
    (m²) of it lying farther than the tolerance from all its near neighbours."""
    beyond = np.full(len(lone), np.inf)
    has, slot = np.unique(q, return_inverse=True)  # lone objects with candidates
    sel = lone[has]
    lon0 = (lone_side.bounds[sel, 0] + lone_side.bounds[sel, 2]) / 2
    lat0 = lone_side.lat[sel]
    kx, ky = _metres_per_degree(lat0)
    mine = _to_local(lone_side.geoms[sel], lon0, lat0, kx, ky)
    theirs = _to_local(other.geoms[o], lon0[slot], lat0[slot], kx[slot], ky[slot])
    dist = shapely.distance(mine[slot], theirs)
    near = dist <= tolerance_m
    hit, hslot = np.unique(slot[near], return_inverse=True)
    if len(hit):
        cover = shapely.buffer(_union_by(theirs[near], hslot, len(hit)), tolerance_m, quad_segs=4)
        beyond[has[hit]] = shapely.area(shapely.difference(mine[hit], cover))
    return near, dist, beyond


# -- classification ---------------------------------------------------------------------
def _classify(b: _Objects, a: _Objects, grp: _Groups, rule: ChangeRule) -> np.ndarray:
    """A change code per group (the rule's steps 2 and 3)."""
    code = np.full(len(grp), _UNCHANGED, np.int8)
    # a side of fragments only (at most area_change_m2 in all, against more) is nothing
    tiny_b = grp.area_before <= rule.area_change_m2
    tiny_a = grp.area_after <= rule.area_change_m2
    code[(grp.n_before == 0) | (tiny_b & ~tiny_a)] = _NEW
    code[(grp.n_after == 0) | (tiny_a & ~tiny_b)] = _REMOVED
    both = (code == _UNCHANGED) & (grp.n_before > 0) & (grp.n_after > 0)
    delta = np.abs(grp.area_after - grp.area_before)
    grown = delta > np.maximum(rule.area_change_m2, rule.area_change * grp.area_before)
    # the tolerant IoU is never below the plain one: only these can be modified
    check = np.flatnonzero(both & (grown | (_iou(grp) < rule.min_iou)))
    if len(check):
        added, lost = _beyond(b, a, grp, check, rule.tolerance_m)
        union = grp.area_before[check] + grp.area_after[check] - grp.inter[check]
        moved = added + lost
        with np.errstate(divide="ignore", invalid="ignore"):
            reshaped = (1.0 - moved / union < rule.min_iou) & (moved > rule.area_change_m2)
        real = grown[check] & (np.maximum(added, lost) > rule.area_change_m2)
        code[check[real | reshaped]] = _MODIFIED
    return code


def _iou(grp: _Groups) -> np.ndarray:
    union = grp.area_before + grp.area_after - grp.inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, grp.inter / union, np.nan)


def _members(label: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objects (positions) whose label is in ``groups``, and their group's position in
    ``groups``."""
    size = max(int(label.max()) if len(label) else -1, int(groups.max()) if len(groups) else -1)
    where = np.full(size + 1, -1)
    where[groups] = np.arange(len(groups))
    pos = np.flatnonzero(where[label] >= 0)
    return pos, where[label[pos]]


def _beyond(
    b: _Objects, a: _Objects, grp: _Groups, groups: np.ndarray, tolerance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``groups``: the area (m²) of the after side lying farther than
    ``tolerance_m`` outside the before side (added), and the reverse (lost).

    Outlines are compared in a local metric frame per group; a one-to-one pair whose
    vertices all lie within the tolerance of the other outline (discrete Hausdorff
    distance) adds and loses nothing, without buffers."""
    pb, gb = _members(grp.label_b, groups)
    pa_, ga = _members(grp.label_a, groups)
    # each group's frame: the envelope centre of its first before object
    first = np.full(len(groups), -1)
    first[gb[::-1]] = pb[::-1]
    lon0 = (b.bounds[first, 0] + b.bounds[first, 2]) / 2
    lat0 = b.lat[first]
    kx, ky = _metres_per_degree(lat0)
    local_b = _to_local(b.geoms[pb], lon0[gb], lat0[gb], kx[gb], ky[gb])
    local_a = _to_local(a.geoms[pa_], lon0[ga], lat0[ga], kx[ga], ky[ga])
    shape_b = _union_by(local_b, gb, len(groups))
    shape_a = _union_by(local_a, ga, len(groups))
    added, lost = np.zeros(len(groups)), np.zeros(len(groups))
    todo = np.arange(len(groups))
    one = (grp.n_before[groups] == 1) & (grp.n_after[groups] == 1)
    if one.any():
        close = shapely.hausdorff_distance(shape_b[one], shape_a[one]) <= tolerance_m
        settled = np.zeros(len(groups), bool)
        settled[np.flatnonzero(one)[close]] = True
        todo = np.flatnonzero(~settled)
    if len(todo):
        sb, sa = shape_b[todo], shape_a[todo]
        buf_b = shapely.buffer(sb, tolerance_m, quad_segs=4)
        buf_a = shapely.buffer(sa, tolerance_m, quad_segs=4)
        added[todo] = shapely.area(shapely.difference(sa, buf_b))
        lost[todo] = shapely.area(shapely.difference(sb, buf_a))
    return added, lost


def _to_local(geoms, lon0, lat0, kx, ky) -> np.ndarray:
    """Geometries in metres about their own origin (one per geometry)."""
    if not len(geoms):
        return geoms
    counts = shapely.get_num_coordinates(geoms)
    owner = np.repeat(np.arange(len(geoms)), counts)

    def shift(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [(xy[:, 0] - lon0[owner]) * kx[owner], (xy[:, 1] - lat0[owner]) * ky[owner]]
        )

    return shapely.transform(geoms, shift)


def _union_by(geoms: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """The union of the geometries of each group ``0..n-1`` (every group non-empty),
    pairwise in rounds so that each round is one vectorised call."""
    order = np.argsort(group, kind="stable")
    geoms, gid = geoms[order].copy(), group[order]
    while len(gid) > n:
        start = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
        rank = np.arange(len(gid)) - np.repeat(start, np.diff(np.r_[start, len(gid)]))
        even = rank % 2 == 0
        has_next = np.r_[gid[1:] == gid[:-1], False] & even
        k = np.flatnonzero(has_next)
        geoms[k] = shapely.union(geoms[k], geoms[k + 1])
        geoms, gid = geoms[even], gid[even]
    return geoms


# -- the change frame -------------------------------------------------------------------
def _largest(label: np.ndarray, area: np.ndarray, n: int) -> np.ndarray:
    """Per group, the position of its largest member (-1 for none)."""
    out = np.full(n, -1)
    if len(label):
        order = np.lexsort((-area, label))
        first = np.r_[True, label[order][1:] != label[order][:-1]]
        out[label[order][first]] = order[first]
    return out


def _ids(objs: _Objects, label: np.ndarray, count: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per group: None, the one member's id, or the list of the members' ids (input
    order)."""
    out = np.full(len(groups), None, dtype=object)
    pos, where = _members(label, groups)
    if not len(pos):
        return out
    ids = objs.props["id"].to_numpy()
    order = np.lexsort((objs.gid[pos], where))
    pos, where = pos[order], where[order]
    one = count[groups][where] == 1
    out[where[one]] = ids[pos[one]]
    multi = ~one
    if multi.any():
        w, p = where[multi], pos[multi]
        cuts = np.flatnonzero(np.r_[True, w[1:] != w[:-1]])
        for g, chunk in zip(w[cuts], np.split(ids[p], cuts[1:]), strict=True):
            out[g] = chunk.tolist()
    return out


def _frame(
    b: _Objects, a: _Objects, grp: _Groups, code: np.ndarray, groups: np.ndarray
) -> gpd.GeoDataFrame:
    """The change frame of ``groups`` (positions), with the anchor columns ``_side`` /
    ``_gid`` that order it."""
    g = len(grp)
    big_b = _largest(grp.label_b, b.area_m2, g)[groups]
    big_a = _largest(grp.label_a, a.area_m2, g)[groups]
    nb, na = grp.n_before[groups], grp.n_after[groups]
    has_a = code[groups] != _REMOVED  # the side a change shows: after's, before's if removed
    geom = np.empty(len(groups), dtype=object)
    for objs, label, count, big, mask in (
        (b, grp.label_b, nb, big_b, ~has_a),
        (a, grp.label_a, na, big_a, has_a),
    ):
        one = np.flatnonzero(mask & (count == 1))
        geom[one] = objs.geoms[big[one]]
        multi = np.flatnonzero(mask & (count > 1))
        if len(multi):
            pos, where = _members(label, groups[multi])
            geom[multi] = _union_by(objs.geoms[pos], where, len(multi))
    side_b, side_a = b.props, a.props

    def pick(col: str) -> np.ndarray:
        out = np.empty(len(groups), dtype=object)
        out[has_a] = side_a[col].to_numpy(dtype=object)[big_a[has_a]]
        out[~has_a] = side_b[col].to_numpy(dtype=object)[big_b[~has_a]]
        return out

    def date(side: pd.DataFrame, big: np.ndarray) -> np.ndarray:
        d = side["date"].to_numpy(dtype="datetime64[ns]")
        return np.where(big >= 0, d[np.maximum(big, 0)] if len(d) else None, np.datetime64("NaT"))

    area_b, area_a = grp.area_before[groups], grp.area_after[groups]
    delta = area_a - area_b
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(area_b > 0, 100.0 * delta / area_b, np.nan)
    match = np.where(
        (nb == 0) | (na == 0),
        None,
        np.where(nb == 1, np.where(na == 1, "1:1", "1:n"), np.where(na == 1, "n:1", "n:m")),
    )
    iou = np.where((nb > 0) & (na > 0), _iou(grp)[groups], np.nan)
    first_b = np.full(g, np.iinfo(np.int64).max)
    np.minimum.at(first_b, grp.label_b, b.gid)
    first_a = np.full(g, np.iinfo(np.int64).max)
    np.minimum.at(first_a, grp.label_a, a.gid)
    frame = pd.DataFrame(
        {
            "change": pd.Categorical.from_codes(code[groups], categories=list(CHANGES)),
            "before_id": pd.Series(_ids(b, grp.label_b, grp.n_before, groups), dtype=object),
            "after_id": pd.Series(_ids(a, grp.label_a, grp.n_after, groups), dtype=object),
            "before_date": date(side_b, big_b).astype("datetime64[ns]"),
            "after_date": date(side_a, big_a).astype("datetime64[ns]"),
            "area_before_m2": area_b,
            "area_after_m2": area_a,
            "area_change_m2": delta,
            "area_change_pct": pct,
            "iou": iou,
            "match": pd.Series(match, dtype=object),
            "object_type": pd.Series(pick("object_type"), dtype=object),
            "row": pick("row"),
            "_side": np.where(nb > 0, 0, 1).astype(np.int8),
            "_gid": np.where(nb > 0, first_b[groups], first_a[groups]),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=geom, crs="EPSG:4326")


def _changes_of(b: _Objects, a: _Objects, rule: ChangeRule) -> gpd.GeoDataFrame:
    """Every change between two sides held in memory, in anchor order."""
    grp = _match(b, a, rule)
    code = _classify(b, a, grp, rule)
    out = _frame(b, a, grp, code, np.arange(len(grp)))
    return _finish(out)


def _finish(out: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = out.sort_values(["_side", "_gid"], kind="stable").drop(columns=["_side", "_gid"])
    out = out.reset_index(drop=True)
    out["row"] = _tidy(out["row"])
    return out


def _tidy(col: pd.Series) -> pd.Series:
    """Object columns of one plain type back to that type (``row`` labels)."""
    try:
        return col.infer_objects()
    except (TypeError, ValueError):  # pragma: no cover - mixed labels stay objects
        return col


# -- public API -------------------------------------------------------------------------
def changes(
    before: Any,
    after: Any,
    *,
    min_iou: float = 0.8,
    tolerance_m: float = 1.0,
    area_change: float = 0.10,
    area_change_m2: float = 5.0,
    min_overlap: float = 0.5,
    unchanged: bool = True,
    partition_features: int = 500_000,
    margin_m: float = 250.0,
    workdir: str | Path | None = None,
) -> gpd.GeoDataFrame:
    """Object-level change from ``before`` to ``after``: ``new``, ``removed``,
    ``modified`` (with its area change) or ``unchanged``, robust to outline jitter and to
    the two runs' different tiles and seams.

    Objects are matched by overlap, one to one or in groups for splits and merges; see
    the module docstring (:mod:`mapflow_geo.results.changes`) for the rule.

    Parameters
    ----------
    before, after : MapflowResult, GeoDataFrame, or str / Path
        Results (their ``features``; or the GeoParquet dataset a result wrote with
        ``to_parquet``, when it did), GeoDataFrames (EPSG:4326, or any CRS: they are
        converted), or GeoParquet files or directories. When either side is a dataset
        (or the two frames hold more than ``8 * partition_features`` objects), both are
        processed partition by partition with bounded memory (the same result as in
        memory). Polygons are compared; lines and points are left out. Ids are the
        ``id`` column (else the index label); dates the ``processing_date`` column (else
        ``date``).
    min_iou : float
        A matched group whose intersection over union, measured with ``tolerance_m``,
        is below this is modified (when the parts outside exceed ``area_change_m2``).
    tolerance_m : float
        Outlines within this distance (m) of each other are the same outline: only
        change lying farther than this counts.
    area_change, area_change_m2 : float
        A matched group is modified when its area changed by more than this share and
        by more than this many m² (of which more than ``area_change_m2`` lies beyond
        the tolerance).
    min_overlap : float
        Objects are matched when they overlap over this share of the smaller one.
    unchanged : bool
        Keep the ``unchanged`` rows (most of them, usually).
    partition_features, margin_m, workdir
        The dataset path: objects per partition (both sides), the margin around each
        partition, where its temporary files go (default: the system's temp directory).

    Returns
    -------
    GeoDataFrame
        One row per change (EPSG:4326): ``change`` (categorical, :data:`CHANGES`),
        ``before_id`` / ``after_id`` (an id, a list of ids for a split or merge, None
        for the missing side), ``before_date`` / ``after_date``, ``area_before_m2``,
        ``area_after_m2``, ``area_change_m2`` (after − before: a new object's area, minus
        a removed one's), ``area_change_pct`` (of the before area), ``iou``, ``match``
        (``"1:1"``, ``"1:n"`` split, ``"n:1"`` merge, ``"n:m"``), ``object_type``, ``row``
        (the input row of the after side, the before side's for removed objects) and the
        geometry (after's, before's for removed objects). In input order of the before
        objects, then the new ones.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> b = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[box(0, 0, 1e-4, 1e-4),
    ...                       box(1e-3, 0, 1.1e-3, 1e-4)], crs=4326)
    >>> a = gpd.GeoDataFrame({"id": ["A", "C"]}, geometry=[box(0, 0, 1e-4, 1.5e-4),
    ...                       box(5e-3, 0, 5.1e-3, 1e-4)], crs=4326)
    >>> changes(b, a)[["change", "before_id", "after_id"]]
         change before_id after_id
    0  modified         a        A
    1   removed         b     None
    2       new      None        C
    """
    rule = ChangeRule(min_overlap, min_iou, tolerance_m, area_change, area_change_m2)
    before, after = _source(before), _source(after)
    big = not _is_path(before) and not _is_path(after)
    big = big and len(before) + len(after) > 8 * partition_features
    if _is_path(before) or _is_path(after) or big:
        parts = list(
            _iter_dataset(before, after, rule, int(partition_features), float(margin_m), workdir)
        )
        out = _finish(pd.concat(parts, ignore_index=True)) if parts else _empty()
    else:
        out = _changes_of(_frame_objects(before), _frame_objects(after), rule)
    if not unchanged:
        out = out[out["change"] != "unchanged"].reset_index(drop=True)
    return out


def changes_to_parquet(
    before: Any,
    after: Any,
    path: str | Path,
    *,
    unchanged: bool = True,
    partition_features: int = 500_000,
    margin_m: float = 250.0,
    workdir: str | Path | None = None,
    **rule: float,
) -> Path:
    """:func:`changes` on the dataset path (any side as for :func:`changes`), written
    partition by partition as a GeoParquet directory ``path`` (``part-00000.parquet``…),
    so that neither the inputs nor the changes are ever held in memory whole.
    ``before_id`` / ``after_id`` are lists of strings there (one id, several, or none).
    Returns ``path``.

    ``rule``: ``min_iou``, ``tolerance_m``, ``area_change``, ``area_change_m2``,
    ``min_overlap`` as for :func:`changes`.
    """
    r = ChangeRule(**rule)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    k = 0
    sides = (_source(before), _source(after))
    for part in _iter_dataset(*sides, r, int(partition_features), float(margin_m), workdir):
        part = _finish(part)
        if not unchanged:
            part = part[part["change"] != "unchanged"]
        if len(part):
            for col in ("before_id", "after_id"):
                part[col] = [_id_list(v) for v in part[col]]
            part.to_parquet(path / f"part-{k:05d}.parquet")
            k += 1
    return path


def _id_list(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _empty() -> gpd.GeoDataFrame:
    e = _Objects(np.zeros(0, np.int64), np.zeros(0, dtype=object), _empty_props())
    return _changes_of(e, e, ChangeRule())


def _empty_props() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in _PROPS}).assign(
        date=pd.Series([], dtype="datetime64[ns]")
    )


def _is_path(x: Any) -> bool:
    return isinstance(x, str | Path)


def _source(obj: Any) -> str | Path | gpd.GeoDataFrame:
    """A side as a GeoParquet path (given, or the dataset a result wrote with
    ``to_parquet``: compared with bounded memory) or a GeoDataFrame."""
    if _is_path(obj):
        return obj
    dataset = getattr(obj, "dataset", None)
    if dataset is not None and hasattr(obj, "features"):
        return Path(dataset)
    return _as_frame(obj)


# -- tables -----------------------------------------------------------------------------
def change_table(
    changes: pd.DataFrame,
    aois: Any = None,
    years: float | pd.Series | dict | None = None,
) -> pd.DataFrame:
    """Changes per input row: counts and areas per class, and rates per km² per year.

    Parameters
    ----------
    changes : DataFrame
        From :func:`changes`.
    aois : GeoDataFrame or MapflowResult, optional
        The input areas, indexed by row label (``result.aois``): gives ``area_km2`` and
        rows without any change.
    years : float, or per-row Series / dict, optional
        The time between the two dates; by default the median ``after_date`` minus the
        median ``before_date`` of each row (of all rows where a row has no dates).

    Returns
    -------
    DataFrame
        Indexed by ``row``: ``count:<class>`` for each of :data:`CHANGES`,
        ``area_m2:new`` (footprint added), ``area_m2:removed`` (footprint lost),
        ``area_m2:modified`` (net change of modified objects), ``area_change_m2`` (net
        change), ``area_km2``, ``years``, and per km² per year ``new_per_km2_year``,
        ``removed_per_km2_year``, ``modified_per_km2_year``,
        ``area_change_m2_per_km2_year`` (NaN where the area or the time is unknown).

    Examples
    --------
    >>> change_table(ch, aois=res.aois, years=2)                     # doctest: +SKIP
    """
    rows = changes["row"]
    cls = changes["change"].astype(str)
    counts = pd.crosstab(rows, cls).reindex(columns=list(CHANGES), fill_value=0)
    table = counts.add_prefix("count:")
    area = {
        "new": changes["area_after_m2"],
        "removed": changes["area_before_m2"],
        "modified": changes["area_change_m2"],
    }
    for name, values in area.items():
        table[f"area_m2:{name}"] = values[cls == name].groupby(rows[cls == name]).sum()
    table["area_change_m2"] = changes["area_change_m2"].groupby(rows).sum()
    frame = getattr(aois, "aois", aois)
    if frame is not None:
        table = table.reindex(frame.index.union(table.index, sort=False))
        km2 = pd.Series(geodesic_area_km2(frame.geometry.to_crs(4326).values), frame.index)
        table["area_km2"] = km2.reindex(table.index)
    else:
        table["area_km2"] = np.nan
    table.index.name = "row"
    count_cols = [c for c in table if c.startswith("count:")]
    table[count_cols] = table[count_cols].fillna(0).astype("int64")
    area_cols = [c for c in table if c.startswith("area_m2:")] + ["area_change_m2"]
    table[area_cols] = table[area_cols].fillna(0.0)
    table["years"] = _years(changes, table.index, years)
    per = table["area_km2"] * table["years"]
    per = per.where(per > 0)
    for name in ("new", "removed", "modified"):
        table[f"{name}_per_km2_year"] = table[f"count:{name}"] / per
    table["area_change_m2_per_km2_year"] = table["area_change_m2"] / per
    return table


def _years(changes: pd.DataFrame, index: pd.Index, years: Any) -> pd.Series:
    if years is not None:
        if isinstance(years, dict | pd.Series):
            return pd.Series(years, dtype=float).reindex(index)
        return pd.Series(float(years), index=index)
    rows = changes["row"]
    before = changes["before_date"].groupby(rows).median()
    after = changes["after_date"].groupby(rows).median()
    overall = changes["after_date"].median() - changes["before_date"].median()
    span = (after - before).reindex(index)
    if pd.notna(overall):
        span = span.fillna(overall)
    return span.dt.total_seconds() / (365.2425 * 86400.0)


# -- the dataset path -------------------------------------------------------------------
_ROOT_DEG = 1.0
_MAX_LEVEL = 16
_BATCH_ROWS = 65_536
_BUFFER_BYTES = 256 << 20
_BBOX = ("_xmin", "_ymin", "_xmax", "_ymax")


@dataclasses.dataclass(frozen=True)
class _Cell:
    """A quadtree cell: level ``level`` of the global grid of ``_ROOT_DEG / 2**level``
    degree cells aligned at 0°."""

    level: int
    ix: int
    iy: int

    @property
    def size(self) -> float:
        return _ROOT_DEG / 2**self.level

    @property
    def box(self) -> tuple[float, float, float, float]:
        s = self.size
        return (self.ix * s, self.iy * s, (self.ix + 1) * s, (self.iy + 1) * s)

    def children(self) -> list[_Cell]:
        return [
            _Cell(self.level + 1, 2 * self.ix + dx, 2 * self.iy + dy)
            for dy in (0, 1)
            for dx in (0, 1)
        ]

    @property
    def key(self) -> str:
        return f"L{self.level}_{self.ix}_{self.iy}"


def _margins(margin_m: float, lat_abs_max: np.ndarray) -> tuple[np.ndarray, float]:
    """The margin in degrees of longitude (at the given |latitude|) and of latitude
    (the equator's, the largest)."""
    kx, _ = _metres_per_degree(np.minimum(lat_abs_max, 89.9))
    _, ky0 = _metres_per_degree(np.zeros(1))
    return margin_m / kx, float(margin_m / ky0[0])


def _window(cell: _Cell, margin_m: float) -> tuple[float, float, float, float]:
    """The cell with its margin (degrees; the longitude margin at the window's highest
    latitude)."""
    x0, y0, x1, y1 = cell.box
    _, my = _margins(margin_m, np.zeros(1))
    mx, _ = _margins(margin_m, np.array([max(abs(y0 - my), abs(y1 + my))]))
    return (x0 - float(mx[0]), y0 - my, x1 + float(mx[0]), y1 + my)


def _assign(bbox: np.ndarray, level: int, margin_m: float, within: _Cell | None):
    """Rows × cells of ``level`` whose windows their envelopes reach (rows repeated):
    (row positions, cells as (ix, iy))."""
    s = _ROOT_DEG / 2**level
    _, my = _margins(margin_m, np.zeros(1))
    lat_hi = np.maximum(np.abs(bbox[:, 1]), np.abs(bbox[:, 3])) + s + my
    mx, _ = _margins(margin_m, lat_hi)
    ix0 = np.floor((bbox[:, 0] - mx) / s).astype(np.int64)
    ix1 = np.floor((bbox[:, 2] + mx) / s).astype(np.int64)
    iy0 = np.floor((bbox[:, 1] - my) / s).astype(np.int64)
    iy1 = np.floor((bbox[:, 3] + my) / s).astype(np.int64)
    if within is not None:  # children of one cell only
        lo_x, lo_y = 2 * within.ix, 2 * within.iy
        ix0, ix1 = np.maximum(ix0, lo_x), np.minimum(ix1, lo_x + 1)
        iy0, iy1 = np.maximum(iy0, lo_y), np.minimum(iy1, lo_y + 1)
    nx, ny = np.maximum(ix1 - ix0 + 1, 0), np.maximum(iy1 - iy0 + 1, 0)
    rows, k = _segments(nx * ny)
    cx = ix0[rows] + k % nx[rows]
    cy = iy0[rows] + k // nx[rows]
    # exact: the cell's window (its own longitude margin) meets the envelope
    y0, y1 = cy * s - my, (cy + 1) * s + my
    cmx, _ = _margins(margin_m, np.maximum(np.abs(y0), np.abs(y1)))
    ok = (
        (cx * s - cmx <= bbox[rows, 2])
        & ((cx + 1) * s + cmx >= bbox[rows, 0])
        & (y0 <= bbox[rows, 3])
        & (y1 >= bbox[rows, 1])
    )
    return rows[ok], cx[ok], cy[ok]


class _Store:
    """Per-cell GeoParquet shards on disk for both sides, written through a buffer."""

    def __init__(self, root: Path, margin_m: float) -> None:
        self.root = root
        self.margin_m = margin_m
        self.pending: dict[tuple[_Cell, int], list[pa.Table]] = {}
        self.files: dict[_Cell, list[tuple[int, Path]]] = {}
        self.count: dict[_Cell, int] = {}
        self.nbytes = 0
        self.serial = 0

    def add(self, table: pa.Table, side: int, level: int, within: _Cell | None) -> None:
        bbox = np.column_stack([table.column(c).to_numpy() for c in _BBOX])
        rows, cx, cy = _assign(bbox, level, self.margin_m, within)
        if not len(rows):
            return
        key = pd.factorize(pd.MultiIndex.from_arrays([cx, cy]))[0]
        order = np.argsort(key, kind="stable")
        cuts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
        for lo, hi in zip(cuts, [*cuts[1:], len(order)], strict=True):
            idx = order[lo:hi]
            cell = _Cell(level, int(cx[idx[0]]), int(cy[idx[0]]))
            part = table.take(pa.array(rows[idx]))
            self.pending.setdefault((cell, side), []).append(part)
            self.count[cell] = self.count.get(cell, 0) + len(idx)
            self.nbytes += part.nbytes
        if self.nbytes > _BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        for (cell, side), parts in self.pending.items():
            folder = self.root / cell.key
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"side{side}-{self.serial:06d}.parquet"
            self.serial += 1
            pq.write_table(pa.concat_tables(parts, promote_options="permissive"), path)
            self.files.setdefault(cell, []).append((side, path))
        self.pending.clear()
        self.nbytes = 0

    def read(self, cell: _Cell, side: int) -> Iterator[pa.Table]:
        for s, path in self.files.get(cell, []):
            if s == side:
                yield pq.read_table(path)

    def drop(self, cell: _Cell) -> None:
        for _, path in self.files.pop(cell, []):
            path.unlink()
        self.count.pop(cell, None)


def _scan(
    path: str | Path | gpd.GeoDataFrame,
) -> Iterator[tuple[int, pd.DataFrame, np.ndarray]]:
    """A GeoParquet file or directory (or a GeoDataFrame) in batches: (first input
    position, properties, geometries in EPSG:4326)."""
    if isinstance(path, gpd.GeoDataFrame):
        for start in range(0, len(path), _BATCH_ROWS):
            part = path.iloc[start : start + _BATCH_ROWS]
            yield start, part, part.geometry.values
        return
    dataset = pads.dataset(str(path), format="parquet", partitioning="hive")
    meta = dataset.schema.metadata or {}
    geo = _geo_metadata(meta)
    column = geo.get("primary_column", "geometry")
    info = geo.get("columns", {}).get(column, {})
    crs = info.get("crs", "OGC:CRS84")
    names = dataset.schema.names
    props = [c for c in ("id", "row", "object_type", "processing_date", "date") if c in names]
    offset = 0
    if info.get("encoding", "WKB").upper() != "WKB":
        # geoarrow-encoded files: geopandas decodes them, one file at a time
        for file in sorted(dataset.files):
            gdf = gpd.read_parquet(file)
            gdf = gdf.to_crs(4326) if gdf.crs is not None and not gdf.crs.equals(4326) else gdf
            yield offset, pd.DataFrame(gdf.drop(columns=gdf.geometry.name)), gdf.geometry.values
            offset += len(gdf)
        return
    for batch in dataset.to_batches(columns=[*props, column], batch_size=_BATCH_ROWS):
        geoms = shapely.from_wkb(batch.column(column).to_numpy(zero_copy_only=False))
        if crs is not None and not _is_wgs84(crs):
            geoms = gpd.GeoSeries(geoms, crs=_crs_of(crs)).to_crs(4326).values
        frame = batch.select(props).to_pandas() if props else pd.DataFrame(index=range(len(batch)))
        yield offset, frame, np.asarray(geoms, dtype=object)
        offset += batch.num_rows


def _geo_metadata(meta: dict) -> dict:
    import json

    raw = meta.get(b"geo")
    return json.loads(raw) if raw else {}


def _crs_of(crs: Any) -> Any:
    from pyproj import CRS

    return CRS.from_json_dict(crs) if isinstance(crs, dict) else CRS.from_user_input(crs)


def _is_wgs84(crs: Any) -> bool:
    if crs in ("OGC:CRS84", "EPSG:4326"):
        return True
    c = _crs_of(crs)
    return c.equals("EPSG:4326", ignore_axis_order=True) or c.equals("OGC:CRS84")


def _to_table(objs: _Objects) -> pa.Table:
    """Normalised objects as a shard table: ``_gid``, properties, WKB, envelope."""
    props = objs.props
    table = pa.table(
        {
            "_gid": pa.array(objs.gid, pa.int64()),
            "id": _arrow_column(props["id"]),
            "row": _arrow_column(props["row"]),
            "object_type": _arrow_column(props["object_type"]),
            "date": pa.array(props["date"].to_numpy(dtype="datetime64[ns]"), pa.timestamp("ns")),
            "geometry": pa.array(shapely.to_wkb(objs.geoms), pa.binary()),
            **{c: pa.array(objs.bounds[:, k]) for k, c in enumerate(_BBOX)},
        }
    )
    return table


def _arrow_column(values: pd.Series) -> pa.Array:
    try:
        return pa.array(values.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _from_tables(tables: Iterable[pa.Table]) -> _Objects:
    tables = list(tables)
    if not tables:
        return _Objects(np.zeros(0, np.int64), np.zeros(0, dtype=object), _empty_props())
    t = pa.concat_tables(tables, promote_options="permissive")
    props = pd.DataFrame(
        {c: t.column(c).to_pandas().astype(object) for c in ("id", "row", "object_type")}
    )
    props["date"] = t.column("date").to_pandas().to_numpy(dtype="datetime64[ns]")
    props = props.where(props.notna(), None).assign(date=props["date"])
    geoms = shapely.from_wkb(t.column("geometry").to_numpy(zero_copy_only=False))
    return _Objects(t.column("_gid").to_numpy().astype(np.int64), geoms, props)


def _iter_dataset(
    before: str | Path | gpd.GeoDataFrame,
    after: str | Path | gpd.GeoDataFrame,
    rule: ChangeRule,
    partition_features: int,
    margin_m: float,
    workdir: str | Path | None,
) -> Iterator[gpd.GeoDataFrame]:
    """The changes of two GeoParquet datasets, one partition at a time (see the module
    docstring): bucket both into 1° cells, split crowded cells in four (recursively),
    match each leaf cell with its margin, then the groups larger than the margin."""
    with tempfile.TemporaryDirectory(prefix="mapflow-changes-", dir=workdir) as tmp:
        store = _Store(Path(tmp), margin_m)
        for side, path in ((0, before), (1, after)):
            for offset, frame, geoms in _scan(path):
                objs = _normalise(frame, geoms, offset + np.arange(len(frame)))
                if len(objs):
                    store.add(_to_table(objs), side, 0, None)
        store.flush()
        leaves: dict[_Cell, tuple[float, float, float, float]] = {}
        hard: list[tuple[_Objects, _Objects]] = []
        todo = sorted(store.files, key=lambda c: (c.iy, c.ix), reverse=True)
        while todo:
            cell = todo.pop()
            window = _window(cell, margin_m)
            if (
                store.count.get(cell, 0) > partition_features
                and cell.level < _MAX_LEVEL
                and (cell.size > 4 * (window[3] - window[1] - cell.size) / 2)
            ):
                for side in (0, 1):
                    for table in store.read(cell, side):
                        store.add(table, side, cell.level + 1, cell)
                store.flush()
                store.drop(cell)
                todo.extend(c for c in reversed(cell.children()) if c in store.files)
                continue
            leaves[cell] = window
            b = _from_tables(store.read(cell, 0))
            a = _from_tables(store.read(cell, 1))
            part, spill = _solve_cell(b, a, rule, cell, window)
            if len(part):
                yield part
            if spill is not None:
                hard.append(spill)
        log.info(
            "changes: %d cells, %d with groups larger than their margin",
            len(leaves),
            len(hard),
        )
        if hard:
            part = _solve_hard(store, leaves, hard, rule)
            if len(part):
                yield part


def _anchors(b: _Objects, a: _Objects, grp: _Groups) -> tuple[np.ndarray, np.ndarray]:
    """Each group's anchor (its first before object, else its after object) as its
    envelope centre: (x, y)."""
    g = len(grp)
    x, y = np.full(g, np.nan), np.full(g, np.nan)
    for objs, label in ((a, grp.label_a), (b, grp.label_b)):  # before last: it wins
        if not len(objs):
            continue
        order = np.lexsort((objs.gid, label))
        first = np.r_[True, label[order][1:] != label[order][:-1]]
        pos = order[first]
        x[label[pos]] = (objs.bounds[pos, 0] + objs.bounds[pos, 2]) / 2
        y[label[pos]] = (objs.bounds[pos, 1] + objs.bounds[pos, 3]) / 2
    return x, y


def _complete(b: _Objects, a: _Objects, grp: _Groups, window, tolerance_m: float) -> np.ndarray:
    """Whether each group was made from everything that could change it: every object it
    holds or looked at lies, with ``tolerance_m`` around it, within ``window`` (so every
    object touching or near it was loaded with it)."""
    x0, y0, x1, y1 = window
    ok = []
    for objs in (b, a):
        bb = shapely.bounds(_envelopes(objs.bounds, tolerance_m)) if len(objs) else objs.bounds
        ok.append((bb[:, 0] >= x0) & (bb[:, 1] >= y0) & (bb[:, 2] <= x1) & (bb[:, 3] <= y1))
    out = np.ones(len(grp), bool)
    out[grp.label_b[~ok[0]]] = False
    out[grp.label_a[~ok[1]]] = False
    out[grp.deps_b[~ok[0][grp.deps_b[:, 1]], 0]] = False
    out[grp.deps_a[~ok[1][grp.deps_a[:, 1]], 0]] = False
    return out


def _solve_cell(b: _Objects, a: _Objects, rule: ChangeRule, cell: _Cell, window):
    """A leaf cell: the changes it owns (anchor inside the cell, group within the
    window), and the objects of owned groups that reach past the window."""
    grp = _match(b, a, rule)
    ax, ay = _anchors(b, a, grp)
    x0, y0, x1, y1 = cell.box
    owned = (ax >= x0) & (ax < x1) & (ay >= y0) & (ay < y1)
    complete = _complete(b, a, grp, window, rule.tolerance_m)
    keep = np.flatnonzero(owned & complete)
    code = _classify(b, a, grp, rule)  # cheap checks for all, shapes only where needed
    part = _frame(b, a, grp, code, keep)
    big = np.flatnonzero(owned & ~complete)
    if not len(big):
        return part, None
    in_b, in_a = _involved(grp, big, len(b), len(a))
    return part, (b.take(np.flatnonzero(in_b)), a.take(np.flatnonzero(in_a)))


def _leaf_of(leaves: dict[_Cell, Any], x: float, y: float) -> _Cell | None:
    for level in range(_MAX_LEVEL + 1):
        s = _ROOT_DEG / 2**level
        cell = _Cell(level, math.floor(x / s), math.floor(y / s))
        if cell in leaves:
            return cell
    return None


def _solve_hard(store: _Store, leaves, hard, rule: ChangeRule) -> gpd.GeoDataFrame:
    """Groups larger than their anchor cell's margin: grow each from its objects to
    every object linked to it (and every object its making looked at), reading the cells
    they reach, then report those their anchor cell could not."""
    work_b = _dedupe(_Objects.concat([h[0] for h in hard]))
    work_a = _dedupe(_Objects.concat([h[1] for h in hard]))
    seeds = (work_b.gid.copy(), work_a.gid.copy())
    done = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    frontier = (work_b, work_a)
    while len(frontier[0]) or len(frontier[1]):
        boxes = np.vstack([frontier[0].bounds, frontier[1].bounds])
        found = _read_around(store, leaves, shapely.bounds(_envelopes(boxes, rule.tolerance_m)))
        done = (np.r_[done[0], frontier[0].gid], np.r_[done[1], frontier[1].gid])
        work_b = _dedupe(_Objects.concat([work_b, found[0]]))
        work_a = _dedupe(_Objects.concat([work_a, found[1]]))
        grp = _match(work_b, work_a, rule)
        groups = _seeded(work_b, work_a, grp, seeds)
        need_b, need_a = _involved(grp, groups, len(work_b), len(work_a))
        need_b &= ~np.isin(work_b.gid, done[0])
        need_a &= ~np.isin(work_a.gid, done[1])
        frontier = (work_b.take(np.flatnonzero(need_b)), work_a.take(np.flatnonzero(need_a)))
    grp = _match(work_b, work_a, rule)
    groups = _seeded(work_b, work_a, grp, seeds)
    ax, ay = _anchors(work_b, work_a, grp)
    report = []
    for g in groups:  # few: the groups larger than a margin
        cell = _leaf_of(leaves, ax[g], ay[g])
        if cell is None or not _complete(work_b, work_a, grp, leaves[cell], rule.tolerance_m)[g]:
            report.append(g)
    code = _classify(work_b, work_a, grp, rule)
    return _frame(work_b, work_a, grp, code, np.asarray(report, dtype=np.int64))


def _involved(grp: _Groups, groups: np.ndarray, nb: int, na: int):
    """Objects (masks per side) that ``groups`` hold or looked at."""
    in_b, in_a = np.isin(grp.label_b, groups), np.isin(grp.label_a, groups)
    in_b[grp.deps_b[np.isin(grp.deps_b[:, 0], groups), 1]] = True
    in_a[grp.deps_a[np.isin(grp.deps_a[:, 0], groups), 1]] = True
    return in_b, in_a


def _seeded(b: _Objects, a: _Objects, grp: _Groups, seeds) -> np.ndarray:
    """Groups holding a seed object."""
    hit_b = grp.label_b[np.isin(b.gid, seeds[0])]
    hit_a = grp.label_a[np.isin(a.gid, seeds[1])]
    return np.unique(np.r_[hit_b, hit_a]).astype(np.int64)


def _dedupe(objs: _Objects) -> _Objects:
    _, first = np.unique(objs.gid, return_index=True)
    return objs.take(np.sort(first))


def _read_around(store: _Store, leaves, boxes: np.ndarray) -> tuple[_Objects, _Objects]:
    """Every stored object whose envelope meets one of ``boxes``, per side."""
    cells = list(leaves)
    cell_boxes = shapely.box(*np.array([c.box for c in cells]).T)
    query = shapely.box(*boxes.T)
    hit = np.unique(shapely.STRtree(cell_boxes).query(query)[1])
    tree = shapely.STRtree(query)
    out = []
    for side in (0, 1):
        found = []
        for k in hit:
            objs = _from_tables(store.read(cells[k], side))
            if len(objs):
                env = shapely.box(*objs.bounds.T)
                near = np.unique(tree.query(env)[0])
                found.append(objs.take(near))
        out.append(_Objects.concat(found) if found else _from_tables([]))
    return out[0], out[1]
