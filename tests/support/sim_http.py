"""Raw HTTP to a simulator with ``requests`` (no client of ours), for the simulator's
own tests."""

from __future__ import annotations

import requests

SMALL = {  # ≈ 0.35 km² in Moscow
    "type": "Polygon",
    "coordinates": [
        [[37.615, 55.755], [37.625, 55.755], [37.625, 55.760], [37.615, 55.760], [37.615, 55.755]]
    ],
}


def box(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


class Api:
    """Tiny authenticated HTTP helper bound to one simulator."""

    def __init__(self, sim, scheme="Basic"):
        self.sim = sim
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"{scheme} {sim.token}"

    def __call__(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        return self.s.request(method, self.sim.url + path, **kw)

    def get(self, path, **kw):
        return self("GET", path, **kw)

    def post(self, path, **kw):
        return self("POST", path, **kw)

    def put(self, path, **kw):
        return self("PUT", path, **kw)

    def delete(self, path, **kw):
        return self("DELETE", path, **kw)

    def create(self, geometry=SMALL, wd="🏠 Buildings", **body):
        body = {"name": "t", "wdName": wd, "geometry": geometry, **body}
        r = self.post("/processings/v2", json=body)
        assert r.status_code == 200, r.text
        return r.json()
