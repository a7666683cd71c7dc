"""The typed state, the state-file format, the route table and the import boundary."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest
from _golden import CLOCK_V1, GOLDEN_V1, STATE_V1, copy_state, golden_reads
from support.sim_http import SMALL, Api

from mapflow_geo.sim import Service, SimOptions, routes, serve
from mapflow_geo.sim.base import Request, Response
from mapflow_geo.sim.state import STATE_VERSION, State

SIM_DIR = Path(inspect.getfile(Service)).parent


# ----------------------------------------------------------------------------- state file
def test_v1_state_file_round_trips():
    raw = json.loads(STATE_V1.read_text(encoding="utf-8"))
    st = State.from_dict(raw)
    assert raw["version"] == STATE_VERSION == 1
    assert len(st.processings) == 9 and len(st.images) == 4 and len(st.shares) == 1
    assert st.to_dict() == raw  # the format is unchanged: what the old simulator wrote


def test_v1_state_file_answers_as_before(tmp_path):
    """Reads over a state file written before the split answer exactly as they did then."""
    got = golden_reads(copy_state(tmp_path))
    want = json.loads(GOLDEN_V1.read_text(encoding="utf-8"))
    assert got.keys() == want.keys()
    for t in want:
        assert got[t].keys() == want[t].keys()
        for k in want[t]:
            assert got[t][k] == want[t][k], (t, k)


def test_saved_state_is_the_loaded_state(tmp_path):
    sf = copy_state(tmp_path)
    raw = json.loads(Path(sf).read_text(encoding="utf-8"))
    with serve(state_file=sf, clock=lambda: CLOCK_V1) as sim:
        sim.set_credits(7)  # saves
        assert sim.state["account"]["remainingCredits"] == 7
    raw["account"]["remainingCredits"] = 7
    assert json.loads(Path(sf).read_text(encoding="utf-8")) == raw


def test_unknown_state_version_is_refused(tmp_path):
    raw = json.loads(STATE_V1.read_text(encoding="utf-8"))
    raw["version"] = 99
    sf = tmp_path / "state.json"
    sf.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="version 99"):
        Service(SimOptions(state_file=str(sf)))


def test_server_state_is_a_detached_copy(mapflow_sim):
    Api(mapflow_sim).create(meta={"k": "v"})
    st = mapflow_sim.state
    p = next(iter(st["processings"].values()))
    p["meta"]["k"] = "changed"
    st["account"]["remainingCredits"] = -1
    fresh = mapflow_sim.state
    assert next(iter(fresh["processings"].values()))["meta"] == {"k": "v"}
    assert fresh["account"]["remainingCredits"] > 0


# ----------------------------------------------------------------------------- route table
def test_paid_creates_are_declared_in_the_table():
    assert sorted(routes.paid_creates()) == sorted(
        [
            ("POST", "/processings/v2"),
            ("POST", "/processings"),
            ("POST", "/projects"),
            ("POST", "/rasters/mosaic"),
            ("POST", "/rasters/mosaic/image"),
            ("POST", "/rasters/mosaic/mosaic"),
            ("POST", "/rasters/mosaic/{mosaic_id}/image"),
            ("POST", "/rasters/mosaic/{mosaic_id}/link-image"),
            ("POST", "/rasters"),
            ("POST", "/processings/template/{template_id}/v2"),
            ("POST", "/processings/template/{template_id}/restart"),
            ("POST", "/processings/template/{template_id}/resume"),
        ]
    )


def test_route_table_is_consistent():
    seen = set()
    for r in routes.ROUTES:
        assert (r.method, r.path) not in seen, r
        seen.add((r.method, r.path))
        assert r.admin == r.path.startswith("/_sim/"), r
        params = list(inspect.signature(r.handler).parameters)
        assert params[:2] == (["server", "payload"] if r.admin else ["svc", "req"]), r
        assert sorted(params[2:]) == sorted(r.regex.groupindex), r
        assert not (r.admin and r.paid_create), r


def _answer(status):
    def handler(svc, req):
        return Response(status, b"{}")

    return handler


@pytest.mark.parametrize(
    "paid, status, committed",
    [(True, 200, True), (True, 201, True), (True, 400, False), (False, 200, False)],
)
def test_dispatcher_reads_the_flag_not_the_name(monkeypatch, paid, status, committed):
    handler = _answer(status)
    handler.__name__ = "create_processing_v2"  # the name means nothing any more
    table = [routes.Route("POST", "/thing", handler, paid_create=paid)]
    monkeypatch.setattr(routes, "_API", table)
    svc = Service(SimOptions())
    auth = {"authorization": f"Basic {svc.token}"}
    resp = routes.dispatch(svc, Request("POST", "/rest/thing", {}, auth))
    assert resp.status == status and resp.committed_create is committed


def test_a_refused_paid_create_is_not_committed(mapflow_sim):
    svc = mapflow_sim.service
    auth = {"authorization": f"Basic {svc.token}"}
    body = json.dumps({"wdName": "🏠 Buildings", "geometry": SMALL}).encode()
    ok = routes.dispatch(svc, Request("POST", "/rest/processings/v2", {}, auth, body))
    assert ok.status == 200 and ok.committed_create
    bad = routes.dispatch(svc, Request("POST", "/rest/processings/v2", {}, auth, b"{}"))
    assert bad.status == 400 and not bad.committed_create
    got = routes.dispatch(svc, Request("GET", "/rest/processings/v2", {}, auth))
    assert got.status == 200 and not got.committed_create


# ----------------------------------------------------------------------------- boundary
def test_sim_imports_nothing_of_the_package_but_the_documented_client():
    """Only ``server._client_class`` may import the package (lazily, for ``client()``)."""
    found = []
    for path in sorted(SIM_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owner = {}  # node -> name of the innermost enclosing function
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(fn):
                    owner[node] = fn.name  # inner functions are walked later and win
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n == "mapflow_geo" or n.startswith("mapflow_geo.") for n in names):
                found.append((path.name, owner.get(node, "<module>"), node.lineno))
    found = sorted(set(found))
    assert [(f, n) for f, n, _ in found] == [("server.py", "_client_class")], found
    src = (SIM_DIR / "server.py").read_text(encoding="utf-8")
    assert "# documented exception: the convenience client (DESIGN.md)" in src
