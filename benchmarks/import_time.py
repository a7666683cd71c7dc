"""Benchmark import cost: ``import mapflow_geo`` against ``import geopandas``, and
``mapflow-geo --help``.

Run: ``python benchmarks/import_time.py [--repeat 7]``. Prints a markdown table.

Each measurement is a fresh interpreter (nothing cached in ``sys.modules``; the files are
in the OS cache after the first round, as for a user's second import). The cases run
interleaved, ``--repeat`` rounds, and the medians are reported:

* **import geopandas**, **import mapflow_geo** — the import's own time
  (``time.perf_counter`` around the statement, interpreter start-up excluded) and the
  process's peak RSS after it (``resource.getrusage(RUSAGE_SELF).ru_maxrss``);
* **mapflow-geo --help** — the wall time of the whole command, start-up included (the
  console script next to this Python, else ``python -m mapflow_geo.cli``), and its peak
  RSS (``os.wait4``).

The targets: ``import mapflow_geo`` within 0.1 s and 10 MB of ``import geopandas``;
``mapflow-geo --help`` under 0.5 s.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """\
import json, resource, time
t0 = time.perf_counter()
import {module}
dt = time.perf_counter() - t0
print(json.dumps({{"s": dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))


def measure_import(module: str) -> tuple[float, float]:
    """Seconds and peak MB of ``import module`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module)],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return got["s"], got["rss_mb"]


def help_command() -> list[str]:
    script = Path(sys.executable).with_name("mapflow-geo")
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-m", "mapflow_geo.cli", "--help"]


def measure_help() -> tuple[float, float]:
    """Wall seconds and peak MB of ``mapflow-geo --help``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(help_command(), env=_env(), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"mapflow-geo --help exited with {proc.returncode}")
    return dt, usage.ru_maxrss / 1024


CASES = {
    "import geopandas": lambda: measure_import("geopandas"),
    "import mapflow_geo": lambda: measure_import("mapflow_geo"),
    "mapflow-geo --help": measure_help,
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="rounds (medians; default 7)")
    args = ap.parse_args(argv)
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
    for name in CASES:  # one warm-up round: the files in the OS cache
        CASES[name]()
    for _ in range(args.repeat):
        for name, run in CASES.items():
            got[name].append(run())
    med = {
        name: (statistics.median(s for s, _ in runs), statistics.median(m for _, m in runs))
        for name, runs in got.items()
    }
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, medians of {args.repeat} interleaved fresh processes\n"
    )
    print("| case | time (s) | peak RSS (MB) |")
    print("| --- | ---: | ---: |")
    for name, (s, mb) in med.items():
        print(f"| {name} | {s:.3f} | {mb:.0f} |")
    (gs, gmb), (ms, mmb) = med["import geopandas"], med["import mapflow_geo"]
    hs = med["mapflow-geo --help"][0]
    print()
    print(
        f"import mapflow_geo − import geopandas: {ms - gs:+.3f} s ({ms / gs:.2f}×), "
        f"{mmb - gmb:+.0f} MB ({mmb / gmb:.2f}×)  [target: ≤ +0.1 s, ≤ +10 MB]"
    )
    print(f"mapflow-geo --help: {hs:.3f} s  [target: < 0.5 s]")


if __name__ == "__main__":
    main()
