"""Campaign 8 — secrets: a canary token never appears, raw or base64 (nor its decoded
``email:key``, nor the key alone) in DEBUG logs, exception text (chained too), reprs, the
journal and every file of a run, saved HTML maps, or pickles; plain http to a remote
host is refused; ``rasterPassword`` is redacted; the token is never sent to another host
on a redirect."""

from __future__ import annotations

import base64
import logging
import pickle
import traceback

import pytest
import requests
from support.areas import grid_gdf
from support.campaign import FAST

import mapflow_geo  # noqa: F401
from mapflow_geo import MapflowClient, RetryPolicy, open_run, sim, sources
from mapflow_geo import exceptions as exc
from mapflow_geo._http import resolve_base_url

EMAIL = "canary@mapflow.test"
KEY = "CANARY-KEY-7f3a9c2b1d"
TOKEN = base64.b64encode(f"{EMAIL}:{KEY}".encode()).decode()
RASTER_PASSWORD = "CANARY-RASTER-PW-55e1"
SECRETS = [
    TOKEN,
    KEY,
    f"{EMAIL}:{KEY}",
    base64.b64encode(KEY.encode()).decode(),
    RASTER_PASSWORD,
    base64.b64encode(RASTER_PASSWORD.encode()).decode(),
]


def _assert_clean(blob: str | bytes, where: str) -> None:
    for s in SECRETS:
        needle = s.encode() if isinstance(blob, bytes) else s
        assert needle not in blob, f"a secret leaked into {where}"


def _chain(e: BaseException) -> str:
    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def test_canary_never_leaks(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # root: ours, urllib3, everything
    texts: list[str] = []
    faults = {"status_503": 0.2, "reset": 0.05, "status_429": 0.1, "methods": ["GET"]}
    src = sources.user_defined(
        "https://tiles.example/{z}/{x}/{y}.png",
        zoom=18,
        raster_login="me",
        raster_password=RASTER_PASSWORD,
    )
    run_dir = tmp_path / "run"
    with sim.serve(
        token=TOKEN,
        aoi_area_limit_km2=5,
        processing_seconds=0,
        seed=3,
        faults=dict(faults, retry_after="0"),
    ) as server:
        client = server.client(retry=RetryPolicy(backoff_base=0.01))
        texts += [repr(client), str(client), repr(src), str(src)]
        res = grid_gdf(4).mapflow.process(
            "buildings", client=client, run_dir=run_dir, source=src, **FAST
        )
        texts += [repr(res), str(res), repr(res.processings), repr(res.tiles), repr(res.costs)]
        texts += [repr(p) for p in client.processings.list()]
        # errors, chained: ambiguous create, 401 after a token rotation, 404, 400
        server.set_faults(drop_create_response=1.0)
        with pytest.raises(exc.AmbiguousCreateError) as ei:
            client.processings.create(
                name="x",
                wdName="🏠 Buildings",
                params=src,
                geometry=grid_gdf(1).geometry.iloc[0].__geo_interface__,
            )
        texts.append(_chain(ei.value))
        server.clear_faults()
        for bad in (
            lambda: client.processings.get("nope"),
            lambda: client.processings.create(
                name="x", wdName="🏠 Buildings", params=src, geometry={"type": "Nope"}
            ),
        ):
            with pytest.raises(exc.MapflowError) as ei:
                bad()
            texts += [_chain(ei.value), repr(ei.value)]
        server.set_token("b3RoZXJAeDpvdGhlcg==")
        with pytest.raises(exc.AuthenticationError) as ei:
            client.account.status()
        texts.append(_chain(ei.value))
        # pickles: the result pickles without the token; the client refuses
        blob = pickle.dumps(res)
        _assert_clean(blob, "a pickled result")
        with pytest.raises(TypeError):
            pickle.dumps(client)
        # saved HTML maps, plain and with Mapflow's layers (the client is used for tile
        # URLs): always made and always checked
        server.set_token(TOKEN)
        for n, kw in enumerate(({}, {"client": client})):
            html = tmp_path / f"map{n}.html"
            res.explore(**kw).save(str(html))
            page = html.read_bytes()
            assert b"<html" in page.lower() and len(page) > 1000, f"no map saved for {kw}"
            _assert_clean(page, f"saved HTML {kw}")
    texts += [caplog.text] + [r.getMessage() for r in caplog.records]
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    _assert_clean("\n".join(texts), "logs, reprs or exception text")
    # every byte the run left on disk: journal (and WAL), results, plan, params
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("journal.sqlite") for p in files)
    for p in files:
        _assert_clean(p.read_bytes(), str(p.relative_to(run_dir)))
    _assert_clean(pickle.dumps(open_run(run_dir)), "a pickled reopened result")


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/rest",
        "http://localhost@evil.example/rest",
        "http://localhost:80@evil.example/rest",
        "http://127.0.0.1@evil.example/rest",
        "http://user:pw@127.0.0.1/rest",
        "http://127.0.0.1.evil.example/rest",
        "http://0x7f000001/rest",
        "http://[::ffff:8.8.8.8]/rest",
        "http://%6c%6f%63%61%6c%68%6f%73%74/rest",
        "ftp://127.0.0.1/rest",
        "http:///rest",
    ],
)
def test_unsafe_urls_refused(url):
    with pytest.raises(exc.ConfigError):
        resolve_base_url(url)
    with pytest.raises(exc.ConfigError):
        MapflowClient(TOKEN, base_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/rest",
        "http://localhost:9/rest",
        "http://[::1]:9/rest",
        "https://api.mapflow.ai/rest",
    ],
)
def test_loopback_http_and_https_accepted(url):
    assert resolve_base_url(url) == url


def test_raster_password_redacted():
    src = sources.user_defined(
        "https://t.example/{z}/{x}/{y}.png", raster_login="me", raster_password=RASTER_PASSWORD
    )
    assert RASTER_PASSWORD not in repr(src) and "***" in repr(src)
    assert RASTER_PASSWORD not in repr(sources.redact({"x": [dict(src)]}))
    # but it is what the service receives
    assert src["sourceParams"]["userDefined"]["rasterPassword"] == RASTER_PASSWORD


@pytest.mark.parametrize("target_host", ["127.0.0.2", "localhost"])
def test_token_never_sent_to_another_host_on_redirect(target_host):
    with sim.serve(token=TOKEN, host=target_host) as other, sim.serve(token=TOKEN) as server:
        server.set_faults(redirect=1.0, redirect_to=other.base)
        # what requests alone does: it follows, and strips Authorization (other host)
        s = requests.Session()
        r = s.get(
            server.url + "/user/status", headers={"Authorization": f"Basic {TOKEN}"}, timeout=10
        )
        assert r.status_code == 401
        assert [x.authorized for x in other.requests] == [False]
        other.clear_requests()
        # ours does not follow a redirect to another origin at all (the body of a create
        # may hold a rasterPassword): a clear error, nothing reaches the other host
        client = server.client()
        with pytest.raises(exc.TransportError, match="redirect to another origin"):
            client.account.status()
        with pytest.raises(exc.TransportError, match="redirect to another origin"):
            client.processings.create(
                name="x",
                wdName="🏠 Buildings",
                geometry=grid_gdf(1).geometry.iloc[0].__geo_interface__,
            )
        assert other.requests == []
        assert server.charges == [] and other.charges == []


def test_same_origin_redirect_followed_with_token():
    with sim.serve(token=TOKEN) as server:
        server.set_faults(redirect=0.5, redirect_to=server.base, methods=["GET"])
        client = server.client()
        for _ in range(10):
            assert client.account.status().email == EMAIL
        hops = [r for r in server.requests if r.fault == "redirect"]
        assert hops and all(r.authorized for r in server.requests)
