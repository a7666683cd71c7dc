"""Uploads through the Data API helpers: checks first, clear errors, then process."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

xr = pytest.importorskip("xarray")
rioxarray = pytest.importorskip("rioxarray")
rasterio = pytest.importorskip("rasterio")

import mapflow_geo  # noqa: E402,F401
from mapflow_geo import sources  # noqa: E402
from mapflow_geo.exceptions import ImageryError, MapflowError  # noqa: E402
from mapflow_geo.imagery import check_upload, raster_meta, upload  # noqa: E402

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02, "progress": False}


def ortho(
    *, epsg=32637, px=0.5, bands=3, dtype="uint8", size=100, x0=410000.0, y0=6180000.0, noise=False
):
    data = (np.arange(bands * size * size) % 251).reshape(bands, size, size).astype(dtype)
    if noise:  # incompressible
        data = np.random.default_rng(0).integers(0, 255, data.shape).astype(dtype)
    da = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": np.arange(1, bands + 1),
            "y": y0 - px * (np.arange(size) + 0.5),
            "x": x0 + px * (np.arange(size) + 0.5),
        },
        name="ortho",
    )
    return da.rio.write_crs(epsg)


def test_dataarray_upload_then_process_my_imagery(mapflow_sim, tmp_path):
    client = mapflow_sim.client()
    img = ortho().mapflow.upload(client=client, name="survey")
    assert img.id and img.mosaic_id
    assert img.meta_data["crs"] == "EPSG:32637" and img.meta_data["count"] == 3
    img2 = ortho(x0=410050.0).mapflow.upload(client=client, mosaic=img.mosaic_id)
    assert {i.id for i in client.data.images.list(img.mosaic_id)} == {img.id, img2.id}
    assert client.data.images.preview(img.id, "s")[:3] == b"\xff\xd8\xff"
    # process the uploaded imagery
    fp = shapely.from_wkt(client.data.images.get(img.id).raw["footprint"])
    aoi = gpd.GeoDataFrame(geometry=[fp.buffer(0.002)], crs=4326)
    res = aoi.mapflow.process(
        "buildings",
        client=client,
        source=sources.my_imagery(mosaic_id=img.mosaic_id),
        run_dir=tmp_path,
        **FAST,
    )
    assert res.complete
    body = next(iter(mapflow_sim.state["processings"].values()))["params"]
    assert body["sourceParams"]["myImagery"]["mosaicId"] == img.mosaic_id
    ds = res.to_xarray(resolution_m=20)
    assert int(ds["count"].sum()) == len(res.features)
    assert ds.rio.crs is not None


def test_path_upload_and_each_rule_has_a_clear_error(mapflow_sim, tmp_path):
    client = mapflow_sim.client()
    path = tmp_path / "a.tif"
    ortho().rio.to_raster(path)
    img = upload(path, client=client, name="m")
    mid = img.mosaic_id
    cases = {
        "dtype": ortho(dtype="uint16"),
        "bands": ortho(bands=2),
        "pixel_size": ortho(px=2.0),
        "mosaic_crs": ortho(epsg=32638),
        "mosaic_bands": ortho(bands=4),
        "mosaic_resolution": ortho(px=0.3),
    }
    for rule, da in cases.items():
        with pytest.raises(ImageryError) as err:
            da.mapflow.upload(client=client, mosaic=mid)
        assert err.value.rule == rule, (rule, err.value)
        assert isinstance(err.value, (MapflowError, ValueError))
    nocrs = xr.DataArray(ortho().values, dims=("band", "y", "x"))
    with pytest.raises(ImageryError, match="no CRS") as err:
        nocrs.mapflow.upload(client=client, mosaic=mid)
    assert err.value.rule == "georeference"
    # nothing refused was sent
    assert len(client.data.images.list(mid)) == 1
    bad = tmp_path / "plain.txt"
    bad.write_bytes(b"hello")
    with pytest.raises(ImageryError, match="not a readable raster"):
        upload(bad, client=client, mosaic=mid)


@pytest.mark.mapflow_sim(memory_limit_bytes=20_000)
def test_quota_checked_before_sending(mapflow_sim):
    client = mapflow_sim.client()
    with pytest.raises(ImageryError, match="storage left") as err:
        ortho(size=200, noise=True).mapflow.upload(client=client, name="big")
    assert err.value.rule == "quota"
    assert mapflow_sim.count(method="POST", path="/rest/rasters/mosaic/image") == 0
    # unchecked, the server refuses it itself
    from mapflow_geo.exceptions import BadRequestError

    with pytest.raises(BadRequestError, match="MemoryLimitExceeded"):
        ortho(size=200, noise=True).mapflow.upload(client=client, name="big", check=False)


def test_check_upload_geographic_pixel_and_file_cap(tmp_path):
    path = tmp_path / "geo.tif"
    ortho(epsg=4326, px=0.00001, x0=37.6, y0=55.7).rio.to_raster(path)
    meta = raster_meta(path)
    assert meta["pixel_size_m"] == pytest.approx(0.63, abs=0.01)  # 1e-5° of longitude at 55.7°N
    check_upload(meta)
    with pytest.raises(ImageryError) as err:
        check_upload(meta, max_file_bytes=10)
    assert err.value.rule == "file_size"
    assert ortho().mapflow.check()["count"] == 3


def test_dataarray_accessor_is_lazy():
    import subprocess
    import sys

    code = (
        "import sys, mapflow_geo\n"
        "assert 'xarray' not in sys.modules, 'importing mapflow_geo imported xarray'\n"
        "import xarray as xr\n"
        "assert hasattr(xr.DataArray([1]), 'mapflow')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
