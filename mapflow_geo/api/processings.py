"""``client.processings``: processings (v2), their cost, results and history; the first
version of the API under ``v1`` and the review workflow under ``review``."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from mapflow_geo._http import Transport, quote_path
from mapflow_geo._secrets import redact
from mapflow_geo.api._bodies import as_int_cost, create_body, record_or_none
from mapflow_geo.api._paging import created_key, listing_of, no_route, one_page, walk
from mapflow_geo.api.account import AccountAPI
from mapflow_geo.api.processings_v1 import ProcessingsV1API
from mapflow_geo.api.projects import ProjectsAPI
from mapflow_geo.api.review import ReviewAPI
from mapflow_geo.exceptions import APIError, TransportError
from mapflow_geo.models import Aoi, Listing, Model, Page, Processing, ProcessingStats
from mapflow_geo.sources import create_body as processing_body

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_STATS_OUTPUTS = {"json": "JSON", "csv": "CSV"}


class ProcessingsAPI:
    """``/processings``: create (paid), read, list, change and delete processings; their
    cost, AOIs and results; the processing history."""

    #: Page size of :meth:`pages` (Geoalert's QGIS plugin uses 30); set on an instance to
    #: change it.
    page_size: int = 30

    def __init__(self, http: Transport, projects: ProjectsAPI, account: AccountAPI) -> None:
        self._http = http
        self._projects = projects
        self._account = account
        #: The first version of the processing API.
        self.v1 = ProcessingsV1API(http)
        #: Rating, acceptance and rejection (accounts with ``reviewWorkflowEnabled``).
        self.review = ReviewAPI(http)

    # -- create ------------------------------------------------------------------
    def create(self, **body: Any) -> Processing:
        """``POST /processings/v2``: create **and start** a paid processing.

        Sent once. If the outcome is unknown (timeout, reset, unreadable answer after
        the request was sent) :class:`~mapflow_geo.exceptions.AmbiguousCreateError` is
        raised: it may have been created and charged; reconcile with :meth:`list` and
        ``meta``.

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
        >>> p = client.processings.create(                             # doctest: +SKIP
        ...     name="demo", projectId=project.id, wdName="🏠 Buildings", geometry=geom,
        ...     params=sources.data_provider("Mapbox", zoom=18),
        ...     meta={"run": "r1", "tile": "7"})
        """
        b = self._projects.with_project(create_body(body))
        data = self._http.request(
            "POST", "/processings/v2", json_body=b, create=True, meta=b.get("meta")
        )
        return Processing.from_json(data)

    def body(
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
        (:meth:`AccountAPI.find_model`) and ``projectId`` the default project's when not
        given.

        Always ``projectId``, ``wdId``, ``params.sourceParams`` (Mapbox at zoom 18 when
        ``source`` is None, the documented default) and every optional block of the
        model with ``enabled`` true or false.

        Examples
        --------
        >>> body = client.processings.body("buildings", geom, blocks=["OSM"])  # doctest: +SKIP
        >>> client.processings.cost(**body)                                   # doctest: +SKIP
        """
        found = model if isinstance(model, Model) else self._account.find_model(str(model))
        return processing_body(
            found,
            geometry,
            project_id=project_id or self._projects.default_id(),
            source=source,
            blocks=blocks,
            name=name,
            meta=meta,
        )

    def describe_body(self, body: Mapping[str, Any]) -> dict:
        """A create/cost body as it would be sent, with secrets redacted (for logs)."""
        return redact(create_body(body), self._http.secrets)

    def cost(self, **body: Any) -> int:
        """``POST /processing/cost/v2`` → credits (int). Takes the create body, or
        ``wdId`` + ``areaSqKm`` (``area_sq_km=``).

        Examples
        --------
        >>> client.processings.cost(wdId=model.id, areaSqKm=1.5,       # doctest: +SKIP
        ...                         params=sources.data_provider("Mapbox", zoom=18))
        """
        b = create_body(body)
        if "geometry" in b:  # the create body: priced as it will be sent
            b = self._projects.with_project(b)
        return as_int_cost(
            self._http.request("POST", "/processing/cost/v2", json_body=b, idempotent=True)
        )

    # -- read and list -----------------------------------------------------------
    def get(self, processing_id: str) -> Processing:
        """``GET /processings/{id}/v2``."""
        path = f"/processings/{quote_path(processing_id)}/v2"
        return Processing.from_json(self._http.request("GET", path))

    def list(self, project_id: str | None = None) -> Listing:
        """Every processing of a project, newest first: one complete sweep of
        :meth:`pages` (``POST /projects/{id}/processings/v2/page``, or the documented
        ``GET .../processings/v2`` where that is not served). Without a project,
        ``GET /processings/v2`` (unpaged).

        Returns
        -------
        Listing
            A list of :class:`Processing` with ``total`` (the service's count) and
            ``complete`` (the sweep's offsets reached ``total``).
        """
        found, page = listing_of(self.pages(project_id))
        return Listing(found, total=page.total, complete=page.complete)

    def pages(
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
        dedupe by id; :meth:`iter` does).

        Examples
        --------
        >>> for page in client.processings.pages(project.id):          # doctest: +SKIP
        ...     print(page.offset, len(page), page.total)
        """
        size = int(page_size or self.page_size)

        def unpaged(path: str) -> Iterator[Page]:
            page = one_page(self._http.request("GET", path), Processing.from_json)
            if sort.upper() == "CREATED":
                page.items.sort(key=created_key, reverse=order.upper() == "DESC")
            yield page

        if project_id is None:
            yield from unpaged("/processings/v2")
            return
        pid = quote_path(project_id)
        body: dict[str, Any] = {"sortBy": sort, "sortOrder": order}
        if terms:
            body["terms"] = terms
        yield from walk(
            self._http,
            f"/projects/{pid}/processings/v2/page",
            body,
            size,
            lambda: unpaged(f"/projects/{pid}/processings/v2"),
            Processing.from_json,
        )

    def iter(
        self,
        project_id: str | None = None,
        *,
        page_size: int | None = None,
        sort: str = "CREATED",
        order: str = "DESC",
        terms: str | None = None,
    ) -> Iterator[Processing]:
        """A project's processings page by page (newest first by default), each id once:
        :meth:`pages` flattened and deduplicated.

        Examples
        --------
        >>> newest = next(client.processings.iter(project.id))         # doctest: +SKIP
        """
        seen: set[str] = set()
        for page in self.pages(
            project_id, page_size=page_size, sort=sort, order=order, terms=terms
        ):
            for p in page.items:
                if p.id is not None:
                    if p.id in seen:
                        continue
                    seen.add(p.id)
                yield p

    # -- change ------------------------------------------------------------------
    def move(self, processing_id: str, project_id: str) -> Processing | None:
        """``PUT /processings/{id}`` with ``{"projectId": ...}``: link to another project."""
        data = self._http.request(
            "PUT",
            f"/processings/{quote_path(processing_id)}",
            json_body={"projectId": project_id},
            expect="json_optional",
        )
        return record_or_none(data, Processing.from_json)

    def rename(
        self, processing_id: str, name: str, description: str | None = None
    ) -> Processing | None:
        """``PUT /processings/{id}/v2`` with ``{name, description}`` (description left out
        when None), as Geoalert's plugin renames; the older ``PUT /processing/{id}`` where
        the v2 route is not served (404/405). Returns the renamed processing."""
        return self.update(processing_id, name=name, description=description)

    def update(
        self, processing_id: str, *, name: str | None = None, description: str | None = None
    ) -> Processing | None:
        """Rename and/or re-describe: ``PUT /processings/{id}/v2``, falling back to the
        published ``PUT /processing/{id}`` (singular) on 404/405."""
        body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        pid = quote_path(processing_id)
        return self._v2_or_older(
            "PUT", f"/processings/{pid}/v2", f"/processing/{pid}", json_body=body
        )

    def _v2_or_older(self, method: str, path: str, older: str, **kw: Any) -> Processing | None:
        """``method path``, or the older published route when the service has no such
        route (404/405); the answer as a :class:`Processing` when it is one."""
        try:
            data = self._http.request(method, path, expect="json_optional", **kw)
        except APIError as exc:
            if not no_route(exc):
                raise
            data = self._http.request(method, older, expect="json_optional", **kw)
        return record_or_none(data, Processing.from_json)

    def delete(self, processing_id: str) -> None:
        """``DELETE /processings/{id}``."""
        path = f"/processings/{quote_path(processing_id)}"
        self._http.request("DELETE", path, expect="json_optional")

    def restart(self, processing_id: str) -> Processing | None:
        """``POST /processings/{id}/restart/v2`` (the older ``/restart`` on 404/405):
        rerun failed partitions only (retried: restarting twice restarts nothing more)."""
        pid = quote_path(processing_id)
        return self._v2_or_older(
            "POST", f"/processings/{pid}/restart/v2", f"/processings/{pid}/restart", idempotent=True
        )

    # -- AOIs and results --------------------------------------------------------
    def aois(self, processing_id: str) -> list[Aoi]:
        """``GET /processings/{id}/aois``."""
        data = self._http.request("GET", f"/processings/{quote_path(processing_id)}/aois")
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

    def result(self, processing_id: str, aoi_id: str | None = None) -> dict:
        """``GET /processings/{id}/result[?aoiId=]`` → GeoJSON FeatureCollection (dict).

        Examples
        --------
        >>> fc = client.processings.result(p.id)                       # doctest: +SKIP
        >>> fc["type"]                                                 # doctest: +SKIP
        'FeatureCollection'
        """
        path = f"/processings/{quote_path(processing_id)}/result"
        params = {"aoiId": aoi_id} if aoi_id is not None else None
        data = self._http.request("GET", path, params=params)
        if not isinstance(data, Mapping):
            raise TransportError(
                f"result of processing {processing_id} is not a GeoJSON object",
                method="GET",
                path=path,
            )
        return dict(data)

    def result_bytes(self, processing_id: str, aoi_id: str | None = None) -> bytes:
        """The raw result body (GeoJSON bytes), e.g. to save to disk."""
        return self._http.request(
            "GET",
            f"/processings/{quote_path(processing_id)}/result",
            params={"aoiId": aoi_id} if aoi_id is not None else None,
            expect="bytes",
        )

    # -- history -----------------------------------------------------------------
    @overload
    def stats(self, *, output: Literal["json"] = "json", **filters: Any) -> ProcessingStats: ...
    @overload
    def stats(self, *, output: Literal["csv"], **filters: Any) -> pd.DataFrame: ...
    def stats(self, *, output: str = "json", **filters: Any) -> ProcessingStats | pd.DataFrame:
        """``POST /processings/stats?type=JSON|CSV``: the processing history.

        Filters are sent as the JSON body: ``dateFrom``, ``dateTo``, ``statuses``,
        ``terms`` (older page) or ``page``, ``perPage``, ``sort``, ``filter`` (2026).

        Parameters
        ----------
        output : {"json", "csv"}, default "json"
            ``"json"``: a :class:`~mapflow_geo.models.ProcessingStats` with totals;
            ``"csv"``: the service's CSV export as a :class:`pandas.DataFrame`.

        Examples
        --------
        >>> client.processings.stats(statuses=["OK"]).total            # doctest: +SKIP
        2
        >>> client.processings.stats(output="csv").columns             # doctest: +SKIP
        """
        kind = _STATS_OUTPUTS.get(str(output).lower())
        if kind is None:
            raise ValueError(f"output must be 'json' or 'csv', got {output!r}")
        data = self._http.request(
            "POST",
            "/processings/stats",
            params={"type": kind},
            json_body=filters,
            idempotent=True,
            expect="text" if kind == "CSV" else "json",
        )
        if kind == "JSON":
            return ProcessingStats.from_json(data)
        import pandas as pd

        if not data or not data.strip():
            return pd.DataFrame()
        return pd.read_csv(io.StringIO(data))
