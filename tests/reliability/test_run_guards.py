"""Campaign 5 — run guards: a second process on the same run dir is refused; changed
inputs are refused; a changed (rotated) token resumes the run without paying twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from support.areas import grid_gdf
from support.campaign import FAST, child_env, child_run, run_child
from support.record import assert_one_charge_each

import mapflow_geo  # noqa: F401
from mapflow_geo import open_run, sim
from mapflow_geo.exceptions import RunError

SIM = dict(aoi_area_limit_km2=5, processing_seconds=0.5, seed=23)
OPTS = dict(poll_interval=0.2, min_poll_interval=0.05, adopt_grace_s=1.0)

HOLD = textwrap.dedent(
    """
    import sys, time
    from mapflow_geo.run import journal
    j = journal.Journal(sys.argv[1], sys.argv[2])
    print("LOCKED", flush=True)
    time.sleep(60)
    """
)


def test_second_process_on_same_run_dir_refused(tmp_path):
    from mapflow_geo.run import fingerprint_of  # noqa: F401 - the guard is the lock

    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir), "fp"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with sim.serve(**SIM) as server:
            with pytest.raises(RunError, match="another process"):
                grid_gdf(2).mapflow.process(
                    "buildings", client=server.client(), run_dir=run_dir, **FAST
                )
            assert not [
                r
                for r in server.requests
                if r.method == "POST" and r.path.endswith("/processings/v2")
            ]
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its process: a SIGKILLed holder leaves nothing to clean up
    assert holder.returncode == -signal.SIGKILL


def test_changed_inputs_refused(tmp_path):
    with sim.serve(**SIM) as server:
        client = server.client()
        grid_gdf(3).mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        n = len(server.charges)
        for other in (
            grid_gdf(4),  # another row
            grid_gdf(3).set_index(grid_gdf(3).index + 1),  # other labels
            grid_gdf(3, lon=10.001),  # moved
        ):
            with pytest.raises(RunError, match="other inputs"):
                other.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        with pytest.raises(RunError, match="other inputs"):
            grid_gdf(3).mapflow.process("forest", client=client, run_dir=tmp_path, **FAST)
        assert len(server.charges) == n


def test_another_api_host_refused(tmp_path):
    """The fingerprint includes the API host name (not its port): a run dir is never
    resumed against another service, whose processings it could not see."""
    with sim.serve(**SIM) as server:
        grid_gdf(2).mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        from mapflow_geo import MapflowClient

        other = MapflowClient(server.token, base_url=server.url.replace("127.0.0.1", "localhost"))
        with pytest.raises(RunError, match="other inputs"):
            grid_gdf(2).mapflow.process("buildings", client=other, run_dir=tmp_path, **FAST)


def test_rotated_token_resumes(tmp_path):
    gdf = grid_gdf(6)
    cmd, run_dir = child_run(tmp_path, gdf, **OPTS)
    with sim.serve(**SIM) as server:
        old = server.token
        killed = run_child(cmd, child_env(server, "after_create:3"))
        assert killed.returncode == -signal.SIGKILL
        new = "c2ltQG1hcGZsb3cubG9jYWw6cm90YXRlZC1rZXktMTExMQ=="
        server.set_token(new)
        # the old token is refused clearly, and nothing is created with it
        n_before = len(server.charges)
        stale = run_child(cmd, child_env(server, token=old))
        assert stale.returncode == 3 and "AuthenticationError" in stale.stdout
        assert len(server.charges) == n_before
        done = run_child(cmd, child_env(server, token=new))
        assert done.returncode == 0, done.stderr[-2000:]
        assert_one_charge_each(server)
        assert len(server.processings) == 6
    assert open_run(run_dir).complete
    time.sleep(0)
