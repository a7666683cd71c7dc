"""The stitched GeoParquet dataset, written by streaming, equals the in-memory path; other
tools (pyarrow.dataset, DuckDB, dask-geopandas) read it; a reopened run reads no object
until ``features`` is touched."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
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


# -- what a dataset written from a frame holds, against the frame itself ---------------
PROVENANCE = {"model": "buildings", "run_id": "run-7", "blocks": ["Classification"]}


def _frame(n: int, crs=4326) -> gpd.GeoDataFrame:
    """``n`` small squares along a diagonal, two rows, two classes, two imagery dates."""
    day = pd.Timestamp("2024-05-01", tz="UTC")
    return gpd.GeoDataFrame(
        {
            "row": [i % 2 for i in range(n)],
            "object_type": ["building"] * n,
            "class": ["house" if i % 3 else "shed" for i in range(n)],
            "area_m2": [10.0 + i for i in range(n)],
            "imagery_date": [day + pd.Timedelta(days=7 * i) for i in range(n)],
        },
        geometry=[shapely.box(20 + 0.01 * i, 50 + 0.005 * i, 20.004 + 0.01 * i, 50.003 + 0.005 * i)
                  for i in range(n)],
        crs=crs,
    )  # fmt: skip


def _meta(path, key: str = "mapflow_geo") -> dict:
    return json.loads(pq.read_schema(path).metadata[key.encode()])


def test_a_frame_dataset_describes_itself_in_every_file_and_counts_the_frame(tmp_path):
    """Written from a frame in three parts: every part and ``_common_metadata`` carry the
    provenance given; ``_common_metadata`` holds the earliest and latest imagery date of
    the frame, its bounds and the README says so; ``DatasetInfo`` counts the frame's
    objects (pieces too) and its per-(row, class) sums are the frame's own."""
    feats = _frame(7)
    out = tmp_path / "described"
    info = write_frame_dataset(feats, out, partition_features=3, provenance=PROVENANCE)
    assert (info.path, info.objects, info.pieces) == (out, 7, 7)
    assert info.parts == [str(out / f"part-{k:05d}.parquet") for k in range(3)]
    whole = _meta(out / "_common_metadata")
    for part in info.parts:
        own = _meta(part)
        for key, value in PROVENANCE.items():
            assert own["provenance"][key] == value
        assert {k: v for k, v in own.items() if k != "dates"} == {
            k: v for k, v in whole.items() if k != "dates"
        }
        dates = pq.read_table(part, columns=["imagery_date"])["imagery_date"].to_pandas()
        assert own["dates"] == {"imagery_date": [dates.min().isoformat(), dates.max().isoformat()]}
    for key, value in PROVENANCE.items():
        assert whole["provenance"][key] == value
    first, last = feats["imagery_date"].min().isoformat(), feats["imagery_date"].max().isoformat()
    assert whole["dates"] == {"imagery_date": [first, last]}
    b = shapely.bounds(np.asarray(feats.geometry.values))
    want = [b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]
    geo = _meta(out / "_common_metadata", "geo")
    np.testing.assert_allclose(geo["columns"]["geometry"]["bbox"], want, rtol=0, atol=1e-12)
    readme = (out / "_README.md").read_text(encoding="utf-8")
    assert "| model | buildings |" in readme and "| run_id | run-7 |" in readme
    assert f"| imagery_date | {first} … {last} |" in readme
    # the sums, from the frame by pandas
    truth = (
        feats.assign(cls=feats["object_type"] + ":" + feats["class"])
        .groupby(["row", "cls"])["area_m2"]
        .agg(n="size", area="sum")
        .reset_index()
    )
    got = info.sums.sort_values(["row", "cls"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["row", "cls", "n", "area"]], truth, check_dtype=False)


def test_a_frame_in_another_crs_is_written_in_lon_lat_and_one_without_crs_as_is(tmp_path):
    """A projected frame is written in EPSG:4326 (its coordinates as pyproj transforms
    them); a frame without a CRS is taken as longitude/latitude and written unchanged."""
    import pyproj

    feats = _frame(4)
    projected = feats.copy()
    to_merc = pyproj.Transformer.from_crs(4326, 3857, always_xy=True)
    projected.geometry = shapely.transform(feats.geometry.values, lambda xy: np.column_stack(
        to_merc.transform(xy[:, 0], xy[:, 1])))  # fmt: skip
    projected = projected.set_crs(3857, allow_override=True)
    write_frame_dataset(projected, tmp_path / "merc")
    back = read_dataset(tmp_path / "merc").sort_values("area_m2")
    to_lonlat = pyproj.Transformer.from_crs(3857, 4326, always_xy=True)
    xy = shapely.get_coordinates(projected.geometry.values)
    lon, lat = to_lonlat.transform(xy[:, 0], xy[:, 1])
    np.testing.assert_allclose(shapely.get_coordinates(back.geometry.values),
                               np.column_stack([lon, lat]), rtol=0, atol=1e-9)  # fmt: skip
    naive = feats.set_crs(None, allow_override=True)
    write_frame_dataset(naive, tmp_path / "naive")
    back = read_dataset(tmp_path / "naive").sort_values("area_m2")
    assert shapely.equals_exact(back.geometry.values, np.asarray(feats.geometry.values)).all()


def test_objects_at_one_place_keep_the_frames_order_across_parts(tmp_path):
    """Objects of one outline (one Hilbert position) keep the frame's order: the first
    ``partition_features`` of them in the first part, each part in that order."""
    n = 60
    feats = gpd.GeoDataFrame(
        {"row": [0] * (n + 2), "area_m2": [float(i) for i in range(n + 2)]},
        geometry=[shapely.box(5, 5, 5.001, 5.001)] * n
        + [shapely.box(4, 4, 4.001, 4.001), shapely.box(6, 6, 6.001, 6.001)],
        crs=4326,
    )
    info = write_frame_dataset(feats, tmp_path / "ties", partition_features=7)
    got = np.concatenate([pq.read_table(p, columns=["area_m2"])["area_m2"].to_numpy()
                          for p in info.parts])  # fmt: skip
    same = got[got < n]
    np.testing.assert_array_equal(same, np.arange(n, dtype=float))


def test_an_empty_frame_gives_one_empty_described_part_and_one_object_is_written(tmp_path):
    """No object: one empty ``part-00000.parquet`` described (provenance given, no
    dates) as ``_common_metadata`` is, and ``DatasetInfo`` says 0 of everything; a
    dataset of one object is written as any other, over the empty one."""
    out = tmp_path / "frame"
    empty = _frame(0)
    info = write_frame_dataset(empty, out, provenance=PROVENANCE)
    part = out / "part-00000.parquet"
    assert (info.path, info.objects, info.pieces, info.parts) == (out, 0, 0, [str(part)])
    assert pq.read_metadata(part).num_rows == 0
    own, whole = _meta(part), _meta(out / "_common_metadata")
    assert own == whole and whole["dates"] == {}
    for key, value in PROVENANCE.items():
        assert whole["provenance"][key] == value
    assert "| model | buildings |" in (out / "_README.md").read_text(encoding="utf-8")
    one = _frame(1)
    info = write_frame_dataset(one, out)  # replaces the empty dataset (overwrite by default)
    assert (info.objects, info.pieces) == (1, 1)
    back = read_dataset(out)
    assert len(back) == 1 and shapely.equals_exact(back.geometry.values[0], one.geometry.values[0])
    info = write_frame_dataset(_frame(3), out)  # and a dataset by another
    assert len(read_dataset(out)) == 3


def test_an_empty_run_dataset_carries_its_qa_counts_and_provenance(tmp_path):
    """A run whose answers gave no object (everything dropped on ingest): the empty
    dataset still says what was repaired and dropped (the QA table's own sums) and where
    it comes from, in ``DatasetInfo``, the metadata and the README."""
    tiles = gpd.GeoDataFrame(
        {"tile_id": ["a"], "row": [0]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326
    )
    qa = pd.DataFrame(
        {"processing_id": ["p1", "p2", "p3"], "repaired": [3, 0, 1], "dropped": [0, 0, 2]}
    )
    out = tmp_path / "empty"
    info = write_dataset(pd.DataFrame(columns=["path", "tile_id", "features"]), tiles, out,
                         qa=qa, provenance=PROVENANCE)  # fmt: skip
    assert (info.repaired, info.dropped) == (qa["repaired"].sum(), qa["dropped"].sum())
    assert (info.objects, info.pieces) == (0, 0)
    for meta in (_meta(out / "_common_metadata"), _meta(out / "part-00000.parquet")):
        assert (meta["repaired"], meta["dropped"]) == (4, 2)
        assert [p["processing_id"] for p in meta["processings"]] == ["p1", "p3"]
        assert meta["provenance"]["run_id"] == "run-7"
    assert "| repaired / dropped on ingest | 4 / 2 |" in (out / "_README.md").read_text(
        encoding="utf-8"
    )


@contextlib.contextmanager
def _watching(folder):
    """The names seen in ``folder`` while the block runs (listed every millisecond by
    another thread): what a user looking at the folder meanwhile would see."""
    seen: set[str] = set()
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                seen.update(os.listdir(folder))
            stop.wait(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def test_a_dataset_is_built_in_a_hidden_folder_beside_it(tmp_path):
    """While it is written, the dataset is a hidden ``.<name>.tmp-<8 hex digits>``
    folder beside its path (what a process killed mid-write leaves), renamed at the end."""
    with _watching(tmp_path) as seen:
        write_frame_dataset(_frame(2000), tmp_path / "objects", partition_features=40)
    building = seen - {"objects"}
    assert building and all(re.fullmatch(r"\.objects\.tmp-[0-9a-f]{8}", n) for n in building), seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects"]


def test_a_dataset_is_written_where_its_parent_folders_do_not_exist_yet(tmp_path):
    out = tmp_path / "a" / "b" / "objects"
    info = write_frame_dataset(_frame(2), out)
    assert info.path == out and len(read_dataset(out)) == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["objects"]  # nothing left beside


# -- stream_class_sums: where it spills, where it runs ---------------------------------
def test_stream_class_sums_of_no_file_counts_nothing():
    tiles = gpd.GeoDataFrame(
        {"tile_id": ["a"], "row": [0]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326
    )
    info = stream_class_sums(pd.DataFrame(columns=["path", "tile_id", "features"]), tiles)
    assert (info.path, info.objects, info.pieces, info.parts) == (None, 0, 0, [])
    assert len(info.sums) == 0


def _stored_pieces(res) -> int:
    """The pieces in the run's stored files, counted by pyarrow from the files."""
    return sum(pq.read_metadata(p).num_rows for p in res.files["path"])


@pytest.mark.parametrize("run", ["buildings"], indirect=True)
def test_stream_class_sums_spills_in_the_folder_given_and_leaves_it_empty(
    run, tmp_path, monkeypatch
):
    """With ``spill_dir`` (made when missing, parents too; an existing one is fine), the
    seam pieces spill there, in a hidden ``.mapflow-seams-*`` folder, and nowhere else
    (the system's temporary folder is a missing one here), and nothing is left in it
    afterwards."""
    import tempfile

    run_dir, features = run
    res = open_run(run_dir)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-system-temp"))
    spill = tmp_path / "spill" / "deep"
    for _ in range(2):  # missing, then existing
        with _watching(spill) as seen:
            info = stream_class_sums(res.files, res.tiles, spill_dir=spill,
                                     partition_features=max(5, res.n_pieces // 4))  # fmt: skip
        assert info.pieces == _stored_pieces(res) and info.objects == len(features)
        assert spill.is_dir() and not list(spill.iterdir())
        # meanwhile, one hidden folder named for what it holds
        assert len(seen) == 1 and re.fullmatch(r"\.mapflow-seams-\w+", seen.pop())


@pytest.mark.parametrize("run", ["buildings"], indirect=True)
def test_stream_class_sums_runs_on_the_dask_cluster_given(run):
    """``dask_client=``: the scan and merge steps run as tasks of that cluster."""
    distributed = pytest.importorskip("distributed")
    run_dir, _ = run
    res = open_run(run_dir)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        distributed.get_task_stream(client) as ts,
    ):
        info = stream_class_sums(res.files, res.tiles, dask_client=client)
    names = [distributed.utils.key_split(t["key"]) for t in ts.data]
    assert "scan_group" in names and "merge_part" in names, names  # key_split drops the "_"
    assert info.pieces == _stored_pieces(res)


# -- the handles a dataset gives ---------------------------------------------------------
def test_a_dataset_info_streams_its_objects_and_a_count_refuses_to(tmp_path):
    """``DatasetInfo`` is an Arrow stream of the dataset's objects (the frame's, in the
    schema a reader asks for); one that only counted objects says it wrote none."""
    import pyarrow as pa

    feats = _frame(5)
    info = write_frame_dataset(feats, tmp_path / "streamed", partition_features=2)
    back = gpd.GeoDataFrame.from_arrow(info)
    assert sorted(back["area_m2"]) == sorted(feats["area_m2"])
    assert sorted(shapely.area(back.geometry.values)) == pytest.approx(
        sorted(shapely.area(feats.geometry.values)), rel=1e-12
    )
    schema = pa.RecordBatchReader.from_stream(info).schema
    want = pa.schema([f.with_type(pa.large_string()) if f.name == "class" else f for f in schema])
    cast = pa.RecordBatchReader.from_stream(info, schema=want)
    assert cast.schema.field("class").type == pa.large_string()
    assert sorted(cast.read_all()["class"].to_pylist()) == sorted(feats["class"])
    tiles = gpd.GeoDataFrame(
        {"tile_id": ["a"], "row": [0]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326
    )
    counted = stream_class_sums(pd.DataFrame(columns=["path", "tile_id", "features"]), tiles)
    with pytest.raises(
        ValueError, match="^this DatasetInfo counted objects without writing a dataset$"
    ):
        counted.__arrow_c_stream__()


@pytest.mark.parametrize("run", ["buildings"], indirect=True)
def test_a_result_given_only_its_files_reads_and_stitches_them(run):
    """A ``MapflowResult`` built from the stored files and the plan alone (no run to
    reopen) reads every piece and stitches them: the run's objects."""
    run_dir, features = run
    res = open_run(run_dir)
    bare = mapflow_geo.MapflowResult(
        tiles=res.tiles, aois=res.aois, processings=res.processings, files=res.files
    )
    assert_same_objects(bare.features, features)
