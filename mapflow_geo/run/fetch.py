"""Fetching one result: download → Arrow → repaired geometry → provenance columns →
GeoParquet (atomic rename). The one way a run or a monitor stores what the service
produced; the caller journals what it returns.

A body that is not a readable FeatureCollection (cut short with a matching
``Content-Length``, malformed, an HTML page) is downloaded again after a full-jitter
backoff, up to :data:`RESULT_ATTEMPTS` times; then :class:`DamagedResultError` (with the
processing id and what was wrong) is raised and nothing is stored. Objects are repaired
once, here (:mod:`mapflow_geo.results.repair`). :func:`tile_for` is the one way a listed
AOI is matched to its plan tile; :func:`store_result_by_tile` stores a whole result of
several AOIs per tile (each object with the tile holding it: :func:`tiles_of`), for a
service that does not serve results per AOI."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import shapely

from mapflow_geo.api import RunClient
from mapflow_geo.exceptions import DamagedResultError
from mapflow_geo.results import geoparquet_bytes
from mapflow_geo.results.io import (
    Piece,
    constant_column,
    kept_piece,
    read_geojson_parts,
    release_memory,
)
from mapflow_geo.results.repair import Repairs, repair_rows
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
    """What :func:`store_result` stored: objects, and objects repaired and dropped; with
    ``keep``, the stored objects as decoded (``piece``)."""

    features: int
    repairs: Repairs = Repairs()
    piece: Piece | None = field(default=None, repr=False, compare=False)


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
    downloads: Any = None,
    durable: bool = False,
    keep: bool = False,
    failpoints: Failpoints = Failpoints(),
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = RESULT_ATTEMPTS,
) -> Stored:
    """Download one result (``query_aoi``: the AOI asked for, None for the whole
    processing), repair its objects, add ``columns`` (name → constant value) and store it
    at ``run_dir / rel``.

    ``parsing`` (a semaphore) bounds how many results are parsed at once: each is
    several times its GeoJSON in memory while parsed; ``downloads`` (a semaphore) bounds
    how many are downloaded at once. ``durable=False`` stores without fsync (atomic
    rename only): the caller checks stored files on resume instead. ``keep``: return the
    stored objects as decoded too (:attr:`Stored.piece`), the frame of the file. Raises
    :class:`DamagedResultError` when every one of ``attempts`` downloads was unreadable
    (see the module)."""
    payload, stored = _download_parsed(
        client,
        processing_id,
        query_aoi,
        lambda data: _parse(data, columns, keep),
        parsing=parsing,
        downloads=downloads,
        failpoints=failpoints,
        sleep=sleep,
        attempts=attempts,
    )
    atomic_write_bytes(
        run_dir / rel, payload, failpoint_name=failpoints.before_rename, durable=durable
    )
    return stored


def store_result_by_tile(
    client: RunClient,
    run_dir: Path,
    processing_id: str,
    tiles: gpd.GeoDataFrame,
    keep_tiles: set[str],
    rel_of: Callable[[str], Path],
    columns: dict[str, Any],
    *,
    parsing: Any = None,
    downloads: Any = None,
    keep: bool = False,
    failpoints: Failpoints = Failpoints(),
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = RESULT_ATTEMPTS,
) -> dict[str, Stored]:
    """Download the whole result of a processing of several AOIs in one request and
    store it per plan tile: each object goes with the tile of ``tiles`` (the
    processing's: ``tile_id``, ``row``, geometry) holding it (:func:`tiles_of`), and the
    tiles in ``keep_tiles`` are stored at ``run_dir / rel_of(tile_id)``, with ``columns`` added
    to every file. For a service that does not serve results per AOI. Returns tile id →
    what was stored (every kept tile, empty ones included; ``keep`` as in
    :func:`store_result`)."""
    parts = _download_parsed(
        client,
        processing_id,
        None,
        lambda data: _parse_by_tile(data, tiles, keep_tiles, columns, keep),
        parsing=parsing,
        downloads=downloads,
        failpoints=failpoints,
        sleep=sleep,
        attempts=attempts,
    )
    out = {}
    for tile_id, (payload, stored) in parts.items():
        atomic_write_bytes(
            run_dir / rel_of(tile_id), payload, failpoint_name=failpoints.before_rename
        )
        out[tile_id] = stored
    return out


def _download_parsed(
    client: RunClient,
    processing_id: str,
    query_aoi: str | None,
    parse: Callable[[bytes], Any],
    *,
    parsing: Any,
    downloads: Any,
    failpoints: Failpoints,
    sleep: Callable[[float], None],
    attempts: int,
) -> Any:
    """``parse`` of a downloaded result, downloading again after a backoff while the
    body is unreadable (see the module)."""
    for attempt in range(attempts):
        with downloads if downloads is not None else contextlib.nullcontext():
            data = client.processings.result_bytes(processing_id, query_aoi)
        failpoint(failpoints.downloaded)
        try:
            with parsing if parsing is not None else contextlib.nullcontext():
                return parse(data)
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
    raise ValueError("attempts must be at least 1")  # pragma: no cover


def _parse(data: bytes, columns: dict[str, Any], keep: bool) -> tuple[bytes, Stored]:
    table, geoms = read_geojson_parts(data)  # Arrow and shapely: no pandas per result
    del data
    table, geoms, repairs = repair_rows(table, geoms)
    out = _encode(table, geoms, columns, repairs, keep)
    del table, geoms
    release_memory()
    return out


def _encode(
    table: Any, geoms: np.ndarray, columns: dict[str, Any], repairs: Repairs, keep: bool
) -> tuple[bytes, Stored]:
    """The file's bytes (properties, WKB geometry, then ``columns``) and what it holds."""
    n = table.num_rows
    table = table.append_column("geometry", pa.array(shapely.to_wkb(geoms), pa.binary()))
    for name, value in columns.items():
        table = table.append_column(name, constant_column(value, n))
    piece = kept_piece(table, geoms) if keep and n else None
    return geoparquet_bytes(table), Stored(n, repairs, piece)


def _parse_by_tile(
    data: bytes,
    tiles: gpd.GeoDataFrame,
    keep_tiles: set[str],
    columns: dict[str, Any],
    keep: bool,
) -> dict[str, tuple[bytes, Stored]]:
    table, geoms = read_geojson_parts(data)
    del data
    table, geoms, repairs = repair_rows(table, geoms)
    at = tiles_of(tiles, geoms)
    out = {}
    for i, (tile_id, row) in enumerate(zip(tiles["tile_id"], tiles["row"], strict=True)):
        tile_id = str(tile_id)
        if tile_id not in keep_tiles:
            continue
        mine = at == i
        # the counts of repaired and dropped objects go with the first tile stored
        out[tile_id] = _encode(table.filter(mine), geoms[mine],
                               {"row": row, "tile_id": tile_id, **columns},
                               Repairs() if out else repairs, keep)  # fmt: skip
    del table, geoms
    release_memory()
    return out


def tiles_of(tiles: gpd.GeoDataFrame, geoms: np.ndarray) -> np.ndarray:
    """The position in ``tiles`` of the tile holding each geometry (by a point inside
    it; the nearest tile when none holds it), as :func:`tile_for` matches an AOI."""
    if len(geoms) == 0:
        return np.zeros(0, dtype=np.intp)
    pts = shapely.point_on_surface(geoms)
    tree = shapely.STRtree(tiles.geometry.values)
    at = np.full(len(geoms), -1, dtype=np.intp)
    src, hit = tree.query(pts, predicate="intersects")  # in the tree's order
    by_tile = np.argsort(hit)  # in plan order: each point's first tile comes first
    held, first = np.unique(src[by_tile], return_index=True)
    at[held] = hit[by_tile][first]  # the first tile holding each point
    missing = np.flatnonzero(at < 0)
    if len(missing):
        at[missing] = tree.query_nearest(pts[missing], all_matches=False)[1]
    return at


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
