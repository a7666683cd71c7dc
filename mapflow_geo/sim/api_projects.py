"""Projects API: list, default, get, create, update, delete, share."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from . import catalog
from .api_account import user_obj
from .base import (
    ApiError,
    Request,
    Response,
    body_json,
    body_object,
    iso,
    json_response,
    page_args,
)
from .state import TERMINAL, Processing, Project, Share

if TYPE_CHECKING:
    from .service import Service

ROLES = ("readonly", "contributor", "maintainer", "owner")


def project_json(svc: Service, p: Project, procs: list[Processing] | None = None) -> dict:
    if procs is None:
        procs = svc.state.processings_of(p.id)
    owner_email = svc.state.account.email if p.owner is None else p.owner
    now = svc.now()
    views = [x.status(now) for x in procs]
    details: dict[str, dict] = {}
    for x, (st, _pct, upd) in zip(procs, views, strict=False):
        d = details.setdefault(
            st, {"status": st, "count": 0, "area": 0, "statusUpdateDate": iso(upd)}
        )
        d["count"] += 1
        d["area"] += x.area
    if not views:
        pstat, ppct = "UNPROCESSED", 0
    elif all(v[0] in TERMINAL for v in views):
        pstat = "FAILED" if any(v[0] == "FAILED" for v in views) else "OK"
        ppct = int(sum(v[1] for v in views) / len(views))
    else:
        pstat, ppct = "IN_PROGRESS", int(sum(v[1] for v in views) / len(views))
    progress = {"status": pstat, "percentCompleted": ppct, "details": list(details.values())}
    if views and pstat in TERMINAL:
        progress["completionDate"] = iso(max(v[2] for v in views))
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "progress": progress,
        "aoiCount": sum(x.aoi_count for x in procs),
        "area": sum(x.area for x in procs),
        "user": user_obj(svc, owner_email),
        "isDefault": p.is_default,
        "created": iso(p.created),
        "updated": iso(p.updated),
        "billingType": svc.account.billing_type,
        "workflowDefs": [catalog.workflow_def(m) for m in svc.state.models],
        "shares": [s.to_dict() for s in p.shares],
        "shareProject": {
            "owners": [{"email": owner_email, "role": "owner"}],
            "users": [{"email": s.email, "role": s.role} for s in p.shares],
        },
        "processingCounts": {
            "succeeded": sum(1 for v in views if v[0] == "OK"),
            "failed": sum(1 for v in views if v[0] == "FAILED"),
        },
        "templatesCount": sum(
            1 for t in svc.state.templates.values() if t.project_id == p.id and not t.deleted
        ),
    }


def visible_projects(svc: Service) -> list[Project]:
    """The current account's projects and those shared with it."""
    email = svc.account.email
    return [
        p
        for p in svc.state.projects.values()
        if svc.mine(p) or any(s.email == email for s in p.shares)
    ]


def list_projects(svc: Service, req: Request) -> Response:
    by_project: dict[str, list] = {}
    for x in svc.state.processings.values():
        by_project.setdefault(x.project_id, []).append(x)
    svc.default_project()
    return json_response(
        [project_json(svc, p, by_project.get(p.id, [])) for p in svc.cap(visible_projects(svc))]
    )


_PROJECT_SORT = {
    "NAME": lambda p: p.name.lower(),
    "CREATED": lambda p: p.created,
    "UPDATED": lambda p: p.updated,
}


def page_projects(svc: Service, req: Request) -> Response:
    """``POST /projects/page`` ``{limit, offset, filter, sortBy, sortOrder}`` →
    ``{results, total, count}`` (default page 20; the default project always exists)."""
    body = body_object(req, {})
    limit, offset = page_args(body, 20)
    limit = svc.page_limit(limit)
    svc.default_project()
    projs = visible_projects(svc)
    flt = str(body.get("filter") or body.get("terms") or "").strip().lower()
    if flt:
        projs = [p for p in projs if flt in p.name.lower() or flt in (p.description or "").lower()]
    key = _PROJECT_SORT.get(str(body.get("sortBy") or "UPDATED").upper(), _PROJECT_SORT["UPDATED"])
    projs.sort(
        key=lambda p: (key(p), p.id), reverse=str(body.get("sortOrder") or "DESC").upper() != "ASC"
    )
    page = projs[offset : offset + limit]
    by_project: dict[str, list] = {}
    for x in svc.state.processings.values():
        by_project.setdefault(x.project_id, []).append(x)
    results = [project_json(svc, p, by_project.get(p.id, [])) for p in page]
    return json_response({"results": results, "total": len(projs), "count": len(results)})


def get_default_project(svc: Service, req: Request) -> Response:
    return json_response(project_json(svc, svc.default_project()))


def get_project(svc: Service, req: Request, project_id: str) -> Response:
    return json_response(project_json(svc, svc.project(project_id)))


def create_project(svc: Service, req: Request) -> Response:
    body = body_json(req)
    if not isinstance(body, dict) or not body.get("name") or not isinstance(body["name"], str):
        raise ApiError(400, "BAD_REQUEST", "Project 'name' (string) is required")
    p = svc.new_project(str(uuid.uuid4()), body["name"], body.get("description"))
    svc.save()
    return json_response(project_json(svc, p, []))


def update_project(svc: Service, req: Request, project_id: str) -> Response:
    p = svc.project(project_id)
    body = body_object(req, {})
    if "name" in body:
        p.name = body["name"]
    if "description" in body:
        p.description = body["description"]
    p.updated = svc.now()
    svc.save()
    return json_response(project_json(svc, p))


def delete_project(svc: Service, req: Request, project_id: str) -> Response:
    p = svc.project(project_id, create_doc=False)
    if not svc.mine(p):
        raise svc.forbid("project", project_id)
    if p.is_default:
        raise ApiError(
            400,
            "CANNOT_DELETE_DEFAULT_PROJECT",
            "The default project cannot be deleted",
            {"projectId": project_id},
        )
    for x in svc.state.processings_of(project_id):
        del svc.state.processings[x.id]
    del svc.state.projects[project_id]
    svc.save()
    return Response(204)


def share_project(svc: Service, req: Request) -> Response:
    body = body_object(req)
    p = svc.project(str(body.get("projectId") or ""))
    em = body.get("email")
    role = str(body.get("role") or "").lower()
    if not em or "@" not in str(em):
        raise ApiError(400, "BAD_REQUEST", "A valid 'email' is required")
    if role not in ROLES:
        raise ApiError(
            400,
            "INVALID_ROLE",
            f"Role must be one of {', '.join(ROLES)}",
            {"role": body.get("role")},
        )
    p.shares = [s for s in p.shares if s.email != em]
    p.shares.append(Share(p.id, em, role))
    svc.state.shares.append(Share(p.id, em, role, time=svc.now()))
    svc.save()
    return json_response({"projectId": p.id, "email": em, "role": role})
