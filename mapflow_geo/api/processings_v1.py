"""``client.processings.v1``: the first version of the processing API (flat ``params``)."""

from __future__ import annotations

from typing import Any

from mapflow_geo._http import Transport, quote_path
from mapflow_geo.api._bodies import as_int_cost, create_body
from mapflow_geo.api._paging import parsed
from mapflow_geo.models import Processing


class ProcessingsV1API:
    """``POST/GET /processings``, ``/projects/{id}/processings`` and ``/processing/cost``."""

    def __init__(self, http: Transport) -> None:
        self._http = http

    def create(self, **body: Any) -> Processing:
        """``POST /processings`` (v1: flat ``params`` such as ``source_type``/``url``).
        Sent once, like :meth:`ProcessingsAPI.create`."""
        b = create_body(body)
        data = self._http.request(
            "POST", "/processings", json_body=b, create=True, meta=b.get("meta")
        )
        return Processing.from_json(data)

    def get(self, processing_id: str) -> Processing:
        """``GET /processings/{id}``."""
        path = f"/processings/{quote_path(processing_id)}"
        return Processing.from_json(self._http.request("GET", path))

    def list(self, project_id: str | None = None) -> list[Processing]:
        """``GET /processings`` or ``/projects/{id}/processings``."""
        path = (
            "/processings"
            if project_id is None
            else f"/projects/{quote_path(project_id)}/processings"
        )
        data = self._http.request("GET", path)
        return parsed(data, Processing.from_json, "results", "items", "processings")

    def cost(self, **body: Any) -> int:
        """``POST /processing/cost`` (v1 body: ``wdId``, ``geometry``, flat ``params``)."""
        return as_int_cost(
            self._http.request(
                "POST", "/processing/cost", json_body=create_body(body), idempotent=True
            )
        )
