"""Results: reading Mapflow's GeoJSON, stitching seams, stats, tables, grids, dask, tiles.

This layer knows nothing of HTTP or runs: it turns stored pieces into objects and
objects into tables. :class:`MapflowResult` is what a run returns.
"""

from mapflow_geo.results._options import FeaturesTooLargeError, get_options, set_options
from mapflow_geo.results._result import MapflowResult
from mapflow_geo.results.dataset import DatasetInfo, read_dataset, write_dataset
from mapflow_geo.results.io import (
    PROVENANCE,
    geoparquet_bytes,
    read_geojson,
    read_geojson_table,
    read_result_files,
    table_to_geodataframe,
)
from mapflow_geo.results.stitch import SEAM_EPS_DEG, seam_mask, stitch
from mapflow_geo.results.tiles import TilesInfo, write_pmtiles

__all__ = [
    "PROVENANCE",
    "SEAM_EPS_DEG",
    "TilesInfo",
    "DatasetInfo",
    "FeaturesTooLargeError",
    "MapflowResult",
    "geoparquet_bytes",
    "get_options",
    "read_dataset",
    "read_geojson",
    "read_geojson_table",
    "read_result_files",
    "seam_mask",
    "set_options",
    "stitch",
    "table_to_geodataframe",
    "write_dataset",
    "write_pmtiles",
]
