"""Campaign 2 — polling under faults, on a fake clock shared by the client, the runner and
the simulator (every ``sleep`` advances all three at once; no real waiting):
429 ``Retry-After`` honoured and clamped; 5xx backoff bounded by a deadline; a 60 s
outage keeps the number of requests within a budget and the run completes."""

from __future__ import annotations

import email.utils
import time

import pytest
from support.areas import grid_gdf
from support.campaign import FULL
from support.clock import FakeTime
from support.record import assert_one_charge_each

import mapflow_geo  # noqa: F401
from mapflow_geo import RetryPolicy, sim
from mapflow_geo import exceptions as exc

N = 8 if FULL else 4
SIM = dict(aoi_area_limit_km2=5, processing_seconds=90, seed=9)


def _run(server, fake, tmp_path, **kw):
    client = server.client(sleep=fake.sleep, clock=fake.clock)
    return grid_gdf(N).mapflow.process(
        "buildings",
        client=client,
        run_dir=tmp_path / "run",
        progress=False,
        poll_interval=30,
        min_poll_interval=5,
        sleep=fake.sleep,
        clock=fake.clock,
        **kw,
    )


@pytest.mark.parametrize("retry_after", ["2", "3600", "-5", "soon", "HTTP-DATE"])
def test_polling_honours_and_clamps_retry_after(tmp_path, retry_after):
    if retry_after == "HTTP-DATE":
        retry_after = email.utils.formatdate(time.time() + 20, usegmt=True)
    faults = {"status_429": 0.3, "methods": ["GET"], "retry_after": retry_after}
    with sim.serve(**SIM, faults=faults) as server:
        fake = FakeTime(0.0, server)
        res = _run(server, fake, tmp_path)
        n429 = sum(r.status == 429 for r in server.requests)
        assert res.complete
        assert_one_charge_each(server)
    assert n429 > 0
    assert max(fake.sleeps) <= 60.0  # the clamp (max_retry_after) is never exceeded
    if retry_after == "2":
        assert fake.sleeps.count(2.0) >= 1
    if retry_after == "3600":
        assert fake.sleeps.count(60.0) >= 1
    if retry_after.endswith("GMT"):
        assert any(15 <= s <= 21 for s in fake.sleeps)


def test_5xx_backoff_stops_at_the_deadline():
    with sim.serve(**SIM, faults={"status_503": 1.0, "methods": ["GET"]}) as server:
        fake = FakeTime(0.0)
        client = server.client(
            sleep=fake.sleep,
            clock=fake.clock,
            retry=RetryPolicy(max_retries=1000, deadline=120, backoff_max=20),
        )
        with pytest.raises(exc.ServerError):
            client.account.status()
        n = server.count("GET")
    assert fake.now <= 120  # no retry starts past the deadline
    assert max(fake.sleeps) <= 20  # capped backoff
    assert n == len(fake.sleeps) + 1
    assert n < 120  # jittered exponential: far fewer than one a second


@pytest.mark.parametrize("outage_s", [60.0] + ([15.0, 180.0] if FULL else []))
def test_outage_keeps_requests_within_budget_and_run_completes(tmp_path, outage_s):
    start = 10.0
    state = {"on": False}

    def on_tick(now):
        want = start <= now < start + outage_s
        if want != state["on"]:
            state["on"] = want
            server.set_faults({"status_503": 1.0} if want else {})

    with sim.serve(**SIM) as server:
        fake = FakeTime(0.0, server, on_tick)
        res = _run(server, fake, tmp_path)
        during = [r for r in server.requests if r.fault]
        assert res.complete
        assert_one_charge_each(server)
    assert during, "the outage never hit a request"
    # budget: per failed poll at most (max_retries + 1) = 6 requests, and at most one poll
    # per poll_interval (30 s) plus the one in flight when the outage began
    budget = 6 * (int(outage_s // 30) + 2)
    assert len(during) <= budget, (len(during), budget)


def test_outage_longer_than_max_outage_gives_up_resumably(tmp_path):
    with sim.serve(**SIM) as server:
        # the outage starts with the first wait after the creates and never ends
        fake = FakeTime(
            0.0, server, lambda now: server.set_faults(status_503=1.0, methods=["GET", "POST"])
        )
        client = server.client(sleep=fake.sleep, clock=fake.clock)
        gdf = grid_gdf(N)
        with pytest.raises(exc.ServerError):
            gdf.mapflow.process(
                "buildings",
                client=client,
                run_dir=tmp_path / "run",
                progress=False,
                poll_interval=30,
                sleep=fake.sleep,
                clock=fake.clock,
                max_outage_s=300,
            )
        failed = [r for r in server.requests if r.fault]
        assert 300 <= fake.now <= 300 + 30 + 60 + 16  # gave up soon after max_outage_s
        assert len(failed) <= 6 * (300 // 30 + 2)
        server.clear_faults()
        res = gdf.mapflow.process(
            "buildings",
            client=server.client(),
            run_dir=tmp_path / "run",
            progress=False,
            poll_interval=0.2,
            min_poll_interval=0.05,
        )
        server.advance(1000)
        assert res.complete
        assert_one_charge_each(server)
