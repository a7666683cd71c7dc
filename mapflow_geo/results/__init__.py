"""Results: reading Mapflow's GeoJSON, stitching seams, stats, tables, grids and dask.

This layer knows nothing of HTTP or runs: it turns stored pieces into objects and
objects into tables. :class:`MapflowResult` is what a run returns.
"""

from mapflow_geo.results._result import MapflowResult
from mapflow_geo.results.io import (
    PROVENANCE,
    geoparquet_bytes,
    read_geojson,
    read_geojson_table,
    read_result_files,
    table_to_geodataframe,
)
from mapflow_geo.results.stitch import SEAM_EPS_DEG, seam_mask, stitch

__all__ = [
    "PROVENANCE",
    "SEAM_EPS_DEG",
    "MapflowResult",
    "geoparquet_bytes",
    "read_geojson",
    "read_geojson_table",
    "read_result_files",
    "seam_mask",
    "stitch",
    "table_to_geodataframe",
]
