"""A small georeferenced GeoTIFF written with rasterio, for the upload tests."""

from __future__ import annotations

import io

import numpy as np


def tiff_bytes(
    *, crs="EPSG:32637", px=0.5, count=3, dtype="uint8", size=64, value=None, bounds=None
) -> bytes:
    """A ``size`` × ``size`` GeoTIFF of ``count`` bands: red (band 1 at 200, the others at
    20) or every pixel ``value``; pixels of ``px`` CRS units from a fixed UTM origin, or
    spread over ``bounds`` ``(west, south, east, north)`` when given."""
    import rasterio
    from rasterio.transform import from_bounds, from_origin

    data = np.zeros((count, size, size), dtype=dtype)
    if value is None:
        data[0] = 200  # a red image
        if count > 1:
            data[1:] = 20
    else:
        data[:] = value
    if bounds is None:
        transform = from_origin(410000, 6180000, px, px)
    else:
        transform = from_bounds(*bounds, size, size)
    buf = io.BytesIO()
    with rasterio.open(
        buf,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=count,
        dtype=dtype,
        crs=crs,
        transform=transform,
    ) as ds:
        ds.write(data)
    return buf.getvalue()
