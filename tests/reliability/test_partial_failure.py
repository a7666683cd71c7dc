"""Campaign 6 — partial failure: FAILED processings are restarted (free); those still
failing give a partial result with reasons; credits running out mid-run stop new creates
and keep everything paid for, and a rerun after a top-up completes the run."""

from __future__ import annotations

import pytest
from support.areas import grid_gdf
from support.campaign import FAST, FULL
from support.record import assert_one_charge_each, creates

import mapflow_geo  # noqa: F401
from mapflow_geo import open_run, sim
from mapflow_geo.exceptions import RunFailedError

N = 40 if FULL else 20
SIM = dict(aoi_area_limit_km2=5, processing_seconds=0, seed=41)


def test_failed_processings_restarted_for_free(tmp_path):
    with sim.serve(**SIM, fail_fraction=0.1) as server:
        res = grid_gdf(N).mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_restarts=3, **FAST
        )
        assert_one_charge_each(server)  # restarts charge nothing
        restarts = len(
            [
                r
                for r in server.requests
                if r.method == "POST" and r.path.endswith(("/restart", "/restart/v2"))
            ]
        )
    assert res.complete
    assert res.processings["restarts"].sum() >= 1
    assert restarts == res.processings["restarts"].sum()


def test_still_failing_gives_partial_result_with_reasons(tmp_path):
    with sim.serve(**SIM, fail_fraction=0.1) as server:
        with pytest.raises(RunFailedError) as ei:
            grid_gdf(N).mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, max_restarts=0, **FAST
            )
        assert_one_charge_each(server)
    res = ei.value.result
    failed = res.tiles[res.tiles["status"] != "OK"]
    ok = res.tiles[res.tiles["status"] == "OK"]
    assert len(failed) >= 1 and len(ok) >= 1
    assert all(len(m) >= 1 and all(isinstance(x, str) and x for x in m) for m in failed["messages"])
    assert set(res.features["tile_id"]) <= set(ok["tile_id"])
    assert set(res.features["tile_id"]) == set(ok["tile_id"])  # nothing paid for is lost
    assert "First reasons" in str(ei.value)


def test_credits_running_out_mid_run(tmp_path):
    """Another client spends the account's credits after the budget check: the server
    refuses the next creates; the runner stops creating, keeps what it paid for and
    names the reason; topping up and rerunning completes the run, paying once each."""
    gdf = grid_gdf(N)
    with sim.serve(**SIM) as server:
        seen = []

        def spend_elsewhere(rec):
            seen.append(rec)
            if len(seen) == 3:
                server.set_credits(0)

        server.after_create = spend_elsewhere
        with pytest.raises(RunFailedError) as ei:
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, max_workers=2, **FAST
            )
        server.after_create = None
        sent = creates(server)
        refused = [r for r in sent if r.status == 400]
        paid = [r for r in sent if r.status == 200]
        assert len(refused) >= 1
        # no create started after the first refusal but those already in flight
        first_refusal = min(r.time for r in refused)
        assert len([r for r in sent if r.time > first_refusal]) <= 2
        res = ei.value.result
        ok = res.tiles[res.tiles["status"] == "OK"]
        assert len(ok) == len(paid) == len(server.charges)  # everything paid for is kept
        assert "INSUFFICIENT_CREDITS" in str(ei.value)
        assert set(res.tiles.loc[res.tiles["status"] != "OK", "status"]) == {"NOT_CREATED"}
        # top up and rerun: the refused processings are created now, nothing twice
        server.set_credits(10**6)
        again = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        assert again.complete
        charges = server.charges
        assert len(charges) == len({c["processingId"] for c in charges}) == N
        keys = [p["meta"]["mapflow_geo_key"] for p in server.processings]
        assert len(set(keys)) == N
    assert open_run(tmp_path).complete
