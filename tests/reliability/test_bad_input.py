"""Campaign 9 — bad input: Hypothesis-generated frames and geometries (invalid, empty,
None, wrong types, NaN/inf, no CRS, projected CRS, antimeridian in −180..180 and 0..360,
polar, huge, duplicated, overlapping, duplicated labels) → a valid plan, or an
``AOIError`` naming the row (its label) and the problem the documented rules give for it
(an oracle re-states them from the drawn geometry). The same frames run through
``gdf.mapflow.process`` against one simulator: a refused frame reaches no paid endpoint
(no create, no cost request) and charges nothing. ~150 offline cases and 25 through the
service by default, ≥ 1,000 offline with ``MAPFLOW_FULL=1``."""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.campaign import FAST, FULL

import mapflow_geo  # noqa: F401
from mapflow_geo import sim
from mapflow_geo._geodesy import bbox_area_km2, geodesic_area_km2
from mapflow_geo.exceptions import AOIError, MapflowError, PlanError
from mapflow_geo.tiling import plan

LIMIT, MAX_AOIS = 25.0, 10
EXAMPLES = 1000 if FULL else 150
TRIED = dict.fromkeys(
    ["n", "planned", "rejected", "process_rejected", "process_capped", "process_run"], 0
)

lon = st.floats(-179.5, 179.5)
lat = st.floats(-84.0, 84.0)
size = st.sampled_from([0.001, 0.01, 0.05, 0.2, 0.6])  # degrees; 0.6° ≈ 4,000 km²


@st.composite
def kinded(draw):
    """(kind, geometry) in EPSG:4326 coordinates."""
    kind = draw(
        st.sampled_from(
            [
                "box",
                "box",
                "bowtie",
                "empty",
                "none",
                "point",
                "line",
                "collection",
                "collection_nopoly",
                "nan",
                "inf",
                "am_0_360",
                "am_jump",
                "am_west",
                "polar",
                "beyond_polar",
                "huge",
                "sliver",
                "multi_overlap",
                "hole",
                "out_of_range",
                "3d",
            ]
        )
    )
    x, y, d = draw(lon), draw(lat), draw(size)
    if kind == "box":
        return kind, shapely.box(x, y, x + d, y + d)
    if kind == "bowtie":
        return kind, shapely.Polygon([(x, y), (x + d, y + d), (x + d, y), (x, y + d)])
    if kind == "empty":
        return kind, shapely.Polygon()
    if kind == "none":
        return kind, None
    if kind == "point":
        return kind, shapely.Point(x, y)
    if kind == "line":
        return kind, shapely.LineString([(x, y), (x + d, y + d)])
    if kind == "collection":
        return kind, shapely.GeometryCollection(
            [shapely.Point(x, y), shapely.box(x, y, x + d, y + d)]
        )
    if kind == "collection_nopoly":
        return kind, shapely.GeometryCollection([shapely.Point(x, y)])
    if kind == "nan":
        return kind, shapely.Polygon([(x, y), (x + d, y), (math.nan, y + d)])
    if kind == "inf":
        return kind, shapely.Polygon([(x, y), (math.inf, y), (x, y + d)])
    if kind == "am_0_360":
        return kind, shapely.box(180 - d / 2, y, 180 + d / 2, y + d)
    if kind == "am_jump":  # ring jumps across ±180 in -180..180
        return kind, shapely.Polygon(
            [(180 - d, y), (-180 + d, y), (-180 + d, y + d), (180 - d, y + d)]
        )
    if kind == "am_west":
        return kind, shapely.box(-180 - d / 2, y, -180 + d / 2, y + d)
    if kind == "polar":
        return kind, shapely.box(x, 84.999 - d / 10, x + d, 84.999)
    if kind == "beyond_polar":
        return kind, shapely.box(x, 85.5, x + d, 89.9)
    if kind == "huge":
        return kind, shapely.box(x, max(y - 0.5, -84), x + 1.0, min(y + 0.5, 84))
    if kind == "sliver":
        return kind, shapely.Polygon([(x, y), (x + d, y + d), (x + d, y + d + 1e-7)])
    if kind == "multi_overlap":
        return kind, shapely.MultiPolygon(
            [shapely.box(x, y, x + d, y + d), shapely.box(x + d / 2, y, x + 1.5 * d, y + d)]
        )
    if kind == "hole":
        return kind, shapely.box(x, y, x + d, y + d).difference(
            shapely.box(x + d / 4, y + d / 4, x + d / 2, y + d / 2)
        )
    if kind == "out_of_range":
        return kind, shapely.box(x * 1000, y * 1000, x * 1000 + 10, y * 1000 + 10)
    if kind == "3d":
        return kind, shapely.Polygon([(x, y, 5), (x + d, y, 5), (x + d, y + d, 5), (x, y + d, 5)])
    raise AssertionError(kind)


@st.composite
def frame(draw):
    """A frame and what it was made of: (frame, kinds, the rows' EPSG:4326 geometries)."""
    drawn = draw(st.lists(kinded(), min_size=1, max_size=5))
    if draw(st.booleans()) and drawn[0][1] is not None:  # duplicated / overlapping rows
        drawn.append(drawn[0])
    kinds = [k for k, _ in drawn]
    g4326 = [g for _, g in drawn]
    crs = draw(st.sampled_from(["EPSG:4326", "EPSG:4326", None, "EPSG:3857", "EPSG:32633"]))
    index = draw(st.sampled_from(["range", "labels", "dup"]))
    idx = {
        "range": list(range(len(drawn))),
        "labels": [f"row-{i}" for i in range(len(drawn))],
        "dup": [0] * len(drawn),
    }[index]
    geoms = g4326
    if crs and crs != "EPSG:4326":  # same ground expressed in a projected CRS
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            geoms = list(gpd.GeoSeries(g4326, crs=4326).to_crs(crs).values)
    gdf = gpd.GeoDataFrame({"v": range(len(geoms))}, geometry=geoms, crs=crs, index=idx)
    return gdf, kinds, g4326


# ------------------------------------------------------------------------- the oracle
#: The problems a row can be refused for, as the error names them.
PROBLEMS = (
    "has no geometry (None)",
    "has an empty geometry",
    "not a Polygon or MultiPolygon",
    "has NaN or infinite coordinates",
    "is a GeometryCollection without polygons",
    "outside longitude/latitude range",
    "beyond ±85",
    "has no area",
    "spans more than 360° of longitude",
    "winds around a pole",
)
#: Problems a reprojection cannot cure or cause: the row is refused in any CRS.
CRS_PROOF = {"has no geometry (None)", "has an empty geometry", "not a Polygon or MultiPolygon",
             "is a GeometryCollection without polygons"}  # fmt: skip


def expected_problem(kind: str, g) -> str | None:
    """The documented rules (docs/reliability.md, ``prepare_aois``), re-stated from the
    geometry as drawn in EPSG:4326: the problem a row must be refused for, or None."""
    if g is None:
        return "has no geometry (None)"
    if g.is_empty:
        return "has an empty geometry"
    if g.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        return "not a Polygon or MultiPolygon"
    if not np.isfinite(shapely.get_coordinates(g)).all():
        return "has NaN or infinite coordinates"
    polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        return "is a GeometryCollection without polygons"
    xy = shapely.get_coordinates(polys)
    if np.abs(xy[:, 1]).max() > 90 or np.abs(xy[:, 0]).max() > 540:
        return "outside longitude/latitude range"
    if np.abs(xy[:, 1]).max() > 85:
        return "beyond ±85"
    return None


def check_refusal(err: MapflowError, gdf, kinds, g4326) -> None:
    """The error names the row (its label, as ``row <label>:``) and the problem, as the
    oracle says; frame-level problems (no CRS, repeated labels) name themselves."""
    msg = str(err)
    assert isinstance(err, AOIError), f"{type(err).__name__}: {msg}"
    if gdf.crs is None:
        assert err.row is None and "no CRS" in msg, msg
        return
    if not gdf.index.is_unique:
        assert err.row is None, msg
        assert f"label {gdf.index[gdf.index.duplicated()].tolist()[0]!r} repeats" in msg, msg
        return
    labels = list(gdf.index)
    assert err.row in labels, msg
    assert msg.startswith(f"row {err.row!r}: "), msg
    named = labels.index(err.row)
    problem = next((p for p in PROBLEMS if p in msg), None)
    assert problem is not None, f"the error names no known problem: {msg}"
    want = [(i, expected_problem(k, g)) for i, (k, g) in enumerate(zip(kinds, g4326, strict=True))]
    bad = [(i, p) for i, p in want if p is not None]
    if gdf.crs.equals("EPSG:4326"):
        if bad:  # exactly the first refused row, for the documented reason
            assert (named, problem) == bad[0], (msg, bad)
        else:  # only a sliver may come out of repair with no area
            assert problem == "has no area" and kinds[named] == "sliver", (msg, kinds)
    else:  # a reprojection may damage more rows, never cure these
        proof = [i for i, p in bad if p in CRS_PROOF]
        assert not proof or named <= proof[0], (msg, bad)


def check_accepted(gdf, kinds, g4326) -> None:
    """No error: then no row breaks a rule in any CRS (and none in EPSG:4326)."""
    want = [expected_problem(k, g) for k, g in zip(kinds, g4326, strict=True)]
    assert gdf.crs is not None and gdf.index.is_unique
    if gdf.crs.equals("EPSG:4326"):
        assert want == [None] * len(want), want
    else:
        assert not [p for p in want if p in CRS_PROOF], want


def _check_plan(gdf: gpd.GeoDataFrame, out: gpd.GeoDataFrame) -> None:
    assert len(out) >= 1
    geoms = out.geometry.values
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_type_id(geoms) == 3).all()  # Polygon
    xy = shapely.get_coordinates(geoms)
    assert np.isfinite(xy).all() and (np.abs(xy[:, 0]) <= 180).all()
    assert (np.abs(xy[:, 1]) <= 85).all()
    assert set(out["row"]) <= set(gdf.index)
    assert (geodesic_area_km2(geoms) <= LIMIT * 1.0001).all()
    assert (bbox_area_km2(geoms) <= LIMIT * 1.0001).all()
    per = out.groupby("processing")
    assert (per["area_km2"].sum() <= LIMIT * 1.0001).all()
    assert (per.size() <= MAX_AOIS).all()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(frame())
def test_any_frame_gives_a_valid_plan_or_a_named_error(case):
    gdf, kinds, g4326 = case
    TRIED["n"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = plan(gdf, area_limit_km2=LIMIT, max_aois=MAX_AOIS)
    except MapflowError as e:
        TRIED["rejected"] += 1
        check_refusal(e, gdf, kinds, g4326)
        return
    TRIED["planned"] += 1
    check_accepted(gdf, kinds, g4326)
    _check_plan(gdf, out)


# ------------------------------------------------------------- through a real service
#: Plans with more processings than this are refused by ``process`` before anything is
#: sent (``max_processings``); smaller valid frames are run to the end.
RUN_CAP = 12


@pytest.fixture(scope="module")
def service():
    with sim.serve(aoi_area_limit_km2=LIMIT, max_aois_per_processing=MAX_AOIS,
                   processing_seconds=0, credits=10**9) as server:  # fmt: skip
        yield server


def _paid(server, since: int) -> list:
    """Every POST (creates and cost requests alike) the service received since ``since``."""
    return [r for r in server.requests[since:] if r.method == "POST"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(frame())
def test_bad_frames_through_process_are_named_before_anything_is_charged(service, case):
    """The generated frames run through ``gdf.mapflow.process`` against the simulator: a
    refused frame names the row and the problem, and the service saw no create, no cost
    request and no charge before the error; an accepted one is planned (and, when small,
    run to the end, paying once per processing)."""
    gdf, kinds, g4326 = case
    seen, charges = len(service.requests), len(service.charges)
    credits = service.state["account"]["remainingCredits"]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = gdf.mapflow.process(
                "buildings",
                client=service.client(),
                run_dir=Path(tmp) / "run",
                max_processings=RUN_CAP,
                **FAST,
            )
        except PlanError as e:  # valid, but more processings than RUN_CAP: nothing sent
            check_accepted(gdf, kinds, g4326)
            assert "nothing was sent" in str(e)
            assert _paid(service, seen) == []
            TRIED["process_capped"] += 1
        except MapflowError as e:
            check_refusal(e, gdf, kinds, g4326)
            assert _paid(service, seen) == [], "a refused frame reached a paid endpoint"
            TRIED["process_rejected"] += 1
        else:
            check_accepted(gdf, kinds, g4326)
            assert res.complete
            n = res.tiles["processing_key"].nunique()
            new = service.charges[charges:]
            assert len(new) == n == len({c["processingId"] for c in new})
            TRIED["process_run"] += 1
            return
    assert service.charges[charges:] == []
    assert service.state["account"]["remainingCredits"] == credits


@given(
    st.lists(
        st.one_of(st.integers(), st.text(max_size=3), st.none(), st.just(1.5)),
        min_size=1,
        max_size=4,
    )
)
@settings(max_examples=max(20, EXAMPLES // 10), deadline=None, database=None)
def test_wrong_types_are_mapflow_errors(items):
    """Wrong types (not geometries) raise a MapflowError that is also a TypeError, naming
    the first such row and what it is."""
    if all(i is None for i in items):
        with pytest.raises(AOIError) as ei:
            plan(items, area_limit_km2=LIMIT, max_aois=MAX_AOIS)
        assert ei.value.row == 0
        assert str(ei.value).startswith("row 0: has no geometry (None)")
        return
    with pytest.raises(MapflowError) as ei:
        plan(items, area_limit_km2=LIMIT, max_aois=MAX_AOIS)
    assert isinstance(ei.value, TypeError)
    row = next(i for i, x in enumerate(items) if x is not None)
    assert ei.value.row == row
    assert str(ei.value).startswith(
        f"row {row}: is a {type(items[row]).__name__}, not a shapely geometry"
    )


BOX = shapely.box(10, 40, 10.01, 40.01)
#: name: (input, the row the error must name, the problem it must name)
REJECTED = {
    "no_crs": (gpd.GeoDataFrame(geometry=[BOX]), None, "the frame has no CRS"),
    "none": (gpd.GeoDataFrame(geometry=[BOX, None], crs=4326), 1, "has no geometry (None)"),
    "nan": (
        gpd.GeoDataFrame(
            geometry=[shapely.Polygon([(10, 40), (10.01, 40), (math.nan, 40.01)])], crs=4326
        ),  # fmt: skip
        0,
        "has NaN or infinite coordinates",
    ),
    "point": (
        gpd.GeoDataFrame(geometry=[shapely.Point(10, 40)], crs=4326),
        0,
        "is a Point, not a Polygon or MultiPolygon",
    ),
    "polar": (
        gpd.GeoDataFrame(geometry=[shapely.box(10, 86, 10.01, 86.01)], crs=4326),
        0,
        "reaches latitude 86.0100°, beyond ±85° (Mapflow imagery does not cover it)",
    ),
    "wrong_crs": (
        gpd.GeoDataFrame(geometry=[shapely.box(500000, 4e6, 500100, 4.0001e6)], crs=4326),
        0,
        "has coordinates outside longitude/latitude range (wrong CRS on the frame?)",
    ),
    "dup_labels": (
        gpd.GeoDataFrame(geometry=[BOX] * 2, index=[3, 3], crs=4326),
        None,
        "index labels must be unique (label 3 repeats)",
    ),
    "labelled": (
        gpd.GeoDataFrame(
            geometry=[BOX, shapely.LineString([(10, 40), (10.1, 40.1)]), None],
            index=pd.Index(["north field", "south road", "east"]),
            crs=4326,
        ),
        "south road",
        "is a LineString, not a Polygon or MultiPolygon (1 more row(s) rejected)",
    ),
    "types": (pd.DataFrame({"geometry": [BOX, 2]}), 1, "is a int, not a shapely geometry"),
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_rejected_inputs_are_named_and_create_nothing(service, tmp_path, name):
    data, row, problem = REJECTED[name]
    seen, charges = len(service.requests), len(service.charges)
    client = service.client()
    with pytest.raises(AOIError) as ei:
        if isinstance(data, gpd.GeoDataFrame):
            data.mapflow.process("buildings", client=client, run_dir=tmp_path / name, **FAST)
        else:
            mapflow_geo.run.process(data, "buildings", client=client, run_dir=tmp_path / name,
                                    **FAST)  # fmt: skip
    assert ei.value.row == row
    where = "" if row is None else f"row {row!r}: "
    assert str(ei.value).startswith(where + problem), str(ei.value)
    assert _paid(service, seen) == [] and service.charges[charges:] == []


def teardown_module(module):
    print(
        f"\nbad input: {TRIED['n']} frames planned offline ({TRIED['planned']} planned, "
        f"{TRIED['rejected']} refused naming the row and problem); through process: "
        f"{TRIED['process_rejected']} refused, {TRIED['process_capped']} capped, "
        f"{TRIED['process_run']} run; nothing charged for any refused frame"
    )
