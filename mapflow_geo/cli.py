"""``mapflow-geo``: a thin command line over the Python API.

Commands: ``sim`` (serve the local simulator), ``plan``, ``estimate``, ``process``,
``review``, ``monitor``, ``demo``. The token and API URL come from ``MAPFLOW_TOKEN`` /
``MAPFLOW_API_URL``.
"""

from __future__ import annotations

import argparse
import sys

import geopandas as gpd

from mapflow_geo import accessors as _accessors  # noqa: F401  (registers gdf.mapflow)
from mapflow_geo.client import default_client
from mapflow_geo.demo import main as demo_main
from mapflow_geo.exceptions import MapflowError
from mapflow_geo.run.monitor import monitor, open_monitor
from mapflow_geo.run.store import open_run
from mapflow_geo.sim import cli_main as sim_main


def _read(path: str):
    return gpd.read_file(path)


def _client():
    return default_client()


def _plan(args: argparse.Namespace) -> int:
    gdf = _read(args.aoi)
    client = None if args.area_limit_km2 and args.max_aois else _client()
    plan = gdf.mapflow.plan(
        area_limit_km2=args.area_limit_km2,
        max_aois=args.max_aois,
        client=client,
        model=args.model,
    )
    print(f"{len(plan)} tiles in {plan['processing'].nunique()} processings")
    if args.output:
        plan.to_file(args.output)
    return 0


def _estimate(args: argparse.Namespace) -> int:
    est = _read(args.aoi).mapflow.estimate(args.model, client=_client())
    print(est.to_string())
    print(f"total: {est.attrs['total_credits']} credits in {est.attrs['processings']} processings")
    return 0


def _process(args: argparse.Namespace) -> int:
    res = _read(args.aoi).mapflow.process(
        args.model,
        client=_client(),
        run_dir=args.run_dir,
        max_credits=args.max_credits,
        errors="warn",
    )
    res.to_file(args.output)
    print(res)
    print(res.costs.to_string())
    return 0 if res.complete else 3


def _review(args: argparse.Namespace) -> int:
    res = open_run(args.run_dir)
    client = _client()
    if args.rate is not None:
        ids = res.rate(args.rate, feedback=args.feedback, client=client)
        print(f"rated {len(ids)} processing(s) {args.rate}")
    elif args.accept:
        print(f"accepted {len(res.accept(client=client))} processing(s)")
    elif args.reject is not None:
        print(f"rejected {len(res.reject(args.reject, client=client))} processing(s)")
    tiles = res.review(client)
    print(
        tiles.groupby("processing_id", dropna=True)[["reviewStatus", "rating"]].first().to_string()
    )
    return 0


def _monitor(args: argparse.Namespace) -> int:
    if args.aoi:
        mon = monitor(
            _read(args.aoi), args.model or "buildings", client=_client(), run_dir=args.run_dir
        )
    else:
        mon = open_monitor(args.run_dir, _client())
    upd = mon.check()
    print(f"{mon!r}: {len(upd.dates)} imagery date(s), new: {', '.join(upd.new_dates) or '-'}")
    print(
        f"{len(upd.features)} objects as of {upd.dates[-1] if upd.dates else '-'}; "
        f"{upd.credits} credits charged by the template's processings"
    )
    if len(upd.changes):
        print(upd.changes["change"].value_counts().to_string())
        if args.output:
            upd.changes.to_file(args.output)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:
        return sim_main(argv[1:]) or 0
    if argv[:1] == ["demo"]:
        return demo_main(argv[1:])
    ap = argparse.ArgumentParser(prog="mapflow-geo", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("sim", help="serve the local Mapflow simulator (see `mapflow-geo sim -h`)")
    sub.add_parser("demo", help="run the demo against the simulator")
    p = sub.add_parser("plan", help="plan tiles and processings for an AOI file")
    p.add_argument("aoi")
    p.add_argument("--area-limit-km2", type=float)
    p.add_argument("--max-aois", type=int)
    p.add_argument("--model")
    p.add_argument("-o", "--output")
    p.set_defaults(func=_plan)
    e = sub.add_parser("estimate", help="estimate credits per row (creates nothing)")
    e.add_argument("aoi")
    e.add_argument("--model", required=True)
    e.set_defaults(func=_estimate)
    r = sub.add_parser("process", help="process an AOI file and write the objects")
    r.add_argument("aoi")
    r.add_argument("--model", required=True)
    r.add_argument("-o", "--output", required=True)
    r.add_argument("--run-dir")
    r.add_argument("--max-credits", type=int)
    r.set_defaults(func=_process)
    v = sub.add_parser("review", help="rate, accept or reject a run's processings")
    v.add_argument("run_dir")
    act = v.add_mutually_exclusive_group()
    act.add_argument("--rate", type=int, choices=range(1, 6), metavar="1-5")
    act.add_argument("--accept", action="store_true")
    act.add_argument("--reject", metavar="COMMENT")
    v.add_argument("--feedback")
    v.set_defaults(func=_review)
    m = sub.add_parser(
        "monitor",
        help="watch areas for change through a planned processing; fetch what is new",
    )
    m.add_argument("run_dir", help="the monitor's folder (made on first use with --aoi)")
    m.add_argument("--aoi", help="areas to watch: creates (or resumes) the template")
    m.add_argument("--model", help="model for a new monitor (default: buildings)")
    m.add_argument("-o", "--output", help="write the changes since the last look")
    m.set_defaults(func=_monitor)
    args = ap.parse_args(argv)
    if args.cmd == "review" and args.feedback is not None and args.rate is None:
        ap.error("--feedback goes with --rate")
    try:
        return args.func(args)
    except MapflowError as exc:
        print(f"mapflow-geo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
