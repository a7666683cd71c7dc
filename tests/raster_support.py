"""Shared by the upload tests: a small georeferenced GeoTIFF written with rasterio."""

from __future__ import annotations

import io

import numpy as np
import rasterio
from rasterio.transform import from_origin


def tiff_bytes(*, crs="EPSG:32637", px=0.5, count=3, dtype="uint8", size=64, value=None):
    data = np.zeros((count, size, size), dtype=dtype)
    if value is None:
        data[0] = 200  # a red image
        if count > 1:
            data[1:] = 20
    else:
        data[:] = value
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
        transform=from_origin(410000, 6180000, px, px),
    ) as ds:
        ds.write(data)
    return buf.getvalue()
