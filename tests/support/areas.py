"""Input areas measured in kilometres: one rectangle, a row of squares, a grid of them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import box


def rect_km(lon: float, lat: float, w_km: float, h_km: float):
    """A ``w_km`` × ``h_km`` rectangle with its south-west corner at (lon, lat)."""
    dlat = h_km / 111.2
    dlon = w_km / (111.32 * np.cos(np.radians(lat)))
    return box(lon, lat, lon + dlon, lat + dlat)


def squares(n: int, km: float = 2.0, lon: float = 10.0, lat: float = 40.0) -> gpd.GeoDataFrame:
    """``n`` separate ``km`` × ``km`` squares in one row, 0.05° apart, named ``a0``…"""
    geoms = [rect_km(lon + i * 0.05, lat, km, km) for i in range(n)]
    return gpd.GeoDataFrame({"name": [f"a{i}" for i in range(n)]}, geometry=geoms, crs=4326)


def grid_gdf(n_procs: int, *, lon: float = 10.0, lat: float = 40.0, km: float = 2.0):
    """``n_procs`` separate squares of ``km`` × ``km`` on a square grid; at a limit of
    ``km²·1.2`` and one AOI per processing each is one processing."""
    side = int(np.ceil(np.sqrt(n_procs)))
    geoms = []
    for i in range(n_procs):
        r, c = divmod(i, side)
        geoms.append(rect_km(lon + c * 0.05, lat + r * 0.04, km, km))
    return gpd.GeoDataFrame({"name": [f"a{i}" for i in range(n_procs)]}, geometry=geoms, crs=4326)
