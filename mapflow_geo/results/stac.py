"""A result as a STAC Collection: one Item per processing, the stitched dataset as assets.

:func:`write_stac` (``res.to_stac(folder)``, pystac: the ``stac`` extra); the layout and
fields are in ``docs/guide/sharing.md`` (*STAC*), the rules in DESIGN.md, *Hand-offs*.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import shapely

from mapflow_geo import sources
from mapflow_geo._version import __version__

#: The dataset folder inside a STAC folder.
DATASET = "objects"
#: GeoParquet's media type.
PARQUET = "application/vnd.apache.parquet"
#: Columns naming an object's class, the first present is summarised.
CLASS_COLUMNS = ("class", "class_id", "object_type")
#: How a stitched object joins the ids of the processings it was cut between.
JOIN = "+"
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def _pystac() -> Any:
    try:
        import pystac
        from pystac.extensions.processing import ProcessingExtension
    except ImportError as exc:
        raise ImportError(
            "to_stac needs pystac and its processing extension: pip install 'mapflow-geo[stac]'"
        ) from exc
    return pystac, ProcessingExtension


# -- what the dataset says about each processing ----------------------------------------
def _class_column(names: list[str]) -> str | None:
    return next((c for c in CLASS_COLUMNS if c in names), None)


def dataset_facts(path: str | os.PathLike) -> dict:
    """Per processing: objects (whole or in part: an object stitched across
    processings, ``processing_id`` ``"a+b"``, counts for each), first and last imagery
    date, the parts holding them; per class: objects. Reads only those columns, part by
    part."""
    dataset = ds.dataset(str(path), format="parquet")
    names = dataset.schema.names
    cls = _class_column(names)
    date = next((c for c in ("imagery_date", "date", "processing_date") if c in names), None)
    cols = [c for c in ("processing_id", date, cls) if c is not None and c in names]
    per: dict[str, dict] = {}
    classes: dict[str, int] = {}
    for frag in dataset.get_fragments():
        part = Path(frag.path).name
        table = frag.to_table(columns=cols, schema=dataset.schema)
        if table.num_rows == 0:
            continue
        if cls is not None:
            for v in table[cls].value_counts().to_pylist():
                key = str(v["values"])
                classes[key] = classes.get(key, 0) + int(v["counts"])
        if "processing_id" not in names:
            continue
        groups = _grouped(table, date)
        for joined, n, lo, hi in groups:
            for pid in joined.split(JOIN):  # an object stitched across processings
                f = per.setdefault(pid, {"objects": 0, "start": None, "end": None, "parts": []})
                f["objects"] += n
                f["start"] = lo if f["start"] is None or (lo and lo < f["start"]) else f["start"]
                f["end"] = hi if f["end"] is None or (hi and hi > f["end"]) else f["end"]
                if part not in f["parts"]:
                    f["parts"].append(part)
    return {"processings": per, "classes": dict(sorted(classes.items())), "class_column": cls}


def _grouped(table: pa.Table, date: str | None) -> list[tuple]:
    aggs = [("processing_id", "count")]
    if date is not None:
        aggs += [(date, "min"), (date, "max")]
    out = table.group_by("processing_id").aggregate(aggs).to_pylist()
    rows = []
    for r in out:
        lo = _as_datetime(r.get(f"{date}_min")) if date else None
        hi = _as_datetime(r.get(f"{date}_max")) if date else None
        rows.append((str(r["processing_id"]), int(r["processing_id_count"]), lo, hi))
    return rows


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


# -- the run's parameters ----------------------------------------------------------------
def source_fields(source: Any) -> dict:
    """``mapflow:provider`` and ``mapflow:zoom`` (where the source has them) of a run's
    ``source`` parameter: a ``sourceParams`` dict, a list of scene ids, or None (the
    default source, :func:`mapflow_geo.sources.default_source`)."""
    if source is None:
        source = sources.default_source()
    if isinstance(source, list | tuple):
        return {"mapflow:source": "imagerySearch", "mapflow:scenes": [str(s) for s in source]}
    if not isinstance(source, Mapping):
        return {}
    params = source.get("sourceParams", source)
    if not isinstance(params, Mapping) or not params:
        return {}
    kind, body = next(iter(params.items()))
    out: dict[str, Any] = {"mapflow:source": str(kind)}
    if isinstance(body, Mapping):
        provider = body.get("providerName") or body.get("dataProvider") or body.get("sourceType")
        if provider is not None:
            out["mapflow:provider"] = str(provider)
        if body.get("zoom") is not None:
            out["mapflow:zoom"] = int(body["zoom"])
        if body.get("mosaicId") is not None:
            out["mapflow:mosaic_id"] = str(body["mosaicId"])
    return out


def _blocks(blocks: Any) -> list[str]:
    if not blocks:
        return []
    if isinstance(blocks, Mapping):
        return [str(k) for k, v in blocks.items() if v]
    if isinstance(blocks, str):
        return [blocks]
    out = []
    for b in blocks:
        if isinstance(b, Mapping):
            if b.get("enabled", True) and "name" in b:
                out.append(str(b["name"]))
        else:
            out.append(str(b))
    return out


# -- the Collection ----------------------------------------------------------------------
def _stamp(seconds: Any) -> dt.datetime | None:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(value):
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)


def _item(pystac, ext_cls, pid, geom, proc, facts, run_fields, dataset_dir):
    start, end = facts.get("start"), facts.get("end")
    created = _stamp(proc.get("created_at"))
    if start is None:
        start = end = created or dt.datetime.now(dt.timezone.utc)
    one = start == end
    item = pystac.Item(
        id=pid,
        geometry=shapely.geometry.mapping(geom),
        bbox=[float(v) for v in geom.bounds],
        datetime=start if one else None,
        start_datetime=None if one else start,
        end_datetime=None if one else end,
        properties={
            "mapflow:processing_id": pid,
            "mapflow:status": proc.get("status"),
            "mapflow:credits": int(proc["cost"]) if pd.notna(proc.get("cost")) else None,
            "mapflow:area_km2": float(proc["area_km2"]) if pd.notna(proc.get("area_km2")) else None,
            "mapflow:objects": int(facts.get("objects", 0)),
            "mapflow:rows": proc["rows"],
            **run_fields,
        },
    )
    proc_ext = ext_cls.ext(item, add_if_missing=True)
    proc_ext.apply(
        facility="Geoalert Mapflow",
        software={"mapflow-geo": __version__},
        expression={
            "format": "mapflow-processing",
            "expression": {
                k.split(":", 1)[1]: v
                for k, v in run_fields.items()
                if k in ("mapflow:model", "mapflow:blocks", "mapflow:provider", "mapflow:zoom")
            },
        },
        processing_datetime=_stamp(proc.get("finished_at")),
    )
    parts = facts.get("parts") or []
    if parts:
        item.add_asset(
            "data",
            pystac.Asset(
                href=str(dataset_dir / parts[0]),
                media_type=PARQUET,
                roles=["data"],
                title="The processing's objects (GeoParquet; filter on processing_id)",
                extra_fields={"mapflow:parts": [f"../{DATASET}/{p}" for p in parts]},
            ),
        )
    return item


def _processing_table(result: Any) -> pd.DataFrame:
    """Created processings with their geometry (union of their tiles) and input rows."""
    tiles = result.tiles
    if "processing_id" not in tiles:
        return pd.DataFrame(columns=["processing_id", "geometry", "rows"])
    created = tiles[tiles["processing_id"].map(lambda v: isinstance(v, str) and bool(v))]
    procs = result.processings.drop_duplicates("processing_id").set_index("processing_id")
    rows = []
    for pid, group in created.groupby("processing_id", sort=True):
        proc = procs.loc[pid].to_dict() if pid in procs.index else {}
        proc["rows"] = sorted(
            {int(r) if isinstance(r, int | np.integer) else str(r) for r in group["row"]}
        )
        geom = shapely.union_all(np.asarray(group.geometry.values))
        rows.append({"processing_id": pid, "geometry": geom, "proc": proc})
    return pd.DataFrame(rows, columns=["processing_id", "geometry", "proc"])


def write_stac(
    result: Any,
    folder: str | os.PathLike,
    *,
    collection_id: str | None = None,
    title: str | None = None,
    description: str | None = None,
    license: str = "other",
    partition_features: int | None = None,
) -> Any:
    """Write ``result`` as a self-contained STAC Collection in ``folder`` and return the
    ``pystac.Collection`` (layout and fields: ``docs/guide/sharing.md``, *STAC*).

    The stitched dataset is written (streaming) into ``folder/objects``; the folder is
    replaced when it holds an earlier catalog of this kind, never when it holds anything
    else.

    Parameters
    ----------
    result : MapflowResult
    folder : str or PathLike
    collection_id : str, optional
        Default: ``mapflow-<run dir name>`` (``mapflow-result`` without a run dir).
    title, description : str, optional
    license : str
        SPDX identifier of the objects' licence (default ``"other"``: Mapflow's terms).
    partition_features : int, optional
        Objects per dataset part (``to_parquet``'s).

    Returns
    -------
    pystac.Collection

    Examples
    --------
    >>> col = write_stac(res, "stac/city")                                 # doctest: +SKIP
    >>> sorted(i.id for i in col.get_items()) == res.processing_ids()       # doctest: +SKIP
    True
    """
    pystac, ext_cls = _pystac()
    out = Path(folder)
    _check_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset_dir = out / DATASET
    info = result.to_parquet(dataset_dir, partition_features=partition_features)
    facts = dataset_facts(dataset_dir)
    run_fields = _run_fields(result.params)
    items = [
        _item(
            pystac,
            ext_cls,
            r.processing_id,
            r.geometry,
            r.proc,
            facts["processings"].get(r.processing_id, {}),
            run_fields,
            dataset_dir,
        )
        for r in _processing_table(result).itertuples()
    ]
    name = result.run_dir.name if result.run_dir is not None else "result"
    collection = pystac.Collection(
        id=collection_id or f"mapflow-{_SLUG.sub('-', name).strip('-') or 'result'}",
        title=title or f"Mapflow objects: {run_fields.get('mapflow:model', 'a run')}",
        description=description
        or (
            f"Objects detected by Geoalert Mapflow ({run_fields.get('mapflow:model', 'model')}"
            f") over {len(result.aois)} input areas, stitched at tile seams by mapflow-geo."
        ),
        extent=_extent(pystac, items, info.bounds),
        license=license,
        providers=_providers(pystac, run_fields),
        summaries=_summaries(pystac, items, run_fields, facts),
        extra_fields={
            "mapflow:class_counts": facts["classes"],
            "mapflow:class_column": facts["class_column"],
            "mapflow:total_objects": int(info.objects),
            "mapflow:total_credits": int(sum(i.properties["mapflow:credits"] or 0 for i in items)),
        },
    )
    collection.add_items(items)
    _save(pystac, collection, info.parts, out)
    return collection


def _run_fields(params: dict) -> dict[str, Any]:
    """The run's model, blocks and imagery source as STAC fields of every item."""
    fields: dict[str, Any] = {}
    if params.get("model") is not None:
        fields["mapflow:model"] = str(params["model"])
    fields["mapflow:blocks"] = _blocks(params.get("blocks"))
    if params:
        fields.update(source_fields(params.get("source")))
    return fields


def _save(pystac: Any, collection: Any, parts: list, out: Path) -> None:
    """Add the dataset's parts as assets and save the catalog self-contained in ``out``."""
    for part in parts:
        collection.add_asset(
            Path(part).stem,
            pystac.Asset(href=f"./{DATASET}/{Path(part).name}", media_type=PARQUET, roles=["data"]),
        )
    collection.normalize_hrefs(str(out.resolve()))
    collection.make_all_asset_hrefs_relative()
    collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)


def _extent(pystac, items: list, bounds) -> Any:
    boxes = [i.bbox for i in items if i.bbox]
    if boxes:
        b = np.array(boxes, dtype=float)
        spatial = [
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        ]
    elif all(np.isfinite(bounds)):
        spatial = [float(v) for v in bounds]
    else:
        spatial = [-180.0, -90.0, 180.0, 90.0]
    times = [
        t
        for i in items
        for t in (i.datetime, i.common_metadata.start_datetime, i.common_metadata.end_datetime)
        if t is not None
    ]
    interval = [min(times), max(times)] if times else [None, None]
    return pystac.Extent(pystac.SpatialExtent([spatial]), pystac.TemporalExtent([interval]))


def _providers(pystac, run_fields: dict) -> list:
    out = [
        pystac.Provider("Geoalert", roles=[pystac.ProviderRole.PROCESSOR], url="https://mapflow.ai")
    ]
    if run_fields.get("mapflow:provider"):
        out.append(
            pystac.Provider(run_fields["mapflow:provider"], roles=[pystac.ProviderRole.PRODUCER])
        )
    return out


def _summaries(pystac, items: list, run_fields: dict, facts: dict) -> Any:
    def span(key):
        values = [i.properties.get(key) for i in items if i.properties.get(key) is not None]
        return pystac.RangeSummary(min(values), max(values)) if values else None

    summary: dict[str, Any] = {}
    if run_fields.get("mapflow:model"):
        summary["mapflow:model"] = [run_fields["mapflow:model"]]
    if facts["classes"]:
        summary["mapflow:class"] = list(facts["classes"])
    for key in ("mapflow:objects", "mapflow:credits"):
        if (r := span(key)) is not None:
            summary[key] = r
    if run_fields.get("mapflow:provider"):
        summary["mapflow:provider"] = [run_fields["mapflow:provider"]]
    if run_fields.get("mapflow:zoom") is not None:
        summary["mapflow:zoom"] = [run_fields["mapflow:zoom"]]
    return pystac.Summaries(summary)


def _check_folder(out: Path) -> None:
    """Clear an earlier catalog written here (``collection.json``, the dataset folder,
    the Item folders); refuse a folder holding anything else."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    entries = list(out.iterdir())
    ours = [
        p
        for p in entries
        if p.name == "collection.json"
        or (p.name == DATASET and p.is_dir())
        or (p.is_dir() and (p / f"{p.name}.json").is_file())
    ]
    if len(ours) < len(entries) or (entries and not (out / "collection.json").is_file()):
        raise FileExistsError(f"{out} holds other files; not writing a STAC catalog there")
    for p in ours:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
