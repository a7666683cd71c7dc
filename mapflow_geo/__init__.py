"""mapflow-geo: Geoalert's Mapflow AI mapping, native to geopandas and xarray.

>>> import mapflow_geo
>>> from mapflow_geo import sim
>>> with sim.serve() as server:                                  # doctest: +SKIP
...     res = gdf.mapflow.process("buildings", client=server.client())
"""

from __future__ import annotations

import logging

from mapflow_geo._version import __version__
from mapflow_geo.exceptions import MapflowError, MapflowWarning

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Importing the package registers the ``mapflow`` accessor on GeoDataFrame.
from mapflow_geo import accessors as _accessors  # noqa: E402,F401
from mapflow_geo.aoi import prepare_aois  # noqa: E402
from mapflow_geo.client import MapflowClient, RetryPolicy  # noqa: E402
from mapflow_geo.results import MapflowResult, get_options, set_options  # noqa: E402
from mapflow_geo.results.changes import changes  # noqa: E402
from mapflow_geo.run import open_run, plan  # noqa: E402

__all__ = [
    "MapflowClient",
    "MapflowError",
    "MapflowResult",
    "MapflowWarning",
    "RetryPolicy",
    "changes",
    "get_options",
    "open_run",
    "plan",
    "prepare_aois",
    "set_options",
    "__version__",
]
