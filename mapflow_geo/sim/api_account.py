"""Account API: ``GET /user/status`` and ``POST /processings/stats`` (JSON or CSV)."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from . import catalog, world_service
from .base import ApiError, Request, Response, body_object, det_uuid, iso, json_response, parse_iso
from .state import TERMINAL

if TYPE_CHECKING:
    from .service import Service

STATS_CSV_COLUMNS = [
    "projectName",
    "name",
    "email",
    "area",
    "cost",
    "created",
    "completionDate",
    "status",
    "percentCompleted",
    "archived",
    "dataProvider",
    "linkToMap",
    "scenario",
    "id",
]


def user_status(svc: Service, req: Request) -> Response:
    return json_response(user_status_body(svc))


def version(svc: Service, req: Request) -> Response:
    """``GET /version``: plain text, the plugin version the service expects."""
    return Response(200, str(svc.opts.plugin_version).encode(), content_type="text/plain")


def user_status_body(svc: Service) -> dict:
    """The ``/user/status`` answer: the older top-level fields and the 2026 ``user``."""
    a = svc.account
    return {
        "id": a.id,
        "email": a.email,
        "login": a.login,
        "role": a.role,
        "processedArea": a.processed_area,
        "remainingArea": max(a.area_limit - a.processed_area, 0),
        "areaLimit": a.area_limit,
        "aoiAreaLimit": a.aoi_area_limit,
        "memoryLimit": a.memory_limit,
        "memoryUsed": sum(i.file_size for i in svc.state.images.values() if svc.mine(i)),
        "billingType": a.billing_type,
        "remainingCredits": a.remaining_credits,
        "maxAoisPerProcessing": a.max_aois_per_processing,
        "isPremium": a.is_premium,
        "templateAreaLimit": int(svc.opts.template_area_limit_km2 * 1e6),
        "searchAreaLimit": int(svc.opts.catalog_area_limit_km2 * 1e6),
        "reviewWorkflowEnabled": bool(svc.opts.review_workflow),
        "models": [catalog.public_model(m) for m in svc.state.models],
        # with each provider's imagery date ("vintage": world_service)
        "dataProviders": [world_service.provider_json(svc.opts, p) for p in svc.state.providers],
        "searchDataProviders": [
            world_service.provider_json(svc.opts, p)
            for p in svc.state.providers
            if p.get("search") or p.get("minAreaSqKm")
        ],
        "teams": [
            {
                "teamId": det_uuid("team", a.email),
                "name": "Simulated team",
                "role": "OWNER",
                "activeUntil": None,
                "creditsLimit": None,
            }
        ],
        "user": {"id": a.id, "email": a.email, "credits": a.remaining_credits},
    }


def user_obj(svc: Service, email: str | None = None) -> dict:
    """The ``user`` object embedded in project answers (the project's owner)."""
    a = svc.account
    if email is not None and email != a.email:
        a = (
            svc.state.account
            if email == svc.state.account.email
            else svc.state.others.get(email, a)
        )
    return {
        "id": a.id,
        "login": a.login,
        "email": a.email,
        "role": a.role,
        "areaLimit": a.area_limit,
        "aoiAreaLimit": a.aoi_area_limit,
        "processedArea": a.processed_area,
        "created": iso(a.created),
        "updated": iso(a.updated),
        "isPremium": a.is_premium,
        "templateAreaLimit": int(svc.opts.template_area_limit_km2 * 1e6),
        "reviewWorkflowEnabled": bool(svc.opts.review_workflow),
        "isCustomer": True,
    }


def _statuses(body: dict) -> set[str]:
    statuses = body.get("statuses") or []
    if isinstance(statuses, str):
        statuses = [statuses]
    out = {str(s).upper().replace("CANCELED", "CANCELLED") for s in statuses}
    flt = body.get("filter")
    if isinstance(flt, str) and flt.lower().startswith("status="):
        out |= {s.strip().upper() for s in flt.split("=", 1)[1].split(",")}
    return out


def _rows(svc: Service, body: dict) -> list[dict]:
    now = svc.now()
    d_from, d_to = parse_iso(body.get("dateFrom")), parse_iso(body.get("dateTo"))
    statuses = _statuses(body)
    terms = str(body.get("terms") or "").lower()
    site = svc.base.rsplit("/rest", 1)[0]
    rows = []
    for p in svc.state.processings.values():
        if not svc.mine(p):
            continue
        st, pct, upd = p.status(now)
        if d_from is not None and p.created < d_from:
            continue
        if d_to is not None and p.created > d_to:
            continue
        if statuses and st not in statuses:
            continue
        model = svc.state.model(p.wd_id) or {"name": ""}
        proj = svc.state.projects.get(p.project_id)
        row = {
            "id": p.id,
            "projectName": proj.name if proj else "",
            "name": p.name,
            "email": svc.account.email,
            "area": str(p.area),
            "cost": str(p.cost),
            "created": iso(p.created),
            "completionDate": iso(upd) if st in TERMINAL else None,
            "status": st,
            "percentCompleted": str(pct),
            "archived": "false",
            "dataProvider": p.data_provider,
            "linkToMap": f"{site}/projects/{p.project_id}/processings/{p.id}",
            "scenario": model["name"],
        }
        if terms and terms not in json.dumps(row, ensure_ascii=False).lower():
            continue
        rows.append(row)
    return rows


def stats(svc: Service, req: Request) -> Response:
    kind = (req.arg("type") or "JSON").upper()
    body = body_object(req, {})
    rows = _rows(svc, body)
    key, _, order = str(body.get("sort") or "created:desc").partition(":")
    if rows and key in rows[0]:
        rows.sort(
            key=lambda r: (r.get(key) is None, _num_or_str(r.get(key))),
            reverse=order.lower() != "asc",
        )
    total = len(rows)
    total_cost = sum(int(r["cost"]) for r in rows)
    total_area = sum(int(r["area"]) for r in rows)
    page, per = body.get("page"), body.get("perPage")
    if page and per:
        page, per = max(int(page), 1), max(int(per), 1)
        rows = rows[(page - 1) * per : page * per]
    if kind == "CSV":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=STATS_CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in STATS_CSV_COLUMNS})
        return Response(200, buf.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    if kind != "JSON":
        raise ApiError(400, "BAD_REQUEST", "type must be JSON or CSV", {"type": kind})
    return json_response(
        {
            "results": rows,
            "total": total,
            "count": len(rows),
            "totalCost": total_cost,
            "totalArea": total_area,
        }
    )


def _num_or_str(v: Any) -> tuple:
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))
