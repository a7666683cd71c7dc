"""``client.data.mosaics``: mosaics (image collections) of the Data API."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, BinaryIO

from mapflow_geo._http import Transport, quote_path
from mapflow_geo.api._bodies import files_of, record_or_none
from mapflow_geo.api._paging import parsed
from mapflow_geo.api.images import ImagesAPI
from mapflow_geo.exceptions import MapflowError
from mapflow_geo.models import Image, Mosaic


class MosaicsAPI:
    """``/rasters/mosaic``: create (empty or with one image), read, update, delete."""

    def __init__(self, http: Transport, images: ImagesAPI) -> None:
        self._http = http
        self._images = images

    def create(self, name: str, tags: Iterable[str] | None = None) -> Mosaic:
        """``POST /rasters/mosaic``: an empty image collection (sent once)."""
        body: dict[str, Any] = {"name": name}
        if tags is not None:
            body["tags"] = list(tags)
        return Mosaic.from_json(
            self._http.request("POST", "/rasters/mosaic", json_body=body, create=True)
        )

    def create_and_upload(
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
        >>> m = client.data.mosaics.create_and_upload("ortho.tif", "survey")  # doctest: +SKIP
        >>> sources.my_imagery(mosaic_id=m.id)                                # doctest: +SKIP
        """
        tags = list(tags or [])
        params: list[tuple[str, Any]] = [("name", name)] + [("tags", t) for t in tags]
        data = self._http.request(
            "POST",
            "/rasters/mosaic/image",
            params=params,
            files=files_of(path_or_bytes, filename),
            create=True,
        )
        data = data if isinstance(data, Mapping) else {}
        if "mosaic_id" in data and "id" not in data:  # the service's {message, mosaic_id}
            mosaic_id = str(data["mosaic_id"])
            if isinstance(data.get("image"), Mapping):
                images = [Image.from_json(data["image"])]
            else:
                try:
                    images = self._images.list(mosaic_id)
                except MapflowError:  # created all the same: keep its id
                    images = []
            return Mosaic(id=mosaic_id, name=name, tags=tags, images=images, raw=dict(data))
        if "mosaic_id" in data and "id" in data and "tags" not in data and "image" not in data:
            # an image-shaped answer: the mosaic is its parent
            image = Image.from_json(data)
            return Mosaic(id=image.mosaic_id, name=name, tags=tags, images=[image], raw=dict(data))
        return Mosaic.from_json(data)

    def list(self) -> list[Mosaic]:
        """``GET /rasters/mosaic``."""
        data = self._http.request("GET", "/rasters/mosaic")
        return parsed(data, Mosaic.from_json, "results", "items", "mosaics")

    def get(self, mosaic_id: str) -> Mosaic:
        """``GET /rasters/mosaic/{id}``."""
        return Mosaic.from_json(
            self._http.request("GET", f"/rasters/mosaic/{quote_path(mosaic_id)}")
        )

    def update(
        self, mosaic_id: str, *, name: str | None = None, tags: Iterable[str] | None = None
    ) -> Mosaic | None:
        """``PUT /rasters/mosaic/{id}`` (``tags`` replaces the list)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if tags is not None:
            body["tags"] = list(tags)
        data = self._http.request(
            "PUT",
            f"/rasters/mosaic/{quote_path(mosaic_id)}",
            json_body=body,
            expect="json_optional",
        )
        return record_or_none(data, Mosaic.from_json)

    def delete(self, mosaic_id: str) -> None:
        """``DELETE /rasters/mosaic/{id}`` (deletes its images too)."""
        path = f"/rasters/mosaic/{quote_path(mosaic_id)}"
        self._http.request("DELETE", path, expect="json_optional")
