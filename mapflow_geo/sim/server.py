"""Loopback HTTP server around :class:`~.service.Service`: faults, the request log, and the
admin routes (``/_sim/...``, handlers in ``api_admin.py``, declared in ``routes.py``)."""

from __future__ import annotations

import copy
import json
import random
import socket
import struct
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import api_admin, api_templates, damage, world_service
from .base import Request, Response
from .routes import dispatch, is_admin_path, match_admin
from .service import Service, SimOptions

#: Faults answered *before* the handler runs (nothing is committed), in draw order.
_STATUS_FAULTS = (
    "reset",
    "status_503",
    "status_500",
    "status_502",
    "status_429",
    "status_400",
    "status_401",
    "status_403",
    "status_422",
    "status_501",
    "status_504",
    "redirect",
)
#: Faults applied *after* the handler ran (a create has committed and been charged).
_AFTER_FAULTS = ("html_200", "gateway_timeout", "hang")
#: Faults of a result body (``GET .../result`` answered 200), applied after the handler.
_RESULT_FAULTS = ("truncated_result", "malformed_result")
FAULT_KEYS = {
    *_STATUS_FAULTS,
    *_AFTER_FAULTS,
    *_RESULT_FAULTS,
    "damaged_geometry",
    "drop_create_response",
    "cut_listing",
    "latency_s",
    "hang_s",
    "methods",
    "paths",
    "retry_after",
    "redirect_to",
}
_FAULT_BODIES = {
    400: ("BAD_REQUEST", "Bad request (simulated fault)"),
    401: ("UNAUTHORIZED", "Missing or invalid API token (simulated fault)"),
    403: ("FORBIDDEN", "Access denied (simulated fault)"),
    422: ("UNPROCESSABLE_ENTITY", "Unprocessable entity (simulated fault)"),
    500: ("INTERNAL_ERROR", "Internal server error (simulated fault)"),
    501: ("NOT_IMPLEMENTED", "Not implemented (simulated fault)"),
    502: ("BAD_GATEWAY", "Bad gateway (simulated fault)"),
    503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable (simulated fault)"),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout (simulated fault)"),
    429: ("TOO_MANY_REQUESTS", "Too many requests (simulated fault)"),
}
_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>%s</title></head>"
    b"<body><h1>%s</h1><p>simulated proxy page</p></body></html>"
)


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int  # 0 when the connection was reset instead of answered
    time: float
    duration: float
    body_size: int
    response_size: int
    fault: str | None = None
    handled_status: int | None = None  # what the handler answered, when a fault replaced it
    authorized: bool = False  # the request carried an Authorization header (never its value)

    def to_dict(self) -> dict:
        return asdict(self)


def normalize_faults(faults: dict | None) -> dict:
    faults = dict(faults or {})
    unknown = set(faults) - FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}; known: {sorted(FAULT_KEYS)}")
    out: dict[str, Any] = {}
    for k in (
        *_STATUS_FAULTS,
        *_AFTER_FAULTS,
        *_RESULT_FAULTS,
        "drop_create_response",
        "damaged_geometry",
        "cut_listing",
    ):
        v = float(faults.get(k, 0.0) or 0.0)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"fault {k} must be a probability in [0, 1], got {v}")
        out[k] = v
    out["latency_s"] = float(faults.get("latency_s", 0.0) or 0.0)
    out["hang_s"] = float(faults.get("hang_s", 5.0) or 0.0)
    out["redirect_to"] = faults.get("redirect_to")
    if out["redirect"] and not out["redirect_to"]:
        raise ValueError("fault redirect needs redirect_to (a base URL such as http://h:p)")
    out["retry_after"] = faults.get("retry_after", 1)
    m = faults.get("methods")
    out["methods"] = [str(x).upper() for x in m] if m else None
    p = faults.get("paths")
    out["paths"] = list(p) if p else None
    return out


def _cut_listing(resp: Response) -> Response | None:
    """A paged listing's answer (``{results, total, ...}``) with its results lost and its
    ``total`` kept: an empty page before ``total``. None for any other answer."""
    try:
        data = json.loads(resp.body or b"")
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        return None
    if not isinstance(data.get("total"), int) or not data["results"]:
        return None
    data["results"] = []
    if "count" in data:
        data["count"] = 0
    return Response(200, json.dumps(data, ensure_ascii=False).encode("utf-8"))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, sim: Server):
        self.sim = sim
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):  # quiet: clients hang up all the time
        pass

    def close_all_connections(self):
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MapflowSim/1.0"
    sys_version = ""
    timeout = 120

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # ------------------------------------------------------------------
    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _reset(self):
        """Abort the connection with a TCP RST (SO_LINGER 0, then close)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def _send(self, resp: Response, head_only: bool = False):
        self.send_response(resp.status)
        body = resp.body or b""
        if resp.status != 204:
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(body) if resp.status != 204 else 0))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        # one write for headers and body (no Nagle / delayed-ACK stalls on keep-alive)
        self._headers_buffer.append(b"\r\n")
        if body and resp.status != 204 and not head_only:
            self._headers_buffer.append(body)
        self.flush_headers()

    def _dispatch(self):
        sim: Server = self.server.sim
        t0 = time.time()
        parts = urlsplit(self.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        if is_admin_path(path):
            self._send(sim._admin(self.command, path, body, query))
            return
        rec = RequestRecord(self.command, path, parts.query, 0, t0, 0.0, len(body), 0)
        rec.authorized = bool(self.headers.get("Authorization"))
        faults = sim.faults
        if faults["latency_s"] > 0:
            time.sleep(faults["latency_s"])
        selected = f"{path}?{parts.query}" if parts.query else path  # what `paths` match
        fault = sim._draw_fault(self.command, selected)
        resp: Response | None = None
        hang = 0.0
        if fault == "reset":
            rec.fault = "reset"
        elif fault == "redirect":
            rec.fault = fault
            target = str(faults["redirect_to"]).rstrip("/") + self.path
            resp = Response(307, b"", headers={"Location": target})
        elif fault:
            status = int(fault.split("_")[1])
            code, msg = _FAULT_BODIES[status]
            headers = {}
            if status == 429:
                headers["Retry-After"] = str(faults["retry_after"])
            resp = Response(
                status,
                json.dumps({"code": code, "message": msg, "params": {}}).encode(),
                headers=headers,
            )
            rec.fault = fault
        else:
            req = Request(
                self.command, path, query, {k.lower(): v for k, v in self.headers.items()}, body
            )
            try:
                resp = dispatch(sim.service, req)
            except Exception:  # noqa: BLE001 - a simulator bug: answer 500, keep the trace
                sim.errors.append(traceback.format_exc())
                resp = Response(
                    500,
                    json.dumps(
                        {"code": "INTERNAL_ERROR", "message": "simulator error", "params": {}}
                    ).encode(),
                )
            if resp.committed_create and sim.after_create is not None:
                sim.after_create(rec)  # a sim-side failpoint: committed, not yet answered
            if resp.committed_create and sim._draw_drop_create():
                rec.fault = "drop_create_response"
                rec.handled_status = resp.status
                resp = None
            if resp is not None and resp.status == 200 and _is_result(self.command, path):
                cut = sim._draw_result_fault(resp.body or b"")
                if cut is not None:
                    rec.fault, body = cut
                    resp = Response(200, body, content_type=resp.content_type)
            cut = _cut_listing(resp) if sim._draw_cut_listing(self.command, path, resp) else None
            if cut is not None:
                rec.fault = "cut_listing"
                rec.handled_status = resp.status
                resp = cut
            after = sim._draw_after_fault(self.command, selected) if resp is not None else None
            if after is not None:
                rec.fault = after
                rec.handled_status = resp.status
                if after == "hang":
                    hang = faults["hang_s"]
                else:
                    status = 200 if after == "html_200" else 504
                    title = b"Welcome" if status == 200 else b"504 Gateway Time-out"
                    resp = Response(status, _HTML_PAGE % (title, title), content_type="text/html")
        # log before answering, so a client that got its answer finds the record
        if resp is not None:
            rec.status = resp.status
            rec.response_size = len(resp.body or b"")
        rec.duration = time.time() - t0
        sim._log(rec)
        if hang:
            time.sleep(hang)  # committed; the answer comes late (a client read timeout)
        if resp is None:
            self._reset()
        else:
            self._send(resp, head_only=self.command == "HEAD")


class Server:
    """A running simulator. Use :func:`mapflow_geo.sim.serve` to get one."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, faults: dict | None = None, **options: Any
    ):
        unknown = set(options) - set(SimOptions.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown simulator options: {sorted(unknown)}")
        self.options = SimOptions(**options)
        self.service = Service(self.options)
        self.host = host
        self._faults = normalize_faults(faults)
        self.service.result_damage = self._faults["damaged_geometry"]
        self._rng = random.Random(self.options.seed)
        self._rng_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self.errors: list[str] = []
        #: Called as ``after_create(record)`` when a create has committed (and been charged),
        #: before its answer is written: a server-side failpoint for crash tests.
        self.after_create = None
        self._httpd = _HTTPServer((host, port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Server:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mapflow-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.close_all_connections()
        self._httpd.server_close()

    stop = close

    def __enter__(self) -> Server:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    # ------------------------------------------------------------------ public
    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/rest"

    @property
    def token(self) -> str:
        return self.service.token

    def client(self, **kwargs: Any):
        """A ``mapflow_geo.client.MapflowClient`` bound to this simulator (``**kwargs`` go
        to the client). The only place the simulator touches the package: see
        :func:`_client_class`."""
        return _client_class()(self.token, base_url=self.url, **kwargs)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._requests.clear()

    @property
    def faults(self) -> dict:
        return self._faults

    def set_faults(self, faults: dict | None = None, **kw: Any) -> None:
        merged = dict(faults or {})
        merged.update(kw)
        self._faults = normalize_faults(merged)
        self.service.result_damage = self._faults["damaged_geometry"]

    def clear_faults(self) -> None:
        self.set_faults(None)

    def damage(self, truth_ids) -> Any:
        """How the ``damaged_geometry`` fault now damages each of these world objects in
        results (``truth_id`` as :meth:`truth` gives them): an array of the kinds of
        ``damage.KINDS``, ``""`` for an undamaged one."""
        return damage.damage_kinds(truth_ids, self.options.seed, self._faults["damaged_geometry"])

    def set_result_per_aoi(self, served: bool) -> None:
        """Serve results per AOI (``?aoiId=``) from now on, or refuse them (400), as a
        deployment of the service may between two runs."""
        with self.service.lock:
            self.service.opts.result_per_aoi = bool(served)

    def set_token(self, token: str) -> None:
        """Rotate the account's API token (the old one gets 401 from now on)."""
        with self.service.lock:
            self.service.state.token = str(token)
            self.service.save()

    def set_credits(self, remaining: int) -> None:
        """Set the account's ``remainingCredits`` (e.g. spent by another client)."""
        with self.service.lock:
            self.service.state.account.remaining_credits = int(remaining)
            self.service.save()

    @property
    def state(self) -> dict:
        """The whole state as the state file's JSON document (a fresh copy on each read:
        account, projects, processings with AOIs and attempts, mosaics, images, shares,
        charges, counters). The live typed state is ``self.service.state`` (``state.py``)."""
        with self.service.lock:
            return copy.deepcopy(self.service.state.to_dict())

    def snapshot(self) -> dict:
        """Same as ``GET /_sim/state``."""
        return api_admin.snapshot(self.service)

    @property
    def charges(self) -> list[dict]:
        with self.service.lock:
            return [c.to_dict() for c in self.service.state.charges]

    def charges_for(self, processing_id: str) -> int:
        return sum(1 for c in self.charges if c["processingId"] == processing_id)

    @property
    def processings(self) -> list[dict]:
        return self.snapshot()["processings"]

    def run_templates(self) -> list[str]:
        """The service's daily run of planned processings (templates): re-check each active
        template; returns the ids of the processings it started (each one charged)."""
        with self.service.lock:
            return api_templates.run_all(self.service)

    def truth(self, bbox, model: str = "buildings", *, date: Any = None, max_km2=None):
        """The ground truth of this simulator's world (its seed, density and ``world``
        options): the WHOLE objects of ``model`` meeting ``bbox`` as they stood on ``date``
        (None: today; ``"YYYY-MM-DD"`` or a ``datetime.date``), as ``(geometries,
        properties)``: an object ndarray of shapely geometries and a dict of equally long
        ndarrays (``truth_id``, ``built``, ``demolished``, ``modified``, ``version``, …:
        ``world.truth``). ``bbox``: ``(minx, miny, maxx, maxy)``, ``"minx,miny,maxx,maxy"``
        or a shapely geometry."""
        return world_service.truth(self.options, bbox, model, date=date, max_km2=max_km2)

    def truth_geojson(
        self, bbox, model: str = "buildings", *, date: Any = None, max_km2=None
    ) -> dict:
        """:meth:`truth` as a GeoJSON FeatureCollection (feature ``id`` = ``truth_id``):
        what ``GET /_sim/world`` answers."""
        return world_service.truth_geojson(self.options, bbox, model, date=date, max_km2=max_km2)

    def imagery_date(self, processing_id: str) -> str:
        """``YYYY-MM-DD``: the date of the world a processing's results show (its scene's
        acquisition date, its upload's date, its provider's vintage or its creation day)."""
        with self.service.lock:
            proc = self.service.state.processings[processing_id]
            return world_service.imagery_date(self.service, proc)

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (lifecycles are computed from it)."""
        with self.service.lock:
            self.service.time_offset += float(seconds)

    def count(
        self, method: str | None = None, path: str | None = None, status: int | None = None
    ) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path is None or r.path == path)
            and (status is None or r.status == status)
        )

    # ------------------------------------------------------------------ internals
    def _log(self, rec: RequestRecord) -> None:
        with self._log_lock:
            self._requests.append(rec)

    def _applies(self, method: str, path: str) -> bool:
        f = self._faults
        if f["methods"] and method.upper() not in f["methods"]:
            return False
        if f["paths"]:
            rel = path[5:] if path.startswith("/rest/") else path
            if not any(rel.startswith(p) or path.startswith(p) for p in f["paths"]):
                return False
        return True

    def _draw_fault(self, method: str, path: str) -> str | None:
        return self._draw(_STATUS_FAULTS, method, path)

    def _draw_after_fault(self, method: str, path: str) -> str | None:
        return self._draw(_AFTER_FAULTS, method, path)

    def _draw(self, kinds: tuple[str, ...], method: str, path: str) -> str | None:
        """The first of the fault ``kinds`` drawn for this request, in order, if any."""
        f = self._faults
        if not any(f[k] for k in kinds) or not self._applies(method, path):
            return None
        with self._rng_lock:
            for k in kinds:
                if f[k] and self._rng.random() < f[k]:
                    return k
        return None

    def _draw_result_fault(self, body: bytes) -> tuple[str, bytes] | None:
        f = self._faults
        with self._rng_lock:
            if f["truncated_result"] and self._rng.random() < f["truncated_result"]:
                return "truncated_result", damage.truncate(body, self._rng)
            if f["malformed_result"] and self._rng.random() < f["malformed_result"]:
                return "malformed_result", damage.malform(body)
        return None

    def _draw_cut_listing(self, method: str, path: str, resp: Response | None) -> bool:
        p = self._faults["cut_listing"]
        if not p or resp is None or resp.status != 200 or not self._applies(method, path):
            return False
        with self._rng_lock:
            return self._rng.random() < p

    def _draw_drop_create(self) -> bool:
        p = self._faults["drop_create_response"]
        if not p:
            return False
        with self._rng_lock:
            return self._rng.random() < p

    def _admin(self, method: str, path: str, body: bytes, query: dict | None = None) -> Response:
        """An admin request (``/_sim/...``): routes from ``routes.py``, handlers in
        ``api_admin.py``; a GET's payload is its query (last value of each name)."""
        try:
            payload = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError:
            return api_admin.js({"code": "BAD_REQUEST", "message": "body is not JSON"}, 400)
        if method == "GET" and query and not body.strip():
            payload = {k: v[-1] for k, v in query.items()}
        route = match_admin(method, path)
        if route is None:
            msg = f"no admin route {method} {path}"
            return api_admin.js({"code": "NOT_FOUND", "message": msg}, 404)
        return route.handler(self, payload)


def _client_class():
    # documented exception: the convenience client (DESIGN.md)
    from mapflow_geo.client import MapflowClient

    return MapflowClient


def _is_result(method: str, path: str) -> bool:
    """A result download: ``GET /processings/{id}/result`` (with or without ``/rest``)."""
    return method == "GET" and path.rstrip("/").endswith("/result") and "/processings/" in path
