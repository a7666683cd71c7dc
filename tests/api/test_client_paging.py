"""The client's paging against the simulator's record: a sweep's ``terms`` filter is
sent and applied by the service (its own listing rule), so a sweep for one name sees
only the processings the service says match."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mapflow_geo import RetryPolicy, sim, sources

SMALL = {  # ~0.35 km²
    "type": "Polygon",
    "coordinates": [
        [[37.60, 55.75], [37.61, 55.75], [37.61, 55.755], [37.60, 55.755], [37.60, 55.75]]
    ],
}


def test_a_sweep_with_terms_lists_only_the_matching_processings():
    """``processings.pages(project, terms=...)`` sends ``terms`` in the page request: of
    three processings, the two named "north …" come back, the service's own filter
    (name or description containing the terms, case-insensitive) deciding which."""
    with sim.serve(processing_seconds=0, seed=1) as server:
        client = server.client()
        pid = client.projects.default_id()
        for name in ("north block", "North yard", "south block"):
            client.processings.create(
                name=name, wdName="🏠 Buildings", geometry=SMALL, projectId=pid,
                params=sources.data_provider("Mapbox", zoom=18),
            )  # fmt: skip
        pages = list(client.processings.pages(pid, terms="north", page_size=1))
        everything = list(client.processings.pages(pid, page_size=2))
    names = sorted(p.name for page in pages for p in page.items)
    assert names == ["North yard", "north block"]
    assert pages[-1].complete and pages[-1].total == 2
    assert sum(len(page.items) for page in everything) == 3


FAST = RetryPolicy(backoff_base=0.001, backoff_max=0.01, max_retry_after=0.01)
PAGE = "/rest/projects/"


def _three(client, pid):
    for name in ("a one", "a two", "a three"):
        client.processings.create(
            name=name, wdName="🏠 Buildings", geometry=SMALL, projectId=pid,
            params=sources.data_provider("Mapbox", zoom=18),
        )  # fmt: skip


def test_page_reads_are_retried_as_the_read_only_posts_they_are():
    """A page request is a read-only POST (DESIGN.md: retried on 503 like a GET): with
    half the page requests answered 503, a sweep still reads every page. Wrong rule
    caught: page requests sent once, as creates are."""
    with sim.serve(processing_seconds=0, seed=2) as server:
        client = server.client(retry=replace(FAST, max_retries=8))
        pid = client.projects.default_id()
        _three(client, pid)
        server.set_faults({"status_503": 0.5, "methods": ["POST"], "paths": [PAGE]})
        pages = list(client.processings.pages(pid, page_size=1))
        refused = [r for r in server.requests if r.status == 503]
    assert refused, "the scenario refused no page request"
    assert sum(len(p.items) for p in pages) == 3 and pages[-1].complete


def test_a_page_route_that_refuses_is_an_error_not_a_reason_to_fall_back():
    """Only 404/405 (the route is not served) falls back to the unpaged listing; a 400
    on the first page is the service's answer and is raised. Wrong rule caught: any
    error on the first page taken for a missing route."""
    import pytest

    from mapflow_geo.exceptions import BadRequestError

    with sim.serve(processing_seconds=0, seed=3) as server:
        client = server.client(retry=FAST)
        pid = client.projects.default_id()
        _three(client, pid)
        server.set_faults({"status_400": 1.0, "methods": ["POST"], "paths": [PAGE]})
        with pytest.raises(BadRequestError):
            list(client.processings.pages(pid, page_size=1))
        unpaged = [r for r in server.requests if r.method == "GET" and "processings" in r.path]
    assert unpaged == []


# -- shapes the simulator never answers: a small loopback server of our own (below)
ROWS = [{"id": "p-1", "name": "one", "status": "OK"}, {"id": "p-2", "name": "two", "status": "OK"}]


@pytest.mark.parametrize(
    "answer",
    [
        {"items": ROWS, "total": 2},
        {"processings": ROWS, "total": 2},
        {"projects": ROWS, "total": 2},
        ROWS,  # a route that does not page answers a bare list
    ],
    ids=["items", "processings", "projects", "bare-list"],
)
def test_older_page_shapes_are_read(answer):
    """Older deployments (and the older API pages) answer pages as ``items``,
    ``processings`` or ``projects``, or a bare list: each is read as one sweep of both
    processings. The simulator answers only the documented ``results``."""
    pages, _ = _pages_from(lambda method, path, body: (200, answer), page_size=10)
    assert [p.id for page in pages for p in page.items] == ["p-1", "p-2"]
    assert pages[-1].last and pages[-1].raw == answer  # the answer as it came


def test_a_null_page_answer_ends_the_sweep_empty():
    """A page answered with JSON ``null`` (a proxy's or an older deployment's nothing)
    is one empty, last page, not a crash."""
    pages, _ = _pages_from(lambda method, path, body: (200, None), page_size=10)
    assert len(pages) == 1 and pages[0].items == [] and pages[0].last


@pytest.mark.parametrize(
    "answer,total,count",
    [
        ({"results": [*ROWS, 7, "x", None], "total": "2", "count": "2"}, 2, 2),
        ({"results": ROWS, "total": True, "count": "many"}, None, None),
        ({"results": ROWS, "total": None, "count": 2.0}, None, 2),
        ([*ROWS, 7, None], 2, 2),  # a route that does not page: one whole page
    ],
    ids=["numbers-as-text", "unreadable", "absent", "bare-list"],
)
def test_a_pages_figures_are_read_leniently(answer, total, count):
    """``total`` and ``count`` written as text are numbers; a boolean or unreadable one
    is no figure (the walk then stops at a short page); entries that are not objects
    are no processings."""
    pages, _ = _pages_from(lambda method, path, body: (200, answer), page_size=10)
    assert len(pages) == 1 and pages[0].last
    assert [p.id for p in pages[0].items] == ["p-1", "p-2"]
    assert pages[0].total == total and pages[0].count == count
    assert type(pages[0].total) in (int, type(None)) and type(pages[0].count) in (int, type(None))


def _serve(answer):
    """A loopback server answering every request with ``answer(method, path, body)``
    → ``(status, JSON-able)``; the requests it got in ``httpd.seen``."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else None
            httpd.seen.append((self.command, self.path, body))
            status, out = answer(self.command, self.path, body)
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.seen = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _with_client(answer, use):
    """``use(client)`` of a client on a :func:`_serve` server, and what the server got."""
    from mapflow_geo.client import MapflowClient

    httpd = _serve(answer)
    try:
        client = MapflowClient(
            "dXNlckB4Lm9yZzprZXk=", base_url=f"http://127.0.0.1:{httpd.server_port}/rest"
        )
        return use(client), httpd.seen
    finally:
        httpd.shutdown()


def _pages_from(answer, **kw):
    """Every page of one sweep of ``project-1``, and what the server got."""
    return _with_client(answer, lambda c: list(c.processings.pages("project-1", **kw)))


DATED = [
    {"id": "p-old", "name": "old", "status": "OK", "created": "2026-01-01T00:00:00Z"},
    {"id": "p-undated", "name": "undated", "status": "OK"},
    {"id": "p-new", "name": "new", "status": "OK", "created": "2026-02-01T00:00:00Z"},
]


@pytest.mark.parametrize("key", ["results", "items", "processings", "projects", None])
def test_an_unpaged_listing_is_one_whole_page_in_any_wrapper(key):
    """Where the paged route is not served (404), the documented unpaged listing is read
    as one complete page from offset 0, whatever object wraps it (or none), its counts
    those of its processings, the answer kept as ``raw``."""
    listing = DATED if key is None else {key: DATED}

    def answer(method, path, body):
        return (404, {"message": "no such route"}) if method == "POST" else (200, listing)

    pages, seen = _pages_from(answer)
    assert [m for m, _, _ in seen] == ["POST", "GET"]
    assert seen[1][1] == "/rest/projects/project-1/processings/v2"
    [page] = pages
    assert sorted(p.id for p in page.items) == ["p-new", "p-old", "p-undated"]
    assert (page.offset, page.total, page.count, page.last, page.complete) == (0, 3, 3, True, True)
    assert page.raw == listing
    # the projects' listing falls back the same way
    projects, _ = _with_client(answer, lambda c: c.projects.list())
    assert sorted(p.id for p in projects) == ["p-new", "p-old", "p-undated"] and projects.complete


@pytest.mark.parametrize("order", ["DESC", "ASC"])
def test_an_unpaged_listing_is_sorted_by_creation_with_the_undated_oldest(order):
    """The unpaged listing is sorted here as the paged route sorts (by ``created``);
    a processing without a date counts as older than any."""

    def answer(method, path, body):
        return (404, {}) if method == "POST" else (200, DATED)

    [page], _ = _pages_from(answer, order=order)
    oldest_first = ["p-undated", "p-old", "p-new"]
    assert [p.id for p in page.items] == (oldest_first if order == "ASC" else oldest_first[::-1])


def _paged(rows, total=lambda n: None):
    """A paged route over ``rows`` that honours ``limit`` and ``offset``; ``total(n)``
    is the count it states on its n-th page (None: it states none)."""
    calls = []

    def answer(method, path, body):
        calls.append(body)
        page = rows[body["offset"] : body["offset"] + body["limit"]]
        out = {"results": page}
        if total(len(calls)) is not None:
            out["total"] = total(len(calls))
        return 200, out

    return answer


def test_a_paged_route_without_totals_is_walked_until_a_short_page():
    """Without a ``total``, a full page means more may follow: the walk asks again from
    where it stopped until a page comes back short, and keeps each page's answer."""
    rows = [{"id": f"p-{i}", "name": str(i), "status": "OK"} for i in range(5)]
    pages, seen = _pages_from(_paged(rows), page_size=2)
    assert [b["offset"] for _, _, b in seen] == [0, 2, 4]
    assert [p.id for page in pages for p in page.items] == [r["id"] for r in rows]
    assert [page.last for page in pages] == [False, False, True]
    assert [page.raw for page in pages] == [{"results": rows[o : o + 2]} for o in (0, 2, 4)]
    assert pages[-1].complete


def test_a_count_first_unreadable_then_zero_did_not_shrink():
    """A first page without a readable count, then an empty page counting 0: nothing
    says the listing shrank, so the sweep is complete."""
    rows = [{"id": "p-0", "name": "0", "status": "OK"}, {"id": "p-1", "name": "1", "status": "OK"}]
    pages, _ = _pages_from(_paged(rows, total=lambda n: "many" if n == 1 else 0), page_size=2)
    assert [len(p.items) for p in pages] == [2, 0]
    assert not pages[-1].shrank and pages[-1].complete


def test_a_listed_processing_without_an_id_is_kept_at_the_end():
    """``list`` gives each id once and keeps what the service listed without an id,
    after the others."""
    rows = [
        {"name": "no id", "status": "OK"},
        {"id": "p-1", "name": "one", "status": "OK"},
        {"id": "p-1", "name": "one again", "status": "OK"},
    ]
    listing, _ = _with_client(
        lambda method, path, body: (200, {"results": rows, "total": 3}),
        lambda c: c.processings.list("project-1"),
    )
    assert [(p.id, p.name) for p in listing] == [("p-1", "one"), (None, "no id")]


def test_a_sweep_of_no_pages_is_empty_and_complete():
    """``listing_of`` over a sweep that gave no page: nothing, and a last page that says
    so (no total, complete)."""
    from mapflow_geo.api._paging import listing_of

    found, page = listing_of(iter([]))
    assert found == [] and page.total is None and page.items == [] and page.complete


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_a_sweep_asks_for_each_page_once_and_stops_at_the_total(size):
    """Three processings in pages of ``size``: ⌈3 / size⌉ page requests (the simulator's
    record), each page at its offset with the limit asked for, the last one reaching
    the service's total — no request for an empty page after it."""
    with sim.serve(processing_seconds=0, seed=4) as server:
        client = server.client()
        pid = client.projects.default_id()
        _three(client, pid)
        pages = list(client.processings.pages(pid, page_size=size))
        asked = [r for r in server.requests if r.method == "POST" and r.path.endswith("/page")]
    want = -(-3 // size)
    assert len(asked) == len(pages) == want
    assert [p.offset for p in pages] == list(range(0, 3, size))
    assert all(p.limit == size and p.total == 3 for p in pages)
    assert [p.last for p in pages] == [False] * (want - 1) + [True] and pages[-1].complete
    assert sum(len(p) for p in pages) == 3
