"""Comparing two tables of objects row by row, whatever order and path made them."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely


def canonical(df: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``df`` in one order (input row, tile, object id, then geometry) with a fresh index;
    class columns as strings (categories in memory, strings in dask partitions: the same
    values)."""
    key = [c for c in ("row", "tile_id", "id") if c in df]
    df = df.assign(_wkb=shapely.to_wkb(shapely.normalize(df.geometry.values), hex=True))
    df = df.sort_values([*key, "_wkb"], kind="stable").drop(columns="_wkb")
    cats = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    df = df.astype({c: str for c in cats})
    return gpd.GeoDataFrame(df.reset_index(drop=True), geometry="geometry", crs=df.crs)


def assert_same_objects(got: gpd.GeoDataFrame, want: gpd.GeoDataFrame) -> None:
    """The same columns and the same objects: attributes equal, geometries equal up to
    vertex order."""
    got, want = canonical(got), canonical(want)
    assert len(got) == len(want)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(
        pd.DataFrame(got.drop(columns="geometry")),
        pd.DataFrame(want.drop(columns="geometry")),
        check_dtype=False,
    )
    a = shapely.normalize(got.geometry.values)
    b = shapely.normalize(want.geometry.values)
    same = shapely.equals_exact(a, b, tolerance=1e-12) | shapely.equals(a, b)
    assert same.all(), int((~same).sum())


def iou(a, b) -> float:
    """Intersection over union of two geometries (1 for two empty ones)."""
    u = shapely.union(a, b).area
    return shapely.intersection(a, b).area / u if u > 0 else 1.0
