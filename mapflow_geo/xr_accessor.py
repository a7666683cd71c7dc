"""The ``mapflow`` accessor on xarray DataArrays (``da.mapflow``), registered lazily.

``import mapflow_geo`` does not import xarray: :func:`install` registers the accessor at
once when xarray is already imported, and otherwise the moment it is
(:func:`~mapflow_geo._after_import.when_imported`), so ``da.mapflow`` works whichever of
the two the user imports first. Without xarray installed nothing happens.

>>> import numpy as np, xarray as xr, rioxarray  # doctest: +SKIP
>>> da = xr.DataArray(np.zeros((3, 64, 64), "uint8"), dims=("band", "y", "x"))  # doctest: +SKIP
>>> img = da.rio.write_crs(32637).mapflow.upload(client=client, mosaic=mosaic.id)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from mapflow_geo._after_import import when_imported
from mapflow_geo._args import lazy_door

_REGISTERED = False


class MapflowDataArrayAccessor:
    """``da.mapflow``: send a georeferenced raster to Mapflow's Data API.

    Stateless (xarray caches accessor objects per DataArray; nothing is kept on them but
    the array). Each method is its implementation with the array passed for it: the same
    signature (without the array) and docstring, imported when first used.
    """

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    upload = lazy_door("mapflow_geo.imagery", "upload")
    check = lazy_door("mapflow_geo.imagery", "check_dataarray")


def register() -> None:
    """Register ``da.mapflow`` now (imports xarray)."""
    global _REGISTERED
    if _REGISTERED:
        return
    import warnings

    import xarray as xr

    with warnings.catch_warnings():  # re-registration in a reloaded module is harmless
        warnings.simplefilter("ignore")
        xr.register_dataarray_accessor("mapflow")(MapflowDataArrayAccessor)
    _REGISTERED = True


def install() -> None:
    """Register the accessor now if xarray is imported, else when it gets imported."""
    when_imported("xarray", register)
