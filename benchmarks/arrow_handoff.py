"""Benchmark handing a result to another library: Arrow stream vs GeoDataFrame.

Run: ``python benchmarks/arrow_handoff.py [--objects 1000000] [--tiles 20] [--repeat 3]``
(quick: ``--objects 20000 --tiles 4 --repeat 1``). Prints a markdown table.

The consumer is DuckDB with its spatial extension: ``count(*)`` and ``sum(ST_Area(geometry))``
over every object, which reads every geometry. Four hand-offs, each from a cold start
in its own subprocess (peak resident memory ``VmHWM`` is its own), interleaved, medians
of ``--repeat`` runs:

* **run → GeoDataFrame**: a result over stored pieces (as ``open_run`` gives);
  ``res.features`` stitches them in memory, then ``features.to_arrow()`` goes to DuckDB;
* **run → Arrow**: the same result given to DuckDB as it is (``__arrow_c_stream__``): the
  stitched dataset is written once, streaming, into a temporary folder and read batch by
  batch;
* **dataset → GeoDataFrame**: a stitched dataset (``to_parquet``) read with
  ``geopandas.read_parquet``, then ``to_arrow()`` to DuckDB;
* **dataset → Arrow**: the dataset handle (``DatasetInfo``) given to DuckDB as it is.

Data: the synthetic tiled result of ``benchmarks/stitch.py`` (``benchmarks/scale.py``'s
``prepare``: one GeoParquet file per tile, objects cut at every seam).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stitch import peak_rss_mb  # noqa: E402

METHODS = ("run-gdf", "run-arrow", "dataset-gdf", "dataset-arrow")
QUERY = "select count(*), sum(ST_Area(geometry)) from src"


def _result(folder: Path):
    from mapflow_geo.results import MapflowResult

    files = pd.read_parquet(folder / "files.parquet")
    tiles = gpd.read_parquet(folder / "tiles.parquet")
    empty = gpd.GeoDataFrame(geometry=[], crs=4326)
    return MapflowResult(tiles=tiles, aois=empty, processings=pd.DataFrame(), files=files)


def worker(method: str, folder: Path) -> dict:
    import duckdb

    from mapflow_geo.results import DatasetInfo
    from mapflow_geo.results.duck import load_spatial

    con = duckdb.connect()
    load_spatial(con)
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    if method == "run-gdf":
        src = _result(folder).features.to_arrow()  # noqa: F841 - scanned by name
    elif method == "run-arrow":
        src = _result(folder)  # noqa: F841
    elif method == "dataset-gdf":
        src = gpd.read_parquet(folder / "dataset").to_arrow()  # noqa: F841
    else:
        src = DatasetInfo(path=folder / "dataset", objects=0, pieces=0)  # noqa: F841
    n, area = con.sql(QUERY).fetchone()
    dt = time.perf_counter() - t0
    rss1 = peak_rss_mb()
    return {"method": method, "seconds": dt, "objects": n, "area": area,
            "peak_rss_mb": rss1, "added_rss_mb": rss1 - rss0}  # fmt: skip


def prepare(folder: Path, n_objects: int, n_tiles: int, n_rows: int) -> dict:
    from scale import prepare as prepare_pieces

    info = prepare_pieces(folder, n_objects, n_tiles, n_rows)
    _result(folder).to_parquet(folder / "dataset")
    return info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--tiles", type=int, default=20)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.folder))))
        return
    with tempfile.TemporaryDirectory(prefix="mapflow-handoff-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        info = prepare(folder, args.objects, args.tiles, args.rows)
        prep_s = time.perf_counter() - t0
        runs: dict[str, list[dict]] = {m: [] for m in METHODS}
        for _ in range(args.repeat):  # interleaved: load on the box hits every method alike
            for method in METHODS:
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", method,
                       "--folder", str(folder)]  # fmt: skip
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs[method].append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"Arrow hand-off benchmark — {date.today()}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.0f}), {info['pieces']} "
        f"pieces of {info['expected']} objects in {info['files']} files (data written in "
        f"{prep_s:.0f} s); medians of {args.repeat} interleaved runs\n"
    )
    print("| hand-off | wall s | peak RSS MB | RSS added MB | objects |")
    print("| --- | ---: | ---: | ---: | ---: |")
    med = {}
    for method in METHODS:
        r = runs[method]
        med[method] = {
            k: statistics.median(x[k] for x in r)
            for k in ("seconds", "peak_rss_mb", "added_rss_mb")
        }
        m = med[method]
        print(f"| {method} | {m['seconds']:.1f} | {m['peak_rss_mb']:.0f} | "
              f"{m['added_rss_mb']:.0f} | {r[0]['objects']} |")  # fmt: skip
    counts = {x["objects"] for r in runs.values() for x in r}
    areas = [x["area"] for r in runs.values() for x in r]
    spread = (max(areas) - min(areas)) / max(areas)
    for src in ("run", "dataset"):
        g, a = med[f"{src}-gdf"], med[f"{src}-arrow"]
        print(f"\n{src}: Arrow / GeoDataFrame time **{a['seconds'] / g['seconds']:.2f}×**, "
              f"peak memory **{a['peak_rss_mb'] / g['peak_rss_mb']:.2f}×**")  # fmt: skip
    print(f"\nobjects equal: {counts == {info['expected']}}; area rel. spread {spread:.1e}")


if __name__ == "__main__":
    main()
