"""Crash-test failpoints: ``MAPFLOW_GEO_FAILPOINT=name`` (or ``name:N``, the N-th hit)
SIGKILLs the process when it reaches ``name``. Read once, when the package is imported:
the crash tests arm a child process through its environment. Unarmed, a failpoint costs
one comparison (docs/reliability.md, *Crash points*)."""

from __future__ import annotations

import os
import signal
import threading

#: Environment variable naming the failpoint to kill at.
FAILPOINT_ENV = "MAPFLOW_GEO_FAILPOINT"

#: The runner's failpoints, in run order.
FAILPOINTS = (
    "before_intent",
    "after_intent",
    "after_create",
    "mid_poll",
    "mid_download",
    "before_result_rename",
    "mid_merge",
)
#: The monitor's failpoints, in order.
MONITOR_FAILPOINTS = (
    "monitor_after_intent",
    "monitor_after_create",
    "monitor_after_record",
    "monitor_mid_download",
    "monitor_before_rename",
)

_ARMED, _, _NTH = (os.environ.get(FAILPOINT_ENV) or "").partition(":")
_hits = 0
_lock = threading.Lock()


def failpoint(name: str) -> None:
    """SIGKILL this process at ``name`` when it is the armed failpoint (at its N-th
    hit); a no-op otherwise."""
    if name != _ARMED:
        return
    global _hits
    with _lock:
        _hits += 1
        hit = _hits
    if hit >= int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
