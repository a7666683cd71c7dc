"""Damaged answers: result bodies cut short or malformed, and geometry ML models emit.

A body that is not a readable FeatureCollection is fetched again; one that stays
unreadable fails its tile (``DAMAGED_RESULT``, :class:`DamagedResultError`'s message with
the processing id) while the run goes on, and the next run in the same run dir fetches
it. Damaged geometry is repaired or dropped on ingest and counted in ``res.qa`` and the
dataset's metadata. Each is compared with the simulator's ground truth."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import mapping
from support.areas import grid_gdf
from support.campaign import FAST
from support.fsync import record_fsyncs
from support.record import aoi_asked, assert_one_charge_each, result_downloads
from support.truth import check_against_truth, truth_in

from mapflow_geo import sim
from mapflow_geo.exceptions import DamagedResultError, RunIncompleteWarning
from mapflow_geo.results import read_geojson_table
from mapflow_geo.results.repair import Repairs
from mapflow_geo.run import _failpoints, fetch
from mapflow_geo.run.fetch import Failpoints, store_result, store_result_by_tile

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
    processing fails (per AOI, the whole result is not asked for on top), and each
    warning names the processing by its key (the ``meta`` its create carried, in the
    simulator's record) and by its id."""
    gdf = grid_gdf(4, km=0.8)  # small squares: one processing of 4 AOIs
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0, seed=23,
                   result_per_aoi=per_aoi, faults={"truncated_result": 1.0}) as server:  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="mapflow_geo.run.engine"):
            with pytest.warns(RunIncompleteWarning, match="DAMAGED_RESULT"):
                res = _run(server, gdf, tmp_path, errors="warn", **NO_WAIT)
        (proc,) = server.processings
        served = {aoi_asked(r) for r in result_downloads(server) if r.status == 200}
    assert len(res.tiles) == 4 and set(res.tiles["status"]) == {"DAMAGED_RESULT"}
    # per AOI, each AOI's result only (never the whole one on top); else the whole one only
    assert len(served) == (4 if per_aoi else 1) and (None in served) != per_aoi
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


# -- one result fetched directly: store_result, store_result_by_tile ----------------------

DIRECT = dict(aoi_area_limit_km2=25, processing_seconds=0, seed=23)
KINDS = ["aoi", "whole", "by_tile"]


@dataclass
class _Done:
    """A finished processing of four AOIs: its id, AOIs, plan tiles and imagery date."""

    client: Any
    pid: str
    aois: list
    tiles: gpd.GeoDataFrame
    date: str

    def aoi_for(self, kind: str) -> str | None:
        return str(self.aois[0].id) if kind == "aoi" else None

    def areas(self, kind: str) -> list:
        """The AOIs whose objects the result of ``kind`` holds."""
        polys = [shapely.geometry.shape(a.geometry) for a in self.aois]
        return polys[:1] if kind == "aoi" else polys


def _finished(server) -> _Done:
    """A processing of four squares, created straight through the API (no run), with
    one plan tile per AOI."""
    client = server.client()
    squares = shapely.MultiPolygon(list(grid_gdf(4, km=0.8).geometry))
    pid = str(
        client.processings.create(name="fetch", wdName="🏠 Buildings", geometry=mapping(squares)).id
    )
    assert str(client.processings.get(pid).status) == "OK"
    aois = client.processings.aois(pid)
    assert len(aois) == 4
    tiles = gpd.GeoDataFrame(
        {"tile_id": [f"t{i}" for i in range(4)], "row": range(4)},
        geometry=[shapely.geometry.shape(a.geometry) for a in aois],
        crs=4326,
    )
    return _Done(client, pid, aois, tiles, server.imagery_date(pid))


def _fetch(kind: str, done: _Done, out, keep_tiles=None, **kw):
    """The result of ``kind`` stored in ``out``: {file name: what was stored}."""
    columns = {"processing_id": done.pid}
    if kind == "by_tile":
        keep_tiles = set(done.tiles["tile_id"]) if keep_tiles is None else keep_tiles
        parts = store_result_by_tile(
            done.client, out, done.pid, done.tiles, keep_tiles, lambda t: Path(f"{t}.parquet"),
            columns, **kw,
        )  # fmt: skip
        return {f"{t}.parquet": s for t, s in parts.items()}
    stored = store_result(done.client, out, done.pid, done.aoi_for(kind), Path("r.parquet"),
                          columns, **kw)  # fmt: skip
    return {"r.parquet": stored}


def _result_requests(server, since: int) -> list:
    return [r for r in server.requests[since:] if r.path.endswith("/result")]


def _aoi_of(rec) -> str | None:
    return dict(p.split("=", 1) for p in rec.query.split("&") if "=" in p).get("aoiId")


def _truth_of(server, done: _Done, areas) -> np.ndarray:
    truth, _, damage = truth_in(server, areas, done.date)
    assert (damage == "").all()
    return truth


def _areas_of(done: _Done, kind: str, name: str) -> list:
    """The areas whose objects the file ``name`` holds."""
    if kind != "by_tile":
        return done.areas(kind)
    tiles = done.tiles.set_index(done.tiles["tile_id"].astype(str)).geometry
    return [tiles[name.removesuffix(".parquet")]]


def _same_objects(got, truth) -> None:
    got = np.asarray(got, dtype=object)
    check_against_truth(got, truth, np.full(len(truth), "", dtype=object))
    assert len(got) == len(truth) > 0


@pytest.mark.parametrize("kind", KINDS)
def test_one_result_that_stays_unreadable_is_downloaded_attempts_times_with_full_jitter(
    tmp_path, monkeypatch, caplog, kind
):
    """Every body cut short: ``attempts`` downloads of the same result, a full-jitter
    backoff of uniform(0, min(30 s, 1 s · 2^k)) before download k + 2, each logged, then
    DamagedResultError naming the processing and the AOI, and nothing stored."""
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        server.set_faults({"truncated_result": 1.0})
        seed = 5
        draws = random.Random(seed)
        expected = [draws.uniform(0, min(30.0, 1.0 * 2**k)) for k in range(3)]
        monkeypatch.setattr(fetch, "random", random.Random(seed))
        slept: list[float] = []
        since = len(server.requests)
        with (
            caplog.at_level(logging.WARNING, logger=fetch.__name__),
            pytest.raises(DamagedResultError) as info,
        ):
            _fetch(kind, done, tmp_path / "out", sleep=slept.append, attempts=4)
        got = _result_requests(server, since)
    aoi = done.aoi_for(kind)
    assert len(got) == 4 and {_aoi_of(r) for r in got} == {aoi}
    assert all(r.fault == "truncated_result" for r in got)
    assert slept == pytest.approx(expected, abs=0)
    err = info.value
    assert (err.processing_id, err.aoi_id) == (done.pid, aoi)
    assert "cut short" in err.problem and err.problem.endswith(" (4 downloads)")
    where = f"result of {done.pid}" + (f" AOI {aoi}" if aoi else "")
    logged = [r.getMessage() for r in caplog.records if r.name == fetch.__name__]
    assert len(logged) == 3
    for message, delay in zip(logged, expected, strict=True):
        assert re.fullmatch(
            rf"{re.escape(where)} unreadable \(cut short .*\); "
            rf"fetching it again in {delay:.1f}s",
            message,
        ), message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kind", KINDS)
def test_one_result_read_on_a_later_download_is_stored(tmp_path, kind):
    """Two bodies cut short, then a whole one: three downloads, two backoffs, the
    result stored."""
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        server.set_faults({"truncated_result": 1.0})
        since = len(server.requests)
        slept: list[float] = []

        def sleep(s: float) -> None:
            slept.append(s)
            if len(slept) == 2:
                server.clear_faults()

        stored = _fetch(kind, done, tmp_path / "out", sleep=sleep, attempts=3)
        got = _result_requests(server, since)
        truth = _truth_of(server, done, done.areas(kind))
    assert [r.fault for r in got] == ["truncated_result", "truncated_result", None]
    assert len(slept) == 2
    back = [gpd.read_parquet(tmp_path / "out" / name) for name in stored]
    _same_objects(np.concatenate([b.geometry.values for b in back]), truth)


def test_fewer_than_one_download_is_refused(tmp_path):
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        since = len(server.requests)
        for kind in KINDS:
            with pytest.raises(ValueError, match="^attempts must be at least 1$"):
                _fetch(kind, done, tmp_path / "out", attempts=0)
        assert not _result_requests(server, since)


class _Gate:
    """A semaphore stand-in: whether it is held now, and how often it was taken."""

    def __init__(self) -> None:
        self.held = False
        self.taken = 0

    def __enter__(self) -> None:
        assert not self.held
        self.held, self.taken = True, self.taken + 1

    def __exit__(self, *exc) -> None:
        self.held = False


@pytest.mark.parametrize("kind", KINDS)
def test_each_download_and_each_parse_holds_its_own_bound(tmp_path, monkeypatch, kind):
    """``downloads`` is held around each download and only then, ``parsing`` around each
    parse and only then; the files hold the processing's true objects (each tile's file
    its tile's), with the columns asked for."""
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        downloads, parsing, seen = _Gate(), _Gate(), []
        real_download = done.client.processings.result_bytes
        real_read = fetch.read_geojson_parts

        def download(*args, **kw):
            seen.append(("download", downloads.held, parsing.held))
            return real_download(*args, **kw)

        def read(data):
            seen.append(("parse", downloads.held, parsing.held))
            return real_read(data)

        monkeypatch.setattr(done.client.processings, "result_bytes", download)
        monkeypatch.setattr(fetch, "read_geojson_parts", read)
        server.set_faults({"malformed_result": 1.0})
        slept: list[float] = []

        def sleep(s: float) -> None:
            slept.append(s)
            server.clear_faults()

        stored = _fetch(
            kind, done, tmp_path / "out", parsing=parsing, downloads=downloads, sleep=sleep
        )
        truths = {name: _truth_of(server, done, _areas_of(done, kind, name)) for name in stored}
    assert seen == [("download", True, False), ("parse", False, True)] * 2
    assert downloads.taken == parsing.taken == 2 and len(slept) == 1
    for name, s in stored.items():
        back = gpd.read_parquet(tmp_path / "out" / name)
        _same_objects(back.geometry.values, truths[name])
        assert s.features == len(back) and s.repairs == Repairs()
        assert set(back["processing_id"]) == {done.pid}
        if kind == "by_tile":
            tile = done.tiles.set_index("tile_id").loc[name.removesuffix(".parquet")]
            assert set(back["tile_id"]) == {tile.name} and set(back["row"]) == {tile["row"]}


@pytest.mark.parametrize("kind", KINDS)
def test_objects_kept_as_decoded_only_when_asked(tmp_path, kind):
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        plain = _fetch(kind, done, tmp_path / "plain")
        kept = _fetch(kind, done, tmp_path / "kept", keep=True)
    assert all(s.piece is None for s in plain.values())
    assert kept.keys() == plain.keys()
    for name, s in kept.items():
        back = gpd.read_parquet(tmp_path / "kept" / name)
        assert s.features == len(back) == len(s.piece) > 0
        assert shapely.equals(s.piece.geometries, back.geometry.values).all()
        assert s.piece.table.column("processing_id").to_pylist() == [done.pid] * len(back)


@pytest.mark.parametrize("kind", ["aoi", "whole"])
def test_one_result_synced_to_disk_only_when_durable(tmp_path, monkeypatch, kind):
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        synced = record_fsyncs(monkeypatch)
        _fetch(kind, done, tmp_path / "fast")
        assert not [p for p in synced if str(tmp_path / "fast") in p]
        _fetch(kind, done, tmp_path / "durable", durable=True)
    durable = [p for p in synced if str(tmp_path / "durable") in p]
    assert str(tmp_path / "durable") in durable  # the folder, after the rename
    assert any(".r.parquet." in p for p in durable)  # the file, before it


class _Killed(Exception):
    pass


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "names", [Failpoints(), Failpoints("monitor_mid_download", "monitor_before_rename")]
)
@pytest.mark.parametrize("where", ["downloaded", "before_rename"])
def test_a_crash_point_is_reached_after_the_download_or_before_the_rename(
    tmp_path, monkeypatch, kind, names, where
):
    """The failpoint armed (its SIGKILL caught here): after the one download with
    nothing written, or with the file written under its temporary name only."""
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        monkeypatch.setattr(_failpoints, "_ARMED", getattr(names, where))
        monkeypatch.setattr(_failpoints, "_NTH", "")

        def kill(pid: int, sig: int) -> None:
            assert (pid, sig) == (os.getpid(), signal.SIGKILL)
            raise _Killed

        monkeypatch.setattr(os, "kill", kill)
        since = len(server.requests)
        out = tmp_path / "out"
        with pytest.raises(_Killed):
            _fetch(kind, done, out, failpoints=names)
        assert len(_result_requests(server, since)) == 1
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if where == "downloaded":
        assert left == []
    else:
        assert len(left) == 1 and left[0].startswith(".") and left[0].endswith(".tmp")


def test_only_the_tiles_asked_for_are_stored_empty_ones_included(tmp_path):
    """The tiles to store, a later one of the processing's and a tile holding none of
    its objects: those two files and no other, each with its own objects, each a
    GeoParquet file (WKB geometry: a binary column, the empty one's too)."""
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        lone = done.tiles.iloc[[0]].assign(tile_id="far", row=99)
        lone["geometry"] = [shapely.box(0, 0, 0.01, 0.01)]
        done.tiles = pd.concat([done.tiles, lone], ignore_index=True)
        later = str(done.tiles["tile_id"].iloc[2])
        stored = _fetch("by_tile", done, tmp_path / "out", {later, "far"}, keep=True)
        truth = _truth_of(server, done, _areas_of(done, "by_tile", f"{later}.parquet"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(stored)
    assert sorted(stored) == sorted([f"{later}.parquet", "far.parquet"])
    _same_objects(gpd.read_parquet(tmp_path / "out" / f"{later}.parquet").geometry.values, truth)
    empty = gpd.read_parquet(tmp_path / "out" / "far.parquet")
    assert len(empty) == 0 and stored["far.parquet"].features == 0
    assert stored["far.parquet"].piece is None
    for name in stored:
        assert pq.read_schema(tmp_path / "out" / name).field("geometry").type == pa.binary()


def test_repairs_of_a_whole_result_counted_once_with_the_first_tile_stored(tmp_path):
    """Damaged geometry in a result split per tile: every empty or null piece dropped
    and counted once over the tiles, all with the first tile stored."""
    with sim.serve(**DIRECT) as server:
        done = _finished(server)
        server.set_faults({"damaged_geometry": 0.2})
        stored = _fetch("by_tile", done, tmp_path / "out")
        _, _, damage = truth_in(server, done.areas("whole"), done.date)
    gone = int(np.isin(damage, ["empty", "null"]).sum())
    first, *rest = stored.values()
    assert first.repairs.dropped == gone > 0 and first.repairs.repaired > 0
    assert all(s.repairs == Repairs() for s in rest) and len(rest) == 3
