"""The simulator's typed state and its state-file persistence.

One :class:`State` per simulated account. Every record is a dataclass with ``to_dict`` /
``from_dict`` for the state file, whose format (``version`` 1) is the one the simulator has
always written: camelCase keys, timestamps as seconds since the epoch, models and data
providers as the plain dicts of ``catalog.py`` (they are configuration the caller may pass
in, see the ``models`` / ``data_providers`` options). Files written before the split load
unchanged (``tests/sim/data/state_v1.json``).

Processing lifecycles are computed from the state and a clock reading (no background
threads): :meth:`Aoi.status`, :meth:`Processing.status`.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 1
TERMINAL = ("OK", "FAILED", "CANCELLED", "REFUNDED")


# ----------------------------------------------------------------------------- account
@dataclass
class Account:
    id: str
    email: str
    login: str
    billing_type: str  # CREDITS | AREA | NONE
    remaining_credits: int
    area_limit: int  # m²
    processed_area: int  # m²
    aoi_area_limit: int  # m²
    max_aois_per_processing: int
    memory_limit: int  # bytes
    created: float
    updated: float
    role: str = "USER"
    is_premium: bool = False

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "email": self.email,
            "login": self.login,
            "role": self.role,
            "billingType": self.billing_type,
            "remainingCredits": self.remaining_credits,
            "areaLimit": self.area_limit,
            "processedArea": self.processed_area,
            "aoiAreaLimit": self.aoi_area_limit,
            "maxAoisPerProcessing": self.max_aois_per_processing,
            "memoryLimit": self.memory_limit,
            "isPremium": self.is_premium,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Account:
        return cls(
            id=d["id"],
            email=d["email"],
            login=d.get("login", d["email"]),
            role=d.get("role", "USER"),
            billing_type=str(d["billingType"]).upper(),
            remaining_credits=int(d["remainingCredits"]),
            area_limit=int(d["areaLimit"]),
            processed_area=int(d["processedArea"]),
            aoi_area_limit=int(d["aoiAreaLimit"]),
            max_aois_per_processing=int(d["maxAoisPerProcessing"]),
            memory_limit=int(d["memoryLimit"]),
            is_premium=bool(d.get("isPremium", False)),
            created=d["created"],
            updated=d["updated"],
        )


# ----------------------------------------------------------------------------- projects
@dataclass
class Share:
    """A project share; ``time`` is set on the account-wide log (``State.shares``) only."""

    project_id: str
    email: str
    role: str
    time: float | None = None

    def to_dict(self) -> dict:
        d = {"projectId": self.project_id, "email": self.email, "role": self.role}
        if self.time is not None:
            d["time"] = self.time
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Share:
        return cls(d["projectId"], d["email"], d["role"], d.get("time"))


@dataclass
class Project:
    id: str
    name: str
    description: str | None
    created: float
    updated: float
    is_default: bool = False
    shares: list[Share] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "isDefault": self.is_default,
            "created": self.created,
            "updated": self.updated,
            "shares": [s.to_dict() for s in self.shares],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Project:
        return cls(
            id=d["id"],
            name=d["name"],
            description=d.get("description"),
            is_default=bool(d.get("isDefault", False)),
            created=d["created"],
            updated=d["updated"],
            shares=[Share.from_dict(s) for s in d.get("shares", [])],
        )


# ----------------------------------------------------------------------------- processings
@dataclass
class Attempt:
    """One run of an AOI: phases of the given durations from ``start``, then OK or FAILED."""

    n: int
    start: float
    unprocessed: float
    awaiting: float
    processing: float
    fail: bool
    message: dict | None = None

    @property
    def end(self) -> float:
        return self.start + self.unprocessed + self.awaiting + self.processing

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "start": self.start,
            "unprocessed": self.unprocessed,
            "awaiting": self.awaiting,
            "processing": self.processing,
            "fail": self.fail,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Attempt:
        return cls(
            n=int(d["n"]),
            start=d["start"],
            unprocessed=d["unprocessed"],
            awaiting=d["awaiting"],
            processing=d["processing"],
            fail=bool(d["fail"]),
            message=d.get("message"),
        )


@dataclass
class Aoi:
    id: str
    geometry: dict  # GeoJSON
    area: int  # m²
    wkb: str  # hex WKB of the polygon (the failure draws and results hash it)
    attempts: list[Attempt] = field(default_factory=list)

    def status(self, now: float) -> tuple[str, int, float]:
        """``(status, percentCompleted, since)`` of the latest attempt at ``now``."""
        at = self.attempts[-1]
        e = now - at.start
        u, w, p = at.unprocessed, at.awaiting, at.processing
        if e < u:
            return "UNPROCESSED", 0, at.start
        if e < u + w:
            return "AWAITING", 0, at.start + u
        if e < u + w + p:
            return "IN_PROGRESS", min(99, int(100 * (e - u - w) / p)), at.start + u + w
        return ("FAILED", 0, at.end) if at.fail else ("OK", 100, at.end)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "geometry": self.geometry,
            "area": self.area,
            "wkb": self.wkb,
            "attempts": [a.to_dict() for a in self.attempts],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Aoi:
        return cls(
            id=d["id"],
            geometry=d["geometry"],
            area=int(d["area"]),
            wkb=d["wkb"],
            attempts=[Attempt.from_dict(a) for a in d["attempts"]],
        )


@dataclass
class Processing:
    id: str
    api: str  # "v1" | "v2": the create route
    name: str
    description: str | None
    project_id: str
    wd_id: str
    params: Any  # the request's params, as sent
    blocks: list  # the request's blocks, as sent
    enabled_blocks: dict[str, bool]  # which of the model's blocks run
    meta: dict[str, str]
    area: int  # m²
    aoi_area: int
    aoi_count: int
    cost: int
    charged: int  # credits deducted
    charged_area: int  # m² deducted (billing AREA)
    data_provider: str | None
    source_type: str
    vector_layer_id: str
    raster_layer_id: str
    created: float
    updated: float
    aois: list[Aoi] = field(default_factory=list)
    review_status: str | None = None
    rating: Any = None
    forced_status: str | None = None  # never set by the simulator; honoured when loaded

    def status(self, now: float) -> tuple[str, int, float]:
        """``(status, percentCompleted, updated)`` at ``now``, from the AOIs' attempts."""
        if self.forced_status:
            pct = 100 if self.forced_status in ("OK", "REFUNDED") else 0
            return self.forced_status, pct, self.updated
        sts = [a.status(now) for a in self.aois]
        names = [s[0] for s in sts]
        pct = int(sum(s[1] for s in sts) / max(len(sts), 1))
        upd = max([self.updated] + [s[2] for s in sts])
        if all(n in TERMINAL for n in names):
            return ("FAILED" if "FAILED" in names else "OK"), pct, upd
        if all(n == "UNPROCESSED" for n in names):
            return "UNPROCESSED", 0, upd
        if all(n in ("UNPROCESSED", "AWAITING") for n in names):
            return "AWAITING", 0, upd
        return "IN_PROGRESS", min(pct, 99), upd

    def messages(self, now: float) -> list[dict]:
        """The failed AOIs' messages, deduplicated."""
        out, seen = [], set()
        for a in self.aois:
            msg = a.attempts[-1].message
            if msg and a.status(now)[0] == "FAILED":
                key = json.dumps(msg, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    out.append(copy.deepcopy(msg))
        return out

    def to_dict(self) -> dict:
        d = {
            "id": self.id,
            "api": self.api,
            "name": self.name,
            "description": self.description,
            "projectId": self.project_id,
            "wdId": self.wd_id,
            "params": self.params,
            "blocks": self.blocks,
            "enabledBlocks": self.enabled_blocks,
            "meta": self.meta,
            "area": self.area,
            "aoiArea": self.aoi_area,
            "aoiCount": self.aoi_count,
            "cost": self.cost,
            "charged": self.charged,
            "chargedArea": self.charged_area,
            "dataProvider": self.data_provider,
            "sourceType": self.source_type,
            "vectorLayerId": self.vector_layer_id,
            "rasterLayerId": self.raster_layer_id,
            "reviewStatus": self.review_status,
            "rating": self.rating,
            "created": self.created,
            "updated": self.updated,
            "aois": [a.to_dict() for a in self.aois],
        }
        if self.forced_status:
            d["forcedStatus"] = self.forced_status
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Processing:
        return cls(
            id=d["id"],
            api=d.get("api", "v2"),
            name=d.get("name") or "",
            description=d.get("description"),
            project_id=d["projectId"],
            wd_id=d["wdId"],
            params=d.get("params") if d.get("params") is not None else {},
            blocks=d.get("blocks") or [],
            enabled_blocks=d.get("enabledBlocks") or {},
            meta=d.get("meta") or {},
            area=int(d["area"]),
            aoi_area=int(d.get("aoiArea", d["area"])),
            aoi_count=int(d.get("aoiCount", len(d["aois"]))),
            cost=int(d["cost"]),
            charged=int(d.get("charged", 0)),
            charged_area=int(d.get("chargedArea", 0)),
            data_provider=d.get("dataProvider"),
            source_type=d.get("sourceType", "default"),
            vector_layer_id=d["vectorLayerId"],
            raster_layer_id=d["rasterLayerId"],
            review_status=d.get("reviewStatus"),
            rating=d.get("rating"),
            created=d["created"],
            updated=d["updated"],
            aois=[Aoi.from_dict(a) for a in d["aois"]],
            forced_status=d.get("forcedStatus"),
        )


@dataclass
class Charge:
    """One committed create (there is no idempotency key: each create is one charge)."""

    processing_id: str
    cost: int  # credits deducted (0 unless billing CREDITS)
    area: int  # m²
    billing_type: str
    time: float
    meta: dict[str, str]
    api: str

    def to_dict(self) -> dict:
        return {
            "processingId": self.processing_id,
            "cost": self.cost,
            "area": self.area,
            "billingType": self.billing_type,
            "time": self.time,
            "meta": dict(self.meta),
            "api": self.api,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Charge:
        return cls(
            processing_id=d["processingId"],
            cost=int(d["cost"]),
            area=int(d["area"]),
            billing_type=d["billingType"],
            time=d["time"],
            meta=d.get("meta") or {},
            api=d.get("api", "v2"),
        )


# ----------------------------------------------------------------------------- Data API
@dataclass
class Mosaic:
    id: str
    name: str
    tags: list[str]
    created: float
    updated: float

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "tags": list(self.tags),
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Mosaic:
        return cls(d["id"], d["name"], list(d.get("tags") or []), d["created"], d["updated"])


@dataclass
class Image:
    id: str
    mosaic_id: str
    filename: str
    name: str
    file_size: int
    uploaded_at: float
    image_url: str
    cog_link: str
    meta_data: dict
    linked: bool = False
    is_tiff: bool = False
    readable: bool = False  # real metadata was read from the bytes (rasterio)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "mosaic_id": self.mosaic_id,
            "filename": self.filename,
            "name": self.name,
            "file_size": self.file_size,
            "uploaded_at": self.uploaded_at,
            "image_url": self.image_url,
            "cog_link": self.cog_link,
            "meta_data": self.meta_data,
            "linked": self.linked,
            "is_tiff": self.is_tiff,
            "readable": self.readable,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Image:
        return cls(
            id=d["id"],
            mosaic_id=d["mosaic_id"],
            filename=d["filename"],
            name=d.get("name", d["filename"]),
            file_size=int(d["file_size"]),
            uploaded_at=d["uploaded_at"],
            image_url=d["image_url"],
            cog_link=d["cog_link"],
            meta_data=d.get("meta_data") or {},
            linked=bool(d.get("linked", False)),
            is_tiff=bool(d.get("is_tiff", False)),
            readable=bool(d.get("readable", False)),
        )


# ----------------------------------------------------------------------------- the state
@dataclass
class Counters:
    requests: int = 0
    creates_committed: int = 0
    creates_refused: int = 0

    def to_dict(self) -> dict:
        return {
            "requests": self.requests,
            "creates_committed": self.creates_committed,
            "creates_refused": self.creates_refused,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Counters:
        return cls(
            int(d.get("requests", 0)),
            int(d.get("creates_committed", 0)),
            int(d.get("creates_refused", 0)),
        )


@dataclass
class State:
    token: str | None
    account: Account
    models: list[dict]  # catalog.py shapes
    providers: list[dict]  # catalog.py shapes
    projects: dict[str, Project] = field(default_factory=dict)
    processings: dict[str, Processing] = field(default_factory=dict)
    mosaics: dict[str, Mosaic] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    shares: list[Share] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)

    # ------------------------------------------------------------------ queries
    def model(self, wd_id: str) -> dict | None:
        return next((m for m in self.models if m["id"] == wd_id), None)

    def processings_of(self, project_id: str) -> list[Processing]:
        return [p for p in self.processings.values() if p.project_id == project_id]

    def images_of(self, mosaic_id: str) -> list[Image]:
        return [i for i in self.images.values() if i.mosaic_id == mosaic_id]

    def memory_used(self) -> int:
        return sum(i.file_size for i in self.images.values())

    def charges_for(self, processing_id: str) -> int:
        return sum(1 for c in self.charges if c.processing_id == processing_id)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        """The state-file document (JSON-ready)."""
        return {
            "version": STATE_VERSION,
            "token": self.token,
            "account": self.account.to_dict(),
            "models": self.models,
            "providers": self.providers,
            "projects": {k: p.to_dict() for k, p in self.projects.items()},
            "processings": {k: p.to_dict() for k, p in self.processings.items()},
            "mosaics": {k: m.to_dict() for k, m in self.mosaics.items()},
            "images": {k: i.to_dict() for k, i in self.images.items()},
            "shares": [s.to_dict() for s in self.shares],
            "charges": [c.to_dict() for c in self.charges],
            "counters": self.counters.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> State:
        version = int(d.get("version", 1))
        if version != STATE_VERSION:
            raise ValueError(
                f"state file version {version} is not supported (this simulator reads "
                f"version {STATE_VERSION})"
            )
        return cls(
            token=d.get("token"),
            account=Account.from_dict(d["account"]),
            models=d["models"],
            providers=d["providers"],
            projects={k: Project.from_dict(v) for k, v in d.get("projects", {}).items()},
            processings={k: Processing.from_dict(v) for k, v in d.get("processings", {}).items()},
            mosaics={k: Mosaic.from_dict(v) for k, v in d.get("mosaics", {}).items()},
            images={k: Image.from_dict(v) for k, v in d.get("images", {}).items()},
            shares=[Share.from_dict(s) for s in d.get("shares", [])],
            charges=[Charge.from_dict(c) for c in d.get("charges", [])],
            counters=Counters.from_dict(d.get("counters", {})),
        )

    @classmethod
    def load(cls, path: str) -> State:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def save(self, path: str) -> None:
        """Write the state file atomically (temp file + fsync + ``os.replace``)."""
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".simstate-", dir=d)
        try:
            data = json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
