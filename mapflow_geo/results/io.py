"""Reading Mapflow results: GeoJSON → Arrow → GeoDataFrame, and the run's stored files.

Parsing goes into Arrow with no Python loop over features: uniform collections (one
geometry type, flat properties: the usual Mapflow result) through Arrow's JSON reader and
shapely's ``from_ragged_array``, anything else through pyogrio (GDAL's GeoJSON reader).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import shapely

from mapflow_geo.exceptions import DamagedResultError
from mapflow_geo.results.columns import CATEGORIES, as_dictionaries, frame_dates, sort_categories
from mapflow_geo.results.geoparquet import geoparquet_bytes, wgs84

__all__ = [
    "FILE_COLUMNS",
    "PROVENANCE",
    "Piece",
    "check_collection",
    "constant_column",
    "empty_features",
    "kept_piece",
    "geoparquet_bytes",
    "read_geojson",
    "read_geojson_parts",
    "read_geojson_table",
    "read_piece",
    "read_result_files",
    "release_memory",
    "system_allocator",
    "table_to_geodataframe",
]

#: Provenance columns every stored piece and every stitched object carries.
PROVENANCE = ["row", "tile_id", "processing_id"]
#: Columns of the table of a run's stored result files.
FILE_COLUMNS = ["path", "tile_id", "features"]


def read_geojson(data: bytes | str | dict) -> gpd.GeoDataFrame:
    """Parse a Mapflow result (GeoJSON FeatureCollection) into a GeoDataFrame in EPSG:4326.

    A uniform collection (one geometry type, flat properties: the usual result) is read
    by Arrow's JSON reader and its geometries are built by shapely from the coordinate
    offsets, straight into the frame; anything else by GDAL's GeoJSON reader (pyogrio),
    where nested properties arrive as JSON strings. An empty FeatureCollection gives an
    empty frame with a geometry column.

    Examples
    --------
    >>> fc = {"type": "FeatureCollection", "features": []}
    >>> len(read_geojson(fc))
    0
    """
    table, geoms = _read(data)
    if geoms is None or "geometry" in table.column_names:
        return table_to_geodataframe(_with_wkb(table, geoms))
    df = table.to_pandas()
    del table
    df["geometry"] = gpd.GeoSeries(geoms, index=df.index, crs=wgs84())
    return gpd.GeoDataFrame(df, geometry="geometry", crs=wgs84())


def _as_bytes(data: bytes | str | dict) -> bytes:
    if isinstance(data, dict):
        return json.dumps(data).encode()
    if isinstance(data, str):
        return data.encode()
    return data


def read_geojson_table(data: bytes | str | dict) -> pa.Table:
    """Parse a GeoJSON FeatureCollection into an Arrow table (no pandas on the way).

    Properties become columns (JSON-typed ones plain strings); the geometry is a WKB
    ``binary`` column named ``geometry``, in EPSG:4326 (GeoJSON's CRS). A body that is
    not a readable FeatureCollection (cut short, malformed, an HTML page, another
    GeoJSON object) raises :class:`~mapflow_geo.exceptions.DamagedResultError` saying
    what was wrong; nothing is returned half-parsed.
    """
    return _with_wkb(*_read(data))


def read_geojson_parts(data: bytes | str | dict) -> tuple[pa.Table, np.ndarray]:
    """:func:`read_geojson_table` as ``(properties, geometries)``: the table without a
    geometry column and the shapely geometries of its rows, for a caller that works on
    geometries before storing them (no WKB on the way from the fast path)."""
    table, geoms = _read(data)
    if geoms is None:
        geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
        table = table.drop_columns(["geometry"])
    return table, geoms


def _with_wkb(table: pa.Table, geoms: np.ndarray | None) -> pa.Table:
    """``table`` with ``geoms`` appended as the WKB ``geometry`` column (None: it has one)."""
    if geoms is None:
        return table
    return table.append_column("geometry", pa.array(shapely.to_wkb(geoms), pa.binary()))


def _read(data: bytes | str | dict) -> tuple[pa.Table, np.ndarray | None]:
    """``(properties, geometries)`` from the fast path (:func:`_uniform_parts`), else
    ``(table with a WKB geometry column, None)`` from GDAL (or for an empty collection)."""
    data = _as_bytes(data)
    check_collection(data)
    if _is_empty_collection(data):
        return pa.table({"geometry": pa.array([], pa.binary())}), None
    parts = _uniform_parts(data)
    if parts is not None:
        return parts
    return _gdal_table(data), None


#: a JSON escape of half a surrogate pair (a character beyond U+FFFF written as ASCII)
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89abAB]")


def _unescape_surrogates(data: bytes) -> bytes:
    """The same collection with characters beyond U+FFFF written as UTF-8: GDAL reads
    their ``\\ud8xx\\udcxx`` escapes as two replacement characters."""
    try:
        return json.dumps(json.loads(data), ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (ValueError, UnicodeError):
        return data  # unreadable as JSON: GDAL says why


def _gdal_table(data: bytes) -> pa.Table:
    """Any readable GeoJSON FeatureCollection through GDAL (pyogrio), geometry as WKB."""
    import pyogrio  # only here: its import costs 0.4 s that the fast path never needs

    if _ESCAPED_SURROGATE.search(data):
        data = _unescape_surrogates(data)
    try:
        meta, table = pyogrio.read_arrow(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - GDAL's errors for unreadable GeoJSON vary
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DamagedResultError(f"not readable GeoJSON ({reason})") from None
    geom_name = meta.get("geometry_name") or "wkb_geometry"
    cols, names = [], []
    for name, col in zip(table.column_names, table.columns, strict=True):
        if isinstance(col.type, pa.ExtensionType):
            col = pa.chunked_array([c.storage for c in col.chunks], col.type.storage_type)
        if name == geom_name:
            name = "geometry"
            col = col.cast(pa.binary())
        cols.append(col)
        names.append(name)
    return pa.table(cols, names=names)


def table_to_geodataframe(table: pa.Table) -> gpd.GeoDataFrame:
    """An Arrow table with a WKB ``geometry`` column → GeoDataFrame in EPSG:4326
    (column order kept; the CRS object is built once per process, not per call)."""
    df = table.replace_schema_metadata(None).to_pandas()
    geoms = shapely.from_wkb(df["geometry"].to_numpy())
    df["geometry"] = gpd.GeoSeries(geoms, index=df.index, crs=wgs84())
    return gpd.GeoDataFrame(df, geometry="geometry", crs=wgs84())


#: Nesting depth of ``coordinates`` for each GeoJSON geometry type the fast path reads.
_DEPTH = {"Point": 1, "LineString": 2, "Polygon": 3, "MultiLineString": 3, "MultiPolygon": 4}
_SHAPELY_TYPE = {
    "Point": shapely.GeometryType.POINT,
    "LineString": shapely.GeometryType.LINESTRING,
    "Polygon": shapely.GeometryType.POLYGON,
    "MultiLineString": shapely.GeometryType.MULTILINESTRING,
    "MultiPolygon": shapely.GeometryType.MULTIPOLYGON,
}


def _uniform_parts(data: bytes) -> tuple[pa.Table, np.ndarray] | None:
    """Fast path for the common result: one geometry type, flat properties.

    Arrow's C++ JSON reader parses the whole collection into typed nested arrays (one
    row, so one block, read straight from ``data`` without a copy) and shapely builds
    the geometries from their offsets (``from_ragged_array``). Returns the properties
    (one column each, a row per feature) and the geometries, or None, so the caller
    falls back to GDAL, whenever the collection is not uniform (mixed geometry types,
    nested or conflicting properties, null geometries, a CRS member) — never a partial
    or different answer.
    """
    import pyarrow.json as pa_json

    try:
        parsed = pa_json.read_json(
            pa.BufferReader(data), read_options=pa_json.ReadOptions(block_size=len(data) + 1)
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if parsed.num_rows != 1 or set(parsed.column_names) - {"type", "features", "name", "bbox"}:
        return None
    feats = parsed.column("features")
    feats = feats.chunk(0) if feats.num_chunks == 1 else feats.combine_chunks()  # no copy
    del parsed
    # the reader's working memory is free now: give it back before GEOS allocates its own
    pa.default_memory_pool().release_unused()
    if not pa.types.is_list(feats.type) or feats.null_count:
        return None
    items = feats.values
    if not pa.types.is_struct(items.type):
        return None
    try:
        geom = items.field("geometry")
        props = items.field("properties")
    except KeyError:
        return None
    if geom.null_count or not pa.types.is_struct(geom.type):
        return None
    kinds = geom.field("type").unique().to_pylist()
    if len(kinds) != 1 or kinds[0] not in _DEPTH:
        return None
    columns, names = [], []
    if pa.types.is_struct(props.type):
        for i in range(props.type.num_fields):
            field = props.type.field(i)
            if pa.types.is_nested(field.type):
                return None
            col = props.field(i)
            if pa.types.is_timestamp(field.type):
                col = _midnight_as_date(col)
            columns.append(col)
            names.append(field.name)
    elif props.null_count != len(props):
        return None
    geoms = _ragged_geometries(kinds[0], geom.field("coordinates"))
    if geoms is None:
        return None
    table = pa.table(columns, names=names) if columns else _no_columns(len(geoms))
    return table, geoms


def _no_columns(n: int) -> pa.Table:
    """A table of ``n`` rows and no columns (features without properties)."""
    return pa.table([pa.nulls(n)], names=["_"]).drop_columns(["_"])


def _ragged_geometries(kind: str, coords: pa.Array) -> np.ndarray | None:
    """Geometries of one GeoJSON ``kind`` from Arrow's nested ``coordinates`` lists (None
    when a level is null or points differ in dimension)."""
    offsets = []
    for _ in range(_DEPTH[kind]):
        if not pa.types.is_list(coords.type) or coords.null_count:
            return None
        o = np.asarray(coords.offsets)
        offsets.append(o - o[0])
        coords = coords.flatten()
    if not pa.types.is_floating(coords.type) and not pa.types.is_integer(coords.type):
        return None
    point_sizes = np.diff(offsets[-1])
    if len(point_sizes) == 0 or (point_sizes != point_sizes[0]).any() or point_sizes[0] < 2:
        return None
    xy = np.asarray(coords.cast(pa.float64())).reshape(-1, point_sizes[0])
    shape_kind = _SHAPELY_TYPE[kind]
    if shape_kind == shapely.GeometryType.POINT:
        return shapely.points(xy)
    # Arrow's offsets run outermost first; shapely wants them innermost first
    return shapely.from_ragged_array(shape_kind, xy, tuple(reversed(offsets[:-1])))


def _midnight_as_date(col: pa.Array) -> pa.Array:
    """Timestamps that are all at midnight were dates in the JSON (as GDAL reads them)."""
    import pyarrow.compute as pc

    seconds = np.asarray(pc.cast(col, pa.timestamp("s")).cast(pa.int64()).fill_null(0))
    if (seconds % 86400 == 0).all():
        return pc.cast(col, pa.date32())
    return col


#: Bodies up to this size are parsed whole by :func:`check_collection` (cheap).
_SMALL = 64 * 1024


def check_collection(data: bytes) -> None:
    """Raise :class:`~mapflow_geo.exceptions.DamagedResultError` unless ``data`` looks like
    a whole GeoJSON FeatureCollection: a JSON object (not an HTML page), ending where an
    object ends (not cut short), of type ``FeatureCollection``. Small bodies are parsed
    whole; the parsers catch what the ends do not show in larger ones."""
    body = data.strip()
    if not body:
        raise DamagedResultError("empty body where a GeoJSON FeatureCollection was expected")
    if body[:1] == b"<":
        raise DamagedResultError("an HTML/XML page where a GeoJSON FeatureCollection was expected")
    if body[:1] != b"{":
        raise DamagedResultError(f"not a JSON object (starts {body[:20]!r})")
    if body[-1:] != b"}":
        raise DamagedResultError(f"cut short after {len(data):,} bytes (ends {body[-20:]!r})")
    if len(body) <= _SMALL:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise DamagedResultError(f"malformed JSON ({exc})") from None
        kind = doc.get("type") if isinstance(doc, dict) else None
        if kind != "FeatureCollection" or not isinstance(doc.get("features", []), list):
            raise DamagedResultError(f"a GeoJSON {kind or 'object'}, not a FeatureCollection")
        return
    if b'"FeatureCollection"' not in body[:4096] and b'"FeatureCollection"' not in body[-4096:]:
        raise DamagedResultError("not a GeoJSON FeatureCollection (no such type member)")


def _is_empty_collection(data: bytes) -> bool:
    head = data[:4096].replace(b" ", b"").replace(b"\n", b"")
    if b'"features":[]' in head:
        return True
    return len(data) < 4096 and b'"features":[' not in head and b'"type":"Feature"' not in head


@dataclass(frozen=True)
class Piece:
    """A stored result file's objects, decoded: its other columns (Arrow, in the file's
    order; text classes and provenance ids as dictionaries), its geometries (shapely) and
    the geometry column's place among the columns. What :func:`read_piece` reads, and
    what a run keeps of a result it just stored (:func:`kept_piece`)."""

    table: pa.Table
    geometries: np.ndarray
    at: int

    def __len__(self) -> int:
        return len(self.geometries)


def read_piece(path: str | Path) -> Piece:
    """One stored result file (GeoParquet, WKB) as a :class:`Piece`."""
    import pyarrow.parquet as pq

    # one small file: Arrow's own threads cost more than they give
    table = pq.read_table(path, use_threads=False, read_dictionary=list(CATEGORIES))
    table = table.replace_schema_metadata(None)
    at = table.schema.get_field_index("geometry")
    wkb = table.column(at).to_numpy(zero_copy_only=False)
    return Piece(table.remove_column(at), shapely.from_wkb(wkb), at)


def kept_piece(table: pa.Table, geometries: np.ndarray) -> Piece:
    """The :class:`Piece` of a file about to be stored: ``table`` as written (with its
    WKB ``geometry`` column), ``geometries`` as decoded — what :func:`read_piece` reads
    back from the file."""
    at = table.schema.get_field_index("geometry")
    return Piece(as_dictionaries(table.remove_column(at)), geometries, at)


def read_result_files(
    paths: Iterable[str | Path],
    *,
    kept: MutableMapping[str, Piece] | None = None,
    public: bool = False,
) -> gpd.GeoDataFrame:
    """Concatenate stored per-AOI results (GeoParquet files) into one frame.

    Reads the files as Arrow tables and decodes each file's WKB as it is read, so the
    encoded geometries of only a few files are in memory at once (the frame's peak is
    little more than the frame); the other columns are concatenated in Arrow (one
    schema for all, types promoted) and converted once. The CRS is decoded once for
    all (``gpd.read_parquet`` per file spends most of its time re-parsing it).

    ``kept``: pieces already in memory (a run keeps those it stored), by path as given
    in ``paths``; each is taken from ``kept`` instead of reading its file, with the same
    frame as a result. ``public``: dates as UTC datetimes and classes and provenance ids
    as categoricals (categories sorted), converted in Arrow, as
    :attr:`MapflowResult.features` shows them (:mod:`~mapflow_geo.results.columns`).
    """
    kept = kept if kept is not None else {}
    paths = [str(p) for p in paths]
    parts: list[Piece | None] = [kept.pop(p, None) for p in paths]
    todo = [i for i, part in enumerate(parts) if part is None]
    if len(todo) > 16:  # Parquet decoding releases the GIL: a few files at a time
        with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:
            read = list(pool.map(read_piece, [paths[i] for i in todo]))
    else:
        read = [read_piece(paths[i]) for i in todo]
    for i, part in zip(todo, read, strict=True):
        parts[i] = part
    del read
    if not parts:
        return empty_features()
    return _frame_of(parts, public)


def _frame_of(parts: list, public: bool) -> gpd.GeoDataFrame:
    """One frame of pieces, in their order (the list is emptied on the way)."""
    table = pa.concat_tables(
        [as_dictionaries(p.table, public) for p in parts], promote_options="permissive"
    )
    geoms = np.concatenate([p.geometries for p in parts])
    at = parts[0].at  # the geometry keeps its place among the columns
    parts.clear()
    if public:
        table = frame_dates(table)
    # column by column (no 2-D block copies), each Arrow buffer freed once converted
    df = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    if public:
        sort_categories(df)
    df.insert(at, "geometry", gpd.array.from_shapely(geoms, crs=wgs84()))
    return gpd.GeoDataFrame(df, geometry="geometry", copy=False)


def empty_features() -> gpd.GeoDataFrame:
    """An empty result frame with the provenance columns, in EPSG:4326."""
    return gpd.GeoDataFrame(
        {c: [] for c in PROVENANCE}, geometry=gpd.GeoSeries([], crs="EPSG:4326")
    )


def constant_column(value: Any, n: int) -> pa.Array:
    """A constant Arrow column (an input index label, a tile or processing id)."""
    if value is not None and not isinstance(value, (str, bytes, int, float, bool)):
        value = value.item() if hasattr(value, "item") else value
    try:
        return pa.repeat(pa.scalar(value), n)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.repeat(pa.scalar(str(value)), n)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (None elsewhere: other allocators return memory themselves)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None


@contextlib.contextmanager
def system_allocator() -> Iterator[None]:
    """Arrow allocates from the system allocator (``malloc``) inside the block, and what
    it freed goes back to the system at its end (:func:`release_memory`).

    Runs and streaming tasks parse or read thousands of results one after the other;
    Arrow's default pool (mimalloc) keeps the pages each one freed: ~100 MB more at the
    peak of a 1 M-object stream (``benchmarks/memory.py``), ~50 MB through a run's
    downloads (``benchmarks/run.py``), and no faster here. Buffers remember their pool,
    so switching the default for the duration is safe for data made before or after;
    blocks nest."""
    old = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(old)
        release_memory()


def release_memory() -> None:
    """Give the memory freed by parsing results back to the system.

    Each result is parsed into buffers several times its size and freed once stored;
    glibc keeps such freed blocks in its per-thread arenas (its mmap threshold rises
    with the first large free) and Arrow's pool keeps its pages: a 1 M-object run held
    ~330 MB of free memory that way (``benchmarks/memory.py``). Cheap (a few ms)."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
