"""Simulator rules over raw HTTP: auth, limits, cost, billing, lifecycle, results."""

from __future__ import annotations

import base64
import math
import time

import pytest
import requests
from pyproj import Geod
from shapely.geometry import shape
from support.sim_http import SMALL, Api, box

GEOD = Geod(ellps="WGS84")


def geod_area(geojson) -> float:
    g = shape(geojson)
    return abs(GEOD.geometry_area_perimeter(g)[0])


# ----------------------------------------------------------------------------- auth
def test_auth_missing_and_wrong_token(mapflow_sim):
    url = mapflow_sim.url + "/user/status"
    r = requests.get(url, timeout=10)
    assert r.status_code == 401
    body = r.json()
    assert body["code"] == "UNAUTHORIZED" and body["message"]
    for h in ("Basic nope", "Bearer nope", mapflow_sim.token, "Digest " + mapflow_sim.token):
        assert requests.get(url, headers={"Authorization": h}, timeout=10).status_code == 401
    for scheme in ("Basic", "Bearer"):
        r = requests.get(
            url, headers={"Authorization": f"{scheme} {mapflow_sim.token}"}, timeout=10
        )
        assert r.status_code == 200


def test_default_token_is_base64_email_apikey(mapflow_sim, api):
    email, key = base64.b64decode(mapflow_sim.token).decode().split(":", 1)
    assert "@" in email and key
    assert api.get("/user/status").json()["email"] == email


@pytest.mark.mapflow_sim(token=base64.b64encode(b"me@example.com:k3y").decode())
def test_custom_token(mapflow_sim, api):
    assert api.get("/user/status").json()["email"] == "me@example.com"


# ----------------------------------------------------------------------------- account
def test_user_status_fields(api):
    st = api.get("/user/status").json()
    for k in (
        "email",
        "processedArea",
        "remainingArea",
        "areaLimit",
        "memoryLimit",
        "models",
        "teams",
        "billingType",
        "remainingCredits",
        "maxAoisPerProcessing",
        "dataProviders",
    ):
        assert k in st, k
    names = [m["name"] for m in st["models"]]
    for n in (
        "🏠 Buildings",
        "🌲 Forest",
        "🌲↕️ Forest with heights",
        "🚗 Roads",
        "🏗️ Construction sites",
        "🚜 Fields (Sentinel-2)",
    ):
        assert n in names
    b = next(m for m in st["models"] if m["name"] == "🏠 Buildings")
    assert {x["name"] for x in b["blocks"]} >= {"Classification", "Simplification", "OSM"}
    mb = next(p for p in st["dataProviders"] if p["name"] == "Mapbox")
    assert {(e["zoom"], e["priceSqKm"]) for e in mb["price"]} == {(17, 1), (18, 3), (19, 9)}
    assert st["maxAoisPerProcessing"] == 10 and st["billingType"] == "CREDITS"


@pytest.mark.mapflow_sim(aoi_area_limit_km2=5, max_aois_per_processing=3)
def test_marker_sets_limits(api):
    assert api.get("/projects/default").json()["user"]["aoiAreaLimit"] == 5_000_000
    assert api.get("/user/status").json()["maxAoisPerProcessing"] == 3


# ----------------------------------------------------------------------------- limits
def _too_large(body, area, limit):
    assert body == {
        "code": "TOO_LARGE_PROCESSING",
        "message": f"Processings larger than {limit} sq.m. are prohibited. Area: {area} sq.m.",
        "params": {"area": str(area), "aoiAreaLimit": str(limit)},
    }


@pytest.mark.parametrize("path", ["/processings/v2", "/processings"])
def test_total_area_limit_exact_body(mapflow_sim, api, path):
    geom = box(37.5, 55.7, 37.62, 55.76)  # ≈ 50 km²
    r = api.post(path, json={"name": "big", "wdName": "🏠 Buildings", "geometry": geom})
    assert r.status_code == 400
    _too_large(r.json(), int(round(geod_area(geom))), 25_000_000)
    assert mapflow_sim.charges == []


@pytest.mark.mapflow_sim(aoi_area_limit_km2=2.5)
def test_limit_message_uses_account_limit(api):
    geom = box(37.5, 55.7, 37.55, 55.73)
    r = api.post("/processings/v2", json={"name": "x", "wdName": "🏠 Buildings", "geometry": geom})
    assert r.status_code == 400
    _too_large(r.json(), int(round(geod_area(geom))), 2_500_000)


def test_thin_diagonal_sliver_bbox_rule(api):
    # a thin sliver along the diagonal of a ~100 km² box: tiny area, huge bbox
    x0, y0, x1, y1 = 37.0, 55.0, 37.16, 55.09
    d = 0.0002
    sliver = {
        "type": "Polygon",
        "coordinates": [[[x0, y0], [x0 + d, y0], [x1, y1], [x1 - d, y1], [x0, y0]]],
    }
    assert geod_area(sliver) < 1_000_000
    r = api.post(
        "/processings/v2", json={"name": "s", "wdName": "🏠 Buildings", "geometry": sliver}
    )
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "TOO_LARGE_PROCESSING"
    assert body["params"]["aoiAreaLimit"] == "25000000"
    assert int(body["params"]["area"]) > 25_000_000
    # the same area as a compact square passes
    assert (
        api.post(
            "/processings/v2", json={"name": "ok", "wdName": "🏠 Buildings", "geometry": SMALL}
        ).status_code
        == 200
    )


def _multi(n):
    polys = []
    for k in range(n):
        x = 37.0 + 0.01 * k
        polys.append([[[x, 55.0], [x + 0.002, 55.0], [x + 0.002, 55.002], [x, 55.002], [x, 55.0]]])
    return {"type": "MultiPolygon", "coordinates": polys}


def test_too_many_aois(mapflow_sim, api):
    r = api.post(
        "/processings/v2", json={"name": "m", "wdName": "🏠 Buildings", "geometry": _multi(11)}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "TOO_MANY_AOIS"
    assert r.json()["params"] == {"aoiCount": "11", "maxAoisPerProcessing": "10"}
    p = api.create(_multi(10))
    assert p["aoiCount"] == 10
    assert len(api.get(f"/processings/{p['id']}/aois").json()) == 10


def test_total_area_over_several_polygons(api):
    # four 7 km² squares: each fine, the total (28 km²) is not
    polys = []
    for k in range(4):
        x = 37.0 + 0.1 * k
        polys.append(box(x, 55.0, x + 0.042, 55.0 + 0.0243)["coordinates"])
    geom = {"type": "MultiPolygon", "coordinates": polys}
    r = api.post("/processings/v2", json={"name": "m", "wdName": "🏠 Buildings", "geometry": geom})
    assert r.status_code == 400 and r.json()["code"] == "TOO_LARGE_PROCESSING"


@pytest.mark.parametrize(
    "geom",
    [
        {"type": "Point", "coordinates": [37, 55]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},  # bow-tie
        {"type": "Polygon", "coordinates": [[[500, 0], [501, 0], [501, 1], [500, 0]]]},
        {"type": "Polygon"},
        "POLYGON((0 0, 1 0, 1 1, 0 0))",
    ],
)
def test_invalid_geometry(api, geom):
    r = api.post("/processings/v2", json={"name": "x", "wdName": "🏠 Buildings", "geometry": geom})
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_GEOMETRY"


def test_feature_and_feature_collection_accepted(api):
    p = api.create({"type": "Feature", "properties": {}, "geometry": SMALL})
    assert p["aoiCount"] == 1
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": _multi(2)}],
    }
    assert api.create(fc)["aoiCount"] == 2


# ----------------------------------------------------------------------------- cost
def _cost(api, **body):
    r = api.post("/processing/cost/v2", json=body)
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), int)
    return r.json()


def test_cost_formula(api):
    def mb(z=None):
        return {
            "sourceParams": {
                "dataProvider": {"providerName": "Mapbox", **({"zoom": z} if z else {})}
            }
        }  # noqa: E731

    # 1 km² minimum: 0.35 km² charged as 1 km²; Buildings 13 + Mapbox z18 3
    assert _cost(api, wdName="🏠 Buildings", geometry=SMALL, params=mb(18)) == 16
    assert _cost(api, wdName="🏠 Buildings", areaSqKm=0.01, params=mb(18)) == 16
    # default zoom is 18
    assert _cost(api, wdName="🏠 Buildings", areaSqKm=1, params=mb()) == 16
    # zoom 17/19 prices 1/9
    assert _cost(api, wdName="🏠 Buildings", areaSqKm=2, params=mb(17)) == 28
    assert _cost(api, wdName="🏠 Buildings", areaSqKm=2, params=mb(19)) == 44
    # optional blocks enabled add their price; disabled or omitted do not
    blocks = [
        {"name": "Classification", "enabled": True},
        {"name": "Simplification", "enabled": True},
        {"name": "OSM", "enabled": False},
    ]
    assert _cost(api, wdName="🏠 Buildings", areaSqKm=2, params=mb(18), blocks=blocks) == 2 * (
        13 + 3 + 5 + 3
    )
    # rounding up to a whole credit: 1.55 × 14 = 21.7 → 22
    assert _cost(api, wdName="🏠 Buildings", areaSqKm=1.55, params=mb(17)) == 22
    # exact products are not bumped by float error: 1.5 × 14 = 21
    assert _cost(api, wdName="🏠 Buildings", areaSqKm=1.5, params=mb(17)) == 21
    # own imagery / custom url: data price 0
    own = {
        "sourceParams": {
            "userDefined": {"sourceType": "XYZ", "url": "https://t.example/{z}/{x}/{y}.png"}
        }
    }
    assert _cost(api, wdName="🏠 Buildings", areaSqKm=3, params=own) == 39
    # Forest: non-optional Segmentation (8) always, optional Heights (20) when enabled
    assert _cost(api, wdName="🌲 Forest", areaSqKm=1, params=own) == 8
    assert (
        _cost(
            api,
            wdName="🌲 Forest",
            areaSqKm=1,
            params=own,
            blocks=[{"name": "Heights", "enabled": True}],
        )
        == 28
    )
    # model by id, and the mojibake name of the docs
    st = api.get("/user/status").json()
    bid = next(m["id"] for m in st["models"] if m["name"] == "🏠 Buildings")
    assert _cost(api, wdId=bid, areaSqKm=1, params=own) == 13
    assert _cost(api, wdName="üè† Buildings", areaSqKm=1, params=own) == 13


def test_cost_geometry_area_and_v1(api):
    geom = box(37.5, 55.7, 37.55, 55.72)
    km2 = geod_area(geom) / 1e6
    expect = math.ceil(km2 * (13 + 3))
    assert (
        _cost(
            api,
            wdName="🏠 Buildings",
            geometry=geom,
            params={"sourceParams": {"dataProvider": {"providerName": "Mapbox"}}},
        )
        == expect
    )
    st = api.get("/user/status").json()
    bid = next(m["id"] for m in st["models"] if m["name"] == "🏠 Buildings")
    r = api.post(
        "/processing/cost",
        json={"wdId": bid, "geometry": geom, "params": {"data_provider": "Mapbox"}},
    )
    assert r.status_code == 200 and r.json() == expect


def test_cost_unknown_model_and_provider(api):
    r = api.post("/processing/cost/v2", json={"wdName": "nope", "areaSqKm": 1})
    assert r.status_code == 400 and r.json()["code"] == "MODEL_NOT_FOUND"
    r = api.post(
        "/processing/cost/v2",
        json={
            "wdName": "🏠 Buildings",
            "areaSqKm": 1,
            "params": {"sourceParams": {"dataProvider": {"providerName": "Nope"}}},
        },
    )
    assert r.status_code == 400 and r.json()["code"] == "DATA_PROVIDER_NOT_FOUND"


# ----------------------------------------------------------------------------- billing
@pytest.mark.mapflow_sim(credits=40)
def test_credits_deducted_and_insufficient(mapflow_sim, api):
    p = api.create(
        params={"sourceParams": {"dataProvider": {"providerName": "Mapbox", "zoom": 18}}}
    )
    assert p["cost"] == 16 and isinstance(p["cost"], int)
    assert p["area"] == p["aoiArea"] == int(round(geod_area(SMALL)))
    st = api.get("/user/status").json()
    assert st["remainingCredits"] == 24
    assert st["processedArea"] == p["area"]
    api.create(params={"sourceParams": {"dataProvider": {"providerName": "Mapbox", "zoom": 18}}})
    r = api.post(
        "/processings/v2",
        json={
            "name": "x",
            "wdName": "🏠 Buildings",
            "geometry": SMALL,
            "params": {"sourceParams": {"dataProvider": {"providerName": "Mapbox"}}},
        },
    )
    assert r.status_code == 400
    assert r.json()["code"] == "INSUFFICIENT_CREDITS"
    assert r.json()["params"] == {"cost": "16", "remainingCredits": "8"}
    assert api.get("/user/status").json()["remainingCredits"] == 8
    assert len(mapflow_sim.charges) == 2
    assert mapflow_sim.charges_for(p["id"]) == 1


@pytest.mark.mapflow_sim(billing_type="AREA", area_limit_km2=1.0)
def test_area_billing(api):
    api.create()
    st = api.get("/user/status").json()
    assert st["billingType"] == "AREA"
    assert st["remainingArea"] == 1_000_000 - int(round(geod_area(SMALL)))
    api.create()
    r = api.post("/processings/v2", json={"name": "x", "wdName": "🏠 Buildings", "geometry": SMALL})
    assert r.status_code == 400 and r.json()["code"] == "INSUFFICIENT_AREA"


@pytest.mark.mapflow_sim(billing_type="NONE", credits=0)
def test_no_billing(api):
    p = api.create()
    assert p["cost"] > 0
    assert api.get("/user/status").json()["remainingCredits"] == 0


# ----------------------------------------------------------------------------- lifecycle
def test_processing_seconds_zero_is_ok_on_first_read(api):
    p = api.create(meta={"run": "r1", "n": "7"})
    assert p["status"] == "UNPROCESSED"
    g = api.get(f"/processings/{p['id']}/v2").json()
    assert g["status"] == "OK" and g["percentCompleted"] == 100
    assert g["meta"] == {"run": "r1", "n": "7"}
    for k in (
        "id",
        "name",
        "description",
        "projectId",
        "vectorLayer",
        "rasterLayer",
        "workflowDef",
        "aoiCount",
        "area",
        "aoiArea",
        "cost",
        "status",
        "reviewStatus",
        "rating",
        "percentCompleted",
        "params",
        "blocks",
        "meta",
        "messages",
        "created",
        "updated",
    ):
        assert k in g, k
    assert {"tileUrl", "tileJsonUrl"} <= set(g["vectorLayer"]) and {
        "tileUrl",
        "tileJsonUrl",
    } <= set(g["rasterLayer"])
    v1 = api.get(f"/processings/{p['id']}").json()
    assert v1["status"] == "OK" and v1["meta"]["run"] == "r1"
    lst = api.get("/processings/v2").json()
    assert [x["meta"] for x in lst if x["id"] == p["id"]] == [{"run": "r1", "n": "7"}]


@pytest.mark.mapflow_sim(processing_seconds=100, awaiting_seconds=10)
def test_lifecycle_with_clock(mapflow_sim, api):
    p = api.create()
    get = lambda: api.get(f"/processings/{p['id']}/v2").json()  # noqa: E731
    assert get()["status"] == "AWAITING"
    mapflow_sim.advance(10 + 50)
    g = get()
    assert g["status"] == "IN_PROGRESS" and 45 <= g["percentCompleted"] <= 55
    r = api.get(f"/processings/{p['id']}/result")
    assert r.status_code == 400 and r.json()["code"] == "RESULT_NOT_READY"
    mapflow_sim.advance(51)
    assert get()["status"] == "OK"
    assert api.get(f"/processings/{p['id']}/result").status_code == 200


@pytest.mark.mapflow_sim(processing_seconds=0.3)
def test_lifecycle_wall_clock(api):
    p = api.create()
    assert api.get(f"/processings/{p['id']}/v2").json()["status"] == "IN_PROGRESS"
    time.sleep(0.35)
    assert api.get(f"/processings/{p['id']}/v2").json()["status"] == "OK"


DOC_CODES = {
    "dataloader.TileNotLoaded",
    "dataloader.internalError",
    "source-validator.PixelSizeTooHigh",
    "inference.internalError",
    "vector-processor.internalError",
}


@pytest.mark.mapflow_sim(fail_fraction=1.0)
def test_failed_processing_and_restart(mapflow_sim, api):
    p = api.create(_multi(4))
    g = api.get(f"/processings/{p['id']}/v2").json()
    assert g["status"] == "FAILED"
    assert g["messages"] and all(m["code"] in DOC_CODES for m in g["messages"])
    assert len({(m["code"], str(m["parameters"])) for m in g["messages"]}) == len(
        g["messages"]
    )  # deduplicated
    aois = api.get(f"/processings/{p['id']}/aois").json()
    assert all(a["status"] == "FAILED" and a["messages"] for a in aois)
    r = api.get(f"/processings/{p['id']}/result")
    assert r.status_code == 400 and r.json()["code"] == "RESULT_NOT_READY"
    r = api.post(f"/processings/{p['id']}/restart")
    assert r.status_code == 200
    snap = next(x for x in mapflow_sim.processings if x["id"] == p["id"])
    assert snap["attempts"] == [2, 2, 2, 2]
    assert snap["charges"] == 1


@pytest.mark.mapflow_sim(fail_fraction=0.5, seed=3)
def test_partial_failure_restart_reruns_failed_only(mapflow_sim, api):
    p = api.create(_multi(10))
    aois = api.get(f"/processings/{p['id']}/aois").json()
    failed = {a["id"] for a in aois if a["status"] == "FAILED"}
    ok = [a for a in aois if a["status"] == "OK"]
    assert failed and ok, "seed 3 should give a mix"
    assert api.get(f"/processings/{p['id']}/v2").json()["status"] == "FAILED"
    # per-AOI result of an OK AOI works while the processing is FAILED
    r = api.get(f"/processings/{p['id']}/result", params={"aoiId": ok[0]["id"]})
    assert r.status_code == 200 and r.json()["type"] == "FeatureCollection"
    r = api.get(f"/processings/{p['id']}/result", params={"aoiId": next(iter(failed))})
    assert r.status_code == 400
    # restart until everything is OK; only the failed AOIs get new attempts
    for _ in range(20):
        api.post(f"/processings/{p['id']}/restart")
        if api.get(f"/processings/{p['id']}/v2").json()["status"] == "OK":
            break
    assert api.get(f"/processings/{p['id']}/v2").json()["status"] == "OK"
    snap = next(x for x in mapflow_sim.processings if x["id"] == p["id"])
    by_id = dict(zip([a["id"] for a in aois], snap["attempts"], strict=False))
    assert all(by_id[a["id"]] == 1 for a in ok)
    assert all(by_id[a] >= 2 for a in failed)
    assert snap["charges"] == 1


def test_fail_draw_is_deterministic():
    from mapflow_geo.sim import serve

    def statuses():
        with serve(fail_fraction=0.5, seed=11) as sim:
            a = Api(sim)
            p = a.create(_multi(10))
            return [x["status"] for x in a.get(f"/processings/{p['id']}/aois").json()]

    assert statuses() == statuses()


# ----------------------------------------------------------------------------- results
def test_result_is_geojson_octet_stream(api):
    p = api.create(
        box(37.6, 55.75, 37.63, 55.765),
        blocks=[
            {"name": "Classification", "enabled": True},
            {"name": "Simplification", "enabled": True},
        ],
    )
    r = api.get(f"/processings/{p['id']}/result")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) > 20
    ids = [f["properties"]["id"] for f in fc["features"]]
    assert len(set(ids)) == len(ids)
    f = fc["features"][0]["properties"]
    assert f["object_type"] == "buildings" and isinstance(f["area"], int)
    assert f["class_id"] in {"101", "102", "103", "104", "105"}
    assert {"shape_type", "simplification_confidence_score", "processing_date"} <= set(f)
    # clipped to the AOI
    aoi = shape(box(37.6, 55.75, 37.63, 55.765))
    assert all(aoi.buffer(1e-9).contains(shape(x["geometry"])) for x in fc["features"])
    # stable across reads
    assert api.get(f"/processings/{p['id']}/result").json() == fc


def test_result_models(api):
    geom = box(37.6, 55.75, 37.68, 55.79)  # ≈ 22 km²
    for wd, otype, gtypes in [
        ("🌲 Forest", "forest", {"Polygon", "MultiPolygon"}),
        ("🚗 Roads", "roads", {"LineString", "MultiLineString"}),
        ("🏗️ Construction sites", "construction", {"Polygon", "MultiPolygon"}),
        ("🚜 Fields (Sentinel-2)", "fields", {"Polygon", "MultiPolygon"}),
    ]:
        p = api.create(geom, wd=wd)
        fc = api.get(f"/processings/{p['id']}/result").json()
        assert fc["features"], wd
        assert {f["properties"]["object_type"] for f in fc["features"]} == {otype}
        assert {f["geometry"]["type"] for f in fc["features"]} <= gtypes
    # heights: the model, or the Heights block
    for kw in (
        {"wd": "🌲↕️ Forest with heights"},
        {"wd": "🌲 Forest", "blocks": [{"name": "Heights", "enabled": True}]},
    ):
        p = api.create(geom, **kw)
        fc = api.get(f"/processings/{p['id']}/result").json()
        assert {f["properties"]["class"] for f in fc["features"]} <= {
            "00m-04m",
            "04m-10m",
            "10m-99m",
        }
    p = api.create(geom, wd="🌲 Forest")
    assert all(
        "class" not in f["properties"]
        for f in api.get(f"/processings/{p['id']}/result").json()["features"]
    )


def test_unknown_ids_404(api):
    for path in (
        "/processings/nope/v2",
        "/processings/nope",
        "/processings/nope/aois",
        "/processings/nope/result",
    ):
        r = api.get(path)
        assert r.status_code == 404 and r.json()["code"] == "PROCESSING_NOT_FOUND"
    p = api.create()
    r = api.get(f"/processings/{p['id']}/result", params={"aoiId": "nope"})
    assert r.status_code == 404 and r.json()["code"] == "AOI_NOT_FOUND"
    assert api.get("/projects/nope").status_code == 404
