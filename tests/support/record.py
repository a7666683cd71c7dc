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


def max_overlap(records) -> int:
    """Most of ``records`` (requests the simulator logged) in flight at once."""
    edges = sorted([(r.time, 1) for r in records] + [(r.time + r.duration, -1) for r in records])
    now = best = 0
    for _, d in edges:
        now += d
        best = max(best, now)
    return best


def result_downloads(server) -> list:
    """Every result download the simulator received (``GET …/result``)."""
    return [r for r in server.requests if r.method == "GET" and r.path.endswith("/result")]


def aoi_asked(rec) -> str | None:
    """The ``aoiId`` a result download asked for (None: the whole result)."""
    q = dict(p.split("=", 1) for p in rec.query.split("&") if "=" in p)
    return q.get("aoiId")
