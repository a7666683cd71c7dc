"""The ``mapflow`` accessor on GeoDataFrame: a thin door to the package.

pandas builds a new accessor object on every attribute access, so nothing is kept on it.
Each method is its implementation with the frame passed for it
(:func:`mapflow_geo._args.door`): the same signature without the frame, so ``help()``,
``inspect.signature`` and completion show every keyword, the same docstring, and the
implementation's argument checks (a misspelt keyword gets a suggestion). The
implementations are imported when a method is first used
(:func:`~mapflow_geo._args.lazy_door`), and the accessor is registered when pandas is
imported (:func:`~mapflow_geo._after_import.when_imported`): ``import mapflow_geo``
imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mapflow_geo._after_import import when_imported
from mapflow_geo._args import lazy_door

if TYPE_CHECKING:
    import pandas as pd


class MapflowAccessor:
    """``gdf.mapflow``: plan, estimate, process Mapflow runs over the rows and map the plan."""

    def __init__(self, obj: pd.DataFrame) -> None:
        import geopandas as gpd

        if not isinstance(obj, gpd.GeoDataFrame):
            raise AttributeError("the mapflow accessor needs a GeoDataFrame")
        self._obj = obj

    plan = lazy_door("mapflow_geo.run", "plan")
    estimate = lazy_door("mapflow_geo.run", "estimate")
    search_imagery = lazy_door("mapflow_geo.imagery", "search_imagery")
    process = lazy_door("mapflow_geo.run", "process")
    monitor = lazy_door("mapflow_geo.run.monitor", "monitor")
    explore_plan = lazy_door("mapflow_geo.viz", "explore_plan")
    plot_plan = lazy_door("mapflow_geo.viz", "plot_plan")


def register() -> None:
    """Register ``gdf.mapflow`` now (imports pandas)."""
    import pandas as pd

    pd.api.extensions.register_dataframe_accessor("mapflow")(MapflowAccessor)


# ``gdf.mapflow``: registered when pandas is (or gets) imported, as ``da.mapflow`` on
# xarray DataArrays is when xarray is.
when_imported("pandas", register)

from mapflow_geo.xr_accessor import install as _install_xarray_accessor  # noqa: E402

_install_xarray_accessor()
