"""Damaged answers on demand: result bodies cut short or malformed, and geometry of the
kinds ML models emit (the ``truncated_result``, ``malformed_result`` and
``damaged_geometry`` faults of ``README.md``).

Which world objects are damaged, and how, is a pure function of the simulator's seed,
the fraction asked for and the object's ``truth_id`` (:func:`damage_kinds`), so that
every answer damages the same objects the same way and tests can ask the ground truth
which ones are (``Server.damage``). Every piece of a damaged object is damaged.
"""

from __future__ import annotations

import json

import numpy as np

#: The kinds of damage, in the order the draw picks them.
KINDS = (
    "self_intersecting",  # a polygon ring crossing itself (two vertices swapped: a bow tie)
    "repeated_points",  # every vertex twice
    "empty",  # an empty geometry of the same type
    "null",  # ``"geometry": null``
    "collection",  # a GeometryCollection of the geometry and a stray point
    "z",  # a third coordinate on every vertex
)
_M = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: well-spread 64-bit values from consecutive integers."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (x ^ (x >> np.uint64(31))) & _M


def damage_kinds(truth_ids, seed: int, fraction: float) -> np.ndarray:
    """The damage of each object (``""``: none), drawn from its id and the seed."""
    ids = np.asarray(truth_ids, dtype=np.int64).astype(np.uint64)
    out = np.full(len(ids), "", dtype=object)
    if fraction <= 0 or not len(ids):
        return out
    with np.errstate(over="ignore"):
        h = _mix(ids + np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15))
    hit = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction
    kind = _mix(h) % np.uint64(len(KINDS))
    out[hit] = np.asarray(KINDS, dtype=object)[kind[hit].astype(np.int64)]
    return out


def damage_geometry(geojson: str, kind: str) -> str:
    """A GeoJSON geometry (text) damaged as ``kind`` says (the same when it does not
    apply, e.g. a self-intersection of a line)."""
    g = json.loads(geojson)
    if kind == "null":
        return "null"
    if kind == "empty":
        return json.dumps({"type": g["type"], "coordinates": []})
    if kind == "collection":
        first = _first_point(g["coordinates"])
        point = {"type": "Point", "coordinates": first}
        return json.dumps({"type": "GeometryCollection", "geometries": [g, point]})
    if kind == "z":
        return json.dumps({"type": g["type"], "coordinates": _map_points(g["coordinates"], _z)})
    if kind == "repeated_points":
        return json.dumps({"type": g["type"], "coordinates": _map_lines(g["coordinates"], _twice)})
    if kind == "self_intersecting" and g["type"] in ("Polygon", "MultiPolygon"):
        return json.dumps({"type": g["type"], "coordinates": _map_lines(g["coordinates"], _bowtie)})
    return geojson


def truncate(body: bytes, rng) -> bytes:
    """The body cut somewhere in its second half: what an early-terminated transfer
    leaves (sent with a ``Content-Length`` that matches the cut body)."""
    if len(body) < 4:
        return body[:1]
    return body[: rng.randrange(len(body) // 2, len(body) - 1)]


def malform(body: bytes) -> bytes:
    """The body with one stray comma where the features begin: no longer JSON."""
    head = b'"features":['
    i = body.find(head)
    if i < 0:
        return b"{" + body
    i += len(head)
    return body[:i] + b"," + body[i:]


def _first_point(coords):
    while isinstance(coords, list) and coords and isinstance(coords[0], list):
        coords = coords[0]
    return coords


def _depth(coords) -> int:
    d = 0
    while isinstance(coords, list) and coords and isinstance(coords[0], list):
        coords, d = coords[0], d + 1
    return d


def _map_points(coords, fn):
    if _depth(coords) == 0:
        return fn(coords)
    return [_map_points(c, fn) for c in coords]


def _map_lines(coords, fn):
    """Apply ``fn`` to every list of points (a ring or a line string)."""
    if _depth(coords) <= 1:
        return fn(coords)
    return [_map_lines(c, fn) for c in coords]


def _z(point):
    return [*point[:2], 0.0]


def _twice(points):
    return [p for p in points for _ in (0, 1)]


def _bowtie(ring):
    """Swap a ring's second and third vertices: the ring now crosses itself."""
    if len(ring) < 5:  # a triangle cannot be made to cross itself this way
        return ring
    return [ring[0], ring[2], ring[1], *ring[3:]]
