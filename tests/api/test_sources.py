"""sourceParams / blocks builders and redaction."""

from __future__ import annotations

import json

import pytest

from mapflow_geo import sources
from mapflow_geo.models import Model


def test_data_provider_and_my_imagery():
    assert sources.data_provider("Mapbox", zoom=18) == {
        "sourceParams": {"dataProvider": {"providerName": "Mapbox", "zoom": 18}}
    }
    assert sources.my_imagery(mosaic_id="m") == {"sourceParams": {"myImagery": {"mosaicId": "m"}}}
    assert sources.my_imagery(image_ids="i") == {"sourceParams": {"myImagery": {"imageIds": ["i"]}}}
    both = sources.my_imagery(mosaic_id="m", image_ids=["a", "b"])
    assert both["sourceParams"]["myImagery"] == {"imageIds": ["a", "b"], "mosaicId": "m"}
    assert both.kind == "myImagery"
    for bad in (
        lambda: sources.my_imagery(),
        lambda: sources.my_imagery(image_ids=[]),
        lambda: sources.data_provider(""),
        lambda: sources.data_provider("M", zoom=23),
        lambda: sources.data_provider("M", zoom=17.5),
        lambda: sources.data_provider("M", zoom=True),
    ):
        with pytest.raises(ValueError):
            bad()


def test_imagery_search_and_user_defined():
    s = sources.imagery_search("CG", ["id1"], zoom="18")
    assert s == {
        "sourceParams": {"imagerySearch": {"dataProvider": "CG", "imageIds": ["id1"], "zoom": 18}}
    }
    u = sources.user_defined(
        "https://t/{z}/{x}/{y}.png",
        "tms",
        zoom=19,
        crs="EPSG:3857",
        raster_login="me",
        raster_password="pw-123456",
    )
    body = u["sourceParams"]["userDefined"]
    assert body["sourceType"] == "TMS" and body["rasterPassword"] == "pw-123456"
    assert "pw-123456" not in repr(u) and "pw-123456" not in str(u) and "pw-123456" not in f"{u}"
    assert "pw-123456" in json.dumps(u)  # still sent
    assert (
        sources.user_defined("s3://b/x.tif", "LOCAL")["sourceParams"]["userDefined"]["sourceType"]
        == "LOCAL"
    )
    assert sources.user_defined("https://q/{q}.png", "quadkey")
    assert sources.user_defined("S2A_MSIL2A_2023", "SENTINEL_L2A")
    for bad in (
        lambda: sources.user_defined("https://t/a.png"),
        lambda: sources.user_defined("https://t/{z}/{x}/{y}", "WMS"),
        lambda: sources.user_defined("https://q/x.png", "QUADKEY"),
        lambda: sources.user_defined("https://t/{z}/{x}/{y}", raster_password="x"),
    ):
        with pytest.raises(ValueError):
            bad()


MODEL = Model.from_json(
    {
        "name": "🏠 Buildings",
        "blocks": [
            {
                "name": "Classification",
                "displayName": "Classification",
                "optional": True,
                "price": 3,
            },
            {
                "name": "Simplification",
                "displayName": "Polygonization",
                "optional": True,
                "price": 5,
            },
            {"name": "OSM", "optional": True, "price": 0},
            {"name": "Segmentation", "optional": False, "price": 8},
        ],
    }
)


def test_blocks():
    assert sources.blocks(Classification=True, OSM=False) == [
        {"name": "Classification", "enabled": True},
        {"name": "OSM", "enabled": False},
    ]
    assert sources.blocks(["Simplification"]) == [{"name": "Simplification", "enabled": True}]
    assert sources.blocks({"Heights": False}) == [{"name": "Heights", "enabled": False}]
    full = sources.blocks(["polygonization"], model=MODEL)
    assert {b["name"]: b["enabled"] for b in full} == {
        "Simplification": True,
        "Classification": False,
        "OSM": False,
    }
    assert sources.blocks(["Simplification"], model=MODEL.raw["blocks"])[0] == {
        "name": "Simplification",
        "enabled": True,
    }
    with pytest.raises(ValueError, match="available"):
        sources.blocks(["Heights"], model=MODEL)


def test_redact():
    data = {
        "a": [{"rasterPassword": "x", "raster_password": "y", "token": "t"}],
        "rasterLogin": "me",
        "password": None,
    }
    out = sources.redact(data)
    assert out == {
        "a": [{"rasterPassword": "***", "raster_password": "***", "token": "***"}],
        "rasterLogin": "me",
        "password": None,
    }
    assert data["a"][0]["rasterPassword"] == "x"  # input untouched
