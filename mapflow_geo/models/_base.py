"""How a record reads values: lenient types (a wrong type never fails a record), the
cloud-cover scales, and the record base (a pydantic dataclass keeping the server's
object). DESIGN.md, "Typed records"."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
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
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from mapflow_geo._secrets import redact


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


# ----------------------------------------------------------------------- record fields
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
