"""The scene choice rule and planning on chosen catalog scenes (pure geometry).

Where several scenes cover the same ground, :data:`SCENE_ORDER` decides: **newest
acquisition first, then least cloudy, then finest pixel (unknown resolution last), then
id** (for determinism). :func:`choose_scenes` keeps, in that order, the scenes that add
ground not yet covered; :func:`assign_scenes` gives every part of every AOI to the first
scene in that order whose footprint covers it (parts no scene covers are dropped, with a
warning); :func:`plan_scenes` plans each scene's parts on their own, so a processing never
mixes two scenes, and records ``scene_id`` / ``scene_provider`` per tile.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from mapflow_geo._geodesy import geodesic_area_km2
from mapflow_geo.aoi import polygonal
from mapflow_geo.exceptions import AOIWarning, ImageryError, warn
from mapflow_geo.tiling import plan as make_plan

#: Sort order of the scene choice rule: (column, ascending).
SCENE_ORDER = (
    ("acquisition_date", False),
    ("cloud_cover", True),
    ("_res_key", True),
    ("id", True),
)


def rank_scenes(scenes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``scenes`` sorted by the choice rule (:data:`SCENE_ORDER`): newest, then least
    cloudy, then finest pixel (unknown last), then id."""
    tmp = scenes.assign(_res_key=scenes["pixel_resolution"].fillna(np.inf))
    cols = [c for c, _ in SCENE_ORDER]
    asc = [a for _, a in SCENE_ORDER]
    tmp = tmp.sort_values(cols, ascending=asc, na_position="last", kind="stable")
    return tmp.drop(columns="_res_key")


def choose_scenes(
    scenes: gpd.GeoDataFrame,
    aoi: Any,
    *,
    min_gain: float = 0.01,
) -> gpd.GeoDataFrame:
    """The scenes, in rule order, that each add at least ``min_gain`` of the AOI's area
    not covered by the ones before: a small set that covers what the catalog can.

    Examples
    --------
    >>> import shapely, geopandas as gpd, pandas as pd
    >>> s = scenes_frame([
    ...     {"id": "old", "acquisitionDate": "2021-01-01T00:00:00Z", "cloudCover": 0,
    ...      "providerName": "CG", "footprint": shapely.geometry.mapping(shapely.box(0, 0, 2, 2))},
    ...     {"id": "new", "acquisitionDate": "2024-01-01T00:00:00Z", "cloudCover": 0.1,
    ...      "providerName": "CG", "footprint": shapely.geometry.mapping(shapely.box(0, 0, 1, 2))},
    ... ])
    >>> list(choose_scenes(s, shapely.box(0, 0, 2, 2))["id"])
    ['new', 'old']
    """
    area = union_4326(aoi)
    total = area.area
    if total <= 0 or scenes.empty:
        return scenes.iloc[:0]
    keep, covered = [], shapely.Polygon()
    ranked = rank_scenes(scenes)
    for i, g in zip(ranked.index, ranked.geometry.values, strict=True):
        if g is None:
            continue
        gain = shapely.difference(shapely.intersection(g, area), covered).area
        if gain >= min_gain * total:
            keep.append(i)
            covered = shapely.union(covered, g)
        if shapely.covers(covered, area):
            break
    return ranked.loc[keep]


def assign_scenes(aois: gpd.GeoDataFrame, scenes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Split each AOI row among the scenes: every part goes to the first scene, in rule
    order, whose footprint covers it. One row per (input row, scene) with ``scene_id``,
    ``scene_provider`` and the part's geometry; the index repeats the input labels.
    Ground that no scene covers is dropped with a warning."""
    ranked = rank_scenes(scenes[scenes.geometry.notna()])
    if ranked.empty:
        raise ImageryError("no scene with a footprint to plan on", rule="coverage")
    aois = aois.to_crs(4326)
    labels, parts, sids, provs = [], [], [], []
    taken = shapely.Polygon()
    fps = ranked.geometry.values
    for sid, prov, fp in zip(ranked["id"], ranked["provider_name"], fps, strict=True):
        own = shapely.difference(fp, taken) if not taken.is_empty else fp
        taken = shapely.union(taken, fp)
        if own.is_empty:
            continue
        cut = shapely.intersection(aois.geometry.values, own)
        for lab, g in zip(aois.index, cut, strict=True):
            g = polygonal(g)
            if not g.is_empty:
                labels.append(lab)
                parts.append(g)
                sids.append(str(sid))
                provs.append(None if pd.isna(prov) else str(prov))
    missing = shapely.difference(shapely.union_all(aois.geometry.values), taken)
    if not missing.is_empty and missing.area > 1e-12:
        warn(
            f"{float(geodesic_area_km2([missing])[0]):.3f} km² of the areas lie outside "
            "every chosen scene and will not be processed",
            AOIWarning,
        )
    if not parts:
        raise ImageryError("the chosen scenes do not cover any of the areas", rule="coverage")
    index = pd.Index(labels, name=aois.index.name)
    return gpd.GeoDataFrame(
        {"scene_id": sids, "scene_provider": provs},
        geometry=gpd.GeoSeries(parts, index=index, crs=4326),
        index=index,
        crs=4326,
    )


def plan_scenes(
    aois: gpd.GeoDataFrame,
    scenes: gpd.GeoDataFrame,
    *,
    area_limit_km2: float,
    max_aois: int,
    **options: Any,
) -> gpd.GeoDataFrame:
    """Plan tiles clipped to the chosen scenes' footprints, one scene per processing.

    Each scene's share of the areas (:func:`assign_scenes`) is planned on its own with
    :func:`mapflow_geo.tiling.plan`; the plans are concatenated with ``processing``
    renumbered and ``scene_id`` / ``scene_provider`` columns. ``row`` keeps the input
    labels, so costs and stats still add up per input row.
    """
    parts = assign_scenes(aois, scenes)
    plans = []
    offset = 0
    for sid, sub in parts.groupby("scene_id", sort=False):
        p = make_plan(
            sub[["geometry"]], area_limit_km2=area_limit_km2, max_aois=max_aois, **options
        )
        p["processing"] = p["processing"] + offset
        offset = int(p["processing"].max()) + 1
        p["scene_id"] = str(sid)
        p["scene_provider"] = sub["scene_provider"].iloc[0]
        plans.append(p)
    out = pd.concat(plans, ignore_index=True)
    # the same row cut by two scenes: tile ids stay unique (they hash label and geometry)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=4326)


def union_4326(obj: Any) -> shapely.Geometry:
    if isinstance(obj, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if obj.crs is None:
            raise ImageryError("the areas have no CRS", rule="crs")
        geoms = obj.to_crs(4326).geometry.values if obj.crs.to_epsg() != 4326 else obj.geometry
        return shapely.union_all(np.asarray(geoms))
    if isinstance(obj, dict):
        return shape(obj)
    if isinstance(obj, shapely.Geometry):
        return obj
    raise TypeError(f"expected a GeoDataFrame, GeoSeries or geometry, got {type(obj).__name__}")
