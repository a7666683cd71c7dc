"""What ``import mapflow_geo`` and ``mapflow-geo --help`` load: not even pandas. The
accessors register when pandas (xarray) is imported; the heavy and optional parts (HTTP,
pydantic records, the journal's sqlite3, maps, progress bars, Arrow, the run and results
layers) wait until first used. Each check runs in a fresh interpreter, so nothing
imported by other tests hides a regression."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

from support.paths import ROOT

import mapflow_geo

#: Loaded only when used: third-party libraries and the package's own heavy layers.
HEAVY = {
    "requests", "urllib3", "pydantic", "sqlite3", "jinja2", "branca", "folium",
    "matplotlib", "tqdm", "lonboard", "xarray", "dask", "duckdb", "pyogrio",
    "pyarrow", "pandas", "numpy", "geopandas", "shapely", "pyproj",
    "mapflow_geo.client", "mapflow_geo.api", "mapflow_geo._http", "mapflow_geo.models",
    "mapflow_geo.aoi", "mapflow_geo.results", "mapflow_geo.run", "mapflow_geo.viz",
    "mapflow_geo.imagery",
}  # fmt: skip


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON document last."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _loaded(names: list[str]) -> set[str]:
    return {m for m in HEAVY if m in names}


def test_bare_import_loads_nothing_heavy():
    got = _fresh("import json, sys, mapflow_geo; print(json.dumps(sorted(sys.modules)))")
    assert "mapflow_geo.accessors" in got
    assert _loaded(got) == set()


def test_accessor_registered_when_pandas_came_first():
    got = _fresh(
        "import json, pandas as pd, mapflow_geo\n"
        "try:\n"
        "    pd.DataFrame({'a': [1]}).mapflow\n"
        "except AttributeError as exc:\n"
        "    print(json.dumps(str(exc)))"
    )
    assert "needs a GeoDataFrame" in got


def test_accessor_registered_and_its_layers_load_on_first_use():
    got = _fresh(
        "import inspect, json, sys\n"
        "import mapflow_geo\n"
        "import geopandas as gpd, shapely\n"  # geopandas after the package: still registered
        "gdf = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 0.01, 0.01)], crs=4326)\n"
        "acc = gdf.mapflow\n"
        "before = sorted(sys.modules)\n"
        "params = list(inspect.signature(acc.plan).parameters)\n"
        "print(json.dumps({'before': before, 'after': sorted(sys.modules), 'params': params}))"
    )
    assert "mapflow_geo.run" not in got["before"]
    assert "mapflow_geo.run" in got["after"]
    assert "area_limit_km2" in got["params"] and "gdf" not in got["params"]


def test_every_public_name_imports_from_the_package():
    got = _fresh(
        "import importlib, json, mapflow_geo\n"
        "out = {}\n"
        "for name in mapflow_geo.__all__:\n"
        "    ns = {}\n"
        "    exec(f'from mapflow_geo import {name}', ns)\n"
        "    out[name] = [getattr(ns[name], '__module__', None), name in dir(mapflow_geo)]\n"
        "print(json.dumps(out))"
    )
    assert set(got) == set(mapflow_geo.__all__)
    for name, (module, listed) in got.items():
        assert listed, name
        if name != "__version__":
            assert module and module.startswith("mapflow_geo"), (name, module)
    assert got["MapflowClient"][0] == "mapflow_geo.client"
    assert got["changes"][0].startswith("mapflow_geo.results.changes")


def test_type_checkers_see_what_is_imported_lazily():
    """The ``TYPE_CHECKING`` imports of ``__init__`` name the same modules as the lazy
    table, so a type checker and completion see what a user gets."""
    tree = ast.parse((ROOT / "mapflow_geo" / "__init__.py").read_text())
    block = next(
        n
        for n in tree.body
        if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING"
    )
    seen = {a.name: n.module for n in block.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert seen == mapflow_geo._LAZY
    eager = {"MapflowError", "MapflowWarning", "__version__"}
    assert set(seen) | eager == set(mapflow_geo.__all__)


def test_submodules_stay_reachable_as_attributes():
    got = _fresh(
        "import json, mapflow_geo\n"
        "ok = mapflow_geo._geodesy.__name__, mapflow_geo.results.stitch.__module__\n"
        "try:\n"
        "    mapflow_geo.no_such_name\n"
        "    missing = None\n"
        "except AttributeError as exc:\n"
        "    missing = str(exc)\n"
        "print(json.dumps([*ok, missing]))"
    )
    assert got[:2] == ["mapflow_geo._geodesy", "mapflow_geo.results.stitch"]
    assert "no_such_name" in got[2]


def test_cli_help_loads_no_geopandas():
    code = (
        "import contextlib, io, json, sys\n"
        "from mapflow_geo.cli import main\n"
        "out = {}\n"
        "for argv in (['--help'], ['process', '--help'], ['plan', '--help']):\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit as exc:\n"
        "            out[' '.join(argv)] = [exc.code, buf.getvalue()]\n"
        "out['modules'] = sorted(sys.modules)\n"
        "print(json.dumps(out))"
    )
    got = _fresh(code)
    assert _loaded(got.pop("modules")) == set()
    for argv, (code_, text) in got.items():
        assert code_ == 0, argv
        assert text.startswith("usage: mapflow-geo"), argv
    assert "MAPFLOW_TOKEN" in got["--help"][1]
    assert "--max-processings" in got["process --help"][1]


def test_every_lazy_accessor_method_resolves():
    """Each accessor method named by a module and a name (imported on first use) finds
    its implementation, with the implementation's name."""
    got = _fresh(
        "import json\n"
        "from mapflow_geo._args import _LazyDoor\n"
        "from mapflow_geo.accessors import MapflowAccessor\n"
        "from mapflow_geo.xr_accessor import MapflowDataArrayAccessor\n"
        "out = []\n"
        "for cls in (MapflowAccessor, MapflowDataArrayAccessor):\n"
        "    lazy = [k for k, v in vars(cls).items() if isinstance(v, _LazyDoor)]\n"
        "    for attr in lazy:\n"
        "        door = vars(cls)[attr]\n"
        "        method = getattr(cls, attr)\n"
        "        out.append([attr, door.name, method.__name__, callable(method)])\n"
        "print(json.dumps(out))"
    )
    assert len(got) == 9
    for attr, name, resolved, is_callable in got:
        assert resolved == name and is_callable, attr
