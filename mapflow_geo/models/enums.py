"""The enums of the API's records: statuses, review statuses, billing types.

Members are strings (``Status.OK == "OK"``) and print as their wire value.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class _StrEnum(str, enum.Enum):
    """``str(member)`` and f-strings give the wire value (``"OK"``), as StrEnum does."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def _from_text(cls, value: Any) -> Any:
        """The member spelt ``value`` (any case, spaces around), else ``UNKNOWN``."""
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            return cls["UNKNOWN"]


class Status(_StrEnum):
    """Status of a processing, an AOI, or a run's processing.

    The service's statuses come first; then the statuses a run gives its processings
    itself (in the journal and the ``processings``/``tiles`` tables), which the service
    never sends. Unknown strings map to ``UNKNOWN`` (the text is kept on the record as
    ``status_raw``). Members are strings, so ``status == "OK"`` holds.

    ========================  =======  ================================================
    member                    from     meaning
    ========================  =======  ================================================
    ``UNPROCESSED``           service  accepted, not started
    ``AWAITING``              service  waiting (e.g. for imagery); not finished
    ``IN_PROGRESS``           service  running
    ``OK``                    service  finished; results ready
    ``FAILED``                service  finished without results (``messages`` say why)
    ``CANCELLED``             service  stopped by the user
    ``REFUNDED``              service  failed and paid back
    ``PLANNED``               run      in the plan, not sent yet
    ``NOT_CREATED``           run      the service refused the create (nothing charged;
                                       sent again on resume)
    ``REPLANNED``             run      refused as too large; split into smaller
                                       processings that follow it
    ``TOO_LARGE_PROCESSING``  run      refused as too large and could not be split
    ``UNKNOWN``               either   a status this version does not know
    ========================  =======  ================================================

    >>> Status.parse("REFUNDED").is_terminal, Status.parse("AWAITING").is_terminal
    (True, False)
    >>> Status.NOT_CREATED.is_terminal, Status.PLANNED.is_terminal
    (True, False)
    >>> Status.parse("SOMETHING_NEW")
    <Status.UNKNOWN: 'UNKNOWN'>
    """

    # the service's
    UNPROCESSED = "UNPROCESSED"
    IN_PROGRESS = "IN_PROGRESS"
    AWAITING = "AWAITING"
    OK = "OK"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    # a run's own
    PLANNED = "PLANNED"
    NOT_CREATED = "NOT_CREATED"
    REPLANNED = "REPLANNED"
    TOO_LARGE_PROCESSING = "TOO_LARGE_PROCESSING"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> Status:
        if isinstance(value, Status):
            return value
        if value is None:
            return cls.UNKNOWN
        s = str(value).strip().upper().replace("-", "_").replace(" ", "_")
        if s == "CANCELED":
            s = "CANCELLED"
        try:
            return cls(s)
        except ValueError:
            return cls.UNKNOWN

    @classmethod
    def _missing_(cls, value: object) -> Status:  # Status("weird") -> UNKNOWN
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        """True when nothing more will happen to the processing: the service's OK,
        FAILED, CANCELLED and REFUNDED (AWAITING is *not* finished), and a run's
        NOT_CREATED, REPLANNED and TOO_LARGE_PROCESSING (PLANNED is not)."""
        return self in _TERMINAL

    @property
    def is_run_status(self) -> bool:
        """True for the statuses a run gives, which the service never sends."""
        return self in _RUN_STATUSES

    @property
    def is_success(self) -> bool:
        return self is Status.OK


_RUN_STATUSES = frozenset(
    {Status.PLANNED, Status.NOT_CREATED, Status.REPLANNED, Status.TOO_LARGE_PROCESSING}
)
_TERMINAL = frozenset(
    {
        Status.OK,
        Status.FAILED,
        Status.CANCELLED,
        Status.REFUNDED,
        Status.NOT_CREATED,
        Status.REPLANNED,
        Status.TOO_LARGE_PROCESSING,
    }
)


class ReviewStatus(_StrEnum):
    """Review status of a processing (an opt-in feature)."""

    ACCEPTED = "ACCEPTED"
    NOT_ACCEPTED = "NOT_ACCEPTED"
    REFUNDED = "REFUNDED"
    IN_REVIEW = "IN_REVIEW"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> ReviewStatus | None:
        """``"ACCEPTED"`` or ``{"reviewStatus": "ACCEPTED", ...}`` → member; null → None."""
        if isinstance(value, Mapping):
            value = value.get("reviewStatus", value.get("status"))
        return None if value is None else cls._from_text(value)


class BillingType(_StrEnum):
    CREDITS = "CREDITS"
    AREA = "AREA"
    NONE = "NONE"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> BillingType | None:
        return None if value is None else cls._from_text(value)


class TemplateStatus(_StrEnum):
    """Status of a planned processing (template): its search state."""

    SEARCHING = "SEARCHING"
    READY = "READY"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> TemplateStatus:
        return cls._from_text(value)
