"""Interactive maps of plans and results: folium previews for notebooks and browsers.

:func:`explore_plan`, :func:`folium_result` and :func:`explore_result` (folium, or
lonboard above a threshold); large results and their note: DESIGN.md, *Maps*.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement, Template

from mapflow_geo._args import checked
from mapflow_geo.results.columns import check_column
from mapflow_geo.tiling import PLAN_COLUMNS
from mapflow_geo.viz._plan import plan_view, processing_colors
from mapflow_geo.viz.deck import lonboard_result
from mapflow_geo.viz.layers import add_processing_layers
from mapflow_geo.viz.styles import (
    AOI_COLOR,
    STATUS_COLORS,
    bounds_of,
    class_colors,
    class_labels,
    legend_rows_html,
    status_color,
)

if TYPE_CHECKING:  # pragma: no cover
    import folium

    from mapflow_geo.client import MapflowClient
    from mapflow_geo.results import MapflowResult

log = logging.getLogger(__name__)

#: Objects drawn as they are (SVG, popups) before ``large=`` applies.
MAX_FEATURES = 20_000

#: Basemaps offered in the layer control (xyzservices names); the first is shown.
DEFAULT_BASEMAPS = ("OpenStreetMap.Mapnik", "Esri.WorldImagery")

_LARGE_MODES = ("simplify", "cluster", "cap")

#: ``explore(engine="auto")`` draws up to this many objects with folium (each as it is,
#: with popups) and more with lonboard (deck.gl: every object, drawn by the GPU).
LONBOARD_THRESHOLD = MAX_FEATURES

_ENGINES = ("auto", "folium", "lonboard")
# folium_result's own options with no lonboard meaning (left out there without a word)
_FOLIUM_ONLY = ("max_features", "large", "detail_zoom", "layers", "client", "width")


@checked
def explore_plan(
    gdf: gpd.GeoDataFrame,
    *,
    plan: gpd.GeoDataFrame | None = None,
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    client: MapflowClient | None = None,
    model: str | None = None,
    tiles: str | Sequence[Any] | None = DEFAULT_BASEMAPS,
    width: str | int = "100%",
    height: str | int = 600,
    price_per_km2: float | None = None,
    input_errors: str = "raise",
    m: folium.Map | None = None,
) -> folium.Map:
    """A folium map of the input areas and the tiles a run would create.

    Tiles are coloured by the processing they are packed into; their popups give the
    tile id, input row, processing, areas and planned credits.

    Parameters
    ----------
    gdf : GeoDataFrame
        The input areas (any CRS).
    plan : GeoDataFrame, optional
        A plan from :func:`mapflow_geo.tiling.plan`; made from the limits otherwise.
    area_limit_km2, max_aois, client, model, price_per_km2, input_errors
        Passed to :func:`mapflow_geo.plan` when ``plan`` is not given.
    tiles : str, TileProvider, sequence of them, or None
        Basemap tiles, as :meth:`GeoDataFrame.explore`'s ``tiles``: xyzservices names or
        providers; the first is shown, the others are in the layer control.
    width, height
        Map size.
    m : folium.Map, optional
        Draw onto this map instead of a new one.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> m = gdf.mapflow.explore_plan(area_limit_km2=5, max_aois=10)   # doctest: +SKIP
    >>> m.save("plan.html")                                      # doctest: +SKIP
    """
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
    planned = plan.to_crs(4326)
    if m is None:
        m = _new_map(bounds_of(aois, planned), basemap=tiles, width=width, height=height)
    _add_aois(m, aois)
    n_proc = int(planned["processing"].nunique()) if "processing" in planned else len(planned)
    if len(planned):
        _add_plan_tiles(m, planned, n_proc)
    legend = [("Input areas", AOI_COLOR, "outline")]
    legend.append(
        (f"Tiles, one colour per processing ({n_proc})", STATUS_COLORS["PLANNED"], "fill")
    )
    _finish(m, legend=legend, title="Plan", notes=[])
    return m


def _add_plan_tiles(m: folium.Map, planned: gpd.GeoDataFrame, n_proc: int) -> None:
    """The planned tiles, one colour per processing, with their plan columns in popups."""
    shown = planned.copy()
    shown["status"] = "PLANNED"
    shown["_color"] = processing_colors(shown)
    columns = dict.fromkeys(["tile_id", *PLAN_COLUMNS])  # the tile id first
    fields = [c for c in columns if c in shown and c != "geometry"]
    _explore(
        shown,
        m,
        name=f"Planned tiles ({len(planned)} in {n_proc} processings)",
        fields=fields,
        color_col="_color",
        style={"fillOpacity": 0.25, "weight": 1.5, "dashArray": "4 3"},
    )


def folium_result(
    result: MapflowResult,
    column: str | None = None,
    *,
    show_features: bool = True,
    show_tiles: bool = True,
    show_aois: bool = True,
    max_features: int = MAX_FEATURES,
    large: str = "simplify",
    detail_zoom: int = 16,
    layers: Sequence[str] = ("raster", "vector"),
    client: MapflowClient | None = None,
    tiles: str | Sequence[Any] | None = DEFAULT_BASEMAPS,
    width: str | int = "100%",
    height: str | int = 600,
    m: folium.Map | None = None,
    **kwargs: Any,
) -> folium.Map:
    """A folium map of a run: input areas, tiles by status, objects by class (or by
    ``column``, drawn by :meth:`geopandas.GeoDataFrame.explore`).

    Parameters
    ----------
    result : MapflowResult
    column : str, optional
        Colour the objects by this column of ``result.features`` (e.g. ``"area_m2"``,
        ``"class_id"``), with geopandas' legend; by class otherwise.
    show_features, show_tiles, show_aois : bool
        Which layers to draw.
    max_features : int
        Objects drawn as they are, with popups; above this ``large`` applies.
    large : {"simplify", "cluster", "cap"}
        What to do with more objects than ``max_features`` (DESIGN.md, *Maps*):
        simplify for ``detail_zoom`` and draw on canvas; clustered points; or only the
        ``max_features`` largest. A note on the map says which.
    detail_zoom : int
        With ``large="simplify"``, the zoom up to which simplification is invisible
        (tolerance: half a pixel at that zoom).
    layers : sequence of {"raster", "vector"}
        Mapflow's own tile layers of each processing (the imagery it ran on; its
        vector tiles), added hidden in the layer control. The result does not store
        their URLs, so they need ``client`` (one ``GET /processings/{id}/v2`` each);
        without a client they are skipped. No credentials are ever written into the
        map: these URLs may need a logged-in Mapflow session to show.
    client : MapflowClient, optional
        Used only to look up the layer URLs.
    tiles : str, TileProvider, sequence of them, or None
        Basemap tiles (:meth:`GeoDataFrame.explore`'s ``tiles``): xyzservices names or
        providers; the first is shown, the others are in the layer control.
    width, height
        Map size.
    m : folium.Map, optional
        Draw onto this map instead of a new one.
    **kwargs
        :meth:`geopandas.GeoDataFrame.explore`'s keywords for the objects layer:
        ``cmap``, ``color``, ``tooltip``, ``popup``, ``style_kwds``, ``highlight``,
        ``categorical``, ``scheme``, ``k``, ``vmin``, ``vmax``, ``legend``,
        ``legend_kwds``, ``tooltip_kwds``, ``popup_kwds``, ``name``… With any of them
        (or ``column``) the objects are drawn by geopandas instead of by class.

    Returns
    -------
    folium.Map
        Save with ``m.save("map.html")``; shown inline in notebooks.

    Examples
    --------
    >>> m = folium_result(res, "area_m2", cmap="viridis", tooltip=["area_m2"])  # doctest: +SKIP
    >>> m = folium_result(res, max_features=5000, large="cluster")    # doctest: +SKIP
    """
    if large not in _LARGE_MODES:
        raise ValueError(f"large must be one of {_LARGE_MODES}, not {large!r}")
    feats = result.features if show_features else result.features.iloc[:0]
    check_column(feats, column)
    n_feats = len(feats)
    is_large = n_feats > max_features
    if m is None:
        m = _new_map(
            bounds_of(result.aois, result.tiles),
            basemap=tiles,
            width=width,
            height=height,
            prefer_canvas=is_large and large == "simplify",
        )
    legend: list[tuple[str, str, str]] = []
    notes: list[str] = []
    if show_aois and len(result.aois):
        legend.append(("Input areas", AOI_COLOR, "outline"))
    if show_tiles and len(result.tiles):
        legend += _add_result_tiles(m, result.tiles)
    if n_feats:
        legend += _add_result_features(
            m, feats, column, kwargs, notes, max_features, large, detail_zoom
        )
    elif show_features:
        notes.append("No objects found.")
    if show_aois and len(result.aois):
        _add_aois(m, result.aois)  # outlines on top; clicks inside reach the tiles
    if layers:
        if client is None:
            log.info("explore: no client, so Mapflow's raster/vector tile layers are skipped")
        else:
            add_processing_layers(m, result, client, layers)
    _finish(m, legend=legend, title="Mapflow result", notes=notes)
    return m


def _add_result_features(
    m: folium.Map,
    feats: gpd.GeoDataFrame,
    column: str | None,
    kwargs: dict[str, Any],
    notes: list[str],
    max_features: int,
    large: str,
    detail_zoom: int,
) -> list[tuple[str, str, str]]:
    """The objects: by geopandas with ``column`` or the caller's keywords, else by class
    (reduced as ``large`` says above ``max_features``, with a note); the class legend."""
    if column is not None or kwargs:
        _add_features_by(m, feats, column, kwargs)
        return []
    labels = class_labels(feats)
    colors = class_colors(labels)
    if len(feats) <= max_features:
        _add_features(m, feats, labels, colors)
    else:
        notes.append(
            _add_large_features(m, feats, labels, colors, max_features, large, detail_zoom)
        )
    return [(lab, col, "fill") for lab, col in colors.items()]


def _add_features_by(
    m: folium.Map, feats: gpd.GeoDataFrame, column: str | None, kwargs: dict[str, Any]
) -> None:
    """The objects drawn by :meth:`GeoDataFrame.explore` with the caller's keywords."""
    shown = feats.to_crs(4326)
    for col in shown.columns:  # lists (e.g. joined ids) as text, as popups show them
        if col != shown.geometry.name and shown[col].dtype == object:
            shown[col] = _popup_values(shown[col])
    kwargs = {"name": f"Objects ({len(shown):,})", **kwargs}
    shown.explore(column=column, m=m, **kwargs)


def explore_result(
    result: MapflowResult,
    column: str | None = None,
    *,
    engine: str = "auto",
    threshold: int | None = None,
    **kwargs: Any,
) -> Any:
    """An interactive map of a run sized to it, as :meth:`GeoDataFrame.explore`:
    folium up to ``threshold`` objects, lonboard (deck.gl on GeoArrow, every object
    drawn by the GPU) above. Returns the library's own map: a :class:`folium.Map` or a
    :class:`lonboard.Map`.

    Parameters
    ----------
    result : MapflowResult
    column : str, optional
        Colour the objects by this column (``cmap``, ``vmin``, ``vmax``,
        ``categorical`` as geopandas); by class otherwise.
    engine : {"auto", "folium", "lonboard"}
        ``"auto"``: folium (:func:`folium_result`) up to ``threshold`` objects, lonboard
        (:func:`~mapflow_geo.viz.deck.lonboard_result`) above, or folium with its
        ``large=`` handling when lonboard is not installed.
    threshold : int, optional
        Objects up to which ``"auto"`` picks folium; :data:`LONBOARD_THRESHOLD` (20,000,
        where the folium map stops drawing every object as it is) by default.
    **kwargs
        :func:`folium_result`'s options and :meth:`GeoDataFrame.explore`'s keywords
        (``cmap``, ``tooltip``, ``popup``, ``style_kwds``, ``m``, ``tiles``, ``width``,
        ``height``…) for folium. For lonboard the matching ones apply (``column``,
        ``cmap``, ``vmin``, ``vmax``, ``categorical``, ``color``, ``tooltip``,
        ``style_kwds`` ``fillOpacity``/``weight``/``color``/``fillColor``, ``tiles``,
        ``height``, ``m`` a ``lonboard.Map``, ``show_*``); the others are named in a
        :class:`~mapflow_geo.exceptions.MapflowWarning` and left out.

    Returns
    -------
    folium.Map or lonboard.Map

    Examples
    --------
    >>> m = res.explore()                                        # doctest: +SKIP
    >>> m = res.explore(column="area_m2", cmap="viridis", tooltip=["class_id"])  # doctest: +SKIP
    >>> m.save("result.html")                                    # doctest: +SKIP
    """
    if engine not in _ENGINES:
        raise ValueError(f"engine must be one of {_ENGINES}, not {engine!r}")
    limit = LONBOARD_THRESHOLD if threshold is None else int(threshold)
    if engine == "auto":
        n = len(result.features) if kwargs.get("show_features", True) else 0
        engine = "folium"
        if n > limit:
            if _has_lonboard():
                engine = "lonboard"
            else:
                log.info(
                    "explore: %s objects but lonboard is not installed "
                    "(pip install 'mapflow-geo[viz]'); folium with large=%r",
                    f"{n:,}",
                    kwargs.get("large", "simplify"),
                )
    if engine == "lonboard":
        if not _has_lonboard():
            raise ImportError("engine='lonboard' needs lonboard: pip install 'mapflow-geo[viz]'")
        kwargs = {k: v for k, v in kwargs.items() if k not in _FOLIUM_ONLY}
        return lonboard_result(result, column, **kwargs)
    return folium_result(result, column, **kwargs)


def _has_lonboard() -> bool:
    try:
        import lonboard  # noqa: F401
    except ImportError:
        return False
    return True


def _new_map(
    bounds: tuple[float, float, float, float],
    *,
    basemap: str | Sequence[Any] | None,
    width: str | int,
    height: str | int,
    prefer_canvas: bool = False,
) -> folium.Map:
    import folium

    _require_explore()
    minx, miny, maxx, maxy = bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        width=width,
        height=height,
        control_scale=True,
        prefer_canvas=prefer_canvas,
    )
    for i, provider in enumerate(_basemaps(basemap)):
        folium.TileLayer(
            tiles=provider.build_url(scale_factor="{r}"),
            attr=provider.html_attribution,
            name=provider.name,
            max_zoom=provider.get("max_zoom", 19),
            overlay=False,
            show=i == 0,
        ).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def _basemaps(basemap: str | Sequence[Any] | None) -> list[Any]:
    import xyzservices

    if basemap is None:
        return []
    items = [basemap] if isinstance(basemap, str | xyzservices.TileProvider) else basemap
    out = []
    for item in items:
        out.append(xyzservices.providers.query_name(item) if isinstance(item, str) else item)
    return out


def _require_explore() -> None:
    try:
        import mapclassify  # noqa: F401  (GeoDataFrame.explore imports it)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "maps need geopandas' explore dependencies: pip install 'mapflow-geo[viz]'"
        ) from exc


def _explore(
    gdf: gpd.GeoDataFrame,
    m: folium.Map,
    *,
    name: str,
    fields: list[str],
    color_col: str,
    style: dict,
    popup: bool = True,
    tooltip: list[str] | bool = False,
) -> None:
    """``gdf.explore`` onto ``m``, one fixed colour per row from ``color_col``;
    popup fields as readable, HTML-escaped strings."""
    shown = gpd.GeoDataFrame(
        {f: _popup_values(gdf[f]) for f in fields},
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    ).to_crs(4326)
    colors = dict(zip(range(len(gdf)), gdf[color_col].tolist(), strict=True))
    shown["_i"] = range(len(shown))

    def style_function(feature: dict) -> dict:
        c = colors[feature["properties"]["_i"]]
        return {"color": c, "fillColor": c}

    shown.explore(
        m=m,
        name=name,
        popup=fields if popup else False,
        tooltip=tooltip,
        popup_kwds={"aliases": [_alias(f) for f in fields]} if popup else {},
        style_kwds={**style, "style_function": style_function},
        highlight_kwds={"fillOpacity": min(1.0, style.get("fillOpacity", 0.3) + 0.3)},
        legend=False,
    )


def _alias(field: str) -> str:
    return {
        "tile_id": "tile",
        "area_km2": "area, km²",
        "bbox_area_km2": "bbox area, km²",
        "processing_area_km2": "processing area, km²",
        "processing_aois": "polygons in processing",
        "planned_credits": "planned credits",
        "cost": "credits",
        "processing_id": "processing id",
        "messages": "error",
        "area_m2": "area, m²",
        "object_type": "type",
    }.get(field, field)


def _popup_values(s: pd.Series) -> list[str]:
    """Readable, HTML-escaped text per value (lists joined, floats rounded)."""

    def one(v: Any) -> str:
        if isinstance(v, list | tuple | np.ndarray):
            return "; ".join(one(x) for x in v) or "—"
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return "—"
        if isinstance(v, float | np.floating):
            return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
        return html.escape(str(v))

    return [one(v) for v in s.tolist()]


def _add_aois(m: folium.Map, aois: gpd.GeoDataFrame) -> None:
    frame = aois.reset_index(drop=aois.index.name in aois.columns)
    fields = [c for c in frame.columns if c != frame.geometry.name and not c.startswith("_")]
    fields = fields[:8]
    frame = frame.assign(_color=AOI_COLOR)
    # outline only, so clicks inside reach the tiles below
    _explore(
        frame,
        m,
        name=f"Input areas ({len(frame)})",
        fields=fields,
        color_col="_color",
        style={"fill": False, "weight": 2.5},
    )


def _add_result_tiles(m: folium.Map, tiles: gpd.GeoDataFrame) -> list[tuple[str, str, str]]:
    shown = tiles.copy()
    shown["status"] = shown["status"].fillna("PLANNED").astype(str)
    shown["_color"] = [status_color(s) for s in shown["status"]]
    fields = [
        c
        for c in ("tile_id", "row", "status", "area_km2", "cost", "messages", "processing_id")
        if c in shown
    ]
    counts = shown["status"].value_counts()
    _explore(
        shown,
        m,
        name="Tiles: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
        fields=fields,
        color_col="_color",
        style={"fillOpacity": 0.2, "weight": 1.5},
    )
    return [(f"Tiles {s} ({n})", status_color(s), "tile") for s, n in counts.items()]


def _feature_fields(feats: pd.DataFrame) -> list[str]:
    keep = ("object_type", "class", "class_id", "area_m2", "id", "row", "tile_id", "processing_id")
    return [c for c in keep if c in feats]


def _add_features(
    m: folium.Map, feats: gpd.GeoDataFrame, labels: pd.Series, colors: dict[str, str]
) -> None:
    shown = feats.assign(_color=labels.map(colors).values)
    _explore(
        shown,
        m,
        name=f"Objects ({len(shown):,})",
        fields=_feature_fields(shown),
        color_col="_color",
        style={"fillOpacity": 0.6, "weight": 1},
    )


def simplify_tolerance_deg(lat: float, zoom: int) -> float:
    """Half a Web-Mercator screen pixel at ``zoom`` and latitude ``lat``, in degrees of
    latitude (the simplification tolerance of ``large="simplify"``).

    Examples
    --------
    >>> round(simplify_tolerance_deg(0.0, 16) * 111_320, 2)   # metres
    1.19
    """
    metres = 0.5 * 156_543.03392 * math.cos(math.radians(lat)) / 2**zoom
    return metres / 111_320.0


def _add_large_features(
    m: folium.Map,
    feats: gpd.GeoDataFrame,
    labels: pd.Series,
    colors: dict[str, str],
    max_features: int,
    large: str,
    detail_zoom: int,
) -> str:
    import folium
    from folium.plugins import FastMarkerCluster

    n = len(feats)
    geoms = feats.geometry.to_crs(4326).values
    if large == "cap":
        if "area_m2" in feats:  # Mapflow's own area, else the planar one
            area = pd.to_numeric(feats["area_m2"], errors="coerce").fillna(0).to_numpy()
        else:
            area = shapely.area(geoms)
        keep = np.sort(np.argsort(-area, kind="stable")[:max_features])
        sub = feats.iloc[keep]
        _add_features(m, sub, labels.iloc[keep], colors)
        return (
            f"Showing the {len(sub):,} largest of {n:,} objects "
            f"(max_features={max_features:,}; large='cap')."
        )
    if large == "cluster":
        pts = shapely.point_on_surface(geoms)
        xy = np.round(np.column_stack([shapely.get_y(pts), shapely.get_x(pts)]), 6)
        group = folium.FeatureGroup(name=f"Objects ({n:,}, clustered points)")
        FastMarkerCluster(xy.tolist()).add_to(group)
        group.add_to(m)
        return (
            f"{n:,} objects shown as clustered points; zoom in to see single ones "
            f"(over max_features={max_features:,}; large='cluster')."
        )
    lat = float(np.nanmean(shapely.get_y(shapely.centroid(geoms[:1000])))) if n else 0.0
    tol = simplify_tolerance_deg(lat, detail_zoom)
    simple = shapely.simplify(geoms, tol, preserve_topology=True)
    simple = shapely.set_precision(simple, 1e-6, mode="pointwise")
    frame = gpd.GeoDataFrame({"class": labels.values}, geometry=simple, crs=4326)
    frame = frame[~frame.geometry.is_empty]
    # one GeoJSON layer per class: a fixed style each, no per-feature style table
    for lab, sub in frame.groupby("class", sort=True):
        c = colors[lab]
        sub.explore(
            m=m,
            name=f"Objects: {lab} ({len(sub):,})",
            tooltip=False,  # 100k bound tooltips cost more than the drawing
            popup=False,
            style_kwds={"fillOpacity": 0.6, "weight": 1, "color": c, "fillColor": c},
            highlight=False,
            legend=False,
        )
    metres = tol * 111_320
    return (
        f"{n:,} objects, simplified at {metres:.1f} m (invisible up to zoom {detail_zoom}) "
        f"and drawn on canvas; no popups (over max_features={max_features:,}; "
        "large='simplify')."
    )


def _finish(
    m: folium.Map, *, legend: list[tuple[str, str, str]], title: str, notes: list[str]
) -> None:
    import folium

    notes_html = "".join(f'<div class="mf-note">{html.escape(n)}</div>' for n in notes)
    _BoxControl(
        f"<b>{html.escape(title)}</b>{legend_rows_html(legend)}",
        position="bottomleft",
        css_class="mf-legend",
        style="background:rgba(255,255,255,.92);padding:6px 9px;border-radius:4px;"
        "font:12px/1.45 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:320px",
    ).add_to(m)
    if notes_html:
        _BoxControl(
            notes_html,
            position="topright",
            css_class="mf-notes",
            style="background:#fff8dc;padding:5px 9px;border:1px solid #e0c060;"
            "border-radius:4px;font:12px/1.4 sans-serif;max-width:380px",
        ).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)


class _BoxControl(MacroElement):
    """A Leaflet control holding a fixed HTML box (legend, notes)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
            div.setAttribute("style", {{ this.style|tojson }});
            div.innerHTML = {{ this.content|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, content: str, *, position: str, css_class: str, style: str) -> None:
        super().__init__()
        self._name = "BoxControl"
        self.content = content
        self.position = position
        self.css_class = css_class
        self.style = style
