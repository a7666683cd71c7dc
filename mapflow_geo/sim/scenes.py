"""Deterministic imagery catalog: scene footprints on a seeded global grid."""

from __future__ import annotations

import datetime as _dt

import numpy as np
import shapely

from .geo import to_geojson
from .world import uniform

CELL_DEG = 0.1
SCENES_PER_CELL = 6
_LAYER = 91
_SENSORS = [
    ("JL1GF03A", "CG", "B,G,R,NIR,PAN"),
    ("JL1GF03D15", "sat_imagery", "unknown"),
    ("WV03", "maxar", "RGB"),
    ("GE01", "maxar", "RGB"),
]
_T0 = _dt.datetime(2020, 1, 1, tzinfo=_dt.timezone.utc).timestamp()
_T1 = _dt.datetime(2025, 12, 31, tzinfo=_dt.timezone.utc).timestamp()


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(s) -> float | None:
    if not s:
        return None
    d = _dt.datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


def _frac(v, percent: bool = False) -> float | None:
    """A 0–1 fraction from a request value: percent (0–100) when ``percent`` (the
    service's scale: 1 is 1 %), else guessed (≤ 1 a fraction, above a percentage)."""
    if v is None:
        return None
    v = float(v)
    if percent:
        return v / 100.0
    return v / 100.0 if v > 1.0 else v


REVISIT_S = 30 * 86400  # one fresh scene per cell and 30 days after the archive's end


def scenes_for(aoi, seed: int, now: float | None = None) -> list[dict]:
    """The scenes of the cells around ``aoi``: a fixed archive (2020–2025, a mosaic and
    ``SCENES_PER_CELL`` scenes per cell) and, when ``now`` is given, fresh acquisitions: one
    scene per cell in every 30-day window from 2026-01-01 until ``now`` (what planned
    processings discover)."""
    x0, y0, x1, y1 = aoi.bounds
    # a scene reaches up to a cell beyond its own on every side: look one cell out both ways
    ii = np.arange(int(np.floor(x0 / CELL_DEG)) - 1, int(np.floor(x1 / CELL_DEG)) + 2)
    jj = np.arange(int(np.floor(y0 / CELL_DEG)) - 1, int(np.floor(y1 / CELL_DEG)) + 2)
    out = []
    for i in ii:
        for j in jj:
            cx, cy = (i + 0.5) * CELL_DEG, (j + 0.5) * CELL_DEG
            # one mosaic product per cell
            mosaic = shapely.box(i * CELL_DEG, j * CELL_DEG, (i + 1) * CELL_DEG, (j + 1) * CELL_DEG)
            out.append(
                {
                    "id": f"JL1KF01A_PMS04_20220717_{i}_{j}_MOSAIC",
                    "productType": "Mosaic",
                    "acquisitionDate": "2022-07-17T00:00:00Z",
                    "sensor": "JL1KF01A",
                    "pixelResolution": 0.5,
                    "cloudCover": 0.0,
                    "offNadirAngle": 3.0,
                    "colorBandOrder": "RGB",
                    "providerName": "CG_mosaic_2022",
                    "previewType": "xyz",
                    "previewUrl": "{base}/tiles/"
                    + f"JL1KF01A_PMS04_20220717_{i}_{j}_MOSAIC"
                    + "/{z}/{x}/{y}.png",
                    "_geom": shapely.MultiPolygon([mosaic]),
                }
            )
            for k in range(SCENES_PER_CELL):
                u = [float(uniform(seed, _LAYER, i, j, 10 * k + m)) for m in range(8)]
                ts = _T0 + u[0] * (_T1 - _T0)
                sensor, provider, bands = _SENSORS[int(u[1] * len(_SENSORS))]
                w, h = 0.08 + 0.06 * u[2], 0.10 + 0.08 * u[3]
                ang = np.radians(-15 + 30 * u[4])
                px, py = cx + (u[5] - 0.5) * CELL_DEG, cy + (u[6] - 0.5) * CELL_DEG
                corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h], [-w, -h]]) / 2
                rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
                ring = corners @ rot.T + [px, py]
                stamp = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y%m%d%H%M%S")
                out.append(
                    {
                        "id": f"{sensor}_PMS_{stamp}_{abs(int(i))}{abs(int(j))}{k}_L1",
                        "productType": "Image",
                        "acquisitionDate": _iso(ts),
                        "sensor": sensor,
                        "pixelResolution": round(0.3 + 1.2 * u[7], 2),
                        "cloudCover": round(u[2] ** 2, 2),
                        "offNadirAngle": round(-30 + 60 * u[3], 2),
                        "colorBandOrder": bands,
                        "providerName": provider,
                        "previewType": "png",
                        "previewUrl": "{base}/catalog/preview/"
                        + f"{sensor}_PMS_{stamp}_{abs(int(i))}{abs(int(j))}{k}_L1.png",
                        "_geom": shapely.Polygon(ring),
                    }
                )
            if now is None:
                continue
            k = 0
            while _T1 + k * REVISIT_S < now:
                u = [float(uniform(seed, _LAYER + 1, i, j, 10 * k + m)) for m in range(4)]
                ts = _T1 + (k + u[0]) * REVISIT_S
                k += 1
                if ts > now:
                    break
                stamp = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y%m%d%H%M%S")
                cell = shapely.box(
                    i * CELL_DEG, j * CELL_DEG, (i + 1) * CELL_DEG, (j + 1) * CELL_DEG
                )
                sid = f"JL1GF03A_PMS_{stamp}_{abs(int(i))}{abs(int(j))}R_L1"
                out.append(
                    {
                        "id": sid,
                        "productType": "Image",
                        "acquisitionDate": _iso(ts),
                        "sensor": "JL1GF03A",
                        "pixelResolution": round(0.5 + 0.3 * u[1], 2),
                        "cloudCover": round(u[2] ** 3, 2),
                        "offNadirAngle": round(-20 + 40 * u[3], 2),
                        "colorBandOrder": "B,G,R,NIR,PAN",
                        "providerName": "CG",
                        "previewType": "png",
                        "previewUrl": "{base}/catalog/preview/" + f"{sid}.png",
                        "_geom": cell.buffer(0.01, join_style="mitre"),
                    }
                )
    return out


_SORT = {
    "ACQUISITION_DATE": "acquisitionDate",
    "CLOUD_COVER": "cloudCover",
    "PIXEL_RESOLUTION": "pixelResolution",
    "OFF_NADIR_ANGLE": "offNadirAngle",
    "PROVIDER_NAME": "providerName",
    "SAT_ID": "sensor",
}


def search(aoi, body: dict, seed: int = 0, percent: bool = False, now=None) -> list[dict]:
    """One page (``offset``, ``limit``) of :func:`search_all`."""
    hits = search_all(aoi, body, seed, percent, now)
    off = int(body.get("offset") or 0)
    lim = int(body.get("limit") or 100)
    return hits[off : off + lim]


def search_all(
    aoi, body: dict, seed: int = 0, percent: bool = False, now: float | None = None
) -> list[dict]:
    """Every scene over ``aoi`` that passes the filters, sorted; ``cloudCover`` a fraction.
    Request percentages are read as percent when ``percent`` (else guessed)."""
    scenes = scenes_for(aoi, seed, now)
    d_from, d_to = _ts(body.get("acquisitionDateFrom")), _ts(body.get("acquisitionDateTo"))
    cloud = _frac(body.get("maxCloudCover"), percent)
    min_res, max_res = body.get("minResolution"), body.get("maxResolution")
    min_on, max_on = body.get("minOffNadirAngle"), body.get("maxOffNadirAngle")
    min_int = _frac(body.get("minAoiIntersectionPercent"), percent)
    providers = {str(p).lower() for p in body.get("dataProviders") or []}
    ptypes = {
        ("IMAGE" if str(t).upper() in ("IMAGE", "SCENE") else str(t).upper())
        for t in body.get("productTypes") or []
    }
    aoi_area = aoi.area
    hits = []
    for s in scenes:
        g = s["_geom"]
        if not g.intersects(aoi):
            continue
        t = _ts(s["acquisitionDate"])
        if d_from is not None and t < d_from:
            continue
        if d_to is not None and t > d_to:
            continue
        if cloud is not None and s["cloudCover"] > cloud + 1e-12:
            continue
        # pixelResolution 0 means "unknown" on the real service; it passes resolution filters
        res = s["pixelResolution"]
        if res and min_res is not None and res < float(min_res):
            continue
        if res and max_res is not None and res > float(max_res):
            continue
        if min_on is not None and abs(s["offNadirAngle"]) < float(min_on):
            continue
        if max_on is not None and abs(s["offNadirAngle"]) > float(max_on):
            continue
        if providers and s["providerName"].lower() not in providers:
            continue
        if ptypes and s["productType"].upper() not in ptypes:
            continue
        inter = g.intersection(aoi).area / aoi_area if aoi_area else 0.0
        if min_int is not None and inter < min_int:
            continue
        rec = {k: v for k, v in s.items() if not k.startswith("_")}
        rec["footprint"] = to_geojson(g)
        rec["aoiIntersectionPercent"] = round(100 * inter, 2)
        hits.append(rec)
    key = _SORT.get(str(body.get("sortBy") or "ACQUISITION_DATE").upper(), "acquisitionDate")
    hits.sort(
        key=lambda r: (r[key], r["id"]),
        reverse=str(body.get("sortOrder") or "DESC").upper() != "ASC",
    )
    return hits
