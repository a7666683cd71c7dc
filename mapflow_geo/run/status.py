"""The statuses a run gives its processings itself, beside the service's `Status`.

The statuses rule is in DESIGN.md, *Layers, one way* (one copy of every rule).
"""

from __future__ import annotations

import enum
from typing import Any

from mapflow_geo.models import Status


class RunStatus(str, enum.Enum):
    """A status a run gives its processings (journal, ``processings`` and ``tiles`` tables).

    The service never sends these. Members are strings (``RunStatus.PLANNED ==
    "PLANNED"``) and print as their value.

    ========================  ================================================
    member                    meaning
    ========================  ================================================
    ``PLANNED``               in the plan, not sent yet
    ``NOT_CREATED``           the service refused the create (nothing charged;
                              sent again on resume)
    ``REPLANNED``             refused as too large; split into smaller
                              processings that follow it
    ``TOO_LARGE_PROCESSING``  refused as too large and could not be split
    ========================  ================================================

    >>> RunStatus.NOT_CREATED.is_terminal, RunStatus.PLANNED.is_terminal
    (True, False)
    """

    PLANNED = "PLANNED"
    NOT_CREATED = "NOT_CREATED"
    REPLANNED = "REPLANNED"
    TOO_LARGE_PROCESSING = "TOO_LARGE_PROCESSING"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @property
    def is_terminal(self) -> bool:
        """True when the run will do nothing more with the processing (all but PLANNED)."""
        return self is not RunStatus.PLANNED


def parse_status(value: Any) -> Status | RunStatus:
    """A processing's status in a run: the run's own member, else ``Status.parse``.

    >>> parse_status("not_created"), parse_status("awaiting")
    (<RunStatus.NOT_CREATED: 'NOT_CREATED'>, <Status.AWAITING: 'AWAITING'>)
    """
    if isinstance(value, (Status, RunStatus)):
        return value
    text = "" if value is None else str(value).strip().upper().replace("-", "_").replace(" ", "_")
    try:
        return RunStatus(text)
    except ValueError:
        return Status.parse(value)


def is_finished(value: Any) -> bool:
    """True when nothing more will happen to a processing of a run with this status: the
    service's terminal statuses and the run's own but ``PLANNED``."""
    return parse_status(value).is_terminal
