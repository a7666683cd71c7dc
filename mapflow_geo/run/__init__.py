"""Runs: plan → estimate → submit → poll → fetch, journalled and resumable.

* :mod:`.prepare` — account limits, the one create-body builder, estimates, budgets;
* :mod:`.engine` — :class:`Runner` and its :class:`RunOptions`, :func:`process`;
* :mod:`.create` — a processing's create: intent, send, adopt, re-plan;
* :mod:`.fetch` — download, parse and store one result (the runner's and the monitor's);
* :mod:`.journal` — the durable record of every processing and download;
* :mod:`.store` — the run dir's files, :func:`load_result` and :func:`open_run`;
* :mod:`.progress` — the run's progress bar (the one tqdm import);
* :mod:`.status` — the statuses a run gives its processings itself;
* :mod:`.monitor` — recurring monitoring through planned processings (templates).
"""

from mapflow_geo.run.engine import Runner, RunOptions, process
from mapflow_geo.run.monitor import Monitor, MonitorUpdate, monitor, open_monitor
from mapflow_geo.run.prepare import (
    MAX_PROCESSINGS,
    META_KEY,
    META_RUN,
    PlannedProcessing,
    estimate,
    fingerprint_of,
    plan,
    prepare_run,
)
from mapflow_geo.run.status import RunStatus
from mapflow_geo.run.store import load_result, open_run

__all__ = [
    "MAX_PROCESSINGS",
    "Monitor",
    "MonitorUpdate",
    "META_KEY",
    "META_RUN",
    "PlannedProcessing",
    "RunOptions",
    "RunStatus",
    "Runner",
    "estimate",
    "fingerprint_of",
    "load_result",
    "monitor",
    "open_monitor",
    "open_run",
    "plan",
    "prepare_run",
    "process",
]
