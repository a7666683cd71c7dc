"""Results that travel: the Arrow stream (geopandas, lonboard, DuckDB), DuckDB at hand and
the STAC Collection, checked against the simulator's world and its processings."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pytest
import shapely

from mapflow_geo import open_run, sim
from mapflow_geo.results.dataset import stream_class_sums

AREA = shapely.box(37.60, 55.70, 37.64, 55.72)  # ≈ 2.8 km², six tiles at 1 km²
FAST = dict(progress=False, poll_interval=0.2, min_poll_interval=0.05, max_workers=4)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A run over AREA; the simulator's truth (whole buildings clipped to it) and, per
    processing, what the service says (its record and its AOIs)."""
    run_dir = tmp_path_factory.mktemp("share") / "run"
    gdf = gpd.GeoDataFrame({"name": ["district"]}, geometry=[AREA], crs=4326)
    with sim.serve(seed=11, processing_seconds=0) as server:
        client = server.client()
        res = gdf.mapflow.process(
            "buildings", client=client, run_dir=run_dir, area_limit_km2=1.0, **FAST
        )
        pids = res.processing_ids()
        date = server.imagery_date(pids[0])
        geoms, _ = server.truth(AREA.bounds, "buildings", date=date)
        service = {
            pid: {
                "record": client.processings.get(pid),
                "aoi": shapely.union_all(
                    [shapely.geometry.shape(a.geometry) for a in client.processings.aois(pid)]
                ),
                "date": server.imagery_date(pid),
            }
            for pid in pids
        }
    assert res.complete and len(pids) >= 4
    truth = shapely.intersection(np.asarray(geoms, dtype=object), AREA)
    truth = truth[shapely.area(truth) > 0]
    return run_dir, truth, service


def _count_area(frame: gpd.GeoDataFrame) -> tuple[int, float]:
    return len(frame), float(shapely.area(np.asarray(frame.geometry.values)).sum())


# ------------------------------------------------------------------------ Arrow stream
def test_geopandas_takes_the_result_as_an_arrow_stream(world):
    run_dir, truth, _ = world
    res = open_run(run_dir, progress=False)
    got = gpd.GeoDataFrame.from_arrow(res)
    assert "not loaded" in repr(res)  # streamed from a dataset: no GeoDataFrame built
    assert got.crs.to_epsg() == 4326
    n, area = _count_area(got)
    assert n == len(truth)
    assert area == pytest.approx(shapely.area(truth).sum(), rel=1e-9)
    assert (n, area) == pytest.approx(_count_area(res.features), rel=1e-12)
    named = {p for joined in got["processing_id"] for p in joined.split("+")}
    assert named == set(res.processing_ids())
    field = pa.RecordBatchReader.from_stream(res).schema.field("geometry")
    assert field.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    crs = json.loads(field.metadata[b"ARROW:extension:metadata"])["crs"]
    assert crs["id"] == {"authority": "EPSG", "code": 4326}
    # a consumer may ask for another schema it can take (the stream casts)
    schema = pa.RecordBatchReader.from_stream(res).schema
    want = pa.schema([f.with_type(pa.large_string()) if f.name == "tile_id" else f for f in schema])
    cast = pa.RecordBatchReader.from_stream(res, schema=want)
    assert cast.schema.field("tile_id").type == pa.large_string()
    assert cast.read_all().num_rows == len(truth)


def test_the_stream_comes_from_the_written_dataset_or_the_loaded_frame(world, tmp_path):
    run_dir, truth, _ = world
    res = open_run(run_dir, progress=False)
    info = res.to_parquet(tmp_path / "out", partition_features=500)
    assert len(info.parts) > 2
    from_info = gpd.GeoDataFrame.from_arrow(info)  # the dataset handle streams too
    from_res = gpd.GeoDataFrame.from_arrow(res)
    assert res._stream_dataset is None  # read the user's dataset, wrote no copy
    for frame in (from_info, from_res):
        assert _count_area(frame) == pytest.approx(
            (len(truth), shapely.area(truth).sum()), rel=1e-9
        )
    loaded = open_run(run_dir, progress=False)
    loaded.features  # noqa: B018 - in memory: the stream comes from the frame
    assert _count_area(gpd.GeoDataFrame.from_arrow(loaded)) == pytest.approx(
        (len(truth), shapely.area(truth).sum()), rel=1e-9
    )
    counted = stream_class_sums(res.files, res.tiles)
    with pytest.raises(ValueError, match="without writing"):
        counted.__arrow_c_stream__()


def test_lonboard_draws_the_stream(world):
    lonboard = pytest.importorskip("lonboard")
    run_dir, truth, _ = world
    res = open_run(run_dir, progress=False)
    m = lonboard.viz(res)
    assert isinstance(m, lonboard.Map)
    tables = [layer.table for layer in m.layers]
    drawn = [gpd.GeoDataFrame.from_arrow(t) for t in tables]
    assert sum(len(d) for d in drawn) == len(truth)
    area = sum(float(shapely.area(np.asarray(d.geometry.values)).sum()) for d in drawn)
    assert area == pytest.approx(shapely.area(truth).sum(), rel=1e-6)
    assert "not loaded" in repr(res)


def test_duckdb_scans_the_stream(world):
    duckdb = pytest.importorskip("duckdb")
    from mapflow_geo.results.duck import load_spatial

    run_dir, truth, _ = world
    res = open_run(run_dir, progress=False)
    con = duckdb.connect()
    load_spatial(con)
    n, area = con.sql("select count(*), sum(ST_Area(geometry)) from res").fetchone()
    assert n == len(truth)
    assert area == pytest.approx(shapely.area(truth).sum(), rel=1e-9)
    reader = res.to_arrow()
    assert isinstance(reader, pa.RecordBatchReader)
    assert con.sql("select count(*) from reader").fetchone()[0] == len(truth)


# ------------------------------------------------------------------------ DuckDB at hand
def test_duckdb_connection_has_spatial_and_the_objects(world):
    pytest.importorskip("duckdb")
    run_dir, truth, _ = world
    res = open_run(run_dir, progress=False)
    con = res.duckdb()
    rows = con.sql(
        "select object_type, count(*), sum(ST_Area(geometry)) from objects group by 1"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [("buildings", len(truth))]
    assert rows[0][2] == pytest.approx(shapely.area(truth).sum(), rel=1e-9)
    # the covering column is there for fast filters
    x0, y0, x1, y1 = AREA.bounds
    half = con.sql(f"select count(*) from objects where bbox.xmax <= {(x0 + x1) / 2}").fetchone()
    west = shapely.bounds(truth)[:, 2] <= (x0 + x1) / 2
    assert half[0] == int(west.sum())
    other = res.duckdb(view="houses")
    assert other.sql("select count(*) from houses").fetchone()[0] == len(truth)
    with pytest.raises(ValueError, match="plain SQL name"):
        res.duckdb(view="objects; drop table x")


# ------------------------------------------------------------------------ STAC
def test_stac_collection_has_an_item_per_processing(world, tmp_path):
    pystac = pytest.importorskip("pystac")
    from pystac.extensions.processing import ProcessingExtension

    run_dir, truth, service = world
    res = open_run(run_dir, progress=False)
    written = res.to_stac(tmp_path / "stac")
    # self-contained: copied elsewhere, everything still resolves
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "stac", moved)
    shutil.rmtree(tmp_path / "stac")
    col = pystac.Collection.from_file(str(moved / "collection.json"))
    for path in moved.rglob("*.json"):
        text = path.read_text()
        assert str(tmp_path) not in text, path
    items = {i.id: i for i in col.get_items()}
    assert sorted(items) == sorted(service) == sorted(i.id for i in written.get_items())
    for pid, item in items.items():
        truth_of = service[pid]
        assert shapely.equals(shapely.geometry.shape(item.geometry), truth_of["aoi"]), pid
        assert item.datetime.date().isoformat() == truth_of["date"]
        record = truth_of["record"]
        props = item.properties
        assert props["mapflow:credits"] == record.cost
        assert props["mapflow:model"] == record.model_name
        source = record.params["sourceParams"]["dataProvider"]
        assert props["mapflow:provider"] == source["providerName"]
        assert props["mapflow:zoom"] == source["zoom"]
        ext = ProcessingExtension.ext(item)
        assert ext.facility == "Geoalert Mapflow"
        assert ext.expression.expression["model"] == record.model_name
        # objects held whole or in part: the true buildings reaching into its area
        inside = shapely.area(shapely.intersection(truth, truth_of["aoi"])) > 0
        assert props["mapflow:objects"] == int(inside.sum())
        href = item.assets["data"].get_absolute_href()
        assert href.startswith(str(moved)) and shutil.os.path.exists(href)
    assert col.extra_fields["mapflow:total_objects"] == len(truth)
    assert col.extra_fields["mapflow:class_counts"] == {"buildings": len(truth)}
    assert col.extra_fields["mapflow:total_credits"] == sum(
        s["record"].cost for s in service.values()
    )
    assert col.summaries.get_list("mapflow:class") == ["buildings"]
    assert col.extent.spatial.bboxes[0] == pytest.approx(list(AREA.bounds), abs=1e-9)
    parts = [a.get_absolute_href() for a in col.assets.values()]
    back = gpd.read_parquet(moved / "objects")
    assert len(back) == len(truth) and all(shutil.os.path.exists(p) for p in parts)


def test_stac_validates_against_the_core_schemas(world, tmp_path):
    pystac = pytest.importorskip("pystac")
    pytest.importorskip("jsonschema")
    from pystac.validation import validate_dict

    run_dir, _, _ = world
    col = open_run(run_dir, progress=False).to_stac(tmp_path / "stac")
    col.validate()  # the core Collection schema ships with pystac (offline)
    for item in col.get_items():
        # the core Item schema offline; the processing extension's schema is on the web
        validate_dict(item.to_dict(), stac_object_type=pystac.STACObjectType.ITEM, extensions=[])


def test_stac_refuses_a_folder_of_other_files(world, tmp_path):
    pytest.importorskip("pystac")
    run_dir, _, _ = world
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="other files"):
        open_run(run_dir, progress=False).to_stac(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    res = open_run(run_dir, progress=False)
    first = res.to_stac(tmp_path / "cat")
    again = res.to_stac(tmp_path / "cat", collection_id="district", title="District")
    assert (again.id, again.title) == ("district", "District")  # an earlier one replaced
    assert sorted(i.id for i in again.get_items()) == sorted(i.id for i in first.get_items())
    (tmp_path / "cat" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="other files"):
        res.to_stac(tmp_path / "cat")
    assert (tmp_path / "cat" / "notes.txt").read_text() == "mine"
