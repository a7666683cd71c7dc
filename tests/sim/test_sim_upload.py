"""Simulator uploads: real GeoTIFF metadata (rasterio), mosaic rules, real previews."""

import io

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

PIL = pytest.importorskip("PIL.Image")
from support.raster import tiff_bytes  # noqa: E402


class _Up:
    """An upload answer ``{message, mosaic_id, image_id, image}``; ``.json()`` is the image
    (errors: the Data API's ``detail`` flattened to ``code``/``params``)."""

    def __init__(self, r):
        self.r, self.status_code = r, r.status_code

    def json(self):
        body = self.r.json()
        if "detail" in body:
            d = body["detail"]
            return {"code": d["code"], "params": d["parameters"], "message": d.get("message")}
        return body["image"]


def up(api, mosaic_id, data, name="a.tif"):
    return _Up(api.post(f"/rasters/mosaic/{mosaic_id}/image", files={"file": (name, data)}))


def test_real_metadata_footprint_and_preview(api):
    m = api.post("/rasters/mosaic", json={"name": "m"}).json()
    data = tiff_bytes()
    img = up(api, m["id"], data).json()
    meta = img["meta_data"]
    assert meta["crs"] == "EPSG:32637" and meta["count"] == 3
    assert meta["width"] == meta["height"] == 64
    assert meta["dtypes"] == ["uint8"] * 3 and meta["pixel_size"] == [0.5, 0.5]
    assert img["file_size"] == len(data)
    assert img["footprint"].startswith("POLYGON ((37.")  # EPSG:4326 near Moscow
    got = api.get(f"/rasters/image/{img['id']}").json()
    assert got["meta_data"] == meta
    for size, px in (("s", 256), ("l", 1024)):
        r = api.get(f"/rasters/image/{img['id']}/preview/{size}")
        assert r.status_code == 200 and r.content[:3] == b"\xff\xd8\xff"
        pic = np.asarray(PIL.open(io.BytesIO(r.content)).convert("RGB"), dtype=float)
        assert pic.shape == (px, px, 3)
        assert pic[..., 0].mean() > 150 and pic[..., 1].mean() < 60  # the raster's red


def test_mosaic_rules_enforced(api):
    m = api.post("/rasters/mosaic", json={"name": "m"}).json()
    assert up(api, m["id"], tiff_bytes()).status_code == 200
    for bad in (
        tiff_bytes(crs="EPSG:32638"),
        tiff_bytes(count=4),
        tiff_bytes(px=0.3),
    ):
        r = up(api, m["id"], bad)
        assert r.status_code == 400 and r.json()["code"] == "MOSAIC_IMAGE_MISMATCH"
    assert up(api, m["id"], tiff_bytes(value=7), "b.tif").status_code == 200
    assert len(api.get(f"/rasters/mosaic/{m['id']}/image").json()) == 2


@pytest.mark.mapflow_sim(strict_uploads=True)
def test_strict_uploads(api):
    m = api.post("/rasters/mosaic", json={"name": "m"}).json()
    r = up(api, m["id"], b"not a tiff")
    assert r.status_code == 400 and r.json()["code"] == "source-validator.ImageReadError"
    r = up(api, m["id"], tiff_bytes(dtype="uint16"))
    assert r.json()["code"] == "source-validator.DtypeNotAllowed"
    r = up(api, m["id"], tiff_bytes(count=2))
    assert r.json()["code"] == "source-validator.NChannelsNotAllowed"
    assert up(api, m["id"], tiff_bytes()).status_code == 200
