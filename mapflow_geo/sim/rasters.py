"""Uploaded rasters: real GeoTIFF metadata and real previews (rasterio when installed).

The simulator reads what the service reads from an upload: CRS, size, band count, data
types, pixel size and the footprint (EPSG:4326 WKT), and draws its previews from the
pixels. Without rasterio, or for bytes that are not a readable raster, :func:`read_meta`
answers ``None`` and the caller keeps a placeholder.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any

import numpy as np
import shapely.geometry

#: What the documentation says every image of one mosaic shares.
MOSAIC_KEYS = ("crs", "count", "pixel_size")


def _rasterio():
    try:
        import rasterio
    except ImportError:  # pragma: no cover - the xarray extra
        return None
    return rasterio


def read_meta(data: bytes) -> dict | None:
    """Metadata of a GeoTIFF in ``data`` as the Data API shows it, or None.

    Keys: ``crs`` (``EPSG:xxxx`` or WKT), ``width``, ``height``, ``count``, ``dtypes``,
    ``pixel_size`` ([x, y], CRS units), ``transform`` (6 GDAL numbers), ``footprint``
    (WKT, EPSG:4326), ``pixel_size_m`` (x, metres: degrees converted at the centre) and,
    when a tag of :data:`DATE_TAGS` holds one, ``acquisition_date`` (``YYYY-MM-DD``).
    """
    rio = _rasterio()
    if rio is None or not data:
        return None
    try:
        from rasterio.io import MemoryFile
        from rasterio.warp import transform_geom

        with MemoryFile(data) as mem, mem.open() as ds:
            if ds.crs is None or ds.transform.is_identity:
                return None
            crs = ds.crs
            epsg = crs.to_epsg()
            crs_s = f"EPSG:{epsg}" if epsg else crs.to_wkt()
            t = ds.transform
            px, py = abs(t.a), abs(t.e)
            left, bottom, right, top = ds.bounds
            ring = [(left, bottom), (right, bottom), (right, top), (left, top), (left, bottom)]
            geom = transform_geom(
                crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]}, precision=7
            )
            fp = shapely.geometry.shape(geom)
            if crs.is_geographic:
                lat = fp.centroid.y
                px_m = px * 111_320.0 * max(math.cos(math.radians(lat)), 1e-6)
            else:
                px_m = px * float(crs.linear_units_factor[1] or 1.0)
            out = {
                "crs": crs_s,
                "width": int(ds.width),
                "height": int(ds.height),
                "count": int(ds.count),
                "dtypes": [str(d) for d in ds.dtypes],
                "pixel_size": [float(px), float(py)],
                "transform": list(t.to_gdal()),
                "footprint": fp.wkt,
                "pixel_size_m": float(px_m),
            }
            day = acquisition_date(ds.tags())
            if day is not None:
                out["acquisition_date"] = day
            return out
    except Exception:  # noqa: BLE001 - unreadable bytes are not a raster
        return None


#: GeoTIFF tags that may hold the acquisition date (first found wins)
DATE_TAGS = ("ACQUISITION_DATE", "acquisitionDate", "acquisition_date", "TIFFTAG_DATETIME")


def acquisition_date(tags: dict) -> str | None:
    """``YYYY-MM-DD`` of the first date tag (``TIFFTAG_DATETIME`` is ``YYYY:MM:DD hh:mm:ss``)."""
    for k in DATE_TAGS:
        v = str(tags.get(k) or "").strip()
        if len(v) >= 10:
            try:
                return dt.date.fromisoformat(v[:10].replace(":", "-")).isoformat()
            except ValueError:
                continue
    return None


def mosaic_mismatch(meta: dict, others: list[dict]) -> dict | None:
    """The first documented rule (same CRS, bands, resolution) ``meta`` breaks against
    the readable images already in the mosaic, as ``{"key", "expected", "actual"}``."""
    for o in others:
        if o.get("crs") != meta.get("crs"):
            return {"key": "crs", "expected": o.get("crs"), "actual": meta.get("crs")}
        if o.get("count") != meta.get("count"):
            return {"key": "count", "expected": o.get("count"), "actual": meta.get("count")}
        a, b = o.get("pixel_size") or [0, 0], meta.get("pixel_size") or [0, 0]
        if any(not math.isclose(x, y, rel_tol=1e-6) for x, y in zip(a, b, strict=False)):
            return {"key": "pixel_size", "expected": a, "actual": b}
    return None


def preview(data: bytes, size: int) -> tuple[bytes, str] | None:
    """A size×size JPEG of the raster's first three bands (one band: grey), stretched
    to 0–255 per band (2–98 % percentiles) unless already 8-bit; None when unreadable."""
    rio = _rasterio()
    if rio is None or not data:
        return None
    try:
        from PIL import Image
        from rasterio.enums import Resampling
        from rasterio.io import MemoryFile

        with MemoryFile(data) as mem, mem.open() as ds:
            bands = [1, 2, 3] if ds.count >= 3 else [1]
            arr = ds.read(bands, out_shape=(len(bands), size, size), resampling=Resampling.average)
            dtype = ds.dtypes[0]
    except Exception:  # noqa: BLE001
        return None
    arr = arr.astype(np.float64)
    if dtype != "uint8":
        for k in range(arr.shape[0]):
            lo, hi = np.nanpercentile(arr[k], [2, 98])
            arr[k] = (arr[k] - lo) / (hi - lo if hi > lo else 1.0) * 255.0
    rgb = np.clip(arr, 0, 255).astype(np.uint8)
    rgb = np.repeat(rgb, 3, axis=0) if rgb.shape[0] == 1 else rgb
    buf = io.BytesIO()
    Image.fromarray(np.moveaxis(rgb, 0, -1)).save(buf, format="JPEG", quality=85)
    return buf.getvalue(), "image/jpeg"


def describe(meta: dict[str, Any]) -> str:
    return f"{meta.get('crs')}, {meta.get('count')} band(s), pixel {meta.get('pixel_size')}"
