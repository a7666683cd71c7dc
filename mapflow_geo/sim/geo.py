"""Geometry helpers of the simulator: GeoJSON parsing, geodesic areas, the limit rules.

Independent of the rest of the package on purpose (the simulator is a second,
independent implementation of the service's rules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import mapping, shape

GEOD = Geod(ellps="WGS84")

# WGS84 ellipsoid, for the fast local metric scale used by result properties
_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)


class GeometryError(ValueError):
    """The request's geometry cannot be used (not GeoJSON, not polygonal, invalid)."""


def polygons_from_geojson(obj: Any) -> list[shapely.Polygon]:
    """Polygons of a GeoJSON geometry / Feature / FeatureCollection / GeometryCollection.

    Each polygon of a MultiPolygon is one AOI. Raises :class:`GeometryError`.
    """
    if isinstance(obj, str):
        raise GeometryError("geometry must be a GeoJSON object, not a string")
    if not isinstance(obj, dict):
        raise GeometryError("geometry must be a GeoJSON object")
    gtype = obj.get("type")
    if gtype == "Feature":
        return polygons_from_geojson(obj.get("geometry"))
    if gtype == "FeatureCollection":
        out: list[shapely.Polygon] = []
        for feat in obj.get("features") or []:
            out.extend(polygons_from_geojson(feat))
        if not out:
            raise GeometryError("FeatureCollection holds no polygons")
        return out
    if gtype == "GeometryCollection":
        out = []
        for g in obj.get("geometries") or []:
            out.extend(polygons_from_geojson(g))
        if not out:
            raise GeometryError("GeometryCollection holds no polygons")
        return out
    if gtype not in ("Polygon", "MultiPolygon"):
        raise GeometryError(
            f"geometry type {gtype!r} is not supported; use Polygon or MultiPolygon"
        )
    try:
        geom = shape(obj)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad request
        raise GeometryError(f"cannot parse geometry: {exc}") from None
    polys = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
    for p in polys:
        if p.is_empty:
            raise GeometryError("empty polygon")
        coords = np.asarray(p.exterior.coords)
        if not np.all(np.isfinite(coords)):
            raise GeometryError("non-finite coordinates")
        if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
            raise GeometryError("coordinates out of range (expected EPSG:4326 lon/lat)")
        if not p.is_valid:
            raise GeometryError(f"invalid polygon: {shapely.is_valid_reason(p)}")
        if p.area <= 0:
            raise GeometryError("polygon has zero area")
    return polys


def geodesic_area(poly: shapely.Polygon) -> float:
    """Ellipsoidal (WGS84) area in m² of a lon/lat polygon."""
    area, _ = GEOD.geometry_area_perimeter(poly)
    return abs(area)


def bbox_area(poly: shapely.Polygon) -> float:
    """Ellipsoidal area in m² of the polygon's lat/lon bounding box."""
    x0, y0, x1, y1 = poly.bounds
    return geodesic_area(shapely.box(x0, y0, x1, y1))


def to_geojson(geom: shapely.Geometry) -> dict:
    g = mapping(geom)
    # tuples → lists, so the JSON and stored state look alike
    return _listify(g)


def _listify(o: Any) -> Any:
    if isinstance(o, (list, tuple)):
        return [_listify(x) for x in o]
    if isinstance(o, dict):
        return {k: _listify(v) for k, v in o.items()}
    return o


def meters_per_degree(lat_deg: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(m per degree of latitude, m per degree of longitude) on WGS84 at ``lat_deg``."""
    phi = np.radians(lat_deg)
    s2 = np.sin(phi) ** 2
    w = np.sqrt(1 - _E2 * s2)
    m_merid = _A * (1 - _E2) / w**3  # meridional radius of curvature
    n_prime = _A / w  # prime vertical radius
    k = math.pi / 180
    return m_merid * k, n_prime * np.cos(phi) * k


def local_areas_m2(geoms: np.ndarray) -> np.ndarray:
    """Fast metric areas (m²) of small lon/lat geometries (local ellipsoidal scale)."""
    if len(geoms) == 0:
        return np.zeros(0)
    a_deg = shapely.area(geoms)
    lat = shapely.get_y(shapely.centroid(geoms))
    lat = np.where(np.isfinite(lat), lat, 0.0)
    my, mx = meters_per_degree(lat)
    return a_deg * my * mx


def local_lengths_m(geoms: np.ndarray) -> np.ndarray:
    """Geodesic length (m) of lon/lat (multi)lines, vectorised over all segments."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    coords, part = shapely.get_coordinates(parts, return_index=True)
    if len(coords) < 2:
        return np.zeros(len(geoms))
    same = part[1:] == part[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    _, _, d = GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    per_part = np.bincount(part[:-1][same], weights=np.asarray(d), minlength=len(parts))
    return np.bincount(owner, weights=per_part, minlength=len(geoms))


@dataclass
class AreaCheck:
    total_m2: float
    areas_m2: list[float]
    bbox_m2: list[float]


def measure(polys: list[shapely.Polygon]) -> AreaCheck:
    areas = [geodesic_area(p) for p in polys]
    bboxes = [bbox_area(p) for p in polys]
    return AreaCheck(total_m2=float(sum(areas)), areas_m2=areas, bbox_m2=bboxes)
