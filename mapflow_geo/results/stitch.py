"""Seam stitching: objects that tiling cut at tile borders, joined back into one each.

Stitching looks only at objects that reach a seam between two tiles of the same input
row, finds the pieces that meet there with a spatial index, and unions each connected
group once.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

#: Distance (degrees) under which two pieces from neighbouring tiles count as touching.
SEAM_EPS_DEG = 1e-7


def stitch(features: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Join objects that tiling cut at seams back into one object each.

    Two pieces are one object when they come from different tiles of the same input
    ``row``, have the same ``object_type`` (and ``class_id`` / ``class`` where present),
    lie within :data:`SEAM_EPS_DEG` of each other, and both reach their tile's boundary.
    Each connected group is unioned once (polygons) or line-merged (lines); the merged
    object keeps the properties of its largest piece, ``area`` becomes the sum, and
    ``tile_id`` / ``processing_id`` list the pieces' tiles joined with ``+``.

    Parameters
    ----------
    features : GeoDataFrame
        Pieces with at least ``row``, ``tile_id`` and ``geometry`` (EPSG:4326).
    tiles : GeoDataFrame
        The plan (``tile_id``, ``row``, ``geometry``).

    Returns
    -------
    GeoDataFrame
        Objects without duplicates, in a deterministic order.
    """
    if features.empty or tiles["row"].value_counts().max() < 2:
        return features.reset_index(drop=True)
    feats = features.reset_index(drop=True)
    geoms = feats.geometry.values
    cand = np.flatnonzero(seam_mask(feats, tiles))
    if len(cand) < 2:
        return feats
    tree = shapely.STRtree(geoms[cand])
    left, right = tree.query(geoms[cand], predicate="dwithin", distance=SEAM_EPS_DEG)
    keep = left < right
    left, right = cand[left[keep]], cand[right[keep]]
    same = feats["tile_id"].values[left] != feats["tile_id"].values[right]
    for col in ("row", "object_type", "class_id", "class"):
        if col in feats:
            a = feats[col].values
            same &= pd.Series(a[left]).eq(pd.Series(a[right])).values | (
                pd.isna(a[left]) & pd.isna(a[right])
            )
    left, right = left[same], right[same]
    if len(left) == 0:
        return feats
    group = _components(len(feats), left, right)
    return _merge_groups(feats, group)


def seam_mask(features: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> np.ndarray:
    """The seam rule: a piece "may have been cut" when its input row has several tiles
    and it reaches its tile's boundary. Only such pieces are ever joined."""
    if features.empty:
        return np.zeros(0, dtype=bool)
    tile_geom = tiles.set_index(tiles["tile_id"].astype(str)).geometry
    boundary = shapely.boundary(tile_geom.reindex(features["tile_id"].astype(str)).values)
    multi = tiles.groupby("row")["tile_id"].transform("size") > 1
    rows_with_seams = set(tiles.loc[multi, "row"])
    return np.asarray(features["row"].isin(rows_with_seams)) & shapely.dwithin(
        features.geometry.values, boundary, SEAM_EPS_DEG
    )


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of the graph with edges (left, right): a label per node."""
    parent = np.arange(n)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for a, b in zip(left.tolist(), right.tolist(), strict=False):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)])


def _merge_groups(feats: gpd.GeoDataFrame, group: np.ndarray) -> gpd.GeoDataFrame:
    sizes = np.bincount(group, minlength=len(group))
    in_group = sizes[group] > 1
    single = feats[~in_group]
    multi = feats[in_group].copy()
    multi["_group"] = group[in_group]
    measure = shapely.area(multi.geometry.values) + shapely.length(multi.geometry.values)
    multi["_measure"] = measure
    multi = multi.sort_values(["_group", "_measure"], ascending=[True, False], kind="stable")
    first = multi.drop_duplicates("_group", keep="first").set_index("_group")
    grouped = multi.groupby("_group", sort=True)
    merged_geoms = []
    for _, part in grouped.geometry:
        g = shapely.union_all(part.values)
        if g.geom_type == "MultiLineString":
            g = shapely.line_merge(g)
        elif g.geom_type == "MultiPolygon":
            # pieces separated by floating-point noise along the seam: close the gap
            g = shapely.union_all(part.buffer(SEAM_EPS_DEG, join_style="mitre").values).buffer(
                -SEAM_EPS_DEG, join_style="mitre"
            )
        merged_geoms.append(g)
    out = first.copy()
    out["geometry"] = merged_geoms
    if "area" in multi:
        out["area"] = grouped["area"].sum(min_count=1).reindex(out.index).values
    for col in ("tile_id", "processing_id"):
        if col in multi:
            out[col] = grouped[col].agg(lambda s: "+".join(sorted(set(map(str, s))))).values
    out = out.drop(columns=["_measure"]).reset_index(drop=True)
    merged = pd.concat([single, out], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=feats.crs)
