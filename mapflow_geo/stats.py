"""Tables a run reports: costs and object statistics per input row."""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from mapflow_geo.results import MapflowResult


def _class_column(features: pd.DataFrame) -> pd.Series:
    """A readable class per object: object type plus class / class_id where given."""
    kind = features.get("object_type", pd.Series("object", index=features.index)).astype(str)
    for col in ("class", "class_id"):
        if col in features:
            sub = features[col]
            return kind.where(sub.isna(), kind + ":" + sub.astype(str))
    return kind


def cost_table(result: MapflowResult) -> pd.DataFrame:
    """Per input row: ``area_km2``, ``processings``, ``estimated_credits``,
    ``charged_credits``; a ``total`` row at the end.

    A processing shared by several rows is split between them in proportion to the
    area each row has in it, so the column sums equal the run's totals.
    """
    tiles = result.tiles
    procs = result.processings.set_index("key")
    share = tiles.groupby(["processing_key", "row"], sort=False)["area_km2"].sum()
    per_proc_area = share.groupby(level=0).transform("sum")
    frac = (share / per_proc_area).rename("frac").reset_index()
    frac["estimated_credits"] = frac["frac"] * frac["processing_key"].map(procs["estimate"])
    frac["charged_credits"] = frac["frac"] * frac["processing_key"].map(procs["cost"]).fillna(0)
    by_row = frac.groupby("row", sort=False).agg(
        processings=("processing_key", "nunique"),
        estimated_credits=("estimated_credits", "sum"),
        charged_credits=("charged_credits", "sum"),
    )
    area = tiles.groupby("row", sort=False)["area_km2"].sum().rename("area_km2")
    table = pd.concat([area, by_row], axis=1).reindex(result.aois.index)
    table.index.name = "row"
    total = pd.DataFrame(
        {
            "area_km2": [table["area_km2"].sum()],
            "processings": [len(procs)],
            "estimated_credits": [procs["estimate"].fillna(0).sum()],
            "charged_credits": [procs["cost"].fillna(0).sum()],
        },
        index=pd.Index(["total"], name="row"),
    )
    out = pd.concat([table, total])
    return out.astype({"processings": "Int64"})


def stats_table(result: MapflowResult) -> pd.DataFrame:
    """Per input row: ``count:<class>`` and ``area_m2:<class>`` by object type / class,
    ``objects``, ``objects_per_km2`` and ``coverage`` (share of the row's area covered
    by successful tiles)."""
    aois = result.aois
    tiles = result.tiles
    ok_area = tiles[tiles["status"] == "OK"].groupby("row")["area_km2"].sum()
    row_area = tiles.groupby("row")["area_km2"].sum()
    base = pd.DataFrame(index=aois.index)
    base.index.name = "row"
    feats = result.features
    if len(feats):
        cls = _class_column(feats)
        counts = pd.crosstab(feats["row"], cls).add_prefix("count:")
        area = feats["area"] if "area" in feats else pd.Series(0.0, index=feats.index)
        areas = (
            pd.DataFrame({"row": feats["row"], "cls": cls, "area": pd.to_numeric(area)})
            .pivot_table(index="row", columns="cls", values="area", aggfunc="sum")
            .add_prefix("area_m2:")
        )
        base = base.join(counts).join(areas)
        count_cols = [c for c in base if c.startswith("count:")]
        base[count_cols] = base[count_cols].fillna(0).astype("int64")
        base["objects"] = base[count_cols].sum(axis=1)
    else:
        base["objects"] = 0
    base["area_km2"] = row_area.reindex(base.index)
    covered = ok_area.reindex(base.index).fillna(0.0)
    base["objects_per_km2"] = base["objects"] / covered.where(covered > 0)
    base["coverage"] = (covered / base["area_km2"]).clip(upper=1.0)
    return base


def summary_frame(result: MapflowResult) -> gpd.GeoDataFrame:
    """The prepared input areas with stats and cost columns joined on."""
    costs = result.costs.drop(index="total").drop(columns=["area_km2"])
    joined = result.aois.join(result.stats.drop(columns=["area_km2"])).join(costs)
    return gpd.GeoDataFrame(joined, geometry=result.aois.geometry.name, crs=result.aois.crs)
