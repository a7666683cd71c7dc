"""Benchmark vector tiles: ``res.to_pmtiles`` against tippecanoe's own CLI on a GeoJSON
export, side by side, time and size.

Run: ``python benchmarks/pmtiles.py [--objects 1000000] [--repeat 3]``. Prints a
Markdown table.

Data: the synthetic city of ``benchmarks/maps.py`` (terraced rows of attached 9 × 7 m
buildings near 55.7° N in three classes) with the provenance columns, written once as
the stitched GeoParquet dataset (``res.to_parquet``), as a run leaves it. Both methods
start from that dataset and write a PMTiles archive at zooms 12–16 with the same
tippecanoe options (``--drop-densest-as-needed --extend-zooms-if-still-dropping
--generate-ids``):

* **res.to_pmtiles** — streams the dataset's record batches into a temporary FlatGeobuf
  and runs tippecanoe on it (no GeoDataFrame of the whole result): what
  ``res.to_pmtiles`` runs for a result whose dataset was written
  (``write_pmtiles(dataset_batches(dataset), path)``);
* **GeoJSON export + tippecanoe CLI** — what a user does by hand: the dataset read into a
  GeoDataFrame, ``to_file("objects.geojson")``, then ``tippecanoe -o … objects.geojson``.

Each method runs in its own process (its own peak memory: ``VmHWM`` of the Python
process; tippecanoe's own is not counted); the methods alternate, and the table gives the median of
``--repeat`` runs.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

METHODS = ("to_pmtiles", "cli")
LABELS = {"to_pmtiles": "`res.to_pmtiles`", "cli": "GeoJSON export + tippecanoe CLI"}
TIPPECANOE_OPTS = [
    "--minimum-zoom=12",
    "--maximum-zoom=16",
    "--layer=objects",
    "--generate-ids",
    "--drop-densest-as-needed",
    "--extend-zooms-if-still-dropping",
]


def prepare(folder: Path, n: int) -> Path:
    from maps import make_city

    res = make_city(n)
    f = res.features
    f["row"], f["tile_id"], f["processing_id"] = 0, "t00", "p1"
    f["imagery_date"] = "2024-06-01"
    res.features = f
    res.to_parquet(folder / "dataset")
    return folder / "dataset"


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(method: str, folder: Path) -> dict:
    from mapflow_geo.results.tiles import dataset_batches, tippecanoe_path, write_pmtiles

    dataset = folder / "dataset"
    out = folder / f"{method}.pmtiles"
    t0 = time.perf_counter()
    export = 0.0
    if method == "to_pmtiles":
        # what res.to_pmtiles(out) runs for a result whose dataset was written
        info = write_pmtiles(dataset_batches(dataset), out)
        objects = info.objects
    else:
        from mapflow_geo.results import read_dataset

        frame = read_dataset(dataset)
        frame.to_file(folder / "objects.geojson", driver="GeoJSON")
        export = time.perf_counter() - t0
        objects = len(frame)
        del frame
        cmd = [tippecanoe_path(), "-o", str(out), "--force", "--quiet", *TIPPECANOE_OPTS]
        subprocess.run([*cmd, str(folder / "objects.geojson")], check=True)
        os.remove(folder / "objects.geojson")
    dt = time.perf_counter() - t0
    return {
        "method": method,
        "objects": objects,
        "seconds": dt,
        "export_seconds": export,
        "peak_rss_mb": peak_rss_mb(),
        "bytes": out.stat().st_size,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per method (median kept)")
    ap.add_argument("--folder", type=Path, default=None)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder)))
        return
    folder = args.folder or Path(tempfile.mkdtemp(prefix="pmtiles-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "dataset").exists():
        prepare(folder, args.objects)
    runs: dict[str, list[dict]] = {m: [] for m in METHODS}
    for _ in range(args.repeat):
        for method in METHODS:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", method,
                   "--folder", str(folder)]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            runs[method].append(r)
            print(json.dumps(r), file=sys.stderr)
    print(
        f"PMTiles benchmark — {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), {platform.machine()}, load average "
        f"{os.getloadavg()[0]:.1f}; {args.objects:,} objects, zooms 12–16; "
        f"median of {args.repeat} interleaved runs\n"
    )
    print("| method | wall s (median) | runs s | of which export s | archive MB "
          "| peak RSS MB (Python) |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|")
    for method in METHODS:
        rs = runs[method]
        med = statistics.median(r["seconds"] for r in rs)
        each = ", ".join(f"{r['seconds']:.1f}" for r in rs)
        print(
            f"| {LABELS[method]} | {med:.1f} | "
            f"{each} | "
            f"{statistics.median(r['export_seconds'] for r in rs):.1f} | "
            f"{rs[-1]['bytes'] / 1e6:.1f} | "
            f"{max(r['peak_rss_mb'] for r in rs):.0f} |"
        )


if __name__ == "__main__":
    main()
