"""Processings API: create (v1, v2; charged), get, list, rename/move, delete, restart, AOIs,
results, and cost (v1, v2)."""

from __future__ import annotations

import copy
import json
import math
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import shapely

from . import catalog, damage, pricing, world, world_service
from .base import (
    ApiError,
    Request,
    Response,
    body_json,
    body_object,
    iso,
    json_response,
    page_args,
    u01,
)
from .geo import measure, to_geojson
from .scenes import scenes_for
from .state import Aoi, Attempt, Charge, Processing

if TYPE_CHECKING:
    from .service import Service

# Failure messages a failed AOI may carry: codes and parameters from the docs' table.
FAILURE_MESSAGES = [
    {
        "code": "dataloader.TileNotLoaded",
        "parameters": {"tile_location": "18/158485/81967", "status": "504"},
    },
    {"code": "dataloader.internalError", "parameters": {}},
    {
        "code": "source-validator.PixelSizeTooHigh",
        "parameters": {"max_res": "1.2", "level": "error", "actual_res": "5.620983603290215"},
    },
    {"code": "inference.internalError", "parameters": {}},
    {"code": "vector-processor.internalError", "parameters": {}},
]


# ----------------------------------------------------------------------------- create
def create_v2(svc: Service, req: Request) -> Response:
    return _create(svc, req, api="v2")


def create_v1(svc: Service, req: Request) -> Response:
    return _create(svc, req, api="v1")


def _create(svc: Service, req: Request, api: str) -> Response:
    body = body_object(req)
    try:
        return _create_checked(svc, body, api)
    except ApiError:
        svc.state.counters.creates_refused += 1
        raise


def _meta(meta: object) -> dict[str, str]:
    if not isinstance(meta, dict):
        raise ApiError(400, "BAD_REQUEST", "'meta' must be an object of string values")
    return {
        str(k): v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict | list) else str(v)
        for k, v in meta.items()
    }


def check_sources(svc: Service, src: dict, polys: list, extra_scene_ids: Any = ()) -> None:
    """Refuse unknown (404-like, answered 400) or foreign (403) source ids: My Imagery
    ``mosaicId`` / ``imageIds`` and imagery-search scene ids (which must be catalog scenes
    over the AOI, or ids a template found). Off with ``check_source_ids=False``."""
    if not svc.opts.check_source_ids:
        return
    if src["type"] == "myImagery":
        mid, iids = src.get("mosaicId"), src.get("imageIds") or []
        if not mid and not iids:
            raise ApiError(400, "BAD_REQUEST", "myImagery needs a mosaicId or imageIds")
        if mid:
            m = svc.state.mosaics.get(str(mid))
            if m is None:
                raise ApiError(
                    400, "MOSAIC_NOT_FOUND", f"Mosaic {mid} not found", {"mosaicId": mid}
                )
            if not svc.mine(m):
                raise svc.forbid("mosaic", str(mid))
        for iid in iids:
            i = svc.state.images.get(str(iid))
            if i is None:
                raise ApiError(400, "IMAGE_NOT_FOUND", f"Image {iid} not found", {"imageId": iid})
            if not svc.mine(i):
                raise svc.forbid("image", str(iid))
    elif src["type"] == "imagerySearch":
        ids = src.get("imageIds") or []
        if not ids:
            raise ApiError(400, "BAD_REQUEST", "imagerySearch needs imageIds")

        known = {sc["id"] for sc in scenes_for(shapely.union_all(polys), svc.opts.seed, svc.now())}
        known |= set(extra_scene_ids or ())
        for sid in ids:
            if sid not in known:
                raise ApiError(
                    400,
                    "IMAGE_NOT_FOUND",
                    f"Image {sid} is not in the catalog over this AOI",
                    {"imageId": sid},
                )


def _create_checked(
    svc: Service, body: dict, api: str, template_id: str | None = None, scene_ids: Any = ()
) -> Response:
    """Validate, price and bill a create; commit only when everything passed."""
    a = svc.account
    model = svc.find_model(body.get("wdId"), body.get("wdName"))
    pid = body.get("projectId")
    project = svc.project(str(pid)) if pid else svc.default_project()
    polys = pricing.polygons(body.get("geometry"))
    m = pricing.check_limits(a, polys)
    params = body.get("params") if body.get("params") is not None else {}
    src = pricing.source(svc, params)
    check_sources(svc, src, polys, scene_ids)
    meta = _meta(body.get("meta") or {})
    blocks = body.get("blocks") or []
    if not isinstance(blocks, list):
        raise ApiError(400, "BAD_REQUEST", "'blocks' must be a list of {name, enabled}")
    enabled = pricing.enabled_blocks(model, blocks)
    cost = pricing.cost(m.total_m2, model, enabled, src)
    area = int(round(m.total_m2))
    billing = a.billing_type.upper()
    if billing == "CREDITS" and cost > a.remaining_credits:
        raise ApiError(
            400,
            "INSUFFICIENT_CREDITS",
            f"Not enough credits: the processing costs {cost}, "
            f"remaining credits: {a.remaining_credits}",
            {"cost": cost, "remainingCredits": a.remaining_credits},
        )
    remaining_area = a.area_limit - a.processed_area
    if billing == "AREA" and area > remaining_area:
        raise ApiError(
            400,
            "INSUFFICIENT_AREA",
            f"Not enough area left: the processing is {area} sq.m., "
            f"remaining: {remaining_area} sq.m.",
            {"area": area, "remainingArea": remaining_area},
        )
    # ---- commit
    now = svc.now()
    aois = [
        Aoi(str(uuid.uuid4()), to_geojson(poly), int(round(ar)), shapely.to_wkb(poly, hex=True))
        for poly, ar in zip(polys, m.areas_m2, strict=True)
    ]
    proc = Processing(
        id=str(uuid.uuid4()),
        api=api,
        name=body.get("name") or "",
        description=body.get("description"),
        project_id=project.id,
        wd_id=model["id"],
        params=params,
        blocks=blocks,
        enabled_blocks=enabled,
        meta=meta,
        area=area,
        aoi_area=area,
        aoi_count=len(aois),
        cost=cost,
        charged=cost if billing == "CREDITS" else 0,
        charged_area=area if billing == "AREA" else 0,
        data_provider=(src.get("provider") or {}).get("name"),
        source_type=src["type"],
        vector_layer_id=str(uuid.uuid4()),
        raster_layer_id=str(uuid.uuid4()),
        created=now,
        updated=now,
        aois=aois,
        owner=svc.current,
        template_id=template_id,
    )
    for aoi in aois:
        new_attempt(svc, aoi, now)
    if billing == "CREDITS":
        a.remaining_credits -= cost
    a.processed_area += area
    a.updated = now
    svc.state.processings[proc.id] = proc
    project.updated = now
    svc.state.charges.append(
        Charge(proc.id, cost if billing == "CREDITS" else 0, area, billing, now, meta, api)
    )
    svc.state.counters.creates_committed += 1
    svc.save()
    return json_response(processing_json(svc, proc, created=True))


def new_attempt(svc: Service, aoi: Aoi, now: float) -> None:
    """Start a new attempt of ``aoi``: the current durations; fails with probability
    ``fail_fraction``, drawn from (seed, AOI geometry, attempt number)."""
    o = svc.opts
    n = len(aoi.attempts) + 1
    fail = u01(o.seed, "fail", aoi.wkb, n) < float(o.fail_fraction)
    msg = None
    if fail:
        msg = FAILURE_MESSAGES[int(u01(o.seed, "msg", aoi.wkb, n) * len(FAILURE_MESSAGES))]
    aoi.attempts.append(
        Attempt(
            n=n,
            start=now,
            unprocessed=float(o.unprocessed_seconds),
            awaiting=float(o.awaiting_seconds),
            processing=float(o.processing_seconds),
            fail=fail,
            message=msg,
        )
    )


# ----------------------------------------------------------------------------- read
def layer_urls(svc: Service, layer_id: str, ext: str) -> dict:
    """``tileJsonUrl`` / ``tileUrl`` of a layer on the simulator's own host (the token in
    the path with the hostile option ``tile_url_token_in_path``)."""
    base = f"{svc.base}/tiles/{layer_id}"
    if svc.opts.tile_url_token_in_path:
        base = f"{svc.base}/tiles/t/{quote(svc.token, safe='')}/{layer_id}"
    return {"tileJsonUrl": f"{base}/tile.json", "tileUrl": f"{base}/{{z}}/{{x}}/{{y}}.{ext}"}


#: the keys of each ``sourceParams`` variant, echoed null-filled (Q rebuilds them strictly)
SOURCE_KEYS = {
    "dataProvider": ("providerName", "zoom"),
    "myImagery": ("imageIds", "mosaicId"),
    "imagerySearch": ("dataProvider", "imageIds", "zoom"),
    "userDefined": ("sourceType", "url", "zoom", "crs", "rasterLogin", "rasterPassword"),
}


def echo_params(params: Any) -> Any:
    """The request's params as the service answers them: the chosen ``sourceParams``
    variant with every key (null where unset), ``zoom`` an int; v1 flat params as sent."""
    if not isinstance(params, dict):
        return params
    out = copy.deepcopy(params)
    sp = out.get("sourceParams")
    if isinstance(sp, dict):
        for variant, keys in SOURCE_KEYS.items():
            v = sp.get(variant)
            if isinstance(v, dict):
                full = {k: v.get(k) for k in keys}
                if variant == "dataProvider" and full["providerName"] is None:
                    full["providerName"] = v.get("name")
                if variant == "imagerySearch" and full["dataProvider"] is None:
                    full["dataProvider"] = v.get("providerName")
                if full.get("zoom") is not None:
                    try:
                        full["zoom"] = int(full["zoom"])
                    except (TypeError, ValueError):
                        pass
                sp[variant] = {**v, **full}
    return out


def echo_blocks(model: dict, blocks: Any, enabled: dict[str, bool]) -> list[dict]:
    """Every optional block of the model with ``enabled`` (and ``displayName``)."""
    out = []
    for b in model.get("blocks", []):
        if b.get("optional"):
            out.append(
                {
                    "name": b["name"],
                    "displayName": b.get("displayName") or b["name"],
                    "enabled": bool(enabled.get(b["name"], False)),
                }
            )
    return out


def review_json(proc: Processing) -> dict | None:
    if not proc.review_status:
        return None
    return {"reviewStatus": proc.review_status, "inReviewUntil": iso(proc.in_review_until)}


def rating_json(rating: Any) -> dict | None:
    if rating is None:
        return None
    if isinstance(rating, dict):
        return {"rating": rating.get("rating"), "feedback": rating.get("feedback")}
    return {"rating": rating, "feedback": None}


def processing_json(
    svc: Service, proc: Processing, *, created: bool = False, now: float | None = None
) -> dict:
    now = svc.now() if now is None else now
    model = svc.state.model(proc.wd_id) or {"id": proc.wd_id, "name": "?", "blocks": []}
    if created:
        status, pct, upd, msgs = "UNPROCESSED", 0, proc.updated, []
    else:
        status, pct, upd = proc.status(now)
        msgs = proc.messages(now) if status in ("FAILED", "IN_PROGRESS") else []
    if svc.opts.review_workflow and status == "OK" and proc.review_status is None and proc.aois:
        proc.review_status = "IN_REVIEW"
        proc.in_review_until = upd + 14 * 86400
    vl, rl = proc.vector_layer_id, proc.raster_layer_id
    return {
        "id": proc.id,
        "name": proc.name,
        "description": proc.description,
        "projectId": proc.project_id,
        "vectorLayer": {"id": vl, "name": proc.name, **layer_urls(svc, vl, "pbf")},
        "rasterLayer": {"id": rl, **layer_urls(svc, rl, "png")},
        "workflowDef": catalog.workflow_def(model),
        "aoiCount": proc.aoi_count,
        "area": proc.area,
        "aoiArea": proc.aoi_area,
        "cost": proc.cost,
        "status": status,
        "reviewStatus": review_json(proc),
        "rating": rating_json(proc.rating),
        "percentCompleted": pct,
        "params": echo_params(proc.params),
        "blocks": echo_blocks(model, proc.blocks, proc.enabled_blocks),
        "meta": dict(proc.meta),
        "messages": msgs,
        "created": iso(proc.created),
        "updated": iso(upd),
    }


def get_processing(svc: Service, req: Request, processing_id: str) -> Response:
    return json_response(processing_json(svc, svc.processing(processing_id)))


def list_processings(svc: Service, req: Request) -> Response:
    """Documented: "the user's processings by the Default project"; the simulator lists
    every processing of the account (the service's app does likewise), or ``?projectId=``'s.
    """
    now = svc.now()
    procs = [p for p in svc.state.processings.values() if svc.mine(p) and svc.listed(p, now)]
    pid = req.arg("projectId")
    if pid:
        procs = [p for p in procs if p.project_id == pid]
    return json_response([processing_json(svc, p, now=now) for p in svc.cap(procs)])


def list_of_project(svc: Service, req: Request, project_id: str) -> Response:
    svc.project(project_id)
    now = svc.now()
    procs = [p for p in svc.state.processings_of(project_id) if svc.listed(p, now)]
    return json_response([processing_json(svc, p, now=now) for p in svc.cap(procs)])


PAGE_SORT = {
    "CREATED": lambda j: j["created"] or "",
    "NAME": lambda j: str(j["name"]).lower(),
    "STATUS": lambda j: j["status"],
    "PROGRESS": lambda j: j["percentCompleted"],
    "AREA": lambda j: j["aoiArea"],
    "COST": lambda j: j["cost"],
    "SCENARIO": lambda j: j["workflowDef"]["name"],
    "PROJECT": lambda j: j["projectId"],
    "EMAIL": lambda j: "",
    "COMPLETED": lambda j: j["updated"] or "",
    "PROVIDER": lambda j: json.dumps(j["params"], sort_keys=True),
}


def page_of_project(svc: Service, req: Request, project_id: str) -> Response:
    """``POST /projects/{id}/processings/v2/page`` ``{limit, offset, terms, sortBy,
    sortOrder}`` → ``{results, total, count}`` (default page 30). Paged as a database
    pages: filtered and sorted on stored fields, then only the page's rows are read,
    except for a sort by what is computed when read (status, progress, ...)."""
    body = body_object(req, {})
    svc.project(project_id)
    limit, offset = page_args(body, 30)
    limit = svc.page_limit(limit)
    now = svc.now()
    procs = [p for p in svc.state.processings_of(project_id) if svc.listed(p, now)]
    if svc.opts.review_workflow:  # reading a processing that is OK marks it in review
        for p in procs:
            processing_json(svc, p, now=now)
    terms = str(body.get("terms") or body.get("filter") or "").strip().lower()
    if terms:
        procs = [
            p
            for p in procs
            if terms in str(p.name).lower()
            or terms in str(p.description or "").lower()
            or terms in p.id
        ]
    newest = str(body.get("sortOrder") or "DESC").upper() != "ASC"
    key = PAGE_SORT.get(str(body.get("sortBy") or "CREATED").upper(), PAGE_SORT["CREATED"])
    if key is PAGE_SORT["CREATED"]:
        procs.sort(key=lambda p: (iso(p.created) or "", p.id), reverse=newest)
        page = [processing_json(svc, p, now=now) for p in procs[offset : offset + limit]]
    else:
        rows = [processing_json(svc, p, now=now) for p in procs]
        rows.sort(key=lambda r: (key(r), r["id"]), reverse=newest)
        page = rows[offset : offset + limit]
    return json_response({"results": page, "total": len(procs), "count": len(page)})


def aois(svc: Service, req: Request, processing_id: str) -> Response:
    proc = svc.processing(processing_id)
    now = svc.now()
    out = []
    for a in proc.aois:
        st, pct, _ = a.status(now)
        msg = a.attempts[-1].message
        out.append(
            {
                "id": a.id,
                "status": st,
                "percentCompleted": pct,
                "geometry": a.geometry,
                "area": a.area,
                "messages": [copy.deepcopy(msg)] if st == "FAILED" and msg else [],
            }
        )
    return json_response(out)


def _require_ok(status: str, what: str, params: dict[str, Any]) -> None:
    """400 ``RESULT_NOT_READY`` unless ``what`` (an AOI, a processing) is OK."""
    if status != "OK":
        raise ApiError(
            400,
            "RESULT_NOT_READY",
            f"{what} is {status}; results are available when it is OK",
            {"status": status, **params},
        )


def result(svc: Service, req: Request, processing_id: str) -> Response:
    proc = svc.processing(processing_id)
    now = svc.now()
    aoi_id = req.arg("aoiId")
    if aoi_id and not svc.opts.result_per_aoi:
        raise ApiError(
            400, "BAD_REQUEST", "Unknown query parameter 'aoiId'", {"parameter": "aoiId"}
        )
    if aoi_id:
        chosen = [a for a in proc.aois if a.id == aoi_id]
        if not chosen:
            raise ApiError(
                404,
                "AOI_NOT_FOUND",
                f"AOI {aoi_id} not found in processing {processing_id}",
                {"aoiId": aoi_id},
            )
        _require_ok(chosen[0].status(now)[0], f"AOI {aoi_id}", {"aoiId": aoi_id})
    else:
        what = f"Processing {processing_id}"
        _require_ok(proc.status(now)[0], what, {"processingId": processing_id})
        chosen = proc.aois
    data = result_bytes(svc, proc, chosen)
    return Response(200, data, content_type="application/octet-stream")


def result_bytes(svc: Service, proc: Processing, aois: list[Aoi]) -> bytes:
    """The GeoJSON FeatureCollection of ``aois``: the world's objects on the imagery's date
    clipped to each AOI; feature ids are UUIDs from (AOI id, index)."""
    model = svc.state.model(proc.wd_id) or {"kind": "buildings"}
    kind = model.get("kind", "buildings")
    # the world as it stood on the imagery's date (scene, upload, provider vintage)
    seen = world_service.imagery_date(svc, proc)
    chunks = []
    for a in aois:
        poly = shapely.from_wkb(bytes.fromhex(a.wkb))
        geoms, props, ids = world.generate(
            kind,
            poly,
            svc.opts.seed,
            svc.opts.density,
            proc.enabled_blocks or {},
            options=svc.opts.world,
            date=seen,
            with_ids=True,
        )
        if not len(geoms):
            continue
        date = iso(a.attempts[-1].end)[:10]
        gj = shapely.to_geojson(geoms).tolist()
        if svc.result_damage > 0:  # the damaged_geometry fault (damage.py)
            for k, how in enumerate(damage.damage_kinds(ids, svc.opts.seed, svc.result_damage)):
                if how:
                    gj[k] = damage.damage_geometry(gj[k], how)
        ns = uuid.UUID(a.id)
        for k, (g, p) in enumerate(zip(gj, props, strict=False)):
            p = {"id": str(uuid.uuid5(ns, str(k))), **p}
            if kind == "buildings":
                p["processing_date"] = date
            p["imagery_date"] = seen
            chunks.append(
                '{"type":"Feature","geometry":' + g + ',"properties":' + json.dumps(p) + "}"
            )
    return ('{"type":"FeatureCollection","features":[' + ",".join(chunks) + "]}").encode()


# ----------------------------------------------------------------------------- change
def update_processing(svc: Service, req: Request, processing_id: str) -> Response:
    """Rename (``PUT /processing/{id}``) or move (``PUT /processings/{id}`` with
    ``projectId``); both accept name, description and projectId."""
    proc = svc.processing(processing_id)
    body = body_object(req, {})
    if "name" in body:
        proc.name = body["name"]
    if "description" in body:
        proc.description = body["description"]
    if body.get("projectId"):
        proc.project_id = svc.project(str(body["projectId"])).id
    proc.updated = svc.now()
    svc.save()
    return json_response(processing_json(svc, proc))


def _reviewable(svc: Service, proc: Processing) -> None:
    st = proc.status(svc.now())[0]
    if st != "OK":
        raise ApiError(
            400,
            "BAD_REQUEST",
            f"Processing {proc.id} is {st}; only OK processings can be rated or reviewed",
            {"status": st, "processingId": proc.id},
        )


def rate(svc: Service, req: Request, processing_id: str) -> Response:
    """``PUT /processings/{id}/rate`` ``{"rating": 1..5, "feedback": str}``."""
    proc = svc.processing(processing_id)
    body = body_object(req)
    try:
        r = int(body.get("rating"))
    except (TypeError, ValueError):
        r = 0
    if not 1 <= r <= 5 or str(body.get("rating")).strip() not in {str(r), f"{r}.0"}:
        raise ApiError(
            400,
            "BAD_REQUEST",
            "rating must be an integer from 1 to 5",
            {"rating": body.get("rating")},
        )
    _reviewable(svc, proc)
    fb = body.get("feedback")
    proc.rating = {"rating": r, "feedback": None if fb is None else str(fb)}
    proc.updated = svc.now()
    svc.save()
    return json_response(processing_json(svc, proc))


def accept(svc: Service, req: Request, processing_id: str) -> Response:
    """``PUT /processings/{id}/acceptation`` (no body): review status ACCEPTED."""
    proc = svc.processing(processing_id)
    _reviewable(svc, proc)
    if proc.review_status == "REFUNDED":
        raise ApiError(
            400, "BAD_REQUEST", "The processing was refunded", {"reviewStatus": "REFUNDED"}
        )
    proc.review_status, proc.in_review_until = "ACCEPTED", None
    proc.updated = svc.now()
    svc.save()
    return json_response(processing_json(svc, proc))


def reject(svc: Service, req: Request, processing_id: str) -> Response:
    """``PUT /processings/{id}/rejection`` ``{"comment", "features"}``: NOT_ACCEPTED."""
    proc = svc.processing(processing_id)
    body = body_json(req, {})
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
    feats = body.get("features")
    if feats is not None and not (
        isinstance(feats, dict) and isinstance(feats.get("features"), list)
    ):
        raise ApiError(400, "BAD_REQUEST", "'features' must be a GeoJSON FeatureCollection")
    _reviewable(svc, proc)
    now = svc.now()
    proc.review_status, proc.in_review_until = "NOT_ACCEPTED", now + 14 * 86400
    proc.review_comment = None if body.get("comment") is None else str(body["comment"])
    proc.updated = now
    svc.save()
    return json_response(processing_json(svc, proc))


def delete_processing(svc: Service, req: Request, processing_id: str) -> Response:
    svc.processing(processing_id)
    del svc.state.processings[processing_id]
    svc.save()
    return Response(204)


def restart(svc: Service, req: Request, processing_id: str) -> Response:
    """A new attempt for the FAILED AOIs only; charges nothing (a no-op without any)."""
    proc = svc.processing(processing_id)
    now = svc.now()
    restarted = 0
    for a in proc.aois:
        if a.status(now)[0] == "FAILED":
            new_attempt(svc, a, now)
            restarted += 1
    if restarted:
        proc.updated = now
        svc.save()
    return json_response(processing_json(svc, proc))


# ----------------------------------------------------------------------------- cost
def cost_v2(svc: Service, req: Request) -> Response:
    """A bare integer; ``areaSqKm`` wins over ``geometry``."""
    body = body_object(req)
    model = svc.find_model(body.get("wdId"), body.get("wdName"))
    src = pricing.source(svc, body.get("params"))
    if body.get("areaSqKm") is not None:
        try:
            area = float(body["areaSqKm"]) * 1e6
        except (TypeError, ValueError):
            raise ApiError(400, "BAD_REQUEST", "areaSqKm must be a number") from None
        if area < 0 or not math.isfinite(area):
            raise ApiError(400, "BAD_REQUEST", "areaSqKm must be a non-negative number")
    elif body.get("geometry") is not None:
        area = measure(pricing.polygons(body["geometry"])).total_m2
    else:
        raise ApiError(400, "BAD_REQUEST", "Provide either geometry or areaSqKm")
    enabled = pricing.enabled_blocks(model, body.get("blocks"))
    return json_response(pricing.cost(area, model, enabled, src))


def cost_v1(svc: Service, req: Request) -> Response:
    """``wdId``, ``geometry`` (or ``areaSqKm``), ``params.data_provider``."""
    body = body_object(req)
    model = svc.find_model(body.get("wdId"), body.get("wdName"))
    src = pricing.source(svc, body.get("params"))
    if body.get("geometry") is not None:
        area = measure(pricing.polygons(body["geometry"])).total_m2
    elif body.get("areaSqKm") is not None:
        area = float(body["areaSqKm"]) * 1e6
    else:
        raise ApiError(400, "BAD_REQUEST", "'geometry' is required")
    enabled = pricing.enabled_blocks(model, body.get("blocks"))
    return json_response(pricing.cost(area, model, enabled, src))
