"""DuckDB at hand: a connection with the spatial extension and the objects as a view.

DuckDB and its spatial extension come with the ``scale`` extra; the extension is the
``duckdb-extension-spatial`` wheel, loaded from its file (``LOAD '<path>'``), so nothing
is downloaded. The view reads the stitched GeoParquet dataset where it lies (a glob
over its parts): queries stream, filters on the ``bbox`` covering column skip row
groups, and the geometry column is DuckDB's ``GEOMETRY``.

Examples
--------
>>> con = res.duckdb()                                                  # doctest: +SKIP
>>> con.sql("select object_type, count(*), sum(area_m2) from objects group by 1")  # doctest: +SKIP
>>> con.sql("select sum(ST_Area_Spheroid(geometry)) from objects")      # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def spatial_extension_path() -> str | None:
    """The spatial extension file shipped by the ``duckdb-extension-spatial`` wheel
    for the installed DuckDB (None when the wheel is not installed)."""
    try:
        import duckdb
        import duckdb_extension_spatial
    except ImportError:
        return None
    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    found = sorted(glob.glob(str(root / "*" / "spatial.duckdb_extension")))
    own = [f for f in found if Path(f).parent.name.lstrip("v") == duckdb.__version__]
    return (own or found or [None])[-1]


def load_spatial(con: Any) -> None:
    """Load DuckDB's spatial extension into ``con`` from its wheel (offline); without
    the wheel, the extension DuckDB may already have installed. A clear error naming
    the ``scale`` extra when neither loads."""
    path = spatial_extension_path()
    try:
        con.execute(f"LOAD '{_quoted(path)}'" if path else "LOAD spatial")
    except Exception as exc:
        raise ImportError(
            "DuckDB's spatial extension could not be loaded "
            f"({'from ' + path if path else 'no duckdb-extension-spatial wheel'}): "
            "pip install 'mapflow-geo[scale]' installs DuckDB with a matching extension "
            f"wheel ({exc})"
        ) from exc


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def connect(
    dataset: str | os.PathLike, *, view: str = "objects", database: str = ":memory:"
) -> Any:
    """A DuckDB connection (``database``, in memory by default) with the spatial
    extension loaded and the stitched GeoParquet ``dataset`` (a folder written by
    ``to_parquet``) as the view ``view``: every column of the dataset, the geometry as
    ``GEOMETRY``, the ``bbox`` covering column for fast filters.

    Examples
    --------
    >>> con = connect("belgium-buildings")                                # doctest: +SKIP
    >>> con.sql("select count(*) from objects").fetchone()                # doctest: +SKIP
    """
    try:
        import duckdb
    except ImportError as exc:
        raise ImportError("DuckDB is needed: pip install 'mapflow-geo[scale]'") from exc
    if not _NAME.match(view):
        raise ValueError(f"view must be a plain SQL name (letters, digits, _), got {view!r}")
    parts = Path(dataset) / "*.parquet"
    con = duckdb.connect(database)
    try:
        load_spatial(con)
        con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet('{_quoted(str(parts))}')"
        )
    except BaseException:
        con.close()
        raise
    return con
