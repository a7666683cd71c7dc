"""Benchmark (d): results never need to fit in memory — peak RSS per returned object.

Run: ``python benchmarks/memory.py [--objects 1000000 5000000] [--belgium]``
(quick: ``--objects 100000``). Prints markdown tables.

For each size, a simulator runs **in its own process** (``density`` raised so that a
square near Brussels holds the objects: no continent-sized area), and three client
processes work on one run dir, one after the other, each measuring its own peak resident
memory (``VmHWM``):

* **run + stream** — ``gdf.mapflow.process("buildings", area_limit_km2=25)`` (plan, create,
  poll, download, store), then ``res.to_parquet(folder)`` (the stitched GeoParquet
  dataset, streaming) and ``res.stats``, never touching ``res.features``. Peak over the
  whole process, and of the two phases (``/proc/self/clear_refs`` resets the peak between
  them).
* **stream** — ``open_run(run_dir)``, ``res.to_parquet(folder)``, ``res.stats``: the
  post-run work alone.
* **in memory (baseline)** — ``open_run(run_dir)`` and ``res.features`` (every piece read
  and stitched in one frame), then ``res.stats``.

The object counts of the three must agree (dataset rows, stats, ``len(features)``).
``--belgium`` runs the acceptance: Belgium (Natural Earth low-res, from pyogrio's test
fixtures) at 25 km² on the default simulator, ``res.stats`` and ``res.to_parquet``
without touching ``res.features``, and the baseline on the same run dir.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve()
LON0, LAT0 = 4.30, 50.80


# -- measuring -------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory of this process (``VmHWM``; not inherited across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:  # pragma: no cover
        return False


# -- the simulator in its own process --------------------------------------------------
def serve(density: float, port_file: str) -> None:
    from mapflow_geo.sim import Server

    server = Server(
        density=density,
        credits=10**12,
        aoi_area_limit_km2=25.0,
        processing_seconds=0.0,
        port=0,
    )
    server.start()
    Path(port_file).write_text(json.dumps({"url": server.url, "token": server.token}))
    while True:  # until the parent kills us
        time.sleep(3600)


def start_sim(density: float, folder: Path) -> tuple[subprocess.Popen, dict]:
    port_file = folder / "sim.json"
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "--serve", "--density", str(density), "--port-file",
         str(port_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    for _ in range(600):
        if port_file.exists() and port_file.stat().st_size:
            return proc, json.loads(port_file.read_text())
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode()[-2000:])
        time.sleep(0.1)
    raise RuntimeError("the simulator did not start")


# -- the areas -------------------------------------------------------------------------
def per_km2(density: float) -> float:
    """Buildings per km² of the simulated world near Brussels at ``density``, counted in
    the simulator's ground truth over a 0.2° × 0.2° sample (the world's density is not
    linear in the option: attached rows saturate)."""
    import shapely

    from mapflow_geo._geodesy import geodesic_area_km2
    from mapflow_geo.sim import Server

    box = shapely.box(LON0, LAT0, LON0 + 0.2, LAT0 + 0.2)
    geoms, _ = Server(density=density, port=0).truth(box.bounds)
    inside = shapely.intersects(shapely.points(shapely.get_coordinates(
        shapely.centroid(geoms))), box)  # fmt: skip
    return float(inside.sum()) / float(geodesic_area_km2(box).sum())


def square(objects: int, density: float):
    import geopandas as gpd
    import numpy as np
    import shapely

    side = float(np.sqrt(objects / per_km2(density)))
    dlat = side / 111.2
    dlon = side / (111.32 * np.cos(np.radians(LAT0 + dlat / 2)))
    geom = shapely.box(LON0, LAT0, LON0 + dlon, LAT0 + dlat)
    return gpd.GeoDataFrame({"name": [f"{side:.0f} km square"]}, geometry=[geom], crs=4326)


def belgium():
    import geopandas as gpd
    import pyogrio

    path = (
        Path(pyogrio.__file__).parent
        / "tests" / "fixtures" / "naturalearth_lowres" / "naturalearth_lowres.shp"
    )  # fmt: skip
    world = gpd.read_file(path)
    return world[world["name"] == "Belgium"][["name", "geometry"]].reset_index(drop=True)


# -- the client processes --------------------------------------------------------------
def worker(kind: str, args: argparse.Namespace) -> dict:
    import geopandas as gpd

    import mapflow_geo
    from mapflow_geo import MapflowClient, open_run

    out: dict = {"kind": kind, "import_rss_mb": rss_mb()}
    folder = Path(args.folder)
    dataset = folder / f"dataset-{kind}"
    t0 = time.perf_counter()
    if kind == "run":
        sim = json.loads((folder / "sim.json").read_text())
        gdf = gpd.read_parquet(folder / "aoi.parquet")
        client = MapflowClient(token=sim["token"], base_url=sim["url"])
        res = gdf.mapflow.process(
            "buildings",
            client=client,
            run_dir=folder / "run",
            area_limit_km2=25,
            progress=False,
            poll_interval=0.5,
            min_poll_interval=0.05,
            max_workers=4,
        )
        out["run_s"] = time.perf_counter() - t0
        out["run_peak_mb"] = peak_rss_mb()
        out["processings"] = len(res.processings)
        out["pieces"] = res.n_pieces
        out["reset"] = reset_peak()
        t0 = time.perf_counter()
    else:
        res = open_run(folder / "run")
    if kind in ("run", "stream"):
        info = res.to_parquet(dataset)
        stats = res.stats
        out["objects"] = info.objects
        out["parts"] = len(info.parts)
        assert res._features is None, "features were loaded"
    else:
        with mapflow_geo.set_options(max_features_in_memory=None):
            out["objects"] = len(res.features)
        stats = res.stats
    out["work_s"] = time.perf_counter() - t0
    out["stats_objects"] = int(stats["objects"].sum())
    out["peak_mb"] = peak_rss_mb()
    if kind in ("run", "stream"):
        import pyarrow.dataset as ds

        out["dataset_rows"] = ds.dataset(dataset, format="parquet").count_rows()
        shutil.rmtree(dataset)
    return out


def run_worker(kind: str, folder: Path) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", kind, "--folder", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    gdf, density: float, label: str, keep: str | None, baseline_max: float = float("inf")
) -> dict:
    base = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="mapflow-memory-"))
    base.mkdir(parents=True, exist_ok=True)
    folder = base / label.replace(" ", "-")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    gdf.to_parquet(folder / "aoi.parquet")
    sim, _ = start_sim(density, folder)
    try:
        run = run_worker("run", folder)
    finally:
        sim.kill()
        sim.wait()
    stream = run_worker("stream", folder)
    if run["objects"] <= baseline_max:
        memory = run_worker("memory", folder)
    else:  # the in-memory path needs ~1.2 kB per object: more than this machine has
        memory = None
        print(f"{label}: in-memory baseline skipped ({run['objects']:,} objects)", file=sys.stderr)
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return {"label": label, "density": density, "run": run, "stream": stream, "memory": memory}


# -- report ----------------------------------------------------------------------------
def report(results: list[dict]) -> None:
    print(
        f"memory benchmark — {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}\n"
    )
    print("| run | objects | pieces | processings | run s | run + stream peak MB | B/object "
          "| run phase peak MB | stream phase peak MB | stream s |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        run, n = r["run"], r["run"]["objects"]
        total = max(run["run_peak_mb"], run["peak_mb"])
        print(f"| {r['label']} | {n:,} | {run['pieces']:,} | {run['processings']} | "
              f"{run['run_s']:.0f} | {total:.0f} | {total * 2**20 / n:.0f} | "
              f"{run['run_peak_mb']:.0f} | {run['peak_mb']:.0f} | "
              f"{run['work_s']:.1f} |")  # fmt: skip
    print()
    print("| run | objects | stream (open_run + to_parquet + stats) peak MB | B/object | s "
          "| in memory (open_run + features + stats) peak MB | B/object | s | memory ratio "
          "| counts equal |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        s, m = r["stream"], r["memory"]
        n = s["objects"]
        if m is None:
            print(f"| {r['label']} | {n:,} | {s['peak_mb']:.0f} | "
                  f"{s['peak_mb'] * 2**20 / n:.0f} | {s['work_s']:.1f} | not run (would need "
                  f"~{1.2e3 * n / 2**30:.0f} GB) | | | | "
                  f"{s['objects'] == s['dataset_rows'] == s['stats_objects']} |")  # fmt: skip
            continue
        same = (
            s["objects"] == s["dataset_rows"] == s["stats_objects"] == m["objects"]
            == m["stats_objects"] == r["run"]["objects"] == r["run"]["dataset_rows"]
        )  # fmt: skip
        print(f"| {r['label']} | {n:,} | {s['peak_mb']:.0f} | {s['peak_mb'] * 2**20 / n:.0f} | "
              f"{s['work_s']:.1f} | {m['peak_mb']:.0f} | {m['peak_mb'] * 2**20 / n:.0f} | "
              f"{m['work_s']:.1f} | **{m['peak_mb'] / s['peak_mb']:.1f}×** | {same} |")  # fmt: skip
    print(f"\n(import RSS of a client process: {results[0]['stream']['import_rss_mb']:.0f} MB)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, nargs="*", default=[1_000_000, 5_000_000])
    ap.add_argument("--density", type=float, default=10.0)
    ap.add_argument("--belgium", action="store_true", help="also the Belgium acceptance run")
    ap.add_argument(
        "--baseline-max-objects",
        type=float,
        default=12e6,
        help="skip the in-memory baseline above this many objects (it needs ~1.2 kB each)",
    )
    ap.add_argument("--keep", help="keep the run dirs under this folder")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port-file", help=argparse.SUPPRESS)
    ap.add_argument("--worker", choices=["run", "stream", "memory"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.density, args.port_file)
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    results = []
    for n in args.objects:
        label = f"{n / 1e6:g} M target"
        results.append(
            measure(
                square(n, args.density), args.density, label, args.keep,
                args.baseline_max_objects,
            )
        )  # fmt: skip
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    if args.belgium:
        results.append(
            measure(belgium(), 1.0, "Belgium 25 km²", args.keep, args.baseline_max_objects)
        )
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    report(results)


if __name__ == "__main__":
    main()
