"""Simulator admin routes (``/_sim/...``): request log, state snapshot, faults, clock,
simulator errors, the world's ground truth. No auth, never logged, never faulted.

Handlers take the running :class:`~.server.Server` (request log, faults, errors live
there) and the parsed JSON body (``{}`` when empty; a GET's query parameters instead).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .api_account import user_status_body
from .base import Response, iso
from .world_service import MAX_BBOX_KM2, BboxTooLarge

if TYPE_CHECKING:
    from .server import Server
    from .service import Service


def js(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False, default=str).encode())


def snapshot(svc: Service) -> dict:
    """The ``/_sim/state`` view: account, projects, processings (status, attempts,
    charges), charges, counters, mosaic and image counts."""
    now = svc.now()
    with svc.lock:
        st = svc.state
        procs = []
        for p in st.processings.values():
            status, pct, _ = p.status(now)
            procs.append(
                {
                    "id": p.id,
                    "name": p.name,
                    "projectId": p.project_id,
                    "status": status,
                    "percentCompleted": pct,
                    "cost": p.cost,
                    "area": p.area,
                    "aoiCount": p.aoi_count,
                    "meta": p.meta,
                    "charges": st.charges_for(p.id),
                    "attempts": [len(a.attempts) for a in p.aois],
                }
            )
        return {
            "now": iso(now),
            "account": user_status_body(svc) | {"models": None, "dataProviders": None},
            "projects": [
                {"id": p.id, "name": p.name, "isDefault": p.is_default}
                for p in st.projects.values()
            ],
            "processings": procs,
            "charges": [c.to_dict() for c in st.charges],
            "counters": st.counters.to_dict(),
            "mosaics": len(st.mosaics),
            "images": len(st.images),
        }


def requests(server: Server, payload: Any) -> Response:
    return js([r.to_dict() for r in server.requests])


def clear_requests(server: Server, payload: Any) -> Response:
    server.clear_requests()
    return js({"ok": True})


def state(server: Server, payload: Any) -> Response:
    return js(server.snapshot())


def get_faults(server: Server, payload: Any) -> Response:
    return js(server.faults)


def set_faults(server: Server, payload: Any) -> Response:
    try:
        server.set_faults(payload)
    except ValueError as e:
        return js({"code": "BAD_REQUEST", "message": str(e)}, 400)
    return js(server.faults)


def clock(server: Server, payload: Any) -> Response:
    server.advance(float(payload.get("advance", 0)))
    return js({"now": server.service.now()})


def errors(server: Server, payload: Any) -> Response:
    return js(server.errors)


def world(server: Server, payload: Any) -> Response:
    """``GET /_sim/world?bbox=minx,miny,maxx,maxy&model=buildings&date=YYYY-MM-DD``: the
    whole (unclipped) objects of the world on that date (none: today) as a GeoJSON
    FeatureCollection, as ``server.truth_geojson`` gives them; a bbox over
    ``world_service.MAX_BBOX_KM2`` → 400 ``BBOX_TOO_LARGE``; a bad bbox, model or date →
    400 ``BAD_REQUEST``."""
    q = {k: payload.get(k) for k in ("bbox", "model", "date")}
    if not q["bbox"]:
        return js({"code": "BAD_REQUEST", "message": "bbox=minx,miny,maxx,maxy is required"}, 400)
    try:
        fc = server.truth_geojson(
            str(q["bbox"]), q["model"] or "buildings", date=q["date"] or None, max_km2=MAX_BBOX_KM2
        )
    except BboxTooLarge as e:
        params = {"areaKm2": round(e.km2, 3), "maxAreaKm2": e.limit}
        return js({"code": "BBOX_TOO_LARGE", "message": str(e), "params": params}, 400)
    except (TypeError, ValueError) as e:
        return js({"code": "BAD_REQUEST", "message": str(e), "params": q}, 400)
    return Response(200, json.dumps(fc).encode(), content_type="application/geo+json")


def run_templates(server: Server, payload: Any) -> Response:
    """``POST /_sim/templates/run``: the service's daily run of planned processings."""
    return js({"started": server.run_templates()})
