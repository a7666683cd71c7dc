"""One side of a comparison: its polygons normalised, with the properties a change reports,
and the local metric frames the rule measures in."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from mapflow_geo._geodesy import m2_per_deg2, metres_per_degree
from mapflow_geo.aoi import polygonal
from mapflow_geo.results.changes._overlay import Edges

#: The properties of an object a change reports.
PROPS = ("id", "row", "object_type", "date")


@dataclasses.dataclass
class Objects:
    """One side's polygons, normalised: ``gid`` (input position, the identity), valid
    EPSG:4326 geometries, envelopes, and the properties a change reports."""

    gid: np.ndarray
    geoms: np.ndarray
    props: pd.DataFrame  # id, row, object_type, date; RangeIndex

    def __post_init__(self) -> None:
        self.bounds = shapely.bounds(self.geoms) if len(self.geoms) else np.zeros((0, 4))
        self.area_deg = shapely.area(self.geoms)
        self.lat = (self.bounds[:, 1] + self.bounds[:, 3]) / 2
        self.area_m2 = self.area_deg * m2_per_deg2(self.lat)

    def __len__(self) -> int:
        return len(self.gid)

    @functools.cached_property
    def simple(self) -> np.ndarray:
        """Polygons of one ring (no holes, one part): most objects."""
        return (shapely.get_type_id(self.geoms) == 3) & (
            shapely.get_num_interior_rings(self.geoms) == 0
        )

    def edges(self, sel: np.ndarray) -> Edges:
        """The oriented edges of objects ``sel`` (for the intersection kernel)."""
        return Edges.of(self.geoms, sel, self.simple)

    def take(self, idx: np.ndarray) -> Objects:
        return Objects(self.gid[idx], self.geoms[idx], self.props.iloc[idx].reset_index(drop=True))

    @staticmethod
    def concat(parts: list[Objects]) -> Objects:
        parts = [p for p in parts if len(p)] or parts[:1]
        return Objects(
            np.concatenate([p.gid for p in parts]),
            np.concatenate([p.geoms for p in parts]),
            pd.concat([p.props for p in parts], ignore_index=True),
        )


def as_frame(obj: Any) -> gpd.GeoDataFrame:
    """A MapflowResult's ``features`` or a GeoDataFrame, in EPSG:4326."""
    feats = getattr(obj, "features", obj)
    if not isinstance(feats, gpd.GeoDataFrame):
        raise TypeError(
            "changes() compares MapflowResults, GeoDataFrames or GeoParquet paths, "
            f"not {type(obj).__name__}"
        )
    if feats.crs is not None and not feats.crs.equals("EPSG:4326"):
        feats = feats.to_crs(4326)
    return feats


def normalise(frame: pd.DataFrame, geoms: np.ndarray, gid: np.ndarray) -> Objects:
    """The polygonal objects of a frame (lines, points, empties dropped; invalid ones
    repaired) with their ``id`` (the frame's ``id``, else its index label), ``row``,
    ``object_type`` and ``date`` (``processing_date``, else ``date``)."""
    n = len(frame)
    props = pd.DataFrame(index=pd.RangeIndex(n))
    props["id"] = frame["id"].to_numpy() if "id" in frame else frame.index.to_numpy()
    props["row"] = frame["row"].to_numpy() if "row" in frame else None
    kind = frame["object_type"] if "object_type" in frame else None
    # a few types over many objects: codes, not a string per object
    props["object_type"] = (
        pd.Categorical(kind)
        if kind is not None and kind.notna().all()
        else (kind.to_numpy() if kind is not None else None)
    )
    date = next((frame[c] for c in ("processing_date", "date") if c in frame), None)
    props["date"] = _dates(date, n)
    geoms = np.asarray(geoms, dtype=object)
    kind = shapely.get_type_id(geoms)
    bad = np.flatnonzero((kind >= 0) & ~shapely.is_valid(geoms))
    if len(bad):
        geoms = geoms.copy()
        geoms[bad] = [polygonal(g) for g in shapely.make_valid(geoms[bad])]
    odd = np.flatnonzero(kind == 7)  # collections: their polygonal part
    if len(odd):
        geoms = geoms.copy()
        geoms[odd] = [polygonal(g) for g in geoms[odd]]
        kind = shapely.get_type_id(geoms)
    keep = np.isin(kind, (3, 6)) & ~shapely.is_empty(geoms)
    keep[keep] = shapely.area(geoms[keep]) > 0
    idx = np.flatnonzero(keep)
    return Objects(
        np.asarray(gid, dtype=np.int64)[idx],
        geoms[idx],
        props.iloc[idx].reset_index(drop=True),
    )


def _dates(col: pd.Series | None, n: int) -> np.ndarray:
    """Dates as naive UTC datetime64 (NaT where missing or unreadable); parsed once per
    distinct value."""
    if col is None:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    codes, uniques = pd.factorize(col)
    values = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    parsed = pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None)
    table = np.r_[parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns")]
    return table[np.where(codes >= 0, codes, len(table) - 1)]


def frame_objects(obj: Any) -> Objects:
    feats = as_frame(obj)
    return normalise(feats, feats.geometry.values, np.arange(len(feats)))


def empty_props() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in PROPS}).assign(
        date=pd.Series([], dtype="datetime64[ns]")
    )


def envelopes(bounds: np.ndarray, metres: float) -> np.ndarray:
    """Envelopes grown by ``metres`` (degrees at their latitude), as boxes."""
    kx, ky = metres_per_degree(np.maximum(np.abs(bounds[:, 1]), np.abs(bounds[:, 3])))
    mx, my = metres / kx, metres / ky
    return shapely.box(bounds[:, 0] - mx, bounds[:, 1] - my, bounds[:, 2] + mx, bounds[:, 3] + my)


def to_local(geoms, lon0, lat0, kx, ky) -> np.ndarray:
    """Geometries in metres about their own origin (one per geometry)."""
    if not len(geoms):
        return geoms
    counts = shapely.get_num_coordinates(geoms)
    owner = np.repeat(np.arange(len(geoms)), counts)

    def shift(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [(xy[:, 0] - lon0[owner]) * kx[owner], (xy[:, 1] - lat0[owner]) * ky[owner]]
        )

    return shapely.transform(geoms, shift)
