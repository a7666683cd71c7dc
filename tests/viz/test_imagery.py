"""Catalog search as a GeoDataFrame, the scene choice rule, and runs on chosen scenes."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import mapping

import mapflow_geo  # noqa: F401 - registers the accessor
from mapflow_geo.exceptions import ImageryError
from mapflow_geo.imagery import (
    assign_scenes,
    choose_scenes,
    plan_scenes,
    rank_scenes,
    scene_sources,
    scenes_frame,
)

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02, "progress": False}
AOI = gpd.GeoDataFrame(geometry=[shapely.box(37.60, 55.70, 37.75, 55.78)], crs=4326)


def test_search_typed_columns_and_paging(mapflow_sim):
    client = mapflow_sim.client()
    one = AOI.mapflow.search_imagery(client=client, page_size=1000)
    mapflow_sim.clear_requests()
    paged = AOI.mapflow.search_imagery(client=client, page_size=4)
    n_req = mapflow_sim.count(method="POST", path="/rest/catalog/meta")
    assert n_req == len(one) // 4 + 1 and len(one) > 8
    assert list(paged["id"]) == list(one["id"])
    assert isinstance(paged, gpd.GeoDataFrame) and paged.crs.to_epsg() == 4326
    assert str(paged["acquisition_date"].dtype).startswith("datetime64")
    assert paged["acquisition_date"].dt.tz is not None
    for col in ("pixel_resolution", "cloud_cover", "off_nadir_angle"):
        assert paged[col].dtype == np.float64
    assert paged["cloud_cover"].between(0, 1).all()
    kinds = set(paged["product_type"])  # the service answers Image; older pages say Scene
    assert "Mosaic" in kinds and kinds & {"Scene", "Image"}
    assert paged["id"].is_unique
    assert paged.geometry.intersects(AOI.geometry.iloc[0]).all()
    # rule order: newest first
    assert paged.equals(rank_scenes(paged))
    capped = AOI.mapflow.search_imagery(client=client, page_size=3, max_results=5)
    assert list(capped["id"]) == list(one["id"][:5])


@pytest.mark.parametrize("scale", ["fraction", "percent"])
def test_cloud_cover_normalised_and_filters(scale):
    from mapflow_geo import sim

    with sim.serve(catalog_cloud_cover_scale=scale) as server:
        client = server.client()
        client.catalog.scale = scale  # the deployment's scale, told, never guessed
        all_ = AOI.mapflow.search_imagery(client=client)
        clear = AOI.mapflow.search_imagery(
            client=client, max_cloud_cover=0.2, date_from="2022-01-01", date_to="2025-06-30"
        )
        with pytest.raises(ValueError, match="fraction"):
            AOI.mapflow.search_imagery(client=client, max_cloud_cover=20)
    assert all_["cloud_cover"].max() <= 1.0 and all_["cloud_cover"].max() > 0.2
    assert len(clear) and (clear["cloud_cover"] <= 0.2).all()
    assert clear["acquisition_date"].min() >= pd.Timestamp("2022-01-01", tz="UTC")
    assert clear["acquisition_date"].max() <= pd.Timestamp("2025-06-30", tz="UTC")
    assert set(clear["id"]) <= set(all_.loc[all_["cloud_cover"] <= 0.2, "id"])


@pytest.mark.parametrize(
    ("scale", "raw", "fraction"),
    [("percent", 0.8, 0.008), ("percent", 35.0, 0.35), ("fraction", 0.35, 0.35)],
)
def test_scenes_frame_reads_by_the_endpoints_scale(scale, raw, fraction):
    s = scenes_frame(
        [_scene("a", "2024-01-01T00:00:00Z", raw, (0, 0, 1, 1))], cloud_cover_scale=scale
    )
    assert s["cloud_cover"].iloc[0] == pytest.approx(fraction)


def _scene(sid, date, cloud, box, provider="CG", res=0.5):
    return {
        "id": sid,
        "acquisitionDate": date,
        "cloudCover": cloud,
        "pixelResolution": res,
        "providerName": provider,
        "productType": "Scene",
        "footprint": mapping(shapely.box(*box)),
        "someNewField": 7,
    }


def test_rule_newest_then_least_cloudy():
    s = scenes_frame(
        [
            _scene("b", "2024-01-01T00:00:00Z", 0.3, (0, 0, 1, 1)),
            _scene("a", "2024-01-01T00:00:00Z", 0.1, (0, 0, 1, 1)),
            _scene("c", "2025-01-01T00:00:00Z", 0.9, (0, 0, 0.5, 1)),
            _scene("d", "2020-01-01T00:00:00Z", 0.0, (0, 0, 1, 1), res=0),
        ]
    )
    assert list(s["id"]) == ["c", "a", "b", "d"]
    assert "some_new_field" in s and s["pixel_resolution"].isna().sum() == 1
    chosen = choose_scenes(s, shapely.box(0, 0, 1, 1))
    assert list(chosen["id"]) == ["c", "a"]
    aois = gpd.GeoDataFrame(geometry=[shapely.box(0.1, 0.1, 0.9, 0.9)], crs=4326)
    parts = assign_scenes(aois, chosen)
    assert list(parts["scene_id"]) == ["c", "a"]
    assert parts.geometry.iloc[0].bounds[2] == pytest.approx(0.5)
    assert shapely.union_all(parts.geometry.values).equals(aois.geometry.iloc[0])
    with pytest.warns(UserWarning, match="outside every chosen scene"):
        assign_scenes(aois, s[s["id"] == "c"])
    with pytest.raises(ImageryError), pytest.warns(UserWarning):
        assign_scenes(gpd.GeoDataFrame(geometry=[shapely.box(5, 5, 6, 6)], crs=4326), chosen)


def test_plan_scenes_clips_and_one_scene_per_processing(mapflow_sim):
    client = mapflow_sim.client()
    scenes = AOI.mapflow.search_imagery(client=client, product_types=["IMAGE"])
    chosen = choose_scenes(scenes, AOI)
    plan = plan_scenes(AOI, chosen, area_limit_km2=5, max_aois=10)
    assert plan.groupby("processing")["scene_id"].nunique().max() == 1
    fp = chosen.set_index("id").geometry
    for sid, tiles in plan.groupby("scene_id"):
        assert shapely.covers(fp[sid].buffer(1e-9), shapely.union_all(tiles.geometry.values))
    srcs = scene_sources(plan)
    assert len(srcs) == plan["processing"].nunique()
    first = srcs[int(plan["processing"].iloc[0])]["sourceParams"]["imagerySearch"]
    assert first["imageIds"] == [plan["scene_id"].iloc[0]]


def test_process_on_chosen_scenes(mapflow_sim, tmp_path):
    client = mapflow_sim.client()
    aoi = gpd.GeoDataFrame(geometry=[shapely.box(37.60, 55.70, 37.66, 55.74)], crs=4326)
    chosen = choose_scenes(aoi.mapflow.search_imagery(client=client, max_cloud_cover=0.5), aoi)
    res = aoi.mapflow.process(
        "buildings", client=client, source=chosen, run_dir=tmp_path, area_limit_km2=10, **FAST
    )
    assert res.complete and len(res.features)
    assert set(res.tiles["scene_id"]) <= set(chosen["id"])
    bodies = [
        p["params"]["sourceParams"]["imagerySearch"]
        for p in mapflow_sim.state["processings"].values()
    ]
    by_scene = res.tiles.groupby("processing_key")["scene_id"].first()
    assert sorted(b["imageIds"][0] for b in bodies) == sorted(by_scene)
    assert len({b["imageIds"][0] for b in bodies}) >= 1
    assert res.features.geometry.within(
        shapely.union_all(chosen.geometry.values).buffer(1e-7)
    ).all()


def test_scene_run_replanned_smaller_keeps_each_tiles_scene(tmp_path):
    """A scene-planned processing refused as TOO_LARGE is re-planned; every piece keeps
    the scene of the tiles it covers (and a resume rebuilds the same bodies)."""
    from mapflow_geo import sim

    aoi = gpd.GeoDataFrame(geometry=[shapely.box(37.60, 55.70, 37.66, 55.74)], crs=4326)
    with sim.serve(aoi_area_limit_km2=4, processing_seconds=0) as server:
        client = server.client()
        chosen = choose_scenes(aoi.mapflow.search_imagery(client=client, max_cloud_cover=0.5), aoi)
        res = aoi.mapflow.process(
            "buildings",
            client=client,
            source=chosen,
            run_dir=tmp_path,
            area_limit_km2=10,
            **FAST,
        )
        assert res.complete
        assert res.tiles["processing_key"].str.contains(".", regex=False).any()
        by_id = {p["id"]: p for p in server.state["processings"].values()}
        again = aoi.mapflow.process(
            "buildings",
            client=client,
            source=chosen,
            run_dir=tmp_path,
            area_limit_km2=10,
            **FAST,
        )
        assert len(by_id) == len(server.state["processings"]), "resume created nothing"
    for key, tiles in res.tiles.groupby("processing_key"):
        body = by_id[tiles["processing_id"].iloc[0]]
        (scene,) = set(tiles["scene_id"])
        assert body["params"]["sourceParams"]["imagerySearch"]["imageIds"] == [scene], key
    assert len(again.features) == len(res.features)
