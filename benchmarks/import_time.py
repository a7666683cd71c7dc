"""Benchmark import cost: ``import mapflow_geo`` against ``import geopandas``, and
``mapflow-geo --help``.

Run: ``python benchmarks/import_time.py [--repeat 7] [--rev REV]``. Prints a markdown
table; ``--rev`` adds the package as of a git revision (exported to a temporary folder)
to the same rounds, for a before/after.

Each measurement is a fresh interpreter (nothing cached in ``sys.modules``; the files are
in the OS cache after the first round, as for a user's second import). The cases run
interleaved, ``--repeat`` rounds, and the medians are reported:

* **import geopandas**, **import mapflow_geo**, **import geopandas, mapflow_geo** (what
  the package adds to a session that has geopandas) — the import's own time
  (``time.perf_counter`` around the statement, interpreter start-up excluded), its CPU
  time, and the process's peak RSS after it (``resource.getrusage(RUSAGE_SELF)``);
* **mapflow-geo --help** — the wall and CPU time of the whole command, start-up
  included (the console script next to this Python, else ``python -m mapflow_geo.cli``),
  and its peak RSS (``os.wait4``).

CPU time is the steadier figure on a busy machine; the targets are about wall time on a
quiet one.

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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """\
import json, resource, time
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
import {module}
dt, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
print(json.dumps([dt, cpu, r1.ru_maxrss / 1024]))
"""


def _env(root: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{path}" if path else str(root))


def measure_import(module: str, root: Path = ROOT) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak MB of ``import module`` in a fresh interpreter
    (the package from ``root``)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module)],
        cwd=root,  # ``-c`` puts the working folder first on sys.path
        env=_env(root),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def help_command() -> list[str]:
    script = Path(sys.executable).with_name("mapflow-geo")
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-m", "mapflow_geo.cli", "--help"]


def measure_help(root: Path = ROOT) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak MB of ``mapflow-geo --help``, start-up included."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(help_command(), cwd=root, env=_env(root), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mapflow-geo --help exited with {os.waitstatus_to_exitcode(status)}")
    return dt, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def checkout(rev: str, into: Path) -> Path:
    """The package as of git revision ``rev``, exported under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "mapflow_geo"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="rounds (medians; default 7)")
    ap.add_argument("--rev", help="also measure the package as of this git revision")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "import geopandas": lambda: measure_import("geopandas"),
            "import mapflow_geo": lambda: measure_import("mapflow_geo"),
            "import geopandas, mapflow_geo": lambda: measure_import("geopandas, mapflow_geo"),
            "mapflow-geo --help": measure_help,
        }
        if args.rev:
            old = checkout(args.rev, Path(tmp))
            cases[f"import mapflow_geo @ {args.rev}"] = lambda: measure_import("mapflow_geo", old)
            cases[f"mapflow-geo --help @ {args.rev}"] = lambda: measure_help(old)
        for run in cases.values():  # one warm-up round: the files in the OS cache
            run()
        got: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
        for _ in range(args.repeat):
            for name, run in cases.items():
                got[name].append(run())
    med = {
        name: [statistics.median(col) for col in zip(*runs, strict=True)]
        for name, runs in got.items()
    }
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, medians of "
        f"{args.repeat} interleaved fresh processes\n"
    )
    print("| case | wall (s) | CPU (s) | peak RSS (MB) |")
    print("| --- | ---: | ---: | ---: |")
    for name, (s, cpu, mb) in med.items():
        print(f"| {name} | {s:.3f} | {cpu:.3f} | {mb:.0f} |")
    (gs, gc, gmb), (ms, mc, mmb) = med["import geopandas"], med["import mapflow_geo"]
    print()
    print(
        f"import mapflow_geo − import geopandas: {ms - gs:+.3f} s wall ({ms / gs:.2f}×), "
        f"{mc - gc:+.3f} s CPU ({mc / gc:.2f}×), {mmb - gmb:+.0f} MB ({mmb / gmb:.2f}×)"
        "  [target: ≤ +0.1 s, ≤ +10 MB]"
    )
    bs, bc, bmb = med["import geopandas, mapflow_geo"]
    print(
        f"import geopandas, mapflow_geo − import geopandas: {bs - gs:+.3f} s wall, "
        f"{bc - gc:+.3f} s CPU, {bmb - gmb:+.0f} MB  (what the package adds to a user's session)"
    )
    hs, hc, _ = med["mapflow-geo --help"]
    print(f"mapflow-geo --help: {hs:.3f} s wall, {hc:.3f} s CPU  [target: < 0.5 s]")


if __name__ == "__main__":
    main()
