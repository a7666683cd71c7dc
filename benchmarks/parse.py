"""Benchmark result parsing: ``results.read_geojson`` vs ``pyogrio.read_dataframe(use_arrow=True)``.

Run: ``python benchmarks/parse.py [--features 300000] [--repeat 3]``
(quick mode: ``--features 20000 --repeat 1``). Prints a markdown table and the ratio.

The input is a Mapflow-shaped buildings result written once to a temporary file: rotated
rectangles (5 vertices each) with the properties the buildings model returns (``id``
UUID, ``area`` int, ``object_type``, ``class_id``, ``shape_type``,
``simplification_confidence_score``, ``processing_date``). Each side runs in a process
of its own, the two alternating ``--repeat`` times; each process imports its library,
reads the file's bytes, parses a one-feature collection (so that lazy imports and
caches are warm for both) and then times one parse of the bytes into a GeoDataFrame in
EPSG:4326:

* **read_geojson** — ``mapflow_geo.results.read_geojson(data)``;
* **pyogrio** — ``pyogrio.read_dataframe(data, use_arrow=True)`` (GDAL's GeoJSON reader
  into Arrow, geometries decoded by shapely).

Reported per side: the median wall time, the median CPU time of the process during the
parse (all threads; less sensitive than wall time to other work on the machine), and
the median peak memory of the parse (peak resident size minus the size just before it).
Before timing, both frames are built once in this process and compared: same rows,
columns, geometries (exactly) and values.
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
import uuid
from datetime import date

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

SIDES = ("read_geojson", "pyogrio")
_WARM = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"id": "a", "area": 1, "processing_date": "2026-11-22"},
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        }
    ],
}


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


def parser(side: str):
    """The parse function of ``side`` (bytes → GeoDataFrame)."""
    if side == "read_geojson":
        from mapflow_geo.results import read_geojson

        return read_geojson
    import pyogrio

    return lambda data: pyogrio.read_dataframe(data, use_arrow=True)


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak() -> None:
    """Start the peak (``VmHWM``) from the size now: a child started by ``fork`` keeps
    its parent's peak otherwise (``ru_maxrss`` does, and no call resets it)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def run_side(side: str, path: str) -> dict:
    """One timed parse in this process (called in a child: ``--side``)."""
    parse = parser(side)
    parse(json.dumps(_WARM).encode())
    with open(path, "rb") as fh:
        data = fh.read()
    _reset_peak()
    before = _status_mb("VmRSS")
    c0, t0 = time.process_time(), time.perf_counter()
    frame = parse(data)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall": wall, "cpu": cpu, "peak_mb": _status_mb("VmHWM") - before, "rows": len(frame)}


def check_same(path: str) -> None:
    """Both sides' frames: same rows, columns, exact geometries and values."""
    import shapely

    with open(path, "rb") as fh:
        data = fh.read()
    ours, theirs = (parser(side)(data) for side in SIDES)
    assert len(ours) == len(theirs) and ours.crs == theirs.crs
    assert list(ours.columns) == list(theirs.columns), (list(ours.columns), list(theirs.columns))
    assert shapely.equals_exact(ours.geometry.values, theirs.geometry.values, 0).all()
    for col in ours.columns.drop("geometry"):
        assert ours[col].tolist() == theirs[col].tolist(), col


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        print(json.dumps(run_side(args.side, args.path)))
        return
    data = make_result(args.features)
    with tempfile.NamedTemporaryFile(suffix=".geojson", delete=False) as fh:
        fh.write(data)
        path = fh.name
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    try:
        check_same(path)
        for r in range(args.repeat):
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--side", side, "--path", path],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONPATH": ROOT},
                ).stdout
                runs[side].append(json.loads(out.strip().splitlines()[-1]))
    finally:
        os.unlink(path)
    assert all(r["rows"] == args.features for v in runs.values() for r in v)
    med = {
        side: {k: statistics.median(r[k] for r in v) for k in ("wall", "cpu", "peak_mb")}
        for side, v in runs.items()
    }
    load = os.getloadavg()[0]
    print(
        f"parse benchmark — {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (load {load:.1f}), {args.features:,} building features, "
        f"{len(data) / 1e6:.0f} MB GeoJSON, medians of {args.repeat} runs, each side in its "
        "own process, alternating\n"
    )
    print("| method | wall s | CPU s | peak MB | features/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for side in SIDES:
        m = med[side]
        print(
            f"| {side} | {m['wall']:.2f} | {m['cpu']:.2f} | {m['peak_mb']:.0f} | "
            f"{args.features / m['wall']:,.0f} |"
        )
    ours, base = med["read_geojson"], med["pyogrio"]
    print(
        f"\nspeed-up over pyogrio (use_arrow=True): **{base['wall'] / ours['wall']:.2f}×** wall, "
        f"{base['cpu'] / ours['cpu']:.2f}× CPU (target ≥ 2.5×); peak memory "
        f"{ours['peak_mb']:.0f} MB vs {base['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
