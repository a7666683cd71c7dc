"""A million objects on a lonboard (deck.gl) map: ``res.explore()`` picks lonboard, the
page is saved with lonboard's ``Map.to_html`` and opened in real headless Chromium with
no network (the CDN assets it loads served from the npm copies, basemap style and tiles
plain, anything else refused). The canvas must draw the objects in their class colours,
a click must show an object's properties, and the page must log no error. The
screenshot is kept as ``artifacts/deck-1m.png``.

:func:`test_saved_page_assets_are_pinned` says which asset a new lonboard release asks
for that the npm copies do not pin."""

import io
import math
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from offline import (
    _EXPLICIT,
    cdn_urls,
    open_map,
    pinned_npm_version,
    satisfies,
    widget_state,
)
from support.paths import ROOT

from mapflow_geo.results import MapflowResult
from mapflow_geo.viz import DeckMap, class_colors, class_labels, deck_result

ARTIFACTS = ROOT / "artifacts"
N_ROWS, PER_ROW = 1250, 800  # 1,000,000 buildings
VIEWPORT = (1200, 800)
# buildings of 9 × 7 m (in degrees near 55.7° N), attached in rows, rows 12 m apart
W, H, ROW_STEP = 9 / 62_700, 7 / 111_320, 12 / 111_320
LON0, LAT0 = 37.50, 55.70


def _small_city() -> MapflowResult:
    """Two buildings in one tile of one input area."""
    feats = gpd.GeoDataFrame(
        {"object_type": "buildings", "class_id": ["101", "102"], "area": 63.0},
        geometry=[shapely.box(0, 0, 1e-4, 1e-4), shapely.box(2e-4, 0, 3e-4, 1e-4)],
        crs=4326,
    )
    box = gpd.GeoDataFrame(
        {"tile_id": ["t"], "status": ["OK"]}, geometry=[shapely.box(0, 0, 1e-3, 1e-3)], crs=4326
    )
    return MapflowResult(
        features=feats,
        tiles=box,
        aois=box[["geometry"]],
        processings=pd.DataFrame({"processing_id": ["p1"]}),
    )


def _city() -> MapflowResult:
    """Terraced rows of attached buildings in blocks of three classes, under a 4 × 4 grid
    of tiles (three FAILED) and one input area: cheap to make (a few seconds)."""
    i = np.arange(N_ROWS * PER_ROW)
    row, col = np.divmod(i, PER_ROW)
    x = LON0 + col * W
    y = LAT0 + row * ROW_STEP
    geoms = shapely.box(x, y, x + W, y + H)
    block = (row // 125 + col // 200) % 3
    tile = (row * 4 // N_ROWS) * 4 + col * 4 // PER_ROW
    feats = gpd.GeoDataFrame(
        {
            "object_type": "buildings",
            "class_id": np.array(["101", "102", "103"])[block],
            "area": 63.0,
            "tile_id": pd.Categorical.from_codes(tile, [f"t{k:02d}" for k in range(16)]),
        },
        geometry=geoms,
        crs=4326,
    )
    minx, miny, maxx, maxy = feats.total_bounds
    xs, ys = np.linspace(minx, maxx, 5), np.linspace(miny, maxy, 5)
    tiles = gpd.GeoDataFrame(
        {
            "tile_id": [f"t{k:02d}" for k in range(16)],
            "status": ["OK"] * 5 + ["FAILED"] + ["OK"] * 4 + ["FAILED"] * 2 + ["OK"] * 4,
        },
        geometry=[
            shapely.box(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(4) for c in range(4)
        ],
        crs=4326,
    )
    aois = gpd.GeoDataFrame(
        {"name": ["city"]}, geometry=[shapely.box(minx, miny, maxx, maxy)], crs=4326
    )
    procs = pd.DataFrame({"processing_id": ["p1"], "cost": [100]})
    return MapflowResult(features=feats, tiles=tiles, aois=aois, processings=procs)


# loaded only by luma.gl's WebGL debugger (Spector.js) when asked for, never by a page
_DEBUG_ONLY = ("spectorjs",)


def _view(page_html: str) -> dict:
    """The view state the saved map opens at."""
    views = [m["state"].get("view_state") for m in widget_state(page_html).values()]
    views = [v for v in views if isinstance(v, dict) and "longitude" in v]
    assert len(views) == 1, views
    return views[0]


def _screen_box(bounds, v, width, height):
    """Where deck.gl draws ``bounds`` in a ``width × height`` page showing view ``v``."""
    scale = 512 * 2 ** v["zoom"]

    def px(lon, lat):
        y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        return (lon + 180) / 360 * scale, (1 - y / math.pi) / 2 * scale

    cx, cy = px(v["longitude"], v["latitude"])
    (x0, y1), (x1, y0) = px(bounds[0], bounds[1]), px(bounds[2], bounds[3])
    return (x0 - cx + width / 2, y0 - cy + height / 2, x1 - cx + width / 2, y1 - cy + height / 2)


def _rgb(h: str) -> np.ndarray:
    return np.array([int(h[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


@pytest.fixture(scope="module")
def million(tmp_path_factory):
    res = _city()
    m = deck_result(res)  # the lonboard map res.explore() draws
    assert isinstance(m, DeckMap)
    return res, m.save(tmp_path_factory.mktemp("deck") / "deck.html")


def test_saved_page_assets_are_pinned(tmp_path):
    """Every CDN asset a saved lonboard page loads has an npm copy of a version the page
    accepts (the harness serves no other): a lonboard release that asks for another
    fails here, naming the asset."""
    import lonboard
    import tomllib
    from packaging.requirements import Requirement

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pin = next(
        r for r in map(Requirement, extras["optional-dependencies"]["viz"]) if r.name == "lonboard"
    )
    assert pin.specifier.contains(lonboard.__version__), (
        f"lonboard {lonboard.__version__} is installed, pyproject.toml pins {pin}: "
        "reinstall the package (scripts/setup.sh)"
    )
    res = _small_city()
    page = deck_result(res).to_html()
    urls = [u for u in cdn_urls(page) if not any(f"/npm/{d}@" in u for d in _DEBUG_ONLY)]
    assert any("parquet-wasm@" in u for u in urls), urls  # lonboard's Parquet decoder
    for url in urls:
        if url in _EXPLICIT:
            continue
        pin = pinned_npm_version(url)
        assert pin is not None, f"lonboard {lonboard.__version__}: its page loads {url}"
        name, asked, pinned = pin
        assert pinned is not None and satisfies(pinned, asked), (
            f"lonboard {lonboard.__version__}'s saved page loads {name}@{asked} ({url}); "
            f"tests/browser/assets/package.json pins {name} {pinned}: pin that version "
            "there if the npm registry has it, else keep lonboard at the release "
            "pyproject.toml names"
        )


def test_million_objects_draw_in_chromium(browser, million):
    from PIL import Image

    res, path = million
    assert len(res.features) >= 1_000_000
    page_html = path.read_text()
    page, session = open_map(browser, path, width=VIEWPORT[0], height=VIEWPORT[1])
    page.goto(session.url, wait_until="commit")  # "load" waits for the whole widget state
    page.wait_for_selector("canvas", timeout=180_000)

    # the canvas drew: inside the objects' box nearly every pixel differs from the
    # background, in the three class colours; beside it, the background
    x0, y0, x1, y1 = _screen_box(res.aois.total_bounds, _view(page_html), *VIEWPORT)
    assert 200 < x0 < x1 < 1000 and 0 < y0 < y1 < VIEWPORT[1]
    inner = (slice(int(y0) + 30, int(y1) - 30), slice(int(x0) + 10, int(x1) - 10))
    # until the page has settled on its fitted view (deck.gl may draw a first frame at
    # another zoom while the canvas takes its size): objects inside the box, paper beside
    deadline = time.monotonic() + 100
    while True:
        shot = page.screenshot(timeout=120_000)
        px = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(float)
        background = px[VIEWPORT[1] // 2, int(x1) + 60]
        drawn = np.abs(px[inner] - background).max(axis=2) > 25
        beside = px[int(y0) + 30 : int(y1) - 30, int(x1) + 20 : int(x1) + 150]
        paper = np.abs(background - _rgb("#f2efe9")).max() < 8  # the blank basemap
        clear = (np.abs(beside - background).max(axis=2) <= 25).mean() > 0.95
        if (drawn.mean() > 0.9 and paper and clear) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(1000)
    assert drawn.mean() > 0.9, drawn.mean()
    assert paper, background
    assert clear

    labels = class_labels(res.features)
    colors = class_colors(labels)
    blends = np.array([0.6 * _rgb(c) + 0.4 * background for c in colors.values()])
    cells = px[inner][drawn]
    nearest = np.argmin(((cells[:, None, :] - blends[None]) ** 2).sum(axis=2), axis=1)
    shares = np.bincount(nearest, minlength=len(blends)) / len(cells)
    assert (shares > 0.15).all(), dict(zip(colors, shares.round(3), strict=True))

    legend = page.inner_text(".mf-legend")
    assert "Tiles FAILED (3)" in legend and "buildings:101" in legend
    assert "1,000,000 objects" in page.inner_text(".mf-notes")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "deck-1m.png"), timeout=120_000)

    # every object is pickable: a click shows one's properties
    page.mouse.click((x0 + x1) / 2, (y0 + y1) / 2)
    page.wait_for_function(
        "() => /buildings:10[123]/.test(document.body.innerText.split('Mapflow result')[0])",
        timeout=60_000,
    )
    assert session.errors == [], session.errors[:3]
    assert session.unexpected == [], session.unexpected[:3]
    assert any("parquet-wasm@" in u for u in session.served), session.served
    page.close()


def test_static_export_of_the_million(million):
    """The same 1,000,000 objects exported as a static PNG (rasterised drawing; its speed
    is in ``benchmarks/maps.py``): the three class colours over the blocks, blank paper
    beside them; kept as ``artifacts/static-1m.png``."""
    from PIL import Image

    res, _ = million
    ARTIFACTS.mkdir(exist_ok=True)
    path = res.to_image(ARTIFACTS / "static-1m.png", dpi=100, figsize=(8, 6))
    px = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    colors = class_colors(class_labels(res.features))
    # a colour drawn with any opacity over white paper lies on the line white → colour:
    # classify the tinted pixels by their direction from white
    tint = 255.0 - px
    tinted = tint[np.linalg.norm(tint, axis=1) > 40]
    dirs = np.array([255.0 - _rgb(h) for h in colors.values()])
    dirs /= np.linalg.norm(dirs, axis=1)[:, None]
    cos = (tinted / np.linalg.norm(tinted, axis=1)[:, None]) @ dirs.T
    best = cos.argmax(axis=1)[cos.max(axis=1) > 0.99]
    counts = np.bincount(best, minlength=len(dirs))
    # each class fills about a third of the blocks: ~50,000 pixels each at this size
    assert (counts > 20_000).all(), dict(zip(colors, counts.tolist(), strict=True))
