"""Reading a result equals the standard library's reading of it.

Generated FeatureCollections (polygons and multipolygons with holes, lines and
multilines, 2-D or 3-D, one geometry type or several, properties missing, null or
empty, unicode keys and values) are read by ``read_geojson`` and, as the reference, by
``json.loads`` with ``shapely.geometry.shape`` for each feature: the geometries must be
exactly equal and every property value the same.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapflow_geo.results import io as results_io
from mapflow_geo.results import read_geojson, read_geojson_table

KEYS = ["id", "class_id", "площадь", "score", "高さ", "note"]
KINDS = ["Polygon", "MultiPolygon", "LineString", "MultiLineString"]

coord = st.floats(-179.0, 179.0, allow_nan=False, allow_infinity=False, width=64)
# text that neither reader takes for a date or a number: no leading digit
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12).filter(
    lambda s: not s.strip()[:1].isdigit() and s.strip()[:1] not in ("+", "-", ".")
)
VALUES = {
    "int": st.integers(-(2**31) + 1, 2**31 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "text": text,
    "bool": st.booleans(),
}


@st.composite
def positions(draw, n_min: int, dims: int) -> list:
    n = draw(st.integers(n_min, 7))
    return [[draw(coord) for _ in range(dims)] for _ in range(n)]


@st.composite
def ring(draw, dims: int) -> list:
    pts = draw(positions(3, dims))
    return [*pts, pts[0]]


@st.composite
def polygon(draw, dims: int) -> list:
    return [draw(ring(dims)) for _ in range(draw(st.integers(1, 3)))]  # shell and holes


@st.composite
def geometry(draw, kind: str, dims: int) -> dict:
    if kind == "Polygon":
        coords = draw(polygon(dims))
    elif kind == "MultiPolygon":
        coords = [draw(polygon(dims)) for _ in range(draw(st.integers(1, 3)))]
    elif kind == "LineString":
        coords = draw(positions(2, dims))
    else:
        coords = [draw(positions(2, dims)) for _ in range(draw(st.integers(1, 3)))]
    return {"type": kind, "coordinates": coords}


@st.composite
def collections(draw) -> dict:
    dims = draw(st.sampled_from([2, 3]))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=2, unique=True))
    schema = {
        k: draw(st.sampled_from(["int", "float", "text", "bool", "number"]))
        for k in draw(st.lists(st.sampled_from(KEYS), max_size=4, unique=True))
    }
    features = []
    for _ in range(draw(st.integers(1, 6))):
        props: dict | None = {}
        for key, kind in schema.items():
            if draw(st.integers(0, 3)) == 0:
                continue  # missing
            if draw(st.integers(0, 4)) == 0:
                props[key] = None
            elif kind == "number":  # ints and floats in one column
                props[key] = draw(VALUES["int"] | VALUES["float"])
            else:
                props[key] = draw(VALUES[kind])
        if not props and draw(st.booleans()):
            props = None  # "properties": null
        geom = draw(geometry(draw(st.sampled_from(kinds)), dims))
        features.append({"type": "Feature", "properties": props, "geometry": geom})
    return {"type": "FeatureCollection", "features": features}


def _is_null(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _same_value(got, want) -> bool:
    if want is None:
        return _is_null(got)
    if isinstance(got, np.generic):
        got = got.item()
    return got == want and not _is_null(got)


def _check(fc: dict, data: bytes) -> None:
    ref = json.loads(data)
    want_geoms = [shapely.geometry.shape(f["geometry"]) for f in ref["features"]]
    frame = read_geojson(data)
    assert frame.crs.to_epsg() == 4326
    assert len(frame) == len(want_geoms)
    got_geoms = frame.geometry.values
    assert list(shapely.get_type_id(got_geoms)) == list(shapely.get_type_id(want_geoms))
    assert list(shapely.has_z(got_geoms)) == list(shapely.has_z(want_geoms))
    assert shapely.equals_exact(got_geoms, np.array(want_geoms, dtype=object), 0).all()
    keys = {k for f in ref["features"] for k in (f["properties"] or {})}
    for key in keys:
        assert key in frame.columns, key
        for i, f in enumerate(ref["features"]):
            want = (f["properties"] or {}).get(key)
            got = frame[key].iloc[i]
            assert _same_value(got, want), (key, i, got, want)
    # the Arrow table the fetch path stores holds the same geometries as WKB
    table = read_geojson_table(data)
    wkb = table.column("geometry").to_pylist()
    assert shapely.equals_exact(shapely.from_wkb(wkb), got_geoms, 0).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(collections())
def test_read_equals_standard_library_reading(fc):
    _check(fc, json.dumps(fc, ensure_ascii=False).encode())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(collections())
def test_pretty_printed_and_escaped_bodies_read_the_same(fc):
    _check(fc, json.dumps(fc, indent=2, ensure_ascii=True).encode())


def test_uniform_collections_take_the_fast_path():
    """A single-type collection with flat properties is read without GDAL (so the
    property tests above exercise the fast path, not only the fallback)."""
    for kind in KINDS:
        fc = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": "ü"},
                    "geometry": {
                        "type": kind,
                        "coordinates": {
                            "LineString": [[0, 0], [1, 1]],
                            "MultiLineString": [[[0, 0], [1, 1]]],
                            "Polygon": [[[0, 0], [1, 0], [1, 1], [0, 0]]],
                            "MultiPolygon": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]],
                        }[kind],
                    },
                }
            ],
        }
        assert results_io._uniform_parts(json.dumps(fc).encode()) is not None, kind
