"""Creating a run's processings: intent, send, adopt, re-plan.

The money rules of a create, in the order the code applies them (the ones before the
first create are in :mod:`mapflow_geo.run.prepare`):

1. Each processing's *intent* (and the ``meta`` its create carries: run id and key) is
   committed to the journal before the create is sent.
2. A create is sent once. When its outcome is unknown (timeout, reset, 5xx without a
   readable answer) it is not sent again: the project's listing is searched for the
   processing whose ``meta`` matches, which is adopted. Only when a complete listing
   taken a grace period after the create still does not show it is it created again
   (DESIGN.md, *Ambiguous creates*).
3. A create the server refuses as too large is planned again under the limit it states,
   and its pieces are created instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from mapflow_geo.api import RunClient
from mapflow_geo.exceptions import (
    AmbiguousCreateError,
    APIError,
    AuthenticationError,
    MapflowError,
    PermissionDeniedError,
    RateLimitError,
    TooLargeProcessingError,
    TransportError,
)
from mapflow_geo.run import journal as jr
from mapflow_geo.run._failpoints import failpoint
from mapflow_geo.run.prepare import (
    META_KEY,
    META_RUN,
    PlannedProcessing,
    build_processing,
    estimate_processings,
    shared_part,
)
from mapflow_geo.run.status import RunStatus
from mapflow_geo.run.store import write_parquet
from mapflow_geo.tiling import plan as make_plan

log = logging.getLogger(__name__)

#: Upper clamp for a ``Retry-After`` the runner honours before re-sending a refused create.
MAX_CREATE_RETRY_AFTER = 60.0


def status_text(status: Any) -> str:
    """A processing's status as upper-case text (an enum's value, or the text itself)."""
    return str(getattr(status, "value", status) or "").upper()


@dataclass(frozen=True)
class PlanIndex:
    """The run's plan and its lookups, replaced whole when a processing is re-planned:
    a download in flight reads one consistent version."""

    plan: gpd.GeoDataFrame
    positions: dict[str, np.ndarray]  # processing key → positions of its tiles
    row_of: dict[str, Any]  # tile id → input row
    tile_ids: np.ndarray  # tile id at each position

    @classmethod
    def of(cls, plan: gpd.GeoDataFrame) -> PlanIndex:
        tile_ids = plan["tile_id"].astype(str).to_numpy()
        return cls(
            plan,
            plan.groupby("processing_key", sort=False).indices,
            dict(zip(tile_ids, plan["row"], strict=True)),
            tile_ids,
        )


class Creator:
    """Creates the processings of one run, adopts those an ambiguous create may have
    made, and re-plans one refused as too large (see the module). The :class:`Runner`
    owns one; ``procs`` (key → processing) and ``index`` grow with each re-plan."""

    def __init__(
        self,
        client: RunClient,
        journal: jr.Journal,
        plan: gpd.GeoDataFrame,
        procs: dict[str, PlannedProcessing],
        *,
        max_aois: int,
        adopt_grace_s: float,
        max_outage_s: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        status: Any = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.run_id = journal.run_id
        self.index = PlanIndex.of(plan)
        self.procs = procs
        self.max_aois = max_aois
        self.adopt_grace_s = adopt_grace_s
        self.max_outage_s = max_outage_s
        self.sleep = sleep
        self.clock = clock
        self.stopped = False  # the server refused a create: no new ones in this run
        self.stop_reason: str | None = None
        self._missing_since: dict[str, float] = {}
        self._spent = 0  # credits of the processings this runner created or adopted
        self._lock = threading.Lock()
        self._balance0 = self._balance(status)

    def _balance(self, status: Any = None) -> int | None:
        """Credits left on a ``CREDITS`` account when the runner starts (else None);
        ``status``: the account's ``/user/status`` read since the run began, before any
        create of it (else read here)."""
        try:
            status = status if status is not None else self.client.account.status()
        except MapflowError:
            return None
        billing = str(getattr(status, "billing_type", "") or "").upper()
        left = getattr(status, "remaining_credits", None)
        return int(left) if billing == "CREDITS" and left is not None else None

    def _meta(self, key: str) -> dict:
        return {META_RUN: self.run_id, META_KEY: key}

    def create(self, key: str) -> None:
        """Journal the intent of ``key``, send its create and act on the outcome."""
        if self.stopped:
            return
        proc = self.procs[key]
        meta = self._meta(key)
        failpoint("before_intent")
        self.journal.mark_intent(key, meta=meta)  # durable before the request
        failpoint("after_intent")
        try:
            created = self._send(key, proc, meta)
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
            self.stopped = True
            raise
        except TooLargeProcessingError as exc:
            self.journal.mark_not_created(key, message=str(exc))  # refused: not charged
            new_keys = self.replan(key, exc)
            if not new_keys:
                self.finish_unsent(key, RunStatus.TOO_LARGE_PROCESSING, str(exc))
            for k in new_keys:
                self.create(k)
            return
        except APIError as exc:
            if exc.status >= 500:  # readable 5xx: still may have committed; reconcile
                self._missing_since.setdefault(key, self.clock())
                return
            self.journal.mark_not_created(key, message=str(exc))
            self.stopped = True  # e.g. out of credits: keep what is paid for
            self.stop_reason = str(exc)
            self.finish_unsent(key, RunStatus.NOT_CREATED, str(exc))
            return
        failpoint("after_create")
        self._mark_created(key, created)

    def _send(self, key: str, proc: PlannedProcessing, meta: dict) -> Any:
        """Send the create; a 429 (the server refused it: nothing committed) is re-sent
        after its ``Retry-After`` (clamped; else a growing delay) for as long as an outage
        may last (``max_outage_s``), unless creating has stopped."""
        attempt = 0
        first = self.clock()
        while True:
            try:
                return self.client.processings.create(**proc.body, meta=meta)
            except RateLimitError as exc:
                attempt += 1
                if self.stopped or self.clock() - first > self.max_outage_s:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else 2.0 ** min(attempt, 6)
                delay = min(max(0.0, delay), MAX_CREATE_RETRY_AFTER)
                log.info("create %s rate-limited; retrying in %.1fs", key, delay)
                self.sleep(delay)

    def replan(self, key: str, exc: TooLargeProcessingError) -> list[str]:
        """The server refused ``key`` as too large (its limit shrank after planning):
        plan that processing's tiles again under the limit it states and return the keys
        of the pieces, to be created instead.

        Durable in this order, so that a crash anywhere resumes correctly: the plan
        file with the pieces in place of ``key`` (atomic replace), then the pieces in the
        journal, then ``key`` marked ``REPLANNED``. On resume :func:`process` reads the
        stored plan, so ``key`` is never created again and the pieces are.
        """
        try:
            limit_km2 = float((exc.params or {})["aoiAreaLimit"]) / 1e6
        except (KeyError, TypeError, ValueError):
            log.warning("%s refused as too large without a usable limit: %s", key, exc)
            return []
        with self._lock:
            plan = self.index.plan
            split = self._split(key, plan, limit_km2)
            if split is None:
                return []
            pieces, new_procs = split
            estimate_processings(self.client, new_procs, workers=1)
            new_plan = pd.concat(
                [plan[plan["processing_key"] != key], pieces],
                ignore_index=True,
            )
            new_plan = gpd.GeoDataFrame(new_plan, geometry="geometry", crs=plan.crs)
            write_parquet(new_plan, self.journal.run_dir / "plan.parquet")  # atomic replace
            self.index = PlanIndex.of(new_plan)  # the next re-plan starts from what is on disk
            for p in new_procs:
                self.procs[p.key] = p
            for p in new_procs:
                self.journal.add_planned(p.key, estimate=p.estimate, area_km2=p.area_km2)
            self.journal.update_status(
                key,
                status=RunStatus.REPLANNED,
                messages=[f"{exc} Re-planned as {len(new_procs)} processings."],
            )
            self.journal.mark_finished(key)
        log.info("%s too large for %.3f km²: re-planned as %d", key, limit_km2, len(new_procs))
        return [p.key for p in new_procs]

    def _split(
        self, key: str, plan: gpd.GeoDataFrame, limit_km2: float
    ) -> tuple[gpd.GeoDataFrame, list[PlannedProcessing]] | None:
        """The tiles of ``key`` planned again under ``limit_km2`` (with the plan's
        columns) and the processings they make; None when they cannot be made smaller."""
        old = plan[plan["processing_key"] == key]
        if old.empty or limit_km2 <= 0:
            return None
        sub = gpd.GeoDataFrame(
            geometry=old.geometry.values,
            index=pd.Index(old["tile_id"].astype(str)),
            crs=plan.crs,
        )
        pieces = make_plan(sub, area_limit_km2=limit_km2, max_aois=self.max_aois)
        if pieces["processing"].nunique() < 2 and len(pieces) == len(old):
            log.warning("%s cannot be planned smaller under %.3f km²", key, limit_km2)
            return None
        # each piece lies in one old tile (its "row" here): carry the old tile's
        # columns over (input row, and e.g. the scene a scene-planned tile uses)
        src = pieces["row"].astype(str)
        by_tile = old.set_index(old["tile_id"].astype(str))
        pieces["row"] = src.map(by_tile["row"])
        for col in plan.columns:
            if col not in pieces.columns:
                pieces[col] = src.map(by_tile[col]).values
        base, prefix = shared_part(self.procs[key])
        first_no = int(plan["processing"].max()) + 1 if "processing" in plan else 0
        new_procs = []
        for n, (_, tiles) in enumerate(pieces.groupby("processing", sort=True)):
            new_key = f"{key}.{n:02d}"
            new_procs.append(build_processing(new_key, base, tiles, prefix))
            pieces.loc[tiles.index, "processing"] = first_no + n
            pieces.loc[tiles.index, "processing_key"] = new_key
        return pieces[list(plan.columns)], new_procs

    def finish_unsent(self, key: str, status: str, message: str) -> None:
        self.journal.update_status(key, status=status, messages=[message])
        self.journal.mark_finished(key)

    def adopt_all_now(self, listing: list) -> None:
        """Adopt what ``listing`` shows of the records left in ``intent`` (a resumed run:
        an earlier one may have created them); the grace of the others starts now."""
        for k in list(self._missing_since):
            self._missing_since[k] = self.clock()
        self.adopt(listing)

    def adopt(self, listing: list, complete: bool = True) -> None:
        """Match records left in ``intent`` to listed processings, and re-create one only
        on the reconciliation policy (DESIGN.md, "Ambiguous creates"):

        * a listed processing carrying this run's ``meta`` (run id and key) is adopted;
          one listed without ``meta`` but with the create's exact name, created after the
          intent was journalled, is adopted too (a service that drops ``meta``);
        * absence counts only from *complete* sweeps (every page read), and a create is
          sent again only when such a sweep ``adopt_grace_s`` or more after the create
          (default 10 minutes: longer than any listing lag seen) still misses it, while
          the run goes on with the rest;
        * on a ``CREDITS`` account, a charge the account shows that no processing of this
          run explains keeps it waiting: the missing create may have committed.
        """
        by_key: dict[str, Any] = {}
        by_name: dict[str, Any] = {}
        for p in listing:
            meta = getattr(p, "meta", None) or {}
            if meta.get(META_RUN) == self.run_id and META_KEY in meta:
                by_key.setdefault(meta[META_KEY], p)
            elif not meta and getattr(p, "name", None):
                by_name.setdefault(str(p.name), p)
        for rec in self.journal.records(jr.INTENT):
            found = by_key.get(rec.key) or self._by_name(rec, by_name)
            if found is not None:
                log.info("adopting processing %s for %s", found.id, rec.key)
                self._mark_created(rec.key, found)
                self._missing_since.pop(rec.key, None)
                continue
            if not complete:
                continue  # a partial sweep proves nothing about absence
            first = self._missing_since.setdefault(rec.key, self.clock())
            if self.clock() - first < self.adopt_grace_s or self._unexplained_charge(rec.key):
                continue
            log.info(
                "%s absent from complete listings for %.0fs: creating it",
                rec.key,
                self.clock() - first,
            )
            self._missing_since.pop(rec.key, None)
            self.create(rec.key)

    def _by_name(self, rec: jr.ProcessingRecord, by_name: dict[str, Any]) -> Any:
        proc = (
            by_name.get(str(self.procs[rec.key].body.get("name")))
            if rec.key in self.procs
            else None
        )
        created = getattr(proc, "created", None)
        if proc is None or created is None or rec.updated_at is None:
            return None
        return proc if created.timestamp() >= rec.updated_at - 60.0 else None

    def _mark_created(self, key: str, proc: Any) -> None:
        self.journal.mark_created(key, proc.id, status=status_text(proc.status), cost=proc.cost)
        with self._lock:
            self._spent += int(proc.cost or 0)

    def _unexplained_charge(self, key: str) -> bool:
        """True when the account's credits dropped by more than this run's known
        processings cost since the run started: the missing create may be that charge."""
        if self._balance0 is None:
            return False
        try:
            now = self.client.account.status().remaining_credits
        except MapflowError as exc:
            log.info("balance check failed (%s); %s keeps waiting", exc, key)
            return True
        if now is None:
            return False
        unexplained = self._balance0 - int(now) - self._spent
        if unexplained >= (self.procs[key].estimate or 1):
            log.warning(
                "%s: %d credits charged that no known processing explains; not creating "
                "it again until a listing shows it or the charge is explained",
                key,
                unexplained,
            )
            return True
        return False
