"""Buildings of the simulator's world: districts, blocks, attached rows, large footprints.

Districts are cells of a row-scaled grid 0.01° high (≈ 1.1 km, square on the ground);
each is urban, suburban, industrial or rural (a per-district draw that, half of the time,
copies the draw of its ≈ 5.5 km "city" cell, so land use comes in clusters). A district is
split into 8 × 8 blocks (≈ 139 m); streets run along block edges, and a block's buildings
stay inside the block minus a street margin, so buildings of different blocks never touch.
Inside a block everything lives in a local metric frame rotated by the district's angle
(±12°); all walls are axis-aligned in that frame.

Block layouts:

* ``perimeter`` (urban, attached): four corner squares and four strips of houses around a
  courtyard; each house shares its side walls with its neighbours (identical coordinates),
  corner squares share a wall with both strips; sometimes a small courtyard outbuilding.
* ``terraced`` (urban or suburban, attached): parallel rows of terraced houses (a row may
  be split by a passage); neighbours share their party wall exactly.
* ``apartment`` (urban, free-standing): a lot grid with one building per lot.
* ``house`` (suburban): detached houses on two rows of lots, some with a garden shed
  (sheds are often under 20 m² and then dropped by the rule).
* ``farm`` (rural): a house, maybe a barn and sheds on a small lot grid (≈ 40 % of the
  rural buildings); the rest of the rural buildings are scattered, one per quarter block
  at most, of all sizes (≈ 6 – 900 m²).
* ``shed`` (industrial): medium warehouses, one per lot.
* ``industrial`` (district level): each half of an industrial district may hold one large
  footprint covering 2–4 × 2–8 blocks (≈ 250 m – 1.1 km long): bigger than a 1 km tile,
  across tile seams; the blocks it covers hold nothing else.

Every building's truth id is ``truth_ids(1, block i, block j, k)`` (``k`` its index in
the block, fixed before any filtering) or ``truth_ids(2, district i, district j, half)``.
"""

from __future__ import annotations

import numpy as np
import shapely

from . import world_time as wt
from .geo import meters_per_degree
from .world_core import (
    WorldOptions,
    cell_key,
    draw,
    draw_bits,
    fit_rotated,
    rect_rings,
    row_cells,
    row_dlon,
    to_lonlat_cs,
    truth_ids,
)

DISTRICT_DEG = 0.01
BLOCKS = 8  # blocks per district side
BLOCK_DEG = DISTRICT_DEG / BLOCKS
CITY_DEG = 0.05
MAX_ANGLE = np.radians(12.0)

# layer salts
_DISTRICT, _CITY, _BLOCK = 101, 103, 107

RURAL, SUBURBAN, URBAN, INDUSTRIAL = 0, 1, 2, 3
DISTRICT_KINDS = ("rural", "suburban", "urban", "industrial")
STREET_HALF_M = np.array([6.0, 7.0, 9.0, 10.0])  # per district kind

BUILDING_TYPES = ("perimeter", "terraced", "apartment", "house", "shed", "farm", "industrial")
_PERIM, _TERR, _APT, _HOUSE, _SHED, _FARM, _IND = range(7)

_EMPTY, _L_PERIM, _L_TERR, _L_APT, _L_HOUSE, _L_FARM, _L_SHED, _L_SCATTER = range(8)
FARM_SHARE = 0.4  # of rural buildings in farmsteads; the rest are scattered


# ----------------------------------------------------------------------------- districts
def districts(bounds, seed: int, opt: WorldOptions) -> dict:
    """Districts meeting ``bounds``: cell, kind, frame, their large-footprint layout and
    their development window (``hot``, ``hot_start``, ``hot_days``: ``world_time``)."""
    return _districts(seed, opt, *row_cells(bounds, DISTRICT_DEG))


def districts_at(lon, lat, seed: int, opt: WorldOptions) -> dict:
    """The districts of points (one row per point), as :func:`districts` gives them."""
    lat = np.asarray(lat, dtype=np.float64)
    j = np.floor(lat / DISTRICT_DEG).astype(np.int64)
    dlon = row_dlon(j, DISTRICT_DEG)
    i = np.floor(np.asarray(lon, dtype=np.float64) / dlon).astype(np.int64)
    return _districts(seed, opt, i, j, i * dlon, j * DISTRICT_DEG, dlon, (j + 0.5) * DISTRICT_DEG)


def _districts(seed, opt, i, j, lon0, lat0, dlon, latc) -> dict:
    key = cell_key(seed, _DISTRICT, i, j)
    cx = lon0 + dlon / 2
    pj = np.floor(latc / CITY_DEG).astype(np.int64)
    pi = np.floor(cx / row_dlon(pj, CITY_DEG)).astype(np.int64)
    u_city = draw(cell_key(seed, _CITY, pi, pj), 0)
    u_own = draw(key, 0)
    u = np.where(draw(key, 1) < 0.5, u_city, u_own)
    t1 = opt.urban_share
    t2 = t1 + opt.suburban_share
    t3 = t2 + opt.industrial_share
    kind = np.select([u < t1, u < t2, u < t3], [URBAN, SUBURBAN, INDUSTRIAL], RURAL)
    theta = (2 * draw(key, 2) - 1) * MAX_ANGLE
    # large footprints: one per half (columns 0-3 / 4-7) of an industrial district
    has = np.stack([draw(key, 20 + h) < opt.large_industrial_share for h in (0, 1)], 1)
    has &= (kind == INDUSTRIAL)[:, None]
    wb = np.stack([2 + np.floor(3 * draw(key, 22 + h)).astype(np.int64) for h in (0, 1)], 1)
    c0 = np.stack(
        [4 * h + np.floor((5 - wb[:, h]) * draw(key, 24 + h)).astype(np.int64) for h in (0, 1)],
        1,
    )
    hb = np.stack([2 + np.floor(7 * draw(key, 26 + h) ** 1.5).astype(np.int64) for h in (0, 1)], 1)
    r0 = np.stack(
        [np.floor((9 - hb[:, h]) * draw(key, 28 + h)).astype(np.int64) for h in (0, 1)], 1
    )
    return {
        "i": i, "j": j, "lon0": lon0, "lat0": lat0, "dlon": dlon, "latc": latc,
        "key": key, "kind": kind, "theta": theta,
        "ind_has": has, "ind_c0": c0, "ind_wb": wb, "ind_r0": r0, "ind_hb": hb,
        **wt.hot_windows(key, kind != RURAL, opt),
    }  # fmt: skip


def district_of_block(d: dict, idx: np.ndarray, bi: np.ndarray, bj: np.ndarray) -> np.ndarray:
    """Whether block (bi, bj) of district ``idx`` lies under a large industrial footprint."""
    cov = np.zeros(len(idx), dtype=bool)
    for h in (0, 1):
        c0, wb = d["ind_c0"][idx, h], d["ind_wb"][idx, h]
        r0, hb = d["ind_r0"][idx, h], d["ind_hb"][idx, h]
        cov |= d["ind_has"][idx, h] & (bi >= c0) & (bi < c0 + wb) & (bj >= r0) & (bj < r0 + hb)
    return cov


# ----------------------------------------------------------------------------- output
class _Rects:
    """Accumulates rectangles in block frames: block index, sides, k, type, class, row,
    and the extension each one may get (``ek`` 0: none, 1: an annex beside one side,
    inset from its ends, the footprint becoming the union; 2: the rectangle grown to
    cover the annex)."""

    COLS = ("blk", "x0", "x1", "y0", "y1", "k", "btype", "cls", "row")
    EXT = ("ek", "ex0", "ex1", "ey0", "ey1")
    _TYPES = (np.int64, None, None, None, None, np.int64, np.int8, np.int16, np.int64)

    def __init__(self):
        self.parts: list[tuple] = []

    def add(self, blk, x0, x1, y0, y1, k, btype, cls, row, ext=None):
        n = len(blk)
        if n == 0:
            return
        cols = [blk, x0, x1, y0, y1, k, btype, cls, row]
        cols = [
            np.asarray(c) if t is None else np.broadcast_to(c, n).astype(t)
            for c, t in zip(cols, self._TYPES, strict=True)
        ]
        if ext is None:
            z = np.zeros(n)
            ext = (np.zeros(n, np.int8), z, z, z, z)
        ext = tuple(np.broadcast_to(e, n) for e in ext)
        self.parts.append((*cols, *ext))

    def arrays(self) -> dict:
        names = self.COLS + self.EXT
        if not self.parts:
            z = np.zeros(0)
            zi = np.zeros(0, dtype=np.int64)
            out = dict.fromkeys(names, z)
            out.update(blk=zi, k=zi, btype=zi.astype(np.int8), cls=zi.astype(np.int16), row=zi)
            out["ek"] = zi.astype(np.int8)
            return out
        return {
            n: np.concatenate(c) for n, c in zip(names, zip(*self.parts, strict=True), strict=True)
        }


ANNEX_INSET_M = 0.75  # an attached house's annex keeps this far from its party walls


def _lot_annex(lx0, lx1, ly0, ly1, x0, x1, y0, y1, lkey, sides=(0, 1, 2, 3)):
    """A free-standing building's extension inside its lot: on one side (0 W, 1 E, 2 S,
    3 N, drawn among ``sides``), up to half the gap to the lot's edge (≤ 8 m), so it never
    reaches a neighbour; none when that leaves less than 1 m."""
    sides = np.asarray(sides)
    side = sides[np.minimum((len(sides) * draw(lkey, 90)).astype(np.int64), len(sides) - 1)]
    gap = np.select([side == 0, side == 1, side == 2], [x0 - lx0, lx1 - x1, y0 - ly0], ly1 - y1)
    e = np.minimum(gap / 2, 8.0) * (0.6 + 0.4 * draw(lkey, 91))
    kind = np.where(e >= 1.0, 2, 0).astype(np.int8)
    ex0 = np.where(side == 0, x0 - e, np.where(side == 1, x1, x0))
    ex1 = np.where(side == 0, x0, np.where(side == 1, x1 + e, x1))
    ey0 = np.where(side == 2, y0 - e, np.where(side == 3, y1, y0))
    ey1 = np.where(side == 2, y0, np.where(side == 3, y1 + e, y1))
    return kind, ex0, ex1, ey0, ey1


def _pick(u, probs, values):
    """values[m] where u falls in the m-th slice of cumulative ``probs``."""
    edges = np.cumsum(probs)
    return np.asarray(values)[np.minimum(np.searchsorted(edges, u, side="right"), len(values) - 1)]


def _strips(out, blk, skey, sidx, axis, a, b, c, e, n, k0, btype, cls_probs, cls_vals):
    """Houses along strips: ``n`` houses between walls a = t_0 < … < t_n = b (identical
    wall values for both neighbours), across [c, e]. ``axis`` 0: along x, 1: along y."""
    n = np.asarray(n, dtype=np.int64)
    total = int(n.sum())
    if total == 0:
        return
    s = np.repeat(np.arange(len(n)), n)
    k = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    key = skey[s]

    def wall(kk):
        nn, aa, bb = n[s], a[s], b[s]
        jit = 0.25 * (2 * draw(key, 1000 + kk) - 1)
        inner = aa + (bb - aa) * ((kk + jit) / nn)
        return np.where(kk == 0, aa, np.where(kk == nn, bb, inner))

    t0, t1 = wall(k), wall(k + 1)
    cc, ee = c[s], e[s]
    ax = axis[s]
    x0 = np.where(ax == 0, t0, cc)
    x1 = np.where(ax == 0, t1, ee)
    y0 = np.where(ax == 0, cc, t0)
    y1 = np.where(ax == 0, ee, t1)
    cls = _pick(draw(key, 3000 + k), cls_probs, cls_vals)
    row = sidx[s]
    # houses of strips along x may get a rear annex towards the block's centre (2–4 m
    # deep, inset from both party walls, so neighbours' walls stay exactly shared)
    dep = 2.0 + 2.0 * draw(key, 5000 + k)
    up = cc + ee < 0
    ax0, ax1 = t0 + ANNEX_INSET_M, t1 - ANNEX_INSET_M
    kind = np.where((ax == 0) & (ax1 - ax0 >= 2.0), 1, 0).astype(np.int8)
    ext = (kind, ax0, ax1, np.where(up, ee, cc - dep), np.where(up, ee + dep, cc))
    out.add(blk[s], x0, x1, y0, y1, k0[s] + k, btype, cls, row, ext)


def _perimeter(out, blk, key, A, B, N):
    d = np.clip(11 + 6 * draw(key, 10), 8, 0.3 * np.minimum(A, B))
    X0, X1, Y0, Y1 = -A, A, -B, B
    X0d, X1d, Y0d, Y1d = X0 + d, X1 - d, Y0 + d, Y1 - d
    cls_p, cls_v = (0.72, 0.2, 0.08), (101, 104, 105)
    group = _group_ids(key, 0)  # the whole ring of a perimeter block is one attached group
    # corner squares, k = 0..3
    corners = (
        (X0, X0d, Y0, Y0d),
        (X1d, X1, Y0, Y0d),
        (X1d, X1, Y1d, Y1),
        (X0, X0d, Y1d, Y1),
    )
    for q, (x0, x1, y0, y1) in enumerate(corners):
        cls = _pick(draw(key, 40 + q), cls_p, cls_v)
        out.add(blk, x0, x1, y0, y1, q, _PERIM, cls, group)
    Lx, Ly = X1d - X0d, Y1d - Y0d
    per = 2 * Lx + 2 * Ly
    rest = np.maximum(N - 4, 4)
    nx = np.clip(np.round(rest * Lx / per), 1, np.maximum(np.floor(Lx / 6), 1)).astype(np.int64)
    ny = np.clip(np.round(rest * Ly / per), 1, np.maximum(np.floor(Ly / 6), 1)).astype(np.int64)
    m = len(blk)
    # strips S, N (along x) and W, E (along y); k continues after the corners
    k0 = 4 + np.stack([np.zeros(m, np.int64), nx, 2 * nx, 2 * nx + ny], 1)
    axis = np.array([0, 0, 1, 1])
    sa = np.stack([X0d, X0d, Y0d, Y0d], 1)
    sb = np.stack([X1d, X1d, Y1d, Y1d], 1)
    sc = np.stack([Y0, Y1d, X0, X1d], 1)
    se = np.stack([Y0d, Y1, X0d, X1], 1)
    sn = np.stack([nx, nx, ny, ny], 1)
    skey = draw_bits(key[:, None], 100 + np.arange(4)[None, :])
    _strips(
        out,
        np.repeat(blk, 4),
        skey.ravel(),
        np.repeat(group, 4),
        np.tile(axis, m),
        sa.ravel(),
        sb.ravel(),
        sc.ravel(),
        se.ravel(),
        sn.ravel(),
        k0.ravel(),
        _PERIM,
        cls_p,
        cls_v,
    )
    # sometimes a small outbuilding in the courtyard (often under 20 m²)
    has = draw(key, 50) < 0.35
    if has.any():
        b, kk = blk[has], key[has]
        w = 2.5 + 4.5 * draw(kk, 51)
        h = 3.0 + 5.0 * draw(kk, 52)
        spanx = np.maximum(Lx[has] / 2 - 10 - w, 0)
        spany = np.maximum(Ly[has] / 2 - 10 - h, 0)
        ox = (2 * draw(kk, 53) - 1) * spanx
        oy = (2 * draw(kk, 54) - 1) * spany
        k = 4 + 2 * nx[has] + 2 * ny[has]
        out.add(b, ox - w / 2, ox + w / 2, oy - h / 2, oy + h / 2, k, _SHED, 105, -1)


def _group_ids(key, s):
    """An attached-group id: the block's key mixed with a group number (an int64 ≥ 0)."""
    return (draw_bits(key, 9000 + np.asarray(s)) >> np.uint64(2)).astype(np.int64)


def _terraced(out, blk, key, A, B, N, cls_p, cls_v):
    m = len(blk)
    d = 8 + 4 * draw(key, 10)
    w0 = 6.5 + 3 * draw(key, 11)
    per_row = 2 * A / w0
    r_max = np.clip(np.floor((2 * B + 20) / 30), 1, 6)
    r = np.clip(np.round(N / per_row), 1, r_max).astype(np.int64)
    n_row = N / r
    # rows 0..5 (unused ones masked out); each row maybe split into two terraces
    rows = np.arange(6)
    step = np.where(r > 1, (2 * B - d) / np.maximum(r - 1, 1), 0.0)
    y_single = -B + (2 * B - d) * draw(key, 12)
    y0 = np.where(r[:, None] > 1, -B[:, None] + rows[None, :] * step[:, None], y_single[:, None])
    y1 = y0 + d[:, None]
    use = rows[None, :] < r[:, None]
    split = (draw(key[:, None], 200 + rows[None, :]) < 0.5) & (n_row[:, None] >= 8)
    pos = -A[:, None] + 2 * A[:, None] * (0.35 + 0.3 * draw(key[:, None], 300 + rows[None, :]))
    gap = 5 + 5 * draw(key[:, None], 400 + rows[None, :])
    # strip 2*row (west part or the whole row) and 2*row+1 (east part, if split)
    a1 = np.broadcast_to(-A[:, None], (m, 6))
    b1 = np.where(split, pos - gap / 2, A[:, None])
    a2 = pos + gap / 2
    b2 = np.broadcast_to(A[:, None], (m, 6))
    sa = np.stack([a1, a2], 2).reshape(m, 12)
    sb = np.stack([b1, b2], 2).reshape(m, 12)
    sc = np.repeat(y0, 2, axis=1)
    se = np.repeat(y1, 2, axis=1)
    su = np.stack([use, use & split], 2).reshape(m, 12)
    length = sb - sa
    n = np.clip(
        np.round(n_row[:, None] * length / (2 * A[:, None])),
        1,
        np.maximum(np.floor(length / 4.5), 1),
    ).astype(np.int64)
    n = np.where(su, n, 0)
    k0 = np.cumsum(n, axis=1) - n
    skey = draw_bits(key[:, None], 100 + np.arange(12)[None, :])
    sidx = np.broadcast_to(np.arange(12)[None, :], (m, 12))
    _strips(
        out,
        np.repeat(blk, 12),
        skey.ravel(),
        _group_ids(np.repeat(key, 12), 1 + sidx.ravel()),
        np.zeros(m * 12, dtype=np.int64),
        sa.ravel(),
        sb.ravel(),
        sc.ravel(),
        se.ravel(),
        n.ravel(),
        k0.ravel(),
        _TERR,
        cls_p,
        cls_v,
    )


def _lot_grid(blk, key, x0, x1, y0, y1, gx, gy):
    """Lots of a gx × gy grid over [x0, x1] × [y0, y1] per block: (block, lot index, lot
    rectangle, column, row, lot key)."""
    gx = np.asarray(gx, dtype=np.int64)
    gy = np.asarray(gy, dtype=np.int64)
    cnt = gx * gy
    total = int(cnt.sum())
    s = np.repeat(np.arange(len(blk)), cnt)
    q = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    col, row = q % gx[s], q // gx[s]
    lw = (x1 - x0)[s] / gx[s]
    lh = (y1 - y0)[s] / gy[s]
    lx0 = x0[s] + col * lw
    ly0 = y0[s] + row * lh
    lkey = draw_bits(key[s], 500 + q)
    return s, q, lx0, lx0 + lw, ly0, ly0 + lh, col, row, lkey


def _in_lot(lx0, lx1, ly0, ly1, fw, fh, lkey, salt):
    """A rectangle of fractions fw, fh of the lot, placed at random with a gap ≥ 1/4 of
    the slack on every side (so buildings of neighbouring lots never touch)."""
    lw, lh = lx1 - lx0, ly1 - ly0
    w, h = fw * lw, fh * lh
    sx, sy = lw - w, lh - h
    x0 = lx0 + sx * (0.25 + 0.5 * draw(lkey, salt))
    y0 = ly0 + sy * (0.25 + 0.5 * draw(lkey, salt + 1))
    return x0, x0 + w, y0, y0 + h


def _apartments(out, blk, key, A, B, N):
    gx = np.clip(np.round(np.sqrt(N * A / B)), 1, np.maximum(np.floor(2 * A / 12), 1))
    gy = np.clip(np.round(N / gx), 1, np.maximum(np.floor(2 * B / 12), 1))
    s, q, lx0, lx1, ly0, ly1, _, _, lkey = _lot_grid(blk, key, -A, A, -B, B, gx, gy)
    fw = 0.45 + 0.4 * draw(lkey, 1)
    fh = 0.45 + 0.4 * draw(lkey, 2)
    x0, x1, y0, y1 = _in_lot(lx0, lx1, ly0, ly1, fw, fh, lkey, 3)
    cls = _pick(draw(lkey, 5), (0.7, 0.2, 0.1), (101, 104, 105))
    ext = _lot_annex(lx0, lx1, ly0, ly1, x0, x1, y0, y1, lkey)
    out.add(blk[s], x0, x1, y0, y1, q, _APT, cls, -1, ext)


def _houses(out, blk, key, A, B, N):
    gy = np.full(len(blk), 2)
    gx = np.clip(np.round(N / 2), 1, np.maximum(np.floor(2 * A / 11), 1))
    s, q, lx0, lx1, ly0, ly1, col, row, lkey = _lot_grid(blk, key, -A, A, -B, B, gx, gy)
    lw, lh = lx1 - lx0, ly1 - ly0
    w = np.clip(lw * (0.45 + 0.25 * draw(lkey, 1)), 7.0, lw - 2)
    dep = np.minimum(8 + 5 * draw(lkey, 2), lh * 0.45)
    setback = np.minimum(3 + 5 * draw(lkey, 3), lh * 0.2)
    hx0 = lx0 + (lw - w) * (0.2 + 0.6 * draw(lkey, 4))
    # the street front is the outer side: row 0 faces -B, row 1 faces +B
    front0 = row == 0
    hy0 = np.where(front0, ly0 + setback, ly1 - setback - dep)
    hy1 = hy0 + dep
    cls = _pick(draw(lkey, 5), (0.9, 0.1), (102, 105))
    # sideways only: the garden shed is behind the house
    ext = _lot_annex(lx0, lx1, ly0, ly1, hx0, hx0 + w, hy0, hy1, lkey, (0, 1))
    out.add(blk[s], hx0, hx0 + w, hy0, hy1, 2 * q, _HOUSE, cls, -1, ext)
    # garden sheds behind the house (6–30 m²; the smaller ones are dropped by the rule)
    has = draw(lkey, 6) < 0.5
    sw = 2.5 + 3.0 * draw(lkey, 7)
    sh = 2.5 + 2.5 * draw(lkey, 8)
    back_lo = np.where(front0, hy1 + 2, ly0 + 1)
    back_hi = np.where(front0, ly1 - 1, hy0 - 2)
    ok = has & (back_hi - back_lo > sh + 0.5) & (lw > sw + 2)
    sy0 = back_lo + (back_hi - back_lo - sh) * draw(lkey, 9)
    sx0 = lx0 + 1 + (lw - 2 - sw) * draw(lkey, 10)
    out.add(
        blk[s][ok], sx0[ok], (sx0 + sw)[ok], sy0[ok], (sy0 + sh)[ok], 2 * q[ok] + 1, _SHED, 105, -1
    )


def _farms(out, blk, key, A, B):
    size = np.minimum(60 + 25 * draw(key, 10), 2 * np.minimum(A, B))
    fx0 = -A + (2 * A - size) * draw(key, 11)
    fy0 = -B + (2 * B - size) * draw(key, 12)
    two = np.full(len(blk), 2)
    s, q, lx0, lx1, ly0, ly1, _, _, lkey = _lot_grid(
        blk, key, fx0, fx0 + size, fy0, fy0 + size, two, two
    )
    lw, lh = lx1 - lx0, ly1 - ly0
    # lot 0: the house; lot 1: a barn (70 %); lots 2, 3: sheds (50 % each)
    p = np.where(q == 0, 1.0, np.where(q == 1, 0.7, 0.5))
    has = draw(lkey, 1) < p
    u2, u3 = draw(lkey, 2), draw(lkey, 3)
    w_m = np.select([q == 0, q == 1], [8 + 5 * u2, 10 + 15 * u2], 3 + 3 * u2)
    h_m = np.select([q == 0, q == 1], [8 + 4 * u3, 8 + 7 * u3], 3 + 2 * u3)
    fw = np.minimum(w_m / lw, 0.85)
    fh = np.minimum(h_m / lh, 0.85)
    x0, x1, y0, y1 = _in_lot(lx0, lx1, ly0, ly1, fw, fh, lkey, 4)
    btype = np.where(q == 0, _HOUSE, np.where(q == 1, _FARM, _SHED))
    cls = np.where(q == 0, 102, 105)
    ext = tuple(e[has] for e in _lot_annex(lx0, lx1, ly0, ly1, x0, x1, y0, y1, lkey))
    out.add(blk[s][has], x0[has], x1[has], y0[has], y1[has], q[has], btype[has], cls[has], -1, ext)


def _scattered(out, blk, key, A, B, p_lot):
    """Rural: up to four free-standing buildings per block (one per lot), of all sizes
    (≈ 6 – 900 m², so some fall under the 20 m² rule)."""
    two = np.full(len(blk), 2)
    s, q, lx0, lx1, ly0, ly1, _, _, lkey = _lot_grid(blk, key, -A, A, -B, B, two, two)
    has = draw(lkey, 1) < p_lot[s]
    lw, lh = lx1 - lx0, ly1 - ly0
    w = 4 + 26 * draw(lkey, 2) ** 1.5
    h = w * (0.4 + 0.6 * draw(lkey, 3))
    fw = np.minimum(w / lw, 0.85)
    fh = np.minimum(h / lh, 0.85)
    x0, x1, y0, y1 = _in_lot(lx0, lx1, ly0, ly1, fw, fh, lkey, 4)
    cls = np.where(draw(lkey, 6) < 0.6, 102, 105)
    bt = np.where(w * h < 60, _SHED, _HOUSE)
    ext = tuple(e[has] for e in _lot_annex(lx0, lx1, ly0, ly1, x0, x1, y0, y1, lkey))
    out.add(blk[s][has], x0[has], x1[has], y0[has], y1[has], q[has], bt[has], cls[has], -1, ext)


def _sheds(out, blk, key, A, B, p_lot):
    two = np.full(len(blk), 2)
    s, q, lx0, lx1, ly0, ly1, _, _, lkey = _lot_grid(blk, key, -A, A, -B, B, two, two)
    has = draw(lkey, 1) < p_lot[s]
    fw = 0.5 + 0.4 * draw(lkey, 2)
    fh = 0.5 + 0.4 * draw(lkey, 3)
    x0, x1, y0, y1 = _in_lot(lx0, lx1, ly0, ly1, fw, fh, lkey, 4)
    cls = _pick(draw(lkey, 6), (0.8, 0.2), (103, 105))
    ext = tuple(e[has] for e in _lot_annex(lx0, lx1, ly0, ly1, x0, x1, y0, y1, lkey))
    out.add(blk[s][has], x0[has], x1[has], y0[has], y1[has], q[has], _SHED, cls[has], -1, ext)


# ----------------------------------------------------------------------------- buildings
def building_rings(bounds, seed: int, density: float, opt: WorldOptions) -> dict:
    """Whole buildings generated by the blocks and districts that meet ``bounds``.

    Returns rings (n, 5, 2), truth ids, building type codes, class codes, row ids, and
    their lives (``world_time.building_life``: ``built``, ``demolished``, ``modified``,
    ``rebuilt`` days), ``alt`` (the second footprint, None where there is none) and
    ``first`` (the first footprint as a polygon where it has more vertices than its
    ring). A building belongs to exactly one generating cell, so there are no
    duplicates; the caller keeps those that really meet the query.
    """
    d = districts(bounds, seed, opt)
    nd = len(d["i"])
    # blocks of these districts that meet bounds
    bi = np.tile(np.arange(BLOCKS), BLOCKS)
    bj = np.repeat(np.arange(BLOCKS), BLOCKS)
    di = np.repeat(np.arange(nd), BLOCKS * BLOCKS)
    bi = np.tile(bi, nd)
    bj = np.tile(bj, nd)
    bdlon = d["dlon"][di] / BLOCKS
    lon0 = d["lon0"][di] + bi * bdlon
    lat0 = d["lat0"][di] + bj * BLOCK_DEG
    x0, y0, x1, y1 = bounds
    meet = (lon0 <= x1) & (lon0 + bdlon >= x0) & (lat0 <= y1) & (lat0 + BLOCK_DEG >= y0)
    di, bi, bj, bdlon = di[meet], bi[meet], bj[meet], bdlon[meet]
    cx = d["lon0"][di] + (bi + 0.5) * bdlon
    cy = d["lat0"][di] + (bj + 0.5) * BLOCK_DEG
    gi = d["i"][di] * BLOCKS + bi
    gj = d["j"][di] * BLOCKS + bj
    key = cell_key(seed, _BLOCK, gi, gj)
    kind = d["kind"][di]
    theta = d["theta"][di]
    my, mx = meters_per_degree(cy)
    W = bdlon * mx
    H = BLOCK_DEG * my
    street = STREET_HALF_M[kind]
    A, B = fit_rotated(W / 2 - street, H / 2 - street, theta)
    area_km2 = W * H / 1e6
    jitter = 0.75 + 0.5 * draw(key, 2)
    dens = np.select(
        [kind == URBAN, kind == SUBURBAN, kind == INDUSTRIAL],
        [opt.urban_density, opt.suburban_density, opt.industrial_density],
        opt.rural_density,
    )
    N = dens * density * area_km2 * jitter
    u = draw(key, 0)
    covered = district_of_block(d, di, bi, bj)
    layout = np.full(len(key), _EMPTY)
    urban = kind == URBAN
    att = u < opt.attached_share
    perim = draw(key, 1) < opt.perimeter_share
    layout[urban & att & perim] = _L_PERIM
    layout[urban & att & ~perim] = _L_TERR
    layout[urban & ~att] = _L_APT
    sub = kind == SUBURBAN
    layout[sub & (u < opt.terraced_suburb_share)] = _L_TERR
    layout[sub & (u >= opt.terraced_suburb_share)] = _L_HOUSE
    rural = kind == RURAL
    farm_p = np.clip(FARM_SHARE * N / 2.3, 0, 1)  # ≈ 2.3 kept buildings per farm
    farm = rural & (draw(key, 3) < farm_p)
    layout[farm] = _L_FARM
    layout[rural & ~farm] = _L_SCATTER
    scatter_p = np.clip((1 - FARM_SHARE) * N / 4 / np.maximum(1 - farm_p, 0.05), 0, 1)
    layout[(kind == INDUSTRIAL) & ~covered] = _L_SHED
    # below a layout's minimum count, a block is kept with probability N / minimum
    n_min = np.select(
        [layout == _L_PERIM, layout == _L_TERR, layout == _L_APT, layout == _L_HOUSE],
        [8.0, 2.0, 1.0, 2.0],
        0.0,
    )
    keep = draw(key, 4) * n_min <= N
    layout[~keep | ~(A > 15) | ~(B > 15)] = _EMPTY  # (blocks shrink to nothing at the poles)
    N = np.maximum(N, n_min)

    out = _Rects()
    idx = np.arange(len(key))
    for lay in (_L_PERIM, _L_TERR, _L_APT, _L_HOUSE, _L_FARM, _L_SHED, _L_SCATTER):
        sel = idx[layout == lay]
        if len(sel) == 0:
            continue
        args = (out, sel, key[sel], A[sel], B[sel])
        if lay == _L_PERIM:
            _perimeter(*args, N[sel])
        elif lay == _L_TERR:
            _terraced(*args, N[sel], (0.85, 0.1, 0.05), (102, 101, 105))
        elif lay == _L_APT:
            _apartments(*args, N[sel])
        elif lay == _L_HOUSE:
            _houses(*args, N[sel])
        elif lay == _L_FARM:
            _farms(*args)
        elif lay == _L_SCATTER:
            _scattered(*args, scatter_p[sel])
        else:
            _sheds(*args, np.clip(N[sel] / 4, 0, 0.95))
    r = out.arrays()
    blk = r["blk"]
    c, sn = np.cos(theta[blk]), np.sin(theta[blk])
    frame = (cx[blk], cy[blk], mx[blk], my[blk], c, sn)
    xs = np.stack([r["x0"], r["x1"], r["x1"], r["x0"], r["x0"]], axis=1)
    ys = np.stack([r["y0"], r["y0"], r["y1"], r["y1"], r["y0"]], axis=1)
    rings = np.stack(to_lonlat_cs(*frame, xs, ys), axis=-1)
    ids = truth_ids(1, gi[blk], gj[blk], r["k"])
    # lives: a hot spot's block starts at a day of its district's window
    dhot = d["hot"][di][blk]
    start = wt.block_start(seed, gi[blk], gj[blk], d["hot_start"][di][blk], d["hot_days"][di][blk])
    fill = np.minimum(wt.FILL_YEARS * wt.YEAR, d["hot_days"][di][blk] / 2)
    life = wt.building_life(seed, ids, r["row"], dhot, start, fill, r["ek"] > 0, opt)
    alt, first = _extended(r, frame, life)

    # large industrial footprints (district level, confined to the blocks they cover)
    ind_rings, ind_ids, ind_d = _industrial(d)
    n_ind = len(ind_ids)
    ind_start = wt.days_in(
        draw(d["key"][ind_d], 60), d["hot_start"][ind_d], d["hot_days"][ind_d] // 2
    )
    ind_life = wt.building_life(
        seed,
        ind_ids,
        np.full(n_ind, -1, np.int64),
        d["hot"][ind_d],
        ind_start,
        d["hot_days"][ind_d] // 2,
        np.zeros(n_ind, bool),
        opt,
    )
    return {
        "rings": np.concatenate([rings.reshape(-1, 5, 2), ind_rings]),
        "truth_id": np.concatenate([ids, ind_ids]),
        "btype": np.concatenate([r["btype"], np.full(n_ind, _IND, np.int8)]),
        "class_id": np.concatenate([r["cls"], np.full(n_ind, 103, np.int16)]),
        "row": np.concatenate([r["row"], np.full(n_ind, -1, np.int64)]),
        "alt": np.concatenate([alt, np.full(n_ind, None, dtype=object)]),
        "first": np.concatenate([first, np.full(n_ind, None, dtype=object)]),
        **{k: np.concatenate([life[k], ind_life[k]]) for k in life},
    }


def _extended(r: dict, frame: tuple, life: dict) -> tuple[np.ndarray, np.ndarray]:
    """The second footprint of the buildings that get one (extended, or rebuilt bigger),
    and the first footprint where it needs more vertices than its rectangle: object
    arrays, None for the others. Corners are computed from the same local coordinates and
    frame as the first footprint, so party walls stay bit-identical and the first
    footprint lies exactly inside the second."""
    n = len(r["blk"])
    alt = np.full(n, None, dtype=object)
    first = np.full(n, None, dtype=object)
    need = (r["ek"] > 0) & ((life["modified"] != wt.NEVER) | (life["rebuilt"] != wt.NEVER))
    x0, x1, y0, y1 = r["x0"], r["x1"], r["y0"], r["y1"]
    ex0, ex1, ey0, ey1 = r["ex0"], r["ex1"], r["ey0"], r["ey1"]
    # grown rectangles (free-standing): the grown box's corners and the two corners of the
    # first footprint on the side that grew (so the first footprint is exactly inside)
    sel = np.nonzero(need & (r["ek"] == 2))[0]
    if len(sel):
        a0, a1, b0, b1 = x0[sel], x1[sel], y0[sel], y1[sel]
        p0, p1, q0, q1 = ex0[sel], ex1[sel], ey0[sel], ey1[sel]
        side = np.select([p1 <= a0, p0 >= a1, q1 <= b0], [0, 1, 2], 3)[:, None]  # W E S N
        xs = np.select(
            [side == 0, side == 1, side == 2],
            [
                np.stack([p0, a0, a1, a1, a0, p0, p0], axis=1),
                np.stack([a0, a1, p1, p1, a1, a0, a0], axis=1),
                np.stack([a0, a1, a1, a1, a0, a0, a0], axis=1),
            ],
            np.stack([a0, a1, a1, a1, a0, a0, a0], axis=1),
        )
        ys = np.select(
            [side == 0, side == 1, side == 2],
            [
                np.stack([b0, b0, b0, b1, b1, b1, b0], axis=1),
                np.stack([b0, b0, b0, b1, b1, b1, b0], axis=1),
                np.stack([q0, q0, b0, b1, b1, b0, q0], axis=1),
            ],
            np.stack([b0, b0, b1, q1, q1, b1, b0], axis=1),
        )
        f = tuple(a[sel] for a in frame)
        alt[sel] = shapely.polygons(np.stack(to_lonlat_cs(*f, xs, ys), axis=-1))
    # annexes beside one side (attached): the union, a 9-vertex ring (counter-clockwise)
    sel = np.nonzero(need & (r["ek"] == 1))[0]
    if len(sel):
        a0, a1, b0, b1 = x0[sel], x1[sel], y0[sel], y1[sel]
        p0, p1, q0, q1 = ex0[sel], ex1[sel], ey0[sel], ey1[sel]
        up = (q0 >= b1)[:, None]
        xs = np.where(
            up,
            np.stack([a0, a1, a1, p1, p1, p0, p0, a0, a0], axis=1),
            np.stack([a0, p0, p0, p1, p1, a1, a1, a0, a0], axis=1),
        )
        ys = np.where(
            up,
            np.stack([b0, b0, b1, b1, q1, q1, b1, b1, b0], axis=1),
            np.stack([b0, b0, q0, q0, b0, b0, b1, b1, b0], axis=1),
        )
        f = tuple(a[sel] for a in frame)
        alt[sel] = shapely.polygons(np.stack(to_lonlat_cs(*f, xs, ys), axis=-1))
        # the first footprint gets the annex's two corners on its side as (collinear)
        # vertices too, so that it is exactly inside the second one
        xs = np.where(
            up,
            np.stack([a0, a1, a1, p1, p0, a0, a0], axis=1),
            np.stack([a0, p0, p1, a1, a1, a0, a0], axis=1),
        )
        ys = np.where(
            up,
            np.stack([b0, b0, b1, b1, b1, b1, b0], axis=1),
            np.stack([b0, b0, b0, b0, b1, b1, b0], axis=1),
        )
        first[sel] = shapely.polygons(np.stack(to_lonlat_cs(*f, xs, ys), axis=-1))
    return alt, first


def _industrial(d: dict):
    sel_d, half = np.nonzero(d["ind_has"])
    if len(sel_d) == 0:
        return np.zeros((0, 5, 2)), np.zeros(0, dtype=np.int64), sel_d
    latc = d["latc"][sel_d]
    cxd = d["lon0"][sel_d] + d["dlon"][sel_d] / 2
    my, mx = meters_per_degree(latc)
    Wd = d["dlon"][sel_d] * mx
    Hd = DISTRICT_DEG * my
    street = STREET_HALF_M[INDUSTRIAL]
    c0, wb = d["ind_c0"][sel_d, half], d["ind_wb"][sel_d, half]
    r0, hb = d["ind_r0"][sel_d, half], d["ind_hb"][sel_d, half]
    fx0 = -Wd / 2 + c0 * Wd / BLOCKS + street
    fx1 = -Wd / 2 + (c0 + wb) * Wd / BLOCKS - street
    fy0 = -Hd / 2 + r0 * Hd / BLOCKS + street
    fy1 = -Hd / 2 + (r0 + hb) * Hd / BLOCKS - street
    hx, hy = (fx1 - fx0) / 2, (fy1 - fy0) / 2
    # long footprints turn less, so that they keep most of the blocks they cover
    theta = d["theta"][sel_d] * np.minimum(hx, hy) / np.maximum(hx, hy)
    a, b = fit_rotated(hx, hy, theta)
    fcx = cxd + (fx0 + fx1) / 2 / mx
    fcy = latc + (fy0 + fy1) / 2 / my
    rings = rect_rings(fcx, fcy, mx, my, theta, -a, a, -b, b)
    ids = truth_ids(2, d["i"][sel_d], d["j"][sel_d], half)
    return rings, ids, sel_d
