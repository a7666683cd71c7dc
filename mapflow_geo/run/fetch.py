"""Fetching one result: download → Arrow → provenance columns → GeoParquet (atomic
rename). The one way a run or a monitor stores what the service produced; the caller
journals the record it returns."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mapflow_geo.results import geoparquet_bytes, read_geojson_table
from mapflow_geo.results.io import constant_column, release_memory
from mapflow_geo.run import journal as jr


@dataclass(frozen=True)
class Failpoints:
    """Crash-test failpoint names of one fetch: after the download, before the rename."""

    downloaded: str = "mid_download"
    before_rename: str = "before_result_rename"


def store_result(
    client: Any,
    run_dir: Path,
    processing_id: str,
    query_aoi: str | None,
    rel: Path,
    columns: dict[str, Any],
    *,
    parsing: Any = None,
    durable: bool = False,
    failpoints: Failpoints = Failpoints(),
) -> int:
    """Download one result (``query_aoi``: the AOI asked for, None for the whole
    processing), add ``columns`` (name → constant value) and store it at ``run_dir /
    rel``; return how many objects it holds.

    ``parsing`` (a semaphore) bounds how many results are parsed at once: each is
    several times its GeoJSON in memory while parsed. ``durable=False`` stores without
    fsync (atomic rename only): the caller checks stored files on resume instead."""
    data = client.processing_result_bytes(processing_id, query_aoi)
    jr.failpoint(failpoints.downloaded)
    with parsing if parsing is not None else contextlib.nullcontext():
        table = read_geojson_table(data)  # Arrow all the way: no pandas per result
        del data
        n = table.num_rows
        for name, value in columns.items():
            table = table.append_column(name, constant_column(value, n))
        payload = geoparquet_bytes(table)
        del table
        release_memory()
    jr.atomic_write_bytes(
        run_dir / rel, payload, failpoint_name=failpoints.before_rename, durable=durable
    )
    return n
