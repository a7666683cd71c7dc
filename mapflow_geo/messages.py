"""Failed-processing ``messages`` → readable text.

A failed processing carries ``messages: [{"code": ..., "parameters": {...}}]``. The
docs' error table (``data/error_messages.json``, generated from the docs page by
``tools/build_error_messages.py``) maps each code to a template such as
``"Zoom must be not higher than {max_zoom}, got {actual_zoom}"``.

>>> render_message({"code": "source-validator.TooHighZoom",
...                 "parameters": {"max_zoom": "18", "actual_zoom": "20"}})
'Zoom must be not higher than 18, got 20'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HIDDEN_PARAMS = {"level"}  # present on every message, not part of the text


@lru_cache(maxsize=1)
def error_table() -> dict[str, dict[str, Any]]:
    """``{code: {"template": str, "parameters": [str, ...]}}`` from the packaged JSON."""
    text = resources.files("mapflow_geo").joinpath("data/error_messages.json").read_text("utf-8")
    return dict(json.loads(text)["messages"])


@lru_cache(maxsize=1)
def _folded() -> dict[str, str]:
    return {code.casefold(): code for code in error_table()}


def lookup(code: str | None) -> dict[str, Any] | None:
    """The table row for ``code`` (exact, then case-insensitive), or None."""
    if not code:
        return None
    table = error_table()
    if code in table:
        return table[code]
    real = _folded().get(code.casefold())
    return table[real] if real else None


def normalise_parameters(p: Any) -> dict[str, Any]:
    """``{"a": 1}``, ``{"key": "a", "value": 1}`` or ``[{"key": "a", "value": 1}]`` → ``{"a": 1}``."""
    if isinstance(p, Mapping):
        if set(p) == {"key", "value"} and isinstance(p.get("key"), str):
            return {p["key"]: p["value"]}
        return dict(p)
    if isinstance(p, (list, tuple)):
        out: dict[str, Any] = {}
        for item in p:
            if isinstance(item, Mapping) and "key" in item:
                out[str(item["key"])] = item.get("value")
            elif isinstance(item, Mapping):
                out.update(item)
        return out
    return {}


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    try:
        return json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(v)


def _split(message: Any) -> tuple[str | None, dict[str, Any]]:
    if isinstance(message, str):
        return message, {}
    if isinstance(message, Mapping):
        code = message.get("code")
        params = message.get("parameters", message.get("params"))
        return (None if code is None else str(code)), normalise_parameters(params)
    # a record with .code / .parameters (mapflow_geo.models.Message)
    code = getattr(message, "code", None)
    return (None if code is None else str(code)), normalise_parameters(
        getattr(message, "parameters", None)
    )


def render_message(message: Any) -> str:
    """Readable text of one processing message.

    Parameters
    ----------
    message : mapping or Message
        ``{"code": ..., "parameters": {...}}``. ``parameters`` may be a plain dict,
        ``{"key": ..., "value": ...}`` or a list of those; ``params`` is accepted too.

    Returns
    -------
    str
        The template with parameters filled in. Placeholders without a value stay
        visible (``{max_zoom}``). Unknown codes give ``"<code> (k=v, ...)"``.

    Examples
    --------
    >>> render_message({"code": "source-validator.PixelSizeTooHigh",
    ...                 "parameters": {"key": "max_res", "value": "1.2"}})
    'Spatial resolution of you image is too high: pixel size is {actual_res}, maximum allowed pixel size is 1.2'
    >>> render_message({"code": "brand.NewThing", "parameters": {"x": "1"}})
    'brand.NewThing (x=1)'
    """
    code, params = _split(message)
    row = lookup(code)
    shown = {k: v for k, v in params.items() if k not in _HIDDEN_PARAMS}
    if row is None:
        label = code or "unknown error"
        if shown:
            return f"{label} ({', '.join(f'{k}={_fmt(v)}' for k, v in shown.items())})"
        return label

    def fill(m: re.Match) -> str:
        name = m.group(1)
        for key in (name, name + "s", name[:-1] if name.endswith("s") else None):
            if key and key in params:
                return _fmt(params[key])
        return m.group(0)

    return _PLACEHOLDER.sub(fill, row["template"])


def render_messages(messages: Iterable[Any] | None) -> list[str]:
    """:func:`render_message` over a list, dropping exact duplicates (order kept)."""
    out: list[str] = []
    for m in messages or []:
        text = render_message(m)
        if text not in out:
            out.append(text)
    return out


__all__ = ["error_table", "lookup", "render_message", "render_messages"]
