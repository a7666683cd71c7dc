"""Benchmark a whole run against the simulator: the engine vs a plain client vs the
server-bound lower bound.

Run: ``python benchmarks/run.py [--processings 500] [--duration 2,20] [--workers 4]
[--density 1.0] [--repeat 3] [--sides runner,plain,bound] [--before DIR]`` (quick mode:
``--processings 60 --duration 2``). Prints a markdown table per processing time: the
median wall time and peak memory of each side, and the ratios.

Every side runs in its own process against its own fresh simulator, itself in a third
process (``aoi_area_limit_km2=5``, fixed ``processing_seconds``, ample credits), so that
the simulator's CPU is not counted in the client's and each side's peak memory
(``VmHWM``) is its own. The sides are interleaved (their order reversed every other
round) and each is run ``--repeat`` times; medians count.

* **runner** — ``gdf.mapflow.process("buildings", ...)`` on N separate 2 × 2 km squares
  (one processing each: two do not fit under 5 km²), from plan to the stitched result
  (``len(res.features)`` inside the timing): estimate, budget check, journal, creates,
  polling, downloads, GeoParquet storage, loading. ``progress=False``,
  ``poll_interval=1``, ``min_poll_interval=0.2``, ``max_workers=W``.
* **plain** — what a careful user writes with ``requests``: the N creates (W threads),
  the project's listing polled every second until all are done, then each result
  downloaded and parsed with ``pyogrio.read_dataframe(use_arrow=True)`` (W threads) and
  the frames concatenated. No estimate, no journal, no storage; nothing survives a crash.
* **bound** — an *oracle* client that knows the simulator's processing time and so
  never polls: with the package's client and the same W threads it sends the N bare
  creates, and fetches each result (bytes only: no parsing, no storage) as soon as that
  processing is done — T seconds after its create was answered — while the later ones
  are still processing. Its wall time is the server-bound minimum for the same results
  at concurrency W. (The runner must in addition learn when a processing is done — a
  listing — and, by the money rules, ask the cost endpoint about every processing before
  the first create: the bound does neither, so the ratio counts both as the engine's.)
* **safe** (``--sides ...,safe``) — the same oracle after one cost request per
  processing before the first create: the lower bound of a run that keeps the money rule.
* **before** (``--before DIR``) — the runner of another source tree (``git archive
  <commit> mapflow_geo | tar -x -C DIR``), for before/after figures in one interleaved run.

Targets: runner ≤ 1.05× plain in time, at no more peak memory; ≤ 1.15× the bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import box, mapping

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SIM = """
import json, sys
from mapflow_geo.sim import Server
server = Server(**json.loads(sys.argv[1]))
print(server.url, flush=True)
server.serve_forever()
"""


def squares(n: int, side_km: float = 2.0, lat0: float = 50.0) -> gpd.GeoDataFrame:
    """N separate side×side km squares on a grid, 1 km apart."""
    cols = int(np.ceil(np.sqrt(n)))
    dlat = side_km / 111.2
    geoms = []
    for i in range(n):
        r, c = divmod(i, cols)
        lat = lat0 + r * (side_km + 1.0) / 111.2
        dlon = side_km / (111.32 * np.cos(np.radians(lat)))
        lon = 10.0 + c * dlon * (side_km + 1.0) / side_km
        geoms.append(box(lon, lat, lon + dlon, lat + dlat))
    return gpd.GeoDataFrame({"name": [f"sq{i}" for i in range(n)]}, geometry=geoms, crs=4326)


def cpu_s() -> float:
    """CPU seconds of this process so far, every thread (user + system)."""
    t = os.times()
    return t.user + t.system


def peak_rss_mb() -> float:
    """Peak resident memory of this process (``VmHWM``; ``ru_maxrss`` would carry the
    parent's peak over ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - not Linux


# ----------------------------------------------------------------------------- sides
def _client(url: str):
    from mapflow_geo.client import MapflowClient
    from mapflow_geo.sim import DEFAULT_TOKEN

    return MapflowClient(DEFAULT_TOKEN, base_url=url)


def side_runner(url: str, n: int, seconds: float, workers: int) -> dict:
    import mapflow_geo  # noqa: F401 - the accessor
    import mapflow_geo.run  # noqa: F401 - loaded on first use: imported before the clock,
    # as the plain side imports pandas, pyogrio and requests (``benchmarks/import_time.py``
    # times imports on their own)

    client = _client(url)
    gdf = squares(n)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = gdf.mapflow.process(
            "buildings",
            client=client,
            run_dir=tmp,
            progress=False,
            poll_interval=1.0,
            min_poll_interval=0.2,
            max_workers=workers,
        )
        features = len(res.features)
        dt = time.perf_counter() - t0
    assert res.complete
    return {
        "seconds": dt,
        "features": features,
        "t0": t0,
        "rss_mb": peak_rss_mb(),
        "cpu_s": cpu_s(),
    }


def side_bound(url: str, n: int, seconds: float, workers: int, costs: bool = False) -> dict:
    from mapflow_geo.exceptions import APIError

    client = _client(url)
    gdf = squares(n)
    project = client.projects.default().id
    model = client.account.find_model("buildings")
    bodies = [
        {"name": f"lb{i}", "wdName": model.name, "projectId": project, "geometry": mapping(g)}
        for i, g in enumerate(gdf.geometry)
    ]
    early = 0

    def create(body: dict) -> tuple[str, float]:
        pid = client.processings.create(**body).id
        return pid, time.perf_counter() + seconds  # done T after the answer, at the latest

    def fetch(created) -> int:
        nonlocal early
        pid, ready = created.result()
        time.sleep(max(0.0, ready - time.perf_counter()))
        while True:
            try:
                return len(client.processings.result_bytes(pid))
            except APIError:  # pragma: no cover - not ready yet (clock skew): try again
                early += 1
                time.sleep(0.01)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        if costs:  # the money rule: every estimate before the first create
            sum(pool.map(lambda b: int(client.processings.cost(**b)), bodies))
        creates = [pool.submit(create, b) for b in bodies]
        fetches = [pool.submit(fetch, c) for c in creates]  # queued behind the creates
        nbytes = sum(f.result() for f in fetches)
    dt = time.perf_counter() - t0
    return {
        "seconds": dt,
        "bytes": nbytes,
        "early": early,
        "rss_mb": peak_rss_mb(),
        "cpu_s": cpu_s(),
    }


def side_safe_bound(url: str, n: int, seconds: float, workers: int) -> dict:
    """The lower bound of a run that keeps the money rule: the oracle, after one cost
    request per processing (same threads) before the first create."""
    return side_bound(url, n, seconds, workers, costs=True)


def side_plain(url: str, n: int, seconds: float, workers: int, poll: float = 1.0) -> dict:
    """What a careful user writes with ``requests``: create every processing (W threads),
    poll the project's listing every ``poll`` seconds until all are done, then download
    each result and parse it with ``pyogrio.read_dataframe(use_arrow=True)`` (W threads),
    and concatenate. No estimate, no journal, no storage."""
    import threading

    import pandas as pd
    import pyogrio
    import requests

    token = os.environ["MAPFLOW_TOKEN"]  # the simulator's, from the driver: no package import
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.headers["Authorization"] = f"Basic {token}"
        return local.s

    gdf = squares(n)
    t0 = time.perf_counter()
    project = session().get(f"{url}/projects/default", timeout=60).json()["id"]

    def create(i: int) -> str:
        body = {"name": f"plain{i}", "wdName": "buildings", "projectId": project,
                "geometry": mapping(gdf.geometry.iloc[i])}  # fmt: skip
        r = session().post(f"{url}/processings/v2", json=body, timeout=60)
        r.raise_for_status()
        return r.json()["id"]

    def download(pid: str) -> gpd.GeoDataFrame:
        r = session().get(f"{url}/processings/{pid}/result", timeout=120)
        r.raise_for_status()
        return pyogrio.read_dataframe(r.content, use_arrow=True)

    with ThreadPoolExecutor(workers) as pool:
        ids = set(pool.map(create, range(n)))
        while True:
            r = session().get(f"{url}/projects/{project}/processings/v2", timeout=60)
            done = [p["id"] for p in r.json() if p["id"] in ids
                    and p.get("status") in ("OK", "FAILED")]  # fmt: skip
            if len(done) == len(ids):
                break
            time.sleep(poll)
        frames = list(pool.map(download, sorted(ids)))
    features = pd.concat(frames, ignore_index=True)
    del frames
    dt = time.perf_counter() - t0
    return {"seconds": dt, "features": len(features), "rss_mb": peak_rss_mb(), "cpu_s": cpu_s()}


SIDES = {
    "runner": side_runner,
    "plain": side_plain,
    "bound": side_bound,
    "safe": side_safe_bound,
}


# ----------------------------------------------------------------------------- scale
def journal_scale(n: int) -> list[tuple[str, float]]:
    """Time the journal's operations and one poll cycle's engine work at ``n``
    processings, on a fake client that lists ``n`` processings without HTTP (the
    HTTP part of a sweep is ⌈live ÷ page size⌉ page requests; not timed here)."""
    from types import SimpleNamespace

    from mapflow_geo.models import Status
    from mapflow_geo.run import journal as jr
    from mapflow_geo.run.engine import Runner

    out: list[tuple[str, float]] = []

    def timed(label: str, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn()
        out.append((label, time.perf_counter() - t0, time.process_time() - c0))
        return res

    keys = [f"p{i:05d}-{i:010x}" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp, jr.Journal(tmp, "f" * 64) as j:
        j.records()  # as a run does: the (empty) journal is read once, then kept in memory
        timed(
            f"add_planned_many, {n} records (one transaction)",
            lambda: j.add_planned_many((k, 25, 24.9) for k in keys),
        )

        def intent(k: str) -> None:
            j.mark_intent(k, meta={"k": k})

        def created(k: str) -> None:
            j.mark_created(k, "id-" + k, status="IN_PROGRESS", cost=25)

        with ThreadPoolExecutor(4) as pool:
            timed(
                f"mark_intent × {n}, 4 threads (fsynced, group commit)",
                lambda: list(pool.map(intent, keys)),
            )
            timed(f"mark_created × {n}, 4 threads", lambda: list(pool.map(created, keys)))
        timed("records(), all (in memory)", j.records)
        timed("records(intent, created): the live ones", lambda: j.records(jr.INTENT, jr.CREATED))
        with jr.Journal(tmp, None, lock=False) as view:
            timed("records(created), lock-free reader (SQL, state index)",
                  lambda: view.records(jr.CREATED))  # fmt: skip
        listing = [
            SimpleNamespace(
                id="id-" + k,
                status=Status.IN_PROGRESS,
                percent_completed=50.0,
                cost=25,
                messages=[],
                meta={},
                name=k,
            )
            for k in reversed(keys)
        ]
        client = SimpleNamespace(
            processings=SimpleNamespace(list=lambda project_id: listing),
            account=SimpleNamespace(status=lambda: None),
        )
        procs = {k: SimpleNamespace(key=k, estimate=25, area_km2=24.9, body={}) for k in keys}
        runner = Runner.__new__(Runner)  # the engine's poll, without plan or HTTP
        runner.__dict__.update(
            client=client,
            journal=j,
            project_id="p",
            procs=procs,
            clock=time.monotonic,
            _progress={},
            _eta=None,
            max_restarts=2,
            _submitted={},
            _fetch_outage_since=None,
            _fetch=lambda *a: None,  # finished ones are queued, not fetched (no plan)
        )
        pending: dict = {}
        with ThreadPoolExecutor(1) as pool:
            live = j.records(jr.INTENT, jr.CREATED)

            def cycle() -> bool:
                return runner._poll(live, pool, pending)

            timed(f"poll cycle, {n} live, no change", cycle)
            for p in listing:
                p.percent_completed = 60.0
            timed(f"poll cycle, {n} live, progress only (no write)", cycle)
            for p in listing:
                p.status = Status.OK
            timed(
                f"poll cycle, {n} live, every one finished (one write, {n} fetches queued)", cycle
            )

        def finish_all() -> None:
            for k in keys:
                rec = {"aoi_id": "whole", "tile_id": k, "status": "OK", "features": 100}
                j.finish(k, [dict(rec, path=f"results/{k}.parquet")])

        timed(f"finish × {n}, one download each", finish_all)
        timed(f"downloads(), {n} rows", j.downloads)
        with jr.Journal(tmp, None, lock=False) as view:
            timed(f"records(), {n} rows read from disk (a resumed run's first read)", view.records)
    return out


# ----------------------------------------------------------------------------- driver
def _sim_requests(url: str) -> list[dict]:
    base = url.rsplit("/rest", 1)[0]
    with urllib.request.urlopen(f"{base}/_sim/requests", timeout=60) as fh:  # noqa: S310
        data = json.loads(fh.read())
    return data if isinstance(data, list) else data.get("requests", [])


_ROUTES = {
    "/rest/processing/cost/v2": "cost",
    "/rest/processings/v2": "create",
    "/rest/projects/{id}/processings/v2/page": "list",
    "/rest/projects/{id}/processings/v2": "list",
    "/rest/processings/{id}/result": "result",
}


def run_side(
    side: str, n: int, seconds: float, workers: int, density: float, before: str | None = None
) -> dict:
    opts = {
        "aoi_area_limit_km2": 5,
        "processing_seconds": seconds,
        "credits": 10**8,
        "seed": 1,
        "density": density,
    }
    sim = subprocess.Popen(
        [sys.executable, "-c", SIM, json.dumps(opts)], stdout=subprocess.PIPE, text=True
    )
    try:
        url = sim.stdout.readline().strip()
        cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--url", url,
               "--processings", str(n), "--duration", str(seconds),
               "--workers", str(workers)]  # fmt: skip
        if side == "before":
            cmd += ["--before", str(before)]
        from mapflow_geo.sim import DEFAULT_TOKEN

        env = dict(os.environ, MAPFLOW_TOKEN=DEFAULT_TOKEN)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        res = json.loads(out.strip().splitlines()[-1])
        reqs = _sim_requests(url)
    finally:
        sim.terminate()
        sim.wait()
    kinds = Counter(re.sub(r"/[0-9a-f-]{36}", "/{id}", r["path"]) for r in reqs)
    start = min((r["time"] for r in reqs), default=0.0)
    spans: dict[str, list[float]] = {}
    for r in reqs:  # first request start and last answer, by route, from the first request
        k = _ROUTES.get(re.sub(r"/[0-9a-f-]{36}", "/{id}", r["path"]))
        if k:
            t0, t1 = r["time"] - start, r["time"] - start + r["duration"]
            lo, hi = spans.get(k, (t0, t1))
            spans[k] = [min(lo, t0), max(hi, t1)]
    res["spans"] = spans
    res["requests"] = len(reqs)
    res["kinds"] = dict(kinds)
    res["server_s"] = sum(r["duration"] for r in reqs)
    return res


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processings", type=int, default=500)
    ap.add_argument("--duration", "--seconds", dest="duration", default="2,20",
                    help="sim processing_seconds, comma-separated")  # fmt: skip
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--density", type=float, default=1.0, help="sim world density")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; medians count")
    ap.add_argument("--sides", default="runner,plain,bound",
                    help="comma-separated, of: " + ", ".join(SIDES))  # fmt: skip
    ap.add_argument("--scale", type=int, help="only time journal ops and a poll cycle at N")
    ap.add_argument("--before", help="a source tree of an earlier version (e.g. from "
                    "`git archive`): its runner runs as the side 'before'")  # fmt: skip
    ap.add_argument("--side", choices=[*SIDES, "before"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scale:
        print(f"journal and poll at {args.scale} processings — {date.today()}, "
              f"Python {platform.python_version()}, {os.cpu_count()} CPUs\n")  # fmt: skip
        print("| operation | wall s | CPU s |\n| --- | ---: | ---: |")
        for label, sec, cpu in journal_scale(args.scale):
            print(f"| {label} | {sec:.3f} | {cpu:.3f} |")
        return
    if args.side == "before":  # the runner, with the package found in --before
        sys.path.insert(0, os.path.abspath(args.before))
        args.side = "runner"
    if args.side:
        res = SIDES[args.side](args.url, args.processings, float(args.duration), args.workers)
        print(json.dumps(res))
        return
    sides = [s for s in args.sides.split(",") if s]
    if args.before and "before" not in sides:
        sides.append("before")
    print(
        f"run benchmark — {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {args.processings} "
        f"processings, workers={args.workers}, density={args.density:g}, "
        f"medians of {args.repeat}, sides interleaved\n"
    )
    head = " | ".join(f"{s} s | {s} peak MB" for s in sides)
    pairs = [(a, b) for a in ("runner", "before") for b in sides
             if a in sides and b != a and b not in ("runner", "before")]  # fmt: skip
    if "runner" in sides and "before" in sides:
        pairs.append(("runner", "before"))
    ratios = [f"{a} ÷ {b}" for a, b in pairs]
    print(f"| processing s | {head} | " + " | ".join(f"**{r}**" for r in ratios) + " |")
    print("| ---: |" + " ---: |" * (2 * len(sides) + len(ratios)))
    phases = []
    for seconds in [float(s) for s in str(args.duration).split(",")]:
        runs: dict[str, list[dict]] = {s: [] for s in sides}
        for rep in range(args.repeat):
            order = sides if rep % 2 == 0 else sides[::-1]
            for side in order:
                runs[side].append(
                    run_side(
                        side, args.processings, seconds, args.workers, args.density, args.before
                    )
                )
        med = {s: {k: _median(runs[s], k) for k in ("seconds", "rss_mb")} for s in sides}
        cells = " | ".join(f"{med[s]['seconds']:.2f} | {med[s]['rss_mb']:.0f}" for s in sides)
        rcells = [
            f"**{med[a]['seconds'] / med[b]['seconds']:.2f}×** "
            f"({med[a]['rss_mb'] / med[b]['rss_mb']:.2f}× mem)"
            for a, b in pairs
        ]
        print(f"| {seconds:g} | {cells} | " + " | ".join(rcells) + " |")
        phases.append((seconds, runs))
    print("\ntargets: runner ≤ 1.05× plain (time, no more peak memory), ≤ 1.15× bound\n")
    print("Each run (wall s, peak MB, the client process CPU s), in the order run:\n")
    for seconds, runs in phases:
        for side, rs in runs.items():
            each = ", ".join(
                f"{r['seconds']:.2f} s / {r['rss_mb']:.0f} MB / {r['cpu_s']:.1f} CPU s" for r in rs
            )
            print(f"- {seconds:g} s, {side}: {each}")
    print("\nRequests by kind, from the side's first request: first start – last answer, s")
    print("(the median run of each side)\n")
    print("| processing s | side | requests | cost | create | list | result |")
    print("| ---: | --- | ---: | --- | --- | --- | --- |")
    for seconds, runs in phases:
        for side, rs in runs.items():
            r = sorted(rs, key=lambda x: x["seconds"])[len(rs) // 2]
            cells = [
                "–" if k not in r["spans"] else "{:.2f}–{:.2f}".format(*r["spans"][k])
                for k in ("cost", "create", "list", "result")
            ]
            print(f"| {seconds:g} | {side} | {r['requests']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
