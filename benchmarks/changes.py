"""Benchmark change detection: ``mapflow_geo.changes`` vs ``sjoin`` + IoU matching.

Run: ``python benchmarks/changes.py [--n 1000000] [--worlds world,noisy] [--repeat 3]``
(quick mode: ``--n 200000``). Prints a markdown table and the ratios.

Two worlds, N buildings per date, each cached once under ``--cache`` (GeoParquet):

* ``world`` — the simulator's world (``mapflow_geo.sim.world.truth``, seed 11) in a box
  around Moscow's centre at 2024-06-01 and 2026-06-01: buildings built, demolished,
  extended between the dates; every unchanged building has a byte-identical outline;
* ``noisy`` — the same two dates with every vertex of every outline moved by up to
  ±0.3 m, independently at each date (two runs never draw a building the same way).

The truth: ``truth_id`` (given to both methods as ``id``) present only at the second
date is new, only at the first removed — except a building demolished and rebuilt on
its lot (the simulator's ``rebuilt_ids``), which no footprint comparison can see.
Precision and recall of ``new`` and ``removed`` count the detected ids against those.

Methods, each in its own process (interleaved, ``--repeat`` runs, medians):

* **ours** — ``mapflow_geo.changes(before, after, unchanged=False)`` (``ours-all``: with
  the unchanged rows, the default);
* **baseline** — what a competent geopandas user writes: ``gpd.sjoin(before, after,
  predicate="intersects")``, IoU of each pair (``shapely.intersection`` / areas), pairs
  with IoU ≥ 0.5 matched; before objects matched by nothing are removed, after objects
  matched by nothing new.

Time is the method alone (the data read before it); peak memory is the process' peak
resident set (``VmHWM``) with the data held, its high-water mark reset after reading.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stitch import peak_rss_mb, reset_peak_rss  # noqa: E402

import mapflow_geo  # noqa: E402  (imported before any timing)

D1, D2 = "2024-06-01", "2026-06-01"
CENTRE = (37.6, 55.765)
#: buildings per square degree of the simulator's world around CENTRE (measured)
DENSITY = 2.65e6
JITTER_M = 0.3
METHODS = ("ours", "baseline", "ours-all")


def _world(n: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    from mapflow_geo.sim import world

    side = (n / DENSITY / 2) ** 0.5  # a box twice as wide as high
    frames = []
    for d in (D1, D2):
        bbox = (CENTRE[0] - side, CENTRE[1] - side / 2, CENTRE[0] + side, CENTRE[1] + side / 2)
        geoms, props = world.truth(bbox, "buildings", seed=11, date=d)
        frames.append(
            gpd.GeoDataFrame(
                {"id": props["truth_id"], "object_type": props["object_type"]},
                geometry=geoms,
                crs=4326,
            )
        )
    return frames[0], frames[1]


def _jitter(frame: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    """Every vertex moved by up to ±JITTER_M metres (rings stay closed)."""
    rng = np.random.default_rng(seed)
    geoms = frame.geometry.values
    xy, idx = shapely.get_coordinates(geoms, return_index=True)
    lat = np.deg2rad(CENTRE[1])
    d = rng.uniform(-JITTER_M, JITTER_M, xy.shape)
    d[:, 0] /= 111_320.0 * np.cos(lat)
    d[:, 1] /= 110_574.0
    # ring closure: the last vertex of each ring takes the first one's shift
    rings = shapely.get_rings(geoms)
    counts = shapely.get_num_coordinates(rings)
    first = np.cumsum(counts) - counts
    d[first + counts - 1] = d[first]
    out = shapely.set_coordinates(geoms.copy(), xy + d)
    return frame.set_geometry(gpd.array.from_shapely(out, crs=4326))


def _truth(b: gpd.GeoDataFrame, a: gpd.GeoDataFrame) -> tuple[set, set]:
    """True new and removed ids, from the simulator's record: a building demolished and
    rebuilt on its lot (its successor's id is ``rebuilt_ids`` of its own) is neither."""
    from mapflow_geo.sim.world_core import rebuilt_ids

    ib, ia = set(b["id"].tolist()), set(a["id"].tolist())
    new, removed = ia - ib, ib - ia
    gone = np.array(sorted(removed), dtype=np.int64)
    successor = rebuilt_ids(gone)
    rebuilt = np.isin(successor, np.array(sorted(new), dtype=np.int64))
    removed -= set(gone[rebuilt].tolist())
    new -= set(successor[rebuilt].tolist())
    return new, removed


def prepare(n: int, world: str, cache: Path) -> Path:
    path = cache / f"changes-{world}-{n}"
    if (path / "truth.json").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    b, a = _world(n)
    if world == "noisy":
        b, a = _jitter(b, 1), _jitter(a, 2)
    new, removed = _truth(b, a)
    b.to_parquet(path / "before.parquet")
    a.to_parquet(path / "after.parquet")
    (path / "truth.json").write_text(json.dumps({"new": sorted(new), "removed": sorted(removed)}))
    return path


def baseline(b: gpd.GeoDataFrame, a: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """sjoin(intersects) + IoU ≥ 0.5: (new after ids, removed before ids)."""
    j = gpd.sjoin(b, a, predicate="intersects", how="inner")
    gb = b.geometry.values[b.index.get_indexer(j.index)]
    ga = a.geometry.values[a.index.get_indexer(j["index_right"])]
    inter = shapely.area(shapely.intersection(gb, ga))
    iou = inter / (shapely.area(gb) + shapely.area(ga) - inter)
    ok = iou >= 0.5
    matched_b = set(j.index[ok])
    matched_a = set(j["index_right"].to_numpy()[ok])
    removed = b["id"].to_numpy()[~b.index.isin(matched_b)]
    new = a["id"].to_numpy()[~a.index.isin(matched_a)]
    return new, removed


def ours(
    b: gpd.GeoDataFrame, a: gpd.GeoDataFrame, unchanged: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    ch = mapflow_geo.changes(b, a, unchanged=unchanged)
    flat = lambda s: [x for v in s for x in (v if isinstance(v, list) else [v])]  # noqa: E731
    new = flat(ch.loc[ch["change"] == "new", "after_id"])
    removed = flat(ch.loc[ch["change"] == "removed", "before_id"])
    return np.asarray(new), np.asarray(removed)


def _pr(found: np.ndarray, true: set) -> tuple[float, float]:
    found = set(found.tolist())
    hit = len(found & true)
    return hit / max(1, len(found)), hit / max(1, len(true))


def worker(method: str, path: Path) -> dict:
    b = gpd.read_parquet(path / "before.parquet")
    a = gpd.read_parquet(path / "after.parquet")
    truth = json.loads((path / "truth.json").read_text())
    true_new, true_removed = set(truth["new"]), set(truth["removed"])
    del truth
    reset_peak_rss()
    data = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    if method == "baseline":
        new, removed = baseline(b, a)
    else:
        new, removed = ours(b, a, unchanged=method == "ours-all")
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_rss_mb()
    pn, rn = _pr(new, true_new)
    pr, rr = _pr(removed, true_removed)
    return {
        "method": method,
        "seconds": dt,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak,
        "data_rss_mb": data,
        "before": len(b),
        "after": len(a),
        "new": len(new),
        "removed": len(removed),
        "true_new": len(true_new),
        "true_removed": len(true_removed),
        "new_precision": pn,
        "new_recall": rn,
        "removed_precision": pr,
        "removed_recall": rr,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="buildings per date")
    ap.add_argument("--worlds", default="world,noisy")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method (medians)")
    ap.add_argument("--methods", default="ours,baseline", help="ours-all: with unchanged rows")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "mfbench"))
    ap.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.path))))
        return
    print(
        f"changes benchmark — {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, N = {args.n} per date, medians of {args.repeat}\n"
    )
    print(
        "| world | method | wall s | CPU s | peak RSS MB | new | removed | new P / R | "
        "removed P / R |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    ratios = []
    for world in args.worlds.split(","):
        path = prepare(args.n, world, Path(args.cache))
        methods = args.methods.split(",")
        runs: dict[str, list[dict]] = {m: [] for m in methods}
        for _ in range(args.repeat):
            for method in methods:
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", method,
                       "--path", str(path)]  # fmt: skip
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs[method].append(json.loads(out.strip().splitlines()[-1]))
        med = {}
        for method, rs in runs.items():
            r = dict(rs[0])
            for k in ("seconds", "cpu_seconds", "peak_rss_mb"):
                r[k] = statistics.median(x[k] for x in rs)
            med[method] = r
            print(
                f"| {world} ({r['before']} → {r['after']}) | {method} | {r['seconds']:.2f} | "
                f"{r['cpu_seconds']:.2f} | {r['peak_rss_mb']:.0f} | {r['new']} | "
                f"{r['removed']} | {r['new_precision']:.4f} / {r['new_recall']:.4f} | "
                f"{r['removed_precision']:.4f} / {r['removed_recall']:.4f} |"
            )
        bl = med.get("baseline")
        for name in ("ours", "ours-all"):
            if bl is None or name not in med:
                continue
            o = med[name]
            ratios.append(
                f"{world}, {name}: {bl['seconds'] / o['seconds']:.2f}× faster in wall time "
                f"(CPU {bl['cpu_seconds'] / o['cpu_seconds']:.2f}×; target ≥ 3×), peak "
                f"{o['peak_rss_mb']:.0f} MB vs {bl['peak_rss_mb']:.0f} MB; truth: "
                f"{o['true_new']} new, {o['true_removed']} removed"
            )
    print()
    for line in ratios:
        print(line)


if __name__ == "__main__":
    main()
