"""Fetching one result: download → Arrow → repaired geometry → provenance columns →
GeoParquet (atomic rename). The one way a run or a monitor stores what the service
produced; the caller journals what it returns.

A body that is not a readable FeatureCollection (cut short with a matching
``Content-Length``, malformed, an HTML page) is downloaded again after a full-jitter
backoff, up to :data:`RESULT_ATTEMPTS` times; then :class:`DamagedResultError` (with the
processing id and what was wrong) is raised and nothing is stored. Objects are repaired
once, here (:mod:`mapflow_geo.results.repair`). :func:`tile_for` is the one way a listed
AOI is matched to its plan tile."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from mapflow_geo.api import RunClient
from mapflow_geo.exceptions import DamagedResultError
from mapflow_geo.results import geoparquet_bytes
from mapflow_geo.results.io import constant_column, read_geojson_parts, release_memory
from mapflow_geo.results.repair import Repairs, repair_parts
from mapflow_geo.run._failpoints import failpoint
from mapflow_geo.run._files import atomic_write_bytes

log = logging.getLogger(__name__)

#: Downloads of one result before an unreadable body is given up on (for this run).
RESULT_ATTEMPTS = 5
#: Full-jitter backoff between them: ``uniform(0, min(cap, base · 2^attempt))`` seconds.
RESULT_BACKOFF_S = 1.0
RESULT_BACKOFF_CAP_S = 30.0
#: The download status of a result given up on (the tile's status in ``res.tiles``);
#: the next run in the same run dir fetches it again.
DAMAGED_RESULT = "DAMAGED_RESULT"


@dataclass(frozen=True)
class Stored:
    """What :func:`store_result` stored: objects, and objects repaired and dropped."""

    features: int
    repairs: Repairs = Repairs()


@dataclass(frozen=True)
class Failpoints:
    """Crash-test failpoint names of one fetch: after the download, before the rename."""

    downloaded: str = "mid_download"
    before_rename: str = "before_result_rename"


def store_result(
    client: RunClient,
    run_dir: Path,
    processing_id: str,
    query_aoi: str | None,
    rel: Path,
    columns: dict[str, Any],
    *,
    parsing: Any = None,
    durable: bool = False,
    failpoints: Failpoints = Failpoints(),
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = RESULT_ATTEMPTS,
) -> Stored:
    """Download one result (``query_aoi``: the AOI asked for, None for the whole
    processing), repair its objects, add ``columns`` (name → constant value) and store it
    at ``run_dir / rel``.

    ``parsing`` (a semaphore) bounds how many results are parsed at once: each is
    several times its GeoJSON in memory while parsed. ``durable=False`` stores without
    fsync (atomic rename only): the caller checks stored files on resume instead.
    Raises :class:`DamagedResultError` when every one of ``attempts`` downloads was
    unreadable (see the module)."""
    for attempt in range(attempts):
        data = client.processings.result_bytes(processing_id, query_aoi)
        failpoint(failpoints.downloaded)
        try:
            with parsing if parsing is not None else contextlib.nullcontext():
                payload, stored = _parse(data, columns)
            break
        except DamagedResultError as exc:
            del data
            if attempt + 1 >= attempts:
                raise DamagedResultError(
                    f"{exc.problem} ({attempts} downloads)",
                    processing_id=processing_id,
                    aoi_id=query_aoi,
                ) from None
            delay = random.uniform(0, min(RESULT_BACKOFF_CAP_S, RESULT_BACKOFF_S * 2**attempt))
            log.warning(
                "result of %s%s unreadable (%s); fetching it again in %.1fs",
                processing_id,
                f" AOI {query_aoi}" if query_aoi else "",
                exc.problem,
                delay,
            )
            sleep(delay)
    atomic_write_bytes(
        run_dir / rel, payload, failpoint_name=failpoints.before_rename, durable=durable
    )
    return stored


def _parse(data: bytes, columns: dict[str, Any]) -> tuple[bytes, Stored]:
    table, geoms = read_geojson_parts(data)  # Arrow and shapely: no pandas per result
    del data
    table, repairs = repair_parts(table, geoms)
    del geoms
    n = table.num_rows
    for name, value in columns.items():
        table = table.append_column(name, constant_column(value, n))
    payload = geoparquet_bytes(table)
    del table
    release_memory()
    return payload, Stored(n, repairs)


def tile_for(tiles: gpd.GeoDataFrame, aoi: Any) -> str | None:
    """The plan tile an AOI listed by the service belongs to (by a point inside it)."""
    geom = getattr(aoi, "geometry", None)
    if geom is None:
        return str(tiles["tile_id"].iloc[0]) if len(tiles) == 1 else None
    if isinstance(geom, dict):
        geom = shapely.geometry.shape(geom)
    pt = geom.representative_point()
    hit = tiles[shapely.intersects(tiles.geometry.values, pt.buffer(1e-9))]
    if len(hit) == 0:
        dist = shapely.distance(tiles.geometry.values, pt)
        return str(tiles["tile_id"].iloc[int(np.argmin(dist))])
    return str(hit["tile_id"].iloc[0])
