"""Extract the JSON examples from the documentation pages in /work/shared/api-docs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

DOCS_DIR = Path(os.environ.get("MAPFLOW_API_DOCS", "/work/shared/api-docs"))

SMALL_POLYGON = {
    "type": "Polygon",
    "coordinates": [
        [[37.615, 55.755], [37.625, 55.755], [37.625, 55.760], [37.615, 55.760], [37.615, 55.755]]
    ],
}


def _balanced(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``start`` (string-aware)."""
    depth, i, in_str, esc = 0, start, False, False
    while i < len(text):
        c = text[i]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def strip_comments(s: str) -> str:
    """Drop ``//`` and ``#`` comments outside strings, and trailing commas."""
    out, i, in_str, esc = [], 0, False, False
    while i < len(s):
        c = s[i]
        if in_str:
            out.append(c)
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
            out.append(c)
            i += 1
            continue
        if s.startswith("//", i) or c == "#":
            while i < len(s) and s[i] != "\n":
                i += 1
            continue
        out.append(c)
        i += 1
    s = "".join(out)
    s = re.sub(r",(\s*[}\]])", r"\1", s)
    return s


def _fill_placeholders(s: str) -> str:
    s = re.sub(
        r'"coordinates"\s*:\s*\[\s*\.\.\.\s*\]',
        '"coordinates": ' + json.dumps(SMALL_POLYGON["coordinates"]),
        s,
    )
    s = re.sub(r'"geometry"\s*:\s*\{\s*\.\.\.\s*\}', '"geometry": ' + json.dumps(SMALL_POLYGON), s)
    s = re.sub(r"\[\s*\.\.\.\s*\]", "[]", s)
    return s


_FRAGMENT = re.compile(r'^\s*"(params|sourceParams|models)"\s*:')
_CURL = re.compile(r"(?:-d|--data|--data-raw)\s+'")


def extract(text: str) -> list[tuple[str, object]]:
    """(raw snippet, parsed JSON) of every example that parses after cleaning."""
    out = []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))
    pos_end = 0
    for n, ln in enumerate(lines):
        start = offsets[n]
        if start < pos_end:
            continue
        stripped = ln.lstrip()
        at = None
        wrap = False
        m = _CURL.search(ln)
        if m and ln[m.end() : m.end() + 1] in "{[":
            at = start + m.end()
        elif stripped.startswith(("{", "[")) and not stripped.startswith("[["):
            at = start + len(ln) - len(stripped)
        elif _FRAGMENT.match(ln):
            prev = lines[n - 1].strip() if n else ""
            if (prev == "" or prev.startswith(".. code")) and ("{" in ln or "[" in ln):
                brace = min(i for i in (ln.find("{"), ln.find("[")) if i >= 0)
                at = start + brace
                wrap = True
        if at is None:
            continue
        end = _balanced(text, at)
        if end < 0:
            continue
        raw = text[at:end]
        if wrap:
            key = _FRAGMENT.match(ln).group(1)
            raw = "{" + json.dumps(key) + ": " + raw + "}"
        pos_end = end
        cleaned = _fill_placeholders(strip_comments(raw))
        try:
            obj = json.loads(cleaned)
        except json.JSONDecodeError:
            continue
        out.append((raw, obj))
    return out


def all_examples() -> list[tuple[str, str, object]]:
    res = []
    for f in sorted(DOCS_DIR.glob("*.txt")):
        for raw, obj in extract(f.read_text(encoding="utf-8")):
            res.append((f.name, raw, obj))
    return res


def is_template(obj) -> bool:
    """The OpenAPI-style schema dumps use the placeholder value "string"."""
    return '"string"' in json.dumps(obj)


RESPONSE_KEYS = {"id", "images", "results", "models", "used_bytes", "email", "message", "url_type"}


def classify(obj) -> list[tuple[str, str, dict]] | None:
    """Requests to send for a request example: [(method, path template, body)], or None
    for a response example. Path placeholders: {project}, {processing}, {mosaic}."""
    if isinstance(obj, list) or not isinstance(obj, dict):
        return None
    keys = set(obj)
    if "id" in keys or "images" in keys or "results" in keys or "used_bytes" in keys:
        return None
    if keys & {"status", "created", "percentCompleted", "projectName", "processedArea"}:
        return None
    if keys == {"models"} or "teams" in keys or "user" in keys or "message" in keys:
        return None
    if "aoi" in keys:
        return [("POST", "/catalog/meta", obj)]
    if "wdId" in keys and "areaSqKm" in keys:
        return [("POST", "/processing/cost/v2", obj)]
    if ("wdName" in keys or "wdId" in keys) and "geometry" in keys:
        return [
            ("POST", "/processings/v2", obj),
            ("POST", "/processings", obj),
            ("POST", "/processing/cost/v2", obj),
            ("POST", "/processing/cost", obj),
        ]
    if "wdId" in keys and "areaSqKm" in keys:
        return [("POST", "/processing/cost/v2", obj)]
    if keys == {"projectId", "email", "role"}:
        return [("POST", "/projects/share", obj)]
    if keys <= {"name", "description"} and "name" in keys:
        return [
            ("POST", "/projects", obj),
            ("PUT", "/projects/{project}", obj),
            ("PUT", "/processing/{processing}", obj),
        ]
    if keys <= {"name", "description", "projectId"} and "projectId" in keys:
        return [("PUT", "/processings/{processing}", obj)]
    if keys == {"name", "tags"}:
        return [("POST", "/rasters/mosaic", obj), ("PUT", "/rasters/mosaic/{mosaic}", obj)]
    if keys == {"url"}:
        return [("POST", "/rasters/mosaic/{mosaic}/link-image", obj)]
    if keys & {"dateFrom", "dateTo", "statuses", "page", "perPage", "filter"}:
        return [
            ("POST", "/processings/stats?type=JSON", obj),
            ("POST", "/processings/stats?type=CSV", obj),
        ]
    base = {"name": "doc fragment", "wdName": "🏠 Buildings", "geometry": SMALL_POLYGON}
    if keys == {"blocks"}:
        body = dict(base, blocks=obj["blocks"])
        return [
            ("POST", "/processings/v2", body),
            ("POST", "/processings", body),
            ("POST", "/processing/cost/v2", body),
        ]
    if keys == {"params"}:
        body = dict(base, params=obj["params"])
        return [
            ("POST", "/processings/v2", body),
            ("POST", "/processings", body),
            ("POST", "/processing/cost/v2", body),
        ]
    if keys == {"sourceParams"}:
        body = dict(base, params=obj)
        return [("POST", "/processings/v2", body), ("POST", "/processing/cost/v2", body)]
    raise AssertionError(f"unclassified documentation example with keys {sorted(keys)}")
