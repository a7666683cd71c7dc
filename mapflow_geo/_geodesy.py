"""Geodesic areas on the WGS84 ellipsoid, the way Mapflow measures them.

Mapflow measures areas in m² on the WGS84 ellipsoid. Everything here returns km².

* :func:`geodesic_area_km2` — exact geodesic area of (Multi)Polygons with
  :class:`pyproj.Geod` (edges are geodesics between consecutive vertices).
* :func:`bbox_area_km2` — geodesic area of the lat/lon bounding box of each geometry
  (the 4-corner polygon, measured with :class:`pyproj.Geod`).
* :func:`rect_area_km2` — closed-form area of lat/lon rectangles bounded by parallels
  and meridians; vectorised, used for sizing and quick tests (it differs from the
  geodesic 4-corner polygon by far less than the planner's safety margin for the
  small rectangles the planner makes).
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from pyproj import Geod

GEOD = Geod(ellps="WGS84")
_A = GEOD.a
_E2 = GEOD.es
_E = math.sqrt(_E2)
_B2 = _A * _A * (1.0 - _E2)


def _polygon_area_m2(poly: shapely.Polygon) -> float:
    """Geodesic area of one polygon in m² (holes subtracted, orientation ignored)."""
    if poly.is_empty:
        return 0.0
    x, y = poly.exterior.coords.xy
    area = abs(GEOD.polygon_area_perimeter(x, y)[0])
    for ring in poly.interiors:
        hx, hy = ring.coords.xy
        area -= abs(GEOD.polygon_area_perimeter(hx, hy)[0])
    return area


def geodesic_area_km2(geoms) -> np.ndarray:
    """Geodesic area (km², WGS84) of each geometry; non-polygonal parts count 0.

    Parameters
    ----------
    geoms : array-like of shapely geometries (lon/lat degrees)

    Returns
    -------
    numpy.ndarray of float

    Examples
    --------
    >>> import shapely
    >>> round(float(geodesic_area_km2([shapely.box(0, 0, 0.1, 0.1)])[0]), 1)
    123.1
    """
    geoms = np.asarray(geoms, dtype=object).ravel()
    out = np.zeros(len(geoms), dtype=float)
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        kind = g.geom_type
        if kind == "Polygon":
            out[i] = _polygon_area_m2(g)
        elif kind in ("MultiPolygon", "GeometryCollection"):
            out[i] = sum(_polygon_area_m2(p) for p in g.geoms if p.geom_type == "Polygon")
    return out / 1e6


def box_area_km2(minx: float, miny: float, maxx: float, maxy: float) -> float:
    """Geodesic area (km²) of the 4-corner lat/lon box, as :class:`pyproj.Geod` sees it."""
    if maxx <= minx or maxy <= miny:
        return 0.0
    if maxx - minx >= 90.0:  # geodesics between far corners would cut across: use parallels
        return float(rect_area_km2(minx, miny, maxx, maxy))
    a = GEOD.polygon_area_perimeter([minx, maxx, maxx, minx], [miny, miny, maxy, maxy])[0]
    return abs(a) / 1e6


def bbox_area_km2(geoms) -> np.ndarray:
    """Geodesic area (km²) of each geometry's lat/lon bounding box.

    Examples
    --------
    >>> import shapely
    >>> tri = shapely.Polygon([(0, 0), (0.1, 0.1), (0.1, 0)])
    >>> round(float(bbox_area_km2([tri])[0]), 1)
    123.1
    """
    bounds = shapely.bounds(np.asarray(geoms, dtype=object).ravel())
    return np.array([box_area_km2(*b) if np.all(np.isfinite(b)) else 0.0 for b in bounds])


def _authalic_f(lat_deg):
    s = np.sin(np.radians(lat_deg))
    es = _E * s
    return s / (2.0 * (1.0 - _E2 * s * s)) + np.log((1.0 + es) / (1.0 - es)) / (4.0 * _E)


def rect_area_km2(minx, miny, maxx, maxy):
    """Area (km²) of lat/lon rectangles bounded by meridians and parallels; vectorised.

    Examples
    --------
    >>> round(float(rect_area_km2(0, 0, 0.1, 0.1)), 1)
    123.1
    """
    dlon = np.radians(np.asarray(maxx, dtype=float) - np.asarray(minx, dtype=float))
    return dlon * _B2 * (_authalic_f(maxy) - _authalic_f(miny)) / 1e6


def meridian_radius_m(lat_deg):
    """Meridional radius of curvature (m) at a latitude (a number or an array)."""
    s = np.sin(np.radians(lat_deg))
    return _A * (1.0 - _E2) / (1.0 - _E2 * s * s) ** 1.5


def parallel_radius_m(lat_deg):
    """Radius (m) of the parallel at a latitude (a number or an array)."""
    s = np.sin(np.radians(lat_deg))
    return _A * np.cos(np.radians(lat_deg)) / np.sqrt(1.0 - _E2 * s * s)


def metres_per_degree(lat_deg) -> tuple[np.ndarray, np.ndarray]:
    """Metres per degree of longitude and of latitude at ``lat_deg`` (WGS84; latitudes
    clipped just short of the poles).

    Examples
    --------
    >>> kx, ky = metres_per_degree(np.array([0.0]))
    >>> round(float(kx[0])), round(float(ky[0]))
    (111319, 110574)
    """
    lat = np.clip(lat_deg, -89.999, 89.999)
    k = np.pi / 180.0
    return parallel_radius_m(lat) * k, meridian_radius_m(lat) * k


def m2_per_deg2(lat_deg) -> np.ndarray:
    """The WGS84 area element (m² per degree²) at ``lat_deg``."""
    kx, ky = metres_per_degree(lat_deg)
    return kx * ky
