"""Benchmark the result preview at 100,000 objects: HTML size and time to first render
in headless Chromium, against plain ``features.explore()`` of the same objects.

Run: ``python benchmarks/preview.py [--objects 100000]``. Needs what the browser tests
need (``scripts/setup.sh``: Debian's Chromium, Playwright, the npm web assets; no
internet: CDN assets come from ``tests/browser/assets``). Prints a Markdown table.

Synthetic result: the sample AOIs planned at 5 km² (all tiles OK), and ``--objects``
building-like polygons (rotated rectangles, 6–30 m, 5 vertices) in five classes, spread
over the AOIs. Variants, each saved to HTML and opened in a fresh page:

* **explore** — ``result.features.explore()``: geopandas' default (SVG, a tooltip with
  every column);
* **preview (simplify)** — ``result.explore(engine="folium")``: the default for large results
  (simplified at half a pixel at zoom 16, coordinates to 1e-6°, class + area tooltips,
  canvas renderer), with tiles, AOIs, legend and note;
* **preview (cluster)** — ``result.explore(engine="folium", large="cluster")``.

*Build s* is Python time to make and save the HTML. *First render s* is from navigation
start until the page's ``load`` event (folium adds all layers in inline scripts before
it) plus two animation frames (the first paint after that), measured the same way for
every variant.
"""

from __future__ import annotations

import argparse
import os
import platform
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
sys.path.insert(0, str(ROOT / "tests" / "browser"))

import mapflow_geo  # noqa: E402,F401
from mapflow_geo.results import MapflowResult  # noqa: E402


def synthetic_result(n: int, seed: int = 0) -> MapflowResult:
    gdf = gpd.read_file(ROOT / "data" / "sample_aoi.geojson")
    tiles = gdf.mapflow.plan(area_limit_km2=5, max_aois=10).reset_index(drop=True)
    tiles["processing_key"] = [f"p{int(p):05d}" for p in tiles["processing"]]
    tiles["processing_id"] = tiles["processing_key"]
    tiles["status"] = "OK"
    tiles["messages"] = [[] for _ in range(len(tiles))]
    tiles["cost"] = 10
    procs = pd.DataFrame({"key": tiles["processing_key"].unique()})
    procs["processing_id"] = procs["key"]
    procs["status"] = "OK"
    procs["estimate"] = procs["cost"] = 10
    aois = gdf.set_geometry(gdf.geometry)
    aois["row"] = aois.index
    rng = np.random.default_rng(seed)
    # points in the tiles, area-weighted
    areas = tiles["area_km2"].to_numpy()
    which = rng.choice(len(tiles), size=n, p=areas / areas.sum())
    pts = np.empty(n, dtype=object)
    for t in np.unique(which):
        idx = np.flatnonzero(which == t)
        geom = tiles.geometry.iloc[t]
        minx, miny, maxx, maxy = geom.bounds
        got = []
        while len(got) < len(idx):
            cand = shapely.points(
                rng.uniform(minx, maxx, 2 * len(idx)), rng.uniform(miny, maxy, 2 * len(idx))
            )
            got += list(cand[shapely.contains(geom, cand)])
        pts[idx] = got[: len(idx)]
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    w = rng.uniform(6, 30, n) / 111_320 / np.cos(np.radians(55.7))
    h = rng.uniform(6, 30, n) / 111_320
    a = rng.uniform(0, np.pi, n)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) / 2
    cx = corners[:, 0][None] * w[:, None]
    cy = corners[:, 1][None] * h[:, None]
    rx = x[:, None] + cx * np.cos(a)[:, None] - cy * np.sin(a)[:, None]
    ry = y[:, None] + cx * np.sin(a)[:, None] + cy * np.cos(a)[:, None]
    polys = shapely.polygons(np.stack([rx, ry], axis=-1))
    feats = gpd.GeoDataFrame(
        {
            "id": [f"{i:08x}-0000-5000-8000-{i:012x}" for i in range(n)],
            "area": np.round(w * h * 111_320**2 * np.cos(np.radians(55.7))).astype(int),
            "object_type": "buildings",
            "class_id": rng.choice(["101", "102", "103", "104", "105"], n).astype(object),
            "processing_date": "2026-11-22",
            "row": tiles["row"].to_numpy()[which],
            "tile_id": tiles["tile_id"].to_numpy()[which],
            "processing_id": tiles["processing_id"].to_numpy()[which],
        },
        geometry=polys,
        crs=4326,
    )
    return MapflowResult(features=feats, tiles=tiles, aois=aois, processings=procs)


def first_render(browser, html: Path, timeout_s: float) -> tuple[float, int, list[str]]:
    from offline import open_map

    page, session = open_map(browser, html)
    page.set_default_timeout(timeout_s * 1000)
    t0 = time.perf_counter()
    page.goto(session.url, wait_until="load", timeout=timeout_s * 1000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    dt = time.perf_counter() - t0
    paths = page.evaluate("() => document.querySelectorAll('.leaflet-overlay-pane path').length")
    errors = session.errors + [f"unexpected request {u}" for u in session.unexpected]
    page.close()
    return dt, paths, errors


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)

    from offline import launch, missing_requirements
    from playwright.sync_api import sync_playwright

    missing = missing_requirements()
    if missing:
        sys.exit("needs: " + "; ".join(missing))
    t = time.perf_counter()
    res = synthetic_result(args.objects)
    print(f"generated {len(res.features):,} objects in {time.perf_counter() - t:.1f} s")

    variants = {
        "explore": lambda: res.features.explore(),
        "preview (simplify)": lambda: res.explore(engine="folium"),
        "preview (cluster)": lambda: res.explore(engine="folium", large="cluster"),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = launch(p)
        try:
            for name, build in variants.items():
                t = time.perf_counter()
                path = Path(tmp) / (name.replace(" ", "_").strip("()") + ".html")
                build().save(path)
                build_s = time.perf_counter() - t
                size = path.stat().st_size
                render_s, paths, errors = first_render(browser, path, args.timeout)
                rows.append((name, size, build_s, render_s, paths, errors))
                print(
                    f"  {name}: {size / 1e6:.1f} MB, build {build_s:.1f} s, "
                    f"render {render_s:.1f} s, {paths} SVG paths, errors {errors[:2]}",
                    file=sys.stderr,
                )
        finally:
            browser.close()

    print(
        f"\n{args.objects:,} objects; {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), {platform.machine()}, headless Chromium\n"
    )
    print("| variant | HTML MB | build s | first render s | SVG paths | JS errors |")
    print("|---|---|---|---|---|---|")
    for name, size, build_s, render_s, paths, errors in rows:
        print(
            f"| {name} | {size / 1e6:.1f} | {build_s:.1f} | {render_s:.1f} | {paths:,} "
            f"| {len(errors)} |"
        )


if __name__ == "__main__":
    main()
