"""``MapflowClient``: the Mapflow API by area over one transport.

``client.projects``, ``client.processings`` (with ``.v1`` and ``.review``),
``client.data`` (``.mosaics``, ``.images``, ``.memory()``), ``client.catalog``,
``client.templates`` and ``client.account`` share one session, one auth and one retry
policy; each area is a small class of :mod:`mapflow_geo.api`. The endpoint table and the
retry policy are fixed in ``DESIGN.md``. Reads and idempotent writes are retried on
transient failures; creates are sent once, and an outcome-unknown create raises
:class:`~mapflow_geo.exceptions.AmbiguousCreateError`.

>>> from mapflow_geo import sim                                   # doctest: +SKIP
>>> with sim.serve() as s, s.client() as client:                  # doctest: +SKIP
...     client.account.status().remaining_credits
...     client.account.find_model("buildings").name
'🏠 Buildings'
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable

import requests

from mapflow_geo._args import checked
from mapflow_geo._http import DEFAULT_TIMEOUT, RetryPolicy, Transport
from mapflow_geo.api import (
    AccountAPI,
    CatalogAPI,
    DataAPI,
    ProcessingsAPI,
    ProjectsAPI,
    TemplatesAPI,
)

__all__ = ["MapflowClient", "RetryPolicy", "default_client"]


class MapflowClient:
    """Client for the Mapflow processing and Data APIs, by area.

    Parameters
    ----------
    token : str, optional
        API token (base64 of ``email:apikey``, as shown on app.mapflow.ai). Falls back
        to ``$MAPFLOW_TOKEN``. It is held only inside the transport's auth object and
        never appears in reprs, logs or exception text.
    base_url : str, optional
        Falls back to ``$MAPFLOW_API_URL`` and then ``https://api.mapflow.ai/rest``.
        Plain ``http://`` is accepted only for loopback hosts (the simulator).
    auth : {"basic", "bearer"}, default "basic"
    timeout : float or (connect, read), default (10, 120)
    retry : RetryPolicy, optional
        How idempotent calls are retried (attempts, backoff, the ``Retry-After``
        clamp, the total deadline); ``RetryPolicy()`` by default.
    session : requests.Session, optional
        Injected session; by default the client makes (and closes) its own, which
        reads the environment's proxy and CA-bundle settings (``HTTPS_PROXY``,
        ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``…) once, on its first request.
    sleep, clock, random : callables, optional
        ``time.sleep``, ``time.monotonic``, ``random.random`` by default (inject
        fakes in tests).

    Attributes
    ----------
    projects : ProjectsAPI
    processings : ProcessingsAPI
        With ``processings.v1`` (the first API version) and ``processings.review``.
    data : DataAPI
        ``data.mosaics``, ``data.images``, ``data.memory()``.
    catalog : CatalogAPI
    templates : TemplatesAPI
    account : AccountAPI

    Examples
    --------
    >>> client = MapflowClient("dG9rZW4=", base_url="http://127.0.0.1:8000/rest",
    ...                        retry=RetryPolicy(max_retries=2))
    >>> client
    MapflowClient(base_url='http://127.0.0.1:8000/rest', auth='basic')
    >>> client.retry_policy.max_retries
    2
    >>> client.close()
    """

    @checked
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
    ) -> None:
        http = Transport(
            token,
            base_url=base_url,
            auth=auth,
            timeout=timeout,
            retry=retry,
            session=session,
            sleep=sleep,
            clock=clock,
            random=random,
        )
        self._http = http
        self.projects = ProjectsAPI(http)
        self.account = AccountAPI(http, self.projects)
        self.processings = ProcessingsAPI(http, self.projects, self.account)
        self.data = DataAPI(http)
        self.catalog = CatalogAPI(http)
        self.templates = TemplatesAPI(http, self.projects, self.catalog)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    @property
    def auth_scheme(self) -> str:
        return self._http.auth_scheme

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._http.retry

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, auth={self.auth_scheme!r})"

    __str__ = __repr__

    def __getstate__(self):
        raise TypeError("MapflowClient cannot be pickled (it holds the API token)")

    def _secrets(self) -> tuple[str, ...]:
        """Every form of this client's token that must never be written (the header
        value, the token, its decoded ``email:key``, the key alone), for
        :func:`mapflow_geo._secrets.redact` and friends in errors, logs, files and maps.

        Examples
        --------
        >>> from mapflow_geo._secrets import redact_text
        >>> with MapflowClient("me@x.org:key-123", base_url="http://127.0.0.1:9/rest") as c:
        ...     redact_text("echo me@x.org:key-123 / key-123", c._secrets())
        'echo *** / ***'
        """
        return self._http.secrets

    def version(self) -> str:
        """``GET /version``: the service's version, as text."""
        text = str(self._http.request("GET", "/version", expect="text") or "").strip()
        if text.startswith('"') and text.endswith('"') and len(text) > 1:
            text = text[1:-1]
        return text

    def close(self) -> None:
        """Close the HTTP session (if the client created it)."""
        self._http.close()

    def __enter__(self) -> MapflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_client(client: MapflowClient | None = None) -> MapflowClient:
    """``client`` itself, or a :class:`MapflowClient` configured from the environment
    (``$MAPFLOW_TOKEN``, ``$MAPFLOW_API_URL``) when it is None.

    The one place where the package builds a client the caller did not pass (the
    accessors, the runner, imagery search and uploads, the command line).

    Raises
    ------
    ConfigError
        When no client is given and ``$MAPFLOW_TOKEN`` is not set.

    Examples
    --------
    >>> c = MapflowClient("dG9rZW4=", base_url="http://127.0.0.1:8000/rest")
    >>> default_client(c) is c
    True
    >>> c.close()
    """
    return client if client is not None else MapflowClient()
