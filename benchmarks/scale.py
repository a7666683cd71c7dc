"""Benchmark stitching on dask vs in memory: ``scale.stitch_dask`` vs ``results.stitch``.

Run: ``python benchmarks/scale.py [--objects 5000000] [--tiles 40] [--rows 8]``
(quick: ``--objects 200000 --tiles 10``). Prints a markdown table.

Data: the synthetic tiled result of ``benchmarks/stitch.py`` (jittered non-touching
buildings on a grid of 0.01° tiles in ``--rows`` input rows, cut at every seam), written
the way the runner stores results: one GeoParquet file per tile. Both paths start from
those files and end with the stitched objects written to GeoParquet:

* **in-memory** — read every file into one frame (``results.read_result_files``), ``stitch``,
  ``to_parquet``;
* **dask** — ``scale.from_files`` (partitions by Hilbert neighbourhood of ~250 k pieces),
  ``stitch_dask``, ``to_parquet`` of the partitions, on dask's threaded scheduler with
  2 workers (the box has 2 cores).

Each path runs in its own subprocess, so the peak resident memory is its own (``VmHWM``
of the worker). The stitched outputs are compared: same number of objects, same area.
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
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stitch import peak_rss_mb  # noqa: E402


def prepare(folder: Path, n_objects: int, n_tiles: int, n_rows: int) -> dict:
    from stitch import make_data

    pieces, tiles, n_expected = make_data(n_objects, n_tiles, n_rows)
    (folder / "results").mkdir(parents=True, exist_ok=True)
    rows = []
    for tid, part in pieces.groupby("tile_id", sort=False):
        path = folder / "results" / f"{tid}.parquet"
        part.to_parquet(path)
        rows.append({"path": str(path), "tile_id": tid, "features": len(part)})
    pd.DataFrame(rows).to_parquet(folder / "files.parquet")
    tiles.to_parquet(folder / "tiles.parquet")
    return {"pieces": len(pieces), "expected": n_expected, "files": len(rows)}


def worker(method: str, folder: Path, partition_features: int) -> dict:
    files = pd.read_parquet(folder / "files.parquet")
    tiles = gpd.read_parquet(folder / "tiles.parquet")
    out_path = folder / f"out-{method}"
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    if method == "memory":
        from mapflow_geo.results import read_result_files, stitch

        out = stitch(read_result_files(files["path"]), tiles)
        out.to_parquet(str(out_path) + ".parquet")
    else:
        import dask

        from mapflow_geo.results.dask import from_files, stitch_dask

        ddf = from_files(files, tiles, partition_features=partition_features)
        with dask.config.set(scheduler="threads", num_workers=2):
            stitch_dask(ddf, tiles).to_parquet(out_path)
    dt = time.perf_counter() - t0
    rss1 = peak_rss_mb()
    got = gpd.read_parquet(str(out_path) + ".parquet" if method == "memory" else out_path)
    return {
        "method": method,
        "seconds": dt,
        "objects": len(got),
        "area": float(shapely.area(got.geometry.values).sum()),
        "peak_rss_mb": rss1,
        "added_rss_mb": rss1 - rss0,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=5_000_000)
    ap.add_argument("--tiles", type=int, default=40)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--partition-features", type=int, default=250_000)
    ap.add_argument("--worker", choices=["memory", "dask"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.folder), args.partition_features)))
        return
    with tempfile.TemporaryDirectory(prefix="mapflow-scale-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        info = prepare(folder, args.objects, args.tiles, args.rows)
        prep_s = time.perf_counter() - t0
        res = {}
        for method in ("memory", "dask"):
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", method,
                   "--folder", str(folder), "--partition-features",
                   str(args.partition_features)]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res[method] = json.loads(out.strip().splitlines()[-1])
    m, d = res["memory"], res["dask"]
    print(
        f"scale benchmark — {date.today()}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {info['pieces']} pieces of {info['expected']} objects in "
        f"{info['files']} files, {args.tiles}×{args.tiles} tiles in {args.rows} rows "
        f"(data written in {prep_s:.0f} s)\n"
    )
    print("| path | wall s | objects out | peak RSS MB | RSS added MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in (m, d):
        print(f"| {r['method']} | {r['seconds']:.1f} | {r['objects']} | "
              f"{r['peak_rss_mb']:.0f} | {r['added_rss_mb']:.0f} |")  # fmt: skip
    print(f"\ntime dask / in-memory: **{d['seconds'] / m['seconds']:.2f}×**; peak memory "
          f"dask / in-memory: **{d['peak_rss_mb'] / m['peak_rss_mb']:.2f}×**; objects equal: "
          f"{m['objects'] == d['objects'] == info['expected']}; area rel. diff "
          f"{abs(m['area'] - d['area']) / m['area']:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
