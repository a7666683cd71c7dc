"""Time in the simulator's world: objects are built, extended and demolished on seeded
dates (development hot spots and a background rate); the oracle answers the world of a
date; a processing sees the world of its imagery's date (scene, upload, provider vintage).
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
import requests
import shapely
from shapely.geometry import shape
from support.sim_http import box

from mapflow_geo.sim import serve, world
from mapflow_geo.sim import world_time as wt
from mapflow_geo.sim import world_urban as urban
from mapflow_geo.sim.geo import meters_per_degree
from mapflow_geo.sim.scenes import scenes_for
from mapflow_geo.sim.world_core import WorldOptions, decode_truth_ids, rebuilt_ids

MOSCOW = (37.45, 55.6, 37.75, 55.8)


# ----------------------------------------------------------------------------- helpers
def hot_districts(region=MOSCOW, seed: int = 0, kind: int | None = urban.URBAN):
    """(bounds, window start, window end) of the hot-spot districts in ``region``."""
    d = urban.districts(region, seed, WorldOptions())
    out = []
    for n in np.nonzero(d["hot"])[0]:
        if kind is not None and d["kind"][n] != kind:
            continue
        b = (
            float(d["lon0"][n]),
            float(d["lat0"][n]),
            float(d["lon0"][n] + d["dlon"][n]),
            float(d["lat0"][n] + urban.DISTRICT_DEG),
        )
        start = int(d["hot_start"][n])
        out.append((b, start, start + int(d["hot_days"][n])))
    assert out, "no hot spot in the region"
    return out


def finished_hot_district():
    """An urban hot spot whose development window lies inside the record."""
    for b, s, e in hot_districts():
        if wt.START + 400 < s and e < wt.END - 400:
            return b, s, e
    raise AssertionError("no finished hot spot")


def iso(day: int) -> str:
    return wt.iso_day(day)


def by_id(geoms, props) -> dict:
    return dict(zip(props["truth_id"].tolist(), geoms, strict=True))


def shrink(b, m: float):
    """``b`` shrunk by ``m`` metres on every side."""
    my, mx = meters_per_degree((b[1] + b[3]) / 2)
    dx, dy = m / float(mx), m / float(my)
    return (b[0] + dx, b[1] + dy, b[2] - dx, b[3] - dy)


def in_days(values) -> np.ndarray:
    """Day numbers of ISO dates (None → NEVER, as far as comparisons go)."""
    return np.array([wt.NEVER if v is None else wt.to_day(v) for v in values], dtype=np.int64)


# ----------------------------------------------------------------------------- the oracle
def test_dates_parse_and_default_to_today():
    assert wt.to_day(None) == wt.END == wt.to_day("2031-05-01")  # the latest state
    assert wt.to_day("2020-03-04") == wt.to_day(dt.date(2020, 3, 4))
    assert wt.to_day("2020-03-04T10:00:00Z") == wt.to_day(dt.datetime(2020, 3, 4, 23, 59))
    for bad in ("2020-13-01", "yesterday", "2020-03-04x"):
        with pytest.raises(ValueError):
            world.truth((37.6, 55.75, 37.61, 55.76), date=bad)
    a = world.truth((37.6, 55.75, 37.61, 55.76), seed=0)
    b = world.truth((37.6, 55.75, 37.61, 55.76), seed=0, date="2026-12-31")
    assert a[1]["truth_id"].tolist() == b[1]["truth_id"].tolist()


@pytest.mark.parametrize("model", ["buildings", "forest", "roads", "construction"])
def test_time_is_deterministic(model):
    b, s, e = finished_hot_district()
    region = (b[0] - 0.02, b[1] - 0.01, b[2] + 0.02, b[3] + 0.01)
    for date in (None, iso((s + e) // 2), "2016-01-01"):
        g1, p1 = world.truth(region, model, seed=0, date=date)
        g2, p2 = world.truth(region, model, seed=0, date=date)
        assert len(g1) and shapely.equals_exact(g1, g2, tolerance=0).all()
        for k in ("truth_id", "built", "demolished", "modified", "version"):
            assert p1[k].tolist() == p2[k].tolist()
    # another seed, another history
    p3 = world.truth(region, "buildings", seed=1)[1]
    assert p3["built"].tolist() != world.truth(region, "buildings", seed=0)[1]["built"].tolist()


def test_truth_at_two_dates_differs_by_exactly_the_events_between():
    b, s, e = finished_hot_district()
    region = (b[0] - 0.01, b[1] - 0.005, b[2] + 0.01, b[3] + 0.005)
    inner = shrink(region, 60)  # extensions are < 10 m: the region sees them all
    d1, d2 = s + (e - s) // 4, e + 200
    t1 = world.truth(region, seed=0, date=iso(d1))
    t2 = world.truth(region, seed=0, date=iso(d2))
    at1, at2 = by_id(*t1), by_id(*t2)
    life = {}
    for g, p in (t1, t2):
        keep = shapely.within(g, shapely.box(*inner))
        for n in np.nonzero(keep)[0]:
            life[int(p["truth_id"][n])] = (p["built"][n], p["demolished"][n], p["modified"][n])
    assert len(life) > 1000
    counts = {"built": 0, "demolished": 0, "modified": 0}
    for tid, (built, demolished, modified) in life.items():
        bd, dd, md = in_days([built, demolished, modified])
        if built is None:
            bd = wt.ALWAYS
        between = {k: d1 < v <= d2 for k, v in zip(counts, (bd, dd, md), strict=True)}
        for k, v in between.items():
            counts[k] += v
        assert (tid in at2 and tid not in at1) == between["built"]
        assert (tid in at1 and tid not in at2) == between["demolished"]
        if tid in at1 and tid in at2:
            same = shapely.equals_exact(at1[tid], at2[tid], tolerance=0)
            assert same != between["modified"], tid
    assert counts["built"] > 100 and counts["demolished"] > 0 and counts["modified"] > 10, counts
    # the version follows the modification date
    g, p = t2
    md = in_days(p["modified"])
    assert ((p["version"] == 2) == (md <= d2)).all()


def test_a_hot_spot_changes_much_more_than_the_background():
    b, s, e = finished_hot_district()
    region = (b[0] - 0.03, b[1] - 0.015, b[2] + 0.03, b[3] + 0.015)
    g0, p0 = world.truth(region, seed=0, date="2015-01-01")
    g1, p1 = world.truth(region, seed=0)
    a0, a1 = by_id(g0, p0), by_id(g1, p1)
    changed = [t for t in a0.keys() | a1.keys() if t not in a0 or t not in a1]
    changed += [t for t in a0.keys() & a1.keys() if not a0[t].equals(a1[t])]
    geoms = np.array([a1.get(t, a0.get(t)) for t in changed], dtype=object)
    c = shapely.centroid(geoms)
    d = urban.districts_at(shapely.get_x(c), shapely.get_y(c), 0, WorldOptions())
    # districts wholly inside the region: their area, hot or not
    dd = urban.districts(region, 0, WorldOptions())
    inside = (dd["lon0"] >= region[0]) & (dd["lon0"] + dd["dlon"] <= region[2])
    inside &= (dd["lat0"] >= region[1]) & (dd["lat0"] + urban.DISTRICT_DEG <= region[3])
    my, mx = meters_per_degree(dd["latc"])
    km2 = dd["dlon"] * mx * urban.DISTRICT_DEG * my / 1e6
    cells = set(zip(dd["i"][inside].tolist(), dd["j"][inside].tolist(), strict=True))
    here = zip(d["i"].tolist(), d["j"].tolist(), strict=True)
    counted = np.array([ij in cells for ij in here])
    hot_km2, bg_km2 = km2[inside & dd["hot"]].sum(), km2[inside & ~dd["hot"]].sum()
    assert hot_km2 > 0.5 and bg_km2 > 10
    years = (wt.END - wt.START) / wt.YEAR
    hot_rate = (counted & d["hot"]).sum() / hot_km2 / years  # changed buildings / km² / year
    bg_rate = (counted & ~d["hot"]).sum() / bg_km2 / years
    assert hot_rate > 20 * bg_rate, (hot_rate, bg_rate)
    assert hot_rate > 30 and bg_rate > 0.3, (hot_rate, bg_rate)


def test_ids_are_stable_across_dates_and_rebuilds_get_new_ids():
    b, s, e = finished_hot_district()
    region = (b[0] - 0.02, b[1] - 0.01, b[2] + 0.02, b[3] + 0.01)
    dates = ["2015-06-01", iso((s + e) // 2), "2021-01-01", None]
    truths = [world.truth(region, seed=0, date=d) for d in dates]
    static = ("building_type", "group_id", "class_id", "built", "demolished", "modified")
    rows = {}
    for _, p in truths:
        for n, tid in enumerate(p["truth_id"].tolist()):
            row = tuple(p[k][n] for k in static)
            assert rows.setdefault(tid, row) == row  # one object, one life, whatever the date
    # extensions keep the id and contain the first footprint
    (g0, p0), (g1, p1) = truths[0], truths[-1]
    a0, a1 = by_id(g0, p0), by_id(g1, p1)
    ext = [t for t, v in zip(p1["truth_id"].tolist(), p1["version"], strict=True) if v == 2]
    ext = [t for t in ext if t in a0 and p0["version"][p0["truth_id"] == t][0] == 1]
    assert len(ext) > 10
    for t in ext:
        assert a1[t].contains(a0[t]) and a1[t].area > a0[t].area
    # a building rebuilt after its demolition has a new id (its layer + 8) on its lot
    layer = decode_truth_ids(p1["truth_id"])["layer"]
    rebuilt = np.nonzero(layer >= 9)[0]
    assert len(rebuilt) > 0
    w = urban.building_rings(world._bounds(region), 0, 1.0, WorldOptions())  # every life
    first = shapely.polygons(w["rings"])
    row = {t: n for n, t in enumerate(w["truth_id"].tolist())}
    for n in rebuilt[:50]:
        new = int(p1["truth_id"][n])
        old = row[new - int(rebuilt_ids(0))]
        assert new not in row and int(w["truth_id"][old]) not in a1
        assert w["demolished"][old] < wt.to_day(p1["built"][n]) == w["rebuilt"][old]
        assert a1[new].contains(first[old])


@pytest.mark.parametrize("date", ["2016-01-01", "2020-06-01", None])
def test_buildings_never_overlap_at_any_date(date):
    b, s, e = finished_hot_district()
    opts = {"extension_rate": 0.1, "demolition_rate": 0.05}  # many more changes
    g, p = world.truth(b, seed=0, date=date, **opts)
    assert (p["version"] == 2).sum() > 20
    assert shapely.is_valid(g).all()
    left, right = shapely.STRtree(g).query(g, predicate="intersects")
    pair = left < right
    left, right = left[pair], right[pair]
    assert (shapely.area(shapely.intersection(g[left], g[right])) == 0).all()
    # attached rows stay connected through their exact party walls
    att = p["group_id"] >= 0
    for gid in np.unique(p["group_id"][att])[:100]:
        members = g[p["group_id"] == gid]
        if len(members) > 1:
            assert shapely.union_all(members).geom_type == "Polygon"


def test_forest_clearings_grow_and_groves_are_cleared():
    b = (37.2, 55.5, 37.6, 55.7)
    g0, p0 = world.truth(b, "forest", seed=0, date="2015-01-01")
    g1, p1 = world.truth(b, "forest", seed=0)
    a0 = by_id(g0, p0)
    grown = np.nonzero(p1["version"] == 2)[0]
    assert len(grown) > 0
    for n in grown:
        old = a0[int(p1["truth_id"][n])]
        assert old.contains(g1[n]) and g1[n].area < old.area
        assert p1["holes"][n] >= 1 and shapely.is_valid(g1[n])
    cleared = set(p0["truth_id"].tolist()) - set(p1["truth_id"].tolist())
    assert cleared and all(decode_truth_ids([t])["k"][0] > 0 for t in cleared)  # groves


def test_hot_spots_lay_out_streets_and_construction_sites():
    b, s, e = finished_hot_district()
    before, during = iso(s - 200), iso(s + (e - s) // 2)
    st0 = world.truth(shrink(b, 30), "roads", seed=0, date=before)[1]
    st1 = world.truth(shrink(b, 30), "roads", seed=0, date=during)[1]
    res = lambda p: set(p["truth_id"][p["road_type"] == "residential"].tolist())  # noqa: E731
    assert len(res(st1)) > len(res(st0))
    c = world.truth(b, "construction", seed=0, date=during)[1]
    assert len(c["truth_id"]) > 0


# ----------------------------------------------------------------------------- the server
def _fc_geoms(fc) -> np.ndarray:
    return np.array([shape(f["geometry"]) for f in fc["features"]], dtype=object)


def test_world_route_equals_the_python_oracle(mapflow_sim):
    b, s, e = finished_hot_district()
    q = {"bbox": ",".join(map(str, b)), "model": "buildings", "date": iso(s + 300)}
    r = requests.get(mapflow_sim.base + "/_sim/world", params=q, timeout=60)
    assert r.status_code == 200, r.text
    fc = r.json()
    g, p = world.truth(b, "buildings", seed=0, date=q["date"])
    assert len(g) > 100 and len(fc["features"]) == len(g)
    assert shapely.equals_exact(_fc_geoms(fc), g, tolerance=0).all()
    assert [f["id"] for f in fc["features"]] == p["truth_id"].tolist()
    f0 = fc["features"][0]["properties"]
    assert {"truth_id", "built", "demolished", "modified", "version", "area"} <= set(f0)
    assert fc == mapflow_sim.truth_geojson(b, "buildings", date=q["date"])
    g2, p2 = mapflow_sim.truth(b, date=q["date"])
    assert p2["truth_id"].tolist() == p["truth_id"].tolist()
    # no date: today
    r = requests.get(mapflow_sim.base + "/_sim/world", params={"bbox": q["bbox"]}, timeout=60)
    assert [f["id"] for f in r.json()["features"]] == world.truth(b)[1]["truth_id"].tolist()
    # other models by name
    r = requests.get(
        mapflow_sim.base + "/_sim/world", params={"bbox": q["bbox"], "model": "🚗 Roads"}
    )
    assert len(r.json()["features"]) == len(world.truth(b, "roads")[0])


def test_world_route_refuses_big_or_bad_queries(mapflow_sim):
    url = mapflow_sim.base + "/_sim/world"
    r = requests.get(url, params={"bbox": "37.0,55.0,37.3,55.2"}, timeout=30)  # ≈ 420 km²
    assert r.status_code == 400 and r.json()["code"] == "BBOX_TOO_LARGE"
    assert r.json()["params"]["maxAreaKm2"] == 100
    for q in ({}, {"bbox": "1,2,3"}, {"bbox": "37,55,37.01,55.01", "date": "soon"}):
        r = requests.get(url, params=q, timeout=30)
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST", q
    r = requests.get(url, params={"bbox": "37,55,37.01,55.01", "model": "boats"}, timeout=30)
    assert r.status_code == 400
    assert mapflow_sim.count() == 0  # admin routes are not logged


def test_world_options_are_checked_at_start_and_used():
    with pytest.raises(TypeError):
        serve(world={"no_such_option": 1}).__enter__()
    with pytest.raises(ValueError):
        serve(world={"urban_share": 2.0}).__enter__()
    with pytest.raises(ValueError):
        serve(basemap_vintage="last summer").__enter__()
    city = {"urban_share": 1.0, "suburban_share": 0.0, "industrial_share": 0.0}
    with serve(world=city, seed=3) as sim:
        b = (37.6, 55.75, 37.61, 55.755)
        fc = sim.truth_geojson(b)
        g, p = world.truth(b, seed=3, **city)
        assert [f["id"] for f in fc["features"]] == p["truth_id"].tolist()
        assert len(g) > len(world.truth(b, seed=3)[0])


def _create(api, aoi, params, wd="🏠 Buildings"):
    body = {"name": "t", "wdName": wd, "geometry": aoi, "params": params}
    r = api.post("/processings/v2", json=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _served(api, pid):
    fc = api.get(f"/processings/{pid}/result").json()
    return fc, _fc_geoms(fc)


def _expected_over_http(sim, aoi: dict, date: str) -> np.ndarray:
    """The oracle's whole objects (``GET /_sim/world``) clipped to the AOI, in order."""
    poly = shape(aoi)
    q = {"bbox": ",".join(map(str, poly.bounds)), "date": date}
    fc = requests.get(sim.base + "/_sim/world", params=q, timeout=60).json()
    whole = _fc_geoms(fc)
    inside = shapely.contains_properly(poly, whole)
    clipped = np.where(inside, whole, shapely.intersection(whole, poly))
    return clipped[shapely.area(clipped) > 0]


def test_a_processing_on_a_scene_sees_the_world_of_its_date(api):
    b, s, e = finished_hot_district()
    aoi = box(*shrink(b, 100))
    scenes = [
        sc
        for sc in scenes_for(shape(aoi), 0)
        if sc["productType"] == "Image" and sc["_geom"].intersects(shape(aoi))
    ]
    early = min(scenes, key=lambda sc: sc["acquisitionDate"])
    late = max(scenes, key=lambda sc: sc["acquisitionDate"])
    assert early["acquisitionDate"][:10] < late["acquisitionDate"][:10]
    results = {}
    for sc in (early, late):
        day = sc["acquisitionDate"][:10]
        src = {"dataProvider": sc["providerName"], "imageIds": [sc["id"]], "zoom": 18}
        pid = _create(api, aoi, {"sourceParams": {"imagerySearch": src}})
        fc, served = _served(api, pid)
        assert {f["properties"]["imagery_date"] for f in fc["features"]} == {day}
        assert api.sim.imagery_date(pid) == day
        want = _expected_over_http(api.sim, aoi, day)
        # every true object meeting the AOI comes back, clipped, and nothing else
        assert len(served) == len(want) > 10
        assert shapely.equals_exact(served, want, tolerance=1e-12).all()
        results[day] = served
    a, b2 = results.values()
    assert len(a) != len(b2) or not shapely.equals_exact(a, b2, tolerance=0).all()


@pytest.mark.mapflow_sim(basemap_vintage="2017-03-01")
def test_basemaps_show_their_vintage(api):
    b, s, e = finished_hot_district()
    aoi = box(*shrink(b, 100))
    st = api.get("/user/status").json()
    vint = {p["name"]: p["vintage"] for p in st["dataProviders"]}
    assert vint["Mapbox"] == vint["ArcGIS World Imagery"] == "2017-03-01"
    assert vint["Sentinel-2"] is None and vint["CG_mosaic_2022"] == "2022-07-17"
    for params, day in (
        ({}, "2017-03-01"),  # no source: the default basemap
        ({"sourceParams": {"dataProvider": {"providerName": "Mapbox"}}}, "2017-03-01"),
        ({"sourceParams": {"dataProvider": {"providerName": "CG_mosaic_2022"}}}, "2022-07-17"),
    ):
        pid = _create(api, aoi, params)
        fc, served = _served(api, pid)
        assert {f["properties"]["imagery_date"] for f in fc["features"]} == {day}
        want, _ = world.pieces(shape(aoi), seed=0, date=day)
        assert shapely.equals_exact(served, want, tolerance=0).all()
    # the development happened between the two
    old, new = (world.pieces(shape(aoi), seed=0, date=d)[0] for d in ("2017-03-01", "2022-07-17"))
    assert len(new) > len(old)


_T = dt.datetime(2019, 5, 4, 12, tzinfo=dt.timezone.utc).timestamp()


@pytest.mark.mapflow_sim(clock=lambda: _T)
def test_fresh_imagery_and_uploads_have_their_own_dates(api):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    b, s, e = finished_hot_district()
    aoi = box(*shrink(b, 100))
    # fresh imagery (a provider without a vintage): the day of the processing
    pid = _create(api, aoi, {"sourceParams": {"dataProvider": {"providerName": "Sentinel-2"}}})
    assert api.sim.imagery_date(pid) == "2019-05-04"

    def tiff(**tags):
        buf = io.BytesIO()
        with rasterio.open(
            buf, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8",
            crs="EPSG:32637", transform=from_origin(410000, 6180000, 0.5, 0.5),
        ) as ds:  # fmt: skip
            ds.write(np.zeros((3, 8, 8), np.uint8))
            ds.update_tags(**tags)
        return buf.getvalue()

    for tags, day in (
        ({"ACQUISITION_DATE": "2016-08-09"}, "2016-08-09"),
        ({"TIFFTAG_DATETIME": "2018:02:03 10:11:12"}, "2018-02-03"),
        ({}, "2019-05-04"),  # none: the upload's day
    ):
        m = api.post("/rasters/mosaic", json={"name": "m"}).json()["id"]
        r = api.post(f"/rasters/mosaic/{m}/image", files={"file": ("a.tif", tiff(**tags))})
        assert r.status_code == 200, r.text
        img = r.json()["image"]
        assert img["meta_data"].get("acquisition_date") == (day if tags else None)
        for src in ({"mosaicId": m}, {"imageIds": [img["id"]]}):
            pid = _create(api, aoi, {"sourceParams": {"myImagery": src}})
            assert api.sim.imagery_date(pid) == day
        fc, served = _served(api, pid)
        want, _ = world.pieces(shape(aoi), seed=0, date=day)
        assert shapely.equals_exact(served, want, tolerance=0).all()
