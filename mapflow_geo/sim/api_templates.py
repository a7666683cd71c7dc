"""Planned processings (templates): a saved imagery search over named AOIs.

Routes under ``/processings/template`` (see ``routes.py``). A template's *check* runs the
catalog search over each AOI (``scenes.search_all`` with the template's filters, up to the
simulator clock): on create (the first results are not "new"), on ``restart`` and on
``resume``, and from Python with ``Server.run_templates()`` (the service's daily run). Images a
later check finds are *new* (``isNew``, ``newImagesCount``, ``hasNewImages``) until marked
seen. The rule for paid processings: when a template has ``processingParams`` naming a model
(``wdId`` or ``wdName``), every acquisition date a check finds over an AOI for the first time
starts one processing (charged like any create) from that date's images; where it states
that date is ``template_processing_date`` (its name by default). ``POST
/processings/template/{id}/v2`` (run) starts a processing from images the user picked.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import TYPE_CHECKING, Any

import shapely

from . import pricing
from .api_catalog import image_json
from .api_processings import _create_checked, processing_json
from .base import (
    ApiError,
    Request,
    Response,
    body_json,
    body_object,
    iso,
    json_response,
    page_args,
    parse_iso,
)
from .geo import measure, to_geojson
from .scenes import search_all
from .state import Template, TemplateAoi
from .world_service import imagery_date

if TYPE_CHECKING:
    from .service import Service

MAX_ACTIVE_SPAN_S = 184 * 86400  # activeUntil at most six months ahead
NAME_MAX = 64


# ----------------------------------------------------------------------------- helpers
def template_of(svc: Service, template_id: str) -> Template:
    t = svc.state.templates.get(template_id)
    if t is None or t.deleted:
        raise ApiError(
            404,
            "TEMPLATE_NOT_FOUND",
            f"Template {template_id} not found",
            {"templateId": template_id},
        )
    if not svc.mine(t):
        raise svc.forbid("template", template_id)
    return t


def _polygons(geom: Any) -> list:
    polys = pricing.polygons(geom)
    return polys


def _aois_from(svc: Service, features: Any) -> list[TemplateAoi]:
    """Named AOIs from ``aoiDetails.features`` or an ``aois`` list (one per Polygon)."""
    if not isinstance(features, list) or not features:
        raise ApiError(400, "BAD_REQUEST", "At least one AOI (a Polygon feature) is required")
    out = []
    now = svc.now()
    for f in features:
        if not isinstance(f, dict):
            raise ApiError(400, "BAD_REQUEST", "Each AOI must be an object with a geometry")
        name = f.get("name")
        if name is None and isinstance(f.get("properties"), dict):
            name = f["properties"].get("name")
        if name is not None and len(str(name)) > NAME_MAX:
            raise ApiError(400, "BAD_REQUEST", f"AOI names are at most {NAME_MAX} characters")
        geom = f.get("geometry")
        if isinstance(geom, dict) and geom.get("type") == "MultiPolygon":
            continue  # the service ignores MultiPolygon features
        for poly in _polygons(geom):
            area = int(round(measure([poly]).total_m2))
            out.append(
                TemplateAoi(
                    str(uuid.uuid4()),
                    to_geojson(poly),
                    None if name is None else str(name),
                    area,
                    now,
                )
            )
    if not out:
        raise ApiError(400, "BAD_REQUEST", "At least one Polygon AOI is required")
    return out


def _check_area(svc: Service, aois: list[TemplateAoi]) -> None:
    total = sum(a.area for a in aois)
    lim = int(svc.opts.template_area_limit_km2 * 1e6)
    if lim and total > lim:
        raise ApiError(
            400,
            "BAD_REQUEST",
            "You don't have enough limit, please contact admin!",
            {"area": total, "templateAreaLimit": lim},
        )


def _active_until(svc: Service, v: Any) -> float:
    ts = parse_iso(v)
    now = svc.now()
    if ts is None:
        return now + 180 * 86400
    if ts <= now:
        raise ApiError(400, "BAD_REQUEST", "activeUntil must be in the future")
    if ts > now + MAX_ACTIVE_SPAN_S:
        raise ApiError(400, "BAD_REQUEST", "activeUntil must be at most six months ahead")
    return ts


def _active_count(svc: Service) -> int:
    return sum(
        1 for t in svc.state.templates.values() if svc.mine(t) and not t.deleted and t.is_active
    )


def _search_filters(sp: Any) -> dict:
    if sp is None:
        return {}
    if not isinstance(sp, dict):
        raise ApiError(400, "BAD_REQUEST", "'searchParams' must be an object")
    return {k: copy.deepcopy(v) for k, v in sp.items() if k not in ("aoi", "aoiDetails")}


def _hits(svc: Service, t: Template, aoi: TemplateAoi, extra: dict | None = None) -> list[dict]:
    body = {**t.search_params, **(extra or {})}
    poly = shapely.geometry.shape(aoi.geometry)
    try:
        return search_all(
            poly,
            body,
            seed=svc.opts.seed,
            percent=svc.opts.catalog_cloud_cover_scale != "fraction",
            now=svc.now(),
        )
    except (TypeError, ValueError) as e:
        raise ApiError(400, "BAD_REQUEST", f"bad search filter: {e}") from None


def template_json(svc: Service, t: Template, *, short: bool = False) -> dict:
    procs = [p for p in svc.state.processings.values() if p.template_id == t.id]
    now = svc.now()
    new = set(t.new_images)
    feats = []
    for a in t.aois:
        poly = shapely.geometry.shape(a.geometry)
        plist = []
        for p in procs:
            g = shapely.union_all([shapely.geometry.shape(x.geometry) for x in p.aois])
            if g.intersects(poly):
                plist.append(
                    {
                        "processingId": p.id,
                        "processingName": p.name,
                        "processingStatus": p.status(now)[0],
                        "area": p.area,
                        "geometry": to_geojson(g),
                        "projectId": p.project_id,
                    }
                )
        has_new = bool(new) and any(h["id"] in new for h in _hits(svc, t, a)) if new else False
        feats.append(
            {
                "type": "Feature",
                "id": a.id,
                "geometry": a.geometry,
                "properties": {
                    "id": a.id,
                    "name": a.name,
                    "area": a.area,
                    "hasNewImages": has_new,
                    "processings": plist,
                },
            }
        )
    out = {
        "id": t.id,
        "name": t.name,
        "status": t.status,
        "userId": t.user_id,
        "projectId": t.project_id,
        "createdAt": iso(t.created),
        "updatedAt": iso(t.updated),
        "activeUntil": iso(t.active_until),
        "lastCheckedAt": iso(t.last_checked_at),
        "newImagesCount": len(t.new_images),
        "isActive": t.is_active and (t.active_until is None or t.active_until > now),
        "isArchived": False,
        "maxAoiIntersectionPercent": None,
        "area": sum(a.area for a in t.aois),
        "processingParams": copy.deepcopy(t.processing_params),
    }
    if not short:
        out["searchParams"] = {
            **copy.deepcopy(t.search_params),
            "aoiDetails": {"type": "FeatureCollection", "features": feats},
        }
    return out


def _wrapped(svc: Service, t: Template) -> dict:
    results = []
    for a in t.aois:
        for h in _hits(svc, t, a)[:100]:
            results.append({"id": h["id"], "metadata": {"aoiId": a.id, **_meta(h)}})
    return {"template": template_json(svc, t), "searchResults": results}


def _meta(h: dict) -> dict:
    return {k: v for k, v in h.items() if k not in ("footprint", "previewUrl")}


def _processing_name(svc: Service, t: Template, a: TemplateAoi, day: str) -> str:
    """The name of the processing a check starts over ``a`` for the images of ``day``:
    the template's and the AOI's, then the day unless the service states it elsewhere
    (``template_processing_date``)."""
    name = f"{t.name} {a.name or a.id[:8]}"
    return f"{name} {day}" if svc.opts.template_processing_date == "name" else name


# ----------------------------------------------------------------------------- the check
def check(svc: Service, t: Template, *, initial: bool = False) -> list[str]:
    """Re-run the template's search; returns the ids of processings it started."""
    started: list[str] = []
    known = set(t.known_images)
    dates = set(t.known_dates)
    for a in t.aois:
        hits = _hits(svc, t, a)
        by_date: dict[str, list[dict]] = {}
        for h in hits:
            if h["id"] not in known:
                known.add(h["id"])
                if not initial:
                    t.new_images.append(h["id"])
            day = str(h.get("acquisitionDate") or "")[:10]
            key = f"{a.id}|{day}"
            if key not in dates:
                dates.add(key)
                by_date.setdefault(day, []).append(h)
        pp = t.processing_params or {}
        if initial or not (pp.get("wdId") or pp.get("wdName")):
            continue
        for day, imgs in sorted(by_date.items()):
            prov = imgs[0].get("providerName")
            same = [h["id"] for h in imgs if h.get("providerName") == prov]
            body = {
                "name": _processing_name(svc, t, a, day),
                "projectId": t.project_id,
                "wdId": pp.get("wdId"),
                "wdName": pp.get("wdName"),
                "geometry": a.geometry,
                "blocks": pp.get("blocks") or [],
                "meta": {"source-app": "planned-processing", "templateId": t.id},
                "params": {
                    "sourceParams": {
                        "imagerySearch": {
                            "dataProvider": str(prov).lower(),
                            "imageIds": same,
                            "zoom": pp.get("zoom"),
                        }
                    }
                },
            }
            try:
                resp = _create_checked(svc, body, "v2", template_id=t.id, scene_ids=same)
            except ApiError:
                svc.state.counters.creates_refused += 1
                continue

            started.append(json.loads(resp.body)["id"])
    t.known_images = sorted(known)
    t.known_dates = sorted(dates)
    t.last_checked_at = svc.now()
    t.status = "READY"
    return started


def run_all(svc: Service) -> list[str]:
    """The daily run: check every active template (of every account)."""
    started = []
    saved = svc.current
    try:
        for t in list(svc.state.templates.values()):
            if t.deleted or not t.is_active or (t.active_until and t.active_until < svc.now()):
                continue
            svc.current = t.owner
            started += check(svc, t)
    finally:
        svc.current = saved
    svc.save()
    return started


# ----------------------------------------------------------------------------- routes
def create(svc: Service, req: Request) -> Response:
    body = body_object(req)
    name = body.get("name")
    if not name or not isinstance(name, str):
        raise ApiError(400, "BAD_REQUEST", "Template 'name' (string) is required")
    if not body.get("projectId"):
        raise ApiError(400, "BAD_REQUEST", "'projectId' is required")
    project = svc.project(str(body["projectId"]))
    sp = body.get("searchParams") or {}
    if not isinstance(sp, dict):
        raise ApiError(400, "BAD_REQUEST", "'searchParams' must be an object")
    feats = None
    if isinstance(sp.get("aoiDetails"), dict):
        feats = sp["aoiDetails"].get("features")
    elif sp.get("aoi") is not None:
        feats = [{"geometry": sp["aoi"], "name": body.get("aoiName")}]
    aois = _aois_from(svc, feats)
    _check_area(svc, aois)
    until = _active_until(svc, body.get("activeUntil"))
    pp = body.get("processingParams")
    if pp is not None and not isinstance(pp, dict):
        raise ApiError(400, "BAD_REQUEST", "'processingParams' must be an object")
    # A template needs no model: Geoalert's QGIS plugin creates its planned searches with
    # no processingParams at all (mapflow-qgis mapflow/mapflow.py:2497-2502,
    # mapflow/schema/template.py:422). A model named is checked; without one the template
    # only searches (``check`` starts nothing).
    if pp and (pp.get("wdId") or pp.get("wdName")):
        svc.find_model(pp.get("wdId"), pp.get("wdName"))
    now = svc.now()
    t = Template(
        id=str(uuid.uuid4()),
        name=name,
        project_id=project.id,
        user_id=svc.account.id,
        created=now,
        updated=now,
        active_until=until,
        search_params=_search_filters(sp),
        processing_params=copy.deepcopy(pp),
        aois=aois,
        owner=svc.current,
    )
    t.is_active = _active_count(svc) < int(svc.opts.max_active_templates)
    svc.state.templates[t.id] = t
    check(svc, t, initial=True)
    project.updated = now
    svc.save()
    return json_response(_wrapped(svc, t))


def list_all(svc: Service, req: Request) -> Response:
    ts = [t for t in svc.state.templates.values() if svc.mine(t) and not t.deleted]
    return json_response([template_json(svc, t) for t in svc.cap(ts)])


def of_project(svc: Service, req: Request, project_id: str) -> Response:
    svc.project(project_id)
    ts = [
        t
        for t in svc.state.templates.values()
        if t.project_id == project_id and not t.deleted and svc.mine(t)
    ]
    return json_response([template_json(svc, t, short=True) for t in svc.cap(ts)])


def of_user(svc: Service, req: Request, user_id: str) -> Response:
    if user_id != svc.account.id:
        raise svc.forbid("user", user_id)
    return list_all(svc, req)


def get(svc: Service, req: Request, template_id: str) -> Response:
    return json_response(_wrapped(svc, template_of(svc, template_id)))


def update(svc: Service, req: Request, template_id: str) -> Response:
    """Partial update: ``name``, ``activeUntil``, ``searchParams`` (merged; no geometry),
    ``processingParams`` (whole)."""
    t = template_of(svc, template_id)
    body = body_object(req, {})
    if "name" in body:
        if not body["name"] or not isinstance(body["name"], str):
            raise ApiError(400, "BAD_REQUEST", "'name' must be a non-empty string")
        t.name = body["name"]
    if "activeUntil" in body:
        t.active_until = _active_until(svc, body["activeUntil"])
    if body.get("searchParams") is not None:
        sp = body["searchParams"]
        if not isinstance(sp, dict):
            raise ApiError(400, "BAD_REQUEST", "'searchParams' must be an object")
        if sp.get("aoi") is not None or sp.get("aoiDetails") is not None:
            raise ApiError(400, "BAD_REQUEST", "Geometry updates are not supported")
        t.search_params.update(_search_filters(sp))
    if "processingParams" in body:
        pp = body["processingParams"]
        if pp is not None and not isinstance(pp, dict):
            raise ApiError(400, "BAD_REQUEST", "'processingParams' must be an object")
        t.processing_params = copy.deepcopy(pp)
    t.updated = svc.now()
    svc.save()
    return json_response(_wrapped(svc, t))


def delete(svc: Service, req: Request, template_id: str) -> Response:
    t = template_of(svc, template_id)
    t.deleted, t.is_active = True, False
    t.updated = svc.now()
    svc.save()
    return json_response({"id": t.id, "deleted": True})


def pause(svc: Service, req: Request, template_id: str) -> Response:
    t = template_of(svc, template_id)
    t.is_active = False
    t.updated = svc.now()
    svc.save()
    return json_response(_wrapped(svc, t))


def resume(svc: Service, req: Request, template_id: str) -> Response:
    t = template_of(svc, template_id)
    if not t.is_active:
        if _active_count(svc) >= int(svc.opts.max_active_templates):
            raise ApiError(
                400, "BAD_REQUEST", "You have reached the maximum number of active templates"
            )
        t.is_active = True
    if t.active_until is not None and t.active_until <= svc.now():
        t.active_until = svc.now() + 180 * 86400
    t.updated = svc.now()
    check(svc, t)
    svc.save()
    return json_response(_wrapped(svc, t))


def restart(svc: Service, req: Request, template_id: str) -> Response:
    """Re-run the search now (paid: new dates may start processings)."""
    t = template_of(svc, template_id)
    check(svc, t)
    svc.save()
    return json_response(_wrapped(svc, t))


def run_v2(svc: Service, req: Request, template_id: str) -> Response:
    """Start a processing from images of the template's results (a paid create)."""
    t = template_of(svc, template_id)
    body = body_object(req)
    body = {k: v for k, v in body.items() if k != "updateTemplateGeometry"}
    body.setdefault("projectId", t.project_id)
    found = {h["id"] for a in t.aois for h in _hits(svc, t, a)}
    try:
        resp = _create_checked(svc, body, "v2", template_id=t.id, scene_ids=found)
    except ApiError:
        svc.state.counters.creates_refused += 1
        raise
    return resp


def processings(svc: Service, req: Request, template_id: str) -> Response:
    """The template's processings, as v1 processings (flat ``params``)."""
    t = template_of(svc, template_id)
    now = svc.now()
    out = []
    for p in svc.state.processings.values():
        if p.template_id != t.id or not svc.listed(p, now):
            continue
        j = processing_json(svc, p, now=now)
        isp = ((p.params or {}).get("sourceParams") or {}).get("imagerySearch") or {}
        j["params"] = {
            "url": None,
            "zoom": isp.get("zoom"),
            "data_provider": isp.get("dataProvider"),
            "image_ids": isp.get("imageIds"),
        }
        if svc.opts.template_processing_date == "params":
            j["params"]["acquisition_date"] = imagery_date(svc, p)
        out.append(j)
    return json_response(svc.cap(out))


def images(svc: Service, req: Request, template_id: str) -> Response:
    """The template's results over the chosen AOIs (``aoiIds``; all when none), shaped
    like ``/catalog/meta``: exactly ``{images, total, limit, offset}``."""
    t = template_of(svc, template_id)
    body = body_object(req, {})
    limit, offset = page_args(body, 100)
    limit = svc.page_limit(limit)
    ids = body.get("aoiIds")
    aois = [a for a in t.aois if not ids or a.id in ids]
    if ids:
        unknown = set(ids) - {a.id for a in t.aois}
        if unknown:
            raise ApiError(
                404,
                "AOI_NOT_FOUND",
                f"AOI {sorted(unknown)[0]} not in template",
                {"aoiId": sorted(unknown)[0]},
            )
    seen: dict[str, dict] = {}
    extra = {k: body[k] for k in ("sortBy", "sortOrder") if k in body}
    for a in aois:
        for h in _hits(svc, t, a, extra):
            seen.setdefault(h["id"], h)
    hits = list(seen.values())
    new = set(t.new_images)
    page = []
    for h in hits[offset : offset + limit]:
        j = image_json(svc, h)
        j["isNew"] = h["id"] in new
        page.append(j)
    return json_response({"images": page, "total": len(hits), "limit": limit, "offset": offset})


def add_aois(svc: Service, req: Request, template_id: str) -> Response:
    t = template_of(svc, template_id)
    body = body_object(req)
    feats = body.get("aois")
    if feats is None and body.get("geometry") is not None:
        feats = [body]
    new = _aois_from(svc, feats)
    _check_area(svc, t.aois + new)
    t.aois.extend(new)
    check(svc, t, initial=True)  # images already in the catalog are not "new"
    t.updated = svc.now()
    svc.save()
    return json_response(
        {"addedCount": len(new), "partitioningTriggered": False, "aoiIds": [a.id for a in new]}
    )


def update_aoi(svc: Service, req: Request, template_id: str, aoi_id: str) -> Response:
    t = template_of(svc, template_id)
    a = next((x for x in t.aois if x.id == aoi_id), None)
    if a is None:
        raise ApiError(404, "AOI_NOT_FOUND", f"AOI {aoi_id} not in template", {"aoiId": aoi_id})
    body = body_object(req)
    if "name" in body:
        if body["name"] is not None and len(str(body["name"])) > NAME_MAX:
            raise ApiError(400, "BAD_REQUEST", f"AOI names are at most {NAME_MAX} characters")
        a.name = None if body["name"] is None else str(body["name"])
    if body.get("geometry") is not None:
        polys = _polygons(body["geometry"])
        if len(polys) != 1:
            raise ApiError(400, "BAD_REQUEST", "An AOI is one Polygon")
        a.geometry = to_geojson(polys[0])
        a.area = int(round(measure(polys).total_m2))
        _check_area(svc, t.aois)
    t.updated = svc.now()
    svc.save()
    return json_response({"id": a.id, "name": a.name, "area": a.area})


def delete_aois(svc: Service, req: Request, template_id: str) -> Response:
    t = template_of(svc, template_id)
    body = body_json(req, {})
    ids = body.get("aoiIds") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "BAD_REQUEST", "'aoiIds' (a list) is required")
    before = len(t.aois)
    t.aois = [a for a in t.aois if a.id not in set(ids)]
    if not t.aois:
        raise ApiError(400, "BAD_REQUEST", "A template keeps at least one AOI")
    t.updated = svc.now()
    svc.save()
    return json_response({"deletedCount": before - len(t.aois)})


def image_seen(svc: Service, req: Request, template_id: str, image_id: str) -> Response:
    t = template_of(svc, template_id)  # an id that is not new: a no-op (as the service)
    t.new_images = [i for i in t.new_images if i != image_id]
    svc.save()
    return json_response({"newImagesCount": len(t.new_images)})


def seen_all(svc: Service, req: Request, template_id: str) -> Response:
    t = template_of(svc, template_id)
    t.new_images = []
    svc.save()
    return json_response({"newImagesCount": 0})
