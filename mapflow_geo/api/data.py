"""``client.data``: the Data API, ``mosaics``, ``images`` and storage ``memory()``."""

from __future__ import annotations

from mapflow_geo._http import Transport
from mapflow_geo.api.images import ImagesAPI
from mapflow_geo.api.mosaics import MosaicsAPI
from mapflow_geo.models import Memory


class DataAPI:
    """The Data API: user imagery in mosaics (``/rasters``)."""

    def __init__(self, http: Transport) -> None:
        self._http = http
        #: Images: upload, link, list, read, rename, delete, preview, download.
        self.images = ImagesAPI(http)
        #: Mosaics: create (empty or with one image), list, read, update, delete.
        self.mosaics = MosaicsAPI(http, self.images)

    def memory(self) -> Memory:
        """``GET /rasters/memory``: Data API storage used and available (bytes)."""
        return Memory.from_json(self._http.request("GET", "/rasters/memory"))
