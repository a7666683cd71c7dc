"""The saved preview HTML, opened in real headless Chromium (no internet: CDN assets
served from the local npm copy): layers drawn, popups open, no JavaScript errors.
The screenshot is kept as ``artifacts/preview.png``."""

import pytest
from offline import open_map
from support.paths import ROOT
from support.sample import failed_tiles_run

import mapflow_geo  # noqa: F401  (registers the accessor)
from mapflow_geo.viz import AOI_COLOR, class_colors, class_labels, status_color

ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with failed_tiles_run(tmp_path_factory.mktemp("run")) as (gdf, res, s):
        client = s.client()
        html_path = tmp_path_factory.mktemp("html") / "preview.html"
        res.explore(engine="folium", client=client).save(html_path)
        token = s.token
    assert (res.tiles["status"] == "FAILED").any() and (res.tiles["status"] == "OK").any()
    return gdf, res, html_path, token


def _strokes(page) -> dict[str, int]:
    return page.evaluate(
        """() => {
        const out = {};
        for (const p of document.querySelectorAll('.leaflet-overlay-pane svg path')) {
            const c = (p.getAttribute('stroke') || '').toLowerCase();
            out[c] = (out[c] || 0) + 1;
        }
        return out;
    }"""
    )


def test_result_preview_in_chromium(browser, run):
    gdf, res, html_path, token = run
    assert token not in html_path.read_text()
    page, session = open_map(browser, html_path)
    page.goto(session.url, wait_until="load")
    page.wait_for_selector(".leaflet-overlay-pane svg path", state="attached")
    page.wait_for_function(
        "n => document.querySelectorAll('.leaflet-overlay-pane svg path').length >= n",
        arg=len(res.aois) + len(res.tiles) + len(res.features),
    )
    strokes = _strokes(page)

    # AOIs, tiles by status, objects by class: one SVG path each
    assert strokes.get(AOI_COLOR, 0) == len(res.aois)
    for status, n in res.tiles["status"].value_counts().items():
        assert strokes.get(status_color(status), 0) == n, status
    labels = class_labels(res.features)
    for label, color in class_colors(labels).items():
        assert strokes.get(color, 0) == int((labels == label).sum()), label

    # legend and layer control are there
    legend = page.inner_text(".mf-legend")
    assert "Tiles FAILED" in legend and "buildings:101" in legend
    assert page.locator(".leaflet-control-layers").count() == 1

    # click inside a failed tile: its popup names it, its status and its readable error
    failed = res.tiles[res.tiles["status"] == "FAILED"].iloc[0]
    pt = failed.geometry.representative_point()
    map_name = page.evaluate(
        "() => Object.keys(window).find(k => k.startsWith('map_') && window[k].getCenter)"
    )
    xy = page.evaluate(
        "([name, lat, lon]) => { const m = window[name];"
        " const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; }",
        [map_name, pt.y, pt.x],
    )
    page.mouse.click(*xy)
    popup = page.wait_for_selector(".leaflet-popup-content", timeout=5000)
    text = popup.inner_text()
    assert failed["tile_id"] in text
    assert "FAILED" in text
    assert failed["messages"][0][:40] in text

    page.wait_for_function(  # let the popup's fade-in finish before the screenshot
        "() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "preview.png"))
    assert session.errors == [], session.errors
    assert session.unexpected == [], session.unexpected
    assert any("leaflet.js" in u for u in session.served)
    page.close()


def test_plan_preview_in_chromium(browser, run, tmp_path):
    gdf, _, _, _ = run
    plan = gdf.mapflow.plan(area_limit_km2=5, max_aois=10)
    html_path = tmp_path / "plan.html"
    gdf.mapflow.explore_plan(plan=plan).save(html_path)
    page, session = open_map(browser, html_path)
    page.goto(session.url, wait_until="load")
    page.wait_for_function(
        "n => document.querySelectorAll('.leaflet-overlay-pane svg path').length >= n",
        arg=len(plan) + len(gdf),
    )
    strokes = _strokes(page)
    assert strokes.get(AOI_COLOR, 0) == len(gdf)
    assert sum(strokes.values()) == len(plan) + len(gdf)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "plan-preview.png"))
    assert session.errors == [], session.errors
    assert session.unexpected == [], session.unexpected
    page.close()
