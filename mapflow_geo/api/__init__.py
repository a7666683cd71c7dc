"""The Mapflow API by area, each a small class over the one transport that
:class:`~mapflow_geo.client.MapflowClient` holds (``DESIGN.md``, *API by area*)."""

from __future__ import annotations

from mapflow_geo.api.account import AccountAPI
from mapflow_geo.api.catalog import CatalogAPI
from mapflow_geo.api.data import DataAPI
from mapflow_geo.api.images import ImagesAPI
from mapflow_geo.api.mosaics import MosaicsAPI
from mapflow_geo.api.pricing import normalise_model_name
from mapflow_geo.api.processings import ProcessingsAPI
from mapflow_geo.api.processings_v1 import ProcessingsV1API
from mapflow_geo.api.projects import ProjectsAPI
from mapflow_geo.api.protocol import RunClient
from mapflow_geo.api.review import ReviewAPI
from mapflow_geo.api.templates import TemplatesAPI

__all__ = [
    "AccountAPI",
    "CatalogAPI",
    "DataAPI",
    "ImagesAPI",
    "MosaicsAPI",
    "ProcessingsAPI",
    "ProcessingsV1API",
    "ProjectsAPI",
    "ReviewAPI",
    "RunClient",
    "TemplatesAPI",
    "normalise_model_name",
]
