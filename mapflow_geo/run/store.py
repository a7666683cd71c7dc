"""A run's folder: what is written there, and how a :class:`MapflowResult` is read back.

Layout of a run dir::

    journal.sqlite        the journal (see :mod:`mapflow_geo.run.journal`)
    plan.parquet          the plan (tiles with ``processing_key``), replaced atomically
    aois.parquet          the prepared input areas
    params.json           the run's parameters (secrets redacted)
    results/<key>.<aoi>.parquet
                          one GeoParquet file per downloaded AOI result, with the
                          provenance columns ``row``, ``tile_id``, ``processing_id``

Every file is written with an atomic rename; nothing is rewritten in place.
"""

from __future__ import annotations

import functools
import io
import json
import os
import threading
from collections.abc import Collection
from pathlib import Path

import geopandas as gpd
import pandas as pd

from mapflow_geo._args import jsonable
from mapflow_geo._secrets import redact
from mapflow_geo.exceptions import RunError
from mapflow_geo.messages import render_message
from mapflow_geo.models import Status
from mapflow_geo.results import MapflowResult, read_result_files, stitch
from mapflow_geo.results._options import OPTIONS
from mapflow_geo.results.io import FILE_COLUMNS, Piece, empty_features, system_allocator
from mapflow_geo.results.repair import QA_COLUMNS
from mapflow_geo.run import journal as jr
from mapflow_geo.run._failpoints import failpoint
from mapflow_geo.run._files import atomic_write_bytes
from mapflow_geo.run.fetch import DAMAGED_RESULT
from mapflow_geo.run.prepare import PlannedProcessing, build_processing, shared_part
from mapflow_geo.run.progress import stitching
from mapflow_geo.run.status import RunStatus


def default_run_dir(fingerprint: str, *, fresh: bool = False) -> Path:
    """Per-user cache folder for a run, keyed by its fingerprint (inputs, parameters,
    service host and account: :func:`~mapflow_geo.run.prepare.fingerprint_of`).

    The folder is ``<key>``, the fingerprint's first 20 characters (a name that stays,
    so that a later version resumes what an earlier one stored). The newest folder of
    the fingerprint (by number) is resumed; ``fresh`` names a new one beside the others
    (``<key>.2``, ``<key>.3``…), which later calls then resume. Nothing is deleted.
    """
    import platformdirs

    root = Path(platformdirs.user_cache_dir("mapflow-geo")) / "runs"
    key = fingerprint[:20]
    numbers = [1] if (root / key).exists() else []
    for p in root.glob(f"{key}.*"):
        suffix = p.name[len(key) + 1 :]
        if suffix.isdigit():
            numbers.append(int(suffix))
    if fresh and numbers:
        return root / f"{key}.{max(numbers) + 1}"
    newest = max(numbers, default=1)
    return root / key if newest == 1 else root / f"{key}.{newest}"


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run's journal."""
    return (Path(run_dir) / jr.JOURNAL_FILE).exists()


def describe_stored(journal: jr.Journal) -> str:
    """What a stored run holds, in words: processings done, objects stored, credits
    charged (by the calls that created them).

    Example: ``"3 of 4 processings done, 1,234 objects stored, 56 credits charged"``.
    """
    records = journal.records()
    done = sum(r.state == jr.FINISHED for r in records)
    credits = sum(int(r.cost or 0) for r in records if r.processing_id)
    objects = journal.stored_objects()
    return (
        f"{done} of {len(records)} processings done, {objects:,} objects stored, "
        f"{credits:,} credits charged"
    )


def write_parquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write a frame as GeoParquet with an atomic rename."""
    buf = io.BytesIO()
    gdf.to_parquet(buf)
    atomic_write_bytes(path, buf.getvalue())


def save_inputs(run_dir: Path, aois, plan, run_params: dict) -> None:
    """Write the plan, the areas and the parameters once (a resumed run keeps them)."""
    if not (run_dir / "plan.parquet").exists():
        write_parquet(plan, run_dir / "plan.parquet")
    if not (run_dir / "aois.parquet").exists():
        write_parquet(aois, run_dir / "aois.parquet")
    if not (run_dir / "params.json").exists():
        atomic_write_bytes(
            run_dir / "params.json",
            json.dumps(redact(run_params), indent=1, default=jsonable).encode(),
        )


def apply_stored_plan(
    run_dir: Path, plan: gpd.GeoDataFrame, procs: list[PlannedProcessing]
) -> tuple[gpd.GeoDataFrame, list[PlannedProcessing]]:
    """On resume, the stored plan wins: processings the runner re-planned after a
    ``TOO_LARGE_PROCESSING`` refusal are replaced by their pieces (bodies rebuilt from
    the stored tiles), so the refused processing is never sent again."""
    path = run_dir / "plan.parquet"
    if not path.exists():
        return plan, procs
    stored = gpd.read_parquet(path)
    keys = set(stored["processing_key"])
    if keys == set(plan["processing_key"]) or not procs:
        return plan, procs
    by_key = {p.key: p for p in procs}
    out = [p for p in procs if p.key in keys]
    for key, tiles in stored[~stored["processing_key"].isin(list(by_key))].groupby(
        "processing_key", sort=True
    ):
        # a piece "<parent>.NN" (possibly nested) keeps its ancestor's body: model,
        # blocks, project and source (a scene-planned processing keeps its scene)
        ancestor = str(key)
        while ancestor not in by_key and "." in ancestor:
            ancestor = ancestor.rsplit(".", 1)[0]
        base, prefix = shared_part(by_key.get(ancestor, procs[0]))
        out.append(build_processing(str(key), base, tiles, prefix))
    return stored, out


def result_files(run_dir: Path, downloads: list) -> pd.DataFrame:
    """The run's stored results: ``path``, ``tile_id``, ``features`` per file (OK
    downloads with at least one object)."""
    rows = [
        {"path": str(run_dir / d.path), "tile_id": d.tile_id, "features": int(d.features)}
        for d in downloads
        if d.status == Status.OK and d.path and d.features
    ]
    return pd.DataFrame(rows, columns=FILE_COLUMNS)


def _render(messages: list) -> list[str]:
    return [render_message(m) for m in messages]


_PROC_COLUMNS = [
    "key",
    "processing_id",
    "status",
    "estimate",
    "cost",
    "area_km2",
    "restarts",
    "messages",
    "created_at",
    "finished_at",
    "earlier",
]


def _processings(
    records: list[jr.ProcessingRecord], earlier: Collection[str] | None = None
) -> pd.DataFrame:
    """One row per processing; ``earlier`` is True for those an earlier call created
    (every created one when the run is reopened: ``earlier`` None)."""
    return pd.DataFrame(
        [
            {
                "key": r.key,
                "processing_id": r.processing_id,
                "status": r.status,
                "estimate": r.estimate,
                "cost": r.cost,
                "area_km2": r.area_km2,
                "restarts": r.restarts,
                "messages": _render(r.messages),
                "created_at": r.created_at,
                "finished_at": r.finished_at,
                "earlier": bool(r.processing_id) and (earlier is None or r.key in earlier),
            }
            for r in records
            if r.status != RunStatus.REPLANNED  # split into the pieces that follow; never created
        ],
        columns=_PROC_COLUMNS,
    )


def _tiles(plan: gpd.GeoDataFrame, procs: pd.DataFrame, downloads: list) -> gpd.GeoDataFrame:
    tile_status = {d.tile_id: (d.status, _render(d.messages)) for d in downloads if d.tile_id}
    by_key = procs.set_index("key")
    tiles = plan.copy()
    tiles["processing_id"] = tiles["processing_key"].map(by_key["processing_id"])
    proc_status = (  # object: no processing recorded maps every tile to NaN (float)
        tiles["processing_key"].map(by_key["status"]).astype(object).fillna(RunStatus.PLANNED.value)
    )
    tiles["status"] = [
        tile_status.get(t, (s,))[0]
        for t, s in zip(tiles["tile_id"].astype(str), proc_status, strict=False)
    ]
    tiles["messages"] = [
        tile_status[t][1]
        if t in tile_status
        else list(by_key["messages"].get(k, []) or [])
        if s != Status.OK
        else []
        for t, k, s in zip(
            tiles["tile_id"].astype(str), tiles["processing_key"], tiles["status"], strict=False
        )
    ]
    for col in ("cost", "created_at", "finished_at"):
        tiles[col] = tiles["processing_key"].map(by_key[col])
    return tiles


def _qa(records: list[jr.ProcessingRecord], downloads: list) -> pd.DataFrame:
    """``MapflowResult.qa``: per processing with stored or damaged results, objects
    stored, repaired and dropped on ingest, and results given up on as unreadable."""
    ids = {r.key: r.processing_id for r in records}
    per: dict[str, list[int]] = {}
    for d in downloads:
        row = per.setdefault(d.processing_key, [0, 0, 0, 0])
        if d.status == Status.OK:
            row[0] += int(d.features or 0)
            row[1] += int(d.repaired or 0)
            row[2] += int(d.dropped or 0)
        elif d.status == DAMAGED_RESULT:
            row[3] += 1
    return pd.DataFrame(
        [[k, ids.get(k), *v] for k, v in sorted(per.items())], columns=QA_COLUMNS
    ).astype({c: "int64" for c in QA_COLUMNS[2:]})


class KeptPieces:
    """The objects of the results a run stored, as decoded on the way (up to
    ``keep_run_features`` objects, and no more than ``max_features_in_memory``:
    :func:`mapflow_geo.set_options`), so that the run's ``res.features`` is built from
    them instead of reading its files back (:func:`load_result`). A run with more keeps
    none: all are dropped once the objects kept pass the limit, or once a tenth of the
    planned ``area_km2`` is stored and its density predicts more. Only a file stored and
    journalled is ever read by path, so a kept piece never stands for anything but its
    file. Thread-safe."""

    def __init__(self, limit: int | None = None, area_km2: float = 0.0) -> None:
        if limit is None:
            limit = OPTIONS["keep_run_features"]
            most = OPTIONS["max_features_in_memory"]
            limit = limit if most is None else min(limit, most)
        self.limit = limit
        self.area_km2 = area_km2
        self.pieces: dict[str, Piece] = {}
        self.objects = 0
        self._stored_km2 = 0.0
        self._closed = limit <= 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # a pickled result reads its objects from its files: nothing kept travels
        state = {k: v for k, v in self.__dict__.items() if k != "_lock"}
        return {**state, "pieces": {}, "objects": 0, "_closed": True}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """Whether results stored from now on are worth keeping."""
        return not self._closed

    def add(self, path: Path, piece: Piece | None, area_km2: float = 0.0) -> None:
        """Keep the piece stored at ``path`` (replacing one stored there before), the
        objects of ``area_km2`` of the plan; past the limit, drop them all and keep none
        from then on."""
        if piece is None:
            return
        with self._lock:
            if self._closed:
                return
            old = self.pieces.pop(str(path), None)
            self.objects += len(piece) - (len(old) if old is not None else 0)
            self._stored_km2 += area_km2
            self.pieces[str(path)] = piece
            if self.objects > self.limit or self._predicted() > self.limit:
                self.pieces.clear()
                self._closed = True

    def _predicted(self) -> float:
        """The run's objects as the density so far predicts them (0 before a tenth of
        the plan's area is stored)."""
        if self.area_km2 <= 0 or self._stored_km2 < 0.1 * self.area_km2:
            return 0.0
        return self.objects * self.area_km2 / self._stored_km2


def _merge_stored(
    files: pd.DataFrame,
    plan: gpd.GeoDataFrame,
    progress: bool = False,
    kept: KeptPieces | None = None,
) -> gpd.GeoDataFrame:
    """Every stored piece in one frame, stitched: ``MapflowResult.features`` (the pieces
    ``kept`` in memory are taken from there, the others read)."""
    pieces = int(pd.to_numeric(files["features"]).sum()) if len(files) else 0
    with stitching(pieces, enabled=progress) as done, system_allocator():
        merged = read_result_files(files["path"], kept=kept.pieces if kept else None, public=True)
        failpoint("mid_merge")
        out = stitch(merged, plan)
        done(len(out))
    return out


def load_result(
    run_dir: str | os.PathLike,
    journal: jr.Journal | None = None,
    *,
    earlier: Collection[str] | None = None,
    progress: bool = False,
    kept: KeptPieces | None = None,
) -> MapflowResult:
    """Build a :class:`MapflowResult` from a run dir (journal, plan, areas and the list
    of stored files). No object is read: ``features`` loads them on first access (with a
    ``stitch`` progress bar when ``progress``), ``stats`` and ``to_parquet`` stream over
    the files. ``earlier``: keys of the processings created before this call (None: all
    of them, as when a run is reopened). ``kept``: the objects the run kept in memory
    as it stored them (the same frame, without reading those files back)."""
    run_dir = Path(run_dir)
    own = journal is None
    if own:
        journal = jr.Journal(run_dir, None, lock=False)
    try:
        plan = gpd.read_parquet(run_dir / "plan.parquet")
        aois = gpd.read_parquet(run_dir / "aois.parquet")
        recs = journal.records()
        downloads = journal.downloads()
        files = result_files(run_dir, downloads)
    finally:
        if own:
            journal.close()
    procs = _processings(recs, earlier)
    tiles = _tiles(plan, procs, downloads)
    qa = _qa(recs, downloads)
    res = MapflowResult(
        features=None if len(files) else empty_features(),
        loader=functools.partial(_merge_stored, files, plan, progress, kept),
        tiles=tiles,
        aois=aois,
        processings=procs,
        run_dir=run_dir,
        files=files,
        qa=qa,
        params=_params(run_dir),
    )
    return res


def _params(run_dir: Path) -> dict:
    """The run's stored parameters (``params.json``; empty when missing or unreadable)."""
    try:
        return json.loads((run_dir / "params.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def open_run(run_dir: str | os.PathLike, *, progress: bool = True) -> MapflowResult:
    """Reopen a finished or interrupted run offline (no network, no lock), without
    reading its objects: ``res.stats``, ``res.costs`` and ``res.to_parquet(folder)``
    stream over the stored files; ``res.features`` loads them on first access (with a
    ``stitch`` progress bar on stderr unless ``progress=False``). Every charge of the
    run was made before it was reopened: ``res.costs`` shows it as
    ``charged_earlier_credits``.

    Examples
    --------
    >>> res = open_run("runs/city")                      # doctest: +SKIP
    >>> res.stats                                        # doctest: +SKIP
    >>> res.to_parquet("city-buildings")                 # doctest: +SKIP
    >>> res.features.head()                              # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    if not holds_run(run_dir):  # a path mistyped: nothing is created there
        raise RunError(f"{run_dir} holds no mapflow-geo run (no {jr.JOURNAL_FILE})")
    if not (run_dir / "plan.parquet").exists():
        raise RunError(
            f"{run_dir} holds a run stopped before its plan was saved: nothing was created "
            "or stored; run process() with this run_dir again"
        )
    with jr.Journal(run_dir, None, lock=False) as journal:
        template = journal.get_run("template_id")
    if template:
        raise RunError(
            f"{run_dir} holds a monitor (template {template}), not a run: reopen it with "
            "mapflow_geo.open_monitor(run_dir)"
        )
    return load_result(run_dir, progress=progress)
