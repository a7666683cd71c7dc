"""Maps of change between two results (:func:`mapflow_geo.changes`): a folium map
(:func:`changes_map`) and a static matplotlib figure (:func:`plot_changes`).

Colours are fixed (:data:`CHANGE_COLORS`): new green, removed red, modified orange,
unchanged grey. Unchanged objects are usually most of a change frame; on a folium map of
:data:`LARGE_CHANGES` changes or more they are not drawn one by one but counted on a grid
(a grey cell per place, darker where more stayed unchanged), and a note on the map says
so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from mapflow_geo.results.changes import CHANGE_COLUMNS, CHANGES
from mapflow_geo.viz.explore import (
    DEFAULT_BASEMAPS,
    MAX_FEATURES,
    _add_aois,
    _explore,
    _finish,
    _new_map,
    simplify_tolerance_deg,
)
from mapflow_geo.viz.plotting import add_scalebar
from mapflow_geo.viz.styles import AOI_COLOR, bounds_of

if TYPE_CHECKING:  # pragma: no cover
    import folium
    import matplotlib.axes

log = logging.getLogger(__name__)

#: The colour of each change class.
CHANGE_COLORS: dict[str, str] = {
    "new": "#1a9850",
    "removed": "#d73027",
    "modified": "#fd8d3c",
    "unchanged": "#9e9e9e",
}
#: From this many changes on, a folium map counts unchanged objects on a grid.
LARGE_CHANGES = 100_000

_DRAW_ORDER = ("unchanged", "modified", "removed", "new")  # bottom to top
_POPUP = [c for c in CHANGE_COLUMNS if c != "object_type"]


def changes_map(
    changes: gpd.GeoDataFrame,
    *,
    aois: Any = None,
    max_features: int = MAX_FEATURES,
    large: int = LARGE_CHANGES,
    grid: int = 64,
    detail_zoom: int = 16,
    basemap: str | Sequence[Any] | None = DEFAULT_BASEMAPS,
    width: str | int = "100%",
    height: str | int = 600,
) -> folium.Map:
    """A folium map of changes: new green, removed red, modified orange, unchanged grey,
    one layer per class, with a legend.

    Parameters
    ----------
    changes : GeoDataFrame
        From :func:`mapflow_geo.changes`.
    aois : GeoDataFrame or MapflowResult, optional
        Input areas to outline (``result.aois``).
    max_features : int
        A class with at most this many objects is drawn as it is, with popups (ids,
        dates, areas, IoU); a larger one is simplified for ``detail_zoom`` and drawn on
        canvas without popups.
    large : int
        From this many changes on, unchanged objects are counted on a ``grid`` × ``grid``
        grid over the map instead of drawn.
    basemap, width, height
        As for :func:`mapflow_geo.viz.preview_result`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> ch = mapflow_geo.changes(res_2022, res_2024)                 # doctest: +SKIP
    >>> changes_map(ch, aois=res_2024.aois).save("changes.html")    # doctest: +SKIP
    """
    frame = changes.to_crs(4326) if changes.crs is not None else changes.set_crs(4326)
    areas = _areas(aois)
    n = len(frame)
    cls = frame["change"].astype(str)
    counts = cls.value_counts()
    gridded = n >= large and counts.get("unchanged", 0) > 0
    heavy = any(counts.get(c, 0) > max_features for c in CHANGES)
    bounds = bounds_of(*(f for f in (frame, areas) if f is not None and len(f)))
    m = _new_map(bounds, basemap=basemap, width=width, height=height, prefer_canvas=heavy)
    legend: list[tuple[str, str, str]] = []
    notes: list[str] = []
    if areas is not None and len(areas):
        legend.append(("Input areas", AOI_COLOR, "outline"))
    for name in _DRAW_ORDER:
        sub = frame[(cls == name).to_numpy()]
        if not len(sub):
            continue
        color = CHANGE_COLORS[name]
        if name == "unchanged" and gridded:
            notes.append(_add_grid(m, sub, grid, n, large))
        elif len(sub) <= max_features:
            _add_class(m, sub, name, color)
        else:
            notes.append(_add_simplified(m, sub, name, color, max_features, detail_zoom))
        legend.append((f"{name} ({len(sub):,})", color, "fill"))
    if not n:
        notes.append("No changes.")
    if areas is not None and len(areas):
        _add_aois(m, areas)
    _finish(m, legend=legend, title="Changes", notes=notes)
    return m


def _areas(aois: Any) -> gpd.GeoDataFrame | None:
    frame = getattr(aois, "aois", aois)
    if frame is None:
        return None
    return frame.to_crs(4326) if frame.crs is not None else frame.set_crs(4326)


def _shown(sub: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = sub.copy()
    for col in ("before_date", "after_date"):
        if col in out:
            out[col] = pd.to_datetime(out[col]).dt.strftime("%Y-%m-%d")
    return out


def _add_class(m: folium.Map, sub: gpd.GeoDataFrame, name: str, color: str) -> None:
    shown = _shown(sub).assign(_color=color)
    _explore(
        shown,
        m,
        name=f"{name} ({len(sub):,})",
        fields=[c for c in _POPUP if c in shown],
        color_col="_color",
        style={"fillOpacity": 0.35 if name == "unchanged" else 0.6, "weight": 1},
    )


def _add_simplified(
    m: folium.Map, sub: gpd.GeoDataFrame, name: str, color: str, max_features: int, zoom: int
) -> str:
    geoms = sub.geometry.values
    lat = float(np.nanmean(shapely.get_y(shapely.centroid(geoms[:1000]))))
    tol = simplify_tolerance_deg(lat, zoom)
    simple = shapely.set_precision(
        shapely.simplify(geoms, tol, preserve_topology=True), 1e-6, mode="pointwise"
    )
    frame = gpd.GeoDataFrame(geometry=simple, crs=4326)
    frame[~frame.geometry.is_empty].explore(
        m=m,
        name=f"{name} ({len(sub):,})",
        tooltip=False,
        popup=False,
        highlight=False,
        legend=False,
        style_kwds={"fillOpacity": 0.6, "weight": 1, "color": color, "fillColor": color},
    )
    return (
        f"{len(sub):,} {name} objects simplified at {tol * 111_320:.1f} m and drawn "
        f"without popups (over max_features={max_features:,})."
    )


def _add_grid(m: folium.Map, sub: gpd.GeoDataFrame, grid: int, n: int, large: int) -> str:
    """Unchanged objects counted on a grid: a grey cell per place, darker with more."""
    b = shapely.bounds(sub.geometry.values)
    x, y = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    x0, x1, y0, y1 = x.min(), x.max(), y.min(), y.max()
    dx = max(x1 - x0, 1e-9) / grid
    dy = max(y1 - y0, 1e-9) / grid
    ix = np.minimum(((x - x0) / dx).astype(np.int64), grid - 1)
    iy = np.minimum(((y - y0) / dy).astype(np.int64), grid - 1)
    cells, count = np.unique(iy * grid + ix, return_counts=True)
    cx, cy = cells % grid, cells // grid
    boxes = shapely.box(x0 + cx * dx, y0 + cy * dy, x0 + (cx + 1) * dx, y0 + (cy + 1) * dy)
    frame = gpd.GeoDataFrame({"unchanged": count}, geometry=boxes, crs=4326)
    frame.explore(
        m=m,
        column="unchanged",
        cmap="Greys",
        name=f"unchanged ({len(sub):,}, counted on a grid)",
        tooltip=["unchanged"],
        popup=False,
        legend=False,
        style_kwds={"fillOpacity": 0.5, "weight": 0},
    )
    return (
        f"{len(sub):,} unchanged objects counted on a {grid}×{grid} grid, not drawn "
        f"(the map has {n:,} changes, over large={large:,})."
    )


def plot_changes(
    changes: gpd.GeoDataFrame,
    ax: matplotlib.axes.Axes | None = None,
    *,
    aois: Any = None,
    title: str | None = None,
    unchanged: bool = True,
    legend: bool = True,
    scalebar: bool = True,
    figsize: tuple[float, float] = (8.0, 8.0),
) -> matplotlib.axes.Axes:
    """A static map of changes (Web Mercator): new green, removed red, modified orange,
    unchanged grey (``unchanged=False`` leaves them out), input area outlines, a legend
    with counts, a title and a geodesic scale bar. Returns the Axes.

    Examples
    --------
    >>> ax = plot_changes(ch, aois=res.aois)                         # doctest: +SKIP
    >>> ax.figure.savefig("changes.png", dpi=200)                    # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    frame = changes.to_crs(3857) if changes.crs is not None else changes.set_crs(4326).to_crs(3857)
    cls = frame["change"].astype(str).to_numpy()
    handles: list[Any] = []
    for z, name in enumerate(_DRAW_ORDER):
        sel = cls == name
        if not sel.any() or (name == "unchanged" and not unchanged):
            continue
        c = CHANGE_COLORS[name]
        frame[sel].plot(ax=ax, color=c, edgecolor=c, linewidth=0.3, zorder=2 + z)
        handles.append(Patch(facecolor=c, edgecolor=c, label=f"{name} ({int(sel.sum()):,})"))
    areas = _areas(aois)
    shown = [f for f in (changes, areas) if f is not None and len(f)]
    if areas is not None and len(areas):
        areas.to_crs(3857).boundary.plot(ax=ax, color=AOI_COLOR, linewidth=1.2, zorder=7)
        handles.insert(0, Line2D([], [], color=AOI_COLOR, linewidth=1.2, label="input areas"))
    if shown:
        minx, miny, maxx, maxy = bounds_of(*shown)
        box = gpd.GeoSeries([shapely.box(minx, miny, maxx, maxy)], crs=4326).to_crs(3857)
        x0, y0, x1, y1 = box.total_bounds
        pad = 0.04 * max(x1 - x0, y1 - y0, 1.0)
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if scalebar and shown:
        add_scalebar(ax)
    if legend and handles:
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    if title is None:
        n = pd.Series(cls).value_counts()
        title = "Changes: " + ", ".join(f"{int(n.get(c, 0)):,} {c}" for c in CHANGES)
    ax.set_title(title)
    return ax
