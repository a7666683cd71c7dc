"""Where the command line writes: output formats chosen by extension, checked before a
run starts, and the writers.

A target is resolved (format known, folder present) before any request, so a typo in
``-o`` costs nothing; the writers return how many objects they wrote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mapflow_geo.exceptions import MapflowError


class UsageError(MapflowError, ValueError):
    """A command-line argument or input file cannot be used (exit code 2)."""


@dataclass(frozen=True)
class Format:
    """One output format: its ``--format`` name, label, extensions and OGR driver."""

    name: str
    label: str
    suffixes: tuple[str, ...]
    driver: str | None = None  # None: written with pyarrow, not OGR


#: The output formats, by ``--format`` name.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("gpkg", "GeoPackage", (".gpkg",), "GPKG"),
        Format("geojson", "GeoJSON", (".geojson", ".json"), "GeoJSON"),
        Format("fgb", "FlatGeobuf", (".fgb",), "FlatGeobuf"),
        Format("parquet", "GeoParquet file", (".parquet", ".geoparquet")),
        Format("dataset", "GeoParquet dataset folder", ()),
    )
}
_BY_SUFFIX = {s: f for f in FORMATS.values() for s in f.suffixes}


def formats_help() -> str:
    """The format list for help texts: ``.gpkg GeoPackage, …, DIR/ GeoParquet dataset``."""
    files = ", ".join(f"{'/'.join(f.suffixes)} {f.label}" for f in FORMATS.values() if f.suffixes)
    return f"{files}; a path ending in / (or an existing folder) a GeoParquet dataset folder"


@dataclass(frozen=True)
class Target:
    """A checked output: its path and format."""

    path: Path
    format: Format

    def as_dict(self, objects: int) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format.name, "objects": int(objects)}


def resolve_target(path: str, fmt: str | None = None, *, dataset: bool = True) -> Target:
    """The output ``path`` with its format (``fmt`` wins over the extension).

    Raises
    ------
    UsageError
        For an unknown extension, a file format aimed at a folder, a dataset where only
        a file fits (``dataset=False``) or a parent folder that does not exist.
    """
    p = Path(path)
    if fmt is not None:
        form = FORMATS[fmt]
    elif path.endswith(("/", os.sep)) or p.is_dir():
        form = FORMATS["dataset"]
    elif p.suffix.lower() in _BY_SUFFIX:
        form = _BY_SUFFIX[p.suffix.lower()]
    else:
        ext = f"extension {p.suffix!r}" if p.suffix else "no extension"
        raise UsageError(
            f"cannot tell the output format of {path!r} ({ext}): use {formats_help()}, "
            f"or --format {{{','.join(FORMATS)}}}"
        )
    if form.name == "dataset" and not dataset:
        raise UsageError(f"{path!r}: a dataset folder holds a run's objects; write a file here")
    if form.name != "dataset" and p.is_dir():
        raise UsageError(f"{path!r} is a folder; a {form.label} output is a file")
    parent = p.parent
    if not parent.is_dir():
        raise UsageError(f"the folder of {path!r} ({parent}) does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write into {parent}")
    return Target(p, form)


def write_frame(frame: Any, target: Target) -> int:
    """Write a GeoDataFrame to a file target; return its number of rows."""
    if target.format.driver is None:
        frame.to_parquet(target.path)
    else:
        if target.path.exists():  # some drivers (GeoJSON, FlatGeobuf) refuse to overwrite
            target.path.unlink()
        frame.to_file(target.path, driver=target.format.driver)
    return len(frame)


def write_result(result: Any, target: Target) -> int:
    """Write a run's objects to ``target``; return how many were written. A dataset
    folder is written by streaming (:meth:`MapflowResult.to_parquet`)."""
    if target.format.name == "dataset":
        return int(result.to_parquet(target.path).objects)
    return write_frame(result.features, target)
