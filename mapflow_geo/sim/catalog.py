"""Default models (workflow definitions) and data providers of a simulated account.

Ids are the ones the documentation pages show, so documented requests that name a
``wdId`` resolve. ``aliases`` are further documented ids of the same model (the pages show
different ids for the same default model); they are accepted, never listed. A provider's
``vintage`` is the date of its imagery (None: fresh imagery; no key: the simulator's
``basemap_vintage``; see ``world_service``).
"""

from __future__ import annotations

import copy
import re

_CREATED = "2023-02-01T08:17:03.871690Z"
_UPDATED = "2023-05-11T14:24:31.456180Z"

DEFAULT_MODELS = [
    {
        "id": "30ddfd15-04aa-47f6-9ceb-68ce709fd710",
        "aliases": ["8cb13006-a299-4df6-b47d-91bd63de947f", "084474b5-e001-456f-a486-f62f5ee1ffe1"],
        "name": "🏠 Buildings",
        "description": "Buildings detection and mapping",
        "kind": "buildings",
        "pricePerSqKm": 13.0,
        "blocks": [
            {
                "name": "Classification",
                "displayName": "Classification",
                "optional": True,
                "price": 3.0,
            },
            {
                "name": "Simplification",
                "displayName": "Polygonization",
                "optional": True,
                "price": 5.0,
            },
            {"name": "OSM", "displayName": "Merge with OSM", "optional": True, "price": 0.0},
        ],
    },
    {
        "id": "c2e857fe-1bf6-4e7a-b9f4-d5339c46d357",
        "aliases": [],
        "name": "🌲 Forest",
        "description": "Default model: segmentation of forested areas with assignment of height classes; thresholds are 4 and 10 meters",
        "kind": "forest",
        "pricePerSqKm": 0.0,
        "blocks": [
            {
                "name": "Segmentation",
                "displayName": "Segmentation",
                "optional": False,
                "price": 8.0,
            },
            {
                "name": "Heights",
                "displayName": "Height estimation",
                "optional": True,
                "price": 20.0,
            },
        ],
    },
    {
        "id": "decc5854-3a92-4b25-8e5b-895de9fa4ef3",
        "aliases": [],
        "name": "🌲↕️ Forest with heights",
        "description": "Forest segmentation with height classes",
        "kind": "forest_heights",
        "pricePerSqKm": 28.0,
        "blocks": [],
    },
    {
        "id": "5d47a57c-3274-4014-aa04-daac416782f7",
        "aliases": ["9c2ceb15-2063-49b2-afec-d1752cbab2e1"],
        "name": "🚗 Roads",
        "description": "Detects roads and returns them as linestrings",
        "kind": "roads",
        "pricePerSqKm": 5.0,
        "blocks": [],
    },
    {
        "id": "ad7a5460-c903-402b-9c21-b12aa2fc9f69",
        "aliases": [],
        "name": "🏗️ Construction sites",
        "description": "Detects construction sites",
        "kind": "construction",
        "pricePerSqKm": 10.0,
        "blocks": [],
    },
    {
        "id": "495192d6-5dfc-4167-842e-3d76d8abe244",
        "aliases": [],
        "name": "🚜 Fields (Sentinel-2)",
        "description": "Detects cropland fields using free Sentinel-2 imagery",
        "kind": "fields",
        "pricePerSqKm": 2.0,
        "blocks": [],
    },
]

_BASEMAP_PRICE = [
    {"zoom": 17, "priceSqKm": 1.0},
    {"zoom": 18, "priceSqKm": 3.0},
    {"zoom": 19, "priceSqKm": 9.0},
]

DEFAULT_PROVIDERS = [
    {
        "id": "8f6a6d8c-6f0e-4a44-9b54-5b8f0f1c3a01",
        "name": "Mapbox",
        "displayName": "Mapbox Satellite",
        "aliases": ["mapbox_satellite"],
        "price": _BASEMAP_PRICE,
        "defaultZoom": 18,
        "previewUrl": "https://api.mapbox.com/v4/mapbox.satellite/{z}/{x}/{y}.jpg",
    },
    {
        "id": "0b7a7d4e-2c55-4b9c-8d3e-7d7e6a1c3a02",
        "name": "ArcGIS World Imagery",
        "displayName": "ArcGIS World Imagery",
        "aliases": ["arcgis_world_imagery", "arcgis"],
        "price": _BASEMAP_PRICE,
        "defaultZoom": 18,
        "previewUrl": "https://services.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
    },
    {
        "id": "3c1c2b9a-91b0-4d39-8b55-2f3a6b1c3a03",
        "name": "Sentinel-2",
        "displayName": "Sentinel-2 (free)",
        "aliases": ["sentinel_l2a", "sentinel2"],
        "price": [{"zoom": 14, "priceSqKm": 0.0}],
        "defaultZoom": 14,
        "vintage": None,  # fresh imagery: the world of the processing's day
    },
    {
        "id": "a41f0e2d-5b8e-4f0c-9a3b-1e2d3c4b3a04",
        "name": "maxar",
        "displayName": "Maxar (imagery search)",
        "aliases": [],
        "price": [{"zoom": 18, "priceSqKm": 15.0}],
        "defaultZoom": 18,
        "minAreaSqKm": 5.0,
        "vintage": None,
    },
    {
        "id": "b52e1f3c-6c9f-4a1d-8b4c-2f3e4d5c3a05",
        "name": "CG",
        "displayName": "Chang Guang (scenes)",
        "aliases": ["sat_imagery"],
        "price": [{"zoom": 18, "priceSqKm": 10.0}],
        "defaultZoom": 18,
        "minAreaSqKm": 5.0,
        "vintage": None,
    },
    {
        "id": "c63f2a4d-7daf-4b2e-9c5d-3a4f5e6d3a06",
        "name": "CG_mosaic_2022",
        "displayName": "Chang Guang mosaic 2022",
        "aliases": ["orbview"],
        "price": [{"zoom": 18, "priceSqKm": 4.0}],
        "defaultZoom": 18,
        "vintage": "2022-07-17",  # the mosaic's acquisition date (scenes.py)
    },
]


def default_models() -> list[dict]:
    return copy.deepcopy(DEFAULT_MODELS)


def default_providers() -> list[dict]:
    return copy.deepcopy(DEFAULT_PROVIDERS)


_MOJIBAKE_STRIP = re.compile(r"[^a-z0-9()\- ]+")


def normalize_name(name: str) -> str:
    """Compare names without their emoji (and without mojibake of the emoji).

    ``"🏠 Buildings"``, ``"üè† Buildings"`` and ``"buildings"`` all normalise to
    ``"buildings"``.
    """
    s = str(name).lower()
    s = _MOJIBAKE_STRIP.sub(" ", s)
    return " ".join(s.split())


def mojibake(name: str) -> str:
    """How a UTF-8 name looks when shown as Mac Roman (as on two of the doc pages)."""
    try:
        return name.encode("utf-8").decode("mac_roman")
    except UnicodeError:
        return name


def public_model(m: dict) -> dict:
    out = {k: v for k, v in m.items() if k not in ("aliases", "kind")}
    out["blocks"] = list(out.get("blocks") or [])
    out.setdefault("created", _CREATED)
    out.setdefault("updated", _UPDATED)
    return out


def public_provider(p: dict) -> dict:
    return {k: v for k, v in p.items() if k not in ("aliases",)}


def workflow_def(m: dict) -> dict:
    """A model as projects and processings show it (``workflowDefs[]``, ``workflowDef``):
    ``blocks`` items ``{name, displayName, description, optional: bool, price}``. A model
    with blocks lists its base price as a non-optional block (QGIS prices a model with
    blocks as the sum of its non-optional blocks), unless it has one already."""
    out = public_model(m)
    blocks = [
        {
            "name": b["name"],
            "displayName": b.get("displayName") or b["name"],
            "description": b.get("description") or b.get("displayName") or b["name"],
            "optional": bool(b.get("optional")),
            "price": float(b.get("price") or 0.0),
        }
        for b in m.get("blocks", [])
    ]
    base = float(m.get("pricePerSqKm") or 0.0)
    if blocks and not any(not b["optional"] for b in blocks):
        blocks.insert(
            0,
            {
                "name": "Base",
                "displayName": normalize_name(m["name"]).capitalize() or "Base",
                "description": "The model itself",
                "optional": False,
                "price": base,
            },
        )
    out["blocks"] = blocks
    out["pricePerSqKm"] = base
    return out
