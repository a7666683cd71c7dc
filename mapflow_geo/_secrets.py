"""Everything that must never be written, and the one way to hide it.

Every writer (exception text, log lines, reprs, the journal, run files, saved maps) hides
secrets through :func:`secret_values`, :func:`is_secret_key`, :func:`redact_url` and
:func:`redact`; what counts as a secret is in DESIGN.md, *Retry and error policy*. Like
``exceptions.py``, this module imports nothing of the package.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

REDACTED = "***"

#: Shorter strings are not treated as secrets (hiding ``"a"`` everywhere hides nothing).
MIN_SECRET_LENGTH = 4

#: Field and parameter names whose values are credentials, in normalised form (lower
#: case, without ``-`` and ``_``): a JSON body's ``rasterPassword``, a header's
#: ``Authorization``, a URL's ``?access_token=``.
SECRET_NAMES = frozenset(
    {
        "auth",
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "password",
        "passwd",
        "pwd",
        "rasterpassword",
        "secret",
        "clientsecret",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "apikey",
        "apitoken",
        "signature",
        "credential",
        "credentials",
    }
)
#: A name containing one of these words is a credential name too (``mapboxAccessToken``,
#: ``X-Amz-Signature``, ``X-Amz-Security-Token``, ``db_password``).
SECRET_WORDS = ("password", "passwd", "secret", "token", "apikey", "signature", "credential")
#: Names that are credentials only as URL query parameters (``?key=`` of tile and map
#: services, ``?sig=`` of signed URLs). In a JSON body ``key`` is an ordinary name (the
#: ``{"key": ..., "value": ...}`` pairs of Mapflow's ``messages``), so it is not hidden.
QUERY_SECRET_NAMES = frozenset({"key", "sig"})


def _normalise(name: str) -> str:
    return name.replace("-", "").replace("_", "").replace(".", "").lower()


def is_secret_key(name: Any, *, query: bool = False) -> bool:
    """True for a field or parameter name whose value must never be shown.

    Parameters
    ----------
    name : any
        A dict key or a URL query parameter name; non-strings are never secret names.
    query : bool, default False
        Judge ``name`` as a URL query parameter, where ``key`` and ``sig`` are
        credentials too.

    Examples
    --------
    >>> is_secret_key("rasterPassword"), is_secret_key("X-Amz-Signature")
    (True, True)
    >>> is_secret_key("rasterLogin"), is_secret_key("key"), is_secret_key("key", query=True)
    (False, False, True)
    """
    if not isinstance(name, str):
        return False
    n = _normalise(name)
    if n in SECRET_NAMES or any(w in n for w in SECRET_WORDS):
        return True
    return query and n in QUERY_SECRET_NAMES


def _decode_basic(token: str) -> str | None:
    """``email:key`` from a base64 token, or None when it is not one."""
    try:
        raw = base64.b64decode(token, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if ":" in text else None


def secret_values(token: str | None) -> tuple[str, ...]:
    """Every string that gives away ``token``, longest first.

    The token as given; for a Basic token, its base64 form, the decoded ``email:key``
    and the key alone (the email is not a secret); ``Basic <token>``; and the URL-quoted
    spelling of each (base64 has ``+``, ``/`` and ``=``). Strings shorter than
    :data:`MIN_SECRET_LENGTH` are left out.

    Examples
    --------
    >>> for s in secret_values("bWVAeC5vcmc6c2VjcmV0LWtleQ=="):
    ...     print(s)
    Basic bWVAeC5vcmc6c2VjcmV0LWtleQ==
    bWVAeC5vcmc6c2VjcmV0LWtleQ%3D%3D
    bWVAeC5vcmc6c2VjcmV0LWtleQ==
    me%40x.org%3Asecret-key
    me@x.org:secret-key
    secret-key
    >>> secret_values(None)
    ()
    """
    token = (token or "").strip()
    if not token:
        return ()
    forms = [token]
    if ":" in token:  # a raw "email:key": the header carries its base64
        decoded: str | None = token
        forms.append(base64.b64encode(token.encode("utf-8")).decode("ascii"))
    else:
        decoded = _decode_basic(token)
    if decoded is not None:
        forms += [decoded, decoded.split(":", 1)[1]]
    basic = [f"Basic {f}" for f in forms[:2] if f != decoded]
    forms += [quote(f, safe="") for f in forms] + basic
    unique = {f for f in forms if len(f) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=lambda s: (-len(s), s)))


def _secrets_tuple(secrets: Iterable[str]) -> tuple[str, ...]:
    if isinstance(secrets, str):
        secrets = (secrets,)
    unique = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=lambda s: (-len(s), s)))


def _replace_all(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:  # longest first: "email:key" goes whole, not as "email:***"
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def _clean_pairs(text: str, sep: str, drop: bool) -> str:
    """``a=1&token=x`` → ``a=1&token=***`` (or ``a=1`` with ``drop``); other pairs are kept
    byte for byte (tile templates such as ``{z}`` stay as written)."""
    out = []
    for pair in text.split(sep):
        name, eq, _ = pair.partition("=")
        if is_secret_key(unquote_plus(name), query=True):
            if drop:
                continue
            pair = f"{name}{eq or '='}{REDACTED}"
        out.append(pair)
    return sep.join(out)


def redact_url(url: str, secrets: Iterable[str] = (), *, drop: bool = False) -> str:
    """``url`` without user information, credential query parameters or any of
    ``secrets``.

    Parameters
    ----------
    url : str
    secrets : iterable of str
        Strings to hide wherever they occur (:func:`secret_values`).
    drop : bool, default False
        Remove the user information and credential parameters (for a URL that will be
        used, e.g. a map's tile layer) instead of replacing their values with ``***``
        (for text that is read).

    Examples
    --------
    >>> redact_url("https://u:p@t.example/{z}/{x}/{y}.png?access_token=abc&style=x")
    'https://***@t.example/{z}/{x}/{y}.png?access_token=***&style=x'
    >>> redact_url("https://u:p@t.example/{z}/{x}/{y}.png?key=abc&uri=s3://b/k", drop=True)
    'https://t.example/{z}/{x}/{y}.png?uri=s3://b/k'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _replace_all(url, _secrets_tuple(secrets))
    netloc, query, fragment = parts.netloc, parts.query, parts.fragment
    if "@" in netloc:
        host = netloc.rsplit("@", 1)[1]
        netloc = host if drop else f"{REDACTED}@{host}"
    if query:
        query = _clean_pairs(query, "&", drop)
    if "=" in fragment:  # OAuth implicit grants put access_token in the fragment
        fragment = _clean_pairs(fragment, "&", drop)
    if (netloc, query, fragment) != (parts.netloc, parts.query, parts.fragment):
        url = urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    return _replace_all(url, _secrets_tuple(secrets))


_URL_RE = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>`]+""")
#: ``Basic <credentials>`` / ``Bearer <token>`` as an echoed header shows them (a value
#: with a digit or base64 padding, so prose such as "Basic authentication" is kept).
_AUTH_HEADER_RE = re.compile(
    r"\b(Basic|Bearer)\s+(?=[A-Za-z0-9+/=._~-]*[0-9+/=])[A-Za-z0-9+/=._~-]{12,}", re.I
)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret replaced by ``***``, every URL in it cleaned
    (:func:`redact_url`) and any ``Basic``/``Bearer`` credential hidden.

    Examples
    --------
    >>> redact_text("echo: Basic dXNlcjpwYXNz from https://me:pw@h.example/x?token=t",
    ...             ["dXNlcjpwYXNz"])
    'echo: Basic *** from https://***@h.example/x?token=***'
    """
    if not isinstance(text, str):
        return text
    secrets = _secrets_tuple(secrets)
    text = _replace_all(text, secrets)
    if "://" in text:
        text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    return _AUTH_HEADER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact(obj: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``obj`` safe to write: at any depth of dicts, lists and tuples, values
    under credential names (:func:`is_secret_key`) become ``***`` (``None`` stays
    ``None``), and strings are cleaned with :func:`redact_text`. Other objects are
    returned as they are; the input is never changed.

    Examples
    --------
    >>> redact({"sourceParams": {"userDefined": {"url": "u", "rasterPassword": "p"}}})
    {'sourceParams': {'userDefined': {'url': 'u', 'rasterPassword': '***'}}}
    >>> redact(["token abc123 here"], ["abc123"])
    ['token *** here']
    """
    return _redact(obj, _secrets_tuple(secrets))


def _redact(obj: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if is_secret_key(k) and v is not None else _redact(v, secrets))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_redact(v, secrets) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_redact(v, secrets) for v in obj)
    return obj


__all__ = [
    "MIN_SECRET_LENGTH",
    "QUERY_SECRET_NAMES",
    "REDACTED",
    "SECRET_NAMES",
    "SECRET_WORDS",
    "is_secret_key",
    "redact",
    "redact_text",
    "redact_url",
    "secret_values",
]
