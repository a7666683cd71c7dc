"""For the PMTiles tests: a simulator run of a city district with classes, and
the archive read back with protomaps' reader and the MVT decoder (every feature of every
tile of one zoom, in lon/lat)."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from mapflow_geo import sim, sources

#: ≈ 2 km² of the simulator's city (seed 11): attached rows, blocks, four classes.
AREA = shapely.box(37.60, 55.752, 37.625, 55.764)
FAST = dict(progress=False, poll_interval=0.2, min_poll_interval=0.05, max_workers=4)


def district_run(run_dir: Path, area_limit_km2: float):
    """A run of :data:`AREA` cut at ``area_limit_km2`` (objects stitched across seams),
    with the simulator's truth of the area on the imagery date (polygons clipped to the
    area) and each processing's imagery date: ``(res, truth, dates)``."""
    gdf = gpd.GeoDataFrame({"name": ["district"]}, geometry=[AREA], crs=4326)
    with sim.serve(seed=11, processing_seconds=0) as server:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = gdf.mapflow.process(
                "buildings",
                client=server.client(),
                run_dir=run_dir,
                area_limit_km2=area_limit_km2,
                blocks=sources.blocks(Classification=True),
                **FAST,
            )
        dates = {p: server.imagery_date(p) for p in res.processing_ids()}
        geoms, _ = server.truth(AREA.bounds, "buildings", date=next(iter(dates.values())))
    truth = shapely.intersection(np.asarray(geoms, dtype=object), AREA)
    return res, truth[shapely.area(truth) > 0], dates


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
