"""Request, response and error types shared by the API modules, and small helpers."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """An error answer: ``{"code", "message", "params"}`` with an HTTP status."""

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
    #: set by the dispatcher on a 2xx answer of a route marked ``paid_create`` (routes.py)
    committed_create: bool = False


def json_response(obj: Any, status: int = 200, **kw: Any) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), **kw)


def body_json(req: Request, default: Any = None) -> Any:
    """The request's JSON body; ``default`` when it is empty (400 when no default)."""
    if not req.body or not req.body.strip():
        if default is not None:
            return default
        raise ApiError(400, "BAD_REQUEST", "Request body is required")
    try:
        return json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, "BAD_REQUEST", f"Request body is not valid JSON: {e}") from None


def body_object(req: Request, default: Any = None) -> dict:
    """The request's JSON body, which must be an object."""
    body = body_json(req, default)
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "Body must be a JSON object")
    return body


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


def u01(*parts: Any) -> float:
    """A deterministic draw in [0, 1) from ``parts``."""
    h = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def det_uuid(*parts: Any) -> str:
    """A deterministic UUID (version 4 layout) from ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


class DataApiError(ApiError):
    """A Data API (``/rasters``) error: ``{"detail": {"code", "parameters"}}`` (the Data
    API's own envelope; ``detail.message`` is added for humans). ``params`` keep their types."""

    def __init__(self, status: int, code: str, message: str, params: dict | None = None):
        super().__init__(status, code, message, None)
        self.params = dict(params or {})

    def body(self) -> dict:
        return {"detail": {"code": self.code, "parameters": self.params, "message": self.message}}


def base_url(req: Request) -> str:
    """The simulator's own ``/rest`` URL, as the client reached it (``Host`` header)."""
    host = req.headers.get("host") or "127.0.0.1"
    return f"http://{host}/rest"


def page_args(body: dict, default_limit: int) -> tuple[int, int]:
    """``(limit, offset)`` of a paged request (non-negative ints; bad values → 400)."""
    try:
        limit = int(body.get("limit") if body.get("limit") is not None else default_limit)
        offset = int(body.get("offset") or 0)
    except (TypeError, ValueError):
        raise ApiError(400, "BAD_REQUEST", "limit and offset must be integers") from None
    if limit < 0 or offset < 0:
        raise ApiError(400, "BAD_REQUEST", "limit and offset must be non-negative")
    return limit, offset
