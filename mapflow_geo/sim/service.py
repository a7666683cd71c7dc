"""The simulated Mapflow service: options, state, clock, auth and dispatch (no sockets).

What every handler works on; the handlers live in the ``api_*`` modules, one per API
area, above this one; ``routes.py`` maps requests to them (``routes.dispatch(service,
Request) -> Response``, a pure-Python entry point) and ``server.py`` puts that on a
loopback socket with faults and the request log.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import catalog, world_service
from .base import ApiError, Request, det_uuid
from .state import Account, Counters, Processing, Project, State

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


#: the values of ``SimOptions.template_processing_date``
TEMPLATE_PROCESSING_DATES = ("name", "params", "none")


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
    # cloudCover in /catalog/meta answers: "percent" (0–100, what the service answers and
    # Geoalert's QGIS plugin compares with its 1–100 slider) or "fraction" (0–1, the 2026 page)
    catalog_cloud_cover_scale: str = "percent"
    # refuse uploads that are not a readable GeoTIFF, not uint8 or not 3/4 bands at upload
    # time (the real service fails the processing later with source-validator.* instead)
    strict_uploads: bool = False
    state_file: str | None = None
    clock: Callable[[], float] | None = None
    models: list | None = None
    data_providers: list | None = None
    # further accounts: each token (base64 of email:key) is another user of the service,
    # with its own projects, processings, mosaics and templates (403 on each other's)
    extra_tokens: tuple | list = ()
    # refuse unknown/foreign My Imagery mosaic/image ids and imagery-search scene ids on
    # create (False: accept any id, as the doc examples' placeholders need)
    check_source_ids: bool = True
    # hostile realism, all off by default:
    listing_lag_s: float = 0.0  # a new processing shows in listings only after this delay
    page_size: int | None = None  # cap of every listing page (paged and unpaged listings)
    tile_url_token_in_path: bool = False  # layer tile URLs embed the account's token
    result_per_aoi: bool = True  # False: ``?aoiId=`` on a result is refused (400)
    # review workflow (/user/status reviewWorkflowEnabled): OK processings wait IN_REVIEW
    review_workflow: bool = False
    template_area_limit_km2: float = 100.0  # templateAreaLimit
    max_active_templates: int = 5
    # where a template's processing states its imagery date: "name" (its name ends with
    # the day), "params" (the flat params of its template listing) or "none" (nowhere)
    template_processing_date: str = "name"
    plugin_version: str = "3.6.0"  # GET /version
    # the world (world_service): WorldOptions fields, e.g. {"urban_share": 0.3}; checked at
    # start. Basemap providers (no "vintage" of their own) show the world of this date
    world: dict | None = None
    basemap_vintage: str = "2024-06-01"


class Service:
    """The simulated Mapflow service for one account."""

    def __init__(self, options: SimOptions):
        world_service.check_options(options)
        if options.template_processing_date not in TEMPLATE_PROCESSING_DATES:
            raise ValueError(
                f"template_processing_date must be one of {TEMPLATE_PROCESSING_DATES}, "
                f"got {options.template_processing_date!r}"
            )
        self.opts = options
        self.lock = threading.RLock()
        self.time_offset = 0.0
        #: fraction of world objects whose geometry results damage (the server's
        #: ``damaged_geometry`` fault; ``damage.py``)
        self.result_damage = 0.0
        self._clock = options.clock or time.time
        #: the e-mail of the account of the request being handled; None = the main account
        self.current: str | None = None
        #: the simulator's own ``/rest`` URL as the request reached it (``Host`` header)
        self.base = "http://127.0.0.1/rest"
        self._extra = {
            t: (_email_from_token(t) or f"user{k + 2}@mapflow.local")
            for k, t in enumerate(options.extra_tokens or ())
        }
        #: uploaded bytes when there is no state file (else ``<state_file>.blobs/<id>``)
        self.blobs: dict[str, bytes] = {}
        if options.state_file and os.path.exists(options.state_file):
            self.state = State.load(options.state_file)
        else:
            self.state = self._fresh_state()
            self.save()

    # ------------------------------------------------------------------ state
    def now(self) -> float:
        return self._clock() + self.time_offset

    def _fresh_state(self) -> State:
        o = self.opts
        email = o.email or _email_from_token(o.token) or DEFAULT_EMAIL
        account = self._new_account(email)
        models = o.models if o.models is not None else catalog.default_models()
        providers = (
            o.data_providers if o.data_providers is not None else catalog.default_providers()
        )
        state = State(o.token, account, models, providers, counters=Counters())
        now = self.now()
        pid = det_uuid("default-project", email)
        state.projects[pid] = Project(pid, "Default", None, now, now, is_default=True)
        return state

    def _new_account(self, email: str) -> Account:
        o = self.opts
        now = self.now()
        return Account(
            id=det_uuid("user", email),
            email=email,
            login=email,
            billing_type=o.billing_type.upper(),
            remaining_credits=int(o.credits),
            area_limit=int(o.area_limit_km2 * 1e6),
            processed_area=0,
            aoi_area_limit=int(round(o.aoi_area_limit_km2 * 1e6)),
            max_aois_per_processing=int(o.max_aois_per_processing),
            memory_limit=int(o.memory_limit_bytes),
            created=now,
            updated=now,
        )

    @property
    def account(self) -> Account:
        """The account of the request being handled."""
        if self.current is None:
            return self.state.account
        a = self.state.others.get(self.current)
        if a is None:
            a = self.state.others[self.current] = self._new_account(self.current)
        return a

    def mine(self, obj: Any) -> bool:
        """Whether a project/processing/mosaic/image/template belongs to the current account."""
        return getattr(obj, "owner", None) == self.current

    def forbid(self, kind: str, oid: str) -> ApiError:
        return ApiError(
            403, "ACCESS_DENIED", f"You do not have access to {kind} {oid}", {f"{kind}Id": oid}
        )

    def listed(self, proc: Processing, now: float) -> bool:
        """Whether a processing shows in listings yet (option ``listing_lag_s``)."""
        return now >= proc.created + float(self.opts.listing_lag_s or 0)

    def cap(self, items: list) -> list:
        """An unpaged listing, capped at ``page_size`` as a real capped list would be."""
        n = self.opts.page_size
        return items[: int(n)] if n else items

    def page_limit(self, limit: int) -> int:
        n = self.opts.page_size
        return min(limit, int(n)) if n else limit

    def new_project(self, pid: str, name: str, description: str | None, **kw: Any) -> Project:
        """Create and store a project."""
        now = self.now()
        kw.setdefault("owner", self.current)
        p = Project(pid, name, description, now, now, **kw)
        self.state.projects[pid] = p
        return p

    def save(self) -> None:
        if self.opts.state_file:
            self.state.save(self.opts.state_file)

    def blob_path(self, image_id: str) -> str | None:
        if not self.opts.state_file:
            return None
        return f"{self.opts.state_file}.blobs{os.sep}{image_id}"

    @property
    def token(self) -> str:
        return self.state.token or self.opts.token

    # ------------------------------------------------------------------ lookups
    def default_project(self) -> Project:
        for p in self.state.projects.values():
            if p.is_default and self.mine(p):
                return p
        pid = det_uuid("default-project", self.account.email, self.now())
        return self.new_project(pid, "Default", None, is_default=True)

    def project(self, pid: str, *, create_doc: bool = True) -> Project:
        """The project ``pid`` (a documented example id creates it); 404 otherwise."""
        p = self.state.projects.get(pid)
        if p is None and create_doc and pid in DOC_PROJECT_IDS:
            p = self.new_project(pid, DOC_PROJECT_IDS[pid], "Project of a documentation example")
        if p is None:
            raise ApiError(404, "PROJECT_NOT_FOUND", f"Project {pid} not found", {"projectId": pid})
        if not self.mine(p) and not any(s.email == self.account.email for s in p.shares):
            raise self.forbid("project", pid)
        return p

    def processing(self, pid: str) -> Processing:
        p = self.state.processings.get(pid)
        if p is None:
            raise ApiError(
                404, "PROCESSING_NOT_FOUND", f"Processing {pid} not found", {"processingId": pid}
            )
        if not self.mine(p):
            proj = self.state.projects.get(p.project_id)
            if proj is None or not any(s.email == self.account.email for s in proj.shares):
                raise self.forbid("processing", pid)
        return p

    def find_model(self, wd_id: Any = None, wd_name: Any = None) -> dict:
        models = self.state.models
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
        for p in self.state.providers:
            names = [p["id"], p["name"], p.get("displayName", "")] + list(p.get("aliases", []))
            if name in names or key in {catalog.normalize_name(n) for n in names if n}:
                return p
        raise ApiError(
            400,
            "DATA_PROVIDER_NOT_FOUND",
            f"Data provider {name!r} is not available to this account",
            {"providerName": name},
        )

    # ------------------------------------------------------------------ auth + dispatch
    def authorized(self, req: Request) -> bool:
        return self.who(req) is not False

    def who(self, req: Request) -> str | None | bool:
        """The account of a request: None (main), an extra account's e-mail, or False."""
        parts = req.headers.get("authorization", "").split(None, 1)
        if len(parts) != 2 or parts[0].lower() not in ("basic", "bearer"):
            return False
        return self.token_owner(parts[1].strip())

    def token_owner(self, token: str) -> str | None | bool:
        if token == self.token:
            return None
        return self._extra.get(token, False)


def _email_from_token(token: str) -> str | None:
    try:
        raw = base64.b64decode(token, validate=True).decode("utf-8")
    except Exception:  # noqa: BLE001
        return None
    if ":" in raw and "@" in raw.split(":", 1)[0]:
        return raw.split(":", 1)[0]
    return None
