"""Time in the simulator's world: dates, and the seeded life of every object.

The world changes between :data:`START` (2015-01-01) and :data:`END` (2026-12-31). Each
object has a life drawn from a hash of its generating cell (never from the query):
``built`` (a day, or :data:`ALWAYS`: it stood before 2015), ``demolished`` (a day or
:data:`NEVER`) and ``modified`` (the day its second version replaced the first: a building
extended, a forest clearing grown; or :data:`NEVER`). An object stands on day ``D`` when
``built <= D < demolished``; from ``modified`` on it has its second footprint. Days are
int64 days since 1970-01-01; ``date=None`` is :data:`END` (the world as it stands today,
the latest the process knows), and later dates are :data:`END` too.

Two processes make the changes (vectorised: one draw per object, no per-object loops):

* **hot spots**: a share of the built-up districts (``hotspot_share``) are developed
  during a window of 1.5 – ``hotspot_years`` years that starts between mid-2015 and
  mid-2026. Their local streets are laid out just before the window; each block starts
  at a day of the window and fills within :data:`FILL_YEARS`; 90 % of their buildings
  are new (an attached row or perimeter ring is built as one), the rest stood before and
  most of them are cleared when their block starts. Construction sites mark the window.
* **background**: everywhere, at constant rates per year (options): new buildings, new
  local streets, demolitions of free-standing buildings (some rebuilt later, under a new
  ``truth_id``: layer + 8), extensions (a bigger footprint containing the old one, same
  ``truth_id``, ``version`` 2), cleared groves, growing clearings in large forest patches.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from .world_core import cell_key, draw

START = int(np.datetime64("2015-01-01", "D").astype(np.int64))
END = int(np.datetime64("2026-12-31", "D").astype(np.int64))
ALWAYS = np.int64(-(1 << 40))  # built before the record starts
NEVER = np.int64(1 << 40)  # not (yet) demolished / modified
YEAR = 365.25
FILL_YEARS = 1.5  # a hot-spot block fills within this
HOT_NEW_SHARE = 0.9  # hot-spot buildings that are new
HOT_CLEARED_SHARE = 0.6  # of the hot spot's older buildings, cleared for the development

_LIFE, _GROUP, _BLOCK = 211, 223, 227  # salts


def to_day(date: Any) -> int:
    """Day number (days since 1970-01-01) of a date: None (:data:`END`), ``"YYYY-MM-DD"``
    (a longer ISO timestamp is cut to its day), a ``datetime.date``/``datetime`` or a
    ``numpy.datetime64``. Days after :data:`END` are :data:`END`."""
    if date is None:
        return END
    if isinstance(date, np.datetime64):
        day = int(date.astype("datetime64[D]").astype(np.int64))
    elif isinstance(date, _dt.datetime):
        day = (date.date() - _dt.date(1970, 1, 1)).days
    elif isinstance(date, _dt.date):
        day = (date - _dt.date(1970, 1, 1)).days
    elif isinstance(date, str):
        s = date.strip()
        try:
            d = _dt.date.fromisoformat(s[:10])
        except ValueError:
            raise ValueError(f"date must be YYYY-MM-DD, got {date!r}") from None
        if len(s) > 10 and s[10] not in "T ":
            raise ValueError(f"date must be YYYY-MM-DD, got {date!r}")
        day = (d - _dt.date(1970, 1, 1)).days
    else:
        raise TypeError(f"date must be None, a YYYY-MM-DD string or a date, not {type(date)}")
    return min(day, END)


def iso_day(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def iso_days(days: np.ndarray) -> np.ndarray:
    """Object array of ``"YYYY-MM-DD"`` strings, None for :data:`ALWAYS` / :data:`NEVER`."""
    days = np.asarray(days, dtype=np.int64)
    out = np.full(len(days), None, dtype=object)
    ok = (days != ALWAYS) & (days != NEVER)
    if ok.any():
        out[ok] = np.datetime_as_string(days[ok].astype("datetime64[D]")).astype(object)
    return out


def life_key(seed: int, salt: int, ids) -> np.ndarray:
    """The key of an object's life draws (from its truth id or group id)."""
    return cell_key(seed, salt, np.asarray(ids, dtype=np.int64), 0)


def event(key: np.ndarray, k: int, lo, hi, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """An event at a constant ``rate`` per year in the days ``(lo, hi]``: (happens, day)."""
    lo = np.asarray(lo, dtype=np.int64)
    span = np.maximum(np.asarray(hi, dtype=np.int64) - lo, 0)
    p = np.clip(float(rate) * span / YEAR, 0.0, 1.0)
    happens = (draw(key, k) < p) & (span > 0)
    day = lo + 1 + np.minimum(np.floor(draw(key, k + 1) * span).astype(np.int64), span - 1)
    return happens, np.where(happens, day, NEVER)


def days_in(u: np.ndarray, lo, length) -> np.ndarray:
    """``lo + floor(u * length)`` as int64 days."""
    return np.asarray(lo, dtype=np.int64) + np.floor(u * np.asarray(length)).astype(np.int64)


# ----------------------------------------------------------------------------- hot spots
def hot_windows(key: np.ndarray, built_up: np.ndarray, opt) -> dict:
    """Hot-spot flags and development windows of districts (their keys): ``hot``,
    ``hot_start`` (day), ``hot_days`` (window length)."""
    hot = built_up & (draw(key, 40) < opt.hotspot_share)
    years = 1.5 + (float(opt.hotspot_years) - 1.5) * draw(key, 41)
    start = days_in(draw(key, 42), START + 0.5 * YEAR, (END - START) - YEAR)
    return {"hot": hot, "hot_start": start, "hot_days": np.round(years * YEAR).astype(np.int64)}


def block_start(seed: int, gi, gj, hot_start, hot_days) -> np.ndarray:
    """The day a hot-spot block starts filling (within its district's window)."""
    fill = np.minimum(FILL_YEARS * YEAR, hot_days / 2)
    u = draw(cell_key(seed, _BLOCK, gi, gj), 0)
    return days_in(u, hot_start, np.maximum(hot_days - fill, 0))


# ----------------------------------------------------------------------------- buildings
def building_life(
    seed: int,
    ids: np.ndarray,
    group: np.ndarray,
    hot: np.ndarray,
    start: np.ndarray,
    fill: np.ndarray,
    growable: np.ndarray,
    opt,
) -> dict:
    """Lives of buildings: ``built``, ``demolished``, ``modified`` (extension day) and
    ``rebuilt`` (the day a replacement is built on the footprint; :data:`NEVER` if none).

    ``group``: attached group id (−1 if free-standing; a group is built as one and never
    demolished piecemeal); ``hot``, ``start``, ``fill``: in a hot spot, the building's
    block starts at ``start`` and fills within ``fill`` days."""
    bkey = life_key(seed, _LIFE, ids)
    attached = group >= 0
    gkey = np.where(attached, life_key(seed, _GROUP, np.maximum(group, 0)), bkey)
    # built: hot-spot buildings (90 % new, in their block's fill) or background new ones
    hot_new = hot & (draw(gkey, 0) < HOT_NEW_SHARE)
    hot_day = days_in(draw(gkey, 1), start, fill)
    bg_new, bg_day = event(gkey, 2, START - 1, END, opt.new_building_rate)
    built = np.where(hot_new, hot_day, np.where(bg_new & ~hot, bg_day, ALWAYS))
    # demolished: the older buildings of a hot spot cleared as their block starts, or the
    # background rate for free-standing buildings
    lo = np.maximum(built, START)
    cleared = hot & ~hot_new & ~attached & (draw(bkey, 10) < HOT_CLEARED_SHARE)
    clear_day = np.maximum(start - days_in(draw(bkey, 11), 0, 180), START + 1)
    dem, dem_day = event(bkey, 12, lo, END, opt.demolition_rate)
    dem &= ~attached & ~(hot & ~hot_new)
    demolished = np.where(cleared & (clear_day <= END), clear_day, np.where(dem, dem_day, NEVER))
    demolished = np.where(built > END, NEVER, demolished)
    # rebuilt (a new object on the same lot) some months to two years later
    rb = dem & (draw(bkey, 14) < opt.rebuild_share)
    rb_day = demolished + 60 + days_in(draw(bkey, 15), 0, 2 * YEAR)
    rebuilt = np.where(rb & (rb_day <= END), rb_day, NEVER)
    # extended (only those with room for it), between built and demolished
    hi = np.minimum(demolished - 1, END)
    ext, ext_day = event(bkey, 20, lo, hi, opt.extension_rate)
    modified = np.where(ext & growable, ext_day, NEVER)
    return {"built": built, "demolished": demolished, "modified": modified, "rebuilt": rebuilt}


# ----------------------------------------------------------------------------- other layers
def street_life(seed: int, ids, hot, hot_start, opt) -> np.ndarray:
    """Built days of local streets: a hot spot's streets are laid out in the half year
    before its window; elsewhere new streets at ``new_street_rate``."""
    key = life_key(seed, _LIFE, ids)
    pre = hot_start - days_in(draw(key, 30), 0, YEAR / 2)
    new, day = event(key, 31, START - 1, END, opt.new_street_rate)
    return np.where(hot, np.maximum(pre, START), np.where(new, day, ALWAYS))


def forest_life(seed: int, ids, large: np.ndarray, opt) -> tuple[np.ndarray, np.ndarray]:
    """(demolished, modified) of forest patches: groves cleared; large patches whose
    clearing grows (or a first clearing appears)."""
    key = life_key(seed, _LIFE, ids)
    cut, cut_day = event(key, 40, START - 1, END, opt.grove_clearing_rate)
    grow, grow_day = event(key, 42, START - 1, END, opt.clearing_growth_rate)
    return np.where(~large & cut, cut_day, NEVER), np.where(large & grow, grow_day, NEVER)


def at(day: int, built, demolished) -> np.ndarray:
    """Whether objects stand on ``day``."""
    return (built <= day) & (day < demolished)
