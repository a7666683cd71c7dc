"""Golden reads of a recorded state file (``data/state_v1.json``).

``data/golden_v1.json`` holds what the simulator answered to :func:`golden_reads` over
that state file before it was split by API area (``python tests/sim/_golden.py`` rewrites
it; only do so on purpose). Result bodies are recorded by their envelope only: their
features come from the world model, which has tests of its own and may change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
STATE_V1 = DATA / "state_v1.json"
GOLDEN_V1 = DATA / "golden_v1.json"
CLOCK_V1 = 1_700_000_279.0  # the recorded state's last clock reading
CLOCKS = (CLOCK_V1, CLOCK_V1 + 1000.0)  # some AOIs running, then all terminal


def copy_state(dst: Path) -> str:
    """Copy the recorded state file (and its blobs) to ``dst``; the path of the copy."""
    sf = dst / "state.json"
    shutil.copyfile(STATE_V1, sf)
    shutil.copytree(str(STATE_V1) + ".blobs", str(sf) + ".blobs")
    return str(sf)


def _answer(r, base: str = "") -> object:
    """The recorded answer; the simulator's own URL (random port) reads ``http://sim``."""
    ctype = r.headers.get("Content-Type", "")
    base = base or "\x00no-base"
    if ctype.startswith("application/json"):
        return {"status": r.status_code, "json": json.loads(r.text.replace(base, "http://sim"))}
    if ctype == "application/octet-stream":  # a result: its features are the world model's
        fc = json.loads(r.content)  # (world.py, tested on its own); here only its envelope
        return {"status": r.status_code, "type": ctype, "geojson": fc["type"]}
    return {
        "status": r.status_code,
        "type": ctype,
        "sha256": hashlib.sha256(r.content.replace(base.encode(), b"http://sim")).hexdigest(),
        "size": len(r.content.replace(base.encode(), b"http://sim")),
    }


def golden_reads(state_file: str) -> dict:
    """Serve ``state_file`` at each of :data:`CLOCKS` and record the answers to reads."""
    import requests
    from support.sim_http import SMALL, Api

    from mapflow_geo.sim import serve

    out: dict = {}
    for t in CLOCKS:
        with serve(state_file=state_file, clock=lambda t=t: t) as sim:
            a = Api(sim)

            def ans(r, base=sim.base):
                return _answer(r, base)

            got: dict = {}
            got["user"] = ans(a.get("/user/status"))
            got["projects"] = ans(a.get("/projects"))
            for p in got["projects"]["json"]:
                got[f"project {p['name']}"] = ans(a.get(f"/projects/{p['id']}"))
                got[f"project {p['name']} processings"] = ans(
                    a.get(f"/projects/{p['id']}/processings")
                )
            got["processings"] = ans(a.get("/processings/v2"))
            got["processings v1"] = ans(a.get("/processings"))
            for p in got["processings"]["json"]:
                pid = p["id"]
                got[f"{p['name']} v2"] = ans(a.get(f"/processings/{pid}/v2"))
                got[f"{p['name']} aois"] = ans(a.get(f"/processings/{pid}/aois"))
                got[f"{p['name']} result"] = ans(a.get(f"/processings/{pid}/result"))
                for k, aoi in enumerate(got[f"{p['name']} aois"]["json"]):
                    got[f"{p['name']} result aoi {k}"] = ans(
                        a.get(f"/processings/{pid}/result", params={"aoiId": aoi["id"]})
                    )
            got["stats"] = ans(a.post("/processings/stats", json={"sort": "name:asc"}))
            got["stats csv"] = ans(a.post("/processings/stats?type=CSV", json={"sort": "name:asc"}))
            got["stats failed"] = ans(
                a.post("/processings/stats", json={"statuses": ["FAILED"], "sort": "name:asc"})
            )
            got["memory"] = ans(a.get("/rasters/memory"))
            got["mosaics"] = ans(a.get("/rasters/mosaic"))
            for m in got["mosaics"]["json"]:
                got[f"mosaic {m['name']}"] = ans(a.get(f"/rasters/mosaic/{m['id']}"))
                got[f"mosaic {m['name']} images"] = ans(a.get(f"/rasters/mosaic/{m['id']}/image"))
            cost = {"wdName": "🏠 Buildings", "geometry": SMALL}
            got["cost v2"] = ans(a.post("/processing/cost/v2", json=cost))
            got["cost v1"] = ans(a.post("/processing/cost", json=cost))
            got["sim state"] = ans(requests.get(sim.base + "/_sim/state", timeout=10))
            got["charges"] = sim.charges
        out[str(t)] = got
    return out


if __name__ == "__main__":  # record the golden answers (on purpose only)
    import tempfile

    sys.path.insert(0, str(Path(__file__).parents[1]))  # the shared test helpers
    with tempfile.TemporaryDirectory() as d:
        data = golden_reads(copy_state(Path(d)))
    GOLDEN_V1.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN_V1} ({GOLDEN_V1.stat().st_size} bytes)")
