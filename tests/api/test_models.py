"""Typed records: tolerant of unknown/missing fields, both published shapes, redaction."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapflow_geo import models as M
from mapflow_geo.models import Status

# the older page's processing example, verbatim apart from trimming
V1_PROCESSING = json.loads("""{
 "id": "65285409-ac88-4fc0-a937-193cf42c2343", "name": "Test processing", "description": null,
 "projectId": "a45aa059-fc95-4da0-80e9-2f258fa42c3f",
 "vectorLayer": {"id": "726b", "name": "Test processing", "tileJsonUrl": "https://x/l.json",
                 "tileUrl": "https://x/{z}/{x}/{y}.vector.pbf"},
 "rasterLayer": {"id": "9cb1", "tileJsonUrl": "https://x/tiles.json", "tileUrl": "https://x/{z}/{x}/{y}.png"},
 "workflowDef": {"id": "c6a7", "name": "Buildings (⭐️ Aerial imagery)", "pricePerSqKm": 33.0, "blocks": []},
 "aoiCount": 1, "area": 12010038, "cost": 1638, "status": "OK", "reviewStatus": null, "rating": null,
 "percentCompleted": 100,
 "params": {"url": "https://x/{z}/{x}/{y}.png", "source_type": "xyz", "crs": "EPSG:3857"},
 "blocks": [], "meta": {"source": "tif", "source-app": "qgis", "version": "1.7.0"}, "messages": [],
 "created": "2023-03-29T06:48:35.103854Z", "updated": "2023-07-09T13:32:25.540726Z"}""")


def test_processing_v1_example():
    p = M.Processing.from_json(V1_PROCESSING)
    assert p.status is Status.OK and p.is_terminal
    assert (p.area, p.cost, p.aoi_count, p.percent_completed) == (12010038, 1638, 1, 100.0)
    assert p.vector_layer.tile_url.endswith(".pbf") and p.raster_layer.tile_json_url
    assert p.workflow_def.price_per_sq_km == 33.0 and p.model_name.startswith("Buildings")
    assert p.meta["source-app"] == "qgis" and p.review_status is None
    assert p.created.year == 2023 and p.created.tzinfo is not None
    assert p.raw is not None and p.to_json()["id"] == p.id


def test_processing_v2_shapes_and_unknowns():
    p = M.Processing.from_json(
        {
            "id": "x",
            "status": "SOMETHING_NEW",
            "aoiArea": "1200",
            "reviewStatus": {"reviewStatus": "IN_REVIEW", "feedback": "…"},
            "newField": {"a": 1},
            "messages": [
                {"code": "c", "parameters": {"key": "max_res", "value": "1.2"}},
                {"code": "d", "parameters": [{"key": "a", "value": "1"}]},
            ],
            "params": {
                "sourceParams": {
                    "userDefined": {"url": "u", "rasterLogin": "me", "rasterPassword": "s3cret-pw"}
                }
            },
        }
    )
    assert p.status is Status.UNKNOWN and p.status_raw == "SOMETHING_NEW" and not p.is_terminal
    assert p.aoi_area == 1200
    assert p.review_status is M.ReviewStatus.IN_REVIEW
    assert p.messages[0].parameters == {"max_res": "1.2"}
    assert p.messages[1].parameters == {"a": "1"}
    assert "s3cret-pw" not in repr(p) and "s3cret-pw" not in str(p)
    assert "***" in repr(p)
    assert p.params["sourceParams"]["userDefined"]["rasterPassword"] == "s3cret-pw"  # data kept


def test_status():
    terminal = {s for s in Status if s.is_terminal}
    assert terminal == {Status.OK, Status.FAILED, Status.CANCELLED, Status.REFUNDED}
    assert not Status.UNKNOWN.is_terminal
    # the API's enum holds what the service sends, nothing a run gives itself
    assert {s.value for s in Status} == {
        "UNPROCESSED", "IN_PROGRESS", "AWAITING", "OK", "FAILED", "CANCELLED", "REFUNDED",
        "UNKNOWN",
    }  # fmt: skip
    assert Status.parse("NOT_CREATED") is Status.UNKNOWN and Status.OK == "OK"
    assert not Status.AWAITING.is_terminal and not Status.IN_PROGRESS.is_terminal
    assert Status.parse("canceled") is Status.CANCELLED
    assert Status.parse(None) is Status.UNKNOWN and Status("weird") is Status.UNKNOWN
    assert M.ReviewStatus.parse("NOT_ACCEPTED") is M.ReviewStatus.NOT_ACCEPTED
    assert M.ReviewStatus.parse("nah") is M.ReviewStatus.UNKNOWN
    # the other enums read their text as leniently: any case, spaces around, null kept
    assert M.ReviewStatus.parse({"reviewStatus": " accepted"}) is M.ReviewStatus.ACCEPTED
    assert M.ReviewStatus.parse(None) is None and M.BillingType.parse(None) is None
    assert M.BillingType.parse("area ") is M.BillingType.AREA
    assert M.BillingType.parse("barter") is M.BillingType.UNKNOWN
    assert M.TemplateStatus.parse("Ready") is M.TemplateStatus.READY
    assert M.TemplateStatus.parse(None) is M.TemplateStatus.UNKNOWN


def test_user_status_old_and_new_pages():
    old = M.UserStatus.from_json(
        {
            "email": "admin@geoalert.io",
            "processedArea": 45221388394,
            "remainingArea": 54778611606,
            "areaLimit": 100000000000,
            "memoryLimit": 1000000000,
            "models": [
                {
                    "id": "30dd",
                    "name": "🏠 Buildings",
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
                    ],
                },
                {"id": "5d47", "name": "🚗 Roads", "pricePerSqKm": 5.0},
            ],
            "teams": [
                {
                    "teamId": "a6c5",
                    "name": "T",
                    "role": "OWNER",
                    "activeUntil": None,
                    "creditsLimit": None,
                }
            ],
        }
    )
    assert old.max_aois_per_processing == 10  # default when missing
    assert old.area_limit == 100000000000 and old.billing_type is None
    assert old.models[0].block("polygonization").name == "Simplification"
    assert old.models[1].blocks == [] and old.teams[0].id == "a6c5"
    new = M.UserStatus.from_json(
        {
            "user": {"id": "u", "email": "user@example.com", "credits": 5000},
            "billingType": "CREDITS",
            "remainingCredits": 5000,
            "maxAoisPerProcessing": 4,
            "dataProviders": [
                {
                    "id": "p",
                    "name": "Mapbox",
                    "displayName": "Mapbox Satellite",
                    "price": [
                        {"zoom": 17, "priceSqKm": 1},
                        {"zoom": 18, "priceSqKm": 3},
                        {"zoom": 19, "priceSqKm": 9},
                    ],
                    "minAreaSqKm": 0.5,
                }
            ],
        }
    )
    assert new.email == "user@example.com" and new.billing_type is M.BillingType.CREDITS
    assert new.max_aois_per_processing == 4 and new.remaining_credits == 5000
    mb = new.data_provider("mapbox satellite")
    assert mb.prices == {17: 1.0, 18: 3.0, 19: 9.0} and mb.min_area_sq_km == 0.5
    assert mb.price_at(19) == 9.0 and mb.price_at(None) == 9.0 and mb.price_at(12) == 9.0


def test_project_user_limits():
    p = M.Project.from_json(
        {
            "id": "p",
            "isDefault": True,
            "progress": {"status": "OK", "percentCompleted": 100},
            "user": {"aoiAreaLimit": 50000000, "areaLimit": 50000000},
            "workflowDefs": [{"id": "w", "name": "🚗 Roads"}],
        }
    )
    assert p.user.aoi_area_limit_km2 == 50.0 and p.status is Status.OK and p.is_default
    assert p.workflow_defs[0].name == "🚗 Roads"
    assert M.Project.from_json({"id": "q"}).user is None


def test_memory_both_shapes():
    a = M.Memory.from_json(
        {
            "used_bytes": 5368709120,
            "limit_bytes": 10737418240,
            "used_gb": 5.0,
            "limit_gb": 10.0,
            "usage_percent": 50.0,
        }
    )
    b = M.Memory.from_json(
        {"memoryLimit": 10737418240, "memoryUsed": 5368709120, "memoryFree": 5368709120}
    )
    for m in (a, b):
        assert (m.used_bytes, m.limit_bytes, m.free_bytes) == (5368709120, 10737418240, 5368709120)
        assert m.usage_percent == 50.0
    c = M.Memory.from_json({"used_gb": 1.0, "limit_gb": 4.0})
    assert c.free_bytes == 3 * 1024**3


def test_catalog_shapes():
    scene = {
        "id": "JL1",
        "footprint": {"type": "Polygon", "coordinates": []},
        "cloudCover": 9.0,
        "providerName": "CG",
        "acquisitionDate": "2022-06-07T13:27:33Z",
        "productType": "Scene",
    }
    old = M.CatalogSearchResult.from_json({"images": [scene]})
    new = M.CatalogSearchResult.from_json([scene, "junk"])
    for r in (old, new):
        assert len(r) == 1 and r[0].provider_name == "CG" and list(r)[0].id == "JL1"
    assert new[0].cloud_cover_fraction == pytest.approx(0.09)
    # the scale is the endpoint's, never guessed from the value
    frac = M.CatalogScene.from_json({"cloudCover": 0.2}, cloud_cover_scale="fraction")
    assert frac.cloud_cover_fraction == 0.2
    assert M.CatalogScene.from_json({"cloudCover": 0.2}).cloud_cover_fraction == 0.002


def test_mosaic_image_aoi_stats():
    m = M.Mosaic.from_json(
        {
            "id": "m",
            "name": "n",
            "tags": ["a"],
            "created_at": "2024-03-15T10:30:00Z",
            "image_count": 15,
        }
    )
    assert m.image_count == 15 and m.created.year == 2024
    i = M.Image.from_json(
        {
            "id": "i",
            "mosaic_id": "m",
            "filename": "f.tif",
            "file_size": "12",
            "meta_data": {"crs": "EPSG:32631"},
            "cog_link": "s3://b/c.tif",
        }
    )
    assert i.file_size == 12 and i.meta_data["crs"] == "EPSG:32631"
    a = M.Aoi.from_json(
        {
            "id": "a",
            "status": "IN_PROGRESS",
            "area": 265197,
            "geometry": {"type": "Polygon", "coordinates": []},
            "messages": [],
        }
    )
    assert a.status is Status.IN_PROGRESS and a.area == 265197
    s = M.ProcessingStats.from_json(
        {
            "results": [{"area": "536680", "status": "OK"}],
            "total": 2,
            "count": 2,
            "totalCost": 0,
            "totalArea": 986782,
        }
    )
    assert s.total_area == 986782 and len(s.to_dataframe()) == 1
    assert M.parse_datetime("2025-02-24T13:34:34.64Z").microsecond == 640000
    assert M.parse_datetime("garbage") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
KEYS = [
    "id",
    "name",
    "status",
    "area",
    "cost",
    "messages",
    "params",
    "blocks",
    "meta",
    "user",
    "price",
    "models",
    "dataProviders",
    "vectorLayer",
    "workflowDef",
    "reviewStatus",
    "progress",
    "images",
    "footprint",
    "memoryLimit",
    "used_bytes",
    "created",
    "percentCompleted",
    "teams",
]


@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), json_values, max_size=8))
def test_every_record_tolerates_arbitrary_json(d):
    for cls in (
        M.Processing,
        M.UserStatus,
        M.Project,
        M.Model,
        M.Block,
        M.DataProvider,
        M.Aoi,
        M.Mosaic,
        M.Image,
        M.Memory,
        M.CatalogScene,
        M.CatalogSearchResult,
        M.ProcessingStats,
        M.Message,
        M.ProjectUser,
        M.Team,
    ):
        rec = cls.from_json(d)
        repr(rec)


def test_enums_print_as_wire_values():
    assert str(Status.OK) == "OK" and f"{M.BillingType.CREDITS}" == "CREDITS"
    assert Status.OK == "OK" and str(M.ReviewStatus.IN_REVIEW) == "IN_REVIEW"


# ----------------------------------------------------------------------- unknown and missing
def _sim_processing(server):
    """A processing as the simulator answers ``GET /processings/{id}/v2``, read over HTTP."""
    import requests

    with server.client() as client:
        created = client.processings.create(
            **client.processings.body(
                "🏠 Buildings",
                {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [37.615, 55.755],
                            [37.625, 55.755],
                            [37.625, 55.76],
                            [37.615, 55.76],
                            [37.615, 55.755],
                        ]
                    ],
                },
                name="records",
                meta={"purpose": "records"},
            )
        )
    answer = requests.get(
        f"{server.url}/processings/{created.id}/v2",
        headers={"Authorization": f"Basic {server.token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def test_every_key_the_simulator_sends_is_read(mapflow_sim):
    wire = _sim_processing(mapflow_sim)
    p = M.Processing.from_json(wire)
    assert p.extra == {} and p.to_json() == wire
    assert (p.id, p.project_id, p.name, p.area, p.aoi_area, p.cost) == (
        wire["id"],
        wire["projectId"],
        wire["name"],
        wire["area"],
        wire["aoiArea"],
        wire["cost"],
    )
    assert p.status == wire["status"] and p.percent_completed == wire["percentCompleted"]
    assert p.vector_layer.tile_url == wire["vectorLayer"]["tileUrl"]
    assert p.vector_layer.extra == {} and p.workflow_def.extra == {}
    assert [b.name for b in p.workflow_def.blocks] == [
        b["name"] for b in wire["workflowDef"]["blocks"]
    ]
    assert p.created == M.parse_datetime(wire["created"]) and p.created.tzinfo is not None


def test_unknown_fields_are_kept_at_every_level(mapflow_sim):
    wire = _sim_processing(mapflow_sim)
    wire = {
        **wire,
        "ownerTeam": {"id": "t1"},
        "labels": ["a", "b"],
        "workflowDef": {
            **wire["workflowDef"],
            "modelVersion": "7.2",
            "blocks": [{**b, "unitPrice": 1} for b in wire["workflowDef"]["blocks"]],
        },
        "vectorLayer": {**wire["vectorLayer"], "minZoom": 9},
    }
    p = M.Processing.from_json(wire)
    assert p.extra == {"ownerTeam": {"id": "t1"}, "labels": ["a", "b"]}
    assert p.workflow_def.extra == {"modelVersion": "7.2"}
    assert all(b.extra == {"unitPrice": 1} for b in p.workflow_def.blocks)
    assert p.vector_layer.extra == {"minZoom": 9}
    assert p.to_json() == wire and p.raw is wire
    assert p.workflow_def.to_json() == wire["workflowDef"]


@pytest.mark.parametrize(
    "key, attribute, empty",
    [
        ("name", "name", None),
        ("projectId", "project_id", None),
        ("vectorLayer", "vector_layer", None),
        ("workflowDef", "workflow_def", None),
        ("aoiArea", "aoi_area", None),
        ("cost", "cost", None),
        ("status", "status", Status.UNKNOWN),
        ("percentCompleted", "percent_completed", None),
        ("params", "params", {}),
        ("blocks", "blocks", []),
        ("meta", "meta", {}),
        ("created", "created", None),
    ],
)
def test_a_missing_optional_field_reads_as_empty(mapflow_sim, key, attribute, empty):
    wire = _sim_processing(mapflow_sim)
    full = M.Processing.from_json(wire)
    without = M.Processing.from_json({k: v for k, v in wire.items() if k != key})
    assert getattr(without, attribute) == empty and getattr(full, attribute) != empty
    others = [
        f.name for f in dataclasses.fields(full) if f.name not in (attribute, "status_raw", "raw")
    ]
    assert all(getattr(without, n) == getattr(full, n) for n in others)


def test_every_record_reads_an_empty_object_as_empty():
    for cls in (
        M.Processing,
        M.UserStatus,
        M.Project,
        M.Model,
        M.Block,
        M.DataProvider,
        M.Aoi,
        M.Mosaic,
        M.Image,
        M.Memory,
        M.CatalogScene,
        M.ProjectUser,
        M.Team,
        M.Template,
        M.TemplateAoi,
        M.ImageDownload,
    ):
        rec = cls.from_json({})
        for f in dataclasses.fields(rec):
            v = getattr(rec, f.name)
            assert v in (None, "", [], {}, False, True, 0.0, 10, "percent") or v in (
                Status.UNKNOWN,
                M.TemplateStatus.UNKNOWN,
            ), (cls.__name__, f.name, v)
        assert rec.extra == {} and rec.to_json() == {}
