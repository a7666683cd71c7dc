"""The run engine: submit → poll → fetch, resumable from the journal.

Creates (intent, send, adopt, re-plan) and their money rules are in
:mod:`mapflow_geo.run.create`; the ones before the first create in
:mod:`mapflow_geo.run.prepare`. Here, the rule of results: they are stored per
processing and AOI as they arrive (GeoParquet, atomic rename: :mod:`mapflow_geo.run.fetch`)
and never downloaded twice — unless a power cut lost a stored file (results are not
fsynced one by one): a resumed run checks every journalled file and fetches a missing or
torn one again, which costs nothing.

Polling is one newest-first sweep of the project's listing per cycle, until every live
processing is seen, at an interval that starts short and backs off to ``poll_interval``;
a poll is due earlier when the processings' progress predicts a finish. The journal keeps
its records in memory: a cycle reads none from disk and writes what changed in one
transaction.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd

from mapflow_geo._args import checked
from mapflow_geo.api import RunClient
from mapflow_geo.client import default_client
from mapflow_geo.exceptions import (
    APIError,
    DamagedResultError,
    RateLimitError,
    RunFailedError,
    RunIncompleteWarning,
    ServerError,
    TransportError,
    warn,
)
from mapflow_geo.models import Status
from mapflow_geo.results import MapflowResult
from mapflow_geo.results.io import system_allocator
from mapflow_geo.run import journal as jr
from mapflow_geo.run._failpoints import failpoint
from mapflow_geo.run._files import parquet_intact, remove_temp_files
from mapflow_geo.run.create import Creator, PlanIndex, status_text
from mapflow_geo.run.fetch import DAMAGED_RESULT, store_result, store_result_by_tile, tile_for
from mapflow_geo.run.prepare import (
    MAX_PROCESSINGS,
    PlannedProcessing,
    PreparedRun,
    check_budget,
    check_credit_floor,
    estimate_processings,
    fingerprint_for,
    prepare_run,
)
from mapflow_geo.run.progress import RunProgress, note
from mapflow_geo.run.status import RunStatus, is_finished
from mapflow_geo.run.store import (
    KeptPieces,
    apply_stored_plan,
    default_run_dir,
    describe_stored,
    holds_run,
    load_result,
    save_inputs,
)

log = logging.getLogger(__name__)

#: ``aoi_id`` of a download that is a whole single-AOI processing's result.
WHOLE = "whole"


@dataclass(frozen=True)
class Sighting:
    """A processing in progress as first and last seen: time and percentage of each."""

    first_at: float
    first_pct: float
    last_at: float
    last_pct: float


@dataclass
class RunOptions:
    """How a run polls, retries and reconciles: the :class:`Runner`'s settings, given by
    the user as keyword arguments of :func:`process` (documented there), not directly."""

    poll_interval: float = 30.0
    min_poll_interval: float = 2.0
    max_restarts: int = 2
    max_workers: int = 4
    adopt_grace_s: float = 600.0
    max_outage_s: float = 1800.0
    progress: bool = True
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def from_kwargs(cls, options: RunOptions | None, **kwargs: Any) -> RunOptions:
        """``options`` (or the defaults) with the given keyword options replaced;
        an unknown keyword is a ``TypeError`` naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown run option(s): {', '.join(unknown)}")
        return dataclasses.replace(options or cls(), **kwargs)


# ----------------------------------------------------------------------------- runner
class Runner:
    """Drives one run: creates through its :class:`~mapflow_geo.run.create.Creator`,
    polls, restarts and fetches; use :func:`process` rather than this class directly."""

    def __init__(
        self,
        client: RunClient,
        journal: jr.Journal,
        plan: gpd.GeoDataFrame,
        processings: list[PlannedProcessing],
        *,
        project_id: str,
        max_aois: int = 10,
        options: RunOptions | None = None,
        earlier: Collection[str] = (),
        account_status: Any = None,
        **kwargs: Any,
    ) -> None:
        opts = RunOptions.from_kwargs(options, **kwargs)
        self.options = opts
        self.client = client
        self.journal = journal
        self.project_id = project_id
        self.poll_interval = opts.poll_interval
        self.min_poll_interval = min(opts.min_poll_interval, opts.poll_interval)
        self.max_restarts = opts.max_restarts
        self.max_workers = opts.max_workers
        self.max_outage_s = opts.max_outage_s
        self.sleep = opts.sleep
        self.clock = opts.clock
        self._creator = Creator(
            client,
            journal,
            plan,
            {p.key: p for p in processings},
            max_aois=max_aois,
            adopt_grace_s=opts.adopt_grace_s,
            max_outage_s=opts.max_outage_s,
            sleep=opts.sleep,
            clock=opts.clock,
            status=account_status,
        )
        self.procs = self._creator.procs  # grows when a processing is re-planned
        # when and at what percentage each processing in progress was first and last
        # seen, and the earliest finish they predict (a poll is due then, not later)
        self._progress: dict[str, Sighting] = {}
        self._eta: float | None = None
        self._submitted: dict[str, float] = {}  # when each pending download was submitted
        self._fetch_outage_since: float | None = None
        self._next_probe = -math.inf
        self._bar = RunProgress(len(processings), enabled=opts.progress, earlier=earlier)
        # downloads wait on the network, parsing on the CPU: as many parse at once as
        # there are cores, so that memory holds that many results in flight, not one
        # per download thread (each is several times its GeoJSON while parsed)
        self._parsing = threading.BoundedSemaphore(
            max(1, min(self.max_workers, os.cpu_count() or 1))
        )
        # downloads of a processing's AOIs run side by side; all the run's downloads
        # together stay within max_workers
        self._downloads = threading.BoundedSemaphore(self.max_workers)
        self._per_aoi = True  # the service serves results per AOI (until it says no)
        #: the stored objects as decoded, for ``res.features`` (no reading them back)
        self.kept = KeptPieces(area_km2=sum(p.area_km2 for p in processings))

    def _sweep(self, want_ids: set, want_intents: bool) -> tuple[list, bool]:
        """List the project's processings newest first, page by page, until every wanted
        processing is seen (then stop: polling costs ⌈active / page size⌉ requests) or
        the pages run out. Returns (listing, complete).

        ``complete`` comes from the service's paging, never from the pages running out:
        the last page's offsets reached its ``total`` with the count never falling on the
        way (:attr:`Page.complete`). A sweep stopped early, ended by an empty or short
        page before ``total``, or over a count that fell (a processing deleted mid-sweep
        moves later ones onto pages already read) is incomplete: absence is never
        concluded from it."""
        pages = getattr(self.client.processings, "pages", None)
        if pages is None:
            listing = self.client.processings.list(self.project_id)
            return list(listing), bool(getattr(listing, "complete", True))
        out, seen, missing = [], set(), set(want_ids)
        page = None
        for page in pages(self.project_id):
            for proc in page.items:
                if proc.id is not None and proc.id in seen:
                    continue  # shifted onto a later page by a create during the sweep
                seen.add(proc.id)
                out.append(proc)
                missing.discard(proc.id)
            if not missing and not want_intents:
                return out, False
        return out, page is not None and page.complete

    def _list(self) -> list:
        return self._sweep(set(), True)[0]

    # -- poll ---------------------------------------------------------------------
    @staticmethod
    def _update(rec: jr.ProcessingRecord, proc: Any) -> dict | None:
        """The journal update for what the listing says about one processing, or None.

        Only a change of status, cost or messages is written (the percentage alone is
        cosmetic and would cost one journal write per processing per cycle)."""
        status = status_text(proc.status)
        messages = list(getattr(proc, "messages", None) or [])
        cost = getattr(proc, "cost", None)
        if (
            status != rec.status
            or (cost is not None and cost != rec.cost)
            or messages != rec.messages
        ):
            return {
                "key": rec.key,
                "status": status,
                "percent": getattr(proc, "percent_completed", None),
                "cost": cost,
                "messages": messages,
            }
        return None

    def _act(
        self,
        rec: jr.ProcessingRecord,
        proc: Any,
        pool: ThreadPoolExecutor,
        pending: dict[str, Future],
    ) -> None:
        """Restart a failed processing, or fetch a finished one's results."""
        status = status_text(proc.status)
        failpoint("mid_poll")
        if status == Status.FAILED and rec.restarts < self.max_restarts:
            log.info("restarting failed processing %s (%s)", proc.id, rec.key)
            self.client.processings.restart(proc.id)
            self.journal.count_restart(rec.key)
            return
        if is_finished(status) and rec.key not in pending:
            if self._fetch_outage_since is not None:
                # downloads fail (API down): one probe at a time, one per poll interval
                if pending or self.clock() < self._next_probe:
                    return
                self._next_probe = self.clock() + self.poll_interval
            self._submitted[rec.key] = self.clock()
            pending[rec.key] = pool.submit(self._fetch, rec.key, proc.id, status)

    def _fetch(self, key: str, processing_id: str, status: str) -> None:
        """Store every not-yet-stored OK AOI result of a finished processing."""
        index = self._creator.index  # consistent, even while re-planning
        pos, tile_ids = index.positions[key], index.tile_ids
        ok = [d for d in self.journal.downloads(key) if d.status == Status.OK]
        done = {d.aoi_id for d in ok}
        # a tile stored from the whole result split per tile holds every AOI of it: not
        # fetched per AOI again (that would store its objects twice)
        split = {d.tile_id for d in ok if d.aoi_id.startswith(f"{WHOLE}-")}
        if status == Status.OK and self.procs[key].body["geometry"]["type"] == "Polygon":
            # one polygon is one AOI: its result is the processing's; no AOI listing.
            # Stored file, its record and "finished" in one journal write.
            one = str(tile_ids[pos[0]]) if len(pos) == 1 else None
            stored = []
            if WHOLE not in done:
                stored.append(self._store(key, processing_id, WHOLE, None, one, index))
            self.journal.finish(key, stored)
            return
        tiles = index.plan.iloc[pos]
        try:
            aois = list(self.client.processings.aois(processing_id))
        except APIError as exc:
            if not _unserved(exc):
                raise
            self._per_aoi = False  # no AOI listing: nor results per AOI
            aois = None
        if aois is not None and len(aois) == 1 and status == Status.OK:
            # one AOI: the processing's result, and its record with "finished"
            aoi_id = str(aois[0].id)
            tile_id = tile_for(tiles, aois[0])
            if tile_id is None and len(pos) == 1:
                tile_id = str(tile_ids[pos[0]])
            stored = []
            if aoi_id not in done:
                stored.append(self._store(key, processing_id, aoi_id, None, tile_id, index))
            self.journal.finish(key, stored)
            return
        unstored, todo = [], []  # per-AOI failures: recorded with "finished"
        for aoi in aois or ():
            aoi_id = str(aoi.id)
            if aoi_id in done:
                continue
            tile_id = tile_for(tiles, aoi)
            if tile_id in split:
                continue
            aoi_status = status_text(getattr(aoi, "status", status)) or status
            if aoi_status != Status.OK:
                unstored.append(
                    {
                        "aoi_id": aoi_id,
                        "tile_id": tile_id,
                        "status": aoi_status,
                        "messages": list(getattr(aoi, "messages", None) or []),
                    }
                )
                continue
            if tile_id is None and len(pos) == 1:
                tile_id = str(tile_ids[pos[0]])
            todo.append((aoi_id, tile_id))
        if self._per_aoi and todo:
            todo = self._store_per_aoi(key, processing_id, todo, index, unstored)
        if todo and status != Status.OK:
            # no results per AOI, and the whole result of a processing that did not
            # succeed is never served (RESULT_NOT_READY): its OK AOIs cannot be had
            unstored += [
                {"aoi_id": a, "tile_id": t, "status": status, "messages": [NO_WHOLE_RESULT]}
                for a, t in todo
            ]
            todo = []
        if todo or (aois is None and status == Status.OK):
            # the service does not serve results per AOI: the whole result, in one
            # download, stored per plan tile (the tiles of the AOIs left; every tile
            # not stored yet when the service does not list AOIs either)
            keep = {t for _, t in todo} if aois is not None else set(tiles["tile_id"].astype(str))
            unstored += self._store_by_tile(key, processing_id, tiles, keep)
        self.journal.finish(key, unstored)

    def _store_per_aoi(
        self,
        key: str,
        processing_id: str,
        todo: list[tuple[str, str | None]],
        index: PlanIndex,
        unstored: list[dict],
    ) -> list[tuple[str, str | None]]:
        """Download and store the results of several AOIs of one processing at once (up
        to ``max_workers``; the run's downloads share that bound), recording each stored
        file as it lands; unreadable ones join ``unstored``. An AOI whose download
        failed does not stop the others: the first error is raised once they all ended,
        and the next fetch asks only for the AOIs not stored. Returns the AOIs left for
        the whole download when the service does not serve results per AOI."""

        def one(aoi_id: str, tile_id: str | None) -> dict | None:
            if not self._per_aoi:  # another AOI's download found it not served
                return None
            rec = self._store(key, processing_id, aoi_id, aoi_id, tile_id, index)
            if rec["status"] == Status.OK:
                self.journal.record_download(key, **rec)  # each stored file as it lands
            return rec

        workers = min(len(todo), self.max_workers)
        if workers == 1:  # in this thread, one after the other
            futures = [_done_future(one, *t) for t in todo]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="mapflow-aoi") as pool:
                futures = [pool.submit(one, *t) for t in todo]
        error, left = None, []
        for t, fut in zip(todo, futures, strict=True):
            exc = fut.exception()
            if exc is None:
                rec = fut.result()
                if rec is None:
                    left.append(t)
                elif rec["status"] != Status.OK:
                    unstored.append(rec)
            elif isinstance(exc, APIError) and _unserved(exc):
                self._per_aoi = False
                left.append(t)
            elif error is None:
                error = exc
        if error is not None:
            raise error
        return left

    def _store_by_tile(
        self,
        key: str,
        processing_id: str,
        tiles: gpd.GeoDataFrame,
        keep: set[str],
    ) -> list[dict]:
        """The whole result of a processing of several AOIs in one download, its objects
        matched to the processing's ``tiles`` and stored per tile for the tiles in
        ``keep`` not stored yet; their journal records, for the caller to write with
        "finished"."""
        keep = keep - {d.tile_id for d in self.journal.downloads(key) if d.status == Status.OK}
        if not keep:
            return []
        try:
            parts = store_result_by_tile(
                self.client,
                self.journal.run_dir,
                processing_id,
                tiles,
                keep,
                lambda tile_id: Path("results") / f"{key}.{WHOLE}-{tile_id}.parquet",
                {"processing_id": processing_id},
                parsing=self._parsing,
                downloads=self._downloads,
                keep=self.kept.open,
                sleep=self.sleep,
            )
        except DamagedResultError as exc:
            log.warning("%s: %s; the next run in this run dir fetches it again", key, exc)
            return [
                {"aoi_id": f"{WHOLE}-{t}", "tile_id": str(t), "status": DAMAGED_RESULT,
                 "messages": [str(exc)]}
                for t in sorted(keep)
            ]  # fmt: skip
        for tile_id, stored in parts.items():
            rel = Path("results") / f"{key}.{WHOLE}-{tile_id}.parquet"
            self.kept.add(self.journal.run_dir / rel, stored.piece, self._tile_km2(key))
        return [
            {
                "aoi_id": f"{WHOLE}-{tile_id}",
                "tile_id": tile_id,
                "status": Status.OK.value,
                "path": str(Path("results") / f"{key}.{WHOLE}-{tile_id}.parquet"),
                "features": stored.features,
                "repaired": stored.repairs.repaired,
                "dropped": stored.repairs.dropped,
            }
            for tile_id, stored in parts.items()
        ]

    def _store(
        self,
        key: str,
        processing_id: str,
        aoi_id: str,
        query_aoi: str | None,
        tile_id: str | None,
        index: PlanIndex,
    ) -> dict:
        """Download one result and store it as GeoParquet (atomic); return its journal
        record (keyword arguments of :meth:`Journal.record_download`), for the caller to
        write once the file is in place. A result that stayed unreadable
        (:class:`DamagedResultError`) gives a ``DAMAGED_RESULT`` record instead: that tile
        fails, the run goes on, and the next run in the same run dir fetches it again."""
        row = index.row_of.get(tile_id) if tile_id else None
        rel = Path("results") / f"{key}.{aoi_id}.parquet"  # one folder: no mkdir per result
        try:
            stored = store_result(  # not fsynced: checked on resume instead (_check_stored)
                self.client,
                self.journal.run_dir,
                processing_id,
                query_aoi,
                rel,
                {"row": row, "tile_id": tile_id, "processing_id": processing_id},
                parsing=self._parsing,
                downloads=self._downloads,
                keep=self.kept.open,
                sleep=self.sleep,
            )
        except DamagedResultError as exc:
            log.warning("%s: %s; the next run in this run dir fetches it again", key, exc)
            return {
                "aoi_id": aoi_id,
                "tile_id": tile_id,
                "status": DAMAGED_RESULT,
                "messages": [str(exc)],
            }
        area = self.procs[key].area_km2 if aoi_id == WHOLE else self._tile_km2(key)
        self.kept.add(self.journal.run_dir / rel, stored.piece, area)
        return {
            "aoi_id": aoi_id,
            "tile_id": tile_id,
            "status": Status.OK.value,
            "path": str(rel),
            "features": stored.features,
            "repaired": stored.repairs.repaired,
            "dropped": stored.repairs.dropped,
        }

    def _tile_km2(self, key: str) -> float:
        """The area of one of the processing's tiles, on average."""
        return self.procs[key].area_km2 / max(1, len(self._creator.index.positions[key]))

    def _check_stored(self) -> None:
        """Results are stored without fsync (atomic rename only: a killed process loses
        none). After a power cut a journalled file may be missing or torn: forget such
        downloads, so that they are fetched again (results can be downloaded again for
        free). Results given up on as unreadable (``DAMAGED_RESULT``) are fetched again
        too."""
        lost: dict[str, list[str]] = {}
        for d in self.journal.downloads():
            if d.status == DAMAGED_RESULT or (
                d.status == Status.OK
                and d.path
                and not parquet_intact(self.journal.run_dir / d.path)
            ):
                lost.setdefault(d.processing_key, []).append(d.aoi_id)
        if lost:
            n = sum(map(len, lost.values()))
            log.warning("%d stored result(s) missing or torn; fetching them again", n)
            self.journal.reopen_downloads(lost)

    def _create_planned(self, pool: ThreadPoolExecutor) -> None:
        """Adopt what an interrupted run created, then create every planned processing;
        once creating stopped (the server refused a create), the rest are finished as
        ``NOT_CREATED``."""
        journal = self.journal
        # Resume: first adopt whatever an earlier, interrupted run already created.
        if journal.count(jr.INTENT):
            self._adopt_all_now()
        for r in journal.records(jr.PLANNED, jr.INTENT, jr.CREATED):
            if r.key not in self.procs:
                # re-planned before a crash (only ever after the server refused it)
                self._creator.finish_unsent(r.key, RunStatus.REPLANNED, "re-planned smaller")
        planned = [r.key for r in journal.records(jr.PLANNED) if r.status is None]
        self._bar.set_phase("create" if planned else "process", journal)
        for fut in [pool.submit(self._creator.create, k) for k in planned]:
            fut.result()
            self._bar.update(journal)
        if self._creator.stopped:  # the server refused a create: say so for the rest
            for r in journal.records(jr.PLANNED):
                if r.status is None:
                    self._creator.finish_unsent(
                        r.key,
                        RunStatus.NOT_CREATED,
                        f"not sent: creating stopped ({self._creator.stop_reason})",
                    )

    def run(self) -> None:
        """Create, poll and fetch until every processing is finished. Arrow allocates
        from the system allocator meanwhile: the downloads' freed parse buffers go back
        to the system (:func:`~mapflow_geo.results.io.system_allocator`)."""
        with system_allocator():
            self._run()

    def _run(self) -> None:
        journal = self.journal
        self._check_stored()
        known = {r.key for r in journal.records()}
        journal.add_planned_many(
            (key, p.estimate, p.area_km2) for key, p in self.procs.items() if key not in known
        )
        interval = self.min_poll_interval
        pending: dict[str, Future] = {}
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            self._create_planned(pool)
            outage_since: float | None = None
            while True:
                started = self.clock()
                self._collect(pending)
                self._bar.set_phase("download" if pending else "process", journal)
                self._bar.update(journal)
                live = journal.records(jr.INTENT, jr.CREATED)
                if not live and not pending:
                    break
                changed = False
                if any(r.key not in pending for r in live):
                    try:
                        changed = self._poll(live, pool, pending)
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
                # Percent creeping up is no news: back off. A status change (something
                # started, finished or failed) brings the short interval back; and the
                # next poll comes no later than the first finish the progress predicts.
                interval = (
                    self.min_poll_interval if changed else min(self.poll_interval, interval * 1.5)
                )
                due = started + interval
                if self._eta is not None:
                    due = min(due, max(self._eta, started + self.min_poll_interval))
                self._wait(pending, due)
        self._bar.close(journal)

    def _poll(
        self,
        live: list[jr.ProcessingRecord],
        pool: ThreadPoolExecutor,
        pending: dict[str, Future],
    ) -> bool:
        """One poll cycle: a newest-first sweep of the project's listing until every
        live processing is seen, then act on every created processing: what changed is
        written to the journal in one transaction, then failed ones are restarted and
        finished ones fetched. Returns True when a status changed."""
        self._eta = None
        want = {r.processing_id for r in live if r.state == jr.CREATED and r.key not in pending}
        intents = any(r.state == jr.INTENT for r in live)
        listing, complete = self._sweep(want, intents)
        if intents:
            self._creator.adopt(listing, complete)
        created = [r for r in self.journal.records(jr.CREATED) if r.key not in pending]
        by_id = {p.id: p for p in listing}
        seen = []
        for rec in created:
            proc = by_id.get(rec.processing_id)
            if proc is None:  # moved out of the project or listing lag
                proc = self.client.processings.get(rec.processing_id)
            seen.append((rec, proc))
        updates, changed = [], False
        for rec, proc in seen:
            update = self._update(rec, proc)
            if update is not None:
                updates.append(update)
                changed |= update["status"] != rec.status
        self.journal.update_statuses(updates)
        self._eta = self._predict(seen)
        for rec, proc in seen:
            self._act(rec, proc, pool, pending)
        return changed

    def _predict(self, seen: list) -> float | None:
        """The earliest finish that the processings' progress predicts, if in the
        future: the percentage gained since first seen, over the time it took,
        extrapolated to 100 %; only for those that progressed since the last poll (one
        stuck at 99 % predicts nothing). None when nothing progresses: then polling
        backs off as usual."""
        now = self.clock()
        best = None
        for rec, proc in seen:
            pct = getattr(proc, "percent_completed", None)
            if Status.parse(status_text(proc.status)).is_terminal or pct is None:
                self._progress.pop(rec.key, None)
                continue
            pct = float(pct)
            seen_before = self._progress.get(rec.key)
            if seen_before is None or pct < seen_before.last_pct:  # first seen, or restarted
                self._progress[rec.key] = Sighting(now, pct, now, pct)
                continue
            t0, p0 = seen_before.first_at, seen_before.first_pct
            self._progress[rec.key] = Sighting(t0, p0, now, pct)
            if pct > seen_before.last_pct and now > t0:
                eta = now + (100.0 - pct) * (now - t0) / (pct - p0)
                if eta > now and (best is None or eta < best):
                    best = eta
        return best

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
        return any(r.key not in pending for r in self.journal.records(jr.INTENT, jr.CREATED))

    def _adopt_all_now(self) -> None:
        self._creator.adopt_all_now(self._list())

    def _collect(self, pending: dict[str, Future]) -> None:
        """Take the ended downloads. A failed one is fetched again after the next poll;
        when downloads fail for an unreachable or failing API (after the client's own
        retries) for longer than ``max_outage_s``, counted from the submission of the
        first failed one, the run gives up with that error (resumable), as polling does."""
        for key in [k for k, f in pending.items() if f.done()]:
            fut = pending.pop(key)
            submitted = self._submitted.pop(key, self.clock())
            exc = fut.exception()
            if exc is None:
                self._fetch_outage_since = None
                continue
            if isinstance(exc, (TransportError, ServerError, RateLimitError)):
                since = self._fetch_outage_since
                since = submitted if since is None else min(since, submitted)
                self._fetch_outage_since = since
                if self.clock() - since > self.max_outage_s:
                    raise exc
            if isinstance(exc, (TransportError, APIError)):
                log.warning("download of %s failed (%s); will retry", key, exc)
                continue
            raise exc


#: Why an OK AOI of a processing that did not succeed was not stored: the service serves
#: neither its result per AOI nor the processing's whole result.
NO_WHOLE_RESULT = (
    "this AOI succeeded, but the service serves no results per AOI and no whole result "
    "of a processing that did not succeed"
)


def _unserved(exc: APIError) -> bool:
    """Whether an error says the service does not serve a route or parameter (results
    per AOI, the AOI listing), as opposed to a result not ready or a failure."""
    return exc.status in (400, 404, 405, 501) and exc.code not in (
        "RESULT_NOT_READY",
        "PROCESSING_NOT_FOUND",
    )


def _done_future(fn: Callable[..., Any], *args: Any) -> Future:
    """``fn(*args)`` run here, as a completed future (its result or its exception)."""
    fut: Future = Future()
    try:
        fut.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - handed over like a pool's future
        fut.set_exception(exc)
    return fut


# ----------------------------------------------------------------------------- API
@checked
def process(
    gdf: gpd.GeoDataFrame,
    model: str,
    *,
    client: RunClient | None = None,
    source: Any = None,
    blocks: Any = None,
    project: str | None = None,
    run_dir: str | os.PathLike | None = None,
    fresh: bool = False,
    max_credits: int | None = None,
    errors: str = "raise",
    input_errors: str = "raise",
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    name: str | None = None,
    max_processings: int | None = MAX_PROCESSINGS,
    poll_interval: float = RunOptions.poll_interval,
    min_poll_interval: float = RunOptions.min_poll_interval,
    max_restarts: int = RunOptions.max_restarts,
    max_workers: int = RunOptions.max_workers,
    adopt_grace_s: float = RunOptions.adopt_grace_s,
    max_outage_s: float = RunOptions.max_outage_s,
    progress: bool = RunOptions.progress,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> MapflowResult:
    """Run a Mapflow model over every row; return a :class:`~mapflow_geo.results.MapflowResult`.

    Validates, plans and estimates before creating anything; journals every
    processing in ``run_dir`` so a killed run resumes without paying twice.

    Parameters
    ----------
    gdf : GeoDataFrame
        The areas, one row each (any CRS); ``gdf.mapflow.process`` passes itself.
    model : str
        Model name, e.g. ``"buildings"`` (friendly names are matched).
    client : MapflowClient, optional
        Defaults to one built from ``MAPFLOW_TOKEN`` / ``MAPFLOW_API_URL``.
    source, blocks : optional
        ``sourceParams`` (see :mod:`mapflow_geo.sources`), or catalog scenes chosen with
        :func:`mapflow_geo.imagery.choose_scenes`; and model options.
    project : str, optional
        Project id; the account's default project otherwise.
    run_dir : path, optional
        Journal and results folder. By default a per-user cache dir keyed by the inputs,
        the parameters, the service's host and the account (never the key: a rotated key
        of the same account resumes). A call that finds a stored run resumes or reuses
        it and says so (an INFO log line and a line above the progress bar, with the
        run dir and what it holds); credits charged by earlier calls are reported apart
        (``res.costs["charged_earlier_credits"]``).
    fresh : bool, default False
        Start afresh in a new run dir, creating (and paying for) new processings; the
        stored run is kept, and later calls resume the new one. With an explicit
        ``run_dir``, that folder must not hold a run yet.
    max_credits : int, optional
        Refuse (having spent nothing) when the estimate is higher.
    errors : {"raise", "warn"}
        When some tiles fail: raise :class:`~mapflow_geo.exceptions.RunFailedError`
        (the partial result is on ``.result``) or warn and return it.
    input_errors : {"raise", "skip"}
        Unusable input rows: raise an :class:`~mapflow_geo.exceptions.AOIError` naming
        the row, or skip it with a warning.
    area_limit_km2, max_aois : optional
        Plan under these limits instead of the account's.
    name : str, optional
        Prefix of the processings' names (``"<name> <key>"``); ``"mapflow-geo"`` if not
        given.
    max_processings : int or None
        Plans with more processings are refused before anything is sent (None: no cap).
    poll_interval : float
        Longest wait between two poll cycles, seconds (the service asks for 30–60 s).
    min_poll_interval : float
        Shortest wait between poll cycles, used right after a status changed, seconds.
    max_restarts : int
        Restarts of a failed processing (failed partitions only) before giving up.
    max_workers : int
        Threads for creates, cost requests and downloads.
    adopt_grace_s : float
        How long after a create whose outcome is unknown a complete listing that
        still misses it lets it be sent again, seconds (the run goes on meanwhile).
    max_outage_s : float
        How long the run waits out an unreachable or failing API before giving up
        (resumable), seconds.
    progress : bool, default True
        Show one progress bar through the run's phases on stderr (a widget in notebooks;
        :mod:`mapflow_geo.run.progress`).
    sleep, clock : callable
        Collaborators to swap in tests (``time.sleep``, ``time.monotonic``).

    Examples
    --------
    >>> from mapflow_geo import sim
    >>> with sim.serve() as server:                              # doctest: +SKIP
    ...     res = gdf.mapflow.process("buildings", client=server.client())
    """
    opts = RunOptions(
        poll_interval=poll_interval,
        min_poll_interval=min_poll_interval,
        max_restarts=max_restarts,
        max_workers=max_workers,
        adopt_grace_s=adopt_grace_s,
        max_outage_s=max_outage_s,
        progress=progress,
        sleep=sleep,
        clock=clock,
    )
    client = default_client(client)
    prepared = prepare_run(
        gdf,
        model,
        client=client,
        source=source,
        blocks=blocks,
        project=project,
        area_limit_km2=area_limit_km2,
        max_aois=max_aois,
        input_errors=input_errors,
        name=name,
        max_processings=max_processings,
    )
    model_name = prepared.params["model"]
    check_credit_floor(client, model_name, blocks, prepared.processings, max_credits)
    fingerprint = fingerprint_for(prepared.aois, prepared.params, client)
    run_dir = _run_dir(run_dir, fingerprint, fresh)
    with jr.Journal(run_dir, fingerprint) as journal:
        result = _run(client, journal, prepared, project, max_credits, opts)
    _report_incomplete(result, errors)
    return result


def _run(
    client: RunClient,
    journal: jr.Journal,
    prepared: PreparedRun,
    project: str | None,
    max_credits: int | None,
    opts: RunOptions,
) -> MapflowResult:
    """The part of :func:`process` in its run dir: what the journal holds wins (stored
    plan, estimates), the budget is checked, and the :class:`Runner` runs."""
    run_dir = journal.run_dir
    remove_temp_files(run_dir)
    reopened = journal.reopen_not_created()  # refused before: never charged, retry
    if reopened:
        log.info("creating %d processing(s) the server refused before", len(reopened))
    earlier = {r.key for r in journal.records() if r.state != jr.PLANNED}
    if journal.count():
        _announce_stored(journal, opts.progress)
    plan, procs = apply_stored_plan(run_dir, prepared.plan, prepared.processings)
    known = {r.key: r for r in journal.records()}
    for p in procs:
        if p.key in known and known[p.key].estimate is not None:
            p.estimate = known[p.key].estimate
    to_create = [p for p in procs if p.key not in known or known[p.key].state == jr.PLANNED]
    with ThreadPoolExecutor(2, thread_name_prefix="mapflow-account") as side:
        # asked while the estimates are: the balance (checked after them, before any
        # create) and the default project (known already when the limits were read)
        status = side.submit(client.account.status) if to_create else None
        default = None if project else side.submit(client.projects.default_id)
        estimate_processings(client, procs, opts.max_workers)
    status = status and status.result()
    check_budget(client, procs, to_create, max_credits, status=status)
    save_inputs(run_dir, prepared.aois, plan, prepared.params)
    project_id = project or default.result()
    journal.set_run("project_id", str(project_id))
    runner = Runner(
        client,
        journal,
        plan,
        procs,
        project_id=project_id,
        max_aois=int(prepared.params["max_aois"]),
        options=opts,
        earlier=earlier,
        account_status=status,  # the balance before any create: the runner's baseline
    )
    runner.run()
    return load_result(run_dir, journal, earlier=earlier, progress=opts.progress, kept=runner.kept)


def _run_dir(run_dir: str | os.PathLike | None, fingerprint: str, fresh: bool) -> Path:
    """The run dir of a call: the one given, or the default cache dir (a new one with
    ``fresh``)."""
    if run_dir is None:
        return default_run_dir(fingerprint, fresh=fresh)
    run_dir = Path(run_dir)
    if fresh and holds_run(run_dir):
        raise ValueError(
            f"fresh=True but run_dir {str(run_dir)!r} already holds a run: pass a new "
            "run_dir, or leave run_dir out to start in a new cache dir"
        )
    return run_dir


def _announce_stored(journal: jr.Journal, progress: bool) -> None:
    """Say that this call continues a stored run: which folder, and what it holds."""
    finished = journal.count() == journal.count(jr.FINISHED)
    verb = "reusing the finished run" if finished else "resuming the run"
    text = f"{verb} stored in {journal.run_dir}: {describe_stored(journal)} earlier"
    if finished:
        text += "; fresh=True starts a new run"
    log.info(text)
    note(f"mapflow: {text}", enabled=progress)


def _report_incomplete(result: MapflowResult, errors: str) -> None:
    if result.complete:
        return
    failed = result.failed
    msg = (
        f"{len(failed)} of {len(result.tiles)} tiles did not succeed "
        f"({', '.join(sorted(set(failed['status'])))}); the result holds the rest. "
        f"First reasons: {'; '.join(m for ms in failed['messages'] for m in ms)[:500]}"
    )
    if errors == "raise":
        raise RunFailedError(msg, result)
    warn(msg, RunIncompleteWarning)
