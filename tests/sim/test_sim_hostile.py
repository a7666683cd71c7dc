"""Hostile realism: other accounts (403), source-id checks, listing lag, page caps, tokens
in tile URLs; planned processings' paid rule; the review workflow."""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import quote

import pytest
import requests
from support.sim_http import SMALL, Api

from mapflow_geo.sim import serve

OTHER = base64.b64encode(b"other@mapflow.local:key-2").decode()


def test_other_account_gets_403_and_sees_nothing():
    with serve(extra_tokens=[OTHER]) as sim:
        me, other = Api(sim), Api(sim)
        other.s.headers["Authorization"] = f"Basic {OTHER}"
        assert other.get("/user/status").json()["email"] == "other@mapflow.local"
        proj = me.post("/projects", json={"name": "mine"}).json()
        proc = me.create(projectId=proj["id"])
        m = me.post("/rasters/mosaic", json={"name": "m"}).json()
        assert other.get(f"/projects/{proj['id']}").status_code == 403
        assert other.get(f"/processings/{proc['id']}/v2").status_code == 403
        assert other.put(f"/processings/{proc['id']}/v2", json={"name": "x"}).status_code == 403
        assert other.delete(f"/processings/{proc['id']}").status_code == 403
        r = other.get(f"/rasters/mosaic/{m['id']}")
        assert r.status_code == 403 and r.json()["detail"]["code"] == "AccessDenied"
        assert r.json()["detail"]["parameters"] == {"instance_type": "mosaic", "uid": m["id"]}
        assert other.get("/processings/v2").json() == []
        assert proj["id"] not in {p["id"] for p in other.get("/projects").json()}
        # a create into another account's project or from its mosaic: refused, not charged
        n = len(sim.charges)
        r = other.post(
            "/processings/v2",
            json={
                "name": "x",
                "wdName": "🏠 Buildings",
                "geometry": SMALL,
                "projectId": proj["id"],
            },
        )
        assert r.status_code == 403
        r = other.post(
            "/processings/v2",
            json={
                "name": "x",
                "wdName": "🏠 Buildings",
                "geometry": SMALL,
                "params": {"sourceParams": {"myImagery": {"mosaicId": m["id"]}}},
            },
        )
        assert r.status_code == 403 and len(sim.charges) == n
        # the other account's own work is fine
        assert other.create()["projectId"] != proj["id"]


@pytest.mark.parametrize(
    "source",
    [
        {"myImagery": {"mosaicId": "no-such-mosaic"}},
        {"myImagery": {"imageIds": ["no-such-image"]}},
        {"imagerySearch": {"dataProvider": "cg", "imageIds": ["NO_SUCH_SCENE"]}},
    ],
)
def test_unknown_source_ids_refused_and_not_charged(api, mapflow_sim, source):
    before = api.get("/user/status").json()["remainingCredits"]
    r = api.post(
        "/processings/v2",
        json={
            "name": "x",
            "wdName": "🏠 Buildings",
            "geometry": SMALL,
            "params": {"sourceParams": source},
        },
    )
    assert r.status_code == 400 and r.json()["code"].endswith("_NOT_FOUND"), r.text
    assert api.get("/user/status").json()["remainingCredits"] == before
    assert mapflow_sim.charges == []


@pytest.mark.mapflow_sim(listing_lag_s=30)
def test_listing_lag(api, mapflow_sim):
    p = api.create()
    pid = api.get("/projects/default").json()["id"]
    assert api.get(f"/processings/{p['id']}/v2").status_code == 200  # by id at once
    assert p["id"] not in {x["id"] for x in api.get("/processings/v2").json()}
    page = api.post(f"/projects/{pid}/processings/v2/page", json={"limit": 30}).json()
    assert page["total"] == 0 and page["results"] == []
    mapflow_sim.advance(31)
    assert p["id"] in {x["id"] for x in api.get("/processings/v2").json()}


@pytest.mark.mapflow_sim(page_size=2)
def test_page_size_caps_every_listing(api):
    for _ in range(3):
        api.create()
    pid = api.get("/projects/default").json()["id"]
    assert len(api.get("/processings/v2").json()) == 2
    assert len(api.get(f"/projects/{pid}/processings").json()) == 2
    page = api.post(f"/projects/{pid}/processings/v2/page", json={"limit": 30}).json()
    assert page["count"] == 2 and page["total"] == 3
    rest = api.post(f"/projects/{pid}/processings/v2/page", json={"limit": 30, "offset": 2}).json()
    assert rest["count"] == 1


def test_pages_sort_and_filter(api):
    for name in ("b kazan", "a kazan", "c moscow"):
        api.create(name=name)
    pid = api.get("/projects/default").json()["id"]
    page = api.post(
        f"/projects/{pid}/processings/v2/page",
        json={"limit": 30, "offset": 0, "terms": "kazan", "sortBy": "NAME", "sortOrder": "ASC"},
    ).json()
    assert [x["name"] for x in page["results"]] == ["a kazan", "b kazan"] and page["total"] == 2
    projs = api.post(
        "/projects/page",
        json={"limit": 20, "offset": 0, "filter": "", "sortBy": "UPDATED", "sortOrder": "DESC"},
    ).json()
    assert projs["total"] >= 1 and projs["results"][0]["shareProject"]["owners"][0]["email"]


@pytest.mark.parametrize("order", ["DESC", "ASC"])
@pytest.mark.parametrize("terms", ["", "kazan"])
def test_pages_by_creation_walk_the_listing_in_order(api, mapflow_sim, order, terms):
    """Pages of 2 by creation (the default sort) hold, page after page, the unpaged
    listing's processings that match ``terms``, as they read there (status included),
    ordered by creation time then id, with the matching count as ``total``."""
    for i, name in enumerate(["b kazan", "a kazan", "c moscow", "d kazan", "e moscow"]):
        api.create(name=name)
        mapflow_sim.advance(1 + i % 2)
    pid = api.get("/projects/default").json()["id"]
    listing = [p for p in api.get(f"/projects/{pid}/processings/v2").json() if terms in p["name"]]
    listing.sort(key=lambda p: (p["created"], p["id"]), reverse=order == "DESC")
    body = {"limit": 2, "terms": terms, "sortOrder": order}
    pages = [
        api.post(f"/projects/{pid}/processings/v2/page", json={**body, "offset": o}).json()
        for o in (0, 2, 4)
    ]
    assert [p["total"] for p in pages] == [len(listing)] * 3
    assert [p["count"] for p in pages] == [len(p["results"]) for p in pages]
    assert [r for p in pages for r in p["results"]] == listing


@pytest.mark.mapflow_sim(tile_url_token_in_path=True)
def test_tile_urls_carry_the_token(api, mapflow_sim):
    p = api.create()
    url = p["vectorLayer"]["tileJsonUrl"]
    assert quote(mapflow_sim.token, safe="") in url
    r = requests.get(url, timeout=30)  # no Authorization: the path is the credential
    assert r.status_code == 200 and r.json()["tiles"][0].startswith(mapflow_sim.url)
    bad = url.replace(quote(mapflow_sim.token, safe=""), "bad")
    assert requests.get(bad, timeout=30).status_code == 401


def test_tile_urls_need_auth_by_default(api, mapflow_sim):
    p = api.create()
    url = p["rasterLayer"]["tileJsonUrl"]
    assert mapflow_sim.token not in url and url.startswith(mapflow_sim.url)
    assert requests.get(url, timeout=30).status_code == 401
    assert api.s.get(url, timeout=30).status_code == 200


@pytest.mark.mapflow_sim(review_workflow=True)
def test_review_workflow(api):
    p = api.create()
    got = api.get(f"/processings/{p['id']}/v2").json()
    assert got["reviewStatus"]["reviewStatus"] == "IN_REVIEW"
    assert api.put(f"/processings/{p['id']}/rate", json={"rating": 6}).status_code == 400
    r = api.put(f"/processings/{p['id']}/rate", json={"rating": 4, "feedback": "ok"})
    assert r.status_code == 200 and r.json()["rating"] == {"rating": 4, "feedback": "ok"}
    r = api.put(
        f"/processings/{p['id']}/rejection",
        json={"comment": "no", "features": {"type": "FeatureCollection", "features": []}},
    )
    assert r.json()["reviewStatus"]["reviewStatus"] == "NOT_ACCEPTED"
    r = api.put(f"/processings/{p['id']}/acceptation")
    assert r.json()["reviewStatus"] == {"reviewStatus": "ACCEPTED", "inReviewUntil": None}


def test_template_new_dates_start_paid_processings():
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc).timestamp()
    clock = {"t": t0}
    with serve(clock=lambda: clock["t"]) as sim:
        api = Api(sim)
        pid = api.get("/projects/default").json()["id"]
        body = {
            "name": "watch",
            "projectId": pid,
            "activeUntil": "2026-08-01T00:00:00.0Z",
            "searchParams": {
                "aoiDetails": {
                    "type": "FeatureCollection",
                    "features": [{"type": "Feature", "geometry": SMALL, "properties": {}}],
                },
                "acquisitionDateFrom": "2026-01-01T00:00:00Z",
                "maxCloudCover": 100,
            },
            "processingParams": {"wdName": "🏠 Buildings"},
        }
        r = api.post("/processings/template", json=body)
        assert r.status_code == 200, r.text
        t = r.json()["template"]
        assert sim.charges == []  # the first results are not new: nothing started
        assert sim.run_templates() == []  # nothing new yet
        clock["t"] += 61 * 86400  # two more 30-day windows of fresh imagery
        started = sim.run_templates()
        assert started and len(sim.charges) == len(started)
        got = api.get(f"/processings/template/{t['id']}").json()["template"]
        assert got["newImagesCount"] >= 1 and got["lastCheckedAt"]
        procs = api.get(f"/processings/template/{t['id']}/processings").json()
        assert {p["id"] for p in procs} == set(started)
        assert sim.run_templates() == []  # each date once
        api.put(f"/processings/template/{t['id']}/image/seenAll")
        assert api.get(f"/processings/template/{t['id']}").json()["template"]["newImagesCount"] == 0
        # paused templates do not run
        api.post(f"/processings/template/{t['id']}/pause")
        clock["t"] += 40 * 86400
        assert sim.run_templates() == []


@pytest.mark.parametrize("where", ["name", "params", "none"])
def test_a_template_processing_states_its_imagery_date_where_the_option_says(where):
    """``template_processing_date``: the day of a template processing's images ends its
    name, is its listing's ``params.acquisition_date``, or is stated nowhere."""
    clock = {"t": dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc).timestamp()}
    with serve(clock=lambda: clock["t"], template_processing_date=where) as sim:
        api = Api(sim)
        body = {
            "name": "watch",
            "projectId": api.get("/projects/default").json()["id"],
            "searchParams": {
                "aoiDetails": {
                    "type": "FeatureCollection",
                    "features": [{"type": "Feature", "geometry": SMALL, "properties": {}}],
                },
            },
            "processingParams": {"wdName": "🏠 Buildings"},
        }
        t = api.post("/processings/template", json=body).json()["template"]
        clock["t"] += 61 * 86400
        assert sim.run_templates()
        procs = api.get(f"/processings/template/{t['id']}/processings").json()
        assert procs
        for p in procs:
            day = sim.imagery_date(p["id"])
            assert p["name"].endswith(f" {day}") == (where == "name")
            assert p["params"].get("acquisition_date") == (day if where == "params" else None)
            assert day not in p["name"] + str(p["params"]) or where != "none"


def test_an_unknown_template_processing_date_is_refused():
    with (
        pytest.raises(ValueError, match="template_processing_date"),
        serve(template_processing_date="title"),
    ):
        pass
