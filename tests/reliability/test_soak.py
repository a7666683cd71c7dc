"""Campaign 4 — random-kill soak: SIGKILL a run at random moments while the server
injects ~5 % transient faults on every endpoint; resume each time with the same run dir.
Zero duplicate creates, zero lost features. Full: 20 kills in a 200-processing run;
bounded: 4 kills in 60 processings. ``MAPFLOW_SOAK_SEED`` picks the kill times."""

from __future__ import annotations

from collections import Counter

from support.areas import grid_gdf
from support.campaign import (
    FAST,
    FULL,
    child_run,
    kill_each,
    kill_thresholds,
    no_temp_files,
    same_features,
    seeded,
    start_child,
)
from support.record import assert_one_charge_each, creates

import mapflow_geo  # noqa: F401
from mapflow_geo import open_run, sim

N, KILLS = (200, 20) if FULL else (60, 4)
SIM = dict(aoi_area_limit_km2=5, processing_seconds=40.0 if FULL else 4.0, seed=17, credits=10**7)
FAULTS = {  # ≈ 5 % of requests, transient kinds only
    "status_500": 0.01,
    "status_502": 0.01,
    "status_503": 0.01,
    "status_429": 0.01,
    "reset": 0.005,
    "drop_create_response": 0.05,  # of committed creates
    "retry_after": "0.2",
}
OPTS = dict(poll_interval=0.3, min_poll_interval=0.05, adopt_grace_s=1.0, max_workers=4)


def test_random_kills_with_transient_faults(tmp_path):
    gdf = grid_gdf(N)
    cmd, run_dir = child_run(tmp_path, gdf, **OPTS)
    rng = seeded(4321)
    # kill points over creates and downloads, each while the child surely has work left
    points = kill_thresholds(rng, N, KILLS)
    with sim.serve(**SIM, faults=FAULTS) as server:
        kills = kill_each(cmd, server, points)  # each kill asserts that it landed
        child = start_child(cmd, server)
        out, err = child.communicate(timeout=900)
        assert child.returncode == 0, (
            f"run failed ({child.returncode}): {out[-2000:]} {err[-3000:]}"
        )
        assert "DONE" in out
        faults = [r for r in server.requests if r.fault]
        # a duplicate is a double payment: two committed processings with one key, from
        # the simulator's own record of what it charged (every create carries its key)
        keys = Counter((p.get("meta") or {}).get("mapflow_geo_key") for p in server.processings)
        assert None not in keys, "a committed processing without its key"
        assert [k for k, n in keys.items() if n > 1] == [], "a processing was paid twice"
        assert len(keys) == N
        # and the request log agrees: exactly N creates were handled with a 2xx (answered
        # or dropped after the commit)
        handled = [
            r.status if r.handled_status is None else r.handled_status for r in creates(server)
        ]
        assert sum(200 <= h < 300 for h in handled) == N
        assert_one_charge_each(server)  # zero duplicate creates, credits = sum of costs
        assert len(server.processings) == N
    res = open_run(run_dir)
    assert res.complete
    no_temp_files(run_dir)
    with sim.serve(**SIM) as server:  # same world, no faults, no kills
        ref = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path / "ref", **FAST
        )
    same_features(res.features, ref.features)  # zero lost (or extra) features
    assert kills == KILLS, f"only {kills} of {KILLS} kills landed"
    assert len(faults) >= 10, f"only {len(faults)} faults injected"
    print(f"soak: {N} processings, {kills} kills, {len(faults)} faults injected")
