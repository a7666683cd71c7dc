"""Campaign 1 — every outcome of a create: exactly one charge per processing whenever the
outcome is retryable or ambiguous, none on a 4xx, and 401/403 stop the run clearly."""

from __future__ import annotations

import logging
import re
import threading
import time

import pytest
from support.areas import grid_gdf
from support.campaign import FAST, FULL
from support.record import assert_one_charge_each, creates, keys

import mapflow_geo  # noqa: F401
from mapflow_geo import RetryPolicy, sim
from mapflow_geo import exceptions as exc
from mapflow_geo.exceptions import RunFailedError

N = 12 if FULL else 4
SIM = dict(aoi_area_limit_km2=5, processing_seconds=0, seed=7)
ON_CREATE = {"methods": ["POST"], "paths": ["/processings/v2"]}
SQUARE = grid_gdf(1).geometry.iloc[0].__geo_interface__

# fault → (what the client raises, was it committed on the server)
CLIENT_CASES = {
    "status_400": (exc.BadRequestError, False),
    "status_401": (exc.AuthenticationError, False),
    "status_403": (exc.PermissionDeniedError, False),
    "status_422": (exc.UnprocessableError, False),
    "status_429": (exc.RateLimitError, False),
    "status_500": (exc.ServerError, False),
    "status_501": (exc.ServerError, False),
    "status_502": (exc.ServerError, False),  # a readable Mapflow JSON body: not ambiguous
    "status_503": (exc.ServerError, False),
    "status_504": (exc.ServerError, False),
    "reset": (exc.AmbiguousCreateError, False),  # reset before handling
    "drop_create_response": (exc.AmbiguousCreateError, True),  # reset after the commit
    "hang": (exc.AmbiguousCreateError, True),  # read timeout after the commit
    "html_200": (exc.AmbiguousCreateError, True),  # 200 with an HTML body
    "gateway_timeout": (exc.AmbiguousCreateError, True),  # 504 HTML from a gateway
}


@pytest.mark.parametrize("fault", sorted(CLIENT_CASES))
def test_client_classifies_each_create_outcome(fault):
    expected, committed = CLIENT_CASES[fault]
    with sim.serve(**SIM, faults={fault: 1.0, "hang_s": 1.0, **ON_CREATE}) as server:
        client = server.client(
            timeout=(5.0, 0.5), retry=RetryPolicy(max_retries=2, backoff_base=0.01)
        )
        with pytest.raises(expected) as ei:
            client.processings.create(
                name="x", wdName="🏠 Buildings", geometry=SQUARE, meta={"k": fault}
            )
        time.sleep(1.1 if fault == "hang" else 0)  # let the hung handler finish logging
        sent = creates(server)
        charges = server.charges
    assert len(sent) == 1, "a create is sent once"
    assert len(charges) == (1 if committed else 0)
    if expected is exc.AmbiguousCreateError:
        assert ei.value.meta == {"k": fault}
        assert "may have" in str(ei.value) and "charged" in str(ei.value)


def test_client_connection_refused_is_retried_once_up(tmp_path):
    """The request never left (connection refused): the only create retry that is safe."""
    state = tmp_path / "sim.json"
    first = sim.Server(state_file=str(state), **SIM).start()
    port = first.port
    first.close()
    holder = {}

    def bring_up():
        time.sleep(0.7)
        holder["server"] = sim.Server(port=port, state_file=str(state), **SIM).start()

    t = threading.Thread(target=bring_up)
    t.start()
    from mapflow_geo import MapflowClient

    client = MapflowClient(
        first.token,
        base_url=first.url,
        retry=RetryPolicy(max_retries=6, backoff_base=0.4),
        random=lambda: 1.0,
    )
    try:
        p = client.processings.create(name="x", wdName="🏠 Buildings", geometry=SQUARE)
    finally:
        t.join()
        server = holder["server"]
    try:
        assert server.charges_for(p.id) == 1
        assert len(server.charges) == 1
    finally:
        server.close()


def test_client_connection_refused_throughout_is_not_ambiguous():
    s = sim.Server(**SIM).start()
    url, token = s.url, s.token
    s.close()
    from mapflow_geo import MapflowClient

    client = MapflowClient(token, base_url=url, retry=RetryPolicy(max_retries=2, backoff_base=0.01))
    with pytest.raises(exc.TransportError) as ei:
        client.processings.create(name="x", wdName="🏠 Buildings", geometry=SQUARE)
    assert not isinstance(ei.value, exc.AmbiguousCreateError)
    assert "refused" in str(ei.value)


# ----------------------------------------------------------------------------- runs
RETRYABLE = [
    "status_429",
    "status_500",
    "status_501",
    "status_502",
    "status_503",
    "status_504",
    "reset",
    "drop_create_response",
    "hang",
    "html_200",
    "gateway_timeout",
]


@pytest.mark.parametrize("fault", RETRYABLE)
def test_run_pays_once_for_every_retryable_or_ambiguous_create(tmp_path, fault):
    gdf = grid_gdf(N)
    sleeps: list[float] = []

    def sleep(s):
        sleeps.append(s)
        time.sleep(s)

    faults = {fault: 0.5, "hang_s": 0.6, "retry_after": "0.2", **ON_CREATE}
    with sim.serve(**SIM, faults=faults) as server:
        client = server.client(timeout=(5.0, 0.4), retry=RetryPolicy(backoff_base=0.01))
        res = gdf.mapflow.process(
            "buildings",
            client=client,
            run_dir=tmp_path / "run",
            adopt_grace_s=0.5,
            sleep=sleep,
            **FAST,
        )
        time.sleep(0.7 if fault == "hang" else 0)
        faulted = [r for r in creates(server) if r.fault]
        assert res.complete
        assert faulted, "the fault was never drawn"
        assert len(res.processings) == N
        assert_one_charge_each(server)
        assert len(server.processings) == N
    if fault == "status_429":
        assert 0.2 in sleeps  # Retry-After honoured
    assert max(sleeps, default=0) <= 60


def test_creates_refused_with_429_without_retry_after_wait_a_growing_delay(tmp_path, caplog):
    """Half the creates are refused with 429 and no readable ``Retry-After``: nothing was
    committed, so each is sent again after a delay of its own choosing, growing and at
    most a minute, and every processing is created and charged once. Each wait is
    announced (INFO) with the key of the create and the delay waited."""
    gdf = grid_gdf(N)
    waits: list[float] = []

    def sleep(s):
        if s >= 1.0:  # a create's back-off: noted, not waited out here
            waits.append(s)
        else:
            time.sleep(s)

    faults = {"status_429": 0.5, "retry_after": "", **ON_CREATE}
    with sim.serve(**SIM, faults=faults) as server:
        with caplog.at_level(logging.INFO, logger="mapflow_geo.run.create"):
            res = gdf.mapflow.process(
                "buildings",
                client=server.client(retry=RetryPolicy(max_retries=0)),
                run_dir=tmp_path,
                max_workers=1,
                sleep=sleep,
                **FAST,
            )
        refused = [r for r in creates(server) if r.fault == "status_429"]
        keys = {p["meta"]["mapflow_geo_key"] for p in server.processings}
        assert refused, "the fault was never drawn"
        assert res.complete
        assert_one_charge_each(server)
        assert len(server.processings) == N
    assert len(waits) == len(refused) and all(1.0 <= w <= 60.0 for w in waits)
    # one create at a time: each wait is longer than the one before (the same create
    # refused again) or back at the first wait (the next create's first refusal)
    assert all(b > a or b == waits[0] for a, b in zip(waits, waits[1:], strict=False)), waits
    said = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.create"]
    announced = [m for m in said if keys & set(m.split())]
    assert len(announced) == len(waits)
    for line, wait in zip(announced, waits, strict=True):
        assert wait in [float(x) for x in re.findall(r"\d+\.\d+", line)], line


@pytest.mark.parametrize("fault", ["status_400", "status_422"])
def test_run_refused_create_charges_nothing_and_reports(tmp_path, fault, caplog):
    """A create refused (4xx) stops creating: nothing is charged, every tile reports the
    refusal. The next call in the run dir creates them (announcing, INFO, how many the
    server refused before: all of them, none was committed) and pays once each."""
    gdf = grid_gdf(N)
    with sim.serve(**SIM, faults={fault: 1.0, **ON_CREATE}) as server:
        with pytest.raises(RunFailedError) as ei:
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path / "run", **FAST
            )
        sent = creates(server)
        assert server.charges == []
        # creating stops after the first refusal (only creates already in flight are sent)
        assert 1 <= len(sent) <= 4
        assert server.processings == []
        server.clear_faults()
        with caplog.at_level(logging.INFO, logger="mapflow_geo.run.engine"):
            again = gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path / "run", **FAST
            )
        assert again.complete
        assert_one_charge_each(server)
        made = len(server.processings)
    res = ei.value.result
    assert (res.tiles["status"] != "OK").all()
    assert "simulated fault" in str(ei.value)
    said = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.engine"]
    # the line says how many were refused before (the count, and that they were refused)
    assert made == N and [
        m for m in said if re.findall(r"\d+", m) == [str(N)] and "refused" in m.split()
    ], said


@pytest.mark.parametrize(
    "fault,cls",
    [("status_401", exc.AuthenticationError), ("status_403", exc.PermissionDeniedError)],
)
def test_run_auth_refused_stops_with_clear_error(tmp_path, fault, cls):
    gdf = grid_gdf(N)
    with sim.serve(**SIM, faults={fault: 1.0, **ON_CREATE}) as server:
        with pytest.raises(cls) as ei:
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path / "run", **FAST
            )
        assert server.charges == []
        assert 1 <= len(creates(server)) <= 4
        assert f"HTTP {fault[-3:]}" in str(ei.value)
        # reopened, each processing whose create the service refused says why
        from mapflow_geo import open_run

        said = open_run(tmp_path / "run").processings["messages"].map(list)
        refused = [m for m in said if m == ["authentication refused"]]
        assert len(refused) == len(creates(server)), list(said)
        # the token is fixed: the same run dir resumes and completes, paying once each
        server.clear_faults()
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path / "run", **FAST
        )
        assert res.complete
        assert_one_charge_each(server)


def _create_log(caplog, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mapflow_geo.run.create" and r.levelno == level
    ]


def test_run_says_which_create_lost_its_answer(tmp_path, caplog):
    """A create whose answer is lost after the service committed it: the run says, for
    that processing's key (the ``meta`` the simulator recorded on it), that its outcome
    is unknown and that it will be reconciled by ``meta``; it is adopted and paid once."""
    with sim.serve(**SIM, faults={"drop_create_response": 1.0}) as server:
        with caplog.at_level(logging.INFO, logger="mapflow_geo.run.create"):
            res = grid_gdf(1).mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path / "run",
                adopt_grace_s=30, **FAST,
            )  # fmt: skip
        dropped = [r for r in creates(server) if r.fault == "drop_create_response"]
        (key,) = keys(server)
        assert_one_charge_each(server)
    assert len(dropped) == 1 and res.complete
    said = [m for m in _create_log(caplog, logging.INFO) if "outcome unknown" in m]
    assert len(said) == 1, said
    pattern = rf"create {re.escape(key)}: outcome unknown \((.+)\); will reconcile by meta"
    found = re.fullmatch(pattern, said[0], re.S)
    assert found and "may have been created" in found.group(1), said


def test_run_says_which_create_was_not_sent_and_sends_it_later(tmp_path, caplog):
    """A create answered by a redirect to another origin is refused by the client before
    the token leaves (nothing reaches the service): the run warns, naming the
    processing's key, that it was not sent and will be sent after reconciling; after the
    grace period it is sent again, created and paid once."""
    with sim.serve(**SIM) as server:
        server.set_faults(redirect=1.0, redirect_to="http://example.invalid", **ON_CREATE)

        def clear_after_one_redirect():
            while not any(r.fault == "redirect" for r in server.requests):
                time.sleep(0.01)
            server.clear_faults()

        watcher = threading.Thread(target=clear_after_one_redirect, daemon=True)
        watcher.start()
        with caplog.at_level(logging.WARNING, logger="mapflow_geo.run.create"):
            res = grid_gdf(1).mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path / "run",
                adopt_grace_s=0.3, **FAST,
            )  # fmt: skip
        watcher.join(timeout=5)
        redirected = [r for r in creates(server) if r.fault == "redirect"]
        (key,) = keys(server)
        assert_one_charge_each(server)
    assert len(redirected) == 1 and res.complete
    said = _create_log(caplog, logging.WARNING)
    assert len(said) == 1, said
    pattern = rf"create {re.escape(key)} not sent \((.+)\); will retry after reconciling"
    found = re.fullmatch(pattern, said[0], re.S)
    assert found and "another origin" in found.group(1), said


def test_a_run_given_up_before_its_first_poll_shows_what_each_create_answered(tmp_path, caplog):
    """The creates commit, then every listing fails (503) until ``max_outage_s``: the run
    gives up before any poll has read a status, each failed poll announced (WARNING)
    with the answer. Reopened offline, the run dir shows each processing the simulator
    committed with its id and a status the service gives processings (the one its
    create answered), its tiles with that status: never ``PLANNED`` (not sent yet) for a
    processing that was created and charged."""
    from mapflow_geo import open_run

    service_statuses = {"UNPROCESSED", "IN_PROGRESS", "AWAITING", "OK", "FAILED", "CANCELLED"}
    gdf = grid_gdf(N)
    with sim.serve(**dict(SIM, processing_seconds=3600)) as server:

        def listings_fail(_rec):
            server.set_faults(status_503=1.0, paths=["/projects/"])

        server.after_create = listings_fail
        client = server.client(retry=RetryPolicy(max_retries=0))
        opts = dict(FAST, poll_interval=0.3, max_outage_s=1.0)
        with pytest.raises(exc.ServerError):
            gdf.mapflow.process("buildings", client=client, run_dir=tmp_path, **opts)
        listed = [r for r in server.requests if "/processings/v2/page" in r.path]
        ids = {p["id"] for p in server.processings}
        charged = {p["id"]: p["cost"] for p in server.processings}
    assert listed and all(r.status == 503 for r in listed), "a poll read a status"
    warned = [r.getMessage() for r in caplog.records if r.name == "mapflow_geo.run.engine"]
    # every failed poll but the last (raised) is announced with the service's answer
    assert len(warned) == len(listed) - 1, warned
    assert all("503" in re.findall(r"\w+", m) for m in warned), warned
    res = open_run(tmp_path)
    assert len(ids) == N and set(res.processings["processing_id"]) == ids
    assert set(res.processings["status"]) <= service_statuses
    status = res.processings.set_index("processing_id")["status"]
    assert (res.tiles["status"] == res.tiles["processing_id"].map(status)).all()
    # and the cost each create answered, what the simulator charged
    assert res.processings.set_index("processing_id")["cost"].to_dict() == charged


def test_a_refused_create_stops_creating_and_each_unsent_tile_says_why(tmp_path):
    """One create at a time: the service refuses the first (400), and no other create is
    sent. Every tile fails NOT_CREATED with a reason naming the refusal (the simulator's
    fault); the tiles of each processing never sent say so."""
    gdf = grid_gdf(N)
    with sim.serve(**SIM, faults={"status_400": 1.0, **ON_CREATE}) as server:
        with pytest.raises(RunFailedError) as ei:
            gdf.mapflow.process(
                "buildings", client=server.client(), run_dir=tmp_path / "run",
                max_workers=1, **FAST,
            )  # fmt: skip
        sent = creates(server)
    res = ei.value.result
    assert len(sent) == 1 and server.charges == []
    assert len(res.tiles) == N and (res.tiles["status"] == "NOT_CREATED").all()
    reasons = res.tiles.groupby("processing_key")["messages"].first()
    assert len(reasons) == N
    assert all(len(ms) == 1 and "simulated fault" in ms[0] for ms in reasons), reasons
    unsent = [ms[0] for ms in reasons if "not sent" in ms[0]]
    assert len(unsent) == N - 1, reasons
