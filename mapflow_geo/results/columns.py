"""The columns a user sees: names with units, dates as UTC datetimes, classes as categories.

Mapflow's results name the object's area ``area`` (square metres) and give dates as
``YYYY-MM-DD`` strings; the stored pieces keep that. The stitched objects
(:attr:`MapflowResult.features`, :meth:`MapflowResult.to_parquet`, :func:`read_dataset`,
:meth:`MapflowResult.to_dask`) show them the same way everywhere:

* ``area`` → ``area_m2`` (float, m²);
* ``processing_date``, ``imagery_date`` and any other ``*_date`` / ``date`` column →
  ``datetime64[ns, UTC]`` (a Parquet ``TIMESTAMP(isAdjustedToUTC, NANOS)`` in a dataset);
* ``object_type``, ``class_id`` and ``class``, and the provenance ids ``tile_id`` and
  ``processing_id`` → ``category`` in pandas, categories sorted (plain strings in a
  dataset file, categories again through :func:`~mapflow_geo.results.read_dataset`).
"""

from __future__ import annotations

from typing import TypeVar

import pandas as pd
import pyarrow as pa

#: Mapflow's property names → the names with units.
RENAMES = {"area": "area_m2"}
#: Columns held as pandas categoricals: classes, and provenance ids (a few long values,
#: repeated over every object of a tile: 1–2 bytes an object instead of ~40).
CATEGORIES = ("object_type", "class_id", "class", "tile_id", "processing_id")
#: The one date type of every user-facing frame and dataset.
DATE_DTYPE = pd.DatetimeTZDtype("ns", "UTC")
_ARROW_DATE = pa.timestamp("ns", tz="UTC")

Frame = TypeVar("Frame", bound=pd.DataFrame)


def is_date_column(name: str) -> bool:
    """``date`` and every ``*_date`` column."""
    return name == "date" or name.endswith("_date")


def public_frame(frame: Frame, *, categories: bool = True) -> Frame:
    """The frame with the user-facing names and types (see the module docs); a frame
    already in that form comes back unchanged (no copy of the geometry).
    ``categories=False`` keeps class columns as strings (dask partitions, whose
    categories would differ)."""
    renames = {k: v for k, v in RENAMES.items() if k in frame and v not in frame}
    out = frame.rename(columns=renames) if renames else frame
    changes = {}
    for col in out.columns:
        name = str(col)
        s = out[col]
        if is_date_column(name) and s.dtype != DATE_DTYPE:
            changes[col] = pd.to_datetime(s, utc=True, errors="coerce").astype(DATE_DTYPE)
        elif categories and name in CATEGORIES and not isinstance(s.dtype, pd.CategoricalDtype):
            changes[col] = s.astype("category")
        elif name in RENAMES.values() and s.dtype != "float64":
            changes[col] = pd.to_numeric(s, errors="coerce").astype("float64")
    if not changes:
        return out
    out = out.copy(deep=False) if out is frame else out
    for col, values in changes.items():
        out[col] = values
    return out


def public_table(table: pa.Table) -> pa.Table:
    """:func:`public_frame` for an Arrow table about to be written to a dataset: the
    renames, dates as ``timestamp[ns, UTC]`` and areas as float64 (categories stay
    strings in the file)."""
    import pyarrow.compute as pc

    names = list(table.column_names)
    for old, new in RENAMES.items():
        if old in names and new not in names:
            names[names.index(old)] = new
    table = table.rename_columns(names)
    for i, name in enumerate(names):
        col, typ = table.column(i), table.schema.field(i).type
        if is_date_column(name) and typ != _ARROW_DATE:
            if pa.types.is_string(typ) or pa.types.is_large_string(typ):
                col = pc.assume_timezone(pc.strptime(col, "%Y-%m-%d", "ns", error_is_null=True),
                                         "UTC")  # fmt: skip
            else:
                col = _utc_date(col, typ)
                if col is None:
                    continue
        elif name in RENAMES.values() and (pa.types.is_integer(typ) or pa.types.is_null(typ)):
            col = pc.cast(col, pa.float64())
        else:
            continue
        table = table.set_column(i, name, col)
    return table


def _utc_date(col, typ: pa.DataType):
    """A date or timestamp column as ``timestamp[ns, UTC]`` (a naive one taken as UTC,
    as :func:`public_frame` takes it); None for other types."""
    import pyarrow.compute as pc

    if pa.types.is_date(typ):
        return pc.cast(pc.cast(col, pa.timestamp("ns")), _ARROW_DATE)
    if pa.types.is_timestamp(typ):
        if typ.tz:
            return pc.cast(col, _ARROW_DATE)
        return pc.assume_timezone(pc.cast(col, pa.timestamp("ns")), "UTC")
    return None


def as_dictionaries(table: pa.Table, dictionary: bool = True) -> pa.Table:
    """``table`` with its text :data:`CATEGORIES` columns as Arrow dictionaries (pandas
    categoricals on ``to_pandas``, no string per object; ``dictionary=False``: back to
    strings)."""
    for i, field in enumerate(table.schema):
        if field.name not in CATEGORIES:
            continue
        typ = field.type
        if dictionary and (pa.types.is_string(typ) or pa.types.is_null(typ)):
            want = pa.dictionary(pa.int32(), pa.string())
        elif not dictionary and pa.types.is_dictionary(typ):
            want = typ.value_type
        else:
            continue
        table = table.set_column(i, field.name, table.column(i).cast(want))
    return table


def frame_dates(table: pa.Table) -> pa.Table:
    """The date and timestamp typed date columns as ``timestamp[ns, UTC]`` before
    ``to_pandas``, as :func:`public_frame` would make them after (faster: no Python
    date per object). Text dates are left to :func:`public_frame`."""
    for i, field in enumerate(table.schema):
        if is_date_column(field.name) and field.type != _ARROW_DATE:
            try:
                col = _utc_date(table.column(i), field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # out of range: pandas'
                continue
            if col is not None:
                table = table.set_column(i, field.name, col)
    return table


def sort_categories(frame: pd.DataFrame) -> None:
    """Sort the categories of the frame's :data:`CATEGORIES` columns in place (as
    ``astype("category")`` sorts them), keeping every value."""
    import numpy as np

    for name in CATEGORIES:
        if name not in frame or not isinstance(frame[name].dtype, pd.CategoricalDtype):
            continue
        cat = frame[name].array
        try:
            order = np.argsort(np.asarray(cat.categories, dtype=object), kind="stable")
        except TypeError:  # values of several types: no order
            continue
        if (order == np.arange(len(order))).all():
            continue
        rank = np.empty(len(order) + 1, dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        rank[-1] = -1  # a missing value (code -1) stays missing
        frame[name] = pd.Categorical.from_codes(rank[cat.codes], cat.categories[order])


def public_schema(schema: pa.Schema) -> pa.Schema:
    """The schema :func:`public_table` gives tables of ``schema``."""
    return public_table(schema.empty_table()).schema


def check_column(feats: pd.DataFrame, column: str | None) -> None:
    """A ``column=`` the objects do not have: an error naming it, the closest name and
    the columns there are (before any drawing)."""
    if column is None or column in feats.columns or not len(feats.columns):
        return
    import difflib

    geometry = getattr(feats, "active_geometry_name", None)  # a GeoDataFrame's
    names = [str(c) for c in feats.columns if c != geometry]
    close = difflib.get_close_matches(str(column), names, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(
        f"column={column!r} is not a column of the result's objects; {hint}"
        f"columns: {', '.join(names)}"
    )
