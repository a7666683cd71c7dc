"""The ``mapflow`` accessor on GeoDataFrame: a thin door to the package.

pandas builds a new accessor object on every attribute access, so nothing is kept on it;
each method delegates in one line and shares its implementation's docstring (the
geopandas ``@doc`` style), so the two never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import geopandas as gpd
import pandas as pd

from mapflow_geo.imagery import search_imagery as _search_imagery
from mapflow_geo.results import MapflowResult
from mapflow_geo.run import estimate as _estimate
from mapflow_geo.run import plan as _plan
from mapflow_geo.run import process as _process
from mapflow_geo.run.monitor import Monitor
from mapflow_geo.run.monitor import monitor as _monitor
from mapflow_geo.viz import explore_plan as _explore_plan
from mapflow_geo.viz import plot_plan as _plot_plan

F = TypeVar("F", bound=Callable[..., Any])


def doc(source: Callable[..., Any]) -> Callable[[F], F]:
    """Give the decorated door the docstring of the function it delegates to."""

    def wrap(door: F) -> F:
        door.__doc__ = source.__doc__
        return door

    return wrap


@pd.api.extensions.register_dataframe_accessor("mapflow")
class MapflowAccessor:
    """``gdf.mapflow``: plan, estimate, process Mapflow runs over the rows and map the plan."""

    def __init__(self, obj: pd.DataFrame) -> None:
        if not isinstance(obj, gpd.GeoDataFrame):
            raise AttributeError("the mapflow accessor needs a GeoDataFrame")
        self._obj = obj

    @doc(_plan)
    def plan(self, **options: Any) -> gpd.GeoDataFrame:
        return _plan(self._obj, **options)

    @doc(_estimate)
    def estimate(self, model: str, **options: Any) -> pd.DataFrame:
        return _estimate(self._obj, model, **options)

    @doc(_search_imagery)
    def search_imagery(self, **filters: Any) -> gpd.GeoDataFrame:
        return _search_imagery(self._obj, **filters)

    @doc(_process)
    def process(self, model: str, **options: Any) -> MapflowResult:
        return _process(self._obj, model, **options)

    @doc(_monitor)
    def monitor(self, model: str, **options: Any) -> Monitor:
        return _monitor(self._obj, model, **options)

    @doc(_explore_plan)
    def explore_plan(self, **options: Any) -> Any:
        return _explore_plan(self._obj, **options)

    @doc(_plot_plan)
    def plot_plan(self, **options: Any) -> Any:
        return _plot_plan(self._obj, **options)


# ``da.mapflow`` on xarray DataArrays: registered when xarray is (or gets) imported.
from mapflow_geo.xr_accessor import install as _install_xarray_accessor  # noqa: E402

_install_xarray_accessor()
