"""``RunClient``: what the layers above the API ask of a client (runs, monitors,
imagery, tile layers, result review). :class:`~mapflow_geo.client.MapflowClient` is
one; anything with the same areas is another."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mapflow_geo.api.account import AccountAPI
from mapflow_geo.api.catalog import CatalogAPI
from mapflow_geo.api.data import DataAPI
from mapflow_geo.api.processings import ProcessingsAPI
from mapflow_geo.api.projects import ProjectsAPI
from mapflow_geo.api.templates import TemplatesAPI


@runtime_checkable
class RunClient(Protocol):
    """A Mapflow client by API area, over one transport."""

    @property
    def base_url(self) -> str:
        """The API's base URL (its host keys a run)."""
        ...

    @property
    def projects(self) -> ProjectsAPI: ...

    @property
    def processings(self) -> ProcessingsAPI: ...

    @property
    def data(self) -> DataAPI: ...

    @property
    def catalog(self) -> CatalogAPI: ...

    @property
    def templates(self) -> TemplatesAPI: ...

    @property
    def account(self) -> AccountAPI: ...

    def _secrets(self) -> tuple[str, ...]:
        """Every form of the token that must never be written."""
        ...
