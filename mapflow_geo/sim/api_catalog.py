"""Catalog API: ``POST /catalog/meta`` (also served without ``/rest``, as in the older page).

Answers a bare JSON list of scenes (``scenes.py``); ``cloudCover`` as a fraction or a
percentage (option ``catalog_cloud_cover_scale``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import shapely

from . import pricing
from .base import ApiError, Request, Response, body_object, json_response
from .geo import measure

if TYPE_CHECKING:
    from .service import Service


def search(svc: Service, req: Request) -> Response:
    from .scenes import search as scenes_search

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
    try:
        hits = scenes_search(aoi, body, seed=svc.opts.seed)
        if svc.opts.catalog_cloud_cover_scale == "percent":
            for h in hits:
                h["cloudCover"] = round(100.0 * h["cloudCover"], 2)
        return json_response(hits)
    except (TypeError, ValueError) as e:
        raise ApiError(400, "BAD_REQUEST", f"bad search filter: {e}") from None
