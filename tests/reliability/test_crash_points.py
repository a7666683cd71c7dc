"""Campaign 3 — SIGKILL at every durable step (``MAPFLOW_GEO_FAILPOINT``, and a
simulator-side kill after the server committed a create but before it answered), then
rerun: one charge per processing, credits equal the sum of processing costs, merged
output equal to a fault-free reference, no temp files left."""

from __future__ import annotations

import os
import signal

import pytest
from support.areas import grid_gdf
from support.campaign import (
    FAST,
    FULL,
    child_env,
    child_run,
    no_temp_files,
    run_child,
    same_features,
    start_child,
)
from support.record import assert_one_charge_each

import mapflow_geo  # noqa: F401
from mapflow_geo import open_run, sim
from mapflow_geo.run._failpoints import FAILPOINTS

N = 12 if FULL else 6
HITS = (1, 3) if FULL else (2,)
SIM = dict(aoi_area_limit_km2=5, processing_seconds=0.3, seed=13, credits=10**6)
OPTS = dict(poll_interval=0.2, min_poll_interval=0.05, adopt_grace_s=1.0, max_workers=2)

POINTS = [*FAILPOINTS, "server_commit"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    with sim.serve(**SIM) as server:
        res = grid_gdf(N).mapflow.process(
            "buildings", client=server.client(), run_dir=d / "run", **FAST
        )
    return res.features


@pytest.mark.parametrize("hit", HITS)
@pytest.mark.parametrize("point", POINTS)
def test_kill_at_failpoint_then_resume(tmp_path, reference, point, hit):
    if point == "mid_merge":
        hit = 1  # the merge runs once per run
    gdf = grid_gdf(N)
    cmd, run_dir = child_run(tmp_path, gdf, **OPTS)
    with sim.serve(**SIM) as server:
        if point == "server_commit":
            seen = []
            child = start_child(cmd, server)

            def kill_child(rec):
                seen.append(rec)
                if len(seen) == hit:
                    os.kill(child.pid, signal.SIGKILL)

            server.after_create = kill_child
            child.communicate(timeout=300)
            rc = child.returncode
            server.after_create = None
        else:
            rc = run_child(cmd, child_env(server, f"{point}:{hit}")).returncode
        assert rc == -signal.SIGKILL, f"{point}:{hit} never fired (rc={rc})"
        if point == "before_result_rename":
            assert list(run_dir.rglob(".*.tmp")), "the kill should have left a temp file"
        done = run_child(cmd, child_env(server))
        assert done.returncode == 0, done.stderr[-3000:]
        assert "DONE" in done.stdout
        assert_one_charge_each(server)
        assert len(server.processings) == N
    res = open_run(run_dir)
    assert res.complete
    assert res.processings["cost"].sum() == sum(c["cost"] for c in server.charges)
    same_features(res.features, reference)
    no_temp_files(run_dir)
