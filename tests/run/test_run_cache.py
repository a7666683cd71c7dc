"""The default run cache: keyed by service host and account, announced when reused,
earlier charges kept apart, ``fresh=True`` — against the simulator with several accounts."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

import mapflow_geo  # noqa: F401  (registers gdf.mapflow)
from mapflow_geo import sim
from mapflow_geo.client import MapflowClient
from mapflow_geo.exceptions import MapflowError
from mapflow_geo.models import UserStatus
from mapflow_geo.run.prepare import account_of
from mapflow_geo.sim.service import DEFAULT_EMAIL

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}
OTHER_EMAIL = "other@mapflow.local"
OTHER_KEY = "other-key-2"
OTHER = base64.b64encode(f"{OTHER_EMAIL}:{OTHER_KEY}".encode()).decode()
ENGINE_LOG = "mapflow_geo.run.engine"


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """The per-user cache (platformdirs) inside the test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mapflow-geo" / "runs"


def _gdf():
    lat = 55.7
    dlon = 2.0 / (111.32 * np.cos(np.radians(lat)))
    return gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[box(37.5, lat, 37.5 + dlon, lat + 2 / 111.2), box(37.6, lat, 37.61, lat + 0.01)],
        crs=4326,
    )


def _serve():
    return sim.serve(aoi_area_limit_km2=2, processing_seconds=0, seed=5, extra_tokens=[OTHER])


def _creates(server, token=None):
    """Committed creates of one account (None: the main one), from the simulator's state."""
    owners = {p["id"]: p.get("owner") for p in server.state["processings"].values()}
    return [c for c in server.charges if owners.get(c["processingId"]) == token]


def _credits_left(server, email=None):
    state = server.state
    account = state["account"] if email is None else state["others"][email]
    return account["remainingCredits"]


def test_two_accounts_on_one_host_never_share_a_run(cache_home):
    gdf = _gdf()
    with _serve() as server:
        start = _credits_left(server)
        mine = gdf.mapflow.process("buildings", client=server.client(), **FAST)
        other_client = MapflowClient(OTHER, base_url=server.url)
        theirs = gdf.mapflow.process("buildings", client=other_client, **FAST)
        main_charges = _creates(server)
        other_charges = _creates(server, OTHER_EMAIL)
        other_left = _credits_left(server, OTHER_EMAIL)
        main_left = _credits_left(server)
    assert mine.run_dir != theirs.run_dir
    assert mine.run_dir.parent == theirs.run_dir.parent == cache_home
    # each account created and paid for its own processings
    n = len(mine.processings)
    assert len(main_charges) == n and len(other_charges) == len(theirs.processings) == n
    assert set(theirs.processings["processing_id"]) == {c["processingId"] for c in other_charges}
    assert set(mine.processings["processing_id"]) == {c["processingId"] for c in main_charges}
    paid_by_other = sum(c["cost"] for c in other_charges)
    assert paid_by_other > 0 and start - other_left == paid_by_other
    assert start - main_left == sum(c["cost"] for c in main_charges)
    # and reports them as its own, not the other account's
    totals = theirs.totals
    assert totals["charged_credits"] == paid_by_other
    assert totals["charged_earlier_credits"] == 0
    assert len(theirs.features) == len(mine.features) > 0


def test_two_simulators_with_two_accounts_on_one_host(cache_home):
    """Two services on the same host (127.0.0.1, two ports), each with its own account:
    the second run pays for its own processings on its own service and reports its own
    charges; neither reuses the other's stored run."""
    gdf = _gdf()
    runs, charges, spent = [], [], []
    for token in (None, OTHER):
        options = {} if token is None else {"token": token}
        with sim.serve(aoi_area_limit_km2=2, processing_seconds=0, seed=5, **options) as server:
            start = _credits_left(server)
            res = gdf.mapflow.process("buildings", client=server.client(), **FAST)
            charges.append(list(server.charges))
            spent.append(start - _credits_left(server))
        runs.append(res)
    first, second = runs
    assert first.run_dir != second.run_dir
    assert first.run_dir.parent == second.run_dir.parent == cache_home
    for res, made, paid in zip(runs, charges, spent, strict=True):
        assert len(made) == len(res.processings) > 0
        assert set(res.processings["processing_id"]) == {c["processingId"] for c in made}
        assert res.totals["charged_credits"] == paid == sum(c["cost"] for c in made) > 0
        assert res.totals["charged_earlier_credits"] == 0


def test_rerun_on_the_same_account_reuses_and_says_so(cache_home, caplog, capfd):
    gdf = _gdf()
    with _serve() as server:
        first = gdf.mapflow.process("buildings", client=server.client(), **FAST)
        charged = sum(c["cost"] for c in _creates(server))
        n_charges = len(server.charges)
        capfd.readouterr()
        with caplog.at_level(logging.INFO, logger=ENGINE_LOG):
            again = gdf.mapflow.process(
                "buildings", client=server.client(), **dict(FAST, progress=True)
            )
        assert len(server.charges) == n_charges  # nothing created, nothing charged
    assert again.run_dir == first.run_dir
    said = [r.getMessage() for r in caplog.records if r.name == ENGINE_LOG]
    line = next(m for m in said if "reusing" in m)
    n = len(first.processings)
    assert str(first.run_dir) in line
    assert f"{n} of {n} processings done" in line
    assert f"{first.n_pieces:,} objects stored" in line
    assert f"{charged:,} credits charged earlier" in line
    assert line.endswith(" earlier; fresh=True starts a new run")
    err = capfd.readouterr().err
    assert f"mapflow: {line}" in err.splitlines()
    assert f"credits 0 (+{charged:,} earlier)" in err  # the bar keeps them apart too
    # the earlier call's charges are reported as earlier ones, not as this call's
    totals = again.totals
    assert totals["charged_credits"] == 0
    assert totals["charged_earlier_credits"] == charged
    assert again.processings["earlier"].all()
    assert first.totals["charged_credits"] == charged
    assert not first.processings["earlier"].any()
    assert "(+" in repr(again) and "(+" not in repr(first)


def test_a_rotated_key_of_the_same_account_resumes(cache_home, caplog):
    gdf = _gdf()
    with _serve() as server:
        old_token = server.token
        first = gdf.mapflow.process("buildings", client=server.client(), **FAST)
        n_charges = len(server.charges)
        new_key = "rotated-key-0123456789"
        new_token = base64.b64encode(f"{DEFAULT_EMAIL}:{new_key}".encode()).decode()
        server.set_token(new_token)
        with caplog.at_level(logging.INFO, logger=ENGINE_LOG):
            again = gdf.mapflow.process(
                "buildings", client=MapflowClient(new_token, base_url=server.url), **FAST
            )
        assert len(server.charges) == n_charges
    assert again.run_dir == first.run_dir
    assert any(str(first.run_dir) in r.getMessage() for r in caplog.records)
    # the account's identity keys the cache; no form of either token is written
    old_key = base64.b64decode(old_token).decode().split(":", 1)[1]
    for f in first.run_dir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for secret in (old_token, old_key, new_token, new_key):
                assert secret.encode() not in data, f"{secret[:3]}… in {f.name}"
    assert DEFAULT_EMAIL not in str(first.run_dir)


def test_fresh_starts_a_new_run_and_keeps_the_old(cache_home, caplog):
    gdf = _gdf()
    with _serve() as server:
        first = gdf.mapflow.process("buildings", client=server.client(), **FAST)
        before = {c["processingId"] for c in server.charges}
        new = gdf.mapflow.process("buildings", client=server.client(), fresh=True, **FAST)
        added = [c for c in server.charges if c["processingId"] not in before]
        with caplog.at_level(logging.INFO, logger=ENGINE_LOG):
            later = gdf.mapflow.process("buildings", client=server.client(), **FAST)
        n_after = len(server.charges)
    assert new.run_dir != first.run_dir and new.run_dir.parent == first.run_dir.parent
    assert len(added) == len(new.processings) > 0
    assert set(new.processings["processing_id"]) == {c["processingId"] for c in added}
    assert new.totals["charged_credits"] == sum(c["cost"] for c in added)
    # the old run is still there, whole
    assert (first.run_dir / "journal.sqlite").exists()
    assert len(mapflow_geo.open_run(first.run_dir, progress=False).features) == len(first.features)
    # a later call resumes the newest run
    assert later.run_dir == new.run_dir and n_after == len(before) + len(added)
    assert any(str(new.run_dir) in r.getMessage() for r in caplog.records)


def test_fresh_refuses_a_given_run_dir_that_holds_a_run(tmp_path):
    gdf = _gdf()
    with _serve() as server:
        gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        n = len(server.charges)
        with pytest.raises(ValueError) as info:
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, fresh=True, **FAST
            )
        assert str(info.value) == (
            f"fresh=True but run_dir {str(tmp_path)!r} already holds a run: pass a new "
            "run_dir, or leave run_dir out to start in a new cache dir"
        )
        assert len(server.charges) == n
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=Path(tmp_path) / "new", fresh=True, **FAST
        )
        assert len(server.charges) == n + len(res.processings)


def test_a_given_run_dir_refuses_another_account(tmp_path):
    gdf = _gdf()
    with _serve() as server:
        gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        n = len(server.charges)
        other = MapflowClient(OTHER, base_url=server.url)
        with pytest.raises(mapflow_geo.exceptions.RunError, match="another service or account"):
            gdf.mapflow.process("buildings", client=other, run_dir=tmp_path, **FAST)
        assert len(server.charges) == n


def test_an_unfinished_run_is_resumed_and_says_so(cache_home, caplog, capfd):
    gdf = _gdf()
    with _serve() as server:
        server.set_faults(status_400=1.0, methods=["POST"], paths=["/processings/v2"])
        with pytest.warns(mapflow_geo.exceptions.RunIncompleteWarning):
            first = gdf.mapflow.process("buildings", client=server.client(), errors="warn", **FAST)
        assert server.charges == [] and len(first.processings) > 0
        server.clear_faults()
        capfd.readouterr()
        with caplog.at_level(logging.INFO, logger=ENGINE_LOG):
            again = gdf.mapflow.process("buildings", client=server.client(), **FAST)
        charged = sum(c["cost"] for c in server.charges)
    assert again.run_dir == first.run_dir and again.complete
    n = len(again.processings)
    line = next(r.getMessage() for r in caplog.records if "resuming" in r.getMessage())
    assert line == (
        f"resuming the run stored in {first.run_dir}: 0 of {n} processings done, "
        "0 objects stored, 0 credits charged earlier"
    )
    assert "resuming" not in capfd.readouterr().err  # progress=False: nothing printed
    # refused creates were never charged: every charge is this call's
    assert again.totals["charged_credits"] == charged > 0
    assert again.totals["charged_earlier_credits"] == 0


def test_the_same_source_written_in_another_key_order_is_the_same_run(cache_home):
    """A source is a mapping: the same provider and zoom written in another key order
    reuse the same cached run, and nothing is created or paid again."""
    gdf = _gdf()
    with _serve() as server:
        client = server.client()
        first = gdf.mapflow.process(
            "buildings", client=client,
            source={"dataProvider": {"providerName": "Mapbox", "zoom": 18}}, **FAST,
        )  # fmt: skip
        paid = list(server.charges)
        again = gdf.mapflow.process(
            "buildings", client=client,
            source={"dataProvider": {"zoom": 18, "providerName": "Mapbox"}}, **FAST,
        )  # fmt: skip
        assert server.charges == paid
    assert first.complete and again.complete and len(paid) > 0
    assert again.run_dir == first.run_dir
    assert len(again.features) == len(first.features) > 0


def test_a_rotated_key_of_the_same_account_reuses_its_run(cache_home):
    gdf = _gdf()
    with _serve() as server:
        first = gdf.mapflow.process("buildings", client=server.client(), **FAST)
        paid = list(server.charges)
        rotated = base64.b64encode(f"{DEFAULT_EMAIL}:rotated-key-3".encode()).decode()
        server.set_token(rotated)
        again = gdf.mapflow.process(
            "buildings", client=MapflowClient(rotated, base_url=server.url), **FAST
        )
        assert server.charges == paid
    assert again.complete and again.run_dir == first.run_dir


class _Account:
    """A client's account whose ``/user/status`` answers ``doc`` (or fails)."""

    def __init__(self, doc: dict | None) -> None:
        self.doc = doc

    def status(self, refresh: bool = False) -> UserStatus:
        if self.doc is None:
            raise MapflowError("status unavailable")
        return UserStatus.from_json(self.doc)


class _Client:
    def __init__(self, doc: dict | None, token: str = "key-1") -> None:
        self.account = _Account(doc)
        self.token = token

    def _secrets(self) -> set[str]:
        return {self.token}


def test_an_account_is_known_by_its_email_else_its_user_id_never_by_its_key():
    same = [
        {"email": "Me@Mapflow.local", "id": "u-1"},
        {"login": " me@mapflow.local ", "id": "u-2"},
        {"email": "ME@MAPFLOW.LOCAL"},
    ]
    by_id = [{"id": "u-1"}, {"user": {"id": "u-1"}}, {"id": " U-1 "}]
    for group in (same, by_id):
        names = {account_of(_Client(doc, token)) for doc in group for token in ("k1", "k2")}
        assert len(names) == 1 and None not in names
        assert not any("k1" in n or "k2" in n for n in names)
    assert account_of(_Client(same[0])) != account_of(_Client(by_id[0]))
    assert account_of(_Client({"id": "u-1"})) != account_of(_Client({"id": "u-2"}))
    assert account_of(_Client({"user": {"id": "u-1"}})) != account_of(
        _Client({"user": {"id": "u-2"}})
    )


@pytest.mark.parametrize("doc", [{}, {"billingType": "CREDITS"}, None])
def test_an_account_named_nowhere_is_known_by_a_digest_of_its_key(doc):
    one, other = account_of(_Client(doc, "key-1")), account_of(_Client(doc, "key-2"))
    assert one == account_of(_Client(doc, "key-1")) and one != other
    assert "key-1" not in one and "key-2" not in other


def test_naming_the_account_asks_nothing_more_of_the_service():
    with _serve() as server:
        client = server.client()
        client.account.status()
        asked = len(server.requests)
        assert account_of(client) == account_of(_Client({"email": DEFAULT_EMAIL}, "another-key"))
        assert len(server.requests) == asked


def test_limits_and_budgets_taken_from_a_frame_are_the_same_run_as_typed(cache_home):
    """Numbers read from a frame are numpy scalars: the run takes them, writes them into
    ``params.json`` as the plain numbers they hold, and is the same run (the same
    default run dir, nothing created again) as one given the same numbers typed."""
    import json

    gdf = _gdf()
    typed = {"area_limit_km2": 2.0, "max_aois": 3, "max_credits": 10_000}
    from_frame = {k: np.array([v]).sum() for k, v in typed.items()}  # numpy scalars
    assert all(type(v).__module__ == "numpy" for v in from_frame.values())
    with _serve() as server:
        first = gdf.mapflow.process("buildings", client=server.client(), **from_frame, **FAST)
        again = gdf.mapflow.process("buildings", client=server.client(), **typed, **FAST)
        creates = _creates(server)
    assert first.complete and again.run_dir == first.run_dir
    assert len(creates) == len(first.processings)  # nothing paid twice
    params = json.loads((first.run_dir / "params.json").read_text())
    limits = ("area_limit_km2", "max_aois")
    assert {k: params[k] for k in limits} == {k: typed[k] for k in limits}
    assert all(type(params[k]) is type(typed[k]) for k in limits)


def test_without_a_client_the_aoi_count_limit_is_the_documented_default():
    """No client to read the account: the area limit given, and at most 10 polygons per
    processing (``maxAoisPerProcessing``'s default, api-docs README)."""
    from mapflow_geo.run.prepare import resolve_limits

    assert resolve_limits(None, 25.0) == (25.0, 10)
    assert resolve_limits(None, 25.0, 4) == (25.0, 4)
