"""Open saved maps in headless Chromium with no internet.

Playwright routes every request the page makes: the CDN assets a saved folium or
lonboard page references are served from ``tests/browser/assets/node_modules``
(installed from the npm registry by ``scripts/setup.sh``), basemap / Mapflow tile images
get a blank PNG, a MapLibre basemap style a plain one (:data:`PLAIN_STYLE`), and anything
else is aborted and recorded in ``Session.unexpected``. Shared by the browser tests and
``benchmarks/preview.py``.

A lonboard page (``Map.to_html``, ipywidgets' embed page) differs in two places, both
said where they are handled: cdnjs's minified require.js has no npm copy (the page pins
its hash, so the served page drops that one ``integrity`` attribute and gets npm's
``requirejs``), and the widget manager first looks for each widget module beside the
page (``<page folder>/anywidget.js``) before its CDN: those look-ups get a 404 and are
listed in ``Session.lookups``, not as unexpected requests or errors.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ASSETS = Path(__file__).parent / "assets" / "node_modules"
CHROMIUM = os.environ.get("MAPFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The page itself is served under this (never resolved) origin.
PAGE_ORIGIN = "http://preview.test"

_REQUIRE_JS = "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js"
# exact URLs whose npm copy has another path, or decoration-only CSS with no npm package
_AWESOME = "drmonty-leaflet-awesome-markers"
_EXPLICIT = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/"
    "leaflet.awesome-markers.js": f"{_AWESOME}/js/leaflet.awesome-markers.js",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/"
    "leaflet.awesome-markers.css": f"{_AWESOME}/css/leaflet.awesome-markers.css",
    # ipywidgets' embed page (lonboard's Map.to_html): cdnjs's build of require.js
    _REQUIRE_JS: "requirejs/require.js",
}
_EMPTY_CSS = (
    # glyphicon font for awesome-markers' "glyphicon" prefix; the maps use no icons
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css",
    # one rotate rule for awesome-markers
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/"
    "leaflet.awesome.rotate.min.css",
)
_PREFIXES = {
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/": (
        "leaflet.markercluster/dist/"
    ),
}
_NPM_CDN = re.compile(
    r"^https://(?:cdn\.jsdelivr\.net/npm|unpkg\.com)/((?:@[^/]+/)?[^@/]+)@([^/]+)/(.*)$"
)
_TILE_HOSTS = ("tile.openstreetmap.org", "server.arcgisonline.com", "app.mapflow.ai")
#: A plain 1×1 PNG in a basemap's land colour, served for every tile image.
BLANK_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP49P4lAAWhAstbEQ6lAAAAAElFTkSuQmCC"
)
_TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".map": "application/json",
    ".wasm": "application/wasm",
}
#: Console errors that say nothing is wrong with a saved page, kept in
#: ``Session.benign``: anywidget (0.9) gives a widget's ``initialize`` 2 s before it
#: logs this, and lonboard's takes longer while it decodes a large table; only messages
#: from a Python kernel wait for it, and a saved page has none.
BENIGN = ("[anywidget] Failed to initialize model.",)
#: The MapLibre style served for a basemap style URL: one plain background layer in a
#: basemap's land colour (no tiles, glyphs or sprites to fetch).
PLAIN_STYLE = {
    "version": 8,
    "sources": {},
    "layers": [{"id": "paper", "type": "background", "paint": {"background-color": "#f2efe9"}}],
}
_STYLE_HOSTS = ("basemaps.cartocdn.com",)
# served assets are cross-origin to the page (``crossorigin`` scripts, fetched wasm)
_CORS = {"Access-Control-Allow-Origin": "*"}


def local_asset(url: str) -> Path | None:
    """The installed npm file for a CDN URL a saved map references, or None (also when
    the URL names an exact version other than the one installed)."""
    url = url.split("?", 1)[0].split("#", 1)[0]
    if url in _EXPLICIT:
        return ASSETS / _EXPLICIT[url]
    for prefix, local in _PREFIXES.items():
        if url.startswith(prefix):
            return ASSETS / local / url[len(prefix) :]
    m = _NPM_CDN.match(url)
    if m is None:
        return None
    name, version, path = m.groups()
    installed = npm_version(name)
    if installed is None or not satisfies(installed, urllib.parse.unquote(version)):
        return None  # a version the npm copy is not
    return ASSETS / name / path


def widget_state(page: str) -> dict:
    """The widget state an ipywidgets embed page (lonboard's ``Map.to_html``) holds."""
    m = re.search(
        r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page, re.S
    )
    if m is None:
        raise ValueError("not an ipywidgets embed page: no widget state")
    return json.loads(m.group(1))["state"]


def cdn_urls(page: str) -> list[str]:
    """The CDN URLs an embed page loads: its scripts, each widget's module, and the
    jsDelivr URLs written in a widget's code (a version held in a variable is read from
    the variable's assignment)."""
    urls = re.findall(r'<script src="(https://[^"]+)"', page)
    for model in widget_state(page).values():
        name, version = model["model_module"], model["model_module_version"]
        if not name.startswith("@jupyter-widgets/"):  # built into the widget manager
            urls.append(f"https://cdn.jsdelivr.net/npm/{name}@{version}/dist/index.js")
        code = model["state"].get("_esm") or ""
        for m in re.finditer(
            r"https://cdn\.jsdelivr\.net/npm/((?:@[\w.-]+/)?[\w.-]+)@([^/`\"']+)(/[^`\"']*)", code
        ):
            name, version, path = m.groups()
            var = re.fullmatch(r"\$\{([\w$]+)\}", version)
            if var:
                found = re.search(r"(?<![\w$])" + re.escape(var.group(1)) + r'="([^"]+)"', code)
                version = found.group(1) if found else version
            urls.append(f"https://cdn.jsdelivr.net/npm/{name}@{version}{path}")
    return urls


def pinned_npm_version(url: str) -> tuple[str, str, str | None] | None:
    """For a jsDelivr / unpkg URL: (package, version asked, version pinned in
    ``assets/package.json`` or None); None for another URL."""
    m = _NPM_CDN.match(url)
    if m is None:
        return None
    name, version, _ = m.groups()
    deps = json.loads((ASSETS.parent / "package.json").read_text(encoding="utf-8"))
    return name, urllib.parse.unquote(version), deps["dependencies"].get(name)


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` (x.y.z) meets an npm spec of a saved page: exact, ``^x.y.z``,
    ``~x.y.*`` or ``latest`` (the npm copy is pinned at what it was)."""
    if spec == "latest":
        return True
    if not re.fullmatch(r"[\^~]?[0-9]+(\.([0-9]+|\*|x))*", spec):
        return False
    have = [int(v) for v in version.split(".")]
    if spec.startswith("^"):
        want = [int(v) for v in spec[1:].split(".")]
        lead = next((i for i, v in enumerate(want) if v), len(want) - 1)
        return have[: lead + 1] == want[: lead + 1] and have >= want
    if spec.startswith("~"):
        want = [v for v in spec[1:].split(".") if v not in ("*", "x")]
        return [str(v) for v in have[: len(want)]] == want
    return version == spec


def npm_version(name: str) -> str | None:
    """The version of an installed npm asset package, or None."""
    manifest = ASSETS / name / "package.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text(encoding="utf-8")).get("version")


def missing_requirements() -> list[str]:
    """What this machine lacks to run the browser tests (empty when ready)."""
    out = []
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        out.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        out.append("playwright (pip install -e '.[dev]')")
    if not all(
        (ASSETS / f).exists() for f in ("leaflet/dist/leaflet.js", "anywidget/package.json")
    ):
        out.append("npm assets (cd tests/browser/assets && npm ci)")
    return out


@dataclass
class Session:
    """What the routed page did: served assets, unexpected requests, JS errors."""

    served: list[str] = field(default_factory=list)
    tiles: int = 0
    unexpected: list[str] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    benign: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return self.page_errors + self.console_errors


def launch(playwright):
    """Headless Debian Chromium (never a Playwright-downloaded browser)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_map(browser, html_path: str | Path, *, width: int = 1200, height: int = 800):
    """A new page showing the saved map at ``PAGE_ORIGIN/<name>``, all requests routed.

    Returns ``(page, session)``; the page has not navigated yet — call
    ``page.goto(session_url)`` with ``session.url``.
    """
    html_path = Path(html_path)
    body = _without_require_js_hash(html_path.read_text(encoding="utf-8")).encode()
    page_url = f"{PAGE_ORIGIN}/{urllib.parse.quote(html_path.name)}"
    session = Session()
    page = browser.new_page(viewport={"width": width, "height": height})

    def page_error(exc):
        text = str(exc)
        (session.benign if text in BENIGN else session.page_errors).append(text)

    def console(msg):
        if msg.type != "error" or msg.location.get("url") in session.lookups:
            return
        (session.benign if msg.text in BENIGN else session.console_errors).append(msg.text)

    page.on("pageerror", page_error)
    page.on("console", console)
    page_dir = page_url.rsplit("/", 1)[0] + "/"

    def handle(route):
        url = route.request.url
        if url == page_url:
            return route.fulfill(status=200, body=body, content_type="text/html")
        if re.fullmatch(re.escape(page_dir) + r"[\w.-]+\.js", url):  # a module beside the page
            session.lookups.append(url)
            return route.fulfill(status=404, body="", content_type="text/plain")
        if url in _EMPTY_CSS:
            session.served.append(url)
            return route.fulfill(status=200, body="", content_type="text/css")
        local = local_asset(url)
        if local is not None and local.is_file():
            session.served.append(url)
            ctype = _TYPES.get(local.suffix, "application/octet-stream")
            return route.fulfill(
                status=200, body=local.read_bytes(), content_type=ctype, headers=_CORS
            )
        host = urllib.parse.urlsplit(url).hostname or ""
        if host in _STYLE_HOSTS and url.endswith(".json"):
            session.served.append(url)
            return route.fulfill(
                status=200,
                body=json.dumps(PLAIN_STYLE),
                content_type="application/json",
                headers=_CORS,
            )
        if any(host == h or host.endswith("." + h) for h in _TILE_HOSTS):
            session.tiles += 1
            return route.fulfill(status=200, body=BLANK_PNG, content_type="image/png")
        session.unexpected.append(url)
        return route.abort()

    page.route("**/*", handle)
    session.url = page_url  # type: ignore[attr-defined]
    return page, session


def _without_require_js_hash(page: str) -> str:
    """The page with no ``integrity`` hash on its require.js script (npm ships that
    release unminified; every other asset is served as the page names it)."""
    return re.sub(
        r'(<script src="' + re.escape(_REQUIRE_JS) + r'")\s+integrity="[^"]*"', r"\1", page
    )


def open_file(browser, html_path: str | Path, *, width: int = 1200, height: int = 800):
    """A new page for a saved file opened as a user would, from ``file://`` (no server);
    every network request is routed: basemap tiles get a blank PNG, anything else is
    aborted and recorded in ``Session.unexpected``.

    Returns ``(page, session)`` with ``session.url`` the file URL to ``goto``.
    """
    session = Session()
    page = browser.new_page(viewport={"width": width, "height": height})
    page.on("pageerror", lambda exc: session.page_errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: session.console_errors.append(msg.text) if msg.type == "error" else None,
    )

    def handle(route):
        url = route.request.url
        host = urllib.parse.urlsplit(url).hostname or ""
        if any(host == h or host.endswith("." + h) for h in _TILE_HOSTS):
            session.tiles += 1
            return route.fulfill(status=200, body=BLANK_PNG, content_type="image/png")
        session.unexpected.append(url)
        return route.abort()

    page.route(re.compile(r"^(https?|wss?)://"), handle)
    session.url = Path(html_path).resolve().as_uri()  # type: ignore[attr-defined]
    return page, session
