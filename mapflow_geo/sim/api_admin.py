"""Simulator admin routes (``/_sim/...``): request log, state snapshot, faults, clock,
simulator errors. No auth, never logged, never faulted.

Handlers take the running :class:`~.server.Server` (request log, faults, errors live
there) and the parsed JSON body (``{}`` when empty).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .api_account import user_status_body
from .base import Response, iso

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


def run_templates(server: Server, payload: Any) -> Response:
    """``POST /_sim/templates/run``: the service's daily run of planned processings."""
    return js({"started": server.run_templates()})
