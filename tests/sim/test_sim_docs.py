"""Every JSON request example of the documentation pages is accepted verbatim, and every
documented response field appears in the simulator's responses."""

from __future__ import annotations

import json

import pytest
from _sim_docs import DOCS_DIR, all_examples, classify, is_template
from support.sim_http import SMALL

pytestmark = pytest.mark.skipif(not DOCS_DIR.exists(), reason="documentation pages not available")


def _requests():
    out = []
    for fname, _raw, obj in all_examples():
        reqs = classify(obj)
        if reqs:
            out.append((fname, obj, reqs))
    return out


def test_enough_examples_found():
    reqs = _requests()
    assert len(reqs) >= 40
    kinds = {r[1] for _, _, rs in reqs for r in rs}
    for path in (
        "/processings/v2",
        "/processings",
        "/processing/cost/v2",
        "/processing/cost",
        "/catalog/meta",
        "/projects",
        "/projects/share",
        "/rasters/mosaic",
    ):
        assert path in kinds, path


# the pages' placeholder image/mosaic/scene ids are not real: source-id checks off
@pytest.mark.mapflow_sim(aoi_area_limit_km2=25, check_source_ids=False)
def test_every_request_example_accepted(api):
    proj = api.post("/projects", json={"name": "holder"}).json()["id"]
    proc = api.create()["id"]
    mosaic = api.post("/rasters/mosaic", json={"name": "m"}).json()["id"]
    failures = []
    n = 0
    for fname, obj, reqs in _requests():
        for method, path, body in reqs:
            p = path.format(project=proj, processing=proc, mosaic=mosaic)
            r = api(method, p, json=body)
            n += 1
            if is_template(obj):
                # schema dumps (placeholder "string" values) must be refused cleanly
                ok = 200 <= r.status_code < 300 or (
                    400 <= r.status_code < 500 and "code" in r.json()
                )
            else:
                ok = 200 <= r.status_code < 300
            if not ok:
                failures.append(
                    (fname, method, p, r.status_code, r.text[:200], json.dumps(body)[:200])
                )
    assert not failures, "\n".join(map(str, failures))
    assert n >= 60


def _keys_cover(doc, ours, where="$"):
    """Every key of the documented object appears in ours (recursively)."""
    missing = []
    if isinstance(doc, dict) and isinstance(ours, dict):
        for k, v in doc.items():
            if k not in ours:
                missing.append(f"{where}.{k}")
            elif k in ("params", "meta", "parameters", "inferenceParams", "sourceParams"):
                continue
            elif ours[k] is not None:
                missing += _keys_cover(v, ours[k], f"{where}.{k}")
    elif isinstance(doc, list) and isinstance(ours, list) and doc and ours:
        for d in doc:
            if isinstance(d, dict):
                missing += _keys_cover(d, ours[0], f"{where}[]")
    return missing


def _doc_responses():
    return [obj for _, _, obj in all_examples() if classify(obj) is None]


def test_documented_response_fields_present(mapflow_sim, api):
    p = api.create(
        params={"sourceParams": {"dataProvider": {"providerName": "Mapbox", "zoom": 18}}},
        meta={"a": "b"},
    )
    p_id = p["id"]
    proc = api.get(f"/processings/{p_id}/v2").json()
    proc_v1 = api.get(f"/processings/{p_id}").json()
    api.post(
        "/projects/share",
        json={"projectId": proc["projectId"], "email": "x@y.z", "role": "readonly"},
    )
    ours = {
        "status": api.get("/user/status").json(),
        "project": api.get("/projects/default").json(),
        "processing": proc,
        "aois": api.get(f"/processings/{p_id}/aois").json(),
        "memory": api.get("/rasters/memory").json(),
    }
    m = api.post("/rasters/mosaic", json={"name": "m", "tags": ["t"]}).json()
    up = api.post(
        f"/rasters/mosaic/{m['id']}/image",
        files={"file": ("orthophoto.tif", b"II*\x00" + b"0" * 100)},
    ).json()
    ours["mosaic"] = api.get(f"/rasters/mosaic/{m['id']}").json()
    ours["upload"] = up
    ours["image"] = api.get(f"/rasters/image/{up['image_id']}").json()
    ours["images"] = api.get(f"/rasters/mosaic/{m['id']}/image").json()
    ours["link"] = api.post(
        f"/rasters/mosaic/{m['id']}/link-image", json={"url": "s3://b/x.tif"}
    ).json()
    ours["catalog"] = api.post("/catalog/meta", json={"aoi": SMALL}).json()
    ours["stats"] = api.post("/processings/stats?type=JSON", json={}).json()

    def pick(doc):
        if isinstance(doc, list):
            if doc and "footprint" in doc[0] and "productType" in doc[0]:
                return ours["catalog"]
            if doc and "geometry" in doc[0]:
                return ours["aois"]
            if doc and "filename" in doc[0]:
                return ours["images"]
            return None  # processing lists: compared via the processing object
        k = set(doc)
        if "used_bytes" in k:
            return ours["memory"]
        if "images" in k:
            return {"images": ours["catalog"]}
        if "models" in k:
            return ours["status"]
        if "progress" in k or "workflowDefs" in k:
            return ours["project"]
        if "mosaic_id" in k and "message" in k:
            return ours["link"]
        if "mosaic_id" in k:  # page 003's upload answer: the service answers
            return ours["upload"]["image"]  # {message, mosaic_id}; the sim adds the image
        if "filename" in k:
            return ours["image"]
        if "tags" in k:
            return ours["mosaic"]
        if "projectName" in k:
            return ours["stats"]["results"][0]
        if "vectorLayer" in k or "status" in k or "percentCompleted" in k:
            return proc
        if k <= {"id", "name", "description"}:
            return ours["project"]
        return None

    missing = []
    checked = 0
    for doc in _doc_responses():
        target = pick(doc)
        if target is None:
            continue
        checked += 1
        missing += _keys_cover(doc, target)
    assert checked >= 25
    assert not missing, sorted(set(missing))
    # v1 processing representation has the same fields
    assert set(proc) <= set(proc_v1)
    # stats summary fields
    assert {"results", "total", "count", "totalCost", "totalArea"} <= set(ours["stats"])
