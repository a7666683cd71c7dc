"""Exceptions and warnings raised by mapflow-geo: every error under :class:`MapflowError`,
every warning under :class:`MapflowWarning`.

The families and what each keeps: DESIGN.md, *Arguments, errors and warnings*.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any


class MapflowError(Exception):
    """Root of every error raised by mapflow-geo."""


# --------------------------------------------------------------------- client side
class ConfigError(MapflowError, ValueError):
    """Missing or unsafe configuration: no token, a plain-http URL to a remote host…"""


class AOIError(MapflowError, ValueError):
    """An input row cannot be used as an area of interest.

    Attributes
    ----------
    row : hashable or None
        The index label of the offending row (None for frame-level problems such as a
        missing CRS).
    problem : str
        What is wrong with it, in words.
    """

    def __init__(self, problem: str, *, row: Any = None) -> None:
        self.row = row
        self.problem = problem
        where = f"row {row!r}: " if row is not None else ""
        super().__init__(f"{where}{problem}")


class AOITypeError(AOIError, TypeError):
    """The input is not something AOIs can be made from (wrong type); also a ``TypeError``."""


class PlanError(MapflowError):
    """The areas cannot be planned under the given limits."""


class ModelNotFoundError(MapflowError, LookupError):
    """A model (workflow) name matched none, or more than one, of the account's models."""

    def __init__(self, message: str, *, available: list[str] | None = None) -> None:
        self.available = list(available or [])
        super().__init__(message)


class BudgetError(MapflowError):
    """A run would cost more than allowed (``max_credits``, remaining credits or area)."""


class ImageryError(MapflowError, ValueError):
    """Imagery cannot be used as asked: an upload breaks a documented Data API rule (same
    CRS, bands and resolution within a mosaic; uint8; band count; pixel size; storage
    quota), or no catalog scene covers the area. ``rule`` names the rule broken."""

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        self.rule = rule
        super().__init__(message)


class RunError(MapflowError):
    """A run cannot start or resume (run dir locked by another process, changed inputs…)."""


# --------------------------------------------------------------------- transport
class TransportError(MapflowError):
    """No usable HTTP answer: connection refused or reset, timeout, unparsable body."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        self.method = method
        self.path = path
        super().__init__(message)


class AmbiguousCreateError(TransportError):
    """A create call whose outcome is unknown: the server may have committed (and
    charged) it. Never retry blindly; reconcile by listing processings and matching
    ``meta`` instead."""

    def __init__(self, message: str, *, method: str = "", path: str = "", meta: dict | None = None):
        self.meta = dict(meta or {})
        super().__init__(message, method=method, path=path)


# --------------------------------------------------------------------- API errors
class APIError(MapflowError):
    """The server answered with an HTTP error.

    Attributes
    ----------
    status : int
        HTTP status code.
    code : str or None
        Mapflow error code (e.g. ``"TOO_LARGE_PROCESSING"``), when the body had one.
    message : str
        The server's message, or the start of the body.
    params : dict
        The server's ``params`` (Mapflow sends them as strings).
    method, path : str
        The request that failed (path only: no host, no query, never a header).
    """

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        code: str | None = None,
        params: dict | None = None,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
        hint: str = "",
    ) -> None:
        self.status = int(status)
        self.code = code
        self.message = message
        self.params = dict(params or {})
        self.method = method
        self.path = path
        self.retry_after = retry_after
        self.hint = hint
        head = f"{method} {path} -> HTTP {self.status}".strip()
        detail = f"{code}: {message}" if code else message
        if hint:  # what the user can do first, then the server's own words
            detail = f"{hint} The server said: {detail}" if detail else hint
        super().__init__(f"{head}: {detail}" if detail else head)

    def __reduce__(self):  # keep attributes through pickling
        return (
            _rebuild_api_error,
            (
                type(self),
                self.status,
                self.message,
                self.code,
                self.params,
                self.method,
                self.path,
                self.retry_after,
                self.hint,
            ),
        )


def _rebuild_api_error(cls, status, message, code, params, method, path, retry_after, hint=""):
    return cls(
        status,
        message,
        code=code,
        params=params,
        method=method,
        path=path,
        retry_after=retry_after,
        hint=hint,
    )


class BadRequestError(APIError):
    """HTTP 400."""


class TooLargeProcessingError(BadRequestError):
    """HTTP 400 with code ``TOO_LARGE_PROCESSING``: the processing exceeds the account's
    area limit (``params['aoiAreaLimit']``, m²)."""


class AuthenticationError(APIError):
    """HTTP 401: the token is missing or wrong; the message says where a token is set
    (``$MAPFLOW_TOKEN`` or ``token=``) and where one comes from, then the server's text."""


class PermissionDeniedError(APIError):
    """HTTP 403: the token's account may not do this (or the token is refused); the
    message says so before the server's text."""


class NotFoundError(APIError):
    """HTTP 404."""


class ConflictError(APIError):
    """HTTP 409."""


class UnprocessableError(APIError):
    """HTTP 422."""


class RateLimitError(APIError):
    """HTTP 429; ``retry_after`` holds the server's ``Retry-After`` in seconds."""


class ServerError(APIError):
    """HTTP 5xx."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitError,
}


def api_error_class(status: int, code: str | None = None) -> type[APIError]:
    """The exception class for an HTTP status (and Mapflow code)."""
    if status == 400 and code == "TOO_LARGE_PROCESSING":
        return TooLargeProcessingError
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)


class RunFailedError(RunError):
    """Some tiles of a run did not succeed. ``result`` holds everything that did (and
    the failed tiles with their readable messages: ``result.failed``)."""

    def __init__(self, message: str, result: Any) -> None:
        self.result = result
        super().__init__(message)


class DamagedResultError(MapflowError):
    """A result body that is not a readable GeoJSON FeatureCollection (cut short,
    malformed JSON, an HTML page, another GeoJSON object). Fetched again with backoff;
    raised when it stayed unreadable: that tile is marked ``DAMAGED_RESULT``, the run goes
    on, and the next run in the same run dir fetches it again.

    Attributes
    ----------
    processing_id, aoi_id : str or None
        Whose result it was (``aoi_id`` None for a whole processing's).
    problem : str
        What was wrong with it.
    """

    def __init__(
        self, problem: str, *, processing_id: str | None = None, aoi_id: str | None = None
    ) -> None:
        self.problem = problem
        self.processing_id = processing_id
        self.aoi_id = aoi_id
        where = ""
        if processing_id is not None:
            where = f"result of processing {processing_id}"
            where += f" (AOI {aoi_id})" if aoi_id is not None else ""
            where += ": "
        super().__init__(f"{where}{problem}")

    def __reduce__(self) -> Any:
        return (
            _rebuild_damaged,
            (self.problem, self.processing_id, self.aoi_id),
        )


def _rebuild_damaged(problem, processing_id, aoi_id):
    return DamagedResultError(problem, processing_id=processing_id, aoi_id=aoi_id)


class FeaturesTooLargeError(MapflowError, MemoryError):
    """A result holds more objects than ``max_features_in_memory`` allows to load into
    one GeoDataFrame (see :class:`mapflow_geo.set_options`); the message says what to use
    instead."""


# ------------------------------------------------------------------------ warnings
class MapflowWarning(UserWarning):
    """Base of every warning mapflow-geo issues; silence them all with
    ``warnings.simplefilter("ignore", MapflowWarning)`` or turn them into errors with
    :func:`strict`."""


class AOIWarning(MapflowWarning):
    """Rows were skipped or dropped while preparing AOIs (the message names them)."""


class AOIRepairWarning(AOIWarning):
    """Invalid geometries (e.g. self-intersecting rings) were repaired: the message names
    each row, the problem and its area as drawn and as repaired (what will be charged).

    Attributes
    ----------
    rows : dict
        Row label → ``(area_km2 as drawn, area_km2 repaired)``.
    """

    def __init__(self, message: str, rows: dict | None = None) -> None:
        self.rows = dict(rows or {})
        super().__init__(message)


class RunIncompleteWarning(MapflowWarning):
    """Issued by ``errors="warn"`` when some tiles of a run did not succeed."""


def warn(message: str | Warning, category: type[Warning] = MapflowWarning) -> None:
    """Issue a warning attributed to the line that called into mapflow-geo: the frame
    just outside the outermost of the package's frames, whichever door (accessor,
    function, CLI) and whatever wrappers lie between."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level, outermost = sys._getframe(1), 2, 1  # stacklevel 1 is this function
    while frame is not None:
        if os.path.abspath(frame.f_code.co_filename).startswith(package):
            outermost = level
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=outermost + 1)


def strict() -> None:
    """Turn every :class:`MapflowWarning` into an error (for this process)."""
    warnings.simplefilter("error", MapflowWarning)


def ignore() -> None:
    """Silence every :class:`MapflowWarning` (for this process)."""
    warnings.simplefilter("ignore", MapflowWarning)


__all__ = [
    "APIError",
    "AOIError",
    "AOITypeError",
    "AmbiguousCreateError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "ConfigError",
    "ConflictError",
    "DamagedResultError",
    "MapflowError",
    "ImageryError",
    "ModelNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlanError",
    "RateLimitError",
    "RunError",
    "RunFailedError",
    "FeaturesTooLargeError",
    "RunIncompleteWarning",
    "MapflowWarning",
    "AOIWarning",
    "AOIRepairWarning",
    "ServerError",
    "TooLargeProcessingError",
    "TransportError",
    "UnprocessableError",
    "api_error_class",
    "ignore",
    "strict",
]
