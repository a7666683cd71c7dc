"""The ``mapflow`` accessor on GeoDataFrame: a thin door to the package.

pandas builds a new accessor object on every attribute access, so nothing is kept on it;
each method validates and delegates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from mapflow_geo.client import MapflowClient


@pd.api.extensions.register_dataframe_accessor("mapflow")
class MapflowAccessor:
    """``gdf.mapflow``: plan, estimate, process and preview Mapflow runs over the rows."""

    def __init__(self, obj: pd.DataFrame) -> None:
        if not isinstance(obj, gpd.GeoDataFrame):
            raise AttributeError("the mapflow accessor needs a GeoDataFrame")
        self._obj = obj

    def plan(
        self,
        *,
        area_limit_km2: float | None = None,
        max_aois: int | None = None,
        client: MapflowClient | None = None,
        model: str | None = None,
        **options: Any,
    ) -> gpd.GeoDataFrame:
        """Plan processings (tiles grouped into processings) under the account limits.

        See :func:`mapflow_geo.tiling.plan` for the columns and guarantees.
        """
        from mapflow_geo.tiling import plan

        return plan(
            self._obj,
            area_limit_km2=area_limit_km2,
            max_aois=max_aois,
            client=client,
            model=model,
            **options,
        )
