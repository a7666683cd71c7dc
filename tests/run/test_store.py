"""A run's folder (DESIGN.md, *The run cache* and *The journal*; ``run/store.py``'s layout)
and the tables a stored run is read back into, against the simulator's own record of
what it was sent, what it answered and what it charged."""

from __future__ import annotations

import json
import logging
import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from support.areas import rect_km

import mapflow_geo  # noqa: F401  (registers gdf.mapflow)
from mapflow_geo import open_run, sim, sources
from mapflow_geo.exceptions import BudgetError, RunError
from mapflow_geo.run.journal import Journal
from mapflow_geo.run.store import default_run_dir

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}
FINGERPRINT = "0123456789abcdef0123456789abcdef0123456789abcdef"
KEY = FINGERPRINT[:20]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """The per-user cache (platformdirs) inside the test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mapflow-geo" / "runs"


# -- the default run dir: one folder per fingerprint, fresh ones numbered beside it --------


def test_the_first_run_of_a_fingerprint_is_its_plain_folder(cache_home):
    """Nothing stored yet: the run's folder is ``<key>`` under the user's cache, with or
    without ``fresh`` (there is nothing to start afresh from); ``<key>`` is the
    fingerprint's first 20 characters, so a later version finds the runs an earlier one
    stored."""
    assert default_run_dir(FINGERPRINT) == cache_home / KEY
    assert default_run_dir(FINGERPRINT, fresh=True) == cache_home / KEY


def test_a_stored_run_is_resumed_and_fresh_numbers_the_next_beside_it(cache_home):
    (cache_home / KEY).mkdir(parents=True)
    assert default_run_dir(FINGERPRINT) == cache_home / KEY
    assert default_run_dir(FINGERPRINT, fresh=False) == cache_home / KEY
    assert default_run_dir(FINGERPRINT, fresh=True) == cache_home / f"{KEY}.2"
    (cache_home / f"{KEY}.2").mkdir()
    assert default_run_dir(FINGERPRINT) == cache_home / f"{KEY}.2"
    assert default_run_dir(FINGERPRINT, fresh=True) == cache_home / f"{KEY}.3"


def test_the_newest_numbered_folder_wins_by_number_not_by_name(cache_home):
    """``.10`` is newer than ``.9``; folders that are not ``<key>.<number>`` (a backup,
    another fingerprint sharing the prefix) are not runs of this fingerprint."""
    for name in (KEY, f"{KEY}.9", f"{KEY}.10", f"{KEY}.old", f"{KEY}.11.bak", f"{KEY}x.40"):
        (cache_home / name).mkdir(parents=True)
    assert default_run_dir(FINGERPRINT) == cache_home / f"{KEY}.10"
    assert default_run_dir(FINGERPRINT, fresh=True) == cache_home / f"{KEY}.11"
    # the plain folder removed by hand: the numbered ones are still found
    (cache_home / KEY).rmdir()
    assert default_run_dir(FINGERPRINT) == cache_home / f"{KEY}.10"
    other = "fedcba9876543210fedcba9876543210"
    assert default_run_dir(other) == cache_home / other[:20]


# -- one run, partly failed, and what its folder and tables say ----------------------------

PASSWORD = "pw-store-canary-7fa1"


def _areas() -> gpd.GeoDataFrame:
    """Two rows that a 2 km² limit plans as three processings, one of them holding a
    tile of each row (two AOIs: fetched per AOI)."""
    return gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[rect_km(37.5, 55.7, 2, 2), rect_km(37.6, 55.7, 0.8, 0.9)],
        index=pd.Index([10, 20], name="parcel"),
        crs=4326,
    )


def _aoi_failed(aoi: dict) -> bool:
    return bool(aoi["attempts"][-1]["fail"])


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A run with a user-defined source (a password), ``max_restarts=0`` and AOIs the
    simulator fails (seed 6: one AOI of the two-AOI processing), and what the simulator
    holds: its processings (with the AOIs, the parameters it was sent, its answers per
    AOI) and its charges."""
    run_dir = tmp_path_factory.mktemp("store") / "run"
    src = sources.user_defined(
        "https://tiles.example/{z}/{x}/{y}.png",
        zoom=18,
        raster_login="me",
        raster_password=PASSWORD,
    )
    with sim.serve(aoi_area_limit_km2=2, processing_seconds=0, seed=6, fail_fraction=0.4) as server:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mapflow_geo.exceptions.RunIncompleteWarning)
            res = _areas().mapflow.process(
                "buildings",
                client=server.client(),
                run_dir=run_dir,
                source=src,
                max_restarts=0,
                errors="warn",
                **FAST,
            )
        status = {p["id"]: p["status"] for p in server.processings}
        procs = [dict(p, status=status[p["id"]]) for p in server.state["processings"].values()]
        client = server.client()
        answers = {
            a["id"]: client.processings.result(p["id"], aoi_id=a["id"])["features"]
            for p in procs
            for a in p["aois"]
            if not _aoi_failed(a)
        }
        charges = list(server.charges)
    failed = [a for p in procs for a in p["aois"] if _aoi_failed(a)]
    several = [p for p in procs if len(p["aois"]) > 1]
    assert failed and several and any(not _aoi_failed(a) for a in several[0]["aois"])
    return res, run_dir, procs, answers, charges


def _by_key(procs: list[dict]) -> dict[str, dict]:
    return {p["meta"]["mapflow_geo_key"]: p for p in procs}


def _aoi_of(tile_geom, proc: dict) -> dict:
    """The simulator's AOI that is this tile (the polygon it was sent)."""
    shapes = [shapely.geometry.shape(a["geometry"]) for a in proc["aois"]]
    iou = [shapely.area(tile_geom & s) / shapely.area(tile_geom | s) for s in shapes]
    best = int(np.argmax(iou))
    assert iou[best] > 0.999
    return proc["aois"][best]


def test_the_run_dir_holds_the_areas_the_plan_and_the_parameters_sent(stored):
    res, run_dir, procs, _, _ = stored
    names = {p.name for p in run_dir.iterdir()}
    assert {"journal.sqlite", "plan.parquet", "aois.parquet", "params.json", "results"} <= names
    # the input areas, by their own index labels
    aois = gpd.read_parquet(run_dir / "aois.parquet")
    areas = _areas()
    assert list(aois.index) == list(areas.index)
    reopened = open_run(run_dir, progress=False)
    assert res.run_dir == reopened.run_dir == run_dir
    for got in (aois, res.aois, reopened.aois):
        assert list(got.index) == list(areas.index)
        moved = shapely.symmetric_difference(got.geometry.values, areas.geometry.values)
        assert (shapely.area(moved) <= 1e-9 * shapely.area(areas.geometry.values)).all()
    # the plan: each processing's tiles are the AOIs the simulator was sent under its key
    plan = gpd.read_parquet(run_dir / "plan.parquet")
    assert len(plan) == sum(len(p["aois"]) for p in procs)
    for key, proc in _by_key(procs).items():
        tiles = plan[plan["processing_key"] == key]
        assert len(tiles) == len(proc["aois"])
        for geom in tiles.geometry:
            _aoi_of(geom, proc)
    # the parameters: what the simulator was sent, without the password
    text = (run_dir / "params.json").read_text(encoding="utf-8")
    assert PASSWORD not in text
    params = json.loads(text)
    assert params == res.params
    sent = procs[0]["params"]["sourceParams"]["userDefined"]
    assert sent["rasterPassword"] == PASSWORD
    kept = params["source"]["sourceParams"]["userDefined"]
    assert kept.pop("rasterPassword") != PASSWORD
    assert kept == {k: v for k, v in sent.items() if k != "rasterPassword"}
    assert params["area_limit_km2"] == 2
    from mapflow_geo.sim.catalog import default_models

    model = next(m for m in default_models() if m["id"] == procs[0]["wdId"])
    assert params["model"] == model["name"]


def test_one_file_per_answered_aoi_with_the_services_objects(stored):
    """``results/<key>.<aoi>.parquet``: one file per AOI the simulator answered, holding
    its objects with the tile's provenance; nothing for a failed AOI; ``res.files`` lists
    them with their counts."""
    res, run_dir, procs, answers, _ = stored
    by_key = _by_key(procs)
    tiles = res.tiles.set_index("tile_id")
    on_disk = sorted(str(p) for p in (run_dir / "results").glob("*.parquet"))
    assert sorted(res.files["path"]) == on_disk
    assert len(on_disk) == len(answers)
    assert list(res.files.columns) == ["path", "tile_id", "features"]
    for path, tile_id, n in res.files.itertuples(index=False):
        tile = tiles.loc[tile_id]
        key = tile["processing_key"]
        proc = by_key[key]
        aoi = _aoi_of(tile.geometry, proc)
        assert path.startswith(str(run_dir / "results" / f"{key}."))
        stored_objects = gpd.read_parquet(path)
        assert n == len(stored_objects) == len(answers[aoi["id"]]) > 0
        assert sorted(stored_objects["id"]) == sorted(
            f["properties"]["id"] for f in answers[aoi["id"]]
        )
        assert set(stored_objects["tile_id"]) == {tile_id}
        assert set(stored_objects["processing_id"]) == {proc["id"]}
        assert set(stored_objects["row"]) == {tile["row"]}
    # the pieces a reopened run counts and loads are these files' objects
    again = open_run(run_dir, progress=False)
    assert again.n_pieces == sum(len(a) for a in answers.values())


def _said(message: dict, text: str) -> bool:
    """A readable message of the simulator's ``{code, parameters}`` names each value."""
    return all(str(v) in text for v in (message.get("parameters") or {}).values())


def test_tiles_carry_their_aois_status_and_their_processings_id_cost_and_times(stored):
    res, _, procs, _, charges = stored
    by_key = _by_key(procs)
    charged = {c["processingId"]: c["cost"] for c in charges}
    tiles = res.tiles
    assert len(tiles) == sum(len(p["aois"]) for p in procs)
    for tile in tiles.itertuples():
        proc = by_key[tile.processing_key]
        aoi = _aoi_of(tile.geometry, proc)
        assert tile.processing_id == proc["id"]
        assert tile.cost == charged[proc["id"]] == proc["cost"]
        assert tile.created_at <= tile.finished_at
        if _aoi_failed(aoi):
            assert tile.status == "FAILED"
            [text] = tile.messages
            assert _said(aoi["attempts"][-1]["message"], text)
        else:
            assert tile.status == "OK" and tile.messages == []
    # the failed AOI's processing failed as a whole; its other AOI is still OK
    several = next(p for p in procs if len(p["aois"]) > 1)
    mine = tiles[tiles["processing_key"] == several["meta"]["mapflow_geo_key"]]
    assert set(mine["status"]) == {"OK", "FAILED"}
    assert res.failed.index.tolist() == tiles.index[tiles["status"] != "OK"].tolist()


def test_processings_are_the_services_with_their_status_cost_and_messages(stored):
    res, _, procs, _, charges = stored
    charged = {c["processingId"]: c["cost"] for c in charges}
    table = res.processings.set_index("key")
    assert list(res.processings.columns) == [
        "key",
        "processing_id",
        "status",
        "estimate",
        "cost",
        "area_km2",
        "restarts",
        "messages",
        "created_at",
        "finished_at",
        "earlier",
    ]
    assert set(table.index) == set(_by_key(procs))
    for key, proc in _by_key(procs).items():
        row = table.loc[key]
        assert row["processing_id"] == proc["id"]
        assert row["status"] == proc["status"]
        assert row["cost"] == row["estimate"] == charged[proc["id"]]
        assert row["area_km2"] == pytest.approx(proc["area"] / 1e6, rel=1e-3)
        assert row["restarts"] == 0 and not row["earlier"]
        assert row["created_at"] <= row["finished_at"]
        failures = [a["attempts"][-1]["message"] for a in proc["aois"] if _aoi_failed(a)]
        assert len(row["messages"]) == len(failures)
        for message, text in zip(failures, row["messages"], strict=True):
            assert _said(message, text)


def test_qa_counts_each_processings_stored_objects(stored):
    """Per processing with results: the objects the simulator answered for its AOIs
    (summed over AOIs), none repaired or dropped (clean answers), no damaged result."""
    res, _, procs, answers, _ = stored
    qa = res.qa.set_index("key")
    assert list(res.qa.columns) == [
        "key",
        "processing_id",
        "objects",
        "repaired",
        "dropped",
        "damaged_results",
    ]
    assert list(res.qa["key"]) == sorted(res.qa["key"])
    assert set(qa.index) == set(_by_key(procs))
    for key, proc in _by_key(procs).items():
        row = qa.loc[key]
        assert row["processing_id"] == proc["id"]
        assert row["objects"] == sum(len(answers.get(a["id"], [])) for a in proc["aois"])
        assert row["repaired"] == row["dropped"] == row["damaged_results"] == 0
    assert (res.qa.dtypes.iloc[2:] == "int64").all()


def test_a_reopened_run_shows_its_stitch_bar_unless_told_not_to(stored, capfd):
    """``open_run`` shows the ``stitch`` bar on stderr by default when the objects are
    first loaded: every stored piece (the simulator's answers) read, the objects made of
    them; ``progress=False`` writes nothing."""
    _, run_dir, _, answers, _ = stored
    pieces = sum(len(a) for a in answers.values())
    capfd.readouterr()
    quiet = open_run(run_dir, progress=False)
    assert len(quiet.features) > 0
    assert capfd.readouterr() == ("", "")
    res = open_run(run_dir)
    assert capfd.readouterr() == ("", "")  # nothing read yet
    objects = len(res.features)
    out, err = capfd.readouterr()
    frames = [f.strip() for f in re.split(r"[\r\n]+", err) if f.strip()]
    assert out == "" and frames and frames[-1].startswith("mapflow stitch")
    assert f"{pieces}/{pieces}" in frames[-1] and f"objects {objects:,}" in frames[-1]
    assert objects == len(quiet.features) and 0 < objects <= pieces


def test_a_resumed_run_keeps_its_inputs_and_says_what_it_holds(tmp_path, caplog):
    """The plan, the areas and the parameters are written once: a second call in the
    run dir leaves the files as they are (not rewritten, even atomically). The line that
    announces the reuse counts what the simulator charged — here nothing: a model and
    imagery priced at 0 per km² (the documented rule gives ⌈area × 0⌉ = 0 credits)."""
    from mapflow_geo.sim.catalog import default_models, default_providers

    models = default_models()
    for m in models:
        m["pricePerSqKm"] = 0.0
    providers = default_providers()
    for p in providers:
        p["price"] = [{"zoom": z, "priceSqKm": 0.0} for z in (14, 17, 18, 19)]
    inputs = ("plan.parquet", "aois.parquet", "params.json")
    with sim.serve(
        aoi_area_limit_km2=2, models=models, data_providers=providers, processing_seconds=0, seed=6
    ) as server:
        first = _areas().mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, **FAST
        )
        written = {name: (tmp_path / name).stat() for name in inputs}
        client = server.client()
        objects = sum(
            len(client.processings.result(p["id"], aoi_id=a["id"])["features"])
            for p in server.state["processings"].values()
            for a in p["aois"]
        )
        n = len(server.charges)
        assert n > 0 and {c["cost"] for c in server.charges} == {0}
        with caplog.at_level(logging.INFO, logger="mapflow_geo.run.engine"):
            again = _areas().mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, **FAST
            )
        assert len(server.charges) == n
    for name, before in written.items():
        after = (tmp_path / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), name
    line = next(r.getMessage() for r in caplog.records if "reusing" in r.getMessage())
    assert f"{n} of {n} processings done, {objects:,} objects stored, 0 credits charged" in line
    assert first.complete and again.complete and again.run_dir == first.run_dir


def test_tiles_of_refused_creates_say_why_and_nothing_is_counted(tmp_path):
    """Every create sent is refused (a 400 the simulator answers): no processing exists and
    nothing is charged; every tile and processing is ``NOT_CREATED`` with the service's
    refusal as its message, without an id or a cost; the QA table has no row, its counts
    still integers."""
    with sim.serve(aoi_area_limit_km2=2, processing_seconds=0, seed=6) as server:
        server.set_faults(status_400=1.0, methods=["POST"], paths=["/processings/v2"])
        with pytest.warns(mapflow_geo.exceptions.RunIncompleteWarning):
            res = _areas().mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, errors="warn", **FAST
            )
        refused = [r for r in server.requests if r.fault == "status_400"]
        assert server.charges == [] and server.processings == []
    # creates go out side by side; the first refusal stops creating, so the ones not
    # yet sent by then are finished unsent, each naming that refusal
    unsent = res.processings["messages"].map(lambda m: m[0].startswith("not sent"))
    assert len(res.processings) == 3 and 1 <= len(refused) == (~unsent).sum()
    for table in (res.tiles, res.processings):
        assert set(table["status"]) == {"NOT_CREATED"}
        assert table["processing_id"].isna().all() and table["cost"].isna().all()
        for messages in table["messages"]:
            [text] = messages
            assert "HTTP 400" in text and "Bad request (simulated fault)" in text
    assert not res.processings["earlier"].any()
    assert len(res.qa) == 0 and (res.qa.dtypes.iloc[2:] == "int64").all()
    assert len(res.files) == 0 and len(res.features) == 0


def test_results_that_stay_unreadable_are_counted_per_processing(tmp_path):
    """Every result body cut short (the simulator's ``truncated_result``, each time):
    each AOI's result is given up on, so a processing's ``damaged_results`` is the
    number of AOIs the simulator holds for it, and it stored nothing."""
    nothing = dict(FAST, sleep=lambda s: None)  # the download backoff, not waited out
    with sim.serve(
        aoi_area_limit_km2=2, processing_seconds=0, seed=6, faults={"truncated_result": 1.0}
    ) as server:
        with pytest.warns(mapflow_geo.exceptions.RunIncompleteWarning):
            res = _areas().mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, errors="warn", **nothing
            )
        procs = _by_key(list(server.state["processings"].values()))
    qa = res.qa.set_index("key")
    assert set(qa.index) == set(procs)
    assert max(len(p["aois"]) for p in procs.values()) == 2
    for key, proc in procs.items():
        assert qa.loc[key, "processing_id"] == proc["id"]
        assert qa.loc[key, "damaged_results"] == len(proc["aois"])
        assert qa.loc[key, ["objects", "repaired", "dropped"]].tolist() == [0, 0, 0]
    # each tile says why its own result was given up on; its processing itself is OK
    assert set(res.tiles["status"]) == {"DAMAGED_RESULT"}
    for tile in res.tiles.itertuples():
        [text] = tile.messages
        assert tile.processing_id in text and "cut short" in text
    assert set(res.processings["status"]) == {"OK"}
    assert (res.processings["messages"].map(len) == 0).all()
    assert len(res.files) == 0


def _damage(feature: dict) -> str:
    """What ingest must do with an answered object, read from its GeoJSON alone: drop it
    (no geometry, or an empty one), repair it (a collection, a third coordinate, a
    vertex repeated, an invalid shape), or keep it as it is."""
    g = feature["geometry"]
    if g is None or not g.get("coordinates", g.get("geometries")):
        return "dropped"
    if g["type"] == "GeometryCollection":
        return "repaired"
    shape = shapely.geometry.shape(g)
    xy = shapely.get_coordinates(shape, include_z=True)
    rings = shapely.get_rings(shape)
    repeated = any(
        (np.diff(shapely.get_coordinates(r), axis=0) == 0).all(axis=1).any() for r in rings
    )
    if xy.shape[1] == 3 and not np.isnan(xy[:, 2]).all() or repeated or not shape.is_valid:
        return "repaired"
    return ""


def test_repaired_and_dropped_objects_are_counted_per_processing(tmp_path):
    """Damaged geometry in the simulator's answers (its ``damaged_geometry`` fault):
    per processing, summed over its AOIs, the objects stored, repaired and dropped are
    what its answers hold."""
    with sim.serve(
        aoi_area_limit_km2=2, processing_seconds=0, seed=6, faults={"damaged_geometry": 0.1}
    ) as server:
        res = _areas().mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, **FAST
        )
        procs = _by_key(list(server.state["processings"].values()))
        client = server.client()
        kinds = {
            key: [
                _damage(f)
                for a in proc["aois"]
                for f in client.processings.result(proc["id"], aoi_id=a["id"])["features"]
            ]
            for key, proc in procs.items()
        }
    assert res.complete
    qa = res.qa.set_index("key")
    assert set(qa.index) == set(procs)
    for key, found in kinds.items():
        dropped, repaired = found.count("dropped"), found.count("repaired")
        assert qa.loc[key, ["objects", "repaired", "dropped"]].tolist() == [
            len(found) - dropped,
            repaired,
            dropped,
        ]
    several = [k for k, p in procs.items() if len(p["aois"]) > 1]
    assert several and all(qa.loc[several, "repaired"] > 0) and all(qa.loc[several, "dropped"] > 0)


def test_answers_without_objects_store_no_file_and_count_none(tmp_path):
    """A world without buildings (the simulator's ``density=0``): every AOI is answered,
    with no object; its tile is OK, no result file is listed and QA counts 0 objects."""
    with sim.serve(aoi_area_limit_km2=2, processing_seconds=0, seed=6, density=0.0) as server:
        res = _areas().mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, **FAST
        )
        procs = _by_key(list(server.state["processings"].values()))
        client = server.client()
        answered = [
            client.processings.result(p["id"], aoi_id=a["id"])["features"]
            for p in procs.values()
            for a in p["aois"]
        ]
    assert answered and not any(answered)
    assert res.complete and set(res.tiles["status"]) == {"OK"}
    assert len(res.files) == 0  # the (empty) answers are stored, not listed as results
    assert list(res.files.columns) == ["path", "tile_id", "features"]
    assert all(len(gpd.read_parquet(f)) == 0 for f in (tmp_path / "results").glob("*.parquet"))
    qa = res.qa.set_index("key")
    assert set(qa.index) == set(procs)
    assert (qa[["objects", "repaired", "dropped", "damaged_results"]] == 0).all(axis=None)
    assert len(res.features) == 0 and len(open_run(tmp_path, progress=False).features) == 0


@pytest.mark.filterwarnings("error::pandas.errors.Pandas4Warning")
def test_a_run_stopped_before_its_first_processing_reopens_as_planned(tmp_path, monkeypatch):
    """Killed (simulated: the journal's first write of the planned processings raises, as
    in the re-plan crash tests) once the inputs are written and before any processing is
    recorded: the run dir reopens offline with every tile ``PLANNED`` and empty tables
    that still have their columns."""
    from mapflow_geo.run import journal as jr

    class Crash(BaseException):
        pass

    def add_planned_many(self, rows):
        raise Crash

    with sim.serve(aoi_area_limit_km2=2, processing_seconds=0, seed=6) as server:
        monkeypatch.setattr(jr.Journal, "add_planned_many", add_planned_many)
        with pytest.raises(Crash):
            _areas().mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        assert server.processings == [] and server.charges == []
    monkeypatch.undo()
    res = open_run(tmp_path, progress=False)
    assert len(res.tiles) == len(gpd.read_parquet(tmp_path / "plan.parquet")) == 4
    assert set(res.tiles["status"]) == {"PLANNED"} and not res.complete
    assert res.tiles["processing_id"].isna().all() and res.tiles["cost"].isna().all()
    assert (res.tiles["messages"].map(len) == 0).all()
    assert len(res.processings) == len(res.qa) == len(res.files) == 0
    assert list(res.processings.columns)[:3] == ["key", "processing_id", "status"]
    assert list(res.files.columns) == ["path", "tile_id", "features"]
    assert len(res.features) == 0


def test_a_run_dir_reopens_while_a_live_run_holds_its_lock(stored):
    """``open_run`` takes no lock: a run dir that a live process holds (its journal's
    ``flock``, as a second run would find it) still reopens, offline, and the live
    holder keeps its lock."""
    from mapflow_geo.run import journal as jr

    res, run_dir, _, _, _ = stored
    with jr.Journal(run_dir, None) as live:
        again = open_run(run_dir, progress=False)
        assert again.tiles["status"].tolist() == res.tiles["status"].tolist()
        assert again.n_pieces == res.n_pieces
        with pytest.raises(mapflow_geo.exceptions.RunError, match="another process"):
            jr.Journal(run_dir, None)
        assert live.records()


def test_open_run_of_a_folder_without_a_run_says_so_and_writes_nothing(tmp_path):
    missing = tmp_path / "no-such-run"
    with pytest.raises(RunError, match="holds no mapflow-geo run"):
        open_run(missing)
    assert not missing.exists()  # a mistyped path is not created
    other = tmp_path / "photos"
    other.mkdir()
    with pytest.raises(RunError, match="holds no mapflow-geo run"):
        open_run(other)
    assert list(other.iterdir()) == []


def test_open_run_of_a_run_stopped_before_its_plan_says_nothing_was_created(tmp_path):
    """A budget refusal leaves no run behind, and the service has nothing; a journal
    without its plan (a run killed before saving it) is named as such."""
    gdf = gpd.GeoDataFrame(geometry=[rect_km(37.6, 55.7, 3, 3)], crs=4326)
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0) as server:
        with pytest.raises(BudgetError):
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, max_credits=1, **FAST
            )
        assert server.processings == [] and server.charges == []
    with pytest.raises(RunError, match="holds no mapflow-geo run"):
        open_run(tmp_path)
    Journal(tmp_path / "killed", FINGERPRINT).close()
    with pytest.raises(RunError, match="stopped before its plan was saved"):
        open_run(tmp_path / "killed")
