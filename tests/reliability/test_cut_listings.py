"""Money behind a listing cut short: absence is concluded only from a sweep that read
every page up to the service's ``total``.

One create commits and charges, then loses its answer (``drop_create_response``); from
then on every page of the project's listing comes back empty while ``total`` still counts
the processing (``cut_listing``), for several grace windows. The account bills by area,
so no credit balance can speak for the missing create: the paging is the only signal.
The run must wait, adopt the processing once the listing is whole again, and pay once —
counted from the simulator's own record of what it charged."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from support.areas import grid_gdf
from support.campaign import FAST
from support.clients import without_pages
from support.record import creates

from mapflow_geo import sim

N = 2
GRACE = 0.5
SIM = dict(aoi_area_limit_km2=5, processing_seconds=0, seed=11, billing_type="AREA")

pytestmark = pytest.mark.reliability


def _client(server, paged: bool):
    return server.client() if paged else without_pages(server.client())


@pytest.mark.parametrize("paged", [True, False], ids=["pages", "list"])
def test_listing_cut_short_is_no_proof_of_absence(tmp_path, paged):
    gdf = grid_gdf(N)
    with sim.serve(**SIM) as server:
        page = f"/rest/projects/{server.client().projects.default_id()}/processings/v2/page"
        cut = {"cut_listing": 1.0, "paths": [page]}
        server.set_faults(drop_create_response=1.0, **cut)

        def after_create(rec):
            # the first create is dropped; from the second on, answers come through
            if len(server.charges) > 1:
                server.set_faults(cut)

        server.after_create = after_create
        out: dict = {}

        def run():
            try:
                out["result"] = gdf.mapflow.process(
                    "buildings",
                    client=_client(server, paged),
                    run_dir=tmp_path / "run",
                    adopt_grace_s=GRACE,
                    max_workers=1,  # creates one after another: the first is the dropped one
                    **FAST,
                )
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                out["error"] = exc

        worker = threading.Thread(target=run, daemon=True)
        worker.start()

        def cut_pages():
            return [r for r in server.requests if r.fault == "cut_listing"]

        # every sweep is cut short for well beyond the grace window
        deadline = time.monotonic() + 60
        while worker.is_alive() and (
            not cut_pages() or time.time() - cut_pages()[0].time < 6 * GRACE
        ):
            assert time.monotonic() < deadline, "the listing was never read"
            time.sleep(0.05)
        dropped = [r for r in creates(server) if r.fault == "drop_create_response"]
        assert len(dropped) == 1
        assert len(server.charges) == N, "a create was sent again on a listing cut short"
        assert len(cut_pages()) >= 5
        server.clear_faults()  # the listing is whole again
        worker.join(timeout=60)
        assert not worker.is_alive(), "the run did not finish once the listing was whole"
        assert "error" not in out, out.get("error")
        assert out["result"].complete
        assert len(creates(server)) == N
        # ground truth: the simulator's processings and charges
        keys = Counter((p.get("meta") or {}).get("mapflow_geo_key") for p in server.processings)
        assert len(keys) == N and set(keys.values()) == {1}, keys
        per = Counter(c["processingId"] for c in server.charges)
        assert per == {p["id"]: 1 for p in server.processings}
