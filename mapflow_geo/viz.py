"""Maps of plans and results: folium previews for notebooks and browsers, matplotlib
figures and image files for reports.

Every map is built with :meth:`geopandas.GeoDataFrame.explore` on a :class:`folium.Map`
whose basemaps come from :mod:`xyzservices`; nothing here writes Leaflet by hand but the
legend and the note boxes (plain HTML).

Colours are fixed, so a map, a figure and a report agree:

* tiles by status (:data:`STATUS_COLORS`: OK green, FAILED red, running orange,
  planned blue);
* objects by class (:func:`class_colors`: the readable class of
  :func:`class_labels`, in sorted order, on matplotlib's ``tab10`` less its green and
  red, then ``tab20``).

Large results
-------------
A Leaflet map draws every object as an SVG path, and a browser tab struggles past a
few tens of thousands. :func:`preview_result` therefore draws up to ``max_features``
objects (default :data:`MAX_FEATURES`) exactly as they are, with popups; above that it
applies ``large=``:

``"simplify"`` (default)
    Geometries are simplified with a tolerance of half a screen pixel at
    ``detail_zoom`` (default 16, ~1 m at mid latitudes, so shapes look unchanged up to
    that zoom), coordinates are rounded to 1e-6° (~0.1 m), popups and tooltips are left
    out, one layer per class, and the map draws on a canvas instead of SVG. Every
    object is still shown.
``"cluster"``
    Each object becomes a point (a point on its surface) in a marker cluster: counts at
    low zoom, single markers when zoomed in. Shapes are not shown.
``"cap"``
    The ``max_features`` largest objects are drawn with full detail; the rest are left
    out.

In every case a note on the map says what was done (``"Showing 100,000 objects,
simplified at 1.2 m …"``), so nobody mistakes a reduced map for the full result.
"""

from __future__ import annotations

import html
import logging
import math
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement, Template

if TYPE_CHECKING:  # pragma: no cover
    import folium
    import matplotlib.axes

    from mapflow_geo.client import MapflowClient
    from mapflow_geo.results import MapflowResult

log = logging.getLogger(__name__)

#: Objects drawn as they are (SVG, popups) before ``large=`` applies.
MAX_FEATURES = 20_000

#: Basemaps offered in the layer control (xyzservices names); the first is shown.
DEFAULT_BASEMAPS = ("OpenStreetMap.Mapnik", "Esri.WorldImagery")

#: Tile colours by processing status.
STATUS_COLORS = {
    "OK": "#1a9850",
    "FAILED": "#d73027",
    "CANCELLED": "#8c510a",
    "REFUSED": "#8c510a",
    "IN_PROGRESS": "#f46d43",
    "AWAITING": "#fdae61",
    "UNPROCESSED": "#fdae61",
    "PLANNED": "#4575b4",
}
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

_LARGE_MODES = ("simplify", "cluster", "cap")
_SECRET_PARAM = re.compile(r"(token|auth|password|passwd|secret|api[_-]?key|^key$)", re.I)


# ----------------------------------------------------------------------------- colours
def class_labels(features: pd.DataFrame) -> pd.Series:
    """The readable class of each object: ``object_type`` plus ``class`` / ``class_id``
    where given (``"buildings:1"``), the same labels as the ``count:`` columns of
    :attr:`MapflowResult.stats <mapflow_geo.results.MapflowResult.stats>`."""
    from mapflow_geo.stats import _class_column

    if len(features) == 0:
        return pd.Series([], index=features.index, dtype=object)
    return _class_column(features)


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

    uniq = sorted({str(x) for x in labels})
    if len(uniq) <= len(_CLASS_PALETTE):
        return {lab: _CLASS_PALETTE[i] for i, lab in enumerate(uniq)}
    base = colormaps["tab20"]
    return {lab: to_hex(base(i % base.N)) for i, lab in enumerate(uniq)}


def status_color(status: Any) -> str:
    """The colour of a tile status (:data:`STATUS_COLORS`, grey for anything else)."""
    return STATUS_COLORS.get(str(status).upper(), OTHER_STATUS_COLOR)


# ----------------------------------------------------------------------------- folium
def preview_plan(
    gdf: gpd.GeoDataFrame,
    *,
    plan: gpd.GeoDataFrame | None = None,
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    client: MapflowClient | None = None,
    model: str | None = None,
    basemap: str | Sequence[Any] | None = DEFAULT_BASEMAPS,
    width: str | int = "100%",
    height: str | int = 600,
    **plan_options: Any,
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
    area_limit_km2, max_aois, client, model, **plan_options
        Passed to :func:`mapflow_geo.tiling.plan` when ``plan`` is not given.
    basemap : str, TileProvider, sequence of them, or None
        xyzservices names or providers; the first is shown, the others are in the layer
        control.
    width, height
        Map size.

    Examples
    --------
    >>> m = gdf.mapflow.preview(area_limit_km2=5, max_aois=10)   # doctest: +SKIP
    >>> m.save("plan.html")                                      # doctest: +SKIP
    """
    from mapflow_geo.tiling import plan as make_plan

    if plan is None:
        plan = make_plan(
            gdf,
            area_limit_km2=area_limit_km2,
            max_aois=max_aois,
            client=client,
            model=model,
            **plan_options,
        )
    aois = gdf.to_crs(4326) if gdf.crs is not None else gdf.set_crs(4326)
    tiles = plan.to_crs(4326)
    m = _new_map(_bounds(aois, tiles), basemap=basemap, width=width, height=height)
    _add_aois(m, aois)
    n_proc = int(tiles["processing"].nunique()) if "processing" in tiles else len(tiles)
    if len(tiles):
        shown = tiles.copy()
        shown["status"] = "PLANNED"
        proc = shown["processing"] if "processing" in shown else pd.Series(range(len(shown)))
        palette = class_colors([f"{int(p):06d}" for p in proc.unique()])
        shown["_color"] = [palette[f"{int(p):06d}"] for p in proc]
        fields = [
            c
            for c in (
                "tile_id",
                "row",
                "processing",
                "area_km2",
                "bbox_area_km2",
                "processing_area_km2",
                "processing_aois",
                "planned_credits",
            )
            if c in shown
        ]
        _explore(
            shown,
            m,
            name=f"Planned tiles ({len(tiles)} in {n_proc} processings)",
            fields=fields,
            color_col="_color",
            style={"fillOpacity": 0.25, "weight": 1.5, "dashArray": "4 3"},
        )
    legend = [("Input areas", AOI_COLOR, "outline")]
    legend.append(
        (f"Tiles, one colour per processing ({n_proc})", STATUS_COLORS["PLANNED"], "fill")
    )
    _finish(m, legend=legend, title="Plan", notes=[])
    return m


def preview_result(
    result: MapflowResult,
    *,
    features: bool = True,
    tiles: bool = True,
    aois: bool = True,
    max_features: int = MAX_FEATURES,
    large: str = "simplify",
    detail_zoom: int = 16,
    layers: Sequence[str] = ("raster", "vector"),
    client: MapflowClient | None = None,
    basemap: str | Sequence[Any] | None = DEFAULT_BASEMAPS,
    width: str | int = "100%",
    height: str | int = 600,
) -> folium.Map:
    """A folium map of a run: input areas, tiles by status, objects by class.

    Parameters
    ----------
    result : MapflowResult
    features, tiles, aois : bool
        Which layers to draw.
    max_features : int
        Objects drawn as they are, with popups; above this ``large`` applies.
    large : {"simplify", "cluster", "cap"}
        What to do with more objects than ``max_features`` (see the module docs):
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
    basemap : str, TileProvider, sequence of them, or None
        xyzservices names or providers; the first is shown.
    width, height
        Map size.

    Returns
    -------
    folium.Map
        Save with ``m.save("preview.html")``; shown inline in notebooks.

    Examples
    --------
    >>> m = res.preview()                                        # doctest: +SKIP
    >>> m = res.preview(max_features=5000, large="cluster")      # doctest: +SKIP
    """
    if large not in _LARGE_MODES:
        raise ValueError(f"large must be one of {_LARGE_MODES}, not {large!r}")
    feats = result.features if features else result.features.iloc[:0]
    n_feats = len(feats)
    is_large = n_feats > max_features
    m = _new_map(
        _bounds(result.aois, result.tiles),
        basemap=basemap,
        width=width,
        height=height,
        prefer_canvas=is_large and large == "simplify",
    )
    legend: list[tuple[str, str, str]] = []
    notes: list[str] = []
    if aois and len(result.aois):
        legend.append(("Input areas", AOI_COLOR, "outline"))
    if tiles and len(result.tiles):
        legend += _add_result_tiles(m, result.tiles)
    if n_feats:
        labels = class_labels(feats)
        colors = class_colors(labels)
        if not is_large:
            _add_features(m, feats, labels, colors)
        else:
            notes.append(
                _add_large_features(m, feats, labels, colors, max_features, large, detail_zoom)
            )
        legend += [(lab, col, "fill") for lab, col in colors.items()]
    elif features:
        notes.append("No objects found.")
    if aois and len(result.aois):
        _add_aois(m, result.aois)  # outlines on top; clicks inside reach the tiles
    if layers:
        if client is None:
            log.info("preview: no client, so Mapflow's raster/vector tile layers are skipped")
        else:
            _add_processing_layers(m, result, client, layers)
    _finish(m, legend=legend, title="Mapflow result", notes=notes)
    return m


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


def _bounds(*frames: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    boxes = [f.to_crs(4326).total_bounds for f in frames if len(f) and f.crs is not None]
    boxes = [b for b in boxes if np.isfinite(b).all()]
    if not boxes:
        return (-180.0, -60.0, 180.0, 75.0)
    arr = np.array(boxes)
    return (arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())


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
        "area": "area, m²",
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
    keep = ("object_type", "class", "class_id", "area", "id", "row", "tile_id", "processing_id")
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
        if "area" in feats:  # Mapflow's own area (m²), else the planar one
            area = pd.to_numeric(feats["area"], errors="coerce").fillna(0).to_numpy()
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


def _add_processing_layers(
    m: folium.Map, result: MapflowResult, client: MapflowClient, kinds: Sequence[str]
) -> None:
    import folium
    from folium.plugins import VectorGridProtobuf

    unknown = set(kinds) - {"raster", "vector"}
    if unknown:
        raise ValueError(f"layers must be 'raster' and/or 'vector', not {sorted(unknown)}")
    secrets = _client_secrets(client)
    raster = folium.FeatureGroup(name="Mapflow imagery", show=False)
    vector = folium.FeatureGroup(name="Mapflow vector tiles", show=False)
    n_r = n_v = 0
    ids = result.processings.get("processing_id", pd.Series(dtype=object)).dropna().unique()
    for pid in ids:
        try:
            proc = client.get_processing(str(pid))
        except Exception as exc:  # noqa: BLE001 - a preview never fails on a lookup
            log.warning("preview: no layers for processing %s: %s", pid, exc)
            continue
        rl = getattr(proc, "raster_layer", None)
        vl = getattr(proc, "vector_layer", None)
        if "raster" in kinds and rl is not None and rl.tile_url:
            url = safe_tile_url(rl.tile_url, secrets)
            if url:
                folium.TileLayer(
                    tiles=url, attr="Mapflow", name=f"imagery {pid}", overlay=True
                ).add_to(raster)
                n_r += 1
        if "vector" in kinds and vl is not None and vl.tile_url:
            url = safe_tile_url(vl.tile_url, secrets)
            if url:
                VectorGridProtobuf(url, name=f"vector {pid}", overlay=True).add_to(vector)
                n_v += 1
    if n_r:
        raster.add_to(m)
    if n_v:
        vector.add_to(m)


def _client_secrets(client: Any) -> list[str]:
    """The credential strings a client holds (to make sure none is written into a map)."""
    out = []
    try:
        auth = client._http.session.headers.get("Authorization", "")
    except AttributeError:
        auth = ""
    for part in str(auth).split():
        if len(part) >= 8:
            out.append(part)
            try:
                import base64

                out += [p for p in base64.b64decode(part).decode().split(":") if len(p) >= 8]
            except Exception:  # noqa: BLE001
                pass
    return out


def safe_tile_url(url: str, secrets: Iterable[str] = ()) -> str | None:
    """A tile URL fit to be written into a map: user info and credential-like query
    parameters removed; ``None`` if a known secret still appears in it.

    Examples
    --------
    >>> safe_tile_url("https://u:p@h.example/t/{z}/{x}/{y}.png?token=abc&uri=s3://b/k")
    'https://h.example/t/{z}/{x}/{y}.png?uri=s3://b/k'
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if not _SECRET_PARAM.search(k)
    ]
    q = urllib.parse.urlencode(query, safe=":/{}")
    out = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, q, parts.fragment))
    out = out.replace("%7B", "{").replace("%7D", "}")
    if any(s and s in out for s in secrets):
        log.warning("preview: a tile URL holds a credential; layer left out")
        return None
    return out


def _finish(
    m: folium.Map, *, legend: list[tuple[str, str, str]], title: str, notes: list[str]
) -> None:
    import folium

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
    notes_html = "".join(f'<div class="mf-note">{html.escape(n)}</div>' for n in notes)
    _BoxControl(
        f"<b>{html.escape(title)}</b>{''.join(rows)}",
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


# ----------------------------------------------------------------------------- matplotlib
def plot_result(
    result: MapflowResult,
    ax: matplotlib.axes.Axes | None = None,
    *,
    title: str | None = None,
    tiles: bool | str = "failed",
    legend: bool = True,
    scalebar: bool = True,
    basemap: bool | Any = False,
    figsize: tuple[float, float] = (8.0, 8.0),
) -> matplotlib.axes.Axes:
    """A static map of a run (Web Mercator): input area outlines, objects coloured by
    class, tiles by status, a legend, a title and a geodesic scale bar.

    Parameters
    ----------
    result : MapflowResult
    ax : matplotlib Axes, optional
        Drawn into; a new figure of ``figsize`` otherwise.
    title : str, optional
        Defaults to a one-line summary (objects, tiles OK, credits).
    tiles : bool or "failed"
        Draw all tile outlines, none, or only the tiles that did not succeed (default).
    legend, scalebar : bool
    basemap : bool or xyzservices provider
        Draw a basemap under the map with contextily: only when contextily is installed
        and the tiles can be fetched (off by default; never required).
    figsize : (float, float)
        Inches, for a new figure.

    Examples
    --------
    >>> ax = res.plot()                                          # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    handles: list[Any] = []
    aois = result.aois.to_crs(3857)
    tiles_m = result.tiles.to_crs(3857)
    feats = result.features
    if len(feats):
        labels = class_labels(feats)
        colors = class_colors(labels)
        fm = feats.to_crs(3857)
        for lab, col in colors.items():
            sel = (labels == lab).values
            fm[sel].plot(ax=ax, color=col, edgecolor=col, linewidth=0.3, zorder=2)
            handles.append(Patch(facecolor=col, edgecolor=col, label=f"{lab} ({sel.sum():,})"))
    if tiles and len(tiles_m):
        status = tiles_m["status"].fillna("PLANNED").astype(str)
        show = status != "OK" if tiles == "failed" else pd.Series(True, index=status.index)
        for s in sorted(status[show].unique()):
            sub = tiles_m[show & (status == s)]
            c = status_color(s)
            sub.plot(ax=ax, facecolor=c + "33", edgecolor=c, linewidth=1.0, zorder=1)
            handles.append(Patch(facecolor=c + "33", edgecolor=c, label=f"tiles {s} ({len(sub)})"))
    if len(aois):
        aois.boundary.plot(ax=ax, color=AOI_COLOR, linewidth=1.4, zorder=3)
        handles.insert(0, Line2D([], [], color=AOI_COLOR, linewidth=1.4, label="input areas"))
    minx, miny, maxx, maxy = _bounds(aois, tiles_m) if len(aois) else (0, 0, 1, 1)
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
    if basemap:
        _add_basemap(ax, basemap)
    if scalebar:
        add_scalebar(ax)
    if legend and handles:
        fig = ax.figure
        engine = fig.get_layout_engine()
        if type(engine).__name__ == "ConstrainedLayoutEngine" and len(fig.axes) == 1:
            fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
        else:
            ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    if title is None:
        n_ok = int((result.tiles["status"] == "OK").sum()) if len(result.tiles) else 0
        cost = result.processings.get("cost", pd.Series(dtype=float))
        title = (
            f"Mapflow: {len(feats):,} objects, {n_ok}/{len(result.tiles)} tiles OK, "
            f"{int(pd.to_numeric(cost, errors='coerce').fillna(0).sum()):,} credits"
        )
    ax.set_title(title)
    return ax


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
