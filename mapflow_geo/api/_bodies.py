"""Request bodies and answers: create/cost bodies with their conveniences, cost answers,
optional records, uploads."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from mapflow_geo.exceptions import TransportError

# snake_case conveniences accepted in create/cost bodies
_BODY_KEYS = {
    "project_id": "projectId",
    "wd_name": "wdName",
    "wd_id": "wdId",
    "area_sq_km": "areaSqKm",
    "source_params": "sourceParams",
    "inference_params": "inferenceParams",
}


_R = TypeVar("_R")


def record_or_none(data: Any, parse: Callable[[Mapping[str, Any]], _R]) -> _R | None:
    """The record of an answer that may be empty (``expect="json_optional"``), or None."""
    return parse(data) if isinstance(data, Mapping) else None


def create_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A create/cost body as sent: snake_case keys in camelCase, ``sourceParams``/
    ``inferenceParams``/``source`` moved under ``params``, ``blocks`` as
    ``[{name, enabled}]``, ``meta`` values as strings."""
    out: dict[str, Any] = {}
    for k, v in body.items():
        out[_BODY_KEYS.get(k, k)] = v
    params = dict(out.pop("params", None) or {})
    # allow sourceParams / inferenceParams at top level, or a sources.* builder result
    for key in ("sourceParams", "inferenceParams"):
        if key in out:
            val = out.pop(key)
            if isinstance(val, Mapping) and key in val and len(val) == 1:
                val = val[key]
            params[key] = val
    if "source" in out:
        src = out.pop("source")
        params.update(dict(src))
    if params:
        out["params"] = params
    blocks = out.get("blocks")
    if isinstance(blocks, Mapping):
        out["blocks"] = [{"name": k, "enabled": bool(v)} for k, v in blocks.items()]
    elif isinstance(blocks, (list, tuple)):
        out["blocks"] = [{"name": b, "enabled": True} if isinstance(b, str) else b for b in blocks]
    meta = out.get("meta")
    if isinstance(meta, Mapping):
        out["meta"] = {str(k): (v if isinstance(v, str) else str(v)) for k, v in meta.items()}
    return out


def as_int_cost(value: Any) -> int:
    """A cost answer (a number, or ``{cost}``/``{value}``) as whole credits, rounded up."""
    if isinstance(value, Mapping):
        value = value.get("cost", value.get("value"))
    if isinstance(value, bool) or value is None:
        raise TransportError(f"cost answer is not a number: {value!r}")
    try:
        return int(math.ceil(float(value)))
    except (TypeError, ValueError):
        raise TransportError(f"cost answer is not a number: {str(value)[:80]!r}") from None


def files_of(path_or_bytes: Any, filename: str | None) -> Callable[[], dict]:
    """A ``files=`` factory (re-opened per attempt) for a path, bytes or a file object."""
    if isinstance(path_or_bytes, (str, os.PathLike)):
        path = Path(path_or_bytes)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        name = filename or path.name

        def files() -> dict:
            return {"file": (name, path.open("rb"), "application/octet-stream")}

        return files
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        name = filename or "image.tif"
        return lambda: {"file": (name, data, "application/octet-stream")}
    if hasattr(path_or_bytes, "read"):
        fobj: BinaryIO = path_or_bytes
        name = filename or Path(getattr(fobj, "name", "image.tif")).name
        start = fobj.tell() if hasattr(fobj, "tell") else None

        def files_obj() -> dict:
            if start is not None:
                fobj.seek(start)
            return {"file": (name, fobj, "application/octet-stream")}

        return files_obj
    raise TypeError(
        f"expected a path, bytes or a binary file object, got {type(path_or_bytes).__name__}"
    )
