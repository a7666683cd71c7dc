"""``client.projects``: projects, the default one and sharing."""

from __future__ import annotations

from typing import Any

from mapflow_geo._http import Transport, quote_path
from mapflow_geo.api._bodies import record_or_none
from mapflow_geo.api._paging import listing_of, one_page, walk
from mapflow_geo.models import Listing, Project


class ProjectsAPI:
    """``/projects``: list, read, create, update, delete and share projects."""

    #: Page size of :meth:`list` (Geoalert's QGIS plugin uses 20); set on an instance to
    #: change it.
    page_size: int = 20

    def __init__(self, http: Transport) -> None:
        self._http = http
        self._default_id: str | None = None

    def list(self) -> Listing:
        """Every project: ``POST /projects/page`` walked to its ``total`` (pages of
        :attr:`page_size`, most recently updated first), or ``GET /projects`` where the
        paged route is not served (404/405)."""
        pages = walk(
            self._http,
            "/projects/page",
            {"sortBy": "UPDATED", "sortOrder": "DESC"},
            self.page_size,
            lambda: iter([one_page(self._http.request("GET", "/projects"), Project.from_json)]),
            Project.from_json,
        )
        found, page = listing_of(pages)
        return Listing(found, total=page.total, complete=page.complete)

    def default(self) -> Project:
        """``GET /projects/default``: the default project, its ``user`` carrying
        ``aoi_area_limit`` (m²)."""
        project = Project.from_json(self._http.request("GET", "/projects/default"))
        if project.id:
            self._default_id = project.id
        return project

    def default_id(self) -> str | None:
        """The default project's id (one ``GET /projects/default`` per client, cached)."""
        if self._default_id is None:
            self.default()
        return self._default_id

    def get(self, project_id: str) -> Project:
        """``GET /projects/{id}``."""
        return Project.from_json(self._http.request("GET", f"/projects/{quote_path(project_id)}"))

    def create(self, name: str, description: str | None = None) -> Project:
        """``POST /projects`` (sent once; never retried after it may have arrived).

        Examples
        --------
        >>> client.projects.create("Urban 2026", "buildings").id       # doctest: +SKIP
        """
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        return Project.from_json(
            self._http.request("POST", "/projects", json_body=body, create=True)
        )

    def update(
        self, project_id: str, *, name: str | None = None, description: str | None = None
    ) -> Project | None:
        """``PUT /projects/{id}``: rename and/or re-describe."""
        body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        data = self._http.request(
            "PUT", f"/projects/{quote_path(project_id)}", json_body=body, expect="json_optional"
        )
        return record_or_none(data, Project.from_json)

    def delete(self, project_id: str) -> None:
        """``DELETE /projects/{id}`` (cascades to its processings)."""
        self._http.request("DELETE", f"/projects/{quote_path(project_id)}", expect="json_optional")

    def share(self, project_id: str, email: str, role: str = "readonly") -> Any:
        """``POST /projects/share``. ``role``: readonly, contributor, maintainer, owner."""
        body = {"projectId": project_id, "email": email, "role": role}
        return self._http.request(
            "POST", "/projects/share", json_body=body, idempotent=True, expect="json_optional"
        )

    def with_project(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with ``projectId`` (the default project's when missing): Geoalert's
        clients always name the project."""
        if not body.get("projectId"):
            pid = self.default_id()
            if pid:
                body = {**body, "projectId": pid}
        return body
