"""Benchmark seam stitching + merging: ``results.stitch`` vs a naive concat + dissolve.

Run: ``python benchmarks/stitch.py [--objects 1000000] [--tiles 10] [--rows 4]``
(quick mode: ``--objects 100000``). Prints a markdown table.

Synthetic tiled result, the way tiling cuts a Mapflow result: an ``--tiles`` × ``--tiles``
grid of square tiles (0.01°), split into ``--rows`` input rows (bands of tiles), and a
jittered grid of ``--objects`` non-touching axis-aligned buildings; every building that
crosses a seam is cut into its pieces (2 or 4), each piece tagged with its tile and row —
as one ``concat`` of per-tile results would hold them. Axis-aligned boxes let numpy do
the clipping, so a million objects are generated in a second.

* **stitch** — ``mapflow_geo.results.stitch(pieces, tiles)``;
* **naive** — ``pieces.dissolve(by=["row", "object_type"]).explode()``: union everything
  per row and type (pieces that touch at seams merge), then split into parts.

Each method runs in its own subprocess (same seed, same data) so that the peak resident
memory (``VmHWM``; ``ru_maxrss`` would carry the parent's) is its own; the table gives
wall time of the method alone, peak RSS of the process, and the RSS the method added on
top of the generated data. Both must give the same number of objects.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mapflow_geo.results import stitch  # noqa: E402

TILE = 0.01  # degrees


def make_data(n_objects: int, n_tiles: int, n_rows: int, seed: int = 0):
    """(pieces, tiles, expected objects: one per building and input row)."""
    rng = np.random.default_rng(seed)
    side = n_tiles * TILE
    per_axis = int(np.ceil(np.sqrt(n_objects)))
    cell = side / (per_axis + 1)  # grid shifted by half a cell: seams cut objects
    i, j = np.divmod(np.arange(per_axis * per_axis)[:n_objects], per_axis)
    w = cell * rng.uniform(0.2, 0.7, n_objects)
    h = cell * rng.uniform(0.2, 0.7, n_objects)
    x0 = (j + 0.5) * cell + rng.uniform(0, 1, n_objects) * (cell - w - 2e-3 * cell) + 1e-3 * cell
    y0 = (i + 0.5) * cell + rng.uniform(0, 1, n_objects) * (cell - h - 2e-3 * cell) + 1e-3 * cell
    x1, y1 = x0 + w, y0 + h
    # split at vertical then horizontal seams (a box crosses at most one of each)
    xs = [(x0, x1, np.arange(n_objects))]
    sx = np.floor(x1 / TILE) * TILE
    cut = sx > x0
    xs = [
        (np.where(cut, x0, x0), np.where(cut, sx, x1), np.arange(n_objects)),
        (sx[cut], x1[cut], np.flatnonzero(cut)),
    ]
    parts = []
    for a, b, obj in xs:
        ya, yb = y0[obj], y1[obj]
        sy = np.floor(yb / TILE) * TILE
        cy = sy > ya
        parts.append((a, b, ya, np.where(cy, sy, yb), obj))
        parts.append((a[cy], b[cy], sy[cy], yb[cy], obj[cy]))
    px0, px1, py0, py1, obj = (np.concatenate(c) for c in zip(*parts, strict=True))
    geoms = shapely.box(px0, py0, px1, py1)
    ti = np.minimum((px0 / TILE + 1e-9).astype(int), n_tiles - 1)
    tj = np.minimum((py0 / TILE + 1e-9).astype(int), n_tiles - 1)
    band = max(1, n_tiles // n_rows)
    row = np.minimum(tj // band, n_rows - 1)
    pieces = gpd.GeoDataFrame(
        {
            "id": obj,
            "object_type": "buildings",
            "area": shapely.area(geoms),
            "row": row,
            "tile_id": [f"t{a}_{b}" for a, b in zip(ti.tolist(), tj.tolist(), strict=True)],
            "processing_id": "p",
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    ga, gb = np.meshgrid(np.arange(n_tiles), np.arange(n_tiles), indexing="ij")
    ga, gb = ga.ravel(), gb.ravel()
    tiles = gpd.GeoDataFrame(
        {
            "tile_id": [f"t{a}_{b}" for a, b in zip(ga.tolist(), gb.tolist(), strict=True)],
            "row": np.minimum(gb // band, n_rows - 1),
        },
        geometry=shapely.box(ga * TILE, gb * TILE, (ga + 1) * TILE, (gb + 1) * TILE),
        crs="EPSG:4326",
    )
    # an object that straddles two input rows stays one object per row
    n_expected = int(pieces[["id", "row"]].drop_duplicates().shape[0])
    return pieces, tiles, n_expected


def naive(pieces: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return pieces.dissolve(by=["row", "object_type"]).explode(index_parts=False)


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (``VmHWM``; unlike ``ru_maxrss`` it is
    not inherited from the parent across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(method: str, n_objects: int, n_tiles: int, n_rows: int) -> dict:
    pieces, tiles, n_whole = make_data(n_objects, n_tiles, n_rows)
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    out = stitch(pieces, tiles) if method == "stitch" else naive(pieces)
    dt = time.perf_counter() - t0
    rss1 = peak_rss_mb()
    return {
        "method": method,
        "seconds": dt,
        "pieces": len(pieces),
        "objects": len(out),
        "expected": n_whole,
        "area": float(shapely.area(out.geometry.values).sum()),
        "peak_rss_mb": rss1,
        "added_rss_mb": rss1 - rss0,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--tiles", type=int, default=10)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--worker", choices=["stitch", "naive"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.objects, args.tiles, args.rows)))
        return
    res = {}
    for method in ("stitch", "naive"):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", method,
               "--objects", str(args.objects), "--tiles", str(args.tiles),
               "--rows", str(args.rows)]  # fmt: skip
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res[method] = json.loads(out.strip().splitlines()[-1])
    s, n = res["stitch"], res["naive"]
    print(
        f"stitch benchmark — {date.today()}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {s['pieces']} pieces of {s['expected']} objects, "
        f"{args.tiles}×{args.tiles} tiles in {args.rows} rows\n"
    )
    print("| method | wall s | objects out | peak RSS MB | RSS added MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in (s, n):
        print(f"| {r['method']} | {r['seconds']:.2f} | {r['objects']} | "
              f"{r['peak_rss_mb']:.0f} | {r['added_rss_mb']:.0f} |")  # fmt: skip
    print(f"\nspeed-up: **{n['seconds'] / s['seconds']:.1f}×** (target ≥ 5×); "
          f"objects equal: {s['objects'] == n['objects'] == s['expected']}; "
          f"area rel. diff {abs(s['area'] - n['area']) / n['area']:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
