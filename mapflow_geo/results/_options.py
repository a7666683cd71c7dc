"""Package options, global or for a ``with`` block (as ``xarray.set_options``)."""

from __future__ import annotations

from typing import Any

from mapflow_geo.exceptions import FeaturesTooLargeError  # noqa: F401 (re-exported)

#: The options in force. Read them with :func:`get_options`; change them with
#: :class:`set_options`.
OPTIONS: dict[str, Any] = {
    # pieces above which MapflowResult.features refuses to load (None: no limit)
    "max_features_in_memory": 5_000_000,
    # objects a run keeps decoded as it stores them, for res.features (0: none)
    "keep_run_features": 1_000_000,
    # objects per file of a stitched dataset (MapflowResult.to_parquet)
    "partition_features": 100_000,
}


def _positive_or_none(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be a positive int or None, not {value!r}")


def _count(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int ≥ 0, not {value!r}")


def _positive(name: str, value: Any) -> None:
    if value is None:
        raise ValueError(f"{name} must be a positive int, not None")
    _positive_or_none(name, value)


_VALIDATORS = {
    "max_features_in_memory": _positive_or_none,
    "keep_run_features": _count,
    "partition_features": _positive,
}


class set_options:  # noqa: N801 - named as xarray's, used as a function
    """Set options for the rest of the process, or for a ``with`` block.

    Options
    -------
    max_features_in_memory : int or None, default 5,000,000
        :attr:`MapflowResult.features <mapflow_geo.MapflowResult.features>` loads every
        object into one GeoDataFrame (about 1.5 kB per object); above this many stored
        pieces it raises :class:`FeaturesTooLargeError` instead. ``None``: no limit.
        Stats, costs, :meth:`~mapflow_geo.MapflowResult.to_parquet` and
        :meth:`~mapflow_geo.MapflowResult.to_dask` never load the objects.
    keep_run_features : int, default 1,000,000
        A run keeps the objects it stores in memory as it decodes them, up to this many
        (and no more than ``max_features_in_memory``; a run with more keeps none): its
        ``res.features`` is then built from them instead of reading its files back, the
        same frame in a fraction of the time. They take about 0.6 kB each until the
        result is dropped; ``0`` keeps none (a run whose objects are only streamed).
    partition_features : int, default 100,000
        Objects per file of the stitched dataset written by ``to_parquet``; the memory a
        write needs grows with it, not with the run.

    Examples
    --------
    >>> import mapflow_geo
    >>> with mapflow_geo.set_options(max_features_in_memory=None):
    ...     mapflow_geo.get_options()["max_features_in_memory"] is None
    True
    >>> mapflow_geo.get_options()["max_features_in_memory"]
    5000000
    """

    def __init__(self, **kwargs: Any) -> None:
        self.old: dict[str, Any] = {}
        for name, value in kwargs.items():
            if name not in OPTIONS:
                raise ValueError(f"unknown option {name!r}; options are {sorted(OPTIONS)}")
            _VALIDATORS[name](name, value)
        self.old = {name: OPTIONS[name] for name in kwargs}
        OPTIONS.update(kwargs)

    def __enter__(self) -> set_options:
        return self

    def __exit__(self, *exc: Any) -> None:
        OPTIONS.update(self.old)


def get_options() -> dict[str, Any]:
    """A copy of the options in force (see :class:`set_options`)."""
    return dict(OPTIONS)
