"""Benchmark fetching the results of processings with several AOIs: per AOI side by side
(the engine's way) against one download of the whole result split per tile (its way when
the service refuses ``?aoiId=``).

Run: ``python benchmarks/aoi_results.py [--processings 4] [--aois 10] [--km 1.5]
[--latency 0,0.05] [--repeat 3]``. Prints a markdown table: the run's wall time and its
download phase (from the first result request to the last answer, in the simulator's
log), medians of ``--repeat`` interleaved runs.

Each run is ``gdf.mapflow.process("buildings", max_workers=4)`` on ``processings × aois``
separate squares of ``km`` × ``km`` (``aoi_area_limit_km2=25``, ten AOIs per processing:
one processing per ten squares), against its own simulator in its own process
(``processing_seconds=0``; ``latency_s`` added to every answer, as a network would):

* **per AOI** — ``GET /processings/{id}/result?aoiId=`` for each AOI, up to
  ``max_workers`` at once over the run;
* **whole** — the simulator with ``result_per_aoi=False``: one ``GET
  /processings/{id}/result`` per processing, its objects matched to their tiles.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from run import SIM, _sim_requests, squares  # noqa: E402


def one_run(n: int, km: float, latency: float, per_aoi: bool, seed: int = 1) -> dict:
    import mapflow_geo  # noqa: F401 - the accessor
    from mapflow_geo.client import MapflowClient
    from mapflow_geo.sim import DEFAULT_TOKEN

    opts = {
        "aoi_area_limit_km2": 25,
        "max_aois_per_processing": 10,
        "processing_seconds": 0,
        "credits": 10**8,
        "seed": seed,
        "result_per_aoi": per_aoi,
        "faults": {"latency_s": latency},
    }
    sim = subprocess.Popen(
        [sys.executable, "-c", SIM, json.dumps(opts)], stdout=subprocess.PIPE, text=True
    )
    try:
        url = sim.stdout.readline().strip()
        client = MapflowClient(DEFAULT_TOKEN, base_url=url)
        gdf = squares(n, side_km=km)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = gdf.mapflow.process(
                "buildings",
                client=client,
                run_dir=tmp,
                progress=False,
                poll_interval=0.5,
                min_poll_interval=0.1,
                max_workers=4,
            )
            objects = len(res.features)
            dt = time.perf_counter() - t0
        reqs = _sim_requests(url)
    finally:
        sim.terminate()
        sim.wait()
    results = [r for r in reqs if r["path"].endswith("/result") and r["status"] == 200]
    start = min(r["time"] for r in results)
    end = max(r["time"] + r["duration"] for r in results)
    return {
        "seconds": dt,
        "download_s": end - start,
        "requests": len(results),
        "server_s": sum(r["duration"] for r in results),
        "objects": objects,
        "processings": int(res.tiles["processing_key"].nunique()),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processings", type=int, default=4)
    ap.add_argument("--aois", type=int, default=10, help="AOIs per processing (≤ 10)")
    ap.add_argument("--km", type=float, default=1.5, help="side of each square AOI, km")
    ap.add_argument("--latency", default="0,0.05", help="seconds added to every answer")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    n = args.processings * args.aois
    print(
        f"per-AOI results benchmark — {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {args.processings} "
        f"processings × {args.aois} AOIs of {args.km:g} km, max_workers=4, medians of "
        f"{args.repeat}, interleaved\n"
    )
    print("| latency s | side | result requests | objects | server s (sum) "
          "| download phase s | run s |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for latency in [float(x) for x in args.latency.split(",")]:
        runs: dict[str, list[dict]] = {"per AOI": [], "whole": []}
        for rep in range(args.repeat):
            order = ("per AOI", "whole") if rep % 2 == 0 else ("whole", "per AOI")
            for side in order:
                runs[side].append(one_run(n, args.km, latency, side == "per AOI"))
        med = {}
        for side, rs in runs.items():
            med[side] = {k: float(np.median([r[k] for r in rs])) for k in rs[0]}
            m = med[side]
            print(
                f"| {latency:g} | {side} | {m['requests']:.0f} | {m['objects']:.0f} | "
                f"{m['server_s']:.2f} | {m['download_s']:.2f} | {m['seconds']:.2f} |"
            )
        ratio = med["whole"]["download_s"] / med["per AOI"]["download_s"]
        print(f"| {latency:g} | **whole ÷ per AOI** | | | | **{ratio:.2f}×** | "
              f"{med['whole']['seconds'] / med['per AOI']['seconds']:.2f}× |")  # fmt: skip


if __name__ == "__main__":
    main()
