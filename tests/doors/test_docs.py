"""The docs match the package: every module imports; every ``python`` example of the
README and the docs runs, in order, page by page, against the simulator (a block marked
``<!-- skip: reason -->`` on the line before its fence is skipped, with that reason);
the user guide and API reference build with ``mkdocs build --strict`` (warnings are
errors: broken links, unresolvable references, griffe docstring warnings), and the
reference covers the public modules."""

from __future__ import annotations

import importlib
import pkgutil
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from support.paths import ROOT

import mapflow_geo

#: reference page → the modules it documents
PAGES = {
    "client": ["client"],
    "api": [
        "api",
        "api.projects",
        "api.processings",
        "api.processings_v1",
        "api.review",
        "api.data",
        "api.mosaics",
        "api.images",
        "api.catalog",
        "api.templates",
        "api.account",
        "api.pricing",
        "api.protocol",
    ],
    "models": ["models"],
    "exceptions": ["exceptions"],
    "sources": ["sources"],
    "aoi": ["aoi"],
    "tiling": ["tiling"],
    "scenes": ["scenes"],
    "results": [
        "results",
        "results.io",
        "results.stitch",
        "results.stats",
        "results.columns",
        "results.tables",
        "results.raster",
        "results.dask",
        "results.dataset",
        "results.geoparquet",
        "results.describe",
        "results.changes",
        "results.arrow",
        "results.duck",
        "results.stac",
        "results.tiles",
        "results.review",
    ],
    "run": [
        "run",
        "run.prepare",
        "run.engine",
        "run.create",
        "run.fetch",
        "run.store",
        "run.journal",
        "run.monitor",
        "run.status",
    ],
    "viz": [
        "viz",
        "viz.explore",
        "viz.plotting",
        "viz.styles",
        "viz.layers",
        "viz.deck",
        "viz.changes",
        "viz.webmap",
    ],
    "imagery": ["imagery"],
    "sim": ["sim"],
}


def test_reference_covers_public_modules():
    pytest.importorskip("mkdocs")
    nav = (ROOT / "mkdocs.yml").read_text()
    assert "::: mapflow_geo\n" in (ROOT / "docs" / "reference" / "index.md").read_text()
    for page_name, modules in PAGES.items():
        page = (ROOT / "docs" / "reference" / f"{page_name}.md").read_text()
        for name in modules:
            assert f"::: mapflow_geo.{name}\n" in page, name
        assert f"reference/{page_name}.md" in nav, page_name


def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "WARNING" not in log, log
    for page_name, modules in PAGES.items():
        html = (site / "reference" / page_name / "index.html").read_text()
        for name in modules:
            assert f'id="mapflow_geo.{name}"' in html, name
    guide = (site / "guide" / "planning" / "index.html").read_text()
    assert "first row" in guide.lower()
    # Sphinx roles in docstrings are turned into links, never shown raw
    tiling = (site / "reference" / "tiling" / "index.html").read_text()
    assert ":func:" not in tiling
    assert 'href="../aoi/#mapflow_geo.aoi.prepare_aois"' in tiling


# ------------------------------------------------------------ modules and examples
MODULES = sorted(m.name for m in pkgutil.walk_packages(mapflow_geo.__path__, prefix="mapflow_geo."))


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name):
    importlib.import_module(name)


def test_module_list_is_the_package():
    files = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "mapflow_geo").rglob("*.py")
    }
    assert files - {"mapflow_geo"} == set(MODULES)


#: Pages whose ``python`` blocks are examples (every Markdown page of the docs).
PAGES_WITH_EXAMPLES = ["README.md", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")
)]  # fmt: skip
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
_SKIP = re.compile(r"<!--\s*skip:\s*(.+?)\s*-->\s*$")


def python_blocks(page: str) -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason or None) of every fenced ``python`` block of a page."""
    text = (ROOT / page).read_text(encoding="utf-8")
    out = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = _SKIP.search(before)
        out.append((line, match.group(1), skip.group(1) if skip else None))
    return out


def test_the_docs_have_examples():
    blocks = {p: python_blocks(p) for p in PAGES_WITH_EXAMPLES}
    assert sum(len(b) for b in blocks.values()) >= 20
    assert blocks["README.md"] and blocks["docs/guide/results.md"]


@pytest.fixture(scope="module")
def doc_world(tmp_path_factory):
    """A simulator as the default service (``MAPFLOW_TOKEN``, ``MAPFLOW_API_URL``), a
    working folder with the files the examples read (``data/sample_aoi.geojson``,
    ``areas.gpkg``), a cache folder of its own, and the names the examples take as
    given: ``gdf`` (the sample areas), ``client``, ``server``, ``res`` (a run of them)."""
    import geopandas as gpd

    from mapflow_geo import sim

    work = tmp_path_factory.mktemp("docs")
    (work / "data").mkdir()
    shutil.copy(ROOT / "data" / "sample_aoi.geojson", work / "data" / "sample_aoi.geojson")
    gdf = gpd.read_file(ROOT / "data" / "sample_aoi.geojson")
    gdf.to_file(work / "areas.gpkg")
    mp = pytest.MonkeyPatch()
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0) as server:
        mp.setenv("MAPFLOW_TOKEN", server.token)
        mp.setenv("MAPFLOW_API_URL", server.url)
        mp.setenv("XDG_CACHE_HOME", str(work / "cache"))
        mp.chdir(work)
        client = server.client()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = gdf.mapflow.process(
                "buildings", client=client, run_dir=work / "given-run", progress=False,
                poll_interval=0.2, min_poll_interval=0.05,
            )  # fmt: skip
        given = {"gdf": gdf, "client": client, "server": server, "res": res}
        yield given
        mp.undo()


@pytest.mark.parametrize("page", [p for p in PAGES_WITH_EXAMPLES if python_blocks(p)])
def test_examples_run(page, doc_world):
    """The page's ``python`` blocks, in order, in one namespace (as a reader runs them),
    against the simulator; the skipped ones say why."""
    import matplotlib

    matplotlib.use("Agg")
    namespace = {"__name__": f"docs_{Path(page).stem}", **doc_world}
    skipped = []
    for line, code, skip in python_blocks(page):
        if skip is not None:
            skipped.append(f"{page}:{line} ({skip})")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # examples may warn (a partial run…)
            try:
                exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102
            except Exception as exc:
                raise AssertionError(f"the example at {page}:{line} fails: {exc!r}") from exc
    if skipped:
        print("skipped:", *skipped, sep="\n  ")
