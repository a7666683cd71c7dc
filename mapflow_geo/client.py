"""``MapflowClient``: one method per Mapflow REST endpoint.

The endpoint table and the retry policy are fixed in ``DESIGN.md``. Reads and
idempotent writes are retried on transient failures; creates are sent once, and an
outcome-unknown create raises :class:`~mapflow_geo.exceptions.AmbiguousCreateError`.

>>> from mapflow_geo import sim                                   # doctest: +SKIP
>>> with sim.serve() as s, s.client() as client:                  # doctest: +SKIP
...     client.user_status().remaining_credits
...     client.find_model("buildings").name
'🏠 Buildings'
"""

from __future__ import annotations

import math
import os
import random as _random
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import requests

from mapflow_geo._args import checked
from mapflow_geo._http import DEFAULT_TIMEOUT, RetryPolicy, Transport, quote_path
from mapflow_geo._secrets import redact
from mapflow_geo.exceptions import (
    APIError,
    MapflowError,
    ModelNotFoundError,
    NotFoundError,
    TransportError,
)
from mapflow_geo.models import (
    DEFAULT_MAX_AOIS_PER_PROCESSING,
    AccountLimits,
    Aoi,
    CatalogSearchResult,
    Image,
    ImageDownload,
    Listing,
    Memory,
    Model,
    Mosaic,
    Page,
    Processing,
    ProcessingStats,
    Project,
    Template,
    UserStatus,
    check_scale,
    from_fraction,
)
from mapflow_geo.sources import create_body

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["MapflowClient", "default_client", "normalise_model_name"]

_P = quote_path

# snake_case conveniences accepted in create/cost bodies
_BODY_KEYS = {
    "project_id": "projectId",
    "wd_name": "wdName",
    "wd_id": "wdId",
    "area_sq_km": "areaSqKm",
    "source_params": "sourceParams",
    "inference_params": "inferenceParams",
}

#: Statuses meaning "this deployment does not serve that route" (a newer path falls back
#: to the documented older one).
_NO_ROUTE = (404, 405)


def _no_route(exc: APIError) -> bool:
    return exc.status in _NO_ROUTE


def _items(data: Any, *keys: str) -> list:
    """A bare list, or the list under the first of ``keys`` of a wrapper object."""
    if isinstance(data, Mapping):
        for k in keys:
            if isinstance(data.get(k), list):
                return data[k]
        return []
    return list(data) if isinstance(data, list) else []


def _int_or_none(v: Any) -> int | None:
    try:
        return None if v is None or isinstance(v, bool) else int(v)
    except (TypeError, ValueError):
        return None


def _one_page(data: Any, parse: Callable[[Mapping[str, Any]], Any]) -> Page:
    """An unpaged listing (a bare list or a wrapper) as one complete page."""
    rows = _items(data, "results", "items", "processings", "projects")
    items = [parse(r) for r in rows if isinstance(r, Mapping)]
    return Page(items, 0, None, len(items), len(items), True, raw=data)


def _created_key(p: Any) -> float:
    c = getattr(p, "created", None)
    return c.timestamp() if c is not None else float("-inf")


def _template_aois(aois: Any) -> list[dict]:
    """Named AOIs for the template API: one Polygon per item (MultiPolygons exploded).

    ``aois``: a GeoJSON geometry, a Feature, a FeatureCollection, or a list of those or of
    ``(geometry, name)`` pairs; a feature's name is ``properties.name``."""
    if isinstance(aois, Mapping):
        aois = list(aois["features"]) if aois.get("type") == "FeatureCollection" else [aois]
    out: list[dict] = []
    for item in aois:
        name = None
        if isinstance(item, tuple):
            item, name = item
        if isinstance(item, Mapping) and item.get("type") == "Feature":
            name = name if name is not None else (item.get("properties") or {}).get("name")
            item = item.get("geometry")
        geom = getattr(item, "__geo_interface__", item)
        if not isinstance(geom, Mapping):
            raise TypeError(f"not a GeoJSON geometry: {type(item).__name__}")
        if geom.get("type") == "MultiPolygon":
            polys = [{"type": "Polygon", "coordinates": c} for c in geom["coordinates"]]
        elif geom.get("type") == "Polygon":
            polys = [dict(geom)]
        else:
            raise ValueError(f"template AOIs are polygons, got {geom.get('type')}")
        for poly in polys:
            out.append({"geometry": poly, "name": None if name is None else str(name)[:64]})
    return out


def _active_until(value: Any = None) -> str:
    """``activeUntil`` as the plugin writes it; default now + 180 days − 1 minute (the
    service accepts at most six months ahead)."""
    if value is None:
        value = datetime.now(timezone.utc) + timedelta(days=180, minutes=-1)
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc) if value.tzinfo else value
        return value.strftime("%Y-%m-%dT%H:%M:%S.0Z")
    return str(value)


# ----------------------------------------------------------------------- model names
_MOJIBAKE_RUN = re.compile(rb"[\x80-\xbf]{2,}|[\xc0-\xf7][\x80-\xbf]")


def _unmojibake(s: str) -> str:
    """Repair UTF-8 read as Mac Roman / cp1252 (the docs show ``üè† Buildings``, whose
    first byte was lost). Applied only when the re-encoded bytes look like UTF-8
    sequences, so genuine accented names (``Forêt``) are left alone."""
    for enc in ("mac_roman", "cp1252"):
        try:
            raw = s.encode(enc)
        except UnicodeEncodeError:
            continue
        if raw == s.encode("utf-8", errors="ignore") or not _MOJIBAKE_RUN.search(raw):
            continue
        fixed = raw.decode("utf-8", errors="ignore")
        if fixed and fixed != s:
            return fixed
    return s


def normalise_model_name(name: str) -> str:
    """Friendly form of a model name: no emoji, symbols or punctuation; casefolded;
    single spaces.

    Examples
    --------
    >>> normalise_model_name("🌲↕️ Forest with heights")
    'forest with heights'
    >>> normalise_model_name("  🚜 Fields (Sentinel-2) ")
    'fields sentinel 2'
    """
    s = unicodedata.normalize("NFKC", _unmojibake(str(name)))
    kept = []
    for ch in s:
        cat = unicodedata.category(ch)
        kept.append(ch if cat[0] in ("L", "N") else " ")
    return re.sub(r"\s+", " ", "".join(kept)).strip().casefold()


def _source_of(path_or_bytes: Any, filename: str | None) -> Callable[[], dict]:
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


def _as_int_cost(value: Any) -> int:
    if isinstance(value, Mapping):
        value = value.get("cost", value.get("value"))
    if isinstance(value, bool) or value is None:
        raise TransportError(f"cost answer is not a number: {value!r}")
    try:
        return int(math.ceil(float(value)))
    except (TypeError, ValueError):
        raise TransportError(f"cost answer is not a number: {str(value)[:80]!r}") from None


# ----------------------------------------------------------------------- the client
class MapflowClient:
    """Client for the Mapflow processing and Data APIs.

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
    max_retries : int, default 5
        Retries after the first attempt, for idempotent calls.
    deadline : float, default 300
        Total seconds one call may take, retries included.
    backoff_base, backoff_max, max_retry_after : float
        Full-jitter backoff parameters and the clamp for ``Retry-After``.
    session : requests.Session, optional
        Injected session; by default the client makes (and closes) its own.
    sleep, clock, random : callables, optional
        ``time.sleep``, ``time.monotonic``, ``random.random`` by default (inject
        fakes in tests).

    Examples
    --------
    >>> client = MapflowClient("dG9rZW4=", base_url="http://127.0.0.1:8000/rest")
    >>> client
    MapflowClient(base_url='http://127.0.0.1:8000/rest', auth='basic')
    >>> client.close()
    """

    #: Page sizes Geoalert's QGIS plugin uses (projects 20, processings 30, catalog and
    #: template images 100); set on an instance to change them.
    projects_page_size: int = 20
    processings_page_size: int = 30
    catalog_page_size: int = 100
    #: The scale ``/catalog/meta`` and template images use for ``maxCloudCover``,
    #: ``minAoiIntersectionPercent`` and ``cloudCover``: the service's ``"percent"``;
    #: ``"fraction"`` for a deployment on the 2026 page's 0–1 scale.
    catalog_scale: str = "percent"

    @checked
    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        auth: str = "basic",
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        deadline: float = 300.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._http = Transport(
            token,
            base_url=base_url,
            auth=auth,
            timeout=timeout,
            retry=RetryPolicy(
                max_retries=max_retries,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
                max_retry_after=max_retry_after,
                deadline=deadline,
            ),
            session=session,
            sleep=sleep,
            clock=clock,
            random=random,
        )
        self._user_status: UserStatus | None = None
        self._default_project_id: str | None = None

    # -- housekeeping ------------------------------------------------------------
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

    def close(self) -> None:
        """Close the HTTP session (if the client created it)."""
        self._http.close()

    def __enter__(self) -> MapflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **kw: Any) -> Any:
        return self._http.request("GET", path, **kw)

    # -- user --------------------------------------------------------------------
    def user_status(self, *, refresh: bool = True) -> UserStatus:
        """``GET /user/status``: billing, limits, models and data providers.

        Parameters
        ----------
        refresh : bool, default True
            False reuses the last answer (model lookups use it).

        Examples
        --------
        >>> client.user_status().max_aois_per_processing               # doctest: +SKIP
        10
        """
        if refresh or self._user_status is None:
            self._user_status = UserStatus.from_json(self._get("/user/status"))
        return self._user_status

    def version(self) -> str:
        """``GET /version``: the service's version, as text."""
        text = str(self._get("/version", expect="text") or "").strip()
        if text.startswith('"') and text.endswith('"') and len(text) > 1:
            text = text[1:-1]
        return text

    def processing_stats(self, *, format: str = "JSON", **filters: Any) -> Any:
        """``POST /processings/stats?type=JSON|CSV``: processing history with totals.

        Filters are sent as the JSON body: ``dateFrom``, ``dateTo``, ``statuses``,
        ``terms`` (older page) or ``page``, ``perPage``, ``sort``, ``filter`` (2026).
        ``format="JSON"`` (default) returns :class:`ProcessingStats`; ``format="CSV"``
        the service's CSV table as a DataFrame (:meth:`processing_stats_csv`).

        Examples
        --------
        >>> client.processing_stats(statuses=["OK"]).total             # doctest: +SKIP
        2
        """
        kind = str(format).upper()
        if kind == "CSV":
            return self.processing_stats_csv(**filters)
        if kind != "JSON":
            raise ValueError(f"format must be 'JSON' or 'CSV', not {format!r}")
        data = self._http.request(
            "POST",
            "/processings/stats",
            params={"type": "JSON"},
            json_body=filters,
            idempotent=True,
        )
        return ProcessingStats.from_json(data)

    def processing_stats_csv(self, **filters: Any) -> pd.DataFrame:
        """``POST /processings/stats?type=CSV`` → :class:`pandas.DataFrame`.

        Examples
        --------
        >>> client.processing_stats_csv(statuses=["OK"]).columns       # doctest: +SKIP
        """
        import io

        import pandas as pd

        text = self._http.request(
            "POST",
            "/processings/stats",
            params={"type": "CSV"},
            json_body=filters,
            idempotent=True,
            expect="text",
        )
        if not text or not text.strip():
            return pd.DataFrame()
        return pd.read_csv(io.StringIO(text))

    # -- projects ----------------------------------------------------------------
    def list_projects(self) -> Listing:
        """Every project: ``POST /projects/page`` walked to its ``total`` (pages of
        :attr:`projects_page_size`, most recently updated first), or ``GET /projects``
        where the paged route is not served (404/405)."""
        items: dict[str, Project] = {}
        extra: list[Project] = []
        page = Page()
        for page in self._pages(
            "/projects/page",
            {"sortBy": "UPDATED", "sortOrder": "DESC"},
            self.projects_page_size,
            lambda: iter([_one_page(self._get("/projects"), Project.from_json)]),
            Project.from_json,
        ):
            for p in page.items:
                if p.id is None:
                    extra.append(p)
                else:
                    items.setdefault(p.id, p)
        return Listing([*items.values(), *extra], total=page.total, complete=page.complete)

    def _pages(
        self,
        path: str,
        order: Mapping[str, Any],
        page_size: int,
        fallback: Callable[[], Iterator[Page]],
        parse: Callable[[Mapping[str, Any]], Any],
    ) -> Iterator[Page]:
        """Walk a paged route (``{limit, offset, ...order}`` → ``{results, total, count}``)
        until the offsets reach ``total`` (or a page comes back empty, or, without a
        ``total``, short); ``fallback()``'s pages when the route answers 404/405. Pages
        after one whose ``total`` fell below an earlier page's are marked ``shrank``."""
        size = max(1, int(page_size))
        offset, most = 0, 0
        while True:
            body = {"limit": size, "offset": offset, **order}
            try:
                data = self._http.request("POST", path, json_body=body, idempotent=True)
            except APIError as exc:
                if offset or not _no_route(exc):
                    raise
                yield from fallback()
                return
            if isinstance(data, list):  # a bare list: the route does not page
                yield _one_page(data, parse)
                return
            rows = _items(data, "results", "items", "processings", "projects")
            parsed = [parse(r) for r in rows if isinstance(r, Mapping)]
            total = _int_or_none(data.get("total")) if isinstance(data, Mapping) else None
            count = _int_or_none(data.get("count")) if isinstance(data, Mapping) else None
            reached = offset + len(rows)
            last = not rows or (reached >= total if total is not None else len(rows) < size)
            shrank = total is not None and total < most
            most = max(most, total or 0)
            yield Page(parsed, offset, size, total, count, last, raw=data, shrank=shrank)
            if last:
                return
            offset = reached

    def default_project(self) -> Project:
        """``GET /projects/default``: the default project, its ``user`` carrying
        ``aoi_area_limit`` (m²)."""
        project = Project.from_json(self._get("/projects/default"))
        if project.id:
            self._default_project_id = project.id
        return project

    def default_project_id(self) -> str | None:
        """The default project's id (one ``GET /projects/default`` per client, cached)."""
        if self._default_project_id is None:
            self.default_project()
        return self._default_project_id

    def get_project(self, project_id: str) -> Project:
        """``GET /projects/{id}``."""
        return Project.from_json(self._get(f"/projects/{_P(project_id)}"))

    def create_project(self, name: str, description: str | None = None) -> Project:
        """``POST /projects`` (sent once; never retried after it may have arrived).

        Examples
        --------
        >>> client.create_project("Urban 2026", "buildings").id        # doctest: +SKIP
        """
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        return Project.from_json(
            self._http.request("POST", "/projects", json_body=body, create=True)
        )

    def update_project(
        self, project_id: str, *, name: str | None = None, description: str | None = None
    ) -> Project | None:
        """``PUT /projects/{id}``: rename and/or re-describe."""
        body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        data = self._http.request(
            "PUT", f"/projects/{_P(project_id)}", json_body=body, expect="json_optional"
        )
        return Project.from_json(data) if isinstance(data, Mapping) else None

    def delete_project(self, project_id: str) -> None:
        """``DELETE /projects/{id}`` (cascades to its processings)."""
        self._http.request("DELETE", f"/projects/{_P(project_id)}", expect="json_optional")

    def share_project(self, project_id: str, email: str, role: str = "readonly") -> Any:
        """``POST /projects/share``. ``role``: readonly, contributor, maintainer, owner."""
        body = {"projectId": project_id, "email": email, "role": role}
        return self._http.request(
            "POST", "/projects/share", json_body=body, idempotent=True, expect="json_optional"
        )

    # -- processings v2 ----------------------------------------------------------
    @staticmethod
    def _body(body: Mapping[str, Any]) -> dict[str, Any]:
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
            out["blocks"] = [
                {"name": b, "enabled": True} if isinstance(b, str) else b for b in blocks
            ]
        meta = out.get("meta")
        if isinstance(meta, Mapping):
            out["meta"] = {str(k): (v if isinstance(v, str) else str(v)) for k, v in meta.items()}
        return out

    def create_processing(self, **body: Any) -> Processing:
        """``POST /processings/v2``: create **and start** a paid processing.

        Sent once. If the outcome is unknown (timeout, reset, unreadable answer after
        the request was sent) :class:`~mapflow_geo.exceptions.AmbiguousCreateError` is
        raised: it may have been created and charged; reconcile with
        :meth:`list_processings` and ``meta``.

        Parameters
        ----------
        **body
            The v2 body: ``name``, ``projectId``, ``wdName`` or ``wdId``, ``geometry``,
            ``params`` (``{"sourceParams": ..., "inferenceParams": ...}``), ``blocks``,
            ``description``, ``meta``. Conveniences: snake_case keys (``project_id``,
            ``wd_name``…), ``sourceParams=``/``source=`` a :mod:`mapflow_geo.sources`
            builder, ``blocks`` as a mapping or list of names; ``meta`` values are
            sent as strings.

        Examples
        --------
        >>> from mapflow_geo import sources
        >>> p = client.create_processing(                              # doctest: +SKIP
        ...     name="demo", projectId=project.id, wdName="🏠 Buildings", geometry=geom,
        ...     params=sources.data_provider("Mapbox", zoom=18),
        ...     meta={"run": "r1", "tile": "7"})
        """
        b = self._with_project(self._body(body))
        data = self._http.request(
            "POST", "/processings/v2", json_body=b, create=True, meta=b.get("meta")
        )
        return Processing.from_json(data)

    def _with_project(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with ``projectId`` (the default project's when missing): Geoalert's
        clients always name the project."""
        if not body.get("projectId"):
            pid = self.default_project_id()
            if pid:
                body = {**body, "projectId": pid}
        return body

    def processing_body(
        self,
        model: str | Model,
        geometry: Mapping[str, Any] | None = None,
        *,
        project_id: str | None = None,
        source: Any = None,
        blocks: Any = None,
        name: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A create (and cost) body as Geoalert's clients send it:
        :func:`mapflow_geo.sources.create_body` with the model looked up by name
        (:meth:`find_model`) and ``projectId`` the default project's when not given.

        Always ``projectId``, ``wdId``, ``params.sourceParams`` (Mapbox at zoom 18 when
        ``source`` is None, the documented default) and every optional block of the
        model with ``enabled`` true or false.

        Examples
        --------
        >>> body = client.processing_body("buildings", geom, blocks=["OSM"])  # doctest: +SKIP
        >>> client.cost(**body), client.create_processing(**body, name="b1")  # doctest: +SKIP
        """
        found = model if isinstance(model, Model) else self.find_model(str(model))
        return create_body(
            found,
            geometry,
            project_id=project_id or self.default_project_id(),
            source=source,
            blocks=blocks,
            name=name,
            meta=meta,
        )

    def get_processing(self, processing_id: str) -> Processing:
        """``GET /processings/{id}/v2``."""
        return Processing.from_json(self._get(f"/processings/{_P(processing_id)}/v2"))

    def list_processings(self, project_id: str | None = None) -> Listing:
        """Every processing of a project, newest first: one complete sweep of
        :meth:`iter_processings` (``POST /projects/{id}/processings/v2/page``, or the
        documented ``GET .../processings/v2`` where that is not served). Without a
        project, ``GET /processings/v2`` (unpaged).

        Returns
        -------
        Listing
            A list of :class:`Processing` with ``total`` (the service's count) and
            ``complete`` (the sweep's offsets reached ``total``).
        """
        seen: dict[str, Processing] = {}
        extra: list[Processing] = []
        page = Page()
        for page in self.processing_pages(project_id):
            for p in page.items:
                if p.id is None:
                    extra.append(p)
                else:
                    seen.setdefault(p.id, p)
        return Listing([*seen.values(), *extra], total=page.total, complete=page.complete)

    def processing_pages(
        self,
        project_id: str | None = None,
        *,
        page_size: int | None = None,
        sort: str = "CREATED",
        order: str = "DESC",
        terms: str | None = None,
    ) -> Iterator[Page]:
        """The pages of one sweep over a project's processings:
        ``POST /projects/{id}/processings/v2/page`` with ``{limit, offset, sortBy,
        sortOrder}`` (``terms`` filters by text), walked until the offsets reach the
        service's ``total``. Where the paged route answers 404/405, one page from
        ``GET /projects/{id}/processings/v2`` (sorted here by ``created`` when
        ``sort="CREATED"``); without a project, one page from ``GET /processings/v2``.

        Each :class:`~mapflow_geo.models.Page` holds ``items`` (processings),
        ``offset``, ``limit``, ``total`` and ``last``; the final page's ``complete`` is
        True when the sweep covered ``total``. A processing created during a sweep
        shifts the later pages by one, so an item can show up on two pages (callers
        dedupe by id; :meth:`iter_processings` does).

        Examples
        --------
        >>> for page in client.processing_pages(project.id):            # doctest: +SKIP
        ...     print(page.offset, len(page), page.total)
        """
        size = int(page_size or self.processings_page_size)

        def unpaged(path: str) -> Iterator[Page]:
            page = _one_page(self._get(path), Processing.from_json)
            if sort.upper() == "CREATED":
                page.items.sort(key=_created_key, reverse=order.upper() == "DESC")
            yield page

        if project_id is None:
            yield from unpaged("/processings/v2")
            return
        pid = _P(project_id)
        body: dict[str, Any] = {"sortBy": sort, "sortOrder": order}
        if terms:
            body["terms"] = terms
        yield from self._pages(
            f"/projects/{pid}/processings/v2/page",
            body,
            size,
            lambda: unpaged(f"/projects/{pid}/processings/v2"),
            Processing.from_json,
        )

    def iter_processings(
        self,
        project_id: str | None = None,
        *,
        page_size: int | None = None,
        sort: str = "CREATED",
        order: str = "DESC",
        terms: str | None = None,
    ) -> Iterator[Processing]:
        """A project's processings page by page (newest first by default), each id once:
        :meth:`processing_pages` flattened and deduplicated.

        Examples
        --------
        >>> newest = next(client.iter_processings(project.id))           # doctest: +SKIP
        """
        seen: set[str] = set()
        for page in self.processing_pages(
            project_id, page_size=page_size, sort=sort, order=order, terms=terms
        ):
            for p in page.items:
                if p.id is not None:
                    if p.id in seen:
                        continue
                    seen.add(p.id)
                yield p

    @staticmethod
    def _processing_list(data: Any) -> list[Processing]:
        if isinstance(data, Mapping):
            data = data.get("results", data.get("items", data.get("processings", [])))
        return [Processing.from_json(p) for p in data or [] if isinstance(p, Mapping)]

    def move_processing(self, processing_id: str, project_id: str) -> Processing | None:
        """``PUT /processings/{id}`` with ``{"projectId": ...}``: link to another project."""
        data = self._http.request(
            "PUT",
            f"/processings/{_P(processing_id)}",
            json_body={"projectId": project_id},
            expect="json_optional",
        )
        return Processing.from_json(data) if isinstance(data, Mapping) else None

    def rename_processing(
        self, processing_id: str, name: str, description: str | None = None
    ) -> Processing | None:
        """``PUT /processings/{id}/v2`` with ``{name, description}`` (description left out
        when None), as Geoalert's plugin renames; the older ``PUT /processing/{id}`` where
        the v2 route is not served (404/405). Returns the renamed processing."""
        return self.update_processing(processing_id, name=name, description=description)

    def update_processing(
        self, processing_id: str, *, name: str | None = None, description: str | None = None
    ) -> Processing | None:
        """Rename and/or re-describe: ``PUT /processings/{id}/v2``, falling back to the
        published ``PUT /processing/{id}`` (singular) on 404/405."""
        body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        pid = _P(processing_id)
        return self._v2_or_older(
            "PUT", f"/processings/{pid}/v2", f"/processing/{pid}", json_body=body
        )

    def _v2_or_older(self, method: str, path: str, older: str, **kw: Any) -> Processing | None:
        """``method path``, or the older published route when the service has no such
        route (404/405); the answer as a :class:`Processing` when it is one."""
        try:
            data = self._http.request(method, path, expect="json_optional", **kw)
        except APIError as exc:
            if not _no_route(exc):
                raise
            data = self._http.request(method, older, expect="json_optional", **kw)
        return Processing.from_json(data) if isinstance(data, Mapping) else None

    def delete_processing(self, processing_id: str) -> None:
        """``DELETE /processings/{id}``."""
        self._http.request("DELETE", f"/processings/{_P(processing_id)}", expect="json_optional")

    def restart_processing(self, processing_id: str) -> Processing | None:
        """``POST /processings/{id}/restart/v2`` (the older ``/restart`` on 404/405):
        rerun failed partitions only (retried: restarting twice restarts nothing more)."""
        pid = _P(processing_id)
        return self._v2_or_older(
            "POST", f"/processings/{pid}/restart/v2", f"/processings/{pid}/restart", idempotent=True
        )

    # -- review (accounts with reviewWorkflowEnabled) -------------------------------
    def rate_processing(self, processing_id: str, rating: int, feedback: str | None = None) -> Any:
        """``PUT /processings/{id}/rate`` with ``{"rating": 1–5, "feedback"}``.

        Raises
        ------
        ValueError
            ``rating`` is not a whole number from 1 to 5 (nothing is sent).

        Examples
        --------
        >>> client.rate_processing(p.id, 5, "clean outlines")           # doctest: +SKIP
        """
        if isinstance(rating, bool) or not isinstance(rating, (int, float)):
            raise ValueError(f"rating must be a whole number from 1 to 5, got {rating!r}")
        if rating != int(rating) or not 1 <= int(rating) <= 5:
            raise ValueError(f"rating must be a whole number from 1 to 5, got {rating!r}")
        body: dict[str, Any] = {"rating": int(rating)}
        if feedback is not None:
            body["feedback"] = str(feedback)
        return self._http.request(
            "PUT", f"/processings/{_P(processing_id)}/rate", json_body=body, expect="json_optional"
        )

    def accept_processing(self, processing_id: str) -> Any:
        """``PUT /processings/{id}/acceptation``: accept a processing in review."""
        return self._http.request(
            "PUT", f"/processings/{_P(processing_id)}/acceptation", expect="json_optional"
        )

    def reject_processing(
        self,
        processing_id: str,
        comment: str | None = None,
        features: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
    ) -> Any:
        """``PUT /processings/{id}/rejection`` with ``{"comment", "features"}``:
        ``features`` are the corrections (a FeatureCollection or a list of features; an
        empty FeatureCollection when None). The review status becomes ``NOT_ACCEPTED``."""
        if features is None:
            fc: dict[str, Any] = {"type": "FeatureCollection", "features": []}
        elif isinstance(features, Mapping):
            fc = dict(getattr(features, "__geo_interface__", features))
        else:
            fc = {"type": "FeatureCollection", "features": [dict(f) for f in features]}
        body: dict[str, Any] = {"comment": "" if comment is None else str(comment), "features": fc}
        return self._http.request(
            "PUT",
            f"/processings/{_P(processing_id)}/rejection",
            json_body=body,
            expect="json_optional",
        )

    def processing_aois(self, processing_id: str) -> list[Aoi]:
        """``GET /processings/{id}/aois``."""
        data = self._get(f"/processings/{_P(processing_id)}/aois")
        if isinstance(data, Mapping) and data.get("type") == "FeatureCollection":
            data = [
                {
                    **(f.get("properties") or {}),
                    "geometry": f.get("geometry"),
                    "id": f.get("id") or (f.get("properties") or {}).get("id"),
                }
                for f in data.get("features", [])
            ]
        return [Aoi.from_json(a) for a in data or [] if isinstance(a, Mapping)]

    def processing_result(self, processing_id: str, aoi_id: str | None = None) -> dict:
        """``GET /processings/{id}/result[?aoiId=]`` → GeoJSON FeatureCollection (dict).

        Examples
        --------
        >>> fc = client.processing_result(p.id)                        # doctest: +SKIP
        >>> fc["type"]                                                 # doctest: +SKIP
        'FeatureCollection'
        """
        data = self._get(
            f"/processings/{_P(processing_id)}/result",
            params={"aoiId": aoi_id} if aoi_id is not None else None,
        )
        if not isinstance(data, Mapping):
            raise TransportError(
                f"result of processing {processing_id} is not a GeoJSON object",
                method="GET",
                path=f"/processings/{_P(processing_id)}/result",
            )
        return dict(data)

    def processing_result_bytes(self, processing_id: str, aoi_id: str | None = None) -> bytes:
        """The raw result body (GeoJSON bytes), e.g. to save to disk."""
        return self._get(
            f"/processings/{_P(processing_id)}/result",
            params={"aoiId": aoi_id} if aoi_id is not None else None,
            expect="bytes",
        )

    # -- processings v1 ----------------------------------------------------------
    def create_processing_v1(self, **body: Any) -> Processing:
        """``POST /processings`` (v1: flat ``params`` such as ``source_type``/``url``).
        Sent once, like :meth:`create_processing`."""
        b = self._body(body)
        data = self._http.request(
            "POST", "/processings", json_body=b, create=True, meta=b.get("meta")
        )
        return Processing.from_json(data)

    def get_processing_v1(self, processing_id: str) -> Processing:
        """``GET /processings/{id}``."""
        return Processing.from_json(self._get(f"/processings/{_P(processing_id)}"))

    def list_processings_v1(self, project_id: str | None = None) -> list[Processing]:
        """``GET /processings`` or ``/projects/{id}/processings``."""
        path = "/processings" if project_id is None else f"/projects/{_P(project_id)}/processings"
        return self._processing_list(self._get(path))

    # -- cost --------------------------------------------------------------------
    def cost(self, **body: Any) -> int:
        """``POST /processing/cost/v2`` → credits (int). Takes the create body, or
        ``wdId`` + ``areaSqKm`` (``area_sq_km=``).

        Examples
        --------
        >>> client.cost(wdId=model.id, areaSqKm=1.5,                   # doctest: +SKIP
        ...             params=sources.data_provider("Mapbox", zoom=18))
        """
        b = self._body(body)
        if "geometry" in b:  # the create body: priced as it will be sent
            b = self._with_project(b)
        return _as_int_cost(
            self._http.request("POST", "/processing/cost/v2", json_body=b, idempotent=True)
        )

    def cost_v1(self, **body: Any) -> int:
        """``POST /processing/cost`` (v1 body: ``wdId``, ``geometry``, flat ``params``)."""
        return _as_int_cost(
            self._http.request(
                "POST", "/processing/cost", json_body=self._body(body), idempotent=True
            )
        )

    # -- Data API ----------------------------------------------------------------
    def create_mosaic(self, name: str, tags: Iterable[str] | None = None) -> Mosaic:
        """``POST /rasters/mosaic``: an empty image collection (sent once)."""
        body: dict[str, Any] = {"name": name}
        if tags is not None:
            body["tags"] = list(tags)
        return Mosaic.from_json(
            self._http.request("POST", "/rasters/mosaic", json_body=body, create=True)
        )

    def list_mosaics(self) -> list[Mosaic]:
        """``GET /rasters/mosaic``."""
        data = self._get("/rasters/mosaic")
        if isinstance(data, Mapping):
            data = data.get("results", data.get("items", data.get("mosaics", [])))
        return [Mosaic.from_json(m) for m in data or [] if isinstance(m, Mapping)]

    def get_mosaic(self, mosaic_id: str) -> Mosaic:
        """``GET /rasters/mosaic/{id}``."""
        return Mosaic.from_json(self._get(f"/rasters/mosaic/{_P(mosaic_id)}"))

    def update_mosaic(
        self, mosaic_id: str, *, name: str | None = None, tags: Iterable[str] | None = None
    ) -> Mosaic | None:
        """``PUT /rasters/mosaic/{id}`` (``tags`` replaces the list)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if tags is not None:
            body["tags"] = list(tags)
        data = self._http.request(
            "PUT", f"/rasters/mosaic/{_P(mosaic_id)}", json_body=body, expect="json_optional"
        )
        return Mosaic.from_json(data) if isinstance(data, Mapping) else None

    def delete_mosaic(self, mosaic_id: str) -> None:
        """``DELETE /rasters/mosaic/{id}`` (deletes its images too)."""
        self._http.request("DELETE", f"/rasters/mosaic/{_P(mosaic_id)}", expect="json_optional")

    def create_mosaic_and_upload(
        self,
        path_or_bytes: str | os.PathLike | bytes | BinaryIO,
        name: str,
        tags: Iterable[str] | None = None,
        *,
        filename: str | None = None,
    ) -> Mosaic:
        """``POST /rasters/mosaic/image?name=&tags=`` (multipart ``file``): create a
        mosaic holding one image. Sent once.

        Returns
        -------
        Mosaic
            With ``images`` holding the uploaded image when the answer includes it.

        Examples
        --------
        >>> m = client.create_mosaic_and_upload("ortho.tif", "survey", ["2026"])  # doctest: +SKIP
        >>> sources.my_imagery(mosaic_id=m.id)                                     # doctest: +SKIP
        """
        tags = list(tags or [])
        params: list[tuple[str, Any]] = [("name", name)] + [("tags", t) for t in tags]
        data = self._http.request(
            "POST",
            "/rasters/mosaic/image",
            params=params,
            files=_source_of(path_or_bytes, filename),
            create=True,
        )
        data = data if isinstance(data, Mapping) else {}
        if "mosaic_id" in data and "id" not in data:  # the service's {message, mosaic_id}
            mosaic_id = str(data["mosaic_id"])
            if isinstance(data.get("image"), Mapping):
                images = [Image.from_json(data["image"])]
            else:
                try:
                    images = self.list_images(mosaic_id)
                except MapflowError:  # created all the same: keep its id
                    images = []
            return Mosaic(id=mosaic_id, name=name, tags=tags, images=images, raw=dict(data))
        if "mosaic_id" in data and "id" in data and "tags" not in data and "image" not in data:
            # an image-shaped answer: the mosaic is its parent
            image = Image.from_json(data)
            return Mosaic(id=image.mosaic_id, name=name, tags=tags, images=[image], raw=dict(data))
        return Mosaic.from_json(data)

    def upload_image(
        self,
        mosaic_id: str,
        path_or_bytes: str | os.PathLike | bytes | BinaryIO,
        *,
        filename: str | None = None,
    ) -> Image:
        """``POST /rasters/mosaic/{id}/image`` (multipart ``file``). Sent once.

        Examples
        --------
        >>> client.upload_image(mosaic.id, "ortho.tif").id             # doctest: +SKIP
        """
        data = self._http.request(
            "POST",
            f"/rasters/mosaic/{_P(mosaic_id)}/image",
            files=_source_of(path_or_bytes, filename),
            create=True,
        )
        if isinstance(data, list):  # some deployments answer with the list of images
            data = data[-1] if data else {}
        data = data if isinstance(data, Mapping) else {}
        if isinstance(data.get("image"), Mapping):  # an answer that carries the image
            return Image.from_json(data["image"])
        if "id" not in data:  # the service's {message, mosaic_id}: find it in the mosaic
            return self._find_uploaded(
                str(data.get("mosaic_id") or mosaic_id), filename, path_or_bytes, data
            )
        return Image.from_json(data)

    def _find_uploaded(
        self, mosaic_id: str, filename: str | None, source: Any, answer: Mapping
    ) -> Image:
        """The image just uploaded, found by listing the mosaic (the service answers
        only ``{message, mosaic_id}``): the newest one with the file's name, else the
        newest. An image without an id when the listing fails."""
        if filename is None and isinstance(source, (str, os.PathLike)):
            filename = Path(source).name
        try:
            images = self.list_images(mosaic_id)
        except MapflowError:
            images = []
        named = [i for i in images if filename and i.filename == filename] or images
        if not named:
            return Image(id=None, mosaic_id=mosaic_id, filename=filename, raw=dict(answer))
        newest = max(
            enumerate(named),
            key=lambda t: (t[1].uploaded.timestamp() if t[1].uploaded else float("-inf"), t[0]),
        )
        return newest[1]

    def link_image(self, mosaic_id: str, url: str) -> dict:
        """``POST /rasters/mosaic/{id}/link-image`` with an ``s3://`` URL. Sent once."""
        data = self._http.request(
            "POST",
            f"/rasters/mosaic/{_P(mosaic_id)}/link-image",
            json_body={"url": url},
            create=True,
            expect="json_optional",
        )
        return dict(data) if isinstance(data, Mapping) else {"message": data}

    def list_images(self, mosaic_id: str) -> list[Image]:
        """``GET /rasters/mosaic/{id}/image``."""
        data = self._get(f"/rasters/mosaic/{_P(mosaic_id)}/image")
        if isinstance(data, Mapping):
            data = data.get("results", data.get("items", data.get("images", [])))
        return [Image.from_json(i) for i in data or [] if isinstance(i, Mapping)]

    def get_image(self, image_id: str) -> Image:
        """``GET /rasters/image/{id}``."""
        return Image.from_json(self._get(f"/rasters/image/{_P(image_id)}"))

    def rename_image(self, image_id: str, name: str) -> Image | None:
        """``PUT /rasters/image/{id}?name=``."""
        data = self._http.request(
            "PUT", f"/rasters/image/{_P(image_id)}", params={"name": name}, expect="json_optional"
        )
        return Image.from_json(data) if isinstance(data, Mapping) else None

    def delete_image(self, image_id: str) -> None:
        """``DELETE /rasters/image/{id}``."""
        self._http.request("DELETE", f"/rasters/image/{_P(image_id)}", expect="json_optional")

    def image_preview(self, image_id: str, size: str = "s") -> bytes:
        """``GET /rasters/image/{id}/preview/{size}`` → image bytes (``s`` 256 px,
        ``l`` 1024 px). Falls back to the older ``/rasters/{id}/preview/{size}`` on 404."""
        if size not in ("s", "l"):
            raise ValueError(f"size must be 's' or 'l', got {size!r}")
        try:
            return self._get(f"/rasters/image/{_P(image_id)}/preview/{size}", expect="bytes")
        except NotFoundError as exc:
            not_found = exc
        try:
            return self._get(f"/rasters/{_P(image_id)}/preview/{size}", expect="bytes")
        except NotFoundError:
            raise not_found from None

    def image_download(self, image_id: str) -> ImageDownload:
        """``GET /rasters/image/{id}/download`` → ``{download_url, filename, expires_in}``:
        a short-lived link to the original file (404 no access, 403 not downloadable,
        409 not ready)."""
        return ImageDownload.from_json(self._get(f"/rasters/image/{_P(image_id)}/download"))

    def download_image(self, image_id: str) -> bytes:
        """The original file of an image: :meth:`image_download`, then its
        ``download_url`` fetched **only when it is on the API's own origin** (the session
        carries the token); a link elsewhere (a presigned storage URL) raises
        :class:`~mapflow_geo.exceptions.TransportError`: fetch ``image_download(id)
        .download_url`` with a client of your choice."""
        link = self.image_download(image_id)
        if not link.download_url:
            raise TransportError(
                f"no download_url for image {image_id}", method="GET", path="/rasters/image"
            )
        return self._http.request("GET", link.download_url, expect="bytes")

    def memory(self) -> Memory:
        """``GET /rasters/memory``: Data API storage used and available (bytes)."""
        return Memory.from_json(self._get("/rasters/memory"))

    def search_catalog(
        self,
        aoi: Mapping[str, Any] | None = None,
        *,
        max_cloud_cover: float | None = None,
        min_aoi_intersection: float | None = None,
        **body: Any,
    ) -> CatalogSearchResult:
        """``POST /catalog/meta``: search imagery of linked providers (one page).

        Parameters
        ----------
        aoi : GeoJSON geometry
            Polygon or MultiPolygon (its area is limited by ``searchAreaLimit``).
        max_cloud_cover, min_aoi_intersection : float, optional
            **Fractions 0–1**, sent as ``maxCloudCover`` and ``minAoiIntersectionPercent``
            on :attr:`catalog_scale` (the service's percent: 0.2 → 20).
        **body
            Further fields sent as given (on the service's scale): ``acquisitionDateFrom``,
            ``acquisitionDateTo``, ``minResolution``, ``maxResolution``,
            ``maxCloudCover``, ``limit`` (default :attr:`catalog_page_size`), ``offset``,
            ``sortBy``, ``sortOrder``, ``dataProviders``, ``productTypes``…

        Returns
        -------
        CatalogSearchResult
            Scenes read on :attr:`catalog_scale` (``cloud_cover_fraction`` is 0–1).

        Examples
        --------
        >>> scenes = client.search_catalog(geom, max_cloud_cover=0.1)  # doctest: +SKIP
        >>> sources.imagery_search(scenes[0].provider_name, [scenes[0].id])  # doctest: +SKIP
        """
        scale = check_scale(self.catalog_scale)
        b = dict(body)
        if aoi is not None:
            b["aoi"] = dict(aoi)
        if "aoi" not in b:
            raise ValueError("search_catalog needs an aoi (GeoJSON Polygon or MultiPolygon)")
        if max_cloud_cover is not None:
            b["maxCloudCover"] = from_fraction(max_cloud_cover, scale)
        if min_aoi_intersection is not None:
            b["minAoiIntersectionPercent"] = from_fraction(min_aoi_intersection, scale)
        b.setdefault("limit", self.catalog_page_size)
        b.setdefault("offset", 0)
        return CatalogSearchResult.from_json(
            self._http.request("POST", "/catalog/meta", json_body=b, idempotent=True),
            cloud_cover_scale=scale,
        )

    # -- planned processings (templates) -----------------------------------------
    def create_template(
        self,
        name: str,
        aois: Any,
        *,
        project_id: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        max_cloud_cover: float | None = None,
        min_aoi_intersection: float | None = None,
        active_until: Any = None,
        processing_params: Mapping[str, Any] | None = None,
        **search_params: Any,
    ) -> Template:
        """``POST /processings/template``: a planned processing, a saved imagery search
        over named AOIs that the service re-runs daily. Sent once.

        Parameters
        ----------
        name : str
        aois : GeoJSON geometry, Feature, FeatureCollection, or a list of those or of
            ``(geometry, name)`` pairs
            Sent as ``searchParams.aoiDetails``, one Polygon feature per part
            (MultiPolygons exploded), ``properties.name`` (≤ 64 characters) or null.
        project_id : str, optional
            The default project's when None (the service requires one).
        date_from, date_to : str, optional
            ``acquisitionDateFrom`` / ``acquisitionDateTo`` (ISO 8601).
        max_cloud_cover, min_aoi_intersection : float, optional
            Fractions 0–1, sent in percent as in ``/catalog/meta``.
        active_until : datetime or str, optional
            Default now + 180 days − 1 minute (the most the service accepts).
        processing_params : mapping, optional
            ``processingParams``: the model (``wdId``/``wdName``, ``blocks``…) the
            service runs on every new image (the planned-processing spec; the QGIS plugin
            sends none and processes by hand).
        **search_params
            Further ``searchParams`` (``productTypes``, ``dataProviders``,
            ``hideUnavailable``…).

        Examples
        --------
        >>> t = client.create_template("North fields", [(field, "North")])  # doctest: +SKIP
        >>> t.status, t.is_active                                           # doctest: +SKIP
        """
        search = self._search_params(
            date_from, date_to, max_cloud_cover, min_aoi_intersection, search_params
        )
        search["aoiDetails"] = {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": a["geometry"], "properties": {"name": a["name"]}}
                for a in _template_aois(aois)
            ],
        }
        body = {
            "name": name,
            "searchParams": search,
            "projectId": project_id or self.default_project_id(),
            "activeUntil": _active_until(active_until),
        }
        if processing_params is not None:
            body["processingParams"] = dict(processing_params)
        return Template.from_json(
            self._http.request("POST", "/processings/template", json_body=body, create=True)
        )

    def _search_params(
        self,
        date_from: Any,
        date_to: Any,
        max_cloud_cover: float | None,
        min_aoi_intersection: float | None,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        scale = check_scale(self.catalog_scale)
        out: dict[str, Any] = {}
        if date_from is not None:
            out["acquisitionDateFrom"] = str(date_from)
        if date_to is not None:
            out["acquisitionDateTo"] = str(date_to)
        if max_cloud_cover is not None:
            out["maxCloudCover"] = from_fraction(max_cloud_cover, scale)
        if min_aoi_intersection is not None:
            out["minAoiIntersectionPercent"] = from_fraction(min_aoi_intersection, scale)
        out.update(extra)
        return out

    def list_templates(
        self, project_id: str | None = None, *, user_id: str | None = None
    ) -> list[Template]:
        """``GET /processings/template`` (all), ``/processings/template/project/{id}``
        (a project's; short records without ``searchParams``) or
        ``/processings/template/user/{id}``."""
        if project_id is not None:
            path = f"/processings/template/project/{_P(project_id)}"
        elif user_id is not None:
            path = f"/processings/template/user/{_P(user_id)}"
        else:
            path = "/processings/template"
        rows = _items(self._get(path), "templates", "results", "items")
        return [Template.from_json(t) for t in rows if isinstance(t, Mapping)]

    def get_template(self, template_id: str) -> Template:
        """``GET /processings/template/{id}`` (``search_results`` holds the images found)."""
        return Template.from_json(self._get(f"/processings/template/{_P(template_id)}"))

    def update_template(
        self,
        template_id: str,
        *,
        name: str | None = None,
        active_until: Any = None,
        date_from: str | None = None,
        date_to: str | None = None,
        max_cloud_cover: float | None = None,
        min_aoi_intersection: float | None = None,
        **search_params: Any,
    ) -> Template | None:
        """``PUT /processings/template/{id}``: a partial update (``name``, ``activeUntil``,
        ``searchParams`` merged by the service; AOIs change through
        :meth:`add_template_aois` and friends, never here)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if active_until is not None:
            body["activeUntil"] = _active_until(active_until)
        search = self._search_params(
            date_from, date_to, max_cloud_cover, min_aoi_intersection, search_params
        )
        if "aoi" in search or "aoiDetails" in search:
            raise ValueError("template AOIs change through add/update/delete_template_aois")
        if search:
            body["searchParams"] = search
        data = self._http.request(
            "PUT",
            f"/processings/template/{_P(template_id)}",
            json_body=body,
            expect="json_optional",
        )
        return Template.from_json(data) if isinstance(data, Mapping) else None

    def _template_call(self, method: str, template_id: str, tail: str = "", **kw: Any) -> Any:
        path = f"/processings/template/{_P(template_id)}{tail}"
        kw.setdefault("expect", "json_optional")
        return self._http.request(method, path, **kw)

    def delete_template(self, template_id: str) -> None:
        """``DELETE /processings/template/{id}``."""
        self._template_call("DELETE", template_id)

    def pause_template(self, template_id: str) -> Any:
        """``POST /processings/template/{id}/pause``: stop the daily search."""
        return self._template_call("POST", template_id, "/pause", idempotent=True)

    def resume_template(self, template_id: str) -> Any:
        """``POST /processings/template/{id}/resume`` (refused over the active-templates
        cap); extend it with ``update_template(id, active_until=...)`` as the plugin does."""
        return self._template_call("POST", template_id, "/resume", idempotent=True)

    def restart_template(self, template_id: str) -> Any:
        """``POST /processings/template/{id}/restart``: search again (FAILED templates)."""
        return self._template_call("POST", template_id, "/restart", idempotent=True)

    def run_template(self, template_id: str, **body: Any) -> Processing:
        """``POST /processings/template/{id}/v2``: create **and start** a paid processing
        from images the template found. Sent once, like :meth:`create_processing`.

        ``body`` is a create body (``name``, ``wdId``, ``geometry`` — the union of the
        chosen AOIs —, ``params`` with ``imagerySearch`` of the template's images,
        ``blocks``, ``meta``); ``updateTemplateGeometry`` defaults to false."""
        b = self._body(body)
        b.setdefault("updateTemplateGeometry", False)
        data = self._template_call(
            "POST", template_id, "/v2", json_body=b, create=True, meta=b.get("meta"), expect="json"
        )
        return Processing.from_json(data if isinstance(data, Mapping) else {})

    def template_processings(self, template_id: str) -> list[Processing]:
        """``GET /processings/template/{id}/processings`` (v1 shape: flat ``params``)."""
        rows = _items(self._template_call("GET", template_id, "/processings"), "results", "items")
        return [Processing.from_json(p) for p in rows if isinstance(p, Mapping)]

    def template_images(
        self,
        template_id: str,
        *,
        aoi_ids: Iterable[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> CatalogSearchResult:
        """``POST /processings/template/{id}/images``: one page of the images the
        template found (``isNew``, ``aoiIntersectionPercent`` in ``raw``), read on
        :attr:`catalog_scale` like :meth:`search_catalog`."""
        body: dict[str, Any] = {"limit": int(limit or self.catalog_page_size), "offset": offset}
        if aoi_ids is not None:
            body["aoiIds"] = [str(a) for a in aoi_ids]
        if sort_by is not None:
            body["sortBy"] = sort_by
        if sort_order is not None:
            body["sortOrder"] = sort_order
        data = self._template_call(
            "POST", template_id, "/images", json_body=body, idempotent=True, expect="json"
        )
        return CatalogSearchResult.from_json(
            data, cloud_cover_scale=check_scale(self.catalog_scale)
        )

    def add_template_aois(self, template_id: str, aois: Any) -> Any:
        """``POST /processings/template/{id}/aoi`` with ``{"aois": [{geometry, name}]}``
        (``aois`` as in :meth:`create_template`). Sent once."""
        body = {"aois": _template_aois(aois)}
        return self._template_call("POST", template_id, "/aoi", json_body=body, create=True)

    def update_template_aoi(
        self,
        template_id: str,
        aoi_id: str,
        *,
        name: str | None = None,
        geometry: Mapping[str, Any] | None = None,
    ) -> Any:
        """``POST /processings/template/{id}/aoi/{aoi_id}`` with ``{"name"}`` or
        ``{"geometry"}`` (POST, as the service serves it)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = str(name)[:64]
        if geometry is not None:
            body["geometry"] = dict(getattr(geometry, "__geo_interface__", geometry))
        if not body:
            raise ValueError("update_template_aoi needs name= or geometry=")
        return self._template_call(
            "POST", template_id, f"/aoi/{_P(aoi_id)}", json_body=body, idempotent=True
        )

    def delete_template_aois(self, template_id: str, aoi_ids: Iterable[str]) -> Any:
        """``DELETE /processings/template/{id}/aoi`` with the JSON body ``{"aoiIds"}``."""
        body = {"aoiIds": [str(a) for a in aoi_ids]}
        return self._template_call("DELETE", template_id, "/aoi", json_body=body)

    def mark_template_image_seen(self, template_id: str, image_id: str) -> Any:
        """``POST /processings/template/{id}/image/{image_id}/seen``."""
        return self._template_call(
            "POST", template_id, f"/image/{_P(image_id)}/seen", idempotent=True
        )

    def mark_template_images_seen(self, template_id: str) -> Any:
        """``PUT /processings/template/{id}/image/seenAll``: resets ``newImagesCount``."""
        return self._template_call("PUT", template_id, "/image/seenAll", json_body={})

    # -- helpers -----------------------------------------------------------------
    def models(self, *, refresh: bool = False) -> list[Model]:
        """The account's models (from :meth:`user_status`, cached unless ``refresh``)."""
        return self.user_status(refresh=refresh or self._user_status is None).models

    def find_model(self, name: str, *, refresh: bool = False) -> Model:
        """The account's model called ``name``, matched on friendly names.

        ``"buildings"``, ``"Buildings"`` and ``"🏠 Buildings"`` are the same model:
        emoji, symbols and punctuation are dropped, case folded and spaces collapsed.
        An exact match of that normal form wins (``"forest"`` is ``🌲 Forest``, not
        ``🌲↕️ Forest with heights``); failing that a unique model whose normal form
        starts with the query's words is taken; a model id also matches.

        Raises
        ------
        ModelNotFoundError
            No match or several, listing the available names.

        Examples
        --------
        >>> client.find_model("forest").name                           # doctest: +SKIP
        '🌲 Forest'
        """
        models = self.models(refresh=refresh)
        available = [m.name for m in models]
        for m in models:  # exact raw name or id
            if m.name == name or (m.id is not None and m.id == name):
                return m
        q = normalise_model_name(name)
        if not q:
            raise ModelNotFoundError(f"empty model name {name!r}", available=available)
        exact = [m for m in models if normalise_model_name(m.name) == q]
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            raise ModelNotFoundError(
                f"model name {name!r} is ambiguous: {', '.join(m.name for m in exact)}",
                available=available,
            )
        prefix = [m for m in models if (normalise_model_name(m.name) + " ").startswith(q + " ")]
        if len(prefix) == 1:
            return prefix[0]
        if len(prefix) > 1:
            raise ModelNotFoundError(
                f"model name {name!r} is ambiguous: {', '.join(m.name for m in prefix)}",
                available=available,
            )
        raise ModelNotFoundError(
            f"no model called {name!r}; available: {', '.join(available) or 'none'}",
            available=available,
        )

    def account_limits(self) -> AccountLimits:
        """The limits a planner needs.

        ``aoi_area_limit_km2`` is ``user.aoiAreaLimit`` of ``/projects/default`` (m² →
        km², None if absent); ``max_aois_per_processing`` comes from ``/user/status``
        (10 when absent).

        Examples
        --------
        >>> client.account_limits().aoi_area_limit_km2                 # doctest: +SKIP
        25.0
        """
        project = self.default_project()
        status = self.user_status()
        limit_m2 = project.user.aoi_area_limit if project.user else None
        return AccountLimits(
            aoi_area_limit_km2=None if limit_m2 is None else limit_m2 / 1e6,
            max_aois_per_processing=status.max_aois_per_processing
            or DEFAULT_MAX_AOIS_PER_PROCESSING,
            raw={"aoiAreaLimit": limit_m2, "maxAoisPerProcessing": status.max_aois_per_processing},
        )

    def model_price(
        self,
        name: str,
        blocks: Iterable[str] | Mapping[str, bool] | Iterable[Mapping[str, Any]] | None = None,
        data_provider: str | None = None,
        zoom: int | None = None,
    ) -> float:
        """Credits per km² for a model, its blocks and a data provider (a local
        estimate; :meth:`cost` is authoritative).

        ``price = model pricePerSqKm + mandatory block prices + enabled optional block
        prices + data provider price at zoom``. Optional blocks count only when
        enabled in ``blocks`` (names, ``{name: bool}`` or ``[{"name","enabled"}]``).
        Without a zoom the provider's highest listed price is used. Remember the
        service bills at least 1 km² per processing and rounds the total up.

        Examples
        --------
        >>> client.model_price("buildings", ["Classification"], "Mapbox", zoom=18)  # doctest: +SKIP
        19.0
        """
        model = self.find_model(name)
        enabled: dict[str, bool] = {}
        if isinstance(blocks, Mapping):
            enabled = {str(k).lower(): bool(v) for k, v in blocks.items()}
        elif blocks is not None:
            for b in blocks:
                if isinstance(b, str):
                    enabled[b.lower()] = True
                elif isinstance(b, Mapping) and "name" in b:
                    enabled[str(b["name"]).lower()] = bool(b.get("enabled", True))
        unknown = [k for k in enabled if model.block(k) is None]
        if unknown:
            raise ModelNotFoundError(
                f"{model.name} has no block(s) {', '.join(unknown)}",
                available=[b.name for b in model.blocks],
            )
        price = model.price_per_sq_km
        for b in model.blocks:
            on = enabled.get(b.name.lower(), enabled.get((b.display_name or "").lower()))
            if not b.optional or on:
                price += b.price
        if data_provider is not None:
            provider = self.user_status(refresh=False).data_provider(data_provider)
            if provider is None:
                raise ModelNotFoundError(
                    f"no data provider called {data_provider!r}",
                    available=[p.name for p in self.user_status(refresh=False).data_providers],
                )
            price += provider.price_at(zoom)
        return float(price)

    def describe_body(self, body: Mapping[str, Any]) -> dict:
        """A create/cost body as it would be sent, with secrets redacted (for logs)."""
        return redact(self._body(body), self._secrets())


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
