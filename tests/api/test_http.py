"""Transport-level behaviour (retry, backoff, Retry-After, create safety, error mapping,
redaction, URL refusal) against a tiny scripted loopback HTTP server.

The simulator covers the API; this throwaway server produces faults it cannot
(read timeouts, HTML gateways, echoed headers, exact Retry-After values…).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support.clock import FakeTime

from mapflow_geo import exceptions as exc
from mapflow_geo._http import RetryPolicy, Transport, parse_retry_after, resolve_base_url
from mapflow_geo.client import MapflowClient

CANARY_EMAIL = "canary-user@example.org"
CANARY_KEY = "CANARY-KEY-7f3a9b1c55e04d2a"
CANARY_RAW = f"{CANARY_EMAIL}:{CANARY_KEY}"
CANARY_TOKEN = base64.b64encode(CANARY_RAW.encode()).decode()
SECRETS = [CANARY_TOKEN, CANARY_KEY, CANARY_RAW]
RETRY_FIELDS = ("max_retries", "backoff_base", "backoff_max", "max_retry_after", "deadline")


# --------------------------------------------------------------------------- server
class Scripted(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[dict] = []
        self.log: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/rest"

    def push(self, *steps: dict) -> None:
        self.script.extend(steps)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):  # quiet
        pass

    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        srv: Scripted = self.server  # type: ignore[assignment]
        with srv.lock:
            srv.log.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )
            step = srv.script.pop(0) if srv.script else {}
        action = step.get("action")
        if action == "drop":  # read the request, answer nothing
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action == "sleep":
            time.sleep(step.get("seconds", 1.0))
        status = step.get("status", 200)
        payload = step.get("body", {"ok": True})
        if action == "echo_auth":
            payload = {"code": "BAD", "message": "got " + self.headers.get("Authorization", "")}
        if isinstance(payload, (dict, list, int)):
            data = json.dumps(payload).encode()
            ctype = "application/json"
        else:
            data = payload.encode() if isinstance(payload, str) else payload
            ctype = step.get("content_type", "text/html")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in step.get("headers", {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def server():
    srv = Scripted()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def make(server, ft=None, **kw) -> MapflowClient:
    """A client on ``server`` with fake time; ``RetryPolicy`` fields among ``kw`` make
    its ``retry`` (4 retries unless told)."""
    ft = ft or FakeTime()
    policy = {"max_retries": 4, **{k: kw.pop(k) for k in RETRY_FIELDS if k in kw}}
    kw.setdefault("timeout", (2.0, 2.0))
    return MapflowClient(
        CANARY_TOKEN,
        base_url=server.url,
        retry=RetryPolicy(**policy),
        sleep=ft.sleep,
        clock=ft.clock,
        random=kw.pop("random", lambda: 0.5),
        **kw,
    )


def assert_no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text


def all_exception_text(e: BaseException) -> str:
    parts, seen = [], set()
    stack = [e]
    while stack:
        x = stack.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        parts += [str(x), repr(x), repr(getattr(x, "args", ""))]
        for attr in ("request", "response"):
            r = getattr(x, attr, None)
            if r is not None:
                parts.append(repr(getattr(r, "headers", "")))
        stack += [x.__cause__, x.__context__]
        stack += [a for a in getattr(x, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(x, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return "\n".join(parts)


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/rest",
        "http://localhost@evil.example/rest",
        "http://127.0.0.1@evil.example/rest",
        "http://user:pw@127.0.0.1/rest",
        "ftp://127.0.0.1/rest",
        "http://10.0.0.1/rest",
        "http://localhost.evil.example/rest",
        "http:///rest",
    ],
)
def test_unsafe_base_urls_refused(url):
    with pytest.raises(exc.ConfigError) as ei:
        MapflowClient("tok", base_url=url)
    assert "pw" not in str(ei.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/rest",
        "http://127.3.4.5/rest/",
        "http://localhost:1/rest",
        "http://[::1]:8000/rest",
        "https://api.mapflow.ai/rest",
        "https://proxy.example/rest",
    ],
)
def test_safe_base_urls_accepted(url):
    assert resolve_base_url(url) == url.rstrip("/")


def test_env_config(monkeypatch):
    monkeypatch.setenv("MAPFLOW_TOKEN", "env-token")
    monkeypatch.setenv("MAPFLOW_API_URL", "http://127.0.0.1:9/rest")
    c = MapflowClient()
    assert c.base_url == "http://127.0.0.1:9/rest"
    monkeypatch.delenv("MAPFLOW_API_URL")
    assert MapflowClient().base_url == "https://api.mapflow.ai/rest"
    monkeypatch.delenv("MAPFLOW_TOKEN")
    with pytest.raises(exc.ConfigError, match="MAPFLOW_TOKEN"):
        MapflowClient()
    with pytest.raises(exc.ConfigError):
        MapflowClient("t", auth="digest")


@pytest.mark.parametrize("bypass", [False, True])
def test_the_environments_proxy_is_used_on_every_request_unless_bypassed(
    server, monkeypatch, bypass
):
    """``HTTP_PROXY`` carries every request of the client's own session (requests'
    rules): the proxy is asked for the API's absolute URL, on the first request and
    the later ones; with the API's host in ``NO_PROXY`` nothing goes to the proxy."""
    with socket.socket() as s:  # the API itself: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url.removesuffix("/rest"))
    if bypass:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    c = MapflowClient(
        CANARY_TOKEN, base_url=f"http://127.0.0.1:{port}/rest", retry=RetryPolicy(max_retries=0)
    )
    if bypass:
        with pytest.raises(exc.TransportError, match="refused"):
            c.account.status()
        assert server.log == []
        return
    server.push({"body": {"email": "a@b.c"}}, {"body": {"email": "a@b.c"}})
    c.account.status()
    c.account.status()
    assert [r["path"] for r in server.log] == [f"http://127.0.0.1:{port}/rest/user/status"] * 2


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("nonsense") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(
        10.0
    )


# --------------------------------------------------------------------------- auth
def test_basic_auth_default_and_bearer(server):
    with make(server) as c:
        c.account.status()
    assert server.log[-1]["headers"]["Authorization"] == f"Basic {CANARY_TOKEN}"
    with make(server, auth="bearer") as c:
        c.account.status()
    assert server.log[-1]["headers"]["Authorization"] == f"Bearer {CANARY_TOKEN}"
    # a raw email:key is encoded for the user
    with MapflowClient(CANARY_RAW, base_url=server.url) as c:
        c.account.status()
    assert server.log[-1]["headers"]["Authorization"] == f"Basic {CANARY_TOKEN}"


# --------------------------------------------------------------------------- retries
def test_get_retries_503_then_succeeds_with_full_jitter(server):
    ft = FakeTime()
    server.push(
        {"status": 503, "body": "busy"}, {"status": 502}, {"status": 504}, {"body": {"email": "x"}}
    )
    with make(server, ft, backoff_base=0.1, random=lambda: 1.0) as c:
        st = c.account.status()
    assert st.email == "x"
    assert len(server.log) == 4
    assert ft.sleeps == pytest.approx([0.1, 0.2, 0.4])


def test_backoff_is_capped_and_jittered(server):
    ft = FakeTime()
    server.push(*[{"status": 503}] * 4)
    with make(server, ft, backoff_base=1.0, backoff_max=2.5, random=lambda: 0.5) as c:
        c.account.status()
    assert ft.sleeps == pytest.approx([0.5, 1.0, 1.25, 1.25])


def test_retry_after_honoured_and_clamped(server, caplog):
    ft = FakeTime()
    server.push(
        {"status": 429, "headers": {"Retry-After": "3"}},
        {"status": 429, "headers": {"Retry-After": "9999"}},
        {"body": {}},
    )
    caplog.set_level(logging.DEBUG)
    with make(server, ft, max_retry_after=20.0) as c:
        c.projects.list()
    assert ft.sleeps == [3.0, 20.0]
    text = caplog.text
    assert "POST /projects/page -> 429 (attempt 1)" in text  # the paged listing
    assert "attempt 2/5, delay 3.000s" in text


def test_gives_up_after_max_retries(server):
    ft = FakeTime()
    server.push(*[{"status": 503, "body": {"code": "UNAVAILABLE", "message": "down"}}] * 10)
    with make(server, ft, max_retries=2) as c, pytest.raises(exc.ServerError) as ei:
        c.processings.get("p1")
    assert len(server.log) == 3
    e = ei.value
    assert (e.status, e.code, e.message, e.method, e.path) == (
        503,
        "UNAVAILABLE",
        "down",
        "GET",
        "/processings/p1/v2",
    )


def test_429_exhausted_keeps_retry_after(server):
    server.push(*[{"status": 429, "headers": {"Retry-After": "1"}}] * 3)
    with make(server, max_retries=1) as c, pytest.raises(exc.RateLimitError) as ei:
        c.data.memory()
    assert ei.value.retry_after == 1.0


def test_deadline_stops_retrying(server):
    ft = FakeTime()
    server.push(*[{"status": 503}] * 10)
    with make(server, ft, max_retries=10, deadline=5.0, backoff_base=2.0, random=lambda: 1.0) as c:
        with pytest.raises(exc.ServerError):
            c.account.status()
    assert sum(ft.sleeps) <= 5.0
    assert len(server.log) == len(ft.sleeps) + 1 < 11


def test_the_client_takes_its_retry_policy_whole(server):
    server.push(*[{"status": 503}] * 5)
    with make(server, max_retries=1) as c, pytest.raises(exc.ServerError):
        c.account.status()
    assert c.retry_policy == RetryPolicy(max_retries=1) and len(server.log) == 2
    with pytest.raises(ValueError, match=r"RetryPolicy\(\): max_retries=-1"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match=r"deadline=-5"):
        RetryPolicy(deadline=-5)
    with pytest.raises(TypeError, match="retry must be a RetryPolicy or None"):
        MapflowClient(CANARY_TOKEN, base_url=server.url, retry=3)
    assert len(server.log) == 2  # refused before any request


def test_4xx_not_retried(server):
    server.push({"status": 404, "body": {"code": "NOT_FOUND", "message": "no such processing"}})
    with make(server) as c, pytest.raises(exc.NotFoundError) as ei:
        c.processings.get("nope")
    assert len(server.log) == 1 and ei.value.code == "NOT_FOUND"


def test_read_timeout_retried_for_get(server):
    ft = FakeTime()
    server.push({"action": "sleep", "seconds": 0.6}, {"body": {"id": "p"}})
    with make(server, ft, timeout=(1.0, 0.2)) as c:
        assert c.processings.get("p").id == "p"
    assert len(ft.sleeps) == 1


def test_reset_retried_for_get(server):
    server.push({"action": "drop"}, {"body": {"id": "p"}})
    with make(server) as c:
        assert c.processings.get("p").id == "p"


def test_read_only_posts_are_retried(server):
    server.push({"status": 503}, {"body": 42})
    with make(server) as c:
        assert c.processings.cost(wdId="w", areaSqKm=1.0) == 42
    server.push({"status": 503}, {"body": []})
    with make(server) as c:
        assert len(c.catalog.search({"type": "Polygon", "coordinates": []})) == 0


# --------------------------------------------------------------------------- creates
BODY = {"name": "n", "projectId": "pr", "wdName": "🏠 Buildings", "meta": {"run": "r1"}}


def test_create_not_retried_on_503(server):
    server.push(
        {"status": 503, "body": {"code": "UNAVAILABLE", "message": "later"}}, {"body": {"id": "x"}}
    )
    with make(server) as c, pytest.raises(exc.ServerError):
        c.processings.create(**BODY)
    assert [r["method"] for r in server.log] == ["POST"]


def test_create_dropped_answer_is_ambiguous(server):
    server.push({"action": "drop"})
    with make(server) as c, pytest.raises(exc.AmbiguousCreateError) as ei:
        c.processings.create(**BODY)
    assert len(server.log) == 1
    assert ei.value.meta == {"run": "r1"}
    assert ei.value.path == "/processings/v2"


def test_create_timeout_is_ambiguous(server):
    server.push({"action": "sleep", "seconds": 0.6})
    with make(server, timeout=(1.0, 0.2)) as c, pytest.raises(exc.AmbiguousCreateError):
        c.projects.create("p")
    assert len(server.log) == 1


def test_create_unreadable_200_is_ambiguous(server):
    server.push({"status": 200, "body": "<html>oops</html>"})
    with make(server) as c, pytest.raises(exc.AmbiguousCreateError):
        c.processings.create(**BODY)


def test_create_gateway_502_html_is_ambiguous_but_json_error_is_not(server):
    server.push({"status": 502, "body": "<html><h1>Bad gateway</h1></html>"})
    with make(server) as c, pytest.raises(exc.AmbiguousCreateError):
        c.data.mosaics.create("m")
    server.push(
        {
            "status": 400,
            "body": {
                "code": "TOO_LARGE_PROCESSING",
                "message": "big",
                "params": {"area": "48669864", "aoiAreaLimit": "2500000"},
            },
        }
    )
    with make(server) as c, pytest.raises(exc.TooLargeProcessingError) as ei:
        c.processings.create(**BODY)
    assert ei.value.params == {"area": "48669864", "aoiAreaLimit": "2500000"}
    assert ei.value.status == 400


def test_create_connection_refused_is_retried_then_transport_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens: connection refused
    ft = FakeTime()
    c = MapflowClient(
        CANARY_TOKEN,
        base_url=f"http://127.0.0.1:{port}/rest",
        retry=RetryPolicy(max_retries=2),
        sleep=ft.sleep,
        clock=ft.clock,
    )
    with pytest.raises(exc.TransportError) as ei:
        c.processings.create(**BODY)
    assert not isinstance(ei.value, exc.AmbiguousCreateError)
    assert len(ft.sleeps) == 2
    assert "refused" in str(ei.value)
    assert_no_secret(all_exception_text(ei.value))


def test_non_json_200_for_get_is_transport_error(server):
    server.push({"status": 200, "body": "<html>captive portal</html>"})
    with make(server, max_retries=0) as c, pytest.raises(exc.TransportError) as ei:
        c.account.status()
    assert not isinstance(ei.value, exc.AmbiguousCreateError)
    assert "not JSON" in str(ei.value)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "status,cls",
    [
        (400, exc.BadRequestError),
        (401, exc.AuthenticationError),
        (403, exc.PermissionDeniedError),
        (404, exc.NotFoundError),
        (409, exc.ConflictError),
        (422, exc.UnprocessableError),
        (500, exc.ServerError),
        (418, exc.APIError),
    ],
)
def test_status_mapping(server, status, cls):
    server.push({"status": status, "body": {"code": "C", "message": "m", "params": {"k": "v"}}})
    with make(server, max_retries=0) as c, pytest.raises(cls) as ei:
        c.projects.get("a/b?c")
    e = ei.value
    assert (e.status, e.code, e.message, e.params) == (status, "C", "m", {"k": "v"})
    assert e.path == "/projects/a%2Fb%3Fc"  # ids cannot add path segments or a query
    assert server.log[0]["path"] == "/rest/projects/a%2Fb%3Fc"


def test_plain_text_and_html_error_bodies(server):
    server.push({"status": 500, "body": "<html><body><h1>Internal</h1> boom</body></html>"})
    with make(server, max_retries=0) as c, pytest.raises(exc.ServerError) as ei:
        c.account.status()
    assert ei.value.message == "Internal boom" and ei.value.code is None
    server.push({"status": 403, "body": "Forbidden", "content_type": "text/plain"})
    with make(server, max_retries=0) as c, pytest.raises(exc.PermissionDeniedError) as ei:
        c.account.status()
    assert ei.value.message == "Forbidden"


# --------------------------------------------------------------------------- secrets
def test_no_token_in_repr_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG)  # root: includes urllib3
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    texts = []
    c = make(server, max_retries=1, timeout=(1.0, 0.2))
    texts += [repr(c), str(c), repr(c._http), repr(c._http._auth)]
    server.push({"action": "echo_auth", "status": 401})
    with pytest.raises(exc.AuthenticationError) as ei:
        c.account.status()
    texts.append(all_exception_text(ei.value))
    assert "***" in ei.value.message  # echoed header scrubbed
    server.push({"action": "sleep", "seconds": 0.5}, {"action": "sleep", "seconds": 0.5})
    with pytest.raises(exc.TransportError) as ei:
        c.processings.get("p")
    texts.append(all_exception_text(ei.value))
    assert ei.value.__cause__ is not None and getattr(ei.value.__cause__, "request", None) is None
    server.push({"action": "drop"})
    with pytest.raises(exc.AmbiguousCreateError) as ei:
        c.processings.create(**BODY)
    texts.append(all_exception_text(ei.value))
    texts.append(caplog.text)
    texts += [r.getMessage() for r in caplog.records]
    assert any("urllib3" in r.name for r in caplog.records)
    for t in texts:
        assert_no_secret(t)
    c.close()
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(c)


ECHOES = {
    "token": CANARY_TOKEN,
    "decoded email:key": CANARY_RAW,
    "key alone": CANARY_KEY,
    "URL-quoted token": CANARY_TOKEN.replace("=", "%3D"),
}


@pytest.mark.parametrize("echoed", list(ECHOES), ids=list(ECHOES))
def test_error_bodies_echoing_the_token_leave_no_trace(server, caplog, echoed):
    """A server that echoes the credentials (token, decoded ``email:key``, or the key
    alone) in its error bodies: nothing of them in exception str/repr, attributes,
    chained text or DEBUG logs, whatever the body's shape."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    value = ECHOES[echoed]
    server.push(
        # a readable Mapflow error, the value in message, code and params
        {
            "status": 500,
            "body": {
                "code": f"BAD_{value}",
                "message": f"invalid credentials {value} for {CANARY_EMAIL}",
                "params": {"apiKey": value, "got": f"Basic {value}", "user": CANARY_EMAIL},
            },
        },
        # a proxy's HTML page
        {"status": 500, "body": f"<html><body><p>key {value} refused</p></body></html>"},
        # a 200 that is not JSON
        {"status": 200, "body": f"welcome {value}", "content_type": "text/plain"},
        # a create answered by a gateway page: ambiguous
        {"status": 502, "body": f"<h1>Bad gateway</h1> upstream said {value}"},
    )
    errors = []
    with make(server, max_retries=0) as c:
        for call, cls in (
            (c.account.status, exc.ServerError),
            (c.account.status, exc.ServerError),
            (c.account.status, exc.TransportError),
            (lambda: c.processings.create(**BODY), exc.AmbiguousCreateError),
        ):
            with pytest.raises(cls) as ei:
                call()
            errors.append(ei.value)
    first = errors[0]
    assert CANARY_EMAIL in first.message and "***" in first.message  # the email is no secret
    assert first.params["user"] == CANARY_EMAIL and first.params["apiKey"] == "***"
    texts = [all_exception_text(e) for e in errors]
    texts += [repr(vars(e)) for e in errors]
    texts += [caplog.text] + [r.getMessage() for r in caplog.records]
    for t in texts:
        assert_no_secret(t)
        assert value not in t


def test_key_in_a_path_is_redacted_in_errors_logs_and_chained_text(caplog):
    """An id that holds the key (pasted by mistake) reaches no error, log line or the
    chained urllib3 exception (whose text names the URL)."""
    caplog.set_level(logging.DEBUG)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens: connection refused
    ft = FakeTime()
    c = MapflowClient(
        CANARY_TOKEN,
        base_url=f"http://127.0.0.1:{port}/rest",
        retry=RetryPolicy(max_retries=1),
        sleep=ft.sleep,
        clock=ft.clock,
    )
    with pytest.raises(exc.TransportError) as ei:
        c.processings.get(f"id-{CANARY_KEY}")
    e = ei.value
    text = all_exception_text(e) + "".join(traceback.format_exception(type(e), e, e.__traceback__))
    assert "Max retries exceeded" in text  # the chained urllib3 text is there, redacted
    assert_no_secret(text)
    assert_no_secret(caplog.text)
    assert e.path == "/processings/id-***/v2"


def test_transport_secrets_cover_every_form():
    t = Transport(CANARY_RAW, base_url="http://127.0.0.1:9/rest")
    for s in (*SECRETS, f"Basic {CANARY_TOKEN}"):
        assert s in t.secrets
    assert CANARY_EMAIL not in t.secrets
    assert t.redact_text(f"{CANARY_RAW} {CANARY_KEY}") == "*** ***"
    t.close()


def test_transport_policy_defaults():
    t = Transport("x", base_url="http://127.0.0.1:1/rest")
    assert isinstance(t.retry, RetryPolicy) and t.timeout == (10.0, 120.0)
    assert repr(t) == "Transport(base_url='http://127.0.0.1:1/rest', auth='basic')"
