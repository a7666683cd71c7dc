"""Read a PMTiles archive back with protomaps' reader and the MVT decoder: every
feature of every tile of one zoom, in lon/lat (shared by the PMTiles tests)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import shapely


def header(path: str | Path) -> dict:
    from pmtiles.reader import MmapSource, Reader

    with open(path, "rb") as f:
        return Reader(MmapSource(f)).header()


def features_at(path: str | Path, zoom: int) -> list[dict]:
    """``{"id", "properties", "geometry" (lon/lat), "tile"}`` of every feature of zoom
    ``zoom`` (a feature cut by tile edges once per tile)."""
    import mapbox_vector_tile
    from pmtiles.reader import MmapSource, all_tiles

    out = []
    with open(path, "rb") as f:
        for (z, x, y), data in all_tiles(MmapSource(f)):
            if z != zoom:
                continue
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            for layer in mapbox_vector_tile.decode(
                data, default_options={"y_coord_down": True}
            ).values():
                extent = layer["extent"]
                for feat in layer["features"]:
                    geom = shapely.geometry.shape(feat["geometry"])
                    out.append(
                        {
                            "id": feat["id"],
                            "properties": feat["properties"],
                            "geometry": _to_lonlat(geom, z, x, y, extent),
                            "tile": (z, x, y),
                        }
                    )
    return out


def _to_lonlat(geom, z: int, x: int, y: int, extent: int):
    """Tile pixel coordinates (y down) to lon/lat."""
    n = 2**z
    xy = shapely.get_coordinates(geom)
    lon = (x + xy[:, 0] / extent) / n * 360 - 180
    lat = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (y + xy[:, 1] / extent) / n))))
    return shapely.set_coordinates(geom, np.column_stack([lon, lat]))
