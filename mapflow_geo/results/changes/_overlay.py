"""The overlay kernel: exact intersection areas of many polygon pairs at once.

Green's theorem over edge crossings and vertex containment, vectorised over all pairs in
numpy; GEOS for pairs in degenerate position (shared or collinear edges) and for very
detailed polygons (``DESIGN.md``, *Change detection*, Speed).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import shapely

if TYPE_CHECKING:
    from mapflow_geo.results.changes._objects import Objects

#: Pairs of polygons with more edge pairs than this go to GEOS for their intersection.
_MAX_EDGE_PAIRS = 1024
#: Edge pairs per vectorised step of the intersection kernel (keeps the arrays in cache).
_CHUNK = 131_072
#: Geometries whose edges are made at a time.
_GEOMS = 65_536
#: Relative tolerance of the intersection kernel: crossings this close (in edge
#: parameter) to a vertex, or edges this close to parallel, count as degenerate.
_EPS = 1e-9


@dataclasses.dataclass
class Edges:
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
    def of(cls, geoms: np.ndarray, sel: np.ndarray, is_simple: np.ndarray) -> Edges:
        """The edges of ``geoms[sel]`` (``sel`` ascending; the others have none), made
        ``_GEOMS`` geometries at a time (the temporaries stay small); ``is_simple``:
        which geometries are polygons of one ring."""
        n = len(geoms)
        room = int(shapely.get_num_coordinates(geoms[sel]).sum())  # ≥ the edges
        x0, y0, x1, y1 = (np.empty(room) for _ in range(4))
        count = np.zeros(n, np.int64)
        m = 0
        for k in range(0, len(sel), _GEOMS):
            part = _edges(geoms, sel[k : k + _GEOMS], is_simple)
            if part is None:
                continue
            e = len(part[0])
            for out, col in zip((x0, y0, x1, y1), part[:4], strict=True):
                out[m : m + e] = col
            lo = sel[k]
            count[lo : lo + part[4][-1] - lo + 1] += np.bincount(part[4] - lo)
            m += e
        return cls(x0[:m], y0[:m], x1[:m], y1[:m], np.cumsum(count) - count, count)


def _edges(geoms: np.ndarray, sel: np.ndarray, is_simple: np.ndarray):
    """The edges of ``geoms[sel]`` and their owners, by owner."""
    simple, other = sel[is_simple[sel]], sel[~is_simple[sel]]
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
    if len(pieces) < 2:
        return pieces[0] if pieces else None
    cols = [np.concatenate(c) for c in zip(*pieces, strict=True)]
    order = np.argsort(cols[4], kind="stable")
    return tuple(c[order] for c in cols)


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


def segments(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts ``n``: the owner of every element and its position in its owner."""
    owner = np.repeat(np.arange(len(n)), n)
    return owner, np.arange(len(owner)) - (np.cumsum(n) - n)[owner]


def _kernel(eb: Edges, ea: Edges, i: np.ndarray, j: np.ndarray, ox, oy) -> np.ndarray:
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
    ep, el = segments(n)
    fp, fl = segments(m)
    eidx, fidx = eb.start[i][ep] + el, ea.start[j][fp] + fl
    ax0, ay0 = eb.x0.take(eidx) - ox[ep], eb.y0.take(eidx) - oy[ep]
    ax1, ay1 = eb.x1.take(eidx) - ox[ep], eb.y1.take(eidx) - oy[ep]
    bx0, by0 = ea.x0.take(fidx) - ox[fp], ea.y0.take(fidx) - oy[fp]
    bx1, by1 = ea.x1.take(fidx) - ox[fp], ea.y1.take(fidx) - oy[fp]
    rep = m[ep]  # every edge of P meets every edge of Q of its pair
    te, tl = segments(rep)
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


def intersection_areas(b: Objects, a: Objects, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Exact intersection areas (degrees²) of pairs of before ``i`` and after ``j``
    objects: the vectorised kernel, GEOS where it declines."""
    out = np.full(len(i), np.nan)
    if not len(i):
        return out
    eb, ea = b.edges(_used(i, len(b))), a.edges(_used(j, len(a)))
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


def _used(idx: np.ndarray, n: int) -> np.ndarray:
    """The distinct positions in ``idx``, sorted."""
    return np.flatnonzero(np.bincount(idx, minlength=n))
