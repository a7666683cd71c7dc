"""Projects, processing management, stats, Data API, catalog."""

from __future__ import annotations

import csv
import io
import json

import pytest
from support.sim_http import SMALL, box

try:
    from PIL import Image
except ImportError:  # the simulator draws PNG previews without Pillow
    Image = None

PNG = b"\x89PNG\r\n\x1a\n"


def test_projects_crud_and_share(api):
    default = api.get("/projects/default").json()
    assert default["isDefault"] is True and default["name"] == "Default"
    for k in (
        "id",
        "name",
        "description",
        "progress",
        "aoiCount",
        "area",
        "user",
        "isDefault",
        "created",
        "updated",
        "workflowDefs",
    ):
        assert k in default
    assert {"aoiAreaLimit", "areaLimit", "processedArea", "email", "login"} <= set(default["user"])
    p = api.post("/projects", json={"name": "A", "description": "d"}).json()
    assert p["name"] == "A" and p["isDefault"] is False
    assert {x["id"] for x in api.get("/projects").json()} == {default["id"], p["id"]}
    u = api.put(f"/projects/{p['id']}", json={"name": "B"}).json()
    assert u["name"] == "B" and u["description"] == "d"
    assert api.get(f"/projects/{p['id']}").json()["name"] == "B"
    for role in ("readonly", "contributor", "maintainer", "owner", "READONLY"):
        r = api.post("/projects/share", json={"projectId": p["id"], "email": "x@y.z", "role": role})
        assert r.status_code == 200, r.text
    r = api.post("/projects/share", json={"projectId": p["id"], "email": "x@y.z", "role": "god"})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_ROLE"
    assert (
        api.post(
            "/projects/share", json={"projectId": "nope", "email": "x@y.z", "role": "readonly"}
        ).status_code
        == 404
    )
    # delete cascades to processings
    proc = api.create(projectId=p["id"])
    assert api.delete(f"/projects/{p['id']}").status_code in (200, 204)
    assert api.get(f"/projects/{p['id']}").status_code == 404
    assert api.get(f"/processings/{proc['id']}/v2").status_code == 404
    r = api.delete(f"/projects/{default['id']}")
    assert r.status_code == 400 and r.json()["code"] == "CANNOT_DELETE_DEFAULT_PROJECT"


def test_project_progress_and_area(api):
    p = api.post("/projects", json={"name": "A"}).json()
    a = api.create(projectId=p["id"])
    b = api.create(box(37.6, 55.75, 37.61, 55.755), projectId=p["id"])
    pj = api.get(f"/projects/{p['id']}").json()
    assert pj["area"] == a["area"] + b["area"] and pj["aoiCount"] == 2
    assert pj["progress"]["status"] == "OK" and pj["progress"]["percentCompleted"] == 100


def test_processing_management(api):
    p1 = api.post("/projects", json={"name": "one"}).json()["id"]
    p2 = api.post("/projects", json={"name": "two"}).json()["id"]
    proc = api.create(projectId=p1, name="orig")
    assert [x["id"] for x in api.get(f"/projects/{p1}/processings/v2").json()] == [proc["id"]]
    assert [x["id"] for x in api.get(f"/projects/{p1}/processings").json()] == [proc["id"]]
    # move
    r = api.put(f"/processings/{proc['id']}", json={"projectId": p2})
    assert r.status_code == 200 and r.json()["projectId"] == p2
    assert api.get(f"/projects/{p1}/processings/v2").json() == []
    # rename
    r = api.put(f"/processing/{proc['id']}", json={"name": "new", "description": "dd"})
    assert r.json()["name"] == "new" and r.json()["description"] == "dd"
    assert api.get(f"/processings/{proc['id']}/v2").json()["name"] == "new"
    # move to unknown project
    assert api.put(f"/processings/{proc['id']}", json={"projectId": "nope"}).status_code == 404
    # restart of an OK processing is a harmless no-op
    assert api.post(f"/processings/{proc['id']}/restart").status_code == 200
    # delete
    assert api.delete(f"/processings/{proc['id']}").status_code in (200, 204)
    assert api.get(f"/processings/{proc['id']}/v2").status_code == 404
    assert api.delete(f"/processings/{proc['id']}").status_code == 404


def test_v1_create_variants(api):
    legacy = {
        "source_type": "xyz",
        "url": "https://services.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
    }
    r = api.post(
        "/processings",
        json={"name": "v1", "wdName": "🏠 Buildings", "geometry": SMALL, "params": legacy},
    )
    assert r.status_code == 200
    p = r.json()
    assert p["cost"] == 13 and p["params"] == legacy
    r = api.post(
        "/processings",
        json={
            "name": "v1",
            "wdName": "🏠 Buildings",
            "geometry": SMALL,
            "params": {"data_provider": "Mapbox"},
        },
    )
    assert r.json()["cost"] == 16
    assert {x["id"] for x in api.get("/processings").json()} >= {p["id"]}
    # wdName is required (or wdId)
    r = api.post("/processings", json={"name": "v1", "geometry": SMALL})
    assert r.status_code == 400 and r.json()["code"] == "MODEL_REQUIRED"


def test_stats_json_and_csv(mapflow_sim, api):
    api.create(name="alpha")
    api.create(name="beta")
    r = api.post(
        "/processings/stats?type=JSON",
        json={
            "dateFrom": "2000-01-01T00:00:00Z",
            "dateTo": "2100-01-01T00:00:00Z",
            "statuses": ["OK"],
        },
    )
    body = r.json()
    assert body["total"] == body["count"] == 2
    row = body["results"][0]
    for k in (
        "projectName",
        "name",
        "email",
        "area",
        "cost",
        "created",
        "completionDate",
        "status",
        "percentCompleted",
        "archived",
        "dataProvider",
        "linkToMap",
        "scenario",
    ):
        assert k in row
    assert isinstance(row["area"], str) and isinstance(row["cost"], str)
    assert body["totalCost"] == sum(int(x["cost"]) for x in body["results"])
    assert (
        api.post("/processings/stats?type=JSON", json={"statuses": ["FAILED"]}).json()["total"] == 0
    )
    assert api.post("/processings/stats?type=JSON", json={"terms": "alpha"}).json()["total"] == 1
    assert (
        api.post("/processings/stats?type=JSON", json={"dateTo": "2000-01-01T00:00:00Z"}).json()[
            "total"
        ]
        == 0
    )
    assert (
        api.post("/processings/stats?type=JSON", json={"page": 1, "perPage": 1}).json()["count"]
        == 1
    )
    r = api.post("/processings/stats?type=CSV", json={})
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2 and {"name", "area", "cost", "status"} <= set(rows[0])


def test_data_api(api):
    m = api.post("/rasters/mosaic", json={"name": "m1", "tags": ["a", "b"]}).json()
    assert m["name"] == "m1" and m["tags"] == ["a", "b"] and "created_at" in m
    assert [x["id"] for x in api.get("/rasters/mosaic").json()] == [m["id"]]
    u = api.put(f"/rasters/mosaic/{m['id']}", json={"name": "m2", "tags": ["c"]}).json()
    assert u["name"] == "m2" and u["tags"] == ["c"]
    data = b"II*\x00" + bytes(1000)
    upl = api.post(f"/rasters/mosaic/{m['id']}/image", files={"file": ("ortho.tif", data)}).json()
    assert upl["message"] == "Files successfully uploaded" and upl["mosaic_id"] == m["id"]
    img = upl["image"]
    assert (
        img["file_size"] == 1000 + 4
        and img["filename"] == "ortho.tif"
        and img["mosaic_id"] == m["id"]
    )
    # a file that is not a TIFF is taken too
    api.post(f"/rasters/mosaic/{m['id']}/image", files={"file": ("notes.txt", b"hello")})
    link = api.post(
        f"/rasters/mosaic/{m['id']}/link-image", json={"url": "s3://bucket/path/image.tif"}
    ).json()
    assert (
        link["message"] == "File successfully linked to a mosaic" and link["mosaic_id"] == m["id"]
    )
    imgs = api.get(f"/rasters/mosaic/{m['id']}/image").json()
    assert len(imgs) == 3
    assert api.get(f"/rasters/mosaic/{m['id']}").json()["image_count"] == 3
    got = api.get(f"/rasters/image/{img['id']}").json()
    assert {
        "id",
        "filename",
        "file_size",
        "uploaded_at",
        "footprint",
        "meta_data",
        "cog_link",
    } <= set(got)
    assert (
        api.put(f"/rasters/image/{img['id']}", params={"name": "Renamed"}).json()["filename"]
        == "Renamed"
    )
    for path, size in (
        (f"/rasters/image/{img['id']}/preview/s", 256),
        (f"/rasters/{img['id']}/preview/l", 1024),
    ):
        r = api.get(path)
        assert r.status_code == 200
        # a JPEG drawn with Pillow; without Pillow, a PNG
        ctype, magic = ("image/jpeg", b"\xff\xd8\xff") if Image else ("image/png", PNG)
        assert r.headers["Content-Type"] == ctype and r.content.startswith(magic)
        if Image:
            assert Image.open(io.BytesIO(r.content)).size == (size, size)
    mem = api.get("/rasters/memory").json()
    for k in (
        "used_bytes",
        "limit_bytes",
        "used_gb",
        "limit_gb",
        "usage_percent",
        "memoryLimit",
        "memoryUsed",
        "memoryFree",
    ):
        assert k in mem
    assert mem["used_bytes"] == mem["memoryUsed"] == 1004 + 5
    assert api.delete(f"/rasters/image/{img['id']}").status_code in (200, 204)
    assert api.get(f"/rasters/image/{img['id']}").status_code == 404
    assert api.delete(f"/rasters/mosaic/{m['id']}").status_code in (200, 204)
    assert api.get(f"/rasters/mosaic/{m['id']}").status_code == 404
    assert api.get("/rasters/memory").json()["used_bytes"] == 0
    # create-and-upload
    r = api.post(
        "/rasters/mosaic/image",
        params=[("name", "Quick"), ("tags", "t1"), ("tags", "t2")],
        files={"file": ("x.tif", data)},
    )
    assert r.status_code == 200
    body = api.get(f"/rasters/mosaic/{r.json()['mosaic_id']}").json()
    assert body["name"] == "Quick" and body["tags"] == ["t1", "t2"] and body["image_count"] == 1
    assert r.json()["image"]["mosaic_id"] == body["id"]
    # one comma-joined tags value (the QGIS plugin) is split
    r2 = api.post(
        "/rasters/mosaic/image",
        params={"name": "Q2", "tags": "spring, rgb"},
        files={"file": ("x.tif", data)},
    )
    assert api.get(f"/rasters/mosaic/{r2.json()['mosaic_id']}").json()["tags"] == ["spring", "rgb"]
    # upload needs a file part
    assert api.post(f"/rasters/mosaic/{body['id']}/image", data=b"x").status_code == 400


@pytest.mark.mapflow_sim(memory_limit_bytes=100)
def test_memory_limit(api):
    m = api.post("/rasters/mosaic", json={"name": "m"}).json()
    r = api.post(f"/rasters/mosaic/{m['id']}/image", files={"file": ("a.tif", bytes(200))})
    d = r.json()["detail"]
    assert r.status_code == 400 and d["code"] == "MemoryLimitExceeded"
    assert d["parameters"] == {"memory_requested": 200, "available_memory": 100}


def meta(api, aoi, **body):
    r = api.post("/catalog/meta", json={"aoi": aoi, "limit": 1000, **body})
    assert r.status_code == 200, r.text
    return r.json()["images"]


@pytest.mark.mapflow_sim(catalog_cloud_cover_scale="fraction")
def test_catalog_fraction_scale(api):
    aoi = box(69.1618, 41.2105, 69.3716, 41.3784)
    allr = meta(api, aoi)
    assert max(s["cloudCover"] for s in allr) <= 1
    assert meta(api, aoi, maxCloudCover=0.1) == meta(api, aoi, maxCloudCover=10)


def test_catalog_search(api):
    aoi = box(69.1618, 41.2105, 69.3716, 41.3784)
    whole = api.post("/catalog/meta", json={"aoi": aoi, "limit": 1000}).json()
    assert set(whole) == {"images", "total", "limit", "offset"}
    allr = whole["images"]
    assert allr and whole["total"] == len(allr)
    assert all(isinstance(s["previews"], list) and s["previews"] for s in allr)
    assert all("mapflow.ai" not in json.dumps(s) for s in allr)
    for s in allr:
        assert {
            "id",
            "footprint",
            "pixelResolution",
            "acquisitionDate",
            "productType",
            "sensor",
            "colorBandOrder",
            "cloudCover",
            "offNadirAngle",
            "previewType",
            "previewUrl",
            "providerName",
        } <= set(s)
    # deterministic
    assert api.post("/catalog/meta", json={"aoi": aoi, "limit": 1000}).json()["images"] == allr
    # cloud cover in percent (0–100), requests too: 1 means 1 %
    a = meta(api, aoi, maxCloudCover=10)
    assert 0 < len(a) < len(allr) and all(s["cloudCover"] <= 10 for s in a)
    assert max(s["cloudCover"] for s in allr) > 10
    assert all(s["cloudCover"] <= 1 for s in meta(api, aoi, maxCloudCover=1))
    # paging
    p1 = meta(api, aoi, limit=3, offset=0)
    p2 = meta(api, aoi, limit=3, offset=3)
    assert [s["id"] for s in p1 + p2] == [s["id"] for s in allr[:6]]
    # sorted by date desc by default
    dates = [s["acquisitionDate"] for s in allr]
    assert dates == sorted(dates, reverse=True)
    # filters
    mos = meta(api, aoi, productTypes=["MOSAIC"])
    assert mos and {s["productType"] for s in mos} == {"Mosaic"}
    img = meta(api, aoi, productTypes=["SCENE"])
    assert img and {s["productType"] for s in img} == {"Image"}
    cg = meta(api, aoi, dataProviders=["CG"])
    assert {s["providerName"] for s in cg} == {"CG"}
    dated = meta(
        api,
        aoi,
        acquisitionDateFrom="2023-01-01T00:00:00Z",
        acquisitionDateTo="2023-12-31T23:59:59Z",
    )
    assert all(s["acquisitionDate"].startswith("2023") for s in dated)
    r = api.post("/catalog/meta", json={})
    assert r.status_code == 400
