"""Benchmark result parsing: ``results.read_geojson`` vs ``json.load`` + ``from_features``.

Run: ``python benchmarks/parse.py [--features 300000] [--repeat 3]``
(quick mode: ``--features 20000 --repeat 1``). Prints a markdown table.

The input is a Mapflow-shaped buildings result written to a temporary file: rotated
rectangles (5 vertices each) with the properties the buildings model returns (``id``
UUID, ``area`` int, ``object_type``, ``class_id``, ``shape_type``,
``simplification_confidence_score``, ``processing_date``). Both methods read the file's
bytes inside the timed part and return a GeoDataFrame in EPSG:4326:

* **read_geojson** — ``mapflow_geo.results.read_geojson(data)`` (pyogrio → Arrow → shapely);
* **baseline** — ``json.loads(data)`` then ``gpd.GeoDataFrame.from_features(fc["features"],
  crs="EPSG:4326")``.

The two are run alternately ``--repeat`` times; the best time of each is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import date

import geopandas as gpd
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mapflow_geo.results import read_geojson  # noqa: E402


def make_result(n: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    cx = 30.0 + rng.uniform(0, 0.5, n)
    cy = 50.0 + rng.uniform(0, 0.5, n)
    w = rng.uniform(5e-5, 2e-4, n)
    h = rng.uniform(5e-5, 2e-4, n)
    a = rng.uniform(0, np.pi, n)
    dx = np.array([-1, 1, 1, -1, -1]) / 2
    dy = np.array([-1, -1, 1, 1, -1]) / 2
    xs = cx[:, None] + np.cos(a)[:, None] * w[:, None] * dx - np.sin(a)[:, None] * h[:, None] * dy
    ys = cy[:, None] + np.sin(a)[:, None] * w[:, None] * dx + np.cos(a)[:, None] * h[:, None] * dy
    coords = np.round(np.stack([xs, ys], axis=-1), 8).tolist()
    classes = rng.integers(101, 106, n).astype(str)
    score = np.round(rng.uniform(0, 1, n), 3).tolist()
    area = (w * h * 111_000 * 70_000).astype(int).tolist()
    feats = [
        {
            "type": "Feature",
            "properties": {
                "id": str(uuid.UUID(int=int(rng.integers(2**62)) + i)),
                "area": area[i],
                "object_type": "buildings",
                "class_id": classes[i],
                "shape_type": "rectangle",
                "simplification_confidence_score": score[i],
                "processing_date": "2026-11-22",
            },
            "geometry": {"type": "Polygon", "coordinates": [coords[i]]},
        }
        for i in range(n)
    ]
    return json.dumps({"type": "FeatureCollection", "features": feats}).encode()


def baseline(path: str) -> gpd.GeoDataFrame:
    with open(path, "rb") as fh:
        fc = json.load(fh)
    return gpd.GeoDataFrame.from_features(fc["features"], crs="EPSG:4326")


def ours(path: str) -> gpd.GeoDataFrame:
    with open(path, "rb") as fh:
        return read_geojson(fh.read())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    data = make_result(args.features)
    with tempfile.NamedTemporaryFile(suffix=".geojson", delete=False) as fh:
        fh.write(data)
        path = fh.name
    try:
        times: dict[str, list[float]] = {"read_geojson": [], "baseline": []}
        outs = {}
        for _ in range(args.repeat):
            for name, fn in (("read_geojson", ours), ("baseline", baseline)):
                t0 = time.perf_counter()
                outs[name] = fn(path)
                times[name].append(time.perf_counter() - t0)
    finally:
        os.unlink(path)
    a, b = outs["read_geojson"], outs["baseline"]
    assert len(a) == len(b) == args.features and a.crs == b.crs
    best = {k: min(v) for k, v in times.items()}
    print(
        f"parse benchmark — {date.today()}, {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{args.features} building features, {len(data) / 1e6:.0f} MB GeoJSON, "
        f"best of {args.repeat}\n"
    )
    print("| method | wall s | features/s |")
    print("| --- | ---: | ---: |")
    for k in ("read_geojson", "baseline"):
        print(f"| {k} | {best[k]:.2f} | {args.features / best[k]:,.0f} |")
    print(f"\nspeed-up: **{best['baseline'] / best['read_geojson']:.1f}×** (target ≥ 3×)")


if __name__ == "__main__":
    main()
