"""What each ``mapflow-geo`` command does, through the package's public API.

Each command returns its exit code. Human-readable results go to stdout, the JSON
document instead of them with ``--json``; logs, progress and the ``wrote …`` lines go to
stderr through the ``mapflow_geo`` logger.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio

from mapflow_geo import accessors as _accessors  # noqa: F401  (registers gdf.mapflow)
from mapflow_geo._args import jsonable
from mapflow_geo.cli._output import (
    Target,
    UsageError,
    resolve_target,
    write_frame,
    write_result,
)
from mapflow_geo.cli._parser import EXIT_INCOMPLETE
from mapflow_geo.client import MapflowClient, default_client
from mapflow_geo.exceptions import RunFailedError
from mapflow_geo.run.monitor import monitor, open_monitor
from mapflow_geo.run.store import open_run

log = logging.getLogger("mapflow_geo.cli")


# ----------------------------------------------------------------------- helpers
def read_aoi(path: str) -> gpd.GeoDataFrame:
    """The AOI file, or a :class:`UsageError` saying why it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"AOI file not found: {path}")
    try:
        gdf = gpd.read_file(p)
    except (pyogrio.errors.DataSourceError, OSError, ValueError) as exc:
        raise UsageError(f"cannot read the AOI file {path}: {exc}") from exc
    if not len(gdf):
        raise UsageError(f"the AOI file {path} has no rows")
    return gdf


def targets(args: argparse.Namespace, *, dataset: bool) -> list[Target]:
    """The checked ``-o`` outputs (before anything is read, planned or sent)."""
    return [resolve_target(o, args.format, dataset=dataset) for o in args.output or []]


def client(args: argparse.Namespace) -> Any:
    """The Mapflow client: ``--api-url`` or ``MAPFLOW_API_URL``, token ``MAPFLOW_TOKEN``."""
    return MapflowClient(base_url=args.api_url) if args.api_url else default_client()


def wrote(n: int, what: str, target: Target) -> None:
    log.info("wrote %s %s to %s (%s)", f"{n:,}", what, target.path, target.format.label)


def emit_json(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, default=jsonable, ensure_ascii=False, allow_nan=False))


def _num(value: Any) -> Any:
    """A JSON-safe number: NaN/NA → None, numpy → Python."""
    try:
        if value is None or bool(np.isnan(value)):
            return None
    except TypeError:
        return value
    return value.item() if isinstance(value, np.generic) else value


def _drop_none(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


# ---------------------------------------------------------------------- commands
def plan(args: argparse.Namespace) -> int:
    outs = targets(args, dataset=False)
    gdf = read_aoi(args.aoi)
    offline = args.area_limit_km2 is not None and args.max_aois is not None
    plan = gdf.mapflow.plan(
        area_limit_km2=args.area_limit_km2,
        max_aois=args.max_aois,
        client=None if offline else client(args),
        model=args.model,
    )
    written = []
    for t in outs:
        n = write_frame(plan, t)
        wrote(n, "tiles", t)
        written.append(t.as_dict(n))
    n_proc = int(plan["processing"].nunique())
    area = float(plan["area_km2"].sum())
    if args.json:
        doc = {"command": "plan", "aoi": args.aoi, "rows": int(plan["row"].nunique())}
        doc |= {"tiles": len(plan), "processings": n_proc, "area_km2": area}
        if "planned_credits" in plan and args.model:
            doc["planned_credits"] = _num(plan["planned_credits"].sum())
        emit_json(doc | {"outputs": written})
    else:
        print(f"{len(plan)} tiles in {n_proc} processings, {area:,.2f} km²")
    return 0


def _max_processings(args: argparse.Namespace) -> dict[str, Any]:
    if args.max_processings is None:
        return {}
    return {"max_processings": args.max_processings or None}


def estimate(args: argparse.Namespace) -> int:
    gdf = read_aoi(args.aoi)
    est = gdf.mapflow.estimate(
        args.model,
        client=client(args),
        **_drop_none(area_limit_km2=args.area_limit_km2, max_aois=args.max_aois),
        **_max_processings(args),
    )
    total = est.attrs.get("total_credits")
    if total is None:  # the total of the per-row credits column
        total = est[[c for c in est.columns if "credit" in c][0]].sum()
    n_proc = est.attrs.get("processings")
    if args.json:
        rows = [
            {"row": row, **{k: _num(v) for k, v in rec.items()}}
            for row, rec in est.to_dict("index").items()
        ]
        emit_json(
            {
                "command": "estimate",
                "aoi": args.aoi,
                "model": args.model,
                "rows": rows,
                "processings": _num(n_proc),
                "area_km2": _num(est["area_km2"].sum()) if "area_km2" in est else None,
                "total_credits": _num(total),
            }
        )
    else:
        print(est.to_string())
        print(f"total: {total} credits in {n_proc} processings")
    return 0


def _run_settings(args: argparse.Namespace) -> dict[str, Any]:
    progress = args.progress
    if progress is None:
        progress = not args.quiet and sys.stderr.isatty()
    settings = _drop_none(
        run_dir=args.run_dir,
        max_credits=args.max_credits,
        area_limit_km2=args.area_limit_km2,
        max_aois=args.max_aois,
        name=args.name,
        poll_interval=args.poll_interval,
    )
    return settings | _max_processings(args) | {"progress": progress, "fresh": args.fresh}


def process(args: argparse.Namespace) -> int:
    outs = targets(args, dataset=True)
    gdf = read_aoi(args.aoi)
    try:
        res = gdf.mapflow.process(args.model, client=client(args), **_run_settings(args))
    except RunFailedError as exc:
        if getattr(exc, "result", None) is None:
            raise
        log.warning("%s", " ".join(str(exc).split()))
        res = exc.result
    written = []
    for t in outs:
        n = write_result(res, t)
        wrote(n, "objects", t)
        written.append(t.as_dict(n))
    code = 0 if res.complete else EXIT_INCOMPLETE
    statuses = res.tiles["status"].astype(str)
    procs = res.processings
    charged = int(procs["cost"].fillna(0).sum()) if "cost" in procs else 0
    estimated = int(procs["estimate"].fillna(0).sum()) if "estimate" in procs else None
    n_ok, n_tiles = int((statuses == "OK").sum()), len(statuses)
    if args.json:
        emit_json(
            {
                "command": "process",
                "aoi": args.aoi,
                "model": args.model,
                "run_dir": res.run_dir,
                "complete": bool(res.complete),
                "tiles": {"total": n_tiles, "ok": n_ok, "failed": n_tiles - n_ok},
                "processings": len(procs),
                "credits": {"estimated": estimated, "charged": charged},
                "objects": written[0]["objects"] if written else None,
                "outputs": written,
                "exit_code": code,
            }
        )
    else:
        print(
            f"{n_ok} of {n_tiles} tiles done in {len(procs)} processings; "
            f"{charged:,} credits charged (estimated {estimated:,}); run folder {res.run_dir}"
        )
        print(res.costs.to_string())
    return code


def review(args: argparse.Namespace) -> int:
    res = open_run(args.run_dir)
    c = client(args)
    if args.rate is not None:
        ids = res.rate(args.rate, feedback=args.feedback, client=c)
        print(f"rated {len(ids)} processing(s) {args.rate}")
    elif args.accept:
        print(f"accepted {len(res.accept(client=c))} processing(s)")
    elif args.reject is not None:
        print(f"rejected {len(res.reject(args.reject, client=c))} processing(s)")
    tiles = res.review(c)
    table = tiles.groupby("processing_id", dropna=True)[["reviewStatus", "rating"]].first()
    print(table.to_string())
    return 0


def watch(args: argparse.Namespace) -> int:
    outs = targets(args, dataset=False)
    if args.aoi:
        mon = monitor(
            read_aoi(args.aoi), args.model or "buildings", client=client(args), run_dir=args.run_dir
        )
    else:
        mon = open_monitor(args.run_dir, client(args))
    upd = mon.check()
    print(f"{mon!r}: {len(upd.dates)} imagery date(s), new: {', '.join(upd.new_dates) or '-'}")
    print(
        f"{len(upd.features)} objects as of {upd.dates[-1] if upd.dates else '-'}; "
        f"{upd.credits} credits charged by the template's processings"
    )
    if len(upd.changes):
        print(upd.changes["change"].value_counts().to_string())
        for t in outs:
            wrote(write_frame(upd.changes, t), "changes", t)
    return 0


#: The command functions, by name.
COMMANDS = {
    "plan": plan,
    "estimate": estimate,
    "process": process,
    "review": review,
    "monitor": watch,
}
