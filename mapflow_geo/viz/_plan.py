"""What a plan map shows, for both the folium and the matplotlib one: the input areas in
EPSG:4326, the plan (made from the limits when not given) and a colour per processing."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd

from mapflow_geo.run.prepare import plan as make_plan
from mapflow_geo.viz.styles import class_colors


def plan_view(
    gdf: gpd.GeoDataFrame, plan: gpd.GeoDataFrame | None, **limits: Any
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The areas (EPSG:4326; a frame without a CRS is taken as such) and the plan:
    ``plan``, else :func:`mapflow_geo.plan` of the areas with ``limits``."""
    if plan is None:
        plan = make_plan(gdf, **limits)
    aois = gdf.to_crs(4326) if gdf.crs is not None else gdf.set_crs(4326)
    return aois, plan


def processing_colors(tiles: gpd.GeoDataFrame) -> list[str]:
    """A colour per tile, one per processing (the class palette over processing numbers)."""
    proc = tiles["processing"] if "processing" in tiles else pd.Series(range(len(tiles)))
    palette = class_colors([f"{int(p):06d}" for p in proc.unique()])
    return [palette[f"{int(p):06d}"] for p in proc]
