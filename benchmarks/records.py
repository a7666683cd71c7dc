"""Benchmark the typed records: parse a 40,000-processing listing, and import time.

Run: ``python benchmarks/records.py [--processings 40000] [--repeat 3] [--before REV]``
(quick mode: ``--processings 4000``). Prints markdown tables.

The listing is ``{"results", "total", "count"}`` as the simulator answers
``POST /projects/{id}/processings/v2/page`` (``sim/api_processings.py``,
``processing_json``): every key of a processing, with its layers, its workflow (two
blocks), data-provider params, echoed blocks, ``meta`` and ISO dates. Each method starts
from the answer's bytes and returns the records:

* **after** — ``json.loads`` then ``models.Processing.from_json`` per row (pydantic);
* **before** — the same with ``mapflow_geo/models.py`` as of ``--before`` (hand-written
  ``from_json``), read from git;
* **msgspec**, **cattrs** (when installed) — the candidates tried: a minimal
  ``Processing`` with the same fields and camelCase names, best case (one spelling per
  field, no fallback for a wrong type: one bad value fails the whole listing).

Methods run interleaved ``--repeat`` times; medians are reported. Import times are
medians of ``--repeat`` fresh interpreters each (the models module on top of what it
needs from the package, and each library alone).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from datetime import date, datetime

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from mapflow_geo import models  # noqa: E402

#: the last version with hand-written ``from_json`` records
BEFORE_REV = "fdfb33c"
STATUSES = ["OK", "OK", "OK", "IN_PROGRESS", "FAILED", "AWAITING", "UNPROCESSED"]


def make_listing(n: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    base = "http://127.0.0.1:5000/rest/tiles"
    model = {
        "id": str(uuid.UUID(int=1)),
        "name": "🏠 Buildings",
        "description": "Buildings",
        "pricePerSqKm": 5.0,
        "created": "2024-01-01T00:00:00Z",
        "updated": "2024-01-01T00:00:00Z",
        "blocks": [
            {"name": "Base", "displayName": "Buildings", "description": "The model itself",
             "optional": False, "price": 5.0},
            {"name": "Classification", "displayName": "Classification",
             "description": "Classification", "optional": True, "price": 2.0},
        ],
    }  # fmt: skip
    rows = []
    for i in range(n):
        pid, vl, rl = (str(uuid.UUID(int=int(rng.integers(2**62)) + k)) for k in range(3))
        status = STATUSES[i % len(STATUSES)]
        area = int(rng.integers(10_000, 25_000_000))
        t = 1_700_000_000 + i * 37 + rng.random()
        rows.append(
            {
                "id": pid,
                "name": f"mapflow-geo r{i // 100:04d} t{i % 100:02d}",
                "description": None,
                "projectId": str(uuid.UUID(int=7)),
                "vectorLayer": {"id": vl, "name": f"p{i}", "tileJsonUrl": f"{base}/{vl}/tile.json",
                                "tileUrl": f"{base}/{vl}/{{z}}/{{x}}/{{y}}.pbf"},
                "rasterLayer": {"id": rl, "tileJsonUrl": f"{base}/{rl}/tile.json",
                                "tileUrl": f"{base}/{rl}/{{z}}/{{x}}/{{y}}.png"},
                "workflowDef": model,
                "aoiCount": 1,
                "area": area,
                "aoiArea": area,
                "cost": int(area / 1e6 * 5) + 1,
                "status": status,
                "reviewStatus": None,
                "rating": None,
                "percentCompleted": 100 if status in ("OK", "FAILED") else 40,
                "params": {"sourceParams": {"dataProvider": {"providerName": "Mapbox",
                                                             "zoom": 18}}},
                "blocks": [{"name": "Classification", "displayName": "Classification",
                            "enabled": bool(i % 2)}],
                "meta": {"mapflow_geo_run": "r1", "mapflow_geo_key": f"{i}"},
                "messages": [],
                "created": datetime.utcfromtimestamp(t).isoformat() + "Z",
                "updated": datetime.utcfromtimestamp(t + 600).isoformat() + "Z",
            }
        )  # fmt: skip
    return json.dumps({"results": rows, "total": n, "count": n}).encode()


def git_show(rev: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", ROOT, "show", f"{rev}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def load_before(rev: str) -> types.ModuleType:
    """``mapflow_geo/models.py`` as of ``rev``, as a module of its own."""
    src = git_show(rev, "mapflow_geo/models.py")
    mod = types.ModuleType("models_before")
    sys.modules[mod.__name__] = mod
    exec(compile(src, "models_before.py", "exec"), mod.__dict__)
    return mod


# -- the candidates tried (best-case prototypes), when installed -----------------------
try:
    import msgspec
except ImportError:  # pragma: no cover
    msgspec = None
try:
    import attrs
    import cattrs
    from cattrs.gen import make_dict_structure_fn, override
    from pydantic.alias_generators import to_camel
except ImportError:  # pragma: no cover
    cattrs = None

if msgspec is not None:

    class MLayer(msgspec.Struct, rename="camel"):
        id: str | None = None
        name: str | None = None
        tile_url: str | None = None
        tile_json_url: str | None = None

    class MBlock(msgspec.Struct, rename="camel"):
        name: str = ""
        display_name: str | None = None
        description: str | None = None
        optional: bool = True
        price: float = 0.0

    class MModel(msgspec.Struct, rename="camel"):
        id: str | None = None
        name: str = ""
        description: str | None = None
        price_per_sq_km: float = 0.0
        blocks: list[MBlock] = []
        created: datetime | None = None
        updated: datetime | None = None

    class MProcessing(msgspec.Struct, rename="camel"):
        id: str | None = None
        name: str | None = None
        description: str | None = None
        project_id: str | None = None
        status: str | None = None
        percent_completed: float | None = None
        aoi_count: int | None = None
        area: int | None = None
        aoi_area: int | None = None
        cost: int | None = None
        messages: list[dict] = []
        vector_layer: MLayer | None = None
        raster_layer: MLayer | None = None
        workflow_def: MModel | None = None
        params: dict = {}
        blocks: list[dict] = []
        meta: dict = {}
        review_status: dict | None = None
        rating: dict | None = None
        created: datetime | None = None
        updated: datetime | None = None

    def parse_msgspec(data: bytes) -> list:
        rows = msgspec.json.decode(data)["results"]  # dicts kept as ``raw``
        return msgspec.convert(rows, list[MProcessing], strict=False)


if cattrs is not None:

    @attrs.define
    class CLayer:
        id: str | None = None
        name: str | None = None
        tile_url: str | None = None
        tile_json_url: str | None = None

    @attrs.define
    class CBlock:
        name: str = ""
        display_name: str | None = None
        description: str | None = None
        optional: bool = True
        price: float = 0.0

    @attrs.define
    class CModel:
        id: str | None = None
        name: str = ""
        description: str | None = None
        price_per_sq_km: float = 0.0
        blocks: list[CBlock] = attrs.Factory(list)
        created: datetime | None = None
        updated: datetime | None = None

    @attrs.define
    class CProcessing:
        id: str | None = None
        name: str | None = None
        description: str | None = None
        project_id: str | None = None
        status: str | None = None
        percent_completed: float | None = None
        aoi_count: int | None = None
        area: int | None = None
        aoi_area: int | None = None
        cost: int | None = None
        messages: list[dict] = attrs.Factory(list)
        vector_layer: CLayer | None = None
        raster_layer: CLayer | None = None
        workflow_def: CModel | None = None
        params: dict = attrs.Factory(dict)
        blocks: list[dict] = attrs.Factory(list)
        meta: dict = attrs.Factory(dict)
        review_status: dict | None = None
        rating: dict | None = None
        created: datetime | None = None
        updated: datetime | None = None

    conv = cattrs.Converter()
    conv.register_structure_hook(datetime, lambda v, _: models.parse_datetime(v))
    for cls in (CLayer, CBlock, CModel, CProcessing):
        renames = {a.name: override(rename=to_camel(a.name)) for a in attrs.fields(cls)}
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **renames))

    def parse_cattrs(data: bytes) -> list:
        return conv.structure(json.loads(data)["results"], list[CProcessing])


def candidates() -> dict:
    """Parsers of the candidate libraries that are installed."""
    out = {}
    if msgspec is not None:
        out["msgspec"] = parse_msgspec
    if cattrs is not None:
        out["cattrs"] = parse_cattrs
    return out


def import_seconds(code: str, setup: str = "", env: dict | None = None) -> float:
    """Seconds ``code`` takes in a fresh interpreter, after ``setup``."""
    prog = (
        f"{setup}\nimport time\n_t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", prog], check=True, capture_output=True, text=True, env=env
    )
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processings", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", default=BEFORE_REV, help="git revision of the 'before' models")
    args = ap.parse_args(argv)
    data = make_listing(args.processings)
    before = load_before(args.before)

    def parse_with(module: types.ModuleType):
        def parse(data: bytes) -> list:
            return [module.Processing.from_json(r) for r in json.loads(data)["results"]]

        return parse

    methods = {"after": parse_with(models), "before": parse_with(before), **candidates()}
    times: dict[str, list[float]] = {k: [] for k in methods}
    key = ("id", "status", "cost", "area", "percent_completed", "created", "model_name")
    seen = {}
    for _ in range(args.repeat):
        for name, fn in methods.items():
            gc.collect()  # every method starts with the same live objects
            t0 = time.perf_counter()
            out = fn(data)
            times[name].append(time.perf_counter() - t0)
            if name in ("after", "before"):
                seen[name] = [tuple(getattr(p, k) for k in key) for p in out]
            assert len(out) == args.processings
            del out
    assert seen["after"] == seen["before"], "before and after disagree"
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"records benchmark — {date.today()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {args.processings:,} processings, "
        f"{len(data) / 1e6:.0f} MB listing, median of {args.repeat} interleaved runs\n"
    )
    print("| method | parse s | processings/s | before ÷ method |")
    print("| --- | ---: | ---: | ---: |")
    for k in methods:
        print(
            f"| {k} | {med[k]:.3f} | {args.processings / med[k]:,.0f} "
            f"| {med['before'] / med[k]:.2f}× |"
        )
    # the models module on top of the two package modules it needs (not the package's
    # __init__, which imports everything): before's source from git, after's from the tree
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "models_before.py"), "w") as fh:
        fh.write(git_show(args.before, "mapflow_geo/models.py"))
    paths = [ROOT, tmp, os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    package = os.path.join(ROOT, "mapflow_geo")
    needs = (
        "import sys, types\n"
        f"pkg = types.ModuleType('mapflow_geo'); pkg.__path__ = [{package!r}]\n"
        "sys.modules['mapflow_geo'] = pkg\n"
        "import mapflow_geo._secrets, mapflow_geo.messages"
    )
    cases = {
        "models after (pydantic)": ("import mapflow_geo.models", needs),
        "models before": ("import models_before", needs),
        "pydantic": ("from pydantic import TypeAdapter, Field, dataclasses", ""),
        "msgspec": ("import msgspec", ""),
        "attrs + cattrs": ("import attrs, cattrs", ""),
    }
    for code, setup in cases.values():  # warm-up: bytecode caches written
        with contextlib.suppress(subprocess.CalledProcessError):
            import_seconds(code, setup, env)
    imp: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeat):
        for name, (code, setup) in cases.items():
            try:
                imp[name].append(import_seconds(code, setup, env))
            except subprocess.CalledProcessError:
                pass  # not installed
    print("\n| import | ms (median) |")
    print("| --- | ---: |")
    for name, v in imp.items():
        if v:
            print(f"| {name} | {statistics.median(v) * 1e3:.0f} |")


if __name__ == "__main__":
    main()
