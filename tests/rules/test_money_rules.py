"""The money rules, each against its source of truth: the pricing rule of the service's
documentation (a processing under 1 km² is charged as 1 km², the charge rounded up to a
whole credit), the simulator's own record (charges, requests, balance) and the run-dir
and journal contracts of DESIGN.md and the user guide.

Each test names the wrong rule it must catch; each was seen failing on that rule.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from fractions import Fraction
from pathlib import Path

import geopandas as gpd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import record
from support.areas import squares
from support.clients import without_pages
from support.fsync import record_fsyncs

import mapflow_geo  # noqa: F401  (gdf.mapflow)
from mapflow_geo import sim
from mapflow_geo.exceptions import BudgetError, PlanError
from mapflow_geo.run.status import RunStatus
from mapflow_geo.tiling import credits_for

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}
COST = "/rest/processing/cost/v2"


def _documented_charge(area_km2: Fraction, price: Fraction) -> int:
    """The service's documented rule, in exact arithmetic: ⌈max(area, 1 km²) × price⌉."""
    return math.ceil(max(area_km2, Fraction(1)) * price)


# ------------------------------------------------------------------------ credits
@settings(max_examples=300, deadline=None)
@given(
    area_m2=st.integers(min_value=0, max_value=100_000_000),  # up to 100 km², per m²
    price=st.integers(min_value=1, max_value=60),
)
def test_a_processings_charge_is_rounded_up_as_documented(area_m2, price):
    """Wrong rule caught: the charge rounded to the nearest credit (or truncated)
    instead of up. ``credits_for`` must equal the documented ⌈max(area, 1) × price⌉."""
    area = Fraction(area_m2, 1_000_000)
    assert credits_for(area_m2 / 1e6, price) == _documented_charge(area, Fraction(price))


@pytest.mark.parametrize(
    ("area_m2", "price_tenths"), [(82_500_000, 644), (85_000_000, 644), (90_000_000, 644)]
)
def test_float_noise_never_charges_an_extra_credit(area_m2, price_tenths):
    """82.5 km² at 64.4 credits/km² is exactly 5,313 credits, but ``82.5 * 64.4`` is
    5313.000000000001 in floating point: the charge is the documented ⌈area × price⌉ in
    exact arithmetic, so 5,313. Wrong rule caught: a float tolerance that shrinks as the
    charge grows (``1e-9 / raw`` instead of ``1e-9 * raw``) charging 5,314."""
    area, price = Fraction(area_m2, 10**6), Fraction(price_tenths, 10)
    raw = (area_m2 / 1e6) * (price_tenths / 10)
    assert raw > int(area * price)  # the float product lies above the exact integer
    assert credits_for(area_m2 / 1e6, price_tenths / 10) == _documented_charge(area, price)


@pytest.mark.parametrize("area_km2", [0.3, 1.2, 2.2, 3.45, 7.01])
def test_credits_match_the_simulators_cost_answer(area_km2):
    """The same rule against the simulator's independent cost formula: a 2.2 km² run of a
    model priced in whole credits per km² costs ⌈2.2 × price⌉, not the nearest credit."""
    with sim.serve() as server:
        client = server.client()
        model = client.account.find_model("buildings")
        price = client.account.model_price("buildings", None, "Mapbox", zoom=18)
        want = client.processings.cost(wdId=model.id, areaSqKm=area_km2, params=_mapbox_z18())
    assert credits_for(area_km2, price) == want


def _mapbox_z18() -> dict:
    from mapflow_geo import sources

    return sources.data_provider("Mapbox", zoom=18)


def test_credit_floor_is_charged_per_processing_not_on_the_summed_area(tmp_path):
    """Wrong rule caught: the run's lower bound computed on the summed area
    (``credits_for(Σ area)``) instead of per processing. Three processings of 0.3 km²
    each cost at least 3 × ⌈1 km² × price⌉; ``max_credits`` one below that must be refused
    before any cost request or create (the summed-area floor, ⌈1 × price⌉, would let the
    run go on and ask the server about each processing)."""
    gdf = squares(3, km=0.55)  # ≈ 0.3 km² each; under a 0.5 km² limit one processing each
    with sim.serve(aoi_area_limit_km2=0.5) as server:
        client = server.client()
        price = Fraction(client.account.model_price("buildings")).limit_denominator(1000)
        floor = 3 * _documented_charge(Fraction(3, 10), price)
        assert floor > _documented_charge(Fraction(9, 10), price)  # the test can tell
        with pytest.raises(BudgetError, match=r"; nothing was created$"):
            gdf.mapflow.process(
                "buildings", client=client, run_dir=tmp_path, max_credits=floor - 1, **FAST
            )
        asked = [r for r in server.requests if r.path in (COST, record.CREATE_PATH)]
        charges = server.charges
    assert asked == [], "the server was asked about a run its own floor refuses"
    assert charges == []


# ------------------------------------------------------------------------ money signals
def _serve_a_lost_create():
    """A simulator where every create commits and is charged but its answer is lost, and
    listings show a processing only 2 s after its create."""
    return sim.serve(
        aoi_area_limit_km2=5,
        listing_lag_s=2.0,
        processing_seconds=0.2,
        seed=3,
        faults={"drop_create_response": 1.0},
    )


def test_a_charge_equal_to_the_missing_estimate_holds_the_recreate_back(tmp_path, caplog):
    """Wrong rule caught: the unexplained-charge signal compared with ``>`` instead of
    ``>=``. One processing whose create commits and is charged but whose answer is lost;
    listings show it only 2 s later, the grace period is 0.3 s. The drop in credits is
    exactly its estimate: that is its charge, so it must never be created again. The
    log says so as it happens, against the simulator's record: the create's outcome
    unknown (INFO, its key), the charge no known processing explains (WARNING, its key
    and the credits charged), then the processing adopted (INFO, its id and key)."""
    caplog.set_level(logging.INFO, logger="mapflow_geo.run.create")
    gdf = squares(1, km=1.0)
    with _serve_a_lost_create() as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, adopt_grace_s=0.3, **FAST
        )
        dropped = [r for r in server.requests if r.fault == "drop_create_response"]
        charges = server.charges
        keys = record.keys(server)
        (proc,) = server.processings
    assert dropped, "the scenario did not drop the create's answer"
    assert res.complete
    assert len(charges) == 1 and list(keys.values()) == [1], f"paid twice: {charges}"
    key = proc["meta"]["mapflow_geo_key"]
    said = [
        (r.levelno, re.findall(r"[\w.-]+", r.getMessage()))
        for r in caplog.records
        if r.name == "mapflow_geo.run.create"
    ]
    unknown, charged, adopted = [
        [w for lvl, w in said if lvl == level and key in w and extra(w)]
        for level, extra in (
            (logging.INFO, lambda w: proc["id"] not in w),
            (logging.WARNING, lambda w: str(charges[0]["cost"]) in w),
            (logging.INFO, lambda w: proc["id"] in w),
        )
    ]
    assert len(unknown) == 1 and len(adopted) == 1, said
    assert {"POST", "v2"} <= set(unknown[0])  # the request whose answer was lost
    assert charged, said  # each sweep within the listing's lag: the charge holds it back


@pytest.mark.timeout(120)
@pytest.mark.parametrize("listing", ["pages", "list", "plain list"])
def test_a_create_that_never_committed_is_sent_again_and_the_run_ends(tmp_path, caplog, listing):
    """Wrong rule caught: a runner that does not count what it spent. Two processings;
    the first is created and charged, the second's create is reset before the service
    handles it (nothing committed). The only drop in credits is the first processing's,
    which the run knows: no charge is unexplained, so after the grace period the second
    is created once and the run ends. A runner that forgets its own spending sees the
    first charge as the second's and waits for ever: the run is bounded here and must
    finish, so such a rule fails instead of hanging the suite. The same with a client that
    lists by ``list()`` (no ``pages``): its complete listings prove the absence too, and
    so does a plain list (no paging to doubt: taken as the whole listing)."""
    caplog.set_level(logging.INFO, logger="mapflow_geo.run.create")
    gdf = squares(2, km=1.0)  # under a 1.5 km² limit: one processing each
    with sim.serve(aoi_area_limit_km2=1.5, processing_seconds=0.2, seed=4) as server:
        state = {"creates": 0}

        def reset_the_next_create(_rec):
            state["creates"] += 1
            if state["creates"] == 1:
                server.set_faults(
                    {"reset": 1.0, "methods": ["POST"], "paths": [record.CREATE_PATH]}
                )

        def clear_after_one_reset():
            while not any(r.fault == "reset" for r in server.requests):
                time.sleep(0.02)
            server.clear_faults()

        server.after_create = reset_the_next_create
        watcher = threading.Thread(target=clear_after_one_reset, daemon=True)
        watcher.start()
        out: dict = {}

        def run():
            try:
                out["res"] = gdf.mapflow.process(
                    "buildings",
                    client=client,
                    run_dir=tmp_path,
                    adopt_grace_s=0.3,
                    max_workers=1,
                    max_outage_s=5,
                    **FAST,
                )
            except BaseException as exc:  # reported below
                out["error"] = exc

        client = server.client()
        if listing != "pages":
            client = without_pages(client, plain=listing == "plain list")
        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        runner.join(timeout=30)
        hung = runner.is_alive()
        resets = [r for r in server.requests if r.fault == "reset"]
        keys = record.keys(server)
        procs = server.processings
    assert not hung, "the run did not end within 30 s: a missing create waits for ever"
    assert "error" not in out, out.get("error")
    assert resets, "the scenario did not reset a create"
    assert out["res"].complete
    assert sorted(keys.values()) == [1, 1], f"expected one processing per key: {keys}"
    # the log names the second processing twice (INFO): its create's outcome unknown,
    # then its create sent again once the grace period passed
    second = procs[-1]["meta"]["mapflow_geo_key"]  # the simulator's processings in order made
    said = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.create"]
    assert len([m for m in said if second in re.findall(r"[\w.-]+", m)]) == 2, said


def test_a_create_sent_again_gets_its_own_grace_period(tmp_path):
    """Wrong rule caught: the grace period of a create sent again counted from an earlier
    absence (of this or another record) instead of from that create. One processing;
    its first create is reset before the service handles it (nothing committed), so
    after the grace period (2 s) it is sent again; that create commits but its answer
    is lost, and listings show it only 1 s later. The account bills area (no balance
    signal): only a fresh grace period keeps the run from creating it a third time."""
    gdf = squares(1, km=1.0)
    with sim.serve(
        aoi_area_limit_km2=5,
        billing_type="AREA",
        listing_lag_s=1.0,
        processing_seconds=0.2,
        seed=3,
        faults={"reset": 1.0, "methods": ["POST"], "paths": [record.CREATE_PATH]},
    ) as server:

        def drop_answers_after_one_reset():
            while not any(r.fault == "reset" for r in server.requests):
                time.sleep(0.01)
            server.set_faults(
                {"drop_create_response": 1.0, "methods": ["POST"], "paths": [record.CREATE_PATH]}
            )

        watcher = threading.Thread(target=drop_answers_after_one_reset, daemon=True)
        watcher.start()
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, adopt_grace_s=2.0, **FAST
        )
        faults = [r.fault for r in record.creates(server)]
        keys = record.keys(server)
    assert faults[:2] == ["reset", "drop_create_response"], faults
    assert res.complete
    assert list(keys.values()) == [1], f"created twice: {keys}"


def test_a_balance_that_cannot_be_read_holds_the_recreate_back(tmp_path, caplog):
    """Wrong rule caught: a missing create sent again when the account's balance cannot
    be read. One processing whose create commits and is charged but whose answer is
    lost; listings show it only 2 s later, the grace period is 0.3 s, and from then on
    ``/user/status`` answers 503. Without the balance the run cannot tell whether the
    charge is that create's: it keeps waiting (INFO, naming the key and the failed
    request) until the listing shows the processing, and pays once."""
    from mapflow_geo import RetryPolicy

    caplog.set_level(logging.INFO, logger="mapflow_geo.run.create")
    gdf = squares(1, km=1.0)
    with _serve_a_lost_create() as server:

        def status_fails_from_now_on(_rec):
            server.set_faults(
                drop_create_response=1.0, status_503=1.0, methods=["GET"], paths=["/user/status"]
            )

        server.after_create = status_fails_from_now_on
        res = gdf.mapflow.process(
            "buildings",
            client=server.client(retry=RetryPolicy(max_retries=0)),
            run_dir=tmp_path,
            adopt_grace_s=0.3,
            **FAST,
        )
        refused = [r for r in server.requests if r.fault == "status_503"]
        keys = record.keys(server)
        charges = server.charges
    assert refused, "the balance was never asked for while the listing lagged"
    assert res.complete
    assert len(charges) == 1 and list(keys.values()) == [1], f"paid twice: {keys}"
    (key,) = keys
    said = [
        set(re.findall(r"\w[\w.-]*", r.getMessage()))
        for r in caplog.records
        if r.name == "mapflow_geo.run.create"
    ]
    waiting = [w for w in said if key in w and "503" in w]
    assert len(waiting) == len(refused), said


# ------------------------------------------------------------------------ re-planning
def test_a_processing_of_several_tiles_refused_as_too_large_is_repacked(tmp_path):
    """Wrong rule caught: the re-split condition with ``or`` instead of ``and`` (a
    re-plan that keeps every tile but packs them into several processings taken for one
    that cannot be made smaller). Three 1 km² areas planned into one processing under a
    given 5 km² limit; the service allows 2 km²: it refuses that processing (nothing
    charged), and the runner packs the same three tiles into processings under 2 km²."""
    gdf = squares(3, km=1.0)
    with sim.serve(aoi_area_limit_km2=2, processing_seconds=0, seed=5) as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, area_limit_km2=5, **FAST
        )
        refused = [r for r in record.creates(server) if r.status == 400]
        committed = server.processings
    assert refused, "the scenario's plan was not refused as too large"
    assert res.complete
    statuses = set(res.processings["status"].astype(str))
    assert RunStatus.TOO_LARGE_PROCESSING.value not in statuses
    assert len(committed) >= 2
    assert all(float(p["area"]) <= 2e6 for p in committed)
    assert set(res.features["row"]) == set(gdf.index)


# ------------------------------------------------------------------------ run dirs
def test_default_run_dir_is_one_per_run_and_the_same_for_the_same_run(tmp_path, monkeypatch):
    """The run-dir contract (user guide, *Resuming*): without ``run_dir`` each run gets
    its own folder, keyed by its inputs; the same call again resumes in the same folder.
    Wrong rule caught: one shared default folder for every run (the second, different
    run is then refused or mixed in)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=6) as server:
        client = server.client()
        first = squares(1, km=1.0).mapflow.process("buildings", client=client, **FAST)
        other = squares(1, km=1.0, lat=41.0).mapflow.process("buildings", client=client, **FAST)
        n_creates = len(record.creates(server))
        again = squares(1, km=1.0).mapflow.process("buildings", client=client, **FAST)
        creates_after = len(record.creates(server))
    assert first.complete and other.complete and again.complete
    assert first.run_dir is not None and other.run_dir is not None
    assert first.run_dir != other.run_dir
    assert not first.run_dir.is_relative_to(other.run_dir)
    assert not other.run_dir.is_relative_to(first.run_dir)
    assert again.run_dir == first.run_dir
    assert creates_after == n_creates, "the same run again created a processing"
    assert first.run_dir.is_relative_to(tmp_path / "cache")


# ------------------------------------------------------------------------ journal
@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_run_inputs_are_fsynced_before_they_are_renamed_into_place(tmp_path, monkeypatch):
    """The journal contract (``run/journal.py``; DESIGN.md, *runs*): the run's inputs —
    plan, areas, parameters — are written durably: each file's own descriptor is fsynced
    before the rename, and the run dir after it. Wrong rule caught: durable writes
    without ``fsync``."""
    seen = record_fsyncs(monkeypatch)
    run_dir = tmp_path / "run"
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=7) as server:
        res = squares(1, km=1.0).mapflow.process(
            "buildings", client=server.client(), run_dir=run_dir, **FAST
        )
    assert res.complete
    names = [Path(p).name for p in seen]
    for stored in ("plan.parquet", "aois.parquet", "params.json"):
        assert (run_dir / stored).exists()
        assert any(n.startswith(f".{stored}.") for n in names), f"{stored} not fsynced: {names}"
    assert str(run_dir.resolve()) in seen, "the run dir was not fsynced after the renames"


# ------------------------------------------------------------------------ client
def test_stats_requests_send_their_type(monkeypatch):
    """The stats route's ``type`` query (``JSON`` or ``CSV``, API docs): every stats
    request names it, as the simulator's request log shows; ``output="csv"`` asks for
    the CSV table."""
    with sim.serve(processing_seconds=0, seed=8) as server:
        client = server.client()
        stats = client.processings.stats()
        table = client.processings.stats(output="csv")
        queries = [r.query for r in server.requests if r.path.endswith("/processings/stats")]
    assert stats.total == 0
    assert len(table) == 0 and "status" in table.columns  # the header, no rows
    assert queries == ["type=JSON", "type=CSV"], queries
    with pytest.raises(ValueError, match="output"):
        client.processings.stats(output="xml")


def test_a_free_run_needs_no_credits(tmp_path):
    """The documented rule gives ⌈area × 0⌉ = 0 credits for a model and imagery priced
    at 0 per km²: such a run goes on with ``max_credits=0`` on an account with no credits
    left. Wrong rules caught: an estimate of 0 counted as 1 credit (in the run's total
    against ``max_credits``, or in what is still to create against the balance)."""
    from mapflow_geo.sim.catalog import default_models, default_providers

    models = default_models()
    for m in models:
        m["pricePerSqKm"] = 0.0
    providers = default_providers()
    for p in providers:
        p["price"] = [{"zoom": z, "priceSqKm": 0.0} for z in (14, 17, 18, 19)]
    gdf = squares(2, km=1.0)
    with sim.serve(
        credits=0, models=models, data_providers=providers, processing_seconds=0, seed=9
    ) as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_credits=0, **FAST
        )
        charges = server.charges
    assert res.complete
    assert charges and {c["cost"] for c in charges} == {0}


def _need_m2(gdf: gpd.GeoDataFrame) -> float:
    """Geodesic area (WGS84) of the squares, m², by pyproj: what the service measures."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    return sum(abs(geod.geometry_area_perimeter(g)[0]) for g in gdf.geometry)


def test_an_area_account_with_two_square_metres_to_spare_runs(tmp_path):
    """``AREA`` billing counts m² (the service's unit): an account left with the run's
    area plus 2 m² runs it. Wrong rule caught: km² turned into m² with any other factor
    (a factor 1 ppm too large already asks ~4 m² more than this 4 km² run needs)."""
    gdf = squares(1, km=2.0)
    left_m2 = int(_need_m2(gdf)) + 2
    with sim.serve(
        aoi_area_limit_km2=5,
        billing_type="AREA",
        area_limit_km2=left_m2 / 1e6,
        processing_seconds=0,
    ) as server:
        client = server.client()
        assert client.account.status().remaining_area == left_m2
        res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        charges = server.charges
    assert res.complete and len(charges) == 1


def test_a_credits_account_is_not_held_to_its_area_figures(tmp_path):
    """A ``CREDITS`` account is billed in credits only: the ``remainingArea`` its status
    also reports (here smaller than the run) does not stop a run it has the credits for.
    Wrong rule caught: the area check applied whatever the billing type."""
    gdf = squares(1, km=2.0)
    with sim.serve(aoi_area_limit_km2=5, area_limit_km2=1.0, processing_seconds=0) as server:
        client = server.client()
        status = client.account.status()
        assert str(status.billing_type).upper().endswith("CREDITS")
        assert status.remaining_area < _need_m2(gdf)
        res = gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        charges = server.charges
    assert res.complete and len(charges) == 1


def _free_imagery() -> list[dict]:
    from mapflow_geo.sim.catalog import default_providers

    providers = default_providers()
    for p in providers:
        p["price"] = [{"zoom": z, "priceSqKm": 0.0} for z in (14, 17, 18, 19)]
    return providers


def _documented_price(model_kind: str, blocks: tuple[str, ...] = ()) -> Fraction:
    """Credits per km² of a model and its enabled optional blocks, from the simulator's
    own catalogue (the service's published prices)."""
    from mapflow_geo.sim.catalog import default_models

    (m,) = [m for m in default_models() if m["kind"] == model_kind]
    extra = sum(b["price"] for b in m["blocks"] if b["name"] in blocks)
    return Fraction(m["pricePerSqKm"] + extra).limit_denominator(1000)


def test_credit_floor_counts_the_enabled_blocks(tmp_path):
    """The floor is the model's price *with its enabled blocks* (the documented cost:
    model price + enabled optional block prices + data price). Three 0.3 km²
    processings with ``Classification`` enabled and ``max_credits`` one below
    3 × ⌈1 km² × (model + block)⌉ are refused before any cost request. Wrong rule
    caught: the floor priced without the blocks."""
    gdf = squares(3, km=0.55)
    with_block = 3 * _documented_charge(
        Fraction(1), _documented_price("buildings", ("Classification",))
    )
    without = 3 * _documented_charge(Fraction(1), _documented_price("buildings"))
    assert with_block - 1 >= without
    with sim.serve(aoi_area_limit_km2=0.5) as server:
        with pytest.raises(BudgetError, match=r"; nothing was created$"):
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path,
                blocks=["Classification"], max_credits=with_block - 1, **FAST,
            )  # fmt: skip
        asked = [r for r in server.requests if r.path in (COST, record.CREATE_PATH)]
    assert asked == []


def test_a_run_costing_exactly_max_credits_runs(tmp_path):
    """``max_credits`` is a ceiling the run may reach: a 0.3 km² processing charged as
    1 km² × the model's price, on free imagery, runs with ``max_credits`` equal to that
    charge and is charged exactly it. Wrong rule caught: the credit floor refusing a run
    that costs exactly ``max_credits`` (``>=``)."""
    need = _documented_charge(Fraction(1), _documented_price("buildings"))
    with sim.serve(data_providers=_free_imagery(), processing_seconds=0) as server:
        res = squares(1, km=0.55).mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_credits=need, **FAST
        )
        charges = server.charges
    assert res.complete and [c["cost"] for c in charges] == [need]


def test_max_processings_is_a_ceiling_and_its_refusal_says_what_to_do(tmp_path):
    """``max_processings`` allows exactly that many processings; one more is refused
    before anything is sent, with the remedy in the message. Wrong rules caught: ``>=``
    for ``>``; the remedy's text lost."""
    gdf = squares(3, km=0.55)  # one processing each under a 0.5 km² limit
    with sim.serve(aoi_area_limit_km2=0.5, processing_seconds=0) as server:
        client = server.client()
        with pytest.raises(PlanError) as refused:
            gdf.mapflow.process(
                "buildings", client=client, run_dir=tmp_path / "a", max_processings=2, **FAST
            )
        assert record.creates(server) == []
        res = gdf.mapflow.process(
            "buildings", client=client, run_dir=tmp_path / "b", max_processings=3, **FAST
        )
    assert "3 processings" in str(refused.value)
    assert "Pass a larger max_processings (or None) to run it" in str(refused.value)
    assert res.complete and res.tiles["processing_key"].nunique() == 3


def test_an_area_refusal_shows_the_km2_left(tmp_path):
    """An ``AREA`` account short of area is refused before any create, and the message
    gives what is left in km² (the service reports m²: 1,234,501 m² is 1.235 km²). Wrong
    rules caught: m² shown as km² with a wrong factor."""
    with sim.serve(
        aoi_area_limit_km2=5, billing_type="AREA", area_limit_km2=1.234501, processing_seconds=0
    ) as server:
        client = server.client()
        assert client.account.status().remaining_area == 1_234_501
        with pytest.raises(BudgetError, match=r"1\.235 km² left"):
            squares(1, km=2.0).mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        assert record.creates(server) == []


# ------------------------------------------------------------------------ create outcomes
class _VirtualTime:
    """The runner's clock and sleep: time passes only when the runner sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        time.sleep(0.002)


def _faults_per_create(server, client, plan: list[dict | None], clock) -> list[tuple]:
    """Arm the simulator before each create the runner sends: the n-th create meets the
    n-th faults of ``plan`` (None: none). Returns the (key, time) of each create sent."""
    sent: list[tuple] = []
    create = client.processings.create

    def armed(*args, **kwargs):
        n = len(sent)
        sent.append(((kwargs.get("meta") or {}).get("mapflow_geo_key"), clock()))
        faults = plan[n] if n < len(plan) else None
        if faults:
            server.set_faults({**faults, "methods": ["POST"], "paths": [record.CREATE_PATH]})
        else:
            server.clear_faults()
        return create(*args, **kwargs)

    client.processings.create = armed
    return sent


def test_the_grace_period_counts_from_the_create_that_lost_its_answer(tmp_path, caplog):
    """Wrong rule caught: the grace period of a create whose outcome is unknown started
    at the first complete listing after it, not at the create (the listing lag it waits
    out runs from the create). Two processings, created one after the other: the first
    create is reset before the service handles it (nothing committed, outcome unknown to
    the runner); the second is refused with ``429 Retry-After: 60`` once, so the first
    complete listing comes 60 s after the first create. With a 30 s grace period and no
    unexplained charge, that listing is the one that sends the first create again."""
    gdf = squares(2, km=1.0)  # under a 1.5 km² limit: one processing each
    vt = _VirtualTime()
    with sim.serve(aoi_area_limit_km2=1.5, processing_seconds=0, seed=21) as server:
        client = server.client()
        sent = _faults_per_create(
            server, client, [{"reset": 1.0}, {"status_429": 1.0, "retry_after": "60"}], vt.clock
        )
        with caplog.at_level(logging.INFO, logger="mapflow_geo.run.create"):
            res = gdf.mapflow.process(
                "buildings", client=client, run_dir=tmp_path, adopt_grace_s=30,
                max_workers=1, poll_interval=5, min_poll_interval=5,
                sleep=vt.sleep, clock=vt.clock, progress=False,
            )  # fmt: skip
        resets = [r for r in record.creates(server) if r.fault == "reset"]
        keys = record.keys(server)
    assert len(resets) == 1 and res.complete
    first, second = sent[0][0], sent[1][0]
    assert first != second and sorted(keys) == sorted([first, second])
    assert list(keys.values()) == [1, 1], f"paid twice: {keys}"
    assert sent == [(first, 0.0), (second, 0.0), (second, 60.0), (first, 60.0)], sent
    absent = [r.getMessage() for r in caplog.records if "absent from complete" in r.getMessage()]
    assert absent == [f"{first} absent from complete listings for 60s: creating it"]


def test_a_credit_no_processing_explains_holds_back_a_free_create(tmp_path, caplog):
    """A charge the account shows that no processing of the run explains keeps a create
    whose answer was lost waiting (DESIGN.md, *Ambiguous creates*), even one estimated at
    0 credits: the estimate may be wrong. A free model on free imagery; the one create
    commits, the account loses one credit as it does, and the answer is dropped;
    listings lag 2 s, the grace period is 0.3 s. The run must wait for the listing and
    adopt the processing, and say why it waits: the key and the credits unexplained, as
    the simulator's record gives them. Wrong rules caught: one credit taken as too small
    to hold back a 0-credit create; the warning's text changed."""
    from mapflow_geo.sim.catalog import default_models

    models = default_models()
    for m in models:
        m["pricePerSqKm"] = 0.0
    with sim.serve(
        aoi_area_limit_km2=5, models=models, data_providers=_free_imagery(), listing_lag_s=2.0,
        processing_seconds=0.2, seed=23, faults={"drop_create_response": 1.0},
    ) as server:  # fmt: skip

        def one_credit_gone(_rec):
            server.after_create = None
            server.set_credits(server.state["account"]["remainingCredits"] - 1)

        server.after_create = one_credit_gone
        with caplog.at_level(logging.WARNING, logger="mapflow_geo.run.create"):
            res = squares(1, km=1.0).mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path, adopt_grace_s=0.3,
                **FAST,
            )  # fmt: skip
        dropped = [r for r in server.requests if r.fault == "drop_create_response"]
        keys = record.keys(server)
        charged = sum(c["cost"] for c in server.charges)
        gone = server.options.credits - server.state["account"]["remainingCredits"]
    assert dropped, "the scenario did not drop the create's answer"
    assert res.complete
    assert len(keys) == 1 and list(keys.values()) == [1], f"paid twice: {keys}"
    (key,) = keys
    unexplained = gone - charged
    assert (charged, unexplained) == (0, 1)
    said = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.create"]
    assert said and set(said) == {
        f"{key}: {unexplained} credits charged that no known processing explains; not "
        "creating it again until a listing shows it or the charge is explained"
    }, said


# ------------------------------------------------------------------------ crash points
class _Killed(BaseException):
    """The SIGKILL an armed failpoint sends, caught in this process."""


@pytest.mark.parametrize(
    "point,intent,sent",
    [("before_intent", False, False), ("after_intent", True, False), ("after_create", True, True)],
)
def test_each_crash_point_of_a_create_lies_where_its_name_says(
    tmp_path, monkeypatch, point, intent, sent
):
    """Each failpoint of a create armed (its SIGKILL caught here): the run dies before
    the intent is journalled (nothing journalled, nothing sent), after it (the intent
    with the create's ``meta`` durable, nothing sent) or after the create (the simulator
    committed and charged it with that ``meta``; the journal still holds the intent).
    The same run resumed (a 0.3 s grace period) ends with one processing, charged once.
    Wrong rules caught: a failpoint renamed (the crash campaigns arm it by name and would
    never kill there)."""
    import os
    import signal

    from mapflow_geo.run import _failpoints
    from mapflow_geo.run import journal as jr

    def kill(pid: int, sig: int) -> None:
        assert (pid, sig) == (os.getpid(), signal.SIGKILL)
        raise _Killed

    gdf = squares(1, km=1.0)
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, seed=3) as server:
        with monkeypatch.context() as armed:
            armed.setattr(_failpoints, "_ARMED", point)
            armed.setattr(_failpoints, "_NTH", "")
            armed.setattr(os, "kill", kill)
            with pytest.raises(_Killed):
                gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **FAST)
        committed = server.processings
        n_sent, n_charged = len(record.creates(server)), len(server.charges)
        with jr.Journal(tmp_path, None, lock=False) as j:
            (rec,) = j.records()
        res = gdf.mapflow.process("buildings", client=server.client(), run_dir=tmp_path,
                                  adopt_grace_s=0.3, **FAST)  # fmt: skip
        record.assert_one_charge_each(server)
        after = server.processings
    assert (n_sent, n_charged, len(committed)) == ((1, 1, 1) if sent else (0, 0, 0))
    assert rec.state == (jr.INTENT if intent else jr.PLANNED)
    if intent:
        assert rec.meta["mapflow_geo_key"] == rec.key and rec.meta["mapflow_geo_run"]
    else:
        assert not rec.meta
    if sent:
        assert committed[0]["meta"] == rec.meta
    assert res.complete and len(after) == 1
    assert set(res.processings["processing_id"]) == {after[0]["id"]}
