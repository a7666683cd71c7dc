"""Tests that kill named mutants of the money, result and secret guarantees.

Each test here was checked by breaking the code as its docstring says, seeing the test
fail, and restoring the code (``tools/mutate.py`` replays these mutations and others;
``make mutate-named``). The stitch mutants (``row`` dropped from the stitch key; components
without their final step) are killed by ``tests/results/test_stitch_props.py``
(``test_rows_never_join``, ``test_line_around_a_tile_corner_in_four_pieces_is_one``);
the two here restate them at the public ``stitch`` without Hypothesis.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import geopandas as gpd
import pytest
from pyproj import Geod
from shapely.geometry import LineString, box
from support import record
from support.areas import squares
from support.cutting import cut, truth_frame

import mapflow_geo  # noqa: F401
from mapflow_geo import exceptions as exc
from mapflow_geo import sim
from mapflow_geo.client import MapflowClient, RetryPolicy
from mapflow_geo.results import stitch

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}
GEOD = Geod(ellps="WGS84")


# ---------------------------------------------------------------- a. adopt_grace_s
def test_lagging_listings_and_dropped_creates_never_pay_twice(tmp_path):
    """Mutant: ``Runner._adopt`` ignores ``adopt_grace_s`` and re-creates at once what a
    complete listing lacks. Listings lag 1.5 s behind creates and half the creates lose
    their answer after the commit; the account bills area, so no balance check stands
    in for the grace period. Every dropped create must be adopted once it is listed:
    one committed processing per key, one charge each."""
    gdf = squares(8)
    with sim.serve(
        aoi_area_limit_km2=5,
        billing_type="AREA",
        listing_lag_s=1.5,
        processing_seconds=0.5,
        seed=5,
        faults={"drop_create_response": 0.5},
    ) as server:
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        dropped = [r for r in server.requests if r.fault == "drop_create_response"]
        keys = record.keys(server)
        charges = server.charges
        n = res.tiles["processing_key"].nunique()
    assert len(dropped) >= 2, "the scenario did not drop create answers"
    assert res.complete and n == 8
    assert [k for k, c in keys.items() if c > 1] == [], f"paid twice: {keys}"
    assert len(keys) == n and None not in keys
    assert len(charges) == n == len({c["processingId"] for c in charges})


def test_balance_holds_a_recreate_back_while_listings_lag(tmp_path):
    """Mutant: the balance check (an unexplained charge keeps a missing create waiting)
    disabled. On a ``CREDITS`` account whose listings lag 2 s, a run with a grace period
    of 0.3 s and dropped create answers must still pay once per processing: the charge
    the account shows, and no known processing explains, holds the re-create back until
    the listing shows the processing."""
    gdf = squares(6)
    with sim.serve(aoi_area_limit_km2=5, listing_lag_s=2.0, processing_seconds=0.5, seed=7,
                   faults={"drop_create_response": 0.5}) as server:  # fmt: skip
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path,
                                  adopt_grace_s=0.3, **FAST)  # fmt: skip
        dropped = [r for r in server.requests if r.fault == "drop_create_response"]
        keys = record.keys(server)
        charges = server.charges
    assert len(dropped) >= 2, "the scenario did not drop create answers"
    assert res.complete
    assert [k for k, c in keys.items() if c > 1] == [], f"paid twice: {keys}"
    assert len(charges) == 6 == len(keys)


def test_a_processing_of_another_run_is_never_adopted(tmp_path):
    """Mutant: adoption by ``meta`` key alone, without the run id. A second run of the
    same areas (another run dir: same processing keys, another run id) in the same
    project, whose creates are reset before the server handles them half the time, must
    create and pay for its own processings, never take the first run's."""
    gdf = squares(6)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=11) as server:
        client = server.client()
        first = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path / "a", **FAST)
        ids_a = set(first.tiles["processing_id"])
        server.set_faults(reset=0.5, methods=["POST"], paths=["/processings/v2"])
        second = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path / "b",
                                     adopt_grace_s=0.3, **FAST)  # fmt: skip
        resets = [r for r in server.requests if r.fault == "reset"]
        charges = server.charges
    assert len(resets) >= 2, "the scenario reset no create"
    assert second.complete
    ids_b = set(second.tiles["processing_id"])
    assert len(ids_b) == 6 and not ids_a & ids_b, "the second run adopted the first's"
    assert len(charges) == 12 == len({c["processingId"] for c in charges})


def test_a_same_named_processing_from_before_the_intent_is_never_adopted(tmp_path):
    """Mutant: adoption by name ignores when the processing was created. Processings
    without ``meta`` that carry exactly the names the run will give its creates, made
    ten minutes earlier (by a script, a colleague, an old version), are in the project;
    the run's creates are reset before the server handles them half the time. The run
    must create its own processings, never adopt those."""
    import time

    from mapflow_geo.run.prepare import prepare_run

    offset = [-600.0]  # the simulator's clock: ten minutes ago, then now
    gdf = squares(4)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=13,
                   clock=lambda: time.time() + offset[0]) as server:  # fmt: skip
        client = server.client()
        _, _, procs, _ = prepare_run(gdf, "buildings", client=client)
        stale = {client.processings.create(**p.body).id for p in procs}  # no meta
        offset[0] = 0.0
        server.set_faults(reset=0.5, methods=["POST"], paths=["/processings/v2"])
        res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path,
                                  adopt_grace_s=0.3, **FAST)  # fmt: skip
        resets = [r for r in server.requests if r.fault == "reset"]
    assert resets, "the scenario reset no create"
    assert res.complete
    own = set(res.tiles["processing_id"])
    assert len(own) == 4 and not own & stale, "an old same-named processing was adopted"


def test_a_service_that_drops_meta_has_the_run_adopt_by_name(tmp_path):
    """Mutants: adoption by name disabled or narrowed. A service that keeps no ``meta``
    (the simulator's processings stripped of it as each create commits) and loses the
    answers of the first two creates: the account bills area (no balance signal), the
    grace period is 0.5 s. The run must adopt each by the name its create gave (listed,
    without ``meta``, created after the intent): one processing per name."""
    import time
    from collections import Counter

    gdf = squares(2, km=1.0)  # under a 1.5 km² limit: one processing each
    on_create = {"methods": ["POST"], "paths": [record.CREATE_PATH]}
    faults = {"drop_create_response": 1.0, **on_create}
    with sim.serve(
        aoi_area_limit_km2=1.5, billing_type="AREA", processing_seconds=0.2, seed=9, faults=faults
    ) as server:

        def service_keeps_no_meta(_rec):
            with server.service.lock:
                for p in server.service.state.processings.values():
                    p.meta = {}

        def answers_again_after_two_drops():
            while sum(r.fault == "drop_create_response" for r in server.requests) < 2:
                time.sleep(0.01)
            server.clear_faults()

        server.after_create = service_keeps_no_meta
        threading.Thread(target=answers_again_after_two_drops, daemon=True).start()
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path,
                                  adopt_grace_s=0.5, max_workers=1, **FAST)  # fmt: skip
        procs = server.processings
        dropped = [r for r in server.requests if r.fault == "drop_create_response"]
    assert len(dropped) == 2 and all(not p["meta"] for p in procs)
    assert res.complete
    names = Counter(p["name"] for p in procs)
    assert len(names) == 2 and set(names.values()) == {1}, f"created twice: {names}"
    assert set(res.processings["processing_id"]) == {p["id"] for p in procs}


def test_journal_never_moves_a_paid_processing_back(tmp_path):
    """Mutants: ``mark_intent`` without its state guard; ``reopen_not_created`` by status
    alone. A created (paid) or finished record never goes back to ``intent`` or
    ``planned``, whatever is asked of the journal: only records the server refused and
    never gave an id are re-opened."""
    from mapflow_geo.run import journal as jr
    from mapflow_geo.run.status import RunStatus

    with jr.Journal(tmp_path, "f" * 64) as j:
        for key in ("paid", "done", "refused", "odd"):
            j.add_planned(key, estimate=1, area_km2=1.0)
            j.mark_intent(key, meta={"mapflow_geo_key": key})
        j.mark_created("paid", "id-paid", status="IN_PROGRESS", cost=13)
        j.mark_created("done", "id-done", status="OK", cost=13)
        j.mark_finished("done")
        j.mark_intent("paid", meta={"mapflow_geo_key": "paid"})
        j.mark_intent("done", meta={"mapflow_geo_key": "done"})
        assert (j.get("paid").state, j.get("paid").create_attempts) == (jr.CREATED, 1)
        assert j.get("done").state == jr.FINISHED
        # refused before any id; and a paid one whose status reads NOT_CREATED
        j.mark_not_created("refused", message="HTTP 400")
        j.update_status("refused", status=RunStatus.NOT_CREATED.value, messages=["HTTP 400"])
        j.mark_finished("refused")
        j.mark_created("odd", "id-odd", status="OK", cost=13)
        j.update_status("odd", status=RunStatus.NOT_CREATED.value)
        j.mark_finished("odd")
        assert j.reopen_not_created() == ["refused"]
        assert j.get("refused").state == jr.PLANNED
        assert (j.get("odd").state, j.get("odd").processing_id) == (jr.FINISHED, "id-odd")
    # and on disk, as a resumed run reads it
    with jr.Journal(tmp_path, "f" * 64) as j:
        got = {r.key: (r.state, r.processing_id) for r in j.records()}
    assert got == {"paid": (jr.CREATED, "id-paid"), "done": (jr.FINISHED, "id-done"),
                   "refused": (jr.PLANNED, None), "odd": (jr.FINISHED, "id-odd")}  # fmt: skip


# ---------------------------------------------------------------- b, c. stitch
X0, Y0 = 37.6, 55.7


def _tiles(cells: list[tuple[str, int, tuple]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"tile_id": [c[0] for c in cells], "row": [c[1] for c in cells]},
        geometry=[box(*c[2]) for c in cells],
        crs=4326,
    )


def test_objects_of_two_rows_touching_at_their_shared_seam_stay_apart():
    """Mutants: ``row`` dropped from the stitch key (or from the line rule's). Two input
    rows side by side, each of two tiles; a building and a road straddle the border
    between the rows: their pieces meet along that border (a shared cut edge, a shared
    end), but belong to different rows and must stay two each."""
    s = 0.01
    tiles = _tiles([
        ("a0", 0, (X0, Y0, X0 + s, Y0 + s)), ("a1", 0, (X0, Y0 + s, X0 + s, Y0 + 2 * s)),
        ("b0", 1, (X0 + s, Y0, X0 + 2 * s, Y0 + s)),
        ("b1", 1, (X0 + s, Y0 + s, X0 + 2 * s, Y0 + 2 * s)),
    ])  # fmt: skip
    house = box(X0 + s - 0.0004, Y0 + 0.004, X0 + s + 0.0005, Y0 + 0.005)
    road = LineString([(X0 + s - 0.003, Y0 + 0.007), (X0 + s + 0.003, Y0 + 0.0072)])
    for obj, kind in ((house, "buildings"), (road, "roads")):
        pieces = cut(truth_frame([obj], kind), tiles)
        assert sorted(pieces["tile_id"]) == ["a0", "b0"]
        out = stitch(pieces, tiles)
        assert sorted(out["row"]) == [0, 1], kind
        assert sorted(out["tile_id"]) == ["a0", "b0"], kind


def test_road_cut_into_four_pieces_around_a_tile_corner_is_one():
    """Mutant: components without their final step (a union-find that skips the last
    find per node, labels propagated once). A road winding through the four tiles
    around a corner comes back as four pieces, each joined only to the next; whatever
    order they come in, they must be one object."""
    s = 0.01
    g = [(f"t{i}{j}", 0, (X0 + i * s, Y0 + j * s, X0 + (i + 1) * s, Y0 + (j + 1) * s))
         for j in range(2) for i in range(2)]  # fmt: skip
    tiles = _tiles(g)
    road = LineString([(X0 + 0.008, Y0 + 0.008), (X0 + 0.012, Y0 + 0.0085),
                       (X0 + 0.0125, Y0 + 0.012), (X0 + 0.0085, Y0 + 0.0118)])  # fmt: skip
    pieces = cut(truth_frame([road], "roads"), tiles)
    assert len(pieces) == 4
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [0, 3, 1, 2], [2, 0, 3, 1], [1, 3, 0, 2]):
        out = stitch(pieces.iloc[order].reset_index(drop=True), tiles)
        assert len(out) == 1, order
        assert out.geometry.iloc[0].geom_type == "LineString"
        assert abs(out.geometry.iloc[0].length - road.length) < 1e-12


# ---------------------------------------------------------------- d. budgets
def _need_km2(gdf: gpd.GeoDataFrame) -> float:
    """The run's area as the service measures it (ellipsoidal), independently of the
    package: each square is one processing here."""
    return sum(abs(GEOD.geometry_area_perimeter(g)[0]) for g in gdf.geometry) / 1e6


@pytest.mark.parametrize("side", ["below", "above"])
def test_area_billing_budget_refuses_just_below_and_allows_just_above(tmp_path, side):
    """Mutant: km² compared with m² in ``check_budget`` for ``AREA`` billing (either
    way round). An account with a remaining area 0.2 % below what the run needs is
    refused with a BudgetError before any create; 0.2 % above, the run completes."""
    gdf = squares(3)
    need = _need_km2(gdf)
    left = need * (0.998 if side == "below" else 1.002)
    with sim.serve(
        aoi_area_limit_km2=5, billing_type="AREA", area_limit_km2=left, processing_seconds=0
    ) as server:
        client = server.client()
        assert client.account.status().remaining_area == pytest.approx(left * 1e6, abs=1)
        if side == "below":
            with pytest.raises(exc.BudgetError, match="km² left"):
                gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
            assert record.creates(server) == [] and server.charges == []
        else:
            res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
            assert res.complete and len(server.charges) == 3


@pytest.mark.parametrize("side", ["below", "exact"])
def test_credit_billing_budget_refuses_one_credit_short_and_allows_exact(tmp_path, side):
    """Mutants: the credits check dropped, off by one (``>=``), or counting processings
    already created. One credit short is refused before any create; exactly enough
    runs."""
    gdf = squares(3)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        client = server.client()
        need = int(gdf.mapflow.estimate("buildings", client=client).attrs["total_credits"])
        server.set_credits(need - 1 if side == "below" else need)
        if side == "below":
            with pytest.raises(exc.BudgetError, match="credits but the account has"):
                gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
            assert record.creates(server) == [] and server.charges == []
        else:
            res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
            assert res.complete and sum(c["cost"] for c in server.charges) == need


@pytest.mark.parametrize("margin", [-1, 0])
def test_max_credits_refuses_one_short_and_allows_the_estimate(tmp_path, margin):
    """Mutants: ``max_credits`` compared with ``>=`` or not enforced on the server's
    estimates. ``max_credits`` one under the estimate is refused before any create;
    equal to it, the run goes ahead."""
    gdf = squares(3)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        client = server.client()
        need = int(gdf.mapflow.estimate("buildings", client=client).attrs["total_credits"])
        run = dict(client=client, run_dir=tmp_path, max_credits=need + margin, **FAST)
        if margin < 0:
            with pytest.raises(exc.BudgetError, match=f"max_credits={need - 1}"):
                gdf.mapflow.process("buildings", **run)
            assert record.creates(server) == [] and server.charges == []
        else:
            assert gdf.mapflow.process("buildings", **run).complete


def test_credit_budget_counts_only_what_is_still_to_create(tmp_path):
    """Mutant: the credits check sums every processing of the run, not only those still
    to create. Another client spends the credits after the first create; the run stops
    creating (tiles ``NOT_CREATED``). The account is then topped up to exactly what the
    rest costs: the resumed run must be allowed and complete."""
    gdf = squares(3)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        client = server.client()

        def spend_elsewhere(rec):
            server.after_create = None
            server.set_credits(0)

        server.after_create = spend_elsewhere
        with pytest.raises(exc.RunFailedError) as ei:
            gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, max_workers=1,
                                **FAST)  # fmt: skip
        tiles = ei.value.result.tiles
        assert (tiles["status"] == "OK").sum() == len(server.charges) == 1
        est = gdf.mapflow.estimate("buildings", client=client)["credits"]
        paid = server.charges[0]["cost"]
        rest = int(round(est.sum())) - paid
        assert 0 < rest < int(round(est.sum()))
        server.set_credits(rest)
        res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        assert res.complete and len(server.charges) == 3
        assert server.state["account"]["remainingCredits"] == 0


def test_no_billing_runs_with_no_credits(tmp_path):
    """Mutant: a ``NONE`` account treated as a ``CREDITS`` one. Nothing is deducted
    there, so an empty balance refuses nothing."""
    gdf = squares(2)
    with sim.serve(aoi_area_limit_km2=5, billing_type="NONE", credits=0,
                   processing_seconds=0) as server:  # fmt: skip
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        assert res.complete and len(server.charges) == 2


# ---------------------------------------------------------------- e. secrets
EMAIL = "canary@mapflow.test"
KEY = "CANARY-KEY-3e8d5a7c91"
RAW = f"{EMAIL}:{KEY}"
TOKEN = base64.b64encode(RAW.encode()).decode()


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with an error whose body echoes one form of the caller's
    credentials, decoded from its ``Authorization`` header."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *a):  # quiet
        pass

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        token = self.headers.get("Authorization", "").split(" ", 1)[-1]
        raw = base64.b64decode(token).decode()
        form = {"raw": raw, "key": raw.split(":", 1)[1], "token": token}[self.server.form]
        body = json.dumps({"code": "BAD_CREDENTIALS", "message": f"rejected {form} here",
                           "params": {"got": form}}).encode()  # fmt: skip
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def echo():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _all_text(e: BaseException) -> str:
    parts = ["".join(traceback.format_exception(type(e), e, e.__traceback__))]
    while e is not None:
        parts += [str(e), repr(e), repr(vars(e)), repr(e.args)]
        e = e.__cause__ or e.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("form", ["raw", "key", "token"])
@pytest.mark.parametrize("status", [400, 401, 500])
def test_server_errors_echoing_each_form_of_the_token_leave_no_trace(echo, caplog, form, status):
    """Mutant: ``secret_values`` without the decoded ``email:key`` and the key alone. A
    server whose error bodies echo the credentials (decoded ``email:key``, the key
    alone, the token): nothing of them in exception text (chained), reprs, attributes
    or DEBUG logs; the email, which names the account, may stay."""
    caplog.set_level(logging.DEBUG)
    echo.form, echo.status = form, status
    client = MapflowClient(TOKEN, base_url=f"http://127.0.0.1:{echo.server_port}/rest",
                           retry=RetryPolicy(max_retries=0))  # fmt: skip
    texts = [repr(client), str(client)]
    for call in (client.account.status, lambda: client.processings.get("p1")):
        with pytest.raises(exc.APIError) as ei:
            call()
        assert ei.value.status == status
        assert "rejected *** here" in ei.value.message, ei.value.message
        texts.append(_all_text(ei.value))
    texts += [caplog.text] + [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    for secret in (RAW, KEY, TOKEN):
        assert secret not in blob, f"the {form} form leaked"
    assert "***" in blob
