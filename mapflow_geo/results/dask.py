"""Scale-out: a run's results as a dask-geopandas frame, seam stitching and stats on dask.

:func:`to_dask` (spatially partitioned), :func:`stitch_dask` (equal to the in-memory
stitch), :func:`stats_dask`; how they partition and shuffle: DESIGN.md, *Country scale*
(*Dask*).
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import dask_geopandas

    from mapflow_geo.results import MapflowResult

from mapflow_geo.results.columns import public_frame
from mapflow_geo.results.dataset import neighbourhood_groups
from mapflow_geo.results.io import empty_features, read_result_files
from mapflow_geo.results.stats import class_sums, stats_from_sums
from mapflow_geo.results.stitch import seam_mask, stitch

log = logging.getLogger(__name__)

SEAM = "_seam"


def _require():
    try:
        import dask.dataframe as dd
        import dask_geopandas  # noqa: F401 - registers the GeoDataFrame collection
    except ImportError as exc:  # pragma: no cover
        raise ImportError("the dask path needs the 'dask' extra (dask-geopandas)") from exc
    return dd


def _neighbourhood_groups(
    files: pd.DataFrame, tiles: gpd.GeoDataFrame, partition_features: int
) -> list[list[str]]:
    """Paths of ``files`` in spatial neighbourhoods of about ``partition_features``
    pieces (:func:`mapflow_geo.results.dataset.neighbourhood_groups`, the dataset's
    partitions too)."""
    paths = files["path"].astype(str).to_numpy()
    return [list(paths[g]) for g in neighbourhood_groups(files, tiles, partition_features)]


def _read_group(paths: list[str], meta: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    df = read_result_files(paths)
    for col in meta.columns:
        if col not in df:
            df[col] = pd.Series(pd.NA, index=df.index, dtype=meta[col].dtype)
    df = df[list(meta.columns)]
    for col in meta.columns:
        if col != "geometry" and df[col].dtype != meta[col].dtype:
            try:
                df[col] = df[col].astype(meta[col].dtype)
            except (TypeError, ValueError):
                df[col] = df[col].astype(str).astype(meta[col].dtype)
    return gpd.GeoDataFrame(df, geometry="geometry", crs=meta.crs)


def _meta_for(files: pd.DataFrame) -> gpd.GeoDataFrame:
    """Empty frame with the union of the columns of up to 20 files spread over the run
    (conflicting types widen as pandas' concat widens them: int + float → float)."""
    sample = files["path"].iloc[:: max(1, len(files) // 20)].tolist()[:20]
    frames = [read_result_files([p]).iloc[:0] for p in sample]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # empty-frame concat dtype notice
        meta = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(meta, geometry="geometry", crs="EPSG:4326")


def to_dask(
    result: MapflowResult,
    *,
    partition_features: int = 250_000,
    stitched: bool = False,
) -> dask_geopandas.GeoDataFrame:
    """A run's stored pieces as a dask-geopandas GeoDataFrame, partitioned by spatial
    neighbourhood (DESIGN.md, *Country scale*).

    Parameters
    ----------
    result : MapflowResult
        Its ``files`` table (the stored result files, from the run's journal) and plan.
    partition_features : int
        Objects per partition, about.
    stitched : bool
        Stitch seams (:func:`stitch_dask`) — the lazy counterpart of ``result.features``.

    Returns
    -------
    dask_geopandas.GeoDataFrame
        Unstitched pieces (``stitched=False``) with ``row``, ``tile_id``,
        ``processing_id`` and Mapflow's properties, EPSG:4326; columns named and typed
        as :attr:`MapflowResult.features` (:mod:`mapflow_geo.results.columns`; class
        columns as strings).
    """
    _require()
    files, tiles = result.files, result.tiles
    if files.empty:
        import dask_geopandas

        return dask_geopandas.from_geopandas(
            public_frame(empty_features(), categories=False), npartitions=1
        )
    return from_files(files, tiles, partition_features=partition_features, stitched=stitched)


def from_files(
    files: pd.DataFrame,
    tiles: gpd.GeoDataFrame,
    *,
    partition_features: int = 250_000,
    stitched: bool = False,
) -> dask_geopandas.GeoDataFrame:
    """:func:`to_dask` from a table of stored result files (``path``, ``tile_id``,
    ``features``, as :attr:`MapflowResult.files` holds) and the plan."""
    dd = _require()
    meta = _meta_for(files)
    groups = _neighbourhood_groups(files, tiles, int(partition_features))
    read = functools.partial(_read_group, meta=meta)
    import dask

    # keep the in-memory column types (object strings, dates) rather than dask's
    # default conversion to Arrow strings, so both paths give the same frame
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_map(read, groups, meta=meta, enforce_metadata=False, label="mapflow-results")
        if stitched:
            ddf = stitch_dask(ddf, tiles)
        # the names and types of ``result.features`` (area_m2, UTC dates, categories)
        tidy = functools.partial(public_frame, categories=False)
        ddf = ddf.map_partitions(tidy, meta=tidy(ddf._meta))
    return ddf


def _tiles_small(tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"tile_id": tiles["tile_id"].astype(str).to_numpy(), "row": tiles["row"].to_numpy()},
        geometry=tiles.geometry.values,
        crs=tiles.crs,
    )


def _flag(part: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return part.assign(**{SEAM: seam_mask(part, tiles)})


def _stitch_part(part: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not isinstance(part, gpd.GeoDataFrame):  # a shuffle may hand back plain frames
        part = gpd.GeoDataFrame(part, geometry="geometry", crs="EPSG:4326")
    if part.empty:
        return part
    out = stitch(part, tiles)
    return gpd.GeoDataFrame(out[list(part.columns)], geometry="geometry", crs=part.crs)


def stitch_dask(
    ddf: dask_geopandas.GeoDataFrame,
    tiles: gpd.GeoDataFrame,
    *,
    npartitions: int | None = None,
) -> dask_geopandas.GeoDataFrame:
    """Seam stitching on dask: the same objects as :func:`~mapflow_geo.results.stitch`
    (DESIGN.md, *Country scale*, says how).

    Parameters
    ----------
    ddf : dask_geopandas.GeoDataFrame
        Pieces with ``row``, ``tile_id``, ``geometry`` (as from :func:`to_dask`).
    tiles : GeoDataFrame
        The plan (``result.tiles``): ``tile_id``, ``row``, ``geometry``.
    npartitions : int, optional
        Partitions for the seam pieces (default: a quarter of ``ddf``'s, at least 1).
    """
    dd = _require()
    import dask

    with dask.config.set({"dataframe.convert-string": False}):
        return _stitch_dask(dd, ddf, tiles, npartitions)


def _stitch_dask(dd, ddf, tiles, npartitions):
    small = _tiles_small(tiles)
    meta = ddf._meta
    flagged = ddf.map_partitions(_flag, small, meta=meta.assign(**{SEAM: np.array([], bool)}))
    inner = flagged[~flagged[SEAM]].drop(columns=[SEAM])
    seam = flagged[flagged[SEAM]].drop(columns=[SEAM])
    n = npartitions or max(1, ddf.npartitions // 4)
    # the task-based shuffle pickles partitions; the P2P shuffle a distributed client
    # would pick moves Arrow tables and cannot carry the geometry column
    seam = seam.assign(_rowkey=seam["row"].astype(str)).shuffle(
        on="_rowkey", npartitions=n, shuffle_method="tasks"
    )
    seam = seam.drop(columns=["_rowkey"])
    stitched = seam.map_partitions(_stitch_part, small, meta=meta)
    return dd.concat([inner, stitched])


def compute(collection: Any, dask_client: Any = None) -> Any:
    """Compute a dask collection with the scheduler in force (the default
    ``dask.distributed`` client when one runs), or on ``dask_client``: a
    ``distributed.Client`` or a scheduler address (connected to for the call).

    Examples
    --------
    >>> from distributed import LocalCluster                          # doctest: +SKIP
    >>> with LocalCluster(n_workers=2) as cluster:                    # doctest: +SKIP
    ...     objects = compute(res.to_dask(), cluster.scheduler_address)
    """
    if dask_client is None:
        return collection.compute()
    if isinstance(dask_client, str):
        from distributed import Client

        with Client(dask_client) as connected:
            return connected.compute(collection).result()
    return dask_client.compute(collection).result()


def stats_dask(
    ddf: dask_geopandas.GeoDataFrame, result: MapflowResult, *, dask_client: Any = None
) -> pd.DataFrame:
    """:attr:`MapflowResult.stats` computed from a (stitched) dask frame: per input row
    ``count:<class>``, ``area_m2:<class>``, ``objects``, ``objects_per_km2``,
    ``coverage``. Only the per-(row, class) sums travel to the client; ``dask_client``: a
    ``distributed.Client`` or scheduler address to compute on (see :func:`compute`)."""
    meta = pd.DataFrame(
        {
            "row": pd.Series([], dtype=ddf._meta["row"].dtype),
            "cls": pd.Series([], dtype=object),
            "n": pd.Series([], dtype="int64"),
            "area": pd.Series([], dtype="float64"),
        }
    )
    sums = compute(ddf.map_partitions(class_sums, meta=meta), dask_client)
    return stats_from_sums(sums, result.aois, result.tiles)
