"""Tables a run reports: costs and object statistics per input row."""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from mapflow_geo.results import MapflowResult


def class_column(features: pd.DataFrame) -> pd.Series:
    """A readable class per object: object type plus class / class_id where given."""
    kind = features.get("object_type", pd.Series("object", index=features.index)).astype(str)
    for col in ("class", "class_id"):
        if col in features:
            sub = features[col]
            return kind.where(sub.isna(), kind + ":" + sub.astype(str))
    return kind


def cost_table(result: MapflowResult) -> pd.DataFrame:
    """Per input row (the index, ``row``): ``area_km2``, ``processings``,
    ``estimated_credits``, ``charged_credits`` (charged by the call that made this
    result) and ``charged_earlier_credits`` (charged by earlier calls whose processings
    the result reuses: a resumed or reused run, a reopened one). No total row: the
    columns sum to the run's totals (:func:`totals`).

    A processing shared by several rows is split between them in proportion to the
    area each row has in it, so the column sums equal the run's totals.
    """
    tiles = result.tiles
    procs = result.processings.set_index("key")
    cost = pd.to_numeric(procs["cost"]).fillna(0)
    earlier = _earlier(procs)
    share = tiles.groupby(["processing_key", "row"], sort=False)["area_km2"].sum()
    per_proc_area = share.groupby(level=0).transform("sum")
    frac = (share / per_proc_area).rename("frac").reset_index()
    key = frac["processing_key"]
    frac["estimated_credits"] = frac["frac"] * key.map(procs["estimate"])
    frac["charged_credits"] = frac["frac"] * key.map(cost.where(~earlier, 0)).fillna(0)
    frac["charged_earlier_credits"] = frac["frac"] * key.map(cost.where(earlier, 0)).fillna(0)
    by_row = frac.groupby("row", sort=False).agg(
        processings=("processing_key", "nunique"),
        estimated_credits=("estimated_credits", "sum"),
        charged_credits=("charged_credits", "sum"),
        charged_earlier_credits=("charged_earlier_credits", "sum"),
    )
    area = tiles.groupby("row", sort=False)["area_km2"].sum().rename("area_km2")
    table = pd.concat([area, by_row], axis=1).reindex(result.aois.index)
    table.index.name = "row"
    credits = ["estimated_credits", "charged_credits", "charged_earlier_credits"]
    table[credits] = table[credits].fillna(0.0)
    return table.astype({"processings": "Int64"})


def _earlier(procs: pd.DataFrame) -> pd.Series:
    """Which processings an earlier call charged (a resumed, reused or reopened run)."""
    if "earlier" not in procs:
        return pd.Series(False, index=procs.index)
    return procs["earlier"].fillna(False).astype(bool)


def totals(result: MapflowResult, *, objects: int | None = None) -> pd.Series:
    """The run's totals as one Series: input ``rows``, ``area_km2``, ``tiles``,
    ``tiles_ok``, ``tiles_failed`` (every tile not OK), ``processings``,
    ``estimated_credits``, ``charged_credits`` (by this call),
    ``charged_earlier_credits`` (by earlier calls), ``objects`` (as given: None when not
    counted) and ``coverage`` (share of the input area covered by successful tiles)."""
    tiles, procs = result.tiles, result.processings
    ok = tiles["status"] == "OK" if len(tiles) else pd.Series(dtype=bool)
    area = float(tiles["area_km2"].sum()) if len(tiles) else 0.0
    ok_area = float(tiles.loc[ok, "area_km2"].sum()) if len(tiles) else 0.0
    cost = pd.to_numeric(procs["cost"]).fillna(0)
    earlier = _earlier(procs)
    return pd.Series(
        {
            "rows": len(result.aois),
            "area_km2": area,
            "tiles": len(tiles),
            "tiles_ok": int(ok.sum()),
            "tiles_failed": int(len(tiles) - ok.sum()),
            "processings": len(procs),
            "estimated_credits": int(pd.to_numeric(procs["estimate"]).fillna(0).sum()),
            "charged_credits": int(cost[~earlier.to_numpy()].sum()),
            "charged_earlier_credits": int(cost[earlier.to_numpy()].sum()),
            "objects": objects,
            "coverage": ok_area / area if area > 0 else None,
        },
        name="totals",
        dtype=object,
    )


#: Columns of :func:`class_sums`.
SUM_COLUMNS = ["row", "cls", "n", "area"]


def class_sums(features: pd.DataFrame) -> pd.DataFrame:
    """Objects per (input ``row``, class): columns ``row``, ``cls``, ``n``, ``area`` (m²).

    Works on a whole frame or on one partition of a dask frame (sums of partial sums are
    the same sums)."""
    cls = class_column(features)  # (``area_m2``, or Mapflow's ``area`` of stored pieces)
    col = next((c for c in ("area_m2", "area") if c in features), None)
    area = (
        pd.to_numeric(features[col], errors="coerce")
        if col is not None
        else pd.Series(0.0, index=features.index)
    )
    df = pd.DataFrame(
        {"row": features["row"].to_numpy(), "cls": cls.to_numpy(), "area": area.to_numpy()}
    )
    g = df.groupby(["row", "cls"], sort=False, dropna=False)
    return pd.DataFrame({"n": g.size(), "area": g["area"].sum(min_count=1)}).reset_index()


def stats_from_sums(sums: pd.DataFrame, aois: pd.DataFrame, tiles: pd.DataFrame) -> pd.DataFrame:
    """The :func:`stats_table` layout from :func:`class_sums` output (partial sums allowed:
    they are added up here)."""
    base = pd.DataFrame(index=aois.index)
    base.index.name = "row"
    if len(sums):
        total = sums.groupby(["row", "cls"], sort=False).agg(
            n=("n", "sum"), area=("area", lambda s: s.sum(min_count=1))
        )
        counts = total["n"].unstack("cls").add_prefix("count:")
        areas = total["area"].unstack("cls").add_prefix("area_m2:")
        base = base.join(counts[sorted(counts.columns)]).join(areas[sorted(areas.columns)])
        count_cols = [c for c in base if c.startswith("count:")]
        base[count_cols] = base[count_cols].fillna(0).astype("int64")
        base["objects"] = base[count_cols].sum(axis=1)
    else:
        base["objects"] = 0
    ok_area = tiles[tiles["status"] == "OK"].groupby("row")["area_km2"].sum()
    base["area_km2"] = tiles.groupby("row")["area_km2"].sum().reindex(base.index)
    covered = ok_area.reindex(base.index).fillna(0.0)
    base["objects_per_km2"] = base["objects"] / covered.where(covered > 0)
    base["coverage"] = (covered / base["area_km2"]).clip(upper=1.0)
    return base


def empty_sums() -> pd.DataFrame:
    """:func:`class_sums` of no object."""
    return pd.DataFrame(columns=SUM_COLUMNS)


def stats_table(result: MapflowResult) -> pd.DataFrame:
    """Per input row: ``count:<class>`` and ``area_m2:<class>`` by object type / class,
    ``objects``, ``objects_per_km2`` and ``coverage`` (share of the row's area covered
    by successful tiles). From :meth:`MapflowResult.class_sums`, which streams over the
    stored files when the objects are not loaded."""
    return stats_from_sums(result.class_sums(), result.aois, result.tiles)


def summary_frame(result: MapflowResult) -> gpd.GeoDataFrame:
    """The prepared input areas with stats and cost columns joined on, one row per input
    row; ``row`` is the index (not a column as well)."""
    costs = result.costs.drop(columns=["area_km2"])
    aois = result.aois.drop(columns=[c for c in ("row",) if c in result.aois])
    joined = aois.join(result.stats.drop(columns=["area_km2"])).join(costs)
    return gpd.GeoDataFrame(joined, geometry=result.aois.geometry.name, crs=result.aois.crs)
