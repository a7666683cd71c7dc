"""Damaged features through parse → repair → stitch → dataset → changes (Hypothesis).

Buildings on two tiles (one seam), each damaged or not in one of the ways models emit:
a ring crossing itself, repeated points, empty or null geometry, a GeometryCollection,
a Z coordinate. Every step after parsing sees valid polygonal 2-D geometry only, and
every feature is either kept or counted."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyarrow as pa
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapflow_geo.results import geoparquet_bytes, read_geojson_table, stitch
from mapflow_geo.results.changes import changes
from mapflow_geo.results.dataset import write_dataset
from mapflow_geo.results.io import constant_column, read_geojson_parts, read_result_files
from mapflow_geo.results.repair import repair_parts, repair_table

TILES = gpd.GeoDataFrame(
    {"tile_id": ["0", "1"], "row": [0, 0]},
    geometry=[shapely.box(0, 0, 0.01, 0.01), shapely.box(0.01, 0, 0.02, 0.01)],
    crs=4326,
)
KINDS = ["none", "self_intersecting", "repeated_points", "empty", "null", "collection", "z"]


def _ring(x, y, w, h):
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]


def _damaged(ring, kind):
    poly = {"type": "Polygon", "coordinates": [ring]}
    if kind == "self_intersecting":
        return {"type": "Polygon", "coordinates": [[ring[0], ring[2], ring[1], *ring[3:]]]}
    if kind == "repeated_points":
        return {"type": "Polygon", "coordinates": [[p for p in ring for _ in (0, 1)]]}
    if kind == "empty":
        return {"type": "Polygon", "coordinates": []}
    if kind == "null":
        return None
    if kind == "collection":
        return {
            "type": "GeometryCollection",
            "geometries": [poly, {"type": "Point", "coordinates": ring[0]}],
        }
    if kind == "z":
        return {"type": "Polygon", "coordinates": [[[*p, 1.0] for p in ring]]}
    return poly


buildings = st.lists(
    st.tuples(
        st.floats(0.0005, 0.0165),  # x: some cross the seam at 0.01
        st.floats(0.0005, 0.008),
        st.floats(0.0002, 0.003),
        st.floats(0.0002, 0.0015),
        st.sampled_from(KINDS),
    ),
    min_size=1,
    max_size=25,
)


def _pieces(features):
    """Each tile's result, as the service cuts objects at the tile's edge."""
    out = {}
    for tile_id, tile in zip(TILES["tile_id"], TILES.geometry, strict=True):
        feats = []
        for x, y, w, h, kind in features:
            box = shapely.box(x, y, x + w, y + h)
            piece = shapely.intersection(box, tile)
            if shapely.area(piece) <= 0:
                continue
            ring = [list(c) for c in shapely.get_exterior_ring(piece).coords]
            feats.append(
                {
                    "type": "Feature",
                    "geometry": _damaged(ring, kind),
                    "properties": {"object_type": "buildings", "class_id": 101},
                }
            )
        out[tile_id] = json.dumps({"type": "FeatureCollection", "features": feats}).encode()
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=buildings, after=buildings)
def test_damaged_features_never_reach_stitch_dataset_or_changes(tmp_path_factory, before, after):
    tmp = tmp_path_factory.mktemp("repair")
    frames = []
    for name, features in (("before", before), ("after", after)):
        paths, tile_ids, counts = [], [], []
        total = 0
        for tile_id, body in _pieces(features).items():
            table = read_geojson_table(body)
            n_in = table.num_rows
            table, repairs = repair_table(table)
            # the fetch path's way (geometries straight from the parser) stores the same
            props, parsed = read_geojson_parts(body)
            assert len(parsed) == n_in and "geometry" not in props.column_names
            same, same_repairs = repair_parts(props, parsed)
            assert same_repairs == repairs and same.column_names == table.column_names
            assert shapely.equals_exact(
                shapely.from_wkb(same.column("geometry").to_pylist()),
                shapely.from_wkb(table.column("geometry").to_pylist()),
                0,
            ).all()
            assert table.num_rows + repairs.dropped == n_in  # every feature kept or counted
            geoms = shapely.from_wkb(np.asarray(table.column("geometry").to_pylist(), dtype=object))
            assert shapely.is_valid(geoms).all() and not shapely.has_z(geoms).any()
            assert np.isin(shapely.get_type_id(geoms), (3, 6)).all()
            for col, value in (("row", 0), ("tile_id", tile_id), ("processing_id", name)):
                table = table.append_column(col, constant_column(value, table.num_rows))
            path = tmp / f"{name}-{tile_id}.parquet"
            path.write_bytes(geoparquet_bytes(table))
            paths.append(str(path))
            tile_ids.append(tile_id)
            counts.append(table.num_rows)
            total += table.num_rows
        stitched = stitch(read_result_files(paths), TILES)
        assert shapely.is_valid(stitched.geometry.values).all()
        files = pa.table({"path": paths, "tile_id": tile_ids, "features": counts}).to_pandas()
        info = write_dataset(files, TILES, tmp / f"{name}-dataset")
        assert info.objects == len(stitched)
        back = gpd.read_parquet(tmp / f"{name}-dataset")
        assert shapely.is_valid(back.geometry.values).all()
        frames.append(back)
    diff = changes(frames[0], frames[1])
    assert shapely.is_valid(diff.geometry.values[~shapely.is_missing(diff.geometry.values)]).all()


def _line(points, kind):
    line = {"type": "LineString", "coordinates": points}
    if kind == "repeated_points":
        return {"type": "LineString", "coordinates": [p for p in points for _ in (0, 1)]}
    if kind == "empty":
        return {"type": "LineString", "coordinates": []}
    if kind == "null":
        return None
    if kind == "collection":
        return {
            "type": "GeometryCollection",
            "geometries": [line, {"type": "Point", "coordinates": points[0]}],
        }
    if kind == "z":
        return {"type": "LineString", "coordinates": [[*p, 2.0] for p in points]}
    return line


roads = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.floats(0, 0.01), st.floats(0, 0.01)), min_size=2, max_size=6, unique=True
        ),
        st.sampled_from([k for k in KINDS if k != "self_intersecting"]),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=40, deadline=None)
@given(features=roads)
def test_damaged_roads_become_valid_lines_and_nothing_else(features):
    body = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": _line([list(p) for p in pts], kind),
                    "properties": {"object_type": "roads"},
                }
                for pts, kind in features
            ],
        }
    ).encode()
    table = read_geojson_table(body)
    fixed, repairs = repair_table(table)
    geoms = shapely.from_wkb(np.asarray(fixed.column("geometry").to_pylist(), dtype=object))
    assert fixed.num_rows + repairs.dropped == len(features)
    assert np.isin(shapely.get_type_id(geoms), (1, 5)).all()  # lines stay lines
    assert shapely.is_valid(geoms).all() and not shapely.has_z(geoms).any()
    gone = sum(kind in ("empty", "null") for _, kind in features)
    assert repairs.dropped == gone
    # a road that was only repeated points, Z or a collection comes back as it was
    kept = [(pts, kind) for pts, kind in features if kind not in ("empty", "null")]
    for g, (pts, _) in zip(geoms, kept, strict=True):
        assert shapely.equals(g, shapely.LineString(pts))
