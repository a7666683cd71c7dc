"""HTTP transport for the Mapflow API: one session, auth, timeouts, retries, errors.

Private: :class:`mapflow_geo.client.MapflowClient` is the public door, and its API areas
(:mod:`mapflow_geo.api`) share one :class:`Transport`. The policy and the chain of steps
are in DESIGN.md, *Retry and error policy*.
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

from mapflow_geo._args import RULES
from mapflow_geo._defaults import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN
from mapflow_geo._secrets import redact, redact_text, secret_values
from mapflow_geo._version import __version__
from mapflow_geo.exceptions import (
    AmbiguousCreateError,
    APIError,
    ConfigError,
    TransportError,
    api_error_class,
)

logger = logging.getLogger(__name__)

#: Where a user gets an API token (the API docs' "Authentication": profile settings).
TOKEN_PAGE = "https://app.mapflow.ai/account/api"
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

    def __post_init__(self) -> None:
        for name in ("max_retries", "backoff_base", "backoff_max", "max_retry_after", "deadline"):
            RULES[name].check("RetryPolicy", name, getattr(self, name))

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


def token_hint(status: int, source: str) -> str:
    """What a user can do when the service refuses the token (401) or access (403):
    where the token came from, how to set one, where one comes from. Never the token."""
    where = "passed as token=" if source == "argument" else f"read from ${ENV_TOKEN}"
    todo = (
        f"Set ${ENV_TOKEN} or pass token=... (to MapflowClient) with a valid token; "
        f"a token is issued on your Mapflow account page, {TOKEN_PAGE} (see the API "
        "docs, Authentication)."
    )
    if status == 401:
        return f"the Mapflow API refused the token ({where}). {todo}"
    return (
        f"access denied to the account of the token ({where}): it may belong to "
        f"another account or be refused. {todo}"
    )


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
        raise ConfigError(
            f"no Mapflow API token: set ${ENV_TOKEN} or pass token=... (to MapflowClient); "
            f"get a token on your Mapflow account page, {TOKEN_PAGE}"
        )
    if any(c in tok for c in "\r\n"):
        raise ConfigError("the API token contains a line break")
    return tok


class _TokenAuth(requests.auth.AuthBase):
    """Sets ``Authorization`` on each request. The only holder of the token; its repr
    never shows it, and :meth:`secrets` lists every form of it that must stay hidden."""

    __slots__ = ("_secrets", "_value", "scheme")

    def __init__(self, token: str, scheme: str) -> None:
        scheme = scheme.lower()
        secrets = secret_values(token)
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
        self._secrets = tuple(dict.fromkeys((self._value, *secrets)))
        self.scheme = scheme

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._value
        return r

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in text we produce: the header value, the
        token, its decoded ``email:key`` and the key alone
        (:func:`mapflow_geo._secrets.secret_values`)."""
        return self._secrets

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


def _scrub(exc: BaseException, secrets: tuple[str, ...] = ()) -> BaseException:
    """Make a requests exception safe to chain onto ours: drop the prepared request (it
    holds the headers) and the response, and redact the text of every exception in its
    chain (a URL with credentials, an echoed token)."""
    for e in _walk_causes(exc):
        for attr in ("request", "response"):
            if hasattr(e, attr):
                try:
                    setattr(e, attr, None)
                except Exception:  # noqa: BLE001
                    pass
        args = getattr(e, "args", ())
        clean = tuple(redact_text(a, secrets) if isinstance(a, str) else a for a in args)
        try:
            if clean != args:
                e.args = clean
            if isinstance(getattr(e, "url", None), str):
                e.url = redact_text(e.url, secrets)
        except Exception:  # noqa: BLE001 - read-only attributes: nothing more to do
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


def _params_dict(params: Any) -> dict:
    """``{...}``, ``[{"key", "value"}]`` or anything else → a plain dict."""
    if isinstance(params, list):
        params = {
            str(p.get("key")): p.get("value")
            for p in params
            if isinstance(p, Mapping) and "key" in p
        }
    return dict(params) if isinstance(params, Mapping) else {}


def _parse_detail(data: Mapping[str, Any]) -> tuple[str | None, str, dict, bool]:
    """The Data API's ``{"detail": {"code", "parameters"|"params", "message"}}``.

    >>> code, msg, params, _ = _parse_detail({"detail": {"code": "ItemNotFound",
    ...     "parameters": {"instance_type": "image", "uid": "i1"}}})
    >>> code, msg
    ('ItemNotFound', 'ItemNotFound: instance_type=image, uid=i1')
    >>> params
    {'instance_type': 'image', 'uid': 'i1'}
    """
    detail = data["detail"]
    code = detail.get("code")
    code = str(code) if code not in (None, "") else None
    params = detail.get("parameters")
    params = _params_dict(params if params is not None else detail.get("params"))
    msg = detail.get("message", data.get("message"))
    if msg is None:
        listed = ", ".join(f"{k}={v}" for k, v in params.items())
        msg = f"{code}: {listed}" if code and listed else (code or "")
    if not isinstance(msg, str):
        msg = json.dumps(msg, ensure_ascii=False)[:_BODY_SNIPPET]
    return code, msg, params, True


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
    if isinstance(data, dict) and isinstance(data.get("detail"), Mapping):
        return _parse_detail(data)
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
        return code, msg, _params_dict(params), code is not None or "message" in data
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
        self._token_source = "argument" if token is not None else "environment"
        if isinstance(timeout, (int, float)):
            timeout = (float(timeout), float(timeout))
        self.timeout: tuple[float, float] = (float(timeout[0]), float(timeout[1]))
        self.retry = retry or RetryPolicy()
        self._owns_session = session is None
        self._environment: dict[str, Any] | None = None  # read on the first request
        self.session = session if session is not None else requests.Session()
        if user_agent is None:
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

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every form of the token that must never be written (header value, token,
        decoded ``email:key``, the key alone), longest first. Pass it to
        :func:`mapflow_geo._secrets.redact` and friends."""
        return self._auth.secrets()

    def redact_text(self, text: str) -> str:
        """``text`` without the token in any form (nor URL credentials)."""
        return redact_text(text, self.secrets)

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

        Each attempt is :meth:`_send_once`; a same-origin redirect is followed
        (:meth:`_follow_redirect`, not counted as an attempt); a 2xx is decoded
        (:meth:`_decode`); a failure to get an answer goes to :meth:`_retry_or_raise`
        and an error status to :meth:`_raise_for_status`, which either wait for the
        next attempt (:meth:`_next_delay`) or raise.

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
        url = self.base_url + path
        if path.startswith(("http://", "https://")):  # a URL the API handed out
            url, path = self._same_origin(path), urlsplit(path).path
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        call = _Call(
            method=method,
            path=self.redact_text(path),
            url=url,
            params=params,
            json_body=json_body,
            data=data,
            files=files,
            idempotent=idempotent and not create,
            create=create,
            expect=expect,
            meta=dict(meta or {}),
            timeout=timeout or self.timeout,
            deadline_at=self._clock() + self.retry.deadline,
        )
        while True:
            try:
                resp = self._send_once(call)
            except requests.RequestException as exc:
                self._retry_or_raise(call, exc)
                continue
            if self._follow_redirect(call, resp):
                continue
            if 200 <= resp.status_code < 300:
                return self._decode(call, resp)
            self._raise_for_status(call, resp)

    def _same_origin(self, url: str) -> str:
        """``url`` if it is on the API's origin (scheme, host, port), else TransportError:
        the token goes to the configured API only."""
        scheme, host, _ = _origin(url)
        if _origin(url) != _origin(self.base_url):
            raise TransportError(
                self.redact_text(
                    f"refusing to send the token to another origin ({scheme}://{host})"
                ),
                path=urlsplit(url).path,
            )
        return url

    # -- the steps of a call -----------------------------------------------------
    def _send_once(self, call: _Call) -> requests.Response:
        """One attempt; redirects are not followed here (see :meth:`_follow_redirect`).

        Through a session of its own, the environment's settings (proxies, CA bundle)
        are read once, on the first request, as ``httpx.Client`` reads them when it is
        made: requests reads them again for every request, a fifth of its time on a
        small answer. An injected session is used as given (``session.request``)."""
        kwargs = {
            "params": call.params,
            "json": call.json_body,
            "data": call.data,
            "files": call.files() if call.files is not None else None,
            "auth": self._auth,
        }
        if not self._owns_session:
            resp = self.session.request(
                call.method, call.url, timeout=call.timeout, allow_redirects=False, **kwargs
            )
        else:
            prepared = self.session.prepare_request(
                requests.Request(call.method, call.url, **kwargs)
            )
            if self._environment is None:  # every request goes to one origin
                self._environment = self.session.merge_environment_settings(
                    prepared.url, {}, None, None, None
                )
            resp = self.session.send(
                prepared, timeout=call.timeout, allow_redirects=False, **self._environment
            )
        logger.debug(
            "%s %s -> %d (attempt %d)", call.method, call.path, resp.status_code, call.attempt
        )
        return resp

    def _follow_redirect(self, call: _Call, resp: requests.Response) -> bool:
        """Point ``call`` at a redirect's target and return True; False if ``resp`` is
        not a redirect.

        The token and the body (which may hold a ``rasterPassword``) go to the configured
        API only: a redirect to another origin, or too many, raise :class:`TransportError`.
        """
        status = resp.status_code
        if not (300 <= status < 400 and resp.headers.get("Location")):
            return False
        target = urljoin(call.url, resp.headers["Location"])
        resp.close()
        scheme, host, _ = _origin(target)
        if _origin(target) != _origin(self.base_url):
            raise self._transport_error(
                call, f"HTTP {status} redirect to another origin ({scheme}://{host}) refused"
            )
        call.redirects += 1
        if call.redirects > MAX_REDIRECTS:
            raise self._transport_error(call, f"more than {MAX_REDIRECTS} redirects")
        if status in (301, 302, 303) and call.method not in ("GET", "HEAD"):
            call.method, call.json_body, call.data, call.files = "GET", None, None, None
        call.url, call.params = target, None  # the Location carries its own query
        return True

    def _retry_or_raise(self, call: _Call, exc: requests.RequestException) -> None:
        """After no answer: wait for the next attempt, or raise.

        Idempotent calls retry; a create is retried only when the request surely never
        left (connection refused). Otherwise a create raises
        :class:`AmbiguousCreateError` and anything else :class:`TransportError`.
        """
        never_sent = _request_never_sent(exc)
        reason = _describe(exc)
        logger.debug("%s %s failed: %s (attempt %d)", call.method, call.path, reason, call.attempt)
        if call.idempotent or never_sent:
            delay = self._next_delay(call.attempt, None, call.deadline_at)
            if delay is not None:
                self._wait(call, delay, reason)
                return
        if call.create and not never_sent:
            err: TransportError = call.ambiguous(
                f"{reason} after the request was sent; it may have been created (and "
                "charged). Do not resend blindly: list and match on meta.",
                self.secrets,
            )
        else:
            gave_up = f" (gave up after {call.attempt} attempts)" if call.attempt > 1 else ""
            err = self._transport_error(call, reason + gave_up)
        raise err from _scrub(exc, self.secrets)

    def _raise_for_status(self, call: _Call, resp: requests.Response) -> None:
        """After an error status: wait for the next attempt (a retryable status of an
        idempotent call, within the policy), or raise the status's exception."""
        retry_after: float | None = None
        if resp.status_code in self.retry.statuses:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if call.idempotent:
                delay = self._next_delay(call.attempt, retry_after, call.deadline_at)
                if delay is not None:
                    resp.close()
                    self._wait(call, delay, f"HTTP {resp.status_code}")
                    return
        raise self._convert_status(call, resp, retry_after)

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

    def _wait(self, call: _Call, delay: float, reason: str) -> None:
        logger.debug(
            "retrying %s %s after %s: attempt %d/%d, delay %.3fs",
            call.method,
            call.path,
            reason,
            call.attempt + 1,
            self.retry.max_retries + 1,
            delay,
        )
        self._sleep(delay)
        call.attempt += 1

    # -- answers → values or exceptions -------------------------------------------
    def _transport_error(self, call: _Call, problem: str) -> TransportError:
        return TransportError(
            self.redact_text(f"{call.method} {call.path}: {problem}"),
            method=call.method,
            path=call.path,
        )

    def _convert_status(
        self, call: _Call, resp: requests.Response, retry_after: float | None
    ) -> APIError | TransportError:
        """The exception for an error status: one class per status (and Mapflow code),
        keeping the server's message and params (redacted); a create's unreadable
        gateway 502/504 is ambiguous."""
        status = resp.status_code
        code, message, params, is_mapflow = _parse_error_body(resp)
        secrets = self.secrets
        message = redact_text(message, secrets)
        if call.create and status in _AMBIGUOUS_CREATE_STATUSES and not is_mapflow:
            return call.ambiguous(
                f"HTTP {status} from a gateway ({message or resp.reason}); the create may "
                "have reached the service and been charged. Do not resend blindly: list "
                "and match on meta.",
                secrets,
            )
        return api_error_class(status, code)(
            status,
            message,
            code=redact_text(code, secrets) if code is not None else None,
            params=redact(params, secrets),
            method=call.method,
            path=call.path,
            retry_after=retry_after,
            hint=token_hint(status, self._token_source) if status in (401, 403) else "",
        )

    def _decode(self, call: _Call, resp: requests.Response) -> Any:
        """A 2xx body as ``call.expect`` asks; an unusable one raises (ambiguously for a
        create: it may have succeeded)."""
        expect = call.expect
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
        if call.create:
            raise call.ambiguous(
                f"HTTP {resp.status_code}: {problem}; the create may have succeeded (and been "
                "charged).",
                self.secrets,
                head=" ->",
            )
        raise TransportError(
            self.redact_text(f"{call.method} {call.path} -> HTTP {resp.status_code}: {problem}"),
            method=call.method,
            path=call.path,
        )


@dataclass
class _Call:
    """One API call's state across its attempts and redirects. ``path`` is as shown in
    logs and errors (redacted); ``url`` is what is sent."""

    method: str
    path: str
    url: str
    params: Any
    json_body: Any
    data: Any
    files: Callable[[], dict] | None
    idempotent: bool
    create: bool
    expect: str
    meta: dict
    timeout: tuple[float, float]
    deadline_at: float
    attempt: int = 1
    redirects: int = 0

    def ambiguous(
        self, problem: str, secrets: tuple[str, ...], *, head: str = ":"
    ) -> AmbiguousCreateError:
        """An :class:`AmbiguousCreateError` for this create, ``meta`` attached."""
        return AmbiguousCreateError(
            redact_text(f"{self.method} {self.path}{head} {problem}", secrets),
            method=self.method,
            path=self.path,
            meta=dict(self.meta),
        )


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
    "token_hint",
]
