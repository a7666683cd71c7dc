"""MapflowResult review methods over the simulator: the client is passed in (the results
layer knows no HTTP)."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from mapflow_geo import sim


def test_rate_accept_reject_and_review_columns(tmp_path):
    gdf = gpd.GeoDataFrame(geometry=[shapely.box(37.60, 55.70, 37.64, 55.72)], crs=4326)
    with sim.serve(aoi_area_limit_km2=2, processing_seconds=0) as server:
        client = server.client()
        res = gdf.mapflow.process(
            "buildings", client=client, run_dir=tmp_path, poll_interval=0.05, progress=False
        )
        ids = res.processing_ids()
        assert ids and res.rate(5, feedback="clean", client=client) == ids
        tiles = res.review(client)
        assert {"reviewStatus", "rating"} <= set(tiles.columns)
        assert (tiles["rating"] == 5).all()
        one = ids[0]
        assert res.rate(3, client=client, processing_id=one) == [one]
        assert client.processings.get(one).rating == 3
        res.reject("two buildings missing", client=client, processing_id=one)
        res.review(client)
        assert set(res.tiles.loc[res.tiles["processing_id"] == one, "reviewStatus"]) == {
            "NOT_ACCEPTED"
        }
        res.accept(client=client, processing_id=one)
        with pytest.raises(ValueError, match="1 to 5"):
            res.rate(0, client=client)
