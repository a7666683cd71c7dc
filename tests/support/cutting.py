"""Objects cut by tiles the way the service cuts them, for the stitching tests."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

COLUMNS = ["truth", "object_type", "row", "tile_id", "processing_id", "area", "geometry"]


def truth_frame(geoms, object_type: str) -> gpd.GeoDataFrame:
    """True objects of one type, numbered from 0 in the ``truth`` column."""
    return gpd.GeoDataFrame(
        {"truth": range(len(geoms)), "object_type": object_type}, geometry=list(geoms), crs=4326
    )


def cut(truth: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The service's answer: per tile, each true object clipped to it — the parts of the
    object's own kind (polygonal or linear) — with the tile's input ``row``, ``tile_id``
    and a processing id ``p-<tile_id>``."""
    rows = []
    for t in tiles.itertuples():
        for obj in truth.itertuples():
            piece = obj.geometry.intersection(t.geometry)
            polygonal = obj.geometry.geom_type in ("Polygon", "MultiPolygon")
            want = ("Polygon", "MultiPolygon") if polygonal else ("LineString", "MultiLineString")
            parts = [p for p in shapely.get_parts(piece) if p.geom_type in want]
            if not parts:
                continue
            piece = shapely.union_all(parts) if len(parts) > 1 else parts[0]
            if (piece.area if polygonal else piece.length) <= 0:
                continue
            rows.append({"truth": obj.truth, "object_type": obj.object_type, "row": t.row,
                         "tile_id": t.tile_id, "processing_id": f"p-{t.tile_id}",
                         "area": piece.area, "geometry": piece})  # fmt: skip
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=COLUMNS), geometry="geometry", crs=4326)
