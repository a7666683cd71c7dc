"""World model: results are a function of location, not of the request."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shapely
from shapely.geometry import shape
from support.sim_http import box

from mapflow_geo.sim import world


def _geoms(fc):
    return np.array([shape(f["geometry"]) for f in fc["features"]], dtype=object)


def _distinct(pieces) -> int:
    """Distinct world objects: touching pieces (a building cut by a seam) merge back."""
    if len(pieces) == 0:
        return 0
    return len(shapely.get_parts(shapely.union_all(pieces)))


def _city_cuts(cut: str):
    """Two AOIs a, b and their union u over a dense (urban) district of the seed-0 world
    near the tests' usual place (37.6 E, 55.75 N): attached buildings straddle the cut."""
    from test_sim_world_truth import urban_district

    x0, y0, x1, y1 = urban_district(37.6, 55.75)
    xa, xb, ya, yb = x0 + 0.001, x1 - 0.001, y0 + 0.001, y1 - 0.001
    if cut == "vertical":  # two adjacent boxes sharing a vertical edge
        xc = 0.5 * (xa + xb) + 0.0003
        return box(xa, ya, xc, yb), box(xc, ya, xb, yb), box(xa, ya, xb, yb)
    # a diagonal cut through a box
    return (
        {"type": "Polygon", "coordinates": [[[xa, ya], [xb, ya], [xa, yb], [xa, ya]]]},
        {"type": "Polygon", "coordinates": [[[xb, ya], [xb, yb], [xa, yb], [xb, ya]]]},
        box(xa, ya, xb, yb),
    )


@pytest.mark.parametrize("cut", ["vertical", "diagonal"])
def test_adjacent_aois_union_equals_union_result(api, cut):
    a, b, u = _city_cuts(cut)
    res = {}
    for name, g in (("a", a), ("b", b), ("u", u)):
        p = api.create(g)
        res[name] = api.get(f"/processings/{p['id']}/result").json()
    pa, pb, pu = _geoms(res["a"]), _geoms(res["b"]), _geoms(res["u"])
    pieces = np.concatenate([pa, pb])
    # attached buildings touch, so connected components are compared, and the number of
    # distinct buildings comes from the world's truth ids
    assert _distinct(pieces) == _distinct(pu)
    aois = {"a": a, "b": b, "u": u}
    day = res["u"]["features"][0]["properties"]["imagery_date"]  # the basemap's vintage
    ids = {n: world.pieces(shape(g), seed=0, date=day)[1]["truth_id"] for n, g in aois.items()}
    assert len(ids["u"]) == len(set(ids["u"].tolist())) == len(pu)
    assert set(ids["a"].tolist()) | set(ids["b"].tolist()) == set(ids["u"].tolist())
    assert len(pa) == len(ids["a"]) and len(pb) == len(ids["b"])
    assert len(pieces) > len(pu)  # some buildings straddle the seam
    area_tiles = shapely.area(pieces).sum()
    area_union = shapely.area(pu).sum()
    assert abs(area_tiles - area_union) / area_union < 1e-6
    # union of the pieces is the union of the whole buildings
    assert (
        shapely.union_all(pieces).symmetric_difference(shapely.union_all(pu)).area / area_union
        < 1e-6
    )
    # ids do not leak a world id: a and u share no feature ids
    ids_a = {f["properties"]["id"] for f in res["a"]["features"]}
    ids_u = {f["properties"]["id"] for f in res["u"]["features"]}
    assert not ids_a & ids_u


def test_small_building_rule_applies_to_whole_building():
    aoi = shapely.box(37.6, 55.75, 37.62, 55.76)
    w = world.world_buildings(aoi.bounds, seed=0)
    assert (w["area"] < world.MIN_BUILDING_AREA_M2).any(), (
        "the world should hold some tiny buildings"
    )
    g, props = world.generate("buildings", aoi, 0)
    # clipped pieces may be tiny, whole buildings never are
    tiny_whole = shapely.union_all(w["geoms"][w["area"] < world.MIN_BUILDING_AREA_M2])
    assert not any(
        shapely.intersects(tiny_whole, x) and shapely.intersection(tiny_whole, x).area > 0
        for x in g
    )
    # a seam 0.5 m into a building leaves a piece under 20 m²
    x = shapely.bounds(g[len(g) // 2])[0] + 0.5 / 62_800
    seam = shapely.box(37.6, 55.75, x, 55.76)
    g2, p2 = world.generate("buildings", seam, 0)
    assert min(p["area"] for p in p2) < 20  # a piece can be smaller than 20 m²; it is kept


def test_generation_is_fast_for_100_km2():
    aoi = shapely.box(37.5, 55.7, 37.66, 55.79)  # ≈ 100 km²
    t = time.process_time()  # CPU time: other processes on a loaded machine do not count
    g, props = world.generate("buildings", aoi, 0, density=1.0)
    dt = time.process_time() - t
    assert len(g) > 3000
    assert dt < 2.0, dt


def test_density_option_scales():
    aoi = shapely.box(37.6, 55.75, 37.63, 55.77)
    n1 = len(world.generate("buildings", aoi, 0, density=1.0)[0])
    n2 = len(world.generate("buildings", aoi, 0, density=0.3)[0])
    assert n2 < n1


def test_seed_changes_world():
    aoi = shapely.box(37.6, 55.75, 37.61, 55.76)
    a = world.generate("buildings", aoi, 1)[0]
    b = world.generate("buildings", aoi, 2)[0]
    assert len(a) != len(b) or not all(x.equals(y) for x, y in zip(a, b, strict=False))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from shapely.ops import split  # noqa: E402


@settings(max_examples=20, deadline=None)
@given(
    x0=st.floats(-170, 170),
    y0=st.floats(-60, 60),
    t=st.floats(0.05, 0.95),
    u=st.floats(0.05, 0.95),
    kind=st.sampled_from(["buildings", "forest", "roads", "fields"]),
)
def test_split_anywhere_is_consistent(x0, y0, t, u, kind):
    """Cut a ~2 km box by an arbitrary line: the two halves' objects re-assemble exactly."""
    w, h = 0.03, 0.02
    whole = shapely.box(x0, y0, x0 + w, y0 + h)
    cut = shapely.LineString([(x0 + t * w, y0 - 1), (x0 + u * w, y0 + h + 1)])
    halves = list(shapely.get_parts(split(whole, cut)))
    assert len(halves) == 2
    gu, _ = world.generate(kind, whole, 7)
    parts = [world.generate(kind, hf, 7)[0] for hf in halves]
    pieces = np.concatenate(parts)
    if kind == "roads":
        assert (
            abs(shapely.length(pieces).sum() - shapely.length(gu).sum())
            <= 1e-9 + 1e-6 * shapely.length(gu).sum()
        )
        return
    total = shapely.area(gu).sum()
    assert abs(shapely.area(pieces).sum() - total) <= 1e-6 * max(total, 1e-12)
    assert _distinct(pieces) == _distinct(gu)
