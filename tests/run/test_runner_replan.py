"""TOO_LARGE_PROCESSING: the server's limit shrank after planning; the runner re-plans."""

import logging
import re
from collections import Counter

import geopandas as gpd
import numpy as np
import pytest
import shapely
from support import record
from support.areas import rect_km

import mapflow_geo  # noqa: F401
from mapflow_geo import open_run, sim
from mapflow_geo.run.status import RunStatus

REPLANNED = RunStatus.REPLANNED

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}


def _gdf():
    return gpd.GeoDataFrame(
        {"name": ["big", "small"]},
        geometry=[rect_km(30.0, 50.0, 9, 7), rect_km(30.3, 50.0, 3, 2)],
        crs="EPSG:4326",
    )


def _reference(tmp_path):
    with sim.serve(aoi_area_limit_km2=10, processing_seconds=0, seed=5) as server:
        return _gdf().mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path / "ref", area_limit_km2=10, **FAST
        )


def _assert_same_ground(res, ref):
    assert res.complete
    assert len(res.features) == len(ref.features)
    a = shapely.area(res.features.geometry.values).sum()
    b = shapely.area(ref.features.geometry.values).sum()
    np.testing.assert_allclose(a, b, rtol=1e-6)
    # every tile's ground is covered: the re-planned tiles partition the original rows
    for row, geom in _gdf().geometry.items():
        tiles = res.tiles[res.tiles["row"] == row]
        cover = shapely.union_all(tiles.geometry.values)
        assert shapely.area(shapely.difference(geom, cover)) <= 1e-9 * geom.area


def test_too_large_processing_is_replanned(tmp_path):
    ref = _reference(tmp_path)
    with sim.serve(aoi_area_limit_km2=10, processing_seconds=0, seed=5) as server:
        client = server.client()
        res = _gdf().mapflow.process(
            "buildings", client=client, run_dir=tmp_path / "run", area_limit_km2=25, **FAST
        )
        creates = record.creates(server)
        refused = [r for r in creates if r.status == 400]
        committed = [r for r in creates if r.status < 300]
        charges = server.charges
    assert refused, "the plan at 25 km² must have been refused by the 10 km² server"
    # each committed create charged once, and only the pieces were charged
    assert len(committed) == len(charges) == res.processings["processing_id"].nunique()
    assert (res.processings["status"] == "OK").all()
    assert all(len(p) > 0 for p in res.processings["processing_id"])
    _assert_same_ground(res, ref)
    # durable: the stored plan holds the pieces, the journal the refused processing
    again = open_run(tmp_path / "run")
    assert len(again.features) == len(res.features)
    assert set(again.tiles["processing_key"]) == set(res.tiles["processing_key"])
    from mapflow_geo.run import journal as jr

    with jr.Journal(tmp_path / "run", None, lock=False) as j:
        statuses = {r.key: r.status for r in j.records()}
    assert REPLANNED in statuses.values()
    assert not set(k for k, s in statuses.items() if s == REPLANNED) & set(
        again.tiles["processing_key"]
    )


def test_replan_resumes_after_crash_mid_run(tmp_path, monkeypatch):
    """Killed (simulated) after the re-planned plan file is written but before the pieces
    reach the journal: resuming with the same run_dir creates the pieces, never the
    refused processing again, and charges nothing twice."""
    from mapflow_geo.run import journal as jr

    ref = _reference(tmp_path)

    class Crash(BaseException):
        pass

    real = jr.Journal.add_planned

    def add_planned(self, key, **kw):
        if "." in key:  # a re-planned piece
            raise Crash
        return real(self, key, **kw)

    with sim.serve(aoi_area_limit_km2=10, processing_seconds=0, seed=5) as server:
        client = server.client()
        monkeypatch.setattr(jr.Journal, "add_planned", add_planned)
        try:
            _gdf().mapflow.process(
                "buildings", client=client, run_dir=tmp_path / "run", area_limit_km2=25, **FAST
            )
        except Crash:
            pass
        else:  # pragma: no cover
            raise AssertionError("the run should have been interrupted")
        monkeypatch.setattr(jr.Journal, "add_planned", real)
        n_refused = len([r for r in record.creates(server) if r.status == 400])
        res = _gdf().mapflow.process(
            "buildings", client=client, run_dir=tmp_path / "run", area_limit_km2=25, **FAST
        )
        n_creates = len(record.creates(server))
        with jr.Journal(tmp_path / "run", None, lock=False) as j:
            records = j.records()
        again = _gdf().mapflow.process(
            "buildings", client=client, run_dir=tmp_path / "run", area_limit_km2=25, **FAST
        )
        creates = record.creates(server)
        charges = server.charges
    assert n_refused >= 1
    # the refused processing was not sent again after the crash
    assert len([r for r in creates if r.status == 400]) == n_refused
    assert len(creates) == n_creates  # resuming a finished run creates nothing
    committed = [r for r in creates if r.status < 300]
    assert len(committed) == len(charges) == res.processings["processing_id"].nunique()
    _assert_same_ground(res, ref)
    assert len(again.features) == len(res.features)
    # each processing the service refused as too large (no tile of the plan left in it)
    # is finished on resume as re-planned, and says so
    gone = [r for r in records if r.key not in set(res.tiles["processing_key"])]
    assert len(gone) == n_refused, records
    for r in gone:
        assert r.status == REPLANNED and r.processing_id is None, r
        assert len(r.messages) == 1 and "re-planned" in r.messages[0].split(), r


def test_a_resumed_scene_run_creates_each_piece_on_its_own_scene(tmp_path, monkeypatch):
    """Killed (simulated, as above) once a scene-planned processing refused as too large
    is re-planned into pieces, before the pieces reach the journal: the resumed run
    rebuilds the pieces from the stored plan and creates each on the scene of the tiles
    it covers, under the name given — the simulator's record of each create body says
    which."""
    from mapflow_geo.imagery import choose_scenes
    from mapflow_geo.run import journal as jr

    class Crash(BaseException):
        pass

    real = jr.Journal.add_planned

    def add_planned(self, key, **kw):
        if "." in key:  # a re-planned piece
            raise Crash
        return real(self, key, **kw)

    aoi = gpd.GeoDataFrame(
        geometry=[shapely.box(37.67, 55.70, 37.73, 55.74)], crs=4326
    )  # two cells
    with sim.serve(aoi_area_limit_km2=4, processing_seconds=0) as server:
        client = server.client()
        chosen = choose_scenes(aoi.mapflow.search_imagery(client=client, max_cloud_cover=0.5), aoi)
        opts = dict(client=client, source=chosen, run_dir=tmp_path, area_limit_km2=10, **FAST)
        opts["name"] = "survey-7"
        monkeypatch.setattr(jr.Journal, "add_planned", add_planned)
        with pytest.raises(Crash):
            aoi.mapflow.process("buildings", **opts)
        monkeypatch.setattr(jr.Journal, "add_planned", real)
        res = aoi.mapflow.process("buildings", **opts)
        bodies = {p["id"]: p for p in server.state["processings"].values()}
    assert res.complete
    pieces = res.tiles[res.tiles["processing_key"].str.contains(".", regex=False)]
    assert pieces["processing_key"].nunique() >= 2
    assert pieces["scene_id"].nunique() >= 2  # pieces of more than one scene
    for key, tiles in res.tiles.groupby("processing_key"):
        (scene,) = set(tiles["scene_id"])
        body = bodies[tiles["processing_id"].iloc[0]]
        assert body["params"]["sourceParams"]["imagerySearch"]["imageIds"] == [scene], key
        assert body["name"] == f"survey-7 {key}"  # the name given, piece or not


def test_a_run_of_one_processing_resumes_its_pieces(tmp_path, monkeypatch):
    """The same crash in a run planned as one processing: the resumed run creates the
    pieces of that one processing (and nothing else), each charged once."""
    from mapflow_geo.run import journal as jr

    class Crash(BaseException):
        pass

    real = jr.Journal.add_planned

    def add_planned(self, key, **kw):
        if "." in key:  # a re-planned piece
            raise Crash
        return real(self, key, **kw)

    gdf = gpd.GeoDataFrame(geometry=[rect_km(30.0, 50.0, 3, 3)], crs="EPSG:4326")
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=5) as server:
        opts = dict(client=server.client(), run_dir=tmp_path, area_limit_km2=25, **FAST)
        monkeypatch.setattr(jr.Journal, "add_planned", add_planned)
        with pytest.raises(Crash):
            gdf.mapflow.process("buildings", **opts)
        monkeypatch.setattr(jr.Journal, "add_planned", real)
        refused = [r for r in record.creates(server) if r.status == 400]
        res = gdf.mapflow.process("buildings", **opts)
        creates = record.creates(server)
        charges = server.charges
    assert len(refused) == 1 and [r for r in creates if r.status == 400] == refused
    assert res.complete and res.tiles["processing_key"].str.contains(".", regex=False).all()
    assert len(charges) == res.processings["processing_id"].nunique() >= 2


def test_pieces_are_named_numbered_and_announced(tmp_path, caplog):
    """Every processing refused as too large is re-planned in the run: each piece is
    created under the name given, as it was given (spaces inside and at its end kept:
    the simulator's record of the create bodies), the stored plan numbers each
    processing apart from every other, and an INFO line names each refused processing
    with the server's limit and the number of pieces it became."""
    caplog.set_level(logging.INFO, logger="mapflow_geo.run.create")
    name = "survey 7 "
    with sim.serve(aoi_area_limit_km2=10, processing_seconds=0, seed=5) as server:
        res = _gdf().mapflow.process(
            "buildings",
            client=server.client(),
            run_dir=tmp_path,
            area_limit_km2=25,
            name=name,
            **FAST,
        )
        refused = [r for r in record.creates(server) if r.status == 400]
        procs = server.processings
    keys = [p["meta"]["mapflow_geo_key"] for p in procs]
    for p, key in zip(procs, keys, strict=True):
        assert p["name"] == name + " " + key
    pieces = Counter(k.rsplit(".", 1)[0] for k in keys if "." in k)
    assert len(pieces) == len(refused) >= 2  # every refused processing became pieces
    pairs = res.tiles[["processing", "processing_key"]].drop_duplicates()
    assert pairs["processing"].is_unique and pairs["processing_key"].is_unique
    assert set(pairs["processing_key"]) == set(keys)
    said = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.create"]
    for parent, n in pieces.items():
        lines = [m for m in said if parent in re.findall(r"[\w.-]+", m)]
        numbers = [
            {float(x) for x in re.findall(r"\d+(?:\.\d+)?", m.replace(parent, ""))} for m in lines
        ]
        assert any({10.0, n} <= found for found in numbers), lines


def test_a_processing_that_cannot_be_planned_under_the_limit_is_reported_too_large(tmp_path):
    """An account whose area limit is 0 m²: the server refuses every create as too large
    and no plan fits under its limit. Each processing is sent once, charged nothing, and
    finishes as the server answered (``TOO_LARGE_PROCESSING``) while the run reports
    the tiles that did not succeed."""
    from mapflow_geo.exceptions import RunIncompleteWarning

    with sim.serve(aoi_area_limit_km2=0, processing_seconds=0, seed=5) as server:
        with pytest.warns(RunIncompleteWarning, match="TOO_LARGE_PROCESSING"):
            res = _gdf().mapflow.process(
                "buildings",
                client=server.client(),
                run_dir=tmp_path,
                area_limit_km2=25,
                errors="warn",
                **FAST,
            )
        creates = record.creates(server)
        charges = server.charges
    assert charges == []
    assert len(creates) == len(res.processings) >= 2 and {r.status for r in creates} == {400}
    assert set(res.processings["status"]) == {"TOO_LARGE_PROCESSING"}
    assert set(res.tiles["status"]) == {"TOO_LARGE_PROCESSING"}
    assert res.processings["processing_id"].isna().all()


def _comb(lon: float = 30.0, lat: float = 50.0) -> gpd.GeoDataFrame:
    """One row shaped like a comb (six teeth 4 km long on a common base, ≈ 3.9 km²): cut
    across the teeth, a cell holds several disjoint polygons (one AOI each)."""
    width = 0.15 / (111.32 * np.cos(np.radians(lat)))  # 150 m of longitude
    teeth = [rect_km(lon + i * 4 * width, lat, 0.15, 4.0) for i in range(6)]
    base = rect_km(lon, lat, 6 * 0.6 - 0.45, 0.15)
    return gpd.GeoDataFrame(geometry=[shapely.union_all([*teeth, base])], crs="EPSG:4326")


def test_pieces_keep_the_runs_max_aois(tmp_path):
    """A run with ``max_aois=2`` whose one processing (the comb, one AOI) the server
    refuses as too large: its pieces under the server's 1 km² are created with at most
    two AOIs each (the simulator's record of each processing's AOIs), although the
    service would take ten."""
    gdf = _comb()
    with sim.serve(
        aoi_area_limit_km2=1, max_aois_per_processing=10, processing_seconds=0, seed=5
    ) as server:
        res = gdf.mapflow.process(
            "buildings",
            client=server.client(),
            run_dir=tmp_path,
            area_limit_km2=25,
            max_aois=2,
            **FAST,
        )
        refused = [r for r in record.creates(server) if r.status == 400]
        aois = [len(p["aois"]) for p in server.state["processings"].values()]
    assert len(refused) == 1 and res.complete
    assert len(aois) >= 2 and max(aois) <= 2, aois


@pytest.mark.parametrize("limit", ["missing", None, "unlimited"])
def test_a_refusal_that_states_no_usable_limit_is_reported_not_replanned(
    tmp_path, monkeypatch, caplog, limit
):
    """A service that refuses a create as too large without a limit the runner can read
    (``aoiAreaLimit`` left out, ``null``, or text): the processing is sent once, charged
    nothing, not re-planned, and finishes as the service answered, with the service's
    message; a WARNING names its key and carries that message."""
    from mapflow_geo.exceptions import RunIncompleteWarning
    from mapflow_geo.sim import api_processings
    from mapflow_geo.sim.base import ApiError

    said: list[str] = []
    real = api_processings.pricing.check_limits

    def check_limits(account, polys):
        try:
            return real(account, polys)
        except ApiError as e:
            said.append(e.message)
            if limit == "missing":
                e.params.pop("aoiAreaLimit")
            else:
                e.params["aoiAreaLimit"] = limit
            raise

    monkeypatch.setattr(api_processings.pricing, "check_limits", check_limits)
    gdf = gpd.GeoDataFrame(geometry=[rect_km(30.0, 50.0, 3, 3)], crs="EPSG:4326")
    caplog.set_level(logging.WARNING, logger="mapflow_geo.run.create")
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=5) as server:
        with pytest.warns(RunIncompleteWarning, match="TOO_LARGE_PROCESSING"):
            res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path,
                                      area_limit_km2=25, errors="warn", **FAST)  # fmt: skip
        creates = record.creates(server)
        charges = server.charges
    assert len(said) == 1 and [r.status for r in creates] == [400] and charges == []
    (key,) = set(res.tiles["processing_key"])
    assert set(res.processings["status"]) == {"TOO_LARGE_PROCESSING"}
    (messages,) = res.processings["messages"]
    assert len(messages) == 1 and said[0] in messages[0], messages
    lines = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.create"]
    assert len(lines) == 1, lines
    head = f"{key} refused as too large without a usable limit: "
    assert lines[0].startswith(head) and said[0] in lines[0], lines


def test_two_areas_refused_together_are_created_apart(tmp_path):
    """Two 1 km² areas planned into one processing under a given 25 km² limit; the
    service allows 1.5 km²: it refuses that processing (nothing charged) and the run
    creates the same two areas as two processings, each under the service's limit and
    charged once, numbered as pieces of the refused one. Wrong rule caught: a re-plan
    into two processings of the same tiles taken as one that cannot be made smaller."""
    gdf = gpd.GeoDataFrame(
        geometry=[rect_km(30.0, 50.0, 1, 1), rect_km(30.05, 50.0, 1, 1)], crs="EPSG:4326"
    )
    with sim.serve(aoi_area_limit_km2=1.5, processing_seconds=0, seed=5) as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, area_limit_km2=25, **FAST
        )
        refused = [r for r in record.creates(server) if r.status == 400]
        committed = server.processings
        record.assert_one_charge_each(server)
    assert len(refused) == 1 and res.complete
    assert len(committed) == 2 and all(float(p["area"]) <= 1.5e6 for p in committed)
    keys = sorted(p["meta"]["mapflow_geo_key"] for p in committed)
    parent = keys[0].rsplit(".", 1)[0]
    assert keys == [f"{parent}.00", f"{parent}.01"]
    assert sorted(res.tiles["processing_key"]) == keys
