"""gdf.mapflow.process / estimate against the simulator over loopback HTTP."""

import contextlib
import logging
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon
from support import record
from support.areas import grid_gdf, rect_km
from support.record import aoi_asked, max_overlap, result_downloads
from support.sim_http import Api
from support.truth import GONE, check_against_truth, truth_in

import mapflow_geo  # noqa: F401
from mapflow_geo import RetryPolicy, open_run, sim
from mapflow_geo.exceptions import (
    AOIError,
    AOIWarning,
    BudgetError,
    PlanError,
    RunError,
    RunFailedError,
    RunIncompleteWarning,
)
from mapflow_geo.run import journal as jr

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}


def _gdf(*geoms, crs="EPSG:4326"):
    return gpd.GeoDataFrame(
        {"name": [f"a{i}" for i in range(len(geoms))]}, geometry=list(geoms), crs=crs
    )


def test_process_small_run_end_to_end(tmp_path):
    gdf = _gdf(rect_km(37.5, 55.7, 3, 3), rect_km(37.6, 55.7, 0.5, 0.5))
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=3) as server:
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        creates = record.creates(server)
    assert res.complete
    assert len(res.features) > 0
    assert set(res.features["row"]) <= set(gdf.index)
    assert {"tile_id", "processing_id", "object_type"} <= set(res.features.columns)
    # both small rows fit one processing: one create, charged once
    assert len(creates) == 1
    assert res.costs["charged_credits"].sum() == pytest.approx(res.processings["cost"].sum())
    assert res.totals["charged_credits"] == res.processings["cost"].sum() > 0
    stats = res.stats
    assert stats["objects"].sum() == len(res.features)
    assert (stats["coverage"] == 1.0).all()
    summary = res.summary()
    assert list(summary.index) == list(gdf.index)
    # reopening offline gives the same objects
    again = open_run(tmp_path)
    assert len(again.features) == len(res.features)


def test_tiled_run_equals_one_big_processing(tmp_path):
    """At a 5 km² limit a ~120 km² AOI yields the same objects as one processing of it."""
    aoi = rect_km(30.0, 50.0, 12, 10)
    gdf = _gdf(aoi)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=11) as server:
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        assert res.tiles["processing_key"].nunique() >= 24
    with sim.serve(aoi_area_limit_km2=1000, processing_seconds=0, seed=11) as server:
        client = server.client()
        ref = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path / "ref", **FAST)
        assert ref.tiles["processing_key"].nunique() == 1
    assert len(res.features) == len(ref.features)
    a = np.sort(shapely.area(res.features.geometry.values))
    b = np.sort(shapely.area(ref.features.geometry.values))
    np.testing.assert_allclose(a.sum(), b.sum(), rtol=1e-6)
    ours = shapely.normalize(res.features.geometry.values)
    theirs = shapely.normalize(ref.features.geometry.values)
    tree = shapely.STRtree(theirs)
    for g in ours:
        hits = tree.query(g, predicate="intersects")
        assert any(
            shapely.equals_exact(g, theirs[h], tolerance=1e-7)
            or shapely.area(shapely.symmetric_difference(g, theirs[h])) <= 1e-9 * g.area
            for h in hits
        )


def test_estimate_creates_nothing_and_budget_refuses(tmp_path):
    gdf = _gdf(rect_km(10.0, 45.0, 6, 6))
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0) as server:
        client = server.client()
        est = gdf.mapflow.estimate("buildings", client=client)
        plan = gdf.mapflow.plan(client=client)
        assert est.loc[0, "processings"] == plan["processing"].nunique() >= 2
        assert est.attrs["total_credits"] > 0
        assert est["credits"].sum() == pytest.approx(est.attrs["total_credits"])
        with pytest.raises(BudgetError, match=str(est.attrs["total_credits"])):
            gdf.mapflow.process(
                "buildings",
                client=client,
                run_dir=tmp_path,
                max_credits=est.attrs["total_credits"] - 1,
                **FAST,
            )
        assert record.creates(server) == []


COST = "/rest/processing/cost/v2"


def _most_at_once(server) -> int:
    """The most cost requests the simulator was serving at one moment, by its record of
    when each began and how long it took (a thread's next request begins only after the
    answer to its last)."""
    edges = sorted(
        edge
        for r in server.requests
        if r.path == COST
        for edge in ((r.time, 1), (r.time + r.duration, -1))
    )  # at one instant an end sorts before a start
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_estimate_asks_four_cost_requests_at_a_time():
    """``estimate`` asks the cost endpoint side by side, as many at once as a run's
    default ``max_workers`` (4, the user guide: *a few at a time*) and never more; the
    simulator takes 0.2 s over each request, so that the four overlap."""
    gdf = _gdf(rect_km(20.0, 10.0, 12, 10))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        client = server.client()
        server.set_faults(latency_s=0.2)
        est = gdf.mapflow.estimate("buildings", client=client, max_processings=None)
        asked = server.count(method="POST", path=COST)
        most = _most_at_once(server)
    assert asked == est.attrs["processings"] > 8
    assert most == 4


@pytest.mark.parametrize("workers", [1, 3])
def test_estimates_are_asked_workers_at_a_time_and_only_where_unknown(workers):
    """``estimate_processings`` asks at most ``workers`` cost requests at once (the
    re-plan asks one at a time), one per processing whose estimate is not known yet;
    a known estimate is kept and not asked again."""
    from mapflow_geo.run.prepare import estimate_processings, prepare_run

    gdf = _gdf(rect_km(20.0, 10.0, 6, 5))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        client = server.client()
        procs = prepare_run(gdf, "buildings", client=client).processings
        assert len(procs) >= 6
        procs[0].estimate = 12345  # known already (e.g. from the journal)
        server.clear_requests()
        server.set_faults(latency_s=0.2)
        estimate_processings(client, procs, workers=workers)
        server.clear_faults()
        asked = server.count(method="POST", path=COST)
        most = _most_at_once(server)
        answers = [client.processings.cost(**p.body) for p in procs[1:]]
    assert asked == len(procs) - 1
    assert most == workers
    assert procs[0].estimate == 12345
    assert [p.estimate for p in procs[1:]] == answers


def test_not_enough_credits_refused_before_any_create(tmp_path):
    gdf = _gdf(rect_km(10.0, 45.0, 4, 4))
    with sim.serve(aoi_area_limit_km2=25, credits=10, processing_seconds=0) as server:
        with pytest.raises(BudgetError, match="left"):
            gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        assert record.creates(server) == []


def test_bad_row_named_before_any_request(tmp_path):
    gdf = _gdf(rect_km(10.0, 45.0, 1, 1), Polygon())
    with sim.serve() as server:
        with pytest.raises(AOIError, match="1"):
            gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        assert record.creates(server) == []


def test_dropped_create_responses_adopted_not_duplicated(tmp_path):
    gdf = _gdf(rect_km(20.0, 10.0, 8, 6))
    with sim.serve(
        aoi_area_limit_km2=5, processing_seconds=0, seed=5, faults={"drop_create_response": 0.3}
    ) as server:
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        listed = server.client().processings.list()
        keys = [p.meta.get("mapflow_geo_key") for p in listed]
    assert res.complete
    assert len(keys) == len(set(keys)) == res.tiles["processing_key"].nunique()


def test_polling_is_one_list_request_per_cycle(tmp_path):
    gdf = _gdf(rect_km(20.0, 10.0, 10, 6))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=1.5) as server:
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        gets = [r for r in server.requests if r.method == "GET"]
        pages = [
            r
            for r in server.requests
            if r.method == "POST" and r.path.endswith("/processings/v2/page")
        ]
    n = res.tiles["processing_key"].nunique()
    assert n >= 12
    per_proc = [
        r
        for r in gets
        if r.path.endswith("/v2")
        and "/processings/" in r.path
        and not r.path.endswith("/processings/v2")
    ]
    lists = [r for r in gets if r.path.endswith("/processings/v2") and "/projects/" in r.path]
    # polling reads the project's paged listing (the service has it: no unpaged fallback)
    assert pages and lists == [], (len(pages), len(lists))
    assert per_proc == [], "no per-processing status polling"


def test_polling_reads_only_the_newest_page_that_holds_the_run(tmp_path):
    """Polling sweeps the project's listing newest first and stops once every live
    processing is seen (DESIGN.md: requests per cycle grow with the active processings
    over the page size, not with the project). A project that holds 20 older processings,
    listed two per page by the service: a run of one processing polls the first page
    only, never the 11 pages of a complete sweep."""
    square = rect_km(12.0, 8.0, 1, 1).__geo_interface__
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, page_size=2, seed=2) as server:
        client = server.client()
        for i in range(20):
            client.processings.create(name=f"old {i}", wdName="🏠 Buildings", geometry=square)
        before = len(server.requests)
        gdf = _gdf(rect_km(20.0, 10.0, 1, 1))
        res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        pages = [
            r
            for r in server.requests[before:]
            if r.method == "POST" and r.path.endswith("/processings/v2/page")
        ]
        total = len(server.processings)
    assert res.complete and total == 21
    full_sweep = -(-total // 2)
    assert 1 <= len(pages) < full_sweep, (len(pages), full_sweep)


def test_failed_tiles_reported_with_partial_result(tmp_path, caplog):
    """Every processing fails, is restarted once, fails again: the run reports every tile
    with its reasons. Each restart is announced (INFO) with the id of the processing
    restarted and its key, as the simulator recorded them."""
    gdf = _gdf(rect_km(5.0, 5.0, 8, 8))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, fail_fraction=1.0) as server:
        with pytest.raises(RunFailedError) as info:
            with caplog.at_level(logging.INFO, logger="mapflow_geo.run.engine"):
                gdf.mapflow.process(
                    "buildings", client=server.client(), run_dir=tmp_path, max_restarts=1, **FAST
                )
        restarts = [r for r in server.requests if r.path.endswith(("/restart", "/restart/v2"))]
        key_of = {p["id"]: p["meta"]["mapflow_geo_key"] for p in server.processings}
    res = info.value.result
    assert not res.complete
    assert (res.tiles["status"] != "OK").all()
    assert all(res.tiles["messages"].map(len) > 0)
    assert len(restarts) == res.tiles["processing_key"].nunique()
    restarted = sorted(next(i for i in key_of if i in r.path) for r in restarts)
    said = [
        set(re.findall(r"[\w.-]+", r.getMessage()))
        for r in caplog.records
        if r.name == "mapflow_geo.run.engine"
    ]
    announced = sorted(i for i in key_of for w in said if {i, key_of[i]} <= w)
    assert announced == restarted


def test_the_mid_poll_crash_point_is_reached_before_any_result_is_asked(tmp_path, monkeypatch):
    """The ``mid_poll`` failpoint armed (its SIGKILL caught here): the run stops in the
    poll that acts on its created processing, before any result download; the journal
    holds the processing as created, with the id the simulator gave it."""
    import os
    import signal

    from mapflow_geo.run import _failpoints

    class Killed(Exception):
        pass

    def kill(pid: int, sig: int) -> None:
        assert (pid, sig) == (os.getpid(), signal.SIGKILL)
        raise Killed

    monkeypatch.setattr(_failpoints, "_ARMED", "mid_poll")
    monkeypatch.setattr(_failpoints, "_NTH", "")
    monkeypatch.setattr(os, "kill", kill)
    gdf = _gdf(rect_km(20.0, 10.0, 2, 2))
    with sim.serve(processing_seconds=0) as server:
        with pytest.raises(Killed):
            gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        (proc,) = server.processings
        assert result_downloads(server) == []
    with jr.Journal(tmp_path, None, lock=False) as journal:
        (rec,) = journal.records()
    assert (rec.state, rec.processing_id) == (jr.CREATED, proc["id"])


def test_resume_same_run_dir_creates_nothing_new(tmp_path):
    gdf = _gdf(rect_km(20.0, 10.0, 6, 5))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        client = server.client()
        first = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        n_creates = len(record.creates(server))
        n_results = len([r for r in server.requests if "/result" in r.path])
        second = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        assert len(record.creates(server)) == n_creates
        assert len([r for r in server.requests if "/result" in r.path]) == n_results
    assert len(second.features) == len(first.features)


def test_errors_warn_returns_partial_result(tmp_path):
    gdf = _gdf(rect_km(5.0, 5.0, 3, 3))
    with sim.serve(processing_seconds=0, fail_fraction=1.0) as server:
        with pytest.warns(RunIncompleteWarning, match="did not succeed") as caught:
            res = gdf.mapflow.process(
                "buildings",
                client=server.client(),
                run_dir=tmp_path,
                max_restarts=0,
                errors="warn",
                **FAST,
            )
    assert not res.complete
    assert res.costs["charged_credits"].sum() > 0
    # the warning points at the line that asked for the run, not into the package
    assert len(caught) == 1 and caught[0].filename == __file__


def test_changed_inputs_refused_on_resume(tmp_path):
    with sim.serve(processing_seconds=0) as server:
        client = server.client()
        _gdf(rect_km(5.0, 5.0, 1, 1)).mapflow.process(
            "buildings", client=client, run_dir=tmp_path, **FAST
        )
        with pytest.raises(RunError, match="other inputs or parameters"):
            _gdf(rect_km(5.0, 5.0, 1, 2)).mapflow.process(
                "buildings", client=client, run_dir=tmp_path, **FAST
            )
        with pytest.raises(RunError, match="other inputs or parameters"):
            _gdf(rect_km(5.0, 5.0, 1, 1)).mapflow.process(
                "forest", client=client, run_dir=tmp_path, **FAST
            )


def test_oversized_plan_refused_before_any_cost_request(tmp_path):
    gdf = _gdf(rect_km(20.0, 10.0, 12, 10))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        client = server.client()
        with pytest.raises(PlanError, match=r"max_processings=10\b"):
            gdf.mapflow.estimate("buildings", client=client, max_processings=10)
        with pytest.raises(PlanError, match="processings for"):
            gdf.mapflow.process(
                "buildings", client=client, run_dir=tmp_path, max_processings=10, **FAST
            )
        costs = [r for r in server.requests if "/processing/cost" in r.path]
        assert costs == [] and record.creates(server) == []
        est = gdf.mapflow.estimate("buildings", client=client, max_processings=None)
        assert est.loc[0, "processings"] > 10


def test_credit_floor_refuses_without_asking_cost_per_processing(tmp_path):
    gdf = _gdf(rect_km(20.0, 10.0, 12, 10))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        with pytest.raises(BudgetError, match="at least"):
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, max_credits=100, **FAST
            )
        assert [r for r in server.requests if "/processing/cost" in r.path] == []
        assert record.creates(server) == []


def test_resume_fetches_again_results_a_power_cut_lost(tmp_path, caplog):
    """Results are stored without fsync; on resume a journalled file that is missing or
    cut short is fetched again (free), and nothing is created again; a warning says how
    many were lost."""
    from mapflow_geo.run._files import parquet_intact

    gdf = _gdf(rect_km(20.0, 10.0, 6, 5))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        client = server.client()
        first = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        files = sorted((tmp_path / "results").glob("*.parquet"))
        assert len(files) >= 3
        files[0].unlink()
        files[1].write_bytes(files[1].read_bytes()[:100])
        n_creates = len(record.creates(server))
        n_results = len([r for r in server.requests if "/result" in r.path])
        with caplog.at_level(logging.WARNING, logger="mapflow_geo.run.engine"):
            second = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        assert len(record.creates(server)) == n_creates
        assert len([r for r in server.requests if "/result" in r.path]) == n_results + 2
    said = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.engine"]
    assert [re.findall(r"\d+", m) for m in said] == [["2"]], said
    assert "missing" in said[0] and "again" in said[0], said
    assert all(parquet_intact(f) for f in files)
    assert second.complete
    assert len(second.features) == len(first.features)


def test_run_options_given_by_keyword_replace_those_of_the_options_given():
    """A Runner's keyword options (``Runner(..., options=opts, max_workers=2)``) take
    precedence over ``options``, which supplies the rest; an unknown name is refused."""
    from mapflow_geo.run import RunOptions

    base = RunOptions(poll_interval=5.0, max_restarts=0)
    got = RunOptions.from_kwargs(base, max_workers=2, adopt_grace_s=12.5)
    assert (got.poll_interval, got.max_restarts) == (5.0, 0)
    assert (got.max_workers, got.adopt_grace_s) == (2, 12.5)
    assert RunOptions.from_kwargs(None, progress=False).progress is False
    with pytest.raises(TypeError, match="poll_every"):
        RunOptions.from_kwargs(base, poll_every=3)


def test_poll_comes_when_progress_predicts_a_finish():
    """The percentages of two polls predict the first finish; the next poll is due then
    (never sooner than min_poll_interval after the cycle began: see Runner.run)."""
    from types import SimpleNamespace

    from mapflow_geo.run import journal as jr
    from mapflow_geo.run.engine import Runner

    now = [100.0]
    runner = Runner.__new__(Runner)
    runner.clock = lambda: now[0]
    runner._progress = {}
    recs = [jr.ProcessingRecord(key=k, state=jr.CREATED) for k in ("a", "b", "c")]

    def seen(pcts, statuses=("IN_PROGRESS",) * 3):
        return [
            (r, SimpleNamespace(status=s, percent_completed=p))
            for r, p, s in zip(recs, pcts, statuses, strict=True)
        ]

    assert runner._predict(seen([10, 0, None])) is None  # first sighting: no rate yet
    now[0] = 104.0
    # a: 10 → 30 % in 4 s → 100 % 14 s later; b: 0 → 10 % in 4 s → 36 s later
    assert runner._predict(seen([30, 10, None])) == pytest.approx(118.0)
    now[0] = 120.0  # a finished; b's first sighting stays its reference
    assert runner._predict(seen([100, 50, None], ("OK", "IN_PROGRESS", "IN_PROGRESS"))) == (
        pytest.approx(120.0 + 50 * 20 / 50)
    )
    assert "a" not in runner._progress
    done = ("OK", "IN_PROGRESS", "IN_PROGRESS")
    now[0] = 200.0
    assert runner._predict(seen([100, 99, None], done)) == pytest.approx(200.0 + 1 * 100 / 99)
    now[0] = 210.0  # stuck at 99 %: no prediction, polling backs off as usual
    assert runner._predict(seen([100, 99, None], done)) is None
    now[0] = 220.0  # moving again: the rate still counts from b's first sighting
    assert runner._predict(seen([100, 99.5, None], done)) == pytest.approx(220.0 + 0.5 * 120 / 99.5)
    now[0] = 230.0  # at 100 % but not finished yet: it predicts no finish to poll at
    assert runner._predict(seen([100, 100, None], done)) is None


def test_downloads_failing_past_max_outage_give_up_resumably(tmp_path, caplog):
    """Listings answer but every result download fails (API partly down): the run probes
    one download per poll interval, gives up with the error after ``max_outage_s``, and
    a rerun completes without creating anything again. Each failed download is announced
    (WARNING) with its processing's key and the answer. The rerun announces that it
    resumes the run stored in its run dir, which no processing of had finished (no
    result was ever served), not that it reuses a finished run."""
    from mapflow_geo.exceptions import ServerError

    gdf = _gdf(rect_km(20.0, 10.0, 6, 5))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        server.set_faults(status_503=1.0, methods=["GET"], paths=["/processings/"])
        client = server.client(retry=RetryPolicy(max_retries=0))
        opts = dict(FAST, poll_interval=0.3, max_outage_s=1.5)
        with pytest.raises(ServerError):
            gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **opts)
        n_creates = len(record.creates(server))
        failed = [r for r in server.requests if r.fault and "/result" in r.path]
        assert n_creates >= 3
        # the first wave, then about one probe per poll interval
        assert len(failed) <= n_creates + 1.5 / 0.3 + 3
        assert not [r for r in server.requests if r.status == 200 and "/result" in r.path]
        keys = {p["meta"]["mapflow_geo_key"] for p in server.processings}
        warned = [
            set(re.findall(r"[\w.-]+", r.getMessage()))
            for r in caplog.records
            if r.name == "mapflow_geo.run.engine" and r.levelno == logging.WARNING
        ]
        server.clear_faults()
        with caplog.at_level(logging.INFO, logger="mapflow_geo.run.engine"):
            res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        assert len(record.creates(server)) == n_creates
    assert res.complete
    said = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.engine"]
    (line,) = [m for m in said if str(tmp_path) in m]
    assert "resum" in line and "finished" not in line, line
    # each failed download was announced with its processing's key and the answer (503)
    assert warned and all(len(w & keys) == 1 and "503" in w for w in warned), warned
    assert set().union(*warned) >= keys


def test_a_status_reads_as_the_upper_case_text_of_its_value():
    """``status_text`` (the text the journal and the runner compare): an enum member's
    *value*, upper-cased, whatever the member prints as; a plain string upper-cased;
    nothing as empty text. Wrong rule caught: a member read by what it prints
    (``Plain.DONE``) instead of its value."""
    import enum

    from mapflow_geo.models.enums import Status
    from mapflow_geo.run.create import status_text

    plain = enum.Enum("Plain", {"DONE": "ok", "RUNNING": "in_progress"})
    assert str(plain.DONE) == "Plain.DONE"  # prints otherwise than its value
    assert status_text(plain.DONE) == "OK"
    assert status_text(plain.RUNNING) == "IN_PROGRESS"
    assert status_text(Status.FAILED) == "FAILED"
    assert status_text("awaiting") == "AWAITING"
    assert status_text(None) == ""


def test_a_run_goes_into_the_project_asked_for_and_keeps_its_parameters(tmp_path):
    gdf = _gdf(rect_km(37.5, 55.7, 1, 1), rect_km(37.6, 55.7, 1, 1))
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=3) as server:
        client = server.client()
        project = str(client.projects.create("mine").id)
        res = gdf.mapflow.process(
            "buildings", client=client, run_dir=tmp_path, project=project,
            blocks=["Classification"], **FAST,
        )  # fmt: skip
        procs = server.processings
    assert res.complete and len(procs) == 1
    assert procs[0]["projectId"] == project
    assert res.params["project"] == project and res.params["blocks"] == ["Classification"]


def test_a_bad_row_skipped_when_asked_and_the_others_run(tmp_path):
    gdf = _gdf(rect_km(10.0, 45.0, 1, 1), Polygon(), rect_km(10.05, 45.0, 1, 1))
    good = gdf.geometry.iloc[[0, 2]]
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=3) as server:
        with pytest.warns(AOIWarning, match="1"):
            res = gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, input_errors="skip",
                **FAST,
            )  # fmt: skip
        date = str(res.features["imagery_date"].iloc[0].date())
        truth, _, damage = truth_in(server, good, date)
    assert res.complete and list(res.aois.index) == [0, 2]
    assert set(res.features["row"]) == {0, 2}
    check_against_truth(np.asarray(res.features.geometry.values), truth, damage)


# ----------------------------------------------------------------------- stored results
#: How a run gets its results: one polygon a processing (its whole result); several AOIs a
#: processing, fetched per AOI; a service that does not serve results per AOI (the whole
#: result split per tile); one that does not list a processing's AOIs either.
LAYOUTS = {
    "whole": {"max_aois": 1},
    "per AOI": {},
    "split per tile": {"result_per_aoi": False},
    "no AOI listing": {"result_per_aoi": False, "aois_listed": False},
}


@contextlib.contextmanager
def _layout_server(layout: str, **options):
    """The simulator of ``layout`` (``options``: more of its options), and the run's
    keyword options. Without AOI listings, the simulator answers each processing's AOI
    listing 400 from its create on."""
    opts = dict(LAYOUTS[layout])
    listed = opts.pop("aois_listed", True)
    run = {"max_aois": opts.pop("max_aois")} if "max_aois" in opts else {}
    with sim.serve(
        aoi_area_limit_km2=25, processing_seconds=0, seed=5, **opts, **options
    ) as server:

        def refuse(_rec) -> None:
            paths = [f"/processings/{p['id']}/aois" for p in server.processings]
            server.set_faults({**server.faults, "status_400": 1.0, "paths": paths})

        if not listed:
            server.after_create = refuse
        yield server, run


def _listed_aois(server) -> dict[str, set[str]]:
    """The simulator's AOI ids of each processing (raw HTTP; its faults cleared)."""
    server.clear_faults()
    api = Api(server)
    return {
        p["id"]: {a["id"] for a in api.get(f"/processings/{p['id']}/aois").json()}
        for p in server.processings
    }


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_stored_result_is_recorded_with_its_tile_and_the_objects_served(tmp_path, layout):
    """Every tile's objects are stored in one file, recorded with that tile, OK, and the
    count of the objects it holds; per processing, ``qa`` counts the objects stored and
    the damaged ones dropped (the simulator's truth of each tile, and the damage it
    served); per AOI, each of the simulator's AOIs is recorded once; one polygon a
    processing, its whole result is asked for without listing its AOIs."""
    gdf = grid_gdf(4, km=0.8)  # small squares: one processing of 4 AOIs, or 4 of one
    with _layout_server(layout, faults={"damaged_geometry": 0.1}) as (server, run):
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, **run, **FAST
        )
        date = server.imagery_date(str(res.processings["processing_id"].iloc[0]))
        truth = {
            t: truth_in(server, [g], date)
            for t, g in zip(res.tiles["tile_id"], res.tiles.geometry, strict=True)
        }
        downloads = result_downloads(server)
        aoi_listings = [r for r in server.requests if r.path.endswith("/aois")]
        id_of = {p["meta"]["mapflow_geo_key"]: p["id"] for p in server.processings}
        listed = _listed_aois(server)
    # a point inside each tile tells the input row it was cut from
    truth_pt = {
        t: g.representative_point()
        for t, g in zip(res.tiles["tile_id"], res.tiles.geometry, strict=True)
    }
    n_procs = 4 if layout == "whole" else 1
    assert res.complete and len(res.processings) == n_procs == len(listed)
    assert (res.tiles["status"] == "OK").all() and len(res.tiles) == 4
    assert sorted(res.files["tile_id"]) == sorted(truth)  # one file a tile
    gone_per_proc: dict = {}
    for path, tile_id, n in zip(
        res.files["path"], res.files["tile_id"], res.files["features"], strict=True
    ):
        geoms, _, damage = truth[tile_id]
        stored = gpd.read_parquet(path)
        assert path.startswith(str(tmp_path / "results"))
        assert set(stored["tile_id"].astype(str)) == {tile_id}
        key = res.tiles.set_index("tile_id").loc[tile_id, "processing_key"]
        assert set(stored["processing_id"].astype(str)) == {id_of[key]}
        (row,) = [i for i, g in gdf.geometry.items() if g.contains(truth_pt[tile_id])]
        assert set(stored["row"]) == {row}
        check_against_truth(np.asarray(stored.geometry.values), geoms, damage)
        gone = int(np.isin(damage, list(GONE)).sum())
        assert n == len(stored) == len(geoms) - gone
        gone_per_proc[key] = gone_per_proc.get(key, 0) + gone
    qa = res.qa.set_index("key")
    assert sorted(qa.index) == sorted(res.processings["key"])
    assert (qa["damaged_results"] == 0).all()
    for key, row in qa.iterrows():
        mine = res.tiles[res.tiles["processing_key"] == key]["tile_id"]
        assert row["objects"] == res.files[res.files["tile_id"].isin(mine)]["features"].sum()
        assert row["dropped"] == gone_per_proc[key]
        damaged = [d for t in mine for d in truth[t][2] if d and d not in GONE]
        assert 0 < row["repaired"] <= len(damaged)
    with jr.Journal(tmp_path, None, lock=False) as journal:
        recs = journal.downloads()
    assert len(recs) == 4 and all(d.status == "OK" for d in recs)
    if layout == "whole":  # one polygon is one AOI: its whole result, its AOIs not listed
        assert aoi_listings == [] and {aoi_asked(r) for r in downloads} == {None}
    if layout == "per AOI":  # each AOI the simulator lists, recorded once, asked for once
        (pid,) = listed
        assert {d.aoi_id for d in recs} == listed[pid] == {aoi_asked(r) for r in downloads}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_lost_result_is_fetched_again_alone_and_nothing_else(tmp_path, layout):
    """A run resumed in its run dir downloads nothing; once one stored file is lost,
    the next one downloads again only what that file held (one AOI's result, or the
    whole result), stores that tile's objects again, and leaves the others' files as
    they were."""
    gdf = grid_gdf(4, km=0.8)
    with _layout_server(layout) as (server, run):
        client = server.client()
        first = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **run, **FAST)
        n = len(result_downloads(server))
        gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **run, **FAST)
        assert len(result_downloads(server)) == n, "a stored result downloaded again"
        lost = first.files.iloc[1]
        kept = {p: Path(p).stat().st_mtime_ns for p in first.files["path"] if p != lost["path"]}
        Path(lost["path"]).unlink()
        again = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **run, **FAST)
        asked = result_downloads(server)[n:]
    served = [r for r in asked if r.status == 200]
    assert len(served) == 1  # asked per AOI first where refused (free): only the tile lost
    assert all(r.status == 400 and aoi_asked(r) for r in asked if r.status != 200)
    assert (aoi_asked(served[0]) is None) == (layout != "per AOI")
    if layout == "per AOI":
        with jr.Journal(tmp_path, None, lock=False) as journal:
            (rec,) = [d for d in journal.downloads() if d.tile_id == lost["tile_id"]]
        assert aoi_asked(served[0]) == rec.aoi_id
    assert again.complete and sorted(again.files["path"]) == sorted(first.files["path"])
    assert {p: Path(p).stat().st_mtime_ns for p in kept} == kept
    assert len(gpd.read_parquet(lost["path"])) == lost["features"]
    assert again.files.set_index("path")["features"].to_dict() == (
        first.files.set_index("path")["features"].to_dict()
    )


def test_a_failed_processing_whose_aois_are_not_listed_is_not_downloaded(tmp_path):
    """A service that lists no AOIs: a processing that failed (no restart left) has no
    result to ask for; the run asks for none and fails with every tile not OK."""
    gdf = grid_gdf(4, km=0.8)
    with _layout_server("no AOI listing", fail_fraction=1.0) as (server, run):
        with pytest.raises(RunFailedError) as info:
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, max_restarts=0,
                **run, **FAST,
            )  # fmt: skip
        downloads = result_downloads(server)
        (proc,) = server.processings
    assert proc["status"] == "FAILED" and downloads == []
    assert (info.value.result.tiles["status"] != "OK").all()


def test_a_tile_stored_from_the_whole_result_is_not_fetched_again_per_aoi(tmp_path):
    """A run stored its processing's whole result split per tile (the service refused
    results per AOI); one tile's file is lost, and the service now serves results per
    AOI. The next run downloads only that tile's AOI and stores each true object once:
    the tiles still stored are not fetched per AOI on top of their split files."""
    gdf = grid_gdf(4, km=0.8)
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=5,
                   result_per_aoi=False) as server:  # fmt: skip
        client = server.client()
        first = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        n = len(result_downloads(server))
        lost = first.files.iloc[1]
        Path(lost["path"]).unlink()
        server.set_result_per_aoi(True)
        again = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        served = [r for r in result_downloads(server)[n:] if r.status == 200]
        date = server.imagery_date(str(again.processings["processing_id"].iloc[0]))
        geoms, _, damage = truth_in(server, list(gdf.geometry), date)
        listed = _listed_aois(server)
    (aois,) = listed.values()
    assert len(served) == 1 and aoi_asked(served[0]) in aois  # the lost tile's AOI only
    assert again.complete and len(again.files) == 4
    check_against_truth(np.asarray(again.features.geometry.values), geoms, damage)


@pytest.mark.parametrize("name", [None, "survey"])
def test_each_processing_is_named_by_the_prefix_and_its_key(tmp_path, name):
    """On the service, each processing is named ``"<name> <key>"``, the prefix
    ``"mapflow-geo"`` unless a ``name`` is given (the simulator's record)."""
    gdf = grid_gdf(2, km=0.8)
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=5) as server:
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path,
                                  name=name, max_aois=1, **FAST)  # fmt: skip
        named = {p["meta"]["mapflow_geo_key"]: p["name"] for p in server.processings}
    prefix = name or "mapflow-geo"
    assert len(named) == 2 and named == {k: f"{prefix} {k}" for k in res.processings["key"]}


def test_a_processing_the_service_lists_as_one_aoi_is_stored_whole_for_that_aois_tile(
    tmp_path,
):
    """A processing of two polygons that the service lists as one AOI (it keeps the
    first): its whole result is downloaded once, without ``aoiId``, and recorded as that
    AOI's, with the tile the AOI lies in and the true objects it holds."""
    gdf = grid_gdf(2, km=0.8)  # two squares: one processing of two polygons
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=5) as server:

        def one_aoi(_rec) -> None:
            with server.service.lock:
                for proc in server.service.state.processings.values():
                    proc.aois = proc.aois[:1]

        server.after_create = one_aoi
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        downloads = result_downloads(server)
        (proc,) = server.service.state.processings.values()
        (aoi,) = proc.aois
        date = server.imagery_date(proc.id)
        area = shapely.geometry.shape(aoi.geometry)
        geoms, _, damage = truth_in(server, [area], date)
    assert len(res.processings) == 1 and len(res.tiles) == 2
    assert [aoi_asked(r) for r in downloads] == [None]  # the whole result, once
    inside = [
        t
        for t, g in zip(res.tiles["tile_id"], res.tiles.geometry, strict=True)
        if g.contains(area.representative_point())
    ]
    with jr.Journal(tmp_path, None, lock=False) as journal:
        (rec,) = journal.downloads()
        (prec,) = journal.records()
    assert prec.status == "OK" and prec.state == jr.FINISHED
    assert (rec.aoi_id, rec.tile_id, rec.status) == (aoi.id, *inside, "OK")
    stored = gpd.read_parquet(tmp_path / rec.path)
    assert rec.features == len(stored) == len(geoms) > 0
    assert set(stored["tile_id"].astype(str)) == set(inside)
    assert set(stored["processing_id"].astype(str)) == {proc.id}
    check_against_truth(np.asarray(stored.geometry.values), geoms, damage)


@pytest.mark.parametrize("max_workers", [1, 4])
def test_an_aois_refused_download_is_asked_again_alone_and_the_others_kept(tmp_path, max_workers):
    """Some of the result downloads of a processing of four AOIs are refused (403):
    the AOIs served meanwhile are stored, and the next fetches ask only for the AOIs not
    stored, each per AOI, until each AOI's result was served once; the run ends
    complete with every AOI's true objects."""
    gdf = grid_gdf(4, km=0.8)
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=5) as server:

        def refuse_half(_rec) -> None:
            paths = [f"/processings/{p['id']}/result" for p in server.processings]
            server.set_faults({"status_403": 0.7, "paths": paths})

        server.after_create = refuse_half
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_workers=max_workers,
            **FAST,
        )  # fmt: skip
        downloads = result_downloads(server)
        date = server.imagery_date(str(res.processings["processing_id"].iloc[0]))
        geoms, _, damage = truth_in(server, list(gdf.geometry), date)
        listed = _listed_aois(server)
    (aois,) = listed.values()
    served = [aoi_asked(r) for r in downloads if r.status == 200]
    refused = [aoi_asked(r) for r in downloads if r.status == 403]
    assert refused and len(downloads) == len(served) + len(refused)
    assert sorted(served) == sorted(aois)  # each AOI's result served once, per AOI
    assert set(refused) <= aois
    with jr.Journal(tmp_path, None, lock=False) as journal:
        recs = journal.downloads()
    assert sorted(d.aoi_id for d in recs) == sorted(aois)
    assert all(d.status == "OK" for d in recs)
    assert res.complete and len(res.files) == 4
    check_against_truth(np.asarray(res.features.geometry.values), geoms, damage)


def test_a_processing_some_of_whose_aois_failed_keeps_the_others_and_each_failure(tmp_path):
    """A processing of four AOIs, some of which failed (no restart left): each AOI the
    simulator says OK is stored per AOI with its true objects; each failed one is recorded
    with the simulator's status and messages, not downloaded; the run is incomplete."""
    gdf = grid_gdf(4, km=0.8)
    with sim.serve(
        aoi_area_limit_km2=25, processing_seconds=0, seed=1, fail_fraction=0.5
    ) as server:
        with pytest.raises(RunFailedError):
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, max_restarts=0, **FAST
            )
        (proc,) = server.processings
        listed = Api(server).get(f"/processings/{proc['id']}/aois").json()
        date = server.imagery_date(proc["id"])
        truth = {
            a["id"]: truth_in(server, [shapely.geometry.shape(a["geometry"])], date) for a in listed
        }
        asked = [aoi_asked(r) for r in result_downloads(server)]
    ok = {a["id"] for a in listed if a["status"] == "OK"}
    failed = {a["id"]: a for a in listed if a["status"] == "FAILED"}
    assert ok and failed and len(ok) + len(failed) == 4
    assert sorted(asked) == sorted(ok)  # each OK AOI's result once, per AOI
    with jr.Journal(tmp_path, None, lock=False) as journal:
        recs = {d.aoi_id: d for d in journal.downloads()}
    assert set(recs) == ok | set(failed)
    for aoi_id in ok:
        geoms, _, damage = truth[aoi_id]
        stored = gpd.read_parquet(tmp_path / recs[aoi_id].path)
        assert recs[aoi_id].status == "OK" and recs[aoi_id].features == len(geoms)
        check_against_truth(np.asarray(stored.geometry.values), geoms, damage)
    for aoi_id, aoi in failed.items():
        assert (recs[aoi_id].status, recs[aoi_id].path) == ("FAILED", None)
        assert recs[aoi_id].messages == aoi["messages"] != []


@pytest.mark.timeout(60)
def test_a_failed_processing_without_results_per_aoi_ends_and_says_why(tmp_path):
    """Some AOIs of a processing fail and the service serves no results per AOI: the
    run ends (the whole result of a failed processing is never served, so it is not
    asked for again and again). Each failed tile has the service's messages, each tile
    whose AOI succeeded says why its objects were not fetched, and the run is incomplete."""
    from mapflow_geo.run.engine import NO_WHOLE_RESULT

    gdf = grid_gdf(4, km=0.8)
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=1, fail_fraction=0.5,
                   result_per_aoi=False) as server:  # fmt: skip
        with pytest.warns(RunIncompleteWarning):
            res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path,
                                      max_restarts=0, errors="warn", **FAST)  # fmt: skip
        downloads = result_downloads(server)
        (proc,) = server.processings
        listed = Api(server).get(f"/processings/{proc['id']}/aois").json()
    failed = {a["id"]: a for a in listed if a["status"] != "OK"}
    assert proc["status"] == "FAILED" and 0 < len(failed) < len(listed)
    assert all(aoi_asked(r) is not None for r in downloads)  # never the whole result
    assert len(downloads) <= len(listed) - len(failed)
    with jr.Journal(tmp_path, None, lock=False) as journal:
        recs = {d.aoi_id: d for d in journal.downloads()}
    assert set(recs) == {a["id"] for a in listed}
    for aoi_id, rec in recs.items():
        assert rec.status == "FAILED" and rec.path is None
        if aoi_id in failed:
            assert rec.messages == failed[aoi_id]["messages"]  # as the service gave them
        else:
            assert rec.messages == [NO_WHOLE_RESULT]
    assert not res.complete and len(res.features) == 0


def test_all_of_a_runs_downloads_stay_within_max_workers(tmp_path):
    """Two processings of four AOIs each finish together: their AOIs' results are
    downloaded side by side, never more than ``max_workers`` of the run's at once (the
    simulator's log)."""
    gdf = grid_gdf(8, km=0.8)
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=5,
                   faults={"latency_s": 0.2}) as server:  # fmt: skip
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_aois=4, max_workers=2,
            **FAST,
        )  # fmt: skip
        downloads = result_downloads(server)
    assert res.complete and res.tiles["processing_key"].nunique() == 2
    assert len(downloads) == 8 and None not in {aoi_asked(r) for r in downloads}
    assert max_overlap(downloads) == 2


def test_the_aois_of_one_processing_are_downloaded_side_by_side(tmp_path):
    """One processing of four AOIs: their results are downloaded two at a time at
    ``max_workers=2`` (the simulator's log), not one after the other."""
    gdf = grid_gdf(4, km=0.8)
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=5,
                   faults={"latency_s": 0.2}) as server:  # fmt: skip
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_workers=2, **FAST
        )
        downloads = result_downloads(server)
    assert res.complete and res.tiles["processing_key"].nunique() == 1
    assert len(downloads) == 4 and None not in {aoi_asked(r) for r in downloads}
    assert max_overlap(downloads) == 2


def test_a_failed_run_journals_what_the_service_listed_and_says_why(tmp_path):
    """Every processing fails: the journal holds, per processing, the status, percentage,
    cost and messages of the simulator's own record of it, and the error names the
    failed tiles of the run, their statuses and their reasons (each tile's failed AOI's
    messages, in tile order, cut at 500 characters)."""
    from support.sim_http import Api

    from mapflow_geo.messages import render_message
    from mapflow_geo.run import journal as jr

    gdf = _gdf(rect_km(5.0, 5.0, 8, 8))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, fail_fraction=1.0) as server:
        with pytest.raises(RunFailedError) as info:
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, max_restarts=0, **FAST
            )
        api = Api(server)
        listed = {p["id"]: api.get(f"/processings/{p['id']}").json() for p in server.processings}
        aois = {i: api.get(f"/processings/{i}/aois").json() for i in listed}
    journal = jr.Journal(tmp_path, None, lock=False)
    try:
        records = journal.records()
    finally:
        journal.close()
    assert {r.processing_id for r in records} == set(listed)
    for r in records:
        p = listed[r.processing_id]
        assert (r.status, r.percent, r.cost) == (p["status"], p["percentCompleted"], p["cost"])
        assert r.messages == p["messages"] != []
    res = info.value.result
    tiles = res.tiles
    reasons = []
    rows = zip(tiles["tile_id"], tiles["processing_id"], tiles.geometry, strict=True)
    for tile_id, pid, geom in rows:

        def overlap(a, geom=geom):
            return shapely.geometry.shape(a["geometry"]).intersection(geom).area

        aoi = max(aois[pid], key=overlap)
        assert aoi["status"] == "FAILED", tile_id
        reasons += [render_message(m) for m in aoi["messages"]]
    n_tiles = sum(len(a) for a in aois.values())  # one AOI per tile
    statuses = ", ".join(sorted({p["status"] for p in listed.values()}))
    joined = "; ".join(reasons)
    assert len(joined) > 500
    assert str(info.value) == (
        f"{n_tiles} of {n_tiles} tiles did not succeed ({statuses}); the result holds the "
        f"rest. First reasons: {joined[:500]}"
    )


def test_the_journal_is_written_when_status_cost_or_messages_change_and_only_then():
    """A processing's journal update carries what the listing says of it (status,
    percentage, cost, messages); a listing that changes none of status, cost or
    messages (the percentage alone, or no cost given) writes nothing."""
    from types import SimpleNamespace

    from mapflow_geo.run import journal as jr
    from mapflow_geo.run.engine import Runner

    msg = {"code": "dataloader.internalError", "parameters": {}}
    rec = jr.ProcessingRecord(
        key="p1", state=jr.CREATED, status="IN_PROGRESS", percent=10.0, cost=80, messages=[]
    )

    def listed(status="IN_PROGRESS", percent=40.0, cost=80, messages=()):
        return SimpleNamespace(
            status=status, percent_completed=percent, cost=cost, messages=list(messages)
        )

    def update(status="IN_PROGRESS", percent=40.0, cost=80, messages=()):
        return {
            "key": "p1", "status": status, "percent": percent, "cost": cost,
            "messages": list(messages),
        }  # fmt: skip

    assert Runner._update(rec, listed()) is None  # only the percentage moved
    assert Runner._update(rec, listed(cost=None)) is None  # no cost given: none changed
    assert Runner._update(rec, listed(status="FAILED", percent=0.0)) == update("FAILED", 0.0)
    assert Runner._update(rec, listed(cost=95)) == update(cost=95)
    assert Runner._update(rec, listed(messages=[msg])) == update(messages=[msg])


def test_only_a_route_or_parameter_not_served_is_taken_for_unserved(tmp_path):
    """The service's own "not ready" and "no such processing" answers (400 and 404,
    as the simulator gives them) are not a route it does not serve; a refused
    ``aoiId`` (400), a route it does not know (404, 405) or implement (501) is."""
    from support.sim_http import Api

    from mapflow_geo.exceptions import APIError
    from mapflow_geo.run.engine import _unserved

    def error(call):
        with pytest.raises(APIError) as info:
            call()
        return info.value

    with sim.serve(processing_seconds=100, result_per_aoi=False) as server:
        client = server.client()
        pid = Api(server).create()["id"]
        not_ready = error(lambda: client.processings.result(pid))
        no_such = error(lambda: client.processings.get("nope"))
        aoi_refused = error(lambda: client.processings.result(pid, "a1"))
        server.set_faults(status_501=1.0, paths=[f"/processings/{pid}/aois"])
        not_implemented = error(lambda: client.processings.aois(pid))
    assert (not_ready.status, not_ready.code) == (400, "RESULT_NOT_READY")
    assert (no_such.status, no_such.code) == (404, "PROCESSING_NOT_FOUND")
    assert not _unserved(not_ready) and not _unserved(no_such)
    assert aoi_refused.status == 400 and _unserved(aoi_refused)
    assert not_implemented.status == 501 and _unserved(not_implemented)
    assert _unserved(APIError(404, "Not Found")) and _unserved(APIError(405, "Not Allowed"))
    for status in (401, 403, 406, 500, 502, 503):
        assert not _unserved(APIError(status, "no")), status


def test_an_incomplete_run_names_each_status_of_its_failed_tiles_once():
    """Tiles that failed in different ways: their statuses, each once and sorted,
    separated by commas."""
    from types import SimpleNamespace

    import pandas as pd

    from mapflow_geo.run.engine import _report_incomplete

    failed = pd.DataFrame(
        {"status": ["NOT_CREATED", "FAILED", "FAILED"], "messages": [["no"], ["a", "b"], []]}
    )
    result = SimpleNamespace(complete=False, failed=failed, tiles=[0] * 5)
    with pytest.raises(RunFailedError) as info:
        _report_incomplete(result, "raise")
    assert info.value.result is result
    assert str(info.value) == (
        "3 of 5 tiles did not succeed (FAILED, NOT_CREATED); the result holds the rest. "
        "First reasons: no; a; b"
    )


def test_polling_backs_off_while_nothing_changes_and_comes_soon_after_a_change(tmp_path):
    """The simulator's processing waits 100 s UNPROCESSED, 100 s AWAITING, then is OK
    (its percentage stays 0: no finish is predicted). On a fake clock shared with the
    simulator, the run polls first right after the create, then ``min_poll_interval``
    after a poll that saw the status change, and otherwise 1.5 times longer than the
    last wait, up to ``poll_interval``; each poll is one listing request."""
    from support.clock import FakeTime

    fake = FakeTime(0.0)
    lo, hi, stage = 2.0, 30.0, 100.0
    opts = dict(poll_interval=hi, min_poll_interval=lo, progress=False)
    with sim.serve(
        aoi_area_limit_km2=5, unprocessed_seconds=stage, awaiting_seconds=stage,
        processing_seconds=0, clock=fake.clock,
    ) as server:  # fmt: skip
        res = grid_gdf(1).mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path,
            sleep=fake.sleep, clock=fake.clock, **opts,
        )  # fmt: skip
        listings = [
            r for r in server.requests if r.method == "POST" and r.path.endswith("/v2/page")
        ]
    assert res.complete
    created = 0.0  # the fake clock's start: the create and the first poll wait for nothing

    def status_at(t):
        e = t - created
        return "UNPROCESSED" if e < stage else "AWAITING" if e < 2 * stage else "OK"

    # the expected waits, from the statuses the simulator gives at each poll
    expected, t, gap, last = [], created, lo, "UNPROCESSED"  # the create's answer
    while True:
        now = status_at(t)
        if now == "OK":
            break
        gap = lo if now != last else min(hi, gap * 1.5)
        expected.append(gap)
        t, last = t + gap, now
    assert fake.sleeps == pytest.approx(expected), (fake.sleeps, expected)
    assert len(listings) == len(expected) + 1


def test_a_call_that_reuses_a_finished_run_shows_no_create_phase(tmp_path, capfd):
    """A second call in a finished run's dir sends no create and asks no cost (the
    journal holds the estimates; the simulator's record): its progress bar never shows
    the create phase, only the run as done."""
    gdf = grid_gdf(2)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        before = len(record.creates(server))
        capfd.readouterr()
        again = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, **{**FAST, "progress": True}
        )
        _, err = capfd.readouterr()
        after = len(record.creates(server))
        costs = [r for r in server.requests if r.path.endswith("/processing/cost/v2")]
    assert again.complete and after == before > 0
    assert len(costs) == before  # one per processing, all asked by the first call
    phases = re.findall(r"mapflow (\w+)", err)
    assert phases and "create" not in phases and phases[-1] == "done", err


def test_results_parse_as_many_at_once_as_there_are_cores(tmp_path, monkeypatch):
    """Results download side by side (``max_workers``: four processings finished at
    once), but only as many are parsed at once as the machine has cores (each is several
    times its GeoJSON in memory while parsed): on a machine of 2 cores, 2 and never more."""
    import threading
    import time

    from mapflow_geo.run import engine, fetch

    monkeypatch.setattr(engine.os, "cpu_count", lambda: 2)
    real_parse, lock, now, peak = fetch._parse, threading.Lock(), [0], [0]

    def slow_parse(*args, **kwargs):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        try:
            time.sleep(0.3)  # long enough for the other downloads to land meanwhile
            return real_parse(*args, **kwargs)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(fetch, "_parse", slow_parse)
    gdf = grid_gdf(4)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=4) as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_workers=4, **FAST
        )
        downloads = result_downloads(server)
    assert res.complete and len(downloads) == 4
    assert peak[0] == 2


def test_the_poll_that_sees_a_finish_comes_when_the_progress_predicts_it(tmp_path):
    """The simulator's processing runs 100 s at a steady percentage (nothing else
    changes), on a fake clock shared with it: backing off alone, the run's polls would
    be 30 s apart by then, but the percentages predict the finish and the poll that sees
    it OK comes within a second of it."""
    from support.clock import FakeTime

    fake = FakeTime(0.0)
    with sim.serve(
        aoi_area_limit_km2=5, processing_seconds=100.0, clock=fake.clock
    ) as server:  # fmt: skip
        res = grid_gdf(1).mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, poll_interval=30.0,
            min_poll_interval=2.0, progress=False, sleep=fake.sleep, clock=fake.clock,
        )  # fmt: skip
    assert res.complete
    polls = np.cumsum([0.0, *fake.sleeps])  # the create and the first poll at 0
    finish = 100.0
    assert polls[-1] >= finish and (polls[:-1] < finish).all()  # the last poll saw OK
    assert polls[-1] - finish <= 1.0, polls
    assert max(np.diff(polls)) == pytest.approx(30.0)  # polling had backed off meanwhile


def test_the_bar_counts_the_creates_as_they_are_answered(tmp_path, capfd):
    """Each create answered late (0.6 s, longer than the bar's redraw period), one at a
    time: the bar in its create phase shows one processing created, then two, as the
    simulator commits them."""
    gdf = grid_gdf(2)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0) as server:
        server.set_faults(latency_s=0.6, methods=["POST"], paths=["/processings/v2"])
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_workers=1,
            **{**FAST, "progress": True},
        )  # fmt: skip
        _, err = capfd.readouterr()
        n = len(server.processings)
    assert res.complete and n == 2
    frames = [f for f in re.split(r"[\r\n]+", err) if f.strip().startswith("mapflow create")]
    counts = [int(m.group(1)) for f in frames if (m := re.search(r"created (\d+)/2", f))]
    assert {1, 2} <= set(counts), frames


def test_polling_gives_up_once_an_outage_outlasts_max_outage_s(tmp_path):
    """Every listing fails (503, the client not retrying) from the first poll after the
    create on; on a fake clock shared with the simulator, the run polls again every
    ``poll_interval`` (30 s) and gives up with the service's error at the first poll
    that finds the outage longer than ``max_outage_s`` (300 s): at 330 s, not at 300 s
    (an outage of exactly 300 s has not outlasted it)."""
    from support.clock import FakeTime

    from mapflow_geo.exceptions import ServerError

    fake = FakeTime(1000.0)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=3600, clock=fake.clock) as server:
        server.after_create = lambda _rec: server.set_faults(status_503=1.0, paths=["/projects/"])
        with pytest.raises(ServerError):
            grid_gdf(1).mapflow.process(
                "buildings", client=server.client(retry=RetryPolicy(max_retries=0)),
                run_dir=tmp_path, poll_interval=30.0, min_poll_interval=2.0,
                max_outage_s=300.0, progress=False, sleep=fake.sleep, clock=fake.clock,
            )  # fmt: skip
        listed = [r for r in server.requests if r.path.endswith("/processings/v2/page")]
    assert [r.status for r in listed] == [503] * 12  # at 0, 30, …, 330 s
    assert fake.sleeps == [30.0] * 11
