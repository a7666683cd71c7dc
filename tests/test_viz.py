"""Maps, figures and tables of results (mapflow_geo.viz, mapflow_geo.tables): content
checked sensibly, not pixel by pixel. The real-browser check is tests/browser."""

import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import mapflow_geo  # noqa: F401
from mapflow_geo import sim, sources, viz
from mapflow_geo.results import MapflowResult

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A result with failed tiles and five building classes, and its simulator's
    processing layers (looked up while the simulator runs)."""
    gdf = gpd.read_file(ROOT / "data" / "sample_aoi.geojson")
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, fail_fraction=0.3, seed=3) as s:
        client = s.client()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = gdf.mapflow.process(
                "buildings",
                client=client,
                run_dir=tmp_path_factory.mktemp("run"),
                progress=False,
                poll_interval=0.2,
                min_poll_interval=0.05,
                errors="warn",
                max_restarts=0,
                blocks=sources.blocks(Classification=True),
            )
        with_layers = res.preview(client=client).get_root().render()
        token = s.token
    return gdf, res, with_layers, token


def _html(m) -> str:
    return m.get_root().render()


def test_result_preview_content(run):
    _, res, with_layers, token = run
    html = _html(res.preview())
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


def test_preview_layer_switches(run):
    _, res, _, _ = run
    html = _html(res.preview(features=False, tiles=False, basemap=None))
    assert res.tiles["tile_id"].iloc[0] not in html
    assert "tile.openstreetmap.org" not in html
    with pytest.raises(ValueError, match="large"):
        res.preview(large="nope")


def test_plan_preview(run):
    gdf, _, _, _ = run
    plan = gdf.mapflow.plan(area_limit_km2=5, max_aois=10)
    html = _html(gdf.mapflow.preview(area_limit_km2=5, max_aois=10))
    for tid in plan["tile_id"]:
        assert tid in html
    assert "planned credits" in html or "processing area" in html


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
    m = big.preview(max_features=1000, large=large)
    html = _html(m)
    assert "max_features=1,000" in html  # the visible note
    if large == "simplify":
        assert 'preferCanvas": true' in html or "preferCanvas: true" in html
        assert "simplified at" in html
        assert html.count('"type": "Feature"') >= 3000
    elif large == "cluster":
        assert "markerClusterGroup" in html
        assert "clustered points" in html
    else:
        assert "largest of 3,000" in html
        # only the 1000 largest objects (by area) are drawn
        assert '"area": "3,000"' in html or '"area": "3000"' in html
        assert '"area": "1"' not in html


def test_small_results_are_drawn_whole(run):
    _, res, _, _ = run
    html = _html(res.preview(basemap=None))
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
        ax = res.plot(axes[1], tiles=True, title="mine", scalebar=False)
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
    assert lines[-1].startswith("| **total** |")
    assert len(lines) == len(res.costs) + 2
    total = int(res.processings["cost"].sum())
    assert f"{total:,}" in lines[-1]
    styler = res.costs_table()
    html = styler.to_html()
    assert "font-weight: bold" in html and "Credits per input row" in html
    stats_md = res.stats_table("markdown", tmp_path / "stats.md")
    assert (tmp_path / "stats.md").read_text() == stats_md
    assert "%" in stats_md  # coverage as a percentage
    res.costs_table("csv", tmp_path / "costs.csv")
    back = pd.read_csv(tmp_path / "costs.csv", index_col=0)
    assert back.loc["total", "charged_credits"] == pytest.approx(total)
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
        res.preview(client=client).save(str(path))
        secrets = client._secrets()
        base = server.url.rstrip("/")
    html = path.read_text()
    assert secrets and all(s not in html for s in secrets)
    layers = re.findall(re.escape(base.replace("/rest", "")) + r"[^\"' ]*/tiles/[^\"' ]*", html)
    if leaky:
        assert layers == [], layers  # left out, not written with the token
    else:
        assert layers, "the simulator's layers should be on the map"
