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
    """Status of a processing or an AOI, as the service sends it.

    Unknown strings map to ``UNKNOWN`` (the text is kept on the record as
    ``status_raw``). Members are strings, so ``status == "OK"`` holds. The statuses a
    run gives its processings itself are :class:`mapflow_geo.run.status.RunStatus`.

    ===============  ================================================
    member           meaning
    ===============  ================================================
    ``UNPROCESSED``  accepted, not started
    ``AWAITING``     waiting (e.g. for imagery); not finished
    ``IN_PROGRESS``  running
    ``OK``           finished; results ready
    ``FAILED``       finished without results (``messages`` say why)
    ``CANCELLED``    stopped by the user
    ``REFUNDED``     failed and paid back
    ``UNKNOWN``      a status this version does not know
    ===============  ================================================

    >>> Status.parse("REFUNDED").is_terminal, Status.parse("AWAITING").is_terminal
    (True, False)
    >>> Status.parse("SOMETHING_NEW")
    <Status.UNKNOWN: 'UNKNOWN'>
    """

    UNPROCESSED = "UNPROCESSED"
    IN_PROGRESS = "IN_PROGRESS"
    AWAITING = "AWAITING"
    OK = "OK"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
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
        """True when nothing more will happen to the processing: OK, FAILED, CANCELLED
        and REFUNDED (AWAITING is *not* finished)."""
        return self in _TERMINAL

    @property
    def is_success(self) -> bool:
        return self is Status.OK


_TERMINAL = frozenset({Status.OK, Status.FAILED, Status.CANCELLED, Status.REFUNDED})


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
