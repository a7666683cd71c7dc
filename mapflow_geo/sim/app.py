"""The simulated Mapflow service: state, rules and request handlers (no sockets here).

``Service.handle(Request) -> Response`` is a pure-Python entry point; ``server.py`` puts it
on a loopback socket and adds faults and the request log.
"""

from __future__ import annotations

import base64
import copy
import csv
import datetime as _dt
import email.parser
import email.policy
import hashlib
import io
import json
import math
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shapely

from . import catalog, world
from .geo import GeometryError, measure, polygons_from_geojson, to_geojson

STATE_VERSION = 1
TERMINAL = ("OK", "FAILED", "CANCELLED", "REFUNDED")

DEFAULT_EMAIL = "sim@mapflow.local"
DEFAULT_APIKEY = "sim-api-key-0000"
DEFAULT_TOKEN = base64.b64encode(f"{DEFAULT_EMAIL}:{DEFAULT_APIKEY}".encode()).decode()

# Documented ids of example projects (doc request bodies use them): they resolve to a
# project created on first use, so doc examples are accepted verbatim.
DOC_PROJECT_IDS = {
    "546d148f-19a1-40d8-8f16-d1e6dabfd204": "test",
    "20f05e39-ccea-4e26-a7f3-55b620bf4e31": "Doc example project",
    "a45aa059-fc95-4da0-80e9-2f258fa42c3f": "Doc example project",
    "70f65cfd-285b-4f25-a058-1fd9103a78f9": "Shared doc project",
    "project-uuid": "Doc example project",
    "new-project-uuid": "Doc example project",
    "new_project_id": "Doc example project",
}

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

ROLES = ("readonly", "contributor", "maintainer", "owner")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, params: dict | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.params = {k: str(v) for k, v in (params or {}).items()}
        super().__init__(f"{status} {code}: {message}")

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "params": self.params}


@dataclass
class Request:
    method: str
    path: str  # full path, e.g. /rest/processings/v2
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        v = self.query.get(name)
        return v[0] if v else default


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    committed_create: bool = False  # a create that committed (for drop_create_response)


def _json(obj: Any, status: int = 200, **kw) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), **kw)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(s: Any) -> float | None:
    if not s:
        return None
    try:
        s = str(s).strip().replace("Z", "+00:00")
        d = _dt.datetime.fromisoformat(s)
        if d.tzinfo is None:
            d = d.replace(tzinfo=_dt.timezone.utc)
        return d.timestamp()
    except ValueError:
        raise ApiError(400, "BAD_REQUEST", f"cannot parse date-time {s!r}") from None


def _u01(*parts: Any) -> float:
    h = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def _det_uuid(*parts: Any) -> str:
    return str(
        uuid.UUID(bytes=hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:16], version=4)
    )


@dataclass
class SimOptions:
    token: str = DEFAULT_TOKEN
    email: str | None = None
    aoi_area_limit_km2: float = 25.0
    max_aois_per_processing: int = 10
    billing_type: str = "CREDITS"
    credits: int = 100_000
    area_limit_km2: float = 10_000.0  # for billing AREA: the account's total area
    memory_limit_bytes: int = 10 * 1024**3
    processing_seconds: float = 0.0
    awaiting_seconds: float = 0.0
    unprocessed_seconds: float = 0.0
    fail_fraction: float = 0.0
    seed: int = 0
    density: float = 1.0
    catalog_area_limit_km2: float = 2000.0
    # "fraction" (0–1, the 2026 page) or "percent" (0–100, the older page) for cloudCover
    catalog_cloud_cover_scale: str = "fraction"
    # refuse uploads that are not a readable GeoTIFF, not uint8 or not 3/4 bands at upload
    # time (the real service fails the processing later with source-validator.* instead)
    strict_uploads: bool = False
    state_file: str | None = None
    clock: Callable[[], float] | None = None
    models: list | None = None
    data_providers: list | None = None


class Service:
    """The simulated Mapflow service for one account."""

    def __init__(self, options: SimOptions):
        self.opts = options
        self.lock = threading.RLock()
        self.time_offset = 0.0
        self._clock = options.clock or time.time
        self.state: dict = {}
        loaded = False
        if options.state_file and os.path.exists(options.state_file):
            with open(options.state_file, encoding="utf-8") as f:
                self.state = json.load(f)
            loaded = True
        if not loaded:
            self.state = self._fresh_state()
            self.save()
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ state
    def now(self) -> float:
        return self._clock() + self.time_offset

    def _fresh_state(self) -> dict:
        o = self.opts
        email = o.email or _email_from_token(o.token) or DEFAULT_EMAIL
        now = self.now()
        uid = _det_uuid("user", email)
        account = {
            "id": uid,
            "email": email,
            "login": email,
            "role": "USER",
            "billingType": o.billing_type.upper(),
            "remainingCredits": int(o.credits),
            "areaLimit": int(o.area_limit_km2 * 1e6),
            "processedArea": 0,
            "aoiAreaLimit": int(round(o.aoi_area_limit_km2 * 1e6)),
            "maxAoisPerProcessing": int(o.max_aois_per_processing),
            "memoryLimit": int(o.memory_limit_bytes),
            "isPremium": False,
            "created": now,
            "updated": now,
        }
        models = o.models if o.models is not None else catalog.default_models()
        providers = (
            o.data_providers if o.data_providers is not None else catalog.default_providers()
        )
        state = {
            "version": STATE_VERSION,
            "token": o.token,
            "account": account,
            "models": models,
            "providers": providers,
            "projects": {},
            "processings": {},
            "mosaics": {},
            "images": {},
            "shares": [],
            "charges": [],
            "counters": {"requests": 0, "creates_committed": 0, "creates_refused": 0},
        }
        pid = _det_uuid("default-project", email)
        state["projects"][pid] = self._new_project(pid, "Default", None, is_default=True, now=now)
        return state

    def _new_project(
        self, pid: str, name: str, description: str | None, *, is_default=False, now=None
    ) -> dict:
        now = self.now() if now is None else now
        return {
            "id": pid,
            "name": name,
            "description": description,
            "isDefault": is_default,
            "created": now,
            "updated": now,
            "shares": [],
        }

    def save(self) -> None:
        path = self.opts.state_file
        if not path:
            return
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".simstate-", dir=d)
        try:
            data = json.dumps(self.state, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _blob_path(self, image_id: str) -> str | None:
        if not self.opts.state_file:
            return None
        return f"{self.opts.state_file}.blobs{os.sep}{image_id}"

    @property
    def account(self) -> dict:
        return self.state["account"]

    def default_project(self) -> dict:
        for p in self.state["projects"].values():
            if p.get("isDefault"):
                return p
        pid = _det_uuid("default-project", self.account["email"], self.now())
        p = self._new_project(pid, "Default", None, is_default=True)
        self.state["projects"][pid] = p
        return p

    # ------------------------------------------------------------------ auth
    def authorized(self, req: Request) -> bool:
        h = req.headers.get("authorization", "")
        parts = h.split(None, 1)
        if len(parts) != 2 or parts[0].lower() not in ("basic", "bearer"):
            return False
        return parts[1].strip() == self.state.get("token", self.opts.token)

    # ------------------------------------------------------------------ routing
    def _build_routes(self):
        P = r"(?P<pid>[^/]+)"
        routes = [
            ("GET", r"/user/status", self.user_status),
            ("POST", r"/processings/stats", self.stats),
            ("GET", r"/projects", self.list_projects),
            ("POST", r"/projects", self.create_project),
            ("GET", r"/projects/default", self.get_default_project),
            ("POST", r"/projects/share", self.share_project),
            ("GET", r"/projects/" + P, self.get_project),
            ("PUT", r"/projects/" + P, self.update_project),
            ("DELETE", r"/projects/" + P, self.delete_project),
            ("GET", r"/projects/" + P + r"/processings/v2", self.list_processings_project),
            ("GET", r"/projects/" + P + r"/processings", self.list_processings_project),
            ("POST", r"/processings/v2", self.create_processing_v2),
            ("GET", r"/processings/v2", self.list_processings),
            ("POST", r"/processings", self.create_processing_v1),
            ("GET", r"/processings", self.list_processings),
            ("GET", r"/processings/(?P<id>[^/]+)/v2", self.get_processing),
            ("GET", r"/processings/(?P<id>[^/]+)/aois", self.processing_aois),
            ("GET", r"/processings/(?P<id>[^/]+)/result", self.processing_result),
            ("POST", r"/processings/(?P<id>[^/]+)/restart", self.restart_processing),
            ("GET", r"/processings/(?P<id>[^/]+)", self.get_processing),
            ("PUT", r"/processings/(?P<id>[^/]+)", self.update_processing_move),
            ("DELETE", r"/processings/(?P<id>[^/]+)", self.delete_processing),
            ("PUT", r"/processing/(?P<id>[^/]+)", self.update_processing),
            ("POST", r"/processing/cost/v2", self.cost_v2),
            ("POST", r"/processing/cost", self.cost_v1),
            ("POST", r"/rasters", self.legacy_upload),
            ("GET", r"/rasters/memory", self.memory),
            ("POST", r"/rasters/mosaic", self.create_mosaic),
            ("GET", r"/rasters/mosaic", self.list_mosaics),
            ("POST", r"/rasters/mosaic/image", self.create_mosaic_and_upload),
            (
                "POST",
                r"/rasters/mosaic/mosaic",
                self.create_mosaic_and_upload,
            ),  # older page's spelling
            ("GET", r"/rasters/mosaic/(?P<id>[^/]+)", self.get_mosaic),
            ("PUT", r"/rasters/mosaic/(?P<id>[^/]+)", self.update_mosaic),
            ("DELETE", r"/rasters/mosaic/(?P<id>[^/]+)", self.delete_mosaic),
            ("POST", r"/rasters/mosaic/(?P<id>[^/]+)/image", self.upload_image),
            ("GET", r"/rasters/mosaic/(?P<id>[^/]+)/image", self.list_images),
            ("POST", r"/rasters/mosaic/(?P<id>[^/]+)/link-image", self.link_image),
            ("GET", r"/rasters/image/(?P<id>[^/]+)", self.get_image),
            ("PUT", r"/rasters/image/(?P<id>[^/]+)", self.rename_image),
            ("DELETE", r"/rasters/image/(?P<id>[^/]+)", self.delete_image),
            ("GET", r"/rasters/image/(?P<id>[^/]+)/preview/(?P<size>[^/]+)", self.image_preview),
            ("GET", r"/rasters/(?P<id>[^/]+)/preview/(?P<size>[^/]+)", self.image_preview),
            ("POST", r"/catalog/meta", self.catalog_search),
        ]
        return [(m, re.compile("^" + rx + "$"), fn) for m, rx, fn in routes]

    CREATE_ROUTES = {
        "create_processing_v2",
        "create_processing_v1",
        "create_project",
        "create_mosaic",
        "create_mosaic_and_upload",
        "upload_image",
        "link_image",
        "legacy_upload",
    }

    def match(self, method: str, path: str):
        rel = path[5:] if path.startswith("/rest/") or path == "/rest" else path
        rel = rel.rstrip("/") or "/"
        allowed = False
        for m, rx, fn in self._routes:
            mo = rx.match(rel)
            if mo:
                if m == method:
                    return fn, mo.groupdict()
                allowed = True
        return None, allowed

    def handle(self, req: Request) -> Response:
        fn, kw = self.match(req.method, req.path)
        try:
            if fn is None:
                if kw:
                    raise ApiError(
                        405, "METHOD_NOT_ALLOWED", f"{req.method} is not allowed on {req.path}"
                    )
                raise ApiError(404, "NOT_FOUND", f"No route {req.method} {req.path}")
            if not self.authorized(req):
                raise ApiError(
                    401,
                    "UNAUTHORIZED",
                    "Missing or invalid API token (use 'Authorization: Basic <token>')",
                )
            with self.lock:
                self.state["counters"]["requests"] = self.state["counters"].get("requests", 0) + 1
                resp = fn(req, **kw)
            if fn.__name__ in self.CREATE_ROUTES and 200 <= resp.status < 300:
                resp.committed_create = True
            return resp
        except ApiError as e:
            return _json(e.body(), e.status)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def body_json(req: Request, default: Any = None) -> Any:
        if not req.body or not req.body.strip():
            if default is not None:
                return default
            raise ApiError(400, "BAD_REQUEST", "Request body is required")
        try:
            return json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ApiError(400, "BAD_REQUEST", f"Request body is not valid JSON: {e}") from None

    def find_model(self, wd_id: Any = None, wd_name: Any = None) -> dict:
        models = self.state["models"]
        if wd_id:
            for m in models:
                if m["id"] == wd_id or wd_id in m.get("aliases", ()):
                    return m
        if wd_name:
            for m in models:
                if m["name"] == wd_name:
                    return m
            norm = catalog.normalize_name(wd_name)
            hits = [m for m in models if catalog.normalize_name(m["name"]) == norm]
            if not hits and norm:
                hits = [
                    m for m in models if catalog.normalize_name(m["name"]).startswith(norm + " ")
                ]
            if len(hits) == 1:
                return hits[0]
        if not wd_id and not wd_name:
            raise ApiError(400, "MODEL_REQUIRED", "Either wdId or wdName is required")
        raise ApiError(
            400,
            "MODEL_NOT_FOUND",
            f"Workflow definition {wd_id or wd_name!r} is not linked to this account",
            {"wdId": wd_id or "", "wdName": wd_name or ""},
        )

    def find_provider(self, name: Any) -> dict:
        if not name:
            raise ApiError(400, "DATA_PROVIDER_NOT_FOUND", "Data provider name is empty")
        key = catalog.normalize_name(name)
        for p in self.state["providers"]:
            names = [p["id"], p["name"], p.get("displayName", "")] + list(p.get("aliases", []))
            if name in names or key in {catalog.normalize_name(n) for n in names if n}:
                return p
        raise ApiError(
            400,
            "DATA_PROVIDER_NOT_FOUND",
            f"Data provider {name!r} is not available to this account",
            {"providerName": name},
        )

    def project(self, pid: str, *, create_doc=True) -> dict:
        p = self.state["projects"].get(pid)
        if p is None and create_doc and pid in DOC_PROJECT_IDS:
            p = self._new_project(pid, DOC_PROJECT_IDS[pid], "Project of a documentation example")
            self.state["projects"][pid] = p
        if p is None:
            raise ApiError(404, "PROJECT_NOT_FOUND", f"Project {pid} not found", {"projectId": pid})
        return p

    def processing(self, pid: str) -> dict:
        p = self.state["processings"].get(pid)
        if p is None:
            raise ApiError(
                404, "PROCESSING_NOT_FOUND", f"Processing {pid} not found", {"processingId": pid}
            )
        return p

    # ------------------------------------------------------------------ user
    def user_status(self, req):
        return _json(self._user_status_body())

    def _user_status_body(self) -> dict:
        a = self.account
        processed = int(a["processedArea"])
        return {
            "id": a["id"],
            "email": a["email"],
            "login": a["login"],
            "role": a.get("role", "USER"),
            "processedArea": processed,
            "remainingArea": max(int(a["areaLimit"]) - processed, 0),
            "areaLimit": int(a["areaLimit"]),
            "aoiAreaLimit": int(a["aoiAreaLimit"]),
            "memoryLimit": int(a["memoryLimit"]),
            "memoryUsed": self._memory_used(),
            "billingType": a["billingType"],
            "remainingCredits": int(a["remainingCredits"]),
            "maxAoisPerProcessing": int(a["maxAoisPerProcessing"]),
            "isPremium": a.get("isPremium", False),
            "models": [catalog.public_model(m) for m in self.state["models"]],
            "dataProviders": [catalog.public_provider(p) for p in self.state["providers"]],
            "teams": [
                {
                    "teamId": _det_uuid("team", a["email"]),
                    "name": "Simulated team",
                    "role": "OWNER",
                    "activeUntil": None,
                    "creditsLimit": None,
                }
            ],
            "user": {"id": a["id"], "email": a["email"], "credits": int(a["remainingCredits"])},
        }

    # ------------------------------------------------------------------ projects
    def _user_obj(self) -> dict:
        a = self.account
        return {
            "id": a["id"],
            "login": a["login"],
            "email": a["email"],
            "role": a.get("role", "USER"),
            "areaLimit": int(a["areaLimit"]),
            "aoiAreaLimit": int(a["aoiAreaLimit"]),
            "processedArea": int(a["processedArea"]),
            "created": iso(a["created"]),
            "updated": iso(a["updated"]),
            "isPremium": a.get("isPremium", False),
        }

    def project_json(self, p: dict, procs: list | None = None) -> dict:
        if procs is None:
            procs = [x for x in self.state["processings"].values() if x["projectId"] == p["id"]]
        now = self.now()
        views = [self._status(x, now) for x in procs]
        details: dict[str, dict] = {}
        for x, (st, _pct, upd) in zip(procs, views, strict=False):
            d = details.setdefault(
                st, {"status": st, "count": 0, "area": 0, "statusUpdateDate": iso(upd)}
            )
            d["count"] += 1
            d["area"] += int(x["area"])
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
            "id": p["id"],
            "name": p["name"],
            "description": p.get("description"),
            "progress": progress,
            "aoiCount": sum(int(x["aoiCount"]) for x in procs),
            "area": sum(int(x["area"]) for x in procs),
            "user": self._user_obj(),
            "isDefault": bool(p.get("isDefault")),
            "created": iso(p["created"]),
            "updated": iso(p["updated"]),
            "workflowDefs": [
                {
                    "id": m["id"],
                    "name": m["name"],
                    "description": m.get("description"),
                    "created": "2022-10-20T14:54:59.690562Z",
                    "updated": "2022-10-20T14:54:59.690562Z",
                }
                for m in self.state["models"]
            ],
            "shares": [dict(s) for s in p.get("shares", [])],
        }

    def list_projects(self, req):
        by_project: dict[str, list] = {}
        for x in self.state["processings"].values():
            by_project.setdefault(x["projectId"], []).append(x)
        self.default_project()
        return _json(
            [
                self.project_json(p, by_project.get(p["id"], []))
                for p in self.state["projects"].values()
            ]
        )

    def get_default_project(self, req):
        return _json(self.project_json(self.default_project()))

    def get_project(self, req, pid):
        return _json(self.project_json(self.project(pid)))

    def create_project(self, req):
        body = self.body_json(req)
        if (
            not isinstance(body, dict)
            or not body.get("name")
            or not isinstance(body.get("name"), str)
        ):
            raise ApiError(400, "BAD_REQUEST", "Project 'name' (string) is required")
        pid = str(uuid.uuid4())
        p = self._new_project(pid, body["name"], body.get("description"))
        self.state["projects"][pid] = p
        self.save()
        return _json(self.project_json(p, []))

    def update_project(self, req, pid):
        p = self.project(pid)
        body = self.body_json(req, {})
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        for k in ("name", "description"):
            if k in body:
                p[k] = body[k]
        p["updated"] = self.now()
        self.save()
        return _json(self.project_json(p))

    def delete_project(self, req, pid):
        p = self.project(pid, create_doc=False)
        if p.get("isDefault"):
            raise ApiError(
                400,
                "CANNOT_DELETE_DEFAULT_PROJECT",
                "The default project cannot be deleted",
                {"projectId": pid},
            )
        for k in [k for k, x in self.state["processings"].items() if x["projectId"] == pid]:
            del self.state["processings"][k]
        del self.state["projects"][pid]
        self.save()
        return Response(204)

    def share_project(self, req):
        body = self.body_json(req)
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        p = self.project(str(body.get("projectId") or ""))
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
        shares = p.setdefault("shares", [])
        shares[:] = [s for s in shares if s["email"] != em]
        rec = {"projectId": p["id"], "email": em, "role": role}
        shares.append(rec)
        self.state["shares"].append(dict(rec, time=self.now()))
        self.save()
        return _json(dict(rec, role=role.upper() if False else role))

    # ------------------------------------------------------------------ geometry / cost
    def _polygons(self, geometry) -> list:
        if geometry is None:
            raise ApiError(400, "GEOMETRY_REQUIRED", "'geometry' is required")
        try:
            return polygons_from_geojson(geometry)
        except GeometryError as e:
            raise ApiError(400, "INVALID_GEOMETRY", str(e)) from None

    def _check_limits(self, polys) -> Any:
        a = self.account
        limit = int(a["aoiAreaLimit"])
        n_max = int(a["maxAoisPerProcessing"])
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

    def _source(self, params: Any) -> dict:
        """Resolve the imagery source of a request's params (v2 sourceParams or v1 flat)."""
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
                prov = self.find_provider(s.get("dataProvider") or s.get("providerName"))
                return {"type": "imagerySearch", "provider": prov, "zoom": _zoom(s.get("zoom"))}
            if isinstance(sp.get("dataProvider"), dict):
                s = sp["dataProvider"]
                prov = self.find_provider(s.get("providerName") or s.get("name"))
                return {"type": "dataProvider", "provider": prov, "zoom": _zoom(s.get("zoom"))}
            if isinstance(sp.get("userDefined"), dict):
                s = sp["userDefined"]
                if not s.get("url") and str(s.get("sourceType", "")).upper() != "SENTINEL_L2A":
                    raise ApiError(400, "BAD_REQUEST", "userDefined source needs a 'url'")
                return {"type": "userDefined", "provider": None, "zoom": _zoom(s.get("zoom"))}
            raise ApiError(
                400,
                "BAD_REQUEST",
                "sourceParams must hold one of myImagery, imagerySearch, dataProvider, userDefined",
            )
        # v1 flat params
        if params.get("data_provider"):
            prov = self.find_provider(params["data_provider"])
            return {"type": "dataProvider", "provider": prov, "zoom": _zoom(params.get("zoom"))}
        if params.get("url") or params.get("source_type"):
            return {"type": "userDefined", "provider": None, "zoom": _zoom(params.get("zoom"))}
        # nothing given: the default basemap
        return {"type": "default", "provider": self.state["providers"][0], "zoom": None}

    @staticmethod
    def _data_price(src: dict) -> float:
        prov = src.get("provider")
        if not prov:
            return 0.0
        table = sorted(prov.get("price") or [], key=lambda e: e["zoom"])
        if not table:
            return 0.0
        zoom = src.get("zoom") or prov.get("defaultZoom") or table[-1]["zoom"]
        below = [e for e in table if e["zoom"] <= zoom]
        entry = below[-1] if below else table[0]
        return float(entry["priceSqKm"])

    @staticmethod
    def _enabled_blocks(model: dict, blocks: Any) -> dict[str, bool]:
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

    def _cost(self, area_m2: float, model: dict, enabled: dict[str, bool], src: dict) -> int:
        km2 = max(area_m2 / 1e6, 1.0)
        prov = src.get("provider")
        if prov and prov.get("minAreaSqKm"):
            km2 = max(km2, float(prov["minAreaSqKm"]))
        price = float(model.get("pricePerSqKm") or 0.0)
        price += sum(
            float(b.get("price") or 0.0) for b in model.get("blocks", []) if enabled.get(b["name"])
        )
        price += self._data_price(src)
        return int(math.ceil(round(km2 * price, 6)))

    def cost_v2(self, req):
        body = self.body_json(req)
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        model = self.find_model(body.get("wdId"), body.get("wdName"))
        src = self._source(body.get("params"))
        area = None
        if body.get("areaSqKm") is not None:
            try:
                area = float(body["areaSqKm"]) * 1e6
            except (TypeError, ValueError):
                raise ApiError(400, "BAD_REQUEST", "areaSqKm must be a number") from None
            if area < 0 or not math.isfinite(area):
                raise ApiError(400, "BAD_REQUEST", "areaSqKm must be a non-negative number")
        elif body.get("geometry") is not None:
            area = measure(self._polygons(body["geometry"])).total_m2
        else:
            raise ApiError(400, "BAD_REQUEST", "Provide either geometry or areaSqKm")
        return _json(self._cost(area, model, self._enabled_blocks(model, body.get("blocks")), src))

    def cost_v1(self, req):
        body = self.body_json(req)
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        model = self.find_model(body.get("wdId"), body.get("wdName"))
        src = self._source(body.get("params"))
        if body.get("geometry") is not None:
            area = measure(self._polygons(body["geometry"])).total_m2
        elif body.get("areaSqKm") is not None:
            area = float(body["areaSqKm"]) * 1e6
        else:
            raise ApiError(400, "BAD_REQUEST", "'geometry' is required")
        return _json(self._cost(area, model, self._enabled_blocks(model, body.get("blocks")), src))

    # ------------------------------------------------------------------ processings
    def create_processing_v2(self, req):
        return self._create(req, api="v2")

    def create_processing_v1(self, req):
        return self._create(req, api="v1")

    def _create(self, req, api: str):
        body = self.body_json(req)
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        try:
            return self._create_inner(body, api)
        except ApiError:
            self.state["counters"]["creates_refused"] = (
                self.state["counters"].get("creates_refused", 0) + 1
            )
            raise

    def _create_inner(self, body: dict, api: str):
        a = self.account
        model = self.find_model(body.get("wdId"), body.get("wdName"))
        pid = body.get("projectId")
        project = self.project(str(pid)) if pid else self.default_project()
        polys = self._polygons(body.get("geometry"))
        m = self._check_limits(polys)
        params = body.get("params") if body.get("params") is not None else {}
        src = self._source(params)
        meta = body.get("meta") or {}
        if not isinstance(meta, dict):
            raise ApiError(400, "BAD_REQUEST", "'meta' must be an object of string values")
        meta = {
            str(k): v
            if isinstance(v, str)
            else json.dumps(v)
            if isinstance(v, (dict, list))
            else str(v)
            for k, v in meta.items()
        }
        blocks = body.get("blocks") or []
        if not isinstance(blocks, list):
            raise ApiError(400, "BAD_REQUEST", "'blocks' must be a list of {name, enabled}")
        enabled = self._enabled_blocks(model, blocks)
        cost = self._cost(m.total_m2, model, enabled, src)
        area = int(round(m.total_m2))
        billing = a["billingType"].upper()
        if billing == "CREDITS" and cost > int(a["remainingCredits"]):
            raise ApiError(
                400,
                "INSUFFICIENT_CREDITS",
                f"Not enough credits: the processing costs {cost}, remaining credits: {a['remainingCredits']}",
                {"cost": cost, "remainingCredits": a["remainingCredits"]},
            )
        remaining_area = int(a["areaLimit"]) - int(a["processedArea"])
        if billing == "AREA" and area > remaining_area:
            raise ApiError(
                400,
                "INSUFFICIENT_AREA",
                f"Not enough area left: the processing is {area} sq.m., remaining: {remaining_area} sq.m.",
                {"area": area, "remainingArea": remaining_area},
            )
        # ---- commit
        now = self.now()
        proc_id = str(uuid.uuid4())
        aois = []
        for poly, ar in zip(polys, m.areas_m2, strict=True):
            aid = str(uuid.uuid4())
            aois.append(
                {
                    "id": aid,
                    "geometry": to_geojson(poly),
                    "area": int(round(ar)),
                    "wkb": shapely.to_wkb(poly, hex=True),
                    "attempts": [],
                }
            )
        proc = {
            "id": proc_id,
            "api": api,
            "name": body.get("name") or "",
            "description": body.get("description"),
            "projectId": project["id"],
            "wdId": model["id"],
            "params": params,
            "blocks": blocks,
            "enabledBlocks": enabled,
            "meta": meta,
            "area": area,
            "aoiArea": area,
            "aoiCount": len(aois),
            "cost": cost if billing != "NONE" else cost,
            "charged": cost if billing == "CREDITS" else 0,
            "chargedArea": area if billing == "AREA" else 0,
            "dataProvider": (src.get("provider") or {}).get("name"),
            "sourceType": src["type"],
            "vectorLayerId": str(uuid.uuid4()),
            "rasterLayerId": str(uuid.uuid4()),
            "reviewStatus": None,
            "rating": None,
            "created": now,
            "updated": now,
            "aois": aois,
        }
        for aoi in aois:
            self._new_attempt(aoi, now)
        if billing == "CREDITS":
            a["remainingCredits"] = int(a["remainingCredits"]) - cost
        a["processedArea"] = int(a["processedArea"]) + area
        a["updated"] = now
        self.state["processings"][proc_id] = proc
        project["updated"] = now
        self.state["charges"].append(
            {
                "processingId": proc_id,
                "cost": cost if billing == "CREDITS" else 0,
                "area": area,
                "billingType": billing,
                "time": now,
                "meta": meta,
                "api": api,
            }
        )
        self.state["counters"]["creates_committed"] = (
            self.state["counters"].get("creates_committed", 0) + 1
        )
        self.save()
        out = self.processing_json(proc, created=True)
        return _json(out)

    def _new_attempt(self, aoi: dict, now: float) -> None:
        o = self.opts
        n = len(aoi["attempts"]) + 1
        fail = _u01(o.seed, "fail", aoi["wkb"], n) < float(o.fail_fraction)
        msg = None
        if fail:
            k = int(_u01(o.seed, "msg", aoi["wkb"], n) * len(FAILURE_MESSAGES))
            msg = FAILURE_MESSAGES[k]
        aoi["attempts"].append(
            {
                "n": n,
                "start": now,
                "unprocessed": float(o.unprocessed_seconds),
                "awaiting": float(o.awaiting_seconds),
                "processing": float(o.processing_seconds),
                "fail": fail,
                "message": msg,
            }
        )

    @staticmethod
    def _aoi_status(aoi: dict, now: float) -> tuple[str, int, float]:
        at = aoi["attempts"][-1]
        e = now - at["start"]
        u, w, p = at["unprocessed"], at["awaiting"], at["processing"]
        if e < u:
            return "UNPROCESSED", 0, at["start"]
        if e < u + w:
            return "AWAITING", 0, at["start"] + u
        if e < u + w + p:
            return "IN_PROGRESS", min(99, int(100 * (e - u - w) / p)), at["start"] + u + w
        end = at["start"] + u + w + p
        return ("FAILED", 0, end) if at["fail"] else ("OK", 100, end)

    def _status(self, proc: dict, now: float) -> tuple[str, int, float]:
        forced = proc.get("forcedStatus")
        if forced:
            return forced, 100 if forced in ("OK", "REFUNDED") else 0, proc["updated"]
        sts = [self._aoi_status(a, now) for a in proc["aois"]]
        names = [s[0] for s in sts]
        pct = int(sum(s[1] for s in sts) / max(len(sts), 1))
        upd = max([proc["updated"]] + [s[2] for s in sts])
        if all(n in TERMINAL for n in names):
            return ("FAILED" if "FAILED" in names else "OK"), pct, upd
        if all(n == "UNPROCESSED" for n in names):
            return "UNPROCESSED", 0, upd
        if all(n in ("UNPROCESSED", "AWAITING") for n in names):
            return "AWAITING", 0, upd
        return "IN_PROGRESS", min(pct, 99), upd

    def _messages(self, proc: dict, now: float) -> list[dict]:
        out, seen = [], set()
        for a in proc["aois"]:
            st = self._aoi_status(a, now)[0]
            msg = a["attempts"][-1].get("message")
            if st == "FAILED" and msg:
                key = json.dumps(msg, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    out.append(copy.deepcopy(msg))
        return out

    def processing_json(
        self, proc: dict, *, created: bool = False, now: float | None = None
    ) -> dict:
        now = self.now() if now is None else now
        model = next((m for m in self.state["models"] if m["id"] == proc["wdId"]), None) or {
            "id": proc["wdId"],
            "name": "?",
        }
        if created:
            status, pct, upd, msgs = "UNPROCESSED", 0, proc["updated"], []
        else:
            status, pct, upd = self._status(proc, now)
            msgs = self._messages(proc, now) if status in ("FAILED", "IN_PROGRESS") else []
        vl = proc["vectorLayerId"]
        rl = proc["rasterLayerId"]
        wd = catalog.public_model(model)
        wd["blocks"] = [
            dict(b, description=b.get("displayName", b["name"])) for b in wd.get("blocks", [])
        ]
        return {
            "id": proc["id"],
            "name": proc["name"],
            "description": proc.get("description"),
            "projectId": proc["projectId"],
            "vectorLayer": {
                "id": vl,
                "name": proc["name"],
                "tileJsonUrl": f"https://app.mapflow.ai/api/layers/{vl}.json",
                "tileUrl": f"https://app.mapflow.ai/api/layers/{vl}/tiles/{{z}}/{{x}}/{{y}}.vector.pbf",
            },
            "rasterLayer": {
                "id": rl,
                "tileJsonUrl": f"https://app.mapflow.ai/api/v0/cogs/tiles.json?uri=s3://mapflow-rasters/{rl}",
                "tileUrl": f"https://app.mapflow.ai/api/v0/cogs/tiles/{{z}}/{{x}}/{{y}}.png?uri=s3://mapflow-rasters/{rl}",
            },
            "workflowDef": wd,
            "aoiCount": proc["aoiCount"],
            "area": proc["area"],
            "aoiArea": proc["aoiArea"],
            "cost": proc["cost"],
            "status": status,
            "reviewStatus": proc.get("reviewStatus"),
            "rating": proc.get("rating"),
            "percentCompleted": pct,
            "params": copy.deepcopy(proc["params"]),
            "blocks": proc["blocks"],
            "meta": dict(proc["meta"]),
            "messages": msgs,
            "created": iso(proc["created"]),
            "updated": iso(upd),
        }

    def get_processing(self, req, id):
        return _json(self.processing_json(self.processing(id)))

    def list_processings(self, req):
        now = self.now()
        procs = self.state["processings"].values()
        pid = req.arg("projectId")
        if pid:
            procs = [p for p in procs if p["projectId"] == pid]
        elif req.path.rstrip("/").endswith("/processings") or req.path.rstrip("/").endswith(
            "/processings/v2"
        ):
            # documented: "the user's processings by the Default project"; the simulator
            # lists every processing of the account (the service's app does likewise)
            pass
        return _json([self.processing_json(p, now=now) for p in procs])

    def list_processings_project(self, req, pid):
        self.project(pid)
        now = self.now()
        return _json(
            [
                self.processing_json(p, now=now)
                for p in self.state["processings"].values()
                if p["projectId"] == pid
            ]
        )

    def update_processing(self, req, id):
        proc = self.processing(id)
        body = self.body_json(req, {})
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        for k in ("name", "description"):
            if k in body:
                proc[k] = body[k]
        if body.get("projectId"):
            proc["projectId"] = self.project(str(body["projectId"]))["id"]
        proc["updated"] = self.now()
        self.save()
        return _json(self.processing_json(proc))

    def update_processing_move(self, req, id):
        return self.update_processing(req, id)

    def delete_processing(self, req, id):
        self.processing(id)
        del self.state["processings"][id]
        self.save()
        return Response(204)

    def restart_processing(self, req, id):
        proc = self.processing(id)
        now = self.now()
        restarted = 0
        for a in proc["aois"]:
            if self._aoi_status(a, now)[0] == "FAILED":
                self._new_attempt(a, now)
                restarted += 1
        if restarted:
            proc["updated"] = now
            self.save()
        return _json(self.processing_json(proc))

    def processing_aois(self, req, id):
        proc = self.processing(id)
        now = self.now()
        out = []
        for a in proc["aois"]:
            st, pct, _ = self._aoi_status(a, now)
            msg = a["attempts"][-1].get("message")
            out.append(
                {
                    "id": a["id"],
                    "status": st,
                    "percentCompleted": pct,
                    "geometry": a["geometry"],
                    "area": a["area"],
                    "messages": [copy.deepcopy(msg)] if st == "FAILED" and msg else [],
                }
            )
        return _json(out)

    def processing_result(self, req, id):
        proc = self.processing(id)
        now = self.now()
        aoi_id = req.arg("aoiId")
        if aoi_id:
            aois = [a for a in proc["aois"] if a["id"] == aoi_id]
            if not aois:
                raise ApiError(
                    404,
                    "AOI_NOT_FOUND",
                    f"AOI {aoi_id} not found in processing {id}",
                    {"aoiId": aoi_id},
                )
            st = self._aoi_status(aois[0], now)[0]
            if st != "OK":
                raise ApiError(
                    400,
                    "RESULT_NOT_READY",
                    f"AOI {aoi_id} is {st}; results are available when it is OK",
                    {"status": st, "aoiId": aoi_id},
                )
        else:
            st = self._status(proc, now)[0]
            if st != "OK":
                raise ApiError(
                    400,
                    "RESULT_NOT_READY",
                    f"Processing {id} is {st}; results are available when it is OK",
                    {"status": st, "processingId": id},
                )
            aois = proc["aois"]
        return Response(
            200, self.result_bytes(proc, aois, now), content_type="application/octet-stream"
        )

    def result_bytes(self, proc: dict, aois: list[dict], now: float) -> bytes:
        model = next(
            (m for m in self.state["models"] if m["id"] == proc["wdId"]), {"kind": "buildings"}
        )
        kind = model.get("kind", "buildings")
        chunks = []
        for a in aois:
            poly = shapely.from_wkb(bytes.fromhex(a["wkb"]))
            geoms, props = world.generate(
                kind, poly, self.opts.seed, self.opts.density, proc.get("enabledBlocks") or {}
            )
            if not len(geoms):
                continue
            at = a["attempts"][-1]
            done = at["start"] + at["unprocessed"] + at["awaiting"] + at["processing"]
            date = iso(done)[:10]
            gj = shapely.to_geojson(geoms)
            ns = uuid.UUID(a["id"])
            for k, (g, p) in enumerate(zip(gj, props, strict=False)):
                p = dict(p)
                p = {"id": str(uuid.uuid5(ns, str(k))), **p}
                if kind == "buildings":
                    p["processing_date"] = date
                chunks.append(
                    '{"type":"Feature","geometry":' + g + ',"properties":' + json.dumps(p) + "}"
                )
        return ('{"type":"FeatureCollection","features":[' + ",".join(chunks) + "]}").encode()

    # ------------------------------------------------------------------ stats
    def stats(self, req):
        kind = (req.arg("type") or "JSON").upper()
        body = self.body_json(req, {})
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        now = self.now()
        d_from, d_to = parse_iso(body.get("dateFrom")), parse_iso(body.get("dateTo"))
        statuses = body.get("statuses") or []
        if isinstance(statuses, str):
            statuses = [statuses]
        statuses = {str(s).upper().replace("CANCELED", "CANCELLED") for s in statuses}
        flt = body.get("filter")
        if isinstance(flt, str) and flt.lower().startswith("status="):
            statuses |= {s.strip().upper() for s in flt.split("=", 1)[1].split(",")}
        terms = str(body.get("terms") or "").lower()
        rows = []
        projects = self.state["projects"]
        for p in self.state["processings"].values():
            st, pct, upd = self._status(p, now)
            if d_from is not None and p["created"] < d_from:
                continue
            if d_to is not None and p["created"] > d_to:
                continue
            if statuses and st not in statuses:
                continue
            model = next((m for m in self.state["models"] if m["id"] == p["wdId"]), {"name": ""})
            proj = projects.get(p["projectId"], {"name": ""})
            row = {
                "id": p["id"],
                "projectName": proj["name"],
                "name": p["name"],
                "email": self.account["email"],
                "area": str(p["area"]),
                "cost": str(p["cost"]),
                "created": iso(p["created"]),
                "completionDate": iso(upd) if st in TERMINAL else None,
                "status": st,
                "percentCompleted": str(pct),
                "archived": "false",
                "dataProvider": p.get("dataProvider"),
                "linkToMap": f"https://app.mapflow.ai/projects/{p['projectId']}/processings/{p['id']}",
                "scenario": model["name"],
            }
            if terms and terms not in json.dumps(row, ensure_ascii=False).lower():
                continue
            rows.append(row)
        sort = str(body.get("sort") or "created:desc")
        key, _, order = sort.partition(":")
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
            cols = [
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
            w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
            return Response(
                200, buf.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8"
            )
        if kind != "JSON":
            raise ApiError(400, "BAD_REQUEST", "type must be JSON or CSV", {"type": kind})
        return _json(
            {
                "results": rows,
                "total": total,
                "count": len(rows),
                "totalCost": total_cost,
                "totalArea": total_area,
            }
        )

    # ------------------------------------------------------------------ data API
    def _memory_used(self) -> int:
        return int(sum(int(i["file_size"]) for i in self.state["images"].values()))

    def memory(self, req):
        used = self._memory_used()
        limit = int(self.account["memoryLimit"])
        gb = 1024**3
        return _json(
            {
                "used_bytes": used,
                "limit_bytes": limit,
                "free_bytes": max(limit - used, 0),
                "used_gb": round(used / gb, 3),
                "limit_gb": round(limit / gb, 3),
                "usage_percent": round(100.0 * used / limit, 2) if limit else 0.0,
                "memoryLimit": limit,
                "memoryUsed": used,
                "memoryFree": max(limit - used, 0),
                "percentUsed": round(100.0 * used / limit, 2) if limit else 0.0,
            }
        )

    def mosaic_json(self, m: dict) -> dict:
        imgs = [i for i in self.state["images"].values() if i["mosaic_id"] == m["id"]]
        return {
            "id": m["id"],
            "name": m["name"],
            "tags": list(m.get("tags") or []),
            "created_at": iso(m["created"]),
            "updated_at": iso(m["updated"]),
            "image_count": len(imgs),
            "size_bytes": sum(int(i["file_size"]) for i in imgs),
        }

    def mosaic(self, mid: str) -> dict:
        m = self.state["mosaics"].get(mid)
        if m is None:
            raise ApiError(404, "MOSAIC_NOT_FOUND", f"Mosaic {mid} not found", {"mosaicId": mid})
        return m

    def image(self, iid: str) -> dict:
        i = self.state["images"].get(iid)
        if i is None:
            raise ApiError(404, "IMAGE_NOT_FOUND", f"Image {iid} not found", {"imageId": iid})
        return i

    def _new_mosaic(self, name: Any, tags: Any) -> dict:
        if not name or not isinstance(name, str):
            raise ApiError(400, "BAD_REQUEST", "Mosaic 'name' (string) is required")
        if tags is None:
            tags = []
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list):
            raise ApiError(400, "BAD_REQUEST", "'tags' must be a list of strings")
        now = self.now()
        mid = str(uuid.uuid4())
        m = {
            "id": mid,
            "name": name,
            "tags": [str(t) for t in tags],
            "created": now,
            "updated": now,
        }
        self.state["mosaics"][mid] = m
        return m

    def create_mosaic(self, req):
        body = self.body_json(req)
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        m = self._new_mosaic(body.get("name"), body.get("tags"))
        self.save()
        return _json(self.mosaic_json(m))

    def list_mosaics(self, req):
        return _json([self.mosaic_json(m) for m in self.state["mosaics"].values()])

    def get_mosaic(self, req, id):
        return _json(self.mosaic_json(self.mosaic(id)))

    def update_mosaic(self, req, id):
        m = self.mosaic(id)
        body = self.body_json(req, {})
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        if "name" in body:
            m["name"] = body["name"]
        if "tags" in body:
            m["tags"] = list(body["tags"] or [])
        m["updated"] = self.now()
        self.save()
        return _json(self.mosaic_json(m))

    def delete_mosaic(self, req, id):
        self.mosaic(id)
        for iid in [k for k, i in self.state["images"].items() if i["mosaic_id"] == id]:
            self._drop_image(iid)
        del self.state["mosaics"][id]
        self.save()
        return Response(204)

    def _multipart_file(self, req) -> tuple[str, bytes]:
        ctype = req.headers.get("content-type", "")
        if "multipart/form-data" not in ctype.lower():
            raise ApiError(
                400, "BAD_REQUEST", "Expected a multipart/form-data body with a 'file' part"
            )
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: "
            + ctype.encode("latin-1")
            + b"\r\nMIME-Version: 1.0\r\n\r\n"
            + req.body
        )
        for part in msg.iter_parts() if msg.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == "file":
                fname = part.get_filename() or "image.tif"
                data = part.get_payload(decode=True) or b""
                return fname, data
        raise ApiError(400, "BAD_REQUEST", "multipart body has no 'file' part")

    def _store_image(
        self, mosaic: dict, filename: str, data: bytes, url: str | None = None
    ) -> dict:
        used = self._memory_used()
        limit = int(self.account["memoryLimit"])
        if used + len(data) > limit:
            raise ApiError(
                400,
                "MEMORY_LIMIT_EXCEEDED",
                f"Storage limit exceeded: {used + len(data)} > {limit} bytes",
                {"memoryUsed": used, "memoryLimit": limit, "fileSize": len(data)},
            )
        iid = str(uuid.uuid4())
        now = self.now()
        link = url or f"s3://users-data/{self.account['email']}_{mosaic['id']}/{iid}/{filename}"
        meta = self._upload_meta(mosaic, data) if url is None else None
        readable = meta is not None
        if meta is None:  # unreadable or linked: a placeholder, as before
            meta = {
                "crs": "EPSG:3857",
                "width": 0,
                "height": 0,
                "count": 3,
                "dtypes": ["uint8", "uint8", "uint8"],
                "pixel_size": [0.5, 0.5],
            }
        rec = {
            "id": iid,
            "mosaic_id": mosaic["id"],
            "filename": filename,
            "name": filename,
            "file_size": len(data),
            "uploaded_at": now,
            "image_url": link,
            "cog_link": link.rsplit("/", 1)[0] + "/cog/" + link.rsplit("/", 1)[-1],
            "meta_data": meta,
            "linked": url is not None,
            "is_tiff": data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
            "readable": readable,
        }
        self.state["images"][iid] = rec
        bp = self._blob_path(iid)
        if bp and data:
            os.makedirs(os.path.dirname(bp), exist_ok=True)
            with open(bp + ".tmp", "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(bp + ".tmp", bp)
        else:
            self._blobs[iid] = data
        mosaic["updated"] = now
        return rec

    def _upload_meta(self, mosaic: dict, data: bytes) -> dict | None:
        """Real metadata of an upload (rasterio); the documented mosaic rules (same CRS,
        bands, resolution) enforced against the mosaic's readable images."""
        from .rasters import describe, mosaic_mismatch, read_meta

        meta = read_meta(data)
        if meta is None:
            if self.opts.strict_uploads:
                raise ApiError(
                    400,
                    "source-validator.ImageReadError",
                    "We could not open and read the image you have uploaded",
                )
            return None
        if self.opts.strict_uploads:
            dtypes = sorted(set(meta["dtypes"]))
            if dtypes != ["uint8"]:
                raise ApiError(
                    400,
                    "source-validator.DtypeNotAllowed",
                    f"Image data type (Dtype) must be one of ['uint8'], got {dtypes}",
                    {"required_dtypes": "['uint8']", "request_dtype": str(dtypes)},
                )
            if meta["count"] not in (3, 4):
                raise ApiError(
                    400,
                    "source-validator.NChannelsNotAllowed",
                    f"Number of channels in image must be one of [3, 4]. Got {meta['count']}",
                    {"required_nchannels": "[3, 4]", "real_nchannels": str(meta["count"])},
                )
        others = [
            i["meta_data"]
            for i in self.state["images"].values()
            if i["mosaic_id"] == mosaic["id"] and i.get("readable")
        ]
        bad = mosaic_mismatch(meta, others)
        if bad is not None:
            raise ApiError(
                400,
                "MOSAIC_IMAGE_MISMATCH",
                "All images in a mosaic must have the same CRS, number of bands and spatial "
                f"resolution: the mosaic has {describe(others[0])}, the image {describe(meta)}",
                {k: str(v) for k, v in bad.items()},
            )
        return meta

    @property
    def _blobs(self) -> dict:
        if not hasattr(self, "_blob_mem"):
            self._blob_mem = {}
        return self._blob_mem

    def _image_bytes(self, iid: str) -> bytes:
        if iid in self._blobs:
            return self._blobs[iid]
        bp = self._blob_path(iid)
        if bp and os.path.exists(bp):
            with open(bp, "rb") as f:
                return f.read()
        return b""

    def _drop_image(self, iid: str) -> None:
        self.state["images"].pop(iid, None)
        self._blobs.pop(iid, None)
        bp = self._blob_path(iid)
        if bp and os.path.exists(bp):
            os.unlink(bp)

    def image_json(self, i: dict, base: str = "https://api.mapflow.ai/rest") -> dict:
        return {
            "id": i["id"],
            "mosaic_id": i["mosaic_id"],
            "filename": i["filename"],
            "name": i.get("name", i["filename"]),
            "file_size": i["file_size"],
            "uploaded_at": iso(i["uploaded_at"]),
            "footprint": i["meta_data"].get("footprint", "POLYGON EMPTY"),
            "image_url": i["image_url"],
            "url": i["image_url"],
            "cog_link": i["cog_link"],
            "preview_url_s": f"{base}/rasters/image/{i['id']}/preview/s",
            "preview_url_l": f"{base}/rasters/image/{i['id']}/preview/l",
            "meta_data": dict(i["meta_data"]),
        }

    def upload_image(self, req, id):
        m = self.mosaic(id)
        fname, data = self._multipart_file(req)
        rec = self._store_image(m, fname, data)
        self.save()
        return _json(self.image_json(rec))

    def create_mosaic_and_upload(self, req):
        name = req.arg("name")
        tags = req.query.get("tags", [])
        fname, data = self._multipart_file(req)
        m = self._new_mosaic(name, tags)
        try:
            rec = self._store_image(m, fname, data)
        except ApiError:
            del self.state["mosaics"][m["id"]]
            raise
        self.save()
        out = self.mosaic_json(m)
        out["mosaic_id"] = m["id"]
        out["image"] = self.image_json(rec)
        out["images"] = [self.image_json(rec)]
        return _json(out)

    def link_image(self, req, id):
        m = self.mosaic(id)
        body = self.body_json(req)
        url = body.get("url") if isinstance(body, dict) else None
        if not url or not isinstance(url, str):
            raise ApiError(400, "BAD_REQUEST", "'url' (string) is required")
        fname = url.rsplit("/", 1)[-1] or "image.tif"
        rec = self._store_image(m, fname, b"", url=url)
        self.save()
        return _json(
            {
                "message": "File successfully linked to a mosaic",
                "mosaic_id": m["id"],
                "id": rec["id"],
                "image_id": rec["id"],
            }
        )

    def list_images(self, req, id):
        self.mosaic(id)
        return _json(
            [self.image_json(i) for i in self.state["images"].values() if i["mosaic_id"] == id]
        )

    def get_image(self, req, id):
        return _json(self.image_json(self.image(id)))

    def rename_image(self, req, id):
        i = self.image(id)
        name = req.arg("name")
        if name is None and req.body:
            body = self.body_json(req, {})
            name = body.get("name") if isinstance(body, dict) else None
        if not name:
            raise ApiError(400, "BAD_REQUEST", "query parameter 'name' is required")
        i["name"] = name
        i["filename"] = name
        self.save()
        return _json(self.image_json(i))

    def delete_image(self, req, id):
        self.image(id)
        self._drop_image(id)
        self.save()
        return Response(204)

    def image_preview(self, req, id, size):
        self.image(id)
        size = size.lower()
        if size not in ("s", "l"):
            raise ApiError(400, "BAD_REQUEST", "preview size must be 's' or 'l'", {"size": size})
        from .preview import preview_jpeg
        from .rasters import preview

        px = 256 if size == "s" else 1024
        real = preview(self._image_bytes(id), px) if self.image(id).get("readable") else None
        data, ctype = real or preview_jpeg(px, seed=id)
        return Response(200, data, content_type=ctype)

    def legacy_upload(self, req):
        fname, data = self._multipart_file(req)
        m = self.state["mosaics"].get("legacy-uploads") or {
            "id": "legacy-uploads",
            "name": "Legacy uploads",
            "tags": [],
            "created": self.now(),
            "updated": self.now(),
        }
        self.state["mosaics"][m["id"]] = m
        rid = str(uuid.uuid4())
        rec = self._store_image(m, fname, data, url=f"s3://mapflow-rasters/{rid}/raster.tif")
        self.save()
        return _json({"url": rec["image_url"]})

    # ------------------------------------------------------------------ catalog
    def catalog_search(self, req):
        from .scenes import search

        body = self.body_json(req)
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
        if body.get("aoi") is None:
            raise ApiError(400, "BAD_REQUEST", "'aoi' is required")
        polys = self._polygons(body["aoi"])
        aoi = shapely.union_all(polys)
        total = measure(polys).total_m2
        lim = self.opts.catalog_area_limit_km2 * 1e6
        if total > lim:
            raise ApiError(
                400,
                "TOO_LARGE_PROCESSING",
                f"Search areas larger than {int(lim)} sq.m. are prohibited. Area: {int(round(total))} sq.m.",
                {"area": int(round(total)), "aoiAreaLimit": int(lim)},
            )
        try:
            hits = search(aoi, body, seed=self.opts.seed)
            if self.opts.catalog_cloud_cover_scale == "percent":
                for h in hits:
                    h["cloudCover"] = round(100.0 * h["cloudCover"], 2)
            return _json(hits)
        except (TypeError, ValueError) as e:
            raise ApiError(400, "BAD_REQUEST", f"bad search filter: {e}") from None

    # ------------------------------------------------------------------ admin views
    def snapshot(self) -> dict:
        now = self.now()
        with self.lock:
            procs = []
            for p in self.state["processings"].values():
                st, pct, _ = self._status(p, now)
                procs.append(
                    {
                        "id": p["id"],
                        "name": p["name"],
                        "projectId": p["projectId"],
                        "status": st,
                        "percentCompleted": pct,
                        "cost": p["cost"],
                        "area": p["area"],
                        "aoiCount": p["aoiCount"],
                        "meta": p["meta"],
                        "charges": sum(
                            1 for c in self.state["charges"] if c["processingId"] == p["id"]
                        ),
                        "attempts": [len(a["attempts"]) for a in p["aois"]],
                    }
                )
            return {
                "now": iso(now),
                "account": self._user_status_body() | {"models": None, "dataProviders": None},
                "projects": [
                    {"id": p["id"], "name": p["name"], "isDefault": p.get("isDefault", False)}
                    for p in self.state["projects"].values()
                ],
                "processings": procs,
                "charges": copy.deepcopy(self.state["charges"]),
                "counters": dict(self.state["counters"]),
                "mosaics": len(self.state["mosaics"]),
                "images": len(self.state["images"]),
            }


def _num_or_str(v):
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


def _zoom(z: Any) -> int | None:
    if z is None or z == "":
        return None
    try:
        return int(z)
    except (TypeError, ValueError):
        raise ApiError(
            400, "BAD_REQUEST", f"zoom must be an integer, got {z!r}", {"zoom": z}
        ) from None


def _redact(params: Any) -> Any:
    if isinstance(params, dict):
        return {
            k: ("***" if k in ("rasterPassword", "raster_password") and v else _redact(v))
            for k, v in params.items()
        }
    if isinstance(params, list):
        return [_redact(x) for x in params]
    return params


def _email_from_token(token: str) -> str | None:
    try:
        raw = base64.b64decode(token, validate=True).decode("utf-8")
    except Exception:  # noqa: BLE001
        return None
    if ":" in raw and "@" in raw.split(":", 1)[0]:
        return raw.split(":", 1)[0]
    return None
