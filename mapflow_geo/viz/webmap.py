"""A web map of a PMTiles archive: one HTML page, MapLibre GL and the pmtiles reader.

:func:`pmtiles_page` writes the page beside an archive of
:func:`mapflow_geo.results.tiles.write_pmtiles`; serving it: ``docs/guide/results.md``,
*Vector tiles for the web*.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapflow_geo.results.tiles import (
    ASSETS_URL,
    LAYER,
    MAX_ZOOM,
    MIN_ZOOM,
    OSM,
    TilesInfo,
    write_result_pmtiles,
)
from mapflow_geo.viz.styles import class_colors, legend_rows_html

if TYPE_CHECKING:
    from mapflow_geo.results import MapflowResult

#: The npm packages the page loads, at the versions it was written for.
MAPLIBRE = ("maplibre-gl", "5.24.1")
PMTILES_JS = ("pmtiles", "4.5.0")
_OSM_ATTRIBUTION = "&copy; OpenStreetMap contributors"
_OUTLINE_ZOOM = 15


def _asset(assets_url: str, package: tuple[str, str], file: str) -> str:
    return f"{assets_url.rstrip('/')}/{package[0]}@{package[1]}/{file}"


def _check_beside(page: Path, archive: Path) -> None:
    if page.resolve().parent != archive.resolve().parent:
        raise ValueError(
            f"page={str(page)!r}: the page must be in the archive's folder {str(archive.parent)!r}"
        )


def _style(info: TilesInfo, archive_name: str, colors: dict[str, str], basemap: str | None):
    match = ["match", ["get", "label"]]
    for label, color in colors.items():
        match += [label, color]
    match.append("#7f7f7f")
    sources: dict[str, Any] = {
        "objects": {
            "type": "vector",
            "url": "pmtiles://" + archive_name,
            "attribution": "Mapflow (Geoalert)",
        }
    }
    layers: list[dict[str, Any]] = [
        {"id": "background", "type": "background", "paint": {"background-color": "#f4f3ef"}}
    ]
    if basemap:
        sources["basemap"] = {
            "type": "raster",
            "tiles": [basemap],
            "tileSize": 256,
            "attribution": _OSM_ATTRIBUTION if basemap == OSM else "",
        }
        layers.append({"id": "basemap", "type": "raster", "source": "basemap"})
    common = {"source": "objects", "source-layer": info.layer}
    layers += [
        {"id": "objects-fill", "type": "fill", **common, "paint": {"fill-color": match}},
        {
            "id": "objects-line",
            "type": "line",
            **common,
            "minzoom": _OUTLINE_ZOOM,
            "paint": {"line-color": "#333333", "line-width": 0.5},
        },
    ]
    return {"version": 8, "sources": sources, "layers": layers}


def pmtiles_page(
    info: TilesInfo,
    path: str | os.PathLike | None = None,
    *,
    assets_url: str = ASSETS_URL,
    basemap: str | None = OSM,
    title: str | None = None,
) -> Path:
    """Write an HTML page showing the archive of ``info`` (serving it:
    ``docs/guide/results.md``, *Vector tiles for the web*).

    Parameters
    ----------
    info : TilesInfo
        What :func:`~mapflow_geo.results.tiles.write_pmtiles` wrote.
    path : str or Path, optional
        The page; ``index.html`` beside the archive by default. It must sit in the
        archive's folder (the page reads the archive by its name).
    assets_url : str
        Base URL of the npm packages (``<assets_url>/maplibre-gl@5.24.1/dist/…``).
    basemap : str or None
        An XYZ raster tile URL under the objects (OpenStreetMap by default), or None.
    title : str, optional
        The page's title (the archive's name by default).

    Returns
    -------
    Path
        The page written.
    """
    archive = Path(info.path)
    page = Path(path) if path is not None else archive.parent / "index.html"
    _check_beside(page, archive)
    colors = class_colors(info.labels)
    legend = [(f"{label} ({info.labels[label]:,})", c, "fill") for label, c in colors.items()]
    config = {
        "style": _style(info, archive.name, colors, basemap),
        "bounds": [list(info.bounds[:2]), list(info.bounds[2:])],
        "layers": ["objects-fill"],
    }
    title = title or archive.stem
    page.write_text(
        _PAGE.format(
            title=html.escape(title),
            css=html.escape(_asset(assets_url, MAPLIBRE, "dist/maplibre-gl.css"), quote=True),
            maplibre=html.escape(_asset(assets_url, MAPLIBRE, "dist/maplibre-gl.js"), quote=True),
            pmtiles=html.escape(_asset(assets_url, PMTILES_JS, "dist/pmtiles.js"), quote=True),
            legend=legend_rows_html(legend),
            config=json.dumps(config).replace("</", "<\\/"),
        ),
        encoding="utf-8",
    )
    return page


def pmtiles_result(
    result: MapflowResult,
    path: str | os.PathLike,
    *,
    page: bool | str | os.PathLike = False,
    min_zoom: int = MIN_ZOOM,
    max_zoom: int = MAX_ZOOM,
    layer: str = LAYER,
    tippecanoe_args: Iterable[str] = (),
    tmp_dir: str | os.PathLike | None = None,
    assets_url: str = ASSETS_URL,
    basemap: str | None = OSM,
) -> TilesInfo:
    """:meth:`MapflowResult.to_pmtiles`: the archive
    (:func:`~mapflow_geo.results.tiles.write_result_pmtiles`) and, with ``page``, the
    web page beside it (:func:`pmtiles_page`: ``index.html``, or the name given)."""
    where = None
    if page is not False and page is not True:
        where = Path(page) if Path(page).parent != Path(".") else Path(path).parent / page
        _check_beside(where, Path(path))  # before any tiling
    info = write_result_pmtiles(
        result,
        path,
        min_zoom=min_zoom,
        max_zoom=max_zoom,
        layer=layer,
        tippecanoe_args=tippecanoe_args,
        tmp_dir=tmp_dir,
    )
    if page is not False:
        pmtiles_page(info, where, assets_url=assets_url, basemap=basemap)
    return info


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{css}">
<script src="{maplibre}"></script>
<script src="{pmtiles}"></script>
<style>
html, body, #map {{ margin: 0; height: 100%; width: 100%; }}
#legend {{ position: absolute; top: 10px; left: 10px; background: #fff; padding: 6px 8px;
  font: 12px/1.4 sans-serif; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); }}
</style>
</head>
<body>
<div id="map"></div>
<div id="legend"><b>{title}</b>{legend}</div>
<script>
(function () {{
  const config = {config};
  const state = window.mapflowTiles = {{ready: false, error: null, map: null}};
  try {{
    const protocol = new pmtiles.Protocol();
    maplibregl.addProtocol("pmtiles", protocol.tile);
    const source = config.style.sources.objects;
    source.url = "pmtiles://" + new URL(source.url.slice(10), window.location.href).href;
    const map = state.map = new maplibregl.Map({{
      container: "map", style: config.style, bounds: config.bounds,
      fitBoundsOptions: {{padding: 20}}, attributionControl: {{compact: false}}
    }});
    map.addControl(new maplibregl.NavigationControl());
    map.on("error", (e) => {{ state.error = String(e.error && e.error.message || e); }});
    map.on("idle", () => {{ state.ready = true; }});
    map.on("click", "objects-fill", (e) => {{
      const p = e.features[0].properties;
      const td = (t) => {{
        const c = document.createElement("td"); c.textContent = t; return c;
      }};
      const rows = Object.keys(p).map((k) => {{
        const tr = document.createElement("tr"); tr.append(td(k), td(String(p[k]))); return tr;
      }});
      const table = document.createElement("table"); table.append(...rows);
      new maplibregl.Popup().setLngLat(e.lngLat).setDOMContent(table).addTo(map);
    }});
    map.on("mouseenter", "objects-fill", () => {{ map.getCanvas().style.cursor = "pointer"; }});
    map.on("mouseleave", "objects-fill", () => {{ map.getCanvas().style.cursor = ""; }});
  }} catch (e) {{ state.error = String(e); }}
}})();
</script>
</body>
</html>
"""
