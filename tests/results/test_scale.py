"""The dask path equals the in-memory path on a run of ≥ 100 processings."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from support.objects import assert_same_objects

dask = pytest.importorskip("dask")
dask_geopandas = pytest.importorskip("dask_geopandas")

import mapflow_geo  # noqa: E402
from mapflow_geo.results.dask import stats_dask, stitch_dask, to_dask  # noqa: E402

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02, "progress": False}
# three rows (two touching), planned into 0.5 km² single-tile processings: many seams
ROWS = gpd.GeoDataFrame(
    {"name": ["a", "b", "c"]},
    geometry=[
        shapely.box(37.60, 55.70, 37.66, 55.74),
        shapely.box(37.66, 55.70, 37.73, 55.74),
        shapely.box(37.60, 55.745, 37.70, 55.78),
    ],
    crs=4326,
)


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    from mapflow_geo import sim

    with sim.serve() as server:
        res = ROWS.mapflow.process(
            "buildings",
            client=server.client(),
            run_dir=tmp_path_factory.mktemp("run"),
            area_limit_km2=0.5,
            max_aois=1,
            max_workers=8,
            **FAST,
        )
    assert len(res.processings) >= 100
    return res


def test_dask_stitch_and_stats_equal_in_memory(big_run):
    res = big_run
    files = res.files
    assert files["features"].sum() > len(res.features)  # there were seams to stitch
    ddf = to_dask(res, partition_features=400, stitched=False)
    assert isinstance(ddf, dask_geopandas.GeoDataFrame) and ddf.npartitions > 5
    with dask.config.set(scheduler="synchronous"):
        raw = ddf.compute()
        assert len(raw) == files["features"].sum()
        stitched = stitch_dask(ddf, res.tiles)
        out = stitched.compute()
        stats = stats_dask(stitched, res)
    assert_same_objects(out, res.features)
    pd.testing.assert_frame_equal(stats, res.stats, check_dtype=False)


def test_partitions_are_spatial_neighbourhoods(big_run):
    ddf = to_dask(big_run, partition_features=400, stitched=False)
    with dask.config.set(scheduler="synchronous"):
        parts = [ddf.get_partition(i).compute() for i in range(ddf.npartitions)]
    spans = [np.ptp(p.total_bounds.reshape(2, 2), axis=0).max() for p in parts if len(p)]
    whole = np.ptp(big_run.aois.total_bounds.reshape(2, 2), axis=0).max()
    assert np.median(spans) < whole / 2


def test_local_cluster(big_run):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        out = big_run.to_dask(partition_features=2000).compute()
    assert_same_objects(out, big_run.features)


def test_process_cluster_stitch_stats_and_dataset(big_run, tmp_path):
    """On a ``dask.distributed`` cluster of worker processes, stitching, stats and the
    stitched dataset equal the local path; ``dask_client=`` takes a Client or an address."""
    distributed = pytest.importorskip("distributed")
    from mapflow_geo.results import read_dataset

    res = big_run
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        stitched = stitch_dask(to_dask(res, partition_features=400), res.tiles)
        out = client.compute(stitched).result()
        stats = stats_dask(stitched, res, dask_client=client)
        info = res.to_parquet(tmp_path / "on-cluster", partition_features=800, dask_client=client)
        by_address = stats_dask(stitched, res, dask_client=cluster.scheduler_address)
        sums = mapflow_geo.MapflowResult(
            tiles=res.tiles, aois=res.aois, processings=res.processings, files=res.files
        ).class_sums(dask_client=cluster.scheduler_address)
    assert_same_objects(out, res.features)
    pd.testing.assert_frame_equal(stats, res.stats, check_dtype=False)
    pd.testing.assert_frame_equal(by_address, res.stats, check_dtype=False)
    assert int(sums["n"].sum()) == len(res.features)
    assert len(info.parts) > 3 and info.objects == len(res.features)
    assert_same_objects(read_dataset(tmp_path / "on-cluster"), res.features)
    local = res.to_parquet(tmp_path / "local", partition_features=800)
    assert local.objects == info.objects
    pd.testing.assert_frame_equal(
        res.stats, mapflow_geo.results.stats.stats_from_sums(info.sums, res.aois, res.tiles),
        check_dtype=False,
    )  # fmt: skip
