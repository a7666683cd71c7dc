"""The entry points: :func:`changes` and :func:`changes_to_parquet`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from mapflow_geo.results.changes._objects import as_frame, frame_objects
from mapflow_geo.results.changes._partitioned import iter_changes
from mapflow_geo.results.changes._rule import ChangeRule
from mapflow_geo.results.changes._table import changes_of, empty_changes, finish, id_list
from mapflow_geo.results.geoparquet import frame_table, with_bbox, write_part


def changes(
    before: Any,
    after: Any,
    *,
    min_iou: float = 0.8,
    tolerance_m: float = 1.0,
    area_change: float = 0.10,
    area_change_m2: float = 5.0,
    min_overlap: float = 0.5,
    unchanged: bool = True,
    partition_features: int = 500_000,
    margin_m: float = 250.0,
    workdir: str | Path | None = None,
) -> gpd.GeoDataFrame:
    """Object-level change from ``before`` to ``after``: ``new``, ``removed``,
    ``modified`` (with its area change) or ``unchanged``, robust to outline jitter and to
    the two runs' different tiles and seams.

    Objects are matched by overlap, one to one or in groups for splits and merges; see
    the module docstring (:mod:`mapflow_geo.results.changes`) for the rule.

    Parameters
    ----------
    before, after : MapflowResult, GeoDataFrame, or str / Path
        Results (their ``features``; or the GeoParquet dataset a result wrote with
        ``to_parquet``, when it did), GeoDataFrames (EPSG:4326, or any CRS: they are
        converted), or GeoParquet files or directories. When either side is a dataset
        (or the two frames hold more than ``8 * partition_features`` objects), both are
        processed partition by partition with bounded memory (the same result as in
        memory). Polygons are compared; lines and points are left out. Ids are the
        ``id`` column (else the index label); dates the ``processing_date`` column (else
        ``date``).
    min_iou : float
        A matched group whose intersection over union, measured with ``tolerance_m``,
        is below this is modified (when the parts outside exceed ``area_change_m2``).
    tolerance_m : float
        Outlines within this distance (m) of each other are the same outline: only
        change lying farther than this counts.
    area_change, area_change_m2 : float
        A matched group is modified when its area changed by more than this share and
        by more than this many m² (of which more than ``area_change_m2`` lies beyond
        the tolerance).
    min_overlap : float
        Objects are matched when they overlap over this share of the smaller one.
    unchanged : bool
        Keep the ``unchanged`` rows (most of them, usually).
    partition_features, margin_m, workdir
        The dataset path: objects per partition (both sides), the margin around each
        partition, where its temporary files go (default: the system's temp directory).

    Returns
    -------
    GeoDataFrame
        One row per change (EPSG:4326): ``change`` (categorical, :data:`CHANGES`),
        ``before_id`` / ``after_id`` (an id, a list of ids for a split or merge, None
        for the missing side), ``before_date`` / ``after_date``, ``area_before_m2``,
        ``area_after_m2``, ``area_change_m2`` (after − before: a new object's area, minus
        a removed one's), ``area_change_pct`` (of the before area), ``iou``, ``match``
        (``"1:1"``, ``"1:n"`` split, ``"n:1"`` merge, ``"n:m"``), ``object_type``, ``row``
        (the input row of the after side, the before side's for removed objects) and the
        geometry (after's, before's for removed objects). In input order of the before
        objects, then the new ones.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> b = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[box(0, 0, 1e-4, 1e-4),
    ...                       box(1e-3, 0, 1.1e-3, 1e-4)], crs=4326)
    >>> a = gpd.GeoDataFrame({"id": ["A", "C"]}, geometry=[box(0, 0, 1e-4, 1.5e-4),
    ...                       box(5e-3, 0, 5.1e-3, 1e-4)], crs=4326)
    >>> changes(b, a)[["change", "before_id", "after_id"]]
         change before_id after_id
    0  modified         a        A
    1   removed         b     None
    2       new      None        C
    """
    rule = ChangeRule(min_overlap, min_iou, tolerance_m, area_change, area_change_m2)
    before, after = source_of(before), source_of(after)
    big = not is_path(before) and not is_path(after)
    big = big and len(before) + len(after) > 8 * partition_features
    if is_path(before) or is_path(after) or big:
        parts = list(
            iter_changes(before, after, rule, int(partition_features), float(margin_m), workdir)
        )
        out = finish(pd.concat(parts, ignore_index=True)) if parts else empty_changes()
    else:
        out = changes_of(frame_objects(before), frame_objects(after), rule, unchanged)
    if not unchanged:
        out = out[out["change"] != "unchanged"].reset_index(drop=True)
    return out


def changes_to_parquet(
    before: Any,
    after: Any,
    path: str | Path,
    *,
    unchanged: bool = True,
    partition_features: int = 500_000,
    margin_m: float = 250.0,
    workdir: str | Path | None = None,
    **rule: float,
) -> Path:
    """:func:`changes` on the dataset path (any side as for :func:`changes`), written
    partition by partition as a GeoParquet directory ``path`` (``part-00000.parquet``…,
    with a ``bbox`` covering column, as :mod:`~mapflow_geo.results.geoparquet` writes),
    so that neither the inputs nor the changes are ever held in memory whole.
    ``before_id`` / ``after_id`` are lists of strings there (one id, several, or none).
    Returns ``path``.

    ``rule``: ``min_iou``, ``tolerance_m``, ``area_change``, ``area_change_m2``,
    ``min_overlap`` as for :func:`changes`.
    """
    r = ChangeRule(**rule)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    k = 0
    sides = (source_of(before), source_of(after))
    for part in iter_changes(*sides, r, int(partition_features), float(margin_m), workdir):
        part = finish(part)
        if not unchanged:
            part = part[part["change"] != "unchanged"]
        if len(part):
            for col in ("before_id", "after_id"):
                part[col] = [id_list(v) for v in part[col]]
            table, kinds = with_bbox(frame_table(part))
            write_part(table, path / f"part-{k:05d}.parquet", kinds, public=False)
            k += 1
    return path


def is_path(x: Any) -> bool:
    return isinstance(x, str | Path)


def source_of(obj: Any) -> str | Path | gpd.GeoDataFrame:
    """A side as a GeoParquet path (given, or the dataset a result wrote with
    ``to_parquet``: compared with bounded memory) or a GeoDataFrame."""
    if is_path(obj):
        return obj
    dataset = getattr(obj, "dataset", None)
    if dataset is not None and hasattr(obj, "features"):
        return Path(dataset)
    return as_frame(obj)
