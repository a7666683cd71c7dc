"""The simulator's typed state and its state-file persistence.

One :class:`State` per simulated account. Every record is a dataclass (:class:`Record`)
with ``to_dict`` / ``from_dict`` for the state file, whose format (``version`` 1) is the
one the simulator has always written: camelCase keys (snake_case for the Data API's
images and for the counters, as the API spells them), timestamps as seconds since the
epoch, models and data providers as the plain dicts of ``catalog.py`` (configuration the
caller may pass in: the ``models`` / ``data_providers`` options). Files written before the
typed state load unchanged and round-trip exactly (``tests/sim/data/state_v1.json``); a
file of another version is refused (bump :data:`STATE_VERSION` and migrate in
:meth:`State.from_dict` when the format changes).

Processing lifecycles are computed from the state and a clock reading (no background
threads): :meth:`Aoi.status`, :meth:`Processing.status`.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

STATE_VERSION = 1
TERMINAL = ("OK", "FAILED", "CANCELLED", "REFUNDED")


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(w.capitalize() for w in rest)


class Record:
    """``to_dict`` / ``from_dict`` by dataclass field: the state-file key is the field name,
    in camelCase when ``CAMEL``; ``NESTED`` names list fields of records. A key missing from
    a file takes the field's default (a field without default is required)."""

    CAMEL: ClassVar[bool] = True
    NESTED: ClassVar[dict[str, type[Record]]] = {}
    #: fields left out of ``to_dict`` while they hold None (added after version 1 files
    #: were written: such files still round-trip exactly)
    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _layout(cls) -> list[tuple[str, str, type[Record] | None]]:
        """``(field, key, nested record type)`` per field (cached per class)."""
        lay = cls.__dict__.get("_layout_cache")
        if lay is None:
            lay = [
                (f.name, _camel(f.name) if cls.CAMEL else f.name, cls.NESTED.get(f.name))
                for f in fields(cls)
            ]
            cls._layout_cache = lay
        return lay

    def to_dict(self) -> dict:
        d = self.__dict__
        opt = self.OPTIONAL
        return {
            key: [x.to_dict() for x in d[name]] if nested else d[name]
            for name, key, nested in self._layout()
            if not (name in opt and d[name] is None)
        }

    @classmethod
    def from_dict(cls, d: dict) -> Any:
        kw = {}
        for name, key, nested in cls._layout():
            if key in d:
                v = d[key]
                kw[name] = [nested.from_dict(x) for x in v] if nested else v
        return cls(**kw)


# ----------------------------------------------------------------------------- account
@dataclass
class Account(Record):
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


# ----------------------------------------------------------------------------- projects
@dataclass
class Share(Record):
    """A project share; ``time`` is set on the account-wide log (``State.shares``) only."""

    project_id: str
    email: str
    role: str
    time: float | None = None

    def to_dict(self) -> dict:
        d = super().to_dict()
        if self.time is None:  # a project's own list has no times
            del d["time"]
        return d


@dataclass
class Project(Record):
    id: str
    name: str
    description: str | None
    created: float
    updated: float
    is_default: bool = False
    shares: list[Share] = field(default_factory=list)
    #: the e-mail of the owning account when it is not the main one (option ``extra_tokens``)
    owner: str | None = None

    NESTED = {"shares": Share}
    OPTIONAL = ("owner",)


# ----------------------------------------------------------------------------- processings
@dataclass
class Attempt(Record):
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


@dataclass
class Aoi(Record):
    id: str
    geometry: dict  # GeoJSON
    area: int  # m²
    wkb: str  # hex WKB of the polygon (the failure draws and results hash it)
    attempts: list[Attempt] = field(default_factory=list)

    NESTED = {"attempts": Attempt}

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


@dataclass
class Processing(Record):
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
    owner: str | None = None
    in_review_until: float | None = None
    review_comment: str | None = None
    template_id: str | None = None  # created by a planned processing (template)

    NESTED = {"aois": Aoi}
    OPTIONAL = ("owner", "in_review_until", "review_comment", "template_id")

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

    def to_dict(self) -> dict:
        d = super().to_dict()
        if not self.forced_status:
            del d["forcedStatus"]
        return d

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


@dataclass
class Charge(Record):
    """One committed create (there is no idempotency key: each create is one charge)."""

    processing_id: str
    cost: int  # credits deducted (0 unless billing CREDITS)
    area: int  # m²
    billing_type: str
    time: float
    meta: dict[str, str]
    api: str


# ----------------------------------------------------------------------------- Data API
@dataclass
class Mosaic(Record):
    id: str
    name: str
    tags: list[str]
    created: float
    updated: float
    owner: str | None = None

    OPTIONAL = ("owner",)


@dataclass
class Image(Record):
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
    owner: str | None = None
    checksum: str | None = None  # md5 of the bytes (computed on read when absent)

    CAMEL = False  # the Data API's own snake_case
    OPTIONAL = ("owner", "checksum")

    @classmethod
    def from_dict(cls, d: dict) -> Image:
        return super().from_dict({"name": d.get("filename"), **d})


# ----------------------------------------------------------------------------- templates
@dataclass
class TemplateAoi(Record):
    """One named AOI of a planned processing (a Polygon)."""

    id: str
    geometry: dict  # GeoJSON Polygon
    name: str | None
    area: int  # m²
    created: float


@dataclass
class Template(Record):
    """A planned processing: a saved imagery search over named AOIs, re-checked by
    :meth:`Service.run_template`; new acquisition dates over an AOI start paid processings
    when ``processing_params`` names a model (``wdId``/``wdName``)."""

    id: str
    name: str
    project_id: str
    user_id: str
    created: float
    updated: float
    active_until: float | None
    search_params: dict  # the filters, without aoi / aoiDetails
    processing_params: dict | None = None
    status: str = "READY"  # SEARCHING | READY | FAILED
    is_active: bool = True
    deleted: bool = False
    last_checked_at: float | None = None
    aois: list[TemplateAoi] = field(default_factory=list)
    known_images: list[str] = field(default_factory=list)  # ids found by a check
    new_images: list[str] = field(default_factory=list)  # found by the latest checks, unseen
    known_dates: list[str] = field(default_factory=list)  # "aoiId|YYYY-MM-DD" processed
    owner: str | None = None

    NESTED = {"aois": TemplateAoi}
    OPTIONAL = ("owner",)


# ----------------------------------------------------------------------------- the state
@dataclass
class Counters(Record):
    requests: int = 0
    creates_committed: int = 0
    creates_refused: int = 0

    CAMEL = False


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
    templates: dict[str, Template] = field(default_factory=dict)
    #: accounts of the extra tokens (option ``extra_tokens``), by e-mail
    others: dict[str, Account] = field(default_factory=dict)

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
            **(
                {"templates": {k: t.to_dict() for k, t in self.templates.items()}}
                if self.templates
                else {}
            ),
            **({"others": {k: a.to_dict() for k, a in self.others.items()}} if self.others else {}),
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
            templates={k: Template.from_dict(v) for k, v in d.get("templates", {}).items()},
            others={k: Account.from_dict(v) for k, v in d.get("others", {}).items()},
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
