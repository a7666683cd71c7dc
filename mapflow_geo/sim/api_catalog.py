"""Catalog API: ``POST /catalog/meta`` (also served without ``/rest``, as in the older page)
and the scenes' preview images.

Answers exactly ``{"images", "total", "limit", "offset"}`` (the QGIS plugin builds its schema
from these four keys and crashes on any other); every image has ``previews`` (a list) and
``cloudCover`` in percent (0–100, what the service answers; option
``catalog_cloud_cover_scale="fraction"`` answers 0–1 instead). Preview URLs point at the
simulator's own host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import shapely

from . import pricing
from .base import ApiError, Request, Response, body_object, json_response, page_args
from .geo import measure
from .preview import preview_jpeg
from .scenes import search_all

if TYPE_CHECKING:
    from .service import Service


def percent_scale(svc: Service) -> bool:
    return svc.opts.catalog_cloud_cover_scale != "fraction"


def image_json(svc: Service, rec: dict) -> dict:
    """A catalog hit as the service answers it (own-host preview URLs, ``previews``)."""
    out = dict(rec)
    base = svc.base
    out["previewUrl"] = str(out.get("previewUrl") or "").replace("{base}", base) or None
    if percent_scale(svc) and out.get("cloudCover") is not None:
        out["cloudCover"] = round(100.0 * out["cloudCover"], 2)
    out["previews"] = [
        {
            "url": f"{base}/catalog/preview/{out['id']}.png",
            "geometry": out.get("footprint"),
        }
    ]
    out.setdefault("zoom", 18)
    out.setdefault("satId", out.get("sensor"))
    return out


def search_body(svc: Service, body: dict, aoi) -> list[dict]:
    try:
        return search_all(aoi, body, seed=svc.opts.seed, percent=percent_scale(svc), now=svc.now())
    except (TypeError, ValueError) as e:
        raise ApiError(400, "BAD_REQUEST", f"bad search filter: {e}") from None


def search(svc: Service, req: Request) -> Response:
    body = body_object(req)
    if body.get("aoi") is None:
        raise ApiError(400, "BAD_REQUEST", "'aoi' is required")
    polys = pricing.polygons(body["aoi"])
    aoi = shapely.union_all(polys)
    total = measure(polys).total_m2
    lim = svc.opts.catalog_area_limit_km2 * 1e6
    if total > lim:
        raise ApiError(
            400,
            "TOO_LARGE_PROCESSING",
            f"Search areas larger than {int(lim)} sq.m. are prohibited. "
            f"Area: {int(round(total))} sq.m.",
            {"area": int(round(total)), "aoiAreaLimit": int(lim)},
        )
    limit, offset = page_args(body, 100)
    limit = svc.page_limit(limit)
    hits = search_body(svc, body, aoi)
    page = [image_json(svc, h) for h in hits[offset : offset + limit]]
    return json_response({"images": page, "total": len(hits), "limit": limit, "offset": offset})


def preview(svc: Service, req: Request, scene: str) -> Response:
    """``GET /catalog/preview/{scene id}.png``: a synthetic preview image."""
    data, ctype = preview_jpeg(256, seed=scene)
    return Response(200, data, content_type=ctype)
