"""The stitched GeoParquet dataset, written by streaming, equals the in-memory path; other
tools (pyarrow.dataset, DuckDB, dask-geopandas) read it; a reopened run reads no object
until ``features`` is touched."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import shapely
from support.objects import assert_same_objects

import mapflow_geo
from mapflow_geo import open_run
from mapflow_geo.results import FeaturesTooLargeError, read_dataset, stitch, write_dataset
from mapflow_geo.results.dataset import BBOX, stream_class_sums, write_frame_dataset

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02, "progress": False}
# two touching rows and one apart, planned into small tiles: many seams
ROWS = gpd.GeoDataFrame(
    {"name": ["a", "b", "c"]},
    geometry=[
        shapely.box(37.60, 55.70, 37.64, 55.73),
        shapely.box(37.64, 55.70, 37.68, 55.73),
        shapely.box(37.60, 55.735, 37.66, 55.76),
    ],
    crs=4326,
)
MODELS = {
    "buildings": [{"name": "Classification", "enabled": True}],
    "roads": None,
    "forest with heights": None,
}


@pytest.fixture(scope="module", params=list(MODELS))
def run(request, tmp_path_factory):
    from mapflow_geo import sim

    run_dir = tmp_path_factory.mktemp("run")
    with sim.serve(credits=10**9) as server:
        ROWS.mapflow.process(
            request.param,
            blocks=MODELS[request.param],
            client=server.client(),
            run_dir=run_dir,
            area_limit_km2=1.0,
            max_aois=1,
            max_workers=4,
            **FAST,
        )
    res = open_run(run_dir)
    assert len(res.files) > 10
    return run_dir, res.features


def total_area(geoms) -> float:
    return float(shapely.area(np.asarray(geoms)).sum())


def test_dataset_equals_in_memory_stitch(run, tmp_path):
    run_dir, features = run
    res = open_run(run_dir)
    assert res.n_pieces > len(features)  # there were seams to stitch
    # small partitions: seams and joined objects cross partition borders
    info = res.to_parquet(tmp_path / "out", partition_features=max(5, res.n_pieces // 8))
    assert res._features is None
    assert len(info.parts) > 3
    got = read_dataset(tmp_path / "out")
    assert info.objects == len(got) == len(features)
    assert_same_objects(got, features)
    stats = res.stats
    assert res._features is None
    assert int(stats["objects"].sum()) == info.objects
    pd.testing.assert_frame_equal(stats, open_run(run_dir).stats, check_dtype=False)
    ref = stitch(features, res.tiles)  # stitching is idempotent on its own output
    assert len(ref) == len(features)


def test_stats_stream_without_loading(run, monkeypatch):
    run_dir, features = run
    res = open_run(run_dir)
    monkeypatch.setattr(res, "_loader", lambda: pytest.fail("objects loaded"))
    monkeypatch.setattr(
        "mapflow_geo.results._result.stitched_features", lambda *a: pytest.fail("loaded")
    )
    text = repr(res)
    assert "not loaded" in text
    stats = res.stats
    res.summary()
    assert len(res.costs)
    assert "objects (not loaded)" in repr(res)
    monkeypatch.undo()
    in_memory = open_run(run_dir)
    in_memory.features  # noqa: B018 - load, so stats come from the frame
    pd.testing.assert_frame_equal(stats, in_memory.stats, check_dtype=False)
    assert int(stats["objects"].sum()) == len(features)
    info = stream_class_sums(res.files, res.tiles, partition_features=max(5, res.n_pieces // 5))
    assert info.objects == len(features) and info.path is None


def test_geoparquet_layout(run, tmp_path):
    run_dir, features = run
    res = open_run(run_dir)
    res.to_parquet(tmp_path / "out", partition_features=max(5, len(features) // 4))
    out = tmp_path / "out"
    parts = sorted(out.glob("part-*.parquet"))
    assert (out / "_metadata").exists() and (out / "_common_metadata").exists()
    meta = json.loads(pq.read_schema(parts[0]).metadata[b"geo"])
    assert meta["version"] == "1.1.0"
    col = meta["columns"]["geometry"]
    assert col["encoding"] == "WKB"
    assert col["covering"]["bbox"] == {k: [BBOX, k] for k in ("xmin", "ymin", "xmax", "ymax")}
    assert set(col["geometry_types"]) <= {"Polygon", "MultiPolygon", "LineString",
                                          "MultiLineString"}  # fmt: skip
    table = pq.read_table(parts[0])
    for name in ("row", "tile_id", "processing_id", BBOX):
        assert name in table.column_names
    # the bbox column is each object's bounds
    got = read_dataset(out)
    whole = ds.dataset(str(out), format="parquet").to_table()
    b = whole[BBOX].combine_chunks()
    bounds = shapely.bounds(shapely.from_wkb(whole["geometry"].to_numpy(zero_copy_only=False)))
    for i, k in enumerate(("xmin", "ymin", "xmax", "ymax")):
        np.testing.assert_array_equal(b.field(k).to_numpy(), bounds[:, i])
    # _metadata: one dataset of every part's row groups
    assert ds.parquet_dataset(str(out / "_metadata")).count_rows() == len(features)
    # partitions are spatial neighbourhoods
    spans = [np.ptp(gpd.read_parquet(p).total_bounds.reshape(2, 2), axis=0).max() for p in parts]
    whole_span = np.ptp(got.total_bounds.reshape(2, 2), axis=0).max()
    assert np.median(spans) < whole_span
    # a bbox read uses the covering column
    x0, y0, x1, y1 = got.total_bounds
    window = (x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)
    part = read_dataset(out, bbox=window)
    want = got[got.intersects(shapely.box(*window))]
    assert 0 < len(part) < len(got) and set(want["id"] if "id" in want else []) <= set(
        part["id"] if "id" in part else []
    )
    assert len(gpd.read_parquet(out, bbox=window)) == len(part)


def test_duckdb_reads_the_dataset(run, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    run_dir, features = run
    open_run(run_dir).to_parquet(tmp_path / "out", partition_features=max(5, len(features) // 4))
    con = duckdb.connect()
    glob = str(tmp_path / "out" / "*.parquet")
    spatial = _load_spatial(con)
    if spatial:
        n, area = con.execute(
            f"SELECT count(*), sum(ST_Area(geometry)) FROM read_parquet('{glob}')"
        ).fetchone()
    else:  # plain DuckDB: count in SQL, area from the WKB with shapely
        n = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
        wkb = con.execute(f"SELECT geometry FROM read_parquet('{glob}')").arrow()
        area = total_area(shapely.from_wkb(wkb["geometry"].to_numpy(zero_copy_only=False)))
    assert n == len(features)
    assert area == pytest.approx(total_area(features.geometry.values), rel=1e-9)
    # the covering column filters in SQL too
    x0, y0, x1, y1 = features.total_bounds
    q = (
        f"SELECT count(*) FROM read_parquet('{glob}') WHERE bbox.xmin <= {(x0 + x1) / 2} "
        f"AND bbox.xmax >= {x0} AND bbox.ymin <= {y1} AND bbox.ymax >= {y0}"
    )
    assert 0 < con.execute(q).fetchone()[0] < n


def _load_spatial(con) -> bool:
    """DuckDB's spatial extension from the ``duckdb-extension-spatial`` wheel (offline)."""
    try:
        import duckdb_extension_spatial
    except ImportError:
        return False
    import glob
    import os

    found = glob.glob(
        os.path.join(os.path.dirname(duckdb_extension_spatial.__file__), "extensions", "*",
                     "spatial.duckdb_extension")
    )  # fmt: skip
    try:
        con.execute(f"LOAD '{found[0]}'")
    except Exception:  # noqa: BLE001 - a wheel built for another DuckDB
        return False
    return True


def test_dask_geopandas_reads_the_dataset(run, tmp_path):
    dask_geopandas = pytest.importorskip("dask_geopandas")
    import dask

    run_dir, features = run
    open_run(run_dir).to_parquet(tmp_path / "out", partition_features=max(5, len(features) // 4))
    ddf = dask_geopandas.read_parquet(tmp_path / "out")
    assert ddf.npartitions > 1
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # areas in degrees², on purpose
        n = len(ddf)
        area = float(ddf.geometry.area.sum().compute())
    assert n == len(features)
    assert area == pytest.approx(total_area(features.geometry.values), rel=1e-9)


def test_features_limit_and_options(run):
    run_dir, features = run
    res = open_run(run_dir)
    with mapflow_geo.set_options(max_features_in_memory=10):
        assert mapflow_geo.get_options()["max_features_in_memory"] == 10
        with pytest.raises(FeaturesTooLargeError, match="to_parquet"):
            res.features  # noqa: B018
        assert res.stats["objects"].sum() == len(features)  # streaming is not limited
    assert mapflow_geo.get_options()["max_features_in_memory"] == 5_000_000
    assert len(res.features) == len(features)
    with pytest.raises(ValueError, match="unknown option"):
        mapflow_geo.set_options(max_objects=1)
    with pytest.raises(ValueError, match="positive"):
        mapflow_geo.set_options(partition_features=0)


def test_replaces_only_a_dataset(run, tmp_path):
    run_dir, _ = run
    res = open_run(run_dir)
    res.to_parquet(tmp_path / "out", partition_features=max(2, res.n_pieces // 4))
    first = sorted(p.name for p in (tmp_path / "out").iterdir())
    res.to_parquet(tmp_path / "out", partition_features=100_000)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) != first
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        res.to_parquet(other)
    assert (other / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_frame_result_and_empty(tmp_path):
    tiles = gpd.GeoDataFrame(
        {"tile_id": ["a"], "row": [0]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326
    )
    feats = gpd.GeoDataFrame(
        {"row": [0, 0, 0], "tile_id": ["a"] * 3, "processing_id": ["p"] * 3, "area": [1, 2, 3]},
        geometry=[shapely.box(0.1 * i, 0.1, 0.1 * i + 0.05, 0.2) for i in range(3)],
        crs=4326,
    )
    info = write_frame_dataset(feats, tmp_path / "frame", partition_features=2)
    assert info.objects == 3 and len(info.parts) == 2
    back = read_dataset(tmp_path / "frame")
    assert sorted(back["area_m2"]) == [1, 2, 3]
    empty = write_dataset(pd.DataFrame(columns=["path", "tile_id", "features"]), tiles,
                          tmp_path / "empty")  # fmt: skip
    assert empty.objects == 0
    assert len(read_dataset(tmp_path / "empty")) == 0
    assert ds.dataset(str(tmp_path / "empty"), format="parquet").count_rows() == 0


def test_a_one_part_dataset_has_its_objects_bounds_and_reads_chosen_columns(tmp_path):
    """A dataset of one part: its bounds (``DatasetInfo.bounds`` and the GeoParquet
    ``bbox`` of ``_common_metadata``) are the objects' own, both corners; ``read_dataset``
    with ``columns`` gives those columns and the geometry, nothing else."""
    geoms = [shapely.box(10.0 + 0.1 * i, 40.0, 10.05 + 0.1 * i, 40.02 + 0.01 * i) for i in range(3)]
    feats = gpd.GeoDataFrame(
        {"row": [0, 0, 1], "tile_id": ["a", "a", "b"], "processing_id": ["p"] * 3,
         "area": [1, 2, 3]},
        geometry=geoms,
        crs=4326,
    )  # fmt: skip
    info = write_frame_dataset(feats, tmp_path / "one")
    assert len(info.parts) == 1
    b = shapely.bounds(np.asarray(geoms))
    want = [b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]
    np.testing.assert_allclose(info.bounds, want, rtol=0, atol=1e-12)
    geo = json.loads(pq.read_schema(tmp_path / "one" / "_common_metadata").metadata[b"geo"])
    np.testing.assert_allclose(geo["columns"]["geometry"]["bbox"], want, rtol=0, atol=1e-12)
    got = read_dataset(tmp_path / "one", columns=["area_m2"])
    assert list(got.columns) == ["area_m2", "geometry"]
    assert sorted(got["area_m2"]) == [1, 2, 3]
    assert sorted(shapely.area(got.geometry.values)) == sorted(shapely.area(np.asarray(geoms)))
