"""Results: parse Mapflow GeoJSON, stitch objects cut at tile seams, and the
:class:`MapflowResult` a run returns.

Parsing goes into Arrow with no Python loop over features: uniform collections (one
geometry type, flat properties: the usual Mapflow result) through Arrow's JSON reader and
shapely's ``from_ragged_array``, anything else through pyogrio (GDAL's GeoJSON reader).

Stitching looks only at objects that reach a seam between two tiles of the same input
row, finds the pieces that meet there with a spatial index, and unions each connected
group once.
"""

from __future__ import annotations

import functools
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

log = logging.getLogger(__name__)

#: Distance (degrees) under which two pieces from neighbouring tiles count as touching.
SEAM_EPS_DEG = 1e-7

PROVENANCE = ["row", "tile_id", "processing_id"]


# ---------------------------------------------------------------------------- parsing
def read_geojson(data: bytes | str | dict) -> gpd.GeoDataFrame:
    """Parse a Mapflow result (GeoJSON FeatureCollection) into a GeoDataFrame in EPSG:4326.

    GDAL's GeoJSON reader (pyogrio) fills Arrow columns; the WKB geometries are decoded
    by shapely in one vectorised call. Nested properties arrive as JSON strings. An
    empty FeatureCollection gives an empty frame with a geometry column.

    Examples
    --------
    >>> fc = {"type": "FeatureCollection", "features": []}
    >>> len(read_geojson(fc))
    0
    """
    return table_to_geodataframe(read_geojson_table(data))


def read_geojson_table(data: bytes | str | dict) -> pa.Table:
    """Parse a GeoJSON FeatureCollection into an Arrow table (no pandas on the way).

    Properties become columns (JSON-typed ones plain strings); the geometry is a WKB
    ``binary`` column named ``geometry``, in EPSG:4326 (GeoJSON's CRS).
    """
    import pyogrio

    if isinstance(data, dict):
        data = json.dumps(data).encode()
    elif isinstance(data, str):
        data = data.encode()
    if _is_empty_collection(data):
        return pa.table({"geometry": pa.array([], pa.binary())})
    fast = _read_uniform_collection(data)
    if fast is not None:
        return fast
    meta, table = pyogrio.read_arrow(io.BytesIO(data))
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
    df["geometry"] = gpd.GeoSeries(geoms, index=df.index, crs=_wgs84())
    return gpd.GeoDataFrame(df, geometry="geometry", crs=_wgs84())


def geoparquet_bytes(table: pa.Table) -> bytes:
    """Serialise an Arrow table with a WKB ``geometry`` column as GeoParquet 1.0
    (EPSG:4326), readable by ``geopandas.read_parquet``."""
    import pyarrow.parquet as pq

    geo = {
        "version": "1.0.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {"encoding": "WKB", "geometry_types": [], "crs": _wgs84_projjson()}
        },
    }
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    return buf.getvalue().to_pybytes()


@functools.cache
def _wgs84() -> Any:
    import pyproj

    return pyproj.CRS.from_epsg(4326)


@functools.cache
def _wgs84_projjson() -> dict:
    return _wgs84().to_json_dict()


#: Nesting depth of ``coordinates`` for each GeoJSON geometry type the fast path reads.
_DEPTH = {"Point": 1, "LineString": 2, "Polygon": 3, "MultiLineString": 3, "MultiPolygon": 4}
_SHAPELY_TYPE = {
    "Point": shapely.GeometryType.POINT,
    "LineString": shapely.GeometryType.LINESTRING,
    "Polygon": shapely.GeometryType.POLYGON,
    "MultiLineString": shapely.GeometryType.MULTILINESTRING,
    "MultiPolygon": shapely.GeometryType.MULTIPOLYGON,
}


def _read_uniform_collection(data: bytes) -> pa.Table | None:
    """Fast path for the common result: one geometry type, flat properties.

    Arrow's C++ JSON reader parses the whole collection into typed nested arrays and
    shapely builds the geometries from their offsets (``from_ragged_array``). Returns
    None, so the caller falls back to GDAL, whenever the collection is not uniform
    (mixed geometry types, nested or conflicting properties, null geometries, a CRS
    member) — never a partial or different answer.
    """
    import pyarrow.json as pa_json

    try:
        parsed = pa_json.read_json(
            io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=len(data) + 1)
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if parsed.num_rows != 1 or set(parsed.column_names) - {"type", "features", "name", "bbox"}:
        return None
    feats = parsed.column("features").combine_chunks()
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
    coords = geom.field("coordinates")
    offsets = []
    for _ in range(_DEPTH[kinds[0]]):
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
    kind = _SHAPELY_TYPE[kinds[0]]
    if kind == shapely.GeometryType.POINT:
        geoms = shapely.points(xy)
    else:
        # Arrow's offsets run outermost first; shapely wants them innermost first
        geoms = shapely.from_ragged_array(kind, xy, tuple(reversed(offsets[:-1])))
    columns, names = [], []
    if pa.types.is_struct(props.type):
        for i in range(props.type.num_fields):
            field = props.type.field(i)
            col = props.field(i)
            if pa.types.is_nested(field.type):
                return None
            if pa.types.is_timestamp(field.type):
                col = _midnight_as_date(col)
            columns.append(col)
            names.append(field.name)
    elif props.null_count != len(props):
        return None
    columns.append(pa.array(shapely.to_wkb(geoms), pa.binary()))
    names.append("geometry")
    return pa.table(columns, names=names)


def _midnight_as_date(col: pa.Array) -> pa.Array:
    """Timestamps that are all at midnight were dates in the JSON (as GDAL reads them)."""
    import pyarrow.compute as pc

    seconds = np.asarray(pc.cast(col, pa.timestamp("s")).cast(pa.int64()).fill_null(0))
    if (seconds % 86400 == 0).all():
        return pc.cast(col, pa.date32())
    return col


def _is_empty_collection(data: bytes) -> bool:
    head = data[:4096].replace(b" ", b"").replace(b"\n", b"")
    if b'"features":[]' in head:
        return True
    return len(data) < 4096 and b'"features":[' not in head and b'"type":"Feature"' not in head


# ---------------------------------------------------------------------------- stitching
def stitch(features: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Join objects that tiling cut at seams back into one object each.

    Two pieces are one object when they come from different tiles of the same input
    ``row``, have the same ``object_type`` (and ``class_id`` / ``class`` where present),
    lie within :data:`SEAM_EPS_DEG` of each other, and both reach their tile's boundary.
    Each connected group is unioned once (polygons) or line-merged (lines); the merged
    object keeps the properties of its largest piece, ``area`` becomes the sum, and
    ``tile_id`` / ``processing_id`` list the pieces' tiles joined with ``+``.

    Parameters
    ----------
    features : GeoDataFrame
        Pieces with at least ``row``, ``tile_id`` and ``geometry`` (EPSG:4326).
    tiles : GeoDataFrame
        The plan (``tile_id``, ``row``, ``geometry``).

    Returns
    -------
    GeoDataFrame
        Objects without duplicates, in a deterministic order.
    """
    if features.empty or tiles["row"].value_counts().max() < 2:
        return features.reset_index(drop=True)
    feats = features.reset_index(drop=True)
    geoms = feats.geometry.values
    tile_geom = tiles.set_index("tile_id").geometry
    boundary = shapely.boundary(tile_geom.reindex(feats["tile_id"]).values)
    multi_tile_rows = tiles.groupby("row")["tile_id"].transform("size") > 1
    rows_with_seams = set(tiles.loc[multi_tile_rows, "row"])
    at_seam = np.asarray(feats["row"].isin(rows_with_seams)) & shapely.dwithin(
        geoms, boundary, SEAM_EPS_DEG
    )
    cand = np.flatnonzero(at_seam)
    if len(cand) < 2:
        return feats
    tree = shapely.STRtree(geoms[cand])
    left, right = tree.query(geoms[cand], predicate="dwithin", distance=SEAM_EPS_DEG)
    keep = left < right
    left, right = cand[left[keep]], cand[right[keep]]
    same = feats["tile_id"].values[left] != feats["tile_id"].values[right]
    for col in ("row", "object_type", "class_id", "class"):
        if col in feats:
            a = feats[col].values
            same &= pd.Series(a[left]).eq(pd.Series(a[right])).values | (
                pd.isna(a[left]) & pd.isna(a[right])
            )
    left, right = left[same], right[same]
    if len(left) == 0:
        return feats
    group = _components(len(feats), left, right)
    return _merge_groups(feats, group)


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of the graph with edges (left, right): a label per node."""
    parent = np.arange(n)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for a, b in zip(left.tolist(), right.tolist(), strict=False):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)])


def _merge_groups(feats: gpd.GeoDataFrame, group: np.ndarray) -> gpd.GeoDataFrame:
    sizes = np.bincount(group, minlength=len(group))
    in_group = sizes[group] > 1
    single = feats[~in_group]
    multi = feats[in_group].copy()
    multi["_group"] = group[in_group]
    measure = shapely.area(multi.geometry.values) + shapely.length(multi.geometry.values)
    multi["_measure"] = measure
    multi = multi.sort_values(["_group", "_measure"], ascending=[True, False], kind="stable")
    first = multi.drop_duplicates("_group", keep="first").set_index("_group")
    grouped = multi.groupby("_group", sort=True)
    merged_geoms = []
    for _, part in grouped.geometry:
        g = shapely.union_all(part.values)
        if g.geom_type == "MultiLineString":
            g = shapely.line_merge(g)
        elif g.geom_type == "MultiPolygon":
            # pieces separated by floating-point noise along the seam: close the gap
            g = shapely.union_all(part.buffer(SEAM_EPS_DEG, join_style="mitre").values).buffer(
                -SEAM_EPS_DEG, join_style="mitre"
            )
        merged_geoms.append(g)
    out = first.copy()
    out["geometry"] = merged_geoms
    if "area" in multi:
        out["area"] = grouped["area"].sum(min_count=1).reindex(out.index).values
    for col in ("tile_id", "processing_id"):
        if col in multi:
            out[col] = grouped[col].agg(lambda s: "+".join(sorted(set(map(str, s))))).values
    out = out.drop(columns=["_measure"]).reset_index(drop=True)
    merged = pd.concat([single, out], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=feats.crs)


# ---------------------------------------------------------------------------- result
class MapflowResult:
    """What a run produced: objects, the plan with statuses, costs and stats.

    Attributes
    ----------
    features : GeoDataFrame
        Detected objects with Mapflow's properties plus ``row`` (input index label),
        ``tile_id`` and ``processing_id``; objects cut at tile seams are stitched.
    tiles : GeoDataFrame
        The plan with ``status``, ``processing_id``, ``area_km2``, ``cost``,
        ``messages`` and timings.
    aois : GeoDataFrame
        The prepared input areas (EPSG:4326), indexed by input row label.
    run_dir : Path or None
        Where the run's journal and files live (reopen with :func:`open_run`).
    """

    def __init__(
        self,
        *,
        features: gpd.GeoDataFrame,
        tiles: gpd.GeoDataFrame,
        aois: gpd.GeoDataFrame,
        processings: pd.DataFrame,
        run_dir: str | Path | None = None,
    ) -> None:
        self.features = features
        self.tiles = tiles
        self.aois = aois
        self.processings = processings
        self.run_dir = Path(run_dir) if run_dir is not None else None

    # -- tables --------------------------------------------------------------------
    @property
    def failed(self) -> gpd.GeoDataFrame:
        """Tiles that did not succeed, with their readable messages."""
        return self.tiles[self.tiles["status"] != "OK"]

    @property
    def costs(self) -> pd.DataFrame:
        """Per input row: area, processings, estimated and charged credits; a total row."""
        from mapflow_geo.stats import cost_table

        return cost_table(self)

    @property
    def stats(self) -> pd.DataFrame:
        """Per input row: object counts and areas by type / class, density, coverage."""
        from mapflow_geo.stats import stats_table

        return stats_table(self)

    def summary(self) -> gpd.GeoDataFrame:
        """The input areas with the stats and cost columns joined on."""
        from mapflow_geo.stats import summary_frame

        return summary_frame(self)

    @property
    def complete(self) -> bool:
        """True when every tile succeeded."""
        return bool((self.tiles["status"] == "OK").all())

    def __repr__(self) -> str:
        n_ok = int((self.tiles["status"] == "OK").sum())
        return (
            f"<MapflowResult: {len(self.features)} features from {n_ok}/{len(self.tiles)} "
            f"tiles in {len(self.processings)} processings, "
            f"{int(self.processings['cost'].fillna(0).sum())} credits charged>"
        )

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.__repr__()[1:-1])}</p>" + self.costs_table("html")

    # -- presentation (mapflow_geo.tables, mapflow_geo.viz) ------------------------
    def costs_table(self, fmt: str = "styler", path: str | Path | None = None) -> Any:
        """:attr:`costs` formatted: a pandas ``Styler`` (notebooks), or ``"markdown"``,
        ``"html"``, ``"csv"`` text; also written to ``path`` when given."""
        from mapflow_geo.tables import present

        return present(self.costs, fmt, path, caption="Credits per input row")

    def stats_table(self, fmt: str = "styler", path: str | Path | None = None) -> Any:
        """:attr:`stats` formatted, as :meth:`costs_table`."""
        from mapflow_geo.tables import present

        return present(self.stats, fmt, path, caption="Objects per input row")

    def preview(self, **options: Any) -> Any:
        """A folium map: input areas, tiles by status (popups with the error), objects
        by class, legend and layer control. See :func:`mapflow_geo.viz.preview_result`
        (``max_features`` / ``large`` for big results, ``client`` for Mapflow's layers)."""
        from mapflow_geo.viz import preview_result

        return preview_result(self, **options)

    def plot(self, ax: Any = None, **options: Any) -> Any:
        """A matplotlib map (areas, objects by class, failed tiles, legend, scale bar);
        returns the Axes. See :func:`mapflow_geo.viz.plot_result`."""
        from mapflow_geo.viz import plot_result

        return plot_result(self, ax, **options)

    def to_image(self, path: str | Path, *, dpi: float = 150, **options: Any) -> Path:
        """Save :meth:`plot` as PNG, SVG or PDF (by extension). See
        :func:`mapflow_geo.viz.save_image`."""
        from mapflow_geo.viz import save_image

        return save_image(self, path, dpi=dpi, **options)

    def to_file(self, path: str | Path, **kwargs: Any) -> None:
        """Write :attr:`features` (GeoPackage, GeoJSON, GeoParquet by extension)."""
        path = Path(path)
        if path.suffix.lower() == ".parquet":
            self.features.to_parquet(path, **kwargs)
        else:
            self.features.to_file(path, **kwargs)

    # -- rasters and scale-out (mapflow_geo.raster, mapflow_geo.scale) ---------------
    def to_xarray(self, resolution_m: float, *, crs: Any = None, **options: Any) -> Any:
        """The objects on a regular grid over the input areas, as an ``xarray.Dataset``:
        ``aoi_fraction``, ``count`` (objects per cell), ``<type>_coverage`` (share of the
        cell covered: buildings, forest…), ``forest_<class>`` height-class shares; CRS
        and transform via rioxarray (the AOI's UTM zone unless ``crs``). Needs the
        ``xarray`` extra. See :func:`mapflow_geo.raster.rasterize_features` for the
        method and its accuracy (``supersample``, ``strip_rows``).

        Examples
        --------
        >>> ds = res.to_xarray(resolution_m=100)                   # doctest: +SKIP
        >>> ds["buildings_coverage"].plot()                         # doctest: +SKIP
        """
        from mapflow_geo.raster import to_xarray

        return to_xarray(self, resolution_m=resolution_m, crs=crs, **options)

    def to_dask(self, *, stitched: bool = True, partition_features: int = 250_000) -> Any:
        """The run's stored results as a dask-geopandas GeoDataFrame, partitioned by
        spatial neighbourhood; seams stitched lazily (``stitched=True``, equal to
        :attr:`features`) or the raw pieces. Needs the ``dask`` extra. See
        :mod:`mapflow_geo.scale`.
        """
        from mapflow_geo.scale import to_dask

        return to_dask(self, stitched=stitched, partition_features=partition_features)
