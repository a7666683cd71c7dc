"""MapflowClient against the simulator over real loopback HTTP: every endpoint method,
error mapping, retries under injected faults, create safety and secret hygiene."""

from __future__ import annotations

import base64
import logging
import math
from dataclasses import replace

import pandas as pd
import pytest

from mapflow_geo import exceptions as exc
from mapflow_geo import sim, sources
from mapflow_geo.api import normalise_model_name
from mapflow_geo.client import MapflowClient, RetryPolicy, default_client
from mapflow_geo.models import Aoi, Image, Memory, Mosaic, Processing, Project, Status, UserStatus

SMALL = {  # ~0.35 km² in Moscow
    "type": "Polygon",
    "coordinates": [
        [[37.615, 55.755], [37.625, 55.755], [37.625, 55.760], [37.615, 55.760], [37.615, 55.755]]
    ],
}
BIG = {  # ~35 km²
    "type": "Polygon",
    "coordinates": [
        [[37.50, 55.70], [37.60, 55.70], [37.60, 55.75], [37.50, 55.75], [37.50, 55.70]]
    ],
}
TIFF = b"II*\x00" + b"\x00" * 64

CANARY_EMAIL = "canary-4d1f@example.org"
CANARY_KEY = "CANARYKEY-e7b2c9a0f1"
CANARY_TOKEN = base64.b64encode(f"{CANARY_EMAIL}:{CANARY_KEY}".encode()).decode()
RASTER_PASSWORD = "hunter2-raster-canary"

FAST_RETRY = RetryPolicy(backoff_base=0.001, backoff_max=0.01, max_retry_after=0.01)
FAST = {"retry": FAST_RETRY, "timeout": (2.0, 10.0)}


@pytest.fixture
def client(mapflow_sim):
    with mapflow_sim.client(**FAST) as c:
        yield c


def _count(server, method, path, expect, timeout=2.0):
    """The simulator logs a request after answering it: wait for the log to catch up,
    then give stray duplicates a moment to show up."""
    import time

    end = time.monotonic() + timeout
    while server.count(method, path) < expect and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.05)
    return server.count(method, path)


def _create(client, **kw):
    body = {
        "name": "t",
        "wdName": "🏠 Buildings",
        "geometry": SMALL,
        "params": sources.data_provider("Mapbox", zoom=18),
        "meta": {"run": "r1", "tile": "0"},
    }
    body.update(kw)
    return client.processings.create(**body)


# ------------------------------------------------------------------ user & account
@pytest.mark.mapflow_sim(aoi_area_limit_km2=5, max_aois_per_processing=3, credits=1234)
def test_user_status_and_account_limits(client):
    st = client.account.status()
    assert isinstance(st, UserStatus)
    assert st.max_aois_per_processing == 3
    assert st.remaining_credits == 1234
    assert st.billing_type.value == "CREDITS"
    assert {m.name for m in st.models} >= {"🏠 Buildings", "🌲 Forest", "🌲↕️ Forest with heights"}
    assert st.data_provider("mapbox") is not None
    lim = client.account.limits()
    assert lim.aoi_area_limit_km2 == pytest.approx(5.0)
    assert lim.max_aois_per_processing == 3


def test_find_model(client):
    assert client.account.find_model("buildings").name == "🏠 Buildings"
    assert client.account.find_model("Buildings").name == "🏠 Buildings"
    assert client.account.find_model("🏠 Buildings").name == "🏠 Buildings"
    assert client.account.find_model("  BUILDINGS ").name == "🏠 Buildings"
    assert client.account.find_model("forest").name == "🌲 Forest"
    assert client.account.find_model("Forest with heights").name == "🌲↕️ Forest with heights"
    assert client.account.find_model("fields sentinel-2").name == "🚜 Fields (Sentinel-2)"
    assert client.account.find_model("construction").name == "🏗️ Construction sites"  # unique prefix
    m = client.account.find_model("roads")
    assert client.account.find_model(m.id) is m
    with pytest.raises(exc.ModelNotFoundError) as ei:
        client.account.find_model("lakes")
    assert "🏠 Buildings" in ei.value.available and "lakes" in str(ei.value)
    assert normalise_model_name("üè† Buildings") == "buildings"  # the docs' mojibake


def test_find_model_ambiguous(mapflow_sim):
    models = [
        {"id": "a", "name": "🏠 Buildings", "pricePerSqKm": 13},
        {"id": "b", "name": "Buildings!", "pricePerSqKm": 10},
        {"id": "c", "name": "🌲 Forest with heights", "pricePerSqKm": 1},
        {"id": "d", "name": "🌲 Forest with roads", "pricePerSqKm": 1},
    ]
    with sim.serve(models=models) as s, s.client(**FAST) as c:
        with pytest.raises(exc.ModelNotFoundError, match="ambiguous"):
            c.account.find_model("buildings")
        assert c.account.find_model("Buildings!").id == "b"  # exact raw name wins
        with pytest.raises(exc.ModelNotFoundError, match="ambiguous"):
            c.account.find_model("forest")


def test_cost_and_model_price(client):
    m = client.account.find_model("buildings")
    per_km2 = client.account.model_price("buildings", ["Classification"], "Mapbox", zoom=18)
    assert per_km2 == pytest.approx(13 + 3 + 3)
    blocks = sources.blocks(["Classification"], model=m)
    assert {b["name"]: b["enabled"] for b in blocks} == {
        "Classification": True,
        "Simplification": False,
        "OSM": False,
    }
    c = client.processings.cost(
        wdId=m.id, areaSqKm=2.5, params=sources.data_provider("Mapbox", zoom=18), blocks=blocks
    )
    assert c == math.ceil(2.5 * per_km2)
    # below 1 km² is billed as 1 km²; geometry accepted too; snake_case accepted
    small = client.processings.cost(
        wd_id=m.id, geometry=SMALL, params=sources.data_provider("Mapbox", zoom=18), blocks=blocks
    )
    assert small == math.ceil(per_km2)
    assert isinstance(
        client.processings.v1.cost(wdId=m.id, geometry=SMALL, params={"data_provider": "Mapbox"}),
        int,
    )


# ------------------------------------------------------------------ projects
def test_projects(client, mapflow_sim):
    default = client.projects.default()
    assert isinstance(default, Project) and default.is_default
    assert default.user.aoi_area_limit == 25_000_000
    p = client.projects.create("urban", "desc")
    assert (p.name, p.description) == ("urban", "desc")
    assert client.projects.get(p.id).name == "urban"
    assert {x.id for x in client.projects.list()} >= {p.id, default.id}
    client.projects.update(p.id, name="urban-2")
    assert client.projects.get(p.id).name == "urban-2"
    client.projects.share(p.id, "friend@example.org", "readonly")
    client.projects.delete(p.id)
    with pytest.raises(exc.NotFoundError) as ei:
        client.projects.get(p.id)
    assert ei.value.status == 404 and ei.value.path == f"/projects/{p.id}"
    assert _count(mapflow_sim, "POST", "/rest/projects", 1) == 1


# ------------------------------------------------------------------ processings v2
@pytest.mark.mapflow_sim(processing_seconds=0)
def test_processing_lifecycle_v2(client):
    project = client.projects.create("lifecycle")
    p = _create(client, projectId=project.id)
    assert isinstance(p, Processing) and p.id and p.meta == {"run": "r1", "tile": "0"}
    got = client.processings.get(p.id)
    assert got.status is Status.OK and got.is_terminal and got.percent_completed == 100
    assert got.area and got.cost and got.aoi_count == 1
    assert got.vector_layer is not None and got.vector_layer.tile_url
    assert [x.id for x in client.processings.list(project.id)] == [p.id]
    assert isinstance(client.processings.list(), list)
    aois = client.processings.aois(p.id)
    assert len(aois) == 1 and isinstance(aois[0], Aoi) and aois[0].geometry["type"] == "Polygon"
    fc = client.processings.result(p.id)
    assert fc["type"] == "FeatureCollection"
    fc_aoi = client.processings.result(p.id, aoi_id=aois[0].id)
    assert fc_aoi["type"] == "FeatureCollection"
    raw = client.processings.result_bytes(p.id)
    assert raw.lstrip().startswith(b"{")
    client.processings.update(p.id, name="renamed", description="d")
    assert client.processings.get(p.id).name == "renamed"
    other = client.projects.create("other")
    client.processings.move(p.id, other.id)
    assert client.processings.get(p.id).project_id == other.id
    client.processings.restart(p.id)
    client.processings.delete(p.id)
    with pytest.raises(exc.NotFoundError):
        client.processings.get(p.id)


@pytest.mark.mapflow_sim(processing_seconds=0)
def test_processings_v1(client):
    p = client.processings.v1.create(
        name="v1",
        wdName="🏠 Buildings",
        geometry=SMALL,
        params={"source_type": "xyz", "url": "https://tiles.example/{z}/{x}/{y}.png"},
    )
    assert client.processings.v1.get(p.id).id == p.id
    assert p.id in {x.id for x in client.processings.v1.list()}
    project = client.projects.create("v1")
    client.processings.move(p.id, project.id)
    assert [x.id for x in client.processings.v1.list(project.id)] == [p.id]


@pytest.mark.mapflow_sim(processing_seconds=0)
def test_processing_stats_as_json_and_as_csv(client, mapflow_sim):
    for i in range(3):
        _create(client, name=f"s{i}")
    truth = {p["id"]: p for p in mapflow_sim.processings}
    mapflow_sim.clear_requests()
    stats = client.processings.stats(statuses=["OK"])
    frame = client.processings.stats(output="csv", statuses=["OK"])
    sent = [r.query for r in mapflow_sim.requests if r.path.endswith("/processings/stats")]
    assert sent == ["type=JSON", "type=CSV"]  # the output asked for is the one requested
    assert stats.total == len(truth) == 3
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame["id"]) == sorted(truth)
    assert dict(zip(frame["id"], frame["name"], strict=True)) == {
        pid: p["name"] for pid, p in truth.items()
    }
    with pytest.raises(ValueError, match="output must be 'json' or 'csv'"):
        client.processings.stats(output="xml")
    assert len(mapflow_sim.requests) == 2  # refused before sending


@pytest.mark.mapflow_sim(processing_seconds=0, fail_fraction=1.0)
def test_failed_processing_messages_render(client):
    from mapflow_geo.messages import render_messages

    p = client.processings.get(_create(client).id)
    assert p.status is Status.FAILED
    texts = render_messages(p.messages)
    assert len(texts) == len(p.messages) > 0
    # each message's text holds the values the service sent, and no placeholder is left
    for text, message in zip(texts, p.messages, strict=True):
        shown = {k: v for k, v in message["parameters"].items() if k != "level"}
        assert all(str(v) in text for v in shown.values()), (text, message)
        assert "{" not in text and "}" not in text, text


# ------------------------------------------------------------------ Data API & catalog
def test_data_api(client, tmp_path):
    path = tmp_path / "ortho.tif"
    path.write_bytes(TIFF)
    m = client.data.mosaics.create("survey", tags=["a", "b"])
    assert isinstance(m, Mosaic) and m.tags == ["a", "b"]
    assert m.id in {x.id for x in client.data.mosaics.list()}
    assert client.data.mosaics.get(m.id).name == "survey"
    client.data.mosaics.update(m.id, name="survey-2", tags=["c"])
    assert client.data.mosaics.get(m.id).tags == ["c"]
    img = client.data.images.upload(m.id, path)
    assert isinstance(img, Image) and img.filename == "ortho.tif" and img.file_size == len(TIFF)
    img2 = client.data.images.upload(m.id, TIFF, filename="b.tif")
    link = client.data.images.link(m.id, "s3://bucket/path/linked.tif")
    assert "mosaic_id" in link
    assert {img.id, img2.id} <= {i.id for i in client.data.images.list(m.id)}
    assert client.data.images.get(img.id).id == img.id
    client.data.images.rename(img.id, "renamed.tif")
    assert client.data.images.get(img.id).filename == "renamed.tif"
    small, large = client.data.images.preview(img.id, "s"), client.data.images.preview(img.id, "l")
    assert small and large and small != large
    mem = client.data.memory()
    assert isinstance(mem, Memory) and mem.used_bytes >= 2 * len(TIFF) and mem.limit_bytes
    client.data.images.delete(img2.id)
    assert img2.id not in {i.id for i in client.data.images.list(m.id)}
    m2 = client.data.mosaics.create_and_upload(TIFF, "quick", ["t"], filename="q.tif")
    assert m2.id and m2.name == "quick" and m2.images and m2.images[0].filename == "q.tif"
    with open(path, "rb") as fh:
        assert client.data.images.upload(m2.id, fh).file_size == len(TIFF)
    client.data.mosaics.delete(m.id)
    with pytest.raises(exc.NotFoundError):
        client.data.mosaics.get(m.id)


def test_catalog_search(client):
    res = client.catalog.search(
        SMALL, acquisitionDateFrom="2020-01-01T00:00:00Z", maxCloudCover=0.5
    )
    assert len(res) >= 1
    scene = res[0]
    assert scene.id and scene.provider_name and scene.footprint
    src = sources.imagery_search(scene.provider_name, [scene.id], zoom=18)
    assert src["sourceParams"]["imagerySearch"]["imageIds"] == [scene.id]


# ------------------------------------------------------------------ errors
def test_bad_token_is_401(mapflow_sim):
    with MapflowClient("d3Jvbmc6dG9rZW4=", base_url=mapflow_sim.url, **FAST) as c:
        with pytest.raises(exc.AuthenticationError) as ei:
            c.account.status()
    assert ei.value.status == 401 and ei.value.method == "GET" and ei.value.path == "/user/status"


@pytest.mark.mapflow_sim(aoi_area_limit_km2=1)
def test_too_large_processing_keeps_code_and_params(client, mapflow_sim):
    with pytest.raises(exc.TooLargeProcessingError) as ei:
        _create(client, geometry=BIG)
    e = ei.value
    assert isinstance(e, exc.BadRequestError) and e.status == 400
    assert e.code == "TOO_LARGE_PROCESSING"
    assert e.params["aoiAreaLimit"] == "1000000" and int(e.params["area"]) > 1_000_000
    assert e.method == "POST" and e.path == "/processings/v2"
    assert _count(mapflow_sim, "POST", "/rest/processings/v2", 1) == 1


# ------------------------------------------------------------------ faults
@pytest.mark.mapflow_sim(
    processing_seconds=0,
    seed=7,
    faults={"status_503": 0.2, "status_429": 0.1, "methods": ["GET"]},
)
def test_get_loop_survives_503_and_429(mapflow_sim, caplog):
    caplog.set_level(logging.DEBUG, logger="mapflow_geo._http")
    with mapflow_sim.client(**dict(FAST, retry=replace(FAST_RETRY, max_retries=8))) as c:
        p = _create(c)
        for _ in range(25):
            assert c.processings.get(p.id).id == p.id
            assert any(x.id == p.id for x in c.processings.list())
        c.account.status()
    _count(mapflow_sim, "GET", "/rest/user/status", 1)
    statuses = [r.status for r in mapflow_sim.requests if r.method == "GET"]
    assert 503 in statuses and 429 in statuses
    # 25 gets, 25 listings, the user status, and the default project the create names
    assert statuses.count(200) == 52
    assert "retrying GET" in caplog.text and "HTTP 429" in caplog.text


@pytest.mark.mapflow_sim(processing_seconds=0, faults={"drop_create_response": 1.0})
def test_create_not_retried_when_answer_dropped(client, mapflow_sim):
    with pytest.raises(exc.AmbiguousCreateError) as ei:
        _create(client, meta={"run": "amb", "tile": "9"})
    assert ei.value.meta == {"run": "amb", "tile": "9"}
    assert _count(mapflow_sim, "POST", "/rest/processings/v2", 1) == 1
    # it was committed: reconcile through meta
    mapflow_sim.clear_faults()
    matches = [p for p in client.processings.list() if p.meta.get("run") == "amb"]
    assert len(matches) == 1


# ------------------------------------------------------------------ secrets
@pytest.mark.mapflow_sim(
    token=CANARY_TOKEN,
    processing_seconds=0,
    seed=3,
    faults={"status_503": 0.3, "reset": 0.1, "methods": ["GET"]},
)
def test_secrets_never_leak(mapflow_sim, caplog):
    caplog.set_level(logging.DEBUG)  # root: our loggers and urllib3
    secrets = [CANARY_TOKEN, CANARY_KEY, f"{CANARY_EMAIL}:{CANARY_KEY}", RASTER_PASSWORD]
    texts: list[str] = []
    with mapflow_sim.client(**dict(FAST, retry=replace(FAST_RETRY, max_retries=10))) as c:
        texts += [repr(c), str(c)]
        src = sources.user_defined(
            "https://tiles.example/{z}/{x}/{y}.png",
            zoom=18,
            raster_login="me",
            raster_password=RASTER_PASSWORD,
        )
        texts += [repr(src), str(src), repr(c.processings.describe_body({"params": src}))]
        p = c.processings.create(name="pw", wdName="🏠 Buildings", geometry=SMALL, params=src)
        got = c.processings.get(p.id)
        texts += [repr(p), repr(got), str(got), repr(c.processings.list())]
        for bad in (
            lambda: c.processings.get("missing"),
            lambda: _create(c, geometry={"type": "Nope"}),
        ):
            with pytest.raises(exc.MapflowError) as ei:
                bad()
            e = ei.value
            texts += [str(e), repr(e), str(e.__cause__), str(e.__context__)]
        mapflow_sim.set_faults(drop_create_response=1.0)
        with pytest.raises(exc.AmbiguousCreateError) as ei:
            _create(c)
        e = ei.value
        texts += [str(e), repr(e), str(e.__cause__), repr(e.__cause__), str(e.__context__)]
        assert getattr(e.__cause__, "request", None) is None
    texts.append(caplog.text)
    texts += [r.getMessage() for r in caplog.records]
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    blob = "\n".join(texts)
    for s in secrets:
        assert s not in blob
    assert "***" in repr(src)


def test_client_secrets_are_every_form_of_its_token():
    with MapflowClient(CANARY_TOKEN, base_url="http://127.0.0.1:9/rest") as c:
        secrets = c._secrets()
    raw = f"{CANARY_EMAIL}:{CANARY_KEY}"
    assert {CANARY_TOKEN, raw, CANARY_KEY, f"Basic {CANARY_TOKEN}"} <= set(secrets)
    assert CANARY_EMAIL not in secrets
    body = c.processings.describe_body(
        {"name": f"run for {raw}", "params": {"rasterPassword": "p"}}
    )
    assert body == {"name": "run for ***", "params": {"rasterPassword": "***"}}


def test_default_client(monkeypatch):
    given = MapflowClient(CANARY_TOKEN, base_url="http://127.0.0.1:9/rest")
    assert default_client(given) is given
    monkeypatch.delenv("MAPFLOW_TOKEN", raising=False)
    with pytest.raises(exc.ConfigError):
        default_client()
    monkeypatch.setenv("MAPFLOW_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("MAPFLOW_API_URL", "http://127.0.0.1:9/rest")
    with default_client() as c:
        assert isinstance(c, MapflowClient) and c.base_url == "http://127.0.0.1:9/rest"
        assert CANARY_KEY in c._secrets()
