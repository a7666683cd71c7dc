"""Local Mapflow API simulator (think moto for AWS).

>>> from mapflow_geo.sim import serve
>>> with serve(aoi_area_limit_km2=25, processing_seconds=0) as sim:   # doctest: +SKIP
...     requests.get(sim.url + "/user/status", headers={"Authorization": "Basic " + sim.token})

An independent implementation of the service's rules: it imports nothing of the package
outside this sub-package; the one documented exception is the convenience
``Server.client()``, which lazily imports the client (``server._client_class``).
See ``README.md`` next to this file (its *Layout* section lists the modules).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any

from .base import ApiError
from .server import RequestRecord, Server
from .service import DEFAULT_TOKEN, Service, SimOptions

__all__ = [
    "serve",
    "Server",
    "SimOptions",
    "Service",
    "RequestRecord",
    "ApiError",
    "DEFAULT_TOKEN",
    "cli_main",
]


@contextlib.contextmanager
def serve(**options: Any) -> Iterator[Server]:
    """Run a simulator on a loopback port for the duration of the ``with`` block.

    Options: ``token``, ``aoi_area_limit_km2`` (25), ``max_aois_per_processing`` (10),
    ``credits``, ``billing_type`` ("CREDITS" | "AREA" | "NONE"), ``area_limit_km2``,
    ``processing_seconds`` (0), ``awaiting_seconds``, ``unprocessed_seconds``,
    ``fail_fraction``, ``seed``, ``density``, ``state_file``, ``faults``, ``clock``,
    ``memory_limit_bytes``, ``catalog_area_limit_km2``, ``models``, ``data_providers``,
    ``world`` (a dict of ``WorldOptions`` fields), ``basemap_vintage`` ("2024-06-01"),
    ``host`` ("127.0.0.1"), ``port`` (0 = a free port); the rest in README.md. The
    world's ground truth: ``server.truth(bbox, model, date=...)`` (README, *World model*).
    """
    server = Server(**options)
    server.start()
    try:
        yield server
    finally:
        server.close()


def cli_main(argv: list[str] | None = None) -> int:
    """``sim --port PORT --token TOKEN [...]``: serve until Ctrl-C."""
    ap = argparse.ArgumentParser(
        prog="mapflow-geo sim",
        description="Serve the local Mapflow API simulator until Ctrl-C (or SIGTERM); point "
        "MAPFLOW_API_URL at the printed URL and MAPFLOW_TOKEN at --token.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--port", type=int, default=8765, help="TCP port (0 picks a free port)")
    ap.add_argument(
        "--token",
        default=DEFAULT_TOKEN,
        help="the token it accepts (base64 of email:apikey)",
    )
    ap.add_argument(
        "--aoi-area-limit-km2", type=float, default=25.0, help="largest AOI of a processing, km²"
    )
    ap.add_argument(
        "--max-aois-per-processing", type=int, default=10, help="most AOIs in one processing"
    )
    ap.add_argument(
        "--processing-seconds",
        type=float,
        default=0.0,
        help="seconds each AOI attempt stays IN_PROGRESS (0: OK on first read)",
    )
    ap.add_argument(
        "--awaiting-seconds", type=float, default=0.0, help="seconds in AWAITING before IN_PROGRESS"
    )
    ap.add_argument(
        "--fail-fraction",
        type=float,
        default=0.0,
        help="probability that an AOI attempt fails, 0–1",
    )
    ap.add_argument(
        "--credits", type=int, default=100_000, help="the account's starting remainingCredits"
    )
    ap.add_argument(
        "--billing-type",
        default="CREDITS",
        choices=["CREDITS", "AREA", "NONE"],
        help="how the account pays",
    )
    ap.add_argument(
        "--seed", type=int, default=0, help="seed of the world, failure draws, catalog and faults"
    )
    ap.add_argument(
        "--state-file",
        default=None,
        help="keep the state in this file across restarts (None: in memory only)",
    )
    ap.add_argument("--basemap-vintage", default="2024-06-01", help="date of the basemaps' imagery")
    server = Server(**vars(ap.parse_args(argv)))  # each option is a Server keyword
    print(f"Mapflow simulator listening on {server.url}", flush=True)
    print(f"token: {server.token}", flush=True)
    print(f"admin: {server.base}/_sim/requests  {server.base}/_sim/state", flush=True)
    # Stop on Ctrl-C and on SIGTERM, even when started with SIGINT ignored (a background
    # job of a non-interactive shell, ``nohup``): Python then installs no handler itself.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0
