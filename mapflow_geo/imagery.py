"""Imagery: the catalog as a GeoDataFrame, the scene choice rule, uploads to the Data API.

:func:`search_imagery`, :func:`choose_scenes` / :func:`assign_scenes` /
:func:`plan_scenes` / :func:`scene_source`, :func:`check_upload` and :func:`upload`; the
rules (cloud-cover scale, scene order, upload checks) are in DESIGN.md, *Imagery*.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
from shapely.geometry import mapping, shape

from mapflow_geo._args import checked
from mapflow_geo.client import default_client
from mapflow_geo.exceptions import ImageryError
from mapflow_geo.models import check_scale
from mapflow_geo.run.prepare import scene_source, scene_sources
from mapflow_geo.scenes import (
    SCENE_ORDER,
    assign_scenes,
    choose_scenes,
    plan_scenes,
    rank_scenes,
    union_4326,
)

if TYPE_CHECKING:  # pragma: no cover
    from mapflow_geo.client import MapflowClient

log = logging.getLogger(__name__)

#: Band counts the models accept (3 = RGB; a 4th band is taken as alpha).
ALLOWED_BAND_COUNTS = (3, 4)
#: Data types the models accept.
ALLOWED_DTYPES = ("uint8",)
#: Coarsest pixel the high-resolution models accept (``PixelSizeTooHigh``, 1.2 m/px).
MAX_PIXEL_SIZE_M = 1.2

_KNOWN = {
    "id": "id",
    "providerName": "provider_name",
    "productType": "product_type",
    "acquisitionDate": "acquisition_date",
    "sensor": "sensor",
    "pixelResolution": "pixel_resolution",
    "cloudCover": "cloud_cover",
    "offNadirAngle": "off_nadir_angle",
    "colorBandOrder": "color_band_order",
    "previewType": "preview_type",
    "previewUrl": "preview_url",
    "aoiIntersectionPercent": "aoi_intersection_percent",
}
_FLOATS = ("pixel_resolution", "cloud_cover", "off_nadir_angle", "aoi_intersection_percent")
_STRINGS = (
    "id",
    "provider_name",
    "product_type",
    "sensor",
    "color_band_order",
    "preview_type",
    "preview_url",
)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", str(name)).lower()


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- catalog
@checked
def search_imagery(
    gdf: gpd.GeoDataFrame | gpd.GeoSeries | Any,
    *,
    client: MapflowClient | None = None,
    date_from: Any = None,
    date_to: Any = None,
    max_cloud_cover: float | None = None,
    min_resolution: float | None = None,
    max_resolution: float | None = None,
    max_off_nadir: float | None = None,
    providers: Iterable[str] | None = None,
    product_types: Iterable[str] | None = None,
    min_aoi_intersection: float | None = None,
    page_size: int = 100,
    max_results: int | None = None,
    **body: Any,
) -> gpd.GeoDataFrame:
    """Catalog scenes over the union of ``gdf``'s geometries, one row per scene.

    Parameters
    ----------
    gdf : GeoDataFrame, GeoSeries or shapely geometry
        The area (any CRS; sent in EPSG:4326).
    client : MapflowClient, optional
        Defaults to one from ``MAPFLOW_TOKEN``.
    date_from, date_to : str, datetime or Timestamp, optional
        Acquisition window (UTC).
    max_cloud_cover : float, optional
        Fraction 0–1 (sent in percent: 0.2 → ``maxCloudCover: 20``).
    min_resolution, max_resolution : float, optional
        Pixel size, m/px.
    max_off_nadir : float, optional
        Degrees (on ``|angle|``).
    providers, product_types : list of str, optional
        ``dataProviders`` (e.g. ``["CG_mosaic_2022"]``), ``productTypes`` (``IMAGE``,
        ``MOSAIC``).
    min_aoi_intersection : float, optional
        Minimum share of the AOI a scene covers, 0–1 (sent in percent).
    page_size, max_results : int
        Paging: ``limit`` per request; stop after ``max_results`` scenes (all by default).
    **body
        Further ``/catalog/meta`` fields, sent as given (``sortBy``, ``hideUnavailable``…).

    Returns
    -------
    GeoDataFrame
        EPSG:4326 footprints with ``id``, ``provider_name``, ``product_type``,
        ``acquisition_date`` (datetime64, UTC), ``sensor``, ``pixel_resolution`` (m,
        NaN when the service says 0 = unknown), ``cloud_cover`` (fraction 0–1),
        ``off_nadir_angle``, ``color_band_order``, ``preview_type``, ``preview_url``,
        ``aoi_intersection_percent`` when given, any further field snake_cased; newest
        first (:data:`SCENE_ORDER`).

    Examples
    --------
    >>> from mapflow_geo import sim
    >>> import geopandas as gpd, shapely
    >>> aoi = gpd.GeoDataFrame(geometry=[shapely.box(37.6, 55.7, 37.65, 55.73)], crs=4326)
    >>> with sim.serve() as server:
    ...     scenes = aoi.mapflow.search_imagery(client=server.client(), max_cloud_cover=0.2)
    >>> bool((scenes["cloud_cover"] <= 0.2).all())
    True
    """
    client = default_client(client)
    area = union_4326(gdf)
    cloud = None if max_cloud_cover is None else float(max_cloud_cover)
    req: dict[str, Any] = {}
    for key, value in (
        ("max_cloud_cover", cloud),
        ("min_aoi_intersection", min_aoi_intersection),
        ("acquisitionDateFrom", _iso(date_from)),
        ("acquisitionDateTo", _iso(date_to)),
        ("minResolution", min_resolution),
        ("maxResolution", max_resolution),
        ("maxOffNadirAngle", max_off_nadir),
        ("dataProviders", list(providers) if providers is not None else None),
        ("productTypes", list(product_types) if product_types is not None else None),
    ):
        if value is not None:
            req[key] = value
    req.update(body)
    records: list[dict] = []
    offset = 0
    page_size = max(1, int(page_size))
    while True:
        limit = page_size if max_results is None else min(page_size, max_results - len(records))
        if limit <= 0:
            break
        page = client.catalog.search(mapping(area), **req, limit=limit, offset=offset)
        items = [dict(s.raw) if s.raw else {} for s in page.images]
        records.extend(items)
        offset += len(items)
        if len(items) < limit:
            break
    frame = scenes_frame(records, cloud_cover_scale=client.catalog.scale)
    if cloud is not None and len(frame):
        frame = frame[~(frame["cloud_cover"] > cloud + 1e-9)]
    return frame.reset_index(drop=True)


def scenes_frame(records: list[dict], *, cloud_cover_scale: str = "percent") -> gpd.GeoDataFrame:
    """Catalog answers (``/catalog/meta`` scene dicts) → the typed frame of
    :func:`search_imagery` (deduplicated by id, rule order). ``cloudCover`` is read on
    ``cloud_cover_scale`` (the service's ``"percent"``, or ``"fraction"``) into a 0–1
    ``cloud_cover`` column."""
    rows = []
    for r in records:
        out: dict[str, Any] = {}
        for k, v in r.items():
            if k in ("footprint", "geometry"):
                continue
            out[_KNOWN.get(k, _snake(k))] = v
        fp = r.get("footprint") or r.get("geometry")
        out["geometry"] = shape(fp) if isinstance(fp, dict) else None
        rows.append(out)
    df = pd.DataFrame(rows)
    for col in _STRINGS:
        if col not in df:
            df[col] = None
        df[col] = df[col].astype("string")
    for col in _FLOATS:
        if col in df or col != "aoi_intersection_percent":  # that one only when sent
            df[col] = pd.to_numeric(df.get(col), errors="coerce").astype("float64")
    if check_scale(cloud_cover_scale) == "percent":  # the endpoint's scale, not a guess
        df["cloud_cover"] = df["cloud_cover"] / 100.0
    df["pixel_resolution"] = df["pixel_resolution"].where(df["pixel_resolution"] > 0)
    df["acquisition_date"] = pd.to_datetime(
        df.get("acquisition_date"), utc=True, errors="coerce", format="ISO8601"
    )
    if "geometry" not in df:
        df["geometry"] = None
    gdf = gpd.GeoDataFrame(df, geometry="geometry", crs=4326)
    if len(gdf):
        gdf = gdf.drop_duplicates("id", keep="first")
    return rank_scenes(gdf)


# ----------------------------------------------------------------------------- uploads
def raster_meta(path: str | os.PathLike) -> dict:
    """What the Data API will read from a GeoTIFF: ``crs``, ``count``, ``dtypes``,
    ``pixel_size`` (CRS units), ``pixel_size_m``, ``width``, ``height``, ``file_size``.

    Raises ImageryError when the file is not a georeferenced raster."""
    import rasterio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with rasterio.open(path) as ds:
            crs, t = ds.crs, ds.transform
            if crs is None or t.is_identity:
                raise ImageryError(
                    f"{path.name} has no georeference (CRS and transform)", rule="georeference"
                )
            meta = {
                "crs": f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_wkt(),
                "count": int(ds.count),
                "dtypes": [str(d) for d in ds.dtypes],
                "pixel_size": [abs(t.a), abs(t.e)],
                "width": int(ds.width),
                "height": int(ds.height),
                "driver": ds.driver,
            }
            bounds = ds.bounds
            lat = None
            if crs.is_geographic:
                lat = (bounds.bottom + bounds.top) / 2
            meta["pixel_size_m"] = _pixel_m(abs(t.a), crs, lat)
    except rasterio.errors.RasterioIOError as exc:
        raise ImageryError(f"{path.name} is not a readable raster: {exc}", rule="format") from None
    meta["file_size"] = path.stat().st_size
    return meta


def _pixel_m(px: float, crs: Any, lat: float | None) -> float:
    if crs.is_geographic:
        return px * 111_320.0 * max(math.cos(math.radians(lat or 0.0)), 1e-6)
    return px * float(crs.linear_units_factor[1] or 1.0)


def check_upload(
    meta: dict,
    *,
    mosaic_images: Iterable[Any] = (),
    free_bytes: int | None = None,
    max_pixel_size_m: float | None = MAX_PIXEL_SIZE_M,
    allowed_dtypes: Iterable[str] = ALLOWED_DTYPES,
    allowed_band_counts: Iterable[int] = ALLOWED_BAND_COUNTS,
    max_file_bytes: int | None = None,
) -> None:
    """Raise :class:`ImageryError` when an image with metadata ``meta`` (as from
    :func:`raster_meta`) breaks a documented upload rule; return None when it passes.

    ``mosaic_images`` are the mosaic's :class:`~mapflow_geo.models.Image` records (or
    their ``meta_data`` dicts); placeholders without ``width`` are ignored.

    Examples
    --------
    >>> ok = {"crs": "EPSG:32637", "count": 3, "dtypes": ["uint8"] * 3,
    ...       "pixel_size": [0.5, 0.5], "pixel_size_m": 0.5, "file_size": 10}
    >>> check_upload(ok, free_bytes=100)
    >>> try:
    ...     check_upload(dict(ok, dtypes=["uint16"] * 3))
    ... except ImageryError as e:
    ...     print(e.rule)
    dtype
    """
    _check_format(meta, tuple(allowed_dtypes), tuple(allowed_band_counts), max_pixel_size_m)
    _check_size(meta, max_file_bytes, free_bytes)
    for img in mosaic_images:
        _check_same_as(meta, img)


def _check_format(
    meta: dict,
    allowed_dtypes: tuple[str, ...],
    counts: tuple[int, ...],
    max_pixel_size_m: float | None,
) -> None:
    """The data type, band count and pixel size the models accept."""
    dtypes = sorted(set(meta.get("dtypes") or []))
    bad = [d for d in dtypes if d not in allowed_dtypes]
    if bad:
        raise ImageryError(
            f"data type {', '.join(bad)} is not accepted: the models read "
            f"{'/'.join(allowed_dtypes)} (8-bit) imagery; rescale to 0–255 first",
            rule="dtype",
        )
    if meta.get("count") not in counts:
        raise ImageryError(
            f"{meta.get('count')} band(s): images must have {' or '.join(map(str, counts))} "
            "bands (RGB, optionally alpha)",
            rule="bands",
        )
    px = meta.get("pixel_size_m")
    if max_pixel_size_m is not None and px is not None and px > max_pixel_size_m * (1 + 1e-9):
        raise ImageryError(
            f"pixel size {px:.3f} m is coarser than the {max_pixel_size_m} m/px the models "
            "accept (source-validator.PixelSizeTooHigh)",
            rule="pixel_size",
        )


def _check_size(meta: dict, max_file_bytes: int | None, free_bytes: int | None) -> None:
    """The file fits the size limit and the Data API storage left."""
    size = meta.get("file_size")
    if max_file_bytes is not None and size is not None and size > max_file_bytes:
        raise ImageryError(
            f"file of {size} bytes is over the {max_file_bytes}-byte limit", rule="file_size"
        )
    if free_bytes is not None and size is not None and size > free_bytes:
        raise ImageryError(
            f"file of {size / 1e6:.1f} MB does not fit the {free_bytes / 1e6:.1f} MB of Data "
            "API storage left (GET /rasters/memory); delete images or ask for more",
            rule="quota",
        )


def _check_same_as(meta: dict, img: Any) -> None:
    """The image shares CRS, band count and resolution with an image of the mosaic."""
    other = getattr(img, "meta_data", img) or {}
    if not other.get("width"):
        return  # a placeholder: nothing known to compare
    name = getattr(img, "filename", None) or getattr(img, "id", None) or "an image"
    if str(other.get("crs")) != str(meta.get("crs")):
        raise ImageryError(
            f"CRS {meta.get('crs')} differs from the mosaic's {other.get('crs')} "
            f"({name}): all images of a mosaic share one CRS",
            rule="mosaic_crs",
        )
    if other.get("count") != meta.get("count"):
        raise ImageryError(
            f"{meta.get('count')} bands differ from the mosaic's {other.get('count')} "
            f"({name}): all images of a mosaic have the same number of bands",
            rule="mosaic_bands",
        )
    a, b = list(other.get("pixel_size") or []), list(meta.get("pixel_size") or [])
    if len(a) == len(b) and any(
        not math.isclose(x, y, rel_tol=1e-6) for x, y in zip(a, b, strict=True)
    ):
        raise ImageryError(
            f"pixel size {b} differs from the mosaic's {a} ({name}): all images of a "
            "mosaic have the same spatial resolution",
            rule="mosaic_resolution",
        )


@checked
def upload(
    image: Any,
    *,
    client: MapflowClient | None = None,
    mosaic: Any = None,
    name: str | None = None,
    tags: Iterable[str] | None = None,
    check: bool = True,
    max_pixel_size_m: float | None = MAX_PIXEL_SIZE_M,
    allowed_dtypes: Iterable[str] = ALLOWED_DTYPES,
    allowed_band_counts: Iterable[int] = ALLOWED_BAND_COUNTS,
    max_file_bytes: int | None = None,
):
    """Upload a GeoTIFF (path) or a rioxarray DataArray to a mosaic, checking first.

    Parameters
    ----------
    image : path or xarray.DataArray
        A DataArray needs a CRS and transform (``da.rio.write_crs(...)``); it is written
        to a temporary GeoTIFF (``band, y, x`` or ``y, x``).
    mosaic : str or Mosaic, optional
        Upload into this mosaic; without it a new mosaic ``name`` is created with the
        image (``POST /rasters/mosaic/image``).
    check : bool
        Run :func:`check_upload` against the mosaic's images and the free storage.
    max_pixel_size_m, allowed_dtypes, allowed_band_counts, max_file_bytes
        The upload rules checked (see :func:`check_upload`).

    Returns
    -------
    Image
        The uploaded image (``mosaic_id`` set); use it with
        ``sources.my_imagery(image_ids=[img.id])`` or ``mosaic_id=img.mosaic_id``.
    """
    client = default_client(client)
    tmp = None
    try:
        if not isinstance(image, (str, os.PathLike)):
            tmp = _dataarray_to_tiff(image)
            path = Path(tmp)
            filename = f"{name or getattr(image, 'name', None) or 'image'}.tif"
        else:
            path = Path(image)
            filename = path.name
        mosaic_id = getattr(mosaic, "id", mosaic)
        if check:
            meta = raster_meta(path)
            existing = client.data.images.list(mosaic_id) if mosaic_id else []
            check_upload(
                meta,
                mosaic_images=existing,
                free_bytes=client.data.memory().free_bytes,
                max_pixel_size_m=max_pixel_size_m,
                allowed_dtypes=allowed_dtypes,
                allowed_band_counts=allowed_band_counts,
                max_file_bytes=max_file_bytes,
            )
        if mosaic_id:
            img = client.data.images.upload(mosaic_id, path, filename=filename)
            if img.mosaic_id is None:
                img.mosaic_id = str(mosaic_id)
            return img
        m = client.data.mosaics.create_and_upload(
            path, name or Path(filename).stem, tags, filename=filename
        )
        img = m.images[0] if m.images else client.data.images.list(m.id)[0]
        if img.mosaic_id is None:
            img.mosaic_id = m.id
        return img
    finally:
        if tmp is not None:
            os.unlink(tmp)


def _dataarray_to_tiff(da: Any) -> str:
    try:
        import rioxarray  # noqa: F401 - registers .rio
    except ImportError as exc:  # pragma: no cover
        raise ImportError("uploading a DataArray needs the 'xarray' extra (rioxarray)") from exc
    if da.rio.crs is None:
        raise ImageryError(
            "the DataArray has no CRS: set one with da.rio.write_crs('EPSG:…')",
            rule="georeference",
        )
    fd, tmp = tempfile.mkstemp(suffix=".tif", prefix="mapflow-upload-")
    os.close(fd)
    da.rio.to_raster(tmp, driver="GTiff", compress="DEFLATE", tiled=True)
    return tmp


# ----------------------------------------------------------------------------- helpers


@checked
def check_dataarray(
    da: Any,
    *,
    client: MapflowClient | None = None,
    mosaic: Any = None,
    max_pixel_size_m: float | None = MAX_PIXEL_SIZE_M,
    allowed_dtypes: Iterable[str] = ALLOWED_DTYPES,
    allowed_band_counts: Iterable[int] = ALLOWED_BAND_COUNTS,
    max_file_bytes: int | None = None,
) -> dict:
    """The metadata the Data API would read from a georeferenced DataArray, after
    :func:`check_upload` (against ``mosaic``'s images and the free storage when a client
    is given). Raises :class:`~mapflow_geo.exceptions.ImageryError` naming the rule an
    image breaks."""
    tmp = _dataarray_to_tiff(da)
    try:
        meta = raster_meta(tmp)
    finally:
        os.unlink(tmp)
    mosaic_id = getattr(mosaic, "id", mosaic)
    images = client.data.images.list(mosaic_id) if (client is not None and mosaic_id) else []
    free = client.data.memory().free_bytes if client is not None else None
    check_upload(
        meta,
        mosaic_images=images,
        free_bytes=free,
        max_pixel_size_m=max_pixel_size_m,
        allowed_dtypes=allowed_dtypes,
        allowed_band_counts=allowed_band_counts,
        max_file_bytes=max_file_bytes,
    )
    return meta


__all__ = [
    "ALLOWED_BAND_COUNTS",
    "ALLOWED_DTYPES",
    "MAX_PIXEL_SIZE_M",
    "SCENE_ORDER",
    "assign_scenes",
    "check_dataarray",
    "check_upload",
    "choose_scenes",
    "plan_scenes",
    "rank_scenes",
    "raster_meta",
    "scene_source",
    "scene_sources",
    "scenes_frame",
    "search_imagery",
    "upload",
]
