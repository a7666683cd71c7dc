"""What a dataset is: its data dictionary, its provenance, and the README beside its parts.

Every dataset :func:`~mapflow_geo.results.write_dataset` writes describes itself twice:
as JSON in the GeoParquet metadata of every part and of ``_common_metadata`` (the key
:data:`~mapflow_geo.results.geoparquet.DESCRIPTION_KEY`, ``mapflow_geo``, beside
``geo``), and as a ``_README.md`` in the folder (Markdown; the underscore keeps
dataset readers from taking it for a part). Both hold the data dictionary (column,
type, unit, meaning), the provenance (model, blocks, imagery provider, the imagery and
processing dates the objects carry, run id, processings, package version) and the QA
counts of objects repaired and dropped on ingest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mapflow_geo._version import __version__
from mapflow_geo.results.columns import is_date_column
from mapflow_geo.results.geoparquet import BBOX, least
from mapflow_geo.results.repair import qa_metadata
from mapflow_geo.sources import DEFAULT_PROVIDER

#: The README written beside the parts. Its leading underscore makes every dataset
#: reader (pyarrow, geopandas, dask, Spark) skip it, as they skip ``_metadata``.
README = "_README.md"
_MAPFLOW = "a property of Mapflow's result, as the service gave it"
#: Unit and meaning of the columns a dataset may hold.
COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("", "the object's id in Mapflow's result (the largest piece's, when stitched)"),
    "object_type": ("", "what the model detects: buildings, forest, roads, …"),
    "class_id": ("", "the object's class (Mapflow's classification block)"),
    "class": ("", "the object's class name (e.g. a forest's height class)"),
    "area_m2": (
        "m²",
        "area on the WGS84 ellipsoid as Mapflow measured it (summed over "
        "the pieces of an object stitched across tiles)",
    ),  # fmt: skip
    "processing_date": ("UTC", "when Mapflow processed the imagery"),
    "imagery_date": ("UTC", "the acquisition date of the imagery the object was seen on"),
    "shape_type": ("", "the outline's shape after simplification"),
    "simplification_confidence_score": ("0–1", "confidence in the simplified outline"),
    "road_type": ("", "the road's type"),
    "row": ("", "the input area (index label of the areas given to the run) it lies in"),
    "tile_id": ("", "the planned tile whose result holds it ('+'-joined when stitched)"),
    "processing_id": ("", "the Mapflow processing that found it ('+'-joined when stitched)"),
    "geometry": ("degrees, EPSG:4326", "the object's outline (WKB)"),
    BBOX: (
        "degrees, EPSG:4326",
        "the geometry's envelope: the GeoParquet covering column readers filter on",
    ),  # fmt: skip
}


def data_dictionary(schema: pa.Schema) -> list[dict[str, str]]:
    """Column, Arrow type, unit and meaning of every column of ``schema``.

    Examples
    --------
    >>> data_dictionary(pa.schema([("area_m2", pa.float64())]))[0]["unit"]
    'm²'
    """
    out = []
    for f in schema:
        unit, meaning = COLUMNS.get(f.name, ("UTC" if is_date_column(f.name) else "", _MAPFLOW))
        out.append({"column": f.name, "type": str(f.type), "unit": unit, "meaning": meaning})
    return out


def provider_of(source: Any) -> str | None:
    """The imagery provider a run's ``source`` names (a provider, a mosaic, a URL, or
    scene ids), or None."""
    if isinstance(source, list):
        return "scenes " + ", ".join(map(str, source)) if source else None
    if not isinstance(source, Mapping):
        return None
    for key in ("providerName", "dataProvider", "mosaicId", "url"):
        value = source.get(key)
        if isinstance(value, str) and value:
            return value if key != "mosaicId" else f"mosaic {value}"
    for value in source.values():
        found = provider_of(value) if isinstance(value, Mapping) else None
        if found:
            return found
    return None


def provenance_of(result: Any) -> dict[str, Any]:
    """The provenance of a :class:`~mapflow_geo.results.MapflowResult`: its run's
    parameters (``params``), run id (the run dir's name), processings and this
    package's version."""
    params = dict(getattr(result, "params", None) or {})
    run_dir = getattr(result, "run_dir", None)
    procs = getattr(result, "processings", None)
    ids = []
    if procs is not None and "processing_id" in procs:
        ids = sorted({str(p) for p in procs["processing_id"].dropna() if str(p)})
    return {
        "model": params.get("model"),
        "blocks": params.get("blocks"),
        "provider": provider_of(params.get("source")) or (DEFAULT_PROVIDER if params else None),
        "source": params.get("source"),
        "run_id": Path(run_dir).name if run_dir is not None else None,
        "processings": ids,
        "package": "mapflow-geo",
        "package_version": __version__,
    }


def description(
    schema: pa.Schema, provenance: Mapping[str, Any] | None, qa: Any = None
) -> dict[str, Any]:
    """The ``mapflow_geo`` metadata of a dataset of ``schema`` (before its dates, which
    the writer adds from the objects)."""
    prov = {"package": "mapflow-geo", "package_version": __version__, **(provenance or {})}
    return {**qa_metadata(qa), "columns": data_dictionary(schema), "provenance": prov}


def merge_dates(parts: Sequence[Mapping[str, Sequence[str | None]]]) -> dict[str, list]:
    """The earliest and latest value of each date column over the parts' ``dates``."""
    out: dict[str, list] = {}
    for dates in parts:
        for col, (lo, hi) in dates.items():
            old = out.get(col, [None, None])
            out[col] = [least(min, old[0], lo), least(max, old[1], hi)]
    return out


def write_readme(folder: Path, desc: Mapping[str, Any], objects: int, bounds: Sequence) -> Path:
    """:data:`README` in ``folder``: what the dataset holds, where it comes from, its
    columns and how to read it."""
    prov = desc.get("provenance", {})
    dates = desc.get("dates", {})
    lines = [
        "# Mapflow objects (GeoParquet dataset)",
        "",
        f"{objects:,} objects detected by Mapflow, stitched across tile seams, written by "
        f"mapflow-geo {prov.get('package_version')}. GeoParquet 1.1, EPSG:4326, a `bbox` "
        "covering column, rows in Hilbert order, row groups of tens of thousands of rows "
        "(zstd). The same description is in every file's `mapflow_geo` metadata.",
        "",
        "## Provenance",
        "",
        "| | |",
        "| --- | --- |",
    ]
    for key in ("model", "blocks", "provider", "run_id", "package_version"):
        lines.append(f"| {key} | {_cell(prov.get(key))} |")
    for col, (lo, hi) in sorted(dates.items()):
        lines.append(f"| {col} | {lo} … {hi} |")
    if all(np.isfinite(b) for b in bounds):
        lines.append(f"| bounds | {', '.join(f'{b:.6f}' for b in bounds)} |")
    lines.append(f"| processings | {len(prov.get('processings') or [])} |")
    lines.append(f"| repaired / dropped on ingest | {desc.get('repaired', 0)} / "
                 f"{desc.get('dropped', 0)} |")  # fmt: skip
    lines += ["", "## Columns", "", "| column | type | unit | meaning |", "|" + " --- |" * 4]
    for c in desc.get("columns", []):
        lines.append(f"| `{c['column']}` | {c['type']} | {c['unit']} | {c['meaning']} |")
    lines += [
        "",
        "## Reading it",
        "",
        "```python",
        "import geopandas as gpd",
        "gdf = gpd.read_parquet('.', bbox=(xmin, ymin, xmax, ymax))  # reads the row groups there",
        "```",
        "",
        "```sql",
        "SELECT * FROM read_parquet('part-*.parquet')",
        "WHERE bbox.xmin <= :xmax AND bbox.xmax >= :xmin",
        "  AND bbox.ymin <= :ymax AND bbox.ymax >= :ymin",
        "```",
        "",
    ]
    path = folder / README
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _cell(value: Any) -> str:
    if value is None or value == []:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
