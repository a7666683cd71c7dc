"""What a run shows while it works: one aggregate bar on stderr.

The bar is tqdm's ``tqdm.auto`` (a widget in notebooks, text in a terminal). One bar per
run follows its phases — ``create``, ``process``, ``download`` — with the counts and the
credits in its postfix, and reads ``mapflow done`` when the run ends; a short ``stitch``
bar follows when the stored pieces are joined into objects (on first access to
``res.features``). Notes such as "reusing the run
stored in …" are written above the bar. ``enabled=False`` writes nothing at all.

The engine calls this module at phase changes; no other module imports tqdm.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Collection, Iterator
from typing import Any

from mapflow_geo.run import journal as jr

#: The phases of a run, in order.
PHASES = ("create", "process", "download", "stitch")


def _tqdm(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm  # here only: tqdm.auto looks for a notebook when imported

    return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)


def note(text: str, *, enabled: bool = True) -> None:
    """One line for the user, above any bar (stderr)."""
    if enabled:
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)


class RunProgress:
    """The aggregate bar of one run: processings finished of the run's total; the phase
    in the description; created / running / failed processings, objects stored and
    credits (this call's, and those charged by earlier calls) in the postfix. Redrawn at
    most every ``every`` seconds (counting 40,000 records each poll cycle is not free).

    Parameters
    ----------
    total : int
        The run's processings.
    enabled : bool
        False: nothing is shown.
    earlier : collection of str
        Keys of the processings an earlier call created (their credits are shown apart).
    """

    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        earlier: Collection[str] = (),
        every: float = 0.5,
    ) -> None:
        self.bar = None
        self.phase = PHASES[0]
        self.earlier = frozenset(earlier)
        self.every = every
        self._last = -math.inf
        self._total = total if enabled else 0  # the bar opens on the first redraw

    def _desc(self) -> str:
        return f"mapflow {self.phase}"

    def set_phase(self, phase: str, journal: jr.Journal) -> None:
        """Enter ``phase`` (one of :data:`PHASES`) and redraw."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; one of {PHASES}")
        if phase != self.phase or self.bar is None:
            self.phase = phase
            self.update(journal, force=True)

    def update(self, journal: jr.Journal, *, force: bool = False) -> None:
        """Redraw from the journal (at most every ``every`` seconds unless ``force``)."""
        if self.bar is None:
            if not self._total:
                return
            self.bar = _tqdm(total=self._total, desc=self._desc(), unit="proc")
            self._total = 0
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        tally = journal.tally()
        self.bar.total = tally["records"] or self.bar.total  # re-planned pieces join the run
        self.bar.n = tally["finished"]
        self.bar.set_description_str(self._desc(), refresh=False)
        self.bar.set_postfix_str(self.postfix(journal, tally), refresh=False)
        self.bar.refresh()

    def postfix(self, journal: jr.Journal, tally: dict[str, int] | None = None) -> str:
        """``created 3/4 · running 1 · failed 0 · objects 1,234 · credits 12 (+30 earlier)``."""
        t = tally or journal.tally()
        before = 0
        for key in self.earlier:  # only a resumed run has any
            rec = journal.get(key)
            if rec is not None and rec.processing_id:
                before += int(rec.cost or 0)
        parts = [
            f"created {t['created']}/{t['records']}",
            f"running {t['live']}",
            f"failed {t['failed']}",
            f"objects {journal.stored_objects():,}",
            f"credits {t['credits'] - before:,}" + (f" (+{before:,} earlier)" if before else ""),
        ]
        return " · ".join(parts)

    def close(self, journal: jr.Journal) -> None:
        if self.bar is not None:
            self.update(journal, force=True)
            self.bar.set_description_str("mapflow done", refresh=False)
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def stitching(pieces: int, *, enabled: bool) -> Iterator[Any]:
    """The ``stitch`` bar while ``pieces`` stored pieces are read and joined; the caller
    reports the objects with ``done(objects)`` when they are joined."""
    bar = _tqdm(total=pieces, desc="mapflow stitch", unit="piece") if enabled and pieces else None

    def done(objects: int) -> None:
        if bar is not None:
            bar.n = pieces
            bar.set_postfix_str(f"objects {objects:,}", refresh=False)
            bar.refresh()

    try:
        yield done
    finally:
        if bar is not None:
            bar.close()


__all__ = ["PHASES", "RunProgress", "note", "stitching"]
