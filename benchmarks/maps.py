"""Benchmark maps of a million objects: the static PNG (``res.to_image``) against the
plain ``GeoDataFrame.plot`` a competent user would write, and the interactive page
(``deck_result(res).save``: the lonboard map ``res.explore()`` draws, written by
lonboard's ``Map.to_html`` with the legend) against lonboard's own ``viz(...).to_html()``.

Run: ``python benchmarks/maps.py [--objects 1000000] [--out DIR]``. Prints Markdown
tables; the PNGs are kept in ``--out`` (a temporary folder by default) to look at.

Synthetic result (the one ``tests/browser/test_deck_browser.py`` draws): terraced rows
of attached 9 × 7 m buildings near 55.7° N, in blocks of three classes, 4 × 4 tiles
(three FAILED), one input area. Each method runs in its own process (fresh imports,
its own peak memory: ``VmHWM`` reset after the data is made), best wall time of
``--repeat`` runs, methods alternating.

Static image, 8 × 8 in at 150 dpi (1200 × 1200 px), classes coloured alike:

* **to_image** — ``res.to_image("map.png")``: above ``RASTER_THRESHOLD`` objects each
  class is one compound path, filled and rasterised (with tiles, areas, legend, scale
  bar, title);
* **GeoDataFrame.plot** — ``features.to_crs(3857).plot(column="class_id",
  categorical=True, legend=True)`` then ``savefig``: geopandas' one-liner.

Interactive page:

* **explore().save** — ``res.explore()`` (lonboard above 20,000 objects) and
  ``.save("map.html")``: lonboard's ``Map.to_html`` page with the legend;
* **lonboard viz().to_html** — ``lonboard.viz(features).to_html()``: lonboard's
  default (its page loads the widget code and its Parquet decoder from CDNs).
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
import tempfile
import time
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapflow_geo.results import MapflowResult  # noqa: E402
from mapflow_geo.viz import deck_result  # noqa: E402

STATIC = ("to_image", "gdf_plot")
INTERACTIVE = ("explore_save", "lonboard_viz")
LABELS = {
    "to_image": "`res.to_image`",
    "gdf_plot": "`GeoDataFrame.plot` + `savefig`",
    "explore_save": "`res.explore().save`",
    "lonboard_viz": "`lonboard.viz(features).to_html`",
}


def make_city(n: int) -> MapflowResult:
    """Terraced rows of attached buildings (about 1.56 rows per column of 1,000)."""
    per_row = max(int(round((n / 1.5625) ** 0.5)), 1)
    n_rows = -(-n // per_row)
    w, h, step = 9 / 62_700, 7 / 111_320, 12 / 111_320
    i = np.arange(n)
    row, col = np.divmod(i, per_row)
    x = 37.5 + col * w
    y = 55.7 + row * step
    block = (row * 10 // n_rows + col * 4 // per_row) % 3
    feats = gpd.GeoDataFrame(
        {
            "object_type": "buildings",
            "class_id": np.array(["101", "102", "103"])[block],
            "area": 63.0,
        },
        geometry=shapely.box(x, y, x + w, y + h),
        crs=4326,
    )
    minx, miny, maxx, maxy = feats.total_bounds
    xs, ys = np.linspace(minx, maxx, 5), np.linspace(miny, maxy, 5)
    tiles = gpd.GeoDataFrame(
        {
            "tile_id": [f"t{k:02d}" for k in range(16)],
            "status": ["OK"] * 5 + ["FAILED"] + ["OK"] * 4 + ["FAILED"] * 2 + ["OK"] * 4,
        },
        geometry=[
            shapely.box(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(4) for c in range(4)
        ],
        crs=4326,
    )
    aois = gpd.GeoDataFrame(
        {"name": ["city"]}, geometry=[shapely.box(*feats.total_bounds)], crs=4326
    )
    procs = pd.DataFrame({"processing_id": ["p1"], "cost": [100]})
    return MapflowResult(features=feats, tiles=tiles, aois=aois, processings=procs)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (``VmHWM``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # pragma: no cover - not Linux, or not allowed
        pass


def run_method(method: str, res: MapflowResult, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if method == "to_image":
        return res.to_image(out / "to_image.png", dpi=150, figsize=(8, 8))
    if method == "gdf_plot":
        path = out / "gdf_plot.png"
        fig, ax = plt.subplots(figsize=(8, 8), dpi=150, layout="constrained")
        res.features.to_crs(3857).plot(
            ax=ax, column="class_id", categorical=True, legend=True, cmap="tab10"
        )
        ax.set_axis_off()
        fig.savefig(path, dpi=150)
        plt.close(fig)
        return path
    if method == "explore_save":
        return deck_result(res).save(out / "explore.html")  # res.explore()'s map
    if method == "lonboard_viz":
        import lonboard

        path = out / "lonboard_viz.html"
        lonboard.viz(res.features).to_html(path)
        return path
    raise ValueError(method)


def worker(method: str, n: int, out: Path) -> dict:
    res = make_city(n)
    import matplotlib  # imports outside the timing, as in a session that has them

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401

    if method in INTERACTIVE:
        import lonboard  # noqa: F401
    reset_peak_rss()
    rss0 = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    path = run_method(method, res, out)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = peak_rss_mb()
    return {
        "method": method,
        "objects": len(res.features),
        "seconds": dt,
        "cpu_seconds": cpu,
        "peak_rss_mb": rss1,
        "added_rss_mb": rss1 - rss0,
        "bytes": path.stat().st_size,
        "path": str(path),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--methods", default=",".join(STATIC + INTERACTIVE))
    ap.add_argument("--repeat", type=int, default=2, help="runs per method, best kept")
    ap.add_argument("--out", type=Path, default=None, help="keep the images/pages here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="maps-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        print(json.dumps(worker(args.worker, args.objects, out)))
        return
    res: dict[str, dict] = {}
    for _ in range(args.repeat):
        for method in args.methods.split(","):
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", method,
                   "--objects", str(args.objects), "--out", str(out)]  # fmt: skip
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True)
                           .stdout.strip().splitlines()[-1])  # fmt: skip
            if method not in res or r["seconds"] < res[method]["seconds"]:
                res[method] = r
    print(
        f"maps benchmark — {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), {platform.machine()}, load average "
        f"{os.getloadavg()[0]:.1f}; {args.objects:,} objects; outputs in {out}\n"
    )
    for group, base in ((STATIC, "gdf_plot"), (INTERACTIVE, "lonboard_viz")):
        rows = [res[m] for m in group if m in res]
        if not rows:
            continue
        print("| method | wall s | CPU s | speed-up (wall) | speed-up (CPU) | peak RSS MB "
              "| RSS added MB | file MB |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            b = res.get(base, {"seconds": float("nan"), "cpu_seconds": float("nan")})
            print(f"| {LABELS[r['method']]} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                  f"{b['seconds'] / r['seconds']:.1f}× | "
                  f"{b['cpu_seconds'] / r['cpu_seconds']:.1f}× | {r['peak_rss_mb']:.0f} | "
                  f"{r['added_rss_mb']:.0f} | {r['bytes'] / 1e6:.1f} |")  # fmt: skip
        print()


if __name__ == "__main__":
    main()
