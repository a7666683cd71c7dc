"""Recurring monitoring through the service's planned processings (templates).

:func:`monitor` creates or resumes one template; :meth:`Monitor.check` fetches what it
started and returns the changes. How it is journalled: DESIGN.md, *Monitoring*.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry import mapping

from mapflow_geo._args import checked
from mapflow_geo.aoi import prepare_aois, require_rows
from mapflow_geo.api import RunClient
from mapflow_geo.client import default_client
from mapflow_geo.exceptions import (
    AmbiguousCreateError,
    ConfigError,
    DamagedResultError,
    MapflowError,
)
from mapflow_geo.models import Status
from mapflow_geo.results import read_result_files, stitch
from mapflow_geo.results.changes import changes as object_changes
from mapflow_geo.results.io import empty_features
from mapflow_geo.run import journal as jr
from mapflow_geo.run._failpoints import failpoint
from mapflow_geo.run.fetch import DAMAGED_RESULT, Failpoints, store_result, tile_for
from mapflow_geo.run.prepare import digest, fingerprint_for, plan
from mapflow_geo.run.status import is_finished
from mapflow_geo.run.store import save_inputs

log = logging.getLogger(__name__)

#: Template AOIs larger than this are split (the service's default ``templateAreaLimit``).
DEFAULT_TEMPLATE_AREA_LIMIT_KM2 = 100.0
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")
_FETCH_FAILPOINTS = Failpoints("monitor_mid_download", "monitor_before_rename")


@dataclass
class MonitorUpdate:
    """What one :meth:`Monitor.check` found.

    Attributes
    ----------
    dates : list of str
        Imagery dates with results, oldest first (all known, not only the new ones).
    new_dates : list of str
        Dates whose results arrived in this check.
    features : GeoDataFrame
        The objects as of the latest date (stitched across the template's AOIs).
    changes : GeoDataFrame
        :func:`mapflow_geo.changes` between the state before the new dates and the
        latest state (empty when there was nothing to compare).
    processings : DataFrame
        Every processing the template started: id, date, status, cost.
    """

    dates: list[str]
    new_dates: list[str]
    features: gpd.GeoDataFrame
    changes: gpd.GeoDataFrame
    processings: pd.DataFrame

    @property
    def credits(self) -> int:
        """Credits charged for every processing the template started."""
        return int(pd.to_numeric(self.processings["cost"], errors="coerce").fillna(0).sum())


class Monitor:
    """A template over the rows, its journal and its stored results (see the module)."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        client: RunClient | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.client = default_client(client)
        self.sleep = sleep  # the wait before an unreadable result is downloaded again
        with self._journal() as j:
            self.template_id = j.get_run("template_id")
        if not self.template_id:
            raise ConfigError(f"{self.run_dir} holds no monitor (no template id in its journal)")

    def __repr__(self) -> str:
        return f"<Monitor template={self.template_id} run_dir={str(self.run_dir)!r}>"

    def _journal(self) -> jr.Journal:
        return jr.Journal(self.run_dir, None, lock=False)

    # -- the template ---------------------------------------------------------------
    def pause(self) -> None:
        """Stop the service's daily runs (nothing new is charged)."""
        self.client.templates.pause(self.template_id)

    def resume(self) -> None:
        """Start the daily runs again."""
        self.client.templates.resume(self.template_id)

    def template(self) -> Any:
        """The template as the service describes it now."""
        return self.client.templates.get(self.template_id)

    # -- fetching -------------------------------------------------------------------
    def check(self) -> MonitorUpdate:
        """Fetch the results of every processing the template started that are not
        stored yet; return the latest state and its changes since the last look."""
        tiles = gpd.read_parquet(self.run_dir / "plan.parquet")
        with jr.Journal(self.run_dir, None) as j:
            before = set(_dates(j))
            for proc in self.client.templates.processings(self.template_id):
                self._record(j, proc)
                failpoint("monitor_after_record")
            for rec in j.records():
                if rec.state == jr.CREATED and is_finished(rec.status):
                    self._fetch(j, rec, tiles)
            dates = sorted(_dates(j))
            procs = _processing_table(j)
            files = [
                self.run_dir / d.path
                for d in j.downloads()
                if d.status == Status.OK and d.path and d.features
            ]
        new = [d for d in dates if d not in before]
        pieces = read_result_files(files) if files else empty_features()
        latest = _state(pieces, tiles, dates[-1] if dates else None)
        old_dates = [d for d in dates if d not in new]
        # nothing new or nothing to compare: no change, in the frame a comparison gives
        before = _state(pieces, tiles, old_dates[-1]) if new and old_dates else latest.iloc[:0]
        diff = object_changes(before, latest if new and old_dates else latest.iloc[:0])
        return MonitorUpdate(dates, new, latest, diff, procs)

    def state(self, date: str | None = None) -> gpd.GeoDataFrame:
        """The objects as of ``date`` (ISO; the latest when None), from stored results."""
        tiles = gpd.read_parquet(self.run_dir / "plan.parquet")
        with self._journal() as j:
            files = [self.run_dir / d.path for d in j.downloads() if d.path and d.features]
            dates = sorted(_dates(j))
        pieces = read_result_files(files) if files else empty_features()
        return _state(pieces, tiles, date or (dates[-1] if dates else None))

    def _record(self, j: jr.Journal, proc: Any) -> None:
        key = f"t-{proc.id}"
        status = Status.parse(proc.status).value
        if j.get(key) is None:
            j.add_planned(key, estimate=proc.cost, area_km2=float(proc.area or 0) / 1e6)
            j.mark_intent(key, meta={"template": self.template_id, "date": _date_of(proc)})
            j.mark_created(key, str(proc.id), status=status, cost=proc.cost)
        elif j.get(key).state == jr.CREATED:
            j.update_status(key, status=status, cost=proc.cost, messages=list(proc.messages or []))

    def _fetch(self, j: jr.Journal, rec: jr.ProcessingRecord, tiles: gpd.GeoDataFrame) -> None:
        if rec.status != Status.OK:
            j.mark_finished(rec.key)
            return
        date = (rec.meta or {}).get("date")
        done = {d.aoi_id for d in j.downloads(rec.key) if d.status == Status.OK}
        damaged = False
        for aoi in self.client.processings.aois(rec.processing_id):
            aoi_id = str(aoi.id)
            if aoi_id in done:
                continue
            tile_id = tile_for(tiles, aoi)
            row = tiles.set_index("tile_id")["row"].get(tile_id) if tile_id else None
            rel = Path("results") / f"{rec.key}.{aoi_id}.parquet"
            try:
                stored = store_result(
                    self.client,
                    j.run_dir,
                    rec.processing_id,
                    aoi_id,
                    rel,
                    {
                        "row": row,
                        "tile_id": tile_id,
                        "processing_id": rec.processing_id,
                        "monitor_date": date,
                    },
                    durable=True,
                    failpoints=_FETCH_FAILPOINTS,
                    sleep=self.sleep,
                )
            except DamagedResultError as exc:  # the next check fetches it again
                log.warning("%s: %s; the next check fetches it again", rec.key, exc)
                j.record_download(
                    rec.key, aoi_id, tile_id=tile_id, status=DAMAGED_RESULT, messages=[str(exc)]
                )
                damaged = True
                continue
            j.record_download(
                rec.key,
                aoi_id,
                tile_id=tile_id,
                status="OK",
                path=str(rel),
                features=stored.features,
                repaired=stored.repairs.repaired,
                dropped=stored.repairs.dropped,
            )
        if not damaged:
            j.mark_finished(rec.key)


@checked
def monitor(
    gdf: gpd.GeoDataFrame,
    model: str,
    *,
    client: RunClient | None = None,
    run_dir: str | os.PathLike,
    name: str | None = None,
    project: str | None = None,
    blocks: Any = None,
    date_from: str | None = None,
    max_cloud_cover: float | None = None,
    active_until: Any = None,
    template_area_limit_km2: float | None = None,
) -> Monitor:
    """Watch the rows for change: create, or resume, a planned processing (template) that
    runs ``model`` on every new image over them, journalled in ``run_dir``.

    Parameters
    ----------
    gdf : GeoDataFrame
        The areas (any CRS), one row each; rows larger than the account's template area
        limit are split into several template AOIs.
    model : str
        Model name (friendly names are matched), e.g. ``"buildings"``.
    client : MapflowClient, optional
    run_dir : path
        The monitor's folder: a second call with the same folder resumes its template
        (never creates another one).
    name : str, optional
        Template name prefix; the run's id makes it unique.
    project : str, optional
        Project id (the default project otherwise).
    blocks : optional
        Model options, as for :func:`mapflow_geo.run.process`.
    date_from, max_cloud_cover, active_until : optional
        The imagery search (``max_cloud_cover`` a fraction 0–1) and how long the
        template stays active.
    template_area_limit_km2 : float, optional
        The account's ``templateAreaLimit`` (read from ``/user/status`` when not given).

    Returns
    -------
    Monitor
        Call :meth:`Monitor.check` to fetch new results and their changes.

    Examples
    --------
    >>> mon = gdf.mapflow.monitor("buildings", run_dir="watch/city")   # doctest: +SKIP
    >>> upd = mon.check()                                              # doctest: +SKIP
    >>> upd.changes["change"].value_counts()                           # doctest: +SKIP
    """
    client = default_client(client)
    aois = prepare_aois(gdf)
    require_rows(aois, gdf)
    found = client.account.find_model(model)
    limit = template_area_limit_km2 or _template_limit(client)
    tiles = plan(aois, area_limit_km2=limit, max_aois=1)
    params = {
        "model": found.name,
        "blocks": list(blocks) if blocks is not None else None,
        "project": project,
        "date_from": date_from,
        "max_cloud_cover": max_cloud_cover,
        "template_area_limit_km2": limit,
    }
    fingerprint = fingerprint_for(aois, {"monitor": params}, client)
    run_dir = Path(run_dir)
    with jr.Journal(run_dir, fingerprint) as j:
        save_inputs(run_dir, aois, tiles, params)
        template_id = j.get_run("template_id")
        if template_id:
            client.templates.resume(template_id)
        else:
            template_id = _create_template(client, j, tiles, found, params, name, active_until)
    return Monitor(run_dir, client)


def open_monitor(
    run_dir: str | os.PathLike,
    client: RunClient | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Monitor:
    """Reopen a monitor made by :func:`monitor` (its template and stored results);
    ``sleep`` waits before an unreadable result is downloaded again."""
    return Monitor(run_dir, client, sleep=sleep)


# ----------------------------------------------------------------------------- helpers
def _create_template(client, j, tiles, model, params, name, active_until) -> str:
    """Create the template once: intent first; an unknown outcome is reconciled by the
    template's unique name; refused (4xx) creates are not retried."""
    tname = j.get_run("template_name") or f"{name or 'mapflow-geo'} {j.run_id[:12]}"
    j.set_run("template_name", tname)
    existing = _find_template(client, tname, params["project"])
    if existing is not None:
        j.set_run("template_id", str(existing.id))
        return str(existing.id)
    aois = [(mapping(g), str(t)) for g, t in zip(tiles.geometry, tiles["tile_id"], strict=True)]
    processing = {"wdName": model.name}
    if getattr(model, "id", None):
        processing["wdId"] = model.id
    if params["blocks"]:
        processing["blocks"] = params["blocks"]
    j.set_run("template_intent", digest(tname))
    failpoint("monitor_after_intent")
    try:
        created = client.templates.create(
            tname,
            aois,
            project_id=params["project"],
            date_from=params["date_from"],
            max_cloud_cover=params["max_cloud_cover"],
            active_until=active_until,
            processing_params=processing,
        )
    except AmbiguousCreateError:
        created = _find_template(client, tname, params["project"])
        if created is None:
            raise MapflowError(
                f"creating template {tname!r}: the answer was lost and the template is not "
                "listed yet; run monitor() again later with the same run_dir (it will look "
                "for it again before creating anything)"
            ) from None
    failpoint("monitor_after_create")
    j.set_run("template_id", str(created.id))
    return str(created.id)


def _find_template(client: RunClient, name: str, project: str | None) -> Any:
    for t in client.templates.list(project):
        if t.name == name:
            return t
    return None


def _template_limit(client: RunClient) -> float:
    raw = getattr(client.account.status(), "raw", {}) or {}
    value = raw.get("templateAreaLimit")
    return float(value) / 1e6 if value else DEFAULT_TEMPLATE_AREA_LIMIT_KM2


def _date_of(proc: Any) -> str | None:
    """The imagery date of a processing the template started (its name ends with it)."""
    for text in (getattr(proc, "name", None), json.dumps(getattr(proc, "params", None) or {})):
        found = _DATE.findall(str(text or ""))
        if found:
            return found[-1]
    created = getattr(proc, "created", None)
    return created.date().isoformat() if created is not None else None


def _dates(j: jr.Journal) -> list[str]:
    finished = {r.key: r for r in j.records() if r.state == jr.FINISHED}
    return sorted(
        {
            (r.meta or {}).get("date")
            for r in finished.values()
            if r.status == Status.OK and (r.meta or {}).get("date")
        }
    )


def _processing_table(j: jr.Journal) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "processing_id": r.processing_id,
                "date": (r.meta or {}).get("date"),
                "status": r.status,
                "cost": r.cost,
            }
            for r in j.records()
        ],
        columns=["processing_id", "date", "status", "cost"],
    )


def _state(pieces: gpd.GeoDataFrame, tiles: gpd.GeoDataFrame, date: str | None) -> gpd.GeoDataFrame:
    """The objects as of ``date``: for each template AOI, its latest result at or before
    ``date``; stitched across AOIs."""
    if date is None or pieces.empty or "monitor_date" not in pieces:
        return empty_features()
    dated = pieces[pieces["monitor_date"].astype(str) <= date]
    if dated.empty:
        return empty_features()
    last = dated.groupby("tile_id")["monitor_date"].transform("max")
    current = dated[dated["monitor_date"] == last]
    return stitch(current.reset_index(drop=True), tiles)
