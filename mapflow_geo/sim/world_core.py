"""Building blocks of the simulator's world: hashing, grids, options, ids, geometry arrays.

Everything here is vectorised over numpy arrays; nothing depends on the query bbox
except *which* cells are enumerated, so every object is the same whichever bbox asks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import shapely

from .geo import meters_per_degree

# ----------------------------------------------------------------------------- hashing
_C_LAYER = 0x9E3779B97F4A7C15
_C_I = 0xD6E8FEB86659FD93
_C_J = 0xA0761D6478BD642F
_C_K = 0xE7037ED1A0B428DB
_MASK = 0xFFFFFFFFFFFFFFFF


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


def _u64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.int64).astype(np.uint64)


def cell_key(seed: int, layer: int, i, j) -> np.ndarray:
    """A 64-bit key per (seed, layer, cell i, cell j); draws derive from it with :func:`draw`."""
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed & _MASK) ^ np.uint64(layer * _C_LAYER & _MASK))
        h = _mix(h ^ (_u64(i) * np.uint64(_C_I)))
        h = _mix(h ^ (_u64(j) * np.uint64(_C_J)))
    return h


def draw_bits(key: np.ndarray, k) -> np.ndarray:
    """64 random bits per key for draw number ``k`` (scalar or array broadcast with key)."""
    with np.errstate(over="ignore"):
        return _mix(key ^ (_u64(k) * np.uint64(_C_K) + np.uint64(0x632BE59BD9B4E019)))


def draw(key: np.ndarray, k) -> np.ndarray:
    """Deterministic U[0, 1) for draw number ``k`` of each key."""
    return (draw_bits(key, k) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def hash64(seed: int, layer: int, i, j, k=0) -> np.ndarray:
    """64-bit hash of (seed, layer, i, j, k) (``k`` may be an array)."""
    return draw_bits(cell_key(seed, layer, i, j), k)


def uniform(seed: int, layer: int, i, j, k=0) -> np.ndarray:
    """Deterministic U[0,1) per (seed, layer, i, j, k)."""
    return (hash64(seed, layer, i, j, k) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# ----------------------------------------------------------------------------- truth ids
# truth_id = layer << 49 | (j + 2**17) << 31 | (i + 2**18) << 12 | k   (always < 2**53, so
# the ids survive JSON readers that hold numbers as doubles, e.g. JavaScript)
_J_BITS, _I_BITS, _K_BITS = 18, 19, 12
_J_OFF, _I_OFF = 1 << (_J_BITS - 1), 1 << (_I_BITS - 1)
_K_SHIFT, _I_SHIFT = 0, _K_BITS
_J_SHIFT = _K_BITS + _I_BITS
_L_SHIFT = _J_SHIFT + _J_BITS
LAYER_NAMES = {
    1: "building",
    2: "industrial",
    3: "forest",
    4: "road_ew",
    5: "road_ns",
    6: "street",
    7: "construction",
    8: "field",
    9: "building_rebuilt",  # a building rebuilt after its demolition (same block, same k)
    10: "industrial_rebuilt",
}


REBUILT_LAYER_OFFSET = 8  # a rebuilt building's layer: its predecessor's + 8


def rebuilt_ids(ids) -> np.ndarray:
    """Truth ids of the buildings rebuilt on the footprints of ``ids`` (layer + 8)."""
    return np.asarray(ids, dtype=np.int64) + (np.int64(REBUILT_LAYER_OFFSET) << _L_SHIFT)


def truth_ids(layer: int, i, j, k) -> np.ndarray:
    """Stable int64 ids from (layer, generating cell i, j, index k within the cell)."""
    i = np.asarray(i, dtype=np.int64) + _I_OFF
    j = np.asarray(j, dtype=np.int64) + _J_OFF
    k = np.asarray(k, dtype=np.int64)
    if np.any(
        (i < 0) | (i >> _I_BITS > 0) | (j < 0) | (j >> _J_BITS > 0) | (k < 0) | (k >> _K_BITS > 0)
    ):
        raise ValueError("cell index out of the truth-id range")
    return (np.int64(layer) << _L_SHIFT) | (j << _J_SHIFT) | (i << _I_SHIFT) | k


def decode_truth_ids(ids) -> dict[str, np.ndarray]:
    """(layer, i, j, k) of truth ids, the inverse of :func:`truth_ids`."""
    ids = np.asarray(ids, dtype=np.int64)
    return {
        "layer": ids >> _L_SHIFT,
        "j": ((ids >> _J_SHIFT) & ((1 << _J_BITS) - 1)) - _J_OFF,
        "i": ((ids >> _I_SHIFT) & ((1 << _I_BITS) - 1)) - _I_OFF,
        "k": ids & ((1 << _K_BITS) - 1),
    }


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class WorldOptions:
    """The world's mix. ``density`` (the simulator option) multiplies every density.

    Districts (≈1.1 km cells) are urban, suburban, industrial or rural with the given shares
    (the rest is rural); densities are buildings per km² of such a district before the
    "under 20 m²" rule.
    """

    urban_density: float = 2000.0
    suburban_density: float = 450.0
    rural_density: float = 60.0
    industrial_density: float = 60.0  # medium sheds per km², besides the large footprints
    urban_share: float = 0.12
    suburban_share: float = 0.22
    industrial_share: float = 0.06
    attached_share: float = 0.75  # urban blocks of attached buildings (perimeter or terraced)
    perimeter_share: float = 0.5  # of those, perimeter blocks around a courtyard
    terraced_suburb_share: float = 0.2  # suburban blocks of terraced rows
    large_industrial_share: float = 0.7  # each half of an industrial district: one large footprint
    forest_share: float = 0.3  # 2.2 km forest cells holding one large patch (with clearings)
    grove_share: float = 0.12  # ≈550 m sub-cells of the other forest cells holding a grove
    street_share: float = 0.85  # candidate local streets that exist in built-up districts
    road_geometry: str = "lines"  # "lines" | "polygons" | "mixed" (see world.roads)
    # ---- time (world_time): change from 2015-01-01 to 2026-12-31; rates are per year
    hotspot_share: float = 0.08  # built-up districts that are development hot spots
    hotspot_years: float = 4.0  # longest development window of a hot spot (≥ 1.5 years)
    new_building_rate: float = 0.006  # background: buildings built per standing building
    demolition_rate: float = 0.003  # background: free-standing buildings demolished
    rebuild_share: float = 0.6  # of the demolished ones, rebuilt (a new truth_id) later
    extension_rate: float = 0.006  # buildings extended (a bigger footprint, a new version)
    new_street_rate: float = 0.004  # background: local streets built
    grove_clearing_rate: float = 0.01  # small forest patches cleared
    clearing_growth_rate: float = 0.03  # large forest patches whose clearing grows / appears

    @classmethod
    def of(cls, options: Any = None, **overrides: Any) -> WorldOptions:
        """WorldOptions from None, a dict, or a WorldOptions, with keyword overrides."""
        if options is None:
            base = cls()
        elif isinstance(options, cls):
            base = options
        elif isinstance(options, dict):
            base = cls()
            overrides = {**options, **overrides}
        else:
            raise TypeError(f"world options must be a dict or WorldOptions, not {type(options)}")
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown world options: {sorted(unknown)}")
        out = replace(base, **overrides) if overrides else base
        out.check()
        return out

    def check(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "road_geometry":
                if v not in ("lines", "polygons", "mixed"):
                    raise ValueError("road_geometry must be 'lines', 'polygons' or 'mixed'")
            elif not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"world option {f.name} must be a finite number ≥ 0")
        if self.urban_share + self.suburban_share + self.industrial_share > 1 + 1e-9:
            raise ValueError("urban_share + suburban_share + industrial_share must be ≤ 1")
        for name in (
            "attached_share",
            "perimeter_share",
            "terraced_suburb_share",
            "large_industrial_share",
            "forest_share",
            "grove_share",
            "street_share",
            "hotspot_share",
            "rebuild_share",
        ):
            if getattr(self, name) > 1:
                raise ValueError(f"world option {name} must be ≤ 1")
        if self.hotspot_years < 1.5:
            raise ValueError("world option hotspot_years must be ≥ 1.5")

    def as_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- grids
def row_cells(bounds, d_lat: float):
    """Cells of a row-scaled global grid that meet ``bounds``.

    Row ``j`` spans latitudes ``[j*d, (j+1)*d)``; its columns are ``d / cos(lat_j)`` wide
    so cells are roughly square on the ground. Returns i, j, cell lon0, lat0, dlon, and the
    centre latitude.
    """
    x0, y0, x1, y1 = bounds
    j0, j1 = int(np.floor(y0 / d_lat)), int(np.floor(y1 / d_lat))
    rows = np.arange(j0, j1 + 1, dtype=np.int64)
    lat_c = (rows + 0.5) * d_lat
    dlon = row_dlon(rows, d_lat)
    i0 = np.floor(x0 / dlon).astype(np.int64)
    i1 = np.floor(x1 / dlon).astype(np.int64)
    counts = i1 - i0 + 1
    n = int(counts.sum())
    j = np.repeat(rows, counts)
    starts = np.repeat(i0, counts)
    offs = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    i = starts + offs
    dl = np.repeat(dlon, counts)
    del lat_c
    return i, j, i * dl, j * d_lat, dl, (j + 0.5) * d_lat


def row_dlon(rows, d_lat: float) -> np.ndarray:
    """Column width (degrees of longitude) of rows ``rows`` of a row-scaled grid."""
    lat_c = (np.asarray(rows, dtype=np.int64) + 0.5) * d_lat
    return d_lat / np.maximum(np.cos(np.radians(lat_c)), 0.05)


def expand_bounds_m(bounds, margin_m: float):
    """``bounds`` grown by ``margin_m`` metres on every side (safe towards the poles)."""
    x0, y0, x1, y1 = bounds
    my, _ = meters_per_degree(0.0)
    dlat = margin_m / float(my)
    lat = min(89.0, max(abs(y0), abs(y1)) + dlat)
    _, mx = meters_per_degree(lat)
    dlon = margin_m / max(float(mx), 1.0)
    return (x0 - dlon, y0 - dlat, x1 + dlon, y1 + dlat)


def to_lonlat(cx, cy, mx, my, theta, x, y):
    """Local metric (x, y) in a frame rotated by ``theta`` about (cx, cy) → lon, lat.

    All arguments broadcast; ``x``, ``y`` are (n, m) arrays and the rest (n,) arrays. The
    same (x, y) values always give bit-identical lon/lat, so shared walls stay shared.
    """
    return to_lonlat_cs(cx, cy, mx, my, np.cos(theta), np.sin(theta), x, y)


def to_lonlat_cs(cx, cy, mx, my, c, s, x, y):
    """:func:`to_lonlat` with the rotation's cosine and sine given (per row): the same
    (x, y) and (c, s) values always give bit-identical lon/lat, whatever the array."""
    c, s = c[:, None], s[:, None]
    dx = x * c - y * s
    dy = x * s + y * c
    return cx[:, None] + dx / mx[:, None], cy[:, None] + dy / my[:, None]


def rect_rings(cx, cy, mx, my, theta, x0, x1, y0, y1) -> np.ndarray:
    """(n, 5, 2) lon/lat rings of rectangles [x0, x1] × [y0, y1] in rotated local frames."""
    xs = np.stack([x0, x1, x1, x0, x0], axis=1)
    ys = np.stack([y0, y0, y1, y1, y0], axis=1)
    lon, lat = to_lonlat(cx, cy, mx, my, theta, xs, ys)
    return np.stack([lon, lat], axis=-1)


def fit_rotated(hx, hy, theta):
    """Half sides (a, b) of the largest rectangle rotated by ``theta`` inside ±hx × ±hy
    whose sides keep the proportions of the box (solved exactly, then shrunk a hair)."""
    c, s = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    det = c * c - s * s  # > 0 for |theta| < 45°
    a = (c * hx - s * hy) / det
    b = (c * hy - s * hx) / det
    # a, b may get small for very elongated boxes: fall back on a uniform shrink
    k = np.minimum(hx / (hx * c + hy * s), hy / (hx * s + hy * c))
    bad = (a <= 0.5 * k * hx) | (b <= 0.5 * k * hy)
    a = np.where(bad, k * hx, a) * (1 - 1e-9)
    b = np.where(bad, k * hy, b) * (1 - 1e-9)
    return a, b


def polygons_ragged(coords: np.ndarray, ring_offsets: np.ndarray, geom_offsets: np.ndarray):
    """Polygons (with holes) from flat coordinates and offsets (shapely ragged arrays)."""
    if len(geom_offsets) <= 1:
        return np.empty(0, dtype=object)
    return shapely.from_ragged_array(
        shapely.GeometryType.POLYGON,
        np.ascontiguousarray(coords, dtype=np.float64),
        (np.asarray(ring_offsets, dtype=np.int64), np.asarray(geom_offsets, dtype=np.int64)),
    )


def bounds_of_rings(rings: np.ndarray) -> np.ndarray:
    """(n, 4) bounds of (n, m, 2) coordinate arrays."""
    if len(rings) == 0:
        return np.zeros((0, 4))
    mn = rings.min(axis=1)
    mx = rings.max(axis=1)
    return np.concatenate([mn, mx], axis=1)


def bbox_hit(b: np.ndarray, bounds) -> np.ndarray:
    """Rows of an (n, 4) bounds array that meet ``bounds`` (closed boxes)."""
    x0, y0, x1, y1 = bounds
    return (b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)


def star_rings(cx, cy, mx, my, radii: np.ndarray, phase) -> np.ndarray:
    """(n, K+1, 2) closed star-shaped rings around (cx, cy) with metric ``radii`` (n, K)."""
    k = radii.shape[1]
    ang = np.asarray(phase)[:, None] + np.linspace(0, 2 * np.pi, k, endpoint=False)[None, :]
    lon = cx[:, None] + radii * np.cos(ang) / mx[:, None]
    lat = cy[:, None] + radii * np.sin(ang) / my[:, None]
    ring = np.stack([lon, lat], axis=-1)
    return np.concatenate([ring, ring[:, :1]], axis=1)
