"""Processings API: create (v1, v2; charged), get, list, rename/move, delete, restart, AOIs,
results, and cost (v1, v2)."""

from __future__ import annotations

import copy
import json
import math
import uuid
from typing import TYPE_CHECKING

import shapely

from . import catalog, pricing, world
from .base import ApiError, Request, Response, body_object, iso, json_response, u01
from .geo import measure, to_geojson
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


def _create_checked(svc: Service, body: dict, api: str) -> Response:
    """Validate, price and bill a create; commit only when everything passed."""
    a = svc.state.account
    model = svc.find_model(body.get("wdId"), body.get("wdName"))
    pid = body.get("projectId")
    project = svc.project(str(pid)) if pid else svc.default_project()
    polys = pricing.polygons(body.get("geometry"))
    m = pricing.check_limits(a, polys)
    params = body.get("params") if body.get("params") is not None else {}
    src = pricing.source(svc, params)
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
def processing_json(
    svc: Service, proc: Processing, *, created: bool = False, now: float | None = None
) -> dict:
    now = svc.now() if now is None else now
    model = svc.state.model(proc.wd_id) or {"id": proc.wd_id, "name": "?"}
    if created:
        status, pct, upd, msgs = "UNPROCESSED", 0, proc.updated, []
    else:
        status, pct, upd = proc.status(now)
        msgs = proc.messages(now) if status in ("FAILED", "IN_PROGRESS") else []
    vl, rl = proc.vector_layer_id, proc.raster_layer_id
    cogs = "https://app.mapflow.ai/api/v0/cogs"
    wd = catalog.public_model(model)
    wd["blocks"] = [
        dict(b, description=b.get("displayName", b["name"])) for b in wd.get("blocks", [])
    ]
    return {
        "id": proc.id,
        "name": proc.name,
        "description": proc.description,
        "projectId": proc.project_id,
        "vectorLayer": {
            "id": vl,
            "name": proc.name,
            "tileJsonUrl": f"https://app.mapflow.ai/api/layers/{vl}.json",
            "tileUrl": f"https://app.mapflow.ai/api/layers/{vl}/tiles/{{z}}/{{x}}/{{y}}.vector.pbf",
        },
        "rasterLayer": {
            "id": rl,
            "tileJsonUrl": f"{cogs}/tiles.json?uri=s3://mapflow-rasters/{rl}",
            "tileUrl": f"{cogs}/tiles/{{z}}/{{x}}/{{y}}.png?uri=s3://mapflow-rasters/{rl}",
        },
        "workflowDef": wd,
        "aoiCount": proc.aoi_count,
        "area": proc.area,
        "aoiArea": proc.aoi_area,
        "cost": proc.cost,
        "status": status,
        "reviewStatus": proc.review_status,
        "rating": proc.rating,
        "percentCompleted": pct,
        "params": copy.deepcopy(proc.params),
        "blocks": proc.blocks,
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
    procs = list(svc.state.processings.values())
    pid = req.arg("projectId")
    if pid:
        procs = [p for p in procs if p.project_id == pid]
    return json_response([processing_json(svc, p, now=now) for p in procs])


def list_of_project(svc: Service, req: Request, project_id: str) -> Response:
    svc.project(project_id)
    now = svc.now()
    procs = svc.state.processings_of(project_id)
    return json_response([processing_json(svc, p, now=now) for p in procs])


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


def result(svc: Service, req: Request, processing_id: str) -> Response:
    proc = svc.processing(processing_id)
    now = svc.now()
    aoi_id = req.arg("aoiId")
    if aoi_id:
        chosen = [a for a in proc.aois if a.id == aoi_id]
        if not chosen:
            raise ApiError(
                404,
                "AOI_NOT_FOUND",
                f"AOI {aoi_id} not found in processing {processing_id}",
                {"aoiId": aoi_id},
            )
        st = chosen[0].status(now)[0]
        if st != "OK":
            raise ApiError(
                400,
                "RESULT_NOT_READY",
                f"AOI {aoi_id} is {st}; results are available when it is OK",
                {"status": st, "aoiId": aoi_id},
            )
    else:
        st = proc.status(now)[0]
        if st != "OK":
            raise ApiError(
                400,
                "RESULT_NOT_READY",
                f"Processing {processing_id} is {st}; results are available when it is OK",
                {"status": st, "processingId": processing_id},
            )
        chosen = proc.aois
    data = result_bytes(svc, proc, chosen)
    return Response(200, data, content_type="application/octet-stream")


def result_bytes(svc: Service, proc: Processing, aois: list[Aoi]) -> bytes:
    """The GeoJSON FeatureCollection of ``aois``: the world's objects clipped to each AOI;
    feature ids are UUIDs from (AOI id, index)."""
    model = svc.state.model(proc.wd_id) or {"kind": "buildings"}
    kind = model.get("kind", "buildings")
    chunks = []
    for a in aois:
        poly = shapely.from_wkb(bytes.fromhex(a.wkb))
        geoms, props = world.generate(
            kind, poly, svc.opts.seed, svc.opts.density, proc.enabled_blocks or {}
        )
        if not len(geoms):
            continue
        date = iso(a.attempts[-1].end)[:10]
        gj = shapely.to_geojson(geoms)
        ns = uuid.UUID(a.id)
        for k, (g, p) in enumerate(zip(gj, props, strict=False)):
            p = {"id": str(uuid.uuid5(ns, str(k))), **p}
            if kind == "buildings":
                p["processing_date"] = date
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
