"""The partitioned executor: two GeoParquet datasets compared cell by cell with bounded memory.

Both sides are streamed into a quadtree of cells (1° roots split until a cell holds at
most ``partition_features`` objects), each cell's temporary files holding every object
whose envelope reaches the cell or its margin; cells are matched one at a time, groups
larger than a margin grown afterwards (``DESIGN.md``, *Change detection*, Country-sized
pairs).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from mapflow_geo._geodesy import metres_per_degree
from mapflow_geo.results.changes._objects import Objects, empty_props, envelopes, normalise
from mapflow_geo.results.changes._overlay import segments
from mapflow_geo.results.changes._rule import ChangeRule, Groups, classify, match_groups
from mapflow_geo.results.changes._table import change_frame
from mapflow_geo.results.geoparquet import iter_geoparquet

log = logging.getLogger(__name__)

_ROOT_DEG = 1.0
_MAX_LEVEL = 16
_BUFFER_BYTES = 256 << 20
_BBOX = ("_xmin", "_ymin", "_xmax", "_ymax")
#: The columns read from a GeoParquet side.
_COLUMNS = ("id", "row", "object_type", "processing_date", "date")


@dataclasses.dataclass(frozen=True)
class _Cell:
    """A quadtree cell: level ``level`` of the global grid of ``_ROOT_DEG / 2**level``
    degree cells aligned at 0°."""

    level: int
    ix: int
    iy: int

    @property
    def size(self) -> float:
        return _ROOT_DEG / 2**self.level

    @property
    def box(self) -> tuple[float, float, float, float]:
        s = self.size
        return (self.ix * s, self.iy * s, (self.ix + 1) * s, (self.iy + 1) * s)

    def children(self) -> list[_Cell]:
        return [
            _Cell(self.level + 1, 2 * self.ix + dx, 2 * self.iy + dy)
            for dy in (0, 1)
            for dx in (0, 1)
        ]

    @property
    def key(self) -> str:
        return f"L{self.level}_{self.ix}_{self.iy}"


def _margins(margin_m: float, lat_abs_max: np.ndarray) -> tuple[np.ndarray, float]:
    """The margin in degrees of longitude (at the given |latitude|) and of latitude
    (the equator's, the largest)."""
    kx, _ = metres_per_degree(np.minimum(lat_abs_max, 89.9))
    _, ky0 = metres_per_degree(np.zeros(1))
    return margin_m / kx, float(margin_m / ky0[0])


def _window(cell: _Cell, margin_m: float) -> tuple[float, float, float, float]:
    """The cell with its margin (degrees; the longitude margin at the window's highest
    latitude)."""
    x0, y0, x1, y1 = cell.box
    _, my = _margins(margin_m, np.zeros(1))
    mx, _ = _margins(margin_m, np.array([max(abs(y0 - my), abs(y1 + my))]))
    return (x0 - float(mx[0]), y0 - my, x1 + float(mx[0]), y1 + my)


def _assign(bbox: np.ndarray, level: int, margin_m: float, within: _Cell | None):
    """Rows × cells of ``level`` whose windows their envelopes reach (rows repeated):
    (row positions, cells as (ix, iy))."""
    s = _ROOT_DEG / 2**level
    _, my = _margins(margin_m, np.zeros(1))
    lat_hi = np.maximum(np.abs(bbox[:, 1]), np.abs(bbox[:, 3])) + s + my
    mx, _ = _margins(margin_m, lat_hi)
    ix0 = np.floor((bbox[:, 0] - mx) / s).astype(np.int64)
    ix1 = np.floor((bbox[:, 2] + mx) / s).astype(np.int64)
    iy0 = np.floor((bbox[:, 1] - my) / s).astype(np.int64)
    iy1 = np.floor((bbox[:, 3] + my) / s).astype(np.int64)
    if within is not None:  # children of one cell only
        lo_x, lo_y = 2 * within.ix, 2 * within.iy
        ix0, ix1 = np.maximum(ix0, lo_x), np.minimum(ix1, lo_x + 1)
        iy0, iy1 = np.maximum(iy0, lo_y), np.minimum(iy1, lo_y + 1)
    nx, ny = np.maximum(ix1 - ix0 + 1, 0), np.maximum(iy1 - iy0 + 1, 0)
    rows, k = segments(nx * ny)
    cx = ix0[rows] + k % nx[rows]
    cy = iy0[rows] + k // nx[rows]
    # exact: the cell's window (its own longitude margin) meets the envelope
    y0, y1 = cy * s - my, (cy + 1) * s + my
    cmx, _ = _margins(margin_m, np.maximum(np.abs(y0), np.abs(y1)))
    ok = (
        (cx * s - cmx <= bbox[rows, 2])
        & ((cx + 1) * s + cmx >= bbox[rows, 0])
        & (y0 <= bbox[rows, 3])
        & (y1 >= bbox[rows, 1])
    )
    return rows[ok], cx[ok], cy[ok]


class _Store:
    """Per-cell GeoParquet shards on disk for both sides, written through a buffer."""

    def __init__(self, root: Path, margin_m: float) -> None:
        self.root = root
        self.margin_m = margin_m
        self.pending: dict[tuple[_Cell, int], list[pa.Table]] = {}
        self.files: dict[_Cell, list[tuple[int, Path]]] = {}
        self.count: dict[_Cell, int] = {}
        self.nbytes = 0
        self.serial = 0

    def add(self, table: pa.Table, side: int, level: int, within: _Cell | None) -> None:
        bbox = np.column_stack([table.column(c).to_numpy() for c in _BBOX])
        rows, cx, cy = _assign(bbox, level, self.margin_m, within)
        if not len(rows):
            return
        key = pd.factorize(pd.MultiIndex.from_arrays([cx, cy]))[0]
        order = np.argsort(key, kind="stable")
        cuts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
        for lo, hi in zip(cuts, [*cuts[1:], len(order)], strict=True):
            idx = order[lo:hi]
            cell = _Cell(level, int(cx[idx[0]]), int(cy[idx[0]]))
            part = table.take(pa.array(rows[idx]))
            self.pending.setdefault((cell, side), []).append(part)
            self.count[cell] = self.count.get(cell, 0) + len(idx)
            self.nbytes += part.nbytes
        if self.nbytes > _BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        for (cell, side), parts in self.pending.items():
            folder = self.root / cell.key
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"side{side}-{self.serial:06d}.parquet"
            self.serial += 1
            pq.write_table(pa.concat_tables(parts, promote_options="permissive"), path)
            self.files.setdefault(cell, []).append((side, path))
        self.pending.clear()
        self.nbytes = 0

    def read(self, cell: _Cell, side: int) -> Iterator[pa.Table]:
        for s, path in self.files.get(cell, []):
            if s == side:
                yield pq.read_table(path)

    def drop(self, cell: _Cell) -> None:
        for _, path in self.files.pop(cell, []):
            path.unlink()
        self.count.pop(cell, None)


def _to_table(objs: Objects) -> pa.Table:
    """Normalised objects as a shard table: ``_gid``, properties, WKB, envelope."""
    props = objs.props
    table = pa.table(
        {
            "_gid": pa.array(objs.gid, pa.int64()),
            "id": _arrow_column(props["id"]),
            "row": _arrow_column(props["row"]),
            "object_type": _arrow_column(props["object_type"]),
            "date": pa.array(props["date"].to_numpy(dtype="datetime64[ns]"), pa.timestamp("ns")),
            "geometry": pa.array(shapely.to_wkb(objs.geoms), pa.binary()),
            **{c: pa.array(objs.bounds[:, k]) for k, c in enumerate(_BBOX)},
        }
    )
    return table


def _arrow_column(values: pd.Series) -> pa.Array:
    try:
        return pa.array(values.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _from_tables(tables: Iterable[pa.Table]) -> Objects:
    tables = list(tables)
    if not tables:
        return Objects(np.zeros(0, np.int64), np.zeros(0, dtype=object), empty_props())
    t = pa.concat_tables(tables, promote_options="permissive")
    props = pd.DataFrame(
        {c: t.column(c).to_pandas().astype(object) for c in ("id", "row", "object_type")}
    )
    props["date"] = t.column("date").to_pandas().to_numpy(dtype="datetime64[ns]")
    props = props.where(props.notna(), None).assign(date=props["date"])
    geoms = shapely.from_wkb(t.column("geometry").to_numpy(zero_copy_only=False))
    return Objects(t.column("_gid").to_numpy().astype(np.int64), geoms, props)


def iter_changes(
    before: str | Path | gpd.GeoDataFrame,
    after: str | Path | gpd.GeoDataFrame,
    rule: ChangeRule,
    partition_features: int,
    margin_m: float,
    workdir: str | Path | None,
) -> Iterator[gpd.GeoDataFrame]:
    """The changes of two GeoParquet datasets, one partition at a time (see the module
    docstring): bucket both into 1° cells, split crowded cells in four (recursively),
    match each leaf cell with its margin, then the groups larger than the margin."""
    with tempfile.TemporaryDirectory(prefix="mapflow-changes-", dir=workdir) as tmp:
        store = _Store(Path(tmp), margin_m)
        for side, path in ((0, before), (1, after)):
            for offset, frame, geoms in iter_geoparquet(path, _COLUMNS):
                objs = normalise(frame, geoms, offset + np.arange(len(frame)))
                if len(objs):
                    store.add(_to_table(objs), side, 0, None)
        store.flush()
        leaves: dict[_Cell, tuple[float, float, float, float]] = {}
        hard: list[tuple[Objects, Objects]] = []
        todo = sorted(store.files, key=lambda c: (c.iy, c.ix), reverse=True)
        while todo:
            cell = todo.pop()
            window = _window(cell, margin_m)
            if (
                store.count.get(cell, 0) > partition_features
                and cell.level < _MAX_LEVEL
                and (cell.size > 4 * (window[3] - window[1] - cell.size) / 2)
            ):
                for side in (0, 1):
                    for table in store.read(cell, side):
                        store.add(table, side, cell.level + 1, cell)
                store.flush()
                store.drop(cell)
                todo.extend(c for c in reversed(cell.children()) if c in store.files)
                continue
            leaves[cell] = window
            b = _from_tables(store.read(cell, 0))
            a = _from_tables(store.read(cell, 1))
            part, spill = _solve_cell(b, a, rule, cell, window)
            if len(part):
                yield part
            if spill is not None:
                hard.append(spill)
        log.info(
            "changes: %d cells, %d with groups larger than their margin",
            len(leaves),
            len(hard),
        )
        if hard:
            part = _solve_hard(store, leaves, hard, rule)
            if len(part):
                yield part


def _anchors(b: Objects, a: Objects, grp: Groups) -> tuple[np.ndarray, np.ndarray]:
    """Each group's anchor (its first before object, else its after object) as its
    envelope centre: (x, y)."""
    g = len(grp)
    x, y = np.full(g, np.nan), np.full(g, np.nan)
    for objs, label in ((a, grp.label_a), (b, grp.label_b)):  # before last: it wins
        if not len(objs):
            continue
        order = np.lexsort((objs.gid, label))
        first = np.r_[True, label[order][1:] != label[order][:-1]]
        pos = order[first]
        x[label[pos]] = (objs.bounds[pos, 0] + objs.bounds[pos, 2]) / 2
        y[label[pos]] = (objs.bounds[pos, 1] + objs.bounds[pos, 3]) / 2
    return x, y


def _complete(b: Objects, a: Objects, grp: Groups, window, tolerance_m: float) -> np.ndarray:
    """Whether each group was made from everything that could change it: every object it
    holds or looked at lies, with ``tolerance_m`` around it, within ``window`` (so every
    object touching or near it was loaded with it)."""
    x0, y0, x1, y1 = window
    ok = []
    for objs in (b, a):
        bb = shapely.bounds(envelopes(objs.bounds, tolerance_m)) if len(objs) else objs.bounds
        ok.append((bb[:, 0] >= x0) & (bb[:, 1] >= y0) & (bb[:, 2] <= x1) & (bb[:, 3] <= y1))
    out = np.ones(len(grp), bool)
    out[grp.label_b[~ok[0]]] = False
    out[grp.label_a[~ok[1]]] = False
    out[grp.deps_b[~ok[0][grp.deps_b[:, 1]], 0]] = False
    out[grp.deps_a[~ok[1][grp.deps_a[:, 1]], 0]] = False
    return out


def _solve_cell(b: Objects, a: Objects, rule: ChangeRule, cell: _Cell, window):
    """A leaf cell: the changes it owns (anchor inside the cell, group within the
    window), and the objects of owned groups that reach past the window."""
    grp = match_groups(b, a, rule)
    ax, ay = _anchors(b, a, grp)
    x0, y0, x1, y1 = cell.box
    owned = (ax >= x0) & (ax < x1) & (ay >= y0) & (ay < y1)
    complete = _complete(b, a, grp, window, rule.tolerance_m)
    keep = np.flatnonzero(owned & complete)
    code = classify(b, a, grp, rule)  # cheap checks for all, shapes only where needed
    part = change_frame(b, a, grp, code, keep)
    big = np.flatnonzero(owned & ~complete)
    if not len(big):
        return part, None
    in_b, in_a = _involved(grp, big, len(b), len(a))
    return part, (b.take(np.flatnonzero(in_b)), a.take(np.flatnonzero(in_a)))


def _leaf_of(leaves: dict[_Cell, Any], x: float, y: float) -> _Cell | None:
    for level in range(_MAX_LEVEL + 1):
        s = _ROOT_DEG / 2**level
        cell = _Cell(level, math.floor(x / s), math.floor(y / s))
        if cell in leaves:
            return cell
    return None


def _solve_hard(store: _Store, leaves, hard, rule: ChangeRule) -> gpd.GeoDataFrame:
    """Groups larger than their anchor cell's margin: grow each from its objects to
    every object linked to it (and every object its making looked at), reading the cells
    they reach, then report those their anchor cell could not."""
    work_b = _dedupe(Objects.concat([h[0] for h in hard]))
    work_a = _dedupe(Objects.concat([h[1] for h in hard]))
    seeds = (work_b.gid.copy(), work_a.gid.copy())
    done = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    frontier = (work_b, work_a)
    while len(frontier[0]) or len(frontier[1]):
        boxes = np.vstack([frontier[0].bounds, frontier[1].bounds])
        found = _read_around(store, leaves, shapely.bounds(envelopes(boxes, rule.tolerance_m)))
        done = (np.r_[done[0], frontier[0].gid], np.r_[done[1], frontier[1].gid])
        work_b = _dedupe(Objects.concat([work_b, found[0]]))
        work_a = _dedupe(Objects.concat([work_a, found[1]]))
        grp = match_groups(work_b, work_a, rule)
        groups = _seeded(work_b, work_a, grp, seeds)
        need_b, need_a = _involved(grp, groups, len(work_b), len(work_a))
        need_b &= ~np.isin(work_b.gid, done[0])
        need_a &= ~np.isin(work_a.gid, done[1])
        frontier = (work_b.take(np.flatnonzero(need_b)), work_a.take(np.flatnonzero(need_a)))
    grp = match_groups(work_b, work_a, rule)
    groups = _seeded(work_b, work_a, grp, seeds)
    ax, ay = _anchors(work_b, work_a, grp)
    report = []
    for g in groups:  # few: the groups larger than a margin
        cell = _leaf_of(leaves, ax[g], ay[g])
        if cell is None or not _complete(work_b, work_a, grp, leaves[cell], rule.tolerance_m)[g]:
            report.append(g)
    code = classify(work_b, work_a, grp, rule)
    return change_frame(work_b, work_a, grp, code, np.asarray(report, dtype=np.int64))


def _involved(grp: Groups, groups: np.ndarray, nb: int, na: int):
    """Objects (masks per side) that ``groups`` hold or looked at."""
    in_b, in_a = np.isin(grp.label_b, groups), np.isin(grp.label_a, groups)
    in_b[grp.deps_b[np.isin(grp.deps_b[:, 0], groups), 1]] = True
    in_a[grp.deps_a[np.isin(grp.deps_a[:, 0], groups), 1]] = True
    return in_b, in_a


def _seeded(b: Objects, a: Objects, grp: Groups, seeds) -> np.ndarray:
    """Groups holding a seed object."""
    hit_b = grp.label_b[np.isin(b.gid, seeds[0])]
    hit_a = grp.label_a[np.isin(a.gid, seeds[1])]
    return np.unique(np.r_[hit_b, hit_a]).astype(np.int64)


def _dedupe(objs: Objects) -> Objects:
    _, first = np.unique(objs.gid, return_index=True)
    return objs.take(np.sort(first))


def _read_around(store: _Store, leaves, boxes: np.ndarray) -> tuple[Objects, Objects]:
    """Every stored object whose envelope meets one of ``boxes``, per side."""
    cells = list(leaves)
    cell_boxes = shapely.box(*np.array([c.box for c in cells]).T)
    query = shapely.box(*boxes.T)
    hit = np.unique(shapely.STRtree(cell_boxes).query(query)[1])
    tree = shapely.STRtree(query)
    out = []
    for side in (0, 1):
        found = []
        for k in hit:
            objs = _from_tables(store.read(cells[k], side))
            if len(objs):
                env = shapely.box(*objs.bounds.T)
                near = np.unique(tree.query(env)[0])
                found.append(objs.take(near))
        out.append(Objects.concat(found) if found else _from_tables([]))
    return out[0], out[1]
