"""Country-sized results: the stitched objects as a GeoParquet dataset, written by streaming.

:func:`write_dataset` (``MapflowResult.to_parquet``) and :func:`stream_class_sums`; the
layout and the four bounded steps (scan, pairs, groups, merge and write) are in DESIGN.md,
*Country scale*.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from mapflow_geo.results._options import OPTIONS
from mapflow_geo.results.columns import public_frame, public_schema
from mapflow_geo.results.describe import README, description, merge_dates, write_readme
from mapflow_geo.results.geoparquet import (
    BBOX,
    BBOX_TYPE,
    PartWriter,
    bbox_filter,
    frame_table,
    with_bbox,
    write_part,
    write_summary,
)
from mapflow_geo.results.geoparquet import GEOPARQUET_VERSION as GEOPARQUET_VERSION
from mapflow_geo.results.io import (
    empty_features,
    read_result_files,
    system_allocator,
    table_to_geodataframe,
)
from mapflow_geo.results.stats import SUM_COLUMNS, class_sums, empty_sums
from mapflow_geo.results.stitch import (
    SEAM_EPS_DEG,
    TilePlan,
    components,
    cut_pairs,
    merge_groups,
    stitch,
)

log = logging.getLogger(__name__)

#: Tiles closer than this (degrees) are neighbours whose pieces may be parts of one
#: object: cut edges lie within SEAM_EPS_DEG of their tile and 2·SEAM_EPS_DEG of each other.
NEIGHBOUR_DEG = 10 * SEAM_EPS_DEG

_SRC, _OFF = "_src", "_off"  # spill columns: the source file's index in `files`, row in it


@dataclass
class DatasetInfo:
    """What :func:`write_dataset` wrote (or :func:`stream_class_sums` counted).

    Attributes
    ----------
    path : Path or None
        The dataset folder (None when only counting).
    objects : int
        Stitched objects written.
    pieces : int
        Stored pieces read.
    parts : list of str
        The partition files, in spatial (Hilbert) order.
    sums : DataFrame
        Objects and area per (``row``, class), as :func:`mapflow_geo.results.stats.class_sums`.
    bounds : tuple of float
        ``(xmin, ymin, xmax, ymax)`` of every object (NaNs when empty).
    """

    path: Path | None
    objects: int
    pieces: int
    parts: list[str] = field(default_factory=list)
    sums: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUM_COLUMNS))
    bounds: tuple[float, float, float, float] = (np.nan, np.nan, np.nan, np.nan)
    #: Objects repaired and dropped on ingest (the result's QA table), as written to the
    #: dataset's ``mapflow_geo`` metadata.
    repaired: int = 0
    dropped: int = 0
    #: The dataset's ``mapflow_geo`` metadata: data dictionary, provenance, dates, QA.
    description: dict = field(default_factory=dict)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The dataset's objects as an Arrow stream (GeoArrow WKB geometry):
        ``gpd.GeoDataFrame.from_arrow(info)``, ``lonboard.viz(info)``, DuckDB."""
        from mapflow_geo.results.arrow import dataset_reader  # the stream reads this class

        if self.path is None:
            raise ValueError("this DatasetInfo counted objects without writing a dataset")
        return dataset_reader(self.path).__arrow_c_stream__(requested_schema)


def stitched_features(files: pd.DataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The in-memory path: every stored piece read into one frame and stitched
    (what :attr:`MapflowResult.features` holds; ~1.5 kB per object)."""
    return stitch(read_result_files(files["path"]), tiles)


# -- the run's files in spatial order --------------------------------------------------
def neighbourhood_groups(
    files: pd.DataFrame, tiles: gpd.GeoDataFrame, partition_features: int
) -> list[np.ndarray]:
    """Positions of ``files`` ordered by the Hilbert index of their tile's centre and
    cut, in that order, into groups of about ``partition_features`` pieces: spatial
    neighbourhoods (the partitions of the dataset and of
    :func:`~mapflow_geo.results.dask.to_dask`)."""
    if files.empty:
        return []
    centre = pd.Series(
        shapely.centroid(tiles.geometry.values), index=tiles["tile_id"].astype(str).to_numpy()
    )
    centre = centre[~centre.index.duplicated()]
    pts = gpd.GeoSeries(centre.reindex(files["tile_id"].astype(str)).values, crs=tiles.crs).fillna(
        shapely.Point(0, 0)
    )
    total = pts.total_bounds
    if not np.all(np.isfinite(total)) or total[0] == total[2] or total[1] == total[3]:
        order = np.arange(len(files))
    else:
        order = np.argsort(pts.hilbert_distance(total_bounds=total).to_numpy(), kind="stable")
    counts = files["features"].to_numpy(dtype=np.int64)[order]
    groups, start, n = [], 0, 0
    for i, c in enumerate(counts):
        n += int(c)
        if n >= partition_features:
            groups.append(order[start : i + 1])
            start, n = i + 1, 0
    if start < len(order):
        groups.append(order[start:])
    return groups


def unified_schema(paths: Sequence[str | os.PathLike]) -> pa.Schema:
    """The schema of the pieces' files together (types widened as
    ``pa.concat_tables(promote_options="permissive")`` widens them: what
    :func:`~mapflow_geo.results.io.read_result_files` gives). Reads footers only."""
    schemas = [pq.read_schema(p).remove_metadata() for p in paths]
    return pa.unify_schemas(schemas, promote_options="permissive")


def read_piece_file(path: str | os.PathLike, schema: pa.Schema) -> pa.Table:
    """One stored file as an Arrow table with exactly ``schema`` (missing columns null)."""
    table = pq.read_table(path).replace_schema_metadata(None)
    return conform(table, schema)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` cast to ``schema``: columns in its order, missing ones null, types cast
    (safely when possible)."""
    if table.schema.equals(schema):
        return table
    cols = []
    for f in schema:
        if f.name not in table.column_names:
            cols.append(pa.nulls(len(table), f.type))
            continue
        col = table[f.name]
        if col.type != f.type:
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                col = col.cast(f.type, safe=False)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


# -- the tasks (module-level, plain arguments: they run on dask workers unchanged) ------
def _system_pool(fn: Callable) -> Callable:
    """Run ``fn`` with Arrow allocating from the system allocator
    (:func:`~mapflow_geo.results.io.system_allocator`): streaming reads thousands of
    small files one after the other."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with system_allocator():
            return fn(*args, **kwargs)

    return run


def _seam_rows(table: pa.Table, plan: TilePlan) -> np.ndarray:
    """The seam rule (:func:`~mapflow_geo.results.stitch.seam_mask`) on a stored file."""
    if table.num_rows == 0:
        return np.zeros(0, dtype=bool)
    geoms = shapely.from_wkb(table["geometry"].to_numpy(zero_copy_only=False))
    pos = plan.lookup(table["tile_id"].to_numpy(zero_copy_only=False))
    return plan.seam(table["row"].to_numpy(zero_copy_only=False), geoms, pos)


_SUM_INPUTS = ("row", "object_type", "class", "class_id", "area", "area_m2")


def _sums_of(table: pa.Table) -> pd.DataFrame:
    if table.num_rows == 0:
        return empty_sums()
    cols = [c for c in _SUM_INPUTS if c in table.column_names]
    return class_sums(table.select(cols).to_pandas())


@_system_pool
def _scan_group(
    index: Sequence[int],
    paths: Sequence[str],
    schema: pa.Schema,
    tiles: gpd.GeoDataFrame,
    spill: str,
) -> dict:
    """Step 1 for one partition: spill each file's seam pieces (one batch per file) and
    sum the rest. Returns per-file piece and seam counts and the sums of uncut pieces."""
    plan = TilePlan(tiles)
    spill_schema = schema.append(pa.field(_SRC, pa.int64())).append(pa.field(_OFF, pa.int64()))
    names = [c for c in _SUM_INPUTS if c in schema.names]
    uncut, pieces, seams = [], [], []
    with pa.OSFile(spill, "wb") as sink, pa.ipc.new_file(sink, spill_schema) as writer:
        for src, path in zip(index, paths, strict=True):
            table = read_piece_file(path, schema)
            mask = _seam_rows(table, plan)
            rows = np.flatnonzero(mask)
            cut = table.take(rows)
            cut = cut.append_column(_SRC, pa.array(np.full(len(rows), src), pa.int64()))
            cut = cut.append_column(_OFF, pa.array(rows, pa.int64()))
            writer.write_batch(_one_batch(cut, spill_schema))
            uncut.append(table.select(names).filter(pa.array(~mask)))
            pieces.append(table.num_rows)
            seams.append(len(rows))
    sums = _sums_of(pa.concat_tables(uncut)) if uncut else empty_sums()
    return {"pieces": np.array(pieces), "seams": np.array(seams), "sums": sums}


def _one_batch(table: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns], schema=schema)


def _load_seams(
    loads: Sequence[tuple[str, int, np.ndarray | None]], columns: Sequence[str] | None = None
) -> tuple[pa.Table | None, np.ndarray]:
    """Seam pieces read back from spills: ``(spill path, batch, rows or None for all)``;
    also the number of rows each load gave."""
    tables, handles, readers = [], [], {}
    try:
        for path, batch, rows in loads:
            if path not in readers:
                handles.append(pa.OSFile(path, "rb"))
                readers[path] = pa.ipc.open_file(handles[-1])
            b = readers[path].get_batch(int(batch))
            if columns is not None:
                b = b.select(columns)
            tables.append(pa.Table.from_batches([b if rows is None else b.take(pa.array(rows))]))
    finally:
        for h in handles:
            h.close()
    sizes = np.array([t.num_rows for t in tables], dtype=np.int64)
    if not tables:
        return None, sizes
    return pa.concat_tables(tables), sizes


@_system_pool
def _pair_window(
    loads: Sequence[tuple[str, int, None]],
    offsets: np.ndarray,
    parts: np.ndarray,
    part: int,
    tiles: gpd.GeoDataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """Step 2 for one partition: pairs (global seam ids) among the seam pieces of its
    tiles and their neighbours, those this partition is first to see."""
    if not loads:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    with pa.OSFile(loads[0][0], "rb") as f:
        names = pa.ipc.open_file(f).schema.names
    cols = ["geometry", "row", "tile_id", "object_type", "class_id", "class"]
    table, sizes = _load_seams(loads, [c for c in cols if c in names])
    empty = np.zeros(0, dtype=np.int64)
    if table is None or table.num_rows < 2:
        return empty, empty
    gid = np.concatenate([np.arange(n) + o for n, o in zip(sizes, offsets, strict=True)])
    part_of = np.repeat(parts, sizes)
    left, right = cut_pairs(table_to_geodataframe(table), TilePlan(tiles))
    keep = np.minimum(part_of[left], part_of[right]) == part
    return gid[left[keep]], gid[right[keep]]


@_system_pool
def _merge_part(
    members: Sequence[tuple[str, int, np.ndarray]],
    labels: np.ndarray,
    own: Sequence[tuple[str, str, int]],
    schema: pa.Schema,
    out: str | None,
    desc: dict | None = None,
) -> dict:
    """Step 4 for one partition: join the groups it owns (``members``: spill loads whose
    rows, in order, carry ``labels``), add its uncut pieces (``own``: source path, its
    spill and batch) and write the partition to ``out`` (or only sum it), described by
    ``desc``."""
    seam = _merged_seams(members, labels, schema)
    sums = [_sums_of(seam)]
    if out is None:
        return {"sums": _concat_sums(sums), "objects": seam.num_rows}
    writer = PartWriter(out, schema.append(pa.field(BBOX, BBOX_TYPE)), description=desc)
    try:
        writer.add(*with_bbox(seam))
        objects = seam.num_rows
        for path, spill, batch in own:
            table = pq.read_table(path).replace_schema_metadata(None)
            cut, _ = _load_seams([(spill, batch, None)], [_OFF])
            keep = np.ones(table.num_rows, dtype=bool)
            keep[cut[_OFF].to_numpy()] = False
            table = conform(table.filter(pa.array(keep)), schema)
            objects += table.num_rows
            writer.add(*with_bbox(table))
    except BaseException:
        writer.abort()
        raise
    return {"sums": _concat_sums(sums), "objects": objects, **writer.close()}


def _merged_seams(
    members: Sequence[tuple[str, int, np.ndarray]], labels: np.ndarray, schema: pa.Schema
) -> pa.Table:
    table, _ = _load_seams(members)
    if table is None or table.num_rows == 0:
        return schema.empty_table()
    # the in-memory order (file, then row): ties between equal pieces break the same way
    order = np.lexsort((table[_OFF].to_numpy(), table[_SRC].to_numpy()))
    table, labels = table.take(pa.array(order)), np.asarray(labels)[order]
    frame = table_to_geodataframe(table.drop_columns([_SRC, _OFF]))
    merged = merge_groups(frame, labels)
    return conform(frame_table(merged), schema)


def _concat_sums(sums: list[pd.DataFrame]) -> pd.DataFrame:
    sums = [s for s in sums if len(s)]
    if not sums:
        return empty_sums()
    out = pd.concat(sums, ignore_index=True)
    return out.groupby(["row", "cls"], sort=False, dropna=False, as_index=False).agg(
        n=("n", "sum"), area=("area", lambda s: s.sum(min_count=1))
    )


# -- running the steps here or on a dask cluster ---------------------------------------
def _mapper(dask_client: Any) -> tuple[Callable, Callable[[], None]]:
    """``map(fn, list of argument tuples) -> list of results``, here or on a dask client."""
    if dask_client is None:
        return (lambda fn, calls: [fn(*args) for args in calls]), lambda: None
    close = lambda: None  # noqa: E731
    if isinstance(dask_client, str):
        from distributed import Client

        dask_client = Client(dask_client)
        close = dask_client.close

    def run(fn, calls):
        if not calls:
            return []
        futures = [dask_client.submit(fn, *args, pure=False) for args in calls]
        return dask_client.gather(futures)

    return run, close


def _tiles_small(tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"tile_id": tiles["tile_id"].astype(str).to_numpy(), "row": tiles["row"].to_numpy()},
        geometry=np.asarray(tiles.geometry.values),
        crs=tiles.crs,
    )


def _neighbours(tiles: gpd.GeoDataFrame) -> list[np.ndarray]:
    """For each tile (position), the tiles of its row within :data:`NEIGHBOUR_DEG`."""
    geoms = np.asarray(tiles.geometry.values)
    i, j = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=NEIGHBOUR_DEG)
    rows = tiles["row"].to_numpy()
    keep = (i != j) & (rows[i] == rows[j])
    i, j = i[keep], j[keep]
    order = np.argsort(i, kind="stable")
    i, j = i[order], j[order]
    starts = np.searchsorted(i, np.arange(len(geoms) + 1))
    return [j[starts[k] : starts[k + 1]] for k in range(len(geoms))]


@_system_pool
def _stream(
    files: pd.DataFrame,
    tiles: gpd.GeoDataFrame,
    out: Path | None,
    spill_dir: Path,
    partition_features: int,
    dask_client: Any,
    provenance: dict | None = None,
    qa: pd.DataFrame | None = None,
) -> DatasetInfo:
    files = files.reset_index(drop=True)
    paths = [str(p) for p in files["path"]]
    schema = unified_schema(paths)
    desc = None
    if out is not None:
        desc = description(public_schema(schema.append(pa.field(BBOX, BBOX_TYPE))), provenance, qa)
    small = _tiles_small(tiles)
    groups = neighbourhood_groups(files, small, partition_features)
    n_files = len(files)
    part_of, batch_of = _positions(groups, n_files)
    spills = [str(spill_dir / f"seams-{k:05d}.arrow") for k in range(len(groups))]
    run, close = _mapper(dask_client)
    try:
        if dask_client is not None and not isinstance(dask_client, str):
            small_arg = dask_client.scatter(small, broadcast=True)
        else:
            small_arg = small
        scans = run(
            _scan_group,
            [([int(i) for i in g], [paths[i] for i in g], schema, small_arg, spills[k])
             for k, g in enumerate(groups)],
        )  # fmt: skip
        seams = np.zeros(n_files, dtype=np.int64)
        for g, s in zip(groups, scans, strict=True):
            seams[g] = s["seams"]
        offsets = np.r_[0, np.cumsum(seams)]
        log.info("%d pieces, %d on seams", sum(int(s["pieces"].sum()) for s in scans), offsets[-1])
        labels = _seam_groups(files, small, groups, part_of, batch_of, seams, offsets, spills, run,
                              small_arg)  # fmt: skip
        owner = _owners(labels, part_of, seams)
        calls = _merge_calls(groups, files, paths, part_of, batch_of, seams, offsets, spills,
                             labels, owner, schema, out, desc)  # fmt: skip
        merges = run(_merge_part, calls)
    finally:
        close()
    return _finish(out, scans, merges, seams, [c[4] for c in calls], schema, desc)


def _positions(groups: list, n_files: int) -> tuple[np.ndarray, np.ndarray]:
    """For each file, its partition and its record batch in the partition's spill."""
    part_of = np.zeros(n_files, dtype=np.int64)
    batch_of = np.zeros(n_files, dtype=np.int64)
    for k, g in enumerate(groups):
        part_of[g] = k
        batch_of[g] = np.arange(len(g))
    return part_of, batch_of


def _finish(
    out: Path | None,
    scans: list,
    merges: list,
    seams: np.ndarray,
    parts: list,
    schema: pa.Schema,
    desc: dict | None,
) -> DatasetInfo:
    """What the steps found, as a :class:`DatasetInfo`; with ``out``, the dataset's
    summary files written beside its parts."""
    sums = _concat_sums([s["sums"] for s in scans] + [m["sums"] for m in merges])
    pieces = int(sum(int(s["pieces"].sum()) for s in scans))
    uncut = pieces - int(seams.sum())
    if out is None:
        objects = uncut + sum(m["objects"] for m in merges)
        return DatasetInfo(None, objects, pieces, sums=sums)
    info = DatasetInfo(out, sum(m["objects"] for m in merges), pieces, sums=sums)
    info.parts = parts
    info.bounds = _total_bounds([m["bounds"] for m in merges])
    types = sorted({t for m in merges for t in m["types"]})
    info.description = {**desc, "dates": merge_dates([m["dates"] for m in merges])}
    write_summary(out, info.parts, schema, types, info.bounds, info.description)
    return info


def _seam_groups(files, small, groups, part_of, batch_of, seams, offsets, spills, run, tiles_arg):
    """Steps 2 and 3: pairs per partition window, then connected components."""
    n_seam = int(offsets[-1])
    if n_seam == 0:
        return np.zeros(0, dtype=np.int64)
    tile_pos = pd.Index(small["tile_id"]).get_indexer(files["tile_id"].astype(str))
    neigh = _neighbours(small)
    files_of_tile: dict[int, list[int]] = {}
    for f, t in enumerate(tile_pos):
        files_of_tile.setdefault(int(t), []).append(f)
    calls = []
    for k, g in enumerate(groups):
        want = set(int(f) for f in g if seams[f])
        for f in g:
            t = tile_pos[f]
            if t < 0 or not seams[f]:
                continue
            for n in neigh[t]:
                want.update(x for x in files_of_tile.get(int(n), []) if seams[x])
        if not any(part_of[f] == k for f in want):
            continue
        fs = sorted(want, key=lambda f: (part_of[f], batch_of[f]))
        loads = [(spills[part_of[f]], int(batch_of[f]), None) for f in fs]
        calls.append((loads, offsets[fs], part_of[fs], k, tiles_arg))
    pairs = run(_pair_window, calls)
    left = np.concatenate([p[0] for p in pairs] or [np.zeros(0, np.int64)])
    right = np.concatenate([p[1] for p in pairs] or [np.zeros(0, np.int64)])
    log.info("%d seam pieces, %d pairs", n_seam, len(left))
    return components(n_seam, left, right)


def _owners(labels: np.ndarray, part_of: np.ndarray, seams: np.ndarray) -> np.ndarray:
    """Per group label, the first partition holding one of its pieces."""
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    piece_part = np.repeat(part_of, seams)
    owner = np.full(int(labels.max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(owner, labels, piece_part)
    return owner


def _merge_calls(groups, files, paths, part_of, batch_of, seams, offsets, spills, labels, owner,
                 schema, out, desc):  # fmt: skip
    n_seam = int(offsets[-1])
    piece_file = np.repeat(np.arange(len(files)), seams)
    piece_row = np.arange(n_seam) - offsets[piece_file]
    piece_owner = owner[labels] if n_seam else np.zeros(0, dtype=np.int64)
    order = np.argsort(piece_owner, kind="stable")
    bounds = np.searchsorted(piece_owner[order], np.arange(len(groups) + 1))
    calls = []
    for k, g in enumerate(groups):
        ids = order[bounds[k] : bounds[k + 1]]
        ids = ids[np.lexsort((piece_row[ids], piece_file[ids]))]
        members = []
        fs, starts = np.unique(piece_file[ids], return_index=True)
        ends = np.r_[starts[1:], len(ids)][: len(starts)]
        for f, a, b in zip(fs, starts, ends, strict=True):
            members.append((spills[part_of[f]], int(batch_of[f]), piece_row[ids[a:b]]))
        own = [(paths[f], spills[k], int(batch_of[f])) for f in g]
        target = None if out is None else str(out / f"part-{k:05d}.parquet")
        calls.append((members, labels[ids], own, schema, target, desc))
    return calls


def _total_bounds(bounds: list) -> tuple[float, float, float, float]:
    b = np.array([x for x in bounds if np.all(np.isfinite(x))], dtype=float).reshape(-1, 4)
    if len(b) == 0:
        return (np.nan, np.nan, np.nan, np.nan)
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def _publish(
    path: str | os.PathLike, overwrite: bool, build: Callable[[Path], DatasetInfo]
) -> DatasetInfo:
    """Build a dataset in a folder beside ``path`` (``build(folder)``), add its README,
    and rename it into place (replacing a dataset there, never anything else)."""
    out = Path(path)
    _check_target(out, overwrite)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        info = build(tmp)
        info.repaired = int(info.description.get("repaired", 0))
        info.dropped = int(info.description.get("dropped", 0))
        write_readme(tmp, info.description, info.objects, info.bounds)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info.path = out
    info.parts = [str(out / Path(p).name) for p in info.parts]
    return info


# -- public entry points ----------------------------------------------------------------
def write_dataset(
    files: pd.DataFrame,
    tiles: gpd.GeoDataFrame,
    path: str | os.PathLike,
    *,
    partition_features: int | None = None,
    dask_client: Any = None,
    overwrite: bool = True,
    qa: pd.DataFrame | None = None,
    provenance: dict | None = None,
) -> DatasetInfo:
    """Stitch a run's stored pieces and write them as a GeoParquet 1.1 dataset, streaming
    (DESIGN.md, *Country scale*; memory grows with ``partition_features``, not the run).

    Parameters
    ----------
    files : DataFrame
        The stored files (``path``, ``tile_id``, ``features``), as
        :attr:`MapflowResult.files <mapflow_geo.MapflowResult.files>`.
    tiles : GeoDataFrame
        The plan (``tile_id``, ``row``, ``geometry``).
    path : str or PathLike
        The dataset folder. Written beside it (a hidden ``.<name>.tmp-<8 hex digits>``
        folder, which a process killed mid-write leaves behind) and renamed at the end; an
        existing dataset there is replaced when ``overwrite`` (a folder holding anything
        else never is).
    partition_features : int, optional
        Objects per partition file (default: ``get_options()["partition_features"]``).
    dask_client : dask.distributed.Client or str, optional
        Run the steps on this dask cluster (a client or a scheduler address); ``path``
        must then be a folder every worker sees.
    qa : DataFrame, optional
        The result's QA table (:attr:`MapflowResult.qa`): its counts of objects repaired
        and dropped on ingest go into the dataset's ``mapflow_geo`` metadata.
    provenance : dict, optional
        Where the objects come from (model, blocks, provider, run id, processings:
        :func:`~mapflow_geo.results.describe.provenance_of`), for the ``mapflow_geo``
        metadata and the README (:mod:`~mapflow_geo.results.describe`).

    Returns
    -------
    DatasetInfo
        Objects, parts, bounds and the per-(row, class) sums that :attr:`stats` needs.

    Examples
    --------
    >>> info = write_dataset(res.files, res.tiles, "out/buildings")     # doctest: +SKIP
    >>> gpd.read_parquet("out/buildings", bbox=(4.3, 50.8, 4.4, 50.9))  # doctest: +SKIP
    """
    n = int(partition_features or OPTIONS["partition_features"])

    def build(tmp: Path) -> DatasetInfo:
        if not len(files):
            return _write_empty(tmp, provenance, qa)
        (tmp / "_spill").mkdir()
        info = _stream(files, tiles, tmp, tmp / "_spill", n, dask_client, provenance, qa)
        shutil.rmtree(tmp / "_spill")
        return info

    return _publish(path, overwrite, build)


def write_frame_dataset(
    features: gpd.GeoDataFrame,
    path: str | os.PathLike,
    *,
    partition_features: int | None = None,
    overwrite: bool = True,
    provenance: dict | None = None,
) -> DatasetInfo:
    """:func:`write_dataset` for objects already in memory (a result built from a
    frame): sorted by the Hilbert index of their centres (ties in the frame's order), cut
    into partitions."""
    n = int(partition_features or OPTIONS["partition_features"])

    def build(tmp: Path) -> DatasetInfo:
        if len(features) == 0:
            return _write_empty(tmp, provenance, None)
        feats = features.to_crs(4326) if features.crs else features
        order = np.argsort(feats.geometry.hilbert_distance().to_numpy(), kind="stable")
        feats = feats.iloc[order]
        table = frame_table(feats)
        desc = description(public_schema(with_bbox(table.slice(0, 0))[0].schema), provenance)
        parts, metas = [], []
        for k, start in enumerate(range(0, len(feats), n)):
            target = str(tmp / f"part-{k:05d}.parquet")
            chunk, kinds = with_bbox(table.slice(start, n))
            metas.append(write_part(chunk, target, kinds, description=desc))
            parts.append(target)
        bounds = _total_bounds([m["bounds"] for m in metas])
        types = sorted({t for m in metas for t in m["types"]})
        desc = {**desc, "dates": merge_dates([m["dates"] for m in metas])}
        write_summary(tmp, parts, table.schema, types, bounds, desc)
        info = DatasetInfo(tmp, len(feats), len(feats), parts, class_sums(feats), bounds)
        info.description = desc
        return info

    return _publish(path, overwrite, build)


def _write_empty(out: Path, provenance: dict | None, qa: pd.DataFrame | None) -> DatasetInfo:
    table, _ = with_bbox(frame_table(empty_features()))
    desc = {**description(public_schema(table.schema), provenance, qa), "dates": {}}
    target = str(out / "part-00000.parquet")
    write_part(table, target, set(), description=desc)
    write_summary(out, [target], table.schema.remove(table.schema.get_field_index(BBOX)), [],
                  (np.nan,) * 4, desc)  # fmt: skip
    info = DatasetInfo(out, 0, 0, [target])
    info.description = desc
    return info


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a dataset folder")
    names = [p.name for p in out.iterdir()]
    ours = all(n.startswith("part-") or n in ("_metadata", "_common_metadata", README)
               for n in names)  # fmt: skip
    if names and not ours:
        raise FileExistsError(f"{out} holds other files; not replacing it with a dataset")
    if names and not overwrite:
        raise FileExistsError(f"{out} already holds a dataset (overwrite=False)")


def stream_class_sums(
    files: pd.DataFrame,
    tiles: gpd.GeoDataFrame,
    *,
    partition_features: int | None = None,
    dask_client: Any = None,
    spill_dir: str | os.PathLike | None = None,
) -> DatasetInfo:
    """The stitched objects' per-(row, class) sums and count, by the streaming pass of
    :func:`write_dataset` without writing the objects (seam pieces spill to a hidden
    ``.mapflow-seams-*`` folder in ``spill_dir``, the system's temporary folder by
    default, removed at the end)."""
    n = int(partition_features or OPTIONS["partition_features"])
    if not len(files):
        return DatasetInfo(None, 0, 0)
    base = Path(spill_dir) if spill_dir is not None else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mapflow-seams-", dir=base))
    try:
        return _stream(files, tiles, None, tmp, n, dask_client)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_dataset(
    path: str | os.PathLike,
    *,
    bbox: Sequence[float] | None = None,
    columns: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """Read a stitched dataset (or the part of it whose objects' ``bbox`` meets
    ``bbox = (xmin, ymin, xmax, ymax)``: the covering column lets Parquet skip row
    groups) into a GeoDataFrame, without the ``bbox`` column."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet", exclude_invalid_files=False)
    flt = None if bbox is None else bbox_filter(bbox)
    cols = None if columns is None else [*dict.fromkeys([*columns, "geometry"])]
    table = dataset.to_table(columns=cols, filter=flt)
    if BBOX in table.column_names:
        table = table.drop_columns([BBOX])
    return public_frame(table_to_geodataframe(table))
