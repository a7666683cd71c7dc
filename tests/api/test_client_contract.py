"""MapflowClient against the service contract as Geoalert's own clients use it
(docs/guide/simulator-contract.md): paged listings, catalog scales, create bodies, the
Data API error envelope, review, version, image download and planned processings.

Bodies are captured on the client side with a recording session (the simulator's request
log keeps sizes, not bodies); canned answers stand in where a shape must be exact."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import requests
import shapely

from mapflow_geo import exceptions as exc
from mapflow_geo import sim, sources
from mapflow_geo.client import MapflowClient, RetryPolicy
from mapflow_geo.models import (
    CatalogScene,
    CatalogSearchResult,
    Listing,
    Processing,
    ReviewStatus,
    Template,
    TemplateStatus,
    from_fraction,
    to_fraction,
)

FAST_RETRY = RetryPolicy(backoff_base=0.001, backoff_max=0.01, max_retry_after=0.01)
FAST = {"retry": FAST_RETRY, "timeout": (2.0, 10.0)}
SMALL = {
    "type": "Polygon",
    "coordinates": [
        [[37.615, 55.755], [37.625, 55.755], [37.625, 55.760], [37.615, 55.760], [37.615, 55.755]]
    ],
}


class Recorder(requests.Session):
    """A session that records every request's method, path and JSON body, and answers
    ``canned[(method, path suffix)]`` (a list of ``(status, json)``, consumed in order)
    without touching the network."""

    def __init__(self, canned: dict | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, object]] = []
        self.canned = {k: list(v) for k, v in (canned or {}).items()}

    def request(self, method, url, **kw):  # noqa: D401 - requests' signature
        path = requests.utils.urlparse(url).path
        self.calls.append((method, path, kw.get("json")))
        for (m, suffix), answers in self.canned.items():
            if m == method and path.endswith(suffix) and answers:
                status, body = answers.pop(0) if len(answers) > 1 else answers[0]
                resp = requests.Response()
                resp.status_code = status
                resp._content = json.dumps(body).encode()
                resp.headers["Content-Type"] = "application/json"
                resp.url = url
                return resp
        return super().request(method, url, **kw)

    def bodies(self, method: str, suffix: str) -> list:
        return [b for m, p, b in self.calls if m == method and p.endswith(suffix)]


def _client(server, session=None, **kw):
    return server.client(session=session, **FAST, **kw)


def _canned_client(canned):
    rec = Recorder(canned)
    return MapflowClient("dG9rZW4=", base_url="http://127.0.0.1:9/rest", session=rec, **FAST), rec


def _create(client, name="t", **kw):
    body = {
        "name": name,
        "wdName": "🏠 Buildings",
        "geometry": SMALL,
        "params": sources.data_provider("Mapbox", zoom=18),
    }
    body.update(kw)
    return client.processings.create(**body)


# ------------------------------------------------------------------ listings
def _page(results, total):
    return {"results": results, "total": total, "count": len(results)}


def _proc(i, created):
    return {"id": f"p{i}", "name": f"n{i}", "status": "OK", "created": created}


def test_paged_listing_walks_to_total_and_dedupes():
    # p4..p0, pages of 2; p5 is created after the first page and shifts the rest down:
    # p3 comes twice (kept once), p5 is left to the next sweep, nothing older is missed
    pages = [
        (200, _page([_proc(4, "2026-01-04"), _proc(3, "2026-01-03")], 5)),
        (200, _page([_proc(3, "2026-01-03"), _proc(2, "2026-01-02")], 6)),
        (200, _page([_proc(1, "2026-01-01"), _proc(0, "2025-12-31")], 6)),
    ]
    client, rec = _canned_client({("POST", "/processings/v2/page"): pages})
    client.processings.page_size = 2
    listing = client.processings.list("proj")
    assert [p.id for p in listing] == ["p4", "p3", "p2", "p1", "p0"]
    assert isinstance(listing, Listing) and listing.complete and listing.total == 6
    sent = rec.bodies("POST", "/projects/proj/processings/v2/page")
    assert [b["offset"] for b in sent] == [0, 2, 4]
    assert all(
        b["limit"] == 2 and b["sortBy"] == "CREATED" and b["sortOrder"] == "DESC" for b in sent
    )


def test_page_records_say_when_a_sweep_is_complete():
    pages = [(200, _page([_proc(2, "2026-01-02")], 2)), (200, _page([_proc(1, "2026-01-01")], 2))]
    client, _ = _canned_client({("POST", "/processings/v2/page"): pages})
    got = list(client.processings.pages("proj", page_size=1))
    assert [(p.offset, p.limit, p.total, p.last) for p in got] == [
        (0, 1, 2, False),
        (1, 1, 2, True),
    ]
    assert got[-1].complete and not got[0].complete
    # an empty page before total ends the sweep, flagged incomplete
    client, _ = _canned_client(
        {("POST", "/processings/v2/page"): [(200, _page([_proc(1, "x")], 5)), (200, _page([], 5))]}
    )
    assert client.processings.list("proj").complete is False


def test_paged_route_missing_falls_back_to_the_documented_get():
    client, rec = _canned_client(
        {
            ("POST", "/processings/v2/page"): [(404, {"code": "NOT_FOUND", "message": "no"})],
            ("GET", "/projects/proj/processings/v2"): [
                (200, [_proc(1, "2026-01-01T00:00:00Z"), _proc(2, "2026-02-01T00:00:00Z")])
            ],
            ("POST", "/projects/page"): [(405, {"message": "method not allowed"})],
            ("GET", "/projects"): [(200, [{"id": "a", "name": "A"}])],
        }
    )
    listing = client.processings.list("proj")
    assert [p.id for p in listing] == ["p2", "p1"] and listing.complete  # newest first
    assert [p.id for p in client.projects.list()] == ["a"]


def test_listings_over_the_simulator_are_complete_newest_first(mapflow_sim):
    with _client(mapflow_sim) as client:
        project = client.projects.create("paged")
        made = [_create(client, f"p{i}", projectId=project.id).id for i in range(5)]
        listing = client.processings.list(project.id)
        assert [p.id for p in listing] == made[::-1]
        assert listing.complete
        assert [p.id for p in client.processings.iter(project.id, page_size=2)] == made[::-1]
        assert project.id in {p.id for p in client.projects.list()}


def test_a_sweep_of_an_empty_project_is_one_whole_page(mapflow_sim):
    """No processing yet: one page, empty, last, its ``total`` 0, not marked as a
    listing that shrank (nothing was seen before it), and the sweep is complete."""
    with _client(mapflow_sim) as client:
        project = client.projects.create("empty")
        pages = list(client.processings.pages(project.id, page_size=3))
        assert len(pages) == 1
        (page,) = pages
        assert list(page) == [] and page.total == 0 and page.last
        assert not page.shrank and page.complete
        listing = client.processings.list(project.id)
        assert list(listing) == [] and listing.complete


def test_a_sweep_over_a_count_that_fell_is_incomplete(mapflow_sim):
    """A processing deleted mid-sweep moves the later ones onto pages already read: the
    sweep ends at the new ``total`` having skipped one, and must not call itself whole."""
    with _client(mapflow_sim) as client:
        project = client.projects.create("paged")
        made = [_create(client, f"p{i}", projectId=project.id).id for i in range(4)]
        walk = client.processings.pages(project.id, page_size=1)
        first = next(walk)
        assert [p.id for p in first] == [made[3]] and first.total == 4
        client.processings.delete(made[3])  # the page already read
        rest = list(walk)
        seen = [p.id for pg in (first, *rest) for p in pg]
        skipped = set(made) - set(seen) - {made[3]}
        assert skipped == {made[2]}, seen  # the service's answer: one shifted past us
        assert rest[-1].last and rest[-1].reached >= rest[-1].total == 3
        assert rest[-1].shrank and not rest[-1].complete
        assert client.processings.list(project.id).complete  # a fresh sweep is whole


def test_simulator_serves_the_paged_routes(mapflow_sim):
    rec = Recorder()
    with _client(mapflow_sim, session=rec) as client:
        project = client.projects.create("paged")
        made = [_create(client, f"p{i}", projectId=project.id).id for i in range(3)]
        mapflow_sim.clear_requests()
        pages = list(client.processings.pages(project.id, page_size=2))
        assert [len(p) for p in pages] == [2, 1] and pages[-1].complete
        assert [p.id for pg in pages for p in pg] == made[::-1]
        client.projects.list()
    assert mapflow_sim.count("POST", f"/rest/projects/{project.id}/processings/v2/page") == 2
    assert mapflow_sim.count("GET", f"/rest/projects/{project.id}/processings/v2") == 0
    assert mapflow_sim.count("POST", "/rest/projects/page") >= 1


# ------------------------------------------------------------------ catalog scales
def test_fractions_sent_in_percent_and_read_by_scale():
    answer = {"images": [{"id": "s1", "cloudCover": 0.8, "previews": []}], "total": 1,
              "limit": 100, "offset": 0}  # fmt: skip
    client, rec = _canned_client({("POST", "/catalog/meta"): [(200, answer)]})
    res = client.catalog.search(SMALL, max_cloud_cover=0.2, min_aoi_intersection=0.5)
    (sent,) = rec.bodies("POST", "/catalog/meta")
    assert sent["maxCloudCover"] == 20 and sent["minAoiIntersectionPercent"] == 50
    assert sent["limit"] == 100 and sent["offset"] == 0
    assert res[0].cloud_cover == 0.8 and res[0].cloud_cover_fraction == pytest.approx(0.008)
    assert res.limit == 100 and res.offset == 0


def test_fraction_scale_deployment_sends_and_reads_fractions():
    answer = {"images": [{"id": "s1", "cloudCover": 0.35}], "total": 1}
    client, rec = _canned_client({("POST", "/catalog/meta"): [(200, answer)]})
    client.catalog.scale = "fraction"
    res = client.catalog.search(SMALL, max_cloud_cover=0.2, min_aoi_intersection=0.5)
    (sent,) = rec.bodies("POST", "/catalog/meta")
    assert sent["maxCloudCover"] == 0.2 and sent["minAoiIntersectionPercent"] == 0.5
    assert res[0].cloud_cover_fraction == pytest.approx(0.35)


def test_scales_one_per_direction():
    assert from_fraction(0.008, "percent") == 0.8  # sent: a 0.8 % bound stays 0.8
    assert from_fraction(0.2, "fraction") == 0.2
    assert to_fraction(0.8, "percent") == pytest.approx(0.008)  # read: never a ≤ 1 guess
    assert to_fraction(35, "percent") == pytest.approx(0.35)
    assert to_fraction(0.35, "fraction") == pytest.approx(0.35)
    assert CatalogScene.from_json({"cloudCover": 0.8}).cloud_cover_fraction == pytest.approx(0.008)
    scenes = CatalogSearchResult.from_json([{"cloudCover": 0.3}], cloud_cover_scale="fraction")
    assert scenes[0].cloud_cover_fraction == pytest.approx(0.3)
    with pytest.raises(ValueError, match="fraction"):
        from_fraction(20, "percent")
    with pytest.raises(ValueError, match="scale"):
        to_fraction(1, "per mille")


def test_search_imagery_reads_percent_scenes_by_scale():
    scene = {
        "id": "s1",
        "cloudCover": 0.8,
        "acquisitionDate": "2024-01-01T00:00:00Z",
        "footprint": shapely.geometry.mapping(shapely.box(37.6, 55.7, 37.7, 55.8)),
        "previews": [],
    }
    answer = {"images": [scene], "total": 1, "limit": 100, "offset": 0}
    client, rec = _canned_client({("POST", "/catalog/meta"): [(200, answer)]})
    aoi = gpd.GeoDataFrame(geometry=[shapely.box(37.6, 55.7, 37.65, 55.73)], crs=4326)
    frame = aoi.mapflow.search_imagery(
        client=client, max_cloud_cover=0.01, min_aoi_intersection=0.3
    )
    (sent,) = rec.bodies("POST", "/catalog/meta")
    assert sent["maxCloudCover"] == 1 and sent["minAoiIntersectionPercent"] == 30
    assert frame["cloud_cover"].iloc[0] == pytest.approx(0.008)


def test_catalog_over_the_simulator_in_percent():
    aoi = gpd.GeoDataFrame(geometry=[shapely.box(37.60, 55.70, 37.75, 55.78)], crs=4326)
    with sim.serve(catalog_cloud_cover_scale="percent") as server, _client(server) as client:
        raw = client.catalog.search(shapely.geometry.mapping(aoi.geometry.iloc[0]))
        frame = aoi.mapflow.search_imagery(client=client, max_cloud_cover=0.3)
    assert max(s.cloud_cover for s in raw if s.cloud_cover is not None) > 1  # percent
    assert all(
        s.cloud_cover_fraction == pytest.approx(s.cloud_cover / 100)
        for s in raw
        if s.cloud_cover is not None
    )
    assert len(frame) and (frame["cloud_cover"] <= 0.3).all()


# ------------------------------------------------------------------ create bodies
def test_processing_body_names_project_source_and_every_optional_block(mapflow_sim):
    with _client(mapflow_sim) as client:
        model = client.account.find_model("buildings")
        optional = {b.name for b in model.blocks if b.optional}
        body = client.processings.body("buildings", SMALL, blocks=["Classification"])
    assert body["projectId"] == client.projects.default_id()
    assert body["params"] == {
        "sourceParams": {"dataProvider": {"providerName": "Mapbox", "zoom": 18}}
    }
    assert {b["name"] for b in body["blocks"]} == optional and optional
    assert all(b["enabled"] == (b["name"] == "Classification") for b in body["blocks"])
    with pytest.raises(ValueError, match="not a block"):
        sources.create_body(model, project_id="p", blocks=["NoSuchBlock"])


def test_process_sends_project_source_and_every_optional_block(mapflow_sim, tmp_path):
    rec = Recorder()
    gdf = gpd.GeoDataFrame(geometry=[shapely.box(37.615, 55.755, 37.625, 55.760)], crs=4326)
    with _client(mapflow_sim, session=rec) as client:
        model = client.account.find_model("buildings")
        default_project = client.projects.default().id
        gdf.mapflow.process(
            "buildings", client=client, run_dir=tmp_path, poll_interval=0.05, progress=False
        )
    creates = rec.bodies("POST", "/processings/v2")
    costs = rec.bodies("POST", "/processing/cost/v2")
    assert creates and costs
    optional = {b.name for b in model.blocks if b.optional}
    for body in creates:
        assert body["projectId"] == default_project
        assert body["params"]["sourceParams"] == {
            "dataProvider": {"providerName": "Mapbox", "zoom": 18}
        }
        assert {b["name"] for b in body["blocks"]} == optional
        assert all(isinstance(b["enabled"], bool) for b in body["blocks"])
    # the estimate was made on what was sent (meta aside)
    strip = lambda b: {k: v for k, v in b.items() if k not in ("meta", "projectId")}  # noqa: E731
    assert strip(costs[0]) == strip(creates[0])
    # the simulator logged the create too
    assert mapflow_sim.count("POST", "/rest/processings/v2") == len(creates)


# ------------------------------------------------------------------ errors
def test_data_api_error_envelope_maps_to_exceptions():
    detail = {
        "detail": {"code": "ItemNotFound", "parameters": {"instance_type": "image", "uid": "i9"}}
    }
    client, _ = _canned_client({("GET", "/rasters/image/i9"): [(404, detail)]})
    with pytest.raises(exc.NotFoundError) as info:
        client.data.images.get("i9")
    assert info.value.code == "ItemNotFound"
    assert info.value.params == {"instance_type": "image", "uid": "i9"}
    body = {"detail": {"code": "MemoryLimitExceeded", "params": {"memory_requested": "9"},
                       "message": "Not enough space"}}  # fmt: skip
    client, _ = _canned_client({("POST", "/image"): [(400, body)]})
    with pytest.raises(exc.BadRequestError) as info:
        client.data.images.upload("m1", b"II*\x00")
    assert info.value.code == "MemoryLimitExceeded" and "Not enough space" in str(info.value)
    assert info.value.params == {"memory_requested": "9"}


def test_data_api_errors_over_the_simulator(mapflow_sim):
    with _client(mapflow_sim) as client, pytest.raises(exc.NotFoundError) as info:
        client.data.images.get("no-such-image")
    assert info.value.code is not None


def test_upload_answer_message_and_mosaic_id():
    image = {
        "id": "i1",
        "mosaic_id": "m1",
        "filename": "a.tif",
        "uploaded_at": "2026-01-01T00:00:00Z",
    }
    client, _ = _canned_client(
        {
            ("POST", "/rasters/mosaic/m1/image"): [
                (200, {"message": "Files successfully uploaded", "mosaic_id": "m1"})
            ],
            ("GET", "/rasters/mosaic/m1/image"): [
                (200, [{**image, "id": "i0", "filename": "b.tif"}, image])
            ],
            ("POST", "/rasters/mosaic/image"): [
                (200, {"message": "Files successfully uploaded", "mosaic_id": "m1"})
            ],
        }
    )
    assert client.data.images.upload("m1", b"II*\x00", filename="a.tif").id == "i1"
    m = client.data.mosaics.create_and_upload(b"II*\x00", "survey", ["a"])
    assert m.id == "m1" and m.name == "survey" and {i.id for i in m.images} == {"i0", "i1"}


# ------------------------------------------------------------------ new calls
def test_rename_restart_version(mapflow_sim):
    rec = Recorder()
    with _client(mapflow_sim, session=rec) as client:
        p = _create(client)
        renamed = client.processings.rename(p.id, "renamed", description="checked")
        assert renamed.name == "renamed"  # the service answers with the processing
        assert client.processings.get(p.id).name == "renamed"
        client.processings.rename(p.id, "again")
        client.processings.restart(p.id)
    assert rec.bodies("PUT", f"/processings/{p.id}/v2")[0] == {
        "name": "renamed",
        "description": "checked",
    }
    assert rec.bodies("PUT", f"/processings/{p.id}/v2")[1] == {"name": "again"}
    assert [c for c in rec.calls if c[1].endswith(f"/processings/{p.id}/restart/v2")]


def test_version(mapflow_sim):
    with _client(mapflow_sim) as client:
        v = client.version()
    assert isinstance(v, str) and v and not v.startswith('"')


def test_restart_falls_back_to_the_old_route():
    client, rec = _canned_client(
        {
            ("POST", "/restart/v2"): [(404, {"code": "NOT_FOUND", "message": "no"})],
            ("POST", "/p1/restart"): [(200, {"id": "p1", "status": "IN_PROGRESS"})],
        }
    )
    assert client.processings.restart("p1").status == "IN_PROGRESS"
    assert [p for _, p, _ in rec.calls][-2:] == ["/rest/processings/p1/restart/v2",
                                                 "/rest/processings/p1/restart"]  # fmt: skip


def test_review_workflow(mapflow_sim):
    rec = Recorder()
    with _client(mapflow_sim, session=rec) as client:
        p = _create(client)
        mapflow_sim.advance(3600)
        client.processings.review.rate(p.id, 4, "a few sheds missed")
        got = client.processings.get(p.id)
        assert got.rating == 4 and got.feedback == "a few sheds missed"
        client.processings.review.reject(p.id, "two buildings missing")
        assert client.processings.get(p.id).review_status is ReviewStatus.NOT_ACCEPTED
        client.processings.review.accept(p.id)
    assert rec.bodies("PUT", "/rate") == [{"rating": 4, "feedback": "a few sheds missed"}]
    assert rec.bodies("PUT", "/rejection") == [
        {
            "comment": "two buildings missing",
            "features": {"type": "FeatureCollection", "features": []},
        }
    ]


@pytest.mark.parametrize("bad", [0, 6, 4.5, "5", True, None])
def test_rating_validated_before_sending(bad):
    client, rec = _canned_client({})
    with pytest.raises(ValueError, match="1 to 5"):
        client.processings.review.rate("p1", bad)
    assert rec.calls == []


def test_review_fields_parsed():
    p = Processing.from_json(
        {
            "id": "p",
            "reviewStatus": {"reviewStatus": "IN_REVIEW", "inReviewUntil": "2026-01-02T00:00:00Z"},
            "rating": {"rating": "4", "feedback": "ok"},
        }
    )
    assert p.review_status is ReviewStatus.IN_REVIEW and p.rating == 4 and p.feedback == "ok"
    assert p.in_review_until is not None
    assert Processing.from_json({"id": "p", "rating": None}).rating is None


def test_download_image_only_from_the_same_origin():
    client, rec = _canned_client(
        {
            ("GET", "/rasters/image/i1/download"): [
                (
                    200,
                    {
                        "download_url": "http://127.0.0.1:9/rest/files/i1.tif",
                        "filename": "i1.tif",
                        "expires_in": 3600,
                    },
                )  # fmt: skip
            ],
            ("GET", "/files/i1.tif"): [(200, "bytes")],
            ("GET", "/rasters/image/i2/download"): [
                (200, {"download_url": "https://bucket.example.org/i2.tif?sig=x"})
            ],
        }
    )
    link = client.data.images.download_link("i1")
    assert link.filename == "i1.tif" and link.expires_in == 3600
    assert client.data.images.download("i1") == b'"bytes"'
    with pytest.raises(exc.TransportError, match="another origin"):
        client.data.images.download("i2")
    assert not any("bucket.example.org" in p for _, p, _ in rec.calls)


def test_download_image_over_the_simulator(mapflow_sim):
    with _client(mapflow_sim) as client:
        m = client.data.mosaics.create("dl")
        img = client.data.images.upload(m.id, b"II*\x00" + b"\x00" * 64, filename="a.tif")
        link = client.data.images.download_link(img.id)
        assert link.download_url
        try:
            data = client.data.images.download(img.id)
        except exc.TransportError:  # a presigned URL elsewhere is refused, by design
            return
    assert data.startswith(b"II*")


def test_uploaded_image_read_and_downloaded_as_stored(mapflow_sim):
    """Upload, get and download through the client agree with the simulator's stored
    image (its state) and with the bytes sent."""
    import hashlib

    pytest.importorskip("rasterio")
    from support.raster import tiff_bytes

    data = tiff_bytes(size=16, value=7)
    with _client(mapflow_sim) as client:
        m = client.data.mosaics.create_and_upload(data, "stored", filename="s.tif")
        img = client.data.images.upload(m.id, data, filename="t.tif")
        got = client.data.images.get(img.id)
        blob = client.data.images.download(img.id)
    stored = mapflow_sim.state["images"][img.id]
    assert [i.id for i in m.images] and m.images[0].mosaic_id == m.id
    for rec in (img, got):
        assert rec.id == stored["id"] and rec.mosaic_id == stored["mosaic_id"] == m.id
        assert rec.image_url == stored["image_url"] and rec.file_size == len(data)
        assert rec.checksum == hashlib.md5(data).hexdigest()  # noqa: S324
        assert rec.available_for_download is True
    assert blob == data


# ------------------------------------------------------------------ templates
def test_template_bodies():
    t = {"id": "t1", "name": "watch", "status": "SEARCHING", "userId": "u", "projectId": "pr",
         "createdAt": "2026-01-01T00:00:00Z", "activeUntil": "2026-06-01T00:00:00Z",
         "isActive": True}  # fmt: skip
    client, rec = _canned_client(
        {
            ("POST", "/processings/template"): [(200, {"template": t, "searchResults": []})],
            ("PUT", "/processings/template/t1"): [(200, t)],
            ("POST", "/processings/template/t1/images"): [
                (
                    200,
                    {
                        "images": [{"id": "s", "cloudCover": 0.8, "isNew": True}],
                        "total": 1,
                        "limit": 100,
                        "offset": 0,
                    },
                )  # fmt: skip
            ],
            ("POST", "/processings/template/t1/aoi"): [(200, {"addedCount": 2})],
            ("DELETE", "/processings/template/t1/aoi"): [(200, {"deletedCount": 1})],
        }
    )
    multi = {"type": "MultiPolygon", "coordinates": [SMALL["coordinates"], SMALL["coordinates"]]}
    got = client.templates.create(
        "watch", [(multi, "North")], project_id="pr", max_cloud_cover=0.3, min_aoi_intersection=0.5
    )
    assert isinstance(got, Template) and got.status is TemplateStatus.SEARCHING and got.is_active
    (body,) = rec.bodies("POST", "/processings/template")
    feats = body["searchParams"]["aoiDetails"]["features"]
    assert [f["geometry"]["type"] for f in feats] == ["Polygon", "Polygon"]
    assert all(f["properties"]["name"] == "North" for f in feats)
    assert body["searchParams"]["maxCloudCover"] == 30
    assert body["searchParams"]["minAoiIntersectionPercent"] == 50
    assert body["projectId"] == "pr" and body["activeUntil"].endswith(".0Z")
    client.templates.update("t1", name="renamed", max_cloud_cover=0.2)
    assert rec.bodies("PUT", "/processings/template/t1") == [
        {"name": "renamed", "searchParams": {"maxCloudCover": 20}}
    ]
    images = client.templates.images("t1", aoi_ids=["a1"])
    assert images[0].cloud_cover_fraction == pytest.approx(0.008)
    assert rec.bodies("POST", "/t1/images") == [{"limit": 100, "offset": 0, "aoiIds": ["a1"]}]
    client.templates.add_aois("t1", {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": SMALL, "properties": {"name": "South"}}]})  # fmt: skip
    assert rec.bodies("POST", "/t1/aoi") == [{"aois": [{"geometry": SMALL, "name": "South"}]}]
    client.templates.delete_aois("t1", ["a1"])
    assert rec.bodies("DELETE", "/t1/aoi") == [{"aoiIds": ["a1"]}]
    with pytest.raises(ValueError):
        client.templates.update("t1", aoiDetails={})


def test_template_lifecycle_over_the_simulator(mapflow_sim):
    with _client(mapflow_sim) as client:
        project = client.projects.default()
        t = client.templates.create("watch", [(SMALL, "North")], max_cloud_cover=0.5)
        assert t.id and t.project_id == project.id
        assert t.id in {x.id for x in client.templates.list()}
        assert t.id in {x.id for x in client.templates.list(project.id)}
        got = client.templates.get(t.id)
        assert got.name == "watch" and got.aois and got.aois[0].name == "North"
        client.templates.update(t.id, name="renamed")
        assert client.templates.get(t.id).name == "renamed"
        client.templates.pause(t.id)
        assert client.templates.get(t.id).is_active is False
        client.templates.resume(t.id)
        client.templates.add_aois(t.id, [(SMALL, "South")])
        aois = client.templates.get(t.id).aois
        assert {a.name for a in aois} >= {"North", "South"}
        client.templates.update_aoi(t.id, aois[0].id, name="North (west)")
        client.templates.delete_aois(t.id, [aois[-1].id])
        mapflow_sim.advance(86400)
        images = client.templates.images(t.id)
        assert isinstance(images, CatalogSearchResult)
        if len(images):
            client.templates.mark_image_seen(t.id, images[0].id)
            client.templates.mark_images_seen(t.id)
            p = client.templates.run(
                t.id,
                name="from template",
                wdName="🏠 Buildings",
                geometry=SMALL,
                params=sources.imagery_search(images[0].provider_name or "x", [images[0].id]),
            )
            assert p.id in {x.id for x in client.templates.processings(t.id)}
        client.templates.delete(t.id)
