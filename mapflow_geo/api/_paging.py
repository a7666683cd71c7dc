"""Listings: bare lists or wrappers, one page or a paged route walked to its ``total``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mapflow_geo._http import Transport
from mapflow_geo.exceptions import APIError
from mapflow_geo.models import Page

#: Statuses meaning "this deployment does not serve that route" (a newer path falls back
#: to the documented older one).
NO_ROUTE = (404, 405)


def no_route(exc: APIError) -> bool:
    return exc.status in NO_ROUTE


def items(data: Any, *keys: str) -> list:
    """A bare list, or the list under the first of ``keys`` of a wrapper object."""
    if isinstance(data, Mapping):
        for k in keys:
            if isinstance(data.get(k), list):
                return data[k]
        return []
    return list(data) if isinstance(data, list) else []


def parsed(data: Any, parse: Callable[[Mapping[str, Any]], Any], *keys: str) -> list:
    """The records of a listing answer, parsed (non-objects dropped)."""
    return [parse(r) for r in items(data, *keys) if isinstance(r, Mapping)]


def _int_or_none(v: Any) -> int | None:
    try:
        return None if v is None or isinstance(v, bool) else int(v)
    except (TypeError, ValueError):
        return None


def one_page(data: Any, parse: Callable[[Mapping[str, Any]], Any]) -> Page:
    """An unpaged listing (a bare list or a wrapper) as one complete page."""
    rows = parsed(data, parse, "results", "items", "processings", "projects")
    return Page(rows, 0, None, len(rows), len(rows), True, raw=data)


def created_key(p: Any) -> float:
    c = getattr(p, "created", None)
    return c.timestamp() if c is not None else float("-inf")


def walk(
    http: Transport,
    path: str,
    order: Mapping[str, Any],
    page_size: int,
    fallback: Callable[[], Iterator[Page]],
    parse: Callable[[Mapping[str, Any]], Any],
) -> Iterator[Page]:
    """Walk a paged route (``{limit, offset, ...order}`` → ``{results, total, count}``)
    until the offsets reach ``total`` (or a page comes back empty, or, without a
    ``total``, short); ``fallback()``'s pages when the route answers 404/405. Pages
    after one whose ``total`` fell below an earlier page's are marked ``shrank``."""
    size = max(1, int(page_size))
    offset, most = 0, 0
    while True:
        body = {"limit": size, "offset": offset, **order}
        try:
            data = http.request("POST", path, json_body=body, idempotent=True)
        except APIError as exc:
            if offset or not no_route(exc):
                raise
            yield from fallback()
            return
        if isinstance(data, list):  # a bare list: the route does not page
            yield one_page(data, parse)
            return
        rows = items(data, "results", "items", "processings", "projects")
        records = [parse(r) for r in rows if isinstance(r, Mapping)]
        total = _int_or_none(data.get("total")) if isinstance(data, Mapping) else None
        count = _int_or_none(data.get("count")) if isinstance(data, Mapping) else None
        reached = offset + len(rows)
        last = not rows or (reached >= total if total is not None else len(rows) < size)
        shrank = total is not None and total < most
        most = max(most, total or 0)
        yield Page(records, offset, size, total, count, last, raw=data, shrank=shrank)
        if last:
            return
        offset = reached


def listing_of(pages: Iterator[Page]) -> tuple[list, Page]:
    """Every item of a sweep, each id once (items without an id kept at the end), and
    the last page (its ``total`` and ``complete`` describe the sweep)."""
    seen: dict[str, Any] = {}
    extra: list = []
    page = Page()
    for page in pages:
        for p in page.items:
            if p.id is None:
                extra.append(p)
            else:
                seen.setdefault(p.id, p)
    return [*seen.values(), *extra], page
