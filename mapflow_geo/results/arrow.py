"""The stitched objects as an Arrow stream (the Arrow PyCapsule interface).

``MapflowResult`` and ``DatasetInfo`` implement ``__arrow_c_stream__`` with GeoArrow WKB
batches read from the stitched dataset (:func:`stitched_dataset`); DESIGN.md, *Hand-offs*.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

log = logging.getLogger(__name__)

#: The GeoArrow extension of the geometry column.
GEOARROW_WKB = "geoarrow.wkb"
#: Columns of a dataset file that are no object attribute (GeoParquet's covering).
_COVERING = ("bbox",)


def _geo_metadata(dataset: ds.Dataset) -> dict:
    """The GeoParquet ``geo`` metadata of the dataset's schema (empty when absent)."""
    meta = dataset.schema.metadata or {}
    raw = meta.get(b"geo")
    return json.loads(raw) if raw else {}


def geoarrow_field(field: pa.Field, column: dict) -> pa.Field:
    """``field`` (WKB) tagged as GeoArrow WKB with the CRS of the GeoParquet ``column``
    metadata (OGC:CRS84 when it names none, as GeoParquet says)."""
    crs = column.get("crs", "OGC:CRS84")
    ext: dict[str, Any] = {}
    if crs is not None:
        ext = {"crs": crs, "crs_type": "projjson"} if isinstance(crs, dict) else {"crs": crs}
    return field.with_type(pa.binary()).with_metadata(
        {
            b"ARROW:extension:name": GEOARROW_WKB.encode(),
            b"ARROW:extension:metadata": json.dumps(ext).encode(),
        }
    )


def dataset_reader(
    path: str | os.PathLike, *, columns: list[str] | None = None, batch_size: int = 65_536
) -> pa.RecordBatchReader:
    """A stitched GeoParquet dataset (a folder written by ``to_parquet``) as a
    ``pyarrow.RecordBatchReader`` of GeoArrow-tagged batches, read lazily (one batch of
    at most ``batch_size`` objects at a time), without the ``bbox`` covering column.

    Examples
    --------
    >>> reader = dataset_reader("belgium-buildings")               # doctest: +SKIP
    >>> gpd.GeoDataFrame.from_arrow(reader)                         # doctest: +SKIP
    """
    dataset = ds.dataset(str(path), format="parquet")
    geo = _geo_metadata(dataset)
    geo_columns = geo.get("columns", {"geometry": {}})
    names = [n for n in dataset.schema.names if n not in _COVERING]
    if columns is not None:
        names = [n for n in dict.fromkeys([*columns, *geo_columns]) if n in names]
    fields = []
    for name in names:
        field = dataset.schema.field(name)
        fields.append(geoarrow_field(field, geo_columns[name]) if name in geo_columns else field)
    schema = pa.schema(fields)

    def batches():
        for batch in dataset.to_batches(columns=names, batch_size=batch_size):
            yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def frame_reader(frame: Any) -> pa.RecordBatchReader:
    """Objects already in memory (a GeoDataFrame) as the same GeoArrow stream."""
    table = pa.table(frame.to_arrow(index=False, geometry_encoding="WKB"))
    return table.to_reader()


def stitched_dataset(result: Any) -> Path:
    """The folder of ``result``'s stitched GeoParquet dataset: the one it last wrote
    (``result.dataset``), else one written now (streaming) into a temporary folder
    removed when the result is garbage-collected. Logged, so a reader knows when the
    objects were stitched again."""
    if result.dataset is not None and Path(result.dataset).is_dir():
        return Path(result.dataset)
    cached = result._stream_dataset
    if cached is not None and cached.is_dir():
        return cached
    tmp = Path(tempfile.mkdtemp(prefix="mapflow-geo-stitched-"))
    weakref.finalize(result, shutil.rmtree, str(tmp), True)
    out = tmp / "objects"
    log.info("Writing the stitched objects to %s for an Arrow stream", out)
    dataset = result.dataset
    result.to_parquet(out)
    result.dataset = dataset  # a temporary copy is not the user's dataset
    result._stream_dataset = out
    return out


def result_reader(result: Any) -> pa.RecordBatchReader:
    """The stream of :meth:`MapflowResult.to_arrow` (its source: DESIGN.md, *Hand-offs*)."""
    if result.dataset is not None and Path(result.dataset).is_dir():
        return dataset_reader(result.dataset)
    if result._features is not None:
        return frame_reader(result._features)
    return dataset_reader(stitched_dataset(result))
