"""The simulator against Geoalert's own clients (QGIS plugin 3.6, api-scripts, SDK).

One test per call of ``geoalert_calls.json`` (see ``docs/guide/simulator-contract.md``): a
fresh simulator is seeded (a project, a finished processing, a mosaic with an image, a
template), the call's ``request_example`` is sent with plain ``requests`` and Basic auth as
the Geoalert client sends it, and the answer must have the expected status and every
required response field with the expected type. ``mapflow_geo``'s own client is not used:
these tests check the simulator against Geoalert's clients, not against ourselves.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path

import pytest
import requests
from support.json_types import type_ok
from support.raster import tiff_bytes

from mapflow_geo.sim import serve

CALLS = json.loads((Path(__file__).parent / "geoalert_calls.json").read_text(encoding="utf-8"))
BY_ID = {c["id"]: c for c in CALLS}
KAZAN = {
    "type": "Polygon",
    "coordinates": [
        [[49.10, 55.78], [49.12, 55.78], [49.12, 55.79], [49.10, 55.79], [49.10, 55.78]]
    ],
}
SOUTH = {
    "type": "Polygon",
    "coordinates": [
        [[49.13, 55.78], [49.14, 55.78], [49.14, 55.785], [49.13, 55.785], [49.13, 55.78]]
    ],
}


def seed_tiff() -> bytes:
    """A small georeferenced RGB GeoTIFF over :data:`KAZAN`."""
    return tiff_bytes(crs="EPSG:4326", size=32, bounds=(49.10, 55.78, 49.12, 55.79))


# ----------------------------------------------------------------------------- checking
def _tokens(path: str) -> list[tuple[str, bool]]:
    """``a.b[].c`` → [("a", False), ("b", True), ("c", False)]; ``[]`` leading → ("", True)."""
    if path == "$":
        return []
    out = []
    for part in path.split("."):
        each = part.endswith("[]")
        out.append((part[:-2] if each else part, each))
    return out


def check_fields(body, fields: list[dict]) -> list[str]:
    """Problems of ``body`` against the fixture's ``response_fields``."""
    problems = []
    for f in fields:
        toks = _tokens(f["path"])
        if not toks:
            if not type_ok(f["type"], body):
                problems.append(f"$: {type(body).__name__} is not {f['type']}")
            continue
        parents = [body]  # the containers in which the last key must appear
        for k, (name, each) in enumerate(toks):
            last = k == len(toks) - 1
            nxt = []
            for node in parents:
                if name == "":  # leading [] = the top-level list
                    val, present = node, True
                elif isinstance(node, dict):
                    present, val = name in node, node.get(name)
                else:
                    continue
                if last and not each:
                    if not present:
                        if f["required"]:
                            problems.append(f"{f['path']}: missing")
                    elif not type_ok(f["type"], val):
                        problems.append(f"{f['path']}: {val!r:.80} is not {f['type']}")
                    continue
                if not present or val is None:
                    if last and f["required"]:
                        problems.append(f"{f['path']}: missing")
                    continue  # an optional parent: nothing below it is required
                if each:
                    if not isinstance(val, list):
                        problems.append(f"{f['path']}: {name or '$'} is not a list")
                        continue
                    if last:
                        if not all(type_ok(f["type"], x) for x in val) and f["type"] != "list":
                            problems.append(f"{f['path']}: an element is not {f['type']}")
                        continue
                    nxt += val
                else:
                    nxt.append(val)
            parents = nxt
    return problems


# ----------------------------------------------------------------------------- seeding
class Seeded:
    """A simulator with a project, a finished processing, a mosaic with an image and a
    template, and the placeholder values of the fixture."""

    def __init__(self, sim):
        self.sim = sim
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Basic {sim.token}"
        st = self.call("GET", "/user/status").json()
        self.values = {"user_id": self.call("GET", "/projects/default").json()["user"]["id"]}
        assert st["email"]
        proj = self.call("POST", "/projects", json={"name": "Contract", "description": None})
        pid = proj.json()["id"]
        wd = next(w for w in proj.json()["workflowDefs"] if "Buildings" in w["name"])
        self.values.update(project_id=pid, wd_id=wd["id"])
        proc = self.call(
            "POST",
            "/processings/v2",
            json={
                "name": "Seed",
                "projectId": pid,
                "wdId": wd["id"],
                "geometry": KAZAN,
                "params": {"sourceParams": {"dataProvider": {"providerName": "Mapbox"}}},
                "blocks": [{"name": "Classification", "enabled": True}],
            },
        )
        assert proc.status_code == 200, proc.text
        self.values["processing_id"] = proc.json()["id"]
        up = self.call(
            "POST",
            "/rasters/mosaic/image",
            params={"name": "Seed mosaic", "tags": "seed, rgb"},
            files={"file": ("seed.tif", seed_tiff(), "image/tiff")},
        )
        assert up.status_code == 200, up.text
        mid = up.json()["mosaic_id"]
        imgs = self.call("GET", f"/rasters/mosaic/{mid}/image").json()
        self.values.update(mosaic_id=mid, image_id=imgs[0]["id"])
        cat = self.call("POST", "/catalog/meta", json={"aoi": KAZAN, "limit": 100}).json()
        self.catalog = cat["images"]
        tpl = self.call(
            "POST",
            "/processings/template",
            json={
                "name": "Seed template",
                "projectId": pid,
                "activeUntil": active_until(),
                "searchParams": {
                    "aoiDetails": {
                        "type": "FeatureCollection",
                        "features": [
                            {"type": "Feature", "geometry": KAZAN, "properties": {"name": "A"}},
                            {"type": "Feature", "geometry": SOUTH, "properties": {"name": None}},
                        ],
                    },
                    "acquisitionDateFrom": "2020-01-01T00:00:00.000Z",
                    "productTypes": ["MOSAIC", "IMAGE"],
                },
            },
        )
        assert tpl.status_code == 200, tpl.text
        t = tpl.json()["template"]
        self.values.update(
            template_id=t["id"], aoi_id=t["searchParams"]["aoiDetails"]["features"][0]["id"]
        )
        ti = self.call("POST", f"/processings/template/{t['id']}/images", json={"limit": 100})
        self.template_images = ti.json()["images"]
        assert self.template_images
        run = self.call(
            "POST",
            f"/processings/template/{t['id']}/v2",
            json={
                "name": "Seed run",
                "wdId": wd["id"],
                "geometry": KAZAN,
                "params": {
                    "sourceParams": {
                        "imagerySearch": {
                            "dataProvider": str(self.template_images[0]["providerName"]).lower(),
                            "imageIds": [self.template_images[0]["id"]],
                        }
                    }
                },
                "blocks": [],
                "updateTemplateGeometry": False,
            },
        )
        assert run.status_code == 200, run.text

    def call(self, method, path, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.s.request(method, self.sim.url + path, **kw)

    def scene_for(self, provider: str | None, images: list[dict]) -> str:
        for im in images:
            if provider and str(im.get("providerName") or "").lower() == provider.lower():
                return im["id"]
        return images[0]["id"]

    def fill(self, obj, provider: str | None = None):
        vals = dict(self.values)
        vals["image_id_from_catalog"] = self.scene_for(provider, self.catalog)
        vals["image_id_from_template_results"] = self.scene_for(provider, self.template_images)
        if isinstance(obj, str):
            return re.sub(r"\{(\w+)\}", lambda m: vals.get(m.group(1), m.group(0)), obj)
        if isinstance(obj, list):
            return [self.fill(x, provider) for x in obj]
        if isinstance(obj, dict):
            return {k: self.fill(v, provider) for k, v in obj.items()}
        return obj


def active_until() -> str:
    """As the QGIS plugin formats it: now + 180 days − 1 minute, ``%Y-%m-%dT%H:%M:%S.0Z``."""
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=180, minutes=-1)
    return t.strftime("%Y-%m-%dT%H:%M:%S.0Z")


def _provider_of(example) -> str | None:
    try:
        return example["params"]["sourceParams"]["imagerySearch"]["dataProvider"]
    except (KeyError, TypeError):
        return None


def send(seed: Seeded, call: dict) -> requests.Response:
    """The call as its client sends it (Basic auth; Q adds ``x-plugin-version``)."""
    headers = {}
    if call["client"] == "qgis":
        headers["x-plugin-version"] = "3.6.0"
    path = seed.fill(call["path"])
    params = seed.fill(copy.deepcopy(call["query"])) or None
    ex = call["request_example"]
    kw: dict = {"headers": headers, "params": params}
    if isinstance(ex, str) and ex.startswith("multipart/form-data"):
        fname = re.search(r"filename=([^,)]+)", ex)
        name = fname.group(1) if fname else "image.tif"
        part = (name, seed_tiff(), "image/tiff") if "image/tiff" in ex else (name, seed_tiff())
        kw["files"] = {"file": part}
    elif ex is not None:
        body = seed.fill(copy.deepcopy(ex), _provider_of(ex))
        if call["id"] == "q_template_create":
            body["activeUntil"] = active_until()
        headers["Content-Type"] = "application/json"
        kw["data"] = json.dumps(body).encode()
    elif call["id"] == "q_template_images_seen_all":
        headers["Content-Type"] = "application/json"  # Q's empty body with a JSON type
        kw["data"] = b""
    return seed.call(call["method"], path, **kw)


# ----------------------------------------------------------------------------- the tests
@pytest.fixture
def seeded():
    with serve(processing_seconds=0, review_workflow=True) as sim:
        yield Seeded(sim)


@pytest.mark.parametrize("call_id", [c["id"] for c in CALLS])
def test_call(seeded, call_id):
    call = BY_ID[call_id]
    r = send(seeded, call)
    ctx = f"{call['method']} {call['path']} -> {r.status_code} {r.text[:300]}"
    if call["status"] is None:
        assert 200 <= r.status_code < 300, ctx
    else:
        assert r.status_code == call["status"], ctx
    kind = call["response_kind"]
    if kind == "text":
        assert r.text.strip(), ctx
        if call_id == "q_version":
            assert re.fullmatch(r"\d+\.\d+\.\d+", r.text.strip()), ctx
        return
    if kind == "bytes":
        assert r.content, ctx
        return
    if kind == "any" and not call["response_fields"]:
        return
    body = r.json()
    if kind == "json_list":
        assert isinstance(body, list) and body, ctx  # seeded: lists are not empty
    elif kind == "json":
        assert isinstance(body, dict | list | int), ctx
    problems = check_fields(body, call["response_fields"])
    assert not problems, f"{ctx}\n" + "\n".join(problems)


def test_catalog_answer_has_exactly_four_keys(seeded):
    """QGIS builds its catalog schema with ``**json``: any other top-level key crashes it."""
    for cid in ("q_catalog_search", "q_template_images"):
        body = send(seeded, BY_ID[cid]).json()
        assert set(body) == {"images", "total", "limit", "offset"}, cid


def test_every_call_answered_on_own_host_only(seeded):
    """No answer of a scripted session names a production host (``mapflow.ai``)."""
    # the URLs the answers hand out are served by the simulator itself
    proc = seeded.call("GET", f"/processings/{seeded.values['processing_id']}/v2").json()
    mosaic = seeded.call("GET", f"/rasters/mosaic/{seeded.values['mosaic_id']}").json()
    for layer in (proc["vectorLayer"], proc["rasterLayer"], mosaic["rasterLayer"]):
        assert layer["tileJsonUrl"].startswith(seeded.sim.url)
        tj = seeded.s.get(layer["tileJsonUrl"], timeout=30)
        assert tj.status_code == 200 and len(tj.json()["bounds"]) == 4
        tile = layer["tileUrl"].format(z=14, x=10426, y=5103)
        assert seeded.s.get(tile, timeout=30).status_code == 200
    img = seeded.call("GET", f"/rasters/image/{seeded.values['image_id']}").json()
    assert seeded.s.get(img["preview_url_s"], timeout=30).content
    prev = seeded.catalog[0]["previews"][0]["url"]
    assert prev.startswith(seeded.sim.url) and seeded.s.get(prev, timeout=30).status_code == 200
    bad = [c["id"] for c in CALLS if b"mapflow.ai" in send(seeded, c).content]
    assert not bad, bad


def test_cost_is_a_bare_integer(seeded):
    r = send(seeded, BY_ID["q_cost_v2"])
    assert re.fullmatch(r"\d+", r.text.strip()), r.text
