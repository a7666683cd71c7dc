"""Maps, figures and tables of results (mapflow_geo.viz, mapflow_geo.tables): content
checked sensibly, not pixel by pixel. The real-browser check is tests/browser."""

import base64
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from support.sample import failed_tiles_run

import mapflow_geo  # noqa: F401
from mapflow_geo import sim, viz
from mapflow_geo.results import MapflowResult


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A result with failed tiles and five building classes, and its simulator's
    processing layers (looked up while the simulator runs)."""
    with failed_tiles_run(tmp_path_factory.mktemp("run")) as (gdf, res, s):
        client = s.client()
        with_layers = res.explore(client=client).get_root().render()
        token = s.token
    return gdf, res, with_layers, token


#: the popup fields of a planned tile, in order
PLAN_POPUP = [
    "tile",
    "row",
    "processing",
    "area, km²",
    "bbox area, km²",
    "processing area, km²",
    "polygons in processing",
    "planned credits",
]


def _html(m) -> str:
    return m.get_root().render()


def test_result_map_content(run):
    _, res, with_layers, token = run
    html = _html(res.explore())
    failed = res.tiles[res.tiles["status"] == "FAILED"]
    assert len(failed)
    for tid in res.tiles["tile_id"]:
        assert tid in html
    # readable error (HTML-escaped as the popup shows it)
    assert failed["messages"].iloc[0][0][:30] in html
    assert "L.control.layers" in html
    assert "fitBounds" in html
    assert "Tiles FAILED" in html and "buildings:101" in html
    assert "tile.openstreetmap.org" in html  # xyzservices basemap
    # without a client Mapflow's layers are skipped; with one they are added, hidden
    assert "app.mapflow.ai" not in html
    # (the simulator serves both from its own host, as /tiles/<layer>/{z}/{x}/{y}.<ext>)
    assert "{z}/{x}/{y}.png" in with_layers and "{z}/{x}/{y}.pbf" in with_layers
    assert token not in with_layers and token not in html
    assert "Authorization" not in with_layers


def test_map_layer_switches(run):
    _, res, _, _ = run
    html = _html(res.explore(show_features=False, show_tiles=False, tiles=None))
    assert res.tiles["tile_id"].iloc[0] not in html
    assert "tile.openstreetmap.org" not in html
    with pytest.raises(ValueError, match="large"):
        res.explore(large="nope")


def test_plan_map(run):
    gdf, _, _, _ = run
    plan = gdf.mapflow.plan(area_limit_km2=5, max_aois=10)
    html = _html(gdf.mapflow.explore_plan(area_limit_km2=5, max_aois=10))
    for tid in plan["tile_id"]:
        assert tid in html
    # each tile's popup names its fields: tile id, input row, processing, areas, credits
    popups = [json.loads(a) for a in re.findall(r"let aliases = (\[.*?\]);", html)]
    assert PLAN_POPUP in popups, popups


def _big_result(res: MapflowResult, n: int) -> MapflowResult:
    """``n`` small squares inside the first AOI, as objects of two classes."""
    aoi = res.aois.geometry.iloc[0]
    minx, miny, maxx, maxy = aoi.bounds
    rng = np.random.default_rng(0)
    x = rng.uniform(minx, maxx, n)
    y = rng.uniform(miny, maxy, n)
    d = 1e-4
    geoms = shapely.box(x, y, x + d * rng.uniform(0.3, 1, n), y + d * rng.uniform(0.3, 1, n))
    feats = gpd.GeoDataFrame(
        {
            "object_type": "buildings",
            "class_id": np.where(np.arange(n) % 3 == 0, "1", "2"),
            "area": np.arange(n) + 1,
            "row": res.aois.index[0],
            "tile_id": res.tiles["tile_id"].iloc[0],
            "processing_id": "p",
        },
        geometry=geoms,
        crs=4326,
    )
    return MapflowResult(
        features=feats, tiles=res.tiles, aois=res.aois, processings=res.processings
    )


@pytest.mark.parametrize("large", ["simplify", "cluster", "cap"])
def test_large_results(run, large):
    _, res, _, _ = run
    big = _big_result(res, 3000)
    m = big.explore(max_features=1000, large=large)
    html = _html(m)
    assert "max_features=1,000" in html  # the visible note
    if large == "simplify":
        assert '"preferCanvas": true' in html
        assert "simplified at" in html
        assert html.count('"type": "Feature"') >= 3000
    elif large == "cluster":
        assert "markerClusterGroup" in html
        assert "clustered points" in html
    else:
        assert "largest of 3,000" in html
        # only the 1000 largest objects (by area) are drawn
        assert '"area_m2": "3,000"' in html
        assert '"area_m2": "1.000"' not in html


def test_small_results_are_drawn_whole(run):
    _, res, _, _ = run
    html = _html(res.explore(tiles=None))
    assert "max_features" not in html
    assert res.features["id"].iloc[-1] in html


def test_simplify_tolerance():
    assert viz.simplify_tolerance_deg(0, 16) * 111_320 == pytest.approx(1.194, abs=1e-3)
    assert viz.simplify_tolerance_deg(60, 16) == pytest.approx(
        viz.simplify_tolerance_deg(0, 16) / 2, rel=1e-9
    )


def test_safe_tile_url():
    url = "https://user:pw@h.example/t/{z}/{x}/{y}.png?access_token=s3cr3t&uri=s3://b/k"
    assert viz.safe_tile_url(url) == "https://h.example/t/{z}/{x}/{y}.png?uri=s3://b/k"
    assert viz.safe_tile_url("https://h.example/SECRETVALUE/{z}", ["SECRETVALUE"]) is None


def test_class_colors_fixed_and_distinct_from_status():
    colors = viz.class_colors(["b", "a", "c"])
    assert list(colors) == ["a", "b", "c"]
    assert set(colors.values()).isdisjoint(viz.STATUS_COLORS.values())
    many = viz.class_colors([str(i) for i in range(12)])
    assert len(set(many.values())) == 12


# ----------------------------------------------------------------------------- images
def _hex_rgb(h: str) -> np.ndarray:
    return np.array([int(h[i : i + 2], 16) for i in (1, 3, 5)])


def test_png_export(run, tmp_path):
    from PIL import Image

    _, res, _, _ = run
    path = res.to_image(tmp_path / "map.png", dpi=100, figsize=(6, 5))
    img = Image.open(path)
    assert img.size == (600, 500)
    assert img.info["dpi"] == pytest.approx((100, 100), abs=0.5)
    px = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    assert len(np.unique(px, axis=0)) > 50  # not blank
    assert (px != 255).any(axis=1).mean() > 0.05
    labels = viz.class_labels(res.features)
    for color in viz.class_colors(labels).values():
        near = np.abs(px - _hex_rgb(color)).max(axis=1) <= 12
        assert near.sum() >= 20, color
    # failed tiles outlined in the FAILED colour
    near = np.abs(px - _hex_rgb(viz.STATUS_COLORS["FAILED"])).max(axis=1) <= 12
    assert near.sum() >= 50


def test_png_dpi_scales(run, tmp_path):
    from PIL import Image

    _, res, _, _ = run
    img = Image.open(res.to_image(tmp_path / "hi.png", dpi=200, figsize=(4, 3)))
    assert img.size == (800, 600)


def test_svg_and_pdf_export(run, tmp_path):
    _, res, _, _ = run
    svg = res.to_image(tmp_path / "map.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert svg.count("<path") > 100
    assert "km" in svg  # the scale bar label (text as paths or text)
    pdf = res.to_image(tmp_path / "map.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 5000
    with pytest.raises(ValueError, match="png, svg or pdf"):
        res.to_image(tmp_path / "map.gif")


def test_plot_into_given_axes(run):
    import matplotlib.pyplot as plt

    _, res, _, _ = run
    fig, axes = plt.subplots(1, 2)
    try:
        ax = res.plot(ax=axes[1], show_tiles=True, title="mine", scalebar=False)
        assert ax is axes[1]
        assert ax.get_title() == "mine"
        assert ax.get_legend() is not None
        assert axes[0].get_title() == ""
    finally:
        plt.close(fig)


def test_scalebar_length_is_geodesic():
    import matplotlib.pyplot as plt
    import pyproj

    fig, ax = plt.subplots()
    try:
        t = pyproj.Transformer.from_crs(4326, 3857, always_xy=True)
        x0, y0 = t.transform(37.5, 55.7)
        x1, y1 = t.transform(37.7, 55.8)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        viz.add_scalebar(ax)
        label = [t.get_text() for t in ax.texts][0]
        value = float(label.split()[0]) * (1000 if label.endswith("km") else 1)
        bar = sum(p.get_width() for p in ax.patches)
        lon0, lat0 = pyproj.Transformer.from_crs(3857, 4326, always_xy=True).transform(
            ax.patches[0].get_x(), ax.patches[0].get_y()
        )
        lon1, lat1 = pyproj.Transformer.from_crs(3857, 4326, always_xy=True).transform(
            ax.patches[0].get_x() + bar, ax.patches[0].get_y()
        )
        dist = pyproj.Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)[2]
        assert dist == pytest.approx(value, rel=1e-3)
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- tables
def test_tables(run, tmp_path):
    _, res, _, _ = run
    md = res.costs_table("markdown")
    lines = md.splitlines()
    assert lines[0].startswith("| row | area, km² |")
    assert "total" not in md  # one row per input row, totals outside the table
    assert len(lines) == len(res.aois) + 2
    total = int(res.processings["cost"].sum())
    styler = res.costs_table()
    html = styler.to_html()
    assert "Credits per input row" in html and f"total: {total:,} charged" in html
    stats_md = res.stats_table("markdown", tmp_path / "stats.md")
    assert (tmp_path / "stats.md").read_text() == stats_md
    assert "%" in stats_md  # coverage as a percentage
    res.costs_table("csv", tmp_path / "costs.csv")
    back = pd.read_csv(tmp_path / "costs.csv", index_col=0)
    assert back["charged_credits"].sum() == pytest.approx(total)
    assert "<table" in res._repr_html_()
    with pytest.raises(ValueError):
        res.costs_table("xlsx")


def test_markdown_escapes_pipes():
    from mapflow_geo.results.tables import to_markdown

    df = pd.DataFrame({"name": ["a|b"]}, index=pd.Index(["x"], name="row"))
    assert "a\\|b" in to_markdown(df)
    assert re.match(r"\| row \| name \|", to_markdown(df))


@pytest.mark.parametrize("leaky", [False, True])
def test_saved_map_leaves_out_tile_layers_holding_the_token(tmp_path, leaky):
    """The simulator's hostile ``tile_url_token_in_path`` puts the account's token in the
    path of every layer URL (no user-info, no credential parameter to strip): the
    preview's guard, fed with every form of the client's token, leaves those layers out of
    the saved map; without the option the same layers are in it."""
    gdf = gpd.GeoDataFrame(geometry=[shapely.box(30.0, 50.0, 30.02, 50.015)], crs=4326)
    with sim.serve(processing_seconds=0, tile_url_token_in_path=leaky) as server:
        client = server.client()
        res = gdf.mapflow.process(
            "buildings",
            client=client,
            run_dir=tmp_path / "run",
            progress=False,
            poll_interval=0.2,
            min_poll_interval=0.05,
        )
        path = tmp_path / "map.html"
        res.explore(client=client).save(str(path))
        secrets = client._secrets()
        base = server.url.rstrip("/")
    html = path.read_text()
    assert secrets and all(s not in html for s in secrets)
    layers = re.findall(re.escape(base.replace("/rest", "")) + r"[^\"' ]*/tiles/[^\"' ]*", html)
    if leaky:
        assert layers == [], layers  # left out, not written with the token
    else:
        assert layers, "the simulator's layers should be on the map"


# ----------------------------------------------------------------- lonboard (viz.deck)
def _deck_state(html: str) -> dict:
    """Every widget's model in a saved page (ipywidgets' embed state, lonboard's export)."""
    m = re.search(
        r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', html, re.S
    )
    return json.loads(m.group(1))["state"]


def _deck_buffers(model: dict) -> dict[tuple, pa.Table]:
    """A model's binary traits (lonboard writes each as Parquet), by trait path."""
    return {
        tuple(b["path"]): pq.read_table(pa.BufferReader(base64.b64decode(b["data"])))
        for b in model.get("buffers", [])
    }


def _deck_layers(html: str) -> list[tuple[dict, int]]:
    """Each layer model's state and its number of rows."""
    out = []
    for model in _deck_state(html).values():
        s = model["state"]
        if "_layer_type" in s:
            tables = [t for path, t in _deck_buffers(model).items() if path[0] == "table"]
            out.append((s, sum(t.num_rows for t in tables)))
    return out


def test_explore_picks_the_engine(run, monkeypatch):
    import folium
    import lonboard

    from mapflow_geo.exceptions import MapflowWarning

    _, res, _, _ = run
    assert len(res.features) <= viz.LONBOARD_THRESHOLD
    assert isinstance(res.explore(tiles=None), folium.Map)
    deck = res.explore(threshold=10, tiles=None, large="cap")  # folium-only option dropped
    assert isinstance(deck, lonboard.Map)
    assert isinstance(res.explore(engine="lonboard"), lonboard.Map)
    with pytest.warns(MapflowWarning, match="leaves out popup") as rec:
        res.explore(engine="lonboard", tiles=None, popup=True)
    assert {r.filename for r in rec} == {__file__}  # the caller's line
    assert isinstance(res.explore(engine="folium", threshold=0), folium.Map)
    with pytest.raises(ValueError, match="engine"):
        res.explore(engine="deck")
    # without lonboard "auto" stays with folium (and its large= handling)
    monkeypatch.setattr(viz.explore, "_has_lonboard", lambda: False)
    assert isinstance(res.explore(threshold=10, tiles=None), folium.Map)
    with pytest.raises(ImportError, match="lonboard"):
        res.explore(engine="lonboard")


def test_deck_page_is_lonboards_export_and_agrees_with_folium(run, tmp_path):
    _, res, _, _ = run
    deck = viz.deck_result(res)
    html = deck.save(tmp_path / "deck.html").read_text()
    # lonboard's own page: its widget state, and its CARTO basemap style by default
    styles = [m["state"]["style"] for m in _deck_state(html).values() if "style" in m["state"]]
    assert styles == ["https://basemaps.cartocdn.com/gl/positron-nolabels-gl-style/style.json"]
    labels = viz.class_labels(res.features)
    fills = {}
    for s, n in _deck_layers(html):
        if s["_layer_type"] == "polygon" and s.get("filled") is not False:
            fills[tuple(s["get_fill_color"][:3])] = (s, n)
    # objects by class and tiles by status, in the colours of the folium map and figures
    for label, color in viz.class_colors(labels).items():
        s, n = fills[tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))]
        assert n == int((labels == label).sum()), label
        assert s["get_fill_color"][3] == round(0.6 * 255)
    for status, n in res.tiles["status"].value_counts().items():
        c = viz.status_color(status)
        assert fills[tuple(int(c[i : i + 2], 16) for i in (1, 3, 5))][1] == n, status
    # the legend rows are the folium map's, once, over the map
    legend = viz.styles.legend_rows_html([("Input areas", viz.AOI_COLOR, "outline")])
    assert html.count(legend) == 1
    assert html.index(legend) < html.index("</body>")
    assert "Tiles FAILED" in html and "buildings:101" in html


def test_deck_geoarrow_round_trip():
    """Every geometry kind survives the page's encoding (fast path and the general one)."""
    donut = shapely.Polygon(
        [(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (1, 3), (3, 3), (3, 1)]]
    )
    frames = {
        "polygon": [shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 4)],
        "holes": [donut, shapely.MultiPolygon([shapely.box(5, 5, 6, 6), shapely.box(7, 7, 8, 8)])],
        "path": [
            shapely.LineString([(0, 0), (1, 1), (2, 0)]),
            shapely.LineString([(3, 3), (4, 4)]),
        ],
        "scatterplot": [shapely.Point(1, 2), shapely.Point(3, 4)],
    }
    for name, geoms in frames.items():
        kind = "polygon" if name == "holes" else name
        gdf = gpd.GeoDataFrame({"class": ["a", "b"], "area": [1.5, 2.0]}, geometry=geoms, crs=4326)
        table = viz.deck.geoarrow_table(gdf, ["class", "area"], kind)
        back = gpd.GeoDataFrame.from_arrow(table)
        assert back.crs.equals("OGC:CRS84")
        # a column of polygons and multipolygons comes back as multipolygons
        assert shapely.equals(back.geometry.values, gdf.geometry.values).all(), name
        assert back["class"].tolist() == ["a", "b"]
    # other CRSs are reprojected to EPSG:4326
    m = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1000, 1000)], crs=3857)
    back = gpd.GeoDataFrame.from_arrow(viz.deck.geoarrow_table(m, [], "polygon"))
    assert back.total_bounds[2] == pytest.approx(1000 / 111_319.49, rel=1e-6)


def test_deck_basemap_is_a_maplibre_style(run):
    from lonboard.basemap import CartoStyle

    from mapflow_geo.exceptions import MapflowWarning

    _, res, _, _ = run
    assert viz.deck_result(res, tiles=None).to_lonboard().basemap is None
    dark = viz.deck_result(res, tiles=CartoStyle.DarkMatter).to_lonboard()
    assert dark.basemap.style == CartoStyle.DarkMatter
    # folium's basemap list: the first; an xyzservices name lonboard cannot draw: a warning
    with pytest.warns(MapflowWarning, match="OpenStreetMap.Mapnik") as rec:
        m = viz.deck_result(res, tiles=["OpenStreetMap.Mapnik", "Esri.WorldImagery"])
    assert m.basemap == viz.deck.DEFAULT_BASEMAP
    with pytest.warns(MapflowWarning, match="OpenStreetMap.Mapnik") as rec2:
        res.explore(engine="lonboard", tiles="OpenStreetMap.Mapnik")
    assert {r.filename for r in [*rec, *rec2]} == {__file__}  # the caller's line


def test_deck_outlines_and_notebook_widget(run):
    _, res, _, _ = run
    big = _big_result(res, 3000)
    deck = viz.deck_result(big)
    objects = [layer for layer in deck.layers if layer.name.startswith("Objects")]
    assert sum(len(layer.table) for layer in objects) == 3000
    assert all(layer.style["stroked"] for layer in objects)  # under OUTLINE_LIMIT
    assert not any(
        layer.style["stroked"]
        for layer in viz.deck_result(big, outlines=False).layers
        if layer.name.startswith("Objects")
    )
    assert "3,000 objects" in deck.notes[0]
    m = deck.to_lonboard()
    assert len(m.layers) == len(deck.layers)


# ------------------------------------------------------------ static maps, rasterised
def test_png_rasterised_above_threshold(run, tmp_path):
    from PIL import Image

    _, res, _, _ = run
    path = res.to_image(tmp_path / "r.png", dpi=100, figsize=(6, 5), raster_threshold=10)
    px = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    labels = viz.class_labels(res.features)
    for color in viz.class_colors(labels).values():
        near = np.abs(px - _hex_rgb(color)).max(axis=1) <= 12
        assert near.sum() >= 20, color
    # in SVG the objects are an image; below the threshold one path each
    svg = res.to_image(tmp_path / "r.svg", raster_threshold=10).read_text()
    assert "<image" in svg
    vector = res.to_image(tmp_path / "v.svg").read_text()
    assert svg.count("<path") < vector.count("<path") - len(res.features) // 2


def test_rasterised_polygons_keep_holes_and_parts(tmp_path):
    from PIL import Image

    donut = shapely.Polygon(
        [(0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01)],
        holes=[[(0.003, 0.003), (0.007, 0.003), (0.007, 0.007), (0.003, 0.007)]],
    )
    far = shapely.MultiPolygon(
        [shapely.box(0.012, 0, 0.014, 0.002), shapely.box(0.012, 0.008, 0.014, 0.01)]
    )
    feats = gpd.GeoDataFrame(
        {"object_type": ["buildings", "buildings"]}, geometry=[donut, far], crs=4326
    )
    aoi = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 0.014, 0.01)], crs=4326)
    res = MapflowResult(
        features=feats,
        tiles=gpd.GeoDataFrame({"status": []}, geometry=[], crs=4326),
        aois=aoi,
        processings=pd.DataFrame({"processing_id": [], "cost": []}),
    )
    path = res.to_image(
        tmp_path / "h.png",
        dpi=100,
        figsize=(7, 5),
        raster_threshold=0,
        legend=False,
        scalebar=False,
        title="",
    )
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    color = _hex_rgb(viz.class_colors(["buildings"])["buildings"])
    is_obj = np.abs(img - color).max(axis=2) <= 12
    ys, xs = np.nonzero(is_obj)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    # the donut's left part: filled at its ring, empty in its hole
    span = x1 - x0
    ring_x = int(x0 + span * 0.1 / 1.4)
    hole_x = int(x0 + span * 0.5 / 1.4)
    mid_y = (y0 + y1) // 2
    assert is_obj[mid_y, ring_x]
    assert not is_obj[mid_y, hole_x]
    assert (img[mid_y, hole_x] >= 240).all()
    # both parts of the multipolygon drawn, nothing between them
    part_x = int(x0 + span * 1.3 / 1.4)
    assert is_obj[y0 + 2, part_x] and is_obj[y1 - 2, part_x] and not is_obj[mid_y, part_x]


# -------------------------------------------------------- maps as geopandas draws them
def test_explore_forwards_geopandas_keywords(run):
    import folium

    _, res, _, _ = run
    feats = res.features
    m = res.explore(
        column="area_m2", cmap="plasma", tooltip=["class_id", "area_m2"], tiles=None,
        style_kwds={"weight": 3},
    )  # fmt: skip
    assert type(m) is folium.Map
    html = _html(m)
    # every object's area is in the map (geopandas' tooltip data), with its colour scale
    for v in feats["area_m2"].sample(20, random_state=0):
        assert f'"area_m2": {v}' in html
    assert "#0d0887" in html.lower()  # plasma's first colour (geopandas' default is viridis)
    assert '"weight": 3' in html
    # onto the caller's map: the same object comes back, with the tiles drawn on it
    mine = folium.Map()
    assert res.explore(column="class_id", m=mine, tiles=None) is mine
    assert res.tiles["tile_id"].iloc[0] in _html(mine)
    with pytest.raises(ValueError, match="did you mean 'area_m2'"):
        res.explore(column="area")


def test_explore_above_the_threshold_is_lonboard(run):
    import lonboard
    from matplotlib import colormaps

    _, res, _, _ = run
    feats = res.features
    m = res.explore(column="area_m2", cmap="magma", threshold=100, tiles=None)
    assert isinstance(m, lonboard.Map)
    objects = [layer for layer in m.layers if len(layer.table) == len(feats)]
    assert len(objects) == 1  # every object, in its own colour
    colors = pa.chunked_array(objects[0].get_fill_color).combine_chunks()  # Arrow (arro3)
    fill = colors.flatten().to_numpy(zero_copy_only=False).reshape(-1, 4)
    assert fill.shape == (len(feats), 4)
    top = np.round(np.array(colormaps["magma"](1.0)[:3]) * 255)
    biggest = int(np.argmax(feats["area_m2"].to_numpy()))
    assert (fill[biggest, :3] == top).all()
    with pytest.warns(mapflow_geo.MapflowWarning, match="popup"):
        res.explore(threshold=100, popup=True)
    # onto the caller's lonboard map
    mine = lonboard.Map([])
    assert res.explore(threshold=100, m=mine) is mine and len(mine.layers) > 1


def test_plot_forwards_geopandas_keywords(run):
    import matplotlib.pyplot as plt

    _, res, _, _ = run
    feats = res.features
    ax = res.plot(column="area_m2", cmap="magma", legend=True, show_tiles=False)
    try:
        # geopandas' one collection of every object, coloured by the column
        objects = [c for c in ax.collections if c.get_array() is not None]
        assert len(objects) == 1
        assert len(objects[0].get_paths()) == len(feats)
        assert np.allclose(np.asarray(objects[0].get_array()), feats["area_m2"].to_numpy())
        assert objects[0].get_cmap().name == "magma"
        assert len(ax.figure.axes) == 2  # the colour bar
    finally:
        plt.close(ax.figure)
    ax = res.plot(column="class_id", categorical=True, legend=True)
    try:  # geopandas' legend of the classes; the package's (areas, tiles) beside it
        assert {t.get_text() for t in ax.get_legend().get_texts()} == set(
            feats["class_id"].astype(str)
        )
        ours = {t.get_text() for leg in ax.figure.legends for t in leg.get_texts()}
        assert "input areas" in ours and any(t.startswith("tiles FAILED") for t in ours)
    finally:
        plt.close(ax.figure)
    ax = res.plot(column="class_id", legend=False)
    try:
        assert ax.get_legend() is None and not ax.figure.legends
    finally:
        plt.close(ax.figure)


def test_plan_maps_have_their_own_names(run):
    import folium
    import matplotlib.pyplot as plt

    gdf, res, _, _ = run
    plan = res.tiles.drop(columns=["status"])
    assert not hasattr(gdf.mapflow, "preview") and not hasattr(res, "preview")
    m = gdf.mapflow.explore_plan(plan=plan, tiles=None)
    assert type(m) is folium.Map and plan["tile_id"].iloc[0] in _html(m)
    ax = gdf.mapflow.plot_plan(plan=plan)
    try:
        patches = sum(len(c.get_paths()) for c in ax.collections)
        assert patches >= len(plan)  # one patch per planned tile (and the area outlines)
        assert f"{len(plan)} tiles" in ax.get_title()
    finally:
        plt.close(ax.figure)


def test_saved_page_keeps_per_object_colours(run):
    _, res, _, _ = run
    rgba = np.zeros((len(res.features), 4), np.uint8)
    rgba[:, 0] = np.arange(len(res.features)) % 256
    rgba[:, 3] = 200
    html = viz.deck_result(res, tiles=None, object_colors=rgba).to_html()
    colours = []  # the objects' layer holds one colour per row, in chunks as its table
    for model in _deck_state(html).values():
        chunks = sorted(
            (p[1], t) for p, t in _deck_buffers(model).items() if p[0] == "get_fill_color"
        )
        if chunks:
            colours.append(pa.concat_tables([t for _, t in chunks]).column(0).combine_chunks())
    assert len(colours) == 1
    colours = [np.asarray(colours[0].flatten()).reshape(-1, 4)]
    np.testing.assert_array_equal(colours[0], rgba)  # in the order of res.features
