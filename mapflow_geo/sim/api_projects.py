"""Projects API: list, default, get, create, update, delete, share."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .api_account import user_obj
from .base import ApiError, Request, Response, body_json, body_object, iso, json_response
from .state import TERMINAL, Processing, Project, Share

if TYPE_CHECKING:
    from .service import Service

ROLES = ("readonly", "contributor", "maintainer", "owner")


def project_json(svc: Service, p: Project, procs: list[Processing] | None = None) -> dict:
    if procs is None:
        procs = svc.state.processings_of(p.id)
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
        "user": user_obj(svc),
        "isDefault": p.is_default,
        "created": iso(p.created),
        "updated": iso(p.updated),
        "workflowDefs": [
            {
                "id": m["id"],
                "name": m["name"],
                "description": m.get("description"),
                "created": "2022-10-20T14:54:59.690562Z",
                "updated": "2022-10-20T14:54:59.690562Z",
            }
            for m in svc.state.models
        ],
        "shares": [s.to_dict() for s in p.shares],
    }


def list_projects(svc: Service, req: Request) -> Response:
    by_project: dict[str, list] = {}
    for x in svc.state.processings.values():
        by_project.setdefault(x.project_id, []).append(x)
    svc.default_project()
    return json_response(
        [project_json(svc, p, by_project.get(p.id, [])) for p in svc.state.projects.values()]
    )


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
