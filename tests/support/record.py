"""What the simulator's own record says was asked and charged."""

from __future__ import annotations

from collections import Counter

CREATE_PATH = "/rest/processings/v2"


def creates(server) -> list:
    """Every create request the simulator received (answered or not)."""
    return [r for r in server.requests if r.method == "POST" and r.path == CREATE_PATH]


def keys(server) -> Counter:
    """Committed processings per ``meta`` key."""
    return Counter((p.get("meta") or {}).get("mapflow_geo_key") for p in server.processings)


def assert_one_charge_each(server) -> None:
    """Every committed processing charged exactly once; no processing key created twice;
    credits spent equal the sum of the processings' costs."""
    procs = server.processings
    charges = server.charges
    per = Counter(c["processingId"] for c in charges)
    assert all(v == 1 for v in per.values()), per
    assert set(per) == {p["id"] for p in procs}
    assert all(n == 1 for n in keys(server).values()), "a processing was created twice"
    assert sum(c["cost"] for c in charges) == sum(p["cost"] for p in procs)
    start = server.options.credits
    assert start - server.state["account"]["remainingCredits"] == sum(p["cost"] for p in procs)
