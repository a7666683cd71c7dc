"""Typed records for Mapflow API objects.

Each record is a pydantic model declared once: its fields, their camelCase wire names
(``projectId`` for ``project_id``, generated) and the other spellings the published
pages use (``AliasChoices``) or nested places (``AliasPath``). ``from_json(dict)`` builds
one. Records are tolerant: a field of the wrong type reads as ``None`` (or its default),
missing fields become ``None`` (or an empty list/dict), and the server's dict is kept
whole in ``.raw`` (its unknown fields in ``.extra``). Reprs never show
``rasterPassword`` (or other secrets). Why pydantic: DESIGN.md, "Typed records".

>>> p = Processing.from_json({"id": "p1", "status": "AWAITING", "percentCompleted": 0})
>>> p.status, p.status.is_terminal
(<Status.AWAITING: 'AWAITING'>, False)
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AliasChoices,
    AliasPath,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from mapflow_geo._secrets import redact
from mapflow_geo.messages import normalise_parameters


# ----------------------------------------------------------------------- lenient values
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


def _is_object(x: Any) -> bool:
    return type(x) is dict or isinstance(x, (Mapping, _Record))


def _mappings(v: Any) -> list:
    """The objects (or records) of a list; anything else in it (or a non-list) is dropped."""
    if not isinstance(v, (list, tuple)):
        return []
    return [x for x in v if _is_object(x)]


def _mapping_or_none(v: Any) -> Any:
    return v if _is_object(v) else None


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


class _Lenient:
    """``Annotated`` marker: the type's own (lax) validation first, in pydantic's core;
    a value it refuses goes to ``fallback`` (a plain function that never raises), so a
    wrong type never fails a record. ``bools=False`` sends booleans to the fallback
    (``True`` is not the number 1 here)."""

    def __init__(self, fallback: Callable[[Any], Any], *, bools: bool = True):
        self.fallback, self.bools = fallback, bools

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        fallback = core_schema.no_info_plain_validator_function(self.fallback)
        choices = [handler(source), fallback]
        if not self.bools:
            choices.insert(
                0, core_schema.chain_schema([core_schema.is_instance_schema(bool), fallback])
            )
        return core_schema.union_schema(choices, mode="left_to_right")


Int = Annotated[int | None, _Lenient(_int, bools=False)]
Float = Annotated[float | None, _Lenient(_float, bools=False)]
Str = Annotated[str | None, _Lenient(_str)]
Bool = Annotated[bool | None, PlainValidator(_bool)]
When = Annotated[datetime | None, PlainValidator(parse_datetime)]
Obj = Annotated[dict, _Lenient(_dict)]
Objs = Annotated[list[dict], BeforeValidator(_mappings)]


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


class _Shown:
    """Repr and ``str`` of every record (secrets hidden, ``raw`` left out), ``to_json``."""

    __slots__ = ()

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            if f.name == "raw":
                continue
            v = getattr(self, f.name)
            if isinstance(v, (dict, list)):
                v = redact(v)
            parts.append(f"{f.name}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    __str__ = __repr__

    def to_json(self) -> Any:
        """The server's object (as received)."""
        raw = getattr(self, "raw", None)
        if isinstance(raw, Mapping):
            return dict(raw)
        return {} if raw is None else raw


#: the key that carries the server's object to the ``raw`` field (no server sends it)
_RAW = "(raw)"
#: the validation context of what ``from_json`` reads (the server's objects)
_SERVER: dict[str, Any] = {"cloud_cover_scale": "percent"}
#: every record reads camelCase keys (generated) and its attribute names
_CONFIG = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    coerce_numbers_to_str=True,
    arbitrary_types_allowed=True,
    revalidate_instances="never",
    defer_build=True,  # schemas are built on a class's first use, not on import
)


def _record(cls: type) -> type:
    """A record class: a pydantic dataclass with the records' config, repr and equality
    (the base's); its declared fields are noted for ``extra``."""
    cls._declared = {
        name: cls.__dict__.get(name)
        for name in cls.__dict__.get("__annotations__", {})
        if not name.startswith("_") and name != "raw"
    }
    return pydantic_dataclass(cls, config=_CONFIG, repr=False, eq=False, slots=True)


@functools.cache
def _wire_keys(cls: type) -> frozenset[str]:
    """The top-level keys a record's fields read: names, camelCase names, aliases, the
    first step of alias paths, and what ``_reshape`` reads (``_reads``)."""
    keys: set[str] = set()
    for klass in cls.__mro__:
        keys.update(klass.__dict__.get("_reads", ()))
        for name, info in klass.__dict__.get("_declared", {}).items():
            keys.update((name, to_camel(name)))
            alias = info.validation_alias if isinstance(info, FieldInfo) else None
            for choice in alias.choices if isinstance(alias, AliasChoices) else [alias]:
                if isinstance(choice, str):
                    keys.add(choice)
                elif isinstance(choice, AliasPath):
                    keys.add(str(choice.path[0]))
    return frozenset(keys)


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


@_record
class _Record(_Shown):
    """Base of the records read from the server (pydantic dataclasses).

    ``raw`` keeps the server's object as received (``to_json()`` gives it back), ``extra``
    its fields no attribute reads; equality ignores ``raw``; the repr hides secrets and
    ``raw``. Built from keywords (``Processing(id=..., status=...)``) a record takes the
    attribute names and keeps ``raw`` as given.
    """

    raw: Any = Field(default_factory=dict, validation_alias=_RAW, repr=False, kw_only=True)

    #: input shapes kept as ``raw`` (any other input reads as ``{}``)
    _raw_shapes: ClassVar[tuple[type, ...]] = (Mapping,)
    _declared: ClassVar[dict[str, Any]]

    @classmethod
    def from_json(cls, d: Any) -> Any:
        """The record for the server's object ``d`` (anything else reads as ``{}``)."""
        return _adapter(cls).validate_python(d, context=_SERVER)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        """The server's object as the fields read it (most records: as it is)."""
        return raw

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is None:  # built from keywords
            return data
        if type(data) is dict:
            raw = data
        elif isinstance(data, Mapping):
            raw = dict(data)
        else:
            raw = data if isinstance(data, cls._raw_shapes) else {}
        return {**cls._reshape(raw), _RAW: raw}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        names = [f.name for f in dataclasses.fields(self) if f.name != "raw"]
        return all(getattr(self, n) == getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]

    @property
    def extra(self) -> dict:
        """The server's fields that no attribute of the record reads."""
        raw = self.raw
        if not isinstance(raw, Mapping):
            return {}
        known = _wire_keys(type(self))
        return {k: v for k, v in raw.items() if k not in known}


# ----------------------------------------------------------------------- records
def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _price(v: Any) -> float:
    return _float(v) or 0.0


def _optional(v: Any) -> bool:
    return True if v is None else bool(_bool(v))


def _true(v: Any) -> bool:
    return bool(_bool(v))


def _none(v: Any) -> None:
    return None


def _get(d: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` that ``d`` holds with a value other than null."""
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


Text = Annotated[str, _Lenient(_text)]
Price = Annotated[float, _Lenient(_price, bools=False)]
Geometry = Annotated[dict | None, _Lenient(_none)]


def _one(record: Any) -> Any:
    """A nested record that may be absent: an object, or ``None`` for anything else."""
    return Annotated[record | None, BeforeValidator(_mapping_or_none)]


def _many(record: Any) -> Any:
    """A list of nested records: the list's objects, anything else dropped."""
    return Annotated[list[record], BeforeValidator(_mappings)]


@_record
class Block(_Record):
    """An optional (or mandatory) step of a workflow, with its price per km²."""

    name: Text = ""
    display_name: Str = None
    description: Str = None
    optional: Annotated[bool, PlainValidator(_optional)] = True
    price: Price = Field(0.0, validation_alias=AliasChoices("price", "priceSqKm", "pricePerSqKm"))


@_record
class Model(_Record):
    """A workflow definition (AI model): ``🏠 Buildings``, ``🌲 Forest``…"""

    id: Str = Field(None, validation_alias=AliasChoices("id", "wdId"))
    name: Text = ""
    description: Str = None
    price_per_sq_km: Price = Field(
        0.0, validation_alias=AliasChoices("pricePerSqKm", "price_per_sq_km", "price")
    )
    blocks: _many(Block) = Field(default_factory=list)
    created: When = None
    updated: When = None

    def block(self, name: str) -> Block | None:
        """The block called ``name`` (or with that display name), case-insensitively."""
        n = name.lower()
        for b in self.blocks:
            if b.name.lower() == n or (b.display_name or "").lower() == n:
                return b
        return None


Workflow = Model


def _prices(price: Any) -> dict[int, float]:
    """``[{zoom, priceSqKm}]``, ``{zoom: price}`` or one number (zoom ``-1``) → {zoom: price}."""
    prices: dict[int, float] = {}
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
    return prices


@_record
class DataProvider(_Record):
    """An imagery provider linked to the account, with prices by zoom (credits/km²)."""

    id: Str = None
    name: Text = Field("", validation_alias=AliasChoices("name", "providerName"))
    display_name: Str = None
    prices: Annotated[dict[int, float], PlainValidator(_prices)] = Field(
        default_factory=dict, validation_alias=AliasChoices("price", "prices")
    )
    min_area_sq_km: Float = None

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


@_record
class Team(_Record):
    id: Str = Field(None, validation_alias=AliasChoices("teamId", "id"))
    name: Str = None
    role: Str = None
    credits_limit: Float = None
    active_until: When = None


DEFAULT_MAX_AOIS_PER_PROCESSING = 10


def _max_aois(v: Any) -> int:
    return _int(v) or DEFAULT_MAX_AOIS_PER_PROCESSING


@_record
class UserStatus(_Record):
    """``GET /user/status``: billing, limits, models and data providers.

    Areas are in m² as the service sends them; ``max_aois_per_processing`` defaults to
    10 when the server omits it.
    """

    email: Str = Field(None, validation_alias=AliasChoices("email", "login"))
    billing_type: Annotated[BillingType | None, PlainValidator(BillingType.parse)] = None
    remaining_credits: Float = Field(
        None, validation_alias=AliasChoices("remainingCredits", "remaining_credits", "credits")
    )
    remaining_area: Int = None
    processed_area: Int = None
    area_limit: Int = None
    memory_limit: Int = None
    max_aois_per_processing: Annotated[int, PlainValidator(_max_aois)] = (
        DEFAULT_MAX_AOIS_PER_PROCESSING
    )
    models: _many(Model) = Field(default_factory=list)
    data_providers: _many(DataProvider) = Field(default_factory=list)
    teams: _many(Team) = Field(default_factory=list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        # the 2026 page nests some of it under "user"
        user = raw.get("user")
        return {**user, **raw} if isinstance(user, Mapping) else raw

    def data_provider(self, name: str) -> DataProvider | None:
        """The provider whose name or display name matches ``name`` (case-insensitive)."""
        n = name.lower()
        for p in self.data_providers:
            if p.name.lower() == n or (p.display_name or "").lower() == n or (p.id or "") == name:
                return p
        return None


@_record
class ProjectUser(_Record):
    """The ``user`` of a project: its owner, carrying the area limits (m²)."""

    id: Str = None
    email: Str = None
    login: Str = None
    role: Str = None
    area_limit: Int = None
    aoi_area_limit: Int = None
    processed_area: Int = None
    is_premium: Bool = None

    @property
    def aoi_area_limit_km2(self) -> float | None:
        return None if self.aoi_area_limit is None else self.aoi_area_limit / 1e6


@_record
class Project(_Record):
    id: Str = None
    name: Str = None
    description: Str = None
    is_default: Bool = None
    status: Annotated[Status | None, PlainValidator(Status.parse)] = Field(
        None, validation_alias=AliasPath("progress", "status")
    )
    percent_completed: Float = Field(
        None, validation_alias=AliasPath("progress", "percentCompleted")
    )
    aoi_count: Int = None
    area: Int = None
    user: _one(ProjectUser) = None
    workflow_defs: _many(Model) = Field(default_factory=list)
    created: When = None
    updated: When = None


@_record
class Layer(_Record):
    id: Str = None
    name: Str = None
    tile_url: Str = None
    tile_json_url: Str = None

    @classmethod
    def from_json(cls, d: Any) -> Layer | None:
        """The layer, or None when ``d`` is not an object."""
        return super().from_json(d) if isinstance(d, Mapping) else None


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


def _messages(v: Any) -> list[Message]:
    return [Message.from_json(m) for m in _list(v)]


@_record
class Processing(_Record):
    """A processing (v1 or v2 shape). Areas in m², ``cost`` in credits."""

    id: Str = None
    name: Str = None
    description: Str = None
    project_id: Str = None
    status: Annotated[Status, PlainValidator(Status.parse)] = Status.UNKNOWN
    # the server's text; keywords name it (``dataclasses.replace`` passes every field)
    status_raw: Str = Field(None, validation_alias=AliasChoices("status_raw", "status"))
    percent_completed: Float = None
    aoi_count: Int = None
    area: Int = None
    aoi_area: Int = None
    cost: Int = None
    messages: Annotated[list[Message], PlainValidator(_messages)] = Field(default_factory=list)
    vector_layer: _one(Layer) = None
    raster_layer: _one(Layer) = None
    workflow_def: _one(Model) = None
    params: Obj = Field(default_factory=dict)
    blocks: Objs = Field(default_factory=list)
    meta: Obj = Field(default_factory=dict)
    review_status: Annotated[ReviewStatus | None, PlainValidator(ReviewStatus.parse)] = None
    rating: Annotated[int | None, PlainValidator(_rating)] = None
    feedback: Str = Field(
        None, validation_alias=AliasChoices(AliasPath("rating", "feedback"), "feedback")
    )
    in_review_until: When = Field(None, validation_alias=AliasPath("reviewStatus", "inReviewUntil"))
    created: When = None
    updated: When = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def model_name(self) -> str | None:
        return self.workflow_def.name if self.workflow_def else None


@_record
class Aoi(_Record):
    """One area of a processing (each polygon of the geometry is one AOI)."""

    id: Str = None
    status: Annotated[Status, PlainValidator(Status.parse)] = Status.UNKNOWN
    percent_completed: Float = None
    area: Int = None
    geometry: Geometry = None
    messages: Annotated[list[Message], PlainValidator(_messages)] = Field(default_factory=list)


@_record
class Image(_Record):
    id: Str = Field(None, validation_alias=AliasChoices("id", "image_id", "imageId"))
    mosaic_id: Str = Field(None, validation_alias=AliasChoices("mosaic_id", "mosaicId"))
    filename: Str = Field(None, validation_alias=AliasChoices("filename", "name"))
    file_size: Int = Field(None, validation_alias=AliasChoices("file_size", "fileSize"))
    uploaded: When = Field(
        None, validation_alias=AliasChoices("uploaded_at", "uploadedAt", "created_at", "created")
    )
    footprint: Any = None
    meta_data: Obj = Field(
        default_factory=dict, validation_alias=AliasChoices("meta_data", "metaData")
    )
    cog_link: Str = Field(
        None, validation_alias=AliasChoices("cog_link", "cogLink", "image_url", "url")
    )
    preview_url_s: Str = Field(None, validation_alias="preview_url_s")
    preview_url_l: Str = Field(None, validation_alias="preview_url_l")


def _tags(v: Any) -> list[str]:
    return [str(t) for t in _list(v)]


@_record
class Mosaic(_Record):
    id: Str = Field(None, validation_alias=AliasChoices("id", "mosaic_id", "mosaicId"))
    name: Str = None
    tags: Annotated[list[str], PlainValidator(_tags)] = Field(default_factory=list)
    image_count: Int = Field(None, validation_alias=AliasChoices("image_count", "imageCount"))
    created: When = Field(None, validation_alias=AliasChoices("created_at", "createdAt", "created"))
    images: _many(Image) = Field(default_factory=list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        # an upload's answer carries one ``image``
        if not _mappings(raw.get("images")) and isinstance(raw.get("image"), Mapping):
            return {**raw, "images": [raw["image"]]}
        return raw


@_record
class Memory(_Record):
    """Data API storage (``GET /rasters/memory``), in bytes.

    Accepts the page's ``used_bytes/limit_bytes/...`` and the service's
    ``memoryLimit/memoryUsed/memoryFree``.

    >>> Memory.from_json({"memoryLimit": 100, "memoryUsed": 25}).free_bytes
    75
    """

    used_bytes: Int = None
    limit_bytes: Int = None
    free_bytes: Int = None

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        gb = 1024**3
        used = _int(_get(raw, "used_bytes", "memoryUsed", "usedBytes"))
        limit = _int(_get(raw, "limit_bytes", "memoryLimit", "limitBytes"))
        free = _int(_get(raw, "free_bytes", "memoryFree", "freeBytes"))
        if used is None and _float(raw.get("used_gb")) is not None:
            used = int(_float(raw["used_gb"]) * gb)
        if limit is None and _float(raw.get("limit_gb")) is not None:
            limit = int(_float(raw["limit_gb"]) * gb)
        if free is None and used is not None and limit is not None:
            free = max(0, limit - used)
        if used is None and free is not None and limit is not None:
            used = max(0, limit - free)
        return {"used_bytes": used, "limit_bytes": limit, "free_bytes": free}

    #: keys read by ``_reshape`` (not by a field's own names)
    _reads: ClassVar[tuple[str, ...]] = (
        "memoryUsed", "usedBytes", "memoryLimit", "limitBytes", "memoryFree", "freeBytes",
        "used_gb", "limit_gb", "usage_percent",
    )  # fmt: skip

    @property
    def usage_percent(self) -> float | None:
        if self.used_bytes is None or not self.limit_bytes:
            return _float(_get(self.raw, "usage_percent"))
        return 100.0 * self.used_bytes / self.limit_bytes


@_record
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

    id: Str = None
    provider_name: Str = Field(
        None, validation_alias=AliasChoices("providerName", "provider_name", "dataProvider")
    )
    product_type: Str = None
    acquisition_date: When = None
    sensor: Str = None
    pixel_resolution: Float = None
    cloud_cover: Float = None
    off_nadir_angle: Float = None
    color_band_order: Str = Field(None, validation_alias="colorBandOrder")
    preview_type: Str = Field(None, validation_alias="previewType")
    preview_url: Str = None
    footprint: Geometry = Field(None, validation_alias=AliasChoices("footprint", "geometry"))
    # the endpoint's (``from_json``'s argument), never read from the server's object
    cloud_cover_scale: str = Field("percent", validation_alias="(scale)", validate_default=True)

    @classmethod
    def from_json(cls, d: Any, *, cloud_cover_scale: str = "percent") -> CatalogScene:
        return _adapter(cls).validate_python(
            d, context={"cloud_cover_scale": check_scale(cloud_cover_scale)}
        )

    @field_validator("cloud_cover_scale", mode="plain")
    @classmethod
    def _scale(cls, v: Any, info: ValidationInfo) -> str:
        return check_scale((info.context or {}).get("cloud_cover_scale", v))

    @property
    def cloud_cover_fraction(self) -> float | None:
        if self.cloud_cover is None:
            return None
        return to_fraction(self.cloud_cover, self.cloud_cover_scale)


@_record
class CatalogSearchResult(_Record):
    """Result of ``POST /catalog/meta`` (or a template's images): the service's
    ``{"images", "total", "limit", "offset"}``, a bare list (2026 page) or
    ``{"images": [...]}`` (older page). Iterable over its scenes; ``cloud_cover_scale``
    is the scale the answer was read on."""

    images: _many(CatalogScene) = Field(
        default_factory=list,
        validation_alias=AliasChoices("images", "results", "items", "features"),
    )
    total: Int = Field(None, validation_alias=AliasChoices("total", "count"))
    limit: Int = None
    offset: Int = None

    _raw_shapes: ClassVar[tuple[type, ...]] = (Mapping, list)

    @classmethod
    def from_json(cls, d: Any, *, cloud_cover_scale: str = "percent") -> CatalogSearchResult:
        return _adapter(cls).validate_python(
            d, context={"cloud_cover_scale": check_scale(cloud_cover_scale)}
        )

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        return {"images": raw} if isinstance(raw, list) else raw

    @model_validator(mode="after")
    def _count(self) -> CatalogSearchResult:
        if self.total is None:
            self.total = len(self.images)
        return self

    def __iter__(self):  # type: ignore[override]
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> CatalogScene:
        return self.images[i]


@_record
class ProcessingStats(_Record):
    """``POST /processings/stats?type=JSON``: history rows and totals."""

    results: Objs = Field(
        default_factory=list, validation_alias=AliasChoices("results", "items", "processings")
    )
    total: Int = None
    count: Int = None
    total_cost: Float = None
    total_area: Int = None

    _raw_shapes: ClassVar[tuple[type, ...]] = (Mapping, list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        if isinstance(raw, list):
            return {"results": raw, "total": len(raw), "count": len(raw)}
        return raw

    def to_dataframe(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.results)


@dataclass(repr=False)
class AccountLimits(_Shown):
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
class Page(_Shown):
    """One page of a paged listing (``{"results", "total", "count"}``).

    ``offset`` is where the page starts, ``limit`` what was asked for, ``total`` the
    service's count at the time of this page (None when unpaged), ``last`` True on the
    final page of a walk. ``reached`` = ``offset + len(items)``."""

    items: list = field(default_factory=list)
    offset: int = 0
    limit: int | None = None
    total: int | None = None
    count: int | None = None
    last: bool = True
    raw: Any = field(default_factory=dict, compare=False)

    @property
    def reached(self) -> int:
        return self.offset + len(self.items)

    @property
    def complete(self) -> bool:
        """The last page of a walk whose offsets reached ``total``."""
        return self.last and (self.total is None or self.reached >= self.total)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@_record
class ImageDownload(_Record):
    """``GET /rasters/image/{id}/download``: a short-lived URL to the original file."""

    download_url: Str = Field(
        None, validation_alias=AliasChoices("download_url", "downloadUrl", "url")
    )
    filename: Str = None
    expires_in: Int = Field(None, validation_alias=AliasChoices("expires_in", "expiresIn"))


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


@_record
class TemplateAoi(_Record):
    """One named area of a template (``searchParams.aoiDetails.features[]``)."""

    id: Str = None
    name: Str = None
    has_new_images: Bool = None
    geometry: Geometry = None
    processings: Objs = Field(default_factory=list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        # a GeoJSON feature: the rest is in its properties
        props = _dict(raw.get("properties"))
        return {
            "id": raw.get("id") or props.get("id"),
            "name": props.get("name") or raw.get("name"),
            "hasNewImages": props.get("hasNewImages"),
            "geometry": raw.get("geometry"),
            "processings": props.get("processings"),
        }

    _reads: ClassVar[tuple[str, ...]] = ("properties",)


@_record
class Template(_Record):
    """A planned processing: a saved imagery search over named AOIs that the service
    re-runs daily. Answers ``{"template": T, "searchResults": [...]}`` and a bare ``T``
    are both accepted; ``search_results`` keeps the former's list."""

    id: Str = None
    name: Str = None
    status: Annotated[TemplateStatus, PlainValidator(TemplateStatus.parse)] = TemplateStatus.UNKNOWN
    user_id: Str = None
    project_id: Str = None
    created: When = Field(None, validation_alias=AliasChoices("createdAt", "created"))
    active_until: When = None
    last_checked: When = Field(None, validation_alias="lastCheckedAt")
    new_images_count: Int = None
    is_active: Annotated[bool, PlainValidator(_true)] = False
    is_archived: Bool = None
    area: Float = None
    search_params: Obj = Field(default_factory=dict)
    processing_params: Obj = Field(default_factory=dict)
    aois: _many(TemplateAoi) = Field(
        default_factory=list, validation_alias=AliasPath("searchParams", "aoiDetails", "features")
    )
    search_results: Objs = Field(default_factory=list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        t = raw.get("template")
        return {**t, "searchResults": raw.get("searchResults")} if isinstance(t, Mapping) else raw

    _reads: ClassVar[tuple[str, ...]] = ("template",)


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
