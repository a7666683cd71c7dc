"""The simulator's Data API answers, parsed the way Geoalert's QGIS plugin 3.6 parses them.

The plugin's response schemas are dataclasses filled with ``cls(**{known keys})``
(``SkipDataClass.from_dict``, mapflow-qgis ``mapflow/schema/base.py:9-23``): unknown keys
are dropped, a field without a default that is missing raises ``TypeError``, and datetimes
go through ``datetime.fromisoformat(value.replace("Z", "+00:00"))`` (``base.py:49-62``).
The field lists below are copied as data from ``mapflow/schema/data_catalog.py`` and
``mapflow/schema/layer.py`` at commit ``a5ff130`` (plugin version 3.6.0), with the JSON type
each field must have for the plugin's later use of it. Answers come from a real simulator
over loopback HTTP with plain ``requests``; expected values come from the bytes and names
sent, never from ``mapflow_geo``'s own client.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
import requests

from mapflow_geo.sim import serve

pytest.importorskip("rasterio")
from support.json_types import TYPES, type_ok
from support.raster import tiff_bytes  # noqa: E402

#: ``name: (json type, required)``; ``datetime`` = an ISO string the plugin parses,
#: ``uuid`` = a string ``UUID()`` accepts. A field is required when it has no default.
RASTER_LAYER = {  # mapflow/schema/layer.py:6-9
    "tileUrl": ("str", True),
    "tileJsonUrl": ("str", True),
}
MOSAIC_RETURN = {  # mapflow/schema/data_catalog.py:46-58 (MosaicReturnSchema)
    "id": ("uuid", True),
    "rasterLayer": (RASTER_LAYER, True),
    "name": ("str", True),
    "created_at": ("datetime", True),
    "footprint": ("str", True),
    "sizeInBytes": ("int", True),
    "tags": ("list|null", False),
}
IMAGE_METADATA = {  # mapflow/schema/data_catalog.py:63-71 (ImageMetadataSchema)
    "crs": ("str", True),
    "count": ("int", True),
    "width": ("int", True),
    "height": ("int", True),
    "dtypes": ("list", True),
    "nodata": ("float|null", True),
    "pixel_size": ("list", True),
}
IMAGE_RETURN = {  # mapflow/schema/data_catalog.py:73-91 (ImageReturnSchema)
    "id": ("uuid", True),
    "mosaic_id": ("uuid", True),
    "image_url": ("str", True),
    "preview_url_l": ("str", True),
    "preview_url_s": ("str", True),
    "uploaded_at": ("datetime", True),
    "file_size": ("int", True),
    # annotated ``dict`` but read as WKT: QgsGeometry.fromWkt (functional/layer_utils.py:235-244)
    "footprint": ("str", True),
    "filename": ("str", True),
    "checksum": ("str", True),
    "meta_data": (IMAGE_METADATA, True),
    "cog_link": ("str|null", True),  # Optional[str] without a default: the key is required
    "available_for_download": ("bool", False),
}
#: what the plugin reads of the other answers (functional/service/data_catalog.py)
CREATE_AND_UPLOAD_READS = {"mosaic_id": ("uuid", True)}  # :108-112, ``[...]['mosaic_id']``
DOWNLOAD_READS = {  # :514-529, ``data.get("download_url")``, ``data.get("filename", ...)``
    "download_url": ("str", True),
    "filename": ("str", False),
}
# Python 3.9 (older QGIS builds) takes only 0, 3 or 6 fraction digits in fromisoformat
ISO_39 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?([+-]\d\d:\d\d)?")


def _uuid_ok(v: str) -> bool:
    import uuid

    try:
        uuid.UUID(v)
    except ValueError:
        return False
    return True


def _datetime_ok(v: str) -> bool:
    s = v.replace("Z", "+00:00")
    try:
        dt.datetime.fromisoformat(s)
    except ValueError:
        return False
    return bool(ISO_39.fullmatch(s))


#: the JSON types and the two the plugin parses from strings
PLUGIN_TYPES = {
    **TYPES,
    "uuid": lambda v: isinstance(v, str) and _uuid_ok(v),
    "datetime": lambda v: isinstance(v, str) and _datetime_ok(v),
}


def plugin_problems(body, schema: dict, where: str = "$") -> list[str]:
    """Why the plugin's ``Schema.from_dict(body)`` would fail or misread ``body``."""
    if not isinstance(body, dict) or not body:
        return [f"{where}: {body!r:.60} is not a non-empty object (from_dict gives None)"]
    problems = []
    for name, (kind, required) in schema.items():
        if name not in body:
            if required:
                problems.append(f"{where}.{name}: missing (TypeError in the plugin)")
            continue
        v = body[name]
        if isinstance(kind, dict):
            problems += plugin_problems(v, kind, f"{where}.{name}")
        elif not type_ok(kind, v, PLUGIN_TYPES):
            problems.append(f"{where}.{name}: {v!r:.60} is not {kind}")
    return problems


def _multipart(name: str, data: bytes) -> dict:
    # as the plugin sends it: part ``file``, Content-Type image/tiff (data_catalog_api.py:379-390)
    return {"file": (name, data, "image/tiff")}


@pytest.fixture
def q():
    """A simulator and a ``requests`` session with Basic auth, as the plugin sends it."""
    with serve(processing_seconds=0) as sim:
        s = requests.Session()
        s.headers["Authorization"] = f"Basic {sim.token}"
        s.base = sim.url
        yield s


def _post_mosaic_with_image(q, data: bytes, name="Ortho", tags=("spring", "rgb")):
    # the plugin's own query: one ``tags`` value joined with ", " (data_catalog_api.py:55-60)
    url = f"{q.base}/rasters/mosaic/image?name={name}&tags={'%2C%20'.join(tags)}"
    return q.post(url, files=_multipart("ortho_1.tif", data), timeout=30)


def test_create_and_upload_answer_gives_the_plugin_its_mosaic(q):
    data = tiff_bytes()
    r = _post_mosaic_with_image(q, data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert not plugin_problems(body, CREATE_AND_UPLOAD_READS)
    # the plugin then GETs that mosaic and parses it (service/data_catalog.py:137-142)
    m = q.get(f"{q.base}/rasters/mosaic/{body['mosaic_id']}", timeout=30).json()
    assert not plugin_problems(m, MOSAIC_RETURN)
    assert m["name"] == "Ortho" and m["tags"] == ["spring", "rgb"]
    assert m["sizeInBytes"] == len(data)
    imgs = q.get(f"{q.base}/rasters/mosaic/{body['mosaic_id']}/image", timeout=30).json()
    assert [i["filename"] for i in imgs] == ["ortho_1.tif"]
    for i in imgs:  # service/data_catalog.py:340-341
        assert not plugin_problems(i, IMAGE_RETURN)


def test_upload_answer_parses_as_image_schema(q):
    mid = _post_mosaic_with_image(q, tiff_bytes()).json()["mosaic_id"]
    data = tiff_bytes()
    r = q.post(f"{q.base}/rasters/mosaic/{mid}/image", files=_multipart("b.tif", data))
    assert r.status_code == 200, r.text
    body = r.json()
    assert not plugin_problems(body, IMAGE_RETURN)
    assert body["mosaic_id"] == mid and body["filename"] == "b.tif"
    assert body["file_size"] == len(data)
    assert body["checksum"] == hashlib.md5(data).hexdigest()  # noqa: S324
    listed = q.get(f"{q.base}/rasters/mosaic/{mid}/image", timeout=30).json()
    assert body["id"] in {i["id"] for i in listed if i["filename"] == "b.tif"}


def test_get_image_parses_with_the_raster_s_real_metadata(q):
    data = tiff_bytes(size=40, count=4)
    mid = _post_mosaic_with_image(q, tiff_bytes(size=40, count=4)).json()["mosaic_id"]
    iid = q.post(f"{q.base}/rasters/mosaic/{mid}/image", files=_multipart("c.tif", data)).json()[
        "image_id"
    ]
    r = q.get(f"{q.base}/rasters/image/{iid}", timeout=30)
    body = r.json()
    assert r.status_code == 200 and not plugin_problems(body, IMAGE_RETURN), body
    meta = body["meta_data"]
    assert (meta["width"], meta["height"], meta["count"]) == (40, 40, 4)
    assert meta["dtypes"] == ["uint8"] * 4 and meta["crs"] == "EPSG:32637"
    # the previews the plugin GETs as given (data_catalog_api.py:287-312) are served
    for key in ("preview_url_s", "preview_url_l"):
        assert q.get(body[key], timeout=30).content
    # the rename answer is parsed in full too (service/data_catalog.py:481-482)
    ren = q.put(f"{q.base}/rasters/image/{iid}?name=renamed.tif", timeout=30).json()
    assert not plugin_problems(ren, IMAGE_RETURN) and ren["filename"] == "renamed.tif"


def test_download_link_serves_the_uploaded_bytes_without_the_token(q):
    data = tiff_bytes(size=32, value=9)
    mid = _post_mosaic_with_image(q, tiff_bytes(size=32)).json()["mosaic_id"]
    iid = q.post(f"{q.base}/rasters/mosaic/{mid}/image", files=_multipart("d.tif", data)).json()[
        "id"
    ]
    r = q.get(f"{q.base}/rasters/image/{iid}/download", timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert not plugin_problems(body, DOWNLOAD_READS)
    assert body["filename"] == "d.tif"
    # the plugin fetches the URL with a bare QNetworkRequest, no Authorization header
    # (service/data_catalog.py:531-535)
    got = requests.get(body["download_url"], timeout=30)
    assert got.status_code == 200 and got.content == data


def test_download_errors_are_the_statuses_the_plugin_explains(q):
    # 404 not found / no access, 403 not downloadable (data_catalog_api.py:360-370)
    assert q.get(f"{q.base}/rasters/image/{'0' * 32}/download", timeout=30).status_code == 404
    mid = q.post(f"{q.base}/rasters/mosaic", json={"name": "linked"}, timeout=30).json()["id"]
    link = q.post(
        f"{q.base}/rasters/mosaic/{mid}/link-image", json={"url": "s3://bucket/x.tif"}, timeout=30
    ).json()
    r = q.get(f"{q.base}/rasters/image/{link['image_id']}/download", timeout=30)
    assert r.status_code == 403
    # a tampered link is refused
    data = tiff_bytes()
    iid = _post_mosaic_with_image(q, data).json()["image_id"]
    url = q.get(f"{q.base}/rasters/image/{iid}/download", timeout=30).json()["download_url"]
    assert requests.get(url[:-1] + ("0" if url[-1] != "0" else "1"), timeout=30).status_code == 403


def test_the_parser_emulation_catches_what_the_plugin_chokes_on():
    """The checker itself: a missing required key, a bad date, a wrong type are caught."""
    good = {
        "id": "5f0c5d8e-5b6a-4f0e-9a43-1b2c3d4e5f60",
        "mosaic_id": "5f0c5d8e-5b6a-4f0e-9a43-1b2c3d4e5f61",
        "image_url": "s3://b/k.tif",
        "preview_url_l": "http://h/l",
        "preview_url_s": "http://h/s",
        "uploaded_at": "2026-01-02T03:04:05.123456Z",
        "file_size": 10,
        "footprint": "POLYGON EMPTY",
        "filename": "k.tif",
        "checksum": "abc",
        "meta_data": {
            "crs": "EPSG:4326",
            "count": 3,
            "width": 1,
            "height": 1,
            "dtypes": ["uint8"] * 3,
            "nodata": None,
            "pixel_size": [1.0, 1.0],
        },
        "cog_link": None,
    }
    assert plugin_problems(good, IMAGE_RETURN) == []
    assert plugin_problems({k: v for k, v in good.items() if k != "cog_link"}, IMAGE_RETURN)
    assert plugin_problems({**good, "uploaded_at": "2026-01-02T03:04:05.1234Z"}, IMAGE_RETURN)
    assert plugin_problems({**good, "file_size": "10"}, IMAGE_RETURN)
    bad_meta = {**good, "meta_data": {k: 1 for k in ("crs", "count")}}
    assert plugin_problems(bad_meta, IMAGE_RETURN)
