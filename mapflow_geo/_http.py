"""HTTP transport for the Mapflow API: one session, auth, timeouts, retries, errors.

This module is private; :class:`mapflow_geo.client.MapflowClient` is the public door.
The policy is written down in ``DESIGN.md`` ("Retry and error policy"):

* every request carries a ``(connect, read)`` timeout;
* idempotent calls retry with full-jitter exponential backoff on connection errors,
  timeouts, 429 (``Retry-After`` honoured, clamped) and 500/502/503/504, within a bounded
  number of attempts and a total deadline;
* creates are sent once; only a refused connection (the request never left) is retried.
  A timeout, reset or unreadable answer after sending raises
  :class:`~mapflow_geo.exceptions.AmbiguousCreateError`;
* HTTP errors become one exception class per status keeping Mapflow's
  ``code``/``message``/``params``;
* the token lives in a private auth object; nothing logged, repr'd or raised is built
  from request headers.

Collaborators (``session``, ``sleep``, ``clock``, ``random``) are injectable so tests
need no monkeypatching.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import logging
import math
import os
import random as _random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3.exceptions

from mapflow_geo.exceptions import (
    AmbiguousCreateError,
    APIError,
    ConfigError,
    TransportError,
    api_error_class,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mapflow.ai/rest"
ENV_TOKEN = "MAPFLOW_TOKEN"
ENV_BASE_URL = "MAPFLOW_API_URL"
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)
#: Retried for idempotent calls only (creates are never re-sent). 500 is included: an
#: idempotent read or write is safe to repeat, and one transient 500 among the hundreds
#: of cost/list/result calls of a large run must not abort it.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_AMBIGUOUS_CREATE_STATUSES = frozenset({502, 504})  # a gateway gave up; upstream may have committed
_BODY_SNIPPET = 300
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


# --------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent calls are retried.

    Parameters
    ----------
    max_retries : int
        Retries after the first attempt (so at most ``max_retries + 1`` attempts).
    backoff_base, backoff_max : float
        Full-jitter backoff: before retry *n* (1-based) sleep
        ``uniform(0, min(backoff_max, backoff_base * 2**(n-1)))`` seconds.
    max_retry_after : float
        Upper clamp for a server's ``Retry-After``.
    deadline : float
        Total seconds a call may spend, sleeps included; no retry starts past it.
    statuses : frozenset of int
        HTTP statuses that are retried.

    Examples
    --------
    >>> RetryPolicy(max_retries=2, backoff_base=0.01).max_retries
    2
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 60.0
    deadline: float = 300.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def backoff(self, retry_number: int, rand: Callable[[], float]) -> float:
        """Full-jitter delay before retry number ``retry_number`` (1-based)."""
        exp = min(self.backoff_max, self.backoff_base * (2 ** max(0, retry_number - 1)))
        return max(0.0, rand() * exp)


# --------------------------------------------------------------------------- config
_TRUTHY_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost", "ip6-loopback"}


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (judged on the parsed hostname).

    Examples
    --------
    >>> is_loopback_host("127.0.0.5"), is_loopback_host("evil.example")
    (True, False)
    """
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in _TRUTHY_LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(base_url: str | None = None) -> str:
    """The API base URL: argument, else ``$MAPFLOW_API_URL``, else the public service.

    Plain ``http://`` is refused unless the parsed hostname is loopback; URLs carrying
    credentials (``user:pass@``) are refused outright.

    Raises
    ------
    ConfigError
        For an unsafe or malformed URL.

    Examples
    --------
    >>> resolve_base_url("http://127.0.0.1:8080/rest/")
    'http://127.0.0.1:8080/rest'
    >>> resolve_base_url("http://localhost@evil.example/rest")
    Traceback (most recent call last):
    ...
    mapflow_geo.exceptions.ConfigError: base URL must not contain user information (user@host)
    """
    url = base_url if base_url else os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"malformed base URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"base URL scheme must be https (or http to loopback), got {parts.scheme!r}"
        )
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise ConfigError("base URL must not contain user information (user@host)")
    if not host:
        raise ConfigError("base URL has no host")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"refusing plain http to non-loopback host {host!r}: the token would travel "
            "in clear text; use https"
        )
    if parts.query or parts.fragment:
        raise ConfigError("base URL must not have a query or fragment")
    return url.rstrip("/")


def resolve_token(token: str | None = None) -> str:
    """The API token: argument, else ``$MAPFLOW_TOKEN``.

    Raises
    ------
    ConfigError
        When neither is set (the message never contains a token).
    """
    tok = token if token is not None else os.environ.get(ENV_TOKEN, "")
    tok = (tok or "").strip()
    if not tok:
        raise ConfigError(f"no Mapflow API token: pass token=... or set ${ENV_TOKEN}")
    if any(c in tok for c in "\r\n"):
        raise ConfigError("the API token contains a line break")
    return tok


class _TokenAuth(requests.auth.AuthBase):
    """Sets ``Authorization`` on each request. Holds the header value privately; its
    repr never shows it."""

    __slots__ = ("_value", "scheme")

    def __init__(self, token: str, scheme: str) -> None:
        scheme = scheme.lower()
        if scheme == "basic":
            # Mapflow tokens are base64("email:apikey"). A raw "email:apikey" (a colon can
            # never occur in base64) is encoded for the user.
            if ":" in token:
                token = base64.b64encode(token.encode("utf-8")).decode("ascii")
            self._value = f"Basic {token}"
        elif scheme == "bearer":
            self._value = f"Bearer {token}"
        else:
            raise ConfigError(f"auth must be 'basic' or 'bearer', got {scheme!r}")
        self.scheme = scheme

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._value
        return r

    def secrets(self) -> list[str]:
        """Strings that must never appear in text we produce."""
        tok = self._value.split(" ", 1)[1]
        out = [tok]
        try:
            decoded = base64.b64decode(tok, validate=True).decode("utf-8")
            if decoded:
                out.append(decoded)
        except Exception:  # noqa: BLE001 - not base64: nothing more to hide
            pass
        return [s for s in out if len(s) >= 4]

    def __repr__(self) -> str:
        return f"<{self.scheme} auth: token redacted>"

    __str__ = __repr__

    def __reduce__(self):  # never pickle the secret by accident
        raise TypeError("the API auth object cannot be pickled")


# --------------------------------------------------------------------------- helpers
def quote_path(value: Any) -> str:
    """Quote one path segment (an id) so it cannot add segments or a query."""
    return quote(str(value), safe="")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), or None.

    Examples
    --------
    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(secs) or math.isinf(secs):
        return None
    return max(0.0, secs)


def _walk_causes(exc: BaseException):
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            nxt = getattr(e, attr, None)
            if isinstance(nxt, BaseException):
                stack.append(nxt)


def _request_never_sent(exc: requests.RequestException) -> bool:
    """True when the request surely did not leave: connection refused, DNS failure,
    connect timeout. Anything else after the connection opened may have been received."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    for e in _walk_causes(exc):
        if isinstance(e, urllib3.exceptions.NewConnectionError):  # refused / DNS
            return True
        if isinstance(e, ConnectionRefusedError):
            return True
    return False


def _describe(exc: BaseException) -> str:
    """A short, token-free description of a transport failure."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timeout"
    for e in _walk_causes(exc):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, urllib3.exceptions.NameResolutionError):
            return "name resolution failed"
        if isinstance(e, urllib3.exceptions.NewConnectionError):
            return "connection refused" if "refused" in str(e).lower() else "connection failed"
        if isinstance(e, ConnectionResetError):
            return "connection reset"
        if isinstance(e, urllib3.exceptions.IncompleteRead):
            return "incomplete response body"
        if type(e).__name__ == "RemoteDisconnected":
            return "server closed the connection without a response"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "response body broken off"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    return type(exc).__name__


def _scrub(exc: BaseException) -> BaseException:
    """Drop the prepared request (which holds headers) from a requests exception before
    it is chained onto ours."""
    for e in _walk_causes(exc):
        for attr in ("request", "response"):
            if hasattr(e, attr):
                try:
                    setattr(e, attr, None)
                except Exception:  # noqa: BLE001
                    pass
    return exc


def _charset(resp: requests.Response) -> str:
    """The declared charset, else UTF-8 (not requests' ISO-8859-1 default for text/*)."""
    m = re.search(r"charset=([\w.:-]+)", resp.headers.get("Content-Type", ""), re.I)
    if m:
        try:
            import codecs

            return codecs.lookup(m.group(1)).name
        except LookupError:
            pass
    return "utf-8"


_TAG_RE = re.compile(r"<[^>]+>")
_WS_RE = re.compile(r"\s+")


def _snippet(text: str) -> str:
    text = _WS_RE.sub(" ", _TAG_RE.sub(" ", text)).strip()
    return text[:_BODY_SNIPPET] + ("…" if len(text) > _BODY_SNIPPET else "")


def _parse_error_body(resp: requests.Response) -> tuple[str | None, str, dict, bool]:
    """(code, message, params, is_mapflow_error) from an error response body."""
    try:
        text = (resp.content or b"").decode(_charset(resp), errors="replace")
    except (LookupError, Exception):  # noqa: BLE001 - unknown charset or unreadable body
        text = ""
    data: Any = None
    if text.strip():
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if isinstance(data, dict):
        code = data.get("code")
        code = str(code) if code not in (None, "") else None
        msg = data.get("message")
        if msg is None:
            msg = data.get("error_description") or data.get("detail") or data.get("error") or ""
        if not isinstance(msg, str):
            msg = json.dumps(msg, ensure_ascii=False)[:_BODY_SNIPPET]
        params = data.get("params")
        if params is None:
            params = data.get("parameters")
        if isinstance(params, list):  # [{"key":..,"value":..}]
            params = {
                str(p.get("key")): p.get("value")
                for p in params
                if isinstance(p, Mapping) and "key" in p
            }
        if not isinstance(params, Mapping):
            params = {}
        return code, msg, dict(params), code is not None or "message" in data
    return None, _snippet(text) or (resp.reason or ""), {}, False


# --------------------------------------------------------------------------- transport
class Transport:
    """One ``requests.Session`` talking to the Mapflow REST API.

    Parameters
    ----------
    token : str, optional
        API token (base64 of ``email:apikey``; a raw ``email:apikey`` is encoded). Falls
        back to ``$MAPFLOW_TOKEN``.
    base_url : str, optional
        Falls back to ``$MAPFLOW_API_URL``, then ``https://api.mapflow.ai/rest``.
    auth : {"basic", "bearer"}
        Authorization scheme. Geoalert's own clients send Basic.
    timeout : float or (float, float)
        ``(connect, read)`` timeout in seconds applied to every request.
    retry : RetryPolicy, optional
    session : requests.Session, optional
        Injected session (closed by :meth:`close` only if we created it).
    sleep, clock, random : callables
        ``time.sleep``, ``time.monotonic`` and ``random.random`` by default.

    Examples
    --------
    >>> t = Transport("abc", base_url="http://127.0.0.1:9/rest")
    >>> t
    Transport(base_url='http://127.0.0.1:9/rest', auth='basic')
    >>> t.close()
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        auth: str = "basic",
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        user_agent: str | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self._auth = _TokenAuth(resolve_token(token), auth)
        if isinstance(timeout, (int, float)):
            timeout = (float(timeout), float(timeout))
        self.timeout: tuple[float, float] = (float(timeout[0]), float(timeout[1]))
        self.retry = retry or RetryPolicy()
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        if user_agent is None:
            from mapflow_geo import __version__

            user_agent = f"mapflow-geo/{__version__} python-requests/{requests.__version__}"
        self.session.headers.setdefault("User-Agent", user_agent)
        self.session.headers["User-Agent"] = user_agent
        self._sleep = sleep
        self._clock = clock
        self._random = random

    # -- public helpers ----------------------------------------------------------
    @property
    def auth_scheme(self) -> str:
        return self._auth.scheme

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, auth={self.auth_scheme!r})"

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __getstate__(self):
        raise TypeError("Transport cannot be pickled (it holds the API token)")

    def redact_text(self, text: str) -> str:
        """Replace the token (and its decoded form) in ``text``."""
        for s in self._auth.secrets():
            text = text.replace(s, "***")
        return text

    # -- the one entry point -----------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
        files: Callable[[], dict] | None = None,
        data: Any = None,
        idempotent: bool | None = None,
        create: bool = False,
        expect: str = "json",
        meta: Mapping[str, Any] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> Any:
        """Send one API call under the retry policy and decode the answer.

        Parameters
        ----------
        method, path : str
            HTTP method and path below the base URL (ids already quoted).
        params : mapping, optional
            Query parameters.
        json_body : any, optional
            JSON body.
        files : callable, optional
            Returns a fresh ``files=`` mapping for ``requests`` (called per attempt, so
            file objects are re-opened on a retry).
        idempotent : bool, optional
            Retry on transient failures. Default: GET/PUT/DELETE/HEAD yes, POST no.
        create : bool
            A non-idempotent create: outcome-unknown failures raise
            :class:`AmbiguousCreateError`.
        expect : {"json", "json_optional", "text", "bytes", "none"}
            How to decode a 2xx body. ``"json"`` requires JSON (else
            :class:`TransportError`); ``"json_optional"`` returns None for an empty body
            and the text for a non-JSON one.
        meta : mapping, optional
            The create's ``meta``, copied onto an :class:`AmbiguousCreateError`.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        if create:
            idempotent = False
        url = self.base_url + path
        policy = self.retry
        start = self._clock()
        deadline_at = start + policy.deadline
        attempt = 0
        redirects = 0
        while True:
            attempt += 1
            reason: str
            retry_after: float | None = None
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    files=files() if files is not None else None,
                    auth=self._auth,
                    timeout=timeout or self.timeout,
                    allow_redirects=False,  # followed below, same origin only
                )
            except requests.RequestException as exc:
                never_sent = _request_never_sent(exc)
                reason = _describe(exc)
                logger.debug("%s %s failed: %s (attempt %d)", method, path, reason, attempt)
                if idempotent or never_sent:
                    delay = self._next_delay(attempt, None, deadline_at)
                    if delay is not None:
                        self._log_retry(method, path, attempt, delay, reason)
                        self._sleep(delay)
                        continue
                err_cls = AmbiguousCreateError if (create and not never_sent) else TransportError
                msg = f"{method} {path}: {reason}"
                if err_cls is AmbiguousCreateError:
                    msg += (
                        " after the request was sent; it may have been created (and "
                        "charged). Do not resend blindly: list and match on meta."
                    )
                elif attempt > 1:
                    msg += f" (gave up after {attempt} attempts)"
                if err_cls is AmbiguousCreateError:
                    raise AmbiguousCreateError(
                        self.redact_text(msg), method=method, path=path, meta=dict(meta or {})
                    ) from _scrub(exc)
                raise TransportError(self.redact_text(msg), method=method, path=path) from _scrub(
                    exc
                )

            status = resp.status_code
            logger.debug("%s %s -> %d (attempt %d)", method, path, status, attempt)

            if 300 <= status < 400 and resp.headers.get("Location"):
                target = urljoin(url, resp.headers["Location"])
                resp.close()
                if _origin(target) != _origin(self.base_url):
                    # The token and the body (which may hold a rasterPassword) are sent to
                    # the configured API only: never follow a redirect elsewhere.
                    raise TransportError(
                        f"{method} {path}: HTTP {status} redirect to another origin "
                        f"({_origin(target)[0]}://{_origin(target)[1]}) refused",
                        method=method,
                        path=path,
                    )
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise TransportError(
                        f"{method} {path}: more than {MAX_REDIRECTS} redirects",
                        method=method,
                        path=path,
                    )
                if status in (301, 302, 303) and method not in ("GET", "HEAD"):
                    method, json_body, data, files = "GET", None, None, None
                url, params = target, None  # the Location carries its own query
                attempt -= 1  # a redirect is not a retry
                continue

            if 200 <= status < 300:
                return self._decode(resp, method, path, expect, create, meta)

            if status in policy.statuses:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                if idempotent:
                    delay = self._next_delay(attempt, retry_after, deadline_at)
                    if delay is not None:
                        resp.close()
                        self._log_retry(method, path, attempt, delay, f"HTTP {status}")
                        self._sleep(delay)
                        continue
            raise self._api_error(
                resp, method, path, create=create, meta=meta, retry_after=retry_after
            )

    # -- internals ---------------------------------------------------------------
    def _next_delay(
        self, attempt: int, retry_after: float | None, deadline_at: float
    ) -> float | None:
        """Delay before the next attempt, or None when attempts or time are used up."""
        policy = self.retry
        if attempt > policy.max_retries:
            return None
        if retry_after is not None:
            delay = min(retry_after, policy.max_retry_after)
        else:
            delay = policy.backoff(attempt, self._random)
        if self._clock() + delay > deadline_at:
            return None
        return delay

    def _log_retry(self, method: str, path: str, attempt: int, delay: float, reason: str) -> None:
        logger.debug(
            "retrying %s %s after %s: attempt %d/%d, delay %.3fs",
            method,
            path,
            reason,
            attempt + 1,
            self.retry.max_retries + 1,
            delay,
        )

    def _api_error(
        self,
        resp: requests.Response,
        method: str,
        path: str,
        *,
        create: bool,
        meta: Mapping[str, Any] | None,
        retry_after: float | None,
    ) -> MapflowError_:
        status = resp.status_code
        code, message, params, is_mapflow = _parse_error_body(resp)
        message = self.redact_text(message)
        params = {k: (self.redact_text(v) if isinstance(v, str) else v) for k, v in params.items()}
        if create and status in _AMBIGUOUS_CREATE_STATUSES and not is_mapflow:
            return AmbiguousCreateError(
                f"{method} {path}: HTTP {status} from a gateway ({message or resp.reason}); the "
                "create may have reached the service and been charged. Do not resend "
                "blindly: list and match on meta.",
                method=method,
                path=path,
                meta=dict(meta or {}),
            )
        cls = api_error_class(status, code)
        return cls(
            status,
            message,
            code=code,
            params=params,
            method=method,
            path=path,
            retry_after=retry_after,
        )

    def _decode(
        self,
        resp: requests.Response,
        method: str,
        path: str,
        expect: str,
        create: bool,
        meta: Mapping[str, Any] | None,
    ) -> Any:
        if expect == "bytes":
            return resp.content
        if expect == "none":
            return None
        if expect == "text":
            return (resp.content or b"").decode(_charset(resp), errors="replace")
        raw = resp.content or b""
        if not raw.strip():
            if expect == "json_optional":
                return None
            problem = "empty body where JSON was expected"
        else:
            try:
                return json.loads(raw)  # bytes: UTF-8/16/32 detected, no charset sniffing
            except ValueError:  # includes UnicodeDecodeError
                text = raw.decode("utf-8", errors="replace")
                if expect == "json_optional":
                    return text
                problem = f"body is not JSON: {_snippet(text)[:80]!r}"
        msg = f"{method} {path} -> HTTP {resp.status_code}: {problem}"
        if create:
            raise AmbiguousCreateError(
                self.redact_text(msg + "; the create may have succeeded (and been charged)."),
                method=method,
                path=path,
                meta=dict(meta or {}),
            )
        raise TransportError(self.redact_text(msg), method=method, path=path)


MapflowError_ = APIError | TransportError  # return type of _api_error

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "ENV_BASE_URL",
    "ENV_TOKEN",
    "RetryPolicy",
    "Transport",
    "is_loopback_host",
    "parse_retry_after",
    "quote_path",
    "resolve_base_url",
    "resolve_token",
]
