"""Campaign — money behind a lagging, paged service, as the real service's contract allows.

The service's listings lag behind creates (``listing_lag_s=60``) and are paged
(``page_size=50``); 30 % of creates commit and charge, then lose their answer
(``drop_create_response``); the run is SIGKILLed at 4 random moments and resumed with
the same run dir. Zero duplicate creates at the simulator (counted by the ``meta`` key
every create carries, from the simulator's own record of what it charged), and the same
objects as an uninterrupted run against the same world.

With the old policy (re-create what stays absent from one unpaged listing for 20 s)
7 of 8 dropped responses were paid twice here."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from support.areas import grid_gdf
from support.campaign import FAST, child_run, no_temp_files, same_features, seeded, start_child
from support.record import assert_one_charge_each

from mapflow_geo import open_run, sim

N, KILLS = 100, 4
SIM = dict(aoi_area_limit_km2=5, processing_seconds=3.0, seed=29, credits=10**7)
HOSTILE = dict(listing_lag_s=60.0, page_size=50)
FAULTS = {"drop_create_response": 0.3}
OPTS = dict(poll_interval=2.0, min_poll_interval=0.2, max_workers=4)

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def test_lagging_paged_listings_dropped_creates_and_kills_pay_once(tmp_path):
    gdf = grid_gdf(N)
    cmd, run_dir = child_run(tmp_path, gdf, **OPTS)
    rng = seeded(1109)
    kills = 0
    with sim.serve(**SIM, **HOSTILE, faults=FAULTS) as server:
        for _ in range(KILLS + 5):
            child = start_child(cmd, server)
            if kills < KILLS:
                # the first kill lands while creates are being sent, the rest later
                time.sleep(rng.uniform(1.0, 3.0) if kills == 0 else rng.uniform(3.0, 25.0))
                if child.poll() is None:
                    os.kill(child.pid, signal.SIGKILL)
                    child.wait()
                    kills += 1
                    continue
            out, err = child.communicate(timeout=1200)
            if child.returncode == 0:
                assert "DONE" in out
                break
            raise AssertionError(f"run failed ({child.returncode}): {out[-2000:]} {err[-3000:]}")
        else:
            raise AssertionError("the run never finished")
        dropped = [r for r in server.requests if r.fault == "drop_create_response"]
        keys = Counter((p.get("meta") or {}).get("mapflow_geo_key") for p in server.processings)
        assert [k for k, n in keys.items() if n > 1] == [], "a processing was created twice"
        assert len(keys) == N
        assert_one_charge_each(server)
    assert kills == KILLS, f"only {kills} of {KILLS} kills landed"
    assert len(dropped) >= 10, f"only {len(dropped)} dropped create responses"
    res = open_run(run_dir)
    assert res.complete
    no_temp_files(run_dir)
    with sim.serve(**SIM) as server:  # the same world, no faults, no lag, no kills
        ref = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path / "ref", **FAST
        )
    same_features(res.features, ref.features)
    print(f"lagged listings: {N} processings, {kills} kills, {len(dropped)} dropped, 0 paid twice")
