"""Benchmark the tiling planner against a naive UTM grid on real country shapes.

Run: ``python benchmarks/plan.py`` (prints markdown tables). Uses the Natural Earth
low-resolution countries that pyogrio ships as a test fixture.

For each limit (25, 50, 100 km²) both planners tile the same set of small/medium
countries, planned together in one frame:

* **planner** — :func:`mapflow_geo.tiling.plan` (0.5 % safety margin, max 10 AOIs);
* **naive** — a square grid of √limit km in the UTM zone of each country, clipped,
  one clipped cell (a Polygon or MultiPolygon) per processing.

Reported: processings ÷ Σ⌈country area ÷ limit⌉, planned credits ÷ (total area × price)
at 13 and at 1 credit/km², wall time, and for both planners the processings Mapflow
would refuse (area over the limit, a polygon's lat/lon bbox over the limit, more than 10
polygons). Refusals are counted by :func:`service_refusals`, which re-states the
service's rules with ``pyproj.Geod`` directly (as the service measures: ellipsoidal
areas, the bbox as a four-corner polygon) and uses none of the planner's helpers, so a
planner that broke a rule would show it here.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from datetime import date

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
import shapely.affinity
from pyproj import Geod

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mapflow_geo import tiling  # noqa: E402
from mapflow_geo._geodesy import geodesic_area_km2  # noqa: E402
from mapflow_geo.aoi import prepare_aois  # noqa: E402
from mapflow_geo.tiling import credits_for, plan  # noqa: E402

COUNTRIES = [
    "Luxembourg", "Cyprus", "Vanuatu", "Trinidad and Tobago", "Puerto Rico", "Lebanon",
    "Brunei", "Qatar", "Jamaica", "Montenegro", "Gambia", "Timor-Leste", "Kuwait",
    "Slovenia", "Fiji", "El Salvador", "Israel", "Rwanda", "Burundi", "Armenia",
    "Belgium", "Netherlands", "Denmark", "Switzerland",
]  # fmt: skip
LIMITS = (25.0, 50.0, 100.0)
PRICES = (13.0, 1.0)
MAX_AOIS = 10
GEOD = Geod(ellps="WGS84")


def service_refusals(processings, limit_km2: float, max_aois: int = MAX_AOIS) -> dict:
    """How many processings the service would refuse, by its own rules, re-stated here
    independently of :mod:`mapflow_geo` (``processings``: one list of shapely polygons or
    multipolygons per processing, as sent):

    * more than ``max_aois`` polygons (each polygon of a MultiPolygon is an AOI);
    * total ellipsoidal area over the limit;
    * any polygon whose lat/lon bounding box (as a four-corner polygon) is over the limit.
    """
    limit_m2 = limit_km2 * 1e6
    out = {"area": 0, "bbox": 0, "count": 0, "refused": 0}
    for geoms in processings:
        polys = [p for g in geoms for p in getattr(g, "geoms", [g]) if p.geom_type == "Polygon"]
        total = sum(abs(GEOD.geometry_area_perimeter(p)[0]) for p in polys)
        worst_bbox = max(
            abs(GEOD.geometry_area_perimeter(shapely.box(*p.bounds))[0]) for p in polys
        )
        bad = {
            "area": total > limit_m2,
            "bbox": worst_bbox > limit_m2,
            "count": len(polys) > max_aois,
        }
        for k, v in bad.items():
            out[k] += int(v)
        out["refused"] += int(any(bad.values()))
    return out


def refusals_text(r: dict) -> str:
    return (
        f"{r['refused']} ({r['area']} over area, {r['bbox']} over bbox, "
        f"{r['count']} over {MAX_AOIS} polygons)"
    )


def load_countries() -> gpd.GeoDataFrame:
    path = os.path.join(
        os.path.dirname(pyogrio.__file__),
        "tests", "fixtures", "naturalearth_lowres", "naturalearth_lowres.shp",
    )  # fmt: skip
    world = gpd.read_file(path)
    sel = world[world["name"].isin(COUNTRIES)].set_index("name")
    return sel[["geometry"]].sort_index()


def naive_plan(aois: gpd.GeoDataFrame, limit: float) -> dict:
    """Square UTM grid of √limit km, clipped, one cell per processing."""
    side = math.sqrt(limit) * 1000.0
    areas, cells_ll = [], []
    for geom in aois.geometry.values:
        one = gpd.GeoSeries([geom], crs=4326)
        # a row split at the antimeridian: use the UTM zone of its largest part
        big = max(shapely.get_parts(geom), key=lambda p: p.area)
        utm = gpd.GeoSeries([big], crs=4326).estimate_utm_crs()
        g = one.to_crs(utm).values[0]
        x0, y0, x1, y1 = g.bounds
        xs = x0 + side * np.arange(math.ceil((x1 - x0) / side) + 1)
        ys = y0 + side * np.arange(math.ceil((y1 - y0) / side) + 1)
        gx, gy = np.meshgrid(xs[:-1], ys[:-1])
        cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + side, gy.ravel() + side)
        clipped = shapely.intersection(cells, g)
        clipped = clipped[~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)]
        ll = gpd.GeoSeries(clipped, crs=utm).to_crs(4326).values
        areas.extend(geodesic_area_km2(ll).tolist())
        cells_ll.extend([cell] for cell in ll)
    return {"areas": np.asarray(areas), "refusals": service_refusals(cells_ll, limit)}


def random_fields(n: int, limit: float, seed: int = 7) -> gpd.GeoDataFrame:
    """``n`` rotated rectangles of 0.1–3 × ``limit`` km², on a grid so they do not touch."""
    rng = np.random.default_rng(seed)
    geoms = []
    step = 2.5 * math.sqrt(3 * limit * 4) / 111.32
    cols = int(math.sqrt(n)) + 1
    for i in range(n):
        area = limit * rng.uniform(0.1, 3.0)
        aspect = rng.uniform(1.0, 4.0)
        w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        rect = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
        rect = shapely.affinity.rotate(rect, rng.uniform(0, 180))
        lat = 45.0 + (i // cols) * step
        kx = 1 / (111.32 * math.cos(math.radians(lat)))
        geoms.append(
            shapely.affinity.affine_transform(
                rect, [kx, 0, 0, 1 / 111.32, 5 + (i % cols) * step, lat]
            )
        )
    return gpd.GeoDataFrame(geometry=geoms, crs=4326, index=[f"field{i}" for i in range(n)])


def main() -> None:
    countries = load_countries()
    aois = prepare_aois(countries)
    areas = aois["area_km2"]
    total = float(areas.sum())
    print(f"# Planning benchmark — {date.today().isoformat()}")
    print(
        f"\n{len(aois)} countries (Natural Earth low-res), total geodesic area "
        f"{total:,.0f} km²; Python {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"{platform.machine()}.\n"
    )
    head = (
        "| limit km² | method | processings | Σ⌈area÷limit⌉ | ratio | credits÷bound @13 "
        "| credits÷bound @1 | refused by Mapflow | time s |"
    )
    print(head)
    print("|" + "---|" * 9)
    for limit in LIMITS:
        bound = int(sum(math.ceil(a / limit) for a in areas))
        t0 = time.perf_counter()
        tiles = plan(countries, area_limit_km2=limit, max_aois=MAX_AOIS)
        t_plan = time.perf_counter() - t0
        per_proc = tiles.groupby("processing")["area_km2"].sum().to_numpy()
        tot = float(tiles["area_km2"].sum())
        cr = [sum(credits_for(a, p) for a in per_proc) / (tot * p) for p in PRICES]
        n = len(per_proc)
        sent = [list(t.geometry.values) for _, t in tiles.groupby("processing", sort=True)]
        refused = refusals_text(service_refusals(sent, limit))
        print(
            f"| {limit:g} | planner | {n} | {bound} | {n / bound:.4f} | {cr[0]:.4f} "
            f"| {cr[1]:.4f} | {refused} | {t_plan:.2f} |"
        )
        t0 = time.perf_counter()
        nv = naive_plan(aois, limit)
        t_naive = time.perf_counter() - t0
        a = nv["areas"]
        crn = [sum(credits_for(x, p) for x in a) / (a.sum() * p) for p in PRICES]
        refused = refusals_text(nv["refusals"])
        print(
            f"| {limit:g} | naive UTM grid | {len(a)} | {bound} | {len(a) / bound:.4f} "
            f"| {crn[0]:.4f} | {crn[1]:.4f} | {refused} | {t_naive:.2f} |"
        )

    # field-sized AOIs (0.1–3 limits each): where strips and packing of small rows matter
    print(
        "\n| fields (400 rotated rectangles, 0.1–3 × limit) | limit km² | processings "
        "| Σ⌈area÷limit⌉ | ⌈Σarea÷limit⌉ | ratio to ⌈Σarea÷limit⌉ | credits÷bound @13 "
        "| credits÷bound @1 | refused by Mapflow | time s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for limit in LIMITS:
        fields = random_fields(400, limit)
        areas_f = prepare_aois(fields)["area_km2"]
        bound = int(sum(math.ceil(a / limit) for a in areas_f))
        lb = math.ceil(float(areas_f.sum()) / limit)
        for label, strips in (("planner", tiling._STRIP_MAX_LIMITS), ("planner, grid only", 0)):
            saved = tiling._STRIP_MAX_LIMITS
            tiling._STRIP_MAX_LIMITS = strips
            try:
                t0 = time.perf_counter()
                tiles = plan(fields, area_limit_km2=limit, max_aois=MAX_AOIS)
                dt = time.perf_counter() - t0
            finally:
                tiling._STRIP_MAX_LIMITS = saved
            per_proc = tiles.groupby("processing")["area_km2"].sum().to_numpy()
            tot = float(tiles["area_km2"].sum())
            cr = [sum(credits_for(a, p) for a in per_proc) / (tot * p) for p in PRICES]
            n = len(per_proc)
            sent = [list(t.geometry.values) for _, t in tiles.groupby("processing", sort=True)]
            refused = service_refusals(sent, limit)["refused"]
            print(
                f"| {label} | {limit:g} | {n} | {bound} | {lb} | {n / lb:.4f} | {cr[0]:.4f} "
                f"| {cr[1]:.4f} | {refused} | {dt:.2f} |"
            )

    # the 100,000 km² at 25 km² timing target
    print("\n| case | area km² | limit km² | processings | Σ⌈area÷limit⌉ | time s |")
    print("|---|---|---|---|---|---|")
    world_path = os.path.join(
        os.path.dirname(pyogrio.__file__),
        "tests", "fixtures", "naturalearth_lowres", "naturalearth_lowres.shp",
    )  # fmt: skip
    world = gpd.read_file(world_path).set_index("name")
    iceland = world.loc[["Iceland"], ["geometry"]]
    # a wiggly 20,000-vertex polygon of ~100,000 km² (harder clipping than low-res shapes)
    ang = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    rad = 1.0 + 0.08 * np.sin(37 * ang) + 0.03 * np.sin(611 * ang)
    star = shapely.Polygon(np.c_[20 + 2.4 * rad * np.cos(ang), 48 + 1.6 * rad * np.sin(ang)])
    wiggly = gpd.GeoDataFrame(geometry=[star], crs=4326, index=["wiggly"])
    for name, frame in (("Iceland", iceland), ("wiggly 20k vertices", wiggly)):
        area = float(prepare_aois(frame)["area_km2"].sum())
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            tiles = plan(frame, area_limit_km2=25, max_aois=MAX_AOIS)
            best = min(best, time.perf_counter() - t0)
        n = tiles["processing"].nunique()
        print(f"| {name} | {area:,.0f} | 25 | {n} | {math.ceil(area / 25)} | {best:.2f} |")


if __name__ == "__main__":
    main()
