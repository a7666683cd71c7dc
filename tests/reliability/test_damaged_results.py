"""Damaged answers: result bodies cut short or malformed, and geometry ML models emit.

A body that is not a readable FeatureCollection is fetched again; one that stays
unreadable fails its tile (``DAMAGED_RESULT``, :class:`DamagedResultError`'s message with
the processing id) while the run goes on, and the next run in the same run dir fetches
it. Damaged geometry is repaired or dropped on ingest and counted in ``res.qa`` and the
dataset's metadata. Each is compared with the simulator's ground truth."""

from __future__ import annotations

import json
import logging
import re

import geopandas as gpd
import pyarrow.parquet as pq
import pytest
import shapely
from support.areas import grid_gdf
from support.campaign import FAST
from support.record import assert_one_charge_each
from support.truth import check_against_truth, truth_in

from mapflow_geo import sim
from mapflow_geo.exceptions import DamagedResultError, RunIncompleteWarning
from mapflow_geo.results import read_geojson_table

SIM = dict(aoi_area_limit_km2=5, seed=23)
NO_WAIT = dict(FAST, sleep=lambda s: None)  # the download backoff, not waited out here


def _run(server, gdf, run_dir, **kw):
    return gdf.mapflow.process("buildings", client=server.client(), run_dir=run_dir, **kw)


def _check(server, res, gdf) -> dict:
    date = server.imagery_date(str(res.processings["processing_id"].iloc[0]))
    truth, _, damage = truth_in(server, gdf.geometry, date)
    return check_against_truth(res.features.geometry.values, truth, damage)


@pytest.mark.parametrize("fault", ["truncated_result", "malformed_result"])
def test_unreadable_result_bodies_are_fetched_again(tmp_path, fault):
    gdf = grid_gdf(4, km=1.0)
    with sim.serve(**SIM, faults={fault: 0.3}) as server:
        res = _run(server, gdf, tmp_path / "run", **NO_WAIT)
        hit = [r for r in server.requests if r.fault == fault]
        assert hit, "the fault was never injected"
        assert res.complete
        counts = _check(server, res, gdf)
        assert_one_charge_each(server)
    assert counts["whole"] > 100
    assert (res.qa["damaged_results"] == 0).all()


def test_result_that_stays_unreadable_fails_its_tile_and_the_next_run_fetches_it(tmp_path):
    gdf = grid_gdf(3, km=1.0)
    run_dir = tmp_path / "run"
    with sim.serve(**SIM, faults={"truncated_result": 1.0}) as server:
        with pytest.warns(RunIncompleteWarning, match="DAMAGED_RESULT"):
            res = _run(server, gdf, run_dir, errors="warn", **NO_WAIT)
        assert set(res.tiles["status"]) == {"DAMAGED_RESULT"}
        pids = set(res.tiles["processing_id"])
        for pid, messages in zip(res.tiles["processing_id"], res.tiles["messages"], strict=True):
            assert pid in messages[0] and "cut short" in messages[0]
        assert not list((run_dir / "results").glob("*.parquet")), "a half-parsed result stored"
        assert res.qa["damaged_results"].sum() == len(res.tiles)
        charged = len(server.charges)
        server.clear_faults()
        again = _run(server, gdf, run_dir, **FAST)
        assert again.complete and set(again.tiles["processing_id"]) == pids
        assert len(server.charges) == charged, "resuming paid again"
        _check(server, again, gdf)
        assert_one_charge_each(server)


@pytest.mark.parametrize("per_aoi", [True, False])
def test_a_result_that_stays_unreadable_is_named_by_its_processing(tmp_path, caplog, per_aoi):
    """A result that stays unreadable, fetched per AOI or (a service that does not serve
    results per AOI) as the processing's whole result split per tile: every tile of the
    processing fails, and each warning names the processing by its key (the ``meta`` its
    create carried, in the simulator's record) and by its id."""
    gdf = grid_gdf(4, km=0.8)  # small squares: one processing of 4 AOIs
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=23,
                   result_per_aoi=per_aoi, faults={"truncated_result": 1.0}) as server:  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="mapflow_geo.run.engine"):
            with pytest.warns(RunIncompleteWarning, match="DAMAGED_RESULT"):
                res = _run(server, gdf, tmp_path, errors="warn", **NO_WAIT)
        (proc,) = server.processings
    assert len(res.tiles) == 4 and set(res.tiles["status"]) == {"DAMAGED_RESULT"}
    said = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.engine"]
    named = [m for m in said if proc["id"] in m]
    assert named, said
    assert all(proc["meta"]["mapflow_geo_key"] in re.findall(r"[\w.-]+", m) for m in named)


def test_damaged_geometry_is_repaired_or_dropped_counted_and_never_reaches_the_result(
    tmp_path,
):
    area = shapely.box(37.60, 55.75, 37.62, 55.762)  # ≈ 1.7 km² of the city, tiles of 0.5
    gdf = gpd.GeoDataFrame({"name": ["district"]}, geometry=[area], crs=4326)
    with sim.serve(seed=11, faults={"damaged_geometry": 0.05}) as server:
        res = _run(server, gdf, tmp_path / "run", area_limit_km2=0.5, **FAST)
        assert res.complete and len(res.tiles) >= 4
        date = server.imagery_date(str(res.processings["processing_id"].iloc[0]))
        truth, ids, damage = truth_in(server, [area], date)
        counts = check_against_truth(res.features.geometry.values, truth, damage)
        info = res.to_parquet(tmp_path / "dataset")
    assert counts["repaired"] > 5 and counts["dropped"] > 5
    qa = res.qa
    # every damaged piece is counted: a repaired object at least once, a dropped one too
    assert qa["dropped"].sum() >= counts["dropped"]
    assert qa["repaired"].sum() >= counts["repaired"]
    meta = json.loads(
        pq.read_schema(tmp_path / "dataset" / "_common_metadata").metadata[b"mapflow_geo"]
    )
    assert meta["repaired"] == info.repaired == qa["repaired"].sum()
    assert meta["dropped"] == info.dropped == qa["dropped"].sum()
    back = gpd.read_parquet(tmp_path / "dataset")
    assert shapely.is_valid(back.geometry.values).all() and len(back) == len(res.features)


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"<html><body>Welcome</body></html>", "HTML"),
        (b'{"type": "Feature", "geometry": null, "properties": {}}', "not a FeatureCollection"),
        (b'{"type": "FeatureCollection", "features": [', "cut short"),
        (b'{"type": "FeatureCollection", "features": [,]}', "malformed JSON"),
        (b"[]", "not a JSON object"),
        (b"", "empty body"),
    ],
)
def test_bodies_that_are_not_a_feature_collection_are_named(body, problem):
    with pytest.raises(DamagedResultError, match=problem):
        read_geojson_table(body)
