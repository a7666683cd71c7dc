"""Campaign 7 — the server restarts mid-run (simulator state persisted with
``state_file``): a live run waits out the restart and completes; a killed run resumes
against the restarted server on another port (the fingerprint has the host, not the
port). One charge per processing, nothing lost."""

from __future__ import annotations

import logging
import signal
import threading
import time

from support.areas import grid_gdf
from support.campaign import (
    FAST,
    FULL,
    child_env,
    child_run,
    no_temp_files,
    run_child,
    same_features,
)

import mapflow_geo  # noqa: F401
from mapflow_geo import RetryPolicy, open_run, sim

N = 24 if FULL else 10
SIM = dict(aoi_area_limit_km2=5, processing_seconds=1.5, seed=31)


def _one_charge_each(server, n):
    charges = server.charges
    assert len(charges) == len({c["processingId"] for c in charges}) == n
    keys = [p["meta"]["mapflow_geo_key"] for p in server.processings]
    assert len(keys) == len(set(keys)) == n


def _reference(tmp_path):
    with sim.serve(**SIM) as server:
        return (
            grid_gdf(N)
            .mapflow.process("buildings", client=server.client(), run_dir=tmp_path / "ref", **FAST)
            .features
        )


def test_live_run_survives_server_restart(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="mapflow_geo.run")
    state = str(tmp_path / "sim.json")
    first = sim.Server(state_file=state, **SIM).start()
    port, token = first.port, first.token
    client = first.client(retry=RetryPolicy(backoff_base=0.05))
    out: dict = {}

    def run():
        try:
            out["res"] = grid_gdf(N).mapflow.process(
                "buildings", client=client, run_dir=tmp_path / "run", **FAST
            )
        except BaseException as exc:  # noqa: BLE001
            out["exc"] = exc

    t = threading.Thread(target=run)
    t.start()
    # restart once processings exist, while the run polls
    deadline = time.time() + 60
    while not first.processings and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    first.close()
    time.sleep(1.5)  # the API is down: connection refused
    second = sim.Server(port=port, state_file=state, **SIM).start()
    try:
        t.join(timeout=300)
        assert not t.is_alive()
        assert "exc" not in out, repr(out.get("exc"))
        assert second.token == token
        _one_charge_each(second, N)
        assert "poll failed" in caplog.text  # the run did meet the outage
    finally:
        second.close()
    res = out["res"]
    assert res.complete
    same_features(res.features, _reference(tmp_path))
    no_temp_files(tmp_path / "run")


def test_killed_run_resumes_on_restarted_server_on_another_port(tmp_path):
    gdf = grid_gdf(N)
    state = str(tmp_path / "sim.json")
    cmd, run_dir = child_run(
        tmp_path, gdf, poll_interval=0.2, min_poll_interval=0.05, adopt_grace_s=1.0
    )
    with sim.serve(state_file=state, **SIM) as server:
        killed = run_child(cmd, child_env(server, "after_create:3"))
        assert killed.returncode == -signal.SIGKILL
    with sim.serve(state_file=state, **SIM) as server:  # a new port
        done = run_child(cmd, child_env(server))
        assert done.returncode == 0, done.stderr[-2000:]
        _one_charge_each(server, N)
    res = open_run(run_dir)
    assert res.complete
    same_features(res.features, _reference(tmp_path))
