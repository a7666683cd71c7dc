"""The change frame (one row per group) and the per-row change table."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from mapflow_geo._geodesy import geodesic_area_km2
from mapflow_geo.results.changes._objects import Objects, empty_props
from mapflow_geo.results.changes._rule import (
    REMOVED,
    UNCHANGED,
    ChangeRule,
    Groups,
    classify,
    group_iou,
    match_groups,
    members,
)
from mapflow_geo.results.stitch import union_by_group

#: The change classes, in the order tables and legends show them.
CHANGES = ("new", "removed", "modified", "unchanged")
#: Columns of a change frame (and ``geometry``).
CHANGE_COLUMNS = [
    "change",
    "before_id",
    "after_id",
    "before_date",
    "after_date",
    "area_before_m2",
    "area_after_m2",
    "area_change_m2",
    "area_change_pct",
    "iou",
    "match",
    "object_type",
    "row",
]


def _largest(label: np.ndarray, area: np.ndarray, n: int) -> np.ndarray:
    """Per group, the position of its largest member (-1 for none)."""
    out = np.full(n, -1)
    if len(label):
        solo = np.bincount(label, minlength=n)[label] == 1
        out[label[solo]] = np.flatnonzero(solo)
        multi = np.flatnonzero(~solo)
        lm = label[multi]
        order = np.lexsort((-area[multi], lm))
        first = np.r_[True, lm[order][1:] != lm[order][:-1]] if len(multi) else np.zeros(0, bool)
        out[lm[order][first]] = multi[order][first]
    return out


def _ids(objs: Objects, label: np.ndarray, count: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per group: None, the one member's id, or the list of the members' ids (input
    order)."""
    out = np.full(len(groups), None, dtype=object)
    pos, where = members(label, groups)
    if not len(pos):
        return out
    ids = objs.props["id"].to_numpy()
    order = np.lexsort((objs.gid[pos], where))
    pos, where = pos[order], where[order]
    one = count[groups][where] == 1
    out[where[one]] = ids[pos[one]]
    multi = ~one
    if multi.any():
        w, p = where[multi], pos[multi]
        cuts = np.flatnonzero(np.r_[True, w[1:] != w[:-1]])
        for g, chunk in zip(w[cuts], np.split(ids[p], cuts[1:]), strict=True):
            out[g] = chunk.tolist()
    return out


def change_frame(
    b: Objects, a: Objects, grp: Groups, code: np.ndarray, groups: np.ndarray
) -> gpd.GeoDataFrame:
    """The change frame of ``groups`` (positions), with the anchor columns ``_side`` /
    ``_gid`` that order it."""
    g = len(grp)
    big_b = _largest(grp.label_b, b.area_m2, g)[groups]
    big_a = _largest(grp.label_a, a.area_m2, g)[groups]
    nb, na = grp.n_before[groups], grp.n_after[groups]
    has_a = code[groups] != REMOVED  # the side a change shows: after's, before's if removed
    geom = np.empty(len(groups), dtype=object)
    for objs, label, count, big, mask in (
        (b, grp.label_b, nb, big_b, ~has_a),
        (a, grp.label_a, na, big_a, has_a),
    ):
        one = np.flatnonzero(mask & (count == 1))
        geom[one] = objs.geoms[big[one]]
        multi = np.flatnonzero(mask & (count > 1))
        if len(multi):
            pos, where = members(label, groups[multi])
            geom[multi] = union_by_group(objs.geoms[pos], where)
    side_b, side_a = b.props, a.props

    def pick(col: str) -> np.ndarray:
        out = np.empty(len(groups), dtype=object)
        out[has_a] = side_a[col].to_numpy(dtype=object)[big_a[has_a]]
        out[~has_a] = side_b[col].to_numpy(dtype=object)[big_b[~has_a]]
        return out

    def date(side: pd.DataFrame, big: np.ndarray) -> np.ndarray:
        d = side["date"].to_numpy(dtype="datetime64[ns]")
        return np.where(big >= 0, d[np.maximum(big, 0)] if len(d) else None, np.datetime64("NaT"))

    area_b = grp.area_before[groups].astype(np.float64)
    area_a = grp.area_after[groups].astype(np.float64)
    delta = area_a - area_b
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(area_b > 0, 100.0 * delta / area_b, np.nan)
    match = np.where(
        (nb == 0) | (na == 0),
        None,
        np.where(nb == 1, np.where(na == 1, "1:1", "1:n"), np.where(na == 1, "n:1", "n:m")),
    )
    iou = np.where((nb > 0) & (na > 0), group_iou(grp)[groups], np.nan)
    first_b = np.full(g, np.iinfo(np.int64).max)
    np.minimum.at(first_b, grp.label_b, b.gid)
    first_a = np.full(g, np.iinfo(np.int64).max)
    np.minimum.at(first_a, grp.label_a, a.gid)
    frame = pd.DataFrame(
        {
            "change": pd.Categorical.from_codes(code[groups], categories=list(CHANGES)),
            "before_id": pd.Series(_ids(b, grp.label_b, grp.n_before, groups), dtype=object),
            "after_id": pd.Series(_ids(a, grp.label_a, grp.n_after, groups), dtype=object),
            "before_date": date(side_b, big_b).astype("datetime64[ns]"),
            "after_date": date(side_a, big_a).astype("datetime64[ns]"),
            "area_before_m2": area_b,
            "area_after_m2": area_a,
            "area_change_m2": delta,
            "area_change_pct": pct,
            "iou": iou,
            "match": pd.Series(match, dtype=object),
            "object_type": pd.Series(pick("object_type"), dtype=object),
            "row": pick("row") if len(groups) else _no_rows(side_b, side_a),
            "_side": np.where(nb > 0, 0, 1).astype(np.int8),
            "_gid": np.where(nb > 0, first_b[groups], first_a[groups]),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=geom, crs="EPSG:4326")


def changes_of(
    b: Objects, a: Objects, rule: ChangeRule, unchanged: bool = True
) -> gpd.GeoDataFrame:
    """Every change between two sides held in memory (without the unchanged groups
    when not ``unchanged``), in anchor order."""
    grp = match_groups(b, a, rule)
    code = classify(b, a, grp, rule)
    groups = np.arange(len(grp)) if unchanged else np.flatnonzero(code != UNCHANGED)
    return finish(change_frame(b, a, grp, code, groups))


def finish(out: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = out.sort_values(["_side", "_gid"], kind="stable").drop(columns=["_side", "_gid"])
    out = out.reset_index(drop=True)
    out["row"] = _tidy(out["row"])
    return out


def _no_rows(*sides: pd.DataFrame) -> pd.Series:
    """An empty ``row`` column of the type the sides' labels have (inference has no
    value to go by when no group is left)."""
    return pd.Series([], dtype=_tidy(pd.concat([s["row"] for s in sides])).dtype)


def _tidy(col: pd.Series) -> pd.Series:
    """Object columns of one plain type back to that type (``row`` labels)."""
    try:
        return col.infer_objects()
    except (TypeError, ValueError):  # pragma: no cover - mixed labels stay objects
        return col


def empty_changes() -> gpd.GeoDataFrame:
    e = Objects(np.zeros(0, np.int64), np.zeros(0, dtype=object), empty_props())
    return changes_of(e, e, ChangeRule())


def id_list(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def change_table(
    changes: pd.DataFrame,
    aois: Any = None,
    years: float | pd.Series | dict | None = None,
) -> pd.DataFrame:
    """Changes per input row: counts and areas per class, and rates per km² per year.

    Parameters
    ----------
    changes : DataFrame
        From :func:`changes`.
    aois : GeoDataFrame or MapflowResult, optional
        The input areas, indexed by row label (``result.aois``): gives ``area_km2`` and
        rows without any change.
    years : float, or per-row Series / dict, optional
        The time between the two dates; by default the median ``after_date`` minus the
        median ``before_date`` of each row (of all rows where a row has no dates).

    Returns
    -------
    DataFrame
        Indexed by ``row``: ``count:<class>`` for each of :data:`CHANGES`,
        ``area_m2:new`` (footprint added), ``area_m2:removed`` (footprint lost),
        ``area_m2:modified`` (net change of modified objects), ``area_change_m2`` (net
        change), ``area_km2``, ``years``, and per km² per year ``new_per_km2_year``,
        ``removed_per_km2_year``, ``modified_per_km2_year``,
        ``area_change_m2_per_km2_year`` (NaN where the area or the time is unknown).

    Examples
    --------
    >>> change_table(ch, aois=res.aois, years=2)                     # doctest: +SKIP
    """
    rows = changes["row"]
    cls = changes["change"].astype(str)
    counts = pd.crosstab(rows, cls).reindex(columns=list(CHANGES), fill_value=0)
    table = counts.add_prefix("count:")
    area = {
        "new": changes["area_after_m2"],
        "removed": changes["area_before_m2"],
        "modified": changes["area_change_m2"],
    }
    for name, values in area.items():
        table[f"area_m2:{name}"] = values[cls == name].groupby(rows[cls == name]).sum()
    table["area_change_m2"] = changes["area_change_m2"].groupby(rows).sum()
    frame = getattr(aois, "aois", aois)
    if frame is not None:
        table = table.reindex(frame.index.union(table.index, sort=False))
        km2 = pd.Series(geodesic_area_km2(frame.geometry.to_crs(4326).values), frame.index)
        table["area_km2"] = km2.reindex(table.index)
    else:
        table["area_km2"] = np.nan
    table.index.name = "row"
    count_cols = [c for c in table if c.startswith("count:")]
    table[count_cols] = table[count_cols].fillna(0).astype("int64")
    area_cols = [c for c in table if c.startswith("area_m2:")] + ["area_change_m2"]
    table[area_cols] = table[area_cols].fillna(0.0)
    table["years"] = _years(changes, table.index, years)
    per = table["area_km2"] * table["years"]
    per = per.where(per > 0)
    for name in ("new", "removed", "modified"):
        table[f"{name}_per_km2_year"] = table[f"count:{name}"] / per
    table["area_change_m2_per_km2_year"] = table["area_change_m2"] / per
    return table


def _years(changes: pd.DataFrame, index: pd.Index, years: Any) -> pd.Series:
    if years is not None:
        if isinstance(years, dict | pd.Series):
            return pd.Series(years, dtype=float).reindex(index)
        return pd.Series(float(years), index=index)
    rows = changes["row"]
    before = changes["before_date"].groupby(rows).median()
    after = changes["after_date"].groupby(rows).median()
    overall = changes["after_date"].median() - changes["before_date"].median()
    span = (after - before).reindex(index)
    if pd.notna(overall):
        span = span.fillna(overall)
    return span.dt.total_seconds() / (365.2425 * 86400.0)
