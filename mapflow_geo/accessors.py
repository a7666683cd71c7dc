"""The ``mapflow`` accessor on GeoDataFrame: a thin door to the package.

pandas builds a new accessor object on every attribute access, so nothing is kept on it.
Each method is its implementation with the frame passed for it
(:func:`mapflow_geo._args.door`): the same signature without the frame, so ``help()``,
``inspect.signature`` and completion show every keyword, the same docstring, and the
implementation's argument checks (a misspelt keyword gets a suggestion).
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from mapflow_geo._args import door
from mapflow_geo.imagery import search_imagery as _search_imagery
from mapflow_geo.run import estimate as _estimate
from mapflow_geo.run import plan as _plan
from mapflow_geo.run import process as _process
from mapflow_geo.run.monitor import monitor as _monitor
from mapflow_geo.viz import explore_plan as _explore_plan
from mapflow_geo.viz import plot_plan as _plot_plan


@pd.api.extensions.register_dataframe_accessor("mapflow")
class MapflowAccessor:
    """``gdf.mapflow``: plan, estimate, process Mapflow runs over the rows and map the plan."""

    def __init__(self, obj: pd.DataFrame) -> None:
        if not isinstance(obj, gpd.GeoDataFrame):
            raise AttributeError("the mapflow accessor needs a GeoDataFrame")
        self._obj = obj

    plan = door(_plan)
    estimate = door(_estimate)
    search_imagery = door(_search_imagery)
    process = door(_process)
    monitor = door(_monitor)
    explore_plan = door(_explore_plan)
    plot_plan = door(_plot_plan)


# ``da.mapflow`` on xarray DataArrays: registered when xarray is (or gets) imported.
from mapflow_geo.xr_accessor import install as _install_xarray_accessor  # noqa: E402

_install_xarray_accessor()
