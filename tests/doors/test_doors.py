"""The doors a user calls: real signatures, arguments checked before any request, input
care (repaired and empty frames) and token errors a user can act on — through the public
API, against the simulator."""

from __future__ import annotations

import base64
import dataclasses
import inspect
import pickle
import pydoc
import warnings

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod

import mapflow_geo
from mapflow_geo import MapflowClient, sim
from mapflow_geo.exceptions import (
    AOIError,
    AOIRepairWarning,
    AOIWarning,
    AuthenticationError,
    ConfigError,
    MapflowWarning,
    PermissionDeniedError,
)
from mapflow_geo.imagery import check_dataarray, search_imagery, upload
from mapflow_geo.run import RunOptions, estimate, monitor, plan, process
from mapflow_geo.viz import explore_plan, plot_plan

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}
GEOD = Geod(ellps="WGS84")
#: Budget, limits and naming settings of a run (beside how it polls: RunOptions).
RUN_SETTINGS = {
    "client", "source", "blocks", "project", "run_dir", "max_credits", "errors",
    "input_errors", "area_limit_km2", "max_aois", "name", "max_processings",
}  # fmt: skip


def _gdf(*geoms, index=None):
    return gpd.GeoDataFrame(geometry=list(geoms), index=index, crs=4326)


AREA = _gdf(shapely.box(37.60, 55.70, 37.62, 55.71))


# ------------------------------------------------------------------- signatures
def test_process_signature_lists_every_run_setting():
    params = inspect.signature(AREA.mapflow.process).parameters
    polling = {f.name for f in dataclasses.fields(RunOptions)}
    assert polling | RUN_SETTINGS <= set(params)
    assert list(params)[0] == "model"
    # one route per setting: no options object, no catch-all
    assert "options" not in params
    assert all(p.kind is not p.VAR_KEYWORD for p in params.values())
    assert all(params[n].kind is params[n].KEYWORD_ONLY for n in polling | RUN_SETTINGS)
    assert params["max_credits"].default is None
    # help() shows them too
    text = pydoc.render_doc(AREA.mapflow.process, renderer=pydoc.plaintext)
    shown = text.split("\n\n")[1].splitlines()[0]  # the signature line
    assert shown.startswith("process(model")
    assert all(f"{name}:" in shown for name in polling | RUN_SETTINGS)
    assert "**" not in shown


@pytest.mark.parametrize(
    ("door", "impl"),
    [
        ("plan", plan),
        ("estimate", estimate),
        ("process", process),
        ("monitor", monitor),
        ("search_imagery", search_imagery),
        ("explore_plan", explore_plan),
        ("plot_plan", plot_plan),
    ],
)
def test_accessor_methods_have_their_implementation_signature(door, impl):
    shown = inspect.signature(getattr(AREA.mapflow, door))
    real = list(inspect.signature(impl).parameters.values())
    assert list(shown.parameters.values()) == real[1:]  # the frame dropped
    assert getattr(AREA.mapflow, door).__doc__ == impl.__doc__
    # no door hides its keywords behind **kwargs (search_imagery's **body is the
    # catalog's own fields, sent as given)
    kinds = [p.kind for p in shown.parameters.values()]
    assert inspect.Parameter.VAR_KEYWORD not in kinds or door == "search_imagery"


def test_dataarray_accessor_and_client_signatures():
    xr = pytest.importorskip("xarray")
    np = pytest.importorskip("numpy")
    da = xr.DataArray(np.zeros((4, 4), "uint8"), dims=("y", "x"))
    for door, impl in (("upload", upload), ("check", check_dataarray)):
        shown = inspect.signature(getattr(da.mapflow, door)).parameters
        assert list(shown) == list(inspect.signature(impl).parameters)[1:]
        assert "max_pixel_size_m" in shown and "limits" not in shown
    client = inspect.signature(MapflowClient).parameters
    assert {"token", "base_url", "retry", "timeout"} <= set(client)


# ------------------------------------------------------------------- checked at the door
@pytest.mark.parametrize(
    ("door", "args", "typo", "meant"),
    [
        ("process", ("buildings",), "max_credit", "max_credits"),
        ("process", ("buildings",), "poll_intervall", "poll_interval"),
        ("estimate", ("buildings",), "max_processing", "max_processings"),
        ("plan", (), "area_limit_km", "area_limit_km2"),
        ("search_imagery", (), "max_cloud_cove", "max_cloud_cover"),
        ("monitor", ("buildings",), "activ_until", "active_until"),
        (mapflow_geo.plan, (AREA,), "input_error", "input_errors"),
    ],
)
def test_misspelt_keyword_names_the_closest_valid_one(door, args, typo, meant, tmp_path):
    call = getattr(AREA.mapflow, door) if isinstance(door, str) else door
    extra = {"run_dir": tmp_path} if door == "monitor" else {}
    with sim.serve() as server:
        with pytest.raises(TypeError) as ei:
            call(*args, client=server.client(), **extra, **{typo: 5})
        sent = server.requests
    msg = str(ei.value)
    assert f"'{typo}'" in msg and f"did you mean '{meant}'?" in msg
    assert "Valid keywords:" in msg and meant in msg.split("Valid keywords:")[1]
    assert sent == []  # refused before any request


def test_misspelt_client_keyword():
    with pytest.raises(TypeError, match="did you mean 'retry'"):
        MapflowClient("t", base_url="http://127.0.0.1:9/rest", retyr=None)


@pytest.mark.parametrize(
    ("kwargs", "error", "allowed"),
    [
        ({"max_credits": "100"}, TypeError, "a number of credits ≥ 0 or None"),
        ({"max_credits": -5}, ValueError, "a number of credits ≥ 0 or None"),
        ({"max_aois": 2.5}, TypeError, "a whole number ≥ 1 or None"),
        ({"area_limit_km2": 0}, ValueError, "km² > 0"),
        ({"errors": "ignore"}, ValueError, "one of 'raise', 'warn'"),
        ({"input_errors": "warn"}, ValueError, "one of 'raise', 'skip'"),
        ({"blocks": "Classification"}, TypeError, "['Classification']"),
        ({"progress": "no"}, TypeError, "True or False"),
        ({"poll_interval": 0}, ValueError, "seconds > 0"),
        ({"max_workers": 0}, ValueError, "whole number ≥ 1"),
    ],
)
def test_wrong_argument_is_named_before_any_request(tmp_path, kwargs, error, allowed):
    (name, value), = kwargs.items()  # fmt: skip
    with sim.serve() as server:
        with pytest.raises(error) as ei:
            AREA.mapflow.process("buildings", client=server.client(), run_dir=tmp_path, **kwargs)
        assert server.requests == []
        assert server.processings == [] and server.charges == []
    msg = str(ei.value)
    assert f"{name}={value!r}" in msg and type(value).__name__ in msg
    assert allowed in msg
    assert not any(tmp_path.iterdir())  # no run dir written either


def test_wrong_value_on_other_doors():
    with sim.serve() as server:
        client = server.client()
        with pytest.raises(ValueError, match=r"max_cloud_cover=20 .*fraction.*write 0\.2"):
            AREA.mapflow.search_imagery(client=client, max_cloud_cover=20)
        with pytest.raises(TypeError, match=r"model=7 \(int\)"):
            AREA.mapflow.estimate(7, client=client)
        with pytest.raises(TypeError, match="client='abc'.*MapflowClient\\(token="):
            AREA.mapflow.plan(client="abc")
        assert server.requests == []


def test_a_bad_token_type_is_refused_without_showing_it():
    secret = b"c2VjcmV0LXRva2Vu"
    with pytest.raises(TypeError) as ei:
        MapflowClient(secret, base_url="http://127.0.0.1:9/rest")
    assert "token=<hidden>" in str(ei.value) and secret.decode() not in str(ei.value)


def test_a_parameters_own_default_is_always_allowed():
    # model=None is plan's default (no price): allowed there, refused where a model is due
    assert len(mapflow_geo.plan(AREA, area_limit_km2=25, model=None)) >= 1
    with pytest.raises(TypeError, match="model=None"):
        AREA.mapflow.estimate(None)


def test_valid_calls_still_run(tmp_path):
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=0) as server:
        res = AREA.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path, max_credits=1000, **FAST
        )
        assert res.complete and len(server.charges) == 1


# ------------------------------------------------------------------- input care
BOWTIE = shapely.Polygon([(30.0, 50.0), (30.1, 50.1), (30.1, 50.0), (30.0, 50.1)])


def _geodesic_km2(poly):
    return abs(GEOD.geometry_area_perimeter(poly)[0]) / 1e6


def test_repaired_geometry_warns_with_row_and_area_change():
    lobes = [
        shapely.Polygon([(30.0, 50.0), (30.05, 50.05), (30.0, 50.1)]),
        shapely.Polygon([(30.1, 50.1), (30.05, 50.05), (30.1, 50.0)]),
    ]
    repaired_km2 = sum(_geodesic_km2(p) for p in lobes)
    x, y = BOWTIE.exterior.xy
    drawn_km2 = abs(GEOD.polygon_area_perimeter(x, y)[0]) / 1e6
    gdf = _gdf(shapely.box(31, 50, 31.01, 50.01), BOWTIE, index=["fine", "lot-7"])
    with pytest.warns(AOIRepairWarning) as rec:
        tiles = gdf.mapflow.plan(area_limit_km2=100)
    [w] = [r.message for r in rec if isinstance(r.message, AOIRepairWarning)]
    assert isinstance(w, MapflowWarning)
    msg = str(w)
    assert "row 'lot-7'" in msg and "'fine'" not in msg
    assert "Self-intersection" in msg
    assert list(w.rows) == ["lot-7"]
    before, after = w.rows["lot-7"]
    assert before == pytest.approx(drawn_km2, abs=1e-6)
    assert after == pytest.approx(repaired_km2, rel=1e-6)
    assert f"{after:,.4f} km² repaired" in msg and f"{after - before:+,.4f} km²" in msg
    # and it is what gets planned
    planned = tiles.loc[tiles["row"] == "lot-7", "area_km2"].sum()
    assert planned == pytest.approx(repaired_km2, rel=1e-6)


@pytest.mark.parametrize(
    "door",
    [
        lambda gdf: gdf.mapflow.plan(area_limit_km2=100, input_errors="skip"),
        lambda gdf: plan(gdf, area_limit_km2=100, input_errors="skip"),
        lambda gdf: explore_plan(gdf, area_limit_km2=100, input_errors="skip"),
    ],
    ids=["accessor", "function", "map"],
)
def test_every_input_warning_points_at_the_callers_line(door):
    """The repair, skip and cover warnings name the user's own line (what ``-W error``
    tracebacks and notebooks show), not a line inside mapflow-geo, whatever the door."""
    gdf = _gdf(
        shapely.box(31, 50, 31.01, 50.01),
        BOWTIE,
        shapely.Point(30, 50),
        shapely.box(31.002, 50.002, 31.004, 50.004),
        index=["fine", "lot-7", "a point", "inside fine"],
    )
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        door(gdf)
    caught = [r for r in rec if issubclass(r.category, MapflowWarning)]
    kinds = {type(r.message).__name__ for r in caught} | {
        m for r in caught for m in ("skipped", "dropped") if m in str(r.message)
    }
    assert {"AOIRepairWarning", "skipped", "dropped"} <= kinds
    assert {r.filename for r in caught} == {__file__}


def test_valid_geometry_gives_no_repair_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", MapflowWarning)
        AREA.mapflow.plan(area_limit_km2=100)


def test_repair_warning_on_estimate_against_the_service():
    with sim.serve(aoi_area_limit_km2=25) as server:
        with pytest.warns(AOIRepairWarning, match="row 0"):
            est = _gdf(BOWTIE).mapflow.estimate("buildings", client=server.client())
    assert est.loc[0, "credits"] > 0


def test_empty_frame_is_refused_before_any_request(tmp_path):
    with sim.serve() as server:
        client = server.client()
        for call in (
            lambda: AREA.iloc[:0].mapflow.process("buildings", client=client, run_dir=tmp_path),
            lambda: AREA.iloc[:0].mapflow.estimate("buildings", client=client),
        ):
            with pytest.raises(AOIError, match="the frame has no rows"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", AOIWarning)
                    call()
        # every row skipped: also nothing to do
        points = _gdf(shapely.Point(30, 50))
        with pytest.raises(AOIError, match="every row was skipped"), pytest.warns(AOIWarning):
            points.mapflow.estimate("buildings", client=client, input_errors="skip")
        assert server.requests == []
    # an offline plan of nothing says so and returns an empty plan
    with pytest.warns(AOIWarning, match="no rows"):
        assert len(AREA.iloc[:0].mapflow.plan(area_limit_km2=25)) == 0


def test_missing_crs_and_degree_metre_mixup_keep_their_errors():
    with pytest.raises(AOIError, match="no CRS"):
        gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]).mapflow.plan(area_limit_km2=25)
    metres = gpd.GeoDataFrame(geometry=[shapely.box(400000, 6100000, 401000, 6101000)], crs=4326)
    with pytest.raises(AOIError, match="outside longitude/latitude range"):
        metres.mapflow.plan(area_limit_km2=25)


# ------------------------------------------------------------------- token errors
CANARY = base64.b64encode(b"someone@example.com:not-the-key-1234").decode()
#: the simulator's answer to a token it does not know
UNAUTHORIZED = "Missing or invalid API token (use 'Authorization: Basic <token>')"


def _assert_actionable(err, server_text, where):
    msg = str(err)
    assert "$MAPFLOW_TOKEN" in msg and "token=" in msg
    assert "https://app.mapflow.ai/account/api" in msg
    assert where in msg
    # the server's own text stays whole, after ours
    assert err.message == server_text
    assert msg.endswith(f" The server said: {err.code}: {server_text}")
    assert msg.index("MAPFLOW_TOKEN") < msg.index(server_text)
    for secret in (CANARY, "not-the-key-1234", "someone@example.com:not-the-key-1234"):
        assert secret not in msg and secret not in repr(err)


def test_invalid_token_argument_names_where_tokens_come_from():
    with sim.serve() as server:
        client = MapflowClient(CANARY, base_url=server.url)
        with pytest.raises(AuthenticationError) as ei:
            client.account.status()
    _assert_actionable(ei.value, UNAUTHORIZED, "passed as token=")
    again = pickle.loads(pickle.dumps(ei.value))
    assert str(again) == str(ei.value)


def test_invalid_token_from_environment_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("MAPFLOW_TOKEN", CANARY)
    with sim.serve() as server:
        client = MapflowClient(base_url=server.url)
        with pytest.raises(AuthenticationError) as ei:
            AREA.mapflow.process("buildings", client=client, run_dir=tmp_path, **FAST)
        assert server.processings == [] and server.charges == []
    _assert_actionable(ei.value, UNAUTHORIZED, "read from $MAPFLOW_TOKEN")


def test_access_denied_names_the_token_too():
    with sim.serve(faults={"status_403": 1.0}) as server:
        with pytest.raises(PermissionDeniedError) as ei:
            server.client().account.status()
    _assert_actionable(ei.value, "Access denied (simulated fault)", "passed as token=")


def test_no_token_at_all(monkeypatch):
    monkeypatch.delenv("MAPFLOW_TOKEN", raising=False)
    with pytest.raises(ConfigError) as ei:
        MapflowClient(base_url="http://127.0.0.1:9/rest")
    msg = str(ei.value)
    assert "$MAPFLOW_TOKEN" in msg and "token=" in msg
    assert "https://app.mapflow.ai/account/api" in msg


def test_other_errors_carry_no_token_hint():
    with sim.serve() as server:
        with pytest.raises(Exception) as ei:
            server.client().processings.get("no-such-processing")
    assert "MAPFLOW_TOKEN" not in str(ei.value)


def test_completion_offers_the_real_keywords():
    jedi = pytest.importorskip("jedi")
    script = jedi.Interpreter('gdf.mapflow.process("buildings", max_cr', [{"gdf": AREA}])
    assert "max_credits=" in [c.name for c in script.complete()]
    script = jedi.Interpreter("gdf.mapflow.plan(area_li", [{"gdf": AREA}])
    assert "area_limit_km2=" in [c.name for c in script.complete()]
