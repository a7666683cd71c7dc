"""``client.data.images``: images of the Data API (upload, read, preview, download)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from mapflow_geo._http import Transport, quote_path
from mapflow_geo.api._bodies import files_of, record_or_none
from mapflow_geo.api._paging import parsed
from mapflow_geo.exceptions import MapflowError, NotFoundError, TransportError
from mapflow_geo.models import Image, ImageDownload


class ImagesAPI:
    """``/rasters/mosaic/{id}/image``, ``/rasters/image/{id}``: images in mosaics."""

    def __init__(self, http: Transport) -> None:
        self._http = http

    def upload(
        self,
        mosaic_id: str,
        path_or_bytes: str | os.PathLike | bytes | BinaryIO,
        *,
        filename: str | None = None,
    ) -> Image:
        """``POST /rasters/mosaic/{id}/image`` (multipart ``file``). Sent once.

        Examples
        --------
        >>> client.data.images.upload(mosaic.id, "ortho.tif").id       # doctest: +SKIP
        """
        data = self._http.request(
            "POST",
            f"/rasters/mosaic/{quote_path(mosaic_id)}/image",
            files=files_of(path_or_bytes, filename),
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
            images = self.list(mosaic_id)
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

    def link(self, mosaic_id: str, url: str) -> dict:
        """``POST /rasters/mosaic/{id}/link-image`` with an ``s3://`` URL. Sent once."""
        data = self._http.request(
            "POST",
            f"/rasters/mosaic/{quote_path(mosaic_id)}/link-image",
            json_body={"url": url},
            create=True,
            expect="json_optional",
        )
        return dict(data) if isinstance(data, Mapping) else {"message": data}

    def list(self, mosaic_id: str) -> list[Image]:
        """``GET /rasters/mosaic/{id}/image``."""
        data = self._http.request("GET", f"/rasters/mosaic/{quote_path(mosaic_id)}/image")
        return parsed(data, Image.from_json, "results", "items", "images")

    def get(self, image_id: str) -> Image:
        """``GET /rasters/image/{id}``."""
        return Image.from_json(self._http.request("GET", f"/rasters/image/{quote_path(image_id)}"))

    def rename(self, image_id: str, name: str) -> Image | None:
        """``PUT /rasters/image/{id}?name=``."""
        data = self._http.request(
            "PUT",
            f"/rasters/image/{quote_path(image_id)}",
            params={"name": name},
            expect="json_optional",
        )
        return record_or_none(data, Image.from_json)

    def delete(self, image_id: str) -> None:
        """``DELETE /rasters/image/{id}``."""
        path = f"/rasters/image/{quote_path(image_id)}"
        self._http.request("DELETE", path, expect="json_optional")

    def preview(self, image_id: str, size: str = "s") -> bytes:
        """``GET /rasters/image/{id}/preview/{size}`` → image bytes (``s`` 256 px,
        ``l`` 1024 px). Falls back to the older ``/rasters/{id}/preview/{size}`` on 404."""
        if size not in ("s", "l"):
            raise ValueError(f"size must be 's' or 'l', got {size!r}")
        iid = quote_path(image_id)
        try:
            return self._http.request("GET", f"/rasters/image/{iid}/preview/{size}", expect="bytes")
        except NotFoundError as exc:
            not_found = exc
        try:
            return self._http.request("GET", f"/rasters/{iid}/preview/{size}", expect="bytes")
        except NotFoundError:
            raise not_found from None

    def download_link(self, image_id: str) -> ImageDownload:
        """``GET /rasters/image/{id}/download`` → ``{download_url, filename, expires_in}``:
        a short-lived link to the original file (404 no access, 403 not downloadable,
        409 not ready)."""
        path = f"/rasters/image/{quote_path(image_id)}/download"
        return ImageDownload.from_json(self._http.request("GET", path))

    def download(self, image_id: str) -> bytes:
        """The original file of an image: :meth:`download_link`, then its
        ``download_url`` fetched **only when it is on the API's own origin** (the session
        carries the token); a link elsewhere (a presigned storage URL) raises
        :class:`~mapflow_geo.exceptions.TransportError`: fetch
        ``download_link(id).download_url`` with a client of your choice."""
        link = self.download_link(image_id)
        if not link.download_url:
            raise TransportError(
                f"no download_url for image {image_id}", method="GET", path="/rasters/image"
            )
        return self._http.request("GET", link.download_url, expect="bytes")
