"""mapflow-geo: Geoalert's Mapflow AI mapping, native to geopandas and xarray.

>>> import mapflow_geo
>>> from mapflow_geo import sim
>>> with sim.serve() as server:                                  # doctest: +SKIP
...     res = gdf.mapflow.process("buildings", client=server.client())

Importing the package registers ``gdf.mapflow`` and ``da.mapflow`` (when pandas and
xarray are imported, or at once if they are) and loads nothing heavy: the public names
below, the accessors' methods and the submodules are imported when first used.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from mapflow_geo._version import __version__
from mapflow_geo.exceptions import MapflowError, MapflowWarning

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Importing the package registers the ``mapflow`` accessors on GeoDataFrame and DataArray.
from mapflow_geo import accessors as _accessors  # noqa: E402,F401

if TYPE_CHECKING:
    from mapflow_geo.aoi import prepare_aois
    from mapflow_geo.client import MapflowClient, RetryPolicy
    from mapflow_geo.results import MapflowResult, get_options, set_options
    from mapflow_geo.results.changes import changes
    from mapflow_geo.run import open_monitor, open_run, plan

#: Public name → the module it is imported from on first use.
_LAZY = {
    "MapflowClient": "mapflow_geo.client",
    "MapflowResult": "mapflow_geo.results",
    "RetryPolicy": "mapflow_geo.client",
    "changes": "mapflow_geo.results.changes",
    "get_options": "mapflow_geo.results",
    "open_monitor": "mapflow_geo.run",
    "open_run": "mapflow_geo.run",
    "plan": "mapflow_geo.run",
    "prepare_aois": "mapflow_geo.aoi",
    "set_options": "mapflow_geo.results",
}


def __getattr__(name: str) -> Any:
    """A public name or a submodule (``mapflow_geo.results``), imported on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "MapflowClient",
    "MapflowError",
    "MapflowResult",
    "MapflowWarning",
    "RetryPolicy",
    "changes",
    "get_options",
    "open_monitor",
    "open_run",
    "plan",
    "prepare_aois",
    "set_options",
    "__version__",
]
