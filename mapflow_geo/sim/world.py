"""The simulator's world: objects are a deterministic function of location.

Every layer lives on a seeded global grid. Whether a grid cell holds an object, and the
object's size, rotation and class, come from a hash of ``(seed, layer, cell i, cell j)``.
A result is the world's objects clipped to the AOI, so the same building comes back
whichever AOI covers it, and a building that straddles a tile seam comes back as two
clipped pieces whose union is the whole building.

Filtering rules (e.g. "buildings under 20 m² are dropped") apply to the WHOLE world
object before clipping, never to clipped pieces, so tiling never loses objects.

All generation is vectorised (numpy + shapely 2 array functions).
"""

from __future__ import annotations

import numpy as np
import shapely

from .geo import local_areas_m2, local_lengths_m, meters_per_degree

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)

# layer salts
_BUILDINGS, _FOREST, _ROADS, _CONSTRUCTION, _FIELDS, _BLOCKS = 11, 23, 37, 41, 53, 67

BUILDING_CELL_DEG = 0.0008  # ≈ 89 m north-south; columns are scaled per row to be square
FOREST_CELL_DEG = 0.0025  # ≈ 280 m
ROAD_STEP_DEG = 0.004  # ≈ 450 m
CONSTRUCTION_CELL_DEG = 0.004
FIELD_CELL_DEG = 0.004
DENSITY_BLOCK_DEG = 0.01  # ≈ 1 km blocks modulating building density

MIN_BUILDING_AREA_M2 = 20.0


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


def hash64(seed: int, layer: int, i: np.ndarray, j: np.ndarray, k: int = 0) -> np.ndarray:
    i = np.asarray(i, dtype=np.int64).astype(np.uint64)
    j = np.asarray(j, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(
            np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
            ^ np.uint64(layer * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF)
        )
        h = _mix(h ^ (i * np.uint64(0xD6E8FEB86659FD93)))
        h = _mix(h ^ (j * np.uint64(0xA0761D6478BD642F)))
        h = _mix(h ^ np.uint64(k * 0xE7037ED1A0B428DB & 0xFFFFFFFFFFFFFFFF))
    return h


def uniform(seed: int, layer: int, i, j, k: int = 0) -> np.ndarray:
    """Deterministic U[0,1) per (seed, layer, i, j, k)."""
    return (hash64(seed, layer, i, j, k) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# ----------------------------------------------------------------------------- grids
def _row_cells(bounds, d_lat: float):
    """Cells of a row-scaled global grid that meet ``bounds``.

    Row ``j`` spans latitudes ``[j*d, (j+1)*d)``; its columns are ``d / cos(lat_j)`` wide
    so cells are roughly square on the ground. Returns i, j, cell lon0, lat0, dlon, and the
    centre latitude.
    """
    x0, y0, x1, y1 = bounds
    j0, j1 = int(np.floor(y0 / d_lat)), int(np.floor(y1 / d_lat))
    rows = np.arange(j0, j1 + 1, dtype=np.int64)
    lat_c = (rows + 0.5) * d_lat
    dlon = d_lat / np.maximum(np.cos(np.radians(lat_c)), 0.05)
    i0 = np.floor(x0 / dlon).astype(np.int64)
    i1 = np.floor(x1 / dlon).astype(np.int64)
    counts = i1 - i0 + 1
    n = int(counts.sum())
    j = np.repeat(rows, counts)
    starts = np.repeat(i0, counts)
    offs = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    i = starts + offs
    dl = np.repeat(dlon, counts)
    return i, j, i * dl, j * d_lat, dl, (j + 0.5) * d_lat


def _rect_coords(cx, cy, a, b, theta):
    """(n, 5, 2) lon/lat rings of rotated rectangles given metric half-sides a, b."""
    my, mx = meters_per_degree(cy)
    ca, sa = np.cos(theta), np.sin(theta)
    sx = np.array([1, -1, -1, 1, 1], dtype=float)
    sy = np.array([1, 1, -1, -1, 1], dtype=float)
    dx = a[:, None] * sx[None, :] * ca[:, None] - b[:, None] * sy[None, :] * sa[:, None]
    dy = a[:, None] * sx[None, :] * sa[:, None] + b[:, None] * sy[None, :] * ca[:, None]
    lon = cx[:, None] + dx / mx[:, None]
    lat = cy[:, None] + dy / my[:, None]
    return np.stack([lon, lat], axis=-1)


def _clip(geoms: np.ndarray, aoi: shapely.Geometry, polygonal: bool = True):
    """Clip world objects to the AOI. Returns (pieces, index of the world object)."""
    if len(geoms) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    shapely.prepare(aoi)
    idx = np.nonzero(shapely.intersects(aoi, geoms))[0]
    g = geoms[idx]
    inside = shapely.contains_properly(aoi, g)
    out = g.copy()
    if (~inside).any():
        out[~inside] = shapely.intersection(g[~inside], aoi)
    keep = np.ones(len(out), dtype=bool)
    tid = shapely.get_type_id(out)
    want = (3, 6) if polygonal else (1, 5)
    for n in np.nonzero(~np.isin(tid, want))[0]:
        piece = out[n]
        parts = [p for p in shapely.get_parts(piece) if shapely.get_type_id(p) in want]
        if not parts:
            keep[n] = False
        elif polygonal:
            out[n] = shapely.multipolygons(parts) if len(parts) > 1 else parts[0]
        else:
            out[n] = shapely.multilinestrings(parts) if len(parts) > 1 else parts[0]
    out, idx = out[keep], idx[keep]
    if polygonal:
        ok = shapely.area(out) > 0
    else:
        ok = shapely.length(out) > 0
    return out[ok], idx[ok]


# ----------------------------------------------------------------------------- layers
def world_buildings(bounds, seed: int, density: float = 1.0):
    """Whole world buildings whose cells meet ``bounds`` (before the 20 m² rule)."""
    i, j, lon0, lat0, dlon, latc = _row_cells(bounds, BUILDING_CELL_DEG)
    # density: ~1 km blocks with their own factor
    bi = np.floor((lon0 + dlon / 2) / DENSITY_BLOCK_DEG).astype(np.int64)
    bj = np.floor(latc / DENSITY_BLOCK_DEG).astype(np.int64)
    factor = 0.25 + 0.75 * uniform(seed, _BLOCKS, bi, bj)
    p = np.clip(0.8 * factor * density, 0.0, 1.0)
    exists = uniform(seed, _BUILDINGS, i, j, 0) < p
    i, j, lon0, lat0, dlon, latc = (x[exists] for x in (i, j, lon0, lat0, dlon, latc))
    n = len(i)
    my, mx = meters_per_degree(latc)
    half_w_m = dlon * mx / 2
    half_h_m = BUILDING_CELL_DEG * my / 2
    a = 2.0 + 18.0 * uniform(seed, _BUILDINGS, i, j, 1) ** 1.5
    b = 2.0 + (a - 2.0) * (0.3 + 0.6 * uniform(seed, _BUILDINGS, i, j, 2))
    theta = np.pi / 2 * uniform(seed, _BUILDINGS, i, j, 3)
    r = np.sqrt(a * a + b * b)
    span_x = np.maximum(half_w_m - r - 1.0, 0.0)
    span_y = np.maximum(half_h_m - r - 1.0, 0.0)
    offx = (2 * uniform(seed, _BUILDINGS, i, j, 4) - 1) * span_x
    offy = (2 * uniform(seed, _BUILDINGS, i, j, 5) - 1) * span_y
    cx = lon0 + dlon / 2 + offx / mx
    cy = lat0 + BUILDING_CELL_DEG / 2 + offy / my
    coords = _rect_coords(cx, cy, a, b, theta)
    geoms = shapely.polygons(coords) if n else np.empty(0, dtype=object)
    area = 4 * a * b
    u_cls = uniform(seed, _BUILDINGS, i, j, 6)
    cls = np.select(
        [u_cls < 0.15, u_cls < 0.65, u_cls < 0.80, u_cls < 0.90], [101, 102, 103, 104], 105
    )
    score = 0.5 + 0.5 * uniform(seed, _BUILDINGS, i, j, 7)
    return {"geoms": geoms, "area": area, "class_id": cls, "score": score}


def buildings(aoi, seed: int, density: float = 1.0, classification=True, simplification=True):
    w = world_buildings(aoi.bounds, seed, density)
    keep = w["area"] >= MIN_BUILDING_AREA_M2  # the rule applies to WHOLE world buildings
    geoms = w["geoms"][keep]
    pieces, idx = _clip(geoms, aoi)
    areas = local_areas_m2(pieces)
    cls = w["class_id"][keep][idx]
    score = w["score"][keep][idx]
    props = []
    for n in range(len(pieces)):
        p = {"area": int(round(areas[n])), "object_type": "buildings"}
        if classification:
            p["class_id"] = str(int(cls[n]))
        if simplification:
            p["shape_type"] = "rectangle"
            p["simplification_confidence_score"] = round(float(score[n]), 3)
        props.append(p)
    return pieces, props


def _blob_coords(cx, cy, rx, ry, seed, layer, i, j, k=8):
    """(n, k+1, 2) irregular star-convex polygons within an ellipse rx, ry (degrees)."""
    ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
    rad = np.stack([0.55 + 0.45 * uniform(seed, layer, i, j, 20 + m) for m in range(k)], axis=1)
    lon = cx[:, None] + rx[:, None] * rad * np.cos(ang)[None, :]
    lat = cy[:, None] + ry[:, None] * rad * np.sin(ang)[None, :]
    ring = np.stack([lon, lat], axis=-1)
    return np.concatenate([ring, ring[:, :1]], axis=1)


HEIGHT_CLASSES = ("00m-04m", "04m-10m", "10m-99m")


def forest(aoi, seed: int, density: float = 1.0, heights: bool = False):
    i, j, lon0, lat0, dlon, latc = _row_cells(aoi.bounds, FOREST_CELL_DEG)
    exists = uniform(seed, _FOREST, i, j, 0) < np.clip(0.45 * density, 0, 1)
    i, j, lon0, dlon, latc = (x[exists] for x in (i, j, lon0, dlon, latc))
    cx = lon0 + dlon / 2
    coords = _blob_coords(
        cx, latc, dlon * 0.48, np.full(len(i), FOREST_CELL_DEG * 0.48), seed, _FOREST, i, j
    )
    geoms = shapely.polygons(coords) if len(i) else np.empty(0, dtype=object)
    hcls = np.floor(3 * uniform(seed, _FOREST, i, j, 1)).astype(int)
    pieces, idx = _clip(geoms, aoi)
    areas = local_areas_m2(pieces)
    props = []
    for n in range(len(pieces)):
        p = {"area": int(round(areas[n])), "object_type": "forest"}
        if heights:
            p["class"] = HEIGHT_CLASSES[hcls[idx[n]]]
        props.append(p)
    return pieces, props


def _road_nodes(seed, i, j):
    s = ROAD_STEP_DEG
    jx = (uniform(seed, _ROADS, i, j, 1) - 0.5) * 0.3 * s
    jy = (uniform(seed, _ROADS, i, j, 2) - 0.5) * 0.3 * s
    return i * s + jx, j * s + jy


def roads(aoi, seed: int, density: float = 1.0):
    s = ROAD_STEP_DEG
    x0, y0, x1, y1 = aoi.bounds
    ii = np.arange(int(np.floor(x0 / s)) - 1, int(np.floor(x1 / s)) + 2, dtype=np.int64)
    jj = np.arange(int(np.floor(y0 / s)) - 1, int(np.floor(y1 / s)) + 2, dtype=np.int64)
    gi, gj = np.meshgrid(ii, jj, indexing="ij")
    gi, gj = gi.ravel(), gj.ravel()
    p = np.clip(0.65 * density, 0, 1)
    segs = []
    kinds = []
    for direction, (di, dj) in enumerate(((1, 0), (0, 1))):
        ex = uniform(seed, _ROADS, gi, gj, 10 + direction) < p
        ai, aj = gi[ex], gj[ex]
        bi, bj = ai + di, aj + dj
        ax, ay = _road_nodes(seed, ai, aj)
        bx, by = _road_nodes(seed, bi, bj)
        segs.append(np.stack([np.stack([ax, ay], -1), np.stack([bx, by], -1)], axis=1))
        kinds.append(
            np.where(uniform(seed, _ROADS, ai, aj, 20 + direction) < 0.2, "primary", "residential")
        )
    coords = np.concatenate(segs, axis=0)
    kind = np.concatenate(kinds)
    geoms = shapely.linestrings(coords) if len(coords) else np.empty(0, dtype=object)
    pieces, idx = _clip(geoms, aoi, polygonal=False)
    lengths = local_lengths_m(pieces)
    props = [
        {
            "object_type": "roads",
            "road_type": str(kind[idx[n]]),
            "length": round(float(lengths[n]), 1),
        }
        for n in range(len(pieces))
    ]
    return pieces, props


def construction(aoi, seed: int, density: float = 1.0):
    i, j, lon0, lat0, dlon, latc = _row_cells(aoi.bounds, CONSTRUCTION_CELL_DEG)
    exists = uniform(seed, _CONSTRUCTION, i, j, 0) < np.clip(0.08 * density, 0, 1)
    i, j, lon0, dlon, latc = (x[exists] for x in (i, j, lon0, dlon, latc))
    a = 20 + 60 * uniform(seed, _CONSTRUCTION, i, j, 1)
    b = 20 + 50 * uniform(seed, _CONSTRUCTION, i, j, 2)
    theta = np.pi / 2 * uniform(seed, _CONSTRUCTION, i, j, 3)
    coords = _rect_coords(lon0 + dlon / 2, latc, a, b, theta)
    geoms = shapely.polygons(coords) if len(i) else np.empty(0, dtype=object)
    pieces, idx = _clip(geoms, aoi)
    areas = local_areas_m2(pieces)
    props = [
        {"area": int(round(areas[n])), "object_type": "construction"} for n in range(len(pieces))
    ]
    return pieces, props


def fields(aoi, seed: int, density: float = 1.0):
    i, j, lon0, lat0, dlon, latc = _row_cells(aoi.bounds, FIELD_CELL_DEG)
    exists = uniform(seed, _FIELDS, i, j, 0) < np.clip(0.55 * density, 0, 1)
    i, j, lon0, dlon, latc = (x[exists] for x in (i, j, lon0, dlon, latc))
    cx = lon0 + dlon / 2
    coords = _blob_coords(
        cx, latc, dlon * 0.45, np.full(len(i), FIELD_CELL_DEG * 0.45), seed, _FIELDS, i, j, k=4
    )
    geoms = shapely.polygons(coords) if len(i) else np.empty(0, dtype=object)
    pieces, idx = _clip(geoms, aoi)
    areas = local_areas_m2(pieces)
    props = [{"area": int(round(areas[n])), "object_type": "fields"} for n in range(len(pieces))]
    return pieces, props


def generate(kind: str, aoi, seed: int, density: float = 1.0, blocks: dict | None = None):
    """World objects of ``kind`` clipped to ``aoi``: (geometries array, property dicts)."""
    blocks = blocks or {}
    if kind == "buildings":
        return buildings(
            aoi,
            seed,
            density,
            classification=blocks.get("Classification", True),
            simplification=blocks.get("Simplification", True),
        )
    if kind in ("forest", "forest_heights"):
        return forest(
            aoi, seed, density, heights=kind == "forest_heights" or blocks.get("Heights", False)
        )
    if kind == "roads":
        return roads(aoi, seed, density)
    if kind == "construction":
        return construction(aoi, seed, density)
    if kind == "fields":
        return fields(aoi, seed, density)
    return buildings(aoi, seed, density)
