"""Interactive maps of millions of objects: lonboard (deck.gl on GeoArrow, drawn by the
GPU), for results too big for a Leaflet map.

:func:`deck_result` turns a result into a :class:`DeckMap`: one layer per object class,
one per tile status and the input areas, coloured as the folium preview and the static
figures (:mod:`mapflow_geo.viz.styles`), with the same legend. In a notebook it shows
as a lonboard widget; :meth:`DeckMap.save` writes one HTML file with lonboard's own
export, ``lonboard.Map.to_html``, and the legend over it.

Like every page of ``to_html``, the saved file holds the data and lonboard's code, and
when opened loads the Jupyter widget manager, require.js, anywidget and lonboard's
Parquet decoder from CDNs, and the basemap (a MapLibre style) from its server: it needs
a network. The lonboard release is pinned in ``pyproject.toml``; DESIGN.md says why.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from mapflow_geo.exceptions import MapflowWarning, warn
from mapflow_geo.results.columns import check_column
from mapflow_geo.viz.styles import (
    AOI_COLOR,
    bounds_of,
    class_colors,
    class_labels,
    legend_rows_html,
    status_color,
)

if TYPE_CHECKING:  # pragma: no cover
    from mapflow_geo.results import MapflowResult

log = logging.getLogger(__name__)

#: The basemap unless told otherwise: CARTO's Positron without labels, lonboard's default
#: (``lonboard.basemap.CartoStyle.PositronNoLabels``).
DEFAULT_BASEMAP = "https://basemaps.cartocdn.com/gl/positron-nolabels-gl-style/style.json"

#: Object properties carried into the map (shown on click), where the result has them.
FEATURE_FIELDS = ("class", "area_m2", "id", "row", "tile_id", "processing_id")
#: Objects outlined by default (above this, fills only).
OUTLINE_LIMIT = 100_000
_TILE_FIELDS = ("tile_id", "row", "status", "area_km2", "cost", "processing_id")


@dataclass
class DeckLayer:
    """One lonboard layer of a :class:`DeckMap`: its data and its style.

    ``kind`` is ``"polygon"``, ``"path"`` or ``"scatterplot"`` (lonboard's
    ``PolygonLayer``, ``PathLayer``, ``ScatterplotLayer``); ``table`` a GeoArrow table in
    EPSG:4326; ``style`` the layer's keyword arguments (colours as RGBA lists).
    """

    name: str
    kind: str
    table: pa.Table
    style: dict[str, Any]

    def lonboard_class(self) -> type:
        import lonboard

        return {
            "polygon": lonboard.PolygonLayer,
            "path": lonboard.PathLayer,
            "scatterplot": lonboard.ScatterplotLayer,
        }[self.kind]


@dataclass
class DeckMap:
    """A lonboard map of a result: its layers, legend and notes.

    Show it in a notebook (a lonboard widget, with the legend above), or write it as one
    HTML file with :meth:`save` (lonboard's ``Map.to_html``: see the module docs).

    Examples
    --------
    >>> m = deck_result(res)                                     # doctest: +SKIP
    >>> m.save("objects.html")                                   # doctest: +SKIP
    >>> m.to_lonboard()   # the lonboard.Map res.explore() gives  # doctest: +SKIP
    """

    layers: list[DeckLayer]
    bounds: tuple[float, float, float, float]
    legend: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    title: str = "Mapflow result"
    basemap: str | None = DEFAULT_BASEMAP
    height: str | int = 600

    def to_lonboard(self) -> Any:
        """The ``lonboard.Map`` (what ``res.explore()`` returns above its threshold).
        Building it serialises every layer, as lonboard does: seconds for a million
        objects."""
        import lonboard
        from lonboard.basemap import MaplibreBasemap

        layers = [layer.lonboard_class()(table=layer.table, **layer.style) for layer in self.layers]
        return lonboard.Map(
            layers,
            basemap=MaplibreBasemap(style=self.basemap) if self.basemap is not None else None,
            view_state=_view_state(self.bounds, 900, 600),
            height=self.height if isinstance(self.height, str) else f"{self.height}px",
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        import ipywidgets

        legend = ipywidgets.HTML(_legend_box(self.title, self.legend, self.notes, fixed=False))
        return ipywidgets.VBox([legend, self.to_lonboard()])._repr_mimebundle_(**kwargs)

    def to_html(self) -> str:
        """The page :meth:`save` writes: ``lonboard.Map.to_html`` of :meth:`to_lonboard`,
        with the legend and notes over the map."""
        page = self.to_lonboard().to_html(title=self.title)
        legend = _legend_box(self.title, self.legend, self.notes, fixed=True)
        head, body_end, tail = page.rpartition("</body>")
        if not body_end:
            raise RuntimeError("lonboard's Map.to_html wrote no </body>")
        return f"{head}{legend}\n{body_end}{tail}"

    def save(self, path: str | Path) -> Path:
        """Write the map as one HTML file (see :meth:`to_html`)."""
        path = Path(path)
        path.write_text(self.to_html(), encoding="utf-8")
        return path


def deck_result(
    result: MapflowResult,
    *,
    show_features: bool = True,
    show_tiles: bool = True,
    show_aois: bool = True,
    fields: Sequence[str] = FEATURE_FIELDS,
    outlines: bool | None = None,
    tiles: str | Any | None = DEFAULT_BASEMAP,
    height: str | int = 600,
    object_colors: np.ndarray | None = None,
) -> DeckMap:
    """A lonboard (deck.gl) map of a run: input areas, tiles by status, every object by
    class, with no simplification and no cap.

    Parameters
    ----------
    result : MapflowResult
    show_features, show_tiles, show_aois : bool
        Which layers to draw.
    fields : sequence of str
        Object properties carried into the map and shown on click (``"class"`` is the
        readable class of :func:`~mapflow_geo.viz.class_labels`); those the result lacks
        are skipped. Fewer fields make a smaller page.
    outlines : bool, optional
        Outline each polygon (1 px, its class colour) as well as filling it. By default
        only up to :data:`OUTLINE_LIMIT` objects: a million outlines are invisible at
        the zoom that shows them all and cost more to draw than the fills.
    tiles : str or None
        The basemap: a MapLibre style URL (``lonboard.basemap.CartoStyle`` has CARTO's);
        ``None`` for none. Other basemaps (xyzservices names or providers, which
        lonboard does not draw) give the default with a
        :class:`~mapflow_geo.exceptions.MapflowWarning`.
    height : str or int
        The widget's height in a notebook (a saved page fills the window).
    object_colors : array of shape (n, 4), optional
        One RGBA colour (0–255) per object, in the order of ``result.features``, in
        place of the class colours (:func:`lonboard_result` makes them from a column).

    Returns
    -------
    DeckMap
        Shown inline in notebooks; ``.save("map.html")`` writes lonboard's HTML
        export with the legend.

    Examples
    --------
    >>> m = deck_result(res)                                     # doctest: +SKIP
    >>> m.save("objects.html")                                   # doctest: +SKIP
    """
    basemap = _style_url(tiles)
    layers: list[DeckLayer] = []
    legend: list[tuple[str, str, str]] = []
    notes: list[str] = []
    if show_aois and len(result.aois):
        layers.append(_aoi_layer(result.aois))
        legend.append(("Input areas", AOI_COLOR, "outline"))
    if show_tiles and len(result.tiles):
        tile_layers, tile_legend = _tile_layers(result.tiles)
        layers = tile_layers + layers  # under the area outlines
        legend += tile_legend
    feats = result.features if show_features else result.features.iloc[:0]
    if len(feats):
        labels = class_labels(feats)
        colors = class_colors(labels)
        if outlines is None:
            outlines = len(feats) <= OUTLINE_LIMIT
        if object_colors is not None:
            layers += _colored_layers(feats, np.asarray(object_colors), fields, outlines)
        else:
            layers += _feature_layers(feats, labels, colors, fields, outlines)
            counts = labels.value_counts()
            legend += [
                (f"{lab} ({int(counts.get(lab, 0)):,})", c, "fill") for lab, c in colors.items()
            ]
        notes.append(
            f"{len(feats):,} objects drawn by deck.gl (lonboard); click one for its properties."
        )
    elif show_features:
        notes.append("No objects found.")
    return DeckMap(
        layers=layers,
        bounds=bounds_of(result.aois, result.tiles, *([feats] if len(feats) else [])),
        legend=legend,
        notes=notes,
        basemap=basemap,
        height=height,
    )


def lonboard_result(
    result: MapflowResult,
    column: str | None = None,
    *,
    cmap: str | Any = None,
    color: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    categorical: bool | None = None,
    tooltip: bool | Sequence[str] = True,
    style_kwds: dict[str, Any] | None = None,
    m: Any = None,
    **kwargs: Any,
) -> Any:
    """A ``lonboard.Map`` of a run (:func:`deck_result`'s layers), with the keywords of
    :meth:`GeoDataFrame.explore` that have a lonboard meaning: ``column`` (with
    ``cmap``, ``vmin``, ``vmax``, ``categorical``) or one ``color`` for the objects;
    ``tooltip`` (lonboard's tooltip on hover, any true value); ``style_kwds``
    ``fillOpacity``, ``weight`` (px), ``color`` and ``fillColor``; ``m`` (a
    ``lonboard.Map`` the layers are added to); ``tiles``, ``height``, ``show_*``,
    ``fields``, ``outlines`` as :func:`deck_result`. Other keywords are named in a
    :class:`~mapflow_geo.exceptions.MapflowWarning` and left out.

    Examples
    --------
    >>> m = lonboard_result(res, "area_m2", cmap="viridis")     # doctest: +SKIP
    """
    own = {"show_features", "show_tiles", "show_aois", "fields", "outlines", "tiles", "height"}
    ignored = sorted(k for k in kwargs if k not in own)
    if ignored:
        warn(
            f"the lonboard map leaves out {', '.join(ignored)} (folium-only keywords of "
            "GeoDataFrame.explore); pass engine='folium' to use them",
            MapflowWarning,
        )
    kwargs = {k: v for k, v in kwargs.items() if k in own}
    feats = result.features if kwargs.get("show_features", True) else None
    colors = None
    if feats is not None and (column is not None or color is not None or style_kwds):
        check_column(feats, column)
        colors = object_rgba(feats, column, cmap=cmap, color=color, vmin=vmin, vmax=vmax,
                             categorical=categorical, style_kwds=style_kwds)  # fmt: skip
    deck = deck_result(result, object_colors=colors, **kwargs)
    for layer in deck.layers:
        if style_kwds and "weight" in style_kwds and "get_line_width" in layer.style:
            layer.style["get_line_width"] = float(style_kwds["weight"])
    live = deck.to_lonboard()
    live.show_tooltip = bool(tooltip)
    if m is None:
        return live
    m.add_layer(list(live.layers))
    return m


def object_rgba(
    feats: pd.DataFrame,
    column: str | None,
    *,
    cmap: Any = None,
    color: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    categorical: bool | None = None,
    style_kwds: dict[str, Any] | None = None,
) -> np.ndarray:
    """One RGBA colour (uint8) per object: from ``column`` through ``cmap`` (numbers
    scaled to ``vmin``–``vmax``; text, categories and ``categorical=True`` one colour
    per value, as geopandas), else ``color`` / ``style_kwds["fillColor"]``, else by
    class; alpha from ``style_kwds["fillOpacity"]`` (0.6 by default)."""
    import matplotlib as mpl
    from matplotlib.colors import Normalize, to_rgba

    style = style_kwds or {}
    alpha = float(style.get("fillOpacity", 0.6))
    n = len(feats)
    if column is not None:
        values = feats[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not isinstance(
            values.dtype, pd.CategoricalDtype
        )
        if categorical or not numeric:
            cats = pd.Categorical(values.astype(str))
            cm = mpl.colormaps[cmap or "tab20"]
            k = max(len(cats.categories), 1)
            rgba = cm(np.linspace(0, 1, k) if cm.N > 32 else np.arange(k) % cm.N)[cats.codes]
        else:
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            norm = Normalize(
                vmin=np.nanmin(x) if vmin is None else vmin,
                vmax=np.nanmax(x) if vmax is None else vmax,
            )
            rgba = mpl.colormaps[cmap or "viridis"](norm(x))
    else:
        fill = color or style.get("fillColor") or style.get("color")
        if fill is None:
            labels = class_labels(feats)
            palette = class_colors(labels)
            rgba = np.array([to_rgba(palette[lab]) for lab in labels], dtype=float).reshape(n, 4)
        else:
            rgba = np.tile(to_rgba(fill), (n, 1))
    rgba = np.asarray(rgba, dtype=float).reshape(n, 4)
    rgba[:, 3] = alpha
    return np.round(rgba * 255).astype(np.uint8)


# ------------------------------------------------------------------ layers and tables
def _rgba(color: str, alpha: float = 1.0) -> list[int]:
    from matplotlib.colors import to_rgb

    return [round(255 * v) for v in to_rgb(color)] + [round(255 * alpha)]


def _polygon_style(color: str, *, fill: float, width: float, filled: bool = True) -> dict:
    return {
        "get_fill_color": _rgba(color, fill),
        "get_line_color": _rgba(color),
        "filled": filled,
        "stroked": True,
        "get_line_width": width,
        "line_width_units": "pixels",
        "pickable": True,
        "auto_highlight": True,
    }


def _aoi_layer(aois: gpd.GeoDataFrame) -> DeckLayer:
    frame = aois.reset_index(drop=aois.index.name in aois.columns)
    cols = [c for c in frame.columns if c != frame.geometry.name and not str(c).startswith("_")]
    table = geoarrow_table(frame, cols[:8], "polygon")
    style = _polygon_style(AOI_COLOR, fill=0.0, width=2.5, filled=False)
    return DeckLayer(f"Input areas ({len(frame)})", "polygon", table, style)


def _tile_layers(tiles: gpd.GeoDataFrame) -> tuple[list[DeckLayer], list[tuple[str, str, str]]]:
    shown = tiles.copy()
    shown["status"] = shown["status"].fillna("PLANNED").astype(str)
    fields = [c for c in _TILE_FIELDS if c in shown]
    layers, legend = [], []
    for status, n in shown["status"].value_counts().items():
        sub = shown[shown["status"] == status]
        c = status_color(status)
        table = geoarrow_table(sub, fields, "polygon")
        style = _polygon_style(c, fill=0.2, width=1.5)
        layers.append(DeckLayer(f"Tiles {status} ({n})", "polygon", table, style))
        legend.append((f"Tiles {status} ({n})", c, "tile"))
    return layers, legend


def _feature_layers(
    feats: gpd.GeoDataFrame,
    labels: pd.Series,
    colors: dict[str, str],
    fields: Sequence[str],
    outlines: bool,
) -> list[DeckLayer]:
    frame = feats.assign(**{"class": labels.values}) if "class" in fields else feats
    cols = [c for c in fields if c in frame]
    kinds = _kinds(frame.geometry.values)
    layers = []
    for lab, c in colors.items():
        in_class = (labels == lab).to_numpy()
        for kind in ("polygon", "path", "scatterplot"):
            sel = in_class & (kinds == kind)
            if not sel.any():
                continue
            table = geoarrow_table(frame[sel], cols, kind)
            if kind == "polygon":
                style = _polygon_style(c, fill=0.6, width=1.0)
                style["stroked"] = outlines
            elif kind == "path":
                style = {"get_color": _rgba(c), "get_width": 2, "width_units": "pixels"}
            else:
                style = {"get_fill_color": _rgba(c, 0.8), "get_radius": 3, "radius_units": "pixels"}
            style.setdefault("pickable", True)
            layers.append(DeckLayer(f"Objects: {lab} ({int(sel.sum()):,})", kind, table, style))
    return layers


def _colored_layers(
    feats: gpd.GeoDataFrame, rgba: np.ndarray, fields: Sequence[str], outlines: bool
) -> list[DeckLayer]:
    """The objects in one layer per geometry kind, each object in its own colour."""
    labels = class_labels(feats)
    frame = feats.assign(**{"class": labels.values}) if "class" in fields else feats
    cols = [c for c in fields if c in frame]
    kinds = _kinds(frame.geometry.values)
    layers = []
    for kind in ("polygon", "path", "scatterplot"):
        sel = kinds == kind
        if not sel.any():
            continue
        table = geoarrow_table(frame[sel], cols, kind)
        colors = rgba[sel]
        if kind == "polygon":
            style = {**_polygon_style("#000000", fill=0.6, width=1.0), "stroked": outlines}
            style["get_fill_color"] = colors
            style["get_line_color"] = np.concatenate(
                [colors[:, :3], np.full((len(colors), 1), 255, np.uint8)], axis=1
            )
        elif kind == "path":
            style = {"get_color": colors, "get_width": 2, "width_units": "pixels"}
        else:
            style = {"get_fill_color": colors, "get_radius": 3, "radius_units": "pixels"}
        style.setdefault("pickable", True)
        layers.append(DeckLayer(f"Objects ({int(sel.sum()):,})", kind, table, style))
    return layers


def _kinds(geoms: np.ndarray) -> np.ndarray:
    """``"polygon"``, ``"path"``, ``"scatterplot"`` or ``""`` (empty, collections) per geometry."""
    t = shapely.get_type_id(geoms)
    out = np.full(len(geoms), "", dtype=object)
    out[np.isin(t, (3, 6))] = "polygon"
    out[np.isin(t, (1, 2, 5))] = "path"
    out[np.isin(t, (0, 4))] = "scatterplot"
    out[shapely.is_empty(geoms)] = ""
    return out


_EXTENSION = {"polygon": "polygon", "path": "linestring", "scatterplot": "point"}
_MULTI = {"polygon": "multipolygon", "path": "multilinestring", "scatterplot": "multipoint"}


def geoarrow_table(frame: gpd.GeoDataFrame, columns: Sequence[str], kind: str) -> pa.Table:
    """``frame``'s ``columns`` and geometry (EPSG:4326, interleaved GeoArrow) as an Arrow
    table for a lonboard layer of ``kind``.

    Polygons without holes (most objects Mapflow finds) are encoded straight from their
    coordinates, several times faster than :func:`shapely.to_ragged_array`; everything
    else goes through it. Strings become dictionary columns (small in the page).
    """
    geoms = frame.geometry.values
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        geoms = frame.geometry.to_crs(4326).values
    geoms = np.asarray(geoms, dtype=object)
    geom = _geoarrow(geoms, kind)
    data = {c: _arrow_column(frame[c]) for c in columns}
    meta = {
        "ARROW:extension:name": geom.extension_name,
        "ARROW:extension:metadata": json.dumps({"crs": _crs84(), "crs_type": "projjson"}),
    }
    f = pa.field("geometry", geom.array.type, metadata=meta)
    arrays = list(data.values()) + [geom.array]
    return pa.Table.from_arrays(
        arrays, schema=pa.schema([*(pa.field(c, a.type) for c, a in data.items()), f])
    )


@dataclass
class _GeoArrow:
    array: pa.Array
    extension_name: str


def _geoarrow(geoms: np.ndarray, kind: str) -> _GeoArrow:
    types = shapely.get_type_id(geoms)
    if kind == "polygon" and (types == 3).all() and not shapely.get_num_interior_rings(geoms).any():
        coords = shapely.get_coordinates(geoms)
        ring = np.concatenate([[0], np.cumsum(shapely.get_num_coordinates(geoms))])
        arr = pa.ListArray.from_arrays(
            pa.array(np.arange(len(geoms) + 1, dtype=np.int32)),
            pa.ListArray.from_arrays(pa.array(ring.astype(np.int32)), _xy(coords)),
        )
        return _GeoArrow(arr, "geoarrow.polygon")
    gtype, coords, offsets = shapely.to_ragged_array(geoms)
    arr = _xy(coords)
    for off in offsets:  # innermost (coordinates per ring or line) first
        arr = pa.ListArray.from_arrays(pa.array(np.asarray(off, dtype=np.int32)), arr)
    simple = {1: "linestring", 3: "polygon", 0: "point"}.get(int(gtype))
    name = simple if simple is not None else _MULTI[kind]
    return _GeoArrow(arr, f"geoarrow.{name}")


def _xy(coords: np.ndarray) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(coords[:, :2], dtype=np.float64).ravel())
    return pa.FixedSizeListArray.from_arrays(flat, 2)


def _arrow_column(s: pd.Series) -> pa.Array:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return pa.array(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float))
    try:
        arr = pa.array(s.astype(str) if isinstance(s.dtype, pd.CategoricalDtype) else s)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = None
    if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pa.array(s.map(_text).to_numpy(dtype=object), type=pa.string())  # lists, mixed
    return arr.cast(pa.string()).fill_null("").dictionary_encode()


def _text(v: Any) -> str:
    if isinstance(v, list | tuple | np.ndarray):
        return "; ".join(_text(x) for x in v)
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


_CRS84: dict | None = None


def _crs84() -> dict:
    global _CRS84
    if _CRS84 is None:
        import pyproj

        _CRS84 = pyproj.CRS("OGC:CRS84").to_json_dict()
    return _CRS84


# ------------------------------------------------------------------- view and legend
def _style_url(tiles: Any) -> str | None:
    """The MapLibre style URL of a ``tiles`` argument (the first of folium's list)."""
    if isinstance(tiles, list | tuple):
        tiles = tiles[0] if tiles else None
    if tiles is None:
        return None
    if isinstance(tiles, str) and tiles.startswith(("https://", "http://")):
        return tiles
    name = tiles if isinstance(tiles, str) else getattr(tiles, "name", type(tiles).__name__)
    warn(
        f"lonboard draws a MapLibre style URL as its basemap, not {name!r}: "
        "the map uses CARTO's Positron (pass a style URL, or tiles=None)",
        MapflowWarning,
    )
    return DEFAULT_BASEMAP


def _view_state(bounds: tuple[float, float, float, float], width: int, height: int) -> dict:
    """deck.gl's view (512 px world at zoom 0) fitting ``bounds`` in ``width × height``."""
    minx, miny, maxx, maxy = bounds

    def merc(lat: float) -> float:
        lat = max(min(lat, 85.0), -85.0)
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    dx = max(maxx - minx, 1e-9) / 360
    dy = max(merc(maxy) - merc(miny), 1e-9) / (2 * math.pi)
    zoom = math.log2(min(0.9 * width / (512 * dx), 0.9 * height / (512 * dy)))
    lat = math.degrees(2 * math.atan(math.exp((merc(miny) + merc(maxy)) / 2)) - math.pi / 2)
    return {
        "longitude": (minx + maxx) / 2,
        "latitude": lat,
        "zoom": max(0.0, min(zoom, 20.0)),
        "pitch": 0,
        "bearing": 0,
    }


def _legend_box(
    title: str, legend: list[tuple[str, str, str]], notes: list[str], *, fixed: bool
) -> str:
    where = "position:absolute;left:10px;bottom:56px;z-index:10;" if fixed else ""
    out = (
        f'<div class="mf-legend" style="{where}background:rgba(255,255,255,.92);'
        "padding:6px 9px;border-radius:4px;font:12px/1.45 sans-serif;"
        f'box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:320px"><b>{html.escape(title)}</b>'
        f"{legend_rows_html(legend)}</div>"
    )
    if notes:
        where = ""
        if fixed:  # top centre, clear of lonboard's side panel and controls
            where = "position:absolute;left:50%;top:10px;transform:translateX(-50%);z-index:10;"
        out += (
            f'<div class="mf-notes" style="{where}background:#fff8dc;padding:5px 9px;'
            'border:1px solid #e0c060;border-radius:4px;font:12px/1.4 sans-serif;max-width:380px">'
            + "".join(f'<div class="mf-note">{html.escape(n)}</div>' for n in notes)
            + "</div>"
        )
    return out
