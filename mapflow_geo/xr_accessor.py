"""The ``mapflow`` accessor on xarray DataArrays (``da.mapflow``), registered lazily.

``import mapflow_geo`` does not import xarray: :func:`install` registers the accessor at
once when xarray is already imported, and otherwise the moment it is (a one-shot import
hook), so ``da.mapflow`` works whichever of the two the user imports first. Without
xarray installed nothing happens.

>>> import numpy as np, xarray as xr, rioxarray  # doctest: +SKIP
>>> da = xr.DataArray(np.zeros((3, 64, 64), "uint8"), dims=("band", "y", "x"))  # doctest: +SKIP
>>> img = da.rio.write_crs(32637).mapflow.upload(client=client, mosaic=mosaic.id)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

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


class _AfterXarrayImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps xarray's loader so :func:`register` runs right after
    xarray's own module code, then steps aside."""

    def find_spec(self, name, path=None, target=None):  # noqa: D401
        if name != "xarray":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            try:
                register()
            except Exception:  # noqa: BLE001 - never break the user's import of xarray
                pass

        loader.exec_module = exec_then_register
        return spec


def install() -> None:
    """Register the accessor now if xarray is imported, else when it gets imported."""
    if "xarray" in sys.modules:
        register()
        return
    if any(isinstance(f, _AfterXarrayImport) for f in sys.meta_path):
        return
    if importlib.util.find_spec("xarray") is None:
        return
    sys.meta_path.insert(0, _AfterXarrayImport())
