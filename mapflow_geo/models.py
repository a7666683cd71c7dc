"""Typed records for Mapflow API objects.

Every record is a dataclass built with ``from_json(dict)``. Records are tolerant:
unknown fields are ignored (but kept in ``.raw``), missing fields become ``None`` (or an
empty list/dict), and both camelCase and snake_case spellings are accepted where the
published pages disagree. Reprs never show ``rasterPassword`` (or other secrets).

>>> p = Processing.from_json({"id": "p1", "status": "AWAITING", "percentCompleted": 0})
>>> p.status, p.status.is_terminal
(<Status.AWAITING: 'AWAITING'>, False)
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mapflow_geo._secrets import redact
from mapflow_geo.messages import normalise_parameters


# ----------------------------------------------------------------------- helpers
def _get(d: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def _num(v: Any, kind: type = float) -> Any:
    if v is None or isinstance(v, bool):
        return None
    try:
        return kind(float(v)) if kind is int else kind(v)
    except (TypeError, ValueError, OverflowError):
        return None


def _int(v: Any) -> int | None:
    return _num(v, int)


def _float(v: Any) -> float | None:
    return _num(v, float)


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def _dict(v: Any) -> dict:
    return dict(v) if isinstance(v, Mapping) else {}


def _list(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple)) else []


def _bool(v: Any) -> bool | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def parse_datetime(v: Any) -> datetime | None:
    """ISO-8601 text (``Z`` suffix allowed) → aware datetime; anything else → None."""
    if isinstance(v, datetime):
        return v
    if not isinstance(v, str) or not v:
        return None
    s = v.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        # Python < 3.11 accepts only 3 or 6 fractional digits
        if "." in s:
            head, _, tail = s.partition(".")
            digits = "".join(c for c in tail if c.isdigit())
            rest = tail[len(digits) :]
            try:
                return datetime.fromisoformat(f"{head}.{(digits + '000000')[:6]}{rest}")
            except ValueError:
                return None
        return None


@dataclass(repr=False)
class _Record:
    """Base: ``raw`` keeps the server's dict; repr hides secrets and ``raw``."""

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            if f.name == "raw" or not f.repr:
                continue
            v = getattr(self, f.name)
            if isinstance(v, (dict, list)):
                v = redact(v)
            parts.append(f"{f.name}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    __str__ = __repr__

    def to_json(self) -> dict:
        """The server's dict (as received)."""
        return dict(getattr(self, "raw", {}) or {})


# ----------------------------------------------------------------------- enums
class _StrEnum(str, enum.Enum):
    """``str(member)`` and f-strings give the wire value (``"OK"``), as StrEnum does."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Status(_StrEnum):
    """Status of a processing, an AOI, or a run's processing.

    The service's statuses come first; then the statuses a run gives its processings
    itself (in the journal and the ``processings``/``tiles`` tables), which the service
    never sends. Unknown strings map to ``UNKNOWN`` (the text is kept on the record as
    ``status_raw``). Members are strings, so ``status == "OK"`` holds.

    ========================  =======  ================================================
    member                    from     meaning
    ========================  =======  ================================================
    ``UNPROCESSED``           service  accepted, not started
    ``AWAITING``              service  waiting (e.g. for imagery); not finished
    ``IN_PROGRESS``           service  running
    ``OK``                    service  finished; results ready
    ``FAILED``                service  finished without results (``messages`` say why)
    ``CANCELLED``             service  stopped by the user
    ``REFUNDED``              service  failed and paid back
    ``PLANNED``               run      in the plan, not sent yet
    ``NOT_CREATED``           run      the service refused the create (nothing charged;
                                       sent again on resume)
    ``REPLANNED``             run      refused as too large; split into smaller
                                       processings that follow it
    ``TOO_LARGE_PROCESSING``  run      refused as too large and could not be split
    ``UNKNOWN``               either   a status this version does not know
    ========================  =======  ================================================

    >>> Status.parse("REFUNDED").is_terminal, Status.parse("AWAITING").is_terminal
    (True, False)
    >>> Status.NOT_CREATED.is_terminal, Status.PLANNED.is_terminal
    (True, False)
    >>> Status.parse("SOMETHING_NEW")
    <Status.UNKNOWN: 'UNKNOWN'>
    """

    # the service's
    UNPROCESSED = "UNPROCESSED"
    IN_PROGRESS = "IN_PROGRESS"
    AWAITING = "AWAITING"
    OK = "OK"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    # a run's own
    PLANNED = "PLANNED"
    NOT_CREATED = "NOT_CREATED"
    REPLANNED = "REPLANNED"
    TOO_LARGE_PROCESSING = "TOO_LARGE_PROCESSING"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> Status:
        if isinstance(value, Status):
            return value
        if value is None:
            return cls.UNKNOWN
        s = str(value).strip().upper().replace("-", "_").replace(" ", "_")
        if s == "CANCELED":
            s = "CANCELLED"
        try:
            return cls(s)
        except ValueError:
            return cls.UNKNOWN

    @classmethod
    def _missing_(cls, value: object) -> Status:  # Status("weird") -> UNKNOWN
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        """True when nothing more will happen to the processing: the service's OK,
        FAILED, CANCELLED and REFUNDED (AWAITING is *not* finished), and a run's
        NOT_CREATED, REPLANNED and TOO_LARGE_PROCESSING (PLANNED is not)."""
        return self in _TERMINAL

    @property
    def is_run_status(self) -> bool:
        """True for the statuses a run gives, which the service never sends."""
        return self in _RUN_STATUSES

    @property
    def is_success(self) -> bool:
        return self is Status.OK


_RUN_STATUSES = frozenset(
    {Status.PLANNED, Status.NOT_CREATED, Status.REPLANNED, Status.TOO_LARGE_PROCESSING}
)
_TERMINAL = frozenset(
    {
        Status.OK,
        Status.FAILED,
        Status.CANCELLED,
        Status.REFUNDED,
        Status.NOT_CREATED,
        Status.REPLANNED,
        Status.TOO_LARGE_PROCESSING,
    }
)


class ReviewStatus(_StrEnum):
    """Review status of a processing (an opt-in feature)."""

    ACCEPTED = "ACCEPTED"
    NOT_ACCEPTED = "NOT_ACCEPTED"
    REFUNDED = "REFUNDED"
    IN_REVIEW = "IN_REVIEW"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> ReviewStatus | None:
        """``"ACCEPTED"`` or ``{"reviewStatus": "ACCEPTED", ...}`` → member; null → None."""
        if isinstance(value, Mapping):
            value = value.get("reviewStatus", value.get("status"))
        if value is None:
            return None
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            return cls.UNKNOWN


class BillingType(_StrEnum):
    CREDITS = "CREDITS"
    AREA = "AREA"
    NONE = "NONE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> BillingType | None:
        if value is None:
            return None
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            return cls.UNKNOWN


#: The two scales the service has published for cloud cover and AOI intersection.
SCALES = ("percent", "fraction")


def check_scale(scale: str) -> str:
    """``scale`` if it is ``"percent"`` or ``"fraction"``, else ValueError."""
    if scale not in SCALES:
        raise ValueError(f"scale must be 'percent' or 'fraction', got {scale!r}")
    return scale


def to_fraction(value: float, scale: str) -> float:
    """A value read on ``scale`` as a fraction 0–1 (the scale decides, not the value).

    >>> to_fraction(0.8, "percent"), to_fraction(0.8, "fraction")
    (0.008, 0.8)
    """
    return float(value) / 100.0 if check_scale(scale) == "percent" else float(value)


def from_fraction(value: float, scale: str) -> float | int:
    """A fraction 0–1 on the wire's ``scale`` (whole percents as ints, as Geoalert's
    plugin sends them).

    >>> from_fraction(0.2, "percent"), from_fraction(0.008, "percent"), from_fraction(0.2, "fraction")
    (20, 0.8, 0.2)
    """
    v = float(value)
    if isinstance(value, bool) or not 0.0 <= v <= 1.0:
        raise ValueError(f"expected a fraction between 0 and 1, got {value!r} (20 % is 0.2)")
    if check_scale(scale) == "fraction":
        return v
    pct = round(v * 100.0, 6)
    return int(pct) if pct.is_integer() else pct


# ----------------------------------------------------------------------- models
@dataclass(repr=False)
class Block(_Record):
    """An optional (or mandatory) step of a workflow, with its price per km²."""

    name: str
    display_name: str | None = None
    description: str | None = None
    optional: bool = True
    price: float = 0.0
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Block:
        d = _dict(d)
        opt = _get(d, "optional")
        return cls(
            name=str(_get(d, "name", default="")),
            display_name=_str(_get(d, "displayName", "display_name")),
            description=_str(_get(d, "description")),
            optional=True if opt is None else bool(_bool(opt)),
            price=_float(_get(d, "price", "priceSqKm", "pricePerSqKm")) or 0.0,
            raw=d,
        )


@dataclass(repr=False)
class Model(_Record):
    """A workflow definition (AI model): ``🏠 Buildings``, ``🌲 Forest``…"""

    id: str | None
    name: str
    description: str | None = None
    price_per_sq_km: float = 0.0
    blocks: list[Block] = field(default_factory=list)
    created: datetime | None = None
    updated: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Model:
        d = _dict(d)
        return cls(
            id=_str(_get(d, "id", "wdId")),
            name=str(_get(d, "name", default="")),
            description=_str(_get(d, "description")),
            price_per_sq_km=_float(_get(d, "pricePerSqKm", "price_per_sq_km", "price")) or 0.0,
            blocks=[Block.from_json(b) for b in _list(_get(d, "blocks")) if isinstance(b, Mapping)],
            created=parse_datetime(_get(d, "created")),
            updated=parse_datetime(_get(d, "updated")),
            raw=d,
        )

    def block(self, name: str) -> Block | None:
        """The block called ``name`` (or with that display name), case-insensitively."""
        n = name.lower()
        for b in self.blocks:
            if b.name.lower() == n or (b.display_name or "").lower() == n:
                return b
        return None


Workflow = Model


@dataclass(repr=False)
class DataProvider(_Record):
    """An imagery provider linked to the account, with prices by zoom (credits/km²)."""

    id: str | None
    name: str
    display_name: str | None = None
    prices: dict[int, float] = field(default_factory=dict)
    min_area_sq_km: float | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DataProvider:
        d = _dict(d)
        prices: dict[int, float] = {}
        price = _get(d, "price", "prices")
        if isinstance(price, list):
            for p in price:
                if isinstance(p, Mapping):
                    z = _int(_get(p, "zoom"))
                    v = _float(_get(p, "priceSqKm", "pricePerSqKm", "price"))
                    if v is not None:
                        prices[z if z is not None else -1] = v
        elif isinstance(price, Mapping):
            for z, v in price.items():
                zi, vf = _int(z), _float(v)
                if zi is not None and vf is not None:
                    prices[zi] = vf
        elif _float(price) is not None:
            prices[-1] = _float(price)
        return cls(
            id=_str(_get(d, "id")),
            name=str(_get(d, "name", "providerName", default="")),
            display_name=_str(_get(d, "displayName", "display_name")),
            prices=prices,
            min_area_sq_km=_float(_get(d, "minAreaSqKm", "min_area_sq_km")),
            raw=d,
        )

    def price_at(self, zoom: int | None = None) -> float:
        """Price per km² at ``zoom``. Without a zoom (or an unlisted one) the highest
        listed price is returned, so estimates err on the side of caution.

        >>> DataProvider.from_json({"name": "Mapbox", "price": [{"zoom": 18, "priceSqKm": 3}]}).price_at(18)
        3.0
        """
        if not self.prices:
            return 0.0
        if zoom is not None and int(zoom) in self.prices:
            return self.prices[int(zoom)]
        if -1 in self.prices and len(self.prices) == 1:
            return self.prices[-1]
        return max(self.prices.values())


@dataclass(repr=False)
class Team(_Record):
    id: str | None
    name: str | None = None
    role: str | None = None
    credits_limit: float | None = None
    active_until: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Team:
        d = _dict(d)
        return cls(
            id=_str(_get(d, "teamId", "id")),
            name=_str(_get(d, "name")),
            role=_str(_get(d, "role")),
            credits_limit=_float(_get(d, "creditsLimit")),
            active_until=parse_datetime(_get(d, "activeUntil")),
            raw=d,
        )


DEFAULT_MAX_AOIS_PER_PROCESSING = 10


@dataclass(repr=False)
class UserStatus(_Record):
    """``GET /user/status``: billing, limits, models and data providers.

    Areas are in m² as the service sends them; ``max_aois_per_processing`` defaults to
    10 when the server omits it.
    """

    email: str | None = None
    billing_type: BillingType | None = None
    remaining_credits: float | None = None
    remaining_area: int | None = None
    processed_area: int | None = None
    area_limit: int | None = None
    memory_limit: int | None = None
    max_aois_per_processing: int = DEFAULT_MAX_AOIS_PER_PROCESSING
    models: list[Model] = field(default_factory=list)
    data_providers: list[DataProvider] = field(default_factory=list)
    teams: list[Team] = field(default_factory=list)
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> UserStatus:
        d = _dict(d)
        user = _dict(_get(d, "user"))  # the 2026 page nests some of it under "user"
        both = {**user, **d}
        return cls(
            email=_str(_get(both, "email", "login")),
            billing_type=BillingType.parse(_get(both, "billingType", "billing_type")),
            remaining_credits=_float(
                _get(both, "remainingCredits", "remaining_credits", "credits")
            ),
            remaining_area=_int(_get(both, "remainingArea", "remaining_area")),
            processed_area=_int(_get(both, "processedArea", "processed_area")),
            area_limit=_int(_get(both, "areaLimit", "area_limit")),
            memory_limit=_int(_get(both, "memoryLimit", "memory_limit")),
            max_aois_per_processing=_int(
                _get(both, "maxAoisPerProcessing", "max_aois_per_processing")
            )
            or DEFAULT_MAX_AOIS_PER_PROCESSING,
            models=[Model.from_json(m) for m in _list(_get(d, "models")) if isinstance(m, Mapping)],
            data_providers=[
                DataProvider.from_json(p)
                for p in _list(_get(d, "dataProviders", "data_providers"))
                if isinstance(p, Mapping)
            ],
            teams=[Team.from_json(t) for t in _list(_get(d, "teams")) if isinstance(t, Mapping)],
            raw=d,
        )

    def data_provider(self, name: str) -> DataProvider | None:
        """The provider whose name or display name matches ``name`` (case-insensitive)."""
        n = name.lower()
        for p in self.data_providers:
            if p.name.lower() == n or (p.display_name or "").lower() == n or (p.id or "") == name:
                return p
        return None


@dataclass(repr=False)
class ProjectUser(_Record):
    """The ``user`` of a project: its owner, carrying the area limits (m²)."""

    id: str | None = None
    email: str | None = None
    login: str | None = None
    role: str | None = None
    area_limit: int | None = None
    aoi_area_limit: int | None = None
    processed_area: int | None = None
    is_premium: bool | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ProjectUser:
        d = _dict(d)
        return cls(
            id=_str(_get(d, "id")),
            email=_str(_get(d, "email")),
            login=_str(_get(d, "login")),
            role=_str(_get(d, "role")),
            area_limit=_int(_get(d, "areaLimit", "area_limit")),
            aoi_area_limit=_int(_get(d, "aoiAreaLimit", "aoi_area_limit")),
            processed_area=_int(_get(d, "processedArea")),
            is_premium=_bool(_get(d, "isPremium")),
            raw=d,
        )

    @property
    def aoi_area_limit_km2(self) -> float | None:
        return None if self.aoi_area_limit is None else self.aoi_area_limit / 1e6


@dataclass(repr=False)
class Project(_Record):
    id: str | None
    name: str | None = None
    description: str | None = None
    is_default: bool | None = None
    status: Status | None = None
    percent_completed: float | None = None
    aoi_count: int | None = None
    area: int | None = None
    user: ProjectUser | None = None
    workflow_defs: list[Model] = field(default_factory=list)
    created: datetime | None = None
    updated: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Project:
        d = _dict(d)
        progress = _dict(_get(d, "progress"))
        user = _get(d, "user")
        return cls(
            id=_str(_get(d, "id")),
            name=_str(_get(d, "name")),
            description=_str(_get(d, "description")),
            is_default=_bool(_get(d, "isDefault", "is_default")),
            status=Status.parse(progress["status"]) if "status" in progress else None,
            percent_completed=_float(_get(progress, "percentCompleted")),
            aoi_count=_int(_get(d, "aoiCount")),
            area=_int(_get(d, "area")),
            user=ProjectUser.from_json(user) if isinstance(user, Mapping) else None,
            workflow_defs=[
                Model.from_json(w) for w in _list(_get(d, "workflowDefs")) if isinstance(w, Mapping)
            ],
            created=parse_datetime(_get(d, "created")),
            updated=parse_datetime(_get(d, "updated")),
            raw=d,
        )


@dataclass(repr=False)
class Layer(_Record):
    id: str | None = None
    name: str | None = None
    tile_url: str | None = None
    tile_json_url: str | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Any) -> Layer | None:
        if not isinstance(d, Mapping):
            return None
        d = dict(d)
        return cls(
            id=_str(_get(d, "id")),
            name=_str(_get(d, "name")),
            tile_url=_str(_get(d, "tileUrl", "tile_url")),
            tile_json_url=_str(_get(d, "tileJsonUrl", "tile_json_url")),
            raw=d,
        )


class Message(dict):
    """One entry of a processing's ``messages``: ``{"code": ..., "parameters": {...}}``.

    A plain ``dict`` (so it serialises to JSON as is) with ``.code`` and
    ``.parameters`` attributes. ``parameters`` is normalised to a plain dict (the docs
    also show ``{"key": ..., "value": ...}`` and lists of those); ``.raw`` keeps the
    server's form.

    >>> m = Message.from_json({"code": "c", "parameters": {"key": "max_res", "value": "1.2"}})
    >>> m.code, m.parameters, m
    ('c', {'max_res': '1.2'}, {'code': 'c', 'parameters': {'max_res': '1.2'}})
    """

    raw: Any

    def __init__(self, code: str | None = None, parameters: Mapping | None = None, raw: Any = None):
        super().__init__(code=code, parameters=dict(parameters or {}))
        self.raw = raw if raw is not None else {"code": code, "parameters": dict(parameters or {})}

    @property
    def code(self) -> str | None:
        return self.get("code")

    @property
    def parameters(self) -> dict:
        return self.get("parameters") or {}

    def __repr__(self) -> str:
        return repr(redact(dict(self)))

    @classmethod
    def from_json(cls, d: Any) -> Message:
        if isinstance(d, str):
            return cls(code=d, parameters={}, raw=d)
        dd = _dict(d)
        return cls(
            code=_str(_get(dd, "code")),
            parameters=normalise_parameters(_get(dd, "parameters", "params")),
            raw=dd,
        )


def _rating(v: Any) -> int | None:
    """``{"rating": 4, "feedback": ...}``, ``"4"`` or ``4`` → 4; null → None."""
    if isinstance(v, Mapping):
        v = v.get("rating")
    return _int(v)


def _feedback(v: Any, d: Mapping[str, Any]) -> str | None:
    if isinstance(v, Mapping) and v.get("feedback") is not None:
        return str(v["feedback"])
    return _str(d.get("feedback"))


@dataclass(repr=False)
class Processing(_Record):
    """A processing (v1 or v2 shape). Areas in m², ``cost`` in credits."""

    id: str | None
    name: str | None = None
    description: str | None = None
    project_id: str | None = None
    status: Status = Status.UNKNOWN
    status_raw: str | None = None
    percent_completed: float | None = None
    aoi_count: int | None = None
    area: int | None = None
    aoi_area: int | None = None
    cost: int | None = None
    messages: list[Message] = field(default_factory=list)
    vector_layer: Layer | None = None
    raster_layer: Layer | None = None
    workflow_def: Model | None = None
    params: dict = field(default_factory=dict)
    blocks: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    review_status: ReviewStatus | None = None
    rating: int | None = None
    feedback: str | None = None
    in_review_until: datetime | None = None
    created: datetime | None = None
    updated: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Processing:
        d = _dict(d)
        st = _get(d, "status")
        wd = _get(d, "workflowDef", "workflow_def")
        return cls(
            id=_str(_get(d, "id")),
            name=_str(_get(d, "name")),
            description=_str(_get(d, "description")),
            project_id=_str(_get(d, "projectId", "project_id")),
            status=Status.parse(st),
            status_raw=_str(st),
            percent_completed=_float(_get(d, "percentCompleted", "percent_completed")),
            aoi_count=_int(_get(d, "aoiCount", "aoi_count")),
            area=_int(_get(d, "area")),
            aoi_area=_int(_get(d, "aoiArea", "aoi_area")),
            cost=_int(_get(d, "cost")),
            messages=[Message.from_json(m) for m in _list(_get(d, "messages"))],
            vector_layer=Layer.from_json(_get(d, "vectorLayer", "vector_layer")),
            raster_layer=Layer.from_json(_get(d, "rasterLayer", "raster_layer")),
            workflow_def=Model.from_json(wd) if isinstance(wd, Mapping) else None,
            params=_dict(_get(d, "params")),
            blocks=[b for b in _list(_get(d, "blocks")) if isinstance(b, Mapping)],
            meta=_dict(_get(d, "meta")),
            review_status=ReviewStatus.parse(_get(d, "reviewStatus", "review_status")),
            rating=_rating(_get(d, "rating")),
            feedback=_feedback(_get(d, "rating"), d),
            in_review_until=parse_datetime(_dict(_get(d, "reviewStatus")).get("inReviewUntil")),
            created=parse_datetime(_get(d, "created")),
            updated=parse_datetime(_get(d, "updated")),
            raw=d,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def model_name(self) -> str | None:
        return self.workflow_def.name if self.workflow_def else None


@dataclass(repr=False)
class Aoi(_Record):
    """One area of a processing (each polygon of the geometry is one AOI)."""

    id: str | None
    status: Status = Status.UNKNOWN
    percent_completed: float | None = None
    area: int | None = None
    geometry: dict | None = None
    messages: list[Message] = field(default_factory=list)
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Aoi:
        d = _dict(d)
        geom = _get(d, "geometry")
        if geom is None and isinstance(_get(d, "type"), str) and d.get("type") == "Feature":
            geom = None
        return cls(
            id=_str(_get(d, "id")),
            status=Status.parse(_get(d, "status")),
            percent_completed=_float(_get(d, "percentCompleted")),
            area=_int(_get(d, "area")),
            geometry=dict(geom) if isinstance(geom, Mapping) else None,
            messages=[Message.from_json(m) for m in _list(_get(d, "messages"))],
            raw=d,
        )


@dataclass(repr=False)
class Mosaic(_Record):
    id: str | None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    image_count: int | None = None
    created: datetime | None = None
    images: list[Image] = field(default_factory=list)
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Mosaic:
        d = _dict(d)
        imgs = [i for i in _list(_get(d, "images")) if isinstance(i, Mapping)]
        if not imgs and isinstance(_get(d, "image"), Mapping):
            imgs = [d["image"]]
        return cls(
            id=_str(_get(d, "id", "mosaic_id", "mosaicId")),
            name=_str(_get(d, "name")),
            tags=[str(t) for t in _list(_get(d, "tags"))],
            image_count=_int(_get(d, "image_count", "imageCount")),
            created=parse_datetime(_get(d, "created_at", "createdAt", "created")),
            images=[Image.from_json(i) for i in imgs],
            raw=d,
        )


@dataclass(repr=False)
class Image(_Record):
    id: str | None
    mosaic_id: str | None = None
    filename: str | None = None
    file_size: int | None = None
    uploaded: datetime | None = None
    footprint: Any = None
    meta_data: dict = field(default_factory=dict)
    cog_link: str | None = None
    preview_url_s: str | None = None
    preview_url_l: str | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Image:
        d = _dict(d)
        return cls(
            id=_str(_get(d, "id", "image_id", "imageId")),
            mosaic_id=_str(_get(d, "mosaic_id", "mosaicId")),
            filename=_str(_get(d, "filename", "name")),
            file_size=_int(_get(d, "file_size", "fileSize")),
            uploaded=parse_datetime(_get(d, "uploaded_at", "uploadedAt", "created_at", "created")),
            footprint=_get(d, "footprint"),
            meta_data=_dict(_get(d, "meta_data", "metaData")),
            cog_link=_str(_get(d, "cog_link", "cogLink", "image_url", "url")),
            preview_url_s=_str(_get(d, "preview_url_s")),
            preview_url_l=_str(_get(d, "preview_url_l")),
            raw=d,
        )


@dataclass(repr=False)
class Memory(_Record):
    """Data API storage (``GET /rasters/memory``), in bytes.

    Accepts the page's ``used_bytes/limit_bytes/...`` and the service's
    ``memoryLimit/memoryUsed/memoryFree``.

    >>> Memory.from_json({"memoryLimit": 100, "memoryUsed": 25}).free_bytes
    75
    """

    used_bytes: int | None = None
    limit_bytes: int | None = None
    free_bytes: int | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Memory:
        d = _dict(d)
        gb = 1024**3
        used = _int(_get(d, "used_bytes", "memoryUsed", "usedBytes"))
        limit = _int(_get(d, "limit_bytes", "memoryLimit", "limitBytes"))
        free = _int(_get(d, "free_bytes", "memoryFree", "freeBytes"))
        if used is None and _float(_get(d, "used_gb")) is not None:
            used = int(_float(d["used_gb"]) * gb)
        if limit is None and _float(_get(d, "limit_gb")) is not None:
            limit = int(_float(d["limit_gb"]) * gb)
        if free is None and used is not None and limit is not None:
            free = max(0, limit - used)
        if used is None and free is not None and limit is not None:
            used = max(0, limit - free)
        return cls(used_bytes=used, limit_bytes=limit, free_bytes=free, raw=d)

    @property
    def usage_percent(self) -> float | None:
        if self.used_bytes is None or not self.limit_bytes:
            p = _float(_get(self.raw, "usage_percent"))
            return p
        return 100.0 * self.used_bytes / self.limit_bytes


@dataclass(repr=False)
class CatalogScene(_Record):
    """One image of a catalog search. ``cloud_cover`` is as sent; ``cloud_cover_scale``
    is the scale of the endpoint that sent it (``"percent"`` for ``/catalog/meta`` and
    template images, as the service answers; ``"fraction"`` for a deployment on the
    2026 page's 0–1 scale), and ``cloud_cover_fraction`` is 0–1 by that scale, never by
    the value: a 0.8 % scene is 0.008.

    >>> CatalogScene.from_json({"cloudCover": 0.8}).cloud_cover_fraction
    0.008
    >>> CatalogScene.from_json({"cloudCover": 0.3}, cloud_cover_scale="fraction").cloud_cover_fraction
    0.3
    """

    id: str | None
    provider_name: str | None = None
    product_type: str | None = None
    acquisition_date: datetime | None = None
    sensor: str | None = None
    pixel_resolution: float | None = None
    cloud_cover: float | None = None
    off_nadir_angle: float | None = None
    color_band_order: str | None = None
    preview_type: str | None = None
    preview_url: str | None = None
    footprint: dict | None = None
    cloud_cover_scale: str = "percent"
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, cloud_cover_scale: str = "percent") -> CatalogScene:
        d = _dict(d)
        fp = _get(d, "footprint", "geometry")
        return cls(
            id=_str(_get(d, "id")),
            provider_name=_str(_get(d, "providerName", "provider_name", "dataProvider")),
            product_type=_str(_get(d, "productType", "product_type")),
            acquisition_date=parse_datetime(_get(d, "acquisitionDate", "acquisition_date")),
            sensor=_str(_get(d, "sensor")),
            pixel_resolution=_float(_get(d, "pixelResolution", "pixel_resolution")),
            cloud_cover=_float(_get(d, "cloudCover", "cloud_cover")),
            off_nadir_angle=_float(_get(d, "offNadirAngle", "off_nadir_angle")),
            color_band_order=_str(_get(d, "colorBandOrder")),
            preview_type=_str(_get(d, "previewType")),
            preview_url=_str(_get(d, "previewUrl", "preview_url")),
            footprint=dict(fp) if isinstance(fp, Mapping) else None,
            cloud_cover_scale=check_scale(cloud_cover_scale),
            raw=d,
        )

    @property
    def cloud_cover_fraction(self) -> float | None:
        if self.cloud_cover is None:
            return None
        return to_fraction(self.cloud_cover, self.cloud_cover_scale)


@dataclass(repr=False)
class CatalogSearchResult(_Record):
    """Result of ``POST /catalog/meta`` (or a template's images): the service's
    ``{"images", "total", "limit", "offset"}``, a bare list (2026 page) or
    ``{"images": [...]}`` (older page). Iterable over its scenes; ``cloud_cover_scale``
    is the scale the answer was read on."""

    images: list[CatalogScene] = field(default_factory=list)
    total: int | None = None
    limit: int | None = None
    offset: int | None = None
    raw: Any = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Any, *, cloud_cover_scale: str = "percent") -> CatalogSearchResult:
        limit = offset = None
        if isinstance(d, list):
            items, total = d, None
        else:
            dd = _dict(d)
            items = _list(_get(dd, "images", "results", "items", "features"))
            total = _int(_get(dd, "total", "count"))
            limit, offset = _int(_get(dd, "limit")), _int(_get(dd, "offset"))
        scenes = [
            CatalogScene.from_json(i, cloud_cover_scale=cloud_cover_scale)
            for i in items
            if isinstance(i, Mapping)
        ]
        return cls(
            images=scenes,
            total=total if total is not None else len(scenes),
            limit=limit,
            offset=offset,
            raw=d,
        )

    def __iter__(self):
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> CatalogScene:
        return self.images[i]


@dataclass(repr=False)
class ProcessingStats(_Record):
    """``POST /processings/stats?type=JSON``: history rows and totals."""

    results: list[dict] = field(default_factory=list)
    total: int | None = None
    count: int | None = None
    total_cost: float | None = None
    total_area: int | None = None
    raw: Any = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Any) -> ProcessingStats:
        if isinstance(d, list):
            return cls(
                results=[r for r in d if isinstance(r, Mapping)], total=len(d), count=len(d), raw=d
            )
        dd = _dict(d)
        rows = [
            r for r in _list(_get(dd, "results", "items", "processings")) if isinstance(r, Mapping)
        ]
        return cls(
            results=rows,
            total=_int(_get(dd, "total")),
            count=_int(_get(dd, "count")),
            total_cost=_float(_get(dd, "totalCost", "total_cost")),
            total_area=_int(_get(dd, "totalArea", "total_area")),
            raw=dd,
        )

    def to_dataframe(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.results)


@dataclass(repr=False)
class AccountLimits(_Record):
    """Limits a planner needs: AOI area (km²) and AOIs per processing."""

    aoi_area_limit_km2: float | None
    max_aois_per_processing: int = DEFAULT_MAX_AOIS_PER_PROCESSING
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def aoi_area_limit_m2(self) -> int | None:
        return (
            None if self.aoi_area_limit_km2 is None else int(round(self.aoi_area_limit_km2 * 1e6))
        )


# ----------------------------------------------------------------------- paging
class Listing(list):
    """A list of records from a listing walked page by page. ``total`` is the service's
    count when it sent one; ``complete`` is True when the walk reached it (the offsets
    covered ``total``, or an unpaged listing was read whole).

    >>> Listing([1, 2], total=2).complete, Listing([1], total=3, complete=False).complete
    (True, False)
    """

    def __init__(self, items: Any = (), *, total: int | None = None, complete: bool = True):
        super().__init__(items)
        self.total = total
        self.complete = complete


@dataclass(repr=False)
class Page(_Record):
    """One page of a paged listing (``{"results", "total", "count"}``).

    ``offset`` is where the page starts, ``limit`` what was asked for, ``total`` the
    service's count at the time of this page (None when unpaged), ``last`` True on the
    final page of a walk. ``reached`` = ``offset + len(items)``. ``shrank`` is True once
    the service counted fewer than on an earlier page of the same walk: something was
    deleted meanwhile, and what followed it moved onto pages already read (one item
    may have been skipped)."""

    items: list = field(default_factory=list)
    offset: int = 0
    limit: int | None = None
    total: int | None = None
    count: int | None = None
    last: bool = True
    raw: Any = field(default_factory=dict, compare=False)
    shrank: bool = False

    @property
    def reached(self) -> int:
        return self.offset + len(self.items)

    @property
    def complete(self) -> bool:
        """The last page of a walk whose offsets reached ``total``, the count never
        falling on the way."""
        return self.last and not self.shrank and (self.total is None or self.reached >= self.total)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(repr=False)
class ImageDownload(_Record):
    """``GET /rasters/image/{id}/download``: a short-lived URL to the original file."""

    download_url: str | None = None
    filename: str | None = None
    expires_in: int | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ImageDownload:
        d = _dict(d)
        return cls(
            download_url=_str(_get(d, "download_url", "downloadUrl", "url")),
            filename=_str(_get(d, "filename")),
            expires_in=_int(_get(d, "expires_in", "expiresIn")),
            raw=d,
        )


# ----------------------------------------------------------------------- templates
class TemplateStatus(_StrEnum):
    """Status of a planned processing (template): its search state."""

    SEARCHING = "SEARCHING"
    READY = "READY"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> TemplateStatus:
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            return cls.UNKNOWN


@dataclass(repr=False)
class TemplateAoi(_Record):
    """One named area of a template (``searchParams.aoiDetails.features[]``)."""

    id: str | None
    name: str | None = None
    has_new_images: bool | None = None
    geometry: dict | None = None
    processings: list[dict] = field(default_factory=list)
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TemplateAoi:
        d = _dict(d)
        props = _dict(_get(d, "properties"))
        geom = _get(d, "geometry")
        return cls(
            id=_str(_get(d, "id") or _get(props, "id")),
            name=_str(_get(props, "name") or _get(d, "name")),
            has_new_images=_bool(_get(props, "hasNewImages")),
            geometry=dict(geom) if isinstance(geom, Mapping) else None,
            processings=[p for p in _list(_get(props, "processings")) if isinstance(p, Mapping)],
            raw=d,
        )


@dataclass(repr=False)
class Template(_Record):
    """A planned processing: a saved imagery search over named AOIs that the service
    re-runs daily. Answers ``{"template": T, "searchResults": [...]}`` and a bare ``T``
    are both accepted; ``search_results`` keeps the former's list."""

    id: str | None
    name: str | None = None
    status: TemplateStatus = TemplateStatus.UNKNOWN
    user_id: str | None = None
    project_id: str | None = None
    created: datetime | None = None
    active_until: datetime | None = None
    last_checked: datetime | None = None
    new_images_count: int | None = None
    is_active: bool = False
    is_archived: bool | None = None
    area: float | None = None
    search_params: dict = field(default_factory=dict)
    processing_params: dict = field(default_factory=dict)
    aois: list[TemplateAoi] = field(default_factory=list)
    search_results: list[dict] = field(default_factory=list)
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Template:
        d = _dict(d)
        results = [r for r in _list(_get(d, "searchResults")) if isinstance(r, Mapping)]
        t = _dict(d["template"]) if isinstance(d.get("template"), Mapping) else d
        search = _dict(_get(t, "searchParams"))
        feats = _list(_dict(_get(search, "aoiDetails")).get("features"))
        return cls(
            id=_str(_get(t, "id")),
            name=_str(_get(t, "name")),
            status=TemplateStatus.parse(_get(t, "status")),
            user_id=_str(_get(t, "userId")),
            project_id=_str(_get(t, "projectId")),
            created=parse_datetime(_get(t, "createdAt", "created")),
            active_until=parse_datetime(_get(t, "activeUntil")),
            last_checked=parse_datetime(_get(t, "lastCheckedAt")),
            new_images_count=_int(_get(t, "newImagesCount")),
            is_active=bool(_bool(_get(t, "isActive"))),
            is_archived=_bool(_get(t, "isArchived")),
            area=_float(_get(t, "area")),
            search_params=search,
            processing_params=_dict(_get(t, "processingParams")),
            aois=[TemplateAoi.from_json(f) for f in feats if isinstance(f, Mapping)],
            search_results=results,
            raw=d,
        )


__all__ = [
    "AccountLimits",
    "Aoi",
    "BillingType",
    "Block",
    "CatalogScene",
    "CatalogSearchResult",
    "DataProvider",
    "Image",
    "ImageDownload",
    "Layer",
    "Listing",
    "Memory",
    "Message",
    "Model",
    "Mosaic",
    "Page",
    "Processing",
    "ProcessingStats",
    "Project",
    "ProjectUser",
    "ReviewStatus",
    "Status",
    "Team",
    "Template",
    "TemplateAoi",
    "TemplateStatus",
    "UserStatus",
    "Workflow",
    "normalise_parameters",
    "SCALES",
    "check_scale",
    "from_fraction",
    "parse_datetime",
    "to_fraction",
]
