"""Split AOIs into tiles and pack the tiles into processings under Mapflow's limits.

Pure geometry, no HTTP: the limits and the price come in as numbers. The service's rules
are in DESIGN.md, *Planning*; how :func:`plan` cuts and packs, and what it guarantees, in
``docs/guide/planning.md``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from mapflow_geo._geodesy import (
    _authalic_f,
    box_area_km2,
    geodesic_area_km2,
    meridian_radius_m,
    rect_area_km2,
)
from mapflow_geo.aoi import polygon_parts, prepare_aois
from mapflow_geo.exceptions import ConfigError, PlanError

logger = logging.getLogger(__name__)

#: Mapflow's documented default for ``maxAoisPerProcessing``.
DEFAULT_MAX_AOIS = 10
#: Default fraction of the area limit kept free (Mapflow's and our area computations may
#: differ slightly: edge interpolation, rounding).
DEFAULT_SAFETY_MARGIN = 0.005
#: Two polygons closer than this (degrees, ~0.1 mm) count as touching.
TOUCH_TOLERANCE_DEG = 1e-9
#: Pieces under this fraction of the limit are merged into a neighbour when possible.
DEFAULT_SLIVER_FRACTION = 0.01
#: Polygons up to this many limits also try equal-area strips instead of the grid.
_STRIP_MAX_LIMITS = 12
_SLABS = 64

PLAN_COLUMNS = [
    "row",
    "tile_id",
    "processing",
    "area_km2",
    "bbox_area_km2",
    "processing_area_km2",
    "processing_aois",
    "planned_credits",
    "geometry",
]


@dataclass
class _Piece:
    row: int  # position of the row in the prepared frame
    key: tuple  # deterministic ordering key
    geom: shapely.Polygon
    area: float  # geodesic km²
    bounds: tuple[float, float, float, float]
    bbox: float = -1.0  # geodesic km² of the lat/lon bbox; -1 until first asked


def _bbox_area(p: _Piece) -> float:
    """The piece's bbox area, computed once (a full grid cell knows it from its band)."""
    if p.bbox < 0:
        p.bbox = box_area_km2(*p.bounds)
    return p.bbox


# ------------------------------------------------------------------------ cutting
def _cell_width_deg(lat0: float, lat1: float, cap: float) -> float:
    """Longitude width of a cell between two parallels whose geodesic area is ≤ cap."""
    per_deg = float(rect_area_km2(0.0, lat0, 1.0, lat1))
    dlon = cap / per_deg
    for _ in range(4):  # calibrate against Geod (4-corner geodesic polygon)
        got = box_area_km2(0.0, lat0, dlon, lat1)
        if got <= 0:
            break
        dlon *= cap / got
    target = cap * (1.0 - 1e-9)
    while box_area_km2(0.0, lat0, dlon, lat1) > target:
        dlon *= 1.0 - 1e-7
    return dlon


def _fits(geom: shapely.Polygon, cap: float) -> tuple[bool, float]:
    area = float(geodesic_area_km2([geom])[0])
    if area > cap:
        return False, area
    return box_area_km2(*geom.bounds) <= cap, area


def _cut_polygon(poly: shapely.Polygon, row: int, key: tuple, cap: float) -> list[_Piece]:
    """Cut one polygon into pieces that each meet the area and bbox rules."""
    minx, miny, maxx, maxy = poly.bounds
    if maxx - minx < 90.0:
        ok, area = _fits(poly, cap)
        if ok:
            return [_Piece(row, key, poly, area, poly.bounds)]
    side_m = math.sqrt(cap * 1e6)
    pieces: list[_Piece] = []
    shapely.prepare(poly)
    lat0, band = miny, 0
    while lat0 < maxy:
        dphi = math.degrees(side_m / meridian_radius_m(lat0))
        dphi = math.degrees(side_m / meridian_radius_m(lat0 + dphi / 2))
        lat1 = lat0 + dphi
        if lat1 >= maxy or maxy - lat1 < 1e-12:
            lat1 = maxy
            # a last band thinner than a cell still uses cells of the full band height
        strip = shapely.intersection(poly, shapely.box(minx - 1.0, lat0, maxx + 1.0, lat1))
        if not strip.is_empty:
            cell_lat1 = lat0 + dphi
            dlon = _cell_width_deg(lat0, cell_lat1, cap)
            cell_area = box_area_km2(0.0, lat0, dlon, cell_lat1)
            comps = polygon_parts(strip)
            for c, comp in enumerate(comps):
                cx0, _, cx1, _ = comp.bounds
                ncol = max(1, math.ceil((cx1 - cx0) / dlon - 1e-12))
                xs = cx0 + dlon * np.arange(ncol + 1)
                cells = shapely.box(xs[:-1], lat0, xs[1:], cell_lat1)
                # A cell strictly inside the polygon (so inside the band) and in this
                # part is a whole piece; only the others are clipped. (Asked of the
                # polygon, not of the part, whose band edges every cell touches.)
                inside = shapely.contains_properly(poly, cells)
                if len(comps) > 1 and inside.any():
                    mid = (xs[:-1][inside] + xs[1:][inside]) / 2
                    inside[inside] = shapely.contains_xy(comp, mid, (lat0 + cell_lat1) / 2)
                edge = np.flatnonzero(~inside)
                clipped = dict(
                    zip(edge.tolist(), shapely.intersection(cells[edge], comp), strict=True)
                )
                full_planar = (xs[1:] - xs[:-1]) * (cell_lat1 - lat0)
                cell_bounds = shapely.bounds(cells).tolist()
                for j in range(len(cells)):
                    k = (*key, band, c, j)
                    g = clipped.get(j)
                    if g is None or (
                        g.geom_type == "Polygon" and g.area >= full_planar[j] * (1.0 - 1e-12)
                    ):
                        pieces.append(
                            _Piece(row, k, cells[j], cell_area, tuple(cell_bounds[j]), cell_area)
                        )
                        continue
                    if g.is_empty:
                        continue
                    for s, p in enumerate(polygon_parts(g)):
                        pieces.append(_Piece(row, (*k, s), p, -1.0, p.bounds))
        lat0, band = lat1, band + 1
    todo = [p for p in pieces if p.area < 0]
    if todo:
        areas = geodesic_area_km2([p.geom for p in todo])
        for p, a in zip(todo, areas, strict=True):
            p.area = float(a)
    return pieces


def _cumulative_area(poly: shapely.Polygon, axis: int):
    """Cumulative area profile of ``poly`` along longitude (axis 0) or latitude (1).

    Areas are measured in a cylindrical equal-area plane (longitude, authalic function of
    latitude), where meridians and parallels stay straight lines, over ``_SLABS`` slabs
    from one vectorised intersection. Other straight edges bend in that plane, so a
    polygon valid in degrees may not be there (a hole touching a slanted edge of its
    shell pokes through it): it is repaired there first, which moves no cut by more than
    the bend.
    """
    minx, miny, maxx, maxy = poly.bounds
    lo, hi = (minx, maxx) if axis == 0 else (miny, maxy)
    if hi <= lo:
        return None
    cea = shapely.transform(poly, lambda c: np.c_[np.radians(c[:, 0]), _authalic_f(c[:, 1])])
    if not cea.is_valid:
        cea = shapely.make_valid(cea, method="structure", keep_collapsed=False)
    edges = np.linspace(lo, hi, _SLABS + 1)
    if axis == 0:
        e = np.radians(edges)
        slabs = shapely.box(e[:-1], -10.0, e[1:], 10.0)
    else:
        e = _authalic_f(edges)
        slabs = shapely.box(-10.0, e[:-1], 10.0, e[1:])
    cum = np.r_[0.0, np.cumsum(shapely.area(shapely.intersection(slabs, cea)))]
    return (edges, cum) if cum[-1] > 0 else None


def _strip_pieces(poly, row, key, cap, k, axis, profile) -> list[_Piece] | None:
    """``poly`` cut into ``k`` equal-area strips, or None if a piece breaks a rule."""
    edges, cum = profile
    cuts = np.interp(cum[-1] * np.arange(1, k) / k, cum, edges)
    minx, miny, maxx, maxy = poly.bounds
    pos = np.r_[minx if axis == 0 else miny, cuts, maxx if axis == 0 else maxy]
    if axis == 0:
        boxes = shapely.box(pos[:-1], miny - 1.0, pos[1:], maxy + 1.0)
    else:
        boxes = shapely.box(minx - 1.0, pos[:-1], maxx + 1.0, pos[1:])
    pieces: list[_Piece] = []
    for j, g in enumerate(shapely.intersection(boxes, poly)):
        for s, p in enumerate(polygon_parts(g)):
            if box_area_km2(*p.bounds) > cap:
                return None
            pieces.append(_Piece(row, (*key, "s", axis, j, s), p, -1.0, p.bounds))
    if not pieces:
        return None
    areas = geodesic_area_km2([p.geom for p in pieces])
    for p, a in zip(pieces, areas, strict=True):
        p.area = float(a)
        if p.area > cap:
            return None
    return pieces


def _strip_alternative(poly, grid, row, key, cap, max_aois) -> list[_Piece] | None:
    """Equal-area strips for a polygon of a few limits, when on its own they need fewer
    processings than its grid pieces (a 1.2-limit field: 2 strips rather than a cell and
    touching leftovers); None otherwise."""
    if len(grid) <= 1:
        return None
    total = sum(p.area for p in grid)
    minx, _, maxx, _ = poly.bounds
    if total > _STRIP_MAX_LIMITS * cap or maxx - minx >= 90.0:
        return None
    best, best_rank = None, (len(_pack(grid, cap, max_aois)), len(grid))
    k0 = max(2, math.ceil(total / cap))
    for axis in (0, 1):
        if k0 > best_rank[0]:
            break
        profile = _cumulative_area(poly, axis)
        if profile is None:
            continue
        for k in range(k0, k0 + 3):
            if k > best_rank[0]:
                break
            strips = _strip_pieces(poly, row, key, cap, k, axis, profile)
            if strips is None:
                continue
            rank = (len(_pack(strips, cap, max_aois)), len(strips))
            if rank < best_rank:
                best, best_rank = strips, rank
            break
    return best


def _ensure_fit(pieces: list[_Piece], cap: float) -> list[_Piece]:
    """Bisect any piece that breaks the area or bbox rule (a safety net)."""
    out: list[_Piece] = []
    stack = list(reversed(pieces))
    while stack:
        p = stack.pop()
        if p.area <= cap and _bbox_area(p) <= cap:
            out.append(p)
            continue
        minx, miny, maxx, maxy = p.bounds
        midlat = (miny + maxy) / 2
        w_km = (maxx - minx) * math.cos(math.radians(midlat))
        h_km = maxy - miny
        if w_km >= h_km:
            mid = (minx + maxx) / 2
            halves = [(minx, miny, mid, maxy), (mid, miny, maxx, maxy)]
        else:
            mid = (miny + maxy) / 2
            halves = [(minx, miny, maxx, mid), (minx, mid, maxx, maxy)]
        new = []
        for h, rect in enumerate(halves):
            for s, g in enumerate(polygon_parts(shapely.intersection(p.geom, shapely.box(*rect)))):
                new.append(_Piece(p.row, (*p.key, "b", h, s), g, -1.0, g.bounds))
        if new:
            areas = geodesic_area_km2([q.geom for q in new])
            for q, a in zip(new, areas, strict=True):
                q.area = float(a)
        stack.extend(reversed(new))
    return out


def _merge_slivers(pieces: list[_Piece], cap: float, fraction: float) -> list[_Piece]:
    """Merge pieces smaller than ``fraction × cap`` into a touching piece of the same row.

    The neighbour sharing the longest border is chosen (ties: smallest key) among those
    whose union with the sliver is one polygon within the area and bbox rules. Slivers
    that fit nowhere stay as they are.
    """
    small = [i for i, p in enumerate(pieces) if p.area < fraction * cap]
    if not small:
        return pieces
    alive = [True] * len(pieces)
    geoms = np.array([p.geom for p in pieces], dtype=object)
    tree = shapely.STRtree(geoms)
    redirect = list(range(len(pieces)))  # piece index → index of the piece holding it

    def find(i: int) -> int:
        while redirect[i] != i:
            redirect[i] = redirect[redirect[i]]
            i = redirect[i]
        return i

    for i in sorted(small, key=lambda i: (pieces[i].area, pieces[i].key)):
        if not alive[i]:
            continue
        p = pieces[i]
        near = tree.query(p.geom, predicate="dwithin", distance=TOUCH_TOLERANCE_DEG)
        cands = sorted({find(int(j)) for j in near} - {i})
        best = None
        for j in cands:
            q = pieces[j]
            if q.row != p.row or not alive[j] or q.area + p.area > cap:
                continue
            b = (
                min(p.bounds[0], q.bounds[0]),
                min(p.bounds[1], q.bounds[1]),
                max(p.bounds[2], q.bounds[2]),
                max(p.bounds[3], q.bounds[3]),
            )
            if box_area_km2(*b) > cap:
                continue
            shared = shapely.intersection(p.geom.boundary, q.geom.boundary).length
            if shared <= 0:
                continue
            rank = (-shared, q.key)
            if best is None or rank < best[0]:
                best = (rank, j)
        if best is None:
            continue
        j = best[1]
        q = pieces[j]
        union = shapely.union_all([q.geom, p.geom])
        if union.geom_type != "Polygon":
            continue
        area = float(geodesic_area_km2([union])[0])
        ubounds = union.bounds
        ubbox = box_area_km2(*ubounds)
        if area > cap or ubbox > cap:
            continue
        pieces[j] = _Piece(q.row, min(q.key, p.key), union, area, ubounds, ubbox)
        alive[i] = False
        redirect[i] = j
    return [p for p, a in zip(pieces, alive, strict=True) if a]


# ------------------------------------------------------------------------ packing
class _Bin:
    __slots__ = ("tiles", "used")

    def __init__(self) -> None:
        self.tiles: list[_Piece] = []
        self.used = 0.0

    @property
    def count(self) -> int:
        return len(self.tiles)


def _touches(a: _Piece, b: _Piece) -> bool:
    t = TOUCH_TOLERANCE_DEG
    ax0, ay0, ax1, ay1 = a.bounds
    bx0, by0, bx1, by1 = b.bounds
    if ax0 > bx1 + t or bx0 > ax1 + t or ay0 > by1 + t or by0 > ay1 + t:
        return False
    return bool(shapely.dwithin(a.geom, b.geom, t))


def _try_place(b: _Bin, p: _Piece, cap: float, max_aois: int) -> bool:
    """Place ``p`` in bin ``b`` (separately or merged into touching tiles) if allowed."""
    if b.used + p.area > cap * (1 + 1e-12) + 1e-12:
        return False
    conflicts = [i for i, t in enumerate(b.tiles) if _touches(t, p)]
    if not conflicts:
        if b.count >= max_aois:
            return False
        b.tiles.append(p)
        b.used += p.area
        return True
    group = [b.tiles[i] for i in conflicts]
    if any(t.row != p.row for t in group):
        return False
    xs0, ys0, xs1, ys1 = zip(*[t.bounds for t in group], p.bounds, strict=True)
    bounds = (min(xs0), min(ys0), max(xs1), max(ys1))
    bbox = box_area_km2(*bounds)
    if bbox > cap:
        return False
    union = shapely.union_all([t.geom for t in group] + [p.geom])
    if union.geom_type != "Polygon":
        return False
    area = float(geodesic_area_km2([union])[0])
    used = b.used - sum(t.area for t in group) + area
    if area > cap or used > cap:
        return False
    key = min([t.key for t in group] + [p.key])
    ubounds = union.bounds
    merged = _Piece(p.row, key, union, area, ubounds, bbox if ubounds == bounds else -1.0)
    keep = [t for i, t in enumerate(b.tiles) if i not in set(conflicts)]
    b.tiles = keep + [merged]
    b.used = used
    return True


def _pack(pieces: list[_Piece], cap: float, max_aois: int) -> list[_Bin]:
    """First-fit decreasing by area, honouring area, polygon count and non-touching."""
    order = sorted(range(len(pieces)), key=lambda i: (-pieces[i].area, pieces[i].key))
    bins: list[_Bin] = []
    free = np.zeros(max(16, len(pieces)), dtype=float)  # remaining capacity per bin
    # an upper bound of free[: len(bins)] (free space only shrinks, new bins raise it):
    # a full cell, which fits no open bin, opens its own without scanning them all
    most_free = -math.inf
    for i in order:
        p = pieces[i]
        placed = False
        if bins and most_free >= p.area - 1e-12:
            open_ = free[: len(bins)]
            cand = np.flatnonzero(open_ >= p.area - 1e-12)
            if not len(cand):
                most_free = float(open_.max())
            for bi in cand.tolist():
                if _try_place(bins[bi], p, cap, max_aois):
                    free[bi] = cap - bins[bi].used
                    placed = True
                    break
        if not placed:
            b = _Bin()
            b.tiles.append(p)
            b.used = p.area
            free[len(bins)] = cap - b.used
            most_free = max(most_free, free[len(bins)])
            bins.append(b)
    return bins


# ------------------------------------------------------------------------ public
def _resolve_limits(area_limit_km2, max_aois, price_per_km2):
    if area_limit_km2 is None:
        raise ConfigError(
            "no area limit to plan against: pass area_limit_km2= (and max_aois=), "
            "or plan through mapflow_geo.plan / gdf.mapflow.plan with client= to read "
            "the account's limits"
        )
    if max_aois is None:
        max_aois = DEFAULT_MAX_AOIS
    try:
        area_limit_km2 = float(area_limit_km2)
        max_aois = int(max_aois)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad limits: {exc}") from None
    if not (math.isfinite(area_limit_km2) and area_limit_km2 > 0):
        raise ConfigError(f"area_limit_km2 must be a positive number, not {area_limit_km2!r}")
    if max_aois < 1:
        raise ConfigError(f"max_aois must be at least 1, not {max_aois!r}")
    if price_per_km2 is not None:
        price_per_km2 = float(price_per_km2)
        if not (math.isfinite(price_per_km2) and price_per_km2 >= 0):
            raise ConfigError(f"price_per_km2 must be ≥ 0, not {price_per_km2!r}")
    return area_limit_km2, max_aois, price_per_km2


def credits_for(area_km2: float, price_per_km2: float) -> int:
    """Credits Mapflow charges for one processing: ``⌈max(area, 1) × price⌉``.

    Examples
    --------
    >>> credits_for(0.2, 13), credits_for(24.9, 1)
    (13, 25)
    """
    raw = max(float(area_km2), 1.0) * float(price_per_km2)
    return int(math.ceil(raw - 1e-9 * max(1.0, raw)))


def _tile_ids(labels: list, geoms: list) -> list[str]:
    """Stable id of each tile: a hash of its row label and its normalised geometry
    (coordinates rounded to 1e-10°)."""
    if not geoms:
        return []
    rounded = shapely.transform(np.asarray(geoms, dtype=object), lambda c: np.round(c, 10))
    wkbs = shapely.to_wkb(shapely.normalize(rounded), output_dimension=2)
    out = []
    for label, wkb in zip(labels, wkbs, strict=True):
        h = hashlib.blake2b(repr(label).encode(), digest_size=8)
        h.update(wkb)
        out.append(h.hexdigest())
    return out


def plan(
    gdf: Any,
    *,
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    price_per_km2: float | None = None,
    safety_margin: float = DEFAULT_SAFETY_MARGIN,
    input_errors: Literal["raise", "skip"] = "raise",
    sliver_fraction: float = DEFAULT_SLIVER_FRACTION,
    prepared: bool = False,
) -> gpd.GeoDataFrame:
    """Plan tiles and processings that Mapflow will accept, few and nearly full.

    Parameters
    ----------
    gdf : GeoDataFrame or anything :func:`mapflow_geo.aoi.prepare_aois` accepts
        The areas to process; rows are prepared first (reprojected, repaired, split at
        the antimeridian, overlaps trimmed: first row wins).
    area_limit_km2 : float
        The account's ``aoiAreaLimit`` in km² (:func:`mapflow_geo.plan` reads it from
        a client: this layer makes no HTTP request).
    max_aois : int, optional
        ``maxAoisPerProcessing``; the service default, 10, when not given.
    price_per_km2 : float, optional
        Credits per km²; when known, ``planned_credits`` is filled in.
    safety_margin : float
        Fraction of the limit kept free (default 0.5 %): every tile's area and bbox area
        and every processing's area stay ≤ ``area_limit_km2 × (1 − safety_margin)``.
    input_errors : {"raise", "skip"}
        Passed to :func:`~mapflow_geo.aoi.prepare_aois` for unusable rows.
    sliver_fraction : float
        Pieces smaller than this fraction of the limit are merged into a touching piece
        of the same row when the union still meets the rules (default 1 %; 0 disables).
    prepared : bool
        ``gdf`` is what :func:`~mapflow_geo.aoi.prepare_aois` returned: plan it without
        preparing it again (``mapflow_geo.run`` prepares once, then plans).

    Returns
    -------
    GeoDataFrame
        One row per tile (always a Polygon), EPSG:4326, ordered by ``processing``, with
        ``row`` (input index label), ``tile_id`` (stable hash of the row label and the
        tile geometry), ``processing`` (0, 1, … tiles sharing one processing),
        ``area_km2`` (geodesic, WGS84), ``bbox_area_km2`` (geodesic area of the tile's
        lat/lon bbox), ``processing_area_km2``, ``processing_aois`` (polygons in the
        processing), ``planned_credits`` (credits of the tile's processing, ``<NA>``
        without a price). ``attrs["summary"]`` holds :func:`summarize`'s answer.

    Raises
    ------
    ConfigError
        No area limit, or nonsensical limits.
    AOIError
        An input row cannot be used (``input_errors="raise"``).

    Notes
    -----
    Guarantees, for every input: each tile's area and bbox area, and each processing's
    total area, are ≤ ``area_limit_km2 × (1 − safety_margin)``; each processing holds ≤
    ``max_aois`` polygons, pairwise not touching (so their union is a MultiPolygon with
    as many parts); the tiles of one row do not overlap and their union is the prepared
    row; the output is deterministic.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(30, 50, 30.3, 50.2)], crs=4326)
    >>> tiles = plan(gdf, area_limit_km2=25, max_aois=10, price_per_km2=1)
    >>> bool((tiles["area_km2"] <= 25 * 0.995).all())
    True
    >>> tiles.attrs["summary"]["processings"] >= 19
    True
    """
    area_limit_km2, max_aois, price_per_km2 = _resolve_limits(
        area_limit_km2, max_aois, price_per_km2
    )
    if not (0.0 <= float(safety_margin) < 1.0):
        raise ConfigError(f"safety_margin must be in [0, 1), not {safety_margin!r}")
    cap = area_limit_km2 * (1.0 - float(safety_margin))

    aois = gdf if prepared else prepare_aois(gdf, input_errors=input_errors)
    grid, strips = _cut_rows(aois, cap, max_aois)
    bins = _pack_best(grid, strips, cap, max_aois, float(sliver_fraction), price_per_km2)
    out = _tiles_frame(bins, aois["row"].tolist(), cap, price_per_km2)
    out.attrs["summary"] = summarize(
        out, area_limit_km2=area_limit_km2, price_per_km2=price_per_km2, max_aois=max_aois
    )
    out.attrs["summary"]["safety_margin"] = float(safety_margin)
    logger.info(
        "planned %d tile(s) in %d processing(s) for %d row(s)", len(out), len(bins), len(aois)
    )
    return out


def _cut_rows(
    aois: gpd.GeoDataFrame, cap: float, max_aois: int
) -> tuple[list[list[_Piece]], dict[int, list[_Piece]]]:
    """Every polygon of the prepared rows cut on its grid; and, by the grid cut's
    position, the strip cut where one is worth trying."""
    grid: list[list[_Piece]] = []
    strips: dict[int, list[_Piece]] = {}
    for r, geom in enumerate(aois.geometry.values):
        for k, poly in enumerate(polygon_parts(geom)):
            cut = _cut_polygon(poly, r, (r, k), cap)
            alt = _strip_alternative(poly, cut, r, (r, k), cap, max_aois)
            if alt is not None:
                strips[len(grid)] = alt
            grid.append(cut)
    return grid, strips


def _pack_best(
    grid: list[list[_Piece]],
    strips: dict[int, list[_Piece]],
    cap: float,
    max_aois: int,
    sliver_fraction: float,
    price_per_km2: float | None,
) -> list[_Bin]:
    """The processings of the better packing, grid cuts or strip cuts, in a stable order.

    Grid pieces pack well with other rows' pieces, strips win for a row on its own: both
    are packed and the one with fewer processings, then credits, then polygons is kept
    (ties: the grid)."""

    def finish(cuts: list[list[_Piece]]) -> list[_Bin]:
        pieces = _ensure_fit([p for cut in cuts for p in cut], cap)
        if sliver_fraction > 0:
            pieces = _merge_slivers(pieces, cap, sliver_fraction)
        return _pack(pieces, cap, max_aois)

    def rank(bins: list[_Bin]) -> tuple:
        credits = sum(credits_for(b.used, price_per_km2) for b in bins) if price_per_km2 else 0
        return (len(bins), credits, sum(b.count for b in bins))

    bins = finish(grid)
    if strips:
        other = finish([strips.get(i, cut) for i, cut in enumerate(grid)])
        if rank(other) < rank(bins):
            bins = other
    for b in bins:
        b.tiles.sort(key=lambda t: t.key)
    bins.sort(key=lambda b: b.tiles[0].key)
    return bins


def _tiles_frame(
    bins: list[_Bin], labels: list, cap: float, price_per_km2: float | None
) -> gpd.GeoDataFrame:
    """One row per tile of the packed processings (the columns of :func:`plan`)."""
    tiles = [(n, b, t) for n, b in enumerate(bins) for t in b.tiles]
    rows = [labels[t.row] for _, _, t in tiles]
    geoms = [t.geom for _, _, t in tiles]
    areas = np.asarray([t.area for _, _, t in tiles], dtype=float)
    bbox = np.asarray([_bbox_area(t) for _, _, t in tiles], dtype=float)
    p_area = [b.used for _, b, _ in tiles]
    if len(geoms) and (areas.max() > cap * (1 + 1e-12) or bbox.max() > cap * (1 + 1e-12)):
        raise PlanError("internal error: a tile breaks the limits")  # pragma: no cover
    credits = pd.array([pd.NA] * len(geoms), dtype="Int64")
    if price_per_km2 is not None:
        credits = pd.array([credits_for(a, price_per_km2) for a in p_area], dtype="Int64")
    return gpd.GeoDataFrame(
        {
            "row": pd.Series(rows, dtype=object),
            "tile_id": _tile_ids(rows, geoms),
            "processing": np.asarray([n for n, _, _ in tiles], dtype=np.int64),
            "area_km2": areas,
            "bbox_area_km2": bbox,
            "processing_area_km2": np.asarray(p_area, dtype=float),
            "processing_aois": np.asarray([b.count for _, b, _ in tiles], dtype=np.int64),
            "planned_credits": credits,
        },
        geometry=gpd.GeoSeries(geoms, crs=4326),
        crs=4326,
    )


def summarize(
    plan: gpd.GeoDataFrame,
    *,
    area_limit_km2: float | None = None,
    price_per_km2: float | None = None,
    max_aois: int | None = None,
) -> dict[str, Any]:
    """Counts, bounds and credits of a plan.

    Parameters
    ----------
    plan : GeoDataFrame
        The frame :func:`plan` returned.
    area_limit_km2, price_per_km2, max_aois : optional
        Default to the values the plan was made with (``plan.attrs["summary"]``).

    Returns
    -------
    dict
        ``processings``, ``tiles``, ``rows``, ``total_area_km2``, ``area_limit_km2``,
        ``processings_bound`` (Σ over rows of ⌈row area ÷ limit⌉),
        ``processings_lower_bound`` (⌈total area ÷ limit⌉), ``processings_ratio``
        (processings ÷ processings_bound), ``mean_fill`` and, when a price is known,
        ``planned_credits`` (Σ over processings of ⌈max(area, 1) × price⌉),
        ``credits_bound`` (total area × price) and ``credits_ratio``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(30, 50, 30.1, 50.1)], crs=4326)
    >>> s = summarize(plan(gdf, area_limit_km2=25), price_per_km2=13)
    >>> s["processings"], s["processings_bound"]
    (4, 4)
    """
    prev = plan.attrs.get("summary", {}) if hasattr(plan, "attrs") else {}
    if area_limit_km2 is None:
        area_limit_km2 = prev.get("area_limit_km2")
    if price_per_km2 is None:
        price_per_km2 = prev.get("price_per_km2")
    if max_aois is None:
        max_aois = prev.get("max_aois")
    n_proc = int(plan["processing"].nunique()) if len(plan) else 0
    total = float(plan["area_km2"].sum()) if len(plan) else 0.0
    s: dict[str, Any] = {
        "processings": n_proc,
        "tiles": int(len(plan)),
        "rows": int(plan["row"].nunique()) if len(plan) else 0,
        "total_area_km2": total,
        "area_limit_km2": area_limit_km2,
        "max_aois": max_aois,
        "price_per_km2": price_per_km2,
    }
    if area_limit_km2:
        per_row = plan.groupby("row", sort=False)["area_km2"].sum() if len(plan) else []
        bound = int(sum(math.ceil(a / area_limit_km2 - 1e-12) for a in per_row))
        s["processings_bound"] = bound
        s["processings_lower_bound"] = int(math.ceil(total / area_limit_km2 - 1e-12))
        s["processings_ratio"] = n_proc / bound if bound else float("nan")
        s["mean_fill"] = total / (n_proc * area_limit_km2) if n_proc else float("nan")
    if price_per_km2 is not None:
        per_proc = plan.groupby("processing")["area_km2"].sum() if len(plan) else []
        planned = int(sum(credits_for(a, price_per_km2) for a in per_proc))
        s["planned_credits"] = planned
        s["credits_bound"] = total * float(price_per_km2)
        s["credits_ratio"] = planned / s["credits_bound"] if s["credits_bound"] else float("nan")
    return s


__all__ = ["DEFAULT_MAX_AOIS", "DEFAULT_SAFETY_MARGIN", "credits_for", "plan", "summarize"]
