"""Data API: mosaics CRUD, uploads (multipart, create-and-upload, link, legacy
``POST /rasters``), images get/rename/delete/preview, and ``/rasters/memory``.

Uploaded bytes live in ``<state_file>.blobs/<image id>`` with a state file, else in memory
(``Service.blobs``).
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import hashlib
import os
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import shapely

from .api_processings import layer_urls
from .base import (
    ApiError,
    DataApiError,
    Request,
    Response,
    body_json,
    body_object,
    iso,
    json_response,
)
from .preview import preview_jpeg
from .rasters import describe, mosaic_mismatch, preview, read_meta
from .state import Image, Mosaic

if TYPE_CHECKING:
    from .service import Service

#: Q's upload limits (``maxUploadFileSize``, ``maxPixelCount``: pixels per side)
MAX_UPLOAD_FILE_SIZE = 2 * 1024**3
MAX_PIXEL_COUNT = 30_000
DOWNLOAD_EXPIRES_S = 3600
LEGACY_MOSAIC_ID = "legacy-uploads"
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: ``meta_data`` of an image whose bytes could not be read (or that was linked by URL)
PLACEHOLDER_META = {
    "crs": "EPSG:3857",
    "width": 0,
    "height": 0,
    "count": 3,
    "dtypes": ["uint8", "uint8", "uint8"],
    "pixel_size": [0.5, 0.5],
    "nodata": None,
}


# ----------------------------------------------------------------------------- lookups, JSON
def _owned(svc: Service, items: dict, kind: str, uid: str) -> Any:
    """The caller's ``kind`` (mosaic, image) ``uid`` of ``items``, else the Data API's
    404 (none) or 403 (another account's)."""
    item = items.get(uid)
    params = {"instance_type": kind, "uid": uid}
    if item is None:
        raise DataApiError(404, "ItemNotFound", f"{kind.capitalize()} {uid} not found", params)
    if not svc.mine(item):
        raise DataApiError(403, "AccessDenied", f"You do not have access to {kind} {uid}", params)
    return item


def mosaic_of(svc: Service, mosaic_id: str) -> Mosaic:
    return _owned(svc, svc.state.mosaics, "mosaic", mosaic_id)


def image_of(svc: Service, image_id: str) -> Image:
    return _owned(svc, svc.state.images, "image", image_id)


def used_bytes(svc: Service) -> int:
    """Storage used by the current account."""
    return sum(i.file_size for i in svc.state.images.values() if svc.mine(i))


def _footprint(i: Image) -> str:
    fp = i.meta_data.get("footprint")
    if fp:
        return fp
    b = i.meta_data.get("bounds_wgs84")
    if b:
        return shapely.box(*b).wkt
    return "POLYGON EMPTY"


def mosaic_footprint(svc: Service, m: Mosaic) -> str:
    """The union of the images' footprints (WKT MULTIPOLYGON; empty without any)."""
    geoms = []
    for i in svc.state.images_of(m.id):
        try:
            g = shapely.from_wkt(_footprint(i))
        except Exception:  # noqa: BLE001 - a bad footprint is skipped
            continue
        if not g.is_empty:
            geoms.append(g)
    if not geoms:
        return "MULTIPOLYGON EMPTY"
    u = shapely.union_all(geoms)
    if u.geom_type == "Polygon":
        u = shapely.MultiPolygon([u])
    return u.wkt


def mosaic_json(svc: Service, m: Mosaic) -> dict:
    """The service's mosaic (``rasterLayer``, WKT ``footprint``, ``sizeInBytes``) plus the
    page's ``image_count`` / ``size_bytes`` / ``updated_at``."""
    imgs = svc.state.images_of(m.id)
    size = sum(i.file_size for i in imgs)
    return {
        "id": m.id,
        "name": m.name,
        "tags": list(m.tags),
        "created_at": iso(m.created),
        "updated_at": iso(m.updated),
        "rasterLayer": layer_urls(svc, m.id, "png"),
        "footprint": mosaic_footprint(svc, m),
        "sizeInBytes": size,
        "image_count": len(imgs),
        "size_bytes": size,
    }


def checksum(svc: Service, i: Image) -> str:
    if i.checksum is None:
        i.checksum = hashlib.md5(_image_bytes(svc, i.id)).hexdigest()  # noqa: S324
    return i.checksum


def image_json(svc: Service, i: Image) -> dict:
    base = svc.base
    meta = {"nodata": None, **i.meta_data}
    return {
        "id": i.id,
        "mosaic_id": i.mosaic_id,
        "filename": i.filename,
        "name": i.name,
        "file_size": i.file_size,
        "uploaded_at": iso(i.uploaded_at),
        "footprint": _footprint(i),
        "image_url": i.image_url,
        "url": i.image_url,
        "cog_link": i.cog_link,
        "checksum": checksum(svc, i),
        "available_for_download": not i.linked,
        "preview_url_s": f"{base}/rasters/image/{i.id}/preview/s",
        "preview_url_l": f"{base}/rasters/image/{i.id}/preview/l",
        "meta_data": meta,
    }


# ----------------------------------------------------------------------------- memory
def memory(svc: Service, req: Request) -> Response:
    """Both pages' fields: ``used_bytes…usage_percent`` and ``memoryLimit…percentUsed``."""
    used = used_bytes(svc)
    limit = svc.account.memory_limit
    gb = 1024**3
    pct = round(100.0 * used / limit, 2) if limit else 0.0
    return json_response(
        {
            "used_bytes": used,
            "limit_bytes": limit,
            "free_bytes": max(limit - used, 0),
            "used_gb": round(used / gb, 3),
            "limit_gb": round(limit / gb, 3),
            "usage_percent": pct,
            "memoryLimit": limit,
            "memoryUsed": used,
            "memoryFree": max(limit - used, 0),
            "percentUsed": pct,
            "maxUploadFileSize": MAX_UPLOAD_FILE_SIZE,
            "maxPixelCount": MAX_PIXEL_COUNT,
        }
    )


# ----------------------------------------------------------------------------- mosaics
def _new_mosaic(svc: Service, name: Any, tags: Any) -> Mosaic:
    if not name or not isinstance(name, str):
        raise ApiError(400, "BAD_REQUEST", "Mosaic 'name' (string) is required")
    if tags is None:
        tags = []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list):
        raise ApiError(400, "BAD_REQUEST", "'tags' must be a list of strings")
    now = svc.now()
    m = Mosaic(str(uuid.uuid4()), name, [str(t) for t in tags], now, now, owner=svc.current)
    svc.state.mosaics[m.id] = m
    return m


def create_mosaic(svc: Service, req: Request) -> Response:
    body = body_object(req)
    m = _new_mosaic(svc, body.get("name"), body.get("tags"))
    svc.save()
    return json_response(mosaic_json(svc, m))


def list_mosaics(svc: Service, req: Request) -> Response:
    mine = [m for m in svc.state.mosaics.values() if svc.mine(m)]
    return json_response([mosaic_json(svc, m) for m in svc.cap(mine)])


def get_mosaic(svc: Service, req: Request, mosaic_id: str) -> Response:
    return json_response(mosaic_json(svc, mosaic_of(svc, mosaic_id)))


def update_mosaic(svc: Service, req: Request, mosaic_id: str) -> Response:
    m = mosaic_of(svc, mosaic_id)
    body = body_object(req, {})
    if "name" in body:
        m.name = body["name"]
    if "tags" in body:
        m.tags = list(body["tags"] or [])
    m.updated = svc.now()
    svc.save()
    return json_response(mosaic_json(svc, m))


def delete_mosaic(svc: Service, req: Request, mosaic_id: str) -> Response:
    mosaic_of(svc, mosaic_id)
    for i in svc.state.images_of(mosaic_id):
        _drop_image(svc, i.id)
    del svc.state.mosaics[mosaic_id]
    svc.save()
    return json_response({"message": "Mosaic deleted", "mosaic_id": mosaic_id})


# ----------------------------------------------------------------------------- uploads
def _multipart_file(req: Request) -> tuple[str, bytes]:
    ctype = req.headers.get("content-type", "")
    if "multipart/form-data" not in ctype.lower():
        raise ApiError(400, "BAD_REQUEST", "Expected a multipart/form-data body with a 'file' part")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + req.body
    )
    for part in msg.iter_parts() if msg.is_multipart() else []:
        if part.get_param("name", header="content-disposition") == "file":
            fname = part.get_filename() or "image.tif"
            data = part.get_payload(decode=True) or b""
            return fname, data
    raise ApiError(400, "BAD_REQUEST", "multipart body has no 'file' part")


def _store_image(
    svc: Service, mosaic: Mosaic, filename: str, data: bytes, url: str | None = None
) -> Image:
    """Check storage and the mosaic rules, then store the image record and its bytes."""
    used = used_bytes(svc)
    limit = svc.account.memory_limit
    if len(data) > MAX_UPLOAD_FILE_SIZE:
        raise DataApiError(
            400,
            "FileTooBig",
            f"File is larger than {MAX_UPLOAD_FILE_SIZE} bytes",
            {"max_file_size": MAX_UPLOAD_FILE_SIZE, "actual_file_size": len(data)},
        )
    if used + len(data) > limit:
        raise DataApiError(
            400,
            "MemoryLimitExceeded",
            f"Storage limit exceeded: {used + len(data)} > {limit} bytes",
            {"memory_requested": len(data), "available_memory": max(limit - used, 0)},
        )
    iid = str(uuid.uuid4())
    now = svc.now()
    link = url or f"s3://users-data/{svc.account.email}_{mosaic.id}/{iid}/{filename}"
    meta = _upload_meta(svc, mosaic, data) if url is None else None
    rec = Image(
        id=iid,
        mosaic_id=mosaic.id,
        filename=filename,
        name=filename,
        file_size=len(data),
        uploaded_at=now,
        image_url=link,
        cog_link=link.rsplit("/", 1)[0] + "/cog/" + link.rsplit("/", 1)[-1],
        meta_data=meta if meta is not None else copy.deepcopy(PLACEHOLDER_META),
        linked=url is not None,
        is_tiff=data[:4] in TIFF_MAGIC,
        readable=meta is not None,
        owner=svc.current,
        checksum=hashlib.md5(data).hexdigest(),  # noqa: S324
    )
    svc.state.images[iid] = rec
    bp = svc.blob_path(iid)
    if bp and data:
        os.makedirs(os.path.dirname(bp), exist_ok=True)
        with open(bp + ".tmp", "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(bp + ".tmp", bp)
    else:
        svc.blobs[iid] = data
    mosaic.updated = now
    return rec


def _upload_meta(svc: Service, mosaic: Mosaic, data: bytes) -> dict | None:
    """Real metadata of an upload (rasterio); the documented mosaic rules (same CRS,
    bands, resolution) enforced against the mosaic's readable images."""
    meta = read_meta(data)
    strict = svc.opts.strict_uploads
    if meta is None:
        if strict:
            raise DataApiError(
                400,
                "source-validator.ImageReadError",
                "We could not open and read the image you have uploaded",
            )
        return None
    if strict:
        dtypes = sorted(set(meta["dtypes"]))
        if dtypes != ["uint8"]:
            raise DataApiError(
                400,
                "source-validator.DtypeNotAllowed",
                f"Image data type (Dtype) must be one of ['uint8'], got {dtypes}",
                {"required_dtypes": "['uint8']", "request_dtype": str(dtypes)},
            )
        if meta["count"] not in (3, 4):
            raise DataApiError(
                400,
                "source-validator.NChannelsNotAllowed",
                f"Number of channels in image must be one of [3, 4]. Got {meta['count']}",
                {"required_nchannels": "[3, 4]", "real_nchannels": str(meta["count"])},
            )
    others = [i.meta_data for i in svc.state.images_of(mosaic.id) if i.readable]
    bad = mosaic_mismatch(meta, others)
    if bad is not None:
        raise DataApiError(
            400,
            "MOSAIC_IMAGE_MISMATCH",
            "All images in a mosaic must have the same CRS, number of bands and spatial "
            f"resolution: the mosaic has {describe(others[0])}, the image {describe(meta)}",
            {k: str(v) for k, v in bad.items()},
        )
    return meta


def upload_image(svc: Service, req: Request, mosaic_id: str) -> Response:
    """``POST /rasters/mosaic/{id}/image``: the new image itself (every field of
    ``GET /rasters/image/{id}``, so the answer parses as Geoalert's ``ImageReturnSchema``,
    mapflow-qgis ``mapflow/schema/data_catalog.py:73-91``) with the service's
    ``message`` and the ``image_id`` / ``image`` keys of :func:`_uploaded`."""
    m = mosaic_of(svc, mosaic_id)
    fname, data = _multipart_file(req)
    rec = _store_image(svc, m, fname, data)
    svc.save()
    up = _uploaded(svc, m, rec)
    return json_response({**up["image"], **up})


def _uploaded(svc: Service, m: Mosaic, rec: Image) -> dict:
    """The service's upload answer ``{"message", "mosaic_id"}``; the simulator adds the new
    image's id (``image_id``) and the image (``image``) for convenience. The
    create-and-upload answer is this (its top-level ``id`` would be ambiguous: Geoalert's
    plugin reads ``mosaic_id`` from it, mapflow-qgis
    ``mapflow/functional/service/data_catalog.py:108-112``)."""
    return {
        "message": "Files successfully uploaded",
        "mosaic_id": m.id,
        "image_id": rec.id,
        "image": image_json(svc, rec),
    }


def create_and_upload(svc: Service, req: Request) -> Response:
    """``POST /rasters/mosaic/image?name=&tags=`` (older page: ``/rasters/mosaic/mosaic``)."""
    name = req.arg("name")
    # repeated ``tags=a&tags=b`` (the spec) or one ``tags=a, b`` (the QGIS plugin)
    tags = [t.strip() for v in req.query.get("tags", []) for t in v.split(",") if t.strip()]
    fname, data = _multipart_file(req)
    m = _new_mosaic(svc, name, tags)
    try:
        rec = _store_image(svc, m, fname, data)
    except ApiError:
        del svc.state.mosaics[m.id]
        raise
    svc.save()
    return json_response(_uploaded(svc, m, rec))


def link_image(svc: Service, req: Request, mosaic_id: str) -> Response:
    m = mosaic_of(svc, mosaic_id)
    body = body_json(req)
    url = body.get("url") if isinstance(body, dict) else None
    if not url or not isinstance(url, str):
        raise ApiError(400, "BAD_REQUEST", "'url' (string) is required")
    fname = url.rsplit("/", 1)[-1] or "image.tif"
    rec = _store_image(svc, m, fname, b"", url=url)
    svc.save()
    return json_response(
        {
            "message": "File successfully linked to a mosaic",
            "mosaic_id": m.id,
            "id": rec.id,
            "image_id": rec.id,
        }
    )


def legacy_upload(svc: Service, req: Request) -> Response:
    """``POST /rasters``: answers ``{"url": "s3://..."}`` (kept in a hidden mosaic)."""
    fname, data = _multipart_file(req)
    m = svc.state.mosaics.get(LEGACY_MOSAIC_ID)
    if m is None:
        now = svc.now()
        m = Mosaic(LEGACY_MOSAIC_ID, "Legacy uploads", [], now, now, owner=svc.current)
    svc.state.mosaics[m.id] = m
    url = f"s3://mapflow-rasters/{uuid.uuid4()}/raster.tif"
    rec = _store_image(svc, m, fname, data, url=url)
    svc.save()
    return json_response({"url": rec.image_url})


# ----------------------------------------------------------------------------- images
def _image_bytes(svc: Service, image_id: str) -> bytes:
    if image_id in svc.blobs:
        return svc.blobs[image_id]
    bp = svc.blob_path(image_id)
    if bp and os.path.exists(bp):
        with open(bp, "rb") as f:
            return f.read()
    return b""


def _drop_image(svc: Service, image_id: str) -> None:
    svc.state.images.pop(image_id, None)
    svc.blobs.pop(image_id, None)
    bp = svc.blob_path(image_id)
    if bp and os.path.exists(bp):
        os.unlink(bp)


def list_images(svc: Service, req: Request, mosaic_id: str) -> Response:
    mosaic_of(svc, mosaic_id)
    return json_response([image_json(svc, i) for i in svc.cap(svc.state.images_of(mosaic_id))])


def get_image(svc: Service, req: Request, image_id: str) -> Response:
    return json_response(image_json(svc, image_of(svc, image_id)))


def rename_image(svc: Service, req: Request, image_id: str) -> Response:
    """``PUT /rasters/image/{id}?name=`` (or ``{"name": ...}`` in the body)."""
    i = image_of(svc, image_id)
    name = req.arg("name")
    if name is None and req.body:
        body = body_json(req, {})
        name = body.get("name") if isinstance(body, dict) else None
    if not name:
        raise ApiError(400, "BAD_REQUEST", "query parameter 'name' is required")
    i.name = name
    i.filename = name
    svc.save()
    return json_response(image_json(svc, i))


def delete_image(svc: Service, req: Request, image_id: str) -> Response:
    image_of(svc, image_id)
    _drop_image(svc, image_id)
    svc.save()
    return json_response({"message": "Image deleted", "image_id": image_id})


def image_preview(svc: Service, req: Request, image_id: str, size: str) -> Response:
    """A real 256² / 1024² JPEG of the uploaded pixels (readable images), else synthetic."""
    img = image_of(svc, image_id)
    size = size.lower()
    if size not in ("s", "l"):
        raise DataApiError(400, "BAD_REQUEST", "preview size must be 's' or 'l'", {"size": size})

    px = 256 if size == "s" else 1024
    real = preview(_image_bytes(svc, image_id), px) if img.readable else None
    data, ctype = real or preview_jpeg(px, seed=image_id)
    return Response(200, data, content_type=ctype)


def image_download(svc: Service, req: Request, image_id: str) -> Response:
    """``GET /rasters/image/{id}/download``: ``{download_url, filename, expires_in}``, a
    presigned-style URL on the simulator's own host (served by :func:`download_file`);
    403 ``NotDownloadable`` for an image linked by URL (no bytes here)."""
    i = image_of(svc, image_id)
    if i.linked:
        raise DataApiError(
            403,
            "NotDownloadable",
            f"Image {image_id} is not available for download",
            {"instance_type": "image", "uid": image_id},
        )
    expires = int(svc.now()) + DOWNLOAD_EXPIRES_S
    sig = _download_sig(svc, image_id, expires)
    fname = quote(i.filename, safe="")
    url = f"{svc.base}/rasters/download/{image_id}/{fname}?expires={expires}&signature={sig}"
    return json_response(
        {"download_url": url, "filename": i.filename, "expires_in": DOWNLOAD_EXPIRES_S}
    )


def _download_sig(svc: Service, image_id: str, expires: int) -> str:
    return hashlib.sha256(f"{svc.token}|{image_id}|{expires}".encode()).hexdigest()[:32]


def download_file(svc: Service, req: Request, image_id: str, filename: str) -> Response:
    """The presigned download URL (public: the signature is the credential)."""
    try:
        expires = int(req.arg("expires") or 0)
    except ValueError:
        expires = 0
    if req.arg("signature") != _download_sig(svc, image_id, expires) or svc.now() > expires:
        return Response(
            403, b"<Error><Code>AccessDenied</Code></Error>", content_type="application/xml"
        )
    if image_id not in svc.state.images:
        return Response(
            404, b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml"
        )
    return Response(200, _image_bytes(svc, image_id), content_type="image/tiff")
