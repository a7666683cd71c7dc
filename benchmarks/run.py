"""Benchmark a whole run against the simulator vs the server-bound lower bound.

Run: ``python benchmarks/run.py [--processings 500] [--seconds 20] [--workers 4]``
(quick mode: ``--processings 60 --seconds 5``). Prints a markdown table.

Both sides run in this process, one after the other, against the same kind of fresh
simulator (``aoi_area_limit_km2=5``, fixed ``processing_seconds``, ample credits):

* **runner** — ``gdf.mapflow.process("buildings", ...)`` on N separate 2 × 2 km squares
  (one processing each, they are too big to pack two together under 5 km²), from plan to
  the stitched result, ``progress=False``, ``poll_interval=1``, ``min_poll_interval=0.2``.
* **lower bound** — the minimal HTTP work a client has to do for the same result, with the
  plain client and the same number of worker threads as the runner: N bare creates
  (concurrent), then waiting until the *last* processing is done (the fixed processing
  time counted from the last create), then N result downloads (concurrent, bytes only, no
  parsing, no storage). No estimate, no journal, no polling, no parsing.

The ratio is runner ÷ lower bound; target ≤ 1.3.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import geopandas as gpd
import numpy as np
from shapely.geometry import box, mapping

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mapflow_geo  # noqa: E402,F401
from mapflow_geo import sim  # noqa: E402


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


def _server(seconds: float):
    return sim.serve(aoi_area_limit_km2=5, processing_seconds=seconds, credits=10**8, seed=1)


def run_runner(gdf, seconds: float, workers: int) -> tuple[float, int, int]:
    with _server(seconds) as server, tempfile.TemporaryDirectory() as tmp:
        client = server.client()
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
        dt = time.perf_counter() - t0
        n_req = len(server.requests)
        assert res.complete
        return dt, len(res.features), n_req


def run_lower_bound(gdf, seconds: float, workers: int) -> tuple[float, int]:
    with _server(seconds) as server:
        client = server.client()
        project = client.default_project().id
        model = client.find_model("buildings")
        bodies = [
            {"name": f"lb{i}", "wdName": model.name, "projectId": project, "geometry": mapping(g)}
            for i, g in enumerate(gdf.geometry)
        ]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            ids = list(pool.map(lambda b: client.create_processing(**b).id, bodies))
            done_at = time.perf_counter() + seconds
            time.sleep(max(0.0, done_at - time.perf_counter()))
            sizes = list(pool.map(lambda pid: len(client.processing_result_bytes(pid)), ids))
        dt = time.perf_counter() - t0
        return dt, sum(sizes)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processings", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20.0, help="sim processing_seconds")
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args(argv)
    gdf = squares(args.processings)
    lb, nbytes = run_lower_bound(gdf, args.seconds, args.workers)
    rt, nfeat, nreq = run_runner(gdf, args.seconds, args.workers)
    print(
        f"run benchmark — {date.today()}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {args.processings} processings, "
        f"processing_seconds={args.seconds:g}, workers={args.workers}\n"
    )
    print("| | wall s | notes |")
    print("| --- | ---: | --- |")
    print(
        f"| lower bound | {lb:.2f} | {args.processings} creates + wait + downloads "
        f"({nbytes / 1e6:.1f} MB) |"
    )
    print(f"| runner | {rt:.2f} | {nfeat} features, {nreq} HTTP requests |")
    print(f"| **ratio** | **{rt / lb:.2f}×** | target ≤ 1.3× |")


if __name__ == "__main__":
    main()
