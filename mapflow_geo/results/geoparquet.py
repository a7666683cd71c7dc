"""GeoParquet, written and read in one place: schema, covering bbox, metadata, writer, reader.

Every GeoParquet file the package writes comes from here: a run's stored pieces
(:func:`geoparquet_bytes`), the stitched dataset's parts (:class:`PartWriter`, used by
:mod:`~mapflow_geo.results.dataset`) and the change dataset
(:func:`~mapflow_geo.results.changes.changes_to_parquet`). The parts are GeoParquet 1.1:
WKB geometry in EPSG:4326, a ``bbox`` struct column declared as the geometry's
``covering``, rows in Hilbert order of their envelope's centre, row groups of
:data:`ROW_GROUP_ROWS` objects compressed with zstd — so a reader that filters on the
``bbox`` column (``geopandas.read_parquet(bbox=)``, DuckDB, ``pyarrow.dataset``) skips
the row groups whose statistics lie outside. Extra key-value metadata (the dataset's
``mapflow_geo`` description) goes beside ``geo``. The reader side reads any GeoParquet
that ``pyarrow.dataset`` opens (WKB, or geoarrow encodings through geopandas; any CRS).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from mapflow_geo.results.columns import public_schema, public_table

#: The GeoParquet version of dataset parts.
GEOPARQUET_VERSION = "1.1.0"
#: The covering column: per object ``xmin``, ``ymin``, ``xmax``, ``ymax`` (float64).
BBOX = "bbox"
BBOX_TYPE = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
#: Objects per row group: small enough for a bbox filter to skip most of a country,
#: large enough for zstd and for readers' per-group overhead.
ROW_GROUP_ROWS = 32_768
#: Compression of dataset parts.
COMPRESSION = "zstd"
#: The key of the dataset's own description (data dictionary, provenance), beside ``geo``.
DESCRIPTION_KEY = "mapflow_geo"
_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


# -- the CRS ---------------------------------------------------------------------------
@functools.cache
def wgs84() -> Any:
    """EPSG:4326 as a :class:`pyproj.CRS` (built once per process)."""
    import pyproj

    return pyproj.CRS.from_epsg(4326)


@functools.cache
def wgs84_projjson() -> dict:
    """EPSG:4326 as PROJJSON, as GeoParquet's ``crs`` holds it."""
    return wgs84().to_json_dict()


def crs_of(crs: Any) -> Any:
    """A GeoParquet ``crs`` member (PROJJSON or a string) as a :class:`pyproj.CRS`."""
    from pyproj import CRS

    return CRS.from_json_dict(crs) if isinstance(crs, dict) else CRS.from_user_input(crs)


def is_wgs84(crs: Any) -> bool:
    """Whether a GeoParquet ``crs`` member is longitude/latitude on WGS84."""
    if crs in ("OGC:CRS84", "EPSG:4326"):
        return True
    c = crs_of(crs)
    return c.equals("EPSG:4326", ignore_axis_order=True) or c.equals("OGC:CRS84")


# -- metadata --------------------------------------------------------------------------
def geo_metadata(
    types: Sequence[str] = (),
    bounds: Sequence[float] | None = None,
    *,
    covering: bool = True,
    version: str = GEOPARQUET_VERSION,
) -> dict:
    """The ``geo`` metadata of a WKB ``geometry`` column in EPSG:4326: geometry types,
    ``bbox`` when the bounds are finite, the ``bbox`` column as its covering."""
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": sorted(types),
        "crs": wgs84_projjson(),
    }
    if covering:
        column["covering"] = {"bbox": {k: [BBOX, k] for k in ("xmin", "ymin", "xmax", "ymax")}}
    if bounds is not None and all(np.isfinite(bounds)):
        column["bbox"] = [float(v) for v in bounds]
    return {"version": version, "primary_column": "geometry", "columns": {"geometry": column}}


def read_metadata(path: str | os.PathLike, key: str = "geo") -> dict:
    """The JSON metadata ``key`` of a Parquet file or dataset folder (its
    ``_common_metadata``, else its first part); ``{}`` when absent."""
    path = Path(path)
    if path.is_dir():
        common = path / "_common_metadata"
        path = common if common.exists() else min(path.glob("*.parquet"))
    return metadata_of(pq.read_schema(path).metadata, key)


def metadata_of(meta: Mapping[bytes, bytes] | None, key: str = "geo") -> dict:
    """The JSON value of ``key`` in Arrow schema metadata; ``{}`` when absent."""
    raw = (meta or {}).get(key.encode())
    return json.loads(raw) if raw else {}


def with_bbox(table: pa.Table) -> tuple[pa.Table, set[str]]:
    """``table`` (WKB ``geometry``) with its ``bbox`` covering column; the geometry
    types it holds."""
    geoms = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False))
    b = shapely.bounds(geoms)
    kinds = {_TYPE_NAMES.get(int(k), "Unknown") for k in np.unique(shapely.get_type_id(geoms))}
    del geoms
    bbox = pa.StructArray.from_arrays([pa.array(b[:, i]) for i in range(4)], fields=list(BBOX_TYPE))
    return table.append_column(pa.field(BBOX, BBOX_TYPE), bbox), kinds - {"Unknown"}


def frame_table(frame: gpd.GeoDataFrame) -> pa.Table:
    """A GeoDataFrame as an Arrow table with a WKB ``geometry`` column last."""
    df = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    wkb = shapely.to_wkb(np.asarray(frame.geometry.values))
    return table.append_column("geometry", pa.array(wkb, pa.binary()))


def hilbert_order(bbox: pa.ChunkedArray | pa.Array, bounds: Sequence[float]) -> np.ndarray:
    """Positions of objects in Hilbert order of their envelope's centre within
    ``bounds`` (geopandas' :meth:`~geopandas.GeoSeries.hilbert_distance`, level 16)."""
    xy = [pc.struct_field(bbox, k).to_numpy() for k in ("xmin", "ymin", "xmax", "ymax")]
    n = len(xy[0])
    x0, y0, x1, y1 = (float(v) for v in bounds)
    if n < 2 or not np.all(np.isfinite([x0, y0, x1, y1])) or x0 == x1 or y0 == y1:
        return np.arange(n)
    centres = gpd.GeoSeries(shapely.points((xy[0] + xy[2]) / 2, (xy[1] + xy[3]) / 2))
    key = centres.hilbert_distance(total_bounds=(x0, y0, x1, y1)).to_numpy()
    return np.argsort(key, kind="stable")


# -- the writer ------------------------------------------------------------------------
class PartWriter:
    """One GeoParquet file written as its objects come: they are spilled to a
    memory-mapped Arrow file, then written in Hilbert order of their envelopes (row
    groups of :data:`ROW_GROUP_ROWS`, zstd) with the ``geo`` metadata (own bbox and
    geometry types) and ``description`` (as :data:`DESCRIPTION_KEY`, with the earliest
    and latest value of each date column of the file as ``dates``), and renamed into
    place. Memory: one row group. The Arrow schema is not stored: readers take the
    ``geo`` metadata as the schema's, as GeoParquet asks.

    ``public``: names and dates as users see them
    (:func:`~mapflow_geo.results.columns.public_table`).
    """

    def __init__(
        self,
        out: str | os.PathLike,
        schema: pa.Schema,
        *,
        public: bool = True,
        description: Mapping[str, Any] | None = None,
    ) -> None:
        self.out, self.tmp, self.spill = str(out), f"{out}.tmp", f"{out}.unsorted.arrow"
        self.public = public
        schema = schema.remove_metadata()
        self.schema = public_schema(schema) if public else schema
        self.description = description
        self.dates: dict[str, list] = {}
        self.sink = pa.OSFile(self.spill, "wb")
        self.ipc = pa.ipc.new_file(self.sink, self.schema)
        self.lo, self.hi = np.full(2, np.inf), np.full(2, -np.inf)
        self.types: set[str] = set()
        self.rows = 0

    def add(self, table: pa.Table, kinds: set[str]) -> None:
        """Append objects (with their ``bbox`` column) of the given geometry types."""
        if table.num_rows == 0:
            return
        table = public_table(table) if self.public else table
        bbox = table[BBOX]
        lo = [pc.min(pc.struct_field(bbox, k)).as_py() for k in ("xmin", "ymin")]
        hi = [pc.max(pc.struct_field(bbox, k)).as_py() for k in ("xmax", "ymax")]
        self.lo, self.hi = np.fmin(self.lo, lo), np.fmax(self.hi, hi)
        self.types |= kinds
        self._dates(table)
        self.ipc.write_table(table.select(self.schema.names).cast(self.schema))
        self.rows += table.num_rows

    def _dates(self, table: pa.Table) -> None:
        for f in table.schema:
            if not (pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)):
                continue
            mm = pc.min_max(table[f.name])
            lo, hi = (_iso(mm[k].as_py()) for k in ("min", "max"))
            old = self.dates.get(f.name, [None, None])
            self.dates[f.name] = [least(min, old[0], lo), least(max, old[1], hi)]

    @property
    def bounds(self) -> list[float]:
        bounds = [float(v) for v in (*self.lo, *self.hi)]
        return bounds if np.all(np.isfinite(bounds)) else [np.nan] * 4

    def close(self) -> dict:
        """Write the file; returns its ``bounds``, geometry ``types`` and ``rows``."""
        self.ipc.close()
        self.sink.close()
        bounds = self.bounds
        meta = {"geo": json.dumps(geo_metadata(sorted(self.types), bounds))}
        if self.description is not None:
            meta[DESCRIPTION_KEY] = json.dumps({**self.description, "dates": self.dates})
        writer = pq.ParquetWriter(
            self.tmp, self.schema, store_schema=False, compression=COMPRESSION
        )
        try:
            with pa.memory_map(self.spill) as source:
                table = pa.ipc.open_file(source).read_all()
                order = hilbert_order(table[BBOX], bounds)
                for start in range(0, len(order), ROW_GROUP_ROWS):
                    rows = pa.array(order[start : start + ROW_GROUP_ROWS])
                    writer.write_table(table.take(rows), row_group_size=ROW_GROUP_ROWS)
                del table
            writer.add_key_value_metadata(meta)
        finally:
            writer.close()
            os.remove(self.spill)
        os.replace(self.tmp, self.out)
        return {
            "bounds": bounds,
            "types": sorted(self.types),
            "rows": self.rows,
            "dates": self.dates,
        }

    def abort(self) -> None:
        """Give up: nothing is left behind."""
        with contextlib.suppress(Exception):
            self.ipc.close()
        self.sink.close()
        for path in (self.spill, self.tmp):
            with contextlib.suppress(OSError):
                os.remove(path)


def write_part(
    table: pa.Table,
    out: str | os.PathLike,
    types: set[str],
    *,
    public: bool = True,
    description: Mapping[str, Any] | None = None,
) -> dict:
    """A GeoParquet file from one table (with its ``bbox`` column), as :class:`PartWriter`."""
    writer = PartWriter(out, table.schema, public=public, description=description)
    try:
        writer.add(table, types)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def write_summary(
    out: Path,
    parts: Sequence[str],
    schema: pa.Schema,
    types: Sequence[str],
    bounds: Sequence[float],
    description: Mapping[str, Any] | None = None,
) -> None:
    """``_common_metadata`` (the parts' schema with the whole dataset's ``geo`` and
    ``description``) and ``_metadata`` (every part's row groups), as ``pyarrow.dataset``,
    dask and Spark read them."""
    # the parts' own schema (as read back: no stored Arrow schema), with the whole's geo
    full = pq.read_schema(parts[0]) if parts else schema.append(pa.field(BBOX, BBOX_TYPE))
    meta = {b"geo": json.dumps(geo_metadata(types, bounds)).encode()}
    if description is not None:
        meta[DESCRIPTION_KEY.encode()] = json.dumps(description).encode()
    pq.write_metadata(full.with_metadata(meta), out / "_common_metadata")
    collected = None
    for p in parts:
        md = pq.read_metadata(p)
        md.set_file_path(Path(p).name)
        if collected is None:
            collected = md
        else:
            collected.append_row_groups(md)
    if collected is not None:
        collected.write_metadata_file(str(out / "_metadata"))


def geoparquet_bytes(table: pa.Table) -> bytes:
    """Serialise an Arrow table with a WKB ``geometry`` column as GeoParquet 1.0
    (EPSG:4326), readable by ``geopandas.read_parquet`` (a run's stored pieces)."""
    geo = geo_metadata(covering=False, version="1.0.0")
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    return buf.getvalue().to_pybytes()


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def least(fn: Any, a: str | None, b: str | None) -> str | None:
    """``fn`` (min or max) of the values that are not None; None when neither is."""
    values = [v for v in (a, b) if v is not None]
    return fn(values) if values else None


# -- the reader ------------------------------------------------------------------------
def bbox_filter(bbox: Sequence[float]) -> Any:
    """A ``pyarrow.dataset`` filter keeping objects whose ``bbox`` meets
    ``(xmin, ymin, xmax, ymax)`` (row groups outside are skipped on their statistics)."""
    import pyarrow.dataset as ds

    xmin, ymin, xmax, ymax = bbox
    return (
        (ds.field(BBOX, "xmin") <= xmax)
        & (ds.field(BBOX, "xmax") >= xmin)
        & (ds.field(BBOX, "ymin") <= ymax)
        & (ds.field(BBOX, "ymax") >= ymin)
    )


def iter_geoparquet(
    source: str | os.PathLike | gpd.GeoDataFrame,
    columns: Sequence[str],
    batch_rows: int = 65_536,
) -> Iterator[tuple[int, pd.DataFrame, np.ndarray]]:
    """Any GeoParquet file or directory (or a GeoDataFrame) in batches: (first input
    position, the ``columns`` it has, geometries in EPSG:4326)."""
    if isinstance(source, gpd.GeoDataFrame):
        for start in range(0, len(source), batch_rows):
            part = source.iloc[start : start + batch_rows]
            yield start, part, part.geometry.values
        return
    import pyarrow.dataset as pads

    dataset = pads.dataset(str(source), format="parquet", partitioning="hive")
    geo = metadata_of(dataset.schema.metadata)
    column = geo.get("primary_column", "geometry")
    info = geo.get("columns", {}).get(column, {})
    crs = info.get("crs", "OGC:CRS84")
    props = [c for c in columns if c in dataset.schema.names]
    offset = 0
    if info.get("encoding", "WKB").upper() != "WKB":
        # geoarrow-encoded files: geopandas decodes them, one file at a time
        for file in sorted(dataset.files):
            gdf = gpd.read_parquet(file)
            gdf = gdf.to_crs(4326) if gdf.crs is not None and not gdf.crs.equals(4326) else gdf
            yield offset, pd.DataFrame(gdf.drop(columns=gdf.geometry.name)), gdf.geometry.values
            offset += len(gdf)
        return
    for batch in dataset.to_batches(columns=[*props, column], batch_size=batch_rows):
        geoms = shapely.from_wkb(batch.column(column).to_numpy(zero_copy_only=False))
        if crs is not None and not is_wgs84(crs):
            geoms = gpd.GeoSeries(geoms, crs=crs_of(crs)).to_crs(4326).values
        frame = batch.select(props).to_pandas() if props else pd.DataFrame(index=range(len(batch)))
        yield offset, frame, np.asarray(geoms, dtype=object)
        offset += batch.num_rows
