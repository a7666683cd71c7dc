"""Runs: plan → estimate → submit → poll → fetch → merge, resumable from the journal.

The money rules, in the order the code applies them:

1. Validate, plan and estimate before anything is created; refuse over ``max_credits``
   or over what the account has left, stating the numbers (nothing spent).
2. Each processing's *intent* (and the ``meta`` its create carries: run id and key) is
   committed to the journal before the create is sent.
3. A create is sent once. When its outcome is unknown (timeout, reset, 5xx without a
   readable answer) the runner does not create again: it lists the project's processings
   and adopts the one whose ``meta`` matches. Only after the processing has stayed absent
   from several listings, spread over a grace period, is it created again.
4. Results are stored per processing and AOI as they arrive (GeoParquet, atomic rename)
   and never downloaded twice.

Polling is one ``list`` request per cycle for the whole project, whatever the number of
processings, at an interval that starts short and backs off to ``poll_interval``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping

from mapflow_geo import journal as jr
from mapflow_geo.exceptions import (
    AmbiguousCreateError,
    APIError,
    AuthenticationError,
    BudgetError,
    MapflowError,
    PermissionDeniedError,
    PlanError,
    RateLimitError,
    ServerError,
    TooLargeProcessingError,
    TransportError,
)
from mapflow_geo.results import (
    MapflowResult,
    geoparquet_bytes,
    read_geojson_table,
    stitch,
    table_to_geodataframe,
)

log = logging.getLogger(__name__)

META_RUN = "mapflow_geo_run"
META_KEY = "mapflow_geo_key"
TERMINAL = {"OK", "FAILED", "CANCELLED", "REFUNDED"}
#: ``aoi_id`` of a download that is a whole single-AOI processing's result.
WHOLE = "whole"
#: Status of a processing the server refused as too large and that was split up.
REPLANNED = "REPLANNED"
#: Upper clamp for a ``Retry-After`` the runner honours before re-sending a refused create.
MAX_CREATE_RETRY_AFTER = 60.0


class RunFailedError(MapflowError):
    """Some tiles did not succeed. ``result`` holds everything that did."""

    def __init__(self, message: str, result: MapflowResult) -> None:
        self.result = result
        super().__init__(message)


class RunIncompleteWarning(UserWarning):
    """Issued by ``errors="warn"`` when some tiles did not succeed."""


# ----------------------------------------------------------------------------- helpers
def _status_str(status: Any) -> str:
    return str(getattr(status, "value", status) or "").upper()


def _render(messages: list) -> list[str]:
    try:
        from mapflow_geo.messages import render_message
    except ImportError:  # pragma: no cover
        return [json.dumps(m) for m in messages]
    return [render_message(m) for m in messages]


def default_run_dir(fingerprint: str) -> Path:
    """Per-user cache folder for a run, keyed by its fingerprint."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("mapflow-geo")) / "runs" / fingerprint[:20]


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def _source_params(source: Any) -> dict | None:
    if source is None:
        return None
    if not isinstance(source, dict):
        raise TypeError("source must be a dict such as mapflow_geo.sources.data_provider(...)")
    return dict(source) if "sourceParams" in source else {"sourceParams": dict(source)}


@dataclass
class _Processing:
    key: str
    body: dict  # create body without meta
    area_km2: float
    tile_ids: list
    estimate: int | None = None


# ----------------------------------------------------------------------------- prepare
def prepare_run(
    gdf: gpd.GeoDataFrame,
    model: str,
    *,
    client: Any,
    source: Any = None,
    blocks: Any = None,
    project: str | None = None,
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    errors: str = "raise",
    name: str | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, list[_Processing], dict]:
    """Validate the areas, plan tiles and build one create body per processing.

    Returns (aois, plan, processings, params); sends nothing that creates or costs.
    """
    from mapflow_geo.aoi import prepare_aois
    from mapflow_geo.tiling import plan as make_plan

    aois = prepare_aois(gdf, errors=errors)
    if area_limit_km2 is None or max_aois is None:
        limits = client.account_limits()
        area_limit_km2 = area_limit_km2 or limits.aoi_area_limit_km2
        max_aois = max_aois or limits.max_aois_per_processing
    found = client.find_model(model)
    scenes = source if isinstance(source, gpd.GeoDataFrame) else None
    if scenes is not None:  # chosen catalog scenes: tiles clipped to them, one per processing
        from mapflow_geo.imagery import plan_scenes, scene_source

        plan = plan_scenes(aois, scenes, area_limit_km2=area_limit_km2, max_aois=max_aois)
        source = None
    else:
        plan = make_plan(aois, area_limit_km2=area_limit_km2, max_aois=max_aois)
    params = _source_params(source)
    block_list = list(blocks) if blocks is not None else None
    base: dict[str, Any] = {"wdName": found.name}
    if getattr(found, "id", None):
        base["wdId"] = found.id
    if params:
        base["params"] = params
    if block_list:
        base["blocks"] = block_list
    if project:
        base["projectId"] = project
    processings = []
    for proc_no, tiles in plan.groupby("processing", sort=True):
        parts = []
        for g in tiles.geometry:
            parts.extend(getattr(g, "geoms", [g]))
        geom = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        tile_ids = sorted(tiles["tile_id"].astype(str))
        key = f"p{int(proc_no):05d}-{_digest(tile_ids)[:10]}"
        body = dict(base, name=f"{name or 'mapflow-geo'} {key}", geometry=mapping(geom))
        if scenes is not None:
            body["params"] = scene_source(tiles)
        processings.append(_Processing(key, body, float(tiles["area_km2"].sum()), tile_ids))
    key_of = {t: p.key for p in processings for t in p.tile_ids}
    plan = plan.assign(processing_key=plan["tile_id"].astype(str).map(key_of))
    run_params = {
        "model": found.name,
        "source": params if scenes is None else sorted(map(str, scenes["id"])),
        "blocks": block_list,
        "project": project,
        "area_limit_km2": area_limit_km2,
        "max_aois": max_aois,
    }
    return aois, plan, processings, run_params


def estimate_processings(client: Any, processings: list[_Processing], workers: int = 4) -> None:
    """Fill ``estimate`` of each processing from the server's cost endpoint (no create)."""
    todo = [p for p in processings if p.estimate is None]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for p, cost in zip(
            todo, pool.map(lambda p: int(client.cost(**p.body)), todo), strict=False
        ):
            p.estimate = cost


#: Plans with more processings than this are refused unless ``max_processings`` is
#: raised (or None): each one costs a cost request before the run and a create in it.
MAX_PROCESSINGS = 10_000


def _check_size(procs: list[_Processing], max_processings: int | None) -> None:
    if max_processings is not None and len(procs) > max_processings:
        area = sum(p.area_km2 for p in procs)
        raise PlanError(
            f"the plan has {len(procs)} processings for {area:,.1f} km² "
            f"(max_processings={max_processings}); nothing was sent. Pass a larger "
            "max_processings (or None) to run it, or raise the account's area limit."
        )


def _check_credit_floor(
    client: Any, model: str, blocks: Any, procs: list[_Processing], max_credits: int | None
) -> None:
    """Refuse before asking the server about each processing when even the model's own
    price (no imagery price: a lower bound of the server's cost) exceeds ``max_credits``."""
    if max_credits is None:
        return
    price = float(client.model_price(model, blocks))
    floor = sum(math.ceil(max(p.area_km2, 1.0) * price - 1e-9) for p in procs)
    if floor > max_credits:
        raise BudgetError(
            f"the run costs at least {floor} credits for {len(procs)} processings "
            f"({price:g} credits/km² before imagery), over max_credits={max_credits}; "
            "nothing was created"
        )


def estimate(
    gdf: gpd.GeoDataFrame,
    model: str,
    *,
    client: Any = None,
    source: Any = None,
    blocks: Any = None,
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    errors: str = "raise",
    max_processings: int | None = MAX_PROCESSINGS,
) -> pd.DataFrame:
    """Estimated cost per input row: ``area_km2``, ``processings``, ``credits``.

    Plans the run and asks the server's cost endpoint about every planned processing;
    creates nothing. A processing shared by several rows is split between them by area.
    Plans over ``max_processings`` are refused before any cost request.
    """
    client = _client_or_default(client)
    aois, plan, procs, _ = prepare_run(
        gdf,
        model,
        client=client,
        source=source,
        blocks=blocks,
        area_limit_km2=area_limit_km2,
        max_aois=max_aois,
        errors=errors,
    )
    _check_size(procs, max_processings)
    estimate_processings(client, procs)
    est = pd.Series({p.key: p.estimate for p in procs})
    share = plan.groupby(["processing_key", "row"], sort=False)["area_km2"].sum()
    frac = share / share.groupby(level=0).transform("sum")
    credits = (frac * est.reindex(frac.index.get_level_values(0)).values).groupby(level=1).sum()
    out = pd.DataFrame(
        {
            "area_km2": plan.groupby("row")["area_km2"].sum(),
            "processings": plan.groupby("row")["processing_key"].nunique(),
            "credits": credits,
        }
    ).reindex(aois.index)
    out.index.name = "row"
    out.attrs["total_credits"] = int(est.sum())
    out.attrs["processings"] = len(procs)
    return out


def _client_or_default(client: Any) -> Any:
    if client is not None:
        return client
    from mapflow_geo.client import MapflowClient

    return MapflowClient()


# ----------------------------------------------------------------------------- runner
class Runner:
    """Drives one run; use :func:`process` rather than this class directly."""

    def __init__(
        self,
        client: Any,
        journal: jr.Journal,
        plan: gpd.GeoDataFrame,
        processings: list[_Processing],
        *,
        project_id: str,
        poll_interval: float = 30.0,
        min_poll_interval: float = 1.0,
        max_restarts: int = 2,
        max_workers: int = 4,
        max_aois: int = 10,
        adopt_grace_s: float = 20.0,
        max_outage_s: float = 1800.0,
        progress: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.journal = journal
        self.max_aois = max_aois
        self._set_plan(plan)
        self.procs = {p.key: p for p in processings}
        self.project_id = project_id
        self.poll_interval = poll_interval
        self.min_poll_interval = min(min_poll_interval, poll_interval)
        self.max_restarts = max_restarts
        self.max_workers = max_workers
        self.adopt_grace_s = adopt_grace_s
        self.max_outage_s = max_outage_s
        self.sleep = sleep
        self.clock = clock
        self.run_id = journal.run_id
        self.results_dir = journal.run_dir / "results"
        self._stop_creating = False
        self._stop_reason: str | None = None
        self._missing_since: dict[str, float] = {}
        self._bar = _Progress(len(processings), enabled=progress)
        self._lock = threading.Lock()

    # -- create ------------------------------------------------------------------
    def _meta(self, key: str) -> dict:
        return {META_RUN: self.run_id, META_KEY: key}

    def _create(self, key: str) -> None:
        if self._stop_creating:
            return
        proc = self.procs[key]
        meta = self._meta(key)
        _failpoint("before_intent")
        self.journal.mark_intent(key, meta=meta)  # durable before the request
        _failpoint("after_intent")
        try:
            created = self._send_create(key, proc, meta)
        except AmbiguousCreateError as exc:
            log.info("create %s: outcome unknown (%s); will reconcile by meta", key, exc)
            self._missing_since.setdefault(key, self.clock())
            return
        except TransportError as exc:  # never left (refused): not created; try again later
            log.warning("create %s not sent (%s); will retry after reconciling", key, exc)
            self._missing_since.setdefault(key, self.clock())
            return
        except (AuthenticationError, PermissionDeniedError):
            self.journal.mark_not_created(key, message="authentication refused")
            self._stop_creating = True
            raise
        except TooLargeProcessingError as exc:
            self.journal.mark_not_created(key, message=str(exc))  # refused: not charged
            new_keys = self._replan(key, exc)
            if not new_keys:
                self._finish_unsent(key, "TOO_LARGE_PROCESSING", str(exc))
            for k in new_keys:
                self._create(k)
            return
        except APIError as exc:
            if exc.status >= 500:  # readable 5xx: still may have committed; reconcile
                self._missing_since.setdefault(key, self.clock())
                return
            self.journal.mark_not_created(key, message=str(exc))
            self._stop_creating = True  # e.g. out of credits: keep what is paid for
            self._stop_reason = str(exc)
            self._finish_unsent(key, "NOT_CREATED", str(exc))
            return
        _failpoint("after_create")
        self.journal.mark_created(
            key, created.id, status=_status_str(created.status), cost=created.cost
        )

    def _send_create(self, key: str, proc: _Processing, meta: dict) -> Any:
        """Send the create; a 429 (the server refused it: nothing committed) is re-sent
        after its ``Retry-After`` (clamped; else a growing delay) for as long as an outage
        may last (``max_outage_s``), unless creating has stopped."""
        attempt = 0
        first = self.clock()
        while True:
            try:
                return self.client.create_processing(**proc.body, meta=meta)
            except RateLimitError as exc:
                attempt += 1
                if self._stop_creating or self.clock() - first > self.max_outage_s:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else 2.0 ** min(attempt, 6)
                delay = min(max(0.0, delay), MAX_CREATE_RETRY_AFTER)
                log.info("create %s rate-limited; retrying in %.1fs", key, delay)
                self.sleep(delay)

    # -- re-plan ------------------------------------------------------------------
    def _set_plan(self, plan: gpd.GeoDataFrame) -> None:
        self.plan = plan
        self._plan_index = (
            plan,
            plan.groupby("processing_key", sort=False).indices,
            dict(zip(plan["tile_id"].astype(str), plan["row"], strict=True)),
        )

    def _replan(self, key: str, exc: TooLargeProcessingError) -> list[str]:
        """The server refused ``key`` as too large (its limit shrank after planning):
        plan that processing's tiles again under the limit it states and return the keys
        of the pieces, to be created instead.

        Durable in this order, so that a crash anywhere resumes correctly: the plan
        file with the pieces in place of ``key`` (atomic replace), then the pieces in the
        journal, then ``key`` marked ``REPLANNED``. On resume :func:`process` reads the
        stored plan, so ``key`` is never created again and the pieces are.
        """
        from mapflow_geo.tiling import plan as make_plan

        try:
            limit_km2 = float((exc.params or {})["aoiAreaLimit"]) / 1e6
        except (KeyError, TypeError, ValueError):
            log.warning("%s refused as too large without a usable limit: %s", key, exc)
            return []
        with self._lock:
            plan = self.plan
            old = plan[plan["processing_key"] == key]
            if old.empty or limit_km2 <= 0:
                return []
            sub = gpd.GeoDataFrame(
                geometry=old.geometry.values,
                index=pd.Index(old["tile_id"].astype(str)),
                crs=plan.crs,
            )
            pieces = make_plan(sub, area_limit_km2=limit_km2, max_aois=self.max_aois)
            if pieces["processing"].nunique() < 2 and len(pieces) == len(old):
                log.warning("%s cannot be planned smaller under %.3f km²", key, limit_km2)
                return []
            # each piece lies in one old tile (its "row" here): carry the old tile's
            # columns over (input row, and e.g. the scene a scene-planned tile uses)
            src = pieces["row"].astype(str)
            by_tile = old.set_index(old["tile_id"].astype(str))
            pieces["row"] = src.map(by_tile["row"])
            for col in plan.columns:
                if col not in pieces.columns:
                    pieces[col] = src.map(by_tile[col]).values
            base = {k: v for k, v in self.procs[key].body.items() if k not in ("name", "geometry")}
            prefix = self.procs[key].body.get("name", "mapflow-geo").rsplit(" ", 1)[0]
            first_no = int(plan["processing"].max()) + 1 if "processing" in plan else 0
            new_procs = []
            for n, (_, tiles) in enumerate(pieces.groupby("processing", sort=True)):
                new_key = f"{key}.{n:02d}"
                parts = list(tiles.geometry.values)
                geom = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
                body = dict(base, name=f"{prefix} {new_key}", geometry=mapping(geom))
                tile_ids = sorted(tiles["tile_id"].astype(str))
                new_procs.append(
                    _Processing(new_key, body, float(tiles["area_km2"].sum()), tile_ids)
                )
                pieces.loc[tiles.index, "processing"] = first_no + n
                pieces.loc[tiles.index, "processing_key"] = new_key
            estimate_processings(self.client, new_procs, workers=1)
            new_plan = pd.concat(
                [plan[plan["processing_key"] != key], pieces[list(plan.columns)]],
                ignore_index=True,
            )
            new_plan = gpd.GeoDataFrame(new_plan, geometry="geometry", crs=plan.crs)
            _write_parquet(new_plan, self.journal.run_dir / "plan.parquet")  # atomic replace
            self._set_plan(new_plan)  # the next re-plan must start from what is on disk
            for p in new_procs:
                self.procs[p.key] = p
            for p in new_procs:
                self.journal.add_planned(p.key, estimate=p.estimate, area_km2=p.area_km2)
            self.journal.update_status(
                key,
                status=REPLANNED,
                messages=[f"{exc} Re-planned as {len(new_procs)} processings."],
            )
            self.journal.mark_finished(key)
        log.info("%s too large for %.3f km²: re-planned as %d", key, limit_km2, len(new_procs))
        return [p.key for p in new_procs]

    def _finish_unsent(self, key: str, status: str, message: str) -> None:
        self.journal.update_status(key, status=status, messages=[message])
        self.journal.mark_finished(key)

    # -- reconcile ----------------------------------------------------------------
    def _adopt(self, listing: list) -> None:
        """Match records left in ``intent`` to listed processings by ``meta``."""
        by_key = {}
        for p in listing:
            meta = getattr(p, "meta", None) or {}
            if meta.get(META_RUN) == self.run_id and META_KEY in meta:
                by_key.setdefault(meta[META_KEY], p)
        for rec in self.journal.records():
            if rec.state != jr.INTENT:
                continue
            found = by_key.get(rec.key)
            if found is not None:
                log.info("adopting processing %s for %s", found.id, rec.key)
                self.journal.mark_created(
                    rec.key, found.id, status=_status_str(found.status), cost=found.cost
                )
                self._missing_since.pop(rec.key, None)
                continue
            first = self._missing_since.setdefault(rec.key, self.clock())
            if self.clock() - first >= self.adopt_grace_s:
                log.info(
                    "%s absent from listings for %.0fs: creating it", rec.key, self.clock() - first
                )
                self._missing_since.pop(rec.key, None)
                self._create(rec.key)

    # -- poll ---------------------------------------------------------------------
    def _list(self) -> list:
        return list(self.client.list_processings(self.project_id))

    def _handle(
        self,
        rec: jr.ProcessingRecord,
        proc: Any,
        pool: ThreadPoolExecutor,
        pending: dict[str, Future],
    ) -> bool:
        """Record what the listing says about one processing; restart or fetch it.

        Only a change of status, cost or messages is written to the journal (the
        percentage alone is cosmetic and would cost one durable transaction per
        processing per cycle). Returns True when the status changed.
        """
        status = _status_str(proc.status)
        messages = list(getattr(proc, "messages", None) or [])
        cost = getattr(proc, "cost", None)
        changed = status != rec.status
        if changed or (cost is not None and cost != rec.cost) or messages != rec.messages:
            self.journal.update_status(
                rec.key,
                status=status,
                percent=getattr(proc, "percent_completed", None),
                cost=cost,
                messages=messages,
            )
        _failpoint("mid_poll")
        if status == "FAILED" and rec.restarts < self.max_restarts:
            log.info("restarting failed processing %s (%s)", proc.id, rec.key)
            self.client.restart_processing(proc.id)
            self.journal.count_restart(rec.key)
            return changed
        if status in TERMINAL and rec.key not in pending:
            pending[rec.key] = pool.submit(self._fetch, rec.key, proc.id, status)
        return changed

    def _fetch(self, key: str, processing_id: str, status: str) -> None:
        """Store every not-yet-stored OK AOI result of a finished processing."""
        plan, positions, _ = self._plan_index  # consistent, even while re-planning
        tiles = plan.iloc[positions[key]]
        done = {d.aoi_id for d in self.journal.downloads(key) if d.status == "OK"}
        if status == "OK" and self.procs[key].body["geometry"]["type"] == "Polygon":
            # one polygon is one AOI: its result is the processing's; no AOI listing
            if WHOLE not in done:
                self._store(key, processing_id, WHOLE, None, tiles)
            self.journal.mark_finished(key)
            return
        aois = list(self.client.processing_aois(processing_id))
        single = len(aois) == 1 and status == "OK"
        for aoi in aois:
            aoi_id = str(aoi.id)
            if aoi_id in done:
                continue
            tile_id = _tile_for(tiles, aoi)
            aoi_status = _status_str(getattr(aoi, "status", status)) or status
            if aoi_status != "OK":
                self.journal.record_download(
                    key,
                    aoi_id,
                    tile_id=tile_id,
                    status=aoi_status,
                    messages=list(getattr(aoi, "messages", None) or []),
                )
                continue
            self._store(key, processing_id, aoi_id, None if single else aoi_id, tiles, tile_id)
        self.journal.mark_finished(key)

    def _store(
        self,
        key: str,
        processing_id: str,
        aoi_id: str,
        query_aoi: str | None,
        tiles: gpd.GeoDataFrame,
        tile_id: str | None = None,
    ) -> None:
        """Download one result, store it as GeoParquet (atomic) and journal it."""
        if tile_id is None and len(tiles) == 1:
            tile_id = str(tiles["tile_id"].iloc[0])
        data = self.client.processing_result_bytes(processing_id, query_aoi)
        _failpoint("mid_download")
        table = read_geojson_table(data)  # Arrow all the way: no pandas per result
        row = self._plan_index[2].get(tile_id) if tile_id else None
        n = table.num_rows
        for name, value in (("row", row), ("tile_id", tile_id), ("processing_id", processing_id)):
            table = table.append_column(name, _repeat(value, n))
        rel = Path("results") / f"{key}.{aoi_id}.parquet"  # one folder: no mkdir per result
        jr.atomic_write_bytes(
            self.journal.run_dir / rel,
            geoparquet_bytes(table),
            failpoint_name="before_result_rename",
        )
        self.journal.record_download(
            key, aoi_id, tile_id=tile_id, status="OK", path=str(rel), features=n
        )

    def run(self) -> None:
        recs = {r.key: r for r in self.journal.records()}
        for key, p in self.procs.items():
            if key not in recs:
                self.journal.add_planned(key, estimate=p.estimate, area_km2=p.area_km2)
        interval = self.min_poll_interval
        pending: dict[str, Future] = {}
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            # Resume: first adopt whatever an earlier, interrupted run already created.
            if any(r.state == jr.INTENT for r in self.journal.records()):
                self._adopt_all_now()
            for r in self.journal.records():
                if r.key not in self.procs and r.state != jr.FINISHED:
                    # re-planned before a crash (only ever after the server refused it)
                    self._finish_unsent(r.key, REPLANNED, "re-planned smaller")
            planned = [
                r.key for r in self.journal.records() if r.state == jr.PLANNED and r.status is None
            ]
            for fut in [pool.submit(self._create, k) for k in planned]:
                fut.result()
            if self._stop_creating:  # the server refused a create: say so for the rest
                for r in self.journal.records():
                    if r.state == jr.PLANNED and r.status is None:
                        self._finish_unsent(
                            r.key,
                            "NOT_CREATED",
                            f"not sent: creating stopped ({self._stop_reason})",
                        )
            outage_since: float | None = None
            while True:
                started = self.clock()
                self._collect(pending)
                records = self.journal.records()
                self._bar.update(records)
                live = [r for r in records if r.state in (jr.INTENT, jr.CREATED)]
                if not live and not pending:
                    break
                changed = False
                if any(r.key not in pending for r in live):
                    try:
                        changed = self._poll(records, pool, pending)
                    except (TransportError, ServerError, RateLimitError) as exc:
                        # The API is down or overloaded (after the client's own retries):
                        # nothing is lost by waiting. Keep polling at the long interval
                        # until the outage outlasts ``max_outage_s``.
                        outage_since = started if outage_since is None else outage_since
                        if self.clock() - outage_since > self.max_outage_s:
                            raise
                        log.warning("poll failed (%s); the run waits and polls again", exc)
                        interval = self.poll_interval
                        self._wait(pending, started + interval)
                        continue
                    outage_since = None
                    self._bar.update(self.journal.records())
                # Percent creeping up is no news: back off. A status change (something
                # started, finished or failed) brings the short interval back.
                interval = (
                    self.min_poll_interval if changed else min(self.poll_interval, interval * 1.5)
                )
                self._wait(pending, started + interval)
        self._bar.close(self.journal.records())

    def _poll(
        self,
        records: list[jr.ProcessingRecord],
        pool: ThreadPoolExecutor,
        pending: dict[str, Future],
    ) -> bool:
        """One poll cycle: one list request, then act on every created processing."""
        listing = self._list()
        if any(r.state == jr.INTENT for r in records):
            self._adopt(listing)
            records = self.journal.records()
        by_id = {p.id: p for p in listing}
        changed = False
        for rec in records:
            if rec.state != jr.CREATED or rec.key in pending:
                continue
            proc = by_id.get(rec.processing_id)
            if proc is None:  # moved out of the project or listing lag
                proc = self.client.get_processing(rec.processing_id)
            changed |= self._handle(rec, proc, pool, pending)
        return changed

    def _wait(self, pending: dict[str, Future], deadline: float) -> None:
        """Sleep until ``deadline``; while downloads run, wake as each one ends and stop
        early once every download has ended and no processing awaits a poll."""
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            running = [f for f in pending.values() if not f.done()]
            if not running:
                if pending and not self._awaiting_poll(pending):
                    return
                self.sleep(remaining)
                return
            wait(running, timeout=remaining, return_when=FIRST_COMPLETED)

    def _awaiting_poll(self, pending: dict[str, Future]) -> bool:
        return any(
            r.state in (jr.INTENT, jr.CREATED) and r.key not in pending
            for r in self.journal.records()
        )

    def _adopt_all_now(self) -> None:
        for k in list(self._missing_since):
            self._missing_since[k] = self.clock()
        self._adopt(self._list())

    def _collect(self, pending: dict[str, Future]) -> None:
        for key in [k for k, f in pending.items() if f.done()]:
            fut = pending.pop(key)
            exc = fut.exception()
            if exc is not None:
                if isinstance(exc, (TransportError, APIError)):
                    log.warning("download of %s failed (%s); will retry", key, exc)
                    continue
                raise exc


def _tile_for(tiles: gpd.GeoDataFrame, aoi: Any) -> str | None:
    geom = getattr(aoi, "geometry", None)
    if geom is None:
        return str(tiles["tile_id"].iloc[0]) if len(tiles) == 1 else None
    if isinstance(geom, dict):
        geom = shapely.geometry.shape(geom)
    pt = geom.representative_point()
    hit = tiles[shapely.intersects(tiles.geometry.values, pt.buffer(1e-9))]
    if len(hit) == 0:
        dist = shapely.distance(tiles.geometry.values, pt)
        return str(tiles["tile_id"].iloc[int(np.argmin(dist))])
    return str(hit["tile_id"].iloc[0])


def _write_parquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    import io as _io

    buf = _io.BytesIO()
    gdf.to_parquet(buf)
    jr.atomic_write_bytes(path, buf.getvalue())


def _read_results(paths: list[Path]) -> gpd.GeoDataFrame:
    """Concatenate stored per-AOI results into one frame.

    Reads the files as Arrow tables and decodes the WKB geometry and the CRS once for all
    (``gpd.read_parquet`` per file spends most of its time re-parsing the same CRS).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p).replace_schema_metadata(None) for p in paths]
    return table_to_geodataframe(pa.concat_tables(tables, promote_options="permissive"))


def _repeat(value: Any, n: int) -> Any:
    """A constant Arrow column (an input index label, a tile or processing id)."""
    import pyarrow as pa

    if value is not None and not isinstance(value, (str, bytes, int, float, bool)):
        value = value.item() if hasattr(value, "item") else value
    try:
        return pa.array([value] * n)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([str(value)] * n)


#: Crash-test failpoints (``MAPFLOW_GEO_FAILPOINT=name`` or ``name:N``), in run order.
FAILPOINTS = (
    "before_intent",
    "after_intent",
    "after_create",
    "mid_poll",
    "mid_download",
    "before_result_rename",
    "mid_merge",
)
_failpoint = jr.failpoint


class _Progress:
    """One aggregate tqdm bar: done/total, counts by status, credits spent, ETA."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.bar = None
        if enabled and total:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is the `progress` extra
                return
            self.bar = tqdm(total=total, desc="mapflow", unit="proc")

    def update(self, records: list[jr.ProcessingRecord]) -> None:
        if self.bar is None:
            return
        done = sum(r.state == jr.FINISHED for r in records)
        counts = Counter((r.status or "PLANNED") for r in records)
        spent = sum(r.cost or 0 for r in records if r.processing_id)
        self.bar.n = done
        self.bar.set_postfix_str(
            " ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f" credits={spent}",
            refresh=False,
        )
        self.bar.refresh()

    def close(self, records: list[jr.ProcessingRecord]) -> None:
        if self.bar is not None:
            self.update(records)
            self.bar.close()


# ----------------------------------------------------------------------------- API
def fingerprint_of(aois: gpd.GeoDataFrame, run_params: dict, api_host: str | None = None) -> str:
    """Digest of the prepared inputs, the run's parameters and the API's host name.

    Not the token (a rotated token resumes the run), not the URL's port or path (a
    restarted local server resumes it); the host, so that a run dir made against one
    service is never resumed against another, whose processings it cannot see.
    """
    wkb = shapely.to_wkb(aois.geometry.values, hex=False)
    parts: list[Any] = [[str(i) for i in aois.index], b"".join(wkb), run_params]
    if api_host:
        parts.append({"api_host": api_host.lower()})
    return _digest(*parts)


def _api_host(client: Any) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(str(getattr(client, "base_url", "") or "")).hostname
    except ValueError:
        return None


def process(
    gdf: gpd.GeoDataFrame,
    model: str,
    *,
    client: Any = None,
    source: Any = None,
    blocks: Any = None,
    project: str | None = None,
    run_dir: str | os.PathLike | None = None,
    max_credits: int | None = None,
    progress: bool = True,
    errors: str = "raise",
    input_errors: str = "raise",
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    poll_interval: float = 30.0,
    min_poll_interval: float = 2.0,
    max_restarts: int = 2,
    max_workers: int = 4,
    name: str | None = None,
    max_processings: int | None = MAX_PROCESSINGS,
    adopt_grace_s: float = 20.0,
    max_outage_s: float = 1800.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> MapflowResult:
    """Run a Mapflow model over every row; see :meth:`MapflowAccessor.process`.

    ``adopt_grace_s``: how long a create whose outcome is unknown must stay absent from
    the listings before it is sent again. ``max_outage_s``: how long polling keeps
    waiting out an unreachable or failing API before the run gives up (resumable).
    ``sleep``/``clock``: injectable collaborators (tests). ``max_processings``: plans
    with more processings are refused before anything is sent (None: no cap).
    """
    if errors not in ("raise", "warn"):
        raise ValueError("errors must be 'raise' or 'warn'")
    client = _client_or_default(client)
    aois, plan, procs, run_params = prepare_run(
        gdf,
        model,
        client=client,
        source=source,
        blocks=blocks,
        project=project,
        area_limit_km2=area_limit_km2,
        max_aois=max_aois,
        errors=input_errors,
        name=name,
    )
    _check_size(procs, max_processings)
    _check_credit_floor(client, run_params["model"], blocks, procs, max_credits)
    fingerprint = fingerprint_of(aois, run_params, _api_host(client))
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(fingerprint)
    with jr.Journal(run_dir, fingerprint) as journal:
        jr.remove_temp_files(run_dir)
        reopened = journal.reopen_not_created()  # refused before: never charged, retry
        if reopened:
            log.info("creating %d processing(s) the server refused before", len(reopened))
        plan, procs = _apply_stored_plan(run_dir, plan, procs)
        known = {r.key: r for r in journal.records()}
        for p in procs:
            if p.key in known and known[p.key].estimate is not None:
                p.estimate = known[p.key].estimate
        estimate_processings(client, procs, max_workers)
        _check_budget(client, procs, known, max_credits)
        _save_inputs(run_dir, aois, plan, run_params)
        project_id = project or client.default_project().id
        journal.set_run("project_id", str(project_id))
        Runner(
            client,
            journal,
            plan,
            procs,
            project_id=project_id,
            poll_interval=poll_interval,
            min_poll_interval=min_poll_interval,
            max_restarts=max_restarts,
            max_workers=max_workers,
            max_aois=int(run_params["max_aois"]),
            adopt_grace_s=adopt_grace_s,
            max_outage_s=max_outage_s,
            progress=progress,
            sleep=sleep,
            clock=clock,
        ).run()
        result = load_result(run_dir, journal)
    if not result.complete:
        failed = result.failed
        msg = (
            f"{len(failed)} of {len(result.tiles)} tiles did not succeed "
            f"({', '.join(sorted(set(failed['status'])))}); the result holds the rest. "
            f"First reasons: {'; '.join(m for ms in failed['messages'] for m in ms)[:500]}"
        )
        if errors == "raise":
            raise RunFailedError(msg, result)
        warnings.warn(msg, RunIncompleteWarning, stacklevel=2)
    return result


def _check_budget(client: Any, procs: list[_Processing], known: dict, max_credits) -> None:
    total = sum(p.estimate or 0 for p in procs)
    to_create = [p for p in procs if p.key not in known or known[p.key].state == jr.PLANNED]
    new_credits = sum(p.estimate or 0 for p in to_create)
    new_area = sum(p.area_km2 for p in to_create)
    if max_credits is not None and total > max_credits:
        raise BudgetError(
            f"the run is estimated at {total} credits for {len(procs)} processings, "
            f"over max_credits={max_credits}; nothing was created"
        )
    if not to_create:
        return
    status = client.user_status()
    billing = str(getattr(status, "billing_type", "") or "").upper()
    if billing == "CREDITS" and status.remaining_credits is not None:
        if new_credits > status.remaining_credits:
            raise BudgetError(
                f"the run needs {new_credits} more credits but the account has "
                f"{status.remaining_credits} left; nothing was created"
            )
    if billing == "AREA" and status.remaining_area is not None:
        if new_area * 1e6 > status.remaining_area:
            raise BudgetError(
                f"the run needs {new_area:.3f} km² more but the account has "
                f"{status.remaining_area / 1e6:.3f} km² left; nothing was created"
            )


def _apply_stored_plan(
    run_dir: Path, plan: gpd.GeoDataFrame, procs: list[_Processing]
) -> tuple[gpd.GeoDataFrame, list[_Processing]]:
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
        parent = by_key.get(ancestor, procs[0])
        base = {k: v for k, v in parent.body.items() if k not in ("name", "geometry")}
        prefix = parent.body.get("name", "mapflow-geo").rsplit(" ", 1)[0]
        parts = list(tiles.geometry.values)
        geom = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        body = dict(base, name=f"{prefix} {key}", geometry=mapping(geom))
        tile_ids = sorted(tiles["tile_id"].astype(str))
        out.append(_Processing(str(key), body, float(tiles["area_km2"].sum()), tile_ids))
    return stored, out


def _save_inputs(run_dir: Path, aois, plan, run_params: dict) -> None:
    if not (run_dir / "plan.parquet").exists():
        _write_parquet(plan, run_dir / "plan.parquet")
    if not (run_dir / "aois.parquet").exists():
        _write_parquet(aois, run_dir / "aois.parquet")
    if not (run_dir / "params.json").exists():
        from mapflow_geo.sources import redact  # no rasterPassword on disk

        jr.atomic_write_bytes(
            run_dir / "params.json", json.dumps(redact(run_params), indent=1).encode()
        )


def load_result(run_dir: str | os.PathLike, journal: jr.Journal | None = None) -> MapflowResult:
    """Build a :class:`MapflowResult` from a run dir (stored files and journal)."""
    run_dir = Path(run_dir)
    own = journal is None
    if own:
        journal = jr.Journal(run_dir, None, lock=False)
    try:
        plan = gpd.read_parquet(run_dir / "plan.parquet")
        aois = gpd.read_parquet(run_dir / "aois.parquet")
        recs = journal.records()
        downloads = journal.downloads()
    finally:
        if own:
            journal.close()
    procs = pd.DataFrame(
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
            }
            for r in recs
            if r.status != REPLANNED  # split into the pieces that follow; never created
        ],
        columns=[
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
        ],
    )
    tile_status = {d.tile_id: (d.status, _render(d.messages)) for d in downloads if d.tile_id}
    by_key = procs.set_index("key")
    tiles = plan.copy()
    tiles["processing_id"] = tiles["processing_key"].map(by_key["processing_id"])
    proc_status = tiles["processing_key"].map(by_key["status"]).fillna("PLANNED")
    tiles["status"] = [
        tile_status.get(t, (s,))[0]
        for t, s in zip(tiles["tile_id"].astype(str), proc_status, strict=False)
    ]
    tiles["messages"] = [
        tile_status[t][1]
        if t in tile_status
        else list(by_key["messages"].get(k, []) or [])
        if s != "OK"
        else []
        for t, k, s in zip(
            tiles["tile_id"].astype(str), tiles["processing_key"], tiles["status"], strict=False
        )
    ]
    tiles["cost"] = tiles["processing_key"].map(by_key["cost"])
    tiles["created_at"] = tiles["processing_key"].map(by_key["created_at"])
    tiles["finished_at"] = tiles["processing_key"].map(by_key["finished_at"])
    paths = [run_dir / d.path for d in downloads if d.status == "OK" and d.path and d.features]
    if paths:
        merged = _read_results(paths)
        _failpoint("mid_merge")
        features = stitch(merged, plan)
    else:
        features = gpd.GeoDataFrame(
            {"row": [], "tile_id": [], "processing_id": []},
            geometry=gpd.GeoSeries([], crs="EPSG:4326"),
        )
    return MapflowResult(
        features=features, tiles=tiles, aois=aois, processings=procs, run_dir=run_dir
    )


def open_run(run_dir: str | os.PathLike) -> MapflowResult:
    """Reopen a finished or interrupted run offline (no network, no lock).

    Examples
    --------
    >>> res = open_run("runs/city")                      # doctest: +SKIP
    >>> res.features.head()                              # doctest: +SKIP
    """
    return load_result(run_dir)
