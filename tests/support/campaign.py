"""For the reliability campaigns: bounded or full counts, runs in child processes and
killing them at a chosen point of progress, comparing their objects."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

#: ``MAPFLOW_FULL=1`` (``make test-full``) runs the full campaigns; the default is bounded.
FULL = bool(os.environ.get("MAPFLOW_FULL"))

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}


def same_features(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    """Same merged objects (count, total area, and geometry by geometry)."""
    assert len(a) == len(b)
    np.testing.assert_allclose(
        shapely.area(a.geometry.values).sum(), shapely.area(b.geometry.values).sum(), rtol=1e-9
    )
    wa = sorted(shapely.to_wkb(shapely.normalize(a.geometry.values), hex=True))
    wb = sorted(shapely.to_wkb(shapely.normalize(b.geometry.values), hex=True))
    assert wa == wb


def no_temp_files(run_dir: Path) -> None:
    assert not list(Path(run_dir).rglob(".*.tmp")), list(Path(run_dir).rglob(".*.tmp"))


CHILD = textwrap.dedent(
    """
    import sys, json, geopandas as gpd, mapflow_geo
    gdf = gpd.read_parquet(sys.argv[1])
    opts = json.loads(sys.argv[3])
    try:
        res = gdf.mapflow.process("buildings", run_dir=sys.argv[2], progress=False, **opts)
    except mapflow_geo.exceptions.MapflowError as exc:
        print("ERROR", type(exc).__name__, exc, flush=True)
        sys.exit(3)
    print("DONE", len(res.features), flush=True)
    """
)


def child_cmd(gdf_path: Path, run_dir: Path, **opts) -> list[str]:
    import json

    return [sys.executable, "-c", CHILD, str(gdf_path), str(run_dir), json.dumps(opts)]


def child_run(tmp_path: Path, gdf, **opts) -> tuple[list[str], Path]:
    """A child run of ``gdf`` (saved as ``tmp_path/aoi.parquet``) into ``tmp_path/run``
    with ``opts``: ``(cmd, run_dir)``."""
    path, run_dir = tmp_path / "aoi.parquet", tmp_path / "run"
    gdf.to_parquet(path)
    return child_cmd(path, run_dir, **opts), run_dir


def start_child(cmd, server) -> subprocess.Popen:
    """The child run started against ``server``, its output piped as text."""
    return subprocess.Popen(
        cmd, env=child_env(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def seeded(default: int) -> random.Random:
    """The campaign's random draws: seeded by ``MAPFLOW_SOAK_SEED`` when set."""
    return random.Random(int(os.environ.get("MAPFLOW_SOAK_SEED", str(default))))


def child_env(server, failpoint: str | None = None, token: str | None = None) -> dict:
    env = dict(os.environ, MAPFLOW_API_URL=server.url, MAPFLOW_TOKEN=token or server.token)
    env.pop("MAPFLOW_GEO_FAILPOINT", None)
    if failpoint:
        env["MAPFLOW_GEO_FAILPOINT"] = failpoint
    return env


def run_child(cmd, env, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def progress(server) -> int:
    """Work the service has seen done: committed creates (charges) plus processings
    whose result it has served. A run of ``n`` processings is done at ``2 n``; below
    ``2 n - m`` it still has at least ``m`` requests to make, so it is surely running."""
    served = {
        r.path
        for r in server.requests
        if r.method == "GET" and r.path.endswith("/result") and r.status == 200
    }
    return len(server.charges) + len(served)


def kill_at(child: subprocess.Popen, server, threshold: int, timeout: float = 600) -> None:
    """SIGKILL ``child`` as soon as :func:`progress` reaches ``threshold`` (while it still
    has work to do) and assert that the kill landed: the child died of SIGKILL, not of its
    own accord."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while progress(server) < threshold:
        if child.poll() is not None:
            out, err = child.communicate()
            raise AssertionError(
                f"the child ended ({child.returncode}) before progress {threshold} "
                f"(at {progress(server)}): {out[-1000:]} {err[-2000:]}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"progress {threshold} not reached in {timeout:.0f} s")
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL, f"the kill did not land ({child.returncode})"


def kill_each(cmd, server, points) -> int:
    """A child run killed at each progress point in turn (see :func:`kill_at`); the number
    of kills."""
    for point in points:
        kill_at(start_child(cmd, server), server, point)
    return len(points)


def kill_thresholds(rng, n_procs: int, kills: int, margin: int = 10) -> list[int]:
    """``kills`` distinct progress points, increasing, spread over creates and downloads,
    each at least ``margin`` requests before the end of a run of ``n_procs``."""
    return sorted(rng.sample(range(3, 2 * n_procs - margin), kills))
