"""The command line's arguments: every option with its help, unit, default and
environment variable. No behaviour here; :mod:`mapflow_geo.cli._commands` acts."""

from __future__ import annotations

import argparse
from typing import NoReturn

from mapflow_geo._defaults import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN, MAX_PROCESSINGS
from mapflow_geo._version import __version__
from mapflow_geo.cli._output import FORMATS, formats_help

DESCRIPTION = """\
Mapflow AI mapping (Geoalert) from the command line: plan areas into tiles under the
account's limits, estimate their cost, process them with a model and write the
detected objects as GeoPackage, GeoJSON, FlatGeobuf or GeoParquet. A local Mapflow
simulator (mapflow-geo sim) answers like the service, for free."""

ENVIRONMENT = f"""\
environment:
  {ENV_TOKEN}    the Mapflow API token (base64 of email:apikey, from the API page
                   of your account on app.mapflow.ai); never given as an option, so
                   that it stays out of shell history and process lists
  {ENV_BASE_URL}  the API's base URL (default: {DEFAULT_BASE_URL}); --api-url wins
  XDG_CACHE_HOME   where the default run folders live (…/mapflow-geo/runs)"""

#: ``process``: the run finished but some tiles failed (the partial result is written).
EXIT_INCOMPLETE = 3

EXIT_CODES = """\
exit codes:
  0    done
  1    an unexpected error (a bug: the traceback is shown, please report it)
  2    a usage or user error, told in one line on stderr: bad option (argparse's
       own code), unreadable or missing input file, unknown output format, no or
       refused token (HTTP 401/403), budget refusal, any error the service or the run
       reports; --debug adds the traceback
  3    process: the run finished but some tiles failed; the partial result is written
  130  interrupted (Ctrl-C); process resumes where it stopped when run again with
       the same --run-dir
  141  stdout was closed early (e.g. piped into head)"""


class Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (exit code 2), pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def _common() -> argparse.ArgumentParser:
    """Options every service command takes (logging, tracebacks, the API's URL)."""
    p = Parser(add_help=False)
    g = p.add_argument_group("output and logging")
    loud = g.add_mutually_exclusive_group()
    loud.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only warnings and errors on stderr: no progress, no log lines",
    )
    loud.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log lines on stderr (each request and decision)",
    )
    g.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (exit code 2 still)"
    )
    g.add_argument(
        "--api-url",
        metavar="URL",
        help=f"the Mapflow API's base URL (env {ENV_BASE_URL}; default {DEFAULT_BASE_URL})",
    )
    return p


def _aoi(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "aoi",
        metavar="AOI",
        help="the areas: any vector file geopandas reads (GeoPackage, GeoJSON, Shapefile…),"
        " one area per row, any CRS",
    )


def _model(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "-m",
        "--model",
        required=required,
        help="the Mapflow model, by name (e.g. buildings, forest, roads; friendly names "
        "such as '🏠 Buildings' match)" + ("" if required else "; default: none"),
    )


def _limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("planning limits")
    g.add_argument(
        "--area-limit-km2",
        type=_positive_float,
        metavar="KM2",
        help="largest area of one tile, km² (default: the account's aoiAreaLimit)",
    )
    g.add_argument(
        "--max-aois",
        type=_positive_int,
        metavar="N",
        help="most tiles in one processing (default: the account's maxAoisPerProcessing)",
    )


def _max_processings(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-processings",
        type=_count,
        metavar="N",
        help="refuse plans with more processings before anything is sent "
        f"(default: {MAX_PROCESSINGS:,}; 0: no cap)",
    )


def _json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        help=f"print {what} as one JSON document on stdout (logs and progress stay on stderr)",
    )


def _outputs(p: argparse.ArgumentParser, *, required: bool, dataset: bool) -> None:
    where = formats_help() if dataset else formats_help().split(";")[0]
    p.add_argument(
        "-o",
        "--output",
        action="append",
        required=required,
        metavar="PATH",
        help=f"write here; the format follows the extension: {where}. Repeat to write "
        "several outputs" + ("" if required else " (default: write nothing)"),
    )
    names = [n for n in FORMATS if dataset or n != "dataset"]
    p.add_argument(
        "-f",
        "--format",
        choices=names,
        help="the output format whatever the extension (default: from the extension)",
    )


def _epilog(*parts: str) -> str:
    return "\n\n".join(parts)


def _add(sub: argparse._SubParsersAction, name: str, help: str, **kw: object):
    return sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        parents=[_common()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog(ENVIRONMENT, EXIT_CODES),
        **kw,
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``mapflow-geo`` parser (``sim`` and ``demo`` parse their own arguments)."""
    ap = Parser(
        prog="mapflow-geo",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog(
            "Each command has its own help: mapflow-geo COMMAND --help.",
            ENVIRONMENT,
            EXIT_CODES,
        ),
    )
    ap.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    _plan_command(sub)
    _estimate_command(sub)
    _process_command(sub)
    _review_command(sub)
    _monitor_command(sub)
    sub.add_parser("sim", help="serve the local Mapflow simulator (mapflow-geo sim --help)")
    sub.add_parser("demo", help="the whole workflow against a simulator started for it")
    return ap


def _plan_command(sub: argparse._SubParsersAction) -> None:
    """``plan``: tiles and processings of an AOI file, offline with both limits."""
    p = _add(sub, "plan", "plan tiles and processings for an AOI file (creates nothing)")
    _aoi(p)
    _model(p, required=False)
    _limits(p)
    _outputs(p, required=False, dataset=False)
    _json(p, "the plan's summary")
    p.epilog = (
        "Offline (no token needed) when both --area-limit-km2 and --max-aois are given.\n\n"
        + (p.epilog or "")
    )


def _estimate_command(sub: argparse._SubParsersAction) -> None:
    """``estimate``: credits per input row."""
    e = _add(sub, "estimate", "estimate credits per input row (asks the service; creates nothing)")
    _aoi(e)
    _model(e, required=True)
    _limits(e)
    _max_processings(e)
    _json(e, "the estimate per row and in total")


def _process_command(sub: argparse._SubParsersAction) -> None:
    """``process``: run a model over an AOI file and write the objects."""
    r = _add(sub, "process", "process an AOI file with a model and write the detected objects")
    _aoi(r)
    _model(r, required=True)
    _outputs(r, required=True, dataset=True)
    _run_options(r)
    _limits(r)
    _max_processings(r)
    _json(r, "the run's summary (credits, tile counts, outputs written)")


def _run_options(r: argparse.ArgumentParser) -> None:
    """The ``run`` group of ``process``: run dir, fresh, budget, names, polling, bar."""
    run = r.add_argument_group("run")
    run.add_argument(
        "--run-dir",
        metavar="DIR",
        help="the run's journal and results; run again with the same folder to resume "
        "without paying twice (default: a per-user cache folder keyed by the inputs, the "
        "service and the account)",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="start a new run (new processings, new credits) instead of resuming or reusing "
        "the stored one; the stored run is kept",
    )
    run.add_argument(
        "--max-credits",
        type=_count,
        metavar="CREDITS",
        help="refuse, having spent nothing, when the estimate is higher (default: no cap)",
    )
    run.add_argument(
        "--name", help="prefix of the processings' names on the service (default: mapflow-geo)"
    )
    run.add_argument(
        "--poll-interval",
        type=_positive_float,
        metavar="SECONDS",
        help="longest wait between two status checks, seconds (default: 30)",
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: when stderr is a terminal and not --quiet)",
    )


def _review_command(sub: argparse._SubParsersAction) -> None:
    """``review``: rate, accept or reject a run's processings."""
    v = _add(sub, "review", "rate, accept or reject a run's processings")
    v.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder (--run-dir of process)")
    act = v.add_mutually_exclusive_group()
    act.add_argument(
        "--rate", type=int, choices=range(1, 6), metavar="1-5", help="rate every processing"
    )
    act.add_argument("--accept", action="store_true", help="accept every processing")
    act.add_argument("--reject", metavar="COMMENT", help="reject every processing, saying why")
    v.add_argument("--feedback", metavar="TEXT", help="a comment with --rate (default: none)")


def _monitor_command(sub: argparse._SubParsersAction) -> None:
    """``monitor``: watch areas through a planned processing."""
    m = _add(sub, "monitor", "watch areas for change through a planned processing")
    m.add_argument(
        "run_dir", metavar="RUN_DIR", help="the monitor's folder (made on first use with --aoi)"
    )
    m.add_argument("--aoi", metavar="FILE", help="areas to watch: creates (or resumes) the monitor")
    m.add_argument("-m", "--model", help="the model of a new monitor (default: buildings)")
    _outputs(m, required=False, dataset=False)


__all__ = [
    "DESCRIPTION",
    "ENVIRONMENT",
    "EXIT_CODES",
    "EXIT_INCOMPLETE",
    "Parser",
    "build_parser",
]
