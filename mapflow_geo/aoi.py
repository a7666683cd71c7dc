"""Turn whatever the user gives into one valid EPSG:4326 polygon frame.

:func:`prepare_aois` is the single door: it reprojects, repairs, splits at the
antimeridian, refuses what Mapflow cannot take (naming the row), and trims overlaps so
no ground is billed twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Iterable
from typing import Any, Literal, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from mapflow_geo._geodesy import geodesic_area_km2
from mapflow_geo.exceptions import AOIError, AOIRepairWarning, AOITypeError, AOIWarning, warn

logger = logging.getLogger(__name__)

#: Mapflow (Web Mercator imagery) does not go beyond this latitude.
MAX_LATITUDE = 85.0
#: Coordinates are rounded to this many decimals of a degree (~0.1 µm).
COORD_DECIMALS = 12

_WORLD = shapely.box(-180.0, -90.0, 180.0, 90.0)
_SHIFTS = (  # (window, shift that brings it into -180..180)
    (shapely.box(-540.0, -90.0, -180.0, 90.0), 360.0),
    (_WORLD, 0.0),
    (shapely.box(180.0, -90.0, 540.0, 90.0), -360.0),
)


class _RowProblem(Exception):
    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


# ----------------------------------------------------------------------------- input
def _as_geodataframe(data: Any) -> gpd.GeoDataFrame:
    """Coerce supported inputs to a GeoDataFrame (CRS may be missing for frames)."""
    if isinstance(data, gpd.GeoDataFrame):
        return data
    if isinstance(data, gpd.GeoSeries):
        return gpd.GeoDataFrame(geometry=data, crs=data.crs)
    if isinstance(data, pd.DataFrame):
        if "geometry" in data.columns:
            for label, g in data["geometry"].items():
                if not (g is None or isinstance(g, BaseGeometry)):
                    raise AOITypeError(
                        f"is a {type(g).__name__}, not a shapely geometry", row=label
                    )
            return gpd.GeoDataFrame(data, geometry="geometry")
        raise AOITypeError("a DataFrame needs a 'geometry' column of shapely geometries")
    if isinstance(data, (str, os.PathLike)):
        return gpd.read_file(data)
    if isinstance(data, BaseGeometry):
        return gpd.GeoDataFrame(geometry=[data], crs="EPSG:4326")
    if isinstance(data, dict) or hasattr(data, "__geo_interface__"):
        gj = data if isinstance(data, dict) else data.__geo_interface__
        kind = gj.get("type")
        if kind == "FeatureCollection":
            return gpd.GeoDataFrame.from_features(gj, crs="EPSG:4326")
        if kind == "Feature":
            return gpd.GeoDataFrame.from_features([gj], crs="EPSG:4326")
        if kind is not None:
            return gpd.GeoDataFrame(geometry=[shapely.geometry.shape(gj)], crs="EPSG:4326")
        raise AOITypeError("a mapping must be GeoJSON (Feature, FeatureCollection or geometry)")
    if isinstance(data, Iterable):
        items = list(data)
        bad = [i for i, g in enumerate(items) if not (g is None or isinstance(g, BaseGeometry))]
        if not bad:
            return gpd.GeoDataFrame(geometry=items, crs="EPSG:4326")
        raise AOITypeError(
            f"is a {type(items[bad[0]]).__name__}, not a shapely geometry", row=bad[0]
        )
    raise AOITypeError(
        f"cannot use {type(data).__name__} as AOIs: give a GeoDataFrame, a GeoSeries, "
        "shapely geometries, GeoJSON or a path to a vector file"
    )


# ------------------------------------------------------------------------ per row
def polygon_parts(geom: BaseGeometry | None) -> list[shapely.Polygon]:
    """The non-empty polygons of any geometry (collections and multi-parts flattened,
    lines and points dropped), in order.

    >>> gc = shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.Point(5, 5)])
    >>> len(polygon_parts(gc)), polygon_parts(gc)[0].area
    (1, 1.0)
    """
    if geom is None:
        return []
    out = []
    for p in shapely.get_parts(geom):
        if p.geom_type == "Polygon":
            if not p.is_empty and p.area > 0.0:
                out.append(p)
        elif p.geom_type in ("MultiPolygon", "GeometryCollection"):
            out.extend(polygon_parts(p))
    return out


def polygonal(geom: BaseGeometry | None) -> BaseGeometry:
    """The polygonal part of a geometry as one Polygon or MultiPolygon (an empty Polygon
    when there is none); Polygons and MultiPolygons come back as they are."""
    if geom is not None and geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = polygon_parts(geom)
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _unwrap_ring(coords: np.ndarray, ref_lon: float | None) -> np.ndarray:
    """Remove ±360° jumps in a ring's longitudes; shift near ``ref_lon`` if given."""
    lon = coords[:, 0].copy()
    d = np.diff(lon)
    jumps = np.where(d > 180.0, -360.0, np.where(d < -180.0, 360.0, 0.0))
    if jumps.any():
        lon[1:] += np.cumsum(jumps)
        if abs(lon[-1] - lon[0]) > 1e-9:
            raise _RowProblem("a ring winds around a pole; split it into parts that do not")
    if ref_lon is not None:
        k = np.round((np.mean(lon) - ref_lon) / 360.0)
        lon -= 360.0 * k
    out = coords.copy()
    out[:, 0] = lon
    return out


def _unwrap_polygon(poly: shapely.Polygon) -> shapely.Polygon:
    shell = _unwrap_ring(np.asarray(poly.exterior.coords)[:, :2], None)
    ref = float(np.mean(shell[:, 0]))
    holes = [_unwrap_ring(np.asarray(r.coords)[:, :2], ref) for r in poly.interiors]
    return shapely.Polygon(shell, holes)


def _repair(geom: BaseGeometry) -> BaseGeometry:
    """Make valid without losing area.

    ``make_valid(method="structure")`` keeps every lobe of a self-intersecting ring,
    unions overlapping parts and subtracts holes; for hole-free inputs we also union the
    ``"linework"`` result, so nothing covered by any ring is ever lost.
    """
    if geom.is_valid:
        return geom
    fixed = polygonal(shapely.make_valid(geom, method="structure", keep_collapsed=False))
    if shapely.get_num_interior_rings(shapely.get_parts(geom)).sum() == 0:
        lw = polygonal(shapely.make_valid(geom, method="linework"))
        if not lw.is_empty:
            fixed = polygonal(shapely.union(fixed, lw)) if not fixed.is_empty else lw
    return fixed


def _prepare_geometry(geom: BaseGeometry | None) -> tuple[BaseGeometry, _Repair | None]:
    """One row's geometry (already in EPSG:4326) → valid polygonal lon/lat in ±180, and
    what its repair changed when it was not valid."""
    if geom is None:
        raise _RowProblem("has no geometry (None)")
    if geom.is_empty:
        raise _RowProblem("has an empty geometry")
    kind = geom.geom_type
    if kind == "GeometryCollection":
        geom = polygonal(geom)
        if geom.is_empty:
            raise _RowProblem("is a GeometryCollection without polygons")
    elif kind not in ("Polygon", "MultiPolygon"):
        raise _RowProblem(f"is a {kind}, not a Polygon or MultiPolygon")
    geom = shapely.force_2d(geom)
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise _RowProblem("has NaN or infinite coordinates")
    lat = xy[:, 1]
    if np.abs(lat).max() > 90.0 or np.abs(xy[:, 0]).max() > 540.0:
        raise _RowProblem(
            "has coordinates outside longitude/latitude range (wrong CRS on the frame?)"
        )
    if np.abs(lat).max() > MAX_LATITUDE:
        raise _RowProblem(
            f"reaches latitude {lat[np.argmax(np.abs(lat))]:.4f}°, beyond ±{MAX_LATITUDE:g}° "
            "(Mapflow imagery does not cover it)"
        )
    # snap to a 1e-12° grid (~0.1 µm): removes subnormal and sub-precision noise that
    # makes later overlay operations unstable; any invalidity it creates is repaired
    geom = shapely.transform(geom, lambda c: np.round(c, COORD_DECIMALS))
    # antimeridian: unwrap each polygon so rings are continuous in longitude
    polys = [_unwrap_polygon(p) for p in shapely.get_parts(geom) if not p.is_empty]
    geom = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    repair = None
    if not geom.is_valid:
        repair = _Repair(shapely.is_valid_reason(geom), float(geodesic_area_km2([geom])[0]))
        geom = _repair(geom)
    # split at ±180 and bring every piece into -180..180
    xmin, _, xmax, _ = geom.bounds if not geom.is_empty else (0, 0, 0, 0)
    if xmin < -180.0 or xmax > 180.0:
        pieces = []
        for window, shift in _SHIFTS:
            part = polygonal(shapely.intersection(geom, window))
            if not part.is_empty:
                pieces.extend(
                    shapely.get_parts(shapely.transform(part, lambda c, s=shift: c + (s, 0.0)))
                )
        if np.abs(shapely.get_coordinates(pieces)[:, 0]).max(initial=0) > 180.0 + 1e-9:
            raise _RowProblem("spans more than 360° of longitude")
        pieces = [p for p in pieces if p.geom_type == "Polygon" and p.area > 0]
        geom = (
            shapely.Polygon()
            if not pieces
            else pieces[0]
            if len(pieces) == 1
            else polygonal(shapely.make_valid(shapely.MultiPolygon(pieces)))
        )
    geom = polygonal(geom)
    if geom.is_empty or geom.area <= 0.0:
        raise _RowProblem("has no area (degenerate polygon)")
    return geom, repair


class _Repair(NamedTuple):
    reason: str  # GEOS's words, e.g. "Self-intersection[0.05 0.05]"
    drawn_km2: float  # the ring's area as drawn (lobes of a crossed ring cancel)


def _warn_repaired(repairs: dict[Hashable, _Repair], areas: dict[Hashable, float]) -> None:
    """One :class:`AOIRepairWarning` naming each repaired row and its area change."""
    if not repairs:
        return
    rows = {label: (r.drawn_km2, areas[label]) for label, r in repairs.items()}
    lines = [
        f"row {label!r} ({r.reason}): {r.drawn_km2:,.4f} km² as drawn → "
        f"{areas[label]:,.4f} km² repaired ({areas[label] - r.drawn_km2:+,.4f} km²)"
        for label, r in list(repairs.items())[:10]
    ]
    more = f"; and {len(repairs) - 10} more" if len(repairs) > 10 else ""
    warn(
        AOIRepairWarning(
            f"repaired {len(repairs)} invalid geometr{'y' if len(repairs) == 1 else 'ies'}, "
            f"which will be planned and charged as repaired: {'; '.join(lines)}{more}. "
            "Fix the input (e.g. shapely.make_valid) if that is not the area you mean.",
            rows,
        ),
        AOIRepairWarning,
    )


# ------------------------------------------------------------------------- public
def prepare_aois(
    gdf: Any,
    *,
    input_errors: Literal["raise", "skip"] = "raise",
) -> gpd.GeoDataFrame:
    """Turn user geometries into valid, non-overlapping EPSG:4326 AOI polygons.

    Parameters
    ----------
    gdf : GeoDataFrame, GeoSeries, shapely geometry, sequence of geometries, GeoJSON
        mapping (or object with ``__geo_interface__``), or a path to a vector file.
        Frames and series must carry a CRS (any CRS: they are reprojected); bare
        geometries and GeoJSON are taken as EPSG:4326 longitude/latitude (RFC 7946).
    input_errors : {"raise", "skip"}
        What to do with a row that cannot be an AOI (no/empty geometry, a point or line,
        NaN/infinite coordinates, latitudes beyond ±85°, no area): ``"raise"`` an
        :class:`~mapflow_geo.exceptions.AOIError` naming the row label and the
        problem, or ``"skip"`` the row with an :class:`AOIWarning` naming it.

    Returns
    -------
    GeoDataFrame
        EPSG:4326, one row per input row kept, indexed by the input labels, with the
        input's other columns, a ``row`` column (the label again, kept through later
        steps), ``area_km2`` (geodesic, WGS84) and a Polygon/MultiPolygon geometry.

    Notes
    -----
    *Repair.* Invalid geometries are repaired without losing area: a bowtie keeps both
    lobes, overlapping parts of a MultiPolygon are unioned, and only the polygonal parts
    of a repair that yields a collection are kept.

    *Antimeridian.* Longitudes may be given in -180..180 or 0..360. A ring edge that
    jumps by more than 180° of longitude is read as crossing the antimeridian; such
    AOIs (and those beyond 180°) are split into parts on both sides, all within
    -180..180. A ring that winds around a pole is refused.

    *Overlaps: first row wins.* Each point of ground belongs to the first row, in the
    frame's order, whose geometry covers it; later rows are trimmed by the union of the
    earlier ones, so nothing is planned or billed twice. A row trimmed to nothing is
    dropped with an :class:`AOIWarning` (in both ``input_errors`` modes: its ground is still
    covered by the earlier rows).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> bowtie = shapely.Polygon([(0, 0), (0.1, 0.1), (0.1, 0), (0, 0.1)])
    >>> inside = shapely.box(0.005, 0.04, 0.02, 0.06)
    >>> gdf = gpd.GeoDataFrame(geometry=[bowtie, inside], crs=4326)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # row 1 lies inside row 0: dropped
    ...     out = prepare_aois(gdf)
    >>> out["row"].tolist(), out.geometry.iloc[0].geom_type  # both lobes kept
    ([0], 'MultiPolygon')
    """
    if input_errors not in ("raise", "skip"):
        raise ValueError(f"input_errors must be 'raise' or 'skip', not {input_errors!r}")
    frame = _checked_frame(gdf)
    labels: list[Hashable] = frame.index.tolist()
    geoms_in = np.asarray(frame.geometry.values, dtype=object)
    problems = _kind_problems(geoms_in)  # before reprojection: NaN/inf, geometry kind
    geoms = _to_wgs84(geoms_in, frame.crs, [i not in problems for i in range(len(geoms_in))])
    out_geoms, repairs = _prepare_rows(geoms, problems)
    if problems:
        _refuse_or_skip(problems, labels, input_errors)
    if repairs:
        after = geodesic_area_km2([out_geoms[i] for i in repairs])
        areas = {labels[i]: float(a) for i, a in zip(repairs, after, strict=True)}
        _warn_repaired({labels[i]: r for i, r in repairs.items()}, areas)
    keep = [i for i in range(len(geoms)) if i not in problems]
    final = _first_row_wins(keep, [out_geoms[i] for i in keep], labels)
    out = _aoi_frame(frame, labels, final)
    logger.debug("prepared %d AOI row(s) from %d input row(s)", len(out), len(frame))
    return out


def _checked_frame(gdf: Any) -> gpd.GeoDataFrame:
    """The input as a frame with a CRS and unique labels (warns when it has no rows)."""
    frame = _as_geodataframe(gdf)
    if frame.crs is None:
        raise AOIError("the frame has no CRS; set one (e.g. gdf.set_crs(4326))", row=None)
    if len(frame) == 0:
        warn("the frame has no rows: there is nothing to plan", AOIWarning)
    if not frame.index.is_unique:
        dup = frame.index[frame.index.duplicated()].tolist()[0]  # 3, not np.int64(3)
        raise AOIError(f"index labels must be unique (label {dup!r} repeats)", row=None)
    return frame


def _kind_problems(geoms: np.ndarray) -> dict[int, str]:
    """By position, the rows that are no polygon at all or have non-finite coordinates."""
    problems: dict[int, str] = {}
    for i, g in enumerate(geoms):
        if g is None:
            problems[i] = "has no geometry (None)"
        elif g.is_empty:
            problems[i] = "has an empty geometry"
        elif g.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
            problems[i] = f"is a {g.geom_type}, not a Polygon or MultiPolygon"
        elif not np.isfinite(shapely.get_coordinates(g)).all():
            problems[i] = "has NaN or infinite coordinates"
    return problems


def _to_wgs84(geoms: np.ndarray, crs: Any, ok: list[bool]) -> np.ndarray:
    """The geometries at the ``ok`` positions reprojected to EPSG:4326, the rest as given."""
    ok_mask = np.array(ok, dtype=bool)
    out = geoms.copy()
    if ok_mask.any() and not crs.equals("EPSG:4326"):
        src = gpd.GeoSeries(geoms[ok_mask], crs=crs)
        with np.errstate(all="ignore"):
            out[ok_mask] = np.asarray(src.to_crs("EPSG:4326").values, dtype=object)
    return out


def _prepare_rows(
    geoms: np.ndarray, problems: dict[int, str]
) -> tuple[list[BaseGeometry | None], dict[int, _Repair]]:
    """Each row without a problem prepared (:func:`_prepare_geometry`), and the repairs
    made, by position; a row that cannot be prepared is added to ``problems``."""
    out: list[BaseGeometry | None] = [None] * len(geoms)
    repairs: dict[int, _Repair] = {}
    for i, g in enumerate(geoms):
        if i in problems:
            continue
        try:
            out[i], repair = _prepare_geometry(g)
            if repair is not None:
                repairs[i] = repair
        except _RowProblem as exc:
            problems[i] = exc.problem
        except shapely.errors.GEOSException as exc:  # pragma: no cover - defensive
            problems[i] = f"cannot be repaired ({exc})"
    return out, repairs


def _refuse_or_skip(problems: dict[int, str], labels: list[Hashable], input_errors: str) -> None:
    """Raise :class:`AOIError` naming the first unusable row, or warn naming each one."""
    first = min(problems)
    if input_errors == "raise":
        extra = f" ({len(problems) - 1} more row(s) rejected)" if len(problems) > 1 else ""
        raise AOIError(problems[first] + extra, row=labels[first])
    text = "; ".join(f"row {labels[i]!r} {problems[i]}" for i in sorted(problems))
    warn(f"skipped {len(problems)} row(s): {text}", AOIWarning)


def _first_row_wins(
    keep: list[int], geoms: list[BaseGeometry], labels: list[Hashable]
) -> list[tuple[int, BaseGeometry]]:
    """The kept rows' positions and geometries trimmed by the earlier rows, without the
    rows trimmed to nothing (one :class:`AOIWarning` names them)."""
    trimmed = _trim_overlaps(geoms)
    dropped = [labels[keep[j]] for j, g in enumerate(trimmed) if g is None]
    if dropped:
        warn(
            f"dropped {len(dropped)} row(s) wholly covered by earlier rows: "
            + ", ".join(repr(x) for x in dropped),
            AOIWarning,
        )
    return [(keep[j], g) for j, g in enumerate(trimmed) if g is not None]


def _aoi_frame(
    frame: gpd.GeoDataFrame, labels: list[Hashable], final: list[tuple[int, BaseGeometry]]
) -> gpd.GeoDataFrame:
    """The prepared frame: the input's other columns, ``row``, ``area_km2``, geometry."""
    pos = [i for i, _ in final]
    data = pd.DataFrame(frame.drop(columns=frame.geometry.name)).iloc[pos].copy()
    data["row"] = [labels[i] for i in pos]
    geometry = [g for _, g in final]
    data["area_km2"] = geodesic_area_km2(geometry) if geometry else np.zeros(0)
    out = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, index=data.index), crs=4326)
    return out.rename_geometry("geometry") if out.geometry.name != "geometry" else out


def require_rows(aois: gpd.GeoDataFrame, given: Any) -> None:
    """Refuse to run, estimate or monitor nothing: ``aois`` (prepared from ``given``)
    is empty because the input frame has no rows, or because every row was skipped
    (:func:`prepare_aois` with ``input_errors="skip"``)."""
    if len(aois):
        return
    if isinstance(given, (pd.DataFrame, pd.Series)) and len(given) == 0:
        raise AOIError("the frame has no rows: there is nothing to process", row=None)
    raise AOIError("no input row is usable (every row was skipped): nothing to process")


def _trim_overlaps(geoms: list[BaseGeometry]) -> list[BaseGeometry | None]:
    """Trim each geometry by the union of the earlier ones that overlap it."""
    if len(geoms) < 2:
        return list(geoms)
    arr = np.asarray(geoms, dtype=object)
    tree = shapely.STRtree(arr)
    left, right = tree.query(arr, predicate="intersects")
    earlier: dict[int, list[int]] = {}
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if b < a:
            earlier.setdefault(a, []).append(b)
    out: list[BaseGeometry | None] = list(geoms)
    for i in sorted(earlier):
        others = [geoms[j] for j in sorted(earlier[i])]
        cover = shapely.union_all(others)
        if not shapely.relate_pattern(geoms[i], cover, "2********"):
            continue  # interiors do not overlap: only touching
        trimmed = polygonal(shapely.difference(geoms[i], cover))
        if not trimmed.is_empty:
            parts = [p for p in shapely.get_parts(trimmed) if p.area > 0]
            trimmed = (
                shapely.Polygon()
                if not parts
                else parts[0]
                if len(parts) == 1
                else shapely.MultiPolygon(parts)
            )
        out[i] = None if trimmed.is_empty or trimmed.area <= 0 else trimmed
    return out
