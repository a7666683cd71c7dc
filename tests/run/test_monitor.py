"""Recurring monitoring through planned processings (templates), against the simulator:
one template over the rows, results fetched per imagery date, changes between dates,
each processing paid once — across a SIGKILL and resume."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter

import geopandas as gpd
import numpy as np
import pytest
import shapely
from support.truth import check_against_truth, truth_in

import mapflow_geo  # noqa: F401  (gdf.mapflow)
from mapflow_geo import sim
from mapflow_geo.run._failpoints import FAILPOINT_ENV
from mapflow_geo.run.monitor import open_monitor

DAY = 86400.0
SIM = dict(processing_seconds=0, seed=5, credits=10**7)


def _areas() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["north", "south"]},
        geometry=[shapely.box(37.60, 55.76, 37.63, 55.78), shapely.box(37.60, 55.73, 37.63, 55.75)],
        crs=4326,
    )


def _new_imagery(server, days: float = 31) -> list[str]:
    """A month passes: new scenes in the catalog; the service's daily template run."""
    server.advance(days * DAY)
    return server.run_templates()


def _paid_once(server) -> None:
    charges = Counter(c["processingId"] for c in server.charges)
    assert charges and all(n == 1 for n in charges.values()), charges


def test_monitor_fetches_each_date_and_pays_each_processing_once(tmp_path):
    gdf = _areas()
    with sim.serve(**SIM) as server:
        client = server.client()
        mon = gdf.mapflow.monitor("buildings", client=client, run_dir=tmp_path / "watch")
        first = mon.check()
        assert first.dates == [] and first.features.empty  # nothing new yet
        assert first.changes.empty  # nothing to compare
        assert list(first.processings.columns) == ["processing_id", "date", "status", "cost"]
        assert first.processings.empty and first.credits == 0
        seen_dates: list[str] = []
        for _ in range(3):
            started = _new_imagery(server)
            assert started, "the template started no processing for the new imagery"
            upd = mon.check()
            assert upd.new_dates and set(upd.new_dates).isdisjoint(seen_dates)
            seen_dates += upd.new_dates
            assert not upd.features.empty
            assert set(upd.features["row"]) <= set(gdf.index)
        # a check with nothing new fetches nothing and downloads nothing again
        server.clear_requests()
        again = mon.check()
        assert again.new_dates == [] and len(again.features) == len(upd.features)
        # no change, in the same frame as a comparison's: columns, CRS and (once there
        # are objects to take the row labels' type from) dtypes
        assert again.changes.empty and first.changes.empty
        for nothing in (first.changes, again.changes):
            assert list(nothing.columns) == list(upd.changes.columns)
            assert nothing.crs == upd.changes.crs
        assert again.changes.dtypes.to_dict() == upd.changes.dtypes.to_dict()
        assert [r.path for r in server.requests if "/result" in r.path] == []
        # a second monitor() on the same folder resumes the same template
        again_mon = gdf.mapflow.monitor("buildings", client=client, run_dir=tmp_path / "watch")
        assert again_mon.template_id == mon.template_id
        assert len(client.templates.list()) == 1
        _paid_once(server)
        template_procs = [p for p in server.processings if (p.get("meta") or {}).get("templateId")]
        assert {p["id"] for p in template_procs} == set(again.processings["processing_id"])
        assert again.credits == sum(p["cost"] for p in template_procs)
        # each processing's imagery date is its scene's, as the simulator records it
        table = again.processings.set_index("processing_id")
        for p in template_procs:
            assert table.loc[p["id"], "date"] == server.imagery_date(p["id"])
        assert again.dates == sorted({server.imagery_date(p["id"]) for p in template_procs})
    assert len(seen_dates) >= 3 and seen_dates == sorted(seen_dates)


def test_a_failed_processing_is_listed_but_brings_no_date(tmp_path):
    """A template processing that failed is in the processings table with its date and
    status, but its date is no imagery date with results: no date, no change."""
    with sim.serve(**{**SIM, "fail_fraction": 1.0}) as server:
        mon = _areas().mapflow.monitor("buildings", client=server.client(), run_dir=tmp_path)
        mon.check()
        started = _new_imagery(server)
        assert started, "the template started no processing for the new imagery"
        upd = mon.check()
        assert set(upd.processings["processing_id"]) == set(started)
        assert set(upd.processings["status"]) == {"FAILED"}
        dates = upd.processings.set_index("processing_id")["date"]
        assert all(dates[i] == server.imagery_date(i) for i in started)
        assert upd.dates == [] and upd.new_dates == [] and upd.features.empty


def test_state_at_each_date_is_the_world_at_that_date(tmp_path):
    """``Monitor.state(date)`` holds the simulator's true objects at that date, each whole
    and once; before the first date it is empty, and without a date it is the latest."""
    gdf = _areas()
    with sim.serve(**SIM) as server:
        mon = gdf.mapflow.monitor("buildings", client=server.client(), run_dir=tmp_path / "w")
        mon.check()
        assert mon.state().empty  # nothing fetched yet: no date, no object
        for _ in range(3):
            _new_imagery(server)
            upd = mon.check()
        assert len(upd.dates) >= 3
        # stitching joins pieces and adds no column: the stored pieces' columns
        stored = sorted((tmp_path / "w" / "results").glob("*.parquet"))
        columns = list(gpd.read_parquet(stored[0]).columns)
        assert list(upd.features.columns) == columns
        for date in upd.dates:
            assert list(mon.state(date).columns) == columns
            got = np.asarray(mon.state(date).geometry.values)
            truth, _, damage = truth_in(server, gdf.geometry, date)
            assert len(truth), f"no true building at {date}: nothing tested"
            assert len(got) == len(truth), date
            check_against_truth(got, truth, damage)
        assert mon.state("1900-01-01").empty
        assert (
            mon.state().geometry.normalize().equals(mon.state(upd.dates[-1]).geometry.normalize())
        )


CHILD = textwrap.dedent(
    """
    import sys, geopandas as gpd, mapflow_geo
    gdf = gpd.read_parquet(sys.argv[1])
    mon = gdf.mapflow.monitor("buildings", run_dir=sys.argv[2])
    upd = mon.check()
    print("DONE", len(upd.dates), len(upd.features), flush=True)
    """
)


@pytest.mark.reliability
def test_monitoring_loop_survives_sigkill_and_pays_once(tmp_path):
    """Three imagery dates; at each, the check is killed at one of the monitor's
    failpoints (the template create's intent and answer, recording, mid-download, before
    a result's rename) and run again: one template, every processing paid once, every
    date's results stored once."""
    gdf = _areas()
    path = tmp_path / "aoi.parquet"
    gdf.to_parquet(path)
    run_dir = tmp_path / "watch"
    cmd = [sys.executable, "-c", CHILD, str(path), str(run_dir)]
    with sim.serve(**SIM) as server:
        env = dict(os.environ, MAPFLOW_API_URL=server.url, MAPFLOW_TOKEN=server.token)
        env.pop(FAILPOINT_ENV, None)
        kills = []
        plan = [["monitor_after_intent", "monitor_after_create"]] + [
            ["monitor_after_record", "monitor_mid_download", "monitor_before_rename"]
        ] * 3
        for step, points in enumerate(plan):
            if step:
                assert _new_imagery(server)
            for point in points:
                out = subprocess.run(
                    cmd, env={**env, FAILPOINT_ENV: point}, capture_output=True, timeout=300
                )
                assert out.returncode == -signal.SIGKILL, (point, out.stderr[-2000:])
                kills.append(point)
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            assert out.returncode == 0 and "DONE" in out.stdout, out.stderr[-2000:]
        assert len(server.client().templates.list()) == 1  # never a second template
        _paid_once(server)
        final = open_monitor(run_dir, server.client()).check()
        downloads = [r.path for r in server.requests if r.path.endswith("/result")]
    assert len(kills) == 11
    assert len(final.dates) >= 3
    assert not final.processings["processing_id"].duplicated().any()
    assert downloads  # the results were fetched over HTTP


def test_an_unreadable_result_waits_for_the_next_check_and_damaged_objects_are_repaired(
    tmp_path,
):
    gdf = _areas()
    with sim.serve(**SIM) as server:
        client = server.client()
        gdf.mapflow.monitor("buildings", client=client, run_dir=tmp_path / "watch")
        mon = open_monitor(tmp_path / "watch", client, sleep=lambda s: None)
        mon.check()
        assert _new_imagery(server)
        server.set_faults(truncated_result=1.0)  # every result body cut short
        upd = mon.check()
        assert upd.new_dates == [] and upd.features.empty  # nothing half-parsed kept
        cut = [r for r in server.requests if r.fault == "truncated_result"]
        assert cut
        server.set_faults(damaged_geometry=0.05)
        upd = mon.check()  # the next check fetches what was unreadable
        assert upd.new_dates and not upd.features.empty
        assert shapely.is_valid(upd.features.geometry.values).all()
        geoms, props = server.truth(gdf.total_bounds, date=upd.new_dates[-1])
        damaged = server.damage(props["truth_id"])
        inside = shapely.intersects(geoms, shapely.union_all(gdf.geometry.values))
        gone = set(props["truth_id"][inside & ((damaged == "null") | (damaged == "empty"))])
        assert gone, "no object of the areas was damaged to nothing"
        # every object damaged to nothing is missing from the state, every other is there
        assert len(upd.features) == int(inside.sum()) - len(gone)
        _paid_once(server)


@pytest.mark.parametrize("lost", [False, True])
def test_the_template_is_created_once_in_the_projects_given(tmp_path, lost):
    """The template goes into the project given; when the create's answer is lost (the
    service created it, a gateway answered 504), it is found by its name in that project,
    not sent again."""
    with sim.serve(**SIM) as server:
        client = server.client()
        project = client.projects.create("watch")
        if lost:
            server.set_faults(
                gateway_timeout=1.0, methods=["POST"], paths=["/processings/template"]
            )
        mon = _areas().mapflow.monitor(
            "buildings", client=client, run_dir=tmp_path, project=project.id
        )
        server.clear_faults()
        templates = server.state["templates"]
        creates = [
            r for r in server.requests if r.method == "POST" and r.path.endswith("/template")
        ]
    assert len(creates) == 1
    assert [t["projectId"] for t in templates.values()] == [project.id]
    assert mon.template_id == next(iter(templates))


@pytest.mark.parametrize(("account_limit", "planned_with"), [(37.5, 37.5), (0, 100.0)])
def test_template_area_limit_is_the_accounts(tmp_path, account_limit, planned_with):
    """A monitor plans its template's AOIs with the account's ``templateAreaLimit`` (m² in
    ``/user/status``, km² in the run's parameters), the service's default 100 km² when the
    account reports none."""
    with sim.serve(**SIM, template_area_limit_km2=account_limit) as server:
        _areas().mapflow.monitor("buildings", client=server.client(), run_dir=tmp_path / "w")
        reported = server.client().account.status().raw["templateAreaLimit"]
    assert reported == int(account_limit * 1e6)  # what the service says, in m²
    params = json.loads((tmp_path / "w" / "params.json").read_text())
    assert params["template_area_limit_km2"] == planned_with


def test_a_processing_still_running_is_fetched_once_it_ends(tmp_path):
    """A check while the template's processings run stores nothing of them; the check
    after they end (the service's clock moved past their processing time) fetches them."""
    with sim.serve(**{**SIM, "processing_seconds": 3600}) as server:
        mon = _areas().mapflow.monitor("buildings", client=server.client(), run_dir=tmp_path)
        mon.check()
        assert _new_imagery(server), "the template started no processing for the new imagery"
        running = mon.check()
        assert running.new_dates == [] and running.features.empty
        assert set(running.processings["status"]) <= {"IN_PROGRESS", "UNPROCESSED"}
        server.advance(2 * 3600)
        done = mon.check()
        assert done.new_dates and not done.features.empty
        assert set(done.processings["status"]) == {"OK"}


def _journalled(run_dir) -> dict[str, dict]:
    """The monitor's journal as stored (DESIGN.md, *The journal*): one row per processing,
    by the service's id."""
    with contextlib.closing(sqlite3.connect(run_dir / "journal.sqlite")) as db:
        db.row_factory = sqlite3.Row
        return {r["processing_id"]: dict(r) for r in db.execute("SELECT * FROM processing")}


def test_the_monitors_journal_holds_each_processing_once_with_its_charge_and_area(tmp_path):
    """Each processing the template started is journalled once, with the credits the
    service charged for it as its estimate and its area in km²; a check that sees it
    again rewrites nothing and asks the service nothing about it."""
    with sim.serve(**SIM) as server:
        mon = _areas().mapflow.monitor("buildings", client=server.client(), run_dir=tmp_path)
        mon.check()
        started = _new_imagery(server)
        mon.check()
        stored = _journalled(tmp_path)
        charges = {c["processingId"]: c for c in server.charges}
        assert started and set(stored) == set(started) == set(charges)
        for pid, row in stored.items():
            assert row["estimate"] == charges[pid]["cost"] > 0
            assert row["area_km2"] == pytest.approx(charges[pid]["area"] / 1e6, rel=1e-12)
            assert row["state"] == "finished" and row["status"] == "OK"
        server.clear_requests()
        mon.check()  # the same processings listed again
        assert _journalled(tmp_path) == stored
        asked = [r.path for r in server.requests if any(pid in r.path for pid in stored)]
        assert asked == []


def _created_day(server, pid: str) -> str:
    """The UTC day the simulator created processing ``pid`` (its own record)."""
    created = server.state["processings"][pid]["created"]
    return dt.datetime.fromtimestamp(created, dt.timezone.utc).date().isoformat()


@pytest.mark.parametrize("where", ["params", "none"])
def test_a_processing_whose_name_holds_no_date_is_dated_by_its_params_or_creation(tmp_path, where):
    """A service that does not end a template processing's name with its imagery date:
    the monitor takes the date its parameters state (the scene's acquisition date), and
    when they state none, the day the processing was created."""
    with sim.serve(**SIM, template_processing_date=where) as server:
        mon = _areas().mapflow.monitor("buildings", client=server.client(), run_dir=tmp_path)
        mon.check()
        started = []
        for _ in range(2):
            started += _new_imagery(server)
            upd = mon.check()
        names = [p["name"] for p in server.processings if p["id"] in started]
        assert started and not any(re.search(r"\d{4}-\d{2}-\d{2}", n) for n in names)
        truth = {
            pid: server.imagery_date(pid) if where == "params" else _created_day(server, pid)
            for pid in started
        }
        other = {
            pid: _created_day(server, pid) if where == "params" else server.imagery_date(pid)
            for pid in started
        }
        assert truth != other  # the two dates differ: the test tells them apart
    dates = upd.processings.set_index("processing_id")["date"].to_dict()
    assert dates == truth
    assert upd.dates == sorted(set(truth.values()))


def test_a_processing_that_fails_after_it_was_recorded_keeps_the_services_messages(tmp_path):
    """A template processing recorded while it runs and failed at the next check is
    journalled with the messages the service gave for its failed AOIs."""
    with sim.serve(**{**SIM, "processing_seconds": 3600, "fail_fraction": 1.0}) as server:
        mon = _areas().mapflow.monitor("buildings", client=server.client(), run_dir=tmp_path)
        mon.check()
        started = _new_imagery(server)
        assert started, "the template started no processing for the new imagery"
        running = mon.check()
        assert set(running.processings["status"]) <= {"IN_PROGRESS", "UNPROCESSED"}
        server.advance(2 * 3600)
        assert set(mon.check().processings["status"]) == {"FAILED"}
        truth = {
            pid: [a["attempts"][-1]["message"] for a in server.state["processings"][pid]["aois"]]
            for pid in started
        }
    stored = _journalled(tmp_path)
    for pid in started:
        assert truth[pid] and all(truth[pid])
        assert json.loads(stored[pid]["messages"] or "[]") == truth[pid]


def test_a_monitors_folder_is_reopened_as_a_monitor_not_as_a_run(tmp_path):
    """``open_run`` on a monitor's folder says what it holds and how to reopen it;
    ``mapflow_geo.open_monitor`` reopens it on the service's one template."""
    from mapflow_geo.exceptions import RunError

    with sim.serve(**SIM) as server:
        _areas().mapflow.monitor("buildings", client=server.client(), run_dir=tmp_path)
        [template] = server.client().templates.list()
        with pytest.raises(RunError, match=r"holds a monitor .*open_monitor") as err:
            mapflow_geo.open_run(tmp_path)
        assert str(template.id) in str(err.value)
        assert mapflow_geo.open_monitor(tmp_path, server.client()).template_id == str(template.id)


def _template(server, template_id: str) -> dict:
    """The template as the simulator stores it (what the create sent)."""
    return server.state["templates"][template_id]


@pytest.mark.parametrize("blocks", [None, ["Classification"]])
def test_the_template_runs_the_model_with_the_options_given(tmp_path, blocks):
    """The template's ``processingParams`` name the model by the service's keys (``wdId``
    and ``wdName`` of the account's model) and carry the options as a processing's create
    takes them (``[{name, enabled}]``): each processing it starts runs them."""
    from mapflow_geo.sim.catalog import DEFAULT_MODELS

    [model] = [m for m in DEFAULT_MODELS if m["kind"] == "buildings"]
    with sim.serve(**SIM) as server:
        mon = _areas().mapflow.monitor(
            "buildings", client=server.client(), run_dir=tmp_path, blocks=blocks
        )
        sent = _template(server, mon.template_id)["processingParams"]
        started = _new_imagery(server)
        procs = [p for p in server.state["processings"].values() if p["id"] in started]
    assert sent["wdId"] == model["id"] and sent["wdName"] == model["name"]
    if blocks is None:
        assert "blocks" not in sent
    else:
        assert sent["blocks"] == [{"name": "Classification", "enabled": True}]
    assert procs and len(procs) == len(started)
    for p in procs:
        assert p["wdId"] == model["id"]
        assert p["enabledBlocks"] == {
            "Classification": bool(blocks),
            "Simplification": False,
            "OSM": False,
        }


def test_a_create_the_service_never_saw_says_to_run_again_and_running_again_creates_it(
    tmp_path,
):
    """A template create whose connection is reset before the service handled it has an
    unknown outcome: the template is not listed, so ``monitor()`` stops and says to run it
    again later with the same run_dir; doing that creates the template, once."""
    from mapflow_geo.exceptions import MapflowError

    with sim.serve(**SIM) as server:
        client = server.client()
        server.set_faults(reset=1.0, methods=["POST"], paths=["/processings/template"])
        with pytest.raises(MapflowError) as err:
            _areas().mapflow.monitor("buildings", client=client, run_dir=tmp_path)
        server.clear_faults()
        assert not server.state.get("templates")
        assert re.search(
            r"the answer was lost and the template is not listed yet; run monitor\(\) again "
            r"later with the same run_dir \(it will look for it again before creating anything\)",
            str(err.value),
        ), str(err.value)
        mon = _areas().mapflow.monitor("buildings", client=client, run_dir=tmp_path)
        assert list(server.state["templates"]) == [mon.template_id]


@pytest.mark.parametrize("point", ["monitor_after_intent", "monitor_after_create"])
def test_a_monitor_stopped_at_its_create_has_one_template_under_its_first_name(
    tmp_path, monkeypatch, point
):
    """Stopped just before the template's create or just after it (before its id is
    journalled), ``monitor()`` on the same run_dir looks for the template by the name it
    journalled (even when called with another ``name``): it adopts the one created, or
    creates it under that name; one template, never a second."""
    monitor_module = sys.modules["mapflow_geo.run.monitor"]

    def stop(name):
        if name == point:
            raise KeyboardInterrupt(name)

    with sim.serve(**SIM) as server:
        client = server.client()
        monkeypatch.setattr(monitor_module, "failpoint", stop)
        with pytest.raises(KeyboardInterrupt):
            _areas().mapflow.monitor("buildings", client=client, run_dir=tmp_path, name="first")
        monkeypatch.undo()
        before = dict(server.state.get("templates") or {})
        assert len(before) == (point == "monitor_after_create")
        mon = _areas().mapflow.monitor("buildings", client=client, run_dir=tmp_path, name="other")
        after = server.state["templates"]
    assert list(after) == [mon.template_id]
    assert set(before) <= set(after)
    assert after[mon.template_id]["name"].startswith("first ")


def test_the_template_is_named_by_the_name_given_and_its_run_and_holds_the_rows(tmp_path):
    """The template's name is the ``name`` given (``mapflow-geo`` by default) and the run's
    12-character id, so two monitors of one name have two templates; its AOIs, one per
    planned tile and named by it, cover the rows."""
    gdf = _areas()
    with sim.serve(**SIM) as server:
        client = server.client()
        mons = [
            gdf.mapflow.monitor("buildings", client=client, run_dir=tmp_path / d, name=n)
            for d, n in (("a", "watch"), ("b", "watch"), ("c", None))
        ]
        templates = [_template(server, m.template_id) for m in mons]
    names = [t["name"] for t in templates]
    assert re.fullmatch(r"watch [0-9a-f]{12}", names[0]), names
    assert re.fullmatch(r"watch [0-9a-f]{12}", names[1]) and names[1] != names[0], names
    assert re.fullmatch(r"mapflow-geo [0-9a-f]{12}", names[2]), names
    tiles = gpd.read_parquet(tmp_path / "a" / "plan.parquet")
    aois = templates[0]["aois"]
    assert sorted(a["name"] for a in aois) == sorted(tiles["tile_id"].astype(str))
    covered = shapely.union_all([shapely.geometry.shape(a["geometry"]) for a in aois])
    rows = shapely.union_all(gdf.geometry.values)
    assert covered.symmetric_difference(rows).area < 1e-9 * rows.area


def test_the_template_searches_from_the_date_with_the_cloud_cover_and_until_given(tmp_path):
    """``date_from``, ``max_cloud_cover`` (a fraction; the service's search takes percent)
    and ``active_until`` are the template's search and life, as the simulator stores them."""
    until = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    with sim.serve(**SIM) as server:
        mon = _areas().mapflow.monitor(
            "buildings",
            client=server.client(),
            run_dir=tmp_path,
            date_from="2024-01-01",
            max_cloud_cover=0.2,
            active_until=until,
        )
        t = _template(server, mon.template_id)
    assert t["searchParams"]["acquisitionDateFrom"].startswith("2024-01-01")
    assert t["searchParams"]["maxCloudCover"] == pytest.approx(20)
    assert t["activeUntil"] == pytest.approx(until.timestamp())


def test_a_run_dir_of_a_processing_run_is_no_monitor_and_says_so(tmp_path):
    """``open_monitor`` on the run dir of a ``process`` run (a journal, no template)
    refuses with a ConfigError naming that run dir, before any request."""
    from mapflow_geo.exceptions import ConfigError

    with sim.serve(**SIM) as server:
        _areas().mapflow.process("buildings", client=server.client(), run_dir=tmp_path)
        before = len(server.requests)
        with pytest.raises(ConfigError) as err:
            open_monitor(tmp_path, server.client())
        assert len(server.requests) == before
    assert str(err.value).startswith(f"{tmp_path} holds no monitor")
