"""mapflow-geo: Geoalert's Mapflow AI mapping, native to geopandas and xarray.

>>> import mapflow_geo
>>> from mapflow_geo import sim
>>> with sim.serve() as server:                                  # doctest: +SKIP
...     res = gdf.mapflow.process("buildings", client=server.client())
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

from mapflow_geo.exceptions import MapflowError

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Importing the package registers the ``mapflow`` accessor on GeoDataFrame/GeoSeries.
from mapflow_geo import accessors as _accessors  # noqa: E402,F401

_LAZY = {
    "MapflowClient": "mapflow_geo.client",
    "plan": "mapflow_geo.tiling",
    "prepare_aois": "mapflow_geo.aoi",
    "MapflowResult": "mapflow_geo.results",
    "open_run": "mapflow_geo.runner",
}

if TYPE_CHECKING:  # pragma: no cover
    from mapflow_geo.aoi import prepare_aois
    from mapflow_geo.client import MapflowClient
    from mapflow_geo.tiling import plan


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mapflow_geo' has no attribute {name!r}")


__all__ = ["MapflowClient", "MapflowError", "plan", "prepare_aois", "__version__"]
