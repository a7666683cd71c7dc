"""Request geometry, area limits, imagery sources and the cost formula (processings, cost).

``cost = ceil(round(max(area_km², 1, provider.minAreaSqKm) × (model price + enabled blocks +
data price), 6))`` — see README.md, *Cost*.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .base import ApiError
from .geo import AreaCheck, GeometryError, measure, polygons_from_geojson

if TYPE_CHECKING:
    import shapely

    from .service import Service
    from .state import Account


def polygons(geometry: Any) -> list[shapely.Polygon]:
    """The AOI polygons of a request's GeoJSON (400 when missing or invalid)."""
    if geometry is None:
        raise ApiError(400, "GEOMETRY_REQUIRED", "'geometry' is required")
    try:
        return polygons_from_geojson(geometry)
    except GeometryError as e:
        raise ApiError(400, "INVALID_GEOMETRY", str(e)) from None


def check_limits(account: Account, polys: list) -> AreaCheck:
    """The account's AOI-count and area limits (total and per-polygon bounding box)."""
    limit = int(account.aoi_area_limit)
    n_max = int(account.max_aois_per_processing)
    if len(polys) > n_max:
        raise ApiError(
            400,
            "TOO_MANY_AOIS",
            f"Processings with more than {n_max} AOIs are prohibited. AOIs: {len(polys)}",
            {"aoiCount": len(polys), "maxAoisPerProcessing": n_max},
        )
    m = measure(polys)
    worst = max([m.total_m2] + m.bbox_m2)
    if m.total_m2 > limit or any(b > limit for b in m.bbox_m2):
        shown = int(round(m.total_m2 if m.total_m2 > limit else worst))
        raise ApiError(
            400,
            "TOO_LARGE_PROCESSING",
            f"Processings larger than {limit} sq.m. are prohibited. Area: {shown} sq.m.",
            {"area": shown, "aoiAreaLimit": limit},
        )
    return m


def zoom(z: Any) -> int | None:
    if z is None or z == "":
        return None
    try:
        return int(z)
    except (TypeError, ValueError):
        raise ApiError(
            400, "BAD_REQUEST", f"zoom must be an integer, got {z!r}", {"zoom": z}
        ) from None


def source(svc: Service, params: Any) -> dict:
    """Resolve the imagery source of a request's params (v2 sourceParams or v1 flat):
    ``{"type", "provider" (dict or None), "zoom", ...}``; no source at all is the account's
    first provider (the default basemap)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ApiError(400, "BAD_REQUEST", "'params' must be an object")
    sp = params.get("sourceParams")
    if isinstance(sp, dict) and sp:
        if isinstance(sp.get("myImagery"), dict):
            mi = sp["myImagery"]
            return {
                "type": "myImagery",
                "provider": None,
                "zoom": None,
                "mosaicId": mi.get("mosaicId"),
                "imageIds": mi.get("imageIds") or [],
            }
        if isinstance(sp.get("imagerySearch"), dict):
            s = sp["imagerySearch"]
            prov = svc.find_provider(s.get("dataProvider") or s.get("providerName"))
            return {
                "type": "imagerySearch",
                "provider": prov,
                "zoom": zoom(s.get("zoom")),
                "imageIds": list(s.get("imageIds") or []),
            }
        if isinstance(sp.get("dataProvider"), dict):
            s = sp["dataProvider"]
            prov = svc.find_provider(s.get("providerName") or s.get("name"))
            return {"type": "dataProvider", "provider": prov, "zoom": zoom(s.get("zoom"))}
        if isinstance(sp.get("userDefined"), dict):
            s = sp["userDefined"]
            if not s.get("url") and str(s.get("sourceType", "")).upper() != "SENTINEL_L2A":
                raise ApiError(400, "BAD_REQUEST", "userDefined source needs a 'url'")
            return {"type": "userDefined", "provider": None, "zoom": zoom(s.get("zoom"))}
        raise ApiError(
            400,
            "BAD_REQUEST",
            "sourceParams must hold one of myImagery, imagerySearch, dataProvider, userDefined",
        )
    # v1 flat params
    if params.get("data_provider"):
        prov = svc.find_provider(params["data_provider"])
        return {"type": "dataProvider", "provider": prov, "zoom": zoom(params.get("zoom"))}
    if params.get("url") or params.get("source_type"):
        return {"type": "userDefined", "provider": None, "zoom": zoom(params.get("zoom"))}
    # nothing given: the default basemap
    return {"type": "default", "provider": svc.state.providers[0], "zoom": None}


def data_price(src: dict) -> float:
    """The provider's price per km² at the requested zoom (the highest entry ≤ zoom)."""
    prov = src.get("provider")
    if not prov:
        return 0.0
    table = sorted(prov.get("price") or [], key=lambda e: e["zoom"])
    if not table:
        return 0.0
    z = src.get("zoom") or prov.get("defaultZoom") or table[-1]["zoom"]
    below = [e for e in table if e["zoom"] <= z]
    entry = below[-1] if below else table[0]
    return float(entry["priceSqKm"])


def enabled_blocks(model: dict, blocks: Any) -> dict[str, bool]:
    """Which of the model's blocks run. Non-optional blocks always run; optional blocks
    run only when the request enables them (``{"name": ..., "enabled": true}``)."""
    req = {}
    if isinstance(blocks, list):
        for b in blocks:
            if isinstance(b, dict) and b.get("name"):
                req[b["name"]] = bool(b.get("enabled", True))
    out = {}
    for b in model.get("blocks", []):
        out[b["name"]] = True if not b.get("optional") else req.get(b["name"], False)
    return out


def cost(area_m2: float, model: dict, enabled: dict[str, bool], src: dict) -> int:
    km2 = max(area_m2 / 1e6, 1.0)
    prov = src.get("provider")
    if prov and prov.get("minAreaSqKm"):
        km2 = max(km2, float(prov["minAreaSqKm"]))
    price = float(model.get("pricePerSqKm") or 0.0)
    price += sum(
        float(b.get("price") or 0.0) for b in model.get("blocks", []) if enabled.get(b["name"])
    )
    price += data_price(src)
    return int(math.ceil(round(km2 * price, 6)))
