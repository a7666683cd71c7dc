"""Forest, roads, construction sites and fields of the simulator's world.

* **forest**: cells 0.02° high (≈ 2.2 km, square on the ground). A cell holds one large
  patch (probability ``forest_share``; organic star-shaped outline of 32 vertices, up to
  ≈ 2 km across, 0–3 clearings = interior rings), or else small groves (≈ 550 m
  sub-cells, probability ``grove_share`` each). Patches stay inside their cell (30 m gap),
  so forest polygons never touch each other. Ids: ``truth_ids(3, i, j, 0)`` for the large
  patch, ``1 + sub-cell`` for groves.
* **roads**: a major network on a 0.06° × 0.045° lattice (≈ 3.8 × 5 km at 55°N): one
  east-west road per lattice row and one north-south road per column, meandering; a
  road is cut into chunks between lattice nodes (one chunk per cell, ≈ 4–7 km), so each
  chunk crosses many 1 km tiles (and their corners). Plus local streets along the block
  edges of built-up districts (≈ 1.1 km lines). ``road_geometry``: ``"lines"`` (all
  LineStrings), ``"polygons"`` (only the major roads, as corridors 16 or 24 m wide; the
  east-west corridors are whole, north-south ones are cut where they cross, so corridor
  polygons never overlap; consecutive chunks share their end edge exactly) or
  ``"mixed"`` (major corridors + local street lines).
* **construction**, **fields**: sparse rectangles / quadrilaterals on ≈ 450 m cells.
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
    expand_bounds_m,
    polygons_ragged,
    rect_rings,
    row_cells,
    star_rings,
    truth_ids,
)
from .world_urban import (
    BLOCK_DEG,
    BLOCKS,
    DISTRICT_DEG,
    RURAL,
    SUBURBAN,
    URBAN,
    districts,
    districts_at,
)

_FOREST, _GROVE, _EW, _NS, _EWC, _NSC, _STREET, _CONSTRUCTION, _FIELDS = (
    23,
    29,
    37,
    43,
    47,
    59,
    61,
    41,
    53,
)

FOREST_CELL_DEG = 0.02
GROVES = 4  # groves sub-cells per side
K_SHELL, K_HOLE, K_GROVE = 32, 10, 12
HEIGHT_CLASSES = ("00m-04m", "04m-10m", "10m-99m")

ROAD_LON_DEG = 0.06
ROAD_LAT_DEG = 0.045
ROAD_INNER = 10  # meandering vertices between a chunk's two end segments
ROAD_WIDTH_M = {"trunk": 24.0, "primary": 16.0}

CONSTRUCTION_CELL_DEG = 0.004
FIELD_CELL_DEG = 0.004


# ----------------------------------------------------------------------------- forest
def forest_objects(bounds, seed: int, density: float, opt: WorldOptions) -> dict:
    """Whole forest patches of the cells meeting ``bounds``: geoms, truth ids, height class."""
    i, j, lon0, lat0, dlon, latc = row_cells(bounds, FOREST_CELL_DEG)
    key = cell_key(seed, _FOREST, i, j)
    my, mx = meters_per_degree(latc)
    half = np.minimum(dlon * mx, FOREST_CELL_DEG * my) / 2
    cx0 = lon0 + dlon / 2
    large = draw(key, 0) < np.clip(opt.forest_share * density, 0, 1)
    large &= half > 200  # (cells shrink to nothing at the poles)
    parts = []

    # --- large patches with clearings
    sel = np.nonzero(large)[0]
    if len(sel):
        k = key[sel]
        h = half[sel]
        amp = np.stack([0.18 * draw(k, 1), 0.12 * draw(k, 2), 0.07 * draw(k, 3)], 1)
        pha = np.stack([2 * np.pi * draw(k, 4 + m) for m in range(3)], 1)
        R = (h - 30) / 1.42 * (0.55 + 0.45 * draw(k, 7))
        off = np.maximum(h - 30 - 1.42 * R, 0)
        cx = cx0[sel] + (2 * draw(k, 8) - 1) * off / mx[sel]
        cy = latc[sel] + (2 * draw(k, 9) - 1) * off / my[sel]
        phi = np.linspace(0, 2 * np.pi, K_SHELL, endpoint=False)
        jit = 0.05 * (2 * draw(k[:, None], 100 + np.arange(K_SHELL)[None, :]) - 1)
        wave = sum(
            amp[:, m : m + 1] * np.cos((m + 1) * phi[None, :] + pha[:, m : m + 1]) for m in range(3)
        )
        radii = R[:, None] * (1 + wave + jit)
        shell = star_rings(cx, cy, mx[sel], my[sel], radii, np.zeros(len(sel)))
        # clearings: up to 3 disjoint holes well inside the inscribed circle
        nh = np.floor(4 * draw(k, 10)).astype(np.int64)
        rho = R * (1 - 0.42) * np.cos(np.pi / K_SHELL)
        phi0 = 2 * np.pi * draw(k, 11)
        holes, centres = [], []
        for m in range(3):
            ang = phi0 + 2 * np.pi * m / 3
            hx = cx + 0.45 * rho * np.cos(ang) / mx[sel]
            hy = cy + 0.45 * rho * np.sin(ang) / my[sel]
            rh = 0.3 * rho * (0.35 + 0.65 * draw(k, 20 + m))
            hr = rh[:, None] * (0.7 + 0.3 * draw(k[:, None], 200 + 20 * m + np.arange(K_HOLE)))
            holes.append(star_rings(hx, hy, mx[sel], my[sel], hr, np.zeros(len(sel))))
            centres.append((hx, hy, hr))
        geoms = _patches(shell, holes, nh)
        ids = truth_ids(3, i[sel], j[sel], 0)
        dem, mod = wt.forest_life(seed, ids, np.ones(len(sel), bool), opt)
        # the second version: the first clearing grown by half (it stays clear of the
        # others and of the outline), or a first clearing where there was none
        alt = np.full(len(sel), None, dtype=object)
        alt_nh = nh.copy()
        ch = np.nonzero(mod != wt.NEVER)[0]
        if len(ch):
            hx, hy, hr = (a[ch] for a in centres[0])
            grown = np.where((nh[ch] > 0)[:, None], 1.5, 1.0) * hr
            h0 = star_rings(hx, hy, mx[sel][ch], my[sel][ch], grown, np.zeros(len(ch)))
            alt_nh[ch] = np.maximum(nh[ch], 1)
            alt[ch] = _patches(shell[ch], [h0, holes[1][ch], holes[2][ch]], alt_nh[ch])
        parts.append(
            (
                geoms,
                ids,
                np.floor(3 * draw(k, 30)).astype(np.int64),
                nh,
                dem,
                mod,
                alt,
                alt_nh,
            )
        )

    # --- groves in the other cells
    sel = np.nonzero(~large)[0]
    if len(sel):
        g = GROVES * GROVES
        c = np.repeat(sel, g)
        q = np.tile(np.arange(g), len(sel))
        kk = cell_key(seed, _GROVE, i[c], j[c] * 64 + q)
        ok = draw(kk, 0) < np.clip(opt.grove_share * density, 0, 1)
        ok &= half[c] > 200
        c, q, kk = c[ok], q[ok], kk[ok]
        sw = dlon[c] * mx[c] / GROVES
        sh = FOREST_CELL_DEG * my[c] / GROVES
        gcx = lon0[c] + (q % GROVES + 0.5) * dlon[c] / GROVES
        gcy = lat0[c] + (q // GROVES + 0.5) * FOREST_CELL_DEG / GROVES
        hs = np.minimum(sw, sh) / 2 - 15
        R = hs / 1.35 * (0.3 + 0.7 * draw(kk, 1))
        off = np.maximum(hs - 1.35 * R, 0)
        gcx = gcx + (2 * draw(kk, 2) - 1) * off / mx[c]
        gcy = gcy + (2 * draw(kk, 3) - 1) * off / my[c]
        phi = np.linspace(0, 2 * np.pi, K_GROVE, endpoint=False)
        wave = (
            0.2 * draw(kk, 4)[:, None] * np.cos(2 * phi[None, :] + 2 * np.pi * draw(kk, 5)[:, None])
        )
        jit = 0.15 * (2 * draw(kk[:, None], 100 + np.arange(K_GROVE)[None, :]) - 1)
        radii = R[:, None] * (1 + wave + jit)
        rings = star_rings(gcx, gcy, mx[c], my[c], radii, np.zeros(len(c)))
        geoms = shapely.polygons(rings) if len(c) else np.empty(0, dtype=object)
        ids = truth_ids(3, i[c], j[c], 1 + q)
        dem, mod = wt.forest_life(seed, ids, np.zeros(len(c), bool), opt)
        nz = np.zeros(len(c), dtype=np.int64)
        parts.append(
            (
                geoms,
                ids,
                np.floor(3 * draw(kk, 30)).astype(np.int64),
                nz,
                dem,
                mod,
                np.full(len(c), None, dtype=object),
                nz,
            )
        )
    names = ("geoms", "truth_id", "height", "holes", "demolished", "modified", "alt", "alt_holes")
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        out = dict.fromkeys(names, z)
        out["geoms"] = out["alt"] = np.empty(0, dtype=object)
        return out
    return {n: np.concatenate(x) for n, x in zip(names, zip(*parts, strict=True), strict=True)}


def _patches(shell: np.ndarray, holes: list, nh: np.ndarray) -> np.ndarray:
    """Polygons of shells (n, K+1, 2) with their first ``nh`` holes of ``holes`` (three
    (n, K_HOLE+1, 2) arrays), by ragged assembly (no per-object loop)."""
    n = len(shell)
    flat = np.concatenate([shell.reshape(-1, 2)] + [hh.reshape(-1, 2) for hh in holes])
    starts = np.stack(
        [np.arange(n) * (K_SHELL + 1)]
        + [n * (K_SHELL + 1) + (m * n + np.arange(n)) * (K_HOLE + 1) for m in range(3)],
        1,
    )
    lens = np.array([K_SHELL + 1] + [K_HOLE + 1] * 3)
    use = np.stack([np.ones(n, bool)] + [nh > m for m in range(3)], 1)  # (n, 4)
    r_start = starts[use]  # row-major: patch by patch, shell first
    r_len = np.broadcast_to(lens, (n, 4))[use]
    pick = np.repeat(r_start - np.cumsum(r_len) + r_len, r_len) + np.arange(r_len.sum())
    coords = flat[pick]
    ring_offsets = np.concatenate([[0], np.cumsum(r_len)])
    geom_offsets = np.concatenate([[0], np.cumsum(use.sum(1))])
    return polygons_ragged(coords, ring_offsets, geom_offsets)


# ----------------------------------------------------------------------------- roads
def _ew_node(seed, i, j):
    k = cell_key(seed, _EW, i, j)
    x = i * ROAD_LON_DEG + (draw(k, 0) - 0.5) * 0.2 * ROAD_LON_DEG
    y = j * ROAD_LAT_DEG + ROAD_LAT_DEG / 2 + (draw(k, 1) - 0.5) * 0.3 * ROAD_LAT_DEG
    return x, y


def _ns_node(seed, i, j):
    k = cell_key(seed, _NS, i, j)
    x = i * ROAD_LON_DEG + ROAD_LON_DEG / 2 + (draw(k, 0) - 0.5) * 0.3 * ROAD_LON_DEG
    y = j * ROAD_LAT_DEG + (draw(k, 1) - 0.5) * 0.2 * ROAD_LAT_DEG
    return x, y


def _meander(key, t, amp):
    """Smooth offsets vanishing at both ends, |offset| ≤ amp."""
    a1 = 0.6 * (2 * draw(key, 10) - 1)[:, None]
    a2 = 0.4 * (2 * draw(key, 11) - 1)[:, None]
    p = 2 * np.pi * draw(key, 12)[:, None]
    return amp * np.sin(np.pi * t) * (a1 + a2 * np.sin(2 * np.pi * t + p))


def _chunks(seed, i, j, ew: bool):
    """(n, ROAD_INNER + 4, 2) vertices of major road chunks (i, j); the two end segments
    are exactly east-west (ew) or north-south, so corridor ends are shared exactly."""
    if ew:
        px, py = _ew_node(seed, i, j)
        qx, qy = _ew_node(seed, i + 1, j)
        key = cell_key(seed, _EWC, i, j)
    else:
        px, py = _ns_node(seed, i, j)
        qx, qy = _ns_node(seed, i, j + 1)
        key = cell_key(seed, _NSC, i, j)
    t = (np.arange(1, ROAD_INNER + 1) / (ROAD_INNER + 1))[None, :]
    if ew:
        d = 0.02 * ROAD_LON_DEG
        xa, xb = px + d, qx - d
        xs = xa[:, None] + (xb - xa)[:, None] * t
        ys = py[:, None] + (qy - py)[:, None] * t + _meander(key, t, 0.1 * ROAD_LAT_DEG)
        x = np.concatenate([px[:, None], xa[:, None], xs, xb[:, None], qx[:, None]], 1)
        y = np.concatenate([py[:, None], py[:, None], ys, qy[:, None], qy[:, None]], 1)
    else:
        d = 0.02 * ROAD_LAT_DEG
        ya, yb = py + d, qy - d
        ys = ya[:, None] + (yb - ya)[:, None] * t
        xs = px[:, None] + (qx - px)[:, None] * t + _meander(key, t, 0.1 * ROAD_LON_DEG)
        x = np.concatenate([px[:, None], px[:, None], xs, qx[:, None], qx[:, None]], 1)
        y = np.concatenate([py[:, None], ya[:, None], ys, yb[:, None], qy[:, None]], 1)
    return np.stack([x, y], -1)


def _road_class(seed, idx, ew: bool):
    k = cell_key(seed, _EW if ew else _NS, idx, -(1 << 40))
    return np.where(draw(k, 5) < 0.35, "trunk", "primary")


def _half_width(cls) -> np.ndarray:
    return np.where(cls == "trunk", ROAD_WIDTH_M["trunk"], ROAD_WIDTH_M["primary"]) / 2


def _corridor_rings(v: np.ndarray, half_w: np.ndarray) -> np.ndarray:
    """Closed mitred corridor rings (n, 2m+1, 2) around polylines v (n, m, 2), half widths
    in metres. Offsets at a vertex depend only on that vertex and its segments, and the
    end segments are axis-aligned, so two chunks meeting at a node share the end edge."""
    lon, lat = v[..., 0], v[..., 1]
    my, mx = meters_per_degree(lat)
    smy, smx = meters_per_degree(0.5 * (lat[:, 1:] + lat[:, :-1]))
    dx = (lon[:, 1:] - lon[:, :-1]) * smx
    dy = (lat[:, 1:] - lat[:, :-1]) * smy
    ln = np.hypot(dx, dy)
    ux, uy = dx / ln, dy / ln
    nx, ny = -uy, ux  # left normals per segment
    # vertex normals: ends take their segment's normal, inner vertices the mitre
    ax = np.concatenate([nx[:, :1], nx[:, :-1] + nx[:, 1:], nx[:, -1:]], 1)
    ay = np.concatenate([ny[:, :1], ny[:, :-1] + ny[:, 1:], ny[:, -1:]], 1)
    al = np.hypot(ax, ay)
    ax, ay = ax / al, ay / al
    ref_x = np.concatenate([nx[:, :1], nx], 1)
    ref_y = np.concatenate([ny[:, :1], ny], 1)
    scale = half_w[:, None] / np.maximum(ax * ref_x + ay * ref_y, 0.5)
    ox, oy = ax * scale / mx, ay * scale / my
    left = np.stack([lon + ox, lat + oy], -1)
    right = np.stack([lon - ox, lat - oy], -1)[:, ::-1]
    return np.concatenate([left, right, left[:, :1]], 1)


def _major_cells(bounds):
    x0, y0, x1, y1 = bounds
    ii = np.arange(int(np.floor(x0 / ROAD_LON_DEG)) - 1, int(np.floor(x1 / ROAD_LON_DEG)) + 2)
    jj = np.arange(int(np.floor(y0 / ROAD_LAT_DEG)) - 1, int(np.floor(y1 / ROAD_LAT_DEG)) + 2)
    gi, gj = np.meshgrid(ii.astype(np.int64), jj.astype(np.int64), indexing="ij")
    return gi.ravel(), gj.ravel()


def major_roads(bounds, seed: int, polygons: bool) -> dict:
    """Major road chunks of the lattice cells around ``bounds`` (a 1-cell margin holds
    every chunk that can reach ``bounds``)."""
    gi, gj = _major_cells(bounds)
    ew = _chunks(seed, gi, gj, True)
    ns = _chunks(seed, gi, gj, False)
    ew_cls = _road_class(seed, gj, True)
    ns_cls = _road_class(seed, gi, False)
    ew_ids = truth_ids(4, gi, gj, 0)
    if not polygons:
        return {
            "geoms": shapely.linestrings(np.concatenate([ew, ns])),
            "truth_id": np.concatenate([ew_ids, truth_ids(5, gi, gj, 0)]),
            "road_type": np.concatenate([ew_cls, ns_cls]),
        }
    ew_hw = _half_width(ew_cls)
    ns_hw = _half_width(ns_cls)
    ew_poly = shapely.polygons(_corridor_rings(ew, ew_hw))
    ns_poly = shapely.polygons(_corridor_rings(ns, ns_hw))
    # a north-south chunk (i, j) crosses exactly the east-west chunk (i, j): cut it there
    cut = shapely.difference(ns_poly, ew_poly)
    pieces, owner = shapely.get_parts(cut, return_index=True)
    cy = shapely.get_y(shapely.centroid(pieces))
    order = np.lexsort((cy, owner))
    pieces, owner = pieces[order], owner[order]
    first = np.searchsorted(owner, owner, side="left")
    part = np.arange(len(owner)) - first
    return {
        "geoms": np.concatenate([ew_poly, pieces]),
        "truth_id": np.concatenate([ew_ids, truth_ids(5, gi[owner], gj[owner], 1 + part)]),
        "road_type": np.concatenate([ew_cls, ns_cls[owner]]),
    }


def major_corridors(bounds, seed: int, extra_m: float = 3.0) -> np.ndarray:
    """Corridor polygons (+ ``extra_m``) of all major roads near ``bounds`` (for keeping
    buildings off the roads)."""
    gi, gj = _major_cells(bounds)
    out = []
    for ew, cls_idx in ((True, gj), (False, gi)):
        v = _chunks(seed, gi, gj, ew)
        hw = _half_width(_road_class(seed, cls_idx, ew)) + extra_m
        out.append(shapely.polygons(_corridor_rings(v, hw)))
    return np.concatenate(out)


def local_streets(bounds, seed: int, density: float, opt: WorldOptions) -> dict:
    """Street lines along the block edges of built-up districts meeting ``bounds``."""
    d = districts(expand_bounds_m(bounds, 20.0), seed, opt)
    kind = d["kind"]
    factor = np.select([kind == URBAN, kind == SUBURBAN, kind == RURAL], [1.0, 0.8, 0.0], 0.7)
    k = np.arange(2 * BLOCKS)
    exists = (
        draw(d["key"][:, None], 600 + k[None, :])
        < np.clip(opt.street_share * density * factor, 0, 1)[:, None]
    )
    di, kk = np.nonzero(exists)
    if len(di) == 0:
        z = np.zeros(0, dtype=np.int64)
        return {"geoms": np.empty(0, dtype=object), "truth_id": z, "road_type": z.astype(str)}
    i, j = d["i"][di], d["j"][di]
    dlon = d["dlon"][di]
    x_w, x_e = i * dlon, (i + 1) * dlon
    y_s, y_n = j * DISTRICT_DEG, (j + 1) * DISTRICT_DEG
    my, mx = meters_per_degree(d["latc"][di])
    horiz = kk < BLOCKS
    m = kk % BLOCKS
    key = d["key"][di]
    jit = 2.5 * (2 * draw(key[:, None], 700 + 3 * kk[:, None] + np.arange(3)[None, :]) - 1)
    t = np.array([0.25, 0.5, 0.75])[None, :]
    # horizontal: along y = y_s + m * BLOCK_DEG; vertical: along x = x_w + m * dlon / 8
    hy = y_s + m * BLOCK_DEG
    vx = x_w + m * dlon / BLOCKS
    hx_in = x_w[:, None] + (x_e - x_w)[:, None] * t
    hy_in = hy[:, None] + jit / my[:, None]
    vy_in = y_s[:, None] + (y_n - y_s)[:, None] * t
    vx_in = vx[:, None] + jit / mx[:, None]
    xs = np.where(
        horiz[:, None],
        np.concatenate([x_w[:, None], hx_in, x_e[:, None]], 1),
        np.concatenate([vx[:, None], vx_in, vx[:, None]], 1),
    )
    ys = np.where(
        horiz[:, None],
        np.concatenate([hy[:, None], hy_in, hy[:, None]], 1),
        np.concatenate([y_s[:, None], vy_in, y_n[:, None]], 1),
    )
    geoms = shapely.linestrings(np.stack([xs, ys], -1))
    ids = truth_ids(6, i, j, kk)
    return {
        "geoms": geoms,
        "truth_id": ids,
        "road_type": np.full(len(di), "residential"),
        "built": wt.street_life(seed, ids, d["hot"][di], d["hot_start"][di], opt),
    }


# ----------------------------------------------------------------------------- small layers
PAST_SITE_SHARE = 0.3  # cells that held a construction site some time before today
HOT_SITE_SHARE = 0.5  # cells of a hot spot that hold one during its window


def construction_objects(bounds, seed: int, density: float, opt: WorldOptions) -> dict:
    """Construction sites: each lives 1–3 years. Today's sites (8 % of the cells) started
    up to that long ago; other cells held one earlier (``PAST_SITE_SHARE``); in a hot spot
    half the cells hold one during its development window."""
    i, j, lon0, lat0, dlon, latc = row_cells(bounds, CONSTRUCTION_CELL_DEG)
    key = cell_key(seed, _CONSTRUCTION, i, j)
    cx = lon0 + dlon / 2
    u = draw(key, 0)
    now = u < np.clip(0.08 * density, 0, 1)
    past = ~now & (u < np.clip((0.08 + PAST_SITE_SHARE) * density, 0, 1))
    d = districts_at(cx, latc, seed, opt)
    hot = d["hot"] & (draw(key, 10) < HOT_SITE_SHARE)
    dur = wt.days_in(draw(key, 11), wt.YEAR, 2 * wt.YEAR)
    built = np.where(
        now,
        wt.END - wt.days_in(draw(key, 12), 0, dur),
        wt.days_in(draw(key, 12), wt.START - wt.YEAR, wt.END - wt.START + wt.YEAR - dur),
    )
    hot_built = wt.days_in(draw(key, 13), d["hot_start"], np.maximum(d["hot_days"] - wt.YEAR, 1))
    built = np.where(hot, hot_built, built)
    demolished = np.where(now & ~hot, wt.NEVER, built + dur)
    demolished = np.where(demolished > wt.END, wt.NEVER, demolished)
    built = np.where(built < wt.START, wt.ALWAYS, built)
    ok = now | past | hot
    i, j, cx, latc, key = (x[ok] for x in (i, j, cx, latc, key))
    a = 20 + 60 * draw(key, 1)
    b = 20 + 50 * draw(key, 2)
    theta = np.pi / 2 * draw(key, 3)
    my, mx = meters_per_degree(latc)
    rings = rect_rings(cx, latc, mx, my, theta, -a, a, -b, b)
    geoms = shapely.polygons(rings) if len(i) else np.empty(0, dtype=object)
    return {
        "geoms": geoms,
        "truth_id": truth_ids(7, i, j, np.zeros(len(i), np.int64)),
        "built": built[ok],
        "demolished": demolished[ok],
    }


def field_objects(bounds, seed: int, density: float, opt: WorldOptions | None = None) -> dict:
    i, j, lon0, lat0, dlon, latc = row_cells(bounds, FIELD_CELL_DEG)
    key = cell_key(seed, _FIELDS, i, j)
    ok = draw(key, 0) < np.clip(0.55 * density, 0, 1)
    i, j, lon0, dlon, latc, key = (x[ok] for x in (i, j, lon0, dlon, latc, key))
    ang = np.linspace(0, 2 * np.pi, 4, endpoint=False)
    rad = 0.55 + 0.45 * draw(key[:, None], 20 + np.arange(4)[None, :])
    rx = dlon * 0.45
    ry = np.full(len(i), FIELD_CELL_DEG * 0.45)
    lon = (lon0 + dlon / 2)[:, None] + rx[:, None] * rad * np.cos(ang)[None, :]
    lat = latc[:, None] + ry[:, None] * rad * np.sin(ang)[None, :]
    ring = np.stack([lon, lat], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    geoms = shapely.polygons(ring) if len(i) else np.empty(0, dtype=object)
    return {"geoms": geoms, "truth_id": truth_ids(8, i, j, np.zeros(len(i), np.int64))}
