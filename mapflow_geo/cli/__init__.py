"""``mapflow-geo``: a thin, conventional command line over the Python API.

Commands ``plan``, ``estimate``, ``process``, ``review``, ``monitor``, ``sim`` (serve the
local simulator) and ``demo``; ``mapflow-geo COMMAND --help`` lists every option with
its unit, default and environment variable (``docs/guide/cli.md``).

argparse, not click or typer: it is in the standard library, gives ``--help``,
``--version``, choices, mutually exclusive groups and exit code 2 on bad options, and
everything this CLI needs; a dependency would buy nothing here.

Conventions: results on stdout (one JSON document with ``--json``); logs, progress and
``wrote … to …`` lines on stderr through the ``mapflow_geo`` logger (``-q`` quiets,
``-v`` adds); a user error is one line on stderr and exit code 2 (``--debug`` adds the
traceback). Exit codes are in :data:`~mapflow_geo.cli._parser.EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator

from mapflow_geo._defaults import ENV_TOKEN
from mapflow_geo.cli._output import FORMATS, UsageError, resolve_target
from mapflow_geo.cli._parser import EXIT_INCOMPLETE, build_parser
from mapflow_geo.exceptions import (
    AuthenticationError,
    MapflowError,
    PermissionDeniedError,
)

#: Exit codes (documented in ``--help`` and ``docs/guide/cli.md``).
EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 130, 141

#: The errors a user can act on: one line on stderr, exit code 2.
USER_ERRORS = (MapflowError, OSError)

TOKEN_HINT = (
    f"check {ENV_TOKEN}: the API token (base64 of email:apikey) from the API page of your "
    "Mapflow account"
)


class _Formatter(logging.Formatter):
    """``mapflow-geo: message``; ``mapflow-geo: warning: message`` from WARNING up."""

    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"mapflow-geo: {record.levelname.lower()}: {msg}"
        return f"mapflow-geo: {msg}"


@contextlib.contextmanager
def _logging(verbose: int, quiet: bool) -> Iterator[None]:
    """The package's log lines and warnings on stderr for the command's duration (INFO;
    WARNING with ``-q``; DEBUG with ``-v``), printed around a progress bar when tqdm is
    installed."""
    logger = logging.getLogger("mapflow_geo")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(name)s: %(message)s" if verbose else "%(message)s"))
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    old = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        logger.warning("%s", " ".join(str(message).split()))

    try:
        with warnings.catch_warnings(), _around_bars(logger):
            warnings.showwarning = show
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]


def _around_bars(logger: logging.Logger) -> contextlib.AbstractContextManager:
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:  # pragma: no cover - tqdm missing: no bar to print around
        return contextlib.nullcontext()
    return logging_redirect_tqdm(loggers=[logger])


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, AuthenticationError | PermissionDeniedError) and ENV_TOKEN not in msg:
        msg = f"{msg} — {TOKEN_HINT}"
    return msg


def _fail(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"mapflow-geo: error: {_one_line(exc)}", file=sys.stderr)
    return EXIT_USAGE


def _check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments beyond argparse's checks, before anything is
    read or sent: every ``-o`` (format, folder), ``--feedback`` without ``--rate``."""
    if args.cmd == "review" and args.feedback is not None and args.rate is None:
        return "--feedback goes with --rate"
    for out in getattr(args, "output", None) or []:
        try:
            resolve_target(out, args.format, dataset=args.cmd == "process")
        except UsageError as exc:
            return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    """Run ``mapflow-geo`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # the simulator and the demo load only when asked (half a second off every other command)
    if argv[:1] == ["sim"]:
        from mapflow_geo.sim import cli_main

        return cli_main(argv[1:]) or EXIT_OK
    if argv[:1] == ["demo"]:
        from mapflow_geo.demo import main as demo_main

        return demo_main(argv[1:])
    ap = build_parser()
    args = ap.parse_args(argv)
    problem = _check_args(args)
    if problem:
        print(f"mapflow-geo {args.cmd}: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    # the commands (geopandas, the client, the runs) load after parsing: --help needs none
    from mapflow_geo.cli._commands import COMMANDS

    try:
        with _logging(args.verbose, args.quiet):
            return COMMANDS[args.cmd](args)
    except BrokenPipeError:  # stdout closed early (piped into head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except KeyboardInterrupt:
        print("mapflow-geo: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        return _fail(exc, args.debug)


__all__ = ["EXIT_INCOMPLETE", "FORMATS", "main"]
