"""THE route table of the simulator: every route, its handler and its flags, in one place.

A :class:`Route` says explicitly whether it is a **paid create** (``paid_create=True``): a
create that commits something the account pays for or keeps (a processing is charged
credits or area; a project, mosaic or image is created; an upload takes storage). The
dispatcher (``dispatch``) reads only that flag, never a handler's name: on a 2xx
answer of a paid create it marks the response ``committed_create``, which arms the
``after_create`` failpoint and the ``drop_create_response`` fault (``server.py``).
Renaming a handler changes nothing.

API routes (``admin=False``) match the path below ``/rest`` (or the bare path, e.g. the
older page's ``/catalog/meta``), need the account's token, are logged and may be faulted.
Admin routes (``admin=True``) match ``/_sim/...``: no auth, never logged, never faulted;
their handlers take the :class:`~.server.Server` instead of the service.

Order matters where patterns overlap: the first route whose pattern and method match wins
(``/projects/default`` before ``/projects/{project_id}``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import (
    api_account,
    api_admin,
    api_catalog,
    api_data,
    api_processings,
    api_projects,
    api_templates,
    api_tiles,
)
from .base import ApiError, Request, Response, base_url, json_response
from .service import Service


@dataclass(frozen=True)
class Route:
    method: str
    #: the path (below ``/rest`` for API routes); ``{name}`` is one path segment, passed to
    #: the handler as the keyword argument ``name``
    path: str
    handler: Callable
    paid_create: bool = False
    admin: bool = False
    #: no ``Authorization`` needed (the tile URLs that carry the token in their path)
    public: bool = False
    regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{(\w+)\}", self.path)  # literal, name, literal, name, ...
        rx = "".join(f"(?P<{p}>[^/]+)" if k % 2 else re.escape(p) for k, p in enumerate(parts))
        object.__setattr__(self, "regex", re.compile("^" + rx + "$"))


ROUTES: list[Route] = [
    # ---- account (api_account)
    Route("GET", "/user/status", api_account.user_status),
    Route("GET", "/version", api_account.version),
    Route("POST", "/processings/stats", api_account.stats),
    # ---- projects (api_projects)
    Route("GET", "/projects", api_projects.list_projects),
    Route("POST", "/projects/page", api_projects.page_projects),
    Route("POST", "/projects", api_projects.create_project, paid_create=True),
    Route("GET", "/projects/default", api_projects.get_default_project),
    Route("POST", "/projects/share", api_projects.share_project),
    Route("GET", "/projects/{project_id}", api_projects.get_project),
    Route("PUT", "/projects/{project_id}", api_projects.update_project),
    Route("DELETE", "/projects/{project_id}", api_projects.delete_project),
    Route("GET", "/projects/{project_id}/processings/v2", api_processings.list_of_project),
    Route("POST", "/projects/{project_id}/processings/v2/page", api_processings.page_of_project),
    Route("GET", "/projects/{project_id}/processings", api_processings.list_of_project),
    # ---- planned processings (api_templates); before /processings/{processing_id}
    Route("POST", "/processings/template", api_templates.create),
    Route("GET", "/processings/template", api_templates.list_all),
    Route("GET", "/processings/template/project/{project_id}", api_templates.of_project),
    Route("GET", "/processings/template/user/{user_id}", api_templates.of_user),
    Route("GET", "/processings/template/{template_id}", api_templates.get),
    Route("PUT", "/processings/template/{template_id}", api_templates.update),
    Route("DELETE", "/processings/template/{template_id}", api_templates.delete),
    Route("POST", "/processings/template/{template_id}/pause", api_templates.pause),
    # resume and restart re-run the search: new acquisition dates start paid processings
    Route(
        "POST", "/processings/template/{template_id}/resume", api_templates.resume, paid_create=True
    ),
    Route(
        "POST",
        "/processings/template/{template_id}/restart",
        api_templates.restart,
        paid_create=True,
    ),
    Route("POST", "/processings/template/{template_id}/v2", api_templates.run_v2, paid_create=True),
    Route("GET", "/processings/template/{template_id}/processings", api_templates.processings),
    Route("POST", "/processings/template/{template_id}/images", api_templates.images),
    Route("POST", "/processings/template/{template_id}/aoi", api_templates.add_aois),
    Route("DELETE", "/processings/template/{template_id}/aoi", api_templates.delete_aois),
    Route("POST", "/processings/template/{template_id}/aoi/{aoi_id}", api_templates.update_aoi),
    Route(
        "POST",
        "/processings/template/{template_id}/image/{image_id}/seen",
        api_templates.image_seen,
    ),
    Route("PUT", "/processings/template/{template_id}/image/seenAll", api_templates.seen_all),
    # ---- processings (api_processings)
    Route("POST", "/processings/v2", api_processings.create_v2, paid_create=True),
    Route("GET", "/processings/v2", api_processings.list_processings),
    Route("POST", "/processings", api_processings.create_v1, paid_create=True),
    Route("GET", "/processings", api_processings.list_processings),
    Route("GET", "/processings/{processing_id}/v2", api_processings.get_processing),
    Route("GET", "/processings/{processing_id}/aois", api_processings.aois),
    Route("GET", "/processings/{processing_id}/result", api_processings.result),
    Route("POST", "/processings/{processing_id}/restart", api_processings.restart),
    Route("POST", "/processings/{processing_id}/restart/v2", api_processings.restart),
    Route("PUT", "/processings/{processing_id}/v2", api_processings.update_processing),  # rename
    Route("PUT", "/processings/{processing_id}/rate", api_processings.rate),
    Route("PUT", "/processings/{processing_id}/acceptation", api_processings.accept),
    Route("PUT", "/processings/{processing_id}/rejection", api_processings.reject),
    Route("GET", "/processings/{processing_id}", api_processings.get_processing),
    Route("PUT", "/processings/{processing_id}", api_processings.update_processing),  # move
    Route("DELETE", "/processings/{processing_id}", api_processings.delete_processing),
    Route("PUT", "/processing/{processing_id}", api_processings.update_processing),  # rename
    Route("POST", "/processing/cost/v2", api_processings.cost_v2),
    Route("POST", "/processing/cost", api_processings.cost_v1),
    # ---- Data API (api_data)
    Route("POST", "/rasters", api_data.legacy_upload, paid_create=True),
    Route("GET", "/rasters/memory", api_data.memory),
    Route("POST", "/rasters/mosaic", api_data.create_mosaic, paid_create=True),
    Route("GET", "/rasters/mosaic", api_data.list_mosaics),
    Route("POST", "/rasters/mosaic/image", api_data.create_and_upload, paid_create=True),
    Route("POST", "/rasters/mosaic/mosaic", api_data.create_and_upload, paid_create=True),  # old
    Route("GET", "/rasters/mosaic/{mosaic_id}", api_data.get_mosaic),
    Route("PUT", "/rasters/mosaic/{mosaic_id}", api_data.update_mosaic),
    Route("DELETE", "/rasters/mosaic/{mosaic_id}", api_data.delete_mosaic),
    Route("POST", "/rasters/mosaic/{mosaic_id}/image", api_data.upload_image, paid_create=True),
    Route("GET", "/rasters/mosaic/{mosaic_id}/image", api_data.list_images),
    Route("POST", "/rasters/mosaic/{mosaic_id}/link-image", api_data.link_image, paid_create=True),
    Route("GET", "/rasters/image/{image_id}", api_data.get_image),
    Route("PUT", "/rasters/image/{image_id}", api_data.rename_image),
    Route("DELETE", "/rasters/image/{image_id}", api_data.delete_image),
    Route("GET", "/rasters/image/{image_id}/preview/{size}", api_data.image_preview),
    Route("GET", "/rasters/image/{image_id}/download", api_data.image_download),
    # the presigned download URL: no Authorization (the signature is the credential)
    Route("GET", "/rasters/download/{image_id}/{filename}", api_data.download_file, public=True),
    Route("GET", "/rasters/{image_id}/preview/{size}", api_data.image_preview),  # older page
    # ---- catalog (api_catalog)
    Route("POST", "/catalog/meta", api_catalog.search),
    Route("GET", "/catalog/preview/{scene}", api_catalog.preview),
    # ---- layer tiles (api_tiles); the token-in-path form first (hostile option)
    Route("GET", "/tiles/t/{token}/{layer_id}/tile.json", api_tiles.tile_json_t, public=True),
    Route("GET", "/tiles/t/{token}/{layer_id}/{z}/{x}/{y}", api_tiles.tile_t, public=True),
    Route("GET", "/tiles/{layer_id}/tile.json", api_tiles.tile_json),
    Route("GET", "/tiles/{layer_id}/{z}/{x}/{y}", api_tiles.tile),
    # ---- simulator admin (api_admin): /_sim/..., no auth, not logged, not faulted
    Route("GET", "/_sim/requests", api_admin.requests, admin=True),
    Route("DELETE", "/_sim/requests", api_admin.clear_requests, admin=True),
    Route("GET", "/_sim/state", api_admin.state, admin=True),
    Route("GET", "/_sim/faults", api_admin.get_faults, admin=True),
    Route("POST", "/_sim/faults", api_admin.set_faults, admin=True),
    Route("PUT", "/_sim/faults", api_admin.set_faults, admin=True),
    Route("POST", "/_sim/clock", api_admin.clock, admin=True),
    Route("POST", "/_sim/templates/run", api_admin.run_templates, admin=True),
    Route("GET", "/_sim/errors", api_admin.errors, admin=True),
    # the world's ground truth: ?bbox=minx,miny,maxx,maxy&model=buildings&date=YYYY-MM-DD
    Route("GET", "/_sim/world", api_admin.world, admin=True),
]

_API = [r for r in ROUTES if not r.admin]
_ADMIN = [r for r in ROUTES if r.admin]


def is_admin_path(path: str) -> bool:
    return path.startswith("/_sim/") or path == "/_sim"


def _match(routes: list[Route], method: str, rel: str) -> tuple[Route | None, dict, bool]:
    known = False
    for r in routes:
        mo = r.regex.match(rel)
        if mo:
            if r.method == method:
                return r, mo.groupdict(), True
            known = True
    return None, {}, known


def match_api(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """``(route, path params, path known)`` for an API request (``/rest`` is optional)."""
    rel = path[5:] if path.startswith("/rest/") or path == "/rest" else path
    return _match(_API, method, rel.rstrip("/") or "/")


def match_admin(method: str, path: str) -> Route | None:
    """The admin route of ``method path`` (``/_sim/...``), or None."""
    return _match(_ADMIN, method, path.rstrip("/"))[0]


def paid_creates() -> list[tuple[str, str]]:
    """``(method, path)`` of every paid create (for docs and tests)."""
    return [(r.method, r.path) for r in ROUTES if r.paid_create]


def dispatch(service: Service, req: Request) -> Response:
    """Route, authorise and run one API request (everything below ``/rest``) on
    ``service``: the simulator without sockets."""
    route, params, path_known = match_api(req.method, req.path)
    try:
        if route is None:
            if path_known:  # the path exists with other methods
                raise ApiError(
                    405, "METHOD_NOT_ALLOWED", f"{req.method} is not allowed on {req.path}"
                )
            raise ApiError(404, "NOT_FOUND", f"No route {req.method} {req.path}")
        who = None if route.public else service.who(req)
        if who is False:
            raise ApiError(
                401,
                "UNAUTHORIZED",
                "Missing or invalid API token (use 'Authorization: Basic <token>')",
            )
        with service.lock:
            service.current = who
            service.base = base_url(req)
            service.state.counters.requests += 1
            try:
                resp = route.handler(service, req, **params)
            finally:
                service.current = None
        if route.paid_create and 200 <= resp.status < 300:
            resp.committed_create = True
        return resp
    except ApiError as e:
        body = e.body()
        if _is_data_api(req.path) and "detail" not in body:
            # the Data API's envelope for every error on /rasters
            body = {"detail": {"code": e.code, "parameters": e.params, "message": e.message}}
        return json_response(body, e.status)


def _is_data_api(path: str) -> bool:
    rel = path[5:] if path.startswith("/rest/") else path
    return rel.startswith("/rasters")
