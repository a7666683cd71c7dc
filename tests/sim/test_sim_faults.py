"""Fault injection, request log, persistence, admin routes, CLI, fixture."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from support.sim_http import SMALL, Api, box

from mapflow_geo.sim import serve


@pytest.mark.mapflow_sim(faults={"status_503": 1.0})
def test_503_before_handler_commits_nothing(mapflow_sim, api):
    r = api.post("/processings/v2", json={"name": "x", "wdName": "🏠 Buildings", "geometry": SMALL})
    assert r.status_code == 503 and r.json()["code"] == "SERVICE_UNAVAILABLE"
    assert mapflow_sim.charges == []
    assert mapflow_sim.state["processings"] == {}
    assert mapflow_sim.count("POST", "/rest/processings/v2", 503) == 1
    # admin routes are never faulted
    assert requests.get(mapflow_sim.base + "/_sim/requests", timeout=5).status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503])
def test_status_faults(status):
    with serve(faults={f"status_{status}": 1.0}) as sim:
        r = Api(sim).get("/user/status")
        assert r.status_code == status
        assert {"code", "message"} <= set(r.json())
        assert [x.fault for x in sim.requests] == [f"status_{status}"]


@pytest.mark.mapflow_sim(faults={"status_429": 1.0, "retry_after": 0})
def test_429_retry_after(mapflow_sim, api):
    r = api.get("/user/status")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "0"


@pytest.mark.mapflow_sim(faults={"reset": 1.0})
def test_reset_connection(mapflow_sim, api):
    with pytest.raises(requests.ConnectionError):
        api.get("/user/status")
    recs = mapflow_sim.requests
    assert recs and recs[-1].fault == "reset" and recs[-1].status == 0


@pytest.mark.mapflow_sim(faults={"drop_create_response": 1.0})
def test_drop_create_response_commits_and_charges(mapflow_sim, api):
    with pytest.raises(requests.ConnectionError):
        api.post(
            "/processings/v2",
            json={"name": "x", "wdName": "🏠 Buildings", "geometry": SMALL, "meta": {"key": "k1"}},
        )
    procs = api.get("/processings/v2").json()  # reads are unaffected
    assert len(procs) == 1 and procs[0]["meta"] == {"key": "k1"}
    assert mapflow_sim.charges_for(procs[0]["id"]) == 1
    rec = [r for r in mapflow_sim.requests if r.method == "POST"][0]
    assert rec.fault == "drop_create_response" and rec.handled_status == 200


def test_cut_listing_serves_an_empty_page_before_total(mapflow_sim, api):
    pid = api.get("/projects/default").json()["id"]
    for i in range(3):
        body = {"name": f"p{i}", "wdName": "🏠 Buildings", "geometry": SMALL, "projectId": pid}
        assert api.post("/processings/v2", json=body).status_code == 200
    page = f"/projects/{pid}/processings/v2/page"
    mapflow_sim.set_faults({"cut_listing": 1.0, "paths": [page]})
    cut = api.post(page, json={"limit": 2, "offset": 0}).json()
    assert cut == {"results": [], "total": 3, "count": 0}
    rec = mapflow_sim.requests[-1]
    assert rec.fault == "cut_listing" and rec.handled_status == 200 and rec.status == 200
    # only pages that had results are cut; other routes answer whole; nothing is committed
    assert api.post(page, json={"limit": 2, "offset": 3}).json()["count"] == 0
    assert mapflow_sim.requests[-1].fault is None
    assert len(api.get("/processings/v2").json()) == 3
    assert len(mapflow_sim.charges) == 3
    mapflow_sim.clear_faults()
    whole = api.post(page, json={"limit": 2, "offset": 0}).json()
    assert whole["total"] == 3 and whole["count"] == 2 and len(whole["results"]) == 2


@pytest.mark.mapflow_sim(faults={"status_503": 1.0, "methods": ["GET"]})
def test_fault_methods_filter(mapflow_sim, api):
    assert api.get("/user/status").status_code == 503
    assert (
        api.post(
            "/processings/v2", json={"name": "x", "wdName": "🏠 Buildings", "geometry": SMALL}
        ).status_code
        == 200
    )


TWO_AOIS = {
    "type": "MultiPolygon",
    "coordinates": [box(37.615, 55.755, 37.62, 55.758)["coordinates"],
                    box(37.63, 55.755, 37.635, 55.758)["coordinates"]],
}  # fmt: skip


def test_fault_paths_match_the_query_one_aoi_result():
    with serve(processing_seconds=0) as sim:
        api = Api(sim)
        pid = api.create(geometry=TWO_AOIS)["id"]
        a, b = (x["id"] for x in api.get(f"/processings/{pid}/aois").json())
        sim.set_faults({"status_503": 1.0, "paths": [f"/processings/{pid}/result?aoiId={a}"]})
        assert api.get(f"/processings/{pid}/result", params={"aoiId": a}).status_code == 503
        assert api.get(f"/processings/{pid}/result", params={"aoiId": b}).status_code == 200
        assert api.get(f"/processings/{pid}/result").status_code == 200


def test_results_per_aoi_can_be_refused_whole_result_served():
    with serve(processing_seconds=0, result_per_aoi=False) as sim:
        api = Api(sim)
        pid = api.create(geometry=TWO_AOIS)["id"]
        a = api.get(f"/processings/{pid}/aois").json()[0]["id"]
        r = api.get(f"/processings/{pid}/result", params={"aoiId": a})
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
        whole = api.get(f"/processings/{pid}/result")
        assert whole.status_code == 200 and whole.json()["type"] == "FeatureCollection"


def test_fault_fractions_are_seeded_and_counted():
    def run():
        with serve(seed=5, faults={"status_503": 0.3, "status_429": 0.2, "retry_after": 0}) as sim:
            a = Api(sim)
            codes = [a.get("/user/status").status_code for _ in range(60)]
            assert sim.count(status=503) == codes.count(503)
            assert sim.count(status=429) == codes.count(429)
            return codes

    c1, c2 = run(), run()
    assert c1 == c2
    assert 5 < c1.count(503) < 35 and c1.count(200) > 15


def test_set_faults_at_runtime_and_admin_route(mapflow_sim, api):
    assert api.get("/user/status").status_code == 200
    mapflow_sim.set_faults({"status_502": 1.0})
    assert api.get("/user/status").status_code == 502
    r = requests.post(mapflow_sim.base + "/_sim/faults", json={}, timeout=5)
    assert r.status_code == 200 and r.json()["status_502"] == 0
    assert api.get("/user/status").status_code == 200
    assert (
        requests.post(mapflow_sim.base + "/_sim/faults", json={"bogus": 1}, timeout=5).status_code
        == 400
    )
    log = requests.get(mapflow_sim.base + "/_sim/requests", timeout=5).json()
    assert [x["status"] for x in log] == [200, 502, 200]
    assert {"method", "path", "status", "query", "time", "body_size"} <= set(log[0])
    mapflow_sim.clear_requests()
    assert mapflow_sim.requests == []


@pytest.mark.mapflow_sim(faults={"latency_s": 0.2})
def test_latency(api):
    t = time.perf_counter()
    api.get("/user/status")
    assert time.perf_counter() - t >= 0.2


def test_unknown_options_rejected():
    with pytest.raises(TypeError):
        with serve(bogus=1):
            pass
    with pytest.raises(ValueError):
        with serve(faults={"status_404": 1.0}):
            pass


def test_state_admin_route(mapflow_sim, api):
    p = api.create(meta={"k": "v"})
    st = requests.get(mapflow_sim.base + "/_sim/state", timeout=5).json()
    assert st["counters"]["creates_committed"] == 1
    assert [x["id"] for x in st["processings"]] == [p["id"]]
    assert st["processings"][0]["charges"] == 1


# ----------------------------------------------------------------------------- persistence
def test_persistence_across_restart(tmp_path):
    sf = str(tmp_path / "state.json")
    with serve(state_file=sf, processing_seconds=0.4, credits=1000) as sim:
        a = Api(sim)
        proj = a.post("/projects", json={"name": "keep"}).json()["id"]
        p = a.create(projectId=proj, meta={"k": "v"})
        m = a.post(
            "/rasters/mosaic/image?name=mm", files={"file": ("a.tif", b"II*\x00data")}
        ).json()
        assert a.get(f"/processings/{p['id']}/v2").json()["status"] == "IN_PROGRESS"
        token = sim.token
    assert json.load(open(sf))["processings"]
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".simstate-")]
    time.sleep(0.45)
    with serve(state_file=sf) as sim2:
        assert sim2.token == token
        a = Api(sim2)
        g = a.get(f"/processings/{p['id']}/v2").json()
        assert g["status"] == "OK" and g["meta"] == {"k": "v"} and g["projectId"] == proj
        assert a.get("/user/status").json()["remainingCredits"] == 1000 - p["cost"]
        assert len(a.get(f"/rasters/mosaic/{m['mosaic_id']}/image").json()) == 1
        assert sim2.charges_for(p["id"]) == 1
        assert a.get(f"/processings/{p['id']}/result").status_code == 200


# ----------------------------------------------------------------------------- concurrency
def test_concurrent_creates(mapflow_sim):
    from concurrent.futures import ThreadPoolExecutor

    def one(k):
        a = Api(mapflow_sim)
        return a.post(
            "/processings/v2", json={"name": f"c{k}", "wdName": "🏠 Buildings", "geometry": SMALL}
        ).status_code

    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(one, range(40)))
    assert codes == [200] * 40
    assert len(mapflow_sim.charges) == 40
    assert len({c["processingId"] for c in mapflow_sim.charges}) == 40


def test_list_returns_every_one_of_500_processings(mapflow_sim, api):
    for k in range(500):
        r = api.post(
            "/processings/v2",
            json={
                "name": f"p{k}",
                "wdName": "🏠 Buildings",
                "geometry": SMALL,
                "meta": {"n": str(k)},
            },
        )
        assert r.status_code == 200
    lst = api.get("/processings/v2").json()
    assert len(lst) == 500 and {x["meta"]["n"] for x in lst} == {str(k) for k in range(500)}


# ----------------------------------------------------------------------------- CLI
def test_cli_serves_until_interrupted(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mapflow_geo.sim",
            "--port",
            "0",
            "--token",
            "dGVzdEB4Lnk6a2V5",
            "--aoi-area-limit-km2",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/rest")
        assert "dGVzdEB4Lnk6a2V5" in proc.stdout.readline()
        r = requests.get(
            url + "/projects/default",
            headers={"Authorization": "Basic dGVzdEB4Lnk6a2V5"},
            timeout=5,
        )
        assert r.json()["user"]["aoiAreaLimit"] == 3_000_000
    finally:
        proc.send_signal(signal.SIGINT)
        try:  # communicate drains the pipes: a full stderr pipe must not hold it up
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"the simulator did not stop on SIGINT; stderr: {err[-2000:]}")
    assert proc.returncode == 0 and "stopped" in err
    assert proc.returncode == 0


def test_server_client_helper(mapflow_sim):
    pytest.importorskip("mapflow_geo.client")
    c = mapflow_sim.client()
    assert type(c).__name__ == "MapflowClient"
