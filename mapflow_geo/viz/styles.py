"""Fixed colours, so a map, a figure and a report agree.

* tiles by status (:data:`STATUS_COLORS`, one colour for every service
  :class:`~mapflow_geo.models.Status` and run :class:`~mapflow_geo.run.status.RunStatus`:
  OK green, FAILED red, running orange, planned blue, not created / re-planned greys);
* objects by class (:func:`class_colors`: the readable class of :func:`class_labels`, in
  sorted order, on matplotlib's ``tab10`` less its green and red, then ``tab20``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from mapflow_geo.models import Status
from mapflow_geo.results.stats import class_column
from mapflow_geo.run.status import RunStatus

#: Tile colours by status: every service status and every status of the run's own.
STATUS_COLORS: dict[str, str] = {
    Status.OK: "#1a9850",
    Status.FAILED: "#d73027",
    Status.CANCELLED: "#8c510a",
    Status.REFUNDED: "#b8860b",
    Status.IN_PROGRESS: "#f46d43",
    Status.AWAITING: "#fdae61",
    Status.UNPROCESSED: "#fdae61",
    RunStatus.PLANNED: "#4575b4",
    RunStatus.NOT_CREATED: "#5e5e5e",
    RunStatus.REPLANNED: "#b0b0b0",
    RunStatus.TOO_LARGE_PROCESSING: "#762a83",
    Status.UNKNOWN: "#999999",
}
STATUS_COLORS = {str(getattr(k, "value", k)): v for k, v in STATUS_COLORS.items()}
OTHER_STATUS_COLOR = "#999999"
AOI_COLOR = "#222222"

#: Class colours up to eight classes: ``tab10`` without its green and red (tile statuses).
_CLASS_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)


def class_labels(features: pd.DataFrame) -> pd.Series:
    """The readable class of each object: ``object_type`` plus ``class`` / ``class_id``
    where given (``"buildings:1"``), the same labels as the ``count:`` columns of
    :attr:`MapflowResult.stats <mapflow_geo.results.MapflowResult.stats>`."""
    if len(features) == 0:
        return pd.Series([], index=features.index, dtype=object)
    return class_column(features)


def class_colors(labels: Iterable[str]) -> dict[str, str]:
    """A fixed colour (hex) per class label, by sorted label: ``tab10`` without its green
    and red (kept for tile statuses) up to eight classes, ``tab20`` beyond.

    Examples
    --------
    >>> class_colors(["roads", "buildings"])
    {'buildings': '#1f77b4', 'roads': '#ff7f0e'}
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if isinstance(labels, pd.Series | pd.Index | np.ndarray):
        labels = pd.unique(pd.Series(labels).dropna())  # a million labels, a few classes
    uniq = sorted({str(x) for x in labels})
    if len(uniq) <= len(_CLASS_PALETTE):
        return {lab: _CLASS_PALETTE[i] for i, lab in enumerate(uniq)}
    base = colormaps["tab20"]
    return {lab: to_hex(base(i % base.N)) for i, lab in enumerate(uniq)}


def status_color(status: Any) -> str:
    """The colour of a tile status (:data:`STATUS_COLORS`, grey for anything else)."""
    return STATUS_COLORS.get(str(status).upper(), OTHER_STATUS_COLOR)


def legend_rows_html(legend: Iterable[tuple[str, str, str]]) -> str:
    """Legend rows (HTML): a swatch and an escaped label per ``(label, colour, kind)``,
    ``kind`` being ``"outline"`` (input areas), ``"tile"`` (tiles by status) or
    ``"fill"`` (objects by class) — the same swatches on every interactive map."""
    rows = []
    for label, color, kind in legend:
        if kind == "outline":
            swatch = f"border:2.5px solid {color};background:transparent"
        elif kind == "tile":
            swatch = f"border:1.5px solid {color};background:{color}33"
        else:
            swatch = f"border:1px solid {color};background:{color}99"
        rows.append(
            f'<div class="mf-legend-row"><span style="display:inline-block;width:14px;'
            f'height:11px;margin-right:6px;vertical-align:middle;{swatch}"></span>'
            f"{html.escape(label)}</div>"
        )
    return "".join(rows)


def bounds_of(*frames: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    boxes = [f.to_crs(4326).total_bounds for f in frames if len(f) and f.crs is not None]
    boxes = [b for b in boxes if np.isfinite(b).all()]
    if not boxes:
        return (-180.0, -60.0, 180.0, 75.0)
    arr = np.array(boxes)
    return (arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
