"""Benchmark bbox reads of a stitched dataset: bytes and time of reading a city-sized
window vs the whole, with geopandas and with DuckDB.

Run: ``python benchmarks/bbox_read.py [--n 10000000] [--window-share 0.01] [--repeat 3]
[--cache build/bbox_read]`` (quick mode: ``--n 1000000``). Prints a markdown table.

The dataset is written once by the package's own writer
(:func:`mapflow_geo.results.dataset.write_frame_dataset`: Hilbert-sorted parts of
``partition_features`` objects, row groups of ``ROW_GROUP_ROWS``, zstd, the ``bbox``
covering column) and cached under ``--cache`` (keyed by ``--n`` and the seed). The
objects are synthetic buildings made with numpy in one pass: rotated rectangles of
8–30 m sides, uniformly spread over a 2° × 1° extent (about 140 km × 110 km), in random
order, with the columns of a stitched result (``id``, ``row``, ``object_type``,
``class_id``, ``area_m2``, ``imagery_date``, ``tile_id``).

The window is a square-ish box in the middle of the extent covering ``--window-share`` of
its area (1 %: about 14 km × 11 km, a city). Readers:

* **geopandas** — ``gpd.read_parquet(folder, bbox=window)`` (pyarrow dataset, a filter on
  the covering column: row groups whose statistics miss the window are skipped) vs
  ``gpd.read_parquet(folder)``;
* **DuckDB** — ``read_parquet('folder/*.parquet')`` with ``WHERE bbox.xmin <= … AND …``
  on the covering column (row-group pruning by statistics), all columns but the covering
  one (as geopandas returns them) fetched as an
  Arrow table (geometry as WKB) vs the same query without the ``WHERE``.

**Bytes** are the bytes the reader asked the file system for: each read is repeated
through an fsspec local file system that counts what its files' ``read`` calls return
(the measure of what would cross the network from object storage; the OS page cache is
warm for every read, and dropping it is not possible here, so this is not disk I/O).
**Time** is wall time of the read on the plain local path (no counting wrapper), warm
page cache, medians of ``--repeat`` interleaved runs. The objects returned are checked
against the generator's truth (every building whose envelope meets the window, by the
generator's own coordinates).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# the byte-counting file system the dataset tests use
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from support.reads import Counting  # noqa: E402

from mapflow_geo.results.dataset import write_frame_dataset  # noqa: E402

EXTENT = (4.0, 50.5, 6.0, 51.5)
SEED = 0
ROOT = Path(__file__).resolve().parent.parent
M_PER_DEG = 111_320.0


def building_coords(n: int, seed: int = SEED) -> np.ndarray:
    """Rotated rectangles (n, 5, 2): centres uniform over :data:`EXTENT`, sides 8–30 m,
    any orientation (degrees of longitude scaled by the cosine of the latitude)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = EXTENT
    cx = rng.uniform(x0, x1, n)
    cy = rng.uniform(y0, y1, n)
    half = rng.uniform(4, 15, (n, 2)) / M_PER_DEG  # half sides, degrees of latitude
    theta = rng.uniform(0, np.pi, n)
    c, s = np.cos(theta), np.sin(theta)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float)
    dx = corners[None, :, 0] * half[:, None, 0]
    dy = corners[None, :, 1] * half[:, None, 1]
    kx = 1 / np.cos(np.radians(cy))[:, None]
    out = np.empty((n, 5, 2))
    out[:, :, 0] = cx[:, None] + (dx * c[:, None] - dy * s[:, None]) * kx
    out[:, :, 1] = cy[:, None] + dx * s[:, None] + dy * c[:, None]
    return out


def buildings(n: int, seed: int = SEED) -> gpd.GeoDataFrame:
    """The synthetic stitched result (see the module docstring)."""
    xy = building_coords(n, seed)
    geoms = shapely.polygons(xy)
    rng = np.random.default_rng(seed + 1)
    tile = (xy[:, 0, 0] - EXTENT[0]) // 0.05 * 100 + (xy[:, 0, 1] - EXTENT[1]) // 0.05
    return gpd.GeoDataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "row": np.zeros(n, dtype=np.int64),
            "object_type": pd.Categorical(np.full(n, "buildings")),
            "class_id": pd.Categorical(np.full(n, "101")),
            "area_m2": shapely.area(geoms) * M_PER_DEG**2 * np.cos(np.radians(xy[:, 0, 1])),
            "imagery_date": pd.to_datetime(
                np.datetime64("2024-05-01") + rng.integers(0, 60, n).astype("timedelta64[D]")
            ).tz_localize("UTC"),
            "tile_id": pd.Categorical(tile.astype(np.int64).astype(str)),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


def window(share: float) -> tuple[float, float, float, float]:
    """A box in the middle of the extent covering ``share`` of its area."""
    x0, y0, x1, y1 = EXTENT
    k = np.sqrt(share) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - k * (x1 - x0), cy - k * (y1 - y0), cx + k * (x1 - x0), cy + k * (y1 - y0))


def truth(n: int, win) -> int:
    """Buildings whose envelope meets the window, from the generator's coordinates."""
    return _meets(building_coords(n, SEED), win)


def _meets(xy: np.ndarray, win) -> int:
    lo, hi = xy.min(axis=1), xy.max(axis=1)
    return int(
        (
            (lo[:, 0] <= win[2])
            & (hi[:, 0] >= win[0])
            & (lo[:, 1] <= win[3])
            & (hi[:, 1] >= win[1])
        ).sum()
    )


def dataset(n: int, cache: Path) -> tuple[Path, dict]:
    """The dataset of ``n`` buildings, written once and kept under ``cache``."""
    out = cache / f"buildings-{n}-seed{SEED}"
    stamp = out / "_written.json"
    if stamp.exists():
        return out, json.loads(stamp.read_text())
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    frame = buildings(n)
    t1 = time.perf_counter()
    write_frame_dataset(frame, out)
    t2 = time.perf_counter()
    meta = {"generate_s": t1 - t0, "write_s": t2 - t1}
    stamp.write_text(json.dumps(meta))
    return out, meta


def _where(win) -> str:
    x0, y0, x1, y1 = win
    return f"bbox.xmin <= {x1} AND bbox.xmax >= {x0} AND bbox.ymin <= {y1} AND bbox.ymax >= {y0}"


def read_geopandas(folder: Path, win, counting: bool = False) -> int:
    kw = {"filesystem": Counting()} if counting else {}
    return len(gpd.read_parquet(str(folder), bbox=win, **kw))


def read_duckdb(folder: Path, win, counting: bool = False) -> int:
    import duckdb

    con = duckdb.connect()  # a fresh connection: no cached metadata
    try:
        con.execute("SET enable_geoparquet_conversion = false")  # geometry as its WKB
        if counting:
            con.register_filesystem(Counting())
        src = f"read_parquet('{'counting://' if counting else ''}{folder}/*.parquet')"
        sql = f"SELECT * EXCLUDE (bbox) FROM {src}" + (f" WHERE {_where(win)}" if win else "")
        return con.execute(sql).to_arrow_table().num_rows
    finally:
        con.close()


READERS = {"geopandas": read_geopandas, "duckdb": read_duckdb}


def row_groups(folder: Path, win) -> tuple[int, int]:
    """(row groups whose bbox statistics meet the window, all row groups)."""
    met = total = 0
    for path in sorted(folder.glob("part-*.parquet")):
        md = pq.read_metadata(path)
        names = [md.schema.column(j).path for j in range(md.num_columns)]
        cols = [names.index(f"bbox.{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            xmin, ymin = (rg.column(c).statistics.min for c in cols[:2])
            xmax, ymax = (rg.column(c).statistics.max for c in cols[2:])
            met += xmin <= win[2] and xmax >= win[0] and ymin <= win[3] and ymax >= win[1]
            total += 1
    return met, total


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="objects (default 10 M)")
    ap.add_argument("--window-share", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "bbox_read",
                    help="where the dataset is written once (default build/bbox_read)")  # fmt: skip
    args = ap.parse_args(argv)
    folder, made = dataset(args.n, args.cache)
    win = window(args.window_share)
    want = truth(args.n, win)
    size = sum(p.stat().st_size for p in folder.glob("part-*.parquet"))
    met, groups = row_groups(folder, win)
    times: dict[tuple[str, str], list[float]] = {}
    counts: dict[tuple[str, str], int] = {}
    read: dict[tuple[str, str], int] = {}
    for name, fn in READERS.items():  # warm the page cache and count bytes, once
        for kind, w in (("full", None), ("bbox", win)):
            Counting.read_bytes = 0
            counts[(name, kind)] = fn(folder, w, counting=True)
            read[(name, kind)] = Counting.read_bytes
            times[(name, kind)] = []
    for _ in range(args.repeat):  # interleaved
        for name, fn in READERS.items():
            for kind, w in (("full", None), ("bbox", win)):
                t0 = time.perf_counter()
                rows = fn(folder, w)
                times[(name, kind)].append(time.perf_counter() - t0)
                assert rows == counts[(name, kind)]
    print(
        f"bbox read benchmark — {date.today()}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.n:,} objects "
        f"in {len(list(folder.glob('part-*.parquet')))} parts, {groups} row groups, "
        f"{size / 1e6:,.0f} MB (written in {made['generate_s']:.0f} s + {made['write_s']:.0f} s); "
        f"window {tuple(round(float(v), 4) for v in win)} = {args.window_share:.1%} of the extent, "
        f"{want:,} objects meet it; its statistics meet {met} row groups ({met / groups:.1%})\n"
    )
    print("| reader | read | objects | MB read | share of full | median s | runs s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for name in READERS:
        full_b = read[(name, "full")]
        for kind in ("full", "bbox"):
            b = read[(name, kind)]
            runs = times[(name, kind)]
            print(f"| {name} | {kind} | {counts[(name, kind)]:,} | {b / 1e6:,.1f} | "
                  f"{b / full_b:.1%} | {np.median(runs):.2f} | "
                  f"{', '.join(f'{r:.2f}' for r in runs)} |")  # fmt: skip
    print()
    for name in READERS:
        ok = counts[(name, "bbox")] == want and counts[(name, "full")] == args.n
        full_b, part_b = read[(name, "full")], read[(name, "bbox")]
        speed = np.median(times[(name, "full")]) / np.median(times[(name, "bbox")])
        print(f"{name}: bbox read {full_b / part_b:.0f}× fewer bytes, {speed:.0f}× faster than "
              f"a full read; objects equal to the truth: {ok}")  # fmt: skip


if __name__ == "__main__":
    main()
