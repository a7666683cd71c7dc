"""JSON types as the service's documentation and Geoalert's clients name them."""

from __future__ import annotations

from collections.abc import Callable

TYPES: dict[str, Callable[[object], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def type_ok(spec: str, v, types: dict = TYPES) -> bool:
    """Whether ``v`` has one of the types of ``spec`` (``"str|null"``)."""
    return any(types[t](v) for t in spec.split("|"))
