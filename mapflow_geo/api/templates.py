"""``client.templates``: planned processings, saved imagery searches over named AOIs
that the service re-runs daily."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from mapflow_geo._http import Transport, quote_path
from mapflow_geo.api._bodies import create_body, record_or_none
from mapflow_geo.api._paging import parsed
from mapflow_geo.api.catalog import CatalogAPI
from mapflow_geo.api.projects import ProjectsAPI
from mapflow_geo.models import CatalogSearchResult, Processing, Template, check_scale


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


class TemplatesAPI:
    """``/processings/template``: create, list, read, update, pause, resume, run."""

    def __init__(self, http: Transport, projects: ProjectsAPI, catalog: CatalogAPI) -> None:
        self._http = http
        self._projects = projects
        self._catalog = catalog

    def _call(self, method: str, template_id: str, tail: str = "", **kw: Any) -> Any:
        path = f"/processings/template/{quote_path(template_id)}{tail}"
        kw.setdefault("expect", "json_optional")
        return self._http.request(method, path, **kw)

    def create(
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
            sends none and processes by hand); ``blocks`` as for a processing's create
            (names, ``{name: enabled}`` or ``[{name, enabled}]``).
        **search_params
            Further ``searchParams`` (``productTypes``, ``dataProviders``,
            ``hideUnavailable``…).

        Examples
        --------
        >>> t = client.templates.create("North fields", [(field, "North")])  # doctest: +SKIP
        >>> t.status, t.is_active                                            # doctest: +SKIP
        """
        search = self._catalog.filters(date_from, date_to, max_cloud_cover, min_aoi_intersection)
        search.update(search_params)
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
            "projectId": project_id or self._projects.default_id(),
            "activeUntil": _active_until(active_until),
        }
        if processing_params is not None:  # blocks as a processing's: [{name, enabled}]
            body["processingParams"] = create_body(processing_params)
        return Template.from_json(
            self._http.request("POST", "/processings/template", json_body=body, create=True)
        )

    def list(self, project_id: str | None = None, *, user_id: str | None = None) -> list[Template]:
        """``GET /processings/template`` (all), ``/processings/template/project/{id}``
        (a project's; short records without ``searchParams``) or
        ``/processings/template/user/{id}``."""
        if project_id is not None:
            path = f"/processings/template/project/{quote_path(project_id)}"
        elif user_id is not None:
            path = f"/processings/template/user/{quote_path(user_id)}"
        else:
            path = "/processings/template"
        return parsed(
            self._http.request("GET", path), Template.from_json, "templates", "results", "items"
        )

    def get(self, template_id: str) -> Template:
        """``GET /processings/template/{id}`` (``search_results`` holds the images found)."""
        return Template.from_json(self._call("GET", template_id, expect="json"))

    def update(
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
        ``searchParams`` merged by the service; AOIs change through :meth:`add_aois`
        and friends, never here)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if active_until is not None:
            body["activeUntil"] = _active_until(active_until)
        search = self._catalog.filters(date_from, date_to, max_cloud_cover, min_aoi_intersection)
        search.update(search_params)
        if "aoi" in search or "aoiDetails" in search:
            raise ValueError("template AOIs change through add_aois, update_aoi, delete_aois")
        if search:
            body["searchParams"] = search
        data = self._call("PUT", template_id, json_body=body)
        return record_or_none(data, Template.from_json)

    def delete(self, template_id: str) -> None:
        """``DELETE /processings/template/{id}``."""
        self._call("DELETE", template_id)

    def pause(self, template_id: str) -> Any:
        """``POST /processings/template/{id}/pause``: stop the daily search."""
        return self._call("POST", template_id, "/pause", idempotent=True)

    def resume(self, template_id: str) -> Any:
        """``POST /processings/template/{id}/resume`` (refused over the active-templates
        cap); extend it with ``update(id, active_until=...)`` as the plugin does."""
        return self._call("POST", template_id, "/resume", idempotent=True)

    def restart(self, template_id: str) -> Any:
        """``POST /processings/template/{id}/restart``: search again (FAILED templates)."""
        return self._call("POST", template_id, "/restart", idempotent=True)

    def run(self, template_id: str, **body: Any) -> Processing:
        """``POST /processings/template/{id}/v2``: create **and start** a paid processing
        from images the template found. Sent once, like :meth:`ProcessingsAPI.create`.

        ``body`` is a create body (``name``, ``wdId``, ``geometry`` — the union of the
        chosen AOIs —, ``params`` with ``imagerySearch`` of the template's images,
        ``blocks``, ``meta``); ``updateTemplateGeometry`` defaults to false."""
        b = create_body(body)
        b.setdefault("updateTemplateGeometry", False)
        data = self._call(
            "POST", template_id, "/v2", json_body=b, create=True, meta=b.get("meta"), expect="json"
        )
        return Processing.from_json(data if isinstance(data, Mapping) else {})

    def processings(self, template_id: str) -> list[Processing]:
        """``GET /processings/template/{id}/processings`` (v1 shape: flat ``params``)."""
        data = self._call("GET", template_id, "/processings")
        return parsed(data, Processing.from_json, "results", "items")

    def images(
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
        template found (``isNew``, ``aoiIntersectionPercent`` in ``raw``), read on the
        catalog's scale like :meth:`CatalogAPI.search`."""
        body: dict[str, Any] = {"limit": int(limit or self._catalog.page_size), "offset": offset}
        if aoi_ids is not None:
            body["aoiIds"] = [str(a) for a in aoi_ids]
        if sort_by is not None:
            body["sortBy"] = sort_by
        if sort_order is not None:
            body["sortOrder"] = sort_order
        data = self._call(
            "POST", template_id, "/images", json_body=body, idempotent=True, expect="json"
        )
        return CatalogSearchResult.from_json(
            data, cloud_cover_scale=check_scale(self._catalog.scale)
        )

    def add_aois(self, template_id: str, aois: Any) -> Any:
        """``POST /processings/template/{id}/aoi`` with ``{"aois": [{geometry, name}]}``
        (``aois`` as in :meth:`create`). Sent once."""
        body = {"aois": _template_aois(aois)}
        return self._call("POST", template_id, "/aoi", json_body=body, create=True)

    def update_aoi(
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
            raise ValueError("update_aoi needs name= or geometry=")
        return self._call(
            "POST", template_id, f"/aoi/{quote_path(aoi_id)}", json_body=body, idempotent=True
        )

    def delete_aois(self, template_id: str, aoi_ids: Iterable[str]) -> Any:
        """``DELETE /processings/template/{id}/aoi`` with the JSON body ``{"aoiIds"}``."""
        body = {"aoiIds": [str(a) for a in aoi_ids]}
        return self._call("DELETE", template_id, "/aoi", json_body=body)

    def mark_image_seen(self, template_id: str, image_id: str) -> Any:
        """``POST /processings/template/{id}/image/{image_id}/seen``."""
        return self._call(
            "POST", template_id, f"/image/{quote_path(image_id)}/seen", idempotent=True
        )

    def mark_images_seen(self, template_id: str) -> Any:
        """``PUT /processings/template/{id}/image/seenAll``: resets ``newImagesCount``."""
        return self._call("PUT", template_id, "/image/seenAll", json_body={})
