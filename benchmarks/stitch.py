"""Benchmark seam stitching + merging: ``results.stitch`` vs the strong baseline a careful
user writes (and, on request, vs dissolving the seam pieces and vs dissolving everything).

Run: ``python benchmarks/stitch.py [--n 1000000] [--worlds attached,separate]
[--methods stitch,strong] [--repeat 3] [--tiles 10] [--rows 4]`` (quick mode:
``--n 100000``). Prints a markdown table and, per world, the ratio to each other method.

Synthetic tiled result, the way tiling cuts a Mapflow result: a ``--tiles`` × ``--tiles``
grid of square tiles (0.01°), split into ``--rows`` input rows (bands of tiles), and
``--n`` axis-aligned buildings; every building that crosses a seam is cut into its
pieces (2 or 4), each piece tagged with its tile and row — as one ``concat`` of per-tile
results would hold them. Axis-aligned boxes let numpy do the clipping, so a million
objects are generated in a second. Two worlds (both by default):

* ``attached`` — terraces: rows of 1–11 houses of random widths sharing their walls
  (exactly the same coordinate on both sides of a wall), one terrace per cell of a
  jittered grid; a terrace cut lengthwise by a seam has every house cut, and the
  neighbours' pieces touch along the seam;
* ``separate`` — a jittered grid of non-touching buildings (the world of the earlier
  measurements, and of ``benchmarks/scale.py``).

Methods:

* **stitch** — ``mapflow_geo.results.stitch(pieces, tiles)``;
* **strong** (:func:`strong`) — the strong baseline: seam pieces by bounds arithmetic,
  STRtree ``dwithin`` pairs from different tiles of the same row and type that share an
  edge, ``scipy.sparse.csgraph`` components, ``shapely.union_all`` per group, the same
  attributes as ``stitch``. It loses nothing on either world;
* **seam** — select the pieces within ``SEAM_EPS_DEG`` of their tile's boundary,
  ``dissolve`` them per row and object type, ``explode`` into objects, give each object
  its pieces back (``sjoin`` of the pieces' representative points) for the same
  attributes as ``stitch``, and leave every other piece as it is. It merges pieces that
  touch — attached neighbours included — so on the attached world it loses objects;
* **seam-coverage** — the same with ``dissolve(method="coverage")``;
* **naive** — ``pieces.dissolve(by=["row", "object_type"]).explode()`` (runs once).

Each run is its own subprocess (same seed, same data), the methods interleaved, and the
table gives the median of ``--repeat`` runs: wall and CPU time of the method alone (scipy
is imported before the clock starts, for every method), the peak resident memory
(``VmHWM``, reset after the data are generated with ``/proc/self/clear_refs``, so it is
the method's peak with the data held; ``ru_maxrss`` would carry the parent's), the RSS
the method added on top of the data, and the objects each method lost against the
generated world's truth (one object per building and input row).
"""

from __future__ import annotations

import argparse
import gc
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
import pandas as pd
import shapely

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mapflow_geo.results import SEAM_EPS_DEG, stitch  # noqa: E402

TILE = 0.01  # degrees
METHODS = ("stitch", "strong", "seam", "seam-coverage", "naive")


def make_data(n_objects: int, n_tiles: int, n_rows: int, seed: int = 0):
    """Separate buildings: (pieces, tiles, expected objects: one per building and row)."""
    rng = np.random.default_rng(seed)
    side = n_tiles * TILE
    per_axis = int(np.ceil(np.sqrt(n_objects)))
    cell = side / (per_axis + 1)  # grid shifted by half a cell: seams cut objects
    i, j = np.divmod(np.arange(per_axis * per_axis)[:n_objects], per_axis)
    w = cell * rng.uniform(0.2, 0.7, n_objects)
    h = cell * rng.uniform(0.2, 0.7, n_objects)
    x0 = (j + 0.5) * cell + rng.uniform(0, 1, n_objects) * (cell - w - 2e-3 * cell) + 1e-3 * cell
    y0 = (i + 0.5) * cell + rng.uniform(0, 1, n_objects) * (cell - h - 2e-3 * cell) + 1e-3 * cell
    return cut_to_tiles(x0, y0, x0 + w, y0 + h, n_tiles, n_rows)


def make_attached(n_objects: int, n_tiles: int, n_rows: int, seed: int = 0):
    """Terraces of attached houses: (pieces, tiles, expected objects)."""
    rng = np.random.default_rng(seed)
    side = n_tiles * TILE
    k = rng.integers(1, 12, n_objects)  # houses per terrace, 6 on average
    k = k[: np.searchsorted(np.cumsum(k), n_objects) + 1]
    k[-1] -= k.sum() - n_objects
    n_cells = len(k)
    ny = int(np.ceil(np.sqrt(4 * n_cells)))  # cells 4× wider than high
    nx = int(np.ceil(n_cells / ny))
    cw, ch = side / (nx + 1), side / (ny + 1)  # shifted by half a cell: seams cut
    cy, cx = np.divmod(np.arange(n_cells), nx)
    length = cw * rng.uniform(0.6, 0.95, n_cells)
    depth = ch * rng.uniform(0.3, 0.6, n_cells)
    tx0 = (cx + 0.5) * cw + rng.uniform(0, 1, n_cells) * (cw - length - 2e-3 * cw) + 1e-3 * cw
    ty0 = (cy + 0.5) * ch + rng.uniform(0, 1, n_cells) * (ch - depth - 2e-3 * ch) + 1e-3 * ch
    terrace = np.repeat(np.arange(n_cells), k)
    weight = rng.uniform(0.5, 1.5, n_objects)
    total = np.bincount(terrace, weight)
    end = np.cumsum(weight)
    start = end - weight
    first = np.repeat(np.cumsum(k) - k, k)  # position of the terrace's first house
    before = start - start[first]  # share of the terrace before each house, in weights
    x_edge = lambda w: tx0[terrace] + length[terrace] * (w / total[terrace])  # noqa: E731
    x0 = x_edge(before)
    x1 = np.r_[x0[1:], 0.0]  # the next house's left wall, exactly
    last = np.r_[terrace[1:] != terrace[:-1], True]
    x1[last] = (tx0 + length)[terrace[last]]
    y0, y1 = ty0[terrace], (ty0 + depth)[terrace]
    return cut_to_tiles(x0, y0, x1, y1, n_tiles, n_rows)


def cut_to_tiles(x0, y0, x1, y1, n_tiles: int, n_rows: int):
    """Boxes cut at the tile grid's seams: (pieces, tiles, expected objects)."""
    n_objects = len(x0)
    # split at vertical then horizontal seams (a box crosses at most one of each)
    sx = np.floor(x1 / TILE) * TILE
    cut = sx > x0
    xs = [
        (x0, np.where(cut, sx, x1), np.arange(n_objects)),
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
            "processing_id": [f"p{a}_{b}" for a, b in zip(ti.tolist(), tj.tolist(), strict=True)],
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


def _join(values: pd.Series) -> str:
    return "+".join(sorted(set(map(str, values))))


def seam_dissolve(
    pieces: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame, method: str = "unary"
) -> gpd.GeoDataFrame:
    """Dissolve only the pieces touching a seam, with ``stitch``'s attribute handling."""
    boundary = tiles.set_index("tile_id").boundary
    own = gpd.GeoSeries(boundary.reindex(pieces["tile_id"]).values, index=pieces.index)
    near = pieces.geometry.dwithin(own, SEAM_EPS_DEG)
    seam, rest = pieces[near], pieces[~near]
    objects = (
        seam[["row", "object_type", "geometry"]]
        .dissolve(by=["row", "object_type"], method=method)
        .explode(index_parts=False)
        .reset_index()
    )
    objects["obj"] = np.arange(len(objects))
    points = seam.set_geometry(seam.representative_point())
    hit = points.sjoin(objects, predicate="within", lsuffix="piece", rsuffix="obj")
    hit = hit[
        (hit["row_piece"] == hit["row_obj"]) & (hit["object_type_piece"] == hit["object_type_obj"])
    ]
    members = seam.loc[hit.index].assign(obj=hit["obj"].to_numpy())
    members = members.sort_values(["obj", "area"], ascending=[True, False], kind="stable")
    by_obj = members.groupby("obj", sort=True)
    merged = members.drop_duplicates("obj").set_index("obj")
    merged["geometry"] = objects.set_index("obj").geometry.reindex(merged.index)
    merged["area"] = by_obj["area"].sum()
    merged["tile_id"] = by_obj["tile_id"].agg(_join)
    merged["processing_id"] = by_obj["processing_id"].agg(_join)
    out = pd.concat([rest, merged.reset_index(drop=True)], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=pieces.crs)


def strong(pieces: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The strong baseline: what a careful shapely 2 user writes.

    Seam pieces by bounds arithmetic (a piece whose bounds reach within ``SEAM_EPS_DEG``
    of its tile's bounds); an STRtree ``dwithin`` query among them; pairs from different
    tiles of the same input row and object type that share an edge (their intersection
    has a length: attached neighbours meet the seam at a point); connected components
    with ``scipy.sparse.csgraph``; ``shapely.union_all`` per group; the same attributes
    as ``stitch`` (largest piece's properties, ``area`` summed, ``tile_id`` /
    ``processing_id`` joined with ``+``). Loses nothing on either world.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    geoms = np.asarray(pieces.geometry.values)
    tile_bounds = tiles.set_index("tile_id").bounds.reindex(pieces["tile_id"]).to_numpy()
    near = (np.abs(shapely.bounds(geoms) - tile_bounds) <= SEAM_EPS_DEG).any(axis=1)
    idx = np.flatnonzero(near)
    g = geoms[idx]
    i, j = shapely.STRtree(g).query(g, predicate="dwithin", distance=SEAM_EPS_DEG)
    row = pieces["row"].to_numpy()[idx]
    kind = pieces["object_type"].to_numpy()[idx]
    tile = pieces["tile_id"].to_numpy()[idx]
    keep = (i < j) & (row[i] == row[j]) & (kind[i] == kind[j]) & (tile[i] != tile[j])
    i, j = i[keep], j[keep]
    edge = shapely.length(shapely.intersection(g[i], g[j])) > 2 * SEAM_EPS_DEG
    i, j = i[edge], j[edge]
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(len(g), len(g)))
    label = connected_components(graph, directed=False)[1]
    size = np.bincount(label)
    joined = size[label] > 1
    if not joined.any():
        return pieces.reset_index(drop=True)
    members = pieces.iloc[idx[joined]].assign(group=label[joined])
    members = members.sort_values(["group", "area"], ascending=[True, False], kind="stable")
    group = members["group"].to_numpy()
    starts = np.flatnonzero(np.diff(group, prepend=-1) != 0)
    parts = np.split(np.asarray(members.geometry.values), starts[1:])
    merged = members.iloc[starts].copy()
    merged["geometry"] = [shapely.union_all(p) for p in parts]
    by_group = members.groupby("group", sort=True)
    merged["area"] = by_group["area"].sum().to_numpy()
    merged["tile_id"] = by_group["tile_id"].agg(_join).to_numpy()
    merged["processing_id"] = by_group["processing_id"].agg(_join).to_numpy()
    rest = np.ones(len(pieces), dtype=bool)
    rest[idx[joined]] = False
    out = pd.concat([pieces[rest], merged.drop(columns="group")], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=pieces.crs)


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


def reset_peak_rss() -> None:
    """Start the high-water mark afresh at the current RSS (Linux ``clear_refs`` 5), so
    that the data generator's temporaries do not count as the method's peak."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # pragma: no cover - not Linux, or not allowed
        pass


def worker(method: str, n_objects: int, n_tiles: int, n_rows: int, world: str) -> dict:
    make = make_attached if world == "attached" else make_data
    pieces, tiles, n_whole = make(n_objects, n_tiles, n_rows)
    import scipy.sparse.csgraph  # noqa: F401 - loaded before timing: its import is not the method

    reset_peak_rss()
    rss0 = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    if method == "stitch":
        out = stitch(pieces, tiles)
    elif method == "strong":
        out = strong(pieces, tiles)
    elif method == "seam":
        out = seam_dissolve(pieces, tiles)
    elif method == "seam-coverage":
        out = seam_dissolve(pieces, tiles, method="coverage")
    else:
        out = naive(pieces)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = peak_rss_mb()
    return {
        "method": method,
        "seconds": dt,
        "cpu_seconds": cpu,
        "pieces": len(pieces),
        "objects": len(out),
        "expected": n_whole,
        "area": float(shapely.area(out.geometry.values).sum()),
        "peak_rss_mb": rss1,
        "added_rss_mb": rss1 - rss0,
    }


def run_worker(method: str, world: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, "--n", str(args.n),
           "--tiles", str(args.tiles), "--rows", str(args.rows), "--worlds", world]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def median_run(runs: list[dict]) -> dict:
    """The median of each measure over the runs (objects: the last run's; all equal)."""
    out = dict(runs[-1])
    for key in ("seconds", "cpu_seconds", "peak_rss_mb", "added_rss_mb"):
        out[key] = float(np.median([r[key] for r in runs]))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", "--objects", dest="n", type=int, default=1_000_000,
                    help="buildings in the world (default 1 M)")  # fmt: skip
    ap.add_argument("--tiles", type=int, default=10)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--worlds", "--world", dest="worlds", default="attached,separate")
    ap.add_argument("--methods", default="stitch,strong")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method, median kept "
                    "(methods interleaved; naive runs once)")  # fmt: skip
    ap.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.tiles, args.rows, args.worlds)))
        return
    methods, worlds = args.methods.split(","), args.worlds.split(",")
    runs: dict[tuple[str, str], list[dict]] = {}
    for rep in range(args.repeat):
        for world in worlds:
            for method in methods:
                if method == "naive" and rep:
                    continue
                runs.setdefault((world, method), []).append(run_worker(method, world, args))
    res = {k: median_run(v) for k, v in runs.items()}
    print(
        f"stitch benchmark — {date.today()}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{args.n} buildings, {args.tiles}×{args.tiles} tiles in {args.rows} rows; "
        f"medians of {args.repeat} interleaved runs, each in its own process\n"
    )
    print("| world | method | pieces | wall s | CPU s | objects out | objects lost | "
          "peak RSS MB | RSS added MB |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (world, _), r in res.items():
        print(f"| {world} | {r['method']} | {r['pieces']} | {r['seconds']:.2f} | "
              f"{r['cpu_seconds']:.2f} | {r['objects']} | {r['expected'] - r['objects']} | "
              f"{r['peak_rss_mb']:.0f} | {r['added_rss_mb']:.0f} |")  # fmt: skip
    print()
    for world in worlds:
        if (world, "stitch") not in res:
            continue
        s = res[(world, "stitch")]
        lost = s["expected"] - s["objects"]
        print(f"{world}: stitch loses {lost} objects (one object per building and input row)")
        for name in methods:
            if name == "stitch":
                continue
            r = res[(world, name)]
            target = " (target ≥ 2×)" if name == "strong" else ""
            print(f"{world}: speed-up vs {name}: **{r['seconds'] / s['seconds']:.2f}×**{target} "
                  f"wall, {r['cpu_seconds'] / s['cpu_seconds']:.2f}× CPU; {name} loses "
                  f"{r['expected'] - r['objects']} objects; area rel. diff "
                  f"{abs(s['area'] - r['area']) / r['area']:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
