"""Geometry as results arrive: every object valid, 2-D and of its own kind, once.

Models emit what no later step should see: rings that cross themselves, repeated
vertices, empty or null geometries, GeometryCollections, a third coordinate. On ingest
(:mod:`mapflow_geo.run.fetch`) each object becomes valid polygonal, linear or point
geometry in EPSG:4326 (GeoJSON's CRS): Z is dropped, repeated points removed, invalid
geometry made valid (``shapely.make_valid``), collections reduced to their parts of the
object's kind (the highest dimension it has: a building's polygons, a road's lines), and
what is left empty is dropped. How many were repaired and dropped is returned for the
result's QA table (``MapflowResult.qa``). Clean objects are left as they are, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely

#: Columns of ``MapflowResult.qa``: per processing, objects stored, repaired, dropped,
#: and results given up on as unreadable.
QA_COLUMNS = ["key", "processing_id", "objects", "repaired", "dropped", "damaged_results"]
_COLLECTION = 7
_MULTI = {0: shapely.multipoints, 1: shapely.multilinestrings, 2: shapely.multipolygons}


@dataclass(frozen=True)
class Repairs:
    """What :func:`repair_table` did to one result: objects ``repaired`` (kept, with
    their geometry changed) and ``dropped`` (nothing of their kind left)."""

    repaired: int = 0
    dropped: int = 0


def repair_geometries(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(geometries, keep, repaired)``: every geometry valid, 2-D, of its own kind;
    ``keep`` is False where nothing is left (null, empty), ``repaired`` True where the
    geometry changed."""
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    missing = shapely.is_missing(geoms)
    present = ~missing
    keep = present & ~shapely.is_empty(geoms)
    # vectorised detection; only the damaged few go through the repairs below
    suspect = np.zeros(len(geoms), dtype=bool)
    idx = np.flatnonzero(keep)
    g = geoms[idx]
    suspect[idx] = (
        shapely.has_z(g)
        | _repeated_points(g)
        | (shapely.get_type_id(g) == _COLLECTION)
        | ~shapely.is_valid(g)
    )
    repaired = np.zeros(len(geoms), dtype=bool)
    for i in np.flatnonzero(suspect):
        fixed = _repair_one(geoms[i])
        if fixed is None:
            keep[i] = False
        elif not shapely.equals_exact(fixed, geoms[i], 0.0) or shapely.has_z(geoms[i]):
            out[i] = fixed
            repaired[i] = True
    return out, keep, repaired


def _repeated_points(geoms: np.ndarray) -> np.ndarray:
    """Whether each geometry has a vertex twice in a row (coordinates, no GEOS calls)."""
    xy, which = shapely.get_coordinates(geoms, return_index=True)
    same = (xy[1:] == xy[:-1]).all(axis=1) & (which[1:] == which[:-1])
    out = np.zeros(len(geoms), dtype=bool)
    out[which[1:][same]] = True
    return out


def _repair_one(geom) -> shapely.Geometry | None:
    dim = int(shapely.get_dimensions(geom))  # a collection's: its highest part's
    g = shapely.remove_repeated_points(shapely.force_2d(geom))
    if not shapely.is_valid(g):
        g = shapely.make_valid(g)
    parts = _parts_of_dimension(g, dim)
    if not parts:
        return None
    if len(parts) == 1:
        one = parts[0]
    else:
        one = _MULTI[dim](parts)
        if not shapely.is_valid(one):  # parts of a collection that overlap
            one = shapely.make_valid(one)
            pieces = _parts_of_dimension(one, dim)
            if not pieces:
                return None
            one = pieces[0] if len(pieces) == 1 else _MULTI[dim](pieces)
    return None if shapely.is_empty(one) else one


def _parts_of_dimension(geom, dim: int) -> list:
    """The single parts (Polygon, LineString or Point) of ``geom`` of dimension ``dim``."""
    out, todo = [], [geom]
    while todo:
        g = todo.pop()
        if shapely.is_empty(g):
            continue
        if shapely.get_type_id(g) in (4, 5, 6, _COLLECTION):
            todo.extend(reversed(shapely.get_parts(g).tolist()))
        elif shapely.get_dimensions(g) == dim:
            out.append(g)
    return out


def repair_table(table: pa.Table) -> tuple[pa.Table, Repairs]:
    """:func:`repair_geometries` on an Arrow table's WKB ``geometry`` column: rows with
    nothing left are removed, repaired geometries rewritten; untouched otherwise."""
    if table.num_rows == 0:
        return table, Repairs()
    col = table.column("geometry")
    geoms = shapely.from_wkb(np.asarray(col.to_numpy(zero_copy_only=False), dtype=object))
    fixed, keep, repaired = repair_geometries(geoms)
    n_rep, n_drop = int(repaired[keep].sum()), int((~keep).sum())
    if not n_rep and not n_drop:
        return table, Repairs()
    if n_rep:
        wkb = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object).copy()
        wkb[repaired] = shapely.to_wkb(fixed[repaired])
        i = table.column_names.index("geometry")
        table = table.set_column(i, "geometry", pa.array(wkb.tolist(), pa.binary()))
    if n_drop:
        table = table.filter(pa.array(keep))
    return table, Repairs(n_rep, n_drop)


def repair_rows(table: pa.Table, geoms: np.ndarray) -> tuple[pa.Table, np.ndarray, Repairs]:
    """:func:`repair_geometries` on ``geoms``, the geometries of ``table``'s rows (a table
    of properties without a geometry column, as :func:`~mapflow_geo.results.io.read_geojson_parts`
    gives them): ``(table, geometries, repairs)`` with the rows that have nothing left
    removed from both."""
    fixed, keep, repaired = repair_geometries(geoms)
    n_rep, n_drop = int(repaired[keep].sum()), int((~keep).sum())
    if n_drop:
        table, fixed = table.filter(pa.array(keep)), fixed[keep]
    return table, fixed, Repairs(n_rep, n_drop)


def repair_parts(table: pa.Table, geoms: np.ndarray) -> tuple[pa.Table, Repairs]:
    """:func:`repair_rows`, with the repaired geometries appended to the table as its WKB
    ``geometry`` column. The geometries are encoded once, here."""
    table, fixed, repairs = repair_rows(table, geoms)
    wkb = pa.array(shapely.to_wkb(fixed), pa.binary())
    return table.append_column("geometry", wkb), repairs


def qa_metadata(qa) -> dict:
    """The QA table as a dataset's ``mapflow_geo`` metadata: totals, and the processings
    with something repaired or dropped."""
    if qa is None or not len(qa):
        return {"repaired": 0, "dropped": 0, "processings": []}
    touched = qa[(qa["repaired"] > 0) | (qa["dropped"] > 0)]
    return {
        "repaired": int(qa["repaired"].sum()),
        "dropped": int(qa["dropped"].sum()),
        "processings": [
            {"processing_id": str(p), "repaired": int(r), "dropped": int(d)}
            for p, r, d in zip(
                touched["processing_id"], touched["repaired"], touched["dropped"], strict=True
            )
        ],
    }
