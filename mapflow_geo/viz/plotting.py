"""Static maps for reports: matplotlib figures and image files (PNG, SVG, PDF).

Up to :data:`RASTER_THRESHOLD` objects each is drawn as its own patch (a path of its own
in an SVG or PDF). Above it, each class is drawn at once: one compound path of all its
polygons, built with numpy from the coordinates (no shapely object or matplotlib patch
per object), filled by Agg and rasterised at the figure's dpi (``rasterized=True``: an
image inside an SVG or PDF); lines as one collection, points as one scatter. Same
colours, same legend; a million objects in seconds (``benchmarks/maps.py``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from mapflow_geo._args import checked
from mapflow_geo.results.columns import check_column
from mapflow_geo.viz.styles import (
    AOI_COLOR,
    bounds_of,
    class_colors,
    class_labels,
    status_color,
)

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes

    from mapflow_geo.client import MapflowClient
    from mapflow_geo.results import MapflowResult

log = logging.getLogger(__name__)

#: Objects drawn one by one (vector, each its own path in SVG / PDF) up to this; above,
#: each class is drawn at once and rasterised.
RASTER_THRESHOLD = 50_000


def plot_result(
    result: MapflowResult,
    column: str | None = None,
    *,
    ax: matplotlib.axes.Axes | None = None,
    title: str | None = None,
    show_features: bool = True,
    show_tiles: bool | str = "failed",
    show_aois: bool = True,
    legend: bool = True,
    scalebar: bool = True,
    tiles: bool | Any = False,
    figsize: tuple[float, float] = (8.0, 8.0),
    raster_threshold: int = RASTER_THRESHOLD,
    **kwargs: Any,
) -> matplotlib.axes.Axes:
    """A static map of a run (Web Mercator): input area outlines, objects coloured by
    class (or by ``column``, drawn by :meth:`geopandas.GeoDataFrame.plot`), tiles by
    status, a legend, a title and a geodesic scale bar.

    Parameters
    ----------
    result : MapflowResult
    column : str, optional
        Colour the objects by this column of ``result.features`` (``cmap``,
        ``categorical``, ``scheme``, ``vmin``, ``vmax`` and ``legend`` as geopandas).
    ax : matplotlib Axes, optional
        Drawn into; a new figure of ``figsize`` otherwise.
    title : str, optional
        Defaults to a one-line summary (objects, tiles OK, credits).
    show_features, show_aois : bool
        Draw the objects, the input area outlines.
    show_tiles : bool or "failed"
        Draw all tile outlines, none, or only the tiles that did not succeed (default).
    legend, scalebar : bool
    tiles : bool or xyzservices provider
        A basemap under the map, drawn with contextily: only when contextily is
        installed and the tiles can be fetched (off by default; never required).
    **kwargs
        :meth:`GeoDataFrame.plot`'s keywords for the objects (``cmap``, ``color``,
        ``alpha``, ``edgecolor``, ``linewidth``, ``legend_kwds``, ``categorical``…).
    figsize : (float, float)
        Inches, for a new figure.
    raster_threshold : int
        Above this many objects each class is drawn at once and rasterised (see the
        module docs); :data:`RASTER_THRESHOLD` by default.

    Examples
    --------
    >>> ax = res.plot()                                          # doctest: +SKIP
    >>> ax = res.plot(column="area_m2", cmap="magma", legend=True)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    aois = result.aois.to_crs(3857)
    tiles_m = result.tiles.to_crs(3857)
    feats = result.features if show_features else result.features.iloc[:0]
    if column is not None:
        check_column(feats, column)
    handles = _draw_objects(ax, feats, column, legend, raster_threshold, kwargs)
    if show_tiles and len(tiles_m):
        handles += _draw_tiles(ax, tiles_m, only_failed=show_tiles == "failed")
    if show_aois and len(aois):
        handles.insert(0, _draw_aois(ax, aois))
    _frame(ax, aois, tiles_m)
    if tiles:
        _add_basemap(ax, tiles)
    if scalebar:
        add_scalebar(ax)
    if legend and handles:
        _place_legend(ax, handles, column_legend=column is not None)
    ax.set_title(title if title is not None else _summary_title(result, len(feats)))
    return ax


def _draw_objects(
    ax: Any,
    feats: gpd.GeoDataFrame,
    column: str | None,
    legend: bool,
    raster_threshold: int,
    kwargs: dict[str, Any],
) -> list[Any]:
    """Draw the objects: by ``column`` or with the caller's keywords through geopandas,
    else one colour per class (rasterised above ``raster_threshold``); the legend
    handles of the classes."""
    from matplotlib.patches import Patch

    if not len(feats):
        return []
    if column is not None or kwargs:
        kw = {"linewidth": 0.3, "zorder": 2, **kwargs}
        if column is not None:
            kw["legend"] = legend
        big = len(feats) > raster_threshold
        feats.to_crs(3857).plot(column=column, ax=ax, rasterized=big, **kw)
        return []
    handles = []
    labels = class_labels(feats)
    fm = feats.to_crs(3857) if len(feats) <= raster_threshold else None
    for lab, col in class_colors(labels).items():
        sel = (labels == lab).to_numpy()
        if fm is not None:
            fm[sel].plot(ax=ax, color=col, edgecolor=col, linewidth=0.3, zorder=2)
        else:
            draw_rasterized(ax, feats.geometry[sel], col, zorder=2)
        handles.append(Patch(facecolor=col, edgecolor=col, label=f"{lab} ({sel.sum():,})"))
    return handles


def _draw_tiles(ax: Any, tiles_m: gpd.GeoDataFrame, *, only_failed: bool) -> list[Any]:
    """Draw the tile outlines coloured by status (only those not OK when
    ``only_failed``); a legend handle per status."""
    from matplotlib.patches import Patch

    handles = []
    status = tiles_m["status"].fillna("PLANNED").astype(str)
    show = status != "OK" if only_failed else pd.Series(True, index=status.index)
    for s in sorted(status[show].unique()):
        sub = tiles_m[show & (status == s)]
        c = status_color(s)
        sub.plot(ax=ax, facecolor=c + "33", edgecolor=c, linewidth=1.0, zorder=1)
        handles.append(Patch(facecolor=c + "33", edgecolor=c, label=f"tiles {s} ({len(sub)})"))
    return handles


def _draw_aois(ax: Any, aois: gpd.GeoDataFrame) -> Any:
    """Draw the input area outlines; their legend handle."""
    from matplotlib.lines import Line2D

    aois.boundary.plot(ax=ax, color=AOI_COLOR, linewidth=1.4, zorder=3)
    return Line2D([], [], color=AOI_COLOR, linewidth=1.4, label="input areas")


def _frame(ax: Any, aois: gpd.GeoDataFrame, tiles_m: gpd.GeoDataFrame) -> None:
    """Fit the view to the areas and tiles with a margin; no ticks or axis labels."""
    minx, miny, maxx, maxy = bounds_of(aois, tiles_m) if len(aois) else (0, 0, 1, 1)
    if len(aois) or len(tiles_m):
        b = gpd.GeoSeries([shapely.box(minx, miny, maxx, maxy)], crs=4326).to_crs(3857)
        x0, y0, x1, y1 = b.total_bounds
        pad = 0.04 * max(x1 - x0, y1 - y0)
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")


def _place_legend(ax: Any, handles: list[Any], *, column_legend: bool) -> None:
    """The legend of areas, classes and tiles: beside the map when the figure has room,
    else on the axes (or the figure, when geopandas drew a column's legend there)."""
    fig = ax.figure
    if column_legend:  # geopandas drew the column's legend on the axes
        if ax.get_legend() is None and len(fig.axes) == 1:
            ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
        else:
            fig.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
        return
    engine = fig.get_layout_engine()
    if type(engine).__name__ == "ConstrainedLayoutEngine" and len(fig.axes) == 1:
        fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    else:
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)


def _summary_title(result: MapflowResult, n_objects: int) -> str:
    """One line: objects, tiles OK of all, credits."""
    n_ok = int((result.tiles["status"] == "OK").sum()) if len(result.tiles) else 0
    cost = result.processings.get("cost", pd.Series(dtype=float))
    return (
        f"Mapflow: {n_objects:,} objects, {n_ok}/{len(result.tiles)} tiles OK, "
        f"{int(pd.to_numeric(cost, errors='coerce').fillna(0).sum()):,} credits"
    )


@checked
def plot_plan(
    gdf: gpd.GeoDataFrame,
    *,
    plan: gpd.GeoDataFrame | None = None,
    ax: matplotlib.axes.Axes | None = None,
    title: str | None = None,
    legend: bool = True,
    scalebar: bool = True,
    figsize: tuple[float, float] = (8.0, 8.0),
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    client: MapflowClient | None = None,
    model: str | None = None,
    price_per_km2: float | None = None,
    input_errors: str = "raise",
) -> matplotlib.axes.Axes:
    """A static map of a plan (Web Mercator): the input areas and the tiles a run would
    create, one colour per processing, with a legend and a scale bar; the matplotlib
    counterpart of :func:`~mapflow_geo.viz.explore_plan`. Returns the Axes.

    Parameters
    ----------
    gdf : GeoDataFrame
        The input areas (any CRS).
    plan : GeoDataFrame, optional
        A plan from :func:`mapflow_geo.plan`; made from the limits otherwise.
    area_limit_km2, max_aois, client, model, price_per_km2, input_errors
        Passed to :func:`mapflow_geo.plan` when ``plan`` is not given.

    Examples
    --------
    >>> ax = gdf.mapflow.plot_plan(area_limit_km2=5, max_aois=10)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from mapflow_geo.viz._plan import plan_view, processing_colors

    aois, plan = plan_view(
        gdf,
        plan,
        area_limit_km2=area_limit_km2,
        max_aois=max_aois,
        client=client,
        model=model,
        price_per_km2=price_per_km2,
        input_errors=input_errors,
    )
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    aois = aois.to_crs(3857)
    tiles_m = plan.to_crs(3857)
    colors = processing_colors(tiles_m)
    proc = tiles_m["processing"] if "processing" in tiles_m else pd.Series(range(len(tiles_m)))
    if len(tiles_m):
        tiles_m.plot(ax=ax, color=colors, alpha=0.35, edgecolor=colors, linewidth=0.8)
    if len(aois):
        aois.boundary.plot(ax=ax, color=AOI_COLOR, linewidth=1.4, zorder=3)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if scalebar and len(aois):
        add_scalebar(ax)
    n_proc = int(proc.nunique())
    if legend:
        handles = [
            Line2D([], [], color=AOI_COLOR, linewidth=1.4, label="input areas"),
            Patch(facecolor="#999999", alpha=0.35, label=f"{len(tiles_m)} tiles, one colour per "
                  f"processing ({n_proc})"),
        ]  # fmt: skip
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    ax.set_title(title if title is not None else f"Plan: {len(tiles_m)} tiles in {n_proc} "
                 "processings")  # fmt: skip
    return ax


def draw_rasterized(ax: Any, geoms: gpd.GeoSeries, color: str, *, zorder: float = 2) -> None:
    """Draw many geometries in one colour onto an axes in Web Mercator, fast: polygons as
    one compound path (filled, rasterised), lines as one collection, points as one
    scatter, all built from coordinate arrays."""
    from matplotlib.collections import LineCollection, PathCollection

    to_m = pyproj.Transformer.from_crs(geoms.crs or 4326, 3857, always_xy=True)
    values = np.asarray(geoms.values, dtype=object)
    types = shapely.get_type_id(values)
    polys = values[np.isin(types, (3, 6))]
    if len(polys):
        path = _polygon_path(polys, to_m)
        coll = PathCollection([path], facecolors=color, edgecolors="none", linewidths=0)
        _add_collection(ax, coll, path.vertices, zorder)
    lines = values[np.isin(types, (1, 2, 5))]
    if len(lines):
        xy, starts = _parts_coordinates(shapely.get_parts(lines), to_m)
        coll = LineCollection(np.split(xy, starts[1:-1]), colors=color, linewidths=0.8)
        _add_collection(ax, coll, xy, zorder)
    points = values[np.isin(types, (0, 4))]
    if len(points):
        x, y = to_m.transform(*shapely.get_coordinates(points).T)
        ax.scatter(x, y, s=2, color=color, linewidths=0, rasterized=True, zorder=zorder)


def _add_collection(ax: Any, coll: Any, xy: np.ndarray, zorder: float) -> None:
    """Add a rasterised collection; the data limits from the coordinates' bounds (not
    matplotlib's walk over every segment of the path)."""
    coll.set_rasterized(True)
    coll.set_zorder(zorder)
    ax.add_collection(coll, autolim=False)
    ax.update_datalim([xy.min(axis=0), xy.max(axis=0)])
    ax.autoscale_view()


def _parts_coordinates(
    parts: np.ndarray, to_m: pyproj.Transformer
) -> tuple[np.ndarray, np.ndarray]:
    """Projected coordinates of simple geometries (rings, lines) and their start offsets
    (with the total at the end)."""
    xy = shapely.get_coordinates(parts)
    x, y = to_m.transform(xy[:, 0], xy[:, 1])
    starts = np.concatenate([[0], np.cumsum(shapely.get_num_coordinates(parts))])
    return np.column_stack([x, y]), starts


def _polygon_path(polys: np.ndarray, to_m: pyproj.Transformer) -> Any:
    """One matplotlib Path of every ring of ``polys``: exteriors counter-clockwise,
    holes clockwise, so Agg's non-zero fill leaves the holes open."""
    from matplotlib.path import Path as MplPath

    multi = shapely.get_type_id(polys) == 6
    parts = shapely.get_parts(polys) if multi.any() else polys
    if shapely.get_num_interior_rings(parts).any():
        rings = shapely.get_rings(shapely.orient_polygons(parts))
    else:
        rings = parts  # a polygon without holes: its coordinates are its ring's
    xy, starts = _parts_coordinates(rings, to_m)
    codes = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
    codes[starts[:-1]] = MplPath.MOVETO
    codes[starts[1:] - 1] = MplPath.CLOSEPOLY
    return MplPath(xy, codes)


def _add_basemap(ax: Any, basemap: Any) -> None:
    try:
        import contextily
    except ImportError:
        log.info("basemap skipped: contextily is not installed")
        return
    kwargs = {} if basemap is True else {"source": basemap}
    try:
        contextily.add_basemap(ax, crs="EPSG:3857", zorder=0, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a basemap is decoration
        log.warning("basemap skipped: %s", exc)


def _nice_length(metres: float) -> float:
    """The largest 1, 2 or 5 × 10ⁿ not above ``metres``."""
    if metres <= 0:
        return 0.0
    exp = 10 ** math.floor(math.log10(metres))
    return max(m * exp for m in (1, 2, 5) if m * exp <= metres)


def add_scalebar(ax: Any, *, fraction: float = 0.25, loc: str = "lower left") -> None:
    """Draw a geodesic scale bar on an axes in Web Mercator (EPSG:3857) metres.

    Its length is a round number of metres or kilometres about ``fraction`` of the
    axes' width, measured on the WGS84 ellipsoid eastward from the bar's start (so it
    is right at that latitude, where Mercator's scale differs from the centre's).
    """
    import pyproj
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    to_ll = pyproj.Transformer.from_crs(3857, 4326, always_xy=True)
    to_m = pyproj.Transformer.from_crs(4326, 3857, always_xy=True)
    geod = pyproj.Geod(ellps="WGS84")
    bx = x0 + 0.05 * (x1 - x0)
    by = y0 + 0.05 * (y1 - y0) if "lower" in loc else y1 - 0.08 * (y1 - y0)
    lon0, lat0 = to_ll.transform(bx, by)
    lon1, lat1 = to_ll.transform(bx + fraction * (x1 - x0), by)
    _, _, dist = geod.inv(lon0, lat0, lon1, lat1)
    length = _nice_length(dist)
    if not length:
        return
    lon_e, lat_e, _ = geod.fwd(lon0, lat0, 90.0, length)
    ex, _ = to_m.transform(lon_e, lat_e)
    width = ex - bx
    h = 0.012 * (y1 - y0)
    for i in range(2):
        ax.add_patch(
            Rectangle(
                (bx + i * width / 2, by),
                width / 2,
                h,
                facecolor="black" if i == 0 else "white",
                edgecolor="black",
                linewidth=0.8,
                zorder=5,
            )
        )
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(bx + width / 2, by + 1.8 * h, label, ha="center", va="bottom", fontsize=8, zorder=5)


def save_image(
    result: MapflowResult,
    path: str | Path,
    *,
    dpi: float = 150,
    format: str | None = None,
    figsize: tuple[float, float] = (8.0, 8.0),
    **plot_kwargs: Any,
) -> Path:
    """Write :func:`plot_result` to PNG, SVG or PDF (by ``format`` or the extension).

    The image is exactly ``figsize × dpi`` pixels (PNG records the dpi).

    Examples
    --------
    >>> res.to_image("run.png", dpi=200)                         # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "png").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"image format must be png, svg or pdf, not {fmt!r}")
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    try:
        plot_result(result, ax=ax, **plot_kwargs)
        fig.savefig(path, dpi=dpi, format=fmt)
    finally:
        plt.close(fig)
    return path
